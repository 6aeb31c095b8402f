/*
 * Views instead of copies: Transposes that move only dims of size 1 become
 * Reshapes (runtime/passes/transpose_view.c) or, when only the plan knows
 * the shape, views at plan time (runtime/plan/plan_build.c); attention reads
 * head-split Q, K, V as 3-D views (runtime/passes/fuse_attention_heads.c);
 * MatMul/Gemm fusion takes a residual Add behind a Reshape
 * (runtime/passes/fuse_matmul.c). For each: that it fires (node counts),
 * that it does not where data would move, that fused equals unfused and the
 * reference, and the passes' error paths. Models come from
 * tests/data/make_view_models.py.
 */
#include <criterion/criterion.h>
#include <stdio.h>
#include <string.h>

#include "ir.h"
#include "loader.h"
#include "pass_harness.h"
#include "passes.h"
#include "plan.h"
#include "qkv.h"
#include "registry.h"
#include "session.h"
#include "test_util.h"

/* Fused vs unfused: the same float32 math but for the attention scale
 * applied to the scores instead of Q and the softmax's summation order (a
 * few ulps on values ~1); the references are float64 numpy. */
#define RTOL 1e-4f
#define ATOL 1e-5f

typedef struct opened {
    qkv_session *s;
    const qkv_ir_graph *g;
} opened;

static void model_path(const char *name, char *path, size_t cap)
{
    char rel[256];
    snprintf(rel, sizeof rel, "views/%s.onnx", name);
    snprintf(path, cap, "%s", tu_data(rel));
}

static opened open_model(const char *name, bool fuse)
{
    char path[512];
    model_path(name, path, sizeof path);
    qkv_session_options opts;
    qkv_session_options_init(&opts);
    opts.disable_fusion = !fuse;
    opened o = {0};
    qkv_error err = {0};
    cr_assert_eq(qkv_session_create(path, &opts, &o.s, &err), QKV_OK, "%s: %s", path, err.message);
    o.g = qkv_session_model(o.s)->graph;
    return o;
}

static size_t count_op(const qkv_ir_graph *g, const char *op)
{
    size_t n = 0;
    for (size_t i = 0; i < g->n_nodes; i++)
        n += strcmp(g->nodes[i].op_type, op) == 0;
    return n;
}

static const qkv_ir_node *find_op(const qkv_ir_graph *g, const char *op)
{
    for (size_t i = 0; i < g->n_nodes; i++)
        if (strcmp(g->nodes[i].op_type, op) == 0)
            return &g->nodes[i];
    cr_assert_fail("no %s node in the graph", op);
    return NULL;
}

/* Runs the model's saved inputs through a fused and an unfused session:
 * both outputs equal the reference. Returns the fused session for the
 * caller to inspect (and destroy). */
static opened check_model(const char *name)
{
    opened f = open_model(name, true), p = open_model(name, false);
    const qkv_model *m = qkv_session_model(f.s);
    size_t n_in = qkv_model_input_count(m);
    qkv_tensor in[4], want;
    cr_assert(n_in <= 4 && qkv_model_output_count(m) == 1);
    char rel[256];
    for (size_t k = 0; k < n_in; k++) {
        snprintf(rel, sizeof rel, "views/%s_input_%zu.pb", name, k);
        tu_read_pb(tu_data(rel), &in[k]);
    }
    snprintf(rel, sizeof rel, "views/%s_output_0.pb", name);
    tu_read_pb(tu_data(rel), &want);
    qkv_session *both[2] = {f.s, p.s};
    for (int k = 0; k < 2; k++) {
        qkv_context *c;
        qkv_error err = {0};
        cr_assert_eq(qkv_context_create(both[k], &c, &err), QKV_OK, "%s", err.message);
        cr_assert_eq(qkv_run(c, in, n_in, &err), QKV_OK, "%s (%s): %s", name,
                     k ? "unfused" : "fused", err.message);
        tu_assert_close(qkv_context_output(c, 0), &want, RTOL, ATOL);
        qkv_context_destroy(c);
    }
    for (size_t k = 0; k < n_in; k++)
        qkv_tensor_data_free(&in[k]);
    qkv_tensor_data_free(&want);
    qkv_session_destroy(p.s);
    return f;
}

/* ---- Transposes moving only dims of size 1 -------------------------------------- */

Test(transpose_view, a_unit_dim_move_becomes_a_reshape)
{
    opened f = check_model("unit_dim_moves");
    cr_assert_eq(count_op(f.g, "Transpose"), 0);
    cr_assert_eq(count_op(f.g, "Reshape"), 1);
    cr_assert_eq(qkv_session_fusion_count(f.s, "transpose_view"), 1);
    const qkv_ir_node *r = find_op(f.g, "Reshape");
    const qkv_ir_value *shape = &f.g->values[r->inputs[1]];
    int64_t want[3] = {4, 1, 6};
    cr_assert_eq(shape->kind, QKV_VALUE_CONSTANT);
    cr_assert_arr_eq(shape->data, want, sizeof want);
    qkv_session_destroy(f.s);
}

Test(transpose_view, not_when_a_dim_above_1_moves)
{
    opened f = check_model("data_moves");
    cr_assert_eq(count_op(f.g, "Transpose"), 1);
    cr_assert_eq(count_op(f.g, "Reshape"), 0);
    cr_assert_eq(qkv_session_fusion_count(f.s, "transpose_view"), 0);
    qkv_session_destroy(f.s);
}

Test(transpose_view, one_unknown_dim_becomes_minus_1)
{
    opened f = check_model("one_dynamic_dim");
    cr_assert_eq(count_op(f.g, "Transpose"), 0);
    const qkv_ir_node *r = find_op(f.g, "Reshape");
    int64_t want[3] = {1, -1, 6};
    cr_assert_arr_eq(f.g->values[r->inputs[1]].data, want, sizeof want);
    qkv_session_destroy(f.s);
}

Test(transpose_view, a_reshape_read_only_by_the_view_is_joined)
{
    opened f = check_model("reshape_then_view");
    cr_assert_eq(count_op(f.g, "Transpose"), 0);
    cr_assert_eq(count_op(f.g, "Reshape"), 1);
    const qkv_ir_node *r = find_op(f.g, "Reshape");
    cr_assert_str_eq(f.g->values[r->inputs[0]].name, "x", "reads the first Reshape's input");
    qkv_session_destroy(f.s);
}

/* x (n, 1, m) through Transpose (2, 1, 0): the graph pass cannot tell
 * (two unknown dims); the plan makes it a view when n or m is 1, and runs
 * it when both exceed 1. The output is checked against a naive transpose. */
static void run_two_dynamic(qkv_session *s, int64_t n, int64_t m, bool want_view)
{
    float x[12], want[12];
    cr_assert(n * m <= 12);
    for (int64_t i = 0; i < n * m; i++)
        x[i] = (float)i - 5.0f;
    for (int64_t i = 0; i < n; i++)
        for (int64_t j = 0; j < m; j++) /* y[j][0][i] = relu(x[i][0][j]) */
            want[j * n + i] = x[i * m + j] > 0 ? x[i * m + j] : 0;
    qkv_tensor in = {.dtype = QKV_DTYPE_FLOAT,
                     .rank = 3,
                     .dims = {n, 1, m},
                     .data = x,
                     .data_bytes = (size_t)(n * m) * sizeof(float)};
    qkv_exec_plan *p = NULL;
    qkv_error err = {0};
    cr_assert_eq(qkv_plan_get(s, &in, 1, &p, &err), QKV_OK, "%s", err.message);
    cr_assert_eq(p->stats.views, want_view ? 1u : 0u, "n %lld m %lld: %zu views", (long long)n,
                 (long long)m, p->stats.views);
    cr_assert_eq(p->n_steps, want_view ? 1u : 2u, "the view takes no step");
    qkv_plan_release(p);
    qkv_context *c;
    cr_assert_eq(qkv_context_create(s, &c, &err), QKV_OK, "%s", err.message);
    cr_assert_eq(qkv_run(c, &in, 1, &err), QKV_OK, "%s", err.message);
    const qkv_tensor *y = qkv_context_output(c, 0);
    cr_assert_eq(y->rank, 3);
    cr_assert(y->dims[0] == m && y->dims[1] == 1 && y->dims[2] == n);
    cr_assert_arr_eq(y->data, want, (size_t)(n * m) * sizeof(float));
    qkv_context_destroy(c);
}

Test(transpose_view, the_plan_makes_a_view_when_its_shape_shows_one)
{
    opened f = open_model("two_dynamic_dims", true);
    cr_assert_eq(count_op(f.g, "Transpose"), 1, "left to the plan");
    run_two_dynamic(f.s, 3, 1, true);
    run_two_dynamic(f.s, 1, 4, true);
    run_two_dynamic(f.s, 3, 4, false);
    qkv_session_destroy(f.s);
}

/* ---- MatMul / Gemm with a residual Add behind a Reshape ------------------------- */

Test(matmul_view, matmul_bias_reshape_residual_is_one_fused_matmul)
{
    opened f = check_model("matmul_view_residual");
    cr_assert_eq(count_op(f.g, "FusedMatMul"), 1);
    cr_assert_eq(count_op(f.g, "Add"), 0);
    cr_assert_eq(count_op(f.g, "MatMul"), 0);
    cr_assert_eq(count_op(f.g, "Transpose"), 0);
    const qkv_ir_node *fm = find_op(f.g, "FusedMatMul");
    cr_assert_eq(fm->n_inputs, 4, "bias and residual taken in");
    qkv_session_destroy(f.s);
}

Test(matmul_view, gemm_with_trans_b_reads_a_transposed_copy)
{
    opened f = check_model("gemm_view_residual");
    cr_assert_eq(count_op(f.g, "FusedMatMul"), 1);
    cr_assert_eq(count_op(f.g, "Gemm"), 0);
    cr_assert_eq(count_op(f.g, "Add"), 0);
    for (size_t i = 0; i < f.g->n_values; i++) /* the (N, K) original is released */
        if (strcmp(f.g->values[i].name, "wt") == 0)
            cr_assert_null(f.g->values[i].data);
    qkv_session_destroy(f.s);
}

/* ---- attention on head views -------------------------------------------------------- */

static void expect_heads(const qkv_ir_graph *g, int64_t heads)
{
    const qkv_ir_node *a = find_op(g, "Attention");
    for (int k = 0; k < 3; k++)
        cr_assert_eq(g->values[a->inputs[k]].rank, 3, "input %d is a 3-D view", k);
    cr_assert_eq(qkv_node_attr(a, "q_num_heads")->i, heads);
    cr_assert_eq(qkv_node_attr(a, "kv_num_heads")->i, heads);
    cr_assert_eq(count_op(g, "Transpose"), 0, "every head Transpose went");
}

Test(heads_view, rank4_split_heads_are_read_as_3d)
{
    opened f = check_model("heads_rank4");
    expect_heads(f.g, 3);
    cr_assert_eq(qkv_session_fused_count(f.s), 1);
    qkv_session_destroy(f.s);
}

Test(heads_view, rank3_torch_layout_reads_heads_and_keeps_the_3d_mask)
{
    opened f = check_model("heads_rank3");
    expect_heads(f.g, 6);
    cr_assert_eq(count_op(f.g, "Unsqueeze"), 0, "a (N, S, T) mask aligns with the heads");
    const qkv_ir_node *a = find_op(f.g, "Attention");
    cr_assert_eq(a->n_inputs, 4);
    cr_assert_eq(f.g->values[a->inputs[3]].rank, 3);
    qkv_session_destroy(f.s);
}

/* Fused as before, transposes kept, when the output is not merged back or
 * V is not a head split. */
static void expect_4d(const char *name)
{
    opened f = check_model(name);
    const qkv_ir_node *a = find_op(f.g, "Attention");
    cr_assert_eq(f.g->values[a->inputs[0]].rank, 4, "%s", name);
    cr_assert_null(qkv_node_attr(a, "q_num_heads"), "%s", name);
    cr_assert_geq(count_op(f.g, "Transpose"), 1, "%s", name);
    qkv_session_destroy(f.s);
}

Test(heads_view, not_when_the_output_is_not_merged_back) { expect_4d("heads_not_merged"); }

Test(heads_view, not_when_v_is_not_a_head_split) { expect_4d("heads_v_other_perm"); }

/* ---- error paths -------------------------------------------------------------------- */

static qkv_status refusing_init(const qkv_kernel *k, const qkv_host_api *host,
                                const qkv_node_ctx *node, void **state)
{
    (void)k;
    (void)state;
    return host->node_error(node, QKV_ERR_UNSUPPORTED, "this stub refuses every node");
}

/* A registry with the built-in kernels, except that op_type's init fails. */
static qkv_registry *refusing(const qkv_registry *builtins, const char *domain, const char *op,
                              int64_t opset, const char *keep_domain, const char *keep_op,
                              int64_t keep_opset)
{
    qkv_registry *reg = qkv_registry_create();
    qkv_kernel k = *qkv_registry_find(builtins, domain, op, opset, NULL);
    k.init = refusing_init;
    qkv_error err = {0};
    cr_assert_eq(qkv_registry_add(reg, &k, "test", &err), QKV_OK, "%s", err.message);
    if (keep_op)
        cr_assert_eq(qkv_registry_add(
                         reg, qkv_registry_find(builtins, keep_domain, keep_op, keep_opset, NULL),
                         "test", &err),
                     QKV_OK, "%s", err.message);
    return reg;
}

Test(transpose_view, init_failure_is_reported_and_leaves_the_graph_intact)
{
    qkv_registry *reg = ph_builtins();
    qkv_registry *stub = refusing(reg, "", "Reshape", 14, NULL, NULL, 0);
    char path[512];
    model_path("unit_dim_moves", path, sizeof path);
    qkv_model *model = ph_prepare(path, reg);
    size_t before = model->graph->n_nodes, n = 99;
    qkv_error err = {0};
    cr_assert_eq(qkv_pass_transpose_view(model->graph, stub, &n, &err), QKV_ERR_UNSUPPORTED);
    cr_assert(strstr(err.message, "transpose view: ") == err.message, "%s", err.message);
    cr_assert(strstr(err.message, "this stub refuses every node"), "%s", err.message);
    cr_assert_eq(n, 0);
    cr_assert_eq(model->graph->n_nodes, before);
    cr_assert_eq(count_op(model->graph, "Transpose"), 1);
    ph_release(model);
    qkv_registry_destroy(stub);
    qkv_registry_destroy(reg);
}

Test(matmul_view, init_failure_drops_the_views_already_made)
{
    /* the residual's view and the output's view initialise, then the
     * FusedMatMul's init fails: all three go, the Gemm chain stays */
    qkv_registry *reg = ph_builtins();
    qkv_registry *stub = refusing(reg, "qkv", "FusedMatMul", 1, "", "Reshape", 14);
    char path[512];
    model_path("gemm_view_residual", path, sizeof path);
    qkv_model *model = ph_prepare(path, reg);
    size_t n = 99;
    qkv_error err = {0};
    /* the Transpose behind the Reshape first becomes part of it */
    cr_assert_eq(qkv_pass_transpose_view(model->graph, reg, &n, &err), QKV_OK, "%s", err.message);
    cr_assert_eq(n, 1);
    cr_assert_eq(qkv_infer_graph(model->graph, &err), QKV_OK, "%s", err.message);
    size_t before = model->graph->n_nodes;
    cr_assert_eq(qkv_pass_fuse_matmul(model->graph, stub, &n, &err), QKV_ERR_UNSUPPORTED);
    cr_assert(strstr(err.message, "matmul fusion: ") == err.message, "%s", err.message);
    cr_assert_eq(n, 0);
    cr_assert_eq(model->graph->n_nodes, before);
    cr_assert_eq(count_op(model->graph, "Gemm"), 1);
    cr_assert_eq(count_op(model->graph, "FusedMatMul"), 0);
    ph_release(model);
    qkv_registry_destroy(stub);
    qkv_registry_destroy(reg);
}
