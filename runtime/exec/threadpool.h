/*
 * threadpool.h - a fixed pool of worker threads for parallel_for.
 *
 * One pool belongs to one run context (never shared between concurrent runs),
 * so a run never waits on another run's work. A call allocates nothing.
 */
#ifndef QKV_THREADPOOL_H
#define QKV_THREADPOOL_H

#include <stddef.h>

#include "qkv_plugin.h"

typedef struct qkv_threadpool qkv_threadpool;

/* A pool that runs work on `threads` threads in all (the caller's included,
 * so threads - 1 workers are started). threads <= 1 gives a pool that runs
 * inline. NULL when threads cannot be started or memory is short. */
qkv_threadpool *qkv_threadpool_create(size_t threads);
/* Stops and joins the workers. NULL: no-op. */
void qkv_threadpool_destroy(qkv_threadpool *pool);
/* Calls fn(arg, begin, end) over chunks covering [0, n) and returns when all
 * are done. pool NULL runs fn(arg, 0, n) inline. Not reentrant: a kernel's fn
 * must not call parallel_for itself (it then runs inline). */
void qkv_threadpool_run(qkv_threadpool *pool, size_t n, qkv_range_fn fn, void *arg);
/* Threads the pool uses (1 for NULL). */
size_t qkv_threadpool_size(const qkv_threadpool *pool);

#endif /* QKV_THREADPOOL_H */
