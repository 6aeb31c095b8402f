/*
 * error.h - filling a caller's qkv_error, and overflow-checked size math.
 */
#ifndef QKV_ERROR_H
#define QKV_ERROR_H

#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "qkv.h"

#if defined(__GNUC__)
#define QKV_PRINTF(f, a) __attribute__((format(printf, f, a)))
#else
#define QKV_PRINTF(f, a)
#endif

/* Writes status and the formatted message into err (may be NULL); returns status. */
qkv_status qkv_error_set(qkv_error *err, qkv_status status, const char *fmt, ...) QKV_PRINTF(3, 4);
qkv_status qkv_error_setv(qkv_error *err, qkv_status status, const char *fmt, va_list ap);
/* Prepends "PREFIX: " to the message already in err; returns err->status
 * (QKV_ERR_INTERNAL when err is NULL). */
qkv_status qkv_error_prefix(qkv_error *err, const char *fmt, ...) QKV_PRINTF(2, 3);
/* Resets err to QKV_OK with an empty message (err may be NULL). */
void qkv_error_clear(qkv_error *err);

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

/* Copies at most cap-1 bytes of src into dst and terminates it. */
void qkv_strlcpy(char *dst, const char *src, size_t cap);
/* strdup that accepts NULL (returns a copy of ""). NULL when out of memory. */
char *qkv_strdup(const char *s);

#endif /* QKV_ERROR_H */
