/*
 * vecmath (ops/vecmath.h): erf, exact and tanh GELU, the fused-matmul
 * epilogue, the online-softmax row steps and the row-normalisation steps, in every
 * variant this CPU runs, against libm in double on dense
 * sweeps of float32 (every 251st bit pattern, so every exponent, and every
 * 2^-15 step of [-8, 8]), and the special values. ctest runs this binary
 * once per QKV_ISA level (baseline, avx2, avx512): the variant the
 * functions dispatch to must follow the cap.
 */
#include <criterion/criterion.h>
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "vecmath.h"

#define PI 3.14159265358979323846

enum { CHUNK = 4096 };

/* What the cap in QKV_ISA and this CPU (asked directly, not through
 * cpu_features.c) make the expected variant. */
static qkv_isa expected_isa(void)
{
#if defined(QKV_VM_HAVE_X86)
    const char *cap = getenv("QKV_ISA");
    __builtin_cpu_init();
    bool avx2 = __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
    bool avx512 = avx2 && __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") &&
                  __builtin_cpu_supports("avx512vl") && __builtin_cpu_supports("avx512dq") &&
                  __builtin_cpu_supports("avx512cd");
    if (cap && strcmp(cap, "baseline") == 0)
        return QKV_ISA_BASELINE;
    if (avx512 && !(cap && strcmp(cap, "avx2") == 0))
        return QKV_ISA_AVX512;
    return avx2 ? QKV_ISA_AVX2 : QKV_ISA_BASELINE;
#else
    return QKV_ISA_BASELINE;
#endif
}

Test(vecmath, dispatch_follows_the_cpu_and_the_isa_cap)
{
    cr_assert_eq(qkv_vm_isa(), expected_isa(), "QKV_ISA=%s: variant %s, expected %s",
                 getenv("QKV_ISA") ? getenv("QKV_ISA") : "(unset)", qkv_isa_name(qkv_vm_isa()),
                 qkv_isa_name(expected_isa()));
    cr_assert_eq(qkv_vm_isa(), qkv_cpu_isa());
    cr_assert_not_null(qkv_vm_impl_for(QKV_ISA_BASELINE));
#if defined(QKV_VM_HAVE_X86)
    cr_assert_not_null(qkv_vm_impl_for(QKV_ISA_AVX2));
    cr_assert_not_null(qkv_vm_impl_for(QKV_ISA_AVX512)); /* built, run only when allowed */
#endif
}

/* The reference values. */
static double ref_gelu(double x)
{
    return 0.5 * x * erfc(-x / sqrt(2.0)); /* no cancellation for negative x */
}

static double ref_gelu_tanh(double x)
{
    return 0.5 * x * (1 + tanh(sqrt(2 / PI) * (x + 0.044715 * x * x * x)));
}

typedef struct sweep_error {
    double worst; /* the largest error / allowed ratio seen */
    double at;
    float got;
} sweep_error;

typedef enum fn_kind { FN_ERF, FN_GELU, FN_GELU_TANH, FN_SIGMOID } fn_kind;

/* Allowed |error| of each function at x (finite x). */
static double allowed(fn_kind f, double x, double want)
{
    switch (f) {
    case FN_ERF:
        /* 2.5e-7 absolute: ~4 ulps of values near 1 (measured: 1.8e-7,
         * just above the split where erfc's relative error counts most) */
        return 2.5e-7;
    case FN_GELU:
        /* relative to the result down to x = -5.5 (measured 4.2e-6 there:
         * float32 rounds the exponent of erfc, ~16, to 1e-6); below, where
         * |result| < 1e-7 and erfc is clamped to 0, absolute 1e-7 |x| */
        return x >= -5.5 ? 5e-6 * fabs(want) + 1e-37 : 1e-7 * fabs(x);
    case FN_GELU_TANH:
        /* x / (1 + exp(u)): expf and the division round; measured 1.8e-7 */
        return 1e-6 * fabs(want) + 1e-7;
    case FN_SIGMOID:
        /* 3 ulps (expf 2, then the sum and the division round; measured
         * 2.3); below -87 the result is subnormal or flushed to 0: absolute */
        return x > -87 ? 3 * ldexp(1, ilogb(want) - 23) : 1e-38;
    }
    return 0;
}

static void check_chunk(const qkv_vm_impl *t, fn_kind f, const float *in, size_t n, sweep_error *e)
{
    static float out[CHUNK];
    switch (f) {
    case FN_ERF:
        t->erf(out, in, n);
        break;
    case FN_GELU:
        t->gelu(out, in, n);
        break;
    case FN_GELU_TANH:
        t->gelu_tanh(out, in, n);
        break;
    case FN_SIGMOID:
        t->sigmoid(out, in, n);
        break;
    }
    for (size_t j = 0; j < n; j++) {
        double x = in[j];
        if (!isfinite(x) || (f == FN_GELU_TANH && fabs(x) > 1e4))
            continue; /* special values: their own tests */
        double want = f == FN_ERF         ? erf(x)
                      : f == FN_GELU      ? ref_gelu(x)
                      : f == FN_GELU_TANH ? ref_gelu_tanh(x)
                                          : 1 / (1 + exp(-x));
        double r = fabs(out[j] - want) / allowed(f, x, want);
        if (r > e->worst) {
            e->worst = r;
            e->at = x;
            e->got = out[j];
        }
    }
}

/* Runs f of variant t over the sweep; returns the worst error / allowed. */
static sweep_error sweep(const qkv_vm_impl *t, fn_kind f)
{
    static float in[CHUNK];
    sweep_error e = {0, 0, 0};
    size_t k = 0;
    for (uint64_t u = 0; u < ((uint64_t)1 << 32); u += 251) {
        uint32_t b = (uint32_t)u;
        memcpy(&in[k++], &b, sizeof b);
        if (k == CHUNK) {
            check_chunk(t, f, in, k, &e);
            k = 0;
        }
    }
    for (int32_t i = -(8 << 15); i <= (8 << 15); i++) {
        in[k++] = (float)i * 0x1p-15f;
        if (k == CHUNK) {
            check_chunk(t, f, in, k, &e);
            k = 0;
        }
    }
    check_chunk(t, f, in, k, &e);
    return e;
}

static void sweep_every_variant(fn_kind f, const char *name)
{
    for (int isa = QKV_ISA_BASELINE; isa <= (int)qkv_cpu_isa(); isa++) {
        const qkv_vm_impl *t = qkv_vm_impl_for((qkv_isa)isa);
        if (!t)
            continue;
        sweep_error e = sweep(t, f);
        cr_assert(e.worst <= 1.0, "%s (%s): at x=%.9g got %.9g, error %.3g x the allowed", name,
                  qkv_isa_name((qkv_isa)isa), e.at, e.got, e.worst);
    }
}

Test(vecmath, erf_within_2p5e_7_on_a_dense_sweep, .timeout = 300)
{
    sweep_every_variant(FN_ERF, "erf");
}

Test(vecmath, gelu_relative_accuracy_on_a_dense_sweep, .timeout = 300)
{
    sweep_every_variant(FN_GELU, "gelu");
}

Test(vecmath, gelu_tanh_on_a_dense_sweep, .timeout = 300)
{
    sweep_every_variant(FN_GELU_TANH, "gelu_tanh");
}

Test(vecmath, sigmoid_within_3_ulps_on_a_dense_sweep, .timeout = 300)
{
    sweep_every_variant(FN_SIGMOID, "sigmoid");
}

static bool same_bits(float a, float b)
{
    uint32_t x, y;
    memcpy(&x, &a, sizeof x);
    memcpy(&y, &b, sizeof y);
    return x == y;
}

Test(vecmath, special_values_and_in_place_tails)
{
    const float inf = INFINITY;
    const float in[] = {0.0f,    -0.0f, inf,   -inf,  NAN,    -NAN,      1e-40f,     -1e-40f,
                        3.9375f, 4.0f,  -7.5f, 1e30f, -1e30f, 0.921875f, -0.921875f, 0.5f};
    enum { N = sizeof in / sizeof in[0] };
    for (int isa = QKV_ISA_BASELINE; isa <= (int)qkv_cpu_isa(); isa++) {
        const qkv_vm_impl *t = qkv_vm_impl_for((qkv_isa)isa);
        const char *name = qkv_isa_name((qkv_isa)isa);
        float e[N], g[N], h[N];
        t->erf(e, in, N);
        t->gelu(g, in, N);
        t->gelu_tanh(h, in, N);
        cr_assert(same_bits(e[0], 0.0f) && same_bits(e[1], -0.0f), "%s: erf(+-0)", name);
        cr_assert(e[2] == 1.0f && e[3] == -1.0f, "%s: erf(+-inf) = %g, %g", name, e[2], e[3]);
        cr_assert(isnan(e[4]) && isnan(e[5]), "%s: erf(NaN)", name);
        /* erf(x) = 2x/sqrt(pi) for subnormal x */
        cr_assert(fabs(e[6] - 1.1283791670955126 * in[6]) <= 3e-45 && e[7] == -e[6],
                  "%s: erf(1e-40) = %g", name, e[6]);
        cr_assert(e[8] == 1.0f && e[9] == 1.0f && e[10] == -1.0f && e[11] == 1.0f && e[12] == -1.0f,
                  "%s: erf rounds to +-1 beyond the clamp", name);
        cr_assert(e[13] == -e[14], "%s: erf is odd at the split", name);
        cr_assert(g[0] == 0.0f && g[2] == inf && isnan(g[4]) && isnan(g[5]), "%s: gelu specials",
                  name);
        cr_assert(g[10] == 0.0f && g[11] == 1e30f && g[12] == 0.0f, "%s: gelu far tails", name);
        cr_assert(h[0] == 0.0f && h[2] == inf && isnan(h[4]) && h[11] == 1e30f,
                  "%s: gelu_tanh specials", name);
        /* every length up to three vectors, in place (out == in) */
        for (size_t n = 0; n <= 48; n++) {
            float buf[48], want[48];
            for (size_t j = 0; j < n; j++)
                buf[j] = (float)j * 0.37f - 6.0f;
            t->erf(want, buf, n);
            t->erf(buf, buf, n);
            for (size_t j = 0; j < n; j++)
                cr_assert(same_bits(buf[j], want[j]), "%s: in-place erf, n=%zu j=%zu", name, n, j);
        }
    }
}

/* act(y + bias) + res in double, for the epilogue's reference. */
static double ref_epilogue(double y, const float *bias, const float *res, size_t j, qkv_act a)
{
    double v = y + (bias ? bias[j] : 0.0);
    switch (a) {
    case QKV_ACT_RELU:
        v = v < 0 ? 0 : v;
        break;
    case QKV_ACT_GELU:
        v = ref_gelu(v);
        break;
    case QKV_ACT_GELU_TANH:
        v = ref_gelu_tanh(v);
        break;
    case QKV_ACT_NONE:
        break;
    }
    return v + (res ? res[j] : 0.0);
}

Test(vecmath, epilogue_every_activation_term_and_tail)
{
    enum { N = 53 }; /* 3 AVX-512 vectors + a tail, 6 AVX2 vectors + a tail */
    float y0[N], bias[N], res[N];
    for (size_t j = 0; j < N; j++) {
        y0[j] = sinf((float)j * 1.7f) * 3.0f;
        bias[j] = cosf((float)j * 0.3f);
        res[j] = (float)j * 0.01f - 0.2f;
    }
    y0[5] = NAN;
    for (int isa = QKV_ISA_BASELINE; isa <= (int)qkv_cpu_isa(); isa++) {
        const qkv_vm_impl *t = qkv_vm_impl_for((qkv_isa)isa);
        for (int a = QKV_ACT_NONE; a <= QKV_ACT_GELU_TANH; a++)
            for (int terms = 0; terms < 5; terms++) {
                /* terms 4: residual is y itself (in place) */
                const float *b = terms & 1 ? bias : NULL;
                bool self = terms == 4;
                const float *r = self ? NULL : terms & 2 ? res : NULL;
                for (size_t n = 0; n <= N; n += (n < 20 ? 1 : 11)) {
                    float y[N];
                    memcpy(y, y0, sizeof y);
                    t->epilogue(y, b, self ? y : r, n, (qkv_act)a);
                    for (size_t j = 0; j < n; j++) {
                        double want = ref_epilogue(y0[j], b, self ? y0 : r, j, (qkv_act)a);
                        if (isnan(want)) {
                            cr_assert(isnan(y[j]), "%s act %d: NaN kept", qkv_isa_name(isa), a);
                            continue;
                        }
                        /* one rounding per term plus the activation's error */
                        cr_assert(fabs(y[j] - want) <= 1e-6 * (1 + fabs(want)),
                                  "%s act %d terms %d n %zu j %zu: got %.9g, expected %.9g",
                                  qkv_isa_name(isa), a, terms, n, j, y[j], want);
                    }
                    for (size_t j = n; j < N; j++)
                        cr_assert(same_bits(y[j], y0[j]), "%s: wrote past n", qkv_isa_name(isa));
                }
            }
    }
}

/* The online-softmax row steps on rows of every length up to 70 (full
 * vectors and tails of every width), -inf cells (excluded scores) among
 * them, in every variant; references in double. */
Test(vecmath, softmax_row_steps_every_length_and_tail)
{
    enum { N = 70 };
    float x0[N];
    for (size_t j = 0; j < N; j++)
        x0[j] = (float)((int)(j * 37 % 23) - 11) * 0.75f; /* in [-8.25, 8.25] */
    x0[3] = x0[40] = -INFINITY;
    x0[17] = -200.0f; /* exp(x - max) < exp(-87): exactly 0 */
    for (int isa = QKV_ISA_BASELINE; isa <= (int)qkv_cpu_isa(); isa++) {
        const qkv_vm_impl *t = qkv_vm_impl_for((qkv_isa)isa);
        const char *name = qkv_isa_name((qkv_isa)isa);
        cr_assert(t->max(x0, 0) == -INFINITY, "%s: max of nothing", name);
        for (size_t n = 1; n <= N; n++) {
            float want_max = -INFINITY;
            for (size_t j = 0; j < n; j++)
                want_max = x0[j] > want_max ? x0[j] : want_max;
            float m = t->max(x0, n);
            cr_assert(same_bits(m, want_max), "%s n %zu: max %g, expected %g", name, n, m,
                      want_max);
            if (m == -INFINITY)
                continue;
            float x[N + 1];
            memcpy(x, x0, sizeof x0);
            x[n] = 1234.0f; /* must stay */
            float sum = t->exp_shifted(x, n, m);
            double want_sum = 0;
            for (size_t j = 0; j < n; j++) {
                double d = (double)x0[j] - (double)m;
                double want = d < -87 ? 0 : exp(d);
                want_sum += want;
                /* Cephes' exp: 2 ulps, plus the rounding of x - m */
                cr_assert(fabs(x[j] - want) <= 4e-7 * want,
                          "%s n %zu j %zu: exp(%g) = %.9g, "
                          "expected %.9g",
                          name, n, j, d, x[j], want);
                if (want == 0)
                    cr_assert(same_bits(x[j], 0.0f), "%s: excluded cell %zu is not 0", name, j);
            }
            cr_assert(x[n] == 1234.0f, "%s n %zu: wrote past n", name, n);
            /* float sums of at most 70 terms in [0, 1] */
            cr_assert(fabs(sum - want_sum) <= 1e-5 * want_sum,
                      "%s n %zu: sum %.9g, expected "
                      "%.9g",
                      name, n, sum, want_sum);
            float y[N + 1];
            y[n] = 1234.0f;
            t->scale(y, x0, n, 0.5f);
            for (size_t j = 0; j < n; j++)
                cr_assert(same_bits(y[j], x0[j] * 0.5f), "%s: scale", name);
            cr_assert(y[n] == 1234.0f, "%s: scale wrote past n", name);
            float before[N];
            memcpy(before, x, n * sizeof *x);
            t->scale(x, x, n, 2.0f); /* in place */
            for (size_t j = 0; j < n; j++)
                cr_assert(same_bits(x[j], before[j] * 2.0f), "%s: scale in place", name);
        }
    }
}

/* The tile form of the row steps (online_softmax): rows of a tile with
 * every visible count from 0 to w, and row states that the tile's max
 * raises (alpha < 1), leaves (alpha 1), starts (m -inf) or keeps at -inf
 * (nothing visible yet), in every variant, against double. */
Test(vecmath, online_softmax_tile_matches_the_row_steps_in_double)
{
    enum { W_MAX = 70, ROWS = W_MAX + 1, DV = 19 };
    static const size_t widths[] = {1, 7, 8, 9, 16, 17, 33, 64, W_MAX};
    static float s0[ROWS * W_MAX], s[ROWS * W_MAX], o[ROWS * DV], m0[ROWS], l0[ROWS];
    static float m[ROWS], l[ROWS];
    static size_t n_in[ROWS];
    for (int isa = QKV_ISA_BASELINE; isa <= (int)qkv_cpu_isa(); isa++) {
        const qkv_vm_impl *t = qkv_vm_impl_for((qkv_isa)isa);
        const char *name = qkv_isa_name((qkv_isa)isa);
        for (size_t wi = 0; wi < sizeof widths / sizeof widths[0]; wi++) {
            size_t w = widths[wi], rows = w + 1;
            for (size_t x = 0; x < rows; x++) {
                n_in[x] = x; /* 0 .. w visible */
                for (size_t j = 0; j < w; j++)
                    s0[x * w + j] = (float)((int)((x * 31 + j * 37) % 23) - 11) * 0.75f;
                if (w > 3)
                    s0[x * w + 2] = -INFINITY; /* an excluded score among the visible */
                /* the state before the tile: by row, a smaller max (alpha < 1),
                 * a larger one (alpha 1), or none yet */
                switch (x % 3) {
                case 0:
                    m0[x] = -2.0f, l0[x] = 1.5f;
                    break;
                case 1:
                    m0[x] = 20.0f, l0[x] = 0.25f;
                    break;
                default:
                    m0[x] = -INFINITY, l0[x] = 0.0f;
                    break;
                }
            }
            memcpy(s, s0, rows * w * sizeof *s);
            memcpy(m, m0, sizeof m);
            memcpy(l, l0, sizeof l);
            for (size_t e = 0; e < rows * DV; e++)
                o[e] = m0[e / DV] == -INFINITY ? 0.0f : (float)(e % 13) - 6.0f;
            t->online_softmax(s, rows, w, n_in, m, l, o, DV);
            for (size_t x = 0; x < rows; x++) {
                double mx = -INFINITY;
                for (size_t j = 0; j < n_in[x]; j++)
                    mx = s0[x * w + j] > mx ? s0[x * w + j] : mx;
                double m_new = mx > m0[x] ? mx : m0[x];
                if (m_new == -INFINITY) {
                    cr_assert(m[x] == -INFINITY && l[x] == 0.0f, "%s w %zu row %zu: state", name, w,
                              x);
                    for (size_t j = 0; j < w; j++)
                        cr_assert(same_bits(s[x * w + j], 0.0f), "%s w %zu row %zu: P", name, w, x);
                    continue;
                }
                double sum = 0;
                for (size_t j = 0; j < w; j++) {
                    double d = s0[x * w + j] - m_new;
                    double want = j < n_in[x] && d >= -87 ? exp(d) : 0.0;
                    sum += want;
                    /* Cephes' exp: 2 ulps, plus the rounding of s - m */
                    cr_assert(fabs(s[x * w + j] - want) <= 4e-7 * want + 1e-30,
                              "%s w %zu row %zu j %zu: P %.9g, expected %.9g", name, w, x, j,
                              s[x * w + j], want);
                }
                double alpha = m0[x] == -INFINITY ? 0.0 : exp(m0[x] - m_new);
                double want_l = l0[x] * alpha + sum;
                cr_assert(m[x] == (float)m_new, "%s w %zu row %zu: m %g, expected %g", name, w, x,
                          m[x], m_new);
                /* float sums of at most 70 terms in [0, 1], and one product */
                cr_assert(fabs(l[x] - want_l) <= 1e-5 * want_l,
                          "%s w %zu row %zu: l %.9g, expected %.9g", name, w, x, l[x], want_l);
                for (size_t c = 0; c < DV; c++) {
                    size_t e = x * DV + c;
                    double before = m0[x] == -INFINITY ? 0.0 : (double)((int)(e % 13) - 6);
                    double want = before * alpha;
                    /* alpha's exp (2 ulps) and the product's rounding */
                    cr_assert(fabs(o[e] - want) <= 1e-6 * fabs(want),
                              "%s w %zu row %zu col %zu: O %.9g, expected %.9g", name, w, x, c,
                              o[e], want);
                }
            }
        }
    }
}

Test(vecmath, row_moments_and_normalize_every_length_and_tail)
{
    enum { N = 1100 };
    static float x[N + 1], w[N], b[N], y[N + 1];
    uint32_t r = 12345;
    for (size_t j = 0; j < N; j++) {
        r = r * 1664525u + 1013904223u;
        /* mean 10, std ~0.6: the offset makes the E[x^2] - E[x]^2 form lose digits */
        x[j] = 10.0f + (float)((double)(r >> 8) / (1 << 24) * 2.0 - 1.0);
        w[j] = 0.5f + (float)(j % 7) * 0.25f;
        b[j] = (float)(j % 5) - 2.0f;
    }
    static const size_t lengths[] = {0, 1, 2, 15, 16, 17, 255, 256, 257, 768, 1000, N};
    for (int isa = QKV_ISA_BASELINE; isa <= (int)qkv_cpu_isa(); isa++) {
        const qkv_vm_impl *t = qkv_vm_impl_for((qkv_isa)isa);
        const char *name = qkv_isa_name((qkv_isa)isa);
        for (size_t li = 0; li < sizeof lengths / sizeof lengths[0]; li++) {
            size_t n = lengths[li];
            long double s = 0, q = 0;
            for (size_t j = 0; j < n; j++)
                s += x[j];
            long double m = n ? s / n : 0;
            for (size_t j = 0; j < n; j++)
                q += (x[j] - m) * (x[j] - m);
            long double v = n ? q / n : 0;
            double mean = -1, var = -1;
            t->moments(x, n, &mean, &var);
            cr_assert(fabsl(mean - m) <= 1e-7L * 10, "%s n %zu: mean %.12g, expected %.12Lg", name,
                      n, mean, m);
            cr_assert(fabsl(var - v) <= 1e-6L * (v + 1e-30L),
                      "%s n %zu: var %.12g, expected "
                      "%.12Lg",
                      name, n, var, v);
            float fm = (float)mean, inv = n ? (float)(1.0 / sqrt(var + 1e-5)) : 1.0f;
            for (int with_b = 0; with_b < 2; with_b++) {
                y[n] = 1234.0f;
                t->normalize(y, x, n, fm, inv, w, with_b ? b : NULL);
                for (size_t j = 0; j < n; j++) {
                    double want = ((double)x[j] - fm) * inv * w[j] + (with_b ? b[j] : 0);
                    cr_assert(fabs(y[j] - want) <= 1e-6 * (fabs(want) + 1),
                              "%s n %zu j %zu: "
                              "%.9g, expected %.9g",
                              name, n, j, y[j], want);
                }
                cr_assert(y[n] == 1234.0f, "%s n %zu: normalize wrote past n", name, n);
            }
            /* in place */
            float z[N];
            memcpy(z, x, n * sizeof *z);
            t->normalize(z, z, n, fm, inv, w, b);
            for (size_t j = 0; j < n; j++)
                cr_assert(fabs(z[j] - (((double)x[j] - fm) * inv * w[j] + b[j])) <=
                              1e-6 * (fabs(z[j]) + 1),
                          "%s n %zu: normalize in place", name, n);
        }
    }
}

Test(vecmath, normalize_scalar_every_length_tail_and_in_place)
{
    enum { N = 300 };
    static float x[N + 1], y[N + 1], z[N];
    uint32_t r = 777;
    for (size_t j = 0; j < N; j++) {
        r = r * 1664525u + 1013904223u;
        x[j] = 3.0f + (float)((double)(r >> 8) / (1 << 24) * 4.0 - 2.0);
    }
    const float mean = 3.25f, a = -1.75f, b = 0.5f;
    static const size_t lengths[] = {0, 1, 7, 8, 9, 15, 16, 17, 31, 33, 255, 256, N};
    for (int isa = QKV_ISA_BASELINE; isa <= (int)qkv_cpu_isa(); isa++) {
        const qkv_vm_impl *t = qkv_vm_impl_for((qkv_isa)isa);
        const char *name = qkv_isa_name((qkv_isa)isa);
        for (size_t li = 0; li < sizeof lengths / sizeof lengths[0]; li++) {
            size_t n = lengths[li];
            y[n] = 1234.0f;
            t->normalize_scalar(y, x, n, mean, a, b);
            memcpy(z, x, n * sizeof *z);
            t->normalize_scalar(z, z, n, mean, a, b);
            for (size_t j = 0; j < n; j++) {
                /* float subtraction, then one multiply-add: a few ulp of |want| + |b| */
                double want = ((double)x[j] - mean) * a + b;
                cr_assert(fabs(y[j] - want) <= 1e-6 * (fabs(want) + 1),
                          "%s n %zu j %zu: %.9g, expected %.9g", name, n, j, y[j], want);
                cr_assert(z[j] == y[j], "%s n %zu j %zu: in place differs", name, n, j);
            }
            cr_assert(y[n] == 1234.0f, "%s n %zu: normalize_scalar wrote past n", name, n);
        }
    }
    /* the dispatched entry point runs the chosen variant */
    float one = 4.0f;
    qkv_vm_normalize_scalar_f32(&one, &one, 1, 3.0f, 2.0f, 1.0f);
    cr_assert(one == 3.0f, "dispatched normalize_scalar gave %g", one);
}

Test(vecmath, moments_add_merges_runs_like_one_pass)
{
    /* a group cut into runs of uneven lengths: the merged moments must be
     * those of the whole (long double reference), including a mean offset
     * of 100 against a spread of ~0.3 that the E[x^2] - E[x]^2 form loses */
    enum { N = 2000 };
    static float x[N];
    uint32_t r = 99;
    for (size_t j = 0; j < N; j++) {
        r = r * 1664525u + 1013904223u;
        x[j] = 100.0f + (float)((double)(r >> 8) / (1 << 24) - 0.5) + (j < N / 2 ? 0.25f : 0.0f);
    }
    long double s = 0, q = 0;
    for (size_t j = 0; j < N; j++)
        s += x[j];
    long double m = s / N;
    for (size_t j = 0; j < N; j++)
        q += (x[j] - m) * (x[j] - m);
    static const size_t cuts[] = {0, 1, 7, 300, 301, 1000, 1555, N};
    qkv_vm_moments acc = {0};
    for (size_t c = 0; c + 1 < sizeof cuts / sizeof cuts[0]; c++)
        qkv_vm_moments_add_f32(&acc, x + cuts[c], cuts[c + 1] - cuts[c]);
    cr_assert(acc.count == N, "count %g", acc.count);
    cr_assert(fabsl(acc.mean - m) <= 1e-7L * 100, "mean %.12g, expected %.12Lg", acc.mean, m);
    /* each run's mean carries its float block sums' error (~1e-8 of 100);
     * merging turns that into ~2 |mean difference| of it in the variance,
     * ~1e-6 of it here: 1e-5 is far below what a wrong merge term gives
     * (dropping the means' term loses ~15% of it) */
    cr_assert(fabsl(acc.m2 / N - q / N) <= 1e-5L * (q / N), "var %.12g, expected %.12Lg",
              acc.m2 / N, q / N);
}
