/*
 * transpose_view.c - rewrites each Transpose that moves only dims of size 1
 * into a Reshape, which the planner makes a view of its input (no copy,
 * no step).
 *
 * Transpose(x, perm) lays out y[i] = x[j] with y's dim k being x's dim
 * perm[k]. Dims of size 1 contribute nothing to an element's offset, so
 * when the dims of x that are not known to be 1 appear in y in the same
 * order as in x (perm restricted to them is increasing), every element
 * keeps its offset: y is x's bytes under y's shape, i.e. Reshape(x, y's
 * dims). An unknown dim counts as not 1 (it must keep its place): the
 * rewrite is then right whatever its size.
 *
 * Conditions (else the node is left to the planner, which makes the same
 * view when the concrete shape shows it; plan_build.c):
 *  - x is a tensor of a known dtype other than string (Reshape's types:
 *    string elements own their characters and are never shared);
 *  - x has a known rank and no dim known to be 0 (a 0 in Reshape's shape
 *    would copy the input's dim; refused rather than using allowzero);
 *  - y's dims are all known, or one is unknown and the known ones have a
 *    product > 0 (that dim becomes -1, inferred uniquely);
 *  - perm is a permutation of the rank (absent: reversed dims).
 * When x is itself the output of a Reshape read only by this Transpose,
 * with a constant shape and its input and output shapes fully known (so it
 * cannot fail at run time), the new Reshape reads the Reshape's input and
 * both go: the out-projection's Reshape + Transpose of torch's
 * MultiheadAttention become one view.
 */
#include <stdio.h>
#include <string.h>

#include "error.h"
#include "pass_util.h"
#include "passes.h"

#define OPSET_RESHAPE 14

static bool all_known(const qkv_ir_value *v)
{
    if (v->rank < 0)
        return false;
    for (int32_t k = 0; k < v->rank; k++)
        if (v->dims[k] < 0)
            return false;
    return true;
}

/* The Reshape shape giving y's dims (y = Transpose(x, perm)): every known
 * dim, -1 for the one unknown dim. false when that is not exact (a 0 dim,
 * two unknown dims, or known dims of product 0 beside an unknown one). */
static bool view_shape(const qkv_ir_value *x, const int64_t *perm, int64_t *shape)
{
    int unknown = 0;
    for (int32_t k = 0; k < x->rank; k++) {
        shape[k] = x->dims[perm[k]];
        if (shape[k] == 0)
            return false;
        if (shape[k] < 0) {
            shape[k] = -1;
            unknown++;
        }
    }
    return unknown <= 1;
}

/* qkv_pass_try_fn: the Transpose node idx. */
static qkv_status try_at(qkv_ir_graph *g, const qkv_registry *reg, int32_t idx, bool *rewrote,
                         qkv_error *err)
{
    const qkv_ir_node *t = &g->nodes[idx];
    if (t->n_inputs != 1 || t->n_outputs != 1 || t->inputs[0] < 0 || t->outputs[0] < 0)
        return QKV_OK;
    int32_t x = t->inputs[0], y = t->outputs[0];
    const qkv_ir_value *xv = &g->values[x];
    int64_t perm[QKV_MAX_RANK], shape[QKV_MAX_RANK];
    if (xv->type_kind != QKV_KIND_TENSOR || g->values[y].type_kind != QKV_KIND_TENSOR ||
        xv->dtype == QKV_DTYPE_UNDEFINED || xv->dtype == QKV_DTYPE_STRING ||
        !qkv_pass_transpose_perm(t, xv->rank, perm) ||
        !qkv_pass_transpose_is_view(xv->dims, xv->rank, perm) || !view_shape(xv, perm, shape))
        return QKV_OK;

    /* a Reshape feeding only this Transpose, certain to succeed, is skipped */
    int32_t src = x, skipped = -1;
    const qkv_ir_node *p = qkv_pass_producer(g, x);
    if (p && qkv_pass_is_op(p, "Reshape") && p->n_inputs == 2 && p->inputs[0] >= 0 &&
        qkv_pass_is_const(g, p->inputs[1]) && p->n_outputs == 1 &&
        qkv_pass_sole_consumer(g, x) == idx && all_known(xv) &&
        all_known(&g->values[p->inputs[0]])) {
        src = p->inputs[0];
        skipped = g->values[x].producer;
    }

    char name[320];
    snprintf(name, sizeof name, "%s/view", t->name);
    int64_t len = xv->rank;
    int32_t sh =
        qkv_pass_add_const(g, name, QKV_DTYPE_INT64, 1, &len, shape, (size_t)len * sizeof *shape);
    int32_t in[2] = {src, sh};
    int32_t r = sh < 0 ? -1 : qkv_pass_add_node(g, name, "Reshape", "", OPSET_RESHAPE, in, 2, y);
    if (r < 0)
        return qkv_error_set(err, QKV_ERR_OUT_OF_MEMORY,
                             "transpose view at node '%s': out of memory", name);
    qkv_status st = qkv_pass_init_node(g, r, reg, "transpose view", err);
    if (st != QKV_OK) {
        g->nodes[r].dead = true; /* no state: init failed */
        qkv_graph_finalize(g, NULL);
        return st;
    }
    qkv_pass_kill_node(&g->nodes[idx]);
    int32_t shape_in = -1;
    if (skipped >= 0) {
        shape_in = g->nodes[skipped].n_inputs >= 2 ? g->nodes[skipped].inputs[1] : -1;
        qkv_pass_kill_node(&g->nodes[skipped]);
    }
    st = qkv_graph_finalize(g, err);
    if (st == QKV_OK && shape_in >= 0) /* its Constant node (folding off) may be unread now */
        qkv_pass_drop_unused_constant_nodes(g, &shape_in, 1);
    *rewrote = st == QKV_OK;
    return st;
}

qkv_status qkv_pass_transpose_view(qkv_ir_graph *g, const qkv_registry *reg, size_t *rewritten,
                                   qkv_error *err)
{
    size_t count = 0;
    qkv_status st = QKV_OK;
    if (rewritten)
        *rewritten = 0;
    if (!g || !reg || !qkv_registry_find(reg, "", "Reshape", OPSET_RESHAPE, NULL))
        return QKV_OK;
    st = qkv_pass_rewrite_all(g, reg, "Transpose", try_at, &count, err);
    if (rewritten)
        *rewritten = count;
    return st;
}
