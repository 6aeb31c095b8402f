/*
 * model.c - the public qkv_model_* accessors of qkv.h over the IR.
 *
 * Everything returned points into the model and lives as long as it.
 * Indices out of range (a caller bug) yield empty results, never a crash.
 */
#include <stdlib.h>
#include <string.h>

#include "api.h"

#include "error.h"
#include "ir.h"

void qkv_model_destroy(qkv_model *model)
{
    if (!model)
        return;
    free(model->producer_name);
    free(model->producer_version);
    free(model->domain);
    free(model->doc_string);
    for (size_t k = 0; k < model->n_opsets; k++)
        free(model->opsets[k].domain);
    free(model->opsets);
    for (size_t k = 0; k < model->n_props; k++) {
        free(model->props[k].key);
        free(model->props[k].value);
    }
    free(model->props);
    qkv_graph_destroy(model->graph);
    free(model);
}

static const char *str(const char *s) { return s ? s : ""; }

/* The whole struct, as this qkv.h has it; the caller gets its prefix. */
static void fill_meta(const qkv_model *model, qkv_model_meta *out)
{
    memset(out, 0, sizeof *out);
    out->struct_size = sizeof *out;
    out->producer_name = out->producer_version = out->domain = out->doc_string = out->graph_name =
        "";
    if (!model)
        return;
    out->ir_version = model->ir_version;
    out->model_version = model->model_version;
    out->producer_name = str(model->producer_name);
    out->producer_version = str(model->producer_version);
    out->domain = str(model->domain);
    out->doc_string = str(model->doc_string);
    out->opset_count = model->n_opsets;
    out->metadata_count = model->n_props;
    const qkv_ir_graph *g = model->graph;
    if (!g)
        return;
    out->graph_name = str(g->name);
    out->node_count = g->n_nodes;
    for (size_t k = 0; k < g->n_values; k++) {
        const qkv_ir_value *v = &g->values[k];
        if (v->kind != QKV_VALUE_CONSTANT)
            continue;
        out->initializer_count++;
        out->initializer_bytes += v->data_bytes;
        if (v->dtype == QKV_DTYPE_STRING && v->data) { /* the strings themselves too */
            char *const *s = v->data;
            for (size_t j = 0; j < v->data_bytes / sizeof(char *); j++)
                out->initializer_bytes += strlen(s[j]) + 1;
        }
    }
}

qkv_status qkv_model_get_meta(const qkv_model *model, qkv_model_meta *out)
{
    if (!qkv_struct_usable(out, QKV_STRUCT_END(qkv_model_meta, ir_version)))
        return QKV_ERR_INVALID_ARGUMENT;
    qkv_model_meta all;
    fill_meta(model, &all);
    qkv_struct_fill(out, &all, sizeof all, QKV_STRUCT_END(qkv_model_meta, ir_version));
    return QKV_OK;
}

void qkv_model_opset(const qkv_model *model, size_t i, const char **domain, int64_t *version)
{
    bool ok = model && i < model->n_opsets;
    if (domain)
        *domain = ok ? model->opsets[i].domain : "";
    if (version)
        *version = ok ? model->opsets[i].version : -1;
}

void qkv_model_metadata(const qkv_model *model, size_t i, const char **key, const char **value)
{
    bool ok = model && i < model->n_props;
    if (key)
        *key = ok ? model->props[i].key : "";
    if (value)
        *value = ok ? model->props[i].value : "";
}

void qkv_model_node_op(const qkv_model *model, size_t i, const char **op_type, const char **domain)
{
    bool ok = model && model->graph && i < model->graph->n_nodes;
    if (op_type)
        *op_type = ok ? model->graph->nodes[i].op_type : "";
    if (domain)
        *domain = ok ? model->graph->nodes[i].domain : "";
}

size_t qkv_model_input_count(const qkv_model *model)
{
    return model && model->graph ? model->graph->n_inputs : 0;
}

size_t qkv_model_output_count(const qkv_model *model)
{
    return model && model->graph ? model->graph->n_outputs : 0;
}

static qkv_status value_info(const qkv_ir_graph *g, int32_t id, qkv_value_info *out)
{
    static const int64_t no_dims[1] = {0};
    static const char *const no_params[1] = {NULL};
    const size_t need = QKV_STRUCT_END(qkv_value_info, name);
    if (!qkv_struct_usable(out, need))
        return QKV_ERR_INVALID_ARGUMENT;
    qkv_value_info all = {.struct_size = sizeof all,
                          .name = "",
                          .dtype = QKV_DTYPE_UNDEFINED,
                          .rank = -1,
                          .dims = no_dims,
                          .dim_params = no_params};
    if (id >= 0) {
        const qkv_ir_value *v = &g->values[id];
        all.name = v->name;
        all.dtype = v->dtype;
        all.rank = v->rank;
        all.dims = v->dims;
        all.dim_params = (const char *const *)v->dim_params;
        all.kind = v->type_kind;
        if (v->type_kind != QKV_KIND_TENSOR)
            all.rank = -1; /* the shape of the elements is not kept */
    }
    qkv_struct_fill(out, &all, sizeof all, need);
    return id >= 0 ? QKV_OK : QKV_ERR_INVALID_ARGUMENT;
}

qkv_status qkv_model_input(const qkv_model *model, size_t i, qkv_value_info *out)
{
    bool ok = model && model->graph && i < model->graph->n_inputs;
    return value_info(ok ? model->graph : NULL, ok ? model->graph->inputs[i] : -1, out);
}

qkv_status qkv_model_output(const qkv_model *model, size_t i, qkv_value_info *out)
{
    bool ok = model && model->graph && i < model->graph->n_outputs;
    return value_info(ok ? model->graph : NULL, ok ? model->graph->outputs[i] : -1, out);
}

/* Index of the value called `name` among ids[0..n), -1 when absent. */
static int64_t find_named(const qkv_ir_graph *g, const int32_t *ids, size_t n, const char *name)
{
    for (size_t i = 0; i < n; i++)
        if (g->values[ids[i]].name && strcmp(g->values[ids[i]].name, name) == 0)
            return (int64_t)i;
    return -1;
}

int64_t qkv_model_input_index(const qkv_model *model, const char *name)
{
    if (!model || !model->graph || !name)
        return -1;
    return find_named(model->graph, model->graph->inputs, model->graph->n_inputs, name);
}

int64_t qkv_model_output_index(const qkv_model *model, const char *name)
{
    if (!model || !model->graph || !name)
        return -1;
    return find_named(model->graph, model->graph->outputs, model->graph->n_outputs, name);
}
