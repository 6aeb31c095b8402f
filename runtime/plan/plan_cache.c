/*
 * plan_cache.c - a session's plans, one per set of input shapes: the most
 * recently used first, at most 32, shared read-only by the contexts that
 * hold a reference.
 */
#include <string.h>

#include "plan.h"
#include "session.h"

size_t qkv_session_plans_built(const qkv_session *s)
{
    return s ? atomic_load(&((qkv_session *)s)->plans_built) : 0; /* C11 atomic_load takes no const */
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

qkv_status qkv_plan_get(qkv_session *s, const qkv_tensor *inputs, size_t n_inputs,
                        qkv_exec_plan **out, qkv_error *err)
{
    const size_t cap = sizeof s->plans / sizeof s->plans[0];
    pthread_mutex_lock(&s->cache_lock);
    for (size_t i = 0; i < s->n_plans; i++) {
        qkv_exec_plan *p = s->plans[i];
        if (!same_shapes(p, inputs, n_inputs))
            continue;
        /* move to front: least recently used plans are evicted first */
        memmove(&s->plans[1], &s->plans[0], i * sizeof s->plans[0]);
        s->plans[0] = p;
        atomic_fetch_add(&p->refs, 1);
        pthread_mutex_unlock(&s->cache_lock);
        *out = p;
        return QKV_OK;
    }
    pthread_mutex_unlock(&s->cache_lock);

    /* Build outside the lock: planning may evaluate nodes. Two threads may
     * build the same plan; the second one finds the first in the cache. */
    qkv_exec_plan *p = NULL;
    qkv_status st = qkv_plan_build(s, inputs, n_inputs, &p, err);
    if (st != QKV_OK)
        return st;
    atomic_fetch_add(&s->plans_built, 1);
    pthread_mutex_lock(&s->cache_lock);
    for (size_t i = 0; i < s->n_plans; i++) {
        if (same_shapes(s->plans[i], inputs, n_inputs)) {
            qkv_exec_plan *existing = s->plans[i];
            atomic_fetch_add(&existing->refs, 1);
            pthread_mutex_unlock(&s->cache_lock);
            qkv_plan_release(p);
            *out = existing;
            return QKV_OK;
        }
    }
    if (s->n_plans == cap)
        qkv_plan_release(s->plans[--s->n_plans]); /* contexts may still hold it */
    memmove(&s->plans[1], &s->plans[0], s->n_plans * sizeof s->plans[0]);
    s->plans[0] = p;
    s->n_plans++;
    atomic_fetch_add(&p->refs, 1); /* the cache's reference + the caller's */
    pthread_mutex_unlock(&s->cache_lock);
    *out = p;
    return QKV_OK;
}
