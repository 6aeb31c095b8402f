/*
 * value_store.c - the boxes that hold sequence and optional values during a
 * run, and the kernel host services over them (value_store.h).
 */
#include "value_store.h"

#include <stdlib.h>
#include <string.h>

#include "error.h"
#include "kernel_host.h"
#include "loader.h" /* qkv_tensor_data_free */
#include "size_math.h"

const char *qkv_kind_name(qkv_type_kind kind)
{
    switch (kind) {
    case QKV_KIND_TENSOR:
        return "tensor";
    case QKV_KIND_SEQUENCE:
        return "sequence";
    case QKV_KIND_OPTIONAL:
        return "optional";
    case QKV_KIND_OPTIONAL_SEQUENCE:
        return "optional sequence";
    }
    return "unknown kind";
}

void qkv_box_reset(qkv_box *b, qkv_type_kind kind, qkv_dtype elem_dtype)
{
    /* keep an owned array for the next run: a sequence of the same length
     * then grows without allocating its array again */
    if (!b->borrowed) {
        for (size_t i = 0; i < b->n; i++)
            if (b->items[i].data != qkv_empty_data())
                qkv_tensor_data_free(&b->items[i]);
    } else {
        b->items = NULL;
        b->cap = 0;
    }
    b->n = 0;
    b->borrowed = false;
    b->kind = kind;
    b->elem_dtype = elem_dtype;
    b->has_element = !(kind & QKV_KIND_OPTIONAL);
}

void qkv_box_fini(qkv_box *b)
{
    if (!b)
        return;
    qkv_box_reset(b, b->kind, b->elem_dtype);
    free(b->items);
    b->items = NULL;
    b->cap = 0;
    b->has_element = false;
}

void qkv_box_borrow(qkv_box *b, const qkv_value *v)
{
    qkv_box_fini(b);
    b->borrowed = true;
    b->items = (qkv_tensor *)v->tensors; /* only read: borrowed boxes are never written */
    b->n = v->count;
    b->has_element = (b->kind & QKV_KIND_OPTIONAL) ? v->has_element != 0 : true;
}

static qkv_status copy_strings(char **dst, char *const *src, size_t n, qkv_error *err)
{
    for (size_t i = 0; i < n; i++) {
        const char *s = src[i] ? src[i] : "";
        size_t len = strlen(s) + 1;
        dst[i] = malloc(len);
        if (!dst[i])
            return qkv_error_set(err, QKV_ERR_OUT_OF_MEMORY, "out of memory copying a string");
        memcpy(dst[i], s, len);
    }
    return QKV_OK;
}

qkv_status qkv_box_append(qkv_box *b, qkv_dtype dtype, int32_t rank, const int64_t *dims,
                          const void *data, qkv_tensor **out, qkv_error *err)
{
    size_t elems = 0, bytes = 0;
    if (out)
        *out = NULL;
    if (b->borrowed)
        return qkv_error_set(err, QKV_ERR_INTERNAL, "append to a borrowed value");
    if (rank < 0 || rank > QKV_MAX_RANK || (rank > 0 && !dims))
        return qkv_error_set(err, QKV_ERR_SHAPE, "element of rank %d (at most %d)", rank,
                             QKV_MAX_RANK);
    if (!qkv_shape_elements(dims, rank, &elems) || !qkv_dtype_storage_bytes(dtype, elems, &bytes))
        return qkv_error_set(err, QKV_ERR_SHAPE, "element with a negative dim or a size overflow");
    if (b->n == b->cap) {
        size_t cap = b->cap ? b->cap * 2 : 4;
        qkv_tensor *grown = realloc(b->items, cap * sizeof *grown);
        if (!grown)
            return qkv_error_set(err, QKV_ERR_OUT_OF_MEMORY, "out of memory growing a sequence");
        b->items = grown;
        b->cap = cap;
    }
    qkv_tensor *t = &b->items[b->n];
    memset(t, 0, sizeof *t);
    t->dtype = dtype;
    t->rank = rank;
    for (int32_t d = 0; d < rank; d++)
        t->dims[d] = dims[d];
    t->data_bytes = bytes;
    /* calloc: a string element starts as NULL pointers, so a failed copy frees cleanly */
    t->data = bytes ? calloc(1, bytes) : qkv_empty_data();
    if (!t->data)
        return qkv_error_set(err, QKV_ERR_OUT_OF_MEMORY, "out of memory: element of %zu bytes",
                             bytes);
    b->n++; /* counted now: on a failed string copy the box frees what was made */
    if (data && bytes) {
        if (dtype == QKV_DTYPE_STRING) {
            qkv_status st = copy_strings(t->data, data, elems, err);
            if (st != QKV_OK)
                return st;
        } else {
            memcpy(t->data, data, bytes);
        }
    }
    b->has_element = true;
    if (out)
        *out = t;
    return QKV_OK;
}

qkv_status qkv_box_copy(qkv_box *dst, const qkv_box *src, qkv_error *err)
{
    dst->has_element = src->has_element;
    for (size_t i = 0; i < src->n; i++) {
        const qkv_tensor *t = &src->items[i];
        qkv_status st = qkv_box_append(dst, t->dtype, t->rank, t->dims, t->data, NULL, err);
        if (st != QKV_OK)
            return st;
    }
    dst->has_element = src->has_element;
    return QKV_OK;
}

bool qkv_kind_converts(qkv_type_kind from, qkv_type_kind to)
{
    /* equal, or one is the optional of the other */
    return (from | QKV_KIND_OPTIONAL) == (to | QKV_KIND_OPTIONAL);
}

void qkv_box_move(qkv_box *dst, qkv_box *src)
{
    qkv_box_reset(dst, dst->kind, dst->elem_dtype); /* frees dst's elements, keeps its array */
    qkv_tensor *items = dst->items;
    size_t cap = dst->cap;
    dst->items = src->items;
    dst->cap = src->cap;
    dst->n = src->n;
    dst->has_element = src->has_element;
    /* src keeps dst's emptied array: the next value it holds grows into it */
    src->items = items;
    src->cap = cap;
    src->n = 0;
    src->has_element = !(src->kind & QKV_KIND_OPTIONAL);
}

qkv_status qkv_box_take(qkv_box *dst, qkv_box *src, bool move, qkv_error *err)
{
    qkv_box_reset(dst, dst->kind, dst->elem_dtype);
    if (!qkv_kind_converts(src->kind, dst->kind))
        return qkv_error_set(err, QKV_ERR_TYPE, "a %s cannot become a %s", qkv_kind_name(src->kind),
                             qkv_kind_name(dst->kind));
    if (!src->has_element && !(dst->kind & QKV_KIND_OPTIONAL))
        return qkv_error_set(err, QKV_ERR_INVALID_ARGUMENT,
                             "an empty optional where a %s is expected", qkv_kind_name(dst->kind));
    for (size_t i = 0; i < src->n && dst->elem_dtype != QKV_DTYPE_UNDEFINED; i++)
        if (src->items[i].dtype != dst->elem_dtype)
            return qkv_error_set(err, QKV_ERR_TYPE, "element %zu is %s, expected %s", i,
                                 qkv_dtype_name(src->items[i].dtype),
                                 qkv_dtype_name(dst->elem_dtype));
    /* a sequence wrapped into an optional has its element */
    bool has = src->has_element || !(src->kind & QKV_KIND_OPTIONAL);
    if (move && !src->borrowed) {
        qkv_box_move(dst, src);
    } else {
        qkv_status st = qkv_box_copy(dst, src, err);
        if (st != QKV_OK)
            return st;
    }
    dst->has_element = has || !(dst->kind & QKV_KIND_OPTIONAL);
    return QKV_OK;
}

void qkv_box_view(const qkv_box *b, qkv_value *out)
{
    out->kind = b->kind;
    out->elem_dtype = b->elem_dtype;
    out->has_element = b->has_element;
    out->count = b->n;
    out->tensors = b->items;
}

/* ---- host services ----------------------------------------------------------- */

static qkv_status value_error(const qkv_kernel_io *io, qkv_status st, const char *fmt, size_t k)
{
    return io->host->error(io->host_ctx, st, fmt, k);
}

static qkv_status input_box(const qkv_kernel_io *io, size_t k, const qkv_box **out)
{
    const qkv_host_ctx *h = io->host_ctx;
    *out = NULL;
    if (k >= io->n_inputs || !io->input_kinds || io->input_kinds[k] == QKV_KIND_TENSOR)
        return value_error(io, QKV_ERR_INVALID_ARGUMENT,
                           "input %zu is not a sequence or an optional", k);
    if (!h->in_boxes || !h->in_boxes[k] || !io->inputs[k].data)
        return value_error(io, QKV_ERR_INVALID_ARGUMENT,
                           "input %zu: its contents are not known before the run", k);
    *out = h->in_boxes[k];
    return QKV_OK;
}

static qkv_status output_box(qkv_kernel_io *io, size_t k, qkv_box **out)
{
    const qkv_host_ctx *h = io->host_ctx;
    *out = NULL;
    if (k >= io->n_outputs || !io->output_kinds || io->output_kinds[k] == QKV_KIND_TENSOR)
        return value_error(io, QKV_ERR_INVALID_ARGUMENT,
                           "output %zu is not a sequence or an optional", k);
    if (!h->out_boxes || !h->out_boxes[k])
        return value_error(io, QKV_ERR_INVALID_ARGUMENT,
                           "output %zu: sequences and optionals are written in compute only", k);
    *out = h->out_boxes[k];
    return QKV_OK;
}

qkv_status qkv_host_value_length(const qkv_kernel_io *io, size_t k, size_t *length)
{
    const qkv_box *b;
    *length = 0;
    qkv_status st = input_box(io, k, &b);
    if (st == QKV_OK)
        *length = b->n;
    return st;
}

qkv_status qkv_host_value_has_element(const qkv_kernel_io *io, size_t k, int *has)
{
    const qkv_box *b;
    *has = 0;
    qkv_status st = input_box(io, k, &b);
    if (st == QKV_OK)
        *has = b->has_element;
    return st;
}

qkv_status qkv_host_value_element(const qkv_kernel_io *io, size_t k, size_t i, qkv_tensor *out)
{
    const qkv_box *b;
    memset(out, 0, sizeof *out);
    out->rank = -1;
    qkv_status st = input_box(io, k, &b);
    if (st != QKV_OK)
        return st;
    if (i >= b->n)
        return io->host->error(io->host_ctx, QKV_ERR_INVALID_ARGUMENT,
                               "input %zu: element %zu of %zu", k, i, b->n);
    *out = b->items[i];
    if (!out->data)
        out->data = qkv_empty_data();
    return QKV_OK;
}

qkv_status qkv_host_value_append(qkv_kernel_io *io, size_t k, qkv_dtype dtype, int32_t rank,
                                 const int64_t *dims, const void *data, qkv_tensor *out)
{
    qkv_box *b;
    qkv_host_ctx *h = io->host_ctx;
    if (out) {
        memset(out, 0, sizeof *out);
        out->rank = -1;
    }
    qkv_status st = output_box(io, k, &b);
    if (st != QKV_OK)
        return st;
    if (b->kind == QKV_KIND_OPTIONAL && b->has_element)
        return io->host->error(h, QKV_ERR_INVALID_ARGUMENT,
                               "output %zu: an optional tensor holds one element", k);
    if (b->elem_dtype != QKV_DTYPE_UNDEFINED && dtype != b->elem_dtype)
        return io->host->error(h, QKV_ERR_TYPE, "output %zu holds %s elements, not %s", k,
                               qkv_dtype_name(b->elem_dtype), qkv_dtype_name(dtype));
    qkv_error local;
    qkv_error_clear(&local);
    qkv_tensor *t = NULL;
    st = qkv_box_append(b, dtype, rank, dims, data, &t, &local);
    if (st != QKV_OK)
        return io->host->error(h, st, "output %zu: %s", k, local.message);
    if (out)
        *out = *t;
    return QKV_OK;
}

qkv_status qkv_host_value_set_has_element(qkv_kernel_io *io, size_t k, int has)
{
    qkv_box *b;
    qkv_status st = output_box(io, k, &b);
    if (st != QKV_OK)
        return st;
    if (!(b->kind & QKV_KIND_OPTIONAL))
        return has ? QKV_OK
                   : io->host->error(io->host_ctx, QKV_ERR_INVALID_ARGUMENT,
                                     "output %zu: a sequence cannot be empty like an optional", k);
    if (!has && b->n)
        return io->host->error(io->host_ctx, QKV_ERR_INVALID_ARGUMENT,
                               "output %zu: the optional has its element already", k);
    b->has_element = has != 0;
    return QKV_OK;
}
