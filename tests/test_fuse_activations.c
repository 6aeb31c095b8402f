/*
 * GELU fusion (runtime/passes/fuse_gelu.c) and MatMul + bias + activation +
 * residual fusion (runtime/passes/fuse_matmul.c): which subgraphs become one node,
 * that fused and unfused sessions compute the same outputs and match the
 * references, the cases left alone, the passes' error paths, and what the
 * CLI reports. Models come from tests/data/make_act_fusion_models.py.
 */
#include <criterion/criterion.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>

#include "half.h"
#include "ir.h"
#include "kernel_host.h"
#include "loader.h"
#include "pass_harness.h"
#include "passes.h"
#include "qkv.h"
#include "registry.h"
#include "session.h"
#include "test_util.h"

typedef struct opened {
    qkv_session *s;
    const qkv_ir_graph *g; /* the session's graph after the passes */
} opened;

static const char *model_path(const char *name)
{
    static char path[512];
    char rel[256];
    snprintf(rel, sizeof rel, "actfusion/%s.onnx", name);
    snprintf(path, sizeof path, "%s", tu_data(rel));
    return path;
}

/* backends: qkv_session_options.backends (NULL: every backend, so plugins
 * such as oneDNN may take the fused nodes; "cpu": the built-in kernels). */
static opened open_on(const char *name, bool fuse, const char *backends)
{
    qkv_session_options opts;
    qkv_session_options_init(&opts);
    opts.disable_fusion = !fuse;
    opts.backends = backends;
    opened o = {0};
    qkv_error err = {0};
    qkv_status st = qkv_session_create(model_path(name), &opts, &o.s, &err);
    cr_assert_eq(st, QKV_OK, "%s: %s", name, err.message);
    o.g = qkv_session_model(o.s)->graph;
    return o;
}

static opened open_model(const char *name, bool fuse) { return open_on(name, fuse, "cpu"); }

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

/* element k of a float32 or float16 tensor */
static double elem(const qkv_tensor *t, size_t k)
{
    if (t->dtype == QKV_DTYPE_FLOAT16)
        return qkv_f16_to_f32(((const uint16_t *)t->data)[k]);
    return ((const float *)t->data)[k];
}

static size_t numel(const qkv_tensor *t)
{
    size_t n = 1;
    for (int32_t k = 0; k < t->rank; k++)
        n *= (size_t)t->dims[k];
    return n;
}

/* |got - want| <= atol + rtol |want| elementwise, same dtype and shape. */
static void assert_close(const qkv_tensor *got, const qkv_tensor *want, double rtol, double atol,
                         const char *what)
{
    cr_assert_eq(got->dtype, want->dtype, "%s: dtype", what);
    cr_assert_eq(got->rank, want->rank, "%s: rank", what);
    for (int32_t k = 0; k < got->rank; k++)
        cr_assert_eq(got->dims[k], want->dims[k], "%s: dim %d", what, k);
    for (size_t k = 0; k < numel(got); k++) {
        double a = elem(got, k), b = elem(want, k);
        cr_assert(fabs(a - b) <= atol + rtol * fabs(b) || (isnan(a) && isnan(b)),
                  "%s: element %zu is %.9g, expected %.9g", what, k, a, b);
    }
}

/*
 * Runs the model's stored inputs through a fused and an unfused session on
 * `backends`: fused == unfused within (rtol 1e-4, atol 1e-5) and both == the
 * stored reference within (ref_rtol, ref_atol).
 */
static void compare_on(const char *name, const char *backends, double ref_rtol, double ref_atol)
{
    opened f = open_on(name, true, backends), p = open_on(name, false, backends);
    const qkv_model *m = qkv_session_model(f.s);
    size_t n_in = qkv_model_input_count(m), n_out = qkv_model_output_count(m);
    cr_assert(n_in <= 4 && n_out <= 4);
    qkv_tensor in[4], want[4];
    char rel[256];
    for (size_t k = 0; k < n_in; k++) {
        snprintf(rel, sizeof rel, "actfusion/%s_input_%zu.pb", name, k);
        tu_read_pb(tu_data(rel), &in[k]);
    }
    for (size_t k = 0; k < n_out; k++) {
        snprintf(rel, sizeof rel, "actfusion/%s_output_%zu.pb", name, k);
        tu_read_pb(tu_data(rel), &want[k]);
    }
    qkv_context *cf, *cp;
    qkv_error err = {0};
    cr_assert_eq(qkv_context_create(f.s, &cf, &err), QKV_OK, "%s", err.message);
    cr_assert_eq(qkv_context_create(p.s, &cp, &err), QKV_OK, "%s", err.message);
    cr_assert_eq(qkv_run(cf, in, n_in, &err), QKV_OK, "%s fused: %s", name, err.message);
    cr_assert_eq(qkv_run(cp, in, n_in, &err), QKV_OK, "%s unfused: %s", name, err.message);
    for (size_t k = 0; k < n_out; k++) {
        const qkv_tensor *a = qkv_context_output(cf, k), *b = qkv_context_output(cp, k);
        cr_assert(a && b, "%s: output %zu missing", name, k);
        /* one rounding of the fused op against one per unfused op, and the
         * vectorised erf against libm's: a few ulps apart */
        bool half = a->dtype == QKV_DTYPE_FLOAT16;
        assert_close(a, b, half ? 2e-3 : 1e-4, half ? 2e-3 : 1e-5, "fused vs unfused");
        assert_close(a, &want[k], ref_rtol, ref_atol, "fused vs reference");
        assert_close(b, &want[k], ref_rtol, ref_atol, "unfused vs reference");
    }
    qkv_context_destroy(cf);
    qkv_context_destroy(cp);
    for (size_t k = 0; k < n_in; k++)
        qkv_tensor_data_free(&in[k]);
    for (size_t k = 0; k < n_out; k++)
        qkv_tensor_data_free(&want[k]);
    cr_assert_eq(qkv_session_fusion_count(p.s, "gelu"), 0);
    cr_assert_eq(qkv_session_fusion_count(p.s, "matmul"), 0);
    qkv_session_destroy(f.s);
    qkv_session_destroy(p.s);
}

/* compare_on the built-in kernels and on every backend (oneDNN, OpenBLAS
 * when built); returns the fused built-in session (the caller destroys it)
 * for checks on its graph. */
static opened check_model(const char *name, double ref_rtol, double ref_atol)
{
    compare_on(name, "cpu", ref_rtol, ref_atol);
    compare_on(name, NULL, ref_rtol, ref_atol);
    return open_model(name, true);
}

/* float32 references in float64: the ops' own float32 rounding */
#define RTOL 1e-4
#define ATOL 1e-5

/* ---- GELU ----------------------------------------------------------------------------- */

static void check_gelu(const char *name, size_t want)
{
    opened f = check_model(name, RTOL, ATOL);
    cr_assert_eq(qkv_session_fusion_count(f.s, "gelu"), want, "%s: %zu gelu fusions", name,
                 qkv_session_fusion_count(f.s, "gelu"));
    cr_assert_eq(count_op(f.g, "Gelu"), want);
    if (want) {
        cr_assert_eq(count_op(f.g, "Erf"), 0);
        cr_assert_eq(f.g->n_nodes, want, "%s: only Gelu nodes are left", name);
        const qkv_ir_node *gelu = find_op(f.g, "Gelu");
        cr_assert_str_eq(gelu->domain, "");
        cr_assert_eq(gelu->opset, 20, "created as Gelu-20 whatever the model imports");
        cr_assert_not_null(gelu->kernel_state, "its init ran");
    } else {
        cr_assert_eq(count_op(f.g, "Erf"), 1, "%s: the Erf stays", name);
    }
    qkv_session_destroy(f.s);
}

Test(fuse_gelu, torch_form_div_erf_add_mul_mul) { check_gelu("gelu_torch", 1); }

Test(fuse_gelu, constants_first_and_mul_by_rsqrt2) { check_gelu("gelu_swapped", 1); }

Test(fuse_gelu, half_of_x_first) { check_gelu("gelu_half_first", 1); }

Test(fuse_gelu, half_of_the_sum) { check_gelu("gelu_half_of_sum", 1); }

Test(fuse_gelu, div_by_two_last) { check_gelu("gelu_div_two", 1); }

Test(fuse_gelu, opset13_model_with_float32_rounded_sqrt2) { check_gelu("gelu_opset13", 1); }

Test(fuse_gelu, two_in_a_row_with_rank1_constants) { check_gelu("gelu_twice", 2); }

Test(fuse_gelu, float16)
{
    /* float16 reference: the graph rounds to float16 after every op */
    opened f = check_model("gelu_f16", 4e-3, 4e-3);
    cr_assert_eq(qkv_session_fusion_count(f.s, "gelu"), 1);
    cr_assert_eq(count_op(f.g, "Gelu"), 1);
    qkv_session_destroy(f.s);
}

Test(fuse_gelu, not_for_another_constant) { check_gelu("nogelu_wrong_constant", 0); }

Test(fuse_gelu, not_when_erf_is_a_graph_output) { check_gelu("nogelu_erf_is_an_output", 0); }

Test(fuse_gelu, not_when_the_product_reads_another_tensor)
{
    check_gelu("nogelu_other_operand", 0);
}

Test(fuse_gelu, not_when_a_constant_broadcasts_to_a_higher_rank)
{
    check_gelu("nogelu_broadcast_constant", 0);
}

Test(fuse_gelu, fusion_count_of_null_or_unknown_pass_is_zero)
{
    cr_assert_eq(qkv_session_fusion_count(NULL, "gelu"), 0);
    opened f = open_model("gelu_torch", true);
    cr_assert_eq(qkv_session_fusion_count(f.s, NULL), 0);
    cr_assert_eq(qkv_session_fusion_count(f.s, "softmax"), 0);
    cr_assert_eq(qkv_session_fusion_count(f.s, "attention"), qkv_session_fused_count(f.s));
    qkv_session_destroy(f.s);
}

/* ---- the passes on their own ---------------------------------------------------------- */

Test(fuse_gelu_pass, fuses_nothing_without_a_gelu_kernel)
{
    qkv_registry *reg = ph_builtins(), *empty = qkv_registry_create();
    qkv_model *model = ph_prepare(model_path("gelu_torch"), reg);
    size_t before = model->graph->n_nodes, fused = 99;
    qkv_error err = {0};
    cr_assert_eq(qkv_pass_fuse_gelu(model->graph, empty, &fused, &err), QKV_OK);
    cr_assert_eq(fused, 0);
    cr_assert_eq(model->graph->n_nodes, before);
    ph_release(model);
    qkv_registry_destroy(empty);
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

static qkv_kernel refusing_kernel(const char *domain, const char *op, int64_t since)
{
    qkv_kernel k = {
        .struct_size = sizeof(qkv_kernel),
        .abi_version = QKV_ABI_VERSION,
        .domain = domain,
        .op_type = op,
        .since_version = since,
        .min_inputs = 1,
        .max_inputs = 4,
        .min_outputs = 1,
        .max_outputs = 1,
        .init = refusing_init,
        .compute = stub_compute,
    };
    return k;
}

Test(fuse_gelu_pass, init_failure_is_reported_and_leaves_the_graph_intact)
{
    qkv_registry *reg = ph_builtins(), *stub = qkv_registry_create();
    qkv_error err = {0};
    qkv_kernel k = refusing_kernel("", "Gelu", 20);
    cr_assert_eq(qkv_registry_add(stub, &k, "test", &err), QKV_OK, "%s", err.message);
    qkv_model *model = ph_prepare(model_path("gelu_torch"), reg);
    size_t before = model->graph->n_nodes, fused = 99;
    qkv_status st = qkv_pass_fuse_gelu(model->graph, stub, &fused, &err);
    cr_assert_eq(st, QKV_ERR_UNSUPPORTED);
    cr_assert(strstr(err.message, "gelu fusion: ") == err.message, "%s", err.message);
    cr_assert(strstr(err.message, "/Gelu"), "%s", err.message);
    cr_assert(strstr(err.message, "this stub refuses every node"), "%s", err.message);
    cr_assert_eq(fused, 0);
    cr_assert_eq(model->graph->n_nodes, before);
    cr_assert_eq(model->graph->n_order, before);
    cr_assert_eq(count_op(model->graph, "Erf"), 1);
    cr_assert_eq(count_op(model->graph, "Gelu"), 0);
    ph_release(model);
    qkv_registry_destroy(stub);
    qkv_registry_destroy(reg);
}

/* ---- a PyTorch export ----------------------------------------------------------------- */

Test(fuse_activations, torch_transformer_encoder_with_gelu)
{
    /* PyTorch eager float32 reference: rtol 1e-3, atol 1e-5 over two layers */
    opened f = check_model("torch_encoder_gelu", 1e-3, 1e-5);
    cr_assert_eq(qkv_session_fusion_count(f.s, "gelu"), 2, "one GELU per layer");
    cr_assert_eq(count_op(f.g, "Erf"), 0);
    /* per layer: the QKV projection + bias; linear1 + bias + GELU; linear2
     * + bias + residual (out_proj is a Gemm: not this pass's) */
    cr_assert_eq(qkv_session_fusion_count(f.s, "matmul"), 6);
    cr_assert_eq(count_op(f.g, "Gelu"), 0, "both Gelu nodes went into FusedMatMul");
    cr_assert_eq(count_op(f.g, "MatMul"), 0);
    qkv_session_destroy(f.s);
}

/* ---- MatMul chains ---------------------------------------------------------------------- */

static const char *attr_string(const qkv_ir_node *n, const char *name)
{
    const qkv_ir_attr *a = qkv_node_attr(n, name);
    return a && a->type == QKV_ATTR_STRING ? a->s : "";
}

/* name fuses into one FusedMatMul with that activation, bias and residual
 * (or into nothing when activation is NULL). */
static void check_mm(const char *name, const char *activation, bool bias, bool residual)
{
    opened f = check_model(name, RTOL, ATOL);
    size_t want = activation ? 1 : 0;
    cr_assert_eq(qkv_session_fusion_count(f.s, "matmul"), want, "%s: %zu matmul fusions", name,
                 qkv_session_fusion_count(f.s, "matmul"));
    cr_assert_eq(count_op(f.g, "FusedMatMul"), want);
    if (!activation) {
        cr_assert_eq(count_op(f.g, "MatMul"), 1, "%s: the MatMul stays", name);
        qkv_session_destroy(f.s);
        return;
    }
    cr_assert_eq(f.g->n_nodes, 1, "%s: one node is left", name);
    const qkv_ir_node *n = find_op(f.g, "FusedMatMul");
    cr_assert_str_eq(n->domain, "qkv");
    cr_assert_eq(n->opset, 1);
    cr_assert_str_eq(attr_string(n, "activation"), activation);
    cr_assert_eq(n->n_inputs >= 3 && n->inputs[2] >= 0, bias, "%s: bias input", name);
    cr_assert_eq(n->n_inputs >= 4 && n->inputs[3] >= 0, residual, "%s: residual input", name);
    if (bias) /* always a (N) vector, whatever shape the model's bias had */
        cr_assert_eq(f.g->values[n->inputs[2]].rank, 1);
    qkv_session_destroy(f.s);
}

Test(fuse_matmul, bias_erf_gelu_and_residual)
{
    check_mm("mm_bias_gelu_residual", "gelu", true, true);
    opened f = open_model("mm_bias_gelu_residual", true);
    cr_assert_eq(qkv_session_fusion_count(f.s, "gelu"), 1, "the GELU pass ran first");
    qkv_session_destroy(f.s);
}

Test(fuse_matmul, constant_b_is_packed_once_and_the_original_released)
{
    opened f = open_model("mm_bias_relu", true);
    size_t released = 0, packed = qkv_session_packed_bytes(f.s, &released);
    cr_assert_eq(released, 16 * 24 * sizeof(float), "w (16, 24) released: %zu", released);
    cr_assert_geq(packed, released);
    qkv_session_destroy(f.s);
}

Test(fuse_matmul, bias_as_first_add_operand) { check_mm("mm_bias_first", "", true, false); }

Test(fuse_matmul, rank3_bias_and_relu) { check_mm("mm_bias_relu", "relu", true, false); }

Test(fuse_matmul, gelu_tanh_node_and_residual_first)
{
    check_mm("mm_bias_gelu_tanh_residual", "gelu_tanh", true, true);
}

Test(fuse_matmul, gelu_node_without_bias) { check_mm("mm_gelu", "gelu", false, false); }

Test(fuse_matmul, residual_only) { check_mm("mm_residual", "", false, true); }

Test(fuse_matmul, one_dimensional_a) { check_mm("mm_1d_bias", "", true, false); }

Test(fuse_matmul, dynamic_batch) { check_mm("mm_dynamic_batch", "relu", true, false); }

Test(fuse_matmul, not_a_matmul_alone) { check_mm("nomm_alone", NULL, false, false); }

Test(fuse_matmul, not_when_the_product_is_used_twice)
{
    check_mm("nomm_output_used_twice", NULL, false, false);
}

Test(fuse_matmul, not_for_a_bias_that_is_not_a_row)
{
    check_mm("nomm_bias_not_a_row", NULL, false, false);
}

Test(fuse_matmul, not_for_a_batched_b) { check_mm("nomm_batched_b", NULL, false, false); }

Test(fuse_matmul, not_for_a_residual_that_broadcasts)
{
    check_mm("nomm_residual_broadcasts", NULL, false, false);
}

Test(fuse_matmul_pass, fuses_nothing_without_a_fused_matmul_kernel)
{
    qkv_registry *reg = ph_builtins(), *empty = qkv_registry_create();
    qkv_model *model = ph_prepare(model_path("mm_bias_relu"), reg);
    size_t before = model->graph->n_nodes, fused = 99;
    qkv_error err = {0};
    cr_assert_eq(qkv_pass_fuse_matmul(model->graph, empty, &fused, &err), QKV_OK);
    cr_assert_eq(fused, 0);
    cr_assert_eq(model->graph->n_nodes, before);
    ph_release(model);
    qkv_registry_destroy(empty);
    qkv_registry_destroy(reg);
}

Test(fuse_matmul_pass, init_failure_is_reported_and_leaves_the_graph_intact)
{
    qkv_registry *reg = ph_builtins(), *stub = qkv_registry_create();
    qkv_error err = {0};
    qkv_kernel k = refusing_kernel("qkv", "FusedMatMul", 1);
    cr_assert_eq(qkv_registry_add(stub, &k, "test", &err), QKV_OK, "%s", err.message);
    qkv_model *model = ph_prepare(model_path("mm_bias_relu"), reg);
    size_t before = model->graph->n_nodes, fused = 99;
    qkv_status st = qkv_pass_fuse_matmul(model->graph, stub, &fused, &err);
    cr_assert_eq(st, QKV_ERR_UNSUPPORTED);
    cr_assert(strstr(err.message, "matmul fusion: ") == err.message, "%s", err.message);
    cr_assert(strstr(err.message, "/FusedMatMul"), "%s", err.message);
    cr_assert(strstr(err.message, "this stub refuses every node"), "%s", err.message);
    cr_assert_eq(fused, 0);
    cr_assert_eq(model->graph->n_nodes, before);
    cr_assert_eq(count_op(model->graph, "MatMul"), 1);
    cr_assert_eq(count_op(model->graph, "Relu"), 1);
    ph_release(model);
    qkv_registry_destroy(stub);
    qkv_registry_destroy(reg);
}

/* ---- CLI ------------------------------------------------------------------------------ */

/* Runs `qkv ARGS` with stdout and stderr into buf; returns the exit status. */
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

Test(fuse_activations_cli, info_optimized_counts_each_fusion)
{
    static char out[1 << 17];
    char args[768];
    snprintf(args, sizeof args, "info --optimized %s", model_path("torch_encoder_gelu"));
    cr_assert_eq(run_cli(args, out, sizeof out), 0, "%s", out);
    cr_assert(strstr(out, "optimized graph: 58 nodes, 2 fused attention nodes, 2 GELU "
                          "subgraphs fused, 6 FusedMatMul nodes\n"),
              "%s", out);
    cr_assert(strstr(out, "  /layers.0/linear1/MatMul/FusedMatMul  qkv:FusedMatMul-1  "), "%s",
              out);
    snprintf(args, sizeof args, "info --optimized --no-fuse %s",
             model_path("mm_bias_gelu_residual"));
    cr_assert_eq(run_cli(args, out, sizeof out), 0, "%s", out);
    cr_assert(strstr(out, "optimized graph: 8 nodes, 0 fused attention nodes (fusion off)\n"), "%s",
              out);
    cr_assert(strstr(out, "Erf-17"), "%s", out);
}

Test(fuse_activations, constant_nodes_count_when_folding_is_off)
{
    /* folding off: the GELU constants are Constant nodes' outputs; the pass
     * reads them and removes the Constant nodes nothing reads afterwards */
    qkv_session_options opts;
    qkv_session_options_init(&opts);
    opts.disable_folding = 1;
    qkv_session *s = NULL, *plain = NULL;
    qkv_error err = {0};
    const char *path = model_path("torch_encoder_gelu");
    cr_assert_eq(qkv_session_create(path, &opts, &s, &err), QKV_OK, "%s", err.message);
    opts.disable_fusion = 1;
    cr_assert_eq(qkv_session_create(path, &opts, &plain, &err), QKV_OK, "%s", err.message);
    const qkv_ir_graph *g = qkv_session_model(s)->graph, *p = qkv_session_model(plain)->graph;
    cr_assert_eq(qkv_session_fusion_count(s, "gelu"), 2);
    cr_assert_eq(count_op(g, "Erf"), 0);
    /* three Constant nodes (sqrt 2, 1, 0.5) per GELU went with it */
    cr_assert_eq(count_op(g, "Constant") + 6, count_op(p, "Constant"), "%zu vs %zu",
                 count_op(g, "Constant"), count_op(p, "Constant"));
    qkv_tensor x, want;
    tu_read_pb(tu_data("actfusion/torch_encoder_gelu_input_0.pb"), &x);
    tu_read_pb(tu_data("actfusion/torch_encoder_gelu_output_0.pb"), &want);
    qkv_context *c;
    cr_assert_eq(qkv_context_create(s, &c, &err), QKV_OK, "%s", err.message);
    cr_assert_eq(qkv_run(c, &x, 1, &err), QKV_OK, "%s", err.message);
    assert_close(qkv_context_output(c, 0), &want, 1e-3, 1e-5, "folding off vs reference");
    qkv_context_destroy(c);
    qkv_tensor_data_free(&x);
    qkv_tensor_data_free(&want);
    qkv_session_destroy(s);
    qkv_session_destroy(plain);
}
