/* SwiGLU (provisional opset 28) and Swish (opset 24) against double
 * references on random inputs: alpha, broadcasting, float16/bfloat16,
 * double, threads, errors. */
#include <criterion/criterion.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "half.h"
#include "kernel_harness.h"

static double ref_swish(double x, double alpha) { return x / (1 + exp(-alpha * x)); }

/* alpha NAN: attribute absent */
static qkv_status run_op(const char *op, int64_t opset, float alpha, const qkv_tensor *ins,
                         size_t n_in, qkv_tensor *y, size_t threads, qkv_error *err)
{
    kh_node *n = kh_node_create(op, opset, n_in, 1);
    if (!isnan(alpha))
        kh_attr_float(n, "alpha", alpha);
    kh_set_threads(n, threads);
    qkv_status st = kh_run(n, ins, y, err);
    kh_node_destroy(n);
    return st;
}

/* float results: a few float ulps (expf and one division/multiply) plus an
 * absolute term for results that underflow toward 0 for large negative x */
static void assert_f32_close(const float *got, const double *want, size_t n, const char *what)
{
    for (size_t i = 0; i < n; i++)
        cr_assert(fabs(got[i] - want[i]) <= 1e-7 + 1e-6 * fabs(want[i]),
                  "%s: element %zu is %.9g, expected %.9g", what, i, got[i], want[i]);
}

Test(swish, matches_reference_with_default_and_given_alpha)
{
    enum { N = 1500 };
    float x[N];
    double want[N];
    kh_fill_random(x, N, 5);
    for (int i = 0; i < N; i++)
        x[i] *= 20; /* into the saturated regions both ways */
    const float alphas[3] = {NAN, 0.5f, 1.702f};
    for (int a = 0; a < 3; a++) {
        double al = isnan(alphas[a]) ? 1.0 : alphas[a];
        for (int i = 0; i < N; i++)
            want[i] = ref_swish(x[i], (float)al);
        qkv_tensor xt = kh_f32(1, (int64_t[]){N}, x), y;
        qkv_error err;
        cr_assert_eq(run_op("Swish", 24, alphas[a], &xt, 1, &y, 1, &err), QKV_OK, "%s",
                     err.message);
        assert_f32_close(y.data, want, N, "Swish");
        kh_free_outputs(&y, 1);
    }
}

Test(swish, float16_double_and_extremes)
{
    float f[5] = {-100, -1, 0, 2.5f, 100};
    uint16_t h[5];
    double d[5];
    for (int i = 0; i < 5; i++) {
        h[i] = qkv_f32_to_f16(f[i]);
        d[i] = f[i];
    }
    qkv_tensor ht = kh_tensor(QKV_DTYPE_FLOAT16, 1, (int64_t[]){5}, h), hy;
    qkv_tensor dt = kh_tensor(QKV_DTYPE_DOUBLE, 1, (int64_t[]){5}, d), dy;
    qkv_error err;
    cr_assert_eq(run_op("Swish", 24, NAN, &ht, 1, &hy, 1, &err), QKV_OK, "%s", err.message);
    cr_assert_eq(run_op("Swish", 24, NAN, &dt, 1, &dy, 1, &err), QKV_OK, "%s", err.message);
    for (int i = 0; i < 5; i++) {
        double w = ref_swish(f[i], 1.0);
        /* float16: rounded once from float */
        cr_assert_eq(((uint16_t *)hy.data)[i], qkv_f32_to_f16((float)w), "f16 element %d", i);
        cr_assert(fabs(((double *)dy.data)[i] - w) <= 1e-15 * (1 + fabs(w)), "f64 element %d", i);
    }
    /* -100: e^100 does not overflow a float but x / (1 + e^100) is -3.7e-42
     * (a float subnormal), which the float16 rounds to -0 */
    cr_assert_eq(((uint16_t *)hy.data)[0], 0x8000);
    kh_free_outputs(&hy, 1);
    kh_free_outputs(&dy, 1);
}

Test(swiglu, same_shape_inputs_with_default_and_given_alpha)
{
    enum { R = 7, C = 33 };
    float a[R * C], b[R * C];
    double want[R * C];
    kh_fill_random(a, R * C, 6);
    kh_fill_random(b, R * C, 7);
    for (int i = 0; i < R * C; i++)
        a[i] *= 8;
    const float alphas[2] = {NAN, 0.5f};
    for (int k = 0; k < 2; k++) {
        double al = isnan(alphas[k]) ? 1.0 : alphas[k];
        for (int i = 0; i < R * C; i++)
            want[i] = ref_swish(a[i], al) * b[i];
        qkv_tensor ins[2] = {kh_f32(2, (int64_t[]){R, C}, a), kh_f32(2, (int64_t[]){R, C}, b)};
        qkv_tensor y;
        qkv_error err;
        cr_assert_eq(run_op("SwiGLU", 28, alphas[k], ins, 2, &y, 1, &err), QKV_OK, "%s",
                     err.message);
        cr_assert_eq(y.rank, 2);
        cr_assert_eq(y.dims[0], R);
        cr_assert_eq(y.dims[1], C);
        assert_f32_close(y.data, want, R * C, "SwiGLU");
        kh_free_outputs(&y, 1);
    }
}

Test(swiglu, broadcasts_both_ways_like_the_function_body_mul)
{
    /* a (2, 1, 4) and b (3, 1): y (2, 3, 4) */
    float a[8], b[3];
    kh_fill_random(a, 8, 8);
    kh_fill_random(b, 3, 9);
    double want[24];
    for (int i = 0; i < 2; i++)
        for (int j = 0; j < 3; j++)
            for (int k = 0; k < 4; k++)
                want[(i * 3 + j) * 4 + k] = ref_swish(a[i * 4 + k], 1.0) * b[j];
    qkv_tensor ins[2] = {kh_f32(3, (int64_t[]){2, 1, 4}, a), kh_f32(2, (int64_t[]){3, 1}, b)};
    qkv_tensor y;
    qkv_error err;
    cr_assert_eq(run_op("SwiGLU", 28, NAN, ins, 2, &y, 1, &err), QKV_OK, "%s", err.message);
    cr_assert_eq(y.rank, 3);
    cr_assert_eq(y.dims[0], 2);
    cr_assert_eq(y.dims[1], 3);
    cr_assert_eq(y.dims[2], 4);
    assert_f32_close(y.data, want, 24, "broadcast");
    kh_free_outputs(&y, 1);
}

Test(swiglu, float16_bfloat16_and_double)
{
    enum { N = 300 }; /* more than one conversion chunk */
    float fa[N], fb[N];
    kh_fill_random(fa, N, 10);
    kh_fill_random(fb, N, 11);
    for (int ty = 0; ty < 3; ty++) {
        qkv_dtype dt = ty == 0   ? QKV_DTYPE_FLOAT16
                       : ty == 1 ? QKV_DTYPE_BFLOAT16
                                 : QKV_DTYPE_DOUBLE;
        uint16_t ha[N], hb[N];
        double da[N], db[N];
        for (int i = 0; i < N; i++) {
            float x = fa[i] * 6, z = fb[i] * 2;
            ha[i] = ty == 1 ? qkv_f32_to_bf16(x) : qkv_f32_to_f16(x);
            hb[i] = ty == 1 ? qkv_f32_to_bf16(z) : qkv_f32_to_f16(z);
            da[i] = x;
            db[i] = z;
        }
        /* b broadcast as a (1,) tensor for the half types */
        qkv_tensor ins[2];
        if (ty == 2) {
            ins[0] = kh_tensor(dt, 1, (int64_t[]){N}, da);
            ins[1] = kh_tensor(dt, 1, (int64_t[]){N}, db);
        } else {
            ins[0] = kh_tensor(dt, 1, (int64_t[]){N}, ha);
            ins[1] = kh_tensor(dt, 1, (int64_t[]){1}, hb);
        }
        qkv_tensor y;
        qkv_error err;
        cr_assert_eq(run_op("SwiGLU", 28, 0.75f, ins, 2, &y, 1, &err), QKV_OK, "%s", err.message);
        cr_assert_eq(y.dtype, dt);
        for (int i = 0; i < N; i++) {
            if (ty == 2) {
                double w = ref_swish(da[i], 0.75) * db[i];
                cr_assert(fabs(((double *)y.data)[i] - w) <= 1e-15 * (1 + fabs(w)), "f64 %d", i);
                continue;
            }
            double xa = ty ? qkv_bf16_to_f32(ha[i]) : qkv_f16_to_f32(ha[i]);
            double xb = ty ? qkv_bf16_to_f32(hb[0]) : qkv_f16_to_f32(hb[0]);
            double w = ref_swish(xa, 0.75) * xb;
            uint16_t g = ((uint16_t *)y.data)[i];
            double gv = ty ? qkv_bf16_to_f32(g) : qkv_f16_to_f32(g);
            /* rounded once from float: one ulp of the type at most */
            double rel = ty ? 0x1p-7 : 0x1p-10;
            cr_assert(fabs(gv - w) <= 1e-7 + rel * fabs(w), "%s element %d: %g, expected %g",
                      ty ? "bf16" : "f16", i, gv, w);
        }
        kh_free_outputs(&y, 1);
    }
}

Test(swiglu, large_inputs_two_threads_give_the_single_thread_result)
{
    enum { N = 140000 };
    float *a = malloc(N * sizeof *a), *b = malloc(N * sizeof *b);
    kh_fill_random(a, N, 12);
    kh_fill_random(b, N, 13);
    qkv_tensor ins[2] = {kh_f32(1, (int64_t[]){N}, a), kh_f32(1, (int64_t[]){N}, b)};
    qkv_tensor y1, y2;
    qkv_error err;
    cr_assert_eq(run_op("SwiGLU", 28, NAN, ins, 2, &y1, 1, &err), QKV_OK);
    cr_assert_eq(run_op("SwiGLU", 28, NAN, ins, 2, &y2, 2, &err), QKV_OK);
    cr_assert_arr_eq(y1.data, y2.data, N * sizeof(float));
    kh_free_outputs(&y1, 1);
    kh_free_outputs(&y2, 1);
    free(a);
    free(b);
}

Test(swiglu, refuses_inputs_of_different_types)
{
    float a[2] = {1, 2};
    double b[2] = {1, 2};
    qkv_tensor ins[2] = {kh_f32(1, (int64_t[]){2}, a),
                         kh_tensor(QKV_DTYPE_DOUBLE, 1, (int64_t[]){2}, b)};
    qkv_tensor y;
    qkv_error err;
    cr_assert_eq(run_op("SwiGLU", 28, NAN, ins, 2, &y, 1, &err), QKV_ERR_TYPE);
    cr_assert(
        strstr(err.message,
               "(SwiGLU-28): input 1 'b' is float64 but input 0 'a' is float32: they must match"),
        "%s", err.message);
}

Test(swiglu, refuses_shapes_that_do_not_broadcast)
{
    float a[6] = {0}, b[4] = {0};
    qkv_tensor ins[2] = {kh_f32(2, (int64_t[]){2, 3}, a), kh_f32(2, (int64_t[]){2, 2}, b)};
    qkv_tensor y;
    qkv_error err;
    cr_assert_eq(run_op("SwiGLU", 28, NAN, ins, 2, &y, 1, &err), QKV_ERR_SHAPE);
    cr_assert(strstr(err.message, "(SwiGLU-28): cannot broadcast shapes"), "%s", err.message);
}

Test(swiglu, refuses_integer_inputs)
{
    int32_t a[2] = {1, 2}, b[2] = {1, 2};
    qkv_tensor ins[2] = {kh_tensor(QKV_DTYPE_INT32, 1, (int64_t[]){2}, a),
                         kh_tensor(QKV_DTYPE_INT32, 1, (int64_t[]){2}, b)};
    qkv_tensor y;
    qkv_error err;
    cr_assert_eq(run_op("SwiGLU", 28, NAN, ins, 2, &y, 1, &err), QKV_ERR_TYPE);
    cr_assert(strstr(err.message, "input 0 has type int32, not supported"), "%s", err.message);
    cr_assert_eq(run_op("Swish", 24, NAN, ins, 1, &y, 1, &err), QKV_ERR_TYPE);
    cr_assert(strstr(err.message, "(Swish-24): input 0 has type int32, not supported"), "%s",
              err.message);
}

Test(swiglu, is_not_available_before_opset_28)
{
    float a[1] = {1}, b[1] = {1};
    qkv_tensor ins[2] = {kh_f32(1, (int64_t[]){1}, a), kh_f32(1, (int64_t[]){1}, b)};
    qkv_tensor y;
    qkv_error err;
    cr_assert_eq(run_op("SwiGLU", 27, NAN, ins, 2, &y, 1, &err), QKV_ERR_UNSUPPORTED);
    cr_assert(strstr(err.message, "no kernel for SwiGLU-27"), "%s", err.message);
    cr_assert_eq(run_op("Swish", 23, NAN, ins, 1, &y, 1, &err), QKV_ERR_UNSUPPORTED);
    cr_assert(strstr(err.message, "no kernel for Swish-23"), "%s", err.message);
}
