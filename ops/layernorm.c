/*
 * layernorm.c - LayerNormalization (opset 17).
 *
 * X is viewed as (rows, D): rows the product of dims before `axis` (default
 * -1), D that of dims from `axis` on. Each row is normalised:
 *   Y = (X - mean) / sqrt(var + epsilon) * Scale + B
 * with the (biased) mean and variance of the row. Scale and the optional B
 * must broadcast (unidirectionally) to the normalized shape dims[axis:].
 * Optional outputs Mean and InvStdDev have X's shape with dims from `axis`
 * set to 1 and the type named by stash_type (1 float, 11 double; others are
 * QKV_ERR_UNSUPPORTED).
 *
 * Numerics: two passes over the row (sum for the mean, then the sum of
 * squared deviations), which avoids the cancellation of the E[x^2] - E[x]^2
 * form. Float rows run vecmath's SIMD row steps: sums in float over blocks
 * of 256 elements, added in double; mean and 1/stddev in double, the
 * normalisation of each element in float (one rounding per operation,
 * as the result's own type allows). Double rows stay in double throughout.
 * stash_type only chooses the type of Mean/InvStdDev. Types: float and
 * double X (Scale and B of X's type); float16/bfloat16 are not supported.
 *
 * Rows are split across threads. A Scale or B that broadcasts (repeats
 * values, e.g. [D] over a normalized shape [N, D] when axis = -2) is
 * expanded once per compute into scratch; the usual full-shape Scale/B is
 * read in place.
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "kernel_util.h"
#include "qkv.h"
#include "reduce.h"
#include "vecmath.h"

typedef struct ln_attrs {
    int64_t axis;
    double epsilon;
    qkv_dtype stash; /* type of Mean and InvStdDev */
} ln_attrs;

typedef struct ln_run {
    const void *x, *w, *b; /* w: (D), b: (D) or NULL */
    void *y;
    void *mean, *inv; /* (rows) of stash type, or NULL */
    bool stash_f64;
    size_t d;
    double eps;
} ln_run;

static void store_stat(void *dst, bool f64, size_t i, double v)
{
    if (f64)
        ((double *)dst)[i] = v;
    else
        ((float *)dst)[i] = (float)v;
}

static void ln_range_f64(void *arg, size_t begin, size_t end)
{
    const ln_run *r = arg;
    const size_t d = r->d;
    const double *restrict w = r->w, *restrict bias = r->b;
    for (size_t row = begin; row < end; row++) {
        const double *restrict x = (const double *)r->x + row * d;
        double *restrict y = (double *)r->y + row * d;
        double sum = 0;
        for (size_t i = 0; i < d; i++)
            sum += x[i];
        const double mean = sum / (double)d;
        double ss = 0;
        for (size_t i = 0; i < d; i++) {
            double t = x[i] - mean;
            ss += t * t;
        }
        const double inv = 1.0 / sqrt(ss / (double)d + r->eps);
        if (bias)
            QKV_FOR_W(d, y[j] = ((x[j] - mean) * inv) * w[j] + bias[j]);
        else
            QKV_FOR_W(d, y[j] = ((x[j] - mean) * inv) * w[j]);
        if (r->mean)
            store_stat(r->mean, r->stash_f64, row, mean);
        if (r->inv)
            store_stat(r->inv, r->stash_f64, row, inv);
    }
}

static void ln_range_f32(void *arg, size_t begin, size_t end)
{
    const ln_run *r = arg;
    const size_t d = r->d;
    for (size_t row = begin; row < end; row++) {
        const float *x = (const float *)r->x + row * d;
        double mean, var;
        qkv_vm_moments_f32(x, d, &mean, &var);
        const double inv = 1.0 / sqrt(var + r->eps);
        qkv_vm_normalize_f32((float *)r->y + row * d, x, d, (float)mean, (float)inv, r->w, r->b);
        if (r->mean)
            store_stat(r->mean, r->stash_f64, row, mean);
        if (r->inv)
            store_stat(r->inv, r->stash_f64, row, inv);
    }
}

/* ---- callbacks ----------------------------------------------------------- */

static qkv_status ln_init(const qkv_kernel *kernel, const qkv_host_api *host,
                          const qkv_node_ctx *node, void **state)
{
    (void)kernel;
    int64_t axis, stash;
    float eps;
    qkv_status st = host->attr_int(node, "axis", -1, &axis);
    if (st == QKV_OK)
        st = host->attr_float(node, "epsilon", 1e-5f, &eps);
    if (st == QKV_OK)
        st = host->attr_int(node, "stash_type", QKV_DTYPE_FLOAT, &stash);
    if (st != QKV_OK)
        return st;
    if (stash != QKV_DTYPE_FLOAT && stash != QKV_DTYPE_DOUBLE)
        return NERR(host, node, QKV_ERR_UNSUPPORTED,
                    "attribute stash_type=%lld is not supported (1 float or 11 double)",
                    (long long)stash);
    ln_attrs *s = calloc(1, sizeof *s);
    if (!s)
        return NERR(host, node, QKV_ERR_OUT_OF_MEMORY, "kernel state");
    s->axis = axis;
    s->epsilon = eps;
    s->stash = (qkv_dtype)stash;
    *state = s;
    return QKV_OK;
}

static void ln_destroy(void *state) { free(state); }

/* true when param (Scale or B) holds exactly D values in normalized order,
 * i.e. needs no expansion. Its shape is already checked to broadcast. */
static bool param_dense(const qkv_tensor *p, size_t d) { return qkv_numel(p) == d; }

/* Checks that input k broadcasts to x's dims from `axis` on. */
static qkv_status check_param(qkv_kernel_io *io, size_t k, const char *name, int32_t axis)
{
    const qkv_tensor *x = &io->inputs[0], *p = &io->inputs[k];
    if (p->dtype != x->dtype)
        return KERR(io, QKV_ERR_TYPE, "input %zu '%s' has type %s, input 0 'X' has %s", k, name,
                    qkv_dtype_name(p->dtype), qkv_dtype_name(x->dtype));
    if (p->rank < 0)
        return QKV_OK;
    char a[96], b[96];
    for (int32_t i = 0; i < p->rank; i++) {
        int32_t xi = x->rank - p->rank + i; /* the dim of x it lines up with */
        int64_t pd = p->dims[i], xd = xi >= axis ? x->dims[xi] : 1;
        if (xi < axis ? pd > 1 : (pd >= 0 && xd >= 0 && pd != xd && pd != 1))
            return KERR(io, QKV_ERR_SHAPE,
                        "input %zu '%s' has shape %s, which does not broadcast to the "
                        "normalized dims of input 0 'X' %s from axis %d",
                        k, name, qkv_dims_str(p, a, sizeof a), qkv_dims_str(x, b, sizeof b), axis);
    }
    return QKV_OK;
}

static qkv_status ln_infer(void *state, qkv_kernel_io *io)
{
    const ln_attrs *s = state;
    const qkv_tensor *x = &io->inputs[0];
    qkv_set_shape(&io->outputs[0], x->dtype, x->rank, x->dims);
    for (size_t k = 1; k < io->n_outputs && k < 3; k++) {
        io->outputs[k].dtype = s->stash;
        io->outputs[k].rank = -1;
    }
    if (x->rank < 0)
        return QKV_OK;
    int32_t axis;
    if (!qkv_axis_normalize(s->axis, x->rank, false, &axis))
        return KERR(io, QKV_ERR_SHAPE,
                    "attribute axis=%lld is out of range for input 0 'X' of rank %d "
                    "(expected %d to %d)",
                    (long long)s->axis, x->rank, -x->rank, x->rank - 1);
    qkv_status st = check_param(io, 1, "Scale", axis);
    if (st == QKV_OK && qkv_present(io, 2))
        st = check_param(io, 2, "B", axis);
    if (st != QKV_OK)
        return st;
    for (size_t k = 1; k < io->n_outputs && k < 3; k++) {
        qkv_tensor *o = &io->outputs[k];
        o->rank = x->rank;
        for (int32_t i = 0; i < x->rank; i++)
            o->dims[i] = i < axis ? x->dims[i] : 1;
    }
    return QKV_OK;
}

/* Copies param p broadcast to the normalized shape nd[0..nr) into dst (D
 * elements of es bytes). p's extra leading dims (all 1) are dropped. */
static void expand_param(void *dst, const qkv_tensor *p, const int64_t *nd, int32_t nr, size_t es)
{
    qkv_tensor full, pv = *p;
    memset(&full, 0, sizeof full);
    full.rank = nr;
    memcpy(full.dims, nd, (size_t)nr * sizeof *nd);
    if (pv.rank > nr) {
        memmove(pv.dims, pv.dims + (pv.rank - nr), (size_t)nr * sizeof *pv.dims);
        pv.rank = nr;
    }
    size_t st[QKV_MAX_RANK];
    qkv_broadcast_strides(&pv, &full, st);
    size_t d = qkv_numel(&full);
    for (size_t i = 0; i < d; i++) {
        size_t rem = i, off = 0;
        for (int32_t k = nr - 1; k >= 0; k--) {
            off += (rem % (size_t)nd[k]) * st[k];
            rem /= (size_t)nd[k];
        }
        memcpy((char *)dst + i * es, (const char *)p->data + off * es, es);
    }
}

static qkv_status ln_prepare(void *state, qkv_kernel_io *io)
{
    const ln_attrs *s = state;
    const qkv_tensor *x = &io->inputs[0];
    int32_t axis;
    if (!qkv_axis_normalize(s->axis, x->rank, false, &axis))
        return KERR(io, QKV_ERR_SHAPE, "attribute axis=%lld is out of range for rank %d",
                    (long long)s->axis, x->rank);
    size_t d = 1, es = qkv_dtype_bits(x->dtype) / 8;
    for (int32_t k = axis; k < x->rank; k++)
        d *= (size_t)x->dims[k];
    io->scratch_bytes = 0;
    if (!param_dense(&io->inputs[1], d))
        io->scratch_bytes += d * es;
    if (qkv_present(io, 2) && !param_dense(&io->inputs[2], d))
        io->scratch_bytes += d * es;
    return QKV_OK;
}

static qkv_status ln_compute(const void *state, qkv_kernel_io *io)
{
    const ln_attrs *s = state;
    const qkv_tensor *x = &io->inputs[0];
    int32_t axis;
    if (!qkv_axis_normalize(s->axis, x->rank, false, &axis))
        return KERR(io, QKV_ERR_SHAPE, "attribute axis=%lld is out of range for rank %d",
                    (long long)s->axis, x->rank);
    size_t rows = 1, d = 1, es = qkv_dtype_bits(x->dtype) / 8;
    for (int32_t k = 0; k < x->rank; k++)
        *(k < axis ? &rows : &d) *= (size_t)x->dims[k];
    ln_run r = {.x = x->data,
                .y = io->outputs[0].data,
                .d = d,
                .eps = s->epsilon,
                .stash_f64 = s->stash == QKV_DTYPE_DOUBLE};
    if (io->n_outputs > 1)
        r.mean = io->outputs[1].data;
    if (io->n_outputs > 2)
        r.inv = io->outputs[2].data;
    /* Scale and B as D dense values: as given, or expanded into scratch */
    char *scratch = io->scratch;
    const int64_t *nd = x->dims + axis;
    int32_t nr = x->rank - axis;
    r.w = io->inputs[1].data;
    if (!param_dense(&io->inputs[1], d)) {
        expand_param(scratch, &io->inputs[1], nd, nr, es);
        r.w = scratch;
        scratch += d * es;
    }
    if (qkv_present(io, 2)) {
        r.b = io->inputs[2].data;
        if (!param_dense(&io->inputs[2], d)) {
            expand_param(scratch, &io->inputs[2], nd, nr, es);
            r.b = scratch;
        }
    }
    qkv_range_fn fn;
    switch (x->dtype) {
    case QKV_DTYPE_FLOAT:
        fn = ln_range_f32;
        break;
    case QKV_DTYPE_DOUBLE:
        fn = ln_range_f64;
        break;
    default:
        return KERR(io, QKV_ERR_TYPE, "input 0 'X' has type %s, not supported",
                    qkv_dtype_name(x->dtype));
    }
    if (rows == 0)
        return QKV_OK;
    /* chunks of at least QKV_PARALLEL_MIN_CHUNK_BYTES of output: the
     * encoder's (128, 768) rows ran slower on 2 threads than on 1 */
    qkv_run_range(io, rows, rows * d * qkv_elem_bytes(x->dtype), fn, &r);
    return QKV_OK;
}

static const qkv_kernel kernels[] = {
    {
        QKV_KERNEL_V1,
        .domain = "",
        .op_type = "LayerNormalization",
        .since_version = 17,
        .min_inputs = 2,
        .max_inputs = 3,
        .min_outputs = 1,
        .max_outputs = 3,
        .n_input_types = 1,
        .input_types = {QKV_TYPES_FLOATS},
        .init = ln_init,
        .infer = ln_infer,
        .prepare = ln_prepare,
        .compute = ln_compute,
        .destroy = ln_destroy,
    },
};

/* The LayerNormalization descriptor; *count set to 1. */
const qkv_kernel *qkv_ops_layernorm(size_t *count)
{
    *count = sizeof kernels / sizeof kernels[0];
    return kernels;
}
