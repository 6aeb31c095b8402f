/*
 * ms_attention.h - what com.microsoft.Attention (ops/ms_attention.c) and
 * com.microsoft.QAttention (ops/ms_qattention.c) share: both project the
 * input with packed Q/K/V weights into one (B * S, Dq + Dk + Dv) float
 * buffer at the start of the kernel's scratch, each in its own way (float
 * GEMM, int8 GEMM), then attend over it the same way: mask_index forms,
 * past/present, attention_bias, unidirectional (see ms_attention.c).
 *
 * A kernel parses the shared attributes with qkv_msa_attrs_init, checks
 * shapes with qkv_msa_shape_of (infer, prepare, compute), sets its outputs
 * with qkv_msa_infer_outputs, sizes scratch with qkv_msa_scratch_bytes,
 * writes the projection into qkv_msa_projection(io) and finishes with
 * qkv_msa_attend.
 */
#ifndef QKV_MS_ATTENTION_H
#define QKV_MS_ATTENTION_H

#include <stdbool.h>
#include <stdint.h>

#include "kernel_util.h"

/* Where an op keeps each input (-1: it has no such input), and their names. */
typedef struct qkv_msa_inputs {
    int x, w, bias, mask, past, attn_bias, past_len;
    const char *const *names; /* indexed by input number */
} qkv_msa_inputs;

/* The attributes both ops share. */
typedef struct qkv_msa_attrs {
    const qkv_msa_inputs *in;
    int64_t heads;
    int64_t sizes[3]; /* qkv_hidden_sizes, or 0 0 0 when not given */
    float scale;      /* 0: 1/sqrt(head size) */
    float mask_filter_value;
    bool causal;
    bool want_present; /* output 1 is used */
} qkv_msa_attrs;

/* The mask_index forms. */
typedef enum qkv_msa_mask {
    QKV_MSA_MASK_NONE,
    QKV_MSA_MASK_LENGTHS,   /* (B) */
    QKV_MSA_MASK_END_START, /* (2B) */
    QKV_MSA_MASK_2D,        /* (B, T) */
    QKV_MSA_MASK_3D,        /* (B, S, T) */
    QKV_MSA_MASK_4D,        /* (B, 1, M, M) */
} qkv_msa_mask;

/* Dims of one call; -1 where unknown (infer at session creation). */
typedef struct qkv_msa_shape {
    int64_t b, s, di; /* input (B, S, Di) */
    int64_t dq, dv;   /* hidden sizes of Q (= K) and V */
    int64_t h, hv;    /* head sizes */
    int64_t p, t;     /* past length, total key length P + S */
    qkv_msa_mask mask;
    int64_t mask_m; /* M of the (B, 1, M, M) form */
} qkv_msa_shape;

/* Reads num_heads, qkv_hidden_sizes, scale, mask_filter_value,
 * unidirectional (and refuses do_rotary, past_present_share_buffer) into
 * *a. Errors are reported on the node: QKV_ERR_INVALID_MODEL for bad values,
 * QKV_ERR_UNSUPPORTED for the refused attributes. */
qkv_status qkv_msa_attrs_init(const qkv_host_api *host, const qkv_node_ctx *node,
                              const qkv_msa_inputs *in, qkv_msa_attrs *a);

/* Checks the shapes of the shared inputs (input, weights, bias, mask_index,
 * past, attention_bias) as far as they are known and fills *sh.
 * QKV_ERR_SHAPE (or QKV_ERR_INVALID_MODEL / QKV_ERR_UNSUPPORTED) with a
 * message naming the input. */
qkv_status qkv_msa_shape_of(const qkv_msa_attrs *a, qkv_kernel_io *io, qkv_msa_shape *sh);

/* infer: output (B, S, Dv) and present (2, B, N, T, H), float32. */
void qkv_msa_infer_outputs(const qkv_msa_attrs *a, qkv_kernel_io *io, const qkv_msa_shape *sh);

/* prepare: the scratch the attention needs, projection buffer included
 * (into *bytes). QKV_ERR_SHAPE on overflow, QKV_ERR_UNSUPPORTED for
 * operands too large for the kernel. */
qkv_status qkv_msa_scratch_bytes(const qkv_msa_attrs *a, qkv_kernel_io *io, const qkv_msa_shape *sh,
                                 size_t *bytes);

/* compute: the (B * S, Dq + Dk + Dv) float buffer the projection goes to,
 * at the start of io->scratch. */
float *qkv_msa_projection(qkv_kernel_io *io);

/* compute, after the projection is written: the mask, present and the
 * attention into output 0. Returns QKV_OK or the attention kernel's error. */
qkv_status qkv_msa_attend(const qkv_msa_attrs *a, qkv_kernel_io *io, const qkv_msa_shape *sh);

#endif /* QKV_MS_ATTENTION_H */
