/* ops/trig.c: the trigonometric and hyperbolic ops, Softsign,
 * ThresholdedRelu, Shrink (against libm/definitions in double), PRelu
 * (broadcast, integers, float16), Hardmax (every axis, both opset forms,
 * ties, NaN), in place, threads, errors. */
#include <criterion/criterion.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "half.h"
#include "kernel_harness.h"

typedef struct attr {
    const char *name;
    float value;
} attr;

/* Runs a 1-input op (float attributes, NULL-terminated) and returns its output. */
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

typedef struct trig_op {
    const char *name;
    int64_t opset;
    double (*ref)(double);
    double lo, hi; /* the input range tested (the function's domain) */
} trig_op;

static const trig_op ops[] = {
    {"Sin", 7, sin, -10, 10},   {"Cos", 7, cos, -10, 10},         {"Tan", 7, tan, -1.5, 1.5},
    {"Asin", 7, asin, -1, 1},   {"Acos", 7, acos, -1, 1},         {"Atan", 7, atan, -20, 20},
    {"Sinh", 9, sinh, -10, 10}, {"Cosh", 9, cosh, -10, 10},       {"Asinh", 9, asinh, -50, 50},
    {"Acosh", 9, acosh, 1, 50}, {"Atanh", 9, atanh, -0.99, 0.99},
};
#define N_OPS (sizeof ops / sizeof ops[0])

/* n values spread over [lo, hi] */
static void fill_range(float *x, size_t n, double lo, double hi, uint32_t seed)
{
    kh_fill_random(x, n, seed);
    for (size_t i = 0; i < n; i++)
        x[i] = (float)(lo + (hi - lo) * (x[i] + 1) / 2);
}

Test(trig, float32_ops_match_libm_in_double)
{
    enum { N = 1000 };
    float x[N];
    for (size_t o = 0; o < N_OPS; o++) {
        fill_range(x, N, ops[o].lo, ops[o].hi, (uint32_t)o + 1);
        qkv_tensor y = run1(ops[o].name, ops[o].opset, kh_f32(1, (int64_t[]){N}, x), NULL, 1);
        cr_assert_eq(y.dtype, QKV_DTYPE_FLOAT);
        const float *g = y.data;
        for (int i = 0; i < N; i++) {
            double w = ops[o].ref(x[i]);
            /* glibc's float functions are within a couple of ulps (2^-23
             * relative each); 1e-6 relative leaves margin. Absolute 1e-7
             * for results near 0 (sin of multiples of pi). */
            cr_assert(fabs(g[i] - w) <= 1e-7 + 1e-6 * fabs(w), "%s(%.9g) = %.9g, expected %.9g",
                      ops[o].name, x[i], g[i], w);
        }
        kh_free_outputs(&y, 1);
    }
}

Test(trig, float64_ops_equal_libm_and_domain_errors_give_nan)
{
    double x[5] = {-0.5, 0, 0.25, 0.75, 1.5};
    for (size_t o = 0; o < N_OPS; o++) {
        qkv_tensor y = run1(ops[o].name, ops[o].opset,
                            kh_tensor(QKV_DTYPE_DOUBLE, 1, (int64_t[]){5}, x), NULL, 1);
        cr_assert_eq(y.dtype, QKV_DTYPE_DOUBLE);
        for (int i = 0; i < 5; i++) {
            double w = ops[o].ref(x[i]), g = ((double *)y.data)[i];
            if (isnan(w)) /* asin(1.5), acosh(0.25), atanh(1.5)... */
                cr_assert(isnan(g), "%s(%g) = %g, expected NaN", ops[o].name, x[i], g);
            else
                cr_assert_eq(g, w, "%s(%g) = %.17g, expected %.17g", ops[o].name, x[i], g, w);
        }
        kh_free_outputs(&y, 1);
    }
}

Test(trig, float16_ops_round_the_float_result_once)
{
    enum { N = 300 };
    float f[N];
    uint16_t h[N];
    for (size_t o = 0; o < N_OPS; o++) {
        fill_range(f, N, ops[o].lo, ops[o].hi, 100 + (uint32_t)o);
        for (int i = 0; i < N; i++)
            h[i] = qkv_f32_to_f16(f[i]);
        qkv_tensor y = run1(ops[o].name, ops[o].opset,
                            kh_tensor(QKV_DTYPE_FLOAT16, 1, (int64_t[]){N}, h), NULL, 1);
        cr_assert_eq(y.dtype, QKV_DTYPE_FLOAT16);
        for (int i = 0; i < N; i++) {
            double w = ops[o].ref(qkv_f16_to_f32(h[i]));
            if (isnan(w)) /* atanh(1) after rounding to half: inf; acos(>1) NaN */
                continue;
            double g = qkv_f16_to_f32(((uint16_t *)y.data)[i]);
            if (isinf(w) || fabs(w) > 65504) {
                cr_assert(isinf(g), "%s: element %d", ops[o].name, i);
                continue;
            }
            /* one float16 ulp: 2^-10 relative (+ the smallest normal for tiny results) */
            cr_assert(fabs(g - w) <= 0x1p-14 + 0x1p-10 * fabs(w), "%s(%g) = %g, expected %g",
                      ops[o].name, qkv_f16_to_f32(h[i]), g, w);
        }
        kh_free_outputs(&y, 1);
    }
}

Test(trig, softsign_thresholdedrelu_and_shrink_follow_their_definitions)
{
    float x[9] = {-3, -2, -1.5f, -0.5f, 0, 0.5f, 1, 2, 2.5f};
    qkv_tensor y = run1("Softsign", 1, kh_f32(1, (int64_t[]){9}, x), NULL, 1);
    for (int i = 0; i < 9; i++)
        cr_assert_eq(((float *)y.data)[i], x[i] / (1 + fabsf(x[i])), "softsign %g", x[i]);
    kh_free_outputs(&y, 1);

    /* ThresholdedRelu: x > alpha ? x : 0 (x == alpha gives 0); default alpha 1 */
    y = run1("ThresholdedRelu", 10, kh_f32(1, (int64_t[]){9}, x), NULL, 1);
    float want_tr1[9] = {0, 0, 0, 0, 0, 0, 0, 2, 2.5f};
    cr_assert_arr_eq(y.data, want_tr1, sizeof want_tr1);
    kh_free_outputs(&y, 1);
    y = run1("ThresholdedRelu", 10, kh_f32(1, (int64_t[]){9}, x),
             (attr[]){{"alpha", -1.5f}, {NULL, 0}}, 1);
    float want_tr2[9] = {0, 0, 0, -0.5f, 0, 0.5f, 1, 2, 2.5f};
    cr_assert_arr_eq(y.data, want_tr2, sizeof want_tr2);
    kh_free_outputs(&y, 1);

    /* Shrink: defaults lambd 0.5, bias 0 (hard shrink) */
    y = run1("Shrink", 9, kh_f32(1, (int64_t[]){9}, x), NULL, 1);
    float want_s1[9] = {-3, -2, -1.5f, 0, 0, 0, 1, 2, 2.5f};
    cr_assert_arr_eq(y.data, want_s1, sizeof want_s1);
    kh_free_outputs(&y, 1);
    y = run1("Shrink", 9, kh_f32(1, (int64_t[]){9}, x),
             (attr[]){{"lambd", 1.5f}, {"bias", 1.5f}, {NULL, 0}}, 1);
    float want_s2[9] = {-1.5f, -0.5f, 0, 0, 0, 0, 0, 0.5f, 1};
    cr_assert_arr_eq(y.data, want_s2, sizeof want_s2);
    kh_free_outputs(&y, 1);
}

Test(trig, maps_keep_shape_and_nan)
{
    float x[6] = {NAN, 1, 2, 3, 4, 5};
    const char *names[4] = {"Sin", "Softsign", "ThresholdedRelu", "Shrink"};
    const int64_t opsets[4] = {7, 1, 10, 9};
    for (int o = 0; o < 4; o++) {
        qkv_tensor y = run1(names[o], opsets[o], kh_f32(3, (int64_t[]){1, 2, 3}, x), NULL, 1);
        cr_assert_eq(y.rank, 3, "%s", names[o]);
        cr_assert_eq(y.dims[2], 3, "%s", names[o]);
        /* NaN > alpha is false, so ThresholdedRelu and Shrink give 0 for NaN,
         * as the numpy references do; the others keep it */
        if (o >= 2)
            cr_assert_eq(((float *)y.data)[0], 0.0f, "%s", names[o]);
        else
            cr_assert(isnan(((float *)y.data)[0]), "%s", names[o]);
        kh_free_outputs(&y, 1);
    }
}

Test(trig, large_input_two_threads_give_the_single_thread_result)
{
    enum { N = 100003 };
    float *x = malloc(N * sizeof *x);
    fill_range(x, N, -5, 5, 9);
    qkv_tensor y1 = run1("Cos", 7, kh_f32(1, (int64_t[]){N}, x), NULL, 1);
    qkv_tensor y2 = run1("Cos", 7, kh_f32(1, (int64_t[]){N}, x), NULL, 2);
    cr_assert_arr_eq(y1.data, y2.data, N * sizeof(float));
    kh_free_outputs(&y1, 1);
    kh_free_outputs(&y2, 1);
    free(x);
}

Test(trig, map_in_place_gives_the_same_result)
{
    enum { N = 500 };
    float x[N];
    fill_range(x, N, -3, 3, 10);
    qkv_tensor ref = run1("Atan", 7, kh_f32(1, (int64_t[]){N}, x), NULL, 1);
    qkv_error err;
    kh_node *n = kh_node_create("Atan", 7, 1, 1);
    qkv_tensor in = kh_f32(1, (int64_t[]){N}, x), out;
    /* the output overwrites the input */
    cr_assert_eq(kh_run_inplace(n, 0, &in, &out, &err), QKV_OK, "%s", err.message);
    cr_assert_eq(out.data, (void *)x);
    cr_assert_arr_eq(x, ref.data, sizeof x);
    kh_node_destroy(n);
    kh_free_outputs(&ref, 1);
}

Test(trig, refuses_integer_input)
{
    int32_t x[1] = {1};
    qkv_tensor y;
    qkv_error err;
    kh_node *n = kh_node_create("Cosh", 9, 1, 1);
    qkv_tensor xt = kh_tensor(QKV_DTYPE_INT32, 1, (int64_t[]){1}, x);
    cr_assert_eq(kh_run(n, &xt, &y, &err), QKV_ERR_TYPE);
    cr_assert(strstr(err.message, "(Cosh-9): input 0 has type int32, not supported"), "%s",
              err.message);
    kh_node_destroy(n);
    n = kh_node_create("Sinh", 8, 1, 1); /* Sinh starts at opset 9 */
    xt = kh_f32(1, (int64_t[]){1}, (float[]){1});
    cr_assert_eq(kh_run(n, &xt, &y, &err), QKV_ERR_UNSUPPORTED);
    cr_assert(strstr(err.message, "no kernel for Sinh-8"), "%s", err.message);
    kh_node_destroy(n);
}

/* ---- PRelu ------------------------------------------------------------------------ */

static qkv_status run_prelu(int64_t opset, qkv_tensor x, qkv_tensor s, qkv_tensor *y,
                            size_t threads, qkv_error *err)
{
    kh_node *n = kh_node_create("PRelu", opset, 2, 1);
    kh_set_threads(n, threads);
    qkv_tensor ins[2] = {x, s};
    qkv_status st = kh_run(n, ins, y, err);
    kh_node_destroy(n);
    return st;
}

Test(prelu, same_shape_and_broadcast_slopes)
{
    enum { A = 3, B = 4, C = 5 };
    float x[A * B * C], s_full[A * B * C], s_c[C], s_bc[B * C];
    kh_fill_random(x, A * B * C, 1);
    kh_fill_random(s_full, A * B * C, 2);
    kh_fill_random(s_c, C, 3);
    kh_fill_random(s_bc, B * C, 4);
    struct {
        float *s;
        int32_t rank;
        int64_t dims[3];
        size_t (*idx)(size_t);
    } forms[3] = {{s_full, 3, {A, B, C}, NULL}, {s_c, 1, {C}, NULL}, {s_bc, 3, {1, B, C}, NULL}};
    for (int f = 0; f < 3; f++) {
        qkv_tensor y;
        qkv_error err;
        cr_assert_eq(run_prelu(16, kh_f32(3, (int64_t[]){A, B, C}, x),
                               kh_f32(forms[f].rank, forms[f].dims, forms[f].s), &y, 1, &err),
                     QKV_OK, "%s", err.message);
        cr_assert_eq(y.rank, 3);
        for (int i = 0; i < A * B * C; i++) {
            float sl = f == 0 ? s_full[i] : f == 1 ? s_c[i % C] : s_bc[i % (B * C)];
            float want = x[i] < 0 ? sl * x[i] : x[i];
            cr_assert_eq(((float *)y.data)[i], want, "form %d element %d", f, i);
        }
        kh_free_outputs(&y, 1);
    }
}

Test(prelu, integers_wrap_unsigned_pass_through_and_float16_rounds_once)
{
    int32_t xi[4] = {-3, 5, INT32_MIN, -1}, si[4] = {2, 7, 2, -4};
    qkv_tensor y;
    qkv_error err;
    cr_assert_eq(run_prelu(9, kh_tensor(QKV_DTYPE_INT32, 1, (int64_t[]){4}, xi),
                           kh_tensor(QKV_DTYPE_INT32, 1, (int64_t[]){4}, si), &y, 1, &err),
                 QKV_OK, "%s", err.message);
    int32_t want_i[4] = {-6, 5, 0, 4}; /* INT32_MIN * 2 wraps to 0 */
    cr_assert_arr_eq(y.data, want_i, sizeof want_i);
    kh_free_outputs(&y, 1);

    int64_t xl[3] = {-3, 4, -5}, sl[1] = {3};
    cr_assert_eq(
        run_prelu(9, kh_i64(1, (int64_t[]){3}, xl), kh_i64(1, (int64_t[]){1}, sl), &y, 1, &err),
        QKV_OK, "%s", err.message);
    int64_t want_l[3] = {-9, 4, -15};
    cr_assert_arr_eq(y.data, want_l, sizeof want_l);
    kh_free_outputs(&y, 1);

    uint32_t xu[3] = {0, 1, 4000000000u}, su[1] = {5};
    cr_assert_eq(run_prelu(9, kh_tensor(QKV_DTYPE_UINT32, 1, (int64_t[]){3}, xu),
                           kh_tensor(QKV_DTYPE_UINT32, 1, (int64_t[]){1}, su), &y, 1, &err),
                 QKV_OK, "%s", err.message);
    cr_assert_arr_eq(y.data, xu, sizeof xu);
    kh_free_outputs(&y, 1);

    uint16_t xh[4], sh[2];
    float xf[4] = {-1.5f, 2, -0.3f, -4}, sf[2] = {0.1f, -2};
    for (int i = 0; i < 4; i++)
        xh[i] = qkv_f32_to_f16(xf[i]);
    for (int i = 0; i < 2; i++)
        sh[i] = qkv_f32_to_f16(sf[i]);
    cr_assert_eq(run_prelu(16, kh_tensor(QKV_DTYPE_FLOAT16, 2, (int64_t[]){2, 2}, xh),
                           kh_tensor(QKV_DTYPE_FLOAT16, 1, (int64_t[]){2}, sh), &y, 1, &err),
                 QKV_OK, "%s", err.message);
    for (int i = 0; i < 4; i++) {
        float xv = qkv_f16_to_f32(xh[i]), s = qkv_f16_to_f32(sh[i % 2]);
        uint16_t want = qkv_f32_to_f16(xv < 0 ? s * xv : xv);
        cr_assert_eq(((uint16_t *)y.data)[i], want, "f16 element %d", i);
    }
    kh_free_outputs(&y, 1);
}

Test(prelu, large_input_two_threads_give_the_single_thread_result)
{
    enum { R = 400, C = 300 };
    float *x = malloc(R * C * sizeof *x), s[C];
    kh_fill_random(x, R * C, 5);
    kh_fill_random(s, C, 6);
    qkv_tensor y1, y2;
    qkv_error err;
    cr_assert_eq(
        run_prelu(16, kh_f32(2, (int64_t[]){R, C}, x), kh_f32(1, (int64_t[]){C}, s), &y1, 1, &err),
        QKV_OK);
    cr_assert_eq(
        run_prelu(16, kh_f32(2, (int64_t[]){R, C}, x), kh_f32(1, (int64_t[]){C}, s), &y2, 2, &err),
        QKV_OK);
    cr_assert_arr_eq(y1.data, y2.data, R * C * sizeof(float));
    kh_free_outputs(&y1, 1);
    kh_free_outputs(&y2, 1);
    free(x);
}

Test(prelu, refuses_slope_that_does_not_broadcast_to_x_and_mixed_types)
{
    float x[6] = {0}, s[6] = {0};
    qkv_tensor y;
    qkv_error err;
    cr_assert_eq(
        run_prelu(16, kh_f32(2, (int64_t[]){2, 3}, x), kh_f32(1, (int64_t[]){2}, s), &y, 1, &err),
        QKV_ERR_SHAPE);
    cr_assert(strstr(err.message, "(PRelu-16): input 1 'slope' [2] does not broadcast "
                                  "(unidirectionally) to input 0 'X' [2,3]"),
              "%s", err.message);
    /* slope larger than x: multidirectional only, refused */
    cr_assert_eq(
        run_prelu(16, kh_f32(1, (int64_t[]){3}, x), kh_f32(2, (int64_t[]){2, 3}, s), &y, 1, &err),
        QKV_ERR_SHAPE);
    cr_assert(strstr(err.message, "input 1 'slope' [2,3] does not broadcast"), "%s", err.message);
    double sd[3] = {0};
    cr_assert_eq(run_prelu(16, kh_f32(1, (int64_t[]){3}, x),
                           kh_tensor(QKV_DTYPE_DOUBLE, 1, (int64_t[]){3}, sd), &y, 1, &err),
                 QKV_ERR_TYPE);
    cr_assert(strstr(err.message, "input 1 'slope' is float64 but input 0 'X' is float32"), "%s",
              err.message);
    /* integers only from opset 9 */
    int32_t xi[1] = {1}, si[1] = {1};
    cr_assert_eq(run_prelu(7, kh_tensor(QKV_DTYPE_INT32, 1, (int64_t[]){1}, xi),
                           kh_tensor(QKV_DTYPE_INT32, 1, (int64_t[]){1}, si), &y, 1, &err),
                 QKV_ERR_TYPE);
    cr_assert(strstr(err.message, "(PRelu-7): input 0 has type int32, not supported"), "%s",
              err.message);
}

/* ---- Hardmax ---------------------------------------------------------------------- */

/* y = one-hot of the first maximum of x (outer, d, inner) along d; NaN wins */
static void ref_hardmax(const float *x, float *y, size_t outer, size_t d, size_t inner)
{
    memset(y, 0, outer * d * inner * sizeof *y);
    for (size_t o = 0; o < outer; o++)
        for (size_t i = 0; i < inner; i++) {
            size_t best = 0;
            for (size_t p = 1; p < d; p++) {
                float b = x[(o * d + best) * inner + i], v = x[(o * d + p) * inner + i];
                if (!isnan(b) && (v > b || isnan(v)))
                    best = p;
            }
            y[(o * d + best) * inner + i] = 1;
        }
}

static qkv_tensor run_hardmax(int64_t opset, int64_t axis, qkv_tensor x)
{
    qkv_tensor y;
    qkv_error err;
    kh_node *n = kh_node_create("Hardmax", opset, 1, 1);
    if (axis != INT64_MIN)
        kh_attr_int(n, "axis", axis);
    cr_assert_eq(kh_run(n, &x, &y, &err), QKV_OK, "%s", err.message);
    kh_node_destroy(n);
    return y;
}

Test(hardmax, every_axis_in_both_opset_forms)
{
    enum { A = 3, B = 4, C = 5 };
    float x[A * B * C], want[A * B * C];
    kh_fill_random(x, A * B * C, 7);
    x[7] = x[8] = 5; /* a tie: the first wins */
    int64_t dims[3] = {A, B, C};
    for (int axis = -3; axis <= 2; axis++) {
        int a = axis < 0 ? axis + 3 : axis;
        /* opset 13: one axis */
        size_t outer = 1, inner = 1;
        for (int k = 0; k < 3; k++)
            if (k < a)
                outer *= (size_t)dims[k];
            else if (k > a)
                inner *= (size_t)dims[k];
        ref_hardmax(x, want, outer, (size_t)dims[a], inner);
        qkv_tensor y = run_hardmax(13, axis, kh_f32(3, dims, x));
        cr_assert_arr_eq(y.data, want, sizeof want, "opset 13 axis %d", axis);
        kh_free_outputs(&y, 1);
        /* opset 11: dims from axis flattened */
        size_t d = 1;
        for (int k = a; k < 3; k++)
            d *= (size_t)dims[k];
        ref_hardmax(x, want, outer, d, 1);
        y = run_hardmax(11, axis, kh_f32(3, dims, x));
        cr_assert_arr_eq(y.data, want, sizeof want, "opset 11 axis %d", axis);
        kh_free_outputs(&y, 1);
    }
    /* defaults: -1 from opset 13, 1 before */
    ref_hardmax(x, want, A * B, C, 1);
    qkv_tensor y = run_hardmax(13, INT64_MIN, kh_f32(3, dims, x));
    cr_assert_arr_eq(y.data, want, sizeof want);
    kh_free_outputs(&y, 1);
    ref_hardmax(x, want, A, B * C, 1);
    y = run_hardmax(1, INT64_MIN, kh_f32(3, dims, x));
    cr_assert_arr_eq(y.data, want, sizeof want);
    kh_free_outputs(&y, 1);
}

Test(hardmax, nan_is_the_maximum_and_float16_double_work)
{
    float x[8] = {1, NAN, 3, NAN, -INFINITY, -INFINITY, -INFINITY, -INFINITY};
    float want[8] = {0, 1, 0, 0, 1, 0, 0, 0};
    qkv_tensor y = run_hardmax(13, -1, kh_f32(2, (int64_t[]){2, 4}, x));
    cr_assert_arr_eq(y.data, want, sizeof want);
    kh_free_outputs(&y, 1);
    uint16_t h[6];
    float f[6] = {0.5f, 2, 2, -1, -3, -2};
    for (int i = 0; i < 6; i++)
        h[i] = qkv_f32_to_f16(f[i]);
    y = run_hardmax(13, 1, kh_tensor(QKV_DTYPE_FLOAT16, 2, (int64_t[]){2, 3}, h));
    uint16_t want_h[6] = {0, 0x3c00, 0, 0x3c00, 0, 0};
    cr_assert_eq(y.dtype, QKV_DTYPE_FLOAT16);
    cr_assert_arr_eq(y.data, want_h, sizeof want_h);
    kh_free_outputs(&y, 1);
    double d[3] = {-1, -0.5, -2};
    y = run_hardmax(13, 0, kh_tensor(QKV_DTYPE_DOUBLE, 1, (int64_t[]){3}, d));
    double want_d[3] = {0, 1, 0};
    cr_assert_arr_eq(y.data, want_d, sizeof want_d);
    kh_free_outputs(&y, 1);
}

Test(hardmax, refuses_axis_out_of_range)
{
    float x[6] = {0};
    qkv_tensor xt = kh_f32(2, (int64_t[]){2, 3}, x), y;
    qkv_error err;
    kh_node *n = kh_node_create("Hardmax", 13, 1, 1);
    kh_attr_int(n, "axis", 2);
    cr_assert_eq(kh_run(n, &xt, &y, &err), QKV_ERR_SHAPE);
    cr_assert(strstr(err.message, "(Hardmax-13): attribute axis=2 is out of range for input 0 "
                                  "'input' of rank 2 (expected -2 to 1)"),
              "%s", err.message);
    kh_node_destroy(n);
    n = kh_node_create("Hardmax", 11, 1, 1);
    kh_attr_int(n, "axis", -3);
    cr_assert_eq(kh_run(n, &xt, &y, &err), QKV_ERR_SHAPE);
    cr_assert(strstr(err.message, "attribute axis=-3 is out of range for input 0 'input' of rank "
                                  "2 (expected -2 to 2)"),
              "%s", err.message);
    kh_node_destroy(n);
}
