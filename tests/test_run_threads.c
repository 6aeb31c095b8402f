/*
 * One session shared by several threads, each with its own context and its
 * own input shapes: every run must give the single-threaded answer.
 */
#include <criterion/criterion.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>

#include "loader.h"
#include "qkv.h"
#include "test_util.h"

#define RTOL 1e-4f
#define ATOL 1e-5f
#define THREADS 4
#define ROUNDS 50

typedef struct job {
    qkv_session *s;
    const char *cas; /* which reference case this thread runs */
    int failures;
    char message[QKV_ERROR_MESSAGE_BYTES];
} job;

static int close_enough(const qkv_tensor *a, const qkv_tensor *e)
{
    if (!a || a->rank != e->rank || a->data_bytes != e->data_bytes)
        return 0;
    const float *x = a->data, *y = e->data;
    for (size_t i = 0; i < e->data_bytes / sizeof(float); i++)
        if (!(x[i] - y[i] <= ATOL + RTOL * (y[i] < 0 ? -y[i] : y[i]) &&
              y[i] - x[i] <= ATOL + RTOL * (y[i] < 0 ? -y[i] : y[i])))
            return 0;
    return 1;
}

static void *worker(void *arg)
{
    job *j = arg;
    /* Paths built here, not with tu_data(): its rotating static buffers are
     * not for concurrent callers. */
    char in[1024], out[1024];
    snprintf(in, sizeof in, "%s/exec/mlp_%s_input_0.pb", QKV_TEST_DATA, j->cas);
    snprintf(out, sizeof out, "%s/exec/mlp_%s_output_0.pb", QKV_TEST_DATA, j->cas);
    qkv_tensor x, want;
    tu_read_pb(in, &x);
    tu_read_pb(out, &want);
    qkv_context *c = NULL;
    qkv_error err;
    if (qkv_context_create(j->s, &c, &err) != QKV_OK) {
        j->failures++;
        snprintf(j->message, sizeof j->message, "%s", err.message);
    }
    for (int r = 0; c && r < ROUNDS; r++) {
        if (qkv_run(c, &x, 1, &err) != QKV_OK) {
            j->failures++;
            snprintf(j->message, sizeof j->message, "%s", err.message);
        } else if (!close_enough(qkv_context_output(c, 0), &want)) {
            j->failures++;
            snprintf(j->message, sizeof j->message, "round %d: wrong output", r);
        }
    }
    qkv_context_destroy(c);
    qkv_tensor_data_free(&x);
    qkv_tensor_data_free(&want);
    return NULL;
}

static void run_threads(size_t session_threads)
{
    qkv_session_options opts;
    qkv_session_options_init(&opts);
    opts.threads = session_threads;
    qkv_session *s;
    qkv_error err;
    cr_assert_eq(qkv_session_create(tu_data("exec/mlp.onnx"), &opts, &s, &err), QKV_OK, "%s",
                 err.message);
    pthread_t t[THREADS];
    job jobs[THREADS];
    for (int i = 0; i < THREADS; i++) {
        memset(&jobs[i], 0, sizeof jobs[i]);
        jobs[i].s = s;
        jobs[i].cas = i % 2 ? "b5" : "b1";
        cr_assert_eq(pthread_create(&t[i], NULL, worker, &jobs[i]), 0);
    }
    for (int i = 0; i < THREADS; i++) {
        pthread_join(t[i], NULL);
        cr_expect_eq(jobs[i].failures, 0, "thread %d: %s", i, jobs[i].message);
    }
    qkv_session_destroy(s);
}

Test(run_threads, shared_session_gives_same_results_on_every_thread) { run_threads(1); }

Test(run_threads, shared_session_with_pooled_contexts) { run_threads(2); }
