/*
 * conv_direct1d.c - the direct 1-D convolution (contracts and the method in
 * conv_direct1d.h): the portable tile kernel and the choice of variant,
 * the weight packing, the plan, and the split over workers.
 */
#include "conv_direct1d.h"

#include <stdlib.h>
#include <string.h>

/* The packed weights of one block of input channels stay within this
 * (the accumulators' tiles sweep the positions over them from L2). */
#define D1_BLOCK_BYTES ((size_t)256 << 10)

/* The fewest multiply-adds worth a worker of their own (as in the
 * depthwise convolution: the hand-off to another core costs more). */
#define D1_MIN_WORKER_FMAS ((size_t)1 << 17)

/* Shares of the work per thread, handed out as threads come for them (the
 * pool's chunks): a thread the OS runs late delays the node by a quarter
 * of its part, not all of it. Each share has its own scratch slot. */
#define D1_SHARES_PER_THREAD 4

/* ---- the portable variant ------------------------------------------------------- */

#define D1_PORTABLE_VW 8
#define D1_PORTABLE_MR 2
#define D1_PORTABLE_NJ 6

void qkv_direct1d_tile_portable(float *acc, size_t ldacc, const float *w, size_t cw, const float *x,
                                size_t xld, size_t nc, size_t ksize, size_t klo, size_t khi,
                                size_t s, size_t d, size_t mr, size_t nj)
{
    const size_t lanes = mr * D1_PORTABLE_VW;
    for (size_t c = 0; c < nc; c++)
        for (size_t k = klo; k < khi; k++) {
            const float *restrict wk = w + (c * ksize + k) * cw;
            const float *xk = x + c * xld + k * d;
            for (size_t j = 0; j < nj; j++) {
                float *restrict a = acc + j * ldacc;
                const float xv = xk[j * s];
                for (size_t i = 0; i < lanes; i++)
                    a[i] += wk[i] * xv;
            }
        }
}

qkv_direct1d_kind qkv_direct1d_select(uint64_t features)
{
#if defined(QKV_DIRECT1D_HAVE_X86)
    if (features & QKV_CPU_AVX512)
        return (qkv_direct1d_kind){"avx512", 16, 3, 8, qkv_direct1d_tile_avx512};
    if (features & QKV_CPU_AVX2)
        return (qkv_direct1d_kind){"avx2", 8, 2, 6, qkv_direct1d_tile_avx2};
#else
    (void)features;
#endif
    return (qkv_direct1d_kind){"portable", D1_PORTABLE_VW, D1_PORTABLE_MR, D1_PORTABLE_NJ,
                               qkv_direct1d_tile_portable};
}

/* ---- packed weights ----------------------------------------------------------------- */

bool qkv_direct1d_pack(const float *w, size_t m, size_t cg, size_t ksize, size_t group,
                       qkv_direct1d_kind kind, qkv_direct1d_weights *out)
{
    memset(out, 0, sizeof *out);
    if (group == 0 || m % group != 0)
        return false;
    qkv_direct1d_weights p = {.m = m, .cg = cg, .ksize = ksize, .group = group, .kind = kind};
    p.mg = m / group;
    p.cw = kind.mr * kind.vw;
    p.chunks = (p.mg + p.cw - 1) / p.cw;
    size_t floats = 0;
    if (__builtin_mul_overflow(group * p.chunks, cg, &floats) ||
        __builtin_mul_overflow(floats, ksize, &floats) ||
        __builtin_mul_overflow(floats, p.cw, &floats) || floats > SIZE_MAX / sizeof(float))
        return false;
    p.data = calloc(floats ? floats : 1, sizeof(float));
    if (!p.data)
        return false;
    /* packed[g][chunk][c][k][i] = W[g * mg + chunk * cw + i][c][k], 0 past mg */
    for (size_t g = 0; g < group; g++)
        for (size_t ch = 0; ch < p.chunks; ch++) {
            float *dst = p.data + (g * p.chunks + ch) * cg * ksize * p.cw;
            size_t m0 = ch * p.cw, valid = p.mg - m0 < p.cw ? p.mg - m0 : p.cw;
            for (size_t i = 0; i < valid; i++) {
                const float *src = w + (g * p.mg + m0 + i) * cg * ksize;
                for (size_t ck = 0; ck < cg * ksize; ck++)
                    dst[ck * p.cw + i] = src[ck];
            }
        }
    *out = p;
    return true;
}

void qkv_direct1d_weights_free(qkv_direct1d_weights *wp)
{
    if (!wp)
        return;
    free(wp->data);
    memset(wp, 0, sizeof *wp);
}

/* ---- the plan ------------------------------------------------------------------------ */

bool qkv_direct1d_plan_init(qkv_direct1d_plan *p, const qkv_conv_geom *g, size_t n, size_t c,
                            const qkv_direct1d_weights *wp)
{
    qkv_direct1d_plan q = {.n = n,
                           .c = c,
                           .m = wp->m,
                           .group = wp->group,
                           .cg = wp->cg,
                           .mg = wp->mg,
                           .ksize = wp->ksize,
                           .cw = wp->cw,
                           .chunks = wp->chunks};
    memset(p, 0, sizeof *p);
    q.stride = (size_t)g->stride[0];
    q.dilation = (size_t)g->dilation[0];
    q.in_w = (size_t)g->in[0];
    q.out_w = (size_t)g->out[0];
    q.pad_begin = (size_t)g->pad_begin[0];
    if (__builtin_add_overflow(q.pad_begin, q.in_w, &q.padded_w) ||
        __builtin_add_overflow(q.padded_w, (size_t)g->pad_end[0], &q.padded_w) ||
        __builtin_mul_overflow(n, q.group * q.chunks, &q.units))
        return false;
    size_t per_channel = q.ksize * q.cw * sizeof(float); /* fits: the packing allocated it */
    q.kc = D1_BLOCK_BYTES / (per_channel ? per_channel : 1);
    q.kc = q.kc < 1 ? 1 : q.kc > q.cg ? q.cg : q.kc;
    *p = q;
    return true;
}

/* Floats of the padded input, rounded up to whole 64-byte lines so that
 * the accumulator blocks after it stay aligned. */
static bool padded_floats(const qkv_direct1d_plan *p, size_t *out)
{
    size_t f;
    if (__builtin_mul_overflow(p->n * p->c, p->padded_w, &f) || f > SIZE_MAX - 16)
        return false;
    *out = (f + 15) / 16 * 16;
    return true;
}

bool qkv_direct1d_scratch_bytes(const qkv_direct1d_plan *p, size_t workers, size_t *bytes)
{
    size_t pad, acc;
    *bytes = 0;
    if (!padded_floats(p, &pad) || __builtin_mul_overflow(p->out_w, p->cw, &acc) ||
        __builtin_mul_overflow(acc, workers, &acc) || __builtin_add_overflow(acc, pad, &acc) ||
        __builtin_mul_overflow(acc, sizeof(float), bytes))
        return false;
    return true;
}

/* ---- running -------------------------------------------------------------------------- */

typedef struct d1_run {
    const qkv_direct1d_plan *p;
    const qkv_direct1d_weights *wp;
    const float *x, *b; /* b NULL: no bias */
    float *y;
    float *padded; /* (n * c, padded_w) */
    float *accs;   /* (workers, out_w, cw) */
    size_t workers;
} d1_run;

/* qkv_run_range body: rows [begin, end) of X, zero-padded. */
static void pad_rows(void *arg, size_t begin, size_t end)
{
    const d1_run *r = arg;
    const qkv_direct1d_plan *p = r->p;
    for (size_t row = begin; row < end; row++) {
        float *dst = r->padded + row * p->padded_w;
        memset(dst, 0, p->pad_begin * sizeof *dst);
        memcpy(dst + p->pad_begin, r->x + row * p->in_w, p->in_w * sizeof *dst);
        memset(dst + p->pad_begin + p->in_w, 0,
               (p->padded_w - p->pad_begin - p->in_w) * sizeof *dst);
    }
}

/* The taps [*klo, *khi) that read the input (not padding) for at least
 * one of positions [j0, j0 + nj). */
static void tap_range(const qkv_direct1d_plan *p, size_t j0, size_t nj, size_t *klo, size_t *khi)
{
    const size_t s = p->stride, d = p->dilation, pb = p->pad_begin;
    size_t last = (j0 + nj - 1) * s; /* padded position of the last position's tap 0 */
    *klo = last >= pb ? 0 : (pb - last + d - 1) / d;
    size_t first = j0 * s, end = pb + p->in_w; /* the input ends before padded `end` */
    *khi = first >= end ? 0 : (end - 1 - first) / d + 1;
    *khi = *khi < p->ksize ? *khi : p->ksize;
}

/* One (image, group, chunk) unit into Y, accumulating in acc (out_w, cw). */
static void run_unit(const d1_run *r, size_t unit, float *acc)
{
    const qkv_direct1d_plan *p = r->p;
    const qkv_direct1d_kind *kind = &r->wp->kind;
    const size_t cw = p->cw;
    size_t ch = unit % p->chunks, g = unit / p->chunks % p->group,
           img = unit / p->chunks / p->group;
    size_t m0 = g * p->mg + ch * cw; /* the chunk's first output channel */
    size_t valid = p->mg - ch * cw < cw ? p->mg - ch * cw : cw;
    size_t mr = (valid + kind->vw - 1) / kind->vw; /* vectors the tile kernel computes */
    for (size_t j = 0; j < p->out_w; j++)
        for (size_t i = 0; i < cw; i++)
            acc[j * cw + i] = r->b && i < valid ? r->b[m0 + i] : 0.0f;
    const float *xg = r->padded + (img * p->c + g * p->cg) * p->padded_w;
    const float *wg = r->wp->data + (g * p->chunks + ch) * p->cg * p->ksize * cw;
    for (size_t c0 = 0; c0 < p->cg; c0 += p->kc) {
        size_t nc = p->cg - c0 < p->kc ? p->cg - c0 : p->kc;
        for (size_t j0 = 0; j0 < p->out_w; j0 += kind->nj) {
            size_t nj = p->out_w - j0 < kind->nj ? p->out_w - j0 : kind->nj, klo, khi;
            tap_range(p, j0, nj, &klo, &khi);
            if (klo < khi)
                kind->tile(acc + j0 * cw, cw, wg + c0 * p->ksize * cw, cw,
                           xg + c0 * p->padded_w + j0 * p->stride, p->padded_w, nc, p->ksize, klo,
                           khi, p->stride, p->dilation, mr, nj);
        }
    }
    float *y = r->y + (img * p->m + m0) * p->out_w;
    for (size_t i = 0; i < valid; i++)
        for (size_t j = 0; j < p->out_w; j++)
            y[i * p->out_w + j] = acc[j * cw + i];
}

/* parallel_for body: worker wk takes a contiguous share of the units. */
static void d1_workers(void *arg, size_t begin, size_t end)
{
    const d1_run *r = arg;
    const qkv_direct1d_plan *p = r->p;
    for (size_t wk = begin; wk < end; wk++) {
        float *acc = r->accs + wk * p->out_w * p->cw;
        size_t u0 = p->units * wk / r->workers, u1 = p->units * (wk + 1) / r->workers;
        for (size_t unit = u0; unit < u1; unit++)
            run_unit(r, unit, acc);
    }
}

void qkv_direct1d_run(qkv_kernel_io *io, const qkv_direct1d_plan *p, const qkv_direct1d_weights *wp,
                      const float *x, const float *b, float *y, void *scratch, size_t scratch_bytes)
{
    size_t pad;
    if (p->units == 0 || p->out_w == 0 || !padded_floats(p, &pad))
        return;
    d1_run r = {.p = p, .wp = wp, .x = x, .b = b, .y = y, .padded = scratch};
    r.accs = r.padded + pad;
    qkv_run_range(io, p->n * p->c, p->n * p->c * p->padded_w * sizeof(float), pad_rows, &r);
    /* shares: no more than 4 per thread, accumulator blocks, units, and the
     * work allows (saturating: only the comparison with a few threads
     * matters) */
    size_t fmas = p->units, threads = io->host->thread_count(io->host_ctx);
    if (__builtin_mul_overflow(fmas, p->out_w * p->cw, &fmas) ||
        __builtin_mul_overflow(fmas, p->cg * p->ksize, &fmas))
        fmas = SIZE_MAX;
    size_t workers = (scratch_bytes / sizeof(float) - pad) / (p->out_w * p->cw);
    size_t cap = threads > 1 ? threads * D1_SHARES_PER_THREAD : 1;
    workers = cap < workers ? cap : workers;
    workers = p->units < workers ? p->units : workers;
    workers = fmas / D1_MIN_WORKER_FMAS < workers ? fmas / D1_MIN_WORKER_FMAS : workers;
    if (workers <= 1) {
        r.workers = 1;
        d1_workers(&r, 0, 1);
        return;
    }
    r.workers = workers;
    io->host->parallel_for(io->host_ctx, workers, d1_workers, &r);
}
