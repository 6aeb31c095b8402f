/*
 * conv_depthwise_avx2.c - the AVX2/FMA row kernel of the depthwise
 * convolution (8 lanes): the macros conv_depthwise_simd.h is written over,
 * for __m256. Only this code carries target("avx2,fma");
 * qkv_dwconv_row_select picks it only when the CPU has both.
 */
#include "conv_depthwise_rows.h"

#if defined(QKV_DWCONV_HAVE_X86)
#include <immintrin.h>

/* All-ones in the first n (0..8) of 8 int lanes: the mask of a row's tail. */
static inline __attribute__((target("avx2,fma"), always_inline)) __m256i dw_lanes(size_t n)
{
    static const int32_t tbl[16] = {-1, -1, -1, -1, -1, -1, -1, -1, 0, 0, 0, 0, 0, 0, 0, 0};
    return _mm256_loadu_si256((const __m256i *)(tbl + 8 - n));
}

#define DW_W 8
#define DW_NV4 2 /* 4 rows x 2 vectors: 8 of 16 registers */
#define DW_SUFFIX avx2
#define DW_TARGET "avx2,fma"
#define vf __m256
#define v_set1 _mm256_set1_ps
#define v_load _mm256_loadu_ps
#define v_store _mm256_storeu_ps
#define v_fma _mm256_fmadd_ps
#define v_load_n(p, n) _mm256_maskload_ps((p), dw_lanes(n))
#define v_store_n(p, v, n) _mm256_maskstore_ps((p), dw_lanes(n), (v))

#include "conv_depthwise_simd.h"

#endif /* QKV_DWCONV_HAVE_X86 */
