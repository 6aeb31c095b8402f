/*
 * cmd_info.c - `qkv info MODEL [--plan] [--optimized] [--no-fuse]
 *              [--shape NAME=d0,d1,...]...` and `qkv info --system [MODEL]`
 *
 * --system describes what this machine runs models with: the CPU, its
 * features, the kernels' ISA level, the plugins and backends a session gets
 * (each backend's describe() line) and which backend is the GEMM service.
 * It creates a session on a tiny built-in model for that, so it needs no
 * model file.
 *
 * Everything but --plan and --optimized comes from the qkv_model_* API only,
 * so info works for models with operators qkv cannot run. --plan creates a
 * session and a context and asks the planner for the memory plan of the
 * given shapes. --optimized creates a session and prints its graph after the
 * passes (folding, attention fusion), reading the IR (ir.h).
 */
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "ir.h" /* --optimized: the session's graph */

static const char USAGE[] =
    "usage: qkv info MODEL [--plan] [--optimized] [--no-fuse]\n"
    "                [--shape NAME=d0,d1,...]... [--plugin PATH]...\n"
    "                [--backend NAME,...] [--no-default-plugins]\n"
    "       qkv info --system [MODEL ...]\n"
    "\n"
    "Show a model's producer, IR version, opsets, metadata, inputs and outputs\n"
    "(symbolic dims by name, '?' unknown, '[...]' unknown rank), initializers,\n"
    "and a histogram of its operators by domain.\n"
    "\n"
    "options:\n"
    "  --system                first describe this machine: CPU, features, the\n"
    "                          kernels' ISA level (and the QKV_ISA cap), the\n"
    "                          plugins and backends a session gets (with how each\n"
    "                          is set up, e.g. OpenBLAS's core) and the GEMM\n"
    "                          service; MODEL is then optional\n"
    "  --plan                  also create a session and print the memory plan\n"
    "                          for the input shapes (arena, lower bound, steps...)\n"
    "  --optimized             also create a session and print its graph after the\n"
    "                          passes (constant folding, attention, GELU and\n"
    "                          MatMul fusion): one line per node, in run order,\n"
    "                          with value shapes known before any input arrives,\n"
    "                          and what each fusion made\n"
    "  --no-fuse               do not fuse attention, GELU or MatMul chains (--plan,\n"
    "                          --optimized)\n"
    "  --shape NAME=d0,d1,...  the shape of input NAME for --plan; or SYMBOL=N to\n"
    "                          set a symbolic dim of every input "
    "(repeatable)\n" QKV_CLI_PLUGIN_USAGE
    "Then, when a session can be created: the plugins, the backend order, and\n"
    "for each op type the backend its nodes run on, marking ops whose kernel\n"
    "has no shape inference (their outputs are sized at run time).\n"
    "  -h, --help              show this help\n";

enum { OPT_PLAN, OPT_SHAPE, OPT_OPTIMIZED, OPT_NO_FUSE, OPT_SYSTEM };

static const qkv_cli_option OPTIONS[] = {
    {"--plan", 0, OPT_PLAN},       {"--shape", 1, OPT_SHAPE},   {"--optimized", 0, OPT_OPTIMIZED},
    {"--no-fuse", 0, OPT_NO_FUSE}, {"--system", 0, OPT_SYSTEM}, QKV_CLI_PLUGIN_OPTIONS,
};

/* ---- the operator histogram ---------------------------------------------- */

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
    static const char *const wrap[] = {"", "sequence of ", "optional ", "optional sequence of "};
    char shape[512];
    if (vi->kind != QKV_KIND_TENSOR) {
        printf("  %-6s %s: %s%s\n", kind, vi->name,
               (unsigned)vi->kind < 4 ? wrap[vi->kind] : "value of unknown kind of ",
               qkv_dtype_name(vi->dtype));
        return;
    }
    printf("  %-6s %s: %s %s\n", kind, vi->name, qkv_dtype_name(vi->dtype),
           qkv_cli_value_shape(vi, shape, sizeof shape));
}

static int print_info(const char *path, const qkv_model *model)
{
    qkv_model_meta m = {.struct_size = sizeof(qkv_model_meta)};
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
        qkv_value_info vi = {.struct_size = sizeof(qkv_value_info)};
        qkv_model_input(model, i, &vi);
        print_value("input", &vi);
    }
    printf("outputs: %zu\n", n_out);
    for (size_t i = 0; i < n_out; i++) {
        qkv_value_info vi = {.struct_size = sizeof(qkv_value_info)};
        qkv_model_output(model, i, &vi);
        print_value("output", &vi);
    }
    printf("initializers: %zu (%s)\n", m.initializer_count,
           qkv_cli_human_bytes(m.initializer_bytes, buf, sizeof buf));
    printf("nodes: %zu\n", m.node_count);
    return print_histogram(model, m.node_count);
}

/* ---- --plan -------------------------------------------------------------- */

static int print_plan(const char *path, const qkv_cli_shape *shapes, size_t n_shapes, int no_fuse,
                      const qkv_cli_plugin_opts *po)
{
    qkv_error err = {0};
    qkv_session *session = NULL;
    qkv_context *ctx = NULL;
    qkv_tensor *inputs = NULL;
    int rc = QKV_EXIT_FAILURE;
    qkv_session_options opts;
    qkv_session_options_init(&opts);
    opts.disable_fusion = no_fuse;   /* --no-fuse */
    qkv_cli_plugin_apply(po, &opts); /* --plugin... */
    if (qkv_session_create(path, &opts, &session, &err) != QKV_OK)
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
        qkv_value_info vi = {.struct_size = sizeof(qkv_value_info)};
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
    qkv_plan_stats s = {.struct_size = sizeof(qkv_plan_stats)};
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
    /* session-wide, shared by every context: not part of the arena */
    size_t released = 0, packed = qkv_session_packed_bytes(session, &released);
    printf("  packed weights: %s (originals released: %s)\n",
           qkv_cli_human_bytes(packed, a, sizeof a), qkv_cli_human_bytes(released, b, sizeof b));
    rc = QKV_EXIT_OK;
done:
    free(inputs);
    qkv_context_destroy(ctx);
    qkv_session_destroy(session);
    return rc;
}

/* ---- --optimized --------------------------------------------------------- */

/* Appends "name [d0, d1]" (or "-" for an omitted optional) to buf at *len. */
static void append_value(const qkv_ir_graph *g, int32_t id, char *buf, size_t cap, size_t *len)
{
    char shape[256];
    const char *name = "-";
    shape[0] = '\0';
    if (id >= 0) {
        const qkv_ir_value *v = &g->values[id];
        qkv_value_info vi = {.name = v->name,
                             .dtype = v->dtype,
                             .rank = v->rank,
                             .dims = v->dims,
                             .dim_params = (const char *const *)v->dim_params};
        name = v->name;
        if (v->rank >= 0)
            qkv_cli_value_shape(&vi, shape, sizeof shape);
    }
    int w = snprintf(buf + *len, cap - *len, "%s%s%s", name, shape[0] ? " " : "", shape);
    if (w > 0)
        *len = *len + (size_t)w < cap ? *len + (size_t)w : cap - 1;
}

static int print_optimized(const char *path, int no_fuse, const qkv_cli_plugin_opts *po)
{
    qkv_error err = {0};
    qkv_session *session = NULL;
    qkv_session_options opts;
    qkv_session_options_init(&opts);
    opts.disable_fusion = no_fuse;
    qkv_cli_plugin_apply(po, &opts); /* --plugin... */
    if (qkv_session_create(path, &opts, &session, &err) != QKV_OK)
        return qkv_cli_fail_error(&err, NULL);
    const qkv_ir_graph *g = qkv_session_model(session)->graph;
    size_t fused = qkv_session_fused_count(session);
    size_t gelu = qkv_session_fusion_count(session, "gelu");
    size_t fmm = qkv_session_fusion_count(session, "matmul");
    printf("optimized graph: %zu nodes, %zu fused attention node%s", g->n_order, fused,
           fused == 1 ? "" : "s");
    if (gelu || fmm) /* the GELU count includes those the matmul pass then took in */
        printf(", %zu GELU subgraph%s fused, %zu FusedMatMul node%s", gelu, gelu == 1 ? "" : "s",
               fmm, fmm == 1 ? "" : "s");
    printf("%s\n", no_fuse ? " (fusion off)" : "");
    for (size_t o = 0; o < g->n_order; o++) {
        const qkv_ir_node *n = &g->nodes[g->order[o]];
        char line[2048];
        size_t len = 0;
        line[0] = '\0';
        for (size_t k = 0; k < n->n_inputs; k++) {
            if (k)
                len += (size_t)snprintf(line + len, sizeof line - len, ", ");
            if (len >= sizeof line - 1)
                break;
            append_value(g, n->inputs[k], line, sizeof line, &len);
        }
        if (len < sizeof line - 1)
            len += (size_t)snprintf(line + len, sizeof line - len, " -> ");
        for (size_t k = 0; k < n->n_outputs && len < sizeof line - 1; k++) {
            if (k)
                len += (size_t)snprintf(line + len, sizeof line - len, ", ");
            if (len >= sizeof line - 1)
                break;
            append_value(g, n->outputs[k], line, sizeof line, &len);
        }
        printf("  %4zu  ", o);
        print_clean(n->name, 200);
        printf("  %s%s%s-%lld  ", n->domain[0] ? n->domain : "", n->domain[0] ? ":" : "",
               n->op_type, (long long)n->opset);
        print_clean(line, sizeof line);
        putchar('\n');
    }
    qkv_session_destroy(session);
    return QKV_EXIT_OK;
}

/* ---- backends ------------------------------------------------------------ */

typedef struct op_backend {
    const char *domain, *op, *backend, *origin;
    int no_infer;
    size_t count;
} op_backend;

static int by_op_backend(const void *a, const void *b)
{
    const op_backend *x = a, *y = b;
    int c = strcmp(x->domain, y->domain);
    if (!c)
        c = strcmp(x->op, y->op);
    if (!c)
        c = strcmp(x->backend, y->backend);
    return c;
}

/* Creates a session (constant folding off, so every node of the file is
 * there) and prints where each op type runs. A model qkv cannot run is not
 * an error here: the line says why. */
static int print_backends(const char *path, int no_fuse, const qkv_cli_plugin_opts *po)
{
    qkv_error err = {0};
    qkv_session *session = NULL;
    qkv_session_options opts;
    qkv_session_options_init(&opts);
    opts.disable_folding = 1;
    opts.disable_fusion = no_fuse;
    qkv_cli_plugin_apply(po, &opts);
    if (qkv_session_create(path, &opts, &session, &err) != QKV_OK) {
        printf("backends: no session: ");
        print_clean(err.message[0] ? err.message : qkv_status_string(err.status), 400);
        putchar('\n');
        return QKV_EXIT_OK;
    }
    qkv_cli_print_backends(session, 0);
    size_t n = qkv_session_node_count(session), m = 0;
    op_backend *ops = calloc(n ? n : 1, sizeof *ops);
    if (!ops) {
        qkv_session_destroy(session);
        return qkv_cli_fail("out of memory");
    }
    for (size_t i = 0; i < n; i++) {
        qkv_node_info ni = {.struct_size = sizeof(qkv_node_info)};
        qkv_session_node_info(session, i, &ni);
        ops[i] = (op_backend){domain_name(ni.domain), ni.op_type, ni.backend, ni.origin,
                              !ni.shape_inference,    1};
    }
    qsort(ops, n, sizeof *ops, by_op_backend);
    for (size_t i = 0; i < n; i++) {
        if (m && !by_op_backend(&ops[m - 1], &ops[i]))
            ops[m - 1].count++;
        else
            ops[m++] = ops[i];
    }
    size_t width = 0, no_infer = 0;
    for (size_t i = 0; i < m; i++) {
        size_t w = strlen(ops[i].domain) + 1 + strlen(ops[i].op);
        width = w > width ? w : width;
        no_infer += (size_t)ops[i].no_infer;
    }
    size_t fused = qkv_session_fused_count(session);
    size_t gelu = qkv_session_fusion_count(session, "gelu");
    size_t fmm = qkv_session_fusion_count(session, "matmul");
    if (fused || gelu || fmm)
        printf("operators by backend (after fusion: %zu Attention node%s, %zu GELU subgraph%s "
               "made Gelu, %zu FusedMatMul node%s; --no-fuse shows the model's own ops):\n",
               fused, fused == 1 ? "" : "s", gelu, gelu == 1 ? "" : "s", fmm, fmm == 1 ? "" : "s");
    else
        puts("operators by backend:");
    for (size_t i = 0; i < m; i++) {
        char name[512];
        snprintf(name, sizeof name, "%s.%s", ops[i].domain, ops[i].op);
        printf("  %-*s  %-10s %6zu", (int)width, name, ops[i].backend, ops[i].count);
        if (strcmp(ops[i].origin, "built-in") != 0)
            printf("  from %s", ops[i].origin);
        if (ops[i].no_infer)
            fputs("  (no shape inference: outputs sized at run time)", stdout);
        putchar('\n');
    }
    if (no_infer)
        printf("ops without shape inference: %zu (their nodes and everything after them "
               "are planned at run time)\n",
               no_infer);
    free(ops);
    qkv_session_destroy(session);
    return QKV_EXIT_OK;
}

/* ---- --system ------------------------------------------------------------ */

/* y = Identity(x), x float32 [1], opset 13: the smallest model a session can
 * be created for (the bytes of onnx.helper's ModelProto, ir_version 8). */
static const unsigned char TINY_MODEL[] = {
    0x08, 0x08, 0x12, 0x00, 0x3a, 0x37, 0x0a, 0x10, 0x0a, 0x01, 0x78, 0x12, 0x01, 0x79,
    0x22, 0x08, 0x49, 0x64, 0x65, 0x6e, 0x74, 0x69, 0x74, 0x79, 0x12, 0x01, 0x67, 0x5a,
    0x0f, 0x0a, 0x01, 0x78, 0x12, 0x0a, 0x0a, 0x08, 0x08, 0x01, 0x12, 0x04, 0x0a, 0x02,
    0x08, 0x01, 0x62, 0x0f, 0x0a, 0x01, 0x79, 0x12, 0x0a, 0x0a, 0x08, 0x08, 0x01, 0x12,
    0x04, 0x0a, 0x02, 0x08, 0x01, 0x42, 0x04, 0x0a, 0x00, 0x10, 0x0d};

/* The system description; a session that cannot be created (a default
 * plugin failing to load, say) is reported as the command's error. */
static int print_system(const qkv_cli_plugin_opts *po)
{
    char features[256];
    const char *cap = getenv("QKV_ISA");
    int capped = cap && cap[0] && strcmp(cap, "native") != 0;
    const char *name = qkv_cpu_name();
    puts("system:");
    printf("  cpu: %s\n", name[0] ? name : "(the CPU gives no name)");
    qkv_cpu_features_string(qkv_cpu_features(), features, sizeof features);
    printf("  features: %s%s\n", features, capped ? " (as capped by QKV_ISA)" : "");
    if (capped)
        printf("  kernel ISA level: %s (capped by QKV_ISA=%s)\n", qkv_cpu_isa_name(), cap);
    else
        printf("  kernel ISA level: %s (the best this CPU has; QKV_ISA=baseline|avx2|avx512 "
               "caps it)\n",
               qkv_cpu_isa_name());
    fflush(stdout);
    qkv_session_options opts;
    qkv_session_options_init(&opts);
    qkv_cli_plugin_apply(po, &opts);
    qkv_session *session = NULL;
    qkv_error err = {0};
    if (qkv_session_create_from_buffer(TINY_MODEL, sizeof TINY_MODEL, NULL, &opts, &session,
                                       &err) != QKV_OK)
        return qkv_cli_fail_error(&err, "no session");
    qkv_cli_print_backends(session, 0);
    qkv_session_destroy(session);
    return QKV_EXIT_OK;
}

/* What the command line asks for. */
typedef struct info_args {
    int plan, optimized, no_fuse, system; /* --plan, --optimized, --no-fuse, --system */
    qkv_cli_plugin_opts po;               /* --plugin... */
    qkv_cli_shape *shapes;                /* capacity argc: at most one per argument */
    size_t n_shapes;
} info_args;

/* Takes option id with its value into the info_args at args (a
 * qkv_cli_take_option_fn). */
static int take_option(void *args, int id, const char *value)
{
    info_args *a = args;
    qkv_error err = {0};
    switch (id) {
    case OPT_PLAN:
        a->plan = 1;
        break;
    case OPT_OPTIMIZED:
        a->optimized = 1;
        break;
    case OPT_NO_FUSE:
        a->no_fuse = 1;
        break;
    case OPT_SYSTEM:
        a->system = 1;
        break;
    case OPT_SHAPE:
        if (qkv_cli_parse_shape(value, &a->shapes[a->n_shapes], &err) != QKV_OK)
            return qkv_cli_usage_error(USAGE, "%s", err.message);
        a->n_shapes++;
        break;
    default: /* --plugin, --backend, --no-default-plugins */
        if (qkv_cli_plugin_option(&a->po, id, value, USAGE) < 0)
            return QKV_EXIT_USAGE;
        break;
    }
    return QKV_EXIT_OK;
}

/* Checks the --shape options against the model: each names an input or a
 * symbolic dim, and with --plan every input's shape resolves (before
 * anything is printed, so a missing --shape is the only output). */
static int check_shapes(const info_args *a, const qkv_model *model)
{
    qkv_error err = {0};
    if (qkv_cli_check_shape_names(model, a->shapes, a->n_shapes, &err) != QKV_OK)
        return qkv_cli_fail_error(&err, NULL);
    size_t n_in = a->plan ? qkv_model_input_count(model) : 0;
    for (size_t i = 0; i < n_in; i++) {
        qkv_value_info vi = {.struct_size = sizeof(qkv_value_info)};
        int32_t rank;
        int64_t dims[QKV_MAX_RANK];
        qkv_model_input(model, i, &vi);
        if (qkv_cli_resolve_shape(&vi, a->shapes, a->n_shapes, &rank, dims, &err) != QKV_OK)
            return qkv_cli_fail_error(&err, NULL);
    }
    return QKV_EXIT_OK;
}

/* Describes the model at path: the model itself, then what a session makes
 * of it (backends, and with the options the optimized graph and the plan). */
static int describe_model(const info_args *a, const char *path)
{
    qkv_error err = {0};
    qkv_model *model = NULL;
    if (qkv_model_load_file(path, &model, &err) != QKV_OK)
        return qkv_cli_fail_error(&err, NULL);
    int rc = check_shapes(a, model);
    if (rc == QKV_EXIT_OK)
        rc = print_info(path, model);
    qkv_model_destroy(model);
    fflush(stdout);
    if (rc == QKV_EXIT_OK)
        rc = print_backends(path, a->no_fuse, &a->po);
    if (rc == QKV_EXIT_OK && a->optimized)
        rc = print_optimized(path, a->no_fuse, &a->po);
    if (rc == QKV_EXIT_OK && a->plan) {
        fflush(stdout);
        rc = print_plan(path, a->shapes, a->n_shapes, a->no_fuse, &a->po);
    }
    return rc;
}

/* The command's work: --system's description, then the model's (path may
 * be NULL with --system). */
static int info(const info_args *a, const char *path)
{
    int rc = a->system ? print_system(&a->po) : QKV_EXIT_OK;
    if (rc != QKV_EXIT_OK || !path)
        return rc;
    if (a->system)
        putchar('\n');
    return describe_model(a, path);
}

int qkv_cmd_info(int argc, char **argv)
{
    qkv_cli_parser p;
    info_args a = {0};
    const char *path = NULL;
    int rc = QKV_EXIT_FAILURE;
    a.shapes = calloc((size_t)argc, sizeof *a.shapes);
    if (!a.shapes || qkv_cli_plugin_opts_init(&a.po, argc) != 0) {
        free(a.shapes);
        return qkv_cli_fail("out of memory");
    }
    qkv_cli_parser_init(&p, argc, argv, OPTIONS, sizeof OPTIONS / sizeof OPTIONS[0], USAGE);
    if (qkv_cli_parse_model_args(&p, take_option, &a, &path, &rc))
        rc = path || a.system ? info(&a, path) : qkv_cli_usage_error(USAGE, "missing MODEL");
    free(a.shapes);
    qkv_cli_plugin_opts_fini(&a.po);
    return rc;
}
