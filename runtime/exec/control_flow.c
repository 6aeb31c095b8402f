/*
 * control_flow.c - what If, Loop, Scan and SequenceMap share (control_flow.h).
 */
#include "control_flow.h"

#include <stdlib.h>
#include <string.h>

#include "size_math.h"

const qkv_kernel *const *qkv_control_flow_kernels(size_t *count)
{
#define VERSIONS(k) &k[0], &k[1], &k[2], &k[3], &k[4]
    static const qkv_kernel *const all[] = {VERSIONS(qkv_cf_if_kernels),
                                            VERSIONS(qkv_cf_loop_kernels),
                                            VERSIONS(qkv_cf_scan_kernels), &qkv_cf_seqmap_kernel};
#undef VERSIONS
    *count = sizeof all / sizeof all[0];
    return all;
}

qkv_status qkv_cf_graph_attr(const qkv_node_ctx *node, const char *name, const qkv_ir_graph **out)
{
    const qkv_ir_attr *a = qkv_node_attr(node->node, name);
    *out = NULL;
    if (!a || a->type != QKV_ATTR_GRAPH || !a->graphs || !a->graphs[0])
        return qkv_host_api_get()->node_error(node, QKV_ERR_INVALID_MODEL,
                                              "attribute '%s' (a graph) is missing", name);
    *out = a->graphs[0];
    return QKV_OK;
}

void qkv_cf_static_type(const qkv_ir_graph *g, int32_t id, qkv_tensor *out)
{
    memset(out, 0, sizeof *out);
    out->rank = -1;
    if (id < 0 || (size_t)id >= g->n_values)
        return;
    const qkv_ir_value *v = &g->values[id];
    out->dtype = v->dtype;
    out->rank = v->rank;
    for (int32_t d = 0; d < v->rank && d < QKV_MAX_RANK; d++)
        out->dims[d] = v->dims[d];
}

void qkv_cf_merge_shape(const qkv_tensor *initial, const qkv_tensor *last, qkv_tensor *out)
{
    out->rank = -1;
    if (initial->rank < 0 || last->rank != initial->rank)
        return;
    out->rank = initial->rank;
    for (int32_t d = 0; d < initial->rank; d++)
        out->dims[d] = initial->dims[d] == last->dims[d] ? initial->dims[d] : -1;
}

size_t qkv_cf_bytes(const qkv_tensor *t)
{
    size_t elems, bytes;
    if (!qkv_shape_elements(t->dims, t->rank, &elems) ||
        !qkv_dtype_storage_bytes(t->dtype, elems, &bytes))
        return 0;
    return bytes;
}

qkv_host_ctx *qkv_cf_host(qkv_kernel_io *io) { return io->host_ctx; }

qkv_status qkv_cf_set_output(qkv_kernel_io *io, size_t k, const qkv_tensor *src)
{
    if (src->dtype == QKV_DTYPE_STRING)
        return io->host->error(io->host_ctx, QKV_ERR_UNSUPPORTED,
                               "output %zu: string values cannot leave a subgraph", k);
    qkv_status st = io->host->output_alloc(io, k, src->dtype, src->rank, src->dims);
    if (st != QKV_OK)
        return st;
    qkv_tensor *o = &io->outputs[k];
    size_t bytes = qkv_cf_bytes(src);
    if (o->data && bytes && src->data && o->data != src->data)
        memcpy(o->data, src->data, bytes);
    return QKV_OK;
}

qkv_status qkv_cf_bool_scalar(qkv_kernel_io *io, const qkv_tensor *t, const char *what, bool *out)
{
    size_t elems = 0;
    *out = false;
    if (t->dtype != QKV_DTYPE_BOOL)
        return io->host->error(io->host_ctx, QKV_ERR_TYPE, "%s is %s, expected bool", what,
                               qkv_dtype_name(t->dtype));
    if (!qkv_shape_elements(t->dims, t->rank, &elems) || elems != 1 || !t->data)
        return io->host->error(io->host_ctx, QKV_ERR_SHAPE,
                               "%s must have one element, it has %zu (rank %d)", what, elems,
                               t->rank);
    *out = *(const unsigned char *)t->data != 0;
    return QKV_OK;
}

qkv_status qkv_cf_carry(qkv_kernel_io *io, const qkv_ir_graph *body, size_t base, int parity,
                        const qkv_tensor *src, const qkv_dtype *dtypes, const qkv_type_kind *kinds,
                        size_t n, qkv_tensor *vals, const char *what)
{
    size_t total = 0;
    for (size_t k = 0; k < n; k++) {
        if (kinds && kinds[k] != QKV_KIND_TENSOR)
            continue; /* in a box: qkv_cf_carry_value */
        if (dtypes && dtypes[k] != QKV_DTYPE_UNDEFINED && src[k].dtype != dtypes[k])
            return io->host->error(io->host_ctx, QKV_ERR_TYPE, "%s %zu is %s, expected %s", what, k,
                                   qkv_dtype_name(src[k].dtype), qkv_dtype_name(dtypes[k]));
        if (src[k].dtype == QKV_DTYPE_STRING)
            return io->host->error(io->host_ctx, QKV_ERR_UNSUPPORTED,
                                   "%s %zu: string values cannot be carried", what, k);
        size_t bytes = (qkv_cf_bytes(&src[k]) + 63) / 64 * 64;
        if (qkv_add_overflow(total, bytes, &total))
            return io->host->error(io->host_ctx, QKV_ERR_OUT_OF_MEMORY, "%s: size overflow", what);
    }
    void *block = NULL;
    qkv_status st =
        qkv_body_work(qkv_cf_host(io), body, base + (size_t)(parity & 1), total, &block);
    if (st != QKV_OK)
        return st;
    unsigned char *p = block;
    for (size_t k = 0; k < n; k++) {
        if (kinds && kinds[k] != QKV_KIND_TENSOR)
            continue;
        size_t bytes = qkv_cf_bytes(&src[k]);
        vals[k] = src[k];
        vals[k].data = p;
        vals[k].data_bytes = bytes;
        if (!bytes) { /* all empty: block may be NULL, no offset on it */
            qkv_tensor_bind_empty(&vals[k]);
            continue;
        }
        memcpy(p, src[k].data, bytes);
        p += (bytes + 63) / 64 * 64;
    }
    return QKV_OK;
}
