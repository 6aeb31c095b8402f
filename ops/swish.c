/*
 * swish.c - Swish (opset 24): y = x * sigmoid(alpha * x), alpha default 1
 * (alpha 1 is SiLU).
 *
 * Types: float, double, float16 and bfloat16 (the last two computed in
 * float32 and rounded once, where the ONNX function body rounds after each
 * of its Mul, Sigmoid, Mul). Output 0 may share input 0's buffer.
 */
#include <math.h>
#include <stdlib.h>

#include "half.h"
#include "kernel_util.h"

/* x * sigmoid(alpha x) = x / (1 + e^(-alpha x)): for alpha x very negative
 * e^(-alpha x) overflows to inf and the quotient is -0 or 0, the limit, so
 * no intermediate needs guarding; NaN stays NaN. */
static float swish_f32_1(float x, float alpha) { return x / (1.0f + expf(-alpha * x)); }

static double swish_f64_1(double x, double alpha) { return x / (1.0 + exp(-alpha * x)); }

static void swish_f32(float *out, const float *in, size_t n, const void *ctx)
{
    const float alpha = *(const float *)ctx;
    for (size_t j = 0; j < n; j++)
        out[j] = swish_f32_1(in[j], alpha);
}

static void swish_f64(double *out, const double *in, size_t n, const void *ctx)
{
    const double alpha = *(const float *)ctx;
    for (size_t j = 0; j < n; j++)
        out[j] = swish_f64_1(in[j], alpha);
}

/* ---- callbacks ------------------------------------------------------------- */

static qkv_status swish_init(const qkv_kernel *kernel, const qkv_host_api *host,
                             const qkv_node_ctx *node, void **state)
{
    (void)kernel;
    float alpha;
    qkv_status st = host->attr_float(node, "alpha", 1.0f, &alpha);
    if (st != QKV_OK)
        return st;
    float *s = malloc(sizeof *s);
    if (!s)
        return NERR(host, node, QKV_ERR_OUT_OF_MEMORY, "kernel state");
    *s = alpha;
    *state = s;
    return QKV_OK;
}

static void swish_destroy(void *state) { free(state); }

static qkv_status swish_infer(void *state, qkv_kernel_io *io)
{
    (void)state;
    const qkv_tensor *x = &io->inputs[0];
    qkv_set_shape(&io->outputs[0], x->dtype, x->rank, x->dims);
    return QKV_OK;
}

static qkv_status swish_compute(const void *state, qkv_kernel_io *io)
{
    qkv_float_map map = {swish_f32, swish_f64, state};
    return qkv_float_map_run(io, &io->inputs[0], &io->outputs[0], &map);
}

static const qkv_kernel kernels[] = {
    {
        QKV_KERNEL_V1,
        .domain = "",
        .op_type = "Swish",
        .since_version = 24,
        .min_inputs = 1,
        .max_inputs = 1,
        .min_outputs = 1,
        .max_outputs = 1,
        .n_input_types = 1,
        .input_types = {QKV_TYPES_FLOATS | QKV_T(FLOAT16) | QKV_T(BFLOAT16)},
        .flags = QKV_KERNEL_INPLACE,
        .inplace_input = 0,
        .init = swish_init,
        .infer = swish_infer,
        .compute = swish_compute,
        .destroy = swish_destroy,
    },
};

/* The Swish descriptor; *count set to 1. */
const qkv_kernel *qkv_ops_swish(size_t *count)
{
    *count = sizeof kernels / sizeof kernels[0];
    return kernels;
}
