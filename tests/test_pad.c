/* Pad: every mode, negative pads, axes, the attribute form, and errors.
 * Expected values come from numpy.pad (crop first for negative pads). */
#include <criterion/criterion.h>
#include <stdlib.h>
#include <string.h>

#include "kernel_harness.h"

static float x34[12] = {1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12};

/* Pads the (3, 4) matrix 1..12 (opset `opset`, mode, pads, optional value
 * and axes) and compares with want of shape (rows, cols). */
static void check_pad(int64_t opset, const char *mode, const int64_t *pads, size_t n_pads,
                      const float *value, const int64_t *axes, size_t n_axes, int64_t rows,
                      int64_t cols, const float *want, size_t threads)
{
    size_t n_in = axes ? 4 : value ? 3 : 2;
    qkv_tensor in[4] = {kh_f32(2, (int64_t[]){3, 4}, x34),
                        kh_i64(1, (int64_t[]){(int64_t)n_pads}, (int64_t *)pads),
                        value ? kh_f32(0, NULL, (float *)value) : kh_f32(0, NULL, x34),
                        axes ? kh_i64(1, (int64_t[]){(int64_t)n_axes}, (int64_t *)axes)
                             : kh_f32(0, NULL, x34)},
               y;
    qkv_error err;
    kh_node *n = kh_node_create("Pad", opset, n_in, 1);
    if (axes && !value)
        kh_omit_input(n, 2);
    kh_attr_string(n, "mode", mode);
    kh_set_threads(n, threads);
    cr_assert_eq(kh_run(n, in, &y, &err), QKV_OK, "%s: %s", mode, err.message);
    cr_assert_eq(y.rank, 2);
    cr_assert_eq(y.dims[0], rows, "%s", mode);
    cr_assert_eq(y.dims[1], cols, "%s", mode);
    for (int64_t i = 0; i < rows * cols; i++) /* copies: exact */
        cr_assert_float_eq(((float *)y.data)[i], want[i], 0, "%s [%lld]", mode, (long long)i);
    kh_free_outputs(&y, 1);
    kh_node_destroy(n);
}

Test(pad, constant_with_value)
{
    static const float want[] = {9, 9, 9, 9, 9, 9, 9, 9, 9, 1, 2,  3,  4,  9,
                                 9, 9, 5, 6, 7, 8, 9, 9, 9, 9, 10, 11, 12, 9};
    float v = 9;
    check_pad(13, "constant", (int64_t[]){1, 2, 0, 1}, 4, &v, NULL, 0, 4, 7, want, 1);
}

Test(pad, reflect_beyond_the_dim_cycles_like_numpy)
{
    static const float want[] = {12, 11, 10, 9,  10, 11, 12, 11, 10, 9, 10, 8,  7,  6, 5,  6,  7,
                                 8,  7,  6,  5,  6,  4,  3,  2,  1,  2, 3,  4,  3,  2, 1,  2,  8,
                                 7,  6,  5,  6,  7,  8,  7,  6,  5,  6, 12, 11, 10, 9, 10, 11, 12,
                                 11, 10, 9,  10, 8,  7,  6,  5,  6,  7, 8,  7,  6,  5, 6};
    check_pad(13, "reflect", (int64_t[]){2, 3, 1, 4}, 4, NULL, NULL, 0, 6, 11, want, 1);
}

Test(pad, edge_repeats_the_border)
{
    static const float want[] = {1, 2,  3,  4,  4,  4,  4,  1, 2,  3,  4,  4,  4,  4,
                                 5, 6,  7,  8,  8,  8,  8,  9, 10, 11, 12, 12, 12, 12,
                                 9, 10, 11, 12, 12, 12, 12, 9, 10, 11, 12, 12, 12, 12};
    check_pad(13, "edge", (int64_t[]){1, 0, 2, 3}, 4, NULL, NULL, 0, 6, 7, want, 1);
}

Test(pad, wrap_cycles_in_opset_19)
{
    /* periodic: out[o] = x[(o - pre) mod dim]. numpy.pad differs when one
     * side's pad exceeds the dim and the other side is padded too (it wraps
     * over its own earlier padding: np.pad([1,2,3,4], (5,1), 'wrap') starts
     * with 1, not 4); the conformance tests use small pads where both agree */
    static const float want[] = {12, 9, 10, 11, 12, 9, 10, 11, 12, 9, 4, 1, 2, 3, 4,
                                 1,  2, 3,  4,  1,  8, 5,  6,  7,  8, 5, 6, 7, 8, 5,
                                 12, 9, 10, 11, 12, 9, 10, 11, 12, 9, 4, 1, 2, 3, 4,
                                 1,  2, 3,  4,  1,  8, 5,  6,  7,  8, 5, 6, 7, 8, 5};
    check_pad(19, "wrap", (int64_t[]){1, 5, 2, 1}, 4, NULL, NULL, 0, 6, 10, want, 1);
}

Test(pad, negative_pads_crop_in_constant_mode)
{
    static const float want[] = {0, 5, 6, 0, 9, 10};
    check_pad(13, "constant", (int64_t[]){-1, 1, 0, -2}, 4, NULL, NULL, 0, 2, 3, want, 1);
}

Test(pad, negative_pads_crop_before_reflecting)
{
    static const float want[] = {2, 3, 4, 3, 2, 6, 7, 8, 7, 6, 10, 11, 12, 11, 10};
    check_pad(13, "reflect", (int64_t[]){0, -1, 0, 2}, 4, NULL, NULL, 0, 3, 5, want, 1);
}

Test(pad, negative_pads_crop_before_wrapping)
{
    static const float want[] = {2, 3, 4, 1, 2, 3, 4, 6, 7, 8, 5, 6, 7, 8};
    check_pad(19, "wrap", (int64_t[]){0, 3, -1, 0}, 4, NULL, NULL, 0, 2, 7, want, 1);
}

Test(pad, crop_to_one_column_then_pad_repeats_it_in_every_mode)
{
    /* cols cropped to the last one (4, 8, 12), then padded 2 at the end */
    static const float want[] = {4, 4, 4, 8, 8, 8, 12, 12, 12};
    check_pad(13, "edge", (int64_t[]){0, -3, 0, 2}, 4, NULL, NULL, 0, 3, 3, want, 1);
    check_pad(13, "reflect", (int64_t[]){0, -3, 0, 2}, 4, NULL, NULL, 0, 3, 3, want, 1);
    check_pad(19, "wrap", (int64_t[]){0, -3, 0, 2}, 4, NULL, NULL, 0, 3, 3, want, 1);
}

Test(pad, axes_input_pads_only_those_axes)
{
    static const float want[] = {1, 1, 2, 3, 4, 4, 5, 5, 6, 7, 8, 8, 9, 9, 10, 11, 12, 12};
    check_pad(18, "edge", (int64_t[]){1, 1}, 2, NULL, (int64_t[]){-1}, 1, 3, 6, want, 1);
}

Test(pad, attribute_form_of_opset_2)
{
    float xs[2] = {1, 2};
    qkv_tensor x = kh_f32(1, (int64_t[]){2}, xs), y;
    qkv_error err;
    kh_node *n = kh_node_create("Pad", 2, 1, 1);
    kh_attr_ints(n, "pads", (int64_t[]){1, 2}, 2);
    kh_attr_float(n, "value", -1.5f);
    cr_assert_eq(kh_run(n, &x, &y, &err), QKV_OK, "%s", err.message);
    float want[5] = {-1.5f, 1, 2, -1.5f, -1.5f};
    cr_assert_eq(y.dims[0], 5);
    for (int i = 0; i < 5; i++)
        cr_assert_float_eq(((float *)y.data)[i], want[i], 0);
    kh_free_outputs(&y, 1);
    kh_node_destroy(n);
}

Test(pad, attribute_value_converts_to_float16)
{
    uint16_t xs[1] = {0x3c00u}; /* 1.0 */
    qkv_tensor x = kh_tensor(QKV_DTYPE_FLOAT16, 1, (int64_t[]){1}, xs), y;
    qkv_error err;
    kh_node *n = kh_node_create("Pad", 2, 1, 1);
    kh_attr_ints(n, "pads", (int64_t[]){1, 0}, 2);
    kh_attr_float(n, "value", -2.5f);
    cr_assert_eq(kh_run(n, &x, &y, &err), QKV_OK, "%s", err.message);
    cr_assert_eq(((uint16_t *)y.data)[0], 0xc100u); /* -2.5 */
    cr_assert_eq(((uint16_t *)y.data)[1], 0x3c00u);
    kh_free_outputs(&y, 1);
    kh_node_destroy(n);
}

Test(pad, int32_and_bool_reflect_and_constant)
{
    int32_t xi[3] = {7, 8, 9};
    int64_t pads[2] = {2, 1};
    qkv_tensor in[2] = {kh_tensor(QKV_DTYPE_INT32, 1, (int64_t[]){3}, xi),
                        kh_i64(1, (int64_t[]){2}, pads)},
               y;
    qkv_error err;
    kh_node *n = kh_node_create("Pad", 13, 2, 1);
    kh_attr_string(n, "mode", "reflect");
    cr_assert_eq(kh_run(n, in, &y, &err), QKV_OK, "%s", err.message);
    int32_t want[6] = {9, 8, 7, 8, 9, 8};
    for (int i = 0; i < 6; i++)
        cr_assert_eq(((int32_t *)y.data)[i], want[i]);
    kh_free_outputs(&y, 1);
    kh_node_destroy(n);

    uint8_t xb[2] = {1, 0}, one = 1;
    qkv_tensor inb[3] = {kh_tensor(QKV_DTYPE_BOOL, 1, (int64_t[]){2}, xb),
                         kh_i64(1, (int64_t[]){2}, pads), kh_tensor(QKV_DTYPE_BOOL, 0, NULL, &one)};
    n = kh_node_create("Pad", 13, 3, 1);
    cr_assert_eq(kh_run(n, inb, &y, &err), QKV_OK, "%s", err.message);
    uint8_t wantb[5] = {1, 1, 1, 0, 1};
    for (int i = 0; i < 5; i++)
        cr_assert_eq(((uint8_t *)y.data)[i], wantb[i]);
    kh_free_outputs(&y, 1);
    kh_node_destroy(n);
}

Test(pad, large_3d_on_four_threads_matches_per_element_reference)
{
    enum { A = 4, B = 30, C = 200 }; /* > 64 KiB of output: parallel rows */
    float *xs = malloc(A * B * C * sizeof(float));
    kh_fill_random(xs, A * B * C, 5);
    int64_t pads[6] = {1, -2, 3, 0, 4, -5};
    qkv_tensor in[2] = {kh_f32(3, (int64_t[]){A, B, C}, xs), kh_i64(1, (int64_t[]){6}, pads)}, y;
    qkv_error err;
    kh_node *n = kh_node_create("Pad", 13, 2, 1);
    kh_attr_string(n, "mode", "edge");
    kh_set_threads(n, 4);
    cr_assert_eq(kh_run(n, in, &y, &err), QKV_OK, "%s", err.message);
    int64_t oa = A + 1, ob = B - 2 + 4, oc = C + 3 - 5;
    cr_assert_eq(y.dims[0], oa);
    cr_assert_eq(y.dims[1], ob);
    cr_assert_eq(y.dims[2], oc);
    for (int64_t i = 0; i < oa; i++)
        for (int64_t j = 0; j < ob; j++)
            for (int64_t k = 0; k < oc; k++) {
                /* crop then clamp: axis 1 keeps [2, B), axis 2 keeps [0, C - 5) */
                int64_t si = i - 1 < 0 ? 0 : i - 1 >= A ? A - 1 : i - 1;
                int64_t sj = 2 + (j < 0 ? 0 : j >= B - 2 ? B - 3 : j);
                int64_t sk = k - 3 < 0 ? 0 : k - 3 >= C - 5 ? C - 6 : k - 3;
                cr_assert_float_eq(((float *)y.data)[(i * ob + j) * oc + k],
                                   xs[(si * B + sj) * C + sk], 0, "[%lld,%lld,%lld]", (long long)i,
                                   (long long)j, (long long)k);
            }
    kh_free_outputs(&y, 1);
    kh_node_destroy(n);
    free(xs);
}

Test(pad, scalar_with_empty_pads_is_copied)
{
    double v = 2.5;
    int64_t pads[1];
    qkv_tensor in[2] = {kh_tensor(QKV_DTYPE_DOUBLE, 0, NULL, &v), kh_i64(1, (int64_t[]){0}, pads)},
               y;
    qkv_error err;
    kh_node *n = kh_node_create("Pad", 13, 2, 1);
    cr_assert_eq(kh_run(n, in, &y, &err), QKV_OK, "%s", err.message);
    cr_assert_eq(y.rank, 0);
    cr_assert_eq(((double *)y.data)[0], 2.5);
    kh_free_outputs(&y, 1);
    kh_node_destroy(n);
}

Test(pad, unknown_pads_give_unknown_dims)
{
    qkv_tensor in[2] = {kh_f32(2, (int64_t[]){3, 4}, x34),
                        kh_tensor(QKV_DTYPE_INT64, 1, (int64_t[]){4}, NULL)},
               y;
    qkv_error err;
    kh_node *n = kh_node_create("Pad", 13, 2, 1);
    cr_assert_eq(kh_infer(n, in, &y, &err), QKV_OK, "%s", err.message);
    cr_assert_eq(y.rank, 2);
    cr_assert_eq(y.dims[0], -1);
    cr_assert_eq(y.dims[1], -1);
    kh_node_destroy(n);
}

/* ---- errors ---------------------------------------------------------------------- */

static void expect_pad_error(int64_t opset, const char *mode, const int64_t *pads, size_t n_pads,
                             qkv_status want, const char *msg)
{
    qkv_tensor in[2] = {kh_f32(2, (int64_t[]){3, 4}, x34),
                        kh_i64(1, (int64_t[]){(int64_t)n_pads}, (int64_t *)pads)},
               y;
    qkv_error err;
    kh_node *n = kh_node_create("Pad", opset, 2, 1);
    kh_attr_string(n, "mode", mode);
    cr_assert_eq(kh_run(n, in, &y, &err), want, "%s", err.message);
    cr_assert(strstr(err.message, msg), "message '%s' lacks '%s'", err.message, msg);
    kh_node_destroy(n);
}

Test(pad, rejects_wrong_pads_count)
{
    expect_pad_error(13, "constant", (int64_t[]){1, 1}, 2, QKV_ERR_SHAPE,
                     "(Pad-11): input 1 'pads' has 2 values, expected 4 (2 * rank 2)");
}

Test(pad, rejects_crop_beyond_the_dim)
{
    expect_pad_error(13, "constant", (int64_t[]){-2, 0, -2, 0}, 4, QKV_ERR_SHAPE,
                     "pads (-2, -2) crop more than axis 0 of input 0 'data' (size 3)");
}

Test(pad, rejects_reflecting_an_empty_axis)
{
    expect_pad_error(13, "reflect", (int64_t[]){0, -4, 0, 1}, 4, QKV_ERR_SHAPE,
                     "mode 'reflect' cannot pad axis 1: nothing is left of it to repeat");
}

Test(pad, rejects_unknown_mode_and_wrap_before_opset_19)
{
    expect_pad_error(13, "mirror", (int64_t[]){0, 0, 0, 0}, 4, QKV_ERR_INVALID_MODEL,
                     "attribute 'mode' is 'mirror', expected 'constant', 'reflect' or 'edge'");
    expect_pad_error(18, "wrap", (int64_t[]){0, 0, 0, 0}, 4, QKV_ERR_INVALID_MODEL,
                     "('wrap' needs opset 19)");
}

Test(pad, rejects_repeated_axes)
{
    int64_t pads[4] = {1, 1, 1, 1}, axes[2] = {1, -1};
    qkv_tensor in[4] = {kh_f32(2, (int64_t[]){3, 4}, x34), kh_i64(1, (int64_t[]){4}, pads),
                        kh_f32(0, NULL, x34), kh_i64(1, (int64_t[]){2}, axes)},
               y;
    qkv_error err;
    kh_node *n = kh_node_create("Pad", 18, 4, 1);
    kh_omit_input(n, 2);
    cr_assert_eq(kh_run(n, in, &y, &err), QKV_ERR_SHAPE, "%s", err.message);
    cr_assert(strstr(err.message, "input 3 'axes' repeats axis 1"), "%s", err.message);
    kh_node_destroy(n);
}

Test(pad, rejects_constant_of_another_type)
{
    int64_t pads[4] = {0, 0, 0, 0};
    double v = 1;
    qkv_tensor in[3] = {kh_f32(2, (int64_t[]){3, 4}, x34), kh_i64(1, (int64_t[]){4}, pads),
                        kh_tensor(QKV_DTYPE_DOUBLE, 0, NULL, &v)},
               y;
    qkv_error err;
    kh_node *n = kh_node_create("Pad", 13, 3, 1);
    cr_assert_eq(kh_run(n, in, &y, &err), QKV_ERR_TYPE, "%s", err.message);
    cr_assert(strstr(err.message, "input 2 'constant_value' has type float64, input 0 'data' has "
                                  "float32"),
              "%s", err.message);
    kh_node_destroy(n);
}

Test(pad, rejects_missing_pads_attribute)
{
    qkv_tensor x = kh_f32(2, (int64_t[]){3, 4}, x34), y;
    qkv_error err;
    kh_node *n = kh_node_create("Pad", 2, 1, 1);
    cr_assert_eq(kh_run(n, &x, &y, &err), QKV_ERR_INVALID_MODEL);
    cr_assert(strstr(err.message, "(Pad-2): attribute 'pads' is missing"), "%s", err.message);
    kh_node_destroy(n);
}
