/* Unary elementwise ops and Clip (ops/unary.c), checked against libm in double. */
#include <criterion/criterion.h>
#include <float.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "kernel_harness.h"

/* ---- helpers ----------------------------------------------------------------- */

typedef struct attr {
    const char *name;
    float value;
} attr;

/* Runs a 1-input op (with float attributes) and returns its output. */
static qkv_tensor run1(const char *op, int64_t opset, qkv_tensor x, const attr *attrs,
                       size_t threads)
{
    qkv_tensor y;
    qkv_error err;
    kh_node *n = kh_node_create(op, opset, 1, 1);
    for (; attrs && attrs->name; attrs++)
        kh_attr_float(n, attrs->name, attrs->value);
    kh_set_threads(n, threads);
    cr_assert_eq(kh_run(n, &x, &y, &err), QKV_OK, "%s: %s", op, err.message);
    kh_node_destroy(n);
    return y;
}

typedef double (*ref1_fn)(double x);

static double r_neg(double x) { return -x; }
static double r_abs(double x) { return fabs(x); }
static double r_sqrt(double x) { return sqrt(fabs(x)); }
static double r_exp(double x) { return exp(x); }
static double r_log(double x) { return log(fabs(x)); }
static double r_recip(double x) { return 1 / x; }
static double r_relu(double x) { return x > 0 ? x : 0; }
static double r_sigmoid(double x) { return 1 / (1 + exp(-x)); }
static double r_tanh(double x) { return tanh(x); }
static double r_erf(double x) { return erf(x); }
static double r_sign(double x) { return x > 0 ? 1 : x < 0 ? -1 : 0; }
static double r_floor(double x) { return floor(x); }
static double r_ceil(double x) { return ceil(x); }
static double r_softplus(double x) { return log(exp(x) + 1); }
static double r_leaky(double x) { return x < 0 ? 0.1 * x : x; }
static double r_elu(double x) { return x < 0 ? 2.0 * (exp(x) - 1) : x; }
static double r_selu(double x)
{
    double a = 1.67326319217681884765625, g = 1.05070102214813232421875;
    return x > 0 ? g * x : g * (a * exp(x) - a);
}
static double r_celu(double x) { return fmax(0, x) + fmin(0, 1.5 * (exp(x / 1.5) - 1)); }
static double r_hsig(double x) { return fmax(0, fmin(1, 0.3 * x + 0.4)); }
static double r_hswish(double x) { return x * fmax(0, fmin(1, x / 6 + 0.5)); }

typedef struct ucase {
    const char *op;
    int64_t opset;
    ref1_fn ref;
    bool positive; /* the op needs x > 0 (Sqrt, Log) */
    attr attrs[3];
} ucase;

static const ucase cases[] = {
    {"Neg", 13, r_neg, false, {{0}}},
    {"Abs", 13, r_abs, false, {{0}}},
    {"Sqrt", 13, r_sqrt, true, {{0}}},
    {"Exp", 13, r_exp, false, {{0}}},
    {"Log", 13, r_log, true, {{0}}},
    {"Reciprocal", 13, r_recip, false, {{0}}},
    {"Relu", 14, r_relu, false, {{0}}},
    {"Sigmoid", 13, r_sigmoid, false, {{0}}},
    {"Tanh", 6, r_tanh, false, {{0}}},
    {"Erf", 13, r_erf, false, {{0}}},
    {"Sign", 13, r_sign, false, {{0}}},
    {"Floor", 13, r_floor, false, {{0}}},
    {"Ceil", 6, r_ceil, false, {{0}}},
    {"Softplus", 1, r_softplus, false, {{0}}},
    {"LeakyRelu", 16, r_leaky, false, {{"alpha", 0.1f}, {0}}},
    {"Elu", 6, r_elu, false, {{"alpha", 2.0f}, {0}}},
    {"Selu", 6, r_selu, false, {{0}}},
    {"Celu", 12, r_celu, false, {{"alpha", 1.5f}, {0}}},
    {"HardSigmoid", 6, r_hsig, false, {{"alpha", 0.3f}, {"beta", 0.4f}, {0}}},
    {"HardSwish", 14, r_hswish, false, {{0}}},
};

/* float32 results within a few ulps of the double reference: libm's float
 * functions are not correctly rounded, and the attributes are floats */
static void assert_close(float got, double want, const char *op, size_t i, double x)
{
    double tol = 4 * FLT_EPSILON * fmax(1.0, fabs(want));
    cr_assert((double)got == want || fabs((double)got - want) <= tol,
              "%s(%g) elem %zu: %.9g vs %.9g", op, x, i, got, want);
}

/* ---- every op against libm ------------------------------------------------------- */

Test(unary, float32_ops_match_libm)
{
    enum { N = 203 };
    float xs[N];
    kh_fill_random(xs, N, 3);
    for (size_t i = 0; i < N; i++)
        xs[i] *= 6; /* [-6, 6): both sides of every kink */
    xs[0] = 0;
    xs[1] = 0.5f;
    for (size_t c = 0; c < sizeof cases / sizeof cases[0]; c++) {
        float in[N];
        for (size_t i = 0; i < N; i++)
            in[i] = cases[c].positive ? fabsf(xs[i]) + 1e-3f : xs[i];
        qkv_tensor y =
            run1(cases[c].op, cases[c].opset, kh_f32(2, (int64_t[]){7, 29}, in), cases[c].attrs, 1);
        cr_assert_eq(y.dtype, QKV_DTYPE_FLOAT, "%s", cases[c].op);
        cr_assert_eq(y.rank, 2);
        for (size_t i = 0; i < N; i++)
            assert_close(((float *)y.data)[i], cases[c].ref(in[i]), cases[c].op, i, in[i]);
        kh_free_outputs(&y, 1);
    }
}

Test(unary, float64_ops_match_libm)
{
    enum { N = 50 };
    float f[N];
    double xs[N];
    kh_fill_random(f, N, 9);
    for (size_t c = 0; c < sizeof cases / sizeof cases[0]; c++) {
        for (size_t i = 0; i < N; i++)
            xs[i] = cases[c].positive ? fabs(f[i] * 5.0) + 1e-3 : f[i] * 5.0;
        qkv_tensor y = run1(cases[c].op, cases[c].opset,
                            kh_tensor(QKV_DTYPE_DOUBLE, 1, (int64_t[]){N}, xs), cases[c].attrs, 1);
        cr_assert_eq(y.dtype, QKV_DTYPE_DOUBLE);
        for (size_t i = 0; i < N; i++) {
            double got = ((double *)y.data)[i], want = cases[c].ref(xs[i]);
            /* a few double ulps; the float attributes are converted exactly on both sides
             * except where the reference writes them as double literals (0.1, 0.3, 0.4) */
            double tol = 1e-7 * fmax(1.0, fabs(want));
            cr_assert(fabs(got - want) <= tol, "%s(%g): %.17g vs %.17g", cases[c].op, xs[i], got,
                      want);
        }
        kh_free_outputs(&y, 1);
    }
}

/* Distance in float32 ulps of `got` from the exact `want` (ulps of the
 * smallest subnormal below the normal range). */
static double ulps(float got, double want)
{
    if (got == want)
        return 0;
    int e = want == 0 ? -149 : ilogb(want) - 23;
    return fabs((double)got - want) / ldexp(1, e < -149 ? -149 : e);
}

Test(unary, float32_exp_sigmoid_tanh_stay_within_a_few_ulps_everywhere)
{
    /* evenly spaced float bit patterns over [-104, -1e-6] and [1e-6, 89]:
     * subnormal results, overflow, every binade of the argument */
    enum { N = 1 << 18 };
    float *x = malloc(N * sizeof *x);
    size_t n = 0;
    const float ends[2][2] = {{1e-6f, 104.0f}, {1e-6f, 89.0f}};
    for (int side = 0; side < 2; side++) {
        uint32_t lo, hi;
        memcpy(&lo, &ends[side][0], 4);
        memcpy(&hi, &ends[side][1], 4);
        for (size_t k = 0; k < N / 2; k++) {
            uint32_t u = lo + (uint32_t)((uint64_t)(hi - lo) * k / (N / 2 - 1));
            float v;
            memcpy(&v, &u, 4);
            x[n++] = side ? v : -v;
        }
    }
    qkv_tensor xt = kh_f32(1, (int64_t[]){(int64_t)n}, x);
    qkv_tensor e = run1("Exp", 13, xt, NULL, 1), s = run1("Sigmoid", 13, xt, NULL, 1),
               t = run1("Tanh", 13, xt, NULL, 1);
    for (size_t i = 0; i < n; i++) {
        double xd = x[i], want_e = exp(xd);
        float ge = ((float *)e.data)[i];
        if (want_e > FLT_MAX)
            cr_assert(isinf(ge), "exp(%g) = %g", xd, ge);
        else /* the polynomial's documented bound is 1 ulp */
            cr_assert(ulps(ge, want_e) <= 1.0, "exp(%a) = %a, %.2f ulps", xd, ge, ulps(ge, want_e));
        /* below -87 the sigmoid is subnormal and only absolutely close */
        if (xd > -87)
            cr_assert(ulps(((float *)s.data)[i], 1 / (1 + exp(-xd))) <= 3.0, "sigmoid(%a)", xd);
        cr_assert(ulps(((float *)t.data)[i], tanh(xd)) <= 2.0, "tanh(%a)", xd);
    }
    kh_free_outputs(&e, 1);
    kh_free_outputs(&s, 1);
    kh_free_outputs(&t, 1);
    free(x);
    /* NaN and infinities */
    float sp[3] = {NAN, INFINITY, -INFINITY};
    xt = kh_f32(1, (int64_t[]){3}, sp);
    e = run1("Exp", 13, xt, NULL, 1);
    cr_assert(isnan(((float *)e.data)[0]) && isinf(((float *)e.data)[1]) &&
              ((float *)e.data)[2] == 0);
    kh_free_outputs(&e, 1);
    t = run1("Tanh", 13, xt, NULL, 1);
    cr_assert(isnan(((float *)t.data)[0]) && ((float *)t.data)[1] == 1 &&
              ((float *)t.data)[2] == -1);
    kh_free_outputs(&t, 1);
    s = run1("Sigmoid", 13, xt, NULL, 1);
    cr_assert(isnan(((float *)s.data)[0]) && ((float *)s.data)[1] == 1 &&
              ((float *)s.data)[2] == 0);
    kh_free_outputs(&s, 1);
}

/* ---- special values --------------------------------------------------------------- */

Test(unary, sigmoid_and_softplus_stay_finite_for_large_inputs)
{
    float x[4] = {-1000, -88.8f, 88.8f, 1000};
    qkv_tensor y = run1("Sigmoid", 13, kh_f32(1, (int64_t[]){4}, x), NULL, 1);
    float *s = y.data;
    cr_assert_eq(s[0], 0.0f);
    cr_assert(s[1] >= 0 && s[1] < 1e-38f, "%g", s[1]);
    cr_assert_eq(s[2], 1.0f);
    cr_assert_eq(s[3], 1.0f);
    kh_free_outputs(&y, 1);
    y = run1("Softplus", 1, kh_f32(1, (int64_t[]){4}, x), NULL, 1);
    s = y.data;
    cr_assert_eq(s[0], 0.0f);
    cr_assert_eq(s[3], 1000.0f); /* log(1 + e^1000) = 1000 + log1p(e^-1000) */
    kh_free_outputs(&y, 1);
}

Test(unary, relu_clip_and_sign_keep_nan)
{
    float x[2] = {NAN, -1};
    qkv_tensor y = run1("Relu", 13, kh_f32(1, (int64_t[]){2}, x), NULL, 1);
    cr_assert(isnan(((float *)y.data)[0]));
    cr_assert_eq(((float *)y.data)[1], 0);
    kh_free_outputs(&y, 1);
    y = run1("Sign", 13, kh_f32(1, (int64_t[]){2}, x), NULL, 1);
    cr_assert(isnan(((float *)y.data)[0]));
    cr_assert_eq(((float *)y.data)[1], -1);
    kh_free_outputs(&y, 1);
}

Test(unary, round_is_half_to_even)
{
    float x[8] = {0.5f, 1.5f, 2.5f, -0.5f, -1.5f, 2.4f, 2.6f, -2.5f};
    float want[8] = {0, 2, 2, -0.0f, -2, 2, 3, -2};
    qkv_tensor y = run1("Round", 11, kh_f32(1, (int64_t[]){8}, x), NULL, 1);
    cr_assert_arr_eq(y.data, want, sizeof want);
    kh_free_outputs(&y, 1);
}

Test(unary, isnan_and_isinf_with_detect_attributes)
{
    float x[5] = {NAN, INFINITY, -INFINITY, 1, FLT_MAX};
    qkv_tensor xt = kh_f32(1, (int64_t[]){5}, x), y;
    y = run1("IsNaN", 13, xt, NULL, 1);
    cr_assert_eq(y.dtype, QKV_DTYPE_BOOL);
    uint8_t want_nan[5] = {1, 0, 0, 0, 0};
    cr_assert_arr_eq(y.data, want_nan, 5);
    kh_free_outputs(&y, 1);
    struct {
        int64_t pos, neg;
        uint8_t want[5];
    } cases_inf[] = {{1, 1, {0, 1, 1, 0, 0}}, {1, 0, {0, 1, 0, 0, 0}}, {0, 1, {0, 0, 1, 0, 0}}};
    for (size_t c = 0; c < 3; c++) {
        qkv_error err;
        kh_node *n = kh_node_create("IsInf", 10, 1, 1);
        kh_attr_int(n, "detect_positive", cases_inf[c].pos);
        kh_attr_int(n, "detect_negative", cases_inf[c].neg);
        cr_assert_eq(kh_run(n, &xt, &y, &err), QKV_OK, "%s", err.message);
        cr_assert_arr_eq(y.data, cases_inf[c].want, 5, "case %zu", c);
        kh_free_outputs(&y, 1);
        kh_node_destroy(n);
    }
}

Test(unary, integer_neg_abs_relu_sign)
{
    int32_t x[5] = {INT32_MIN, -7, 0, 7, INT32_MAX};
    qkv_tensor xt = kh_tensor(QKV_DTYPE_INT32, 1, (int64_t[]){5}, x);
    qkv_tensor y = run1("Neg", 13, xt, NULL, 1);
    int32_t want_neg[5] = {INT32_MIN, 7, 0, -7, -INT32_MAX}; /* -INT32_MIN wraps */
    cr_assert_arr_eq(y.data, want_neg, sizeof want_neg);
    kh_free_outputs(&y, 1);
    y = run1("Abs", 13, xt, NULL, 1);
    int32_t want_abs[5] = {INT32_MIN, 7, 0, 7, INT32_MAX};
    cr_assert_arr_eq(y.data, want_abs, sizeof want_abs);
    kh_free_outputs(&y, 1);
    y = run1("Relu", 14, xt, NULL, 1);
    int32_t want_relu[5] = {0, 0, 0, 7, INT32_MAX};
    cr_assert_arr_eq(y.data, want_relu, sizeof want_relu);
    kh_free_outputs(&y, 1);
    y = run1("Sign", 13, xt, NULL, 1);
    int32_t want_sign[5] = {-1, -1, 0, 1, 1};
    cr_assert_arr_eq(y.data, want_sign, sizeof want_sign);
    kh_free_outputs(&y, 1);

    int8_t x8[3] = {-128, -3, 4};
    y = run1("Abs", 13, kh_tensor(QKV_DTYPE_INT8, 1, (int64_t[]){3}, x8), NULL, 1);
    int8_t want8[3] = {-128, 3, 4};
    cr_assert_arr_eq(y.data, want8, 3);
    kh_free_outputs(&y, 1);
    uint64_t xu[2] = {0, UINT64_MAX};
    y = run1("Sign", 13, kh_tensor(QKV_DTYPE_UINT64, 1, (int64_t[]){2}, xu), NULL, 1);
    uint64_t wantu[2] = {0, 1};
    cr_assert_arr_eq(y.data, wantu, sizeof wantu);
    kh_free_outputs(&y, 1);
}

Test(unary, not_inverts_bools)
{
    uint8_t x[4] = {0, 1, 1, 0};
    qkv_tensor y = run1("Not", 1, kh_tensor(QKV_DTYPE_BOOL, 2, (int64_t[]){2, 2}, x), NULL, 1);
    uint8_t want[4] = {1, 0, 0, 1};
    cr_assert_eq(y.dtype, QKV_DTYPE_BOOL);
    cr_assert_arr_eq(y.data, want, 4);
    kh_free_outputs(&y, 1);
}

Test(unary, float16_and_bfloat16_compute_through_float)
{
    /* float16: 4.0, -2.0, 0.25 -> Sqrt(|x|) via Abs first; Neg exact */
    uint16_t h[3] = {0x4400, 0xc000, 0x3400};
    qkv_tensor y = run1("Neg", 13, kh_tensor(QKV_DTYPE_FLOAT16, 1, (int64_t[]){3}, h), NULL, 1);
    cr_assert_eq(y.dtype, QKV_DTYPE_FLOAT16);
    uint16_t want_neg[3] = {0xc400, 0x4000, 0xb400};
    cr_assert_arr_eq(y.data, want_neg, sizeof want_neg);
    kh_free_outputs(&y, 1);
    /* Exp(1) = 2.71828: float16 0x4170 (2.71875) is the nearest */
    uint16_t one[1] = {0x3c00};
    y = run1("Exp", 13, kh_tensor(QKV_DTYPE_FLOAT16, 1, (int64_t[]){1}, one), NULL, 1);
    cr_assert_eq(((uint16_t *)y.data)[0], 0x4170);
    kh_free_outputs(&y, 1);
    /* bfloat16 Relu of -1.5, 2.0 and IsNaN of a bfloat16 NaN */
    uint16_t b[3] = {0xbfc0, 0x4000, 0x7fc0};
    y = run1("Relu", 14, kh_tensor(QKV_DTYPE_BFLOAT16, 1, (int64_t[]){3}, b), NULL, 1);
    cr_assert_eq(((uint16_t *)y.data)[0], 0x0000);
    cr_assert_eq(((uint16_t *)y.data)[1], 0x4000);
    kh_free_outputs(&y, 1);
    y = run1("IsNaN", 13, kh_tensor(QKV_DTYPE_BFLOAT16, 1, (int64_t[]){3}, b), NULL, 1);
    uint8_t want_nan[3] = {0, 0, 1};
    cr_assert_arr_eq(y.data, want_nan, 3);
    kh_free_outputs(&y, 1);
}

/* ---- Clip ----------------------------------------------------------------------- */

static qkv_tensor run_clip(int64_t opset, qkv_tensor *in, size_t n_in, const bool *omit,
                           qkv_status *st, qkv_error *err)
{
    qkv_tensor y;
    kh_node *n = kh_node_create("Clip", opset, n_in, 1);
    for (size_t k = 0; k < n_in; k++)
        if (omit && omit[k])
            kh_omit_input(n, k);
    *st = kh_run(n, in, &y, err);
    kh_node_destroy(n);
    return y;
}

Test(clip, opset6_uses_min_max_attributes)
{
    float x[5] = {-3, -1, 0, 1, 3};
    qkv_tensor xt = kh_f32(1, (int64_t[]){5}, x), y;
    qkv_error err;
    kh_node *n = kh_node_create("Clip", 6, 1, 1);
    kh_attr_float(n, "min", -2);
    kh_attr_float(n, "max", 0.5f);
    cr_assert_eq(kh_run(n, &xt, &y, &err), QKV_OK, "%s", err.message);
    float want[5] = {-2, -1, 0, 0.5f, 0.5f};
    cr_assert_arr_eq(y.data, want, sizeof want);
    kh_free_outputs(&y, 1);
    kh_node_destroy(n);
}

Test(clip, opset13_bounds_from_inputs_and_omitted_min)
{
    float x[5] = {-3, -1, INFINITY, 1, 3}, lo = -2, hi = 2;
    qkv_tensor in[3] = {kh_f32(1, (int64_t[]){5}, x), kh_f32(0, NULL, &lo), kh_f32(0, NULL, &hi)};
    qkv_status st;
    qkv_error err;
    qkv_tensor y = run_clip(13, in, 3, NULL, &st, &err);
    cr_assert_eq(st, QKV_OK, "%s", err.message);
    float want[5] = {-2, -1, 2, 1, 2};
    cr_assert_arr_eq(y.data, want, sizeof want);
    kh_free_outputs(&y, 1);
    bool omit[3] = {false, true, false};
    y = run_clip(11, in, 3, omit, &st, &err);
    cr_assert_eq(st, QKV_OK, "%s", err.message);
    float want_max_only[5] = {-3, -1, 2, 1, 2};
    cr_assert_arr_eq(y.data, want_max_only, sizeof want_max_only);
    kh_free_outputs(&y, 1);
    y = run_clip(13, in, 1, NULL, &st, &err);
    cr_assert_eq(st, QKV_OK, "%s", err.message);
    cr_assert_arr_eq(y.data, x, sizeof x); /* no bounds: unchanged, inf included */
    kh_free_outputs(&y, 1);
}

Test(clip, int8_and_min_above_max)
{
    int8_t x[4] = {-128, -5, 5, 127}, lo = -10, hi = -20;
    qkv_tensor in[3] = {kh_tensor(QKV_DTYPE_INT8, 1, (int64_t[]){4}, x),
                        kh_tensor(QKV_DTYPE_INT8, 0, NULL, &lo),
                        kh_tensor(QKV_DTYPE_INT8, 1, (int64_t[]){1}, &hi)};
    qkv_status st;
    qkv_error err;
    qkv_tensor y = run_clip(12, in, 3, NULL, &st, &err);
    cr_assert_eq(st, QKV_OK, "%s", err.message);
    int8_t want[4] = {-20, -20, -20, -20}; /* min > max: everything is max (numpy.clip) */
    cr_assert_arr_eq(y.data, want, 4);
    kh_free_outputs(&y, 1);
    y = run_clip(13, in, 2, NULL, &st, &err);
    int8_t want_min[4] = {-10, -5, 5, 127};
    cr_assert_arr_eq(y.data, want_min, 4);
    kh_free_outputs(&y, 1);
}

Test(clip, refuses_non_scalar_bound)
{
    float x[2] = {0, 1}, lo[2] = {0, 0};
    qkv_tensor in[2] = {kh_f32(1, (int64_t[]){2}, x), kh_f32(1, (int64_t[]){2}, lo)};
    qkv_status st;
    qkv_error err;
    run_clip(13, in, 2, NULL, &st, &err);
    cr_assert_eq(st, QKV_ERR_SHAPE);
    cr_assert(strstr(err.message, "input 1 'min' has shape [2], expected a scalar"), "%s",
              err.message);
}

Test(clip, refuses_bound_of_another_type)
{
    float x[2] = {0, 1};
    double lo = 0;
    qkv_tensor in[2] = {kh_f32(1, (int64_t[]){2}, x), kh_tensor(QKV_DTYPE_DOUBLE, 0, NULL, &lo)};
    qkv_status st;
    qkv_error err;
    run_clip(13, in, 2, NULL, &st, &err);
    cr_assert_eq(st, QKV_ERR_TYPE);
    cr_assert(strstr(err.message, "input 1 'min' has type float64, input 0 has float32"), "%s",
              err.message);
}

/* ---- in place, threads, errors -------------------------------------------------- */

Test(unary, in_place_gives_the_same_result)
{
    enum { N = 1000 };
    float x[N];
    kh_fill_random(x, N, 4);
    qkv_tensor ref = run1("Tanh", 13, kh_f32(1, (int64_t[]){N}, x), NULL, 1);
    qkv_error err;
    kh_node *n = kh_node_create("Tanh", 13, 1, 1);
    qkv_tensor in = kh_f32(1, (int64_t[]){N}, x), out;
    /* the output overwrites the input */
    cr_assert_eq(kh_run_inplace(n, 0, &in, &out, &err), QKV_OK, "%s", err.message);
    cr_assert_eq(out.data, (void *)x);
    cr_assert_arr_eq(x, ref.data, sizeof x);
    kh_node_destroy(n);
    kh_free_outputs(&ref, 1);
}

Test(unary, two_threads_give_the_single_thread_result)
{
    enum { N = 200003 };
    float *x = malloc(N * sizeof *x);
    kh_fill_random(x, N, 8);
    const char *ops[] = {"Exp", "Sigmoid", "Relu", "Erf"};
    for (size_t o = 0; o < 4; o++) {
        qkv_tensor y1 = run1(ops[o], 13, kh_f32(1, (int64_t[]){N}, x), NULL, 1);
        qkv_tensor y2 = run1(ops[o], 13, kh_f32(1, (int64_t[]){N}, x), NULL, 2);
        cr_assert_arr_eq(y1.data, y2.data, N * sizeof(float), "%s", ops[o]);
        kh_free_outputs(&y1, 1);
        kh_free_outputs(&y2, 1);
    }
    /* Clip and the float16 path too */
    uint16_t *h = malloc(N * sizeof *h);
    for (size_t i = 0; i < N; i++)
        h[i] = (uint16_t)(i * 7919u); /* every kind of half, NaNs and infs included */
    qkv_tensor y1 = run1("Sign", 13, kh_tensor(QKV_DTYPE_FLOAT16, 1, (int64_t[]){N}, h), NULL, 1);
    qkv_tensor y2 = run1("Sign", 13, kh_tensor(QKV_DTYPE_FLOAT16, 1, (int64_t[]){N}, h), NULL, 2);
    cr_assert_arr_eq(y1.data, y2.data, N * sizeof(uint16_t));
    kh_free_outputs(&y1, 1);
    kh_free_outputs(&y2, 1);
    y1 = run1("Clip", 13, kh_f32(1, (int64_t[]){N}, x), NULL, 1);
    y2 = run1("Clip", 13, kh_f32(1, (int64_t[]){N}, x), NULL, 2);
    cr_assert_arr_eq(y1.data, y2.data, N * sizeof(float));
    kh_free_outputs(&y1, 1);
    kh_free_outputs(&y2, 1);
    free(h);
    free(x);
}

Test(unary, float_only_op_refuses_integers)
{
    int32_t x[1] = {4};
    qkv_tensor xt = kh_tensor(QKV_DTYPE_INT32, 1, (int64_t[]){1}, x), y;
    qkv_error err;
    kh_node *n = kh_node_create("Sqrt", 13, 1, 1);
    cr_assert_eq(kh_run(n, &xt, &y, &err), QKV_ERR_TYPE);
    cr_assert(strstr(err.message, "(Sqrt-13): input 0 has type int32, not supported"), "%s",
              err.message);
    kh_node_destroy(n);
}

Test(unary, relu_before_opset_14_refuses_integers)
{
    int32_t x[1] = {4};
    qkv_tensor xt = kh_tensor(QKV_DTYPE_INT32, 1, (int64_t[]){1}, x), y;
    qkv_error err;
    kh_node *n = kh_node_create("Relu", 13, 1, 1);
    cr_assert_eq(kh_run(n, &xt, &y, &err), QKV_ERR_TYPE);
    cr_assert(strstr(err.message, "input 0 has type int32, not supported"), "%s", err.message);
    kh_node_destroy(n);
}

Test(unary, celu_refuses_zero_alpha)
{
    float x[1] = {1};
    qkv_tensor xt = kh_f32(1, (int64_t[]){1}, x), y;
    qkv_error err;
    kh_node *n = kh_node_create("Celu", 12, 1, 1);
    kh_attr_float(n, "alpha", 0);
    cr_assert_eq(kh_run(n, &xt, &y, &err), QKV_ERR_INVALID_MODEL);
    cr_assert(strstr(err.message, "attribute 'alpha' is 0"), "%s", err.message);
    kh_node_destroy(n);
}

Test(unary, attribute_of_wrong_type_is_refused)
{
    float x[1] = {1};
    qkv_tensor xt = kh_f32(1, (int64_t[]){1}, x), y;
    qkv_error err;
    kh_node *n = kh_node_create("LeakyRelu", 16, 1, 1);
    kh_attr_int(n, "alpha", 1);
    cr_assert_eq(kh_run(n, &xt, &y, &err), QKV_ERR_TYPE);
    cr_assert(strstr(err.message, "alpha"), "%s", err.message);
    kh_node_destroy(n);
}
