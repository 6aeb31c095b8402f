/* Concat (ops/concat.c). Concat copies elements, so comparisons are exact. */
#include <criterion/criterion.h>
#include <stdlib.h>
#include <string.h>

#include "kernel_harness.h"

static void assert_dims(const qkv_tensor *t, int32_t rank, const int64_t *dims)
{
    cr_assert_eq(t->rank, rank, "rank %d, expected %d", t->rank, rank);
    for (int32_t k = 0; k < rank; k++)
        cr_assert_eq(t->dims[k], dims[k], "dim %d is %lld, expected %lld", k, (long long)t->dims[k],
                     (long long)dims[k]);
}

static void assert_floats(const qkv_tensor *y, const float *want, size_t n)
{
    cr_assert_eq(y->data_bytes, n * sizeof(float));
    for (size_t i = 0; i < n; i++)
        cr_assert_eq(((float *)y->data)[i], want[i], "element %zu is %g, expected %g", i,
                     ((float *)y->data)[i], want[i]);
}

static qkv_status run(int64_t opset, int64_t axis, const qkv_tensor *in, size_t n_in, qkv_tensor *y,
                      qkv_error *err)
{
    kh_node *n = kh_node_create("Concat", opset, n_in, 1);
    kh_attr_int(n, "axis", axis);
    qkv_status st = kh_run(n, in, y, err);
    kh_node_destroy(n);
    return st;
}

static float a22[4] = {1, 2, 3, 4}, b22[4] = {5, 6, 7, 8};

Test(concat, joins_along_axis_0_and_1)
{
    qkv_tensor in[2] = {kh_f32(2, (int64_t[]){2, 2}, a22), kh_f32(2, (int64_t[]){2, 2}, b22)}, y;
    qkv_error err;
    cr_assert_eq(run(13, 0, in, 2, &y, &err), QKV_OK, "%s", err.message);
    assert_dims(&y, 2, (int64_t[]){4, 2});
    assert_floats(&y, (float[]){1, 2, 3, 4, 5, 6, 7, 8}, 8);
    kh_free_outputs(&y, 1);
    cr_assert_eq(run(13, 1, in, 2, &y, &err), QKV_OK, "%s", err.message);
    assert_dims(&y, 2, (int64_t[]){2, 4});
    assert_floats(&y, (float[]){1, 2, 5, 6, 3, 4, 7, 8}, 8);
    kh_free_outputs(&y, 1);
}

Test(concat, negative_axis_counts_from_the_end)
{
    qkv_tensor in[2] = {kh_f32(2, (int64_t[]){2, 2}, a22), kh_f32(2, (int64_t[]){2, 2}, b22)}, y;
    qkv_error err;
    cr_assert_eq(run(11, -1, in, 2, &y, &err), QKV_OK, "%s", err.message);
    assert_floats(&y, (float[]){1, 2, 5, 6, 3, 4, 7, 8}, 8);
    kh_free_outputs(&y, 1);
    cr_assert_eq(run(4, -1, in, 2, &y, &err), QKV_ERR_INVALID_MODEL);
    cr_assert(strstr(err.message, "attribute 'axis' is -1; negative axes need opset 11"), "%s",
              err.message);
}

Test(concat, inputs_of_different_sizes_on_the_axis_and_an_empty_one)
{
    float c[6] = {9, 10, 11, 12, 13, 14}, none[1] = {0};
    qkv_tensor in[3] = {kh_f32(2, (int64_t[]){2, 2}, a22), kh_f32(2, (int64_t[]){2, 0}, none),
                        kh_f32(2, (int64_t[]){2, 3}, c)},
               y;
    qkv_error err;
    cr_assert_eq(run(13, 1, in, 3, &y, &err), QKV_OK, "%s", err.message);
    assert_dims(&y, 2, (int64_t[]){2, 5});
    assert_floats(&y, (float[]){1, 2, 9, 10, 11, 3, 4, 12, 13, 14}, 10);
    kh_free_outputs(&y, 1);
}

Test(concat, a_single_input_is_copied)
{
    qkv_tensor in[1] = {kh_f32(1, (int64_t[]){4}, a22)}, y;
    qkv_error err;
    cr_assert_eq(run(13, 0, in, 1, &y, &err), QKV_OK, "%s", err.message);
    assert_floats(&y, a22, 4);
    kh_free_outputs(&y, 1);
}

Test(concat, opset1_defaults_axis_to_1_and_opset4_requires_it)
{
    qkv_tensor in[2] = {kh_f32(2, (int64_t[]){2, 2}, a22), kh_f32(2, (int64_t[]){2, 2}, b22)}, y;
    qkv_error err;
    kh_node *n = kh_node_create("Concat", 1, 2, 1);
    cr_assert_eq(kh_run(n, in, &y, &err), QKV_OK, "%s", err.message);
    assert_dims(&y, 2, (int64_t[]){2, 4});
    kh_free_outputs(&y, 1);
    kh_node_destroy(n);
    n = kh_node_create("Concat", 4, 2, 1);
    cr_assert_eq(kh_run(n, in, &y, &err), QKV_ERR_INVALID_MODEL);
    cr_assert(strstr(err.message, "node 'test_node' (Concat-1): attribute 'axis' is required"),
              "%s", err.message);
    kh_node_destroy(n);
}

Test(concat, refuses_a_rank_mismatch)
{
    qkv_tensor in[2] = {kh_f32(2, (int64_t[]){2, 2}, a22), kh_f32(1, (int64_t[]){4}, b22)}, y;
    qkv_error err;
    cr_assert_eq(run(13, 0, in, 2, &y, &err), QKV_ERR_SHAPE);
    cr_assert(strstr(err.message, "node 'test_node' (Concat-1): input 1 has rank 1, input 0 has "
                                  "rank 2"),
              "%s", err.message);
}

Test(concat, refuses_dims_that_differ_off_the_axis)
{
    qkv_tensor in[2] = {kh_f32(2, (int64_t[]){2, 2}, a22), kh_f32(2, (int64_t[]){1, 4}, b22)}, y;
    qkv_error err;
    cr_assert_eq(run(13, 1, in, 2, &y, &err), QKV_ERR_SHAPE);
    cr_assert(strstr(err.message, "input 1 has shape [1,4], input 0 has [2,2]: they differ on "
                                  "axis 0, not only on the concat axis 1"),
              "%s", err.message);
}

Test(concat, refuses_an_axis_out_of_range_and_scalars)
{
    qkv_tensor in[2] = {kh_f32(2, (int64_t[]){2, 2}, a22), kh_f32(2, (int64_t[]){2, 2}, b22)}, y;
    qkv_error err;
    cr_assert_eq(run(13, 2, in, 2, &y, &err), QKV_ERR_SHAPE);
    cr_assert(strstr(err.message, "axis 2 is out of range for inputs of rank 2"), "%s",
              err.message);
    qkv_tensor s[2] = {kh_f32(0, NULL, a22), kh_f32(0, NULL, b22)};
    cr_assert_eq(run(13, 0, s, 2, &y, &err), QKV_ERR_SHAPE);
    cr_assert(strstr(err.message, "input 0 is a scalar"), "%s", err.message);
}

Test(concat, refuses_mixed_types)
{
    int64_t b[4] = {5, 6, 7, 8};
    qkv_tensor in[2] = {kh_f32(1, (int64_t[]){4}, a22), kh_i64(1, (int64_t[]){4}, b)}, y;
    qkv_error err;
    cr_assert_eq(run(13, 0, in, 2, &y, &err), QKV_ERR_TYPE);
    cr_assert(strstr(err.message, "input 1 has type int64, input 0 has float32"), "%s",
              err.message);
}

Test(concat, large_concat_on_threads_matches_a_plain_loop)
{
    /* (3000, 40) ++ (3000, 25) on axis 1: 762 KiB, parallel over rows in
     * runs of QKV_PARALLEL_MIN_CHUNK_BYTES or more */
    enum { R = 3000, A = 40, B = 25 };
    float *a = malloc(sizeof(float) * R * A), *b = malloc(sizeof(float) * R * B);
    for (int i = 0; i < R * A; i++)
        a[i] = (float)i;
    for (int i = 0; i < R * B; i++)
        b[i] = (float)-i;
    qkv_tensor in[2] = {kh_f32(2, (int64_t[]){R, A}, a), kh_f32(2, (int64_t[]){R, B}, b)}, y;
    qkv_error err;
    kh_node *n = kh_node_create("Concat", 13, 2, 1);
    kh_attr_int(n, "axis", 1);
    kh_set_threads(n, 4);
    cr_assert_eq(kh_run(n, in, &y, &err), QKV_OK, "%s", err.message);
    const float *got = y.data;
    for (int r = 0; r < R; r++)
        for (int c = 0; c < A + B; c++)
            cr_assert_eq(got[r * (A + B) + c], c < A ? a[r * A + c] : b[r * B + c - A], "(%d,%d)",
                         r, c);
    kh_free_outputs(&y, 1);
    kh_node_destroy(n);
    free(a);
    free(b);
}
