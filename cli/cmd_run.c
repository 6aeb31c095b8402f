/*
 * cmd_run.c - `qkv run MODEL [--input NAME=FILE]... [--output-dir DIR]
 *             [--threads N] [--random-inputs] [--shape NAME=d0,...]... [--seed S]
 *             [--no-fuse] [--plugin PATH]... [--backend NAME,...]
 *             [--no-default-plugins] [--verbose] [--profile]`
 *
 * Runs a model once through a qkv_context, prints a summary of every output
 * and optionally writes each one as DIR/<sanitized name>.npy.
 */
#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "cli.h"
#include "compare.h"
#include "error.h"
#include "inputs.h"
#include "loader.h"
#include "size_math.h"
#include "str_util.h"
#include "tensor_io.h"

static const char USAGE[] =
    "usage: qkv run MODEL [--input NAME=FILE]... [--random-inputs]\n"
    "               [--shape NAME=d0,d1,...]... [--seed S] [--threads N]\n"
    "               [--output-dir DIR] [--no-fuse] [--plugin PATH]...\n"
    "               [--backend NAME,...] [--no-default-plugins] [--verbose]\n"
    "               [--profile] [--warmup W]\n"
    "\n"
    "Run a model once and print each output's dtype, shape, first values,\n"
    "min/max/mean and the run time.\n"
    "\n"
    "options:\n"
    "  --input NAME=FILE       read input NAME from FILE: .npy (C order) or an ONNX\n"
    "                          TensorProto .pb (repeatable; every input needs one\n"
    "                          unless --random-inputs)\n"
    "  --random-inputs         fill inputs without --input with random data: floats\n"
    "                          uniform in [-1, 1), integers uniform in [0, 10),\n"
    "                          bools 0 or 1\n"
    "  --shape NAME=d0,d1,...  the shape of random input NAME; or SYMBOL=N to set a\n"
    "                          symbolic dim of every input (repeatable)\n"
    "  --seed S                seed of the random inputs (default 0)\n"
    "  --threads N             threads the run may use (default 1)\n"
    "  --no-fuse               do not fuse attention subgraphs into Attention "
    "nodes\n" QKV_CLI_PLUGIN_USAGE
    "  --verbose               print the plugins, the backend order and each node's\n"
    "                          op and backend before running\n"
    "  --profile               print each node's op, backend and time after the run\n"
    "  --warmup W              W untimed runs first (default 0), so the timed run,\n"
    "                          its profile included, is a warm one: memory\n"
    "                          planned, backend primitives built, caches filled\n"
    "  --output-dir DIR        write each output as DIR/NAME.npy (created if\n"
    "                          missing; characters outside [A-Za-z0-9._-] become '_')\n"
    "  -h, --help              show this help\n";

enum {
    OPT_INPUT,
    OPT_OUTPUT_DIR,
    OPT_THREADS,
    OPT_RANDOM,
    OPT_SHAPE,
    OPT_SEED,
    OPT_NO_FUSE,
    OPT_VERBOSE,
    OPT_PROFILE,
    OPT_WARMUP
};

static const qkv_cli_option OPTIONS[] = {
    {"--input", 1, OPT_INPUT},     {"--output-dir", 1, OPT_OUTPUT_DIR},
    {"--threads", 1, OPT_THREADS}, {"--random-inputs", 0, OPT_RANDOM},
    {"--shape", 1, OPT_SHAPE},     {"--seed", 1, OPT_SEED},
    {"--no-fuse", 0, OPT_NO_FUSE}, QKV_CLI_PLUGIN_OPTIONS,
    {"--verbose", 0, OPT_VERBOSE}, {"--profile", 0, OPT_PROFILE},
    {"--warmup", 1, OPT_WARMUP},
};

#define SHOW_VALUES 8

/* ---- output summary --------------------------------------------------------------- */

static void print_element(const qkv_tensor *t, size_t i)
{
    if (t->dtype == QKV_DTYPE_STRING) {
        const char *s = ((char *const *)t->data)[i];
        printf("\"%.40s%s\"", s ? s : "", s && strlen(s) > 40 ? "..." : "");
        return;
    }
    int is_float = 0;
    double v = qkv_cli_element(t, i, &is_float);
    if (t->dtype == QKV_DTYPE_COMPLEX64 || t->dtype == QKV_DTYPE_COMPLEX128) {
        const unsigned char *p = t->data;
        double im;
        if (t->dtype == QKV_DTYPE_COMPLEX64) {
            float f;
            memcpy(&f, p + i * 8 + 4, 4);
            im = f;
        } else {
            memcpy(&im, p + i * 16 + 8, 8);
        }
        printf("%.6g%+.6gj", v, im);
    } else if (is_float) {
        printf("%.6g", v);
    } else if (t->dtype == QKV_DTYPE_UINT64) {
        uint64_t u;
        memcpy(&u, (const unsigned char *)t->data + i * 8, 8);
        printf("%" PRIu64, u);
    } else if (t->dtype == QKV_DTYPE_INT64) {
        int64_t s;
        memcpy(&s, (const unsigned char *)t->data + i * 8, 8);
        printf("%" PRId64, s);
    } else {
        printf("%.0f", v);
    }
}

static void print_summary(const char *name, const qkv_tensor *t)
{
    char dims[512];
    size_t n = 0;
    printf("output %s: %s %s\n", name, qkv_dtype_name(t->dtype),
           t->rank >= 0 && t->rank <= QKV_MAX_RANK
               ? qkv_cli_dims_str(t->rank, t->dims, dims, sizeof dims)
               : "[?]");
    size_t need = 0;
    if (t->rank < 0 || t->rank > QKV_MAX_RANK || !qkv_shape_elements(t->dims, t->rank, &n) ||
        !qkv_dtype_storage_bytes(t->dtype, n, &need) || need > t->data_bytes ||
        (need && !t->data)) {
        printf("  (no data)\n");
        return;
    }
    int showable = qkv_cli_dtype_numeric(t->dtype) || t->dtype == QKV_DTYPE_STRING ||
                   t->dtype == QKV_DTYPE_COMPLEX64 || t->dtype == QKV_DTYPE_COMPLEX128;
    if (!showable) {
        printf("  values: (not shown for %s)\n", qkv_dtype_name(t->dtype));
        return;
    }
    fputs("  values: [", stdout);
    for (size_t i = 0; i < n && i < SHOW_VALUES; i++) {
        if (i)
            fputs(", ", stdout);
        print_element(t, i);
    }
    printf("%s]\n", n > SHOW_VALUES ? ", ..." : "");
    if (!qkv_cli_dtype_numeric(t->dtype) || n == 0)
        return;
    double lo = INFINITY, hi = -INFINITY, sum = 0.0;
    size_t nan = 0;
    for (size_t i = 0; i < n; i++) {
        double v = qkv_cli_element(t, i, NULL);
        if (isnan(v)) {
            nan++;
            continue;
        }
        lo = v < lo ? v : lo;
        hi = v > hi ? v : hi;
        sum += v;
    }
    if (nan == n) {
        printf("  min nan  max nan  mean nan  (all %zu NaN)\n", n);
        return;
    }
    printf("  min %.6g  max %.6g  mean %.6g", lo, hi, sum / (double)(n - nan));
    if (nan)
        printf("  (%zu NaN)", nan);
    putchar('\n');
}

/* "a/b:0" -> "a_b_0"; "" and dot names become "output_K". */
static void sanitize(const char *name, size_t k, char *buf, size_t cap)
{
    size_t n = 0;
    for (const char *s = name; *s && n + 1 < cap; s++) {
        char c = *s;
        int ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                 c == '.' || c == '_' || c == '-';
        buf[n++] = ok ? c : '_';
    }
    buf[n] = '\0';
    if (n == 0 || strspn(buf, ".") == n)
        snprintf(buf, cap, "output_%zu", k);
}

/* Writes every output into dir (created if missing). */
static int write_outputs(const char *dir, const qkv_model *model, const qkv_context *ctx)
{
    qkv_error err = {0};
    if (mkdir(dir, 0777) != 0 && errno != EEXIST)
        return qkv_cli_fail("cannot create directory '%s': %s", dir, strerror(errno));
    size_t n_out = qkv_model_output_count(model);
    char **names = calloc(n_out ? n_out : 1, sizeof *names);
    if (!names)
        return qkv_cli_fail("out of memory");
    int rc = QKV_EXIT_OK;
    for (size_t i = 0; i < n_out && rc == QKV_EXIT_OK; i++) {
        qkv_value_info vi = {.struct_size = sizeof(qkv_value_info)};
        qkv_model_output(model, i, &vi);
        char clean[160], base[200], file[256];
        sanitize(vi.name, i, clean, sizeof clean);
        snprintf(base, sizeof base, "%s", clean);
        /* names that sanitize alike ("a/b", "a_b") get distinct files; at
         * most i earlier names can collide, so this ends */
        for (size_t attempt = 0;; attempt++) {
            int taken = 0;
            for (size_t j = 0; j < i && !taken; j++)
                taken = names[j] && !strcmp(names[j], base);
            if (!taken)
                break;
            snprintf(base, sizeof base, "%s_%zu_%zu", clean, i, attempt);
        }
        names[i] = qkv_strdup(base);
        if (!names[i]) {
            rc = qkv_cli_fail("out of memory");
            break;
        }
        snprintf(file, sizeof file, "%s.npy", base);
        size_t plen = strlen(dir) + 1 + strlen(file) + 1;
        char *path = malloc(plen);
        if (!path) {
            rc = qkv_cli_fail("out of memory");
            break;
        }
        snprintf(path, plen, "%s/%s", dir, file);
        const qkv_tensor *t = qkv_context_output(ctx, i);
        if (!t && vi.kind != QKV_KIND_TENSOR)
            printf("skipped %s: a sequence or an optional (no .npy form)\n", path);
        else if (!t)
            rc = qkv_cli_fail("output %zu '%s' has no value", i, vi.name);
        else if (qkv_cli_npy_write(path, t, &err) != QKV_OK)
            rc = qkv_cli_fail_error(&err, NULL);
        else
            printf("wrote %s\n", path);
        free(path);
    }
    for (size_t i = 0; i < n_out; i++)
        free(names[i]);
    free(names);
    return rc;
}

/* ---- the command ------------------------------------------------------------------- */

typedef struct run_args {
    const char *model;
    const char **input_args; /* "NAME=FILE" */
    size_t n_inputs;
    qkv_cli_shape *shapes;
    size_t n_shapes;
    const char *output_dir;
    size_t threads;
    int random;
    uint64_t seed;
    int no_fuse;                 /* --no-fuse */
    qkv_cli_plugin_opts plugins; /* --plugin, --backend, --no-default-plugins */
    int verbose, profile;
    size_t warmup; /* untimed runs before the timed one */
} run_args;

/* Creates the session the options ask for (threads, fusion, plugins) and
 * prints its backends with --verbose; *load_ms is the time it took. A model
 * without outputs is refused: success would claim work not done. */
static int open_session(const run_args *a, qkv_session **session, double *load_ms)
{
    qkv_error err = {0};
    qkv_session_options opts;
    qkv_session_options_init(&opts);
    opts.threads = a->threads;
    opts.disable_fusion = a->no_fuse; /* --no-fuse */
    qkv_cli_plugin_apply(&a->plugins, &opts);
    double t0 = qkv_cli_now_ms();
    if (qkv_session_create(a->model, &opts, session, &err) != QKV_OK)
        return qkv_cli_fail_error(&err, NULL);
    *load_ms = qkv_cli_now_ms() - t0;
    if (a->verbose)
        qkv_cli_print_backends(*session, 1);
    if (qkv_model_output_count(qkv_session_model(*session)) == 0)
        return qkv_cli_fail("'%s' has no graph outputs: nothing to run", a->model);
    return QKV_EXIT_OK;
}

/* Creates the context (profiling with --profile), runs --warmup untimed
 * runs, then the timed one; *run_ms is its time. */
static int timed_run(const run_args *a, qkv_session *session, const qkv_cli_inputs *in,
                     qkv_context **ctx, double *run_ms)
{
    qkv_error err = {0};
    if (qkv_context_create(session, ctx, &err) != QKV_OK ||
        (a->profile && qkv_context_set_profiling(*ctx, 1, &err) != QKV_OK))
        return qkv_cli_fail_error(&err, NULL);
    qkv_status st = QKV_OK;
    for (size_t w = 0; w < a->warmup && st == QKV_OK; w++)
        st = qkv_run(*ctx, in->tensors, in->count, &err);
    double t0 = qkv_cli_now_ms();
    if (st == QKV_OK)
        st = qkv_run(*ctx, in->tensors, in->count, &err);
    *run_ms = qkv_cli_now_ms() - t0;
    if (st != QKV_OK)
        return qkv_cli_fail_error(&err, NULL);
    return QKV_EXIT_OK;
}

/* A sequence or optional output: its kind and each tensor it holds. */
static void print_value_summary(const qkv_value_info *vi, const qkv_context *ctx, size_t i)
{
    qkv_value v = {.struct_size = sizeof v};
    qkv_context_output_value(ctx, i, &v);
    printf("output %s: %s of %s, %zu tensor(s)%s\n", vi->name,
           vi->kind == QKV_KIND_SEQUENCE ? "sequence" : "optional", qkv_dtype_name(v.elem_dtype),
           v.count, v.has_element ? "" : " (empty)");
    for (size_t e = 0; e < v.count; e++) {
        char name[256];
        snprintf(name, sizeof name, "%s[%zu]", vi->name, e);
        print_summary(name, &v.tensors[e]);
    }
}

/* Prints the summary of every output of ctx's run. */
static int print_outputs(const qkv_model *model, const qkv_context *ctx)
{
    size_t n_out = qkv_model_output_count(model);
    for (size_t i = 0; i < n_out; i++) {
        qkv_value_info vi = {.struct_size = sizeof(qkv_value_info)};
        qkv_model_output(model, i, &vi);
        if (vi.kind != QKV_KIND_TENSOR) {
            print_value_summary(&vi, ctx, i);
            continue;
        }
        const qkv_tensor *t = qkv_context_output(ctx, i);
        if (!t)
            return qkv_cli_fail("output %zu '%s' has no value after the run", i, vi.name);
        print_summary(vi.name, t);
    }
    return QKV_EXIT_OK;
}

/* The command's work: load, read or make the inputs, run, report. */
static int run(const run_args *a)
{
    qkv_session *session = NULL;
    qkv_context *ctx = NULL;
    qkv_cli_inputs in = {0};
    double t_load = 0, t_run = 0;
    int rc = open_session(a, &session, &t_load);
    const qkv_model *model = session ? qkv_session_model(session) : NULL;
    const qkv_cli_input_spec spec = {a->input_args, a->n_inputs, a->shapes,
                                     a->n_shapes,   a->random,   a->seed};
    if (rc == QKV_EXIT_OK)
        rc = qkv_cli_inputs_load(model, &spec, &in);
    if (rc == QKV_EXIT_OK)
        rc = timed_run(a, session, &in, &ctx, &t_run);
    if (rc == QKV_EXIT_OK)
        rc = print_outputs(model, ctx);
    if (rc == QKV_EXIT_OK && a->output_dir)
        rc = write_outputs(a->output_dir, model, ctx);
    if (rc == QKV_EXIT_OK) {
        if (a->profile)
            qkv_cli_print_profile(session, ctx);
        printf("time: load %.3f ms, run %.3f ms\n", t_load, t_run);
    }
    qkv_cli_inputs_free(&in);
    qkv_context_destroy(ctx);
    qkv_session_destroy(session);
    return rc;
}

/* Takes option id with its value into the run_args at args (a
 * qkv_cli_take_option_fn). */
static int take_option(void *args, int id, const char *value)
{
    run_args *a = args;
    qkv_error err = {0};
    int64_t v;
    switch (id) {
    case OPT_INPUT:
        if (qkv_cli_check_input_arg(value, USAGE) != QKV_EXIT_OK)
            return QKV_EXIT_USAGE;
        a->input_args[a->n_inputs++] = value;
        break;
    case OPT_OUTPUT_DIR:
        if (!*value)
            return qkv_cli_usage_error(USAGE, "--output-dir: empty directory name");
        a->output_dir = value;
        break;
    case OPT_THREADS:
        if (qkv_cli_parse_int(value, 0, 4096, &v) != 0)
            return qkv_cli_usage_error(USAGE, "--threads '%s': expected an integer in [0, 4096]",
                                       value);
        a->threads = (size_t)v;
        break;
    case OPT_RANDOM:
        a->random = 1;
        break;
    case OPT_SHAPE:
        if (qkv_cli_parse_shape(value, &a->shapes[a->n_shapes], &err) != QKV_OK)
            return qkv_cli_usage_error(USAGE, "%s", err.message);
        a->n_shapes++;
        break;
    case OPT_SEED:
        if (qkv_cli_parse_int(value, 0, INT64_MAX, &v) != 0)
            return qkv_cli_usage_error(USAGE, "--seed '%s': expected a non-negative integer",
                                       value);
        a->seed = (uint64_t)v;
        break;
    case OPT_NO_FUSE:
        a->no_fuse = 1;
        break;
    case OPT_VERBOSE:
        a->verbose = 1;
        break;
    case OPT_PROFILE:
        a->profile = 1;
        break;
    case OPT_WARMUP:
        if (qkv_cli_parse_int(value, 0, 1000000, &v) != 0)
            return qkv_cli_usage_error(USAGE, "--warmup '%s': expected an integer in [0, 1000000]",
                                       value);
        a->warmup = (size_t)v;
        break;
    default: /* --plugin, --backend, --no-default-plugins */
        if (qkv_cli_plugin_option(&a->plugins, id, value, USAGE) < 0)
            return QKV_EXIT_USAGE;
        break;
    }
    return QKV_EXIT_OK;
}

int qkv_cmd_run(int argc, char **argv)
{
    run_args a = {0};
    int rc = QKV_EXIT_FAILURE;
    a.input_args = calloc((size_t)argc, sizeof *a.input_args);
    a.shapes = calloc((size_t)argc, sizeof *a.shapes);
    if (!a.input_args || !a.shapes || qkv_cli_plugin_opts_init(&a.plugins, argc) != 0) {
        rc = qkv_cli_fail("out of memory");
    } else {
        qkv_cli_parser p;
        qkv_cli_parser_init(&p, argc, argv, OPTIONS, sizeof OPTIONS / sizeof OPTIONS[0], USAGE);
        if (qkv_cli_parse_model_args(&p, take_option, &a, &a.model, &rc))
            rc = a.model ? run(&a) : qkv_cli_usage_error(USAGE, "missing MODEL");
    }
    free(a.input_args);
    free(a.shapes);
    qkv_cli_plugin_opts_fini(&a.plugins);
    return rc;
}
