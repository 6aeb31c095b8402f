/*
 * range.c - Range (opset 11).
 *
 * out[i] = start + i * delta for i in [0, n), n = max(ceil((limit - start) /
 * delta), 0). start, limit and delta are scalars of one type: float, double,
 * int16, int32 or int64. The output length depends on the values, so infer
 * leaves it -1 until they are known.
 *
 * Integer counts are computed exactly (in 128 bits, so int64 extremes do not
 * overflow); float counts in double, as numpy's arange does. delta 0 is
 * QKV_ERR_INVALID_ARGUMENT; so is a count too large to allocate.
 * Deviation: 1-element 1-D inputs are accepted as scalars.
 */
#include <math.h>
#include <string.h>

#include "kernel_util.h"
#include "qkv.h"

#define RANGE_TYPES (QKV_T(FLOAT) | QKV_T(DOUBLE) | QKV_T(INT16) | QKV_T(INT32) | QKV_T(INT64))

/* The scalar input k as double (floats) or as int64 (integers). */
static double scalar_f(const qkv_tensor *t)
{
    return t->dtype == QKV_DTYPE_FLOAT ? (double)*(const float *)t->data : *(const double *)t->data;
}

static int64_t scalar_i(const qkv_tensor *t)
{
    switch (t->dtype) {
    case QKV_DTYPE_INT16:
        return *(const int16_t *)t->data;
    case QKV_DTYPE_INT32:
        return *(const int32_t *)t->data;
    default:
        return *(const int64_t *)t->data;
    }
}

/*
 * The element count of the output, from the three inputs (data known).
 * QKV_ERR_INVALID_ARGUMENT for delta 0, a NaN or infinite count, or one
 * above `max`.
 */
static qkv_status range_count(qkv_kernel_io *io, size_t max, size_t *n)
{
    const qkv_tensor *s = &io->inputs[0], *l = &io->inputs[1], *d = &io->inputs[2];
    if (s->dtype == QKV_DTYPE_FLOAT || s->dtype == QKV_DTYPE_DOUBLE) {
        double start = scalar_f(s), limit = scalar_f(l), delta = scalar_f(d);
        if (delta == 0)
            return KERR(io, QKV_ERR_INVALID_ARGUMENT, "input 2 'delta' is 0");
        double c = ceil((limit - start) / delta);
        if (isnan(c) || c > (double)max)
            return KERR(io, QKV_ERR_INVALID_ARGUMENT, "Range(%g, %g, %g) has %g elements, too many",
                        start, limit, delta, c);
        *n = c > 0 ? (size_t)c : 0;
        return QKV_OK;
    }
    __int128 start = scalar_i(s), limit = scalar_i(l), delta = scalar_i(d);
    if (delta == 0)
        return KERR(io, QKV_ERR_INVALID_ARGUMENT, "input 2 'delta' is 0");
    __int128 span = limit - start, c = 0;
    if (delta > 0 && span > 0)
        c = (span + delta - 1) / delta;
    else if (delta < 0 && span < 0)
        c = (span + delta + 1) / delta; /* both negative: ceil of a positive quotient */
    if (c > (__int128)max)
        return KERR(io, QKV_ERR_INVALID_ARGUMENT, "Range(%lld, %lld, %lld) has too many elements",
                    (long long)start, (long long)limit, (long long)delta);
    *n = (size_t)c;
    return QKV_OK;
}

static qkv_status range_infer(void *state, qkv_kernel_io *io)
{
    (void)state;
    qkv_tensor *y = &io->outputs[0];
    y->dtype = io->inputs[0].dtype;
    y->rank = 1;
    y->dims[0] = -1;
    static const char *const names[3] = {"start", "limit", "delta"};
    bool known = true;
    for (size_t i = 0; i < 3; i++) {
        const qkv_tensor *t = &io->inputs[i];
        if (t->dtype != io->inputs[0].dtype && t->dtype != QKV_DTYPE_UNDEFINED &&
            io->inputs[0].dtype != QKV_DTYPE_UNDEFINED)
            return KERR(io, QKV_ERR_TYPE, "input %zu '%s' has type %s, input 0 'start' has %s", i,
                        names[i], qkv_dtype_name(t->dtype), qkv_dtype_name(io->inputs[0].dtype));
        if (t->rank > 1 || (t->rank == 1 && t->dims[0] >= 0 && t->dims[0] != 1))
            return KERR(io, QKV_ERR_SHAPE, "input %zu '%s' must be a scalar", i, names[i]);
        known = known && t->data && t->rank >= 0 && (t->rank == 0 || t->dims[0] == 1);
    }
    if (!known)
        return QKV_OK;
    size_t n = 0;
    /* the output's bytes must fit a size_t: 8-byte elements at most */
    qkv_status st = range_count(io, SIZE_MAX / 8, &n);
    if (st == QKV_OK)
        y->dims[0] = (int64_t)n;
    return st;
}

static qkv_status range_compute(const void *state, qkv_kernel_io *io)
{
    (void)state;
    const qkv_tensor *s = &io->inputs[0], *d = &io->inputs[2];
    size_t n = (size_t)io->outputs[0].dims[0];
    void *out = io->outputs[0].data;
    switch (s->dtype) {
    case QKV_DTYPE_FLOAT: {
        float start = *(const float *)s->data, delta = *(const float *)d->data, *y = out;
        for (size_t i = 0; i < n; i++)
            y[i] = start + (float)i * delta;
        return QKV_OK;
    }
    case QKV_DTYPE_DOUBLE: {
        double start = *(const double *)s->data, delta = *(const double *)d->data, *y = out;
        for (size_t i = 0; i < n; i++)
            y[i] = start + (double)i * delta;
        return QKV_OK;
    }
    case QKV_DTYPE_INT16: {
        int16_t *y = out;
        int64_t start = scalar_i(s), delta = scalar_i(d);
        for (size_t i = 0; i < n; i++) /* every value lies between start and limit: fits */
            y[i] = (int16_t)(start + (int64_t)i * delta);
        return QKV_OK;
    }
    case QKV_DTYPE_INT32: {
        int32_t *y = out;
        int64_t start = scalar_i(s), delta = scalar_i(d);
        for (size_t i = 0; i < n; i++)
            y[i] = (int32_t)(start + (int64_t)i * delta);
        return QKV_OK;
    }
    case QKV_DTYPE_INT64: {
        int64_t *y = out, v = scalar_i(s), delta = scalar_i(d);
        for (size_t i = 0; i < n; i++) { /* i * delta could overflow; the running sum cannot */
            y[i] = v;
            if (i + 1 < n)
                v += delta;
        }
        return QKV_OK;
    }
    default:
        return KERR(io, QKV_ERR_TYPE, "input 0 'start' has type %s, not supported",
                    qkv_dtype_name(s->dtype));
    }
}

static const qkv_kernel kernels[] = {
    {
        QKV_KERNEL_V1,
        .domain = "",
        .op_type = "Range",
        .since_version = 11,
        .min_inputs = 3,
        .max_inputs = 3,
        .min_outputs = 1,
        .max_outputs = 1,
        .n_input_types = 1,
        .input_types = {RANGE_TYPES},
        .infer = range_infer,
        .compute = range_compute,
    },
};

/* The range family: Range. */
const qkv_kernel *qkv_ops_range(size_t *count)
{
    *count = sizeof kernels / sizeof kernels[0];
    return kernels;
}
