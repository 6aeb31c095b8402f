/*
 * gridsample.c - GridSample (opsets 16, 20): samples X (N, C, D1..Dr) at
 * the points of grid (N, O1..Or, r), whose last axis holds normalised
 * coordinates in [-1, 1], innermost spatial axis first (x, then y, ...).
 * Output (N, C, O1..Or).
 *
 * Modes: opset 16 bilinear, nearest, bicubic; opset 20 linear, nearest,
 * cubic (the old names are accepted at any opset). padding_mode zeros,
 * border, reflection; align_corners. As PyTorch's grid_sample (the source
 * of ONNX's test data) and ONNX Runtime:
 *   - a coordinate is unnormalised to ((g + 1) / 2)(size - 1) with
 *     align_corners, else ((g + 1) size - 1) / 2;
 *   - linear and nearest pad the coordinate first (border: clamp to
 *     [0, size - 1]; reflection: reflect at 0 and size - 1, or at -0.5 and
 *     size - 0.5 without align_corners, then clamp), then read the 2 (or
 *     1, rounded half to even) neighbours; a neighbour outside reads 0;
 *   - cubic (A = -0.75) reads the 4 neighbours of the unpadded coordinate,
 *     each padded on its own (zeros: 0 outside).
 * Any spatial rank r >= 1 (opset 16 defines 2 only); the sum runs over the
 * product of the per-axis neighbours. Float and double X and grid.
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "kernel_util.h"

enum gs_mode { GS_LINEAR, GS_NEAREST, GS_CUBIC };
enum gs_pad { GS_ZEROS, GS_BORDER, GS_REFLECTION };

typedef struct gs_state {
    enum gs_mode mode;
    enum gs_pad pad;
    bool align_corners;
} gs_state;

static qkv_status gs_init(const qkv_kernel *k, const qkv_host_api *host, const qkv_node_ctx *node,
                          void **state)
{
    (void)k;
    static const char *const modes[] = {"bilinear", "nearest", "bicubic", "linear", "cubic"};
    static const enum gs_mode mode_of[] = {GS_LINEAR, GS_NEAREST, GS_CUBIC, GS_LINEAR, GS_CUBIC};
    static const char *const pads[] = {"zeros", "border", "reflection"};
    const char *mode, *pad;
    int64_t align;
    qkv_status st = host->attr_string(node, "mode",
                                      host->node_opset(node) >= 20 ? "linear" : "bilinear", &mode);
    if (st == QKV_OK)
        st = host->attr_string(node, "padding_mode", "zeros", &pad);
    if (st == QKV_OK)
        st = host->attr_int(node, "align_corners", 0, &align);
    if (st != QKV_OK)
        return st;
    gs_state *s = calloc(1, sizeof *s);
    if (!s)
        return NERR(host, node, QKV_ERR_OUT_OF_MEMORY, "kernel state");
    int m = 0, p = 0;
    while (m < 5 && strcmp(mode, modes[m]) != 0)
        m++;
    while (p < 3 && strcmp(pad, pads[p]) != 0)
        p++;
    if (m == 5 || p == 3) {
        free(s);
        return NERR(host, node, QKV_ERR_INVALID_MODEL, "attribute '%s' is '%s', not supported",
                    m == 5 ? "mode" : "padding_mode", m == 5 ? mode : pad);
    }
    s->mode = mode_of[m];
    s->pad = (enum gs_pad)p;
    s->align_corners = align != 0;
    *state = s;
    return QKV_OK;
}

static void gs_destroy(void *state) { free(state); }

static qkv_status gs_infer(void *state, qkv_kernel_io *io)
{
    (void)state;
    const qkv_tensor *x = &io->inputs[0], *g = &io->inputs[1];
    qkv_tensor *y = &io->outputs[0];
    y->dtype = x->dtype;
    y->rank = x->rank >= 0 ? x->rank : g->rank;
    if (x->rank >= 0 && x->rank < 3)
        return KERR(io, QKV_ERR_SHAPE, "input 0 'X' has rank %d, expected >= 3", x->rank);
    if (x->rank >= 0 && g->rank >= 0 && g->rank != x->rank)
        return KERR(io, QKV_ERR_SHAPE, "input 1 'grid' has rank %d, expected %d (that of 'X')",
                    g->rank, x->rank);
    if (y->rank < 0)
        return QKV_OK;
    const int32_t r = y->rank - 2;
    if (g->rank > 0 && g->dims[r + 1] >= 0 && g->dims[r + 1] != r)
        return KERR(io, QKV_ERR_SHAPE, "input 1 'grid' has %lld coordinates per point, expected %d",
                    (long long)g->dims[r + 1], r);
    if (x->rank > 0 && g->rank > 0 && x->dims[0] >= 0 && g->dims[0] >= 0 &&
        x->dims[0] != g->dims[0])
        return KERR(io, QKV_ERR_SHAPE, "batch of 'X' (%lld) and 'grid' (%lld) differ",
                    (long long)x->dims[0], (long long)g->dims[0]);
    y->dims[0] = x->rank > 0 && x->dims[0] >= 0 ? x->dims[0] : g->rank > 0 ? g->dims[0] : -1;
    y->dims[1] = x->rank > 0 ? x->dims[1] : -1;
    for (int32_t d = 0; d < r; d++)
        y->dims[2 + d] = g->rank > 0 ? g->dims[1 + d] : -1;
    return QKV_OK;
}

/* Reflects x into [lo, hi] (a mirror at each end), as PyTorch does. */
static double reflect(double x, double lo, double hi)
{
    if (lo == hi)
        return 0.0;
    double span = hi - lo;
    x = fabs(x - lo);
    double extra = fmod(x, span);
    /* the parity of the flips, in double: x may be huge (or NaN, which stays NaN) */
    return fmod(floor(x / span), 2.0) == 0.0 ? lo + extra : hi - extra;
}

static double clampd(double x, double lo, double hi) { return x < lo ? lo : x > hi ? hi : x; }

/* The padded coordinate of x on an axis of `size`. */
static double pad_coord(const gs_state *s, double x, int64_t size)
{
    double hi = (double)(size - 1);
    switch (s->pad) {
    case GS_BORDER:
        return clampd(x, 0.0, hi);
    case GS_REFLECTION:
        x = s->align_corners ? reflect(x, 0.0, hi) : reflect(x, -0.5, (double)size - 0.5);
        return clampd(x, 0.0, hi);
    default:
        return x;
    }
}

/* The index read for integer coordinate j (after padding), or -1 for 0. */
static int64_t tap_index(const gs_state *s, double j, int64_t size, bool pad)
{
    if (pad)
        j = pad_coord(s, j, size);
    if (!(j >= 0.0 && j <= (double)(size - 1))) /* NaN too */
        return -1;
    return (int64_t)j;
}

static double cubic_w(double d)
{
    const double A = -0.75;
    d = fabs(d);
    if (d <= 1.0)
        return ((A + 2.0) * d - (A + 3.0)) * d * d + 1.0;
    if (d < 2.0)
        return ((A * d - 5.0 * A) * d + 8.0 * A) * d - 4.0 * A;
    return 0.0;
}

/* Neighbours of normalised coordinate g on an axis of `size`: up to 4
 * (index, weight) pairs, index -1 reading 0. Returns the count. */
static int axis_taps(const gs_state *s, double g, int64_t size, int64_t *idx, double *w)
{
    double x = s->align_corners ? (g + 1.0) / 2.0 * (double)(size - 1)
                                : ((g + 1.0) * (double)size - 1.0) / 2.0;
    if (s->mode == GS_CUBIC) {
        double f = floor(x), t = x - f;
        for (int k = 0; k < 4; k++) {
            idx[k] = tap_index(s, f - 1.0 + k, size, true);
            w[k] = cubic_w(t + 1.0 - k);
        }
        return 4;
    }
    x = pad_coord(s, x, size);
    if (s->mode == GS_NEAREST) {
        idx[0] = tap_index(s, nearbyint(x), size, false);
        w[0] = 1.0;
        return 1;
    }
    double f = floor(x), t = x - f;
    idx[0] = tap_index(s, f, size, false);
    idx[1] = tap_index(s, f + 1.0, size, false);
    w[0] = 1.0 - t;
    w[1] = t;
    return 2;
}

typedef struct gs_job {
    const gs_state *s;
    const qkv_tensor *x, *g, *y;
    int32_t r;              /* spatial rank */
    size_t points;          /* output points per batch item */
    size_t channels, plane; /* C, elements of one input channel */
    size_t in_stride[QKV_MAX_RANK];
} gs_job;

static double grid_at(const qkv_tensor *g, size_t i)
{
    return g->dtype == QKV_DTYPE_DOUBLE ? ((const double *)g->data)[i]
                                        : (double)((const float *)g->data)[i];
}

/* Output points [begin, end) of (N x points). */
static void gs_range(void *arg, size_t begin, size_t end)
{
    const gs_job *j = arg;
    const int32_t r = j->r;
    const bool dbl = j->x->dtype == QKV_DTYPE_DOUBLE;
    for (size_t p = begin; p < end; p++) {
        size_t n = p / j->points, q = p % j->points;
        int64_t idx[QKV_MAX_RANK][4];
        double w[QKV_MAX_RANK][4];
        int taps[QKV_MAX_RANK];
        /* coordinate k of the point is spatial axis r - 1 - k */
        for (int32_t k = 0; k < r; k++) {
            int32_t axis = r - 1 - k;
            taps[axis] = axis_taps(j->s, grid_at(j->g, p * (size_t)r + (size_t)k),
                                   j->x->dims[2 + axis], idx[axis], w[axis]);
        }
        /* the (offset, weight) products over every axis' taps, for all channels */
        int c[QKV_MAX_RANK];
        for (size_t ch = 0; ch < j->channels; ch++) {
            size_t base = (n * j->channels + ch) * j->plane;
            double acc = 0.0;
            memset(c, 0, sizeof c);
            for (;;) {
                double wt = 1.0;
                size_t off = base;
                bool zero = false;
                for (int32_t a = 0; a < r; a++) {
                    int64_t i = idx[a][c[a]];
                    wt *= w[a][c[a]];
                    if (i < 0)
                        zero = true;
                    else
                        off += (size_t)i * j->in_stride[a];
                }
                if (!zero && wt != 0.0)
                    acc += wt * (dbl ? ((const double *)j->x->data)[off]
                                     : (double)((const float *)j->x->data)[off]);
                int32_t a = r - 1;
                while (a >= 0 && ++c[a] == taps[a])
                    c[a--] = 0;
                if (a < 0)
                    break;
            }
            size_t o = (n * j->channels + ch) * j->points + q;
            if (dbl)
                ((double *)j->y->data)[o] = acc;
            else
                ((float *)j->y->data)[o] = (float)acc;
        }
    }
}

static qkv_status gs_compute(const void *state, qkv_kernel_io *io)
{
    const qkv_tensor *x = &io->inputs[0], *g = &io->inputs[1], *y = &io->outputs[0];
    gs_job j = {.s = state,
                .x = x,
                .g = g,
                .y = y,
                .r = x->rank - 2,
                .points = 1,
                .channels = (size_t)x->dims[1],
                .plane = 1};
    if (qkv_numel(y) == 0)
        return QKV_OK;
    for (int32_t a = j.r - 1; a >= 0; a--) {
        j.in_stride[a] = j.plane;
        j.plane *= (size_t)x->dims[2 + a];
        j.points *= (size_t)y->dims[2 + a];
    }
    if (j.plane == 0)
        return KERR(io, QKV_ERR_SHAPE, "input 0 'X' has an empty spatial axis");
    size_t total = (size_t)y->dims[0] * j.points;
    qkv_run_range(io, total, total * j.channels * 8, gs_range, &j);
    return QKV_OK;
}

#define GS_TYPES (QKV_T(FLOAT) | QKV_T(DOUBLE))

static const qkv_kernel kernels[] = {
    {
        QKV_KERNEL_V1,
        .domain = "",
        .op_type = "GridSample",
        .since_version = 16,
        .min_inputs = 2,
        .max_inputs = 2,
        .min_outputs = 1,
        .max_outputs = 1,
        .n_input_types = 2,
        .input_types = {GS_TYPES, GS_TYPES},
        .init = gs_init,
        .infer = gs_infer,
        .compute = gs_compute,
        .destroy = gs_destroy,
    },
};

/* The gridsample family: GridSample. */
const qkv_kernel *qkv_ops_gridsample(size_t *count)
{
    *count = sizeof kernels / sizeof kernels[0];
    return kernels;
}
