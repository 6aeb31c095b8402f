/*
 * io_binding.c - qkv_run_io: inputs bound by name, outputs chosen by name and
 * written straight into caller-owned buffers.
 *
 * A bound output is computed in the caller's buffer by pointing its arena
 * buffer there for the run: every value that shares that arena buffer (the
 * output, views of it, a dead input it was written over in place) has the
 * output's size, and none of them is live outside [its first producer, the
 * end of the run], so the caller's memory serves exactly as the arena slot
 * would. Outputs that are not computed into the arena (a model input, a
 * constant, a value computed while planning, a data-dependent one) are
 * copied once at the end.
 *
 * Steps of qkv_run_io:
 *  1. order the inputs by name (stack storage for up to STACK_IO of them);
 *  2. map the requested outputs to model outputs, noting the bound ones;
 *  3. run through the executor, which calls qkv_io_bind_outputs once the
 *     plan is known (check, overlap, redirect) and qkv_io_finish_outputs
 *     after the steps;
 *  4. hand out the unbound outputs.
 */
#include "io_binding.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "error.h"

/* Inputs and outputs handled without allocating (more: malloc per run). */
#define STACK_IO 32

static void dims_text(const qkv_tensor *t, char *buf, size_t cap)
{
    size_t len = (size_t)snprintf(buf, cap, "[");
    for (int32_t d = 0; d < t->rank && len < cap; d++)
        len +=
            (size_t)snprintf(buf + len, cap - len, "%s%lld", d ? "," : "", (long long)t->dims[d]);
    if (len < cap)
        snprintf(buf + len, cap - len, "]");
}

static bool same_shape(const qkv_tensor *a, const qkv_tensor *b)
{
    if (a->rank != b->rank)
        return false;
    for (int32_t d = 0; d < a->rank; d++)
        if (a->dims[d] != b->dims[d])
            return false;
    return true;
}

static bool overlaps(const void *a, size_t a_bytes, const void *b, size_t b_bytes)
{
    if (!a_bytes || !b_bytes)
        return false;
    uintptr_t a0 = (uintptr_t)a, b0 = (uintptr_t)b;
    return a0 < b0 + b_bytes && b0 < a0 + a_bytes;
}

/* The dtype, dims and bytes of a bound output against what the plan makes. */
static qkv_status check_bound(const qkv_ir_graph *g, const qkv_plan_value *pv, size_t i,
                              const qkv_tensor *dst, qkv_error *err)
{
    const char *name = g->values[g->outputs[i]].name;
    if (pv->storage == QKV_STORE_VALUE)
        return qkv_error_set(err, QKV_ERR_INVALID_ARGUMENT,
                             "output %zu '%s' is a sequence or an optional, which cannot be "
                             "bound to a buffer (read it with qkv_context_output_value)",
                             i, name);
    if (pv->storage == QKV_STORE_DYNAMIC) {
        qkv_dtype want = g->values[g->outputs[i]].dtype;
        if (want != QKV_DTYPE_UNDEFINED && dst->dtype != want)
            return qkv_error_set(err, QKV_ERR_TYPE,
                                 "output %zu '%s': the bound buffer is %s, the output is %s", i,
                                 name, qkv_dtype_name(dst->dtype), qkv_dtype_name(want));
        return QKV_OK; /* dims known after its node runs: checked then */
    }
    if (dst->dtype != pv->t.dtype)
        return qkv_error_set(err, QKV_ERR_TYPE,
                             "output %zu '%s': the bound buffer is %s, the output is %s", i, name,
                             qkv_dtype_name(dst->dtype), qkv_dtype_name(pv->t.dtype));
    if (!same_shape(dst, &pv->t)) {
        char have[160], want[160];
        dims_text(dst, have, sizeof have);
        dims_text(&pv->t, want, sizeof want);
        return qkv_error_set(err, QKV_ERR_SHAPE,
                             "output %zu '%s': the bound buffer has shape %s, the run makes %s", i,
                             name, have, want);
    }
    if (dst->data_bytes < pv->t.data_bytes)
        return qkv_error_set(err, QKV_ERR_INVALID_ARGUMENT,
                             "output %zu '%s': the bound buffer has %zu bytes, the output needs "
                             "%zu",
                             i, name, dst->data_bytes, pv->t.data_bytes);
    return QKV_OK;
}

/* Bytes a bound output occupies: the output's (the buffer's when its size
 * is known only after the run). */
static size_t bound_bytes(const qkv_plan_value *pv, const qkv_tensor *dst)
{
    return pv->storage == QKV_STORE_DYNAMIC ? dst->data_bytes : pv->t.data_bytes;
}

/*
 * True when input k may share the bound buffer of output value v: it is
 * input 0 of the Concat that produces v (through views), it starts at the
 * buffer's first byte and is the output's leading bytes (all dims before
 * the Concat axis are 1), and nothing but that Concat and views of its
 * result writes the arena buffer. The Concat then leaves those bytes as
 * they are, so every reader of the input, before or after, sees them.
 */
static bool concat_prefix_alias(const qkv_exec_plan *p, const qkv_ir_graph *g, int32_t v, size_t k,
                                const qkv_tensor *input, const qkv_tensor *dst)
{
    const qkv_plan_value *pv = &p->values[v];
    if (pv->storage != QKV_STORE_ARENA || input->data != dst->data)
        return false;
    int32_t root = pv->view_of;
    for (size_t w = 0; w < p->n_values; w++) {
        const qkv_plan_value *o = &p->values[w];
        if (o->storage == QKV_STORE_ARENA && o->buffer == pv->buffer && (int32_t)w != root &&
            o->view_of != root)
            return false; /* an in-place write into the buffer before the Concat */
    }
    int32_t prod = g->values[root].producer;
    if (prod < 0)
        return false;
    const qkv_ir_node *n = &g->nodes[prod];
    if (strcmp(n->op_type, "Concat") != 0 || n->domain[0] || n->n_inputs < 1 ||
        n->inputs[0] != g->inputs[k] || n->outputs[0] != root)
        return false;
    const qkv_tensor *out = &p->values[root].t;
    if (out->rank != input->rank)
        return false;
    int32_t axis = 0;
    while (axis < out->rank && out->dims[axis] == input->dims[axis])
        axis++;
    for (int32_t d = 0; d < axis; d++)
        if (out->dims[d] != 1)
            return false;
    return true;
}

qkv_status qkv_io_bind_outputs(const qkv_exec_plan *p, const qkv_ir_graph *g, qkv_tensor *vals,
                               const qkv_tensor *inputs, qkv_tensor *const *bound, qkv_error *err)
{
    for (size_t i = 0; i < g->n_outputs; i++) {
        if (!bound[i])
            continue;
        const qkv_plan_value *pv = &p->values[g->outputs[i]];
        qkv_status st = check_bound(g, pv, i, bound[i], err);
        if (st != QKV_OK)
            return st;
        size_t bytes = bound_bytes(pv, bound[i]);
        for (size_t j = 0; j < i; j++) {
            if (bound[j] && overlaps(bound[i]->data, bytes, bound[j]->data,
                                     bound_bytes(&p->values[g->outputs[j]], bound[j])))
                return qkv_error_set(err, QKV_ERR_INVALID_ARGUMENT,
                                     "outputs %zu '%s' and %zu '%s' are bound to overlapping "
                                     "memory",
                                     j, g->values[g->outputs[j]].name, i,
                                     g->values[g->outputs[i]].name);
        }
        for (size_t k = 0; k < g->n_inputs; k++) {
            if (!overlaps(bound[i]->data, bytes, inputs[k].data, inputs[k].data_bytes) ||
                concat_prefix_alias(p, g, g->outputs[i], k, &inputs[k], bound[i]))
                continue;
            return qkv_error_set(err, QKV_ERR_INVALID_ARGUMENT,
                                 "output %zu '%s' is bound to memory that overlaps input %zu "
                                 "'%s' (an output may share memory only with the first input of "
                                 "the Concat that extends it, starting at the same address)",
                                 i, g->values[g->outputs[i]].name, k, g->values[g->inputs[k]].name);
        }
    }
    /* Redirect each bound output's arena buffer (the first output bound to
     * a buffer wins; another output of the same bytes is copied at the end). */
    for (size_t i = 0; i < g->n_outputs; i++) {
        const qkv_plan_value *pv = bound[i] ? &p->values[g->outputs[i]] : NULL;
        if (!pv || pv->storage != QKV_STORE_ARENA)
            continue;
        bool taken = false;
        for (size_t j = 0; j < i && !taken; j++)
            taken = bound[j] && p->values[g->outputs[j]].storage == QKV_STORE_ARENA &&
                    p->values[g->outputs[j]].buffer == pv->buffer;
        for (size_t w = 0; w < p->n_values && !taken; w++)
            if (p->values[w].storage == QKV_STORE_ARENA && p->values[w].buffer == pv->buffer &&
                vals[w].data_bytes)
                vals[w].data = bound[i]->data;
    }
    return QKV_OK;
}

qkv_status qkv_io_finish_outputs(const qkv_exec_plan *p, const qkv_ir_graph *g,
                                 const qkv_tensor *vals, qkv_tensor *const *bound, qkv_error *err)
{
    for (size_t i = 0; i < g->n_outputs; i++) {
        if (!bound[i])
            continue;
        const qkv_tensor *t = &vals[g->outputs[i]];
        if (p->values[g->outputs[i]].storage == QKV_STORE_DYNAMIC) {
            if (!same_shape(t, bound[i]) || bound[i]->data_bytes < t->data_bytes) {
                char have[160], want[160];
                dims_text(bound[i], have, sizeof have);
                dims_text(t, want, sizeof want);
                return qkv_error_set(err, QKV_ERR_SHAPE,
                                     "output %zu '%s': the bound buffer has shape %s (%zu "
                                     "bytes), the run made %s",
                                     i, g->values[g->outputs[i]].name, have, bound[i]->data_bytes,
                                     want);
            }
        }
        if (t->data_bytes && t->data != bound[i]->data)
            memcpy(bound[i]->data, t->data, t->data_bytes);
    }
    return QKV_OK;
}

/* Step 1: inputs[i] of input_names[i] into model order in `ordered`. */
static qkv_status order_inputs(const qkv_ir_graph *g, const char *const *names,
                               const qkv_tensor *inputs, size_t n, qkv_tensor *ordered, bool *seen,
                               qkv_error *err)
{
    memset(seen, 0, g->n_inputs * sizeof *seen);
    for (size_t i = 0; i < n; i++) {
        if (!names[i])
            return qkv_error_set(err, QKV_ERR_INVALID_ARGUMENT, "input name %zu is NULL", i);
        int64_t k = -1;
        for (size_t j = 0; j < g->n_inputs && k < 0; j++)
            if (strcmp(g->values[g->inputs[j]].name, names[i]) == 0)
                k = (int64_t)j;
        if (k < 0)
            return qkv_error_set(err, QKV_ERR_INVALID_ARGUMENT, "the model has no input named '%s'",
                                 names[i]);
        if (seen[k])
            return qkv_error_set(err, QKV_ERR_INVALID_ARGUMENT, "input '%s' is bound twice",
                                 names[i]);
        seen[k] = true;
        ordered[k] = inputs[i];
    }
    for (size_t j = 0; j < g->n_inputs; j++)
        if (!seen[j])
            return qkv_error_set(err, QKV_ERR_INVALID_ARGUMENT, "input %zu '%s' is not bound", j,
                                 g->values[g->inputs[j]].name);
    return QKV_OK;
}

/* Step 2: which model output outputs[j] is (index[j]), and the bound ones. */
static qkv_status map_outputs(const qkv_ir_graph *g, const char *const *names, qkv_tensor *outputs,
                              size_t n, size_t *index, qkv_tensor **bound, bool *any_bound,
                              qkv_error *err)
{
    if (!names && n > g->n_outputs)
        return qkv_error_set(err, QKV_ERR_INVALID_ARGUMENT,
                             "%zu outputs requested, the model has %zu", n, g->n_outputs);
    memset(bound, 0, g->n_outputs * sizeof *bound);
    *any_bound = false;
    for (size_t j = 0; j < n; j++) {
        size_t k = j;
        if (names) {
            if (!names[j])
                return qkv_error_set(err, QKV_ERR_INVALID_ARGUMENT, "output name %zu is NULL", j);
            k = g->n_outputs;
            for (size_t m = 0; m < g->n_outputs && k == g->n_outputs; m++)
                if (strcmp(g->values[g->outputs[m]].name, names[j]) == 0)
                    k = m;
            if (k == g->n_outputs)
                return qkv_error_set(err, QKV_ERR_INVALID_ARGUMENT,
                                     "the model has no output named '%s'", names[j]);
            for (size_t m = 0; m < j; m++)
                if (index[m] == k)
                    return qkv_error_set(err, QKV_ERR_INVALID_ARGUMENT,
                                         "output '%s' is requested twice", names[j]);
        }
        index[j] = k;
        if (outputs[j].data) {
            bound[k] = &outputs[j];
            *any_bound = true;
        }
    }
    return QKV_OK;
}

qkv_status qkv_run_io(qkv_context *ctx, const char *const *input_names, const qkv_tensor *inputs,
                      size_t n_inputs, const char *const *output_names, qkv_tensor *outputs,
                      size_t n_outputs, qkv_error *err)
{
    if (!ctx)
        return qkv_error_set(err, QKV_ERR_INVALID_ARGUMENT, "qkv_run_io: NULL context");
    qkv_error_clear(err);
    if ((n_inputs && !inputs) || (n_outputs && !outputs))
        return qkv_error_set(
            err, QKV_ERR_INVALID_ARGUMENT, "qkv_run_io: %s is NULL with a count of %zu",
            n_inputs && !inputs ? "inputs" : "outputs", n_inputs && !inputs ? n_inputs : n_outputs);
    const qkv_ir_graph *g = qkv_context_session(ctx)->model->graph;
    qkv_tensor in_stack[STACK_IO];
    bool seen_stack[STACK_IO];
    size_t index_stack[STACK_IO];
    qkv_tensor *bound_stack[STACK_IO];
    bool small = g->n_inputs <= STACK_IO && g->n_outputs <= STACK_IO && n_outputs <= STACK_IO;
    qkv_tensor *ordered = small ? in_stack : malloc((g->n_inputs + 1) * sizeof *ordered);
    bool *seen = small ? seen_stack : malloc(g->n_inputs + 1);
    size_t *index = small ? index_stack : malloc((n_outputs + 1) * sizeof *index);
    qkv_tensor **bound = small ? bound_stack : malloc((g->n_outputs + 1) * sizeof *bound);
    qkv_status st = QKV_OK;
    if (!ordered || !seen || !index || !bound)
        st = qkv_error_set(err, QKV_ERR_OUT_OF_MEMORY, "qkv_run_io: out of memory");
    const qkv_tensor *run_inputs = inputs;
    size_t run_n = n_inputs;
    if (st == QKV_OK && input_names) {
        st = order_inputs(g, input_names, inputs, n_inputs, ordered, seen, err);
        run_inputs = ordered;
        run_n = g->n_inputs;
    }
    bool any_bound = false;
    if (st == QKV_OK)
        st = map_outputs(g, output_names, outputs, n_outputs, index, bound, &any_bound, err);
    for (size_t j = 0; st == QKV_OK && j < n_outputs; j++) {
        const qkv_ir_value *v = &g->values[g->outputs[index[j]]];
        if (v->type_kind != QKV_KIND_TENSOR)
            st = qkv_error_set(err, QKV_ERR_INVALID_ARGUMENT,
                               "output %zu '%s' is a sequence or an optional: qkv_run_io returns "
                               "tensors only (use qkv_run_values and qkv_context_output_value)",
                               index[j], v->name);
    }
    if (st == QKV_OK)
        st = qkv_context_run(ctx, run_inputs, run_n, any_bound ? bound : NULL, err);
    for (size_t j = 0; st == QKV_OK && j < n_outputs; j++)
        if (!outputs[j].data)
            outputs[j] = *qkv_context_output(ctx, index[j]);
    if (!small) {
        free(ordered);
        free(seen);
        free(index);
        free(bound);
    }
    return st;
}
