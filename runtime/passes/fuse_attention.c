/*
 * fuse_attention.c - rewrites exported attention subgraphs into one ONNX
 * Attention node (ai.onnx, opset 23 set on the node).
 *
 * What is matched, anchored at each MatMul or Einsum giving the scores (r =
 * 3, 4 or 5 is their rank; every value float32 except bool mask conditions):
 *
 *   Q  <- [Mul|Div by a scalar constant | no-op]*  <- q
 *   Kᵀ <- [Transpose | Mul|Div by a scalar constant | no-op]*  <- k
 *   S0 = MatMul(Q, Kᵀ) | Einsum("Pid,Pjd->Pij", Q, K)     (B, H, Sq, T) / (N, Sq, T)
 *   S1 = [Mul(S, c) | Mul(c, S) | Div(S, c) | no-op]*     c a scalar constant
 *                                                         (or Sqrt of one)
 *   S2 = [Add(S, M) | Add(M, S) | Where(b, S, f) | Where(b, f, S) | no-op |
 *         Reshape(Add(Reshape(S, split), M)..., merge) | Sub(S, ReduceMax(S))]*
 *   P  = Softmax(S2, last axis) -> [no-op | inference Dropout]*
 *   Y  = MatMul(P, V) | Einsum("Pij,Pjd->Pid", P, V)
 *
 * (no-op: Identity, or Cast to float32 of a float32 tensor; P in an Einsum
 * is r - 2 batch letters, the same in every term; the Einsum with K
 * contracts its last dim, so K needs no transpose.)
 *
 * Real models. ViT, BERT and nn.MultiheadAttention (Conformer) are the base
 * form. wav2vec2 (torchaudio) subtracts the row maximum before its softmax:
 * Sub(S, ReduceMax(S, last axis, keepdims)) leaves the softmax unchanged,
 * so both nodes go (S then has exactly those two readers). Swin
 * (torchvision) adds its relative position bias (1, H, N, N) and, in
 * shifted blocks, its shift mask (nW, 1, N, N) to the scores viewed as
 * (B, nW, H, N, N); that split-Add-merge becomes the mask term
 * Reshape(Expand(M, split), merge), M broadcast to exactly what the Add
 * added and laid out as the scores. MaxViT (torchvision) computes rank-5
 * scores (B, G, H, P, P) with Einsums: run as 4-D Attention on
 * (B G, H, P, D) views of Q, K, V (Reshape to [-1, dims 2..4], a constant
 * when those dims are known, else Shape/Concat evaluated while planning),
 * the output viewed back; a rank-4 mask then needs a dim 0 of 1.
 *
 * becomes Y = Attention(q, k', V, mask) with scale = the product of the
 * constants (Div divides), is_causal when a constant mask is exactly the
 * top-left causal pattern for the static (Sq, T), and k' = k or a Transpose
 * of k giving (.., T, D) (the Transposes above composed with the swap of the
 * last two dims). Rank 4 uses 4-D Attention (heads from the dims); rank 3
 * uses 3-D Attention with q_num_heads = kv_num_heads = 1, which reads
 * (N, S, D) as N batches of one head, so no reshapes are needed; a rank-3
 * mask then gets an Unsqueeze to (N, 1, Sq, T) (Attention aligns a 3-D mask
 * with the heads). Reshapes/Transposes splitting and merging heads around
 * the core stay as they are.
 *
 * Masks. Add(M): M is the additive attn_mask as is. Where(b, S, f) keeps
 * scores where b is true: with f = -inf, b itself is the bool attn_mask
 * (True = attend, the same meaning); Where(b, f, S) gets Not(b). A finite f
 * is accepted only when f <= -1e30 (finfo.min, as GPT-2 code writes): the
 * mask becomes the float Where(b, 0, f), and s + f rounds to exactly f for
 * any |s| < 1e22, so masked scores are f exactly as in the graph (a fully
 * masked row still averages every key, as the graph's softmax does). Other
 * finite fills (-1e4, -1e9) are not fused: a fully masked row differs.
 * Several mask ops are summed into one float mask (bool ones via
 * Where(b, 0, -inf)).
 *
 * Equivalence conditions checked (else the subgraph is left alone):
 *  - S0, S1, S2 and every intermediate have exactly one consumer and are not
 *    graph outputs; P likewise (attention weights used elsewhere or returned,
 *    as nn.MultiheadAttention with need_weights=True does, are NOT fused:
 *    Attention's qk_matmul_output would give zeros where the graph gives NaN
 *    for a fully masked row, and the (Sq, T) matrix would have to exist
 *    anyway);
 *  - the Softmax axis is the last one (opset < 13: axis == r - 1, where the
 *    2-D coercion is the last-axis softmax);
 *  - scale constants are scalars (one element, rank <= r: no broadcast), the
 *    product is finite and > 0; no scale op after a mask op (that would
 *    scale the mask);
 *  - the Transposes compose to a permutation whose last two dims are those
 *    of K; Q, Kᵀ, V, S and P all have rank r;
 *  - masks have rank 1..r and each known dim is 1 or the scores' dim (the
 *    split scores' for a mask added between the Reshapes); the merge
 *    Reshape's known dims equal the scores'. A split shape holding 0 or -1
 *    at run time (Reshape's copy / infer markers, which Expand does not
 *    have), or a merge that is not the scores' shape, makes the Expand or
 *    Attention report a shape error: the mask rebuilt for Attention then
 *    has more elements than the scores or does not broadcast to them;
 *  - batch dims (and heads) do not broadcast: known dims must be equal,
 *    except K/V heads known to be 1 (multi-query: Attention maps every query
 *    head to KV head 0, as MatMul broadcasting does); a dim known to be 1 on
 *    one side and unknown on another is refused.
 * Dims unknown at session creation are checked by the Attention kernel when
 * shapes are known: inputs on which the graph would have broadcast a batch
 * or mask dim the kernel reports as a shape error instead of broadcasting.
 * Deviation (Attention's semantics): a query row whose keys are all masked
 * with -inf gives zeros where the unfused graph gives NaN.
 *
 * This file is the pass's driver; the matching, the masks, the builder and
 * the rewrite are in fuse_attention_*.c (fuse_attention.h lists them).
 */
#include "fuse_attention.h"
#include "pass_util.h"
#include "passes.h"

/* qkv_pass_try_fn: attention whose Q Kᵀ product is node idx (MatMul or Einsum). */
static qkv_status try_at(qkv_ir_graph *g, const qkv_registry *reg, int32_t idx, bool *rewrote,
                         qkv_error *err)
{
    attn_match m;
    if (!qkv_fuse_attn_match(g, idx, &m) || !qkv_fuse_attn_kernels_available(reg, &m))
        return QKV_OK;
    qkv_status st = qkv_fuse_attn_rewrite(g, reg, &m, err);
    *rewrote = st == QKV_OK;
    return st;
}

qkv_status qkv_pass_fuse_attention(qkv_ir_graph *g, const qkv_registry *reg, size_t *fused,
                                   qkv_error *err)
{
    size_t count = 0;
    qkv_status st = QKV_OK;
    if (fused)
        *fused = 0;
    if (!g || !reg || !qkv_fuse_attn_have(reg, "Attention", QKV_FUSED_ATTENTION_OPSET))
        return QKV_OK;
    st = qkv_pass_rewrite_all(g, reg, "MatMul", try_at, &count, err);
    size_t by_einsum = 0;
    if (st == QKV_OK)
        st = qkv_pass_rewrite_all(g, reg, "Einsum", try_at, &by_einsum, err);
    if (fused)
        *fused = count + by_einsum;
    return st;
}
