/*
 * plan.h - an execution plan: for one set of input shapes, where every
 * value lives during a run and the steps that compute them.
 *
 * Life of a run:
 *   session (immutable after creation) --qkv_plan_get(shapes)--> plan
 *   (cached in the session, shared read-only by contexts) --> context runs
 *   the plan's steps over its own arena (exec/executor.c).
 */
#ifndef QKV_PLAN_H
#define QKV_PLAN_H

#include <stdatomic.h>
#include <stdbool.h>

#include "kernel_host.h" /* qkv_plan_mem */
#include "qkv.h"

typedef struct qkv_exec_plan qkv_exec_plan;

/* Where a value's bytes live during a run. */
typedef enum qkv_storage {
    QKV_STORE_NONE = 0, /* not needed by any step (or an omitted optional) */
    QKV_STORE_INPUT,    /* the caller's input tensor */
    QKV_STORE_CONSTANT, /* session-owned constant data */
    QKV_STORE_PLANNED,  /* computed while planning; plan-owned data */
    QKV_STORE_ARENA,    /* at `offset` in the context's arena */
    QKV_STORE_DYNAMIC,  /* allocated when its node runs (shape known only then) */
    QKV_STORE_VALUE     /* a sequence or an optional: in the context's box for it
                         * (exec/value_store.h); t holds the element type, rank -1 */
} qkv_storage;

typedef struct qkv_plan_value {
    qkv_tensor t; /* dtype, rank, dims (data set for CONSTANT and PLANNED) */
    qkv_storage storage;
    size_t offset;   /* ARENA */
    int32_t view_of; /* INPUT/CONSTANT/PLANNED views: the value whose data this
                        * shares (itself when not a view) */
    int32_t buffer;  /* ARENA: the arena buffer; values sharing one (views,
                        * in-place results) have the same bytes */
} qkv_plan_value;

typedef struct qkv_plan_step {
    int32_t node;          /* index in the graph */
    bool dynamic;          /* infer and allocate at run time */
    size_t scratch_offset; /* in the arena */
    size_t scratch_bytes;
    const void *plan_state; /* what the kernel's prepare kept for compute (in plan_mem) */
    bool host_copy;         /* the host copies input 0's sequence/optional to output 0
                             * instead of running the kernel (qkv_node_host_alias) */
} qkv_plan_step;

/* A graph output copied into the arena at the end of a run (when its value
 * does not live in the arena: an input, a constant, a planned value). */
typedef struct qkv_plan_copy {
    int32_t value;
    size_t offset;
} qkv_plan_copy;

struct qkv_exec_plan {
    atomic_size_t refs;
    size_t n_inputs;
    qkv_tensor *input_shapes; /* the key: dtype, rank, dims of each input */
    size_t n_values;
    qkv_plan_value *values;
    size_t n_steps;
    qkv_plan_step *steps;
    size_t n_copies;
    qkv_plan_copy *copies;
    qkv_plan_mem plan_mem; /* the kernels' per-plan states, freed with the plan */
    qkv_plan_stats stats;
};

/* Builds a plan for the given input shapes (plan_build.c). */
qkv_status qkv_plan_build(const qkv_session *s, const qkv_tensor *inputs, size_t n_inputs,
                          qkv_exec_plan **out, qkv_error *err);
/* The same for graph g: the main graph or a subgraph of the session
 * (inputs: its bound inputs, ir.h qkv_graph_bound_ids). */
qkv_status qkv_plan_build_graph(const qkv_session *s, const qkv_ir_graph *g,
                                const qkv_tensor *inputs, size_t n_inputs, qkv_exec_plan **out,
                                qkv_error *err);
/* Drops a reference; frees the plan at zero. NULL: no-op. */
void qkv_plan_release(qkv_exec_plan *plan);
/* The cached plan for these input shapes, building and caching it if needed
 * (plan_cache.c). The caller gets a reference. */
qkv_status qkv_plan_get(qkv_session *s, const qkv_tensor *inputs, size_t n_inputs,
                        qkv_exec_plan **out, qkv_error *err);
/* The same for subgraph body_id of the session (its own cache of
 * QKV_BODY_PLANS plans). */
qkv_status qkv_body_plan_get(qkv_session *s, int32_t body_id, const qkv_tensor *inputs,
                             size_t n_inputs, qkv_exec_plan **out, qkv_error *err);

#endif /* QKV_PLAN_H */
