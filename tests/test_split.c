/* Split: equal, given and num_outputs parts in every opset form, any axis,
 * byte types, threads, unknown split values, and errors. Copies are exact. */
#include <criterion/criterion.h>
#include <stdio.h>
#include <string.h>

#include "error.h"
#include "kernel_harness.h"
#include "kernel_host.h"
#include "node_eval.h"
#include "registry.h"

typedef struct split_case {
    int64_t opset;
    int64_t axis;         /* INT64_MIN: absent */
    const int64_t *split; /* as input (opset 1, 13+) or attribute (2-12) */
    size_t n_split;       /* 0: none */
    bool split_attr;      /* opset 1: give split as the attribute */
    int64_t num_outputs;  /* 0: absent */
    size_t n_outputs;
    size_t threads;
} split_case;

static qkv_status run_split(const split_case *c, qkv_tensor x, qkv_tensor *outs, qkv_error *err)
{
    bool as_input = c->n_split && (c->opset >= 13 || (c->opset == 1 && !c->split_attr));
    kh_node *n = kh_node_create("Split", c->opset, as_input ? 2 : 1, c->n_outputs);
    if (c->axis != INT64_MIN)
        kh_attr_int(n, "axis", c->axis);
    if (c->n_split && !as_input)
        kh_attr_ints(n, "split", c->split, c->n_split);
    if (c->num_outputs)
        kh_attr_int(n, "num_outputs", c->num_outputs);
    if (c->threads)
        kh_set_threads(n, c->threads);
    int64_t split_copy[16] = {0};
    if (c->n_split)
        memcpy(split_copy, c->split, c->n_split * sizeof *split_copy);
    qkv_tensor ins[2] = {x, kh_i64(1, (int64_t[]){(int64_t)c->n_split}, split_copy)};
    qkv_status st = kh_run(n, ins, outs, err);
    kh_node_destroy(n);
    return st;
}

/* Checks outs against the slices of x (float, dims) along axis with sizes. */
static void check_parts(const float *xs, const int64_t *dims, int rank, int axis,
                        const int64_t *sizes, size_t n, const qkv_tensor *outs, const char *what)
{
    size_t outer = 1, inner = 1, dim = (size_t)dims[axis];
    for (int k = 0; k < axis; k++)
        outer *= (size_t)dims[k];
    for (int k = axis + 1; k < rank; k++)
        inner *= (size_t)dims[k];
    size_t off = 0;
    for (size_t p = 0; p < n; p++) {
        cr_assert_eq(outs[p].rank, rank, "%s: output %zu rank", what, p);
        for (int k = 0; k < rank; k++)
            cr_assert_eq(outs[p].dims[k], k == axis ? sizes[p] : dims[k],
                         "%s: output %zu dim %d is %lld", what, p, k, (long long)outs[p].dims[k]);
        const float *got = outs[p].data;
        size_t part = (size_t)sizes[p];
        for (size_t o = 0; o < outer; o++)
            for (size_t i = 0; i < part * inner; i++)
                cr_assert_eq(got[o * part * inner + i], xs[(o * dim + off) * inner + i],
                             "%s: output %zu element %zu", what, p, o * part * inner + i);
        off += part;
    }
}

Test(split, equal_parts_on_the_default_axis)
{
    float xs[6] = {1, 2, 3, 4, 5, 6};
    int64_t dims[1] = {6}, sizes[3] = {2, 2, 2};
    split_case c = {.opset = 13, .axis = INT64_MIN, .n_outputs = 3};
    qkv_tensor outs[3];
    qkv_error err;
    cr_assert_eq(run_split(&c, kh_f32(1, dims, xs), outs, &err), QKV_OK, "%s", err.message);
    check_parts(xs, dims, 1, 0, sizes, 3, outs, "equal");
    kh_free_outputs(outs, 3);
}

Test(split, given_parts_in_every_opset_form_on_a_middle_axis)
{
    float xs[2 * 6 * 3];
    kh_fill_random(xs, 36, 11);
    int64_t dims[3] = {2, 6, 3}, sizes[3] = {1, 4, 1};
    static const struct {
        int64_t opset;
        bool attr;
        int64_t axis;
    } forms[] = {{1, true, 1},   {1, false, 1},   {2, true, 1},
                 {11, true, -2}, {13, false, -2}, {18, false, 1}};
    for (size_t f = 0; f < sizeof forms / sizeof forms[0]; f++) {
        split_case c = {.opset = forms[f].opset,
                        .axis = forms[f].axis,
                        .split = sizes,
                        .n_split = 3,
                        .split_attr = forms[f].attr,
                        .n_outputs = 3};
        qkv_tensor outs[3];
        qkv_error err;
        char what[64];
        snprintf(what, sizeof what, "opset %lld attr %d", (long long)forms[f].opset, forms[f].attr);
        cr_assert_eq(run_split(&c, kh_f32(3, dims, xs), outs, &err), QKV_OK, "%s: %s", what,
                     err.message);
        check_parts(xs, dims, 3, 1, sizes, 3, outs, what);
        kh_free_outputs(outs, 3);
    }
}

Test(split, num_outputs_makes_ceil_sized_parts_with_a_smaller_last)
{
    float xs[7 * 2];
    kh_fill_random(xs, 14, 2);
    int64_t dims[2] = {2, 7};
    int64_t want3[3] = {3, 3, 1};
    split_case c = {.opset = 18, .axis = 1, .num_outputs = 3, .n_outputs = 3};
    qkv_tensor outs[4];
    qkv_error err;
    cr_assert_eq(run_split(&c, kh_f32(2, dims, xs), outs, &err), QKV_OK, "%s", err.message);
    check_parts(xs, dims, 2, 1, want3, 3, outs, "7 into 3");
    kh_free_outputs(outs, 3);
    /* 5 into 4: ceil 2 -> 2, 2, 1, 0 */
    int64_t dims5[1] = {5}, want4[4] = {2, 2, 1, 0};
    c = (split_case){.opset = 18, .axis = 0, .num_outputs = 4, .n_outputs = 4};
    cr_assert_eq(run_split(&c, kh_f32(1, dims5, xs), outs, &err), QKV_OK, "%s", err.message);
    check_parts(xs, dims5, 1, 0, want4, 4, outs, "5 into 4");
    kh_free_outputs(outs, 4);
}

Test(split, zero_size_parts_of_an_empty_tensor)
{
    float dummy[1];
    int64_t dims[1] = {0}, sizes[3] = {0, 0, 0};
    split_case c = {.opset = 13, .axis = INT64_MIN, .split = sizes, .n_split = 3, .n_outputs = 3};
    qkv_tensor outs[3];
    qkv_error err;
    cr_assert_eq(run_split(&c, kh_f32(1, dims, dummy), outs, &err), QKV_OK, "%s", err.message);
    for (int p = 0; p < 3; p++)
        cr_assert(outs[p].rank == 1 && outs[p].dims[0] == 0);
    kh_free_outputs(outs, 3);
}

Test(split, copies_bytes_of_any_element_size)
{
    int64_t i64[4] = {INT64_MIN, 2, 3, INT64_MAX};
    uint8_t bools[4] = {1, 0, 0, 1};
    int64_t dims[1] = {4};
    split_case c = {.opset = 13, .axis = 0, .n_outputs = 2};
    qkv_tensor outs[2];
    qkv_error err;
    cr_assert_eq(run_split(&c, kh_tensor(QKV_DTYPE_INT64, 1, dims, i64), outs, &err), QKV_OK, "%s",
                 err.message);
    cr_assert_eq(outs[1].dtype, QKV_DTYPE_INT64);
    cr_assert(((int64_t *)outs[0].data)[0] == INT64_MIN &&
              ((int64_t *)outs[1].data)[1] == INT64_MAX);
    kh_free_outputs(outs, 2);
    cr_assert_eq(run_split(&c, kh_tensor(QKV_DTYPE_BOOL, 1, dims, bools), outs, &err), QKV_OK, "%s",
                 err.message);
    cr_assert(((uint8_t *)outs[0].data)[0] == 1 && ((uint8_t *)outs[1].data)[0] == 0 &&
              ((uint8_t *)outs[1].data)[1] == 1);
    kh_free_outputs(outs, 2);
}

Test(split, large_input_on_threads)
{
    enum { A = 64, B = 30, C = 40 }; /* 300 KB of floats: the threaded path */
    static float xs[A * B * C];
    kh_fill_random(xs, A * B * C, 8);
    int64_t dims[3] = {A, B, C}, sizes[3] = {7, 20, 3};
    split_case c = {
        .opset = 13, .axis = 1, .split = sizes, .n_split = 3, .n_outputs = 3, .threads = 4};
    qkv_tensor outs[3];
    qkv_error err;
    cr_assert_eq(run_split(&c, kh_f32(3, dims, xs), outs, &err), QKV_OK, "%s", err.message);
    check_parts(xs, dims, 3, 1, sizes, 3, outs, "threads");
    kh_free_outputs(outs, 3);
}

/* init + infer only, as at session creation: the split input has no value */
Test(split, unknown_split_value_leaves_the_axis_dim_unknown)
{
    qkv_error err;
    qkv_registry *reg = qkv_registry_create();
    cr_assert_eq(qkv_registry_add_builtins(reg, &err), QKV_OK, "%s", err.message);
    const qkv_kernel *k = qkv_registry_find(reg, "", "Split", 13, NULL);
    cr_assert(k);
    int32_t in_ids[2] = {0, 1}, out_ids[2] = {2, 3};
    qkv_ir_node node = {.name = (char *)"probe",
                        .op_type = (char *)"Split",
                        .domain = (char *)"",
                        .opset = 13,
                        .n_inputs = 2,
                        .inputs = in_ids,
                        .n_outputs = 2,
                        .outputs = out_ids};
    qkv_tensor ins[2] = {kh_f32(2, (int64_t[]){4, 6}, NULL), kh_i64(1, (int64_t[]){2}, NULL)};
    qkv_tensor outs[2];
    void *state = NULL;
    qkv_node_ctx nctx = {.node = &node, .version = k->since_version, .err = &err};
    qkv_host_ctx hctx = {.node = &node, .version = k->since_version, .err = &err};
    cr_assert_eq(k->init(k, qkv_host_api_get(), &nctx, &state), QKV_OK, "%s", err.message);
    cr_assert_eq(qkv_kernel_infer(k, state, &hctx, ins, 2, outs, 2), QKV_OK, "%s", err.message);
    for (int p = 0; p < 2; p++)
        cr_assert(outs[p].rank == 2 && outs[p].dims[0] == -1 && outs[p].dims[1] == 6,
                  "output %d: rank %d dims %lld %lld", p, outs[p].rank, (long long)outs[p].dims[0],
                  (long long)outs[p].dims[1]);
    k->destroy(state);
    qkv_registry_destroy(reg);
}

/* ---- errors ----------------------------------------------------------------- */

Test(split, refuses_sizes_that_do_not_sum_to_the_dim)
{
    float xs[6] = {0};
    int64_t sizes[2] = {2, 3};
    split_case c = {.opset = 13, .axis = 0, .split = sizes, .n_split = 2, .n_outputs = 2};
    qkv_tensor outs[2];
    qkv_error err;
    cr_assert_eq(run_split(&c, kh_f32(1, (int64_t[]){6}, xs), outs, &err), QKV_ERR_SHAPE);
    cr_assert(strstr(err.message, "node 'test_node' (Split-13): split sizes sum to 5, but input "
                                  "0 'input' has 6 on the axis"),
              "%s", err.message);
    c.opset = 11; /* the attribute form says the same */
    cr_assert_eq(run_split(&c, kh_f32(1, (int64_t[]){6}, xs), outs, &err), QKV_ERR_SHAPE);
    cr_assert(strstr(err.message, "split sizes sum to 5"), "%s", err.message);
}

Test(split, refuses_a_split_of_the_wrong_length)
{
    float xs[6] = {0};
    int64_t sizes[3] = {2, 2, 2};
    split_case c = {.opset = 13, .axis = 0, .split = sizes, .n_split = 3, .n_outputs = 2};
    qkv_tensor outs[2];
    qkv_error err;
    cr_assert_eq(run_split(&c, kh_f32(1, (int64_t[]){6}, xs), outs, &err), QKV_ERR_INVALID_MODEL);
    cr_assert(strstr(err.message, "input 1 'split' has 3 entries but the node has 2 outputs"), "%s",
              err.message);
}

Test(split, refuses_negative_parts)
{
    float xs[6] = {0};
    int64_t sizes[2] = {8, -2};
    split_case c = {.opset = 13, .axis = 0, .split = sizes, .n_split = 2, .n_outputs = 2};
    qkv_tensor outs[2];
    qkv_error err;
    cr_assert_eq(run_split(&c, kh_f32(1, (int64_t[]){6}, xs), outs, &err), QKV_ERR_SHAPE);
    cr_assert(strstr(err.message, "split[1]=-2 is negative"), "%s", err.message);
}

Test(split, refuses_equal_parts_that_do_not_divide)
{
    float xs[7] = {0};
    split_case c = {.opset = 13, .axis = 0, .n_outputs = 2};
    qkv_tensor outs[2];
    qkv_error err;
    cr_assert_eq(run_split(&c, kh_f32(1, (int64_t[]){7}, xs), outs, &err), QKV_ERR_SHAPE);
    cr_assert(strstr(err.message, "input 0 'input' has 7 on the axis, which does not split "
                                  "into 2 equal parts"),
              "%s", err.message);
}

Test(split, refuses_axis_out_of_range)
{
    float xs[6] = {0};
    split_case c = {.opset = 13, .axis = -3, .n_outputs = 2};
    qkv_tensor outs[2];
    qkv_error err;
    cr_assert_eq(run_split(&c, kh_f32(2, (int64_t[]){2, 3}, xs), outs, &err), QKV_ERR_SHAPE);
    cr_assert(strstr(err.message, "attribute axis=-3 is out of range for input 0 'input' of "
                                  "rank 2 (expected -2 to 1)"),
              "%s", err.message);
}

Test(split, refuses_num_outputs_other_than_the_output_count)
{
    float xs[6] = {0};
    split_case c = {.opset = 18, .axis = 0, .num_outputs = 3, .n_outputs = 2};
    qkv_tensor outs[2];
    qkv_error err;
    cr_assert_eq(run_split(&c, kh_f32(1, (int64_t[]){6}, xs), outs, &err), QKV_ERR_INVALID_MODEL);
    cr_assert(strstr(err.message, "attribute num_outputs=3 but the node has 2 outputs"), "%s",
              err.message);
}

Test(split, refuses_both_split_and_num_outputs)
{
    float xs[6] = {0};
    int64_t sizes[2] = {3, 3};
    split_case c = {
        .opset = 18, .axis = 0, .split = sizes, .n_split = 2, .num_outputs = 2, .n_outputs = 2};
    qkv_tensor outs[2];
    qkv_error err;
    cr_assert_eq(run_split(&c, kh_f32(1, (int64_t[]){6}, xs), outs, &err), QKV_ERR_INVALID_MODEL);
    cr_assert(strstr(err.message, "has both input 1 'split' and attribute num_outputs"), "%s",
              err.message);
}
