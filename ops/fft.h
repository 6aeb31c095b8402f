/*
 * fft.h - the complex transform DFT and STFT share: any length, in double.
 *
 * Twiddles are exact per index (each cos/sin computed from its own angle,
 * reduced to the first quadrant, so e.g. the quarter turns are exactly 0 and
 * +-1), never by recurrence: errors stay near a few ulps of the largest
 * term, which keeps outputs that should be 0 within the ONNX suite's atol of
 * 1e-7. Power-of-two lengths use an iterative radix-2 FFT; other lengths up
 * to QKV_FFT_DIRECT_MAX a direct O(n^2) sum, longer ones Bluestein's
 * algorithm (a chirp convolution through power-of-two FFTs, O(n log n)).
 *
 * Use: fill the tables for a length once (they are read-only afterwards and
 * may be shared by threads), then transform with a work buffer per thread.
 */
#ifndef QKV_OPS_FFT_H
#define QKV_OPS_FFT_H

#include <stdbool.h>
#include <stddef.h>

/* Lengths (not powers of two) up to this use the direct sum. */
#define QKV_FFT_DIRECT_MAX 64

/* Doubles the tables for length n take. */
size_t qkv_fft_table_doubles(size_t n);

/* Fills tab (qkv_fft_table_doubles(n) doubles) for length n >= 1. */
void qkv_fft_tables(double *tab, size_t n);

/* Doubles of work buffer one transform of length n needs. */
size_t qkv_fft_work_doubles(size_t n);

/*
 * Transforms the n complex points at x (re, im interleaved) in place:
 * X[k] = sum_j x[j] * exp(-+2*pi*i*j*k/n), the + sign when `inverse` (no
 * 1/n scaling here). tab is qkv_fft_tables(n); work holds
 * qkv_fft_work_doubles(n) doubles.
 */
void qkv_fft_run(double *x, size_t n, const double *tab, bool inverse, double *work);

#endif /* QKV_OPS_FFT_H */
