/*
 * gemm_compare.c - qkv's own float32 GEMM (ops/util/sgemm.h) at each ISA level
 * this CPU has, with B packed per call and prepacked once, next to OpenBLAS
 * cblas_sgemm (one thread; its core as OpenBLAS chose it), on the shapes of
 * a transformer layer and a square one. Interleaved: each repetition runs
 * every variant once, and the best time of R repetitions is kept, so drift
 * on a shared machine hits all variants alike.
 *
 * With one thread the times are the thread's CPU time (robust on a shared
 * machine); with more, wall time.
 *
 * usage: gemm_compare [--threads T] [--reps R]
 * Prints one line per (shape, variant): GFLOP/s and the ratio to OpenBLAS.
 * A benchmark tool, not part of qkv: it links qkv's internals and OpenBLAS.
 */
#include <cblas.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "cpu_features.h"
#include "kernel_host.h"
#include "sgemm.h"
#include "threadpool.h"

char *openblas_get_corename(void);
void openblas_set_num_threads(int);

/* One thread: the thread's CPU time, which other processes on a busy
 * machine barely disturb; more threads: wall time. */
static clockid_t timer = CLOCK_MONOTONIC;

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(timer, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

typedef struct variant {
    char name[48];
    const qkv_sgemm_arch *arch; /* NULL: OpenBLAS */
    bool packed;
    double best;
} variant;

int main(int argc, char **argv)
{
    size_t threads = 1, reps = 5;
    for (int i = 1; i + 1 < argc; i += 2) {
        if (strcmp(argv[i], "--threads") == 0)
            threads = (size_t)atoi(argv[i + 1]);
        else if (strcmp(argv[i], "--reps") == 0)
            reps = (size_t)atoi(argv[i + 1]);
        else {
            fprintf(stderr, "usage: gemm_compare [--threads T] [--reps R]\n");
            return 2;
        }
    }
    if (threads < 1 || reps < 1) {
        fprintf(stderr, "gemm_compare: --threads and --reps must be >= 1\n");
        return 2;
    }
    openblas_set_num_threads((int)threads);
    if (threads == 1)
        timer = CLOCK_THREAD_CPUTIME_ID;
    static const size_t shapes[][3] = {{128, 3072, 768}, {128, 768, 3072}, {128, 2304, 768},
                                       {128, 768, 768},  {1024, 1024, 1024}};
    variant vs[8];
    size_t nv = 0;
    for (int level = QKV_ISA_BASELINE; level <= QKV_ISA_AVX512; level++) {
        const qkv_sgemm_arch *arch = qkv_sgemm_arch_for(level);
        if (!arch)
            continue;
        for (int packed = 0; packed < 2; packed++) {
            vs[nv] = (variant){.arch = arch, .packed = packed};
            snprintf(vs[nv].name, sizeof vs[nv].name, "qkv %s%s", arch->name,
                     packed ? " prepacked" : "");
            nv++;
        }
    }
    vs[nv] = (variant){.arch = NULL};
    snprintf(vs[nv].name, sizeof vs[nv].name, "openblas %s", openblas_get_corename());
    nv++;
    qkv_threadpool *pool = threads > 1 ? qkv_threadpool_create(threads) : NULL;
    qkv_host_ctx hctx = {.pool = pool, .threads = threads};
    char feats[256];
    printf("cpu: %s [%s], threads %zu, best of %zu\n", qkv_cpu_brand(),
           qkv_cpu_features_str(qkv_cpu_features_get(), feats, sizeof feats), threads, reps);
    for (size_t s = 0; s < sizeof shapes / sizeof shapes[0]; s++) {
        size_t m = shapes[s][0], n = shapes[s][1], k = shapes[s][2];
        float *a = malloc(m * k * sizeof *a), *b = malloc(k * n * sizeof *b);
        float *c = malloc(m * n * sizeof *c);
        for (size_t i = 0; i < m * k; i++)
            a[i] = (float)(i % 7) * 0.1f;
        for (size_t i = 0; i < k * n; i++)
            b[i] = (float)(i % 5) * 0.1f;
        qkv_sgemm_packed_b pbs[8] = {{0}};
        for (size_t v = 0; v < nv; v++) {
            vs[v].best = 1e30;
            if (vs[v].arch && vs[v].packed) {
                pbs[v] = (qkv_sgemm_packed_b){.arch = vs[v].arch, .k = k, .n = n};
                pbs[v].data = malloc(qkv_sgemm_packed_b_floats(vs[v].arch, k, n) * sizeof(float));
                qkv_sgemm_pack_b(vs[v].arch, b, n, false, k, n, pbs[v].data);
            }
        }
        qkv_gemm g = {.struct_size = sizeof g, .abi_version = QKV_ABI_VERSION,
                      .dtype = QKV_DTYPE_FLOAT, .m = m, .n = n, .k = k, .alpha = 1, .beta = 0,
                      .a = a, .lda = k, .b = b, .ldb = n, .c = c, .ldc = n};
        double flops = 2.0 * (double)m * (double)n * (double)k;
        size_t inner = flops < 1e9 ? (size_t)(1e9 / flops) + 1 : 1;
        for (size_t r = 0; r <= reps; r++) {
            for (size_t v = 0; v < nv; v++) {
                double t0 = now_s();
                for (size_t it = 0; it < inner; it++) {
                    if (vs[v].arch)
                        qkv_sgemm_run(qkv_host_api_get(), &hctx, vs[v].arch, &g,
                                      vs[v].packed ? &pbs[v] : NULL);
                    else
                        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, (int)m, (int)n,
                                    (int)k, 1.0f, a, (int)k, b, (int)n, 0.0f, c, (int)n);
                }
                double t = (now_s() - t0) / (double)inner;
                if (r > 0 && t < vs[v].best) /* repetition 0 warms up */
                    vs[v].best = t;
            }
        }
        double ref = vs[nv - 1].best;
        for (size_t v = 0; v < nv; v++) {
            printf("m=%zu n=%zu k=%zu  %-24s %7.1f GFLOP/s  x%.2f of openblas\n", m, n, k,
                   vs[v].name, flops / vs[v].best * 1e-9, ref / vs[v].best);
            free(pbs[v].data);
        }
        free(a);
        free(b);
        free(c);
    }
    qkv_threadpool_destroy(pool);
    return 0;
}
