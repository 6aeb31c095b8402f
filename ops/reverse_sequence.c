/*
 * reverse_sequence.c - ReverseSequence (opset 10): for each batch entry b,
 * reverses the first sequence_lens[b] steps along the time axis and copies
 * the rest.
 *
 * input has rank >= 2; batch_axis (default 1) and time_axis (default 0) are
 * 0 and 1 in either order; sequence_lens is int64 of shape (batch). A length
 * outside [0, time steps] is QKV_ERR_INVALID_ARGUMENT naming the entry. Any
 * whole-byte element type (strings are not supported).
 */
#include <stdlib.h>
#include <string.h>

#include "kernel_util.h"
#include "qkv.h"

typedef struct revseq_state {
    int64_t batch_axis, time_axis;
} revseq_state;

static qkv_status revseq_init(const qkv_kernel *kernel, const qkv_host_api *host,
                              const qkv_node_ctx *node, void **state)
{
    (void)kernel;
    int64_t ba, ta;
    qkv_status st = host->attr_int(node, "batch_axis", 1, &ba);
    if (st == QKV_OK)
        st = host->attr_int(node, "time_axis", 0, &ta);
    if (st != QKV_OK)
        return st;
    if (!((ba == 0 && ta == 1) || (ba == 1 && ta == 0)))
        return NERR(host, node, QKV_ERR_INVALID_MODEL,
                    "attributes 'batch_axis' %lld and 'time_axis' %lld: expected 0 and 1 in "
                    "either order",
                    (long long)ba, (long long)ta);
    revseq_state *s = malloc(sizeof *s);
    if (!s)
        return NERR(host, node, QKV_ERR_OUT_OF_MEMORY, "kernel state");
    s->batch_axis = ba;
    s->time_axis = ta;
    *state = s;
    return QKV_OK;
}

static void revseq_destroy(void *state) { free(state); }

static qkv_status revseq_infer(void *state, qkv_kernel_io *io)
{
    const revseq_state *s = state;
    const qkv_tensor *x = &io->inputs[0], *lens = &io->inputs[1];
    qkv_set_shape(&io->outputs[0], x->dtype, x->rank, x->dims);
    if (x->rank >= 0 && x->rank < 2)
        return KERR(io, QKV_ERR_SHAPE, "input 0 'input' has rank %d, expected >= 2", x->rank);
    if (lens->rank >= 0 && lens->rank != 1)
        return KERR(io, QKV_ERR_SHAPE, "input 1 'sequence_lens' has rank %d, expected 1",
                    lens->rank);
    if (x->rank >= 2 && lens->rank == 1) {
        int64_t b = x->dims[s->batch_axis], n = lens->dims[0];
        if (b >= 0 && n >= 0 && b != n)
            return KERR(io, QKV_ERR_SHAPE,
                        "input 1 'sequence_lens' has %lld entries, the batch axis %lld of input "
                        "0 has %lld",
                        (long long)n, (long long)s->batch_axis, (long long)b);
    }
    return QKV_OK;
}

static qkv_status revseq_compute(const void *state, qkv_kernel_io *io)
{
    const revseq_state *s = state;
    const qkv_tensor *x = &io->inputs[0], *lens = &io->inputs[1];
    qkv_tensor *y = &io->outputs[0];
    size_t eb = qkv_elem_bytes(x->dtype);
    if (!eb)
        return KERR(io, QKV_ERR_TYPE, "input 0 'input' has type %s, not supported",
                    qkv_dtype_name(x->dtype));
    size_t d1 = (size_t)x->dims[1], inner = eb;
    for (int32_t a = 2; a < x->rank; a++)
        inner *= (size_t)x->dims[a];
    size_t batch = (size_t)x->dims[s->batch_axis];
    int64_t steps = x->dims[s->time_axis];
    if (qkv_numel(lens) != batch)
        return KERR(io, QKV_ERR_SHAPE,
                    "input 1 'sequence_lens' has %zu entries, the batch axis has %zu",
                    qkv_numel(lens), batch);
    for (size_t b = 0; b < batch; b++) {
        int64_t len = qkv_int_at(lens, b);
        if (len < 0 || len > steps)
            return KERR(io, QKV_ERR_INVALID_ARGUMENT,
                        "input 1 'sequence_lens' entry %zu is %lld, outside [0, %lld] (the time "
                        "steps)",
                        b, (long long)len, (long long)steps);
    }
    if (qkv_numel(x) == 0)
        return QKV_OK;
    const unsigned char *src = x->data;
    unsigned char *dst = y->data;
    for (size_t b = 0; b < batch; b++) {
        size_t len = (size_t)qkv_int_at(lens, b);
        for (size_t t = 0; t < (size_t)steps; t++) {
            size_t from = t < len ? len - 1 - t : t;
            size_t o = s->batch_axis == 0 ? b * d1 + t : t * d1 + b;
            size_t i = s->batch_axis == 0 ? b * d1 + from : from * d1 + b;
            memcpy(dst + o * inner, src + i * inner, inner);
        }
    }
    return QKV_OK;
}

static const qkv_kernel kernels[] = {
    {
        QKV_KERNEL_V1,
        .domain = "",
        .op_type = "ReverseSequence",
        .since_version = 10,
        .min_inputs = 2,
        .max_inputs = 2,
        .min_outputs = 1,
        .max_outputs = 1,
        .n_input_types = 2,
        .input_types = {QKV_TYPES_BYTES, QKV_T(INT64)},
        .init = revseq_init,
        .infer = revseq_infer,
        .compute = revseq_compute,
        .destroy = revseq_destroy,
    },
};

/* The reverse_sequence family: ReverseSequence. */
const qkv_kernel *qkv_ops_reverse_sequence(size_t *count)
{
    *count = sizeof kernels / sizeof kernels[0];
    return kernels;
}
