/* OneHot: axis placement, negative and out-of-range indices, depth handling. */
#include <criterion/criterion.h>
#include <math.h>
#include <string.h>

#include "kernel_harness.h"

Test(onehot, default_axis_appends_depth_with_int_values)
{
    int64_t ind[3] = {0, 7, 8};
    float depth = 12;
    int32_t vals[2] = {2, 5};
    qkv_tensor in[3] = {kh_i64(1, (int64_t[]){3}, ind), kh_f32(0, NULL, &depth),
                        kh_tensor(QKV_DTYPE_INT32, 1, (int64_t[]){2}, vals)},
               y;
    qkv_error err;
    kh_node *n = kh_node_create("OneHot", 11, 3, 1);
    cr_assert_eq(kh_run(n, in, &y, &err), QKV_OK, "%s", err.message);
    cr_assert_eq(y.dtype, QKV_DTYPE_INT32);
    cr_assert_eq(y.rank, 2);
    cr_assert_eq(y.dims[0], 3);
    cr_assert_eq(y.dims[1], 12);
    for (int r = 0; r < 3; r++)
        for (int d = 0; d < 12; d++)
            cr_assert_eq(((int32_t *)y.data)[r * 12 + d], d == ind[r] ? 5 : 2, "[%d,%d]", r, d);
    kh_free_outputs(&y, 1);
    kh_node_destroy(n);
}

Test(onehot, axis_one_with_float_indices)
{
    /* indices (2, 2), axis 1: out (2, depth, 2), out[i][d][j] = on iff ind[i][j] == d */
    float ind[4] = {1, 9, 2, 4}, depth = 10, vals[2] = {1, 3};
    qkv_tensor in[3] = {kh_f32(2, (int64_t[]){2, 2}, ind), kh_f32(0, NULL, &depth),
                        kh_f32(1, (int64_t[]){2}, vals)},
               y;
    qkv_error err;
    kh_node *n = kh_node_create("OneHot", 11, 3, 1);
    kh_attr_int(n, "axis", 1);
    cr_assert_eq(kh_run(n, in, &y, &err), QKV_OK, "%s", err.message);
    cr_assert_eq(y.dims[0], 2);
    cr_assert_eq(y.dims[1], 10);
    cr_assert_eq(y.dims[2], 2);
    for (int i = 0; i < 2; i++)
        for (int d = 0; d < 10; d++)
            for (int j = 0; j < 2; j++)
                cr_assert_float_eq(((float *)y.data)[(i * 10 + d) * 2 + j],
                                   d == (int)ind[i * 2 + j] ? 3 : 1, 0, "[%d,%d,%d]", i, d, j);
    kh_free_outputs(&y, 1);
    kh_node_destroy(n);
}

Test(onehot, negative_axis_counts_from_the_new_rank)
{
    /* axis -2 on rank-2 indices is axis 1 of the rank-3 output */
    float ind[4] = {1, 9, 2, 4}, depth = 10, vals[2] = {0, 1};
    qkv_tensor in[3] = {kh_f32(2, (int64_t[]){2, 2}, ind), kh_f32(0, NULL, &depth),
                        kh_f32(1, (int64_t[]){2}, vals)},
               y;
    qkv_error err;
    kh_node *n = kh_node_create("OneHot", 11, 3, 1);
    kh_attr_int(n, "axis", -2);
    cr_assert_eq(kh_run(n, in, &y, &err), QKV_OK, "%s", err.message);
    cr_assert_eq(y.dims[1], 10);
    cr_assert_float_eq(((float *)y.data)[(1 * 10 + 4) * 2 + 1], 1, 0);
    kh_free_outputs(&y, 1);
    kh_node_destroy(n);
}

Test(onehot, negative_indices_wrap_and_out_of_range_are_all_off)
{
    int64_t ind[5] = {0, -7, -8, 10, -11};
    int64_t depth = 10;
    float vals[2] = {1, 3};
    qkv_tensor in[3] = {kh_i64(1, (int64_t[]){5}, ind), kh_i64(1, (int64_t[]){1}, &depth),
                        kh_f32(1, (int64_t[]){2}, vals)},
               y;
    qkv_error err;
    kh_node *n = kh_node_create("OneHot", 11, 3, 1);
    kh_attr_int(n, "axis", 1);
    cr_assert_eq(kh_run(n, in, &y, &err), QKV_OK, "%s", err.message);
    int hot[5] = {0, 3, 2, -1, -1};
    for (int r = 0; r < 5; r++)
        for (int d = 0; d < 10; d++)
            cr_assert_float_eq(((float *)y.data)[r * 10 + d], d == hot[r] ? 3 : 1, 0, "[%d,%d]", r,
                               d);
    kh_free_outputs(&y, 1);
    kh_node_destroy(n);
}

Test(onehot, int32_and_double_indices_with_nan_all_off)
{
    int32_t i32[2] = {2, -1};
    double f64[3] = {1.9, NAN, -0.5}; /* truncated: 1, (NaN: none), 0 */
    uint8_t depth = 3;
    int64_t vals[2] = {0, 1};
    qkv_tensor in[3] = {kh_tensor(QKV_DTYPE_INT32, 1, (int64_t[]){2}, i32),
                        kh_tensor(QKV_DTYPE_UINT8, 0, NULL, &depth),
                        kh_i64(1, (int64_t[]){2}, vals)},
               y;
    qkv_error err;
    kh_node *n = kh_node_create("OneHot", 11, 3, 1);
    cr_assert_eq(kh_run(n, in, &y, &err), QKV_OK, "%s", err.message);
    int64_t want[6] = {0, 0, 1, 0, 0, 1};
    for (int i = 0; i < 6; i++)
        cr_assert_eq(((int64_t *)y.data)[i], want[i], "int32 [%d]", i);
    kh_free_outputs(&y, 1);
    in[0] = kh_tensor(QKV_DTYPE_DOUBLE, 1, (int64_t[]){3}, f64);
    cr_assert_eq(kh_run(n, in, &y, &err), QKV_OK, "%s", err.message);
    int64_t want2[9] = {0, 1, 0, 0, 0, 0, 1, 0, 0};
    for (int i = 0; i < 9; i++)
        cr_assert_eq(((int64_t *)y.data)[i], want2[i], "double [%d]", i);
    kh_free_outputs(&y, 1);
    kh_node_destroy(n);
}

Test(onehot, unknown_depth_gives_unknown_dim)
{
    int64_t ind[2] = {0, 1};
    float vals[2] = {0, 1};
    qkv_tensor in[3] = {kh_i64(1, (int64_t[]){2}, ind), kh_tensor(QKV_DTYPE_INT64, 0, NULL, NULL),
                        kh_f32(1, (int64_t[]){2}, vals)},
               y;
    qkv_error err;
    kh_node *n = kh_node_create("OneHot", 11, 3, 1);
    cr_assert_eq(kh_infer(n, in, &y, &err), QKV_OK, "%s", err.message);
    cr_assert_eq(y.rank, 2);
    cr_assert_eq(y.dims[0], 2);
    cr_assert_eq(y.dims[1], -1);
    kh_node_destroy(n);
}

Test(onehot, rejects_non_positive_depth)
{
    int64_t ind[2] = {0, 1}, depth = 0;
    float vals[2] = {0, 1};
    qkv_tensor in[3] = {kh_i64(1, (int64_t[]){2}, ind), kh_i64(0, NULL, &depth),
                        kh_f32(1, (int64_t[]){2}, vals)},
               y;
    qkv_error err;
    kh_node *n = kh_node_create("OneHot", 11, 3, 1);
    cr_assert_eq(kh_run(n, in, &y, &err), QKV_ERR_INVALID_ARGUMENT);
    cr_assert(strstr(err.message, "(OneHot-9): input 1 'depth' is 0, expected > 0"), "%s",
              err.message);
    kh_node_destroy(n);
}

Test(onehot, rejects_values_without_two_elements)
{
    int64_t ind[2] = {0, 1}, depth = 3;
    float vals[3] = {0, 1, 2};
    qkv_tensor in[3] = {kh_i64(1, (int64_t[]){2}, ind), kh_i64(0, NULL, &depth),
                        kh_f32(1, (int64_t[]){3}, vals)},
               y;
    qkv_error err;
    kh_node *n = kh_node_create("OneHot", 11, 3, 1);
    cr_assert_eq(kh_run(n, in, &y, &err), QKV_ERR_SHAPE);
    cr_assert(strstr(err.message, "input 2 'values' has shape [3], expected [2]"), "%s",
              err.message);
    kh_node_destroy(n);
}

Test(onehot, rejects_axis_out_of_range)
{
    int64_t ind[2] = {0, 1}, depth = 3;
    float vals[2] = {0, 1};
    qkv_tensor in[3] = {kh_i64(1, (int64_t[]){2}, ind), kh_i64(0, NULL, &depth),
                        kh_f32(1, (int64_t[]){2}, vals)},
               y;
    qkv_error err;
    kh_node *n = kh_node_create("OneHot", 11, 3, 1);
    kh_attr_int(n, "axis", 2);
    cr_assert_eq(kh_run(n, in, &y, &err), QKV_ERR_SHAPE);
    cr_assert(strstr(err.message, "axis 2 is out of range [-2, 1] for input 0 'indices' of rank 1"),
              "%s", err.message);
    kh_node_destroy(n);
}

Test(onehot, rejects_non_scalar_depth)
{
    int64_t ind[2] = {0, 1}, depth[2] = {3, 3};
    float vals[2] = {0, 1};
    qkv_tensor in[3] = {kh_i64(1, (int64_t[]){2}, ind), kh_i64(1, (int64_t[]){2}, depth),
                        kh_f32(1, (int64_t[]){2}, vals)},
               y;
    qkv_error err;
    kh_node *n = kh_node_create("OneHot", 11, 3, 1);
    cr_assert_eq(kh_run(n, in, &y, &err), QKV_ERR_SHAPE);
    cr_assert(strstr(err.message, "input 1 'depth' has shape [2], expected a scalar"), "%s",
              err.message);
    kh_node_destroy(n);
}
