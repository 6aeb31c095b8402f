/*
 * conv_depthwise_rows.h - the row kernels of the direct depthwise
 * convolution (conv_depthwise.h): one output row as a weighted sum of
 * contiguous source runs,
 *   y[j] = (accumulate ? y[j] : bias) + sum_{t < taps} w[t] * src[t][j]   for j < n.
 *
 * Variants: AVX-512 (conv_depthwise_avx512.c) and AVX2/FMA
 * (conv_depthwise_avx2.c), both written once in conv_depthwise_simd.h and
 * compiled with target attributes (no global -march), and a portable one
 * (conv_depthwise_rows.c). They sum the taps in different orders and with
 * or without fused multiply-adds, so their results differ in the last bits.
 */
#ifndef QKV_CONV_DEPTHWISE_ROWS_H
#define QKV_CONV_DEPTHWISE_ROWS_H

#include <stddef.h>
#include <stdint.h>

/* One row: src holds `taps` pointers, each to n readable floats; y (n
 * floats) overlaps none of them. taps may be 0 (then y is the bias, or
 * left as it is when accumulating). */
typedef void (*qkv_dwconv_row_fn)(float *y, size_t n, const float *const *src, const float *w,
                                  size_t taps, float bias, int accumulate);

/* Four rows that read the same sources with their own weights and bias:
 *   y[i][j] = (accumulate ? y[i][j] : bias[i]) + sum_{t < taps} w[t * 4 + i] * src[t][j]
 * for i < 4, j < n; the rows overlap no source. */
typedef void (*qkv_dwconv_rows4_fn)(float *const *y, size_t n, const float *const *src,
                                    const float *w, size_t taps, const float *bias, int accumulate);

/* The portable row kernel (any CPU). */
void qkv_dwconv_row_portable(float *y, size_t n, const float *const *src, const float *w,
                             size_t taps, float bias, int accumulate);

/* The portable 4-row kernel: the row kernel on each row. */
void qkv_dwconv_rows4_portable(float *const *y, size_t n, const float *const *src, const float *w,
                               size_t taps, const float *bias, int accumulate);

/* x86-64 with GCC or clang: the AVX2 and AVX-512 variants are built. Call
 * one only when the CPU has its features. */
#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
#define QKV_DWCONV_HAVE_X86 1
void qkv_dwconv_row_avx2(float *y, size_t n, const float *const *src, const float *w, size_t taps,
                         float bias, int accumulate);
void qkv_dwconv_row_avx512(float *y, size_t n, const float *const *src, const float *w, size_t taps,
                           float bias, int accumulate);
void qkv_dwconv_rows4_avx2(float *const *y, size_t n, const float *const *src, const float *w,
                           size_t taps, const float *bias, int accumulate);
void qkv_dwconv_rows4_avx512(float *const *y, size_t n, const float *const *src, const float *w,
                             size_t taps, const float *bias, int accumulate);
#endif

/* The best row kernel for CPU features `features` (QKV_CPU_* bits, as
 * host->cpu_features() gives them): AVX-512 with QKV_CPU_AVX512, AVX2 with
 * QKV_CPU_AVX2, else portable. Never NULL. */
qkv_dwconv_row_fn qkv_dwconv_row_select(uint64_t features);

/* The 4-row kernel of the same variant qkv_dwconv_row_select picks. */
qkv_dwconv_rows4_fn qkv_dwconv_rows4_select(uint64_t features);

#endif /* QKV_CONV_DEPTHWISE_ROWS_H */
