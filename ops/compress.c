/*
 * compress.c - Compress (opsets 9, 11): the slices of input along `axis`
 * whose entry of the 1-D bool `condition` is true (numpy.compress). Without
 * `axis` the input is flattened first. Negative axes count from the end
 * (opset 11; refused at opset 9).
 *
 * A condition shorter than the axis selects nothing beyond its end; entries
 * past the end of the axis are ignored (numpy raises for those only when
 * they are true; qkv does not look). The selected count is known only with
 * condition's value: infer gives -1 there without it, so the runtime runs the
 * node dynamically and calls infer again with the data. Any whole-byte
 * element type.
 */
#include <stdlib.h>
#include <string.h>

#include "kernel_util.h"
#include "qkv.h"

typedef struct compress_state {
    bool has_axis;
    int64_t axis;
} compress_state;

static qkv_status compress_init(const qkv_kernel *kernel, const qkv_host_api *host,
                                const qkv_node_ctx *node, void **state)
{
    (void)kernel;
    compress_state *s = calloc(1, sizeof *s);
    if (!s)
        return NERR(host, node, QKV_ERR_OUT_OF_MEMORY, "kernel state");
    s->has_axis = host->attr_type(node, "axis") != QKV_ATTR_UNDEFINED;
    qkv_status st = host->attr_int(node, "axis", 0, &s->axis);
    if (st == QKV_OK && s->has_axis && s->axis < 0 && host->node_opset(node) < 11)
        st = NERR(host, node, QKV_ERR_INVALID_MODEL,
                  "attribute 'axis' is %lld: negative axes need opset 11", (long long)s->axis);
    if (st != QKV_OK) {
        free(s);
        return st;
    }
    *state = s;
    return QKV_OK;
}

static void compress_destroy(void *state) { free(state); }

/* The axis length the condition applies to and, in *ax, the normalised axis
 * (-1: flattened). */
static qkv_status compress_axis(const compress_state *s, qkv_kernel_io *io, int32_t *ax)
{
    const qkv_tensor *x = &io->inputs[0];
    *ax = -1;
    if (!s->has_axis)
        return QKV_OK;
    if (x->rank < 0)
        return QKV_OK;
    if (!qkv_axis_normalize(s->axis, x->rank, false, ax))
        return KERR(io, QKV_ERR_INVALID_MODEL,
                    "attribute 'axis' is %lld, out of range for input 0 of rank %d",
                    (long long)s->axis, x->rank);
    return QKV_OK;
}

/* Number of true entries of condition among the first `limit`. */
static size_t count_true(const qkv_tensor *c, size_t limit)
{
    size_t n = qkv_numel(c), k = 0;
    const uint8_t *p = c->data;
    for (size_t i = 0; i < n && i < limit; i++)
        k += p[i] != 0;
    return k;
}

static qkv_status compress_infer(void *state, qkv_kernel_io *io)
{
    const compress_state *s = state;
    const qkv_tensor *x = &io->inputs[0], *c = &io->inputs[1];
    qkv_tensor *y = &io->outputs[0];
    y->dtype = x->dtype;
    y->rank = -1;
    if (c->rank >= 0 && c->rank != 1)
        return KERR(io, QKV_ERR_SHAPE, "input 1 'condition' has rank %d, expected 1", c->rank);
    int32_t ax;
    qkv_status st = compress_axis(s, io, &ax);
    if (st != QKV_OK || x->rank < 0)
        return st;
    bool known = qkv_shape_known(c) && (c->data || qkv_numel(c) == 0);
    if (ax < 0) {
        y->rank = 1;
        y->dims[0] = -1;
        if (known && qkv_shape_known(x))
            y->dims[0] = (int64_t)count_true(c, qkv_numel(x));
        return QKV_OK;
    }
    qkv_set_shape(y, x->dtype, x->rank, x->dims);
    y->dims[ax] = -1;
    if (known && x->dims[ax] >= 0)
        y->dims[ax] = (int64_t)count_true(c, (size_t)x->dims[ax]);
    return QKV_OK;
}

static qkv_status compress_compute(const void *state, qkv_kernel_io *io)
{
    const compress_state *s = state;
    const qkv_tensor *x = &io->inputs[0], *c = &io->inputs[1];
    qkv_tensor *y = &io->outputs[0];
    size_t eb = qkv_elem_bytes(x->dtype);
    if (!eb)
        return KERR(io, QKV_ERR_TYPE, "input 0 'input' has type %s, not supported",
                    qkv_dtype_name(x->dtype));
    int32_t ax;
    qkv_status st = compress_axis(s, io, &ax);
    if (st != QKV_OK)
        return st;
    size_t outer = 1, len, inner = eb;
    if (ax < 0) {
        len = qkv_numel(x);
    } else {
        for (int32_t a = 0; a < ax; a++)
            outer *= (size_t)x->dims[a];
        len = (size_t)x->dims[ax];
        for (int32_t a = ax + 1; a < x->rank; a++)
            inner *= (size_t)x->dims[a];
    }
    size_t k = count_true(c, len);
    /* the output was sized by infer from the same condition */
    if (qkv_numel(y) != outer * k * (inner / eb))
        return KERR(io, QKV_ERR_INTERNAL,
                    "output 0 has %zu elements, the condition selects %zu slices", qkv_numel(y), k);
    size_t nc = qkv_numel(c) < len ? qkv_numel(c) : len;
    const uint8_t *cond = c->data;
    const unsigned char *src = x->data;
    unsigned char *dst = y->data;
    for (size_t o = 0; o < outer; o++)
        for (size_t j = 0; j < nc; j++)
            if (cond[j]) {
                memcpy(dst, src + (o * len + j) * inner, inner);
                dst += inner;
            }
    return QKV_OK;
}

#define COMPRESS(since, until)                                                                     \
    {                                                                                              \
        QKV_KERNEL_V1, .domain = "", .op_type = "Compress", .since_version = since,                \
                       .until_version = until, .min_inputs = 2, .max_inputs = 2, .min_outputs = 1, \
                       .max_outputs = 1, .n_input_types = 2,                                       \
                       .input_types = {QKV_TYPES_BYTES, QKV_T(BOOL)}, .init = compress_init,       \
                       .infer = compress_infer, .compute = compress_compute,                       \
                       .destroy = compress_destroy                                                 \
    }

static const qkv_kernel kernels[] = {
    COMPRESS(9, 10),
    COMPRESS(11, 0),
};

/* The compress family: Compress. */
const qkv_kernel *qkv_ops_compress(size_t *count)
{
    *count = sizeof kernels / sizeof kernels[0];
    return kernels;
}
