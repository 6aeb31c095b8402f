/*
 * gemm_harness.c - the shared part of the GEMM comparison tools
 * (gemm_harness.h).
 */
#include "gemm_harness.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "cpu_features.h"

static clockid_t timer = CLOCK_MONOTONIC;

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(timer, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

int gemm_bench_init(gemm_bench *b, const char *prog, int argc, char **argv)
{
    memset(b, 0, sizeof *b);
    b->threads = 1;
    b->reps = 5;
    for (int i = 1; i < argc; i += 2) {
        if (i + 1 < argc && strcmp(argv[i], "--threads") == 0)
            b->threads = (size_t)atoi(argv[i + 1]);
        else if (i + 1 < argc && strcmp(argv[i], "--reps") == 0)
            b->reps = (size_t)atoi(argv[i + 1]);
        else {
            fprintf(stderr, "usage: %s [--threads T] [--reps R]\n", prog);
            return 2;
        }
    }
    if (b->threads < 1 || b->reps < 1) {
        fprintf(stderr, "%s: --threads and --reps must be >= 1\n", prog);
        return 2;
    }
    if (b->threads == 1)
        timer = CLOCK_THREAD_CPUTIME_ID;
    b->pool = b->threads > 1 ? qkv_threadpool_create(b->threads) : NULL;
    b->hctx = (qkv_host_ctx){.pool = b->pool, .threads = b->threads};
    char feats[256];
    printf("cpu: %s [%s], threads %zu, best of %zu\n", qkv_cpu_brand(),
           qkv_cpu_features_str(qkv_cpu_features_get(), feats, sizeof feats), b->threads, b->reps);
    return 0;
}

void gemm_bench_fini(gemm_bench *b)
{
    qkv_threadpool_destroy(b->pool);
    b->pool = NULL;
}

void gemm_bench_time(const gemm_bench *b, size_t nv, double flops, gemm_bench_fn fn, void *ctx,
                     double *best)
{
    size_t inner = flops < 1e9 ? (size_t)(1e9 / flops) + 1 : 1;
    for (size_t v = 0; v < nv; v++)
        best[v] = 1e30;
    for (size_t r = 0; r <= b->reps; r++) {
        for (size_t v = 0; v < nv; v++) {
            double t0 = now_s();
            for (size_t it = 0; it < inner; it++)
                fn(ctx, v);
            double t = (now_s() - t0) / (double)inner;
            if (r > 0 && t < best[v]) /* repetition 0 warms up */
                best[v] = t;
        }
    }
}
