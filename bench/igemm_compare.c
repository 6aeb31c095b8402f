/*
 * igemm_compare.c - qkv's int8 GEMM (ops/igemm.h), every variant this CPU
 * runs, with B packed per call and prepacked once, next to qkv's float32
 * GEMM (ops/sgemm.h, the CPU's best level, B prepacked) on the shapes of a
 * BERT-base layer: the feed-forward (128 x 768 -> 3072, 128 x 3072 -> 768)
 * and the attention projections. uint8 A x int8 B with nonzero zero points
 * for A, as dynamic quantization gives. Interleaved: each repetition runs
 * every variant once; the best time of R repetitions is kept.
 *
 * One thread: the thread's CPU time; more: wall time.
 *
 * usage: igemm_compare [--threads T] [--reps R]
 * Prints one line per (shape, variant): GOP/s (2 ops per multiply-add) and
 * the speedup over the float32 GEMM. A benchmark tool, not part of qkv.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "cpu_features.h"
#include "igemm.h"
#include "kernel_host.h"
#include "sgemm.h"
#include "threadpool.h"

static clockid_t timer = CLOCK_MONOTONIC;

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(timer, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

typedef struct variant {
    char name[48];
    const qkv_igemm_arch *arch; /* NULL: float32 sgemm, prepacked */
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
            fprintf(stderr, "usage: igemm_compare [--threads T] [--reps R]\n");
            return 2;
        }
    }
    if (threads < 1 || reps < 1) {
        fprintf(stderr, "igemm_compare: --threads and --reps must be >= 1\n");
        return 2;
    }
    if (threads == 1)
        timer = CLOCK_THREAD_CPUTIME_ID;
    static const size_t shapes[][3] = {{128, 3072, 768}, {128, 768, 3072}, {128, 2304, 768},
                                       {128, 768, 768}};
    uint64_t cpu = qkv_cpu_features_get();
    variant vs[12];
    size_t nv = 0;
    const qkv_igemm_arch *arch;
    for (size_t i = 0; (arch = qkv_igemm_arch_at(i)) != NULL; i++) {
        if ((qkv_igemm_arch_needs(arch) & cpu) != qkv_igemm_arch_needs(arch))
            continue;
        for (int packed = 1; packed >= 0; packed--) {
            vs[nv] = (variant){.arch = arch, .packed = packed};
            snprintf(vs[nv].name, sizeof vs[nv].name, "int8 %s%s", qkv_igemm_arch_name(arch),
                     packed ? " prepacked" : "");
            nv++;
        }
    }
    const qkv_sgemm_arch *sarch = qkv_sgemm_arch_get();
    vs[nv] = (variant){.arch = NULL};
    snprintf(vs[nv].name, sizeof vs[nv].name, "float32 %s prepacked", sarch->name);
    nv++;
    qkv_threadpool *pool = threads > 1 ? qkv_threadpool_create(threads) : NULL;
    qkv_host_ctx hctx = {.pool = pool, .threads = threads};
    char feats[256];
    printf("cpu: %s [%s], threads %zu, best of %zu\n", qkv_cpu_brand(),
           qkv_cpu_features_str(cpu, feats, sizeof feats), threads, reps);
    for (size_t s = 0; s < sizeof shapes / sizeof shapes[0]; s++) {
        size_t m = shapes[s][0], n = shapes[s][1], k = shapes[s][2];
        uint8_t *a = malloc(m * k), *b = malloc(k * n), za = 131;
        int32_t *c = malloc(m * n * sizeof *c);
        float *af = malloc(m * k * sizeof *af), *bf = malloc(k * n * sizeof *bf);
        float *cf = malloc(m * n * sizeof *cf);
        for (size_t i = 0; i < m * k; i++) {
            a[i] = (uint8_t)(i * 37 % 251);
            af[i] = (float)(i % 7) * 0.1f;
        }
        for (size_t i = 0; i < k * n; i++) {
            b[i] = (uint8_t)(i * 101 % 253);
            bf[i] = (float)(i % 5) * 0.1f;
        }
        qkv_igemm_packed_b pbs[12];
        memset(pbs, 0, sizeof pbs);
        qkv_sgemm_packed_b spb = {.arch = sarch, .k = k, .n = n};
        spb.data = malloc(qkv_sgemm_packed_b_floats(sarch, k, n) * sizeof(float));
        qkv_sgemm_pack_b(sarch, bf, n, false, k, n, spb.data);
        for (size_t v = 0; v < nv; v++) {
            vs[v].best = 1e30;
            if (vs[v].arch && vs[v].packed)
                qkv_igemm_pack_b(vs[v].arch, b, n, true, false, k, n,
                                 malloc(qkv_igemm_packed_b_bytes(vs[v].arch, k, n)), &pbs[v]);
        }
        qkv_igemm g = {.m = m, .n = n, .k = k, .a = a, .lda = k, .b = b, .ldb = n,
                       .b_signed = true, .c = c, .ldc = n, .a_zero = &za};
        qkv_gemm sg = {.struct_size = sizeof sg, .abi_version = QKV_ABI_VERSION,
                       .dtype = QKV_DTYPE_FLOAT, .m = m, .n = n, .k = k, .alpha = 1, .beta = 0,
                       .a = af, .lda = k, .b = bf, .ldb = n, .c = cf, .ldc = n};
        double ops = 2.0 * (double)m * (double)n * (double)k;
        size_t inner = ops < 1e9 ? (size_t)(1e9 / ops) + 1 : 1;
        for (size_t r = 0; r <= reps; r++) {
            for (size_t v = 0; v < nv; v++) {
                double t0 = now_s();
                for (size_t it = 0; it < inner; it++) {
                    if (vs[v].arch)
                        qkv_igemm_run(qkv_host_api_get(), &hctx, vs[v].arch, &g,
                                      vs[v].packed ? &pbs[v] : NULL, NULL);
                    else
                        qkv_sgemm_run(qkv_host_api_get(), &hctx, sarch, &sg, &spb);
                }
                double t = (now_s() - t0) / (double)inner;
                if (r > 0 && t < vs[v].best) /* repetition 0 warms up */
                    vs[v].best = t;
            }
        }
        double ref = vs[nv - 1].best;
        for (size_t v = 0; v < nv; v++) {
            printf("m=%zu n=%zu k=%zu  %-28s %7.1f GOP/s  x%.2f of float32\n", m, n, k,
                   vs[v].name, ops / vs[v].best * 1e-9, ref / vs[v].best);
            free(pbs[v].data);
        }
        free(spb.data);
        free(a);
        free(b);
        free(c);
        free(af);
        free(bf);
        free(cf);
    }
    qkv_threadpool_destroy(pool);
    return 0;
}
