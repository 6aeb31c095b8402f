/* BatchNormalization (inference and training mode) and InstanceNormalization
 * against their formulas in double on random shapes, mixed parameter types,
 * threads, and errors (training mode, shapes). */
#include <criterion/criterion.h>
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "kernel_harness.h"

static uint32_t rng_state = 2024;
static uint32_t rnd(uint32_t n)
{
    rng_state ^= rng_state << 13;
    rng_state ^= rng_state >> 17;
    rng_state ^= rng_state << 5;
    return rng_state % n;
}

/* Tolerance: the kernel's float path sums in float blocks added in double
 * and normalises each element in float (a few float ulps); outputs are
 * O(1-10), so 1e-5 absolute + relative is far above that rounding and far
 * below any wrong channel, mean or epsilon. */
static void assert_close(const float *got, const double *want, size_t n, const char *what)
{
    for (size_t i = 0; i < n; i++)
        cr_assert(fabs(got[i] - want[i]) <= 1e-5 + 1e-5 * fabs(want[i]),
                  "%s: element %zu is %.9g, expected %.9g", what, i, got[i], want[i]);
}

static void random_shape(int64_t *dims, int *rank, size_t *planes, size_t *s)
{
    *rank = 2 + (int)rnd(3);
    *s = 1;
    for (int k = 0; k < *rank; k++) {
        dims[k] = 1 + rnd(5);
        if (k >= 2)
            *s *= (size_t)dims[k];
    }
    *planes = (size_t)(dims[0] * dims[1]);
}

Test(batchnorm, matches_formula_on_random_shapes_in_every_opset)
{
    static const int64_t opsets[] = {7, 9, 14, 15};
    float xs[625], scale[5], bias[5], mean[5], var[5];
    double want[625];
    for (int trial = 0; trial < 80; trial++) {
        int64_t dims[4];
        int rank;
        size_t planes, s;
        random_shape(dims, &rank, &planes, &s);
        size_t c = (size_t)dims[1];
        kh_fill_random(xs, planes * s, rnd(100) + 1);
        kh_fill_random(scale, c, rnd(100) + 1);
        kh_fill_random(bias, c, rnd(100) + 1);
        kh_fill_random(mean, c, rnd(100) + 1);
        kh_fill_random(var, c, rnd(100) + 1);
        for (size_t i = 0; i < c; i++)
            var[i] = fabsf(var[i]) + 0.01f;
        float eps = trial % 2 ? 1e-2f : 1e-5f;
        for (size_t p = 0; p < planes; p++)
            for (size_t i = 0; i < s; i++) {
                size_t ch = p % c;
                want[p * s + i] =
                    scale[ch] * (xs[p * s + i] - (double)mean[ch]) / sqrt(var[ch] + (double)eps) +
                    bias[ch];
            }
        int64_t opset = opsets[trial % 4];
        kh_node *n = kh_node_create("BatchNormalization", opset, 5, 1);
        if (trial % 2)
            kh_attr_float(n, "epsilon", eps);
        if (opset >= 14)
            kh_attr_int(n, "training_mode", 0);
        int64_t cd[1] = {(int64_t)c};
        qkv_tensor ins[5] = {kh_f32(rank, dims, xs), kh_f32(1, cd, scale), kh_f32(1, cd, bias),
                             kh_f32(1, cd, mean), kh_f32(1, cd, var)};
        qkv_tensor y;
        qkv_error err;
        char what[64];
        snprintf(what, sizeof what, "trial %d opset %lld rank %d", trial, (long long)opset, rank);
        cr_assert_eq(kh_run(n, ins, &y, &err), QKV_OK, "%s: %s", what, err.message);
        cr_assert_eq(y.rank, rank, "%s", what);
        assert_close(y.data, want, planes * s, what);
        kh_free_outputs(&y, 1);
        kh_node_destroy(n);
    }
}

/* opset 15: scale/B (T1) and mean/var (T2) may differ from X's type */
Test(batchnorm, mixed_parameter_types)
{
    float xs[4] = {1, 2, 3, 4};
    double scale[2] = {2, 0.5}, bias[2] = {1, -1};
    float mean[2] = {1.5f, 3.5f}, var[2] = {0.25f, 1};
    kh_node *n = kh_node_create("BatchNormalization", 15, 5, 1);
    int64_t cd[1] = {2};
    qkv_tensor ins[5] = {
        kh_f32(2, (int64_t[]){2, 2}, xs), kh_tensor(QKV_DTYPE_DOUBLE, 1, cd, scale),
        kh_tensor(QKV_DTYPE_DOUBLE, 1, cd, bias), kh_f32(1, cd, mean), kh_f32(1, cd, var)};
    qkv_tensor y;
    qkv_error err;
    cr_assert_eq(kh_run(n, ins, &y, &err), QKV_OK, "%s", err.message);
    double want[4];
    for (int i = 0; i < 4; i++) {
        int ch = i % 2;
        want[i] = scale[ch] * (xs[i] - mean[ch]) / sqrt(var[ch] + (double)1e-5f) + bias[ch];
    }
    assert_close(y.data, want, 4, "mixed");
    kh_free_outputs(&y, 1);
    kh_node_destroy(n);
}

static void ref_instance(const float *x, const float *scale, const float *bias, size_t planes,
                         size_t c, size_t s, double eps, double *y)
{
    for (size_t p = 0; p < planes; p++) {
        double m = 0, v = 0;
        for (size_t i = 0; i < s; i++)
            m += x[p * s + i];
        m /= (double)s;
        for (size_t i = 0; i < s; i++)
            v += (x[p * s + i] - m) * (x[p * s + i] - m);
        v /= (double)s;
        for (size_t i = 0; i < s; i++)
            y[p * s + i] = scale[p % c] * (x[p * s + i] - m) / sqrt(v + eps) + bias[p % c];
    }
}

Test(instancenorm, matches_reference_on_random_shapes)
{
    float xs[625], scale[5], bias[5];
    double want[625];
    for (int trial = 0; trial < 60; trial++) {
        int64_t dims[4];
        int rank;
        size_t planes, s;
        random_shape(dims, &rank, &planes, &s);
        size_t c = (size_t)dims[1];
        kh_fill_random(xs, planes * s, rnd(100) + 1);
        for (size_t i = 0; i < planes * s; i++)
            xs[i] = xs[i] * 2 + 3;
        kh_fill_random(scale, c, rnd(100) + 1);
        kh_fill_random(bias, c, rnd(100) + 1);
        float eps = trial % 2 ? 1e-2f : 1e-5f;
        ref_instance(xs, scale, bias, planes, c, s, eps, want);
        kh_node *n = kh_node_create("InstanceNormalization", 6, 3, 1);
        if (trial % 2)
            kh_attr_float(n, "epsilon", eps);
        int64_t cd[1] = {(int64_t)c};
        qkv_tensor ins[3] = {kh_f32(rank, dims, xs), kh_f32(1, cd, scale), kh_f32(1, cd, bias)};
        qkv_tensor y;
        qkv_error err;
        char what[48];
        snprintf(what, sizeof what, "trial %d rank %d", trial, rank);
        cr_assert_eq(kh_run(n, ins, &y, &err), QKV_OK, "%s: %s", what, err.message);
        assert_close(y.data, want, planes * s, what);
        kh_free_outputs(&y, 1);
        kh_node_destroy(n);
    }
}

Test(instancenorm, large_planes_on_threads)
{
    enum { N = 2, C = 8, S = 40 * 50 };
    static float xs[N * C * S];
    static double want[N * C * S];
    float scale[C], bias[C];
    kh_fill_random(xs, N * C * S, 6);
    kh_fill_random(scale, C, 7);
    kh_fill_random(bias, C, 8);
    ref_instance(xs, scale, bias, N * C, C, S, 1e-5f, want);
    kh_node *n = kh_node_create("InstanceNormalization", 6, 3, 1);
    kh_set_threads(n, 4);
    int64_t cd[1] = {C};
    qkv_tensor ins[3] = {kh_f32(4, (int64_t[]){N, C, 40, 50}, xs), kh_f32(1, cd, scale),
                         kh_f32(1, cd, bias)};
    qkv_tensor y;
    qkv_error err;
    cr_assert_eq(kh_run(n, ins, &y, &err), QKV_OK, "%s", err.message);
    assert_close(y.data, want, N * C * S, "threads");
    kh_free_outputs(&y, 1);
    kh_node_destroy(n);
}

/* ---- training mode ---------------------------------------------------------- */

/* The spec's training mode: per-channel mean and population variance over
 * (N, D1..Dk), Y normalised with them, running statistics blended with
 * momentum. Written here in double, two passes like numpy's mean and var. */
static void ref_training(const float *x, const float *scale, const float *bias,
                         const float *mean_in, const float *var_in, size_t n, size_t c, size_t s,
                         double eps, double momentum, double *y, double *mean_out, double *var_out)
{
    for (size_t ch = 0; ch < c; ch++) {
        double m = 0, v = 0;
        for (size_t b = 0; b < n; b++)
            for (size_t i = 0; i < s; i++)
                m += x[(b * c + ch) * s + i];
        m /= (double)(n * s);
        for (size_t b = 0; b < n; b++)
            for (size_t i = 0; i < s; i++) {
                double d = x[(b * c + ch) * s + i] - m;
                v += d * d;
            }
        v /= (double)(n * s);
        for (size_t b = 0; b < n; b++)
            for (size_t i = 0; i < s; i++) {
                size_t k = (b * c + ch) * s + i;
                y[k] = scale[ch] * (x[k] - m) / sqrt(v + eps) + bias[ch];
            }
        mean_out[ch] = mean_in[ch] * momentum + m * (1 - momentum);
        var_out[ch] = var_in[ch] * momentum + v * (1 - momentum);
    }
}

Test(batchnorm, training_mode_uses_batch_statistics)
{
    float xs[625], scale[5], bias[5], mean[5], var[5];
    double want[625], want_mean[5], want_var[5];
    for (int trial = 0; trial < 80; trial++) {
        int64_t dims[4];
        int rank;
        size_t planes, s;
        random_shape(dims, &rank, &planes, &s);
        size_t c = (size_t)dims[1], n = (size_t)dims[0];
        kh_fill_random(xs, planes * s, rnd(100) + 1);
        for (size_t i = 0; i < planes * s; i++)
            xs[i] = xs[i] * 3 + 1;
        kh_fill_random(scale, c, rnd(100) + 1);
        kh_fill_random(bias, c, rnd(100) + 1);
        kh_fill_random(mean, c, rnd(100) + 1);
        kh_fill_random(var, c, rnd(100) + 1);
        for (size_t i = 0; i < c; i++)
            var[i] = fabsf(var[i]) + 0.01f;
        float eps = trial % 2 ? 1e-2f : 1e-5f;
        float momentum = trial % 3 ? 0.9f : 0.75f;
        ref_training(xs, scale, bias, mean, var, n, c, s, eps, momentum, want, want_mean, want_var);
        int64_t opset = trial % 4 < 2 ? 14 : 15;
        size_t n_out = trial % 5 == 0 ? 1 : 3;
        kh_node *node = kh_node_create("BatchNormalization", opset, 5, n_out);
        kh_attr_int(node, "training_mode", 1);
        if (trial % 2)
            kh_attr_float(node, "epsilon", eps);
        if (momentum != 0.9f)
            kh_attr_float(node, "momentum", momentum);
        int64_t cd[1] = {(int64_t)c};
        qkv_tensor ins[5] = {kh_f32(rank, dims, xs), kh_f32(1, cd, scale), kh_f32(1, cd, bias),
                             kh_f32(1, cd, mean), kh_f32(1, cd, var)};
        qkv_tensor outs[3];
        qkv_error err;
        char what[64];
        snprintf(what, sizeof what, "trial %d opset %lld rank %d", trial, (long long)opset, rank);
        cr_assert_eq(kh_run(node, ins, outs, &err), QKV_OK, "%s: %s", what, err.message);
        assert_close(outs[0].data, want, planes * s, what);
        if (n_out == 3) {
            cr_assert_eq(outs[1].rank, 1, "%s", what);
            cr_assert_eq(outs[1].dims[0], (int64_t)c, "%s", what);
            cr_assert_eq(outs[2].dtype, QKV_DTYPE_FLOAT, "%s", what);
            assert_close(outs[1].data, want_mean, c, what);
            assert_close(outs[2].data, want_var, c, what);
        }
        kh_free_outputs(outs, n_out);
        kh_node_destroy(node);
    }
}

Test(batchnorm, training_mode_large_input_on_threads)
{
    enum { N = 2, C = 8, S = 40 * 50 };
    static float xs[N * C * S];
    static double want[N * C * S];
    float scale[C], bias[C], mean[C], var[C];
    double want_mean[C], want_var[C];
    kh_fill_random(xs, N * C * S, 16);
    kh_fill_random(scale, C, 17);
    kh_fill_random(bias, C, 18);
    kh_fill_random(mean, C, 19);
    kh_fill_random(var, C, 20);
    for (size_t i = 0; i < C; i++)
        var[i] = fabsf(var[i]) + 0.01f;
    ref_training(xs, scale, bias, mean, var, N, C, S, 1e-5f, 0.9f, want, want_mean, want_var);
    kh_node *n = kh_node_create("BatchNormalization", 15, 5, 3);
    kh_attr_int(n, "training_mode", 1);
    kh_set_threads(n, 4);
    int64_t cd[1] = {C};
    qkv_tensor ins[5] = {kh_f32(4, (int64_t[]){N, C, 40, 50}, xs), kh_f32(1, cd, scale),
                         kh_f32(1, cd, bias), kh_f32(1, cd, mean), kh_f32(1, cd, var)},
               outs[3];
    qkv_error err;
    cr_assert_eq(kh_run(n, ins, outs, &err), QKV_OK, "%s", err.message);
    assert_close(outs[0].data, want, N * C * S, "y");
    assert_close(outs[1].data, want_mean, C, "running_mean");
    assert_close(outs[2].data, want_var, C, "running_var");
    kh_free_outputs(outs, 3);
    kh_node_destroy(n);
}

/* opset 15: the running statistics keep input_mean's and input_var's type */
Test(batchnorm, training_mode_running_statistics_of_their_input_type)
{
    double xs[8] = {1, 2, 3, 4, 5, 6, 7, 9};
    float scale[2] = {1, 2}, bias[2] = {0, 1};
    double mean[2] = {0.5, -0.5}, var[2] = {1, 2};
    kh_node *n = kh_node_create("BatchNormalization", 15, 5, 3);
    kh_attr_int(n, "training_mode", 1);
    int64_t cd[1] = {2};
    qkv_tensor ins[5] = {kh_tensor(QKV_DTYPE_DOUBLE, 3, (int64_t[]){2, 2, 2}, xs),
                         kh_f32(1, cd, scale), kh_f32(1, cd, bias),
                         kh_tensor(QKV_DTYPE_DOUBLE, 1, cd, mean),
                         kh_tensor(QKV_DTYPE_DOUBLE, 1, cd, var)},
               outs[3];
    qkv_error err;
    cr_assert_eq(kh_run(n, ins, outs, &err), QKV_OK, "%s", err.message);
    cr_assert_eq(outs[0].dtype, QKV_DTYPE_DOUBLE);
    cr_assert_eq(outs[1].dtype, QKV_DTYPE_DOUBLE);
    cr_assert_eq(outs[2].dtype, QKV_DTYPE_DOUBLE);
    /* channel 0 holds 1, 2, 5, 6: mean 3.5, variance (6.25+2.25+2.25+6.25)/4 = 4.25;
     * channel 1 holds 3, 4, 7, 9: mean 5.75, variance (7.5625+3.0625+1.5625+10.5625)/4 */
    const double m[2] = {3.5, 5.75}, v[2] = {4.25, 22.75 / 4};
    for (int ch = 0; ch < 2; ch++) {
        double want_mean = mean[ch] * (double)0.9f + m[ch] * (1 - (double)0.9f);
        double want_var = var[ch] * (double)0.9f + v[ch] * (1 - (double)0.9f);
        cr_assert(fabs(((double *)outs[1].data)[ch] - want_mean) < 1e-12, "mean %d", ch);
        cr_assert(fabs(((double *)outs[2].data)[ch] - want_var) < 1e-12, "var %d", ch);
    }
    double y0 = scale[0] * (1 - 3.5) / sqrt(4.25 + (double)1e-5f) + bias[0];
    double got = ((double *)outs[0].data)[0];
    cr_assert(fabs(got - y0) < 1e-12, "y[0] is %.17g, expected %.17g", got, y0);
    kh_free_outputs(outs, 3);
    kh_node_destroy(n);
}

/* ---- errors ----------------------------------------------------------------- */

static qkv_status run_bn(int64_t opset, size_t n_out, int64_t training, int64_t spatial,
                         int64_t x_rank, int64_t c_param, qkv_error *err)
{
    static float buf[64];
    kh_node *n = kh_node_create("BatchNormalization", opset, 5, n_out);
    if (training >= 0)
        kh_attr_int(n, "training_mode", training);
    if (spatial >= 0)
        kh_attr_int(n, "spatial", spatial);
    int64_t xd[3] = {2, 3, 4}, cd[1] = {c_param};
    qkv_tensor ins[5] = {kh_f32((int32_t)x_rank, xd, buf), kh_f32(1, cd, buf), kh_f32(1, cd, buf),
                         kh_f32(1, cd, buf), kh_f32(1, cd, buf)};
    qkv_tensor outs[5];
    qkv_status st = kh_run(n, ins, outs, err);
    if (st == QKV_OK)
        kh_free_outputs(outs, n_out);
    kh_node_destroy(n);
    return st;
}

Test(batchnorm, refuses_training_mode_other_than_0_or_1)
{
    qkv_error err;
    cr_assert_eq(run_bn(15, 1, 2, -1, 3, 3, &err), QKV_ERR_INVALID_MODEL);
    cr_assert(strstr(err.message, "node 'test_node' (BatchNormalization-15): attribute "
                                  "'training_mode' is 2, expected 0 or 1"),
              "%s", err.message);
}

Test(batchnorm, refuses_running_statistics_outputs_without_training_mode)
{
    qkv_error err;
    cr_assert_eq(run_bn(14, 3, 0, -1, 3, 3, &err), QKV_ERR_INVALID_MODEL);
    cr_assert(strstr(err.message, "output 1 (running statistics) is only produced with "
                                  "training_mode=1"),
              "%s", err.message);
}

Test(batchnorm, refuses_saved_statistics_outputs_in_opset_14)
{
    qkv_error err;
    cr_assert_eq(run_bn(14, 5, 1, -1, 3, 3, &err), QKV_ERR_INVALID_MODEL);
    cr_assert(strstr(err.message, "has output 3, expected at most 3 (Y, running_mean, "
                                  "running_var)"),
              "%s", err.message);
}

Test(batchnorm, refuses_running_statistics_outputs_before_opset_14)
{
    qkv_error err;
    cr_assert_eq(run_bn(9, 5, -1, -1, 3, 3, &err), QKV_ERR_UNSUPPORTED);
    cr_assert(strstr(err.message, "output 1 (running statistics) is only produced in training "
                                  "mode"),
              "%s", err.message);
}

Test(batchnorm, refuses_spatial_0)
{
    qkv_error err;
    cr_assert_eq(run_bn(7, 1, -1, 0, 3, 3, &err), QKV_ERR_UNSUPPORTED);
    cr_assert(strstr(err.message, "spatial=0 (per-element statistics) is not supported"), "%s",
              err.message);
}

Test(batchnorm, refuses_parameters_not_matching_the_channels)
{
    qkv_error err;
    cr_assert_eq(run_bn(15, 1, -1, -1, 3, 4, &err), QKV_ERR_SHAPE);
    cr_assert(strstr(err.message, "input 1 'scale' has shape [4], expected [3] (the channels of "
                                  "input 0 'X')"),
              "%s", err.message);
}

Test(batchnorm, refuses_rank_1_input)
{
    qkv_error err;
    cr_assert_eq(run_bn(15, 1, -1, -1, 1, 2, &err), QKV_ERR_SHAPE);
    cr_assert(strstr(err.message, "input 0 'X' has rank 1, expected >= 2 (N, C, ...)"), "%s",
              err.message);
}

/* Every input is required: one given as "" (the last keeps the arity) is
 * refused before init instead of read as NULL (UBSan found compute doing so). */
Test(batchnorm, refuses_an_omitted_input)
{
    for (size_t omit = 0; omit < 4; omit++) {
        float x[6] = {1, 2, 3, 4, 5, 6}, p[3] = {1, 1, 1};
        qkv_tensor ins[5] = {kh_f32(2, (int64_t[]){2, 3}, x), kh_f32(1, (int64_t[]){3}, p),
                             kh_f32(1, (int64_t[]){3}, p), kh_f32(1, (int64_t[]){3}, p),
                             kh_f32(1, (int64_t[]){3}, p)},
                   y;
        qkv_error err;
        kh_node *n = kh_node_create("BatchNormalization", 15, 5, 1);
        kh_omit_input(n, omit);
        cr_assert_eq(kh_run(n, ins, &y, &err), QKV_ERR_INVALID_MODEL, "input %zu: %s", omit,
                     err.message);
        char want[64];
        snprintf(want, sizeof want, "input %zu is omitted", omit);
        cr_assert(strstr(err.message, "test_node") && strstr(err.message, want), "%s", err.message);
        kh_node_destroy(n);
    }
}
