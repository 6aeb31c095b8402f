/*
 * det.c - Det (opset 11): the determinant of each square matrix in the last
 * two dims of X, shape (*, M, M) -> (*).
 *
 * LU factorisation with partial pivoting, in double whatever the input type
 * (float, double, float16), the result rounded to the input type. A singular
 * matrix (a zero pivot) gives 0; M = 0 gives 1 (the empty product).
 * Scratch: one M x M double matrix (none for an empty X).
 */
#include <math.h>
#include <string.h>

#include "elementwise.h"
#include "qkv.h"
#include "size_math.h"

#define DET_TYPES (QKV_TYPES_FLOATS | QKV_T(FLOAT16))

/* det(a) of the m x m row-major matrix a (destroyed). */
static double lu_det(double *a, size_t m)
{
    double det = 1.0;
    for (size_t c = 0; c < m; c++) {
        size_t p = c;
        for (size_t r = c + 1; r < m; r++)
            if (fabs(a[r * m + c]) > fabs(a[p * m + c]))
                p = r;
        double piv = a[p * m + c];
        if (piv == 0.0)
            return 0.0;
        if (p != c) {
            for (size_t j = 0; j < m; j++) {
                double t = a[c * m + j];
                a[c * m + j] = a[p * m + j];
                a[p * m + j] = t;
            }
            det = -det;
        }
        det *= piv;
        for (size_t r = c + 1; r < m; r++) {
            double f = a[r * m + c] / piv;
            if (f == 0.0)
                continue;
            for (size_t j = c + 1; j < m; j++)
                a[r * m + j] -= f * a[c * m + j];
        }
    }
    return det;
}

static qkv_status det_infer(void *state, qkv_kernel_io *io)
{
    (void)state;
    const qkv_tensor *x = &io->inputs[0];
    qkv_tensor *y = &io->outputs[0];
    y->dtype = x->dtype;
    y->rank = -1;
    if (x->rank < 0)
        return QKV_OK;
    if (x->rank < 2)
        return KERR(io, QKV_ERR_SHAPE, "input 0 'X' has rank %d, expected >= 2", x->rank);
    int64_t a = x->dims[x->rank - 2], b = x->dims[x->rank - 1];
    if (a >= 0 && b >= 0 && a != b)
        return KERR(io, QKV_ERR_SHAPE, "input 0 'X' has %lld x %lld matrices, expected square",
                    (long long)a, (long long)b);
    qkv_set_shape(y, x->dtype, x->rank - 2, x->dims);
    return QKV_OK;
}

static qkv_status det_prepare(void *state, qkv_kernel_io *io)
{
    (void)state;
    const qkv_tensor *x = &io->inputs[0];
    size_t m = (size_t)x->dims[x->rank - 1], bytes = 0;
    io->scratch_bytes = 0;
    /* An empty batch factors nothing, yet may declare any m: X then holds no
     * element that would bound m * m. Otherwise X holds m * m elements of 2
     * to 8 bytes, so m * m * 8 is at most 4x X's size: checked all the same. */
    if (qkv_numel(x) == 0)
        return QKV_OK;
    if (qkv_mul_overflow(m, m, &bytes) || qkv_mul_overflow(bytes, sizeof(double), &bytes))
        return KERR(io, QKV_ERR_UNSUPPORTED,
                    "input 0 'X' has %zu x %zu matrices: their scratch overflows", m, m);
    io->scratch_bytes = bytes;
    return QKV_OK;
}

static qkv_status det_compute(const void *state, qkv_kernel_io *io)
{
    (void)state;
    const qkv_tensor *x = &io->inputs[0];
    qkv_tensor *y = &io->outputs[0];
    size_t m = (size_t)x->dims[x->rank - 1], mm = m * m;
    size_t count = qkv_numel(y);
    size_t eb = qkv_ew_elem_bytes(x->dtype);
    double *a = io->scratch; /* (m, m) */
    for (size_t b = 0; b < count; b++) {
        double d = 1.0;
        if (m > 0) {
            if (!qkv_ew_load_f64(a, (const char *)x->data + b * mm * eb, x->dtype, 1, mm))
                return KERR(io, QKV_ERR_TYPE, "input 0 'X' has type %s, not supported",
                            qkv_dtype_name(x->dtype));
            d = lu_det(a, m);
        }
        if (!qkv_ew_store_f64((char *)y->data + b * eb, y->dtype, &d, 1))
            return KERR(io, QKV_ERR_TYPE, "input 0 'X' has type %s, not supported",
                        qkv_dtype_name(x->dtype));
    }
    return QKV_OK;
}

static const qkv_kernel kernels[] = {
    {
        QKV_KERNEL_V1,
        .domain = "",
        .op_type = "Det",
        .since_version = 11,
        .min_inputs = 1,
        .max_inputs = 1,
        .min_outputs = 1,
        .max_outputs = 1,
        .n_input_types = 1,
        .input_types = {DET_TYPES},
        .infer = det_infer,
        .prepare = det_prepare,
        .compute = det_compute,
    },
};

/* The det family: Det. */
const qkv_kernel *qkv_ops_det(size_t *count)
{
    *count = sizeof kernels / sizeof kernels[0];
    return kernels;
}
