/* Reshape, Flatten, Squeeze, Unsqueeze (ops/reshape.c). */
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

/* 24 floats 0..23: views must carry them over unchanged (exact). */
static float iota24[24];

static void fill_iota(void)
{
    for (int i = 0; i < 24; i++)
        iota24[i] = (float)i;
}

static void assert_same_data(const qkv_tensor *y, size_t n)
{
    cr_assert_eq(y->data_bytes, n * sizeof(float));
    for (size_t i = 0; i < n; i++)
        cr_assert_eq(((float *)y->data)[i], iota24[i], "element %zu", i);
}

/* Runs Reshape-`opset` of x [2,3,4] into `shape`; returns its status. */
static qkv_status run_reshape(int64_t opset, const int64_t *shape, size_t n, int64_t allowzero,
                              qkv_tensor *y, qkv_error *err)
{
    fill_iota();
    qkv_tensor in[2] = {kh_f32(3, (int64_t[]){2, 3, 4}, iota24),
                        kh_i64(1, (int64_t[]){(int64_t)n}, (int64_t *)shape)};
    kh_node *node = kh_node_create("Reshape", opset, 2, 1);
    if (allowzero >= 0)
        kh_attr_int(node, "allowzero", allowzero);
    qkv_status st = kh_run(node, in, y, err);
    kh_node_destroy(node);
    return st;
}

Test(reshape, reorders_dims_and_keeps_data)
{
    qkv_tensor y;
    qkv_error err;
    cr_assert_eq(run_reshape(13, (int64_t[]){4, 2, 3}, 3, -1, &y, &err), QKV_OK, "%s", err.message);
    assert_dims(&y, 3, (int64_t[]){4, 2, 3});
    assert_same_data(&y, 24);
    kh_free_outputs(&y, 1);
}

Test(reshape, zero_copies_the_input_dim)
{
    qkv_tensor y;
    qkv_error err;
    cr_assert_eq(run_reshape(13, (int64_t[]){2, 0, 4, 1}, 4, -1, &y, &err), QKV_OK, "%s",
                 err.message);
    assert_dims(&y, 4, (int64_t[]){2, 3, 4, 1});
    kh_free_outputs(&y, 1);
}

Test(reshape, minus_one_takes_the_remaining_elements)
{
    qkv_tensor y;
    qkv_error err;
    cr_assert_eq(run_reshape(13, (int64_t[]){2, 0, 1, -1}, 4, -1, &y, &err), QKV_OK, "%s",
                 err.message);
    assert_dims(&y, 4, (int64_t[]){2, 3, 1, 4});
    kh_free_outputs(&y, 1);
    cr_assert_eq(run_reshape(5, (int64_t[]){-1, 2, 3, 4}, 4, -1, &y, &err), QKV_OK, "%s",
                 err.message);
    assert_dims(&y, 4, (int64_t[]){1, 2, 3, 4});
    assert_same_data(&y, 24);
    kh_free_outputs(&y, 1);
}

Test(reshape, allowzero_keeps_a_literal_zero_dim)
{
    float none[1] = {0};
    qkv_tensor in[2] = {kh_f32(3, (int64_t[]){0, 3, 4}, none),
                        kh_i64(1, (int64_t[]){3}, (int64_t[]){3, 4, 0})},
               y;
    qkv_error err;
    kh_node *n = kh_node_create("Reshape", 14, 2, 1);
    kh_attr_int(n, "allowzero", 1);
    cr_assert_eq(kh_run(n, in, &y, &err), QKV_OK, "%s", err.message);
    assert_dims(&y, 3, (int64_t[]){3, 4, 0});
    cr_assert_eq(y.data_bytes, 0);
    kh_free_outputs(&y, 1);
    kh_node_destroy(n);
}

Test(reshape, allowzero_refuses_zero_with_minus_one)
{
    qkv_tensor y;
    qkv_error err;
    cr_assert_eq(run_reshape(14, (int64_t[]){0, -1}, 2, 1, &y, &err), QKV_ERR_SHAPE);
    cr_assert(strstr(err.message, "node 'test_node' (Reshape-5): target shape has both 0 and -1"),
              "%s", err.message);
}

Test(reshape, refuses_an_element_count_mismatch)
{
    qkv_tensor y;
    qkv_error err;
    cr_assert_eq(run_reshape(13, (int64_t[]){5, 5}, 2, -1, &y, &err), QKV_ERR_SHAPE);
    cr_assert(strstr(err.message, "cannot reshape input 0 'data' of shape [2,3,4] (24 elements) "
                                  "into [5,5] (25 elements)"),
              "%s", err.message);
    cr_assert_eq(run_reshape(13, (int64_t[]){5, -1}, 2, -1, &y, &err), QKV_ERR_SHAPE);
    cr_assert(strstr(err.message, "24 is not a multiple of 5"), "%s", err.message);
}

Test(reshape, refuses_two_minus_ones)
{
    qkv_tensor y;
    qkv_error err;
    cr_assert_eq(run_reshape(13, (int64_t[]){-1, 4, -1}, 3, -1, &y, &err), QKV_ERR_SHAPE);
    cr_assert(strstr(err.message, "target shape has -1 at both index 0 and 2"), "%s", err.message);
}

Test(reshape, refuses_a_zero_past_the_input_rank_and_values_below_minus_one)
{
    qkv_tensor y;
    qkv_error err;
    cr_assert_eq(run_reshape(13, (int64_t[]){6, 4, 1, 0}, 4, -1, &y, &err), QKV_ERR_SHAPE);
    cr_assert(strstr(err.message, "target shape[3] is 0 (copy the input dim) but input 0 'data' "
                                  "has rank 3"),
              "%s", err.message);
    cr_assert_eq(run_reshape(13, (int64_t[]){-2, 12}, 2, -1, &y, &err), QKV_ERR_SHAPE);
    cr_assert(strstr(err.message, "target shape[0] is -2, expected >= -1"), "%s", err.message);
}

Test(reshape, opset1_reads_the_shape_attribute)
{
    fill_iota();
    qkv_tensor x = kh_f32(3, (int64_t[]){2, 3, 4}, iota24), y;
    qkv_error err;
    kh_node *n = kh_node_create("Reshape", 1, 1, 1);
    kh_attr_ints(n, "shape", (int64_t[]){6, -1}, 2);
    cr_assert_eq(kh_run(n, &x, &y, &err), QKV_OK, "%s", err.message);
    assert_dims(&y, 2, (int64_t[]){6, 4});
    assert_same_data(&y, 24);
    kh_free_outputs(&y, 1);
    kh_node_destroy(n);
}

Test(reshape, unknown_shape_value_gives_known_rank_and_unknown_dims)
{
    qkv_tensor in[2] = {kh_f32(3, (int64_t[]){2, 3, 4}, NULL), kh_i64(1, (int64_t[]){3}, NULL)}, y;
    qkv_error err;
    kh_node *n = kh_node_create("Reshape", 13, 2, 1);
    cr_assert_eq(kh_infer(n, in, &y, &err), QKV_OK, "%s", err.message);
    cr_assert_eq(y.dtype, QKV_DTYPE_FLOAT);
    assert_dims(&y, 3, (int64_t[]){-1, -1, -1});
    /* a shape input of unknown length: rank unknown too */
    in[1].dims[0] = -1;
    cr_assert_eq(kh_infer(n, in, &y, &err), QKV_OK, "%s", err.message);
    cr_assert_eq(y.rank, -1);
    kh_node_destroy(n);
}

Test(reshape, unknown_input_dim_leaves_minus_one_unknown)
{
    int64_t shape[3] = {0, -1, 2};
    qkv_tensor in[2] = {kh_f32(3, (int64_t[]){-1, 3, 4}, NULL), kh_i64(1, (int64_t[]){3}, shape)},
               y;
    qkv_error err;
    kh_node *n = kh_node_create("Reshape", 13, 2, 1);
    cr_assert_eq(kh_infer(n, in, &y, &err), QKV_OK, "%s", err.message);
    assert_dims(&y, 3, (int64_t[]){-1, -1, 2});
    kh_node_destroy(n);
}

Test(reshape, runs_with_values_hidden_from_infer)
{
    fill_iota();
    qkv_tensor in[2] = {kh_f32(3, (int64_t[]){2, 3, 4}, iota24),
                        kh_i64(1, (int64_t[]){2}, (int64_t[]){-1, 8})},
               y;
    qkv_error err;
    kh_node *n = kh_node_create("Reshape", 21, 2, 1);
    kh_hide_input_values(n);
    cr_assert_eq(kh_run(n, in, &y, &err), QKV_OK, "%s", err.message);
    assert_dims(&y, 2, (int64_t[]){3, 8});
    assert_same_data(&y, 24);
    kh_free_outputs(&y, 1);
    kh_node_destroy(n);
}

/* ---- Flatten ---- */

static qkv_status run_flatten(int64_t opset, int64_t axis, bool set_axis, qkv_tensor *y,
                              qkv_error *err)
{
    fill_iota();
    qkv_tensor x = kh_f32(4, (int64_t[]){2, 3, 2, 2}, iota24);
    kh_node *n = kh_node_create("Flatten", opset, 1, 1);
    if (set_axis)
        kh_attr_int(n, "axis", axis);
    qkv_status st = kh_run(n, &x, y, err);
    kh_node_destroy(n);
    return st;
}

Test(flatten, splits_the_dims_at_axis)
{
    qkv_tensor y;
    qkv_error err;
    cr_assert_eq(run_flatten(13, 0, false, &y, &err), QKV_OK, "%s", err.message);
    assert_dims(&y, 2, (int64_t[]){2, 12}); /* default axis 1 */
    assert_same_data(&y, 24);
    kh_free_outputs(&y, 1);
    cr_assert_eq(run_flatten(13, 0, true, &y, &err), QKV_OK, "%s", err.message);
    assert_dims(&y, 2, (int64_t[]){1, 24});
    kh_free_outputs(&y, 1);
    cr_assert_eq(run_flatten(13, 4, true, &y, &err), QKV_OK, "%s", err.message);
    assert_dims(&y, 2, (int64_t[]){24, 1});
    kh_free_outputs(&y, 1);
    cr_assert_eq(run_flatten(13, -1, true, &y, &err), QKV_OK, "%s", err.message);
    assert_dims(&y, 2, (int64_t[]){12, 2});
    kh_free_outputs(&y, 1);
    cr_assert_eq(run_flatten(11, -4, true, &y, &err), QKV_OK, "%s", err.message);
    assert_dims(&y, 2, (int64_t[]){1, 24});
    kh_free_outputs(&y, 1);
}

Test(flatten, refuses_an_axis_out_of_range)
{
    qkv_tensor y;
    qkv_error err;
    cr_assert_eq(run_flatten(13, 5, true, &y, &err), QKV_ERR_SHAPE);
    cr_assert(strstr(err.message, "axis 5 is out of range for input 0 'input' of rank 4"), "%s",
              err.message);
    cr_assert_eq(run_flatten(13, -5, true, &y, &err), QKV_ERR_SHAPE);
}

Test(flatten, refuses_negative_axis_before_opset_11)
{
    qkv_tensor y;
    qkv_error err;
    cr_assert_eq(run_flatten(9, -1, true, &y, &err), QKV_ERR_INVALID_MODEL);
    cr_assert(strstr(err.message, "negative axes need opset 11"), "%s", err.message);
}

Test(flatten, unknown_dims_stay_unknown_but_a_zero_dim_decides)
{
    qkv_tensor x = kh_f32(3, (int64_t[]){-1, 0, 5}, NULL), y;
    qkv_error err;
    kh_node *n = kh_node_create("Flatten", 13, 1, 1);
    cr_assert_eq(kh_infer(n, &x, &y, &err), QKV_OK, "%s", err.message);
    assert_dims(&y, 2, (int64_t[]){-1, 0});
    x.rank = -1;
    cr_assert_eq(kh_infer(n, &x, &y, &err), QKV_OK, "%s", err.message);
    assert_dims(&y, 2, (int64_t[]){-1, -1});
    kh_node_destroy(n);
}

/* ---- Squeeze ---- */

Test(squeeze, removes_the_given_axes_from_input)
{
    fill_iota();
    qkv_tensor in[2] = {kh_f32(5, (int64_t[]){1, 3, 1, 8, 1}, iota24),
                        kh_i64(1, (int64_t[]){2}, (int64_t[]){0, -3})},
               y;
    qkv_error err;
    kh_node *n = kh_node_create("Squeeze", 13, 2, 1);
    cr_assert_eq(kh_run(n, in, &y, &err), QKV_OK, "%s", err.message);
    assert_dims(&y, 3, (int64_t[]){3, 8, 1});
    assert_same_data(&y, 24);
    kh_free_outputs(&y, 1);
    kh_node_destroy(n);
}

Test(squeeze, opset11_reads_negative_axes_from_the_attribute)
{
    fill_iota();
    qkv_tensor x = kh_f32(4, (int64_t[]){1, 3, 1, 8}, iota24), y;
    qkv_error err;
    kh_node *n = kh_node_create("Squeeze", 11, 1, 1);
    kh_attr_ints(n, "axes", (int64_t[]){-2}, 1);
    cr_assert_eq(kh_run(n, &x, &y, &err), QKV_OK, "%s", err.message);
    assert_dims(&y, 3, (int64_t[]){1, 3, 8});
    kh_free_outputs(&y, 1);
    kh_node_destroy(n);
}

Test(squeeze, without_axes_removes_every_one)
{
    fill_iota();
    qkv_tensor in[2] = {kh_f32(4, (int64_t[]){1, 3, 1, 8}, iota24), {0}}, y;
    qkv_error err;
    kh_node *n = kh_node_create("Squeeze", 13, 1, 1);
    cr_assert_eq(kh_run(n, in, &y, &err), QKV_OK, "%s", err.message);
    assert_dims(&y, 2, (int64_t[]){3, 8});
    kh_free_outputs(&y, 1);
    kh_node_destroy(n);
    n = kh_node_create("Squeeze", 1, 1, 1);
    cr_assert_eq(kh_run(n, in, &y, &err), QKV_OK, "%s", err.message);
    assert_dims(&y, 2, (int64_t[]){3, 8});
    kh_free_outputs(&y, 1);
    kh_node_destroy(n);
}

Test(squeeze, refuses_a_dim_that_is_not_one)
{
    fill_iota();
    qkv_tensor in[2] = {kh_f32(3, (int64_t[]){1, 3, 8}, iota24),
                        kh_i64(1, (int64_t[]){1}, (int64_t[]){1})},
               y;
    qkv_error err;
    kh_node *n = kh_node_create("Squeeze", 13, 2, 1);
    cr_assert_eq(kh_run(n, in, &y, &err), QKV_ERR_SHAPE);
    cr_assert(strstr(err.message, "node 'test_node' (Squeeze-13): cannot squeeze axis 1 of "
                                  "input 0 'data' of shape [1,3,8]: its size is 3, not 1"),
              "%s", err.message);
    kh_node_destroy(n);
}

Test(squeeze, refuses_out_of_range_and_repeated_axes)
{
    fill_iota();
    int64_t axes[2] = {3, 0};
    qkv_tensor in[2] = {kh_f32(3, (int64_t[]){1, 3, 8}, iota24), kh_i64(1, (int64_t[]){1}, axes)},
               y;
    qkv_error err;
    kh_node *n = kh_node_create("Squeeze", 13, 2, 1);
    cr_assert_eq(kh_run(n, in, &y, &err), QKV_ERR_SHAPE);
    cr_assert(strstr(err.message, "axes[0] = 3 is out of range for input 0 'data' of rank 3"), "%s",
              err.message);
    axes[0] = -3;
    in[1].dims[0] = 2;
    in[1].data_bytes = 16;
    cr_assert_eq(kh_run(n, in, &y, &err), QKV_ERR_SHAPE);
    cr_assert(strstr(err.message, "axes[1] = 0 repeats axis 0"), "%s", err.message);
    kh_node_destroy(n);
}

Test(squeeze, unknown_axes_value_gives_known_rank)
{
    qkv_tensor in[2] = {kh_f32(4, (int64_t[]){1, 3, 1, 8}, NULL), kh_i64(1, (int64_t[]){2}, NULL)},
               y;
    qkv_error err;
    kh_node *n = kh_node_create("Squeeze", 13, 2, 1);
    cr_assert_eq(kh_infer(n, in, &y, &err), QKV_OK, "%s", err.message);
    assert_dims(&y, 2, (int64_t[]){-1, -1});
    kh_node_destroy(n);
}

/* ---- Unsqueeze ---- */

Test(unsqueeze, inserts_unsorted_axes_from_input)
{
    fill_iota();
    qkv_tensor in[2] = {kh_f32(3, (int64_t[]){2, 3, 4}, iota24),
                        kh_i64(1, (int64_t[]){3}, (int64_t[]){5, 4, 2})},
               y;
    qkv_error err;
    kh_node *n = kh_node_create("Unsqueeze", 13, 2, 1);
    cr_assert_eq(kh_run(n, in, &y, &err), QKV_OK, "%s", err.message);
    assert_dims(&y, 6, (int64_t[]){2, 3, 1, 4, 1, 1});
    assert_same_data(&y, 24);
    kh_free_outputs(&y, 1);
    kh_node_destroy(n);
}

Test(unsqueeze, negative_axes_count_from_the_output_end)
{
    fill_iota();
    qkv_tensor in[2] = {kh_f32(2, (int64_t[]){3, 8}, iota24),
                        kh_i64(1, (int64_t[]){1}, (int64_t[]){-1})},
               y;
    qkv_error err;
    kh_node *n = kh_node_create("Unsqueeze", 13, 2, 1);
    cr_assert_eq(kh_run(n, in, &y, &err), QKV_OK, "%s", err.message);
    assert_dims(&y, 3, (int64_t[]){3, 8, 1});
    kh_free_outputs(&y, 1);
    kh_node_destroy(n);
    /* the attribute form (opset 11) */
    n = kh_node_create("Unsqueeze", 11, 1, 1);
    kh_attr_ints(n, "axes", (int64_t[]){-3, 0}, 2);
    cr_assert_eq(kh_run(n, in, &y, &err), QKV_OK, "%s", err.message);
    assert_dims(&y, 4, (int64_t[]){1, 1, 3, 8});
    kh_free_outputs(&y, 1);
    kh_node_destroy(n);
}

Test(unsqueeze, refuses_an_axis_out_of_range)
{
    fill_iota();
    qkv_tensor in[2] = {kh_f32(2, (int64_t[]){3, 8}, iota24),
                        kh_i64(1, (int64_t[]){1}, (int64_t[]){3})},
               y;
    qkv_error err;
    kh_node *n = kh_node_create("Unsqueeze", 13, 2, 1);
    cr_assert_eq(kh_run(n, in, &y, &err), QKV_ERR_SHAPE);
    cr_assert(strstr(err.message, "node 'test_node' (Unsqueeze-13): axes[0] = 3 is out of range "
                                  "for output rank 3"),
              "%s", err.message);
    kh_node_destroy(n);
}

Test(unsqueeze, opset1_requires_the_axes_attribute_and_nonnegative_axes)
{
    float one[1] = {1};
    qkv_tensor x = kh_f32(0, NULL, one), y;
    qkv_error err;
    kh_node *n = kh_node_create("Unsqueeze", 1, 1, 1);
    cr_assert_eq(kh_run(n, &x, &y, &err), QKV_ERR_INVALID_MODEL);
    cr_assert(strstr(err.message, "attribute 'axes' is required"), "%s", err.message);
    kh_node_destroy(n);
    n = kh_node_create("Unsqueeze", 1, 1, 1);
    kh_attr_ints(n, "axes", (int64_t[]){-1}, 1);
    cr_assert_eq(kh_run(n, &x, &y, &err), QKV_ERR_INVALID_MODEL);
    cr_assert(strstr(err.message, "axes[0] is -1; negative axes need opset 11"), "%s", err.message);
    kh_node_destroy(n);
}

Test(unsqueeze, unknown_axes_value_gives_known_rank)
{
    qkv_tensor in[2] = {kh_f32(2, (int64_t[]){3, 8}, NULL), kh_i64(1, (int64_t[]){2}, NULL)}, y;
    qkv_error err;
    kh_node *n = kh_node_create("Unsqueeze", 13, 2, 1);
    cr_assert_eq(kh_infer(n, in, &y, &err), QKV_OK, "%s", err.message);
    assert_dims(&y, 4, (int64_t[]){-1, -1, -1, -1});
    kh_node_destroy(n);
}

Test(unsqueeze, runs_with_values_hidden_from_infer)
{
    fill_iota();
    qkv_tensor in[2] = {kh_f32(2, (int64_t[]){3, 8}, iota24),
                        kh_i64(1, (int64_t[]){1}, (int64_t[]){1})},
               y;
    qkv_error err;
    kh_node *n = kh_node_create("Unsqueeze", 13, 2, 1);
    kh_hide_input_values(n);
    cr_assert_eq(kh_run(n, in, &y, &err), QKV_OK, "%s", err.message);
    assert_dims(&y, 3, (int64_t[]){3, 1, 8});
    assert_same_data(&y, 24);
    kh_free_outputs(&y, 1);
    kh_node_destroy(n);
}
