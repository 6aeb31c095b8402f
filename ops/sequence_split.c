/*
 * sequence_split.c - SplitToSequence and ConcatFromSequence (opset 11):
 * between a tensor and a sequence of its pieces.
 *
 * SplitToSequence: split absent cuts `axis` into pieces of 1 (keepdims 0
 * drops that axis); a scalar split cuts pieces of that size (the last one
 * smaller); a 1-D split gives each piece's size (they must add up to the
 * axis). Split sizes must be positive, as the spec says (so no piece is
 * empty along the axis; an axis of 0 gives no pieces). At most
 * SPLIT_MAX_PIECES pieces (QKV_ERR_UNSUPPORTED naming the count, before any
 * is made): an empty X may declare an axis of any length. ConcatFromSequence concatenates along `axis`, or with new_axis 1
 * stacks along a new axis; every element must have one dtype and the same
 * shape off the axis (QKV_ERR_TYPE / QKV_ERR_SHAPE naming the element).
 * Types: every whole-byte type (no strings: elements are moved by size).
 * An empty sequence cannot be concatenated (its shape is not known).
 */
#include <stdlib.h>
#include <string.h>

#include "value_io.h"

/* Each piece is a sequence element: a descriptor of about 100 bytes, plus
 * an allocation when it holds data. An empty X can declare an axis of any
 * length (2^40 pieces of nothing), so the count needs a bound of its own; a
 * million elements is far beyond the sequences models build. */
#define SPLIT_MAX_PIECES ((int64_t)1 << 20)

typedef struct split_attrs {
    int64_t axis;
    int64_t keepdims;
    int64_t new_axis; /* ConcatFromSequence */
} split_attrs;

static qkv_status split_init(const qkv_kernel *kernel, const qkv_host_api *host,
                             const qkv_node_ctx *node, void **state)
{
    (void)kernel;
    split_attrs a = {0};
    bool concat = strcmp(host->node_op_type(node), "ConcatFromSequence") == 0;
    qkv_status st = qkv_value_services_check(host, node);
    if (st == QKV_OK && concat && host->attr_type(node, "axis") == QKV_ATTR_UNDEFINED)
        st = NERR(host, node, QKV_ERR_INVALID_MODEL, "attribute 'axis' is required");
    if (st == QKV_OK)
        st = host->attr_int(node, "axis", 0, &a.axis);
    if (st == QKV_OK)
        st = host->attr_int(node, "keepdims", 1, &a.keepdims);
    if (st == QKV_OK)
        st = host->attr_int(node, "new_axis", 0, &a.new_axis);
    if (st != QKV_OK)
        return st;
    if (a.new_axis != 0 && a.new_axis != 1)
        return NERR(host, node, QKV_ERR_INVALID_MODEL,
                    "attribute 'new_axis' is %lld, expected 0 "
                    "or 1",
                    (long long)a.new_axis);
    split_attrs *s = malloc(sizeof *s);
    if (!s)
        return NERR(host, node, QKV_ERR_OUT_OF_MEMORY, "kernel state");
    *s = a;
    *state = s;
    return QKV_OK;
}

static void split_destroy(void *state) { free(state); }

/* ---- SplitToSequence ----------------------------------------------------------- */

static qkv_status split_infer(void *state, qkv_kernel_io *io)
{
    const split_attrs *a = state;
    const qkv_tensor *x = &io->inputs[0];
    int32_t axis;
    if (qkv_input_kind(io, 0) != QKV_KIND_TENSOR || qkv_input_kind(io, 1) != QKV_KIND_TENSOR)
        return KERR(io, QKV_ERR_TYPE, "inputs must be tensors");
    if (x->dtype == QKV_DTYPE_STRING)
        return KERR(io, QKV_ERR_UNSUPPORTED, "splitting a string tensor");
    if (x->rank >= 0 && !qkv_axis_normalize(a->axis, x->rank, false, &axis))
        return KERR(io, QKV_ERR_INVALID_ARGUMENT, "axis %lld is out of range for rank %d",
                    (long long)a->axis, x->rank);
    if (x->rank == 0)
        return KERR(io, QKV_ERR_SHAPE, "cannot split a scalar");
    return qkv_set_output_value(io, 0, QKV_KIND_SEQUENCE, x->dtype);
}

/* Appends the piece [start, start + len) of x along axis to the output. */
static qkv_status split_piece(qkv_kernel_io *io, int32_t axis, int64_t start, int64_t len,
                              bool drop_axis)
{
    const qkv_tensor *x = &io->inputs[0];
    int64_t dims[QKV_MAX_RANK];
    int32_t rank = 0;
    size_t outer = 1, inner = qkv_elem_bytes(x->dtype);
    for (int32_t d = 0; d < x->rank; d++) {
        if (d < axis)
            outer *= (size_t)x->dims[d];
        if (d > axis)
            inner *= (size_t)x->dims[d];
        if (d == axis && drop_axis)
            continue;
        dims[rank++] = d == axis ? len : x->dims[d];
    }
    qkv_tensor piece;
    qkv_status st = io->host->value_append(io, 0, x->dtype, rank, dims, NULL, &piece);
    if (st != QKV_OK || !inner || !len || !outer) /* an empty piece: x->data may be NULL */
        return st;
    size_t row = (size_t)x->dims[axis] * inner, chunk = (size_t)len * inner;
    const unsigned char *src = (const unsigned char *)x->data + (size_t)start * inner;
    unsigned char *dst = piece.data;
    for (size_t o = 0; o < outer; o++)
        memcpy(dst + o * chunk, src + o * row, chunk);
    return QKV_OK;
}

/* The piece count and, for a scalar split (or none), the piece size, from
 * input 1 'split' (NULL: absent) and the axis length `total`. Checks that
 * the sizes are positive and that a 1-D split adds up to the axis. */
static qkv_status split_pieces(qkv_kernel_io *io, const qkv_tensor *sp, int32_t axis, int64_t total,
                               int64_t *size, int64_t *pieces)
{
    *size = 1;
    *pieces = total;
    if (!sp)
        return QKV_OK;
    if (sp->dtype != QKV_DTYPE_INT32 && sp->dtype != QKV_DTYPE_INT64)
        return KERR(io, QKV_ERR_TYPE, "input 1 'split' is %s, expected int32 or int64",
                    io->host->dtype_name(sp->dtype));
    if (sp->rank == 0) {
        *size = qkv_int_at(sp, 0);
        if (*size <= 0)
            return KERR(io, QKV_ERR_INVALID_ARGUMENT, "input 1 'split' is %lld, must be positive",
                        (long long)*size);
        *pieces = total / *size + (total % *size != 0);
        return QKV_OK;
    }
    if (sp->rank != 1)
        return KERR(io, QKV_ERR_SHAPE, "input 1 'split' must be a scalar or 1-D, it has rank %d",
                    sp->rank);
    size_t n = qkv_numel(sp);
    *pieces = (int64_t)n;
    if (*pieces > SPLIT_MAX_PIECES)
        return QKV_OK; /* the caller refuses the count */
    int64_t sum = 0;
    for (size_t i = 0; i < n; i++) {
        int64_t len = qkv_int_at(sp, i);
        if (len <= 0)
            return KERR(io, QKV_ERR_INVALID_ARGUMENT,
                        "input 1 'split' has %lld at %zu: split sizes must be positive",
                        (long long)len, i);
        if (len > total - sum)
            return KERR(io, QKV_ERR_INVALID_ARGUMENT,
                        "input 1 'split' adds up to more than dim %d (%lld)", axis,
                        (long long)total);
        sum += len;
    }
    if (sum != total)
        return KERR(io, QKV_ERR_INVALID_ARGUMENT, "input 1 'split' adds up to %lld, dim %d is %lld",
                    (long long)sum, axis, (long long)total);
    return QKV_OK;
}

static qkv_status split_compute(const void *state, qkv_kernel_io *io)
{
    const split_attrs *a = state;
    const qkv_tensor *x = &io->inputs[0];
    const qkv_tensor *sp = qkv_present(io, 1) ? &io->inputs[1] : NULL;
    int32_t axis;
    if (!qkv_axis_normalize(a->axis, x->rank, false, &axis))
        return KERR(io, QKV_ERR_INVALID_ARGUMENT, "axis %lld is out of range for rank %d",
                    (long long)a->axis, x->rank);
    int64_t total = x->dims[axis], size, pieces;
    qkv_status st = split_pieces(io, sp, axis, total, &size, &pieces);
    if (st != QKV_OK)
        return st;
    if (pieces > SPLIT_MAX_PIECES)
        return KERR(io, QKV_ERR_UNSUPPORTED,
                    "splitting dim %d (%lld) would make %lld pieces, more than the %lld a "
                    "sequence may hold",
                    axis, (long long)total, (long long)pieces, (long long)SPLIT_MAX_PIECES);
    if (!sp || sp->rank == 0) {
        bool drop_axis = !sp && a->keepdims == 0; /* keepdims applies only without split */
        for (int64_t i = 0; i < pieces; i++) {
            int64_t start = i * size; /* <= total - 1: i < ceil(total / size) */
            int64_t len = total - start < size ? total - start : size;
            if ((st = split_piece(io, axis, start, len, drop_axis)) != QKV_OK)
                return st;
        }
        return QKV_OK;
    }
    for (int64_t i = 0, start = 0; i < pieces; i++) {
        int64_t len = qkv_int_at(sp, (size_t)i);
        if ((st = split_piece(io, axis, start, len, false)) != QKV_OK)
            return st;
        start += len;
    }
    return QKV_OK;
}

/* ---- ConcatFromSequence ---------------------------------------------------------- */

/* The output shape from the elements (contents known): checks them all. */
static qkv_status concat_shape(const split_attrs *a, qkv_kernel_io *io, qkv_tensor *y,
                               int32_t *axis_out)
{
    size_t n;
    qkv_status st = io->host->value_length(io, 0, &n);
    if (st != QKV_OK)
        return st;
    if (n == 0)
        return KERR(io, QKV_ERR_INVALID_ARGUMENT, "cannot concatenate an empty sequence");
    qkv_tensor first;
    st = io->host->value_element(io, 0, 0, &first);
    if (st != QKV_OK)
        return st;
    int32_t axis;
    if (!qkv_axis_normalize(a->axis, first.rank, a->new_axis != 0, &axis))
        return KERR(io, QKV_ERR_INVALID_ARGUMENT,
                    "axis %lld is out of range for elements of "
                    "rank %d%s",
                    (long long)a->axis, first.rank, a->new_axis ? " (new_axis)" : "");
    if (first.dtype == QKV_DTYPE_STRING || !qkv_elem_bytes(first.dtype))
        return KERR(io, QKV_ERR_UNSUPPORTED, "concatenating %s elements",
                    io->host->dtype_name(first.dtype));
    int64_t along = 0;
    for (size_t i = 0; i < n; i++) {
        qkv_tensor e;
        st = io->host->value_element(io, 0, i, &e);
        if (st != QKV_OK)
            return st;
        if (e.dtype != first.dtype)
            return KERR(io, QKV_ERR_TYPE, "element %zu is %s, element 0 is %s", i,
                        io->host->dtype_name(e.dtype), io->host->dtype_name(first.dtype));
        bool same = e.rank == first.rank;
        for (int32_t d = 0; same && d < e.rank; d++)
            same = e.dims[d] == first.dims[d] || (!a->new_axis && d == axis);
        if (!same) {
            char have[128], want[128];
            return KERR(io, QKV_ERR_SHAPE,
                        "element %zu has shape %s, element 0 %s: they must "
                        "agree off axis %d",
                        i, qkv_dims_str(&e, have, sizeof have),
                        qkv_dims_str(&first, want, sizeof want), axis);
        }
        along += a->new_axis ? 1 : e.dims[axis];
    }
    int64_t dims[QKV_MAX_RANK];
    int32_t rank = first.rank + (a->new_axis ? 1 : 0);
    if (rank > QKV_MAX_RANK)
        return KERR(io, QKV_ERR_UNSUPPORTED, "rank %d", rank);
    if (!a->new_axis)
        for (int32_t d = 0; d < rank; d++)
            dims[d] = d == axis ? along : first.dims[d];
    else
        for (int32_t d = 0; d < rank; d++)
            dims[d] = d == axis ? along : first.dims[d < axis ? d : d - 1];
    qkv_set_shape(y, first.dtype, rank, dims);
    *axis_out = axis;
    return QKV_OK;
}

static qkv_status concat_infer(void *state, qkv_kernel_io *io)
{
    if (qkv_input_kind(io, 0) != QKV_KIND_SEQUENCE)
        return KERR(io, QKV_ERR_TYPE, "input 0 must be a sequence");
    qkv_tensor *y = &io->outputs[0];
    y->dtype = io->inputs[0].dtype;
    y->rank = -1; /* known only from the contents, at run time */
    if (!qkv_value_known(io, 0))
        return QKV_OK;
    int32_t axis;
    return concat_shape(state, io, y, &axis);
}

static qkv_status concat_compute(const void *state, qkv_kernel_io *io)
{
    const split_attrs *a = state;
    qkv_tensor y = io->outputs[0];
    int32_t axis;
    qkv_status st = concat_shape(a, io, &y, &axis);
    if (st != QKV_OK)
        return st;
    size_t n, outer = 1, inner = qkv_elem_bytes(y.dtype);
    io->host->value_length(io, 0, &n);
    for (int32_t d = 0; d < y.rank; d++) {
        if (d < axis)
            outer *= (size_t)y.dims[d];
        if (d > axis)
            inner *= (size_t)y.dims[d];
    }
    size_t row = (size_t)y.dims[axis] * inner;
    if (outer * row != io->outputs[0].data_bytes)
        return KERR(io, QKV_ERR_SHAPE, "the output has %zu bytes, the elements %zu",
                    io->outputs[0].data_bytes, outer * row);
    unsigned char *dst = io->outputs[0].data;
    size_t offset = 0; /* bytes into each output row */
    for (size_t i = 0; i < n; i++) {
        qkv_tensor e;
        io->host->value_element(io, 0, i, &e);
        size_t chunk = (a->new_axis ? 1 : (size_t)e.dims[axis]) * inner;
        const unsigned char *src = e.data;
        for (size_t o = 0; o < outer && chunk; o++)
            memcpy(dst + o * row + offset, src + o * chunk, chunk);
        offset += chunk;
    }
    return QKV_OK;
}

static const qkv_kernel kernels[] = {
    {
        QKV_KERNEL_V1,
        .domain = "",
        .op_type = "SplitToSequence",
        .since_version = 11,
        .min_inputs = 1,
        .max_inputs = 2,
        .min_outputs = 1,
        .max_outputs = 1,
        .flags = QKV_KERNEL_VALUES,
        .init = split_init,
        .infer = split_infer,
        .compute = split_compute,
        .destroy = split_destroy,
    },
    {
        QKV_KERNEL_V1,
        .domain = "",
        .op_type = "ConcatFromSequence",
        .since_version = 11,
        .min_inputs = 1,
        .max_inputs = 1,
        .min_outputs = 1,
        .max_outputs = 1,
        .flags = QKV_KERNEL_VALUES,
        .init = split_init,
        .infer = concat_infer,
        .compute = concat_compute,
        .destroy = split_destroy,
    },
};

const qkv_kernel *qkv_ops_sequence_split(size_t *count)
{
    *count = sizeof kernels / sizeof kernels[0];
    return kernels;
}
