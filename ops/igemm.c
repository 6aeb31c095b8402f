/*
 * igemm.c - the driver of qkv's int8 GEMM (igemm.h): variant choice,
 * packing into the uint8 x int8 form, blocking, zero-point corrections and
 * the split over threads. The SIMD micro-kernels are in igemm_vnni.c (both
 * VNNI widths, from igemm_vnni_tile.h) and igemm_avx2.c; the portable one is
 * below.
 */
#include "igemm.h"

#include <stdlib.h>
#include <string.h>

#include "gemm_blocks.h"
#include "igemm_arch.h"
#include "kernel_util.h"

/* Below this many multiply-adds a GEMM runs on the calling thread. */
#define PAR_MIN_MACS ((double)(1u << 18))
/* The widest column block with a prepacked B (a multiple of every nr). */
#define PACKED_MAX_NC 1024

/* ---- the portable micro-kernel ------------------------------------------------ */

#define BASE_MR 4
#define BASE_NR 8

static void tile_baseline(size_t groups, const void *ap_, const int8_t *bp, int32_t *c, size_t ldc,
                          bool accumulate)
{
    const uint8_t *ap = ap_;
    int32_t acc[BASE_MR][BASE_NR] = {{0}};
    for (size_t g = 0; g < groups; g++) {
        for (size_t i = 0; i < BASE_MR; i++)
            for (size_t j = 0; j < BASE_NR; j++)
                for (size_t t = 0; t < 4; t++)
                    acc[i][j] += (int32_t)ap[i * 4 + t] * (int32_t)bp[j * 4 + t];
        ap += BASE_MR * 4;
        bp += BASE_NR * 4;
    }
    for (size_t i = 0; i < BASE_MR; i++)
        for (size_t j = 0; j < BASE_NR; j++)
            c[i * ldc + j] = accumulate ? (int32_t)((uint32_t)c[i * ldc + j] + (uint32_t)acc[i][j])
                                        : acc[i][j]; /* wraps like vpaddd past k ~ 65,000 */
}

static const qkv_igemm_arch baseline_arch = {
    .name = "baseline",
    .needs = 0,
    .mr = BASE_MR,
    .nr = BASE_NR,
    .kgroup = 4,
    .a_elem_bytes = 1,
    .kc = 512,
    .mc = 64,
    .nc = 128,
    .tile = tile_baseline,
};

/* ---- variants ------------------------------------------------------------------- */

const qkv_igemm_arch *qkv_igemm_arch_at(size_t i)
{
    const qkv_igemm_arch *all[] = {qkv_igemm_avx512vnni_arch(), qkv_igemm_avxvnni_arch(),
                                   qkv_igemm_avx2_arch(), &baseline_arch};
    for (size_t j = 0; j < sizeof all / sizeof all[0]; j++) {
        if (!all[j])
            continue;
        if (i-- == 0)
            return all[j];
    }
    return NULL;
}

const qkv_igemm_arch *qkv_igemm_arch_select(uint64_t cpu_features)
{
    const qkv_igemm_arch *arch;
    for (size_t i = 0; (arch = qkv_igemm_arch_at(i)) != NULL; i++)
        if ((arch->needs & cpu_features) == arch->needs)
            return arch;
    return &baseline_arch;
}

uint64_t qkv_igemm_arch_needs(const qkv_igemm_arch *arch) { return arch->needs; }

const char *qkv_igemm_arch_name(const qkv_igemm_arch *arch) { return arch->name; }

/* ---- packing ---------------------------------------------------------------------- */

static size_t round_up(size_t x, size_t to) { return (x + to - 1) / to * to; }

/* The uint8 A value mapped into the uint8 x int8 form: int8 gets +128. */
static inline uint8_t a_canon(const uint8_t *a, size_t i, uint8_t flip) { return a[i] ^ flip; }

/*
 * A[m0 .. m0+mc) x [k0 .. k0+kc) (row stride lda) as ceil(mc / mr) slivers of
 * kcp = round_up(kc, kgroup), zero padded; adds each row's sum of the mapped
 * values to rowsum[i - m0].
 */
static void pack_a_block(const qkv_igemm_arch *arch, const uint8_t *a, size_t lda, bool a_signed,
                         size_t m0, size_t mc, size_t k0, size_t kc, void *dst, int32_t *rowsum)
{
    const size_t mr = arch->mr, kg = arch->kgroup;
    const size_t kcp = round_up(kc, kg), groups = kcp / kg;
    const uint8_t flip = a_signed ? 0x80 : 0;
    for (size_t i0 = 0; i0 < mc; i0 += mr) {
        size_t h = mc - i0 < mr ? mc - i0 : mr;
        if (h < mr) /* padding rows: zero, so their products are 0 */
            memset(dst, 0, kcp * mr * arch->a_elem_bytes);
        for (size_t i = 0; i < h; i++) {
            const uint8_t *src = a + (m0 + i0 + i) * lda + k0;
            int32_t sum = 0;
            for (size_t p = 0; p < kc; p++)
                sum += (uint8_t)(src[p] ^ flip);
            size_t full = kc / kg; /* whole groups, then the padded last one */
            if (arch->a_elem_bytes == 1) {
                uint8_t *d = (uint8_t *)dst + i * kg;
                const uint32_t flip4 = flip * 0x01010101u;
                if (kg == 4) {
                    for (size_t g = 0; g < full; g++, d += mr * 4) {
                        uint32_t v;
                        memcpy(&v, src + 4 * g, 4);
                        v ^= flip4;
                        memcpy(d, &v, 4);
                    }
                } else {
                    for (size_t g = 0; g < full; g++, d += mr * kg)
                        for (size_t t = 0; t < kg; t++)
                            d[t] = a_canon(src, g * kg + t, flip);
                }
                for (size_t g = full; g < groups; g++, d += mr * kg)
                    for (size_t t = 0; t < kg; t++) {
                        size_t p = g * kg + t;
                        d[t] = p < kc ? a_canon(src, p, flip) : 0;
                    }
            } else {
                uint16_t *d = (uint16_t *)dst + i * kg;
                for (size_t g = 0; g < groups; g++, d += mr * kg)
                    for (size_t t = 0; t < kg; t++) {
                        size_t p = g * kg + t;
                        d[t] = p < kc ? a_canon(src, p, flip) : 0;
                    }
            }
            rowsum[i0 + i] += sum;
        }
        dst = (uint8_t *)dst + kcp * mr * arch->a_elem_bytes;
    }
}

/*
 * op(B)[k0 .. k0+kc) x [n0 .. n0+nc) as ceil(nc / nr) panels of (kcp, nr)
 * int8, zero padded (uint8 B gets -128); adds each column's sum of the
 * mapped values to colsum[j - n0]. B stored (k, n), or (n, k) when trans_b.
 */
static void pack_b_block(const qkv_igemm_arch *arch, const uint8_t *b, size_t ldb, bool b_signed,
                         bool trans_b, size_t k0, size_t kc, size_t n0, size_t nc,
                         int8_t *restrict dst, int32_t *colsum)
{
    const size_t nr = arch->nr, kg = arch->kgroup;
    const size_t kcp = round_up(kc, kg), panel = kcp * nr;
    const uint8_t flip = b_signed ? 0 : 0x80;
    const size_t npanels = (nc + nr - 1) / nr;
    if (nc % nr || kcp != kc) /* padding columns or k: zero */
        memset(dst, 0, npanels * panel);
    if (!trans_b) {
        size_t p = 0;
        if (kg == 4) {
            /* four rows at a time: each column's group is one 32-bit store,
             * and a panel's group a contiguous run of them */
            const uint32_t flip4 = flip * 0x01010101u;
            for (; p + 4 <= kc; p += 4) {
                const uint8_t *r0 = b + (k0 + p) * ldb + n0, *r1 = r0 + ldb, *r2 = r1 + ldb,
                              *r3 = r2 + ldb;
                uint8_t *d = (uint8_t *)dst + (p / 4) * nr * 4;
                for (size_t j0 = 0; j0 < nc; j0 += nr, d += panel) {
                    size_t w = nc - j0 < nr ? nc - j0 : nr;
                    for (size_t j = 0; j < w; j++) {
                        uint32_t v = ((uint32_t)r0[j0 + j] | (uint32_t)r1[j0 + j] << 8 |
                                      (uint32_t)r2[j0 + j] << 16 | (uint32_t)r3[j0 + j] << 24) ^
                                     flip4;
                        memcpy(d + 4 * j, &v, 4);
                        colsum[j0 + j] += (int8_t)(r0[j0 + j] ^ flip) +
                                          (int8_t)(r1[j0 + j] ^ flip) +
                                          (int8_t)(r2[j0 + j] ^ flip) + (int8_t)(r3[j0 + j] ^ flip);
                    }
                }
            }
        }
        for (; p < kc; p++) {
            const uint8_t *src = b + (k0 + p) * ldb + n0;
            int8_t *d = dst + (p / kg) * nr * kg + p % kg;
            for (size_t j0 = 0; j0 < nc; j0 += nr, d += panel) {
                size_t w = nc - j0 < nr ? nc - j0 : nr;
                for (size_t j = 0; j < w; j++) {
                    int8_t v = (int8_t)(src[j0 + j] ^ flip);
                    d[j * kg] = v;
                    colsum[j0 + j] += v;
                }
            }
        }
        return;
    }
    for (size_t j = 0; j < nc; j++) {
        const uint8_t *src = b + (n0 + j) * ldb + k0;
        int8_t *d = dst + (j / nr) * panel + (j % nr) * kg;
        int32_t sum = 0;
        for (size_t p = 0; p < kc; p++) {
            int8_t v = (int8_t)(src[p] ^ flip);
            d[(p / kg) * nr * kg + p % kg] = v;
            sum += v;
        }
        colsum[j] += sum;
    }
}

size_t qkv_igemm_packed_b_bytes(const qkv_igemm_arch *arch, size_t k, size_t n)
{
    size_t npad = round_up(n, arch->nr), kpad = round_up(k, arch->kgroup);
    if (npad < n || kpad < k || (kpad && npad > SIZE_MAX / kpad))
        return 0;
    size_t panels = kpad * npad;
    if (n > (SIZE_MAX - panels) / sizeof(int32_t))
        return 0;
    return panels + n * sizeof(int32_t);
}

/* The column sums stored after the panels of a packed B. */
static int32_t *packed_colsums(const qkv_igemm_arch *arch, void *data, size_t k, size_t n)
{
    size_t panels = round_up(k, arch->kgroup) * round_up(n, arch->nr);
    return (int32_t *)(void *)((uint8_t *)data + panels);
}

void qkv_igemm_pack_b(const qkv_igemm_arch *arch, const void *b, size_t ldb, bool b_signed,
                      bool trans_b, size_t k, size_t n, void *dst, qkv_igemm_packed_b *out)
{
    size_t npad = round_up(n, arch->nr);
    int32_t *colsum = packed_colsums(arch, dst, k, n);
    memset(colsum, 0, n * sizeof *colsum);
    for (size_t k0 = 0; k0 < k; k0 += arch->kc) {
        size_t kc = k - k0 < arch->kc ? k - k0 : arch->kc;
        pack_b_block(arch, b, ldb, b_signed, trans_b, k0, kc, 0, n, (int8_t *)dst + k0 * npad,
                     colsum);
    }
    *out = (qkv_igemm_packed_b){.arch = arch, .k = k, .n = n, .b_signed = b_signed, .data = dst};
}

qkv_status qkv_igemm_prepack_b(const qkv_host_api *host, const qkv_node_ctx *node, size_t input,
                               bool trans_b, qkv_igemm_packed_b *out)
{
    memset(out, 0, sizeof *out);
    if (!QKV_HOST_HAS(host, node_input_const) || !QKV_HOST_HAS(host, node_input_packed) ||
        !QKV_HOST_HAS(host, cpu_features))
        return QKV_OK;
    const qkv_tensor *b = host->node_input_const(node, input);
    if (!b || (b->dtype != QKV_DTYPE_UINT8 && b->dtype != QKV_DTYPE_INT8) || b->rank != 2 ||
        !b->data || b->dims[0] <= 0 || b->dims[1] <= 0)
        return QKV_OK;
    size_t rows = (size_t)b->dims[0], cols = (size_t)b->dims[1];
    size_t k = trans_b ? cols : rows, n = trans_b ? rows : cols;
    const qkv_igemm_arch *arch = qkv_igemm_arch_select(host->cpu_features());
    size_t bytes = qkv_igemm_packed_b_bytes(arch, k, n);
    if (bytes == 0)
        return QKV_OK; /* too large to pack: multiplied as it comes */
    void *data = malloc(bytes);
    if (!data)
        return NERR(host, node, QKV_ERR_OUT_OF_MEMORY,
                    "out of memory packing input %zu (%zu bytes)", input, bytes);
    qkv_igemm_pack_b(arch, b->data, cols, b->dtype == QKV_DTYPE_INT8, trans_b, k, n, data, out);
    qkv_status st = host->node_input_packed(node, input, bytes);
    if (st != QKV_OK) {
        free(data);
        memset(out, 0, sizeof *out);
    }
    return st;
}

void qkv_igemm_packed_free(qkv_igemm_packed_b *pb)
{
    if (!pb)
        return;
    free(pb->data);
    memset(pb, 0, sizeof *pb);
}

/* ---- the blocked product --------------------------------------------------------- */

typedef struct igemm_job {
    const qkv_igemm *g;
    const qkv_igemm_arch *arch;
    const qkv_igemm_packed_b *pb;
    const qkv_igemm_post *post; /* NULL: none */
    bool b_signed;
} igemm_job;

/* Element offsets of batch entry `batch` in A, B, C and the zero points. */
typedef struct batch_off {
    size_t a, b, c, za, zb;
} batch_off;

static batch_off batch_offsets(const qkv_igemm *g, size_t batch)
{
    batch_off o = {0, 0, 0, 0, 0};
    for (int32_t j = g->batch_rank - 1; j >= 0; j--) {
        size_t coord = batch % g->batch_dims[j];
        batch /= g->batch_dims[j];
        o.a += coord * g->a_strides[j];
        o.b += coord * g->b_strides[j];
        o.c += coord * g->c_strides[j];
        o.za += coord * g->a_zero_strides[j];
        o.zb += coord * g->b_zero_strides[j];
    }
    return o;
}

/* A zero point in the uint8 x int8 form: int8 A's moves up 128 with A,
 * uint8 B's down 128 with B. NULL zero points are 0 before the move. */
static inline int32_t zero_a(const void *z, bool is_signed, size_t idx)
{
    if (is_signed)
        return (z ? ((const int8_t *)z)[idx] : 0) + 128;
    return z ? ((const uint8_t *)z)[idx] : 0;
}

static inline int32_t zero_b(const void *z, bool is_signed, size_t idx)
{
    if (is_signed)
        return z ? ((const int8_t *)z)[idx] : 0;
    return (z ? ((const uint8_t *)z)[idx] : 0) - 128;
}

/* The tile at c (h x w valid of mr x nr) through a full-size temporary. */
static void edge_tile(const qkv_igemm_arch *arch, size_t groups, const void *ap, const int8_t *bp,
                      int32_t *c, size_t ldc, size_t h, size_t w, bool accumulate)
{
    _Alignas(64) int32_t tmp[QKV_IGEMM_MAX_TILE];
    arch->tile(groups, ap, bp, tmp, arch->nr, false);
    for (size_t i = 0; i < h; i++) {
        int32_t *crow = c + i * ldc;
        const int32_t *trow = tmp + i * arch->nr;
        for (size_t j = 0; j < w; j++)
            crow[j] = accumulate ? (int32_t)((uint32_t)crow[j] + (uint32_t)trow[j]) : trow[j];
    }
}

/*
 * C += k * za * zb - zb * rowsum(A) - za * colsum(B) over the block, in
 * uint32 (wrapping: the same bits as the exact sum modulo 2^32).
 */
static void apply_zero_points(const qkv_igemm *g, bool b_signed, batch_off o, int32_t *c, size_t m0,
                              size_t mc, size_t n0, size_t nc, const int32_t *rowsum,
                              const int32_t *colsum)
{
    const uint8_t *za = g->a_zero ? (const uint8_t *)g->a_zero + o.za : NULL;
    const uint8_t *zb = g->b_zero ? (const uint8_t *)g->b_zero + o.zb : NULL;
    for (size_t i = 0; i < mc; i++) {
        uint32_t a0 = (uint32_t)zero_a(za, g->a_signed, (m0 + i) * g->a_zero_stride);
        uint32_t row_term = (uint32_t)g->k * a0 - (uint32_t)rowsum[i];
        uint32_t *crow = (uint32_t *)(c + i * g->ldc);
        if (g->b_zero_stride == 0 || !zb) {
            uint32_t b0 = (uint32_t)zero_b(zb, b_signed, 0);
            uint32_t t = b0 * row_term;
            if (a0 == 0 && t == 0)
                continue;
            for (size_t j = 0; j < nc; j++)
                crow[j] += t - a0 * (uint32_t)colsum[j];
        } else {
            for (size_t j = 0; j < nc; j++) {
                uint32_t b0 = (uint32_t)zero_b(zb, b_signed, (n0 + j) * g->b_zero_stride);
                crow[j] += b0 * row_term - a0 * (uint32_t)colsum[j];
            }
        }
    }
}

/* One unit: C block (m0, mc) x (n0, nc) of batch entry `batch`. */
static void run_unit(const void *arg, size_t batch, size_t m0, size_t mc, size_t n0, size_t nc)
{
    const igemm_job *job = arg;
    const qkv_igemm *g = job->g;
    const qkv_igemm_arch *arch = job->arch;
    const size_t mr = arch->mr, nr = arch->nr, kg = arch->kgroup;
    _Alignas(64) uint8_t abuf[QKV_IGEMM_MAX_A_BYTES];
    _Alignas(64) int8_t bbuf[QKV_IGEMM_MAX_B_BYTES];
    int32_t rowsum[QKV_IGEMM_MAX_MC];
    int32_t colsum_buf[PACKED_MAX_NC];
    batch_off o = batch_offsets(g, batch);
    const uint8_t *a = (const uint8_t *)g->a + o.a;
    int32_t *c = g->c + o.c + m0 * g->ldc + n0;
    const int32_t *colsum;
    memset(rowsum, 0, mc * sizeof *rowsum);
    if (job->pb) {
        colsum = packed_colsums(arch, job->pb->data, g->k, g->n) + n0;
    } else {
        memset(colsum_buf, 0, nc * sizeof *colsum_buf);
        colsum = colsum_buf;
    }
    if (g->k == 0)
        for (size_t i = 0; i < mc; i++)
            memset(c + i * g->ldc, 0, nc * sizeof *c);
    size_t npad = round_up(g->n, nr);
    for (size_t k0 = 0; k0 < g->k; k0 += arch->kc) {
        size_t kc = g->k - k0 < arch->kc ? g->k - k0 : arch->kc;
        size_t kcp = round_up(kc, kg), groups = kcp / kg;
        bool accumulate = k0 != 0;
        pack_a_block(arch, a, g->lda, g->a_signed, m0, mc, k0, kc, abuf, rowsum);
        const int8_t *panels;
        if (job->pb) {
            panels = (const int8_t *)job->pb->data + k0 * npad + (n0 / nr) * kcp * nr;
        } else {
            pack_b_block(arch, (const uint8_t *)g->b + o.b, g->ldb, g->b_signed, g->trans_b, k0, kc,
                         n0, nc, bbuf, colsum_buf);
            panels = bbuf;
        }
        for (size_t j0 = 0; j0 < nc; j0 += nr) {
            const int8_t *bp = panels + (j0 / nr) * kcp * nr;
            size_t w = nc - j0 < nr ? nc - j0 : nr;
            for (size_t i0 = 0; i0 < mc; i0 += mr) {
                const uint8_t *ap = abuf + (i0 / mr) * kcp * mr * arch->a_elem_bytes;
                size_t h = mc - i0 < mr ? mc - i0 : mr;
                int32_t *ct = c + i0 * g->ldc + j0;
                if (h == mr && w == nr)
                    arch->tile(groups, ap, bp, ct, g->ldc, accumulate);
                else
                    edge_tile(arch, groups, ap, bp, ct, g->ldc, h, w, accumulate);
            }
        }
    }
    apply_zero_points(g, job->b_signed, o, c, m0, mc, n0, nc, rowsum, colsum);
    if (job->post)
        job->post->fn(job->post->arg, batch, c, g->ldc, m0, n0, mc, nc);
}

void qkv_igemm_run(const qkv_host_api *host, void *host_ctx, const qkv_igemm_arch *arch,
                   const qkv_igemm *g, const qkv_igemm_packed_b *pb, const qkv_igemm_post *post)
{
    size_t nbatch = 1;
    for (int32_t j = 0; j < g->batch_rank; j++)
        nbatch *= g->batch_dims[j]; /* C holds nbatch * m * n elements: no overflow */
    if (nbatch == 0 || g->m == 0 || g->n == 0)
        return;
    if (pb)
        arch = pb->arch;
    igemm_job job = {
        .g = g, .arch = arch, .pb = pb, .post = post, .b_signed = pb ? pb->b_signed : g->b_signed};
    const qkv_gemm_block_sizes sz = {arch->mr, arch->nr, arch->mc, arch->nc, PACKED_MAX_NC};
    qkv_gemm_blocks blocks;
    size_t threads = host && host_ctx ? host->thread_count(host_ctx) : 1;
    qkv_gemm_blocks_plan(&blocks, &sz, nbatch, g->m, g->n, pb != NULL, threads);
    double macs = (double)nbatch * (double)g->m * (double)g->n * (double)(g->k ? g->k : 1);
    qkv_gemm_blocks_run(host, host_ctx, &blocks, macs, PAR_MIN_MACS, run_unit, &job);
}
