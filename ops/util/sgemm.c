/*
 * sgemm.c - the driver of qkv's float32 GEMM (sgemm.h): kernel choice,
 * packing, blocking and the split over threads. The micro-kernels are in
 * sgemm_avx2.c and sgemm_avx512.c; the baseline one is below.
 */
#include "sgemm.h"

#include <string.h>

#include "cpu_features.h"
#include "gemm_blocks.h"

/* Below this many multiply-adds a GEMM runs on the calling thread: waking
 * the pool costs a few microseconds. */
#define PAR_MIN_MACS ((double)(1u << 17))
/* The widest column block with a prepacked B (a multiple of every nr). */
#define PACKED_MAX_NC 1024

const qkv_sgemm_arch *qkv_sgemm_avx2_arch(void);
const qkv_sgemm_arch *qkv_sgemm_avx512_arch(void);

/* ---- the baseline micro-kernel: plain C the compiler vectorises (SSE2) ---- */

#define BASE_MR 4
#define BASE_NR 8

static void tile_baseline(size_t kc, const float *ap, const float *bp, float *c, size_t ldc,
                          float alpha, float beta)
{
    float acc[BASE_MR][BASE_NR] = {{0}};
    for (size_t p = 0; p < kc; p++) {
        const float *restrict brow = bp + p * BASE_NR;
        for (size_t i = 0; i < BASE_MR; i++) {
            float ai = ap[p * BASE_MR + i];
            for (size_t j = 0; j < BASE_NR; j++)
                acc[i][j] += ai * brow[j];
        }
    }
    for (size_t i = 0; i < BASE_MR; i++) {
        float *restrict crow = c + i * ldc;
        for (size_t j = 0; j < BASE_NR; j++)
            crow[j] = beta == 0 ? alpha * acc[i][j] : alpha * acc[i][j] + beta * crow[j];
    }
}

static const qkv_sgemm_arch baseline_arch = {
    .name = "baseline",
    .mr = BASE_MR,
    .nr = BASE_NR,
    .kc = 256,
    .mc = 64,
    .nc = 128,
    .tile = tile_baseline,
};

const qkv_sgemm_arch *qkv_sgemm_arch_for(int isa_level)
{
    const qkv_sgemm_arch *arch = NULL;
    qkv_isa cpu = qkv_cpu_isa();
    if (isa_level > (int)cpu)
        return NULL;
    switch (isa_level) {
    case QKV_ISA_BASELINE:
        arch = &baseline_arch;
        break;
    case QKV_ISA_AVX2:
        arch = qkv_sgemm_avx2_arch();
        break;
    case QKV_ISA_AVX512:
        arch = qkv_sgemm_avx512_arch();
        break;
    default:
        break;
    }
    return arch;
}

const qkv_sgemm_arch *qkv_sgemm_arch_get(void)
{
    for (int level = (int)qkv_cpu_isa(); level > QKV_ISA_BASELINE; level--) {
        const qkv_sgemm_arch *arch = qkv_sgemm_arch_for(level);
        if (arch)
            return arch;
    }
    return &baseline_arch;
}

/* ---- packing ---------------------------------------------------------------- */

static size_t round_up(size_t x, size_t to) { return (x + to - 1) / to * to; }

/* op(B)[k0 .. k0+kc) x [n0 .. n0+nc) as ceil(nc / nr) panels of (kc, nr),
 * zero padded. B stored (k, n) is read row by row (contiguous), each row
 * scattered over the panels: walking one panel down the rows instead would
 * touch a new page every row. */
static void pack_b_block(size_t nr, const float *b, size_t ldb, bool trans_b, size_t k0, size_t kc,
                         size_t n0, size_t nc, float *restrict dst)
{
    size_t full = nc / nr * nr, rem = nc - full;
    if (!trans_b) {
        for (size_t p = 0; p < kc; p++) {
            const float *src = b + (k0 + p) * ldb + n0;
            float *d = dst + p * nr;
            for (size_t j0 = 0; j0 < full; j0 += nr)
                memcpy(d + j0 * kc, src + j0, nr * sizeof(float));
            if (rem) {
                float *dr = d + full * kc;
                memcpy(dr, src + full, rem * sizeof(float));
                memset(dr + rem, 0, (nr - rem) * sizeof(float));
            }
        }
        return;
    }
    /* B stored (n, k): column j of op(B) is row j of B, contiguous in k */
    for (size_t j0 = 0; j0 < nc; j0 += nr) {
        size_t w = nc - j0 < nr ? nc - j0 : nr;
        float *restrict d = dst + j0 * kc;
        for (size_t j = 0; j < w; j++) {
            const float *src = b + (n0 + j0 + j) * ldb + k0;
            for (size_t p = 0; p < kc; p++)
                d[p * nr + j] = src[p];
        }
        for (size_t j = w; j < nr; j++)
            for (size_t p = 0; p < kc; p++)
                d[p * nr + j] = 0;
    }
}

/* op(A)[m0 .. m0+mc) x [k0 .. k0+kc) as ceil(mc / mr) slivers of (kc, mr),
 * zero padded. */
static void pack_a_block(size_t mr, const float *a, size_t lda, bool trans_a, size_t m0, size_t mc,
                         size_t k0, size_t kc, float *restrict dst)
{
    for (size_t i0 = 0; i0 < mc; i0 += mr) {
        size_t h = mc - i0 < mr ? mc - i0 : mr;
        if (trans_a) { /* A stored (k, m): each k step's mr values are contiguous */
            for (size_t p = 0; p < kc; p++) {
                const float *src = a + (k0 + p) * lda + m0 + i0;
                float *restrict d = dst + p * mr;
                for (size_t i = 0; i < h; i++)
                    d[i] = src[i];
                for (size_t i = h; i < mr; i++)
                    d[i] = 0;
            }
        } else {
            for (size_t i = 0; i < h; i++) {
                const float *restrict src = a + (m0 + i0 + i) * lda + k0;
                for (size_t p = 0; p < kc; p++)
                    dst[p * mr + i] = src[p];
            }
            for (size_t i = h; i < mr; i++)
                for (size_t p = 0; p < kc; p++)
                    dst[p * mr + i] = 0;
        }
        dst += kc * mr;
    }
}

size_t qkv_sgemm_packed_b_floats(const qkv_sgemm_arch *arch, size_t k, size_t n)
{
    size_t npad = round_up(n, arch->nr);
    if (npad < n || (k && npad > SIZE_MAX / k))
        return 0;
    return k * npad;
}

void qkv_sgemm_pack_b(const qkv_sgemm_arch *arch, const float *b, size_t ldb, bool trans_b,
                      size_t k, size_t n, float *dst)
{
    size_t npad = round_up(n, arch->nr);
    for (size_t k0 = 0; k0 < k; k0 += arch->kc) {
        size_t kc = k - k0 < arch->kc ? k - k0 : arch->kc;
        pack_b_block(arch->nr, b, ldb, trans_b, k0, kc, 0, n, dst + k0 * npad);
    }
}

/* ---- the blocked product ------------------------------------------------------ */

typedef struct sgemm_job {
    const qkv_gemm *g;
    const qkv_sgemm_arch *arch;
    const qkv_sgemm_packed_b *pb;
    const qkv_sgemm_post *post; /* NULL: none */
} sgemm_job;

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

/* The tile at c (h x w valid of mr x nr) through a full-size temporary. */
static void edge_tile(const qkv_sgemm_arch *arch, size_t kc, const float *ap, const float *bp,
                      float *c, size_t ldc, size_t h, size_t w, float alpha, float beta)
{
    _Alignas(64) float tmp[QKV_SGEMM_MAX_TILE];
    arch->tile(kc, ap, bp, tmp, arch->nr, alpha, 0.0f);
    for (size_t i = 0; i < h; i++) {
        float *crow = c + i * ldc;
        const float *trow = tmp + i * arch->nr;
        for (size_t j = 0; j < w; j++)
            crow[j] = beta == 0 ? trow[j] : trow[j] + beta * crow[j];
    }
}

/* C = beta * C over an (m, n) block: a GEMM with k == 0. */
static void scale_block(float *c, size_t ldc, size_t m, size_t n, float beta)
{
    for (size_t i = 0; i < m; i++)
        for (size_t j = 0; j < n; j++)
            c[i * ldc + j] = beta == 0 ? 0.0f : beta * c[i * ldc + j];
}

/* One unit: C block (m0, mc) x (n0, nc) of batch entry `batch`. */
static void run_unit(const void *arg, size_t batch, size_t m0, size_t mc, size_t n0, size_t nc)
{
    const sgemm_job *job = arg;
    const qkv_gemm *g = job->g;
    const qkv_sgemm_arch *arch = job->arch;
    const size_t mr = arch->mr, nr = arch->nr;
    _Alignas(64) float abuf[QKV_SGEMM_MAX_A_FLOATS];
    _Alignas(64) float bbuf[QKV_SGEMM_MAX_B_FLOATS];
    size_t oa, ob, oc;
    batch_offsets(g, batch, &oa, &ob, &oc);
    const float *a = (const float *)g->a + oa;
    const float *b = job->pb ? NULL : (const float *)g->b + ob;
    float *c = (float *)g->c + oc + m0 * g->ldc + n0;
    const float alpha = (float)g->alpha, beta = (float)g->beta;
    if (g->k == 0)
        scale_block(c, g->ldc, mc, nc, beta);
    size_t npad = round_up(g->n, nr);
    for (size_t k0 = 0; k0 < g->k; k0 += arch->kc) {
        size_t kc = g->k - k0 < arch->kc ? g->k - k0 : arch->kc;
        float beta_k = k0 == 0 ? beta : 1.0f;
        pack_a_block(mr, a, g->lda, g->trans_a, m0, mc, k0, kc, abuf);
        const float *panels;
        if (job->pb) {
            panels = job->pb->data + k0 * npad + (n0 / nr) * kc * nr;
        } else {
            pack_b_block(nr, b, g->ldb, g->trans_b, k0, kc, n0, nc, bbuf);
            panels = bbuf;
        }
        for (size_t j0 = 0; j0 < nc; j0 += nr) {
            const float *bp = panels + (j0 / nr) * kc * nr;
            size_t w = nc - j0 < nr ? nc - j0 : nr;
            for (size_t i0 = 0; i0 < mc; i0 += mr) {
                const float *ap = abuf + (i0 / mr) * kc * mr;
                size_t h = mc - i0 < mr ? mc - i0 : mr;
                float *ct = c + i0 * g->ldc + j0;
                if (h == mr && w == nr)
                    arch->tile(kc, ap, bp, ct, g->ldc, alpha, beta_k);
                else
                    edge_tile(arch, kc, ap, bp, ct, g->ldc, h, w, alpha, beta_k);
            }
        }
    }
    if (job->post)
        job->post->fn(job->post->arg, batch, c, g->ldc, m0, n0, mc, nc);
}

void qkv_sgemm_run(const qkv_host_api *host, void *host_ctx, const qkv_sgemm_arch *arch,
                   const qkv_gemm *g, const qkv_sgemm_packed_b *pb)
{
    qkv_sgemm_run_post(host, host_ctx, arch, g, pb, NULL);
}

void qkv_sgemm_run_post(const qkv_host_api *host, void *host_ctx, const qkv_sgemm_arch *arch,
                        const qkv_gemm *g, const qkv_sgemm_packed_b *pb, const qkv_sgemm_post *post)
{
    size_t nbatch = 1;
    for (int32_t j = 0; j < g->batch_rank; j++)
        nbatch *= g->batch_dims[j]; /* C holds nbatch * m * n elements: no overflow */
    if (nbatch == 0 || g->m == 0 || g->n == 0)
        return;
    if (pb)
        arch = pb->arch;
    sgemm_job job = {.g = g, .arch = arch, .pb = pb, .post = post};
    const qkv_gemm_block_sizes sz = {arch->mr, arch->nr, arch->mc, arch->nc, PACKED_MAX_NC};
    qkv_gemm_blocks blocks;
    size_t threads = host && host_ctx ? host->thread_count(host_ctx) : 1;
    qkv_gemm_blocks_plan(&blocks, &sz, nbatch, g->m, g->n, pb != NULL, threads);
    double macs = (double)nbatch * (double)g->m * (double)g->n * (double)(g->k ? g->k : 1);
    qkv_gemm_blocks_run(host, host_ctx, &blocks, macs, PAR_MIN_MACS, run_unit, &job);
}
