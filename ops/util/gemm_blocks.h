/*
 * gemm_blocks.h - the block scheduler the blocked GEMMs share (sgemm.c for
 * float32, ops/igemm.c for int8): C is cut into units of (batch entry,
 * MC-row block, NC-column block), n fastest, and the units go to
 * host->parallel_for when the product is large enough to be worth waking the
 * pool. The GEMM itself (packing, micro-kernels) stays with its driver: it
 * gives a function that computes one unit.
 */
#ifndef QKV_GEMM_BLOCKS_H
#define QKV_GEMM_BLOCKS_H

#include <stdbool.h>
#include <stddef.h>

#include "qkv_plugin.h"

/* How one GEMM is cut into units. */
typedef struct qkv_gemm_blocks {
    size_t m, n;               /* C's rows and columns per batch entry */
    size_t mc, nc;             /* block sizes (mc a multiple of mr, nc of nr) */
    size_t m_blocks, n_blocks; /* blocks per batch entry */
    size_t units;              /* nbatch * m_blocks * n_blocks */
} qkv_gemm_blocks;

/* The driver's arch, as the scheduler needs it. */
typedef struct qkv_gemm_block_sizes {
    size_t mr, nr; /* the register tile */
    size_t mc, nc; /* the cache blocks (nc with B packed per unit) */
    size_t max_nc; /* the widest column block with a prepacked B */
} qkv_gemm_block_sizes;

/*
 * Cuts an (nbatch x m x n) C into units, for `threads` threads. Row blocks
 * have equal heights (a multiple of mr), so that no block is a thin
 * remainder. With B prepacked (no B buffer to fit) the column blocks are
 * wider, so that each A block is packed fewer times, but there are still
 * about four units per thread to balance; otherwise they are sz->nc wide.
 * nbatch, m, n > 0.
 */
void qkv_gemm_blocks_plan(qkv_gemm_blocks *b, const qkv_gemm_block_sizes *sz, size_t nbatch,
                          size_t m, size_t n, bool packed_b, size_t threads);

/* Computes the C block (m0, mc) x (n0, nc) of batch entry `batch`. */
typedef void (*qkv_gemm_unit_fn)(const void *job, size_t batch, size_t m0, size_t mc, size_t n0,
                                 size_t nc);

/*
 * Runs fn over every unit of b: split over host->parallel_for when there is
 * more than one thread and one unit and at least min_macs multiply-adds
 * (`macs`), else on the calling thread. host may be NULL (one thread).
 */
void qkv_gemm_blocks_run(const qkv_host_api *host, void *host_ctx, const qkv_gemm_blocks *b,
                         double macs, double min_macs, qkv_gemm_unit_fn fn, const void *job);

#endif /* QKV_GEMM_BLOCKS_H */
