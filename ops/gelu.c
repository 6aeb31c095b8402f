/*
 * gelu.c - Gelu (opset 20).
 *
 *   approximate="none" (default): y = 0.5 x (1 + erf(x / sqrt(2)))
 *   approximate="tanh":           y = 0.5 x (1 + tanh(sqrt(2/pi) (x + 0.044715 x^3)))
 *
 * Types: float, double, float16 and bfloat16 (the last two computed in
 * float32 and rounded once). float32 runs vecmath.h's vectorised GELUs (the
 * CPU's best variant; accuracy stated there), float64 libm. Another approximate value is
 * QKV_ERR_INVALID_MODEL at session creation. Output 0 may share input 0's
 * buffer.
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "half.h"
#include "kernel_util.h"
#include "vecmath.h"

typedef struct gelu_state {
    bool tanh_approx;
} gelu_state;

#define SQRT1_2 0.70710678118654752440   /* 1 / sqrt(2) */
#define SQRT_2_PI 0.79788456080286535588 /* sqrt(2 / pi) */
#define GELU_C 0.044715

static void gelu_erf_f32(float *out, const float *in, size_t n, const void *ctx)
{
    (void)ctx;
    qkv_vm_gelu_f32(out, in, n);
}

static void gelu_erf_f64(double *out, const double *in, size_t n, const void *ctx)
{
    (void)ctx;
    for (size_t j = 0; j < n; j++) {
        double x = in[j];
        out[j] = 0.5 * x * (1.0 + erf(x * SQRT1_2));
    }
}

static void gelu_tanh_f32(float *out, const float *in, size_t n, const void *ctx)
{
    (void)ctx;
    qkv_vm_gelu_tanh_f32(out, in, n);
}

static void gelu_tanh_f64(double *out, const double *in, size_t n, const void *ctx)
{
    (void)ctx;
    for (size_t j = 0; j < n; j++) {
        double x = in[j];
        out[j] = 0.5 * x * (1.0 + tanh(SQRT_2_PI * (x + GELU_C * x * x * x)));
    }
}

static const qkv_float_map map_erf = {gelu_erf_f32, gelu_erf_f64, NULL};
static const qkv_float_map map_tanh = {gelu_tanh_f32, gelu_tanh_f64, NULL};

/* ---- callbacks ------------------------------------------------------------- */

static qkv_status gelu_init(const qkv_kernel *kernel, const qkv_host_api *host,
                            const qkv_node_ctx *node, void **state)
{
    (void)kernel;
    const char *approx;
    qkv_status st = host->attr_string(node, "approximate", "none", &approx);
    if (st != QKV_OK)
        return st;
    bool is_tanh = strcmp(approx, "tanh") == 0;
    if (!is_tanh && strcmp(approx, "none") != 0)
        return NERR(host, node, QKV_ERR_INVALID_MODEL,
                    "attribute approximate='%s' is not 'none' or 'tanh'", approx);
    gelu_state *s = calloc(1, sizeof *s);
    if (!s)
        return NERR(host, node, QKV_ERR_OUT_OF_MEMORY, "kernel state");
    s->tanh_approx = is_tanh;
    *state = s;
    return QKV_OK;
}

static void gelu_destroy(void *state) { free(state); }

static qkv_status gelu_infer(void *state, qkv_kernel_io *io)
{
    (void)state;
    const qkv_tensor *x = &io->inputs[0];
    qkv_set_shape(&io->outputs[0], x->dtype, x->rank, x->dims);
    return QKV_OK;
}

static qkv_status gelu_compute(const void *state, qkv_kernel_io *io)
{
    const gelu_state *s = state;
    return qkv_float_map_run(io, &io->inputs[0], &io->outputs[0],
                             s->tanh_approx ? &map_tanh : &map_erf);
}

static const qkv_kernel kernels[] = {
    {
        QKV_KERNEL_V1,
        .domain = "",
        .op_type = "Gelu",
        .since_version = 20,
        .min_inputs = 1,
        .max_inputs = 1,
        .min_outputs = 1,
        .max_outputs = 1,
        .n_input_types = 1,
        .input_types = {QKV_TYPES_FLOATS | QKV_T(FLOAT16) | QKV_T(BFLOAT16)},
        .flags = QKV_KERNEL_INPLACE,
        .inplace_input = 0,
        .init = gelu_init,
        .infer = gelu_infer,
        .compute = gelu_compute,
        .destroy = gelu_destroy,
    },
};

/* The Gelu descriptor; *count set to 1. */
const qkv_kernel *qkv_ops_gelu(size_t *count)
{
    *count = sizeof kernels / sizeof kernels[0];
    return kernels;
}
