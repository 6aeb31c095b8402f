/*
 * sgemm.h - qkv's float32 GEMM: packed operands, a register-tile micro-kernel
 * per ISA level chosen at run time from the CPU's features, threads split
 * over blocks of C, and B packed once per session when it is a constant.
 *
 * Blocking (Goto/BLIS): for each (batch entry, MC-row block, NC-column block)
 * of C, a unit of work, and for each KC slice of k: op(A)'s (MC, KC) block is
 * packed into MR-row slivers (MR values per k step), op(B)'s (KC, NC) block
 * is packed into NR-column panels (or read from the prepacked copy), and the
 * micro-kernel computes each MR x NR tile of C from one sliver and one panel.
 * The panel (KC x NR, 16 KiB) stays in L1 while the slivers stream from L2.
 *
 * Threads: the units go to host->parallel_for, so each thread packs only the
 * blocks it computes. Packing buffers live on the stack (at most 224 KiB):
 * nothing is allocated while a GEMM runs.
 */
#ifndef QKV_SGEMM_H
#define QKV_SGEMM_H

#include <stdbool.h>
#include <stddef.h>

#include "qkv_plugin.h"

/* One ISA level's micro-kernel and blocking. */
typedef struct qkv_sgemm_arch {
    const char *name;  /* "avx512", "avx2", "baseline" */
    size_t mr, nr;     /* the register tile */
    size_t kc, mc, nc; /* cache blocks: kc <= QKV_SGEMM_MAX_KC, mc * kc and kc * nc within
                        * the stack buffers; mc a multiple of mr, nc of nr */
    /* The tile c (mr x nr, row stride ldc) = alpha * ap . bp + beta * c, where
     * ap is a packed sliver (kc x mr, mr values per k step) and bp a packed
     * panel (kc x nr). beta 0: c is not read. kc >= 1. */
    void (*tile)(size_t kc, const float *ap, const float *bp, float *c, size_t ldc, float alpha,
                 float beta);
} qkv_sgemm_arch;

#define QKV_SGEMM_MAX_KC 256
#define QKV_SGEMM_MAX_A_FLOATS (96 * 256)  /* mc * kc of every arch */
#define QKV_SGEMM_MAX_B_FLOATS (256 * 128) /* kc * nc of every arch */
#define QKV_SGEMM_MAX_TILE 256             /* mr * nr of every arch */

/* The kernels of each level, for tests and reports; a level the build or
 * the CPU lacks gives NULL. */
const qkv_sgemm_arch *qkv_sgemm_arch_for(int isa_level);
/* The kernel set of the CPU's level (qkv_cpu_isa(), capped by QKV_ISA). */
const qkv_sgemm_arch *qkv_sgemm_arch_get(void);

/* op(B) (k, n) packed for one arch: KC slices of k, each NR-column panels of
 * (kc, nr) floats, zero padded to a whole panel. */
typedef struct qkv_sgemm_packed_b {
    const qkv_sgemm_arch *arch; /* the layout's arch: runs use this one */
    size_t k, n;
    float *data;             /* packed_b_floats(k, n) floats */
    void (*free)(void *ptr); /* frees data (the allocator's; NULL when data is NULL) */
} qkv_sgemm_packed_b;

/* Floats of a packed (k, n) op(B) for arch (0 on size_t overflow). */
size_t qkv_sgemm_packed_b_floats(const qkv_sgemm_arch *arch, size_t k, size_t n);

/* Packs op(B) into dst (qkv_sgemm_packed_b_floats floats): B is stored
 * (k, n) with row stride ldb, or (n, k) when trans_b. */
void qkv_sgemm_pack_b(const qkv_sgemm_arch *arch, const float *b, size_t ldb, bool trans_b,
                      size_t k, size_t n, float *dst);

/* Work on a finished block of C, run by the thread that computed it while
 * the block is still in its cache: bias, activation, residual (the fused
 * epilogue of FusedMatMul). c points at element (row0, col0) of batch entry
 * `batch`'s C; the block is rows x cols with row stride ldc. */
typedef struct qkv_sgemm_post {
    void (*fn)(const void *arg, size_t batch, float *c, size_t ldc, size_t row0, size_t col0,
               size_t rows, size_t cols);
    const void *arg;
} qkv_sgemm_post;

/*
 * Runs the float32 batch g (validated by the caller: dtype float, leading
 * dimensions consistent) with the given kernels, split over host_ctx's
 * threads. With pb, op(B) comes from the packed copy (g->b, ldb and trans_b
 * are ignored; pb->k == g->k and pb->n == g->n; every b_stride must be 0) and
 * runs on pb->arch. Allocates nothing.
 */
void qkv_sgemm_run(const qkv_host_api *host, void *host_ctx, const qkv_sgemm_arch *arch,
                   const qkv_gemm *g, const qkv_sgemm_packed_b *pb);

/* qkv_sgemm_run, then post->fn on every block of C once it is final (post
 * may be NULL). */
void qkv_sgemm_run_post(const qkv_host_api *host, void *host_ctx, const qkv_sgemm_arch *arch,
                        const qkv_gemm *g, const qkv_sgemm_packed_b *pb,
                        const qkv_sgemm_post *post);

#endif /* QKV_SGEMM_H */
