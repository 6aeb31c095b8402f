/*
 * batchnorm.c - BatchNormalization (opsets 7, 9, 14, 15; training mode from
 * opset 14) and InstanceNormalization (opset 6).
 *
 * X is (N, C, D1, ..., Dk), rank >= 2; each (n, c) plane of S = D1*...*Dk
 * elements is normalised with per-channel parameters of shape (C):
 *   BatchNormalization:    y = scale * (x - mean) / sqrt(var + epsilon) + B
 *                          with the running mean and var inputs;
 *   InstanceNormalization: y = scale * (x - m) / sqrt(v + epsilon) + B
 *                          with m, v the plane's own (biased) mean and variance.
 * BatchNormalization with training_mode=1 (opsets 14, 15) normalises with
 * the batch statistics instead: m, v the per-channel mean and biased
 * (population) variance over N and D1..Dk, as the spec's ReduceVar and its
 * reference do, and the optional outputs 1 and 2 are the running
 * statistics input_mean * momentum + m * (1 - momentum) and
 * input_var * momentum + v * (1 - momentum), each of its input's type.
 * The training outputs of opsets 7 and 9 (running and saved statistics,
 * present outputs 1-4 without a training_mode attribute) and opset 7's
 * spatial=0 are QKV_ERR_UNSUPPORTED. Opset 15 lets scale/B and mean/var
 * have their own float types: any mix of float and double is accepted in
 * every opset.
 *
 * Numerics: per-plane coefficients in double; InstanceNormalization's plane
 * statistics and training mode's channel statistics take two passes (mean,
 * then squared deviations), the latter kept in scratch. Float planes run
 * vecmath's SIMD row steps, as LayerNormalization does: sums in float over
 * blocks of 256 elements, added in double, a channel's planes merged in
 * double; each element normalised in float. Double planes stay in double
 * throughout (each element rounded once). Types: float and
 * double; InstanceNormalization also float16 and bfloat16 (through float32
 * copies of X and Y in scratch; scale and B of X's type). Planes are split
 * across threads.
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "half.h"
#include "kernel_util.h"
#include "qkv.h"
#include "reduce.h"
#include "vecmath.h"

#define PAR_MIN_ELEMS ((size_t)1 << 15)

typedef struct norm_attrs {
    double epsilon;
    double momentum; /* training: weight of the running statistics */
    bool instance;   /* InstanceNormalization */
    bool training;   /* BatchNormalization training_mode=1 */
} norm_attrs;

typedef struct norm_run {
    const void *x;
    void *y;
    const qkv_tensor *scale, *bias, *mean, *var; /* (C); mean/var NULL for instance */
    double *batch_mean, *batch_var;              /* (C) scratch; training mode, else NULL */
    size_t n, c, s;                              /* batch, channels, plane size */
    double eps;
} norm_run;

/* Element c of a float-typed parameter (types checked by the host). */
static double param_at(const qkv_tensor *t, size_t c)
{
    switch (t->dtype) {
    case QKV_DTYPE_DOUBLE:
        return ((const double *)t->data)[c];
    case QKV_DTYPE_FLOAT16:
        return qkv_f16_to_f32(((const uint16_t *)t->data)[c]);
    case QKV_DTYPE_BFLOAT16:
        return qkv_bf16_to_f32(((const uint16_t *)t->data)[c]);
    default:
        return ((const float *)t->data)[c];
    }
}

/* The mean and variance channel c is normalised with when they are given:
 * the batch statistics (training) or the running ones (inference). false
 * for InstanceNormalization, whose caller takes each plane's own. */
static bool given_stats(const norm_run *r, size_t c, double *mean, double *var)
{
    if (r->batch_mean) {
        *mean = r->batch_mean[c];
        *var = r->batch_var[c];
        return true;
    }
    if (r->mean) {
        *mean = param_at(r->mean, c);
        *var = param_at(r->var, c);
        return true;
    }
    return false;
}

static void norm_range_f64(void *arg, size_t begin, size_t end)
{
    const norm_run *r = arg;
    const size_t s = r->s;
    for (size_t p = begin; p < end; p++) {
        size_t c = p % r->c;
        const double *restrict x = (const double *)r->x + p * s;
        double *restrict y = (double *)r->y + p * s;
        double mean, var;
        if (!given_stats(r, c, &mean, &var)) {
            double sum = 0, ss = 0;
            for (size_t i = 0; i < s; i++)
                sum += x[i];
            mean = sum / (double)s;
            for (size_t i = 0; i < s; i++) {
                double t = x[i] - mean;
                ss += t * t;
            }
            var = ss / (double)s;
        }
        const double a = param_at(r->scale, c) / sqrt(var + r->eps);
        const double b = param_at(r->bias, c);
        QKV_FOR_W(s, y[j] = (x[j] - mean) * a + b);
    }
}

/* Float planes run vecmath's SIMD row steps (as LayerNormalization does). */
static void norm_range_f32(void *arg, size_t begin, size_t end)
{
    const norm_run *r = arg;
    const size_t s = r->s;
    for (size_t p = begin; p < end; p++) {
        size_t c = p % r->c;
        const float *x = (const float *)r->x + p * s;
        double mean, var;
        if (!given_stats(r, c, &mean, &var))
            qkv_vm_moments_f32(x, s, &mean, &var);
        const double a = param_at(r->scale, c) / sqrt(var + r->eps);
        const double b = param_at(r->bias, c);
        qkv_vm_normalize_scalar_f32((float *)r->y + p * s, x, s, (float)mean, (float)a, (float)b);
    }
}

/* Training mode: the mean and population variance of channels [begin, end)
 * over every (n, plane) into batch_mean/batch_var. */
static void batch_stats_range_f64(void *arg, size_t begin, size_t end)
{
    const norm_run *r = arg;
    const size_t s = r->s;
    const double count = (double)r->n * (double)s;
    for (size_t c = begin; c < end; c++) {
        double sum = 0, ss = 0;
        for (size_t n = 0; n < r->n; n++) {
            const double *x = (const double *)r->x + (n * r->c + c) * s;
            for (size_t i = 0; i < s; i++)
                sum += x[i];
        }
        const double mean = sum / count;
        for (size_t n = 0; n < r->n; n++) {
            const double *x = (const double *)r->x + (n * r->c + c) * s;
            for (size_t i = 0; i < s; i++) {
                double t = x[i] - mean;
                ss += t * t;
            }
        }
        r->batch_mean[c] = mean;
        r->batch_var[c] = ss / count;
    }
}

/* Float channels: each plane's moments from vecmath, merged across the
 * batch (qkv_vm_moments_add_f32). */
static void batch_stats_range_f32(void *arg, size_t begin, size_t end)
{
    const norm_run *r = arg;
    const size_t s = r->s;
    for (size_t c = begin; c < end; c++) {
        qkv_vm_moments m = {0};
        for (size_t n = 0; n < r->n; n++)
            qkv_vm_moments_add_f32(&m, (const float *)r->x + (n * r->c + c) * s, s);
        /* an empty batch: 0/0, NaN, as the double path and numpy give */
        r->batch_mean[c] = m.count ? m.mean : NAN;
        r->batch_var[c] = m.m2 / m.count;
    }
}

/* Element c of float/double output `t` = v, rounded once. */
static void param_store(qkv_tensor *t, size_t c, double v)
{
    if (t->dtype == QKV_DTYPE_DOUBLE)
        ((double *)t->data)[c] = v;
    else
        ((float *)t->data)[c] = (float)v;
}

/* Training mode: outputs 1 and 2 (when present) = the running statistics. */
static void write_running_stats(const norm_attrs *st, const norm_run *r, qkv_kernel_io *io)
{
    const double m = st->momentum;
    for (size_t k = 1; k < 3 && k < io->n_outputs; k++) {
        qkv_tensor *out = &io->outputs[k];
        if (!out->data) /* omitted */
            continue;
        const qkv_tensor *in = k == 1 ? r->mean : r->var;
        const double *batch = k == 1 ? r->batch_mean : r->batch_var;
        for (size_t c = 0; c < r->c; c++)
            param_store(out, c, param_at(in, c) * m + batch[c] * (1 - m));
    }
}

/* ---- callbacks ----------------------------------------------------------- */

static qkv_status norm_init(const qkv_kernel *kernel, const qkv_host_api *host,
                            const qkv_node_ctx *node, void **state)
{
    bool instance = strcmp(kernel->op_type, "InstanceNormalization") == 0;
    float eps;
    qkv_status st = host->attr_float(node, "epsilon", 1e-5f, &eps);
    if (st != QKV_OK)
        return st;
    float momentum = 0.9f;
    int64_t training = 0;
    if (!instance) {
        int64_t opset = kernel->since_version, spatial = 1;
        if (opset >= 14)
            st = host->attr_int(node, "training_mode", 0, &training);
        if (st == QKV_OK && opset >= 14)
            st = host->attr_float(node, "momentum", 0.9f, &momentum);
        if (st == QKV_OK && opset < 9)
            st = host->attr_int(node, "spatial", 1, &spatial);
        if (st != QKV_OK)
            return st;
        if (training != 0 && training != 1)
            return NERR(host, node, QKV_ERR_INVALID_MODEL,
                        "attribute 'training_mode' is %lld, expected 0 or 1", (long long)training);
        if (!spatial)
            return NERR(host, node, QKV_ERR_UNSUPPORTED,
                        "spatial=0 (per-element statistics) is not supported");
        for (size_t k = 1; k < host->node_output_count(node); k++) {
            if (!host->node_output_present(node, k))
                continue;
            if (opset < 14)
                return NERR(host, node, QKV_ERR_UNSUPPORTED,
                            "output %zu (running statistics) is only produced in training "
                            "mode, which is supported from opset 14 only",
                            k);
            if (!training)
                return NERR(host, node, QKV_ERR_INVALID_MODEL,
                            "output %zu (running statistics) is only produced with "
                            "training_mode=1",
                            k);
            if (k > 2)
                return NERR(host, node, QKV_ERR_INVALID_MODEL,
                            "has output %zu, expected at most 3 (Y, running_mean, running_var)", k);
        }
    }
    norm_attrs *s = calloc(1, sizeof *s);
    if (!s)
        return NERR(host, node, QKV_ERR_OUT_OF_MEMORY, "kernel state");
    s->epsilon = eps;
    s->momentum = momentum;
    s->instance = instance;
    s->training = training == 1;
    *state = s;
    return QKV_OK;
}

static void norm_destroy(void *state) { free(state); }

static const char *const param_names[] = {"X", "scale", "B", "input_mean", "input_var"};

static qkv_status norm_infer(void *state, qkv_kernel_io *io)
{
    (void)state;
    const qkv_tensor *x = &io->inputs[0];
    qkv_set_shape(&io->outputs[0], x->dtype, x->rank, x->dims);
    /* training mode's running statistics: (C) of input_mean's/input_var's type */
    for (size_t k = 1; k < io->n_outputs && k < 3 && io->n_inputs == 5; k++) {
        const qkv_tensor *p = &io->inputs[k + 2];
        int64_t c = x->rank >= 2 ? x->dims[1] : p->rank == 1 ? p->dims[0] : -1;
        qkv_set_shape(&io->outputs[k], p->dtype, 1, &c);
    }
    if (x->rank >= 0 && x->rank < 2)
        return KERR(io, QKV_ERR_SHAPE, "input 0 'X' has rank %d, expected >= 2 (N, C, ...)",
                    x->rank);
    int64_t c = x->rank >= 2 ? x->dims[1] : -1;
    for (size_t k = 1; k < io->n_inputs; k++) {
        const qkv_tensor *p = &io->inputs[k];
        if (p->rank < 0)
            continue;
        if (p->rank != 1 || (c >= 0 && p->dims[0] >= 0 && p->dims[0] != c)) {
            char a[96];
            return KERR(io, QKV_ERR_SHAPE,
                        "input %zu '%s' has shape %s, expected [%lld] (the channels of "
                        "input 0 'X')",
                        k, param_names[k], qkv_dims_str(p, a, sizeof a), (long long)c);
        }
    }
    return QKV_OK;
}

/* float16/bfloat16 (InstanceNormalization): float32 copies of X and Y;
 * training mode: the batch mean and variance, (C) doubles each. */
static qkv_status norm_prepare(void *state, qkv_kernel_io *io)
{
    const norm_attrs *st = state;
    const qkv_tensor *x = &io->inputs[0];
    io->scratch_bytes = qkv_is_half(x->dtype) ? 2 * qkv_numel(x) * sizeof(float) : 0;
    if (st->training && x->rank >= 2)
        io->scratch_bytes = 2 * (size_t)x->dims[1] * sizeof(double);
    return QKV_OK;
}

static qkv_status norm_compute(const void *state, qkv_kernel_io *io)
{
    const norm_attrs *st = state;
    const qkv_tensor *x = &io->inputs[0];
    if (x->rank < 2)
        return KERR(io, QKV_ERR_SHAPE, "input 0 'X' has rank %d, expected >= 2", x->rank);
    norm_run r = {.x = x->data,
                  .y = io->outputs[0].data,
                  .scale = &io->inputs[1],
                  .bias = &io->inputs[2],
                  .eps = st->epsilon};
    if (!st->instance) {
        r.mean = &io->inputs[3];
        r.var = &io->inputs[4];
    }
    size_t planes = (size_t)x->dims[0] * (size_t)x->dims[1];
    r.n = (size_t)x->dims[0];
    r.c = (size_t)x->dims[1];
    r.s = 1;
    for (int32_t k = 2; k < x->rank; k++)
        r.s *= (size_t)x->dims[k];
    qkv_range_fn fn, stats_fn = batch_stats_range_f32;
    switch (x->dtype) {
    case QKV_DTYPE_FLOAT:
        fn = norm_range_f32;
        break;
    case QKV_DTYPE_DOUBLE:
        fn = norm_range_f64;
        stats_fn = batch_stats_range_f64;
        break;
    case QKV_DTYPE_FLOAT16:
    case QKV_DTYPE_BFLOAT16:
        fn = norm_range_f32;
        r.x = io->scratch;
        r.y = (float *)io->scratch + planes * r.s;
        break;
    default:
        return KERR(io, QKV_ERR_TYPE, "input 0 'X' has type %s, not supported",
                    qkv_dtype_name(x->dtype));
    }
    if (st->training) {
        /* an empty batch gives NaN statistics (0/0), as numpy's mean does */
        r.batch_mean = io->scratch;
        r.batch_var = r.batch_mean + r.c;
        qkv_run_range(io, r.c, planes * r.s * qkv_elem_bytes(x->dtype), stats_fn, &r);
        write_running_stats(st, &r, io);
    }
    if (planes == 0 || r.s == 0)
        return QKV_OK;
    if (qkv_is_half(x->dtype))
        qkv_half_to_f32_par(io, io->scratch, x->data, x->dtype, planes * r.s);
    if (planes > 1 && planes * r.s >= PAR_MIN_ELEMS)
        io->host->parallel_for(io->host_ctx, planes, fn, &r);
    else
        fn(&r, 0, planes);
    if (qkv_is_half(x->dtype))
        qkv_f32_to_half_par(io, io->outputs[0].data, r.y, x->dtype, planes * r.s);
    return QKV_OK;
}

#define BN_KERNEL(SINCE, UNTIL)                                                                    \
    {                                                                                              \
        QKV_KERNEL_V1, .domain = "", .op_type = "BatchNormalization", .since_version = (SINCE),    \
                       .until_version = (UNTIL), .min_inputs = 5, .max_inputs = 5,                 \
                       .min_outputs = 1, .max_outputs = 5, .n_input_types = 1,                     \
                       .input_types = {QKV_TYPES_FLOATS}, .init = norm_init, .infer = norm_infer,  \
                       .prepare = norm_prepare, .compute = norm_compute, .destroy = norm_destroy,  \
    }

static const qkv_kernel kernels[] = {
    BN_KERNEL(7, 8),
    BN_KERNEL(9, 13),
    BN_KERNEL(14, 14),
    BN_KERNEL(15, 0),
    {
        QKV_KERNEL_V1,
        .domain = "",
        .op_type = "InstanceNormalization",
        .since_version = 6,
        .min_inputs = 3,
        .max_inputs = 3,
        .min_outputs = 1,
        .max_outputs = 1,
        .n_input_types = 1,
        .input_types = {QKV_TYPES_FLOATS | QKV_T(FLOAT16) | QKV_T(BFLOAT16)},
        .init = norm_init,
        .infer = norm_infer,
        .prepare = norm_prepare,
        .compute = norm_compute,
        .destroy = norm_destroy,
    },
};

/* The BatchNormalization and InstanceNormalization descriptors; *count set
 * to their number. */
const qkv_kernel *qkv_ops_batchnorm(size_t *count)
{
    *count = sizeof kernels / sizeof kernels[0];
    return kernels;
}
