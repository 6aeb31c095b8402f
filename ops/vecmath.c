/*
 * vecmath.c - the portable variant of vecmath.h and the choice of variant.
 *
 * The portable functions are the SIMD ones (vecmath_simd.h) in scalar C:
 * the same method and constants, every branch computed and selected with
 * qkv_ew_select, so GCC vectorises the loops for the baseline ISA (SSE2)
 * at -O2. Without FMA the polynomials round a little more; the accuracy
 * stated in vecmath.h holds for this variant too.
 */
#include "vecmath.h"

#include <math.h>
#include <stdatomic.h>
#include <string.h>

#include "elementwise.h"
#include "vecmath_coef.h"

static inline float vm_abs1(float x) { return qkv_f32_from_bits(qkv_f32_bits(x) & 0x7fffffffu); }

static inline float vm_erf_small1(float x)
{
    float s = x * x;
    float p = QKV_VM_ERF_P5;
    p = p * s + QKV_VM_ERF_P4;
    p = p * s + QKV_VM_ERF_P3;
    p = p * s + QKV_VM_ERF_P2;
    p = p * s + QKV_VM_ERF_P1;
    p = p * s + QKV_VM_ERF_P0;
    return x * p + x;
}

/* erfc(min(t, CLAMP)) for t > SPLIT (NaN gives erfc(CLAMP)). */
static inline float vm_erfc_large1(float t)
{
    float tc = qkv_ew_select(t < QKV_VM_ERF_CLAMP, t, QKV_VM_ERF_CLAMP);
    float q = QKV_VM_ERF_Q6;
    q = q * tc + QKV_VM_ERF_Q5;
    q = q * tc + QKV_VM_ERF_Q4;
    q = q * tc + QKV_VM_ERF_Q3;
    q = q * tc + QKV_VM_ERF_Q2;
    q = q * tc + QKV_VM_ERF_Q1;
    q = q * tc + QKV_VM_ERF_Q0;
    return qkv_ew_expf(-tc - tc * q);
}

static inline float vm_erf1(float x)
{
    float t = vm_abs1(x);
    float large = 1.0f - vm_erfc_large1(t);
    large = qkv_f32_from_bits(qkv_f32_bits(large) | (qkv_f32_bits(x) & 0x80000000u));
    return qkv_ew_select(t > QKV_VM_ERF_SPLIT, large, vm_erf_small1(x));
}

/* 1 + erf(v) without cancellation (see vm_one_plus_erf in vecmath_simd.h). */
static inline float vm_one_plus_erf1(float v)
{
    float t = vm_abs1(v);
    float e = vm_erfc_large1(t);
    e = qkv_ew_select(t > QKV_VM_ERF_CLAMP, 0.0f, e);
    float large = qkv_ew_select(v > 0.0f, 2.0f - e, e);
    return qkv_ew_select(t > QKV_VM_ERF_SPLIT, large, 1.0f + vm_erf_small1(v));
}

static inline float vm_gelu1(float x) { return 0.5f * x * vm_one_plus_erf1(x * QKV_VM_SQRT1_2); }

static inline float vm_gelu_tanh1(float x)
{
    float u = x * (x * x * QKV_VM_GELU_G1 + QKV_VM_GELU_G0);
    u = qkv_ew_select(u < 88.3f, u, 88.3f); /* e^u stays finite: x / big, not x / inf */
    return x / (1.0f + qkv_ew_expf(u));
}

/* 1 / (1 + e^-x): e^-x = inf gives 0, so nothing overflows into inf/inf */
static inline float vm_sigmoid1(float x) { return 1.0f / (1.0f + qkv_ew_expf(-x)); }

static inline float vm_act1(float v, qkv_act act)
{
    switch (act) {
    case QKV_ACT_RELU:
        return qkv_ew_select(v < 0.0f, 0.0f, v); /* NaN stays */
    case QKV_ACT_GELU:
        return vm_gelu1(v);
    case QKV_ACT_GELU_TANH:
        return vm_gelu_tanh1(v);
    case QKV_ACT_NONE:
        break;
    }
    return v;
}

/*
 * out[j] = F(in[j]). The loops must vectorise at -O2, whose cost model does
 * not version a loop for a run-time overlap check: so restrict pointers,
 * and out == in (allowed) goes to a loop over one pointer.
 */
#define VM_PORTABLE_MAP(name, F)                                                                   \
    static void name##_copy(float *restrict out, const float *restrict in, size_t n)               \
    {                                                                                              \
        QKV_EW_FOR(j, n, out[j] = F(in[j]););                                                      \
    }                                                                                              \
    static void name##_inplace(float *restrict y, size_t n) { QKV_EW_FOR(j, n, y[j] = F(y[j]);); } \
    static void name(float *out, const float *in, size_t n)                                        \
    {                                                                                              \
        if (out == in)                                                                             \
            name##_inplace(out, n);                                                                \
        else                                                                                       \
            name##_copy(out, in, n);                                                               \
    }

VM_PORTABLE_MAP(erf_portable, vm_erf1)
VM_PORTABLE_MAP(gelu_portable, vm_gelu1)
VM_PORTABLE_MAP(gelu_tanh_portable, vm_gelu_tanh1)
VM_PORTABLE_MAP(sigmoid_portable, vm_sigmoid1)

/* Inlined into each case of epilogue_portable, so `act` is a constant and
 * each loop vectorises. */
#if defined(__GNUC__)
#define VM_ALWAYS_INLINE __attribute__((always_inline))
#else
#define VM_ALWAYS_INLINE
#endif

/* res_is_y: the residual is y itself (res is then ignored). */
VM_ALWAYS_INLINE static inline void epilogue_k(float *restrict y, const float *restrict bias,
                                               const float *restrict res, bool res_is_y, size_t n,
                                               qkv_act act)
{
    if (res_is_y && bias)
        QKV_EW_FOR(j, n, y[j] = vm_act1(y[j] + bias[j], act) + y[j];);
    else if (res_is_y)
        QKV_EW_FOR(j, n, y[j] = vm_act1(y[j], act) + y[j];);
    else if (bias && res)
        QKV_EW_FOR(j, n, y[j] = vm_act1(y[j] + bias[j], act) + res[j];);
    else if (bias)
        QKV_EW_FOR(j, n, y[j] = vm_act1(y[j] + bias[j], act););
    else if (res)
        QKV_EW_FOR(j, n, y[j] = vm_act1(y[j], act) + res[j];);
    else
        QKV_EW_FOR(j, n, y[j] = vm_act1(y[j], act););
}

static void epilogue_portable(float *y, const float *bias, const float *res, size_t n, qkv_act act)
{
    bool self = res == y;
    if (self)
        res = NULL;
    switch (act) {
    case QKV_ACT_RELU:
        epilogue_k(y, bias, res, self, n, QKV_ACT_RELU);
        return;
    case QKV_ACT_GELU:
        epilogue_k(y, bias, res, self, n, QKV_ACT_GELU);
        return;
    case QKV_ACT_GELU_TANH:
        epilogue_k(y, bias, res, self, n, QKV_ACT_GELU_TANH);
        return;
    case QKV_ACT_NONE:
        break;
    }
    epilogue_k(y, bias, res, self, n, QKV_ACT_NONE);
}

/* ---- online-softmax row steps: four partial results, so the loops pipeline
 * (a float reduction does not vectorise without reassociation) ---- */

static float max_portable(const float *x, size_t n)
{
    float m[4] = {-INFINITY, -INFINITY, -INFINITY, -INFINITY};
    size_t j = 0;
    for (; j + 4 <= n; j += 4)
        for (int k = 0; k < 4; k++)
            m[k] = x[j + k] > m[k] ? x[j + k] : m[k];
    for (; j < n; j++)
        m[0] = x[j] > m[0] ? x[j] : m[0];
    float a = m[0] > m[1] ? m[0] : m[1], b = m[2] > m[3] ? m[2] : m[3];
    return a > b ? a : b;
}

static float exp_shifted_portable(float *x, size_t n, float m)
{
    QKV_EW_FOR(j, n, {
        float d = x[j] - m;
        x[j] = qkv_ew_select(d < -87.0f, 0.0f, qkv_ew_expf(d));
    });
    float s[4] = {0, 0, 0, 0};
    size_t j = 0;
    for (; j + 4 <= n; j += 4)
        for (int k = 0; k < 4; k++)
            s[k] += x[j + k];
    for (; j < n; j++)
        s[0] += x[j];
    return (s[0] + s[1]) + (s[2] + s[3]);
}

static void scale_portable(float *out, const float *in, size_t n, float f)
{
    if (out == in)
        QKV_EW_FOR(j, n, out[j] *= f;);
    else
        QKV_EW_FOR(j, n, out[j] = in[j] * f;);
}

/* Lane sums the compiler can vectorise (a single running sum cannot be
 * reordered without -ffast-math), in double. */
#define PORTABLE_LANES 8

static void moments_portable(const float *x, size_t n, double *mean, double *var)
{
    double s[PORTABLE_LANES] = {0};
    size_t j = 0;
    for (; j + PORTABLE_LANES <= n; j += PORTABLE_LANES)
        for (int k = 0; k < PORTABLE_LANES; k++)
            s[k] += x[j + k];
    for (; j < n; j++)
        s[0] += x[j];
    double sum = 0;
    for (int k = 0; k < PORTABLE_LANES; k++)
        sum += s[k];
    const double m = n ? sum / (double)n : 0.0;
    double q[PORTABLE_LANES] = {0};
    for (j = 0; j + PORTABLE_LANES <= n; j += PORTABLE_LANES)
        for (int k = 0; k < PORTABLE_LANES; k++) {
            double d = (double)x[j + k] - m;
            q[k] += d * d;
        }
    for (; j < n; j++) {
        double d = (double)x[j] - m;
        q[0] += d * d;
    }
    double ss = 0;
    for (int k = 0; k < PORTABLE_LANES; k++)
        ss += q[k];
    *mean = m;
    *var = n ? ss / (double)n : 0.0;
}

static void normalize_portable(float *y, const float *x, size_t n, float mean, float inv,
                               const float *w, const float *b)
{
    if (b)
        QKV_EW_FOR(j, n, y[j] = (x[j] - mean) * inv * w[j] + b[j];);
    else
        QKV_EW_FOR(j, n, y[j] = (x[j] - mean) * inv * w[j];);
}

static void normalize_scalar_portable(float *y, const float *x, size_t n, float mean, float a,
                                      float b)
{
    QKV_EW_FOR(j, n, y[j] = (x[j] - mean) * a + b;);
}

static void online_softmax_portable(float *s, size_t rows, size_t w, const size_t *n_in, float *m,
                                    float *l, float *o, size_t dv)
{
    for (size_t x = 0; x < rows; x++) {
        float *sr = s + x * w;
        size_t n = n_in[x] < w ? n_in[x] : w;
        float row_max = max_portable(sr, n), m_old = m[x];
        float m_new = row_max > m_old ? row_max : m_old;
        if (m_new == -INFINITY) { /* nothing visible yet: P = 0, the row unchanged */
            memset(sr, 0, w * sizeof *sr);
            continue;
        }
        float sum = exp_shifted_portable(sr, n, m_new);
        if (n < w)
            memset(sr + n, 0, (w - n) * sizeof *sr);
        float alpha = 1.0f;
        if (m_old != m_new)
            alpha = m_old == -INFINITY ? 0.0f : qkv_ew_expf(m_old - m_new);
        l[x] = l[x] * alpha + sum;
        m[x] = m_new;
        if (alpha != 1.0f)
            scale_portable(o + x * dv, o + x * dv, dv, alpha);
    }
}

static const qkv_vm_impl vm_portable = {
    erf_portable,       gelu_portable,
    gelu_tanh_portable, epilogue_portable,
    max_portable,       exp_shifted_portable,
    scale_portable,     moments_portable,
    normalize_portable, normalize_scalar_portable,
    sigmoid_portable,   online_softmax_portable,
};

/* ---- the choice ------------------------------------------------------------------ */

const qkv_vm_impl *qkv_vm_impl_for(qkv_isa isa)
{
    switch (isa) {
#if defined(QKV_VM_HAVE_X86)
    case QKV_ISA_AVX512:
        return &qkv_vm_impl_avx512;
    case QKV_ISA_AVX2:
        return &qkv_vm_impl_avx2;
#else
    case QKV_ISA_AVX512:
    case QKV_ISA_AVX2:
        return NULL;
#endif
    case QKV_ISA_BASELINE:
        break;
    }
    return &vm_portable;
}

/* The level qkv_cpu_isa() allows that this build has a variant for. */
static qkv_isa vm_level(void)
{
    qkv_isa isa = qkv_cpu_isa();
    while (isa > QKV_ISA_BASELINE && !qkv_vm_impl_for(isa))
        isa = (qkv_isa)(isa - 1);
    return isa;
}

/* Chosen once; a race only makes two threads store the same pointer. */
static _Atomic(const qkv_vm_impl *) vm_chosen;

static const qkv_vm_impl *vm(void)
{
    const qkv_vm_impl *t = atomic_load_explicit(&vm_chosen, memory_order_acquire);
    if (!t) {
        t = qkv_vm_impl_for(vm_level());
        atomic_store_explicit(&vm_chosen, t, memory_order_release);
    }
    return t;
}

qkv_isa qkv_vm_isa(void) { return vm_level(); }

void qkv_vm_erf_f32(float *out, const float *in, size_t n) { vm()->erf(out, in, n); }

void qkv_vm_gelu_f32(float *out, const float *in, size_t n) { vm()->gelu(out, in, n); }

void qkv_vm_gelu_tanh_f32(float *out, const float *in, size_t n) { vm()->gelu_tanh(out, in, n); }

void qkv_vm_sigmoid_f32(float *out, const float *in, size_t n) { vm()->sigmoid(out, in, n); }

void qkv_vm_epilogue_f32(float *y, const float *bias, const float *res, size_t n, qkv_act act)
{
    vm()->epilogue(y, bias, res, n, act);
}

float qkv_vm_max_f32(const float *x, size_t n) { return vm()->max(x, n); }

float qkv_vm_exp_shifted_f32(float *x, size_t n, float m) { return vm()->exp_shifted(x, n, m); }

void qkv_vm_scale_f32(float *out, const float *in, size_t n, float f)
{
    vm()->scale(out, in, n, f);
}

void qkv_vm_online_softmax_f32(float *s, size_t rows, size_t w, const size_t *n_in, float *m,
                               float *l, float *o, size_t dv)
{
    vm()->online_softmax(s, rows, w, n_in, m, l, o, dv);
}

void qkv_vm_moments_f32(const float *x, size_t n, double *mean, double *var)
{
    vm()->moments(x, n, mean, var);
}

void qkv_vm_normalize_f32(float *y, const float *x, size_t n, float mean, float inv, const float *w,
                          const float *b)
{
    vm()->normalize(y, x, n, mean, inv, w, b);
}

void qkv_vm_moments_add_f32(qkv_vm_moments *acc, const float *x, size_t n)
{
    if (n == 0)
        return;
    double mean, var, nb = (double)n;
    qkv_vm_moments_f32(x, n, &mean, &var);
    const double total = acc->count + nb, delta = mean - acc->mean;
    acc->mean += delta * nb / total;
    acc->m2 += var * nb + delta * delta * acc->count * nb / total;
    acc->count = total;
}

void qkv_vm_normalize_scalar_f32(float *y, const float *x, size_t n, float mean, float a, float b)
{
    vm()->normalize_scalar(y, x, n, mean, a, b);
}
