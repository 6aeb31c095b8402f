/*
 * attention_core.c - the fused (online-softmax, tiled) attention kernel; see
 * attention_core.h for what it computes and its scratch formula.
 *
 * Work items are (b, h, query block). They are dealt round-robin to
 * `workers` slots (slot t takes items t, t + workers, ...), so with a causal
 * mask the cheap early blocks and the expensive late blocks spread evenly;
 * parallel_for runs over the slots, and a slot owns its scratch, so no two
 * threads ever share a buffer whatever chunks the pool hands out.
 *
 * Per item: O, m, l are reset; for each key tile S = scale * Q_blk K_tile^T
 * (GEMM or micro-kernel), then each row of S gets softcap, bias and exclusions, its max
 * updates m, S becomes P = exp(S - m), l and O are rescaled when m grew, and
 * O += P V_tile (GEMM with beta 1, or micro-kernel). Finally out = O / l (0 when l == 0: every
 * key of the row was excluded).
 *
 * Tiles past the last key any row of the block may see (causal frontier,
 * key_limit, hard kv_valid) are trimmed or skipped, unless the score output
 * needs them.
 *
 * With AVX2 and FMA (cpu_features.h, so QKV_ISA can cap it; only the
 * mk_* functions carry target("avx2,fma"), so no -march flag is needed) the
 * two tile products are the register-blocked micro-kernels mk_gemm (6 x 16
 * blocks; 8 x 32 with AVX-512, mk512_gemm; K tile packed as K^T by mk_pack_kt): at 64 x 64 x 64 a cblas call
 * per tile spent much of its time in call overhead and packing. The row
 * max, exp and the O rescales then use 8 lanes too (mk_exp8 is exp4's
 * scheme with FMA). Otherwise, or with args.force_gemm, the tile GEMMs go
 * through qkv_blas_gemm_run (host->gemm: a backend such as
 * OpenBLAS, or the portable C GEMM). Called from inside a worker, the host's
 * own parallel_for runs inline (the pool is busy), so a tile GEMM stays on
 * its worker; with a single worker (one scratch slot) the host may spread a
 * tile GEMM over the pool instead.
 *
 * On the GEMM path, the row max and exp(s - m) with its sum are the only
 * per-score work left
 * once the GEMMs are fast (with OpenBLAS they were half the time, glibc's
 * scalar expf alone a fifth), so on x86-64 they use SSE2 (part of the
 * baseline ABI, no -march needed): four lanes and a polynomial exp (the
 * Cephes expf scheme, ~1 ulp, flushed to 0 below exp(-87)). Elsewhere they
 * are plain loops over expf.
 */
#include "attention_core.h"

#include <math.h>
#include <stdatomic.h>
#include <string.h>

#if defined(__SSE2__)
#include <emmintrin.h>
#endif
#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
#include <immintrin.h>
#define QKV_ATTN_HAVE_AVX2_PATH 1
#endif

#include "blas.h"
#include "cpu_features.h"

static size_t align64(size_t bytes)
{
    return (bytes + 63) & ~(size_t)63;
}

static size_t min_sz(size_t a, size_t b)
{
    return a < b ? a : b;
}

void qkv_attn_args_init(qkv_attn_args *a)
{
    memset(a, 0, sizeof *a);
    a->drop_value = -INFINITY;
    a->key_limit = SIZE_MAX;
    a->keep_type = QKV_ATTN_KEEP_NONE;
    a->qk_stage = QKV_ATTN_QK_SCALED;
}

size_t qkv_attn_kv_len(const qkv_attn_args *a)
{
    size_t t = 0;
    for (size_t s = 0; s < a->n_segments; s++)
        t += a->seg[s].len;
    return t;
}

/* Columns of the packed K^T tile: the tile width rounded up to the 16 columns
 * of one micro-kernel panel. */
static size_t pack_cols(size_t bk)
{
    return (bk + 15) & ~(size_t)15;
}

bool qkv_attn_uses_microkernel(const qkv_attn_args *a)
{
#if defined(QKV_ATTN_HAVE_AVX2_PATH)
    if (a->force_gemm)
        return false;
    return (qkv_cpu_features_get() & QKV_CPU_AVX2) != 0; /* AVX2 implies FMA there */
#else
    (void)a;
    return false;
#endif
}

/* Largest query block and key tile for a. */
static void block_sizes(const qkv_attn_args *a, size_t *bq, size_t *bk)
{
    size_t t = qkv_attn_kv_len(a);
    *bq = min_sz(QKV_ATTN_BLOCK_Q, a->q_len);
    *bk = min_sz(QKV_ATTN_BLOCK_K, t);
    if (*bk == 0)
        *bk = 1; /* keeps the slot layout valid for an empty key axis */
}

size_t qkv_attn_slot_bytes(const qkv_attn_args *a)
{
    if (a->q_len == 0 || a->batch == 0 || a->q_heads == 0)
        return 0;
    size_t bq, bk;
    block_sizes(a, &bq, &bk);
    /* bq, bk <= 64 and head sizes <= INT_MAX (qkv_attn_check): no overflow */
    size_t bytes = align64(sizeof(float) * bq * bk) + align64(sizeof(float) * bq * a->v_head_size) +
                   2 * align64(sizeof(float) * bq);
    if (qkv_attn_uses_microkernel(a))
        bytes += align64(sizeof(float) * a->head_size * pack_cols(bk));
    return bytes;
}

bool qkv_attn_scratch_bytes(const qkv_attn_args *a, size_t threads, size_t *bytes)
{
    size_t slots = threads > QKV_ATTN_MIN_SLOTS ? threads : QKV_ATTN_MIN_SLOTS;
    return !__builtin_mul_overflow(qkv_attn_slot_bytes(a), slots, bytes);
}

qkv_status qkv_attn_check(qkv_kernel_io *io, const qkv_attn_args *a)
{
    if (a->kv_heads == 0 || a->q_heads % a->kv_heads != 0)
        return KERR(io, QKV_ERR_SHAPE, "%zu query heads are not a multiple of %zu key/value heads",
                    a->q_heads, a->kv_heads);
    if (a->n_segments > QKV_ATTN_MAX_SEGMENTS)
        return KERR(io, QKV_ERR_INTERNAL, "attention over %zu key segments", a->n_segments);
    size_t bq, bk;
    block_sizes(a, &bq, &bk);
    for (size_t s = 0; s < a->n_segments; s++) {
        const qkv_attn_segment *g = &a->seg[s];
        qkv_blas_gemm qk = {.dtype = QKV_DTYPE_FLOAT, .trans_b = true, .m = bq, .n = bk,
                            .k = a->head_size, .lda = a->q.ss, .ldb = g->k.ss, .ldc = bk};
        qkv_blas_gemm pv = {.dtype = QKV_DTYPE_FLOAT, .m = bq, .n = a->v_head_size, .k = bk,
                            .lda = bk, .ldb = g->v.ss, .ldc = a->v_head_size};
        if (!qkv_blas_gemm_fits(&qk) || !qkv_blas_gemm_fits(&pv))
            return KERR(io, QKV_ERR_UNSUPPORTED,
                        "attention operands too large for BLAS (head size %zu, value head size "
                        "%zu, row strides %zu/%zu/%zu)",
                        a->head_size, a->v_head_size, a->q.ss, g->k.ss, g->v.ss);
    }
    return QKV_OK;
}

/* ---- row primitives ----------------------------------------------------------- */

#if defined(__SSE2__)
/* exp of four floats <= 0 (the only inputs here: s - max); 0 below -87. */
static inline __m128 exp4(__m128 x)
{
    const __m128 lo = _mm_set1_ps(-87.0f);
    __m128 zero_mask = _mm_cmplt_ps(x, lo); /* also catches -inf */
    x = _mm_max_ps(x, lo);
    /* n = round(x / ln 2), r = x - n ln 2 (ln 2 split in two for precision) */
    __m128 fx = _mm_add_ps(_mm_mul_ps(x, _mm_set1_ps(1.44269504088896341f)), _mm_set1_ps(0.5f));
    __m128i ti = _mm_cvttps_epi32(fx);
    __m128 tf = _mm_cvtepi32_ps(ti);
    __m128 adj = _mm_and_ps(_mm_cmpgt_ps(tf, fx), _mm_set1_ps(1.0f)); /* floor for fx < 0 */
    fx = _mm_sub_ps(tf, adj);
    x = _mm_sub_ps(x, _mm_mul_ps(fx, _mm_set1_ps(0.693359375f)));
    x = _mm_sub_ps(x, _mm_mul_ps(fx, _mm_set1_ps(-2.12194440e-4f)));
    __m128 z = _mm_mul_ps(x, x);
    __m128 y = _mm_set1_ps(1.9875691500e-4f);
    y = _mm_add_ps(_mm_mul_ps(y, x), _mm_set1_ps(1.3981999507e-3f));
    y = _mm_add_ps(_mm_mul_ps(y, x), _mm_set1_ps(8.3334519073e-3f));
    y = _mm_add_ps(_mm_mul_ps(y, x), _mm_set1_ps(4.1665795894e-2f));
    y = _mm_add_ps(_mm_mul_ps(y, x), _mm_set1_ps(1.6666665459e-1f));
    y = _mm_add_ps(_mm_mul_ps(y, x), _mm_set1_ps(5.0000001201e-1f));
    y = _mm_add_ps(_mm_mul_ps(y, z), _mm_add_ps(x, _mm_set1_ps(1.0f)));
    /* * 2^n: n in [-126, 0] here, so (n + 127) << 23 is a normal float */
    __m128i n = _mm_cvttps_epi32(fx);
    __m128 pow2n = _mm_castsi128_ps(_mm_slli_epi32(_mm_add_epi32(n, _mm_set1_epi32(127)), 23));
    return _mm_andnot_ps(zero_mask, _mm_mul_ps(y, pow2n));
}
#endif

/* The largest of s[0..n); -inf when n == 0. */
static float row_max(const float *restrict s, size_t n)
{
    float mx = -INFINITY;
    size_t c = 0;
#if defined(__SSE2__)
    if (n >= 4) {
        __m128 m4 = _mm_loadu_ps(s);
        for (c = 4; c + 4 <= n; c += 4)
            m4 = _mm_max_ps(m4, _mm_loadu_ps(s + c));
        float lanes[4];
        _mm_storeu_ps(lanes, m4);
        for (int k = 0; k < 4; k++)
            mx = lanes[k] > mx ? lanes[k] : mx;
    }
#endif
    for (; c < n; c++)
        mx = s[c] > mx ? s[c] : mx;
    return mx;
}

/* s[c] = exp(s[c] - m) for c < n (m finite, s[c] <= m or -inf); returns
 * the sum of the new s. */
static float row_exp(float *restrict s, size_t n, float m)
{
    float sum = 0;
    size_t c = 0;
#if defined(__SSE2__)
    __m128 m4 = _mm_set1_ps(m), acc = _mm_setzero_ps();
    for (; c + 4 <= n; c += 4) {
        __m128 p = exp4(_mm_sub_ps(_mm_loadu_ps(s + c), m4));
        _mm_storeu_ps(s + c, p);
        acc = _mm_add_ps(acc, p);
    }
    float lanes[4];
    _mm_storeu_ps(lanes, acc);
    sum = (lanes[0] + lanes[1]) + (lanes[2] + lanes[3]);
#endif
    for (; c < n; c++) {
        float p = expf(s[c] - m);
        s[c] = p;
        sum += p;
    }
    return sum;
}


/* ---- AVX2+FMA tile micro-kernels -------------------------------------------- */

#if defined(QKV_ATTN_HAVE_AVX2_PATH)
/*
 * Both tile products are C (m x n) = alpha * A (m x k) B (k x n) [+ C]:
 *   S = scale * Q_blk K_tile^T   A = Q rows, B = the K tile packed as K^T
 *                                (head_size x pack_cols(bk), zero-padded),
 *   O += P V_tile                A = P, B = V rows as they are.
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
                        const float *restrict b, size_t ldb, float *restrict c, size_t ldc,
                        size_t nc, bool b_full, float alpha, bool acc)
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
            if (acc) {
                x0 = _mm256_add_ps(x0, _mm256_loadu_ps(cr));
                x1 = _mm256_add_ps(x1, _mm256_loadu_ps(cr + 8));
            }
            _mm256_storeu_ps(cr, x0);
            _mm256_storeu_ps(cr + 8, x1);
        }
    } else {
#pragma GCC unroll 6
        for (size_t r = 0; r < MR; r++) {
            float *cr = c + r * ldc;
            __m256 x0 = _mm256_mul_ps(c0[r], al), x1 = _mm256_mul_ps(c1[r], al);
            if (acc) {
                x0 = _mm256_add_ps(x0, _mm256_maskload_ps(cr, m0));
                x1 = _mm256_add_ps(x1, _mm256_maskload_ps(cr + 8, m1));
            }
            _mm256_maskstore_ps(cr, m0, x0);
            _mm256_maskstore_ps(cr + 8, m1, x1);
        }
    }
}

/* C = alpha * A B (+ C when acc) for an m x n tile; b_padded: B has zero
 * columns up to the next multiple of 16 (the packed K^T). */
MK_FN static void mk_gemm(size_t m, size_t n, size_t k, float alpha, const float *a, size_t lda,
                          const float *b, size_t ldb, bool b_padded, float *c, size_t ldc,
                          bool acc)
{
    for (size_t j = 0; j < n; j += 16) {
        size_t nc = min_sz(16, n - j);
        bool full = b_padded || nc == 16;
        size_t i = 0;
        for (; i + MK_MR <= m; i += MK_MR)
            mk_block(6, k, a + i * lda, lda, b + j, ldb, c + i * ldc + j, ldc, nc, full, alpha, acc);
        const float *ai = a + i * lda;
        float *ci = c + i * ldc + j;
        switch (m - i) {
        case 5: mk_block(5, k, ai, lda, b + j, ldb, ci, ldc, nc, full, alpha, acc); break;
        case 4: mk_block(4, k, ai, lda, b + j, ldb, ci, ldc, nc, full, alpha, acc); break;
        case 3: mk_block(3, k, ai, lda, b + j, ldb, ci, ldc, nc, full, alpha, acc); break;
        case 2: mk_block(2, k, ai, lda, b + j, ldb, ci, ldc, nc, full, alpha, acc); break;
        case 1: mk_block(1, k, ai, lda, b + j, ldb, ci, ldc, nc, full, alpha, acc); break;
        default: break;
        }
    }
}

/*
 * The same tile products with AVX-512: blocks of MR <= 8 rows x 32 columns
 * (16 zmm accumulators), the ragged columns handled by mask registers, so no
 * B column past n is read (masked-off lanes of a load never fault).
 */
#define MK512_TARGET "avx512f,avx512bw,avx512vl,avx512dq,avx2,fma"
#define MK512_FN __attribute__((target(MK512_TARGET)))
#define MK512_INLINE __attribute__((target(MK512_TARGET), always_inline)) static inline
#define MK512_MR 8

MK512_INLINE __mmask16 mk512_mask(size_t n) /* the first n (0..16) lanes */
{
    return n >= 16 ? (__mmask16)0xFFFF : (__mmask16)((1u << n) - 1u);
}

MK512_INLINE void mk512_block(const size_t MR, size_t k, const float *restrict a, size_t lda,
                              const float *restrict b, size_t ldb, float *restrict c,
                              size_t ldc, size_t nc, float alpha, bool acc)
{
    __m512 c0[MK512_MR], c1[MK512_MR];
#pragma GCC unroll 8
    for (size_t r = 0; r < MR; r++)
        c0[r] = c1[r] = _mm512_setzero_ps();
    __mmask16 m0 = mk512_mask(nc), m1 = mk512_mask(nc > 16 ? nc - 16 : 0);
    for (size_t p = 0; p < k; p++) {
        __m512 b0 = _mm512_maskz_loadu_ps(m0, b + p * ldb);
        __m512 b1 = _mm512_maskz_loadu_ps(m1, b + p * ldb + 16);
#pragma GCC unroll 8
        for (size_t r = 0; r < MR; r++) {
            __m512 av = _mm512_set1_ps(a[r * lda + p]);
            c0[r] = _mm512_fmadd_ps(av, b0, c0[r]);
            c1[r] = _mm512_fmadd_ps(av, b1, c1[r]);
        }
    }
    __m512 al = _mm512_set1_ps(alpha);
#pragma GCC unroll 8
    for (size_t r = 0; r < MR; r++) {
        float *cr = c + r * ldc;
        __m512 x0 = _mm512_mul_ps(c0[r], al), x1 = _mm512_mul_ps(c1[r], al);
        if (acc) {
            x0 = _mm512_add_ps(x0, _mm512_maskz_loadu_ps(m0, cr));
            x1 = _mm512_add_ps(x1, _mm512_maskz_loadu_ps(m1, cr + 16));
        }
        _mm512_mask_storeu_ps(cr, m0, x0);
        _mm512_mask_storeu_ps(cr + 16, m1, x1);
    }
}

/* mk_gemm with AVX-512 (B's padding is not needed: masks). */
MK512_FN static void mk512_gemm(size_t m, size_t n, size_t k, float alpha, const float *a,
                                size_t lda, const float *b, size_t ldb, float *c, size_t ldc,
                                bool acc)
{
    for (size_t j = 0; j < n; j += 32) {
        size_t nc = min_sz(32, n - j);
        size_t i = 0;
        for (; i + MK512_MR <= m; i += MK512_MR)
            mk512_block(8, k, a + i * lda, lda, b + j, ldb, c + i * ldc + j, ldc, nc, alpha, acc);
        const float *ai = a + i * lda;
        float *ci = c + i * ldc + j;
        switch (m - i) {
        case 7: mk512_block(7, k, ai, lda, b + j, ldb, ci, ldc, nc, alpha, acc); break;
        case 6: mk512_block(6, k, ai, lda, b + j, ldb, ci, ldc, nc, alpha, acc); break;
        case 5: mk512_block(5, k, ai, lda, b + j, ldb, ci, ldc, nc, alpha, acc); break;
        case 4: mk512_block(4, k, ai, lda, b + j, ldb, ci, ldc, nc, alpha, acc); break;
        case 3: mk512_block(3, k, ai, lda, b + j, ldb, ci, ldc, nc, alpha, acc); break;
        case 2: mk512_block(2, k, ai, lda, b + j, ldb, ci, ldc, nc, alpha, acc); break;
        case 1: mk512_block(1, k, ai, lda, b + j, ldb, ci, ldc, nc, alpha, acc); break;
        default: break;
        }
    }
}

/* The tile product on the widest kernel the run may use. */
MK_FN static void mk_tile_gemm(bool wide, size_t m, size_t n, size_t k, float alpha,
                               const float *a, size_t lda, const float *b, size_t ldb,
                               bool b_padded, float *c, size_t ldc, bool acc)
{
    if (wide)
        mk512_gemm(m, n, k, alpha, a, lda, b, ldb, c, ldc, acc);
    else
        mk_gemm(m, n, k, alpha, a, lda, b, ldb, b_padded, c, ldc, acc);
}

/* kt (d x ldk) = the w key rows k[j * ss + p] transposed; columns [w,
 * pack_cols(w)) are zeroed so a 16-column panel never reads garbage. */
MK_FN static void mk_pack_kt(const float *restrict k, size_t ss, size_t w, size_t d,
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
    size_t wp = pack_cols(w);
    if (wp > w)
        for (size_t p = 0; p < d; p++)
            memset(kt + p * ldk + w, 0, (wp - w) * sizeof *kt);
}

/* exp of eight floats <= 0 (s - max), the scheme of exp4 with FMA; 0 below -87. */
MK_INLINE __m256 mk_exp8(__m256 x)
{
    const __m256 lo = _mm256_set1_ps(-87.0f);
    __m256 zero_mask = _mm256_cmp_ps(x, lo, _CMP_LT_OQ); /* also catches -inf */
    x = _mm256_max_ps(x, lo);
    __m256 fx = _mm256_floor_ps(
        _mm256_fmadd_ps(x, _mm256_set1_ps(1.44269504088896341f), _mm256_set1_ps(0.5f)));
    x = _mm256_fnmadd_ps(fx, _mm256_set1_ps(0.693359375f), x);
    x = _mm256_fnmadd_ps(fx, _mm256_set1_ps(-2.12194440e-4f), x);
    __m256 z = _mm256_mul_ps(x, x);
    __m256 y = _mm256_set1_ps(1.9875691500e-4f);
    y = _mm256_fmadd_ps(y, x, _mm256_set1_ps(1.3981999507e-3f));
    y = _mm256_fmadd_ps(y, x, _mm256_set1_ps(8.3334519073e-3f));
    y = _mm256_fmadd_ps(y, x, _mm256_set1_ps(4.1665795894e-2f));
    y = _mm256_fmadd_ps(y, x, _mm256_set1_ps(1.6666665459e-1f));
    y = _mm256_fmadd_ps(y, x, _mm256_set1_ps(5.0000001201e-1f));
    y = _mm256_fmadd_ps(y, z, _mm256_add_ps(x, _mm256_set1_ps(1.0f)));
    __m256i n = _mm256_cvttps_epi32(fx);
    __m256 pow2n = _mm256_castsi256_ps(
        _mm256_slli_epi32(_mm256_add_epi32(n, _mm256_set1_epi32(127)), 23));
    return _mm256_andnot_ps(zero_mask, _mm256_mul_ps(y, pow2n));
}

/* row_max with eight lanes. */
MK_FN static float mk_row_max(const float *restrict s, size_t n)
{
    float mx = -INFINITY;
    size_t c = 0;
    if (n >= 8) {
        __m256 m8 = _mm256_loadu_ps(s);
        for (c = 8; c + 8 <= n; c += 8)
            m8 = _mm256_max_ps(m8, _mm256_loadu_ps(s + c));
        float lanes[8];
        _mm256_storeu_ps(lanes, m8);
        for (int k = 0; k < 8; k++)
            mx = lanes[k] > mx ? lanes[k] : mx;
    }
    for (; c < n; c++)
        mx = s[c] > mx ? s[c] : mx;
    return mx;
}

/* row_exp with eight lanes; the tail goes through a zero-padded vector so
 * every element gets the same polynomial exp. */
MK_FN static float mk_row_exp(float *restrict s, size_t n, float m)
{
    __m256 m8 = _mm256_set1_ps(m), acc = _mm256_setzero_ps();
    size_t c = 0;
    for (; c + 8 <= n; c += 8) {
        __m256 p = mk_exp8(_mm256_sub_ps(_mm256_loadu_ps(s + c), m8));
        _mm256_storeu_ps(s + c, p);
        acc = _mm256_add_ps(acc, p);
    }
    if (c < n) {
        __m256i mask = mk_mask(n - c);
        __m256 x = _mm256_maskload_ps(s + c, mask);
        __m256 p = _mm256_and_ps(mk_exp8(_mm256_sub_ps(x, m8)), _mm256_castsi256_ps(mask));
        _mm256_maskstore_ps(s + c, mask, p);
        acc = _mm256_add_ps(acc, p);
    }
    __m128 h = _mm_add_ps(_mm256_castps256_ps128(acc), _mm256_extractf128_ps(acc, 1));
    h = _mm_add_ps(h, _mm_movehl_ps(h, h));
    h = _mm_add_ss(h, _mm_shuffle_ps(h, h, 1));
    return _mm_cvtss_f32(h);
}

/* dst[d] = src[d] * f for d < n (dst may be src). */
MK_FN static void mk_scale_row(float *dst, const float *src, size_t n, float f)
{
    __m256 f8 = _mm256_set1_ps(f);
    size_t d = 0;
    for (; d + 8 <= n; d += 8)
        _mm256_storeu_ps(dst + d, _mm256_mul_ps(_mm256_loadu_ps(src + d), f8));
    for (; d < n; d++)
        dst[d] = src[d] * f;
}
#endif /* QKV_ATTN_HAVE_AVX2_PATH */

/* row_max / row_exp of the selected path (micro: the AVX2 versions). */
static float sel_row_max(bool micro, const float *s, size_t n)
{
#if defined(QKV_ATTN_HAVE_AVX2_PATH)
    if (micro)
        return mk_row_max(s, n);
#else
    (void)micro;
#endif
    return row_max(s, n);
}

static float sel_row_exp(bool micro, float *s, size_t n, float m)
{
#if defined(QKV_ATTN_HAVE_AVX2_PATH)
    if (micro)
        return mk_row_exp(s, n, m);
#else
    (void)micro;
#endif
    return row_exp(s, n, m);
}

/* dst[d] = src[d] * f for d < n (dst may be src). */
static void sel_scale_row(bool micro, float *dst, const float *src, size_t n, float f)
{
#if defined(QKV_ATTN_HAVE_AVX2_PATH)
    if (micro) {
        mk_scale_row(dst, src, n, f);
        return;
    }
#else
    (void)micro;
#endif
    for (size_t d = 0; d < n; d++)
        dst[d] = src[d] * f;
}

/* ---- the worker ------------------------------------------------------------- */

typedef struct attn_run {
    const qkv_attn_args *a;
    qkv_kernel_io *io;
    unsigned char *scratch;
    size_t slot_bytes;
    size_t workers;
    size_t bq, bk;     /* query block rows, key tile width */
    size_t q_blocks;   /* per (b, h) */
    size_t items;      /* batch * q_heads * q_blocks */
    size_t kv_len;
    size_t group;      /* q_heads / kv_heads */
    bool skip_tiles;   /* no score output: tiles beyond every row's frontier are skipped */
    bool hard_drop;    /* drop_value is -inf */
    bool micro;        /* the AVX2+FMA micro-kernels replace the tile GEMMs */
    bool micro512;     /* ... and the tile products use the AVX-512 ones */
    atomic_int status; /* the first GEMM failure (QKV_OK while none) */
} attn_run;

/* Per-slot buffers. */
typedef struct attn_slot {
    float *s; /* (bq, bk) scores, then probabilities */
    float *o; /* (bq, v_head_size) un-normalised output */
    float *m; /* (bq) running max */
    float *l; /* (bq) running sum */
    float *kt; /* (head_size, pack_cols(bk)) packed K^T tile (micro-kernel path), else NULL */
} attn_slot;

static attn_slot slot_at(const attn_run *r, size_t t)
{
    unsigned char *base = r->scratch + t * r->slot_bytes;
    attn_slot s;
    size_t off = 0;
    s.s = (float *)(base + off);
    off += align64(sizeof(float) * r->bq * r->bk);
    s.o = (float *)(base + off);
    off += align64(sizeof(float) * r->bq * r->a->v_head_size);
    s.m = (float *)(base + off);
    off += align64(sizeof(float) * r->bq);
    s.l = (float *)(base + off);
    off += align64(sizeof(float) * r->bq);
    s.kt = r->micro ? (float *)(base + off) : NULL;
    return s;
}

/* One past the last key query row i of batch b may see, ignoring the
 * bias/keep values (causal frontier, key_limit, hard kv_valid). */
static size_t row_end(const attn_run *r, size_t b, size_t i)
{
    const qkv_attn_args *a = r->a;
    size_t end = r->kv_len < a->key_limit ? r->kv_len : a->key_limit;
    if (a->kv_valid && r->hard_drop) {
        int64_t v = a->kv_valid[b];
        size_t vv = v <= 0 ? 0 : (uint64_t)v > end ? end : (size_t)v;
        end = vv < end ? vv : end;
    }
    if (a->causal) {
        int64_t off = a->causal_offsets ? a->causal_offsets[b] : a->causal_offset;
        /* j <= i + off  <=>  j < i + off + 1; computed in int64 (i < 2^62) */
        int64_t lim = (int64_t)i + off + 1;
        size_t cl = lim <= 0 ? 0 : (uint64_t)lim > end ? end : (size_t)lim;
        end = cl < end ? cl : end;
    }
    return end;
}

/* Copies w scores to the score output when it wants this stage. */
static void qk_store(const attn_run *r, qkv_attn_qk_stage stage, float *qk_row, const float *s,
                     size_t w)
{
    qkv_attn_qk_stage want = r->a->qk_stage;
    if (want == QKV_ATTN_QK_SOFTMAX)
        want = QKV_ATTN_QK_BIASED; /* normalised after the last tile */
    if (qk_row && want == stage)
        memcpy(qk_row, s, w * sizeof *s);
}

/*
 * Turns one row of raw scores s[0..w) (keys j0 + c) into exp(s - m_new),
 * updating m and l, and returns the factor the row's O must be scaled by.
 * n_in: cells [n_in, w) are excluded outright.
 */
static float score_row(const attn_run *r, size_t b, size_t h, size_t i, size_t j0, size_t w,
                       size_t n_in, float *restrict s, float *m, float *l, float *qk_row)
{
    const qkv_attn_args *a = r->a;
    qk_store(r, QKV_ATTN_QK_SCALED, qk_row, s, w);
    if (a->softcap != 0) {
        float cap = a->softcap, inv = 1.0f / a->softcap;
        size_t n = qk_row ? w : n_in; /* the score output wants every cell */
        for (size_t c = 0; c < n; c++)
            s[c] = cap * tanhf(s[c] * inv);
    }
    qk_store(r, QKV_ATTN_QK_SOFTCAPPED, qk_row, s, w);
    if (a->bias && n_in > 0) {
        const float *restrict bp = a->bias + b * a->bias_sb + h * a->bias_sh + i * a->bias_si +
                                   j0 * a->bias_sj;
        size_t sj = a->bias_sj;
        if (sj == 1) {
            for (size_t c = 0; c < n_in; c++)
                s[c] = bp[c] == -INFINITY ? -INFINITY : s[c] + bp[c];
        } else {
            float bv = bp[0]; /* broadcast along keys */
            for (size_t c = 0; c < n_in; c++)
                s[c] = bv == -INFINITY ? -INFINITY : s[c] + bv;
        }
    }
    if (a->keep && n_in > 0) {
        size_t base = b * a->keep_sb + h * a->keep_sh + i * a->keep_si, sj = a->keep_sj;
        float d = a->drop_value;
        bool hard = r->hard_drop;
        for (size_t c = 0; c < n_in; c++) {
            size_t e = base + (j0 + c) * sj;
            bool keep = a->keep_type == QKV_ATTN_KEEP_U8 ? ((const uint8_t *)a->keep)[e] != 0
                                                         : ((const int32_t *)a->keep)[e] != 0;
            if (!keep)
                s[c] = hard ? -INFINITY : s[c] + d;
        }
    }
    if (a->kv_valid && !r->hard_drop) {
        int64_t v = a->kv_valid[b];
        size_t from = v <= 0 ? 0 : (uint64_t)v >= j0 + n_in ? j0 + n_in : (size_t)v;
        for (size_t c = from > j0 ? from - j0 : 0; c < n_in; c++)
            s[c] += a->drop_value;
    }
    for (size_t c = n_in; c < w; c++)
        s[c] = -INFINITY;
    qk_store(r, QKV_ATTN_QK_BIASED, qk_row, s, w);

    float mx = sel_row_max(r->micro, s, n_in);
    float m_old = *m;
    float m_new = mx > m_old ? mx : m_old;
    if (m_new == -INFINITY) { /* nothing visible yet: P = 0, O unchanged */
        memset(s, 0, w * sizeof *s);
        return 1.0f;
    }
    float sum = sel_row_exp(r->micro, s, n_in, m_new);
    for (size_t c = n_in; c < w; c++)
        s[c] = 0;
    float alpha = m_old == m_new ? 1.0f : expf(m_old - m_new); /* m_old -inf: 0 */
    *l = *l * alpha + sum;
    *m = m_new;
    return alpha;
}

/* One (b, h, query block) item into slot sl; a GEMM error (reported by the
 * provider through io) is returned. */
static qkv_status run_item(const attn_run *r, const attn_slot *sl, size_t item)
{
    const qkv_attn_args *a = r->a;
    size_t qb = item % r->q_blocks, bh = item / r->q_blocks;
    size_t h = bh % a->q_heads, b = bh / a->q_heads;
    size_t kvh = h / r->group;
    size_t i0 = qb * r->bq, rows = min_sz(r->bq, a->q_len - i0);
    size_t dv = a->v_head_size;

    for (size_t x = 0; x < rows; x++) {
        sl->m[x] = -INFINITY;
        sl->l[x] = 0;
    }
    memset(sl->o, 0, rows * dv * sizeof(float));

    /* keys no row of this block may see are skipped (unless the score output wants them) */
    size_t block_end = r->skip_tiles ? row_end(r, b, i0 + rows - 1) : r->kv_len;
    float *qk_base = a->qk_out ? a->qk_out + b * a->qk_sb + h * a->qk_sh + i0 * a->qk_si : NULL;
    const float *qp = a->q.data + b * a->q.sb + h * a->q.sh + i0 * a->q.ss;

    size_t seg_start = 0;
    for (size_t sg = 0; sg < a->n_segments && seg_start < block_end; sg++) {
        const qkv_attn_segment *g = &a->seg[sg];
        const float *kp = g->k.data + b * g->k.sb + kvh * g->k.sh;
        const float *vp = g->v.data + b * g->v.sb + kvh * g->v.sh;
        for (size_t t0 = 0; t0 < g->len; t0 += r->bk) {
            size_t j0 = seg_start + t0;
            if (j0 >= block_end)
                break;
            size_t w = min_sz(r->bk, g->len - t0);
            if (r->skip_tiles && w > block_end - j0)
                w = block_end - j0;
            qkv_status st;
#if defined(QKV_ATTN_HAVE_AVX2_PATH)
            if (r->micro) {
                /* S = scale * Q_blk K_tile^T: K tile packed as K^T once per tile */
                size_t ldk = pack_cols(r->bk);
                mk_pack_kt(kp + t0 * g->k.ss, g->k.ss, w, a->head_size, sl->kt, ldk);
                mk_tile_gemm(r->micro512, rows, w, a->head_size, a->scale, qp, a->q.ss, sl->kt,
                             ldk, true, sl->s, w, false);
            } else
#endif
            {
            /* S = scale * Q_blk K_tile^T */
            qkv_blas_gemm qk = {.dtype = QKV_DTYPE_FLOAT, .trans_b = true, .m = rows, .n = w,
                                .k = a->head_size, .alpha = a->scale, .beta = 0, .a = qp,
                                .lda = a->q.ss, .b = kp + t0 * g->k.ss, .ldb = g->k.ss,
                                .c = sl->s, .ldc = w};
            st = qkv_blas_gemm_run(r->io, &qk);
            if (st != QKV_OK)
                return st;
            }
            for (size_t x = 0; x < rows; x++) {
                size_t i = i0 + x;
                size_t end = row_end(r, b, i);
                size_t n_in = end <= j0 ? 0 : min_sz(end - j0, w);
                float *qk_row = qk_base ? qk_base + x * a->qk_si + j0 : NULL;
                float alpha = score_row(r, b, h, i, j0, w, n_in, sl->s + x * w, &sl->m[x],
                                        &sl->l[x], qk_row);
                if (alpha != 1.0f)
                    sel_scale_row(r->micro, sl->o + x * dv, sl->o + x * dv, dv, alpha);
            }
#if defined(QKV_ATTN_HAVE_AVX2_PATH)
            if (r->micro) { /* O += P V_tile */
                if (dv > 0)
                    mk_tile_gemm(r->micro512, rows, dv, w, 1.0f, sl->s, w, vp + t0 * g->v.ss,
                                 g->v.ss, false, sl->o, dv, true);
                continue;
            }
#endif
            /* O += P V_tile */
            qkv_blas_gemm pv = {.dtype = QKV_DTYPE_FLOAT, .m = rows, .n = dv, .k = w,
                                .alpha = 1, .beta = 1, .a = sl->s, .lda = w,
                                .b = vp + t0 * g->v.ss, .ldb = g->v.ss, .c = sl->o,
                                .ldc = dv};
            if (dv > 0 && (st = qkv_blas_gemm_run(r->io, &pv)) != QKV_OK)
                return st;
        }
        seg_start += g->len;
    }

    for (size_t x = 0; x < rows; x++) {
        float *out = a->out + b * a->out_sb + h * a->out_sh + (i0 + x) * a->out_ss;
        const float *o = sl->o + x * dv;
        float l = sl->l[x];
        if (l > 0) {
            sel_scale_row(r->micro, out, o, dv, 1.0f / l);
        } else { /* every key excluded: a zero row, not 0/0 */
            memset(out, 0, dv * sizeof *out);
        }
        if (qk_base && a->qk_stage == QKV_ATTN_QK_SOFTMAX) {
            float *restrict p = qk_base + x * a->qk_si;
            float m = sl->m[x];
            if (l > 0) {
                float inv = 1.0f / l;
                sel_row_exp(r->micro, p, r->kv_len, m); /* the same exp as the tiles used */
                for (size_t j = 0; j < r->kv_len; j++)
                    p[j] *= inv;
            } else {
                memset(p, 0, r->kv_len * sizeof *p);
            }
        }
    }
    return QKV_OK;
}

/* parallel_for body: slots [begin, end). */
static void run_slots(void *arg, size_t begin, size_t end)
{
    attn_run *r = arg;
    for (size_t t = begin; t < end; t++) {
        attn_slot sl = slot_at(r, t);
        for (size_t item = t; item < r->items; item += r->workers) {
            if (atomic_load(&r->status) != QKV_OK)
                return; /* another worker failed: stop early */
            qkv_status st = run_item(r, &sl, item);
            if (st != QKV_OK) {
                int ok = QKV_OK;
                atomic_compare_exchange_strong(&r->status, &ok, (int)st);
                return;
            }
        }
    }
}

qkv_status qkv_attn_run(qkv_kernel_io *io, const qkv_attn_args *a, void *scratch,
                        size_t scratch_bytes)
{
    attn_run r = {.a = a, .io = io, .scratch = scratch, .slot_bytes = qkv_attn_slot_bytes(a)};
    atomic_init(&r.status, QKV_OK);
    if (r.slot_bytes == 0)
        return QKV_OK; /* no query rows */
    r.kv_len = qkv_attn_kv_len(a);
    block_sizes(a, &r.bq, &r.bk);
    r.group = a->q_heads / a->kv_heads;
    r.hard_drop = a->drop_value == -INFINITY;
    r.skip_tiles = a->qk_out == NULL;
    r.micro = qkv_attn_uses_microkernel(a);
    r.micro512 = r.micro && (qkv_cpu_features_get() & QKV_CPU_AVX512);

    size_t threads = io->host->thread_count(io->host_ctx);
    size_t slots = scratch_bytes / r.slot_bytes;
    size_t bh = a->batch * a->q_heads;
    /* too few (b, h) pairs to feed every thread: smaller query blocks (>= 8 rows) */
    if (threads > 1 && bh < threads && a->q_len > 8) {
        size_t want = (threads + bh - 1) / bh;
        size_t rows = (a->q_len + want - 1) / want;
        rows = rows < 8 ? 8 : rows;
        if (rows < r.bq)
            r.bq = rows;
    }
    r.q_blocks = (a->q_len + r.bq - 1) / r.bq;
    r.items = bh * r.q_blocks;
    r.workers = min_sz(min_sz(threads, slots), r.items);
    if (r.workers == 0)
        r.workers = 1; /* the caller's contract: at least one slot */

    if (r.workers == 1)
        run_slots(&r, 0, 1);
    else
        io->host->parallel_for(io->host_ctx, r.workers, run_slots, &r);
    return (qkv_status)atomic_load(&r.status);
}
