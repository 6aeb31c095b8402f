/*
 * If, Loop and Scan (runtime/exec/control_flow.h) on models written by
 * tests/data/make_control_flow_models.py, whose expected outputs numpy
 * computed: branches of different shapes, nesting, outer-scope reads,
 * zero trips, scan axes and directions, Scan-8 batches, runs from two
 * threads, and every error path with its message.
 */
#include <criterion/criterion.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>

#include "loader.h"
#include "qkv.h"
#include "test_util.h"

#define MAX_IO 4

static qkv_session *open_model(const char *name, size_t memory_limit)
{
    char rel[256];
    snprintf(rel, sizeof rel, "control_flow/%s.onnx", name);
    qkv_session_options opts;
    qkv_session_options_init(&opts);
    opts.memory_limit = memory_limit;
    qkv_session *s = NULL;
    qkv_error err;
    cr_assert_eq(qkv_session_create(tu_data(rel), &opts, &s, &err), QKV_OK, "%s: %s", name,
                 err.message);
    return s;
}

static void read_case(const char *model, const char *cas, const char *kind, size_t n, qkv_tensor *t)
{
    for (size_t i = 0; i < n; i++) {
        char rel[256];
        snprintf(rel, sizeof rel, "control_flow/%s_%s_%s_%zu.pb", model, cas, kind, i);
        tu_read_pb(tu_data(rel), &t[i]);
    }
}

static void free_all(qkv_tensor *t, size_t n)
{
    for (size_t i = 0; i < n; i++)
        qkv_tensor_data_free(&t[i]);
}

/* Runs case `cas` of `model` (n_in inputs) on context c and checks its
 * n_out float outputs against numpy's. */
static void check_case_on(qkv_context *c, const char *model, const char *cas, size_t n_in,
                          size_t n_out)
{
    qkv_tensor in[MAX_IO], want[MAX_IO];
    read_case(model, cas, "input", n_in, in);
    read_case(model, cas, "output", n_out, want);
    qkv_error err;
    cr_assert_eq(qkv_run(c, in, n_in, &err), QKV_OK, "%s %s: %s", model, cas, err.message);
    for (size_t i = 0; i < n_out; i++)
        /* float sums of a few terms in the same order as numpy: 1e-6 */
        tu_assert_close(qkv_context_output(c, i), &want[i], 1e-6f, 1e-6f);
    free_all(in, n_in);
    free_all(want, n_out);
}

static void check_case(const char *model, const char *cas, size_t n_in, size_t n_out)
{
    qkv_session *s = open_model(model, 0);
    qkv_context *c;
    qkv_error err;
    cr_assert_eq(qkv_context_create(s, &c, &err), QKV_OK, "%s", err.message);
    check_case_on(c, model, cas, n_in, n_out);
    /* a second run reuses the plans of the bodies */
    check_case_on(c, model, cas, n_in, n_out);
    qkv_context_destroy(c);
    qkv_session_destroy(s);
}

Test(control_flow, if_branches_of_different_shapes)
{
    check_case("if_shapes", "then", 2, 1);
    check_case("if_shapes", "else", 2, 1);
}

Test(control_flow, if_switches_branch_between_runs_on_one_context)
{
    qkv_session *s = open_model("if_shapes", 0);
    qkv_context *c;
    qkv_error err;
    cr_assert_eq(qkv_context_create(s, &c, &err), QKV_OK);
    for (int r = 0; r < 3; r++) {
        check_case_on(c, "if_shapes", "then", 2, 1);
        check_case_on(c, "if_shapes", "else", 2, 1);
    }
    qkv_context_destroy(c);
    qkv_session_destroy(s);
}

Test(control_flow, loop_with_scan_output_and_outer_scope_read)
{
    check_case("loop_scan", "m5", 3, 2);
}

Test(control_flow, loop_with_zero_trips_keeps_initial_values)
{
    check_case("loop_scan", "m0", 3, 2);
    qkv_session *s = open_model("loop_scan", 0);
    qkv_context *c;
    qkv_error err;
    cr_assert_eq(qkv_context_create(s, &c, &err), QKV_OK);
    check_case_on(c, "loop_scan", "m0", 3, 2);
    const qkv_tensor *scans = qkv_context_output(c, 1);
    cr_assert_eq(scans->rank, 2, "an empty scan output keeps the rank: [0, 2]");
    cr_assert_eq(scans->dims[0], 0);
    cr_assert_eq(scans->dims[1], 2);
    qkv_context_destroy(c);
    qkv_session_destroy(s);
}

Test(control_flow, if_nested_in_loop_and_body_cond_stops_it)
{
    check_case("loop_if", "limit5", 3, 1);
    check_case("loop_if", "limit1", 3, 1);
}

Test(control_flow, loop_of_1000_iterations) { check_case("loop_1000", "a", 1, 1); }

Test(control_flow, scan_forward_and_reverse_on_axes) { check_case("scan_axes", "n3", 3, 3); }

Test(control_flow, scan_of_empty_sequence) { check_case("scan_axes", "n0", 3, 3); }

Test(control_flow, scan8_with_batch_and_sequence_lens) { check_case("scan8_batch", "a", 3, 2); }

Test(control_flow, four_levels_of_nesting_read_the_main_graph)
{
    check_case("nest4", "then", 2, 1);
    check_case("nest4", "else", 2, 1);
}

Test(control_flow, folding_and_fusion_keep_values_bodies_read)
{
    /* erf differs from numpy's by a few ulp */
    qkv_session *s = open_model("passes_outer", 0);
    qkv_context *c;
    qkv_error err;
    cr_assert_eq(qkv_context_create(s, &c, &err), QKV_OK);
    const char *cases[] = {"then", "else"};
    for (int i = 0; i < 2; i++) {
        qkv_tensor in[2], want;
        read_case("passes_outer", cases[i], "input", 2, in);
        read_case("passes_outer", cases[i], "output", 1, &want);
        cr_assert_eq(qkv_run(c, in, 2, &err), QKV_OK, "%s", err.message);
        tu_assert_close(qkv_context_output(c, 0), &want, 1e-5f, 1e-6f);
        free_all(in, 2);
        free_all(&want, 1);
    }
    qkv_context_destroy(c);
    qkv_session_destroy(s);
}

/* ---- two threads on one session -------------------------------------------- */

typedef struct job {
    qkv_session *s;
    const char *cas;
    int failures;
    char message[QKV_ERROR_MESSAGE_BYTES];
} job;

static void *worker(void *arg)
{
    job *j = arg;
    qkv_context *c = NULL;
    qkv_error err;
    char path[512];
    qkv_tensor in[3], want[2];
    for (int i = 0; i < 3; i++) {
        snprintf(path, sizeof path, "%s/control_flow/loop_if_%s_input_%d.pb", QKV_TEST_DATA, j->cas,
                 i);
        tu_read_pb(path, &in[i]);
    }
    snprintf(path, sizeof path, "%s/control_flow/loop_if_%s_output_0.pb", QKV_TEST_DATA, j->cas);
    tu_read_pb(path, &want[0]);
    if (qkv_context_create(j->s, &c, &err) != QKV_OK) {
        j->failures++;
        snprintf(j->message, sizeof j->message, "%s", err.message);
    }
    for (int r = 0; c && r < 200; r++) {
        if (qkv_run(c, in, 3, &err) != QKV_OK) {
            j->failures++;
            snprintf(j->message, sizeof j->message, "%s", err.message);
            continue;
        }
        const qkv_tensor *got = qkv_context_output(c, 0);
        if (!got || got->data_bytes != want[0].data_bytes ||
            memcmp(got->data, want[0].data, want[0].data_bytes) != 0) {
            j->failures++;
            snprintf(j->message, sizeof j->message, "round %d: wrong output", r);
        }
    }
    qkv_context_destroy(c);
    free_all(in, 3);
    free_all(want, 1);
    return NULL;
}

Test(control_flow, sequence_built_and_read_inside_a_loop_body)
{
    check_case("loop_seq_body", "m3", 2, 1);
}

Test(control_flow, two_threads_share_a_session)
{
    qkv_session *s = open_model("loop_if", 0);
    pthread_t t[2];
    job jobs[2] = {{.s = s, .cas = "limit5"}, {.s = s, .cas = "limit1"}};
    for (int i = 0; i < 2; i++)
        cr_assert_eq(pthread_create(&t[i], NULL, worker, &jobs[i]), 0);
    for (int i = 0; i < 2; i++)
        pthread_join(t[i], NULL);
    for (int i = 0; i < 2; i++)
        cr_expect_eq(jobs[i].failures, 0, "thread %d: %s", i, jobs[i].message);
    qkv_session_destroy(s);
}

/* ---- errors ---------------------------------------------------------------- */

static void expect_create_error(const char *model, qkv_status want, const char *part1,
                                const char *part2)
{
    char rel[256];
    snprintf(rel, sizeof rel, "control_flow/%s.onnx", model);
    qkv_session *s = NULL;
    qkv_error err;
    qkv_status st = qkv_session_create(tu_data(rel), NULL, &s, &err);
    cr_assert_eq(st, want, "%s: status %d: %s", model, st, err.message);
    cr_assert_null(s);
    cr_expect(strstr(err.message, part1), "%s: message: %s", model, err.message);
    cr_expect(strstr(err.message, part2), "%s: message: %s", model, err.message);
}

static void expect_run_error(qkv_session *s, const qkv_tensor *in, size_t n_in, qkv_status want,
                             const char *part1, const char *part2)
{
    qkv_context *c;
    qkv_error err;
    cr_assert_eq(qkv_context_create(s, &c, &err), QKV_OK);
    qkv_status st = qkv_run(c, in, n_in, &err);
    cr_assert_eq(st, want, "status %d: %s", st, err.message);
    cr_expect(strstr(err.message, part1), "message: %s", err.message);
    cr_expect(strstr(err.message, part2), "message: %s", err.message);
    qkv_context_destroy(c);
}

Test(control_flow_errors, if_cond_not_bool)
{
    expect_create_error("if_cond_int", QKV_ERR_TYPE, "'bad_if'", "cond is int64, expected bool");
}

Test(control_flow_errors, if_cond_not_one_element)
{
    qkv_session *s = open_model("if_cond_two", 0);
    unsigned char c[2] = {1, 0};
    float x[2] = {1, 2};
    qkv_tensor in[2] = {
        {.dtype = QKV_DTYPE_BOOL, .rank = 1, .dims = {2}, .data = c, .data_bytes = 2},
        {.dtype = QKV_DTYPE_FLOAT, .rank = 1, .dims = {2}, .data = x, .data_bytes = sizeof x}};
    expect_run_error(s, in, 2, QKV_ERR_SHAPE, "'two_if'", "cond must have one element");
    qkv_session_destroy(s);
}

Test(control_flow_errors, branch_output_dtype_mismatch)
{
    expect_create_error("if_dtype_mismatch", QKV_ERR_TYPE, "'mixed_if'",
                        "then_branch gives float32, else_branch gives int64");
}

Test(control_flow_errors, body_output_count_mismatch)
{
    expect_create_error("loop_body_outputs", QKV_ERR_INVALID_MODEL, "'short_loop'",
                        "the body has 1 outputs, expected 2");
}

Test(control_flow_errors, loop_trip_count_negative)
{
    qkv_session *s = open_model("loop_negative", 0);
    int64_t m = -3;
    float x[2] = {1, 2};
    qkv_tensor in[2] = {
        {.dtype = QKV_DTYPE_INT64, .rank = 0, .data = &m, .data_bytes = 8},
        {.dtype = QKV_DTYPE_FLOAT, .rank = 1, .dims = {2}, .data = x, .data_bytes = sizeof x}};
    expect_run_error(s, in, 2, QKV_ERR_INVALID_ARGUMENT, "'neg_loop'",
                     "the trip count M is -3, expected >= 0");
    qkv_session_destroy(s);
}

Test(control_flow_errors, scan_sequence_length_mismatch)
{
    qkv_session *s = open_model("scan_len_mismatch", 0);
    float s0[2] = {0, 0}, a[6] = {1, 2, 3, 4, 5, 6}, b[4] = {1, 1, 1, 1};
    qkv_tensor in[3] = {
        {.dtype = QKV_DTYPE_FLOAT, .rank = 1, .dims = {2}, .data = s0, .data_bytes = sizeof s0},
        {.dtype = QKV_DTYPE_FLOAT, .rank = 2, .dims = {3, 2}, .data = a, .data_bytes = sizeof a},
        {.dtype = QKV_DTYPE_FLOAT, .rank = 2, .dims = {2, 2}, .data = b, .data_bytes = sizeof b}};
    expect_run_error(s, in, 3, QKV_ERR_SHAPE, "'uneven_scan'", "the sequence lengths differ");
    qkv_session_destroy(s);
}

Test(control_flow_errors, error_in_the_middle_of_a_loop_leaves_the_context_usable)
{
    qkv_session *s = open_model("loop_scan_shape", 0);
    int64_t m = 3;
    qkv_tensor in = {.dtype = QKV_DTYPE_INT64, .rank = 0, .data = &m, .data_bytes = 8};
    qkv_context *c;
    qkv_error err;
    cr_assert_eq(qkv_context_create(s, &c, &err), QKV_OK);
    qkv_status st = qkv_run(c, &in, 1, &err);
    cr_assert_eq(st, QKV_ERR_SHAPE, "%s", err.message);
    cr_expect(strstr(err.message, "'ragged_loop'") &&
                  strstr(err.message, "scan output 0 changes shape at iteration 1"),
              "message: %s", err.message);
    /* one iteration is fine: the same context runs it */
    m = 1;
    cr_assert_eq(qkv_run(c, &in, 1, &err), QKV_OK, "%s", err.message);
    const qkv_tensor *rows = qkv_context_output(c, 0);
    cr_assert_eq(rows->rank, 2);
    cr_assert_eq(rows->dims[0], 1);
    cr_assert_eq(rows->dims[1], 1);
    cr_assert_eq(((const float *)rows->data)[0], 1.0f);
    qkv_context_destroy(c);
    qkv_session_destroy(s);
}

Test(control_flow_errors, nesting_deeper_than_the_loader_allows)
{
    expect_create_error("nest40", QKV_ERR_UNSUPPORTED, "nested more than", "levels deep");
}

Test(control_flow_errors, huge_trip_count_stops_at_the_memory_limit)
{
    qkv_session *s = open_model("loop_scan", 256 << 10);
    int64_t m = (int64_t)1 << 50;
    float s0[2] = {0, 0}, w[2] = {1, 1};
    qkv_tensor in[3] = {
        {.dtype = QKV_DTYPE_INT64, .rank = 0, .data = &m, .data_bytes = 8},
        {.dtype = QKV_DTYPE_FLOAT, .rank = 1, .dims = {2}, .data = s0, .data_bytes = sizeof s0},
        {.dtype = QKV_DTYPE_FLOAT, .rank = 1, .dims = {2}, .data = w, .data_bytes = sizeof w}};
    expect_run_error(s, in, 3, QKV_ERR_OUT_OF_MEMORY, "'loop'", "memory limit");
    qkv_session_destroy(s);
}

/* Scan-8 slices every initial state along its batch axis: a state that is
 * omitted, a scalar, or of another batch is refused, naming the input. */
Test(control_flow_errors, scan8_refuses_an_omitted_initial_state)
{
    expect_create_error("scan8_omitted_state", QKV_ERR_INVALID_MODEL, "'scan8_omitted'",
                        "input 1 (initial state 0) is omitted");
}

Test(control_flow_errors, scan8_refuses_a_scalar_initial_state)
{
    expect_create_error("scan8_scalar_state", QKV_ERR_SHAPE, "'scan8_scalar'",
                        "input 1 (initial state 0) is a scalar");
}

Test(control_flow_errors, scan8_refuses_a_state_without_the_batch_at_run_time)
{
    qkv_session *s = open_model("scan8_any_state", 0);
    float s0[2] = {1, 2}, x[12] = {0};
    qkv_tensor in[2] = {
        {.dtype = QKV_DTYPE_FLOAT, .rank = 0, .data = s0, .data_bytes = sizeof(float)},
        {.dtype = QKV_DTYPE_FLOAT,
         .rank = 3,
         .dims = {2, 3, 2},
         .data = x,
         .data_bytes = sizeof x}};
    expect_run_error(s, in, 2, QKV_ERR_SHAPE, "'scan8_any'", "input 1 (initial state 0)");
    /* batch 1 where the scan input has 2: slicing batch element 1 would read past s0 */
    in[0] = (qkv_tensor){
        .dtype = QKV_DTYPE_FLOAT, .rank = 2, .dims = {1, 2}, .data = s0, .data_bytes = sizeof s0};
    expect_run_error(s, in, 2, QKV_ERR_SHAPE, "'scan8_any'",
                     "input 1 (initial state 0) has batch 1, the scan inputs 2");
    qkv_session_destroy(s);
}
