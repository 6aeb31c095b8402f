/*
 * test_cancel.c - qkv_context_cancel: a watchdog thread stops a run that
 * would not end by itself (a Loop of INT64_MAX iterations), a request made
 * between runs stops the next run before its first node, and either way
 * the context runs correctly afterwards.
 */
#include <criterion/criterion.h>
#include <pthread.h>
#include <stdint.h>
#include <string.h>
#include <time.h>

#include "qkv.h"
#include "test_util.h"

typedef struct loop_inputs {
    int64_t m;
    float x0[4];
    qkv_tensor t[2];
} loop_inputs;

static void loop_inputs_init(loop_inputs *in, int64_t m)
{
    *in = (loop_inputs){.m = m, .x0 = {0, 1, 100, -7}};
    in->t[0] = (qkv_tensor){
        .dtype = QKV_DTYPE_INT64, .rank = 0, .data = &in->m, .data_bytes = sizeof in->m};
    in->t[1] = (qkv_tensor){.dtype = QKV_DTYPE_FLOAT,
                            .rank = 1,
                            .dims = {4},
                            .data = in->x0,
                            .data_bytes = sizeof in->x0};
}

/* Runs loop_m for m iterations on c and checks x = 0.5 x + 1, m times. */
static void expect_loop_result(qkv_context *c, int64_t m)
{
    loop_inputs in;
    loop_inputs_init(&in, m);
    qkv_error err;
    cr_assert_eq(qkv_run(c, in.t, 2, &err), QKV_OK, "%s", err.message);
    const qkv_tensor *x = qkv_context_output(c, 0);
    cr_assert_eq(x->rank, 1);
    cr_assert_eq(x->dims[0], 4);
    for (int i = 0; i < 4; i++) {
        float want = in.x0[i];
        for (int64_t k = 0; k < m; k++)
            want = want * 0.5f + 1.0f;
        cr_assert_float_eq(((const float *)x->data)[i], want, 1e-6f, "x[%d]", i);
    }
}

typedef struct watchdog {
    qkv_context *ctx;
    long delay_ms;
} watchdog;

static void *cancel_after(void *arg)
{
    const watchdog *w = arg;
    struct timespec d = {w->delay_ms / 1000, (w->delay_ms % 1000) * 1000000L};
    nanosleep(&d, NULL);
    qkv_context_cancel(w->ctx);
    return NULL;
}

static double now_s(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + (double)t.tv_nsec * 1e-9;
}

static qkv_session *open_loop_m(void)
{
    qkv_session *s = NULL;
    qkv_error err;
    cr_assert_eq(qkv_session_create(tu_data("control_flow/loop_m.onnx"), NULL, &s, &err), QKV_OK,
                 "%s", err.message);
    return s;
}

Test(cancel, a_watchdog_stops_an_endless_loop_and_the_context_runs_on)
{
    qkv_session *s = open_loop_m();
    qkv_context *c = NULL;
    qkv_error err;
    cr_assert_eq(qkv_context_create(s, &c, &err), QKV_OK, "%s", err.message);
    expect_loop_result(c, 3); /* planned and warm before the endless run */

    loop_inputs in;
    loop_inputs_init(&in, INT64_MAX);
    watchdog w = {c, 50};
    pthread_t th;
    cr_assert_eq(pthread_create(&th, NULL, cancel_after, &w), 0);
    double t0 = now_s();
    qkv_status st = qkv_run(c, in.t, 2, &err);
    double took = now_s() - t0;
    pthread_join(th, NULL);
    cr_assert_eq(st, QKV_ERR_CANCELLED, "status %d: %s", (int)st, err.message);
    cr_assert_eq(err.status, QKV_ERR_CANCELLED);
    cr_assert(strstr(err.message, "cancelled"), "%s", err.message);
    /* it stopped inside the loop: in the body's nodes or before a body run */
    cr_assert(strstr(err.message, "mul") || strstr(err.message, "add") ||
                  strstr(err.message, "keep") || strstr(err.message, "loop"),
              "%s", err.message);
    /* stopped promptly: ~50 ms, generous for a loaded machine or valgrind */
    cr_assert_lt(took, 30.0, "the cancelled run took %.1f s", took);

    expect_loop_result(c, 10); /* the request was consumed */
    expect_loop_result(c, 0);
    qkv_context_destroy(c);
    qkv_session_destroy(s);
}

Test(cancel, a_request_between_runs_stops_the_next_run_before_its_first_node)
{
    qkv_session *s = open_loop_m();
    qkv_context *c = NULL;
    qkv_error err;
    cr_assert_eq(qkv_context_create(s, &c, &err), QKV_OK, "%s", err.message);
    qkv_context_cancel(c);
    qkv_context_cancel(c); /* requests do not queue: one stops one run */
    loop_inputs in;
    loop_inputs_init(&in, 5);
    cr_assert_eq(qkv_run(c, in.t, 2, &err), QKV_ERR_CANCELLED);
    cr_assert(strstr(err.message, "before node 'loop' (Loop"), "%s", err.message);
    expect_loop_result(c, 5);
    expect_loop_result(c, 5);
    qkv_context_destroy(c);
    qkv_session_destroy(s);
}

Test(cancel, other_contexts_of_the_session_are_not_cancelled)
{
    qkv_session *s = open_loop_m();
    qkv_context *a = NULL, *b = NULL;
    qkv_error err;
    cr_assert_eq(qkv_context_create(s, &a, &err), QKV_OK, "%s", err.message);
    cr_assert_eq(qkv_context_create(s, &b, &err), QKV_OK, "%s", err.message);
    qkv_context_cancel(a);
    expect_loop_result(b, 4);
    loop_inputs in;
    loop_inputs_init(&in, 4);
    cr_assert_eq(qkv_run(a, in.t, 2, &err), QKV_ERR_CANCELLED, "%s", err.message);
    qkv_context_destroy(a);
    qkv_context_destroy(b);
    qkv_session_destroy(s);
}

Test(cancel, null_context_and_status_string)
{
    qkv_context_cancel(NULL); /* ignored */
    cr_assert_str_eq(qkv_status_string(QKV_ERR_CANCELLED), "cancelled");
}
