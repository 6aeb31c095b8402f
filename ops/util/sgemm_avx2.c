/*
 * sgemm_avx2.c - the AVX2/FMA micro-kernel of the float32 GEMM (sgemm.h):
 * a 6 x 16 tile in 12 ymm accumulators; each k step loads two vectors of the
 * B panel and broadcasts six values of the A sliver (12 FMAs to 8 loads, so
 * the two FMA ports stay busy).
 *
 * Compiled for AVX2 with a function attribute, not the whole file, so the
 * library still runs on baseline x86-64: sgemm.c calls it only when the CPU
 * and the OS have AVX2 and FMA (cpu_features.h).
 */
#include "sgemm.h"

#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
#include <immintrin.h>

#define MR 6
#define NR 16

#define AVX2_FN __attribute__((target("avx2,fma")))

/* Row i of the tile: c[i] = alpha * (acc0, acc1) + beta * c[i]. */
AVX2_FN static inline void store_row(float *c, __m256 acc0, __m256 acc1, __m256 va, float beta)
{
    acc0 = _mm256_mul_ps(acc0, va);
    acc1 = _mm256_mul_ps(acc1, va);
    if (beta != 0) {
        __m256 vb = _mm256_set1_ps(beta);
        acc0 = _mm256_fmadd_ps(vb, _mm256_loadu_ps(c), acc0);
        acc1 = _mm256_fmadd_ps(vb, _mm256_loadu_ps(c + 8), acc1);
    }
    _mm256_storeu_ps(c, acc0);
    _mm256_storeu_ps(c + 8, acc1);
}

#define FMA_ROW(i)                                                                                 \
    do {                                                                                           \
        __m256 a_ = _mm256_broadcast_ss(ap + (i));                                                 \
        c##i##0 = _mm256_fmadd_ps(a_, b0, c##i##0);                                                \
        c##i##1 = _mm256_fmadd_ps(a_, b1, c##i##1);                                                \
    } while (0)

AVX2_FN static void tile_avx2(size_t kc, const float *ap, const float *bp, float *c, size_t ldc,
                              float alpha, float beta)
{
    __m256 c00 = _mm256_setzero_ps(), c01 = c00, c10 = c00, c11 = c00, c20 = c00, c21 = c00;
    __m256 c30 = c00, c31 = c00, c40 = c00, c41 = c00, c50 = c00, c51 = c00;
    /* the C tile is written last: fetch it while the products run */
    for (size_t i = 0; i < MR; i++)
        _mm_prefetch((const char *)(c + i * ldc), _MM_HINT_T0);
#pragma GCC unroll 4
    for (size_t p = 0; p < kc; p++) {
        __m256 b0 = _mm256_loadu_ps(bp), b1 = _mm256_loadu_ps(bp + 8);
        FMA_ROW(0);
        FMA_ROW(1);
        FMA_ROW(2);
        FMA_ROW(3);
        FMA_ROW(4);
        FMA_ROW(5);
        ap += MR;
        bp += NR;
    }
    __m256 va = _mm256_set1_ps(alpha);
    store_row(c, c00, c01, va, beta);
    store_row(c + ldc, c10, c11, va, beta);
    store_row(c + 2 * ldc, c20, c21, va, beta);
    store_row(c + 3 * ldc, c30, c31, va, beta);
    store_row(c + 4 * ldc, c40, c41, va, beta);
    store_row(c + 5 * ldc, c50, c51, va, beta);
}

static const qkv_sgemm_arch avx2_arch = {
    .name = "avx2",
    .mr = MR,
    .nr = NR,
    .kc = 256,
    .mc = 96,
    .nc = 128,
    .tile = tile_avx2,
};

const qkv_sgemm_arch *qkv_sgemm_avx2_arch(void) { return &avx2_arch; }
#else
const qkv_sgemm_arch *qkv_sgemm_avx2_arch(void) { return NULL; }
#endif
