/*
 * executor.c - run contexts: bind inputs, resolve every value's bytes for the
 * current plan, run the steps, hand out the outputs.
 *
 * A context owns its arena, its thread pool and the small arrays a step
 * needs, all sized when the context or a new plan first needs them, so a
 * run with shapes seen before allocates nothing (dynamic nodes aside: their
 * outputs are only known when they run).
 */
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "api.h"
#include "backend.h" /* the session's GEMM provider */
#include "error.h"
#include "hugepages.h"
#include "io_binding.h"
#include "kernel_host.h"
#include "log.h"
#include "node_eval.h"
#include "session.h"
#include "size_math.h"
#include "threadpool.h"
#include "value_store.h"

struct qkv_context {
    qkv_session *s;
    qkv_threadpool *pool;
    qkv_exec_plan *plan; /* the plan of the last run (a reference) */
    unsigned char *arena;
    size_t arena_cap;
    qkv_tensor *vals;     /* (n_values) every value's tensor for this run */
    int32_t *input_index; /* (n_values) model input index of an input value, -1 */
    qkv_tensor *io;       /* (max_io) a step's inputs then outputs */
    size_t io_cap;
    void **dyn; /* buffers of dynamic nodes, freed at the next run */
    size_t n_dyn, cap_dyn;
    size_t dyn_bytes; /* their bytes (against the session's memory limit) */
    qkv_tensor *outputs; /* (n_outputs) */
    bool have_outputs;
    /* sequences and optionals (value_store.h) */
    qkv_box *boxes;           /* (n_values) the box of each such value */
    qkv_type_kind *kinds;     /* (max_io) a step's input then output kinds */
    qkv_box **step_boxes;     /* (max_io) a step's input then output boxes */
    qkv_tensor *placeholders; /* (n_inputs) qkv_run_values: the tensors the plan is keyed on */
    /* profiling (`qkv run --profile`) */
    bool profiling;
    double *step_ms;    /* (n_nodes + 1) time of step i of the last profiled run */
    int32_t *step_node; /* (n_nodes + 1) its node */
    size_t n_profiled;  /* steps of the last profiled run */
};

qkv_status qkv_context_create(qkv_session *s, qkv_context **out, qkv_error *err)
{
    if (!s || !out)
        return qkv_error_set(err, QKV_ERR_INVALID_ARGUMENT, "qkv_context_create: NULL argument");
    const qkv_ir_graph *g = s->model->graph;
    qkv_context *c = calloc(1, sizeof *c);
    size_t max_in, max_out;
    qkv_graph_max_arity(g, &max_in, &max_out);
    size_t max_io = max_in + max_out;
    if (c) {
        c->s = s;
        c->vals = calloc(g->n_values + 1, sizeof *c->vals);
        c->input_index = malloc((g->n_values + 1) * sizeof *c->input_index);
        c->io = calloc(max_io, sizeof *c->io);
        c->io_cap = max_io;
        c->outputs = calloc(g->n_outputs + 1, sizeof *c->outputs);
        c->boxes = calloc(g->n_values + 1, sizeof *c->boxes);
        c->kinds = calloc(max_io, sizeof *c->kinds);
        c->step_boxes = calloc(max_io, sizeof *c->step_boxes);
        c->placeholders = calloc(g->n_inputs + 1, sizeof *c->placeholders);
        c->pool = qkv_threadpool_create(s->opts.threads);
    }
    if (!c || !c->vals || !c->input_index || !c->io || !c->outputs || !c->boxes || !c->kinds ||
        !c->step_boxes || !c->placeholders || !c->pool) {
        qkv_context_destroy(c);
        return qkv_error_set(err, QKV_ERR_OUT_OF_MEMORY, "out of memory creating a context");
    }
    for (size_t i = 0; i < g->n_values; i++)
        c->input_index[i] = -1;
    for (size_t i = 0; i < g->n_inputs; i++)
        c->input_index[g->inputs[i]] = (int32_t)i;
    *out = c;
    return QKV_OK;
}

static void free_dynamic(qkv_context *c)
{
    for (size_t i = 0; i < c->n_dyn; i++)
        free(c->dyn[i]);
    c->n_dyn = 0;
    c->dyn_bytes = 0;
}

void qkv_context_destroy(qkv_context *c)
{
    if (!c)
        return;
    free_dynamic(c);
    free(c->dyn);
    qkv_plan_release(c->plan);
    qkv_threadpool_destroy(c->pool);
    free(c->arena);
    free(c->vals);
    free(c->input_index);
    free(c->io);
    free(c->outputs);
    for (size_t v = 0; c->boxes && v < c->s->model->graph->n_values; v++)
        qkv_box_fini(&c->boxes[v]);
    free(c->boxes);
    free(c->kinds);
    free(c->step_boxes);
    free(c->placeholders);
    free(c->step_ms);
    free(c->step_node);
    free(c);
}

/* Makes the context's plan the one for these shapes (cached per context
 * first, then per session). */
static qkv_status use_plan(qkv_context *c, const qkv_tensor *inputs, size_t n_inputs,
                           qkv_error *err)
{
    qkv_exec_plan *p = c->plan;
    bool same = p && p->n_inputs == n_inputs;
    for (size_t i = 0; same && i < n_inputs; i++) {
        same = p->input_shapes[i].rank == inputs[i].rank;
        for (int32_t d = 0; same && d < inputs[i].rank; d++)
            same = p->input_shapes[i].dims[d] == inputs[i].dims[d];
    }
    if (same)
        return QKV_OK;
    qkv_exec_plan *np = NULL;
    qkv_status st = qkv_plan_get(c->s, inputs, n_inputs, &np, err);
    if (st != QKV_OK)
        return st;
    if (np->stats.arena_bytes > c->arena_cap) {
        size_t cap = (np->stats.arena_bytes + 63) / 64 * 64;
        unsigned char *arena = aligned_alloc(64, cap);
        qkv_advise_hugepages(arena, cap);
        if (!arena) {
            qkv_plan_release(np);
            return qkv_error_set(err, QKV_ERR_OUT_OF_MEMORY, "out of memory: arena of %zu bytes",
                                 cap);
        }
        free(c->arena);
        c->arena = arena;
        c->arena_cap = cap;
    }
    qkv_plan_release(c->plan);
    c->plan = np;
    return QKV_OK;
}

static qkv_status push_dynamic(qkv_context *c, void *ptr, size_t bytes, qkv_error *err)
{
    if (c->n_dyn == c->cap_dyn) {
        size_t cap = c->cap_dyn ? c->cap_dyn * 2 : 16;
        void **grown = realloc(c->dyn, cap * sizeof *grown);
        if (!grown) {
            free(ptr);
            return qkv_error_set(err, QKV_ERR_OUT_OF_MEMORY, "out of memory in a dynamic node");
        }
        c->dyn = grown;
        c->cap_dyn = cap;
    }
    c->dyn[c->n_dyn++] = ptr;
    c->dyn_bytes += bytes;
    return QKV_OK;
}

/* Records a dynamic node's output for freeing at the next run: its block
 * and, for strings, each string (qkv_node_eval gave every one its own).
 * On failure t's memory is freed too. */
static qkv_status push_dynamic_tensor(qkv_context *c, qkv_tensor *t, qkv_error *err)
{
    qkv_status st = QKV_OK;
    if (t->dtype == QKV_DTYPE_STRING) {
        char **s = t->data;
        size_t n = t->data_bytes / sizeof *s;
        for (size_t e = 0; e < n && st == QKV_OK; e++) {
            st = push_dynamic(c, s[e], 0, err);
            for (size_t m = e + 1; m < n && st != QKV_OK; m++)
                free(s[m]);
        }
        if (st != QKV_OK) {
            free(t->data);
            return st;
        }
    }
    return push_dynamic(c, t->data, t->data_bytes, err);
}

/* Points every value at its bytes for this run. An empty value points at
 * qkv_empty_data(), never at NULL or into an arena that may not exist. A
 * sequence or optional points at its box (opaque to kernels), emptied here
 * or made to borrow the caller's input value. */
static void bind_values(qkv_context *c, const qkv_tensor *inputs, const qkv_value *values)
{
    const qkv_exec_plan *p = c->plan;
    const qkv_ir_graph *g = c->s->model->graph;
    for (size_t v = 0; v < p->n_values; v++) {
        const qkv_plan_value *pv = &p->values[v];
        qkv_tensor *t = &c->vals[v];
        *t = pv->t;
        switch (pv->storage) {
        case QKV_STORE_VALUE: {
            qkv_box *b = &c->boxes[v];
            qkv_box_reset(b, g->values[v].type_kind, g->values[v].dtype);
            if (values && c->input_index[v] >= 0)
                qkv_box_borrow(b, &values[c->input_index[v]]);
            t->data = b;
            continue;
        }
        case QKV_STORE_INPUT:
            t->data = inputs[c->input_index[pv->view_of]].data;
            break;
        case QKV_STORE_ARENA:
            /* a plan whose values are all empty has no arena (c->arena NULL) */
            t->data = pv->t.data_bytes ? c->arena + pv->offset : NULL;
            break;
        case QKV_STORE_CONSTANT:
        case QKV_STORE_PLANNED:
            break; /* data set in the plan */
        case QKV_STORE_NONE:
        case QKV_STORE_DYNAMIC:
            t->data = NULL;
            continue;
        }
        qkv_tensor_bind_empty(t);
    }
}

/* A step with sequence or optional inputs or outputs: the kinds and boxes
 * the host services read; a host-run Identity copies its box here. */
static qkv_status bind_step_values(qkv_context *c, const qkv_ir_node *n, qkv_host_ctx *h,
                                   const qkv_plan_step *step)
{
    const qkv_type_kind *kinds = c->kinds;
    for (size_t i = 0; i < n->n_inputs; i++)
        c->step_boxes[i] = kinds[i] != QKV_KIND_TENSOR ? &c->boxes[n->inputs[i]] : NULL;
    for (size_t j = 0; j < n->n_outputs; j++)
        c->step_boxes[n->n_inputs + j] =
            kinds[n->n_inputs + j] != QKV_KIND_TENSOR ? &c->boxes[n->outputs[j]] : NULL;
    h->in_kinds = c->kinds;
    h->out_kinds = c->kinds + n->n_inputs;
    h->in_boxes = c->step_boxes;
    h->out_boxes = c->step_boxes + n->n_inputs;
    if (!step->host_copy || n->outputs[0] < 0)
        return QKV_OK;
    qkv_error local;
    qkv_error_clear(&local);
    qkv_status st = qkv_box_copy(&c->boxes[n->outputs[0]], &c->boxes[n->inputs[0]], &local);
    if (st != QKV_OK) {
        char what[256];
        qkv_node_describe(n, n->kernel->since_version, what, sizeof what);
        return qkv_error_set(h->err, st, "%s: %s", what, local.message);
    }
    return QKV_OK;
}

static qkv_status run_step(qkv_context *c, const qkv_plan_step *step, qkv_error *err)
{
    const qkv_ir_graph *g = c->s->model->graph;
    const qkv_ir_node *n = &g->nodes[step->node];
    const qkv_kernel *k = n->kernel;
    qkv_tensor *ins = c->io, *outs = c->io + n->n_inputs;
    qkv_host_ctx h = {.node = n,
                      .version = k->since_version,
                      .err = err,
                      .pool = c->pool,
                      .gemm = qkv_session_gemm(c->s)};
    size_t limit = c->s->opts.memory_limit;
    if (limit && step->dynamic) {
        /* what packed weights, the arena and earlier dynamic nodes leave */
        size_t used = c->s->prepack.packed_bytes, total;
        if (qkv_add_overflow(used, c->plan->stats.arena_bytes, &used) ||
            qkv_add_overflow(used, c->dyn_bytes, &total))
            total = SIZE_MAX;
        h.memory_limited = true;
        h.memory_left = total < limit ? limit - total : 0;
    }
    for (size_t i = 0; i < n->n_inputs; i++) {
        if (n->inputs[i] < 0) {
            memset(&ins[i], 0, sizeof ins[i]);
            ins[i].rank = -1;
        } else {
            ins[i] = c->vals[n->inputs[i]];
        }
    }
    if (qkv_node_kinds(g, n, c->kinds, c->kinds + n->n_inputs)) {
        qkv_status st = bind_step_values(c, n, &h, step);
        if (st != QKV_OK || step->host_copy)
            return st;
    }
    if (step->dynamic) {
        qkv_status st =
            qkv_node_eval(k, n->kernel_state, &h, ins, n->n_inputs, outs, n->n_outputs);
        if (st != QKV_OK)
            return st;
        for (size_t j = 0; j < n->n_outputs; j++) {
            if (n->outputs[j] < 0 || !outs[j].data || c->kinds[n->n_inputs + j] != QKV_KIND_TENSOR)
                continue;
            c->vals[n->outputs[j]] = outs[j];
            st = push_dynamic_tensor(c, &outs[j], err);
            if (st != QKV_OK) {
                for (size_t m = j + 1; m < n->n_outputs; m++)
                    if (n->outputs[m] >= 0)
                        qkv_tensor_data_free(&outs[m]);
                return st;
            }
        }
        return QKV_OK;
    }
    for (size_t j = 0; j < n->n_outputs; j++) {
        if (n->outputs[j] < 0) {
            memset(&outs[j], 0, sizeof outs[j]);
            outs[j].rank = -1;
        } else {
            outs[j] = c->vals[n->outputs[j]];
        }
    }
    qkv_kernel_io io;
    qkv_kernel_io_init(&io, &h, ins, n->n_inputs, outs, n->n_outputs);
    io.scratch = step->scratch_bytes ? c->arena + step->scratch_offset : NULL;
    io.scratch_bytes = step->scratch_bytes;
    io.plan_state = step->plan_state;
    qkv_status st = k->compute(n->kernel_state, &io);
    if (st != QKV_OK && err && err->status == QKV_OK)
        st = io.host->error(&h, st, "compute failed without a message");
    return st;
}

static qkv_status run_plan(qkv_context *c, const qkv_tensor *inputs, const qkv_value *values,
                           size_t n_inputs, qkv_tensor *const *bound, qkv_error *err)
{
    const qkv_ir_graph *g = c->s->model->graph;
    for (size_t i = 0; !values && i < n_inputs && i < g->n_inputs; i++)
        if (g->values[g->inputs[i]].type_kind != QKV_KIND_TENSOR)
            return qkv_error_set(err, QKV_ERR_TYPE,
                                 "input %zu '%s' is a %s: pass it with qkv_run_values", i,
                                 g->values[g->inputs[i]].name,
                                 qkv_kind_name(g->values[g->inputs[i]].type_kind));
    qkv_status st = qkv_session_check_inputs(c->s, inputs, n_inputs, true, err);
    if (st != QKV_OK)
        return st;
    c->have_outputs = false;
    free_dynamic(c);
    st = use_plan(c, inputs, n_inputs, err);
    if (st != QKV_OK)
        return st;
    const qkv_exec_plan *p = c->plan;
    bind_values(c, inputs, values);
    if (bound) {
        st = qkv_io_bind_outputs(p, g, c->vals, inputs, bound, err);
        if (st != QKV_OK)
            return st;
    }
    if (c->profiling)
        c->n_profiled = 0;
    for (size_t i = 0; i < p->n_steps && st == QKV_OK; i++) {
        if (!c->profiling) {
            st = run_step(c, &p->steps[i], err);
            continue;
        }
        struct timespec t0, t1;
        clock_gettime(CLOCK_MONOTONIC, &t0);
        st = run_step(c, &p->steps[i], err);
        clock_gettime(CLOCK_MONOTONIC, &t1);
        c->step_node[i] = p->steps[i].node;
        c->step_ms[i] =
            (double)(t1.tv_sec - t0.tv_sec) * 1e3 + (double)(t1.tv_nsec - t0.tv_nsec) / 1e6;
        c->n_profiled = i + 1;
    }
    if (st != QKV_OK)
        return st;
    for (size_t i = 0; i < p->n_copies; i++) {
        qkv_tensor *t = &c->vals[p->copies[i].value];
        if (!t->data_bytes)
            continue; /* empty: no bytes to own (bound to a non-NULL pointer) */
        unsigned char *dst = c->arena + p->copies[i].offset;
        memcpy(dst, t->data, t->data_bytes);
        t->data = dst;
    }
    if (bound) {
        st = qkv_io_finish_outputs(p, g, c->vals, bound, err);
        if (st != QKV_OK)
            return st;
    }
    for (size_t i = 0; i < g->n_outputs; i++) {
        qkv_tensor *o = &c->outputs[i];
        *o = c->vals[g->outputs[i]];
        if (bound && bound[i])
            o->data = bound[i]->data;
        size_t elems;
        if (o->dtype == QKV_DTYPE_STRING && qkv_shape_elements(o->dims, o->rank, &elems))
            o->data_bytes = elems * sizeof(char *); /* the characters after it are not counted */
    }
    c->have_outputs = true;
    return QKV_OK;
}

qkv_status qkv_context_run(qkv_context *c, const qkv_tensor *inputs, size_t n_inputs,
                           qkv_tensor *const *bound, qkv_error *err)
{
    qkv_log_scope scope;
    qkv_log_enter(&c->s->opts, &scope);
    qkv_status st = run_plan(c, inputs, NULL, n_inputs, bound, err);
    qkv_log_leave(&scope);
    return st;
}

qkv_session *qkv_context_session(const qkv_context *c)
{
    return c->s;
}

qkv_status qkv_run(qkv_context *c, const qkv_tensor *inputs, size_t n_inputs, qkv_error *err)
{
    if (!c)
        return qkv_error_set(err, QKV_ERR_INVALID_ARGUMENT, "qkv_run: NULL context");
    qkv_error_clear(err);
    return qkv_context_run(c, inputs, n_inputs, NULL, err);
}

const qkv_tensor *qkv_context_output(const qkv_context *c, size_t i)
{
    if (!c || !c->have_outputs || i >= c->s->model->graph->n_outputs)
        return NULL;
    const qkv_ir_graph *g = c->s->model->graph;
    if (g->values[g->outputs[i]].type_kind != QKV_KIND_TENSOR)
        return NULL; /* qkv_context_output_value */
    return &c->outputs[i];
}

/* ---- sequence and optional values ------------------------------------------ */

/* Checks value input i against the model and makes the plan's key tensor
 * for it: the tensor itself, or for a sequence/optional a rank-0
 * placeholder without data (its contents do not change the plan). */
static qkv_status check_value(const qkv_ir_graph *g, size_t i, const qkv_value *in,
                              qkv_tensor *key, qkv_error *err)
{
    const qkv_ir_value *v = &g->values[g->inputs[i]];
    if (!qkv_struct_usable(in, QKV_STRUCT_END(qkv_value, tensors)))
        return qkv_error_set(err, QKV_ERR_INVALID_ARGUMENT,
                             "qkv_run_values: input %zu '%s': struct_size too small (set it to "
                             "sizeof(qkv_value))",
                             i, v->name);
    if (in->kind != v->type_kind)
        return qkv_error_set(err, QKV_ERR_TYPE, "input %zu '%s' is a %s, a %s was given", i,
                             v->name, qkv_kind_name(v->type_kind), qkv_kind_name(in->kind));
    bool optional = (in->kind & QKV_KIND_OPTIONAL) != 0;
    bool sequence = (in->kind & QKV_KIND_SEQUENCE) != 0;
    size_t want_max = sequence ? SIZE_MAX : 1;
    if (optional && !in->has_element)
        want_max = 0;
    if (in->count > want_max || (!sequence && !(optional && !in->has_element) && in->count != 1))
        return qkv_error_set(err, QKV_ERR_INVALID_ARGUMENT,
                             "input %zu '%s': a %s%s with %zu tensors", i, v->name,
                             optional && !in->has_element ? "empty " : "",
                             qkv_kind_name(in->kind), in->count);
    if (in->count && !in->tensors)
        return qkv_error_set(err, QKV_ERR_INVALID_ARGUMENT, "input %zu '%s': tensors is NULL", i,
                             v->name);
    memset(key, 0, sizeof *key);
    key->dtype = v->dtype;
    if (in->kind == QKV_KIND_TENSOR) {
        *key = in->tensors[0];
        return QKV_OK; /* checked as a tensor input */
    }
    qkv_dtype want = v->dtype != QKV_DTYPE_UNDEFINED ? v->dtype
                     : in->count                     ? in->tensors[0].dtype
                                                     : QKV_DTYPE_UNDEFINED;
    for (size_t e = 0; e < in->count; e++) {
        const qkv_tensor *t = &in->tensors[e];
        size_t elems, bytes;
        if (t->dtype != want)
            return qkv_error_set(err, QKV_ERR_TYPE, "input %zu '%s': element %zu is %s, expected %s",
                                 i, v->name, e, qkv_dtype_name(t->dtype), qkv_dtype_name(want));
        if (t->rank < 0 || t->rank > QKV_MAX_RANK || !qkv_shape_elements(t->dims, t->rank, &elems) ||
            !qkv_dtype_storage_bytes(t->dtype, elems, &bytes))
            return qkv_error_set(err, QKV_ERR_SHAPE,
                                 "input %zu '%s': element %zu has a bad rank (%d), a negative dim "
                                 "or a size overflow",
                                 i, v->name, e, t->rank);
        if ((bytes && !t->data) || t->data_bytes < bytes)
            return qkv_error_set(err, QKV_ERR_INVALID_ARGUMENT,
                                 "input %zu '%s': element %zu has %zu bytes of data, its shape "
                                 "needs %zu",
                                 i, v->name, e, t->data ? t->data_bytes : 0, bytes);
    }
    return QKV_OK;
}

qkv_status qkv_run_values(qkv_context *c, const qkv_value *inputs, size_t n_inputs,
                          qkv_error *err)
{
    if (!c)
        return qkv_error_set(err, QKV_ERR_INVALID_ARGUMENT, "qkv_run_values: NULL context");
    qkv_error_clear(err);
    const qkv_ir_graph *g = c->s->model->graph;
    if (n_inputs != g->n_inputs)
        return qkv_error_set(err, QKV_ERR_INVALID_ARGUMENT,
                             "the model has %zu inputs, %zu were given", g->n_inputs, n_inputs);
    if (n_inputs && !inputs)
        return qkv_error_set(err, QKV_ERR_INVALID_ARGUMENT, "inputs is NULL");
    for (size_t i = 0; i < n_inputs; i++) {
        qkv_status st = check_value(g, i, &inputs[i], &c->placeholders[i], err);
        if (st != QKV_OK)
            return st;
    }
    qkv_log_scope scope;
    qkv_log_enter(&c->s->opts, &scope);
    qkv_status st = run_plan(c, c->placeholders, inputs, n_inputs, NULL, err);
    qkv_log_leave(&scope);
    return st;
}

qkv_status qkv_context_output_value(const qkv_context *c, size_t i, qkv_value *out)
{
    const size_t need = QKV_STRUCT_END(qkv_value, tensors);
    if (!c || !qkv_struct_usable(out, need) || !c->have_outputs ||
        i >= c->s->model->graph->n_outputs)
        return QKV_ERR_INVALID_ARGUMENT;
    const qkv_ir_graph *g = c->s->model->graph;
    int32_t id = g->outputs[i];
    qkv_value all = {.struct_size = sizeof all, .kind = QKV_KIND_TENSOR,
                     .elem_dtype = c->outputs[i].dtype, .has_element = 1, .count = 1,
                     .tensors = &c->outputs[i]};
    if (g->values[id].type_kind != QKV_KIND_TENSOR)
        qkv_box_view(&c->boxes[id], &all);
    qkv_struct_fill(out, &all, sizeof all, need);
    return QKV_OK;
}

qkv_status qkv_plan(qkv_context *c, const qkv_tensor *inputs, size_t n_inputs,
                    qkv_plan_stats *stats, qkv_error *err)
{
    if (!c)
        return qkv_error_set(err, QKV_ERR_INVALID_ARGUMENT, "qkv_plan: NULL context");
    if (stats && !qkv_struct_usable(stats, QKV_STRUCT_END(qkv_plan_stats, arena_bytes)))
        return qkv_error_set(err, QKV_ERR_INVALID_ARGUMENT,
                             "qkv_plan: stats->struct_size %zu is too small (set it to "
                             "sizeof(qkv_plan_stats))",
                             stats->struct_size);
    qkv_status st = qkv_session_check_inputs(c->s, inputs, n_inputs, false, err);
    if (st == QKV_OK) {
        qkv_log_scope scope;
        qkv_log_enter(&c->s->opts, &scope);
        st = use_plan(c, inputs, n_inputs, err);
        qkv_log_leave(&scope);
    }
    if (st == QKV_OK && stats)
        qkv_context_plan_stats(c, stats);
    return st;
}

qkv_status qkv_context_plan_stats(const qkv_context *c, qkv_plan_stats *stats)
{
    const size_t need = QKV_STRUCT_END(qkv_plan_stats, arena_bytes);
    if (!c || !c->plan || !qkv_struct_usable(stats, need))
        return QKV_ERR_INVALID_ARGUMENT;
    qkv_plan_stats all = c->plan->stats;
    all.struct_size = sizeof all;
    qkv_struct_fill(stats, &all, sizeof all, need);
    return QKV_OK;
}

/* ---- profiling ---------------------------------------------------------------- */

qkv_status qkv_context_set_profiling(qkv_context *c, int enable, qkv_error *err)
{
    if (!c)
        return qkv_error_set(err, QKV_ERR_INVALID_ARGUMENT, "qkv_context_set_profiling: NULL");
    if (enable && !c->step_ms) {
        size_t n = c->s->model->graph->n_nodes + 1;
        double *ms = calloc(n, sizeof *ms);
        int32_t *node = calloc(n, sizeof *node);
        if (!ms || !node) {
            free(ms);
            free(node);
            return qkv_error_set(err, QKV_ERR_OUT_OF_MEMORY, "out of memory for the profile");
        }
        c->step_ms = ms;
        c->step_node = node;
    }
    c->profiling = enable != 0;
    c->n_profiled = 0;
    return QKV_OK;
}

size_t qkv_context_profile_count(const qkv_context *c)
{
    return c ? c->n_profiled : 0;
}

qkv_status qkv_context_profile(const qkv_context *c, size_t i, qkv_profile_entry *out)
{
    const size_t need = QKV_STRUCT_END(qkv_profile_entry, node);
    if (!c || !qkv_struct_usable(out, need) || i >= c->n_profiled)
        return QKV_ERR_INVALID_ARGUMENT;
    qkv_profile_entry all = {.struct_size = sizeof all,
                             .node = (size_t)c->step_node[i],
                             .ms = c->step_ms[i]};
    qkv_struct_fill(out, &all, sizeof all, need);
    return QKV_OK;
}
