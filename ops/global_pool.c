/*
 * global_pool.c - GlobalAveragePool, GlobalMaxPool (opsets 1, 22) and
 * GlobalLpPool (opsets 1, 2, 22).
 *
 * X is (N, C, D1, ..., Dk), rank >= 2; each (n, c) plane of S = D1*...*Dk
 * elements becomes one value and Y is (N, C, 1, ..., 1):
 *   GlobalAveragePool: the mean of the plane;
 *   GlobalMaxPool:     its maximum (NaN if the plane holds a NaN);
 *   GlobalLpPool:      (sum |x|^p)^(1/p), p an attribute (default 2; a float
 *                      at opset 1, an int from opset 2; p <= 0 is refused).
 * Rank 2 (no spatial dims) makes each plane its single element. A plane with
 * no elements (some Di = 0) is QKV_ERR_SHAPE: it has no mean or maximum.
 *
 * Numerics: sums are accumulated in double and rounded once. Types: float,
 * double, float16 and bfloat16 (the last two through a float32 copy in
 * scratch). Planes are split across threads.
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "half.h"
#include "kernel_util.h"

#define PAR_MIN_ELEMS ((size_t)1 << 15)

typedef enum gp_kind { GP_AVG, GP_MAX, GP_LP } gp_kind;

typedef struct gp_attrs {
    gp_kind kind;
    double p; /* GlobalLpPool's exponent */
} gp_attrs;

typedef struct gp_run {
    const void *x; /* (planes, s) */
    void *y;       /* (planes) */
    size_t s;
    const gp_attrs *a;
} gp_run;

/* (sum |x|^p)^(1/p) of n values; p 1 and 2 without pow. */
#define DEFINE_LP_NORM(SFX, T)                                                                     \
    static T lp_norm_##SFX(const T *x, size_t n, double p)                                         \
    {                                                                                              \
        double sum = 0;                                                                            \
        if (p == 1.0) {                                                                            \
            for (size_t i = 0; i < n; i++)                                                         \
                sum += fabs((double)x[i]);                                                         \
            return (T)sum;                                                                         \
        }                                                                                          \
        if (p == 2.0) {                                                                            \
            for (size_t i = 0; i < n; i++)                                                         \
                sum += (double)x[i] * (double)x[i];                                                \
            return (T)sqrt(sum);                                                                   \
        }                                                                                          \
        for (size_t i = 0; i < n; i++)                                                             \
            sum += pow(fabs((double)x[i]), p);                                                     \
        return (T)pow(sum, 1.0 / p);                                                               \
    }

/* The maximum of n >= 1 values; NaN wins (once m is NaN, no v > m). */
#define DEFINE_MAX(SFX, T)                                                                         \
    static T max_##SFX(const T *x, size_t n)                                                       \
    {                                                                                              \
        T m = x[0];                                                                                \
        for (size_t i = 1; i < n; i++)                                                             \
            if (x[i] > m || x[i] != x[i])                                                          \
                m = x[i];                                                                          \
        return m;                                                                                  \
    }

#define DEFINE_GP(SFX, T)                                                                          \
    DEFINE_LP_NORM(SFX, T)                                                                         \
    DEFINE_MAX(SFX, T)                                                                             \
    static void gp_range_##SFX(void *arg, size_t begin, size_t end)                                \
    {                                                                                              \
        const gp_run *r = arg;                                                                     \
        const size_t s = r->s;                                                                     \
        T *y = r->y;                                                                               \
        for (size_t p = begin; p < end; p++) {                                                     \
            const T *x = (const T *)r->x + p * s;                                                  \
            switch (r->a->kind) {                                                                  \
            case GP_AVG: {                                                                         \
                double sum = 0;                                                                    \
                for (size_t i = 0; i < s; i++)                                                     \
                    sum += x[i];                                                                   \
                y[p] = (T)(sum / (double)s);                                                       \
                break;                                                                             \
            }                                                                                      \
            case GP_MAX:                                                                           \
                y[p] = max_##SFX(x, s);                                                            \
                break;                                                                             \
            case GP_LP:                                                                            \
                y[p] = lp_norm_##SFX(x, s, r->a->p);                                               \
                break;                                                                             \
            }                                                                                      \
        }                                                                                          \
    }

DEFINE_GP(f32, float)
DEFINE_GP(f64, double)

/* ---- callbacks ----------------------------------------------------------- */

static qkv_status gp_init(const qkv_kernel *kernel, const qkv_host_api *host,
                          const qkv_node_ctx *node, void **state)
{
    gp_kind kind = strcmp(kernel->op_type, "GlobalAveragePool") == 0 ? GP_AVG
                   : strcmp(kernel->op_type, "GlobalMaxPool") == 0   ? GP_MAX
                                                                     : GP_LP;
    double p = 2;
    if (kind == GP_LP) {
        qkv_status st;
        if (host->node_opset(node) < 2) {
            float pf;
            st = host->attr_float(node, "p", 2.0f, &pf);
            p = pf;
        } else {
            int64_t pi;
            st = host->attr_int(node, "p", 2, &pi);
            p = (double)pi;
        }
        if (st != QKV_OK)
            return st;
        if (!(p > 0))
            return NERR(host, node, QKV_ERR_INVALID_MODEL,
                        "attribute p=%g is not positive (the norm's exponent)", p);
    }
    gp_attrs *s = calloc(1, sizeof *s);
    if (!s)
        return NERR(host, node, QKV_ERR_OUT_OF_MEMORY, "kernel state");
    s->kind = kind;
    s->p = p;
    *state = s;
    return QKV_OK;
}

static void gp_destroy(void *state) { free(state); }

static qkv_status gp_infer(void *state, qkv_kernel_io *io)
{
    (void)state;
    const qkv_tensor *x = &io->inputs[0];
    qkv_tensor *y = &io->outputs[0];
    qkv_set_shape(y, x->dtype, x->rank, x->dims);
    if (x->rank < 0)
        return QKV_OK;
    if (x->rank < 2)
        return KERR(io, QKV_ERR_SHAPE, "input 0 'X' has rank %d, expected >= 2 (N, C, ...)",
                    x->rank);
    for (int32_t k = 2; k < x->rank; k++) {
        if (x->dims[k] == 0) {
            char a[96];
            return KERR(io, QKV_ERR_SHAPE,
                        "input 0 'X' has shape %s: an empty spatial dim leaves nothing to pool",
                        qkv_dims_str(x, a, sizeof a));
        }
        y->dims[k] = 1;
    }
    return QKV_OK;
}

/* float16/bfloat16: float32 copies of X and Y in scratch. */
static qkv_status gp_prepare(void *state, qkv_kernel_io *io)
{
    (void)state;
    const qkv_tensor *x = &io->inputs[0];
    io->scratch_bytes = 0;
    if (qkv_is_half(x->dtype))
        io->scratch_bytes = (qkv_numel(x) + qkv_numel(&io->outputs[0])) * sizeof(float);
    return QKV_OK;
}

static qkv_status gp_compute(const void *state, qkv_kernel_io *io)
{
    const qkv_tensor *x = &io->inputs[0];
    qkv_tensor *y = &io->outputs[0];
    gp_run r = {.x = x->data, .y = y->data, .a = state};
    size_t planes = qkv_numel(y), n = qkv_numel(x);
    if (planes == 0)
        return QKV_OK;
    r.s = n / planes;
    qkv_range_fn fn;
    switch (x->dtype) {
    case QKV_DTYPE_FLOAT:
        fn = gp_range_f32;
        break;
    case QKV_DTYPE_DOUBLE:
        fn = gp_range_f64;
        break;
    case QKV_DTYPE_FLOAT16:
    case QKV_DTYPE_BFLOAT16:
        fn = gp_range_f32;
        r.x = io->scratch;
        r.y = (float *)io->scratch + n;
        qkv_half_to_f32_par(io, io->scratch, x->data, x->dtype, n);
        break;
    default:
        return KERR(io, QKV_ERR_TYPE, "input 0 'X' has type %s, not supported",
                    io->host->dtype_name(x->dtype));
    }
    if (planes > 1 && n >= PAR_MIN_ELEMS)
        io->host->parallel_for(io->host_ctx, planes, fn, &r);
    else
        fn(&r, 0, planes);
    if (qkv_is_half(x->dtype))
        qkv_f32_to_half_par(io, y->data, r.y, x->dtype, planes);
    return QKV_OK;
}

#define GP_KERNEL(OP, SINCE, UNTIL)                                                                \
    {                                                                                              \
        QKV_KERNEL_V1, .domain = "", .op_type = (OP), .since_version = (SINCE),                    \
                       .until_version = (UNTIL), .min_inputs = 1, .max_inputs = 1,                 \
                       .min_outputs = 1, .max_outputs = 1, .n_input_types = 1,                     \
                       .input_types = {QKV_TYPES_FLOATS | QKV_T(FLOAT16) | QKV_T(BFLOAT16)},       \
                       .init = gp_init, .infer = gp_infer, .prepare = gp_prepare,                  \
                       .compute = gp_compute, .destroy = gp_destroy,                               \
    }

static const qkv_kernel kernels[] = {
    GP_KERNEL("GlobalAveragePool", 1, 21), GP_KERNEL("GlobalAveragePool", 22, 0),
    GP_KERNEL("GlobalMaxPool", 1, 21),     GP_KERNEL("GlobalMaxPool", 22, 0),
    GP_KERNEL("GlobalLpPool", 1, 1),       GP_KERNEL("GlobalLpPool", 2, 21),
    GP_KERNEL("GlobalLpPool", 22, 0),
};

/* The GlobalAveragePool, GlobalMaxPool and GlobalLpPool descriptors; *count
 * set to their number. */
const qkv_kernel *qkv_ops_global_pool(size_t *count)
{
    *count = sizeof kernels / sizeof kernels[0];
    return kernels;
}
