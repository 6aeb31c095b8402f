/*
 * vecmath_avx2.c - the AVX2/FMA variant of vecmath.h (8 lanes): the macros
 * vecmath_simd.h is written over, for __m256. Only these functions carry
 * target("avx2,fma"); vecmath.c calls them only when the CPU has both.
 */
#include "vecmath.h"

#if defined(QKV_VM_HAVE_X86)
#include <immintrin.h>
#include <math.h>
#include <stdint.h>

/* All-ones in the first n (0..8) of 8 int lanes: the mask of a row's tail. */
static inline __attribute__((target("avx2,fma"), always_inline)) __m256i vm_lanes(size_t n)
{
    static const int32_t tbl[16] = {-1, -1, -1, -1, -1, -1, -1, -1, 0, 0, 0, 0, 0, 0, 0, 0};
    return _mm256_loadu_si256((const __m256i *)(tbl + 8 - n));
}

/* The sum and the largest of a vector's lanes. */
static inline __attribute__((target("avx2,fma"), always_inline)) float vm_hsum8(__m256 v)
{
    __m128 h = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    h = _mm_add_ps(h, _mm_movehl_ps(h, h));
    return _mm_cvtss_f32(_mm_add_ss(h, _mm_shuffle_ps(h, h, 1)));
}

static inline __attribute__((target("avx2,fma"), always_inline)) float vm_hmax8(__m256 v)
{
    __m128 h = _mm_max_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    h = _mm_max_ps(h, _mm_movehl_ps(h, h));
    return _mm_cvtss_f32(_mm_max_ss(h, _mm_shuffle_ps(h, h, 1)));
}

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
#define v_pow2i(nf)                                                                                \
    _mm256_castsi256_ps(                                                                           \
        _mm256_slli_epi32(_mm256_add_epi32(_mm256_cvtps_epi32(nf), _mm256_set1_epi32(127)), 23))
#define v_gt(a, b) _mm256_cmp_ps((a), (b), _CMP_GT_OQ)
#define v_blend(m, a, b) _mm256_blendv_ps((b), (a), (m))
#define v_zero_if(m, a) _mm256_andnot_ps((m), (a))
#define v_load_pad(p, n)                                                                           \
    _mm256_blendv_ps(_mm256_set1_ps(-INFINITY), _mm256_maskload_ps((p), vm_lanes(n)),              \
                     _mm256_castsi256_ps(vm_lanes(n)))
#define v_store_n(p, v, n) _mm256_maskstore_ps((p), vm_lanes(n), (v))
#define v_hsum vm_hsum8
#define v_hmax vm_hmax8

#include "vecmath_simd.h"

#endif /* QKV_VM_HAVE_X86 */
