/*
 * kernel_util.h - helpers shared by the built-in kernels: descriptor
 * boilerplate, dtype masks, error reporting, shape and broadcasting math.
 * Plugins do not get these (they are not part of the ABI).
 */
#ifndef QKV_KERNEL_UTIL_H
#define QKV_KERNEL_UTIL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "qkv_plugin.h"

/* The first two fields of every built-in descriptor. */
#define QKV_KERNEL_V1 .struct_size = sizeof(qkv_kernel), .abi_version = QKV_ABI_VERSION

/* dtype masks for qkv_kernel.input_types */
#define QKV_T(x) QKV_DTYPE_BIT(QKV_DTYPE_##x)
#define QKV_TYPES_FLOATS (QKV_T(FLOAT) | QKV_T(DOUBLE))
#define QKV_TYPES_INTS                                                                             \
    (QKV_T(INT8) | QKV_T(INT16) | QKV_T(INT32) | QKV_T(INT64) | QKV_T(UINT8) | QKV_T(UINT16) |     \
     QKV_T(UINT32) | QKV_T(UINT64))
#define QKV_TYPES_NUMERIC (QKV_TYPES_FLOATS | QKV_TYPES_INTS)
#define QKV_TYPES_INDEX (QKV_T(INT32) | QKV_T(INT64))
/* every type whose elements are plain bytes (no strings) */
#define QKV_TYPES_PLAIN (QKV_TYPES_NUMERIC | QKV_T(BOOL) | QKV_T(FLOAT16) | QKV_T(BFLOAT16))
/* every type of whole-byte elements (no strings, no packed sub-byte types):
 * what a kernel that only moves elements by size (Gather, Slice, Concat...)
 * accepts */
#define QKV_TYPES_BYTES                                                                            \
    (QKV_TYPES_PLAIN | QKV_T(COMPLEX64) | QKV_T(COMPLEX128) | QKV_T(FLOAT8E4M3FN) |                \
     QKV_T(FLOAT8E4M3FNUZ) | QKV_T(FLOAT8E5M2) | QKV_T(FLOAT8E5M2FNUZ) | QKV_T(FLOAT8E8M0))

/* Report an error from infer/prepare/compute: `return KERR(io, QKV_ERR_SHAPE, "...", ...);` */
#define KERR(io, status, ...) ((io)->host->error((io)->host_ctx, (status), __VA_ARGS__))
/* Report an error from init. */
#define NERR(host, node, status, ...) ((host)->node_error((node), (status), __VA_ARGS__))

/* true when rank and every dim are known. */
bool qkv_shape_known(const qkv_tensor *t);
/* Element count of a tensor whose shape is known (overflow is impossible
 * there: the host checked it when it planned the tensor). */
size_t qkv_numel(const qkv_tensor *t);
/* Sets dtype, rank and dims (dims may be NULL for rank 0). */
void qkv_set_shape(qkv_tensor *t, qkv_dtype dtype, int32_t rank, const int64_t *dims);
/* An optional input is present when its dtype is not UNDEFINED. */
static inline bool qkv_present(const qkv_kernel_io *io, size_t k)
{
    return k < io->n_inputs && io->inputs[k].dtype != QKV_DTYPE_UNDEFINED;
}

/* Bytes per element of a dtype of whole-byte elements (one of
 * QKV_TYPES_BYTES); 0 for strings, packed sub-byte types and UNDEFINED. */
size_t qkv_elem_bytes(qkv_dtype t);

/* memcpy of one block of `bytes` (src and dst do not overlap); constant sizes
 * for the common element sizes let the compiler make each a single move. */
static inline void qkv_copy_block(unsigned char *restrict dst, const unsigned char *restrict src,
                                  size_t bytes)
{
    switch (bytes) {
    case 1:
        memcpy(dst, src, 1);
        break;
    case 2:
        memcpy(dst, src, 2);
        break;
    case 4:
        memcpy(dst, src, 4);
        break;
    case 8:
        memcpy(dst, src, 8);
        break;
    case 16:
        memcpy(dst, src, 16);
        break;
    default:
        memcpy(dst, src, bytes);
        break;
    }
}

/* The fewest bytes one parallel_for chunk of a copy-like compute should
 * write: a smaller share is cheaper to do on the calling thread than to hand
 * to another core (the hand-off, and that core fetching data the caller's
 * core just wrote). Measured on the encoder's 384 KiB head-split Transposes
 * and Slices at 2 threads (per-node minimums, 2-core Zen 5): 64 KiB chunks
 * made them 2.7x slower than on one thread, 256 KiB chunks (so they run
 * inline) as fast. */
#define QKV_PARALLEL_MIN_CHUNK_BYTES ((size_t)1 << 18)

/*
 * Runs fn(arg, begin, end) over [0, n), units of about equal cost, `work`
 * in all (in any unit): inline when the session has one thread, n <= 1 or
 * work < 2 * min_chunk_work; else split across threads with
 * host->parallel_for into at most work / min_chunk_work runs of consecutive
 * units, so no chunk gets less than about min_chunk_work.
 */
void qkv_run_range_min(qkv_kernel_io *io, size_t n, size_t work, size_t min_chunk_work,
                       qkv_range_fn fn, void *arg);

/* qkv_run_range_min for a compute that writes `bytes` bytes in all, with
 * chunks of at least QKV_PARALLEL_MIN_CHUNK_BYTES. */
void qkv_run_range(qkv_kernel_io *io, size_t n, size_t bytes, qkv_range_fn fn, void *arg);

/* Normalises axis in [-rank, rank) (or [-rank-1, rank] when `inclusive`,
 * for Unsqueeze-like ops) into *out; false when out of range. */
bool qkv_axis_normalize(int64_t axis, int32_t rank, bool inclusive, int32_t *out);

/*
 * Multidirectional (numpy) broadcasting of n shapes into out->rank/dims.
 * Unknown rank anywhere gives rank -1; an unknown dim gives -1 unless another
 * input has a known dim other than 1 there. Incompatible dims are
 * QKV_ERR_SHAPE, naming the inputs and dims.
 */
qkv_status qkv_broadcast_shapes(qkv_kernel_io *io, const qkv_tensor *const *ins, size_t n,
                                qkv_tensor *out);
/* Element strides of `in` viewed with the (broadcast) output shape `out`:
 * 0 where `in` is broadcast along that axis. */
void qkv_broadcast_strides(const qkv_tensor *in, const qkv_tensor *out,
                           size_t strides[QKV_MAX_RANK]);
/* Row-major element strides of a known shape. */
void qkv_contiguous_strides(const qkv_tensor *t, size_t strides[QKV_MAX_RANK]);

/*
 * Reads the values of an int32/int64 input (e.g. a shape or axes input) as
 * int64. When the value is not known (data NULL) returns QKV_OK with *n set
 * to SIZE_MAX. QKV_ERR_SHAPE when it has more than `cap` elements or is not
 * 0-D/1-D; QKV_ERR_TYPE for another dtype (then *n = 0).
 */
qkv_status qkv_read_ints(qkv_kernel_io *io, size_t input, int64_t *out, size_t cap, size_t *n);

/* Reads element i of an int32/int64 tensor as int64. */
int64_t qkv_int_at(const qkv_tensor *t, size_t i);

/*
 * String outputs (qkv_plugin.h, "String tensors"). A kernel writing a STRING
 * output asks, in infer, for the pointer array plus room for its characters
 * by setting the output's data_bytes to qkv_string_bytes(numel, chars); in
 * compute it stores each string with a writer over the output, which hands
 * out room after the pointer array. qkv_string_bytes gives SIZE_MAX on
 * overflow (the host then refuses the size).
 */
size_t qkv_string_bytes(size_t numel, size_t chars);

typedef struct qkv_string_writer {
    char **slots;     /* (numel) the output's pointers */
    char *next, *end; /* the room left for characters */
} qkv_string_writer;

/* A writer over the STRING tensor t (data and data_bytes set by the host). */
void qkv_string_writer_init(qkv_string_writer *w, qkv_tensor *t);
/* Stores the len bytes at s (plus a NUL) as element i; false when the room
 * infer asked for is used up. */
bool qkv_string_put(qkv_string_writer *w, size_t i, const char *s, size_t len);

/* Formats dims as "[2,3,-1]" into buf; returns buf. */
const char *qkv_dims_str(const qkv_tensor *t, char *buf, size_t cap);

#endif /* QKV_KERNEL_UTIL_H */
