/* EyeLike: diagonals k, the dtype attribute, shapes and errors. */
#include <criterion/criterion.h>
#include <string.h>

#include "kernel_harness.h"

/* Runs EyeLike on an (r, c) float input with attribute k (and dtype when > 0). */
static qkv_status eye(int64_t r, int64_t c, int64_t k, int64_t dtype, qkv_tensor *y, qkv_error *err)
{
    float buf[64] = {0};
    qkv_tensor x = kh_f32(2, (int64_t[]){r, c}, buf);
    kh_node *n = kh_node_create("EyeLike", 9, 1, 1);
    kh_attr_int(n, "k", k);
    if (dtype > 0)
        kh_attr_int(n, "dtype", dtype);
    qkv_status st = kh_run(n, &x, y, err);
    kh_node_destroy(n);
    return st;
}

Test(eyelike, ones_on_each_diagonal_of_a_rectangle)
{
    for (int64_t k = -4; k <= 5; k++) {
        qkv_tensor y;
        qkv_error err;
        cr_assert_eq(eye(3, 4, k, 0, &y, &err), QKV_OK, "%s", err.message);
        cr_assert_eq(y.dtype, QKV_DTYPE_FLOAT);
        cr_assert_eq(y.dims[0], 3);
        cr_assert_eq(y.dims[1], 4);
        for (int i = 0; i < 3; i++)
            for (int j = 0; j < 4; j++)
                cr_assert_float_eq(((float *)y.data)[i * 4 + j], j - i == k ? 1.0f : 0.0f, 0,
                                   "k %lld [%d,%d]", (long long)k, i, j);
        kh_free_outputs(&y, 1);
    }
}

Test(eyelike, dtype_attribute_sets_the_output_type)
{
    qkv_tensor y;
    qkv_error err;
    cr_assert_eq(eye(2, 2, 0, QKV_DTYPE_INT32, &y, &err), QKV_OK, "%s", err.message);
    cr_assert_eq(y.dtype, QKV_DTYPE_INT32);
    int32_t want[4] = {1, 0, 0, 1};
    cr_assert_arr_eq(y.data, want, sizeof want);
    kh_free_outputs(&y, 1);
    cr_assert_eq(eye(2, 3, 1, QKV_DTYPE_FLOAT16, &y, &err), QKV_OK, "%s", err.message);
    uint16_t hwant[6] = {0, 0x3c00u, 0, 0, 0, 0x3c00u};
    cr_assert_arr_eq(y.data, hwant, sizeof hwant);
    kh_free_outputs(&y, 1);
    cr_assert_eq(eye(2, 2, 0, QKV_DTYPE_BOOL, &y, &err), QKV_OK, "%s", err.message);
    uint8_t bwant[4] = {1, 0, 0, 1};
    cr_assert_arr_eq(y.data, bwant, sizeof bwant);
    kh_free_outputs(&y, 1);
}

Test(eyelike, extreme_k_gives_zeros)
{
    qkv_tensor y;
    qkv_error err;
    cr_assert_eq(eye(2, 2, INT64_MIN, 0, &y, &err), QKV_OK, "%s", err.message);
    for (int i = 0; i < 4; i++)
        cr_assert_float_eq(((float *)y.data)[i], 0.0f, 0);
    kh_free_outputs(&y, 1);
}

Test(eyelike, refuses_rank_other_than_2)
{
    float v[3] = {0};
    qkv_tensor x = kh_f32(1, (int64_t[]){3}, v), y;
    qkv_error err;
    kh_node *n = kh_node_create("EyeLike", 9, 1, 1);
    cr_assert_eq(kh_run(n, &x, &y, &err), QKV_ERR_SHAPE);
    cr_assert(strstr(err.message, "test_node"), "%s", err.message);
    cr_assert(strstr(err.message, "rank 1, expected 2"), "%s", err.message);
    kh_node_destroy(n);
}

Test(eyelike, refuses_a_string_dtype)
{
    qkv_tensor y;
    qkv_error err;
    cr_assert_eq(eye(2, 2, 0, QKV_DTYPE_STRING, &y, &err), QKV_ERR_INVALID_MODEL);
    cr_assert(strstr(err.message, "'dtype' is 8"), "%s", err.message);
}

Test(eyelike, empty_matrix)
{
    qkv_tensor y;
    qkv_error err;
    cr_assert_eq(eye(0, 3, 0, 0, &y, &err), QKV_OK, "%s", err.message);
    cr_assert_eq(y.dims[0], 0);
    cr_assert_eq(y.dims[1], 3);
    kh_free_outputs(&y, 1);
}
