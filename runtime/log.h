/*
 * log.h - where host->log messages go: the log callback of the session
 * being created or run on the calling thread, else stderr.
 */
#ifndef QKV_LOG_H
#define QKV_LOG_H

#include <stdarg.h>

#include "qkv.h"

/* The sink that was current before qkv_log_enter, restored by qkv_log_leave. */
typedef struct qkv_log_scope {
    const qkv_session_options *previous;
} qkv_log_scope;

/* Makes opts' log callback and level the calling thread's sink until
 * qkv_log_leave(scope). Scopes nest. opts must outlive the scope. */
void qkv_log_enter(const qkv_session_options *opts, qkv_log_scope *scope);
void qkv_log_leave(const qkv_log_scope *scope);

/* Delivers one message at `level` to the calling thread's sink (the
 * process default when none: stderr, at QKV_LOG_LEVEL or QKV_LOG_WARN),
 * formatted into a bounded buffer (longer messages are cut). */
void qkv_log_vmessage(int level, const char *fmt, va_list ap);

/* QKV_LOG_LEVEL as a number, read once per process; QKV_LOG_WARN when unset. */
int qkv_log_default_level(void);

#endif /* QKV_LOG_H */
