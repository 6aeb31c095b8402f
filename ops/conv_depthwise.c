/*
 * conv_depthwise.c - the direct depthwise convolution (contracts and the
 * method in conv_depthwise.h): the plan, the padded and phase-split copy of
 * a channel, the taps of each output row, and the split over workers.
 */
#include "conv_depthwise.h"

#include <string.h>

#include "conv_depthwise_rows.h"

/* Taps handed to one row-kernel call: a 2-D 7x7 or a 1-D 31 kernel goes in
 * one call, larger ones in several that accumulate. */
#define DW_TAP_BATCH 64

/* The fewest multiply-adds worth a worker of their own: a smaller share
 * costs less on the calling thread than the hand-off to another core. */
#define DW_MIN_WORKER_FMAS ((size_t)1 << 17)

/* Shares of the work per thread, handed out as threads come for them (the
 * pool's chunks): a thread the OS runs late delays the node by a quarter
 * of its part, not all of it. Each share has its own scratch slot. */
#define DW_SHARES_PER_THREAD 4

/* ---- the plan -------------------------------------------------------------------- */

/* The product of dims[0..n); false on overflow. */
static bool dims_product(const int64_t *dims, int32_t n, size_t *out)
{
    size_t p = 1;
    for (int32_t i = 0; i < n; i++)
        if (dims[i] < 0 || __builtin_mul_overflow(p, (size_t)dims[i], &p))
            return false;
    *out = p;
    return true;
}

bool qkv_dwconv_plan_init(qkv_dwconv_plan *p, const qkv_conv_geom *g, size_t n, size_t c,
                          size_t mult)
{
    qkv_dwconv_plan q;
    memset(p, 0, sizeof *p);
    memset(&q, 0, sizeof q);
    int32_t last = g->n_spatial - 1;
    q.g = *g;
    q.n = n;
    q.c = c;
    q.mult = mult;
    q.kw = (size_t)g->kernel[last];
    q.in_w = (size_t)g->in[last];
    q.width = (size_t)g->out[last];
    if (!qkv_conv_geom_kernel_size(g, &q.ksize) || !qkv_conv_geom_in_size(g, &q.in_size) ||
        !qkv_conv_geom_out_size(g, &q.out_size) || !dims_product(g->in, last, &q.in_rows) ||
        !dims_product(g->out, last, &q.out_rows))
        return false;
    if (q.width > 0) {
        /* the padded row: positions (width - 1) * s + (kw - 1) * d + 1 */
        size_t s = (size_t)g->stride[last], d = (size_t)g->dilation[last], span, reach;
        if (__builtin_mul_overflow(q.width - 1, s, &span) ||
            __builtin_mul_overflow(q.kw - 1, d, &reach) ||
            __builtin_add_overflow(span, reach + 1, &span))
            return false;
        q.phase_len = span / s + (span % s != 0);
        if (__builtin_mul_overflow(q.phase_len, s, &q.row_len) ||
            __builtin_mul_overflow(q.in_rows, q.row_len, &q.slot_floats))
            return false;
    }
    *p = q;
    return true;
}

bool qkv_dwconv_scratch_bytes(const qkv_dwconv_plan *p, size_t workers, size_t *bytes)
{
    size_t floats;
    *bytes = 0;
    if (__builtin_mul_overflow(p->slot_floats, workers, &floats) ||
        __builtin_mul_overflow(floats, sizeof(float), &floats))
        return false;
    *bytes = floats;
    return true;
}

/* The row kernels of the variant the CPU runs. */
typedef struct dw_kernels {
    qkv_dwconv_row_fn row;
    qkv_dwconv_rows4_fn rows4;
} dw_kernels;

/* One batch of taps into `rows` (1 or 4) output rows. */
static void dw_call(const dw_kernels *kf, size_t rows, float *const *y, size_t n,
                    const float *const *src, const float *w, size_t taps, const float *bias,
                    int accumulate)
{
    if (rows == 4)
        kf->rows4(y, n, src, w, taps, bias, accumulate);
    else
        kf->row(y[0], n, src, w, taps, bias[0], accumulate);
}

/* ---- one channel ----------------------------------------------------------------- */

/* dst (row_len) = input row x (in_w) padded with zeros and split into the
 * last dim's stride phases: dst[r * phase_len + i] = padded position
 * r + s * i = x[r + s * i - pad_begin], 0 outside x. */
static void pad_row(const qkv_dwconv_plan *p, const float *x, float *dst)
{
    const int32_t last = p->g.n_spatial - 1;
    const int64_t s = p->g.stride[last], pb = p->g.pad_begin[last], in_w = (int64_t)p->in_w;
    const int64_t len = (int64_t)p->phase_len;
    for (int64_t r = 0; r < s; r++) {
        float *ph = dst + r * len;
        /* i reads x inside when pb <= r + s * i < in_w + pb */
        int64_t lo = pb - r <= 0 ? 0 : (pb - r + s - 1) / s;
        int64_t hi = in_w + pb - r <= 0 ? 0 : (in_w + pb - r + s - 1) / s;
        lo = lo < len ? lo : len;
        hi = hi < len ? hi : len;
        hi = hi > lo ? hi : lo;
        memset(ph, 0, (size_t)lo * sizeof *ph);
        if (hi > lo) {
            const float *xr = x + (r + s * lo - pb);
            if (s == 1) {
                memcpy(ph + lo, xr, (size_t)(hi - lo) * sizeof *ph);
            } else {
                for (int64_t i = lo; i < hi; i++)
                    ph[i] = xr[(i - lo) * s];
            }
        }
        memset(ph + hi, 0, (size_t)(len - hi) * sizeof *ph);
    }
}

/* Output row q of `rows` (1 or 4) consecutive output channels that read
 * the same input channel: its taps (those whose outer coordinates fall
 * inside the input) gathered in batches and summed by the row kernels.
 * slot holds the channel padded by pad_row, wm the first channel's weights
 * (ksize; the next channels' follow), bias one value per row, y the rows'
 * output rows (width each). */
static void out_rows(const qkv_dwconv_plan *p, const dw_kernels *kf, const float *slot,
                     const float *wm, const float *bias, size_t rows, float *const *y, size_t q)
{
    const qkv_conv_geom *g = &p->g;
    const int32_t last = g->n_spatial - 1;
    const size_t s = (size_t)g->stride[last], d = (size_t)g->dilation[last];
    int64_t o[QKV_CONV_MAX_SPATIAL]; /* the row's output coordinates, outer dims */
    for (int32_t i = last - 1; i >= 0; i--) {
        o[i] = (int64_t)(q % (size_t)g->out[i]);
        q /= (size_t)g->out[i];
    }
    const float *src[DW_TAP_BATCH];
    float wt[DW_TAP_BATCH * 4]; /* (taps, rows) */
    size_t taps = 0;
    int accumulate = 0;
    const size_t outer = p->ksize / p->kw;
    for (size_t u = 0; u < outer; u++) {
        size_t rest = u, in_row = 0, mul = 1;
        bool inside = true;
        for (int32_t i = last - 1; i >= 0 && inside; i--) {
            int64_t pos = o[i] * g->stride[i] - g->pad_begin[i] +
                          (int64_t)(rest % (size_t)g->kernel[i]) * g->dilation[i];
            rest /= (size_t)g->kernel[i];
            inside = pos >= 0 && pos < g->in[i];
            in_row += (size_t)pos * mul;
            mul *= (size_t)g->in[i];
        }
        if (!inside)
            continue; /* the whole kernel row reads padding */
        const float *base = slot + in_row * p->row_len;
        for (size_t k = 0; k < p->kw; k++) {
            size_t at = k * d;
            src[taps] = base + (s == 1 ? at : at % s * p->phase_len + at / s);
            for (size_t r = 0; r < rows; r++)
                wt[taps * rows + r] = wm[r * p->ksize + u * p->kw + k];
            if (++taps == DW_TAP_BATCH) {
                dw_call(kf, rows, y, p->width, src, wt, taps, bias, accumulate);
                accumulate = 1;
                taps = 0;
            }
        }
    }
    if (taps > 0 || !accumulate)
        dw_call(kf, rows, y, p->width, src, wt, taps, bias, accumulate);
}

/* ---- workers ---------------------------------------------------------------------- */

typedef struct dw_run {
    const qkv_dwconv_plan *p;
    const float *x, *w, *b; /* b NULL: no bias */
    float *y;
    float *slots; /* (workers, slot_floats) */
    size_t workers, units;
    dw_kernels kf;
} dw_run;

/* parallel_for body: worker wk takes its share of the (image, output
 * channel) units, contiguous, and pads each input channel they read into
 * its own scratch slot once (a channel multiplier's units share it). */
static void dw_workers(void *arg, size_t begin, size_t end)
{
    const dw_run *r = arg;
    const qkv_dwconv_plan *p = r->p;
    for (size_t wk = begin; wk < end; wk++) {
        float *slot = r->slots + wk * p->slot_floats;
        size_t u0 = r->units * wk / r->workers, u1 = r->units * (wk + 1) / r->workers;
        size_t padded = SIZE_MAX; /* the (image, input channel) in the slot */
        size_t rows;
        for (size_t unit = u0; unit < u1; unit += rows) { /* unit = image * M + m */
            size_t chan = unit / p->mult;                 /* image * C + input channel */
            if (chan != padded) {
                const float *xc = r->x + chan * p->in_size;
                for (size_t ri = 0; ri < p->in_rows; ri++)
                    pad_row(p, xc + ri * p->in_w, slot + ri * p->row_len);
                padded = chan;
            }
            /* four channels at once while the next four read this input channel */
            rows = unit + 4 <= u1 && (unit + 3) / p->mult == chan ? 4 : 1;
            size_t m = unit % (p->c * p->mult);
            float bias[4];
            for (size_t i = 0; i < rows; i++)
                bias[i] = r->b ? r->b[m + i] : 0.0f;
            for (size_t q = 0; q < p->out_rows; q++) {
                float *y[4];
                for (size_t i = 0; i < rows; i++)
                    y[i] = r->y + (unit + i) * p->out_size + q * p->width;
                out_rows(p, &r->kf, slot, r->w + m * p->ksize, bias, rows, y, q);
            }
        }
    }
}

void qkv_dwconv_run(qkv_kernel_io *io, const qkv_dwconv_plan *p, const float *x, const float *w,
                    const float *b, float *y, void *scratch, size_t scratch_bytes)
{
    size_t units = p->n * p->c * p->mult; /* (image, output channel) planes of Y */
    if (units == 0 || p->out_size == 0)
        return;
    const qkv_host_api *host = io->host;
    uint64_t features = QKV_HOST_HAS(host, cpu_features) ? host->cpu_features() : 0;
    dw_run r = {.p = p,
                .x = x,
                .w = w,
                .b = b,
                .y = y,
                .slots = scratch,
                .units = units,
                .kf = {qkv_dwconv_row_select(features), qkv_dwconv_rows4_select(features)}};
    /* shares: no more than 4 per thread, scratch slots, units, and the work
     * allows (saturating: only the comparison with a few threads matters) */
    size_t fmas = units, threads = host->thread_count(io->host_ctx);
    if (__builtin_mul_overflow(fmas, p->out_size, &fmas) ||
        __builtin_mul_overflow(fmas, p->ksize, &fmas))
        fmas = SIZE_MAX;
    size_t workers = scratch_bytes / (p->slot_floats * sizeof(float));
    size_t cap = threads > 1 ? threads * DW_SHARES_PER_THREAD : 1;
    workers = cap < workers ? cap : workers;
    workers = units < workers ? units : workers;
    workers = fmas / DW_MIN_WORKER_FMAS < workers ? fmas / DW_MIN_WORKER_FMAS : workers;
    if (workers <= 1) {
        r.workers = 1;
        dw_workers(&r, 0, 1);
        return;
    }
    r.workers = workers;
    host->parallel_for(io->host_ctx, workers, dw_workers, &r);
}
