/* Gelu (opset 20), both approximations, against double-precision references
 * on random inputs: float, double, float16, bfloat16, threads, errors. */
#include <criterion/criterion.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "half.h"
#include "kernel_harness.h"

static double ref_gelu(double x, bool tanh_approx)
{
    if (tanh_approx)
        return 0.5 * x * (1 + tanh(sqrt(2 / 3.14159265358979323846) * (x + 0.044715 * x * x * x)));
    return 0.5 * x * (1 + erf(x / sqrt(2)));
}

/* Runs Gelu on x; approx NULL leaves the attribute absent. */
static qkv_status run_gelu(const char *approx, qkv_tensor x, qkv_tensor *y, size_t threads,
                           qkv_error *err)
{
    kh_node *n = kh_node_create("Gelu", 20, 1, 1);
    if (approx)
        kh_attr_string(n, "approximate", approx);
    kh_set_threads(n, threads);
    qkv_status st = kh_run(n, &x, y, err);
    kh_node_destroy(n);
    return st;
}

/* n inputs spread over [-6, 6) with the interesting region near 0 dense */
static void fill_inputs(float *x, size_t n, uint32_t seed)
{
    kh_fill_random(x, n, seed);
    for (size_t i = 0; i < n; i++)
        x[i] = x[i] * fabsf(x[i]) * 6.0f;
}

Test(gelu, float32_both_approximations_match_double_reference)
{
    enum { N = 2000 };
    float x[N];
    fill_inputs(x, N, 1);
    const char *modes[3] = {NULL, "none", "tanh"};
    for (int m = 0; m < 3; m++) {
        bool t = m == 2;
        qkv_tensor y;
        qkv_error err;
        cr_assert_eq(run_gelu(modes[m], kh_f32(1, (int64_t[]){N}, x), &y, 1, &err), QKV_OK, "%s",
                     err.message);
        cr_assert_eq(y.dtype, QKV_DTYPE_FLOAT);
        const float *g = y.data;
        for (int i = 0; i < N; i++) {
            double w = ref_gelu(x[i], t);
            /* float erff/tanhf/expressions: a few float ulps of the result,
             * plus an absolute term where the result cancels toward 0 for
             * negative x (0.5 x (1 + erf) loses relative precision there) */
            cr_assert(fabs(g[i] - w) <= 1e-6 + 4e-6 * fabs(w), "%s x=%.9g: got %.9g, expected %.9g",
                      modes[m] ? modes[m] : "default", x[i], g[i], w);
        }
        kh_free_outputs(&y, 1);
    }
}

Test(gelu, float64_is_computed_in_double)
{
    double x[7] = {-5, -1.5, -0.25, 0, 1e-3, 0.7, 3.25};
    for (int t = 0; t < 2; t++) {
        qkv_tensor y;
        qkv_error err;
        cr_assert_eq(run_gelu(t ? "tanh" : "none",
                              kh_tensor(QKV_DTYPE_DOUBLE, 1, (int64_t[]){7}, x), &y, 1, &err),
                     QKV_OK, "%s", err.message);
        cr_assert_eq(y.dtype, QKV_DTYPE_DOUBLE);
        for (int i = 0; i < 7; i++) /* same formula in double: equal to a few ulps */
            cr_assert(fabs(((double *)y.data)[i] - ref_gelu(x[i], t)) <= 1e-15, "x=%g: got %.17g",
                      x[i], ((double *)y.data)[i]);
        kh_free_outputs(&y, 1);
    }
}

Test(gelu, float16_and_bfloat16_round_the_float_result_once)
{
    enum { N = 600 };
    float f[N];
    fill_inputs(f, N, 2);
    for (int ty = 0; ty < 2; ty++) {
        qkv_dtype dt = ty ? QKV_DTYPE_BFLOAT16 : QKV_DTYPE_FLOAT16;
        uint16_t h[N];
        for (int i = 0; i < N; i++)
            h[i] = ty ? qkv_f32_to_bf16(f[i]) : qkv_f32_to_f16(f[i]);
        for (int t = 0; t < 2; t++) {
            qkv_tensor y;
            qkv_error err;
            cr_assert_eq(
                run_gelu(t ? "tanh" : "none", kh_tensor(dt, 1, (int64_t[]){N}, h), &y, 1, &err),
                QKV_OK, "%s", err.message);
            cr_assert_eq(y.dtype, dt);
            const uint16_t *g = y.data;
            for (int i = 0; i < N; i++) {
                double xv = ty ? qkv_bf16_to_f32(h[i]) : qkv_f16_to_f32(h[i]);
                double w = ref_gelu(xv, t);
                double gv = ty ? qkv_bf16_to_f32(g[i]) : qkv_f16_to_f32(g[i]);
                /* rounded once from a float result: within one ulp of the
                 * type (2^-10 relative for float16, 2^-7 for bfloat16), plus
                 * an absolute term for results near 0 */
                double rel = ty ? 0x1p-7 : 0x1p-10;
                cr_assert(fabs(gv - w) <= 1e-6 + rel * fabs(w), "%s %s x=%g: got %g, expected %g",
                          ty ? "bf16" : "f16", t ? "tanh" : "none", xv, gv, w);
            }
            kh_free_outputs(&y, 1);
        }
    }
}

Test(gelu, large_input_two_threads_give_the_single_thread_result)
{
    enum { N = 100003 };
    float *x = malloc(N * sizeof *x);
    fill_inputs(x, N, 3);
    qkv_tensor y1, y2;
    qkv_error err;
    cr_assert_eq(run_gelu("tanh", kh_f32(1, (int64_t[]){N}, x), &y1, 1, &err), QKV_OK);
    cr_assert_eq(run_gelu("tanh", kh_f32(1, (int64_t[]){N}, x), &y2, 2, &err), QKV_OK);
    cr_assert_arr_eq(y1.data, y2.data, N * sizeof(float));
    /* the tail block too: spot-check against the reference */
    cr_assert(fabs(((float *)y2.data)[N - 1] - ref_gelu(x[N - 1], true)) < 1e-5);
    kh_free_outputs(&y1, 1);
    kh_free_outputs(&y2, 1);
    free(x);
}

Test(gelu, keeps_shape_and_handles_special_values)
{
    float x[6] = {INFINITY, -INFINITY, NAN, 0.0f, -0.0f, 40.0f};
    qkv_tensor y;
    qkv_error err;
    cr_assert_eq(run_gelu(NULL, kh_f32(2, (int64_t[]){2, 3}, x), &y, 1, &err), QKV_OK);
    cr_assert_eq(y.rank, 2);
    cr_assert_eq(y.dims[0], 2);
    cr_assert_eq(y.dims[1], 3);
    const float *g = y.data;
    cr_assert(isinf(g[0]) && g[0] > 0);
    cr_assert(isnan(g[1])); /* -inf * 0, as the function body gives */
    cr_assert(isnan(g[2]));
    cr_assert_eq(g[3], 0.0f);
    cr_assert_eq(g[4], 0.0f);
    cr_assert_eq(g[5], 40.0f);
    kh_free_outputs(&y, 1);
}

Test(gelu, refuses_an_unknown_approximation)
{
    float x[1] = {1};
    qkv_tensor y;
    qkv_error err;
    cr_assert_eq(run_gelu("fast", kh_f32(1, (int64_t[]){1}, x), &y, 1, &err),
                 QKV_ERR_INVALID_MODEL);
    cr_assert(
        strstr(err.message, "(Gelu-20): attribute approximate='fast' is not 'none' or 'tanh'"),
        "%s", err.message);
}

Test(gelu, refuses_integer_input)
{
    int32_t x[1] = {1};
    qkv_tensor y;
    qkv_error err;
    cr_assert_eq(run_gelu(NULL, kh_tensor(QKV_DTYPE_INT32, 1, (int64_t[]){1}, x), &y, 1, &err),
                 QKV_ERR_TYPE);
    cr_assert(strstr(err.message, "(Gelu-20): input 0 has type int32, not supported"), "%s",
              err.message);
}

Test(gelu, refuses_approximate_of_the_wrong_attribute_type)
{
    float x[1] = {1};
    qkv_tensor y;
    qkv_error err;
    kh_node *n = kh_node_create("Gelu", 20, 1, 1);
    kh_attr_int(n, "approximate", 1);
    qkv_tensor xt = kh_f32(1, (int64_t[]){1}, x);
    cr_assert_eq(kh_run(n, &xt, &y, &err), QKV_ERR_TYPE);
    cr_assert(strstr(err.message, "approximate"), "%s", err.message);
    kh_node_destroy(n);
}
