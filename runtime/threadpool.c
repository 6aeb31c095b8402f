/*
 * threadpool.c - workers wait on a condition variable for a new "generation"
 * of work; the range is cut into about 4 chunks per thread, handed out with
 * an atomic counter so uneven chunks balance.
 */
#include "threadpool.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdlib.h>

struct qkv_threadpool {
    size_t threads; /* including the caller */
    pthread_t *workers;
    size_t n_workers;
    pthread_mutex_t lock;
    pthread_cond_t work_ready;
    pthread_cond_t work_done;
    unsigned long generation;
    bool stopping;
    bool busy; /* a run is in progress: nested calls run inline */
    /* the current job */
    qkv_range_fn fn;
    void *arg;
    size_t n, chunk, n_chunks;
    atomic_size_t next_chunk;
    size_t workers_left; /* workers still inside the current generation */
};

static void run_chunks(qkv_threadpool *p)
{
    for (;;) {
        size_t c = atomic_fetch_add(&p->next_chunk, 1);
        if (c >= p->n_chunks)
            return;
        size_t begin = c * p->chunk;
        size_t end = begin + p->chunk < p->n ? begin + p->chunk : p->n;
        p->fn(p->arg, begin, end);
    }
}

static void *worker_main(void *arg)
{
    qkv_threadpool *p = arg;
    unsigned long seen = 0;
    pthread_mutex_lock(&p->lock);
    for (;;) {
        while (!p->stopping && p->generation == seen)
            pthread_cond_wait(&p->work_ready, &p->lock);
        if (p->stopping)
            break;
        seen = p->generation;
        pthread_mutex_unlock(&p->lock);
        run_chunks(p);
        pthread_mutex_lock(&p->lock);
        if (--p->workers_left == 0)
            pthread_cond_signal(&p->work_done);
    }
    pthread_mutex_unlock(&p->lock);
    return NULL;
}

qkv_threadpool *qkv_threadpool_create(size_t threads)
{
    qkv_threadpool *p = calloc(1, sizeof *p);
    if (!p)
        return NULL;
    p->threads = threads < 1 ? 1 : threads;
    atomic_init(&p->next_chunk, 0);
    if (pthread_mutex_init(&p->lock, NULL) != 0) {
        free(p);
        return NULL;
    }
    pthread_cond_init(&p->work_ready, NULL);
    pthread_cond_init(&p->work_done, NULL);
    if (p->threads > 1) {
        p->workers = calloc(p->threads - 1, sizeof *p->workers);
        if (!p->workers) {
            qkv_threadpool_destroy(p);
            return NULL;
        }
        for (size_t i = 0; i < p->threads - 1; i++) {
            if (pthread_create(&p->workers[i], NULL, worker_main, p) != 0) {
                qkv_threadpool_destroy(p);
                return NULL;
            }
            p->n_workers++;
        }
    }
    return p;
}

void qkv_threadpool_destroy(qkv_threadpool *p)
{
    if (!p)
        return;
    pthread_mutex_lock(&p->lock);
    p->stopping = true;
    pthread_cond_broadcast(&p->work_ready);
    pthread_mutex_unlock(&p->lock);
    for (size_t i = 0; i < p->n_workers; i++)
        pthread_join(p->workers[i], NULL);
    free(p->workers);
    pthread_cond_destroy(&p->work_ready);
    pthread_cond_destroy(&p->work_done);
    pthread_mutex_destroy(&p->lock);
    free(p);
}

void qkv_threadpool_run(qkv_threadpool *p, size_t n, qkv_range_fn fn, void *arg)
{
    if (n == 0)
        return;
    if (!p || p->n_workers == 0 || n == 1) {
        fn(arg, 0, n);
        return;
    }
    pthread_mutex_lock(&p->lock);
    if (p->busy) { /* nested parallel_for from inside a chunk */
        pthread_mutex_unlock(&p->lock);
        fn(arg, 0, n);
        return;
    }
    p->busy = true;
    size_t want = p->threads * 4;
    p->chunk = (n + want - 1) / want;
    p->n_chunks = (n + p->chunk - 1) / p->chunk;
    p->fn = fn;
    p->arg = arg;
    p->n = n;
    atomic_store(&p->next_chunk, 0);
    p->workers_left = p->n_workers;
    p->generation++;
    pthread_cond_broadcast(&p->work_ready);
    pthread_mutex_unlock(&p->lock);

    run_chunks(p);

    pthread_mutex_lock(&p->lock);
    while (p->workers_left > 0)
        pthread_cond_wait(&p->work_done, &p->lock);
    p->busy = false;
    pthread_mutex_unlock(&p->lock);
}

size_t qkv_threadpool_size(const qkv_threadpool *p)
{
    return p ? p->threads : 1;
}
