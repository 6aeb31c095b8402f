/*
 * vecmath_avx512.c - the AVX-512 (F, DQ; BW and VL for the level) variant of
 * vecmath.h (16 lanes): the macros vecmath_simd.h is written over, for
 * __m512 with mask registers. Only these functions carry the AVX-512 target
 * attribute; vecmath.c calls them only when the CPU (and the QKV_ISA cap)
 * allows AVX-512.
 */
#include "vecmath.h"

#if defined(QKV_VM_HAVE_X86)
#include <immintrin.h>
#include <math.h>

#define VM_W 16
#define VM_SUFFIX avx512
#define VM_TARGET "avx512f,avx512bw,avx512vl,avx512dq"
#define vf __m512
#define vmask __mmask16
#define v_set1 _mm512_set1_ps
#define v_load _mm512_loadu_ps
#define v_store _mm512_storeu_ps
#define v_add _mm512_add_ps
#define v_sub _mm512_sub_ps
#define v_mul _mm512_mul_ps
#define v_div _mm512_div_ps
#define v_fma _mm512_fmadd_ps
#define v_fnma _mm512_fnmadd_ps
#define v_min _mm512_min_ps
#define v_max _mm512_max_ps
#define v_and _mm512_and_ps
#define v_or _mm512_or_ps
#define v_andnot _mm512_andnot_ps
#define v_round(x) _mm512_roundscale_ps((x), _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC)
#define v_pow2i(nf)                                                                                \
    _mm512_castsi512_ps(                                                                           \
        _mm512_slli_epi32(_mm512_add_epi32(_mm512_cvtps_epi32(nf), _mm512_set1_epi32(127)), 23))
#define v_gt(a, b) _mm512_cmp_ps_mask((a), (b), _CMP_GT_OQ)
#define v_blend(m, a, b) _mm512_mask_blend_ps((m), (b), (a))
#define v_zero_if(m, a) _mm512_maskz_mov_ps((__mmask16) ~(m), (a))
#define VM_LANES(n) ((__mmask16)((1u << (n)) - 1u)) /* n < 16 */
#define v_load_pad(p, n) _mm512_mask_loadu_ps(_mm512_set1_ps(-INFINITY), VM_LANES(n), (p))
#define v_store_n(p, v, n) _mm512_mask_storeu_ps((p), VM_LANES(n), (v))
#define v_hsum _mm512_reduce_add_ps
#define v_hmax _mm512_reduce_max_ps

#include "vecmath_simd.h"

#endif /* QKV_VM_HAVE_X86 */
