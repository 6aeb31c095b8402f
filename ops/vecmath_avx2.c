/*
 * vecmath_avx2.c - the AVX2/FMA variant of vecmath.h (8 lanes): the macros
 * vecmath_simd.h is written over, for __m256. Only these functions carry
 * target("avx2,fma"); vecmath.c calls them only when the CPU has both.
 */
#include "vecmath.h"

#if defined(QKV_VM_HAVE_X86)
#include <immintrin.h>

#define VM_W 8
#define VM_SUFFIX avx2
#define VM_TARGET "avx2,fma"
#define vf __m256
#define vmask __m256
#define v_set1 _mm256_set1_ps
#define v_load _mm256_loadu_ps
#define v_store _mm256_storeu_ps
#define v_add _mm256_add_ps
#define v_sub _mm256_sub_ps
#define v_mul _mm256_mul_ps
#define v_div _mm256_div_ps
#define v_fma _mm256_fmadd_ps
#define v_fnma _mm256_fnmadd_ps
#define v_min _mm256_min_ps
#define v_max _mm256_max_ps
#define v_and _mm256_and_ps
#define v_or _mm256_or_ps
#define v_andnot _mm256_andnot_ps
#define v_round(x) _mm256_round_ps((x), _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC)
#define v_pow2i(nf)                                                                      \
    _mm256_castsi256_ps(_mm256_slli_epi32(                                               \
        _mm256_add_epi32(_mm256_cvtps_epi32(nf), _mm256_set1_epi32(127)), 23))
#define v_gt(a, b) _mm256_cmp_ps((a), (b), _CMP_GT_OQ)
#define v_blend(m, a, b) _mm256_blendv_ps((b), (a), (m))
#define v_zero_if(m, a) _mm256_andnot_ps((m), (a))

#include "vecmath_simd.h"

#endif /* QKV_VM_HAVE_X86 */
