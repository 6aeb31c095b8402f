/*
 * test_functions.c - model-local functions inlined at load: results against
 * numpy references (tests/data/make_function_models.py), the inlined IR
 * (names unique per call site, subgraphs renamed, opsets from the function)
 * and every refusal with its status and message.
 */
#include <criterion/criterion.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "ir.h"
#include "loader.h"
#include "qkv.h"
#include "test_util.h"

/* float32 against numpy's float64 reference: a few ulps of exp/erf and of a
 * sum of 3 or 12 terms. */
#define RTOL 1e-5f
#define ATOL 1e-6f

static qkv_model *load_ok(const char *name)
{
    char rel[256];
    snprintf(rel, sizeof rel, "functions/%s.onnx", name);
    qkv_model *m = NULL;
    qkv_error err = {0};
    cr_assert_eq(qkv_model_load_file(tu_data(rel), &m, &err), QKV_OK, "%s: %s", name, err.message);
    return m;
}

/* Loading fails with st, the message holds a and b (b may be NULL), and the
 * output pointer is left alone. */
static void load_fails(const char *name, qkv_status st, const char *a, const char *b)
{
    char rel[256];
    snprintf(rel, sizeof rel, "functions/%s.onnx", name);
    qkv_model *sentinel = (qkv_model *)(uintptr_t)0x1234, *m = sentinel;
    qkv_error err = {0};
    qkv_status got = qkv_model_load_file(tu_data(rel), &m, &err);
    cr_assert_eq(got, st, "%s: status %s (%s), expected %s", name, qkv_status_string(got),
                 err.message, qkv_status_string(st));
    cr_assert_eq(m, sentinel, "%s: *out changed on failure", name);
    cr_assert(strstr(err.message, a), "%s: message '%s' lacks '%s'", name, err.message, a);
    if (b)
        cr_assert(strstr(err.message, b), "%s: message '%s' lacks '%s'", name, err.message, b);
}

/* Runs functions/<name>.onnx on its n_in reference inputs and compares its
 * n_out outputs with the references. */
static void run_model(const char *name, size_t n_in, size_t n_out)
{
    char path[256];
    snprintf(path, sizeof path, "functions/%s.onnx", name);
    qkv_session *s = NULL;
    qkv_error err = {0};
    cr_assert_eq(qkv_session_create(tu_data(path), NULL, &s, &err), QKV_OK, "%s: %s", name,
                 err.message);
    qkv_context *c = NULL;
    cr_assert_eq(qkv_context_create(s, &c, &err), QKV_OK, "%s", err.message);
    qkv_tensor in[4];
    for (size_t k = 0; k < n_in; k++) {
        snprintf(path, sizeof path, "functions/%s_input_%zu.pb", name, k);
        tu_read_pb(tu_data(path), &in[k]);
    }
    cr_assert_eq(qkv_run(c, in, n_in, &err), QKV_OK, "%s: %s", name, err.message);
    for (size_t k = 0; k < n_out; k++) {
        qkv_tensor want;
        snprintf(path, sizeof path, "functions/%s_output_%zu.pb", name, k);
        tu_read_pb(tu_data(path), &want);
        tu_assert_close(qkv_context_output(c, k), &want, RTOL, ATOL);
        qkv_tensor_data_free(&want);
    }
    for (size_t k = 0; k < n_in; k++)
        qkv_tensor_data_free(&in[k]);
    qkv_context_destroy(c);
    qkv_session_destroy(s);
}

static const qkv_ir_node *node_named(const qkv_ir_graph *g, const char *name)
{
    for (size_t k = 0; k < g->n_nodes; k++)
        if (strcmp(g->nodes[k].name, name) == 0)
            return &g->nodes[k];
    cr_assert_fail("no node '%s' in graph '%s'", name, g->name);
    return NULL;
}

static const char *value_name(const qkv_ir_graph *g, int32_t id)
{
    cr_assert_geq(id, 0);
    return g->values[id].name;
}

/* ---- results ------------------------------------------------------------------- */

Test(functions, two_calls_of_one_function_compute_swish_twice) { run_model("two_calls", 1, 2); }

Test(functions, attribute_references_take_each_callers_values)
{
    run_model("attr_refs", 1, 2); /* the second call leaves alpha to LeakyRelu's default */
}

Test(functions, nested_call_and_a_domain_only_the_function_imports) { run_model("nested", 2, 1); }

Test(functions, body_uses_the_functions_opset)
{
    run_model("function_opset", 1, 1); /* Softmax-11 over the flattened [2, 12] */
}

Test(functions, omitted_formal_inputs_become_omitted_inputs) { run_model("omitted_input", 1, 1); }

Test(functions, output_that_is_an_input_passes_it_through)
{
    run_model("pass_through", 1, 2); /* an Identity node makes output 0 */
}

/* ---- the inlined IR ---------------------------------------------------------------- */

Test(functions, inner_values_are_renamed_per_call_site)
{
    qkv_model *m = load_ok("two_calls");
    const qkv_ir_graph *g = m->graph;
    cr_assert_eq(g->n_nodes, 4);
    const qkv_ir_node *sig1 = node_named(g, "first/Swish/sig");
    const qkv_ir_node *mul1 = node_named(g, "first/Swish/mul");
    const qkv_ir_node *sig2 = node_named(g, "#2/Swish/sig");
    const qkv_ir_node *mul2 = node_named(g, "#2/Swish/mul");
    /* formal names become the actual ones, the rest unique per call */
    cr_assert_str_eq(value_name(g, sig1->inputs[0]), "x");
    cr_assert_str_eq(value_name(g, mul1->outputs[0]), "a");
    cr_assert_str_eq(value_name(g, sig2->inputs[0]), "a");
    cr_assert_str_eq(value_name(g, mul2->outputs[0]), "b");
    cr_assert_str_eq(value_name(g, sig1->outputs[0]), "Swish#1/s");
    cr_assert_str_eq(value_name(g, sig2->outputs[0]), "Swish#2/s");
    cr_assert_eq(mul1->inputs[1], sig1->outputs[0]);
    cr_assert_eq(mul2->inputs[1], sig2->outputs[0]);
    qkv_model_destroy(m);
}

Test(functions, inlined_nodes_carry_their_functions_opset)
{
    qkv_model *m = load_ok("function_opset");
    cr_assert_eq(m->graph->n_nodes, 1);
    cr_assert_str_eq(m->graph->nodes[0].op_type, "Softmax");
    cr_assert_eq(m->graph->nodes[0].opset, 11);
    qkv_model_destroy(m);
    m = load_ok("nested");
    const qkv_ir_node *gelu = node_named(m->graph, "block/Block/gelu");
    cr_assert_str_eq(gelu->domain, "com.microsoft");
    cr_assert_eq(gelu->opset, 1);
    const qkv_ir_node *mm = node_named(m->graph, "block/Block/proj/Proj/#0");
    cr_assert_str_eq(mm->op_type, "MatMul");
    cr_assert_eq(mm->opset, 17);
    qkv_model_destroy(m);
}

Test(functions, left_out_attribute_is_not_set)
{
    qkv_model *m = load_ok("attr_refs");
    const qkv_ir_graph *g = m->graph;
    cr_assert_eq(g->n_nodes, 6);
    for (size_t k = 0; k < g->n_nodes; k++) {
        const qkv_ir_node *n = &g->nodes[k];
        if (strcmp(n->op_type, "LeakyRelu") != 0)
            continue;
        bool second = strncmp(n->name, "#2/", 3) == 0;
        cr_assert_eq(n->n_attrs, second ? 0u : 1u, "%s", n->name);
        if (!second) {
            cr_assert_str_eq(n->attrs[0].name, "alpha");
            cr_assert_float_eq(n->attrs[0].f, 0.2f, 1e-7f);
        }
    }
    qkv_model_destroy(m);
}

Test(functions, subgraphs_in_a_body_read_the_renamed_values)
{
    qkv_model *m = load_ok("subgraph_in_function");
    const qkv_ir_graph *g = m->graph;
    cr_assert_eq(g->n_nodes, 4);
    const qkv_ir_node *if2 = node_named(g, "p2/Pick/if");
    cr_assert_str_eq(value_name(g, if2->outputs[0]), "y2");
    const qkv_ir_attr *then_a = NULL, *else_a = NULL;
    for (size_t k = 0; k < if2->n_attrs; k++) {
        if (strcmp(if2->attrs[k].name, "then_branch") == 0)
            then_a = &if2->attrs[k];
        if (strcmp(if2->attrs[k].name, "else_branch") == 0)
            else_a = &if2->attrs[k];
    }
    cr_assert(then_a && else_a);
    /* then reads the second call's t, else its x (the first call's y1) */
    const qkv_ir_graph *tg = then_a->graphs[0], *eg = else_a->graphs[0];
    cr_assert_str_eq(value_name(tg, tg->nodes[0].inputs[0]), "Pick#2/t");
    cr_assert_str_eq(value_name(eg, eg->nodes[0].inputs[0]), "y1");
    qkv_model_destroy(m);
}

/* ---- refusals ------------------------------------------------------------------- */

Test(functions, unknown_function_is_refused)
{
    load_fails("unknown_function", QKV_ERR_INVALID_MODEL, "node 'caller' (local.Nope)",
               "no function 'Nope' in domain 'local'");
}

Test(functions, recursion_is_refused_with_the_chain)
{
    load_fails("recursion", QKV_ERR_INVALID_MODEL, "local.F -> local.G -> local.F",
               "recursion is not allowed");
    load_fails("recursion", QKV_ERR_INVALID_MODEL, "node 'top' (local.F)", NULL);
}

Test(functions, reference_to_an_undeclared_attribute_is_refused)
{
    load_fails("missing_attribute", QKV_ERR_INVALID_MODEL, "function 'local.Leaky'",
               "node 'leaky' (LeakyRelu): attribute 'alpha' refers to 'slope', which is not an "
               "attribute of the function");
}

Test(functions, too_many_inputs_are_refused)
{
    load_fails("wrong_input_count", QKV_ERR_INVALID_MODEL,
               "node 'caller' (local.Swish): calling function 'local.Swish'",
               "3 inputs given, the function takes at most 1");
}

Test(functions, undeclared_call_attribute_is_refused)
{
    load_fails("undeclared_attribute", QKV_ERR_INVALID_MODEL, "calling function 'local.Swish'",
               "attribute 'beta' is not an attribute of the function");
}

Test(functions, passed_through_input_left_out_is_refused)
{
    load_fails("pass_through_omitted", QKV_ERR_INVALID_MODEL,
               "node 'caller' (local.Tee): calling function 'local.Tee'",
               "output 0 is the function's input 'x', which the call leaves out");
}

Test(functions, function_defined_twice_is_refused)
{
    load_fails("duplicate_function", QKV_ERR_INVALID_MODEL,
               "function 'local.Swish' is defined twice", NULL);
}

Test(functions, body_node_without_an_opset_import_names_the_call)
{
    load_fails("no_opset_in_function", QKV_ERR_INVALID_MODEL, "node '#1/Lost/thing'",
               "no opset import for domain 'elsewhere'");
}

/* Loading from a buffer goes through the same inlining (and frees it). */
Test(functions, loads_from_a_buffer_too)
{
    FILE *f = fopen(tu_data("functions/nested.onnx"), "rb");
    cr_assert_not_null(f);
    char buf[4096];
    size_t n = fread(buf, 1, sizeof buf, f);
    fclose(f);
    cr_assert_lt(n, sizeof buf);
    qkv_model *m = NULL;
    qkv_error err = {0};
    cr_assert_eq(qkv_model_load_buffer(buf, n, NULL, &m, &err), QKV_OK, "%s", err.message);
    cr_assert_eq(m->graph->n_nodes, 2);
    qkv_model_destroy(m);
}
