/*
 * nonzero.c - NonZero (opsets 9, 13): the coordinates of the non-zero
 * elements of X as an int64 tensor (rank(X), count), in row-major order
 * (numpy.nonzero stacked). A 0-D input gives shape (0, count).
 *
 * Data dependent: the count is known only with X's value. infer gives
 * (rank, -1) without it, so the runtime runs the node dynamically, calling
 * infer again with the data; infer then counts.
 *
 * Types: numbers, bool, float16, bfloat16. A float is non-zero unless it is
 * +0 or -0 (NaN counts as non-zero, as in numpy).
 */
#include <string.h>

#include "kernel_util.h"
#include "qkv.h"

#define NONZERO_TYPES (QKV_TYPES_PLAIN)

/* Element i of x is non-zero. */
static inline bool is_nonzero(const qkv_tensor *x, size_t i)
{
    switch (x->dtype) {
    case QKV_DTYPE_FLOAT:
        return ((const float *)x->data)[i] != 0.0f;
    case QKV_DTYPE_DOUBLE:
        return ((const double *)x->data)[i] != 0.0;
    case QKV_DTYPE_FLOAT16:
    case QKV_DTYPE_BFLOAT16:
        return (((const uint16_t *)x->data)[i] & 0x7fffu) != 0;
    case QKV_DTYPE_INT8:
    case QKV_DTYPE_UINT8:
    case QKV_DTYPE_BOOL:
        return ((const uint8_t *)x->data)[i] != 0;
    case QKV_DTYPE_INT16:
    case QKV_DTYPE_UINT16:
        return ((const uint16_t *)x->data)[i] != 0;
    case QKV_DTYPE_INT32:
    case QKV_DTYPE_UINT32:
        return ((const uint32_t *)x->data)[i] != 0;
    default:
        return ((const uint64_t *)x->data)[i] != 0; /* int64, uint64 */
    }
}

/* Counts the non-zero elements; QKV_ERR_TYPE for a type it cannot read. */
static qkv_status count_nonzero(qkv_kernel_io *io, const qkv_tensor *x, size_t *count)
{
    if (!(NONZERO_TYPES & QKV_DTYPE_BIT(x->dtype)))
        return KERR(io, QKV_ERR_TYPE, "input 0 'X' has type %s, not supported",
                    qkv_dtype_name(x->dtype));
    size_t n = qkv_numel(x), c = 0;
    for (size_t i = 0; i < n; i++)
        c += is_nonzero(x, i);
    *count = c;
    return QKV_OK;
}

static qkv_status nonzero_infer(void *state, qkv_kernel_io *io)
{
    (void)state;
    const qkv_tensor *x = &io->inputs[0];
    qkv_tensor *y = &io->outputs[0];
    y->dtype = QKV_DTYPE_INT64;
    y->rank = 2;
    y->dims[0] = x->rank; /* -1 when unknown */
    y->dims[1] = -1;
    if (x->data && qkv_shape_known(x)) {
        size_t count;
        qkv_status st = count_nonzero(io, x, &count);
        if (st != QKV_OK)
            return st;
        y->dims[1] = (int64_t)count;
    }
    return QKV_OK;
}

static qkv_status nonzero_compute(const void *state, qkv_kernel_io *io)
{
    (void)state;
    const qkv_tensor *x = &io->inputs[0];
    qkv_tensor *y = &io->outputs[0];
    size_t count;
    qkv_status st = count_nonzero(io, x, &count);
    if (st != QKV_OK)
        return st;
    /* the output was sized by infer from the same data; refuse anything else
     * rather than write out of bounds */
    if (y->rank != 2 || y->dims[0] != x->rank || y->dims[1] != (int64_t)count)
        return KERR(io, QKV_ERR_INTERNAL,
                    "output 0 has shape [%lld,%lld], the input has %zu non-zero elements",
                    (long long)y->dims[0], (long long)y->dims[1], count);
    int64_t *out = y->data; /* (rank, count) */
    size_t n = qkv_numel(x), j = 0;
    int32_t r = x->rank;
    int64_t coord[QKV_MAX_RANK] = {0};
    for (size_t i = 0; i < n; i++) {
        if (is_nonzero(x, i)) {
            for (int32_t k = 0; k < r; k++)
                out[(size_t)k * count + j] = coord[k];
            j++;
        }
        for (int32_t k = r - 1; k >= 0; k--) {
            if (++coord[k] < x->dims[k])
                break;
            coord[k] = 0;
        }
    }
    return QKV_OK;
}

static const qkv_kernel kernels[] = {
    {
        QKV_KERNEL_V1,
        .domain = "",
        .op_type = "NonZero",
        .since_version = 9,
        .min_inputs = 1,
        .max_inputs = 1,
        .min_outputs = 1,
        .max_outputs = 1,
        .n_input_types = 1,
        .input_types = {NONZERO_TYPES},
        .infer = nonzero_infer,
        .compute = nonzero_compute,
    },
};

/* The nonzero family: NonZero. */
const qkv_kernel *qkv_ops_nonzero(size_t *count)
{
    *count = sizeof kernels / sizeof kernels[0];
    return kernels;
}
