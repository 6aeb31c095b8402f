/*
 * fuse_attention_mask.c - the mask and bias terms of an attention core:
 * which ops on the scores are masks (Add of a float mask, Where with a bool
 * condition, Swin's split-Add-merge; the conditions at the top of
 * fuse_attention.c), which of them are the causal pattern (is_causal
 * instead), and the one attn_mask value the rewrite builds from the rest.
 * Recognising and rebuilding sit together because each term kind's
 * rebuilt form is exactly what makes the fusion equivalent.
 */
#include <math.h>

#include "fuse_attention.h"
#include "pass_util.h"
#include "size_math.h"

/* ---- recognising the terms -------------------------------------------------- */

/* A mask of rank 1..r whose known dims are 1 or the scores' known dims. */
static bool mask_fits(const qkv_ir_graph *g, int32_t mask, int32_t scores, int32_t r)
{
    const qkv_ir_value *m = &g->values[mask], *s = &g->values[scores];
    if (m->rank < 1 || m->rank > r)
        return false;
    for (int32_t j = 0; j < m->rank; j++) {
        int64_t md = m->dims[j], sd = s->dims[r - m->rank + j];
        if (md >= 0 && sd >= 0 && md != 1 && md != sd)
            return false;
    }
    return true;
}

/* Known dims of values a and b (both of rank r) agree. */
static bool known_dims_agree(const qkv_ir_graph *g, int32_t a, int32_t b, int32_t r)
{
    for (int32_t j = 0; j < r; j++) {
        int64_t x = g->values[a].dims[j], y = g->values[b].dims[j];
        if (x >= 0 && y >= 0 && x != y)
            return false;
    }
    return true;
}

/* A Reshape (opset 5+, shape as input 1) without allowzero. */
static bool plain_reshape(const qkv_ir_node *n)
{
    if (!qkv_pass_is_op(n, "Reshape") || n->opset < 5 || n->n_inputs != 2 || n->n_outputs != 1 ||
        n->inputs[1] < 0)
        return false;
    const qkv_ir_attr *z = qkv_node_attr(n, "allowzero");
    return !z || (z->type == QKV_ATTR_INT && z->i == 0);
}

/*
 * Scores split into windows and merged back, as Swin adds its shift mask:
 * Reshape(S, split) -> Add(M)... -> Reshape(., merge), node c the first
 * Reshape, S (= cur) of rank r in 3..4 and the split of rank r + 1. Each M
 * becomes a term TERM_SPLIT_ADD, rebuilt as the rank-r mask
 * Reshape(Expand(M, split), merge): Expand(M, split) is M broadcast to
 * exactly what the Add added (split is the shape of Reshape(S, split)),
 * and merging it gives the mask in S's layout. Returns the merged value,
 * or -1.
 */
static int32_t match_split(const qkv_ir_graph *g, attn_match *m, int32_t c, int32_t cur)
{
    int32_t r = m->rank;
    const qkv_ir_node *n = &g->nodes[c];
    if ((r != 3 && r != 4) || !plain_reshape(n) || !qkv_fuse_attn_is_f32(g, n->outputs[0], r + 1))
        return -1;
    int32_t split_shape = n->inputs[1], v = n->outputs[0], split = v;
    size_t first = m->n_terms;
    for (;;) {
        int32_t k = qkv_pass_sole_consumer(g, v);
        if (k < 0 || !qkv_fuse_attn_add_chain(m, k))
            return -1;
        const qkv_ir_node *a = &g->nodes[k];
        if (qkv_pass_is_op(a, "Add") && a->n_inputs == 2 && a->n_outputs == 1) {
            int32_t mask = a->inputs[0] == v ? a->inputs[1] : a->inputs[0];
            if (mask == v || m->n_terms == MAX_TERMS ||
                !qkv_fuse_attn_is_f32(g, a->outputs[0], r + 1) ||
                g->values[mask].dtype != QKV_DTYPE_FLOAT || !mask_fits(g, mask, split, r + 1))
                return -1;
            m->terms[m->n_terms++] = (mask_term){TERM_SPLIT_ADD, mask, 0.0f, split_shape, -1};
            v = a->outputs[0];
            continue;
        }
        if (m->n_terms == first || !plain_reshape(a) ||
            !qkv_fuse_attn_is_f32(g, a->outputs[0], r) ||
            !known_dims_agree(g, a->outputs[0], cur, r))
            return -1;
        for (size_t t = first; t < m->n_terms; t++)
            m->terms[t].merge = a->inputs[1];
        return a->outputs[0];
    }
}

/* Add(S, M) | Add(M, S), n reading the scores value cur: M the float mask
 * as is. Returns the Add's output, or -1. */
static int32_t match_add(const qkv_ir_graph *g, attn_match *m, const qkv_ir_node *n, int32_t cur)
{
    int32_t r = m->rank, out = n->outputs[0];
    int32_t mask = n->inputs[0] == cur ? n->inputs[1] : n->inputs[0];
    if (mask == cur || m->n_terms == MAX_TERMS || !qkv_fuse_attn_is_f32(g, out, r) ||
        g->values[mask].dtype != QKV_DTYPE_FLOAT || !mask_fits(g, mask, m->scores, r))
        return -1;
    m->terms[m->n_terms++] = (mask_term){TERM_ADD, mask, 0.0f, -1, -1};
    return out;
}

/* Where(b, S, f) | Where(b, f, S), n reading the scores value cur: b a bool
 * condition, f a scalar constant that is -inf or <= FILL_LIMIT. Returns
 * the Where's output, or -1. */
static int32_t match_where(const qkv_ir_graph *g, attn_match *m, const qkv_ir_node *n, int32_t cur)
{
    int32_t r = m->rank, out = n->outputs[0];
    int32_t cond = n->inputs[0], fill_v;
    term_kind kind;
    if (n->inputs[1] == cur && n->inputs[2] != cur) {
        kind = TERM_KEEP_TRUE;
        fill_v = n->inputs[2];
    } else if (n->inputs[2] == cur && n->inputs[1] != cur) {
        kind = TERM_KEEP_FALSE;
        fill_v = n->inputs[1];
    } else {
        return -1;
    }
    double fill;
    if (cond == cur || m->n_terms == MAX_TERMS || !qkv_fuse_attn_is_f32(g, out, r) ||
        g->values[cond].dtype != QKV_DTYPE_BOOL || !mask_fits(g, cond, m->scores, r) ||
        !qkv_fuse_attn_scalar_of(g, fill_v, r, &fill) ||
        !(isinf(fill) ? fill < 0 : fill <= FILL_LIMIT))
        return -1;
    m->terms[m->n_terms++] = (mask_term){kind, cond, (float)fill, -1, -1};
    return out;
}

int32_t qkv_fuse_attn_match_mask_op(const qkv_ir_graph *g, attn_match *m, int32_t c, int32_t cur)
{
    const qkv_ir_node *n = &g->nodes[c];
    if (qkv_pass_is_op(n, "Add") && n->n_inputs == 2)
        return match_add(g, m, n, cur);
    if (qkv_pass_is_op(n, "Where") && n->n_inputs == 3)
        return match_where(g, m, n, cur);
    if (qkv_pass_is_op(n, "Reshape"))
        return match_split(g, m, c, cur);
    return -1;
}

/* Is this constant mask term exactly the top-left causal pattern (key j
 * visible to query i iff j <= i) for the scores' static (Sq, T)? */
static bool causal_term(const qkv_ir_graph *g, const mask_term *t, int32_t scores, int32_t r)
{
    const qkv_ir_value *m = &g->values[t->value], *s = &g->values[scores];
    if (t->kind == TERM_SPLIT_ADD || m->kind != QKV_VALUE_CONSTANT || !m->data || m->rank < 2 ||
        m->rank > r)
        return false;
    for (int32_t j = 0; j < m->rank - 2; j++)
        if (m->dims[j] != 1)
            return false;
    int64_t sq = m->dims[m->rank - 2], t_len = m->dims[m->rank - 1];
    if (sq < 1 || t_len < 1 || s->dims[r - 2] != sq || s->dims[r - 1] != t_len)
        return false;
    size_t n;
    if (!qkv_shape_elements(m->dims, m->rank, &n))
        return false;
    if (t->kind == TERM_ADD) {
        if (m->dtype != QKV_DTYPE_FLOAT || m->data_bytes < n * sizeof(float))
            return false;
        const float *d = m->data;
        for (int64_t i = 0; i < sq; i++)
            for (int64_t j = 0; j < t_len; j++) {
                float x = d[i * t_len + j];
                if (j <= i ? x != 0.0f : !(isinf(x) && x < 0))
                    return false;
            }
        return true;
    }
    if (m->dtype != QKV_DTYPE_BOOL || m->data_bytes < n)
        return false;
    const unsigned char *b = m->data;
    bool keep_true = t->kind == TERM_KEEP_TRUE;
    for (int64_t i = 0; i < sq; i++)
        for (int64_t j = 0; j < t_len; j++)
            if ((b[i * t_len + j] != 0) != ((j <= i) == keep_true))
                return false;
    return true;
}

void qkv_fuse_attn_take_causal(const qkv_ir_graph *g, attn_match *m)
{
    size_t w = 0;
    for (size_t t = 0; t < m->n_terms; t++) {
        if (causal_term(g, &m->terms[t], m->scores, m->rank))
            m->causal = true;
        else
            m->terms[w++] = m->terms[t];
    }
    m->n_terms = w;
}

bool qkv_fuse_attn_masks_merge(const qkv_ir_graph *g, const attn_match *m)
{
    for (size_t t = 0; t < m->n_terms; t++) {
        const qkv_ir_value *v = &g->values[m->terms[t].value];
        if (v->rank > 4 || (v->rank == 4 && v->dims[0] != 1))
            return false;
    }
    return true;
}

/* ---- building the attn_mask ------------------------------------------------- */

bool qkv_fuse_attn_mask_kernels_available(const qkv_registry *reg, const attn_match *m)
{
    if (m->rank == 3 && !m->heads_3d && m->n_terms &&
        !qkv_fuse_attn_have(reg, "Unsqueeze", OPSET_UNSQUEEZE))
        return false;
    for (size_t t = 0; t < m->n_terms; t++) {
        const mask_term *x = &m->terms[t];
        if (x->kind == TERM_SPLIT_ADD && (!qkv_fuse_attn_have(reg, "Expand", OPSET_EXPAND) ||
                                          !qkv_fuse_attn_have(reg, "Reshape", OPSET_RESHAPE)))
            return false;
        bool where = x->kind != TERM_ADD && (m->n_terms > 1 || !isinf(x->fill));
        if (where && !qkv_fuse_attn_have(reg, "Where", OPSET_WHERE))
            return false;
        if (x->kind == TERM_KEEP_FALSE && !where && !qkv_fuse_attn_have(reg, "Not", OPSET_NOT))
            return false;
    }
    return m->n_terms < 2 || qkv_fuse_attn_have(reg, "Add", OPSET_ADD);
}

static int32_t new_f32_scalar(attn_builder *b, const char *role, float x)
{
    return qkv_fuse_attn_new_const(b, role, QKV_DTYPE_FLOAT, 0, NULL, &x, sizeof x);
}

/* One mask term as an attn_mask value for scores of rank r; *rank gets
 * its rank. */
static int32_t build_term(attn_builder *b, const mask_term *t, int32_t r, bool force_float,
                          int32_t *rank)
{
    const qkv_ir_graph *g = b->g;
    *rank = g->values[t->value].rank;
    if (t->kind == TERM_ADD)
        return t->value;
    int32_t out = -1;
    if (t->kind == TERM_SPLIT_ADD) {
        int32_t e, in[2] = {t->value, t->split};
        if (qkv_fuse_attn_new_node(b, "mask_expand", "Expand", OPSET_EXPAND, in, 2, -1, &e) < 0)
            return -1;
        int32_t in2[2] = {e, t->merge};
        *rank = r;
        return qkv_fuse_attn_new_node(b, "mask_merge", "Reshape", OPSET_RESHAPE, in2, 2, -1, &out) <
                       0
                   ? -1
                   : out;
    }
    if (t->kind == TERM_KEEP_TRUE && isinf(t->fill) && !force_float)
        return t->value; /* True = attend, as Attention reads a bool mask */
    if (isinf(t->fill) && !force_float) {
        int32_t in[1] = {t->value};
        return qkv_fuse_attn_new_node(b, "mask_not", "Not", OPSET_NOT, in, 1, -1, &out) < 0 ? -1
                                                                                            : out;
    }
    int32_t zero = new_f32_scalar(b, "mask_zero", 0.0f);
    int32_t fill = new_f32_scalar(b, "mask_fill", t->fill);
    if (zero < 0 || fill < 0)
        return -1;
    int32_t in[3] = {t->value, t->kind == TERM_KEEP_TRUE ? zero : fill,
                     t->kind == TERM_KEEP_TRUE ? fill : zero};
    return qkv_fuse_attn_new_node(b, "mask_where", "Where", OPSET_WHERE, in, 3, -1, &out) < 0 ? -1
                                                                                              : out;
}

int32_t qkv_fuse_attn_build_mask(attn_builder *b, const attn_match *m, bool *failed)
{
    *failed = false;
    if (m->n_terms == 0)
        return -1;
    int32_t mask = -1, rank = 0;
    for (size_t t = 0; t < m->n_terms; t++) {
        int32_t r_t;
        int32_t v = build_term(b, &m->terms[t], m->rank, m->n_terms > 1, &r_t);
        if (v < 0) {
            *failed = true;
            return -1;
        }
        if (mask < 0) {
            mask = v;
            rank = r_t;
            continue;
        }
        int32_t in[2] = {mask, v};
        if (qkv_fuse_attn_new_node(b, "mask_add", "Add", OPSET_ADD, in, 2, -1, &mask) < 0) {
            *failed = true;
            return -1;
        }
        rank = r_t > rank ? r_t : rank;
    }
    if (m->rank == 3 && rank == 3 && !m->heads_3d) {
        /* 3-D Attention aligns a 3-D mask (N, Sq, T) with (heads, Sq, T);
         * read as heads (heads_3d) the N batches are those heads */
        int64_t one = 1, n_axes = 1;
        int32_t axes =
            qkv_fuse_attn_new_const(b, "mask_axes", QKV_DTYPE_INT64, 1, &n_axes, &one, sizeof one);
        int32_t in[2] = {mask, axes};
        if (axes < 0 || qkv_fuse_attn_new_node(b, "mask_unsqueeze", "Unsqueeze", OPSET_UNSQUEEZE,
                                               in, 2, -1, &mask) < 0) {
            *failed = true;
            return -1;
        }
    }
    return mask;
}
