/* The fused attention kernel (ops/attention_core.c) against a naive
 * reference that materialises the scores and the softmax in double. */
#include <criterion/criterion.h>
#include <float.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "attention_core.h"
#include "error.h"
#include "kernel_harness.h"
#include "kernel_host.h"
#include "threadpool.h"

/* Masks a case can carry. */
enum {
    M_NONE,
    M_FLOAT_FULL,    /* float (B, Hq, Sq, T), some -inf */
    M_FLOAT_BCAST,   /* float (1, 1, Sq, T) */
    M_FLOAT_KEYS,    /* float (B, 1, Sq, 1): one value for every key (bias_sj 0) */
    M_BOOL,          /* bool (B, 1, Sq, T) */
    M_INT32_2D,      /* int32 (B, T), as MHA's key_padding_mask */
    M_FLOAT_PAD,     /* float (B, 1, 1, T): 0, and -inf on batch b's last 2 b keys (a key
                    * padding mask broadcast over heads and queries, as Conformer's) */
    M_FLOAT_LIMITED, /* float (B, Hq, Sq, key_limit): no column past key_limit exists */
    M_FLOAT_TRAIL,   /* float, random finite values, trail_fill on batch b's last trail[b] keys
                      * (see trail_rows, hole) */
    M_BOOL_TRAIL,    /* bool (B, 1, 1, T): False on batch b's last trail[b] keys */
};

typedef struct core_case {
    size_t b, hq, hkv, sq, d, dv;
    size_t n_seg, seg_len[2];
    int rank3; /* Q, the last segment and the output are (B, S, H*D) */
    float scale, softcap;
    int mask;
    size_t key_limit; /* 0: none */
    int kv_valid;     /* per-batch key counts T - 3 * b (clamped at 0) */
    float drop;       /* 0: -inf */
    int causal;
    int64_t offset;
    int per_batch_offset; /* offsets[b] = offset - b */
    int dead_row;         /* M_FLOAT_FULL: query row dead_row - 1 of (b 0, h 0) all -inf */
    int qk;               /* score output wanted */
    qkv_attn_qk_stage stage;
    size_t threads;
    uint32_t seed;
    /* M_FLOAT_TRAIL / M_BOOL_TRAIL: */
    size_t trail[4];  /* masked keys at the end of batch b's key axis (clamped at T) */
    int trail_rows;   /* M_FLOAT_TRAIL: (B, Hq, Sq, T), row i of head h masks (i + h) % 4
                       * more keys; 0: (B, 1, 1, T), broadcast over heads and rows */
    int hole;         /* keys [T / 4, T / 2) masked too (not trailing) */
    float trail_fill; /* M_FLOAT_TRAIL: the masked keys' value; 0: -inf */
    int poison;       /* K and V are NaN at batch b's last trail[b] keys */
} core_case;

typedef struct core_data {
    float *q, *k[2], *v[2], *bias, *out, *qk;
    unsigned char *keep8;
    int32_t *keep32;
    int64_t kv_valid[8], offsets[8];
    size_t t;
    qkv_attn_args a;
} core_data;

static float *rnd(size_t n, uint32_t seed)
{
    float *p = malloc((n + 1) * sizeof *p);
    kh_fill_random(p, n, seed);
    return p;
}

static qkv_attn_view view4(const float *p, size_t h, size_t s, size_t d)
{
    return (qkv_attn_view){p, h * s * d, s * d, d};
}

static qkv_attn_view view3(const float *p, size_t h, size_t s, size_t d)
{
    return (qkv_attn_view){p, s * h * d, d, h * d};
}

/* NaN in every K and V element of batch b's last trail[b] keys (across the
 * segments): keys no row can see, whose rows the kernel must not read. */
static void poison_trailing_keys(const core_case *c, core_data *x)
{
    for (size_t b = 0; b < c->b; b++) {
        size_t j0 = c->trail[b] < x->t ? x->t - c->trail[b] : 0, seg0 = 0;
        for (size_t s = 0; s < c->n_seg; seg0 += c->seg_len[s], s++) {
            const qkv_attn_segment *g = &x->a.seg[s];
            for (size_t js = j0 > seg0 ? j0 - seg0 : 0; js < g->len; js++)
                for (size_t h = 0; h < c->hkv; h++) {
                    for (size_t d = 0; d < c->d; d++)
                        x->k[s][b * g->k.sb + h * g->k.sh + js * g->k.ss + d] = NAN;
                    for (size_t d = 0; d < c->dv; d++)
                        x->v[s][b * g->v.sb + h * g->v.sh + js * g->v.ss + d] = NAN;
                }
        }
    }
}

/* Builds data and args for c. */
static void setup(const core_case *c, core_data *x)
{
    memset(x, 0, sizeof *x);
    qkv_attn_args *a = &x->a;
    qkv_attn_args_init(a);
    x->t = 0;
    for (size_t s = 0; s < c->n_seg; s++)
        x->t += c->seg_len[s];
    size_t t = x->t;
    a->batch = c->b, a->q_heads = c->hq, a->kv_heads = c->hkv, a->q_len = c->sq;
    a->head_size = c->d, a->v_head_size = c->dv;
    a->scale = c->scale;
    a->softcap = c->softcap;
    x->q = rnd(c->b * c->hq * c->sq * c->d, c->seed);
    a->q = c->rank3 ? view3(x->q, c->hq, c->sq, c->d) : view4(x->q, c->hq, c->sq, c->d);
    a->n_segments = c->n_seg;
    for (size_t s = 0; s < c->n_seg; s++) {
        size_t len = c->seg_len[s];
        x->k[s] = rnd(c->b * c->hkv * len * c->d, c->seed + 10 + (uint32_t)s);
        x->v[s] = rnd(c->b * c->hkv * len * c->dv, c->seed + 20 + (uint32_t)s);
        bool r3 = c->rank3 && s == c->n_seg - 1;
        a->seg[s].k = r3 ? view3(x->k[s], c->hkv, len, c->d) : view4(x->k[s], c->hkv, len, c->d);
        a->seg[s].v = r3 ? view3(x->v[s], c->hkv, len, c->dv) : view4(x->v[s], c->hkv, len, c->dv);
        a->seg[s].len = len;
    }
    x->out = calloc(c->b * c->hq * c->sq * c->dv + 1, sizeof *x->out);
    a->out = x->out;
    if (c->rank3)
        a->out_sb = c->sq * c->hq * c->dv, a->out_sh = c->dv, a->out_ss = c->hq * c->dv;
    else
        a->out_sb = c->hq * c->sq * c->dv, a->out_sh = c->sq * c->dv, a->out_ss = c->dv;

    size_t full = c->b * c->hq * c->sq * t;
    switch (c->mask) {
    case M_FLOAT_FULL:
        x->bias = rnd(full, c->seed + 30);
        for (size_t i = 0; i < full; i++)
            if (i % 7 == 3)
                x->bias[i] = -INFINITY;
        a->bias = x->bias;
        a->bias_sb = c->hq * c->sq * t, a->bias_sh = c->sq * t, a->bias_si = t, a->bias_sj = 1;
        if (c->dead_row)
            for (size_t j = 0; j < t; j++)
                x->bias[(size_t)(c->dead_row - 1) * t + j] = -INFINITY;
        break;
    case M_FLOAT_PAD:
        x->bias = calloc(c->b * t + 1, sizeof *x->bias);
        for (size_t b = 0; b < c->b; b++)
            for (size_t j = t - (2 * b < t ? 2 * b : t); j < t; j++)
                x->bias[b * t + j] = -INFINITY;
        a->bias = x->bias;
        a->bias_sb = t, a->bias_sj = 1;
        break;
    case M_FLOAT_LIMITED: {
        size_t lim = c->key_limit, n = c->b * c->hq * c->sq * lim;
        x->bias = malloc((n ? n : 1) * sizeof *x->bias); /* exactly: ASan sees a read past it */
        kh_fill_random(x->bias, n, c->seed + 33);
        a->bias = x->bias;
        a->bias_sb = c->hq * c->sq * lim, a->bias_sh = c->sq * lim, a->bias_si = lim;
        a->bias_sj = 1;
        break;
    }
    case M_FLOAT_TRAIL: {
        float fill = c->trail_fill != 0 ? c->trail_fill : -INFINITY;
        x->bias = rnd(full, c->seed + 34);
        for (size_t b = 0; b < c->b; b++)
            for (size_t h = 0; h < c->hq; h++)
                for (size_t i = 0; i < c->sq; i++) {
                    float *row = x->bias + ((b * c->hq + h) * c->sq + i) * t;
                    size_t n = c->trail[b] + (c->trail_rows ? (i + h) % 4 : 0);
                    for (size_t j = n < t ? t - n : 0; j < t; j++)
                        row[j] = fill;
                    for (size_t j = c->hole ? t / 4 : 0; j < (c->hole ? t / 2 : 0); j++)
                        row[j] = fill;
                }
        a->bias = x->bias;
        a->bias_sb = c->hq * c->sq * t, a->bias_sj = 1;
        if (c->trail_rows)
            a->bias_sh = c->sq * t, a->bias_si = t;
        break;
    }
    case M_BOOL_TRAIL:
        x->keep8 = malloc(c->b * t + 1);
        for (size_t b = 0; b < c->b; b++)
            for (size_t j = 0; j < t; j++)
                x->keep8[b * t + j] = j + c->trail[b] < t && !(c->hole && j >= t / 4 && j < t / 2);
        a->keep = x->keep8;
        a->keep_type = QKV_ATTN_KEEP_U8;
        a->keep_sb = t, a->keep_sj = 1;
        break;
    case M_FLOAT_BCAST:
        x->bias = rnd(c->sq * t, c->seed + 31);
        a->bias = x->bias;
        a->bias_si = t, a->bias_sj = 1;
        break;
    case M_FLOAT_KEYS:
        x->bias = rnd(c->b * c->sq, c->seed + 32);
        a->bias = x->bias;
        a->bias_sb = c->sq, a->bias_si = 1;
        break;
    case M_BOOL:
        x->keep8 = malloc(c->b * c->sq * t + 1);
        for (size_t i = 0; i < c->b * c->sq * t; i++)
            x->keep8[i] = (i * 2654435761u >> 7) % 5 != 0;
        a->keep = x->keep8;
        a->keep_type = QKV_ATTN_KEEP_U8;
        a->keep_sb = c->sq * t, a->keep_si = t, a->keep_sj = 1;
        break;
    case M_INT32_2D:
        x->keep32 = malloc((c->b * t + 1) * sizeof *x->keep32);
        for (size_t i = 0; i < c->b * t; i++)
            x->keep32[i] = i % 4 != 1;
        a->keep = x->keep32;
        a->keep_type = QKV_ATTN_KEEP_I32;
        a->keep_sb = t, a->keep_sj = 1;
        break;
    default:
        break;
    }
    if (c->key_limit)
        a->key_limit = c->key_limit;
    if (c->kv_valid) {
        for (size_t b = 0; b < c->b; b++)
            x->kv_valid[b] = (int64_t)t - 3 * (int64_t)b;
        a->kv_valid = x->kv_valid;
    }
    if (c->drop != 0)
        a->drop_value = c->drop;
    a->causal = c->causal;
    a->causal_offset = c->offset;
    if (c->per_batch_offset) {
        for (size_t b = 0; b < c->b; b++)
            x->offsets[b] = c->offset - (int64_t)b;
        a->causal_offsets = x->offsets;
    }
    if (c->poison)
        poison_trailing_keys(c, x);
    if (c->qk) {
        x->qk = calloc(full + 1, sizeof *x->qk);
        a->qk_out = x->qk;
        a->qk_sb = c->hq * c->sq * t, a->qk_sh = c->sq * t, a->qk_si = t;
        a->qk_stage = c->stage;
    }
}

static void teardown(core_data *x)
{
    free(x->q);
    for (int s = 0; s < 2; s++) {
        free(x->k[s]);
        free(x->v[s]);
    }
    free(x->bias);
    free(x->keep8);
    free(x->keep32);
    free(x->out);
    free(x->qk);
}

/* Runs the kernel with `threads` threads and as many scratch slots. */
static void run_core(const qkv_attn_args *a, size_t threads, size_t slots)
{
    qkv_ir_node node = {.name = "core", .op_type = "Attention", .domain = ""};
    qkv_threadpool *pool = qkv_threadpool_create(threads);
    qkv_host_ctx h = {.node = &node, .version = 23, .err = NULL, .pool = pool};
    qkv_kernel_io io;
    qkv_kernel_io_init(&io, &h, NULL, 0, NULL, 0);
    cr_assert_eq(qkv_attn_check(&io, a), QKV_OK);
    size_t bytes = slots * qkv_attn_slot_bytes(a); /* exactly `slots` workers' worth */
    void *scratch = aligned_alloc(64, bytes + 64);
    cr_assert_eq(qkv_attn_run(&io, a, scratch, bytes), QKV_OK);
    free(scratch);
    qkv_threadpool_destroy(pool);
}

/* Element (b, h, i, d) of the output (through the args' strides). */
static float out_at(const qkv_attn_args *a, size_t b, size_t h, size_t i, size_t d)
{
    return a->out[b * a->out_sb + h * a->out_sh + i * a->out_ss + d];
}

static const float *seg_row(const qkv_attn_view *v, size_t b, size_t h, size_t s)
{
    return v->data + b * v->sb + h * v->sh + s * v->ss;
}

/*
 * The reference: scores, exclusions and softmax in double, row by row, and
 * the comparison. Tolerance: the kernel's float GEMMs and expf against
 * double: scores of |q.k| <= D * scale with float rounding give ~1e-6
 * relative error; 2e-5 absolute + 1e-4 relative leaves margin for D = 64
 * and T = 1000 sums, and is far below any semantic error (a wrong mask or
 * offset moves outputs by > 1e-2).
 */
static void check_core(const core_case *c, const core_data *x)
{
    const qkv_attn_args *a = &x->a;
    size_t t = x->t, g = c->hq / c->hkv;
    double *sc = malloc(t * sizeof *sc), *raw = malloc(t * sizeof *raw);
    double *cap = malloc(t * sizeof *cap), *acc = malloc((c->dv + 1) * sizeof *acc);
    bool *ex = malloc(t * sizeof *ex);
    double drop = c->drop != 0 ? c->drop : -INFINITY;
    for (size_t b = 0; b < c->b; b++)
        for (size_t h = 0; h < c->hq; h++)
            for (size_t i = 0; i < c->sq; i++) {
                const float *q = a->q.data + b * a->q.sb + h * a->q.sh + i * a->q.ss;
                double mx = -INFINITY;
                for (size_t j = 0; j < t; j++) {
                    size_t s = j < c->seg_len[0] || c->n_seg == 1 ? 0 : 1;
                    size_t js = s == 0 ? j : j - c->seg_len[0];
                    const float *k = seg_row(&a->seg[s].k, b, h / g, js);
                    double dot = 0;
                    for (size_t d = 0; d < c->d; d++)
                        dot += (double)q[d] * k[d];
                    raw[j] = c->scale * dot;
                    cap[j] = c->softcap != 0 ? c->softcap * tanh(raw[j] / c->softcap) : raw[j];
                    double v = cap[j];
                    bool e = false;
                    if (c->key_limit && j >= c->key_limit)
                        e = true;
                    int64_t off = c->per_batch_offset ? c->offset - (int64_t)b : c->offset;
                    if (c->causal && (int64_t)j > (int64_t)i + off)
                        e = true;
                    if (a->bias && !e) {
                        double bv = a->bias[b * a->bias_sb + h * a->bias_sh + i * a->bias_si +
                                            j * a->bias_sj];
                        if (bv == -INFINITY)
                            e = true;
                        else
                            v += bv;
                    }
                    bool kept = true;
                    if (x->keep8)
                        kept = x->keep8[b * a->keep_sb + i * a->keep_si + j] != 0;
                    if (x->keep32)
                        kept = x->keep32[b * a->keep_sb + j] != 0;
                    if (c->kv_valid && (int64_t)j >= x->kv_valid[b])
                        kept = false;
                    if (!kept) {
                        if (drop == -INFINITY)
                            e = true;
                        else
                            v += drop;
                    }
                    ex[j] = e;
                    sc[j] = e ? -INFINITY : v;
                    if (!e && v > mx)
                        mx = v;
                }
                double sum = 0;
                for (size_t j = 0; j < t; j++)
                    sum += ex[j] ? 0 : exp(sc[j] - mx);
                for (size_t d = 0; d < c->dv; d++)
                    acc[d] = 0;
                for (size_t j = 0; j < t; j++) {
                    if (ex[j])
                        continue;
                    size_t s = j < c->seg_len[0] || c->n_seg == 1 ? 0 : 1;
                    size_t js = s == 0 ? j : j - c->seg_len[0];
                    const float *v = seg_row(&a->seg[s].v, b, h / g, js);
                    double p = exp(sc[j] - mx) / sum;
                    for (size_t d = 0; d < c->dv; d++)
                        acc[d] += p * v[d];
                }
                for (size_t d = 0; d < c->dv; d++) {
                    double want = sum > 0 ? acc[d] : 0;
                    float got = out_at(a, b, h, i, d);
                    cr_assert(fabs(got - want) <= 2e-5 + 1e-4 * fabs(want),
                              "seed %u: out[%zu,%zu,%zu,%zu] = %.8g, expected %.8g", c->seed, b, h,
                              i, d, (double)got, want);
                }
                if (!c->qk)
                    continue;
                const float *qk = x->qk + b * a->qk_sb + h * a->qk_sh + i * a->qk_si;
                for (size_t j = 0; j < t; j++) {
                    double want = c->stage == QKV_ATTN_QK_SCALED       ? raw[j]
                                  : c->stage == QKV_ATTN_QK_SOFTCAPPED ? cap[j]
                                  : c->stage == QKV_ATTN_QK_BIASED     ? sc[j]
                                  : ex[j] || sum == 0                  ? 0
                                                                       : exp(sc[j] - mx) / sum;
                    if (isinf(want))
                        cr_assert(qk[j] == want, "qk[%zu,%zu,%zu,%zu] = %g, expected %g", b, h, i,
                                  j, (double)qk[j], want);
                    else
                        cr_assert(fabs(qk[j] - want) <= 2e-5 + 1e-4 * fabs(want),
                                  "stage %d: qk[%zu,%zu,%zu,%zu] = %.8g, expected %.8g",
                                  (int)c->stage, b, h, i, j, (double)qk[j], want);
                }
            }
    free(sc);
    free(raw);
    free(cap);
    free(acc);
    free(ex);
}

/* Runs c on the default path (the AVX2 micro-kernels where the CPU has them)
 * and, when that is not already the GEMM path, once more with force_gemm. */
static void run_case(const core_case *c)
{
    for (int gemm = 0; gemm < 2; gemm++) {
        core_data x;
        setup(c, &x);
        x.a.force_gemm = gemm;
        if (gemm && !qkv_attn_uses_microkernel(&(qkv_attn_args){.force_gemm = false})) {
            teardown(&x);
            break; /* the default run already was the GEMM path */
        }
        run_core(&x.a, c->threads ? c->threads : 1, c->threads ? c->threads : 1);
        check_core(c, &x);
        teardown(&x);
    }
}

Test(attention_core, matches_reference_on_small_4d_shapes)
{
    core_case c = {.b = 2,
                   .hq = 3,
                   .hkv = 3,
                   .sq = 4,
                   .d = 8,
                   .dv = 8,
                   .n_seg = 1,
                   .seg_len = {6},
                   .scale = 0.35f,
                   .seed = 1};
    run_case(&c);
}

Test(attention_core, matches_reference_with_q_len_not_kv_len_and_different_value_head_size)
{
    core_case c = {.b = 2,
                   .hq = 2,
                   .hkv = 2,
                   .sq = 5,
                   .d = 16,
                   .dv = 24,
                   .n_seg = 1,
                   .seg_len = {70},
                   .scale = 0.25f,
                   .seed = 2};
    run_case(&c);
}

Test(attention_core, matches_reference_for_bshd_layouts)
{
    core_case c = {.b = 2,
                   .hq = 4,
                   .hkv = 4,
                   .sq = 9,
                   .d = 8,
                   .dv = 12,
                   .n_seg = 1,
                   .seg_len = {11},
                   .rank3 = 1,
                   .scale = 0.3f,
                   .seed = 3};
    run_case(&c);
}

Test(attention_core, maps_query_heads_to_kv_heads_by_groups)
{
    core_case c = {.b = 2,
                   .hq = 9,
                   .hkv = 3,
                   .sq = 4,
                   .d = 8,
                   .dv = 8,
                   .n_seg = 1,
                   .seg_len = {6},
                   .rank3 = 1,
                   .scale = 0.35f,
                   .seed = 4};
    run_case(&c);
}

Test(attention_core, attends_over_two_key_segments)
{
    core_case c = {.b = 2,
                   .hq = 4,
                   .hkv = 2,
                   .sq = 5,
                   .d = 8,
                   .dv = 10,
                   .n_seg = 2,
                   .seg_len = {12, 5},
                   .rank3 = 1,
                   .scale = 0.35f,
                   .seed = 5};
    run_case(&c);
}

Test(attention_core, applies_causal_offset_by_past_length)
{
    core_case c = {.b = 2,
                   .hq = 2,
                   .hkv = 1,
                   .sq = 70,
                   .d = 16,
                   .dv = 16,
                   .n_seg = 2,
                   .seg_len = {40, 70},
                   .scale = 0.25f,
                   .causal = 1,
                   .offset = 40,
                   .seed = 6};
    run_case(&c);
}

Test(attention_core, causal_without_offset_is_top_left_and_negative_offsets_give_zero_rows)
{
    core_case c = {.b = 2,
                   .hq = 2,
                   .hkv = 2,
                   .sq = 6,
                   .d = 8,
                   .dv = 8,
                   .n_seg = 1,
                   .seg_len = {9},
                   .scale = 0.35f,
                   .causal = 1,
                   .offset = 0,
                   .seed = 7};
    run_case(&c);
    core_case n = c;
    n.offset = -2;
    n.per_batch_offset = 1; /* offsets -2, -3: the first rows see nothing */
    n.seed = 8;
    core_data x;
    setup(&n, &x);
    run_core(&x.a, 1, 1);
    check_core(&n, &x);
    for (size_t d = 0; d < n.dv; d++)
        cr_assert_eq(out_at(&x.a, 1, 0, 2, d), 0.0f, "row 2 of batch 1 sees no key");
    teardown(&x);
}

Test(attention_core, adds_float_masks_with_broadcast_and_minus_inf)
{
    core_case c = {.b = 2,
                   .hq = 3,
                   .hkv = 3,
                   .sq = 5,
                   .d = 8,
                   .dv = 8,
                   .n_seg = 1,
                   .seg_len = {70},
                   .scale = 0.35f,
                   .mask = M_FLOAT_FULL,
                   .seed = 9};
    run_case(&c);
    c.mask = M_FLOAT_BCAST;
    c.seed = 10;
    run_case(&c);
    c.mask = M_FLOAT_KEYS;
    c.seed = 11;
    run_case(&c);
}

/* A float mask with contiguous keys is added by the score product (the
 * micro-kernels' epilogue, or one pass after the GEMM) and the tile's rows
 * take the one-call online softmax: window-attention shapes (49 x 49, head
 * 32, a relative position bias per head), Conformer's (a key padding mask
 * broadcast over the queries, head 36 = 32 + 4: the one-vector last panel),
 * rows that the mask excludes whole, a mask only key_limit wide, causal
 * frontiers, two key segments and row counts that are not multiples of the
 * micro-kernels' 6 or 8 rows. Each on the micro-kernels and on the GEMM
 * path (run_case), against the double reference. */
Test(attention_core, adds_contiguous_float_masks_in_the_score_product)
{
    core_case win = {.b = 3,
                     .hq = 3,
                     .hkv = 3,
                     .sq = 49,
                     .d = 32,
                     .dv = 32,
                     .n_seg = 1,
                     .seg_len = {49},
                     .scale = 0.18f,
                     .mask = M_FLOAT_FULL,
                     .dead_row = 7,
                     .seed = 70};
    run_case(&win);
    win.mask = M_FLOAT_BCAST; /* (1, 1, Sq, T): every batch and head the same rows */
    win.threads = 2;
    win.seed = 71;
    run_case(&win);

    core_case pad = {.b = 4,
                     .hq = 1,
                     .hkv = 1,
                     .sq = 37,
                     .d = 36,
                     .dv = 36,
                     .n_seg = 1,
                     .seg_len = {150}, /* two key tiles: the second rescales O */
                     .rank3 = 1,
                     .scale = 0.17f,
                     .mask = M_FLOAT_PAD,
                     .seed = 72};
    run_case(&pad);
    pad.dv = 17; /* the last panel alone, and at once 16 + 1 columns */
    pad.threads = 2;
    pad.seed = 73;
    run_case(&pad);

    core_case lim = {.b = 2,
                     .hq = 4,
                     .hkv = 2,
                     .sq = 13,
                     .d = 24,
                     .dv = 33,
                     .n_seg = 2,
                     .seg_len = {20, 140},
                     .scale = 0.2f,
                     .mask = M_FLOAT_LIMITED,
                     .key_limit = 131,
                     .causal = 1,
                     .offset = 118,
                     .seed = 74};
    run_case(&lim);
}

/* A key padding mask: batch b's last trail[b] keys are -inf in every row
 * (200 of 300: the last tile and most of the second are skipped; all 300: a
 * zero output), so the kernel skips them. Their K and V rows are NaN: a
 * read of them would reach the output, the reference never reads them. On
 * one row of the mask broadcast over heads and queries (bert's), and on
 * (B, Hq, Sq, T) masks whose rows mask different numbers of keys (the block
 * keeps the most any row sees); with two query blocks, two key segments,
 * causal frontiers, grouped heads and two threads. */
Test(attention_core, skips_the_trailing_keys_a_float_mask_removes_from_every_row)
{
    core_case c = {.b = 4,
                   .hq = 3,
                   .hkv = 3,
                   .sq = 37,
                   .d = 36,
                   .dv = 20,
                   .n_seg = 1,
                   .seg_len = {300},
                   .scale = 0.17f,
                   .mask = M_FLOAT_TRAIL,
                   .trail = {0, 37, 200, 300},
                   .poison = 1,
                   .seed = 80};
    run_case(&c);
    c.trail_rows = 1;
    c.seed = 81;
    run_case(&c);

    core_case d = {.b = 3,
                   .hq = 4,
                   .hkv = 2,
                   .sq = 150,
                   .d = 24,
                   .dv = 33,
                   .n_seg = 2,
                   .seg_len = {100, 160},
                   .rank3 = 1,
                   .scale = 0.2f,
                   .mask = M_FLOAT_TRAIL,
                   .trail = {170, 5, 260},
                   .poison = 1,
                   .threads = 2,
                   .seed = 82};
    run_case(&d);
    d.trail_rows = 1;
    d.causal = 1;
    d.offset = 100;
    d.seed = 83;
    run_case(&d);
}

/* Keys [T/4, T/2) masked as well as a trailing run: the visible keys after
 * the hole must still be attended to, and a row with no trailing run (batch
 * 1) keeps every tile. */
Test(attention_core, keeps_the_keys_after_a_masked_run_in_the_middle)
{
    core_case c = {.b = 4,
                   .hq = 2,
                   .hkv = 2,
                   .sq = 20,
                   .d = 16,
                   .dv = 16,
                   .n_seg = 1,
                   .seg_len = {280},
                   .scale = 0.25f,
                   .mask = M_FLOAT_TRAIL,
                   .trail = {9, 0, 140, 3},
                   .hole = 1,
                   .poison = 1,
                   .seed = 84};
    run_case(&c);
    c.trail_rows = 1;
    c.seed = 85;
    run_case(&c);
    c.mask = M_BOOL_TRAIL;
    c.seed = 86;
    run_case(&c);
}

/* A large negative but finite mask value is not an exclusion: a batch whose
 * keys are all -100 (or -FLT_MAX: every score then rounds to -FLT_MAX and
 * the weights are uniform) attends to them as an unmasked row does, not a
 * zero row, and a finite trailing run is not cut (the reference reads it). */
Test(attention_core, does_not_skip_keys_of_a_finite_large_negative_mask)
{
    static const float fills[] = {-100.0f, -FLT_MAX};
    for (int f = 0; f < 2; f++) {
        core_case c = {.b = 3,
                       .hq = 2,
                       .hkv = 1,
                       .sq = 9,
                       .d = 16,
                       .dv = 8,
                       .n_seg = 1,
                       .seg_len = {200},
                       .scale = 0.25f,
                       .mask = M_FLOAT_TRAIL,
                       .trail = {0, 150, 200},
                       .trail_fill = fills[f],
                       .seed = 87 + (uint32_t)f};
        run_case(&c);
        core_data x;
        setup(&c, &x);
        run_core(&x.a, 1, 1);
        float mag = 0; /* batch 2's rows: every key at the fill value */
        for (size_t h = 0; h < c.hq; h++)
            for (size_t d = 0; d < c.dv; d++)
                mag = fmaxf(mag, fabsf(out_at(&x.a, 2, h, 0, d)));
        cr_assert(mag > 1e-3f, "fill %g: batch 2 gave a zero row", (double)fills[f]);
        teardown(&x);
    }
}

/* A bool mask with hard drops removes its trailing False keys the same way
 * (their K and V rows are NaN, batch 2 sees nothing); with a finite
 * drop_value the dropped keys still count and are all read. */
Test(attention_core, skips_the_trailing_keys_a_hard_bool_mask_drops)
{
    core_case c = {.b = 3,
                   .hq = 2,
                   .hkv = 2,
                   .sq = 12,
                   .d = 16,
                   .dv = 16,
                   .n_seg = 2,
                   .seg_len = {70, 130},
                   .scale = 0.25f,
                   .mask = M_BOOL_TRAIL,
                   .trail = {3, 128, 200},
                   .poison = 1,
                   .seed = 88};
    run_case(&c);
    c.causal = 1;
    c.offset = 188;
    c.seed = 89;
    run_case(&c);
    c.poison = 0;
    c.causal = 0;
    c.drop = -100.0f; /* s - 100 rounds to ~8e-6: within the reference's tolerance */
    c.seed = 90;
    run_case(&c);
}

/* With a score output the masked keys' columns are still written (-inf
 * after the mask, 0 as probabilities), so nothing is skipped. */
Test(attention_core, score_output_keeps_the_columns_of_trailing_masked_keys)
{
    for (int st = 0; st < 2; st++) {
        core_case c = {.b = 3,
                       .hq = 2,
                       .hkv = 2,
                       .sq = 10,
                       .d = 16,
                       .dv = 16,
                       .n_seg = 1,
                       .seg_len = {150},
                       .scale = 0.25f,
                       .mask = M_FLOAT_TRAIL,
                       .trail = {20, 150, 0},
                       .trail_rows = st,
                       .qk = 1,
                       .stage = st ? QKV_ATTN_QK_SOFTMAX : QKV_ATTN_QK_BIASED,
                       .seed = 91 + (uint32_t)st};
        run_case(&c);
    }
}

Test(attention_core, excludes_keys_of_a_bool_mask_with_causal_and_key_limit)
{
    core_case c = {.b = 2,
                   .hq = 2,
                   .hkv = 2,
                   .sq = 7,
                   .d = 8,
                   .dv = 8,
                   .n_seg = 2,
                   .seg_len = {3, 7},
                   .scale = 0.35f,
                   .mask = M_BOOL,
                   .causal = 1,
                   .offset = 3,
                   .key_limit = 8,
                   .seed = 12};
    run_case(&c);
}

Test(attention_core, drops_padded_keys_hard_or_with_a_finite_value)
{
    core_case c = {.b = 3,
                   .hq = 2,
                   .hkv = 2,
                   .sq = 4,
                   .d = 8,
                   .dv = 8,
                   .n_seg = 1,
                   .seg_len = {75},
                   .scale = 0.35f,
                   .kv_valid = 1,
                   .seed = 13};
    run_case(&c);
    c.drop = -10000.0f;
    c.mask = M_INT32_2D;
    c.seed = 14;
    run_case(&c);
}

Test(attention_core, finite_drop_of_every_key_acts_as_no_mask)
{
    /* MHA semantics: the same finite value on every key cancels in softmax */
    core_case c = {.b = 1,
                   .hq = 1,
                   .hkv = 1,
                   .sq = 3,
                   .d = 8,
                   .dv = 8,
                   .n_seg = 1,
                   .seg_len = {5},
                   .scale = 0.35f,
                   .drop = -10000.0f,
                   .seed = 15};
    core_data x, y;
    setup(&c, &x);
    setup(&c, &y);
    int32_t none[5] = {0, 0, 0, 0, 0};
    x.a.keep = none;
    x.a.keep_type = QKV_ATTN_KEEP_I32;
    x.a.keep_sj = 1;
    run_core(&x.a, 1, 1);
    run_core(&y.a, 1, 1);
    /* s - 10000 is rounded to float's ulp at 10000 (~1e-3): each weight
     * exp(s - m) moves by up to ~5e-4 relative, outputs (|v| < 1) by < 2e-3 */
    for (size_t i = 0; i < 3 * 8; i++)
        cr_assert(fabsf(x.out[i] - y.out[i]) <= 2e-3f, "%zu: %g vs %g", i, (double)x.out[i],
                  (double)y.out[i]);
    teardown(&x);
    teardown(&y);
}

Test(attention_core, applies_softcap_before_the_mask)
{
    core_case c = {.b = 1,
                   .hq = 2,
                   .hkv = 2,
                   .sq = 4,
                   .d = 8,
                   .dv = 8,
                   .n_seg = 1,
                   .seg_len = {6},
                   .scale = 1.0f,
                   .softcap = 0.5f,
                   .mask = M_FLOAT_FULL,
                   .seed = 16};
    run_case(&c);
}

Test(attention_core, writes_every_score_output_stage)
{
    for (int st = 0; st <= 3; st++) {
        core_case c = {.b = 2,
                       .hq = 4,
                       .hkv = 2,
                       .sq = 66,
                       .d = 8,
                       .dv = 8,
                       .n_seg = 2,
                       .seg_len = {12, 66},
                       .scale = 0.35f,
                       .softcap = 2.0f,
                       .mask = M_FLOAT_BCAST,
                       .causal = 1,
                       .offset = 12,
                       .qk = 1,
                       .stage = (qkv_attn_qk_stage)st,
                       .seed = 17 + (uint32_t)st};
        run_case(&c);
    }
}

Test(attention_core, softmax_stage_is_zero_on_fully_excluded_rows)
{
    core_case c = {.b = 1,
                   .hq = 1,
                   .hkv = 1,
                   .sq = 4,
                   .d = 8,
                   .dv = 8,
                   .n_seg = 1,
                   .seg_len = {4},
                   .scale = 0.35f,
                   .causal = 1,
                   .offset = -2,
                   .qk = 1,
                   .stage = QKV_ATTN_QK_SOFTMAX,
                   .seed = 21};
    core_data x;
    setup(&c, &x);
    run_core(&x.a, 1, 1);
    check_core(&c, &x);
    for (size_t j = 0; j < 4; j++)
        cr_assert_eq(x.qk[j], 0.0f);     /* row 0 sees nothing */
    cr_assert_eq(x.qk[2 * 4 + 0], 1.0f); /* row 2 sees only key 0 */
    teardown(&x);
}

Test(attention_core, long_sequences_cross_tile_boundaries)
{
    core_case c = {.b = 1,
                   .hq = 4,
                   .hkv = 2,
                   .sq = 130,
                   .d = 32,
                   .dv = 48,
                   .n_seg = 2,
                   .seg_len = {870, 130},
                   .rank3 = 1,
                   .scale = 0.18f,
                   .causal = 1,
                   .offset = 870,
                   .mask = M_FLOAT_BCAST,
                   .threads = 2,
                   .seed = 22};
    run_case(&c);
    core_case d = {.b = 1,
                   .hq = 1,
                   .hkv = 1,
                   .sq = 1000,
                   .d = 16,
                   .dv = 16,
                   .n_seg = 1,
                   .seg_len = {1000},
                   .scale = 0.25f,
                   .causal = 1,
                   .offset = 0,
                   .seed = 23};
    run_case(&d);
}

Test(attention_core, large_scores_do_not_overflow_the_running_sum)
{
    /* scores up to ~200: exp would overflow without max subtraction, and the
     * max grows from tile to tile (rescaling the accumulator) */
    core_case c = {.b = 1,
                   .hq = 1,
                   .hkv = 1,
                   .sq = 3,
                   .d = 16,
                   .dv = 8,
                   .n_seg = 1,
                   .seg_len = {300},
                   .scale = 12.0f,
                   .seed = 24};
    core_data x;
    setup(&c, &x);
    for (size_t j = 0; j < 300; j++) /* key j's scores grow with j */
        for (size_t d = 0; d < 16; d++)
            x.k[0][j * 16 + d] = (float)j / 300.0f * (x.q[d] >= 0 ? 1.0f : -1.0f);
    run_core(&x.a, 1, 1);
    check_core(&c, &x);
    teardown(&x);
}

Test(attention_core, one_and_two_threads_give_identical_results)
{
    core_case c = {.b = 2,
                   .hq = 4,
                   .hkv = 2,
                   .sq = 150,
                   .d = 16,
                   .dv = 16,
                   .n_seg = 2,
                   .seg_len = {100, 150},
                   .scale = 0.25f,
                   .causal = 1,
                   .offset = 100,
                   .mask = M_FLOAT_BCAST,
                   .seed = 25};
    core_data x, y;
    setup(&c, &x);
    setup(&c, &y);
    run_core(&x.a, 1, 1);
    run_core(&y.a, 2, 2);
    size_t n = c.b * c.hq * c.sq * c.dv;
    /* same blocks, same GEMMs, same order per row: bit-identical */
    cr_assert(memcmp(x.out, y.out, n * sizeof *x.out) == 0, "1 and 2 threads differ");
    teardown(&x);
    teardown(&y);
}

/* No mask, no causal: the plain row steps, and with 12 (b, h) pairs on two
 * threads every take is all the query blocks of one (b, h). Against the
 * reference, and bit-identical to one thread. */
Test(attention_core, plain_rows_whole_heads_per_take_match_one_thread)
{
    core_case c = {.b = 2,
                   .hq = 6,
                   .hkv = 3,
                   .sq = 150,
                   .d = 24,
                   .dv = 20,
                   .n_seg = 1,
                   .seg_len = {130},
                   .scale = 0.3f,
                   .threads = 2,
                   .seed = 41};
    run_case(&c);
    core_data x, y;
    setup(&c, &x);
    setup(&c, &y);
    run_core(&x.a, 1, 1);
    run_core(&y.a, 2, 2);
    size_t n = c.b * c.hq * c.sq * c.dv;
    cr_assert(memcmp(x.out, y.out, n * sizeof *x.out) == 0, "1 and 2 threads differ");
    teardown(&x);
    teardown(&y);
}

Test(attention_core, splits_query_blocks_when_heads_are_fewer_than_threads)
{
    core_case c = {.b = 1,
                   .hq = 1,
                   .hkv = 1,
                   .sq = 100,
                   .d = 16,
                   .dv = 16,
                   .n_seg = 1,
                   .seg_len = {100},
                   .scale = 0.25f,
                   .causal = 1,
                   .threads = 2,
                   .seed = 26};
    run_case(&c);
}

Test(attention_core, one_scratch_slot_serves_several_threads)
{
    core_case c = {.b = 2,
                   .hq = 2,
                   .hkv = 2,
                   .sq = 20,
                   .d = 8,
                   .dv = 8,
                   .n_seg = 1,
                   .seg_len = {20},
                   .scale = 0.35f,
                   .seed = 27};
    core_data x;
    setup(&c, &x);
    run_core(&x.a, 2, 1); /* scratch for one worker only: runs serially */
    check_core(&c, &x);
    teardown(&x);
}

Test(attention_core, empty_key_axis_gives_zero_rows)
{
    core_case c = {.b = 1,
                   .hq = 2,
                   .hkv = 2,
                   .sq = 3,
                   .d = 8,
                   .dv = 8,
                   .n_seg = 1,
                   .seg_len = {0},
                   .scale = 0.35f,
                   .seed = 28};
    core_data x;
    setup(&c, &x);
    for (size_t i = 0; i < 2 * 3 * 8; i++)
        x.out[i] = 7;
    run_core(&x.a, 1, 1);
    for (size_t i = 0; i < 2 * 3 * 8; i++)
        cr_assert_eq(x.out[i], 0.0f);
    teardown(&x);
}

Test(attention_core, slot_scratch_is_flat_in_sequence_length)
{
    qkv_attn_args a;
    qkv_attn_args_init(&a);
    a.batch = 1, a.q_heads = 8, a.kv_heads = 8, a.head_size = 64, a.v_head_size = 64;
    a.n_segments = 1;
    size_t sizes[2];
    size_t lens[2] = {512, 4096};
    for (int i = 0; i < 2; i++) {
        a.q_len = lens[i];
        a.seg[0].len = lens[i];
        sizes[i] = qkv_attn_slot_bytes(&a);
    }
    /* the formula of attention_core.h: 4*128*128 + 4*128*64 + 2*4*128, plus
     * the packed K^T tile 4*64*128 on the micro-kernel path */
    size_t slot = 99328 + (qkv_attn_uses_microkernel(&a) ? 32768 : 0);
    cr_assert_eq(sizes[0], slot);
    cr_assert_eq(sizes[1], slot);
    /* at least QKV_ATTN_MIN_SLOTS slots, else one per thread */
    size_t bytes;
    cr_assert(qkv_attn_scratch_bytes(&a, 1, &bytes));
    cr_assert_eq(bytes, 4 * slot);
    cr_assert(qkv_attn_scratch_bytes(&a, 8, &bytes));
    cr_assert_eq(bytes, 8 * slot);
    /* the GEMM path needs no pack */
    a.force_gemm = true;
    cr_assert_not(qkv_attn_uses_microkernel(&a));
    cr_assert_eq(qkv_attn_slot_bytes(&a), 99328);
    /* S 4*7*20 -> 576, O 4*7*5 -> 192, m and l 64 each; the pack is padded to
     * 16 keys: head size 13, 20 keys -> 4*13*32 = 1664 */
    a.force_gemm = false;
    a.head_size = 13, a.v_head_size = 5, a.q_len = 7, a.seg[0].len = 20;
    cr_assert_eq(qkv_attn_slot_bytes(&a),
                 576 + 192 + 2 * 64 + (qkv_attn_uses_microkernel(&a) ? 1664 : 0));
}

Test(attention_core, micro_kernels_match_the_gemm_path_on_tiles_with_tails)
{
    /* head sizes and key/value widths that are not multiples of 8 or 16,
     * partial query blocks (rows % 6 != 0) and partial key tiles, two key
     * segments, BSHD strides, and the score output (SCALED compares S, the
     * softmax stage compares P) */
    static const size_t ds[] = {64, 13, 1, 24, 8};
    static const size_t dvs[] = {64, 5, 17, 33, 1};
    static const size_t sqs[] = {70, 7, 64, 1, 129};
    static const size_t lens[][2] = {{0, 130}, {0, 3}, {9, 64}, {0, 1}, {50, 79}};
    for (int k = 0; k < 5; k++) {
        for (int st = 0; st < 2; st++) {
            core_case c = {.b = 2,
                           .hq = 4,
                           .hkv = 2,
                           .sq = sqs[k],
                           .d = ds[k],
                           .dv = dvs[k],
                           .n_seg = lens[k][0] ? 2 : 1,
                           .rank3 = k % 2,
                           .scale = 0.3f,
                           .mask = k == 4 ? M_FLOAT_BCAST : M_NONE,
                           .causal = k == 2,
                           .offset = 9,
                           .qk = 1,
                           .stage = st ? QKV_ATTN_QK_SOFTMAX : QKV_ATTN_QK_SCALED,
                           .threads = (size_t)1 + (k % 2),
                           .seed = 40 + (uint32_t)(2 * k + st)};
            if (lens[k][0]) {
                c.seg_len[0] = lens[k][0];
                c.seg_len[1] = lens[k][1];
            } else {
                c.seg_len[0] = lens[k][1];
            }
            core_data x, y;
            setup(&c, &x);
            setup(&c, &y);
            y.a.force_gemm = true;
            run_core(&x.a, c.threads, c.threads);
            run_core(&y.a, c.threads, c.threads);
            check_core(&c, &x); /* both against the double reference too */
            check_core(&c, &y);
            size_t n = c.b * c.hq * c.sq * c.dv;
            for (size_t i = 0; i < n; i++)
                cr_assert(fabsf(x.out[i] - y.out[i]) <= 1e-5f + 1e-5f * fabsf(y.out[i]),
                          "case %d stage %d: out[%zu] micro %g, gemm %g", k, st, i, x.out[i],
                          y.out[i]);
            size_t nq = c.b * c.hq * c.sq * x.t;
            for (size_t i = 0; i < nq; i++)
                cr_assert(fabsf(x.qk[i] - y.qk[i]) <= 1e-5f + 1e-5f * fabsf(y.qk[i]),
                          "case %d stage %d: qk[%zu] micro %g, gemm %g", k, st, i, x.qk[i],
                          y.qk[i]);
            teardown(&x);
            teardown(&y);
        }
    }
}

Test(attention_core, check_rejects_head_counts_that_do_not_divide)
{
    qkv_attn_args a;
    qkv_attn_args_init(&a);
    a.batch = 1, a.q_heads = 5, a.kv_heads = 2, a.q_len = 1, a.head_size = 8, a.v_head_size = 8;
    a.q = (qkv_attn_view){NULL, 40, 8, 8};
    a.n_segments = 1;
    a.seg[0] = (qkv_attn_segment){{NULL, 16, 8, 8}, {NULL, 16, 8, 8}, 1};
    qkv_ir_node node = {.name = "core", .op_type = "Attention", .domain = ""};
    qkv_error err;
    qkv_error_clear(&err);
    qkv_host_ctx h = {.node = &node, .version = 23, .err = &err, .pool = NULL};
    qkv_kernel_io io;
    qkv_kernel_io_init(&io, &h, NULL, 0, NULL, 0);
    cr_assert_eq(qkv_attn_check(&io, &a), QKV_ERR_SHAPE);
    cr_assert(strstr(err.message, "5 query heads are not a multiple of 2 key/value heads"), "%s",
              err.message);
}

Test(attention_core, check_rejects_strides_beyond_blas_limits)
{
    qkv_attn_args a;
    qkv_attn_args_init(&a);
    a.batch = 1, a.q_heads = 1, a.kv_heads = 1, a.q_len = 1, a.head_size = 8, a.v_head_size = 8;
    a.q = (qkv_attn_view){NULL, 8, 8, 8};
    a.n_segments = 1;
    size_t huge = (size_t)1 << 32;
    a.seg[0] = (qkv_attn_segment){{NULL, huge, huge, huge}, {NULL, 8, 8, 8}, 1};
    qkv_ir_node node = {.name = "core", .op_type = "Attention", .domain = ""};
    qkv_error err;
    qkv_error_clear(&err);
    qkv_host_ctx h = {.node = &node, .version = 23, .err = &err, .pool = NULL};
    qkv_kernel_io io;
    qkv_kernel_io_init(&io, &h, NULL, 0, NULL, 0);
    cr_assert_eq(qkv_attn_check(&io, &a), QKV_ERR_UNSUPPORTED);
    cr_assert(strstr(err.message, "node 'core' (Attention-23): attention operands too large "
                                  "for BLAS"),
              "%s", err.message);
}

static qkv_status failing_gemm(void *user, const qkv_host_api *host, void *host_ctx,
                               const qkv_gemm *g)
{
    (void)user;
    (void)g;
    return host->error(host_ctx, QKV_ERR_PLUGIN, "test provider refuses");
}

Test(attention_core, returns_the_error_of_a_failing_gemm)
{
    core_case c = {.b = 2,
                   .hq = 2,
                   .hkv = 2,
                   .sq = 70,
                   .d = 8,
                   .dv = 8,
                   .n_seg = 1,
                   .seg_len = {70},
                   .scale = 0.35f,
                   .seed = 29};
    core_data x;
    setup(&c, &x);
    x.a.force_gemm = true; /* the micro-kernels never call the provider */
    qkv_ir_node node = {.name = "core", .op_type = "Attention", .domain = ""};
    qkv_gemm_provider provider = {.gemm = failing_gemm, .user = NULL};
    qkv_error err;
    qkv_error_clear(&err);
    qkv_threadpool *pool = qkv_threadpool_create(2);
    qkv_host_ctx h = {.node = &node, .version = 23, .err = &err, .pool = pool, .gemm = &provider};
    qkv_kernel_io io;
    qkv_kernel_io_init(&io, &h, NULL, 0, NULL, 0);
    size_t bytes;
    cr_assert(qkv_attn_scratch_bytes(&x.a, 2, &bytes));
    void *scratch = aligned_alloc(64, bytes + 64);
    cr_assert_eq(qkv_attn_run(&io, &x.a, scratch, bytes), QKV_ERR_PLUGIN);
    cr_assert(strstr(err.message, "node 'core' (Attention-23): test provider refuses"), "%s",
              err.message);
    free(scratch);
    qkv_threadpool_destroy(pool);
    teardown(&x);
}

Test(attention_core, zero_head_sizes_are_handled)
{
    /* D = 0: every score is 0, rows average the visible values */
    core_case c = {.b = 1,
                   .hq = 2,
                   .hkv = 1,
                   .sq = 5,
                   .d = 0,
                   .dv = 4,
                   .n_seg = 1,
                   .seg_len = {7},
                   .scale = 1.0f,
                   .causal = 1,
                   .qk = 1,
                   .stage = QKV_ATTN_QK_SOFTMAX,
                   .seed = 30};
    run_case(&c);
    /* Dv = 0: nothing to write but the score output */
    core_case v = {.b = 1,
                   .hq = 1,
                   .hkv = 1,
                   .sq = 3,
                   .d = 4,
                   .dv = 0,
                   .n_seg = 1,
                   .seg_len = {3},
                   .scale = 1.0f,
                   .qk = 1,
                   .stage = QKV_ATTN_QK_SOFTMAX,
                   .seed = 31};
    run_case(&v);
}
