/*
 * sgemm_avx512.c - the AVX-512 micro-kernel of the float32 GEMM (sgemm.h):
 * an 8 x 32 tile in 16 zmm accumulators; each k step loads two vectors of
 * the B panel and broadcasts eight values of the A sliver (16 FMAs to 10
 * loads).
 *
 * Compiled for AVX-512 with a function attribute, not the whole file;
 * sgemm.c calls it only when the CPU and the OS have AVX-512 F/BW/VL/DQ
 * (cpu_features.h).
 */
#include "sgemm.h"

#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
#include <immintrin.h>

#define MR 8
#define NR 32

#define AVX512_FN __attribute__((target("avx512f,avx512bw,avx512vl,avx512dq,avx2,fma")))

AVX512_FN static inline void store_row(float *c, __m512 acc0, __m512 acc1, __m512 va, float beta)
{
    acc0 = _mm512_mul_ps(acc0, va);
    acc1 = _mm512_mul_ps(acc1, va);
    if (beta != 0) {
        __m512 vb = _mm512_set1_ps(beta);
        acc0 = _mm512_fmadd_ps(vb, _mm512_loadu_ps(c), acc0);
        acc1 = _mm512_fmadd_ps(vb, _mm512_loadu_ps(c + 16), acc1);
    }
    _mm512_storeu_ps(c, acc0);
    _mm512_storeu_ps(c + 16, acc1);
}

#define FMA_ROW(i)                                                                                 \
    do {                                                                                           \
        __m512 a_ = _mm512_set1_ps(ap[(i)]);                                                       \
        c##i##0 = _mm512_fmadd_ps(a_, b0, c##i##0);                                                \
        c##i##1 = _mm512_fmadd_ps(a_, b1, c##i##1);                                                \
    } while (0)

AVX512_FN static void tile_avx512(size_t kc, const float *ap, const float *bp, float *c, size_t ldc,
                                  float alpha, float beta)
{
    __m512 c00 = _mm512_setzero_ps(), c01 = c00, c10 = c00, c11 = c00, c20 = c00, c21 = c00;
    __m512 c30 = c00, c31 = c00, c40 = c00, c41 = c00, c50 = c00, c51 = c00;
    __m512 c60 = c00, c61 = c00, c70 = c00, c71 = c00;
    /* the C tile is written last: fetch it while the products run */
    for (size_t i = 0; i < MR; i++)
        _mm_prefetch((const char *)(c + i * ldc), _MM_HINT_T0);
#pragma GCC unroll 4
    for (size_t p = 0; p < kc; p++) {
        __m512 b0 = _mm512_loadu_ps(bp), b1 = _mm512_loadu_ps(bp + 16);
        FMA_ROW(0);
        FMA_ROW(1);
        FMA_ROW(2);
        FMA_ROW(3);
        FMA_ROW(4);
        FMA_ROW(5);
        FMA_ROW(6);
        FMA_ROW(7);
        ap += MR;
        bp += NR;
    }
    __m512 va = _mm512_set1_ps(alpha);
    store_row(c, c00, c01, va, beta);
    store_row(c + ldc, c10, c11, va, beta);
    store_row(c + 2 * ldc, c20, c21, va, beta);
    store_row(c + 3 * ldc, c30, c31, va, beta);
    store_row(c + 4 * ldc, c40, c41, va, beta);
    store_row(c + 5 * ldc, c50, c51, va, beta);
    store_row(c + 6 * ldc, c60, c61, va, beta);
    store_row(c + 7 * ldc, c70, c71, va, beta);
}

static const qkv_sgemm_arch avx512_arch = {
    .name = "avx512",
    .mr = MR,
    .nr = NR,
    .kc = 256,
    .mc = 96,
    .nc = 128,
    .tile = tile_avx512,
};

const qkv_sgemm_arch *qkv_sgemm_avx512_arch(void) { return &avx512_arch; }
#else
const qkv_sgemm_arch *qkv_sgemm_avx512_arch(void) { return NULL; }
#endif
