/*
 * test_loader.c - the ONNX loader: valid models into the IR, every refusal
 * with its status and message, external data, TensorProto files.
 * Models come from tests/data/make_models.py (QKV_TEST_DATA).
 */
#include <criterion/criterion.h>
#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ir.h"
#include "loader.h"
#include "qkv.h"

static const char *path_of(const char *rel)
{
    static char bufs[4][1024];
    static int slot;
    char *b = bufs[slot++ % 4];
    snprintf(b, sizeof bufs[0], "%s/%s", QKV_TEST_DATA, rel);
    return b;
}

static qkv_model *load_ok(const char *rel)
{
    qkv_model *m = NULL;
    qkv_error err = {0};
    qkv_status st = qkv_model_load_file(path_of(rel), &m, &err);
    cr_assert_eq(st, QKV_OK, "%s: %s", rel, err.message);
    cr_assert_not_null(m);
    return m;
}

/* Loading rel fails with st, the message holds both substrings (b may be
 * NULL), and the output pointer is left alone. */
static void load_fails(const char *rel, qkv_status st, const char *a, const char *b)
{
    qkv_model *sentinel = (qkv_model *)(uintptr_t)0x1234;
    qkv_model *m = sentinel;
    qkv_error err = {0};
    qkv_status got = qkv_model_load_file(path_of(rel), &m, &err);
    cr_assert_eq(got, st, "%s: status %s (%s), expected %s", rel, qkv_status_string(got),
                 err.message, qkv_status_string(st));
    cr_assert_eq(err.status, st);
    cr_assert_eq(m, sentinel, "%s: *out changed on failure", rel);
    cr_assert(strstr(err.message, a), "%s: message '%s' lacks '%s'", rel, err.message, a);
    if (b)
        cr_assert(strstr(err.message, b), "%s: message '%s' lacks '%s'", rel, err.message, b);
}

static void *read_file(const char *path, size_t *bytes)
{
    FILE *f = fopen(path, "rb");
    cr_assert_not_null(f, "cannot open %s", path);
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    fseek(f, 0, SEEK_SET);
    void *buf = malloc(n > 0 ? (size_t)n : 1);
    cr_assert_eq(fread(buf, 1, (size_t)n, f), (size_t)n);
    fclose(f);
    *bytes = (size_t)n;
    return buf;
}

static const qkv_ir_value *value(const qkv_ir_graph *g, const char *name)
{
    int32_t id = qkv_graph_find_value(g, name);
    cr_assert_geq(id, 0, "no value '%s' in graph '%s'", name, g->name);
    return &g->values[id];
}

static int32_t node_index(const qkv_ir_graph *g, const char *name)
{
    for (size_t k = 0; k < g->n_nodes; k++)
        if (strcmp(g->nodes[k].name, name) == 0)
            return (int32_t)k;
    cr_assert_fail("no node '%s' in graph '%s'", name, g->name);
    return -1;
}

static bool has_id(const int32_t *ids, size_t n, int32_t id)
{
    for (size_t k = 0; k < n; k++)
        if (ids[k] == id)
            return true;
    return false;
}

/* ---- valid models ----------------------------------------------------------------- */

Test(loader, reads_model_metadata_and_opsets)
{
    qkv_model *m = load_ok("mha_small.onnx");
    qkv_model_meta meta = {.struct_size = sizeof(qkv_model_meta)};
    qkv_model_get_meta(m, &meta);
    cr_assert_eq(meta.ir_version, 8);
    cr_assert_eq(meta.model_version, 7);
    cr_assert_str_eq(meta.producer_name, "qkv-tests");
    cr_assert_str_eq(meta.producer_version, "1.0");
    cr_assert_str_eq(meta.domain, "org.qkv.test");
    cr_assert_str_eq(meta.doc_string, "a tiny attention-like block");
    cr_assert_str_eq(meta.graph_name, "mha_small");
    cr_assert_eq(meta.node_count, 4);
    cr_assert_eq(meta.initializer_count, 2);
    cr_assert_eq(meta.initializer_bytes, 16 * 4 + 4 * 4);
    cr_assert_eq(meta.opset_count, 1);
    const char *domain, *key, *val;
    int64_t version;
    qkv_model_opset(m, 0, &domain, &version);
    cr_assert_str_eq(domain, "");
    cr_assert_eq(version, 14);
    cr_assert_eq(qkv_model_opset_for(m, "ai.onnx"), 14);
    cr_assert_eq(meta.metadata_count, 2);
    bool author = false;
    for (size_t k = 0; k < meta.metadata_count; k++) {
        qkv_model_metadata(m, k, &key, &val);
        if (strcmp(key, "author") == 0)
            author = strcmp(val, "qkv") == 0;
    }
    cr_assert(author);
    const char *op;
    qkv_model_node_op(m, 3, &op, &domain);
    cr_assert_str_eq(op, "Softmax");
    cr_assert_str_eq(domain, "");
    qkv_model_destroy(m);
}

Test(loader, reads_inputs_outputs_with_symbolic_and_unknown_dims)
{
    qkv_model *m = load_ok("mha_small.onnx");
    /* B is listed as an input but is an initializer: a constant, not an input */
    cr_assert_eq(qkv_model_input_count(m), 2);
    qkv_value_info vi = {.struct_size = sizeof(qkv_value_info)};
    qkv_model_input(m, 0, &vi);
    cr_assert_str_eq(vi.name, "x");
    cr_assert_eq(vi.dtype, QKV_DTYPE_FLOAT);
    cr_assert_eq(vi.rank, 3);
    cr_assert_eq(vi.dims[0], -1);
    cr_assert_str_eq(vi.dim_params[0], "batch");
    cr_assert_eq(vi.dims[1], 3);
    cr_assert_null(vi.dim_params[1]);
    cr_assert_eq(vi.dims[2], 4);
    qkv_model_input(m, 1, &vi);
    cr_assert_str_eq(vi.name, "scale");
    cr_assert_eq(vi.rank, -1, "no shape at all: rank unknown");
    cr_assert_eq(qkv_model_output_count(m), 1);
    qkv_model_output(m, 0, &vi);
    cr_assert_str_eq(vi.name, "y");
    cr_assert_eq(vi.rank, 3);
    cr_assert_str_eq(vi.dim_params[0], "batch");
    cr_assert_eq(vi.dims[2], -1, "a dim with neither value nor param is unknown");
    cr_assert_null(vi.dim_params[2]);

    const qkv_ir_graph *g = m->graph;
    const qkv_ir_value *b = value(g, "B");
    cr_assert_eq(b->kind, QKV_VALUE_CONSTANT);
    cr_assert_eq(b->rank, 1);
    cr_assert_eq(b->data_bytes, 16);
    cr_assert_float_eq(((const float *)b->data)[1], -0.5f, 0);
    const qkv_ir_value *mm = value(g, "mm"); /* from value_info */
    cr_assert_eq(mm->kind, QKV_VALUE_ACTIVATION);
    cr_assert_eq(mm->dtype, QKV_DTYPE_FLOAT);
    cr_assert_eq(mm->rank, 3);
    cr_assert_str_eq(mm->dim_params[0], "batch");
    cr_assert_eq(mm->producer, node_index(g, "attn/MatMul_0"));
    cr_assert_eq(mm->n_consumers, 1);
    cr_assert_eq(mm->consumers[0], node_index(g, "attn/Add_1"));
    cr_assert(value(g, "y")->is_output);
    cr_assert_eq(g->n_order, 4);
    for (int32_t k = 0; k < 4; k++)
        cr_assert_eq(g->order[k], k, "file order kept when valid");
    const qkv_ir_node *sm = &g->nodes[3];
    cr_assert_eq(sm->opset, 14);
    const qkv_ir_attr *axis = qkv_node_attr(sm, "axis");
    cr_assert_not_null(axis);
    cr_assert_eq(axis->type, QKV_ATTR_INT);
    cr_assert_eq(axis->i, -1);
    qkv_model_destroy(m);
}

Test(loader, loads_from_a_buffer_the_caller_then_frees)
{
    size_t n;
    void *buf = read_file(path_of("mha_small.onnx"), &n);
    qkv_model *m = NULL;
    qkv_error err = {0};
    cr_assert_eq(qkv_model_load_buffer(buf, n, NULL, &m, &err), QKV_OK, "%s", err.message);
    memset(buf, 0xAB, n);
    free(buf);
    const qkv_ir_value *w = value(m->graph, "W");
    cr_assert_float_eq(((const float *)w->data)[15], 15.0f / 16, 0);
    qkv_model_destroy(m);
}

Test(loader, buffer_without_base_dir_refuses_external_data)
{
    size_t n;
    void *buf = read_file(path_of("external_ok.onnx"), &n);
    qkv_model *m = NULL;
    qkv_error err = {0};
    cr_assert_eq(qkv_model_load_buffer(buf, n, NULL, &m, &err), QKV_ERR_INVALID_ARGUMENT);
    cr_assert(strstr(err.message, "initializer 'w_f32': has external data"), "%s", err.message);
    cr_assert_null(m);
    cr_assert_eq(qkv_model_load_buffer(buf, n, QKV_TEST_DATA, &m, &err), QKV_OK, "%s", err.message);
    cr_assert_eq(((const int64_t *)value(m->graph, "w_i64")->data)[1], -9);
    qkv_model_destroy(m);
    free(buf);
}

Test(loader, resolves_outer_values_and_records_implicit_inputs)
{
    qkv_model *m = load_ok("if_outer.onnx");
    const qkv_ir_graph *g = m->graph;
    int32_t x = qkv_graph_find_value(g, "x"), y = qkv_graph_find_value(g, "y");
    int32_t c = qkv_graph_find_value(g, "c");
    const qkv_ir_node *iff = &g->nodes[node_index(g, "the_if")];
    cr_assert(has_id(iff->implicit_inputs, iff->n_implicit, x), "x: read two levels down");
    cr_assert(has_id(iff->implicit_inputs, iff->n_implicit, y), "y: read by else_branch");
    cr_assert(has_id(iff->implicit_inputs, iff->n_implicit, c), "c: read by the nested If");
    cr_assert_eq(iff->n_implicit, 3, "deduplicated");
    /* y's consumers include the If through its implicit input */
    cr_assert(
        has_id(value(g, "y")->consumers, value(g, "y")->n_consumers, node_index(g, "the_if")));
    cr_assert_eq(g->order[0], node_index(g, "abs"), "the If runs after abs (implicit input y)");

    const qkv_ir_attr *then_a = qkv_node_attr(iff, "then_branch");
    cr_assert_not_null(then_a);
    cr_assert_eq(then_a->type, QKV_ATTR_GRAPH);
    const qkv_ir_graph *tg = then_a->graphs[0];
    cr_assert_eq(tg->parent, g);
    const qkv_ir_value *tx = value(tg, "x");
    cr_assert_eq(tx->kind, QKV_VALUE_OUTER);
    cr_assert_eq(tx->outer_id, x);
    cr_assert_eq(tx->rank, 1, "type copied from the enclosing value");
    cr_assert_eq(value(tg, "k")->kind, QKV_VALUE_CONSTANT);
    const qkv_ir_node *nested = &tg->nodes[node_index(tg, "nested_if")];
    int32_t tx_id = qkv_graph_find_value(tg, "x");
    cr_assert(has_id(nested->implicit_inputs, nested->n_implicit, tx_id));
    const qkv_ir_graph *ig = qkv_node_attr(nested, "then_branch")->graphs[0];
    cr_assert_eq(ig->parent, tg);
    cr_assert_eq(value(ig, "x")->kind, QKV_VALUE_OUTER);
    cr_assert_eq(value(ig, "x")->outer_id, tx_id, "outer_id points into the direct parent");
    cr_assert_eq(ig->n_outputs, 1);
    cr_assert_str_eq(ig->values[ig->outputs[0]].name, "it");

    const qkv_ir_graph *eg = qkv_node_attr(iff, "else_branch")->graphs[0];
    cr_assert_eq(value(eg, "y")->outer_id, y);
    qkv_model_destroy(m);
}

/* Every element type: the raw_data model and the typed-field model decode to
 * identical payloads. */
Test(loader, decodes_every_element_type_from_raw_and_typed_fields)
{
    qkv_model *raw = load_ok("dtypes_raw.onnx");
    qkv_model *typed = load_ok("dtypes_typed.onnx");
    const qkv_ir_graph *gr = raw->graph, *gt = typed->graph;
    size_t constants = 0;
    for (size_t k = 0; k < gr->n_values; k++) {
        const qkv_ir_value *a = &gr->values[k];
        if (a->kind != QKV_VALUE_CONSTANT)
            continue;
        constants++;
        const qkv_ir_value *b = value(gt, a->name);
        cr_assert_eq(a->dtype, b->dtype, "%s", a->name);
        cr_assert_eq(a->rank, b->rank, "%s", a->name);
        for (int32_t d = 0; d < a->rank; d++)
            cr_assert_eq(a->dims[d], b->dims[d], "%s", a->name);
        cr_assert_eq(a->data_bytes, b->data_bytes, "%s", a->name);
        if (a->dtype == QKV_DTYPE_STRING)
            continue;
        if (a->data_bytes)
            cr_assert(memcmp(a->data, b->data, a->data_bytes) == 0, "%s differs", a->name);
    }
    cr_assert_eq(constants, 28);
    cr_assert_eq(value(gr, "f32")->dtype, QKV_DTYPE_FLOAT);
    cr_assert_float_eq(((const float *)value(gt, "f32")->data)[2], 3.25f, 0);
    cr_assert_eq(((const int64_t *)value(gt, "i64")->data)[0], -((int64_t)1 << 40));
    cr_assert_eq(((const uint64_t *)value(gt, "u64")->data)[1], UINT64_MAX);
    cr_assert_eq(((const uint32_t *)value(gt, "u32")->data)[1], UINT32_MAX);
    cr_assert_eq(((const int8_t *)value(gt, "i8")->data)[0], -128);
    cr_assert_eq(((const uint16_t *)value(gt, "f16")->data)[2], 0x7BFF, "65504 in half");
    cr_assert_eq(((const uint16_t *)value(gt, "bf16")->data)[0], 0x3F80, "1.0 in bfloat16");
    cr_assert_eq(((const uint8_t *)value(gt, "bool")->data)[1], 0);
    cr_assert_float_eq(((const float *)value(gt, "c64")->data)[1], 2.0f, 0);
    const qkv_ir_value *i4 = value(gt, "i4");
    cr_assert_eq(i4->dtype, QKV_DTYPE_INT4);
    cr_assert_eq(i4->data_bytes, 2, "4 int4 elements packed in 2 bytes");
    cr_assert_eq(((const uint8_t *)i4->data)[0], 0x78);
    cr_assert_eq(value(gt, "u2")->data_bytes, 2, "5 uint2 elements in 2 bytes");
    cr_assert_eq(value(gt, "f8e4m3fn")->dtype, QKV_DTYPE_FLOAT8E4M3FN);
    const qkv_ir_value *e = value(gr, "empty");
    cr_assert_eq(e->rank, 2);
    cr_assert_eq(e->dims[0], 0);
    cr_assert_null(e->data);
    cr_assert_eq(e->data_bytes, 0);
    const qkv_ir_value *s = value(gr, "scalar");
    cr_assert_eq(s->rank, 0);
    cr_assert_eq(*(const int64_t *)s->data, 42);
    const qkv_ir_value *str = value(gt, "str");
    cr_assert_eq(str->dtype, QKV_DTYPE_STRING);
    cr_assert_eq(str->data_bytes, 3 * sizeof(char *));
    char *const *ss = str->data;
    cr_assert_str_eq(ss[0], "hello");
    cr_assert_str_eq(ss[1], "");
    cr_assert_str_eq(ss[2], "w\xc3\xb6rld");
    qkv_model_meta meta = {.struct_size = sizeof(qkv_model_meta)};
    qkv_model_get_meta(typed, &meta);
    cr_assert_eq(meta.initializer_count, 28);
    qkv_model_destroy(raw);
    qkv_model_destroy(typed);
}

Test(loader, reads_external_data)
{
    qkv_model *m = load_ok("external_ok.onnx");
    const qkv_ir_value *f = value(m->graph, "w_f32");
    cr_assert_eq(f->data_bytes, 16);
    cr_assert_float_eq(((const float *)f->data)[3], 4.0f, 0);
    const qkv_ir_value *i = value(m->graph, "w_i64");
    cr_assert_eq(((const int64_t *)i->data)[0], 7, "offset defaults to 0, sub/../ stays inside");
    cr_assert_eq(((const int32_t *)value(m->graph, "w_dir")->data)[1], 6);
    qkv_model_destroy(m);

    m = load_ok("external_saved.onnx"); /* written by onnx.save_model */
    const qkv_ir_value *w = value(m->graph, "w_saved");
    cr_assert_eq(w->data_bytes, 24);
    cr_assert_float_eq(((const float *)w->data)[5], 5.0f, 0);
    qkv_model_destroy(m);
}

Test(loader, converts_attributes_of_every_type)
{
    qkv_model *m = load_ok("attrs.onnx");
    const qkv_ir_graph *g = m->graph;
    const qkv_ir_node *n = &g->nodes[node_index(g, "every_attr")];
    cr_assert_str_eq(n->domain, "org.qkv.test");
    cr_assert_eq(n->opset, 1);
    const qkv_ir_attr *a;
    a = qkv_node_attr(n, "f");
    cr_assert_eq(a->type, QKV_ATTR_FLOAT);
    cr_assert_float_eq(a->f, 0.5f, 0);
    a = qkv_node_attr(n, "i");
    cr_assert_eq(a->type, QKV_ATTR_INT);
    cr_assert_eq(a->i, -7);
    a = qkv_node_attr(n, "s");
    cr_assert_eq(a->type, QKV_ATTR_STRING);
    cr_assert_str_eq(a->s, "text");
    cr_assert_eq(a->s_len, 4);
    a = qkv_node_attr(n, "t");
    cr_assert_eq(a->type, QKV_ATTR_TENSOR);
    cr_assert_eq(a->n, 1);
    cr_assert_eq(a->tensors[0].dtype, QKV_DTYPE_INT64);
    cr_assert_eq(((const int64_t *)a->tensors[0].data)[2], 3);
    a = qkv_node_attr(n, "g");
    cr_assert_eq(a->type, QKV_ATTR_GRAPH);
    cr_assert_eq(a->graphs[0]->parent, g);
    a = qkv_node_attr(n, "floats");
    cr_assert_eq(a->type, QKV_ATTR_FLOATS);
    cr_assert_eq(a->n, 2);
    cr_assert_float_eq(a->floats[1], 2.5f, 0);
    a = qkv_node_attr(n, "ints");
    cr_assert_eq(a->type, QKV_ATTR_INTS);
    cr_assert_eq(a->n, 3);
    cr_assert_eq(a->ints[1], -4);
    a = qkv_node_attr(n, "strings");
    cr_assert_eq(a->type, QKV_ATTR_STRINGS);
    cr_assert_eq(a->n, 2);
    cr_assert_str_eq(a->strings[1], "bc");
    a = qkv_node_attr(n, "tensors");
    cr_assert_eq(a->type, QKV_ATTR_TENSORS);
    cr_assert_eq(a->n, 2);
    cr_assert_float_eq(*(const float *)a->tensors[1].data, 0.25f, 0);
    a = qkv_node_attr(n, "graphs");
    cr_assert_eq(a->type, QKV_ATTR_GRAPHS);
    cr_assert_eq(a->n, 2);
    cr_assert_str_eq(a->graphs[1]->name, "body2");
    cr_assert_null(qkv_node_attr(n, "absent"));
    /* the subgraphs read x: an implicit input of the node, deduplicated */
    cr_assert_eq(n->n_implicit, 1);
    cr_assert_eq(n->implicit_inputs[0], qkv_graph_find_value(g, "x"));

    const qkv_ir_node *c = &g->nodes[node_index(g, "const")];
    a = qkv_node_attr(c, "value");
    cr_assert_eq(a->type, QKV_ATTR_TENSOR);
    cr_assert_eq(a->tensors[0].rank, 2);
    cr_assert_float_eq(*(const float *)a->tensors[0].data, 9.0f, 0);
    qkv_model_destroy(m);
}

Test(loader, loads_pytorch_multihead_attention_export)
{
    qkv_model *m = load_ok("mha_torch.onnx");
    qkv_model_meta meta = {.struct_size = sizeof(qkv_model_meta)};
    qkv_model_get_meta(m, &meta);
    cr_assert_str_eq(meta.producer_name, "pytorch");
    cr_assert_gt(meta.node_count, 50);
    cr_assert_eq(qkv_model_opset_for(m, ""), 14);
    cr_assert_eq(qkv_model_input_count(m), 3);
    qkv_value_info vi = {.struct_size = sizeof(qkv_value_info)};
    qkv_model_input(m, 0, &vi);
    cr_assert_str_eq(vi.name, "query");
    cr_assert_str_eq(vi.dim_params[0], "seq");
    cr_assert_str_eq(vi.dim_params[1], "batch");
    cr_assert_eq(vi.dims[2], 8);
    cr_assert_eq(qkv_model_output_count(m), 2);
    qkv_model_output(m, 0, &vi);
    cr_assert_str_eq(vi.name, "attn_output");
    cr_assert_eq(m->graph->n_order, m->graph->n_nodes);
    qkv_model_destroy(m);
}

Test(loader, accepts_subgraphs_nested_to_the_limit)
{
    qkv_model *m = load_ok("deep_if_32.onnx");
    const qkv_ir_graph *g = m->graph;
    int depth = 0;
    while (g->n_nodes > 0) {
        g = qkv_node_attr(&g->nodes[0], "then_branch")->graphs[0];
        depth++;
    }
    cr_assert_eq(depth, QKV_LOADER_MAX_GRAPH_DEPTH);
    qkv_model_destroy(m);
}

/* ---- refusals ----------------------------------------------------------------------- */

Test(loader_errors, missing_file)
{
    load_fails("no_such_model.onnx", QKV_ERR_IO, "cannot open", "no_such_model.onnx");
}

Test(loader_errors, truncated_garbage_and_empty_files)
{
    load_fails("bad_truncated.onnx", QKV_ERR_INVALID_MODEL, "failed to parse",
               "bad_truncated.onnx");
    load_fails("bad_garbage.onnx", QKV_ERR_INVALID_MODEL, "failed to parse",
               "truncated or corrupt protobuf");
    load_fails("bad_empty.onnx", QKV_ERR_INVALID_MODEL, "failed to parse", "empty");
}

Test(loader_errors, every_truncation_of_a_valid_model)
{
    size_t n;
    uint8_t *buf = read_file(path_of("if_outer.onnx"), &n);
    for (size_t len = 0; len < n; len++) {
        qkv_model *m = NULL;
        qkv_error err = {0};
        qkv_status st = qkv_model_load_buffer(buf, len, NULL, &m, &err);
        cr_assert_neq(st, QKV_OK, "a prefix of %zu bytes loaded", len);
        cr_assert_null(m);
        cr_assert_neq(err.message[0], '\0');
    }
    free(buf);
}

Test(loader_errors, refuses_hostile_nesting_before_unpacking)
{
    load_fails("deep_nesting.onnx", QKV_ERR_UNSUPPORTED, "failed to parse",
               "nested more than 128 levels deep");
}

Test(loader_errors, refuses_subgraphs_nested_too_deep)
{
    load_fails("deep_if_40.onnx", QKV_ERR_UNSUPPORTED, "subgraphs are nested more than 32 levels",
               "node #0 (If): attribute 'then_branch': ");
}

Test(loader_errors, missing_opset_import)
{
    load_fails("bad_missing_opset.onnx", QKV_ERR_INVALID_MODEL,
               "node 'custom_0' (Custom): the model has no opset import for domain 'com.example'",
               NULL);
}

Test(loader_errors, input_nothing_produces)
{
    load_fails("bad_unproduced_input.onnx", QKV_ERR_INVALID_MODEL,
               "node 'add_0' (Add): input 1 'ghost' is not produced by any node, graph input or "
               "initializer",
               NULL);
}

Test(loader_errors, value_produced_twice)
{
    load_fails("bad_duplicate_producer.onnx", QKV_ERR_INVALID_MODEL,
               "node 'neg_b' (Neg): output 0 'y' is produced twice", "node 'relu_a' (Relu)");
    load_fails("bad_shadow_initializer.onnx", QKV_ERR_INVALID_MODEL,
               "node 'relu_w' (Relu): output 0 'w' is produced twice", "an initializer");
    load_fails("bad_shadow_input.onnx", QKV_ERR_INVALID_MODEL,
               "node 'relu_x' (Relu): output 0 'x' is produced twice", "a graph input");
}

Test(loader_errors, cycle_names_the_nodes)
{
    load_fails("bad_cycle.onnx", QKV_ERR_INVALID_MODEL, "cycle",
               "node 'cyc_add' (Add) -> node 'cyc_relu' (Relu) -> node 'cyc_add' (Add)");
}

Test(loader_errors, graph_output_nothing_produces)
{
    load_fails("bad_unproduced_output.onnx", QKV_ERR_INVALID_MODEL,
               "graph output 'nothing' is not produced by any node", NULL);
}

Test(loader_errors, initializer_payload_length)
{
    load_fails("bad_raw_mismatch.onnx", QKV_ERR_INVALID_MODEL,
               "initializer 'w': raw_data has 12 bytes, expected 16 (dims [2,2] float32)", NULL);
    load_fails("bad_typed_mismatch.onnx", QKV_ERR_INVALID_MODEL,
               "initializer 'w': float_data has 3 values, expected 4 (dims [2,2] float32)", NULL);
    load_fails("bad_no_data.onnx", QKV_ERR_INVALID_MODEL, "initializer 'w': has no data",
               "dims [2] float32");
}

Test(loader_errors, bad_dims_and_types)
{
    load_fails("bad_negative_dim.onnx", QKV_ERR_INVALID_MODEL,
               "initializer 'w': negative dim -1 at axis 0", NULL);
    load_fails("bad_dims_overflow.onnx", QKV_ERR_INVALID_MODEL, "initializer 'w': size overflows",
               "dims [1099511627776,1099511627776]");
    load_fails("bad_unknown_dtype.onnx", QKV_ERR_UNSUPPORTED,
               "initializer 'w': unknown element type 99", NULL);
    load_fails("bad_rank13.onnx", QKV_ERR_UNSUPPORTED,
               "initializer 'w': rank 13 exceeds the maximum 12", NULL);
    load_fails("bad_input_rank13.onnx", QKV_ERR_UNSUPPORTED,
               "graph input 'x': rank 13 exceeds the maximum 12", NULL);
}

Test(loader_errors, sparse_tensors)
{
    load_fails("bad_sparse_initializer.onnx", QKV_ERR_UNSUPPORTED,
               "sparse initializer 'sp' is not supported", NULL);
    load_fails("bad_sparse_attr.onnx", QKV_ERR_UNSUPPORTED,
               "node 'cos_sparse' (ConstantOfShape): attribute 'sparse_value': type SPARSE_TENSOR "
               "is not supported",
               NULL);
}

Test(loader_errors, subgraph_errors_name_the_path)
{
    load_fails("bad_subgraph_unresolved.onnx", QKV_ERR_INVALID_MODEL,
               "node 'if_0' (If): attribute 'then_branch': node 'inner_add' (Add): input 1 "
               "'ghost' is not produced",
               NULL);
    load_fails("bad_subgraph_cycle.onnx", QKV_ERR_INVALID_MODEL, "cycle",
               "node 'if_self' (If) -> node 'if_self' (If)");
}

Test(loader_errors, external_data_refusals)
{
    load_fails("ext_bad/ext_absolute.onnx", QKV_ERR_INVALID_MODEL,
               "initializer 'w': external data location '/etc/hostname' is an absolute path", NULL);
    load_fails("ext_bad/ext_escape.onnx", QKV_ERR_INVALID_MODEL,
               "external data location '../outside.bin' leaves the model directory", NULL);
    load_fails("ext_bad/ext_escape_deep.onnx", QKV_ERR_INVALID_MODEL,
               "'a/../../outside.bin' leaves the model directory", NULL);
    load_fails("ext_bad/ext_symlink.onnx", QKV_ERR_INVALID_MODEL,
               "external data location 'link.bin' resolves to", "outside the model directory");
    load_fails("ext_bad/ext_past_end.onnx", QKV_ERR_INVALID_MODEL,
               "external data offset 60 + length 16 is past the end of 'data.bin' (64 bytes)",
               NULL);
    load_fails("ext_bad/ext_offset_past_end.onnx", QKV_ERR_INVALID_MODEL,
               "offset 1000 + length 16 is past the end", NULL);
    load_fails("ext_bad/ext_length_mismatch.onnx", QKV_ERR_INVALID_MODEL,
               "external data length is 12 bytes, expected 16 (dims [4] float32)", NULL);
    load_fails("ext_bad/ext_missing.onnx", QKV_ERR_IO, "cannot open external data file",
               "nope.bin");
    load_fails("ext_bad/ext_bad_offset.onnx", QKV_ERR_INVALID_MODEL,
               "external data offset '-5' is not a valid number", NULL);
    load_fails("ext_bad/ext_no_location.onnx", QKV_ERR_INVALID_MODEL,
               "initializer 'w': external data has no location", NULL);
}

Test(loader_errors, null_arguments_and_null_err)
{
    qkv_model *m = NULL;
    qkv_error err = {0};
    cr_assert_eq(qkv_model_load_file(NULL, &m, &err), QKV_ERR_INVALID_ARGUMENT);
    cr_assert_eq(qkv_model_load_file(path_of("mha_small.onnx"), NULL, &err),
                 QKV_ERR_INVALID_ARGUMENT);
    cr_assert_eq(qkv_model_load_buffer(NULL, 10, NULL, &m, &err), QKV_ERR_INVALID_ARGUMENT);
    cr_assert_eq(qkv_model_load_file(path_of("bad_cycle.onnx"), &m, NULL), QKV_ERR_INVALID_MODEL);
    cr_assert_null(m);
    qkv_model_destroy(NULL);
}

/* ---- TensorProto files --------------------------------------------------------------- */

Test(tensor_proto, decodes_float_and_string_tensors)
{
    size_t n;
    void *buf = read_file(path_of("tensor_float.pb"), &n);
    qkv_tensor t;
    char *name = NULL;
    qkv_error err = {0};
    cr_assert_eq(qkv_tensor_proto_decode(buf, n, NULL, &t, &name, &err), QKV_OK, "%s", err.message);
    free(buf);
    cr_assert_str_eq(name, "input_0");
    cr_assert_eq(t.dtype, QKV_DTYPE_FLOAT);
    cr_assert_eq(t.rank, 2);
    cr_assert_eq(t.dims[1], 3);
    cr_assert_eq(t.data_bytes, 24);
    cr_assert_float_eq(((float *)t.data)[5], 5.0f, 0);
    qkv_tensor_data_free(&t);
    cr_assert_null(t.data);
    free(name);

    buf = read_file(path_of("tensor_string.pb"), &n);
    cr_assert_eq(qkv_tensor_proto_decode(buf, n, NULL, &t, NULL, &err), QKV_OK, "%s", err.message);
    free(buf);
    cr_assert_eq(t.dtype, QKV_DTYPE_STRING);
    cr_assert_str_eq(((char **)t.data)[1], "attention");
    qkv_tensor_data_free(&t);
}

Test(tensor_proto, external_data_relative_to_base_dir)
{
    size_t n;
    void *buf = read_file(path_of("tensor_ext.pb"), &n);
    qkv_tensor t;
    qkv_error err = {0};
    cr_assert_eq(qkv_tensor_proto_decode(buf, n, NULL, &t, NULL, &err), QKV_ERR_INVALID_ARGUMENT);
    cr_assert(strstr(err.message, "tensor 'ext': has external data"), "%s", err.message);
    cr_assert_eq(qkv_tensor_proto_decode(buf, n, QKV_TEST_DATA, &t, NULL, &err), QKV_OK, "%s",
                 err.message);
    cr_assert_eq(((int64_t *)t.data)[2], 3);
    qkv_tensor_data_free(&t);
    free(buf);
}

Test(tensor_proto, refuses_bad_tensors_leaving_outputs_alone)
{
    size_t n;
    void *buf = read_file(path_of("tensor_bad.pb"), &n);
    qkv_tensor t = {.rank = 77};
    char *name = (char *)"untouched";
    qkv_error err = {0};
    cr_assert_eq(qkv_tensor_proto_decode(buf, n, NULL, &t, &name, &err), QKV_ERR_INVALID_MODEL);
    cr_assert(strstr(err.message, "tensor 'bad': raw_data has 8 bytes, expected 12 (dims [3] "
                                  "float32)"),
              "%s", err.message);
    cr_assert_eq(t.rank, 77);
    cr_assert_str_eq(name, "untouched");
    free(buf);
    buf = read_file(path_of("tensor_garbage.pb"), &n);
    cr_assert_eq(qkv_tensor_proto_decode(buf, n, NULL, &t, &name, &err), QKV_ERR_INVALID_MODEL);
    cr_assert(strstr(err.message, "failed to parse"), "%s", err.message);
    free(buf);
}

/* ---- the ONNX backend tests shipped in /work/shared ----------------------------------- */

#define CONFORMANCE_DIR QKV_SOURCE_DIR "/../shared/conformance/onnx-attention"

static void decode_pb_dir(const char *dir)
{
    DIR *d = opendir(dir);
    if (!d)
        return;
    struct dirent *e;
    while ((e = readdir(d)) != NULL) {
        size_t len = strlen(e->d_name);
        if (len < 3 || strcmp(e->d_name + len - 3, ".pb") != 0)
            continue;
        char path[2048];
        snprintf(path, sizeof path, "%s/%s", dir, e->d_name);
        size_t n;
        void *buf = read_file(path, &n);
        qkv_tensor t;
        qkv_error err = {0};
        cr_assert_eq(qkv_tensor_proto_decode(buf, n, dir, &t, NULL, &err), QKV_OK, "%s: %s", path,
                     err.message);
        qkv_tensor_data_free(&t);
        free(buf);
    }
    closedir(d);
}

Test(conformance_models, every_model_and_tensor_loads)
{
    DIR *d = opendir(CONFORMANCE_DIR);
    if (!d)
        cr_skip_test("no conformance data at %s", CONFORMANCE_DIR);
    struct dirent *e;
    size_t models = 0;
    while ((e = readdir(d)) != NULL) {
        if (e->d_name[0] == '.')
            continue;
        char path[2048];
        snprintf(path, sizeof path, "%s/%s/model.onnx", CONFORMANCE_DIR, e->d_name);
        FILE *f = fopen(path, "rb");
        if (!f)
            continue;
        fclose(f);
        qkv_model *m = NULL;
        qkv_error err = {0};
        cr_assert_eq(qkv_model_load_file(path, &m, &err), QKV_OK, "%s: %s", path, err.message);
        cr_assert_geq(m->ir_version, 7, "%s", path);
        cr_assert_eq(m->graph->n_order, m->graph->n_nodes);
        qkv_model_destroy(m);
        models++;
        for (int k = 0; k < 4; k++) {
            char dir[2048];
            snprintf(dir, sizeof dir, "%s/%s/test_data_set_%d", CONFORMANCE_DIR, e->d_name, k);
            decode_pb_dir(dir);
        }
    }
    closedir(d);
    cr_assert_gt(models, 100);
}

/* ---- hostile bytes: mutated models never crash ---------------------------------------- */

static uint64_t rng_state = 0x9E3779B97F4A7C15ull;

static uint64_t rng(void)
{
    rng_state ^= rng_state << 13;
    rng_state ^= rng_state >> 7;
    rng_state ^= rng_state << 17;
    return rng_state;
}

/* Flips bytes of valid models at random (deterministically) and loads them:
 * every load either succeeds or fails with a message; ASan and valgrind
 * watch for crashes, bad reads and leaks. */
Test(loader_fuzz, mutated_models_fail_cleanly)
{
    const char *models[] = {"if_outer.onnx", "attrs.onnx", "dtypes_typed.onnx", "external_ok.onnx"};
    for (size_t k = 0; k < sizeof models / sizeof *models; k++) {
        size_t n;
        uint8_t *orig = read_file(path_of(models[k]), &n);
        uint8_t *buf = malloc(n);
        for (int iter = 0; iter < 500; iter++) {
            memcpy(buf, orig, n);
            int flips = 1 + (int)(rng() % 4);
            for (int f = 0; f < flips; f++)
                buf[rng() % n] ^= (uint8_t)(1u << (rng() % 8));
            qkv_model *m = NULL;
            qkv_error err = {0};
            qkv_status st = qkv_model_load_buffer(buf, n, QKV_TEST_DATA, &m, &err);
            if (st == QKV_OK) {
                cr_assert_not_null(m);
                qkv_model_destroy(m);
            } else {
                cr_assert_null(m);
                cr_assert_neq(err.message[0], '\0', "%s iteration %d: status %d, no message",
                              models[k], iter, (int)st);
            }
        }
        free(buf);
        free(orig);
    }
}

/* ---- out of memory: every allocation failure is reported and leaks nothing ------------- */

/* The test binary interposes malloc/calloc/realloc/free to fail the N-th
 * allocation while armed and to count live blocks (a failed load must leave
 * the count where it was). Not under ASan, whose allocator must see every
 * block; under valgrind (which replaces these functions itself) the counts
 * stay 0 and the loops below do nothing, valgrind checking leaks instead. */
#if defined(__has_feature)
#if __has_feature(address_sanitizer) || __has_feature(memory_sanitizer)
#define QKV_TEST_SANITIZED 1 /* clang spells it this way */
#endif
#endif
#if defined(__GLIBC__) && !defined(__SANITIZE_ADDRESS__) && !defined(QKV_TEST_SANITIZED)
#define QKV_TEST_OOM 1
extern void *__libc_malloc(size_t n);
extern void *__libc_calloc(size_t n, size_t size);
extern void *__libc_realloc(void *p, size_t n);
extern void __libc_free(void *p);

static long oom_countdown = -1; /* -1: disarmed; 0: fail the next call */
static long oom_calls;          /* allocation calls seen */
static long oom_live;           /* blocks allocated minus blocks freed */

static bool oom_fail(void)
{
    oom_calls++;
    if (oom_countdown < 0)
        return false;
    if (oom_countdown-- == 0) {
        oom_countdown = -1;
        return true;
    }
    return false;
}

void *malloc(size_t n)
{
    void *p = oom_fail() ? NULL : __libc_malloc(n);
    oom_live += p != NULL;
    return p;
}

void *calloc(size_t n, size_t size)
{
    void *p = oom_fail() ? NULL : __libc_calloc(n, size);
    oom_live += p != NULL;
    return p;
}

void *realloc(void *p, size_t n)
{
    if (oom_fail())
        return NULL;
    void *q = __libc_realloc(p, n);
    oom_live += (q != NULL) - (p != NULL && (q != NULL || n == 0));
    return q;
}

void free(void *p)
{
    oom_live -= p != NULL;
    __libc_free(p);
}

static long heap_in_use(void) { return oom_live; }

static void load_under_oom(const char *rel)
{
    size_t n;
    void *buf = read_file(path_of(rel), &n);
    /* count the allocations of a successful load */
    qkv_model *m = NULL;
    qkv_error err = {0};
    oom_calls = 0;
    cr_assert_eq(qkv_model_load_buffer(buf, n, QKV_TEST_DATA, &m, &err), QKV_OK, "%s", err.message);
    long calls = oom_calls;
    qkv_model_destroy(m);
    for (long i = 0; i < calls; i++) {
        long before = heap_in_use();
        qkv_model *sentinel = (qkv_model *)(uintptr_t)0x1234;
        m = sentinel;
        oom_countdown = i;
        qkv_status st = qkv_model_load_buffer(buf, n, QKV_TEST_DATA, &m, &err);
        oom_countdown = -1;
        if (st == QKV_OK) { /* the failed call was one the loader can do without */
            qkv_model_destroy(m);
        } else {
            cr_assert(st == QKV_ERR_OUT_OF_MEMORY || st == QKV_ERR_IO, "%s, call %ld: %s: %s", rel,
                      i, qkv_status_string(st), err.message);
            cr_assert_eq(m, sentinel, "%s, call %ld: *out changed", rel, i);
        }
        cr_assert_eq(heap_in_use(), before, "%s, allocation %ld failing leaks", rel, i);
    }
    free(buf);
}

/* Mappings of files under the test data's mmap/ directory, from
 * /proc/self/maps (only those: valgrind and malloc map memory of their own). */
static size_t count_maps(void)
{
    FILE *f = fopen("/proc/self/maps", "r");
    cr_assert_not_null(f);
    size_t n = 0;
    char line[4096];
    while (fgets(line, sizeof line, f))
        n += strstr(line, QKV_TEST_DATA "/mmap/") != NULL;
    fclose(f);
    return n;
}

/* As load_under_oom, from the file: payloads in file mappings. A failed
 * load leaves neither a block nor a mapping behind. */
static void load_file_under_oom(const char *rel)
{
    qkv_model *m = NULL;
    qkv_error err = {0};
    oom_calls = 0;
    cr_assert_eq(qkv_model_load_file(path_of(rel), &m, &err), QKV_OK, "%s", err.message);
    long calls = oom_calls;
    qkv_model_destroy(m);
    for (long i = 0; i < calls; i++) {
        size_t maps = count_maps(); /* fopen allocates: before the count */
        long before = heap_in_use();
        qkv_model *sentinel = (qkv_model *)(uintptr_t)0x1234;
        m = sentinel;
        oom_countdown = i;
        qkv_status st = qkv_model_load_file(path_of(rel), &m, &err);
        oom_countdown = -1;
        if (st == QKV_OK) {
            qkv_model_destroy(m);
        } else {
            cr_assert(st == QKV_ERR_OUT_OF_MEMORY || st == QKV_ERR_IO, "%s, call %ld: %s: %s", rel,
                      i, qkv_status_string(st), err.message);
            cr_assert_eq(m, sentinel, "%s, call %ld: *out changed", rel, i);
        }
        cr_assert_eq(heap_in_use(), before, "%s, allocation %ld failing leaks", rel, i);
        cr_assert_eq(count_maps(), maps, "%s, allocation %ld failing leaves a mapping", rel, i);
    }
}

Test(loader_oom, file_loads_with_mapped_payloads_under_every_failing_allocation)
{
    load_file_under_oom("mmap/inline.onnx");
    load_file_under_oom("mmap/external/model.onnx");
}

Test(loader_oom, every_failing_allocation_is_reported_without_leaks)
{
    load_under_oom("mha_small.onnx");
    load_under_oom("if_outer.onnx");
    load_under_oom("attrs.onnx");
    load_under_oom("dtypes_typed.onnx");
    load_under_oom("external_ok.onnx");
}

Test(loader_oom, tensor_decode_under_every_failing_allocation)
{
    size_t n;
    void *buf = read_file(path_of("tensor_string.pb"), &n);
    for (long i = 0; i < 64; i++) {
        long before = heap_in_use();
        qkv_tensor t = {.rank = 77};
        char *name = NULL;
        qkv_error err = {0};
        oom_countdown = i;
        qkv_status st = qkv_tensor_proto_decode(buf, n, NULL, &t, &name, &err);
        oom_countdown = -1;
        if (st == QKV_OK) {
            qkv_tensor_data_free(&t);
            free(name);
        } else {
            cr_assert_eq(st, QKV_ERR_OUT_OF_MEMORY, "%s", err.message);
            cr_assert_eq(t.rank, 77);
            cr_assert_null(name);
        }
        cr_assert_eq(heap_in_use(), before, "allocation %ld failing leaks", i);
    }
    free(buf);
}
#endif
