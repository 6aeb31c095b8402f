/*
 * conv_depthwise_avx512.c - the AVX-512 row kernel of the depthwise
 * convolution (16 lanes): the macros conv_depthwise_simd.h is written
 * over, for __m512. Only this code carries the AVX-512 target;
 * qkv_dwconv_row_select picks it only when the CPU has AVX-512 F/BW/VL/DQ.
 */
#include "conv_depthwise_rows.h"

#if defined(QKV_DWCONV_HAVE_X86)
#include <immintrin.h>

#define DW_W 16
#define DW_NV4 4 /* 4 rows x 4 vectors: 16 of 32 registers */
#define DW_SUFFIX avx512
#define DW_TARGET "avx512f,avx512bw,avx512vl,avx512dq"
#define vf __m512
#define v_set1 _mm512_set1_ps
#define v_load _mm512_loadu_ps
#define v_store _mm512_storeu_ps
#define v_fma _mm512_fmadd_ps
/* the first n (< 16) lanes */
#define v_load_n(p, n) _mm512_maskz_loadu_ps((__mmask16)((1u << (n)) - 1u), (p))
#define v_store_n(p, v, n) _mm512_mask_storeu_ps((p), (__mmask16)((1u << (n)) - 1u), (v))

#include "conv_depthwise_simd.h"

#endif /* QKV_DWCONV_HAVE_X86 */
