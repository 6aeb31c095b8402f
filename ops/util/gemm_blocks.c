/*
 * gemm_blocks.c - the block scheduler of the blocked GEMMs (gemm_blocks.h).
 */
#include "gemm_blocks.h"

static size_t round_up(size_t x, size_t to) { return (x + to - 1) / to * to; }

void qkv_gemm_blocks_plan(qkv_gemm_blocks *b, const qkv_gemm_block_sizes *sz, size_t nbatch,
                          size_t m, size_t n, bool packed_b, size_t threads)
{
    b->m = m;
    b->n = n;
    b->m_blocks = (m + sz->mc - 1) / sz->mc;
    b->mc = round_up((m + b->m_blocks - 1) / b->m_blocks, sz->mr);
    b->nc = sz->nc;
    if (packed_b) {
        size_t want_units = 4 * threads;
        size_t per_row = (want_units + nbatch * b->m_blocks - 1) / (nbatch * b->m_blocks);
        size_t nc = round_up((n + per_row - 1) / per_row, sz->nr);
        b->nc = nc < sz->nc ? sz->nc : nc > sz->max_nc ? sz->max_nc : nc;
    }
    b->n_blocks = (n + b->nc - 1) / b->nc;
    b->units = nbatch * b->m_blocks * b->n_blocks;
}

typedef struct blocks_job {
    const qkv_gemm_blocks *b;
    qkv_gemm_unit_fn fn;
    const void *job;
} blocks_job;

/* parallel_for body over units (batch, m block, n block), n fastest. */
static void run_units(void *arg, size_t begin, size_t end)
{
    const blocks_job *j = arg;
    const qkv_gemm_blocks *b = j->b;
    for (size_t u = begin; u < end; u++) {
        size_t nb = u % b->n_blocks, rest = u / b->n_blocks;
        size_t mb = rest % b->m_blocks, batch = rest / b->m_blocks;
        size_t m0 = mb * b->mc, n0 = nb * b->nc;
        size_t mc = b->m - m0 < b->mc ? b->m - m0 : b->mc;
        size_t nc = b->n - n0 < b->nc ? b->n - n0 : b->nc;
        j->fn(j->job, batch, m0, mc, n0, nc);
    }
}

void qkv_gemm_blocks_run(const qkv_host_api *host, void *host_ctx, const qkv_gemm_blocks *b,
                         double macs, double min_macs, qkv_gemm_unit_fn fn, const void *job)
{
    blocks_job j = {b, fn, job};
    size_t threads = host && host_ctx ? host->thread_count(host_ctx) : 1;
    if (threads > 1 && b->units > 1 && macs >= min_macs)
        host->parallel_for(host_ctx, b->units, run_units, &j);
    else
        run_units(&j, 0, b->units);
}
