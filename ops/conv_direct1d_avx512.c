/*
 * conv_direct1d_avx512.c - the AVX-512 tile kernel of the direct 1-D
 * convolution (16 lanes, tiles of up to 3 vectors of channels x 8
 * positions): the macros conv_direct1d_simd.h is written over, for __m512.
 * Only this code carries the AVX-512 target; qkv_direct1d_select picks it
 * only when the CPU has AVX-512 F/BW/VL/DQ.
 */
#include "conv_direct1d_tiles.h"

#if defined(QKV_DIRECT1D_HAVE_X86)
#include <immintrin.h>

#define D1_W 16
#define D1_MR 3
#define D1_NJ 8
#define D1_SUFFIX avx512
#define D1_TARGET "avx512f,avx512bw,avx512vl,avx512dq"
#define vf __m512
#define v_set1 _mm512_set1_ps
#define v_load _mm512_loadu_ps
#define v_store _mm512_storeu_ps
#define v_fma _mm512_fmadd_ps
#define D1_CASES_M(m)                                                                              \
    D1_CASE(m, 1)                                                                                  \
    D1_CASE(m, 2)                                                                                  \
    D1_CASE(m, 3) D1_CASE(m, 4) D1_CASE(m, 5) D1_CASE(m, 6) D1_CASE(m, 7) D1_CASE(m, 8)
#define D1_CASES D1_CASES_M(1) D1_CASES_M(2) D1_CASES_M(3)

#include "conv_direct1d_simd.h"

#endif /* QKV_DIRECT1D_HAVE_X86 */
