/*
 * gemm_harness.h - what the GEMM comparison tools (gemm_compare.c,
 * igemm_compare.c) share: the command line, the clock, the thread pool and
 * the interleaved best-of-R timing.
 *
 * Interleaved: each repetition runs every variant once, and the best time of
 * R repetitions is kept (repetition 0 warms up), so drift on a shared
 * machine hits all variants alike. With one thread the times are the
 * thread's CPU time (robust on a shared machine); with more, wall time.
 */
#ifndef QKV_BENCH_GEMM_HARNESS_H
#define QKV_BENCH_GEMM_HARNESS_H

#include <stddef.h>

#include "kernel_host.h"
#include "threadpool.h"

typedef struct gemm_bench {
    size_t threads, reps;
    qkv_threadpool *pool; /* NULL with one thread */
    qkv_host_ctx hctx;    /* what the GEMMs run on */
} gemm_bench;

/* Parses "[--threads T] [--reps R]" (defaults 1 and 5), chooses the clock,
 * makes the pool and prints the CPU line. Returns 0, or 2 after a usage
 * message naming prog. */
int gemm_bench_init(gemm_bench *b, const char *prog, int argc, char **argv);
void gemm_bench_fini(gemm_bench *b);

/* Runs one variant once. */
typedef void (*gemm_bench_fn)(void *ctx, size_t variant);

/* best[v] = the best seconds per call of variant v < nv, each timed over
 * enough calls to make about 1 GFLOP (`flops` per call). */
void gemm_bench_time(const gemm_bench *b, size_t nv, double flops, gemm_bench_fn fn, void *ctx,
                     double *best);

#endif /* QKV_BENCH_GEMM_HARNESS_H */
