/*
 * The data-dependent and random single operators inside a session
 * (tests/data/make_misc_models.py): omitted outputs, dynamic nodes feeding
 * others, repeated runs of one context, and the seed behaviour across runs.
 */
#include <criterion/criterion.h>
#include <string.h>

#include "qkv.h"
#include "test_util.h"

static qkv_tensor f32(float *data, int32_t rank, const int64_t *dims)
{
    qkv_tensor t = {.dtype = QKV_DTYPE_FLOAT, .rank = rank, .data = data};
    size_t n = 1;
    for (int32_t d = 0; d < rank; d++) {
        t.dims[d] = dims[d];
        n *= (size_t)dims[d];
    }
    t.data_bytes = n * sizeof(float);
    return t;
}

static void open_ctx(const char *rel, qkv_session **s, qkv_context **c)
{
    qkv_error err;
    cr_assert_eq(qkv_session_create(tu_data(rel), NULL, s, &err), QKV_OK, "%s: %s", rel,
                 err.message);
    cr_assert_eq(qkv_context_create(*s, c, &err), QKV_OK, "%s", err.message);
}

Test(misc_models, unique_with_omitted_outputs_over_two_sizes)
{
    qkv_session *s;
    qkv_context *c;
    open_ctx("misc/unique_y_counts.onnx", &s, &c);
    qkv_error err;
    float a[6] = {3, 1, 3, 2, 1, 3};
    qkv_tensor x = f32(a, 1, (int64_t[]){6});
    cr_assert_eq(qkv_run(c, &x, 1, &err), QKV_OK, "%s", err.message);
    const qkv_tensor *y = qkv_context_output(c, 0), *n = qkv_context_output(c, 1);
    cr_assert_eq(y->dims[0], 3);
    float want_y[3] = {3, 1, 2}; /* first-occurrence order */
    int64_t want_n[3] = {3, 2, 1};
    cr_assert_arr_eq(y->data, want_y, sizeof want_y);
    cr_assert_arr_eq(n->data, want_n, sizeof want_n);
    float b[2] = {5, 5}; /* another length and another count */
    x = f32(b, 1, (int64_t[]){2});
    cr_assert_eq(qkv_run(c, &x, 1, &err), QKV_OK, "%s", err.message);
    y = qkv_context_output(c, 0);
    n = qkv_context_output(c, 1);
    cr_assert_eq(y->dims[0], 1);
    cr_assert_eq(((int64_t *)n->data)[0], 2);
    qkv_context_destroy(c);
    qkv_session_destroy(s);
}

Test(misc_models, unique_counts_feed_later_nodes)
{
    qkv_session *s;
    qkv_context *c;
    open_ctx("misc/unique_counts_relu.onnx", &s, &c);
    qkv_error err;
    float a[5] = {2, 2, 7, 2, 7};
    qkv_tensor x = f32(a, 1, (int64_t[]){5});
    cr_assert_eq(qkv_run(c, &x, 1, &err), QKV_OK, "%s", err.message);
    const qkv_tensor *r = qkv_context_output(c, 0);
    cr_assert_eq(r->dims[0], 2);
    float want[2] = {3, 2};
    cr_assert_arr_eq(r->data, want, sizeof want);
    qkv_context_destroy(c);
    qkv_session_destroy(s);
}

Test(misc_models, nms_of_runtime_boxes)
{
    qkv_session *s;
    qkv_context *c;
    open_ctx("misc/nms.onnx", &s, &c);
    qkv_error err;
    float boxes[24] = {0, 0,  1, 1,  0, 0.1f,  1, 1.1f,  0, -0.1f, 1, 0.9f,
                       0, 10, 1, 11, 0, 10.1f, 1, 11.1f, 0, 100,   1, 101};
    float scores[6] = {0.9f, 0.75f, 0.6f, 0.95f, 0.5f, 0.3f};
    qkv_tensor in[2] = {f32(boxes, 3, (int64_t[]){1, 6, 4}), f32(scores, 3, (int64_t[]){1, 1, 6})};
    cr_assert_eq(qkv_run(c, in, 2, &err), QKV_OK, "%s", err.message);
    const qkv_tensor *sel = qkv_context_output(c, 0);
    cr_assert_eq(sel->dims[0], 3);
    int64_t want[9] = {0, 0, 3, 0, 0, 0, 0, 0, 5};
    cr_assert_arr_eq(sel->data, want, sizeof want);
    in[0] = f32(boxes, 3, (int64_t[]){1, 2, 4}); /* boxes 0 and 1 overlap: one left */
    in[1] = f32(scores, 3, (int64_t[]){1, 1, 2});
    cr_assert_eq(qkv_run(c, in, 2, &err), QKV_OK, "%s", err.message);
    sel = qkv_context_output(c, 0);
    cr_assert_eq(sel->dims[0], 1);
    cr_assert_eq(((int64_t *)sel->data)[2], 0);
    qkv_context_destroy(c);
    qkv_session_destroy(s);
}

Test(misc_models, seeded_outputs_repeat_and_unseeded_ones_change_per_run)
{
    qkv_session *s;
    qkv_context *c;
    open_ctx("misc/random.onnx", &s, &c);
    qkv_error err;
    float zeros[16] = {0}, seeded[16], unseeded[16];
    qkv_tensor x = f32(zeros, 1, (int64_t[]){16});
    cr_assert_eq(qkv_run(c, &x, 1, &err), QKV_OK, "%s", err.message);
    memcpy(seeded, qkv_context_output(c, 0)->data, sizeof seeded);
    memcpy(unseeded, qkv_context_output(c, 1)->data, sizeof unseeded);
    for (int i = 0; i < 16; i++)
        cr_assert(seeded[i] >= 0.0f && seeded[i] < 1.0f, "[%d] %g", i, seeded[i]);
    cr_assert_eq(qkv_run(c, &x, 1, &err), QKV_OK, "%s", err.message);
    cr_assert_arr_eq(qkv_context_output(c, 0)->data, seeded, sizeof seeded,
                     "a seeded op repeats on every run");
    cr_assert(memcmp(qkv_context_output(c, 1)->data, unseeded, sizeof unseeded) != 0,
              "an unseeded op draws anew on every run");
    /* a second session: the seeded stream is the same, the unseeded one not */
    qkv_session *s2;
    qkv_context *c2;
    open_ctx("misc/random.onnx", &s2, &c2);
    cr_assert_eq(qkv_run(c2, &x, 1, &err), QKV_OK, "%s", err.message);
    cr_assert_arr_eq(qkv_context_output(c2, 0)->data, seeded, sizeof seeded);
    cr_assert(memcmp(qkv_context_output(c2, 1)->data, unseeded, sizeof unseeded) != 0);
    qkv_context_destroy(c2);
    qkv_session_destroy(s2);
    qkv_context_destroy(c);
    qkv_session_destroy(s);
}
