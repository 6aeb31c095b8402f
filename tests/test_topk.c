/* TopK: order, ties, NaN, axes, k forms, and errors. */
#include <criterion/criterion.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "kernel_harness.h"

/* Runs TopK-11 on float x with k; attrs axis/largest/sorted (sorted < 0: unset). */
static qkv_status run_topk(qkv_tensor x, int64_t k, int64_t axis, int64_t largest,
                           qkv_tensor out[2], qkv_error *err, size_t threads)
{
    qkv_tensor in[2] = {x, kh_i64(1, (int64_t[]){1}, &k)};
    kh_node *n = kh_node_create("TopK", 11, 2, 2);
    kh_attr_int(n, "axis", axis);
    kh_attr_int(n, "largest", largest);
    kh_set_threads(n, threads);
    qkv_status st = kh_run(n, in, out, err);
    kh_node_destroy(n);
    return st;
}

Test(topk, largest_along_last_axis)
{
    float xs[12] = {0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11};
    qkv_tensor out[2];
    qkv_error err;
    cr_assert_eq(run_topk(kh_f32(2, (int64_t[]){3, 4}, xs), 3, -1, 1, out, &err, 1), QKV_OK, "%s",
                 err.message);
    cr_assert_eq(out[0].dims[0], 3);
    cr_assert_eq(out[0].dims[1], 3);
    cr_assert_eq(out[1].dtype, QKV_DTYPE_INT64);
    for (int r = 0; r < 3; r++)
        for (int c = 0; c < 3; c++) {
            cr_assert_float_eq(((float *)out[0].data)[r * 3 + c], (float)(r * 4 + 3 - c), 0);
            cr_assert_eq(((int64_t *)out[1].data)[r * 3 + c], 3 - c);
        }
    kh_free_outputs(out, 2);
}

Test(topk, smallest_along_last_axis)
{
    float xs[12] = {0, 1, 2, 3, 4, 5, 6, 7, 11, 10, 9, 8};
    qkv_tensor out[2];
    qkv_error err;
    cr_assert_eq(run_topk(kh_f32(2, (int64_t[]){3, 4}, xs), 3, 1, 0, out, &err, 1), QKV_OK, "%s",
                 err.message);
    int64_t want_i[9] = {0, 1, 2, 0, 1, 2, 3, 2, 1};
    float want_v[9] = {0, 1, 2, 4, 5, 6, 8, 9, 10};
    for (int i = 0; i < 9; i++) {
        cr_assert_float_eq(((float *)out[0].data)[i], want_v[i], 0, "[%d]", i);
        cr_assert_eq(((int64_t *)out[1].data)[i], want_i[i], "[%d]", i);
    }
    kh_free_outputs(out, 2);
}

Test(topk, ties_keep_lower_index_first)
{
    float xs[6] = {5, 7, 5, 7, 5, 1};
    qkv_tensor out[2];
    qkv_error err;
    cr_assert_eq(run_topk(kh_f32(1, (int64_t[]){6}, xs), 4, 0, 1, out, &err, 1), QKV_OK, "%s",
                 err.message);
    int64_t want_l[4] = {1, 3, 0, 2};
    for (int i = 0; i < 4; i++)
        cr_assert_eq(((int64_t *)out[1].data)[i], want_l[i], "largest [%d]", i);
    kh_free_outputs(out, 2);
    cr_assert_eq(run_topk(kh_f32(1, (int64_t[]){6}, xs), 4, 0, 0, out, &err, 1), QKV_OK, "%s",
                 err.message);
    int64_t want_s[4] = {5, 0, 2, 4};
    for (int i = 0; i < 4; i++)
        cr_assert_eq(((int64_t *)out[1].data)[i], want_s[i], "smallest [%d]", i);
    kh_free_outputs(out, 2);
}

Test(topk, nan_ranks_above_numbers)
{
    float xs[4] = {1, NAN, 3, 2};
    qkv_tensor out[2];
    qkv_error err;
    cr_assert_eq(run_topk(kh_f32(1, (int64_t[]){4}, xs), 2, 0, 1, out, &err, 1), QKV_OK, "%s",
                 err.message);
    cr_assert_eq(((int64_t *)out[1].data)[0], 1);
    cr_assert_eq(((int64_t *)out[1].data)[1], 2);
    kh_free_outputs(out, 2);
    cr_assert_eq(run_topk(kh_f32(1, (int64_t[]){4}, xs), 4, 0, 0, out, &err, 1), QKV_OK, "%s",
                 err.message);
    cr_assert_eq(((int64_t *)out[1].data)[3], 1);
    cr_assert(isnan(((float *)out[0].data)[3]));
    kh_free_outputs(out, 2);
}

Test(topk, axis_zero_with_inner_dims)
{
    /* x (3, 2): columns [4, 9, 1] and [6, 2, 8]; top 2 along axis 0 */
    float xs[6] = {4, 6, 9, 2, 1, 8};
    qkv_tensor out[2];
    qkv_error err;
    cr_assert_eq(run_topk(kh_f32(2, (int64_t[]){3, 2}, xs), 2, 0, 1, out, &err, 1), QKV_OK, "%s",
                 err.message);
    cr_assert_eq(out[0].dims[0], 2);
    cr_assert_eq(out[0].dims[1], 2);
    float want_v[4] = {9, 8, 4, 6};
    int64_t want_i[4] = {1, 2, 0, 0};
    for (int i = 0; i < 4; i++) {
        cr_assert_float_eq(((float *)out[0].data)[i], want_v[i], 0, "[%d]", i);
        cr_assert_eq(((int64_t *)out[1].data)[i], want_i[i], "[%d]", i);
    }
    kh_free_outputs(out, 2);
}

Test(topk, k_zero_gives_empty_outputs)
{
    float xs[3] = {1, 2, 3};
    qkv_tensor out[2];
    qkv_error err;
    cr_assert_eq(run_topk(kh_f32(1, (int64_t[]){3}, xs), 0, 0, 1, out, &err, 1), QKV_OK, "%s",
                 err.message);
    cr_assert_eq(out[0].dims[0], 0);
    kh_free_outputs(out, 2);
}

Test(topk, opset_1_reads_k_attribute_and_int_types)
{
    int32_t xs[5] = {3, -1, 7, 7, 0};
    qkv_tensor x = kh_tensor(QKV_DTYPE_INT32, 1, (int64_t[]){5}, xs), out[2];
    qkv_error err;
    kh_node *n = kh_node_create("TopK", 1, 1, 2);
    kh_attr_int(n, "k", 3);
    cr_assert_eq(kh_run(n, &x, out, &err), QKV_OK, "%s", err.message);
    int32_t want_v[3] = {7, 7, 3};
    int64_t want_i[3] = {2, 3, 0};
    for (int i = 0; i < 3; i++) {
        cr_assert_eq(((int32_t *)out[0].data)[i], want_v[i]);
        cr_assert_eq(((int64_t *)out[1].data)[i], want_i[i]);
    }
    kh_free_outputs(out, 2);
    kh_node_destroy(n);
}

Test(topk, double_int64_and_uint8_inputs)
{
    double xd[4] = {0.5, -1, 2, 0.25};
    int64_t xl[4] = {INT64_MIN, 5, -7, INT64_MAX};
    uint8_t xb[4] = {200, 3, 255, 0};
    qkv_tensor xs[3] = {kh_tensor(QKV_DTYPE_DOUBLE, 1, (int64_t[]){4}, xd),
                        kh_i64(1, (int64_t[]){4}, xl),
                        kh_tensor(QKV_DTYPE_UINT8, 1, (int64_t[]){4}, xb)};
    int64_t want[3][2] = {{2, 0}, {3, 1}, {2, 0}};
    for (int t = 0; t < 3; t++) {
        qkv_tensor out[2];
        qkv_error err;
        cr_assert_eq(run_topk(xs[t], 2, 0, 1, out, &err, 1), QKV_OK, "%s", err.message);
        cr_assert_eq(out[0].dtype, xs[t].dtype);
        for (int i = 0; i < 2; i++)
            cr_assert_eq(((int64_t *)out[1].data)[i], want[t][i], "type %d [%d]", t, i);
        kh_free_outputs(out, 2);
    }
}

static int cmp_desc(const void *a, const void *b)
{
    float x = *(const float *)a, y = *(const float *)b;
    return x < y ? 1 : x > y ? -1 : 0;
}

Test(topk, random_rows_on_four_threads_match_sorted_reference)
{
    enum { R = 64, N = 300, K = 17 };
    float *xs = malloc(R * N * sizeof(float)), row[N];
    kh_fill_random(xs, R * N, 99);
    qkv_tensor out[2];
    qkv_error err;
    cr_assert_eq(run_topk(kh_f32(2, (int64_t[]){R, N}, xs), K, 1, 1, out, &err, 4), QKV_OK, "%s",
                 err.message);
    for (int r = 0; r < R; r++) {
        memcpy(row, xs + r * N, sizeof row);
        qsort(row, N, sizeof(float), cmp_desc);
        for (int c = 0; c < K; c++) {
            float v = ((float *)out[0].data)[r * K + c];
            int64_t i = ((int64_t *)out[1].data)[r * K + c];
            cr_assert_float_eq(v, row[c], 0, "row %d [%d]", r, c);
            cr_assert_float_eq(xs[r * N + i], v, 0, "index of row %d [%d]", r, c);
        }
    }
    kh_free_outputs(out, 2);
    free(xs);
}

Test(topk, unknown_k_gives_unknown_dim)
{
    float xs[6] = {0};
    qkv_tensor in[2] = {kh_f32(2, (int64_t[]){2, 3}, xs),
                        kh_tensor(QKV_DTYPE_INT64, 1, (int64_t[]){1}, NULL)},
               out[2];
    qkv_error err;
    kh_node *n = kh_node_create("TopK", 11, 2, 2);
    cr_assert_eq(kh_infer(n, in, out, &err), QKV_OK, "%s", err.message);
    cr_assert_eq(out[0].rank, 2);
    cr_assert_eq(out[0].dims[0], 2);
    cr_assert_eq(out[0].dims[1], -1);
    cr_assert_eq(out[1].dims[1], -1);
    cr_assert_eq(out[1].dtype, QKV_DTYPE_INT64);
    kh_node_destroy(n);
}

Test(topk, rejects_k_larger_than_dim)
{
    float xs[3] = {1, 2, 3};
    qkv_tensor out[2];
    qkv_error err;
    cr_assert_eq(run_topk(kh_f32(1, (int64_t[]){3}, xs), 4, 0, 1, out, &err, 1), QKV_ERR_SHAPE);
    cr_assert(strstr(err.message, "(TopK-10): k = 4 is larger than dim 0 of input 0 'X' (size 3)"),
              "%s", err.message);
}

Test(topk, rejects_negative_k)
{
    float xs[3] = {1, 2, 3};
    qkv_tensor out[2];
    qkv_error err;
    cr_assert_eq(run_topk(kh_f32(1, (int64_t[]){3}, xs), -1, 0, 1, out, &err, 1), QKV_ERR_SHAPE);
    cr_assert(strstr(err.message, "input 1 'K' is -1, expected >= 0"), "%s", err.message);
}

Test(topk, rejects_axis_out_of_range)
{
    float xs[3] = {1, 2, 3};
    qkv_tensor out[2];
    qkv_error err;
    cr_assert_eq(run_topk(kh_f32(1, (int64_t[]){3}, xs), 1, 1, 1, out, &err, 1), QKV_ERR_SHAPE);
    cr_assert(strstr(err.message, "axis 1 is out of range for input 0 'X' of rank 1"), "%s",
              err.message);
}

Test(topk, rejects_missing_k_attribute_in_opset_1)
{
    float xs[3] = {1, 2, 3};
    qkv_tensor x = kh_f32(1, (int64_t[]){3}, xs), out[2];
    qkv_error err;
    kh_node *n = kh_node_create("TopK", 1, 1, 2);
    cr_assert_eq(kh_run(n, &x, out, &err), QKV_ERR_INVALID_MODEL);
    cr_assert(strstr(err.message, "(TopK-1): attribute 'k' is missing"), "%s", err.message);
    kh_node_destroy(n);
}
