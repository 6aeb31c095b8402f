/*
 * gemm_compare.c - qkv's own float32 GEMM (ops/util/sgemm.h) at each ISA level
 * this CPU has, with B packed per call and prepacked once, next to OpenBLAS
 * cblas_sgemm (one thread; its core as OpenBLAS chose it), on the shapes of
 * a transformer layer and a square one, timed by gemm_harness.c
 * (interleaved, best of R; one thread: CPU time).
 *
 * usage: gemm_compare [--threads T] [--reps R]
 * Prints one line per (shape, variant): GFLOP/s and the ratio to OpenBLAS.
 * A benchmark tool, not part of qkv: it links qkv's internals and OpenBLAS.
 */
#include <cblas.h>
#include <stdio.h>
#include <stdlib.h>

#include "cpu_features.h"
#include "gemm_harness.h"
#include "sgemm.h"

char *openblas_get_corename(void);
void openblas_set_num_threads(int);

typedef struct variant {
    char name[48];
    const qkv_sgemm_arch *arch; /* NULL: OpenBLAS */
    bool packed;
    qkv_sgemm_packed_b pb;
} variant;

typedef struct shape_run {
    gemm_bench *bench;
    variant *vs;
    const qkv_gemm *g;
} shape_run;

static void run_variant(void *ctx, size_t v)
{
    const shape_run *r = ctx;
    const variant *x = &r->vs[v];
    const qkv_gemm *g = r->g;
    if (x->arch)
        qkv_sgemm_run(qkv_host_api_get(), &r->bench->hctx, x->arch, g, x->packed ? &x->pb : NULL);
    else
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, (int)g->m, (int)g->n, (int)g->k,
                    1.0f, g->a, (int)g->lda, g->b, (int)g->ldb, 0.0f, g->c, (int)g->ldc);
}

int main(int argc, char **argv)
{
    gemm_bench bench;
    int rc = gemm_bench_init(&bench, "gemm_compare", argc, argv);
    if (rc != 0)
        return rc;
    openblas_set_num_threads((int)bench.threads);
    static const size_t shapes[][3] = {
        {128, 3072, 768}, {128, 768, 3072}, {128, 2304, 768}, {128, 768, 768}, {1024, 1024, 1024}};
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
    for (size_t s = 0; s < sizeof shapes / sizeof shapes[0]; s++) {
        size_t m = shapes[s][0], n = shapes[s][1], k = shapes[s][2];
        float *a = malloc(m * k * sizeof *a), *b = malloc(k * n * sizeof *b);
        float *c = malloc(m * n * sizeof *c);
        for (size_t i = 0; i < m * k; i++)
            a[i] = (float)(i % 7) * 0.1f;
        for (size_t i = 0; i < k * n; i++)
            b[i] = (float)(i % 5) * 0.1f;
        for (size_t v = 0; v < nv; v++) {
            if (vs[v].arch && vs[v].packed) {
                vs[v].pb = (qkv_sgemm_packed_b){.arch = vs[v].arch, .k = k, .n = n};
                vs[v].pb.data = malloc(qkv_sgemm_packed_b_floats(vs[v].arch, k, n) * sizeof(float));
                qkv_sgemm_pack_b(vs[v].arch, b, n, false, k, n, vs[v].pb.data);
            }
        }
        qkv_gemm g = {.struct_size = sizeof g,
                      .abi_version = QKV_ABI_VERSION,
                      .dtype = QKV_DTYPE_FLOAT,
                      .m = m,
                      .n = n,
                      .k = k,
                      .alpha = 1,
                      .beta = 0,
                      .a = a,
                      .lda = k,
                      .b = b,
                      .ldb = n,
                      .c = c,
                      .ldc = n};
        double flops = 2.0 * (double)m * (double)n * (double)k, best[8];
        shape_run run = {&bench, vs, &g};
        gemm_bench_time(&bench, nv, flops, run_variant, &run, best);
        double ref = best[nv - 1];
        for (size_t v = 0; v < nv; v++) {
            printf("m=%zu n=%zu k=%zu  %-24s %7.1f GFLOP/s  x%.2f of openblas\n", m, n, k,
                   vs[v].name, flops / best[v] * 1e-9, ref / best[v]);
            free(vs[v].pb.data);
            vs[v].pb.data = NULL;
        }
        free(a);
        free(b);
        free(c);
    }
    gemm_bench_fini(&bench);
    return 0;
}
