/*
 * fuse_attention_match.c - recognising an attention core (see the top of
 * fuse_attention.c for the forms and the conditions): from the Q Kᵀ
 * product (MatMul or Einsum) down the scores to the Softmax and the P V
 * product, then up from the product's operands through scale ops and
 * Transposes to Q and K. The mask and bias terms met on the way are
 * fuse_attention_mask.c's. Nothing here changes the graph.
 */
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "fuse_attention.h"
#include "pass_util.h"
#include "size_math.h"

/* ---- small queries ------------------------------------------------------------ */

bool qkv_fuse_attn_is_f32(const qkv_ir_graph *g, int32_t v, int32_t rank)
{
    return v >= 0 && g->values[v].dtype == QKV_DTYPE_FLOAT && g->values[v].rank == rank;
}

/* Identity, or a Cast of a float32 tensor of rank r to float32 (exporters
 * emit one around Softmax): nodes whose output equals their input. */
static bool is_noop(const qkv_ir_graph *g, const qkv_ir_node *n, int32_t r)
{
    if (n->n_inputs != 1 || n->n_outputs != 1 || !qkv_fuse_attn_is_f32(g, n->inputs[0], r))
        return false;
    if (qkv_pass_is_op(n, "Identity"))
        return true;
    const qkv_ir_attr *to = qkv_node_attr(n, "to");
    return qkv_pass_is_op(n, "Cast") && to && to->type == QKV_ATTR_INT && to->i == QKV_DTYPE_FLOAT;
}

bool qkv_fuse_attn_scalar_of(const qkv_ir_graph *g, int32_t v, int32_t max_rank, double *out)
{
    if (v < 0)
        return false;
    const qkv_ir_value *c = &g->values[v];
    size_t n;
    if (c->kind == QKV_VALUE_CONSTANT) {
        if (c->dtype != QKV_DTYPE_FLOAT || c->rank < 0 || c->rank > max_rank || !c->data ||
            !qkv_shape_elements(c->dims, c->rank, &n) || n != 1 || c->data_bytes < sizeof(float))
            return false;
        float f;
        memcpy(&f, c->data, sizeof f);
        *out = f;
        return true;
    }
    const qkv_ir_node *p = qkv_pass_producer(g, v);
    double x;
    if (p && qkv_pass_is_op(p, "Sqrt") && p->n_inputs == 1 && c->rank >= 0 && c->rank <= max_rank &&
        qkv_fuse_attn_scalar_of(g, p->inputs[0], max_rank, &x) && x >= 0) {
        *out = (double)sqrtf((float)x);
        return true;
    }
    return false;
}

/* For a Mul/Div node n whose output is float32 of rank r: when it multiplies
 * a rank-r float32 operand by a scalar constant, that operand and the
 * factor (Div divides). */
static bool scale_parts(const qkv_ir_graph *g, const qkv_ir_node *n, int32_t r, int32_t *data,
                        double *factor)
{
    if (n->n_inputs != 2 || n->n_outputs != 1 || !qkv_fuse_attn_is_f32(g, n->outputs[0], r) ||
        n->inputs[0] == n->inputs[1])
        return false;
    double c;
    if (qkv_pass_is_op(n, "Mul")) {
        for (int side = 0; side < 2; side++) {
            int32_t x = n->inputs[side], other = n->inputs[1 - side];
            if (qkv_fuse_attn_is_f32(g, x, r) && qkv_fuse_attn_scalar_of(g, other, r, &c)) {
                *data = x;
                *factor = c;
                return true;
            }
        }
        return false;
    }
    if (qkv_pass_is_op(n, "Div") && qkv_fuse_attn_is_f32(g, n->inputs[0], r) &&
        qkv_fuse_attn_scalar_of(g, n->inputs[1], r, &c) && c != 0) {
        *data = n->inputs[0];
        *factor = 1.0 / c;
        return true;
    }
    return false;
}

/* Walks from an operand of the QK MatMul up through scale ops and
 * Identities (and Transposes when perm is not NULL, composing them into
 * perm so that the operand = Transpose(returned value, perm)). */
static int32_t walk_up(const qkv_ir_graph *g, int32_t v, int32_t r, double *scale, int64_t *perm)
{
    for (;;) {
        const qkv_ir_node *p = qkv_pass_producer(g, v);
        if (!p || p->n_outputs < 1 || p->outputs[0] != v)
            return v;
        double f;
        int32_t data;
        if (is_noop(g, p, r)) {
            v = p->inputs[0];
        } else if (scale_parts(g, p, r, &data, &f)) {
            *scale *= f;
            v = data;
        } else if (perm && qkv_pass_is_op(p, "Transpose") && p->n_inputs == 1 &&
                   (qkv_fuse_attn_is_f32(g, p->inputs[0], r) ||
                    (qkv_node_attr(p, "perm") && g->values[p->inputs[0]].rank < 0 &&
                     g->values[p->inputs[0]].dtype == QKV_DTYPE_FLOAT))) {
            /* (an input of unknown rank has rank r: perm has r entries) */
            /* v = Transpose(x, tp): v.dims[k] = x.dims[tp[k]]; the value we
             * want is Transpose(v, perm) = Transpose(x, k -> tp[perm[k]]). */
            int64_t tp[QKV_MAX_RANK], composed[QKV_MAX_RANK];
            bool seen[QKV_MAX_RANK] = {false};
            const qkv_ir_attr *a = qkv_node_attr(p, "perm");
            if (a && (a->type != QKV_ATTR_INTS || a->n != (size_t)r))
                return v;
            for (int32_t k = 0; k < r; k++) {
                tp[k] = a ? a->ints[k] : r - 1 - k;
                if (tp[k] < 0 || tp[k] >= r || seen[tp[k]])
                    return v; /* not a permutation */
                seen[tp[k]] = true;
            }
            for (int32_t k = 0; k < r; k++)
                composed[k] = tp[perm[k]];
            memcpy(perm, composed, (size_t)r * sizeof *perm);
            v = p->inputs[0];
        } else {
            return v;
        }
    }
}

bool qkv_fuse_attn_add_chain(attn_match *m, int32_t node)
{
    if (m->n_chain == MAX_CHAIN)
        return false;
    m->chain[m->n_chain++] = node;
    return true;
}

/* ---- matching -------------------------------------------------------------------- */

typedef enum einsum_form {
    EINSUM_QK, /* "Pid,Pjd->Pij": Q Kᵀ with K as (.., T, D) */
    EINSUM_PV  /* "Pij,Pjd->Pid": P V */
} einsum_form;

/* Is n an Einsum of two operands of the given form, P being r - 2 distinct
 * batch letters in the same order in all three terms and i, j, d three
 * other distinct letters? Spaces are ignored (torch exports them as
 * written: "B G H I D, B G H J D -> B G H I J"). */
static bool einsum_is(const qkv_ir_node *n, int32_t r, einsum_form form)
{
    if (!qkv_pass_is_op(n, "Einsum") || n->n_inputs != 2 || n->n_outputs != 1)
        return false;
    const qkv_ir_attr *a = qkv_node_attr(n, "equation");
    if (!a || a->type != QKV_ATTR_STRING || !a->s)
        return false;
    char t[3][QKV_MAX_RANK];
    int32_t len[3] = {0, 0, 0}, term = 0;
    for (const char *p = a->s; *p; p++) {
        if (*p == ' ')
            continue;
        if (*p == ',' && term == 0) {
            term = 1;
        } else if (p[0] == '-' && p[1] == '>' && term == 1) {
            term = 2;
            p++;
        } else if (((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z')) && len[term] < r) {
            t[term][len[term]++] = *p;
        } else {
            return false;
        }
    }
    if (term != 2 || len[0] != r || len[1] != r || len[2] != r)
        return false;
    int32_t nb = r - 2;
    for (int32_t k = 0; k < nb; k++)
        if (t[1][k] != t[0][k] || t[2][k] != t[0][k])
            return false;
    char i = t[0][nb], j, d;
    if (form == EINSUM_QK) {
        d = t[0][nb + 1];
        j = t[1][nb];
        if (t[1][nb + 1] != d || t[2][nb] != i || t[2][nb + 1] != j)
            return false;
    } else {
        j = t[0][nb + 1];
        d = t[1][nb + 1];
        if (t[1][nb] != j || t[2][nb] != i || t[2][nb + 1] != d)
            return false;
    }
    /* every letter distinct: no diagonal, no letter both batch and matrix */
    char all[QKV_MAX_RANK + 1];
    memcpy(all, t[0], (size_t)nb);
    all[nb] = i;
    all[nb + 1] = j;
    all[nb + 2] = d;
    for (int32_t x = 0; x < nb + 3; x++)
        for (int32_t y = x + 1; y < nb + 3; y++)
            if (all[x] == all[y])
                return false;
    return true;
}

/* ReduceMax node n reduces only the last of r axes, keeping it. */
static bool reduces_last_axis(const qkv_ir_graph *g, const qkv_ir_node *n, int32_t r)
{
    const qkv_ir_attr *keep = qkv_node_attr(n, "keepdims");
    if (keep && (keep->type != QKV_ATTR_INT || keep->i != 1))
        return false;
    int64_t axis;
    if (n->opset < 18) {
        const qkv_ir_attr *axes = qkv_node_attr(n, "axes");
        if (n->n_inputs != 1 || !axes || axes->type != QKV_ATTR_INTS || axes->n != 1)
            return false;
        axis = axes->ints[0];
    } else {
        qkv_tensor t;
        if (n->n_inputs != 2 || n->inputs[1] < 0 || !qkv_pass_const_tensor(g, n->inputs[1], &t) ||
            t.dtype != QKV_DTYPE_INT64 || t.rank != 1 || t.dims[0] != 1 || !t.data)
            return false;
        memcpy(&axis, t.data, sizeof axis);
    }
    return axis == -1 || axis == r - 1;
}

/* Sub(x, ReduceMax(x, last axis, keepdims)) on the value x = cur, the
 * overflow guard wav2vec2 writes before its softmax: softmax(x - max x) is
 * softmax(x) row by row (Attention's softmax subtracts the row maximum
 * itself), so both nodes join the chain. Returns the Sub's output, or -1
 * when cur is not read by exactly that pair. */
static int32_t match_max_shift(const qkv_ir_graph *g, attn_match *m, int32_t cur)
{
    const qkv_ir_value *x = &g->values[cur];
    int32_t r = m->rank;
    if (x->is_output || x->n_consumers != 2)
        return -1;
    int32_t rm = x->consumers[0], sub = x->consumers[1];
    if (qkv_pass_is_op(&g->nodes[rm], "Sub")) {
        int32_t tmp = rm;
        rm = sub;
        sub = tmp;
    }
    const qkv_ir_node *nr = &g->nodes[rm], *ns = &g->nodes[sub];
    if (nr->dead || ns->dead || !qkv_pass_is_op(nr, "ReduceMax") || !qkv_pass_is_op(ns, "Sub") ||
        nr->n_inputs < 1 || nr->inputs[0] != cur || nr->n_outputs != 1 ||
        !reduces_last_axis(g, nr, r))
        return -1;
    int32_t max = nr->outputs[0];
    if (qkv_pass_sole_consumer(g, max) != sub || ns->n_inputs != 2 || ns->inputs[0] != cur ||
        ns->inputs[1] != max || ns->n_outputs != 1 || !qkv_fuse_attn_is_f32(g, ns->outputs[0], r) ||
        !qkv_fuse_attn_add_chain(m, rm) || !qkv_fuse_attn_add_chain(m, sub))
        return -1;
    return ns->outputs[0];
}

/* Inference Dropout: no training_mode or a constant false one, or a
 * constant ratio of 0 (training with ratio 0 keeps every element, scaled
 * by 1: torchvision's Swin calls F.dropout(p=0.0) in training mode); mask
 * output unused. */
static bool inference_dropout(const qkv_ir_graph *g, const qkv_ir_node *n)
{
    if (!qkv_pass_is_op(n, "Dropout") || n->n_outputs < 1)
        return false;
    if (n->n_inputs >= 3 && n->inputs[2] >= 0) {
        const qkv_ir_value *t = &g->values[n->inputs[2]];
        double ratio;
        bool ratio_zero =
            n->inputs[1] >= 0 && qkv_pass_const_scalar(g, n->inputs[1], 0, &ratio) && ratio == 0.0;
        if (t->kind != QKV_VALUE_CONSTANT || t->dtype != QKV_DTYPE_BOOL || !t->data ||
            t->data_bytes < 1 || (((const unsigned char *)t->data)[0] != 0 && !ratio_zero))
            return false;
    }
    if (n->n_outputs >= 2 && n->outputs[1] >= 0) {
        const qkv_ir_value *mask = &g->values[n->outputs[1]];
        if (mask->n_consumers || mask->is_output)
            return false;
    }
    return true;
}

/* Batch (or head) dims of Q, K, V: equal, never broadcast. `kv_one_ok`:
 * K and V both known 1 is fine (every query head reads KV head 0). */
static bool dims_agree(int64_t q, int64_t k, int64_t v, bool kv_one_ok)
{
    if (k >= 0 && v >= 0 && k != v)
        return false;
    if ((k == 1 && v < 0) || (v == 1 && k < 0))
        return false;
    int64_t kv = k >= 0 ? k : v;
    if (kv_one_ok && kv == 1 && k == 1 && v == 1)
        return true;
    if (q >= 0 && kv >= 0 && q != kv)
        return false;
    if ((q == 1 && kv < 0) || (kv == 1 && q < 0))
        return false;
    return true;
}

/* Softmax node n has one input, a float32 output of rank r, and normalises
 * the last axis (opset < 13: axis == r - 1, where the 2-D coercion is the
 * last-axis softmax). */
static bool softmax_on_last_axis(const qkv_ir_graph *g, const qkv_ir_node *n, int32_t r)
{
    if (n->n_inputs != 1 || !qkv_fuse_attn_is_f32(g, n->outputs[0], r))
        return false;
    const qkv_ir_attr *a = qkv_node_attr(n, "axis");
    int64_t axis = n->opset >= 13 ? -1 : 1;
    if (a) {
        if (a->type != QKV_ATTR_INT)
            return false;
        axis = a->i;
    }
    if (axis < 0)
        axis += r;
    return axis == r - 1;
}

/* Follows the scores from S0 down to the Softmax. Returns the Softmax's
 * node index or -1. */
static int32_t match_scores(const qkv_ir_graph *g, attn_match *m)
{
    int32_t r = m->rank, cur = m->scores;
    for (;;) {
        int32_t shifted = match_max_shift(g, m, cur);
        if (shifted >= 0) {
            cur = shifted;
            continue;
        }
        int32_t c = qkv_pass_sole_consumer(g, cur);
        if (c < 0)
            return -1;
        const qkv_ir_node *n = &g->nodes[c];
        if (n->n_outputs < 1 || !qkv_fuse_attn_add_chain(m, c))
            return -1;
        int32_t out = n->outputs[0], data;
        double f;
        if (qkv_pass_is_op(n, "Softmax"))
            return softmax_on_last_axis(g, n, r) ? c : -1;
        if (is_noop(g, n, r)) {
            /* nothing to record */
        } else if (scale_parts(g, n, r, &data, &f) && data == cur) {
            if (m->n_terms)
                return -1; /* a scale after a mask would scale the mask too */
            m->scale *= f;
        } else if ((out = qkv_fuse_attn_match_mask_op(g, m, c, cur)) < 0) {
            return -1;
        }
        if (!qkv_fuse_attn_is_f32(g, out, r))
            return -1;
        cur = out;
    }
}

/* P -> [Identity | Dropout]* -> MatMul(P, V) from P = value p: the final
 * MatMul, or NULL when the chain does not have that form. */
static const qkv_ir_node *match_pv(const qkv_ir_graph *g, attn_match *m, int32_t p, int32_t r)
{
    int32_t cur = p;
    for (;;) {
        int32_t c = qkv_pass_sole_consumer(g, cur);
        if (c < 0 || !qkv_fuse_attn_add_chain(m, c))
            return NULL;
        const qkv_ir_node *n = &g->nodes[c];
        if ((qkv_pass_is_op(n, "MatMul") || einsum_is(n, r, EINSUM_PV)) && n->n_inputs == 2 &&
            n->inputs[0] == cur && n->inputs[1] != cur && n->n_outputs == 1)
            return n;
        if (!is_noop(g, n, r) && !inference_dropout(g, n))
            return NULL;
        cur = n->outputs[0];
        if (!qkv_fuse_attn_is_f32(g, cur, r))
            return NULL;
    }
}

/* Q and K of m from the operands of the Q Kᵀ product qk, through their
 * scale ops (into m->scale) and, for K, Transposes (into m->k_perm); false
 * when the scale they give is not finite and > 0. */
static bool match_operands(const qkv_ir_graph *g, const qkv_ir_node *qk, bool einsum, attn_match *m)
{
    int32_t r = m->rank;
    m->q = walk_up(g, qk->inputs[0], r, &m->scale, NULL);
    int64_t perm[QKV_MAX_RANK];
    for (int32_t k = 0; k < r; k++)
        perm[k] = k;
    if (!einsum) {
        perm[r - 2] = r - 1; /* K = Kᵀ with its last two dims swapped */
        perm[r - 1] = r - 2;
    }
    m->k_src = walk_up(g, qk->inputs[1], r, &m->scale, perm);
    m->k_transpose = false;
    for (int32_t k = 0; k < r; k++)
        if (perm[k] != k)
            m->k_transpose = true;
    memcpy(m->k_perm, perm, sizeof perm);
    return m->scale > 0 && isfinite(m->scale) && isfinite((float)m->scale) &&
           (float)m->scale > 0.0f;
}

/* No broadcasting in the batch (and head) dims of Q, K and V. */
static bool batch_dims_agree(const qkv_ir_graph *g, const attn_match *m)
{
    int32_t r = m->rank;
    const qkv_ir_value *q = &g->values[m->q], *k = &g->values[m->k_src], *v = &g->values[m->v];
    int64_t kd[QKV_MAX_RANK]; /* K's dims as Attention sees it */
    for (int32_t j = 0; j < r; j++)
        kd[j] = k->dims[m->k_perm[j]];
    for (int32_t j = 0; j < r - 2; j++) /* the last batch dim of rank 4-5 is the heads */
        if (!dims_agree(q->dims[j], kd[j], v->dims[j], r >= 4 && j == r - 3))
            return false;
    return true;
}

bool qkv_fuse_attn_match(const qkv_ir_graph *g, int32_t qk_idx, attn_match *m)
{
    const qkv_ir_node *qk = &g->nodes[qk_idx];
    bool einsum = qkv_pass_is_op(qk, "Einsum");
    if ((!einsum && !qkv_pass_is_op(qk, "MatMul")) || qk->n_inputs != 2 || qk->n_outputs != 1 ||
        qk->outputs[0] < 0)
        return false;
    memset(m, 0, sizeof *m);
    m->scale = 1.0;
    m->scores = qk->outputs[0];
    m->rank = g->values[m->scores].rank;
    int32_t r = m->rank;
    if (r < 3 || r > 5 || (einsum && !einsum_is(qk, r, EINSUM_QK)) ||
        !qkv_fuse_attn_is_f32(g, m->scores, r) || !qkv_fuse_attn_is_f32(g, qk->inputs[0], r) ||
        !qkv_fuse_attn_is_f32(g, qk->inputs[1], r) || !qkv_fuse_attn_add_chain(m, qk_idx))
        return false;
    int32_t sm = match_scores(g, m);
    if (sm < 0)
        return false;
    const qkv_ir_node *softmax = &g->nodes[sm];
    const qkv_ir_node *pv = match_pv(g, m, softmax->outputs[0], r);
    if (!pv)
        return false;
    m->v = pv->inputs[1];
    m->out = pv->outputs[0];
    if (!qkv_fuse_attn_is_f32(g, m->v, r) || !qkv_fuse_attn_is_f32(g, m->out, r) ||
        !match_operands(g, qk, einsum, m) || !batch_dims_agree(g, m))
        return false;
    qkv_fuse_attn_take_causal(g, m); /* constant causal masks become is_causal */
    if (r == 5 && !qkv_fuse_attn_masks_merge(g, m))
        return false;
    qkv_fuse_attn_match_heads_3d(g, m); /* last: it may extend the chain */
    snprintf(m->anchor, sizeof m->anchor, "%s", softmax->name);
    return true;
}
