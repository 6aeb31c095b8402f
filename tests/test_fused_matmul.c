/* qkv.FusedMatMul (ops/fused_matmul.c): activation(A @ B + bias) + residual
 * against a double-precision reference for every activation with and
 * without bias and residual, 1-D to 4-D A, several threads, and every error
 * path. */
#include <criterion/criterion.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "kernel_harness.h"

static const char *const acts[] = {"", "relu", "gelu", "gelu_tanh"};

static double ref_act(double v, const char *act)
{
    if (strcmp(act, "relu") == 0)
        return v < 0 ? 0 : v;
    if (strcmp(act, "gelu") == 0)
        return 0.5 * v * erfc(-v / sqrt(2.0));
    if (strcmp(act, "gelu_tanh") == 0)
        return 0.5 * v * (1 + tanh(sqrt(2 / 3.14159265358979323846) * (v + 0.044715 * v * v * v)));
    return v;
}

/* A FusedMatMul node with `n_in` input slots; act NULL: no attribute. */
static kh_node *fmm_node(const char *act, size_t n_in)
{
    kh_node *n = kh_node_create_in("qkv", "FusedMatMul", 1, n_in, 1);
    if (act)
        kh_attr_string(n, "activation", act);
    return n;
}

/*
 * Runs A (a_rank dims ending in K; the others from lead[]) @ B (K, N) with
 * the optional terms and checks every element against double math.
 */
static void check_case(const char *act, bool bias, bool residual, int32_t a_rank,
                       const int64_t *lead, int64_t k, int64_t n_cols, size_t threads)
{
    int64_t adims[4], ydims[4];
    size_t m = 1;
    for (int32_t j = 0; j + 1 < a_rank; j++) {
        adims[j] = ydims[j] = lead[j];
        m *= (size_t)lead[j];
    }
    adims[a_rank - 1] = k;
    ydims[a_rank - 1] = n_cols;
    size_t nk = (size_t)k, nn = (size_t)n_cols;
    float *a = malloc(m * nk * sizeof *a), *b = malloc(nk * nn * sizeof *b);
    float *bv = malloc(nn * sizeof *bv), *r = malloc(m * nn * sizeof *r);
    cr_assert(a && b && bv && r);
    kh_fill_random(a, m * nk, 1);
    kh_fill_random(b, nk * nn, 2);
    kh_fill_random(bv, nn, 3);
    kh_fill_random(r, m * nn, 4);
    for (size_t j = 0; j < m * nk; j++)
        a[j] *= 2.0f;

    size_t n_in = residual ? 4 : bias ? 3 : 2;
    kh_node *node = fmm_node(act, n_in);
    kh_set_threads(node, threads);
    qkv_tensor in[4] = {kh_f32(a_rank, adims, a), kh_f32(2, (int64_t[]){k, n_cols}, b),
                        kh_f32(1, &n_cols, bv), kh_f32(a_rank, ydims, r)};
    if (!bias && residual)
        kh_omit_input(node, 2);
    qkv_tensor y;
    qkv_error err = {0};
    cr_assert_eq(kh_run(node, in, &y, &err), QKV_OK, "%s", err.message);
    cr_assert_eq(y.dtype, QKV_DTYPE_FLOAT);
    cr_assert_eq(y.rank, a_rank);
    for (int32_t j = 0; j < a_rank; j++)
        cr_assert_eq(y.dims[j], ydims[j]);
    const float *yv = y.data;
    const char *name = act ? act : "";
    for (size_t i = 0; i < m; i++)
        for (size_t j = 0; j < nn; j++) {
            double s = 0;
            for (size_t p = 0; p < nk; p++)
                s += (double)a[i * nk + p] * b[p * nn + j];
            double want = ref_act(s + (bias ? bv[j] : 0.0), name) + (residual ? r[i * nn + j] : 0);
            /* float32 dot products of length k: a few ulps of sum |a b| */
            cr_assert(fabs(yv[i * nn + j] - want) <= 1e-5 * (1 + fabs(want)),
                      "act '%s' bias %d res %d: y[%zu,%zu] = %.9g, expected %.9g", name, bias,
                      residual, i, j, yv[i * nn + j], want);
        }
    kh_free_outputs(&y, 1);
    kh_node_destroy(node);
    free(a);
    free(b);
    free(bv);
    free(r);
}

Test(fused_matmul, every_activation_with_and_without_bias_and_residual_3d)
{
    for (size_t k = 0; k < 4; k++)
        for (int terms = 0; terms < 4; terms++)
            check_case(acts[k], terms & 1, terms & 2, 3, (int64_t[]){2, 5}, 16, 19, 1);
}

Test(fused_matmul, no_attribute_is_no_activation)
{
    check_case(NULL, true, true, 2, (int64_t[]){4}, 8, 8, 1);
}

Test(fused_matmul, one_dimensional_a)
{
    check_case("gelu", true, false, 1, NULL, 12, 21, 1);
    check_case("relu", false, true, 1, NULL, 12, 21, 1);
}

Test(fused_matmul, four_dimensional_a_on_threads)
{
    /* 2 * 3 * 40 rows of 72: the epilogue is split over the threads */
    check_case("gelu", true, true, 4, (int64_t[]){2, 3, 40}, 24, 72, 3);
    check_case("gelu_tanh", true, false, 4, (int64_t[]){2, 3, 40}, 24, 72, 3);
}

/* Runs a node expected to fail; returns its status, message in err. */
static qkv_status run_fail(kh_node *node, const qkv_tensor *in, qkv_error *err)
{
    qkv_tensor y;
    qkv_status st = kh_run(node, in, &y, err);
    if (st == QKV_OK)
        kh_free_outputs(&y, 1);
    kh_node_destroy(node);
    return st;
}

Test(fused_matmul, errors)
{
    float a[24] = {0}, b[24] = {0}, c[24] = {0}, r[24] = {0};
    qkv_error err = {0};
    qkv_tensor in[4] = {kh_f32(2, (int64_t[]){2, 3}, a), kh_f32(2, (int64_t[]){3, 4}, b),
                        kh_f32(1, (int64_t[]){4}, c), kh_f32(2, (int64_t[]){2, 4}, r)};

    cr_assert_eq(run_fail(fmm_node("swish", 2), in, &err), QKV_ERR_INVALID_MODEL);
    cr_assert(strstr(err.message, "activation='swish'"), "%s", err.message);

    qkv_tensor bad[4];
    memcpy(bad, in, sizeof bad);
    bad[1] = kh_f32(3, (int64_t[]){1, 3, 4}, b);
    cr_assert_eq(run_fail(fmm_node("", 2), bad, &err), QKV_ERR_SHAPE);
    cr_assert(strstr(err.message, "input 1 'B' has shape [1,3,4]; expected rank 2"), "%s",
              err.message);

    memcpy(bad, in, sizeof bad);
    bad[1] = kh_f32(2, (int64_t[]){4, 3}, b);
    cr_assert_eq(run_fail(fmm_node("", 2), bad, &err), QKV_ERR_SHAPE);
    cr_assert(strstr(err.message, "K differs (3 vs 4)"), "%s", err.message);

    memcpy(bad, in, sizeof bad);
    bad[0] = kh_f32(0, NULL, a);
    cr_assert_eq(run_fail(fmm_node("", 2), bad, &err), QKV_ERR_SHAPE);
    cr_assert(strstr(err.message, "input 0 'A' is a scalar"), "%s", err.message);

    memcpy(bad, in, sizeof bad);
    bad[2] = kh_f32(1, (int64_t[]){3}, c);
    cr_assert_eq(run_fail(fmm_node("", 3), bad, &err), QKV_ERR_SHAPE);
    cr_assert(strstr(err.message, "input 2 'bias' has shape [3]; expected (N) = (4)"), "%s",
              err.message);

    memcpy(bad, in, sizeof bad);
    bad[2] = kh_f32(2, (int64_t[]){1, 4}, c);
    cr_assert_eq(run_fail(fmm_node("", 3), bad, &err), QKV_ERR_SHAPE);
    cr_assert(strstr(err.message, "input 2 'bias' has shape [1,4]"), "%s", err.message);

    memcpy(bad, in, sizeof bad);
    bad[3] = kh_f32(2, (int64_t[]){1, 4}, r);
    cr_assert_eq(run_fail(fmm_node("", 4), bad, &err), QKV_ERR_SHAPE);
    cr_assert(strstr(err.message, "input 3 'residual' has shape [1,4]; expected Y's [2,4]"), "%s",
              err.message);

    memcpy(bad, in, sizeof bad);
    int64_t di[6] = {0};
    bad[0] = kh_i64(2, (int64_t[]){2, 3}, di);
    cr_assert_eq(run_fail(fmm_node("", 2), bad, &err), QKV_ERR_TYPE);
}
