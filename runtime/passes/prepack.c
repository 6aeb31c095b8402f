/*
 * prepack.c - the last step of session creation: kernels transform constant
 * inputs once (weights packed for the GEMM, reordered for a backend), and
 * the originals that nothing reads any more are released.
 *
 * A constant's data is released when every use of it, in every node that
 * reads it, has been packed by that node's kernel, and it is not a graph
 * output: right after the prepack of the node that packed its last use, so
 * peak memory holds the packed copies plus one original, not both sets. A
 * constant mapped from the model file has its pages dropped (madvise) rather
 * than freed. Its dtype and shape stay, so planning and messages are unchanged;
 * compute sees the input with data NULL.
 */
#include "passes.h"

#include <stdlib.h>

#include "error.h"
#include "kernel_host.h"

/* true when every input slot of every consumer that reads value id has been
 * packed by its kernel */
static bool all_uses_packed(const qkv_ir_graph *g, int32_t id)
{
    const qkv_ir_value *v = &g->values[id];
    if (v->n_consumers == 0)
        return false;
    for (size_t c = 0; c < v->n_consumers; c++) {
        const qkv_ir_node *n = &g->nodes[v->consumers[c]];
        for (size_t k = 0; k < n->n_inputs; k++)
            if (n->inputs[k] == id && (k >= 64 || !(n->packed_inputs & ((uint64_t)1 << k))))
                return false;
        for (size_t k = 0; k < n->n_implicit; k++)
            if (n->implicit_inputs[k] == id)
                return false;
    }
    return true;
}

/* Releases the constant inputs of node n that every reader has now packed:
 * right after the prepack of their last reader, so that originals and packed
 * copies are never both fully resident. */
static void release_packed_inputs(qkv_ir_graph *g, const qkv_ir_node *n, qkv_prepack_stats *stats)
{
    for (size_t k = 0; k < n->n_inputs; k++) {
        int32_t id = n->inputs[k];
        if (id < 0 || k >= 64 || !(n->packed_inputs & ((uint64_t)1 << k)))
            continue;
        qkv_ir_value *v = &g->values[id];
        if (v->kind != QKV_VALUE_CONSTANT || !v->data || v->is_output ||
            v->dtype == QKV_DTYPE_STRING || !all_uses_packed(g, id))
            continue;
        stats->released_bytes += v->data_bytes;
        qkv_value_release_data(v);
        v->packed = true;
    }
}

qkv_status qkv_prepack_constants(qkv_ir_graph *g, size_t memory_limit, qkv_prepack_stats *stats,
                                 qkv_error *err)
{
    stats->packed_bytes = 0;
    stats->released_bytes = 0;
    /* a node whose prepack has not run yet has packed nothing: the release
     * after each node must not see flags of an earlier session */
    for (size_t i = 0; i < g->n_nodes; i++)
        g->nodes[i].packed_inputs = 0;
    for (size_t i = 0; i < g->n_nodes; i++) {
        qkv_ir_node *n = &g->nodes[i];
        if (n->dead || !n->kernel || !n->kernel->prepack)
            continue;
        qkv_node_ctx nctx = {.node = n,
                             .version = n->kernel->since_version,
                             .err = err,
                             .graph = g,
                             .packed_bytes = &stats->packed_bytes,
                             .memory_limit = memory_limit};
        qkv_error_clear(err);
        qkv_status st = n->kernel->prepack(&n->kernel_state, qkv_host_api_get(), &nctx);
        if (st != QKV_OK) {
            if (err && err->message[0] == '\0') {
                char what[256];
                qkv_node_describe(n, n->kernel->since_version, what, sizeof what);
                qkv_error_set(err, st, "%s: prepack failed", what);
            }
            return st;
        }
        release_packed_inputs(g, n, stats);
    }
    return QKV_OK;
}
