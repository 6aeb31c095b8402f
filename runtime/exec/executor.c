/*
 * executor.c - run contexts: bind inputs, resolve every value's bytes for the
 * current plan, run the steps, hand out the outputs.
 *
 * A context owns its thread pool and a frame per graph (frame.h: the main
 * graph's, and one per subgraph its control-flow nodes run), each with its
 * arena and the small arrays a step needs, all sized when the context or a
 * new plan first needs them, so a run with shapes seen before allocates
 * nothing (dynamic nodes aside: their outputs are only known when they run).
 */
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "api.h"
#include "error.h"
#include "frame.h"
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
    qkv_frame *root;     /* the main graph */
    qkv_frame **bodies;  /* (s->n_bodies) each subgraph's, made when first run */
    qkv_tensor *outputs; /* (n_outputs) */
    bool have_outputs;
    qkv_tensor *placeholders; /* (n_inputs) qkv_run_values: the tensors the plan is keyed on */
    /* profiling (`qkv run --profile`) */
    bool profiling;
    double *step_ms;    /* (n_nodes + 1) time of step i of the last profiled run */
    int32_t *step_node; /* (n_nodes + 1) its node */
    size_t n_profiled;  /* steps of the last profiled run */
    /* qkv_context_cancel's request, set from any thread and consumed by the
     * run it stops (qkv_context_take_cancel) */
    atomic_bool cancel;
};

qkv_status qkv_context_create(qkv_session *s, qkv_context **out, qkv_error *err)
{
    if (!s || !out)
        return qkv_error_set(err, QKV_ERR_INVALID_ARGUMENT, "qkv_context_create: NULL argument");
    const qkv_ir_graph *g = s->model->graph;
    qkv_context *c = calloc(1, sizeof *c);
    if (c) {
        c->s = s;
        c->root = qkv_frame_create(g);
        c->bodies = calloc(s->n_bodies + 1, sizeof *c->bodies);
        c->outputs = calloc(g->n_outputs + 1, sizeof *c->outputs);
        c->placeholders = calloc(g->n_inputs + 1, sizeof *c->placeholders);
        c->pool = qkv_threadpool_create(s->opts.threads);
    }
    if (!c || !c->root || !c->bodies || !c->outputs || !c->placeholders || !c->pool) {
        qkv_context_destroy(c);
        return qkv_error_set(err, QKV_ERR_OUT_OF_MEMORY, "out of memory creating a context");
    }
    *out = c;
    return QKV_OK;
}

void qkv_context_destroy(qkv_context *c)
{
    if (!c)
        return;
    for (size_t i = 0; c->bodies && i < c->s->n_bodies; i++)
        qkv_frame_destroy(c->bodies[i]);
    free(c->bodies);
    qkv_frame_destroy(c->root);
    qkv_threadpool_destroy(c->pool);
    free(c->outputs);
    free(c->placeholders);
    free(c->step_ms);
    free(c->step_node);
    free(c);
}

qkv_status qkv_context_body_frame(qkv_context *c, int32_t body_id, qkv_frame **out, qkv_error *err)
{
    *out = NULL;
    if (body_id < 0 || (size_t)body_id >= c->s->n_bodies)
        return qkv_error_set(err, QKV_ERR_INTERNAL, "no subgraph %d in this session", (int)body_id);
    if (!c->bodies[body_id] && !(c->bodies[body_id] = qkv_frame_create(c->s->bodies[body_id].g)))
        return qkv_error_set(err, QKV_ERR_OUT_OF_MEMORY, "out of memory running a subgraph");
    *out = c->bodies[body_id];
    return QKV_OK;
}

qkv_threadpool *qkv_context_pool(const qkv_context *c) { return c->pool; }

void qkv_context_cancel(qkv_context *c)
{
    if (c)
        atomic_store_explicit(&c->cancel, true, memory_order_relaxed);
}

bool qkv_context_take_cancel(qkv_context *c)
{
    /* a plain load first: the exchange's write would cost every step */
    return atomic_load_explicit(&c->cancel, memory_order_relaxed) &&
           atomic_exchange_explicit(&c->cancel, false, memory_order_relaxed);
}

static qkv_status run_plan(qkv_context *c, const qkv_tensor *inputs, const qkv_value *values,
                           size_t n_inputs, qkv_tensor *const *bound, qkv_error *err)
{
    const qkv_ir_graph *g = c->s->model->graph;
    for (size_t i = 0; !values && i < n_inputs && i < g->n_inputs; i++)
        if (g->values[g->inputs[i]].type_kind != QKV_KIND_TENSOR)
            return qkv_error_set(
                err, QKV_ERR_TYPE, "input %zu '%s' is a %s: pass it with qkv_run_values", i,
                g->values[g->inputs[i]].name, qkv_kind_name(g->values[g->inputs[i]].type_kind));
    qkv_status st = qkv_session_check_inputs(c->s, inputs, n_inputs, true, err);
    if (st != QKV_OK)
        return st;
    c->have_outputs = false;
    qkv_frame *f = c->root;
    qkv_frame_free_dynamic(f);
    st = qkv_frame_use_plan(c->s, f, inputs, n_inputs, err);
    if (st != QKV_OK)
        return st;
    const qkv_exec_plan *p = f->plan;
    qkv_frame_bind(f, inputs, values);
    if (bound) {
        st = qkv_io_bind_outputs(p, g, f->vals, inputs, bound, err);
        if (st != QKV_OK)
            return st;
    }
    if (c->profiling)
        c->n_profiled = 0;
    for (size_t i = 0; i < p->n_steps && st == QKV_OK; i++) {
        if (!c->profiling) {
            st = qkv_frame_run_step(c, f, &p->steps[i], err);
            continue;
        }
        struct timespec t0, t1;
        clock_gettime(CLOCK_MONOTONIC, &t0);
        st = qkv_frame_run_step(c, f, &p->steps[i], err);
        clock_gettime(CLOCK_MONOTONIC, &t1);
        c->step_node[i] = p->steps[i].node;
        c->step_ms[i] =
            (double)(t1.tv_sec - t0.tv_sec) * 1e3 + (double)(t1.tv_nsec - t0.tv_nsec) / 1e6;
        c->n_profiled = i + 1;
    }
    if (st != QKV_OK)
        return st;
    qkv_frame_copy_outputs(f);
    if (bound) {
        st = qkv_io_finish_outputs(p, g, f->vals, bound, err);
        if (st != QKV_OK)
            return st;
    }
    for (size_t i = 0; i < g->n_outputs; i++) {
        qkv_tensor *o = &c->outputs[i];
        *o = f->vals[g->outputs[i]];
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

qkv_session *qkv_context_session(const qkv_context *c) { return c->s; }

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
static qkv_status check_value(const qkv_ir_graph *g, size_t i, const qkv_value *in, qkv_tensor *key,
                              qkv_error *err)
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
        return qkv_error_set(
            err, QKV_ERR_INVALID_ARGUMENT, "input %zu '%s': a %s%s with %zu tensors", i, v->name,
            optional && !in->has_element ? "empty " : "", qkv_kind_name(in->kind), in->count);
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
            return qkv_error_set(err, QKV_ERR_TYPE,
                                 "input %zu '%s': element %zu is %s, expected %s", i, v->name, e,
                                 qkv_dtype_name(t->dtype), qkv_dtype_name(want));
        if (t->rank < 0 || t->rank > QKV_MAX_RANK ||
            !qkv_shape_elements(t->dims, t->rank, &elems) ||
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

qkv_status qkv_run_values(qkv_context *c, const qkv_value *inputs, size_t n_inputs, qkv_error *err)
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
    qkv_value all = {.struct_size = sizeof all,
                     .kind = QKV_KIND_TENSOR,
                     .elem_dtype = c->outputs[i].dtype,
                     .has_element = 1,
                     .count = 1,
                     .tensors = &c->outputs[i]};
    if (g->values[id].type_kind != QKV_KIND_TENSOR)
        qkv_box_view(&c->root->boxes[id], &all);
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
        st = qkv_frame_use_plan(c->s, c->root, inputs, n_inputs, err);
        qkv_log_leave(&scope);
    }
    if (st == QKV_OK && stats)
        qkv_context_plan_stats(c, stats);
    return st;
}

qkv_status qkv_context_plan_stats(const qkv_context *c, qkv_plan_stats *stats)
{
    const size_t need = QKV_STRUCT_END(qkv_plan_stats, arena_bytes);
    if (!c || !c->root->plan || !qkv_struct_usable(stats, need))
        return QKV_ERR_INVALID_ARGUMENT;
    qkv_plan_stats all = c->root->plan->stats;
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

size_t qkv_context_profile_count(const qkv_context *c) { return c ? c->n_profiled : 0; }

qkv_status qkv_context_profile(const qkv_context *c, size_t i, qkv_profile_entry *out)
{
    const size_t need = QKV_STRUCT_END(qkv_profile_entry, node);
    if (!c || !qkv_struct_usable(out, need) || i >= c->n_profiled)
        return QKV_ERR_INVALID_ARGUMENT;
    qkv_profile_entry all = {
        .struct_size = sizeof all, .node = (size_t)c->step_node[i], .ms = c->step_ms[i]};
    qkv_struct_fill(out, &all, sizeof all, need);
    return QKV_OK;
}
