/* GroupNormalization (opsets 18 and 21), LRN and MeanVarianceNormalization
 * against their spec formulas evaluated in double here, on random shapes,
 * float16/double inputs, threads, and errors. */
#include <criterion/criterion.h>
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "half.h"
#include "kernel_harness.h"

static uint32_t rng_state = 777;
static uint32_t rnd(uint32_t n)
{
    rng_state ^= rng_state << 13;
    rng_state ^= rng_state >> 17;
    rng_state ^= rng_state << 5;
    return rng_state % n;
}

/* Tolerance: the kernels evaluate each formula in double and round once to
 * float, or (float GroupNormalization and MVN) sum in float blocks added in
 * double and normalise in float, a few float ulps; outputs are O(1-10), so
 * 1e-5 absolute + relative is far above the rounding and far below a wrong
 * group, channel window or axis. */
static void assert_close(const float *got, const double *want, size_t n, const char *what)
{
    for (size_t i = 0; i < n; i++)
        cr_assert(fabs(got[i] - want[i]) <= 1e-5 + 1e-5 * fabs(want[i]),
                  "%s: element %zu is %.9g, expected %.9g", what, i, got[i], want[i]);
}

static size_t numel(int rank, const int64_t *d)
{
    size_t n = 1;
    for (int k = 0; k < rank; k++)
        n *= (size_t)d[k];
    return n;
}

/* ---- GroupNormalization --------------------------------------------------- */

/* Y = (X - mean_g) / sqrt(var_g + eps) * scale[k] + bias[k], k = g (opset 18)
 * or the channel (opset 21); statistics over each (n, g) group. */
static void gn_reference(double *y, const float *x, const int64_t *d, int rank, size_t groups,
                         const float *scale, const float *bias, bool per_channel, double eps)
{
    size_t n = (size_t)d[0], c = (size_t)d[1], s = numel(rank, d) / (n * c), cg = c / groups;
    for (size_t b = 0; b < n; b++)
        for (size_t g = 0; g < groups; g++) {
            double sum = 0, ss = 0;
            size_t len = cg * s, base = (b * c + g * cg) * s;
            for (size_t i = 0; i < len; i++)
                sum += x[base + i];
            double mean = sum / (double)len;
            for (size_t i = 0; i < len; i++)
                ss += (x[base + i] - mean) * (x[base + i] - mean);
            double sd = sqrt(ss / (double)len + eps);
            for (size_t i = 0; i < len; i++) {
                size_t k = per_channel ? g * cg + i / s : g;
                y[base + i] = (x[base + i] - mean) / sd * scale[k] + bias[k];
            }
        }
}

static qkv_status run_gn(int64_t opset, int64_t groups, float eps, const qkv_tensor *ins,
                         qkv_tensor *y, qkv_error *err, size_t threads)
{
    kh_node *n = kh_node_create("GroupNormalization", opset, 3, 1);
    if (groups)
        kh_attr_int(n, "num_groups", groups);
    if (eps > 0)
        kh_attr_float(n, "epsilon", eps);
    if (threads)
        kh_set_threads(n, threads);
    qkv_status st = kh_run(n, ins, y, err);
    kh_node_destroy(n);
    return st;
}

Test(groupnorm, matches_formula_per_group_and_per_channel)
{
    static float xs[3 * 12 * 5 * 5];
    static double want[3 * 12 * 5 * 5];
    float scale[12], bias[12];
    for (int trial = 0; trial < 80; trial++) {
        int rank = 2 + (int)rnd(3);
        int64_t d[4];
        static const int64_t group_choices[] = {1, 2, 3, 4};
        int64_t groups = group_choices[rnd(4)];
        d[0] = 1 + rnd(3);
        d[1] = groups * (1 + rnd(3));
        for (int k = 2; k < rank; k++)
            d[k] = 1 + rnd(5);
        size_t total = numel(rank, d);
        kh_fill_random(xs, total, rnd(1000) + 1);
        for (size_t i = 0; i < total; i++)
            xs[i] = xs[i] * 3 + 1; /* a mean away from 0 */
        kh_fill_random(scale, 12, rnd(1000) + 1);
        kh_fill_random(bias, 12, rnd(1000) + 1);
        bool per_channel = trial % 2;
        float eps = trial % 3 ? 1e-5f : 0.1f;
        gn_reference(want, xs, d, rank, (size_t)groups, scale, bias, per_channel, eps);
        int64_t pd[1] = {per_channel ? d[1] : groups};
        qkv_tensor ins[3] = {kh_f32(rank, d, xs), kh_f32(1, pd, scale), kh_f32(1, pd, bias)};
        qkv_tensor y;
        qkv_error err;
        char what[80];
        snprintf(what, sizeof what, "trial %d groups %lld opset %d", trial, (long long)groups,
                 per_channel ? 21 : 18);
        cr_assert_eq(run_gn(per_channel ? 21 : 18, groups, trial % 3 ? -1 : eps, ins, &y, &err, 0),
                     QKV_OK, "%s: %s", what, err.message);
        assert_close(y.data, want, total, what);
        kh_free_outputs(&y, 1);
    }
}

Test(groupnorm, float16_and_threads)
{
    enum { N = 2, C = 32, S = 24 * 24, T = N * C * S };
    static float xs[T];
    static uint16_t hx[T];
    static double want[T];
    float scale[C], bias[C];
    uint16_t hs[C], hb[C];
    kh_fill_random(xs, T, 9);
    kh_fill_random(scale, C, 10);
    kh_fill_random(bias, C, 11);
    for (size_t i = 0; i < T; i++) {
        hx[i] = qkv_f32_to_f16(xs[i]);
        xs[i] = qkv_f16_to_f32(hx[i]);
    }
    for (size_t i = 0; i < C; i++) {
        hs[i] = qkv_f32_to_f16(scale[i]);
        scale[i] = qkv_f16_to_f32(hs[i]);
        hb[i] = qkv_f32_to_f16(bias[i]);
        bias[i] = qkv_f16_to_f32(hb[i]);
    }
    int64_t d[4] = {N, C, 24, 24}, cd[1] = {C};
    gn_reference(want, xs, d, 4, 8, scale, bias, true, 1e-5);
    qkv_tensor ins[3] = {kh_tensor(QKV_DTYPE_FLOAT16, 4, d, hx),
                         kh_tensor(QKV_DTYPE_FLOAT16, 1, cd, hs),
                         kh_tensor(QKV_DTYPE_FLOAT16, 1, cd, hb)};
    qkv_tensor y;
    qkv_error err;
    cr_assert_eq(run_gn(21, 8, -1, ins, &y, &err, 4), QKV_OK, "%s", err.message);
    cr_assert_eq(y.dtype, QKV_DTYPE_FLOAT16);
    /* the double result rounded to float, then to half: equal to one
     * rounding of it, or one half ulp off where the float lands on a tie */
    for (size_t i = 0; i < T; i++) {
        uint16_t got = ((uint16_t *)y.data)[i], w = qkv_f64_to_f16(want[i]);
        cr_assert(got == w || got == w + 1 || got + 1 == w, "element %zu: %04x, expected %04x", i,
                  got, w);
    }
    kh_free_outputs(&y, 1);
}

Test(groupnorm, refuses_bad_groups_and_parameter_shapes)
{
    float xs[24] = {0}, p[6] = {0};
    qkv_tensor y;
    qkv_error err;
    int64_t d[3] = {1, 6, 4};
    qkv_tensor ins[3] = {kh_f32(3, d, xs), kh_f32(1, (int64_t[]){4}, p),
                         kh_f32(1, (int64_t[]){4}, p)};
    cr_assert_eq(run_gn(18, 4, -1, ins, &y, &err, 0), QKV_ERR_SHAPE);
    cr_assert(strstr(err.message, "(GroupNormalization-18): input 0 'X' has shape [1,6,4]: 6 "
                                  "channels do not split into num_groups=4 groups"),
              "%s", err.message);
    /* opset 21 wants (C), opset 18 (G) */
    ins[1] = kh_f32(1, (int64_t[]){3}, p);
    ins[2] = kh_f32(1, (int64_t[]){3}, p);
    cr_assert_eq(run_gn(21, 3, -1, ins, &y, &err, 0), QKV_ERR_SHAPE);
    cr_assert(strstr(err.message, "input 1 'scale' has shape [3], expected [6] (the channels "
                                  "of X)"),
              "%s", err.message);
    cr_assert_eq(run_gn(18, 3, -1, ins, &y, &err, 0), QKV_OK, "%s", err.message);
    kh_free_outputs(&y, 1);
    cr_assert_eq(run_gn(18, 0, -1, ins, &y, &err, 0), QKV_ERR_INVALID_MODEL);
    cr_assert(strstr(err.message, "attribute num_groups is missing"), "%s", err.message);
    cr_assert_eq(run_gn(18, -2, -1, ins, &y, &err, 0), QKV_ERR_INVALID_MODEL);
    cr_assert(strstr(err.message, "attribute num_groups=-2 is not positive"), "%s", err.message);
    kh_node *n = kh_node_create("GroupNormalization", 21, 3, 1);
    kh_attr_int(n, "num_groups", 3);
    kh_attr_int(n, "stash_type", 10);
    cr_assert_eq(kh_run(n, ins, &y, &err), QKV_ERR_UNSUPPORTED);
    cr_assert(strstr(err.message, "attribute stash_type=10 is not supported"), "%s", err.message);
    kh_node_destroy(n);
    ins[1] = kh_tensor(QKV_DTYPE_DOUBLE, 1, (int64_t[]){3}, p);
    cr_assert_eq(run_gn(18, 3, -1, ins, &y, &err, 0), QKV_ERR_TYPE);
    cr_assert(strstr(err.message, "input 1 'scale' has type float64, input 0 'X' has float32"),
              "%s", err.message);
}

/* ---- LRN -------------------------------------------------------------------- */

static void lrn_reference(double *y, const float *x, const int64_t *d, int rank, int64_t size,
                          double alpha, double beta, double bias)
{
    size_t n = (size_t)d[0], c = (size_t)d[1], s = numel(rank, d) / (n * c);
    for (size_t b = 0; b < n; b++)
        for (size_t ch = 0; ch < c; ch++)
            for (size_t i = 0; i < s; i++) {
                double sq = 0;
                int64_t lo = (int64_t)ch - (int64_t)floor((size - 1) / 2.0);
                int64_t hi = (int64_t)ch + (int64_t)ceil((size - 1) / 2.0);
                for (int64_t q = lo < 0 ? 0 : lo; q <= hi && q < (int64_t)c; q++) {
                    double v = x[(b * c + (size_t)q) * s + i];
                    sq += v * v;
                }
                size_t e = (b * c + ch) * s + i;
                y[e] = x[e] / pow(bias + alpha / (double)size * sq, beta);
            }
}

Test(lrn, matches_formula_on_random_shapes_and_sizes)
{
    static float xs[3 * 7 * 5 * 5];
    static double want[3 * 7 * 5 * 5];
    for (int trial = 0; trial < 80; trial++) {
        int rank = 2 + (int)rnd(3);
        int64_t d[4];
        for (int k = 0; k < rank; k++)
            d[k] = 1 + rnd(k == 1 ? 7 : k == 0 ? 3 : 5);
        size_t total = numel(rank, d);
        kh_fill_random(xs, total, rnd(1000) + 1);
        for (size_t i = 0; i < total; i++)
            xs[i] *= 4;
        int64_t size = 1 + rnd(6);
        bool dflt = trial % 4 == 0;
        double alpha = dflt ? 1e-4 : 0.05, beta = dflt ? 0.75 : 0.6, bias = dflt ? 1.0 : 2.0;
        lrn_reference(want, xs, d, rank, size, (float)alpha, (float)beta, (float)bias);
        kh_node *n = kh_node_create("LRN", trial % 2 ? 13 : 1, 1, 1);
        kh_attr_int(n, "size", size);
        if (!dflt) {
            kh_attr_float(n, "alpha", (float)alpha);
            kh_attr_float(n, "beta", (float)beta);
            kh_attr_float(n, "bias", (float)bias);
        }
        qkv_tensor x = kh_f32(rank, d, xs), y;
        qkv_error err;
        cr_assert_eq(kh_run(n, &x, &y, &err), QKV_OK, "%s", err.message);
        char what[64];
        snprintf(what, sizeof what, "trial %d size %lld", trial, (long long)size);
        assert_close(y.data, want, total, what);
        kh_free_outputs(&y, 1);
        kh_node_destroy(n);
    }
}

Test(lrn, double_input_on_threads)
{
    enum { T = 2 * 16 * 40 * 40 };
    static float xs[T];
    static double xd[T], want[T];
    kh_fill_random(xs, T, 77);
    for (size_t i = 0; i < T; i++)
        xd[i] = xs[i];
    int64_t d[4] = {2, 16, 40, 40};
    lrn_reference(want, xs, d, 4, 5, 1e-4f, 0.75, 1.0);
    kh_node *n = kh_node_create("LRN", 13, 1, 1);
    kh_attr_int(n, "size", 5);
    kh_set_threads(n, 3);
    qkv_tensor x = kh_tensor(QKV_DTYPE_DOUBLE, 4, d, xd), y;
    qkv_error err;
    cr_assert_eq(kh_run(n, &x, &y, &err), QKV_OK, "%s", err.message);
    for (size_t i = 0; i < T; i++)
        cr_assert(fabs(((double *)y.data)[i] - want[i]) <= 1e-12, "element %zu", i);
    kh_free_outputs(&y, 1);
    kh_node_destroy(n);
}

Test(lrn, refuses_missing_size_and_low_rank)
{
    float xs[4] = {0};
    qkv_tensor x = kh_f32(2, (int64_t[]){2, 2}, xs), y;
    qkv_error err;
    kh_node *n = kh_node_create("LRN", 13, 1, 1);
    cr_assert_eq(kh_run(n, &x, &y, &err), QKV_ERR_INVALID_MODEL);
    cr_assert(strstr(err.message, "(LRN-13): attribute size is missing"), "%s", err.message);
    kh_node_destroy(n);
    n = kh_node_create("LRN", 13, 1, 1);
    kh_attr_int(n, "size", 0);
    cr_assert_eq(kh_run(n, &x, &y, &err), QKV_ERR_INVALID_MODEL);
    cr_assert(strstr(err.message, "attribute size=0 is not positive"), "%s", err.message);
    kh_node_destroy(n);
    n = kh_node_create("LRN", 13, 1, 1);
    kh_attr_int(n, "size", 3);
    x = kh_f32(1, (int64_t[]){4}, xs);
    cr_assert_eq(kh_run(n, &x, &y, &err), QKV_ERR_SHAPE);
    cr_assert(strstr(err.message, "input 0 'X' has rank 1, expected >= 2"), "%s", err.message);
    kh_node_destroy(n);
}

/* ---- MeanVarianceNormalization --------------------------------------------- */

/* The function body's formula: (X - E[X]) / (sqrt(E[X^2] - E[X]^2) + 1e-9),
 * expectations over the axes in mask, in double (no cancellation at these
 * magnitudes). */
static void mvn_reference(double *y, const float *x, const int64_t *d, int rank, const bool *mask)
{
    size_t total = numel(rank, d);
    for (size_t e = 0; e < total; e++) {
        /* the group of e: every element agreeing on the kept axes */
        size_t ce[4], rem = e;
        for (int k = rank - 1; k >= 0; k--) {
            ce[k] = rem % (size_t)d[k];
            rem /= (size_t)d[k];
        }
        double sum = 0, sq = 0, cnt = 0;
        for (size_t f = 0; f < total; f++) {
            size_t cf, r2 = f;
            bool same = true;
            for (int k = rank - 1; k >= 0; k--) {
                cf = r2 % (size_t)d[k];
                r2 /= (size_t)d[k];
                if (!mask[k] && cf != ce[k])
                    same = false;
            }
            if (same) {
                sum += x[f];
                sq += (double)x[f] * x[f];
                cnt++;
            }
        }
        double mean = sum / cnt, var = sq / cnt - mean * mean;
        /* a one-element group: var is 0 up to rounding, which may go negative */
        y[e] = (x[e] - mean) / (sqrt(var > 0 ? var : 0) + 1e-9);
    }
}

static qkv_status run_mvn(const int64_t *axes, int n_axes, qkv_tensor x, qkv_tensor *y,
                          qkv_error *err)
{
    kh_node *n = kh_node_create("MeanVarianceNormalization", 13, 1, 1);
    if (n_axes >= 0)
        kh_attr_ints(n, "axes", axes, (size_t)n_axes);
    qkv_status st = kh_run(n, &x, y, err);
    kh_node_destroy(n);
    return st;
}

Test(mvn, matches_function_body_formula_over_random_axes)
{
    float xs[5 * 5 * 5 * 5];
    double want[5 * 5 * 5 * 5];
    for (int trial = 0; trial < 100; trial++) {
        int rank = 1 + (int)rnd(4);
        int64_t d[4], axes[4];
        bool mask[4] = {false};
        int n_axes = 0;
        for (int k = 0; k < rank; k++) {
            d[k] = 1 + rnd(5);
            if (rnd(2)) {
                mask[k] = true;
                axes[n_axes++] = rnd(2) ? k : k - rank; /* negative axes too */
            }
        }
        if (trial % 10 == 0) {
            n_axes = 0; /* [] : every axis */
            for (int k = 0; k < rank; k++)
                mask[k] = true;
        }
        if (n_axes == 0 && trial % 10 != 0)
            continue;
        size_t total = numel(rank, d);
        kh_fill_random(xs, total, rnd(1000) + 1);
        mvn_reference(want, xs, d, rank, mask);
        qkv_tensor y;
        qkv_error err;
        cr_assert_eq(run_mvn(axes, n_axes, kh_f32(rank, d, xs), &y, &err), QKV_OK, "%s",
                     err.message);
        char what[64];
        snprintf(what, sizeof what, "trial %d rank %d axes %d", trial, rank, n_axes);
        for (size_t i = 0; i < total; i++) {
            /* a group of one element (or of equal ones) has sd 0: 0 / 1e-9 */
            double w = want[i];
            float g = ((float *)y.data)[i];
            cr_assert(fabs(g - w) <= 1e-4 + 1e-4 * fabs(w),
                      "%s: element %zu is %.9g, "
                      "expected %.9g",
                      what, i, g, w);
        }
        kh_free_outputs(&y, 1);
    }
}

Test(mvn, default_axes_are_0_2_3)
{
    enum { T = 2 * 3 * 4 * 5 };
    float xs[T];
    double want[T];
    int64_t d[4] = {2, 3, 4, 5};
    kh_fill_random(xs, T, 3);
    mvn_reference(want, xs, d, 4, (const bool[]){true, false, true, true});
    qkv_tensor y;
    qkv_error err;
    cr_assert_eq(run_mvn(NULL, -1, kh_f32(4, d, xs), &y, &err), QKV_OK, "%s", err.message);
    assert_close(y.data, want, T, "default axes");
    kh_free_outputs(&y, 1);
}

Test(mvn, large_mean_does_not_cancel)
{
    /* values 1e4 + small spread: E[X^2] - E[X]^2 in float would lose it all */
    float xs[8];
    for (int i = 0; i < 8; i++)
        xs[i] = 10000.0f + (float)i * 0.01f;
    qkv_tensor y;
    qkv_error err;
    cr_assert_eq(run_mvn((int64_t[]){0}, 1, kh_f32(1, (int64_t[]){8}, xs), &y, &err), QKV_OK, "%s",
                 err.message);
    double mean = 0, ss = 0;
    for (int i = 0; i < 8; i++)
        mean += xs[i] / 8.0;
    for (int i = 0; i < 8; i++)
        ss += (xs[i] - mean) * (xs[i] - mean) / 8.0;
    for (int i = 0; i < 8; i++)
        cr_assert(fabs(((float *)y.data)[i] - (xs[i] - mean) / sqrt(ss)) < 1e-5, "element %d", i);
    kh_free_outputs(&y, 1);
}

Test(mvn, bfloat16_on_threads)
{
    enum { T = 4 * 8 * 64 * 64 };
    static float xs[T];
    static uint16_t bx[T];
    static double want[T];
    kh_fill_random(xs, T, 13);
    for (size_t i = 0; i < T; i++) {
        bx[i] = qkv_f32_to_bf16(xs[i]);
        xs[i] = qkv_bf16_to_f32(bx[i]);
    }
    int64_t d[4] = {4, 8, 64, 64};
    /* per (n, c) plane: axes [2, 3] */
    for (size_t p = 0; p < 32; p++) {
        double sum = 0, ss = 0;
        for (size_t i = 0; i < 4096; i++)
            sum += xs[p * 4096 + i];
        double mean = sum / 4096;
        for (size_t i = 0; i < 4096; i++)
            ss += (xs[p * 4096 + i] - mean) * (xs[p * 4096 + i] - mean);
        for (size_t i = 0; i < 4096; i++)
            want[p * 4096 + i] = (xs[p * 4096 + i] - mean) / (sqrt(ss / 4096) + 1e-9);
    }
    kh_node *n = kh_node_create("MeanVarianceNormalization", 13, 1, 1);
    kh_attr_ints(n, "axes", (int64_t[]){2, 3}, 2);
    kh_set_threads(n, 4);
    qkv_tensor x = kh_tensor(QKV_DTYPE_BFLOAT16, 4, d, bx), y;
    qkv_error err;
    cr_assert_eq(kh_run(n, &x, &y, &err), QKV_OK, "%s", err.message);
    for (size_t i = 0; i < T; i++) {
        /* the float32 result rounded once to bfloat16: equal, or one bf16
         * ulp off where float32 rounding of a near-tie differs */
        uint16_t got = ((uint16_t *)y.data)[i], w = qkv_f64_to_bf16(want[i]);
        cr_assert(got == w || got == w + 1 || got + 1 == w, "element %zu: %04x, expected %04x", i,
                  got, w);
    }
    kh_free_outputs(&y, 1);
    kh_node_destroy(n);
}

Test(mvn, refuses_bad_axes)
{
    float xs[6] = {0};
    qkv_tensor y;
    qkv_error err;
    cr_assert_eq(run_mvn((int64_t[]){0, 3}, 2, kh_f32(2, (int64_t[]){2, 3}, xs), &y, &err),
                 QKV_ERR_SHAPE);
    cr_assert(strstr(err.message, "(MeanVarianceNormalization-13): attribute axes has 3, out "
                                  "of range for input 0 'X' of rank 2"),
              "%s", err.message);
    cr_assert_eq(run_mvn((int64_t[]){1, -1}, 2, kh_f32(2, (int64_t[]){2, 3}, xs), &y, &err),
                 QKV_ERR_SHAPE);
    cr_assert(strstr(err.message, "attribute axes names axis 1 twice"), "%s", err.message);
}

/* ---- InstanceNormalization (float16; float and double are in test_batchnorm) -- */

Test(instancenorm, float16_matches_formula)
{
    enum { N = 2, C = 3, S = 40, T = N * C * S };
    float xs[T], scale[C], bias[C];
    uint16_t hx[T], hs[C], hb[C];
    kh_fill_random(xs, T, 91);
    kh_fill_random(scale, C, 92);
    kh_fill_random(bias, C, 93);
    for (size_t i = 0; i < T; i++) {
        hx[i] = qkv_f32_to_f16(xs[i] * 3 + 1);
        xs[i] = qkv_f16_to_f32(hx[i]);
    }
    for (size_t i = 0; i < C; i++) {
        hs[i] = qkv_f32_to_f16(scale[i]);
        scale[i] = qkv_f16_to_f32(hs[i]);
        hb[i] = qkv_f32_to_f16(bias[i]);
        bias[i] = qkv_f16_to_f32(hb[i]);
    }
    int64_t d[3] = {N, C, S}, cd[1] = {C};
    qkv_tensor ins[3] = {kh_tensor(QKV_DTYPE_FLOAT16, 3, d, hx),
                         kh_tensor(QKV_DTYPE_FLOAT16, 1, cd, hs),
                         kh_tensor(QKV_DTYPE_FLOAT16, 1, cd, hb)};
    kh_node *n = kh_node_create("InstanceNormalization", 6, 3, 1);
    qkv_tensor y;
    qkv_error err;
    cr_assert_eq(kh_run(n, ins, &y, &err), QKV_OK, "%s", err.message);
    cr_assert_eq(y.dtype, QKV_DTYPE_FLOAT16);
    for (size_t p = 0; p < N * C; p++) {
        double sum = 0, ss = 0;
        for (size_t i = 0; i < S; i++)
            sum += xs[p * S + i];
        double mean = sum / S;
        for (size_t i = 0; i < S; i++)
            ss += (xs[p * S + i] - mean) * (xs[p * S + i] - mean);
        for (size_t i = 0; i < S; i++) {
            double want = (xs[p * S + i] - mean) / sqrt(ss / S + 1e-5) * scale[p % C] + bias[p % C];
            /* computed in float32 from double statistics, rounded once to half */
            uint16_t got = ((uint16_t *)y.data)[p * S + i], w = qkv_f64_to_f16(want);
            cr_assert(got == w || got == w + 1 || got + 1 == w, "plane %zu element %zu", p, i);
        }
    }
    kh_free_outputs(&y, 1);
    kh_node_destroy(n);
}

Test(mvn, constant_groups_give_zero)
{
    /* 0.1f is not a sum of few powers of two: float block sums of a
     * constant run round, and with MVN's 1e-9 epsilon a mean off by one ulp
     * would give outputs near 7 instead of 0 */
    enum { P = 3, S = 1200, T = P * S };
    static float xs[T];
    for (size_t i = 0; i < T; i++)
        xs[i] = (float)(i / S + 1) * 0.1f;
    int64_t d[4] = {1, P, 4, 300};
    qkv_tensor y;
    qkv_error err;
    cr_assert_eq(run_mvn((int64_t[]){2, 3}, 2, kh_f32(4, d, xs), &y, &err), QKV_OK, "%s",
                 err.message);
    for (size_t i = 0; i < T; i++)
        cr_assert(fabsf(((float *)y.data)[i]) <= 1e-6f, "element %zu is %g, expected 0", i,
                  ((float *)y.data)[i]);
    kh_free_outputs(&y, 1);
}
