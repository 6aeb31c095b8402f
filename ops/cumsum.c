/*
 * cumsum.c - CumSum (opsets 11, 14).
 *
 * Running sums of x along the axis given by input 1 (an int32/int64 scalar or
 * one-element tensor, in [-rank, rank-1]). exclusive=1 leaves out the element
 * itself (the first sum is 0); reverse=1 sums from the end. The output has
 * x's shape; the axis value does not change it, so an unknown axis still
 * gives a known shape.
 *
 * Numerics: each running sum is accumulated sequentially in the element
 * type, exactly as numpy's cumsum (the conformance reference) does, so
 * float results match it bit for bit. Integer sums wrap (computed unsigned,
 * no signed overflow). Types: float, double, int32, int64, uint32, uint64
 * (float16/bfloat16 not supported).
 *
 * The input is viewed as (outer, d, inner): with inner > 1 each step adds a
 * contiguous run of the previous sums to a run of x (vectorizable, reads
 * sequential). Units are outer indices, or (outer index, strip of the inner
 * run) when there are fewer outer indices than threads; split across
 * threads.
 */
#include <stdlib.h>
#include <string.h>

#include "kernel_util.h"
#include "qkv.h"
#include "reduce.h"

#define PAR_MIN_ELEMS ((size_t)1 << 15)

typedef struct cumsum_attrs {
    bool exclusive, reverse;
} cumsum_attrs;

typedef struct cumsum_run {
    const void *x;
    void *y;
    size_t d, inner;      /* x viewed as (outer, d, inner) */
    size_t strip, strips; /* inner split into strips of `strip` */
    bool exclusive, reverse;
} cumsum_run;

/*
 * y[p] = y[p - 1] + x[p] (inclusive) or y[p - 1] + x[p - 1] (exclusive),
 * p stepping away from the start row (0, or d - 1 when reversed); the start
 * row is x's (inclusive) or zero (exclusive). ADD wraps for ints.
 */
#define DEFINE_CUMSUM(SFX, T, ADD)                                                                 \
    static void cumsum_range_##SFX(void *arg, size_t b, size_t e)                                  \
    {                                                                                              \
        const cumsum_run *r = arg;                                                                 \
        const size_t d = r->d, inner = r->inner;                                                   \
        const ptrdiff_t step = r->reverse ? -(ptrdiff_t)inner : (ptrdiff_t)inner;                  \
        for (size_t u = b; u < e; u++) {                                                           \
            size_t o = u / r->strips, j0 = (u % r->strips) * r->strip;                             \
            size_t w = inner - j0 < r->strip ? inner - j0 : r->strip;                              \
            size_t start = o * d * inner + (r->reverse ? (d - 1) * inner : 0) + j0;                \
            const T *restrict x = (const T *)r->x + start;                                         \
            T *restrict y = (T *)r->y + start;                                                     \
            if (r->exclusive)                                                                      \
                QKV_FOR_W(w, y[j] = 0);                                                            \
            else                                                                                   \
                QKV_FOR_W(w, y[j] = x[j]);                                                         \
            for (size_t p = 1; p < d; p++) {                                                       \
                const T *restrict prev_y = y;                                                      \
                const T *restrict add = r->exclusive ? x : x + step;                               \
                x += step;                                                                         \
                y += step;                                                                         \
                QKV_FOR_W(w, y[j] = ADD(prev_y[j], add[j]));                                       \
            }                                                                                      \
        }                                                                                          \
    }

#define ADD_PLAIN(a, b) ((a) + (b))
#define ADD_I32(a, b) ((int32_t)((uint32_t)(a) + (uint32_t)(b)))
#define ADD_I64(a, b) ((int64_t)((uint64_t)(a) + (uint64_t)(b)))

DEFINE_CUMSUM(f32, float, ADD_PLAIN)
DEFINE_CUMSUM(f64, double, ADD_PLAIN)
DEFINE_CUMSUM(i32, int32_t, ADD_I32)
DEFINE_CUMSUM(i64, int64_t, ADD_I64)
DEFINE_CUMSUM(u32, uint32_t, ADD_PLAIN)
DEFINE_CUMSUM(u64, uint64_t, ADD_PLAIN)

static qkv_status cumsum_init(const qkv_kernel *kernel, const qkv_host_api *host,
                              const qkv_node_ctx *node, void **state)
{
    (void)kernel;
    int64_t exclusive, reverse;
    qkv_status st = host->attr_int(node, "exclusive", 0, &exclusive);
    if (st == QKV_OK)
        st = host->attr_int(node, "reverse", 0, &reverse);
    if (st != QKV_OK)
        return st;
    cumsum_attrs *s = malloc(sizeof *s);
    if (!s)
        return NERR(host, node, QKV_ERR_OUT_OF_MEMORY, "kernel state");
    s->exclusive = exclusive != 0;
    s->reverse = reverse != 0;
    *state = s;
    return QKV_OK;
}

static void cumsum_destroy(void *state) { free(state); }

/* The normalised axis into *axis; *known false when the value (or x's
 * rank) is not known yet. SHAPE for a non-scalar or out-of-range axis. */
static qkv_status cumsum_axis(qkv_kernel_io *io, int32_t *axis, bool *known)
{
    const qkv_tensor *x = &io->inputs[0], *a = &io->inputs[1];
    *known = false;
    if (qkv_shape_known(a) && (a->rank > 1 || qkv_numel(a) != 1))
        return KERR(io, QKV_ERR_SHAPE,
                    "input 1 'axis' has rank %d and %zu elements, expected one element", a->rank,
                    qkv_numel(a));
    if (!a->data || !qkv_shape_known(a) || x->rank < 0)
        return QKV_OK;
    int64_t v = qkv_int_at(a, 0);
    if (!qkv_axis_normalize(v, x->rank, false, axis))
        return KERR(io, QKV_ERR_SHAPE,
                    "input 1 'axis' is %lld, out of range for input 0 'x' of rank %d "
                    "(expected %d to %d)",
                    (long long)v, x->rank, -x->rank, x->rank - 1);
    *known = true;
    return QKV_OK;
}

static qkv_status cumsum_infer(void *state, qkv_kernel_io *io)
{
    (void)state;
    const qkv_tensor *x = &io->inputs[0];
    qkv_set_shape(&io->outputs[0], x->dtype, x->rank, x->dims);
    int32_t axis;
    bool known;
    return cumsum_axis(io, &axis, &known);
}

static qkv_status cumsum_compute(const void *state, qkv_kernel_io *io)
{
    const cumsum_attrs *s = state;
    const qkv_tensor *x = &io->inputs[0];
    int32_t axis;
    bool known;
    qkv_status st = cumsum_axis(io, &axis, &known);
    if (st != QKV_OK)
        return st;
    if (!known)
        return KERR(io, QKV_ERR_INTERNAL, "input 1 'axis' has no value at compute");
    cumsum_run r = {
        .x = x->data, .y = io->outputs[0].data, .exclusive = s->exclusive, .reverse = s->reverse};
    size_t outer = 1;
    r.d = (size_t)x->dims[axis];
    r.inner = 1;
    for (int32_t k = 0; k < x->rank; k++) {
        if (k < axis)
            outer *= (size_t)x->dims[k];
        else if (k > axis)
            r.inner *= (size_t)x->dims[k];
    }
    qkv_range_fn fn;
    switch (x->dtype) {
    case QKV_DTYPE_FLOAT:
        fn = cumsum_range_f32;
        break;
    case QKV_DTYPE_DOUBLE:
        fn = cumsum_range_f64;
        break;
    case QKV_DTYPE_INT32:
        fn = cumsum_range_i32;
        break;
    case QKV_DTYPE_INT64:
        fn = cumsum_range_i64;
        break;
    case QKV_DTYPE_UINT32:
        fn = cumsum_range_u32;
        break;
    case QKV_DTYPE_UINT64:
        fn = cumsum_range_u64;
        break;
    default:
        return KERR(io, QKV_ERR_TYPE, "input 0 'x' has type %s, not supported",
                    qkv_dtype_name(x->dtype));
    }
    if (outer * r.d * r.inner == 0)
        return QKV_OK;
    /* whole rows (sequential reads) unless threads would sit idle */
    bool par = qkv_numel(x) >= PAR_MIN_ELEMS;
    r.strip = qkv_strip_len(r.inner, outer, par ? io->host->thread_count(io->host_ctx) : 1);
    r.strips = (r.inner + r.strip - 1) / r.strip;
    size_t units = outer * r.strips;
    if (units > 1 && par)
        io->host->parallel_for(io->host_ctx, units, fn, &r);
    else
        fn(&r, 0, units);
    return QKV_OK;
}

#define CUMSUM_TYPES                                                                               \
    (QKV_TYPES_FLOATS | QKV_T(INT32) | QKV_T(INT64) | QKV_T(UINT32) | QKV_T(UINT64))

#define CUMSUM_KERNEL(SINCE, UNTIL)                                                                \
    {                                                                                              \
        QKV_KERNEL_V1, .domain = "", .op_type = "CumSum", .since_version = (SINCE),                \
                       .until_version = (UNTIL), .min_inputs = 2, .max_inputs = 2,                 \
                       .min_outputs = 1, .max_outputs = 1, .n_input_types = 2,                     \
                       .input_types = {CUMSUM_TYPES, QKV_TYPES_INDEX}, .init = cumsum_init,        \
                       .infer = cumsum_infer, .compute = cumsum_compute,                           \
                       .destroy = cumsum_destroy,                                                  \
    }

/* 14 only adds float16/bfloat16 (not supported); two descriptors so
 * messages name the version */
static const qkv_kernel kernels[] = {CUMSUM_KERNEL(11, 13), CUMSUM_KERNEL(14, 0)};

/* The CumSum descriptors; *count set to their number. */
const qkv_kernel *qkv_ops_cumsum(size_t *count)
{
    *count = sizeof kernels / sizeof kernels[0];
    return kernels;
}
