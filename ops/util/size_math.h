/*
 * size_math.h - overflow-checked sizes of shapes and element types. Shared
 * by the kernels and the runtime (the lowest layer: it needs only qkv.h).
 */
#ifndef QKV_SIZE_MATH_H
#define QKV_SIZE_MATH_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "qkv.h"

/* Overflow-checked arithmetic: true on overflow (then *out is unspecified). */
static inline bool qkv_mul_overflow(size_t a, size_t b, size_t *out)
{
    return __builtin_mul_overflow(a, b, out);
}
static inline bool qkv_add_overflow(size_t a, size_t b, size_t *out)
{
    return __builtin_add_overflow(a, b, out);
}

/* Bytes needed by `elements` elements of dtype (sub-byte types rounded up to
 * whole bytes; STRING counts one char * per element). false on overflow or
 * an element type without a size. */
bool qkv_dtype_storage_bytes(qkv_dtype dtype, size_t elements, size_t *bytes);

/* Elements of a shape; false if a dim is negative or the product overflows. */
bool qkv_shape_elements(const int64_t *dims, int32_t rank, size_t *elements);

#endif /* QKV_SIZE_MATH_H */
