/*
 * onednn_gemm.c - the backend's GEMM provider (host->gemm for the built-in
 * kernels that multiply matrices inside, e.g. attention): float32 strided
 * batches through dnnl_sgemm (row-major, like qkv_gemm).
 *
 * Threads: the work is cut into units, a batch entry or a block of rows of
 * one (when there are fewer entries than threads), handed to the host's pool
 * (host->parallel_for), each unit one dnnl_sgemm on one OpenMP thread (set
 * on the pool thread and put back after). No OpenMP team is started: the
 * callers (attention) often run inside the pool already, where parallel_for
 * runs inline, and a team there would put threads x threads workers on the
 * cores, spinning (libgomp's default wait policy). Below PAR_MIN_MACS the
 * whole batch runs on the calling thread.
 *
 * Declined (QKV_ERR_UNSUPPORTED, the host then runs its next provider):
 * double, k == 0 (C = beta * C, where BLAS libraries disagree), and dims or
 * leading dims beyond int32 (oneDNN's sgemm indexes with int internally).
 */
#include <stdatomic.h>
#include <stdint.h>

#include "onednn_plugin.h"

/* Below this many multiply-adds in all, threading costs more than it saves
 * (a parallel_for wake-up is several microseconds; 2^18 MACs ~10 us). */
#define PAR_MIN_MACS ((double)(1u << 18))
/* Row blocks of at least this many rows. */
#define MIN_ROWS 16

typedef struct gemm_run {
    const qkv_gemm *g;
    size_t pieces;     /* row blocks per batch entry */
    atomic_int failed; /* the first dnnl status that was not success */
} gemm_run;

static bool fits(const qkv_gemm *g)
{
    const size_t lim = INT32_MAX;
    return g->m <= lim && g->n <= lim && g->k <= lim && g->lda <= lim && g->ldb <= lim &&
           g->ldc <= lim;
}

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

/* Rows [r0, r1) of batch entry `batch`. */
static dnnl_status_t gemm_rows(const qkv_gemm *g, size_t batch, size_t r0, size_t r1)
{
    size_t oa, ob, oc;
    batch_offsets(g, batch, &oa, &ob, &oc);
    oa += g->trans_a ? r0 : r0 * g->lda;
    oc += r0 * g->ldc;
    return dnnl_sgemm(g->trans_a ? 'T' : 'N', g->trans_b ? 'T' : 'N', (dnnl_dim_t)(r1 - r0),
                      (dnnl_dim_t)g->n, (dnnl_dim_t)g->k, (float)g->alpha, (const float *)g->a + oa,
                      (dnnl_dim_t)g->lda, (const float *)g->b + ob, (dnnl_dim_t)g->ldb,
                      (float)g->beta, (float *)g->c + oc, (dnnl_dim_t)g->ldc);
}

/* parallel_for body: units [begin, end), one OpenMP thread. */
static void gemm_range(void *arg, size_t begin, size_t end)
{
    gemm_run *r = arg;
    const qkv_gemm *g = r->g;
    dn_threads th;
    dn_threads_enter(&th, 1);
    for (size_t u = begin; u < end; u++) {
        size_t batch = u / r->pieces, p = u % r->pieces;
        dnnl_status_t s = gemm_rows(g, batch, p * g->m / r->pieces, (p + 1) * g->m / r->pieces);
        if (s != dnnl_success) {
            int expected = dnnl_success;
            atomic_compare_exchange_strong(&r->failed, &expected, (int)s);
        }
    }
    dn_threads_leave(&th);
}

qkv_status dn_gemm_provider(void *user, const qkv_host_api *host, void *host_ctx, const qkv_gemm *g)
{
    (void)user;
    if (g->dtype != QKV_DTYPE_FLOAT || g->k == 0 || !fits(g))
        return QKV_ERR_UNSUPPORTED;
    size_t nbatch = 1;
    for (int32_t j = 0; j < g->batch_rank; j++)
        nbatch *= g->batch_dims[j]; /* C holds nbatch * m * n elements: no overflow */
    if (nbatch == 0 || g->m == 0 || g->n == 0)
        return QKV_OK;
    gemm_run r = {.g = g, .pieces = 1};
    atomic_init(&r.failed, dnnl_success);
    size_t threads = host->thread_count(host_ctx);
    double macs = (double)nbatch * (double)g->m * (double)g->n * (double)g->k;
    if (threads > 1 && macs >= PAR_MIN_MACS) {
        if (nbatch < threads) {
            size_t per = (threads + nbatch - 1) / nbatch, by_rows = g->m / MIN_ROWS;
            r.pieces = per < by_rows ? per : by_rows < 1 ? 1 : by_rows;
        }
        host->parallel_for(host_ctx, nbatch * r.pieces, gemm_range, &r);
    } else {
        gemm_range(&r, 0, nbatch);
    }
    int s = atomic_load(&r.failed);
    if (s != dnnl_success)
        return host->error(host_ctx,
                           s == dnnl_out_of_memory ? QKV_ERR_OUT_OF_MEMORY : QKV_ERR_INTERNAL,
                           "oneDNN: dnnl_sgemm failed (%s) for m=%zu n=%zu k=%zu",
                           dn_status_name((dnnl_status_t)s), g->m, g->n, g->k);
    return QKV_OK;
}
