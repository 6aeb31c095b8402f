/*
 * expand.c - Expand (opsets 8, 13) and Tile (6, 13).
 *
 * Expand broadcasts input 0 with the shape given as input 1's values
 * (bidirectionally, numpy style: the output may be larger than the shape).
 * Tile repeats input 0 repeats[k] times along each axis k.
 *
 * Both copy whole blocks: the innermost dims the input shares with the
 * output are one contiguous block, and a block repeated along an axis is
 * written by doubling memcpys (copy once, then copy what is written), so
 * every output byte comes from a memcpy whatever the element size.
 *
 * Deviations: Tile-1 (inputs tiles and axis) is not supported. Negative
 * values in Expand's shape are refused (QKV_ERR_SHAPE). Any element type of
 * whole bytes (strings are not supported).
 */
#include <stdlib.h>
#include <string.h>

#include "kernel_util.h"
#include "qkv.h"

/* Below this many output bytes a parallel_for costs more than it saves. */
#define PARALLEL_MIN_BYTES ((size_t)1 << 16)

/* Element bytes of a dtype of whole bytes; QKV_ERR_TYPE otherwise. */
static qkv_status elem_bytes(qkv_kernel_io *io, qkv_dtype t, size_t *out)
{
    size_t bits = qkv_dtype_bits(t);
    *out = 0;
    if (t == QKV_DTYPE_STRING || bits == 0 || bits % 8)
        return KERR(io, QKV_ERR_TYPE, "input 0 has type %s, not supported", qkv_dtype_name(t));
    *out = bits / 8;
    return QKV_OK;
}

/* dst[0, block * times) = `times` copies of the block at dst[0, block):
 * doubling, so log2(times) memcpys. */
static void repeat_in_place(unsigned char *dst, size_t block, size_t times)
{
    size_t total = block * times, done = block;
    while (done < total) {
        size_t n = done < total - done ? done : total - done;
        memcpy(dst + done, dst, n);
        done += n;
    }
}

/* The 1-D int64 list input 1 when its value is known: *n = SIZE_MAX when not
 * (then *len is its length if known, else -1). On error *n = 0, *len = -1. */
static qkv_status read_list(qkv_kernel_io *io, const char *name, int64_t *v, size_t *n,
                            int64_t *len)
{
    const qkv_tensor *t = &io->inputs[1];
    *n = 0;
    *len = -1;
    if (t->rank >= 0 && t->rank != 1)
        return KERR(io, QKV_ERR_SHAPE, "input 1 '%s' has rank %d, expected 1", name, t->rank);
    *len = t->rank == 1 ? t->dims[0] : -1;
    return qkv_read_ints(io, 1, v, QKV_MAX_RANK, n);
}

/* ---- Expand ----------------------------------------------------------------------- */

static qkv_status expand_infer(void *state, qkv_kernel_io *io)
{
    (void)state;
    const qkv_tensor *x = &io->inputs[0];
    qkv_tensor *y = &io->outputs[0];
    qkv_tensor shape = {.dtype = QKV_DTYPE_INT64};
    size_t n;
    int64_t len;
    y->dtype = x->dtype;
    qkv_status st = read_list(io, "shape", shape.dims, &n, &len);
    if (st != QKV_OK)
        return st;
    if (n == SIZE_MAX) { /* dims depend on the value; the rank is known if both lengths are */
        y->rank = x->rank < 0 || len < 0 ? -1 : (int32_t)(len > x->rank ? len : x->rank);
        if (y->rank > QKV_MAX_RANK)
            return KERR(io, QKV_ERR_UNSUPPORTED, "output rank %d exceeds the maximum %d", y->rank,
                        QKV_MAX_RANK);
        for (int32_t k = 0; k < y->rank; k++)
            y->dims[k] = -1;
        return QKV_OK;
    }
    for (size_t i = 0; i < n; i++)
        if (shape.dims[i] < 0)
            return KERR(io, QKV_ERR_SHAPE, "input 1 'shape'[%zu] is %lld, expected >= 0", i,
                        (long long)shape.dims[i]);
    shape.rank = (int32_t)n;
    const qkv_tensor *ins[2] = {x, &shape};
    return qkv_broadcast_shapes(io, ins, 2, y);
}

typedef struct expand_job {
    unsigned char *out;
    const unsigned char *in;
    int32_t outer;                /* odometer axes 0..outer-1 */
    int64_t dims[QKV_MAX_RANK];   /* output dims of the odometer axes */
    size_t in_step[QKV_MAX_RANK]; /* input bytes per step on them (0: broadcast) */
    size_t block;                 /* bytes copied from the input per position */
    size_t times;                 /* copies of the block written per position */
} expand_job;

/* Writes positions [begin, end) of the odometer: `times` copies of a block each. */
static void expand_range(void *arg, size_t begin, size_t end)
{
    const expand_job *j = arg;
    size_t c[QKV_MAX_RANK], off = 0, rest = begin;
    for (int32_t k = j->outer - 1; k >= 0; k--) {
        c[k] = rest % (size_t)j->dims[k];
        rest /= (size_t)j->dims[k];
        off += c[k] * j->in_step[k];
    }
    const size_t row = j->block * j->times;
    for (size_t p = begin; p < end; p++) {
        unsigned char *dst = j->out + p * row;
        memcpy(dst, j->in + off, j->block);
        repeat_in_place(dst, j->block, j->times);
        for (int32_t k = j->outer - 1; k >= 0; k--) {
            off += j->in_step[k];
            if (++c[k] < (size_t)j->dims[k])
                break;
            off -= c[k] * j->in_step[k];
            c[k] = 0;
        }
    }
}

static qkv_status expand_compute(const void *state, qkv_kernel_io *io)
{
    (void)state;
    const qkv_tensor *x = &io->inputs[0];
    const qkv_tensor *y = &io->outputs[0];
    size_t eb;
    qkv_status st = elem_bytes(io, x->dtype, &eb);
    if (st != QKV_OK)
        return st;
    if (qkv_numel(y) == 0)
        return QKV_OK;
    size_t strides[QKV_MAX_RANK];
    qkv_broadcast_strides(x, y, strides);
    /* the suffix of axes where input and output agree is one contiguous block */
    int32_t r = y->rank, off = y->rank - x->rank, f = r;
    expand_job j = {.out = y->data, .in = x->data, .block = eb, .times = 1};
    while (f > 0 && f - 1 >= off && x->dims[f - 1 - off] == y->dims[f - 1]) {
        j.block *= (size_t)y->dims[f - 1];
        f--;
    }
    /* the axis before it is broadcast: the block repeats along it */
    if (f > 0) {
        j.times = (size_t)y->dims[f - 1];
        f--;
    }
    j.outer = f;
    size_t positions = 1;
    for (int32_t k = 0; k < f; k++) {
        j.dims[k] = y->dims[k];
        j.in_step[k] = strides[k] * eb;
        positions *= (size_t)y->dims[k];
    }
    if (positions == 1 || positions * j.block * j.times < PARALLEL_MIN_BYTES)
        expand_range(&j, 0, positions);
    else
        io->host->parallel_for(io->host_ctx, positions, expand_range, &j);
    return QKV_OK;
}

/* ---- Tile -------------------------------------------------------------------------- */

static qkv_status tile_infer(void *state, qkv_kernel_io *io)
{
    (void)state;
    const qkv_tensor *x = &io->inputs[0];
    qkv_tensor *y = &io->outputs[0];
    int64_t reps[QKV_MAX_RANK];
    size_t n;
    int64_t len;
    qkv_set_shape(y, x->dtype, x->rank, x->dims);
    qkv_status st = read_list(io, "repeats", reps, &n, &len);
    if (st != QKV_OK)
        return st;
    if (x->rank >= 0 && len >= 0 && len != x->rank)
        return KERR(io, QKV_ERR_SHAPE,
                    "input 1 'repeats' has %lld values, expected the rank of input 0 'input' (%d)",
                    (long long)len, x->rank);
    if (x->rank < 0)
        return QKV_OK;
    for (int32_t k = 0; k < x->rank; k++) {
        if (n == SIZE_MAX) {
            y->dims[k] = -1;
            continue;
        }
        if (reps[k] < 0)
            return KERR(io, QKV_ERR_SHAPE, "input 1 'repeats'[%d] is %lld, expected >= 0", k,
                        (long long)reps[k]);
        if (x->dims[k] < 0)
            y->dims[k] = -1;
        else if (__builtin_mul_overflow(x->dims[k], reps[k], &y->dims[k]))
            return KERR(io, QKV_ERR_SHAPE, "output dim %d (%lld x %lld) overflows", k,
                        (long long)x->dims[k], (long long)reps[k]);
    }
    return QKV_OK;
}

typedef struct tile_job {
    int32_t rank;
    int64_t in_dims[QKV_MAX_RANK];
    int64_t reps[QKV_MAX_RANK];
    size_t in_bytes[QKV_MAX_RANK];  /* bytes of the input sub-tensor of axes k.. */
    size_t out_bytes[QKV_MAX_RANK]; /* bytes of the output sub-tensor of axes k.. */
    size_t eb;
} tile_job;

/* Writes the output sub-tensor of axes k.. at dst from the input one at src:
 * each input slice along k tiled recursively, then the whole repeated. */
static void tile_level(const tile_job *j, int32_t k, unsigned char *dst, const unsigned char *src)
{
    size_t in_sub = k + 1 < j->rank ? j->in_bytes[k + 1] : j->eb;
    size_t out_sub = k + 1 < j->rank ? j->out_bytes[k + 1] : j->eb;
    if (k + 1 == j->rank) {
        memcpy(dst, src, (size_t)j->in_dims[k] * j->eb);
    } else {
        for (int64_t i = 0; i < j->in_dims[k]; i++)
            tile_level(j, k + 1, dst + (size_t)i * out_sub, src + (size_t)i * in_sub);
    }
    repeat_in_place(dst, (size_t)j->in_dims[k] * out_sub, (size_t)j->reps[k]);
}

static qkv_status tile_compute(const void *state, qkv_kernel_io *io)
{
    (void)state;
    const qkv_tensor *x = &io->inputs[0];
    const qkv_tensor *y = &io->outputs[0];
    tile_job j = {.rank = x->rank};
    qkv_status st = elem_bytes(io, x->dtype, &j.eb);
    if (st != QKV_OK)
        return st;
    if (qkv_numel(y) == 0)
        return QKV_OK;
    if (x->rank == 0) {
        memcpy(y->data, x->data, j.eb);
        return QKV_OK;
    }
    size_t in_b = j.eb, out_b = j.eb;
    for (int32_t k = x->rank - 1; k >= 0; k--) {
        j.in_dims[k] = x->dims[k];
        j.reps[k] = y->dims[k] / x->dims[k]; /* x->dims[k] > 0: the output is not empty */
        in_b *= (size_t)x->dims[k];
        out_b *= (size_t)y->dims[k];
        j.in_bytes[k] = in_b;
        j.out_bytes[k] = out_b;
    }
    tile_level(&j, 0, y->data, x->data);
    return QKV_OK;
}

static const qkv_kernel kernels[] = {
    {
        QKV_KERNEL_V1,
        .domain = "",
        .op_type = "Expand",
        .since_version = 8,
        .min_inputs = 2,
        .max_inputs = 2,
        .min_outputs = 1,
        .max_outputs = 1,
        .n_input_types = 2,
        .input_types = {QKV_TYPES_BYTES, QKV_TYPES_INDEX},
        .infer = expand_infer,
        .compute = expand_compute,
    },
    {
        QKV_KERNEL_V1,
        .domain = "",
        .op_type = "Tile",
        .since_version = 6,
        .min_inputs = 2,
        .max_inputs = 2,
        .min_outputs = 1,
        .max_outputs = 1,
        .n_input_types = 2,
        .input_types = {QKV_TYPES_BYTES, QKV_TYPES_INDEX},
        .infer = tile_infer,
        .compute = tile_compute,
    },
};

/* The expand family: Expand, Tile. */
const qkv_kernel *qkv_ops_expand(size_t *count)
{
    *count = sizeof kernels / sizeof kernels[0];
    return kernels;
}
