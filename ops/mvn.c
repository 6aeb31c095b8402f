/*
 * mvn.c - MeanVarianceNormalization (opsets 9, 13).
 *
 * Normalises X over the axes of the `axes` attribute (default [0, 2, 3];
 * negative axes count from the end; an explicitly empty list means every
 * axis, as ReduceMean in the function body reads it):
 *   Y = (X - mean) / (sqrt(var) + 1e-9)
 * with mean and (biased) var taken over those axes, one pair per index of
 * the other axes. The function body computes var as E[X^2] - E[X]^2, which
 * cancels (and can go negative, giving NaN) when the mean is large against
 * the spread; here var is the mean of squared deviations, taken in a second
 * pass: the same value in exact arithmetic. Float groups whose last axis is
 * reduced run vecmath's SIMD row steps (float sums over blocks of 256
 * elements added in double, each element normalised in float: see
 * mvn_range_f32); other groups are computed in double, each element rounded
 * once. A repeated or out-of-range axis is QKV_ERR_SHAPE.
 *
 * Types: float, double, float16 and bfloat16 (the last two through float32
 * copies of X and Y in scratch). The groups (indices of the kept axes) are
 * split across threads.
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "half.h"
#include "kernel_util.h"
#include "vecmath.h"

#define PAR_MIN_ELEMS ((size_t)1 << 15)
/* the constant the function body adds to the standard deviation */
#define MVN_EPSILON 1e-9

typedef struct mvn_attrs {
    size_t n_axes;
    bool all; /* axes given as [] */
    int64_t axes[QKV_MAX_RANK];
} mvn_attrs;

/* X as kept axes (the groups) and reduced axes, adjacent axes of the same
 * kind merged. Strides in elements. There is always >= 1 reduced axis. */
typedef struct mvn_run {
    const void *x;
    void *y;
    int nk, nr;
    size_t kd[QKV_MAX_RANK], ks[QKV_MAX_RANK]; /* kept dims, strides */
    size_t rd[QKV_MAX_RANK], rs[QKV_MAX_RANK]; /* reduced dims, strides */
    size_t count;                              /* elements per group */
} mvn_run;

/* Runs BODY with OFF set to the offset of each element of a group in turn
 * (relative to the group's base): an odometer over the outer reduced axes,
 * a strided loop over the innermost one. */
#define MVN_WALK(r, OFF, BODY)                                                                     \
    do {                                                                                           \
        size_t idx_[QKV_MAX_RANK] = {0}, outer_ = 0;                                               \
        const int last_ = (r)->nr - 1;                                                             \
        for (;;) {                                                                                 \
            for (size_t t_ = 0; t_ < (r)->rd[last_]; t_++) {                                       \
                size_t OFF = outer_ + t_ * (r)->rs[last_];                                         \
                BODY;                                                                              \
            }                                                                                      \
            int a_ = last_ - 1;                                                                    \
            for (; a_ >= 0; a_--) {                                                                \
                outer_ += (r)->rs[a_];                                                             \
                if (++idx_[a_] < (r)->rd[a_])                                                      \
                    break;                                                                         \
                outer_ -= idx_[a_] * (r)->rs[a_];                                                  \
                idx_[a_] = 0;                                                                      \
            }                                                                                      \
            if (a_ < 0)                                                                            \
                break;                                                                             \
        }                                                                                          \
    } while (0)

/* The offset of group g's first element. */
static size_t group_base(const mvn_run *r, size_t g)
{
    size_t base = 0, rem = g;
    for (int k = r->nk - 1; k >= 0; k--) {
        base += (rem % r->kd[k]) * r->ks[k];
        rem /= r->kd[k];
    }
    return base;
}

#define DEFINE_MVN_GROUP(SFX, T)                                                                   \
    static void mvn_group_##SFX(const mvn_run *r, const T *x, T *y)                                \
    {                                                                                              \
        double sum = 0, ss = 0;                                                                    \
        MVN_WALK(r, o, sum += x[o]);                                                               \
        const double mean = sum / (double)r->count;                                                \
        MVN_WALK(r, o, {                                                                           \
            double t = (double)x[o] - mean;                                                        \
            ss += t * t;                                                                           \
        });                                                                                        \
        const double inv = 1.0 / (sqrt(ss / (double)r->count) + MVN_EPSILON);                      \
        MVN_WALK(r, o, y[o] = (T)(((double)x[o] - mean) * inv));                                   \
    }

/* A group in double: two passes, each element rounded once. */
DEFINE_MVN_GROUP(f64, double)
DEFINE_MVN_GROUP(f32, float)

static void mvn_range_f64(void *arg, size_t begin, size_t end)
{
    const mvn_run *r = arg;
    for (size_t g = begin; g < end; g++) {
        size_t base = group_base(r, g);
        mvn_group_f64(r, (const double *)r->x + base, (double *)r->y + base);
    }
}

/*
 * Float groups whose innermost reduced axis is contiguous (the last axis of
 * X is reduced) run vecmath's SIMD row steps on each contiguous run: its
 * moments merged across the group's runs, then its normalisation in float,
 * as LayerNormalization does. A group whose spread is below 2^-12 of its
 * mean falls back to double: the float block sums' error in the mean,
 * about 1e-8 of it, would then be a visible part of (x - mean) / sd, which
 * MVN's 1e-9 epsilon does not damp (a constant group must give 0). Strided
 * groups run in double.
 */
static void mvn_range_f32(void *arg, size_t begin, size_t end)
{
    const mvn_run *r = arg;
    const int last = r->nr - 1;
    const size_t len = r->rd[last];
    mvn_run outer = *r; /* walks the runs' offsets: the reduced axes before the last */
    outer.nr = last;
    for (size_t g = begin; g < end; g++) {
        size_t base = group_base(r, g);
        const float *x = (const float *)r->x + base;
        float *y = (float *)r->y + base;
        qkv_vm_moments m = {0};
        if (r->rs[last] != 1) {
            mvn_group_f32(r, x, y);
            continue;
        }
        if (last == 0)
            qkv_vm_moments_add_f32(&m, x, len);
        else
            MVN_WALK(&outer, o, qkv_vm_moments_add_f32(&m, x + o, len));
        const double sd = sqrt(m.m2 / m.count);
        if (!(sd >= 0x1p-12 * fabs(m.mean))) {
            mvn_group_f32(r, x, y);
            continue;
        }
        const float mean = (float)m.mean, inv = (float)(1.0 / (sd + MVN_EPSILON));
        if (last == 0)
            qkv_vm_normalize_scalar_f32(y, x, len, mean, inv, 0.0f);
        else
            MVN_WALK(&outer, o, qkv_vm_normalize_scalar_f32(y + o, x + o, len, mean, inv, 0.0f));
    }
}

/* ---- callbacks ----------------------------------------------------------- */

static qkv_status mvn_init(const qkv_kernel *kernel, const qkv_host_api *host,
                           const qkv_node_ctx *node, void **state)
{
    (void)kernel;
    const int64_t *axes;
    size_t n;
    qkv_status st = host->attr_ints(node, "axes", &axes, &n);
    if (st != QKV_OK)
        return st;
    if (n > QKV_MAX_RANK)
        return NERR(host, node, QKV_ERR_UNSUPPORTED,
                    "attribute axes has %zu entries, more "
                    "than qkv's largest rank %d",
                    n, QKV_MAX_RANK);
    mvn_attrs *s = calloc(1, sizeof *s);
    if (!s)
        return NERR(host, node, QKV_ERR_OUT_OF_MEMORY, "kernel state");
    static const int64_t dflt[] = {0, 2, 3};
    if (host->attr_type(node, "axes") == QKV_ATTR_UNDEFINED) {
        axes = dflt;
        n = 3;
    }
    s->all = n == 0;
    s->n_axes = n;
    if (n)
        memcpy(s->axes, axes, n * sizeof *axes);
    *state = s;
    return QKV_OK;
}

static void mvn_destroy(void *state) { free(state); }

/* The reduced-axis mask of axes for a tensor of rank `rank`. */
static qkv_status mvn_mask(const mvn_attrs *s, qkv_kernel_io *io, int32_t rank,
                           bool mask[QKV_MAX_RANK])
{
    for (int32_t k = 0; k < rank; k++)
        mask[k] = s->all;
    for (size_t i = 0; i < s->n_axes; i++) {
        int32_t a;
        if (!qkv_axis_normalize(s->axes[i], rank, false, &a))
            return KERR(io, QKV_ERR_SHAPE,
                        "attribute axes has %lld, out of range for input 0 'X' of rank %d",
                        (long long)s->axes[i], rank);
        if (mask[a])
            return KERR(io, QKV_ERR_SHAPE, "attribute axes names axis %d twice", a);
        mask[a] = true;
    }
    return QKV_OK;
}

static qkv_status mvn_infer(void *state, qkv_kernel_io *io)
{
    const qkv_tensor *x = &io->inputs[0];
    qkv_set_shape(&io->outputs[0], x->dtype, x->rank, x->dims);
    if (x->rank < 0)
        return QKV_OK;
    bool mask[QKV_MAX_RANK];
    return mvn_mask(state, io, x->rank, mask);
}

/* float16/bfloat16: float32 copies of the inputs and Y in scratch. */
static qkv_status mvn_prepare(void *state, qkv_kernel_io *io)
{
    (void)state;
    size_t bytes = 0;
    if (qkv_is_half(io->inputs[0].dtype) && !qkv_half_scratch_bytes(io, 0, &bytes))
        return KERR(io, QKV_ERR_UNSUPPORTED, "input 0 'X' too large for its float32 copy");
    io->scratch_bytes = bytes;
    return QKV_OK;
}

/* Splits x's axes into merged kept and reduced runs; returns the group count. */
static size_t mvn_layout(const qkv_tensor *x, const bool *mask, mvn_run *r)
{
    size_t strides[QKV_MAX_RANK], groups = 1;
    qkv_contiguous_strides(x, strides);
    r->nk = r->nr = 0;
    r->count = 1;
    for (int32_t k = 0; k < x->rank; k++) {
        size_t d = (size_t)x->dims[k];
        int *cnt = mask[k] ? &r->nr : &r->nk;
        size_t *dims = mask[k] ? r->rd : r->kd, *st = mask[k] ? r->rs : r->ks;
        *(mask[k] ? &r->count : &groups) *= d;
        if (k > 0 && mask[k] == mask[k - 1]) { /* contiguous with the previous axis */
            dims[*cnt - 1] *= d;
            st[*cnt - 1] = strides[k];
        } else {
            dims[*cnt] = d;
            st[*cnt] = strides[k];
            (*cnt)++;
        }
    }
    if (r->nr == 0) { /* no reduced axis: each group is one element */
        r->rd[0] = 1;
        r->rs[0] = 0;
        r->nr = 1;
    }
    return groups;
}

/* float or double */
static qkv_status mvn_compute_float(const void *state, qkv_kernel_io *io)
{
    const qkv_tensor *x = &io->inputs[0];
    bool mask[QKV_MAX_RANK];
    qkv_status st = mvn_mask(state, io, x->rank, mask);
    if (st != QKV_OK)
        return st;
    mvn_run r = {.x = x->data, .y = io->outputs[0].data};
    size_t groups = mvn_layout(x, mask, &r), n = qkv_numel(x);
    if (n == 0)
        return QKV_OK;
    qkv_range_fn fn;
    switch (x->dtype) {
    case QKV_DTYPE_FLOAT:
        fn = mvn_range_f32;
        break;
    case QKV_DTYPE_DOUBLE:
        fn = mvn_range_f64;
        break;
    default:
        return KERR(io, QKV_ERR_TYPE, "input 0 'X' has type %s, not supported",
                    io->host->dtype_name(x->dtype));
    }
    if (groups > 1 && n >= PAR_MIN_ELEMS)
        io->host->parallel_for(io->host_ctx, groups, fn, &r);
    else
        fn(&r, 0, groups);
    return QKV_OK;
}

/* float16/bfloat16 through float32 copies (half.h). */
static qkv_status mvn_compute(const void *state, qkv_kernel_io *io)
{
    if (qkv_is_half(io->inputs[0].dtype))
        return qkv_half_run_as_f32(state, io, 0, mvn_compute_float);
    return mvn_compute_float(state, io);
}

#define MVN_KERNEL(SINCE, UNTIL)                                                                   \
    {                                                                                              \
        QKV_KERNEL_V1, .domain = "", .op_type = "MeanVarianceNormalization",                       \
                       .since_version = (SINCE), .until_version = (UNTIL), .min_inputs = 1,        \
                       .max_inputs = 1, .min_outputs = 1, .max_outputs = 1, .n_input_types = 1,    \
                       .input_types = {QKV_TYPES_FLOATS | QKV_T(FLOAT16) | QKV_T(BFLOAT16)},       \
                       .init = mvn_init, .infer = mvn_infer, .prepare = mvn_prepare,               \
                       .compute = mvn_compute, .destroy = mvn_destroy,                             \
    }

static const qkv_kernel kernels[] = {
    MVN_KERNEL(9, 12),
    MVN_KERNEL(13, 0),
};

/* The MeanVarianceNormalization descriptors (opsets 9 and 13); *count set to 2. */
const qkv_kernel *qkv_ops_mvn(size_t *count)
{
    *count = sizeof kernels / sizeof kernels[0];
    return kernels;
}
