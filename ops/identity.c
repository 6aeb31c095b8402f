/*
 * identity.c - Identity (opsets 1, 13, 14, 16, 19, 21; tensors only: optional
 * and sequence inputs are not supported) and Dropout is elsewhere.
 *
 * The model kernel to copy: descriptor, infer, compute. The planner turns an
 * Identity into a view of its input where it can, so compute runs only when
 * the output needs its own buffer (e.g. an Identity of a graph input to a
 * graph output).
 */
#include <string.h>

#include "kernel_util.h"

static qkv_status identity_infer(void *state, qkv_kernel_io *io)
{
    (void)state;
    const qkv_tensor *x = &io->inputs[0];
    qkv_set_shape(&io->outputs[0], x->dtype, x->rank, x->dims);
    return QKV_OK;
}

static qkv_status identity_compute(const void *state, qkv_kernel_io *io)
{
    (void)state;
    if (io->outputs[0].data != io->inputs[0].data)
        memcpy(io->outputs[0].data, io->inputs[0].data, io->inputs[0].data_bytes);
    return QKV_OK;
}

static const qkv_kernel kernels[] = {
    {
        QKV_KERNEL_V1,
        .domain = "",
        .op_type = "Identity",
        .since_version = 1,
        .min_inputs = 1,
        .max_inputs = 1,
        .min_outputs = 1,
        .max_outputs = 1,
        .n_input_types = 1,
        .input_types = {QKV_TYPES_PLAIN},
        .flags = QKV_KERNEL_ALIAS,
        .infer = identity_infer,
        .compute = identity_compute,
    },
};

const qkv_kernel *qkv_ops_identity(size_t *count)
{
    *count = sizeof kernels / sizeof kernels[0];
    return kernels;
}
