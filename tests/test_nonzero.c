/* NonZero: coordinates of non-zero elements; data-dependent shape inference. */
#include <criterion/criterion.h>
#include <string.h>

#include "kernel_harness.h"

Test(nonzero, lists_coordinates_in_row_major_order)
{
    uint8_t c[4] = {1, 0, 1, 1};
    qkv_tensor x = kh_tensor(QKV_DTYPE_BOOL, 2, (int64_t[]){2, 2}, c), y;
    qkv_error err;
    kh_node *n = kh_node_create("NonZero", 13, 1, 1);
    cr_assert_eq(kh_run(n, &x, &y, &err), QKV_OK, "%s", err.message);
    cr_assert_eq(y.dtype, QKV_DTYPE_INT64);
    cr_assert_eq(y.rank, 2);
    cr_assert_eq(y.dims[0], 2);
    cr_assert_eq(y.dims[1], 3);
    int64_t want[6] = {0, 1, 1, 0, 0, 1};
    for (int i = 0; i < 6; i++)
        cr_assert_eq(((int64_t *)y.data)[i], want[i], "[%d]", i);
    kh_free_outputs(&y, 1);
    kh_node_destroy(n);
}

Test(nonzero, floats_count_nan_but_not_negative_zero)
{
    float v[5] = {0.0f, -0.0f, __builtin_nanf(""), 2.5f, 0.0f};
    qkv_tensor x = kh_f32(1, (int64_t[]){5}, v), y;
    qkv_error err;
    kh_node *n = kh_node_create("NonZero", 13, 1, 1);
    cr_assert_eq(kh_run(n, &x, &y, &err), QKV_OK, "%s", err.message);
    cr_assert_eq(y.dims[0], 1);
    cr_assert_eq(y.dims[1], 2);
    cr_assert_eq(((int64_t *)y.data)[0], 2);
    cr_assert_eq(((int64_t *)y.data)[1], 3);
    kh_free_outputs(&y, 1);
    kh_node_destroy(n);
}

Test(nonzero, all_zero_input_gives_empty_output)
{
    int32_t v[6] = {0};
    qkv_tensor x = kh_tensor(QKV_DTYPE_INT32, 3, (int64_t[]){1, 2, 3}, v), y;
    qkv_error err;
    kh_node *n = kh_node_create("NonZero", 9, 1, 1);
    kh_hide_input_values(n);
    cr_assert_eq(kh_run(n, &x, &y, &err), QKV_OK, "%s", err.message);
    cr_assert_eq(y.rank, 2);
    cr_assert_eq(y.dims[0], 3);
    cr_assert_eq(y.dims[1], 0);
    kh_free_outputs(&y, 1);
    kh_node_destroy(n);
}

Test(nonzero, int64_and_float16_inputs)
{
    int64_t v[4] = {0, -5, 0, 1ll << 40};
    uint16_t h[3] = {0x8000u /* -0 */, 0x3c00u /* 1 */, 0x0001u /* subnormal */};
    qkv_tensor x = kh_i64(1, (int64_t[]){4}, v), y;
    qkv_error err;
    kh_node *n = kh_node_create("NonZero", 13, 1, 1);
    cr_assert_eq(kh_run(n, &x, &y, &err), QKV_OK, "%s", err.message);
    cr_assert_eq(y.dims[1], 2);
    cr_assert_eq(((int64_t *)y.data)[1], 3);
    kh_free_outputs(&y, 1);
    x = kh_tensor(QKV_DTYPE_FLOAT16, 1, (int64_t[]){3}, h);
    cr_assert_eq(kh_run(n, &x, &y, &err), QKV_OK, "%s", err.message);
    cr_assert_eq(y.dims[1], 2);
    cr_assert_eq(((int64_t *)y.data)[0], 1);
    kh_free_outputs(&y, 1);
    kh_node_destroy(n);
}

Test(nonzero, scalar_input_has_zero_rows)
{
    float v = 3;
    qkv_tensor x = kh_f32(0, NULL, &v), y;
    qkv_error err;
    kh_node *n = kh_node_create("NonZero", 13, 1, 1);
    cr_assert_eq(kh_run(n, &x, &y, &err), QKV_OK, "%s", err.message);
    cr_assert_eq(y.dims[0], 0);
    cr_assert_eq(y.dims[1], 1);
    kh_free_outputs(&y, 1);
    kh_node_destroy(n);
}

Test(nonzero, infer_without_value_leaves_count_unknown)
{
    qkv_tensor x = kh_tensor(QKV_DTYPE_FLOAT, 2, (int64_t[]){2, 3}, NULL), y;
    qkv_error err;
    kh_node *n = kh_node_create("NonZero", 13, 1, 1);
    cr_assert_eq(kh_infer(n, &x, &y, &err), QKV_OK, "%s", err.message);
    cr_assert_eq(y.dtype, QKV_DTYPE_INT64);
    cr_assert_eq(y.rank, 2);
    cr_assert_eq(y.dims[0], 2);
    cr_assert_eq(y.dims[1], -1);
    x.rank = -1; /* unknown rank: both dims unknown */
    cr_assert_eq(kh_infer(n, &x, &y, &err), QKV_OK, "%s", err.message);
    cr_assert_eq(y.dims[0], -1);
    cr_assert_eq(y.dims[1], -1);
    kh_node_destroy(n);
}

Test(nonzero, infer_with_value_counts)
{
    float v[6] = {0, 1, 0, 2, 0, 3};
    qkv_tensor x = kh_f32(2, (int64_t[]){2, 3}, v), y;
    qkv_error err;
    kh_node *n = kh_node_create("NonZero", 13, 1, 1);
    cr_assert_eq(kh_infer(n, &x, &y, &err), QKV_OK, "%s", err.message);
    cr_assert_eq(y.dims[1], 3);
    kh_node_destroy(n);
}

Test(nonzero, rejects_string_input)
{
    const char *s[1] = {"a"};
    qkv_tensor x = kh_tensor(QKV_DTYPE_STRING, 1, (int64_t[]){1}, s), y;
    qkv_error err;
    kh_node *n = kh_node_create("NonZero", 13, 1, 1);
    cr_assert_eq(kh_run(n, &x, &y, &err), QKV_ERR_TYPE);
    cr_assert(strstr(err.message, "input 0 has type string, not supported"), "%s", err.message);
    kh_node_destroy(n);
}
