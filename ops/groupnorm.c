/*
 * groupnorm.c - GroupNormalization (opsets 18, 21).
 *
 * X is (N, C, D1, ..., Dk), rank >= 2, and its C channels form G =
 * num_groups (required) groups of C/G consecutive channels. Each (n, g)
 * group, C/G * D1*...*Dk contiguous elements, is normalised with its own
 * (biased) mean and variance, then scaled and shifted:
 *   Y = (X - mean) / sqrt(var + epsilon) * scale + bias
 * Opset 18 has one scale and bias per group, shape (G); opset 21 one per
 * channel, shape (C) (the opset 18 form was deprecated for this). Opset 21's
 * stash_type (1 float, the default, or 11 double) names the precision of the
 * statistics: both run the same way here (below), at least as precise as a
 * float stash. C not divisible by G is QKV_ERR_SHAPE.
 *
 * Numerics: statistics in two passes (mean, then squared deviations),
 * which avoids the cancellation of E[x^2] - E[x]^2. Float groups run
 * vecmath's SIMD row steps, as LayerNormalization does: sums in float over
 * blocks of 256 elements, added in double; mean, 1/stddev and each
 * channel's scale in double, the normalisation of each element in float.
 * Double groups stay in double throughout (each element rounded once).
 * Types: float, double, float16 and bfloat16 (the last two through float32
 * copies of X and Y in scratch); scale and bias have X's type. Groups are
 * split across threads.
 */
#include <math.h>
#include <stdlib.h>

#include "half.h"
#include "kernel_util.h"
#include "vecmath.h"

#define PAR_MIN_ELEMS ((size_t)1 << 15)

typedef struct gn_attrs {
    int64_t groups;
    double epsilon;
    bool per_channel; /* opset 21: scale/bias of shape (C) */
} gn_attrs;

typedef struct gn_run {
    const void *x; /* (N, G, cg, s) */
    void *y;
    const qkv_tensor *scale, *bias; /* (G) or (C) */
    size_t g, cg, s;                /* groups, channels per group, plane size */
    bool per_channel;
    double eps;
} gn_run;

/* Element i of a float-typed parameter. */
static double param_at(const qkv_tensor *t, size_t i)
{
    switch (t->dtype) {
    case QKV_DTYPE_DOUBLE:
        return ((const double *)t->data)[i];
    case QKV_DTYPE_FLOAT16:
        return qkv_f16_to_f32(((const uint16_t *)t->data)[i]);
    case QKV_DTYPE_BFLOAT16:
        return qkv_bf16_to_f32(((const uint16_t *)t->data)[i]);
    default:
        return ((const float *)t->data)[i];
    }
}

/* The scale and shift of channel c of group g: inv * scale[k], bias[k]. */
static void gn_channel_coefs(const gn_run *r, size_t g, size_t c, double inv, double *a, double *b)
{
    size_t k = r->per_channel ? g * r->cg + c : g;
    *a = inv * param_at(r->scale, k);
    *b = param_at(r->bias, k);
}

static void gn_range_f64(void *arg, size_t begin, size_t end)
{
    const gn_run *r = arg;
    const size_t s = r->s, len = r->cg * s;
    for (size_t p = begin; p < end; p++) {
        const double *x = (const double *)r->x + p * len;
        double *y = (double *)r->y + p * len;
        double sum = 0, ss = 0;
        for (size_t i = 0; i < len; i++)
            sum += x[i];
        const double mean = sum / (double)len;
        for (size_t i = 0; i < len; i++) {
            double t = x[i] - mean;
            ss += t * t;
        }
        const double inv = 1.0 / sqrt(ss / (double)len + r->eps);
        for (size_t c = 0; c < r->cg; c++) {
            double a, b;
            gn_channel_coefs(r, p % r->g, c, inv, &a, &b);
            const double *xc = x + c * s;
            double *yc = y + c * s;
            for (size_t i = 0; i < s; i++)
                yc[i] = (xc[i] - mean) * a + b;
        }
    }
}

/* Float groups run vecmath's SIMD row steps (as LayerNormalization does). */
static void gn_range_f32(void *arg, size_t begin, size_t end)
{
    const gn_run *r = arg;
    const size_t s = r->s, len = r->cg * s;
    for (size_t p = begin; p < end; p++) {
        const float *x = (const float *)r->x + p * len;
        float *y = (float *)r->y + p * len;
        double mean, var;
        qkv_vm_moments_f32(x, len, &mean, &var);
        const double inv = 1.0 / sqrt(var + r->eps);
        for (size_t c = 0; c < r->cg; c++) {
            double a, b;
            gn_channel_coefs(r, p % r->g, c, inv, &a, &b);
            qkv_vm_normalize_scalar_f32(y + c * s, x + c * s, s, (float)mean, (float)a, (float)b);
        }
    }
}

/* ---- callbacks ----------------------------------------------------------- */

static qkv_status gn_init(const qkv_kernel *kernel, const qkv_host_api *host,
                          const qkv_node_ctx *node, void **state)
{
    (void)kernel;
    int64_t groups, stash = QKV_DTYPE_FLOAT;
    float eps;
    bool per_channel = host->node_opset(node) >= 21;
    qkv_status st = host->attr_int(node, "num_groups", 0, &groups);
    if (st == QKV_OK)
        st = host->attr_float(node, "epsilon", 1e-5f, &eps);
    if (st == QKV_OK && per_channel)
        st = host->attr_int(node, "stash_type", QKV_DTYPE_FLOAT, &stash);
    if (st != QKV_OK)
        return st;
    if (host->attr_type(node, "num_groups") == QKV_ATTR_UNDEFINED)
        return NERR(host, node, QKV_ERR_INVALID_MODEL, "attribute num_groups is missing");
    if (groups <= 0)
        return NERR(host, node, QKV_ERR_INVALID_MODEL, "attribute num_groups=%lld is not positive",
                    (long long)groups);
    if (stash != QKV_DTYPE_FLOAT && stash != QKV_DTYPE_DOUBLE)
        return NERR(host, node, QKV_ERR_UNSUPPORTED,
                    "attribute stash_type=%lld is not supported (1 float or 11 double)",
                    (long long)stash);
    gn_attrs *s = calloc(1, sizeof *s);
    if (!s)
        return NERR(host, node, QKV_ERR_OUT_OF_MEMORY, "kernel state");
    s->groups = groups;
    s->epsilon = eps;
    s->per_channel = per_channel;
    *state = s;
    return QKV_OK;
}

static void gn_destroy(void *state) { free(state); }

static qkv_status gn_infer(void *state, qkv_kernel_io *io)
{
    const gn_attrs *s = state;
    const qkv_tensor *x = &io->inputs[0];
    qkv_set_shape(&io->outputs[0], x->dtype, x->rank, x->dims);
    char a[96];
    if (x->rank >= 0 && x->rank < 2)
        return KERR(io, QKV_ERR_SHAPE, "input 0 'X' has rank %d, expected >= 2 (N, C, ...)",
                    x->rank);
    int64_t c = x->rank >= 2 ? x->dims[1] : -1;
    if (c >= 0 && c % s->groups != 0)
        return KERR(io, QKV_ERR_SHAPE,
                    "input 0 'X' has shape %s: %lld channels do not split into num_groups=%lld "
                    "groups",
                    qkv_dims_str(x, a, sizeof a), (long long)c, (long long)s->groups);
    static const char *const names[] = {"X", "scale", "bias"};
    int64_t want = s->per_channel ? c : s->groups;
    for (size_t k = 1; k < 3; k++) {
        const qkv_tensor *p = &io->inputs[k];
        if (p->dtype != x->dtype)
            return KERR(io, QKV_ERR_TYPE, "input %zu '%s' has type %s, input 0 'X' has %s", k,
                        names[k], io->host->dtype_name(p->dtype), io->host->dtype_name(x->dtype));
        if (p->rank < 0)
            continue;
        if (p->rank != 1 || (want >= 0 && p->dims[0] >= 0 && p->dims[0] != want))
            return KERR(io, QKV_ERR_SHAPE, "input %zu '%s' has shape %s, expected [%lld] (%s)", k,
                        names[k], qkv_dims_str(p, a, sizeof a), (long long)want,
                        s->per_channel ? "the channels of X" : "num_groups");
    }
    return QKV_OK;
}

/* float16/bfloat16: float32 copies of the inputs and Y in scratch. */
static qkv_status gn_prepare(void *state, qkv_kernel_io *io)
{
    (void)state;
    size_t bytes = 0;
    if (qkv_is_half(io->inputs[0].dtype) && !qkv_half_scratch_bytes(io, 0, &bytes))
        return KERR(io, QKV_ERR_UNSUPPORTED, "input 0 'X' too large for its float32 copy");
    io->scratch_bytes = bytes;
    return QKV_OK;
}

/* float or double */
static qkv_status gn_compute_float(const void *state, qkv_kernel_io *io)
{
    const gn_attrs *s = state;
    const qkv_tensor *x = &io->inputs[0];
    if (x->rank < 2)
        return KERR(io, QKV_ERR_SHAPE, "input 0 'X' has rank %d, expected >= 2", x->rank);
    size_t n = qkv_numel(x), g = (size_t)s->groups;
    gn_run r = {.x = x->data,
                .y = io->outputs[0].data,
                .scale = &io->inputs[1],
                .bias = &io->inputs[2],
                .g = g,
                .cg = (size_t)x->dims[1] / g,
                .s = 1,
                .per_channel = s->per_channel,
                .eps = s->epsilon};
    for (int32_t k = 2; k < x->rank; k++)
        r.s *= (size_t)x->dims[k];
    size_t units = (size_t)x->dims[0] * g;
    if (n == 0)
        return QKV_OK;
    qkv_range_fn fn;
    switch (x->dtype) {
    case QKV_DTYPE_FLOAT:
        fn = gn_range_f32;
        break;
    case QKV_DTYPE_DOUBLE:
        fn = gn_range_f64;
        break;
    default:
        return KERR(io, QKV_ERR_TYPE, "input 0 'X' has type %s, not supported",
                    io->host->dtype_name(x->dtype));
    }
    if (units > 1 && n >= PAR_MIN_ELEMS)
        io->host->parallel_for(io->host_ctx, units, fn, &r);
    else
        fn(&r, 0, units);
    return QKV_OK;
}

/* float16/bfloat16 through float32 copies (half.h). */
static qkv_status gn_compute(const void *state, qkv_kernel_io *io)
{
    if (qkv_is_half(io->inputs[0].dtype))
        return qkv_half_run_as_f32(state, io, 0, gn_compute_float);
    return gn_compute_float(state, io);
}

#define GN_KERNEL(SINCE, UNTIL)                                                                    \
    {                                                                                              \
        QKV_KERNEL_V1, .domain = "", .op_type = "GroupNormalization", .since_version = (SINCE),    \
                       .until_version = (UNTIL), .min_inputs = 3, .max_inputs = 3,                 \
                       .min_outputs = 1, .max_outputs = 1, .n_input_types = 1,                     \
                       .input_types = {QKV_TYPES_FLOATS | QKV_T(FLOAT16) | QKV_T(BFLOAT16)},       \
                       .init = gn_init, .infer = gn_infer, .prepare = gn_prepare,                  \
                       .compute = gn_compute, .destroy = gn_destroy,                               \
    }

static const qkv_kernel kernels[] = {
    GN_KERNEL(18, 20),
    GN_KERNEL(21, 0),
};

/* The GroupNormalization descriptors (opsets 18 and 21); *count set to 2. */
const qkv_kernel *qkv_ops_groupnorm(size_t *count)
{
    *count = sizeof kernels / sizeof kernels[0];
    return kernels;
}
