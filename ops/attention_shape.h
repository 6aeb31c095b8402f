/*
 * attention_shape.h - what ONNX Attention (attention.c) and
 * com.microsoft.MultiHeadAttention (mha.c) share around the fused kernel of
 * attention_core.h: arithmetic on partly known dims (-1: unknown, as infer
 * sees them at session creation), the scratch layout helper, and the two
 * steps both kernels take around qkv_attn_run (sizing the worker slots in
 * prepare, running over them in compute).
 *
 * Both kernels work out their shapes and scratch layout once per plan, in
 * prepare, and keep them as per-plan state (io->plan_state) for compute.
 */
#ifndef QKV_ATTENTION_SHAPE_H
#define QKV_ATTENTION_SHAPE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "attention_core.h"
#include "kernel_util.h"

/* Dim k of t; -1 when t's rank (or the dim) is not known or k >= rank. */
int64_t qkv_attn_dim(const qkv_tensor *t, int32_t k);

/* a when known (>= 0), else b. */
int64_t qkv_attn_pick(int64_t a, int64_t b);

/* True when a and b are both known and differ. */
bool qkv_attn_differ(int64_t a, int64_t b);

/*
 * The head size of a width split into `heads` (> 0) heads: *head_size =
 * width / heads, -1 when width is unknown. QKV_ERR_SHAPE when heads does not
 * divide width, naming input `in` ('name'), what the width is ("last dim",
 * "hidden size") and the attribute that gave the head count.
 */
qkv_status qkv_attn_split_heads(qkv_kernel_io *io, size_t in, const char *name, const char *what,
                                int64_t width, int64_t heads, const char *attr, int64_t *head_size);

/*
 * Appends a buffer of n elements of elem bytes, 64-byte aligned, to a
 * scratch layout: *at gets its offset, *off grows past it. false (and *off,
 * *at unspecified) when the size overflows.
 */
bool qkv_attn_take(size_t *off, size_t n, size_t elem, size_t *at);

/*
 * prepare's part around the fused kernel: checks the stand-in args `shape`
 * (sizes and strides, no data) with qkv_attn_check, sizes the worker slots
 * for the session's threads and sets io->scratch_bytes to own_bytes (the
 * kernel's own buffers, first in scratch) plus the slots. Errors: those of
 * qkv_attn_check; QKV_ERR_SHAPE when the scratch size overflows.
 */
qkv_status qkv_attn_prepare_slots(qkv_kernel_io *io, const qkv_attn_args *shape, size_t own_bytes);

/*
 * compute's part: runs a over the worker slots that follow the kernel's own
 * `own_bytes` of scratch. QKV_ERR_INTERNAL when the scratch prepare declared
 * cannot hold one slot; otherwise qkv_attn_run's status.
 */
qkv_status qkv_attn_run_slots(qkv_kernel_io *io, const qkv_attn_args *a, size_t own_bytes);

#endif /* QKV_ATTENTION_SHAPE_H */
