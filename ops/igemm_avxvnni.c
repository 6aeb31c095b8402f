/*
 * igemm_avxvnni.c - the AVX-VNNI micro-kernel of the int8 GEMM (igemm.h):
 * vpdpbusd on ymm (the VEX form, for CPUs with AVX-VNNI but no AVX-512, and
 * for QKV_ISA=avx2 on those with both): a 6 x 16 int32 tile in 12 ymm
 * accumulators; each k-group of four loads two 32-byte vectors of the B
 * panel, broadcasts six 4-byte groups of A and issues 12 vpdpbusd.
 *
 * Compiled for AVX-VNNI with a function attribute, not the whole file;
 * igemm.c calls it only when host->cpu_features() has AVX-VNNI.
 */
#include <string.h>

#include "igemm_arch.h"

#if defined(__x86_64__) && ((defined(__GNUC__) && __GNUC__ >= 11) || \
                            (defined(__clang__) && __clang_major__ >= 12))
#include <immintrin.h>

#define MR 6
#define NR 16

#define AVXVNNI_FN __attribute__((target("avx2,avxvnni")))

AVXVNNI_FN static inline __m256i bcast4(const uint8_t *p)
{
    int32_t v;
    memcpy(&v, p, sizeof v);
    return _mm256_set1_epi32(v);
}

AVXVNNI_FN static inline void store_row(int32_t *c, __m256i acc0, __m256i acc1, bool accumulate)
{
    if (accumulate) {
        acc0 = _mm256_add_epi32(acc0, _mm256_loadu_si256((const __m256i *)c));
        acc1 = _mm256_add_epi32(acc1, _mm256_loadu_si256((const __m256i *)(c + 8)));
    }
    _mm256_storeu_si256((__m256i *)c, acc0);
    _mm256_storeu_si256((__m256i *)(c + 8), acc1);
}

#define DP_ROW(i)                                                                          \
    do {                                                                                   \
        __m256i a_ = bcast4(ap + 4 * (i));                                                  \
        c##i##0 = _mm256_dpbusd_avx_epi32(c##i##0, a_, b0);                                \
        c##i##1 = _mm256_dpbusd_avx_epi32(c##i##1, a_, b1);                                \
    } while (0)

AVXVNNI_FN static void tile_avxvnni(size_t groups, const void *ap_, const int8_t *bp, int32_t *c,
                                    size_t ldc, bool accumulate)
{
    const uint8_t *ap = ap_;
    __m256i c00 = _mm256_setzero_si256(), c01 = c00, c10 = c00, c11 = c00, c20 = c00;
    __m256i c21 = c00, c30 = c00, c31 = c00, c40 = c00, c41 = c00, c50 = c00, c51 = c00;
#pragma GCC unroll 2
    for (size_t g = 0; g < groups; g++) {
        __m256i b0 = _mm256_loadu_si256((const __m256i *)bp);
        __m256i b1 = _mm256_loadu_si256((const __m256i *)(bp + 32));
        DP_ROW(0);
        DP_ROW(1);
        DP_ROW(2);
        DP_ROW(3);
        DP_ROW(4);
        DP_ROW(5);
        ap += MR * 4;
        bp += NR * 4;
    }
    store_row(c, c00, c01, accumulate);
    store_row(c + ldc, c10, c11, accumulate);
    store_row(c + 2 * ldc, c20, c21, accumulate);
    store_row(c + 3 * ldc, c30, c31, accumulate);
    store_row(c + 4 * ldc, c40, c41, accumulate);
    store_row(c + 5 * ldc, c50, c51, accumulate);
}

static const qkv_igemm_arch avxvnni_arch = {
    .name = "avxvnni", .needs = QKV_CPU_AVX2 | QKV_CPU_AVX_VNNI, .mr = MR, .nr = NR,
    .kgroup = 4, .a_elem_bytes = 1, .kc = 512, .mc = 96, .nc = 128, .tile = tile_avxvnni,
};

const qkv_igemm_arch *qkv_igemm_avxvnni_arch(void)
{
    return &avxvnni_arch;
}
#else
const qkv_igemm_arch *qkv_igemm_avxvnni_arch(void)
{
    return NULL;
}
#endif
