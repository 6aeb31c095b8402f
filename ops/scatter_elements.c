/*
 * scatter_elements.c - ScatterElements (opsets 11, 13, 16, 18) and the
 * deprecated Scatter (opsets 9, 11), one kernel: output = a copy of data in
 * which, for every element of indices at coordinates (i0, .., ik, ..),
 * output[i0, .., indices[..], ..] (indices replacing coordinate `axis`) is
 * replaced by (or, with `reduction`, combined with) updates[i0, .., ik, ..].
 *
 * data, indices and updates have one rank; indices and updates one shape,
 * each dim no larger than data's (except along axis). Indices are int32 or
 * int64, negative ones count from the end; one out of range is
 * QKV_ERR_INVALID_ARGUMENT naming it, checked for all before anything is
 * written.
 *
 * reduction: "none" (every opset), "add", "mul" (16+), "max", "min" (18+).
 * Updates apply in row-major order of indices, so with "none" a duplicated
 * index keeps the last update (the spec leaves it unspecified); a reduction
 * combines duplicates. "none" moves bytes of any whole-byte type; the
 * reductions need numbers (not float16). Output 0 may share data's buffer.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "kernel_util.h"
#include "qkv.h"

enum red { RED_NONE, RED_ADD, RED_MUL, RED_MAX, RED_MIN };
static const char *const red_names[] = {"none", "add", "mul", "max", "min"};
static const int64_t red_since[] = {0, 16, 16, 18, 18};

typedef struct scatter_state {
    enum red red;
    int64_t axis;
} scatter_state;

static qkv_status scatter_init(const qkv_kernel *k, const qkv_host_api *host,
                               const qkv_node_ctx *node, void **state)
{
    (void)k;
    const char *r = NULL;
    int64_t axis;
    qkv_status st = host->attr_string(node, "reduction", "none", &r);
    if (st == QKV_OK)
        st = host->attr_int(node, "axis", 0, &axis);
    if (st != QKV_OK)
        return st;
    int64_t opset = host->node_opset(node);
    bool legacy = strcmp(host->node_op_type(node), "Scatter") == 0;
    size_t i = 0;
    while (i < 5 && strcmp(r, red_names[i]) != 0)
        i++;
    if (i == 5 || opset < red_since[i] || (legacy && i != RED_NONE))
        return NERR(host, node, QKV_ERR_INVALID_MODEL,
                    "attribute 'reduction' is '%s', not supported at opset %lld (none; add/mul: "
                    "16+, max/min: 18+)",
                    r, (long long)opset);
    scatter_state *s = calloc(1, sizeof *s);
    if (!s)
        return NERR(host, node, QKV_ERR_OUT_OF_MEMORY, "kernel state");
    s->red = (enum red)i;
    s->axis = axis;
    *state = s;
    return QKV_OK;
}

static void scatter_destroy(void *state) { free(state); }

static qkv_status scatter_infer(void *state, qkv_kernel_io *io)
{
    const scatter_state *s = state;
    const qkv_tensor *x = &io->inputs[0], *ind = &io->inputs[1], *upd = &io->inputs[2];
    qkv_set_shape(&io->outputs[0], x->dtype, x->rank, x->dims);
    if (upd->dtype != x->dtype && upd->dtype != QKV_DTYPE_UNDEFINED)
        return KERR(io, QKV_ERR_TYPE, "input 2 'updates' has type %s, input 0 'data' has %s",
                    qkv_dtype_name(upd->dtype), qkv_dtype_name(x->dtype));
    int32_t ax = 0;
    if (x->rank >= 0 && !qkv_axis_normalize(s->axis, x->rank, false, &ax))
        return KERR(io, QKV_ERR_INVALID_MODEL,
                    "attribute 'axis' is %lld, out of range for input 0 'data' of rank %d",
                    (long long)s->axis, x->rank);
    if (x->rank >= 0 && ind->rank >= 0 && ind->rank != x->rank)
        return KERR(io, QKV_ERR_SHAPE,
                    "input 1 'indices' has rank %d, input 0 'data' has rank %d: they must match",
                    ind->rank, x->rank);
    if (ind->rank >= 0 && upd->rank >= 0) {
        bool same = ind->rank == upd->rank;
        for (int32_t a = 0; same && a < ind->rank; a++)
            same = ind->dims[a] < 0 || upd->dims[a] < 0 || ind->dims[a] == upd->dims[a];
        if (!same) {
            char a1[96], a2[96];
            return KERR(io, QKV_ERR_SHAPE,
                        "input 2 'updates' has shape %s, input 1 'indices' %s: they must match",
                        qkv_dims_str(upd, a1, sizeof a1), qkv_dims_str(ind, a2, sizeof a2));
        }
    }
    if (x->rank >= 0 && ind->rank == x->rank)
        for (int32_t a = 0; a < x->rank; a++)
            if (a != ax && ind->dims[a] >= 0 && x->dims[a] >= 0 && ind->dims[a] > x->dims[a])
                return KERR(io, QKV_ERR_SHAPE,
                            "input 1 'indices' has dim %d of %lld, larger than input 0 "
                            "'data''s %lld",
                            a, (long long)ind->dims[a], (long long)x->dims[a]);
    return QKV_OK;
}

/* dst op= src for one element; integer arithmetic wraps through uint64_t. */
#define RED_ONE(NAME, T, U)                                                                        \
    static void NAME(enum red r, void *dp, const void *sp)                                         \
    {                                                                                              \
        T d, v;                                                                                    \
        memcpy(&d, dp, sizeof d);                                                                  \
        memcpy(&v, sp, sizeof v);                                                                  \
        switch (r) {                                                                               \
        case RED_ADD:                                                                              \
            d = (T)((U)d + (U)v);                                                                  \
            break;                                                                                 \
        case RED_MUL:                                                                              \
            d = (T)((U)d * (U)v);                                                                  \
            break;                                                                                 \
        case RED_MAX:                                                                              \
            d = v > d ? v : d;                                                                     \
            break;                                                                                 \
        case RED_MIN:                                                                              \
            d = v < d ? v : d;                                                                     \
            break;                                                                                 \
        default:                                                                                   \
            d = v;                                                                                 \
            break;                                                                                 \
        }                                                                                          \
        memcpy(dp, &d, sizeof d);                                                                  \
    }
RED_ONE(red_f32, float, float)
RED_ONE(red_f64, double, double)
RED_ONE(red_i8, int8_t, uint64_t)
RED_ONE(red_i16, int16_t, uint64_t)
RED_ONE(red_i32, int32_t, uint64_t)
RED_ONE(red_i64, int64_t, uint64_t)
RED_ONE(red_u8, uint8_t, uint64_t)
RED_ONE(red_u16, uint16_t, uint64_t)
RED_ONE(red_u32, uint32_t, uint64_t)
RED_ONE(red_u64, uint64_t, uint64_t)

typedef void (*red_fn)(enum red r, void *dp, const void *sp);

static red_fn pick_red(qkv_dtype t)
{
    switch (t) {
    case QKV_DTYPE_FLOAT:
        return red_f32;
    case QKV_DTYPE_DOUBLE:
        return red_f64;
    case QKV_DTYPE_INT8:
        return red_i8;
    case QKV_DTYPE_INT16:
        return red_i16;
    case QKV_DTYPE_INT32:
        return red_i32;
    case QKV_DTYPE_INT64:
        return red_i64;
    case QKV_DTYPE_UINT8:
        return red_u8;
    case QKV_DTYPE_UINT16:
        return red_u16;
    case QKV_DTYPE_UINT32:
        return red_u32;
    case QKV_DTYPE_UINT64:
        return red_u64;
    default:
        return NULL;
    }
}

/* Calls visit for every element of indices: i its flat index, off the flat
 * offset in data with coordinate `ax` left 0. Returns the first error. */
typedef qkv_status (*visit_fn)(void *arg, size_t i, size_t off);

static qkv_status walk_indices(const qkv_tensor *ind, const size_t *dstride, visit_fn visit,
                               void *arg)
{
    size_t n = qkv_numel(ind);
    int64_t coord[QKV_MAX_RANK] = {0};
    size_t off = 0;
    for (size_t i = 0; i < n; i++) {
        qkv_status st = visit(arg, i, off);
        if (st != QKV_OK)
            return st;
        for (int32_t a = ind->rank - 1; a >= 0; a--) {
            off += dstride[a];
            if (++coord[a] < ind->dims[a])
                break;
            off -= dstride[a] * (size_t)coord[a];
            coord[a] = 0;
        }
    }
    return QKV_OK;
}

typedef struct scatter_run {
    qkv_kernel_io *io;
    const qkv_tensor *ind;
    const unsigned char *upd;
    unsigned char *out;
    size_t eb, axis_stride;
    int64_t axis_len;
    enum red red;
    red_fn fn;
} scatter_run;

static qkv_status check_one(void *arg, size_t i, size_t off)
{
    (void)off;
    const scatter_run *r = arg;
    int64_t v = qkv_int_at(r->ind, i);
    if (v < -r->axis_len || v >= r->axis_len)
        return KERR(r->io, QKV_ERR_INVALID_ARGUMENT,
                    "input 1 'indices' element %zu is %lld, out of range [%lld, %lld) for the "
                    "axis",
                    i, (long long)v, (long long)-r->axis_len, (long long)r->axis_len);
    return QKV_OK;
}

static qkv_status apply_one(void *arg, size_t i, size_t off)
{
    const scatter_run *r = arg;
    int64_t v = qkv_int_at(r->ind, i);
    if (v < 0)
        v += r->axis_len;
    unsigned char *d = r->out + (off + (size_t)v * r->axis_stride) * r->eb;
    const unsigned char *u = r->upd + i * r->eb;
    if (r->red == RED_NONE)
        memcpy(d, u, r->eb);
    else
        r->fn(r->red, d, u);
    return QKV_OK;
}

static qkv_status scatter_compute(const void *state, qkv_kernel_io *io)
{
    const scatter_state *s = state;
    const qkv_tensor *x = &io->inputs[0], *ind = &io->inputs[1], *upd = &io->inputs[2];
    qkv_tensor *y = &io->outputs[0];
    scatter_run r = {.io = io, .ind = ind, .upd = upd->data, .out = y->data, .red = s->red};
    r.eb = qkv_elem_bytes(x->dtype);
    if (!r.eb)
        return KERR(io, QKV_ERR_TYPE, "input 0 'data' has type %s, not supported",
                    qkv_dtype_name(x->dtype));
    r.fn = pick_red(x->dtype);
    if (s->red != RED_NONE && !r.fn)
        return KERR(io, QKV_ERR_TYPE, "reduction '%s' on type %s is not supported",
                    red_names[s->red], qkv_dtype_name(x->dtype));
    int32_t ax;
    if (!qkv_axis_normalize(s->axis, x->rank, false, &ax))
        return KERR(io, QKV_ERR_INVALID_MODEL,
                    "attribute 'axis' is %lld, out of range for input 0 'data' of rank %d",
                    (long long)s->axis, x->rank);
    size_t st[QKV_MAX_RANK], walk_st[QKV_MAX_RANK];
    qkv_contiguous_strides(x, st);
    for (int32_t a = 0; a < x->rank; a++)
        walk_st[a] = a == ax ? 0 : st[a];
    r.axis_stride = st[ax];
    r.axis_len = x->dims[ax];
    qkv_status rs = walk_indices(ind, walk_st, check_one, &r);
    if (rs != QKV_OK)
        return rs;
    if (y->data != x->data && x->data_bytes)
        memcpy(y->data, x->data, x->data_bytes);
    return walk_indices(ind, walk_st, apply_one, &r);
}

#define SCATTER(op, since, until, data_types)                                                      \
    {                                                                                              \
        QKV_KERNEL_V1,                                                                             \
            .domain = "", .op_type = op, .since_version = since, .until_version = until,           \
            .min_inputs = 3, .max_inputs = 3, .min_outputs = 1, .max_outputs = 1,                  \
            .n_input_types = 3, .input_types = {data_types, QKV_TYPES_INDEX, data_types},          \
            .flags = QKV_KERNEL_INPLACE, .inplace_input = 0, .init = scatter_init,                 \
            .infer = scatter_infer, .compute = scatter_compute, .destroy = scatter_destroy         \
    }

static const qkv_kernel kernels[] = {
    SCATTER("Scatter", 9, 10, QKV_TYPES_BYTES),
    SCATTER("Scatter", 11, 0, QKV_TYPES_BYTES),
    SCATTER("ScatterElements", 11, 12, QKV_TYPES_BYTES),
    SCATTER("ScatterElements", 13, 15, QKV_TYPES_BYTES),
    SCATTER("ScatterElements", 16, 17, QKV_TYPES_BYTES),
    SCATTER("ScatterElements", 18, 0, QKV_TYPES_BYTES),
};

/* The scatter_elements family: ScatterElements and Scatter. */
const qkv_kernel *qkv_ops_scatter_elements(size_t *count)
{
    *count = sizeof kernels / sizeof kernels[0];
    return kernels;
}
