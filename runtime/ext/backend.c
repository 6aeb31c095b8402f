/*
 * backend.c - a session's plugins and backends (see backend.h for the
 * sequence), the per-node assignment and the session-level queries of the
 * public API (plugins, backends, nodes).
 *
 * Order of backends: by priority, highest first ("cpu" is 0), ties in load
 * order; or, when the user lists backends (opts->backends, `--backend`),
 * exactly those in that order. A node goes to the first backend in the order
 * that has a kernel for its (domain, op, opset) and whose supports()
 * accepts it once input types are known.
 */
#include "backend.h"

#include "api.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "error.h"
#include "node_eval.h"

void qkv_backends_destroy(qkv_session_backends *b)
{
    if (!b)
        return;
    for (size_t i = 0; i < b->n_plugins; i++)
        qkv_plugin_release(b->plugins[i]);
    free(b->plugins);
    free(b->order);
    free(b);
}

/* Loads `path` into b unless b holds that library already. */
static qkv_status add_plugin(qkv_session_backends *b, const char *path, qkv_error *err)
{
    qkv_plugin *p = NULL;
    qkv_status st = qkv_plugin_load(path, &p, err);
    if (st != QKV_OK)
        return st;
    for (size_t i = 0; i < b->n_plugins; i++) {
        if (b->plugins[i] == p) {
            qkv_plugin_release(p); /* listed twice (default dir and --plugin): one is enough */
            return QKV_OK;
        }
    }
    qkv_plugin **grown = realloc(b->plugins, (b->n_plugins + 1) * sizeof *grown);
    if (!grown) {
        qkv_plugin_release(p);
        return qkv_error_set(err, QKV_ERR_OUT_OF_MEMORY, "out of memory loading plugins");
    }
    b->plugins = grown;
    b->plugins[b->n_plugins++] = p;
    return QKV_OK;
}

static qkv_status load_defaults(qkv_session_backends *b, qkv_error *err)
{
    char search[4096];
    char **files = NULL;
    size_t n = 0;
    qkv_plugin_search_path(search, sizeof search);
    qkv_status st = qkv_plugin_expand_path(search, &files, &n, err);
    for (size_t i = 0; i < n && st == QKV_OK; i++) {
        st = add_plugin(b, files[i], err);
        if (st != QKV_OK)
            qkv_error_prefix(err, "default plugin (QKV_PLUGIN_PATH=\"\" or "
                                  "--no-default-plugins skips them)");
    }
    qkv_plugin_files_free(files, n);
    return st;
}

/* "a, b, c" of the registry's backends into buf. */
static const char *backend_names(const qkv_registry *reg, char *buf, size_t cap)
{
    size_t len = 0;
    buf[0] = '\0';
    for (size_t i = 0; i < qkv_registry_backend_count(reg); i++) {
        int w = snprintf(buf + len, cap - len, "%s%s", i ? ", " : "",
                         qkv_registry_backend_at(reg, i)->name);
        if (w < 0 || (size_t)w >= cap - len)
            break;
        len += (size_t)w;
    }
    return buf;
}

/* The dispatch order: opts->backends, or all by priority. */
static qkv_status order_backends(qkv_session *s, const char *wanted, qkv_error *err)
{
    qkv_session_backends *b = s->backends;
    const qkv_registry *reg = s->registry;
    size_t nb = qkv_registry_backend_count(reg);
    b->order = calloc(nb, sizeof *b->order);
    if (!b->order)
        return qkv_error_set(err, QKV_ERR_OUT_OF_MEMORY, "out of memory ordering backends");
    if (!wanted || !wanted[0]) {
        for (size_t i = 0; i < nb; i++) {
            /* insertion sort, stable: priority desc, then registration order */
            size_t j = b->n_order;
            int32_t pri = qkv_registry_backend_at(reg, i)->priority;
            while (j > 0 && qkv_registry_backend_at(reg, b->order[j - 1])->priority < pri) {
                b->order[j] = b->order[j - 1];
                j--;
            }
            b->order[j] = i;
            b->n_order++;
        }
        return QKV_OK;
    }
    const char *p = wanted;
    for (;;) {
        const char *comma = strchr(p, ',');
        size_t len = comma ? (size_t)(comma - p) : strlen(p);
        char names[512];
        size_t found = nb;
        for (size_t i = 0; i < nb; i++) {
            const char *name = qkv_registry_backend_at(reg, i)->name;
            if (strlen(name) == len && strncmp(name, p, len) == 0)
                found = i;
        }
        if (found == nb)
            return qkv_error_set(err, QKV_ERR_INVALID_ARGUMENT,
                                 "backends '%s': no backend '%.*s' (available: %s)", wanted,
                                 (int)len, p, backend_names(reg, names, sizeof names));
        for (size_t j = 0; j < b->n_order; j++)
            if (b->order[j] == found)
                return qkv_error_set(err, QKV_ERR_INVALID_ARGUMENT,
                                     "backends '%s': '%.*s' is listed twice", wanted, (int)len, p);
        b->order[b->n_order++] = found;
        if (!comma)
            break;
        p = comma + 1;
    }
    /* a list of GEMM-only backends (e.g. "openblas") could run no node */
    size_t kernels = 0;
    for (size_t j = 0; j < b->n_order; j++)
        kernels += qkv_registry_backend_kernel_count(reg, b->order[j]);
    if (kernels == 0)
        return qkv_error_set(err, QKV_ERR_INVALID_ARGUMENT,
                             "backends '%s': none of them has kernels (a GEMM-only backend "
                             "such as openblas serves the kernels of others: list cpu too, "
                             "e.g. '%s,cpu')",
                             wanted, wanted);
    return QKV_OK;
}

qkv_status qkv_backends_setup(qkv_session *s, const qkv_session_options *opts, qkv_error *err)
{
    qkv_session_backends *b = calloc(1, sizeof *b);
    if (!b)
        return qkv_error_set(err, QKV_ERR_OUT_OF_MEMORY, "out of memory creating a session");
    s->backends = b;
    b->gemm_name = "portable";
    const char *cap = getenv("QKV_ISA");
    bool capped = cap && cap[0] && strcmp(cap, "native") != 0;
    snprintf(b->cpu_describe, sizeof b->cpu_describe, "qkv built-in kernels, ISA level %s%s%.16s%s",
             qkv_cpu_isa_name(), capped ? " (QKV_ISA=" : "", capped ? cap : "", capped ? ")" : "");
    qkv_status st = QKV_OK;
    if (!opts || !opts->no_default_plugins)
        st = load_defaults(b, err);
    for (size_t i = 0; opts && i < opts->n_plugins && st == QKV_OK; i++) {
        if (!opts->plugins || !opts->plugins[i])
            return qkv_error_set(err, QKV_ERR_INVALID_ARGUMENT,
                                 "session options: plugin %zu is NULL", i);
        st = add_plugin(b, opts->plugins[i], err);
    }
    for (size_t i = 0; i < b->n_plugins && st == QKV_OK; i++)
        st = qkv_plugin_merge(b->plugins[i], s->registry, err);
    if (st == QKV_OK)
        st = order_backends(s, opts ? opts->backends : NULL, err);
    for (size_t i = 0; i < b->n_order && st == QKV_OK; i++) {
        const qkv_registry_backend *rb = qkv_registry_backend_at(s->registry, b->order[i]);
        if (rb->gemm) {
            b->gemm.gemm = rb->gemm;
            b->gemm.user = rb->user;
            b->gemm_name = rb->name;
            break;
        }
    }
    return st;
}

/* false when k's input type masks reject an input type known already (the
 * declared type of a graph input or initializer): such a kernel would fail
 * inference, while a later backend's may run the node. */
static bool accepts_known_types(const qkv_kernel *k, const qkv_ir_graph *g, const qkv_ir_node *n)
{
    for (size_t i = 0; k->n_input_types && i < n->n_inputs; i++) {
        if (n->inputs[i] < 0)
            continue;
        qkv_dtype t = g->values[n->inputs[i]].dtype;
        uint64_t mask = k->input_types[i < k->n_input_types ? i : k->n_input_types - 1];
        if (t != QKV_DTYPE_UNDEFINED && mask && ((unsigned)t >= 64 || !(mask & QKV_DTYPE_BIT(t))))
            return false;
    }
    return true;
}

const qkv_kernel *qkv_backends_find(const qkv_session *s, const qkv_ir_node *n)
{
    return qkv_backends_find_in_graph(s, s->model->graph, n);
}

const qkv_kernel *qkv_backends_find_in_graph(const qkv_session *s, const qkv_ir_graph *g,
                                             const qkv_ir_node *n)
{
    const qkv_session_backends *b = s->backends;
    const qkv_kernel *first = NULL;
    if (!b) /* no backend setup (should not happen): the built-ins */
        return qkv_registry_find(s->registry, n->domain, n->op_type, n->opset, NULL);
    for (size_t i = 0; i < b->n_order; i++) {
        const qkv_kernel *k =
            qkv_registry_find_in(s->registry, b->order[i], n->domain, n->op_type, n->opset, NULL);
        if (k && accepts_known_types(k, g, n))
            return k;
        if (k && !first)
            first = k; /* none fits: the first one reports the type error */
    }
    return first;
}

/* Destroys node n's kernel state and initialises kernel k in its place. */
static qkv_status switch_kernel(qkv_ir_graph *g, qkv_ir_node *n, const qkv_kernel *k,
                                qkv_error *err)
{
    if (n->kernel && n->kernel->destroy && n->kernel_state)
        n->kernel->destroy(n->kernel_state);
    return qkv_kernel_init_node(k, n, g, err);
}

qkv_status qkv_backends_assign(qkv_session *s, qkv_error *err)
{
    return qkv_backends_assign_graph(s, s->model->graph, err);
}

qkv_status qkv_backends_assign_graph(qkv_session *s, qkv_ir_graph *g, qkv_error *err)
{
    const qkv_session_backends *b = s->backends;
    const qkv_host_api *host = qkv_host_api_get();
    bool changed = false;
    for (size_t i = 0; i < g->n_nodes; i++) {
        qkv_ir_node *n = &g->nodes[i];
        const qkv_kernel *chosen = NULL;
        char asked[256] = "";
        size_t asked_len = 0;
        for (size_t j = 0; j < b->n_order && !chosen; j++) {
            const qkv_registry_backend *rb = qkv_registry_backend_at(s->registry, b->order[j]);
            const qkv_kernel *k = qkv_registry_find_in(s->registry, b->order[j], n->domain,
                                                       n->op_type, n->opset, NULL);
            if (!k)
                continue;
            qkv_node_ctx nctx = {.node = n, .version = k->since_version, .err = NULL, .graph = g};
            if (accepts_known_types(k, g, n) &&
                (!rb->supports || rb->supports(rb->user, host, &nctx))) {
                chosen = k;
            } else {
                int w = snprintf(asked + asked_len, sizeof asked - asked_len, "%s%s",
                                 asked_len ? ", " : "", rb->name);
                if (w > 0 && (size_t)w < sizeof asked - asked_len)
                    asked_len += (size_t)w;
            }
        }
        if (!chosen) {
            char what[256];
            qkv_node_describe(n, n->kernel ? n->kernel->since_version : n->opset, what,
                              sizeof what);
            return qkv_error_set(err, QKV_ERR_UNSUPPORTED,
                                 "%s: no backend accepts this node (declined by: %s)", what, asked);
        }
        if (chosen == n->kernel)
            continue;
        qkv_status st = switch_kernel(g, n, chosen, err);
        if (st != QKV_OK)
            return st;
        changed = true;
    }
    /* the new kernels' inference must agree with what the graph says now */
    return changed ? qkv_infer_graph(g, err) : QKV_OK;
}

const qkv_gemm_provider *qkv_session_gemm(const qkv_session *s)
{
    return s->backends && s->backends->gemm.gemm ? &s->backends->gemm : NULL;
}

const char *qkv_session_node_backend(const qkv_session *s, const qkv_ir_node *n)
{
    int32_t bi = n->kernel ? qkv_registry_kernel_backend(s->registry, n->kernel) : -1;
    const qkv_registry_backend *rb =
        bi >= 0 ? qkv_registry_backend_at(s->registry, (size_t)bi) : NULL;
    return rb ? rb->name : "cpu";
}

/* ---- public queries ------------------------------------------------------------- */

size_t qkv_session_plugin_count(const qkv_session *s)
{
    return s && s->backends ? s->backends->n_plugins : 0;
}

const qkv_plugin *qkv_session_plugin(const qkv_session *s, size_t i)
{
    return i < qkv_session_plugin_count(s) ? s->backends->plugins[i] : NULL;
}

size_t qkv_session_backend_count(const qkv_session *s)
{
    return s && s->backends ? s->backends->n_order : 0;
}

const char *qkv_session_backend_name(const qkv_session *s, size_t i)
{
    if (i >= qkv_session_backend_count(s))
        return NULL;
    return qkv_registry_backend_at(s->registry, s->backends->order[i])->name;
}

const char *qkv_session_backend_describe(const qkv_session *s, size_t i)
{
    if (i >= qkv_session_backend_count(s))
        return "";
    const qkv_registry_backend *rb = qkv_registry_backend_at(s->registry, s->backends->order[i]);
    if (s->backends->order[i] == 0)
        return s->backends->cpu_describe;
    const char *d = rb->describe ? rb->describe(rb->user) : NULL;
    return d ? d : "";
}

const char *qkv_session_gemm_backend(const qkv_session *s)
{
    return s && s->backends ? s->backends->gemm_name : "portable";
}

size_t qkv_session_node_count(const qkv_session *s) { return s ? s->model->graph->n_nodes : 0; }

qkv_status qkv_session_node_info(const qkv_session *s, size_t i, qkv_node_info *out)
{
    const size_t need = QKV_STRUCT_END(qkv_node_info, name);
    if (!qkv_struct_usable(out, need) || i >= qkv_session_node_count(s))
        return QKV_ERR_INVALID_ARGUMENT;
    const qkv_ir_node *n = &s->model->graph->nodes[i];
    const char *origin = "built-in";
    int32_t bi = n->kernel ? qkv_registry_kernel_backend(s->registry, n->kernel) : -1;
    if (bi >= 0) {
        size_t count = qkv_registry_count(s->registry);
        for (size_t j = 0; j < count; j++) {
            const char *o = NULL;
            if (qkv_registry_at(s->registry, j, &o) == n->kernel) {
                origin = o;
                break;
            }
        }
    }
    qkv_node_info all = {.struct_size = sizeof all,
                         .name = n->name,
                         .op_type = n->op_type,
                         .domain = n->domain,
                         .opset = n->opset,
                         .backend = qkv_session_node_backend(s, n),
                         .origin = origin,
                         .shape_inference = n->kernel && n->kernel->infer != NULL};
    qkv_struct_fill(out, &all, sizeof all, need);
    return QKV_OK;
}
