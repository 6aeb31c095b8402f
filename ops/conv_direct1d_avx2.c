/*
 * conv_direct1d_avx2.c - the AVX2/FMA tile kernel of the direct 1-D
 * convolution (8 lanes, tiles of up to 2 vectors of channels x 6
 * positions): the macros conv_direct1d_simd.h is written over, for __m256.
 * Only this code carries target("avx2,fma"); qkv_direct1d_select picks it
 * only when the CPU has both.
 */
#include "conv_direct1d_tiles.h"

#if defined(QKV_DIRECT1D_HAVE_X86)
#include <immintrin.h>

#define D1_W 8
#define D1_MR 2
#define D1_NJ 6
#define D1_SUFFIX avx2
#define D1_TARGET "avx2,fma"
#define vf __m256
#define v_set1 _mm256_set1_ps
#define v_load _mm256_loadu_ps
#define v_store _mm256_storeu_ps
#define v_fma _mm256_fmadd_ps
#define D1_CASES_M(m)                                                                              \
    D1_CASE(m, 1) D1_CASE(m, 2) D1_CASE(m, 3) D1_CASE(m, 4) D1_CASE(m, 5) D1_CASE(m, 6)
#define D1_CASES D1_CASES_M(1) D1_CASES_M(2)

#include "conv_direct1d_simd.h"

#endif /* QKV_DIRECT1D_HAVE_X86 */
