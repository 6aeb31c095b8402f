/*
 * vecmath_simd.h - the SIMD variants of vecmath.h, written once over a few
 * macros and included by vecmath_avx2.c and vecmath_avx512.c, which define
 * them (vector type and width, target attribute, arithmetic, compare and
 * blend) before including this file. Not a header for anyone else.
 *
 * Required macros:
 *   VM_W                 lanes per vector
 *   VM_SUFFIX            name suffix of the table (avx2, avx512)
 *   VM_TARGET            the target attribute string
 *   vf, vmask            vector and compare-result types
 *   v_set1 v_load v_store v_add v_sub v_mul v_div v_fma v_fnma (c - a b)
 *   v_min v_max          (second operand returned when either is NaN)
 *   v_and v_or v_andnot  (andnot(a, b) = ~a & b, on float vectors)
 *   v_round              round to nearest even
 *   v_pow2i(nf)          2^nf for integral nf in [-126, 127]
 *   v_gt(a, b)           a > b (ordered) as a vmask
 *   v_blend(m, a, b)     m ? a : b per lane
 *   v_zero_if(m, a)      m ? 0 : a per lane
 *   v_load_pad(p, n)     the first n (< VM_W) floats at p, -inf in the other
 *                        lanes (nothing past p + n is read)
 *   v_store_n(p, v, n)   stores the first n (< VM_W) lanes of v
 *   v_hsum, v_hmax       the sum, the largest of a vector's lanes
 *
 * The erf method and its constants: vecmath_coef.h. exp is Cephes' expf
 * reduction and polynomial (as qkv_ew_expf).
 */
#ifndef VM_W
#error "vecmath_simd.h is included by vecmath_avx2.c / vecmath_avx512.c only"
#endif

#include <math.h>
#include <string.h>

#include "vecmath_coef.h"

#define VM_CAT2(a, b) a##_##b
#define VM_CAT(a, b) VM_CAT2(a, b)
#define VM_NAME(f) VM_CAT(f, VM_SUFFIX)
#define VM_FN static __attribute__((target(VM_TARGET)))
#define VM_INLINE static inline __attribute__((target(VM_TARGET), always_inline))

#define VM_ERF_SPLIT QKV_VM_ERF_SPLIT
#define VM_ERF_CLAMP QKV_VM_ERF_CLAMP

/* e^x for x in [-87.3, 88.3] (clamped there; a NaN x gives a finite value:
 * the callers keep NaN in other ways). Within 2 ulps. */
VM_INLINE vf vm_exp(vf x)
{
    x = v_min(x, v_set1(88.3f));
    x = v_max(x, v_set1(-87.3f));
    vf nf = v_round(v_mul(x, v_set1(1.44269504088896341f)));
    vf r = v_fnma(nf, v_set1(0.693359375f), x); /* ln2 split: nf * hi is exact */
    r = v_fnma(nf, v_set1(-2.12194440e-4f), r);
    vf p = v_set1(1.9875691500e-4f);
    p = v_fma(p, r, v_set1(1.3981999507e-3f));
    p = v_fma(p, r, v_set1(8.3334519073e-3f));
    p = v_fma(p, r, v_set1(4.1665795894e-2f));
    p = v_fma(p, r, v_set1(1.6666665459e-1f));
    p = v_fma(p, r, v_set1(5.0000001201e-1f));
    p = v_fma(p, v_mul(r, r), r);
    p = v_add(p, v_set1(1.0f));
    return v_mul(p, v_pow2i(nf));
}

/* x + x P(x^2): erf for |x| <= VM_ERF_SPLIT (NaN stays NaN). */
VM_INLINE vf vm_erf_small(vf x)
{
    vf s = v_mul(x, x);
    vf p = v_set1(QKV_VM_ERF_P5);
    p = v_fma(p, s, v_set1(QKV_VM_ERF_P4));
    p = v_fma(p, s, v_set1(QKV_VM_ERF_P3));
    p = v_fma(p, s, v_set1(QKV_VM_ERF_P2));
    p = v_fma(p, s, v_set1(QKV_VM_ERF_P1));
    p = v_fma(p, s, v_set1(QKV_VM_ERF_P0));
    return v_fma(x, p, x);
}

/* erfc(t) for t = |x| > VM_ERF_SPLIT, with t clamped to VM_ERF_CLAMP (any
 * t, inf and NaN included, gives a finite value in (0, 0.2)). */
VM_INLINE vf vm_erfc_large(vf t)
{
    vf tc = v_min(t, v_set1(VM_ERF_CLAMP)); /* NaN -> the clamp */
    vf q = v_set1(QKV_VM_ERF_Q6);
    q = v_fma(q, tc, v_set1(QKV_VM_ERF_Q5));
    q = v_fma(q, tc, v_set1(QKV_VM_ERF_Q4));
    q = v_fma(q, tc, v_set1(QKV_VM_ERF_Q3));
    q = v_fma(q, tc, v_set1(QKV_VM_ERF_Q2));
    q = v_fma(q, tc, v_set1(QKV_VM_ERF_Q1));
    q = v_fma(q, tc, v_set1(QKV_VM_ERF_Q0));
    vf u = v_fnma(tc, q, v_sub(v_set1(0.0f), tc)); /* -t - t Q(t), in [-16.7, -1.6] */
    return vm_exp(u);
}

VM_INLINE vf vm_abs(vf x) { return v_andnot(v_set1(-0.0f), x); }

VM_INLINE vf vm_erf(vf x)
{
    vf t = vm_abs(x);
    vf large = v_sub(v_set1(1.0f), vm_erfc_large(t));
    large = v_or(large, v_and(v_set1(-0.0f), x)); /* the sign of x */
    return v_blend(v_gt(t, v_set1(VM_ERF_SPLIT)), large, vm_erf_small(x));
}

/* 1 + erf(v) without cancellation: erfc(-v) for v < -split (0 below the
 * clamp, where it is < 2.5e-8), 2 - erfc(v) above split. */
VM_INLINE vf vm_one_plus_erf(vf v)
{
    vf t = vm_abs(v);
    vf e = vm_erfc_large(t);
    e = v_zero_if(v_gt(t, v_set1(VM_ERF_CLAMP)), e);
    vf large = v_blend(v_gt(v, v_set1(0.0f)), v_sub(v_set1(2.0f), e), e);
    vf small = v_add(v_set1(1.0f), vm_erf_small(v));
    return v_blend(v_gt(t, v_set1(VM_ERF_SPLIT)), large, small);
}

VM_INLINE vf vm_gelu(vf x)
{
    vf half_x = v_mul(x, v_set1(0.5f));
    return v_mul(half_x, vm_one_plus_erf(v_mul(x, v_set1(QKV_VM_SQRT1_2))));
}

/* x / (1 + e^(-2 z)), z = sqrt(2/pi) (x + 0.044715 x^3): the exponent is
 * clamped, so large |x| give x or a tiny value of x's sign; NaN stays NaN. */
VM_INLINE vf vm_gelu_tanh(vf x)
{
    vf k = v_fma(v_mul(x, x), v_set1(QKV_VM_GELU_G1), v_set1(QKV_VM_GELU_G0));
    vf e = vm_exp(v_mul(x, k));
    return v_div(x, v_add(v_set1(1.0f), e));
}

/* 1 / (1 + e^-x), 0 below -88.3 (where the clamped exp would leave a
 * subnormal). A NaN x: x clamped to [-1, 1] by max/min, which return
 * their second operand for a NaN, stays NaN, and times 0 is added (a
 * signed zero otherwise). */
VM_INLINE vf vm_sigmoid(vf x)
{
    vf s = v_div(v_set1(1.0f), v_add(v_set1(1.0f), vm_exp(v_sub(v_set1(0.0f), x))));
    s = v_zero_if(v_gt(v_set1(-88.3f), x), s);
    vf nan = v_mul(v_min(v_set1(1.0f), v_max(v_set1(-1.0f), x)), v_set1(0.0f));
    return v_add(s, nan);
}

/* ---- array functions --------------------------------------------------------- */

/* out[j] = F(in[j]): whole vectors, then the tail through a zero-padded
 * buffer (so no load or store passes the arrays' ends). */
#define VM_MAP(name, F)                                                                            \
    VM_FN void name(float *out, const float *in, size_t n)                                         \
    {                                                                                              \
        size_t j = 0;                                                                              \
        for (; j + VM_W <= n; j += VM_W)                                                           \
            v_store(out + j, F(v_load(in + j)));                                                   \
        if (j < n) {                                                                               \
            float buf[VM_W] = {0};                                                                 \
            memcpy(buf, in + j, (n - j) * sizeof *buf);                                            \
            v_store(buf, F(v_load(buf)));                                                          \
            memcpy(out + j, buf, (n - j) * sizeof *buf);                                           \
        }                                                                                          \
    }

VM_MAP(VM_NAME(vm_erf_array), vm_erf)
VM_MAP(VM_NAME(vm_gelu_array), vm_gelu)
VM_MAP(VM_NAME(vm_gelu_tanh_array), vm_gelu_tanh)
VM_MAP(VM_NAME(vm_sigmoid_array), vm_sigmoid)

VM_INLINE vf vm_act(vf v, qkv_act act)
{
    switch (act) {
    case QKV_ACT_RELU:
        return v_max(v_set1(0.0f), v); /* NaN -> v */
    case QKV_ACT_GELU:
        return vm_gelu(v);
    case QKV_ACT_GELU_TANH:
        return vm_gelu_tanh(v);
    case QKV_ACT_NONE:
        break;
    }
    return v;
}

/* One vector of the epilogue (act is a constant after inlining). */
VM_INLINE vf vm_epi1(vf y, const float *bias, const float *res, qkv_act act)
{
    if (bias)
        y = v_add(y, v_load(bias));
    y = vm_act(y, act);
    if (res)
        y = v_add(y, v_load(res));
    return y;
}

VM_INLINE void vm_epilogue_k(float *y, const float *bias, const float *res, size_t n, qkv_act act)
{
    size_t j = 0;
    for (; j + VM_W <= n; j += VM_W)
        v_store(y + j, vm_epi1(v_load(y + j), bias ? bias + j : NULL, res ? res + j : NULL, act));
    if (j == n)
        return;
    float by[VM_W] = {0}, bb[VM_W] = {0}, br[VM_W] = {0};
    size_t bytes = (n - j) * sizeof(float);
    memcpy(by, y + j, bytes);
    if (bias)
        memcpy(bb, bias + j, bytes);
    if (res)
        memcpy(br, res + j, bytes);
    v_store(by, vm_epi1(v_load(by), bias ? bb : NULL, res ? br : NULL, act));
    memcpy(y + j, by, bytes);
}

/* One loop per activation, so none tests it per vector. */
VM_FN void VM_NAME(vm_epilogue)(float *y, const float *bias, const float *res, size_t n,
                                qkv_act act)
{
    switch (act) {
    case QKV_ACT_RELU:
        vm_epilogue_k(y, bias, res, n, QKV_ACT_RELU);
        return;
    case QKV_ACT_GELU:
        vm_epilogue_k(y, bias, res, n, QKV_ACT_GELU);
        return;
    case QKV_ACT_GELU_TANH:
        vm_epilogue_k(y, bias, res, n, QKV_ACT_GELU_TANH);
        return;
    case QKV_ACT_NONE:
        break;
    }
    vm_epilogue_k(y, bias, res, n, QKV_ACT_NONE);
}

/* ---- online-softmax row steps ----------------------------------------------- */

/* The row steps read and write a row's tail with masked loads and stores:
 * the padding lanes hold -inf, which the max ignores and exp turns into 0. */

VM_FN float VM_NAME(vm_max)(const float *x, size_t n)
{
    vf m = v_set1(-INFINITY);
    size_t j = 0;
    for (; j + VM_W <= n; j += VM_W)
        m = v_max(v_load(x + j), m);
    if (j < n)
        m = v_max(v_load_pad(x + j, n - j), m);
    return v_hmax(m);
}

/* exp(d) for d <= 0, exactly 0 below -87 (-inf included). */
VM_INLINE vf vm_exp_nonpos(vf d) { return v_zero_if(v_gt(v_set1(-87.0f), d), vm_exp(d)); }

VM_FN float VM_NAME(vm_exp_shifted)(float *x, size_t n, float m)
{
    vf mv = v_set1(m), acc = v_set1(0.0f);
    size_t j = 0;
    for (; j + VM_W <= n; j += VM_W) {
        vf p = vm_exp_nonpos(v_sub(v_load(x + j), mv));
        v_store(x + j, p);
        acc = v_add(acc, p);
    }
    if (j < n) {
        vf p = vm_exp_nonpos(v_sub(v_load_pad(x + j, n - j), mv));
        v_store_n(x + j, p, n - j);
        acc = v_add(acc, p);
    }
    return v_hsum(acc);
}

VM_FN void VM_NAME(vm_scale)(float *out, const float *in, size_t n, float f)
{
    vf fv = v_set1(f);
    size_t j = 0;
    for (; j + VM_W <= n; j += VM_W)
        v_store(out + j, v_mul(v_load(in + j), fv));
    if (j < n)
        v_store_n(out + j, v_mul(v_load_pad(in + j, n - j), fv), n - j);
}

/* One online-softmax step over a tile (qkv_vm_online_softmax_f32): per row
 * the max, the exp with its sum and the rescale of the output row in one
 * call, so a tile pays one dispatch instead of three per row. */
VM_FN void VM_NAME(vm_online_softmax)(float *s, size_t rows, size_t w, const size_t *n_in, float *m,
                                      float *l, float *o, size_t dv)
{
    for (size_t x = 0; x < rows; x++) {
        float *sr = s + x * w;
        size_t n = n_in[x] < w ? n_in[x] : w;
        vf mx = v_set1(-INFINITY);
        size_t j = 0;
        for (; j + VM_W <= n; j += VM_W)
            mx = v_max(v_load(sr + j), mx);
        if (j < n)
            mx = v_max(v_load_pad(sr + j, n - j), mx);
        float row_max = v_hmax(mx), m_old = m[x];
        float m_new = row_max > m_old ? row_max : m_old;
        if (m_new == -INFINITY) { /* nothing visible yet: P = 0, the row unchanged */
            memset(sr, 0, w * sizeof *sr);
            continue;
        }
        vf mv = v_set1(m_new), acc = v_set1(0.0f);
        for (j = 0; j + VM_W <= n; j += VM_W) {
            vf p = vm_exp_nonpos(v_sub(v_load(sr + j), mv));
            v_store(sr + j, p);
            acc = v_add(acc, p);
        }
        if (j < n) {
            vf p = vm_exp_nonpos(v_sub(v_load_pad(sr + j, n - j), mv));
            v_store_n(sr + j, p, n - j);
            acc = v_add(acc, p);
        }
        if (n < w)
            memset(sr + n, 0, (w - n) * sizeof *sr);
        float alpha = 1.0f;
        if (m_old != m_new && m_old == -INFINITY) {
            alpha = 0.0f; /* the row held nothing: its O and l are zero anyway */
        } else if (m_old != m_new) {
            float e[VM_W];
            v_store(e, vm_exp(v_set1(m_old - m_new)));
            alpha = e[0];
        }
        l[x] = l[x] * alpha + v_hsum(acc);
        m[x] = m_new;
        if (alpha != 1.0f) {
            float *orow = o + x * dv;
            vf av = v_set1(alpha);
            for (j = 0; j + VM_W <= dv; j += VM_W)
                v_store(orow + j, v_mul(v_load(orow + j), av));
            if (j < dv)
                v_store_n(orow + j, v_mul(v_load_pad(orow + j, dv - j), av), dv - j);
        }
    }
}

/* ---- row normalisation ------------------------------------------------------- */

/* Sums of VM_MOMENT_BLOCK elements are taken in float lanes, then added in
 * double: the float error is that of a short sum, whatever n is. */
#define VM_MOMENT_BLOCK 256

VM_FN void VM_NAME(vm_moments)(const float *x, size_t n, double *mean, double *var)
{
    double s = 0;
    for (size_t b = 0; b < n; b += VM_MOMENT_BLOCK) {
        size_t e = n - b < VM_MOMENT_BLOCK ? n : b + VM_MOMENT_BLOCK, j = b;
        vf acc = v_set1(0.0f);
        for (; j + VM_W <= e; j += VM_W)
            acc = v_add(acc, v_load(x + j));
        double t = v_hsum(acc);
        for (; j < e; j++)
            t += x[j];
        s += t;
    }
    const double m = n ? s / (double)n : 0.0;
    const float mf = (float)m;
    const vf mv = v_set1(mf);
    double ss = 0;
    for (size_t b = 0; b < n; b += VM_MOMENT_BLOCK) {
        size_t e = n - b < VM_MOMENT_BLOCK ? n : b + VM_MOMENT_BLOCK, j = b;
        vf acc = v_set1(0.0f);
        for (; j + VM_W <= e; j += VM_W) {
            vf d = v_sub(v_load(x + j), mv);
            acc = v_fma(d, d, acc);
        }
        double t = v_hsum(acc);
        for (; j < e; j++) {
            double d = (double)x[j] - mf;
            t += d * d;
        }
        ss += t;
    }
    /* deviations were taken from float(m): E[(x - mf)^2] - (m - mf)^2 */
    const double off = m - (double)mf, v = n ? ss / (double)n - off * off : 0.0;
    *mean = m;
    *var = v > 0 ? v : 0;
}

VM_FN void VM_NAME(vm_normalize)(float *y, const float *x, size_t n, float mean, float inv,
                                 const float *w, const float *b)
{
    const vf mv = v_set1(mean), iv = v_set1(inv);
    size_t j = 0;
    if (b) {
        for (; j + VM_W <= n; j += VM_W)
            v_store(y + j,
                    v_fma(v_mul(v_sub(v_load(x + j), mv), iv), v_load(w + j), v_load(b + j)));
        for (; j < n; j++)
            y[j] = (x[j] - mean) * inv * w[j] + b[j];
    } else {
        for (; j + VM_W <= n; j += VM_W)
            v_store(y + j, v_mul(v_mul(v_sub(v_load(x + j), mv), iv), v_load(w + j)));
        for (; j < n; j++)
            y[j] = (x[j] - mean) * inv * w[j];
    }
}

VM_FN void VM_NAME(vm_normalize_scalar)(float *y, const float *x, size_t n, float mean, float a,
                                        float b)
{
    const vf mv = v_set1(mean), av = v_set1(a), bv = v_set1(b);
    size_t j = 0;
    for (; j + VM_W <= n; j += VM_W)
        v_store(y + j, v_fma(v_sub(v_load(x + j), mv), av, bv));
    if (j < n)
        v_store_n(y + j, v_fma(v_sub(v_load_pad(x + j, n - j), mv), av, bv), n - j);
}

const qkv_vm_impl VM_NAME(qkv_vm_impl) = {
    VM_NAME(vm_erf_array),
    VM_NAME(vm_gelu_array),
    VM_NAME(vm_gelu_tanh_array),
    VM_NAME(vm_epilogue),
    VM_NAME(vm_max),
    VM_NAME(vm_exp_shifted),
    VM_NAME(vm_scale),
    VM_NAME(vm_moments),
    VM_NAME(vm_normalize),
    VM_NAME(vm_normalize_scalar),
    VM_NAME(vm_sigmoid_array),
    VM_NAME(vm_online_softmax),
};
