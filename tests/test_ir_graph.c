/*
 * test_ir_graph.c - the IR graph functions of runtime/ir/ir_graph.c on graphs
 * built by hand: values, nodes, attributes, and qkv_graph_finalize (dead
 * nodes, producers, consumers, topological order, every refusal).
 */
#include <criterion/criterion.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "error.h"
#include "ir.h"
#include "str_util.h"

static int32_t val(qkv_ir_graph *g, const char *name, qkv_value_kind kind)
{
    int32_t id = qkv_graph_add_value(g, name, kind, NULL);
    cr_assert_geq(id, 0, "add_value %s", name);
    return id;
}

/* A node reading in[0..n_in) and writing out[0..n_out). */
static int32_t node(qkv_ir_graph *g, const char *name, const char *op, size_t n_in,
                    const int32_t *in, size_t n_out, const int32_t *out)
{
    int32_t k = qkv_graph_add_node(g, name, op, "", 17, n_in, n_out);
    cr_assert_geq(k, 0);
    for (size_t j = 0; j < n_in; j++)
        g->nodes[k].inputs[j] = in[j];
    for (size_t j = 0; j < n_out; j++)
        g->nodes[k].outputs[j] = out[j];
    return k;
}

#define NODE1(g, name, op, a, y) node(g, name, op, 1, (int32_t[]){a}, 1, (int32_t[]){y})
#define NODE2(g, name, op, a, b, y) node(g, name, op, 2, (int32_t[]){a, b}, 1, (int32_t[]){y})

static void finalize_fails(qkv_ir_graph *g, qkv_status st, const char *a, const char *b)
{
    qkv_error err = {0};
    cr_assert_eq(qkv_graph_finalize(g, &err), st, "%s", err.message);
    cr_assert_eq(err.status, st);
    cr_assert(strstr(err.message, a), "message '%s' lacks '%s'", err.message, a);
    if (b)
        cr_assert(strstr(err.message, b), "message '%s' lacks '%s'", err.message, b);
}

static void finalize_ok(qkv_ir_graph *g)
{
    qkv_error err = {0};
    cr_assert_eq(qkv_graph_finalize(g, &err), QKV_OK, "%s", err.message);
    cr_assert_eq(g->n_order, g->n_nodes);
}

Test(ir_graph, add_value_copies_name_and_refuses_duplicates)
{
    qkv_ir_graph *g = qkv_graph_create("main", NULL);
    cr_assert_not_null(g);
    cr_assert_str_eq(g->name, "main");
    cr_assert_null(g->parent);
    char name[] = "x";
    bool dup = true;
    int32_t x = qkv_graph_add_value(g, name, QKV_VALUE_INPUT, &dup);
    name[0] = 'z'; /* the graph keeps its own copy */
    cr_assert_eq(x, 0);
    cr_assert_not(dup);
    cr_assert_eq(qkv_graph_add_value(g, "y", QKV_VALUE_ACTIVATION, &dup), 1);
    cr_assert_eq(qkv_graph_add_value(g, "x", QKV_VALUE_ACTIVATION, &dup), -1);
    cr_assert(dup);
    cr_assert_eq(g->n_values, 2);
    cr_assert_eq(qkv_graph_find_value(g, "x"), 0);
    cr_assert_eq(qkv_graph_find_value(g, "y"), 1);
    cr_assert_eq(qkv_graph_find_value(g, "z"), -1);
    const qkv_ir_value *v = &g->values[x];
    cr_assert_str_eq(v->name, "x");
    cr_assert_eq(v->kind, QKV_VALUE_INPUT);
    cr_assert_eq(v->dtype, QKV_DTYPE_UNDEFINED);
    cr_assert_eq(v->rank, -1);
    cr_assert_eq(v->dims[0], -1);
    cr_assert_eq(v->producer, -1);
    cr_assert_eq(v->outer_id, -1);
    cr_assert_null(v->data);
    /* many values: growth keeps names and ids */
    char buf[32];
    for (int k = 0; k < 1000; k++) {
        snprintf(buf, sizeof buf, "v%d", k);
        cr_assert_eq(qkv_graph_add_value(g, buf, QKV_VALUE_ACTIVATION, NULL), k + 2);
    }
    cr_assert_eq(qkv_graph_find_value(g, "v999"), 1001);
    cr_assert_str_eq(g->values[1001].name, "v999");
    qkv_graph_destroy(g);
    qkv_graph_destroy(NULL);
}

Test(ir_graph, add_node_starts_with_omitted_inputs_and_outputs)
{
    qkv_ir_graph *g = qkv_graph_create(NULL, NULL);
    cr_assert_str_eq(g->name, "");
    int32_t k = qkv_graph_add_node(g, NULL, "Attention", "ai.onnx", 23, 3, 2);
    cr_assert_eq(k, 0);
    const qkv_ir_node *n = &g->nodes[0];
    cr_assert_str_eq(n->name, "", "a node without a name gets \"\"");
    cr_assert_str_eq(n->op_type, "Attention");
    cr_assert_str_eq(n->domain, "", "ai.onnx is stored as the default domain \"\"");
    cr_assert_eq(n->opset, 23);
    cr_assert_eq(n->n_inputs, 3);
    cr_assert_eq(n->n_outputs, 2);
    for (int j = 0; j < 3; j++)
        cr_assert_eq(n->inputs[j], -1);
    cr_assert_eq(n->outputs[1], -1);
    cr_assert_eq(n->n_attrs, 0);
    cr_assert_eq(n->n_implicit, 0);
    cr_assert_eq(qkv_graph_add_node(g, "c", "Custom", "com.example", 1, 0, 0), 1);
    cr_assert_str_eq(g->nodes[1].domain, "com.example");
    finalize_ok(g); /* omitted inputs and outputs are fine */
    qkv_graph_destroy(g);
}

Test(ir_graph, finalize_links_producers_and_consumers_in_file_order)
{
    qkv_ir_graph *g = qkv_graph_create("g", NULL);
    int32_t x = val(g, "x", QKV_VALUE_INPUT), w = val(g, "w", QKV_VALUE_CONSTANT);
    int32_t t = val(g, "t", QKV_VALUE_ACTIVATION), y = val(g, "y", QKV_VALUE_ACTIVATION);
    int32_t a = NODE2(g, "mm", "MatMul", x, w, t);
    int32_t b = NODE2(g, "add", "Add", t, t, y); /* the same value in two slots */
    finalize_ok(g);
    cr_assert_eq(g->values[t].producer, a);
    cr_assert_eq(g->values[y].producer, b);
    cr_assert_eq(g->values[x].producer, -1);
    cr_assert_eq(g->values[t].n_consumers, 2, "one entry per input slot");
    cr_assert_eq(g->values[t].consumers[0], b);
    cr_assert_eq(g->values[t].consumers[1], b);
    cr_assert_eq(g->values[w].n_consumers, 1);
    cr_assert_eq(g->values[y].n_consumers, 0);
    cr_assert_eq(g->order[0], a);
    cr_assert_eq(g->order[1], b);
    /* finalize again: nothing doubles */
    finalize_ok(g);
    cr_assert_eq(g->values[t].n_consumers, 2);
    qkv_graph_destroy(g);
}

Test(ir_graph, finalize_sorts_and_prefers_the_smallest_ready_index)
{
    qkv_ir_graph *g = qkv_graph_create("g", NULL);
    int32_t x = val(g, "x", QKV_VALUE_INPUT);
    int32_t t1 = val(g, "t1", QKV_VALUE_ACTIVATION), y = val(g, "y", QKV_VALUE_ACTIVATION);
    int32_t z = val(g, "z", QKV_VALUE_ACTIVATION);
    NODE1(g, "b", "Relu", t1, y); /* 0: needs node 1 */
    NODE1(g, "a", "Neg", x, t1);  /* 1 */
    NODE1(g, "c", "Abs", x, z);   /* 2: independent */
    finalize_ok(g);
    cr_assert_eq(g->order[0], 1);
    cr_assert_eq(g->order[1], 0, "node 0 is ready after node 1 and beats node 2");
    cr_assert_eq(g->order[2], 2);
    cr_assert_eq(g->values[t1].producer, 1, "node indices are not changed by sorting");
    qkv_graph_destroy(g);
}

Test(ir_graph, finalize_refuses_a_value_produced_twice)
{
    qkv_ir_graph *g = qkv_graph_create("g", NULL);
    int32_t x = val(g, "x", QKV_VALUE_INPUT), y = val(g, "y", QKV_VALUE_ACTIVATION);
    NODE1(g, "first", "Relu", x, y);
    NODE1(g, "second", "Neg", x, y);
    finalize_fails(g, QKV_ERR_INVALID_MODEL, "node 'second' (Neg): output 0 'y' is produced twice",
                   "also by node 'first' (Relu)");
    qkv_graph_destroy(g);
}

Test(ir_graph, finalize_refuses_writing_an_input_initializer_or_outer_value)
{
    qkv_ir_graph *g = qkv_graph_create("g", NULL);
    int32_t x = val(g, "x", QKV_VALUE_INPUT), w = val(g, "w", QKV_VALUE_CONSTANT);
    int32_t k = NODE1(g, "n", "Relu", x, x);
    finalize_fails(g, QKV_ERR_INVALID_MODEL, "node 'n' (Relu): output 0 'x' is produced twice",
                   "already a graph input");
    g->nodes[k].outputs[0] = w;
    finalize_fails(g, QKV_ERR_INVALID_MODEL, "output 0 'w' is produced twice",
                   "already an initializer");
    qkv_ir_graph *sub = qkv_graph_create("body", g);
    cr_assert_eq(sub->parent, g);
    int32_t o = val(sub, "x", QKV_VALUE_OUTER);
    sub->values[o].outer_id = x;
    NODE1(sub, "", "Neg", o, o);
    finalize_fails(sub, QKV_ERR_INVALID_MODEL, "node #0 (Neg): output 0 'x' is produced twice",
                   "an enclosing graph's value");
    qkv_graph_destroy(sub);
    qkv_graph_destroy(g);
}

Test(ir_graph, finalize_refuses_an_input_nothing_produces)
{
    qkv_ir_graph *g = qkv_graph_create("g", NULL);
    int32_t x = val(g, "x", QKV_VALUE_INPUT), ghost = val(g, "ghost", QKV_VALUE_ACTIVATION);
    int32_t y = val(g, "y", QKV_VALUE_ACTIVATION);
    NODE2(g, "attn/Softmax_3", "Softmax", x, ghost, y);
    finalize_fails(g, QKV_ERR_INVALID_MODEL,
                   "node 'attn/Softmax_3' (Softmax): input 1 'ghost' is not produced by any node, "
                   "graph input or initializer",
                   NULL);
    qkv_graph_destroy(g);
}

Test(ir_graph, finalize_refuses_a_graph_output_nothing_produces)
{
    qkv_ir_graph *g = qkv_graph_create("g", NULL);
    int32_t y = val(g, "y", QKV_VALUE_ACTIVATION);
    g->outputs = malloc(sizeof *g->outputs);
    g->outputs[0] = y;
    g->n_outputs = 1;
    finalize_fails(g, QKV_ERR_INVALID_MODEL, "graph output 'y' is not produced by any node", NULL);
    qkv_graph_destroy(g);
}

Test(ir_graph, finalize_names_the_nodes_of_a_cycle)
{
    qkv_ir_graph *g = qkv_graph_create("g", NULL);
    int32_t x = val(g, "x", QKV_VALUE_INPUT);
    int32_t a = val(g, "a", QKV_VALUE_ACTIVATION), b = val(g, "b", QKV_VALUE_ACTIVATION);
    int32_t c = val(g, "c", QKV_VALUE_ACTIVATION), y = val(g, "y", QKV_VALUE_ACTIVATION);
    NODE1(g, "head", "Relu", x, y);                                /* 0: not in the cycle */
    NODE2(g, "n1", "Add", x, c, a);                                /* 1 */
    NODE1(g, "n2", "Neg", a, b);                                   /* 2 */
    NODE1(g, "n3", "Abs", b, c);                                   /* 3 */
    NODE1(g, "tail", "Exp", c, val(g, "z", QKV_VALUE_ACTIVATION)); /* downstream of it */
    finalize_fails(g, QKV_ERR_INVALID_MODEL, "the nodes form a cycle: ",
                   "node 'n1' (Add) -> node 'n2' (Neg) -> node 'n3' (Abs) -> node 'n1' (Add)");
    cr_assert_eq(g->n_order, 0);
    cr_assert_null(g->order);
    qkv_graph_destroy(g);
}

Test(ir_graph, finalize_names_a_node_reading_its_own_output)
{
    qkv_ir_graph *g = qkv_graph_create("g", NULL);
    int32_t t = val(g, "t", QKV_VALUE_ACTIVATION);
    NODE1(g, "loop", "Relu", t, t);
    finalize_fails(g, QKV_ERR_INVALID_MODEL, "node 'loop' (Relu) -> node 'loop' (Relu)", NULL);
    qkv_graph_destroy(g);
}

Test(ir_graph, finalize_drops_dead_nodes_and_relinks)
{
    qkv_ir_graph *g = qkv_graph_create("g", NULL);
    int32_t x = val(g, "x", QKV_VALUE_INPUT);
    int32_t t = val(g, "t", QKV_VALUE_ACTIVATION), u = val(g, "u", QKV_VALUE_ACTIVATION);
    int32_t y = val(g, "y", QKV_VALUE_ACTIVATION);
    NODE1(g, "keep1", "Relu", x, t);
    int32_t dead = NODE1(g, "gone", "Neg", t, u);
    NODE1(g, "keep2", "Abs", t, y);
    /* give the dead node attributes: their storage must be freed */
    qkv_ir_attr *attrs = calloc(1, sizeof *attrs);
    attrs[0].name = qkv_strdup("ints");
    attrs[0].type = QKV_ATTR_INTS;
    attrs[0].n = 2;
    attrs[0].ints = calloc(2, sizeof(int64_t));
    g->nodes[dead].attrs = attrs;
    g->nodes[dead].n_attrs = 1;
    finalize_ok(g);
    cr_assert_eq(g->values[t].n_consumers, 2);
    g->nodes[dead].dead = true;
    finalize_ok(g);
    cr_assert_eq(g->n_nodes, 2);
    cr_assert_str_eq(g->nodes[1].name, "keep2", "nodes compacted in order");
    cr_assert_eq(g->values[y].producer, 1);
    cr_assert_eq(g->values[u].producer, -1);
    cr_assert_eq(g->values[t].n_consumers, 1);
    cr_assert_eq(g->values[t].consumers[0], 1);
    /* killing a producer whose value is still read is an error */
    g->nodes[0].dead = true;
    finalize_fails(g, QKV_ERR_INVALID_MODEL, "node 'keep2' (Abs): input 0 't' is not produced",
                   NULL);
    qkv_graph_destroy(g);
}

Test(ir_graph, implicit_inputs_order_nodes_and_count_as_uses)
{
    qkv_ir_graph *g = qkv_graph_create("g", NULL);
    int32_t x = val(g, "x", QKV_VALUE_INPUT), c = val(g, "c", QKV_VALUE_INPUT);
    int32_t late = val(g, "late", QKV_VALUE_ACTIVATION), y = val(g, "y", QKV_VALUE_ACTIVATION);
    int32_t iff = NODE1(g, "if", "If", c, y);         /* 0: its subgraph reads `late` */
    int32_t prod = NODE1(g, "make", "Relu", x, late); /* 1 */
    g->nodes[iff].implicit_inputs = malloc(sizeof(int32_t));
    g->nodes[iff].implicit_inputs[0] = late;
    g->nodes[iff].n_implicit = 1;
    finalize_ok(g);
    cr_assert_eq(g->order[0], prod);
    cr_assert_eq(g->order[1], iff);
    cr_assert_eq(g->values[late].n_consumers, 1);
    cr_assert_eq(g->values[late].consumers[0], iff);
    /* an implicit input nothing produces */
    g->nodes[prod].dead = true;
    finalize_fails(g, QKV_ERR_INVALID_MODEL,
                   "node 'if' (If): a subgraph reads 'late', which is not produced", NULL);
    qkv_graph_destroy(g);
}

Test(ir_graph, finalize_reports_bad_value_ids_as_internal_errors)
{
    qkv_ir_graph *g = qkv_graph_create("g", NULL);
    int32_t x = val(g, "x", QKV_VALUE_INPUT);
    NODE1(g, "n", "Relu", x, 42);
    finalize_fails(g, QKV_ERR_INTERNAL, "node 'n' (Relu): output 0 has bad value id 42", NULL);
    qkv_graph_destroy(g);
}

Test(ir_graph, attributes_are_found_by_name_and_freed_with_everything_they_own)
{
    qkv_ir_graph *g = qkv_graph_create("g", NULL);
    int32_t k = qkv_graph_add_node(g, "n", "Op", "", 1, 0, 0);
    qkv_ir_attr *a = calloc(4, sizeof *a);
    a[0].name = qkv_strdup("strings");
    a[0].type = QKV_ATTR_STRINGS;
    a[0].n = 2;
    a[0].strings = calloc(2, sizeof(char *));
    a[0].strings[0] = qkv_strdup("p");
    a[0].strings[1] = qkv_strdup("q");
    a[1].name = qkv_strdup("tensors");
    a[1].type = QKV_ATTR_TENSORS;
    a[1].n = 2;
    a[1].tensors = calloc(2, sizeof(qkv_tensor));
    a[1].tensors[0].dtype = QKV_DTYPE_STRING; /* string payloads free their elements */
    a[1].tensors[0].data = calloc(1, sizeof(char *));
    ((char **)a[1].tensors[0].data)[0] = qkv_strdup("s");
    a[1].tensors[0].data_bytes = sizeof(char *);
    a[1].tensors[1].dtype = QKV_DTYPE_FLOAT;
    a[1].tensors[1].data = calloc(4, sizeof(float));
    a[1].tensors[1].data_bytes = 16;
    a[2].name = qkv_strdup("graphs");
    a[2].type = QKV_ATTR_GRAPHS;
    a[2].n = 2;
    a[2].graphs = calloc(2, sizeof(qkv_ir_graph *));
    a[2].graphs[0] = qkv_graph_create("b0", g);
    a[2].graphs[1] = NULL; /* partially built: must still be freeable */
    a[3].name = qkv_strdup("s");
    a[3].type = QKV_ATTR_STRING;
    a[3].s = qkv_strdup("text");
    a[3].s_len = 4;
    g->nodes[k].attrs = a;
    g->nodes[k].n_attrs = 4;
    cr_assert_eq(qkv_node_attr(&g->nodes[k], "graphs"), &a[2]);
    cr_assert_eq(qkv_node_attr(&g->nodes[k], "s")->type, QKV_ATTR_STRING);
    cr_assert_null(qkv_node_attr(&g->nodes[k], "missing"));
    cr_assert_null(qkv_node_attr(NULL, "s"));
    qkv_attr_fini(&a[3]); /* fini leaves a zeroed, re-finalizable attribute */
    cr_assert_null(a[3].name);
    qkv_attr_fini(&a[3]);
    qkv_graph_destroy(g); /* frees the rest: valgrind/ASan check it */
}

Test(ir_graph, constants_free_owned_payloads_but_not_borrowed_ones)
{
    static float shared[4];
    qkv_ir_graph *g = qkv_graph_create("g", NULL);
    int32_t a = val(g, "owned", QKV_VALUE_CONSTANT), b = val(g, "borrowed", QKV_VALUE_CONSTANT);
    g->values[a].dtype = QKV_DTYPE_FLOAT;
    g->values[a].data = malloc(16);
    g->values[a].data_bytes = 16;
    g->values[a].dim_params[0] = qkv_strdup("batch");
    g->values[b].dtype = QKV_DTYPE_FLOAT;
    g->values[b].data = shared;
    g->values[b].data_bytes = sizeof shared;
    g->values[b].borrowed = true;
    qkv_graph_destroy(g);
}

Test(ir_graph, model_opset_for_treats_ai_onnx_as_the_default_domain)
{
    qkv_ir_opset opsets[2] = {{(char *)"", 17}, {(char *)"com.microsoft", 1}};
    struct qkv_model m = {0};
    m.opsets = opsets;
    m.n_opsets = 2;
    cr_assert_eq(qkv_model_opset_for(&m, ""), 17);
    cr_assert_eq(qkv_model_opset_for(&m, "ai.onnx"), 17);
    cr_assert_eq(qkv_model_opset_for(&m, NULL), 17);
    cr_assert_eq(qkv_model_opset_for(&m, "com.microsoft"), 1);
    cr_assert_eq(qkv_model_opset_for(&m, "com.example"), -1);
    cr_assert_eq(qkv_model_opset_for(NULL, ""), -1);
}

Test(ir_graph, node_format_is_the_one_way_messages_name_a_node)
{
    char buf[128];
    cr_assert_str_eq(qkv_node_format(buf, sizeof buf, "fc1", 3, NULL, "MatMul", 0),
                     "node 'fc1' (MatMul)");
    cr_assert_str_eq(qkv_node_format(buf, sizeof buf, "", 3, "", "MatMul", 13),
                     "node #3 (MatMul-13)");
    cr_assert_str_eq(
        qkv_node_format(buf, sizeof buf, NULL, SIZE_MAX, "com.microsoft", "MultiHeadAttention", 1),
        "node (com.microsoft.MultiHeadAttention-1)");
    cr_assert_str_eq(qkv_node_format(buf, 12, "a_long_node_name", 0, NULL, "Add", 7), "node 'a_lon",
                     "a cut message stays terminated");
}
