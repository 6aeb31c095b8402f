/*
 * fuse_gelu.c - rewrites the erf form of GELU that exporters emit (PyTorch
 * for nn.GELU / F.gelu below opset 20, BERT's hand-written gelu) into one
 * Gelu node.
 *
 * Matched, anchored at each Erf (x float32 or float16; every constant a
 * one-element constant of x's type, compared by value):
 *
 *   v = Div(x, sqrt 2) | Mul(x, 1/sqrt 2) | Mul(1/sqrt 2, x)
 *   e = Erf(v)
 *   a = Add(e, 1) | Add(1, e)
 *   then one of
 *     y = H(Mul(x, a))       (x (1 + erf)) 0.5
 *     y = Mul(x, H(a))       x (0.5 (1 + erf))
 *     y = Mul(H(x), a)       (x 0.5) (1 + erf), the Mul H(x) used only here
 *   with H(t) = Mul(t, 0.5) | Mul(0.5, t) | Div(t, 2), and each Mul's two
 *   operands in either order
 *
 * becomes y = Gelu(x) (approximate "none"): the ai.onnx op of opset 20, set
 * on the node whatever the model imports (as the attention pass creates
 * Attention-23). The Gelu kernel is the built-in one of ops/gelu.c, so a
 * model importing opset 14-17 still has one, and a backend implementing
 * ai.onnx Gelu takes these nodes like any other; no private op is needed.
 *
 * Conditions (else nothing changes): every intermediate (v, e, a, the inner
 * Mul/H output) has that single consumer and is not a graph output; the
 * constants are within 1e-6 relative of 1/sqrt 2, sqrt 2, 1, 0.5 and 2
 * (float16: half an ulp) and have rank 0, or a rank x is known to have at
 * least (so no broadcast changes y's shape); x, every intermediate and y
 * have one float type. The unfused graph rounds after each op (float16:
 * to float16); Gelu rounds once, so fused results are as or more accurate.
 */
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "error.h"
#include "pass_util.h"
#include "passes.h"

#define GELU_OPSET 20
#define SQRT2 1.41421356237309504880

enum { GELU_CHAIN = 5 };

typedef struct gelu_match {
    int32_t x, y;
    size_t n_chain;
    int32_t chain[GELU_CHAIN]; /* the nodes replaced */
} gelu_match;

/* A binary node's operands: `data` the one that is not the constant `want`
 * (Mul, Add: either side; Div: the constant must be the divisor), the
 * constant of rank <= data's (so it broadcasts without changing the shape). */
static bool const_operand(const qkv_ir_graph *g, const qkv_ir_node *n, qkv_dtype t, double want,
                          int32_t *data)
{
    if (n->n_inputs != 2 || n->n_outputs != 1)
        return false;
    for (int side = 1; side >= 0; side--) {
        if (side == 0 && !qkv_pass_is_op(n, "Mul") && !qkv_pass_is_op(n, "Add"))
            break; /* Div: only the divisor may be the constant */
        double c;
        int32_t cv = n->inputs[side], dv = n->inputs[1 - side];
        int32_t max_rank = g->values[dv].rank < 0 ? 0 : g->values[dv].rank;
        if (!qkv_pass_is_const(g, dv) && qkv_pass_const_scalar(g, cv, max_rank, &c) &&
            g->values[cv].dtype == t && qkv_pass_const_near(c, want, t)) {
            *data = dv;
            return true;
        }
    }
    return false;
}

/* n computes t * 0.5 (Mul by 0.5 or Div by 2) of some `data` operand. */
static bool halves(const qkv_ir_graph *g, const qkv_ir_node *n, qkv_dtype t, int32_t *data)
{
    if (qkv_pass_is_op(n, "Mul"))
        return const_operand(g, n, t, 0.5, data);
    if (qkv_pass_is_op(n, "Div"))
        return const_operand(g, n, t, 2.0, data);
    return false;
}

/* The other operand of binary node n when one of them is `v`, else -1. */
static int32_t other_operand(const qkv_ir_node *n, int32_t v)
{
    if (n->n_inputs != 2 || n->inputs[0] == n->inputs[1])
        return -1;
    return n->inputs[0] == v ? n->inputs[1] : n->inputs[1] == v ? n->inputs[0] : -1;
}

static bool add_node(gelu_match *m, int32_t idx)
{
    if (idx < 0 || m->n_chain == GELU_CHAIN)
        return false;
    m->chain[m->n_chain++] = idx;
    return true;
}

/* The tail after a = 1 + erf: which of the three product forms it is. */
static bool match_product(const qkv_ir_graph *g, int32_t a, qkv_dtype t, gelu_match *m)
{
    int32_t i1 = qkv_pass_sole_consumer(g, a), data;
    if (i1 < 0 || (!qkv_pass_is_op(&g->nodes[i1], "Mul") && !qkv_pass_is_op(&g->nodes[i1], "Div")))
        return false;
    const qkv_ir_node *n1 = &g->nodes[i1];
    if (n1->n_outputs != 1)
        return false;
    int32_t out1 = n1->outputs[0];
    if (!add_node(m, i1))
        return false;
    if (halves(g, n1, t, &data) && data == a) {
        /* x (0.5 (1 + erf)) */
        int32_t i2 = qkv_pass_sole_consumer(g, out1);
        if (i2 < 0 || !qkv_pass_is_op(&g->nodes[i2], "Mul") ||
            other_operand(&g->nodes[i2], out1) != m->x)
            return false;
        m->y = g->nodes[i2].outputs[0];
        return add_node(m, i2);
    }
    if (!qkv_pass_is_op(n1, "Mul"))
        return false;
    int32_t other = other_operand(n1, a);
    if (other == m->x) {
        /* (x (1 + erf)) 0.5 */
        int32_t i2 = qkv_pass_sole_consumer(g, out1);
        if (i2 < 0 || !halves(g, &g->nodes[i2], t, &data) || data != out1)
            return false;
        m->y = g->nodes[i2].outputs[0];
        return add_node(m, i2);
    }
    /* (x 0.5) (1 + erf): other = H(x), read only here */
    const qkv_ir_node *h = qkv_pass_producer(g, other);
    if (!h || qkv_pass_sole_consumer(g, other) != i1 || !halves(g, h, t, &data) || data != m->x)
        return false;
    m->y = out1;
    return add_node(m, g->values[other].producer);
}

/* Is the Erf at index e the middle of a GELU? Fills m. */
static bool match_at(const qkv_ir_graph *g, int32_t e, gelu_match *m)
{
    memset(m, 0, sizeof *m);
    const qkv_ir_node *erf = &g->nodes[e];
    if (erf->n_inputs != 1 || erf->n_outputs != 1)
        return false;
    int32_t v = erf->inputs[0], ev = erf->outputs[0];
    qkv_dtype t = g->values[ev].dtype;
    if (t != QKV_DTYPE_FLOAT && t != QKV_DTYPE_FLOAT16)
        return false;
    /* v = x / sqrt 2 */
    const qkv_ir_node *scale = qkv_pass_producer(g, v);
    if (!scale || qkv_pass_sole_consumer(g, v) != e)
        return false;
    int32_t x = -1;
    if (qkv_pass_is_op(scale, "Mul")) {
        if (!const_operand(g, scale, t, 1.0 / SQRT2, &x))
            return false;
    } else if (qkv_pass_is_op(scale, "Div")) {
        if (!const_operand(g, scale, t, SQRT2, &x))
            return false;
    } else {
        return false;
    }
    const qkv_ir_value *xv = &g->values[x];
    if (xv->dtype != t)
        return false;
    m->x = x;
    if (!add_node(m, g->values[v].producer) || !add_node(m, e))
        return false;
    /* a = 1 + erf */
    int32_t ia = qkv_pass_sole_consumer(g, ev), one_side;
    if (ia < 0 || !qkv_pass_is_op(&g->nodes[ia], "Add") ||
        !const_operand(g, &g->nodes[ia], t, 1.0, &one_side) || one_side != ev || !add_node(m, ia))
        return false;
    int32_t a = g->nodes[ia].outputs[0];
    if (!match_product(g, a, t, m))
        return false;
    /* y has x's type (and, the constants having rank <= x's, x's shape) */
    return g->values[m->y].dtype == t;
}

static qkv_status rewrite(qkv_ir_graph *g, const qkv_registry *reg, const gelu_match *m,
                          int32_t erf_idx, qkv_error *err)
{
    char name[320];
    snprintf(name, sizeof name, "%s/Gelu", g->nodes[erf_idx].name);
    int32_t idx = qkv_pass_add_node(g, name, "Gelu", "", GELU_OPSET, &m->x, 1, m->y);
    if (idx < 0)
        return qkv_error_set(err, QKV_ERR_OUT_OF_MEMORY, "gelu fusion at node '%s': out of memory",
                             name);
    qkv_status st = qkv_pass_init_node(g, idx, reg, "gelu fusion", err);
    if (st != QKV_OK) {
        g->nodes[idx].dead = true; /* no state: init failed */
        qkv_graph_finalize(g, NULL);
        return st;
    }
    /* the constants' values: Constant nodes (folding off) left unread go too */
    int32_t consts[2 * GELU_CHAIN];
    size_t n_consts = 0;
    for (size_t c = 0; c < m->n_chain; c++) {
        qkv_ir_node *n = &g->nodes[m->chain[c]];
        for (size_t k = 0; k < n->n_inputs && n_consts < 2 * GELU_CHAIN; k++)
            if (n->inputs[k] >= 0 && n->inputs[k] != m->x)
                consts[n_consts++] = n->inputs[k];
        qkv_pass_kill_node(n);
    }
    st = qkv_graph_finalize(g, err);
    if (st == QKV_OK)
        qkv_pass_drop_unused_constant_nodes(g, consts, n_consts);
    return st;
}

/* qkv_pass_try_fn: the GELU pattern around the Erf node idx. */
static qkv_status try_at(qkv_ir_graph *g, const qkv_registry *reg, int32_t idx, bool *rewrote,
                         qkv_error *err)
{
    gelu_match m;
    if (!match_at(g, idx, &m))
        return QKV_OK;
    qkv_status st = rewrite(g, reg, &m, idx, err);
    *rewrote = st == QKV_OK;
    return st;
}

qkv_status qkv_pass_fuse_gelu(qkv_ir_graph *g, const qkv_registry *reg, size_t *fused,
                              qkv_error *err)
{
    size_t count = 0;
    qkv_status st = QKV_OK;
    if (fused)
        *fused = 0;
    if (!g || !reg || !qkv_registry_find(reg, "", "Gelu", GELU_OPSET, NULL))
        return QKV_OK;
    st = qkv_pass_rewrite_all(g, reg, "Erf", try_at, &count, err);
    if (fused)
        *fused = count;
    return st;
}
