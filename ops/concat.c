/*
 * concat.c - Concat (opsets 1, 4, 11, 13).
 *
 * Joins its inputs along `axis`: all have the same rank (>= 1) and dims
 * except on the axis. Opset 1 defaults `axis` to 1; 4+ requires it;
 * negative axes from 11. Zero-sized inputs are allowed and contribute
 * nothing.
 *
 * For each of the `outer` (product of dims before the axis) rows, the output
 * row is the inputs' rows one after the other: one memcpy per (row, input),
 * rows split across threads when the output is large.
 * Any element type of whole bytes (strings are not supported).
 */
#include <stdlib.h>
#include <string.h>

#include "kernel_util.h"
#include "qkv.h"

typedef struct concat_state {
    int64_t axis;
} concat_state;

static qkv_status concat_init(const qkv_kernel *k, const qkv_host_api *host,
                              const qkv_node_ctx *node, void **state)
{
    (void)k;
    int64_t opset = host->node_opset(node);
    if (opset >= 4 && host->attr_type(node, "axis") == QKV_ATTR_UNDEFINED)
        return NERR(host, node, QKV_ERR_INVALID_MODEL, "attribute 'axis' is required");
    concat_state *s = calloc(1, sizeof *s);
    if (!s)
        return NERR(host, node, QKV_ERR_OUT_OF_MEMORY, "kernel state");
    qkv_status st = host->attr_int(node, "axis", 1, &s->axis);
    if (st == QKV_OK && s->axis < 0 && opset < 11)
        st = NERR(host, node, QKV_ERR_INVALID_MODEL,
                  "attribute 'axis' is %lld; negative axes need opset 11", (long long)s->axis);
    if (st != QKV_OK) {
        free(s);
        return st;
    }
    *state = s;
    return QKV_OK;
}

static void concat_destroy(void *state) { free(state); }

static qkv_status concat_infer(void *state, qkv_kernel_io *io)
{
    const concat_state *s = state;
    qkv_tensor *y = &io->outputs[0];
    const qkv_tensor *first = NULL; /* the first input of known rank */
    size_t first_i = 0;
    y->dtype = io->inputs[0].dtype;
    y->rank = -1;
    for (size_t i = 0; i < io->n_inputs; i++) {
        const qkv_tensor *t = &io->inputs[i];
        if (t->dtype != y->dtype && t->dtype != QKV_DTYPE_UNDEFINED &&
            y->dtype != QKV_DTYPE_UNDEFINED)
            return KERR(io, QKV_ERR_TYPE, "input %zu has type %s, input 0 has %s", i,
                        qkv_dtype_name(t->dtype), qkv_dtype_name(y->dtype));
        if (y->dtype == QKV_DTYPE_UNDEFINED)
            y->dtype = t->dtype;
        if (t->rank < 0)
            continue;
        if (!first) {
            first = t;
            first_i = i;
        } else if (t->rank != first->rank) {
            return KERR(io, QKV_ERR_SHAPE, "input %zu has rank %d, input %zu has rank %d", i,
                        t->rank, first_i, first->rank);
        }
    }
    if (!first)
        return QKV_OK;
    int32_t r = first->rank, axis;
    if (r == 0)
        return KERR(io, QKV_ERR_SHAPE, "input %zu is a scalar; Concat needs rank >= 1", first_i);
    if (!qkv_axis_normalize(s->axis, r, false, &axis))
        return KERR(io, QKV_ERR_SHAPE, "axis %lld is out of range for inputs of rank %d",
                    (long long)s->axis, r);
    y->rank = r;
    for (int32_t k = 0; k < r; k++)
        y->dims[k] = -1;
    int64_t sum = 0;
    bool sum_known = true;
    for (size_t i = 0; i < io->n_inputs; i++) {
        const qkv_tensor *t = &io->inputs[i];
        if (t->rank < 0) {
            sum_known = false;
            continue;
        }
        for (int32_t k = 0; k < r; k++) {
            int64_t d = t->dims[k];
            if (k == axis) {
                if (d < 0)
                    sum_known = false;
                else if (__builtin_add_overflow(sum, d, &sum))
                    return KERR(io, QKV_ERR_SHAPE, "the output's axis %d overflows", axis);
                continue;
            }
            if (d < 0)
                continue;
            if (y->dims[k] >= 0 && y->dims[k] != d) {
                char a[160], b[160];
                size_t j = 0; /* an input that set dim k, for the message */
                while (io->inputs[j].rank < 0 || io->inputs[j].dims[k] != y->dims[k])
                    j++;
                return KERR(io, QKV_ERR_SHAPE,
                            "input %zu has shape %s, input %zu has %s: they differ on axis %d, "
                            "not only on the concat axis %d",
                            i, qkv_dims_str(t, a, sizeof a), j,
                            qkv_dims_str(&io->inputs[j], b, sizeof b), k, axis);
            }
            y->dims[k] = d;
        }
    }
    y->dims[axis] = sum_known ? sum : -1;
    return QKV_OK;
}

typedef struct concat_job {
    qkv_kernel_io *io;
    size_t row_bytes; /* one output row (dims from the axis on): the sum of the inputs' rows */
    size_t elem_bytes;
    int32_t axis;
} concat_job;

/* Copies output rows [begin, end). */
static void concat_range(void *arg, size_t begin, size_t end)
{
    const concat_job *j = arg;
    const qkv_kernel_io *io = j->io;
    unsigned char *out = io->outputs[0].data;
    size_t off = 0; /* byte offset of input i's part within an output row */
    for (size_t i = 0; i < io->n_inputs; i++) {
        const qkv_tensor *t = &io->inputs[i];
        size_t part = j->elem_bytes;
        for (int32_t k = j->axis; k < t->rank; k++)
            part *= (size_t)t->dims[k];
        if (part == 0)
            continue;
        const unsigned char *in = t->data;
        for (size_t o = begin; o < end; o++) {
            unsigned char *dst = out + o * j->row_bytes + off;
            const unsigned char *src = in + o * part;
            if (dst != src) /* a KV cache extended in place: the input is already there */
                memcpy(dst, src, part);
        }
        off += part;
    }
}

static qkv_status concat_compute(const void *state, qkv_kernel_io *io)
{
    const concat_state *s = state;
    const qkv_tensor *y = &io->outputs[0];
    int32_t axis;
    qkv_axis_normalize(s->axis, y->rank, false, &axis); /* checked in infer */
    concat_job job = {.io = io, .elem_bytes = qkv_elem_bytes(y->dtype), .axis = axis};
    if (job.elem_bytes == 0)
        return KERR(io, QKV_ERR_TYPE, "type %s is not supported", qkv_dtype_name(y->dtype));
    size_t outer = 1;
    for (int32_t k = 0; k < axis; k++)
        outer *= (size_t)y->dims[k];
    job.row_bytes = job.elem_bytes;
    for (int32_t k = axis; k < y->rank; k++)
        job.row_bytes *= (size_t)y->dims[k];
    if (outer == 0 || job.row_bytes == 0)
        return QKV_OK;
    qkv_run_range(io, outer, outer * job.row_bytes, concat_range, &job);
    return QKV_OK;
}

static const qkv_kernel kernels[] = {
    {
        QKV_KERNEL_V1,
        .domain = "",
        .op_type = "Concat",
        .since_version = 1,
        .min_inputs = 1,
        .max_inputs = -1,
        .min_outputs = 1,
        .max_outputs = 1,
        .n_input_types = 1,
        .input_types = {QKV_TYPES_BYTES},
        .init = concat_init,
        .infer = concat_infer,
        .compute = concat_compute,
        .destroy = concat_destroy,
    },
};

/* The concat family: Concat. */
const qkv_kernel *qkv_ops_concat(size_t *count)
{
    *count = sizeof kernels / sizeof kernels[0];
    return kernels;
}
