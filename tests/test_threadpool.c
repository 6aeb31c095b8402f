/*
 * The thread pool (runtime/exec/threadpool.c): every index of every job is
 * run exactly once, with more pool threads than cores, with the machine
 * busy, with a worker stopped between jobs (the caller must not wait for
 * it), and with parallel_for called from inside a chunk.
 */
#include <criterion/criterion.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <string.h>
#include <unistd.h>

#include "threadpool.h"

#define MAX_N 512

/* One job's record: how often each index ran, and which threads ran one. */
typedef struct job {
    atomic_int hits[MAX_N];
    pthread_t caller;
    atomic_bool worker_ran;
    _Atomic(pthread_t *) worker_id; /* when set, a worker stores its id here */
    atomic_bool worker_id_set;
} job;

static void count_range(void *arg, size_t begin, size_t end)
{
    job *j = arg;
    for (size_t i = begin; i < end; i++)
        atomic_fetch_add(&j->hits[i], 1);
    if (!pthread_equal(pthread_self(), j->caller)) {
        atomic_store(&j->worker_ran, true);
        pthread_t *id = atomic_load(&j->worker_id);
        if (id && !atomic_exchange(&j->worker_id_set, true))
            *id = pthread_self();
    }
}

static void job_reset(job *j)
{
    for (size_t i = 0; i < MAX_N; i++)
        atomic_init(&j->hits[i], 0);
    j->caller = pthread_self();
    atomic_init(&j->worker_ran, false);
    atomic_init(&j->worker_id, NULL);
    atomic_init(&j->worker_id_set, false);
}

/* Runs `jobs` jobs of sizes 1..MAX_N on the pool, each with its record on
 * this stack frame, and checks each index ran once; returns how many jobs
 * a worker took part in. */
static size_t run_jobs_checking_each_index(qkv_threadpool *pool, size_t jobs)
{
    size_t with_worker = 0;
    for (size_t k = 0; k < jobs; k++) {
        job j;
        job_reset(&j);
        size_t n = 1 + (k * 37) % MAX_N;
        qkv_threadpool_run(pool, n, count_range, &j);
        for (size_t i = 0; i < MAX_N; i++) {
            int want = i < n ? 1 : 0;
            int got = atomic_load(&j.hits[i]);
            if (got != want)
                cr_assert_fail("job %zu (n %zu): index %zu ran %d times, expected %d", k, n, i, got,
                               want);
        }
        with_worker += atomic_load(&j.worker_ran);
    }
    return with_worker;
}

Test(threadpool, runs_each_index_once_per_job, .timeout = 120)
{
    for (size_t threads = 1; threads <= 4; threads++) {
        qkv_threadpool *pool = qkv_threadpool_create(threads);
        cr_assert_not_null(pool);
        cr_assert_eq(qkv_threadpool_size(pool), threads);
        run_jobs_checking_each_index(pool, 2000);
        qkv_threadpool_destroy(pool);
    }
}

Test(threadpool, null_pool_and_empty_range_run_inline, .timeout = 120)
{
    job j;
    job_reset(&j);
    qkv_threadpool_run(NULL, 5, count_range, &j);
    qkv_threadpool_run(NULL, 0, count_range, &j); /* no call at all */
    for (size_t i = 0; i < MAX_N; i++)
        cr_assert_eq(atomic_load(&j.hits[i]), i < 5 ? 1 : 0);
    cr_assert_not(atomic_load(&j.worker_ran));
    cr_assert_eq(qkv_threadpool_size(NULL), 1);
    qkv_threadpool_destroy(NULL);
}

/* More pool threads than the machine has cores: workers are descheduled at
 * any point, including between reading a job and claiming a chunk. */
Test(threadpool, many_tiny_jobs_with_more_threads_than_cores, .timeout = 120)
{
    long cores = sysconf(_SC_NPROCESSORS_ONLN);
    size_t threads = (size_t)(cores > 0 ? cores : 2) * 4;
    qkv_threadpool *pool = qkv_threadpool_create(threads);
    cr_assert_not_null(pool);
    run_jobs_checking_each_index(pool, 5000);
    qkv_threadpool_destroy(pool);
}

/* The application keeps every core busy on its own threads meanwhile. */
static atomic_bool spinners_stop;
static void *spin_app_thread(void *arg)
{
    (void)arg;
    volatile unsigned long x = 0;
    while (!atomic_load_explicit(&spinners_stop, memory_order_relaxed))
        x = x + 1;
    return NULL;
}

Test(threadpool, jobs_finish_while_the_application_keeps_cores_busy, .timeout = 120)
{
    long cores = sysconf(_SC_NPROCESSORS_ONLN);
    size_t busy = (size_t)(cores > 0 ? cores : 2);
    pthread_t app[64];
    if (busy > 64)
        busy = 64;
    atomic_store(&spinners_stop, false);
    for (size_t i = 0; i < busy; i++)
        cr_assert_eq(pthread_create(&app[i], NULL, spin_app_thread, NULL), 0);
    qkv_threadpool *pool = qkv_threadpool_create(2);
    cr_assert_not_null(pool);
    run_jobs_checking_each_index(pool, 2000);
    qkv_threadpool_destroy(pool);
    atomic_store(&spinners_stop, true);
    for (size_t i = 0; i < busy; i++)
        pthread_join(app[i], NULL);
}

/* A worker stopped between jobs: SIGUSR1 sent to it runs a handler that
 * blocks on a pipe until the test writes to it. */
static int park_pipe[2];
static atomic_bool parked;
static void park_handler(int sig)
{
    (void)sig;
    atomic_store(&parked, true);
    char c;
    while (read(park_pipe[0], &c, 1) < 0) {
    }
    atomic_store(&parked, false);
}

Test(threadpool, caller_does_not_wait_for_a_stopped_worker, .timeout = 120)
{
    cr_assert_eq(pipe(park_pipe), 0);
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = park_handler;
    sigemptyset(&sa.sa_mask);
    cr_assert_eq(sigaction(SIGUSR1, &sa, NULL), 0);
    qkv_threadpool *pool = qkv_threadpool_create(2);
    cr_assert_not_null(pool);

    /* Find the worker's thread: run jobs until it takes a chunk. */
    pthread_t worker;
    bool found = false;
    for (int tries = 0; tries < 100000 && !found; tries++) {
        job j;
        job_reset(&j);
        atomic_store(&j.worker_id, &worker);
        qkv_threadpool_run(pool, MAX_N, count_range, &j);
        found = atomic_load(&j.worker_id_set);
    }
    cr_assert(found, "the worker never took a chunk");

    /* Park it between jobs (no chunk of a job is claimed then), then run
     * jobs: with the worker parked, only the caller can run them. It is
     * almost surely spinning for the next job; parked in the few
     * instructions where it holds the pool's lock on its way to sleep, it
     * would block the caller's wake-up (a hang that .timeout reports). */
    cr_assert_eq(pthread_kill(worker, SIGUSR1), 0);
    while (!atomic_load(&parked))
        sched_yield();
    size_t with_worker = run_jobs_checking_each_index(pool, 2000);
    cr_assert_eq(with_worker, 0, "a parked worker ran chunks of %zu jobs", with_worker);

    /* Released, it finds the current state and takes part again. */
    cr_assert_eq(write(park_pipe[1], "x", 1), 1);
    while (atomic_load(&parked))
        sched_yield();
    run_jobs_checking_each_index(pool, 2000);
    qkv_threadpool_destroy(pool);
    close(park_pipe[0]);
    close(park_pipe[1]);
}

/* parallel_for from inside a chunk runs inline on that thread. */
typedef struct nested {
    qkv_threadpool *pool;
    job inner[8];
} nested;

static void nested_range(void *arg, size_t begin, size_t end)
{
    nested *s = arg;
    for (size_t i = begin; i < end; i++) {
        s->inner[i].caller = pthread_self();
        qkv_threadpool_run(s->pool, 100, count_range, &s->inner[i]);
    }
}

Test(threadpool, nested_parallel_for_runs_inline, .timeout = 120)
{
    qkv_threadpool *pool = qkv_threadpool_create(3);
    cr_assert_not_null(pool);
    for (int round = 0; round < 200; round++) {
        nested s = {.pool = pool};
        for (size_t k = 0; k < 8; k++)
            job_reset(&s.inner[k]);
        qkv_threadpool_run(pool, 8, nested_range, &s);
        for (size_t k = 0; k < 8; k++) {
            cr_assert_not(atomic_load(&s.inner[k].worker_ran),
                          "inner job %zu ran on another thread than its caller", k);
            for (size_t i = 0; i < MAX_N; i++)
                cr_assert_eq(atomic_load(&s.inner[k].hits[i]), i < 100 ? 1 : 0);
        }
    }
    qkv_threadpool_destroy(pool);
}
