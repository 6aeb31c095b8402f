/*
 * plan_cache.c - a session's plans, one per set of input shapes: the most
 * recently used first, at most 32 for the main graph and QKV_BODY_PLANS for
 * each subgraph (subgraphs.h), shared read-only by the contexts that hold a
 * reference.
 */
#include <string.h>

#include "plan.h"
#include "session.h"

size_t qkv_session_plans_built(const qkv_session *s)
{
    return s ? atomic_load(&((qkv_session *)s)->plans_built)
             : 0; /* C11 atomic_load takes no const */
}

static bool same_shapes(const qkv_exec_plan *p, const qkv_tensor *inputs, size_t n)
{
    if (p->n_inputs != n)
        return false;
    for (size_t i = 0; i < n; i++) {
        if (p->input_shapes[i].rank != inputs[i].rank)
            return false;
        for (int32_t k = 0; k < inputs[i].rank; k++)
            if (p->input_shapes[i].dims[k] != inputs[i].dims[k])
                return false;
    }
    return true;
}

/* One cache: plans[0..*n) of at most cap, guarded by lock. */
typedef struct plan_cache {
    pthread_mutex_t *lock;
    qkv_exec_plan **plans;
    size_t *n;
    size_t cap;
} plan_cache;

/* The plan of graph g for these shapes from cache c, built (outside the
 * lock) and added when missing. *built tells whether it was built. */
static qkv_status cache_get(const plan_cache *c, qkv_session *s, const qkv_ir_graph *g,
                            const qkv_tensor *inputs, size_t n_inputs, qkv_exec_plan **out,
                            bool *built, qkv_error *err)
{
    *built = false;
    pthread_mutex_lock(c->lock);
    for (size_t i = 0; i < *c->n; i++) {
        qkv_exec_plan *p = c->plans[i];
        if (!same_shapes(p, inputs, n_inputs))
            continue;
        /* move to front: least recently used plans are evicted first */
        memmove(&c->plans[1], &c->plans[0], i * sizeof c->plans[0]);
        c->plans[0] = p;
        atomic_fetch_add(&p->refs, 1);
        pthread_mutex_unlock(c->lock);
        *out = p;
        return QKV_OK;
    }
    pthread_mutex_unlock(c->lock);

    /* Build outside the lock: planning may evaluate nodes. Two threads may
     * build the same plan; the second one finds the first in the cache. */
    qkv_exec_plan *p = NULL;
    qkv_status st = qkv_plan_build_graph(s, g, inputs, n_inputs, &p, err);
    if (st != QKV_OK)
        return st;
    *built = true;
    pthread_mutex_lock(c->lock);
    for (size_t i = 0; i < *c->n; i++) {
        if (same_shapes(c->plans[i], inputs, n_inputs)) {
            qkv_exec_plan *existing = c->plans[i];
            atomic_fetch_add(&existing->refs, 1);
            pthread_mutex_unlock(c->lock);
            qkv_plan_release(p);
            *out = existing;
            return QKV_OK;
        }
    }
    if (*c->n == c->cap)
        qkv_plan_release(c->plans[--*c->n]); /* contexts may still hold it */
    memmove(&c->plans[1], &c->plans[0], *c->n * sizeof c->plans[0]);
    c->plans[0] = p;
    (*c->n)++;
    atomic_fetch_add(&p->refs, 1); /* the cache's reference + the caller's */
    pthread_mutex_unlock(c->lock);
    *out = p;
    return QKV_OK;
}

qkv_status qkv_plan_get(qkv_session *s, const qkv_tensor *inputs, size_t n_inputs,
                        qkv_exec_plan **out, qkv_error *err)
{
    plan_cache c = {&s->cache_lock, s->plans, &s->n_plans, sizeof s->plans / sizeof s->plans[0]};
    bool built;
    qkv_status st = cache_get(&c, s, s->model->graph, inputs, n_inputs, out, &built, err);
    if (st == QKV_OK && built)
        atomic_fetch_add(&s->plans_built, 1);
    return st;
}

qkv_status qkv_body_plan_get(qkv_session *s, int32_t body_id, const qkv_tensor *inputs,
                             size_t n_inputs, qkv_exec_plan **out, qkv_error *err)
{
    qkv_body *b = &s->bodies[body_id];
    plan_cache c = {&b->lock, b->plans, &b->n_plans, QKV_BODY_PLANS};
    bool built;
    return cache_get(&c, s, b->g, inputs, n_inputs, out, &built, err);
}
