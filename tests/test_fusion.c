/*
 * Attention fusion (runtime/passes/fuse_attention.c): which subgraphs become one
 * Attention node, what the rewritten graph looks like, that fused and
 * unfused sessions compute the same outputs (and match the references), the
 * cases that must not fuse, the pass's own error path, and the CLI flags.
 * Models come from tests/data/make_fusion_models.py.
 */
#include <criterion/criterion.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "ir.h"
#include "kernel_host.h"
#include "loader.h"
#include "pass_harness.h"
#include "passes.h"
#include "qkv.h"
#include "registry.h"
#include "session.h"
#include "test_util.h"

/* Fused vs unfused: the same float32 math up to where the scale is applied
 * (scale * (Q Kᵀ) instead of (Q / c) Kᵀ) and the softmax's summation order:
 * a few ulps on values of magnitude ~1. The references are float64 numpy or
 * PyTorch eager float32: same tolerance. */
#define RTOL 1e-4f
#define ATOL 1e-5f

typedef struct opened {
    qkv_session *s;
    const qkv_ir_graph *g; /* the session's graph after the passes */
} opened;

static opened open_model(const char *path, bool fuse, bool fold)
{
    qkv_session_options opts;
    qkv_session_options_init(&opts);
    opts.disable_fusion = !fuse;
    opts.disable_folding = !fold;
    opened o = {0};
    qkv_error err = {0};
    qkv_status st = qkv_session_create(path, &opts, &o.s, &err);
    cr_assert_eq(st, QKV_OK, "%s: %s", path, err.message);
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

/* The first node of op type `op` (asserts there is one). */
static const qkv_ir_node *find_op(const qkv_ir_graph *g, const char *op)
{
    for (size_t i = 0; i < g->n_nodes; i++)
        if (strcmp(g->nodes[i].op_type, op) == 0)
            return &g->nodes[i];
    cr_assert_fail("no %s node in the graph", op);
    return NULL;
}

static const qkv_ir_node *producer(const qkv_ir_graph *g, int32_t v)
{
    cr_assert(v >= 0);
    return g->values[v].producer >= 0 ? &g->nodes[g->values[v].producer] : NULL;
}

/* Runs inputs through both sessions; asserts fused == unfused and both ==
 * the expected outputs. Frees nothing the caller owns. */
static void compare_runs(qkv_session *fused, qkv_session *plain, const qkv_tensor *inputs,
                         size_t n_in, const qkv_tensor *want, size_t n_out, const char *what)
{
    qkv_context *cf, *cp;
    qkv_error err = {0};
    cr_assert_eq(qkv_context_create(fused, &cf, &err), QKV_OK, "%s", err.message);
    cr_assert_eq(qkv_context_create(plain, &cp, &err), QKV_OK, "%s", err.message);
    cr_assert_eq(qkv_run(cf, inputs, n_in, &err), QKV_OK, "%s fused: %s", what, err.message);
    cr_assert_eq(qkv_run(cp, inputs, n_in, &err), QKV_OK, "%s unfused: %s", what, err.message);
    for (size_t k = 0; k < n_out; k++) {
        const qkv_tensor *a = qkv_context_output(cf, k), *b = qkv_context_output(cp, k);
        cr_assert(a && b, "%s: output %zu missing", what, k);
        tu_assert_close(a, b, RTOL, ATOL);
        tu_assert_close(a, &want[k], RTOL, ATOL);
        tu_assert_close(b, &want[k], RTOL, ATOL);
    }
    qkv_context_destroy(cf);
    qkv_context_destroy(cp);
}

/* A model of tests/data/make_fusion_models.py: fusion creates `want_fused`
 * Attention nodes, fused and unfused outputs agree and match the reference. */
static opened check_flat(const char *name, size_t want_fused, bool fold)
{
    char path[512];
    snprintf(path, sizeof path, "%s", tu_data("fusion/"));
    strncat(path, name, sizeof path - strlen(path) - 8);
    strcat(path, ".onnx");
    opened f = open_model(path, true, fold), p = open_model(path, false, fold);
    cr_assert_eq(qkv_session_fused_count(f.s), want_fused, "%s: fused %zu, expected %zu", name,
                 qkv_session_fused_count(f.s), want_fused);
    cr_assert_eq(qkv_session_fused_count(p.s), 0);
    cr_assert_eq(count_op(f.g, "Attention"), want_fused);
    if (want_fused == 0)
        cr_assert_eq(f.g->n_nodes, p.g->n_nodes, "%s: an unfused graph changed", name);
    const qkv_model *m = qkv_session_model(f.s);
    size_t n_in = qkv_model_input_count(m), n_out = qkv_model_output_count(m);
    qkv_tensor in[8], want[4];
    cr_assert(n_in <= 8 && n_out <= 4);
    char rel[256];
    for (size_t k = 0; k < n_in; k++) {
        snprintf(rel, sizeof rel, "fusion/%s_input_%zu.pb", name, k);
        tu_read_pb(tu_data(rel), &in[k]);
    }
    for (size_t k = 0; k < n_out; k++) {
        snprintf(rel, sizeof rel, "fusion/%s_output_%zu.pb", name, k);
        tu_read_pb(tu_data(rel), &want[k]);
    }
    compare_runs(f.s, p.s, in, n_in, want, n_out, name);
    for (size_t k = 0; k < n_in; k++)
        qkv_tensor_data_free(&in[k]);
    for (size_t k = 0; k < n_out; k++)
        qkv_tensor_data_free(&want[k]);
    qkv_session_destroy(p.s);
    return f; /* the caller inspects the fused graph, then destroys it */
}

static void check_flat_only(const char *name, size_t want_fused)
{
    opened f = check_flat(name, want_fused, true);
    qkv_session_destroy(f.s);
}

/* ---- every pattern variant fuses ------------------------------------------------ */

Test(fusion, div_by_sqrt_d_after_matmul)
{
    opened f = check_flat("scale_div_after", 1, true);
    /* Transpose(k, 0 1 3 2) then the swap Attention does: K is k itself */
    cr_assert_eq(f.g->n_nodes, 1, "nodes: %zu", f.g->n_nodes);
    const qkv_ir_node *a = find_op(f.g, "Attention");
    cr_assert_str_eq(a->domain, "");
    cr_assert_eq(a->opset, 23);
    cr_assert_eq(a->n_inputs, 3);
    cr_assert_str_eq(f.g->values[a->inputs[0]].name, "q");
    cr_assert_str_eq(f.g->values[a->inputs[1]].name, "k");
    cr_assert_str_eq(f.g->values[a->inputs[2]].name, "v");
    const qkv_ir_attr *scale = qkv_node_attr(a, "scale");
    cr_assert(scale && scale->type == QKV_ATTR_FLOAT);
    cr_assert_float_eq(scale->f, 1.0f / sqrtf(8.0f), 1e-7f);
    cr_assert_null(qkv_node_attr(a, "is_causal"));
    cr_assert_null(qkv_node_attr(a, "q_num_heads"));
    cr_assert_eq(count_op(f.g, "Softmax"), 0);
    cr_assert_eq(count_op(f.g, "MatMul"), 0);
    qkv_session_destroy(f.s);
}

Test(fusion, mul_on_q_before_matmul_with_k_already_transposed)
{
    opened f = check_flat("scale_mul_before", 1, true);
    const qkv_ir_node *a = find_op(f.g, "Attention");
    cr_assert_float_eq(qkv_node_attr(a, "scale")->f, 0.25f, 1e-7f);
    cr_assert_str_eq(f.g->values[a->inputs[0]].name, "q", "the scaled Q is not needed");
    const qkv_ir_node *t = producer(f.g, a->inputs[1]);
    cr_assert(t && strcmp(t->op_type, "Transpose") == 0);
    const qkv_ir_attr *perm = qkv_node_attr(t, "perm");
    cr_assert(perm && perm->n == 4);
    int64_t want[4] = {0, 1, 3, 2};
    cr_assert_arr_eq(perm->ints, want, sizeof want);
    cr_assert_eq(f.g->n_nodes, 2, "the Mul went too: %zu nodes", f.g->n_nodes);
    qkv_session_destroy(f.s);
}

Test(fusion, div_by_folded_sqrt_and_constant_first_mul)
{
    opened f = check_flat("scale_sqrt_const", 1, true);
    const qkv_ir_node *a = find_op(f.g, "Attention");
    cr_assert_float_eq(qkv_node_attr(a, "scale")->f, 0.5f / sqrtf(8.0f), 1e-7f);
    qkv_session_destroy(f.s);
}

Test(fusion, div_by_sqrt_node_without_folding)
{
    opened f = check_flat("scale_sqrt_const", 1, false);
    const qkv_ir_node *a = find_op(f.g, "Attention");
    cr_assert_float_eq(qkv_node_attr(a, "scale")->f, 0.5f / sqrtf(8.0f), 1e-7f);
    cr_assert_eq(count_op(f.g, "Sqrt"), 0, "the Sqrt only the scale used is removed");
    cr_assert_eq(f.g->n_nodes, 1);
    qkv_session_destroy(f.s);
}

Test(fusion, scale_split_over_q_and_k)
{
    opened f = check_flat("scale_q_and_k", 1, true);
    const qkv_ir_node *a = find_op(f.g, "Attention");
    cr_assert_float_eq(qkv_node_attr(a, "scale")->f, 1.0f / sqrtf(8.0f), 1e-6f);
    cr_assert_eq(f.g->n_nodes, 1);
    qkv_session_destroy(f.s);
}

Test(fusion, additive_float_mask)
{
    opened f = check_flat("mask_add", 1, true);
    const qkv_ir_node *a = find_op(f.g, "Attention");
    cr_assert_eq(a->n_inputs, 4);
    cr_assert_str_eq(f.g->values[a->inputs[3]].name, "mask");
    qkv_session_destroy(f.s);
}

Test(fusion, additive_2d_mask_first_operand_dynamic_batch)
{
    opened f = check_flat("mask_add_2d_first", 1, true);
    const qkv_ir_node *a = find_op(f.g, "Attention");
    cr_assert_str_eq(f.g->values[a->inputs[3]].name, "mask");
    cr_assert_float_eq(qkv_node_attr(a, "scale")->f, 0.3f, 1e-7f);
    qkv_session_destroy(f.s);
}

Test(fusion, where_bool_mask_is_passed_as_is)
{
    opened f = check_flat("mask_where", 1, true);
    const qkv_ir_node *a = find_op(f.g, "Attention");
    cr_assert_str_eq(f.g->values[a->inputs[3]].name, "keep");
    cr_assert_eq(f.g->values[a->inputs[3]].dtype, QKV_DTYPE_BOOL);
    cr_assert_eq(f.g->n_nodes, 1);
    qkv_session_destroy(f.s);
}

Test(fusion, masked_fill_where_gets_a_not)
{
    opened f = check_flat("mask_where_inverted", 1, true);
    const qkv_ir_node *a = find_op(f.g, "Attention");
    const qkv_ir_node *n = producer(f.g, a->inputs[3]);
    cr_assert(n && strcmp(n->op_type, "Not") == 0);
    cr_assert_str_eq(f.g->values[n->inputs[0]].name, "pad");
    qkv_session_destroy(f.s);
}

Test(fusion, finfo_min_fill_becomes_a_float_mask)
{
    opened f = check_flat("mask_where_finfo_min", 1, true);
    const qkv_ir_node *a = find_op(f.g, "Attention");
    const qkv_ir_node *w = producer(f.g, a->inputs[3]);
    cr_assert(w && strcmp(w->op_type, "Where") == 0);
    cr_assert_eq(f.g->values[a->inputs[3]].dtype, QKV_DTYPE_FLOAT);
    qkv_session_destroy(f.s);
}

Test(fusion, constant_float_causal_mask_becomes_is_causal)
{
    opened f = check_flat("mask_causal_const_add", 1, true);
    const qkv_ir_node *a = find_op(f.g, "Attention");
    cr_assert_eq(a->n_inputs, 3, "no attn_mask left");
    const qkv_ir_attr *c = qkv_node_attr(a, "is_causal");
    cr_assert(c && c->type == QKV_ATTR_INT && c->i == 1);
    cr_assert_eq(f.g->n_nodes, 1);
    qkv_session_destroy(f.s);
}

Test(fusion, constant_bool_causal_mask_becomes_is_causal)
{
    opened f = check_flat("mask_causal_const_where", 1, true);
    const qkv_ir_node *a = find_op(f.g, "Attention");
    cr_assert_eq(a->n_inputs, 3);
    cr_assert_eq(qkv_node_attr(a, "is_causal")->i, 1);
    qkv_session_destroy(f.s);
}

Test(fusion, almost_causal_constant_stays_a_mask)
{
    opened f = check_flat("mask_const_not_causal", 1, true);
    const qkv_ir_node *a = find_op(f.g, "Attention");
    cr_assert_null(qkv_node_attr(a, "is_causal"));
    cr_assert_eq(a->n_inputs, 4);
    cr_assert_str_eq(f.g->values[a->inputs[3]].name, "almost");
    qkv_session_destroy(f.s);
}

Test(fusion, two_masks_are_summed)
{
    opened f = check_flat("mask_two_terms", 1, true);
    const qkv_ir_node *a = find_op(f.g, "Attention");
    const qkv_ir_node *add = producer(f.g, a->inputs[3]);
    cr_assert(add && strcmp(add->op_type, "Add") == 0);
    cr_assert_eq(count_op(f.g, "Where"), 1, "the bool mask as 0 / -inf");
    qkv_session_destroy(f.s);
}

Test(fusion, rank3_uses_3d_attention_with_one_head)
{
    opened f = check_flat("rank3_mask", 1, true);
    const qkv_ir_node *a = find_op(f.g, "Attention");
    cr_assert_eq(qkv_node_attr(a, "q_num_heads")->i, 1);
    cr_assert_eq(qkv_node_attr(a, "kv_num_heads")->i, 1);
    /* the (N, S, T) mask is aligned with (N, heads = 1, S, T) */
    const qkv_ir_node *u = producer(f.g, a->inputs[3]);
    cr_assert(u && strcmp(u->op_type, "Unsqueeze") == 0);
    cr_assert_eq(f.g->values[a->inputs[3]].rank, 4);
    qkv_session_destroy(f.s);
}

Test(fusion, multi_query_broadcast_maps_to_one_kv_head) { check_flat_only("multi_query", 1); }

Test(fusion, skips_cast_to_float_inference_dropout_and_identity)
{
    opened f = check_flat("dropout_identity", 1, true);
    cr_assert_eq(count_op(f.g, "Cast"), 0);
    cr_assert_eq(count_op(f.g, "Dropout"), 0);
    cr_assert_eq(count_op(f.g, "Identity"), 0);
    cr_assert_eq(f.g->n_nodes, 1);
    qkv_session_destroy(f.s);
}

Test(fusion, opset11_softmax_on_last_axis) { check_flat_only("opset11_softmax_last_axis", 1); }

Test(fusion, composes_transposes_of_k)
{
    opened f = check_flat("k_seq_first", 1, true);
    const qkv_ir_node *a = find_op(f.g, "Attention");
    const qkv_ir_node *t = producer(f.g, a->inputs[1]);
    cr_assert(t && strcmp(t->op_type, "Transpose") == 0);
    int64_t want[3] = {1, 0, 2};
    cr_assert_arr_eq(qkv_node_attr(t, "perm")->ints, want, sizeof want);
    cr_assert_eq(count_op(f.g, "Transpose"), 1, "the (1, 2, 0) Transpose went");
    qkv_session_destroy(f.s);
}

Test(fusion, torch_multihead_attention_without_weights) { check_flat_only("torch_mha", 1); }

/* ---- cases that must not fuse ------------------------------------------------------ */

Test(fusion, not_when_scores_are_used_elsewhere) { check_flat_only("neg_scores_used", 0); }

Test(fusion, not_when_softmax_is_on_another_axis) { check_flat_only("neg_softmax_axis", 0); }

Test(fusion, not_for_opset11_softmax_default_axis)
{
    check_flat_only("neg_opset11_softmax_default_axis", 0);
}

Test(fusion, not_when_the_scale_is_a_runtime_value) { check_flat_only("neg_runtime_scale", 0); }

Test(fusion, not_when_the_weights_are_a_graph_output) { check_flat_only("neg_weights_output", 0); }

Test(fusion, not_for_a_moderate_where_fill) { check_flat_only("neg_where_fill_1e4", 0); }

Test(fusion, not_when_a_scale_follows_the_mask) { check_flat_only("neg_scale_after_mask", 0); }

Test(fusion, not_when_k_and_v_broadcast_over_the_batch)
{
    check_flat_only("neg_batch_broadcast", 0);
}

Test(fusion, not_for_a_per_key_vector_scale) { check_flat_only("neg_vector_scale", 0); }

/* ---- the forms of real architectures ------------------------------------------------ */

/* wav2vec2: the row-maximum subtraction before the softmax goes with it */
static void check_max_shift(const char *name)
{
    opened f = check_flat(name, 1, true);
    cr_assert_eq(count_op(f.g, "ReduceMax"), 0, "%s", name);
    cr_assert_eq(count_op(f.g, "Sub"), 0, "%s", name);
    cr_assert_eq(count_op(f.g, "Mul"), 0, "%s: the scale on Q went into Attention", name);
    const qkv_ir_node *a = find_op(f.g, "Attention");
    cr_assert_float_eq(qkv_node_attr(a, "scale")->f, 0.3f, 1e-7f);
    qkv_session_destroy(f.s);
}

Test(fusion, row_max_subtraction_with_axes_attribute) { check_max_shift("max_shift_op17"); }

Test(fusion, row_max_subtraction_with_axes_input) { check_max_shift("max_shift_op18"); }

Test(fusion, not_for_a_maximum_over_the_query_axis)
{
    check_flat_only("neg_max_shift_other_axis", 0);
}

/* Swin: with a constant split shape the bias and the expanded shift mask
 * fold into one constant attn_mask */
Test(fusion, swin_shift_mask_between_split_and_merge)
{
    opened f = check_flat("swin_split_mask", 1, true);
    const qkv_ir_node *a = find_op(f.g, "Attention");
    cr_assert_eq(a->n_inputs, 4);
    const qkv_ir_value *mask = &f.g->values[a->inputs[3]];
    cr_assert_eq(mask->kind, QKV_VALUE_CONSTANT, "the mask folds to a constant");
    int64_t want[4] = {4, 2, 5, 5};
    cr_assert_eq(mask->rank, 4);
    cr_assert_arr_eq(mask->dims, want, sizeof want);
    cr_assert_eq(f.g->n_nodes, 1, "nodes: %zu", f.g->n_nodes);
    qkv_session_destroy(f.s);
}

/* the split shape computed from the batch at run time: the mask is built
 * per run, Expand then Reshape, and summed with the bias */
Test(fusion, swin_shift_mask_with_a_computed_split_shape)
{
    opened f = check_flat("swin_split_mask_dynamic", 1, true);
    cr_assert_eq(count_op(f.g, "Expand"), 1);
    const qkv_ir_node *a = find_op(f.g, "Attention");
    const qkv_ir_node *add = producer(f.g, a->inputs[3]);
    cr_assert(add && strcmp(add->op_type, "Add") == 0);
    cr_assert_eq(count_op(f.g, "Softmax"), 0);
    qkv_session_destroy(f.s);
}

Test(fusion, not_when_the_merge_is_another_layout)
{
    check_flat_only("neg_split_merge_other_layout", 0);
}

Test(fusion, not_when_the_split_scores_are_scaled) { check_flat_only("neg_split_scaled", 0); }

/* MaxViT: rank-5 Einsums run as 4-D Attention on views with the two batch
 * dims merged; with static dims the view shapes are constants */
Test(fusion, rank5_einsums_with_static_dims)
{
    opened f = check_flat("einsum_rank5", 1, true);
    cr_assert_eq(count_op(f.g, "Einsum"), 0);
    cr_assert_eq(count_op(f.g, "Reshape"), 4, "Q, K, V and the output");
    cr_assert_eq(count_op(f.g, "Shape"), 0);
    const qkv_ir_node *a = find_op(f.g, "Attention");
    int64_t want[4] = {6, 2, 4, 8};
    cr_assert_eq(f.g->values[a->inputs[0]].rank, 4);
    cr_assert_arr_eq(f.g->values[a->inputs[0]].dims, want, sizeof want);
    cr_assert_float_eq(qkv_node_attr(a, "scale")->f, 0.25f, 1e-7f);
    qkv_session_destroy(f.s);
}

Test(fusion, rank5_einsums_with_dynamic_dims)
{
    opened f = check_flat("einsum_rank5_dynamic", 1, true);
    cr_assert_eq(count_op(f.g, "Einsum"), 0);
    cr_assert_gt(count_op(f.g, "Shape"), 0, "view shapes from the run's dims");
    qkv_session_destroy(f.s);
}

Test(fusion, not_for_rank5_with_a_mask_per_group)
{
    check_flat_only("neg_einsum_rank5_mask_per_group", 0);
}

Test(fusion, training_dropout_with_ratio_0_is_an_identity)
{
    opened f = check_flat("training_dropout_ratio_0", 1, true);
    cr_assert_eq(count_op(f.g, "Dropout"), 0);
    qkv_session_destroy(f.s);
}

Test(fusion, rank4_einsums)
{
    opened f = check_flat("einsum_rank4", 1, true);
    cr_assert_eq(f.g->n_nodes, 1, "nodes: %zu", f.g->n_nodes);
    qkv_session_destroy(f.s);
}

Test(fusion, not_for_an_einsum_giving_transposed_scores)
{
    check_flat_only("neg_einsum_transposed_scores", 0);
}

/* ---- the example set (models/export_examples.py) ----------------------------------- */

static bool file_exists(const char *path) { return access(path, R_OK) == 0; }

/* Every test_data_set of examples/NAME through fused and unfused sessions. */
static void check_example(const char *name, size_t want_fused)
{
    char dir[512], path[640];
    snprintf(dir, sizeof dir, "%s", tu_data("fusion/examples/"));
    strncat(dir, name, sizeof dir - strlen(dir) - 1);
    snprintf(path, sizeof path, "%s/model.onnx", dir);
    cr_assert(file_exists(path), "%s missing (models/export_examples.py)", path);
    opened f = open_model(path, true, true), p = open_model(path, false, true);
    cr_assert_eq(qkv_session_fused_count(f.s), want_fused, "%s: fused %zu, expected %zu", name,
                 qkv_session_fused_count(f.s), want_fused);
    cr_assert_eq(count_op(f.g, "Attention"), want_fused);
    const qkv_model *m = qkv_session_model(f.s);
    size_t n_in = qkv_model_input_count(m), n_out = qkv_model_output_count(m), sets = 0;
    cr_assert(n_in <= 8 && n_out <= 4);
    for (size_t set = 0;; set++) {
        qkv_tensor in[8], want[4];
        snprintf(path, sizeof path, "%s/test_data_set_%zu/input_0.pb", dir, set);
        if (!file_exists(path))
            break;
        for (size_t k = 0; k < n_in; k++) {
            snprintf(path, sizeof path, "%s/test_data_set_%zu/input_%zu.pb", dir, set, k);
            tu_read_pb(path, &in[k]);
        }
        for (size_t k = 0; k < n_out; k++) {
            snprintf(path, sizeof path, "%s/test_data_set_%zu/output_%zu.pb", dir, set, k);
            tu_read_pb(path, &want[k]);
        }
        compare_runs(f.s, p.s, in, n_in, want, n_out, name);
        for (size_t k = 0; k < n_in; k++)
            qkv_tensor_data_free(&in[k]);
        for (size_t k = 0; k < n_out; k++)
            qkv_tensor_data_free(&want[k]);
        sets++;
    }
    cr_assert(sets >= 1, "%s: no test_data_set", name);
    qkv_session_destroy(f.s);
    qkv_session_destroy(p.s);
}

Test(fusion_examples, transformer_encoder_fuses_both_layers) { check_example("encoder", 2); }

Test(fusion_examples, vit_block) { check_example("vit", 1); }

Test(fusion_examples, gpt2_causal_decoder_fuses_both_blocks) { check_example("gpt2", 2); }

Test(fusion_examples, keras_tf2onnx_self_attention) { check_example("keras_attention", 1); }

Test(fusion_examples, mha_returning_weights_is_not_fused) { check_example("mha", 0); }

/* ---- API ------------------------------------------------------------------------------ */

Test(fusion, fused_count_of_null_is_zero) { cr_assert_eq(qkv_session_fused_count(NULL), 0); }

/* ---- the pass on its own ----------------------------------------------------------- */

/* A loaded model with every kernel resolved and initialised from `reg`
 * (built-ins), and shapes inferred: what the pass expects. */
Test(fusion_pass, fuses_nothing_without_an_attention_kernel)
{
    qkv_registry *reg = ph_builtins(), *empty = qkv_registry_create();
    qkv_model *model = ph_prepare(tu_data("fusion/mask_add.onnx"), reg);
    size_t before = model->graph->n_nodes, fused = 99;
    qkv_error err = {0};
    cr_assert_eq(qkv_pass_fuse_attention(model->graph, empty, &fused, &err), QKV_OK);
    cr_assert_eq(fused, 0);
    cr_assert_eq(model->graph->n_nodes, before);
    ph_release(model);
    qkv_registry_destroy(empty);
    qkv_registry_destroy(reg);
}

Test(fusion_pass, fuses_with_the_builtin_registry)
{
    qkv_registry *reg = ph_builtins();
    qkv_model *model = ph_prepare(tu_data("fusion/mask_two_terms.onnx"), reg);
    size_t fused = 0;
    qkv_error err = {0};
    cr_assert_eq(qkv_pass_fuse_attention(model->graph, reg, &fused, &err), QKV_OK, "%s",
                 err.message);
    cr_assert_eq(fused, 1);
    const qkv_ir_graph *g = model->graph;
    for (size_t i = 0; i < g->n_nodes; i++) /* every new node has its kernel */
        cr_assert(g->nodes[i].kernel, "node '%s' has no kernel", g->nodes[i].name);
    const qkv_ir_node *a = find_op(g, "Attention");
    cr_assert_str_eq(a->name, "softmax/Attention");
    cr_assert_not_null(a->kernel_state, "Attention's init ran");
    ph_release(model);
    qkv_registry_destroy(reg);
}

static qkv_status refusing_init(const qkv_kernel *k, const qkv_host_api *host,
                                const qkv_node_ctx *node, void **state)
{
    (void)k;
    (void)state;
    return host->node_error(node, QKV_ERR_UNSUPPORTED, "this stub refuses every node");
}

static qkv_status stub_compute(const void *state, qkv_kernel_io *io)
{
    (void)state;
    (void)io;
    return QKV_OK;
}

static const qkv_kernel refusing_attention = {
    .struct_size = sizeof(qkv_kernel),
    .abi_version = QKV_ABI_VERSION,
    .domain = "",
    .op_type = "Attention",
    .since_version = 23,
    .until_version = 23,
    .min_inputs = 3,
    .max_inputs = 6,
    .min_outputs = 1,
    .max_outputs = 4,
    .init = refusing_init,
    .compute = stub_compute,
};

Test(fusion_pass, init_failure_is_reported_and_leaves_the_graph_intact)
{
    qkv_registry *reg = ph_builtins(), *stub = qkv_registry_create();
    qkv_error err = {0};
    cr_assert_eq(qkv_registry_add(stub, &refusing_attention, "test", &err), QKV_OK, "%s",
                 err.message);
    qkv_model *model = ph_prepare(tu_data("fusion/scale_div_after.onnx"), reg);
    size_t before = model->graph->n_nodes, fused = 99;
    qkv_status st = qkv_pass_fuse_attention(model->graph, stub, &fused, &err);
    cr_assert_eq(st, QKV_ERR_UNSUPPORTED);
    cr_assert_eq(err.status, QKV_ERR_UNSUPPORTED);
    cr_assert(strstr(err.message, "attention fusion: ") == err.message, "%s", err.message);
    cr_assert(strstr(err.message, "softmax/Attention"), "%s", err.message);
    cr_assert(strstr(err.message, "this stub refuses every node"), "%s", err.message);
    cr_assert_eq(fused, 0);
    cr_assert_eq(model->graph->n_nodes, before);
    cr_assert_eq(count_op(model->graph, "Attention"), 0);
    cr_assert_eq(count_op(model->graph, "Softmax"), 1);
    cr_assert_eq(model->graph->n_order, before);
    ph_release(model);
    qkv_registry_destroy(stub);
    qkv_registry_destroy(reg);
}

/* ---- CLI ------------------------------------------------------------------------------ */

/* Runs `qkv ARGS` with stdout into buf; returns the exit status. */
static int run_cli(const char *args, char *buf, size_t cap)
{
    char cmd[1024];
    snprintf(cmd, sizeof cmd, "%s/qkv %s 2>&1", QKV_BINARY_DIR, args);
    FILE *p = popen(cmd, "r");
    cr_assert(p);
    size_t n = fread(buf, 1, cap - 1, p);
    buf[n] = '\0';
    int status = pclose(p);
    return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

Test(fusion_cli, info_optimized_prints_the_fused_graph)
{
    static char out[1 << 16];
    char args[768];
    snprintf(args, sizeof args, "info --optimized %s", tu_data("fusion/mask_where_inverted.onnx"));
    cr_assert_eq(run_cli(args, out, sizeof out), 0, "%s", out);
    cr_assert(strstr(out, "optimized graph: 2 nodes, 1 fused attention node\n"), "%s", out);
    cr_assert(strstr(out, "     0  softmax/mask_not  Not-1  pad [2, 1, 1, 7] -> "
                          "softmax/mask_not [2, 1, 1, 7]\n"),
              "%s", out);
    cr_assert(strstr(out, "     1  softmax/Attention  Attention-23  q [2, 2, 5, 8], "
                          "k [2, 2, 7, 8], v [2, 2, 7, 8], softmax/mask_not [2, 1, 1, 7] -> "
                          "y [2, 2, 5, 8]\n"),
              "%s", out);
}

Test(fusion_cli, no_fuse_turns_the_pass_off)
{
    static char out[1 << 16];
    char args[768];
    const char *model = tu_data("fusion/scale_div_after.onnx");
    snprintf(args, sizeof args, "info --optimized --no-fuse %s", model);
    cr_assert_eq(run_cli(args, out, sizeof out), 0, "%s", out);
    cr_assert(strstr(out, "optimized graph: 5 nodes, 0 fused attention nodes (fusion off)\n"), "%s",
              out);
    cr_assert(strstr(out, "Softmax-17"), "%s", out);
    snprintf(args, sizeof args, "run --no-fuse --random-inputs %s", model);
    cr_assert_eq(run_cli(args, out, sizeof out), 0, "%s", out);
    cr_assert(strstr(out, "output y: float32 [2, 2, 5, 8]"), "%s", out);
    snprintf(args, sizeof args, "test --no-fuse %s", tu_data("fusion/examples/keras_attention"));
    cr_assert_eq(run_cli(args, out, sizeof out), 0, "%s", out);
    cr_assert(strstr(out, "1 passed, 0 failed, 0 skipped"), "%s", out);
}
