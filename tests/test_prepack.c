/*
 * Constant weights packed once per session (qkv_kernel.prepack): results
 * against numpy, the originals released only when nothing else reads them,
 * the packed copy shared by contexts running at once, and freed with the
 * session (this binary also runs under valgrind: tests/CMakeLists.txt).
 */
#include <criterion/criterion.h>
#include <math.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>

#include "loader.h"
#include "qkv.h"
#include "test_util.h"

/* float32 GEMMs of up to 300 products against numpy's float64 reference */
#define RTOL 1e-4f
#define ATOL 1e-4f

static qkv_session *open_cpu_session(const char *rel, size_t threads)
{
    qkv_session_options opts;
    qkv_session_options_init(&opts);
    opts.threads = threads;
    opts.backends = "cpu"; /* the built-in kernels, whatever plugins are around */
    qkv_session *s = NULL;
    qkv_error err;
    cr_assert_eq(qkv_session_create(tu_data(rel), &opts, &s, &err), QKV_OK, "%s: %s", rel,
                 err.message);
    return s;
}

static void run_linear_case(qkv_context *c, const char *cas)
{
    char in[128], out[128];
    snprintf(in, sizeof in, "exec/linear_stack_%s_input_0.pb", cas);
    snprintf(out, sizeof out, "exec/linear_stack_%s_output_0.pb", cas);
    qkv_tensor x, want;
    tu_read_pb(tu_data(in), &x);
    tu_read_pb(tu_data(out), &want);
    qkv_error err;
    cr_assert_eq(qkv_run(c, &x, 1, &err), QKV_OK, "%s", err.message);
    tu_assert_close(qkv_context_output(c, 0), &want, RTOL, ATOL);
    qkv_tensor_data_free(&x);
    qkv_tensor_data_free(&want);
}

Test(prepack, packs_every_weight_and_releases_the_originals)
{
    for (size_t threads = 1; threads <= 2; threads++) {
        qkv_session *s = open_cpu_session("exec/linear_stack.onnx", threads);
        size_t released = 0;
        size_t packed = qkv_session_packed_bytes(s, &released);
        /* w0 (70x40), w1 (70x300), w2 (300x33) in float32; b0 is read by Gemm as is */
        cr_assert_eq(released, (70 * 40 + 70 * 300 + 300 * 33) * sizeof(float));
        /* panels pad n to the micro-kernel's width: at least the originals */
        cr_assert_geq(packed, released);
        qkv_context *c = NULL;
        qkv_error err;
        cr_assert_eq(qkv_context_create(s, &c, &err), QKV_OK, "%s", err.message);
        run_linear_case(c, "b1");
        run_linear_case(c, "b7");
        run_linear_case(c, "b100");
        run_linear_case(c, "b1");
        qkv_context_destroy(c);
        qkv_session_destroy(s);
    }
}

Test(prepack, keeps_an_original_another_node_reads)
{
    qkv_session *s = open_cpu_session("exec/tied_weight.onnx", 1);
    size_t released = 1;
    cr_assert_gt(qkv_session_packed_bytes(s, &released), 0);
    cr_assert_eq(released, 0, "Gather reads w: it must not be released");
    qkv_tensor in[2], want[2];
    tu_read_pb(tu_data("exec/tied_weight_a_input_0.pb"), &in[0]);
    tu_read_pb(tu_data("exec/tied_weight_a_input_1.pb"), &in[1]);
    tu_read_pb(tu_data("exec/tied_weight_a_output_0.pb"), &want[0]);
    tu_read_pb(tu_data("exec/tied_weight_a_output_1.pb"), &want[1]);
    qkv_context *c = NULL;
    qkv_error err;
    cr_assert_eq(qkv_context_create(s, &c, &err), QKV_OK, "%s", err.message);
    cr_assert_eq(qkv_run(c, in, 2, &err), QKV_OK, "%s", err.message);
    tu_assert_close(qkv_context_output(c, 0), &want[0], RTOL, ATOL);
    tu_assert_close(qkv_context_output(c, 1), &want[1], 0, 0);
    for (int i = 0; i < 2; i++) {
        qkv_tensor_data_free(&in[i]);
        qkv_tensor_data_free(&want[i]);
    }
    qkv_context_destroy(c);
    qkv_session_destroy(s);
}

/* What each thread runs: inputs and references read once by the main
 * thread (tu_data's buffers are not for concurrent use). */
typedef struct thread_job {
    qkv_session *s;
    const qkv_tensor *x, *want; /* 2 cases each */
    int failures;               /* runs that failed or differed */
} thread_job;

static bool close_enough(const qkv_tensor *got, const qkv_tensor *want)
{
    size_t n = want->data_bytes / sizeof(float);
    if (!got || got->data_bytes != want->data_bytes)
        return false;
    const float *g = got->data, *w = want->data;
    for (size_t i = 0; i < n; i++)
        if (!(fabsf(g[i] - w[i]) <= ATOL + RTOL * fabsf(w[i])))
            return false;
    return true;
}

static void *run_in_thread(void *arg)
{
    thread_job *job = arg;
    qkv_context *c = NULL;
    qkv_error err;
    if (qkv_context_create(job->s, &c, &err) != QKV_OK) {
        job->failures = -1;
        return NULL;
    }
    for (int i = 0; i < 20; i++) {
        if (qkv_run(c, &job->x[i % 2], 1, &err) != QKV_OK ||
            !close_enough(qkv_context_output(c, 0), &job->want[i % 2]))
            job->failures++;
    }
    qkv_context_destroy(c);
    return NULL;
}

Test(prepack, contexts_on_several_threads_share_the_packed_weights)
{
    qkv_session *s = open_cpu_session("exec/linear_stack.onnx", 2);
    qkv_tensor x[2], want[2];
    tu_read_pb(tu_data("exec/linear_stack_b7_input_0.pb"), &x[0]);
    tu_read_pb(tu_data("exec/linear_stack_b7_output_0.pb"), &want[0]);
    tu_read_pb(tu_data("exec/linear_stack_b100_input_0.pb"), &x[1]);
    tu_read_pb(tu_data("exec/linear_stack_b100_output_0.pb"), &want[1]);
    pthread_t t[3];
    thread_job jobs[3];
    for (int i = 0; i < 3; i++) {
        jobs[i] = (thread_job){.s = s, .x = x, .want = want};
        cr_assert_eq(pthread_create(&t[i], NULL, run_in_thread, &jobs[i]), 0);
    }
    for (int i = 0; i < 3; i++) {
        pthread_join(t[i], NULL);
        cr_assert_eq(jobs[i].failures, 0, "thread %d: %d of 20 runs failed or differed", i,
                     jobs[i].failures);
    }
    for (int i = 0; i < 2; i++) {
        qkv_tensor_data_free(&x[i]);
        qkv_tensor_data_free(&want[i]);
    }
    qkv_session_destroy(s);
}

Test(prepack, nothing_packed_without_constant_weights)
{
    /* the MLP's weights are packed, but an unfolded graph of runtime inputs
     * only would pack nothing: check a model whose MatMul reads two inputs */
    qkv_session *s = open_cpu_session("exec/mlp.onnx", 1);
    size_t released = 0;
    size_t packed = qkv_session_packed_bytes(s, &released);
    cr_assert_eq(released, (8 * 16 + 16 * 4) * sizeof(float));
    cr_assert_geq(packed, released);
    qkv_session_destroy(s);
    cr_assert_eq(qkv_session_packed_bytes(NULL, &released), 0);
    cr_assert_eq(released, 0);
}
