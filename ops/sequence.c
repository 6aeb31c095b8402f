/*
 * sequence.c - SequenceEmpty, SequenceConstruct, SequenceInsert,
 * SequenceErase, SequenceAt, SequenceLength (opset 11).
 *
 * A sequence lives in the host (ABI 1.3 value services): these kernels read
 * it with host->value_length / value_element and build their output with
 * host->value_append, which copies each element (a sequence output owns its
 * tensors, so the input sequence may die while the output lives on).
 * Deviations: SequenceAt of a string sequence is QKV_ERR_UNSUPPORTED (its
 * output would need strings allocated in compute); positions may be a
 * one-element 1-D tensor as well as a scalar (the ONNX test data has one).
 */
#include <stdlib.h>
#include <string.h>

#include "value_io.h"

/* ---- init shared by the sequence kernels --------------------------------- */

static qkv_status seq_init(const qkv_kernel *kernel, const qkv_host_api *host,
                           const qkv_node_ctx *node, void **state)
{
    (void)kernel;
    (void)state;
    return qkv_value_services_check(host, node);
}

/* Input k must be a sequence. */
static qkv_status need_sequence(qkv_kernel_io *io, size_t k)
{
    if (qkv_input_kind(io, k) != QKV_KIND_SEQUENCE)
        return KERR(io, QKV_ERR_TYPE, "input %zu must be a sequence", k);
    return QKV_OK;
}

/* The element type of output sequence k: the input's when known. */
static qkv_status sequence_out(qkv_kernel_io *io, size_t from_input)
{
    qkv_status st = need_sequence(io, from_input);
    if (st != QKV_OK)
        return st;
    return qkv_set_output_value(io, 0, QKV_KIND_SEQUENCE, io->inputs[from_input].dtype);
}

/* A tensor joining a sequence must have its element type. */
static qkv_status same_elements(qkv_kernel_io *io, qkv_dtype seq, qkv_dtype t)
{
    if (seq != QKV_DTYPE_UNDEFINED && t != QKV_DTYPE_UNDEFINED && seq != t)
        return KERR(io, QKV_ERR_TYPE, "the tensor is %s but the sequence holds %s",
                    io->host->dtype_name(t), io->host->dtype_name(seq));
    return QKV_OK;
}

/* ---- SequenceEmpty ---------------------------------------------------------- */

static qkv_status empty_init(const qkv_kernel *kernel, const qkv_host_api *host,
                             const qkv_node_ctx *node, void **state)
{
    (void)kernel;
    int64_t dtype;
    qkv_status st = qkv_value_services_check(host, node);
    if (st == QKV_OK)
        st = host->attr_int(node, "dtype", QKV_DTYPE_FLOAT, &dtype);
    if (st != QKV_OK)
        return st;
    if (dtype <= QKV_DTYPE_UNDEFINED || dtype >= QKV_DTYPE_COUNT)
        return NERR(host, node, QKV_ERR_TYPE, "attribute 'dtype' %lld is not an element type",
                    (long long)dtype);
    qkv_dtype *s = malloc(sizeof *s);
    if (!s)
        return NERR(host, node, QKV_ERR_OUT_OF_MEMORY, "kernel state");
    *s = (qkv_dtype)dtype;
    *state = s;
    return QKV_OK;
}

static void empty_destroy(void *state) { free(state); }

static qkv_status empty_infer(void *state, qkv_kernel_io *io)
{
    return qkv_set_output_value(io, 0, QKV_KIND_SEQUENCE, *(const qkv_dtype *)state);
}

static qkv_status empty_compute(const void *state, qkv_kernel_io *io)
{
    (void)state;
    (void)io;
    return QKV_OK; /* the host hands over every sequence output empty */
}

/* ---- SequenceConstruct -------------------------------------------------------- */

static qkv_status construct_infer(void *state, qkv_kernel_io *io)
{
    (void)state;
    for (size_t i = 0; i < io->n_inputs; i++) {
        if (qkv_input_kind(io, i) != QKV_KIND_TENSOR)
            return KERR(io, QKV_ERR_TYPE, "input %zu must be a tensor", i);
        if (io->inputs[i].dtype != io->inputs[0].dtype &&
            io->inputs[i].dtype != QKV_DTYPE_UNDEFINED &&
            io->inputs[0].dtype != QKV_DTYPE_UNDEFINED)
            return KERR(io, QKV_ERR_TYPE,
                        "input %zu is %s but input 0 is %s: a sequence holds one "
                        "element type",
                        i, io->host->dtype_name(io->inputs[i].dtype),
                        io->host->dtype_name(io->inputs[0].dtype));
    }
    return qkv_set_output_value(io, 0, QKV_KIND_SEQUENCE, io->inputs[0].dtype);
}

static qkv_status construct_compute(const void *state, qkv_kernel_io *io)
{
    (void)state;
    for (size_t i = 0; i < io->n_inputs; i++) {
        qkv_status st = qkv_value_push(io, 0, &io->inputs[i]);
        if (st != QKV_OK)
            return st;
    }
    return QKV_OK;
}

/* ---- SequenceInsert ------------------------------------------------------------- */

static qkv_status insert_infer(void *state, qkv_kernel_io *io)
{
    (void)state;
    if (qkv_input_kind(io, 1) != QKV_KIND_TENSOR)
        return KERR(io, QKV_ERR_TYPE, "input 1 must be a tensor");
    qkv_status st = same_elements(io, io->inputs[0].dtype, io->inputs[1].dtype);
    if (st != QKV_OK)
        return st;
    st = sequence_out(io, 0);
    if (st == QKV_OK && io->outputs[0].dtype == QKV_DTYPE_UNDEFINED)
        io->outputs[0].dtype = io->inputs[1].dtype;
    return st;
}

static qkv_status insert_compute(const void *state, qkv_kernel_io *io)
{
    (void)state;
    size_t n, pos;
    qkv_status st = io->host->value_length(io, 0, &n);
    if (st != QKV_OK)
        return st;
    pos = n;
    if (qkv_present(io, 2)) {
        st = qkv_value_position(io, 2, n, true, "position", &pos);
        if (st != QKV_OK)
            return st;
    }
    if (n) {
        qkv_tensor first;
        st = io->host->value_element(io, 0, 0, &first);
        if (st == QKV_OK)
            st = same_elements(io, first.dtype, io->inputs[1].dtype);
    }
    if (st == QKV_OK)
        st = qkv_value_copy_range(io, 0, 0, pos, 0);
    if (st == QKV_OK)
        st = qkv_value_push(io, 0, &io->inputs[1]);
    if (st == QKV_OK)
        st = qkv_value_copy_range(io, 0, pos, n, 0);
    return st;
}

/* ---- SequenceErase -------------------------------------------------------------- */

static qkv_status erase_infer(void *state, qkv_kernel_io *io)
{
    (void)state;
    return sequence_out(io, 0);
}

static qkv_status erase_compute(const void *state, qkv_kernel_io *io)
{
    (void)state;
    size_t n, pos;
    qkv_status st = io->host->value_length(io, 0, &n);
    if (st != QKV_OK)
        return st;
    if (n == 0)
        return KERR(io, QKV_ERR_INVALID_ARGUMENT, "cannot erase from an empty sequence");
    pos = n - 1;
    if (qkv_present(io, 1)) {
        st = qkv_value_position(io, 1, n, false, "position", &pos);
        if (st != QKV_OK)
            return st;
    }
    st = qkv_value_copy_range(io, 0, 0, pos, 0);
    if (st == QKV_OK)
        st = qkv_value_copy_range(io, 0, pos + 1, n, 0);
    return st;
}

/* ---- SequenceAt ------------------------------------------------------------------ */

/* The element the position input names (contents known). */
static qkv_status at_element(qkv_kernel_io *io, qkv_tensor *out)
{
    size_t n, pos;
    qkv_status st = io->host->value_length(io, 0, &n);
    if (st == QKV_OK)
        st = qkv_value_position(io, 1, n, false, "position", &pos);
    if (st == QKV_OK)
        st = io->host->value_element(io, 0, pos, out);
    return st;
}

static qkv_status at_infer(void *state, qkv_kernel_io *io)
{
    (void)state;
    qkv_status st = need_sequence(io, 0);
    if (st != QKV_OK)
        return st;
    qkv_tensor *y = &io->outputs[0];
    y->dtype = io->inputs[0].dtype;
    y->rank = -1; /* known only from the contents, at run time */
    if (!qkv_value_known(io, 0) || !io->inputs[1].data)
        return QKV_OK;
    qkv_tensor e;
    st = at_element(io, &e);
    if (st != QKV_OK)
        return st;
    if (e.dtype == QKV_DTYPE_STRING)
        return KERR(io, QKV_ERR_UNSUPPORTED, "SequenceAt of a string sequence");
    qkv_set_shape(y, e.dtype, e.rank, e.dims);
    return QKV_OK;
}

static qkv_status at_compute(const void *state, qkv_kernel_io *io)
{
    (void)state;
    qkv_tensor e;
    qkv_status st = at_element(io, &e);
    if (st != QKV_OK)
        return st;
    if (e.data_bytes != io->outputs[0].data_bytes)
        return KERR(io, QKV_ERR_SHAPE, "the element has %zu bytes, the output %zu", e.data_bytes,
                    io->outputs[0].data_bytes);
    if (e.data_bytes)
        memcpy(io->outputs[0].data, e.data, e.data_bytes);
    return QKV_OK;
}

/* ---- SequenceLength --------------------------------------------------------------- */

static qkv_status length_infer(void *state, qkv_kernel_io *io)
{
    (void)state;
    qkv_status st = need_sequence(io, 0);
    if (st == QKV_OK)
        qkv_set_shape(&io->outputs[0], QKV_DTYPE_INT64, 0, NULL);
    return st;
}

static qkv_status length_compute(const void *state, qkv_kernel_io *io)
{
    (void)state;
    size_t n;
    qkv_status st = io->host->value_length(io, 0, &n);
    if (st == QKV_OK)
        *(int64_t *)io->outputs[0].data = (int64_t)n;
    return st;
}

/* ---- descriptors -------------------------------------------------------------------- */

#define SEQ_KERNEL(op, lo, hi, init_fn, infer_fn, compute_fn)                                      \
    {                                                                                              \
        QKV_KERNEL_V1, .domain = "", .op_type = op, .since_version = 11, .min_inputs = lo,         \
                       .max_inputs = hi, .min_outputs = 1, .max_outputs = 1,                       \
                       .flags = QKV_KERNEL_VALUES, .init = init_fn, .infer = infer_fn,             \
                       .compute = compute_fn,                                                      \
    }

static const qkv_kernel kernels[] = {
    {
        QKV_KERNEL_V1,
        .domain = "",
        .op_type = "SequenceEmpty",
        .since_version = 11,
        .min_inputs = 0,
        .max_inputs = 0,
        .min_outputs = 1,
        .max_outputs = 1,
        .flags = QKV_KERNEL_VALUES,
        .init = empty_init,
        .infer = empty_infer,
        .compute = empty_compute,
        .destroy = empty_destroy,
    },
    SEQ_KERNEL("SequenceConstruct", 1, -1, seq_init, construct_infer, construct_compute),
    SEQ_KERNEL("SequenceInsert", 2, 3, seq_init, insert_infer, insert_compute),
    SEQ_KERNEL("SequenceErase", 1, 2, seq_init, erase_infer, erase_compute),
    SEQ_KERNEL("SequenceAt", 2, 2, seq_init, at_infer, at_compute),
    SEQ_KERNEL("SequenceLength", 1, 1, seq_init, length_infer, length_compute),
};

const qkv_kernel *qkv_ops_sequence(size_t *count)
{
    *count = sizeof kernels / sizeof kernels[0];
    return kernels;
}
