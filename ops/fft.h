/*
 * fft.h - the complex transform DFT and STFT share: any length, in double.
 *
 * Twiddles are exact per index (each cos/sin computed from its own angle,
 * reduced to the first quadrant, so e.g. the quarter turns are exactly 0 and
 * +-1), never by recurrence: errors stay near one ulp of the largest term,
 * which keeps outputs that should be 0 within the ONNX suite's atol of 1e-7.
 * Power-of-two lengths use an iterative radix-2 FFT; other lengths a direct
 * O(n^2) sum, also accumulated in double.
 */
#ifndef QKV_OPS_FFT_H
#define QKV_OPS_FFT_H

#include <stdbool.h>
#include <stddef.h>

/* Doubles of scratch one qkv_fft_run of length n needs besides its data
 * (the twiddles and a work buffer): 4 * n. */
size_t qkv_fft_scratch_doubles(size_t n);

/* Fills tw (2 * n doubles) with (cos, -sin) of 2*pi*m/n for m in [0, n). */
void qkv_fft_twiddles(double *tw, size_t n);

/*
 * Transforms the n complex points at x (re, im interleaved) in place:
 * X[k] = sum_j x[j] * exp(-+2*pi*i*j*k/n), the + sign when `inverse` (no
 * 1/n scaling here). tw is qkv_fft_twiddles(n); work holds 2 * n doubles.
 */
void qkv_fft_run(double *x, size_t n, const double *tw, bool inverse, double *work);

#endif /* QKV_OPS_FFT_H */
