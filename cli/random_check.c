/*
 * random_check.c - finding the outputs of a test that depend on a random op,
 * and checking them by shape, dtype and range (see random_check.h).
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ir.h"
#include "random_check.h"

static int is_random_op(const qkv_ir_node *n)
{
    static const char *const ops[] = {"Bernoulli",    "RandomUniform",    "RandomUniformLike",
                                      "RandomNormal", "RandomNormalLike", "Multinomial"};
    if (n->domain[0] && strcmp(n->domain, "ai.onnx") != 0)
        return 0;
    for (size_t i = 0; i < sizeof ops / sizeof ops[0]; i++)
        if (!strcmp(n->op_type, ops[i]))
            return 1;
    return 0;
}

/* Whether value v depends on a random node; seen marks visited values. */
static int depends_on_random(const qkv_ir_graph *g, int32_t v, unsigned char *seen)
{
    /* an explicit stack: graphs can be deeper than the C stack is safe for */
    size_t cap = g->n_values + 1, top = 0;
    int32_t *stack = malloc(cap * sizeof *stack);
    if (!stack)
        return 0;
    int found = 0;
    stack[top++] = v;
    seen[v] = 1;
    while (top && !found) {
        int32_t cur = stack[--top];
        int32_t p = g->values[cur].producer;
        if (p < 0)
            continue;
        const qkv_ir_node *n = &g->nodes[p];
        if (is_random_op(n)) {
            found = 1;
            break;
        }
        for (size_t k = 0; k < n->n_inputs; k++) {
            int32_t in = n->inputs[k];
            if (in >= 0 && !seen[in] && top < cap) {
                seen[in] = 1;
                stack[top++] = in;
            }
        }
    }
    free(stack);
    return found;
}

static float attr_float(const qkv_ir_node *n, const char *name, float dflt)
{
    for (size_t i = 0; i < n->n_attrs; i++)
        if (!strcmp(n->attrs[i].name, name) && n->attrs[i].type == QKV_ATTR_FLOAT)
            return n->attrs[i].f;
    return dflt;
}

/* The range of value v, following Cast/Identity back at most `depth` nodes. */
static qkv_cli_random_range range_of(const qkv_ir_graph *g, int32_t v, int depth)
{
    static const char *const boolean_ops[] = {
        "Bernoulli",   "Greater", "Less", "Equal", "GreaterOrEqual",
        "LessOrEqual", "Not",     "And",  "Or",    "Xor"};
    qkv_cli_random_range r = {0};
    int32_t p = g->values[v].producer;
    if (p < 0 || depth <= 0)
        return r;
    const qkv_ir_node *n = &g->nodes[p];
    if (n->domain[0] && strcmp(n->domain, "ai.onnx") != 0)
        return r;
    for (size_t i = 0; i < sizeof boolean_ops / sizeof boolean_ops[0]; i++)
        if (!strcmp(n->op_type, boolean_ops[i])) {
            r = (qkv_cli_random_range){
                .has_range = 1, .lo = 0, .hi = 1, .integral = 1, .rule = n->op_type};
            return r;
        }
    if (!strcmp(n->op_type, "RandomUniform") || !strcmp(n->op_type, "RandomUniformLike")) {
        r = (qkv_cli_random_range){.has_range = 1,
                                   .lo = attr_float(n, "low", 0.0f),
                                   .hi = attr_float(n, "high", 1.0f),
                                   .hi_open = 1,
                                   .rule = n->op_type};
        return r;
    }
    if (!strcmp(n->op_type, "Multinomial")) {
        r = (qkv_cli_random_range){
            .has_range = 1, .lo = 0, .hi = INFINITY, .integral = 1, .rule = n->op_type};
        return r;
    }
    if ((!strcmp(n->op_type, "Cast") || !strcmp(n->op_type, "Identity")) && n->n_inputs > 0 &&
        n->inputs[0] >= 0) {
        r = range_of(g, n->inputs[0], depth - 1);
        if (!strcmp(n->op_type, "Cast"))
            r.hi_open = 0;
        return r;
    }
    return r;
}

void qkv_cli_random_outputs(const qkv_model *model, qkv_cli_random_range *ranges, size_t n)
{
    memset(ranges, 0, n * sizeof *ranges);
    const qkv_ir_graph *g = model->graph;
    unsigned char *seen = malloc(g->n_values ? g->n_values : 1);
    if (!seen)
        return;
    for (size_t k = 0; k < n && k < g->n_outputs; k++) {
        memset(seen, 0, g->n_values);
        int32_t v = g->outputs[k];
        if (!depends_on_random(g, v, seen))
            continue;
        ranges[k] = range_of(g, v, 16);
        ranges[k].random = 1;
    }
    free(seen);
}

static const char *dims_text(const qkv_tensor *t, char *buf, size_t cap)
{
    size_t used = (size_t)snprintf(buf, cap, "[");
    for (int32_t i = 0; i < t->rank && i < QKV_MAX_RANK && used < cap; i++)
        used += (size_t)snprintf(buf + used, cap - used, "%s%lld", i ? ", " : "",
                                 (long long)t->dims[i]);
    if (used < cap)
        snprintf(buf + used, cap - used, "]");
    return buf;
}

int qkv_cli_check_random(const qkv_tensor *got, const qkv_tensor *expected,
                         const qkv_cli_random_range *r, qkv_cli_compare_result *res)
{
    memset(res, 0, sizeof *res);
    char a[160], b[160];
    if (got->dtype != expected->dtype) {
        snprintf(res->message, sizeof res->message, "dtype %s, expected %s",
                 qkv_dtype_name(got->dtype), qkv_dtype_name(expected->dtype));
        return 0;
    }
    int same = got->rank == expected->rank && got->rank >= 0 && got->rank <= QKV_MAX_RANK;
    for (int32_t i = 0; same && i < got->rank; i++)
        same = got->dims[i] == expected->dims[i];
    if (!same) {
        snprintf(res->message, sizeof res->message, "shape %s, expected %s",
                 dims_text(got, a, sizeof a), dims_text(expected, b, sizeof b));
        return 0;
    }
    size_t n = 1;
    for (int32_t i = 0; i < got->rank; i++)
        n *= (size_t)got->dims[i];
    res->elements = n;
    if (!r->has_range || !qkv_cli_dtype_numeric(got->dtype)) {
        res->match = 1;
        return 1;
    }
    if (n && (!got->data || got->data_bytes < n * (qkv_dtype_bits(got->dtype) / 8))) {
        snprintf(res->message, sizeof res->message, "%zu bytes of data for %zu elements",
                 got->data_bytes, n);
        return 0;
    }
    for (size_t i = 0; i < n; i++) {
        double v = qkv_cli_element(got, i, NULL);
        int ok =
            v >= r->lo && (r->hi_open ? v < r->hi : v <= r->hi) && (!r->integral || v == floor(v));
        if (ok)
            continue;
        res->mismatches++;
        if (res->mismatches > 1)
            continue;
        if (r->integral && r->lo == 0 && r->hi == 1)
            snprintf(res->message, sizeof res->message, "element %zu is %.9g, outside {0, 1} (%s)",
                     i, v, r->rule);
        else
            snprintf(res->message, sizeof res->message,
                     "element %zu is %.9g, outside [%.9g, %.9g%s%s (%s)", i, v, r->lo, r->hi,
                     r->hi_open ? ")" : "]", r->integral ? " or not an integer" : "", r->rule);
    }
    res->match = res->mismatches == 0;
    return res->match;
}
