/* Constant, ConstantOfShape (ops/constant.c). */
#include <criterion/criterion.h>
#include <string.h>

#include "kernel_harness.h"

static void assert_dims(const qkv_tensor *t, int32_t rank, const int64_t *dims)
{
    cr_assert_eq(t->rank, rank, "rank %d, expected %d", t->rank, rank);
    for (int32_t k = 0; k < rank; k++)
        cr_assert_eq(t->dims[k], dims[k], "dim %d is %lld, expected %lld", k, (long long)t->dims[k],
                     (long long)dims[k]);
}

/* ---- Constant ---- */

Test(constant, value_tensor_is_copied_out)
{
    float v[4] = {1.5f, -2, 3, 4.25f};
    qkv_tensor t = kh_f32(2, (int64_t[]){2, 2}, v), y;
    qkv_error err;
    kh_node *n = kh_node_create("Constant", 13, 0, 1);
    kh_attr_tensor(n, "value", &t);
    cr_assert_eq(kh_run(n, NULL, &y, &err), QKV_OK, "%s", err.message);
    cr_assert_eq(y.dtype, QKV_DTYPE_FLOAT);
    assert_dims(&y, 2, (int64_t[]){2, 2});
    for (int i = 0; i < 4; i++) /* a copy: exact */
        cr_assert_eq(((float *)y.data)[i], v[i]);
    kh_free_outputs(&y, 1);
    kh_node_destroy(n);
}

Test(constant, value_tensor_keeps_its_integer_type)
{
    int32_t v[3] = {7, -8, 9};
    qkv_tensor t = kh_tensor(QKV_DTYPE_INT32, 1, (int64_t[]){3}, v), y;
    qkv_error err;
    kh_node *n = kh_node_create("Constant", 1, 0, 1);
    kh_attr_tensor(n, "value", &t);
    cr_assert_eq(kh_run(n, NULL, &y, &err), QKV_OK, "%s", err.message);
    cr_assert_eq(y.dtype, QKV_DTYPE_INT32);
    assert_dims(&y, 1, (int64_t[]){3});
    cr_assert_eq(memcmp(y.data, v, sizeof v), 0);
    kh_free_outputs(&y, 1);
    kh_node_destroy(n);
}

Test(constant, value_float_is_a_float_scalar)
{
    qkv_tensor y;
    qkv_error err;
    kh_node *n = kh_node_create("Constant", 12, 0, 1);
    kh_attr_float(n, "value_float", 2.5f);
    cr_assert_eq(kh_run(n, NULL, &y, &err), QKV_OK, "%s", err.message);
    cr_assert_eq(y.dtype, QKV_DTYPE_FLOAT);
    cr_assert_eq(y.rank, 0);
    cr_assert_eq(*(float *)y.data, 2.5f);
    kh_free_outputs(&y, 1);
    kh_node_destroy(n);
}

Test(constant, value_floats_is_a_float_vector)
{
    qkv_tensor y;
    qkv_error err;
    kh_node *n = kh_node_create("Constant", 12, 0, 1);
    kh_attr_floats(n, "value_floats", (float[]){1, 2, 3}, 3);
    cr_assert_eq(kh_run(n, NULL, &y, &err), QKV_OK, "%s", err.message);
    cr_assert_eq(y.dtype, QKV_DTYPE_FLOAT);
    assert_dims(&y, 1, (int64_t[]){3});
    for (int i = 0; i < 3; i++)
        cr_assert_eq(((float *)y.data)[i], (float)(i + 1));
    kh_free_outputs(&y, 1);
    kh_node_destroy(n);
}

Test(constant, value_int_is_an_int64_scalar)
{
    qkv_tensor y;
    qkv_error err;
    kh_node *n = kh_node_create("Constant", 21, 0, 1);
    kh_attr_int(n, "value_int", -42);
    cr_assert_eq(kh_run(n, NULL, &y, &err), QKV_OK, "%s", err.message);
    cr_assert_eq(y.dtype, QKV_DTYPE_INT64);
    cr_assert_eq(y.rank, 0);
    cr_assert_eq(*(int64_t *)y.data, -42);
    kh_free_outputs(&y, 1);
    kh_node_destroy(n);
}

Test(constant, value_ints_is_an_int64_vector_possibly_empty)
{
    qkv_tensor y;
    qkv_error err;
    kh_node *n = kh_node_create("Constant", 13, 0, 1);
    kh_attr_ints(n, "value_ints", (int64_t[]){5, -1}, 2);
    cr_assert_eq(kh_run(n, NULL, &y, &err), QKV_OK, "%s", err.message);
    cr_assert_eq(y.dtype, QKV_DTYPE_INT64);
    assert_dims(&y, 1, (int64_t[]){2});
    cr_assert_eq(((int64_t *)y.data)[0], 5);
    cr_assert_eq(((int64_t *)y.data)[1], -1);
    kh_free_outputs(&y, 1);
    kh_node_destroy(n);
    n = kh_node_create("Constant", 13, 0, 1);
    kh_attr_ints(n, "value_ints", NULL, 0);
    cr_assert_eq(kh_run(n, NULL, &y, &err), QKV_OK, "%s", err.message);
    assert_dims(&y, 1, (int64_t[]){0});
    kh_free_outputs(&y, 1);
    kh_node_destroy(n);
}

Test(constant, string_value_is_unsupported)
{
    qkv_tensor y;
    qkv_error err;
    kh_node *n = kh_node_create("Constant", 13, 0, 1);
    kh_attr_string(n, "value_string", "hello");
    cr_assert_eq(kh_run(n, NULL, &y, &err), QKV_ERR_UNSUPPORTED);
    cr_assert(strstr(err.message, "node 'test_node' (Constant-1): attribute 'value_string' is "
                                  "not supported"),
              "%s", err.message);
    kh_node_destroy(n);
}

Test(constant, needs_exactly_one_value_attribute)
{
    qkv_tensor y;
    qkv_error err;
    kh_node *n = kh_node_create("Constant", 13, 0, 1);
    cr_assert_eq(kh_run(n, NULL, &y, &err), QKV_ERR_INVALID_MODEL);
    cr_assert(strstr(err.message, "expected exactly one of the attributes value"), "%s",
              err.message);
    cr_assert(strstr(err.message, "got 0"), "%s", err.message);
    kh_node_destroy(n);
    n = kh_node_create("Constant", 13, 0, 1);
    kh_attr_int(n, "value_int", 1);
    kh_attr_float(n, "value_float", 1);
    cr_assert_eq(kh_run(n, NULL, &y, &err), QKV_ERR_INVALID_MODEL);
    cr_assert(strstr(err.message, "got 2"), "%s", err.message);
    kh_node_destroy(n);
}

Test(constant, value_of_the_wrong_attribute_type_is_a_type_error)
{
    qkv_tensor y;
    qkv_error err;
    kh_node *n = kh_node_create("Constant", 13, 0, 1);
    kh_attr_float(n, "value_int", 1.5f);
    cr_assert_eq(kh_run(n, NULL, &y, &err), QKV_ERR_TYPE);
    cr_assert(strstr(err.message, "attribute 'value_int' is float, expected int"), "%s",
              err.message);
    kh_node_destroy(n);
}

/* ---- ConstantOfShape ---- */

Test(constantofshape, fills_with_the_value_attribute)
{
    int64_t shape[3] = {4, 3, 2};
    float one[1] = {1};
    qkv_tensor x = kh_i64(1, (int64_t[]){3}, shape), v = kh_f32(1, (int64_t[]){1}, one), y;
    qkv_error err;
    kh_node *n = kh_node_create("ConstantOfShape", 9, 1, 1);
    kh_attr_tensor(n, "value", &v);
    cr_assert_eq(kh_run(n, &x, &y, &err), QKV_OK, "%s", err.message);
    cr_assert_eq(y.dtype, QKV_DTYPE_FLOAT);
    assert_dims(&y, 3, shape);
    for (int i = 0; i < 24; i++)
        cr_assert_eq(((float *)y.data)[i], 1.0f);
    kh_free_outputs(&y, 1);
    kh_node_destroy(n);
}

Test(constantofshape, defaults_to_float_zero)
{
    int64_t shape[2] = {2, 3};
    qkv_tensor x = kh_i64(1, (int64_t[]){2}, shape), y;
    qkv_error err;
    kh_node *n = kh_node_create("ConstantOfShape", 20, 1, 1);
    cr_assert_eq(kh_run(n, &x, &y, &err), QKV_OK, "%s", err.message);
    cr_assert_eq(y.dtype, QKV_DTYPE_FLOAT);
    assert_dims(&y, 2, shape);
    for (int i = 0; i < 6; i++)
        cr_assert_eq(((float *)y.data)[i], 0.0f);
    kh_free_outputs(&y, 1);
    kh_node_destroy(n);
}

Test(constantofshape, int_values_zero_dims_and_scalars)
{
    int64_t seven[1] = {7}, shape[2] = {5, 3};
    qkv_tensor v = kh_i64(1, (int64_t[]){1}, seven), x = kh_i64(1, (int64_t[]){2}, shape), y;
    qkv_error err;
    kh_node *n = kh_node_create("ConstantOfShape", 9, 1, 1);
    kh_attr_tensor(n, "value", &v);
    cr_assert_eq(kh_run(n, &x, &y, &err), QKV_OK, "%s", err.message);
    cr_assert_eq(y.dtype, QKV_DTYPE_INT64);
    for (int i = 0; i < 15; i++)
        cr_assert_eq(((int64_t *)y.data)[i], 7);
    kh_free_outputs(&y, 1);
    shape[0] = 0; /* shape [0]: an empty 1-D output */
    x = kh_i64(1, (int64_t[]){1}, shape);
    cr_assert_eq(kh_run(n, &x, &y, &err), QKV_OK, "%s", err.message);
    assert_dims(&y, 1, (int64_t[]){0});
    cr_assert_eq(y.data_bytes, 0);
    kh_free_outputs(&y, 1);
    x = kh_i64(1, (int64_t[]){0}, shape); /* an empty shape: a scalar */
    cr_assert_eq(kh_run(n, &x, &y, &err), QKV_OK, "%s", err.message);
    cr_assert_eq(y.rank, 0);
    cr_assert_eq(*(int64_t *)y.data, 7);
    kh_free_outputs(&y, 1);
    kh_node_destroy(n);
}

Test(constantofshape, refuses_negative_dims)
{
    int64_t shape[2] = {2, -3};
    qkv_tensor x = kh_i64(1, (int64_t[]){2}, shape), y;
    qkv_error err;
    kh_node *n = kh_node_create("ConstantOfShape", 9, 1, 1);
    cr_assert_eq(kh_run(n, &x, &y, &err), QKV_ERR_SHAPE);
    cr_assert(strstr(err.message, "node 'test_node' (ConstantOfShape-9): input 0 'input'[1] is "
                                  "-3, expected >= 0"),
              "%s", err.message);
    kh_node_destroy(n);
}

Test(constantofshape, refuses_a_value_of_several_elements)
{
    int64_t shape[1] = {2}, two[2] = {1, 2};
    qkv_tensor x = kh_i64(1, (int64_t[]){1}, shape), v = kh_i64(1, (int64_t[]){2}, two), y;
    qkv_error err;
    kh_node *n = kh_node_create("ConstantOfShape", 9, 1, 1);
    kh_attr_tensor(n, "value", &v);
    cr_assert_eq(kh_run(n, &x, &y, &err), QKV_ERR_INVALID_MODEL);
    cr_assert(strstr(err.message, "attribute 'value' must hold exactly one element"), "%s",
              err.message);
    kh_node_destroy(n);
}

Test(constantofshape, unknown_shape_value_gives_known_rank)
{
    qkv_tensor x = kh_i64(1, (int64_t[]){3}, NULL), y;
    qkv_error err;
    kh_node *n = kh_node_create("ConstantOfShape", 9, 1, 1);
    cr_assert_eq(kh_infer(n, &x, &y, &err), QKV_OK, "%s", err.message);
    assert_dims(&y, 3, (int64_t[]){-1, -1, -1});
    x.dims[0] = -1;
    cr_assert_eq(kh_infer(n, &x, &y, &err), QKV_OK, "%s", err.message);
    cr_assert_eq(y.rank, -1);
    kh_node_destroy(n);
}

Test(constantofshape, runs_with_values_hidden_from_infer)
{
    int64_t shape[2] = {2, 2};
    qkv_tensor x = kh_i64(1, (int64_t[]){2}, shape), y;
    qkv_error err;
    kh_node *n = kh_node_create("ConstantOfShape", 9, 1, 1);
    kh_hide_input_values(n);
    cr_assert_eq(kh_run(n, &x, &y, &err), QKV_OK, "%s", err.message);
    assert_dims(&y, 2, shape);
    kh_free_outputs(&y, 1);
    kh_node_destroy(n);
}
