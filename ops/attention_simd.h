/*
 * attention_simd.h - the register-blocked tile products of the fused
 * attention kernel (attention_simd.c), for x86-64 with AVX2+FMA or AVX-512.
 * Both products of a tile are C (m x n) = alpha * A (m x k) B (k x n) [+ D]:
 *   S = scale * Q_blk K_tile^T [+ bias]   A = Q rows, B = the K tile packed
 *                                as K^T (head_size x qkv_attn_pack_cols(bk)),
 *                                D the additive mask's rows,
 *   O += P V_tile                A = P, B = V rows as they are, D = O.
 * Call these only when the CPU has the instructions (qkv_cpu_features_get).
 */
#ifndef QKV_ATTENTION_SIMD_H
#define QKV_ATTENTION_SIMD_H

#include <stdbool.h>
#include <stddef.h>

/* Columns of the packed K^T tile for a tile of bk keys: bk rounded up to the
 * 16 columns of one micro-kernel panel. */
static inline size_t qkv_attn_pack_cols(size_t bk) { return (bk + 15) & ~(size_t)15; }

#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
/* This build has the micro-kernels (x86-64, GCC or clang). */
#define QKV_ATTN_HAVE_MICROKERNELS 1

/*
 * kt (d x ldk) = the w key rows k[j * ss + p] (j < w, p < d) transposed;
 * columns [w, qkv_attn_pack_cols(w)) are zeroed so a 16-column panel never
 * reads garbage. AVX2+FMA.
 */
void qkv_attn_mk_pack_kt(const float *restrict k, size_t ss, size_t w, size_t d, float *restrict kt,
                         size_t ldk);

/*
 * C = alpha * A B (+ D) for an m x n tile (row strides lda, ldb, ldc).
 * add: D, NULL for none, else m x n floats at row stride ld_add (0: one row
 * for every row of C, as a mask broadcast over the queries); add may be c
 * itself (then ld_add == ldc: accumulate). b_padded: B has zero columns up
 * to the next multiple of 16 (the packed K^T), so whole panels may be read.
 * wide: the AVX-512 blocks (the CPU must have AVX-512), else the AVX2+FMA
 * ones. Neither B nor D is read past column n.
 */
void qkv_attn_mk_tile_gemm(bool wide, size_t m, size_t n, size_t k, float alpha, const float *a,
                           size_t lda, const float *b, size_t ldb, bool b_padded, float *c,
                           size_t ldc, const float *add, size_t ld_add);

/*
 * The last step of an item: output row x (out + x * ldo, dv floats) = the
 * un-normalised row o + x * dv divided by the row's sum l[x], or zeros when
 * l[x] is 0 (every key excluded: a zero row, not 0/0). wide: AVX-512 (the
 * CPU must have it), else AVX2.
 */
void qkv_attn_mk_normalize(bool wide, size_t rows, size_t dv, const float *o, const float *l,
                           float *out, size_t ldo);
#endif

#endif /* QKV_ATTENTION_SIMD_H */
