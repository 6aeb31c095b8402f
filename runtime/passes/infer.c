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
#include "value_store.h" /* qkv_kind_name */

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

static qkv_status merge(qkv_ir_value *v, const qkv_tensor *t, qkv_type_kind kind,
                        const qkv_ir_node *node, int64_t version, qkv_error *err)
{
    char what[256];
    qkv_node_describe(node, version, what, sizeof what);
    /* an output declared with a type (graph outputs have one) keeps its kind */
    bool declared = v->type_kind != QKV_KIND_TENSOR || v->dtype != QKV_DTYPE_UNDEFINED;
    if (v->is_output && declared && v->type_kind != kind)
        return qkv_error_set(err, QKV_ERR_TYPE,
                             "%s: graph output '%s' is declared a %s but the op produces a %s",
                             what, v->name, qkv_kind_name(v->type_kind), qkv_kind_name(kind));
    v->type_kind = kind;
    if (kind != QKV_KIND_TENSOR) {
        /* the element type only: a sequence's elements may differ in shape */
        if (t->dtype != QKV_DTYPE_UNDEFINED && v->dtype != QKV_DTYPE_UNDEFINED &&
            v->dtype != t->dtype)
            return qkv_error_set(err, QKV_ERR_TYPE,
                                 "%s: output '%s' is declared with %s elements but the op "
                                 "produces %s",
                                 what, v->name, qkv_dtype_name(v->dtype), qkv_dtype_name(t->dtype));
        if (t->dtype != QKV_DTYPE_UNDEFINED)
            v->dtype = t->dtype;
        v->rank = -1;
        return QKV_OK;
    }
    if (t->dtype == QKV_DTYPE_UNDEFINED)
        return QKV_OK;
    if (v->dtype != QKV_DTYPE_UNDEFINED && v->dtype != t->dtype)
        return qkv_error_set(err, QKV_ERR_TYPE,
                             "%s: output '%s' is declared %s but the op produces %s", what, v->name,
                             qkv_dtype_name(v->dtype), qkv_dtype_name(t->dtype));
    v->dtype = t->dtype;
    if (t->rank < 0)
        return QKV_OK;
    if (t->rank > QKV_MAX_RANK)
        return qkv_error_set(err, QKV_ERR_UNSUPPORTED, "%s: output '%s' has rank %d (max %d)", what,
                             v->name, t->rank, QKV_MAX_RANK);
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
                ov->type_kind = pv->type_kind;
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

/* A kernel that does not declare QKV_KERNEL_VALUES gets tensors only; the
 * host runs an ALIAS kernel (Identity) on a sequence or optional itself. */
static qkv_status check_kinds(const qkv_ir_graph *g, const qkv_ir_node *n,
                              const qkv_type_kind *in_kinds, qkv_error *err)
{
    const qkv_kernel *k = n->kernel;
    if ((k->flags & QKV_KERNEL_VALUES) || qkv_node_host_alias(n, in_kinds))
        return QKV_OK;
    for (size_t i = 0; i < n->n_inputs; i++) {
        if (in_kinds[i] == QKV_KIND_TENSOR)
            continue;
        char what[256];
        qkv_node_describe(n, k->since_version, what, sizeof what);
        return qkv_error_set(err, QKV_ERR_TYPE, "%s: input %zu '%s' is a %s; the op takes a tensor",
                             what, i, g->values[n->inputs[i]].name, qkv_kind_name(in_kinds[i]));
    }
    return QKV_OK;
}

qkv_status qkv_infer_graph(qkv_ir_graph *g, qkv_error *err)
{
    size_t max_in, max_out;
    qkv_graph_max_arity(g, &max_in, &max_out);
    qkv_tensor *ins = calloc(max_in, sizeof *ins);
    qkv_tensor *outs = calloc(max_out, sizeof *outs);
    qkv_type_kind *in_kinds = calloc(max_in, sizeof *in_kinds);
    qkv_type_kind *out_kinds = calloc(max_out, sizeof *out_kinds);
    if (!ins || !outs || !in_kinds || !out_kinds) {
        free(ins);
        free(outs);
        free(in_kinds);
        free(out_kinds);
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
        qkv_node_kinds(g, n, in_kinds, out_kinds);
        /* a kernel that makes sequences or optionals starts from the declared
         * kinds (an empty Optional has nothing else to go by) and says what
         * it makes; every other kernel makes tensors */
        for (size_t j = 0; j < n->n_outputs && !(k->flags & QKV_KERNEL_VALUES); j++)
            out_kinds[j] = QKV_KIND_TENSOR;
        st = check_kinds(g, n, in_kinds, err);
        if (st != QKV_OK)
            break;
        qkv_error_clear(err);
        qkv_host_ctx h = {.node = n,
                          .version = k->since_version,
                          .err = err,
                          .in_kinds = in_kinds,
                          .out_kinds = out_kinds};
        st = qkv_kernel_infer(k, n->kernel_state, &h, ins, n->n_inputs, outs, n->n_outputs);
        if (st == QKV_OK && qkv_node_host_alias(n, in_kinds))
            out_kinds[0] = in_kinds[0];
        for (size_t j = 0; j < n->n_outputs && st == QKV_OK; j++)
            if (n->outputs[j] >= 0)
                st = merge(&g->values[n->outputs[j]], &outs[j], out_kinds[j], n, k->since_version,
                           err);
    }
    free(ins);
    free(outs);
    free(in_kinds);
    free(out_kinds);
    return st;
}
