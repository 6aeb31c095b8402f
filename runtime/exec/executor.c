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

struct qkv_context {
    qkv_session *s;
    qkv_threadpool *pool;
    qkv_frame *root;      /* the main graph */
    qkv_frame **bodies;   /* (s->n_bodies) each subgraph's, made when first run */
    qkv_tensor *outputs; /* (n_outputs) */
    bool have_outputs;
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
    if (c) {
        c->s = s;
        c->root = qkv_frame_create(g);
        c->bodies = calloc(s->n_bodies + 1, sizeof *c->bodies);
        c->outputs = calloc(g->n_outputs + 1, sizeof *c->outputs);
        c->pool = qkv_threadpool_create(s->opts.threads);
    }
    if (!c || !c->root || !c->bodies || !c->outputs || !c->pool) {
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
    free(c->step_ms);
    free(c->step_node);
    free(c);
}

qkv_status qkv_context_body_frame(qkv_context *c, int32_t body_id, qkv_frame **out,
                                  qkv_error *err)
{
    *out = NULL;
    if (body_id < 0 || (size_t)body_id >= c->s->n_bodies)
        return qkv_error_set(err, QKV_ERR_INTERNAL, "no subgraph %d in this session",
                             (int)body_id);
    if (!c->bodies[body_id] && !(c->bodies[body_id] = qkv_frame_create(c->s->bodies[body_id].g)))
        return qkv_error_set(err, QKV_ERR_OUT_OF_MEMORY, "out of memory running a subgraph");
    *out = c->bodies[body_id];
    return QKV_OK;
}

qkv_threadpool *qkv_context_pool(const qkv_context *c)
{
    return c->pool;
}

static qkv_status run_plan(qkv_context *c, const qkv_tensor *inputs, size_t n_inputs,
                           qkv_tensor *const *bound, qkv_error *err)
{
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
    const qkv_ir_graph *g = c->s->model->graph;
    qkv_frame_bind(f, inputs);
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
        c->outputs[i] = f->vals[g->outputs[i]];
        if (bound && bound[i])
            c->outputs[i].data = bound[i]->data;
    }
    c->have_outputs = true;
    return QKV_OK;
}

qkv_status qkv_context_run(qkv_context *c, const qkv_tensor *inputs, size_t n_inputs,
                           qkv_tensor *const *bound, qkv_error *err)
{
    qkv_log_scope scope;
    qkv_log_enter(&c->s->opts, &scope);
    qkv_status st = run_plan(c, inputs, n_inputs, bound, err);
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
    return &c->outputs[i];
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
