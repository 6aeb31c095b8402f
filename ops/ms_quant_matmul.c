/*
 * ms_quant_matmul.c - com.microsoft.DynamicQuantizeMatMul (since 1), the
 * MatMul that ONNX Runtime's quantize_dynamic writes for a float activation
 * times a quantized weight:
 *
 *   a_scale, a_zero = the uint8 quantization of A's range [min(A, 0), max(A, 0)]
 *   A_q = saturate(round_half_even(A / a_scale) + a_zero)            (uint8)
 *   Y = (A_q - a_zero) @ (B - b_zero_point) * (a_scale * b_scale) + bias
 *
 * A is float32 (..., M, K), every leading dim folded into M (rank 1: Y loses
 * that dim); B uint8 or int8 (K, N); b_scale float32 and b_zero_point (B's
 * type, optional) are scalars (or 1 element) or per column (N); bias float32
 * (N), optional. a_scale is (max - min) / 255 (1 when the range is empty)
 * and a_zero round_half_even(-min / a_scale) clamped to [0, 255], as ORT's
 * CPU kernel computes them, so A_q and the integer products are ORT's
 * exactly; only the float epilogue may round differently.
 *
 * The product runs on igemm.h's integer GEMM (VNNI where the CPU has it)
 * with a constant B packed once at session creation; the scale and bias are
 * applied to each block of Y as it completes (ms_dequant.h, shared with
 * QAttention). Scratch: A_q, M * K bytes. A
 * B of another rank, or a B batch, is QKV_ERR_UNSUPPORTED; scales or zero
 * points of another shape QKV_ERR_SHAPE.
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "igemm.h"
#include "kernel_util.h"
#include "ms_dequant.h"

enum { IN_A, IN_B, IN_B_SCALE, IN_B_ZERO, IN_BIAS };

typedef struct dqmm_state {
    qkv_igemm_packed_b b; /* B packed by prepack; data NULL: read as it comes */
} dqmm_state;

static qkv_status dqmm_init(const qkv_kernel *kernel, const qkv_host_api *host,
                            const qkv_node_ctx *node, void **state)
{
    (void)kernel;
    dqmm_state *s = calloc(1, sizeof *s);
    if (!s)
        return NERR(host, node, QKV_ERR_OUT_OF_MEMORY, "kernel state");
    *state = s;
    return QKV_OK;
}

static qkv_status dqmm_prepack(void **state, const qkv_host_api *host, const qkv_node_ctx *node)
{
    dqmm_state *s = *state;
    return qkv_igemm_prepack_b(host, node, IN_B, false, &s->b);
}

static void dqmm_destroy(void *state)
{
    dqmm_state *s = state;
    if (s)
        qkv_igemm_packed_free(&s->b);
    free(s);
}

/* Input k is a scalar, one element, or (n) when per_column (n -1: unknown). */
static qkv_status check_param(qkv_kernel_io *io, size_t k, const char *name, int64_t n)
{
    if (!qkv_present(io, k) || io->inputs[k].rank < 0)
        return QKV_OK;
    const qkv_tensor *t = &io->inputs[k];
    char buf[96];
    bool ok = t->rank == 0 ||
              (t->rank == 1 && (t->dims[0] < 0 || t->dims[0] == 1 || n < 0 || t->dims[0] == n));
    if (!ok)
        return KERR(io, QKV_ERR_SHAPE,
                    "input %zu '%s' has shape %s, expected a scalar or (N) = "
                    "(%lld)",
                    k, name, qkv_dims_str(t, buf, sizeof buf), (long long)n);
    return QKV_OK;
}

static qkv_status dqmm_infer(void *state, qkv_kernel_io *io)
{
    (void)state;
    const qkv_tensor *a = &io->inputs[IN_A], *b = &io->inputs[IN_B];
    qkv_tensor *y = &io->outputs[0];
    char as[96], bs[96];
    y->dtype = QKV_DTYPE_FLOAT;
    y->rank = -1;
    if (b->rank >= 0 && b->rank != 2)
        return KERR(io, QKV_ERR_UNSUPPORTED,
                    "input 1 'B' has shape %s; only a 2-D (K, N) B is "
                    "supported",
                    qkv_dims_str(b, bs, sizeof bs));
    if (qkv_present(io, IN_B_ZERO) && io->inputs[IN_B_ZERO].dtype != b->dtype)
        return KERR(io, QKV_ERR_TYPE, "input 3 'b_zero_point' has type %s, input 1 'B' %s",
                    io->host->dtype_name(io->inputs[IN_B_ZERO].dtype),
                    io->host->dtype_name(b->dtype));
    int64_t n = b->rank == 2 ? b->dims[1] : -1;
    qkv_status st = check_param(io, IN_B_SCALE, "b_scale", n);
    if (st == QKV_OK)
        st = check_param(io, IN_B_ZERO, "b_zero_point", n);
    if (st == QKV_OK && qkv_present(io, IN_BIAS)) {
        const qkv_tensor *bias = &io->inputs[IN_BIAS];
        if (bias->rank >= 0 &&
            (bias->rank != 1 || (bias->dims[0] >= 0 && n >= 0 && bias->dims[0] != n)))
            st = KERR(io, QKV_ERR_SHAPE, "input 4 'bias' has shape %s, expected (N) = (%lld)",
                      qkv_dims_str(bias, bs, sizeof bs), (long long)n);
    }
    if (st != QKV_OK || a->rank < 0)
        return st;
    if (a->rank == 0)
        return KERR(io, QKV_ERR_SHAPE, "input 0 'A' is a scalar; expected rank >= 1");
    int64_t k = a->dims[a->rank - 1];
    if (b->rank == 2 && k >= 0 && b->dims[0] >= 0 && k != b->dims[0])
        return KERR(io, QKV_ERR_SHAPE, "A %s and B %s: K differs (%lld vs %lld)",
                    qkv_dims_str(a, as, sizeof as), qkv_dims_str(b, bs, sizeof bs), (long long)k,
                    (long long)b->dims[0]);
    int64_t dims[QKV_MAX_RANK];
    memcpy(dims, a->dims, sizeof dims);
    dims[a->rank - 1] = n;
    qkv_set_shape(y, QKV_DTYPE_FLOAT, a->rank, dims);
    return QKV_OK;
}

/* (m, k, n) of the product: A's leading dims folded into m. */
static void dqmm_dims(const qkv_kernel_io *io, size_t *m, size_t *k, size_t *n)
{
    const qkv_tensor *a = &io->inputs[IN_A];
    *k = (size_t)a->dims[a->rank - 1];
    *n = (size_t)io->inputs[IN_B].dims[1];
    *m = 1;
    for (int32_t j = 0; j + 1 < a->rank; j++)
        *m *= (size_t)a->dims[j];
}

static qkv_status dqmm_prepare(void *state, qkv_kernel_io *io)
{
    const dqmm_state *s = state;
    size_t m, k, n, bytes;
    dqmm_dims(io, &m, &k, &n);
    if (s->b.data && (s->b.k != k || s->b.n != n))
        return KERR(io, QKV_ERR_INTERNAL,
                    "input 1 'B' was packed as (%zu, %zu) but the plan "
                    "multiplies by (%zu, %zu)",
                    s->b.k, s->b.n, k, n);
    if (__builtin_mul_overflow(m, k, &bytes))
        return KERR(io, QKV_ERR_SHAPE, "quantized A of %zu x %zu bytes overflows", m, k);
    io->scratch_bytes = bytes;
    return QKV_OK;
}

/* The uint8 quantization parameters of x's range, as ORT computes them. */
static void dynamic_params(const float *x, size_t n, float *scale, uint8_t *zero)
{
    float lo = 0, hi = 0; /* the range always includes zero */
    for (size_t i = 0; i < n; i++) {
        lo = x[i] < lo ? x[i] : lo;
        hi = x[i] > hi ? x[i] : hi;
    }
    *scale = hi == lo ? 1.0f : (hi - lo) / 255.0f;
    float z = 0.0f - lo / *scale;
    z = z < 0 ? 0 : z > 255 ? 255 : z;
    *zero = (uint8_t)nearbyintf(z); /* the default rounding mode: half to even */
}

typedef struct quant_job {
    const float *x;
    uint8_t *q;
    size_t n;
    float scale, zero;
} quant_job;

#define QUANT_CHUNK 16384

static void quant_range(void *arg, size_t begin, size_t end)
{
    const quant_job *j = arg;
    size_t stop = end * QUANT_CHUNK < j->n ? end * QUANT_CHUNK : j->n;
    for (size_t i = begin * QUANT_CHUNK; i < stop; i++) {
        float v = nearbyintf(j->x[i] / j->scale) + j->zero;
        v = v < 0 ? 0 : v > 255 ? 255 : v; /* NaN stays NaN: the cast below is then 0 */
        j->q[i] = v == v ? (uint8_t)v : 0;
    }
}

void qkv_ms_dequant_block(const void *arg, size_t batch, int32_t *c, size_t ldc, size_t row0,
                          size_t col0, size_t rows, size_t cols)
{
    const qkv_ms_dequant *j = arg;
    (void)batch;
    (void)row0;
    for (size_t i = 0; i < rows; i++)
        for (size_t c0 = 0; c0 < cols; c0++) {
            size_t col = col0 + c0;
            float sc = j->a_scale * j->b_scale[j->per_column ? col : 0];
            float v = (float)c[i * ldc + c0] * sc + (j->bias ? j->bias[col] : 0.0f);
            memcpy(&c[i * ldc + c0], &v, sizeof v); /* the float result's own bytes */
        }
}

static qkv_status dqmm_compute(const void *state, qkv_kernel_io *io)
{
    const dqmm_state *s = state;
    size_t m, k, n;
    dqmm_dims(io, &m, &k, &n);
    if (m == 0 || n == 0)
        return QKV_OK;
    const qkv_tensor *bs = &io->inputs[IN_B_SCALE];
    qkv_ms_dequant sj = {.b_scale = bs->data,
                         .per_column = qkv_numel(bs) > 1,
                         .bias = qkv_present(io, IN_BIAS) ? io->inputs[IN_BIAS].data : NULL};
    uint8_t a_zero;
    quant_job qj = {.x = io->inputs[IN_A].data, .q = io->scratch, .n = m * k};
    dynamic_params(qj.x, qj.n, &qj.scale, &a_zero);
    qj.zero = a_zero;
    sj.a_scale = qj.scale;
    qkv_run_range(io, (qj.n + QUANT_CHUNK - 1) / QUANT_CHUNK, qj.n, quant_range, &qj);

    const qkv_tensor *b = &io->inputs[IN_B];
    qkv_igemm g = {.m = m,
                   .n = n,
                   .k = k,
                   .a = qj.q,
                   .lda = k,
                   .b = b->data,
                   .ldb = n,
                   .b_signed = b->dtype == QKV_DTYPE_INT8,
                   .c = io->outputs[0].data,
                   .ldc = n,
                   .a_zero = &a_zero};
    if (qkv_present(io, IN_B_ZERO)) {
        g.b_zero = io->inputs[IN_B_ZERO].data;
        g.b_zero_stride = qkv_numel(&io->inputs[IN_B_ZERO]) > 1 ? 1 : 0;
    }
    qkv_igemm_post post = {.fn = qkv_ms_dequant_block, .arg = &sj};
    const qkv_igemm_arch *arch =
        s->b.data ? s->b.arch : qkv_igemm_arch_select(io->host->cpu_features());
    qkv_igemm_run(io->host, io->host_ctx, arch, &g, s->b.data ? &s->b : NULL, &post);
    return QKV_OK;
}

static const qkv_kernel kernels[] = {
    {
        QKV_KERNEL_V1,
        .domain = "com.microsoft",
        .op_type = "DynamicQuantizeMatMul",
        .since_version = 1,
        .min_inputs = 3,
        .max_inputs = 5,
        .min_outputs = 1,
        .max_outputs = 1,
        .n_input_types = 5,
        .input_types = {QKV_T(FLOAT), QKV_T(UINT8) | QKV_T(INT8), QKV_T(FLOAT),
                        QKV_T(UINT8) | QKV_T(INT8), QKV_T(FLOAT)},
        .init = dqmm_init,
        .prepack = dqmm_prepack,
        .infer = dqmm_infer,
        .prepare = dqmm_prepare,
        .compute = dqmm_compute,
        .destroy = dqmm_destroy,
    },
};

/* The com.microsoft.DynamicQuantizeMatMul descriptor; *count set to 1. */
const qkv_kernel *qkv_ops_ms_quant_matmul(size_t *count)
{
    *count = sizeof kernels / sizeof kernels[0];
    return kernels;
}
