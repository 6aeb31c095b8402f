/*
 * cli.h - shared pieces of the qkv command-line tool: the commands, the exit
 * codes, error reporting and a small option parser.
 *
 * Conventions of every command:
 *  - `qkv COMMAND --help` prints the usage on stdout and exits 0;
 *  - a command-line mistake (unknown option, missing operand or value, a
 *    value that does not parse) prints "qkv: MESSAGE" and the usage on stderr
 *    and exits 2;
 *  - any other error prints exactly one line "qkv: MESSAGE" on stderr and
 *    exits 1.
 */
#ifndef QKV_CLI_H
#define QKV_CLI_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "qkv.h"

#if defined(__GNUC__)
#define QKV_CLI_PRINTF(f, a) __attribute__((format(printf, f, a)))
#else
#define QKV_CLI_PRINTF(f, a)
#endif

enum { QKV_EXIT_OK = 0, QKV_EXIT_FAILURE = 1, QKV_EXIT_USAGE = 2 };

/* The commands: argv[0] is the command name. Return the exit code. */
int qkv_cmd_info(int argc, char **argv);
int qkv_cmd_run(int argc, char **argv);
int qkv_cmd_test(int argc, char **argv);
int qkv_cmd_bench(int argc, char **argv); /* cmd_bench.c */

/* Prints "qkv: MESSAGE" as one line on stderr (newlines in the message
 * become spaces) and returns QKV_EXIT_FAILURE. */
int qkv_cli_fail(const char *fmt, ...) QKV_CLI_PRINTF(1, 2);
/* The same for a qkv_error: "qkv: PREFIX: MESSAGE" (prefix may be NULL). */
int qkv_cli_fail_error(const qkv_error *err, const char *prefix);
/* Prints "qkv: MESSAGE" then `usage` on stderr; returns QKV_EXIT_USAGE. */
int qkv_cli_usage_error(const char *usage, const char *fmt, ...) QKV_CLI_PRINTF(2, 3);

/* ---- option parsing ------------------------------------------------------ */

/* One option a command accepts. */
typedef struct qkv_cli_option {
    const char *name; /* "--threads" */
    int takes_value;  /* 1: "--name VALUE" or "--name=VALUE" */
    int id;           /* returned by qkv_cli_next */
} qkv_cli_option;

/* Parser state over argv[1..argc) (argv[0] is the command). */
typedef struct qkv_cli_parser {
    int argc;
    char **argv;
    int next;          /* index of the next argument */
    int only_operands; /* set after "--" */
    const qkv_cli_option *options;
    size_t n_options;
    const char *usage;
} qkv_cli_parser;

enum {
    QKV_CLI_END = 0,     /* no more arguments */
    QKV_CLI_OPERAND = 1, /* *value is an operand */
    QKV_CLI_OPTION = 2,  /* *id is the option, *value its value (NULL if none) */
    QKV_CLI_HELP = 3,    /* -h or --help */
    QKV_CLI_ERROR = 4    /* a usage error was printed: exit QKV_EXIT_USAGE */
};

void qkv_cli_parser_init(qkv_cli_parser *p, int argc, char **argv, const qkv_cli_option *options,
                         size_t n_options, const char *usage);
/* Returns the next QKV_CLI_* item. */
int qkv_cli_next(qkv_cli_parser *p, int *id, const char **value);
/* qkv_cli_next with what every command does alike handled here: returns 1
 * with an option or operand (in kind, id, value) for the command; 0 at the
 * end of the arguments; -1 when the command must stop with *rc: after --help
 * (usage printed on stdout, QKV_EXIT_OK) or a usage error (QKV_EXIT_USAGE). */
int qkv_cli_next_arg(qkv_cli_parser *p, int *kind, int *id, const char **value, int *rc);

/* Takes option `id` with its value (NULL for a flag) into a command's
 * arguments `args`. Returns QKV_EXIT_OK, or the exit code after printing
 * why the option is wrong (usually QKV_EXIT_USAGE). */
typedef int (*qkv_cli_take_option_fn)(void *args, int id, const char *value);

/* The argument loop of the commands that take at most one MODEL operand:
 * sets *model (left as is when there is none; a second operand is a usage
 * error) and passes each option to take(args, ...). Returns 1 to go on, or
 * 0 when the command must stop with *rc (after --help or an error). */
int qkv_cli_parse_model_args(qkv_cli_parser *p, qkv_cli_take_option_fn take, void *args,
                             const char **model, int *rc);

/* Parses a decimal integer in [min, max]; 0 on success, -1 otherwise. */
int qkv_cli_parse_int(const char *s, int64_t min, int64_t max, int64_t *out);

/* ---- shapes -------------------------------------------------------------- */

/* One --shape NAME=d0,d1,... argument ("NAME=" is rank 0). */
typedef struct qkv_cli_shape {
    const char *name; /* points into argv */
    int32_t rank;
    int64_t dims[QKV_MAX_RANK];
} qkv_cli_shape;

/* Parses "NAME=d0,d1,..." into *out. On failure writes a message into err
 * (QKV_ERR_INVALID_ARGUMENT) and returns it. */
qkv_status qkv_cli_parse_shape(const char *arg, qkv_cli_shape *out, qkv_error *err);

/*
 * Resolves the shape of model input `vi` for planning or random data:
 * a --shape naming the input gives the whole shape (checked against the
 * model's rank and fixed dims); otherwise the model's dims are used, each
 * symbolic dim taken from a --shape SYMBOL=N. Writes rank/dims into *out.
 * QKV_ERR_INVALID_ARGUMENT naming the input and dim when something is
 * missing or conflicts.
 */
qkv_status qkv_cli_resolve_shape(const qkv_value_info *vi, const qkv_cli_shape *shapes,
                                 size_t n_shapes, int32_t *rank, int64_t *dims, qkv_error *err);
/* Checks that each --shape names a model input or a symbolic dim of one.
 * QKV_ERR_INVALID_ARGUMENT listing the inputs otherwise. */
qkv_status qkv_cli_check_shape_names(const qkv_model *model, const qkv_cli_shape *shapes,
                                     size_t n_shapes, qkv_error *err);

/* ---- formatting ---------------------------------------------------------- */

/* "1.5 MiB (1572864 bytes)" or "12 bytes" into buf; returns buf. */
const char *qkv_cli_human_bytes(uint64_t bytes, char *buf, size_t cap);
/* "[batch, 128, ?]" / "[...]" / "[]" from a value info into buf; returns buf. */
const char *qkv_cli_value_shape(const qkv_value_info *vi, char *buf, size_t cap);
/* "[2, 3]" from rank and dims into buf; returns buf. */
const char *qkv_cli_dims_str(int32_t rank, const int64_t *dims, char *buf, size_t cap);
/* Writes "a, b, c" (the model's input names) into buf; returns buf. */
const char *qkv_cli_input_names(const qkv_model *model, char *buf, size_t cap);

/* Monotonic clock in milliseconds. */
double qkv_cli_now_ms(void);

/* ---- plugins and backends (cli_plugins.c) -------------------------------- */

/* The options every session-creating command shares: put
 * QKV_CLI_PLUGIN_OPTIONS in the option table and QKV_CLI_PLUGIN_USAGE in the
 * usage, and pass each option to qkv_cli_plugin_option. */
enum { QKV_CLI_OPT_PLUGIN = 1000, QKV_CLI_OPT_BACKEND, QKV_CLI_OPT_NO_DEFAULT_PLUGINS };
#define QKV_CLI_PLUGIN_OPTIONS                                                                     \
    {"--plugin", 1, QKV_CLI_OPT_PLUGIN}, {"--backend", 1, QKV_CLI_OPT_BACKEND},                    \
    {                                                                                              \
        "--no-default-plugins", 0, QKV_CLI_OPT_NO_DEFAULT_PLUGINS                                  \
    }
#define QKV_CLI_PLUGIN_USAGE                                                                       \
    "  --plugin PATH           load the plugin library PATH (custom operators or\n"                \
    "                          backends; repeatable; see docs/plugins.md)\n"                       \
    "  --backend NAME,...      run nodes only on these backends, preferring them in\n"             \
    "                          this order (default: all, by priority; e.g. cpu)\n"                 \
    "  --no-default-plugins    do not load the default plugins (QKV_PLUGIN_PATH, or\n"             \
    "                          qkv's plugin directory when that is unset)\n"

typedef struct qkv_cli_plugin_opts {
    const char **plugins; /* argv strings; capacity argc */
    size_t n_plugins;
    const char *backends;
    int no_defaults;
} qkv_cli_plugin_opts;

/* Room for up to argc --plugin options. 0, or -1 when out of memory. */
int qkv_cli_plugin_opts_init(qkv_cli_plugin_opts *po, int argc);
void qkv_cli_plugin_opts_fini(qkv_cli_plugin_opts *po);
/* Takes option `id` if it is one of QKV_CLI_PLUGIN_OPTIONS: returns 1 when
 * taken, 0 when not one of them, -1 after printing a usage error. */
int qkv_cli_plugin_option(qkv_cli_plugin_opts *po, int id, const char *value, const char *usage);
/* Copies the choices into session options. */
void qkv_cli_plugin_apply(const qkv_cli_plugin_opts *po, qkv_session_options *opts);
/* Prints the session's plugins, backend order and GEMM provider; with
 * per_node, each node's op and backend ("nodes:" table). */
void qkv_cli_print_backends(const qkv_session *session, int per_node);
/* Prints the per-node profile of ctx's last run: node, op, backend, ms. */
void qkv_cli_print_profile(const qkv_session *session, const qkv_context *ctx);

#endif /* QKV_CLI_H */
