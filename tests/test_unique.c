/* Unique: sorted and unsorted, with and without axis (negative too), all
 * four outputs, only Y, data-dependent shapes and errors. Expected values
 * are numpy.unique's (and the ONNX examples'). */
#include <criterion/criterion.h>
#include <math.h>
#include <string.h>

#include "kernel_harness.h"

static void expect_i64(const qkv_tensor *t, const int64_t *want, int64_t n, const char *what)
{
    cr_assert_eq(t->dtype, QKV_DTYPE_INT64, "%s", what);
    cr_assert_eq(t->rank, 1, "%s", what);
    cr_assert_eq(t->dims[0], n, "%s: %lld", what, (long long)t->dims[0]);
    for (int64_t i = 0; i < n; i++)
        cr_assert_eq(((int64_t *)t->data)[i], want[i], "%s [%lld]", what, (long long)i);
}

Test(unique, not_sorted_keeps_first_occurrence_order)
{
    float x[6] = {2, 1, 1, 3, 4, 3};
    qkv_tensor in = kh_f32(1, (int64_t[]){6}, x), y[4];
    qkv_error err;
    kh_node *n = kh_node_create("Unique", 11, 1, 4);
    kh_attr_int(n, "sorted", 0);
    kh_hide_input_values(n);
    cr_assert_eq(kh_run(n, &in, y, &err), QKV_OK, "%s", err.message);
    float want[4] = {2, 1, 3, 4};
    cr_assert_eq(y[0].dims[0], 4);
    cr_assert_arr_eq(y[0].data, want, sizeof want);
    expect_i64(&y[1], (int64_t[]){0, 1, 3, 4}, 4, "indices");
    expect_i64(&y[2], (int64_t[]){0, 1, 1, 2, 3, 2}, 6, "inverse_indices");
    expect_i64(&y[3], (int64_t[]){1, 2, 2, 1}, 4, "counts");
    kh_free_outputs(y, 4);
    kh_node_destroy(n);
}

Test(unique, sorted_flattens_without_axis)
{
    int32_t x[4] = {1, 3, 2, 3};
    qkv_tensor in = kh_tensor(QKV_DTYPE_INT32, 2, (int64_t[]){2, 2}, x), y[4];
    qkv_error err;
    kh_node *n = kh_node_create("Unique", 11, 1, 4);
    cr_assert_eq(kh_run(n, &in, y, &err), QKV_OK, "%s", err.message);
    int32_t want[3] = {1, 2, 3};
    cr_assert_eq(y[0].rank, 1);
    cr_assert_eq(y[0].dims[0], 3);
    cr_assert_arr_eq(y[0].data, want, sizeof want);
    expect_i64(&y[1], (int64_t[]){0, 2, 1}, 3, "indices");
    expect_i64(&y[2], (int64_t[]){0, 2, 1, 2}, 4, "inverse_indices");
    expect_i64(&y[3], (int64_t[]){1, 1, 2}, 3, "counts");
    kh_free_outputs(y, 4);
    kh_node_destroy(n);
}

Test(unique, slices_along_an_axis_and_a_negative_axis)
{
    /* ONNX example 4: (2, 4, 2), unique along axis 1 */
    float x[16] = {1, 1, 0, 1, 2, 1, 0, 1, 1, 1, 0, 1, 2, 1, 0, 1};
    for (int ax = 0; ax < 2; ax++) {
        qkv_tensor in = kh_f32(3, (int64_t[]){2, 4, 2}, x), y[4];
        qkv_error err;
        kh_node *n = kh_node_create("Unique", 11, 1, 4);
        kh_attr_int(n, "axis", ax ? -2 : 1);
        kh_hide_input_values(n);
        cr_assert_eq(kh_run(n, &in, y, &err), QKV_OK, "%s", err.message);
        cr_assert_eq(y[0].rank, 3);
        cr_assert_eq(y[0].dims[0], 2);
        cr_assert_eq(y[0].dims[1], 3);
        cr_assert_eq(y[0].dims[2], 2);
        float want[12] = {0, 1, 1, 1, 2, 1, 0, 1, 1, 1, 2, 1};
        cr_assert_arr_eq(y[0].data, want, sizeof want);
        expect_i64(&y[1], (int64_t[]){1, 0, 2}, 3, "indices");
        expect_i64(&y[2], (int64_t[]){1, 0, 2, 0}, 4, "inverse_indices");
        expect_i64(&y[3], (int64_t[]){2, 1, 1}, 3, "counts");
        kh_free_outputs(y, 4);
        kh_node_destroy(n);
    }
}

Test(unique, rows_along_axis_0_unsorted)
{
    int64_t x[9] = {2, 3, 4, 1, 0, 0, 2, 3, 4};
    qkv_tensor in = kh_i64(2, (int64_t[]){3, 3}, x), y[4];
    qkv_error err;
    kh_node *n = kh_node_create("Unique", 11, 1, 4);
    kh_attr_int(n, "axis", 0);
    kh_attr_int(n, "sorted", 0);
    cr_assert_eq(kh_run(n, &in, y, &err), QKV_OK, "%s", err.message);
    int64_t want[6] = {2, 3, 4, 1, 0, 0};
    cr_assert_eq(y[0].dims[0], 2);
    cr_assert_arr_eq(y[0].data, want, sizeof want);
    expect_i64(&y[1], (int64_t[]){0, 1}, 2, "indices");
    expect_i64(&y[2], (int64_t[]){0, 1, 0}, 3, "inverse_indices");
    expect_i64(&y[3], (int64_t[]){2, 1}, 2, "counts");
    kh_free_outputs(y, 4);
    kh_node_destroy(n);
}

Test(unique, only_y_and_nan_and_signed_zero)
{
    float x[6] = {NAN, -0.0f, 1, 0.0f, NAN, -1};
    qkv_tensor in = kh_f32(1, (int64_t[]){6}, x), y;
    qkv_error err;
    kh_node *n = kh_node_create("Unique", 11, 1, 1);
    cr_assert_eq(kh_run(n, &in, &y, &err), QKV_OK, "%s", err.message);
    cr_assert_eq(y.dims[0], 4); /* -1, 0, 1, NaN */
    const float *v = y.data;
    cr_assert_float_eq(v[0], -1.0f, 0);
    cr_assert_float_eq(v[1], 0.0f, 0);
    cr_assert_float_eq(v[2], 1.0f, 0);
    cr_assert(isnan(v[3]));
    kh_free_outputs(&y, 1);
    kh_node_destroy(n);
}

Test(unique, infer_without_value_leaves_count_unknown)
{
    qkv_tensor in = kh_f32(2, (int64_t[]){3, 4}, NULL), y[4];
    qkv_error err;
    kh_node *n = kh_node_create("Unique", 11, 1, 4);
    kh_attr_int(n, "axis", 1);
    cr_assert_eq(kh_infer(n, &in, y, &err), QKV_OK, "%s", err.message);
    cr_assert_eq(y[0].rank, 2);
    cr_assert_eq(y[0].dims[0], 3);
    cr_assert_eq(y[0].dims[1], -1);
    cr_assert_eq(y[2].dims[0], 4);
    cr_assert_eq(y[3].dims[0], -1);
    kh_node_destroy(n);
}

Test(unique, refuses_a_bad_axis)
{
    float x[2] = {1, 2};
    qkv_tensor in = kh_f32(1, (int64_t[]){2}, x), y;
    qkv_error err;
    kh_node *n = kh_node_create("Unique", 11, 1, 1);
    kh_attr_int(n, "axis", 1);
    cr_assert_eq(kh_run(n, &in, &y, &err), QKV_ERR_INVALID_MODEL);
    cr_assert(strstr(err.message, "test_node"), "%s", err.message);
    cr_assert(strstr(err.message, "'axis' is 1, out of range"), "%s", err.message);
    kh_node_destroy(n);
}

Test(unique, empty_input_gives_empty_outputs)
{
    float x[1] = {0};
    qkv_tensor in = kh_f32(1, (int64_t[]){0}, x), y[4];
    in.data = NULL;
    qkv_error err;
    kh_node *n = kh_node_create("Unique", 11, 1, 4);
    cr_assert_eq(kh_run(n, &in, y, &err), QKV_OK, "%s", err.message);
    for (int k = 0; k < 4; k++)
        cr_assert_eq(y[k].dims[0], 0, "output %d", k);
    kh_free_outputs(y, 4);
    kh_node_destroy(n);
}

/* Slices without elements are all equal: one unique slice (numpy.unique
 * gives Y (1, 0), indices [0], inverse [0, 0, 0], counts [3] for a (3, 0)
 * X along axis 0, and Y (0, 1) ... for a (0, 3) X along axis 1). */
Test(unique, empty_slices_are_one_unique_slice)
{
    static const int64_t shapes[2][2] = {{3, 0}, {0, 3}};
    for (int c = 0; c < 2; c++) {
        qkv_tensor in = kh_f32(2, shapes[c], NULL), y[4];
        qkv_error err;
        kh_node *n = kh_node_create("Unique", 11, 1, 4);
        kh_attr_int(n, "axis", c);
        cr_assert_eq(kh_run(n, &in, y, &err), QKV_OK, "%s", err.message);
        cr_assert_eq(y[0].rank, 2);
        cr_assert_eq(y[0].dims[c], 1, "one unique slice along axis %d", c);
        cr_assert_eq(y[0].dims[1 - c], 0);
        expect_i64(&y[1], (int64_t[]){0}, 1, "indices");
        expect_i64(&y[2], (int64_t[]){0, 0, 0}, 3, "inverse_indices");
        expect_i64(&y[3], (int64_t[]){3}, 1, "counts");
        kh_free_outputs(y, 4);
        kh_node_destroy(n);
    }
}

/* An empty X may declare any length along the axis: 2^40 empty slices are
 * one unique slice, found without 6 * 2^40 size_t of scratch (which infer
 * used to ask malloc for). */
Test(unique, huge_axis_of_empty_slices_needs_no_scratch, .timeout = 30)
{
    const int64_t huge = (int64_t)1 << 40;
    qkv_tensor in = kh_f32(2, (int64_t[]){huge, 0}, NULL), y[2];
    qkv_error err;
    kh_node *n = kh_node_create("Unique", 11, 1, 2);
    kh_attr_int(n, "axis", 0);
    cr_assert_eq(kh_run(n, &in, y, &err), QKV_OK, "%s", err.message);
    cr_assert_eq(y[0].rank, 2);
    cr_assert_eq(y[0].dims[0], 1);
    cr_assert_eq(y[0].dims[1], 0);
    expect_i64(&y[1], (int64_t[]){0}, 1, "indices");
    kh_free_outputs(y, 2);
    kh_node_destroy(n);
}

/* An empty axis gives empty outputs, however long the other dims are: no
 * loop over the 2^40 rows of nothing. */
Test(unique, empty_axis_gives_empty_outputs, .timeout = 30)
{
    const int64_t huge = (int64_t)1 << 40;
    qkv_tensor in = kh_f32(2, (int64_t[]){huge, 0}, NULL), y[4];
    qkv_error err;
    kh_node *n = kh_node_create("Unique", 11, 1, 4);
    kh_attr_int(n, "axis", -1);
    kh_hide_input_values(n);
    cr_assert_eq(kh_run(n, &in, y, &err), QKV_OK, "%s", err.message);
    cr_assert_eq(y[0].rank, 2);
    cr_assert_eq(y[0].dims[0], huge);
    cr_assert_eq(y[0].dims[1], 0);
    for (int k = 1; k < 4; k++)
        cr_assert_eq(y[k].dims[0], 0, "output %d", k);
    kh_free_outputs(y, 4);
    kh_node_destroy(n);
}
