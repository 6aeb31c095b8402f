/*
 * error.h - filling a caller's qkv_error.
 */
#ifndef QKV_ERROR_H
#define QKV_ERROR_H

#include <stdarg.h>
#include <stddef.h>

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

#endif /* QKV_ERROR_H */
