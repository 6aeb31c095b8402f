/*
 * log.c - routing host->log messages. The plugin ABI's log(level, fmt, ...)
 * carries no session, so the session being created or run on a thread is
 * remembered in a thread-local pointer for as long as qkv works for it;
 * messages from elsewhere (a pool worker thread, no session at all) go to
 * the process default. The environment is read once, not per message.
 */
#include "log.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>

#define LOG_MESSAGE_BYTES 1024

static _Thread_local const qkv_session_options *current;

static pthread_once_t env_once = PTHREAD_ONCE_INIT;
static int env_level = QKV_LOG_WARN;

static void read_env(void)
{
    const char *env = getenv("QKV_LOG_LEVEL");
    if (env && env[0])
        env_level = atoi(env);
}

int qkv_log_default_level(void)
{
    pthread_once(&env_once, read_env);
    return env_level;
}

void qkv_log_enter(const qkv_session_options *opts, qkv_log_scope *scope)
{
    scope->previous = current;
    current = opts;
}

void qkv_log_leave(const qkv_log_scope *scope) { current = scope->previous; }

void qkv_log_vmessage(int level, const char *fmt, va_list ap)
{
    static const char *const names[] = {"error", "warning", "info", "debug"};
    const qkv_session_options *o = current;
    int max = o ? o->log_level : qkv_log_default_level();
    if (level > max)
        return;
    char msg[LOG_MESSAGE_BYTES];
    vsnprintf(msg, sizeof msg, fmt, ap);
    if (o && o->log) {
        o->log(o->log_user, level, msg);
        return;
    }
    fprintf(stderr, "qkv %s: %s\n", (unsigned)level < 4 ? names[level] : "log", msg);
}
