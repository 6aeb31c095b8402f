/*
 * fuse_attention_heads.c - an attention core whose heads are split and
 * merged by Transposes, read by 3-D Attention without those copies.
 *
 * Exporters split heads as Transpose(x, head perm) of a head-split view x
 * of the projection: rank 4, x (B, S, H, D) -> (B, H, S, D) with perm
 * (0, 2, 1, 3) (BERT, ViT); rank 3, x (S, N, D) -> (N, S, D) with perm
 * (1, 0, 2), N = batch x heads (torch's nn.MultiheadAttention, whose K is
 * Transpose(x, (1, 2, 0)), i.e. that perm composed with the swap of Kᵀ).
 * Y goes back through the same perm to (.., S, H, Dv).
 *
 * 3-D Attention with H heads reads Q (B, S, H*D) as (B, S, H, D)
 * transposed to (B, H, S, D), and writes Y (B, S, H*Dv) from (B, H, S, Dv)
 * transposed back. So with x viewed as (B, S, H*D) (Reshape [0, 0, H*D],
 * a view: the same bytes) it computes exactly the 4-D core on
 * Transpose(x, (0, 2, 1, 3)), and its output viewed as (B, S, H, Dv) is
 * the Transpose of Y back. Rank 3 is the case B = 1: (S, N, D) viewed as
 * (1, S, N*D) (Reshape [1, -1, N*D]) with N heads computes the core on
 * Transpose(x, (1, 0, 2)) = (N, S, D) seen as (1, N, S, D); a rank-3 mask
 * (N or 1, Sq, T) then aligns with (heads, Sq, T) as it did with the
 * scores, so it needs no Unsqueeze. The Transposes of Q, K, V and Y (and
 * K's inserted one) are no longer read and go.
 *
 * Conditions: every head count and head size static and > 0, the same H
 * for Q, K and V (no grouped heads here), Q, K, V each exactly
 * Transpose(x, head perm) (K's composed perm equal to it), Y read only by
 * a Transpose with the head perm (not a graph output). Otherwise the core
 * is fused as before, transposes kept.
 */
#include <string.h>

#include "fuse_attention.h"
#include "pass_util.h"

/* The head perm of rank r (3 or 4) into perm. */
static void head_perm(int32_t r, int64_t *perm)
{
    for (int32_t k = 0; k < r; k++)
        perm[k] = k;
    perm[r - 3] = r - 2;
    perm[r - 2] = r - 3;
}

static bool perm_equal(const int64_t *a, const int64_t *b, int32_t r)
{
    for (int32_t k = 0; k < r; k++)
        if (a[k] != b[k])
            return false;
    return true;
}

/* Is node n Transpose(x, head perm) with x float32 of rank r? x or -1. */
static int32_t transposed_from(const qkv_ir_graph *g, const qkv_ir_node *n, int32_t r)
{
    int64_t want[QKV_MAX_RANK], perm[QKV_MAX_RANK];
    head_perm(r, want);
    if (!n || !qkv_pass_is_op(n, "Transpose") || n->n_inputs != 1 || n->n_outputs != 1 ||
        !qkv_fuse_attn_is_f32(g, n->inputs[0], r) || !qkv_pass_transpose_perm(n, r, perm) ||
        !perm_equal(perm, want, r))
        return -1;
    return n->inputs[0];
}

/* x (.., S, H, D): H and D static and > 0, H equal to `heads` if that is >= 0. */
static bool head_dims(const qkv_ir_graph *g, int32_t x, int32_t r, int64_t heads, int64_t *d)
{
    const int64_t *dims = g->values[x].dims;
    if (dims[r - 2] <= 0 || dims[r - 1] <= 0 || (heads >= 0 && dims[r - 2] != heads))
        return false;
    *d = dims[r - 1];
    return true;
}

void qkv_fuse_attn_match_heads_3d(const qkv_ir_graph *g, attn_match *m)
{
    int32_t r = m->rank;
    int64_t want[QKV_MAX_RANK];
    m->heads_3d = false;
    if (r != 3 && r != 4)
        return;
    head_perm(r, want);
    int32_t q = transposed_from(g, qkv_pass_producer(g, m->q), r);
    int32_t v = transposed_from(g, qkv_pass_producer(g, m->v), r);
    int32_t k = m->k_src;
    if (q < 0 || v < 0 || !perm_equal(m->k_perm, want, r) || !qkv_fuse_attn_is_f32(g, k, r))
        return;
    int64_t heads = g->values[q].dims[r - 2], dq, dk, dv;
    if (!head_dims(g, q, r, -1, &dq) || !head_dims(g, k, r, heads, &dk) ||
        !head_dims(g, v, r, heads, &dv) || dq != dk)
        return;
    int32_t c = qkv_pass_sole_consumer(g, m->out);
    const qkv_ir_node *back = c >= 0 ? &g->nodes[c] : NULL;
    if (transposed_from(g, back, r) != m->out || !qkv_fuse_attn_is_f32(g, back->outputs[0], r) ||
        !qkv_fuse_attn_add_chain(m, c))
        return;
    m->heads_3d = true;
    m->q_split = q;
    m->k_split = k;
    m->v_split = v;
    m->y_merged = back->outputs[0];
    m->heads = heads;
    m->head_dim = dq;
    m->head_dim_v = dv;
}
