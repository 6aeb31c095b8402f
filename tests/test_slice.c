/* Slice (ops/slice.c). Slices copy elements, so comparisons are exact. */
#include <criterion/criterion.h>
#include <stdint.h>
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

/* x (20, 10, 5) with x[i][j][k] = 100 i + 10 j + k (exact in float) */
enum { D0 = 20, D1 = 10, D2 = 5 };
static float x3[D0 * D1 * D2];

static void fill_x3(void)
{
    for (int i = 0; i < D0; i++)
        for (int j = 0; j < D1; j++)
            for (int k = 0; k < D2; k++)
                x3[(i * D1 + j) * D2 + k] = (float)(100 * i + 10 * j + k);
}

/*
 * Slices x3 with n (start, end) pairs; axes/steps NULL to omit those inputs.
 * Then checks y against the reference: for each output element, the input
 * index per axis is start' + i * step' where (start', step') are given per
 * axis of x3 in want_start/want_step, and the dims in want_dims.
 */
static void check_slice(const int64_t *starts, const int64_t *ends, const int64_t *axes,
                        const int64_t *steps, size_t n, const int64_t want_dims[3],
                        const int64_t want_start[3], const int64_t want_step[3])
{
    fill_x3();
    size_t n_in = steps ? 5 : axes ? 4 : 3;
    qkv_tensor in[5] = {kh_f32(3, (int64_t[]){D0, D1, D2}, x3),
                        kh_i64(1, (int64_t[]){(int64_t)n}, (int64_t *)starts),
                        kh_i64(1, (int64_t[]){(int64_t)n}, (int64_t *)ends),
                        kh_i64(1, (int64_t[]){(int64_t)n}, (int64_t *)axes),
                        kh_i64(1, (int64_t[]){(int64_t)n}, (int64_t *)steps)},
               y;
    qkv_error err;
    kh_node *node = kh_node_create("Slice", 13, n_in, 1);
    if (steps && !axes)
        kh_omit_input(node, 3);
    cr_assert_eq(kh_run(node, in, &y, &err), QKV_OK, "%s", err.message);
    assert_dims(&y, 3, want_dims);
    const float *got = y.data;
    for (int64_t i = 0; i < want_dims[0]; i++)
        for (int64_t j = 0; j < want_dims[1]; j++)
            for (int64_t k = 0; k < want_dims[2]; k++) {
                int64_t a = want_start[0] + i * want_step[0], b = want_start[1] + j * want_step[1],
                        c = want_start[2] + k * want_step[2];
                float want = (float)(100 * a + 10 * b + c);
                float have = got[(i * want_dims[1] + j) * want_dims[2] + k];
                cr_assert_eq(have, want, "(%lld,%lld,%lld): %g, expected %g", (long long)i,
                             (long long)j, (long long)k, have, want);
            }
    kh_free_outputs(&y, 1);
    kh_node_destroy(node);
}

Test(slice, takes_ranges_on_the_given_axes)
{
    /* x[0:3, 0:10] */
    check_slice((int64_t[]){0, 0}, (int64_t[]){3, 10}, (int64_t[]){0, 1}, (int64_t[]){1, 1}, 2,
                (int64_t[]){3, 10, 5}, (int64_t[]){0, 0, 0}, (int64_t[]){1, 1, 1});
    /* x[:, :, 3:4] with default axes and steps */
    check_slice((int64_t[]){0, 0, 3}, (int64_t[]){20, 10, 4}, NULL, NULL, 3, (int64_t[]){20, 10, 1},
                (int64_t[]){0, 0, 3}, (int64_t[]){1, 1, 1});
}

Test(slice, negative_ends_and_axes_count_from_the_end)
{
    /* x[:, 0:-1] */
    check_slice((int64_t[]){0}, (int64_t[]){-1}, (int64_t[]){1}, (int64_t[]){1}, 1,
                (int64_t[]){20, 9, 5}, (int64_t[]){0, 0, 0}, (int64_t[]){1, 1, 1});
    /* axes [0, -2, -1] */
    check_slice((int64_t[]){0, 0, 3}, (int64_t[]){20, 10, 4}, (int64_t[]){0, -2, -1}, NULL, 3,
                (int64_t[]){20, 10, 1}, (int64_t[]){0, 0, 3}, (int64_t[]){1, 1, 1});
}

Test(slice, negative_steps_walk_backwards)
{
    /* x[20:0:-1, 10:0:-3, 4:1:-2]: starts clamp to the last element */
    check_slice((int64_t[]){20, 10, 4}, (int64_t[]){0, 0, 1}, (int64_t[]){0, 1, 2},
                (int64_t[]){-1, -3, -2}, 3, (int64_t[]){19, 3, 2}, (int64_t[]){19, 9, 4},
                (int64_t[]){-1, -3, -2});
    /* x[::-1] on axis 2 with INT64 extremes: the whole axis reversed */
    check_slice((int64_t[]){INT64_MAX}, (int64_t[]){INT64_MIN}, (int64_t[]){2}, (int64_t[]){-1}, 1,
                (int64_t[]){20, 10, 5}, (int64_t[]){0, 0, 4}, (int64_t[]){1, 1, -1});
}

Test(slice, positive_steps_skip_elements)
{
    /* x[1:20:7, :, 0:5:2] with axes omitted but steps given */
    check_slice((int64_t[]){1, 0, 0}, (int64_t[]){20, 10, 5}, NULL, (int64_t[]){7, 1, 2}, 3,
                (int64_t[]){3, 10, 3}, (int64_t[]){1, 0, 0}, (int64_t[]){7, 1, 2});
}

Test(slice, out_of_range_starts_and_ends_are_clamped)
{
    /* x[:, 1000:1000] is empty; x[:, 1:1000] is x[:, 1:] */
    check_slice((int64_t[]){1000}, (int64_t[]){1000}, (int64_t[]){1}, (int64_t[]){1}, 1,
                (int64_t[]){20, 0, 5}, (int64_t[]){0, 0, 0}, (int64_t[]){1, 1, 1});
    check_slice((int64_t[]){1}, (int64_t[]){1000}, (int64_t[]){1}, (int64_t[]){1}, 1,
                (int64_t[]){20, 9, 5}, (int64_t[]){0, 1, 0}, (int64_t[]){1, 1, 1});
    check_slice((int64_t[]){-1000, INT64_MIN}, (int64_t[]){INT64_MAX, -3}, (int64_t[]){0, 2}, NULL,
                2, (int64_t[]){20, 10, 2}, (int64_t[]){0, 0, 0}, (int64_t[]){1, 1, 1});
    /* huge steps take one element */
    check_slice((int64_t[]){2}, (int64_t[]){INT64_MAX}, (int64_t[]){0}, (int64_t[]){INT64_MAX}, 1,
                (int64_t[]){1, 10, 5}, (int64_t[]){2, 0, 0}, (int64_t[]){1, 1, 1});
}

Test(slice, refuses_a_zero_step)
{
    fill_x3();
    qkv_tensor in[5] = {kh_f32(3, (int64_t[]){D0, D1, D2}, x3),
                        kh_i64(1, (int64_t[]){1}, (int64_t[]){0}),
                        kh_i64(1, (int64_t[]){1}, (int64_t[]){5}),
                        kh_i64(1, (int64_t[]){1}, (int64_t[]){0}),
                        kh_i64(1, (int64_t[]){1}, (int64_t[]){0})},
               y;
    qkv_error err;
    kh_node *n = kh_node_create("Slice", 13, 5, 1);
    cr_assert_eq(kh_run(n, in, &y, &err), QKV_ERR_SHAPE);
    cr_assert(strstr(err.message, "node 'test_node' (Slice-10): steps[0] is 0"), "%s", err.message);
    kh_node_destroy(n);
}

Test(slice, refuses_repeated_axes_and_lists_of_different_lengths)
{
    fill_x3();
    qkv_tensor in[4] = {kh_f32(3, (int64_t[]){D0, D1, D2}, x3),
                        kh_i64(1, (int64_t[]){2}, (int64_t[]){0, 0}),
                        kh_i64(1, (int64_t[]){2}, (int64_t[]){5, 5}),
                        kh_i64(1, (int64_t[]){2}, (int64_t[]){1, -2})},
               y;
    qkv_error err;
    kh_node *n = kh_node_create("Slice", 13, 4, 1);
    cr_assert_eq(kh_run(n, in, &y, &err), QKV_ERR_SHAPE);
    cr_assert(strstr(err.message, "axes[1] = -2 repeats axis 1"), "%s", err.message);
    in[3] = kh_i64(1, (int64_t[]){1}, (int64_t[]){1});
    cr_assert_eq(kh_run(n, in, &y, &err), QKV_ERR_SHAPE);
    cr_assert(strstr(err.message, "input 3 'axes' has 1 values, input 1 'starts' has 2"), "%s",
              err.message);
    in[3] = kh_i64(1, (int64_t[]){2}, (int64_t[]){1, 3});
    cr_assert_eq(kh_run(n, in, &y, &err), QKV_ERR_SHAPE);
    cr_assert(strstr(err.message, "axes[1] = 3 is out of range for input 0 'data' of rank 3"), "%s",
              err.message);
    kh_node_destroy(n);
}

Test(slice, opset1_reads_attributes)
{
    fill_x3();
    qkv_tensor x = kh_f32(3, (int64_t[]){D0, D1, D2}, x3), y;
    qkv_error err;
    kh_node *n = kh_node_create("Slice", 9, 1, 1);
    kh_attr_ints(n, "starts", (int64_t[]){2, -2}, 2);
    kh_attr_ints(n, "ends", (int64_t[]){4, 1000}, 2);
    kh_attr_ints(n, "axes", (int64_t[]){0, 2}, 2);
    cr_assert_eq(kh_run(n, &x, &y, &err), QKV_OK, "%s", err.message);
    assert_dims(&y, 3, (int64_t[]){2, 10, 2});
    const float *got = y.data;
    cr_assert_eq(got[0], 203.0f);
    cr_assert_eq(got[1], 204.0f);
    cr_assert_eq(got[2 * 10 * 2 - 1], 394.0f);
    kh_free_outputs(&y, 1);
    kh_node_destroy(n);
    n = kh_node_create("Slice", 1, 1, 1);
    kh_attr_ints(n, "starts", (int64_t[]){0}, 1);
    cr_assert_eq(kh_run(n, &x, &y, &err), QKV_ERR_INVALID_MODEL);
    cr_assert(strstr(err.message, "attribute 'ends' is required"), "%s", err.message);
    kh_node_destroy(n);
}

Test(slice, unknown_parameter_values_give_known_rank)
{
    qkv_tensor in[3] = {kh_f32(3, (int64_t[]){D0, D1, D2}, NULL), kh_i64(1, (int64_t[]){1}, NULL),
                        kh_i64(1, (int64_t[]){1}, NULL)},
               y;
    qkv_error err;
    kh_node *n = kh_node_create("Slice", 13, 3, 1);
    cr_assert_eq(kh_infer(n, in, &y, &err), QKV_OK, "%s", err.message);
    cr_assert_eq(y.dtype, QKV_DTYPE_FLOAT);
    assert_dims(&y, 3, (int64_t[]){-1, -1, -1});
    kh_node_destroy(n);
}

Test(slice, unknown_input_dim_gives_unknown_length_on_that_axis_only)
{
    int64_t s[1] = {1}, e[1] = {3};
    qkv_tensor in[3] = {kh_f32(3, (int64_t[]){-1, D1, -1}, NULL), kh_i64(1, (int64_t[]){1}, s),
                        kh_i64(1, (int64_t[]){1}, e)},
               y;
    qkv_error err;
    kh_node *n = kh_node_create("Slice", 13, 3, 1);
    cr_assert_eq(kh_infer(n, in, &y, &err), QKV_OK, "%s", err.message);
    assert_dims(&y, 3, (int64_t[]){-1, D1, -1});
    kh_node_destroy(n);
}

Test(slice, large_strided_slice_on_threads_matches_a_plain_loop)
{
    /* (2048, 70, 9): x[:, 69:0:-2, 1:8:3] on 4 threads (840 KiB out: in
     * three runs of QKV_PARALLEL_MIN_CHUNK_BYTES or more) */
    enum { A = 2048, B = 70, C = 9 };
    float *x = malloc(sizeof(float) * A * B * C);
    for (int i = 0; i < A * B * C; i++)
        x[i] = (float)i;
    qkv_tensor in[5] = {kh_f32(3, (int64_t[]){A, B, C}, x),
                        kh_i64(1, (int64_t[]){2}, (int64_t[]){69, 1}),
                        kh_i64(1, (int64_t[]){2}, (int64_t[]){0, 8}),
                        kh_i64(1, (int64_t[]){2}, (int64_t[]){1, 2}),
                        kh_i64(1, (int64_t[]){2}, (int64_t[]){-2, 3})},
               y;
    qkv_error err;
    kh_node *n = kh_node_create("Slice", 13, 5, 1);
    kh_set_threads(n, 4);
    cr_assert_eq(kh_run(n, in, &y, &err), QKV_OK, "%s", err.message);
    assert_dims(&y, 3, (int64_t[]){A, 35, 3});
    const float *got = y.data;
    for (int a = 0; a < A; a++)
        for (int b = 0; b < 35; b++)
            for (int c = 0; c < 3; c++)
                cr_assert_eq(got[(a * 35 + b) * 3 + c], x[(a * B + 69 - 2 * b) * C + 1 + 3 * c],
                             "(%d,%d,%d)", a, b, c);
    kh_free_outputs(&y, 1);
    kh_node_destroy(n);
    free(x);
}
