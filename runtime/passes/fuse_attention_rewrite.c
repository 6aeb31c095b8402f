/*
 * fuse_attention_rewrite.c - replacing a matched attention core (an
 * attn_match) by one Attention node: K's Transpose when its operand was
 * transposed, the attn_mask (fuse_attention_mask.c), for rank-5 scores the
 * 4-D views around a 4-D Attention, then the kernels of the new nodes, and
 * last the removal of the replaced nodes and of what only they used. Until
 * the replaced nodes go, any failure rolls the graph back.
 */
#include <stdio.h>
#include <stdlib.h>

#include "fuse_attention.h"
#include "pass_util.h"
#include "passes.h"

bool qkv_fuse_attn_have(const qkv_registry *reg, const char *op, int64_t opset)
{
    return qkv_registry_find(reg, "", op, opset, NULL) != NULL;
}

bool qkv_fuse_attn_kernels_available(const qkv_registry *reg, const attn_match *m)
{
    if (m->k_transpose && !m->heads_3d && !qkv_fuse_attn_have(reg, "Transpose", OPSET_TRANSPOSE))
        return false;
    if (m->heads_3d && !qkv_fuse_attn_have(reg, "Reshape", OPSET_RESHAPE))
        return false;
    if (m->rank == 5 && (!qkv_fuse_attn_have(reg, "Reshape", OPSET_RESHAPE) ||
                         !qkv_fuse_attn_have(reg, "Shape", OPSET_SHAPE) ||
                         !qkv_fuse_attn_have(reg, "Concat", OPSET_CONCAT)))
        return false;
    return qkv_fuse_attn_mask_kernels_available(reg, m);
}

/* Removes nodes left without uses by the rewrite: producers (transitively)
 * of `cand` values whose outputs nothing reads and are not graph outputs. */
static qkv_status drop_orphans(qkv_ir_graph *g, int32_t *cand, size_t n_cand, size_t cap,
                               qkv_error *err)
{
    bool changed = true;
    while (changed) {
        changed = false;
        for (size_t c = 0; c < n_cand; c++) {
            int32_t p = g->values[cand[c]].producer;
            if (p < 0 || g->nodes[p].dead)
                continue;
            qkv_ir_node *n = &g->nodes[p];
            bool used = false;
            for (size_t j = 0; j < n->n_outputs && !used; j++)
                used = n->outputs[j] >= 0 &&
                       (g->values[n->outputs[j]].n_consumers || g->values[n->outputs[j]].is_output);
            if (used)
                continue;
            qkv_pass_kill_node(n);
            changed = true;
            for (size_t j = 0; j < n->n_inputs && n_cand < cap; j++)
                if (n->inputs[j] >= 0)
                    cand[n_cand++] = n->inputs[j];
        }
        if (changed) {
            qkv_status st = qkv_graph_finalize(g, err);
            if (st != QKV_OK)
                return st;
            /* node indices changed: the candidates are values, still valid */
        }
    }
    return QKV_OK;
}

/* Part of a shape built for a Reshape: dims [start, end) of value x, whose
 * static dims are `dims` (as x will be at run time), or the literal -1
 * when x < 0. */
typedef struct shape_part {
    int32_t x;
    const int64_t *dims;
    int32_t start, end;
} shape_part;

/* The int64 shape concatenating parts: a constant when every dim it takes
 * is known statically, else Shape (start, end) nodes and a Concat, which
 * planning evaluates once per input shape. -1 when out of memory. */
static int32_t build_shape(attn_builder *b, const char *role, const shape_part *parts, size_t n)
{
    int64_t dims[QKV_MAX_RANK], len = 0, one = 1, minus_one = -1;
    bool known = true;
    for (size_t p = 0; p < n; p++) {
        if (parts[p].x < 0) {
            dims[len++] = -1;
            continue;
        }
        for (int32_t j = parts[p].start; j < parts[p].end; j++) {
            known = known && parts[p].dims[j] >= 0;
            dims[len++] = parts[p].dims[j];
        }
    }
    if (known)
        return qkv_fuse_attn_new_const(b, role, QKV_DTYPE_INT64, 1, &len, dims,
                                       (size_t)len * sizeof *dims);
    int32_t in[4];
    for (size_t p = 0; p < n; p++) {
        if (parts[p].x < 0) {
            in[p] = qkv_fuse_attn_new_const(b, "shape_lead", QKV_DTYPE_INT64, 1, &one, &minus_one,
                                            sizeof minus_one);
            if (in[p] < 0)
                return -1;
            continue;
        }
        int32_t idx =
            qkv_fuse_attn_new_node(b, "shape_of", "Shape", OPSET_SHAPE, &parts[p].x, 1, -1, &in[p]);
        if (idx < 0 || !qkv_pass_add_int_attr(b->g, idx, "start", parts[p].start) ||
            !qkv_pass_add_int_attr(b->g, idx, "end", parts[p].end))
            return -1;
    }
    int32_t out = -1,
            idx = qkv_fuse_attn_new_node(b, role, "Concat", OPSET_CONCAT, in, n, -1, &out);
    if (idx < 0 || !qkv_pass_add_int_attr(b->g, idx, "axis", 0))
        return -1;
    return out;
}

/* x (B, G, H, S, D) as (B G, H, S, D), a view; dims are x's static dims. */
static int32_t merge_batch(attn_builder *b, const char *role, int32_t x, const int64_t *dims)
{
    shape_part parts[2] = {{-1, NULL, 0, 0}, {x, dims, 2, 5}};
    char shape_role[64];
    snprintf(shape_role, sizeof shape_role, "%s_shape", role);
    int32_t shape = build_shape(b, shape_role, parts, 2), out = -1;
    int32_t in[2] = {x, shape};
    if (shape < 0 || qkv_fuse_attn_new_node(b, role, "Reshape", OPSET_RESHAPE, in, 2, -1, &out) < 0)
        return -1;
    return out;
}

/* Reshape(x, shape) into a new value "role" with a new constant shape
 * "role_shape" of n dims; -1 when out of memory. */
static int32_t view_as(attn_builder *b, const char *role, int32_t x, const int64_t *shape,
                       int64_t n, int32_t out_value)
{
    char shape_role[64];
    snprintf(shape_role, sizeof shape_role, "%s_shape", role);
    int32_t sh = qkv_fuse_attn_new_const(b, shape_role, QKV_DTYPE_INT64, 1, &n, shape,
                                         (size_t)n * sizeof *shape);
    int32_t in[2] = {x, sh}, out = out_value;
    if (sh < 0 ||
        qkv_fuse_attn_new_node(b, role, "Reshape", OPSET_RESHAPE, in, 2, out_value, &out) < 0)
        return -1;
    return out;
}

/* heads_3d: m's Attention on 3-D views of the head-split Q, K, V (see
 * fuse_attention_heads.c), its output viewed as the merged Y. */
static bool build_heads_3d(attn_builder *b, const attn_match *m, int32_t mask)
{
    qkv_ir_graph *g = b->g;
    int64_t h = m->heads, qk = h * m->head_dim, vv = h * m->head_dim_v;
    /* rank 4 (B, S, H, D) -> (B, S, H*D), B and S copied; rank 3
     * (S, N, D) -> (1, S, N*D), S inferred (N*D > 0) */
    int64_t q4[3] = {0, 0, qk}, v4[3] = {0, 0, vv}, q3[3] = {1, -1, qk}, v3[3] = {1, -1, vv};
    int64_t y4[4] = {0, 0, h, m->head_dim_v}, y3[3] = {-1, h, m->head_dim_v};
    bool r4 = m->rank == 4;
    int32_t in[4] = {-1, -1, -1, mask}, y;
    if ((in[0] = view_as(b, "Q_3d", m->q_split, r4 ? q4 : q3, 3, -1)) < 0 ||
        (in[1] = view_as(b, "K_3d", m->k_split, r4 ? q4 : q3, 3, -1)) < 0 ||
        (in[2] = view_as(b, "V_3d", m->v_split, r4 ? v4 : v3, 3, -1)) < 0 ||
        (y = qkv_fuse_attn_new_value(b, "Y_3d", QKV_VALUE_ACTIVATION)) < 0)
        return false;
    int32_t att = qkv_fuse_attn_new_node(b, "Attention", "Attention", QKV_FUSED_ATTENTION_OPSET, in,
                                         mask >= 0 ? 4 : 3, y, NULL);
    if (att < 0 || !qkv_pass_add_float_attr(g, att, "scale", (float)m->scale) ||
        (m->causal && !qkv_pass_add_int_attr(g, att, "is_causal", 1)) ||
        !qkv_pass_add_int_attr(g, att, "q_num_heads", h) ||
        !qkv_pass_add_int_attr(g, att, "kv_num_heads", h))
        return false;
    return view_as(b, "Y_merged", y, r4 ? y4 : y3, r4 ? 4 : 3, m->y_merged) >= 0;
}

/* Adds to b the nodes computing m's output value: K's Transpose, the mask,
 * the Attention node, and for rank 5 the views around it. false when out
 * of memory. */
static bool build_attention(attn_builder *b, const attn_match *m)
{
    qkv_ir_graph *g = b->g;
    int32_t k = m->k_src;
    if (m->heads_3d) {
        bool failed;
        int32_t mask = qkv_fuse_attn_build_mask(b, m, &failed);
        return !failed && build_heads_3d(b, m, mask);
    }
    if (m->k_transpose) {
        int32_t in[1] = {m->k_src};
        int32_t idx =
            qkv_fuse_attn_new_node(b, "K_transpose", "Transpose", OPSET_TRANSPOSE, in, 1, -1, &k);
        if (idx < 0 || !qkv_pass_add_ints_attr(g, idx, "perm", m->k_perm, (size_t)m->rank))
            return false;
    }
    bool failed;
    int32_t mask = qkv_fuse_attn_build_mask(b, m, &failed);
    if (failed)
        return false;
    int32_t in[4] = {m->q, k, m->v, mask}, y = m->out;
    /* copies: adding values may move g->values */
    int64_t qd[QKV_MAX_RANK], kd[QKV_MAX_RANK], vd[QKV_MAX_RANK];
    for (int32_t j = 0; j < m->rank; j++) {
        qd[j] = g->values[m->q].dims[j];
        kd[j] = g->values[m->k_src].dims[m->k_perm[j]];
        vd[j] = g->values[m->v].dims[j];
    }
    if (m->rank == 5) {
        /* 4-D Attention over (B G, H, S, D) views, its output viewed back */
        if ((in[0] = merge_batch(b, "Q_4d", m->q, qd)) < 0 ||
            (in[1] = merge_batch(b, "K_4d", k, kd)) < 0 ||
            (in[2] = merge_batch(b, "V_4d", m->v, vd)) < 0 ||
            (y = qkv_fuse_attn_new_value(b, "Y_4d", QKV_VALUE_ACTIVATION)) < 0)
            return false;
    }
    int32_t att = qkv_fuse_attn_new_node(b, "Attention", "Attention", QKV_FUSED_ATTENTION_OPSET, in,
                                         mask >= 0 ? 4 : 3, y, NULL);
    if (att < 0 || !qkv_pass_add_float_attr(g, att, "scale", (float)m->scale) ||
        (m->causal && !qkv_pass_add_int_attr(g, att, "is_causal", 1)) ||
        (m->rank == 3 && (!qkv_pass_add_int_attr(g, att, "q_num_heads", 1) ||
                          !qkv_pass_add_int_attr(g, att, "kv_num_heads", 1))))
        return false;
    if (m->rank == 5) {
        /* (B G, H, S, Dv) -> (B, G, H, S, Dv): Q's dims but V's last */
        shape_part parts[3] = {{-1, NULL, 0, 0}, {m->q, qd, 1, 4}, {m->v, vd, 4, 5}};
        int32_t shape = build_shape(b, "Y_shape", parts, 3);
        int32_t rin[2] = {y, shape};
        if (shape < 0 ||
            qkv_fuse_attn_new_node(b, "Y", "Reshape", OPSET_RESHAPE, rin, 2, m->out, NULL) < 0)
            return false;
    }
    return true;
}

/* The replaced nodes of m go, then the nodes only they used (their inputs
 * are the candidates for orphan removal). */
static qkv_status remove_replaced(attn_builder *b, const attn_match *m)
{
    qkv_ir_graph *g = b->g;
    size_t cap = 4 * MAX_CHAIN + 64, n_cand = 0;
    int32_t *cand = malloc(cap * sizeof *cand);
    if (!cand) {
        qkv_fuse_attn_roll_back(b);
        return qkv_fuse_attn_oom(b);
    }
    for (size_t c = 0; c < m->n_chain; c++) {
        qkv_ir_node *n = &g->nodes[m->chain[c]];
        qkv_pass_kill_node(n);
        for (size_t j = 0; j < n->n_inputs && n_cand < cap; j++)
            if (n->inputs[j] >= 0)
                cand[n_cand++] = n->inputs[j];
    }
    qkv_status st = qkv_graph_finalize(g, b->err);
    if (st == QKV_OK)
        st = drop_orphans(g, cand, n_cand, cap, b->err);
    free(cand);
    return st;
}

qkv_status qkv_fuse_attn_rewrite(qkv_ir_graph *g, const qkv_registry *reg, const attn_match *m,
                                 qkv_error *err)
{
    attn_builder b = {.g = g, .reg = reg, .stem = m->anchor, .err = err};
    if (!build_attention(&b, m)) {
        qkv_fuse_attn_roll_back(&b);
        return qkv_fuse_attn_oom(&b);
    }
    for (size_t j = 0; j < b.n_new; j++) {
        qkv_status st = qkv_pass_init_node(g, b.new_nodes[j], reg, "attention fusion", err);
        if (st != QKV_OK) {
            qkv_fuse_attn_roll_back(&b);
            return st;
        }
    }
    return remove_replaced(&b, m);
}
