/*
 * control_values.c - sequences and optionals leaving a subgraph: If
 * outputs, Loop-carried values between iterations and Loop outputs
 * (control_flow.h).
 *
 * A body's sequence or optional output lives in a box of the body's frame
 * (value_store.h) until the body runs again. The node takes it from there
 * into a box it owns: the node's output box, or for a Loop-carried value
 * one of the two boxes per value (qkv_body_boxes) that iterations
 * alternate between, like tensors alternate between two work buffers. A
 * box the body filled itself gives up its contents (qkv_box_move: its
 * element array and payloads change owner, nothing is copied or
 * allocated); one that only borrows (a body input or an outer-scope value
 * passed straight through) is copied.
 */
#include <string.h>

#include "control_flow.h"
#include "error.h"
#include "value_store.h"

qkv_type_kind qkv_cf_input_kind(const qkv_kernel_io *io, size_t k)
{
    return io->input_kinds && k < io->n_inputs ? io->input_kinds[k] : QKV_KIND_TENSOR;
}

qkv_type_kind qkv_cf_output_kind(const qkv_kernel_io *io, size_t k)
{
    return io->output_kinds && k < io->n_outputs ? io->output_kinds[k] : QKV_KIND_TENSOR;
}

qkv_type_kind qkv_cf_body_output_kind(const qkv_ir_graph *body, size_t k)
{
    return k < body->n_outputs ? body->values[body->outputs[k]].type_kind : QKV_KIND_TENSOR;
}

bool qkv_cf_last_use(const qkv_tensor *outs, size_t k, size_t n)
{
    for (size_t j = k + 1; j < n; j++)
        if (outs[j].data == outs[k].data)
            return false;
    return true;
}

/* Output k is a tensor; src an optional tensor's box: its element. */
static qkv_status set_unwrapped(qkv_kernel_io *io, size_t k, const qkv_box *src)
{
    if (!src->has_element || src->n != 1)
        return io->host->error(io->host_ctx, QKV_ERR_INVALID_ARGUMENT,
                               "output %zu is a tensor, its value is an empty optional", k);
    return qkv_cf_set_output(io, k, &src->items[0]);
}

qkv_status qkv_cf_set_value(qkv_kernel_io *io, size_t k, const qkv_tensor *src, qkv_type_kind from,
                            bool move)
{
    const qkv_host_ctx *h = qkv_cf_host(io);
    if (k < h->node->n_outputs && h->node->outputs[k] < 0)
        return QKV_OK; /* the node omits this output */
    qkv_type_kind to = qkv_cf_output_kind(io, k);
    if (!qkv_kind_converts(from, to))
        return io->host->error(io->host_ctx, QKV_ERR_TYPE,
                               "output %zu is a %s, the subgraph gives a %s", k, qkv_kind_name(to),
                               qkv_kind_name(from));
    if (to == QKV_KIND_TENSOR)
        return from == QKV_KIND_TENSOR ? qkv_cf_set_output(io, k, src)
                                       : set_unwrapped(io, k, src->data);
    qkv_box *dst = h->out_boxes ? h->out_boxes[k] : NULL;
    if (!dst)
        return io->host->error(io->host_ctx, QKV_ERR_INTERNAL, "output %zu has no box", k);
    qkv_error local;
    qkv_error_clear(&local);
    qkv_status st;
    if (from == QKV_KIND_TENSOR) { /* a tensor wrapped into an optional */
        qkv_box_reset(dst, dst->kind, dst->elem_dtype);
        st = dst->elem_dtype != QKV_DTYPE_UNDEFINED && src->dtype != dst->elem_dtype
                 ? qkv_error_set(&local, QKV_ERR_TYPE, "element 0 is %s, expected %s",
                                 qkv_dtype_name(src->dtype), qkv_dtype_name(dst->elem_dtype))
                 : qkv_box_append(dst, src->dtype, src->rank, src->dims, src->data, NULL, &local);
    } else {
        st = qkv_box_take(dst, src->data, move, &local);
    }
    if (st != QKV_OK)
        return io->host->error(io->host_ctx, st, "output %zu: %s", k, local.message);
    return QKV_OK;
}

qkv_status qkv_cf_carry_value(qkv_kernel_io *io, qkv_box *dst, qkv_type_kind kind, qkv_dtype elem,
                              const qkv_tensor *src, bool move, qkv_tensor *val, const char *what,
                              size_t k)
{
    qkv_box_reset(dst, kind, elem);
    qkv_error local;
    qkv_error_clear(&local);
    qkv_status st = qkv_box_take(dst, src->data, move, &local);
    if (st != QKV_OK)
        return io->host->error(io->host_ctx, st, "%s %zu: %s", what, k, local.message);
    memset(val, 0, sizeof *val);
    val->dtype = elem;
    val->rank = -1;
    val->data = dst;
    return QKV_OK;
}
