/*
 * vecmath.h - float32 math over arrays in the variant this CPU runs best:
 * erf, the exact and the tanh GELU, the epilogue of a fused matmul (bias,
 * activation, residual), and the row steps of an online softmax (max,
 * exp of the shifted row with its sum, scaling), which the fused attention
 * kernel runs per score tile.
 *
 * Variants: AVX-512 (vecmath_avx512.c), AVX2/FMA (vecmath_avx2.c), both
 * written once in vecmath_simd.h and compiled with target attributes (no
 * global -march, no ifunc), and a portable one (vecmath.c, branch-free C the
 * compiler vectorises for the baseline ISA). The variant is the one
 * qkv_cpu_isa() allows (so QKV_ISA caps it), chosen at the first call.
 *
 * Accuracy (tests/test_vecmath.c checks it against libm on a dense sweep of
 * float32, in every variant):
 *  - erf: within 2.5e-7 absolute of the exact value everywhere (~4 ulps of
 *    values near 1; 1.8e-7 measured); erf(+-0) = +-0, erf(+-inf) = +-1,
 *    NaN gives NaN.
 *  - gelu (0.5 x (1 + erf(x / sqrt 2))): 1 + erf is formed without
 *    cancellation (as erfc(-x / sqrt 2) for x < -1.3), so the result is
 *    within 5e-6 relative for every x >= -5.5, where the textbook formula
 *    in float32 loses all digits below about -4; below -5.5, where
 *    |gelu| < 1e-7, it gives -0. NaN gives NaN, +inf inf, -inf NaN.
 *  - gelu_tanh (0.5 x (1 + tanh(sqrt(2/pi) (x + 0.044715 x^3)))), computed
 *    as x / (1 + exp(-2 sqrt(2/pi) (x + 0.044715 x^3))): within 1e-6
 *    relative + 1e-7 absolute.
 *  - sigmoid (1 / (1 + e^-x)): within 3 ulps for x > -87 (below, where the
 *    result is subnormal, within 1e-38 absolute; exactly 0 below -89);
 *    sigmoid(inf) = 1, sigmoid(-inf) = 0, NaN gives NaN.
 *  - exp_shifted: exp(x - m) within 2 ulps for x - m in [-87, 0], and
 *    exactly 0 below -87 (so an excluded score, -inf, weighs exactly 0);
 *    the sum is accumulated in float, lane by lane.
 * Every function allows out == in (in place); other overlaps are not allowed.
 */
#ifndef QKV_VECMATH_H
#define QKV_VECMATH_H

#include <stddef.h>

#include "cpu_features.h"

/* The activations of qkv_vm_epilogue_f32 (and of the FusedMatMul op). */
typedef enum qkv_act {
    QKV_ACT_NONE = 0,
    QKV_ACT_RELU = 1,     /* max(x, 0); NaN stays NaN */
    QKV_ACT_GELU = 2,     /* exact (erf) GELU */
    QKV_ACT_GELU_TANH = 3 /* tanh-approximated GELU */
} qkv_act;

/* out[j] = erf(in[j]) for j < n. */
void qkv_vm_erf_f32(float *out, const float *in, size_t n);

/* out[j] = 0.5 in[j] (1 + erf(in[j] / sqrt 2)) for j < n. */
void qkv_vm_gelu_f32(float *out, const float *in, size_t n);

/* out[j] = 0.5 in[j] (1 + tanh(sqrt(2/pi) (in[j] + 0.044715 in[j]^3))). */
void qkv_vm_gelu_tanh_f32(float *out, const float *in, size_t n);

/* out[j] = 1 / (1 + e^-in[j]) for j < n. */
void qkv_vm_sigmoid_f32(float *out, const float *in, size_t n);

/*
 * One row of a fused matmul's epilogue, in place on y (n elements):
 *   y[j] = act(y[j] + bias[j]) + res[j]
 * bias and res may be NULL (no term); res may be y itself (then the result
 * is act(y + bias) + y: each element is read before it is written).
 */
void qkv_vm_epilogue_f32(float *y, const float *bias, const float *res, size_t n, qkv_act act);

/* The largest of x[0..n); -inf for n == 0 (NaN elements may be skipped). */
float qkv_vm_max_f32(const float *x, size_t n);

/* x[j] = exp(x[j] - m) for j < n, 0 where x[j] - m < -87 (x[j] = -inf
 * included); m finite and x[j] <= m. Returns the sum of the new x. */
float qkv_vm_exp_shifted_f32(float *x, size_t n, float m);

/* out[j] = in[j] * f for j < n. */
void qkv_vm_scale_f32(float *out, const float *in, size_t n, float f);

/*
 * One step of the online softmax over a tile of scores s (rows x w, row
 * stride w), all rows at once (the fused attention kernel's plain case: no
 * softcap, bias or mask values, only visible-key counts). For row x, with
 * n = n_in[x] <= w scores visible (the rest excluded):
 *   m_new = max(m[x], max(s[x][0..n)))
 *   m_new -inf (nothing visible so far): s[x][0..w) = 0; m[x], l[x], o
 *     unchanged;
 *   else s[x][j] = exp(s[x][j] - m_new) for j < n (0 below -87), 0 for
 *     j >= n; alpha = exp(m[x] - m_new) (1 when equal, 0 when m[x] is -inf);
 *     l[x] = l[x] * alpha + sum_j s[x][j]; m[x] = m_new; and the row's
 *     output o[x * dv .. x * dv + dv) is multiplied by alpha when alpha != 1.
 * The max, exp and sum are those of qkv_vm_max_f32 / qkv_vm_exp_shifted_f32.
 */
void qkv_vm_online_softmax_f32(float *s, size_t rows, size_t w, const size_t *n_in, float *m,
                               float *l, float *o, size_t dv);

/*
 * The mean and the biased variance of x[0..n) (0 and 0 for n == 0), in two
 * passes (the sum, then the squared deviations from the mean, which avoids
 * the cancellation of E[x^2] - E[x]^2), each accumulated in float over
 * blocks of 256 elements and in double across blocks.
 */
void qkv_vm_moments_f32(const float *x, size_t n, double *mean, double *var);

/* y[j] = (x[j] - mean) * inv * w[j] + b[j] for j < n, in float; b may be
 * NULL (no term); y may be x. */
void qkv_vm_normalize_f32(float *y, const float *x, size_t n, float mean, float inv, const float *w,
                          const float *b);

/* Moments accumulated over several runs of one group (start from {0}). */
typedef struct qkv_vm_moments {
    double count, mean, m2; /* elements, their mean, the sum of squared deviations */
} qkv_vm_moments;

/* Adds the run x[0..n) to *acc: its moments (qkv_vm_moments_f32) merged by
 * Chan et al.'s pairwise update, which adds the run's squared deviations and
 * those of its mean from the running one (no E[x^2] - E[x]^2 cancellation
 * across runs). The group's biased variance is then m2 / count. */
void qkv_vm_moments_add_f32(qkv_vm_moments *acc, const float *x, size_t n);

/* y[j] = (x[j] - mean) * a + b for j < n, in float, with one scale and one
 * shift for the whole run (the per-channel form of the norms whose
 * parameters are scalars over a plane); y may be x. */
void qkv_vm_normalize_scalar_f32(float *y, const float *x, size_t n, float mean, float a, float b);

/* The variant the functions above run (for tests and reports). */
qkv_isa qkv_vm_isa(void);

/* ---- the variants (vecmath_*.c): one table each ----------------------------- */

typedef struct qkv_vm_impl {
    void (*erf)(float *out, const float *in, size_t n);
    void (*gelu)(float *out, const float *in, size_t n);
    void (*gelu_tanh)(float *out, const float *in, size_t n);
    void (*epilogue)(float *y, const float *bias, const float *res, size_t n, qkv_act act);
    float (*max)(const float *x, size_t n);
    float (*exp_shifted)(float *x, size_t n, float m);
    void (*scale)(float *out, const float *in, size_t n, float f);
    void (*moments)(const float *x, size_t n, double *mean, double *var);
    void (*normalize)(float *y, const float *x, size_t n, float mean, float inv, const float *w,
                      const float *b);
    void (*normalize_scalar)(float *y, const float *x, size_t n, float mean, float a, float b);
    void (*sigmoid)(float *out, const float *in, size_t n);
    void (*online_softmax)(float *s, size_t rows, size_t w, const size_t *n_in, float *m, float *l,
                           float *o, size_t dv);
} qkv_vm_impl;

/* x86-64 with GCC or clang: the AVX2 and AVX-512 variants are built. */
#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
#define QKV_VM_HAVE_X86 1
extern const qkv_vm_impl qkv_vm_impl_avx2;   /* vecmath_avx2.c */
extern const qkv_vm_impl qkv_vm_impl_avx512; /* vecmath_avx512.c */
#endif

/* The table of variant `isa`, or NULL when this build has none for it
 * (non-x86 builds have only the baseline). Call only when the CPU runs it. */
const qkv_vm_impl *qkv_vm_impl_for(qkv_isa isa);

#endif /* QKV_VECMATH_H */
