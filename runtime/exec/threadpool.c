/*
 * threadpool.c - a fixed pool for parallel_for. The range is cut into about
 * 4 chunks per thread, handed out one at a time so uneven chunks balance.
 *
 * Claiming. One atomic word, `claim`, holds the job's generation, its chunk
 * count and the next unclaimed chunk. A thread claims chunk c by a CAS from
 * (g, n_chunks, c) to (g, n_chunks, c + 1), and only then reads the job's
 * other fields (relaxed atomics, published by the release store of the word
 * and carried through the CAS chain). A worker that read the word of job g
 * and was then descheduled fails its CAS once any chunk moved on or job g+1
 * was published, so it never runs a chunk of a job it did not claim, and it
 * never reads a field the caller is rewriting: while a claimed chunk is
 * unfinished the caller cannot return, let alone publish the next job.
 *
 * Finishing. The caller waits for the number of finished chunks to reach
 * n_chunks, not for every worker to pass through the job: a worker that has
 * not claimed a chunk (asleep, descheduled, or busy spinning on a core the
 * caller does not have) is never waited for; the caller runs the chunks
 * itself. No worker touches the job (its arg is on the caller's stack)
 * after it counts its last chunk finished.
 *
 * Waiting. Waking a sleeping thread takes tens of microseconds, and a
 * transformer run calls parallel_for a few times per node, so after a job a
 * worker spins (with a pause) for up to SPIN_NS for the next one before it
 * sleeps on a condition variable, and the caller likewise spins before it
 * sleeps waiting for the last chunks. (Spinning with sched_yield, and
 * shorter spins, 50 us or none, were measured on the 2-layer encoder at 2
 * threads beside oneDNN's OpenMP workers: no difference showed above the
 * noise of a loaded 2-core machine, so the pause loop stayed.) Sleepers are
 * counted so that the caller takes the lock to wake them only when someone
 * sleeps; the count and the claim word are sequentially consistent, so
 * either the caller sees a sleeper or the sleeper sees the new job; likewise
 * the caller's `caller_sleeps` flag and the finished-chunk count.
 */
#include "threadpool.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
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

/* The claim word: generation (32 bits) | n_chunks (16) | next chunk (16).
 * The next-chunk field never exceeds n_chunks (a claim needs next <
 * n_chunks), so it never carries into n_chunks. A stale CAS could succeed
 * only if the word came back to the same value, 2^32 jobs later. */
#define CHUNK_BITS 16
#define MAX_CHUNKS ((1u << CHUNK_BITS) - 1)
#define GEN_SHIFT (2 * CHUNK_BITS)

static uint64_t claim_word(uint64_t gen, uint64_t n_chunks, uint64_t next)
{
    return (gen << GEN_SHIFT) | (n_chunks << CHUNK_BITS) | next;
}
static size_t word_chunks(uint64_t w) { return (size_t)((w >> CHUNK_BITS) & MAX_CHUNKS); }
static size_t word_next(uint64_t w) { return (size_t)(w & MAX_CHUNKS); }
static uint64_t word_gen(uint64_t w) { return w >> GEN_SHIFT; }

struct qkv_threadpool {
    size_t threads; /* including the caller */
    pthread_t *workers;
    size_t n_workers;
    pthread_mutex_t lock;
    pthread_cond_t work_ready;
    pthread_cond_t work_done;
    _Atomic uint64_t claim; /* see claim_word */
    atomic_bool stopping;
    atomic_bool busy; /* a job is running: nested calls run inline */
    atomic_size_t sleepers;
    atomic_bool caller_sleeps;
    atomic_size_t finished; /* chunks of the current job run to their end */
    /* the current job: written before the claim word publishes it, read
     * only by a thread holding a claimed chunk */
    _Atomic(qkv_range_fn) fn;
    _Atomic(void *) arg;
    atomic_size_t n, chunk;
};

static long elapsed_ns(const struct timespec *t0)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (long)(t.tv_sec - t0->tv_sec) * 1000000000L + (t.tv_nsec - t0->tv_nsec);
}

/* Claims one chunk of whatever job the word holds; false when it has none
 * left. On success *chunk is the chunk and *n_chunks the job's count. */
static bool claim_chunk(qkv_threadpool *p, size_t *chunk, size_t *n_chunks)
{
    uint64_t w = atomic_load_explicit(&p->claim, memory_order_acquire);
    for (;;) {
        if (word_next(w) >= word_chunks(w))
            return false;
        if (atomic_compare_exchange_weak_explicit(&p->claim, &w, w + 1, memory_order_acq_rel,
                                                  memory_order_acquire)) {
            *chunk = word_next(w);
            *n_chunks = word_chunks(w);
            return true;
        }
    }
}

/* Runs chunks until none is left to claim; true when this thread finished
 * the job's last chunk. */
static bool run_chunks(qkv_threadpool *p)
{
    bool last = false;
    size_t c, n_chunks;
    while (claim_chunk(p, &c, &n_chunks)) {
        qkv_range_fn fn = atomic_load_explicit(&p->fn, memory_order_relaxed);
        void *arg = atomic_load_explicit(&p->arg, memory_order_relaxed);
        size_t n = atomic_load_explicit(&p->n, memory_order_relaxed);
        size_t chunk = atomic_load_explicit(&p->chunk, memory_order_relaxed);
        size_t begin = c * chunk;
        fn(arg, begin, begin + chunk < n ? begin + chunk : n);
        /* seq_cst: pairs with the caller's store of caller_sleeps */
        if (atomic_fetch_add(&p->finished, 1) + 1 == n_chunks)
            last = true;
    }
    return last;
}

/* Spins until done(p, seen) or SPIN_NS; true when done. */
static bool spin_until(qkv_threadpool *p, bool (*done)(qkv_threadpool *, uint64_t), uint64_t seen)
{
    struct timespec t0;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    for (unsigned i = 1;; i++) {
        if (done(p, seen))
            return true;
        cpu_relax();
        if (i % 64 == 0 && elapsed_ns(&t0) > SPIN_NS)
            return false;
    }
}

/* A worker's wake-up condition: a new job (another generation) or stop. */
static bool new_job(qkv_threadpool *p, uint64_t seen_gen)
{
    return word_gen(atomic_load(&p->claim)) != seen_gen || atomic_load(&p->stopping);
}

/* The caller's: every chunk of its job finished. */
static bool job_done(qkv_threadpool *p, uint64_t n_chunks)
{
    return atomic_load(&p->finished) == n_chunks;
}

static void *worker_main(void *arg)
{
    qkv_threadpool *p = arg;
    uint64_t seen = 0;
    for (;;) {
        if (!spin_until(p, new_job, seen)) {
            pthread_mutex_lock(&p->lock);
            atomic_fetch_add(&p->sleepers, 1);
            while (!new_job(p, seen))
                pthread_cond_wait(&p->work_ready, &p->lock);
            atomic_fetch_sub(&p->sleepers, 1);
            pthread_mutex_unlock(&p->lock);
        }
        if (atomic_load(&p->stopping))
            break;
        /* Another job may have been published since new_job saw this one:
         * run_chunks claims in whichever job is current, and the next loop
         * waits for a generation after the one it saw here. */
        seen = word_gen(atomic_load(&p->claim));
        if (run_chunks(p) && atomic_load(&p->caller_sleeps)) {
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
    atomic_init(&p->claim, 0);
    atomic_init(&p->stopping, false);
    atomic_init(&p->busy, false);
    atomic_init(&p->sleepers, 0);
    atomic_init(&p->caller_sleeps, false);
    atomic_init(&p->finished, 0);
    atomic_init(&p->fn, NULL);
    atomic_init(&p->arg, NULL);
    atomic_init(&p->n, 0);
    atomic_init(&p->chunk, 0);
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

/* Publishes a job of n_chunks chunks of `chunk` indices over [0, n) and
 * wakes sleeping workers. */
static void publish(qkv_threadpool *p, size_t n, size_t chunk, size_t n_chunks, qkv_range_fn fn,
                    void *arg)
{
    atomic_store_explicit(&p->fn, fn, memory_order_relaxed);
    atomic_store_explicit(&p->arg, arg, memory_order_relaxed);
    atomic_store_explicit(&p->n, n, memory_order_relaxed);
    atomic_store_explicit(&p->chunk, chunk, memory_order_relaxed);
    atomic_store_explicit(&p->finished, 0, memory_order_relaxed);
    uint64_t gen = word_gen(atomic_load_explicit(&p->claim, memory_order_relaxed)) + 1;
    /* seq_cst (a release, and ordered before the load of sleepers) */
    atomic_store(&p->claim, claim_word(gen & UINT32_MAX, n_chunks, 0));
    if (atomic_load(&p->sleepers) > 0) {
        pthread_mutex_lock(&p->lock);
        pthread_cond_broadcast(&p->work_ready);
        pthread_mutex_unlock(&p->lock);
    }
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
    size_t want = p->threads * 4 < MAX_CHUNKS ? p->threads * 4 : MAX_CHUNKS;
    size_t chunk = (n + want - 1) / want;
    size_t n_chunks = (n + chunk - 1) / chunk;
    publish(p, n, chunk, n_chunks, fn, arg);

    run_chunks(p);

    if (!spin_until(p, job_done, n_chunks)) {
        pthread_mutex_lock(&p->lock);
        atomic_store(&p->caller_sleeps, true);
        while (!job_done(p, n_chunks))
            pthread_cond_wait(&p->work_done, &p->lock);
        atomic_store(&p->caller_sleeps, false);
        pthread_mutex_unlock(&p->lock);
    }
    atomic_store(&p->busy, false);
}

size_t qkv_threadpool_size(const qkv_threadpool *p) { return p ? p->threads : 1; }
