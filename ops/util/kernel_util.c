/* kernel_util.c - shape, axis and broadcasting helpers for the built-in kernels. */
#include "kernel_util.h"

#include <stdio.h>
#include <string.h>

#include "qkv.h"

bool qkv_shape_known(const qkv_tensor *t)
{
    if (t->rank < 0)
        return false;
    for (int32_t k = 0; k < t->rank; k++)
        if (t->dims[k] < 0)
            return false;
    return true;
}

size_t qkv_numel(const qkv_tensor *t)
{
    size_t n = 1;
    for (int32_t k = 0; k < t->rank; k++)
        n *= (size_t)t->dims[k];
    return n;
}

void qkv_set_shape(qkv_tensor *t, qkv_dtype dtype, int32_t rank, const int64_t *dims)
{
    t->dtype = dtype;
    t->rank = rank;
    for (int32_t k = 0; k < rank && k < QKV_MAX_RANK; k++)
        t->dims[k] = dims[k];
}

size_t qkv_elem_bytes(qkv_dtype t)
{
    size_t bits = qkv_dtype_bits(t); /* 0 for UNDEFINED */
    return t == QKV_DTYPE_STRING || bits % 8 ? 0 : bits / 8;
}

/* Runs of consecutive units handed to parallel_for as one unit each. */
typedef struct range_groups {
    size_t n, groups;
    qkv_range_fn fn;
    void *arg;
} range_groups;

/* The first unit of group g: n split into `groups` runs whose lengths differ
 * by at most one (no product that could overflow). */
static size_t group_start(const range_groups *r, size_t g)
{
    size_t base = r->n / r->groups, extra = r->n % r->groups;
    return g * base + (g < extra ? g : extra);
}

static void run_groups(void *arg, size_t begin, size_t end)
{
    const range_groups *r = arg;
    r->fn(r->arg, group_start(r, begin), group_start(r, end));
}

void qkv_run_range(qkv_kernel_io *io, size_t n, size_t bytes, qkv_range_fn fn, void *arg)
{
    qkv_run_range_min(io, n, bytes, QKV_PARALLEL_MIN_CHUNK_BYTES, fn, arg);
}

void qkv_run_range_min(qkv_kernel_io *io, size_t n, size_t work, size_t min_chunk_work,
                       qkv_range_fn fn, void *arg)
{
    size_t chunks = min_chunk_work ? work / min_chunk_work : n;
    if (chunks > n)
        chunks = n;
    if (chunks < 2 || io->host->thread_count(io->host_ctx) <= 1) {
        fn(arg, 0, n);
    } else if (chunks == n) {
        io->host->parallel_for(io->host_ctx, n, fn, arg);
    } else {
        range_groups r = {.n = n, .groups = chunks, .fn = fn, .arg = arg};
        io->host->parallel_for(io->host_ctx, chunks, run_groups, &r);
    }
}

bool qkv_axis_normalize(int64_t axis, int32_t rank, bool inclusive, int32_t *out)
{
    int64_t r = inclusive ? (int64_t)rank + 1 : rank;
    if (axis < -r || axis >= r)
        return false;
    *out = (int32_t)(axis < 0 ? axis + r : axis);
    return true;
}

const char *qkv_dims_str(const qkv_tensor *t, char *buf, size_t cap)
{
    size_t used = 0;
    if (cap == 0)
        return buf;
    buf[0] = '\0';
    if (t->rank < 0) {
        snprintf(buf, cap, "[?]");
        return buf;
    }
    used += (size_t)snprintf(buf + used, cap - used, "[");
    for (int32_t k = 0; k < t->rank && used < cap; k++)
        used +=
            (size_t)snprintf(buf + used, cap - used, "%s%lld", k ? "," : "", (long long)t->dims[k]);
    if (used < cap)
        snprintf(buf + used, cap - used, "]");
    return buf;
}

qkv_status qkv_broadcast_shapes(qkv_kernel_io *io, const qkv_tensor *const *ins, size_t n,
                                qkv_tensor *out)
{
    int32_t rank = 0;
    for (size_t i = 0; i < n; i++) {
        if (ins[i]->rank < 0) {
            out->rank = -1;
            return QKV_OK;
        }
        if (ins[i]->rank > rank)
            rank = ins[i]->rank;
    }
    out->rank = rank;
    for (int32_t k = 0; k < rank; k++) {
        int64_t d = 1;
        bool unknown = false;
        for (size_t i = 0; i < n; i++) {
            int32_t off = rank - ins[i]->rank;
            if (k < off)
                continue;
            int64_t di = ins[i]->dims[k - off];
            if (di < 0) {
                unknown = true;
                continue;
            }
            if (di == 1)
                continue;
            if (d != 1 && d != di) {
                char a[96], b[96];
                return KERR(io, QKV_ERR_SHAPE,
                            "cannot broadcast shapes: input %zu is %s, another input %s "
                            "(dim %d: %lld vs %lld)",
                            i, qkv_dims_str(ins[i], a, sizeof a),
                            qkv_dims_str(ins[i == 0 ? 1 : 0], b, sizeof b), k, (long long)d,
                            (long long)di);
            }
            d = di;
        }
        out->dims[k] = (unknown && d == 1) ? -1 : d;
    }
    return QKV_OK;
}

void qkv_contiguous_strides(const qkv_tensor *t, size_t strides[QKV_MAX_RANK])
{
    size_t s = 1;
    for (int32_t k = t->rank - 1; k >= 0; k--) {
        strides[k] = s;
        s *= (size_t)t->dims[k];
    }
}

void qkv_broadcast_strides(const qkv_tensor *in, const qkv_tensor *out,
                           size_t strides[QKV_MAX_RANK])
{
    size_t own[QKV_MAX_RANK];
    qkv_contiguous_strides(in, own);
    int32_t off = out->rank - in->rank;
    for (int32_t k = 0; k < out->rank; k++) {
        if (k < off || in->dims[k - off] == 1)
            strides[k] = 0;
        else
            strides[k] = own[k - off];
    }
}

int64_t qkv_int_at(const qkv_tensor *t, size_t i)
{
    if (t->dtype == QKV_DTYPE_INT32)
        return ((const int32_t *)t->data)[i];
    return ((const int64_t *)t->data)[i];
}

qkv_status qkv_read_ints(qkv_kernel_io *io, size_t input, int64_t *out, size_t cap, size_t *n)
{
    const qkv_tensor *t = &io->inputs[input];
    *n = 0;
    if (t->dtype != QKV_DTYPE_INT64 && t->dtype != QKV_DTYPE_INT32)
        return KERR(io, QKV_ERR_TYPE, "input %zu must be int32 or int64, got %d", input,
                    (int)t->dtype);
    if (!t->data || !qkv_shape_known(t)) {
        *n = SIZE_MAX;
        return QKV_OK;
    }
    if (t->rank > 1)
        return KERR(io, QKV_ERR_SHAPE, "input %zu must be 0-D or 1-D, has rank %d", input, t->rank);
    size_t count = qkv_numel(t);
    if (count > cap)
        return KERR(io, QKV_ERR_SHAPE, "input %zu has %zu elements, at most %zu allowed", input,
                    count, cap);
    for (size_t i = 0; i < count; i++)
        out[i] = qkv_int_at(t, i);
    *n = count;
    return QKV_OK;
}

size_t qkv_string_bytes(size_t numel, size_t chars)
{
    size_t ptrs, total;
    if (__builtin_mul_overflow(numel, sizeof(char *), &ptrs) ||
        __builtin_add_overflow(ptrs, chars, &total))
        return SIZE_MAX;
    return total;
}

void qkv_string_writer_init(qkv_string_writer *w, qkv_tensor *t)
{
    size_t ptrs = qkv_numel(t) * sizeof(char *);
    w->slots = t->data;
    w->next = (char *)t->data + ptrs;
    w->end = (char *)t->data + (t->data_bytes > ptrs ? t->data_bytes : ptrs);
}

bool qkv_string_put(qkv_string_writer *w, size_t i, const char *s, size_t len)
{
    if ((size_t)(w->end - w->next) <= len)
        return false;
    memcpy(w->next, s, len);
    w->next[len] = '\0';
    w->slots[i] = w->next;
    w->next += len + 1;
    return true;
}
