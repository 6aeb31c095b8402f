/* error.c - caller-owned error records and status names. */
#include "error.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "str_util.h"

qkv_status qkv_error_setv(qkv_error *err, qkv_status status, const char *fmt, va_list ap)
{
    if (err) {
        err->status = status;
        vsnprintf(err->message, sizeof err->message, fmt, ap);
    }
    return status;
}

qkv_status qkv_error_set(qkv_error *err, qkv_status status, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    qkv_error_setv(err, status, fmt, ap);
    va_end(ap);
    return status;
}

qkv_status qkv_error_prefix(qkv_error *err, const char *fmt, ...)
{
    if (!err)
        return QKV_ERR_INTERNAL;
    char joined[2 * QKV_ERROR_MESSAGE_BYTES + 2];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(joined, QKV_ERROR_MESSAGE_BYTES, fmt, ap);
    va_end(ap);
    size_t used = n < 0 ? 0 : (size_t)n;
    if (used >= QKV_ERROR_MESSAGE_BYTES)
        used = QKV_ERROR_MESSAGE_BYTES - 1;
    memcpy(joined + used, ": ", 2);
    err->message[sizeof err->message - 1] = '\0';
    memcpy(joined + used + 2, err->message, strlen(err->message) + 1);
    qkv_strlcpy(err->message, joined, sizeof err->message);
    return err->status;
}

void qkv_error_clear(qkv_error *err)
{
    if (err) {
        err->status = QKV_OK;
        err->message[0] = '\0';
    }
}

const char *qkv_status_string(qkv_status status)
{
    switch (status) {
    case QKV_OK:
        return "ok";
    case QKV_ERR_INVALID_ARGUMENT:
        return "invalid argument";
    case QKV_ERR_INVALID_MODEL:
        return "invalid model";
    case QKV_ERR_UNSUPPORTED:
        return "unsupported";
    case QKV_ERR_SHAPE:
        return "shape error";
    case QKV_ERR_TYPE:
        return "type error";
    case QKV_ERR_OUT_OF_MEMORY:
        return "out of memory";
    case QKV_ERR_IO:
        return "I/O error";
    case QKV_ERR_PLUGIN:
        return "plugin error";
    case QKV_ERR_INTERNAL:
        return "internal error";
    case QKV_ERR_CANCELLED:
        return "cancelled";
    }
    return "unknown status";
}
