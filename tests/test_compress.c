/* Compress: along an axis (negative too), flattened, short conditions,
 * data-dependent shapes and errors. */
#include <criterion/criterion.h>
#include <string.h>

#include "kernel_harness.h"

static float x32[6] = {1, 2, 3, 4, 5, 6}; /* (3, 2) */

static qkv_status run(int64_t opset, const int64_t *axis, uint8_t *cond, int64_t nc, bool hide,
                      qkv_tensor *y, qkv_error *err)
{
    qkv_tensor in[2] = {kh_f32(2, (int64_t[]){3, 2}, x32),
                        kh_tensor(QKV_DTYPE_BOOL, 1, (int64_t[]){nc}, cond)};
    kh_node *n = kh_node_create("Compress", opset, 2, 1);
    if (axis)
        kh_attr_int(n, "axis", *axis);
    if (hide)
        kh_hide_input_values(n);
    qkv_status st = kh_run(n, in, y, err);
    kh_node_destroy(n);
    return st;
}

Test(compress, selects_rows_along_axis_0)
{
    uint8_t c[3] = {0, 1, 1};
    qkv_tensor y;
    qkv_error err;
    cr_assert_eq(run(11, (int64_t[]){0}, c, 3, true, &y, &err), QKV_OK, "%s", err.message);
    cr_assert_eq(y.rank, 2);
    cr_assert_eq(y.dims[0], 2);
    cr_assert_eq(y.dims[1], 2);
    float want[4] = {3, 4, 5, 6};
    cr_assert_arr_eq(y.data, want, sizeof want);
    kh_free_outputs(&y, 1);
}

Test(compress, negative_axis_and_short_condition)
{
    uint8_t c[1] = {1}; /* shorter than the 2 columns: column 1 dropped */
    qkv_tensor y;
    qkv_error err;
    cr_assert_eq(run(11, (int64_t[]){-1}, c, 1, false, &y, &err), QKV_OK, "%s", err.message);
    cr_assert_eq(y.dims[0], 3);
    cr_assert_eq(y.dims[1], 1);
    float want[3] = {1, 3, 5};
    cr_assert_arr_eq(y.data, want, sizeof want);
    kh_free_outputs(&y, 1);
}

Test(compress, without_axis_flattens)
{
    uint8_t c[5] = {0, 1, 0, 0, 1};
    qkv_tensor y;
    qkv_error err;
    cr_assert_eq(run(9, NULL, c, 5, true, &y, &err), QKV_OK, "%s", err.message);
    cr_assert_eq(y.rank, 1);
    cr_assert_eq(y.dims[0], 2);
    float want[2] = {2, 5};
    cr_assert_arr_eq(y.data, want, sizeof want);
    kh_free_outputs(&y, 1);
}

Test(compress, unknown_condition_leaves_the_count_unknown)
{
    qkv_tensor in[2] = {kh_f32(2, (int64_t[]){3, 2}, NULL),
                        kh_tensor(QKV_DTYPE_BOOL, 1, (int64_t[]){3}, NULL)},
               y;
    qkv_error err;
    kh_node *n = kh_node_create("Compress", 11, 2, 1);
    kh_attr_int(n, "axis", 0);
    cr_assert_eq(kh_infer(n, in, &y, &err), QKV_OK, "%s", err.message);
    cr_assert_eq(y.rank, 2);
    cr_assert_eq(y.dims[0], -1);
    cr_assert_eq(y.dims[1], 2);
    kh_node_destroy(n);
}

Test(compress, refuses_bad_axis_and_condition_rank)
{
    uint8_t c[3] = {1, 1, 1};
    qkv_tensor y;
    qkv_error err;
    cr_assert_eq(run(11, (int64_t[]){2}, c, 3, false, &y, &err), QKV_ERR_INVALID_MODEL);
    cr_assert(strstr(err.message, "test_node"), "%s", err.message);
    cr_assert(strstr(err.message, "'axis' is 2, out of range"), "%s", err.message);
    cr_assert_eq(run(9, (int64_t[]){-1}, c, 3, false, &y, &err), QKV_ERR_INVALID_MODEL);
    cr_assert(strstr(err.message, "negative axes need opset 11"), "%s", err.message);
    qkv_tensor in[2] = {kh_f32(2, (int64_t[]){3, 2}, x32),
                        kh_tensor(QKV_DTYPE_BOOL, 2, (int64_t[]){1, 3}, c)};
    kh_node *n = kh_node_create("Compress", 11, 2, 1);
    cr_assert_eq(kh_run(n, in, &y, &err), QKV_ERR_SHAPE);
    cr_assert(strstr(err.message, "'condition' has rank 2, expected 1"), "%s", err.message);
    kh_node_destroy(n);
}
