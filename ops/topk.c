/*
 * topk.c - TopK (opsets 1, 10, 11): the k largest (or, from opset 11 with
 * largest = 0, smallest) elements along `axis` and their int64 indices.
 *
 * Opset 1 takes k as an attribute, 10+ as a one-element int64 input (a
 * 0-D k is accepted too); unknown k at inference -> that output dim is -1.
 * k < 0 or k > dim(axis) is QKV_ERR_SHAPE.
 *
 * Order: best first; equal values keep the lower index first (the spec's
 * tie rule). NaN ranks above every number (numpy's sort order): first with
 * largest = 1, last with largest = 0. `sorted` = 0 allows any order; qkv
 * returns the sorted order anyway.
 *
 * Method: per slice along the axis, a size-k heap whose root is the worst
 * kept element, built directly in the output slice (no scratch), then
 * heap-sorted in place: O(n log k). Slices run in parallel when there are
 * many.
 * Types: every integer type, float, double (not float16/bfloat16).
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "kernel_util.h"
#include "qkv.h"

/* Go parallel when n * log2(k) work per call exceeds this. */
#define PAR_MIN_WORK ((double)(1u << 15))

typedef struct topk_state {
    int64_t opset;
    int64_t axis;
    int64_t k_attr; /* opset 1 */
    bool largest;
} topk_state;

static qkv_status topk_init(const qkv_kernel *kern, const qkv_host_api *host,
                            const qkv_node_ctx *node, void **state)
{
    (void)kern;
    topk_state *s = calloc(1, sizeof *s);
    if (!s)
        return NERR(host, node, QKV_ERR_OUT_OF_MEMORY, "kernel state");
    s->opset = host->node_opset(node);
    int64_t largest = 1, sorted = 1;
    qkv_status st = host->attr_int(node, "axis", -1, &s->axis);
    if (st == QKV_OK)
        st = host->attr_int(node, "largest", 1, &largest);
    if (st == QKV_OK)
        st = host->attr_int(node, "sorted", 1, &sorted);
    if (st == QKV_OK && s->opset < 10) {
        if (host->attr_type(node, "k") != QKV_ATTR_INT)
            st = NERR(host, node, QKV_ERR_INVALID_MODEL, "attribute 'k' is missing");
        else
            st = host->attr_int(node, "k", 0, &s->k_attr);
        if (st == QKV_OK && s->k_attr < 0)
            st = NERR(host, node, QKV_ERR_INVALID_MODEL, "attribute 'k' is %lld, expected >= 0",
                      (long long)s->k_attr);
    }
    if (st != QKV_OK) {
        free(s);
        return st;
    }
    s->largest = largest != 0;
    *state = s;
    return QKV_OK;
}

static void topk_destroy(void *state) { free(state); }

/* k from the attribute or input 1; -1 when not known yet. */
static qkv_status read_k(const topk_state *s, qkv_kernel_io *io, int64_t *k)
{
    *k = -1;
    if (s->opset < 10) {
        *k = s->k_attr;
        return QKV_OK;
    }
    const qkv_tensor *t = &io->inputs[1];
    if (t->rank > 1 || (qkv_shape_known(t) && qkv_numel(t) != 1)) {
        char b[96];
        return KERR(io, QKV_ERR_SHAPE, "input 1 'K' has shape %s, expected [1]",
                    qkv_dims_str(t, b, sizeof b));
    }
    if (!t->data || !qkv_shape_known(t))
        return QKV_OK;
    *k = qkv_int_at(t, 0);
    if (*k < 0)
        return KERR(io, QKV_ERR_SHAPE, "input 1 'K' is %lld, expected >= 0", (long long)*k);
    return QKV_OK;
}

static qkv_status topk_infer(void *state, qkv_kernel_io *io)
{
    const topk_state *s = state;
    const qkv_tensor *x = &io->inputs[0];
    qkv_tensor *v = &io->outputs[0], *ix = &io->outputs[1];
    v->dtype = x->dtype;
    ix->dtype = QKV_DTYPE_INT64;
    v->rank = ix->rank = -1;
    int64_t k;
    qkv_status st = read_k(s, io, &k);
    if (st != QKV_OK || x->rank < 0)
        return st;
    int32_t axis;
    if (!qkv_axis_normalize(s->axis, x->rank, false, &axis))
        return KERR(io, QKV_ERR_SHAPE, "axis %lld is out of range for input 0 'X' of rank %d",
                    (long long)s->axis, x->rank);
    if (k >= 0 && x->dims[axis] >= 0 && k > x->dims[axis])
        return KERR(io, QKV_ERR_SHAPE, "k = %lld is larger than dim %d of input 0 'X' (size %lld)",
                    (long long)k, axis, (long long)x->dims[axis]);
    qkv_set_shape(v, x->dtype, x->rank, x->dims);
    v->dims[axis] = k;
    qkv_set_shape(ix, QKV_DTYPE_INT64, x->rank, v->dims);
    return QKV_OK;
}

/* One slice: n values at x[i * inner], k results to vals/idx[j * inner]. */
typedef struct topk_job {
    const void *x;
    void *vals;
    int64_t *idx;
    size_t n, k, inner;
    bool largest;
} topk_job;

/*
 * Per type: BETTER(a, ia, b, ib) says element (a, ia) ranks before (b, ib).
 * The heap keeps the k best seen so far with the worst at the root: a new
 * element replaces the root when it is better. Elements arrive in index
 * order, so a tie never replaces (the kept one has the lower index).
 */
#define TOPK_FN(NAME, T, GT)                                                                       \
    static bool NAME##_better(bool largest, T a, int64_t ia, T b, int64_t ib)                      \
    {                                                                                              \
        if (largest ? GT(a, b) : GT(b, a))                                                         \
            return true;                                                                           \
        if (largest ? GT(b, a) : GT(a, b))                                                         \
            return false;                                                                          \
        return ia < ib;                                                                            \
    }                                                                                              \
    /* sift the root-to-leaf path from i down within heap[0, n) (stride st) */                     \
    static void NAME##_sift(bool largest, T *v, int64_t *ix, size_t st, size_t i, size_t n)        \
    {                                                                                              \
        T tv = v[i * st];                                                                          \
        int64_t ti = ix[i * st];                                                                   \
        for (;;) {                                                                                 \
            size_t c = 2 * i + 1;                                                                  \
            if (c >= n)                                                                            \
                break;                                                                             \
            /* the worse child goes up: the root stays the worst */                                \
            if (c + 1 < n &&                                                                       \
                NAME##_better(largest, v[c * st], ix[c * st], v[(c + 1) * st], ix[(c + 1) * st]))  \
                c++;                                                                               \
            if (!NAME##_better(largest, tv, ti, v[c * st], ix[c * st]))                            \
                break;                                                                             \
            v[i * st] = v[c * st];                                                                 \
            ix[i * st] = ix[c * st];                                                               \
            i = c;                                                                                 \
        }                                                                                          \
        v[i * st] = tv;                                                                            \
        ix[i * st] = ti;                                                                           \
    }                                                                                              \
    static void NAME(const topk_job *j, size_t s)                                                  \
    {                                                                                              \
        const size_t inner = j->inner, n = j->n, k = j->k, o = s / inner, r = s % inner;           \
        const T *x = (const T *)j->x + o * n * inner + r;                                          \
        T *v = (T *)j->vals + o * k * inner + r;                                                   \
        int64_t *ix = j->idx + o * k * inner + r;                                                  \
        const bool lg = j->largest;                                                                \
        if (k == 0)                                                                                \
            return;                                                                                \
        for (size_t i = 0; i < k; i++) { /* the first k, heapified */                              \
            v[i * inner] = x[i * inner];                                                           \
            ix[i * inner] = (int64_t)i;                                                            \
        }                                                                                          \
        for (size_t i = k / 2; i-- > 0;)                                                           \
            NAME##_sift(lg, v, ix, inner, i, k);                                                   \
        for (size_t i = k; i < n; i++) {                                                           \
            T xi = x[i * inner];                                                                   \
            if (NAME##_better(lg, xi, (int64_t)i, v[0], ix[0])) {                                  \
                v[0] = xi;                                                                         \
                ix[0] = (int64_t)i;                                                                \
                NAME##_sift(lg, v, ix, inner, 0, k);                                               \
            }                                                                                      \
        }                                                                                          \
        for (size_t end = k; end-- > 1;) { /* worst to the back: best first */                     \
            T tv = v[0];                                                                           \
            int64_t ti = ix[0];                                                                    \
            v[0] = v[end * inner];                                                                 \
            ix[0] = ix[end * inner];                                                               \
            v[end * inner] = tv;                                                                   \
            ix[end * inner] = ti;                                                                  \
            NAME##_sift(lg, v, ix, inner, 0, end);                                                 \
        }                                                                                          \
    }                                                                                              \
    static void NAME##_range(void *arg, size_t begin, size_t end)                                  \
    {                                                                                              \
        for (size_t s = begin; s < end; s++)                                                       \
            NAME((const topk_job *)arg, s);                                                        \
    }

#define GT_PLAIN(a, b) ((a) > (b))
/* NaN ranks above every number, two NaNs are equal */
#define GT_FLOAT(a, b) ((a) > (b) || (isnan(a) && !isnan(b)))

TOPK_FN(topk_f32, float, GT_FLOAT)
TOPK_FN(topk_f64, double, GT_FLOAT)
TOPK_FN(topk_i8, int8_t, GT_PLAIN)
TOPK_FN(topk_i16, int16_t, GT_PLAIN)
TOPK_FN(topk_i32, int32_t, GT_PLAIN)
TOPK_FN(topk_i64, int64_t, GT_PLAIN)
TOPK_FN(topk_u8, uint8_t, GT_PLAIN)
TOPK_FN(topk_u16, uint16_t, GT_PLAIN)
TOPK_FN(topk_u32, uint32_t, GT_PLAIN)
TOPK_FN(topk_u64, uint64_t, GT_PLAIN)

static qkv_status topk_compute(const void *state, qkv_kernel_io *io)
{
    const topk_state *s = state;
    const qkv_tensor *x = &io->inputs[0];
    qkv_tensor *v = &io->outputs[0];
    int32_t axis;
    qkv_axis_normalize(s->axis, x->rank, false, &axis); /* checked in infer */
    /* k as infer sized the outputs (it checked k <= dim) */
    int64_t k = v->dims[axis];
    if (k > x->dims[axis] || io->outputs[1].dims[axis] != k)
        return KERR(io, QKV_ERR_INTERNAL, "outputs sized for k = %lld, dim is %lld", (long long)k,
                    (long long)x->dims[axis]);
    topk_job j = {.x = x->data,
                  .vals = v->data,
                  .idx = io->outputs[1].data,
                  .n = (size_t)x->dims[axis],
                  .k = (size_t)k,
                  .inner = 1,
                  .largest = s->largest};
    size_t outer = 1;
    for (int32_t a = 0; a < axis; a++)
        outer *= (size_t)x->dims[a];
    for (int32_t a = axis + 1; a < x->rank; a++)
        j.inner *= (size_t)x->dims[a];
    size_t slices = outer * j.inner;
    qkv_range_fn fn;
    switch (x->dtype) {
    case QKV_DTYPE_FLOAT:
        fn = topk_f32_range;
        break;
    case QKV_DTYPE_DOUBLE:
        fn = topk_f64_range;
        break;
    case QKV_DTYPE_INT8:
        fn = topk_i8_range;
        break;
    case QKV_DTYPE_INT16:
        fn = topk_i16_range;
        break;
    case QKV_DTYPE_INT32:
        fn = topk_i32_range;
        break;
    case QKV_DTYPE_INT64:
        fn = topk_i64_range;
        break;
    case QKV_DTYPE_UINT8:
        fn = topk_u8_range;
        break;
    case QKV_DTYPE_UINT16:
        fn = topk_u16_range;
        break;
    case QKV_DTYPE_UINT32:
        fn = topk_u32_range;
        break;
    case QKV_DTYPE_UINT64:
        fn = topk_u64_range;
        break;
    default:
        return KERR(io, QKV_ERR_TYPE, "input 0 'X' has type %s, not supported",
                    qkv_dtype_name(x->dtype));
    }
    if (slices == 0 || j.k == 0)
        return QKV_OK;
    double work = (double)slices * (double)j.n * log2((double)j.k + 1);
    if (slices > 1 && work >= PAR_MIN_WORK)
        io->host->parallel_for(io->host_ctx, slices, fn, &j);
    else
        fn(&j, 0, slices);
    return QKV_OK;
}

#define TOPK_KERNEL(since, until, n_in)                                                            \
    {                                                                                              \
        QKV_KERNEL_V1, .domain = "", .op_type = "TopK", .since_version = (since),                  \
                       .until_version = (until), .min_inputs = (n_in), .max_inputs = (n_in),       \
                       .min_outputs = 2, .max_outputs = 2, .n_input_types = 2,                     \
                       .input_types = {QKV_TYPES_NUMERIC, QKV_T(INT64)}, .init = topk_init,        \
                       .infer = topk_infer, .compute = topk_compute, .destroy = topk_destroy,      \
    }

static const qkv_kernel kernels[] = {
    TOPK_KERNEL(1, 9, 1),
    TOPK_KERNEL(10, 0, 2),
};

/* The topk family: TopK. */
const qkv_kernel *qkv_ops_topk(size_t *count)
{
    *count = sizeof kernels / sizeof kernels[0];
    return kernels;
}
