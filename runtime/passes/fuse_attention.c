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
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "error.h"
#include "pass_util.h"
#include "passes.h"
#include "size_math.h"
#include "str_util.h"

enum { MAX_TERMS = 4, MAX_CHAIN = 48, MAX_NEW = 40 };

/* Finite fills at or below this make masked scores exactly the fill. */
#define FILL_LIMIT (-1e30)

typedef enum term_kind {
    TERM_ADD,        /* scores + value (float) */
    TERM_KEEP_TRUE,  /* Where(value, scores, fill) */
    TERM_KEEP_FALSE, /* Where(value, fill, scores) */
    TERM_SPLIT_ADD   /* Reshape(Reshape(scores, split) + value, merge) */
} term_kind;

typedef struct mask_term {
    term_kind kind;
    int32_t value; /* TERM_ADD*: the float mask; else the Where's bool condition */
    float fill;    /* Where: -inf or a finite value <= FILL_LIMIT */
    int32_t split; /* TERM_SPLIT_ADD: the shape values of the two Reshapes */
    int32_t merge;
} mask_term;

typedef struct attn_match {
    int32_t rank;  /* of the scores: 3, 4, or 5 (then run as 4-D, batch dims merged) */
    int32_t q, v;  /* Q (.., Sq, D) and V (.., T, Dv) as Attention reads them */
    int32_t k_src; /* K = Transpose(k_src, k_perm) if k_transpose, else k_src */
    bool k_transpose;
    int64_t k_perm[QKV_MAX_RANK];
    double scale;
    bool causal;
    size_t n_terms;
    mask_term terms[MAX_TERMS];
    int32_t scores; /* S0: its static dims give (Sq, T) */
    int32_t out;    /* Y: produced by Attention after the rewrite */
    size_t n_chain;
    int32_t chain[MAX_CHAIN]; /* the nodes replaced */
    char anchor[200];         /* the Softmax's name, the stem of new names */
} attn_match;

/* ---- small queries ------------------------------------------------------------ */

static bool is_f32(const qkv_ir_graph *g, int32_t v, int32_t rank)
{
    return v >= 0 && g->values[v].dtype == QKV_DTYPE_FLOAT && g->values[v].rank == rank;
}

/* Identity, or a Cast of a float32 tensor of rank r to float32 (exporters
 * emit one around Softmax): nodes whose output equals their input. */
static bool is_noop(const qkv_ir_graph *g, const qkv_ir_node *n, int32_t r)
{
    if (n->n_inputs != 1 || n->n_outputs != 1 || !is_f32(g, n->inputs[0], r))
        return false;
    if (qkv_pass_is_op(n, "Identity"))
        return true;
    const qkv_ir_attr *to = qkv_node_attr(n, "to");
    return qkv_pass_is_op(n, "Cast") && to && to->type == QKV_ATTR_INT && to->i == QKV_DTYPE_FLOAT;
}

/* The value of a one-element float32 constant of rank <= max_rank, or of
 * Sqrt of one (left when constant folding is off). */
static bool scalar_of(const qkv_ir_graph *g, int32_t v, int32_t max_rank, double *out)
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
        scalar_of(g, p->inputs[0], max_rank, &x) && x >= 0) {
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
    if (n->n_inputs != 2 || n->n_outputs != 1 || !is_f32(g, n->outputs[0], r) ||
        n->inputs[0] == n->inputs[1])
        return false;
    double c;
    if (qkv_pass_is_op(n, "Mul")) {
        for (int side = 0; side < 2; side++) {
            int32_t x = n->inputs[side], other = n->inputs[1 - side];
            if (is_f32(g, x, r) && scalar_of(g, other, r, &c)) {
                *data = x;
                *factor = c;
                return true;
            }
        }
        return false;
    }
    if (qkv_pass_is_op(n, "Div") && is_f32(g, n->inputs[0], r) &&
        scalar_of(g, n->inputs[1], r, &c) && c != 0) {
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
                   (is_f32(g, p->inputs[0], r) ||
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

static bool add_chain(attn_match *m, int32_t node)
{
    if (m->n_chain == MAX_CHAIN)
        return false;
    m->chain[m->n_chain++] = node;
    return true;
}

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

/* ---- matching -------------------------------------------------------------------- */

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

/* A Reshape (opset 5+, shape as input 1) without allowzero. */
static bool plain_reshape(const qkv_ir_node *n)
{
    if (!qkv_pass_is_op(n, "Reshape") || n->opset < 5 || n->n_inputs != 2 || n->n_outputs != 1 ||
        n->inputs[1] < 0)
        return false;
    const qkv_ir_attr *z = qkv_node_attr(n, "allowzero");
    return !z || (z->type == QKV_ATTR_INT && z->i == 0);
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
        ns->inputs[1] != max || ns->n_outputs != 1 || !is_f32(g, ns->outputs[0], r) ||
        !add_chain(m, rm) || !add_chain(m, sub))
        return -1;
    return ns->outputs[0];
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
    if ((r != 3 && r != 4) || !plain_reshape(n) || !is_f32(g, n->outputs[0], r + 1))
        return -1;
    int32_t split_shape = n->inputs[1], v = n->outputs[0], split = v;
    size_t first = m->n_terms;
    for (;;) {
        int32_t k = qkv_pass_sole_consumer(g, v);
        if (k < 0 || !add_chain(m, k))
            return -1;
        const qkv_ir_node *a = &g->nodes[k];
        if (qkv_pass_is_op(a, "Add") && a->n_inputs == 2 && a->n_outputs == 1) {
            int32_t mask = a->inputs[0] == v ? a->inputs[1] : a->inputs[0];
            if (mask == v || m->n_terms == MAX_TERMS || !is_f32(g, a->outputs[0], r + 1) ||
                g->values[mask].dtype != QKV_DTYPE_FLOAT || !mask_fits(g, mask, split, r + 1))
                return -1;
            m->terms[m->n_terms++] = (mask_term){TERM_SPLIT_ADD, mask, 0.0f, split_shape, -1};
            v = a->outputs[0];
            continue;
        }
        if (m->n_terms == first || !plain_reshape(a) || !is_f32(g, a->outputs[0], r) ||
            !known_dims_agree(g, a->outputs[0], cur, r))
            return -1;
        for (size_t t = first; t < m->n_terms; t++)
            m->terms[t].merge = a->inputs[1];
        return a->outputs[0];
    }
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
        if (n->n_outputs < 1 || !add_chain(m, c))
            return -1;
        int32_t out = n->outputs[0], data;
        double f;
        if (qkv_pass_is_op(n, "Softmax")) {
            if (n->n_inputs != 1 || !is_f32(g, out, r))
                return -1;
            const qkv_ir_attr *a = qkv_node_attr(n, "axis");
            int64_t axis = n->opset >= 13 ? -1 : 1;
            if (a) {
                if (a->type != QKV_ATTR_INT)
                    return -1;
                axis = a->i;
            }
            if (axis < 0)
                axis += r;
            return axis == r - 1 ? c : -1;
        }
        if (is_noop(g, n, r)) {
            /* nothing to record */
        } else if (scale_parts(g, n, r, &data, &f) && data == cur) {
            if (m->n_terms)
                return -1; /* a scale after a mask would scale the mask too */
            m->scale *= f;
        } else if (qkv_pass_is_op(n, "Add") && n->n_inputs == 2) {
            int32_t mask = n->inputs[0] == cur ? n->inputs[1] : n->inputs[0];
            if (mask == cur || m->n_terms == MAX_TERMS || !is_f32(g, out, r) ||
                g->values[mask].dtype != QKV_DTYPE_FLOAT || !mask_fits(g, mask, m->scores, r))
                return -1;
            m->terms[m->n_terms++] = (mask_term){TERM_ADD, mask, 0.0f, -1, -1};
        } else if (qkv_pass_is_op(n, "Where") && n->n_inputs == 3) {
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
            if (cond == cur || m->n_terms == MAX_TERMS || !is_f32(g, out, r) ||
                g->values[cond].dtype != QKV_DTYPE_BOOL || !mask_fits(g, cond, m->scores, r) ||
                !scalar_of(g, fill_v, r, &fill) || !(isinf(fill) ? fill < 0 : fill <= FILL_LIMIT))
                return -1;
            m->terms[m->n_terms++] = (mask_term){kind, cond, (float)fill, -1, -1};
        } else if (qkv_pass_is_op(n, "Reshape")) {
            if ((out = match_split(g, m, c, cur)) < 0)
                return -1;
        } else {
            return -1;
        }
        if (!is_f32(g, out, r))
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
        if (c < 0 || !add_chain(m, c))
            return NULL;
        const qkv_ir_node *n = &g->nodes[c];
        if ((qkv_pass_is_op(n, "MatMul") || einsum_is(n, r, EINSUM_PV)) && n->n_inputs == 2 &&
            n->inputs[0] == cur && n->inputs[1] != cur && n->n_outputs == 1)
            return n;
        if (!is_noop(g, n, r) && !inference_dropout(g, n))
            return NULL;
        cur = n->outputs[0];
        if (!is_f32(g, cur, r))
            return NULL;
    }
}

/* With rank-5 scores (run as 4-D Attention over the merged batch dims):
 * every mask aligns with the 4-D scores as it did with the 5-D ones, i.e.
 * its dim for the second batch dim (if it has one) is 1. */
static bool masks_merge(const qkv_ir_graph *g, const attn_match *m)
{
    for (size_t t = 0; t < m->n_terms; t++) {
        const qkv_ir_value *v = &g->values[m->terms[t].value];
        if (v->rank > 4 || (v->rank == 4 && v->dims[0] != 1))
            return false;
    }
    return true;
}

/* Tries to match an attention core whose Q Kᵀ product is node `qk_idx`:
 * a MatMul, or an Einsum "Pid,Pjd->Pij". */
static bool match_at(const qkv_ir_graph *g, int32_t qk_idx, attn_match *m)
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
    if (r < 3 || r > 5 || (einsum && !einsum_is(qk, r, EINSUM_QK)) || !is_f32(g, m->scores, r) ||
        !is_f32(g, qk->inputs[0], r) || !is_f32(g, qk->inputs[1], r) || !add_chain(m, qk_idx))
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
    if (!is_f32(g, m->v, r) || !is_f32(g, m->out, r))
        return false;

    /* Q and K through their scale ops and Transposes */
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
    if (!(m->scale > 0) || !isfinite(m->scale) || !isfinite((float)m->scale) ||
        (float)m->scale <= 0.0f)
        return false;

    /* dims: no broadcasting in batch (and head) dims */
    const qkv_ir_value *q = &g->values[m->q], *k = &g->values[m->k_src], *v = &g->values[m->v];
    int64_t kd[QKV_MAX_RANK]; /* K's dims as Attention sees it */
    for (int32_t j = 0; j < r; j++)
        kd[j] = k->dims[m->k_perm[j]];
    for (int32_t j = 0; j < r - 2; j++) /* the last batch dim of rank 4-5 is the heads */
        if (!dims_agree(q->dims[j], kd[j], v->dims[j], r >= 4 && j == r - 3))
            return false;

    /* constant causal masks become is_causal */
    size_t w = 0;
    for (size_t t = 0; t < m->n_terms; t++) {
        if (causal_term(g, &m->terms[t], m->scores, r))
            m->causal = true;
        else
            m->terms[w++] = m->terms[t];
    }
    m->n_terms = w;
    if (r == 5 && !masks_merge(g, m))
        return false;
    snprintf(m->anchor, sizeof m->anchor, "%s", softmax->name);
    return true;
}

/* ---- building ------------------------------------------------------------------- */

typedef struct builder {
    qkv_ir_graph *g;
    const qkv_registry *reg;
    const char *stem;
    size_t n_new;
    int32_t new_nodes[MAX_NEW];
    qkv_error *err;
} builder;

static qkv_status oom(builder *b)
{
    return qkv_error_set(b->err, QKV_ERR_OUT_OF_MEMORY,
                         "attention fusion at node '%s': out of memory", b->stem);
}

/* A new value named "STEM/role" (or "STEM/role_N" if taken). */
static int32_t new_value(builder *b, const char *role, qkv_value_kind kind)
{
    char name[320];
    for (int k = 0; k < 1000; k++) {
        if (k == 0)
            snprintf(name, sizeof name, "%s/%s", b->stem, role);
        else
            snprintf(name, sizeof name, "%s/%s_%d", b->stem, role, k);
        bool dup = false;
        int32_t id = qkv_graph_add_value(b->g, name, kind, &dup);
        if (id >= 0 || !dup)
            return id;
    }
    return -1;
}

/* A new constant holding `bytes` of data (copied), of the given type and shape. */
static int32_t new_const(builder *b, const char *role, qkv_dtype dtype, int32_t rank,
                         const int64_t *dims, const void *data, size_t bytes)
{
    void *copy = malloc(bytes ? bytes : 1);
    if (!copy)
        return -1;
    int32_t id = new_value(b, role, QKV_VALUE_CONSTANT);
    if (id < 0) {
        free(copy);
        return -1;
    }
    qkv_ir_value *v = &b->g->values[id];
    memcpy(copy, data, bytes);
    v->dtype = dtype;
    v->rank = rank;
    for (int32_t k = 0; k < rank; k++)
        v->dims[k] = dims[k];
    v->data = copy;
    v->data_bytes = bytes;
    v->borrowed = false;
    return id;
}

static int32_t new_f32_scalar(builder *b, const char *role, float x)
{
    return new_const(b, role, QKV_DTYPE_FLOAT, 0, NULL, &x, sizeof x);
}

/* A new node "STEM/role" with the given inputs and one new output value
 * (returned through *out when not NULL; the node's output slot 0 is set to
 * `out_value` instead when that is >= 0). Returns the node index or -1. */
static int32_t new_node(builder *b, const char *role, const char *op, int64_t opset,
                        const int32_t *inputs, size_t n_inputs, int32_t out_value, int32_t *out)
{
    if (b->n_new == MAX_NEW)
        return -1;
    char name[320];
    snprintf(name, sizeof name, "%s/%s", b->stem, role);
    int32_t o = out_value;
    if (o < 0 && (o = new_value(b, role, QKV_VALUE_ACTIVATION)) < 0)
        return -1;
    int32_t idx = qkv_graph_add_node(b->g, name, op, "", opset, n_inputs, 1);
    if (idx < 0)
        return -1;
    qkv_ir_node *n = &b->g->nodes[idx];
    memcpy(n->inputs, inputs, n_inputs * sizeof *inputs);
    n->outputs[0] = o;
    b->new_nodes[b->n_new++] = idx;
    if (out)
        *out = o;
    return idx;
}

/* Appends an attribute to node idx; ints (n of them) for INTS. */
static bool add_attr(builder *b, int32_t idx, const char *name, qkv_attr_type type, int64_t i,
                     float f, const int64_t *ints, size_t n)
{
    qkv_ir_node *node = &b->g->nodes[idx];
    qkv_ir_attr *attrs = realloc(node->attrs, (node->n_attrs + 1) * sizeof *attrs);
    if (!attrs)
        return false;
    node->attrs = attrs;
    qkv_ir_attr *a = &attrs[node->n_attrs];
    memset(a, 0, sizeof *a);
    a->name = qkv_strdup(name);
    a->type = type;
    a->i = i;
    a->f = f;
    if (type == QKV_ATTR_INTS) {
        a->ints = malloc((n ? n : 1) * sizeof *a->ints);
        if (a->ints)
            memcpy(a->ints, ints, n * sizeof *ints);
        a->n = n;
    }
    if (!a->name || (type == QKV_ATTR_INTS && !a->ints)) {
        qkv_attr_fini(a);
        return false;
    }
    node->n_attrs++;
    return true;
}

/* Chooses and initialises the kernel of new node idx. */
static qkv_status init_node(builder *b, int32_t idx)
{
    return qkv_pass_init_node(b->g, idx, b->reg, "attention fusion", b->err);
}

static void destroy_state(qkv_ir_node *n)
{
    if (n->kernel && n->kernel->destroy && n->kernel_state)
        n->kernel->destroy(n->kernel_state);
    n->kernel_state = NULL;
}

/* The ops a rewrite may create, and the opsets they are created with. */
#define OPSET_TRANSPOSE 13
#define OPSET_UNSQUEEZE 13
#define OPSET_NOT 1
#define OPSET_WHERE 16
#define OPSET_ADD 14
#define OPSET_EXPAND 13
#define OPSET_RESHAPE 14
#define OPSET_SHAPE 15
#define OPSET_CONCAT 13

static bool have(const qkv_registry *reg, const char *op, int64_t opset)
{
    return qkv_registry_find(reg, "", op, opset, NULL) != NULL;
}

/* Can every node the rewrite of m needs be run by reg? */
static bool kernels_available(const qkv_registry *reg, const attn_match *m)
{
    if (m->k_transpose && !have(reg, "Transpose", OPSET_TRANSPOSE))
        return false;
    if (m->rank == 3 && m->n_terms && !have(reg, "Unsqueeze", OPSET_UNSQUEEZE))
        return false;
    if (m->rank == 5 && (!have(reg, "Reshape", OPSET_RESHAPE) || !have(reg, "Shape", OPSET_SHAPE) ||
                         !have(reg, "Concat", OPSET_CONCAT)))
        return false;
    for (size_t t = 0; t < m->n_terms; t++) {
        const mask_term *x = &m->terms[t];
        if (x->kind == TERM_SPLIT_ADD &&
            (!have(reg, "Expand", OPSET_EXPAND) || !have(reg, "Reshape", OPSET_RESHAPE)))
            return false;
        bool where = x->kind != TERM_ADD && (m->n_terms > 1 || !isinf(x->fill));
        if (where && !have(reg, "Where", OPSET_WHERE))
            return false;
        if (x->kind == TERM_KEEP_FALSE && !where && !have(reg, "Not", OPSET_NOT))
            return false;
    }
    return m->n_terms < 2 || have(reg, "Add", OPSET_ADD);
}

/* One mask term as an attn_mask value for scores of rank r; *rank gets
 * its rank. */
static int32_t build_term(builder *b, const mask_term *t, int32_t r, bool force_float,
                          int32_t *rank)
{
    const qkv_ir_graph *g = b->g;
    *rank = g->values[t->value].rank;
    if (t->kind == TERM_ADD)
        return t->value;
    int32_t out = -1;
    if (t->kind == TERM_SPLIT_ADD) {
        int32_t e, in[2] = {t->value, t->split};
        if (new_node(b, "mask_expand", "Expand", OPSET_EXPAND, in, 2, -1, &e) < 0)
            return -1;
        int32_t in2[2] = {e, t->merge};
        *rank = r;
        return new_node(b, "mask_merge", "Reshape", OPSET_RESHAPE, in2, 2, -1, &out) < 0 ? -1 : out;
    }
    if (t->kind == TERM_KEEP_TRUE && isinf(t->fill) && !force_float)
        return t->value; /* True = attend, as Attention reads a bool mask */
    if (isinf(t->fill) && !force_float) {
        int32_t in[1] = {t->value};
        return new_node(b, "mask_not", "Not", OPSET_NOT, in, 1, -1, &out) < 0 ? -1 : out;
    }
    int32_t zero = new_f32_scalar(b, "mask_zero", 0.0f);
    int32_t fill = new_f32_scalar(b, "mask_fill", t->fill);
    if (zero < 0 || fill < 0)
        return -1;
    int32_t in[3] = {t->value, t->kind == TERM_KEEP_TRUE ? zero : fill,
                     t->kind == TERM_KEEP_TRUE ? fill : zero};
    return new_node(b, "mask_where", "Where", OPSET_WHERE, in, 3, -1, &out) < 0 ? -1 : out;
}

/* Builds the attn_mask value of m (-1: none). *failed on out of memory. */
static int32_t build_mask(builder *b, const attn_match *m, bool *failed)
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
        if (new_node(b, "mask_add", "Add", OPSET_ADD, in, 2, -1, &mask) < 0) {
            *failed = true;
            return -1;
        }
        rank = r_t > rank ? r_t : rank;
    }
    if (m->rank == 3 && rank == 3) {
        /* 3-D Attention aligns a 3-D mask (N, Sq, T) with (heads, Sq, T) */
        int64_t one = 1, n_axes = 1;
        int32_t axes = new_const(b, "mask_axes", QKV_DTYPE_INT64, 1, &n_axes, &one, sizeof one);
        int32_t in[2] = {mask, axes};
        if (axes < 0 ||
            new_node(b, "mask_unsqueeze", "Unsqueeze", OPSET_UNSQUEEZE, in, 2, -1, &mask) < 0) {
            *failed = true;
            return -1;
        }
    }
    return mask;
}

/* Drops new nodes after a failure: the graph is the original again. */
static void roll_back(builder *b)
{
    for (size_t k = 0; k < b->n_new; k++) {
        qkv_ir_node *n = &b->g->nodes[b->new_nodes[k]];
        destroy_state(n);
        n->dead = true;
    }
    qkv_graph_finalize(b->g, NULL);
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
            destroy_state(n);
            n->dead = true;
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
static int32_t build_shape(builder *b, const char *role, const shape_part *parts, size_t n)
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
        return new_const(b, role, QKV_DTYPE_INT64, 1, &len, dims, (size_t)len * sizeof *dims);
    int32_t in[4];
    for (size_t p = 0; p < n; p++) {
        if (parts[p].x < 0) {
            in[p] =
                new_const(b, "shape_lead", QKV_DTYPE_INT64, 1, &one, &minus_one, sizeof minus_one);
            if (in[p] < 0)
                return -1;
            continue;
        }
        int32_t idx = new_node(b, "shape_of", "Shape", OPSET_SHAPE, &parts[p].x, 1, -1, &in[p]);
        if (idx < 0 || !add_attr(b, idx, "start", QKV_ATTR_INT, parts[p].start, 0, NULL, 0) ||
            !add_attr(b, idx, "end", QKV_ATTR_INT, parts[p].end, 0, NULL, 0))
            return -1;
    }
    int32_t out = -1, idx = new_node(b, role, "Concat", OPSET_CONCAT, in, n, -1, &out);
    if (idx < 0 || !add_attr(b, idx, "axis", QKV_ATTR_INT, 0, 0, NULL, 0))
        return -1;
    return out;
}

/* x (B, G, H, S, D) as (B G, H, S, D), a view; dims are x's static dims. */
static int32_t merge_batch(builder *b, const char *role, int32_t x, const int64_t *dims)
{
    shape_part parts[2] = {{-1, NULL, 0, 0}, {x, dims, 2, 5}};
    char shape_role[64];
    snprintf(shape_role, sizeof shape_role, "%s_shape", role);
    int32_t shape = build_shape(b, shape_role, parts, 2), out = -1;
    int32_t in[2] = {x, shape};
    if (shape < 0 || new_node(b, role, "Reshape", OPSET_RESHAPE, in, 2, -1, &out) < 0)
        return -1;
    return out;
}

static qkv_status rewrite(qkv_ir_graph *g, const qkv_registry *reg, const attn_match *m,
                          qkv_error *err)
{
    builder b = {.g = g, .reg = reg, .stem = m->anchor, .err = err};
    int32_t k = m->k_src;
    if (m->k_transpose) {
        int32_t in[1] = {m->k_src};
        int32_t idx = new_node(&b, "K_transpose", "Transpose", OPSET_TRANSPOSE, in, 1, -1, &k);
        if (idx < 0 || !add_attr(&b, idx, "perm", QKV_ATTR_INTS, 0, 0, m->k_perm, (size_t)m->rank))
            goto out_of_memory;
    }
    bool failed;
    int32_t mask = build_mask(&b, m, &failed);
    if (failed)
        goto out_of_memory;
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
        if ((in[0] = merge_batch(&b, "Q_4d", m->q, qd)) < 0 ||
            (in[1] = merge_batch(&b, "K_4d", k, kd)) < 0 ||
            (in[2] = merge_batch(&b, "V_4d", m->v, vd)) < 0 ||
            (y = new_value(&b, "Y_4d", QKV_VALUE_ACTIVATION)) < 0)
            goto out_of_memory;
    }
    int32_t att = new_node(&b, "Attention", "Attention", QKV_FUSED_ATTENTION_OPSET, in,
                           mask >= 0 ? 4 : 3, y, NULL);
    if (att < 0 || !add_attr(&b, att, "scale", QKV_ATTR_FLOAT, 0, (float)m->scale, NULL, 0) ||
        (m->causal && !add_attr(&b, att, "is_causal", QKV_ATTR_INT, 1, 0, NULL, 0)) ||
        (m->rank == 3 && (!add_attr(&b, att, "q_num_heads", QKV_ATTR_INT, 1, 0, NULL, 0) ||
                          !add_attr(&b, att, "kv_num_heads", QKV_ATTR_INT, 1, 0, NULL, 0))))
        goto out_of_memory;
    if (m->rank == 5) {
        /* (B G, H, S, Dv) -> (B, G, H, S, Dv): Q's dims but V's last */
        shape_part parts[3] = {{-1, NULL, 0, 0}, {m->q, qd, 1, 4}, {m->v, vd, 4, 5}};
        int32_t shape = build_shape(&b, "Y_shape", parts, 3);
        int32_t rin[2] = {y, shape};
        if (shape < 0 || new_node(&b, "Y", "Reshape", OPSET_RESHAPE, rin, 2, m->out, NULL) < 0)
            goto out_of_memory;
    }

    /* the replaced nodes go; their inputs are candidates for orphan removal */
    size_t cap = 4 * MAX_CHAIN + 64, n_cand = 0;
    int32_t *cand = malloc(cap * sizeof *cand);
    if (!cand)
        goto out_of_memory;
    for (size_t j = 0; j < b.n_new; j++) {
        qkv_status st = init_node(&b, b.new_nodes[j]);
        if (st != QKV_OK) {
            free(cand);
            roll_back(&b);
            return st;
        }
    }
    for (size_t c = 0; c < m->n_chain; c++) {
        qkv_ir_node *n = &g->nodes[m->chain[c]];
        destroy_state(n);
        n->dead = true;
        for (size_t j = 0; j < n->n_inputs && n_cand < cap; j++)
            if (n->inputs[j] >= 0)
                cand[n_cand++] = n->inputs[j];
    }
    qkv_status st = qkv_graph_finalize(g, err);
    if (st == QKV_OK)
        st = drop_orphans(g, cand, n_cand, cap, err);
    free(cand);
    return st;

out_of_memory:
    roll_back(&b);
    return oom(&b);
}

/* qkv_pass_try_fn: attention whose Q Kᵀ product is the MatMul node idx. */
static qkv_status try_at(qkv_ir_graph *g, const qkv_registry *reg, int32_t idx, bool *rewrote,
                         qkv_error *err)
{
    attn_match m;
    if (!match_at(g, idx, &m) || !kernels_available(reg, &m))
        return QKV_OK;
    qkv_status st = rewrite(g, reg, &m, err);
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
    if (!g || !reg || !have(reg, "Attention", QKV_FUSED_ATTENTION_OPSET))
        return QKV_OK;
    st = qkv_pass_rewrite_all(g, reg, "MatMul", try_at, &count, err);
    size_t by_einsum = 0;
    if (st == QKV_OK)
        st = qkv_pass_rewrite_all(g, reg, "Einsum", try_at, &by_einsum, err);
    if (fused)
        *fused = count + by_einsum;
    return st;
}
