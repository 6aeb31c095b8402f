/*
 * mha.c - com.microsoft.MultiHeadAttention (since 1), the ONNX Runtime
 * contrib op, on the fused kernel of attention_core.h. Semantics as
 * summarised in /work/shared/reference/MHA_CONTRIB_SPEC.md (ORT CPU kernel):
 *
 *  - query (B, S, D); key (B, L, D) and value (B, L, Dv); or packed QKV
 *    query (B, S, N, 3, H) without key/value; or packed KV key
 *    (B, L, N, 2, H) without value; or per-head key (B, N, L, H) and value
 *    (B, N, L, Hv) (already projected: no bias, no past).
 *  - bias (D + D + Dv) added to the Q, K, V projections.
 *  - key_padding_mask int32: (B) key lengths, (B, T) or (B, S, T) with
 *    1 = keep / 0 = mask; masked keys get mask_filter_value (default -10000)
 *    added, a finite value, so a row whose keys are all masked behaves as an
 *    unmasked row (ORT's behaviour), not a zero row. (1, 1) / (B, 1) dummy
 *    masks (when T != 1) are ignored, as ORT does.
 *  - attention_bias (B or 1, N or 1, S, T) added to the scaled scores.
 *  - past_key/past_value (B, N, P, H/Hv) concatenated before the new K/V;
 *    present_key/present_value are the concatenation (with the bias added).
 *  - scale (0: 1/sqrt(H)), unidirectional: causal with offset P when S > 1.
 *  - output 3 'qk' (B, N, S, T): the scaled scores with attention_bias and
 *    masks added, before softmax.
 *
 * Deviations: float32 only (ORT's CPU kernel is float32 too). Causal
 * positions are excluded (-inf) rather than given float's lowest value, so
 * output 3 holds -inf there. Not supported (QKV_ERR_UNSUPPORTED): the
 * (3B + 2) key_padding_mask form, past_sequence_length and cache_indirection
 * (buffer sharing and beam search).
 *
 * Memory: besides the kernel's O(tile) per-thread slots, bias needs the
 * biased Q (and K/V unless they go to present outputs) in scratch, the size
 * of those inputs; no (S, T) buffer unless output 3 is requested. The shapes
 * are checked and the layout made once per plan, in prepare (mha_plan, the
 * per-plan state).
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "attention_core.h"
#include "attention_shape.h"
#include "kernel_util.h"

enum {
    IN_QUERY,
    IN_KEY,
    IN_VALUE,
    IN_BIAS,
    IN_PADDING,
    IN_ATTN_BIAS,
    IN_PAST_K,
    IN_PAST_V,
    IN_PAST_LEN,
    IN_CACHE_IND
};
enum { OUT_Y, OUT_PRESENT_K, OUT_PRESENT_V, OUT_QK };

static const char *const in_names[] = {"query",
                                       "key",
                                       "value",
                                       "bias",
                                       "key_padding_mask",
                                       "attention_bias",
                                       "past_key",
                                       "past_value",
                                       "past_sequence_length",
                                       "cache_indirection"};

typedef struct mha_attrs {
    int64_t heads;
    float mask_filter_value;
    float scale; /* 0: 1/sqrt(head size) */
    bool causal;
    bool want_present_k, want_present_v, want_qk;
} mha_attrs;

/* Where Q, K and V come from. */
typedef enum mha_form {
    MHA_SEPARATE,   /* query (B,S,D), key (B,L,D), value (B,L,Dv) */
    MHA_PACKED_QKV, /* query (B,S,N,3,H) */
    MHA_PACKED_KV,  /* query (B,S,D), key (B,L,N,2,H) */
    MHA_KV_BNSH,    /* query (B,S,D), key (B,N,L,H), value (B,N,L,Hv) */
} mha_form;

/* The key_padding_mask forms. */
typedef enum mha_mask { MASK_NONE, MASK_LENGTHS, MASK_2D, MASK_3D } mha_mask;

/* -1 where unknown (infer at session creation). */
typedef struct mha_shape {
    bool unknown; /* the rank of query or key is not known yet: nothing checked */
    mha_form form;
    mha_mask mask;
    bool has_past;
    int64_t b, n, s, l, h, hv, p, t;
} mha_shape;

/* ---- attributes ------------------------------------------------------------ */

static qkv_status mha_init(const qkv_kernel *kernel, const qkv_host_api *host,
                           const qkv_node_ctx *node, void **state)
{
    (void)kernel;
    mha_attrs a = {0};
    int64_t causal;
    qkv_status st;
    if ((st = host->attr_int(node, "num_heads", 0, &a.heads)) != QKV_OK ||
        (st = host->attr_float(node, "mask_filter_value", -10000.0f, &a.mask_filter_value)) !=
            QKV_OK ||
        (st = host->attr_float(node, "scale", 0, &a.scale)) != QKV_OK ||
        (st = host->attr_int(node, "unidirectional", 0, &causal)) != QKV_OK)
        return st;
    if (a.heads <= 0)
        return NERR(host, node, QKV_ERR_INVALID_MODEL,
                    "attribute num_heads=%lld must be given and positive", (long long)a.heads);
    if (isnan(a.scale) || isnan(a.mask_filter_value))
        return NERR(host, node, QKV_ERR_INVALID_MODEL,
                    "attributes scale and mask_filter_value "
                    "must not be NaN");
    a.causal = causal != 0;
    a.want_present_k = host->node_output_present(node, OUT_PRESENT_K) != 0;
    a.want_present_v = host->node_output_present(node, OUT_PRESENT_V) != 0;
    a.want_qk = host->node_output_present(node, OUT_QK) != 0;
    mha_attrs *s = malloc(sizeof *s);
    if (!s)
        return NERR(host, node, QKV_ERR_OUT_OF_MEMORY, "kernel state");
    *s = a;
    *state = s;
    return QKV_OK;
}

static void mha_destroy(void *state) { free(state); }

/* ---- shapes ---------------------------------------------------------------- */

/* Checks that input `in` (when its rank is known) has rank `rank` and the
 * known dims of want (-1: any). */
static qkv_status expect_dims(qkv_kernel_io *io, size_t in, int32_t rank, const int64_t *want)
{
    const qkv_tensor *t = &io->inputs[in];
    char buf[96];
    if (t->rank < 0)
        return QKV_OK;
    if (t->rank != rank)
        return KERR(io, QKV_ERR_SHAPE, "input %zu '%s' has rank %d, expected %d", in, in_names[in],
                    t->rank, rank);
    for (int32_t j = 0; j < rank; j++)
        if (qkv_attn_differ(t->dims[j], want[j]))
            return KERR(io, QKV_ERR_SHAPE, "input %zu '%s' has shape %s: dim %d should be %lld", in,
                        in_names[in], qkv_dims_str(t, buf, sizeof buf), j, (long long)want[j]);
    return QKV_OK;
}

/* A width split into n heads; -1 when unknown. */
static qkv_status per_head(qkv_kernel_io *io, size_t in, int64_t width, int64_t n, int64_t *h)
{
    return qkv_attn_split_heads(io, in, in_names[in], "hidden size", width, n, "num_heads", h);
}

/* The form of Q, K, V (separate, packed QKV, packed KV, per-head K/V) and
 * their dims b, s, l, h, hv, from query and key of known rank. */
static qkv_status mha_qkv_of(qkv_kernel_io *io, mha_shape *sh)
{
    const qkv_tensor *q = &io->inputs[IN_QUERY], *k = &io->inputs[IN_KEY];
    const qkv_tensor *v = &io->inputs[IN_VALUE];
    bool has_k = qkv_present(io, IN_KEY), has_v = qkv_present(io, IN_VALUE);
    bool has_bias = qkv_present(io, IN_BIAS);
    qkv_status st;
    sh->b = qkv_attn_dim(q, 0);
    sh->s = qkv_attn_dim(q, 1);
    if (q->rank == 5) {
        if (has_k || has_v)
            return KERR(io, QKV_ERR_INVALID_MODEL,
                        "packed QKV query (rank 5) takes no 'key' "
                        "or 'value'");
        sh->form = MHA_PACKED_QKV;
        if ((st = expect_dims(io, IN_QUERY, 5, (int64_t[]){-1, -1, sh->n, 3, -1})))
            return st;
        sh->l = sh->s;
        sh->h = sh->hv = qkv_attn_dim(q, 4);
        return QKV_OK;
    }
    if (!has_k)
        return KERR(io, QKV_ERR_INVALID_MODEL,
                    "a 3-D 'query' needs 'key' (only a packed "
                    "QKV query of rank 5 comes alone)");
    if ((st = per_head(io, IN_QUERY, qkv_attn_dim(q, 2), sh->n, &sh->h)))
        return st;
    if (k->rank == 3) {
        sh->form = MHA_SEPARATE;
        if (!has_v)
            return KERR(io, QKV_ERR_INVALID_MODEL, "a 3-D 'key' needs 'value'");
        if ((st = expect_dims(io, IN_KEY, 3, (int64_t[]){sh->b, -1, qkv_attn_dim(q, 2)})) ||
            (st = expect_dims(io, IN_VALUE, 3, (int64_t[]){sh->b, qkv_attn_dim(k, 1), -1})) ||
            (st = per_head(io, IN_VALUE, qkv_attn_dim(v, 2), sh->n, &sh->hv)))
            return st;
        sh->l = qkv_attn_pick(qkv_attn_dim(k, 1), qkv_attn_dim(v, 1));
    } else if (k->rank == 5) {
        sh->form = MHA_PACKED_KV;
        if (has_v || has_bias)
            return KERR(io, QKV_ERR_INVALID_MODEL,
                        "packed KV key (rank 5) takes no "
                        "'value' and no 'bias'");
        if ((st = expect_dims(io, IN_KEY, 5, (int64_t[]){sh->b, -1, sh->n, 2, sh->h})))
            return st;
        sh->l = qkv_attn_dim(k, 1);
        sh->hv = qkv_attn_pick(sh->h, qkv_attn_dim(k, 4));
    } else if (k->rank == 4) {
        sh->form = MHA_KV_BNSH;
        if (!has_v || has_bias || qkv_present(io, IN_PAST_K) || qkv_present(io, IN_PAST_V))
            return KERR(io, QKV_ERR_INVALID_MODEL,
                        "a 4-D (per-head) 'key' needs a 4-D "
                        "'value' and takes no 'bias' and no past");
        if ((st = expect_dims(io, IN_KEY, 4, (int64_t[]){sh->b, sh->n, -1, sh->h})) ||
            (st = expect_dims(io, IN_VALUE, 4, (int64_t[]){sh->b, sh->n, qkv_attn_dim(k, 2), -1})))
            return st;
        sh->l = qkv_attn_pick(qkv_attn_dim(k, 2), qkv_attn_dim(v, 2));
        sh->hv = qkv_attn_dim(v, 3);
    } else {
        return KERR(io, QKV_ERR_SHAPE, "input 1 'key' has rank %d, expected 3, 4 or 5", k->rank);
    }
    return QKV_OK;
}

/* bias (D + D + Dv), and past_key/past_value: the past length p and the
 * total key count t. */
static qkv_status mha_bias_past_of(qkv_kernel_io *io, mha_shape *sh)
{
    qkv_status st;
    int64_t d = sh->h >= 0 ? sh->n * sh->h : -1, dv = sh->hv >= 0 ? sh->n * sh->hv : -1;
    if (qkv_present(io, IN_BIAS)) {
        int64_t want = d >= 0 && dv >= 0 ? 2 * d + dv : -1;
        if ((st = expect_dims(io, IN_BIAS, 1, &want)))
            return st;
    }
    bool pk = qkv_present(io, IN_PAST_K), pv = qkv_present(io, IN_PAST_V);
    if (pk != pv)
        return KERR(io, QKV_ERR_INVALID_MODEL, "past_key and past_value must be given together");
    if (pv && io->inputs[IN_PAST_V].dtype != QKV_DTYPE_FLOAT)
        return KERR(io, QKV_ERR_TYPE, "input 7 'past_value' has type %s, expected float",
                    io->host->dtype_name(io->inputs[IN_PAST_V].dtype));
    sh->has_past = pk;
    sh->p = 0;
    if (pk) {
        const qkv_tensor *kp = &io->inputs[IN_PAST_K], *vp = &io->inputs[IN_PAST_V];
        if ((st = expect_dims(io, IN_PAST_K, 4, (int64_t[]){sh->b, sh->n, -1, sh->h})) ||
            (st = expect_dims(io, IN_PAST_V, 4,
                              (int64_t[]){sh->b, sh->n, qkv_attn_dim(kp, 2), sh->hv})))
            return st;
        sh->p = qkv_attn_pick(qkv_attn_dim(kp, 2), qkv_attn_dim(vp, 2));
    }
    sh->t = sh->p >= 0 && sh->l >= 0 ? sh->p + sh->l : -1;
    return QKV_OK;
}

/* The key_padding_mask form, and attention_bias's shape. */
static qkv_status mha_masks_of(qkv_kernel_io *io, mha_shape *sh)
{
    char buf[96];
    sh->mask = MASK_NONE;
    if (qkv_present(io, IN_PADDING)) {
        const qkv_tensor *m = &io->inputs[IN_PADDING];
        int64_t d0 = qkv_attn_dim(m, 0), d1 = qkv_attn_dim(m, 1);
        if (m->rank == 1 && (d0 < 0 || !qkv_attn_differ(d0, sh->b))) {
            sh->mask = MASK_LENGTHS;
        } else if (m->rank == 1 && sh->b >= 0 && d0 == 3 * sh->b + 2) {
            return KERR(io, QKV_ERR_UNSUPPORTED,
                        "input 4 'key_padding_mask' of shape (3 * batch "
                        "+ 2) (lengths and start offsets) is not supported");
        } else if (m->rank == 2 && !qkv_attn_differ(d0, sh->b) && !qkv_attn_differ(d1, sh->t)) {
            sh->mask = MASK_2D;
        } else if (m->rank == 2 && d1 == 1 && (d0 == 1 || !qkv_attn_differ(d0, sh->b))) {
            sh->mask = MASK_NONE; /* ORT's dummy mask: no effect */
        } else if (m->rank == 3 && !qkv_attn_differ(d0, sh->b) && !qkv_attn_differ(d1, sh->s) &&
                   !qkv_attn_differ(qkv_attn_dim(m, 2), sh->t)) {
            sh->mask = MASK_3D;
        } else if (m->rank >= 0) {
            return KERR(io, QKV_ERR_SHAPE,
                        "input 4 'key_padding_mask' has shape %s, expected "
                        "(batch %lld), (batch, total kv_len %lld) or (batch, q_len %lld, total "
                        "kv_len)",
                        qkv_dims_str(m, buf, sizeof buf), (long long)sh->b, (long long)sh->t,
                        (long long)sh->s);
        }
    }
    if (qkv_present(io, IN_ATTN_BIAS)) {
        const qkv_tensor *ab = &io->inputs[IN_ATTN_BIAS];
        int64_t d0 = qkv_attn_dim(ab, 0), d1 = qkv_attn_dim(ab, 1);
        bool bad = ab->rank != 4 || (d0 != 1 && qkv_attn_differ(d0, sh->b)) ||
                   (d1 != 1 && qkv_attn_differ(d1, sh->n)) ||
                   qkv_attn_differ(qkv_attn_dim(ab, 2), sh->s) ||
                   qkv_attn_differ(qkv_attn_dim(ab, 3), sh->t);
        if (ab->rank >= 0 && bad)
            return KERR(io, QKV_ERR_SHAPE,
                        "input 5 'attention_bias' has shape %s, expected "
                        "(batch %lld or 1, num_heads %lld or 1, q_len %lld, total kv_len %lld)",
                        qkv_dims_str(ab, buf, sizeof buf), (long long)sh->b, (long long)sh->n,
                        (long long)sh->s, (long long)sh->t);
    }
    return QKV_OK;
}

/* Validates every input's shape against the others (what is known) into sh;
 * sh->unknown when the ranks of query or key are not known yet. */
static qkv_status mha_shape_of(const mha_attrs *s, qkv_kernel_io *io, mha_shape *sh)
{
    const qkv_tensor *q = &io->inputs[IN_QUERY], *k = &io->inputs[IN_KEY];
    memset(sh, 0, sizeof *sh);
    sh->n = s->heads;
    if (qkv_present(io, IN_PAST_LEN) || qkv_present(io, IN_CACHE_IND))
        return KERR(io, QKV_ERR_UNSUPPORTED,
                    "past_sequence_length and cache_indirection "
                    "(KV buffer sharing, beam search) are not supported");
    if (q->rank >= 0 && q->rank != 3 && q->rank != 5)
        return KERR(io, QKV_ERR_SHAPE, "input 0 'query' has rank %d, expected 3 or 5", q->rank);
    if (q->rank < 0 || (qkv_present(io, IN_KEY) && k->rank < 0)) {
        sh->unknown = true; /* the form cannot be told yet (session creation) */
        return QKV_OK;
    }
    qkv_status st = mha_qkv_of(io, sh);
    if (st == QKV_OK)
        st = mha_bias_past_of(io, sh);
    if (st == QKV_OK)
        st = mha_masks_of(io, sh);
    return st;
}

static qkv_status mha_infer(void *state, qkv_kernel_io *io)
{
    const mha_attrs *s = state;
    mha_shape sh;
    qkv_status st = mha_shape_of(s, io, &sh);
    if (st != QKV_OK)
        return st;
    qkv_dtype t = io->inputs[IN_QUERY].dtype;
    if (sh.unknown)
        sh.b = sh.s = sh.t = sh.h = sh.hv = -1;
    int64_t dv = sh.hv >= 0 ? sh.n * sh.hv : -1;
    qkv_set_shape(&io->outputs[OUT_Y], t, 3, (int64_t[]){sh.b, sh.s, dv});
    if (io->n_outputs > OUT_PRESENT_K)
        qkv_set_shape(&io->outputs[OUT_PRESENT_K], t, 4, (int64_t[]){sh.b, sh.n, sh.t, sh.h});
    if (io->n_outputs > OUT_PRESENT_V)
        qkv_set_shape(&io->outputs[OUT_PRESENT_V], t, 4, (int64_t[]){sh.b, sh.n, sh.t, sh.hv});
    if (io->n_outputs > OUT_QK)
        qkv_set_shape(&io->outputs[OUT_QK], t, 4, (int64_t[]){sh.b, sh.n, sh.s, sh.t});
    return QKV_OK;
}

/* ---- operand views ------------------------------------------------------------ */

/* p + off, or NULL while the data is not known (prepare). */
static const float *at(const float *p, size_t off) { return p ? p + off : NULL; }

/* The (b, h, s, d) views of the un-biased Q, K, V as stored in the inputs
 * (data NULL where an input's data is not known). */
static void raw_views(const qkv_kernel_io *io, const mha_shape *sh, qkv_attn_view *q,
                      qkv_attn_view *k, qkv_attn_view *v)
{
    size_t n = (size_t)sh->n, s = (size_t)sh->s, l = (size_t)sh->l;
    size_t h = (size_t)sh->h, hv = (size_t)sh->hv;
    const float *qd = io->inputs[IN_QUERY].data;
    const float *kd = qkv_present(io, IN_KEY) ? io->inputs[IN_KEY].data : NULL;
    const float *vd = qkv_present(io, IN_VALUE) ? io->inputs[IN_VALUE].data : NULL;
    switch (sh->form) {
    case MHA_PACKED_QKV: /* (B, S, N, 3, H) */
        *q = (qkv_attn_view){qd, s * n * 3 * h, 3 * h, n * 3 * h};
        *k = (qkv_attn_view){at(qd, h), s * n * 3 * h, 3 * h, n * 3 * h};
        *v = (qkv_attn_view){at(qd, 2 * h), s * n * 3 * h, 3 * h, n * 3 * h};
        return;
    case MHA_PACKED_KV: /* key (B, L, N, 2, H) */
        *k = (qkv_attn_view){kd, l * n * 2 * h, 2 * h, n * 2 * h};
        *v = (qkv_attn_view){at(kd, h), l * n * 2 * h, 2 * h, n * 2 * h};
        break;
    case MHA_KV_BNSH:
        *k = (qkv_attn_view){kd, n * l * h, l * h, h};
        *v = (qkv_attn_view){vd, n * l * hv, l * hv, hv};
        break;
    case MHA_SEPARATE:
        *k = (qkv_attn_view){kd, l * n * h, h, n * h};
        *v = (qkv_attn_view){vd, l * n * hv, hv, n * hv};
        break;
    }
    *q = (qkv_attn_view){qd, s * n * h, h, n * h};
}

/* Writes src (+ bias[head * d + :d] when bias is non-NULL) as rows [at, at +
 * len) of a contiguous (B, N, rows, d) buffer. */
static void copy_heads(float *dst, size_t rows, size_t at, const qkv_attn_view *src,
                       const float *bias, size_t b_n, size_t n, size_t len, size_t d)
{
    for (size_t b = 0; b < b_n; b++)
        for (size_t hh = 0; hh < n; hh++) {
            float *out = dst + ((b * n + hh) * rows + at) * d;
            const float *bh = bias ? bias + hh * d : NULL;
            for (size_t i = 0; i < len; i++) {
                const float *in = src->data + b * src->sb + hh * src->sh + i * src->ss;
                if (bh)
                    for (size_t c = 0; c < d; c++)
                        out[i * d + c] = in[c] + bh[c];
                else
                    memcpy(out + i * d, in, d * sizeof *out);
            }
        }
}

/* ---- scratch ---------------------------------------------------------------- */

typedef struct mha_layout {
    size_t q, k, v; /* biased copies (B, N, S|L, H|Hv); SIZE_MAX: not needed */
    size_t lengths; /* int64 key lengths for the (B) mask form */
    size_t core;    /* the fused kernel's slots, from here to the end */
} mha_layout;

/* What prepare works out once per plan and compute reads (io->plan_state). */
typedef struct mha_plan {
    mha_shape sh;
    mha_layout l;
} mha_plan;

/* The layout of the kernel's own buffers; false when a size overflows. */
static bool mha_layout_of(const mha_attrs *s, const qkv_kernel_io *io, const mha_shape *sh,
                          mha_layout *l)
{
    memset(l, 0xff, sizeof *l);
    size_t off = 0, bn = (size_t)sh->b * (size_t)sh->n; /* dims of known inputs: no overflow */
    bool ok = true;
    if (qkv_present(io, IN_BIAS)) {
        size_t q_el = 0, k_el = 0, v_el = 0;
        ok = !__builtin_mul_overflow(bn, (size_t)sh->s * (size_t)sh->h, &q_el) &&
             !__builtin_mul_overflow(bn, (size_t)sh->l * (size_t)sh->h, &k_el) &&
             !__builtin_mul_overflow(bn, (size_t)sh->l * (size_t)sh->hv, &v_el);
        ok = ok && qkv_attn_take(&off, q_el, sizeof(float), &l->q);
        if (ok && !s->want_present_k)
            ok = qkv_attn_take(&off, k_el, sizeof(float), &l->k);
        if (ok && !s->want_present_v)
            ok = qkv_attn_take(&off, v_el, sizeof(float), &l->v);
    }
    if (ok && sh->mask == MASK_LENGTHS)
        ok = qkv_attn_take(&off, (size_t)sh->b, sizeof(int64_t), &l->lengths);
    l->core = off;
    return ok;
}

/* ---- arguments ------------------------------------------------------------- */

/* K or V: the present output (when wanted), a biased copy, or the input view;
 * fills segments of a. */
static void kv_source(qkv_kernel_io *io, const mha_shape *sh, float *present, float *copy,
                      const qkv_attn_view *raw, const float *bias, size_t d, size_t past_in,
                      qkv_attn_view *seg_views[2], size_t *n_seg)
{
    size_t b = (size_t)sh->b, n = (size_t)sh->n, p = (size_t)sh->p, l = (size_t)sh->l;
    size_t t = p + l;
    const float *past = sh->has_past ? io->inputs[past_in].data : NULL;
    if (present) {
        if (past)
            copy_heads(present, t, 0, &(qkv_attn_view){past, n * p * d, p * d, d}, NULL, b, n, p,
                       d);
        copy_heads(present, t, p, raw, bias, b, n, l, d);
        *seg_views[0] = (qkv_attn_view){present, n * t * d, t * d, d};
        *n_seg = 1;
        return;
    }
    size_t k = 0;
    if (past && p > 0)
        *seg_views[k++] = (qkv_attn_view){past, n * p * d, p * d, d};
    if (copy) {
        copy_heads(copy, l, 0, raw, bias, b, n, l, d);
        *seg_views[k++] = (qkv_attn_view){copy, n * l * d, l * d, d};
    } else {
        *seg_views[k++] = *raw;
    }
    *n_seg = k;
}

/* Keys and values: present outputs, biased copies or the inputs, cut into
 * the same segments (past, then new) on both sides. */
static void kv_args(const mha_attrs *s, qkv_kernel_io *io, const mha_shape *sh, const mha_layout *l,
                    const qkv_attn_view *k, const qkv_attn_view *v, const float *bias,
                    qkv_attn_args *a)
{
    unsigned char *scratch = io->scratch;
    size_t n = (size_t)sh->n, h = (size_t)sh->h, hv = (size_t)sh->hv, p = (size_t)sh->p;
    size_t len = (size_t)sh->l, t = (size_t)sh->t;
    float *pk =
        s->want_present_k && io->n_outputs > OUT_PRESENT_K ? io->outputs[OUT_PRESENT_K].data : NULL;
    float *pv =
        s->want_present_v && io->n_outputs > OUT_PRESENT_V ? io->outputs[OUT_PRESENT_V].data : NULL;
    qkv_attn_view kseg[2], vseg[2];
    size_t nk, nv;
    kv_source(io, sh, pk, l->k != SIZE_MAX ? (float *)(scratch + l->k) : NULL, k,
              bias ? bias + n * h : NULL, h, IN_PAST_K, (qkv_attn_view *[]){&kseg[0], &kseg[1]},
              &nk);
    kv_source(io, sh, pv, l->v != SIZE_MAX ? (float *)(scratch + l->v) : NULL, v,
              bias ? bias + 2 * n * h : NULL, hv, IN_PAST_V,
              (qkv_attn_view *[]){&vseg[0], &vseg[1]}, &nv);
    /* one side may be a single present buffer while the other is past + new:
     * cut the single one into the same two segments */
    if (nk != nv) {
        qkv_attn_view *one = nk == 1 ? kseg : vseg;
        size_t d = nk == 1 ? h : hv;
        one[1] = one[0];
        one[1].data += p * d;
        nk = nv = 2;
    }
    a->n_segments = nk;
    for (size_t i = 0; i < nk; i++) {
        a->seg[i].k = kseg[i];
        a->seg[i].v = vseg[i];
        a->seg[i].len = nk == 1 ? t : i == 0 ? p : len;
    }
}

/* What hides or shifts scores: the key padding mask (lengths or 0/1 keep
 * flags), the additive bias, causality; and the optional scores output. */
static void mask_args(const mha_attrs *s, qkv_kernel_io *io, const mha_shape *sh,
                      const mha_layout *l, qkv_attn_args *a)
{
    size_t b = (size_t)sh->b, n = (size_t)sh->n, sq = (size_t)sh->s, t = (size_t)sh->t;
    a->drop_value = s->mask_filter_value;
    const qkv_tensor *m = &io->inputs[IN_PADDING];
    if (sh->mask == MASK_LENGTHS) {
        int64_t *lens = (int64_t *)((unsigned char *)io->scratch + l->lengths);
        for (size_t i = 0; i < b; i++)
            lens[i] = ((const int32_t *)m->data)[i];
        a->kv_valid = lens;
    } else if (sh->mask == MASK_2D || sh->mask == MASK_3D) {
        a->keep = m->data;
        a->keep_type = QKV_ATTN_KEEP_I32;
        a->keep_sb = sh->mask == MASK_2D ? t : sq * t;
        a->keep_si = sh->mask == MASK_2D ? 0 : t;
        a->keep_sj = 1;
    }
    if (qkv_present(io, IN_ATTN_BIAS)) {
        const qkv_tensor *ab = &io->inputs[IN_ATTN_BIAS];
        a->bias = ab->data;
        a->bias_sh = ab->dims[1] == 1 ? 0 : sq * t;
        a->bias_sb = ab->dims[0] == 1 ? 0 : (size_t)ab->dims[1] * sq * t;
        a->bias_si = t;
        a->bias_sj = 1;
    }
    if (s->causal && sq > 1) {
        a->causal = true;
        a->causal_offset = (int64_t)sh->p;
    }
    if (s->want_qk && io->n_outputs > OUT_QK && io->outputs[OUT_QK].data) {
        a->qk_out = io->outputs[OUT_QK].data;
        a->qk_sb = n * sq * t;
        a->qk_sh = sq * t;
        a->qk_si = t;
        a->qk_stage = QKV_ATTN_QK_BIASED;
    }
}

static void build_args(const mha_attrs *s, qkv_kernel_io *io, const mha_shape *sh,
                       const mha_layout *l, qkv_attn_args *a)
{
    qkv_attn_args_init(a);
    size_t b = (size_t)sh->b, n = (size_t)sh->n, sq = (size_t)sh->s, h = (size_t)sh->h;
    size_t hv = (size_t)sh->hv;
    a->batch = b;
    a->q_heads = a->kv_heads = n;
    a->q_len = sq;
    a->head_size = h;
    a->v_head_size = hv;
    a->scale = s->scale != 0 ? s->scale : (float)(1.0 / sqrt((double)(h ? h : 1)));

    qkv_attn_view q, k, v;
    raw_views(io, sh, &q, &k, &v);
    const float *bias = qkv_present(io, IN_BIAS) ? io->inputs[IN_BIAS].data : NULL;
    if (bias) {
        float *qc = (float *)((unsigned char *)io->scratch + l->q);
        copy_heads(qc, sq, 0, &q, bias, b, n, sq, h);
        q = (qkv_attn_view){qc, n * sq * h, sq * h, h};
    }
    a->q = q;
    kv_args(s, io, sh, l, &k, &v, bias, a);
    a->out = io->outputs[OUT_Y].data;
    a->out_sb = sq * n * hv;
    a->out_sh = hv;
    a->out_ss = n * hv;
    mask_args(s, io, sh, l, a);
}

/* ---- prepare / compute ---------------------------------------------------------- */

static qkv_status mha_prepare(void *state, qkv_kernel_io *io)
{
    const mha_attrs *s = state;
    mha_plan plan;
    const mha_shape *sh = &plan.sh;
    qkv_status st = mha_shape_of(s, io, &plan.sh);
    if (st != QKV_OK)
        return st;
    if (sh->unknown)
        return KERR(io, QKV_ERR_SHAPE, "the ranks of 'query' and 'key' are not known");
    if (!mha_layout_of(s, io, sh, &plan.l))
        return KERR(io, QKV_ERR_SHAPE, "attention scratch size overflows");
    /* stand-in args: the widest row strides any segment may have */
    qkv_attn_args a;
    qkv_attn_args_init(&a);
    a.batch = (size_t)sh->b, a.q_heads = a.kv_heads = (size_t)sh->n, a.q_len = (size_t)sh->s;
    a.head_size = (size_t)sh->h, a.v_head_size = (size_t)sh->hv;
    qkv_attn_view q, k, v;
    raw_views(io, sh, &q, &k, &v);
    a.q = q;
    a.n_segments = 1;
    a.seg[0] = (qkv_attn_segment){k, v, (size_t)sh->t};
    if ((st = qkv_attn_prepare_slots(io, &a, plan.l.core)) != QKV_OK)
        return st;
    mha_plan *kept;
    if ((st = io->host->plan_alloc(io, sizeof *kept, (void **)&kept)) != QKV_OK)
        return st;
    *kept = plan;
    io->plan_state = kept;
    return QKV_OK;
}

static qkv_status mha_compute(const void *state, qkv_kernel_io *io)
{
    const mha_plan *plan = io->plan_state;
    if (!plan)
        return KERR(io, QKV_ERR_INTERNAL, "no per-plan state: prepare did not run");
    qkv_attn_args a;
    build_args(state, io, &plan->sh, &plan->l, &a);
    return qkv_attn_run_slots(io, &a, plan->l.core);
}

static const qkv_kernel kernels[] = {
    {
        QKV_KERNEL_V1,
        .domain = "com.microsoft",
        .op_type = "MultiHeadAttention",
        .since_version = 1,
        .min_inputs = 1,
        .max_inputs = 10,
        .min_outputs = 1,
        .max_outputs = 4,
        /* inputs 7.. (past_value, past_sequence_length, cache_indirection)
         * share the last entry: any type, checked in mha_shape_of */
        .n_input_types = 8,
        .input_types = {QKV_T(FLOAT), QKV_T(FLOAT), QKV_T(FLOAT), QKV_T(FLOAT), QKV_T(INT32),
                        QKV_T(FLOAT), QKV_T(FLOAT), 0},
        .init = mha_init,
        .infer = mha_infer,
        .prepare = mha_prepare,
        .compute = mha_compute,
        .destroy = mha_destroy,
    },
};

/* The MultiHeadAttention descriptor; *count set to their number. */
const qkv_kernel *qkv_ops_mha(size_t *count)
{
    *count = sizeof kernels / sizeof kernels[0];
    return kernels;
}
