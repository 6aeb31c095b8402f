/*
 * loss_common.h - what NegativeLogLikelihoodLoss (nll_loss.c) and
 * SoftmaxCrossEntropyLoss (softmax_cross_entropy.c) share: their attributes,
 * shape checks, and the negative log-likelihood core that turns log
 * probabilities (N, C, D) and targets (N, D) into the loss.
 *
 * Both ops see the input as (N, C, d1, ..., dk) viewed as (N, C, D) with
 * D = d1 * ... * dk (1 for a rank-2 input) and the target as (N, D).
 */
#ifndef QKV_LOSS_COMMON_H
#define QKV_LOSS_COMMON_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "qkv_plugin.h"

typedef enum qkv_loss_reduction {
    QKV_LOSS_NONE, /* loss per target element: the target's shape */
    QKV_LOSS_SUM,  /* scalar: sum of the weighted losses */
    QKV_LOSS_MEAN  /* scalar: that sum / the sum of the weights of the targets not ignored */
} qkv_loss_reduction;

typedef struct qkv_loss_attrs {
    qkv_loss_reduction reduction;
    bool has_ignore;      /* ignore_index given */
    int64_t ignore_index; /* any value, negative or >= C included */
} qkv_loss_attrs;

/* The (N, C, D) view of an input and its (N, D) target. */
typedef struct qkv_loss_dims {
    size_t n, c, d;
} qkv_loss_dims;

/*
 * Reads the attributes reduction ("none", "sum" or "mean", default "mean")
 * and ignore_index (absent: no target is ignored) into *a. QKV_ERR_INVALID_MODEL
 * naming the node for another reduction; the host's status for an attribute
 * of the wrong type.
 */
qkv_status qkv_loss_attrs_read(const qkv_host_api *host, const qkv_node_ctx *node,
                               qkv_loss_attrs *a);

/*
 * Checks input 0 (N, C, d1..dk; rank >= 2), input 1 the target
 * (N, d1..dk; int32/int64) and the optional input 2 the weight (C), each
 * as far as its shape is known, and sets output 0: input 0's dtype with the
 * target's shape for reduction none, a scalar otherwise. `names` are the
 * three inputs' names for messages. QKV_ERR_SHAPE naming the input and the
 * dims on a mismatch; QKV_ERR_TYPE when the weight's type is not input 0's.
 */
qkv_status qkv_loss_infer(const qkv_loss_attrs *a, qkv_kernel_io *io, const char *const names[3]);

/* The (N, C, D) view of input 0, whose shape is known and was checked by
 * qkv_loss_infer. */
qkv_loss_dims qkv_loss_dims_of(const qkv_tensor *x);

/* Element i of float data of dtype t (FLOAT, DOUBLE, FLOAT16 or BFLOAT16),
 * widened to double. */
double qkv_loss_load(const void *data, qkv_dtype t, size_t i);
/* Stores v into element i of float data of dtype t (as qkv_loss_load),
 * rounded once to nearest even. */
void qkv_loss_store(void *data, qkv_dtype t, size_t i, double v);

/*
 * The negative log-likelihood core. logp: (N, C, D) log probabilities with
 * elements of logp_dtype (FLOAT, DOUBLE, FLOAT16 or BFLOAT16). target:
 * (N, D) int32/int64 values in [0, C) or equal to ignore_index. weight:
 * (C) of out's dtype, or NULL (every class weighs 1). Writes out (dtype set,
 * data allocated): per element -weight[t] * logp[n, t, d] (0 where ignored)
 * for reduction none, else their sum, or that sum divided by the sum of the
 * weights of the targets not ignored (0/0 = NaN when every target is
 * ignored, as the ONNX reference does). Accumulates in double.
 * QKV_ERR_INVALID_ARGUMENT, naming `target_name`, the flat index and the
 * value, for a target outside [0, C) that is not ignore_index; every target
 * is checked before out is written, so out is then left untouched.
 */
qkv_status qkv_loss_nll(qkv_kernel_io *io, const qkv_loss_attrs *a, qkv_loss_dims dims,
                        const void *logp, qkv_dtype logp_dtype, const qkv_tensor *target,
                        const qkv_tensor *weight, qkv_tensor *out, const char *target_name);

#endif /* QKV_LOSS_COMMON_H */
