/*
 * infer.c - static type and shape inference at session creation.
 *
 * Runs every kernel's infer in topological order with what is known before
 * any input arrives: declared input types and shapes (symbolic dims are
 * unknown here), constant values. The result is merged into the values:
 * inferred facts win; declared dims fill what inference left unknown. A
 * declared type or rank that contradicts the inferred one is an error, as in
 * ONNX Runtime.
 *
 * Subgraphs (If/Loop/Scan bodies) are inferred just before the node that
 * owns them, once the values they read from enclosing graphs are: the
 * node's own infer then reads its bodies' output types and shapes.
 */
#include <stdlib.h>
#include <string.h>

#include "error.h"
#include "kernel_host.h"
#include "node_eval.h"
#include "passes.h"

void qkv_node_static_inputs(const qkv_ir_graph *g, const qkv_ir_node *node, qkv_tensor *ins)
{
    for (size_t k = 0; k < node->n_inputs; k++) {
        qkv_tensor *t = &ins[k];
        memset(t, 0, sizeof *t);
        int32_t id = node->inputs[k];
        if (id < 0) {
            t->rank = -1;
            continue;
        }
        const qkv_ir_value *v = &g->values[id];
        t->dtype = v->dtype;
        t->rank = v->rank;
        for (int32_t d = 0; d < v->rank && d < QKV_MAX_RANK; d++)
            t->dims[d] = v->dims[d];
        if (v->kind == QKV_VALUE_CONSTANT) {
            t->data = v->data;
            t->data_bytes = v->data_bytes;
            qkv_tensor_bind_empty(t); /* an empty initializer has no payload */
        }
    }
}

static qkv_status merge(qkv_ir_value *v, const qkv_tensor *t, const qkv_ir_node *node,
                        int64_t version, qkv_error *err)
{
    char what[256];
    if (t->dtype == QKV_DTYPE_UNDEFINED)
        return QKV_OK;
    qkv_node_describe(node, version, what, sizeof what);
    if (v->dtype != QKV_DTYPE_UNDEFINED && v->dtype != t->dtype)
        return qkv_error_set(err, QKV_ERR_TYPE,
                             "%s: output '%s' is declared %s but the op produces %s", what,
                             v->name, qkv_dtype_name(v->dtype), qkv_dtype_name(t->dtype));
    v->dtype = t->dtype;
    if (t->rank < 0)
        return QKV_OK;
    if (t->rank > QKV_MAX_RANK)
        return qkv_error_set(err, QKV_ERR_UNSUPPORTED, "%s: output '%s' has rank %d (max %d)",
                             what, v->name, t->rank, QKV_MAX_RANK);
    if (v->rank >= 0 && v->rank != t->rank)
        return qkv_error_set(err, QKV_ERR_SHAPE,
                             "%s: output '%s' is declared with rank %d but the op produces "
                             "rank %d",
                             what, v->name, v->rank, t->rank);
    if (v->rank < 0) {
        v->rank = t->rank;
        for (int32_t d = 0; d < t->rank; d++) {
            v->dims[d] = -1;
            v->dim_params[d] = NULL;
        }
    }
    for (int32_t d = 0; d < t->rank; d++)
        if (t->dims[d] >= 0)
            v->dims[d] = t->dims[d];
    return QKV_OK;
}

/* Copies what g knows of each value a subgraph of node n reads from
 * outside into the subgraph's OUTER value, then infers the subgraph. */
static qkv_status infer_bodies(const qkv_ir_graph *g, const qkv_ir_node *n, qkv_error *err)
{
    for (size_t a = 0; a < n->n_attrs; a++) {
        const qkv_ir_attr *at = &n->attrs[a];
        if (at->type != QKV_ATTR_GRAPH && at->type != QKV_ATTR_GRAPHS)
            continue;
        for (size_t k = 0; k < at->n; k++) {
            qkv_ir_graph *body = at->graphs ? at->graphs[k] : NULL;
            if (!body)
                continue;
            for (size_t v = 0; v < body->n_values; v++) {
                qkv_ir_value *ov = &body->values[v];
                if (ov->kind != QKV_VALUE_OUTER || ov->outer_id < 0 ||
                    (size_t)ov->outer_id >= g->n_values)
                    continue;
                const qkv_ir_value *pv = &g->values[ov->outer_id];
                ov->dtype = pv->dtype;
                ov->rank = pv->rank;
                memcpy(ov->dims, pv->dims, sizeof ov->dims);
            }
            qkv_status st = qkv_infer_graph(body, err);
            if (st != QKV_OK) {
                qkv_error_prefix(err, "subgraph '%s' of node '%s' (%s)", at->name, n->name,
                                 n->op_type);
                return st;
            }
        }
    }
    return QKV_OK;
}

qkv_status qkv_infer_graph(qkv_ir_graph *g, qkv_error *err)
{
    size_t max_in, max_out;
    qkv_graph_max_arity(g, &max_in, &max_out);
    qkv_tensor *ins = calloc(max_in, sizeof *ins);
    qkv_tensor *outs = calloc(max_out, sizeof *outs);
    if (!ins || !outs) {
        free(ins);
        free(outs);
        return qkv_error_set(err, QKV_ERR_OUT_OF_MEMORY, "out of memory in shape inference");
    }
    qkv_status st = QKV_OK;
    for (size_t o = 0; o < g->n_order && st == QKV_OK; o++) {
        qkv_ir_node *n = &g->nodes[g->order[o]];
        const qkv_kernel *k = n->kernel;
        if (qkv_node_has_subgraphs(n) && (st = infer_bodies(g, n, err)) != QKV_OK)
            break;
        qkv_node_static_inputs(g, n, ins);
        st = qkv_kernel_check_io(k, n, ins, err);
        if (st != QKV_OK)
            break;
        qkv_error_clear(err);
        qkv_host_ctx h = {.node = n, .version = k->since_version, .err = err};
        st = qkv_kernel_infer(k, n->kernel_state, &h, ins, n->n_inputs, outs, n->n_outputs);
        for (size_t j = 0; j < n->n_outputs && st == QKV_OK; j++)
            if (n->outputs[j] >= 0)
                st = merge(&g->values[n->outputs[j]], &outs[j], n, k->since_version, err);
    }
    free(ins);
    free(outs);
    return st;
}
