/*
 * cli_plugins.c - what the commands share about plugins and backends: the
 * --plugin/--backend/--no-default-plugins options, and printing the backends
 * (with their describe() lines) and where nodes run (`qkv run --verbose`,
 * `qkv info`, `qkv bench`) and how long they took (`qkv run --profile`).
 */
#include <stdlib.h>
#include <string.h>

#include "cli.h"

int qkv_cli_plugin_opts_init(qkv_cli_plugin_opts *po, int argc)
{
    memset(po, 0, sizeof *po);
    po->plugins = calloc(argc > 0 ? (size_t)argc : 1, sizeof *po->plugins);
    return po->plugins ? 0 : -1;
}

void qkv_cli_plugin_opts_fini(qkv_cli_plugin_opts *po)
{
    free(po->plugins);
    po->plugins = NULL;
}

int qkv_cli_plugin_option(qkv_cli_plugin_opts *po, int id, const char *value, const char *usage)
{
    switch (id) {
    case QKV_CLI_OPT_PLUGIN:
        if (!*value) {
            qkv_cli_usage_error(usage, "--plugin: empty path");
            return -1;
        }
        po->plugins[po->n_plugins++] = value;
        return 1;
    case QKV_CLI_OPT_BACKEND:
        if (!*value || value[0] == ',' || value[strlen(value) - 1] == ',' || strstr(value, ",,")) {
            qkv_cli_usage_error(usage, "--backend '%s': expected NAME[,NAME...]", value);
            return -1;
        }
        po->backends = value;
        return 1;
    case QKV_CLI_OPT_NO_DEFAULT_PLUGINS:
        po->no_defaults = 1;
        return 1;
    default:
        return 0;
    }
}

void qkv_cli_plugin_apply(const qkv_cli_plugin_opts *po, qkv_session_options *opts)
{
    opts->plugins = po->plugins;
    opts->n_plugins = po->n_plugins;
    opts->backends = po->backends;
    opts->no_default_plugins = po->no_defaults;
}

void qkv_cli_print_backends(const qkv_session *s, int per_node)
{
    size_t np = qkv_session_plugin_count(s);
    printf("plugins: %zu\n", np);
    for (size_t i = 0; i < np; i++) {
        const qkv_plugin *p = qkv_session_plugin(s, i);
        printf("  %s %s  %s\n", qkv_plugin_name(p),
               qkv_plugin_version(p)[0] ? qkv_plugin_version(p) : "-", qkv_plugin_path(p));
    }
    fputs("backends:", stdout);
    for (size_t i = 0; i < qkv_session_backend_count(s); i++)
        printf("%s %s", i ? "," : "", qkv_session_backend_name(s, i));
    printf(" (GEMM service: %s)\n", qkv_session_gemm_backend(s));
    /* how each backend is set up (e.g. which OpenBLAS core runs) */
    size_t wb = 0;
    for (size_t i = 0; i < qkv_session_backend_count(s); i++)
        if (strlen(qkv_session_backend_name(s, i)) > wb)
            wb = strlen(qkv_session_backend_name(s, i));
    for (size_t i = 0; i < qkv_session_backend_count(s); i++) {
        const char *d = qkv_session_backend_describe(s, i);
        if (d[0])
            printf("  %-*s  %s\n", (int)wb, qkv_session_backend_name(s, i), d);
    }
    if (!per_node)
        return;
    size_t n = qkv_session_node_count(s), wname = 4, wop = 2;
    for (size_t i = 0; i < n; i++) {
        qkv_node_info ni = {.struct_size = sizeof(qkv_node_info)};
        qkv_session_node_info(s, i, &ni);
        size_t lo = strlen(ni.op_type) + (ni.domain[0] ? strlen(ni.domain) + 1 : 0);
        wname = strlen(ni.name) > wname ? strlen(ni.name) : wname;
        wop = lo > wop ? lo : wop;
    }
    wname = wname > 40 ? 40 : wname;
    printf("nodes: %zu\n", n);
    printf("  %-*s  %-*s  %s\n", (int)wname, "node", (int)wop, "op", "backend");
    for (size_t i = 0; i < n; i++) {
        qkv_node_info ni = {.struct_size = sizeof(qkv_node_info)};
        char op[256];
        qkv_session_node_info(s, i, &ni);
        snprintf(op, sizeof op, "%s%s%s", ni.domain, ni.domain[0] ? "." : "", ni.op_type);
        printf("  %-*.*s  %-*s  %s%s\n", (int)wname, (int)wname, ni.name, (int)wop, op, ni.backend,
               ni.shape_inference ? "" : "  (no shape inference)");
    }
}

void qkv_cli_print_profile(const qkv_session *s, const qkv_context *ctx)
{
    size_t n = qkv_context_profile_count(ctx), wname = 4, wop = 2;
    double total = 0;
    for (size_t i = 0; i < n; i++) {
        qkv_profile_entry e = {.struct_size = sizeof(qkv_profile_entry)};
        qkv_node_info ni = {.struct_size = sizeof(qkv_node_info)};
        qkv_context_profile(ctx, i, &e);
        qkv_session_node_info(s, e.node, &ni);
        size_t lo = strlen(ni.op_type) + (ni.domain[0] ? strlen(ni.domain) + 1 : 0);
        wname = strlen(ni.name) > wname ? strlen(ni.name) : wname;
        wop = lo > wop ? lo : wop;
        total += e.ms;
    }
    wname = wname > 40 ? 40 : wname;
    printf("profile: %zu nodes run, %.3f ms in kernels (GEMM service: %s)\n", n, total,
           qkv_session_gemm_backend(s));
    printf("  %-*s  %-*s  %-10s  %10s  %6s\n", (int)wname, "node", (int)wop, "op", "backend", "ms",
           "%");
    for (size_t i = 0; i < n; i++) {
        qkv_profile_entry e = {.struct_size = sizeof(qkv_profile_entry)};
        qkv_node_info ni = {.struct_size = sizeof(qkv_node_info)};
        char op[256];
        qkv_context_profile(ctx, i, &e);
        qkv_session_node_info(s, e.node, &ni);
        snprintf(op, sizeof op, "%s%s%s", ni.domain, ni.domain[0] ? "." : "", ni.op_type);
        printf("  %-*.*s  %-*s  %-10s  %10.3f  %5.1f%%\n", (int)wname, (int)wname, ni.name,
               (int)wop, op, ni.backend, e.ms, total > 0 ? 100.0 * e.ms / total : 0.0);
    }
}
