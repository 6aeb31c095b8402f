/*
 * attention_simd.c - the tile products of the fused attention kernel
 * (attention_core.c) as register-blocked micro-kernels: AVX2+FMA (6 x 16
 * blocks) and AVX-512 (8 x 32 blocks), and the packing of a K tile as K^T.
 * At 64 x 64 x 64 a BLAS call per tile spent much of its time in call
 * overhead and packing; these keep a tile in registers instead.
 *
 * Only the functions here carry target attributes (no global -march), and
 * attention_core.c calls them only after the CPU's features (cpu_features.h,
 * so QKV_ISA caps them) said the instructions are there. The row steps of
 * the online softmax (max, exp, scaling) are vecmath.h's.
 */
#include "attention_simd.h"

#if defined(QKV_ATTN_HAVE_MICROKERNELS)
#include <immintrin.h>
#include <stdint.h>
#include <string.h>

static size_t min_sz(size_t a, size_t b) { return a < b ? a : b; }

/*
 * Both tile products are C (m x n) = alpha * A (m x k) B (k x n) [+ D]:
 *   S = scale * Q_blk K_tile^T [+ bias]   A = Q rows, B = the K tile packed as
 *                                K^T (head_size x qkv_attn_pack_cols(bk),
 *                                zero-padded), D the additive mask's rows,
 *   O += P V_tile                A = P, B = V rows as they are, D = O.
 * A block is MR <= 6 rows x 16 columns: 12 ymm accumulators, two B loads and
 * MR broadcasts of A per step of k. Only these functions use AVX2/FMA
 * (target attributes, no global -march); qkv_attn_run calls them only after
 * the CPU's features (cpu_features.h) said both are there.
 */
#define MK_FN __attribute__((target("avx2,fma")))
#define MK_INLINE __attribute__((target("avx2,fma"), always_inline)) static inline
#define MK_MR 6

/* All-ones in the first n (0..8) of 8 int lanes. */
MK_INLINE __m256i mk_mask(size_t n)
{
    static const int32_t tbl[16] = {-1, -1, -1, -1, -1, -1, -1, -1, 0, 0, 0, 0, 0, 0, 0, 0};
    return _mm256_loadu_si256((const __m256i *)(tbl + 8 - n));
}

/* One block: rows [0, MR), columns [0, nc) of C, nc <= 16. b_full: B's 16
 * columns may all be read (a zero-padded pack, or nc == 16). */
MK_INLINE void mk_block(const size_t MR, size_t k, const float *restrict a, size_t lda,
                        const float *restrict b, size_t ldb, float *c, size_t ldc, size_t nc,
                        bool b_full, float alpha, const float *add, size_t ld_add)
{
    __m256 c0[MK_MR], c1[MK_MR];
#pragma GCC unroll 6
    for (size_t r = 0; r < MR; r++)
        c0[r] = c1[r] = _mm256_setzero_ps();
    __m256i m0 = mk_mask(nc < 8 ? nc : 8), m1 = mk_mask(nc > 8 ? nc - 8 : 0);
    if (b_full) {
        for (size_t p = 0; p < k; p++) {
            __m256 b0 = _mm256_loadu_ps(b + p * ldb), b1 = _mm256_loadu_ps(b + p * ldb + 8);
#pragma GCC unroll 6
            for (size_t r = 0; r < MR; r++) {
                __m256 av = _mm256_broadcast_ss(a + r * lda + p);
                c0[r] = _mm256_fmadd_ps(av, b0, c0[r]);
                c1[r] = _mm256_fmadd_ps(av, b1, c1[r]);
            }
        }
    } else {
        for (size_t p = 0; p < k; p++) {
            __m256 b0 = _mm256_maskload_ps(b + p * ldb, m0);
            __m256 b1 = _mm256_maskload_ps(b + p * ldb + 8, m1);
#pragma GCC unroll 6
            for (size_t r = 0; r < MR; r++) {
                __m256 av = _mm256_broadcast_ss(a + r * lda + p);
                c0[r] = _mm256_fmadd_ps(av, b0, c0[r]);
                c1[r] = _mm256_fmadd_ps(av, b1, c1[r]);
            }
        }
    }
    __m256 al = _mm256_set1_ps(alpha);
    if (nc == 16) {
#pragma GCC unroll 6
        for (size_t r = 0; r < MR; r++) {
            float *cr = c + r * ldc;
            __m256 x0 = _mm256_mul_ps(c0[r], al), x1 = _mm256_mul_ps(c1[r], al);
            if (add) {
                const float *ar = add + r * ld_add;
                x0 = _mm256_add_ps(x0, _mm256_loadu_ps(ar));
                x1 = _mm256_add_ps(x1, _mm256_loadu_ps(ar + 8));
            }
            _mm256_storeu_ps(cr, x0);
            _mm256_storeu_ps(cr + 8, x1);
        }
    } else {
#pragma GCC unroll 6
        for (size_t r = 0; r < MR; r++) {
            float *cr = c + r * ldc;
            __m256 x0 = _mm256_mul_ps(c0[r], al), x1 = _mm256_mul_ps(c1[r], al);
            if (add) {
                const float *ar = add + r * ld_add;
                x0 = _mm256_add_ps(x0, _mm256_maskload_ps(ar, m0));
                x1 = _mm256_add_ps(x1, _mm256_maskload_ps(ar + 8, m1));
            }
            _mm256_maskstore_ps(cr, m0, x0);
            _mm256_maskstore_ps(cr + 8, m1, x1);
        }
    }
}

/* Rows of the next block when `left` rows remain for blocks of at most mr
 * rows: the remainder is spread evenly over the blocks still needed (49
 * rows with mr 8 are 7 blocks of 7, not 6 of 8 and a lone row, whose
 * accumulators would wait on one another's FMA latency). */
static size_t block_rows(size_t left, size_t mr)
{
    size_t blocks = (left + mr - 1) / mr;
    return (left + blocks - 1) / blocks;
}

/* C = alpha * A B (+ add) for an m x n tile; b_padded: B has zero columns up
 * to the next multiple of 16 (the packed K^T). add (row stride ld_add, 0
 * broadcasts one row) is NULL or as wide as C; it may be C itself. */
MK_FN static void mk_gemm(size_t m, size_t n, size_t k, float alpha, const float *a, size_t lda,
                          const float *b, size_t ldb, bool b_padded, float *c, size_t ldc,
                          const float *add, size_t ld_add)
{
    for (size_t j = 0; j < n; j += 16) {
        size_t nc = min_sz(16, n - j);
        bool full = b_padded || nc == 16;
        for (size_t i = 0; i < m;) {
            size_t mr = block_rows(m - i, MK_MR);
            const float *ai = a + i * lda;
            float *ci = c + i * ldc + j;
            const float *di = add ? add + i * ld_add + j : NULL;
            switch (mr) {
            case 6:
                mk_block(6, k, ai, lda, b + j, ldb, ci, ldc, nc, full, alpha, di, ld_add);
                break;
            case 5:
                mk_block(5, k, ai, lda, b + j, ldb, ci, ldc, nc, full, alpha, di, ld_add);
                break;
            case 4:
                mk_block(4, k, ai, lda, b + j, ldb, ci, ldc, nc, full, alpha, di, ld_add);
                break;
            case 3:
                mk_block(3, k, ai, lda, b + j, ldb, ci, ldc, nc, full, alpha, di, ld_add);
                break;
            case 2:
                mk_block(2, k, ai, lda, b + j, ldb, ci, ldc, nc, full, alpha, di, ld_add);
                break;
            default:
                mk_block(1, k, ai, lda, b + j, ldb, ci, ldc, nc, full, alpha, di, ld_add);
                break;
            }
            i += mr;
        }
    }
}

/*
 * The same tile products with AVX-512: blocks of MR <= 8 rows x 32 columns
 * (16 zmm accumulators), the ragged columns handled by mask registers, so no
 * B column past n is read (masked-off lanes of a load never fault). A last
 * panel of at most 16 columns uses one vector per row (`two` false): a head
 * size of 36 is 32 + 4 columns, and the second 32-column panel would cost
 * as much as the first.
 */
#define MK512_TARGET "avx512f,avx512bw,avx512vl,avx512dq,avx2,fma"
#define MK512_FN __attribute__((target(MK512_TARGET)))
#define MK512_INLINE __attribute__((target(MK512_TARGET), always_inline)) static inline
#define MK512_MR 8

MK512_INLINE __mmask16 mk512_mask(size_t n) /* the first n (0..16) lanes */
{
    return n >= 16 ? (__mmask16)0xFFFF : (__mmask16)((1u << n) - 1u);
}

MK512_INLINE void mk512_block(const size_t MR, const bool two, size_t k, const float *restrict a,
                              size_t lda, const float *restrict b, size_t ldb, float *c, size_t ldc,
                              size_t nc, float alpha, const float *add, size_t ld_add)
{
    __m512 c0[MK512_MR], c1[MK512_MR];
#pragma GCC unroll 8
    for (size_t r = 0; r < MR; r++)
        c0[r] = c1[r] = _mm512_setzero_ps();
    __mmask16 m0 = mk512_mask(nc), m1 = mk512_mask(nc > 16 ? nc - 16 : 0);
    for (size_t p = 0; p < k; p++) {
        __m512 b0 = _mm512_maskz_loadu_ps(m0, b + p * ldb);
        __m512 b1 = two ? _mm512_maskz_loadu_ps(m1, b + p * ldb + 16) : b0;
#pragma GCC unroll 8
        for (size_t r = 0; r < MR; r++) {
            __m512 av = _mm512_set1_ps(a[r * lda + p]);
            c0[r] = _mm512_fmadd_ps(av, b0, c0[r]);
            if (two)
                c1[r] = _mm512_fmadd_ps(av, b1, c1[r]);
        }
    }
    __m512 al = _mm512_set1_ps(alpha);
#pragma GCC unroll 8
    for (size_t r = 0; r < MR; r++) {
        float *cr = c + r * ldc;
        __m512 x0 = _mm512_mul_ps(c0[r], al);
        if (add)
            x0 = _mm512_add_ps(x0, _mm512_maskz_loadu_ps(m0, add + r * ld_add));
        _mm512_mask_storeu_ps(cr, m0, x0);
        if (two) {
            __m512 x1 = _mm512_mul_ps(c1[r], al);
            if (add)
                x1 = _mm512_add_ps(x1, _mm512_maskz_loadu_ps(m1, add + r * ld_add + 16));
            _mm512_mask_storeu_ps(cr + 16, m1, x1);
        }
    }
}

/* One row block of mk512_gemm: mr (1..8) rows, `two` vectors per row. */
MK512_INLINE void mk512_rows(size_t mr, const bool two, size_t k, const float *a, size_t lda,
                             const float *b, size_t ldb, float *c, size_t ldc, size_t nc,
                             float alpha, const float *add, size_t ld_add)
{
    switch (mr) {
    case 8:
        mk512_block(8, two, k, a, lda, b, ldb, c, ldc, nc, alpha, add, ld_add);
        break;
    case 7:
        mk512_block(7, two, k, a, lda, b, ldb, c, ldc, nc, alpha, add, ld_add);
        break;
    case 6:
        mk512_block(6, two, k, a, lda, b, ldb, c, ldc, nc, alpha, add, ld_add);
        break;
    case 5:
        mk512_block(5, two, k, a, lda, b, ldb, c, ldc, nc, alpha, add, ld_add);
        break;
    case 4:
        mk512_block(4, two, k, a, lda, b, ldb, c, ldc, nc, alpha, add, ld_add);
        break;
    case 3:
        mk512_block(3, two, k, a, lda, b, ldb, c, ldc, nc, alpha, add, ld_add);
        break;
    case 2:
        mk512_block(2, two, k, a, lda, b, ldb, c, ldc, nc, alpha, add, ld_add);
        break;
    default:
        mk512_block(1, two, k, a, lda, b, ldb, c, ldc, nc, alpha, add, ld_add);
        break;
    }
}

/* mk_gemm with AVX-512 (B's padding is not needed: masks). */
MK512_FN static void mk512_gemm(size_t m, size_t n, size_t k, float alpha, const float *a,
                                size_t lda, const float *b, size_t ldb, float *c, size_t ldc,
                                const float *add, size_t ld_add)
{
    for (size_t j = 0; j < n; j += 32) {
        size_t nc = min_sz(32, n - j);
        for (size_t i = 0; i < m;) {
            size_t mr = block_rows(m - i, MK512_MR);
            const float *ai = a + i * lda;
            float *ci = c + i * ldc + j;
            const float *di = add ? add + i * ld_add + j : NULL;
            if (nc > 16)
                mk512_rows(mr, true, k, ai, lda, b + j, ldb, ci, ldc, nc, alpha, di, ld_add);
            else
                mk512_rows(mr, false, k, ai, lda, b + j, ldb, ci, ldc, nc, alpha, di, ld_add);
            i += mr;
        }
    }
}

/* The tile product on the widest kernel the run may use. */
MK_FN void qkv_attn_mk_tile_gemm(bool wide, size_t m, size_t n, size_t k, float alpha,
                                 const float *a, size_t lda, const float *b, size_t ldb,
                                 bool b_padded, float *c, size_t ldc, const float *add,
                                 size_t ld_add)
{
    if (wide)
        mk512_gemm(m, n, k, alpha, a, lda, b, ldb, c, ldc, add, ld_add);
    else
        mk_gemm(m, n, k, alpha, a, lda, b, ldb, b_padded, c, ldc, add, ld_add);
}

/* The output rows: out[x] = o[x] / l[x] (dv floats), zeros where l[x] is 0
 * (every key of the row excluded). AVX-512 lanes, masked tail. */
MK512_FN static void mk512_normalize(size_t rows, size_t dv, const float *o, const float *l,
                                     float *out, size_t ldo)
{
    for (size_t x = 0; x < rows; x++) {
        const float *src = o + x * dv;
        float *dst = out + x * ldo;
        if (!(l[x] > 0)) { /* zeros, even where o holds 0 * inf = NaN */
            memset(dst, 0, dv * sizeof *dst);
            continue;
        }
        __m512 f = _mm512_set1_ps(1.0f / l[x]);
        size_t j = 0;
        for (; j + 16 <= dv; j += 16)
            _mm512_storeu_ps(dst + j, _mm512_mul_ps(_mm512_loadu_ps(src + j), f));
        if (j < dv) {
            __mmask16 m = mk512_mask(dv - j);
            _mm512_mask_storeu_ps(dst + j, m, _mm512_mul_ps(_mm512_maskz_loadu_ps(m, src + j), f));
        }
    }
}

/* mk512_normalize with AVX2. */
MK_FN static void mk_normalize(size_t rows, size_t dv, const float *o, const float *l, float *out,
                               size_t ldo)
{
    for (size_t x = 0; x < rows; x++) {
        const float *src = o + x * dv;
        float *dst = out + x * ldo;
        if (!(l[x] > 0)) { /* zeros, even where o holds 0 * inf = NaN */
            memset(dst, 0, dv * sizeof *dst);
            continue;
        }
        __m256 f = _mm256_set1_ps(1.0f / l[x]);
        size_t j = 0;
        for (; j + 8 <= dv; j += 8)
            _mm256_storeu_ps(dst + j, _mm256_mul_ps(_mm256_loadu_ps(src + j), f));
        if (j < dv) {
            __m256i m = mk_mask(dv - j);
            _mm256_maskstore_ps(dst + j, m, _mm256_mul_ps(_mm256_maskload_ps(src + j, m), f));
        }
    }
}

MK_FN void qkv_attn_mk_normalize(bool wide, size_t rows, size_t dv, const float *o, const float *l,
                                 float *out, size_t ldo)
{
    if (wide)
        mk512_normalize(rows, dv, o, l, out, ldo);
    else
        mk_normalize(rows, dv, o, l, out, ldo);
}

/* kt (d x ldk) = the w key rows k[j * ss + p] transposed; columns [w,
 * qkv_attn_pack_cols(w)) are zeroed so a 16-column panel never reads garbage. */
MK_FN void qkv_attn_mk_pack_kt(const float *restrict k, size_t ss, size_t w, size_t d,
                               float *restrict kt, size_t ldk)
{
    size_t j = 0;
    for (; j + 8 <= w; j += 8) {
        size_t p = 0;
        for (; p + 8 <= d; p += 8) { /* 8 x 8 transpose in registers */
            __m256 r0 = _mm256_loadu_ps(k + (j + 0) * ss + p);
            __m256 r1 = _mm256_loadu_ps(k + (j + 1) * ss + p);
            __m256 r2 = _mm256_loadu_ps(k + (j + 2) * ss + p);
            __m256 r3 = _mm256_loadu_ps(k + (j + 3) * ss + p);
            __m256 r4 = _mm256_loadu_ps(k + (j + 4) * ss + p);
            __m256 r5 = _mm256_loadu_ps(k + (j + 5) * ss + p);
            __m256 r6 = _mm256_loadu_ps(k + (j + 6) * ss + p);
            __m256 r7 = _mm256_loadu_ps(k + (j + 7) * ss + p);
            __m256 t0 = _mm256_unpacklo_ps(r0, r1), t1 = _mm256_unpackhi_ps(r0, r1);
            __m256 t2 = _mm256_unpacklo_ps(r2, r3), t3 = _mm256_unpackhi_ps(r2, r3);
            __m256 t4 = _mm256_unpacklo_ps(r4, r5), t5 = _mm256_unpackhi_ps(r4, r5);
            __m256 t6 = _mm256_unpacklo_ps(r6, r7), t7 = _mm256_unpackhi_ps(r6, r7);
            __m256 u0 = _mm256_shuffle_ps(t0, t2, 0x44), u1 = _mm256_shuffle_ps(t0, t2, 0xEE);
            __m256 u2 = _mm256_shuffle_ps(t1, t3, 0x44), u3 = _mm256_shuffle_ps(t1, t3, 0xEE);
            __m256 u4 = _mm256_shuffle_ps(t4, t6, 0x44), u5 = _mm256_shuffle_ps(t4, t6, 0xEE);
            __m256 u6 = _mm256_shuffle_ps(t5, t7, 0x44), u7 = _mm256_shuffle_ps(t5, t7, 0xEE);
            float *o = kt + p * ldk + j;
            _mm256_storeu_ps(o + 0 * ldk, _mm256_permute2f128_ps(u0, u4, 0x20));
            _mm256_storeu_ps(o + 1 * ldk, _mm256_permute2f128_ps(u1, u5, 0x20));
            _mm256_storeu_ps(o + 2 * ldk, _mm256_permute2f128_ps(u2, u6, 0x20));
            _mm256_storeu_ps(o + 3 * ldk, _mm256_permute2f128_ps(u3, u7, 0x20));
            _mm256_storeu_ps(o + 4 * ldk, _mm256_permute2f128_ps(u0, u4, 0x31));
            _mm256_storeu_ps(o + 5 * ldk, _mm256_permute2f128_ps(u1, u5, 0x31));
            _mm256_storeu_ps(o + 6 * ldk, _mm256_permute2f128_ps(u2, u6, 0x31));
            _mm256_storeu_ps(o + 7 * ldk, _mm256_permute2f128_ps(u3, u7, 0x31));
        }
        for (; p < d; p++)
            for (size_t x = j; x < j + 8; x++)
                kt[p * ldk + x] = k[x * ss + p];
    }
    for (; j < w; j++)
        for (size_t p = 0; p < d; p++)
            kt[p * ldk + j] = k[j * ss + p];
    size_t wp = qkv_attn_pack_cols(w);
    if (wp > w)
        for (size_t p = 0; p < d; p++)
            memset(kt + p * ldk + w, 0, (wp - w) * sizeof *kt);
}
#endif /* QKV_ATTN_HAVE_MICROKERNELS */
