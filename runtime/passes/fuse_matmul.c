/*
 * fuse_matmul.c - rewrites MatMul followed by its bias, activation and
 * residual into one qkv.FusedMatMul node (domain "qkv", opset 1; the op is
 * described in ops/fused_matmul.c), so that the MatMul's output is written
 * once and read by nothing else instead of once per elementwise op.
 *
 * Matched, on float32 only, anchored at each MatMul(A, B) with B of rank 2
 * (N known) and A not a scalar:
 *
 *   Y0 = MatMul(A, B)
 *   Y1 = Add(Y0, bias) | Add(bias, Y0)     bias a constant of shape (N) or
 *                                          (1, ..., 1, N), rank <= Y0's
 *                                          (a constant node's output, with
 *                                          constant folding off, counts)
 *   Y2 = Relu(Y1) | Gelu(Y1)               Gelu with approximate none or
 *                                          tanh (the GELU pass turns the
 *                                          erf form into Gelu first)
 *   Y  = Add(Y2, R) | Add(R, Y2)           R of exactly Y2's shape (every
 *                                          dim known and equal, or the same
 *                                          named symbolic dim)
 *
 * each step optional but at least one present, and taken in that order.
 * Every intermediate (Y0, Y1, Y2) must have that single consumer and not be
 * a graph output. A bias of rank > 1 becomes a new (N) constant (the
 * original stays for its other readers, if any). A MatMul with nothing to
 * take in is left alone.
 */
#include <stdio.h>
#include <string.h>

#include "error.h"
#include "pass_util.h"
#include "passes.h"

typedef struct mm_match {
    int32_t matmul;         /* the anchor's node index */
    int32_t a, b;           /* its operands */
    int32_t bias;           /* the bias constant, -1 none */
    bool bias_reshape;      /* bias has rank > 1: a (N) copy is needed */
    const char *activation; /* "" none */
    int32_t residual;       /* -1 none */
    int32_t y;              /* the last output taken in */
    size_t n_chain;
    int32_t chain[4]; /* the nodes replaced, MatMul first */
} mm_match;

static bool is_f32(const qkv_ir_graph *g, int32_t v)
{
    return v >= 0 && g->values[v].dtype == QKV_DTYPE_FLOAT;
}

/* The other input of binary node n when one input is v (and the other is
 * a different value); else -1. */
static int32_t other_input(const qkv_ir_node *n, int32_t v)
{
    if (n->n_inputs != 2 || n->n_outputs != 1 || n->inputs[0] == n->inputs[1])
        return -1;
    return n->inputs[0] == v ? n->inputs[1] : n->inputs[1] == v ? n->inputs[0] : -1;
}

/* A float32 constant of shape (N) or (1, ..., 1, N) of rank <= max_rank. */
static bool is_bias(const qkv_ir_graph *g, int32_t v, int64_t n, int32_t max_rank)
{
    qkv_tensor c;
    if (!qkv_pass_const_tensor(g, v, &c) || c.dtype != QKV_DTYPE_FLOAT || c.rank < 1 ||
        c.rank > max_rank || c.dims[c.rank - 1] != n || c.data_bytes < (size_t)n * sizeof(float))
        return false;
    for (int32_t k = 0; k + 1 < c.rank; k++)
        if (c.dims[k] != 1)
            return false;
    return true;
}

/* u and v certainly have the same shape. */
static bool same_shape(const qkv_ir_graph *g, int32_t u, int32_t v)
{
    const qkv_ir_value *p = &g->values[u], *q = &g->values[v];
    if (p->rank < 0 || p->rank != q->rank)
        return false;
    for (int32_t k = 0; k < p->rank; k++) {
        if (p->dims[k] >= 0 && p->dims[k] == q->dims[k])
            continue;
        if (p->dims[k] < 0 && q->dims[k] < 0 && p->dim_params[k] && q->dim_params[k] &&
            strcmp(p->dim_params[k], q->dim_params[k]) == 0)
            continue;
        return false;
    }
    return true;
}

/* The activation attribute for a Relu or Gelu node, or NULL for another. */
static const char *activation_of(const qkv_ir_node *n)
{
    if (n->n_inputs != 1 || n->n_outputs != 1)
        return NULL;
    if (qkv_pass_is_op(n, "Relu"))
        return "relu";
    if (!qkv_pass_is_op(n, "Gelu"))
        return NULL;
    const qkv_ir_attr *a = qkv_node_attr(n, "approximate");
    if (!a || (a->type == QKV_ATTR_STRING && strcmp(a->s, "none") == 0))
        return "gelu";
    if (a->type == QKV_ATTR_STRING && strcmp(a->s, "tanh") == 0)
        return "gelu_tanh";
    return NULL;
}

static bool match_at(const qkv_ir_graph *g, int32_t idx, mm_match *m)
{
    const qkv_ir_node *mm = &g->nodes[idx];
    memset(m, 0, sizeof *m);
    m->bias = m->residual = -1;
    m->activation = "";
    if (mm->n_inputs != 2 || mm->n_outputs != 1)
        return false;
    m->matmul = idx;
    m->a = mm->inputs[0];
    m->b = mm->inputs[1];
    const qkv_ir_value *a = &g->values[m->a], *b = &g->values[m->b];
    int32_t cur = mm->outputs[0];
    if (!is_f32(g, m->a) || !is_f32(g, m->b) || !is_f32(g, cur) || b->rank != 2 || a->rank == 0 ||
        b->dims[1] < 0)
        return false;
    /* Y0 has A's rank, at least 1: a (N) bias never changes its shape */
    int32_t rank = g->values[cur].rank >= 1 ? g->values[cur].rank : 1;
    m->chain[m->n_chain++] = idx;

    int32_t c = qkv_pass_sole_consumer(g, cur);
    const qkv_ir_node *n = c >= 0 ? &g->nodes[c] : NULL;
    int32_t other;
    if (n && qkv_pass_is_op(n, "Add") && (other = other_input(n, cur)) >= 0 &&
        is_bias(g, other, b->dims[1], rank) && is_f32(g, n->outputs[0])) {
        m->bias = other;
        m->bias_reshape = g->values[other].rank != 1;
        m->chain[m->n_chain++] = c;
        cur = n->outputs[0];
        c = qkv_pass_sole_consumer(g, cur);
        n = c >= 0 ? &g->nodes[c] : NULL;
    }
    const char *act = n ? activation_of(n) : NULL;
    if (act && is_f32(g, n->outputs[0])) {
        m->activation = act;
        m->chain[m->n_chain++] = c;
        cur = n->outputs[0];
        c = qkv_pass_sole_consumer(g, cur);
        n = c >= 0 ? &g->nodes[c] : NULL;
    }
    if (n && qkv_pass_is_op(n, "Add") && (other = other_input(n, cur)) >= 0 && is_f32(g, other) &&
        is_f32(g, n->outputs[0]) && same_shape(g, other, cur) &&
        same_shape(g, n->outputs[0], cur)) {
        m->residual = other;
        m->chain[m->n_chain++] = c;
        cur = n->outputs[0];
    }
    m->y = cur;
    return m->n_chain > 1;
}

static qkv_status rewrite(qkv_ir_graph *g, const qkv_registry *reg, const mm_match *m,
                          qkv_error *err)
{
    char name[320];
    snprintf(name, sizeof name, "%s/FusedMatMul", g->nodes[m->matmul].name);
    int32_t bias = m->bias;
    if (bias >= 0 && m->bias_reshape) {
        qkv_tensor c;
        qkv_pass_const_tensor(g, m->bias, &c); /* is_bias checked it */
        int64_t n = c.dims[c.rank - 1];
        char cname[340];
        snprintf(cname, sizeof cname, "%s/bias", name);
        bias =
            qkv_pass_add_const(g, cname, QKV_DTYPE_FLOAT, 1, &n, c.data, (size_t)n * sizeof(float));
        if (bias < 0)
            return qkv_error_set(err, QKV_ERR_OUT_OF_MEMORY,
                                 "matmul fusion at node '%s': out of memory", name);
    }
    int32_t in[4] = {m->a, m->b, bias, m->residual};
    size_t n_in = m->residual >= 0 ? 4 : bias >= 0 ? 3 : 2;
    int32_t idx = qkv_pass_add_node(g, name, "FusedMatMul", "qkv", 1, in, n_in, m->y);
    if (idx < 0 ||
        (m->activation[0] && !qkv_pass_add_string_attr(g, idx, "activation", m->activation))) {
        if (idx >= 0) {
            g->nodes[idx].dead = true;
            qkv_graph_finalize(g, NULL);
        }
        return qkv_error_set(err, QKV_ERR_OUT_OF_MEMORY,
                             "matmul fusion at node '%s': out of memory", name);
    }
    qkv_status st = qkv_pass_init_node(g, idx, reg, "matmul fusion", err);
    if (st != QKV_OK) {
        g->nodes[idx].dead = true; /* no state: init failed */
        qkv_graph_finalize(g, NULL);
        return st;
    }
    for (size_t c = 0; c < m->n_chain; c++)
        qkv_pass_kill_node(&g->nodes[m->chain[c]]);
    st = qkv_graph_finalize(g, err);
    if (st == QKV_OK && m->bias_reshape) /* a Constant node (folding off) may be unread now */
        qkv_pass_drop_unused_constant_nodes(g, &m->bias, 1);
    return st;
}

/* qkv_pass_try_fn: the chain that starts at the MatMul node idx. */
static qkv_status try_at(qkv_ir_graph *g, const qkv_registry *reg, int32_t idx, bool *rewrote,
                         qkv_error *err)
{
    mm_match m;
    if (!match_at(g, idx, &m))
        return QKV_OK;
    qkv_status st = rewrite(g, reg, &m, err);
    *rewrote = st == QKV_OK;
    return st;
}

qkv_status qkv_pass_fuse_matmul(qkv_ir_graph *g, const qkv_registry *reg, size_t *fused,
                                qkv_error *err)
{
    size_t count = 0;
    qkv_status st = QKV_OK;
    if (fused)
        *fused = 0;
    if (!g || !reg || !qkv_registry_find(reg, "qkv", "FusedMatMul", 1, NULL))
        return QKV_OK;
    st = qkv_pass_rewrite_all(g, reg, "MatMul", try_at, &count, err);
    if (fused)
        *fused = count;
    return st;
}
