/*
 * rmsnorm.c - RMSNormalization (opset 23).
 *
 * X is viewed as (rows, D): rows the product of the dims before `axis`
 * (default -1), D that of the dims from `axis` on. Each row is normalised:
 *   Y = round_T(X / sqrt(mean(X^2) + epsilon)) * scale
 * where round_T rounds to X's type T (the function body casts Normalized back
 * to T before the Mul), and Y has scale's type V (T and V may differ, as the
 * spec's type constraints allow). scale must broadcast (unidirectionally) to
 * the normalized shape dims[axis:]; like LayerNormalization, dims of scale
 * that line up with dims before `axis` must be 1 (deviation: the function
 * body's Mul would broadcast those too, making Y larger than X, which the
 * spec's "Y has X's shape" excludes).
 *
 * Numerics: the mean square of a float32 row comes from vecmath's row
 * moments (float lanes over blocks of 256, double across them) as
 * var + mean^2, of other types from a sum in double; the row's 1/RMS is
 * computed in double, whatever stash_type says (1 float and 11 double
 * are accepted; double is at least as precise as a float stash; others are
 * QKV_ERR_UNSUPPORTED). Types: float, double, float16 and bfloat16 for X and
 * scale. float/float and half/half (same type) have dedicated loops in
 * float32; the other combinations go through double chunk by chunk.
 *
 * Rows are split across threads. A scale that broadcasts (e.g. [D] over a
 * normalized shape [N, D] with axis = -2) is expanded once per compute into
 * scratch; a full-shape scale is read in place.
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "elementwise.h"
#include "kernel_util.h"
#include "qkv.h"
#include "reduce.h"
#include "vecmath.h"

#define PAR_MIN_ELEMS ((size_t)1 << 14)
/* elements per stack chunk of the half and generic paths */
#define CHUNK 256

typedef struct rms_attrs {
    int64_t axis;
    double epsilon;
} rms_attrs;

typedef struct rms_run {
    const void *x, *w; /* x: (rows, d) of type tx; w: (d) of type tw */
    void *y;           /* (rows, d) of type tw */
    qkv_dtype tx, tw;
    size_t d;
    double eps;
} rms_run;

/* float X and scale: the common case, in one vectorisable loop per pass. */
static void rms_range_f32(void *arg, size_t begin, size_t end)
{
    const rms_run *r = arg;
    const size_t d = r->d;
    const float *restrict w = r->w;
    for (size_t row = begin; row < end; row++) {
        const float *restrict x = (const float *)r->x + row * d;
        float *restrict y = (float *)r->y + row * d;
        /* mean(x^2) = var + mean^2: two non-negative terms, no cancellation;
         * vecmath's SIMD row steps where a running double sum would not
         * vectorise */
        double mean, var;
        qkv_vm_moments_f32(x, d, &mean, &var);
        /* float multiplies vectorise; x * (1/rms) differs from the body's
         * x / rms by at most an ulp */
        const float inv = (float)(1.0 / sqrt(var + mean * mean + r->eps));
        QKV_FOR_W(d, y[j] = (x[j] * inv) * w[j]);
    }
}

/*
 * X and scale both float16 or both bfloat16 (the usual half-precision
 * model): float32 chunks through the bulk conversions. Normalized is computed
 * in float (as the function body does with stash_type 1), rounded to the half
 * type and back (the body's Cast), multiplied by the scale in float (exact:
 * a product of two halves fits a float) and rounded once more.
 */
static void rms_range_half(void *arg, size_t begin, size_t end)
{
    const rms_run *r = arg;
    const size_t d = r->d;
    const qkv_dtype t = r->tx;
    float xs[CHUNK], ws[CHUNK];
    uint16_t hs[CHUNK];
    for (size_t row = begin; row < end; row++) {
        const uint16_t *x = (const uint16_t *)r->x + row * d;
        uint16_t *y = (uint16_t *)r->y + row * d;
        double ss = 0;
        for (size_t i0 = 0; i0 < d; i0 += CHUNK) {
            size_t m = d - i0 < CHUNK ? d - i0 : CHUNK;
            qkv_half_to_f32(xs, x + i0, t, m);
            for (size_t i = 0; i < m; i++)
                ss += (double)xs[i] * xs[i];
        }
        const float inv = (float)(1.0 / sqrt(ss / (double)d + r->eps));
        for (size_t i0 = 0; i0 < d; i0 += CHUNK) {
            size_t m = d - i0 < CHUNK ? d - i0 : CHUNK;
            qkv_half_to_f32(xs, x + i0, t, m);
            for (size_t i = 0; i < m; i++)
                xs[i] *= inv;
            qkv_f32_to_half(hs, xs, t, m); /* NormalizedT */
            qkv_half_to_f32(xs, hs, t, m);
            qkv_half_to_f32(ws, (const uint16_t *)r->w + i0, t, m);
            for (size_t i = 0; i < m; i++)
                xs[i] *= ws[i];
            qkv_f32_to_half(y + i0, xs, t, m);
        }
    }
}

/* x rounded to type t (a float type) and back to double. */
static double round_to(double v, qkv_dtype t)
{
    switch (t) {
    case QKV_DTYPE_FLOAT:
        return (float)v;
    case QKV_DTYPE_FLOAT16:
        return qkv_f16_to_f32(qkv_f64_to_f16(v));
    case QKV_DTYPE_BFLOAT16:
        return qkv_bf16_to_f32(qkv_f64_to_bf16(v));
    default:
        return v; /* DOUBLE */
    }
}

/* Any float types, through double chunks (loads and stores cannot fail: the
 * types were checked in infer). */
static void rms_range_any(void *arg, size_t begin, size_t end)
{
    const rms_run *r = arg;
    const size_t d = r->d, bx = qkv_ew_elem_bytes(r->tx), bw = qkv_ew_elem_bytes(r->tw);
    double xs[CHUNK], ws[CHUNK];
    for (size_t row = begin; row < end; row++) {
        const char *x = (const char *)r->x + row * d * bx;
        char *y = (char *)r->y + row * d * bw;
        double ss = 0;
        for (size_t i0 = 0; i0 < d; i0 += CHUNK) {
            size_t m = d - i0 < CHUNK ? d - i0 : CHUNK;
            qkv_ew_load_f64(xs, x + i0 * bx, r->tx, 1, m);
            for (size_t i = 0; i < m; i++)
                ss += xs[i] * xs[i];
        }
        const double inv = 1.0 / sqrt(ss / (double)d + r->eps);
        for (size_t i0 = 0; i0 < d; i0 += CHUNK) {
            size_t m = d - i0 < CHUNK ? d - i0 : CHUNK;
            qkv_ew_load_f64(xs, x + i0 * bx, r->tx, 1, m);
            qkv_ew_load_f64(ws, (const char *)r->w + i0 * bw, r->tw, 1, m);
            for (size_t i = 0; i < m; i++)
                xs[i] = round_to(xs[i] * inv, r->tx) * ws[i];
            qkv_ew_store_f64(y + i0 * bw, r->tw, xs, m);
        }
    }
}

/* ---- callbacks ----------------------------------------------------------- */

static qkv_status rms_init(const qkv_kernel *kernel, const qkv_host_api *host,
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
    rms_attrs *s = calloc(1, sizeof *s);
    if (!s)
        return NERR(host, node, QKV_ERR_OUT_OF_MEMORY, "kernel state");
    s->axis = axis;
    s->epsilon = eps;
    *state = s;
    return QKV_OK;
}

static void rms_destroy(void *state) { free(state); }

/* Checks that scale broadcasts to x's dims from `axis` on. */
static qkv_status check_scale(qkv_kernel_io *io, int32_t axis)
{
    const qkv_tensor *x = &io->inputs[0], *p = &io->inputs[1];
    if (p->rank < 0)
        return QKV_OK;
    char a[96], b[96];
    for (int32_t i = 0; i < p->rank; i++) {
        int32_t xi = x->rank - p->rank + i; /* the dim of x it lines up with */
        int64_t pd = p->dims[i], xd = xi >= axis ? x->dims[xi] : 1;
        if (xi < axis ? pd > 1 : (pd >= 0 && xd >= 0 && pd != xd && pd != 1))
            return KERR(io, QKV_ERR_SHAPE,
                        "input 1 'scale' has shape %s, which does not broadcast to the "
                        "normalized dims of input 0 'X' %s from axis %d",
                        qkv_dims_str(p, a, sizeof a), qkv_dims_str(x, b, sizeof b), axis);
    }
    return QKV_OK;
}

/* The normalised axis of x (rank known), or a shape error. */
static qkv_status rms_axis(const rms_attrs *s, qkv_kernel_io *io, int32_t *axis)
{
    const qkv_tensor *x = &io->inputs[0];
    if (!qkv_axis_normalize(s->axis, x->rank, false, axis))
        return KERR(io, QKV_ERR_SHAPE,
                    "attribute axis=%lld is out of range for input 0 'X' of rank %d "
                    "(expected %d to %d)",
                    (long long)s->axis, x->rank, -x->rank, x->rank - 1);
    return QKV_OK;
}

static qkv_status rms_infer(void *state, qkv_kernel_io *io)
{
    const rms_attrs *s = state;
    const qkv_tensor *x = &io->inputs[0];
    qkv_set_shape(&io->outputs[0], io->inputs[1].dtype, x->rank, x->dims);
    if (x->rank < 0)
        return QKV_OK;
    int32_t axis;
    qkv_status st = rms_axis(s, io, &axis);
    if (st == QKV_OK)
        st = check_scale(io, axis);
    return st;
}

/* Copies p broadcast to the normalized shape nd[0..nr) into dst (D elements
 * of es bytes). p's extra leading dims (all 1) are dropped. */
static void expand_scale(void *dst, const qkv_tensor *p, const int64_t *nd, int32_t nr, size_t es)
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

/* D, the product of x's dims from axis on. */
static size_t norm_size(const qkv_tensor *x, int32_t axis)
{
    size_t d = 1;
    for (int32_t k = axis; k < x->rank; k++)
        d *= (size_t)x->dims[k];
    return d;
}

static qkv_status rms_prepare(void *state, qkv_kernel_io *io)
{
    int32_t axis;
    qkv_status st = rms_axis(state, io, &axis);
    if (st != QKV_OK)
        return st;
    size_t d = norm_size(&io->inputs[0], axis);
    io->scratch_bytes = 0;
    if (qkv_numel(&io->inputs[1]) != d)
        io->scratch_bytes = d * qkv_ew_elem_bytes(io->inputs[1].dtype);
    return QKV_OK;
}

static qkv_status rms_compute(const void *state, qkv_kernel_io *io)
{
    const rms_attrs *s = state;
    const qkv_tensor *x = &io->inputs[0], *w = &io->inputs[1];
    int32_t axis;
    qkv_status st = rms_axis(s, io, &axis);
    if (st != QKV_OK)
        return st;
    size_t d = norm_size(x, axis), rows = d ? qkv_numel(x) / d : 0;
    rms_run r = {.x = x->data,
                 .w = w->data,
                 .y = io->outputs[0].data,
                 .tx = x->dtype,
                 .tw = w->dtype,
                 .d = d,
                 .eps = s->epsilon};
    qkv_range_fn fn = rms_range_any;
    if (x->dtype == QKV_DTYPE_FLOAT && w->dtype == QKV_DTYPE_FLOAT)
        fn = rms_range_f32;
    else if (qkv_is_half(x->dtype) && w->dtype == x->dtype)
        fn = rms_range_half;
    for (int k = 0; k < 2; k++) {
        qkv_dtype t = io->inputs[k].dtype;
        if (t != QKV_DTYPE_FLOAT && t != QKV_DTYPE_DOUBLE && !qkv_is_half(t))
            return KERR(io, QKV_ERR_TYPE, "input %d '%s' has type %s, not supported", k,
                        k ? "scale" : "X", qkv_dtype_name(t));
    }
    if (rows == 0 || d == 0)
        return QKV_OK;
    if (qkv_numel(w) != d) {
        expand_scale(io->scratch, w, x->dims + axis, x->rank - axis, qkv_ew_elem_bytes(w->dtype));
        r.w = io->scratch;
    }
    if (rows > 1 && rows * d >= PAR_MIN_ELEMS)
        io->host->parallel_for(io->host_ctx, rows, fn, &r);
    else
        fn(&r, 0, rows);
    return QKV_OK;
}

#define RMS_TYPES (QKV_TYPES_FLOATS | QKV_T(FLOAT16) | QKV_T(BFLOAT16))

static const qkv_kernel kernels[] = {
    {
        QKV_KERNEL_V1,
        .domain = "",
        .op_type = "RMSNormalization",
        .since_version = 23,
        .min_inputs = 2,
        .max_inputs = 2,
        .min_outputs = 1,
        .max_outputs = 1,
        .n_input_types = 1,
        .input_types = {RMS_TYPES},
        .init = rms_init,
        .infer = rms_infer,
        .prepare = rms_prepare,
        .compute = rms_compute,
        .destroy = rms_destroy,
    },
};

/* The RMSNormalization descriptor; *count set to 1. */
const qkv_kernel *qkv_ops_rmsnorm(size_t *count)
{
    *count = sizeof kernels / sizeof kernels[0];
    return kernels;
}
