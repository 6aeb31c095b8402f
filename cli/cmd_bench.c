/*
 * cmd_bench.c - `qkv bench MODEL [--threads N] [--iters K] [--warmup W]
 *               [--shape NAME=d0,...]... [--input NAME=FILE]... [--seed S]
 *               [--no-fuse] [--flops F] [--json FILE] [--plugin PATH]...
 *               [--backend NAME,...] [--no-default-plugins]`
 *
 * Times a model: W warm-up runs (the first one plans memory), then K timed
 * runs on one context, each timed alone with CLOCK_MONOTONIC. Prints the
 * median, minimum, mean, 90th percentile and maximum latency, runs per
 * second, GFLOP/s when the FLOPs of one run are given, and three memory
 * figures that measure different things:
 *  - plan arena: the bytes the memory plan gives one run (every planned
 *    tensor plus kernel scratch), from qkv_context_plan_stats;
 *  - plan scratch: the largest scratch one kernel step declares, a part of
 *    the arena;
 *  - peak RSS: the process's resident high-water mark (getrusage
 *    ru_maxrss): libraries, model, inputs, arena and anything kernels or
 *    OpenBLAS allocate, also shown as it was before the first run.
 * It also names the session's backends and the one its GEMM service uses
 * (OpenBLAS through its plugin, or the portable fallback), since GEMM speed
 * decides most of what it measures.
 * A benchmark is a command, not a test: nothing here judges the numbers.
 */
#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>

#include "cli.h"
#include "inputs.h"
#include "json.h"

static const char USAGE[] =
    "usage: qkv bench MODEL [--threads N] [--iters K] [--warmup W]\n"
    "                 [--shape NAME=d0,d1,...]... [--input NAME=FILE]... [--seed S]\n"
    "                 [--no-fuse] [--flops F] [--json FILE] [--plugin PATH]...\n"
    "                 [--backend NAME,...] [--no-default-plugins]\n"
    "\n"
    "Time a model: W warm-up runs (the first plans memory), then K timed runs,\n"
    "each timed alone. Prints the median, min, mean, p90 and max latency, runs/s,\n"
    "and memory: the plan's arena, its largest kernel scratch, and the process's\n"
    "peak resident set size.\n"
    "\n"
    "options:\n"
    "  --threads N             threads each run may use (default 1)\n"
    "  --iters K               timed runs (default 20, at least 1)\n"
    "  --warmup W              untimed runs before them (default 3)\n"
    "  --shape NAME=d0,d1,...  the shape of random input NAME; or SYMBOL=N to set a\n"
    "                          symbolic dim of every input (repeatable)\n"
    "  --input NAME=FILE       read input NAME from a .npy or TensorProto .pb file\n"
    "                          instead of random data (repeatable)\n"
    "  --seed S                seed of the random inputs (default 0): floats uniform\n"
    "                          in [-1, 1), integers in [0, 10), bools 0 or 1\n"
    "  --no-fuse               no attention, GELU or MatMul fusion (the unfused baseline)\n"
    "  --flops F               floating-point operations of one run: also print GFLOP/s\n"
    "  --json FILE             also write the results as JSON into FILE\n" QKV_CLI_PLUGIN_USAGE
    "  -h, --help              show this help\n";

enum {
    OPT_THREADS,
    OPT_ITERS,
    OPT_WARMUP,
    OPT_SHAPE,
    OPT_INPUT,
    OPT_SEED,
    OPT_NO_FUSE,
    OPT_FLOPS,
    OPT_JSON
};

static const qkv_cli_option OPTIONS[] = {
    {"--threads", 1, OPT_THREADS}, {"--iters", 1, OPT_ITERS}, {"--warmup", 1, OPT_WARMUP},
    {"--shape", 1, OPT_SHAPE},     {"--input", 1, OPT_INPUT}, {"--seed", 1, OPT_SEED},
    {"--no-fuse", 0, OPT_NO_FUSE}, {"--flops", 1, OPT_FLOPS}, {"--json", 1, OPT_JSON},
    QKV_CLI_PLUGIN_OPTIONS,
};

#define MAX_ITERS 1000000
#define MAX_WARMUP 100000

typedef struct bench_args {
    const char *model;
    const char **input_args; /* "NAME=FILE" */
    size_t n_inputs;
    qkv_cli_shape *shapes;
    size_t n_shapes;
    size_t threads;
    size_t iters, warmup;
    uint64_t seed;
    int no_fuse;
    double flops; /* 0: not given */
    const char *json;
    qkv_cli_plugin_opts plugins; /* --plugin, --backend, --no-default-plugins */
} bench_args;

/* What one benchmark measured. */
typedef struct bench_result {
    double *times_ms; /* (iters) run times in run order */
    double *sorted;   /* (iters) the same, ascending */
    size_t iters;
    double median_ms, min_ms, mean_ms, p90_ms, max_ms;
    double runs_per_s;
    qkv_plan_stats plan;
    uint64_t rss_before_bytes, rss_peak_bytes;
} bench_result;

/* ---- statistics ------------------------------------------------------------ */

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

/* Fills r->sorted and the latency fields of r from r->times_ms (iters >= 1).
 * p90 is the nearest-rank percentile: the smallest time that at least 90%
 * of the runs do not exceed. */
static void summarize(bench_result *r)
{
    size_t n = r->iters;
    double *t = r->sorted;
    memcpy(t, r->times_ms, n * sizeof *t);
    qsort(t, n, sizeof *t, cmp_double);
    double sum = 0.0;
    for (size_t i = 0; i < n; i++)
        sum += t[i];
    r->min_ms = t[0];
    r->max_ms = t[n - 1];
    r->median_ms = n % 2 ? t[n / 2] : 0.5 * (t[n / 2 - 1] + t[n / 2]);
    r->mean_ms = sum / (double)n;
    size_t rank = (9 * n + 9) / 10; /* ceil(0.9 n), in [1, n] */
    r->p90_ms = t[rank - 1];
    r->runs_per_s = r->mean_ms > 0.0 ? 1000.0 / r->mean_ms : INFINITY;
}

/* The process's resident high-water mark in bytes (0 if unknown). Linux
 * reports ru_maxrss in KiB. */
static uint64_t peak_rss_bytes(void)
{
    struct rusage ru;
    if (getrusage(RUSAGE_SELF, &ru) != 0 || ru.ru_maxrss < 0)
        return 0;
    return (uint64_t)ru.ru_maxrss * 1024u;
}

/* ---- reporting ---------------------------------------------------------------- */

/* GFLOP/s of a run of ms milliseconds (NaN when not computable: null). */
static double gflops(const bench_args *a, double ms)
{
    return a->flops > 0.0 && ms > 0.0 ? a->flops / (ms * 1e6) : NAN;
}

static void print_result(const bench_args *a, const bench_result *r)
{
    char buf[96];
    printf("latency (ms): median %.3f  min %.3f  mean %.3f  p90 %.3f  max %.3f\n", r->median_ms,
           r->min_ms, r->mean_ms, r->p90_ms, r->max_ms);
    printf("throughput: %.2f runs/s (timed runs / their total time)\n", r->runs_per_s);
    if (a->flops > 0.0)
        printf("compute: %.6g FLOP per run: %.2f GFLOP/s at the median, %.2f at the min\n",
               a->flops, gflops(a, r->median_ms), gflops(a, r->min_ms));
    printf("memory:\n");
    printf("  plan arena:      %-32s tensors and kernel scratch of one run (memory plan)\n",
           qkv_cli_human_bytes(r->plan.arena_bytes, buf, sizeof buf));
    printf("  plan scratch:    %-32s largest kernel scratch of one step (inside the arena)\n",
           qkv_cli_human_bytes(r->plan.scratch_bytes, buf, sizeof buf));
    printf("  peak RSS:        %-32s process high-water mark (getrusage ru_maxrss)\n",
           qkv_cli_human_bytes(r->rss_peak_bytes, buf, sizeof buf));
    printf("  RSS before runs: %-32s the same before the first run (libraries, model, inputs)\n",
           qkv_cli_human_bytes(r->rss_before_bytes, buf, sizeof buf));
}

/* Writes `"key": value` with 9 significant digits, null when not finite,
 * and the separator. */
static void json_num(FILE *f, const char *key, double v, const char *sep)
{
    qkv_cli_json_key(f, key);
    if (isfinite(v))
        fprintf(f, " %.9g%s", v, sep);
    else
        fprintf(f, " null%s", sep);
}

static void json_size(FILE *f, const char *key, uint64_t v)
{
    qkv_cli_json_key(f, key);
    fprintf(f, " %" PRIu64 ", ", v);
}

/* Writes every figure (times in run order) as one JSON object into a->json. */
static int write_json(const bench_args *a, const char *gemm, const bench_result *r)
{
    FILE *f = fopen(a->json, "w");
    if (!f)
        return qkv_cli_fail("cannot write '%s': %s", a->json, strerror(errno));
    fputc('{', f);
    qkv_cli_json_key(f, "model");
    fputc(' ', f);
    qkv_cli_json_string(f, a->model);
    fputs(", ", f);
    qkv_cli_json_key(f, "gemm_backend");
    fputc(' ', f);
    qkv_cli_json_string(f, gemm);
    fputs(", ", f);
    json_size(f, "threads", a->threads ? a->threads : 1);
    qkv_cli_json_key(f, "fusion");
    fprintf(f, " %s, ", a->no_fuse ? "false" : "true");
    json_size(f, "warmup", a->warmup);
    json_size(f, "iters", r->iters);
    qkv_cli_json_key(f, "latency_ms");
    fputs(" {", f);
    json_num(f, "median", r->median_ms, ", ");
    json_num(f, "min", r->min_ms, ", ");
    json_num(f, "mean", r->mean_ms, ", ");
    json_num(f, "p90", r->p90_ms, ", ");
    json_num(f, "max", r->max_ms, "}, ");
    json_num(f, "runs_per_s", r->runs_per_s, ", ");
    json_num(f, "flops", a->flops > 0.0 ? a->flops : NAN, ", ");
    json_num(f, "gflops_median", gflops(a, r->median_ms), ", ");
    json_num(f, "gflops_min", gflops(a, r->min_ms), ", ");
    json_size(f, "steps", r->plan.steps);
    json_size(f, "arena_bytes", r->plan.arena_bytes);
    json_size(f, "scratch_bytes", r->plan.scratch_bytes);
    json_size(f, "peak_rss_bytes", r->rss_peak_bytes);
    json_size(f, "rss_before_bytes", r->rss_before_bytes);
    qkv_cli_json_key(f, "times_ms");
    fputs(" [", f);
    for (size_t i = 0; i < r->iters; i++)
        fprintf(f, "%s%.9g", i ? ", " : "", r->times_ms[i]);
    fputs("]}\n", f);
    int bad = ferror(f);
    if (fclose(f) != 0 || bad)
        return qkv_cli_fail("cannot write '%s': %s", a->json, strerror(errno));
    return QKV_EXIT_OK;
}

/* ---- the command ------------------------------------------------------------------ */

/* Creates the session the options ask for and prints the model and the
 * session's backends. */
static int open_session(const bench_args *a, qkv_session **session)
{
    qkv_error err = {0};
    qkv_session_options opts;
    qkv_session_options_init(&opts);
    opts.threads = a->threads;
    opts.disable_fusion = a->no_fuse;
    qkv_cli_plugin_apply(&a->plugins, &opts);
    if (qkv_session_create(a->model, &opts, session, &err) != QKV_OK)
        return qkv_cli_fail_error(&err, NULL);
    printf("model: %s\n", a->model);
    qkv_cli_print_backends(*session, 0);
    return QKV_EXIT_OK;
}

/* The runs on one new context: a->warmup untimed, then r->iters timed ones
 * into r->times_ms; also the RSS before and after and the plan's figures. */
static int time_runs(const bench_args *a, qkv_session *session, const qkv_cli_inputs *in,
                     bench_result *r)
{
    qkv_error err = {0};
    qkv_context *ctx = NULL;
    if (qkv_context_create(session, &ctx, &err) != QKV_OK)
        return qkv_cli_fail_error(&err, NULL);
    r->rss_before_bytes = peak_rss_bytes();
    printf("threads %zu, fusion %s, %zu warm-up run%s, %zu timed run%s\n",
           a->threads ? a->threads : 1, a->no_fuse ? "off (--no-fuse)" : "on", a->warmup,
           a->warmup == 1 ? "" : "s", a->iters, a->iters == 1 ? "" : "s");
    fflush(stdout);
    int rc = QKV_EXIT_OK;
    for (size_t i = 0; i < a->warmup + a->iters && rc == QKV_EXIT_OK; i++) {
        double t0 = qkv_cli_now_ms();
        qkv_status st = qkv_run(ctx, in->tensors, in->count, &err);
        double t = qkv_cli_now_ms() - t0;
        if (st != QKV_OK)
            rc = qkv_cli_fail_error(&err, NULL);
        else if (i >= a->warmup)
            r->times_ms[i - a->warmup] = t;
    }
    if (rc == QKV_EXIT_OK) {
        r->rss_peak_bytes = peak_rss_bytes();
        if (qkv_context_plan_stats(ctx, &r->plan) != QKV_OK)
            rc = qkv_cli_fail("the context has no plan after the runs");
    }
    qkv_context_destroy(ctx);
    return rc;
}

/* The command's work: load, make the inputs, time the runs, report. */
static int bench(const bench_args *a)
{
    qkv_session *session = NULL;
    qkv_cli_inputs in = {0};
    bench_result r = {.plan = {.struct_size = sizeof(qkv_plan_stats)}, .iters = a->iters};
    r.times_ms = calloc(a->iters, sizeof *r.times_ms);
    r.sorted = calloc(a->iters, sizeof *r.sorted);
    int rc = r.times_ms && r.sorted ? open_session(a, &session) : qkv_cli_fail("out of memory");
    const qkv_cli_input_spec spec = {a->input_args, a->n_inputs, a->shapes,
                                     a->n_shapes,   1,           a->seed};
    if (rc == QKV_EXIT_OK)
        rc = qkv_cli_inputs_load(qkv_session_model(session), &spec, &in);
    if (rc == QKV_EXIT_OK)
        rc = time_runs(a, session, &in, &r);
    if (rc == QKV_EXIT_OK) {
        summarize(&r);
        printf("plan: %zu step%s per run\n", r.plan.steps, r.plan.steps == 1 ? "" : "s");
        print_result(a, &r);
        if (a->json)
            rc = write_json(a, qkv_session_gemm_backend(session), &r);
    }
    qkv_cli_inputs_free(&in);
    qkv_session_destroy(session);
    free(r.times_ms);
    free(r.sorted);
    return rc;
}

/* Parses a positive, finite FLOP count ("4.8e9" or "4800000000"). */
static int parse_flops(const char *s, double *out)
{
    if (!s || !*s)
        return -1;
    errno = 0;
    char *end = NULL;
    double v = strtod(s, &end);
    if (errno || *end != '\0' || !isfinite(v) || v <= 0.0)
        return -1;
    *out = v;
    return 0;
}

/* Takes option id with its value into the bench_args at args (a
 * qkv_cli_take_option_fn). */
static int take_option(void *args, int id, const char *value)
{
    bench_args *a = args;
    qkv_error err = {0};
    int64_t v;
    switch (id) {
    case OPT_THREADS:
        if (qkv_cli_parse_int(value, 0, 4096, &v) != 0)
            return qkv_cli_usage_error(USAGE, "--threads '%s': expected an integer in [0, 4096]",
                                       value);
        a->threads = (size_t)v;
        break;
    case OPT_ITERS:
        if (qkv_cli_parse_int(value, 1, MAX_ITERS, &v) != 0)
            return qkv_cli_usage_error(USAGE, "--iters '%s': expected an integer in [1, %d]", value,
                                       MAX_ITERS);
        a->iters = (size_t)v;
        break;
    case OPT_WARMUP:
        if (qkv_cli_parse_int(value, 0, MAX_WARMUP, &v) != 0)
            return qkv_cli_usage_error(USAGE, "--warmup '%s': expected an integer in [0, %d]",
                                       value, MAX_WARMUP);
        a->warmup = (size_t)v;
        break;
    case OPT_SHAPE:
        if (qkv_cli_parse_shape(value, &a->shapes[a->n_shapes], &err) != QKV_OK)
            return qkv_cli_usage_error(USAGE, "%s", err.message);
        a->n_shapes++;
        break;
    case OPT_INPUT:
        if (qkv_cli_check_input_arg(value, USAGE) != QKV_EXIT_OK)
            return QKV_EXIT_USAGE;
        a->input_args[a->n_inputs++] = value;
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
    case OPT_FLOPS:
        if (parse_flops(value, &a->flops) != 0)
            return qkv_cli_usage_error(USAGE, "--flops '%s': expected a positive number", value);
        break;
    case OPT_JSON:
        if (!*value)
            return qkv_cli_usage_error(USAGE, "--json: empty file name");
        a->json = value;
        break;
    default: /* --plugin, --backend, --no-default-plugins */
        if (qkv_cli_plugin_option(&a->plugins, id, value, USAGE) < 0)
            return QKV_EXIT_USAGE;
        break;
    }
    return QKV_EXIT_OK;
}

int qkv_cmd_bench(int argc, char **argv)
{
    qkv_cli_parser p;
    bench_args a = {.threads = 1, .iters = 20, .warmup = 3};
    int rc = QKV_EXIT_FAILURE;
    a.input_args = calloc((size_t)argc, sizeof *a.input_args);
    a.shapes = calloc((size_t)argc, sizeof *a.shapes);
    if (!a.input_args || !a.shapes || qkv_cli_plugin_opts_init(&a.plugins, argc) != 0) {
        rc = qkv_cli_fail("out of memory");
    } else {
        qkv_cli_parser_init(&p, argc, argv, OPTIONS, sizeof OPTIONS / sizeof OPTIONS[0], USAGE);
        if (qkv_cli_parse_model_args(&p, take_option, &a, &a.model, &rc))
            rc = a.model ? bench(&a) : qkv_cli_usage_error(USAGE, "missing MODEL");
    }
    free(a.input_args);
    free(a.shapes);
    qkv_cli_plugin_opts_fini(&a.plugins);
    return rc;
}
