/*
 * Sessions and runs: results against numpy references, plans reused per
 * shape, views and planned shape subgraphs, dynamic nodes, and every input
 * check of qkv_run.
 */
#include <criterion/criterion.h>
#include <stdio.h>
#include <string.h>

#include "loader.h"
#include "qkv.h"
#include "test_util.h"

/* float32 MatMul/Softmax against numpy's float64-accumulated reference:
 * a few ulps of a sum of 16 products. */
#define RTOL 1e-4f
#define ATOL 1e-5f

static qkv_session *open_session(const char *rel, size_t threads)
{
    qkv_session_options opts;
    qkv_session_options_init(&opts);
    opts.threads = threads;
    qkv_session *s = NULL;
    qkv_error err;
    qkv_status st = qkv_session_create(tu_data(rel), &opts, &s, &err);
    cr_assert_eq(st, QKV_OK, "%s: %s", rel, err.message);
    return s;
}

static void run_case(qkv_context *c, const char *model, const char *cas)
{
    char in[256], out[256];
    snprintf(in, sizeof in, "exec/%s_%s_input_0.pb", model, cas);
    snprintf(out, sizeof out, "exec/%s_%s_output_0.pb", model, cas);
    qkv_tensor x, want;
    tu_read_pb(tu_data(in), &x);
    tu_read_pb(tu_data(out), &want);
    qkv_error err;
    cr_assert_eq(qkv_run(c, &x, 1, &err), QKV_OK, "%s", err.message);
    tu_assert_close(qkv_context_output(c, 0), &want, RTOL, ATOL);
    qkv_tensor_data_free(&x);
    qkv_tensor_data_free(&want);
}

Test(session, runs_mlp_at_two_batch_sizes)
{
    qkv_session *s = open_session("exec/mlp.onnx", 1);
    qkv_context *c;
    cr_assert_eq(qkv_context_create(s, &c, NULL), QKV_OK);
    run_case(c, "mlp", "b1");
    run_case(c, "mlp", "b5");
    run_case(c, "mlp", "b1");
    qkv_context_destroy(c);
    qkv_session_destroy(s);
}

Test(session, runs_mlp_with_two_threads)
{
    qkv_session *s = open_session("exec/mlp.onnx", 2);
    qkv_context *c;
    cr_assert_eq(qkv_context_create(s, &c, NULL), QKV_OK);
    run_case(c, "mlp", "b5");
    qkv_context_destroy(c);
    qkv_session_destroy(s);
}

Test(session, evaluates_shape_subgraph_while_planning)
{
    qkv_session *s = open_session("exec/shape_chain.onnx", 1);
    qkv_context *c;
    cr_assert_eq(qkv_context_create(s, &c, NULL), QKV_OK);
    run_case(c, "shape_chain", "a");
    run_case(c, "shape_chain", "b");
    qkv_plan_stats st = {.struct_size = sizeof(qkv_plan_stats)};
    cr_assert_eq(qkv_context_plan_stats(c, &st), QKV_OK);
    /* Shape, 2 Gathers, 2 Unsqueezes, Concat are computed while planning;
     * Reshape is a view; Transpose and Relu run (Relu in place). */
    cr_assert_eq(st.planned_values, 6, "planned %zu", st.planned_values);
    cr_assert_eq(st.views, 1);
    cr_assert_eq(st.steps, 2, "steps %zu", st.steps);
    cr_assert_eq(st.in_place, 1);
    cr_assert_eq(st.dynamic_nodes, 0);
    qkv_context_destroy(c);
    qkv_session_destroy(s);
}

Test(session, plans_mlp_within_bound)
{
    qkv_session *s = open_session("exec/mlp.onnx", 1);
    qkv_context *c;
    cr_assert_eq(qkv_context_create(s, &c, NULL), QKV_OK);
    qkv_tensor x = {.dtype = QKV_DTYPE_FLOAT, .rank = 2, .dims = {64, 8}};
    qkv_plan_stats st = {.struct_size = sizeof(qkv_plan_stats)};
    qkv_error err;
    cr_assert_eq(qkv_plan(c, &x, 1, &st, &err), QKV_OK, "%s", err.message);
    cr_assert(st.arena_bytes >= st.lower_bound_bytes);
    cr_assert(st.arena_bytes * 10 <= st.lower_bound_bytes * 11, "arena %zu, bound %zu",
              st.arena_bytes, st.lower_bound_bytes);
    qkv_context_destroy(c);
    qkv_session_destroy(s);
}

Test(session, runs_reshape_with_runtime_shape_dynamically)
{
    qkv_session *s = open_session("exec/dynamic_reshape.onnx", 1);
    qkv_context *c;
    cr_assert_eq(qkv_context_create(s, &c, NULL), QKV_OK);
    float xs[12];
    for (int i = 0; i < 12; i++)
        xs[i] = (float)(i - 6);
    int64_t shape[2] = {3, 4};
    qkv_tensor in[2] = {
        {.dtype = QKV_DTYPE_FLOAT, .rank = 2, .dims = {2, 6}, .data = xs, .data_bytes = sizeof xs},
        {.dtype = QKV_DTYPE_INT64,
         .rank = 1,
         .dims = {2},
         .data = shape,
         .data_bytes = sizeof shape}};
    qkv_error err;
    cr_assert_eq(qkv_run(c, in, 2, &err), QKV_OK, "%s", err.message);
    const qkv_tensor *y = qkv_context_output(c, 0);
    cr_assert_eq(y->rank, 2);
    cr_assert_eq(y->dims[0], 3);
    cr_assert_eq(y->dims[1], 4);
    for (int i = 0; i < 12; i++)
        cr_assert_float_eq(((float *)y->data)[i], xs[i] > 0 ? xs[i] : 0, 0);
    qkv_plan_stats st = {.struct_size = sizeof(qkv_plan_stats)};
    qkv_context_plan_stats(c, &st);
    cr_assert_eq(st.dynamic_nodes, 2);
    /* a shape that does not fit is the kernel's error, with the node named */
    shape[1] = 5;
    cr_assert_neq(qkv_run(c, in, 2, &err), QKV_OK);
    cr_assert(strstr(err.message, "node 'reshape'"), "%s", err.message);
    qkv_context_destroy(c);
    qkv_session_destroy(s);
}

Test(session, names_op_without_kernel)
{
    qkv_session *s = NULL;
    qkv_error err;
    cr_assert_eq(qkv_session_create(tu_data("exec/unknown_op.onnx"), NULL, &s, &err),
                 QKV_ERR_UNSUPPORTED);
    cr_assert_null(s);
    cr_assert(strstr(err.message, "node 'fancy': no kernel for op FancyOp (domain com.example, "
                                  "opset 3)"),
              "%s", err.message);
}

Test(session, lists_each_missing_op_once)
{
    qkv_session *s = NULL;
    qkv_error err;
    cr_assert_eq(qkv_session_create(tu_data("exec/unknown_ops.onnx"), NULL, &s, &err),
                 QKV_ERR_UNSUPPORTED);
    cr_assert(strstr(err.message, "node 'n0': no kernel for op FancyOp"), "%s", err.message);
    /* "Mul" is listed although "MatMulX" contains it; FancyOp is not repeated */
    cr_assert(strstr(err.message, "5 nodes in all lack a kernel, also: MatMulX, Mul"), "%s",
              err.message);
}

Test(session, reports_missing_file)
{
    qkv_session *s = NULL;
    qkv_error err;
    cr_assert_neq(qkv_session_create("/nonexistent/model.onnx", NULL, &s, &err), QKV_OK);
    cr_assert_null(s);
    cr_assert(strstr(err.message, "/nonexistent/model.onnx"), "%s", err.message);
}

/* An empty value has no bytes, but kernels and callers always get a valid
 * pointer for it (memcpy and pointer arithmetic on NULL are undefined
 * behaviour): empty inputs given without data, empty initializers, the
 * outputs of kernels on them, and an empty input copied to an output. */
Test(session, empty_tensors_have_valid_pointers)
{
    qkv_session *s = open_session("exec/empty_tensors.onnx", 1);
    qkv_context *c;
    cr_assert_eq(qkv_context_create(s, &c, NULL), QKV_OK);
    float xs[6] = {-1, 2, -3, 4, -5, 6};
    for (int pass = 0; pass < 3; pass++) {
        int64_t n = pass == 1 ? 2 : 0;
        qkv_tensor x = {.dtype = QKV_DTYPE_FLOAT,
                        .rank = 2,
                        .dims = {n, 3},
                        .data = n ? xs : NULL,
                        .data_bytes = n ? sizeof xs : 0};
        qkv_error err;
        cr_assert_eq(qkv_run(c, &x, 1, &err), QKV_OK, "n=%lld: %s", (long long)n, err.message);
        for (size_t k = 0; k < 4; k++) {
            const qkv_tensor *o = qkv_context_output(c, k);
            int64_t rows = k == 2 ? 0 : n; /* z is always empty */
            cr_assert(o && o->rank == 2 && o->dims[0] == rows && o->dims[1] == 3, "output %zu", k);
            cr_assert_not_null(o->data, "n=%lld: output %zu", (long long)n, k);
            cr_assert_eq(o->data_bytes, (size_t)rows * 3 * sizeof(float));
        }
        for (size_t i = 0; i < (size_t)n * 3; i++) {
            const float *y = qkv_context_output(c, 0)->data;
            const float *cat = qkv_context_output(c, 1)->data;
            const float *xo = qkv_context_output(c, 3)->data;
            cr_assert_eq(y[i], xs[i] > 0 ? xs[i] : 0.0f);
            cr_assert_eq(cat[i], xs[i]);
            cr_assert_eq(xo[i], xs[i]);
        }
    }
    qkv_context_destroy(c);
    qkv_session_destroy(s);
}

/* ---- input checks --------------------------------------------------------- */

static qkv_status run_mlp_with(qkv_tensor *x, size_t n, qkv_error *err)
{
    qkv_session *s = open_session("exec/mlp.onnx", 1);
    qkv_context *c;
    cr_assert_eq(qkv_context_create(s, &c, NULL), QKV_OK);
    qkv_status st = qkv_run(c, x, n, err);
    cr_assert_null(qkv_context_output(c, 0), "no output after a failed run");
    qkv_context_destroy(c);
    qkv_session_destroy(s);
    return st;
}

static float buf[64];

Test(session_inputs, refuses_wrong_count)
{
    qkv_error err;
    cr_assert_eq(run_mlp_with(NULL, 0, &err), QKV_ERR_INVALID_ARGUMENT);
    cr_assert(strstr(err.message, "the model has 1 inputs, 0 were given"), "%s", err.message);
}

Test(session_inputs, refuses_wrong_dtype)
{
    qkv_tensor x = {.dtype = QKV_DTYPE_DOUBLE,
                    .rank = 2,
                    .dims = {1, 8},
                    .data = buf,
                    .data_bytes = sizeof buf};
    qkv_error err;
    cr_assert_eq(run_mlp_with(&x, 1, &err), QKV_ERR_TYPE);
    cr_assert(strstr(err.message, "input 0 'x' has type float64, expected float32"), "%s",
              err.message);
}

Test(session_inputs, refuses_wrong_rank)
{
    qkv_tensor x = {
        .dtype = QKV_DTYPE_FLOAT, .rank = 1, .dims = {8}, .data = buf, .data_bytes = sizeof buf};
    qkv_error err;
    cr_assert_eq(run_mlp_with(&x, 1, &err), QKV_ERR_SHAPE);
    cr_assert(strstr(err.message, "input 0 'x' has rank 1, expected 2"), "%s", err.message);
}

Test(session_inputs, refuses_dim_contradicting_model)
{
    qkv_tensor x = {
        .dtype = QKV_DTYPE_FLOAT, .rank = 2, .dims = {1, 7}, .data = buf, .data_bytes = sizeof buf};
    qkv_error err;
    cr_assert_eq(run_mlp_with(&x, 1, &err), QKV_ERR_SHAPE);
    cr_assert(strstr(err.message, "input 0 'x': dim 1 is 7, the model says 8"), "%s", err.message);
}

Test(session_inputs, refuses_short_data)
{
    qkv_tensor x = {
        .dtype = QKV_DTYPE_FLOAT, .rank = 2, .dims = {4, 8}, .data = buf, .data_bytes = 16};
    qkv_error err;
    cr_assert_eq(run_mlp_with(&x, 1, &err), QKV_ERR_INVALID_ARGUMENT);
    cr_assert(strstr(err.message, "input 0 'x' has 16 bytes of data, its shape needs 128"), "%s",
              err.message);
}

Test(session_inputs, refuses_missing_data)
{
    qkv_tensor x = {.dtype = QKV_DTYPE_FLOAT, .rank = 2, .dims = {1, 8}};
    qkv_error err;
    cr_assert_eq(run_mlp_with(&x, 1, &err), QKV_ERR_INVALID_ARGUMENT);
    cr_assert(strstr(err.message, "input 0 'x' has no data"), "%s", err.message);
}
