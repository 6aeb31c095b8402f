/*
 * frame.h - running one graph's plan in a run context: the main graph, or a
 * subgraph (an If/Loop/Scan body) run by its control-flow node.
 *
 * A frame owns what a run of its graph needs: the plan reference, the arena,
 * every value's tensor, the buffers of dynamic nodes, and the work buffers a
 * control-flow node keeps across iterations. A context has one frame for the
 * main graph and one per subgraph, made when first used and sized when a new
 * plan first needs it, so a Loop iteration with shapes seen before allocates
 * nothing. Subgraphs form a tree, so a frame is never run re-entrantly.
 */
#ifndef QKV_FRAME_H
#define QKV_FRAME_H

#include <stdbool.h>

#include "ir.h"
#include "kernel_host.h"
#include "plan.h"
#include "qkv.h"

typedef struct qkv_frame {
    const qkv_ir_graph *g;
    qkv_exec_plan *plan; /* the plan of the last run (a reference) */
    unsigned char *arena;
    size_t arena_cap;
    qkv_tensor *vals;     /* (n_values) every value's tensor for this run */
    int32_t *input_index; /* (n_values) bound input slot of a value, -1 */
    qkv_tensor *io;       /* (max inputs + max outputs) a step's inputs then outputs */
    size_t n_bound;       /* ir.h qkv_graph_bound_ids */
    qkv_tensor *bound;    /* (n_bound) a subgraph's bound inputs for this run */
    qkv_tensor *outs;     /* (n_outputs) a subgraph's outputs after a run */
    void **dyn;           /* buffers of dynamic nodes, freed at the next run */
    size_t n_dyn, cap_dyn;
    size_t dyn_bytes; /* their bytes (against the session's memory limit) */
    void **work;      /* work buffers of the node that runs this graph */
    size_t *work_cap;
    size_t n_work;
    bool busy; /* running now */
    /* sequences and optionals (value_store.h) */
    struct qkv_box *boxes;       /* (n_values) the box of each such value */
    qkv_type_kind *kinds;        /* (max io) a step's input then output kinds */
    struct qkv_box **step_boxes; /* (max io) a step's input then output boxes */
    /* a subgraph's sequence and optional bound inputs: the values their
     * boxes borrow for this run (entries of tensor inputs unused) */
    qkv_value *bound_values; /* (n_bound) */
    /* boxes the node running this graph keeps across iterations and runs
     * (Loop-carried sequences and optionals): qkv_body_boxes */
    struct qkv_box *owned;
    size_t n_owned;
} qkv_frame;

/* A frame for graph g. NULL when out of memory. */
qkv_frame *qkv_frame_create(const qkv_ir_graph *g);
/* Frees the frame and everything it owns. NULL: no-op. */
void qkv_frame_destroy(qkv_frame *f);

/* Frees the buffers of the dynamic nodes of the frame's last run. */
void qkv_frame_free_dynamic(qkv_frame *f);

/* Makes f's plan the one for these bound-input shapes (kept by the frame,
 * else from the session's cache for f's graph) and sizes the arena. */
qkv_status qkv_frame_use_plan(qkv_session *s, qkv_frame *f, const qkv_tensor *inputs,
                              size_t n_inputs, qkv_error *err);

/* Points every value at its bytes for this run (inputs: the bound inputs).
 * A sequence or optional points at its box, emptied here, or for a graph
 * input made to borrow values[its input index] (values: qkv_run_values'
 * inputs; NULL otherwise). */
void qkv_frame_bind(qkv_frame *f, const qkv_tensor *inputs, const qkv_value *values);

/* Runs one step of f's plan in context c. */
qkv_status qkv_frame_run_step(qkv_context *c, qkv_frame *f, const qkv_plan_step *step,
                              qkv_error *err);

/* After the steps: graph outputs that do not live in the arena are copied
 * into it, so every output belongs to the frame. */
void qkv_frame_copy_outputs(qkv_frame *f);

/* The context's frame for subgraph body_id, made when first needed
 * (executor.c). QKV_ERR_OUT_OF_MEMORY. */
qkv_status qkv_context_body_frame(qkv_context *c, int32_t body_id, qkv_frame **out, qkv_error *err);

/* Whether qkv_context_cancel asked c's run to stop; the request is consumed
 * (executor.c). Checked before each step and each subgraph run. */
bool qkv_context_take_cancel(qkv_context *c);

/* The context's thread pool (executor.c). */
struct qkv_threadpool *qkv_context_pool(const qkv_context *c);

/*
 * Runs subgraph `body` of the node h is computing, in h's run context:
 * inputs[0..n_inputs) are the body's graph inputs; the values it reads from
 * enclosing graphs are taken from the frame running the node. On success
 * *outs points at the body's n_outputs outputs, which stay valid until the
 * body runs again in this context. Errors: the body's (the message prefixed
 * with the node), QKV_ERR_INVALID_MODEL for a wrong count of inputs,
 * QKV_ERR_TYPE for an input of another type than the body declares,
 * QKV_ERR_INTERNAL outside a run context. Every input is a tensor: a
 * body taking sequences or optionals runs with qkv_body_run_values.
 */
qkv_status qkv_body_run(qkv_host_ctx *h, const qkv_ir_graph *body, const qkv_tensor *inputs,
                        size_t n_inputs, const qkv_tensor **outs);

/*
 * qkv_body_run with sequence and optional values crossing the boundary.
 * kinds[i] (NULL: all tensors) is the kind of inputs[i]; a sequence or
 * optional input's `data` is its struct qkv_box (value_store.h), which the
 * body's input borrows for the run (no copy): the caller keeps it alive
 * and unchanged until the body's outputs are used up. A value may stand
 * where the body declares the optional of its kind and the reverse
 * (qkv_kind_converts); the body's outer-scope reads of such values borrow
 * the enclosing frame's boxes the same way. An output of the body that is
 * a sequence or optional (body->values[body->outputs[k]].type_kind) has
 * its box as `data`, owned by the body's frame until the body runs again;
 * the caller may move its contents out (qkv_box_take). Errors as
 * qkv_body_run, plus QKV_ERR_TYPE for a kind the body's input cannot take
 * (naming the subgraph, the input and both kinds) and
 * QKV_ERR_INVALID_ARGUMENT for an empty optional where the body declares
 * a value that is not optional.
 */
qkv_status qkv_body_run_values(qkv_host_ctx *h, const qkv_ir_graph *body, const qkv_tensor *inputs,
                               const qkv_type_kind *kinds, size_t n_inputs,
                               const qkv_tensor **outs);

/*
 * *out gets n boxes (struct qkv_box, value_store.h) of the frame of
 * `body`, kept across iterations and runs and freed with the context: the
 * node running `body` keeps its loop-carried sequences and optionals
 * there. Call it once per compute, before pointing anything at them
 * (growing the set moves them). QKV_ERR_OUT_OF_MEMORY naming the node.
 */
qkv_status qkv_body_boxes(qkv_host_ctx *h, const qkv_ir_graph *body, size_t n,
                          struct qkv_box **out);

/*
 * A work buffer of at least `bytes` for the node running `body`: buffer
 * `slot` of the body's frame, kept across iterations and runs and grown (to
 * twice the need) only when too small. Its content is kept when it grows.
 * QKV_ERR_OUT_OF_MEMORY (also past the session's memory limit), naming the
 * node.
 */
qkv_status qkv_body_work(qkv_host_ctx *h, const qkv_ir_graph *body, size_t slot, size_t bytes,
                         void **out);

#endif /* QKV_FRAME_H */
