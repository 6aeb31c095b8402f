/*
 * value_store.h - sequence and optional values at run time.
 *
 * Tensors live in the plan's arena; a sequence or an optional lives in a
 * box owned by the run context (one per such value of the graph), because
 * its size is known only when its node runs. A box owns a growable array of
 * tensors, each with its own malloc'd payload: growth allocates, which is
 * inherent to sequences. A graph input's box borrows the caller's tensors.
 * Every box is emptied at the start of a run and when the context is
 * destroyed, so a run that fails half way leaks nothing and the next run
 * starts clean.
 *
 * Kernels never see a box: they reach one through the host services
 * value_length, value_has_element, value_element, value_append and
 * value_set_has_element (qkv_plugin.h), which find it through the host
 * context's in_boxes/out_boxes.
 */
#ifndef QKV_VALUE_STORE_H
#define QKV_VALUE_STORE_H

#include <stdbool.h>
#include <stddef.h>

#include "qkv.h"
#include "qkv_plugin.h"

typedef struct qkv_box {
    qkv_type_kind kind;
    qkv_dtype elem_dtype; /* the declared element type (UNDEFINED: any) */
    bool has_element;     /* optionals: not empty; sequences: always true once bound */
    bool borrowed;        /* items are the caller's (a graph input): never freed */
    size_t n, cap;
    qkv_tensor *items; /* (n) */
} qkv_box;

/* Empties b (frees what it owns) and makes it a value of this kind and
 * element type: a sequence holds an element (an empty sequence), an
 * optional does not. */
void qkv_box_reset(qkv_box *b, qkv_type_kind kind, qkv_dtype elem_dtype);

/* Frees what b owns, leaving it empty. NULL: no-op. */
void qkv_box_fini(qkv_box *b);

/* Makes b borrow a caller's value (a graph input): no copy. */
void qkv_box_borrow(qkv_box *b, const qkv_value *v);

/* Appends a tensor of this type and shape with a copy of data (zeros when
 * data is NULL; STRING: each string copied); *out (may be NULL) gets the
 * new element. QKV_ERR_SHAPE, QKV_ERR_OUT_OF_MEMORY (err may be NULL). */
qkv_status qkv_box_append(qkv_box *b, qkv_dtype dtype, int32_t rank, const int64_t *dims,
                          const void *data, qkv_tensor **out, qkv_error *err);

/* Makes dst (already reset to src's kind) a deep copy of src's contents. */
qkv_status qkv_box_copy(qkv_box *dst, const qkv_box *src, qkv_error *err);

/* True when a value of kind `from` may stand where `to` is declared: the
 * same kind, a value wrapped into an optional of it (a sequence where an
 * optional sequence is declared), or an optional unwrapped (which then
 * must hold its element). Across a subgraph's boundary, as ONNX allows. */
bool qkv_kind_converts(qkv_type_kind from, qkv_type_kind to);

/* Moves src's contents (src not borrowed) into dst without allocating:
 * dst's own elements are freed first, and src is left empty, holding
 * dst's old array for its next value. dst keeps its kind and element type. */
void qkv_box_move(qkv_box *dst, qkv_box *src);

/* dst (which keeps its kind and element type) gets the value src holds:
 * moved (qkv_box_move) when `move` and src is not borrowed, else copied.
 * A sequence or tensor entering an optional has its element. Errors, with
 * dst left empty: QKV_ERR_TYPE when src's kind cannot stand for dst's
 * (qkv_kind_converts) or an element is not dst's element type,
 * QKV_ERR_INVALID_ARGUMENT for an empty optional where dst is not an
 * optional, QKV_ERR_OUT_OF_MEMORY copying. */
qkv_status qkv_box_take(qkv_box *dst, qkv_box *src, bool move, qkv_error *err);

/* src viewed as a public value (tensors point into the box). */
void qkv_box_view(const qkv_box *b, qkv_value *out);

/* "tensor", "sequence", "optional", "optional sequence". */
const char *qkv_kind_name(qkv_type_kind kind);

/* The host services of ABI 1.3 (the qkv_host_api table in kernel_host.c). */
qkv_status qkv_host_value_length(const qkv_kernel_io *io, size_t k, size_t *length);
qkv_status qkv_host_value_has_element(const qkv_kernel_io *io, size_t k, int *has);
qkv_status qkv_host_value_element(const qkv_kernel_io *io, size_t k, size_t i, qkv_tensor *out);
qkv_status qkv_host_value_append(qkv_kernel_io *io, size_t k, qkv_dtype dtype, int32_t rank,
                                 const int64_t *dims, const void *data, qkv_tensor *out);
qkv_status qkv_host_value_set_has_element(qkv_kernel_io *io, size_t k, int has);

#endif /* QKV_VALUE_STORE_H */
