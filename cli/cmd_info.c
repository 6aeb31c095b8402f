/*
 * cmd_info.c - `qkv info MODEL [--plan] [--shape NAME=d0,d1,...]...`
 *
 * Everything but --plan comes from the qkv_model_* API only, so info works
 * for models with operators qkv cannot run. --plan creates a session and a
 * context and asks the planner for the memory plan of the given shapes.
 */
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"

static const char USAGE[] =
    "usage: qkv info MODEL [--plan] [--shape NAME=d0,d1,...]...\n"
    "\n"
    "Show a model's producer, IR version, opsets, metadata, inputs and outputs\n"
    "(symbolic dims by name, '?' unknown, '[...]' unknown rank), initializers,\n"
    "and a histogram of its operators by domain.\n"
    "\n"
    "options:\n"
    "  --plan                  also create a session and print the memory plan\n"
    "                          for the input shapes (arena, lower bound, steps...)\n"
    "  --shape NAME=d0,d1,...  the shape of input NAME for --plan; or SYMBOL=N to\n"
    "                          set a symbolic dim of every input (repeatable)\n"
    "  -h, --help              show this help\n";

enum { OPT_PLAN, OPT_SHAPE };

static const qkv_cli_option OPTIONS[] = {
    {"--plan", 0, OPT_PLAN},
    {"--shape", 1, OPT_SHAPE},
};

/* ---- the operator histogram ------------------------------------------------- */

typedef struct op_count {
    const char *domain; /* "ai.onnx" for the default domain */
    const char *op;
    size_t count;
} op_count;

static const char *domain_name(const char *d) { return (!d || !*d) ? "ai.onnx" : d; }

static int by_domain_op(const void *a, const void *b)
{
    const op_count *x = a, *y = b;
    int c = strcmp(x->domain, y->domain);
    return c ? c : strcmp(x->op, y->op);
}

/* ai.onnx first, then the other domains by name; within one, count desc then name. */
static int by_domain_count(const void *a, const void *b)
{
    const op_count *x = a, *y = b;
    int xd = strcmp(x->domain, "ai.onnx") != 0, yd = strcmp(y->domain, "ai.onnx") != 0;
    if (xd != yd)
        return xd - yd;
    int c = strcmp(x->domain, y->domain);
    if (c)
        return c;
    if (x->count != y->count)
        return x->count > y->count ? -1 : 1;
    return strcmp(x->op, y->op);
}

static int print_histogram(const qkv_model *model, size_t n_nodes)
{
    if (n_nodes == 0)
        return 0;
    op_count *ops = calloc(n_nodes, sizeof *ops);
    if (!ops)
        return qkv_cli_fail("out of memory");
    for (size_t i = 0; i < n_nodes; i++) {
        const char *op = NULL, *domain = NULL;
        qkv_model_node_op(model, i, &op, &domain);
        ops[i].domain = domain_name(domain);
        ops[i].op = op ? op : "";
        ops[i].count = 1;
    }
    qsort(ops, n_nodes, sizeof *ops, by_domain_op);
    size_t n = 0;
    for (size_t i = 0; i < n_nodes; i++) {
        if (n && !by_domain_op(&ops[n - 1], &ops[i]))
            ops[n - 1].count++;
        else
            ops[n++] = ops[i];
    }
    qsort(ops, n, sizeof *ops, by_domain_count);
    size_t width = 0;
    for (size_t i = 0; i < n; i++)
        if (strlen(ops[i].op) > width)
            width = strlen(ops[i].op);
    for (size_t i = 0; i < n; i++) {
        if (i == 0 || strcmp(ops[i].domain, ops[i - 1].domain) != 0)
            printf("  %s:\n", ops[i].domain);
        printf("    %-*s %6zu\n", (int)width, ops[i].op, ops[i].count);
    }
    free(ops);
    return 0;
}

/* Prints s with control characters as spaces, at most `max` bytes. */
static void print_clean(const char *s, size_t max)
{
    size_t n = 0;
    for (; s[n] && n < max; n++)
        putchar(((unsigned char)s[n] < 0x20 || s[n] == 0x7f) ? ' ' : s[n]);
    if (s[n])
        fputs("...", stdout);
}

static void print_value(const char *kind, const qkv_value_info *vi)
{
    char shape[512];
    printf("  %-6s %s: %s %s\n", kind, vi->name, qkv_dtype_name(vi->dtype),
           qkv_cli_value_shape(vi, shape, sizeof shape));
}

static int print_info(const char *path, const qkv_model *model)
{
    qkv_model_meta m;
    char buf[64];
    qkv_model_get_meta(model, &m);
    printf("model: %s\n", path);
    printf("producer: ");
    if (*m.producer_name || *m.producer_version) {
        print_clean(*m.producer_name ? m.producer_name : "(unnamed)", 200);
        if (*m.producer_version) {
            putchar(' ');
            print_clean(m.producer_version, 200);
        }
    } else {
        fputs("(unknown)", stdout);
    }
    putchar('\n');
    printf("ir version: %" PRId64 "\n", m.ir_version);
    if (m.model_version)
        printf("model version: %" PRId64 "\n", m.model_version);
    if (*m.domain) {
        fputs("domain: ", stdout);
        print_clean(m.domain, 200);
        putchar('\n');
    }
    if (*m.doc_string) {
        fputs("doc: ", stdout);
        print_clean(m.doc_string, 200);
        putchar('\n');
    }
    if (*m.graph_name) {
        fputs("graph: ", stdout);
        print_clean(m.graph_name, 200);
        putchar('\n');
    }
    fputs("opsets:", stdout);
    for (size_t i = 0; i < m.opset_count; i++) {
        const char *domain = NULL;
        int64_t version = 0;
        qkv_model_opset(model, i, &domain, &version);
        printf("%s %s %" PRId64, i ? "," : "", domain_name(domain), version);
    }
    if (m.opset_count == 0)
        fputs(" (none)", stdout);
    putchar('\n');
    if (m.metadata_count) {
        puts("metadata:");
        for (size_t i = 0; i < m.metadata_count; i++) {
            const char *key = NULL, *value = NULL;
            qkv_model_metadata(model, i, &key, &value);
            fputs("  ", stdout);
            print_clean(key ? key : "", 200);
            fputs(": ", stdout);
            print_clean(value ? value : "", 200);
            putchar('\n');
        }
    }
    size_t n_in = qkv_model_input_count(model), n_out = qkv_model_output_count(model);
    printf("inputs: %zu\n", n_in);
    for (size_t i = 0; i < n_in; i++) {
        qkv_value_info vi;
        qkv_model_input(model, i, &vi);
        print_value("input", &vi);
    }
    printf("outputs: %zu\n", n_out);
    for (size_t i = 0; i < n_out; i++) {
        qkv_value_info vi;
        qkv_model_output(model, i, &vi);
        print_value("output", &vi);
    }
    printf("initializers: %zu (%s)\n", m.initializer_count,
           qkv_cli_human_bytes(m.initializer_bytes, buf, sizeof buf));
    printf("nodes: %zu\n", m.node_count);
    return print_histogram(model, m.node_count);
}

/* ---- --plan ------------------------------------------------------------------ */

static int print_plan(const char *path, const qkv_cli_shape *shapes, size_t n_shapes)
{
    qkv_error err = {0};
    qkv_session *session = NULL;
    qkv_context *ctx = NULL;
    qkv_tensor *inputs = NULL;
    int rc = QKV_EXIT_FAILURE;
    if (qkv_session_create(path, NULL, &session, &err) != QKV_OK)
        return qkv_cli_fail_error(&err, NULL);
    const qkv_model *model = qkv_session_model(session);
    size_t n_in = qkv_model_input_count(model);
    inputs = calloc(n_in ? n_in : 1, sizeof *inputs);
    if (!inputs) {
        rc = qkv_cli_fail("out of memory");
        goto done;
    }
    puts("plan:");
    for (size_t i = 0; i < n_in; i++) {
        qkv_value_info vi;
        char dims[512];
        qkv_model_input(model, i, &vi);
        inputs[i].dtype = vi.dtype;
        if (qkv_cli_resolve_shape(&vi, shapes, n_shapes, &inputs[i].rank, inputs[i].dims, &err) !=
            QKV_OK) {
            rc = qkv_cli_fail_error(&err, NULL);
            goto done;
        }
        printf("  input %s: %s %s\n", vi.name, qkv_dtype_name(vi.dtype),
               qkv_cli_dims_str(inputs[i].rank, inputs[i].dims, dims, sizeof dims));
    }
    if (qkv_context_create(session, &ctx, &err) != QKV_OK) {
        rc = qkv_cli_fail_error(&err, NULL);
        goto done;
    }
    qkv_plan_stats s = {0};
    if (qkv_plan(ctx, inputs, n_in, &s, &err) != QKV_OK) {
        rc = qkv_cli_fail_error(&err, NULL);
        goto done;
    }
    char a[64], b[64];
    printf("  arena: %s\n", qkv_cli_human_bytes(s.arena_bytes, a, sizeof a));
    printf("  lower bound: %s\n", qkv_cli_human_bytes(s.lower_bound_bytes, b, sizeof b));
    if (s.lower_bound_bytes)
        printf("  ratio: %.3f\n", (double)s.arena_bytes / (double)s.lower_bound_bytes);
    else
        printf("  ratio: -\n");
    printf("  steps: %zu\n", s.steps);
    printf("  views: %zu\n", s.views);
    printf("  in-place: %zu\n", s.in_place);
    printf("  planned values: %zu\n", s.planned_values);
    printf("  dynamic nodes: %zu\n", s.dynamic_nodes);
    rc = QKV_EXIT_OK;
done:
    free(inputs);
    qkv_context_destroy(ctx);
    qkv_session_destroy(session);
    return rc;
}

int qkv_cmd_info(int argc, char **argv)
{
    qkv_cli_parser p;
    const char *path = NULL;
    int plan = 0;
    qkv_cli_shape *shapes = NULL;
    size_t n_shapes = 0;
    int rc = QKV_EXIT_FAILURE;
    qkv_error err = {0};
    qkv_model *model = NULL;

    shapes = calloc((size_t)argc, sizeof *shapes); /* at most one per argument */
    if (!shapes)
        return qkv_cli_fail("out of memory");
    qkv_cli_parser_init(&p, argc, argv, OPTIONS, sizeof OPTIONS / sizeof OPTIONS[0], USAGE);
    for (;;) {
        int id;
        const char *value;
        int kind = qkv_cli_next(&p, &id, &value);
        if (kind == QKV_CLI_END)
            break;
        if (kind == QKV_CLI_ERROR) {
            rc = QKV_EXIT_USAGE;
            goto done;
        }
        if (kind == QKV_CLI_HELP) {
            fputs(USAGE, stdout);
            rc = QKV_EXIT_OK;
            goto done;
        }
        if (kind == QKV_CLI_OPERAND) {
            if (path) {
                rc = qkv_cli_usage_error(USAGE, "unexpected argument '%s'", value);
                goto done;
            }
            path = value;
        } else if (id == OPT_PLAN) {
            plan = 1;
        } else if (id == OPT_SHAPE) {
            if (qkv_cli_parse_shape(value, &shapes[n_shapes], &err) != QKV_OK) {
                rc = qkv_cli_usage_error(USAGE, "%s", err.message);
                goto done;
            }
            n_shapes++;
        }
    }
    if (!path) {
        rc = qkv_cli_usage_error(USAGE, "missing MODEL");
        goto done;
    }
    if (qkv_model_load_file(path, &model, &err) != QKV_OK) {
        rc = qkv_cli_fail_error(&err, NULL);
        goto done;
    }
    if (qkv_cli_check_shape_names(model, shapes, n_shapes, &err) != QKV_OK) {
        rc = qkv_cli_fail_error(&err, NULL);
        goto done;
    }
    if (plan) {
        /* check the shapes before printing anything, so a missing --shape
         * is the only output */
        size_t n_in = qkv_model_input_count(model);
        for (size_t i = 0; i < n_in; i++) {
            qkv_value_info vi;
            int32_t rank;
            int64_t dims[QKV_MAX_RANK];
            qkv_model_input(model, i, &vi);
            if (qkv_cli_resolve_shape(&vi, shapes, n_shapes, &rank, dims, &err) != QKV_OK) {
                rc = qkv_cli_fail_error(&err, NULL);
                goto done;
            }
        }
    }
    rc = print_info(path, model);
    if (rc == QKV_EXIT_OK && plan) {
        qkv_model_destroy(model);
        model = NULL;
        fflush(stdout);
        rc = print_plan(path, shapes, n_shapes);
    }
done:
    qkv_model_destroy(model);
    free(shapes);
    return rc;
}
