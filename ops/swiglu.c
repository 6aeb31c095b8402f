/*
 * swiglu.c - SwiGLU (provisional opset 28, as in the ONNX test data of
 * 2026-08: test_swiglu*): y = Swish(a, alpha) * b = a * sigmoid(alpha a) * b,
 * alpha default 1.
 *
 * a and b have the same type and broadcast multidirectionally (numpy), as
 * the function body's Mul does; y has the broadcast shape. Types: float,
 * double, float16 and bfloat16 (the last two computed in float32 and rounded
 * once, where the function body rounds after each op). Output 0 may share
 * input 0's buffer.
 */
#include <math.h>
#include <stdlib.h>

#include "elementwise.h"
#include "kernel_util.h"
#include "qkv.h"

typedef struct swiglu_ctx {
    float alpha;
    qkv_dtype half; /* FLOAT16/BFLOAT16 when computing through float32 */
} swiglu_ctx;

/* a * sigmoid(alpha a) * b; see swish.c for why nothing overflows. */
static inline float swiglu1_f32(float a, float b, float alpha)
{
    return a / (1.0f + expf(-alpha * a)) * b;
}

static inline double swiglu1_f64(double a, double b, double alpha)
{
    return a / (1.0 + exp(-alpha * a)) * b;
}

/* Engine rows: in[k] advances by step[k] (0 or 1) per element. */
static void swiglu_row_f32(void *out, const void *const *in, const unsigned *step, size_t n,
                           const void *ctx)
{
    const swiglu_ctx *c = ctx;
    const float *a = in[0], *b = in[1];
    float *y = out;
    for (size_t j = 0; j < n; j++)
        y[j] = swiglu1_f32(a[j * step[0]], b[j * step[1]], c->alpha);
}

static void swiglu_row_f64(void *out, const void *const *in, const unsigned *step, size_t n,
                           const void *ctx)
{
    const swiglu_ctx *c = ctx;
    const double *a = in[0], *b = in[1];
    double *y = out;
    for (size_t j = 0; j < n; j++)
        y[j] = swiglu1_f64(a[j * step[0]], b[j * step[1]], c->alpha);
}

/* float16/bfloat16: a chunk of each operand to float32 (one element for a
 * broadcast operand), the float row, back. */
static void swiglu_row_half(void *out, const void *const *in, const unsigned *step, size_t n,
                            const void *ctx)
{
    const swiglu_ctx *c = ctx;
    const uint16_t *a = in[0], *b = in[1];
    float ta[QKV_HALF_CHUNK], tb[QKV_HALF_CHUNK], ty[QKV_HALF_CHUNK];
    for (size_t j0 = 0; j0 < n; j0 += QKV_HALF_CHUNK) {
        size_t m = n - j0 < QKV_HALF_CHUNK ? n - j0 : QKV_HALF_CHUNK;
        qkv_half_to_f32(ta, a + j0 * step[0], c->half, step[0] ? m : 1);
        qkv_half_to_f32(tb, b + j0 * step[1], c->half, step[1] ? m : 1);
        for (size_t j = 0; j < m; j++)
            ty[j] = swiglu1_f32(ta[j * step[0]], tb[j * step[1]], c->alpha);
        qkv_f32_to_half((uint16_t *)out + j0, ty, c->half, m);
    }
}

/* ---- callbacks ------------------------------------------------------------- */

static qkv_status swiglu_init(const qkv_kernel *kernel, const qkv_host_api *host,
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

static void swiglu_destroy(void *state) { free(state); }

static qkv_status swiglu_infer(void *state, qkv_kernel_io *io)
{
    (void)state;
    const qkv_tensor *a = &io->inputs[0], *b = &io->inputs[1];
    if (a->dtype != b->dtype)
        return KERR(io, QKV_ERR_TYPE, "input 1 'b' is %s but input 0 'a' is %s: they must match",
                    qkv_dtype_name(b->dtype), qkv_dtype_name(a->dtype));
    const qkv_tensor *ins[2] = {a, b};
    io->outputs[0].dtype = a->dtype;
    return qkv_broadcast_shapes(io, ins, 2, &io->outputs[0]);
}

static qkv_status swiglu_compute(const void *state, qkv_kernel_io *io)
{
    const qkv_tensor *a = &io->inputs[0], *b = &io->inputs[1];
    qkv_tensor *y = &io->outputs[0];
    swiglu_ctx c = {.alpha = *(const float *)state, .half = QKV_DTYPE_UNDEFINED};
    qkv_ew_row_fn row;
    switch (a->dtype) {
    case QKV_DTYPE_FLOAT:
        row = swiglu_row_f32;
        break;
    case QKV_DTYPE_DOUBLE:
        row = swiglu_row_f64;
        break;
    case QKV_DTYPE_FLOAT16:
    case QKV_DTYPE_BFLOAT16:
        row = swiglu_row_half;
        c.half = a->dtype;
        break;
    default:
        return KERR(io, QKV_ERR_TYPE, "input 0 'a' has type %s, not supported",
                    qkv_dtype_name(a->dtype));
    }
    const qkv_tensor *ins[2] = {a, b};
    qkv_ew_plan plan;
    qkv_ew_plan_init(&plan, y, ins, 2);
    size_t es = qkv_ew_elem_bytes(a->dtype);
    const void *data[2] = {a->data, b->data};
    const size_t in_elem[2] = {es, es};
    qkv_ew_run(io, &plan, y->data, es, data, in_elem, row, &c);
    return QKV_OK;
}

static const qkv_kernel kernels[] = {
    {
        QKV_KERNEL_V1,
        .domain = "",
        .op_type = "SwiGLU",
        .since_version = 28,
        .min_inputs = 2,
        .max_inputs = 2,
        .min_outputs = 1,
        .max_outputs = 1,
        .n_input_types = 1,
        .input_types = {QKV_TYPES_FLOATS | QKV_T(FLOAT16) | QKV_T(BFLOAT16)},
        .flags = QKV_KERNEL_INPLACE,
        .inplace_input = 0,
        .init = swiglu_init,
        .infer = swiglu_infer,
        .compute = swiglu_compute,
        .destroy = swiglu_destroy,
    },
};

/* The SwiGLU descriptor; *count set to 1. */
const qkv_kernel *qkv_ops_swiglu(size_t *count)
{
    *count = sizeof kernels / sizeof kernels[0];
    return kernels;
}
