/*
 * igemm_avx512vnni.c - the AVX512-VNNI micro-kernel of the int8 GEMM
 * (igemm.h): an 8 x 32 int32 tile in 16 zmm accumulators; each k-group of
 * four loads two 64-byte vectors of the B panel (32 columns x 4 int8),
 * broadcasts eight 4-byte groups of the A sliver and issues 16 vpdpbusd
 * (1,024 multiply-adds).
 *
 * Compiled for AVX-512 with a function attribute, not the whole file;
 * igemm.c calls it only when host->cpu_features() has AVX512-VNNI.
 */
#include <string.h>

#include "igemm_arch.h"

#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
#include <immintrin.h>

#define MR 8
#define NR 32

#define VNNI512_FN __attribute__((target("avx512f,avx512bw,avx512vl,avx512vnni")))

VNNI512_FN static inline __m512i bcast4(const uint8_t *p)
{
    int32_t v;
    memcpy(&v, p, sizeof v);
    return _mm512_set1_epi32(v);
}

VNNI512_FN static inline void store_row(int32_t *c, __m512i acc0, __m512i acc1, bool accumulate)
{
    if (accumulate) {
        acc0 = _mm512_add_epi32(acc0, _mm512_loadu_si512((const void *)c));
        acc1 = _mm512_add_epi32(acc1, _mm512_loadu_si512((const void *)(c + 16)));
    }
    _mm512_storeu_si512((void *)c, acc0);
    _mm512_storeu_si512((void *)(c + 16), acc1);
}

#define DP_ROW(i)                                                                          \
    do {                                                                                   \
        __m512i a_ = bcast4(ap + 4 * (i));                                                  \
        c##i##0 = _mm512_dpbusd_epi32(c##i##0, a_, b0);                                    \
        c##i##1 = _mm512_dpbusd_epi32(c##i##1, a_, b1);                                    \
    } while (0)

VNNI512_FN static void tile_avx512vnni(size_t groups, const void *ap_, const int8_t *bp,
                                       int32_t *c, size_t ldc, bool accumulate)
{
    const uint8_t *ap = ap_;
    __m512i c00 = _mm512_setzero_si512(), c01 = c00, c10 = c00, c11 = c00, c20 = c00;
    __m512i c21 = c00, c30 = c00, c31 = c00, c40 = c00, c41 = c00, c50 = c00, c51 = c00;
    __m512i c60 = c00, c61 = c00, c70 = c00, c71 = c00;
#pragma GCC unroll 2
    for (size_t g = 0; g < groups; g++) {
        __m512i b0 = _mm512_loadu_si512((const void *)bp);
        __m512i b1 = _mm512_loadu_si512((const void *)(bp + 64));
        DP_ROW(0);
        DP_ROW(1);
        DP_ROW(2);
        DP_ROW(3);
        DP_ROW(4);
        DP_ROW(5);
        DP_ROW(6);
        DP_ROW(7);
        ap += MR * 4;
        bp += NR * 4;
    }
    store_row(c, c00, c01, accumulate);
    store_row(c + ldc, c10, c11, accumulate);
    store_row(c + 2 * ldc, c20, c21, accumulate);
    store_row(c + 3 * ldc, c30, c31, accumulate);
    store_row(c + 4 * ldc, c40, c41, accumulate);
    store_row(c + 5 * ldc, c50, c51, accumulate);
    store_row(c + 6 * ldc, c60, c61, accumulate);
    store_row(c + 7 * ldc, c70, c71, accumulate);
}

static const qkv_igemm_arch avx512vnni_arch = {
    .name = "avx512vnni", .needs = QKV_CPU_AVX512 | QKV_CPU_AVX512_VNNI, .mr = MR, .nr = NR,
    .kgroup = 4, .a_elem_bytes = 1, .kc = 512, .mc = 96, .nc = 128, .tile = tile_avx512vnni,
};

const qkv_igemm_arch *qkv_igemm_avx512vnni_arch(void)
{
    return &avx512vnni_arch;
}
#else
const qkv_igemm_arch *qkv_igemm_avx512vnni_arch(void)
{
    return NULL;
}
#endif
