/*
 * plan.c - a memory plan for one set of input shapes.
 *
 * Walks the nodes in topological order with concrete input shapes:
 *  - infers every output's shape (a node whose outputs cannot be known
 *    before it runs, and everything downstream of it, becomes dynamic);
 *  - evaluates nodes whose inputs are all known now (the Shape -> Gather ->
 *    Concat -> Reshape chains exporters emit), so runs skip them;
 *  - makes Reshape-like outputs views of their input, and lets in-place
 *    kernels write over an input that dies at that node;
 *  - gives every other output (and each node's scratch) a buffer with a
 *    lifetime [producing step, last reading step], which the planner packs
 *    into one arena.
 */
#include <stdlib.h>
#include <string.h>

#include "error.h"
#include "kernel_host.h"
#include "node_eval.h"
#include "planner.h"
#include "session.h"

#define QKV_ARENA_ALIGN 64
/* Values computed while planning are kept in the plan; bigger ones are left
 * to the run. */
#define QKV_PLAN_EVAL_MAX_BYTES ((size_t)4 << 20)

typedef struct builder {
    const qkv_session *s;
    const qkv_ir_graph *g;
    qkv_exec_plan *p;
    int32_t *last_use;  /* per value: last position reading it */
    int32_t *group;     /* per value: index of its arena buffer, -1 none */
    qkv_plan_buffer *bufs;
    size_t n_bufs, cap_bufs;
    int32_t *step_scratch; /* per step: scratch buffer index, -1 none */
    int32_t *copy_buf;     /* per copy: buffer index */
    qkv_tensor *ins, *outs;
    qkv_error *err;
    /* the session's memory limit: when limited, the arena and values
     * computed while planning may take at most mem_left bytes */
    bool limited;
    size_t mem_left;
    const qkv_ir_node *largest; /* the node with the largest arena output so far */
    size_t largest_bytes;
} builder;

void qkv_plan_release(qkv_exec_plan *p)
{
    if (!p || atomic_fetch_sub(&p->refs, 1) != 1)
        return;
    for (size_t i = 0; p->values && i < p->n_values; i++)
        if (p->values[i].storage == QKV_STORE_PLANNED && p->values[i].view_of == (int32_t)i)
            qkv_tensor_data_free(&p->values[i].t);
    free(p->values);
    free(p->steps);
    free(p->copies);
    free(p->input_shapes);
    free(p);
}

static int32_t add_buffer(builder *b, size_t bytes, int32_t first, int32_t last)
{
    if (b->n_bufs == b->cap_bufs) {
        size_t cap = b->cap_bufs ? b->cap_bufs * 2 : 64;
        qkv_plan_buffer *grown = realloc(b->bufs, cap * sizeof *grown);
        if (!grown)
            return -1;
        b->bufs = grown;
        b->cap_bufs = cap;
    }
    qkv_plan_buffer *buf = &b->bufs[b->n_bufs];
    memset(buf, 0, sizeof *buf);
    buf->bytes = bytes;
    buf->first_use = first;
    buf->last_use = last < first ? first : last;
    return (int32_t)b->n_bufs++;
}

static void compute_last_uses(builder *b)
{
    const qkv_ir_graph *g = b->g;
    for (size_t v = 0; v < g->n_values; v++)
        b->last_use[v] = -1;
    for (size_t pos = 0; pos < g->n_order; pos++) {
        const qkv_ir_node *n = &g->nodes[g->order[pos]];
        for (size_t k = 0; k < n->n_inputs; k++)
            if (n->inputs[k] >= 0)
                b->last_use[n->inputs[k]] = (int32_t)pos;
        for (size_t k = 0; k < n->n_implicit; k++)
            if (n->implicit_inputs[k] >= 0)
                b->last_use[n->implicit_inputs[k]] = (int32_t)pos;
    }
    /* graph outputs live to the end of the run (position n_order: the copies) */
    for (size_t i = 0; i < g->n_outputs; i++)
        b->last_use[g->outputs[i]] = (int32_t)g->n_order;
}

static bool dims_known(const qkv_tensor *t)
{
    if (t->rank < 0 || t->rank > QKV_MAX_RANK)
        return false;
    for (int32_t d = 0; d < t->rank; d++)
        if (t->dims[d] < 0)
            return false;
    return true;
}

static bool is_known(const qkv_plan_value *v)
{
    return v->storage == QKV_STORE_CONSTANT || v->storage == QKV_STORE_PLANNED;
}

static void mark_dynamic(builder *b, const qkv_ir_node *n)
{
    for (size_t j = 0; j < n->n_outputs; j++) {
        if (n->outputs[j] < 0)
            continue;
        qkv_plan_value *v = &b->p->values[n->outputs[j]];
        memset(&v->t, 0, sizeof v->t);
        v->t.rank = -1;
        v->storage = QKV_STORE_DYNAMIC;
        v->view_of = n->outputs[j];
    }
}

static qkv_status oom(builder *b)
{
    return qkv_error_set(b->err, QKV_ERR_OUT_OF_MEMORY, "out of memory while planning");
}

/* Plans one node at topological position pos. */
static qkv_status plan_node(builder *b, size_t pos)
{
    const qkv_ir_graph *g = b->g;
    qkv_exec_plan *p = b->p;
    int32_t idx = g->order[pos];
    const qkv_ir_node *n = &g->nodes[idx];
    const qkv_kernel *k = n->kernel;
    qkv_host_ctx h = {.node = n, .version = k->since_version, .err = b->err,
                      .threads = b->s->opts.threads, .memory_limited = b->limited,
                      .memory_left = b->mem_left};
    bool dynamic = false, all_known = true;

    for (size_t i = 0; i < n->n_inputs; i++) {
        qkv_tensor *t = &b->ins[i];
        int32_t id = n->inputs[i];
        memset(t, 0, sizeof *t);
        if (id < 0) {
            t->rank = -1;
            continue;
        }
        const qkv_plan_value *v = &p->values[id];
        *t = v->t;
        if (v->storage == QKV_STORE_DYNAMIC)
            dynamic = true;
        if (!is_known(v))
            all_known = false;
    }
    if (n->n_implicit)
        all_known = false;

    qkv_plan_step step = {.node = idx, .dynamic = true};
    if (!dynamic) {
        qkv_status st =
            qkv_kernel_infer(k, n->kernel_state, &h, b->ins, n->n_inputs, b->outs, n->n_outputs);
        if (st != QKV_OK)
            return st;
        size_t total = 0;
        for (size_t j = 0; j < n->n_outputs && !dynamic; j++) {
            size_t elems;
            if (n->outputs[j] < 0)
                continue;
            if (!dims_known(&b->outs[j])) {
                dynamic = true;
                break;
            }
            if (!qkv_shape_elements(b->outs[j].dims, b->outs[j].rank, &elems) ||
                !qkv_dtype_storage_bytes(b->outs[j].dtype, elems, &b->outs[j].data_bytes) ||
                qkv_add_overflow(total, b->outs[j].data_bytes, &total))
                return qkv_error_set(b->err, QKV_ERR_SHAPE,
                                     "node '%s' (%s): output %zu is too large to allocate",
                                     n->name, n->op_type, j);
        }
        if (!dynamic && b->limited && total > b->mem_left)
            return qkv_error_set(b->err, QKV_ERR_OUT_OF_MEMORY,
                                 "node '%s' (%s): its outputs need %zu bytes, more than the %zu "
                                 "the session's memory limit of %zu bytes leaves",
                                 n->name, n->op_type, total, b->mem_left,
                                 b->s->opts.memory_limit);
        if (!dynamic && (all_known || (k->flags & QKV_KERNEL_SHAPE_ONLY)) &&
            total <= QKV_PLAN_EVAL_MAX_BYTES) {
            /* a value known now: compute it once, here */
            st = qkv_node_eval(k, n->kernel_state, &h, b->ins, n->n_inputs, b->outs,
                               n->n_outputs);
            if (st != QKV_OK)
                return st;
            for (size_t j = 0; j < n->n_outputs; j++) {
                if (n->outputs[j] < 0)
                    continue;
                qkv_plan_value *v = &p->values[n->outputs[j]];
                v->t = b->outs[j];
                v->storage = QKV_STORE_PLANNED;
                v->view_of = n->outputs[j];
                p->stats.planned_values++;
            }
            return QKV_OK;
        }
    }
    if (dynamic) {
        mark_dynamic(b, n);
        b->step_scratch[p->n_steps] = -1; /* scratch comes with the run */
        p->steps[p->n_steps++] = step;
        p->stats.dynamic_nodes++;
        return QKV_OK;
    }
    step.dynamic = false;

    /* Reshape-like: the output is the input's bytes */
    bool only_output0 = true;
    for (size_t j = 1; j < n->n_outputs; j++)
        only_output0 = only_output0 && n->outputs[j] < 0;
    if ((k->flags & QKV_KERNEL_ALIAS) && only_output0 && n->n_inputs > 0 && n->inputs[0] >= 0 &&
        n->outputs[0] >= 0) {
        int32_t src = n->inputs[0], dst = n->outputs[0];
        qkv_plan_value *sv = &p->values[src], *dv = &p->values[dst];
        if (b->outs[0].data_bytes == sv->t.data_bytes && sv->storage != QKV_STORE_NONE) {
            dv->t = b->outs[0];
            dv->t.data = sv->t.data;
            dv->storage = sv->storage;
            dv->view_of = sv->view_of;
            if (sv->storage == QKV_STORE_ARENA) {
                int32_t gi = b->group[src];
                b->group[dst] = gi;
                if (b->bufs[gi].last_use < b->last_use[dst])
                    b->bufs[gi].last_use = b->last_use[dst];
            }
            p->stats.views++;
            return QKV_OK;
        }
    }

    if (k->prepare) {
        qkv_kernel_io io;
        qkv_kernel_io_init(&io, &h, b->ins, n->n_inputs, b->outs, n->n_outputs);
        qkv_status st = k->prepare(n->kernel_state, &io);
        if (st != QKV_OK)
            return st;
        step.scratch_bytes = io.scratch_bytes;
    }

    for (size_t j = 0; j < n->n_outputs; j++) {
        int32_t dst = n->outputs[j];
        if (dst < 0)
            continue;
        qkv_plan_value *dv = &p->values[dst];
        dv->t = b->outs[j];
        dv->t.data = NULL;
        dv->storage = QKV_STORE_ARENA;
        dv->view_of = dst;
        if (j == 0 && (k->flags & QKV_KERNEL_INPLACE) && k->inplace_input >= 0 &&
            (size_t)k->inplace_input < n->n_inputs && n->inputs[k->inplace_input] >= 0) {
            int32_t src = n->inputs[k->inplace_input];
            const qkv_plan_value *sv = &p->values[src];
            if (sv->storage == QKV_STORE_ARENA &&
                b->bufs[b->group[src]].last_use == (int32_t)pos && sv->t.dtype == dv->t.dtype &&
                sv->t.data_bytes == dv->t.data_bytes) {
                int32_t gi = b->group[src];
                b->group[dst] = gi;
                b->bufs[gi].last_use = b->last_use[dst] < (int32_t)pos ? (int32_t)pos
                                                                        : b->last_use[dst];
                p->stats.in_place++;
                continue;
            }
        }
        int32_t gi = add_buffer(b, dv->t.data_bytes, (int32_t)pos, b->last_use[dst]);
        if (gi < 0)
            return oom(b);
        b->group[dst] = gi;
        if (dv->t.data_bytes > b->largest_bytes) {
            b->largest = n;
            b->largest_bytes = dv->t.data_bytes;
        }
    }
    b->step_scratch[p->n_steps] = -1;
    if (step.scratch_bytes) {
        int32_t gi = add_buffer(b, step.scratch_bytes, (int32_t)pos, (int32_t)pos);
        if (gi < 0)
            return oom(b);
        b->step_scratch[p->n_steps] = gi;
    }
    p->steps[p->n_steps++] = step;
    return QKV_OK;
}

/* Graph outputs that do not live in the arena (an input, a constant, a
 * planned value, or views of those) are copied into it at the end of a run,
 * so every output belongs to the context. */
static qkv_status plan_output_copies(builder *b)
{
    const qkv_ir_graph *g = b->g;
    qkv_exec_plan *p = b->p;
    for (size_t i = 0; i < g->n_outputs; i++) {
        int32_t v = g->outputs[i];
        qkv_storage st = p->values[v].storage;
        if (st != QKV_STORE_INPUT && st != QKV_STORE_CONSTANT && st != QKV_STORE_PLANNED)
            continue;
        bool seen = false;
        for (size_t c = 0; c < p->n_copies; c++)
            seen |= p->copies[c].value == v;
        if (seen)
            continue;
        int32_t gi = add_buffer(b, p->values[v].t.data_bytes, (int32_t)g->n_order,
                                (int32_t)g->n_order);
        if (gi < 0)
            return oom(b);
        b->copy_buf[p->n_copies] = gi;
        p->copies[p->n_copies++] = (qkv_plan_copy){.value = v};
    }
    return QKV_OK;
}

static void init_values(builder *b, const qkv_tensor *inputs)
{
    const qkv_ir_graph *g = b->g;
    qkv_exec_plan *p = b->p;
    for (size_t i = 0; i < g->n_values; i++) {
        const qkv_ir_value *v = &g->values[i];
        qkv_plan_value *pv = &p->values[i];
        b->group[i] = -1;
        pv->view_of = (int32_t)i;
        pv->t.rank = -1;
        if (v->kind != QKV_VALUE_CONSTANT)
            continue;
        qkv_tensor t = {.dtype = v->dtype, .rank = v->rank, .data = v->data,
                        .data_bytes = v->data_bytes};
        memcpy(t.dims, v->dims, sizeof v->dims);
        qkv_tensor_bind_empty(&t); /* an empty initializer is known: it has no bytes */
        if (t.data || v->packed) {
            pv->storage = QKV_STORE_CONSTANT;
            pv->t = t;
        }
    }
    for (size_t i = 0; i < g->n_inputs; i++) {
        qkv_plan_value *pv = &p->values[g->inputs[i]];
        pv->storage = QKV_STORE_INPUT;
        pv->t = inputs[i];
        pv->t.data = NULL;
        size_t elems = 0;
        qkv_shape_elements(pv->t.dims, pv->t.rank, &elems);
        qkv_dtype_storage_bytes(pv->t.dtype, elems, &pv->t.data_bytes);
    }
}

static void builder_free(builder *b)
{
    free(b->last_use);
    free(b->group);
    free(b->bufs);
    free(b->step_scratch);
    free(b->copy_buf);
    free(b->ins);
    free(b->outs);
}

qkv_status qkv_plan_build(const qkv_session *s, const qkv_tensor *inputs, size_t n_inputs,
                          qkv_exec_plan **out, qkv_error *err)
{
    const qkv_ir_graph *g = s->model->graph;
    builder b = {.s = s, .g = g, .err = err};
    if (s->opts.memory_limit) {
        b.limited = true;
        b.mem_left = s->opts.memory_limit > s->prepack.packed_bytes
                         ? s->opts.memory_limit - s->prepack.packed_bytes
                         : 0;
    }
    size_t max_in, max_out;
    qkv_graph_max_arity(g, &max_in, &max_out);
    qkv_exec_plan *p = calloc(1, sizeof *p);
    b.p = p;
    if (p) {
        atomic_init(&p->refs, 1);
        p->n_values = g->n_values;
        p->n_inputs = n_inputs;
        p->values = calloc(g->n_values + 1, sizeof *p->values);
        p->steps = calloc(g->n_order + 1, sizeof *p->steps);
        p->copies = calloc(g->n_outputs + 1, sizeof *p->copies);
        p->input_shapes = calloc(n_inputs + 1, sizeof *p->input_shapes);
    }
    b.last_use = calloc(g->n_values + 1, sizeof *b.last_use);
    b.group = calloc(g->n_values + 1, sizeof *b.group);
    b.step_scratch = calloc(g->n_order + 1, sizeof *b.step_scratch);
    b.copy_buf = calloc(g->n_outputs + 1, sizeof *b.copy_buf);
    b.ins = calloc(max_in, sizeof *b.ins);
    b.outs = calloc(max_out, sizeof *b.outs);
    if (!p || !p->values || !p->steps || !p->copies || !p->input_shapes || !b.last_use ||
        !b.group || !b.step_scratch || !b.copy_buf || !b.ins || !b.outs) {
        builder_free(&b);
        qkv_plan_release(p);
        return qkv_error_set(err, QKV_ERR_OUT_OF_MEMORY, "out of memory while planning");
    }
    for (size_t i = 0; i < n_inputs; i++) {
        p->input_shapes[i] = inputs[i];
        p->input_shapes[i].data = NULL;
    }
    compute_last_uses(&b);
    init_values(&b, inputs);

    qkv_status st = QKV_OK;
    for (size_t pos = 0; pos < g->n_order && st == QKV_OK; pos++)
        st = plan_node(&b, pos);
    if (st == QKV_OK)
        st = plan_output_copies(&b);
    size_t arena = 0, lower = 0;
    if (st == QKV_OK)
        st = qkv_planner_assign(b.bufs, b.n_bufs, QKV_ARENA_ALIGN, &arena, &lower, err);
    if (st == QKV_OK && b.limited && arena > b.mem_left)
        st = qkv_error_set(err, QKV_ERR_OUT_OF_MEMORY,
                           "these input shapes need an arena of %zu bytes, more than the %zu "
                           "the session's memory limit of %zu bytes leaves after %zu bytes of "
                           "packed weights; the largest value is output of node '%s' (%s), "
                           "%zu bytes",
                           arena, b.mem_left, s->opts.memory_limit, s->prepack.packed_bytes,
                           b.largest ? b.largest->name : "?", b.largest ? b.largest->op_type : "?",
                           b.largest_bytes);
    if (st != QKV_OK) {
        builder_free(&b);
        qkv_plan_release(p);
        return st;
    }
    for (size_t v = 0; v < g->n_values; v++)
        if (p->values[v].storage == QKV_STORE_ARENA) {
            p->values[v].offset = b.bufs[b.group[v]].offset;
            p->values[v].buffer = b.group[v];
        }
    for (size_t i = 0; i < p->n_steps; i++)
        if (b.step_scratch[i] >= 0)
            p->steps[i].scratch_offset = b.bufs[b.step_scratch[i]].offset;
    for (size_t c = 0; c < p->n_copies; c++)
        p->copies[c].offset = b.bufs[b.copy_buf[c]].offset;
    p->stats.arena_bytes = arena;
    p->stats.lower_bound_bytes = lower;
    p->stats.steps = p->n_steps;
    /* qkv bench: the most scratch live at once (each step's lives for that step) */
    for (size_t i = 0; i < p->n_steps; i++)
        if (p->steps[i].scratch_bytes > p->stats.scratch_bytes)
            p->stats.scratch_bytes = p->steps[i].scratch_bytes;
    builder_free(&b);
    *out = p;
    return QKV_OK;
}
