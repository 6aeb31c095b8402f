/*
 * onednn_gemm.c - the backend's GEMM provider (host->gemm for the built-in
 * kernels that multiply matrices inside, e.g. attention): float32 strided
 * batches through dnnl_sgemm (row-major, like qkv_gemm).
 *
 * Threads: a batch of at least as many GEMMs as the context has threads is
 * split over the host's pool (host->parallel_for), each dnnl_sgemm on one
 * OpenMP thread (set on the pool thread and put back after); fewer, larger
 * GEMMs run one after the other on the calling thread, each threaded by
 * oneDNN over the context's thread count. Either way no thread uses more
 * than the context's threads, and no thread's OpenMP setting outlives the
 * call.
 *
 * Declined (QKV_ERR_UNSUPPORTED, the host then runs its next provider):
 * double, k == 0 (C = beta * C, where BLAS libraries disagree), and dims or
 * leading dims beyond int32 (oneDNN's sgemm indexes with int internally).
 */
#include <stdatomic.h>
#include <stdint.h>

#include "onednn_plugin.h"

typedef struct gemm_run {
    const qkv_gemm *g;
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

static dnnl_status_t one_gemm(const qkv_gemm *g, size_t batch)
{
    size_t oa, ob, oc;
    batch_offsets(g, batch, &oa, &ob, &oc);
    return dnnl_sgemm(g->trans_a ? 'T' : 'N', g->trans_b ? 'T' : 'N', (dnnl_dim_t)g->m,
                      (dnnl_dim_t)g->n, (dnnl_dim_t)g->k, (float)g->alpha,
                      (const float *)g->a + oa, (dnnl_dim_t)g->lda, (const float *)g->b + ob,
                      (dnnl_dim_t)g->ldb, (float)g->beta, (float *)g->c + oc,
                      (dnnl_dim_t)g->ldc);
}

/* parallel_for body: batch entries [begin, end), one OpenMP thread each. */
static void gemm_range(void *arg, size_t begin, size_t end)
{
    gemm_run *r = arg;
    dn_threads th;
    dn_threads_enter(&th, 1);
    for (size_t b = begin; b < end; b++) {
        dnnl_status_t s = one_gemm(r->g, b);
        if (s != dnnl_success) {
            int expected = dnnl_success;
            atomic_compare_exchange_strong(&r->failed, &expected, (int)s);
        }
    }
    dn_threads_leave(&th);
}

qkv_status dn_gemm_provider(void *user, const qkv_host_api *host, void *host_ctx,
                            const qkv_gemm *g)
{
    (void)user;
    if (g->dtype != QKV_DTYPE_FLOAT || g->k == 0 || !fits(g))
        return QKV_ERR_UNSUPPORTED;
    size_t nbatch = 1;
    for (int32_t j = 0; j < g->batch_rank; j++)
        nbatch *= g->batch_dims[j]; /* C holds nbatch * m * n elements: no overflow */
    if (nbatch == 0 || g->m == 0 || g->n == 0)
        return QKV_OK;
    gemm_run r = {.g = g};
    atomic_init(&r.failed, dnnl_success);
    size_t threads = host->thread_count(host_ctx);
    if (threads > 1 && nbatch >= threads) {
        host->parallel_for(host_ctx, nbatch, gemm_range, &r);
    } else {
        dn_threads th;
        dn_threads_enter(&th, threads);
        for (size_t b = 0; b < nbatch && atomic_load(&r.failed) == dnnl_success; b++) {
            dnnl_status_t s = one_gemm(g, b);
            if (s != dnnl_success)
                atomic_store(&r.failed, (int)s);
        }
        dn_threads_leave(&th);
    }
    int s = atomic_load(&r.failed);
    if (s != dnnl_success)
        return host->error(host_ctx, s == dnnl_out_of_memory ? QKV_ERR_OUT_OF_MEMORY
                                                             : QKV_ERR_INTERNAL,
                           "oneDNN: dnnl_sgemm failed (%s) for m=%zu n=%zu k=%zu",
                           dn_status_name((dnnl_status_t)s), g->m, g->n, g->k);
    return QKV_OK;
}
