/*
 * scatternd.c - ScatterND (opsets 11, 13, 16, 18): output = a copy of data
 * with the slices data[indices[i]] replaced by (or, with `reduction`,
 * combined with) updates[i].
 *
 * data has rank r, indices rank q >= 1 with last dim k <= r, updates shape
 * indices.shape[:-1] + data.shape[k:]. Indices are int64 (int32 accepted);
 * negative ones count from the end. An index out of range is
 * QKV_ERR_INVALID_ARGUMENT from compute, naming it, checked for all indices
 * before anything is written (never out of bounds).
 *
 * reduction: "none" (opsets 11+), "add" and "mul" (16+), "max" and "min"
 * (18+). Updates are applied in index order, so with "none" a duplicated
 * index keeps the last update (the spec leaves that unspecified); with a
 * reduction duplicates combine. Types: "none" moves bytes of any whole-byte
 * type; the reductions need numbers (ints, float, double; not float16).
 * Output 0 may share data's buffer (QKV_KERNEL_INPLACE).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "kernel_util.h"
#include "qkv.h"

#define DATA_TYPES (QKV_TYPES_PLAIN | QKV_T(COMPLEX64) | QKV_T(COMPLEX128))

enum red { RED_NONE, RED_ADD, RED_MUL, RED_MAX, RED_MIN };
static const char *const red_names[] = {"none", "add", "mul", "max", "min"};
static const int64_t red_since[] = {11, 16, 16, 18, 18};

typedef struct scatternd_state {
    enum red red;
} scatternd_state;

static qkv_status scatternd_init(const qkv_kernel *k, const qkv_host_api *host,
                                 const qkv_node_ctx *node, void **state)
{
    (void)k;
    const char *r = NULL;
    qkv_status st = host->attr_string(node, "reduction", "none", &r);
    if (st != QKV_OK)
        return st;
    int64_t opset = host->node_opset(node);
    size_t i = 0;
    while (i < 5 && strcmp(r, red_names[i]) != 0)
        i++;
    if (i == 5 || opset < red_since[i])
        return NERR(host, node, QKV_ERR_INVALID_MODEL,
                    "attribute 'reduction' is '%s', not supported at opset %lld (none: 11+, "
                    "add/mul: 16+, max/min: 18+)",
                    r, (long long)opset);
    scatternd_state *s = calloc(1, sizeof *s);
    if (!s)
        return NERR(host, node, QKV_ERR_OUT_OF_MEMORY, "kernel state");
    s->red = (enum red)i;
    *state = s;
    return QKV_OK;
}

static void scatternd_destroy(void *state) { free(state); }

static qkv_status scatternd_infer(void *state, qkv_kernel_io *io)
{
    (void)state;
    const qkv_tensor *x = &io->inputs[0], *ind = &io->inputs[1], *upd = &io->inputs[2];
    qkv_tensor *y = &io->outputs[0];
    qkv_set_shape(y, x->dtype, x->rank, x->dims);
    if (upd->dtype != x->dtype && upd->dtype != QKV_DTYPE_UNDEFINED)
        return KERR(io, QKV_ERR_TYPE, "input 2 'updates' has type %s, input 0 'data' has %s",
                    qkv_dtype_name(upd->dtype), qkv_dtype_name(x->dtype));
    if (ind->rank == 0)
        return KERR(io, QKV_ERR_SHAPE, "input 1 'indices' has rank 0, expected >= 1");
    if (x->rank < 0 || ind->rank < 0)
        return QKV_OK;
    if (x->rank == 0)
        return KERR(io, QKV_ERR_SHAPE, "input 0 'data' has rank 0, expected >= 1");
    int64_t k = ind->dims[ind->rank - 1];
    if (k < 0)
        return QKV_OK;
    if (k > x->rank)
        return KERR(io, QKV_ERR_SHAPE,
                    "input 1 'indices' has last dim %lld, larger than the rank %d of input 0 "
                    "'data'",
                    (long long)k, x->rank);
    if (upd->rank < 0)
        return QKV_OK;
    /* updates.shape == indices.shape[:-1] + data.shape[k:] */
    int32_t want_rank = ind->rank - 1 + x->rank - (int32_t)k;
    char a[96], b[96], c[96];
    bool ok = upd->rank == want_rank;
    for (int32_t i = 0; ok && i < want_rank; i++) {
        int64_t w = i < ind->rank - 1 ? ind->dims[i] : x->dims[k + i - (ind->rank - 1)];
        ok = w < 0 || upd->dims[i] < 0 || upd->dims[i] == w;
    }
    if (!ok)
        return KERR(io, QKV_ERR_SHAPE,
                    "input 2 'updates' has shape %s, expected indices.shape[:-1] + "
                    "data.shape[%lld:] (indices %s, data %s)",
                    qkv_dims_str(upd, a, sizeof a), (long long)k, qkv_dims_str(ind, b, sizeof b),
                    qkv_dims_str(x, c, sizeof c));
    return QKV_OK;
}

/* Applies one slice: dst[i] op= src[i] for i < n. Arithmetic runs in U:
 * the type itself for floats, uint64_t for integers, where overflow wraps
 * (defined) and the conversion back keeps the low bits. */
#define RED_FN(NAME, T, U)                                                                         \
    static void NAME(enum red r, T *restrict dst, const T *restrict src, size_t n)                 \
    {                                                                                              \
        switch (r) {                                                                               \
        case RED_ADD:                                                                              \
            for (size_t i = 0; i < n; i++)                                                         \
                dst[i] = (T)((U)dst[i] + (U)src[i]);                                               \
            break;                                                                                 \
        case RED_MUL:                                                                              \
            for (size_t i = 0; i < n; i++)                                                         \
                dst[i] = (T)((U)dst[i] * (U)src[i]);                                               \
            break;                                                                                 \
        case RED_MAX:                                                                              \
            for (size_t i = 0; i < n; i++)                                                         \
                dst[i] = src[i] > dst[i] ? src[i] : dst[i];                                        \
            break;                                                                                 \
        case RED_MIN:                                                                              \
            for (size_t i = 0; i < n; i++)                                                         \
                dst[i] = src[i] < dst[i] ? src[i] : dst[i];                                        \
            break;                                                                                 \
        default:                                                                                   \
            memcpy(dst, src, n * sizeof(T));                                                       \
            break;                                                                                 \
        }                                                                                          \
    }

RED_FN(red_f32, float, float)
RED_FN(red_f64, double, double)
RED_FN(red_i8, int8_t, uint64_t)
RED_FN(red_i16, int16_t, uint64_t)
RED_FN(red_i32, int32_t, uint64_t)
RED_FN(red_i64, int64_t, uint64_t)
RED_FN(red_u8, uint8_t, uint64_t)
RED_FN(red_u16, uint16_t, uint64_t)
RED_FN(red_u32, uint32_t, uint64_t)
RED_FN(red_u64, uint64_t, uint64_t)

/* Formats index tuple i of indices (its last dim k) as "[2,-1]". */
static const char *tuple_str(const qkv_tensor *ind, size_t i, size_t k, char *buf, size_t cap)
{
    size_t used = (size_t)snprintf(buf, cap, "[");
    for (size_t j = 0; j < k && used < cap; j++)
        used += (size_t)snprintf(buf + used, cap - used, "%s%lld", j ? "," : "",
                                 (long long)qkv_int_at(ind, i * k + j));
    if (used < cap)
        snprintf(buf + used, cap - used, "]");
    return buf;
}

/* Every index of the n_tuples k-tuples of ind is in range for the first k
 * dims of data x (negative ones count from the end). */
static qkv_status check_indices(qkv_kernel_io *io, const qkv_tensor *x, const qkv_tensor *ind,
                                size_t n_tuples, size_t k)
{
    for (size_t t = 0; t < n_tuples; t++)
        for (size_t j = 0; j < k; j++) {
            int64_t v = qkv_int_at(ind, t * k + j), d = x->dims[j];
            if (v < -d || v >= d) {
                char b[160];
                return KERR(io, QKV_ERR_INVALID_ARGUMENT,
                            "input 1 'indices' tuple %zu %s: %lld is out of range [%lld, %lld) "
                            "for dim %zu of input 0 'data'",
                            t, tuple_str(ind, t, k, b, sizeof b), (long long)v, (long long)-d,
                            (long long)d, j);
            }
        }
    return QKV_OK;
}

/* Writes the slice of n elements at u into d: replaced (RED_NONE) or
 * combined by the reduction. false for a dtype the reduction lacks. */
static bool scatter_slice(enum red red, qkv_dtype dtype, void *d, const void *u, size_t n,
                          size_t eb)
{
    switch (red == RED_NONE ? QKV_DTYPE_UNDEFINED : dtype) {
    case QKV_DTYPE_UNDEFINED:
        memcpy(d, u, n * eb);
        return true;
    case QKV_DTYPE_FLOAT:
        red_f32(red, d, u, n);
        return true;
    case QKV_DTYPE_DOUBLE:
        red_f64(red, d, u, n);
        return true;
    case QKV_DTYPE_INT8:
        red_i8(red, d, u, n);
        return true;
    case QKV_DTYPE_INT16:
        red_i16(red, d, u, n);
        return true;
    case QKV_DTYPE_INT32:
        red_i32(red, d, u, n);
        return true;
    case QKV_DTYPE_INT64:
        red_i64(red, d, u, n);
        return true;
    case QKV_DTYPE_UINT8:
        red_u8(red, d, u, n);
        return true;
    case QKV_DTYPE_UINT16:
        red_u16(red, d, u, n);
        return true;
    case QKV_DTYPE_UINT32:
        red_u32(red, d, u, n);
        return true;
    case QKV_DTYPE_UINT64:
        red_u64(red, d, u, n);
        return true;
    default:
        return false;
    }
}

static qkv_status scatternd_compute(const void *state, qkv_kernel_io *io)
{
    const scatternd_state *s = state;
    const qkv_tensor *x = &io->inputs[0], *ind = &io->inputs[1], *upd = &io->inputs[2];
    qkv_tensor *y = &io->outputs[0];
    size_t eb = qkv_dtype_bits(x->dtype) / 8;
    if (eb == 0 || x->dtype == QKV_DTYPE_STRING)
        return KERR(io, QKV_ERR_TYPE, "input 0 'data' has type %s, not supported",
                    qkv_dtype_name(x->dtype));
    if (y->data != x->data)
        memcpy(y->data, x->data, x->data_bytes);
    size_t k = (size_t)ind->dims[ind->rank - 1]; /* <= rank, checked in infer */
    size_t n_tuples = k ? qkv_numel(ind) / k : 1;
    if (k == 0) /* every "tuple" is empty: each update replaces all of data */
        for (int32_t a = 0; a < ind->rank - 1; a++)
            n_tuples *= (size_t)ind->dims[a];
    size_t slice = 1, st[QKV_MAX_RANK];
    for (int32_t a = (int32_t)k; a < x->rank; a++)
        slice *= (size_t)x->dims[a];
    qkv_contiguous_strides(x, st);
    /* all indices first: nothing is written for a bad one */
    qkv_status status = check_indices(io, x, ind, n_tuples, k);
    if (status != QKV_OK)
        return status;
    if (s->red != RED_NONE && !(QKV_TYPES_NUMERIC & QKV_DTYPE_BIT(x->dtype)))
        return KERR(io, QKV_ERR_TYPE, "reduction '%s' on type %s is not supported",
                    red_names[s->red], qkv_dtype_name(x->dtype));
    unsigned char *out = y->data;
    const unsigned char *src = upd->data;
    for (size_t t = 0; t < n_tuples; t++) {
        size_t off = 0;
        for (size_t j = 0; j < k; j++) {
            int64_t v = qkv_int_at(ind, t * k + j);
            off += (size_t)(v < 0 ? v + x->dims[j] : v) * st[j];
        }
        if (!scatter_slice(s->red, x->dtype, out + off * eb, src + t * slice * eb, slice, eb))
            return KERR(io, QKV_ERR_TYPE, "reduction '%s' on type %s is not supported",
                        red_names[s->red], qkv_dtype_name(x->dtype));
    }
    return QKV_OK;
}

static const qkv_kernel kernels[] = {
    {
        QKV_KERNEL_V1,
        .domain = "",
        .op_type = "ScatterND",
        .since_version = 11,
        .min_inputs = 3,
        .max_inputs = 3,
        .min_outputs = 1,
        .max_outputs = 1,
        .n_input_types = 3,
        .input_types = {DATA_TYPES, QKV_TYPES_INDEX, DATA_TYPES},
        .flags = QKV_KERNEL_INPLACE,
        .inplace_input = 0,
        .init = scatternd_init,
        .infer = scatternd_infer,
        .compute = scatternd_compute,
        .destroy = scatternd_destroy,
    },
};

/* The scatternd family: ScatterND. */
const qkv_kernel *qkv_ops_scatternd(size_t *count)
{
    *count = sizeof kernels / sizeof kernels[0];
    return kernels;
}
