/*
 * frame.c - one graph's plan run in a run context (frame.h): binding values,
 * running steps, and the subgraph runs control-flow nodes ask for.
 */
#include "frame.h"

#include <stdlib.h>
#include <string.h>

#include "backend.h" /* the session's GEMM provider */
#include "error.h"
#include "hugepages.h"
#include "io_binding.h" /* qkv_context_session */
#include "node_eval.h"
#include "session.h"
#include "size_math.h"
#include "value_store.h"

qkv_frame *qkv_frame_create(const qkv_ir_graph *g)
{
    qkv_frame *f = calloc(1, sizeof *f);
    if (!f)
        return NULL;
    size_t max_in, max_out;
    qkv_graph_max_arity(g, &max_in, &max_out);
    f->g = g;
    f->n_bound = qkv_graph_bound_ids(g, NULL);
    f->vals = calloc(g->n_values + 1, sizeof *f->vals);
    f->input_index = malloc((g->n_values + 1) * sizeof *f->input_index);
    f->io = calloc(max_in + max_out, sizeof *f->io);
    f->bound = calloc(f->n_bound + 1, sizeof *f->bound);
    f->outs = calloc(g->n_outputs + 1, sizeof *f->outs);
    f->boxes = calloc(g->n_values + 1, sizeof *f->boxes);
    f->kinds = calloc(max_in + max_out + 1, sizeof *f->kinds);
    f->step_boxes = calloc(max_in + max_out + 1, sizeof *f->step_boxes);
    f->bound_values = calloc(f->n_bound + 1, sizeof *f->bound_values);
    int32_t *ids = calloc(f->n_bound + 1, sizeof *ids);
    if (!f->vals || !f->input_index || !f->io || !f->bound || !f->outs || !f->boxes || !f->kinds ||
        !f->step_boxes || !f->bound_values || !ids) {
        free(ids);
        qkv_frame_destroy(f);
        return NULL;
    }
    for (size_t i = 0; i < g->n_values; i++)
        f->input_index[i] = -1;
    qkv_graph_bound_ids(g, ids);
    for (size_t i = 0; i < f->n_bound; i++)
        f->input_index[ids[i]] = (int32_t)i;
    free(ids);
    return f;
}

void qkv_frame_free_dynamic(qkv_frame *f)
{
    for (size_t i = 0; i < f->n_dyn; i++)
        free(f->dyn[i]);
    f->n_dyn = 0;
    f->dyn_bytes = 0;
}

void qkv_frame_destroy(qkv_frame *f)
{
    if (!f)
        return;
    qkv_frame_free_dynamic(f);
    free(f->dyn);
    for (size_t i = 0; i < f->n_work; i++)
        free(f->work[i]);
    free(f->work);
    free(f->work_cap);
    qkv_plan_release(f->plan);
    free(f->arena);
    free(f->vals);
    free(f->input_index);
    free(f->io);
    free(f->bound);
    free(f->outs);
    for (size_t v = 0; f->boxes && v < f->g->n_values; v++)
        qkv_box_fini(&f->boxes[v]);
    free(f->boxes);
    for (size_t i = 0; i < f->n_owned; i++)
        qkv_box_fini(&f->owned[i]);
    free(f->owned);
    free(f->kinds);
    free(f->step_boxes);
    free(f->bound_values);
    free(f);
}

qkv_status qkv_frame_use_plan(qkv_session *s, qkv_frame *f, const qkv_tensor *inputs,
                              size_t n_inputs, qkv_error *err)
{
    qkv_exec_plan *p = f->plan;
    bool same = p && p->n_inputs == n_inputs;
    for (size_t i = 0; same && i < n_inputs; i++) {
        same = p->input_shapes[i].rank == inputs[i].rank;
        for (int32_t d = 0; same && d < inputs[i].rank; d++)
            same = p->input_shapes[i].dims[d] == inputs[i].dims[d];
    }
    if (same)
        return QKV_OK;
    qkv_exec_plan *np = NULL;
    qkv_status st = f->g->body_id < 0
                        ? qkv_plan_get(s, inputs, n_inputs, &np, err)
                        : qkv_body_plan_get(s, f->g->body_id, inputs, n_inputs, &np, err);
    if (st != QKV_OK)
        return st;
    if (np->stats.arena_bytes > f->arena_cap) {
        size_t cap = (np->stats.arena_bytes + 63) / 64 * 64;
        unsigned char *arena = aligned_alloc(64, cap);
        qkv_advise_hugepages(arena, cap);
        if (!arena) {
            qkv_plan_release(np);
            return qkv_error_set(err, QKV_ERR_OUT_OF_MEMORY, "out of memory: arena of %zu bytes",
                                 cap);
        }
        free(f->arena);
        f->arena = arena;
        f->arena_cap = cap;
    }
    qkv_plan_release(f->plan);
    f->plan = np;
    return QKV_OK;
}

static qkv_status push_dynamic(qkv_frame *f, void *ptr, size_t bytes, qkv_error *err)
{
    if (f->n_dyn == f->cap_dyn) {
        size_t cap = f->cap_dyn ? f->cap_dyn * 2 : 16;
        void **grown = realloc(f->dyn, cap * sizeof *grown);
        if (!grown) {
            free(ptr);
            return qkv_error_set(err, QKV_ERR_OUT_OF_MEMORY, "out of memory in a dynamic node");
        }
        f->dyn = grown;
        f->cap_dyn = cap;
    }
    f->dyn[f->n_dyn++] = ptr;
    f->dyn_bytes += bytes;
    return QKV_OK;
}

/* Records a dynamic node's output for freeing at the next run: its block
 * and, for strings, each string (qkv_node_eval gave every one its own).
 * On failure t's memory is freed too. */
static qkv_status push_dynamic_tensor(qkv_frame *f, qkv_tensor *t, qkv_error *err)
{
    qkv_status st = QKV_OK;
    if (t->dtype == QKV_DTYPE_STRING) {
        char **s = t->data;
        size_t n = t->data_bytes / sizeof *s;
        for (size_t e = 0; e < n && st == QKV_OK; e++) {
            st = push_dynamic(f, s[e], 0, err);
            for (size_t m = e + 1; m < n && st != QKV_OK; m++)
                free(s[m]);
        }
        if (st != QKV_OK) {
            free(t->data);
            return st;
        }
    }
    return push_dynamic(f, t->data, t->data_bytes, err);
}

/* An empty value points at qkv_empty_data(), never at NULL or into an
 * arena that may not exist. A sequence or optional points at its box
 * (opaque to kernels). */
void qkv_frame_bind(qkv_frame *f, const qkv_tensor *inputs, const qkv_value *values)
{
    const qkv_exec_plan *p = f->plan;
    const qkv_ir_graph *g = f->g;
    for (size_t v = 0; v < p->n_values; v++) {
        const qkv_plan_value *pv = &p->values[v];
        qkv_tensor *t = &f->vals[v];
        *t = pv->t;
        switch (pv->storage) {
        case QKV_STORE_VALUE: {
            qkv_box *b = &f->boxes[v];
            qkv_box_reset(b, g->values[v].type_kind, g->values[v].dtype);
            if (values && f->input_index[v] >= 0)
                qkv_box_borrow(b, &values[f->input_index[v]]);
            t->data = b;
            continue;
        }
        case QKV_STORE_INPUT:
            t->data = inputs[f->input_index[pv->view_of]].data;
            break;
        case QKV_STORE_ARENA:
            /* a plan whose values are all empty has no arena (f->arena NULL) */
            t->data = pv->t.data_bytes ? f->arena + pv->offset : NULL;
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

/* A dynamic step: inferred, allocated and computed now; its outputs join
 * the frame's dynamic buffers. */
static qkv_status run_dynamic(qkv_frame *f, const qkv_ir_node *n, qkv_host_ctx *h, qkv_tensor *ins,
                              qkv_tensor *outs, qkv_error *err)
{
    const qkv_kernel *k = n->kernel;
    qkv_status st = qkv_node_eval(k, n->kernel_state, h, ins, n->n_inputs, outs, n->n_outputs);
    if (st != QKV_OK)
        return st;
    for (size_t j = 0; j < n->n_outputs; j++) {
        if (n->outputs[j] < 0 || !outs[j].data || f->kinds[n->n_inputs + j] != QKV_KIND_TENSOR)
            continue;
        f->vals[n->outputs[j]] = outs[j];
        st = push_dynamic_tensor(f, &outs[j], err);
        if (st != QKV_OK) {
            for (size_t m = j + 1; m < n->n_outputs; m++)
                if (n->outputs[m] >= 0 && f->kinds[n->n_inputs + m] == QKV_KIND_TENSOR)
                    qkv_tensor_data_free(&outs[m]);
            return st;
        }
    }
    return QKV_OK;
}

/* A step with sequence or optional inputs or outputs: the kinds and boxes
 * the host services read; a host-run Identity copies its box here. */
static qkv_status bind_step_values(qkv_frame *f, const qkv_ir_node *n, qkv_host_ctx *h,
                                   const qkv_plan_step *step)
{
    const qkv_type_kind *kinds = f->kinds;
    for (size_t i = 0; i < n->n_inputs; i++)
        f->step_boxes[i] = kinds[i] != QKV_KIND_TENSOR ? &f->boxes[n->inputs[i]] : NULL;
    for (size_t j = 0; j < n->n_outputs; j++)
        f->step_boxes[n->n_inputs + j] =
            kinds[n->n_inputs + j] != QKV_KIND_TENSOR ? &f->boxes[n->outputs[j]] : NULL;
    h->in_kinds = f->kinds;
    h->out_kinds = f->kinds + n->n_inputs;
    h->in_boxes = f->step_boxes;
    h->out_boxes = f->step_boxes + n->n_inputs;
    if (!step->host_copy || n->outputs[0] < 0)
        return QKV_OK;
    qkv_error local;
    qkv_error_clear(&local);
    qkv_status st = qkv_box_copy(&f->boxes[n->outputs[0]], &f->boxes[n->inputs[0]], &local);
    if (st != QKV_OK) {
        char what[256];
        qkv_node_describe(n, n->kernel->since_version, what, sizeof what);
        return qkv_error_set(h->err, st, "%s: %s", what, local.message);
    }
    return QKV_OK;
}

qkv_status qkv_frame_run_step(qkv_context *c, qkv_frame *f, const qkv_plan_step *step,
                              qkv_error *err)
{
    qkv_session *s = qkv_context_session(c);
    const qkv_ir_node *n = &f->g->nodes[step->node];
    const qkv_kernel *k = n->kernel;
    if (qkv_context_take_cancel(c)) {
        char what[256];
        qkv_node_describe(n, k->since_version, what, sizeof what);
        return qkv_error_set(err, QKV_ERR_CANCELLED, "run cancelled (qkv_context_cancel) before %s",
                             what);
    }
    qkv_tensor *ins = f->io, *outs = f->io + n->n_inputs;
    qkv_host_ctx h = {.node = n,
                      .version = k->since_version,
                      .err = err,
                      .pool = qkv_context_pool(c),
                      .gemm = qkv_session_gemm(s),
                      .context = c,
                      .frame = f};
    size_t limit = s->opts.memory_limit;
    if (limit && (step->dynamic || qkv_node_has_subgraphs(n))) {
        /* what packed weights, the arena and earlier dynamic nodes leave */
        size_t used = s->prepack.packed_bytes, total;
        if (qkv_add_overflow(used, f->plan->stats.arena_bytes, &used) ||
            qkv_add_overflow(used, f->dyn_bytes, &total))
            total = SIZE_MAX;
        h.memory_limited = true;
        h.memory_left = total < limit ? limit - total : 0;
    }
    for (size_t i = 0; i < n->n_inputs; i++) {
        if (n->inputs[i] < 0) {
            memset(&ins[i], 0, sizeof ins[i]);
            ins[i].rank = -1;
        } else {
            ins[i] = f->vals[n->inputs[i]];
        }
    }
    if (qkv_node_kinds(f->g, n, f->kinds, f->kinds + n->n_inputs)) {
        qkv_status st = bind_step_values(f, n, &h, step);
        if (st != QKV_OK || step->host_copy)
            return st;
    }
    if (step->dynamic)
        return run_dynamic(f, n, &h, ins, outs, err);
    for (size_t j = 0; j < n->n_outputs; j++) {
        if (n->outputs[j] < 0) {
            memset(&outs[j], 0, sizeof outs[j]);
            outs[j].rank = -1;
        } else {
            outs[j] = f->vals[n->outputs[j]];
        }
    }
    qkv_kernel_io io;
    qkv_kernel_io_init(&io, &h, ins, n->n_inputs, outs, n->n_outputs);
    io.scratch = step->scratch_bytes ? f->arena + step->scratch_offset : NULL;
    io.scratch_bytes = step->scratch_bytes;
    io.plan_state = step->plan_state;
    qkv_status st = k->compute(n->kernel_state, &io);
    if (st != QKV_OK && err && err->status == QKV_OK)
        st = io.host->error(&h, st, "compute failed without a message");
    return st;
}

void qkv_frame_copy_outputs(qkv_frame *f)
{
    const qkv_exec_plan *p = f->plan;
    for (size_t i = 0; i < p->n_copies; i++) {
        qkv_tensor *t = &f->vals[p->copies[i].value];
        if (!t->data_bytes)
            continue; /* empty: no bytes to own (bound to a non-NULL pointer) */
        unsigned char *dst = f->arena + p->copies[i].offset;
        memcpy(dst, t->data, t->data_bytes);
        t->data = dst;
    }
}

/* ---- subgraphs run by control-flow nodes ----------------------------------- */

/* Bound input `slot` of f, declared `v`, gets src, a value of kind `from`
 * (a tensor, or for a sequence or optional its box in src->data): a tensor
 * as it is, the element of an optional tensor, or for a declared sequence
 * or optional a placeholder tensor (its plan does not depend on the
 * contents) and a view of the contents for its box to borrow. */
static qkv_status bind_body_value(qkv_host_ctx *h, qkv_frame *f, size_t slot, const qkv_ir_value *v,
                                  const qkv_tensor *src, qkv_type_kind from, const char *role,
                                  size_t index)
{
    const qkv_ir_graph *g = f->g;
    qkv_type_kind to = v->type_kind;
    const qkv_box *box = from != QKV_KIND_TENSOR ? src->data : NULL;
    if (!qkv_kind_converts(from, to))
        return qkv_host_api_get()->error(
            h, QKV_ERR_TYPE, "subgraph '%s': %s %zu '%s' is a %s, the node gives it a %s", g->name,
            role, index, v->name, qkv_kind_name(to), qkv_kind_name(from));
    if (from != QKV_KIND_TENSOR && !box)
        return qkv_host_api_get()->error(h, QKV_ERR_INTERNAL,
                                         "subgraph '%s' reads '%s', which has no value now",
                                         g->name, v->name);
    if (box && !box->has_element && !(to & QKV_KIND_OPTIONAL))
        return qkv_host_api_get()->error(
            h, QKV_ERR_INVALID_ARGUMENT,
            "subgraph '%s': %s %zu '%s' is a %s, the node gives it an empty optional", g->name,
            role, index, v->name, qkv_kind_name(to));
    for (size_t e = 0; box && e < box->n && v->dtype != QKV_DTYPE_UNDEFINED; e++)
        if (box->items[e].dtype != v->dtype)
            return qkv_host_api_get()->error(
                h, QKV_ERR_TYPE, "subgraph '%s': %s %zu '%s' holds %s elements, the node gives %s",
                g->name, role, index, v->name, qkv_dtype_name(v->dtype),
                qkv_dtype_name(box->items[e].dtype));
    if (to == QKV_KIND_TENSOR) {
        f->bound[slot] = box ? box->items[0] : *src;
        return QKV_OK;
    }
    memset(&f->bound[slot], 0, sizeof f->bound[slot]);
    f->bound[slot].dtype = v->dtype;
    qkv_value *view = &f->bound_values[slot];
    memset(view, 0, sizeof *view);
    view->struct_size = sizeof *view;
    view->kind = to;
    view->elem_dtype = v->dtype;
    if (box) {
        view->has_element = box->has_element;
        view->count = box->n;
        view->tensors = box->items;
    } else { /* a tensor wrapped into an optional */
        view->has_element = 1;
        view->count = 1;
        view->tensors = src;
    }
    return QKV_OK;
}

/* f->bound gets the body's graph inputs, then the values it reads from the
 * frame `outer` (which runs the node that owns the body); f->bound_values
 * the contents of those that are sequences or optionals. */
static qkv_status bind_body_inputs(qkv_host_ctx *h, qkv_frame *f, const qkv_frame *outer,
                                   const qkv_tensor *inputs, const qkv_type_kind *kinds,
                                   size_t n_inputs)
{
    const qkv_ir_graph *g = f->g;
    if (n_inputs != g->n_inputs)
        return qkv_host_api_get()->error(h, QKV_ERR_INVALID_MODEL,
                                         "subgraph '%s' has %zu inputs, the node gives it %zu",
                                         g->name, g->n_inputs, n_inputs);
    size_t slot = 0;
    for (size_t i = 0; i < n_inputs; i++) {
        const qkv_ir_value *v = &g->values[g->inputs[i]];
        qkv_type_kind from = kinds ? kinds[i] : QKV_KIND_TENSOR;
        if (from == QKV_KIND_TENSOR && v->type_kind == QKV_KIND_TENSOR &&
            v->dtype != QKV_DTYPE_UNDEFINED && inputs[i].dtype != v->dtype)
            return qkv_host_api_get()->error(
                h, QKV_ERR_TYPE, "subgraph '%s': input %zu '%s' is %s, the node gives it %s",
                g->name, i, v->name, qkv_dtype_name(v->dtype), qkv_dtype_name(inputs[i].dtype));
        qkv_status st = bind_body_value(h, f, slot++, v, &inputs[i], from, "input", i);
        if (st != QKV_OK)
            return st;
    }
    for (size_t v = 0; v < g->n_values; v++) {
        const qkv_ir_value *val = &g->values[v];
        if (val->kind != QKV_VALUE_OUTER)
            continue;
        const qkv_tensor *t = &outer->vals[val->outer_id];
        qkv_type_kind from = outer->g->values[val->outer_id].type_kind;
        if (from == QKV_KIND_TENSOR && (t->rank < 0 || (!t->data && !qkv_tensor_known_empty(t))))
            return qkv_host_api_get()->error(h, QKV_ERR_INTERNAL,
                                             "subgraph '%s' reads '%s', which has no value now",
                                             g->name, val->name);
        qkv_status st = bind_body_value(h, f, slot++, val, t, from, "outer-scope value", v);
        if (st != QKV_OK)
            return st;
    }
    return QKV_OK;
}

static qkv_status run_body_steps(qkv_host_ctx *h, qkv_frame *f)
{
    qkv_context *c = h->context;
    qkv_status st = qkv_frame_use_plan(qkv_context_session(c), f, f->bound, f->n_bound, h->err);
    if (st != QKV_OK)
        return st;
    qkv_frame_bind(f, f->bound, f->bound_values);
    const qkv_exec_plan *p = f->plan;
    for (size_t i = 0; i < p->n_steps && st == QKV_OK; i++)
        st = qkv_frame_run_step(c, f, &p->steps[i], h->err);
    if (st != QKV_OK)
        return st;
    qkv_frame_copy_outputs(f);
    for (size_t i = 0; i < f->g->n_outputs; i++)
        f->outs[i] = f->vals[f->g->outputs[i]];
    return QKV_OK;
}

qkv_status qkv_body_run(qkv_host_ctx *h, const qkv_ir_graph *body, const qkv_tensor *inputs,
                        size_t n_inputs, const qkv_tensor **outs)
{
    return qkv_body_run_values(h, body, inputs, NULL, n_inputs, outs);
}

qkv_status qkv_body_run_values(qkv_host_ctx *h, const qkv_ir_graph *body, const qkv_tensor *inputs,
                               const qkv_type_kind *kinds, size_t n_inputs, const qkv_tensor **outs)
{
    *outs = NULL;
    qkv_frame *f = NULL;
    if (!h->context || !h->frame || body->body_id < 0)
        return qkv_host_api_get()->error(h, QKV_ERR_INTERNAL,
                                         "subgraph '%s' can only run inside a run", body->name);
    if (qkv_context_take_cancel(h->context))
        return qkv_host_api_get()->error(h, QKV_ERR_CANCELLED,
                                         "run cancelled (qkv_context_cancel) before subgraph '%s'",
                                         body->name);
    qkv_status st = qkv_context_body_frame(h->context, body->body_id, &f, h->err);
    if (st != QKV_OK)
        return st;
    if (f->busy)
        return qkv_host_api_get()->error(h, QKV_ERR_INTERNAL, "subgraph '%s' is already running",
                                         body->name);
    qkv_frame_free_dynamic(f);
    st = bind_body_inputs(h, f, h->frame, inputs, kinds, n_inputs);
    if (st != QKV_OK)
        return st;
    f->busy = true;
    st = run_body_steps(h, f);
    f->busy = false;
    if (st != QKV_OK) {
        char what[256];
        qkv_node_describe(h->node, h->version, what, sizeof what);
        if (h->err && strncmp(h->err->message, what, strlen(what)) != 0)
            qkv_error_prefix(h->err, "%s: subgraph '%s'", what, body->name);
        return st;
    }
    *outs = f->outs;
    return QKV_OK;
}

qkv_status qkv_body_work(qkv_host_ctx *h, const qkv_ir_graph *body, size_t slot, size_t bytes,
                         void **out)
{
    *out = NULL;
    qkv_frame *f = NULL;
    if (!h->context || body->body_id < 0)
        return qkv_host_api_get()->error(h, QKV_ERR_INTERNAL,
                                         "subgraph '%s' can only run inside a run", body->name);
    qkv_status st = qkv_context_body_frame(h->context, body->body_id, &f, h->err);
    if (st != QKV_OK)
        return st;
    if (slot >= f->n_work) {
        size_t n = slot + 1;
        void **work = realloc(f->work, n * sizeof *work);
        if (work)
            f->work = work;
        size_t *cap = work ? realloc(f->work_cap, n * sizeof *cap) : NULL;
        if (!cap)
            return qkv_host_api_get()->error(h, QKV_ERR_OUT_OF_MEMORY,
                                             "out of memory for work buffers");
        f->work_cap = cap;
        for (size_t i = f->n_work; i < n; i++) {
            f->work[i] = NULL;
            f->work_cap[i] = 0;
        }
        f->n_work = n;
    }
    if (bytes > f->work_cap[slot]) {
        size_t want = bytes, held = 0;
        for (size_t i = 0; i < f->n_work; i++)
            held += f->work_cap[i];
        if (want <= SIZE_MAX / 2)
            want *= 2; /* grow geometrically: a growing scan output reallocates log times */
        if (h->memory_limited && (bytes > h->memory_left || held > h->memory_left - bytes))
            return qkv_host_api_get()->error(
                h, QKV_ERR_OUT_OF_MEMORY,
                "work buffers of %zu bytes (%zu held) pass what the session's memory limit "
                "leaves (%zu bytes)",
                bytes, held, h->memory_left);
        if (h->memory_limited && want - bytes > h->memory_left - bytes - held)
            want = bytes;
        void *grown = realloc(f->work[slot], want ? want : 1);
        if (!grown)
            return qkv_host_api_get()->error(h, QKV_ERR_OUT_OF_MEMORY,
                                             "out of memory: a work buffer of %zu bytes", want);
        f->work[slot] = grown;
        f->work_cap[slot] = want;
    }
    *out = f->work[slot];
    return QKV_OK;
}

qkv_status qkv_body_boxes(qkv_host_ctx *h, const qkv_ir_graph *body, size_t n, qkv_box **out)
{
    *out = NULL;
    qkv_frame *f = NULL;
    if (!h->context || body->body_id < 0)
        return qkv_host_api_get()->error(h, QKV_ERR_INTERNAL,
                                         "subgraph '%s' can only run inside a run", body->name);
    qkv_status st = qkv_context_body_frame(h->context, body->body_id, &f, h->err);
    if (st != QKV_OK)
        return st;
    if (n > f->n_owned) {
        qkv_box *grown = realloc(f->owned, n * sizeof *grown);
        if (!grown)
            return qkv_host_api_get()->error(h, QKV_ERR_OUT_OF_MEMORY,
                                             "out of memory for %zu loop-carried values", n);
        memset(grown + f->n_owned, 0, (n - f->n_owned) * sizeof *grown);
        f->owned = grown;
        f->n_owned = n;
    }
    *out = f->owned;
    return QKV_OK;
}
