/*
 * igemm_avx2.c - the AVX2 micro-kernel of the int8 GEMM (igemm.h), for
 * CPUs without VNNI: a 6 x 16 int32 tile in 12 ymm accumulators over
 * k-groups of two. A comes packed as uint16 pairs, B as int8 pairs that are
 * sign-extended to int16 on load (vpmovsxbw), and vpmaddwd multiplies and
 * adds each pair into int32: exact. (vpmaddubsw would take the bytes
 * directly, but its int16 sum saturates once two products of 255 x 127
 * meet: 64,770 > 32,767.)
 *
 * Compiled for AVX2 with a function attribute, not the whole file; igemm.c
 * calls it only when host->cpu_features() has AVX2.
 */
#include <string.h>

#include "igemm_arch.h"

#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
#include <immintrin.h>

#define MR 6
#define NR 16

#define AVX2_FN __attribute__((target("avx2")))

AVX2_FN static inline __m256i bcast4(const uint8_t *p)
{
    int32_t v;
    memcpy(&v, p, sizeof v);
    return _mm256_set1_epi32(v);
}

AVX2_FN static inline void store_row(int32_t *c, __m256i acc0, __m256i acc1, bool accumulate)
{
    if (accumulate) {
        acc0 = _mm256_add_epi32(acc0, _mm256_loadu_si256((const __m256i *)c));
        acc1 = _mm256_add_epi32(acc1, _mm256_loadu_si256((const __m256i *)(c + 8)));
    }
    _mm256_storeu_si256((__m256i *)c, acc0);
    _mm256_storeu_si256((__m256i *)(c + 8), acc1);
}

#define MADD_ROW(i)                                                                                \
    do {                                                                                           \
        __m256i a_ = bcast4(ap + 4 * (i));                                                         \
        c##i##0 = _mm256_add_epi32(c##i##0, _mm256_madd_epi16(a_, b0));                            \
        c##i##1 = _mm256_add_epi32(c##i##1, _mm256_madd_epi16(a_, b1));                            \
    } while (0)

AVX2_FN static void tile_avx2(size_t groups, const void *ap_, const int8_t *bp, int32_t *c,
                              size_t ldc, bool accumulate)
{
    const uint8_t *ap = ap_; /* uint16 pairs: 4 bytes per row per group */
    __m256i c00 = _mm256_setzero_si256(), c01 = c00, c10 = c00, c11 = c00, c20 = c00;
    __m256i c21 = c00, c30 = c00, c31 = c00, c40 = c00, c41 = c00, c50 = c00, c51 = c00;
#pragma GCC unroll 2
    for (size_t g = 0; g < groups; g++) {
        __m256i b0 = _mm256_cvtepi8_epi16(_mm_loadu_si128((const __m128i *)bp));
        __m256i b1 = _mm256_cvtepi8_epi16(_mm_loadu_si128((const __m128i *)(bp + 16)));
        MADD_ROW(0);
        MADD_ROW(1);
        MADD_ROW(2);
        MADD_ROW(3);
        MADD_ROW(4);
        MADD_ROW(5);
        ap += MR * 4;
        bp += NR * 2;
    }
    store_row(c, c00, c01, accumulate);
    store_row(c + ldc, c10, c11, accumulate);
    store_row(c + 2 * ldc, c20, c21, accumulate);
    store_row(c + 3 * ldc, c30, c31, accumulate);
    store_row(c + 4 * ldc, c40, c41, accumulate);
    store_row(c + 5 * ldc, c50, c51, accumulate);
}

static const qkv_igemm_arch avx2_arch = {
    .name = "avx2",
    .needs = QKV_CPU_AVX2,
    .mr = MR,
    .nr = NR,
    .kgroup = 2,
    .a_elem_bytes = 2,
    .kc = 512,
    .mc = 60,
    .nc = 128,
    .tile = tile_avx2,
};

const qkv_igemm_arch *qkv_igemm_avx2_arch(void) { return &avx2_arch; }
#else
const qkv_igemm_arch *qkv_igemm_avx2_arch(void) { return NULL; }
#endif
