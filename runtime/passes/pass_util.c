/*
 * pass_util.c - helpers of the rewrite passes (see pass_util.h).
 */
#include "pass_util.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "error.h"
#include "half.h"
#include "kernel_host.h"
#include "node_eval.h"
#include "size_math.h"
#include "str_util.h"

bool qkv_pass_is_op(const qkv_ir_node *n, const char *op)
{
    return n->domain[0] == '\0' && strcmp(n->op_type, op) == 0;
}

const qkv_ir_node *qkv_pass_producer(const qkv_ir_graph *g, int32_t v)
{
    if (v < 0 || g->values[v].producer < 0)
        return NULL;
    const qkv_ir_node *n = &g->nodes[g->values[v].producer];
    return n->dead ? NULL : n;
}

int32_t qkv_pass_sole_consumer(const qkv_ir_graph *g, int32_t v)
{
    if (v < 0)
        return -1;
    const qkv_ir_value *val = &g->values[v];
    if (val->is_output || val->n_consumers != 1 || g->nodes[val->consumers[0]].dead)
        return -1;
    return val->consumers[0];
}

bool qkv_pass_const_tensor(const qkv_ir_graph *g, int32_t v, qkv_tensor *out)
{
    const qkv_ir_value *c = &g->values[v];
    if (c->kind == QKV_VALUE_CONSTANT) {
        if (!c->data)
            return false;
        memset(out, 0, sizeof *out);
        out->dtype = c->dtype;
        out->rank = c->rank;
        for (int32_t k = 0; k < c->rank && k < QKV_MAX_RANK; k++)
            out->dims[k] = c->dims[k];
        out->data = c->data;
        out->data_bytes = c->data_bytes;
        return true;
    }
    const qkv_ir_node *p = qkv_pass_producer(g, v);
    if (!p || !qkv_pass_is_op(p, "Constant") || p->n_outputs != 1)
        return false;
    const qkv_ir_attr *a = qkv_node_attr(p, "value");
    if (!a || a->type != QKV_ATTR_TENSOR || !a->tensors || !a->tensors[0].data)
        return false;
    *out = a->tensors[0];
    return true;
}

bool qkv_pass_is_const(const qkv_ir_graph *g, int32_t v)
{
    qkv_tensor t;
    return v >= 0 && qkv_pass_const_tensor(g, v, &t);
}

bool qkv_pass_const_scalar(const qkv_ir_graph *g, int32_t v, int32_t max_rank, double *out)
{
    qkv_tensor c;
    size_t n;
    if (v < 0 || !qkv_pass_const_tensor(g, v, &c) || c.rank < 0 || c.rank > max_rank ||
        !qkv_shape_elements(c.dims, c.rank, &n) || n != 1)
        return false;
    switch (c.dtype) {
    case QKV_DTYPE_FLOAT: {
        float f;
        if (c.data_bytes < sizeof f)
            return false;
        memcpy(&f, c.data, sizeof f);
        *out = f;
        return true;
    }
    case QKV_DTYPE_DOUBLE:
        if (c.data_bytes < sizeof *out)
            return false;
        memcpy(out, c.data, sizeof *out);
        return true;
    case QKV_DTYPE_FLOAT16:
    case QKV_DTYPE_BFLOAT16: {
        uint16_t h;
        if (c.data_bytes < sizeof h)
            return false;
        memcpy(&h, c.data, sizeof h);
        *out = c.dtype == QKV_DTYPE_FLOAT16 ? qkv_f16_to_f32(h) : qkv_bf16_to_f32(h);
        return true;
    }
    default:
        return false;
    }
}

bool qkv_pass_const_near(double got, double want, qkv_dtype t)
{
    /* half an ulp of the format, relative, for the 16-bit types */
    double rel = t == QKV_DTYPE_FLOAT16 ? 0x1p-11 : t == QKV_DTYPE_BFLOAT16 ? 0x1p-8 : 1e-6;
    return fabs(got - want) <= rel * fabs(want);
}

int32_t qkv_pass_add_node(qkv_ir_graph *g, const char *name, const char *op, const char *domain,
                          int64_t opset, const int32_t *inputs, size_t n_inputs, int32_t output)
{
    int32_t idx = qkv_graph_add_node(g, name, op, domain, opset, n_inputs, 1);
    if (idx < 0)
        return -1;
    qkv_ir_node *n = &g->nodes[idx];
    memcpy(n->inputs, inputs, n_inputs * sizeof *inputs);
    n->outputs[0] = output;
    return idx;
}

int32_t qkv_pass_add_value(qkv_ir_graph *g, const char *name, qkv_value_kind kind)
{
    char buf[320];
    for (int k = 0; k < 1000; k++) {
        if (k == 0)
            snprintf(buf, sizeof buf, "%s", name);
        else
            snprintf(buf, sizeof buf, "%s_%d", name, k);
        bool dup = false;
        int32_t id = qkv_graph_add_value(g, buf, kind, &dup);
        if (id >= 0 || !dup)
            return id; /* added, or out of memory */
    }
    return -1;
}

int32_t qkv_pass_add_const(qkv_ir_graph *g, const char *name, qkv_dtype dtype, int32_t rank,
                           const int64_t *dims, const void *data, size_t bytes)
{
    void *copy = malloc(bytes ? bytes : 1);
    if (!copy)
        return -1;
    int32_t id = qkv_pass_add_value(g, name, QKV_VALUE_CONSTANT);
    if (id < 0) {
        free(copy);
        return -1;
    }
    qkv_ir_value *v = &g->values[id];
    memcpy(copy, data, bytes);
    v->dtype = dtype;
    v->rank = rank;
    for (int32_t k = 0; k < rank; k++)
        v->dims[k] = dims[k];
    v->data = copy;
    v->data_bytes = bytes;
    v->borrowed = false;
    return id;
}

/* Appends *a (named, typed and filled by the caller) to node idx's
 * attributes, which then own what it points to; on failure frees it. */
static bool append_attr(qkv_ir_graph *g, int32_t idx, qkv_ir_attr *a)
{
    qkv_ir_node *node = &g->nodes[idx];
    qkv_ir_attr *attrs = realloc(node->attrs, (node->n_attrs + 1) * sizeof *attrs);
    if (!attrs) {
        qkv_attr_fini(a);
        return false;
    }
    node->attrs = attrs;
    attrs[node->n_attrs++] = *a;
    return true;
}

bool qkv_pass_add_string_attr(qkv_ir_graph *g, int32_t idx, const char *name, const char *value)
{
    qkv_ir_attr a;
    memset(&a, 0, sizeof a);
    a.type = QKV_ATTR_STRING;
    a.name = qkv_strdup(name);
    a.s = qkv_strdup(value);
    a.s_len = strlen(value);
    if (!a.name || !a.s) {
        qkv_attr_fini(&a);
        return false;
    }
    return append_attr(g, idx, &a);
}

/* An INT (value i) or FLOAT (value f) attribute appended to node idx. */
static bool add_number_attr(qkv_ir_graph *g, int32_t idx, const char *name, qkv_attr_type type,
                            int64_t i, float f)
{
    qkv_ir_attr a;
    memset(&a, 0, sizeof a);
    a.type = type;
    a.i = i;
    a.f = f;
    return (a.name = qkv_strdup(name)) != NULL && append_attr(g, idx, &a);
}

bool qkv_pass_add_int_attr(qkv_ir_graph *g, int32_t idx, const char *name, int64_t value)
{
    return add_number_attr(g, idx, name, QKV_ATTR_INT, value, 0.0f);
}

bool qkv_pass_add_float_attr(qkv_ir_graph *g, int32_t idx, const char *name, float value)
{
    return add_number_attr(g, idx, name, QKV_ATTR_FLOAT, 0, value);
}

bool qkv_pass_add_ints_attr(qkv_ir_graph *g, int32_t idx, const char *name, const int64_t *values,
                            size_t n)
{
    qkv_ir_attr a;
    memset(&a, 0, sizeof a);
    a.type = QKV_ATTR_INTS;
    a.name = qkv_strdup(name);
    a.ints = malloc((n ? n : 1) * sizeof *a.ints);
    a.n = n;
    if (!a.name || !a.ints) {
        qkv_attr_fini(&a);
        return false;
    }
    if (n)
        memcpy(a.ints, values, n * sizeof *values);
    return append_attr(g, idx, &a);
}

qkv_status qkv_pass_init_node(qkv_ir_graph *g, int32_t idx, const qkv_registry *reg,
                              const char *what, qkv_error *err)
{
    qkv_ir_node *n = &g->nodes[idx];
    const qkv_kernel *k = qkv_registry_find(reg, n->domain, n->op_type, n->opset, NULL);
    if (!k) {
        char d[256];
        qkv_node_describe(n, n->opset, d, sizeof d);
        return qkv_error_set(err, QKV_ERR_INTERNAL, "%s: %s: no kernel", what, d);
    }
    qkv_status st = qkv_kernel_init_node(k, n, g, err);
    if (st != QKV_OK && err)
        qkv_error_prefix(err, "%s", what);
    return st;
}

void qkv_pass_drop_unused_constant_nodes(qkv_ir_graph *g, const int32_t *values, size_t n)
{
    bool dropped = false;
    for (size_t k = 0; k < n; k++) {
        int32_t v = values[k];
        const qkv_ir_value *val = &g->values[v];
        if (val->producer < 0 || val->n_consumers || val->is_output)
            continue;
        qkv_ir_node *p = &g->nodes[val->producer];
        if (p->dead || !qkv_pass_is_op(p, "Constant") || p->n_outputs != 1)
            continue;
        qkv_pass_kill_node(p);
        dropped = true;
    }
    if (dropped)
        qkv_graph_finalize(g, NULL); /* removing unused producers cannot fail */
}

void qkv_pass_kill_node(qkv_ir_node *n)
{
    if (n->kernel && n->kernel->destroy && n->kernel_state)
        n->kernel->destroy(n->kernel_state);
    n->kernel_state = NULL;
    n->dead = true;
}

qkv_status qkv_pass_rewrite_all(qkv_ir_graph *g, const qkv_registry *reg, const char *anchor_op,
                                qkv_pass_try_fn try_at, size_t *count, qkv_error *err)
{
    qkv_status st = QKV_OK;
    bool again = true;
    *count = 0;
    while (again && st == QKV_OK) {
        again = false;
        for (size_t o = 0; o < g->n_order; o++) {
            int32_t idx = g->order[o];
            if (!qkv_pass_is_op(&g->nodes[idx], anchor_op))
                continue;
            bool rewrote = false;
            st = try_at(g, reg, idx, &rewrote, err);
            if (st != QKV_OK)
                break;
            if (rewrote) {
                (*count)++;
                again = true; /* finalize rebuilt the order: scan again */
                break;
            }
        }
    }
    return st;
}

bool qkv_pass_transpose_perm(const qkv_ir_node *n, int32_t rank, int64_t *perm)
{
    bool seen[QKV_MAX_RANK] = {false};
    if (rank < 0 || rank > QKV_MAX_RANK)
        return false;
    const qkv_ir_attr *a = qkv_node_attr(n, "perm");
    if (a && (a->type != QKV_ATTR_INTS || a->n != (size_t)rank))
        return false;
    for (int32_t k = 0; k < rank; k++) {
        perm[k] = a ? a->ints[k] : rank - 1 - k;
        if (perm[k] < 0 || perm[k] >= rank || seen[perm[k]])
            return false;
        seen[perm[k]] = true;
    }
    return true;
}

bool qkv_pass_transpose_is_view(const int64_t *dims, int32_t rank, const int64_t *perm)
{
    int64_t last = -1;
    for (int32_t k = 0; k < rank; k++) {
        if (dims[perm[k]] == 1)
            continue;
        if (perm[k] < last)
            return false;
        last = perm[k];
    }
    return true;
}
