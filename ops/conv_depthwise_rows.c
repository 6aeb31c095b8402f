/*
 * conv_depthwise_rows.c - the portable row kernel of the depthwise
 * convolution and the choice of variant (contracts in
 * conv_depthwise_rows.h).
 */
#include "conv_depthwise_rows.h"

#include "qkv_plugin.h"

void qkv_dwconv_row_portable(float *restrict y, size_t n, const float *const *src, const float *w,
                             size_t taps, float bias, int accumulate)
{
    if (!accumulate)
        for (size_t j = 0; j < n; j++)
            y[j] = bias;
    /* one pass over y per tap: the compiler vectorises it for the baseline
     * ISA; the SIMD variants keep y in registers instead */
    for (size_t t = 0; t < taps; t++) {
        const float *restrict s = src[t];
        const float wt = w[t];
        for (size_t j = 0; j < n; j++)
            y[j] += wt * s[j];
    }
}

void qkv_dwconv_rows4_portable(float *const *y, size_t n, const float *const *src, const float *w,
                               size_t taps, const float *bias, int accumulate)
{
    for (size_t i = 0; i < 4; i++) {
        float *restrict yi = y[i];
        if (!accumulate)
            for (size_t j = 0; j < n; j++)
                yi[j] = bias[i];
        for (size_t t = 0; t < taps; t++) {
            const float *restrict s = src[t];
            const float wt = w[t * 4 + i];
            for (size_t j = 0; j < n; j++)
                yi[j] += wt * s[j];
        }
    }
}

qkv_dwconv_rows4_fn qkv_dwconv_rows4_select(uint64_t features)
{
#if defined(QKV_DWCONV_HAVE_X86)
    if (features & QKV_CPU_AVX512)
        return qkv_dwconv_rows4_avx512;
    if (features & QKV_CPU_AVX2)
        return qkv_dwconv_rows4_avx2;
#else
    (void)features;
#endif
    return qkv_dwconv_rows4_portable;
}

qkv_dwconv_row_fn qkv_dwconv_row_select(uint64_t features)
{
#if defined(QKV_DWCONV_HAVE_X86)
    if (features & QKV_CPU_AVX512)
        return qkv_dwconv_row_avx512;
    if (features & QKV_CPU_AVX2)
        return qkv_dwconv_row_avx2;
#else
    (void)features;
#endif
    return qkv_dwconv_row_portable;
}
