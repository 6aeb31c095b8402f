/*
 * nll_loss.c - NegativeLogLikelihoodLoss (opsets 12, 13, 22).
 *
 * input (N, C, d1, ..., dk) holds log probabilities, target (N, d1, ..., dk)
 * a class in [0, C) per element, the optional weight (C) a weight per
 * class: loss[n, d] = -weight[target[n, d]] * input[n, target[n, d], d],
 * 0 where target == ignore_index; reduced by `reduction` (none, sum, mean;
 * mean divides by the sum of the weights of the targets not ignored, so
 * NaN when all are ignored, as the ONNX reference). The arithmetic is in
 * loss_common.c.
 *
 * Types: float, double, float16 and bfloat16 in every opset (the spec
 * adds bfloat16 in opset 22: accepting it earlier is a superset);
 * target int32 or int64. A target outside [0, C) that is not ignore_index
 * is QKV_ERR_INVALID_ARGUMENT naming the value and where it is.
 */
#include <stdlib.h>

#include "kernel_util.h"
#include "loss_common.h"

static const char *const input_names[3] = {"input", "target", "weight"};

static qkv_status nll_init(const qkv_kernel *kernel, const qkv_host_api *host,
                           const qkv_node_ctx *node, void **state)
{
    (void)kernel;
    qkv_loss_attrs a;
    qkv_status st = qkv_loss_attrs_read(host, node, &a);
    if (st != QKV_OK)
        return st;
    qkv_loss_attrs *s = malloc(sizeof *s);
    if (!s)
        return NERR(host, node, QKV_ERR_OUT_OF_MEMORY, "kernel state");
    *s = a;
    *state = s;
    return QKV_OK;
}

static void nll_destroy(void *state) { free(state); }

static qkv_status nll_infer(void *state, qkv_kernel_io *io)
{
    return qkv_loss_infer(state, io, input_names);
}

static qkv_status nll_compute(const void *state, qkv_kernel_io *io)
{
    const qkv_tensor *x = &io->inputs[0];
    const qkv_tensor *weight = qkv_present(io, 2) ? &io->inputs[2] : NULL;
    return qkv_loss_nll(io, state, qkv_loss_dims_of(x), x->data, x->dtype, &io->inputs[1], weight,
                        &io->outputs[0], input_names[1]);
}

#define LOSS_FLOATS (QKV_TYPES_FLOATS | QKV_T(FLOAT16) | QKV_T(BFLOAT16))

static const qkv_kernel kernels[] = {
    {
        QKV_KERNEL_V1,
        .domain = "",
        .op_type = "NegativeLogLikelihoodLoss",
        .since_version = 12,
        .min_inputs = 2,
        .max_inputs = 3,
        .min_outputs = 1,
        .max_outputs = 1,
        .n_input_types = 3,
        .input_types = {LOSS_FLOATS, QKV_TYPES_INDEX, LOSS_FLOATS},
        .init = nll_init,
        .infer = nll_infer,
        .compute = nll_compute,
        .destroy = nll_destroy,
    },
};

/* The NegativeLogLikelihoodLoss descriptor; *count set to 1. */
const qkv_kernel *qkv_ops_nll_loss(size_t *count)
{
    *count = sizeof kernels / sizeof kernels[0];
    return kernels;
}
