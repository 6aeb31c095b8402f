/* Adagrad, Adam and Momentum (domain ai.onnx.preview.training) against the
 * update rules of the ONNX operator documents, written here in double:
 * several tensors per node, T = 0 and T > 0, both Momentum modes, float and
 * double, threads, and each error. */
#include <criterion/criterion.h>
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "kernel_harness.h"

#define DOMAIN "ai.onnx.preview.training"

typedef struct opt_params {
    double norm, norm_post, alpha, beta, eps, decay;
    bool nesterov;
} opt_params;

/* The reference rules, one element; s/s_new: the state values (H; V, H; V). */
static double ref_adagrad(const opt_params *p, double r, int64_t t, double x, double g,
                          const double *s, double *s_new)
{
    double rate = r / (1 + (double)t * p->decay);
    double gr = p->norm * x + g;
    s_new[0] = s[0] + gr * gr;
    return x - rate * gr / (sqrt(s_new[0]) + p->eps);
}

static double ref_adam(const opt_params *p, double r, int64_t t, double x, double g,
                       const double *s, double *s_new)
{
    double gr = p->norm * x + g;
    s_new[0] = p->alpha * s[0] + (1 - p->alpha) * gr;
    s_new[1] = p->beta * s[1] + (1 - p->beta) * gr * gr;
    double rate =
        t > 0 ? r * sqrt(1 - pow(p->beta, (double)t)) / (1 - pow(p->alpha, (double)t)) : r;
    double xn = x - rate * s_new[0] / (sqrt(s_new[1]) + p->eps);
    return (1 - p->norm_post) * xn;
}

static double ref_momentum(const opt_params *p, double r, int64_t t, double x, double g,
                           const double *s, double *s_new)
{
    double gr = p->norm * x + g;
    s_new[0] = p->alpha * s[0] + (t > 0 ? p->beta : 1.0) * gr;
    return p->nesterov ? x - r * (gr + p->alpha * s_new[0]) : x - r * s_new[0];
}

typedef double (*ref_fn)(const opt_params *, double, int64_t, double, double, const double *,
                         double *);

typedef struct opt_op {
    const char *name;
    size_t n_states;
    ref_fn ref;
} opt_op;

static const opt_op adagrad = {"Adagrad", 1, ref_adagrad}, adam = {"Adam", 2, ref_adam},
                    momentum = {"Momentum", 1, ref_momentum};

static void set_attrs(kh_node *n, const opt_op *op, const opt_params *p)
{
    kh_attr_float(n, "norm_coefficient", (float)p->norm);
    if (op->ref == ref_adagrad) {
        kh_attr_float(n, "epsilon", (float)p->eps);
        kh_attr_float(n, "decay_factor", (float)p->decay);
        return;
    }
    kh_attr_float(n, "alpha", (float)p->alpha);
    kh_attr_float(n, "beta", (float)p->beta);
    if (op->ref == ref_adam) {
        kh_attr_float(n, "epsilon", (float)p->eps);
        kh_attr_float(n, "norm_coefficient_post", (float)p->norm_post);
    } else {
        kh_attr_string(n, "mode", p->nesterov ? "nesterov" : "standard");
    }
}

/* Attributes as the kernel sees them: rounded to float. */
static opt_params as_float(opt_params p)
{
    p.norm = (float)p.norm, p.norm_post = (float)p.norm_post, p.alpha = (float)p.alpha;
    p.beta = (float)p.beta, p.eps = (float)p.eps, p.decay = (float)p.decay;
    return p;
}

#define MAX_K 3
#define MAX_LEN 40

/* Runs `op` on k float tensors of lengths len[i] and checks every output
 * against the reference. Tolerance: kernel and reference both compute in
 * double from the same float inputs; the kernel rounds once to float, so
 * 1e-6 relative (+1e-7 absolute for values near 0) covers the rounding and
 * is far below a wrong coefficient or a missed bias correction. */
static void check_op(const opt_op *op, const opt_params *p, float r, int64_t t, size_t k,
                     const size_t *len, uint32_t seed)
{
    static float data[2 + MAX_K * 4][MAX_LEN];
    const size_t groups = 2 + op->n_states, n_in = 2 + groups * k, n_out = (groups - 1) * k;
    kh_node *n = kh_node_create_in(DOMAIN, op->name, 1, n_in, n_out);
    set_attrs(n, op, p);
    qkv_tensor ins[2 + MAX_K * 4], outs[MAX_K * 3];
    ins[0] = kh_f32(0, NULL, &r);
    ins[1] = kh_i64(0, NULL, &t);
    for (size_t grp = 0; grp < groups; grp++)
        for (size_t i = 0; i < k; i++) {
            size_t j = 2 + grp * k + i;
            kh_fill_random(data[j], len[i], seed + (uint32_t)j);
            if (grp >= 2) /* Adagrad's H and Adam's H are sums of squares */
                for (size_t e = 0; e < len[i]; e++)
                    data[j][e] = fabsf(data[j][e]) + 0.05f;
            int64_t dims[1] = {(int64_t)len[i]};
            ins[j] = kh_f32(1, dims, data[j]);
        }
    qkv_error err;
    char what[96];
    snprintf(what, sizeof what, "%s%s T=%lld k=%zu", op->name, p->nesterov ? " nesterov" : "",
             (long long)t, k);
    cr_assert_eq(kh_run(n, ins, outs, &err), QKV_OK, "%s: %s", what, err.message);
    const opt_params pf = as_float(*p);
    for (size_t i = 0; i < k; i++)
        for (size_t e = 0; e < len[i]; e++) {
            double s[2], s_new[2];
            for (size_t j = 0; j < op->n_states; j++)
                s[j] = data[2 + (2 + j) * k + i][e];
            double x = op->ref(&pf, r, t, data[2 + i][e], data[2 + k + i][e], s, s_new);
            for (size_t o = 0; o <= op->n_states; o++) {
                double want = o == 0 ? x : s_new[o - 1];
                const qkv_tensor *out = &outs[o * k + i];
                cr_assert_eq(out->rank, 1, "%s", what);
                cr_assert_eq(out->dims[0], (int64_t)len[i], "%s", what);
                float got = ((const float *)out->data)[e];
                cr_assert(fabs(got - want) <= 1e-7 + 1e-6 * fabs(want),
                          "%s: output %zu element %zu is %.9g, expected %.9g", what, o * k + i, e,
                          got, want);
            }
        }
    kh_free_outputs(outs, n_out);
    kh_node_destroy(n);
}

static const size_t lens[MAX_K] = {1, 7, 33};

Test(optimizers, adagrad_matches_reference)
{
    opt_params p = {.norm = 0.001, .eps = 1e-5, .decay = 0.1};
    for (int64_t t = 0; t < 3; t++)
        for (size_t k = 1; k <= MAX_K; k++)
            check_op(&adagrad, &p, 0.1f, t, k, lens, 10 + (uint32_t)k);
}

Test(optimizers, adam_matches_reference_with_bias_correction)
{
    opt_params p = {.norm = 0.001, .alpha = 0.95, .beta = 0.85, .eps = 1e-2};
    for (int64_t t = 0; t < 4; t++)
        for (size_t k = 1; k <= MAX_K; k++)
            check_op(&adam, &p, 0.1f, t, k, lens, 20 + (uint32_t)k);
    opt_params post = {.norm = 0.01, .norm_post = 0.05, .alpha = 0.9, .beta = 0.999, .eps = 1e-6};
    check_op(&adam, &post, 0.5f, 5, 2, lens, 30);
}

Test(optimizers, momentum_standard_and_nesterov)
{
    opt_params p = {.norm = 0.001, .alpha = 0.95, .beta = 0.85};
    for (int nesterov = 0; nesterov < 2; nesterov++) {
        p.nesterov = nesterov;
        for (int64_t t = 0; t < 3; t++)
            for (size_t k = 1; k <= MAX_K; k++)
                check_op(&momentum, &p, 0.1f, t, k, lens, 40 + (uint32_t)k);
    }
}

Test(optimizers, adam_defaults_from_the_schema)
{
    /* no attributes: alpha 0.9, beta 0.999, epsilon 1e-6, no regularisation */
    float r = 0.01f, x = 1, g = 0.5f, v = 0.25f, h = 0.125f;
    int64_t t = 2;
    kh_node *n = kh_node_create_in(DOMAIN, "Adam", 1, 6, 3);
    qkv_tensor ins[6] = {kh_f32(0, NULL, &r), kh_i64(0, NULL, &t), kh_f32(0, NULL, &x),
                         kh_f32(0, NULL, &g), kh_f32(0, NULL, &v), kh_f32(0, NULL, &h)},
               outs[3];
    qkv_error err;
    cr_assert_eq(kh_run(n, ins, outs, &err), QKV_OK, "%s", err.message);
    opt_params p = as_float((opt_params){.alpha = 0.9, .beta = 0.999, .eps = 1e-6});
    double s[2] = {v, h}, s_new[2];
    double want = ref_adam(&p, r, t, x, g, s, s_new);
    cr_assert_float_eq(*(float *)outs[0].data, want, 1e-6);
    cr_assert_float_eq(*(float *)outs[1].data, s_new[0], 1e-7);
    cr_assert_float_eq(*(float *)outs[2].data, s_new[1], 1e-7);
    kh_free_outputs(outs, 3);
    kh_node_destroy(n);
}

Test(optimizers, double_tensors_and_double_rate)
{
    double r = 0.1, x[3] = {1, -2, 3}, g[3] = {0.5, 0.25, -1}, h[3] = {1, 2, 0.5};
    int64_t t = 1;
    kh_node *n = kh_node_create_in(DOMAIN, "Adagrad", 1, 5, 2);
    kh_attr_float(n, "decay_factor", 0.5f);
    int64_t d[1] = {3};
    qkv_tensor ins[5] = {kh_tensor(QKV_DTYPE_DOUBLE, 0, NULL, &r), kh_i64(0, NULL, &t),
                         kh_tensor(QKV_DTYPE_DOUBLE, 1, d, x), kh_tensor(QKV_DTYPE_DOUBLE, 1, d, g),
                         kh_tensor(QKV_DTYPE_DOUBLE, 1, d, h)},
               outs[2];
    qkv_error err;
    cr_assert_eq(kh_run(n, ins, outs, &err), QKV_OK, "%s", err.message);
    opt_params p = {.eps = (float)1e-6, .decay = 0.5};
    for (int i = 0; i < 3; i++) {
        double s_new;
        double want = ref_adagrad(&p, r, t, x[i], g[i], &h[i], &s_new);
        cr_assert(fabs(((double *)outs[0].data)[i] - want) <= 1e-14, "x %d", i);
        cr_assert(fabs(((double *)outs[1].data)[i] - s_new) <= 1e-14, "h %d", i);
    }
    kh_free_outputs(outs, 2);
    kh_node_destroy(n);
}

Test(optimizers, large_tensor_on_threads)
{
    enum { LEN = 100000 };
    static float x[LEN], g[LEN], v[LEN];
    kh_fill_random(x, LEN, 1);
    kh_fill_random(g, LEN, 2);
    kh_fill_random(v, LEN, 3);
    float r = 0.05f;
    int64_t t = 3;
    kh_node *n = kh_node_create_in(DOMAIN, "Momentum", 1, 5, 2);
    opt_params p = {.norm = 0.01, .alpha = 0.9, .beta = 0.5};
    set_attrs(n, &momentum, &p);
    kh_set_threads(n, 4);
    int64_t d[1] = {LEN};
    qkv_tensor ins[5] = {kh_f32(0, NULL, &r), kh_i64(0, NULL, &t), kh_f32(1, d, x), kh_f32(1, d, g),
                         kh_f32(1, d, v)},
               outs[2];
    qkv_error err;
    cr_assert_eq(kh_run(n, ins, outs, &err), QKV_OK, "%s", err.message);
    const opt_params pf = as_float(p);
    for (size_t i = 0; i < LEN; i++) {
        double s = v[i], s_new;
        double want = ref_momentum(&pf, r, t, x[i], g[i], &s, &s_new);
        float got = ((float *)outs[0].data)[i], got_v = ((float *)outs[1].data)[i];
        cr_assert(fabs(got - want) <= 1e-7 + 1e-6 * fabs(want), "x %zu", i);
        cr_assert(fabs(got_v - s_new) <= 1e-7 + 1e-6 * fabs(s_new), "v %zu", i);
    }
    kh_free_outputs(outs, 2);
    kh_node_destroy(n);
}

/* ---- errors ----------------------------------------------------------------- */

/* Momentum with k = 1 unless n_in/n_out say otherwise; x2 shapes the second
 * state input (V) and r_len > 0 makes R a vector. */
static qkv_status run_momentum(size_t n_in, size_t n_out, const char *mode, bool all_attrs,
                               int64_t v_len, qkv_dtype v_type, int64_t r_len, qkv_error *err)
{
    static float buf[8];
    static double dbuf[8];
    static int64_t t = 0;
    kh_node *n = kh_node_create_in(DOMAIN, "Momentum", 1, n_in, n_out);
    if (all_attrs) {
        kh_attr_float(n, "norm_coefficient", 0);
        kh_attr_float(n, "alpha", 0.9f);
        kh_attr_float(n, "beta", 0.1f);
    }
    if (mode)
        kh_attr_string(n, "mode", mode);
    int64_t d2[1] = {2}, dv[1] = {v_len}, dr[1] = {r_len};
    qkv_tensor ins[8] = {r_len ? kh_f32(1, dr, buf) : kh_f32(0, NULL, buf),
                         kh_i64(0, NULL, &t),
                         kh_f32(1, d2, buf),
                         kh_f32(1, d2, buf),
                         kh_tensor(v_type, 1, dv, v_type == QKV_DTYPE_DOUBLE ? (void *)dbuf : buf),
                         kh_f32(1, d2, buf),
                         kh_f32(1, d2, buf),
                         kh_f32(1, d2, buf)},
               outs[4];
    qkv_status st = kh_run(n, ins, outs, err);
    if (st == QKV_OK)
        kh_free_outputs(outs, n_out);
    kh_node_destroy(n);
    return st;
}

Test(optimizers, momentum_runs_with_valid_arguments)
{
    qkv_error err;
    cr_assert_eq(run_momentum(5, 2, "standard", true, 2, QKV_DTYPE_FLOAT, 0, &err), QKV_OK, "%s",
                 err.message);
}

Test(optimizers, refuses_inputs_not_in_groups)
{
    qkv_error err;
    cr_assert_eq(run_momentum(6, 2, "standard", true, 2, QKV_DTYPE_FLOAT, 0, &err),
                 QKV_ERR_INVALID_MODEL);
    cr_assert(strstr(err.message, "node 'test_node' (ai.onnx.preview.training.Momentum-1): has 6 "
                                  "inputs, expected R, T "
                                  "and then 3 groups of k tensors (2 + 3*k inputs, k >= 1)"),
              "%s", err.message);
}

Test(optimizers, refuses_wrong_output_count)
{
    qkv_error err;
    cr_assert_eq(run_momentum(8, 3, "standard", true, 2, QKV_DTYPE_FLOAT, 0, &err),
                 QKV_ERR_INVALID_MODEL);
    cr_assert(strstr(err.message, "has 3 outputs, expected 4 (2 groups of the 2 tensors "
                                  "optimized)"),
              "%s", err.message);
}

Test(optimizers, refuses_unknown_mode)
{
    qkv_error err;
    cr_assert_eq(run_momentum(5, 2, "heavy_ball", true, 2, QKV_DTYPE_FLOAT, 0, &err),
                 QKV_ERR_INVALID_MODEL);
    cr_assert(strstr(err.message, "attribute 'mode' is 'heavy_ball', expected 'standard' or "
                                  "'nesterov'"),
              "%s", err.message);
}

Test(optimizers, refuses_missing_required_attributes)
{
    qkv_error err;
    cr_assert_eq(run_momentum(5, 2, "standard", false, 2, QKV_DTYPE_FLOAT, 0, &err),
                 QKV_ERR_INVALID_MODEL);
    cr_assert(strstr(err.message, "attribute 'norm_coefficient' is required"), "%s", err.message);
    cr_assert_eq(run_momentum(5, 2, NULL, true, 2, QKV_DTYPE_FLOAT, 0, &err),
                 QKV_ERR_INVALID_MODEL);
    cr_assert(strstr(err.message, "attribute 'mode' is required"), "%s", err.message);
}

Test(optimizers, refuses_state_of_another_shape_or_type)
{
    qkv_error err;
    cr_assert_eq(run_momentum(5, 2, "standard", true, 3, QKV_DTYPE_FLOAT, 0, &err), QKV_ERR_SHAPE);
    cr_assert(strstr(err.message, "input 4 'V1' has shape [3], expected [2] (the shape of input 2 "
                                  "'X1')"),
              "%s", err.message);
    cr_assert_eq(run_momentum(5, 2, "standard", true, 2, QKV_DTYPE_DOUBLE, 0, &err), QKV_ERR_TYPE);
    cr_assert(strstr(err.message, "input 4 'V1' has type float64, expected float32"), "%s",
              err.message);
}

Test(optimizers, refuses_non_scalar_rate)
{
    qkv_error err;
    cr_assert_eq(run_momentum(5, 2, "standard", true, 2, QKV_DTYPE_FLOAT, 2, &err), QKV_ERR_SHAPE);
    cr_assert(strstr(err.message, "input 0 'R' has shape [2], expected a scalar"), "%s",
              err.message);
}

/* R and T are required like the groups: one given as "" has no data for
 * compute to read, so the host refuses it before init. */
Test(optimizers, refuses_an_omitted_rate_or_count)
{
    static const char *const want[2] = {"input 0 is omitted", "input 1 is omitted"};
    for (size_t omit = 0; omit < 2; omit++) {
        static float buf[2];
        static int64_t t = 1;
        int64_t d2[1] = {2};
        kh_node *n = kh_node_create_in(DOMAIN, "Adagrad", 1, 5, 2);
        kh_omit_input(n, omit);
        qkv_tensor ins[5] = {kh_f32(0, NULL, buf), kh_i64(0, NULL, &t), kh_f32(1, d2, buf),
                             kh_f32(1, d2, buf), kh_f32(1, d2, buf)},
                   outs[2];
        qkv_error err;
        cr_assert_eq(kh_run(n, ins, outs, &err), QKV_ERR_INVALID_MODEL, "input %zu: %s", omit,
                     err.message);
        cr_assert(strstr(err.message, "test_node") && strstr(err.message, want[omit]), "%s",
                  err.message);
        kh_node_destroy(n);
    }
}
