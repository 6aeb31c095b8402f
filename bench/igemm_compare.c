/*
 * igemm_compare.c - qkv's int8 GEMM (ops/igemm.h), every variant this CPU
 * runs, with B packed per call and prepacked once, next to qkv's float32
 * GEMM (ops/sgemm.h, the CPU's best level, B prepacked) on the shapes of a
 * BERT-base layer: the feed-forward (128 x 768 -> 3072, 128 x 3072 -> 768)
 * and the attention projections. uint8 A x int8 B with nonzero zero points
 * for A, as dynamic quantization gives. Timed by gemm_harness.c
 * (interleaved, best of R; one thread: CPU time).
 *
 * usage: igemm_compare [--threads T] [--reps R]
 * Prints one line per (shape, variant): GOP/s (2 ops per multiply-add) and
 * the speedup over the float32 GEMM. A benchmark tool, not part of qkv.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cpu_features.h"
#include "gemm_harness.h"
#include "igemm.h"
#include "sgemm.h"

typedef struct variant {
    char name[48];
    const qkv_igemm_arch *arch; /* NULL: float32 sgemm, prepacked */
    bool packed;
    qkv_igemm_packed_b pb;
} variant;

typedef struct shape_run {
    gemm_bench *bench;
    variant *vs;
    const qkv_igemm *g;
    const qkv_sgemm_arch *sarch;
    const qkv_gemm *sg;
    const qkv_sgemm_packed_b *spb;
} shape_run;

static void run_variant(void *ctx, size_t v)
{
    const shape_run *r = ctx;
    const variant *x = &r->vs[v];
    if (x->arch)
        qkv_igemm_run(qkv_host_api_get(), &r->bench->hctx, x->arch, r->g, x->packed ? &x->pb : NULL,
                      NULL);
    else
        qkv_sgemm_run(qkv_host_api_get(), &r->bench->hctx, r->sarch, r->sg, r->spb);
}

int main(int argc, char **argv)
{
    gemm_bench bench;
    int rc = gemm_bench_init(&bench, "igemm_compare", argc, argv);
    if (rc != 0)
        return rc;
    static const size_t shapes[][3] = {
        {128, 3072, 768}, {128, 768, 3072}, {128, 2304, 768}, {128, 768, 768}};
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
        qkv_sgemm_packed_b spb = {.arch = sarch, .k = k, .n = n};
        spb.data = malloc(qkv_sgemm_packed_b_floats(sarch, k, n) * sizeof(float));
        qkv_sgemm_pack_b(sarch, bf, n, false, k, n, spb.data);
        for (size_t v = 0; v < nv; v++) {
            memset(&vs[v].pb, 0, sizeof vs[v].pb);
            if (vs[v].arch && vs[v].packed)
                qkv_igemm_pack_b(vs[v].arch, b, n, true, false, k, n,
                                 malloc(qkv_igemm_packed_b_bytes(vs[v].arch, k, n)), &vs[v].pb);
        }
        qkv_igemm g = {.m = m,
                       .n = n,
                       .k = k,
                       .a = a,
                       .lda = k,
                       .b = b,
                       .ldb = n,
                       .b_signed = true,
                       .c = c,
                       .ldc = n,
                       .a_zero = &za};
        qkv_gemm sg = {.struct_size = sizeof sg,
                       .abi_version = QKV_ABI_VERSION,
                       .dtype = QKV_DTYPE_FLOAT,
                       .m = m,
                       .n = n,
                       .k = k,
                       .alpha = 1,
                       .beta = 0,
                       .a = af,
                       .lda = k,
                       .b = bf,
                       .ldb = n,
                       .c = cf,
                       .ldc = n};
        double ops = 2.0 * (double)m * (double)n * (double)k, best[12];
        shape_run run = {&bench, vs, &g, sarch, &sg, &spb};
        gemm_bench_time(&bench, nv, ops, run_variant, &run, best);
        double ref = best[nv - 1];
        for (size_t v = 0; v < nv; v++) {
            printf("m=%zu n=%zu k=%zu  %-28s %7.1f GOP/s  x%.2f of float32\n", m, n, k, vs[v].name,
                   ops / best[v] * 1e-9, ref / best[v]);
            free(vs[v].pb.data);
        }
        free(spb.data);
        free(a);
        free(b);
        free(c);
        free(af);
        free(bf);
        free(cf);
    }
    gemm_bench_fini(&bench);
    return 0;
}
