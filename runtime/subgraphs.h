/*
 * subgraphs.h - a session's table of subgraphs: the bodies of its If, Loop
 * and Scan nodes, at every nesting level, each with its own cache of plans.
 *
 * A body is planned like the main graph (plan/plan_build.c), with its bound
 * inputs (ir.h: qkv_graph_bound_ids: the body's graph inputs, then the
 * values it reads from enclosing graphs) as the plan's inputs, and run in a
 * frame of the run context (exec/frame.h) by its control-flow node
 * (exec/control_flow.h).
 */
#ifndef QKV_SUBGRAPHS_H
#define QKV_SUBGRAPHS_H

#include <pthread.h>

#include "ir.h"
#include "qkv.h"

struct qkv_exec_plan;

/* Plans kept per body: the most recently used first. */
#define QKV_BODY_PLANS 8

typedef struct qkv_body {
    qkv_ir_graph *g;      /* owned by the model (an attribute of a node) */
    int32_t depth;        /* 1 for a body of a node of the main graph */
    size_t n_bound;       /* qkv_graph_bound_ids(g, NULL) */
    pthread_mutex_t lock; /* guards the plan cache */
    size_t n_plans;
    struct qkv_exec_plan *plans[QKV_BODY_PLANS];
} qkv_body;

struct qkv_session;

/* Collects every subgraph of the session's model into s->bodies (parents
 * before their children) and sets each graph's body_id. Errors:
 * QKV_ERR_OUT_OF_MEMORY. On failure s->bodies stays for
 * qkv_subgraphs_destroy. */
qkv_status qkv_subgraphs_collect(struct qkv_session *s, qkv_error *err);

/* Releases the bodies' plans, destroys their nodes' kernel states and frees
 * the table. Call before the plugins are released. NULL-safe. */
void qkv_subgraphs_destroy(struct qkv_session *s);

#endif /* QKV_SUBGRAPHS_H */
