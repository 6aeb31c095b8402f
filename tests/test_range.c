/* Range (ops/range.c). */
#include <criterion/criterion.h>
#include <stdint.h>
#include <string.h>

#include "kernel_harness.h"

/* Runs Range on three scalars of `dtype` at s, l, d. */
static qkv_status run(qkv_dtype dtype, void *s, void *l, void *d, bool hide, qkv_tensor *y,
                      qkv_error *err)
{
    qkv_tensor in[3] = {kh_tensor(dtype, 0, NULL, s), kh_tensor(dtype, 0, NULL, l),
                        kh_tensor(dtype, 0, NULL, d)};
    kh_node *n = kh_node_create("Range", 11, 3, 1);
    if (hide)
        kh_hide_input_values(n);
    qkv_status st = kh_run(n, in, y, err);
    kh_node_destroy(n);
    return st;
}

Test(range, float_positive_delta)
{
    float s = 1, l = 5, d = 2;
    qkv_tensor y;
    qkv_error err;
    cr_assert_eq(run(QKV_DTYPE_FLOAT, &s, &l, &d, false, &y, &err), QKV_OK, "%s", err.message);
    cr_assert_eq(y.dtype, QKV_DTYPE_FLOAT);
    cr_assert_eq(y.rank, 1);
    cr_assert_eq(y.dims[0], 2);
    cr_assert_eq(((float *)y.data)[0], 1.0f); /* small integers: exact */
    cr_assert_eq(((float *)y.data)[1], 3.0f);
    kh_free_outputs(&y, 1);
}

Test(range, fractional_float_count_rounds_up)
{
    double s = 0, l = 1, d = 0.3;
    qkv_tensor y;
    qkv_error err;
    cr_assert_eq(run(QKV_DTYPE_DOUBLE, &s, &l, &d, false, &y, &err), QKV_OK, "%s", err.message);
    cr_assert_eq(y.dims[0], 4); /* 0, .3, .6, .9 */
    /* start + i * delta in double: the same rounding as the reference */
    cr_assert_eq(((double *)y.data)[3], 3 * 0.3);
    kh_free_outputs(&y, 1);
}

Test(range, int32_negative_delta)
{
    int32_t s = 10, l = 6, d = -3;
    qkv_tensor y;
    qkv_error err;
    cr_assert_eq(run(QKV_DTYPE_INT32, &s, &l, &d, false, &y, &err), QKV_OK, "%s", err.message);
    cr_assert_eq(y.dtype, QKV_DTYPE_INT32);
    cr_assert_eq(y.dims[0], 2);
    cr_assert_eq(((int32_t *)y.data)[0], 10);
    cr_assert_eq(((int32_t *)y.data)[1], 7);
    kh_free_outputs(&y, 1);
}

Test(range, int16_values)
{
    int16_t s = -3, l = 3, d = 2;
    qkv_tensor y;
    qkv_error err;
    cr_assert_eq(run(QKV_DTYPE_INT16, &s, &l, &d, false, &y, &err), QKV_OK, "%s", err.message);
    cr_assert_eq(y.dims[0], 3);
    cr_assert_eq(((int16_t *)y.data)[0], -3);
    cr_assert_eq(((int16_t *)y.data)[1], -1);
    cr_assert_eq(((int16_t *)y.data)[2], 1);
    kh_free_outputs(&y, 1);
}

Test(range, int64_counts_exactly_near_the_limits)
{
    int64_t s = INT64_MAX - 5, l = INT64_MAX, d = 2;
    qkv_tensor y;
    qkv_error err;
    cr_assert_eq(run(QKV_DTYPE_INT64, &s, &l, &d, false, &y, &err), QKV_OK, "%s", err.message);
    cr_assert_eq(y.dims[0], 3);
    cr_assert_eq(((int64_t *)y.data)[2], INT64_MAX - 1);
    kh_free_outputs(&y, 1);
    s = INT64_MAX;
    l = INT64_MIN;
    d = INT64_MIN; /* the span overflows int64: 2 elements */
    cr_assert_eq(run(QKV_DTYPE_INT64, &s, &l, &d, false, &y, &err), QKV_OK, "%s", err.message);
    cr_assert_eq(y.dims[0], 2);
    cr_assert_eq(((int64_t *)y.data)[1], -1);
    kh_free_outputs(&y, 1);
}

Test(range, empty_when_the_limit_is_behind)
{
    int64_t s = 5, l = 1, d = 1;
    qkv_tensor y;
    qkv_error err;
    cr_assert_eq(run(QKV_DTYPE_INT64, &s, &l, &d, false, &y, &err), QKV_OK, "%s", err.message);
    cr_assert_eq(y.dims[0], 0);
    kh_free_outputs(&y, 1);
}

Test(range, refuses_a_zero_delta)
{
    int64_t s = 0, l = 5, d = 0;
    qkv_tensor y;
    qkv_error err;
    cr_assert_eq(run(QKV_DTYPE_INT64, &s, &l, &d, false, &y, &err), QKV_ERR_INVALID_ARGUMENT);
    cr_assert(strstr(err.message, "node 'test_node' (Range-11): input 2 'delta' is 0"), "%s",
              err.message);
    float fs = 0, fl = 1, fd = 0;
    cr_assert_eq(run(QKV_DTYPE_FLOAT, &fs, &fl, &fd, false, &y, &err), QKV_ERR_INVALID_ARGUMENT);
    cr_assert(strstr(err.message, "input 2 'delta' is 0"), "%s", err.message);
}

Test(range, refuses_mixed_types_and_non_scalars)
{
    int64_t s = 0, l = 5;
    int32_t d = 1;
    qkv_tensor in[3] = {kh_i64(0, NULL, &s), kh_i64(0, NULL, &l),
                        kh_tensor(QKV_DTYPE_INT32, 0, NULL, &d)},
               y;
    qkv_error err;
    kh_node *n = kh_node_create("Range", 11, 3, 1);
    cr_assert_eq(kh_run(n, in, &y, &err), QKV_ERR_TYPE);
    cr_assert(strstr(err.message, "input 2 'delta' has type int32, input 0 'start' has int64"),
              "%s", err.message);
    int64_t two[2] = {1, 2};
    in[2] = kh_i64(1, (int64_t[]){2}, two);
    cr_assert_eq(kh_run(n, in, &y, &err), QKV_ERR_SHAPE);
    cr_assert(strstr(err.message, "input 2 'delta' must be a scalar"), "%s", err.message);
    kh_node_destroy(n);
}

Test(range, unknown_values_give_unknown_length)
{
    qkv_tensor in[3] = {kh_i64(0, NULL, NULL), kh_i64(0, NULL, NULL), kh_i64(0, NULL, NULL)}, y;
    qkv_error err;
    kh_node *n = kh_node_create("Range", 11, 3, 1);
    cr_assert_eq(kh_infer(n, in, &y, &err), QKV_OK, "%s", err.message);
    cr_assert_eq(y.dtype, QKV_DTYPE_INT64);
    cr_assert_eq(y.rank, 1);
    cr_assert_eq(y.dims[0], -1);
    kh_node_destroy(n);
}

Test(range, runs_with_values_hidden_from_infer)
{
    int64_t s = 0, l = 4, d = 1;
    qkv_tensor y;
    qkv_error err;
    cr_assert_eq(run(QKV_DTYPE_INT64, &s, &l, &d, true, &y, &err), QKV_OK, "%s", err.message);
    cr_assert_eq(y.dims[0], 4);
    for (int i = 0; i < 4; i++)
        cr_assert_eq(((int64_t *)y.data)[i], i);
    kh_free_outputs(&y, 1);
}
