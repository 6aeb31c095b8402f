/*
 * value_io.h - what the sequence and optional kernels share: reading the
 * kinds of a node's inputs and outputs (ABI 1.3) and moving elements with
 * the host's value services. Kernels only; see qkv_plugin.h for the
 * services' contracts.
 */
#ifndef QKV_OPS_VALUE_IO_H
#define QKV_OPS_VALUE_IO_H

#include <stddef.h>

#include "kernel_util.h"

/* The io struct comes from a host that knows kinds (ABI 1.3 or newer). */
static inline bool qkv_io_has_kinds(const qkv_kernel_io *io)
{
    return io->struct_size >= offsetof(qkv_kernel_io, output_kinds) + sizeof(io->output_kinds);
}

/* The kind of input k: a tensor unless the host says otherwise. */
static inline qkv_type_kind qkv_input_kind(const qkv_kernel_io *io, size_t k)
{
    if (!qkv_io_has_kinds(io) || !io->input_kinds || k >= io->n_inputs)
        return QKV_KIND_TENSOR;
    return io->input_kinds[k];
}

/* The kind of output k as the host set it before infer. */
static inline qkv_type_kind qkv_output_kind(const qkv_kernel_io *io, size_t k)
{
    if (!qkv_io_has_kinds(io) || !io->output_kinds || k >= io->n_outputs)
        return QKV_KIND_TENSOR;
    return io->output_kinds[k];
}

/* Infer: output k is a value of `kind` with elements of `dtype`. */
qkv_status qkv_set_output_value(qkv_kernel_io *io, size_t k, qkv_type_kind kind, qkv_dtype dtype);

/* Init: the host has the value services (ABI 1.3); an error naming the node otherwise. */
qkv_status qkv_value_services_check(const qkv_host_api *host, const qkv_node_ctx *node);

/* Input k is a sequence or optional whose contents are known now (compute,
 * or the infer the host runs just before it). */
static inline bool qkv_value_known(const qkv_kernel_io *io, size_t k)
{
    return qkv_input_kind(io, k) != QKV_KIND_TENSOR && io->inputs[k].data != NULL;
}

/* Input k is given: a sequence or optional (even of an unknown element
 * type), or a tensor with a type (an omitted input has none). */
static inline bool qkv_value_present(const qkv_kernel_io *io, size_t k)
{
    return k < io->n_inputs &&
           (qkv_input_kind(io, k) != QKV_KIND_TENSOR || io->inputs[k].dtype != QKV_DTYPE_UNDEFINED);
}

/* Appends a copy of t to output k. */
static inline qkv_status qkv_value_push(qkv_kernel_io *io, size_t k, const qkv_tensor *t)
{
    return io->host->value_append(io, k, t->dtype, t->rank, t->dims, t->data, NULL);
}

/* Appends copies of elements [from, to) of input `in` to output `out`. */
qkv_status qkv_value_copy_range(qkv_kernel_io *io, size_t in, size_t from, size_t to, size_t out);

/* A scalar position (one int32/int64 element) from input k into *pos,
 * normalised against n: valid in [-n, n) or, with `inclusive`, [-n, n].
 * QKV_ERR_SHAPE / QKV_ERR_TYPE / QKV_ERR_INVALID_ARGUMENT (out of range)
 * with a message naming `what`. */
qkv_status qkv_value_position(qkv_kernel_io *io, size_t k, size_t n, bool inclusive,
                              const char *what, size_t *pos);

#endif /* QKV_OPS_VALUE_IO_H */
