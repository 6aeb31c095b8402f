/*
 * stft.c - STFT (opset 17).
 *
 * signal (input 0): [batch, length, 1] real or [batch, length, 2] complex,
 * float32/float64/float16/bfloat16. frame_step (input 1): int32/int64
 * scalar >= 1. window (input 2, optional): [frame_length] of the signal's
 * type. frame_length (input 3, optional): int32/int64 scalar; when both are
 * given they must agree, and one of them is required. `onesided` (default 1)
 * keeps bins [0, frame_length/2] (as the ONNX reference does, for complex
 * signals too).
 *
 * Output: [batch, frames, bins, 2] with frames = (length - frame_length) /
 * frame_step + 1. Frame f of batch b is signal[b, f*step + j] * window[j],
 * transformed with the shared DFT (fft.h: exact twiddles, double sums);
 * frames are split across the session's threads.
 */
#include <stdlib.h>
#include <string.h>

#include "elementwise.h"
#include "fft.h"
#include "kernel_util.h"

#define STFT_TYPES (QKV_T(FLOAT) | QKV_T(DOUBLE) | QKV_T(FLOAT16) | QKV_T(BFLOAT16))

typedef struct stft_geom {
    size_t batch, length, comps; /* the signal */
    size_t step, frame, frames, bins;
} stft_geom;

static qkv_status stft_init(const qkv_kernel *kernel, const qkv_host_api *host,
                            const qkv_node_ctx *node, void **state)
{
    (void)kernel;
    int64_t onesided;
    qkv_status st = host->attr_int(node, "onesided", 1, &onesided);
    if (st != QKV_OK)
        return st;
    if (onesided != 0 && onesided != 1)
        return NERR(host, node, QKV_ERR_INVALID_MODEL,
                    "attribute 'onesided' is %lld, must be 0 or 1", (long long)onesided);
    bool *s = malloc(sizeof *s);
    if (!s)
        return NERR(host, node, QKV_ERR_OUT_OF_MEMORY, "kernel state");
    *s = onesided != 0;
    *state = s;
    return QKV_OK;
}

static void stft_destroy(void *state) { free(state); }

/* The scalar integer input k into *v (0 when its value is not known yet). */
static qkv_status read_scalar(qkv_kernel_io *io, size_t k, const char *name, int64_t *v)
{
    const qkv_tensor *t = &io->inputs[k];
    *v = 0;
    if (qkv_shape_known(t) && qkv_numel(t) != 1)
        return KERR(io, QKV_ERR_SHAPE, "input %zu '%s' must be a scalar, has %zu elements", k, name,
                    qkv_numel(t));
    if (t->data && qkv_shape_known(t)) {
        *v = qkv_int_at(t, 0);
        if (*v < 1)
            return KERR(io, QKV_ERR_INVALID_ARGUMENT, "input %zu '%s' is %lld, must be >= 1", k,
                        name, (long long)*v);
    }
    return QKV_OK;
}

/* The geometry into *g; a field is 0 when not known yet (frames and bins
 * then too). Validates what is known. */
static qkv_status stft_geometry(bool onesided, qkv_kernel_io *io, stft_geom *g)
{
    const qkv_tensor *x = &io->inputs[0];
    memset(g, 0, sizeof *g);
    if (x->rank >= 0 && x->rank != 3)
        return KERR(io, QKV_ERR_SHAPE, "input 0 'signal' has rank %d, expected 3", x->rank);
    if (x->rank == 3) {
        if (x->dims[2] >= 0 && x->dims[2] != 1 && x->dims[2] != 2)
            return KERR(io, QKV_ERR_SHAPE,
                        "input 0 'signal' has last dim %lld, expected 1 (real) or 2 (complex)",
                        (long long)x->dims[2]);
        g->batch = x->dims[0] > 0 ? (size_t)x->dims[0] : 0;
        g->length = x->dims[1] > 0 ? (size_t)x->dims[1] : 0;
        g->comps = x->dims[2] > 0 ? (size_t)x->dims[2] : 0;
    }
    int64_t step, flen = 0, wlen = -1;
    qkv_status st = read_scalar(io, 1, "frame_step", &step);
    if (st == QKV_OK && qkv_present(io, 3))
        st = read_scalar(io, 3, "frame_length", &flen);
    if (st != QKV_OK)
        return st;
    if (qkv_present(io, 2)) {
        const qkv_tensor *w = &io->inputs[2];
        if (w->rank >= 0 && w->rank != 1)
            return KERR(io, QKV_ERR_SHAPE, "input 2 'window' has rank %d, expected 1", w->rank);
        wlen = w->rank == 1 ? w->dims[0] : -1;
        if (wlen == 0)
            return KERR(io, QKV_ERR_SHAPE, "input 2 'window' is empty");
        if (wlen > 0 && flen > 0 && wlen != flen)
            return KERR(io, QKV_ERR_SHAPE,
                        "input 2 'window' has %lld elements, input 3 'frame_length' is %lld",
                        (long long)wlen, (long long)flen);
        if (wlen > 0)
            flen = wlen;
    } else if (!qkv_present(io, 3)) {
        return KERR(io, QKV_ERR_INVALID_MODEL,
                    "needs input 2 'window' or input 3 'frame_length' for the frame length");
    }
    g->step = (size_t)step;
    g->frame = (size_t)flen;
    if (g->frame && x->rank == 3 && x->dims[1] >= 0 && g->frame > (size_t)x->dims[1])
        return KERR(io, QKV_ERR_SHAPE, "frame length %zu is longer than the signal (%lld samples)",
                    g->frame, (long long)x->dims[1]);
    if (g->frame && g->step && x->rank == 3 && x->dims[1] >= 0)
        g->frames = (g->length - g->frame) / g->step + 1;
    if (g->frame)
        g->bins = onesided ? g->frame / 2 + 1 : g->frame;
    return QKV_OK;
}

static qkv_status stft_infer(void *state, qkv_kernel_io *io)
{
    const qkv_tensor *x = &io->inputs[0];
    if (qkv_present(io, 2) && x->dtype != QKV_DTYPE_UNDEFINED &&
        io->inputs[2].dtype != QKV_DTYPE_UNDEFINED && io->inputs[2].dtype != x->dtype)
        return KERR(io, QKV_ERR_TYPE, "input 2 'window' has type %s, input 0 'signal' has %s",
                    io->host->dtype_name(io->inputs[2].dtype), io->host->dtype_name(x->dtype));
    stft_geom g;
    qkv_status st = stft_geometry(*(const bool *)state, io, &g);
    if (st != QKV_OK)
        return st;
    int64_t dims[4] = {x->rank == 3 ? x->dims[0] : -1, g.frames ? (int64_t)g.frames : -1,
                       g.bins ? (int64_t)g.bins : -1, 2};
    qkv_set_shape(&io->outputs[0], x->dtype, 4, dims);
    return QKV_OK;
}

/* Doubles per worker: the frame being transformed (2n) and the transform's
 * work buffer. The window (n, in double) and the tables are shared. */
static size_t slot_doubles(size_t n) { return 2 * n + qkv_fft_work_doubles(n); }

static size_t stft_scratch_bytes(const stft_geom *g, size_t workers)
{
    return (g->frame + qkv_fft_table_doubles(g->frame) + workers * slot_doubles(g->frame)) *
           sizeof(double);
}

static qkv_status stft_prepare(void *state, qkv_kernel_io *io)
{
    stft_geom g;
    qkv_status st = stft_geometry(*(const bool *)state, io, &g);
    if (st != QKV_OK)
        return st;
    size_t threads = io->host->thread_count(io->host_ctx);
    io->scratch_bytes = stft_scratch_bytes(&g, threads ? threads : 1);
    return QKV_OK;
}

typedef struct stft_run {
    stft_geom g;
    const qkv_tensor *x;
    qkv_tensor *y;
    const double *win, *tab;
    double *slots; /* (workers, slot_doubles(frame)) */
    size_t workers;
} stft_run;

/* Worker w transforms frames w, w + workers, ... (over all batches). */
static void stft_slots(void *arg, size_t b, size_t e)
{
    const stft_run *r = arg;
    const stft_geom *g = &r->g;
    size_t es = qkv_ew_elem_bytes(r->x->dtype);
    const char *xp = r->x->data;
    char *yp = r->y->data;
    for (size_t w = b; w < e; w++) {
        double *line = r->slots + w * slot_doubles(g->frame); /* (frame, 2) */
        double *work = line + 2 * g->frame;
        for (size_t l = w; l < g->batch * g->frames; l += r->workers) {
            size_t bi = l / g->frames, f = l % g->frames;
            memset(line, 0, 2 * g->frame * sizeof *line);
            const char *src = xp + ((bi * g->length + f * g->step) * g->comps) * es;
            for (size_t j = 0; j < g->frame; j++) {
                qkv_ew_load_f64(line + 2 * j, src + j * g->comps * es, r->x->dtype, 1, g->comps);
                line[2 * j] *= r->win[j];
                line[2 * j + 1] *= r->win[j];
            }
            qkv_fft_run(line, g->frame, r->tab, false, work);
            char *dst = yp + ((bi * g->frames + f) * g->bins * 2) * es;
            qkv_ew_store_f64(dst, r->y->dtype, line, 2 * g->bins);
        }
    }
}

static qkv_status stft_compute(const void *state, qkv_kernel_io *io)
{
    stft_run r = {.x = &io->inputs[0], .y = &io->outputs[0]};
    qkv_status st = stft_geometry(*(const bool *)state, io, &r.g);
    if (st != QKV_OK)
        return st;
    if (!r.g.frame || !r.g.step || io->scratch_bytes < stft_scratch_bytes(&r.g, 1))
        return KERR(io, QKV_ERR_INTERNAL, "frame geometry or scratch not prepared");
    double *win = io->scratch;     /* (frame) */
    double *tab = win + r.g.frame; /* the transform's tables */
    qkv_fft_tables(tab, r.g.frame);
    if (qkv_present(io, 2))
        qkv_ew_load_f64(win, io->inputs[2].data, io->inputs[2].dtype, 1, r.g.frame);
    else
        for (size_t j = 0; j < r.g.frame; j++)
            win[j] = 1.0;
    r.win = win;
    r.tab = tab;
    r.slots = tab + qkv_fft_table_doubles(r.g.frame);
    /* as many workers as the scratch has slots, threads and frames allow;
     * small transforms stay on this thread */
    size_t frames = r.g.batch * r.g.frames, threads = io->host->thread_count(io->host_ctx);
    size_t slots = (io->scratch_bytes - stft_scratch_bytes(&r.g, 0)) / sizeof(double) /
                   slot_doubles(r.g.frame);
    r.workers = threads < slots ? threads : slots;
    r.workers = r.workers < frames ? r.workers : frames;
    if (r.workers <= 1 || frames * r.g.frame < 4096) {
        r.workers = 1;
        stft_slots(&r, 0, 1);
    } else {
        io->host->parallel_for(io->host_ctx, r.workers, stft_slots, &r);
    }
    return QKV_OK;
}

static const qkv_kernel kernels[] = {
    {
        QKV_KERNEL_V1,
        .domain = "",
        .op_type = "STFT",
        .since_version = 17,
        .min_inputs = 2,
        .max_inputs = 4,
        .min_outputs = 1,
        .max_outputs = 1,
        .n_input_types = 4,
        .input_types = {STFT_TYPES, QKV_TYPES_INDEX, STFT_TYPES, QKV_TYPES_INDEX},
        .init = stft_init,
        .infer = stft_infer,
        .prepare = stft_prepare,
        .compute = stft_compute,
        .destroy = stft_destroy,
    },
};

/* The stft family: STFT. */
const qkv_kernel *qkv_ops_stft(size_t *count)
{
    *count = sizeof kernels / sizeof kernels[0];
    return kernels;
}
