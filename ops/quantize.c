/*
 * quantize.c - QuantizeLinear (opsets 10, 13, 19, 21), DequantizeLinear
 * (10, 13, 19, 21) and DynamicQuantizeLinear (11).
 *
 *   QuantizeLinear:   y = saturate(round(x / y_scale) + y_zero_point)
 *   DequantizeLinear: y = (x - x_zero_point) * x_scale
 *
 * Rounding is to nearest, ties to even; saturate clamps to the output
 * type's range. Scales and zero points apply per tensor (a scalar or a
 * one-element 1-D tensor), per axis (13+: 1-D along `axis`) or per block
 * (21+: `block_size` > 0, the scale having x's shape with the axis dim
 * ceil(D / block_size)); a zero point has its scale's shape.
 *
 * Types: x float32, float16, bfloat16 (19+) or int32 for QuantizeLinear,
 * int8/uint8 outputs (int16/uint16 from 21); DequantizeLinear reads
 * int8/uint8/int32 (int16/uint16 from 21) into the scale's type (float32,
 * float16 or bfloat16 from 19). Computation is in float32.
 *
 * Deviations: the float8, int4/uint4 and float4 types of 19+ are not
 * supported (a type error). NaN quantizes to the zero point.
 * DynamicQuantizeLinear on an all-zero x (range 0) uses scale 1, as ONNX
 * Runtime does, where the formula would divide 0 by 0.
 */
#include <math.h>
#include <stdlib.h>

#include "half.h"
#include "kernel_util.h"

/* Elements per unit of parallel work. */
#define Q_CHUNK 16384

typedef struct q_state {
    int64_t opset;
    int64_t axis;
    int64_t block_size;     /* 0: per tensor or per axis */
    qkv_dtype output_dtype; /* QuantizeLinear 21+: UNDEFINED when not given */
} q_state;

/* How scales map onto x: x viewed as (outer, d, inner) around the axis; the
 * scale of element (o, a, i) is scale[(o * nb + a / block) * inner + i]
 * (blocked), scale[a] (per axis) or scale[0]. */
typedef struct q_layout {
    enum { Q_PER_TENSOR, Q_PER_AXIS, Q_BLOCKED } mode;
    size_t outer, d, inner;
    size_t block, nb;
} q_layout;

/* ---- element access -------------------------------------------------------- */

static inline float load_f(const void *p, qkv_dtype t, size_t i)
{
    switch (t) {
    case QKV_DTYPE_FLOAT:
        return ((const float *)p)[i];
    case QKV_DTYPE_FLOAT16:
        return qkv_f16_to_f32(((const uint16_t *)p)[i]);
    case QKV_DTYPE_BFLOAT16:
        return qkv_bf16_to_f32(((const uint16_t *)p)[i]);
    case QKV_DTYPE_INT32:
        return (float)((const int32_t *)p)[i];
    default:
        return 0;
    }
}

static inline void store_f(void *p, qkv_dtype t, size_t i, float v)
{
    switch (t) {
    case QKV_DTYPE_FLOAT16:
        ((uint16_t *)p)[i] = qkv_f32_to_f16(v);
        break;
    case QKV_DTYPE_BFLOAT16:
        ((uint16_t *)p)[i] = qkv_f32_to_bf16(v);
        break;
    default:
        ((float *)p)[i] = v;
        break;
    }
}

/* An integer element as int32 (p NULL: 0, an absent zero point). */
static inline int32_t load_q(const void *p, qkv_dtype t, size_t i)
{
    if (!p)
        return 0;
    switch (t) {
    case QKV_DTYPE_UINT8:
        return ((const uint8_t *)p)[i];
    case QKV_DTYPE_INT8:
        return ((const int8_t *)p)[i];
    case QKV_DTYPE_UINT16:
        return ((const uint16_t *)p)[i];
    case QKV_DTYPE_INT16:
        return ((const int16_t *)p)[i];
    case QKV_DTYPE_INT32:
        return ((const int32_t *)p)[i];
    default:
        return 0;
    }
}

static void q_range(qkv_dtype t, float *lo, float *hi)
{
    switch (t) {
    case QKV_DTYPE_INT8:
        *lo = -128, *hi = 127;
        break;
    case QKV_DTYPE_UINT16:
        *lo = 0, *hi = 65535;
        break;
    case QKV_DTYPE_INT16:
        *lo = -32768, *hi = 32767;
        break;
    default:
        *lo = 0, *hi = 255;
        break;
    }
}

static inline void store_q(void *p, qkv_dtype t, size_t i, float v)
{
    switch (t) {
    case QKV_DTYPE_INT8:
        ((int8_t *)p)[i] = (int8_t)v;
        break;
    case QKV_DTYPE_UINT16:
        ((uint16_t *)p)[i] = (uint16_t)v;
        break;
    case QKV_DTYPE_INT16:
        ((int16_t *)p)[i] = (int16_t)v;
        break;
    default:
        ((uint8_t *)p)[i] = (uint8_t)v;
        break;
    }
}

/* Adding and subtracting 1.5 * 2^23 rounds a float of magnitude <= 2^22 to
 * an integer, ties to even (the default rounding mode): what rintf does,
 * but in plain arithmetic the compiler vectorises (rintf is a library call
 * below SSE4.1). */
#define ROUND_MAGIC 12582912.0f
#define ROUND_LIMIT 4194304.0f

/* round(v) + zp, saturated to [lo, hi]; NaN gives the zero point. Beyond
 * 2^22, v is clamped first: that changes nothing, since every result
 * saturates far below. */
static inline float quantize1(float v, float zp, float lo, float hi)
{
    float c = v > ROUND_LIMIT ? ROUND_LIMIT : v < -ROUND_LIMIT ? -ROUND_LIMIT : v;
    float r = (c + ROUND_MAGIC) - ROUND_MAGIC + zp;
    r = r < lo ? lo : r > hi ? hi : r;
    return r == r ? r : zp;
}

/* ---- attributes and layout ------------------------------------------------------- */

static qkv_status q_init(const qkv_kernel *kernel, const qkv_host_api *host,
                         const qkv_node_ctx *node, void **state)
{
    (void)kernel;
    q_state s = {.opset = host->node_opset(node), .axis = 1, .output_dtype = QKV_DTYPE_UNDEFINED};
    qkv_status st = host->attr_int(node, "axis", 1, &s.axis);
    if (st == QKV_OK)
        st = host->attr_int(node, "block_size", 0, &s.block_size);
    int64_t out_dtype = 0;
    if (st == QKV_OK && s.opset >= 21 && strcmp(host->node_op_type(node), "QuantizeLinear") == 0)
        st = host->attr_int(node, "output_dtype", 0, &out_dtype);
    if (st != QKV_OK)
        return st;
    if (s.block_size < 0)
        return NERR(host, node, QKV_ERR_INVALID_MODEL,
                    "attribute 'block_size' is %lld, expected >= 0", (long long)s.block_size);
    if (out_dtype != 0 && out_dtype != QKV_DTYPE_UINT8 && out_dtype != QKV_DTYPE_INT8 &&
        out_dtype != QKV_DTYPE_UINT16 && out_dtype != QKV_DTYPE_INT16)
        return NERR(
            host, node, QKV_ERR_UNSUPPORTED,
            "attribute 'output_dtype' is %lld: only uint8, int8, uint16, int16 are supported",
            (long long)out_dtype);
    s.output_dtype = (qkv_dtype)out_dtype;
    q_state *p = malloc(sizeof *p);
    if (!p)
        return NERR(host, node, QKV_ERR_OUT_OF_MEMORY, "kernel state");
    *p = s;
    *state = p;
    return QKV_OK;
}

static void q_destroy(void *state) { free(state); }

static size_t numel_known(const qkv_tensor *t)
{
    size_t n = 1;
    for (int32_t j = 0; j < t->rank; j++)
        n *= (size_t)t->dims[j];
    return n;
}

/*
 * The layout of scale (input 1) and zero point (input 2, if present) over x
 * (input 0), all shapes known. QKV_ERR_SHAPE naming what does not fit.
 */
static qkv_status q_layout_make(qkv_kernel_io *io, const q_state *s, q_layout *l)
{
    const qkv_tensor *x = &io->inputs[0], *sc = &io->inputs[1];
    char b1[96], b2[96];
    *l = (q_layout){.mode = Q_PER_TENSOR, .outer = 1, .d = 1, .inner = numel_known(x)};
    if (qkv_present(io, 2)) {
        const qkv_tensor *zp = &io->inputs[2];
        bool same = zp->rank == sc->rank;
        for (int32_t j = 0; same && j < sc->rank; j++)
            same = zp->dims[j] == sc->dims[j];
        if (!same)
            return KERR(io, QKV_ERR_SHAPE,
                        "input 2 (zero point) %s must have the shape of input 1 "
                        "(scale) %s",
                        qkv_dims_str(zp, b1, sizeof b1), qkv_dims_str(sc, b2, sizeof b2));
    }
    int32_t axis = 0;
    bool blocked = s->block_size > 0;
    /* a scalar or a single element is per tensor (opset 10 models give
     * 1-element 1-D scales) */
    if (!blocked && (sc->rank == 0 || (sc->rank == 1 && sc->dims[0] == 1)))
        return QKV_OK;
    if (s->opset < 13 || (!blocked && sc->rank != 1))
        return KERR(io, QKV_ERR_SHAPE, "input 1 (scale) %s must be a scalar%s",
                    qkv_dims_str(sc, b1, sizeof b1),
                    s->opset < 13 ? "" : " or 1-D along the axis (or block_size > 0)");
    if (!qkv_axis_normalize(s->axis, x->rank, false, &axis))
        return KERR(io, QKV_ERR_SHAPE,
                    "attribute 'axis' is %lld, out of range for input 0 of rank %d",
                    (long long)s->axis, x->rank);
    l->outer = 1;
    for (int32_t j = 0; j < axis; j++)
        l->outer *= (size_t)x->dims[j];
    l->d = (size_t)x->dims[axis];
    l->inner = 1;
    for (int32_t j = axis + 1; j < x->rank; j++)
        l->inner *= (size_t)x->dims[j];
    if (!blocked) {
        if ((size_t)sc->dims[0] != l->d)
            return KERR(io, QKV_ERR_SHAPE,
                        "input 1 (scale) has %lld elements but input 0 %s has "
                        "%zu along axis %d",
                        (long long)sc->dims[0], qkv_dims_str(x, b1, sizeof b1), l->d, axis);
        l->mode = Q_PER_AXIS;
        return QKV_OK;
    }
    l->mode = Q_BLOCKED;
    l->block = (size_t)s->block_size;
    l->nb = (l->d + l->block - 1) / l->block;
    bool ok = sc->rank == x->rank;
    for (int32_t j = 0; ok && j < x->rank; j++)
        ok = (size_t)sc->dims[j] == (j == axis ? l->nb : (size_t)x->dims[j]);
    if (!ok)
        return KERR(io, QKV_ERR_SHAPE,
                    "input 1 (scale) %s does not fit input 0 %s with block_size "
                    "%zu on axis %d (expected the axis dim %zu)",
                    qkv_dims_str(sc, b1, sizeof b1), qkv_dims_str(x, b2, sizeof b2), l->block, axis,
                    l->nb);
    return QKV_OK;
}

/* ---- the element loops --------------------------------------------------------------- */

typedef struct q_job {
    const qkv_kernel_io *io;
    q_layout l;
    bool quantize; /* else dequantize */
    size_t chunks_per_row;
} q_job;

/* parallel_for body: unit u is chunk (u % chunks_per_row) of row
 * (u / chunks_per_row), a row being one (outer, axis) position. */
static void q_units(void *arg, size_t begin, size_t end)
{
    const q_job *job = arg;
    const qkv_kernel_io *io = job->io;
    const q_layout *l = &job->l;
    const qkv_tensor *x = &io->inputs[0], *sc = &io->inputs[1];
    const qkv_tensor *zp = qkv_present(io, 2) ? &io->inputs[2] : NULL;
    const qkv_tensor *y = &io->outputs[0];
    float lo = 0, hi = 0;
    if (job->quantize)
        q_range(y->dtype, &lo, &hi);
    for (size_t u = begin; u < end; u++) {
        size_t row = u / job->chunks_per_row, ch = u % job->chunks_per_row;
        size_t o = row / l->d, a = row % l->d;
        size_t i0 = ch * Q_CHUNK, i1 = i0 + Q_CHUNK < l->inner ? i0 + Q_CHUNK : l->inner;
        size_t base = row * l->inner;
        /* the scale index of element i of the row: s0 + i * s_step */
        size_t s0 = 0, s_step = 0;
        if (l->mode == Q_PER_AXIS)
            s0 = a;
        else if (l->mode == Q_BLOCKED)
            s0 = (o * l->nb + a / l->block) * l->inner, s_step = 1;
        for (size_t i = i0; i < i1; i++) {
            size_t si = s0 + i * s_step;
            float scale = load_f(sc->data, sc->dtype, si);
            int32_t z = zp ? load_q(zp->data, zp->dtype, si) : 0;
            if (job->quantize) {
                float v = load_f(x->data, x->dtype, base + i) / scale;
                store_q(y->data, y->dtype, base + i, quantize1(v, (float)z, lo, hi));
            } else {
                int32_t q = load_q(x->data, x->dtype, base + i);
                store_f(y->data, y->dtype, base + i, (float)(q - z) * scale);
            }
        }
    }
}

static void q_run(qkv_kernel_io *io, const q_layout *l, bool quantize)
{
    q_job job = {.io = io,
                 .l = *l,
                 .quantize = quantize,
                 .chunks_per_row = l->inner ? (l->inner + Q_CHUNK - 1) / Q_CHUNK : 1};
    size_t units = l->outer * l->d * job.chunks_per_row;
    if (units == 0 || l->inner == 0)
        return;
    qkv_run_range(io, units, qkv_numel(&io->outputs[0]) * 4, q_units, &job);
}

/* ---- QuantizeLinear ----------------------------------------------------------------- */

static qkv_status quantize_infer(void *state, qkv_kernel_io *io)
{
    const q_state *s = state;
    const qkv_tensor *x = &io->inputs[0];
    qkv_dtype t = qkv_present(io, 2) ? io->inputs[2].dtype : s->output_dtype;
    if (t == QKV_DTYPE_UNDEFINED)
        t = QKV_DTYPE_UINT8;
    if (qkv_present(io, 2) && s->output_dtype != QKV_DTYPE_UNDEFINED && s->output_dtype != t)
        return KERR(io, QKV_ERR_TYPE,
                    "attribute 'output_dtype' (%s) differs from input 2 "
                    "(zero point) type %s",
                    io->host->dtype_name(s->output_dtype), io->host->dtype_name(t));
    if (s->opset < 19 && io->inputs[1].dtype != QKV_DTYPE_FLOAT)
        return KERR(io, QKV_ERR_TYPE, "input 1 (scale) is %s, expected float32",
                    io->host->dtype_name(io->inputs[1].dtype));
    qkv_set_shape(&io->outputs[0], t, x->rank, x->dims);
    return QKV_OK;
}

static qkv_status q_prepare(void *state, qkv_kernel_io *io)
{
    q_layout l;
    return q_layout_make(io, state, &l);
}

static qkv_status quantize_compute(const void *state, qkv_kernel_io *io)
{
    q_layout l;
    qkv_status st = q_layout_make(io, state, &l);
    if (st == QKV_OK)
        q_run(io, &l, true);
    return st;
}

/* ---- DequantizeLinear --------------------------------------------------------------- */

static qkv_status dequantize_infer(void *state, qkv_kernel_io *io)
{
    (void)state;
    const qkv_tensor *x = &io->inputs[0];
    if (qkv_present(io, 2) && io->inputs[2].dtype != x->dtype)
        return KERR(io, QKV_ERR_TYPE,
                    "input 2 (zero point) is %s but input 0 is %s: they must "
                    "match",
                    io->host->dtype_name(io->inputs[2].dtype), io->host->dtype_name(x->dtype));
    qkv_set_shape(&io->outputs[0], io->inputs[1].dtype, x->rank, x->dims);
    return QKV_OK;
}

static qkv_status dequantize_prepare(void *state, qkv_kernel_io *io)
{
    q_layout l;
    qkv_status st = q_layout_make(io, state, &l);
    if (st != QKV_OK)
        return st;
    if (io->inputs[0].dtype == QKV_DTYPE_INT32 && qkv_present(io, 2) && io->inputs[2].data) {
        const qkv_tensor *zp = &io->inputs[2];
        for (size_t i = 0; i < qkv_numel(zp); i++)
            if (((const int32_t *)zp->data)[i] != 0)
                return KERR(io, QKV_ERR_INVALID_MODEL,
                            "input 2 (zero point) of an int32 input "
                            "must be 0, element %zu is %d",
                            i, ((const int32_t *)zp->data)[i]);
    }
    return QKV_OK;
}

static qkv_status dequantize_compute(const void *state, qkv_kernel_io *io)
{
    q_layout l;
    qkv_status st = q_layout_make(io, state, &l);
    if (st == QKV_OK)
        q_run(io, &l, false);
    return st;
}

/* ---- DynamicQuantizeLinear ------------------------------------------------------------ */

typedef struct dq_job {
    const float *x;
    uint8_t *y;
    size_t n;
    float *minmax; /* (chunks, 2) */
    float scale, zp;
} dq_job;

static void dq_minmax(void *arg, size_t begin, size_t end)
{
    const dq_job *job = arg;
    for (size_t c = begin; c < end; c++) {
        size_t i0 = c * Q_CHUNK, i1 = i0 + Q_CHUNK < job->n ? i0 + Q_CHUNK : job->n;
        float lo = 0, hi = 0; /* the range always includes 0 */
        for (size_t i = i0; i < i1; i++) {
            float v = job->x[i];
            lo = v < lo ? v : lo;
            hi = v > hi ? v : hi;
        }
        job->minmax[2 * c] = lo;
        job->minmax[2 * c + 1] = hi;
    }
}

static void dq_quantize(void *arg, size_t begin, size_t end)
{
    const dq_job *job = arg;
    const float scale = job->scale, zp = job->zp;
    for (size_t c = begin; c < end; c++) {
        size_t i0 = c * Q_CHUNK, i1 = i0 + Q_CHUNK < job->n ? i0 + Q_CHUNK : job->n;
        const float *restrict x = job->x + i0;
        uint8_t *restrict y = job->y + i0;
        /* |x / scale| <= 255 + rounding, as x lies in the range: no clamp
         * before the rounding (quantize1's, written for the loop to vectorise) */
        for (size_t i = 0; i < i1 - i0; i++) {
            float r = (x[i] / scale + ROUND_MAGIC) - ROUND_MAGIC + zp;
            r = r < 0.0f ? 0.0f : r;
            r = r > 255.0f ? 255.0f : r;
            r = r == r ? r : zp;
            y[i] = (uint8_t)(int32_t)r;
        }
    }
}

static size_t dq_chunks(const qkv_tensor *x)
{
    size_t n = qkv_numel(x);
    return n ? (n + Q_CHUNK - 1) / Q_CHUNK : 1;
}

static qkv_status dynq_infer(void *state, qkv_kernel_io *io)
{
    (void)state;
    const qkv_tensor *x = &io->inputs[0];
    qkv_set_shape(&io->outputs[0], QKV_DTYPE_UINT8, x->rank, x->dims);
    qkv_set_shape(&io->outputs[1], QKV_DTYPE_FLOAT, 0, NULL);
    qkv_set_shape(&io->outputs[2], QKV_DTYPE_UINT8, 0, NULL);
    return QKV_OK;
}

static qkv_status dynq_prepare(void *state, qkv_kernel_io *io)
{
    (void)state;
    io->scratch_bytes = dq_chunks(&io->inputs[0]) * 2 * sizeof(float);
    return QKV_OK;
}

static qkv_status dynq_compute(const void *state, qkv_kernel_io *io)
{
    (void)state;
    const qkv_tensor *x = &io->inputs[0];
    dq_job job = {.x = x->data, .y = io->outputs[0].data, .n = qkv_numel(x), .minmax = io->scratch};
    size_t chunks = dq_chunks(x);
    qkv_run_range(io, chunks, job.n * 4, dq_minmax, &job);
    float lo = 0, hi = 0;
    for (size_t c = 0; c < chunks && job.n; c++) {
        lo = job.minmax[2 * c] < lo ? job.minmax[2 * c] : lo;
        hi = job.minmax[2 * c + 1] > hi ? job.minmax[2 * c + 1] : hi;
    }
    job.scale = hi == lo ? 1.0f : (hi - lo) / 255.0f;
    job.zp = quantize1(-lo / job.scale, 0, 0, 255);
    qkv_run_range(io, chunks, job.n * 4, dq_quantize, &job);
    *(float *)io->outputs[1].data = job.scale;
    *(uint8_t *)io->outputs[2].data = (uint8_t)job.zp;
    return QKV_OK;
}

/* ---- descriptors ------------------------------------------------------------------- */

#define Q_FLOATS (QKV_T(FLOAT) | QKV_T(FLOAT16) | QKV_T(BFLOAT16))
#define Q_8 (QKV_T(UINT8) | QKV_T(INT8))
#define Q_16 (QKV_T(UINT16) | QKV_T(INT16))

#define QUANTIZE_KERNEL(since, until, xt, st, zt)                                                  \
    {                                                                                              \
        QKV_KERNEL_V1, .domain = "", .op_type = "QuantizeLinear", .since_version = (since),        \
                       .until_version = (until), .min_inputs = 2, .max_inputs = 3,                 \
                       .min_outputs = 1, .max_outputs = 1, .n_input_types = 3,                     \
                       .input_types = {(xt), (st), (zt)}, .init = q_init, .infer = quantize_infer, \
                       .prepare = q_prepare, .compute = quantize_compute, .destroy = q_destroy,    \
    }

#define DEQUANTIZE_KERNEL(since, until, xt, st)                                                    \
    {                                                                                              \
        QKV_KERNEL_V1, .domain = "", .op_type = "DequantizeLinear", .since_version = (since),      \
                       .until_version = (until), .min_inputs = 2, .max_inputs = 3,                 \
                       .min_outputs = 1, .max_outputs = 1, .n_input_types = 3,                     \
                       .input_types = {(xt), (st), (xt)}, .init = q_init,                          \
                       .infer = dequantize_infer, .prepare = dequantize_prepare,                   \
                       .compute = dequantize_compute, .destroy = q_destroy,                        \
    }

static const qkv_kernel kernels[] = {
    QUANTIZE_KERNEL(10, 18, QKV_T(FLOAT) | QKV_T(INT32), QKV_T(FLOAT), Q_8),
    QUANTIZE_KERNEL(19, 20, Q_FLOATS | QKV_T(INT32), Q_FLOATS | QKV_T(INT32), Q_8),
    QUANTIZE_KERNEL(21, 0, Q_FLOATS | QKV_T(INT32), Q_FLOATS | QKV_T(INT32), Q_8 | Q_16),
    DEQUANTIZE_KERNEL(10, 18, Q_8 | QKV_T(INT32), QKV_T(FLOAT)),
    DEQUANTIZE_KERNEL(19, 20, Q_8 | QKV_T(INT32), Q_FLOATS),
    DEQUANTIZE_KERNEL(21, 0, Q_8 | Q_16 | QKV_T(INT32), Q_FLOATS),
    {
        QKV_KERNEL_V1,
        .domain = "",
        .op_type = "DynamicQuantizeLinear",
        .since_version = 11,
        .until_version = 0,
        .min_inputs = 1,
        .max_inputs = 1,
        .min_outputs = 3,
        .max_outputs = 3,
        .n_input_types = 1,
        .input_types = {QKV_T(FLOAT)},
        .infer = dynq_infer,
        .prepare = dynq_prepare,
        .compute = dynq_compute,
    },
};

/* The QuantizeLinear, DequantizeLinear and DynamicQuantizeLinear
 * descriptors; *count set to their number. */
const qkv_kernel *qkv_ops_quantize(size_t *count)
{
    *count = sizeof kernels / sizeof kernels[0];
    return kernels;
}
