/*
 * cmd_test.c - `qkv test DIR... [--json FILE] [--scoreboard FILE.md]
 *              [--threads N] [--filter SUBSTR] [--verbose]
 *              [--rtol R] [--atol A] [--no-fuse] [--allow-unsupported]`
 *
 * Runs ONNX backend test directories (model.onnx + test_data_set_N/
 * {input,output}_K.pb) and compares the outputs like the ONNX backend test
 * runner (compare.h). Every test runs in-process; every failure inside qkv
 * is a status, so one test cannot take the runner down with it.
 *
 * An output that depends on a random op (Bernoulli, RandomUniform(Like),
 * RandomNormal(Like), Multinomial) cannot match a reference drawn by another
 * generator: it is checked by dtype, shape and the op's range instead
 * (random_check.h), and the test passes as "PASS NAME (random: shape, dtype,
 * range)".
 *
 * Status of a test:
 *   pass         every output of every data set matched
 *   fail         an output differs (dtype, shape or values)
 *   unsupported  loading the model, creating the session or running it
 *                returned QKV_ERR_UNSUPPORTED (the message names what)
 *   error        anything else (malformed files, wrong input count, ...)
 *
 * The exit status says whether the tests ran and passed: 1 when any failed
 * or errored, and also when none passed (no test found, or every one
 * unsupported), so a CI pointed at tests qkv cannot run does not report
 * success. --allow-unsupported accepts a run of only unsupported tests.
 */
#include <dirent.h>
#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "cli.h"
#include "compare.h"
#include "error.h"
#include "json.h"
#include "loader.h"
#include "random_check.h"
#include "str_util.h"
#include "tensor_io.h"
#include "value_io.h"

static const char USAGE[] =
    "usage: qkv test DIR... [--json FILE] [--scoreboard FILE.md] [--threads N]\n"
    "                [--filter SUBSTR] [--verbose] [--rtol R] [--atol A]\n"
    "                [--no-fuse] [--allow-unsupported]\n"
    "\n"
    "Run ONNX backend tests. A DIR is a test (model.onnx and\n"
    "test_data_set_N/{input,output}_K.pb) or a directory searched recursively\n"
    "for tests, in name order. Floats match when |got - expected| <= atol +\n"
    "rtol * |expected| (NaN matches NaN); other types exactly.\n"
    "Outputs that depend on a random op (Bernoulli, RandomUniform...) are\n"
    "checked by dtype, shape and the op's range only: 'PASS NAME (random: ...)'.\n"
    "Prints PASS/FAIL/UNSUPPORTED/ERROR per test and finally\n"
    "'N passed, N failed, N skipped' (errors count as failed, unsupported as\n"
    "skipped). Exit status 1 if any test failed or errored, or if none\n"
    "passed (no test found, or all unsupported: see --allow-unsupported).\n"
    "\n"
    "options:\n"
    "  --json FILE          write the results as JSON\n"
    "  --scoreboard FILE    write a Markdown table of the results per operator\n"
    "  --threads N          threads each run may use (default 1)\n"
    "  --filter SUBSTR      only run tests whose name contains SUBSTR (repeatable:\n"
    "                       any of them)\n"
    "  --verbose            print every output's comparison\n"
    "  --rtol R             relative tolerance for floats (default 1e-3)\n"
    "  --atol A             absolute tolerance for floats (default 1e-7)\n"
    "  --no-fuse            do not fuse attention subgraphs into Attention nodes\n"
    "  --allow-unsupported  exit 0 when every test found is unsupported (they are\n"
    "                       expected); finding no test at all still fails\n"
    "  -h, --help           show this help\n";

enum {
    OPT_JSON,
    OPT_SCOREBOARD,
    OPT_THREADS,
    OPT_FILTER,
    OPT_VERBOSE,
    OPT_RTOL,
    OPT_ATOL,
    OPT_NO_FUSE,
    OPT_ALLOW_UNSUPPORTED
};

static const qkv_cli_option OPTIONS[] = {
    {"--json", 1, OPT_JSON},
    {"--scoreboard", 1, OPT_SCOREBOARD},
    {"--threads", 1, OPT_THREADS},
    {"--filter", 1, OPT_FILTER},
    {"--verbose", 0, OPT_VERBOSE},
    {"--rtol", 1, OPT_RTOL},
    {"--atol", 1, OPT_ATOL},
    {"--no-fuse", 0, OPT_NO_FUSE},
    {"--allow-unsupported", 0, OPT_ALLOW_UNSUPPORTED},
};

/* Directories nested deeper than this are not searched (symlink loops). */
#define MAX_DEPTH 16

enum { ST_PASS, ST_FAIL, ST_UNSUPPORTED, ST_ERROR, ST_COUNT_ };
static const char *const STATUS_NAME[ST_COUNT_] = {"pass", "fail", "unsupported", "error"};
static const char *const STATUS_LINE[ST_COUNT_] = {"PASS", "FAIL", "UNSUPPORTED", "ERROR"};

typedef struct op_stat {
    char *op;
    size_t count;
} op_stat;

typedef struct test_case {
    char *name; /* the directory's base name */
    char *dir;
    int status;
    char *message; /* "" for pass */
    op_stat *ops;  /* distinct op types in order of first appearance */
    size_t n_ops;
    char *ops_joined;             /* "Cast+Reshape" */
    qkv_cli_random_range *random; /* per graph output (random_check.h); NULL: none */
    size_t n_random;
    const char *group; /* the scoreboard's operator (points into some ops[] or a literal) */
} test_case;

typedef struct test_list {
    test_case *v;
    size_t n, cap;
} test_list;

typedef struct test_opts {
    size_t threads;
    int verbose;
    double rtol, atol; /* float tolerances (--rtol/--atol) */
    int no_fuse;       /* --no-fuse */
} test_opts;

/* ---- small helpers -------------------------------------------------------------- */

static char *join_path(const char *a, const char *b)
{
    size_t n = strlen(a) + 1 + strlen(b) + 1;
    char *p = malloc(n);
    if (p)
        snprintf(p, n, "%s/%s", a, b);
    return p;
}

/* A malloc'd copy of the last component of path ("a/b/" -> "b"). */
static char *base_name(const char *path)
{
    size_t n = strlen(path);
    while (n > 1 && path[n - 1] == '/')
        n--;
    size_t b = n;
    while (b > 0 && path[b - 1] != '/')
        b--;
    char *s = malloc(n - b + 1);
    if (s) {
        memcpy(s, path + b, n - b);
        s[n - b] = '\0';
    }
    return s;
}

static int is_dir(const char *path)
{
    struct stat st;
    return stat(path, &st) == 0 && S_ISDIR(st.st_mode);
}

static int is_file(const char *path)
{
    struct stat st;
    return stat(path, &st) == 0 && S_ISREG(st.st_mode);
}

static int cmp_str(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/* The sorted names of dir's entries (without "." and ".."); NULL + errno. */
static char **list_dir(const char *dir, size_t *n_out)
{
    DIR *d = opendir(dir);
    if (!d)
        return NULL;
    char **v = NULL;
    size_t n = 0, cap = 0;
    struct dirent *e;
    while ((e = readdir(d)) != NULL) {
        if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, ".."))
            continue;
        if (n == cap) {
            size_t ncap = cap ? 2 * cap : 32;
            char **nv = realloc(v, ncap * sizeof *nv);
            if (!nv)
                goto oom;
            v = nv;
            cap = ncap;
        }
        if (!(v[n] = qkv_strdup(e->d_name)))
            goto oom;
        n++;
    }
    closedir(d);
    if (n)
        qsort(v, n, sizeof *v, cmp_str);
    if (!v)
        v = calloc(1, sizeof *v); /* non-NULL even when empty */
    *n_out = n;
    return v;
oom:
    closedir(d);
    for (size_t i = 0; i < n; i++)
        free(v[i]);
    free(v);
    errno = ENOMEM;
    return NULL;
}

static void free_list(char **v, size_t n)
{
    for (size_t i = 0; v && i < n; i++)
        free(v[i]);
    free(v);
}

/* Parses "PREFIX<digits>SUFFIX" (exactly); -1 if name does not have that form. */
static long numbered(const char *name, const char *prefix, const char *suffix)
{
    size_t lp = strlen(prefix), ls = strlen(suffix), ln = strlen(name);
    if (ln <= lp + ls || strncmp(name, prefix, lp) != 0 || strcmp(name + ln - ls, suffix) != 0)
        return -1;
    long v = 0;
    for (size_t i = lp; i < ln - ls; i++) {
        if (name[i] < '0' || name[i] > '9' || v > 100000000)
            return -1;
        v = v * 10 + (name[i] - '0');
    }
    return v;
}

/* ---- finding tests ------------------------------------------------------------- */

static int add_test(test_list *l, const char *dir)
{
    if (l->n == l->cap) {
        size_t ncap = l->cap ? 2 * l->cap : 64;
        test_case *nv = realloc(l->v, ncap * sizeof *nv);
        if (!nv)
            return -1;
        l->v = nv;
        l->cap = ncap;
    }
    test_case *t = &l->v[l->n];
    memset(t, 0, sizeof *t);
    t->dir = qkv_strdup(dir);
    t->name = base_name(dir);
    if (!t->dir || !t->name) {
        free(t->dir);
        free(t->name);
        return -1;
    }
    l->n++;
    return 0;
}

/* Adds dir if it is a test, else searches its subdirectories. Returns an
 * exit code (errors printed). */
static int find_tests(test_list *l, const char *dir, int depth)
{
    char *model = join_path(dir, "model.onnx");
    if (!model)
        return qkv_cli_fail("out of memory");
    int is_test = is_file(model);
    free(model);
    if (is_test)
        return add_test(l, dir) == 0 ? QKV_EXIT_OK : qkv_cli_fail("out of memory");
    if (depth >= MAX_DEPTH)
        return QKV_EXIT_OK;
    size_t n = 0;
    char **names = list_dir(dir, &n);
    if (!names)
        return qkv_cli_fail("cannot read directory '%s': %s", dir, strerror(errno));
    int rc = QKV_EXIT_OK;
    for (size_t i = 0; i < n && rc == QKV_EXIT_OK; i++) {
        if (names[i][0] == '.')
            continue; /* .stamp.json, .git, ... */
        char *sub = join_path(dir, names[i]);
        if (!sub) {
            rc = qkv_cli_fail("out of memory");
            break;
        }
        if (is_dir(sub))
            rc = find_tests(l, sub, depth + 1);
        free(sub);
    }
    free_list(names, n);
    return rc;
}

/* ---- running one test ----------------------------------------------------------- */

/* Sets the test's status and message (printf-style); returns status. */
static int set_result(test_case *t, int status, const char *fmt, ...) QKV_CLI_PRINTF(3, 4);
static int set_result(test_case *t, int status, const char *fmt, ...)
{
    char msg[2 * QKV_ERROR_MESSAGE_BYTES];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    for (char *p = msg; *p; p++) /* one line */
        if ((unsigned char)*p < 0x20)
            *p = ' ';
    free(t->message);
    t->message = qkv_strdup(msg);
    t->status = status;
    return status;
}

static int status_of(qkv_status st)
{
    return st == QKV_ERR_UNSUPPORTED ? ST_UNSUPPORTED : ST_ERROR;
}

/* Collects the model's distinct op types. */
static int collect_ops(test_case *t, const qkv_model *model)
{
    qkv_model_meta m = {.struct_size = sizeof(qkv_model_meta)};
    qkv_model_get_meta(model, &m);
    size_t total_len = 1;
    t->ops = calloc(m.node_count ? m.node_count : 1, sizeof *t->ops);
    if (!t->ops)
        return -1;
    for (size_t i = 0; i < m.node_count; i++) {
        const char *op = NULL, *domain = NULL;
        qkv_model_node_op(model, i, &op, &domain);
        op = op ? op : "";
        size_t k = 0;
        while (k < t->n_ops && strcmp(t->ops[k].op, op) != 0)
            k++;
        if (k == t->n_ops) {
            if (!(t->ops[k].op = qkv_strdup(op)))
                return -1;
            t->n_ops++;
            total_len += strlen(op) + 1;
        }
        t->ops[k].count++;
    }
    t->ops_joined = malloc(total_len);
    if (!t->ops_joined)
        return -1;
    t->ops_joined[0] = '\0';
    for (size_t k = 0; k < t->n_ops; k++) {
        if (k)
            strcat(t->ops_joined, "+");
        strcat(t->ops_joined, t->ops[k].op);
    }
    return 0;
}

/* The sorted K of the files "<prefix>K.pb" in dir; they must be 0..n-1. */
static int numbered_files(char **names, size_t n_names, const char *prefix, size_t *count,
                          long *missing)
{
    long max = -1;
    size_t n = 0;
    for (size_t i = 0; i < n_names; i++) {
        long k = numbered(names[i], prefix, ".pb");
        if (k < 0)
            continue;
        n++;
        if (k > max)
            max = k;
    }
    *count = n;
    *missing = -1;
    if (max >= 0 && (size_t)max + 1 != n) {
        /* duplicates are impossible in one directory: some K is missing */
        for (long k = 0; k <= max; k++) {
            int found = 0;
            for (size_t i = 0; i < n_names && !found; i++)
                found = numbered(names[i], prefix, ".pb") == k;
            if (!found) {
                *missing = k;
                break;
            }
        }
        return -1;
    }
    return 0;
}

typedef struct data_set {
    qkv_value *inputs, *expected; /* values of the kinds the model declares */
    size_t n_inputs, n_expected;
    qkv_tensor *tensors; /* (n_inputs) for qkv_run when every input is a tensor */
    bool all_tensors;
} data_set;

static void data_set_free(data_set *d)
{
    for (size_t i = 0; d->inputs && i < d->n_inputs; i++)
        qkv_cli_value_free(&d->inputs[i]);
    for (size_t i = 0; d->expected && i < d->n_expected; i++)
        qkv_cli_value_free(&d->expected[i]);
    free(d->inputs);
    free(d->expected);
    free(d->tensors);
    memset(d, 0, sizeof *d);
}

/* Reads "<prefix>0.pb".."<prefix>(n-1).pb" of dir into a new array: each a
 * TensorProto, SequenceProto or OptionalProto as the model's input (or
 * output) of that index is declared. */
static int read_values(test_case *t, const qkv_model *model, bool inputs, const char *dir,
                       const char *prefix, size_t n, qkv_value **out, const char *ds_label)
{
    qkv_error err = {0};
    *out = calloc(n ? n : 1, sizeof **out);
    if (!*out)
        return set_result(t, ST_ERROR, "out of memory");
    for (size_t k = 0; k < n; k++) {
        qkv_value_info vi = {.struct_size = sizeof(qkv_value_info)};
        if (inputs)
            qkv_model_input(model, k, &vi);
        else
            qkv_model_output(model, k, &vi);
        char file[64];
        snprintf(file, sizeof file, "%s%zu.pb", prefix, k);
        char *path = join_path(dir, file);
        if (!path)
            return set_result(t, ST_ERROR, "out of memory");
        qkv_status st = qkv_cli_value_read(path, vi.kind, &(*out)[k], &err);
        free(path);
        if (st != QKV_OK)
            return set_result(t, status_of(st), "%s%s", ds_label, err.message);
        /* ONNX's generators (1.12 at least) store bfloat16 data as uint16
         * TensorProtos (numpy has no bfloat16): the bits are the bfloat16 */
        qkv_tensor *ts = (qkv_tensor *)(*out)[k].tensors;
        for (size_t i = 0; i < (*out)[k].count; i++)
            if (vi.dtype == QKV_DTYPE_BFLOAT16 && ts[i].dtype == QKV_DTYPE_UINT16)
                ts[i].dtype = QKV_DTYPE_BFLOAT16;
    }
    return ST_PASS;
}

/* Compares a value the run made with the expected one: kind, presence,
 * length, then each tensor (compare.h). 1 when they agree; else r->message
 * says why. */
static const char *value_kind_text(const qkv_value *v)
{
    if (!v->has_element)
        return "an empty optional";
    switch (v->kind) {
    case QKV_KIND_TENSOR:
        return "a tensor";
    case QKV_KIND_SEQUENCE:
        return "a sequence";
    case QKV_KIND_OPTIONAL:
        return "an optional tensor";
    case QKV_KIND_OPTIONAL_SEQUENCE:
        return "an optional sequence";
    }
    return "a value of an unknown kind";
}

static int compare_value(const qkv_value *got, const qkv_value *want, double rtol, double atol,
                         qkv_cli_compare_result *r)
{
    memset(r, 0, sizeof *r);
    if (got->kind != want->kind || got->has_element != want->has_element ||
        got->count != want->count) {
        snprintf(r->message, sizeof r->message, "is %s of %zu tensor(s), expected %s of %zu",
                 value_kind_text(got), got->count, value_kind_text(want), want->count);
        return 0;
    }
    double worst = 0;
    for (size_t i = 0; i < got->count; i++) {
        if (!qkv_cli_compare(&got->tensors[i], &want->tensors[i], rtol, atol, r)) {
            if (got->kind != QKV_KIND_TENSOR) {
                char msg[sizeof r->message];
                snprintf(msg, sizeof msg, "element %zu: %s", i, r->message);
                memcpy(r->message, msg, sizeof msg);
            }
            return 0;
        }
        worst = r->max_abs_diff > worst ? r->max_abs_diff : worst;
    }
    r->max_abs_diff = worst;
    return 1;
}

/* Counts ds_dir's input_K.pb and output_K.pb files (K from 0, none missing)
 * and checks them against the model's inputs and outputs. Returns ST_PASS
 * or the status (the test's message set). */
static int count_data_files(test_case *t, const qkv_model *model, const char *ds_dir,
                            const char *label, size_t *n_in, size_t *n_out)
{
    *n_in = *n_out = 0;
    size_t n_names = 0;
    char **names = list_dir(ds_dir, &n_names);
    if (!names)
        return set_result(t, ST_ERROR, "%scannot read '%s': %s", label, ds_dir, strerror(errno));
    long missing = -1;
    int st = ST_PASS;
    if (numbered_files(names, n_names, "input_", n_in, &missing) != 0)
        st = set_result(t, ST_ERROR, "%sinput_%ld.pb is missing", label, missing);
    else if (numbered_files(names, n_names, "output_", n_out, &missing) != 0)
        st = set_result(t, ST_ERROR, "%soutput_%ld.pb is missing", label, missing);
    free_list(names, n_names);
    if (st != ST_PASS)
        return st;
    size_t model_in = qkv_model_input_count(model), model_out = qkv_model_output_count(model);
    if (*n_in != model_in)
        return set_result(t, ST_ERROR, "%s%zu input files, the model has %zu inputs", label, *n_in,
                          model_in);
    if (*n_out != model_out)
        return set_result(t, ST_ERROR, "%s%zu output files, the model has %zu outputs", label,
                          *n_out, model_out);
    return ST_PASS;
}

/* Reads the data set's n_in inputs and n_out expected outputs into *d (the
 * inputs also as a tensor array when all are tensors). Returns ST_PASS or
 * the status (the test's message set); *d is freed on failure. */
static int read_data_set(test_case *t, const qkv_model *model, const char *ds_dir,
                         const char *label, size_t n_in, size_t n_out, data_set *d)
{
    *d = (data_set){.n_inputs = n_in, .n_expected = n_out, .all_tensors = true};
    int st = read_values(t, model, true, ds_dir, "input_", n_in, &d->inputs, label);
    if (st == ST_PASS)
        st = read_values(t, model, false, ds_dir, "output_", n_out, &d->expected, label);
    if (st == ST_PASS && !(d->tensors = calloc(n_in + 1, sizeof *d->tensors)))
        st = set_result(t, ST_ERROR, "out of memory");
    if (st != ST_PASS) {
        data_set_free(d);
        return st;
    }
    for (size_t k = 0; k < n_in; k++) {
        d->all_tensors = d->all_tensors && d->inputs[k].kind == QKV_KIND_TENSOR;
        if (d->inputs[k].kind == QKV_KIND_TENSOR)
            d->tensors[k] = d->inputs[k].tensors[0];
    }
    return ST_PASS;
}

/* --verbose: one output's dtype, shape and comparison. */
static void print_comparison(size_t k, const char *name, const qkv_value *gv, int ok,
                             const qkv_cli_compare_result *r)
{
    char dims[256];
    const qkv_tensor *got = gv->count ? &gv->tensors[0] : NULL;
    printf("    output %zu '%s': %s%s %s: %s", k, name,
           gv->kind != QKV_KIND_TENSOR ? "value of " : "",
           qkv_dtype_name(got ? got->dtype : gv->elem_dtype),
           got && got->rank >= 0 && got->rank <= QKV_MAX_RANK
               ? qkv_cli_dims_str(got->rank, got->dims, dims, sizeof dims)
               : "[?]",
           ok ? "ok" : r->message);
    if (ok && r->max_abs_diff > 0)
        printf(" (max abs diff %.1e)", r->max_abs_diff);
    putchar('\n');
}

/* Output k of a run against its expected value: dtype, shape and range when
 * it depends on a random op (one tensor each), else by value. */
static int output_matches(const test_case *t, size_t k, const qkv_value *gv, const qkv_value *want,
                          const test_opts *o, qkv_cli_compare_result *r)
{
    const qkv_cli_random_range *rr = k < t->n_random ? &t->random[k] : NULL;
    int random = rr && rr->random && gv->kind == QKV_KIND_TENSOR && gv->count == 1 &&
                 want->kind == QKV_KIND_TENSOR && want->count == 1;
    return random ? qkv_cli_check_random(&gv->tensors[0], &want->tensors[0], rr, r)
                  : compare_value(gv, want, o->rtol, o->atol, r);
}

/* Checks every output of ctx's last run against d's expected values; the
 * first mismatch sets the test's status. Returns the status. */
static int check_outputs(test_case *t, const qkv_model *model, qkv_context *ctx, const data_set *d,
                         const char *label, const test_opts *o)
{
    int st = ST_PASS;
    for (size_t k = 0; k < d->n_expected; k++) {
        qkv_value_info vi = {.struct_size = sizeof(qkv_value_info)};
        qkv_model_output(model, k, &vi);
        qkv_value gv = {.struct_size = sizeof gv};
        if (qkv_context_output_value(ctx, k, &gv) != QKV_OK) {
            if (st == ST_PASS)
                st = set_result(t, ST_ERROR, "%soutput %zu '%s' has no value after the run", label,
                                k, vi.name);
            continue;
        }
        qkv_cli_compare_result r;
        int ok = output_matches(t, k, &gv, &d->expected[k], o, &r);
        if (o->verbose)
            print_comparison(k, vi.name, &gv, ok, &r);
        if (!ok && st == ST_PASS)
            st = set_result(t, ST_FAIL, "%soutput %zu '%s' %s", label, k, vi.name, r.message);
    }
    return st;
}

/* Runs one data set; returns the status (the test's message set unless pass). */
static int run_data_set(test_case *t, const qkv_model *model, qkv_context *ctx, const char *ds_dir,
                        size_t ds_index, int many, const test_opts *o)
{
    char label[64] = "";
    if (many)
        snprintf(label, sizeof label, "data set %zu: ", ds_index);
    size_t n_in, n_out;
    data_set d;
    int st = count_data_files(t, model, ds_dir, label, &n_in, &n_out);
    if (st == ST_PASS)
        st = read_data_set(t, model, ds_dir, label, n_in, n_out, &d);
    if (st != ST_PASS)
        return st;
    qkv_error err = {0};
    double t0 = qkv_cli_now_ms();
    /* qkv_run for tensors, so the common path is the one tested */
    qkv_status rs = d.all_tensors ? qkv_run(ctx, d.tensors, n_in, &err)
                                  : qkv_run_values(ctx, d.inputs, n_in, &err);
    double ms = qkv_cli_now_ms() - t0;
    if (rs != QKV_OK) {
        st = set_result(t, status_of(rs), "%s%s", label, err.message);
    } else {
        if (o->verbose)
            printf("  %s: data set %zu ran in %.3f ms\n", t->name, ds_index, ms);
        st = check_outputs(t, model, ctx, &d, label, o);
    }
    data_set_free(&d);
    return st;
}

/* The note of a passing test whose outputs were checked as random
 * ("random: shape, dtype, range"), or NULL. */
static char *random_note(const test_case *t)
{
    int any = 0, ranged = 1;
    for (size_t k = 0; k < t->n_random; k++)
        if (t->random[k].random) {
            any = 1;
            ranged = ranged && t->random[k].has_range;
        }
    if (!any)
        return NULL;
    return qkv_strdup(ranged ? "random: shape, dtype, range" : "random: shape, dtype");
}

/* Reads the model at path for the report and the checks: its op types and
 * which outputs depend on a random op. Returns ST_PASS or the status (the
 * test's message set). */
static int inspect_model(test_case *t, const char *path)
{
    qkv_error err = {0};
    qkv_model *model = NULL;
    qkv_status st = qkv_model_load_file(path, &model, &err);
    if (st != QKV_OK)
        return set_result(t, status_of(st), "%s", err.message);
    int rc = ST_PASS;
    size_t n_outputs = qkv_model_output_count(model);
    if (collect_ops(t, model) != 0 ||
        !(t->random = calloc(n_outputs ? n_outputs : 1, sizeof *t->random))) {
        rc = set_result(t, ST_ERROR, "out of memory");
    } else {
        t->n_random = n_outputs;
        qkv_cli_random_outputs(model, t->random, t->n_random);
    }
    qkv_model_destroy(model);
    return rc;
}

/* Creates the session (--threads, --no-fuse) and the context the test runs
 * in. Returns ST_PASS or the status (the test's message set). */
static int open_session(test_case *t, const char *path, const test_opts *o, qkv_session **session,
                        qkv_context **ctx)
{
    qkv_error err = {0};
    qkv_session_options opts;
    qkv_session_options_init(&opts);
    opts.threads = o->threads;
    opts.disable_fusion = o->no_fuse; /* --no-fuse */
    qkv_status st = qkv_session_create(path, &opts, session, &err);
    if (st == QKV_OK)
        st = qkv_context_create(*session, ctx, &err);
    if (st != QKV_OK)
        return set_result(t, status_of(st), "%s", err.message);
    return ST_PASS;
}

/* Runs the test_data_set_K directories of t->dir in numeric order
 * (test_data_set_2 before test_data_set_10) until one does not pass. */
static void run_data_sets(test_case *t, const qkv_session *session, qkv_context *ctx,
                          const test_opts *o)
{
    size_t n_names = 0;
    char **names = list_dir(t->dir, &n_names);
    if (!names) {
        set_result(t, ST_ERROR, "cannot read '%s': %s", t->dir, strerror(errno));
        return;
    }
    long max = -1;
    size_t n_sets = 0;
    for (size_t i = 0; i < n_names; i++) {
        long k = numbered(names[i], "test_data_set_", "");
        if (k >= 0) {
            n_sets++;
            max = k > max ? k : max;
        }
    }
    if (n_sets == 0)
        set_result(t, ST_ERROR, "no test_data_set_* directory in '%s'", t->dir);
    for (long k = 0; k <= max && t->status == ST_PASS; k++) {
        char ds[64];
        snprintf(ds, sizeof ds, "test_data_set_%ld", k);
        int present = 0;
        for (size_t i = 0; i < n_names && !present; i++)
            present = !strcmp(names[i], ds);
        if (!present)
            continue;
        char *ds_dir = join_path(t->dir, ds);
        if (!ds_dir) {
            set_result(t, ST_ERROR, "out of memory");
            break;
        }
        run_data_set(t, qkv_session_model(session), ctx, ds_dir, (size_t)k, n_sets > 1, o);
        free(ds_dir);
    }
    free_list(names, n_names);
}

/* Runs test t: its model on each data set, the outputs compared. Sets
 * t->status and t->message ("" or a note for a pass). */
static void run_test(test_case *t, const test_opts *o)
{
    qkv_session *session = NULL;
    qkv_context *ctx = NULL;
    char *path = join_path(t->dir, "model.onnx");
    t->status = ST_PASS;
    if (!path)
        set_result(t, ST_ERROR, "out of memory");
    else if (inspect_model(t, path) == ST_PASS &&
             open_session(t, path, o, &session, &ctx) == ST_PASS)
        run_data_sets(t, session, ctx, o);
    if (t->status == ST_PASS && !t->message)
        t->message = random_note(t);
    if (!t->message)
        t->message = qkv_strdup("");
    if (!t->ops_joined)
        t->ops_joined = qkv_strdup("");
    qkv_context_destroy(ctx);
    qkv_session_destroy(session);
    free(path);
}

/* ---- scoreboard groups ------------------------------------------------------------ */

/* Lowercase, without '_'; "test_" stripped first. */
static void normalize(const char *s, char *buf, size_t cap)
{
    size_t n = 0;
    if (!strncmp(s, "test_", 5))
        s += 5;
    for (; *s && n + 1 < cap; s++) {
        if (*s == '_')
            continue;
        buf[n++] = (*s >= 'A' && *s <= 'Z') ? (char)(*s - 'A' + 'a') : *s;
    }
    buf[n] = '\0';
}

/* The longest op of ops[] whose normalized name prefixes norm_test, or NULL. */
static const char *longest_prefix(const op_stat *ops, size_t n, const char *norm_test,
                                  size_t *best_len)
{
    const char *best = NULL;
    for (size_t i = 0; i < n; i++) {
        char norm[128];
        normalize(ops[i].op, norm, sizeof norm);
        size_t len = strlen(norm);
        if (len && len > *best_len && !strncmp(norm_test, norm, len)) {
            best = ops[i].op;
            *best_len = len;
        }
    }
    return best;
}

/* Rules 2-6 of group_tests (no _expanded lookup). */
static const char *own_group(const test_case *t, const test_list *l)
{
    if (t->n_ops == 1)
        return t->ops[0].op;
    char norm[256];
    normalize(t->name, norm, sizeof norm);
    size_t len = 0;
    const char *g = longest_prefix(t->ops, t->n_ops, norm, &len);
    if (g)
        return g;
    for (size_t i = 0; i < l->n; i++) {
        const char *h = longest_prefix(l->v[i].ops, l->v[i].n_ops, norm, &len);
        if (h)
            g = h;
    }
    if (g)
        return g;
    size_t best = 0;
    for (size_t i = 0; i < t->n_ops; i++) {
        if (t->ops[i].count > best) {
            best = t->ops[i].count;
            g = t->ops[i].op;
        }
    }
    return g ? g : "(none)";
}

/*
 * The scoreboard's operator of each test:
 *  1. a test named X_expanded, when X is in the run: X's operator;
 *  2. a model with one distinct op type: that op;
 *  3. the longest op type of the model matching the test name ("test_" and
 *     '_' removed, lowercase: test_reduce_sum_keepdims matches ReduceSum);
 *  4. the longest op type of any model in the run matching it;
 *  5. the model's most frequent op type (the first on ties);
 *  6. "(none)" (no nodes, or the model did not load).
 */
static void group_tests(test_list *l)
{
    for (size_t i = 0; i < l->n; i++)
        l->v[i].group = own_group(&l->v[i], l);
    for (size_t i = 0; i < l->n; i++) {
        test_case *t = &l->v[i];
        size_t n = strlen(t->name);
        static const char sfx[] = "_expanded";
        if (n <= sizeof sfx - 1 || strcmp(t->name + n - (sizeof sfx - 1), sfx) != 0)
            continue;
        for (size_t j = 0; j < l->n; j++) {
            if (strlen(l->v[j].name) == n - (sizeof sfx - 1) &&
                !strncmp(l->v[j].name, t->name, n - (sizeof sfx - 1))) {
                t->group = own_group(&l->v[j], l);
                break;
            }
        }
    }
}

/* ---- reports ------------------------------------------------------------------------ */

static int write_json(const char *path, const test_list *l, const size_t counts[ST_COUNT_])
{
    FILE *f = fopen(path, "w");
    if (!f)
        return qkv_cli_fail("cannot create '%s': %s", path, strerror(errno));
    fputs("{\"tests\": [", f);
    for (size_t i = 0; i < l->n; i++) {
        const test_case *t = &l->v[i];
        fputs(i ? ",\n  {" : "\n  {", f);
        qkv_cli_json_key(f, "name");
        qkv_cli_json_string(f, t->name);
        fputs(", ", f);
        qkv_cli_json_key(f, "status");
        qkv_cli_json_string(f, STATUS_NAME[t->status]);
        fputs(", ", f);
        qkv_cli_json_key(f, "op");
        qkv_cli_json_string(f, t->ops_joined);
        fputs(", ", f);
        qkv_cli_json_key(f, "group");
        qkv_cli_json_string(f, t->group);
        fputs(", ", f);
        qkv_cli_json_key(f, "message");
        qkv_cli_json_string(f, t->message);
        fputs("}", f);
    }
    fprintf(f,
            "%s],\n \"summary\": {\"total\": %zu, \"pass\": %zu, \"fail\": %zu, "
            "\"unsupported\": %zu, \"error\": %zu}}\n",
            l->n ? "\n" : "", l->n, counts[ST_PASS], counts[ST_FAIL], counts[ST_UNSUPPORTED],
            counts[ST_ERROR]);
    int bad = ferror(f);
    if (fclose(f) != 0 || bad)
        return qkv_cli_fail("cannot write '%s': %s", path, strerror(errno ? errno : EIO));
    return QKV_EXIT_OK;
}

/* Markdown-safe text: '|' escaped, '<' as &lt;, control characters as spaces. */
static void md_text(FILE *f, const char *s, size_t max)
{
    size_t n = 0;
    for (; *s && n < max; s++, n++) {
        if (*s == '|')
            fputs("\\|", f);
        else if (*s == '<')
            fputs("&lt;", f);
        else if ((unsigned char)*s < 0x20)
            fputc(' ', f);
        else
            fputc(*s, f);
    }
    if (*s)
        fputs("...", f);
}

static int cmp_icase(const char *a, const char *b)
{
    for (;; a++, b++) {
        int x = (*a >= 'A' && *a <= 'Z') ? *a - 'A' + 'a' : (unsigned char)*a;
        int y = (*b >= 'A' && *b <= 'Z') ? *b - 'A' + 'a' : (unsigned char)*b;
        if (x != y || !x)
            return x != y ? x - y : 0;
    }
}

typedef struct group_row {
    const char *op;
    size_t counts[ST_COUNT_];
    size_t total;
} group_row;

static int by_op(const void *a, const void *b)
{
    const group_row *x = a, *y = b;
    int c = cmp_icase(x->op, y->op);
    return c ? c : strcmp(x->op, y->op);
}

static void md_row(FILE *f, const char *label, const size_t counts[ST_COUNT_], size_t total,
                   int bold)
{
    fputs("| ", f);
    if (bold)
        fprintf(f, "**%s**", label);
    else
        md_text(f, label, 200);
    fprintf(f, " | %zu | %zu | %zu | %zu | %zu |\n", total, counts[ST_PASS], counts[ST_FAIL],
            counts[ST_UNSUPPORTED], counts[ST_ERROR]);
}

static int write_scoreboard(const char *path, const test_list *l, const size_t counts[ST_COUNT_])
{
    group_row *rows = calloc(l->n ? l->n : 1, sizeof *rows);
    if (!rows)
        return qkv_cli_fail("out of memory");
    size_t n_rows = 0;
    for (size_t i = 0; i < l->n; i++) {
        const test_case *t = &l->v[i];
        size_t r = 0;
        while (r < n_rows && strcmp(rows[r].op, t->group) != 0)
            r++;
        if (r == n_rows)
            rows[n_rows++].op = t->group;
        rows[r].counts[t->status]++;
        rows[r].total++;
    }
    qsort(rows, n_rows, sizeof *rows, by_op);
    FILE *f = fopen(path, "w");
    if (!f) {
        free(rows);
        return qkv_cli_fail("cannot create '%s': %s", path, strerror(errno));
    }
    static const char header[] = "| op | tests | pass | fail | unsupported | error |\n"
                                 "|---|---:|---:|---:|---:|---:|\n";
    fputs("# qkv ONNX backend test scoreboard\n\n", f);
    fputs(header, f);
    md_row(f, "total", counts, l->n, 1);
    size_t supported = l->n - counts[ST_UNSUPPORTED];
    fprintf(f,
            "\n%zu operators. Pass rate: %.1f%% of all tests, %.1f%% of the tests qkv "
            "supports.\n\n",
            n_rows, l->n ? 100.0 * (double)counts[ST_PASS] / (double)l->n : 0.0,
            supported ? 100.0 * (double)counts[ST_PASS] / (double)supported : 0.0);
    fputs("Operators are grouped by the test name (test_<op>...): see docs/cli.md.\n\n", f);
    fputs(header, f);
    for (size_t r = 0; r < n_rows; r++)
        md_row(f, rows[r].op, rows[r].counts, rows[r].total, 0);
    if (counts[ST_FAIL] || counts[ST_ERROR]) {
        fputs("\n## Failing tests\n\n| test | op | status | message |\n|---|---|---|---|\n", f);
        for (size_t i = 0; i < l->n; i++) {
            const test_case *t = &l->v[i];
            if (t->status != ST_FAIL && t->status != ST_ERROR)
                continue;
            fputs("| ", f);
            md_text(f, t->name, 200);
            fputs(" | ", f);
            md_text(f, t->group, 200);
            fprintf(f, " | %s | ", STATUS_NAME[t->status]);
            md_text(f, t->message, 300);
            fputs(" |\n", f);
        }
    }
    free(rows);
    int bad = ferror(f);
    if (fclose(f) != 0 || bad)
        return qkv_cli_fail("cannot write '%s': %s", path, strerror(errno ? errno : EIO));
    return QKV_EXIT_OK;
}

/* ---- the command ----------------------------------------------------------------------- */

static void free_tests(test_list *l)
{
    for (size_t i = 0; i < l->n; i++) {
        test_case *t = &l->v[i];
        for (size_t k = 0; k < t->n_ops; k++)
            free(t->ops[k].op);
        free(t->ops);
        free(t->ops_joined);
        free(t->random);
        free(t->message);
        free(t->name);
        free(t->dir);
    }
    free(l->v);
}

static int matches_filter(const char *name, const char **filters, size_t n_filters)
{
    if (n_filters == 0)
        return 1;
    for (size_t i = 0; i < n_filters; i++)
        if (strstr(name, filters[i]))
            return 1;
    return 0;
}

/* Parses a tolerance: a finite, non-negative decimal number. 0 on success. */
static int parse_tolerance(const char *s, double *out)
{
    char *end = NULL;
    errno = 0;
    double v = strtod(s, &end);
    if (!*s || end == s || *end != '\0' || errno == ERANGE || !(v >= 0.0) || v > 1e300)
        return -1;
    *out = v;
    return 0;
}

/* What the command line asks for. */
typedef struct test_args {
    test_opts o;
    const char *json, *scoreboard;
    const char **dirs, **filters; /* argv strings; capacity argc each */
    size_t n_dirs, n_filters;
    int allow_unsupported;
} test_args;

/* Takes option id with its value. QKV_EXIT_OK, or QKV_EXIT_USAGE after
 * printing why the value is wrong. */
static int take_option(test_args *a, int id, const char *value)
{
    int64_t v;
    switch (id) {
    case OPT_JSON:
        a->json = value;
        break;
    case OPT_SCOREBOARD:
        a->scoreboard = value;
        break;
    case OPT_FILTER:
        a->filters[a->n_filters++] = value;
        break;
    case OPT_VERBOSE:
        a->o.verbose = 1;
        break;
    case OPT_NO_FUSE:
        a->o.no_fuse = 1;
        break;
    case OPT_ALLOW_UNSUPPORTED:
        a->allow_unsupported = 1;
        break;
    case OPT_THREADS:
        if (qkv_cli_parse_int(value, 0, 4096, &v) != 0)
            return qkv_cli_usage_error(USAGE, "--threads '%s': expected an integer in [0, 4096]",
                                       value);
        a->o.threads = (size_t)v;
        break;
    case OPT_RTOL:
    case OPT_ATOL:
        if (parse_tolerance(value, id == OPT_RTOL ? &a->o.rtol : &a->o.atol) != 0)
            return qkv_cli_usage_error(USAGE, "%s '%s': expected a non-negative number",
                                       id == OPT_RTOL ? "--rtol" : "--atol", value);
        break;
    default:
        break;
    }
    return QKV_EXIT_OK;
}

/* Parses the arguments into *a. Returns 1 to go on, or 0 when the command
 * must stop with *rc (after --help or a usage error). */
static int parse_args(int argc, char **argv, test_args *a, int *rc)
{
    qkv_cli_parser p;
    qkv_cli_parser_init(&p, argc, argv, OPTIONS, sizeof OPTIONS / sizeof OPTIONS[0], USAGE);
    for (;;) {
        int id, kind;
        const char *value;
        int more = qkv_cli_next_arg(&p, &kind, &id, &value, rc);
        if (more < 0)
            return 0;
        if (more == 0)
            break;
        if (kind == QKV_CLI_OPERAND) {
            a->dirs[a->n_dirs++] = value;
            continue;
        }
        *rc = take_option(a, id, value);
        if (*rc != QKV_EXIT_OK)
            return 0;
    }
    if (a->n_dirs == 0) {
        *rc = qkv_cli_usage_error(USAGE, "missing DIR");
        return 0;
    }
    return 1;
}

/* Finds the tests under each DIR into *all and keeps those --filter
 * selects. Returns QKV_EXIT_OK or an exit code after printing why. */
static int collect_tests(const test_args *a, test_list *all)
{
    for (size_t i = 0; i < a->n_dirs; i++) {
        if (!is_dir(a->dirs[i])) {
            struct stat st;
            return stat(a->dirs[i], &st) != 0
                       ? qkv_cli_fail("cannot open '%s': %s", a->dirs[i], strerror(errno))
                       : qkv_cli_fail("'%s' is not a directory", a->dirs[i]);
        }
        int rc = find_tests(all, a->dirs[i], 0);
        if (rc != QKV_EXIT_OK)
            return rc;
    }
    /* filter in place (the unselected are freed) */
    size_t kept = 0;
    for (size_t i = 0; i < all->n; i++) {
        if (matches_filter(all->v[i].name, a->filters, a->n_filters)) {
            all->v[kept++] = all->v[i];
        } else {
            free(all->v[i].name);
            free(all->v[i].dir);
        }
    }
    all->n = kept;
    return QKV_EXIT_OK;
}

/* Runs every test, printing its status line, and counts the statuses. */
static void run_tests(test_list *all, const test_opts *o, size_t counts[ST_COUNT_])
{
    for (size_t i = 0; i < all->n; i++) {
        test_case *t = &all->v[i];
        run_test(t, o);
        counts[t->status]++;
        if (t->status == ST_PASS && t->message && t->message[0])
            printf("PASS %s (%s)\n", t->name, t->message);
        else if (t->status == ST_PASS)
            printf("PASS %s\n", t->name);
        else
            printf("%s %s: %s\n", STATUS_LINE[t->status], t->name, t->message);
        fflush(stdout);
    }
}

/* Writes the --json and --scoreboard files and the summary line; returns
 * the exit code (see the header: failures, and a run that passed nothing). */
static int report_results(test_list *all, const size_t counts[ST_COUNT_], const test_args *a)
{
    group_tests(all);
    int rc = QKV_EXIT_OK;
    if (a->json)
        rc = write_json(a->json, all, counts);
    if (a->scoreboard && rc == QKV_EXIT_OK)
        rc = write_scoreboard(a->scoreboard, all, counts);
    printf("%zu passed, %zu failed, %zu skipped\n", counts[ST_PASS],
           counts[ST_FAIL] + counts[ST_ERROR], counts[ST_UNSUPPORTED]);
    if (rc == QKV_EXIT_OK && (counts[ST_FAIL] || counts[ST_ERROR]))
        rc = QKV_EXIT_FAILURE;
    else if (rc == QKV_EXIT_OK && all->n == 0)
        rc = qkv_cli_fail("no tests found%s: nothing was checked",
                          a->n_filters ? " (none matches --filter)" : "");
    else if (rc == QKV_EXIT_OK && counts[ST_PASS] == 0 && !a->allow_unsupported)
        rc = qkv_cli_fail("no test passed: all %zu unsupported (pass --allow-unsupported if "
                          "that is expected)",
                          counts[ST_UNSUPPORTED]);
    return rc;
}

int qkv_cmd_test(int argc, char **argv)
{
    test_args a = {.o = {.rtol = QKV_CLI_RTOL, .atol = QKV_CLI_ATOL}};
    test_list all = {0};
    int rc = QKV_EXIT_FAILURE;
    a.dirs = calloc((size_t)argc, sizeof *a.dirs);
    a.filters = calloc((size_t)argc, sizeof *a.filters);
    if (!a.dirs || !a.filters) {
        rc = qkv_cli_fail("out of memory");
    } else if (parse_args(argc, argv, &a, &rc)) {
        rc = collect_tests(&a, &all);
        if (rc == QKV_EXIT_OK) {
            size_t counts[ST_COUNT_] = {0};
            run_tests(&all, &a.o, counts);
            rc = report_results(&all, counts, &a);
        }
    }
    free_tests(&all);
    free(a.dirs);
    free(a.filters);
    return rc;
}
