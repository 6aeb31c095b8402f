/*
 * attention.c - ONNX Attention (opsets 23 and 24), on the fused kernel of
 * attention_core.h. Semantics as summarised in
 * /work/shared/reference/ATTENTION_SPEC.md (the 1.23 errata semantics):
 *
 *  - Q/K/V 4-D (B, H, S, D) or 3-D (B, S, H*D) with q_num_heads and
 *    kv_num_heads; GQA maps query head h to KV head h / (Hq / Hkv); V's head
 *    size may differ from Q/K's.
 *  - attn_mask: bool (True = attend) or float (additive, -inf excludes),
 *    broadcast right-aligned to (B, Hq, Sq, T) (a 3-D mask is (H, Sq, T)).
 *    Opset 23: its last dim is T (or 1, broadcast, as the function body's Add
 *    does). Opset 24: its last dim may be shorter than T; keys past it are
 *    excluded (the spec pads with -inf / False).
 *  - is_causal: key j visible to query i iff j <= i + offset, offset =
 *    past length P, or nonpad_kv_seqlen[b] - Sq (opset 24, no past), else 0.
 *  - past_key/past_value concatenated before the new K/V on the sequence
 *    axis; present_key/present_value are that concatenation (4-D, Hkv heads).
 *  - scale (default 1/sqrt(D)), softcap before the mask, fully excluded
 *    query rows give zeros, qk_matmul_output_mode 0-3 for output 3.
 *  - nonpad_kv_seqlen (opset 24): keys j >= nonpad[b] excluded.
 *
 * Deviations: scores are computed as scale * (Q K^T) rather than
 * (sqrt(scale) Q)(sqrt(scale) K)^T (rounding only). float16/bfloat16 inputs
 * are converted to float32 in scratch and the whole computation, softmax
 * included, runs in float32 whatever softmax_precision says (that attribute
 * is validated, and float32 is at least the precision it asks for, except
 * for 11 = double). A negative scale (NaN in the reference, which takes its
 * square root) is rejected. Q, K, V, past_key and past_value must share one
 * element type. nonpad_kv_seqlen together with past_key is rejected, as
 * opset 25 does.
 *
 * Memory: output 3, when requested, is the only (Sq, T) buffer; otherwise
 * scratch is O(tile) per thread plus, for float16/bfloat16, float32 copies of
 * the operands (see attn_layout). The shapes are checked and the layout made
 * once per plan, in prepare (attn_plan, the per-plan state).
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "attention_core.h"
#include "attention_shape.h"
#include "elementwise.h"
#include "kernel_util.h"

enum { IN_Q, IN_K, IN_V, IN_MASK, IN_PAST_K, IN_PAST_V, IN_NONPAD };
enum { OUT_Y, OUT_PRESENT_K, OUT_PRESENT_V, OUT_QK };

static const char *const in_names[] = {
    "Q", "K", "V", "attn_mask", "past_key", "past_value", "nonpad_kv_seqlen"};

typedef struct attn_attrs {
    int64_t opset;
    bool causal;
    bool has_scale;
    float scale;
    int64_t q_heads, kv_heads; /* 0: attribute absent */
    float softcap;
    int64_t qk_mode;
    bool want_qk; /* output 3 is connected */
} attn_attrs;

/* Everything about the shapes; -1 where unknown (infer at session creation). */
typedef struct attn_shape {
    bool rank3;
    bool has_past;
    int64_t b, hq, hkv, sq, skv, d, dv, p, t;
} attn_shape;

/* ---- attributes ------------------------------------------------------------ */

static qkv_status attn_init(const qkv_kernel *kernel, const qkv_host_api *host,
                            const qkv_node_ctx *node, void **state)
{
    (void)kernel;
    attn_attrs a = {.opset = host->node_opset(node)};
    int64_t causal, precision;
    qkv_status st;
    if ((st = host->attr_int(node, "is_causal", 0, &causal)) != QKV_OK ||
        (st = host->attr_float(node, "scale", 0, &a.scale)) != QKV_OK ||
        (st = host->attr_int(node, "q_num_heads", 0, &a.q_heads)) != QKV_OK ||
        (st = host->attr_int(node, "kv_num_heads", 0, &a.kv_heads)) != QKV_OK ||
        (st = host->attr_float(node, "softcap", 0, &a.softcap)) != QKV_OK ||
        (st = host->attr_int(node, "softmax_precision", 1, &precision)) != QKV_OK ||
        (st = host->attr_int(node, "qk_matmul_output_mode", 0, &a.qk_mode)) != QKV_OK)
        return st;
    a.causal = causal != 0;
    a.want_qk = host->node_output_present(node, OUT_QK) != 0;
    a.has_scale = host->attr_type(node, "scale") != QKV_ATTR_UNDEFINED;
    if (a.has_scale && !(a.scale >= 0))
        return NERR(host, node, QKV_ERR_INVALID_MODEL,
                    "attribute scale=%g is negative (the spec takes its square root)",
                    (double)a.scale);
    if (!isfinite(a.softcap))
        return NERR(host, node, QKV_ERR_INVALID_MODEL, "attribute softcap=%g is not finite",
                    (double)a.softcap);
    if (a.q_heads < 0 || a.kv_heads < 0)
        return NERR(host, node, QKV_ERR_INVALID_MODEL,
                    "attributes q_num_heads=%lld and kv_num_heads=%lld must not be negative",
                    (long long)a.q_heads, (long long)a.kv_heads);
    if (a.qk_mode < 0 || a.qk_mode > 3)
        return NERR(host, node, QKV_ERR_INVALID_MODEL,
                    "attribute qk_matmul_output_mode=%lld is not 0, 1, 2 or 3",
                    (long long)a.qk_mode);
    if (precision != 1 && precision != 10 && precision != 11 && precision != 16)
        return NERR(host, node, QKV_ERR_INVALID_MODEL,
                    "attribute softmax_precision=%lld is not 1 (float), 10 (float16), "
                    "11 (double) or 16 (bfloat16)",
                    (long long)precision);
    attn_attrs *s = malloc(sizeof *s);
    if (!s)
        return NERR(host, node, QKV_ERR_OUT_OF_MEMORY, "kernel state");
    *s = a;
    *state = s;
    return QKV_OK;
}

static void attn_destroy(void *state) { free(state); }

/* ---- shapes ------------------------------------------------------------------ */

/* a * b, -1 when either is unknown; false on overflow. */
static bool mul_dim(int64_t a, int64_t b, int64_t *out)
{
    if (a < 0 || b < 0) {
        *out = -1;
        return true;
    }
    return !__builtin_mul_overflow(a, b, out);
}

/* The head size of a 3-D input's last dim split into `heads` heads. */
static qkv_status split_heads(qkv_kernel_io *io, size_t in, int64_t width, int64_t heads,
                              const char *attr, int64_t *head_size)
{
    return qkv_attn_split_heads(io, in, in_names[in], "last dim", width, heads, attr, head_size);
}

/* past_key / past_value: 4-D (B, Hkv, P, D) / (B, Hkv, P, Dv), both or
 * neither, of Q's type; sets has_past, the past length p, and the KV head
 * count when only the past tells it. */
static qkv_status attn_past_of(qkv_kernel_io *io, attn_shape *sh)
{
    const qkv_tensor *q = &io->inputs[IN_Q];
    bool pk = qkv_present(io, IN_PAST_K), pv = qkv_present(io, IN_PAST_V);
    if (pk != pv)
        return KERR(io, QKV_ERR_INVALID_MODEL, "past_key and past_value must be given together");
    sh->has_past = pk;
    sh->p = 0;
    if (pk) {
        const qkv_tensor *past[2] = {&io->inputs[IN_PAST_K], &io->inputs[IN_PAST_V]};
        for (int i = 0; i < 2; i++) {
            const qkv_tensor *t = past[i];
            size_t in = IN_PAST_K + (size_t)i;
            if (t->dtype && q->dtype && t->dtype != q->dtype)
                return KERR(io, QKV_ERR_TYPE, "input %zu '%s' has type %s, expected %s like 'Q'",
                            in, in_names[in], io->host->dtype_name(t->dtype),
                            io->host->dtype_name(q->dtype));
            if (t->rank >= 0 && t->rank != 4)
                return KERR(io, QKV_ERR_SHAPE, "input %zu '%s' has rank %d, expected 4", in,
                            in_names[in], t->rank);
            int64_t want[4] = {sh->b, sh->hkv, -1, i == 0 ? sh->d : sh->dv};
            for (int32_t j = 0; j < 4; j++)
                if (j != 2 && qkv_attn_differ(qkv_attn_dim(t, j), want[j]))
                    return KERR(io, QKV_ERR_SHAPE,
                                "input %zu '%s' has dim %d = %lld, expected "
                                "%lld",
                                in, in_names[in], j, (long long)t->dims[j], (long long)want[j]);
        }
        if (qkv_attn_differ(qkv_attn_dim(past[0], 2), qkv_attn_dim(past[1], 2)))
            return KERR(io, QKV_ERR_SHAPE,
                        "past_key and past_value have sequence lengths %lld "
                        "and %lld",
                        (long long)past[0]->dims[2], (long long)past[1]->dims[2]);
        sh->p = qkv_attn_pick(qkv_attn_dim(past[0], 2), qkv_attn_dim(past[1], 2));
        sh->hkv = qkv_attn_pick(sh->hkv,
                                qkv_attn_pick(qkv_attn_dim(past[0], 1), qkv_attn_dim(past[1], 1)));
    }
    return QKV_OK;
}

/* Q, K and V have one rank, 3 or 4 (*rank: that rank, -1 while none is
 * known), and one element type (where known). */
static qkv_status check_qkv_ranks_types(qkv_kernel_io *io, int32_t *rank)
{
    const qkv_tensor *q = &io->inputs[IN_Q], *k = &io->inputs[IN_K], *v = &io->inputs[IN_V];
    *rank = q->rank >= 0 ? q->rank : k->rank >= 0 ? k->rank : v->rank;
    for (size_t i = IN_Q; i <= IN_V; i++) {
        int32_t r = io->inputs[i].rank;
        if (r >= 0 && r != 3 && r != 4)
            return KERR(io, QKV_ERR_SHAPE, "input %zu '%s' has rank %d, expected 3 or 4", i,
                        in_names[i], r);
    }
    for (size_t i = IN_Q; i <= IN_V; i++)
        if (io->inputs[i].rank >= 0 && io->inputs[i].rank != *rank)
            return KERR(io, QKV_ERR_SHAPE,
                        "inputs 'Q', 'K', 'V' have ranks %d, %d, %d; "
                        "they must be equal",
                        q->rank, k->rank, v->rank);
    bool types_known = q->dtype && k->dtype && v->dtype; /* UNDEFINED: not inferred yet */
    if (types_known && (q->dtype != k->dtype || q->dtype != v->dtype))
        return KERR(io, QKV_ERR_TYPE,
                    "inputs 'Q', 'K', 'V' have types %s, %s, %s; qkv needs "
                    "one type",
                    io->host->dtype_name(q->dtype), io->host->dtype_name(k->dtype),
                    io->host->dtype_name(v->dtype));
    return QKV_OK;
}

/* 3-D (B, S, H*D) inputs: the head counts from the attributes, the head
 * sizes from splitting the last dims (*dk: K's), the sequence lengths. */
static qkv_status dims_of_3d(const attn_attrs *s, qkv_kernel_io *io, attn_shape *sh, int64_t *dk)
{
    const qkv_tensor *q = &io->inputs[IN_Q], *k = &io->inputs[IN_K], *v = &io->inputs[IN_V];
    qkv_status st;
    if (s->q_heads <= 0 || s->kv_heads <= 0)
        return KERR(io, QKV_ERR_INVALID_MODEL,
                    "3-D inputs need attributes q_num_heads and kv_num_heads (> 0)");
    sh->hq = s->q_heads;
    sh->hkv = s->kv_heads;
    sh->sq = qkv_attn_dim(q, 1);
    sh->skv = qkv_attn_pick(qkv_attn_dim(k, 1), qkv_attn_dim(v, 1));
    if ((st = split_heads(io, IN_Q, qkv_attn_dim(q, 2), sh->hq, "q_num_heads", &sh->d)) ||
        (st = split_heads(io, IN_K, qkv_attn_dim(k, 2), sh->hkv, "kv_num_heads", dk)) ||
        (st = split_heads(io, IN_V, qkv_attn_dim(v, 2), sh->hkv, "kv_num_heads", &sh->dv)))
        return st;
    if (qkv_attn_differ(qkv_attn_dim(v, 1), sh->skv))
        return KERR(io, QKV_ERR_SHAPE,
                    "inputs 'K' and 'V' have sequence lengths %lld and "
                    "%lld",
                    (long long)k->dims[1], (long long)v->dims[1]);
    return QKV_OK;
}

/* 4-D (B, H, S, D) inputs: heads, sequence lengths and head sizes (*dk:
 * K's) from the dims, checked against the head attributes when given. */
static qkv_status dims_of_4d(const attn_attrs *s, qkv_kernel_io *io, attn_shape *sh, int64_t *dk)
{
    const qkv_tensor *q = &io->inputs[IN_Q], *k = &io->inputs[IN_K], *v = &io->inputs[IN_V];
    sh->hq = qkv_attn_dim(q, 1);
    sh->hkv = qkv_attn_pick(qkv_attn_dim(k, 1), qkv_attn_dim(v, 1));
    sh->sq = qkv_attn_dim(q, 2);
    sh->skv = qkv_attn_pick(qkv_attn_dim(k, 2), qkv_attn_dim(v, 2));
    sh->d = qkv_attn_dim(q, 3);
    *dk = qkv_attn_dim(k, 3);
    sh->dv = qkv_attn_dim(v, 3);
    if (qkv_attn_differ(qkv_attn_dim(k, 1), qkv_attn_dim(v, 1)) ||
        qkv_attn_differ(qkv_attn_dim(k, 2), qkv_attn_dim(v, 2)))
        return KERR(io, QKV_ERR_SHAPE,
                    "inputs 'K' and 'V' have heads x sequence %lld x "
                    "%lld and %lld x %lld, expected equal",
                    (long long)k->dims[1], (long long)k->dims[2], (long long)v->dims[1],
                    (long long)v->dims[2]);
    if ((s->q_heads > 0 && qkv_attn_differ(sh->hq, s->q_heads)) ||
        (s->kv_heads > 0 && qkv_attn_differ(sh->hkv, s->kv_heads)))
        return KERR(io, QKV_ERR_SHAPE,
                    "4-D inputs have %lld query and %lld key/value "
                    "heads, but attributes say q_num_heads=%lld kv_num_heads=%lld",
                    (long long)sh->hq, (long long)sh->hkv, (long long)s->q_heads,
                    (long long)s->kv_heads);
    return QKV_OK;
}

/* Validates the shapes of Q, K, V, past_key, past_value (what is known). */
static qkv_status attn_shape_of(const attn_attrs *s, qkv_kernel_io *io, attn_shape *sh)
{
    const qkv_tensor *q = &io->inputs[IN_Q], *k = &io->inputs[IN_K], *v = &io->inputs[IN_V];
    int32_t rank;
    qkv_status st = check_qkv_ranks_types(io, &rank);
    if (st != QKV_OK)
        return st;
    memset(sh, 0, sizeof *sh);
    sh->rank3 = rank == 3;
    sh->b =
        qkv_attn_pick(qkv_attn_dim(q, 0), qkv_attn_pick(qkv_attn_dim(k, 0), qkv_attn_dim(v, 0)));
    for (size_t i = IN_Q; i <= IN_V; i++)
        if (qkv_attn_differ(qkv_attn_dim(&io->inputs[i], 0), sh->b))
            return KERR(io, QKV_ERR_SHAPE, "input %zu '%s' has batch %lld, expected %lld", i,
                        in_names[i], (long long)io->inputs[i].dims[0], (long long)sh->b);
    int64_t dk = -1;
    st = sh->rank3 ? dims_of_3d(s, io, sh, &dk) : dims_of_4d(s, io, sh, &dk);
    if (st != QKV_OK)
        return st;
    if (sh->hq >= 0 && sh->hkv >= 0 && (sh->hkv == 0 || sh->hq % sh->hkv != 0))
        return KERR(io, QKV_ERR_SHAPE,
                    "%lld query heads are not a multiple of %lld key/value "
                    "heads",
                    (long long)sh->hq, (long long)sh->hkv);
    if (qkv_attn_differ(sh->d, dk))
        return KERR(io, QKV_ERR_SHAPE,
                    "inputs 'Q' and 'K' have head sizes %lld and %lld, "
                    "expected equal",
                    (long long)sh->d, (long long)dk);
    sh->d = qkv_attn_pick(sh->d, dk);

    if ((st = attn_past_of(io, sh)) != QKV_OK)
        return st;
    sh->t = sh->p >= 0 && sh->skv >= 0 ? sh->p + sh->skv : -1;
    return QKV_OK;
}

/* Validates attn_mask (rank 1-4, broadcastable to (B, Hq, Sq, T)) and
 * nonpad_kv_seqlen ((B,), opset 24, no past). */
static qkv_status check_masks(const attn_attrs *s, qkv_kernel_io *io, const attn_shape *sh)
{
    if (qkv_present(io, IN_MASK)) {
        const qkv_tensor *m = &io->inputs[IN_MASK];
        char buf[96];
        if (m->rank >= 0 && (m->rank < 1 || m->rank > 4))
            return KERR(io, QKV_ERR_SHAPE, "input 3 'attn_mask' has rank %d, expected 1 to 4",
                        m->rank);
        if (m->rank >= 1) {
            int64_t target[4] = {sh->b, sh->hq, sh->sq, sh->t};
            for (int32_t j = 0; j < m->rank - 1; j++) {
                int64_t md = m->dims[j], td = target[4 - m->rank + j];
                if (md != 1 && qkv_attn_differ(md, td))
                    return KERR(io, QKV_ERR_SHAPE,
                                "input 3 'attn_mask' of shape %s does not broadcast to "
                                "(batch %lld, heads %lld, q_len %lld, total kv_len %lld)",
                                qkv_dims_str(m, buf, sizeof buf), (long long)sh->b,
                                (long long)sh->hq, (long long)sh->sq, (long long)sh->t);
            }
            int64_t last = m->dims[m->rank - 1];
            bool bad = s->opset < 24 ? last != 1 && qkv_attn_differ(last, sh->t)
                                     : last >= 0 && sh->t >= 0 && last > sh->t;
            if (bad)
                return KERR(io, QKV_ERR_SHAPE,
                            "input 3 'attn_mask' of shape %s: last dim %lld must be %s the total "
                            "kv_len %lld",
                            qkv_dims_str(m, buf, sizeof buf), (long long)last,
                            s->opset < 24 ? "1 or" : "at most", (long long)sh->t);
        }
    }
    if (qkv_present(io, IN_NONPAD)) {
        const qkv_tensor *n = &io->inputs[IN_NONPAD];
        if (sh->has_past)
            return KERR(io, QKV_ERR_INVALID_MODEL,
                        "nonpad_kv_seqlen cannot be combined with past_key/past_value");
        if (n->rank >= 0 && (n->rank != 1 || qkv_attn_differ(n->dims[0], sh->b)))
            return KERR(io, QKV_ERR_SHAPE, "input 6 'nonpad_kv_seqlen' must have shape (%lld)",
                        (long long)sh->b);
    }
    return QKV_OK;
}

static qkv_status attn_infer(void *state, qkv_kernel_io *io)
{
    const attn_attrs *s = state;
    attn_shape sh;
    qkv_status st = attn_shape_of(s, io, &sh);
    if (st == QKV_OK)
        st = check_masks(s, io, &sh);
    if (st != QKV_OK)
        return st;
    qkv_dtype t = io->inputs[IN_Q].dtype;
    int32_t rank = io->inputs[IN_Q].rank;
    if (rank < 0)
        rank = io->inputs[IN_K].rank >= 0 ? io->inputs[IN_K].rank : io->inputs[IN_V].rank;
    int64_t width;
    if (!mul_dim(sh.hq, sh.dv, &width))
        return KERR(io, QKV_ERR_SHAPE, "output width q_num_heads x head size overflows");
    if (rank == 3)
        qkv_set_shape(&io->outputs[OUT_Y], t, 3, (int64_t[]){sh.b, sh.sq, width});
    else if (rank == 4)
        qkv_set_shape(&io->outputs[OUT_Y], t, 4, (int64_t[]){sh.b, sh.hq, sh.sq, sh.dv});
    else
        qkv_set_shape(&io->outputs[OUT_Y], t, -1, NULL);
    if (io->n_outputs > OUT_PRESENT_K)
        qkv_set_shape(&io->outputs[OUT_PRESENT_K], t, 4, (int64_t[]){sh.b, sh.hkv, sh.t, sh.d});
    if (io->n_outputs > OUT_PRESENT_V)
        qkv_set_shape(&io->outputs[OUT_PRESENT_V], t, 4, (int64_t[]){sh.b, sh.hkv, sh.t, sh.dv});
    if (io->n_outputs > OUT_QK)
        qkv_set_shape(&io->outputs[OUT_QK], t, 4, (int64_t[]){sh.b, sh.hq, sh.sq, sh.t});
    return QKV_OK;
}

/* ---- scratch layout ------------------------------------------------------------ */

/* Byte offsets into scratch; SIZE_MAX where a buffer is not needed. */
typedef struct attn_layout {
    size_t q, k, v, past_k, past_v; /* float32 copies of float16/bfloat16 operands */
    size_t mask;                    /* float32 copy of a float16/bfloat16 mask */
    size_t y, qk;                   /* float32 outputs converted back at the end */
    size_t offsets;                 /* per-batch causal offsets (int64) */
    size_t core;                    /* the fused kernel's slots, from here to the end */
} attn_layout;

/* What prepare works out once per plan and compute reads (io->plan_state). */
typedef struct attn_plan {
    attn_shape sh;
    attn_layout l;
} attn_plan;

/* Output k is connected and allocated (compute only). */
static bool want_output(const qkv_kernel_io *io, size_t k)
{
    return io->n_outputs > k && io->outputs[k].data != NULL;
}

/* The layout of the kernel's own buffers for the (known) shapes of io; the
 * slots go at l->core. false when a size overflows. */
static bool attn_layout_of(const qkv_kernel_io *io, bool want_qk, attn_layout *l)
{
    memset(l, 0xff, sizeof *l);
    size_t off = 0;
    bool conv = io->inputs[IN_Q].dtype != QKV_DTYPE_FLOAT;
    bool ok = true;
    if (conv) {
        ok = qkv_attn_take(&off, qkv_numel(&io->inputs[IN_Q]), 4, &l->q) &&
             qkv_attn_take(&off, qkv_numel(&io->inputs[IN_K]), 4, &l->k) &&
             qkv_attn_take(&off, qkv_numel(&io->inputs[IN_V]), 4, &l->v) &&
             qkv_attn_take(&off, qkv_numel(&io->outputs[OUT_Y]), 4, &l->y);
        if (ok && qkv_present(io, IN_PAST_K))
            ok = qkv_attn_take(&off, qkv_numel(&io->inputs[IN_PAST_K]), 4, &l->past_k) &&
                 qkv_attn_take(&off, qkv_numel(&io->inputs[IN_PAST_V]), 4, &l->past_v);
        if (ok && want_qk)
            ok = qkv_attn_take(&off, qkv_numel(&io->outputs[OUT_QK]), 4, &l->qk);
    }
    if (ok && qkv_present(io, IN_MASK) && io->inputs[IN_MASK].dtype != QKV_DTYPE_BOOL &&
        io->inputs[IN_MASK].dtype != QKV_DTYPE_FLOAT)
        ok = qkv_attn_take(&off, qkv_numel(&io->inputs[IN_MASK]), 4, &l->mask);
    if (ok && qkv_present(io, IN_NONPAD))
        ok = qkv_attn_take(&off, (size_t)io->inputs[IN_NONPAD].dims[0], sizeof(int64_t),
                           &l->offsets);
    l->core = off;
    return ok;
}

/* ---- building the kernel's arguments ------------------------------------------ */

/* The float view of an operand: its own data, or its converted copy. */
static const float *as_float(qkv_kernel_io *io, size_t in, size_t at)
{
    const qkv_tensor *t = &io->inputs[in];
    if (t->dtype == QKV_DTYPE_FLOAT)
        return t->data;
    float *dst = (float *)((unsigned char *)io->scratch + at);
    qkv_ew_half_to_f32(dst, t->data, t->dtype, qkv_numel(t));
    return dst;
}

/* (b, h, s, d) view of a 4-D (B, H, S, D) or 3-D (B, S, H*D) tensor. */
static qkv_attn_view view_of(const float *data, bool rank3, size_t heads, size_t len, size_t d)
{
    qkv_attn_view v = {.data = data};
    if (rank3) {
        v.sb = len * heads * d;
        v.sh = d;
        v.ss = heads * d;
    } else {
        v.sb = heads * len * d;
        v.sh = len * d;
        v.ss = d;
    }
    return v;
}

/* present = concat(past, new) on the sequence axis, in the input's own element
 * type (es bytes): (B, Hkv, P + S, D); new is 4-D or 3-D. */
static void write_present(void *dst, const void *past, const void *cur, bool rank3, size_t b_n,
                          size_t heads, size_t p, size_t s, size_t d, size_t es)
{
    unsigned char *out = dst;
    size_t row = d * es;
    for (size_t b = 0; b < b_n; b++) {
        for (size_t h = 0; h < heads; h++) {
            if (p > 0) {
                memcpy(out, (const unsigned char *)past + ((b * heads + h) * p) * row, p * row);
                out += p * row;
            }
            if (!rank3 && s > 0) {
                memcpy(out, (const unsigned char *)cur + ((b * heads + h) * s) * row, s * row);
                out += s * row;
            } else if (rank3) {
                for (size_t i = 0; i < s; i++) {
                    memcpy(out, (const unsigned char *)cur + ((b * s + i) * heads + h) * row, row);
                    out += row;
                }
            }
        }
    }
}

/* The sizes, scale, Q, the key segments (past, then the new keys) and the
 * output of a; float16/bfloat16 operands converted into l's buffers. */
static void args_operands(const attn_attrs *s, qkv_kernel_io *io, const attn_shape *sh,
                          const attn_layout *l, qkv_attn_args *a)
{
    size_t b = (size_t)sh->b, hq = (size_t)sh->hq, hkv = (size_t)sh->hkv, sq = (size_t)sh->sq;
    size_t skv = (size_t)sh->skv, d = (size_t)sh->d, dv = (size_t)sh->dv, p = (size_t)sh->p;
    a->batch = b;
    a->q_heads = hq;
    a->kv_heads = hkv;
    a->q_len = sq;
    a->head_size = d;
    a->v_head_size = dv;
    a->scale = s->has_scale ? s->scale : (float)(1.0 / sqrt((double)(d ? d : 1)));
    a->softcap = s->softcap;

    a->q = view_of(as_float(io, IN_Q, l->q), sh->rank3, hq, sq, d);
    size_t n = 0;
    if (sh->has_past && p > 0) {
        a->seg[n].k = view_of(as_float(io, IN_PAST_K, l->past_k), false, hkv, p, d);
        a->seg[n].v = view_of(as_float(io, IN_PAST_V, l->past_v), false, hkv, p, dv);
        a->seg[n++].len = p;
    }
    a->seg[n].k = view_of(as_float(io, IN_K, l->k), sh->rank3, hkv, skv, d);
    a->seg[n].v = view_of(as_float(io, IN_V, l->v), sh->rank3, hkv, skv, dv);
    a->seg[n++].len = skv;
    a->n_segments = n;

    qkv_tensor *y = &io->outputs[OUT_Y];
    qkv_attn_view yv = view_of(NULL, sh->rank3, hq, sq, dv);
    a->out = l->y != SIZE_MAX ? (float *)((unsigned char *)io->scratch + l->y) : y->data;
    a->out_sb = yv.sb;
    a->out_sh = yv.sh;
    a->out_ss = yv.ss;
}

/* attn_mask as a's keep mask (bool) or bias (float, converted into l's
 * buffer when half), broadcast right-aligned to (B, Hq, Sq, T); a last dim
 * shorter than T sets key_limit (opset 24), a last dim of 1 broadcasts over
 * the keys (opset 23). */
static void args_mask(const attn_attrs *s, qkv_kernel_io *io, const attn_layout *l,
                      qkv_attn_args *a)
{
    const qkv_tensor *m = &io->inputs[IN_MASK];
    size_t st[4] = {0, 0, 0, 0}, stride = 1;
    for (int32_t j = m->rank - 1; j >= 0; j--) {
        size_t dim = (size_t)m->dims[j];
        st[4 - m->rank + j] = dim == 1 ? 0 : stride;
        stride *= dim;
    }
    size_t last = (size_t)m->dims[m->rank - 1];
    if (last == 1 && s->opset < 24) {
        st[3] = 0; /* opset 23: a last dim of 1 broadcasts over the keys */
    } else {
        st[3] = 1; /* opset 24: keys past the mask are excluded */
        a->key_limit = last;
    }
    if (m->dtype == QKV_DTYPE_BOOL) {
        a->keep = m->data;
        a->keep_type = QKV_ATTN_KEEP_U8;
        a->keep_sb = st[0], a->keep_sh = st[1], a->keep_si = st[2], a->keep_sj = st[3];
    } else {
        a->bias = as_float(io, IN_MASK, l->mask);
        a->bias_sb = st[0], a->bias_sh = st[1], a->bias_si = st[2], a->bias_sj = st[3];
    }
}

/* is_causal: the offset is the past length, or per batch nonpad[b] - Sq
 * (written into l's buffer), else 0. a->kv_valid must be set first. */
static void args_causal(qkv_kernel_io *io, const attn_shape *sh, const attn_layout *l,
                        qkv_attn_args *a)
{
    size_t sq = (size_t)sh->sq, t = (size_t)sh->t;
    a->causal = true;
    if (sh->has_past) {
        a->causal_offset = sh->p;
    } else if (a->kv_valid) {
        /* per batch nonpad[b] - Sq; nonpad clamped to [0, T + Sq], which
         * changes nothing (offsets <= -Sq hide every key, >= T none) */
        int64_t *off = (int64_t *)((unsigned char *)io->scratch + l->offsets);
        for (size_t i = 0; i < (size_t)sh->b; i++) {
            int64_t v = a->kv_valid[i];
            v = v < 0 ? 0 : (uint64_t)v > t + sq ? (int64_t)(t + sq) : v;
            off[i] = v - (int64_t)sq;
        }
        a->causal_offsets = off;
    }
}

/* Fills a from io (all shapes known) with the layout l; converts float16
 * inputs and fills the causal offsets on the way. */
static void build_args(const attn_attrs *s, qkv_kernel_io *io, const attn_shape *sh,
                       const attn_layout *l, qkv_attn_args *a)
{
    qkv_attn_args_init(a);
    args_operands(s, io, sh, l, a);
    if (qkv_present(io, IN_MASK))
        args_mask(s, io, l, a);
    if (qkv_present(io, IN_NONPAD))
        a->kv_valid = io->inputs[IN_NONPAD].data;
    if (s->causal)
        args_causal(io, sh, l, a);
    if (s->want_qk && want_output(io, OUT_QK)) {
        size_t hq = (size_t)sh->hq, sq = (size_t)sh->sq, t = (size_t)sh->t;
        a->qk_out = l->qk != SIZE_MAX ? (float *)((unsigned char *)io->scratch + l->qk)
                                      : io->outputs[OUT_QK].data;
        a->qk_sb = hq * sq * t;
        a->qk_sh = sq * t;
        a->qk_si = t;
        a->qk_stage = (qkv_attn_qk_stage)s->qk_mode;
    }
}

/* ---- prepare / compute ------------------------------------------------------------ */

static qkv_status attn_prepare(void *state, qkv_kernel_io *io)
{
    const attn_attrs *s = state;
    attn_plan plan;
    qkv_status st = attn_shape_of(s, io, &plan.sh);
    if (st == QKV_OK)
        st = check_masks(s, io, &plan.sh);
    if (st != QKV_OK)
        return st;
    const attn_shape *sh = &plan.sh;
    if (!attn_layout_of(io, s->want_qk, &plan.l))
        return KERR(io, QKV_ERR_SHAPE, "attention scratch size overflows");
    /* a stand-in args (no data) sizes the slots and checks BLAS limits */
    qkv_attn_args a;
    qkv_attn_args_init(&a);
    a.batch = (size_t)sh->b, a.q_heads = (size_t)sh->hq, a.kv_heads = (size_t)sh->hkv;
    a.q_len = (size_t)sh->sq, a.head_size = (size_t)sh->d, a.v_head_size = (size_t)sh->dv;
    a.q = view_of(NULL, sh->rank3, a.q_heads, a.q_len, a.head_size);
    a.n_segments = 1;
    a.seg[0].k = view_of(NULL, sh->rank3, a.kv_heads, (size_t)sh->skv, a.head_size);
    a.seg[0].v = view_of(NULL, sh->rank3, a.kv_heads, (size_t)sh->skv, a.v_head_size);
    a.seg[0].len = (size_t)sh->t;
    if ((st = qkv_attn_prepare_slots(io, &a, plan.l.core)) != QKV_OK)
        return st;
    attn_plan *kept;
    if ((st = io->host->plan_alloc(io, sizeof *kept, (void **)&kept)) != QKV_OK)
        return st;
    *kept = plan;
    io->plan_state = kept;
    return QKV_OK;
}

static qkv_status attn_compute(const void *state, qkv_kernel_io *io)
{
    const attn_attrs *s = state;
    const attn_plan *plan = io->plan_state;
    if (!plan)
        return KERR(io, QKV_ERR_INTERNAL, "no per-plan state: prepare did not run");
    const attn_shape *sh = &plan->sh;
    qkv_dtype t = io->inputs[IN_Q].dtype;
    size_t es = t == QKV_DTYPE_FLOAT ? 4 : 2;
    size_t b = (size_t)sh->b, hkv = (size_t)sh->hkv, p = (size_t)sh->p, skv = (size_t)sh->skv;
    const void *pk = sh->has_past ? io->inputs[IN_PAST_K].data : NULL;
    const void *pv = sh->has_past ? io->inputs[IN_PAST_V].data : NULL;
    if (want_output(io, OUT_PRESENT_K))
        write_present(io->outputs[OUT_PRESENT_K].data, pk, io->inputs[IN_K].data, sh->rank3, b, hkv,
                      p, skv, (size_t)sh->d, es);
    if (want_output(io, OUT_PRESENT_V))
        write_present(io->outputs[OUT_PRESENT_V].data, pv, io->inputs[IN_V].data, sh->rank3, b, hkv,
                      p, skv, (size_t)sh->dv, es);

    qkv_attn_args a;
    build_args(s, io, sh, &plan->l, &a);
    qkv_status st = qkv_attn_run_slots(io, &a, plan->l.core);
    if (st != QKV_OK)
        return st;

    if (t != QKV_DTYPE_FLOAT) {
        qkv_tensor *y = &io->outputs[OUT_Y];
        qkv_ew_f32_to_half(y->data, a.out, t, qkv_numel(y));
        if (a.qk_out)
            qkv_ew_f32_to_half(io->outputs[OUT_QK].data, a.qk_out, t,
                               qkv_numel(&io->outputs[OUT_QK]));
    }
    return QKV_OK;
}

#define ATTN_FLOATS (QKV_T(FLOAT) | QKV_T(FLOAT16) | QKV_T(BFLOAT16))

#define ATTENTION_KERNEL(since, until, max_in)                                                     \
    {                                                                                              \
        QKV_KERNEL_V1,                                                                             \
            .domain = "", .op_type = "Attention", .since_version = (since),                        \
            .until_version = (until), .min_inputs = 3, .max_inputs = (max_in), .min_outputs = 1,   \
            .max_outputs = 4, .n_input_types = 7,                                                  \
            .input_types = {ATTN_FLOATS, ATTN_FLOATS, ATTN_FLOATS, ATTN_FLOATS | QKV_T(BOOL),      \
                            ATTN_FLOATS, ATTN_FLOATS, QKV_T(INT64)},                               \
            .init = attn_init, .infer = attn_infer, .prepare = attn_prepare,                       \
            .compute = attn_compute, .destroy = attn_destroy,                                      \
    }

static const qkv_kernel kernels[] = {
    ATTENTION_KERNEL(23, 23, 6),
    ATTENTION_KERNEL(24, 24, 7),
};

/* The Attention descriptors (opsets 23 and 24); *count set to their number. */
const qkv_kernel *qkv_ops_attention(size_t *count)
{
    *count = sizeof kernels / sizeof kernels[0];
    return kernels;
}
