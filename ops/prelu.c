/*
 * prelu.c - PRelu (opsets 7; 9 adding integers; 16 adding bfloat16):
 * y = x < 0 ? slope * x : x, slope broadcast unidirectionally to x.
 *
 * Types: float, double, float16 and bfloat16 (computed in float32 and
 * rounded once); int32, int64, uint32 and uint64 from opset 9 (integer
 * products wrap; unsigned values are never negative, so y = x). May write
 * over its input 0 (in place).
 */
#include <string.h>

#include "elementwise.h"
#include "kernel_util.h"
#include "qkv.h"

typedef struct prelu_ctx {
    qkv_dtype half; /* FLOAT16/BFLOAT16 when computing through float32 */
} prelu_ctx;

/* Engine rows: y[j] = x < 0 ? s * x : x with x = in[0][j * step[0]],
 * s = in[1][j * step[1]]; MUL(s, x) is the product in T. */
#define PRELU_ROW(name, T, MUL)                                                                    \
    static void name(void *out, const void *const *in, const unsigned *step, size_t n,             \
                     const void *ctx)                                                              \
    {                                                                                              \
        (void)ctx;                                                                                 \
        const T *x = in[0], *sl = in[1];                                                           \
        T *y = out;                                                                                \
        for (size_t j = 0; j < n; j++) {                                                           \
            T v = x[j * step[0]], s = sl[j * step[1]];                                             \
            y[j] = v < 0 ? MUL(s, v) : v;                                                          \
        }                                                                                          \
    }
#define FMUL(a, b) ((a) * (b))
/* two's complement wrap through the unsigned type, never signed overflow */
#define I32MUL(a, b) ((int32_t)((uint32_t)(a) * (uint32_t)(b)))
#define I64MUL(a, b) ((int64_t)((uint64_t)(a) * (uint64_t)(b)))
PRELU_ROW(prelu_row_f32, float, FMUL)
PRELU_ROW(prelu_row_f64, double, FMUL)
PRELU_ROW(prelu_row_i32, int32_t, I32MUL)
PRELU_ROW(prelu_row_i64, int64_t, I64MUL)

/* unsigned values are never negative: y = x */
static void prelu_row_copy(void *out, const void *const *in, const unsigned *step, size_t n,
                           const void *ctx)
{
    size_t es = *(const size_t *)ctx;
    if (step[0])
        memmove(out, in[0], n * es);
    else
        for (size_t j = 0; j < n; j++)
            memcpy((char *)out + j * es, in[0], es);
}

static void prelu_row_half(void *out, const void *const *in, const unsigned *step, size_t n,
                           const void *ctx)
{
    const prelu_ctx *c = ctx;
    const uint16_t *x = in[0], *sl = in[1];
    float tx[QKV_HALF_CHUNK], ts[QKV_HALF_CHUNK];
    for (size_t j0 = 0; j0 < n; j0 += QKV_HALF_CHUNK) {
        size_t m = n - j0 < QKV_HALF_CHUNK ? n - j0 : QKV_HALF_CHUNK;
        qkv_half_to_f32(tx, x + j0 * step[0], c->half, step[0] ? m : 1);
        qkv_half_to_f32(ts, sl + j0 * step[1], c->half, step[1] ? m : 1);
        float ty[QKV_HALF_CHUNK];
        for (size_t j = 0; j < m; j++) {
            float v = tx[j * step[0]];
            ty[j] = v < 0 ? ts[j * step[1]] * v : v;
        }
        qkv_f32_to_half((uint16_t *)out + j0, ty, c->half, m);
    }
}

static qkv_status prelu_infer(void *state, qkv_kernel_io *io)
{
    (void)state;
    const qkv_tensor *x = &io->inputs[0], *s = &io->inputs[1];
    qkv_tensor *y = &io->outputs[0];
    if (s->dtype != x->dtype)
        return KERR(io, QKV_ERR_TYPE, "input 1 'slope' is %s but input 0 'X' is %s",
                    qkv_dtype_name(s->dtype), qkv_dtype_name(x->dtype));
    qkv_set_shape(y, x->dtype, x->rank, x->dims);
    if (x->rank < 0 || s->rank < 0)
        return QKV_OK;
    /* unidirectional: slope's dims (aligned right) are 1 or x's */
    char a[96], b[96];
    bool ok = s->rank <= x->rank;
    for (int32_t i = 0; ok && i < s->rank; i++) {
        int64_t sd = s->dims[i], xd = x->dims[x->rank - s->rank + i];
        ok = sd == 1 || sd < 0 || xd < 0 || sd == xd;
    }
    if (!ok)
        return KERR(io, QKV_ERR_SHAPE,
                    "input 1 'slope' %s does not broadcast (unidirectionally) to input 0 'X' %s",
                    qkv_dims_str(s, a, sizeof a), qkv_dims_str(x, b, sizeof b));
    return QKV_OK;
}

static qkv_status prelu_compute(const void *state, qkv_kernel_io *io)
{
    (void)state;
    const qkv_tensor *x = &io->inputs[0], *s = &io->inputs[1];
    qkv_tensor *y = &io->outputs[0];
    size_t es = qkv_ew_elem_bytes(x->dtype);
    prelu_ctx c = {.half = QKV_DTYPE_UNDEFINED};
    const void *ctx = &c;
    qkv_ew_row_fn row;
    switch (x->dtype) {
    case QKV_DTYPE_FLOAT:
        row = prelu_row_f32;
        break;
    case QKV_DTYPE_DOUBLE:
        row = prelu_row_f64;
        break;
    case QKV_DTYPE_INT32:
        row = prelu_row_i32;
        break;
    case QKV_DTYPE_INT64:
        row = prelu_row_i64;
        break;
    case QKV_DTYPE_UINT32:
    case QKV_DTYPE_UINT64:
        row = prelu_row_copy;
        ctx = &es;
        break;
    case QKV_DTYPE_FLOAT16:
    case QKV_DTYPE_BFLOAT16:
        row = prelu_row_half;
        c.half = x->dtype;
        break;
    default:
        return KERR(io, QKV_ERR_TYPE, "input 0 'X' has type %s, not supported",
                    qkv_dtype_name(x->dtype));
    }
    const qkv_tensor *ins[2] = {x, s};
    qkv_ew_plan plan;
    qkv_ew_plan_init(&plan, y, ins, 2);
    const void *data[2] = {x->data, s->data};
    const size_t in_elem[2] = {es, es};
    qkv_ew_run(io, &plan, y->data, es, data, in_elem, row, ctx);
    return QKV_OK;
}

/* ---- descriptors ------------------------------------------------------------- */

#define T_FLOAT (QKV_TYPES_FLOATS | QKV_T(FLOAT16) | QKV_T(BFLOAT16))
#define T_FLOAT_NO_BF16 (QKV_TYPES_FLOATS | QKV_T(FLOAT16))
#define PRELU_INTS (QKV_T(INT32) | QKV_T(INT64) | QKV_T(UINT32) | QKV_T(UINT64))

#define PRELU_KERNEL(since, until, types)                                                          \
    {                                                                                              \
        QKV_KERNEL_V1, .domain = "", .op_type = "PRelu", .since_version = (since),                 \
                       .until_version = (until), .min_inputs = 2, .max_inputs = 2,                 \
                       .min_outputs = 1, .max_outputs = 1, .n_input_types = 1,                     \
                       .input_types = {types}, .flags = QKV_KERNEL_INPLACE, .inplace_input = 0,    \
                       .infer = prelu_infer, .compute = prelu_compute,                             \
    }

static const qkv_kernel kernels[] = {
    PRELU_KERNEL(7, 8, T_FLOAT_NO_BF16),
    PRELU_KERNEL(9, 15, T_FLOAT_NO_BF16 | PRELU_INTS),
    PRELU_KERNEL(16, 0, T_FLOAT | PRELU_INTS),
};

/* The descriptors of this family; *count set to their number. */
const qkv_kernel *qkv_ops_prelu(size_t *count)
{
    *count = sizeof kernels / sizeof kernels[0];
    return kernels;
}
