/*
 * resize.c - Resize (opsets 10, 11, 13, 18, 19) and Upsample (7, 9).
 *
 * Forms:
 *   Upsample-7: scales attribute; Upsample-9 and Resize-10: a scales input.
 *     Modes nearest and linear ("bilinear" too), coordinates asymmetric,
 *     nearest rounding "simple" (floor when enlarging, ceil when shrinking,
 *     as ONNX Runtime does). Upsample's scales must be >= 1.
 *   Resize-11+: inputs X, roi, scales, sizes (all but X optional; an empty
 *     tensor reads as absent, the opset-11 way to skip scales); attributes
 *     mode (nearest, linear, cubic), coordinate_transformation_mode,
 *     nearest_mode, cubic_coeff_a, exclude_outside, extrapolation_value.
 *   Resize-18+: antialias, axes, keep_aspect_ratio_policy; half_pixel_symmetric
 *     (opset 19) is accepted at any opset.
 *
 * Output dims: floor(in * scale) with scales (the product in float, as
 * ONNX Runtime and ONNX's shape inference compute it; roi does not enter,
 * as there), sizes as given with "stretch", and with not_larger /
 * not_smaller one scale for all the given axes (min / max of size / in) and
 * dims round(scale * in). The transform's scale is the given scale, size /
 * in, or that common scale. When the scales or sizes are not known, infer
 * leaves the dims they decide -1 and the node runs as data dependent.
 *
 * Deviations, where ONNX 1.12's reference and ONNX Runtime differ: the
 * length of the resized axis in align_corners and tf_crop_and_resize is the
 * integer output dim, as the spec says and ONNX Runtime does (the reference
 * uses scale * in, so its downsample_scales_*_align_corners tests differ);
 * pytorch_half_pixel maps a length-1 output to 0, as the spec says (the
 * reference -0.5). A missing roi with tf_crop_and_resize is [0, 1] on every
 * axis. antialias is ignored by nearest. Linear and cubic need a numeric,
 * float16 or bfloat16 input (QKV_ERR_TYPE otherwise); integer results are
 * rounded half away from zero and saturated (the reference truncates).
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "half.h"
#include "resize.h"

typedef enum aspect_policy { ASPECT_STRETCH, ASPECT_NOT_LARGER, ASPECT_NOT_SMALLER } aspect_policy;

typedef struct resize_state {
    bool upsample;
    qkv_resize_mode mode;
    qkv_resize_coord coord;
    qkv_resize_nearest nearest;
    aspect_policy aspect;
    bool antialias, exclude_outside;
    float cubic_a, extrapolation;
    size_t n_axes; /* the axes attribute (opset 18+); 0: every axis */
    int64_t axes[QKV_MAX_RANK];
    size_t n_attr_scales; /* Upsample-7 */
    float attr_scales[QKV_MAX_RANK];
    int roi_input, scales_input, sizes_input; /* -1: the form has none */
} resize_state;

/* Index of name in names[0, n), or -1. */
static int lookup(const char *name, const char *const *names, int n)
{
    for (int i = 0; i < n; i++)
        if (strcmp(name, names[i]) == 0)
            return i;
    return -1;
}

/* Reads string attribute `attr` as one of names (its index into *out). */
static qkv_status string_choice(const qkv_host_api *host, const qkv_node_ctx *node,
                                const char *attr, const char *dflt, const char *const *names, int n,
                                int *out)
{
    const char *v;
    *out = 0;
    qkv_status st = host->attr_string(node, attr, dflt, &v);
    if (st != QKV_OK)
        return st;
    *out = lookup(v, names, n);
    if (*out < 0)
        return NERR(host, node, QKV_ERR_INVALID_MODEL, "attribute '%s' is '%s', not supported",
                    attr, v);
    return QKV_OK;
}

static const char *const mode_names[] = {"nearest", "linear", "cubic", "bilinear"};
static const char *const coord_names[] = {
    "half_pixel", "half_pixel_symmetric", "pytorch_half_pixel", "align_corners",
    "asymmetric", "tf_half_pixel_for_nn", "tf_crop_and_resize"};
static const char *const nearest_names[] = {"round_prefer_floor", "round_prefer_ceil", "floor",
                                            "ceil"};
static const char *const aspect_names[] = {"stretch", "not_larger", "not_smaller"};

/* The attributes of Resize-11+ (and antialias, axes, policy from 18). */
static qkv_status parse_resize_11(resize_state *s, const qkv_host_api *host,
                                  const qkv_node_ctx *node, int32_t since)
{
    int v;
    int64_t flag;
    qkv_status st = string_choice(host, node, "coordinate_transformation_mode", "half_pixel",
                                  coord_names, 7, &v);
    if (st != QKV_OK)
        return st;
    s->coord = (qkv_resize_coord)v;
    if ((st = string_choice(host, node, "nearest_mode", "round_prefer_floor", nearest_names, 4,
                            &v)) != QKV_OK)
        return st;
    s->nearest = (qkv_resize_nearest)v;
    if ((st = host->attr_float(node, "cubic_coeff_a", -0.75f, &s->cubic_a)) != QKV_OK ||
        (st = host->attr_float(node, "extrapolation_value", 0.0f, &s->extrapolation)) != QKV_OK ||
        (st = host->attr_int(node, "exclude_outside", 0, &flag)) != QKV_OK)
        return st;
    s->exclude_outside = flag != 0;
    s->roi_input = 1;
    s->scales_input = 2;
    s->sizes_input = 3;
    if (since < 18)
        return QKV_OK;
    if ((st = host->attr_int(node, "antialias", 0, &flag)) != QKV_OK)
        return st;
    s->antialias = flag != 0;
    if ((st = string_choice(host, node, "keep_aspect_ratio_policy", "stretch", aspect_names, 3,
                            &v)) != QKV_OK)
        return st;
    s->aspect = (aspect_policy)v;
    const int64_t *axes;
    if ((st = host->attr_ints(node, "axes", &axes, &s->n_axes)) != QKV_OK)
        return st;
    if (s->n_axes > QKV_MAX_RANK)
        return NERR(host, node, QKV_ERR_UNSUPPORTED, "attribute 'axes' has %zu values, at most %d",
                    s->n_axes, QKV_MAX_RANK);
    if (s->n_axes) /* absent: axes is NULL */
        memcpy(s->axes, axes, s->n_axes * sizeof *axes);
    return QKV_OK;
}

static qkv_status resize_init(const qkv_kernel *k, const qkv_host_api *host,
                              const qkv_node_ctx *node, void **state)
{
    resize_state *s = calloc(1, sizeof *s);
    if (!s)
        return NERR(host, node, QKV_ERR_OUT_OF_MEMORY, "kernel state");
    s->upsample = strcmp(k->op_type, "Upsample") == 0;
    s->coord = QKV_COORD_ASYMMETRIC;
    s->nearest = QKV_NEAREST_SIMPLE;
    s->cubic_a = -0.75f;
    s->roi_input = s->sizes_input = -1;
    s->scales_input = 1;
    int mode = 0;
    qkv_status st = string_choice(host, node, "mode", "nearest", mode_names, 4, &mode);
    if (st == QKV_OK && k->since_version >= 11 && mode == 3)
        st = NERR(host, node, QKV_ERR_INVALID_MODEL,
                  "attribute 'mode' is 'bilinear', not supported");
    else if (st == QKV_OK && k->since_version < 11 && mode == 2)
        st = NERR(host, node, QKV_ERR_INVALID_MODEL,
                  "attribute 'mode' is 'cubic', which opset %d does not have", k->since_version);
    s->mode = mode == 3 ? QKV_RESIZE_LINEAR : (qkv_resize_mode)mode;
    if (st == QKV_OK && k->since_version >= 11)
        st = parse_resize_11(s, host, node, k->since_version);
    if (st == QKV_OK && s->upsample && k->since_version < 9) {
        const float *scales;
        s->scales_input = -1;
        st = host->attr_floats(node, "scales", &scales, &s->n_attr_scales);
        if (st == QKV_OK && (s->n_attr_scales == 0 || s->n_attr_scales > QKV_MAX_RANK))
            st = NERR(host, node, QKV_ERR_INVALID_MODEL,
                      "attribute 'scales' has %zu values, expected 1 to %d", s->n_attr_scales,
                      QKV_MAX_RANK);
        if (st == QKV_OK)
            memcpy(s->attr_scales, scales, s->n_attr_scales * sizeof *scales);
    }
    if (st != QKV_OK) {
        free(s);
        return st;
    }
    *state = s;
    return QKV_OK;
}

static void resize_destroy(void *state) { free(state); }

/* ---- geometry: output dims and per-axis scales from the inputs ---------------------- */

/* A 1-D list input k: *n its length (SIZE_MAX unknown; 0 absent or empty),
 * *values its data (NULL when not known). */
static qkv_status list_input(qkv_kernel_io *io, int k, const char *name, size_t *n,
                             const void **values)
{
    *n = 0;
    *values = NULL;
    if (k < 0 || !qkv_present(io, (size_t)k))
        return QKV_OK;
    const qkv_tensor *t = &io->inputs[k];
    if (t->rank < 0 || (t->rank == 1 && t->dims[0] < 0)) {
        *n = SIZE_MAX;
        return QKV_OK;
    }
    if (t->rank != 1)
        return KERR(io, QKV_ERR_SHAPE, "input %d '%s' has rank %d, expected 1", k, name, t->rank);
    *n = (size_t)t->dims[0];
    *values = t->data;
    return QKV_OK;
}

/* The axes the lists refer to, normalised: the attribute, else all. */
static qkv_status resolve_axes(const resize_state *s, qkv_kernel_io *io, int32_t rank,
                               int32_t *axes, size_t *n)
{
    *n = s->n_axes ? s->n_axes : (size_t)rank;
    bool seen[QKV_MAX_RANK] = {false};
    for (size_t i = 0; i < *n; i++) {
        if (!s->n_axes) {
            axes[i] = (int32_t)i;
            continue;
        }
        if (!qkv_axis_normalize(s->axes[i], rank, false, &axes[i]))
            return KERR(io, QKV_ERR_INVALID_ARGUMENT,
                        "attribute 'axes'[%zu] is %lld, out of range for rank %d", i,
                        (long long)s->axes[i], rank);
        if (seen[axes[i]])
            return KERR(io, QKV_ERR_INVALID_ARGUMENT, "attribute 'axes' repeats axis %d", axes[i]);
        seen[axes[i]] = true;
    }
    return QKV_OK;
}

static qkv_status apply_scales(const resize_state *s, qkv_kernel_io *io, const float *scales,
                               const int32_t *axes, size_t n, qkv_resize_job *job)
{
    const char *what = s->n_attr_scales ? "attribute 'scales'" : "input 'scales'";
    for (size_t i = 0; i < n; i++) {
        qkv_resize_axis_spec *a = &job->axis[axes[i]];
        float sc = scales[i];
        if (!(sc > 0.0f) || isinf(sc))
            return KERR(io, QKV_ERR_INVALID_ARGUMENT, "%s[%zu] is %g, expected a finite value > 0",
                        what, i, (double)sc);
        if (s->upsample && sc < 1.0f)
            return KERR(io, QKV_ERR_INVALID_ARGUMENT, "%s[%zu] is %g, Upsample needs >= 1", what, i,
                        (double)sc);
        a->scale = sc;
        if (a->in_len < 0) {
            a->out_len = -1;
            continue;
        }
        /* in float, as ONNX Runtime and ONNX's shape inference compute it */
        float out = floorf((float)a->in_len * sc);
        if (!(out < 4611686018427387904.0f))
            return KERR(io, QKV_ERR_SHAPE, "output dim %d (%lld x %g) is too large", axes[i],
                        (long long)a->in_len, (double)sc);
        a->out_len = (int64_t)out;
    }
    return QKV_OK;
}

static qkv_status apply_sizes(const resize_state *s, qkv_kernel_io *io, const int64_t *sizes,
                              const int32_t *axes, size_t n, qkv_resize_job *job)
{
    double common = s->aspect == ASPECT_NOT_LARGER ? INFINITY : 0.0;
    bool all_in = true;
    for (size_t i = 0; i < n; i++) {
        qkv_resize_axis_spec *a = &job->axis[axes[i]];
        if (sizes[i] < 0)
            return KERR(io, QKV_ERR_INVALID_ARGUMENT, "input 'sizes'[%zu] is %lld, expected >= 0",
                        i, (long long)sizes[i]);
        a->out_len = sizes[i];
        if (a->in_len < 0) {
            all_in = false;
            continue;
        }
        if (a->in_len == 0 && sizes[i] > 0)
            return KERR(io, QKV_ERR_SHAPE, "axis %d is empty and cannot be resized to %lld",
                        axes[i], (long long)sizes[i]);
        double r = a->in_len ? (double)sizes[i] / (double)a->in_len : 1.0;
        a->scale = r;
        if (s->aspect == ASPECT_NOT_LARGER ? r < common : r > common)
            common = r;
    }
    if (s->aspect == ASPECT_STRETCH || n == 0)
        return QKV_OK;
    for (size_t i = 0; i < n; i++) {
        qkv_resize_axis_spec *a = &job->axis[axes[i]];
        if (!all_in) { /* the common scale needs every length */
            a->out_len = -1;
            continue;
        }
        if (!(common > 0.0))
            return KERR(io, QKV_ERR_INVALID_ARGUMENT,
                        "keep_aspect_ratio_policy '%s' needs sizes > 0", aspect_names[s->aspect]);
        double out = floor(common * (double)a->in_len + 0.5);
        if (!(out < 4611686018427387904.0))
            return KERR(io, QKV_ERR_SHAPE, "output dim %d is too large", axes[i]);
        a->scale = common;
        a->out_len = (int64_t)out;
    }
    return QKV_OK;
}

static double roi_at(const qkv_tensor *t, size_t i)
{
    switch (t->dtype) {
    case QKV_DTYPE_DOUBLE:
        return ((const double *)t->data)[i];
    case QKV_DTYPE_FLOAT16:
        return qkv_f16_to_f32(((const uint16_t *)t->data)[i]);
    default:
        return ((const float *)t->data)[i];
    }
}

/* The roi of tf_crop_and_resize ([starts..., ends...] over the axes);
 * absent or empty: [0, 1] everywhere. need: its values must be known. */
static qkv_status apply_roi(const resize_state *s, qkv_kernel_io *io, const int32_t *axes, size_t n,
                            bool need, qkv_resize_job *job)
{
    size_t nr;
    const void *values;
    qkv_status st = list_input(io, s->roi_input, "roi", &nr, &values);
    if (st != QKV_OK || nr == 0 || s->coord != QKV_COORD_TF_CROP_AND_RESIZE)
        return st;
    if (nr != SIZE_MAX && nr != 2 * n)
        return KERR(io, QKV_ERR_SHAPE, "input 1 'roi' has %zu values, expected 2 x %zu", nr, n);
    if (!need)
        return QKV_OK;
    if (nr == SIZE_MAX || !values)
        return KERR(io, QKV_ERR_INTERNAL, "input 1 'roi' is not known at run time");
    for (size_t i = 0; i < n; i++) {
        job->axis[axes[i]].roi_start = roi_at(&io->inputs[s->roi_input], i);
        job->axis[axes[i]].roi_end = roi_at(&io->inputs[s->roi_input], n + i);
    }
    return QKV_OK;
}

/*
 * The resize of io's inputs into *job. *known is false when a value or dim
 * it needs is not known yet; the out_len of every axis it decides is then
 * -1. with_roi: read tf_crop_and_resize's roi values (compute).
 */
static qkv_status make_job(const resize_state *s, qkv_kernel_io *io, bool with_roi,
                           qkv_resize_job *job, bool *known)
{
    const qkv_tensor *x = &io->inputs[0];
    memset(job, 0, sizeof *job);
    *known = false;
    job->rank = x->rank;
    job->dtype = x->dtype;
    job->extrapolation = s->extrapolation;
    if (x->rank < 0)
        return QKV_OK;
    int32_t axes[QKV_MAX_RANK];
    size_t n;
    qkv_status st = resolve_axes(s, io, x->rank, axes, &n);
    if (st != QKV_OK)
        return st;
    for (int32_t d = 0; d < x->rank; d++)
        job->axis[d] = (qkv_resize_axis_spec){.mode = s->mode,
                                              .coord = s->coord,
                                              .nearest = s->nearest,
                                              .antialias = s->antialias,
                                              .exclude_outside = s->exclude_outside,
                                              .cubic_a = s->cubic_a,
                                              .in_len = x->dims[d],
                                              .out_len = x->dims[d],
                                              .scale = 1.0,
                                              .roi_start = 0.0,
                                              .roi_end = 1.0};

    size_t ns = s->n_attr_scales, nz;
    const void *sv = s->attr_scales, *zv;
    if (!ns && (st = list_input(io, s->scales_input, "scales", &ns, &sv)) != QKV_OK)
        return st;
    if ((st = list_input(io, s->sizes_input, "sizes", &nz, &zv)) != QKV_OK)
        return st;
    if (ns == 0 && nz == 0)
        return KERR(io, QKV_ERR_INVALID_ARGUMENT, "neither 'scales' nor 'sizes' is given");
    if (ns != 0 && nz != 0 && ns != SIZE_MAX && nz != SIZE_MAX)
        return KERR(io, QKV_ERR_INVALID_ARGUMENT,
                    "both 'scales' and 'sizes' are given; only one may be");
    const bool use_sizes = ns == 0;
    const size_t nv = use_sizes ? nz : ns;
    if (nv != SIZE_MAX && nv != n)
        return KERR(io, QKV_ERR_SHAPE, "'%s' has %zu values, expected %zu (%s)",
                    use_sizes ? "sizes" : "scales", nv, n,
                    s->n_axes ? "one per axis in 'axes'" : "the rank of input 0 'X'");
    if ((st = apply_roi(s, io, axes, n, with_roi, job)) != QKV_OK)
        return st;
    const void *values = use_sizes ? zv : sv;
    /* a list of unknown length may turn out empty or not: which one rules is unknown */
    if (ns == SIZE_MAX || nz == SIZE_MAX || !values) {
        for (size_t i = 0; i < n; i++)
            job->axis[axes[i]].out_len = -1;
        return QKV_OK;
    }
    st = use_sizes ? apply_sizes(s, io, values, axes, n, job)
                   : apply_scales(s, io, values, axes, n, job);
    if (st != QKV_OK)
        return st;
    bool all = true;
    for (int32_t d = 0; d < x->rank; d++)
        all = all && job->axis[d].in_len >= 0 && job->axis[d].out_len >= 0;
    *known = all;
    return QKV_OK;
}

/* ---- callbacks ---------------------------------------------------------------------- */

static qkv_status resize_infer(void *state, qkv_kernel_io *io)
{
    const qkv_tensor *x = &io->inputs[0];
    qkv_tensor *y = &io->outputs[0];
    qkv_resize_job job;
    bool known;
    y->dtype = x->dtype;
    y->rank = x->rank;
    qkv_status st = make_job(state, io, false, &job, &known);
    if (st != QKV_OK)
        return st;
    for (int32_t d = 0; d < x->rank; d++)
        y->dims[d] = job.axis[d].out_len;
    return QKV_OK;
}

static qkv_status resize_prepare(void *state, qkv_kernel_io *io)
{
    qkv_resize_job job;
    bool known;
    qkv_status st = make_job(state, io, false, &job, &known);
    if (st != QKV_OK)
        return st;
    if (!known)
        return KERR(io, QKV_ERR_INTERNAL, "the output shape is not known at prepare");
    return qkv_resize_scratch(io, &job, &io->scratch_bytes);
}

static qkv_status resize_compute(const void *state, qkv_kernel_io *io)
{
    qkv_resize_job job;
    bool known;
    qkv_status st = make_job(state, io, true, &job, &known);
    if (st != QKV_OK)
        return st;
    const qkv_tensor *y = &io->outputs[0];
    bool same = known && y->rank == job.rank;
    for (int32_t d = 0; same && d < job.rank; d++)
        same = y->dims[d] == job.axis[d].out_len;
    if (!same)
        return KERR(io, QKV_ERR_INTERNAL, "the output shape differs from the one planned");
    return qkv_resize_run(io, &job, io->inputs[0].data, io->outputs[0].data);
}

#define DATA_TYPES (QKV_TYPES_NUMERIC | QKV_T(BOOL) | QKV_T(FLOAT16) | QKV_T(BFLOAT16))
#define ROI_TYPES (QKV_T(FLOAT) | QKV_T(DOUBLE) | QKV_T(FLOAT16))

#define RESIZE_KERNEL(OP, SINCE, UNTIL, MIN_IN, MAX_IN, ...)                                       \
    {                                                                                              \
        QKV_KERNEL_V1,                                                                             \
            .domain = "", .op_type = (OP), .since_version = (SINCE), .until_version = (UNTIL),     \
            .min_inputs = (MIN_IN), .max_inputs = (MAX_IN), .min_outputs = 1, .max_outputs = 1,    \
            .n_input_types = sizeof((uint64_t[]){__VA_ARGS__}) / sizeof(uint64_t),                 \
            .input_types = {__VA_ARGS__}, .init = resize_init, .infer = resize_infer,              \
            .prepare = resize_prepare, .compute = resize_compute, .destroy = resize_destroy,       \
    }

static const qkv_kernel kernels[] = {
    RESIZE_KERNEL("Upsample", 7, 8, 1, 1, DATA_TYPES),
    RESIZE_KERNEL("Upsample", 9, 9, 2, 2, DATA_TYPES, QKV_T(FLOAT)),
    RESIZE_KERNEL("Resize", 10, 10, 2, 2, DATA_TYPES, QKV_T(FLOAT)),
    RESIZE_KERNEL("Resize", 11, 17, 1, 4, DATA_TYPES, ROI_TYPES, QKV_T(FLOAT), QKV_T(INT64)),
    RESIZE_KERNEL("Resize", 18, 0, 1, 4, DATA_TYPES, ROI_TYPES, QKV_T(FLOAT), QKV_T(INT64)),
};

/* The resize family: Resize, Upsample. */
const qkv_kernel *qkv_ops_resize(size_t *count)
{
    *count = sizeof kernels / sizeof kernels[0];
    return kernels;
}
