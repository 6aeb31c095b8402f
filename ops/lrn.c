/*
 * lrn.c - LRN, local response normalisation across channels (opsets 1, 13).
 *
 * X is (N, C, D1, ..., Dk), rank >= 2. With size (required, > 0), alpha
 * (1e-4), beta (0.75) and bias (1.0):
 *   square_sum[n, c, d] = sum of X[n, i, d]^2 over the channels
 *       max(0, c - floor((size-1)/2)) <= i <= min(C-1, c + ceil((size-1)/2))
 *   Y[n, c, d] = X[n, c, d] / (bias + alpha / size * square_sum[n, c, d])^beta
 *
 * Numerics: the square sums are accumulated in Y's type (float: at most
 * `size` terms), the power taken in double and each element rounded once.
 * Types: float, double, float16 and bfloat16 (the last two through float32
 * copies of X and Y in scratch). (n, c) planes are split across threads.
 */
#include <math.h>
#include <stdlib.h>

#include "half.h"
#include "kernel_util.h"

#define PAR_MIN_ELEMS ((size_t)1 << 14)

typedef struct lrn_attrs {
    int64_t size;
    double alpha, beta, bias;
} lrn_attrs;

typedef struct lrn_run {
    const void *x; /* (N, C, s) */
    void *y;
    size_t c, s;
    const lrn_attrs *a;
} lrn_run;

#define DEFINE_LRN(SFX, T)                                                                         \
    static void lrn_range_##SFX(void *arg, size_t begin, size_t end)                               \
    {                                                                                              \
        const lrn_run *r = arg;                                                                    \
        const size_t s = r->s, c_n = r->c;                                                         \
        const int64_t lo_off = (r->a->size - 1) / 2, hi_off = r->a->size / 2;                      \
        const double k = r->a->bias, a = r->a->alpha / (double)r->a->size, b = r->a->beta;         \
        for (size_t p = begin; p < end; p++) {                                                     \
            const int64_t c = (int64_t)(p % c_n);                                                  \
            const T *x0 = (const T *)r->x + (p - (size_t)c) * s; /* channel 0 of sample */         \
            const T *x = x0 + (size_t)c * s;                                                       \
            T *restrict y = (T *)r->y + p * s;                                                     \
            int64_t lo = c - lo_off, hi = c + hi_off;                                              \
            lo = lo < 0 ? 0 : lo;                                                                  \
            hi = hi > (int64_t)c_n - 1 ? (int64_t)c_n - 1 : hi;                                    \
            /* y holds the square sums until the last pass */                                      \
            for (size_t i = 0; i < s; i++)                                                         \
                y[i] = 0;                                                                          \
            for (int64_t q = lo; q <= hi; q++) {                                                   \
                const T *restrict xq = x0 + (size_t)q * s;                                         \
                for (size_t i = 0; i < s; i++)                                                     \
                    y[i] += xq[i] * xq[i];                                                         \
            }                                                                                      \
            for (size_t i = 0; i < s; i++)                                                         \
                y[i] = (T)((double)x[i] / pow(k + a * (double)y[i], b));                           \
        }                                                                                          \
    }

DEFINE_LRN(f32, float)
DEFINE_LRN(f64, double)

/* ---- callbacks ----------------------------------------------------------- */

static qkv_status lrn_init(const qkv_kernel *kernel, const qkv_host_api *host,
                           const qkv_node_ctx *node, void **state)
{
    (void)kernel;
    int64_t size;
    float alpha, beta, bias;
    qkv_status st = host->attr_int(node, "size", 0, &size);
    if (st == QKV_OK)
        st = host->attr_float(node, "alpha", 1e-4f, &alpha);
    if (st == QKV_OK)
        st = host->attr_float(node, "beta", 0.75f, &beta);
    if (st == QKV_OK)
        st = host->attr_float(node, "bias", 1.0f, &bias);
    if (st != QKV_OK)
        return st;
    if (host->attr_type(node, "size") == QKV_ATTR_UNDEFINED)
        return NERR(host, node, QKV_ERR_INVALID_MODEL, "attribute size is missing");
    if (size <= 0)
        return NERR(host, node, QKV_ERR_INVALID_MODEL, "attribute size=%lld is not positive",
                    (long long)size);
    lrn_attrs *s = calloc(1, sizeof *s);
    if (!s)
        return NERR(host, node, QKV_ERR_OUT_OF_MEMORY, "kernel state");
    *s = (lrn_attrs){.size = size, .alpha = alpha, .beta = beta, .bias = bias};
    *state = s;
    return QKV_OK;
}

static void lrn_destroy(void *state) { free(state); }

static qkv_status lrn_infer(void *state, qkv_kernel_io *io)
{
    (void)state;
    const qkv_tensor *x = &io->inputs[0];
    qkv_set_shape(&io->outputs[0], x->dtype, x->rank, x->dims);
    if (x->rank >= 0 && x->rank < 2)
        return KERR(io, QKV_ERR_SHAPE, "input 0 'X' has rank %d, expected >= 2 (N, C, ...)",
                    x->rank);
    return QKV_OK;
}

/* float16/bfloat16: float32 copies of the inputs and Y in scratch. */
static qkv_status lrn_prepare(void *state, qkv_kernel_io *io)
{
    (void)state;
    size_t bytes = 0;
    if (qkv_is_half(io->inputs[0].dtype) && !qkv_half_scratch_bytes(io, 0, &bytes))
        return KERR(io, QKV_ERR_UNSUPPORTED, "input 0 'X' too large for its float32 copy");
    io->scratch_bytes = bytes;
    return QKV_OK;
}

/* float or double */
static qkv_status lrn_compute_float(const void *state, qkv_kernel_io *io)
{
    const qkv_tensor *x = &io->inputs[0];
    if (x->rank < 2)
        return KERR(io, QKV_ERR_SHAPE, "input 0 'X' has rank %d, expected >= 2", x->rank);
    size_t n = qkv_numel(x);
    lrn_run r = {
        .x = x->data, .y = io->outputs[0].data, .c = (size_t)x->dims[1], .s = 1, .a = state};
    for (int32_t k = 2; k < x->rank; k++)
        r.s *= (size_t)x->dims[k];
    if (n == 0)
        return QKV_OK;
    qkv_range_fn fn;
    switch (x->dtype) {
    case QKV_DTYPE_FLOAT:
        fn = lrn_range_f32;
        break;
    case QKV_DTYPE_DOUBLE:
        fn = lrn_range_f64;
        break;
    default:
        return KERR(io, QKV_ERR_TYPE, "input 0 'X' has type %s, not supported",
                    io->host->dtype_name(x->dtype));
    }
    size_t planes = (size_t)x->dims[0] * r.c;
    if (planes > 1 && n >= PAR_MIN_ELEMS)
        io->host->parallel_for(io->host_ctx, planes, fn, &r);
    else
        fn(&r, 0, planes);
    return QKV_OK;
}

/* float16/bfloat16 through float32 copies (half.h). */
static qkv_status lrn_compute(const void *state, qkv_kernel_io *io)
{
    if (qkv_is_half(io->inputs[0].dtype))
        return qkv_half_run_as_f32(state, io, 0, lrn_compute_float);
    return lrn_compute_float(state, io);
}

#define LRN_KERNEL(SINCE, UNTIL)                                                                   \
    {                                                                                              \
        QKV_KERNEL_V1, .domain = "", .op_type = "LRN", .since_version = (SINCE),                   \
                       .until_version = (UNTIL), .min_inputs = 1, .max_inputs = 1,                 \
                       .min_outputs = 1, .max_outputs = 1, .n_input_types = 1,                     \
                       .input_types = {QKV_TYPES_FLOATS | QKV_T(FLOAT16) | QKV_T(BFLOAT16)},       \
                       .init = lrn_init, .infer = lrn_infer, .prepare = lrn_prepare,               \
                       .compute = lrn_compute, .destroy = lrn_destroy,                             \
    }

static const qkv_kernel kernels[] = {
    LRN_KERNEL(1, 12),
    LRN_KERNEL(13, 0),
};

/* The LRN descriptors (opsets 1 and 13); *count set to 2. */
const qkv_kernel *qkv_ops_lrn(size_t *count)
{
    *count = sizeof kernels / sizeof kernels[0];
    return kernels;
}
