/* Dropout: identity in inference, numpy-matching masks in training mode. */
#include <criterion/criterion.h>
#include <stdlib.h>
#include <string.h>

#include "kernel_harness.h"

Test(dropout, inference_copies_input_and_mask_is_true)
{
    float xs[6] = {1, -2, 3, -4, 5, 6};
    qkv_tensor x = kh_f32(2, (int64_t[]){2, 3}, xs), y[2];
    qkv_error err;
    kh_node *n = kh_node_create("Dropout", 13, 1, 2);
    cr_assert_eq(kh_run(n, &x, y, &err), QKV_OK, "%s", err.message);
    cr_assert_eq(y[0].dtype, QKV_DTYPE_FLOAT);
    cr_assert_eq(y[1].dtype, QKV_DTYPE_BOOL);
    cr_assert_eq(y[1].rank, 2);
    cr_assert_eq(y[1].dims[1], 3);
    for (int i = 0; i < 6; i++) {
        cr_assert_float_eq(((float *)y[0].data)[i], xs[i], 0);
        cr_assert_eq(((uint8_t *)y[1].data)[i], 1);
    }
    kh_free_outputs(y, 2);
    kh_node_destroy(n);
}

Test(dropout, old_opset_ignores_ratio_and_mask_has_input_type)
{
    float xs[3] = {-1, 0, 1};
    qkv_tensor x = kh_f32(1, (int64_t[]){3}, xs), y[2];
    qkv_error err;
    kh_node *n = kh_node_create("Dropout", 7, 1, 2);
    kh_attr_float(n, "ratio", 0.9f);
    cr_assert_eq(kh_run(n, &x, y, &err), QKV_OK, "%s", err.message);
    cr_assert_eq(y[1].dtype, QKV_DTYPE_FLOAT);
    for (int i = 0; i < 3; i++) {
        cr_assert_float_eq(((float *)y[0].data)[i], xs[i], 0);
        cr_assert_float_eq(((float *)y[1].data)[i], 1, 0);
    }
    kh_free_outputs(y, 2);
    kh_node_destroy(n);
}

Test(dropout, training_mode_false_is_identity)
{
    float xs[4] = {1, 2, 3, 4}, r = 0.5f;
    uint8_t t = 0;
    qkv_tensor in[3] = {kh_f32(1, (int64_t[]){4}, xs), kh_f32(0, NULL, &r),
                        kh_tensor(QKV_DTYPE_BOOL, 0, NULL, &t)},
               y;
    qkv_error err;
    kh_node *n = kh_node_create("Dropout", 13, 3, 1);
    cr_assert_eq(kh_run(n, in, &y, &err), QKV_OK, "%s", err.message);
    for (int i = 0; i < 4; i++)
        cr_assert_float_eq(((float *)y.data)[i], xs[i], 0);
    kh_free_outputs(&y, 1);
    kh_node_destroy(n);
}

/* Runs training-mode Dropout on n elements 1..n; outputs y and mask. */
static void run_training(size_t count, float ratio, int64_t seed, float **y, uint8_t **mask)
{
    float *xs = malloc(count * sizeof *xs);
    for (size_t i = 0; i < count; i++)
        xs[i] = (float)(i + 1);
    uint8_t t = 1;
    qkv_tensor in[3] = {kh_f32(1, (int64_t[]){(int64_t)count}, xs), kh_f32(0, NULL, &ratio),
                        kh_tensor(QKV_DTYPE_BOOL, 0, NULL, &t)},
               out[2];
    qkv_error err;
    kh_node *n = kh_node_create("Dropout", 13, 3, 2);
    kh_attr_int(n, "seed", seed);
    cr_assert_eq(kh_run(n, in, out, &err), QKV_OK, "%s", err.message);
    *y = out[0].data;
    *mask = out[1].data;
    kh_node_destroy(n);
    free(xs);
}

/* Expected masks from numpy: np.random.seed(S); np.random.uniform(0, 1, (N,)) >= R. */
Test(dropout, training_mask_matches_numpy_seed_0)
{
    static const uint8_t want[12] = {1, 1, 1, 1, 0, 1, 0, 1, 1, 0, 1, 1};
    float *y;
    uint8_t *m;
    run_training(12, 0.5f, 0, &y, &m);
    for (int i = 0; i < 12; i++) {
        cr_assert_eq(m[i], want[i], "mask[%d]", i);
        /* kept elements are scaled by 1 / (1 - 0.5) = 2 exactly */
        cr_assert_float_eq(y[i], want[i] ? 2.0f * (float)(i + 1) : 0.0f, 0, "y[%d]", i);
    }
    free(y);
    free(m);
}

Test(dropout, training_mask_matches_numpy_seed_7)
{
    static const uint8_t want[12] = {0, 1, 1, 1, 1, 1, 1, 0, 1, 1, 1, 1};
    float *y;
    uint8_t *m;
    run_training(12, 0.25f, 7, &y, &m);
    for (int i = 0; i < 12; i++)
        cr_assert_eq(m[i], want[i], "mask[%d]", i);
    free(y);
    free(m);
}

Test(dropout, training_mask_matches_numpy_across_generator_refills)
{
    /* elements 620..639 of 700 draw words 1240..1279: past the second refill */
    static const uint8_t want[20] = {0, 1, 1, 1, 1, 1, 1, 1, 0, 0, 0, 0, 0, 1, 1, 1, 0, 0, 1, 1};
    float *y;
    uint8_t *m;
    run_training(700, 0.5f, 0, &y, &m);
    for (int i = 0; i < 20; i++)
        cr_assert_eq(m[620 + i], want[i], "mask[%d]", 620 + i);
    free(y);
    free(m);
}

Test(dropout, training_with_zero_ratio_keeps_everything)
{
    float *y;
    uint8_t *m;
    run_training(8, 0.0f, 0, &y, &m);
    for (int i = 0; i < 8; i++) {
        cr_assert_eq(m[i], 1);
        cr_assert_float_eq(y[i], (float)(i + 1), 0);
    }
    free(y);
    free(m);
}

Test(dropout, rejects_ratio_of_one_in_training)
{
    float xs[2] = {1, 2}, r = 1.0f;
    uint8_t t = 1;
    qkv_tensor in[3] = {kh_f32(1, (int64_t[]){2}, xs), kh_f32(0, NULL, &r),
                        kh_tensor(QKV_DTYPE_BOOL, 0, NULL, &t)},
               y;
    qkv_error err;
    kh_node *n = kh_node_create("Dropout", 13, 3, 1);
    cr_assert_eq(kh_run(n, in, &y, &err), QKV_ERR_INVALID_ARGUMENT);
    cr_assert(strstr(err.message, "node 'test_node' (Dropout-12): input 1 'ratio' is 1, expected "
                                  "a value in [0, 1) in training mode"),
              "%s", err.message);
    kh_node_destroy(n);
}

Test(dropout, rejects_non_scalar_training_mode)
{
    float xs[2] = {1, 2}, r = 0.5f;
    uint8_t t[2] = {1, 1};
    qkv_tensor in[3] = {kh_f32(1, (int64_t[]){2}, xs), kh_f32(0, NULL, &r),
                        kh_tensor(QKV_DTYPE_BOOL, 1, (int64_t[]){2}, t)},
               y;
    qkv_error err;
    kh_node *n = kh_node_create("Dropout", 13, 3, 1);
    cr_assert_eq(kh_run(n, in, &y, &err), QKV_ERR_SHAPE);
    cr_assert(strstr(err.message, "input 2 'training_mode' has shape [2], expected a scalar"), "%s",
              err.message);
    kh_node_destroy(n);
}

Test(dropout, rejects_integer_input)
{
    int64_t xs[2] = {1, 2};
    qkv_tensor x = kh_i64(1, (int64_t[]){2}, xs), y;
    qkv_error err;
    kh_node *n = kh_node_create("Dropout", 13, 1, 1);
    cr_assert_eq(kh_run(n, &x, &y, &err), QKV_ERR_TYPE);
    cr_assert(strstr(err.message, "input 0 has type int64, not supported"), "%s", err.message);
    kh_node_destroy(n);
}

Test(dropout, training_double_input_with_float16_ratio)
{
    static const uint8_t want[12] = {1, 1, 1, 1, 0, 1, 0, 1, 1, 0, 1, 1}; /* numpy seed 0, 0.5 */
    double xs[12];
    for (int i = 0; i < 12; i++)
        xs[i] = i + 1;
    uint16_t r = 0x3800u; /* 0.5 */
    uint8_t t = 1;
    qkv_tensor in[3] = {kh_tensor(QKV_DTYPE_DOUBLE, 1, (int64_t[]){12}, xs),
                        kh_tensor(QKV_DTYPE_FLOAT16, 0, NULL, &r),
                        kh_tensor(QKV_DTYPE_BOOL, 0, NULL, &t)},
               y;
    qkv_error err;
    kh_node *n = kh_node_create("Dropout", 13, 3, 1);
    cr_assert_eq(kh_run(n, in, &y, &err), QKV_OK, "%s", err.message);
    for (int i = 0; i < 12; i++)
        cr_assert_eq(((double *)y.data)[i], want[i] ? 2.0 * (i + 1) : 0.0, "y[%d]", i);
    kh_free_outputs(&y, 1);
    kh_node_destroy(n);
}

Test(dropout, training_float16_input_is_unsupported)
{
    uint16_t xs[2] = {0x3c00u, 0x3c00u}, r = 0x3800u;
    uint8_t t = 1;
    qkv_tensor in[3] = {kh_tensor(QKV_DTYPE_FLOAT16, 1, (int64_t[]){2}, xs),
                        kh_tensor(QKV_DTYPE_FLOAT16, 0, NULL, &r),
                        kh_tensor(QKV_DTYPE_BOOL, 0, NULL, &t)},
               y;
    qkv_error err;
    kh_node *n = kh_node_create("Dropout", 13, 3, 1);
    cr_assert_eq(kh_run(n, in, &y, &err), QKV_ERR_UNSUPPORTED);
    cr_assert(strstr(err.message, "training mode is supported for float and double inputs, not "
                                  "float16"),
              "%s", err.message);
    kh_node_destroy(n);
}
