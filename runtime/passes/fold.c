/*
 * fold.c - constant folding at session creation.
 *
 * A node whose inputs are all constants is evaluated once with its own
 * kernel and replaced by constant outputs (so every run, and every plan,
 * skips it). Constant nodes fold the same way. Constants nothing reads any
 * more (weights a folded Transpose consumed) are freed.
 */
#include <stdlib.h>
#include <string.h>

#include "error.h"
#include "kernel_host.h"
#include "node_eval.h"
#include "passes.h"
#include "size_math.h"

/* Outputs larger than this stay computed at run time: folding would trade a
 * cheap op for resident memory. */
#define QKV_FOLD_MAX_BYTES ((size_t)64 << 20)

static bool all_inputs_constant(const qkv_ir_graph *g, const qkv_ir_node *n)
{
    for (size_t k = 0; k < n->n_inputs; k++)
        if (n->inputs[k] >= 0 && g->values[n->inputs[k]].kind != QKV_VALUE_CONSTANT)
            return false;
    /* a sequence or an optional is never a constant: it lives in the run */
    for (size_t j = 0; j < n->n_outputs; j++)
        if (n->outputs[j] >= 0 && g->values[n->outputs[j]].type_kind != QKV_KIND_TENSOR)
            return false;
    /* a node with subgraphs runs them in a run context (exec/control_flow.h) */
    return n->n_implicit == 0 && !qkv_node_has_subgraphs(n);
}

static bool outputs_small(const qkv_tensor *outs, const qkv_ir_node *n)
{
    size_t total = 0;
    for (size_t j = 0; j < n->n_outputs; j++) {
        size_t elems, bytes;
        if (n->outputs[j] < 0)
            continue;
        if (!qkv_shape_elements(outs[j].dims, outs[j].rank, &elems) ||
            !qkv_dtype_storage_bytes(outs[j].dtype, elems, &bytes) ||
            qkv_add_overflow(total, bytes, &total))
            return false;
    }
    return total <= QKV_FOLD_MAX_BYTES;
}

static void drop_unused_constants(qkv_ir_graph *g)
{
    for (size_t i = 0; i < g->n_values; i++) {
        qkv_ir_value *v = &g->values[i];
        if (v->kind != QKV_VALUE_CONSTANT || v->n_consumers || v->is_output || !v->data)
            continue;
        if (!v->borrowed) {
            qkv_tensor t = {.dtype = v->dtype, .data = v->data, .data_bytes = v->data_bytes};
            qkv_tensor_data_free(&t);
        }
        v->data = NULL;
        v->data_bytes = 0;
    }
}

qkv_status qkv_fold_constants(qkv_ir_graph *g, size_t *folded, qkv_error *err)
{
    size_t max_in, max_out, count = 0;
    qkv_graph_max_arity(g, &max_in, &max_out);
    qkv_tensor *ins = calloc(max_in, sizeof *ins);
    qkv_tensor *outs = calloc(max_out, sizeof *outs);
    if (!ins || !outs) {
        free(ins);
        free(outs);
        return qkv_error_set(err, QKV_ERR_OUT_OF_MEMORY, "out of memory in constant folding");
    }
    qkv_status st = QKV_OK;
    for (size_t o = 0; o < g->n_order && st == QKV_OK; o++) {
        qkv_ir_node *n = &g->nodes[g->order[o]];
        const qkv_kernel *k = n->kernel;
        if (!k->infer || !all_inputs_constant(g, n))
            continue;
        qkv_node_static_inputs(g, n, ins);
        qkv_host_ctx h = {.node = n, .version = k->since_version, .err = err};
        st = qkv_kernel_infer(k, n->kernel_state, &h, ins, n->n_inputs, outs, n->n_outputs);
        if (st != QKV_OK)
            break;
        if (!outputs_small(outs, n))
            continue; /* unknown (data dependent) or too large */
        st = qkv_node_eval(k, n->kernel_state, &h, ins, n->n_inputs, outs, n->n_outputs);
        if (st != QKV_OK)
            break;
        for (size_t j = 0; j < n->n_outputs; j++) {
            if (n->outputs[j] < 0)
                continue;
            qkv_ir_value *v = &g->values[n->outputs[j]];
            v->kind = QKV_VALUE_CONSTANT;
            v->dtype = outs[j].dtype;
            v->rank = outs[j].rank;
            for (int32_t d = 0; d < outs[j].rank; d++) {
                v->dims[d] = outs[j].dims[d];
            }
            v->data = outs[j].data;
            v->data_bytes = outs[j].data_bytes;
            v->borrowed = false;
            v->producer = -1;
        }
        if (k->destroy && n->kernel_state)
            k->destroy(n->kernel_state);
        n->kernel_state = NULL;
        n->dead = true;
        count++;
    }
    free(ins);
    free(outs);
    if (st == QKV_OK && count) {
        st = qkv_graph_finalize(g, err);
        if (st == QKV_OK)
            drop_unused_constants(g);
    }
    *folded = count;
    return st;
}
