/* Gather, GatherElements (ops/gather.c). Gathers copy elements, so every
 * comparison is exact. */
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

/* Runs `op` at opset 13 with `axis` on (data, indices). */
static qkv_status run(const char *op, int64_t axis, qkv_tensor data, qkv_tensor indices,
                      qkv_tensor *y, qkv_error *err)
{
    qkv_tensor in[2] = {data, indices};
    kh_node *n = kh_node_create(op, 13, 2, 1);
    kh_attr_int(n, "axis", axis);
    qkv_status st = kh_run(n, in, y, err);
    kh_node_destroy(n);
    return st;
}

/* x[i][j] = 10 i + j for a (rows, 4) matrix */
static float mat[5 * 4];
static void fill_mat(void)
{
    for (int i = 0; i < 5; i++)
        for (int j = 0; j < 4; j++)
            mat[i * 4 + j] = (float)(10 * i + j);
}

Test(gather, takes_rows_along_axis_0)
{
    fill_mat();
    qkv_tensor y;
    qkv_error err;
    cr_assert_eq(run("Gather", 0, kh_f32(2, (int64_t[]){5, 4}, mat),
                     kh_i64(1, (int64_t[]){3}, (int64_t[]){0, 3, 3}), &y, &err),
                 QKV_OK, "%s", err.message);
    assert_dims(&y, 2, (int64_t[]){3, 4});
    assert_floats(&y, (float[]){0, 1, 2, 3, 30, 31, 32, 33, 30, 31, 32, 33}, 12);
    kh_free_outputs(&y, 1);
}

Test(gather, two_d_indices_along_axis_1_insert_their_dims)
{
    fill_mat();
    qkv_tensor y;
    qkv_error err;
    cr_assert_eq(run("Gather", 1, kh_f32(2, (int64_t[]){3, 4}, mat),
                     kh_i64(2, (int64_t[]){1, 2}, (int64_t[]){0, 2}), &y, &err),
                 QKV_OK, "%s", err.message);
    assert_dims(&y, 3, (int64_t[]){3, 1, 2});
    assert_floats(&y, (float[]){0, 2, 10, 12, 20, 22}, 6);
    kh_free_outputs(&y, 1);
}

Test(gather, scalar_index_drops_the_axis)
{
    fill_mat();
    qkv_tensor y;
    qkv_error err;
    cr_assert_eq(run("Gather", -1, kh_f32(2, (int64_t[]){5, 4}, mat),
                     kh_i64(0, NULL, (int64_t[]){2}), &y, &err),
                 QKV_OK, "%s", err.message);
    assert_dims(&y, 1, (int64_t[]){5});
    assert_floats(&y, (float[]){2, 12, 22, 32, 42}, 5);
    kh_free_outputs(&y, 1);
}

Test(gather, negative_indices_count_from_the_end)
{
    float x[10];
    for (int i = 0; i < 10; i++)
        x[i] = (float)i;
    qkv_tensor y;
    qkv_error err;
    cr_assert_eq(run("Gather", 0, kh_f32(1, (int64_t[]){10}, x),
                     kh_i64(1, (int64_t[]){3}, (int64_t[]){0, -9, -10}), &y, &err),
                 QKV_OK, "%s", err.message);
    assert_floats(&y, (float[]){0, 1, 0}, 3);
    kh_free_outputs(&y, 1);
}

Test(gather, int32_indices_and_int64_data)
{
    int64_t x[4] = {100, 200, 300, 400};
    int32_t idx[2] = {3, -4};
    qkv_tensor y;
    qkv_error err;
    cr_assert_eq(run("Gather", 0, kh_i64(1, (int64_t[]){4}, x),
                     kh_tensor(QKV_DTYPE_INT32, 1, (int64_t[]){2}, idx), &y, &err),
                 QKV_OK, "%s", err.message);
    cr_assert_eq(y.dtype, QKV_DTYPE_INT64);
    cr_assert_eq(((int64_t *)y.data)[0], 400);
    cr_assert_eq(((int64_t *)y.data)[1], 100);
    kh_free_outputs(&y, 1);
}

Test(gather, index_out_of_range_is_an_error_naming_it)
{
    fill_mat();
    qkv_tensor y;
    qkv_error err;
    cr_assert_eq(run("Gather", 0, kh_f32(2, (int64_t[]){5, 4}, mat),
                     kh_i64(2, (int64_t[]){2, 2}, (int64_t[]){0, 1, 2, 5}), &y, &err),
                 QKV_ERR_INVALID_ARGUMENT);
    cr_assert(strstr(err.message, "node 'test_node' (Gather-1): input 1 'indices'[1,1] = 5 is "
                                  "out of range [-5, 5) for axis 0 of input 0 'data' (size 5)"),
              "%s", err.message);
    cr_assert_eq(run("Gather", 1, kh_f32(2, (int64_t[]){5, 4}, mat),
                     kh_i64(1, (int64_t[]){1}, (int64_t[]){-5}), &y, &err),
                 QKV_ERR_INVALID_ARGUMENT);
    cr_assert(strstr(err.message, "input 1 'indices'[0] = -5 is out of range [-4, 4)"), "%s",
              err.message);
}

Test(gather, refuses_an_axis_out_of_range_and_scalar_data)
{
    fill_mat();
    qkv_tensor y;
    qkv_error err;
    cr_assert_eq(run("Gather", 2, kh_f32(2, (int64_t[]){5, 4}, mat),
                     kh_i64(1, (int64_t[]){1}, (int64_t[]){0}), &y, &err),
                 QKV_ERR_SHAPE);
    cr_assert(strstr(err.message, "axis 2 is out of range for input 0 'data' of rank 2"), "%s",
              err.message);
    cr_assert_eq(
        run("Gather", 0, kh_f32(0, NULL, mat), kh_i64(1, (int64_t[]){1}, (int64_t[]){0}), &y, &err),
        QKV_ERR_SHAPE);
    cr_assert(strstr(err.message, "input 0 'data' has rank 0, expected >= 1"), "%s", err.message);
}

Test(gather, large_gather_on_threads_matches_a_plain_loop)
{
    /* (6, 300, 17) data gathered on axis 1 with 200 indices: > 64 KiB, so parallel */
    enum { A = 6, B = 300, C = 17, N = 200 };
    float *x = malloc(sizeof(float) * A * B * C);
    int64_t idx[N];
    for (int i = 0; i < A * B * C; i++)
        x[i] = (float)i;
    for (int i = 0; i < N; i++)
        idx[i] = (i * 37) % B - (i % 3 == 0 ? B : 0);
    qkv_tensor in[2] = {kh_f32(3, (int64_t[]){A, B, C}, x), kh_i64(1, (int64_t[]){N}, idx)}, y;
    qkv_error err;
    kh_node *n = kh_node_create("Gather", 13, 2, 1);
    kh_attr_int(n, "axis", 1);
    kh_set_threads(n, 4);
    cr_assert_eq(kh_run(n, in, &y, &err), QKV_OK, "%s", err.message);
    assert_dims(&y, 3, (int64_t[]){A, N, C});
    const float *got = y.data;
    for (int a = 0; a < A; a++)
        for (int i = 0; i < N; i++) {
            int64_t v = idx[i] < 0 ? idx[i] + B : idx[i];
            for (int c = 0; c < C; c++)
                cr_assert_eq(got[(a * N + i) * C + c], x[(a * B + v) * C + c], "(%d,%d,%d)", a, i,
                             c);
        }
    kh_free_outputs(&y, 1);
    kh_node_destroy(n);
    free(x);
}

Test(gather, runs_with_values_hidden_from_infer)
{
    fill_mat();
    qkv_tensor in[2] = {kh_f32(2, (int64_t[]){5, 4}, mat),
                        kh_i64(1, (int64_t[]){2}, (int64_t[]){4, 1})},
               y;
    qkv_error err;
    kh_node *n = kh_node_create("Gather", 11, 2, 1);
    kh_hide_input_values(n);
    cr_assert_eq(kh_run(n, in, &y, &err), QKV_OK, "%s", err.message);
    assert_dims(&y, 2, (int64_t[]){2, 4});
    assert_floats(&y, (float[]){40, 41, 42, 43, 10, 11, 12, 13}, 8);
    kh_free_outputs(&y, 1);
    kh_node_destroy(n);
}

/* ---- GatherElements ---- */

Test(gather_elements, picks_along_axis_1)
{
    qkv_tensor y;
    qkv_error err;
    cr_assert_eq(run("GatherElements", 1, kh_f32(2, (int64_t[]){2, 2}, (float[]){1, 2, 3, 4}),
                     kh_i64(2, (int64_t[]){2, 2}, (int64_t[]){0, 0, 1, 0}), &y, &err),
                 QKV_OK, "%s", err.message);
    assert_dims(&y, 2, (int64_t[]){2, 2});
    assert_floats(&y, (float[]){1, 1, 4, 3}, 4);
    kh_free_outputs(&y, 1);
}

Test(gather_elements, picks_along_axis_0_with_negative_indices)
{
    float x[9] = {1, 2, 3, 4, 5, 6, 7, 8, 9};
    qkv_tensor y;
    qkv_error err;
    cr_assert_eq(run("GatherElements", 0, kh_f32(2, (int64_t[]){3, 3}, x),
                     kh_i64(2, (int64_t[]){2, 3}, (int64_t[]){1, 2, 0, 2, 0, 0}), &y, &err),
                 QKV_OK, "%s", err.message);
    assert_dims(&y, 2, (int64_t[]){2, 3});
    assert_floats(&y, (float[]){4, 8, 3, 7, 2, 3}, 6);
    kh_free_outputs(&y, 1);
    cr_assert_eq(run("GatherElements", 0, kh_f32(2, (int64_t[]){3, 3}, x),
                     kh_i64(2, (int64_t[]){2, 3}, (int64_t[]){-1, -2, 0, -2, 0, 0}), &y, &err),
                 QKV_OK, "%s", err.message);
    assert_floats(&y, (float[]){7, 5, 3, 4, 2, 3}, 6);
    kh_free_outputs(&y, 1);
}

Test(gather_elements, index_out_of_range_is_an_error)
{
    qkv_tensor y;
    qkv_error err;
    cr_assert_eq(run("GatherElements", 1, kh_f32(2, (int64_t[]){2, 2}, (float[]){1, 2, 3, 4}),
                     kh_i64(2, (int64_t[]){2, 2}, (int64_t[]){0, 0, 2, 0}), &y, &err),
                 QKV_ERR_INVALID_ARGUMENT);
    cr_assert(strstr(err.message, "input 1 'indices'[1,0] = 2 is out of range [-2, 2)"), "%s",
              err.message);
}

Test(gather_elements, refuses_indices_larger_than_data_off_the_axis)
{
    qkv_tensor y;
    qkv_error err;
    cr_assert_eq(run("GatherElements", 1, kh_f32(2, (int64_t[]){2, 2}, (float[]){1, 2, 3, 4}),
                     kh_i64(2, (int64_t[]){3, 1}, (int64_t[]){0, 0, 0}), &y, &err),
                 QKV_ERR_SHAPE);
    cr_assert(strstr(err.message, "input 1 'indices' has dim 0 of size 3, larger than"), "%s",
              err.message);
}

/* ---- GatherND ---- */

static float cube[8] = {0, 1, 2, 3, 4, 5, 6, 7}; /* (2, 2, 2) */

Test(gather_nd, full_index_rows_pick_elements)
{
    qkv_tensor in[2] = {kh_f32(2, (int64_t[]){2, 2}, cube),
                        kh_i64(2, (int64_t[]){2, 2}, (int64_t[]){0, 0, 1, 1})},
               y;
    qkv_error err;
    kh_node *n = kh_node_create("GatherND", 13, 2, 1);
    cr_assert_eq(kh_run(n, in, &y, &err), QKV_OK, "%s", err.message);
    assert_dims(&y, 1, (int64_t[]){2});
    assert_floats(&y, (float[]){0, 3}, 2);
    kh_free_outputs(&y, 1);
    kh_node_destroy(n);
}

Test(gather_nd, partial_index_rows_pick_slices)
{
    qkv_tensor in[2] = {kh_f32(3, (int64_t[]){2, 2, 2}, cube),
                        kh_i64(3, (int64_t[]){2, 1, 2}, (int64_t[]){0, 1, -1, 0})},
               y;
    qkv_error err;
    kh_node *n = kh_node_create("GatherND", 12, 2, 1);
    cr_assert_eq(kh_run(n, in, &y, &err), QKV_OK, "%s", err.message);
    assert_dims(&y, 3, (int64_t[]){2, 1, 2});
    assert_floats(&y, (float[]){2, 3, 4, 5}, 4);
    kh_free_outputs(&y, 1);
    kh_node_destroy(n);
}

Test(gather_nd, batch_dims_index_within_each_batch)
{
    qkv_tensor in[2] = {kh_f32(3, (int64_t[]){2, 2, 2}, cube),
                        kh_i64(2, (int64_t[]){2, 1}, (int64_t[]){1, 0})},
               y;
    qkv_error err;
    kh_node *n = kh_node_create("GatherND", 13, 2, 1);
    kh_attr_int(n, "batch_dims", 1);
    cr_assert_eq(kh_run(n, in, &y, &err), QKV_OK, "%s", err.message);
    assert_dims(&y, 2, (int64_t[]){2, 2});
    assert_floats(&y, (float[]){2, 3, 4, 5}, 4);
    kh_free_outputs(&y, 1);
    kh_node_destroy(n);
}

Test(gather_nd, index_out_of_range_and_too_long_rows_are_errors)
{
    qkv_tensor in[2] = {kh_f32(2, (int64_t[]){2, 2}, cube),
                        kh_i64(2, (int64_t[]){2, 2}, (int64_t[]){0, 0, 1, 2})},
               y;
    qkv_error err;
    kh_node *n = kh_node_create("GatherND", 13, 2, 1);
    cr_assert_eq(kh_run(n, in, &y, &err), QKV_ERR_INVALID_ARGUMENT);
    cr_assert(strstr(err.message, "input 1 'indices'[1,1] = 2 is out of range [-2, 2) for axis 1"),
              "%s", err.message);
    in[1] = kh_i64(2, (int64_t[]){1, 3}, (int64_t[]){0, 0, 0});
    cr_assert_eq(kh_run(n, in, &y, &err), QKV_ERR_SHAPE);
    cr_assert(strstr(err.message, "the last dim of input 1 'indices' is 3, expected 1 to 2"), "%s",
              err.message);
    kh_node_destroy(n);
}
