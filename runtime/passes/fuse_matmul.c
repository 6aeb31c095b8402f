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
 *
 * Also matched:
 *  - Y0 = Gemm(A, B, C) (opset >= 7) with alpha = beta = 1, transA = 0, A
 *    of rank 2, B a float32 constant of rank 2 and C absent or a bias as
 *    above (its step then taken): A @ op(B) + C. With transB = 1 the
 *    FusedMatMul reads a new constant Bᵀ; the original B is released when
 *    nothing else reads it.
 *  - Yv = Reshape(Y2, shape) between the last step and the residual Add
 *    (torch's out-projection: Gemm, then Reshape back to (S, B, E), which
 *    the Transpose-view pass joined with the Transpose to (B, S, E)), when
 *    its shape is a constant and Y2's and Yv's shapes are fully known (so
 *    the Reshape only renames the dims of the same row-major bytes) and R has exactly Yv's shape: then
 *    Add(Yv, R) = Reshape(Y2 + Reshape(R, Y2's shape), Yv's shape), both
 *    Reshapes views; the FusedMatMul reads R's view and writes Y2's shape.
 */
#include <stdio.h>
#include <stdlib.h>
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
    bool trans_b;           /* a Gemm with transB = 1: the FusedMatMul reads Bᵀ */
    int32_t y_inner;        /* with a Reshape before the residual: its input (Y2), else -1 */
    size_t n_chain;
    int32_t chain[5]; /* the nodes replaced, MatMul first */
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

/* The attribute `name` of node n: an INT (or absent: `def`) into *i, a
 * FLOAT (or absent: `def`) into *f; false for another type. */
static bool int_attr(const qkv_ir_node *n, const char *name, int64_t def, int64_t *i)
{
    const qkv_ir_attr *a = qkv_node_attr(n, name);
    *i = a ? a->i : def;
    return !a || a->type == QKV_ATTR_INT;
}

static bool float_attr(const qkv_ir_node *n, const char *name, float def, float *f)
{
    const qkv_ir_attr *a = qkv_node_attr(n, name);
    *f = a ? a->f : def;
    return !a || a->type == QKV_ATTR_FLOAT;
}

/* Gemm node n computes A @ op(B) + C as a MatMul with a bias does (see the
 * top): sets m's operands, bias and trans_b. */
static bool gemm_as_matmul(const qkv_ir_graph *g, const qkv_ir_node *n, mm_match *m)
{
    int64_t ta, tb;
    float alpha, beta;
    if (n->opset < 7 || n->n_inputs < 2 || n->n_inputs > 3 || n->n_outputs != 1 ||
        !int_attr(n, "transA", 0, &ta) || !int_attr(n, "transB", 0, &tb) ||
        !float_attr(n, "alpha", 1.0f, &alpha) || !float_attr(n, "beta", 1.0f, &beta) || ta != 0 ||
        (tb != 0 && tb != 1) || alpha != 1.0f || beta != 1.0f)
        return false;
    m->a = n->inputs[0];
    m->b = n->inputs[1];
    m->trans_b = tb == 1;
    qkv_tensor bt;
    if (m->a < 0 || m->b < 0 || !qkv_pass_const_tensor(g, m->b, &bt) ||
        bt.dtype != QKV_DTYPE_FLOAT || bt.rank != 2 || g->values[m->a].rank != 2)
        return false;
    int64_t nn = bt.dims[m->trans_b ? 0 : 1];
    if (bt.data_bytes < (size_t)(nn * bt.dims[m->trans_b ? 1 : 0]) * sizeof(float))
        return false;
    if (n->n_inputs == 3 && n->inputs[2] >= 0) {
        if (!is_bias(g, n->inputs[2], nn, 2))
            return false;
        m->bias = n->inputs[2];
        m->bias_reshape = g->values[m->bias].rank != 1;
    }
    return true;
}

/* The static dims of v are all known and > 0 (as a Reshape shape, a 0
 * would copy the input's dim). */
static bool static_shape(const qkv_ir_graph *g, int32_t v)
{
    const qkv_ir_value *x = &g->values[v];
    if (x->rank < 0)
        return false;
    for (int32_t k = 0; k < x->rank; k++)
        if (x->dims[k] <= 0)
            return false;
    return true;
}

/* The Add reading cur (its sole consumer n, or that of a Reshape that is
 * n, see the top) takes residual R: records it (and the Reshape) in m. */
static void match_residual(const qkv_ir_graph *g, mm_match *m, int32_t cur, int32_t c)
{
    const qkv_ir_node *n = c >= 0 ? &g->nodes[c] : NULL;
    int32_t view = -1, inner = -1, other;
    if (n && qkv_pass_is_op(n, "Reshape") && n->n_inputs == 2 && n->inputs[0] == cur &&
        qkv_pass_is_const(g, n->inputs[1]) && n->n_outputs == 1 && is_f32(g, n->outputs[0]) &&
        static_shape(g, cur) && static_shape(g, n->outputs[0])) {
        view = c;
        inner = cur;
        cur = n->outputs[0];
        c = qkv_pass_sole_consumer(g, cur);
        n = c >= 0 ? &g->nodes[c] : NULL;
    }
    if (n && qkv_pass_is_op(n, "Add") && (other = other_input(n, cur)) >= 0 && is_f32(g, other) &&
        is_f32(g, n->outputs[0]) && same_shape(g, other, cur) &&
        same_shape(g, n->outputs[0], cur)) {
        if (view >= 0)
            m->chain[m->n_chain++] = view;
        m->y_inner = inner;
        m->residual = other;
        m->chain[m->n_chain++] = c;
        m->y = n->outputs[0];
    }
}

static bool match_at(const qkv_ir_graph *g, int32_t idx, mm_match *m)
{
    const qkv_ir_node *mm = &g->nodes[idx];
    memset(m, 0, sizeof *m);
    m->bias = m->residual = m->y_inner = -1;
    m->activation = "";
    m->matmul = idx;
    if (qkv_pass_is_op(mm, "Gemm")) {
        if (!gemm_as_matmul(g, mm, m))
            return false;
    } else {
        if (mm->n_inputs != 2 || mm->n_outputs != 1)
            return false;
        m->a = mm->inputs[0];
        m->b = mm->inputs[1];
    }
    const qkv_ir_value *a = &g->values[m->a], *b = &g->values[m->b];
    int32_t cur = mm->outputs[0];
    int64_t n_cols = b->dims[m->trans_b ? 0 : 1];
    if (!is_f32(g, m->a) || !is_f32(g, m->b) || !is_f32(g, cur) || b->rank != 2 || a->rank == 0 ||
        n_cols < 0)
        return false;
    /* Y0 has A's rank, at least 1: a (N) bias never changes its shape */
    int32_t rank = g->values[cur].rank >= 1 ? g->values[cur].rank : 1;
    m->chain[m->n_chain++] = idx;

    int32_t c = qkv_pass_sole_consumer(g, cur);
    const qkv_ir_node *n = c >= 0 ? &g->nodes[c] : NULL;
    int32_t other;
    if (m->bias < 0 && n && qkv_pass_is_op(n, "Add") && (other = other_input(n, cur)) >= 0 &&
        is_bias(g, other, n_cols, rank) && is_f32(g, n->outputs[0])) {
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
    m->y = cur;
    match_residual(g, m, cur, c);
    return m->n_chain > 1; /* a Gemm with only its bias gains nothing */
}

/* A new constant "NAME/ROLE" of dtype int64 holding v's static dims; -1
 * when out of memory. */
static int32_t shape_const(qkv_ir_graph *g, const char *name, const char *role, int32_t v)
{
    char cname[340];
    int64_t dims[QKV_MAX_RANK], len = g->values[v].rank;
    memcpy(dims, g->values[v].dims, (size_t)len * sizeof *dims);
    snprintf(cname, sizeof cname, "%s/%s", name, role);
    return qkv_pass_add_const(g, cname, QKV_DTYPE_INT64, 1, &len, dims, (size_t)len * sizeof *dims);
}

/* The new nodes of a rewrite (all or none stay). */
typedef struct mm_new {
    size_t n;
    int32_t nodes[3];
} mm_new;

/* Reshape(x, shape) named NAME/ROLE writing `out` (-1: a new value, given
 * back); -1 when out of memory. */
static int32_t add_view(qkv_ir_graph *g, mm_new *nw, const char *name, const char *role, int32_t x,
                        int32_t shape, int32_t out)
{
    char vname[340];
    snprintf(vname, sizeof vname, "%s/%s", name, role);
    if (shape < 0 || (out < 0 && (out = qkv_pass_add_value(g, vname, QKV_VALUE_ACTIVATION)) < 0))
        return -1;
    int32_t in[2] = {x, shape};
    int32_t idx = qkv_pass_add_node(g, vname, "Reshape", "", 14, in, 2, out);
    if (idx < 0)
        return -1;
    nw->nodes[nw->n++] = idx;
    return out;
}

/* B (N, K) of a transB Gemm as a new (K, N) constant; -1 when out of memory. */
static int32_t transposed_b(qkv_ir_graph *g, const char *name, int32_t b)
{
    qkv_tensor c;
    qkv_pass_const_tensor(g, b, &c); /* gemm_as_matmul checked it */
    int64_t n = c.dims[0], k = c.dims[1], dims[2] = {k, n};
    size_t bytes = (size_t)(n * k) * sizeof(float);
    float *t = malloc(bytes ? bytes : 1);
    if (!t)
        return -1;
    const float *src = c.data;
    for (int64_t i = 0; i < n; i++)
        for (int64_t j = 0; j < k; j++)
            t[j * n + i] = src[i * k + j];
    char cname[340];
    snprintf(cname, sizeof cname, "%s/B_t", name);
    int32_t id = qkv_pass_add_const(g, cname, QKV_DTYPE_FLOAT, 2, dims, t, bytes);
    free(t);
    return id;
}

/* Constant v's data is freed when nothing reads it any more (a transB
 * Gemm's B, replaced by its transpose), as prepack releases what every
 * reader packed. */
static void release_unread(qkv_ir_graph *g, int32_t v)
{
    qkv_ir_value *x = &g->values[v];
    if (x->kind != QKV_VALUE_CONSTANT || x->n_consumers || x->is_output || !x->data)
        return;
    qkv_value_release_data(x);
    x->packed = true;
}

/* Drops the new nodes of a failed rewrite: the first `inited` of them ran
 * their init (state to destroy), the others did not. */
static void undo(qkv_ir_graph *g, const mm_new *nw, size_t inited)
{
    for (size_t k = 0; k < nw->n; k++) {
        if (k < inited)
            qkv_pass_kill_node(&g->nodes[nw->nodes[k]]);
        else
            g->nodes[nw->nodes[k]].dead = true;
    }
    qkv_graph_finalize(g, NULL);
}

/* The bias as the FusedMatMul reads it: m's, or a new (N) copy of a bias of
 * rank > 1; -1 when out of memory (or none). */
static int32_t bias_of(qkv_ir_graph *g, const mm_match *m, const char *name)
{
    if (m->bias < 0 || !m->bias_reshape)
        return m->bias;
    qkv_tensor c;
    qkv_pass_const_tensor(g, m->bias, &c); /* is_bias checked it */
    int64_t n = c.dims[c.rank - 1];
    char cname[340];
    snprintf(cname, sizeof cname, "%s/bias", name);
    return qkv_pass_add_const(g, cname, QKV_DTYPE_FLOAT, 1, &n, c.data, (size_t)n * sizeof(float));
}

/* Adds the FusedMatMul (and the views around it) for m to g; false when
 * out of memory. */
static bool build(qkv_ir_graph *g, const mm_match *m, const char *name, mm_new *nw)
{
    int32_t b = m->b, residual = m->residual, y = m->y;
    if (m->trans_b && (b = transposed_b(g, name, m->b)) < 0)
        return false;
    if (m->y_inner >= 0) {
        /* Y2 + Reshape(R, Y2's shape), viewed as the Add's shape */
        y = m->y_inner;
        if ((residual = add_view(g, nw, name, "residual_view", m->residual,
                                 shape_const(g, name, "residual_shape", m->y_inner), -1)) < 0 ||
            add_view(g, nw, name, "view", m->y_inner, shape_const(g, name, "shape", m->y), m->y) <
                0)
            return false;
    }
    int32_t bias = bias_of(g, m, name);
    if (m->bias >= 0 && bias < 0)
        return false;
    int32_t in[4] = {m->a, b, bias, residual};
    size_t n_in = residual >= 0 ? 4 : bias >= 0 ? 3 : 2;
    int32_t idx = qkv_pass_add_node(g, name, "FusedMatMul", "qkv", 1, in, n_in, y);
    if (idx < 0)
        return false;
    nw->nodes[nw->n++] = idx;
    return !m->activation[0] || qkv_pass_add_string_attr(g, idx, "activation", m->activation);
}

static qkv_status rewrite(qkv_ir_graph *g, const qkv_registry *reg, const mm_match *m,
                          qkv_error *err)
{
    char name[320];
    snprintf(name, sizeof name, "%s/FusedMatMul", g->nodes[m->matmul].name);
    mm_new nw = {0};
    if (!build(g, m, name, &nw)) {
        undo(g, &nw, 0);
        return qkv_error_set(err, QKV_ERR_OUT_OF_MEMORY,
                             "matmul fusion at node '%s': out of memory", name);
    }
    qkv_status st = QKV_OK;
    size_t inited = 0;
    for (; inited < nw.n; inited++)
        if ((st = qkv_pass_init_node(g, nw.nodes[inited], reg, "matmul fusion", err)) != QKV_OK) {
            undo(g, &nw, inited); /* the failed one has no state */
            return st;
        }
    /* what the replaced nodes read and may leave unread: Constant nodes
     * (folding off) and B when its transpose replaced it */
    int32_t unread[3];
    size_t n_unread = 0;
    if (m->bias >= 0)
        unread[n_unread++] = m->bias;
    unread[n_unread++] = m->b;
    if (m->y_inner >= 0) {
        const qkv_ir_node *view = &g->nodes[m->chain[m->n_chain - 2]];
        if (view->inputs[1] >= 0)
            unread[n_unread++] = view->inputs[1];
    }
    for (size_t c = 0; c < m->n_chain; c++)
        qkv_pass_kill_node(&g->nodes[m->chain[c]]);
    st = qkv_graph_finalize(g, err);
    if (st == QKV_OK)
        qkv_pass_drop_unused_constant_nodes(g, unread, n_unread);
    if (st == QKV_OK && m->trans_b)
        release_unread(g, m->b);
    return st;
}

/* qkv_pass_try_fn: the chain that starts at the MatMul node idx. */
static qkv_status try_at(qkv_ir_graph *g, const qkv_registry *reg, int32_t idx, bool *rewrote,
                         qkv_error *err)
{
    mm_match m;
    if (!match_at(g, idx, &m) ||
        (m.y_inner >= 0 && !qkv_registry_find(reg, "", "Reshape", 14, NULL)))
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
    size_t by_gemm = 0;
    if (st == QKV_OK)
        st = qkv_pass_rewrite_all(g, reg, "Gemm", try_at, &by_gemm, err);
    if (fused)
        *fused = count + by_gemm;
    return st;
}
