/*
 * openblas_gemm.c - the OpenBLAS backend's GEMM provider (qkv_backend.gemm):
 * the session's GEMM service (host->gemm) for every core kernel that
 * multiplies matrices (MatMul, Gemm, Einsum, attention). A strided batch of
 * GEMMs split across the run context's threads, each piece one
 * single-threaded cblas call through the entry points openblas_load.c
 * resolved.
 *
 * Work is cut into units: a unit is one batch entry, or one of `pieces`
 * blocks of it (rows of C, or columns when C has few rows). The thread pool
 * hands out runs of consecutive units; consecutive blocks of one batch entry
 * are merged into a single cblas call, so a chunk never pays more calls than
 * it must.
 *
 * OpenBLAS runs on one thread (set once at load): its thread count is
 * process-global and sessions with different thread counts may run at once;
 * the parallelism is host->parallel_for's.
 */
#include <limits.h>

#include "openblas_plugin.h"

/* The largest m, n, k and leading dimension a cblas call takes (int). */
#define MAX_DIM ((size_t)INT_MAX)

/* Below this many multiply-adds in all, threading costs more than it saves
 * (a parallel_for wake-up is several microseconds; 2^18 MACs is ~10 us on
 * one core). */
#define PAR_MIN_MACS ((double)(1u << 18))
/* No piece smaller than this: each cblas call packs its operands. */
#define PIECE_MIN_MACS ((double)(1u << 16))
/* Row blocks of at least this many rows, column blocks of at least this many
 * columns: narrower blocks waste the BLAS micro-kernel's register tile. */
#define MIN_ROWS 16
#define MIN_COLS 64

/* m, n, k and the leading dimensions fit cblas's int */
static int fits(const qkv_gemm *g)
{
    return g->m <= MAX_DIM && g->n <= MAX_DIM && g->k <= MAX_DIM && g->lda <= MAX_DIM &&
           g->ldb <= MAX_DIM && g->ldc <= MAX_DIM;
}

/* C = beta * C over an (m, n) block: what a GEMM with k == 0 computes. BLAS
 * libraries disagree on k == 0 (and cblas rejects lda == 0), so it is done
 * here; beta == 0 writes zeros without reading C. */
static void scale_block(const qkv_gemm *g, size_t m, size_t n, void *c)
{
    for (size_t i = 0; i < m; i++) {
        if (g->dtype == QKV_DTYPE_DOUBLE) {
            double *restrict row = (double *)c + i * g->ldc;
            for (size_t j = 0; j < n; j++)
                row[j] = g->beta == 0 ? 0.0 : g->beta * row[j];
        } else {
            float *restrict row = (float *)c + i * g->ldc;
            float beta = (float)g->beta;
            for (size_t j = 0; j < n; j++)
                row[j] = beta == 0 ? 0.0f : beta * row[j];
        }
    }
}

/* One single-threaded GEMM of an (m, n) block of C; a, b, c point at the
 * block's first element of op(A) row, op(B) column and C. */
static void gemm_block(const openblas_lib *lib, const qkv_gemm *g, size_t m, size_t n,
                       const void *a, const void *b, void *c)
{
    if (m == 0 || n == 0)
        return;
    if (g->k == 0) {
        scale_block(g, m, n, c);
        return;
    }
    int ta = g->trans_a ? OPENBLAS_TRANS : OPENBLAS_NO_TRANS;
    int tb = g->trans_b ? OPENBLAS_TRANS : OPENBLAS_NO_TRANS;
    if (g->dtype == QKV_DTYPE_DOUBLE)
        lib->dgemm(OPENBLAS_ROW_MAJOR, ta, tb, (int)m, (int)n, (int)g->k, g->alpha, a, (int)g->lda,
                   b, (int)g->ldb, g->beta, c, (int)g->ldc);
    else
        lib->sgemm(OPENBLAS_ROW_MAJOR, ta, tb, (int)m, (int)n, (int)g->k, (float)g->alpha, a,
                   (int)g->lda, b, (int)g->ldb, (float)g->beta, c, (int)g->ldc);
}

typedef struct gemm_run {
    const openblas_lib *lib;
    const qkv_gemm *g;
    size_t pieces; /* blocks per batch entry */
    int split_n;   /* blocks are column ranges of C (else row ranges) */
    size_t elem_bytes;
} gemm_run;

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

/* parallel_for body: units [begin, end), see the file comment. */
static void gemm_range(void *arg, size_t begin, size_t end)
{
    const gemm_run *r = arg;
    const qkv_gemm *g = r->g;
    size_t es = r->elem_bytes;
    size_t u = begin;
    while (u < end) {
        size_t batch = u / r->pieces, p0 = u % r->pieces;
        size_t p1 = r->pieces;
        if (end - u < p1 - p0)
            p1 = p0 + (end - u);
        u += p1 - p0;
        size_t oa, ob, oc;
        batch_offsets(g, batch, &oa, &ob, &oc);
        const char *a = (const char *)g->a + oa * es;
        const char *b = (const char *)g->b + ob * es;
        char *c = (char *)g->c + oc * es;
        if (r->split_n) {
            size_t c0 = p0 * g->n / r->pieces, c1 = p1 * g->n / r->pieces;
            b += (g->trans_b ? c0 * g->ldb : c0) * es;
            gemm_block(r->lib, g, g->m, c1 - c0, a, b, c + c0 * es);
        } else {
            size_t r0 = p0 * g->m / r->pieces, r1 = p1 * g->m / r->pieces;
            a += (g->trans_a ? r0 : r0 * g->lda) * es;
            gemm_block(r->lib, g, r1 - r0, g->n, a, b, c + r0 * g->ldc * es);
        }
    }
}

qkv_status qkv_openblas_gemm(void *user, const qkv_host_api *host, void *host_ctx,
                             const qkv_gemm *g)
{
    const openblas_lib *lib = user;
    if ((g->dtype != QKV_DTYPE_FLOAT && g->dtype != QKV_DTYPE_DOUBLE) || !fits(g))
        return QKV_ERR_UNSUPPORTED; /* the host's portable GEMM takes it */
    size_t nbatch = 1;
    for (int32_t j = 0; j < g->batch_rank; j++) {
        if (g->batch_dims[j] == 0)
            return QKV_OK;
        nbatch *= g->batch_dims[j]; /* C holds nbatch * m * n elements: no overflow */
    }
    if (g->m == 0 || g->n == 0)
        return QKV_OK;
    gemm_run r = {.lib = lib,
                  .g = g,
                  .pieces = 1,
                  .split_n = 0,
                  .elem_bytes = g->dtype == QKV_DTYPE_DOUBLE ? sizeof(double) : sizeof(float)};
    size_t threads = host->thread_count(host_ctx);
    /* double: the product of four size_t may overflow size_t */
    double macs = (double)nbatch * (double)g->m * (double)g->n * (double)(g->k ? g->k : 1);
    int parallel = threads > 1 && macs >= PAR_MIN_MACS;
    size_t want = 4 * threads; /* the pool balances about 4 chunks per thread */
    if (parallel && nbatch < want) {
        /* too few batch entries to feed every thread: split each GEMM */
        size_t per = (want + nbatch - 1) / nbatch;
        double by_work = macs / (double)nbatch / PIECE_MIN_MACS;
        if ((double)per > by_work)
            per = by_work < 1 ? 1 : (size_t)by_work;
        size_t pm = (g->m + MIN_ROWS - 1) / MIN_ROWS, pn = (g->n + MIN_COLS - 1) / MIN_COLS;
        if (pm >= per || pm >= pn) {
            r.pieces = per < pm ? per : pm;
        } else {
            r.split_n = 1;
            r.pieces = per < pn ? per : pn;
        }
    }
    size_t units = nbatch * r.pieces; /* pieces > 1 only when nbatch < 4 * threads */
    if (parallel && units > 1)
        host->parallel_for(host_ctx, units, gemm_range, &r);
    else
        gemm_range(&r, 0, units);
    return QKV_OK;
}
