/*
 * threadpool.c - a fixed pool for parallel_for. The range is cut into about
 * 4 chunks per thread, handed out with an atomic counter so uneven chunks
 * balance.
 *
 * Waking a sleeping thread takes tens of microseconds, and a transformer run
 * calls parallel_for a few times per node, so after each job the workers
 * spin (with a pause) for up to SPIN_NS before they sleep on the condition
 * variable, and the caller likewise spins before it waits for them: between
 * the nodes of one run nobody sleeps. A job is published by bumping the
 * atomic `generation` after its fields are written (release), and a worker
 * reads them after it sees the new generation (acquire). Sleepers are
 * counted so that the caller takes the lock to wake them only when someone
 * sleeps; the count and the generation are sequentially consistent, so
 * either the caller sees a sleeper or the sleeper sees the new generation.
 */
#include "threadpool.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdlib.h>
#include <time.h>

#if defined(__x86_64__) || defined(__i386__)
#include <immintrin.h>
#define cpu_relax() _mm_pause()
#else
#define cpu_relax() ((void)0)
#endif

/* How long a thread spins for the next job (or for the workers to finish)
 * before it sleeps: longer than the gap between two nodes' parallel_for
 * calls, short enough not to hog a core an idle application wants. */
#define SPIN_NS 200000L

struct qkv_threadpool {
    size_t threads; /* including the caller */
    pthread_t *workers;
    size_t n_workers;
    pthread_mutex_t lock;
    pthread_cond_t work_ready;
    pthread_cond_t work_done;
    atomic_ulong generation;
    atomic_bool stopping;
    atomic_bool busy; /* a job is running: nested calls run inline */
    atomic_size_t sleepers;
    /* the current job: written before generation is bumped */
    qkv_range_fn fn;
    void *arg;
    size_t n, chunk, n_chunks;
    atomic_size_t next_chunk;
    atomic_size_t workers_left; /* workers still inside the current job */
};

static long elapsed_ns(const struct timespec *t0)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (long)(t.tv_sec - t0->tv_sec) * 1000000000L + (t.tv_nsec - t0->tv_nsec);
}

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

/* Spins until generation differs from seen or the pool stops, at most
 * SPIN_NS; true when it did. */
static bool spin_for_job(qkv_threadpool *p, unsigned long seen)
{
    struct timespec t0;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    for (unsigned i = 1;; i++) {
        if (atomic_load(&p->generation) != seen || atomic_load(&p->stopping))
            return true;
        cpu_relax();
        if (i % 64 == 0 && elapsed_ns(&t0) > SPIN_NS)
            return false;
    }
}

static void *worker_main(void *arg)
{
    qkv_threadpool *p = arg;
    unsigned long seen = 0;
    for (;;) {
        if (!spin_for_job(p, seen)) {
            pthread_mutex_lock(&p->lock);
            atomic_fetch_add(&p->sleepers, 1);
            while (!atomic_load(&p->stopping) && atomic_load(&p->generation) == seen)
                pthread_cond_wait(&p->work_ready, &p->lock);
            atomic_fetch_sub(&p->sleepers, 1);
            pthread_mutex_unlock(&p->lock);
        }
        if (atomic_load(&p->stopping))
            break;
        seen = atomic_load(&p->generation);
        run_chunks(p);
        if (atomic_fetch_sub(&p->workers_left, 1) == 1) {
            pthread_mutex_lock(&p->lock);
            pthread_cond_signal(&p->work_done);
            pthread_mutex_unlock(&p->lock);
        }
    }
    return NULL;
}

qkv_threadpool *qkv_threadpool_create(size_t threads)
{
    qkv_threadpool *p = calloc(1, sizeof *p);
    if (!p)
        return NULL;
    p->threads = threads < 1 ? 1 : threads;
    atomic_init(&p->generation, 0);
    atomic_init(&p->stopping, false);
    atomic_init(&p->busy, false);
    atomic_init(&p->sleepers, 0);
    atomic_init(&p->next_chunk, 0);
    atomic_init(&p->workers_left, 0);
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
    atomic_store(&p->stopping, true);
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
    if (atomic_exchange(&p->busy, true)) { /* nested parallel_for from inside a chunk */
        fn(arg, 0, n);
        return;
    }
    size_t want = p->threads * 4;
    p->chunk = (n + want - 1) / want;
    p->n_chunks = (n + p->chunk - 1) / p->chunk;
    p->fn = fn;
    p->arg = arg;
    p->n = n;
    atomic_store(&p->next_chunk, 0);
    atomic_store(&p->workers_left, p->n_workers);
    atomic_fetch_add(&p->generation, 1); /* publishes the job */
    if (atomic_load(&p->sleepers) > 0) {
        pthread_mutex_lock(&p->lock);
        pthread_cond_broadcast(&p->work_ready);
        pthread_mutex_unlock(&p->lock);
    }

    run_chunks(p);

    struct timespec t0;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    for (unsigned i = 1; atomic_load(&p->workers_left) > 0; i++) {
        cpu_relax();
        if (i % 64 == 0 && elapsed_ns(&t0) > SPIN_NS) {
            pthread_mutex_lock(&p->lock);
            while (atomic_load(&p->workers_left) > 0)
                pthread_cond_wait(&p->work_done, &p->lock);
            pthread_mutex_unlock(&p->lock);
            break;
        }
    }
    atomic_store(&p->busy, false);
}

size_t qkv_threadpool_size(const qkv_threadpool *p) { return p ? p->threads : 1; }
