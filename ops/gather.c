/*
 * gather.c - Gather (opsets 1, 11, 13), GatherElements (11, 13) and GatherND
 * (11, 12, 13).
 *
 * Gather: out[a..., i..., b...] = data[a..., indices[i...], b...] along
 * `axis`; output rank r + q - 1 (a scalar index drops the axis). Each
 * (outer, index) pair copies one contiguous block of the dims after `axis`,
 * so the kernel is a loop of fixed-size memcpys, split across threads when
 * the output is large.
 *
 * GatherElements: out[i][j][k] = data[indices[i][j][k]][j][k] (for axis 0);
 * indices has data's rank and dims no larger than data's off the axis.
 *
 * GatherND (11, 12, 13): each length-k row of indices (the last dim) picks
 * a slice data[b..., i0, ..., ik-1, ...] within its batch (the first
 * batch_dims dims, shared by data and indices); output dims
 * indices.dims[:-1] + data.dims[batch_dims + k:].
 *
 * Indices are int32 or int64, negative ones count from the end. An index
 * out of range is QKV_ERR_INVALID_ARGUMENT from compute, naming its value
 * and position; all indices are checked before anything is read.
 * Any element type of whole bytes (strings are not supported).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "kernel_util.h"
#include "qkv.h"

typedef struct gather_state {
    int64_t axis;
    int64_t batch_dims; /* GatherND */
} gather_state;

/* Gather, GatherElements: `axis`; GatherND: `batch_dims` (k tells which). */
static qkv_status gather_init(const qkv_kernel *k, const qkv_host_api *host,
                              const qkv_node_ctx *node, void **state)
{
    gather_state *s = calloc(1, sizeof *s);
    if (!s)
        return NERR(host, node, QKV_ERR_OUT_OF_MEMORY, "kernel state");
    qkv_status st;
    if (strcmp(k->op_type, "GatherND") == 0) {
        st = host->attr_int(node, "batch_dims", 0, &s->batch_dims);
        if (st == QKV_OK && s->batch_dims < 0)
            st = NERR(host, node, QKV_ERR_INVALID_MODEL,
                      "attribute 'batch_dims' is %lld, expected >= 0", (long long)s->batch_dims);
    } else {
        st = host->attr_int(node, "axis", 0, &s->axis);
        if (st == QKV_OK && s->axis < 0 && host->node_opset(node) < 11)
            st = NERR(host, node, QKV_ERR_INVALID_MODEL,
                      "attribute 'axis' is %lld; negative axes need opset 11", (long long)s->axis);
    }
    if (st != QKV_OK) {
        free(s);
        return st;
    }
    *state = s;
    return QKV_OK;
}

static void gather_destroy(void *state) { free(state); }

/* Formats the coordinates of flat element `flat` of t as "[1,0]" ("[]" for a scalar). */
static const char *coords_str(const qkv_tensor *t, size_t flat, char *buf, size_t cap)
{
    size_t c[QKV_MAX_RANK];
    for (int32_t k = t->rank - 1; k >= 0; k--) {
        size_t d = (size_t)t->dims[k];
        c[k] = d ? flat % d : 0;
        flat = d ? flat / d : 0;
    }
    size_t used = (size_t)snprintf(buf, cap, "[");
    for (int32_t k = 0; k < t->rank && used < cap; k++)
        used += (size_t)snprintf(buf + used, cap - used, "%s%zu", k ? "," : "", c[k]);
    if (used < cap)
        snprintf(buf + used, cap - used, "]");
    return buf;
}

/* Checks every index of input 1 against [-dim, dim); QKV_ERR_INVALID_ARGUMENT
 * naming the first bad one. */
static qkv_status check_indices(qkv_kernel_io *io, int64_t dim, int32_t axis)
{
    const qkv_tensor *ind = &io->inputs[1];
    size_t n = qkv_numel(ind);
    for (size_t i = 0; i < n; i++) {
        int64_t v = qkv_int_at(ind, i);
        if (v < -dim || v >= dim) {
            char pos[160];
            return KERR(io, QKV_ERR_INVALID_ARGUMENT,
                        "input 1 'indices'%s = %lld is out of range [%lld, %lld) for axis %d of "
                        "input 0 'data' (size %lld)",
                        coords_str(ind, i, pos, sizeof pos), (long long)v, (long long)-dim,
                        (long long)dim, axis, (long long)dim);
        }
    }
    return QKV_OK;
}

/* Element bytes of input 0 'data' into *eb; QKV_ERR_TYPE unless its dtype
 * has whole-byte elements. */
static qkv_status data_elem_bytes(qkv_kernel_io *io, size_t *eb)
{
    *eb = qkv_elem_bytes(io->inputs[0].dtype);
    if (*eb == 0)
        return KERR(io, QKV_ERR_TYPE, "input 0 'data' has type %s, not supported",
                    qkv_dtype_name(io->inputs[0].dtype));
    return QKV_OK;
}

/* The axis of input 0 'data' normalised into [0, rank) in *axis, or -1
 * while data's rank is unknown. QKV_ERR_SHAPE for a scalar data or an axis
 * out of range. */
static qkv_status data_axis(const gather_state *s, qkv_kernel_io *io, int32_t *axis)
{
    const qkv_tensor *x = &io->inputs[0];
    *axis = -1;
    if (x->rank == 0)
        return KERR(io, QKV_ERR_SHAPE, "input 0 'data' has rank 0, expected >= 1");
    if (x->rank > 0 && !qkv_axis_normalize(s->axis, x->rank, false, axis))
        return KERR(io, QKV_ERR_SHAPE, "axis %lld is out of range for input 0 'data' of rank %d",
                    (long long)s->axis, x->rank);
    return QKV_OK;
}

/* ---- Gather ------------------------------------------------------------------- */

static qkv_status gather_infer(void *state, qkv_kernel_io *io)
{
    const gather_state *s = state;
    const qkv_tensor *x = &io->inputs[0], *ind = &io->inputs[1];
    qkv_tensor *y = &io->outputs[0];
    y->dtype = x->dtype;
    y->rank = -1;
    int32_t axis;
    qkv_status st = data_axis(s, io, &axis);
    if (st != QKV_OK || axis < 0 || ind->rank < 0)
        return st;
    int32_t rank = x->rank + ind->rank - 1;
    if (rank > QKV_MAX_RANK)
        return KERR(io, QKV_ERR_UNSUPPORTED, "output rank %d exceeds the maximum %d", rank,
                    QKV_MAX_RANK);
    int32_t r = 0;
    for (int32_t k = 0; k < axis; k++)
        y->dims[r++] = x->dims[k];
    for (int32_t k = 0; k < ind->rank; k++)
        y->dims[r++] = ind->dims[k];
    for (int32_t k = axis + 1; k < x->rank; k++)
        y->dims[r++] = x->dims[k];
    y->rank = rank;
    return QKV_OK;
}

typedef struct gather_job {
    unsigned char *out;      /* (outer, n_idx, block) */
    const unsigned char *in; /* (outer, axis_dim, block) */
    const qkv_tensor *indices;
    size_t n_idx, block_bytes;
    int64_t axis_dim;
} gather_job;

/* Copies output blocks [begin, end): block b is (outer b / n_idx, index b % n_idx). */
static void gather_range(void *arg, size_t begin, size_t end)
{
    const gather_job *j = arg;
    const size_t bb = j->block_bytes, n_idx = j->n_idx;
    const bool i32 = j->indices->dtype == QKV_DTYPE_INT32;
    const int32_t *ind32 = j->indices->data;
    const int64_t *ind64 = j->indices->data;
    for (size_t b = begin; b < end; b++) {
        size_t o = b / n_idx, i = b % n_idx;
        int64_t v = i32 ? ind32[i] : ind64[i];
        if (v < 0)
            v += j->axis_dim; /* range checked before */
        const unsigned char *src = j->in + (o * (size_t)j->axis_dim + (size_t)v) * bb;
        qkv_copy_block(j->out + b * bb, src, bb);
    }
}

static qkv_status gather_compute(const void *state, qkv_kernel_io *io)
{
    const gather_state *s = state;
    const qkv_tensor *x = &io->inputs[0];
    int32_t axis;
    qkv_axis_normalize(s->axis, x->rank, false, &axis); /* checked in infer */
    size_t eb;
    qkv_status st = data_elem_bytes(io, &eb);
    if (st == QKV_OK)
        st = check_indices(io, x->dims[axis], axis);
    if (st != QKV_OK)
        return st;
    size_t outer = 1, block = eb;
    for (int32_t k = 0; k < axis; k++)
        outer *= (size_t)x->dims[k];
    for (int32_t k = axis + 1; k < x->rank; k++)
        block *= (size_t)x->dims[k];
    gather_job job = {
        .out = io->outputs[0].data,
        .in = x->data,
        .indices = &io->inputs[1],
        .n_idx = qkv_numel(&io->inputs[1]),
        .block_bytes = block,
        .axis_dim = x->dims[axis],
    };
    size_t n_blocks = outer * job.n_idx;
    if (n_blocks == 0 || block == 0)
        return QKV_OK;
    qkv_run_range(io, n_blocks, n_blocks * block, gather_range, &job);
    return QKV_OK;
}

/* ---- GatherElements ------------------------------------------------------------- */

static qkv_status gather_elements_infer(void *state, qkv_kernel_io *io)
{
    const gather_state *s = state;
    const qkv_tensor *x = &io->inputs[0], *ind = &io->inputs[1];
    qkv_tensor *y = &io->outputs[0];
    qkv_set_shape(y, x->dtype, ind->rank, ind->dims);
    int32_t axis;
    qkv_status st = data_axis(s, io, &axis);
    if (st != QKV_OK || axis < 0 || ind->rank < 0)
        return st;
    if (ind->rank != x->rank)
        return KERR(io, QKV_ERR_SHAPE,
                    "input 1 'indices' has rank %d, expected the rank of input 0 'data' (%d)",
                    ind->rank, x->rank);
    for (int32_t k = 0; k < x->rank; k++)
        if (k != axis && ind->dims[k] >= 0 && x->dims[k] >= 0 && ind->dims[k] > x->dims[k])
            return KERR(io, QKV_ERR_SHAPE,
                        "input 1 'indices' has dim %d of size %lld, larger than input 0 "
                        "'data''s %lld",
                        k, (long long)ind->dims[k], (long long)x->dims[k]);
    return QKV_OK;
}

static qkv_status gather_elements_compute(const void *state, qkv_kernel_io *io)
{
    const gather_state *s = state;
    const qkv_tensor *x = &io->inputs[0], *ind = &io->inputs[1];
    int32_t axis, r = x->rank;
    qkv_axis_normalize(s->axis, r, false, &axis); /* checked in infer */
    size_t eb;
    qkv_status st = data_elem_bytes(io, &eb);
    if (st == QKV_OK)
        st = check_indices(io, x->dims[axis], axis);
    if (st != QKV_OK)
        return st;
    size_t n = qkv_numel(ind);
    if (n == 0)
        return QKV_OK;
    size_t ds[QKV_MAX_RANK]; /* data strides in elements */
    qkv_contiguous_strides(x, ds);
    const size_t row = (size_t)ind->dims[r - 1], rows = n / row;
    const int64_t axis_dim = x->dims[axis];
    const unsigned char *in = x->data;
    unsigned char *out = io->outputs[0].data;
    size_t c[QKV_MAX_RANK] = {0}; /* coordinates of the row in indices' dims [0, r-1) */
    for (size_t rw = 0; rw < rows; rw++) {
        size_t base = 0; /* data offset of the row, without the axis coordinate */
        for (int32_t k = 0; k < r - 1; k++)
            if (k != axis)
                base += c[k] * ds[k];
        for (size_t jj = 0; jj < row; jj++) {
            size_t i = rw * row + jj;
            int64_t v = qkv_int_at(ind, i);
            if (v < 0)
                v += axis_dim;
            size_t off = base + (size_t)v * ds[axis];
            if (axis != r - 1)
                off += jj; /* the last dim's stride is 1 */
            qkv_copy_block(out + i * eb, in + off * eb, eb);
        }
        for (int32_t k = r - 2; k >= 0; k--) { /* next row */
            if (++c[k] < (size_t)ind->dims[k])
                break;
            c[k] = 0;
        }
    }
    return QKV_OK;
}

/* ---- GatherND ----------------------------------------------------------------------- */

static qkv_status gather_nd_infer(void *state, qkv_kernel_io *io)
{
    const gather_state *s = state;
    const qkv_tensor *x = &io->inputs[0], *ind = &io->inputs[1];
    qkv_tensor *y = &io->outputs[0];
    y->dtype = x->dtype;
    y->rank = -1;
    if (x->rank == 0 || ind->rank == 0)
        return KERR(io, QKV_ERR_SHAPE, "input %d has rank 0, expected >= 1", x->rank == 0 ? 0 : 1);
    if (x->rank < 0 || ind->rank < 0)
        return QKV_OK;
    int64_t b = s->batch_dims;
    if (b >= x->rank || b >= ind->rank)
        return KERR(io, QKV_ERR_SHAPE,
                    "batch_dims %lld must be less than the ranks of input 0 'data' (%d) and "
                    "input 1 'indices' (%d)",
                    (long long)b, x->rank, ind->rank);
    for (int64_t k = 0; k < b; k++)
        if (x->dims[k] >= 0 && ind->dims[k] >= 0 && x->dims[k] != ind->dims[k])
            return KERR(io, QKV_ERR_SHAPE,
                        "batch dim %lld is %lld in input 0 'data' but %lld in input 1 'indices'",
                        (long long)k, (long long)x->dims[k], (long long)ind->dims[k]);
    int64_t k = ind->dims[ind->rank - 1];
    if (k < 0)
        return QKV_OK; /* the output rank depends on it */
    if (k < 1 || k > x->rank - b)
        return KERR(io, QKV_ERR_SHAPE,
                    "the last dim of input 1 'indices' is %lld, expected 1 to %lld (rank of "
                    "input 0 'data' minus batch_dims)",
                    (long long)k, (long long)(x->rank - b));
    int32_t r = 0;
    for (int32_t j = 0; j < ind->rank - 1; j++)
        y->dims[r++] = ind->dims[j];
    for (int64_t j = b + k; j < x->rank; j++)
        y->dims[r++] = x->dims[j];
    y->rank = r;
    return QKV_OK;
}

static qkv_status gather_nd_compute(const void *state, qkv_kernel_io *io)
{
    const gather_state *s = state;
    const qkv_tensor *x = &io->inputs[0], *ind = &io->inputs[1];
    size_t eb;
    qkv_status st = data_elem_bytes(io, &eb);
    if (st != QKV_OK)
        return st;
    const int32_t b = (int32_t)s->batch_dims, k = (int32_t)ind->dims[ind->rank - 1];
    size_t batches = 1, per_batch = 1, block = eb, batch_blocks = 1;
    size_t stride[QKV_MAX_RANK]; /* blocks per step of index component j */
    for (int32_t j = 0; j < b; j++)
        batches *= (size_t)x->dims[j];
    for (int32_t j = b; j < ind->rank - 1; j++)
        per_batch *= (size_t)ind->dims[j];
    for (int32_t j = b + k; j < x->rank; j++)
        block *= (size_t)x->dims[j];
    for (int32_t j = k - 1; j >= 0; j--) {
        stride[j] = batch_blocks;
        batch_blocks *= (size_t)x->dims[b + j];
    }
    /* check every index before reading anything */
    size_t n = qkv_numel(ind);
    for (size_t i = 0; i < n; i++) {
        int64_t v = qkv_int_at(ind, i), dim = x->dims[b + (int32_t)(i % (size_t)k)];
        if (v < -dim || v >= dim) {
            char pos[160];
            return KERR(io, QKV_ERR_INVALID_ARGUMENT,
                        "input 1 'indices'%s = %lld is out of range [%lld, %lld) for axis %d of "
                        "input 0 'data'",
                        coords_str(ind, i, pos, sizeof pos), (long long)v, (long long)-dim,
                        (long long)dim, b + (int32_t)(i % (size_t)k));
        }
    }
    const unsigned char *in = x->data;
    unsigned char *out = io->outputs[0].data;
    for (size_t bt = 0; bt < batches; bt++)
        for (size_t i = 0; i < per_batch; i++) {
            size_t row = bt * per_batch + i, off = bt * batch_blocks;
            for (int32_t j = 0; j < k; j++) {
                int64_t v = qkv_int_at(ind, row * (size_t)k + (size_t)j);
                off += (size_t)(v < 0 ? v + x->dims[b + j] : v) * stride[j];
            }
            qkv_copy_block(out + row * block, in + off * block, block);
        }
    return QKV_OK;
}

/* Two inputs (data, indices), one output. */
#define GATHER_KERNEL(OP, SINCE, INFER, COMPUTE)                                                   \
    {                                                                                              \
        QKV_KERNEL_V1, .domain = "", .op_type = OP, .since_version = SINCE, .min_inputs = 2,       \
                       .max_inputs = 2, .min_outputs = 1, .max_outputs = 1, .n_input_types = 2,    \
                       .input_types = {QKV_TYPES_BYTES, QKV_TYPES_INDEX}, .init = gather_init,     \
                       .infer = INFER, .compute = COMPUTE, .destroy = gather_destroy,              \
    }

static const qkv_kernel kernels[] = {
    GATHER_KERNEL("Gather", 1, gather_infer, gather_compute),
    GATHER_KERNEL("GatherElements", 11, gather_elements_infer, gather_elements_compute),
    GATHER_KERNEL("GatherND", 11, gather_nd_infer, gather_nd_compute),
};

/* The gather family: Gather, GatherElements, GatherND. */
const qkv_kernel *qkv_ops_gather(size_t *count)
{
    *count = sizeof kernels / sizeof kernels[0];
    return kernels;
}
