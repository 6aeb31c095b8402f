/*
 * session.h - the internals of a session, its plans and run contexts.
 *
 * Life of a run:
 *   session (immutable after creation) --qkv_plan_get(shapes)--> plan
 *   (cached in the session, shared read-only by contexts) --> context runs
 *   the plan's steps over its own arena.
 */
#ifndef QKV_SESSION_H
#define QKV_SESSION_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>

#include "ir.h"
#include "qkv.h"
#include "prepack.h"
#include "registry.h"

typedef struct qkv_exec_plan qkv_exec_plan;

struct qkv_session {
    qkv_model *model; /* owned; its graph carries each node's kernel and state */
    qkv_registry *registry;
    qkv_session_options opts;
    size_t n_folded; /* nodes folded into constants at creation */
    size_t n_fused;  /* Attention nodes the attention fusion created */
    size_t n_fused_gelu;   /* GELU subgraphs rewritten into Gelu */
    size_t n_fused_matmul; /* FusedMatMul nodes created */
    qkv_prepack_stats prepack; /* constants packed by kernels, originals released */
    /* plugins and backends (runtime/backend.h) */
    struct qkv_session_backends *backends; /* loaded plugins, backend order, GEMM */
    /* plan cache: most recently used first */
    pthread_mutex_t cache_lock;
    size_t n_plans;
    qkv_exec_plan *plans[32];
    /* plan cache observability */
    atomic_size_t plans_built; /* plans built by qkv_plan_get (cache misses) */
};

/* Where a value's bytes live during a run. */
typedef enum qkv_storage {
    QKV_STORE_NONE = 0, /* not needed by any step (or an omitted optional) */
    QKV_STORE_INPUT,    /* the caller's input tensor */
    QKV_STORE_CONSTANT, /* session-owned constant data */
    QKV_STORE_PLANNED,  /* computed while planning; plan-owned data */
    QKV_STORE_ARENA,    /* at `offset` in the context's arena */
    QKV_STORE_DYNAMIC   /* allocated when its node runs (shape known only then) */
} qkv_storage;

typedef struct qkv_plan_value {
    qkv_tensor t;      /* dtype, rank, dims (data set for CONSTANT and PLANNED) */
    qkv_storage storage;
    size_t offset;     /* ARENA */
    int32_t view_of;   /* INPUT/CONSTANT/PLANNED views: the value whose data this
                        * shares (itself when not a view) */
    int32_t buffer;    /* ARENA: the arena buffer; values sharing one (views,
                        * in-place results) have the same bytes */
} qkv_plan_value;

typedef struct qkv_plan_step {
    int32_t node;          /* index in the graph */
    bool dynamic;          /* infer and allocate at run time */
    size_t scratch_offset; /* in the arena */
    size_t scratch_bytes;
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
    qkv_plan_stats stats;
};

/* Builds a plan for the given input shapes (see plan.c). */
qkv_status qkv_plan_build(const qkv_session *s, const qkv_tensor *inputs, size_t n_inputs,
                          qkv_exec_plan **out, qkv_error *err);
/* Drops a reference; frees the plan at zero. NULL: no-op. */
void qkv_plan_release(qkv_exec_plan *plan);
/* The cached plan for these input shapes, building and caching it if needed.
 * The caller gets a reference. */
qkv_status qkv_plan_get(qkv_session *s, const qkv_tensor *inputs, size_t n_inputs,
                        qkv_exec_plan **out, qkv_error *err);

/* Checks inputs against the model (count, dtype, rank, dims, symbolic dims
 * consistent, data present). */
qkv_status qkv_session_check_inputs(const qkv_session *s, const qkv_tensor *inputs,
                                    size_t n_inputs, bool need_data, qkv_error *err);

/* Static type and shape inference over the graph (infer.c). */
qkv_status qkv_infer_graph(qkv_ir_graph *g, qkv_error *err);
/* Constant folding (fold.c): evaluates nodes whose inputs are all constants.
 * *folded gets the number of nodes removed. */
qkv_status qkv_fold_constants(qkv_ir_graph *g, size_t *folded, qkv_error *err);
/* Gathers a node's input tensors as known statically (dtype/rank/dims from the
 * values, data for constants). ins has node->n_inputs entries. */
void qkv_node_static_inputs(const qkv_ir_graph *g, const qkv_ir_node *node, qkv_tensor *ins);

#endif /* QKV_SESSION_H */
