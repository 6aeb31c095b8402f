/*
 * roialign.c - RoiAlign (opsets 10, 16): pools each region of interest of
 * X (N, C, H, W) into an (output_height, output_width) grid of bins.
 * Inputs rois (num_rois, 4) as [x1, y1, x2, y2] and batch_indices
 * (num_rois); output (num_rois, C, output_height, output_width).
 *
 * As the ONNX reference (from Caffe2's RoIAlign): the region is scaled by
 * spatial_scale and, with coordinate_transformation_mode half_pixel (opset
 * 16's default), shifted by -0.5; output_half_pixel (opset 10's only
 * behaviour) instead makes it at least 1 x 1. Each bin averages (avg) or
 * takes the largest (max) of sampling_ratio^2 bilinear samples (0: ceil of
 * the bin size per axis); a sample more than one pixel outside X reads 0,
 * one within it is clamped to the border. max takes the largest weighted
 * corner of each sample, as the reference and ONNX Runtime do.
 *
 * Float and double X and rois; batch_indices int64 (int32 accepted).
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "kernel_util.h"

typedef struct roi_state {
    bool max_mode, half_pixel;
    int64_t out_h, out_w, sampling_ratio;
    float spatial_scale;
} roi_state;

static qkv_status roi_init(const qkv_kernel *k, const qkv_host_api *host, const qkv_node_ctx *node,
                           void **state)
{
    const char *mode, *coord;
    roi_state s = {0};
    qkv_status st = host->attr_string(node, "mode", "avg", &mode);
    if (st == QKV_OK)
        st = host->attr_string(node, "coordinate_transformation_mode",
                               k->since_version >= 16 ? "half_pixel" : "output_half_pixel", &coord);
    if (st == QKV_OK)
        st = host->attr_int(node, "output_height", 1, &s.out_h);
    if (st == QKV_OK)
        st = host->attr_int(node, "output_width", 1, &s.out_w);
    if (st == QKV_OK)
        st = host->attr_int(node, "sampling_ratio", 0, &s.sampling_ratio);
    if (st == QKV_OK)
        st = host->attr_float(node, "spatial_scale", 1.0f, &s.spatial_scale);
    if (st != QKV_OK)
        return st;
    if (strcmp(mode, "avg") != 0 && strcmp(mode, "max") != 0)
        return NERR(host, node, QKV_ERR_INVALID_MODEL, "attribute 'mode' is '%s', not supported",
                    mode);
    if (strcmp(coord, "half_pixel") != 0 && strcmp(coord, "output_half_pixel") != 0)
        return NERR(host, node, QKV_ERR_INVALID_MODEL,
                    "attribute 'coordinate_transformation_mode' is '%s', not supported", coord);
    if (s.out_h < 1 || s.out_w < 1 || s.sampling_ratio < 0)
        return NERR(host, node, QKV_ERR_INVALID_MODEL,
                    "output_height %lld, output_width %lld and sampling_ratio %lld: expected "
                    ">= 1, >= 1, >= 0",
                    (long long)s.out_h, (long long)s.out_w, (long long)s.sampling_ratio);
    s.max_mode = strcmp(mode, "max") == 0;
    s.half_pixel = strcmp(coord, "half_pixel") == 0;
    roi_state *p = malloc(sizeof *p);
    if (!p)
        return NERR(host, node, QKV_ERR_OUT_OF_MEMORY, "kernel state");
    *p = s;
    *state = p;
    return QKV_OK;
}

static void roi_destroy(void *state) { free(state); }

static qkv_status roi_infer(void *state, qkv_kernel_io *io)
{
    const roi_state *s = state;
    const qkv_tensor *x = &io->inputs[0], *r = &io->inputs[1], *b = &io->inputs[2];
    qkv_tensor *y = &io->outputs[0];
    y->dtype = x->dtype;
    y->rank = 4;
    if (x->rank >= 0 && x->rank != 4)
        return KERR(io, QKV_ERR_SHAPE, "input 0 'X' has rank %d, expected 4", x->rank);
    if (r->rank >= 0 && (r->rank != 2 || (r->dims[1] >= 0 && r->dims[1] != 4)))
        return KERR(io, QKV_ERR_SHAPE, "input 1 'rois' must be (num_rois, 4)");
    if (b->rank >= 0 && b->rank != 1)
        return KERR(io, QKV_ERR_SHAPE, "input 2 'batch_indices' has rank %d, expected 1", b->rank);
    int64_t nr = r->rank == 2 ? r->dims[0] : -1, nb = b->rank == 1 ? b->dims[0] : -1;
    if (nr >= 0 && nb >= 0 && nr != nb)
        return KERR(io, QKV_ERR_SHAPE, "'rois' has %lld rows, 'batch_indices' %lld values",
                    (long long)nr, (long long)nb);
    y->dims[0] = nr >= 0 ? nr : nb;
    y->dims[1] = x->rank == 4 ? x->dims[1] : -1;
    y->dims[2] = s->out_h;
    y->dims[3] = s->out_w;
    return QKV_OK;
}

typedef struct roi_job {
    const roi_state *s;
    const qkv_tensor *x, *rois, *batch;
    void *y;
    bool dbl;
} roi_job;

static double at(const void *p, bool dbl, size_t i)
{
    return dbl ? ((const double *)p)[i] : (double)((const float *)p)[i];
}

/* One sample at (y, x) of an H x W plane: corner offsets and weights; false
 * when it lies more than a pixel outside (then it contributes 0). */
static bool sample(double y, double x, int64_t h, int64_t w, size_t pos[4], double wt[4])
{
    if (!(y >= -1.0 && y <= (double)h && x >= -1.0 && x <= (double)w)) /* NaN too */
        return false;
    y = y <= 0 ? 0 : y;
    x = x <= 0 ? 0 : x;
    int64_t y0 = (int64_t)y, x0 = (int64_t)x, y1, x1;
    if (y0 >= h - 1) {
        y1 = y0 = h - 1;
        y = (double)y0;
    } else {
        y1 = y0 + 1;
    }
    if (x0 >= w - 1) {
        x1 = x0 = w - 1;
        x = (double)x0;
    } else {
        x1 = x0 + 1;
    }
    double ly = y - (double)y0, lx = x - (double)x0, hy = 1 - ly, hx = 1 - lx;
    pos[0] = (size_t)(y0 * w + x0);
    pos[1] = (size_t)(y0 * w + x1);
    pos[2] = (size_t)(y1 * w + x0);
    pos[3] = (size_t)(y1 * w + x1);
    wt[0] = hy * hx;
    wt[1] = hy * lx;
    wt[2] = ly * hx;
    wt[3] = ly * lx;
    return true;
}

/* The most samples a bin may take per axis (a bigger region is refused). */
#define MAX_GRID ((int64_t)1 << 10)

/* Where region n's bins start and how big they are, and the samples per
 * bin along each axis (gh, gw; -1 when more than MAX_GRID). */
typedef struct roi_geom {
    double sh, sw, bh, bw;
    int64_t gh, gw;
} roi_geom;

static roi_geom region(const roi_state *s, const qkv_tensor *rois, size_t n)
{
    const bool rdbl = rois->dtype == QKV_DTYPE_DOUBLE;
    const double off = s->half_pixel ? 0.5 : 0.0, ss = s->spatial_scale;
    roi_geom g;
    g.sw = at(rois->data, rdbl, n * 4) * ss - off;
    g.sh = at(rois->data, rdbl, n * 4 + 1) * ss - off;
    double rw = at(rois->data, rdbl, n * 4 + 2) * ss - off - g.sw;
    double rh = at(rois->data, rdbl, n * 4 + 3) * ss - off - g.sh;
    if (!s->half_pixel) {
        rw = rw > 1 ? rw : 1;
        rh = rh > 1 ? rh : 1;
    }
    g.bh = rh / (double)s->out_h;
    g.bw = rw / (double)s->out_w;
    double gh = s->sampling_ratio > 0 ? (double)s->sampling_ratio : ceil(g.bh);
    double gw = s->sampling_ratio > 0 ? (double)s->sampling_ratio : ceil(g.bw);
    g.gh = gh > (double)MAX_GRID ? -1 : gh > 0 ? (int64_t)gh : 0; /* NaN: 0 */
    g.gw = gw > (double)MAX_GRID ? -1 : gw > 0 ? (int64_t)gw : 0;
    return g;
}

/* Regions [begin, end). */
static void roi_range(void *arg, size_t begin, size_t end)
{
    const roi_job *j = arg;
    const roi_state *s = j->s;
    const int64_t C = j->x->dims[1], H = j->x->dims[2], W = j->x->dims[3];
    const size_t plane = (size_t)(H * W), bins = (size_t)(s->out_h * s->out_w);
    for (size_t n = begin; n < end; n++) {
        const roi_geom g = region(s, j->rois, n);
        const double sh = g.sh, sw = g.sw, bh = g.bh, bw = g.bw;
        const int64_t gh = g.gh, gw = g.gw;
        double count = gh * gw > 0 ? (double)(gh * gw) : 1.0;
        size_t base = (size_t)qkv_int_at(j->batch, n) * (size_t)C * plane;
        for (int64_t ph = 0; ph < s->out_h; ph++)
            for (int64_t pw = 0; pw < s->out_w; pw++)
                for (int64_t c = 0; c < C; c++) {
                    const size_t cb = base + (size_t)c * plane;
                    double acc = 0.0;
                    bool first = true;
                    for (int64_t iy = 0; iy < gh; iy++) {
                        double y = sh + (double)ph * bh + ((double)iy + 0.5) * bh / (double)gh;
                        for (int64_t ix = 0; ix < gw; ix++) {
                            double x = sw + (double)pw * bw + ((double)ix + 0.5) * bw / (double)gw;
                            size_t pos[4] = {0, 0, 0, 0};
                            double wt[4] = {0, 0, 0, 0};
                            sample(y, x, H, W, pos, wt);
                            if (!s->max_mode) {
                                for (int k = 0; k < 4; k++)
                                    acc += wt[k] * at(j->x->data, j->dbl, cb + pos[k]);
                                continue;
                            }
                            for (int k = 0; k < 4; k++) {
                                double v = wt[k] * at(j->x->data, j->dbl, cb + pos[k]);
                                if (first || v > acc)
                                    acc = v;
                                first = false;
                            }
                        }
                    }
                    double v = s->max_mode ? acc : acc / count;
                    size_t o = ((n * (size_t)C + (size_t)c) * bins) + (size_t)(ph * s->out_w + pw);
                    if (j->dbl)
                        ((double *)j->y)[o] = v;
                    else
                        ((float *)j->y)[o] = (float)v;
                }
    }
}

static qkv_status roi_compute(const void *state, qkv_kernel_io *io)
{
    const qkv_tensor *x = &io->inputs[0], *b = &io->inputs[2];
    qkv_tensor *y = &io->outputs[0];
    size_t n = (size_t)y->dims[0];
    for (size_t i = 0; i < n; i++) {
        int64_t bi = qkv_int_at(b, i);
        if (bi < 0 || bi >= x->dims[0])
            return KERR(io, QKV_ERR_INVALID_ARGUMENT,
                        "input 2 'batch_indices'[%zu] is %lld, outside [0, %lld)", i, (long long)bi,
                        (long long)x->dims[0]);
        roi_geom g = region(state, &io->inputs[1], i);
        if (g.gh < 0 || g.gw < 0)
            return KERR(io, QKV_ERR_UNSUPPORTED,
                        "region %zu needs more than %lld samples per bin along an axis", i,
                        (long long)MAX_GRID);
    }
    if (qkv_numel(y) == 0)
        return QKV_OK;
    if (x->dims[2] == 0 || x->dims[3] == 0)
        return KERR(io, QKV_ERR_SHAPE, "input 0 'X' has an empty spatial axis");
    roi_job j = {.s = state,
                 .x = x,
                 .rois = &io->inputs[1],
                 .batch = b,
                 .y = y->data,
                 .dbl = x->dtype == QKV_DTYPE_DOUBLE};
    qkv_run_range(io, n, qkv_numel(y) * 64, roi_range, &j);
    return QKV_OK;
}

#define ROI_KERNEL(SINCE, UNTIL)                                                                   \
    {                                                                                              \
        QKV_KERNEL_V1, .domain = "", .op_type = "RoiAlign", .since_version = (SINCE),              \
                       .until_version = (UNTIL), .min_inputs = 3, .max_inputs = 3,                 \
                       .min_outputs = 1, .max_outputs = 1, .n_input_types = 3,                     \
                       .input_types = {QKV_T(FLOAT) | QKV_T(DOUBLE), QKV_T(FLOAT) | QKV_T(DOUBLE), \
                                       QKV_TYPES_INDEX},                                           \
                       .init = roi_init, .infer = roi_infer, .compute = roi_compute,               \
                       .destroy = roi_destroy,                                                     \
    }

static const qkv_kernel kernels[] = {ROI_KERNEL(10, 15), ROI_KERNEL(16, 0)};

/* The roialign family: RoiAlign. */
const qkv_kernel *qkv_ops_roialign(size_t *count)
{
    *count = sizeof kernels / sizeof kernels[0];
    return kernels;
}
