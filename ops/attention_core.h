/*
 * attention_core.h - the fused CPU attention kernel behind ONNX Attention
 * (ops/attention.c) and com.microsoft.MultiHeadAttention (ops/mha.c).
 *
 * For every (batch b, query head h) it computes
 *
 *     s[i, j] = scale * <q[b, h, i, :], k[b, h / g, j, :]>      g = q_heads / kv_heads
 *     s       = softcap * tanh(s / softcap)                      when softcap != 0
 *     s       = s + bias[b, h, i, j]  (+ drop where keep == 0, where j >= kv_valid[b])
 *     s       = -inf where the key is excluded (causal, key_limit, hard drops)
 *     out[b, h, i, :] = sum_j softmax_j(s[i, :]) * v[b, h / g, j, :]
 *
 * without ever holding the (q_len, kv_len) score matrix: queries are cut into
 * blocks of at most QKV_ATTN_BLOCK_Q rows and keys into tiles of at most
 * QKV_ATTN_BLOCK_K, and each query row keeps a running max m, running sum l
 * and an un-normalised output row o (the online softmax of FlashAttention-2,
 * see /work/shared/reference/FUSED_KERNELS.md): per tile, S = Q_blk K_tile^T
 * and O += P V_tile are two tile products, and when a tile raises a row's max
 * the row's l and o are rescaled by exp(m_old - m_new). On x86-64 CPUs with
 * AVX2 and FMA (checked at run time) the products are register-blocked
 * micro-kernels (attention_simd.h: 6 rows x 16 columns, 8 x 32 with AVX-512,
 * the K tile packed as K^T once per tile; any head sizes, tails masked);
 * elsewhere, or with force_gemm, they are two BLAS GEMMs (ops/util/blas.h)
 * per tile. The row steps are vecmath.h's.
 *
 * A query row whose keys are all excluded (every s is -inf) gives a zero
 * output row (ONNX opset-23 errata semantics), never NaN.
 *
 * Keys may come from up to two segments (e.g. past_key and the new key), so a
 * KV cache concatenation is never copied just to attend over it.
 *
 * Scratch (the benchmark hook): every worker owns one slot of
 *
 *     qkv_attn_slot_bytes(a) = align64(4 * bq * bk) + align64(4 * bq * v_head_size)
 *                              + 2 * align64(4 * bq)
 *                              [+ align64(4 * head_size * round_up(bk, 16))]
 *     with bq = min(QKV_ATTN_BLOCK_Q, q_len), bk = min(QKV_ATTN_BLOCK_K, kv_len)
 *     (QKV_ATTN_BLOCK_CAUSAL for both under a causal mask)
 *
 * bytes (the bracketed packed K^T tile only when qkv_attn_uses_microkernel),
 * and the kernel uses min(threads, scratch_bytes / slot, work items)
 * workers. qkv_attn_scratch_bytes declares max(threads, QKV_ATTN_MIN_SLOTS)
 * slots. The slot size stops growing once q_len and kv_len reach the block
 * sizes: for head size 64 it is 99,328 bytes per slot on the GEMM path and
 * 132,096 with the micro-kernels (528,384 bytes for 4 slots) whether the
 * sequence is 512 or 4096 long.
 *
 * The optional score output (ONNX qk_matmul_output) is written tile by tile
 * into the caller's (batch, q_heads, q_len, kv_len) buffer; only then is that
 * matrix materialised, and only because the caller asked for it.
 */
#ifndef QKV_ATTENTION_CORE_H
#define QKV_ATTENTION_CORE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "kernel_util.h"

/* Query rows per block and keys per tile (tunable). 128 x 128 rather than
 * 64 x 64: at sequence 128 a (b, h) is one item of one tile, so K^T is
 * packed once and the per-item and per-tile steps run half or a quarter as
 * often (11% less time for 12 heads x 128 x 64 on AVX-512, at 1 thread); the
 * tile (64 KiB of scores) still lives in L2. */
#define QKV_ATTN_BLOCK_Q 128
#define QKV_ATTN_BLOCK_K 128
/* Both, under a causal mask (<= the two above, so a slot sized without the
 * mask holds one sized with it). */
#define QKV_ATTN_BLOCK_CAUSAL 64
/* Key segments one call may attend over (past + new). */
#define QKV_ATTN_MAX_SEGMENTS 2
/* The fewest worker slots qkv_attn_scratch_bytes declares: prepare may run
 * without knowing the run's thread count (the planner has no pool and reports
 * one thread), and with a single slot a multi-threaded run would spread every
 * tile GEMM over the pool instead of running whole work items per thread. */
#define QKV_ATTN_MIN_SLOTS 4

/* A read-only (batch, head, seq, dim) view of floats: element (b, h, s, d) is
 * data[b * sb + h * sh + s * ss + d]; dim is contiguous. */
typedef struct qkv_attn_view {
    const float *data;
    size_t sb, sh, ss;
} qkv_attn_view;

/* Keys [start, start + len) of the concatenated key axis. */
typedef struct qkv_attn_segment {
    qkv_attn_view k; /* (batch, kv_heads, len, head_size) */
    qkv_attn_view v; /* (batch, kv_heads, len, v_head_size) */
    size_t len;
} qkv_attn_segment;

/* Element type of the keep mask. */
typedef enum qkv_attn_keep_type {
    QKV_ATTN_KEEP_NONE = 0,
    QKV_ATTN_KEEP_U8 = 1,  /* bool / uint8: nonzero keeps the key */
    QKV_ATTN_KEEP_I32 = 2, /* int32: nonzero keeps the key */
} qkv_attn_keep_type;

/* What the score output holds (ONNX qk_matmul_output_mode). */
typedef enum qkv_attn_qk_stage {
    QKV_ATTN_QK_SCALED = 0,     /* scale * q.k */
    QKV_ATTN_QK_SOFTCAPPED = 1, /* after softcap (== SCALED without softcap) */
    QKV_ATTN_QK_BIASED = 2,     /* after bias, drops and exclusions (-inf) */
    QKV_ATTN_QK_SOFTMAX = 3,    /* the probabilities (0 on fully excluded rows) */
} qkv_attn_qk_stage;

/*
 * One attention call. Set every field after qkv_attn_args_init (which
 * fills the defaults: no masks, no causal, drop_value -inf, key_limit
 * SIZE_MAX, no score output). Strides are in elements.
 */
typedef struct qkv_attn_args {
    size_t batch, q_heads, kv_heads; /* kv_heads divides q_heads */
    size_t q_len, head_size, v_head_size;

    qkv_attn_view q; /* (batch, q_heads, q_len, head_size) */
    size_t n_segments;
    qkv_attn_segment seg[QKV_ATTN_MAX_SEGMENTS];

    float *out; /* (batch, q_heads, q_len, v_head_size), v_head_size contiguous */
    size_t out_sb, out_sh, out_ss;

    float scale;   /* multiplies q.k */
    float softcap; /* 0: none */

    /* Additive bias, element (b, h, i, j) at bias[b*bias_sb + h*bias_sh +
     * i*bias_si + j*bias_sj] (stride 0 broadcasts); -inf excludes the key. */
    const float *bias;
    size_t bias_sb, bias_sh, bias_si, bias_sj;
    /* Keep mask with the same addressing; 0 adds drop_value. */
    const void *keep;
    qkv_attn_keep_type keep_type;
    size_t keep_sb, keep_sh, keep_si, keep_sj;
    /* Keys j >= key_limit are excluded (bias/keep only cover [0, key_limit)). */
    size_t key_limit;
    /* Per-batch valid key counts (NULL: all): keys j >= kv_valid[b] get drop_value. */
    const int64_t *kv_valid;
    /* Added for a dropped key; -inf (the default) excludes it. */
    float drop_value;

    /* Causal: query i may see key j only when j <= i + offset, offset =
     * causal_offsets[b] when that is non-NULL, else causal_offset. */
    bool causal;
    int64_t causal_offset;
    const int64_t *causal_offsets;

    /* Optional score output (batch, q_heads, q_len, kv_len), kv_len contiguous. */
    float *qk_out;
    size_t qk_sb, qk_sh, qk_si;
    qkv_attn_qk_stage qk_stage;

    /* Use the BLAS tile GEMMs even where the AVX2+FMA micro-kernels could run
     * (tests compare the two paths; default false). */
    bool force_gemm;
} qkv_attn_args;

/* Fills a with zeros and the defaults listed at qkv_attn_args. */
void qkv_attn_args_init(qkv_attn_args *a);

/* The total key count: the sum of the segment lengths. */
size_t qkv_attn_kv_len(const qkv_attn_args *a);

/* Whether qkv_attn_run computes the tile products with the AVX2+FMA
 * micro-kernels (x86-64 with both features at run time, force_gemm unset)
 * rather than through qkv_blas_gemm_run. */
bool qkv_attn_uses_microkernel(const qkv_attn_args *a);

/* Scratch bytes one worker needs (see the file comment); a multiple of 64.
 * 0 when there is no work (an empty query, batch or head count). */
size_t qkv_attn_slot_bytes(const qkv_attn_args *a);

/*
 * Scratch bytes for `threads` workers: max(threads, QKV_ATTN_MIN_SLOTS) *
 * slot bytes. false when that overflows size_t.
 */
bool qkv_attn_scratch_bytes(const qkv_attn_args *a, size_t threads, size_t *bytes);

/*
 * Checks that a's GEMMs fit BLAS (dims and leading dimensions <= INT_MAX;
 * this also bounds the micro-kernel path's sizes) and that the head counts
 * divide. QKV_ERR_UNSUPPORTED / QKV_ERR_SHAPE with a
 * message through io; call from prepare.
 */
qkv_status qkv_attn_check(qkv_kernel_io *io, const qkv_attn_args *a);

/*
 * Computes the attention described by a into a->out (and a->qk_out), spread
 * over io's threads with host->parallel_for. scratch must be 64-byte aligned
 * and hold at least qkv_attn_slot_bytes(a) bytes (one worker); more slots
 * allow more workers. Allocates nothing; a must have passed qkv_attn_check.
 * Returns QKV_OK, or the status of a failed tile GEMM (the GEMM provider
 * wrote its message through io); the outputs are then incomplete.
 */
qkv_status qkv_attn_run(qkv_kernel_io *io, const qkv_attn_args *a, void *scratch,
                        size_t scratch_bytes);

#endif /* QKV_ATTENTION_CORE_H */
