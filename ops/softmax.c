/*
 * softmax.c - Softmax and LogSoftmax (opsets 1, 11, 13).
 *
 * Opsets 1 and 11 flatten the input at `axis` (default 1) into 2-D (N, D)
 * and normalise each row of D; opset 13 normalises along the single `axis`
 * (default -1). Both are computed as an (outer, D, inner) view: the
 * flattened form is inner == 1. Deviation: for opsets 1 and 11 axis == rank
 * is accepted (D = 1, as Flatten allows), where the spec says [-r, r-1].
 *
 * Numerically stable: softmax = exp(x - max) / sum, logsoftmax =
 * (x - max) - log(sum), sums accumulated in double. A row that is all -inf
 * (or holds NaN or +inf) gives NaN, as the numpy reference does.
 *
 * An axis that is not the last one (inner > 1) is handled in place, without a
 * transposed copy: tiles of up to TILE adjacent inner positions are
 * normalised together, each pass over D reading TILE contiguous elements per
 * row, with the tile's max and sums in small stack arrays.
 *
 * Types: float and double; float16 and bfloat16 are converted to float32
 * in scratch, normalised there and rounded back once. Output 0 may share
 * input 0's buffer: every element is read before it is written.
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "half.h"
#include "kernel_util.h"
#include "qkv.h"

/* Inner positions normalised together when the axis is not the last. */
#define TILE 64
/* Go parallel from this many elements (below, waking threads costs more). */
#define PAR_MIN_ELEMS ((size_t)1 << 15)

typedef struct softmax_attrs {
    int64_t axis;
    bool flatten; /* opsets 1 and 11: normalise over dims[axis:] flattened */
    bool log;     /* LogSoftmax */
} softmax_attrs;

/*
 * Normalises one row of d contiguous elements (d >= 1); y may equal x.
 * softmax: y = exp(x - max) / sum; log: y = (x - max) - log(sum).
 */
#define DEFINE_SOFTMAX_ROW(T, SFX, EXP)                                                            \
    static void softmax_row_##SFX(T *y, const T *x, size_t d, bool log_out)                        \
    {                                                                                              \
        T mx = x[0];                                                                               \
        for (size_t i = 1; i < d; i++)                                                             \
            mx = x[i] > mx ? x[i] : mx;                                                            \
        double sum = 0;                                                                            \
        if (log_out) {                                                                             \
            for (size_t i = 0; i < d; i++)                                                         \
                sum += EXP(x[i] - mx);                                                             \
            T lse = (T)log(sum);                                                                   \
            for (size_t i = 0; i < d; i++)                                                         \
                y[i] = (x[i] - mx) - lse;                                                          \
        } else {                                                                                   \
            for (size_t i = 0; i < d; i++) {                                                       \
                T e = EXP(x[i] - mx);                                                              \
                y[i] = e;                                                                          \
                sum += e;                                                                          \
            }                                                                                      \
            for (size_t i = 0; i < d; i++)                                                         \
                y[i] = (T)(y[i] / sum);                                                            \
        }                                                                                          \
    }

/*
 * Normalises w <= TILE adjacent columns of a (d, inner) slab along d (d >= 1):
 * element (p, t) is at x[p * inner + t]. y may equal x.
 */
#define DEFINE_SOFTMAX_TILE(T, SFX, EXP)                                                           \
    static void softmax_tile_##SFX(T *y, const T *x, size_t d, size_t inner, size_t w,             \
                                   bool log_out)                                                   \
    {                                                                                              \
        T mx[TILE];                                                                                \
        double sum[TILE];                                                                          \
        for (size_t t = 0; t < w; t++) {                                                           \
            mx[t] = x[t];                                                                          \
            sum[t] = 0;                                                                            \
        }                                                                                          \
        for (size_t p = 1; p < d; p++) {                                                           \
            const T *row = x + p * inner;                                                          \
            for (size_t t = 0; t < w; t++)                                                         \
                mx[t] = row[t] > mx[t] ? row[t] : mx[t];                                           \
        }                                                                                          \
        if (log_out) {                                                                             \
            for (size_t p = 0; p < d; p++) {                                                       \
                const T *row = x + p * inner;                                                      \
                for (size_t t = 0; t < w; t++)                                                     \
                    sum[t] += EXP(row[t] - mx[t]);                                                 \
            }                                                                                      \
            T lse[TILE];                                                                           \
            for (size_t t = 0; t < w; t++)                                                         \
                lse[t] = (T)log(sum[t]);                                                           \
            for (size_t p = 0; p < d; p++) {                                                       \
                const T *row = x + p * inner;                                                      \
                T *out = y + p * inner;                                                            \
                for (size_t t = 0; t < w; t++)                                                     \
                    out[t] = (row[t] - mx[t]) - lse[t];                                            \
            }                                                                                      \
        } else {                                                                                   \
            for (size_t p = 0; p < d; p++) {                                                       \
                const T *row = x + p * inner;                                                      \
                T *out = y + p * inner;                                                            \
                for (size_t t = 0; t < w; t++) {                                                   \
                    T e = EXP(row[t] - mx[t]);                                                     \
                    out[t] = e;                                                                    \
                    sum[t] += e;                                                                   \
                }                                                                                  \
            }                                                                                      \
            for (size_t p = 0; p < d; p++) {                                                       \
                T *out = y + p * inner;                                                            \
                for (size_t t = 0; t < w; t++)                                                     \
                    out[t] = (T)(out[t] / sum[t]);                                                 \
            }                                                                                      \
        }                                                                                          \
    }

DEFINE_SOFTMAX_ROW(float, f32, expf)
DEFINE_SOFTMAX_ROW(double, f64, exp)
DEFINE_SOFTMAX_TILE(float, f32, expf)
DEFINE_SOFTMAX_TILE(double, f64, exp)

/* The node's axis for rank r, in [0, r) (or [0, r] when flattening: a
 * negative axis still counts from r, as for Flatten); false when out of range. */
static bool softmax_axis(const softmax_attrs *s, int32_t r, int32_t *axis)
{
    int64_t a = s->axis < 0 ? s->axis + r : s->axis;
    if (a < 0 || a > r || (a == r && !s->flatten))
        return false;
    *axis = (int32_t)a;
    return true;
}

/* The (outer, d, inner) view of x for the node's axis; false when the axis
 * is out of range for x's rank. */
static bool softmax_view(const softmax_attrs *s, const qkv_tensor *x, size_t *outer, size_t *d,
                         size_t *inner)
{
    int32_t axis;
    if (!softmax_axis(s, x->rank, &axis))
        return false;
    *outer = *d = *inner = 1;
    for (int32_t k = 0; k < x->rank; k++) {
        size_t dim = (size_t)x->dims[k];
        if (k < axis)
            *outer *= dim;
        else if (k == axis || s->flatten)
            *d *= dim;
        else
            *inner *= dim;
    }
    return true;
}

typedef struct softmax_run {
    const void *x;
    void *y;
    size_t d, inner, tiles; /* tiles: of TILE inner positions, per outer index */
    bool log_out;
    bool f64;
} softmax_run;

/* parallel_for body: units [begin, end) are rows (inner == 1) or
 * (outer, tile) pairs. */
static void softmax_range(void *arg, size_t begin, size_t end)
{
    const softmax_run *r = arg;
    for (size_t u = begin; u < end; u++) {
        size_t off, w = 0;
        if (r->inner == 1) {
            off = u * r->d;
        } else {
            size_t o = u / r->tiles, j0 = (u % r->tiles) * TILE;
            w = r->inner - j0 < TILE ? r->inner - j0 : TILE;
            off = o * r->d * r->inner + j0;
        }
        if (r->f64) {
            const double *x = (const double *)r->x + off;
            double *y = (double *)r->y + off;
            if (r->inner == 1)
                softmax_row_f64(y, x, r->d, r->log_out);
            else
                softmax_tile_f64(y, x, r->d, r->inner, w, r->log_out);
        } else {
            const float *x = (const float *)r->x + off;
            float *y = (float *)r->y + off;
            if (r->inner == 1)
                softmax_row_f32(y, x, r->d, r->log_out);
            else
                softmax_tile_f32(y, x, r->d, r->inner, w, r->log_out);
        }
    }
}

/* ---- callbacks --------------------------------------------------------------- */

static qkv_status softmax_init(const qkv_kernel *kernel, const qkv_host_api *host,
                               const qkv_node_ctx *node, void **state)
{
    bool flatten = kernel->since_version < 13;
    int64_t axis;
    qkv_status st = host->attr_int(node, "axis", flatten ? 1 : -1, &axis);
    if (st != QKV_OK)
        return st;
    softmax_attrs *s = malloc(sizeof *s);
    if (!s)
        return NERR(host, node, QKV_ERR_OUT_OF_MEMORY, "kernel state");
    s->axis = axis;
    s->flatten = flatten;
    s->log = strcmp(kernel->op_type, "LogSoftmax") == 0;
    *state = s;
    return QKV_OK;
}

static void softmax_destroy(void *state) { free(state); }

static qkv_status softmax_infer(void *state, qkv_kernel_io *io)
{
    const softmax_attrs *s = state;
    const qkv_tensor *x = &io->inputs[0];
    int32_t axis;
    if (x->rank >= 0 && !softmax_axis(s, x->rank, &axis))
        return KERR(io, QKV_ERR_SHAPE,
                    "attribute axis=%lld is out of range for input 0 'input' of rank %d "
                    "(expected %d to %d)",
                    (long long)s->axis, x->rank, -x->rank, s->flatten ? x->rank : x->rank - 1);
    qkv_set_shape(&io->outputs[0], x->dtype, x->rank, x->dims);
    return QKV_OK;
}

/* float16/bfloat16: scratch for the float32 copy of the input. */
static qkv_status softmax_prepare(void *state, qkv_kernel_io *io)
{
    (void)state;
    const qkv_tensor *x = &io->inputs[0];
    io->scratch_bytes = qkv_is_half(x->dtype) ? qkv_numel(x) * sizeof(float) : 0;
    return QKV_OK;
}

static qkv_status softmax_compute(const void *state, qkv_kernel_io *io)
{
    const softmax_attrs *s = state;
    const qkv_tensor *x = &io->inputs[0];
    softmax_run r = {.x = x->data, .y = io->outputs[0].data, .log_out = s->log};
    size_t outer;
    if (!softmax_view(s, x, &outer, &r.d, &r.inner))
        return KERR(io, QKV_ERR_SHAPE, "attribute axis=%lld is out of range for rank %d",
                    (long long)s->axis, x->rank);
    switch (x->dtype) {
    case QKV_DTYPE_FLOAT:
        r.f64 = false;
        break;
    case QKV_DTYPE_DOUBLE:
        r.f64 = true;
        break;
    case QKV_DTYPE_FLOAT16:
    case QKV_DTYPE_BFLOAT16: /* in place on a float32 copy in scratch */
        r.f64 = false;
        r.x = r.y = io->scratch;
        break;
    default:
        return KERR(io, QKV_ERR_TYPE, "input 0 'input' has type %s, not supported",
                    qkv_dtype_name(x->dtype));
    }
    size_t elems = outer * r.d * r.inner;
    if (elems == 0)
        return QKV_OK;
    if (qkv_is_half(x->dtype))
        qkv_half_to_f32_par(io, io->scratch, x->data, x->dtype, elems);
    r.tiles = (r.inner + TILE - 1) / TILE;
    size_t units = r.inner == 1 ? outer : outer * r.tiles;
    if (elems >= PAR_MIN_ELEMS)
        io->host->parallel_for(io->host_ctx, units, softmax_range, &r);
    else
        softmax_range(&r, 0, units);
    if (qkv_is_half(x->dtype))
        qkv_f32_to_half_par(io, io->outputs[0].data, io->scratch, x->dtype, elems);
    return QKV_OK;
}

#define SOFTMAX_KERNEL(op, since, until)                                                           \
    {                                                                                              \
        QKV_KERNEL_V1, .domain = "", .op_type = (op), .since_version = (since),                    \
                       .until_version = (until), .min_inputs = 1, .max_inputs = 1,                 \
                       .min_outputs = 1, .max_outputs = 1, .n_input_types = 1,                     \
                       .input_types = {QKV_TYPES_FLOATS | QKV_T(FLOAT16) | QKV_T(BFLOAT16)},       \
                       .flags = QKV_KERNEL_INPLACE, .inplace_input = 0, .init = softmax_init,      \
                       .infer = softmax_infer, .prepare = softmax_prepare,                         \
                       .compute = softmax_compute, .destroy = softmax_destroy,                     \
    }

static const qkv_kernel kernels[] = {
    SOFTMAX_KERNEL("Softmax", 1, 10),     SOFTMAX_KERNEL("Softmax", 11, 12),
    SOFTMAX_KERNEL("Softmax", 13, 0),     SOFTMAX_KERNEL("LogSoftmax", 1, 10),
    SOFTMAX_KERNEL("LogSoftmax", 11, 12), SOFTMAX_KERNEL("LogSoftmax", 13, 0),
};

/* The Softmax and LogSoftmax descriptors; *count set to their number. */
const qkv_kernel *qkv_ops_softmax(size_t *count)
{
    *count = sizeof kernels / sizeof kernels[0];
    return kernels;
}
