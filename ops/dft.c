/*
 * dft.c - DFT (opsets 17 and 20).
 *
 * Input 0 is real ([..., 1]) or complex ([..., 2], re and im) of rank >= 2,
 * float32, float64, float16 or bfloat16; the output has its type and rank and
 * is complex ([..., 2]). The transform runs along `axis`: opset 17's
 * attribute (default 1), opset 20's optional input 2 (int64 scalar, default
 * -2). Either may be negative (counted from the back, the complex dim
 * included) and must name a dim other than the last.
 * dft_length (input 1, int32/int64 scalar, >= 1) zero-pads or truncates the
 * signal; without it the length is the axis dim. `inverse` conjugates the
 * kernel and scales by 1/n. `onesided` keeps bins [0, n/2] (as the ONNX
 * reference does, for complex input too).
 *
 * Each transform gathers one line along the axis into double, runs the
 * shared transform (fft.h: exact twiddles; radix-2, a direct double sum or
 * Bluestein) and rounds once into the output type. Lines are split across
 * the session's threads, each worker with its own scratch slot.
 */
#include <stdlib.h>
#include <string.h>

#include "elementwise.h"
#include "fft.h"
#include "kernel_util.h"

#define DFT_TYPES (QKV_T(FLOAT) | QKV_T(DOUBLE) | QKV_T(FLOAT16) | QKV_T(BFLOAT16))

typedef struct dft_state {
    int64_t axis; /* opset 17's attribute */
    bool inverse, onesided;
    bool axis_input; /* opset 20: the axis is input 2 */
} dft_state;

/* Where the transforms run, from the shapes and values. */
typedef struct dft_geom {
    int32_t axis;
    size_t outer, len, inner, comps; /* x viewed as (outer, len, inner, comps) */
    size_t n, out_len;               /* transform length, bins written */
} dft_geom;

static qkv_status dft_init(const qkv_kernel *kernel, const qkv_host_api *host,
                           const qkv_node_ctx *node, void **state)
{
    int64_t axis = 1, inverse = 0, onesided = 0;
    bool axis_input = kernel->since_version >= 20;
    qkv_status st = QKV_OK;
    if (!axis_input)
        st = host->attr_int(node, "axis", 1, &axis);
    if (st == QKV_OK)
        st = host->attr_int(node, "inverse", 0, &inverse);
    if (st == QKV_OK)
        st = host->attr_int(node, "onesided", 0, &onesided);
    if (st != QKV_OK)
        return st;
    if ((inverse != 0 && inverse != 1) || (onesided != 0 && onesided != 1))
        return NERR(host, node, QKV_ERR_INVALID_MODEL,
                    "attributes 'inverse' (%lld) and 'onesided' (%lld) must be 0 or 1",
                    (long long)inverse, (long long)onesided);
    dft_state *s = malloc(sizeof *s);
    if (!s)
        return NERR(host, node, QKV_ERR_OUT_OF_MEMORY, "kernel state");
    *s = (dft_state){
        .axis = axis, .inverse = inverse, .onesided = onesided, .axis_input = axis_input};
    *state = s;
    return QKV_OK;
}

static void dft_destroy(void *state) { free(state); }

/* The scalar integer input k into *v; *known false when its value is not
 * known yet. QKV_ERR_SHAPE when it has more than one element. */
static qkv_status read_scalar(qkv_kernel_io *io, size_t k, const char *name, int64_t *v,
                              bool *known)
{
    const qkv_tensor *t = &io->inputs[k];
    *known = false;
    if (qkv_shape_known(t) && qkv_numel(t) != 1)
        return KERR(io, QKV_ERR_SHAPE, "input %zu '%s' must be a scalar, has %zu elements", k, name,
                    qkv_numel(t));
    if (!t->data || !qkv_shape_known(t))
        return QKV_OK;
    *v = qkv_int_at(t, 0);
    *known = true;
    return QKV_OK;
}

/* The axis (normalised) into *axis; -1 when not known yet. */
static qkv_status dft_axis(const dft_state *s, qkv_kernel_io *io, int32_t rank, int32_t *axis)
{
    int64_t a = s->axis;
    bool known = true;
    *axis = -1;
    if (s->axis_input) {
        a = -2;
        if (qkv_present(io, 2)) {
            qkv_status st = read_scalar(io, 2, "axis", &a, &known);
            if (st != QKV_OK || !known)
                return st;
        }
    }
    int32_t ax;
    if (!qkv_axis_normalize(a, rank, false, &ax) || ax == rank - 1)
        return KERR(io, QKV_ERR_INVALID_ARGUMENT,
                    "axis %lld is out of range for input 0 of rank %d (the last dim holds the "
                    "real and imaginary parts)",
                    (long long)a, rank);
    *axis = ax;
    return QKV_OK;
}

/* The transform length into *n (0 when not known yet). */
static qkv_status dft_length(qkv_kernel_io *io, int64_t axis_dim, size_t *n)
{
    *n = axis_dim >= 0 ? (size_t)axis_dim : 0;
    if (!qkv_present(io, 1))
        return QKV_OK;
    int64_t v = 0;
    bool known;
    qkv_status st = read_scalar(io, 1, "dft_length", &v, &known);
    if (st != QKV_OK)
        return st;
    *n = 0;
    if (!known)
        return QKV_OK;
    if (v < 1 || v > ((int64_t)1 << 40))
        return KERR(io, QKV_ERR_INVALID_ARGUMENT, "input 1 'dft_length' is %lld, must be >= 1",
                    (long long)v);
    *n = (size_t)v;
    return QKV_OK;
}

static qkv_status dft_infer(void *state, qkv_kernel_io *io)
{
    const dft_state *s = state;
    const qkv_tensor *x = &io->inputs[0];
    qkv_tensor *y = &io->outputs[0];
    y->dtype = x->dtype;
    y->rank = x->rank;
    if (x->rank < 0)
        return QKV_OK;
    if (x->rank < 2)
        return KERR(io, QKV_ERR_SHAPE, "input 0 has rank %d, expected >= 2", x->rank);
    int64_t last = x->dims[x->rank - 1];
    if (last >= 0 && last != 1 && last != 2)
        return KERR(io, QKV_ERR_SHAPE,
                    "input 0's last dim is %lld, expected 1 (real) or 2 (complex)",
                    (long long)last);
    for (int32_t d = 0; d < x->rank; d++)
        y->dims[d] = x->dims[d];
    y->dims[x->rank - 1] = 2;
    int32_t axis;
    qkv_status st = dft_axis(s, io, x->rank, &axis);
    if (st != QKV_OK)
        return st;
    if (axis < 0) { /* any dim but the last may be the transformed one */
        for (int32_t d = 0; d < x->rank - 1; d++)
            y->dims[d] = -1;
        return QKV_OK;
    }
    size_t n;
    st = dft_length(io, x->dims[axis], &n);
    if (st != QKV_OK)
        return st;
    y->dims[axis] = n == 0 ? -1 : (int64_t)(s->onesided ? n / 2 + 1 : n);
    if (n == 0 && x->dims[axis] == 0 && !qkv_present(io, 1))
        return KERR(io, QKV_ERR_SHAPE, "input 0 has length 0 along axis %d", axis);
    return QKV_OK;
}

static qkv_status dft_geometry(const dft_state *s, qkv_kernel_io *io, dft_geom *g)
{
    const qkv_tensor *x = &io->inputs[0];
    memset(g, 0, sizeof *g);
    qkv_status st = dft_axis(s, io, x->rank, &g->axis);
    if (st == QKV_OK && g->axis < 0)
        st = KERR(io, QKV_ERR_INVALID_ARGUMENT, "input 2 'axis' is not known");
    if (st == QKV_OK)
        st = dft_length(io, x->dims[g->axis], &g->n);
    if (st != QKV_OK)
        return st;
    if (g->n == 0)
        return KERR(io, QKV_ERR_SHAPE, "input 0 has length 0 along axis %d", g->axis);
    g->outer = g->inner = 1;
    for (int32_t d = 0; d < g->axis; d++)
        g->outer *= (size_t)x->dims[d];
    for (int32_t d = g->axis + 1; d < x->rank - 1; d++)
        g->inner *= (size_t)x->dims[d];
    g->len = (size_t)x->dims[g->axis];
    g->comps = (size_t)x->dims[x->rank - 1];
    g->out_len = s->onesided ? g->n / 2 + 1 : g->n;
    return QKV_OK;
}

/* Doubles of scratch per worker: the line being transformed (2n) and the
 * transform's work buffer. The transform's tables are shared. */
static size_t slot_doubles(size_t n) { return 2 * n + qkv_fft_work_doubles(n); }

/* Scratch for `workers` workers: the tables, then one slot each. */
static size_t dft_scratch_bytes(size_t n, size_t workers)
{
    return (qkv_fft_table_doubles(n) + workers * slot_doubles(n)) * sizeof(double);
}

static qkv_status dft_prepare(void *state, qkv_kernel_io *io)
{
    dft_geom g;
    qkv_status st = dft_geometry(state, io, &g);
    if (st != QKV_OK)
        return st;
    size_t threads = io->host->thread_count(io->host_ctx);
    io->scratch_bytes = dft_scratch_bytes(g.n, threads ? threads : 1);
    return QKV_OK;
}

typedef struct dft_run {
    const dft_state *s;
    dft_geom g;
    const qkv_tensor *x;
    qkv_tensor *y;
    const double *tab; /* the transform's tables */
    double *slots;     /* (workers, slot_doubles(n)) */
    size_t workers;
} dft_run;

/* Worker w transforms lines w, w + workers, ... with its own scratch slot. */
static void dft_slots(void *arg, size_t b, size_t e)
{
    const dft_run *r = arg;
    const dft_geom *g = &r->g;
    size_t es = qkv_ew_elem_bytes(r->x->dtype), used = g->len < g->n ? g->len : g->n;
    const char *xp = r->x->data;
    char *yp = r->y->data;
    double scale = r->s->inverse ? 1.0 / (double)g->n : 1.0;
    for (size_t w = b; w < e; w++) {
        double *line = r->slots + w * slot_doubles(g->n); /* (n, 2) */
        double *work = line + 2 * g->n;                   /* (n, 2) */
        for (size_t l = w; l < g->outer * g->inner; l += r->workers) {
            size_t o = l / g->inner, i = l % g->inner;
            memset(line, 0, 2 * g->n * sizeof *line);
            for (size_t j = 0; j < used; j++) {
                size_t at = ((o * g->len + j) * g->inner + i) * g->comps;
                qkv_ew_load_f64(line + 2 * j, xp + at * es, r->x->dtype, 1, g->comps);
            }
            qkv_fft_run(line, g->n, r->tab, r->s->inverse, work);
            for (size_t k = 0; k < 2 * g->out_len; k++)
                line[k] *= scale;
            for (size_t k = 0; k < g->out_len; k++) {
                size_t at = ((o * g->out_len + k) * g->inner + i) * 2;
                qkv_ew_store_f64(yp + at * es, r->y->dtype, line + 2 * k, 2);
            }
        }
    }
}

static qkv_status dft_compute(const void *state, qkv_kernel_io *io)
{
    dft_run r = {.s = state, .x = &io->inputs[0], .y = &io->outputs[0]};
    qkv_status st = dft_geometry(r.s, io, &r.g);
    if (st != QKV_OK)
        return st;
    if (io->scratch_bytes < dft_scratch_bytes(r.g.n, 1))
        return KERR(io, QKV_ERR_INTERNAL, "scratch of %zu bytes, %zu needed", io->scratch_bytes,
                    dft_scratch_bytes(r.g.n, 1));
    double *tab = io->scratch;
    qkv_fft_tables(tab, r.g.n);
    r.tab = tab;
    r.slots = tab + qkv_fft_table_doubles(r.g.n);
    /* as many workers as the scratch has slots, threads and lines allow;
     * small transforms stay on this thread */
    size_t lines = r.g.outer * r.g.inner, threads = io->host->thread_count(io->host_ctx);
    size_t slots =
        (io->scratch_bytes / sizeof(double) - qkv_fft_table_doubles(r.g.n)) / slot_doubles(r.g.n);
    r.workers = threads < slots ? threads : slots;
    r.workers = r.workers < lines ? r.workers : lines;
    if (r.workers <= 1 || lines * r.g.n < 4096) {
        r.workers = 1;
        dft_slots(&r, 0, 1);
    } else {
        io->host->parallel_for(io->host_ctx, r.workers, dft_slots, &r);
    }
    return QKV_OK;
}

#define DFT(since, until, max_in)                                                                  \
    {                                                                                              \
        QKV_KERNEL_V1,                                                                             \
            .domain = "", .op_type = "DFT", .since_version = since, .until_version = until,        \
            .min_inputs = 1, .max_inputs = max_in, .min_outputs = 1, .max_outputs = 1,             \
            .n_input_types = 3, .input_types = {DFT_TYPES, QKV_TYPES_INDEX, QKV_T(INT64)},         \
            .init = dft_init, .infer = dft_infer, .prepare = dft_prepare, .compute = dft_compute,  \
            .destroy = dft_destroy                                                                 \
    }

static const qkv_kernel kernels[] = {
    DFT(17, 19, 2),
    DFT(20, 0, 3),
};

/* The dft family: DFT. */
const qkv_kernel *qkv_ops_dft(size_t *count)
{
    *count = sizeof kernels / sizeof kernels[0];
    return kernels;
}
