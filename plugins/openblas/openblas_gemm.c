/*
 * openblas_gemm.c - the OpenBLAS side of ops/blas.h, for the OpenBLAS
 * backend plugin: a strided batch of GEMMs split across the run context's
 * threads, each piece a single-threaded cblas call. Used two ways:
 *  - qkv_blas_gemm_run, called by the MatMul, Gemm and Einsum kernels that
 *    this plugin compiles from qkv's ops/ sources;
 *  - qkv_openblas_gemm, the backend's GEMM provider: the host's GEMM service
 *    (host->gemm) for the core kernels that multiply matrices inside
 *    (attention).
 * The only file of qkv that includes <cblas.h>.
 *
 * Work is cut into units: a unit is one batch entry, or one of `pieces`
 * blocks of it (rows of C, or columns when C has few rows). The thread pool
 * hands out runs of consecutive units; consecutive blocks of one batch entry
 * are merged into a single cblas call, so a chunk never pays more calls than
 * it must.
 *
 * OpenBLAS runs on one thread (openblas_set_num_threads(1) once per load):
 * its thread count is process-global and sessions with different thread
 * counts may run at once; the parallelism is host->parallel_for's. Side
 * effect: an application using OpenBLAS in the same process sees its thread
 * count set to 1.
 */
#include <cblas.h>
#include <pthread.h>

#include "blas.h"
#include "openblas_plugin.h"

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

static pthread_once_t blas_once = PTHREAD_ONCE_INIT;

static void blas_set_one_thread(void)
{
    openblas_set_num_threads(1);
}

void qkv_blas_init(void)
{
    pthread_once(&blas_once, blas_set_one_thread);
}

/* m, n, k and the leading dimensions fit cblas's int */
static bool fits(const qkv_gemm *g)
{
    return g->m <= QKV_BLAS_MAX_DIM && g->n <= QKV_BLAS_MAX_DIM && g->k <= QKV_BLAS_MAX_DIM &&
           g->lda <= QKV_BLAS_MAX_DIM && g->ldb <= QKV_BLAS_MAX_DIM &&
           g->ldc <= QKV_BLAS_MAX_DIM;
}

bool qkv_blas_gemm_fits(const qkv_blas_gemm *g)
{
    return g->m <= QKV_BLAS_MAX_DIM && g->n <= QKV_BLAS_MAX_DIM && g->k <= QKV_BLAS_MAX_DIM &&
           g->lda <= QKV_BLAS_MAX_DIM && g->ldb <= QKV_BLAS_MAX_DIM &&
           g->ldc <= QKV_BLAS_MAX_DIM;
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
static void gemm_block(const qkv_gemm *g, size_t m, size_t n, const void *a, const void *b,
                       void *c)
{
    if (m == 0 || n == 0)
        return;
    if (g->k == 0) {
        scale_block(g, m, n, c);
        return;
    }
    enum CBLAS_TRANSPOSE ta = g->trans_a ? CblasTrans : CblasNoTrans;
    enum CBLAS_TRANSPOSE tb = g->trans_b ? CblasTrans : CblasNoTrans;
    if (g->dtype == QKV_DTYPE_DOUBLE)
        cblas_dgemm(CblasRowMajor, ta, tb, (blasint)m, (blasint)n, (blasint)g->k, g->alpha, a,
                    (blasint)g->lda, b, (blasint)g->ldb, g->beta, c, (blasint)g->ldc);
    else
        cblas_sgemm(CblasRowMajor, ta, tb, (blasint)m, (blasint)n, (blasint)g->k,
                    (float)g->alpha, a, (blasint)g->lda, b, (blasint)g->ldb, (float)g->beta, c,
                    (blasint)g->ldc);
}

typedef struct gemm_run {
    const qkv_gemm *g;
    size_t pieces; /* blocks per batch entry */
    bool split_n;  /* blocks are column ranges of C (else row ranges) */
    size_t elem_bytes;
} gemm_run;

/* Element offsets of batch entry `batch` in A, B and C. */
static void batch_offsets(const qkv_gemm *g, size_t batch, size_t *oa, size_t *ob,
                          size_t *oc)
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
            gemm_block(g, g->m, c1 - c0, a, b, c + c0 * es);
        } else {
            size_t r0 = p0 * g->m / r->pieces, r1 = p1 * g->m / r->pieces;
            a += (g->trans_a ? r0 : r0 * g->lda) * es;
            gemm_block(g, r1 - r0, g->n, a, b, c + r0 * g->ldc * es);
        }
    }
}

qkv_status qkv_openblas_gemm(void *user, const qkv_host_api *host, void *host_ctx,
                             const qkv_gemm *g)
{
    (void)user;
    if ((g->dtype != QKV_DTYPE_FLOAT && g->dtype != QKV_DTYPE_DOUBLE) || !fits(g))
        return QKV_ERR_UNSUPPORTED; /* the host's portable GEMM takes it */
    qkv_blas_init();
    size_t nbatch = 1;
    for (int32_t j = 0; j < g->batch_rank; j++) {
        if (g->batch_dims[j] == 0)
            return QKV_OK;
        nbatch *= g->batch_dims[j]; /* C holds nbatch * m * n elements: no overflow */
    }
    if (g->m == 0 || g->n == 0)
        return QKV_OK;
    gemm_run r = {.g = g, .pieces = 1, .split_n = false,
                  .elem_bytes = g->dtype == QKV_DTYPE_DOUBLE ? sizeof(double) : sizeof(float)};
    size_t threads = host->thread_count(host_ctx);
    /* double: the product of four size_t may overflow size_t */
    double macs = (double)nbatch * (double)g->m * (double)g->n * (double)(g->k ? g->k : 1);
    bool parallel = threads > 1 && macs >= PAR_MIN_MACS;
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
            r.split_n = true;
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

qkv_status qkv_blas_gemm_run(qkv_kernel_io *io, const qkv_blas_gemm *bg)
{
    qkv_gemm g;
    qkv_blas_to_gemm(bg, &g);
    /* the caller checked dtype and size in prepare, so cblas takes it */
    return qkv_openblas_gemm(NULL, io->host, io->host_ctx, &g);
}
