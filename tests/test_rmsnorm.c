/* RMSNormalization (opset 23) against a double-precision reference: every
 * axis of random shapes, epsilon, broadcast scale, float16/bfloat16 and mixed
 * X/scale types, double, threads, and every error. */
#include <criterion/criterion.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
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

/* y (rows, d) = x / sqrt(mean(x^2) + eps) * w, w (d), in double */
static void ref_rms(const float *x, const float *w, size_t rows, size_t d, double eps, double *y)
{
    for (size_t r = 0; r < rows; r++) {
        double ss = 0;
        for (size_t i = 0; i < d; i++)
            ss += (double)x[r * d + i] * x[r * d + i];
        double inv = 1 / sqrt(ss / (double)d + eps);
        for (size_t i = 0; i < d; i++)
            y[r * d + i] = x[r * d + i] * inv * w[i];
    }
}

typedef struct rms_case {
    int64_t axis;  /* INT64_MIN: attribute absent */
    float epsilon; /* 0: absent */
    int64_t stash; /* 0: absent */
    size_t threads;
} rms_case;

static qkv_status run_rms(const rms_case *c, qkv_tensor x, qkv_tensor w, qkv_tensor *y,
                          qkv_error *err)
{
    kh_node *n = kh_node_create("RMSNormalization", 23, 2, 1);
    if (c->axis != INT64_MIN)
        kh_attr_int(n, "axis", c->axis);
    if (c->epsilon != 0)
        kh_attr_float(n, "epsilon", c->epsilon);
    if (c->stash)
        kh_attr_int(n, "stash_type", c->stash);
    kh_set_threads(n, c->threads ? c->threads : 1);
    qkv_tensor ins[2] = {x, w};
    qkv_status st = kh_run(n, ins, y, err);
    kh_node_destroy(n);
    return st;
}

/* Tolerance: the kernel sums squares in double, then multiplies in float
 * (x * (1/rms), then * w): two float roundings and the float 1/rms, a few
 * 1e-7 relative; 2e-6 relative + 1e-6 absolute (for products near 0) still
 * catches a wrong mean, epsilon, axis or scale element. */
static void assert_close(const float *got, const double *want, size_t n, const char *what)
{
    for (size_t i = 0; i < n; i++)
        cr_assert(fabs(got[i] - want[i]) <= 1e-6 + 2e-6 * fabs(want[i]),
                  "%s: element %zu is %.9g, expected %.9g", what, i, got[i], want[i]);
}

Test(rmsnorm, matches_reference_for_every_axis_of_random_shapes)
{
    static float xs[1024], ws[1024];
    static double y[1024];
    for (int trial = 0; trial < 120; trial++) {
        int rank = 1 + (int)rnd(4);
        int64_t dims[4];
        size_t numel = 1;
        for (int k = 0; k < rank; k++) {
            dims[k] = 1 + rnd(5);
            numel *= (size_t)dims[k];
        }
        int axis = (int)rnd((uint32_t)rank);
        int64_t axis_attr = trial % 5 == 0 && axis == rank - 1 ? INT64_MIN
                            : rnd(2)                           ? axis
                                                               : axis - rank;
        size_t rows = 1, d = 1;
        for (int k = 0; k < rank; k++)
            *(k < axis ? &rows : &d) *= (size_t)dims[k];
        kh_fill_random(xs, numel, rnd(1000) + 1);
        for (size_t i = 0; i < numel; i++)
            xs[i] = xs[i] * 3 + 1;
        kh_fill_random(ws, d, rnd(1000) + 1);
        rms_case c = {
            .axis = axis_attr, .epsilon = trial % 3 ? 0 : 0.1f, .stash = trial % 4 == 1 ? 11 : 0};
        ref_rms(xs, ws, rows, d, c.epsilon ? (double)0.1f : (double)1e-5f, y);
        qkv_tensor out;
        qkv_error err;
        char what[96];
        snprintf(what, sizeof what, "trial %d rank %d axis %lld", trial, rank,
                 (long long)axis_attr);
        cr_assert_eq(
            run_rms(&c, kh_f32(rank, dims, xs), kh_f32(rank - axis, dims + axis, ws), &out, &err),
            QKV_OK, "%s: %s", what, err.message);
        cr_assert_eq(out.dtype, QKV_DTYPE_FLOAT, "%s", what);
        cr_assert_eq(out.rank, rank, "%s", what);
        for (int k = 0; k < rank; k++)
            cr_assert_eq(out.dims[k], dims[k], "%s", what);
        assert_close(out.data, y, numel, what);
        kh_free_outputs(&out, 1);
    }
}

Test(rmsnorm, broadcasts_a_smaller_scale_over_the_normalized_shape)
{
    /* normalized shape [3, 4] (axis -2); scale [4] and [1, 4] repeat per row */
    float xs[2 * 3 * 4], ws[4] = {1, 2, 3, 4}, wfull[12];
    for (int i = 0; i < 12; i++)
        wfull[i] = ws[i % 4];
    kh_fill_random(xs, 24, 21);
    double y[24];
    ref_rms(xs, wfull, 2, 12, 1e-5f, y);
    rms_case c = {.axis = -2};
    for (int form = 0; form < 2; form++) {
        qkv_tensor out;
        qkv_error err;
        qkv_tensor w = form ? kh_f32(2, (int64_t[]){1, 4}, ws) : kh_f32(1, (int64_t[]){4}, ws);
        cr_assert_eq(run_rms(&c, kh_f32(3, (int64_t[]){2, 3, 4}, xs), w, &out, &err), QKV_OK, "%s",
                     err.message);
        assert_close(out.data, y, 24, form ? "scale [1,4]" : "scale [4]");
        kh_free_outputs(&out, 1);
    }
    /* a scalar-like scale [1] over [3, 4] */
    float one[1] = {2};
    float w2[12];
    for (int i = 0; i < 12; i++)
        w2[i] = 2;
    ref_rms(xs, w2, 2, 12, 1e-5f, y);
    qkv_tensor out;
    qkv_error err;
    cr_assert_eq(run_rms(&c, kh_f32(3, (int64_t[]){2, 3, 4}, xs), kh_f32(1, (int64_t[]){1}, one),
                         &out, &err),
                 QKV_OK, "%s", err.message);
    assert_close(out.data, y, 24, "scale [1]");
    kh_free_outputs(&out, 1);
}

Test(rmsnorm, float16_rounds_normalized_to_x_type_before_the_scale)
{
    enum { R = 5, D = 300 }; /* D spans more than one chunk of the generic path */
    static uint16_t hx[R * D], hw[D];
    static float fx[R * D], fw[D];
    kh_fill_random(fx, R * D, 31);
    kh_fill_random(fw, D, 32);
    for (int i = 0; i < R * D; i++) {
        hx[i] = qkv_f32_to_f16(fx[i] * 4);
        fx[i] = qkv_f16_to_f32(hx[i]);
    }
    for (int i = 0; i < D; i++) {
        hw[i] = qkv_f32_to_f16(fw[i] * 2);
        fw[i] = qkv_f16_to_f32(hw[i]);
    }
    /* function body: NormalizedT = Cast(Normalized, float16); Y = NormalizedT * scale */
    static double want[R * D];
    for (int r = 0; r < R; r++) {
        double ss = 0;
        for (int i = 0; i < D; i++)
            ss += (double)fx[r * D + i] * fx[r * D + i];
        double inv = 1 / sqrt(ss / D + (double)1e-5f);
        for (int i = 0; i < D; i++) {
            double nt = qkv_f16_to_f32(qkv_f64_to_f16(fx[r * D + i] * inv));
            want[r * D + i] = nt * fw[i];
        }
    }
    rms_case c = {.axis = INT64_MIN};
    qkv_tensor out;
    qkv_error err;
    cr_assert_eq(run_rms(&c, kh_tensor(QKV_DTYPE_FLOAT16, 2, (int64_t[]){R, D}, hx),
                         kh_tensor(QKV_DTYPE_FLOAT16, 1, (int64_t[]){D}, hw), &out, &err),
                 QKV_OK, "%s", err.message);
    cr_assert_eq(out.dtype, QKV_DTYPE_FLOAT16);
    const uint16_t *g = out.data;
    for (int i = 0; i < R * D; i++) {
        /* the kernel forms x * (1/rms) in float where this reference uses
         * double, so NormalizedT may land one float16 ulp away when x/rms is
         * within a float rounding of a float16 tie; the product with the
         * scale is then rounded the same way: at most one ulp (adjacent bit
         * patterns, same sign) */
        uint16_t e = qkv_f64_to_f16(want[i]);
        cr_assert(abs((int)g[i] - (int)e) <= 1, "element %d: 0x%04x, expected 0x%04x", i, g[i], e);
    }
    kh_free_outputs(&out, 1);
}

Test(rmsnorm, mixed_types_give_scale_type_output_and_double_works)
{
    /* X bfloat16, scale float: Y float */
    float fx[8] = {1, -2, 3, 0.5f, -1, 2, 8, 0}, fw[4] = {0.5f, 1, 2, -1};
    uint16_t bx[8];
    for (int i = 0; i < 8; i++)
        bx[i] = qkv_f32_to_bf16(fx[i]); /* all exact */
    double want[8];
    ref_rms(fx, fw, 2, 4, 1e-5f, want);
    rms_case c = {.axis = -1};
    qkv_tensor out;
    qkv_error err;
    cr_assert_eq(run_rms(&c, kh_tensor(QKV_DTYPE_BFLOAT16, 2, (int64_t[]){2, 4}, bx),
                         kh_f32(1, (int64_t[]){4}, fw), &out, &err),
                 QKV_OK, "%s", err.message);
    cr_assert_eq(out.dtype, QKV_DTYPE_FLOAT);
    for (int i = 0; i < 8; i++) {
        /* Normalized rounded to bfloat16 (2^-9 relative) before the float scale */
        double w = want[i];
        cr_assert(fabs(((float *)out.data)[i] - w) <= 0x1p-8 * fabs(w) + 1e-7,
                  "element %d: %g, expected %g", i, ((float *)out.data)[i], w);
    }
    kh_free_outputs(&out, 1);

    double dx[6] = {1, 2, 3, 4, 5, 6}, dw[3] = {1, 0.5, 2};
    cr_assert_eq(run_rms(&c, kh_tensor(QKV_DTYPE_DOUBLE, 2, (int64_t[]){2, 3}, dx),
                         kh_tensor(QKV_DTYPE_DOUBLE, 1, (int64_t[]){3}, dw), &out, &err),
                 QKV_OK, "%s", err.message);
    cr_assert_eq(out.dtype, QKV_DTYPE_DOUBLE);
    for (int r = 0; r < 2; r++) {
        double ss = 0;
        for (int i = 0; i < 3; i++)
            ss += dx[r * 3 + i] * dx[r * 3 + i];
        double inv = 1 / sqrt(ss / 3 + (double)1e-5f);
        for (int i = 0; i < 3; i++) {
            double w = dx[r * 3 + i] * inv * dw[i];
            cr_assert(fabs(((double *)out.data)[r * 3 + i] - w) <= 1e-15 * fabs(w), "f64 %d", i);
        }
    }
    kh_free_outputs(&out, 1);
}

Test(rmsnorm, many_rows_two_threads_give_the_single_thread_result)
{
    enum { R = 600, D = 64 };
    float *x = malloc(R * D * sizeof *x), w[D];
    kh_fill_random(x, R * D, 41);
    kh_fill_random(w, D, 42);
    rms_case c1 = {.axis = -1, .threads = 1}, c2 = {.axis = -1, .threads = 2};
    qkv_tensor y1, y2;
    qkv_error err;
    cr_assert_eq(
        run_rms(&c1, kh_f32(2, (int64_t[]){R, D}, x), kh_f32(1, (int64_t[]){D}, w), &y1, &err),
        QKV_OK);
    cr_assert_eq(
        run_rms(&c2, kh_f32(2, (int64_t[]){R, D}, x), kh_f32(1, (int64_t[]){D}, w), &y2, &err),
        QKV_OK);
    cr_assert_arr_eq(y1.data, y2.data, R * D * sizeof(float));
    kh_free_outputs(&y1, 1);
    kh_free_outputs(&y2, 1);
    free(x);
}

Test(rmsnorm, zero_rows_give_zero_not_nan)
{
    float x[4] = {0, 0, 0, 0}, w[2] = {1, 1};
    rms_case c = {.axis = -1};
    qkv_tensor y;
    qkv_error err;
    cr_assert_eq(
        run_rms(&c, kh_f32(2, (int64_t[]){2, 2}, x), kh_f32(1, (int64_t[]){2}, w), &y, &err),
        QKV_OK);
    for (int i = 0; i < 4; i++)
        cr_assert_eq(((float *)y.data)[i], 0.0f); /* epsilon keeps 0 / sqrt(eps) finite */
    kh_free_outputs(&y, 1);
}

/* ---- errors ---------------------------------------------------------------- */

static void expect_error(const rms_case *c, qkv_tensor x, qkv_tensor w, qkv_status want,
                         const char *msg)
{
    qkv_tensor y;
    qkv_error err;
    cr_assert_eq(run_rms(c, x, w, &y, &err), want, "%s", err.message);
    cr_assert(strstr(err.message, msg), "got '%s', expected '%s'", err.message, msg);
}

Test(rmsnorm, refuses_axis_out_of_range)
{
    float x[6] = {0}, w[3] = {0};
    rms_case c = {.axis = 2};
    expect_error(&c, kh_f32(2, (int64_t[]){2, 3}, x), kh_f32(1, (int64_t[]){3}, w), QKV_ERR_SHAPE,
                 "(RMSNormalization-23): attribute axis=2 is out of range for input 0 'X' of rank "
                 "2 (expected -2 to 1)");
    c.axis = -3;
    expect_error(&c, kh_f32(2, (int64_t[]){2, 3}, x), kh_f32(1, (int64_t[]){3}, w), QKV_ERR_SHAPE,
                 "attribute axis=-3 is out of range");
}

Test(rmsnorm, refuses_scale_that_does_not_broadcast_to_the_normalized_shape)
{
    float x[6] = {0}, w[6] = {0};
    rms_case c = {.axis = -1};
    expect_error(&c, kh_f32(2, (int64_t[]){2, 3}, x), kh_f32(1, (int64_t[]){2}, w), QKV_ERR_SHAPE,
                 "input 1 'scale' has shape [2], which does not broadcast to the normalized dims "
                 "of input 0 'X' [2,3] from axis 1");
    /* a scale dim over a non-normalized dim */
    expect_error(&c, kh_f32(2, (int64_t[]){2, 3}, x), kh_f32(2, (int64_t[]){2, 3}, w),
                 QKV_ERR_SHAPE, "input 1 'scale' has shape [2,3], which does not broadcast");
}

Test(rmsnorm, refuses_unsupported_stash_type_and_integer_input)
{
    float x[2] = {1, 2}, w[2] = {1, 1};
    rms_case c = {.axis = -1, .stash = 10};
    expect_error(&c, kh_f32(1, (int64_t[]){2}, x), kh_f32(1, (int64_t[]){2}, w),
                 QKV_ERR_UNSUPPORTED,
                 "(RMSNormalization-23): attribute stash_type=10 is not supported (1 float or 11 "
                 "double)");
    int32_t xi[2] = {1, 2};
    rms_case c2 = {.axis = -1};
    expect_error(&c2, kh_tensor(QKV_DTYPE_INT32, 1, (int64_t[]){2}, xi),
                 kh_f32(1, (int64_t[]){2}, w), QKV_ERR_TYPE,
                 "input 0 has type int32, not supported");
}

Test(rmsnorm, is_not_available_before_opset_23)
{
    float x[2] = {1, 2}, w[2] = {1, 1};
    kh_node *n = kh_node_create("RMSNormalization", 22, 2, 1);
    qkv_tensor ins[2] = {kh_f32(1, (int64_t[]){2}, x), kh_f32(1, (int64_t[]){2}, w)}, y;
    qkv_error err;
    cr_assert_eq(kh_run(n, ins, &y, &err), QKV_ERR_UNSUPPORTED);
    cr_assert(strstr(err.message, "no kernel for RMSNormalization-22"), "%s", err.message);
    kh_node_destroy(n);
}
