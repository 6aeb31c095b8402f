/*
 * unique.c - Unique (opset 11): the unique elements of X (flattened), or
 * with `axis` its unique slices along that axis (negative counts from the
 * end), as numpy.unique with return_index, return_inverse, return_counts.
 *
 * Outputs: Y (the unique values or slices), indices (int64, the first
 * occurrence of each in X), inverse_indices (int64, for each element or
 * slice of X its position in Y) and counts (int64); any of the last three
 * may be omitted. `sorted` 1 (default) orders Y ascending (slices
 * lexicographically, element by element in row-major order); 0 keeps the
 * order of first occurrence.
 *
 * Types: numbers, bool, float16, bfloat16 (strings and complex are not
 * supported). Floats compare by value: -0 equals +0, and NaNs are equal to
 * each other and sort after every number (numpy >= 1.21).
 *
 * The count of unique values is known only with X's value: infer gives -1
 * without it, and the runtime runs the node dynamically, calling infer again
 * with the data (infer then does the analysis to count, with memory of its
 * own). Scratch: six arrays of size_t per element or slice along the axis.
 *
 * Slices without elements (a zero dim off the axis) are all equal: one
 * unique slice when the axis is not empty too, as numpy.unique gives. They
 * are counted without comparing and without scratch, however long the
 * axis (an empty X may declare any length there).
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "elementwise.h"
#include "qkv.h"
#include "size_math.h"

#define UNIQUE_TYPES (QKV_TYPES_NUMERIC | QKV_T(BOOL) | QKV_TYPES_HALF)

typedef struct unique_state {
    bool has_axis, sorted;
    int64_t axis;
} unique_state;

/* X viewed as (outer, n, inner): n items (elements or slices) to compare. */
typedef struct unique_view {
    const qkv_tensor *x;
    size_t outer, n, inner;
} unique_view;

/* The analysis, in caller memory of 6 * n size_t. */
typedef struct unique_work {
    size_t *perm;  /* (n) item indices sorted by value, ties by index */
    size_t *tmp;   /* (n) merge buffer, then rank -> group */
    size_t *first; /* (n) per group: the first item */
    size_t *count; /* (n) per group: its items */
    size_t *group; /* (n) per item: its group */
    size_t *rank;  /* (n) per group: its position in Y */
    size_t groups;
} unique_work;

static qkv_status unique_init(const qkv_kernel *kernel, const qkv_host_api *host,
                              const qkv_node_ctx *node, void **state)
{
    (void)kernel;
    unique_state *s = calloc(1, sizeof *s);
    if (!s)
        return NERR(host, node, QKV_ERR_OUT_OF_MEMORY, "kernel state");
    int64_t sorted = 1;
    s->has_axis = host->attr_type(node, "axis") != QKV_ATTR_UNDEFINED;
    qkv_status st = host->attr_int(node, "axis", 0, &s->axis);
    if (st == QKV_OK)
        st = host->attr_int(node, "sorted", 1, &sorted);
    if (st == QKV_OK && sorted != 0 && sorted != 1)
        st = NERR(host, node, QKV_ERR_INVALID_MODEL, "attribute 'sorted' is %lld, expected 0 or 1",
                  (long long)sorted);
    if (st != QKV_OK) {
        free(s);
        return st;
    }
    s->sorted = sorted == 1;
    *state = s;
    return QKV_OK;
}

static void unique_destroy(void *state) { free(state); }

/* The normalised axis (-1 without one); an error for a bad axis. */
static qkv_status unique_axis(const unique_state *s, qkv_kernel_io *io, int32_t *ax)
{
    const qkv_tensor *x = &io->inputs[0];
    *ax = -1;
    if (!s->has_axis || x->rank < 0)
        return QKV_OK;
    if (!qkv_axis_normalize(s->axis, x->rank, false, ax))
        return KERR(io, QKV_ERR_INVALID_MODEL,
                    "attribute 'axis' is %lld, out of range for input 0 'X' of rank %d",
                    (long long)s->axis, x->rank);
    return QKV_OK;
}

static unique_view view_of(const qkv_tensor *x, int32_t ax)
{
    unique_view v = {.x = x, .outer = 1, .n = qkv_numel(x), .inner = 1};
    if (ax < 0)
        return v;
    v.n = (size_t)x->dims[ax];
    for (int32_t a = 0; a < ax; a++)
        v.outer *= (size_t)x->dims[a];
    for (int32_t a = ax + 1; a < x->rank; a++)
        v.inner *= (size_t)x->dims[a];
    return v;
}

/* true when X is empty: no items (then outer and inner, products of
 * arbitrary dims, are not used: they may have wrapped), or items without
 * elements, all equal (the side holding X's zero dim is 0, wrapped or not). */
static bool items_empty(const unique_view *v)
{
    return v->n == 0 || v->outer == 0 || v->inner == 0;
}

/* -1, 0, 1 comparing element i and j of x; NaN equals NaN and follows numbers. */
#define CMP_NUM(a, b) ((a) < (b) ? -1 : (a) > (b) ? 1 : 0)
static int cmp_float(double a, double b)
{
    bool na = isnan(a), nb = isnan(b);
    if (na || nb)
        return na == nb ? 0 : na ? 1 : -1;
    return CMP_NUM(a, b);
}

static int cmp_elem(const qkv_tensor *x, size_t i, size_t j)
{
    switch (x->dtype) {
    case QKV_DTYPE_FLOAT:
        return cmp_float(((const float *)x->data)[i], ((const float *)x->data)[j]);
    case QKV_DTYPE_DOUBLE:
        return cmp_float(((const double *)x->data)[i], ((const double *)x->data)[j]);
    case QKV_DTYPE_FLOAT16: {
        const uint16_t *p = x->data;
        return cmp_float(qkv_f16_to_f32(p[i]), qkv_f16_to_f32(p[j]));
    }
    case QKV_DTYPE_BFLOAT16: {
        const uint16_t *p = x->data;
        return cmp_float(qkv_bf16_to_f32(p[i]), qkv_bf16_to_f32(p[j]));
    }
    case QKV_DTYPE_INT8:
        return CMP_NUM(((const int8_t *)x->data)[i], ((const int8_t *)x->data)[j]);
    case QKV_DTYPE_INT16:
        return CMP_NUM(((const int16_t *)x->data)[i], ((const int16_t *)x->data)[j]);
    case QKV_DTYPE_INT32:
        return CMP_NUM(((const int32_t *)x->data)[i], ((const int32_t *)x->data)[j]);
    case QKV_DTYPE_INT64:
        return CMP_NUM(((const int64_t *)x->data)[i], ((const int64_t *)x->data)[j]);
    case QKV_DTYPE_UINT8:
    case QKV_DTYPE_BOOL:
        return CMP_NUM(((const uint8_t *)x->data)[i], ((const uint8_t *)x->data)[j]);
    case QKV_DTYPE_UINT16:
        return CMP_NUM(((const uint16_t *)x->data)[i], ((const uint16_t *)x->data)[j]);
    case QKV_DTYPE_UINT32:
        return CMP_NUM(((const uint32_t *)x->data)[i], ((const uint32_t *)x->data)[j]);
    default: /* uint64: the type was checked before any comparison */
        return CMP_NUM(((const uint64_t *)x->data)[i], ((const uint64_t *)x->data)[j]);
    }
}

/* Compares items a and b (elements or slices) lexicographically. */
static int cmp_items(const unique_view *v, size_t a, size_t b)
{
    for (size_t o = 0; o < v->outer; o++) {
        size_t base = o * v->n * v->inner;
        for (size_t i = 0; i < v->inner; i++) {
            int c = cmp_elem(v->x, base + a * v->inner + i, base + b * v->inner + i);
            if (c)
                return c;
        }
    }
    return 0;
}

/* Stable bottom-up merge sort of perm[0..n) by item value. */
static void sort_items(const unique_view *v, size_t *perm, size_t *tmp, size_t n)
{
    size_t *src = perm, *dst = tmp;
    for (size_t w = 1; w < n; w *= 2) {
        for (size_t lo = 0; lo < n; lo += 2 * w) {
            size_t mid = lo + w < n ? lo + w : n, hi = lo + 2 * w < n ? lo + 2 * w : n;
            size_t i = lo, j = mid, k = lo;
            while (i < mid && j < hi)
                dst[k++] = cmp_items(v, src[j], src[i]) < 0 ? src[j++] : src[i++];
            while (i < mid)
                dst[k++] = src[i++];
            while (j < hi)
                dst[k++] = src[j++];
        }
        size_t *t = src;
        src = dst;
        dst = t;
    }
    if (src != perm)
        memcpy(perm, src, n * sizeof *perm);
}

static unique_work work_at(void *mem, size_t n)
{
    if (n == 0) /* scratch may be NULL: no pointer arithmetic on it */
        return (unique_work){0};
    size_t *p = mem;
    unique_work w = {p, p + n, p + 2 * n, p + 3 * n, p + 4 * n, p + 5 * n, 0};
    return w;
}

/* Groups equal items; fills every array of w. */
static void analyze(const unique_view *v, bool sorted, unique_work *w)
{
    size_t n = v->n;
    for (size_t i = 0; i < n; i++)
        w->perm[i] = i;
    sort_items(v, w->perm, w->tmp, n);
    size_t g = 0;
    for (size_t i = 0; i < n; i++) {
        if (i == 0 || cmp_items(v, w->perm[i - 1], w->perm[i]) != 0) {
            g = i == 0 ? 0 : g + 1;
            w->first[g] = w->perm[i]; /* stable sort: the lowest index of the run */
            w->count[g] = 0;
        }
        w->count[g]++;
        w->group[w->perm[i]] = g;
    }
    w->groups = n ? g + 1 : 0;
    if (sorted) {
        for (size_t k = 0; k < w->groups; k++)
            w->rank[k] = k;
    } else { /* order of first occurrence */
        size_t next = 0;
        for (size_t i = 0; i < n; i++)
            if (w->first[w->group[i]] == i)
                w->rank[w->group[i]] = next++;
    }
    for (size_t k = 0; k < w->groups; k++)
        w->tmp[w->rank[k]] = k; /* position in Y -> group */
}

/* The scratch of the analysis of v's items: none when they are empty
 * (items_empty); false when it would not fit in size_t. */
static bool work_bytes(const unique_view *v, size_t *bytes)
{
    *bytes = 0;
    return items_empty(v) || !qkv_mul_overflow(v->n, 6 * sizeof(size_t), bytes);
}

/* The number of unique items of v (X's data known), with memory of its own. */
static qkv_status count_groups(const unique_state *s, qkv_kernel_io *io, const unique_view *v,
                               size_t *groups)
{
    size_t bytes;
    *groups = v->n ? 1 : 0;
    if (items_empty(v))
        return QKV_OK;
    if (!work_bytes(v, &bytes))
        return KERR(io, QKV_ERR_OUT_OF_MEMORY, "%zu items along the axis: scratch overflows", v->n);
    void *mem = malloc(bytes ? bytes : 1);
    if (!mem)
        return KERR(io, QKV_ERR_OUT_OF_MEMORY, "%zu bytes to count the unique values", bytes);
    unique_work w = work_at(mem, v->n);
    analyze(v, s->sorted, &w);
    free(mem);
    *groups = w.groups;
    return QKV_OK;
}

/* Output shapes for `groups` unique items (-1: unknown). */
static void set_shapes(qkv_kernel_io *io, int32_t ax, int64_t groups, int64_t n_items)
{
    const qkv_tensor *x = &io->inputs[0];
    qkv_tensor *y = &io->outputs[0];
    if (ax < 0) {
        qkv_set_shape(y, x->dtype, 1, (int64_t[]){groups});
    } else {
        qkv_set_shape(y, x->dtype, x->rank, x->dims);
        y->dims[ax] = groups;
    }
    int64_t lens[3] = {groups, n_items, groups};
    for (size_t k = 1; k < io->n_outputs && k < 4; k++)
        qkv_set_shape(&io->outputs[k], QKV_DTYPE_INT64, 1, &lens[k - 1]);
}

static qkv_status check_type(qkv_kernel_io *io)
{
    qkv_dtype t = io->inputs[0].dtype;
    if (!(UNIQUE_TYPES & QKV_DTYPE_BIT(t)))
        return KERR(io, QKV_ERR_TYPE, "input 0 'X' has type %s, not supported", qkv_dtype_name(t));
    return QKV_OK;
}

static qkv_status unique_infer(void *state, qkv_kernel_io *io)
{
    const unique_state *s = state;
    const qkv_tensor *x = &io->inputs[0];
    int32_t ax;
    qkv_status st = unique_axis(s, io, &ax);
    if (st != QKV_OK)
        return st;
    if (x->rank < 0) { /* the rank of Y is unknown too when there is an axis */
        set_shapes(io, -1, -1, -1);
        if (s->has_axis)
            io->outputs[0].rank = -1;
        return QKV_OK;
    }
    bool shape = qkv_shape_known(x);
    int64_t items = ax < 0 ? (shape ? (int64_t)qkv_numel(x) : -1) : x->dims[ax];
    set_shapes(io, ax, -1, items);
    if (!shape || (!x->data && qkv_numel(x) != 0)) /* an empty value is known */
        return QKV_OK;
    if ((st = check_type(io)) != QKV_OK)
        return st;
    unique_view v = view_of(x, ax);
    size_t groups;
    if ((st = count_groups(s, io, &v, &groups)) != QKV_OK)
        return st;
    set_shapes(io, ax, (int64_t)groups, items);
    return QKV_OK;
}

static qkv_status unique_prepare(void *state, qkv_kernel_io *io)
{
    const unique_state *s = state;
    int32_t ax;
    qkv_status st = unique_axis(s, io, &ax);
    if (st != QKV_OK)
        return st;
    unique_view v = view_of(&io->inputs[0], ax);
    if (!work_bytes(&v, &io->scratch_bytes))
        return KERR(io, QKV_ERR_OUT_OF_MEMORY, "%zu items along the axis: scratch overflows", v.n);
    return QKV_OK;
}

static bool wanted(const qkv_kernel_io *io, size_t k)
{
    return k < io->n_outputs && io->outputs[k].data != NULL;
}

/* An empty X (items_empty): Y holds no bytes; one group of all n items,
 * unless there are none. */
static void compute_empty_items(qkv_kernel_io *io, size_t n)
{
    if (n == 0)
        return;
    if (wanted(io, 1))
        ((int64_t *)io->outputs[1].data)[0] = 0;
    if (wanted(io, 2))
        memset(io->outputs[2].data, 0, n * sizeof(int64_t)); /* all in group 0 */
    if (wanted(io, 3))
        ((int64_t *)io->outputs[3].data)[0] = (int64_t)n;
}

static qkv_status unique_compute(const void *state, qkv_kernel_io *io)
{
    const unique_state *s = state;
    const qkv_tensor *x = &io->inputs[0];
    qkv_tensor *y = &io->outputs[0];
    int32_t ax;
    qkv_status st = unique_axis(s, io, &ax);
    if (st == QKV_OK)
        st = check_type(io);
    if (st != QKV_OK)
        return st;
    unique_view v = view_of(x, ax);
    /* the outputs were sized by infer from the same data */
    size_t ylen = ax < 0 ? (size_t)y->dims[0] : (size_t)y->dims[ax];
    if (items_empty(&v)) {
        if (ylen != (v.n ? 1u : 0u))
            return KERR(io, QKV_ERR_INTERNAL, "output 0 has %zu items, expected %d", ylen,
                        v.n ? 1 : 0);
        compute_empty_items(io, v.n);
        return QKV_OK;
    }
    unique_work w = work_at(io->scratch, v.n);
    analyze(&v, s->sorted, &w);
    if (ylen != w.groups)
        return KERR(io, QKV_ERR_INTERNAL, "output 0 has %zu items, the input has %zu unique", ylen,
                    w.groups);
    size_t eb = qkv_ew_elem_bytes(x->dtype), row = v.inner * eb;
    const unsigned char *src = x->data;
    unsigned char *dst = y->data;
    for (size_t o = 0; o < v.outer; o++)
        for (size_t u = 0; u < w.groups; u++) {
            size_t item = w.first[w.tmp[u]];
            memcpy(dst + (o * w.groups + u) * row, src + (o * v.n + item) * row, row);
        }
    if (wanted(io, 1))
        for (size_t u = 0; u < w.groups; u++)
            ((int64_t *)io->outputs[1].data)[u] = (int64_t)w.first[w.tmp[u]];
    if (wanted(io, 2))
        for (size_t i = 0; i < v.n; i++)
            ((int64_t *)io->outputs[2].data)[i] = (int64_t)w.rank[w.group[i]];
    if (wanted(io, 3))
        for (size_t u = 0; u < w.groups; u++)
            ((int64_t *)io->outputs[3].data)[u] = (int64_t)w.count[w.tmp[u]];
    return QKV_OK;
}

static const qkv_kernel kernels[] = {
    {
        QKV_KERNEL_V1,
        .domain = "",
        .op_type = "Unique",
        .since_version = 11,
        .min_inputs = 1,
        .max_inputs = 1,
        .min_outputs = 1,
        .max_outputs = 4,
        .n_input_types = 1,
        .input_types = {UNIQUE_TYPES},
        .init = unique_init,
        .infer = unique_infer,
        .prepare = unique_prepare,
        .compute = unique_compute,
        .destroy = unique_destroy,
    },
};

/* The unique family: Unique. */
const qkv_kernel *qkv_ops_unique(size_t *count)
{
    *count = sizeof kernels / sizeof kernels[0];
    return kernels;
}
