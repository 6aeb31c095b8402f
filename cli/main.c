/*
 * main.c - the qkv command-line tool: command dispatch, top-level help, and
 * the helpers every command shares (error lines, option parser, --shape).
 */
#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "cli.h"
#include "error.h"

/* every message here is about the command line */
#define qkv_error_set_cli(err, ...) qkv_error_set((err), QKV_ERR_INVALID_ARGUMENT, __VA_ARGS__)

static const char USAGE[] =
    "usage: qkv COMMAND [OPTIONS] [ARGS]\n"
    "\n"
    "commands:\n"
    "  info MODEL   show a model's metadata, inputs, outputs and operators\n"
    "  run MODEL    run a model once on inputs from files or random data\n"
    "  test DIR...  run ONNX backend test directories and compare the outputs\n"
    "  bench MODEL  time a model's runs and report latency and memory\n"
    "\n"
    "options:\n"
    "  -h, --help     show this help\n"
    "  --version      show the qkv version\n"
    "\n"
    "Run 'qkv COMMAND --help' for the options of a command.\n"
    "Exit status: 0 success, 1 error (or a failing test), 2 command-line mistake.\n";

typedef struct command {
    const char *name;
    int (*fn)(int argc, char **argv);
} command;

static const command COMMANDS[] = {
    {"info", qkv_cmd_info},
    {"run", qkv_cmd_run},
    {"test", qkv_cmd_test},
    {"bench", qkv_cmd_bench},
};

int main(int argc, char **argv)
{
    if (argc < 2)
        return qkv_cli_usage_error(USAGE, "missing command");
    const char *name = argv[1];
    if (!strcmp(name, "-h") || !strcmp(name, "--help")) {
        fputs(USAGE, stdout);
        return QKV_EXIT_OK;
    }
    if (!strcmp(name, "--version")) {
        printf("qkv %d.%d.%d\n", QKV_VERSION_MAJOR, QKV_VERSION_MINOR, QKV_VERSION_PATCH);
        return QKV_EXIT_OK;
    }
    if (!strcmp(name, "help")) {
        if (argc == 2) {
            fputs(USAGE, stdout);
            return QKV_EXIT_OK;
        }
        /* "qkv help CMD" is "qkv CMD --help" */
        for (size_t i = 0; i < sizeof COMMANDS / sizeof COMMANDS[0]; i++) {
            if (!strcmp(argv[2], COMMANDS[i].name)) {
                char help[] = "--help";
                char *args[] = {argv[2], help, NULL};
                return COMMANDS[i].fn(2, args);
            }
        }
        return qkv_cli_usage_error(USAGE, "unknown command '%s'", argv[2]);
    }
    for (size_t i = 0; i < sizeof COMMANDS / sizeof COMMANDS[0]; i++) {
        if (!strcmp(name, COMMANDS[i].name)) {
            /* The default plugins stay loaded for the whole command, so
             * `qkv test` does not dlopen OpenBLAS once per test (a failure
             * is left to the sessions to report). */
            qkv_plugin **pinned = NULL;
            size_t n_pinned = 0;
            if (qkv_plugin_load_defaults(&pinned, &n_pinned, NULL) != QKV_OK)
                n_pinned = 0;
            int rc = COMMANDS[i].fn(argc - 1, argv + 1);
            if (fflush(stdout) != 0 && rc == QKV_EXIT_OK)
                rc = qkv_cli_fail("cannot write to stdout: %s", strerror(errno));
            qkv_plugin_release_list(pinned, n_pinned);
            return rc;
        }
    }
    if (name[0] == '-')
        return qkv_cli_usage_error(USAGE, "unknown option '%s'", name);
    return qkv_cli_usage_error(USAGE, "unknown command '%s'", name);
}

/* ---- errors --------------------------------------------------------------- */

/* Writes "qkv: " + msg + "\n" with control characters replaced by spaces, so
 * the message is always exactly one line. */
static void print_error_line(const char *msg)
{
    char line[2 * QKV_ERROR_MESSAGE_BYTES];
    size_t n = 0;
    for (const char *s = msg; *s && n + 1 < sizeof line; s++)
        line[n++] = ((unsigned char)*s < 0x20 || *s == 0x7f) ? ' ' : *s;
    while (n > 0 && line[n - 1] == ' ')
        n--;
    line[n] = '\0';
    fflush(stdout);
    fprintf(stderr, "qkv: %s\n", line);
}

int qkv_cli_fail(const char *fmt, ...)
{
    char msg[2 * QKV_ERROR_MESSAGE_BYTES];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    print_error_line(msg);
    return QKV_EXIT_FAILURE;
}

int qkv_cli_fail_error(const qkv_error *err, const char *prefix)
{
    const char *m = err->message[0] ? err->message : qkv_status_string(err->status);
    if (prefix)
        return qkv_cli_fail("%s: %s", prefix, m);
    return qkv_cli_fail("%s", m);
}

int qkv_cli_usage_error(const char *usage, const char *fmt, ...)
{
    char msg[2 * QKV_ERROR_MESSAGE_BYTES];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    print_error_line(msg);
    fputs(usage, stderr);
    return QKV_EXIT_USAGE;
}

/* ---- option parsing --------------------------------------------------------- */

void qkv_cli_parser_init(qkv_cli_parser *p, int argc, char **argv, const qkv_cli_option *options,
                         size_t n_options, const char *usage)
{
    p->argc = argc;
    p->argv = argv;
    p->next = 1;
    p->only_operands = 0;
    p->options = options;
    p->n_options = n_options;
    p->usage = usage;
}

int qkv_cli_next_arg(qkv_cli_parser *p, int *kind, int *id, const char **value, int *rc)
{
    *kind = qkv_cli_next(p, id, value);
    switch (*kind) {
    case QKV_CLI_END:
        return 0;
    case QKV_CLI_ERROR:
        *rc = QKV_EXIT_USAGE;
        return -1;
    case QKV_CLI_HELP:
        fputs(p->usage, stdout);
        *rc = QKV_EXIT_OK;
        return -1;
    default:
        return 1;
    }
}

int qkv_cli_parse_model_args(qkv_cli_parser *p, qkv_cli_take_option_fn take, void *args,
                             const char **model, int *rc)
{
    for (;;) {
        int id, kind;
        const char *value;
        int more = qkv_cli_next_arg(p, &kind, &id, &value, rc);
        if (more <= 0)
            return more == 0;
        if (kind == QKV_CLI_OPERAND) {
            if (*model) {
                *rc = qkv_cli_usage_error(p->usage, "unexpected argument '%s'", value);
                return 0;
            }
            *model = value;
            continue;
        }
        *rc = take(args, id, value);
        if (*rc != QKV_EXIT_OK)
            return 0;
    }
}

int qkv_cli_next(qkv_cli_parser *p, int *id, const char **value)
{
    *id = -1;
    *value = NULL;
    if (p->next >= p->argc)
        return QKV_CLI_END;
    const char *arg = p->argv[p->next++];
    if (p->only_operands || arg[0] != '-' || arg[1] == '\0') {
        *value = arg; /* "-" alone is an operand (conventionally stdin) */
        return QKV_CLI_OPERAND;
    }
    if (!strcmp(arg, "--")) {
        p->only_operands = 1;
        return qkv_cli_next(p, id, value);
    }
    if (!strcmp(arg, "-h") || !strcmp(arg, "--help"))
        return QKV_CLI_HELP;
    const char *eq = strchr(arg, '=');
    size_t len = eq ? (size_t)(eq - arg) : strlen(arg);
    for (size_t i = 0; i < p->n_options; i++) {
        const qkv_cli_option *o = &p->options[i];
        if (strlen(o->name) != len || strncmp(o->name, arg, len) != 0)
            continue;
        *id = o->id;
        if (!o->takes_value) {
            if (eq) {
                qkv_cli_usage_error(p->usage, "option '%s' takes no value", o->name);
                return QKV_CLI_ERROR;
            }
            return QKV_CLI_OPTION;
        }
        if (eq) {
            *value = eq + 1;
        } else if (p->next < p->argc) {
            *value = p->argv[p->next++];
        } else {
            qkv_cli_usage_error(p->usage, "option '%s' needs a value", o->name);
            return QKV_CLI_ERROR;
        }
        return QKV_CLI_OPTION;
    }
    qkv_cli_usage_error(p->usage, "unknown option '%.*s' for '%s'", (int)len, arg, p->argv[0]);
    return QKV_CLI_ERROR;
}

int qkv_cli_parse_int(const char *s, int64_t min, int64_t max, int64_t *out)
{
    if (!s || !*s)
        return -1;
    const char *p = s;
    if (*p == '+' || *p == '-')
        p++;
    if (*p < '0' || *p > '9')
        return -1; /* no spaces, no hex, no empty digits */
    errno = 0;
    char *end = NULL;
    long long v = strtoll(s, &end, 10);
    if (errno || *end != '\0' || v < min || v > max)
        return -1;
    *out = (int64_t)v;
    return 0;
}

/* ---- shapes ------------------------------------------------------------------ */

qkv_status qkv_cli_parse_shape(const char *arg, qkv_cli_shape *out, qkv_error *err)
{
    const char *eq = strchr(arg, '=');
    if (!eq || eq == arg)
        return qkv_error_set_cli(err, "--shape '%s': expected NAME=d0,d1,...", arg);
    qkv_cli_shape s = {.name = arg, .rank = 0};
    const char *p = eq + 1;
    while (*p) {
        if (s.rank == QKV_MAX_RANK)
            return qkv_error_set_cli(err, "--shape '%s': more than %d dims", arg, QKV_MAX_RANK);
        const char *comma = strchr(p, ',');
        size_t len = comma ? (size_t)(comma - p) : strlen(p);
        char num[32];
        int64_t v = 0;
        if (len == 0 || len >= sizeof num)
            return qkv_error_set_cli(err, "--shape '%s': dim %d is not a number", arg, (int)s.rank);
        memcpy(num, p, len);
        num[len] = '\0';
        if (qkv_cli_parse_int(num, 0, INT64_MAX, &v) != 0)
            return qkv_error_set_cli(err, "--shape '%s': dim %d '%s' is not a non-negative integer",
                                     arg, (int)s.rank, num);
        s.dims[s.rank++] = v;
        if (!comma)
            break;
        p = comma + 1;
        if (!*p)
            return qkv_error_set_cli(err, "--shape '%s': trailing ','", arg);
    }
    *out = s;
    return QKV_OK;
}

static size_t shape_name_len(const qkv_cli_shape *s)
{
    return (size_t)(strchr(s->name, '=') - s->name);
}

static int shape_is(const qkv_cli_shape *s, const char *name)
{
    size_t len = shape_name_len(s);
    return strlen(name) == len && !strncmp(s->name, name, len);
}

qkv_status qkv_cli_resolve_shape(const qkv_value_info *vi, const qkv_cli_shape *shapes,
                                 size_t n_shapes, int32_t *rank, int64_t *dims, qkv_error *err)
{
    /* the last --shape naming the input wins, like most repeated options */
    const qkv_cli_shape *whole = NULL;
    for (size_t i = 0; i < n_shapes; i++)
        if (shape_is(&shapes[i], vi->name))
            whole = &shapes[i];
    if (whole) {
        if (vi->rank >= 0 && whole->rank != vi->rank)
            return qkv_error_set_cli(err, "--shape %.*s: input '%s' has rank %d, got %d dims",
                                     (int)shape_name_len(whole), whole->name, vi->name,
                                     (int)vi->rank, (int)whole->rank);
        for (int32_t k = 0; vi->rank >= 0 && k < vi->rank; k++) {
            if (vi->dims[k] >= 0 && vi->dims[k] != whole->dims[k])
                return qkv_error_set_cli(
                    err, "--shape %.*s: input '%s' dim %d is %" PRId64 ", got %" PRId64,
                    (int)shape_name_len(whole), whole->name, vi->name, (int)k, vi->dims[k],
                    whole->dims[k]);
        }
        *rank = whole->rank;
        memcpy(dims, whole->dims, sizeof(int64_t) * (size_t)whole->rank);
        return QKV_OK;
    }
    if (vi->rank < 0)
        return qkv_error_set_cli(err,
                                 "input '%s' has an unknown rank: give its shape with "
                                 "--shape %s=d0,d1,...",
                                 vi->name, vi->name);
    if (vi->rank > QKV_MAX_RANK)
        return qkv_error_set_cli(err, "input '%s' has rank %d (at most %d supported)", vi->name,
                                 (int)vi->rank, QKV_MAX_RANK);
    for (int32_t k = 0; k < vi->rank; k++) {
        if (vi->dims[k] >= 0) {
            dims[k] = vi->dims[k];
            continue;
        }
        const char *param = vi->dim_params ? vi->dim_params[k] : NULL;
        const qkv_cli_shape *sym = NULL;
        for (size_t i = 0; param && *param && i < n_shapes; i++)
            if (shape_is(&shapes[i], param))
                sym = &shapes[i];
        if (!sym) {
            if (param && *param)
                return qkv_error_set_cli(err,
                                         "input '%s' dim %d is symbolic ('%s'): give it with "
                                         "--shape %s=N or --shape %s=d0,d1,...",
                                         vi->name, (int)k, param, param, vi->name);
            return qkv_error_set_cli(err,
                                     "input '%s' dim %d is unknown: give the shape with "
                                     "--shape %s=d0,d1,...",
                                     vi->name, (int)k, vi->name);
        }
        if (sym->rank != 1)
            return qkv_error_set_cli(err, "--shape %s: a symbolic dim takes one value, got %d",
                                     param, (int)sym->rank);
        dims[k] = sym->dims[0];
    }
    *rank = vi->rank;
    return QKV_OK;
}

qkv_status qkv_cli_check_shape_names(const qkv_model *model, const qkv_cli_shape *shapes,
                                     size_t n_shapes, qkv_error *err)
{
    size_t n_in = qkv_model_input_count(model);
    for (size_t i = 0; i < n_shapes; i++) {
        int found = 0;
        for (size_t j = 0; j < n_in && !found; j++) {
            qkv_value_info vi = {.struct_size = sizeof(qkv_value_info)};
            qkv_model_input(model, j, &vi);
            if (shape_is(&shapes[i], vi.name))
                found = 1;
            for (int32_t k = 0; !found && vi.rank > 0 && vi.dim_params && k < vi.rank; k++)
                if (vi.dim_params[k] && *vi.dim_params[k] && shape_is(&shapes[i], vi.dim_params[k]))
                    found = 1;
        }
        if (!found) {
            char names[256];
            return qkv_error_set_cli(err,
                                     "--shape %.*s: the model has no input or symbolic dim "
                                     "named '%.*s' (inputs: %s)",
                                     (int)shape_name_len(&shapes[i]), shapes[i].name,
                                     (int)shape_name_len(&shapes[i]), shapes[i].name,
                                     qkv_cli_input_names(model, names, sizeof names));
        }
    }
    return QKV_OK;
}

/* ---- formatting ------------------------------------------------------------ */

const char *qkv_cli_human_bytes(uint64_t bytes, char *buf, size_t cap)
{
    static const char *const units[] = {"KiB", "MiB", "GiB", "TiB", "PiB", "EiB"};
    if (bytes < 1024) {
        snprintf(buf, cap, "%" PRIu64 " bytes", bytes);
        return buf;
    }
    double v = (double)bytes / 1024.0;
    size_t u = 0;
    while (v >= 1024.0 && u + 1 < sizeof units / sizeof units[0]) {
        v /= 1024.0;
        u++;
    }
    snprintf(buf, cap, "%.1f %s (%" PRIu64 " bytes)", v, units[u], bytes);
    return buf;
}

/* Appends to buf at *len, keeping it terminated and never overflowing. */
static void append(char *buf, size_t cap, size_t *len, const char *fmt, ...) QKV_CLI_PRINTF(4, 5);
static void append(char *buf, size_t cap, size_t *len, const char *fmt, ...)
{
    if (*len >= cap)
        return;
    va_list ap;
    va_start(ap, fmt);
    int w = vsnprintf(buf + *len, cap - *len, fmt, ap);
    va_end(ap);
    if (w > 0)
        *len = (size_t)w >= cap - *len ? cap - 1 : *len + (size_t)w;
}

const char *qkv_cli_value_shape(const qkv_value_info *vi, char *buf, size_t cap)
{
    size_t len = 0;
    buf[0] = '\0';
    if (vi->rank < 0) {
        append(buf, cap, &len, "[...]");
        return buf;
    }
    append(buf, cap, &len, "[");
    for (int32_t k = 0; k < vi->rank; k++) {
        const char *param = vi->dim_params ? vi->dim_params[k] : NULL;
        if (k)
            append(buf, cap, &len, ", ");
        if (vi->dims[k] >= 0)
            append(buf, cap, &len, "%" PRId64, vi->dims[k]);
        else if (param && *param)
            append(buf, cap, &len, "%s", param);
        else
            append(buf, cap, &len, "?");
    }
    append(buf, cap, &len, "]");
    return buf;
}

const char *qkv_cli_dims_str(int32_t rank, const int64_t *dims, char *buf, size_t cap)
{
    size_t len = 0;
    buf[0] = '\0';
    append(buf, cap, &len, "[");
    for (int32_t k = 0; k < rank; k++)
        append(buf, cap, &len, "%s%" PRId64, k ? ", " : "", dims[k]);
    append(buf, cap, &len, "]");
    return buf;
}

const char *qkv_cli_input_names(const qkv_model *model, char *buf, size_t cap)
{
    size_t len = 0, n = qkv_model_input_count(model);
    buf[0] = '\0';
    if (n == 0)
        append(buf, cap, &len, "none");
    for (size_t i = 0; i < n; i++) {
        qkv_value_info vi = {.struct_size = sizeof(qkv_value_info)};
        qkv_model_input(model, i, &vi);
        append(buf, cap, &len, "%s'%s'", i ? ", " : "", vi.name);
    }
    return buf;
}

double qkv_cli_now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec / 1e6;
}
