/*
 * session.h - the internals of a session: the model after the passes, its
 * kernels and backends, and the cache of its plans (plan/plan.h).
 */
#ifndef QKV_SESSION_H
#define QKV_SESSION_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>

#include "ir.h"
#include "passes.h"
#include "plan.h"
#include "qkv.h"
#include "registry.h"
#include "subgraphs.h"

/* The fusion passes session creation runs (attention, GELU, MatMul). */
#define QKV_FUSION_PASSES 4

struct qkv_session {
    qkv_model *model; /* owned; its graph carries each node's kernel and state */
    qkv_registry *registry;
    qkv_session_options opts;
    size_t n_folded; /* nodes folded into constants at creation */
    /* nodes each fusion pass created, in session.c's fusion_passes order:
     * Attention, Gelu, FusedMatMul */
    size_t n_fused[QKV_FUSION_PASSES];
    qkv_prepack_stats prepack; /* constants packed by kernels, originals released */
    /* plugins and backends (runtime/ext/backend.h) */
    struct qkv_session_backends *backends; /* loaded plugins, backend order, GEMM */
    /* plan cache: most recently used first */
    pthread_mutex_t cache_lock;
    size_t n_plans;
    qkv_exec_plan *plans[32];
    atomic_size_t plans_built; /* plans built by qkv_plan_get (cache misses) */
    /* the bodies of If/Loop/Scan nodes at every level (subgraphs.h) */
    size_t n_bodies;
    qkv_body *bodies;
};

/* Checks inputs against the model (count, dtype, rank, dims, symbolic dims
 * consistent, data present). */
qkv_status qkv_session_check_inputs(const qkv_session *s, const qkv_tensor *inputs, size_t n_inputs,
                                    bool need_data, qkv_error *err);

#endif /* QKV_SESSION_H */
