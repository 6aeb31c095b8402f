/*
 * value_io.c - helpers of the sequence and optional kernels (value_io.h).
 */
#include "value_io.h"

qkv_status qkv_set_output_value(qkv_kernel_io *io, size_t k, qkv_type_kind kind, qkv_dtype dtype)
{
    if (!qkv_io_has_kinds(io) || !io->output_kinds)
        return KERR(io, QKV_ERR_UNSUPPORTED,
                    "this host cannot make sequence or optional values (ABI older than 1.3)");
    io->output_kinds[k] = kind;
    io->outputs[k].dtype = dtype;
    io->outputs[k].rank = -1;
    return QKV_OK;
}

qkv_status qkv_value_services_check(const qkv_host_api *host, const qkv_node_ctx *node)
{
    if (!QKV_HOST_HAS(host, value_set_has_element))
        return NERR(host, node, QKV_ERR_UNSUPPORTED,
                    "sequence and optional values need a host with ABI 1.3 or newer");
    return QKV_OK;
}

qkv_status qkv_value_copy_range(qkv_kernel_io *io, size_t in, size_t from, size_t to, size_t out)
{
    for (size_t i = from; i < to; i++) {
        qkv_tensor t;
        qkv_status st = io->host->value_element(io, in, i, &t);
        if (st == QKV_OK)
            st = qkv_value_push(io, out, &t);
        if (st != QKV_OK)
            return st;
    }
    return QKV_OK;
}

qkv_status qkv_value_position(qkv_kernel_io *io, size_t k, size_t n, bool inclusive,
                              const char *what, size_t *pos)
{
    const qkv_tensor *p = &io->inputs[k];
    *pos = 0;
    if (p->dtype != QKV_DTYPE_INT32 && p->dtype != QKV_DTYPE_INT64)
        return KERR(io, QKV_ERR_TYPE, "%s is %s, expected int32 or int64", what,
                    io->host->dtype_name(p->dtype));
    if (!qkv_shape_known(p) || qkv_numel(p) != 1 || p->rank > 1)
        return KERR(io, QKV_ERR_SHAPE, "%s must be a scalar (one element)", what);
    int64_t v = qkv_int_at(p, 0);
    int64_t len = (int64_t)n, hi = inclusive ? len : len - 1;
    if (v < -len || v > hi)
        return KERR(io, QKV_ERR_INVALID_ARGUMENT,
                    "%s %lld is out of range for a sequence of length %lld (valid: [%lld, %lld])",
                    what, (long long)v, (long long)len, (long long)-len, (long long)hi);
    *pos = (size_t)(v < 0 ? v + len : v);
    return QKV_OK;
}
