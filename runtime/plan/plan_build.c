/*
 * plan_build.c - the execution plan for one set of input shapes.
 *
 * Walks the nodes in topological order with concrete input shapes:
 *  - infers every output's shape (a node whose outputs cannot be known
 *    before it runs, and everything downstream of it, becomes dynamic);
 *  - evaluates nodes whose inputs are all known now (the Shape -> Gather ->
 *    Concat -> Reshape chains exporters emit), so runs skip them;
 *  - makes Reshape-like outputs (and Transposes that, on these shapes, move
 *    only dims of size 1) views of their input, and lets in-place
 *    kernels write over an input that dies at that node;
 *  - runs each kernel's prepare once: its scratch joins the arena, its
 *    per-plan state (host->plan_alloc) stays with the plan for every run;
 *  - gives every other output (and each node's scratch) a buffer with a
 *    lifetime [producing step, last reading step], which the planner packs
 *    into one arena.
 */
#include <stdlib.h>
#include <string.h>

#include "arena_planner.h"
#include "error.h"
#include "kernel_host.h"
#include "node_eval.h"
#include "pass_util.h"
#include "session.h"
#include "size_math.h"

#define QKV_ARENA_ALIGN 64
/* Values computed while planning are kept in the plan; bigger ones are left
 * to the run. */
#define QKV_PLAN_EVAL_MAX_BYTES ((size_t)4 << 20)

typedef struct builder {
    const qkv_session *s;
    const qkv_ir_graph *g;
    qkv_exec_plan *p;
    int32_t *last_use; /* per value: last position reading it */
    int32_t *group;    /* per value: index of its arena buffer, -1 none */
    qkv_plan_buffer *bufs;
    size_t n_bufs, cap_bufs;
    int32_t *step_scratch; /* per step: scratch buffer index, -1 none */
    int32_t *copy_buf;     /* per copy: buffer index */
    qkv_tensor *ins, *outs;
    int32_t *bound;                      /* the graph's bound inputs (ir.h: qkv_graph_bound_ids) */
    qkv_type_kind *in_kinds, *out_kinds; /* the node being planned */
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
    qkv_plan_mem_free(&p->plan_mem);
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
        if (v->storage == QKV_STORE_VALUE)
            continue; /* in its box whatever its node is */
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

/*
 * Planning one node goes through these phases, in order; each of the first
 * ones may settle the node and end it:
 *   1. gather_inputs     the inputs as planned so far (any dynamic? all known?)
 *   2. infer_outputs     output shapes and sizes (unknown ones: dynamic)
 *   3. evaluate_now      all inputs known and outputs small: compute it here
 *   4. plan_dynamic      outputs known only when it runs: a dynamic step
 *   5. alias_output      Reshape-like: output 0 is a view of input 0
 *   6. prepare_step      the kernel's prepare: scratch and per-plan state
 *   7. place_outputs     each output in place over a dying input or in a
 *                        new arena buffer, then the step and its scratch
 */
typedef struct node_plan {
    const qkv_ir_node *n;
    const qkv_kernel *k;
    int32_t idx;      /* the node's index in the graph */
    size_t pos;       /* topological position */
    qkv_host_ctx h;   /* the host context of infer/prepare/eval */
    bool dynamic;     /* an input or an output is only known at run time */
    bool all_known;   /* every input is a constant or a planned value */
    bool values;      /* an input or an output is a sequence or an optional */
    size_t out_bytes; /* the outputs' total size */
} node_plan;

/* 1. b->ins gets the node's inputs as planned so far. */
static void gather_inputs(builder *b, node_plan *np)
{
    const qkv_ir_node *n = np->n;
    /* a node with subgraphs runs them in a run context (exec/control_flow.h):
     * never while planning */
    np->all_known = n->n_implicit == 0 && !qkv_node_has_subgraphs(n);
    for (size_t i = 0; i < n->n_inputs; i++) {
        qkv_tensor *t = &b->ins[i];
        int32_t id = n->inputs[i];
        memset(t, 0, sizeof *t);
        if (id < 0) {
            t->rank = -1;
            continue;
        }
        const qkv_plan_value *v = &b->p->values[id];
        *t = v->t;
        np->dynamic = np->dynamic || v->storage == QKV_STORE_DYNAMIC;
        np->all_known = np->all_known && is_known(v);
    }
}

/* 2. b->outs gets the inferred outputs with their sizes; an output whose
 * shape is not known makes the node dynamic. */
static qkv_status infer_outputs(builder *b, node_plan *np)
{
    const qkv_ir_node *n = np->n;
    qkv_status st = qkv_kernel_infer(np->k, n->kernel_state, &np->h, b->ins, n->n_inputs, b->outs,
                                     n->n_outputs);
    if (st != QKV_OK)
        return st;
    np->out_bytes = 0;
    for (size_t j = 0; j < n->n_outputs; j++) {
        size_t elems;
        if (n->outputs[j] < 0 || b->out_kinds[j] != QKV_KIND_TENSOR)
            continue; /* omitted, or in a box (no arena bytes) */
        if (!dims_known(&b->outs[j])) {
            np->dynamic = true;
            return QKV_OK;
        }
        /* a string output's infer may ask for room for its characters too */
        size_t asked = b->outs[j].dtype == QKV_DTYPE_STRING ? b->outs[j].data_bytes : 0;
        if (!qkv_shape_elements(b->outs[j].dims, b->outs[j].rank, &elems) ||
            !qkv_dtype_storage_bytes(b->outs[j].dtype, elems, &b->outs[j].data_bytes) ||
            (asked > b->outs[j].data_bytes && (b->outs[j].data_bytes = asked) == 0) ||
            qkv_add_overflow(np->out_bytes, b->outs[j].data_bytes, &np->out_bytes))
            return qkv_error_set(b->err, QKV_ERR_SHAPE,
                                 "node '%s' (%s): output %zu is too large to allocate", n->name,
                                 n->op_type, j);
    }
    if (b->limited && np->out_bytes > b->mem_left)
        return qkv_error_set(b->err, QKV_ERR_OUT_OF_MEMORY,
                             "node '%s' (%s): its outputs need %zu bytes, more than the %zu the "
                             "session's memory limit of %zu bytes leaves",
                             n->name, n->op_type, np->out_bytes, b->mem_left,
                             b->s->opts.memory_limit);
    return QKV_OK;
}

/* 3. A node whose inputs are all known now (or that reads only their
 * shapes) is computed here, once, when its outputs are small: its outputs
 * become planned values and it takes no step. *done tells whether it did. */
static qkv_status evaluate_now(builder *b, node_plan *np, bool *done)
{
    const qkv_ir_node *n = np->n;
    *done = false;
    if (np->values ||
        !(np->all_known ||
          ((np->k->flags & QKV_KERNEL_SHAPE_ONLY) && !qkv_node_has_subgraphs(n))) ||
        np->out_bytes > QKV_PLAN_EVAL_MAX_BYTES)
        return QKV_OK;
    qkv_status st =
        qkv_node_eval(np->k, n->kernel_state, &np->h, b->ins, n->n_inputs, b->outs, n->n_outputs);
    if (st != QKV_OK)
        return st;
    for (size_t j = 0; j < n->n_outputs; j++) {
        if (n->outputs[j] < 0)
            continue;
        qkv_plan_value *v = &b->p->values[n->outputs[j]];
        v->t = b->outs[j];
        v->storage = QKV_STORE_PLANNED;
        v->view_of = n->outputs[j];
        b->p->stats.planned_values++;
    }
    *done = true;
    return QKV_OK;
}

/* 4. A dynamic step: inferred, allocated and given scratch when it runs. */
static void plan_dynamic(builder *b, node_plan *np)
{
    qkv_exec_plan *p = b->p;
    mark_dynamic(b, np->n);
    b->step_scratch[p->n_steps] = -1;
    p->steps[p->n_steps++] = (qkv_plan_step){.node = np->idx, .dynamic = true};
    p->stats.dynamic_nodes++;
}

/* A Transpose that, on this plan's input shape, moves only dims of size 1:
 * its output is its input's bytes in the same order (pass_util.h). Not for
 * strings, whose elements own their characters (Reshape copies them too). */
static bool transpose_is_view(const builder *b, const node_plan *np)
{
    int64_t perm[QKV_MAX_RANK];
    const qkv_tensor *x = &b->ins[0];
    return qkv_pass_is_op(np->n, "Transpose") && !np->values && np->n->n_inputs == 1 &&
           x->dtype != QKV_DTYPE_STRING && qkv_pass_transpose_perm(np->n, x->rank, perm) &&
           qkv_pass_transpose_is_view(x->dims, x->rank, perm);
}

/* 5. With QKV_KERNEL_ALIAS (or a Transpose that is a view for these
 * shapes) and a same-size output 0 (its only output), the output is a view
 * of input 0's bytes and the node takes no step. */
static bool alias_output(builder *b, node_plan *np)
{
    const qkv_ir_node *n = np->n;
    qkv_exec_plan *p = b->p;
    for (size_t j = 1; j < n->n_outputs; j++)
        if (n->outputs[j] >= 0)
            return false;
    if (n->n_inputs == 0 || n->inputs[0] < 0 || n->outputs[0] < 0 ||
        (!(np->k->flags & QKV_KERNEL_ALIAS) && !transpose_is_view(b, np)))
        return false;
    int32_t src = n->inputs[0], dst = n->outputs[0];
    qkv_plan_value *sv = &p->values[src], *dv = &p->values[dst];
    if (b->outs[0].data_bytes != sv->t.data_bytes || sv->storage == QKV_STORE_NONE)
        return false;
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
    return true;
}

/* 6. The kernel's prepare, once for this plan: the scratch it declares and
 * the per-plan state it keeps (in the plan's memory) go into the step. */
static qkv_status prepare_step(builder *b, node_plan *np, qkv_plan_step *step)
{
    if (!np->k->prepare)
        return QKV_OK;
    qkv_kernel_io io;
    qkv_kernel_io_init(&io, &np->h, b->ins, np->n->n_inputs, b->outs, np->n->n_outputs);
    np->h.plan_mem = &b->p->plan_mem;
    qkv_status st = np->k->prepare(np->n->kernel_state, &io);
    np->h.plan_mem = NULL;
    if (st != QKV_OK)
        return st;
    step->scratch_bytes = io.scratch_bytes;
    step->plan_state = io.plan_state;
    return QKV_OK;
}

/* Output 0 of an in-place kernel may take over the buffer of its in-place
 * input when that input dies at this node with the same type and size. */
static bool place_in_place(builder *b, node_plan *np, int32_t dst)
{
    const qkv_ir_node *n = np->n;
    const qkv_kernel *k = np->k;
    const qkv_plan_value *dv = &b->p->values[dst];
    if (!(k->flags & QKV_KERNEL_INPLACE) || k->inplace_input < 0 ||
        (size_t)k->inplace_input >= n->n_inputs || n->inputs[k->inplace_input] < 0)
        return false;
    int32_t src = n->inputs[k->inplace_input], pos = (int32_t)np->pos;
    const qkv_plan_value *sv = &b->p->values[src];
    if (sv->storage != QKV_STORE_ARENA || b->bufs[b->group[src]].last_use != pos ||
        sv->t.dtype != dv->t.dtype || sv->t.data_bytes != dv->t.data_bytes)
        return false;
    int32_t gi = b->group[src];
    b->group[dst] = gi;
    b->bufs[gi].last_use = b->last_use[dst] < pos ? pos : b->last_use[dst];
    b->p->stats.in_place++;
    return true;
}

/* 7. Arena outputs (in place where allowed), then the step with its scratch. */
static qkv_status place_outputs(builder *b, node_plan *np, const qkv_plan_step *step)
{
    const qkv_ir_node *n = np->n;
    qkv_exec_plan *p = b->p;
    int32_t pos = (int32_t)np->pos;
    for (size_t j = 0; j < n->n_outputs; j++) {
        int32_t dst = n->outputs[j];
        if (dst < 0)
            continue;
        qkv_plan_value *dv = &p->values[dst];
        if (dv->storage == QKV_STORE_VALUE)
            continue; /* in its box: init_values set it up */
        dv->t = b->outs[j];
        dv->t.data = NULL;
        dv->storage = QKV_STORE_ARENA;
        dv->view_of = dst;
        if (j == 0 && place_in_place(b, np, dst))
            continue;
        int32_t gi = add_buffer(b, dv->t.data_bytes, pos, b->last_use[dst]);
        if (gi < 0)
            return oom(b);
        b->group[dst] = gi;
        if (dv->t.data_bytes > b->largest_bytes) {
            b->largest = np->n;
            b->largest_bytes = dv->t.data_bytes;
        }
    }
    b->step_scratch[p->n_steps] = -1;
    if (step->scratch_bytes) {
        int32_t gi = add_buffer(b, step->scratch_bytes, pos, pos);
        if (gi < 0)
            return oom(b);
        b->step_scratch[p->n_steps] = gi;
    }
    p->steps[p->n_steps++] = *step;
    return QKV_OK;
}

/* Plans the node at topological position pos (the phases above). */
static qkv_status plan_node(builder *b, size_t pos)
{
    int32_t idx = b->g->order[pos];
    const qkv_ir_node *n = &b->g->nodes[idx];
    node_plan np = {.n = n, .k = n->kernel, .idx = idx, .pos = pos};
    np.h = (qkv_host_ctx){.node = n,
                          .version = np.k->since_version,
                          .err = b->err,
                          .threads = b->s->opts.threads,
                          .memory_limited = b->limited,
                          .memory_left = b->mem_left};
    np.values = qkv_node_kinds(b->g, n, b->in_kinds, b->out_kinds);
    np.h.in_kinds = b->in_kinds;
    np.h.out_kinds = b->out_kinds;
    gather_inputs(b, &np);
    if (np.values && qkv_node_host_alias(n, b->in_kinds)) {
        /* Identity of a sequence or optional: the run copies the box */
        b->step_scratch[b->p->n_steps] = -1;
        b->p->steps[b->p->n_steps++] = (qkv_plan_step){.node = idx, .host_copy = true};
        return QKV_OK;
    }
    qkv_status st = QKV_OK;
    bool done = false;
    if (!np.dynamic)
        st = infer_outputs(b, &np);
    if (st == QKV_OK && !np.dynamic)
        st = evaluate_now(b, &np, &done);
    if (st != QKV_OK || done)
        return st;
    if (np.dynamic) {
        plan_dynamic(b, &np);
        return QKV_OK;
    }
    if (alias_output(b, &np))
        return QKV_OK;
    qkv_plan_step step = {.node = idx};
    st = prepare_step(b, &np, &step);
    if (st == QKV_OK)
        st = place_outputs(b, &np, &step);
    return st;
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
        int32_t gi =
            add_buffer(b, p->values[v].t.data_bytes, (int32_t)g->n_order, (int32_t)g->n_order);
        if (gi < 0)
            return oom(b);
        b->copy_buf[p->n_copies] = gi;
        p->copies[p->n_copies++] = (qkv_plan_copy){.value = v};
    }
    return QKV_OK;
}

static void init_values(builder *b, const qkv_tensor *inputs, const int32_t *bound, size_t n_bound)
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
        qkv_tensor t = {
            .dtype = v->dtype, .rank = v->rank, .data = v->data, .data_bytes = v->data_bytes};
        memcpy(t.dims, v->dims, sizeof v->dims);
        qkv_tensor_bind_empty(&t); /* an empty initializer is known: it has no bytes */
        if (t.data || v->packed) {
            pv->storage = QKV_STORE_CONSTANT;
            pv->t = t;
        }
    }
    /* graph inputs, then (a subgraph) the values it reads from outside */
    for (size_t i = 0; i < n_bound; i++) {
        qkv_plan_value *pv = &p->values[bound[i]];
        pv->storage = QKV_STORE_INPUT;
        pv->t = inputs[i];
        pv->t.data = NULL;
        size_t elems = 0;
        qkv_shape_elements(pv->t.dims, pv->t.rank, &elems);
        qkv_dtype_storage_bytes(pv->t.dtype, elems, &pv->t.data_bytes);
    }
    /* sequences and optionals, inputs included, live in the context's boxes */
    for (size_t i = 0; i < g->n_values; i++) {
        const qkv_ir_value *v = &g->values[i];
        if (v->type_kind == QKV_KIND_TENSOR)
            continue;
        qkv_plan_value *pv = &p->values[i];
        memset(&pv->t, 0, sizeof pv->t);
        pv->t.dtype = v->dtype;
        pv->t.rank = -1;
        pv->storage = QKV_STORE_VALUE;
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
    free(b->bound);
    free(b->in_kinds);
    free(b->out_kinds);
}

qkv_status qkv_plan_build(const qkv_session *s, const qkv_tensor *inputs, size_t n_inputs,
                          qkv_exec_plan **out, qkv_error *err)
{
    return qkv_plan_build_graph(s, s->model->graph, inputs, n_inputs, out, err);
}

/* Starts the builder of graph g: the session's memory limit, the new plan
 * b->p and the per-value, per-step and per-node arrays. On failure the
 * caller frees what was made (builder_free, qkv_plan_release(b->p)). */
static qkv_status builder_init(builder *b, size_t n_inputs)
{
    const qkv_session *s = b->s;
    const qkv_ir_graph *g = b->g;
    if (s->opts.memory_limit) {
        b->limited = true;
        b->mem_left = s->opts.memory_limit > s->prepack.packed_bytes
                          ? s->opts.memory_limit - s->prepack.packed_bytes
                          : 0;
    }
    size_t max_in, max_out;
    qkv_graph_max_arity(g, &max_in, &max_out);
    qkv_exec_plan *p = calloc(1, sizeof *p);
    b->p = p;
    if (p) {
        atomic_init(&p->refs, 1);
        p->n_values = g->n_values;
        p->n_inputs = n_inputs;
        p->values = calloc(g->n_values + 1, sizeof *p->values);
        p->steps = calloc(g->n_order + 1, sizeof *p->steps);
        p->copies = calloc(g->n_outputs + 1, sizeof *p->copies);
        p->input_shapes = calloc(n_inputs + 1, sizeof *p->input_shapes);
    }
    b->last_use = calloc(g->n_values + 1, sizeof *b->last_use);
    b->group = calloc(g->n_values + 1, sizeof *b->group);
    b->step_scratch = calloc(g->n_order + 1, sizeof *b->step_scratch);
    b->copy_buf = calloc(g->n_outputs + 1, sizeof *b->copy_buf);
    b->ins = calloc(max_in, sizeof *b->ins);
    b->outs = calloc(max_out, sizeof *b->outs);
    b->in_kinds = calloc(max_in, sizeof *b->in_kinds);
    b->out_kinds = calloc(max_out, sizeof *b->out_kinds);
    size_t n_bound = qkv_graph_bound_ids(g, NULL);
    b->bound = calloc(n_bound + 1, sizeof *b->bound);
    if (b->bound)
        qkv_graph_bound_ids(g, b->bound);
    if (n_bound != n_inputs)
        return qkv_error_set(b->err, QKV_ERR_INTERNAL,
                             "planning graph '%s': %zu inputs given, it has %zu", g->name, n_inputs,
                             n_bound);
    if (!p || !b->bound || !p->values || !p->steps || !p->copies || !p->input_shapes ||
        !b->last_use || !b->group || !b->step_scratch || !b->copy_buf || !b->ins || !b->outs ||
        !b->in_kinds || !b->out_kinds)
        return qkv_error_set(b->err, QKV_ERR_OUT_OF_MEMORY, "out of memory while planning");
    return QKV_OK;
}

/* Plans every node and the output copies, then places the arena buffers
 * (*arena bytes, *lower its lower bound) within the memory limit. */
static qkv_status plan_steps_and_arena(builder *b, size_t *arena, size_t *lower)
{
    const qkv_session *s = b->s;
    qkv_status st = QKV_OK;
    for (size_t pos = 0; pos < b->g->n_order && st == QKV_OK; pos++)
        st = plan_node(b, pos);
    if (st == QKV_OK)
        st = plan_output_copies(b);
    if (st == QKV_OK)
        st = qkv_planner_assign(b->bufs, b->n_bufs, QKV_ARENA_ALIGN, arena, lower, b->err);
    if (st == QKV_OK && b->limited && *arena > b->mem_left)
        st = qkv_error_set(b->err, QKV_ERR_OUT_OF_MEMORY,
                           "these input shapes need an arena of %zu bytes, more than the %zu "
                           "the session's memory limit of %zu bytes leaves after %zu bytes of "
                           "packed weights; the largest value is output of node '%s' (%s), "
                           "%zu bytes",
                           *arena, b->mem_left, s->opts.memory_limit, s->prepack.packed_bytes,
                           b->largest ? b->largest->name : "?",
                           b->largest ? b->largest->op_type : "?", b->largest_bytes);
    return st;
}

/* Writes the placed buffers' offsets into the plan's values, steps and
 * copies, and its statistics. */
static void apply_offsets(const builder *b, size_t arena, size_t lower)
{
    qkv_exec_plan *p = b->p;
    for (size_t v = 0; v < b->g->n_values; v++)
        if (p->values[v].storage == QKV_STORE_ARENA) {
            p->values[v].offset = b->bufs[b->group[v]].offset;
            p->values[v].buffer = b->group[v];
        }
    for (size_t i = 0; i < p->n_steps; i++)
        if (b->step_scratch[i] >= 0)
            p->steps[i].scratch_offset = b->bufs[b->step_scratch[i]].offset;
    for (size_t c = 0; c < p->n_copies; c++)
        p->copies[c].offset = b->bufs[b->copy_buf[c]].offset;
    p->stats.arena_bytes = arena;
    p->stats.lower_bound_bytes = lower;
    p->stats.steps = p->n_steps;
    /* qkv bench: the most scratch live at once (each step's lives for that step) */
    for (size_t i = 0; i < p->n_steps; i++)
        if (p->steps[i].scratch_bytes > p->stats.scratch_bytes)
            p->stats.scratch_bytes = p->steps[i].scratch_bytes;
}

qkv_status qkv_plan_build_graph(const qkv_session *s, const qkv_ir_graph *g,
                                const qkv_tensor *inputs, size_t n_inputs, qkv_exec_plan **out,
                                qkv_error *err)
{
    builder b = {.s = s, .g = g, .err = err};
    size_t arena = 0, lower = 0;
    qkv_status st = builder_init(&b, n_inputs);
    if (st == QKV_OK) {
        for (size_t i = 0; i < n_inputs; i++) {
            b.p->input_shapes[i] = inputs[i];
            b.p->input_shapes[i].data = NULL;
        }
        compute_last_uses(&b);
        init_values(&b, inputs, b.bound, n_inputs);
        st = plan_steps_and_arena(&b, &arena, &lower);
    }
    if (st != QKV_OK) {
        builder_free(&b);
        qkv_plan_release(b.p);
        return st;
    }
    apply_offsets(&b, arena, lower);
    builder_free(&b);
    *out = b.p;
    return QKV_OK;
}
