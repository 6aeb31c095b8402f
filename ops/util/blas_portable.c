/*
 * blas_portable.c - the GEMM behind host->gemm when no backend provides
 * one: float32 goes to qkv's own GEMM (sgemm.h: packed operands and an
 * AVX-512, AVX2 or baseline micro-kernel chosen from the CPU's features);
 * float64, rare in models, to the plain blocked loop below.
 *
 * The float64 loop is Goto/BLIS in miniature: for each KC slice of k and NC
 * slice of n, op(B)'s (KC, NC) panel is packed into a stack buffer, and for
 * each MR rows of C op(A)'s sliver is packed and an MR x NR register tile
 * runs over the panel; gcc vectorises the tile at -O3 (CMakeLists.txt).
 * Threads: work units are (batch entry, block of rows of C), handed to
 * host->parallel_for when the GEMM is big enough.
 */
#include <string.h>

#include "blas.h"
#include "gemm_portable.h"
#include "sgemm.h"

/* The register tile: 4 x 8 accumulators fit the 16 vector registers of
 * baseline x86-64 (SSE2) and of AVX2 alike (measured best of 4x8, 4x16, 6x16
 * and 8x8 with gcc 12 -O3; wider tiles spill). */
#define MR 4
#define NR 8

#define KC 128
/* panel columns: 64 KiB of B per panel */
#define NC_F64 64
/* below this many multiply-adds the GEMM runs on the calling thread */
#define PAR_MIN_MACS ((double)(1u << 17))
#define MIN_BLOCK_ROWS 16

typedef struct pgemm_run {
    const qkv_gemm *g;
    size_t row_blocks; /* blocks of rows per batch entry */
    size_t rows_per_block;
} pgemm_run;

/* Element offsets of batch entry `batch` in A, B and C. */
static void batch_offsets(const qkv_gemm *g, size_t batch, size_t *oa, size_t *ob, size_t *oc)
{
    *oa = *ob = *oc = 0;
    for (int32_t j = g->batch_rank - 1; j >= 0; j--) {
        size_t coord = batch % g->batch_dims[j];
        batch /= g->batch_dims[j];
        *oa += coord * g->a_strides[j];
        *ob += coord * g->b_strides[j];
        *oc += coord * g->c_strides[j];
    }
}

/*
 * One instantiation per element type T (float, double) with panel width NC:
 *   gemm_rows_T(g, a, b, c, r0, r1): rows [r0, r1) of one batch entry's C.
 */
#define DEFINE_PGEMM(T, NC)                                                                        \
    /* C tile (rows x cols, row stride ldc) = (first ? beta*C : C) + alpha * acc */                \
    static void store_##T(T *restrict c, size_t ldc, size_t rows, size_t cols, T acc[MR][NR],      \
                          T alpha, T beta, int first)                                              \
    {                                                                                              \
        for (size_t i = 0; i < rows; i++) {                                                        \
            T *restrict crow = c + i * ldc;                                                        \
            for (size_t j = 0; j < cols; j++) {                                                    \
                T v = alpha * acc[i][j];                                                           \
                if (!first)                                                                        \
                    v += crow[j];                                                                  \
                else if (beta != 0)                                                                \
                    v += beta * crow[j];                                                           \
                crow[j] = v;                                                                       \
            }                                                                                      \
        }                                                                                          \
    }                                                                                              \
                                                                                                   \
    /* acc = ap (kc, MR interleaved) x bp (kc, NR of a row of stride ldp) */                       \
    static void tile_##T(T acc[MR][NR], const T *restrict ap, const T *restrict bp, size_t ldp,    \
                         size_t kc)                                                                \
    {                                                                                              \
        T c[MR][NR] = {{0}};                                                                       \
        for (size_t p = 0; p < kc; p++) {                                                          \
            const T *restrict brow = bp + p * ldp;                                                 \
            for (size_t i = 0; i < MR; i++) {                                                      \
                T ai = ap[p * MR + i];                                                             \
                for (size_t j = 0; j < NR; j++)                                                    \
                    c[i][j] += ai * brow[j];                                                       \
            }                                                                                      \
        }                                                                                          \
        memcpy(acc, c, sizeof c);                                                                  \
    }                                                                                              \
                                                                                                   \
    static void gemm_rows_##T(const qkv_gemm *g, const T *a, const T *b, T *c, size_t r0,          \
                              size_t r1)                                                           \
    {                                                                                              \
        T bp[KC * NC]; /* (kc, ncp) packed op(B) panel, ncp = nc rounded up to NR */               \
        T ap[KC * MR]; /* (kc, MR) packed op(A) sliver */                                          \
        T acc[MR][NR];                                                                             \
        const T alpha = (T)g->alpha, beta = (T)g->beta;                                            \
        for (size_t k0 = 0; k0 < g->k; k0 += KC) {                                                 \
            size_t kc = g->k - k0 < KC ? g->k - k0 : KC;                                           \
            int first = k0 == 0;                                                                   \
            for (size_t n0 = 0; n0 < g->n; n0 += NC) {                                             \
                size_t nc = g->n - n0 < NC ? g->n - n0 : NC;                                       \
                size_t ncp = (nc + NR - 1) / NR * NR;                                              \
                for (size_t p = 0; p < kc; p++) {                                                  \
                    T *restrict dst = bp + p * ncp;                                                \
                    if (g->trans_b) { /* B stored (n, k) */                                        \
                        for (size_t j = 0; j < nc; j++)                                            \
                            dst[j] = b[(n0 + j) * g->ldb + k0 + p];                                \
                    } else {                                                                       \
                        memcpy(dst, b + (k0 + p) * g->ldb + n0, nc * sizeof(T));                   \
                    }                                                                              \
                    for (size_t j = nc; j < ncp; j++)                                              \
                        dst[j] = 0;                                                                \
                }                                                                                  \
                for (size_t i0 = r0; i0 < r1; i0 += MR) {                                          \
                    size_t mr = r1 - i0 < MR ? r1 - i0 : MR;                                       \
                    for (size_t p = 0; p < kc; p++)                                                \
                        for (size_t i = 0; i < MR; i++) {                                          \
                            size_t row = i0 + (i < mr ? i : 0);                                    \
                            T v = g->trans_a ? a[(k0 + p) * g->lda + row]                          \
                                             : a[row * g->lda + k0 + p];                           \
                            ap[p * MR + i] = i < mr ? v : 0;                                       \
                        }                                                                          \
                    for (size_t j0 = 0; j0 < nc; j0 += NR) {                                       \
                        size_t nr = nc - j0 < NR ? nc - j0 : NR;                                   \
                        tile_##T(acc, ap, bp + j0, ncp, kc);                                       \
                        store_##T(c + i0 * g->ldc + n0 + j0, g->ldc, mr, nr, acc, alpha, beta,     \
                                  first);                                                          \
                    }                                                                              \
                }                                                                                  \
            }                                                                                      \
        }                                                                                          \
    }

DEFINE_PGEMM(double, NC_F64)

/* C = beta * C over rows [r0, r1): what a GEMM with k == 0 computes. */
static void scale_rows(const qkv_gemm *g, void *c, size_t r0, size_t r1)
{
    for (size_t i = r0; i < r1; i++) {
        if (g->dtype == QKV_DTYPE_DOUBLE) {
            double *row = (double *)c + i * g->ldc;
            for (size_t j = 0; j < g->n; j++)
                row[j] = g->beta == 0 ? 0.0 : g->beta * row[j];
        } else {
            float *row = (float *)c + i * g->ldc;
            float beta = (float)g->beta;
            for (size_t j = 0; j < g->n; j++)
                row[j] = beta == 0 ? 0.0f : beta * row[j];
        }
    }
}

/* parallel_for body: units [begin, end) = (batch entry, row block). */
static void pgemm_range(void *arg, size_t begin, size_t end)
{
    const pgemm_run *r = arg;
    const qkv_gemm *g = r->g;
    size_t es = g->dtype == QKV_DTYPE_DOUBLE ? sizeof(double) : sizeof(float);
    for (size_t u = begin; u < end; u++) {
        size_t batch = u / r->row_blocks, blk = u % r->row_blocks;
        size_t r0 = blk * r->rows_per_block;
        size_t r1 = r0 + r->rows_per_block < g->m ? r0 + r->rows_per_block : g->m;
        size_t oa, ob, oc;
        batch_offsets(g, batch, &oa, &ob, &oc);
        const char *a = (const char *)g->a + oa * es;
        const char *b = (const char *)g->b + ob * es;
        char *c = (char *)g->c + oc * es;
        if (g->k == 0)
            scale_rows(g, c, r0, r1);
        else
            gemm_rows_double(g, (const double *)a, (const double *)b, (double *)c, r0, r1);
    }
}

qkv_status qkv_gemm_portable(const qkv_host_api *host, void *host_ctx, const qkv_gemm *g)
{
    if (g->dtype == QKV_DTYPE_FLOAT) {
        qkv_sgemm_run(host, host_ctx, qkv_sgemm_arch_get(), g, NULL);
        return QKV_OK;
    }
    size_t nbatch = 1;
    for (int32_t j = 0; j < g->batch_rank; j++) {
        if (g->batch_dims[j] == 0)
            return QKV_OK;
        nbatch *= g->batch_dims[j]; /* C holds nbatch * m * n elements: no overflow */
    }
    if (g->m == 0 || g->n == 0)
        return QKV_OK;
    pgemm_run r = {.g = g, .row_blocks = 1, .rows_per_block = g->m};
    size_t threads = host->thread_count(host_ctx);
    /* double: the product of four size_t may overflow size_t */
    double macs = (double)nbatch * (double)g->m * (double)g->n * (double)(g->k ? g->k : 1);
    bool parallel = threads > 1 && macs >= PAR_MIN_MACS;
    if (parallel && nbatch < 4 * threads) {
        /* too few batch entries to feed every thread: split rows too */
        size_t want = (4 * threads + nbatch - 1) / nbatch;
        size_t rows = (g->m + want - 1) / want;
        if (rows < MIN_BLOCK_ROWS)
            rows = MIN_BLOCK_ROWS;
        rows = (rows + MR - 1) / MR * MR;
        r.rows_per_block = rows < g->m ? rows : g->m;
        r.row_blocks = (g->m + r.rows_per_block - 1) / r.rows_per_block;
    }
    size_t units = nbatch * r.row_blocks;
    if (parallel && units > 1)
        host->parallel_for(host_ctx, units, pgemm_range, &r);
    else
        pgemm_range(&r, 0, units);
    return QKV_OK;
}
