/*
 * ms_attention.c - com.microsoft.Attention (since 1), the self-attention op
 * ONNX Runtime's transformer optimizer writes for BERT- and GPT-2-style
 * layers, on the fused kernel of attention_core.h:
 *
 *   qkv = input (B, S, Di) @ weights (Di, Dq + Dk + Dv) + bias
 *   Q, K, V = the three column blocks of qkv, each split into num_heads heads
 *   output (B, S, Dv) = softmax(scale * Q K^T + attention_bias + mask) V
 *
 * Attributes: num_heads (required), qkv_hidden_sizes (Dq, Dk, Dv; default
 * three equal thirds of the weights' columns; Dq must equal Dk), scale (0:
 * 1/sqrt(Dq / num_heads)), unidirectional (causal with offset past_length
 * when S > 1), mask_filter_value (default -10000).
 *
 * mask_index (int32), as ORT's CPU kernel reads it; a masked key gets
 * mask_filter_value added (finite: a row whose keys are all masked then
 * behaves as unmasked, as in ORT):
 *   (B)           key lengths: keys j >= len[b] masked (right padding)
 *   (2B)          end positions then start positions: keys outside
 *                 [start[b], end[b]) masked (left and right padding)
 *   (B, T)        1 keeps a key, <= 0 masks it; (B, 1) and (1, 1) when T != 1
 *                 are ORT's broadcast dummy masks and change nothing
 *   (B, S, T)     per query, as (B, T)
 *   (B, 1, M, M)  Megatron's mask, M >= T: query i of batch b reads row
 *                 past_length + i; 0 masks, anything else keeps (ORT's CUDA
 *                 reading; its CPU kernel refuses this form); not with
 *                 unidirectional
 * past (2, B, N, P, H) holds the cached keys then values; present (2, B, N,
 * P + S, H) is past with this call's keys and values appended (past and
 * present need Dk == Dv). attention_bias (B or 1, N or 1, S, T) is added to
 * the scaled scores.
 *
 * Deviations: float32 only (as ORT's CPU kernel). Causal positions are
 * excluded outright (ORT adds float's lowest value: the same weights).
 * Refused with QKV_ERR_UNSUPPORTED: do_rotary, past_present_share_buffer and
 * the past_sequence_length input.
 *
 * The attention half (shapes, mask, past/present, the fused kernel) is
 * shared with com.microsoft.QAttention through ms_attention.h.
 *
 * Memory: the weights are packed once per session for qkv's GEMM when they
 * are a constant (prepack); the projection lands in a (B * S, Dq + Dk + Dv)
 * scratch buffer that the attention kernel reads in place through strided
 * views (no per-head copies), the mask becomes one byte per (batch, query
 * row or 1, key) in scratch, and the attention itself needs only its O(tile)
 * per-thread slots.
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "attention_core.h"
#include "blas.h"
#include "gemm_prepack.h"
#include "kernel_util.h"
#include "ms_attention.h"
#include "vecmath.h"

enum { OUT_Y, OUT_PRESENT };

/* ---- shared attributes ---------------------------------------------------------- */

qkv_status qkv_msa_attrs_init(const qkv_host_api *host, const qkv_node_ctx *node,
                              const qkv_msa_inputs *in, qkv_msa_attrs *a)
{
    int64_t causal, rotary, share;
    const int64_t *sizes;
    size_t n_sizes;
    qkv_status st;
    memset(a, 0, sizeof *a);
    a->in = in;
    if ((st = host->attr_int(node, "num_heads", 0, &a->heads)) != QKV_OK ||
        (st = host->attr_float(node, "scale", 0, &a->scale)) != QKV_OK ||
        (st = host->attr_float(node, "mask_filter_value", -10000.0f, &a->mask_filter_value)) !=
            QKV_OK ||
        (st = host->attr_int(node, "unidirectional", 0, &causal)) != QKV_OK ||
        (st = host->attr_int(node, "do_rotary", 0, &rotary)) != QKV_OK ||
        (st = host->attr_int(node, "past_present_share_buffer", 0, &share)) != QKV_OK ||
        (st = host->attr_ints(node, "qkv_hidden_sizes", &sizes, &n_sizes)) != QKV_OK)
        return st;
    if (a->heads <= 0)
        return NERR(host, node, QKV_ERR_INVALID_MODEL,
                    "attribute num_heads=%lld must be given and positive", (long long)a->heads);
    if (isnan(a->scale) || isnan(a->mask_filter_value))
        return NERR(host, node, QKV_ERR_INVALID_MODEL,
                    "attributes scale and mask_filter_value must not be NaN");
    if (rotary != 0 || share != 0)
        return NERR(host, node, QKV_ERR_UNSUPPORTED,
                    "attributes do_rotary and past_present_share_buffer are not supported");
    if (n_sizes != 0) {
        if (n_sizes != 3)
            return NERR(host, node, QKV_ERR_INVALID_MODEL,
                        "attribute qkv_hidden_sizes has %zu values, expected 3", n_sizes);
        for (int k = 0; k < 3; k++)
            if (sizes[k] <= 0 || sizes[k] % a->heads != 0)
                return NERR(host, node, QKV_ERR_INVALID_MODEL,
                            "qkv_hidden_sizes[%d]=%lld is not a positive multiple of "
                            "num_heads=%lld",
                            k, (long long)sizes[k], (long long)a->heads);
        if (sizes[0] != sizes[1])
            return NERR(host, node, QKV_ERR_INVALID_MODEL,
                        "qkv_hidden_sizes: Q's %lld and K's %lld differ", (long long)sizes[0],
                        (long long)sizes[1]);
        memcpy(a->sizes, sizes, sizeof a->sizes);
    }
    a->causal = causal != 0;
    a->want_present = host->node_output_present(node, OUT_PRESENT) != 0;
    return QKV_OK;
}

/* ---- shapes ---------------------------------------------------------------- */

static bool has(const qkv_kernel_io *io, int k) { return k >= 0 && qkv_present(io, (size_t)k); }

static int64_t dim_of(const qkv_tensor *t, int32_t k) { return t->rank > k ? t->dims[k] : -1; }

/* a and b are both known and differ */
static bool differ(int64_t a, int64_t b) { return a >= 0 && b >= 0 && a != b; }

/* Checks that input `in` (when its rank is known) has rank `rank` and the
 * known dims of want (-1: any). */
static qkv_status expect_dims(const qkv_msa_attrs *a, qkv_kernel_io *io, int in, int32_t rank,
                              const int64_t *want)
{
    const qkv_tensor *t = &io->inputs[in];
    char buf[96];
    if (t->rank < 0)
        return QKV_OK;
    if (t->rank != rank)
        return KERR(io, QKV_ERR_SHAPE, "input %d '%s' has shape %s, expected rank %d", in,
                    a->in->names[in], qkv_dims_str(t, buf, sizeof buf), rank);
    for (int32_t j = 0; j < rank; j++)
        if (differ(t->dims[j], want[j]))
            return KERR(io, QKV_ERR_SHAPE, "input %d '%s' has shape %s: dim %d should be %lld", in,
                        a->in->names[in], qkv_dims_str(t, buf, sizeof buf), j, (long long)want[j]);
    return QKV_OK;
}

/* Q, K, V hidden sizes from the attribute or the weights' (or bias') width. */
static qkv_status hidden_sizes(const qkv_msa_attrs *a, qkv_kernel_io *io, qkv_msa_shape *sh)
{
    int64_t width = dim_of(&io->inputs[a->in->w], 1);
    if (width < 0 && has(io, a->in->bias))
        width = dim_of(&io->inputs[a->in->bias], 0);
    if (a->sizes[0] > 0) {
        sh->dq = a->sizes[0];
        sh->dv = a->sizes[2];
    } else if (width >= 0) {
        if (width % 3 != 0)
            return KERR(io, QKV_ERR_SHAPE,
                        "input %d '%s' has %lld columns, not three equal Q, "
                        "K, V blocks (give qkv_hidden_sizes)",
                        a->in->w, a->in->names[a->in->w], (long long)width);
        sh->dq = sh->dv = width / 3;
        if (sh->dq % a->heads != 0)
            return KERR(io, QKV_ERR_SHAPE, "hidden size %lld is not divisible by num_heads=%lld",
                        (long long)sh->dq, (long long)a->heads);
    } else {
        sh->dq = sh->dv = -1;
    }
    sh->h = sh->dq >= 0 ? sh->dq / a->heads : -1;
    sh->hv = sh->dv >= 0 ? sh->dv / a->heads : -1;
    return QKV_OK;
}

/* Classifies mask_index as ORT's CheckMask does. */
static qkv_status mask_form(const qkv_msa_attrs *a, qkv_kernel_io *io, qkv_msa_shape *sh)
{
    int in = a->in->mask;
    sh->mask = QKV_MSA_MASK_NONE;
    sh->mask_m = -1;
    if (!has(io, in) || io->inputs[in].rank < 0)
        return QKV_OK;
    const qkv_tensor *m = &io->inputs[in];
    char buf[96];
    int64_t d0 = dim_of(m, 0), d1 = dim_of(m, 1);
    if (m->rank == 1 && (d0 == sh->b || d0 < 0 || sh->b < 0)) {
        sh->mask = QKV_MSA_MASK_LENGTHS;
        return QKV_OK;
    }
    if (m->rank == 1 && d0 == 2 * sh->b) {
        sh->mask = QKV_MSA_MASK_END_START;
        return QKV_OK;
    }
    if (m->rank == 2 && !differ(d0, sh->b) && !differ(d1, sh->t)) {
        sh->mask = QKV_MSA_MASK_2D;
        return QKV_OK;
    }
    if (m->rank == 2 && d1 == 1 && (d0 == 1 || !differ(d0, sh->b)))
        return QKV_OK; /* broadcast dummy: no effect */
    if (m->rank == 3 && !differ(d0, sh->b) && !differ(d1, sh->s) && !differ(dim_of(m, 2), sh->t)) {
        sh->mask = QKV_MSA_MASK_3D;
        return QKV_OK;
    }
    if (m->rank == 4) {
        int64_t mm = dim_of(m, 2);
        if (differ(d0, sh->b) || differ(d1, 1) || differ(mm, dim_of(m, 3)) ||
            (mm >= 0 && sh->t >= 0 && mm < sh->t))
            return KERR(io, QKV_ERR_SHAPE,
                        "input %d 'mask_index' has shape %s, expected (batch "
                        "%lld, 1, M, M) with M >= total sequence length %lld",
                        in, qkv_dims_str(m, buf, sizeof buf), (long long)sh->b, (long long)sh->t);
        if (a->causal)
            return KERR(io, QKV_ERR_INVALID_MODEL,
                        "a 4-D 'mask_index' cannot be combined with "
                        "unidirectional=1");
        sh->mask = QKV_MSA_MASK_4D;
        sh->mask_m = mm;
        return QKV_OK;
    }
    return KERR(io, QKV_ERR_SHAPE,
                "input %d 'mask_index' has shape %s, expected (batch %lld), "
                "(2 * batch), (batch, total sequence length %lld), (batch, sequence length "
                "%lld, total sequence length) or (batch, 1, M, M)",
                in, qkv_dims_str(m, buf, sizeof buf), (long long)sh->b, (long long)sh->t,
                (long long)sh->s);
}

/* attention_bias: (B or 1, N or 1, S, T) */
static qkv_status check_attn_bias(const qkv_msa_attrs *a, qkv_kernel_io *io,
                                  const qkv_msa_shape *sh)
{
    int in = a->in->attn_bias;
    if (!has(io, in))
        return QKV_OK;
    const qkv_tensor *ab = &io->inputs[in];
    char buf[96];
    int64_t d0 = dim_of(ab, 0), d1 = dim_of(ab, 1), n = a->heads;
    if (ab->rank >= 0 &&
        (ab->rank != 4 || (d0 != 1 && differ(d0, sh->b)) || (d1 != 1 && differ(d1, n)) ||
         differ(dim_of(ab, 2), sh->s) || differ(dim_of(ab, 3), sh->t)))
        return KERR(io, QKV_ERR_SHAPE,
                    "input %d 'attention_bias' has shape %s, expected (batch "
                    "%lld or 1, num_heads %lld or 1, sequence length %lld, total sequence "
                    "length %lld)",
                    in, qkv_dims_str(ab, buf, sizeof buf), (long long)sh->b, (long long)n,
                    (long long)sh->s, (long long)sh->t);
    return QKV_OK;
}

qkv_status qkv_msa_shape_of(const qkv_msa_attrs *a, qkv_kernel_io *io, qkv_msa_shape *sh)
{
    const qkv_msa_inputs *in = a->in;
    const qkv_tensor *x = &io->inputs[in->x];
    qkv_status st;
    memset(sh, 0, sizeof *sh);
    if (has(io, in->past_len))
        return KERR(io, QKV_ERR_UNSUPPORTED,
                    "input %d 'past_sequence_length' (a past/present "
                    "buffer shared across calls) is not supported",
                    in->past_len);
    if ((st = expect_dims(a, io, in->x, 3, (int64_t[]){-1, -1, -1})))
        return st;
    sh->b = dim_of(x, 0);
    sh->s = dim_of(x, 1);
    sh->di = dim_of(x, 2);
    if ((st = hidden_sizes(a, io, sh)))
        return st;
    int64_t width = sh->dq >= 0 && sh->dv >= 0 ? 2 * sh->dq + sh->dv : -1;
    if ((st = expect_dims(a, io, in->w, 2, (int64_t[]){sh->di, width})))
        return st;
    if (has(io, in->bias) && (st = expect_dims(a, io, in->bias, 1, &width)))
        return st;
    bool past = has(io, in->past);
    if ((past || a->want_present) && differ(sh->h, sh->hv))
        return KERR(io, QKV_ERR_SHAPE,
                    "past and present need equal K and V hidden sizes, have "
                    "%lld and %lld",
                    (long long)sh->dq, (long long)sh->dv);
    sh->p = 0;
    if (past) {
        if ((st = expect_dims(a, io, in->past, 5, (int64_t[]){2, sh->b, a->heads, -1, sh->h})))
            return st;
        sh->p = dim_of(&io->inputs[in->past], 3);
    }
    sh->t = sh->p >= 0 && sh->s >= 0 ? sh->p + sh->s : -1;
    if ((st = mask_form(a, io, sh)))
        return st;
    return check_attn_bias(a, io, sh);
}

void qkv_msa_infer_outputs(const qkv_msa_attrs *a, qkv_kernel_io *io, const qkv_msa_shape *sh)
{
    qkv_set_shape(&io->outputs[OUT_Y], QKV_DTYPE_FLOAT, 3, (int64_t[]){sh->b, sh->s, sh->dv});
    if (io->n_outputs > OUT_PRESENT)
        qkv_set_shape(&io->outputs[OUT_PRESENT], QKV_DTYPE_FLOAT, 5,
                      (int64_t[]){2, sh->b, a->heads, sh->t, sh->h});
}

/* ---- scratch ---------------------------------------------------------------- */

typedef struct msa_layout {
    size_t qkv;  /* (B * S, Dq + Dk + Dv) floats, at 0 */
    size_t keep; /* (B, S or 1, T) bytes; SIZE_MAX without a mask */
    size_t core; /* the attention kernel's slots */
    size_t total;
} msa_layout;

static size_t align64(size_t bytes) { return (bytes + 63) & ~(size_t)63; }

/* Appends count * elem bytes at *off; false on overflow. */
static bool take(size_t *off, size_t count, size_t elem, size_t *at)
{
    size_t bytes;
    if (__builtin_mul_overflow(count, elem, &bytes) || bytes > SIZE_MAX - 64)
        return false;
    *at = *off;
    return !__builtin_add_overflow(*off, align64(bytes), off);
}

/* Query rows the keep buffer has per batch: S for per-query masks, else 1. */
static size_t keep_rows(const qkv_msa_shape *sh)
{
    return sh->mask == QKV_MSA_MASK_3D || sh->mask == QKV_MSA_MASK_4D ? (size_t)sh->s : 1;
}

/* The dims of a planned shape are known and the input sizes were checked by
 * the host; the products made here are checked. */
static bool msa_layout_of(const qkv_msa_shape *sh, size_t core_bytes, msa_layout *l)
{
    size_t off = 0, rows, keep;
    size_t width = (size_t)(2 * sh->dq + sh->dv);
    l->keep = SIZE_MAX;
    bool ok = !__builtin_mul_overflow((size_t)sh->b, (size_t)sh->s, &rows) &&
              take(&off, rows, width * sizeof(float), &l->qkv);
    if (ok && sh->mask != QKV_MSA_MASK_NONE)
        ok = !__builtin_mul_overflow((size_t)sh->b * keep_rows(sh), (size_t)sh->t, &keep) &&
             take(&off, keep, 1, &l->keep);
    l->core = off;
    return ok && !__builtin_add_overflow(off, core_bytes, &l->total);
}

/* ---- the attention arguments --------------------------------------------------- */

/* Everything but the mask; qkv (the projection) and past may be NULL while
 * planning. */
static void build_args(const qkv_msa_attrs *at, qkv_kernel_io *io, const qkv_msa_shape *sh,
                       const float *qkv, qkv_attn_args *a)
{
    size_t b = (size_t)sh->b, n = (size_t)at->heads, sq = (size_t)sh->s, p = (size_t)sh->p;
    size_t h = (size_t)sh->h, hv = (size_t)sh->hv, dq = (size_t)sh->dq, t = (size_t)sh->t;
    size_t width = 2 * dq + (size_t)sh->dv;
    qkv_attn_args_init(a);
    a->batch = b;
    a->q_heads = a->kv_heads = n;
    a->q_len = sq;
    a->head_size = h;
    a->v_head_size = hv;
    a->scale = at->scale != 0 ? at->scale : (float)(1.0 / sqrt((double)(h ? h : 1)));
    /* Q, K, V: column blocks of the (B, S, width) projection, read in place */
    a->q = (qkv_attn_view){qkv, sq * width, h, width};
    qkv_attn_view k = {qkv ? qkv + dq : NULL, sq * width, h, width};
    qkv_attn_view v = {qkv ? qkv + 2 * dq : NULL, sq * width, hv, width};
    size_t seg = 0;
    if (p > 0) { /* past (2, B, N, P, H): keys, then values */
        const float *past = io->inputs[at->in->past].data;
        size_t half = b * n * p * h;
        a->seg[seg++] = (qkv_attn_segment){
            {past, n * p * h, p * h, h}, {past ? past + half : NULL, n * p * h, p * h, h}, p};
    }
    a->seg[seg++] = (qkv_attn_segment){k, v, sq};
    a->n_segments = seg;
    a->out = io->outputs[OUT_Y].data;
    a->out_sb = sq * n * hv;
    a->out_sh = hv;
    a->out_ss = n * hv;
    a->drop_value = at->mask_filter_value;
    if (has(io, at->in->attn_bias)) {
        const qkv_tensor *ab = &io->inputs[at->in->attn_bias];
        a->bias = ab->data;
        a->bias_sh = ab->dims[1] == 1 ? 0 : sq * t;
        a->bias_sb = ab->dims[0] == 1 ? 0 : (size_t)ab->dims[1] * sq * t;
        a->bias_si = t;
        a->bias_sj = 1;
    }
    if (at->causal && sq > 1) {
        a->causal = true;
        a->causal_offset = (int64_t)p;
    }
}

/* The mask as one keep byte per (batch, query row or 1, key). */
static void fill_keep(const qkv_msa_shape *sh, const qkv_tensor *m, uint8_t *keep)
{
    size_t b_n = (size_t)sh->b, sq = (size_t)sh->s, t = (size_t)sh->t, p = (size_t)sh->p;
    const int32_t *d = m->data;
    for (size_t b = 0; b < b_n; b++) {
        switch (sh->mask) {
        case QKV_MSA_MASK_LENGTHS:
        case QKV_MSA_MASK_END_START: {
            /* out-of-range positions are clamped (ORT does not check them) */
            int64_t end = d[b], start = sh->mask == QKV_MSA_MASK_END_START ? d[b_n + b] : 0;
            uint8_t *row = keep + b * t;
            for (size_t j = 0; j < t; j++)
                row[j] = (int64_t)j >= start && (int64_t)j < end;
            break;
        }
        case QKV_MSA_MASK_2D:
            for (size_t j = 0; j < t; j++)
                keep[b * t + j] = d[b * t + j] > 0;
            break;
        case QKV_MSA_MASK_3D:
            for (size_t e = 0; e < sq * t; e++)
                keep[b * sq * t + e] = d[b * sq * t + e] > 0;
            break;
        case QKV_MSA_MASK_4D: {
            size_t mm = (size_t)sh->mask_m;
            for (size_t i = 0; i < sq; i++)
                for (size_t j = 0; j < t; j++)
                    keep[(b * sq + i) * t + j] = d[(b * mm + p + i) * mm + j] != 0;
            break;
        }
        case QKV_MSA_MASK_NONE:
            break;
        }
    }
}

/* present (2, B, N, T, H): past's keys then the new ones, likewise values. */
static void write_present(const qkv_msa_shape *sh, size_t n, const qkv_attn_args *a,
                          const float *past, float *present)
{
    size_t b_n = (size_t)sh->b, p = (size_t)sh->p, sq = (size_t)sh->s, h = (size_t)sh->h;
    size_t t = p + sq, half = b_n * n * t * h;
    const qkv_attn_segment *cur = &a->seg[a->n_segments - 1];
    for (int kv = 0; kv < 2; kv++) {
        const qkv_attn_view *src = kv == 0 ? &cur->k : &cur->v;
        for (size_t b = 0; b < b_n; b++)
            for (size_t hh = 0; hh < n; hh++) {
                float *dst = present + kv * half + (b * n + hh) * t * h;
                if (p > 0)
                    memcpy(dst, past + kv * b_n * n * p * h + (b * n + hh) * p * h,
                           p * h * sizeof *dst);
                for (size_t i = 0; i < sq; i++)
                    memcpy(dst + (p + i) * h, src->data + b * src->sb + hh * src->sh + i * src->ss,
                           h * sizeof *dst);
            }
    }
}

qkv_status qkv_msa_scratch_bytes(const qkv_msa_attrs *at, qkv_kernel_io *io,
                                 const qkv_msa_shape *sh, size_t *bytes)
{
    qkv_attn_args a;
    build_args(at, io, sh, NULL, &a);
    qkv_status st = qkv_attn_check(io, &a);
    if (st != QKV_OK)
        return st;
    size_t core;
    msa_layout l;
    if (!qkv_attn_scratch_bytes(&a, io->host->thread_count(io->host_ctx), &core) ||
        !msa_layout_of(sh, core, &l))
        return KERR(io, QKV_ERR_SHAPE, "attention scratch size overflows");
    *bytes = l.total;
    return QKV_OK;
}

float *qkv_msa_projection(qkv_kernel_io *io) { return io->scratch; /* the layout's first buffer */ }

qkv_status qkv_msa_attend(const qkv_msa_attrs *at, qkv_kernel_io *io, const qkv_msa_shape *sh)
{
    msa_layout l;
    if (!msa_layout_of(sh, 0, &l) || l.core > io->scratch_bytes)
        return KERR(io, QKV_ERR_INTERNAL, "attention scratch of %zu bytes is too small",
                    io->scratch_bytes);
    /* NULL when there is nothing to hold (an empty batch or sequence) */
    unsigned char *scratch = io->scratch_bytes ? io->scratch : NULL;
    qkv_attn_args a;
    build_args(at, io, sh, scratch ? (const float *)(scratch + l.qkv) : NULL, &a);
    if (sh->mask != QKV_MSA_MASK_NONE && scratch) {
        uint8_t *keep = scratch + l.keep;
        fill_keep(sh, &io->inputs[at->in->mask], keep);
        size_t rows = keep_rows(sh), t = (size_t)sh->t;
        a.keep = keep;
        a.keep_type = QKV_ATTN_KEEP_U8;
        a.keep_sb = rows * t;
        a.keep_si = rows > 1 ? t : 0;
        a.keep_sj = 1;
    }
    if (at->want_present && io->n_outputs > OUT_PRESENT && io->outputs[OUT_PRESENT].data)
        write_present(sh, (size_t)at->heads, &a,
                      has(io, at->in->past) ? io->inputs[at->in->past].data : NULL,
                      io->outputs[OUT_PRESENT].data);
    size_t need = qkv_attn_slot_bytes(&a);
    if (need > 0 && io->scratch_bytes - l.core < need)
        return KERR(io, QKV_ERR_INTERNAL, "attention scratch of %zu bytes is too small",
                    io->scratch_bytes);
    return qkv_attn_run(io, &a, scratch ? scratch + l.core : NULL, io->scratch_bytes - l.core);
}

/* ---- com.microsoft.Attention: the float projection ------------------------------- */

enum { IN_X, IN_W, IN_BIAS, IN_MASK, IN_PAST, IN_ATTN_BIAS, IN_PAST_LEN };

static const char *const attention_names[] = {
    "input", "weights", "bias", "mask_index", "past", "attention_bias", "past_sequence_length"};

static const qkv_msa_inputs attention_inputs = {
    .x = IN_X,
    .w = IN_W,
    .bias = IN_BIAS,
    .mask = IN_MASK,
    .past = IN_PAST,
    .attn_bias = IN_ATTN_BIAS,
    .past_len = IN_PAST_LEN,
    .names = attention_names,
};

typedef struct msa_state {
    qkv_msa_attrs attrs;
    qkv_sgemm_packed_b w; /* the weights packed by prepack; data NULL: read as they come */
} msa_state;

static qkv_status msa_init(const qkv_kernel *kernel, const qkv_host_api *host,
                           const qkv_node_ctx *node, void **state)
{
    (void)kernel;
    msa_state *s = calloc(1, sizeof *s);
    if (!s)
        return NERR(host, node, QKV_ERR_OUT_OF_MEMORY, "kernel state");
    qkv_status st = qkv_msa_attrs_init(host, node, &attention_inputs, &s->attrs);
    if (st != QKV_OK) {
        free(s);
        return st;
    }
    *state = s;
    return QKV_OK;
}

static qkv_status msa_prepack(void **state, const qkv_host_api *host, const qkv_node_ctx *node)
{
    msa_state *s = *state; /* init made it */
    return qkv_gemm_prepack_b(host, node, IN_W, false, &s->w);
}

static void msa_destroy(void *state)
{
    msa_state *s = state;
    if (s)
        qkv_gemm_packed_free(&s->w);
    free(s);
}

static qkv_status msa_infer(void *state, qkv_kernel_io *io)
{
    const msa_state *s = state;
    qkv_msa_shape sh;
    qkv_status st = qkv_msa_shape_of(&s->attrs, io, &sh);
    if (st == QKV_OK)
        qkv_msa_infer_outputs(&s->attrs, io, &sh);
    return st;
}

typedef struct bias_job {
    float *y;          /* (rows, n) */
    const float *bias; /* (n) */
    size_t n;
} bias_job;

static void bias_rows(void *arg, size_t begin, size_t end)
{
    const bias_job *j = arg;
    for (size_t i = begin; i < end; i++)
        qkv_vm_epilogue_f32(j->y + i * j->n, j->bias, NULL, j->n, QKV_ACT_NONE);
}

/* sgemm post step: the bias on a block of the projection just computed */
static void bias_block(const void *arg, size_t batch, float *c, size_t ldc, size_t row0,
                       size_t col0, size_t rows, size_t cols)
{
    const bias_job *j = arg;
    (void)batch;
    (void)row0;
    for (size_t i = 0; i < rows; i++)
        qkv_vm_epilogue_f32(c + i * ldc, j->bias + col0, NULL, cols, QKV_ACT_NONE);
}

static void projection_gemm(const qkv_msa_shape *sh, const float *x, const float *w, float *qkv,
                            qkv_blas_gemm *g)
{
    memset(g, 0, sizeof *g);
    g->dtype = QKV_DTYPE_FLOAT;
    g->m = (size_t)sh->b * (size_t)sh->s;
    g->n = (size_t)(2 * sh->dq + sh->dv);
    g->k = (size_t)sh->di;
    g->alpha = 1;
    g->a = x;
    g->lda = g->k;
    g->b = w;
    g->ldb = g->n;
    g->c = qkv;
    g->ldc = g->n;
}

/* qkv = input @ weights + bias */
static qkv_status project(const msa_state *s, qkv_kernel_io *io, const qkv_msa_shape *sh,
                          float *qkv)
{
    qkv_blas_gemm g;
    projection_gemm(sh, io->inputs[IN_X].data, io->inputs[IN_W].data, qkv, &g);
    bias_job j = {qkv, qkv_present(io, IN_BIAS) ? io->inputs[IN_BIAS].data : NULL, g.n};
    if (s->w.data) {
        qkv_sgemm_post post = {.fn = bias_block, .arg = &j};
        qkv_gemm_run_packed_post(io, &g, &s->w, j.bias ? &post : NULL);
        return QKV_OK;
    }
    qkv_status st = qkv_blas_gemm_run(io, &g);
    if (st == QKV_OK && j.bias)
        qkv_run_range(io, g.m, g.m * g.n * sizeof(float), bias_rows, &j);
    return st;
}

static qkv_status msa_prepare(void *state, qkv_kernel_io *io)
{
    const msa_state *s = state;
    qkv_msa_shape sh;
    qkv_status st = qkv_msa_shape_of(&s->attrs, io, &sh);
    if (st != QKV_OK)
        return st;
    qkv_blas_gemm g;
    projection_gemm(&sh, NULL, NULL, NULL, &g);
    if (s->w.data && (s->w.k != g.k || s->w.n != g.n))
        return KERR(io, QKV_ERR_INTERNAL,
                    "input 1 'weights' was packed as (%zu, %zu) but the "
                    "plan multiplies by (%zu, %zu)",
                    s->w.k, s->w.n, g.k, g.n);
    if (!qkv_blas_gemm_fits(&g))
        return KERR(io, QKV_ERR_UNSUPPORTED,
                    "projection too large: m=%zu n=%zu k=%zu, at most "
                    "%zu each",
                    g.m, g.n, g.k, QKV_BLAS_MAX_DIM);
    return qkv_msa_scratch_bytes(&s->attrs, io, &sh, &io->scratch_bytes);
}

static qkv_status msa_compute(const void *state, qkv_kernel_io *io)
{
    const msa_state *s = state;
    qkv_msa_shape sh;
    qkv_status st = qkv_msa_shape_of(&s->attrs, io, &sh);
    if (st != QKV_OK)
        return st;
    if (sh.b > 0 && sh.s > 0 && (st = project(s, io, &sh, qkv_msa_projection(io))) != QKV_OK)
        return st;
    return qkv_msa_attend(&s->attrs, io, &sh);
}

static const qkv_kernel kernels[] = {
    {
        QKV_KERNEL_V1,
        .domain = "com.microsoft",
        .op_type = "Attention",
        .since_version = 1,
        .min_inputs = 2,
        .max_inputs = 7,
        .min_outputs = 1,
        .max_outputs = 2,
        .n_input_types = 7,
        .input_types = {QKV_T(FLOAT), QKV_T(FLOAT), QKV_T(FLOAT), QKV_T(INT32), QKV_T(FLOAT),
                        QKV_T(FLOAT), QKV_T(INT32)},
        .init = msa_init,
        .prepack = msa_prepack,
        .infer = msa_infer,
        .prepare = msa_prepare,
        .compute = msa_compute,
        .destroy = msa_destroy,
    },
};

/* The com.microsoft.Attention descriptor; *count set to 1. */
const qkv_kernel *qkv_ops_ms_attention(size_t *count)
{
    *count = sizeof kernels / sizeof kernels[0];
    return kernels;
}
