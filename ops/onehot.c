/*
 * onehot.c - OneHot (opsets 9, 11): out has indices' shape with a `depth`
 * axis inserted at `axis` (default -1, the new last axis); out[.., d, ..] is
 * values[1] ("on") where indices[..] == d and values[0] ("off") elsewhere.
 *
 * indices: any numeric type (floats are truncated toward zero); negative
 * indices in [-depth, -1] count from the end (added in opset 11; accepted
 * for opset 9 too); any other index out of [0, depth) gives an all-"off"
 * row, as the spec says. depth: any numeric scalar or one-element tensor,
 * truncated to an integer, must be > 0; unknown at inference -> that output
 * dim is -1. values: two elements of any whole-byte type (the output type).
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "kernel_util.h"
#include "qkv.h"

#define VALUE_TYPES (QKV_TYPES_PLAIN | QKV_T(COMPLEX64) | QKV_T(COMPLEX128))
/* Indices beyond this magnitude are out of range for any depth an output
 * can have; clamping there keeps float -> int64 conversions defined. */
#define INDEX_LIMIT 9.0e18

typedef struct onehot_state {
    int64_t axis;
} onehot_state;

static qkv_status onehot_init(const qkv_kernel *k, const qkv_host_api *host,
                              const qkv_node_ctx *node, void **state)
{
    (void)k;
    onehot_state *s = calloc(1, sizeof *s);
    if (!s)
        return NERR(host, node, QKV_ERR_OUT_OF_MEMORY, "kernel state");
    qkv_status st = host->attr_int(node, "axis", -1, &s->axis);
    if (st != QKV_OK) {
        free(s);
        return st;
    }
    *state = s;
    return QKV_OK;
}

static void onehot_destroy(void *state) { free(state); }

/* Element i of a numeric tensor as an integer (floats truncated, NaN and
 * huge values mapped out of any valid range). */
static int64_t int_value(const qkv_tensor *t, size_t i)
{
    double f;
    switch (t->dtype) {
    case QKV_DTYPE_INT8:
        return ((const int8_t *)t->data)[i];
    case QKV_DTYPE_INT16:
        return ((const int16_t *)t->data)[i];
    case QKV_DTYPE_INT32:
        return ((const int32_t *)t->data)[i];
    case QKV_DTYPE_INT64:
        return ((const int64_t *)t->data)[i];
    case QKV_DTYPE_UINT8:
        return ((const uint8_t *)t->data)[i];
    case QKV_DTYPE_UINT16:
        return ((const uint16_t *)t->data)[i];
    case QKV_DTYPE_UINT32:
        return ((const uint32_t *)t->data)[i];
    case QKV_DTYPE_UINT64: {
        uint64_t u = ((const uint64_t *)t->data)[i];
        return u > (uint64_t)INT64_MAX ? INT64_MAX : (int64_t)u;
    }
    case QKV_DTYPE_FLOAT:
        f = ((const float *)t->data)[i];
        break;
    default:
        f = ((const double *)t->data)[i];
        break; /* double (descriptor) */
    }
    if (isnan(f) || f >= INDEX_LIMIT)
        return INT64_MAX;
    if (f <= -INDEX_LIMIT)
        return INT64_MIN;
    return (int64_t)f;
}

/* Reads depth (input 1) when known: *depth, or -1 when unknown. */
static qkv_status read_depth(qkv_kernel_io *io, int64_t *depth)
{
    const qkv_tensor *d = &io->inputs[1];
    *depth = -1;
    if (d->rank > 1 || (qkv_shape_known(d) && qkv_numel(d) != 1)) {
        char b[96];
        return KERR(io, QKV_ERR_SHAPE,
                    "input 1 'depth' has shape %s, expected a scalar or one element",
                    qkv_dims_str(d, b, sizeof b));
    }
    if (!d->data || !qkv_shape_known(d))
        return QKV_OK;
    int64_t v = int_value(d, 0);
    if (v <= 0)
        return KERR(io, QKV_ERR_INVALID_ARGUMENT, "input 1 'depth' is %lld, expected > 0",
                    (long long)v);
    *depth = v;
    return QKV_OK;
}

static qkv_status onehot_infer(void *state, qkv_kernel_io *io)
{
    const onehot_state *s = state;
    const qkv_tensor *ind = &io->inputs[0], *vals = &io->inputs[2];
    qkv_tensor *y = &io->outputs[0];
    y->dtype = vals->dtype;
    y->rank = -1;
    if (vals->rank >= 0 && (vals->rank != 1 || (vals->dims[0] >= 0 && vals->dims[0] != 2))) {
        char b[96];
        return KERR(io, QKV_ERR_SHAPE,
                    "input 2 'values' has shape %s, expected [2] ([off_value, on_value])",
                    qkv_dims_str(vals, b, sizeof b));
    }
    int64_t depth;
    qkv_status st = read_depth(io, &depth);
    if (st != QKV_OK || ind->rank < 0)
        return st;
    if (ind->rank + 1 > QKV_MAX_RANK)
        return KERR(io, QKV_ERR_UNSUPPORTED, "output rank %d exceeds the maximum %d", ind->rank + 1,
                    QKV_MAX_RANK);
    int32_t axis;
    if (!qkv_axis_normalize(s->axis, ind->rank, true, &axis))
        return KERR(io, QKV_ERR_SHAPE,
                    "axis %lld is out of range [%d, %d] for input 0 'indices' of rank %d",
                    (long long)s->axis, -ind->rank - 1, ind->rank, ind->rank);
    y->rank = ind->rank + 1;
    for (int32_t k = 0, j = 0; k < y->rank; k++)
        y->dims[k] = k == axis ? depth : ind->dims[j++];
    return QKV_OK;
}

static qkv_status onehot_compute(const void *state, qkv_kernel_io *io)
{
    const onehot_state *s = state;
    const qkv_tensor *ind = &io->inputs[0], *vals = &io->inputs[2];
    qkv_tensor *y = &io->outputs[0];
    int32_t axis;
    qkv_axis_normalize(s->axis, ind->rank, true, &axis); /* checked in infer */
    int64_t depth = y->dims[axis];
    size_t eb = qkv_dtype_bits(vals->dtype) / 8;
    if (eb == 0 || vals->dtype == QKV_DTYPE_STRING)
        return KERR(io, QKV_ERR_TYPE, "input 2 'values' has type %s, not supported",
                    qkv_dtype_name(vals->dtype));
    size_t inner = 1, n = qkv_numel(ind), total = qkv_numel(y);
    for (int32_t k = axis; k < ind->rank; k++)
        inner *= (size_t)ind->dims[k];
    const unsigned char *off = vals->data, *on = off + eb;
    unsigned char *out = y->data; /* (outer, depth, inner) */
    for (size_t i = 0; i < total; i++)
        memcpy(out + i * eb, off, eb);
    for (size_t i = 0; i < n; i++) {
        int64_t v = int_value(ind, i);
        if (v < 0 && v >= -depth)
            v += depth;
        if (v < 0 || v >= depth)
            continue; /* all "off" */
        size_t o = i / inner, r = i % inner;
        memcpy(out + ((o * (size_t)depth + (size_t)v) * inner + r) * eb, on, eb);
    }
    return QKV_OK;
}

static const qkv_kernel kernels[] = {
    {
        QKV_KERNEL_V1,
        .domain = "",
        .op_type = "OneHot",
        .since_version = 9,
        .min_inputs = 3,
        .max_inputs = 3,
        .min_outputs = 1,
        .max_outputs = 1,
        .n_input_types = 3,
        .input_types = {QKV_TYPES_NUMERIC, QKV_TYPES_NUMERIC, VALUE_TYPES},
        .init = onehot_init,
        .infer = onehot_infer,
        .compute = onehot_compute,
        .destroy = onehot_destroy,
    },
};

/* The onehot family: OneHot. */
const qkv_kernel *qkv_ops_onehot(size_t *count)
{
    *count = sizeof kernels / sizeof kernels[0];
    return kernels;
}
