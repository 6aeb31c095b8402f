/*
 * The session's memory limit (qkv_session_options.memory_limit): shapes that
 * would need more memory than it allows fail with QKV_ERR_OUT_OF_MEMORY,
 * naming the node and the bytes, before the memory is allocated; the same
 * context then runs shapes that fit; a limit that packed weights pass fails
 * session creation.
 */
#include <criterion/criterion.h>
#include <stdio.h>
#include <string.h>

#include "qkv.h"
#include "test_util.h"

#define MiB ((size_t)1 << 20)

static qkv_session *open_limited(const char *model, size_t limit)
{
    qkv_session_options o;
    qkv_session_options_init(&o);
    o.memory_limit = limit;
    o.no_default_plugins = 1;
    qkv_session *s = NULL;
    qkv_error err;
    cr_assert_eq(qkv_session_create(tu_data(model), &o, &s, &err), QKV_OK, "%s", err.message);
    return s;
}

static qkv_tensor int64_tensor(int64_t *values, int32_t rank, int64_t n)
{
    qkv_tensor t = {.dtype = QKV_DTYPE_INT64,
                    .rank = rank,
                    .data = values,
                    .data_bytes = (size_t)n * sizeof(int64_t)};
    if (rank == 1)
        t.dims[0] = n;
    return t;
}

/* Runs c on inputs and expects QKV_ERR_OUT_OF_MEMORY whose message names
 * `node`. */
static void expect_oom(qkv_context *c, const qkv_tensor *in, size_t n, const char *node)
{
    qkv_error err;
    qkv_status st = qkv_run(c, in, n, &err);
    cr_assert_eq(st, QKV_ERR_OUT_OF_MEMORY, "status %d: %s", st, err.message);
    cr_assert(strstr(err.message, node), "message does not name '%s': %s", node, err.message);
    cr_assert(strstr(err.message, "bytes"), "message gives no bytes: %s", err.message);
    cr_log_info("%s", err.message);
}

Test(memory_limit, range_with_a_huge_limit_value_fails_then_small_one_runs)
{
    qkv_session *s = open_limited("limit/range.onnx", 1 * MiB);
    qkv_context *c = NULL;
    qkv_error err;
    cr_assert_eq(qkv_context_create(s, &c, &err), QKV_OK, "%s", err.message);
    int64_t n = (int64_t)1 << 40; /* 8 TiB of int64: would fail any malloc too */
    qkv_tensor in = int64_tensor(&n, 0, 1);
    expect_oom(c, &in, 1, "range");
    n = 200000; /* 1.6 MB: over the limit, yet allocatable */
    expect_oom(c, &in, 1, "range");
    n = 1000;
    cr_assert_eq(qkv_run(c, &in, 1, &err), QKV_OK, "%s", err.message);
    const qkv_tensor *y = qkv_context_output(c, 0);
    cr_assert_eq(y->rank, 1);
    cr_assert_eq(y->dims[0], 1000);
    cr_assert_eq(((const int64_t *)y->data)[999], 999);
    qkv_context_destroy(c);
    qkv_session_destroy(s);
}

Test(memory_limit, constant_of_shape_expand_and_tile_are_capped)
{
    qkv_error err;
    int64_t shape[2] = {1024, 1024}; /* 4 MiB of float */
    qkv_tensor sh = int64_tensor(shape, 1, 2);
    float x[2] = {1.0f, 2.0f};
    qkv_tensor x1 = {
        .dtype = QKV_DTYPE_FLOAT, .rank = 1, .dims = {1}, .data = x, .data_bytes = sizeof(float)};
    qkv_tensor x2 = {.dtype = QKV_DTYPE_FLOAT,
                     .rank = 1,
                     .dims = {2},
                     .data = x,
                     .data_bytes = 2 * sizeof(float)};
    int64_t reps = 1 << 20; /* 8 MiB of float */
    qkv_tensor rp = int64_tensor(&reps, 1, 1);

    const char *models[] = {"limit/const_shape.onnx", "limit/expand.onnx", "limit/tile.onnx"};
    const char *nodes[] = {"fill", "expand", "tile"};
    for (int m = 0; m < 3; m++) {
        qkv_session *s = open_limited(models[m], 1 * MiB);
        qkv_context *c = NULL;
        cr_assert_eq(qkv_context_create(s, &c, &err), QKV_OK, "%s", err.message);
        qkv_tensor in[2] = {m == 0 ? sh : m == 1 ? x1 : x2, m == 1 ? sh : rp};
        size_t n_in = m == 0 ? 1 : 2;
        expect_oom(c, in, n_in, nodes[m]);
        /* the context stays usable: a small size runs */
        shape[0] = shape[1] = 4;
        reps = 3;
        cr_assert_eq(qkv_run(c, in, n_in, &err), QKV_OK, "%s: %s", models[m], err.message);
        const qkv_tensor *y = qkv_context_output(c, 0);
        size_t want = m == 2 ? 6 : 16;
        cr_assert_eq(y->data_bytes, want * sizeof(float), "%s", models[m]);
        shape[0] = shape[1] = 1024;
        reps = 1 << 20;
        qkv_context_destroy(c);
        qkv_session_destroy(s);
    }
}

Test(memory_limit, an_arena_over_the_limit_fails_before_it_is_allocated)
{
    qkv_session *s = open_limited("limit/chain.onnx", 1 * MiB);
    qkv_context *c = NULL;
    qkv_error err;
    cr_assert_eq(qkv_context_create(s, &c, &err), QKV_OK, "%s", err.message);
    static float x[512 * 1024];
    qkv_tensor in = {.dtype = QKV_DTYPE_FLOAT,
                     .rank = 2,
                     .dims = {512, 1024},
                     .data = x,
                     .data_bytes = sizeof x}; /* 2 MiB per value */
    expect_oom(c, &in, 1, "relu");            /* one value alone passes the limit */
    in.dims[0] = 160;
    in.data_bytes = 160 * 1024 * sizeof(float); /* 640 KiB per value, two live at once */
    expect_oom(c, &in, 1, "arena");
    in.dims[0] = 8;
    in.data_bytes = 8 * 1024 * sizeof(float);
    x[0] = -2.0f;
    x[1] = 3.0f;
    cr_assert_eq(qkv_run(c, &in, 1, &err), QKV_OK, "%s", err.message);
    const float *y = qkv_context_output(c, 0)->data;
    cr_assert_float_eq(y[0], 2.0f, 0.0f); /* relu(-2) + 2 */
    cr_assert_float_eq(y[1], 0.0f, 0.0f); /* relu(3) - 3 */
    qkv_context_destroy(c);
    qkv_session_destroy(s);
}

Test(memory_limit, packed_weights_over_the_limit_fail_session_creation)
{
    qkv_session_options o;
    qkv_session_options_init(&o);
    o.no_default_plugins = 1;
    o.memory_limit = 64 * 1024; /* W is 256 KiB */
    qkv_session *s = NULL;
    qkv_error err;
    qkv_status st = qkv_session_create(tu_data("limit/weight.onnx"), &o, &s, &err);
    cr_assert_eq(st, QKV_ERR_OUT_OF_MEMORY, "status %d: %s", st, err.message);
    cr_assert_null(s);
    cr_assert(strstr(err.message, "proj") && strstr(err.message, "memory limit"), "%s",
              err.message);
    /* a limit that holds the packed weight and a small arena works */
    o.memory_limit = 4 * MiB;
    cr_assert_eq(qkv_session_create(tu_data("limit/weight.onnx"), &o, &s, &err), QKV_OK, "%s",
                 err.message);
    cr_assert_gt(qkv_session_packed_bytes(s, NULL), 0);
    qkv_session_destroy(s);
}

Test(memory_limit, no_limit_is_the_default)
{
    qkv_session_options o;
    qkv_session_options_init(&o);
    cr_assert_eq(o.memory_limit, 0);
}
