/*
 * vecmath_coef.h - the constants of vecmath's erf, shared by every variant
 * (vecmath.c, vecmath_simd.h).
 *
 * float32 minimax fits (Lawson's iteratively weighted least squares on
 * Chebyshev-spaced points, against mpmath) made for this code:
 *   |x| <= SPLIT:  erf(x) = x + x P(x^2)        max |error of P| 1.6e-8
 *   |x| >  SPLIT:  erfc(t) = exp(-t - t Q(t)), t = min(|x|, CLAMP)
 *                  max relative error of erfc 6.7e-7 on [SPLIT, CLAMP]
 *                  (Q fitted for relative error so that 1 + erf(x) = erfc(-x)
 *                  is accurate for the GELU of negative x; erf itself is
 *                  then within 1.3e-7 absolute there)
 * erfc(CLAMP) < 2.5e-8, under half an ulp of 1: erf rounds to +-1 above it.
 * P and Q are listed from the highest degree down (Horner order), as
 * scripts/fit_vecmath_erf.py prints them.
 */
#ifndef QKV_VECMATH_COEF_H
#define QKV_VECMATH_COEF_H

#define QKV_VM_ERF_SPLIT 0.921875f
#define QKV_VM_ERF_CLAMP 3.9375f

#define QKV_VM_ERF_P5 (-6.013419479e-04f)
#define QKV_VM_ERF_P4 4.998006858e-03f
#define QKV_VM_ERF_P3 (-2.677023597e-02f)
#define QKV_VM_ERF_P2 1.128192768e-01f
#define QKV_VM_ERF_P1 (-3.761250675e-01f)
#define QKV_VM_ERF_P0 1.283791512e-01f

#define QKV_VM_ERF_Q6 1.598319068e-05f
#define QKV_VM_ERF_Q5 (-3.640253854e-04f)
#define QKV_VM_ERF_Q4 3.772808239e-03f
#define QKV_VM_ERF_Q3 (-2.392900176e-02f)
#define QKV_VM_ERF_Q2 1.062643528e-01f
#define QKV_VM_ERF_Q1 6.352607608e-01f
#define QKV_VM_ERF_Q0 1.285846978e-01f

#define QKV_VM_SQRT1_2 0.70710678118654752440f /* 1 / sqrt(2) */
/* gelu_tanh = x / (1 + e^(x (G0 + G1 x^2))) */
#define QKV_VM_GELU_G0 (-2.0f * 0.79788456080286535588f)             /* -2 sqrt(2/pi) */
#define QKV_VM_GELU_G1 (-2.0f * 0.79788456080286535588f * 0.044715f) /* G0 * 0.044715 */

#endif /* QKV_VECMATH_COEF_H */
