/*
 * attention_core.c - the fused (online-softmax, tiled) attention kernel; see
 * attention_core.h for what it computes and its scratch formula.
 *
 * Work items are (b, h, query block). parallel_for runs over `workers`
 * slots; a slot owns its scratch and takes items from one atomic counter
 * until none are left (under a causal mask the latest query blocks first:
 * the expensive ones go out early and the cheap ones even out the end). No two
 * threads ever share a buffer whatever chunks the pool hands out, and a
 * thread slowed down by other work on the machine simply takes fewer items.
 * Without a causal mask a take is all the blocks of one (b, h) when there
 * are enough (b, h) pairs, so each head's K and V go to one core's cache.
 * When (b, h) pairs times query blocks would give a thread fewer than three
 * items, the query blocks get smaller (down to 16 rows).
 *
 * Per item: O, m, l are reset; for each key tile S = scale * Q_blk K_tile^T,
 * then each row of S gets softcap, bias and exclusions, its max updates m, S
 * becomes P = exp(S - m), l and O are rescaled when m grew, and O += P
 * V_tile. Without softcap, keep mask, soft kv_valid and score output (the
 * common case: exclusions are then only a visible-key count per row), the
 * whole tile's row steps are one qkv_vm_online_softmax_f32 call; an additive
 * bias whose keys are contiguous (a float attn_mask, a relative position
 * bias, a padding mask broadcast over the queries) is then added to S by the
 * score product itself (the micro-kernels' epilogue, or one pass after the
 * GEMM), so it costs no per-row step. s + (-inf) is -inf for any finite
 * score, which is what the per-row path's select gives.
 * Finally out = O / l (0 when l == 0: every key of the row was excluded).
 *
 * Tiles past the last key any row of the block may see (causal frontier,
 * key_limit, hard kv_valid, and the trailing keys that the bias (-inf) or a
 * hard-dropping keep mask removes from every row of the block, as a key
 * padding mask does) are trimmed or skipped, unless the score output needs
 * them: those keys weigh exactly 0. Their K and V rows are then never read,
 * so a NaN or Inf there does not reach the output (ORT's mask_index path
 * does not read them either), whereas a masked key before the block's last
 * visible one is still multiplied by its weight 0 (0 * Inf is NaN).
 *
 * The two tile products run on the register-blocked micro-kernels of
 * attention_simd.c when the CPU has AVX2 and FMA (AVX-512: wider blocks;
 * cpu_features.h, so QKV_ISA can cap it), else, or with args.force_gemm,
 * through qkv_blas_gemm_run (host->gemm: a backend such as OpenBLAS, or the
 * portable C GEMM). Called from inside a worker, the host's own
 * parallel_for runs inline (the pool is busy), so a tile GEMM stays on its
 * worker; with a single worker (one scratch slot) the host may spread a
 * tile GEMM over the pool instead.
 *
 * The row steps (max, exp(s - m) with its sum, the rescales of O) are the
 * only per-score work left once the products are fast (with OpenBLAS they
 * were half the time, glibc's scalar expf alone a fifth): they are
 * vecmath.h's, in the widest variant the CPU runs, with its one polynomial
 * exp (Cephes' scheme, flushed to exactly 0 below exp(-87), so an excluded
 * key weighs nothing).
 */
#include "attention_core.h"

#include <math.h>
#include <stdatomic.h>
#include <string.h>

#include "attention_simd.h"
#include "blas.h"
#include "cpu_features.h"
#include "elementwise.h"
#include "vecmath.h"

static size_t align64(size_t bytes) { return (bytes + 63) & ~(size_t)63; }

static size_t min_sz(size_t a, size_t b) { return a < b ? a : b; }

void qkv_attn_args_init(qkv_attn_args *a)
{
    memset(a, 0, sizeof *a);
    a->drop_value = -INFINITY;
    a->key_limit = SIZE_MAX;
    a->keep_type = QKV_ATTN_KEEP_NONE;
    a->qk_stage = QKV_ATTN_QK_SCALED;
}

size_t qkv_attn_kv_len(const qkv_attn_args *a)
{
    size_t t = 0;
    for (size_t s = 0; s < a->n_segments; s++)
        t += a->seg[s].len;
    return t;
}

bool qkv_attn_uses_microkernel(const qkv_attn_args *a)
{
#if defined(QKV_ATTN_HAVE_MICROKERNELS)
    if (a->force_gemm)
        return false;
    return (qkv_cpu_features_get() & QKV_CPU_AVX2) != 0; /* AVX2 implies FMA there */
#else
    (void)a;
    return false;
#endif
}

/* Largest query block and key tile for a: under a causal mask the smaller
 * QKV_ATTN_BLOCK_CAUSAL, so that whole tiles past a block's frontier are
 * skipped (at sequence 128, 128 x 128 tiles would compute the masked half). */
static void block_sizes(const qkv_attn_args *a, size_t *bq, size_t *bk)
{
    size_t t = qkv_attn_kv_len(a);
    *bq = min_sz(a->causal ? QKV_ATTN_BLOCK_CAUSAL : QKV_ATTN_BLOCK_Q, a->q_len);
    *bk = min_sz(a->causal ? QKV_ATTN_BLOCK_CAUSAL : QKV_ATTN_BLOCK_K, t);
    if (*bk == 0)
        *bk = 1; /* keeps the slot layout valid for an empty key axis */
}

size_t qkv_attn_slot_bytes(const qkv_attn_args *a)
{
    if (a->q_len == 0 || a->batch == 0 || a->q_heads == 0)
        return 0;
    size_t bq, bk;
    block_sizes(a, &bq, &bk);
    /* bq, bk <= 64 and head sizes <= INT_MAX (qkv_attn_check): no overflow */
    size_t bytes = align64(sizeof(float) * bq * bk) + align64(sizeof(float) * bq * a->v_head_size) +
                   2 * align64(sizeof(float) * bq);
    if (qkv_attn_uses_microkernel(a))
        bytes += align64(sizeof(float) * a->head_size * qkv_attn_pack_cols(bk));
    return bytes;
}

bool qkv_attn_scratch_bytes(const qkv_attn_args *a, size_t threads, size_t *bytes)
{
    size_t slots = threads > QKV_ATTN_MIN_SLOTS ? threads : QKV_ATTN_MIN_SLOTS;
    return !__builtin_mul_overflow(qkv_attn_slot_bytes(a), slots, bytes);
}

qkv_status qkv_attn_check(qkv_kernel_io *io, const qkv_attn_args *a)
{
    if (a->kv_heads == 0 || a->q_heads % a->kv_heads != 0)
        return KERR(io, QKV_ERR_SHAPE, "%zu query heads are not a multiple of %zu key/value heads",
                    a->q_heads, a->kv_heads);
    if (a->n_segments > QKV_ATTN_MAX_SEGMENTS)
        return KERR(io, QKV_ERR_INTERNAL, "attention over %zu key segments", a->n_segments);
    size_t bq, bk;
    block_sizes(a, &bq, &bk);
    for (size_t s = 0; s < a->n_segments; s++) {
        const qkv_attn_segment *g = &a->seg[s];
        qkv_blas_gemm qk = {.dtype = QKV_DTYPE_FLOAT,
                            .trans_b = true,
                            .m = bq,
                            .n = bk,
                            .k = a->head_size,
                            .lda = a->q.ss,
                            .ldb = g->k.ss,
                            .ldc = bk};
        qkv_blas_gemm pv = {.dtype = QKV_DTYPE_FLOAT,
                            .m = bq,
                            .n = a->v_head_size,
                            .k = bk,
                            .lda = bk,
                            .ldb = g->v.ss,
                            .ldc = a->v_head_size};
        if (!qkv_blas_gemm_fits(&qk) || !qkv_blas_gemm_fits(&pv))
            return KERR(io, QKV_ERR_UNSUPPORTED,
                        "attention operands too large for BLAS (head size %zu, value head size "
                        "%zu, row strides %zu/%zu/%zu)",
                        a->head_size, a->v_head_size, a->q.ss, g->k.ss, g->v.ss);
    }
    return QKV_OK;
}

/* ---- the worker ------------------------------------------------------------- */

typedef struct attn_run {
    const qkv_attn_args *a;
    qkv_kernel_io *io;
    unsigned char *scratch;
    size_t slot_bytes;
    size_t workers;
    size_t bq, bk;   /* query block rows, key tile width */
    size_t q_blocks; /* per (b, h) */
    size_t items;    /* batch * q_heads * q_blocks */
    size_t kv_len;
    size_t group;            /* q_heads / kv_heads */
    bool skip_tiles;         /* no score output: tiles beyond every row's frontier are skipped */
    bool hard_drop;          /* drop_value is -inf */
    bool trim_masked;        /* skip_tiles, and a bias or hard-dropping keep mask may remove
                              * a block's trailing keys (live_key_end) */
    bool micro;              /* the AVX2+FMA micro-kernels replace the tile GEMMs */
    bool micro512;           /* ... and the tile products use the AVX-512 ones */
    bool plain_rows;         /* no softcap, keep, soft kv_valid or score output, a bias (if
                              * any) with unit key stride: the bias is added to the tile of
                              * scores as a whole, and the row steps of a tile are one
                              * qkv_vm_online_softmax_f32 call */
    atomic_int status;       /* the first GEMM failure (QKV_OK while none) */
    atomic_size_t next_item; /* the next item a worker takes */
    size_t take;             /* consecutive items per take */
} attn_run;

/* Per-slot buffers. */
typedef struct attn_slot {
    float *s;  /* (bq, bk) scores, then probabilities */
    float *o;  /* (bq, v_head_size) un-normalised output */
    float *m;  /* (bq) running max */
    float *l;  /* (bq) running sum */
    float *kt; /* (head_size, qkv_attn_pack_cols(bk)) packed K^T tile (micro path), else NULL */
} attn_slot;

static attn_slot slot_at(const attn_run *r, size_t t)
{
    unsigned char *base = r->scratch + t * r->slot_bytes;
    attn_slot s;
    size_t off = 0;
    s.s = (float *)(base + off);
    off += align64(sizeof(float) * r->bq * r->bk);
    s.o = (float *)(base + off);
    off += align64(sizeof(float) * r->bq * r->a->v_head_size);
    s.m = (float *)(base + off);
    off += align64(sizeof(float) * r->bq);
    s.l = (float *)(base + off);
    off += align64(sizeof(float) * r->bq);
    s.kt = r->micro ? (float *)(base + off) : NULL;
    return s;
}

/* One past the last key query row i of batch b may see, ignoring the
 * bias/keep values (causal frontier, key_limit, hard kv_valid). */
static size_t row_end(const attn_run *r, size_t b, size_t i)
{
    const qkv_attn_args *a = r->a;
    size_t end = r->kv_len < a->key_limit ? r->kv_len : a->key_limit;
    if (a->kv_valid && r->hard_drop) {
        int64_t v = a->kv_valid[b];
        size_t vv = v <= 0 ? 0 : (uint64_t)v > end ? end : (size_t)v;
        end = vv < end ? vv : end;
    }
    if (a->causal) {
        int64_t off = a->causal_offsets ? a->causal_offsets[b] : a->causal_offset;
        /* j <= i + off  <=>  j < i + off + 1; computed in int64 (i < 2^62) */
        int64_t lim = (int64_t)i + off + 1;
        size_t cl = lim <= 0 ? 0 : (uint64_t)lim > end ? end : (size_t)lim;
        end = cl < end ? cl : end;
    }
    return end;
}

/* Whether key j survives the masks for query row i of (b, h): its bias is
 * not -inf and, when drops are hard, its keep flag is set. */
static bool key_visible(const attn_run *r, size_t b, size_t h, size_t i, size_t j)
{
    const qkv_attn_args *a = r->a;
    if (a->bias &&
        a->bias[b * a->bias_sb + h * a->bias_sh + i * a->bias_si + j * a->bias_sj] == -INFINITY)
        return false;
    if (a->keep && r->hard_drop) {
        size_t e = b * a->keep_sb + h * a->keep_sh + i * a->keep_si + j * a->keep_sj;
        bool keep = a->keep_type == QKV_ATTN_KEEP_U8 ? ((const uint8_t *)a->keep)[e] != 0
                                                     : ((const int32_t *)a->keep)[e] != 0;
        if (!keep)
            return false;
    }
    return true;
}

/*
 * One past the last key below `end` that some row of the query block [i0,
 * i0 + rows) of (b, h) sees through its row_end and the masks (key_visible);
 * 0 when there is none. The keys after it weigh exactly 0 in every row of
 * the block. Rows are scanned last to first, each only over the keys past
 * the end found so far, so a row costs its trailing run of masked keys plus
 * one read, far less than the tile work those keys would cost; when the
 * masks are broadcast over the query rows the last row (the latest
 * frontier) stands for all of them.
 */
static size_t live_key_end(const attn_run *r, size_t b, size_t h, size_t i0, size_t rows,
                           size_t end)
{
    const qkv_attn_args *a = r->a;
    bool one_row = (!a->bias || a->bias_si == 0) && (!a->keep || a->keep_si == 0);
    size_t live = 0;
    for (size_t x = rows; x-- > 0 && live < end;) {
        size_t i = i0 + x;
        for (size_t j = min_sz(row_end(r, b, i), end); j > live; j--) {
            if (key_visible(r, b, h, i, j - 1)) {
                live = j;
                break;
            }
        }
        if (one_row)
            break;
    }
    return live;
}

/* Copies w scores to the score output when it wants this stage. */
static void qk_store(const attn_run *r, qkv_attn_qk_stage stage, float *qk_row, const float *s,
                     size_t w)
{
    qkv_attn_qk_stage want = r->a->qk_stage;
    if (want == QKV_ATTN_QK_SOFTMAX)
        want = QKV_ATTN_QK_BIASED; /* normalised after the last tile */
    if (qk_row && want == stage)
        memcpy(qk_row, s, w * sizeof *s);
}

/*
 * Turns one row of raw scores s[0..w) (keys j0 + c) into exp(s - m_new),
 * updating m and l, and returns the factor the row's O must be scaled by.
 * n_in: cells [n_in, w) are excluded outright.
 */
static float score_row(const attn_run *r, size_t b, size_t h, size_t i, size_t j0, size_t w,
                       size_t n_in, float *restrict s, float *m, float *l, float *qk_row)
{
    const qkv_attn_args *a = r->a;
    qk_store(r, QKV_ATTN_QK_SCALED, qk_row, s, w);
    if (a->softcap != 0) {
        float cap = a->softcap, inv = 1.0f / a->softcap;
        size_t n = qk_row ? w : n_in; /* the score output wants every cell */
        for (size_t c = 0; c < n; c++)
            s[c] = cap * tanhf(s[c] * inv);
    }
    qk_store(r, QKV_ATTN_QK_SOFTCAPPED, qk_row, s, w);
    if (a->bias && n_in > 0) {
        const float *restrict bp =
            a->bias + b * a->bias_sb + h * a->bias_sh + i * a->bias_si + j0 * a->bias_sj;
        size_t sj = a->bias_sj;
        if (sj == 1) {
            for (size_t c = 0; c < n_in; c++)
                s[c] = bp[c] == -INFINITY ? -INFINITY : s[c] + bp[c];
        } else {
            float bv = bp[0]; /* broadcast along keys */
            for (size_t c = 0; c < n_in; c++)
                s[c] = bv == -INFINITY ? -INFINITY : s[c] + bv;
        }
    }
    if (a->keep && n_in > 0) {
        size_t base = b * a->keep_sb + h * a->keep_sh + i * a->keep_si, sj = a->keep_sj;
        float d = a->drop_value;
        bool hard = r->hard_drop;
        for (size_t c = 0; c < n_in; c++) {
            size_t e = base + (j0 + c) * sj;
            bool keep = a->keep_type == QKV_ATTN_KEEP_U8 ? ((const uint8_t *)a->keep)[e] != 0
                                                         : ((const int32_t *)a->keep)[e] != 0;
            if (!keep)
                s[c] = hard ? -INFINITY : s[c] + d;
        }
    }
    if (a->kv_valid && !r->hard_drop) {
        int64_t v = a->kv_valid[b];
        size_t from = v <= 0 ? 0 : (uint64_t)v >= j0 + n_in ? j0 + n_in : (size_t)v;
        for (size_t c = from > j0 ? from - j0 : 0; c < n_in; c++)
            s[c] += a->drop_value;
    }
    for (size_t c = n_in; c < w; c++)
        s[c] = -INFINITY;
    qk_store(r, QKV_ATTN_QK_BIASED, qk_row, s, w);

    float mx = qkv_vm_max_f32(s, n_in);
    float m_old = *m;
    float m_new = mx > m_old ? mx : m_old;
    if (m_new == -INFINITY) { /* nothing visible yet: P = 0, O unchanged */
        memset(s, 0, w * sizeof *s);
        return 1.0f;
    }
    float sum = qkv_vm_exp_shifted_f32(s, n_in, m_new);
    for (size_t c = n_in; c < w; c++)
        s[c] = 0;
    /* the factor for what the row holds so far: 0 when it held nothing (m_old
     * -inf), otherwise the scores' exp */
    float alpha = 1.0f;
    if (m_old != m_new)
        alpha = m_old == -INFINITY ? 0.0f : qkv_ew_expf(m_old - m_new);
    *l = *l * alpha + sum;
    *m = m_new;
    return alpha;
}

/* S (rows x wc, row stride wc) = scale * Q_blk K_tile^T for the query rows
 * at qp and the w keys at kp (row strides q.ss, kss), plus the bias rows at
 * bp (row stride a->bias_si, unit key stride) when bp is not NULL. Columns
 * [w, wc) (micro-kernels only) take a zero K row: they hold the bias alone.
 * A GEMM error is returned. */
static qkv_status tile_scores(const attn_run *r, const attn_slot *sl, const float *qp, size_t rows,
                              const float *kp, size_t kss, size_t w, size_t wc, const float *bp)
{
    const qkv_attn_args *a = r->a;
#if defined(QKV_ATTN_HAVE_MICROKERNELS)
    if (r->micro) { /* the K tile packed as K^T once per tile; the bias added on the way out */
        size_t ldk = qkv_attn_pack_cols(r->bk);
        qkv_attn_mk_pack_kt(kp, kss, w, a->head_size, sl->kt, ldk); /* zeros up to 16k >= wc */
        qkv_attn_mk_tile_gemm(r->micro512, rows, wc, a->head_size, a->scale, qp, a->q.ss, sl->kt,
                              ldk, true, sl->s, wc, bp, a->bias_si);
        return QKV_OK;
    }
#endif
    qkv_blas_gemm qk = {.dtype = QKV_DTYPE_FLOAT,
                        .trans_b = true,
                        .m = rows,
                        .n = w,
                        .k = a->head_size,
                        .alpha = a->scale,
                        .beta = 0,
                        .a = qp,
                        .lda = a->q.ss,
                        .b = kp,
                        .ldb = kss,
                        .c = sl->s,
                        .ldc = wc};
    qkv_status st = qkv_blas_gemm_run(r->io, &qk);
    if (st != QKV_OK || !bp)
        return st;
    for (size_t x = 0; x < rows; x++) {
        float *restrict sr = sl->s + x * wc;
        const float *restrict br = bp + x * a->bias_si;
        for (size_t c = 0; c < w; c++)
            sr[c] += br[c]; /* -inf (an excluded key) stays -inf: the score is finite */
    }
    return QKV_OK;
}

/* O (rows x v_head_size) += P V_tile for P (rows x w, row stride ls) and
 * the w values at vp (row stride vss). A GEMM error is returned. */
static qkv_status tile_accumulate(const attn_run *r, const attn_slot *sl, size_t rows,
                                  const float *vp, size_t vss, size_t w, size_t ls)
{
    size_t dv = r->a->v_head_size;
    if (dv == 0)
        return QKV_OK;
#if defined(QKV_ATTN_HAVE_MICROKERNELS)
    if (r->micro) {
        qkv_attn_mk_tile_gemm(r->micro512, rows, dv, w, 1.0f, sl->s, ls, vp, vss, false, sl->o, dv,
                              sl->o, dv);
        return QKV_OK;
    }
#endif
    qkv_blas_gemm pv = {.dtype = QKV_DTYPE_FLOAT,
                        .m = rows,
                        .n = dv,
                        .k = w,
                        .alpha = 1,
                        .beta = 1,
                        .a = sl->s,
                        .lda = ls,
                        .b = vp,
                        .ldb = vss,
                        .c = sl->o,
                        .ldc = dv};
    return qkv_blas_gemm_run(r->io, &pv);
}

/* One (b, h, query block) item: where its rows, keys and outputs are. */
typedef struct attn_item {
    size_t b, h, kvh;
    size_t i0, rows;    /* query rows [i0, i0 + rows) */
    size_t frontier;    /* one past the last key any of its rows may see (row_end) */
    size_t block_end;   /* ... and is computed for: frontier less the masked trailing keys */
    const float *qp;    /* (rows, head_size) at row stride q.ss */
    const float *bias0; /* the bias rows at key 0 when the tiles take the bias whole, else NULL */
    float *qk_base;     /* the score output rows at key 0, or NULL */
} attn_item;

/* Decodes item number `item` and finds the keys its block computes: none
 * past the causal frontier, key_limit, hard kv_valid or the trailing keys
 * the masks remove (live_key_end), unless the score output wants them. */
static attn_item item_at(const attn_run *r, size_t item)
{
    const qkv_attn_args *a = r->a;
    attn_item it;
    size_t qb = item % r->q_blocks, bh = item / r->q_blocks;
    it.h = bh % a->q_heads;
    it.b = bh / a->q_heads;
    it.kvh = it.h / r->group;
    it.i0 = qb * r->bq;
    it.rows = min_sz(r->bq, a->q_len - it.i0);
    it.frontier = r->skip_tiles ? row_end(r, it.b, it.i0 + it.rows - 1) : r->kv_len;
    it.block_end = it.frontier;
    if (r->trim_masked)
        it.block_end = live_key_end(r, it.b, it.h, it.i0, it.rows, it.frontier);
    it.qp = a->q.data + it.b * a->q.sb + it.h * a->q.sh + it.i0 * a->q.ss;
    it.bias0 = r->plain_rows && a->bias
                   ? a->bias + it.b * a->bias_sb + it.h * a->bias_sh + it.i0 * a->bias_si
                   : NULL;
    it.qk_base =
        a->qk_out ? a->qk_out + it.b * a->qk_sb + it.h * a->qk_sh + it.i0 * a->qk_si : NULL;
    return it;
}

/* The row steps of one tile of scores (rows x w, keys j0 on): P = exp(S -
 * m) with m, l and the rescale of O, in one qkv_vm_online_softmax_f32 call
 * for plain rows, else row by row through score_row (softcap, bias, keep,
 * soft drops, score output). */
static void tile_row_steps(const attn_run *r, const attn_slot *sl, const attn_item *it, size_t j0,
                           size_t w)
{
    const qkv_attn_args *a = r->a;
    size_t dv = a->v_head_size;
    if (r->plain_rows) {
        size_t n_in[QKV_ATTN_BLOCK_Q]; /* rows <= bq <= QKV_ATTN_BLOCK_Q */
        for (size_t x = 0; x < it->rows; x++) {
            size_t end = row_end(r, it->b, it->i0 + x);
            n_in[x] = end <= j0 ? 0 : min_sz(end - j0, w);
        }
        qkv_vm_online_softmax_f32(sl->s, it->rows, w, n_in, sl->m, sl->l, sl->o, dv);
        return;
    }
    for (size_t x = 0; x < it->rows; x++) {
        size_t i = it->i0 + x;
        size_t end = row_end(r, it->b, i);
        size_t n_in = end <= j0 ? 0 : min_sz(end - j0, w);
        float *qk_row = it->qk_base ? it->qk_base + x * a->qk_si + j0 : NULL;
        float alpha =
            score_row(r, it->b, it->h, i, j0, w, n_in, sl->s + x * w, &sl->m[x], &sl->l[x], qk_row);
        if (alpha != 1.0f)
            qkv_vm_scale_f32(sl->o + x * dv, sl->o + x * dv, dv, alpha);
    }
}

/*
 * Both products and the row steps of the tile of keys [j0, j0 + w), whose K
 * and V rows are at kp and vp (row strides kss, vss); w_room >= w: the keys
 * the tile would hold without the masked trailing ones. A GEMM error is
 * returned.
 *
 * When the masks cut the tile at a w that is not a multiple of 16, the
 * micro-kernel path computes up to 15 of the cut keys' scores as well (wc
 * columns, also the row stride of S and P), as bias alone: their K rows are
 * taken as zero, and their bias is -inf in every row that may see them. The
 * row steps then see whole vectors; a row's masked partial last vector
 * cost more on AVX-512 (Zen 5) than the keys the cut saved (bert's 100 of
 * 128 keys took 96% of the time of 128, 87% with this). P V still stops at
 * w: their V rows are never read.
 */
static qkv_status run_tile(const attn_run *r, const attn_slot *sl, const attn_item *it, size_t j0,
                           size_t w, size_t w_room, const float *kp, size_t kss, const float *vp,
                           size_t vss)
{
    size_t wc = w;
    if (r->micro && r->plain_rows && w < w_room)
        wc = min_sz((w + 15) & ~(size_t)15, w_room);
    qkv_status st =
        tile_scores(r, sl, it->qp, it->rows, kp, kss, w, wc, it->bias0 ? it->bias0 + j0 : NULL);
    if (st != QKV_OK)
        return st;
    tile_row_steps(r, sl, it, j0, wc);
    return tile_accumulate(r, sl, it->rows, vp, vss, w, wc);
}

/* The softmax stage of the score output for row x of the item: the biased
 * scores it holds become exp(s - m) / l (0 on a row with every key
 * excluded). */
static void qk_normalize_row(const attn_run *r, const attn_slot *sl, const attn_item *it, size_t x)
{
    float *restrict p = it->qk_base + x * r->a->qk_si;
    float l = sl->l[x];
    if (l > 0) {
        float inv = 1.0f / l;
        qkv_vm_exp_shifted_f32(p, r->kv_len, sl->m[x]); /* the same exp as the tiles used */
        for (size_t j = 0; j < r->kv_len; j++)
            p[j] *= inv;
    } else {
        memset(p, 0, r->kv_len * sizeof *p);
    }
}

/* The item's output rows out = O / l (zero rows where l is 0: every key
 * excluded, not 0/0), and its score output's softmax stage. */
static void finish_rows(const attn_run *r, const attn_slot *sl, const attn_item *it)
{
    const qkv_attn_args *a = r->a;
    size_t dv = a->v_head_size;
    float *out0 = a->out + it->b * a->out_sb + it->h * a->out_sh + it->i0 * a->out_ss;
#if defined(QKV_ATTN_HAVE_MICROKERNELS)
    if (r->micro) /* one call for the block: a dispatched call per row cost 4% */
        qkv_attn_mk_normalize(r->micro512, it->rows, dv, sl->o, sl->l, out0, a->out_ss);
#endif
    for (size_t x = 0; x < it->rows; x++) {
        float *out = out0 + x * a->out_ss;
        float l = sl->l[x];
        if (r->micro) {
            /* done above */
        } else if (l > 0) {
            qkv_vm_scale_f32(out, sl->o + x * dv, dv, 1.0f / l);
        } else {
            memset(out, 0, dv * sizeof *out);
        }
        if (it->qk_base && a->qk_stage == QKV_ATTN_QK_SOFTMAX)
            qk_normalize_row(r, sl, it, x);
    }
}

/* One (b, h, query block) item into slot sl: O, m and l reset, every key
 * tile up to the block's end, then the output rows. A GEMM error (reported
 * by the provider through io) is returned. */
static qkv_status run_item(const attn_run *r, const attn_slot *sl, size_t item)
{
    const qkv_attn_args *a = r->a;
    attn_item it = item_at(r, item);
    for (size_t x = 0; x < it.rows; x++) {
        sl->m[x] = -INFINITY;
        sl->l[x] = 0;
    }
    memset(sl->o, 0, it.rows * a->v_head_size * sizeof(float));

    size_t seg_start = 0;
    for (size_t sg = 0; sg < a->n_segments && seg_start < it.block_end; sg++) {
        const qkv_attn_segment *g = &a->seg[sg];
        const float *kp = g->k.data + it.b * g->k.sb + it.kvh * g->k.sh;
        const float *vp = g->v.data + it.b * g->v.sb + it.kvh * g->v.sh;
        for (size_t t0 = 0; t0 < g->len && seg_start + t0 < it.block_end; t0 += r->bk) {
            size_t j0 = seg_start + t0;
            size_t w_room = min_sz(r->bk, g->len - t0);
            if (r->skip_tiles && w_room > it.frontier - j0)
                w_room = it.frontier - j0;
            size_t w = r->skip_tiles ? min_sz(w_room, it.block_end - j0) : w_room;
            qkv_status st = run_tile(r, sl, &it, j0, w, w_room, kp + t0 * g->k.ss, g->k.ss,
                                     vp + t0 * g->v.ss, g->v.ss);
            if (st != QKV_OK)
                return st;
        }
        seg_start += g->len;
    }
    finish_rows(r, sl, &it);
    return QKV_OK;
}

/* The item the n-th take gets. Under a causal mask, query blocks last to
 * first across all (b, h): the expensive blocks (more keys visible) are
 * dealt out first and the cheap ones even out the end. Otherwise items cost
 * the same, and the blocks of one (b, h) go out one after another, so its K
 * and V are still in cache for the next. */
static size_t item_of_take(const attn_run *r, size_t n)
{
    if (!r->a->causal)
        return n;
    size_t bh_count = r->items / r->q_blocks;
    size_t qb = r->q_blocks - 1 - n / bh_count, bh = n % bh_count;
    return bh * r->q_blocks + qb;
}

/* parallel_for body: slots [begin, end). Each slot takes items from the
 * shared counter until none are left, so a thread that is slowed down (a
 * shared machine) takes fewer, and a pool that runs two slots on one thread
 * still finishes every item. */
static void run_slots(void *arg, size_t begin, size_t end)
{
    attn_run *r = arg;
    for (size_t t = begin; t < end; t++) {
        attn_slot sl = slot_at(r, t);
        for (;;) {
            size_t n0 = atomic_fetch_add(&r->next_item, r->take);
            if (n0 >= r->items)
                break;
            size_t n1 = min_sz(n0 + r->take, r->items);
            for (size_t n = n0; n < n1; n++) {
                if (atomic_load(&r->status) != QKV_OK)
                    return; /* another worker failed: stop early */
                qkv_status st = run_item(r, &sl, item_of_take(r, n));
                if (st != QKV_OK) {
                    int ok = QKV_OK;
                    atomic_compare_exchange_strong(&r->status, &ok, (int)st);
                    return;
                }
            }
        }
    }
}

qkv_status qkv_attn_run(qkv_kernel_io *io, const qkv_attn_args *a, void *scratch,
                        size_t scratch_bytes)
{
    attn_run r = {.a = a, .io = io, .scratch = scratch, .slot_bytes = qkv_attn_slot_bytes(a)};
    atomic_init(&r.status, QKV_OK);
    atomic_init(&r.next_item, 0);
    if (r.slot_bytes == 0)
        return QKV_OK; /* no query rows */
    r.kv_len = qkv_attn_kv_len(a);
    block_sizes(a, &r.bq, &r.bk);
    r.group = a->q_heads / a->kv_heads;
    r.hard_drop = a->drop_value == -INFINITY;
    r.skip_tiles = a->qk_out == NULL;
    r.trim_masked = r.skip_tiles && (a->bias || (a->keep && r.hard_drop));
    r.micro = qkv_attn_uses_microkernel(a);
    r.micro512 = r.micro && (qkv_cpu_features_get() & QKV_CPU_AVX512);
    r.plain_rows = a->softcap == 0 && (!a->bias || a->bias_sj == 1) && !a->keep &&
                   !(a->kv_valid && !r.hard_drop) && !a->qk_out;

    size_t threads = io->host->thread_count(io->host_ctx);
    size_t slots = scratch_bytes / r.slot_bytes;
    size_t bh = a->batch * a->q_heads;
    /* Too few items to keep every thread busy to the end: smaller query
     * blocks (>= 16 rows; below that the tile products lose their register
     * blocking), aiming at ITEMS_PER_THREAD items per thread so that the
     * last ones to finish leave little idle time. */
    enum { ITEMS_PER_THREAD = 3, MIN_BLOCK_ROWS = 16 };
    size_t full_items = bh * ((a->q_len + r.bq - 1) / r.bq);
    if (threads > 1 && full_items < threads * ITEMS_PER_THREAD && a->q_len > MIN_BLOCK_ROWS) {
        size_t want = (threads * ITEMS_PER_THREAD + bh - 1) / bh; /* blocks per (b, h) */
        size_t rows = (a->q_len + want - 1) / want;
        rows = rows < MIN_BLOCK_ROWS ? MIN_BLOCK_ROWS : rows;
        if (rows < r.bq)
            r.bq = rows;
    }
    r.q_blocks = (a->q_len + r.bq - 1) / r.bq;
    r.items = bh * r.q_blocks;
    /* Without a causal mask, with (b, h) pairs enough for every thread, a
     * take is all the query blocks of one (b, h): its K and V are read into
     * one core's cache, not into every core's. */
    r.take = !a->causal && bh >= threads * ITEMS_PER_THREAD ? r.q_blocks : 1;
    r.workers = min_sz(min_sz(threads, slots), r.items);
    if (r.workers == 0)
        r.workers = 1; /* the caller's contract: at least one slot */

    if (r.workers == 1)
        run_slots(&r, 0, 1);
    else
        io->host->parallel_for(io->host_ctx, r.workers, run_slots, &r);
    return (qkv_status)atomic_load(&r.status);
}
