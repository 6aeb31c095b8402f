/*
 * session.c - turning a loaded model into a runnable session: kernels chosen
 * and initialised for every node, types and static shapes inferred,
 * constants folded; the plan cache; checking run inputs.
 */
#include "session.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "api.h"
#include "backend.h"
#include "cpu_features.h"
#include "error.h"
#include "kernel_host.h"
#include "log.h"
#include "node_eval.h"
#include "passes.h"

void qkv_session_options_init(qkv_session_options *opts)
{
    memset(opts, 0, sizeof *opts);
    opts->struct_size = sizeof *opts;
    opts->threads = 1;
    opts->log_level = qkv_log_default_level();
}

static void destroy_kernel_states(qkv_ir_graph *g)
{
    for (size_t i = 0; i < g->n_nodes; i++) {
        qkv_ir_node *n = &g->nodes[i];
        if (n->kernel && n->kernel->destroy && n->kernel_state)
            n->kernel->destroy(n->kernel_state);
        n->kernel_state = NULL;
        n->kernel = NULL;
    }
}

void qkv_session_destroy(qkv_session *s)
{
    if (!s)
        return;
    for (size_t i = 0; i < s->n_plans; i++)
        qkv_plan_release(s->plans[i]);
    if (s->model && s->model->graph)
        destroy_kernel_states(s->model->graph);
    qkv_model_destroy(s->model);
    qkv_registry_destroy(s->registry);
    /* plugins last: the kernel states above were freed by their code */
    qkv_backends_destroy(s->backends);
    pthread_mutex_destroy(&s->cache_lock);
    free(s);
}

const qkv_model *qkv_session_model(const qkv_session *s)
{
    return s->model;
}

/* Chooses a kernel for every node; reports the first node without one and
 * how many others lack one too, so a user sees the whole gap at once. */
/* true when `name` is one of the entries of the ", "-separated list */
static bool list_has(const char *list, const char *name)
{
    size_t len = strlen(name);
    for (const char *p = list; *p;) {
        const char *end = strstr(p, ", ");
        size_t n = end ? (size_t)(end - p) : strlen(p);
        if (n == len && strncmp(p, name, len) == 0)
            return true;
        if (!end)
            break;
        p = end + 2;
    }
    return false;
}

static qkv_status resolve_kernels(qkv_session *s, qkv_error *err)
{
    qkv_ir_graph *g = s->model->graph;
    size_t missing = 0;
    const qkv_ir_node *first = NULL;
    char others[256] = "";
    for (size_t i = 0; i < g->n_nodes; i++) {
        qkv_ir_node *n = &g->nodes[i];
        n->kernel = qkv_backends_find(s, n); /* provisional: see qkv_backends_assign */
        if (n->kernel)
            continue;
        if (!first) {
            first = n;
        } else if (strcmp(n->op_type, first->op_type) != 0 && !list_has(others, n->op_type) &&
                   strlen(others) + strlen(n->op_type) + 3 < sizeof others) {
            strcat(others, others[0] ? ", " : "");
            strcat(others, n->op_type);
        }
        missing++;
    }
    if (!first)
        return QKV_OK;
    const char *domain = first->domain[0] ? first->domain : "ai.onnx";
    if (missing == 1)
        return qkv_error_set(err, QKV_ERR_UNSUPPORTED,
                             "node '%s': no kernel for op %s (domain %s, opset %lld)",
                             first->name, first->op_type, domain, (long long)first->opset);
    return qkv_error_set(err, QKV_ERR_UNSUPPORTED,
                         "node '%s': no kernel for op %s (domain %s, opset %lld); %zu nodes in "
                         "all lack a kernel%s%s",
                         first->name, first->op_type, domain, (long long)first->opset, missing,
                         others[0] ? ", also: " : "", others);
}

static qkv_status init_kernels(qkv_session *s, qkv_error *err)
{
    qkv_ir_graph *g = s->model->graph;
    for (size_t i = 0; i < g->n_nodes; i++) {
        qkv_ir_node *n = &g->nodes[i];
        const qkv_kernel *k = n->kernel;
        if (!k->init)
            continue;
        qkv_node_ctx nctx = {.node = n, .version = k->since_version, .err = err, .graph = g};
        qkv_error_clear(err);
        void *state = NULL;
        qkv_status st = k->init(k, qkv_host_api_get(), &nctx, &state);
        if (st != QKV_OK) {
            if (err && err->message[0] == '\0') {
                char what[256];
                qkv_node_describe(n, k->since_version, what, sizeof what);
                qkv_error_set(err, st, "%s: init failed", what);
            }
            return st;
        }
        n->kernel_state = state;
    }
    return QKV_OK;
}

/* Messages name nodes; a node the file left unnamed is called "#I" after its
 * position in the file (as `qkv info` counts them). */
static qkv_status name_unnamed_nodes(qkv_ir_graph *g, qkv_error *err)
{
    for (size_t i = 0; i < g->n_nodes; i++) {
        qkv_ir_node *n = &g->nodes[i];
        if (n->name && n->name[0])
            continue;
        char buf[32];
        snprintf(buf, sizeof buf, "#%zu", i);
        char *name = qkv_strdup(buf);
        if (!name)
            return qkv_error_set(err, QKV_ERR_OUT_OF_MEMORY, "out of memory naming nodes");
        free(n->name);
        n->name = name;
    }
    return QKV_OK;
}

/* GELU fusion, then MatMul + bias + activation + residual fusion (which
 * takes the Gelu nodes the first made); the new values get their types and
 * shapes, the new nodes their backend. */
static qkv_status fuse_activations(qkv_session *s, qkv_error *err)
{
    qkv_ir_graph *g = s->model->graph;
    qkv_status st = qkv_pass_fuse_gelu(g, s->registry, &s->n_fused_gelu, err);
    if (st == QKV_OK)
        st = qkv_pass_fuse_matmul(g, s->registry, &s->n_fused_matmul, err);
    bool changed = s->n_fused_gelu || s->n_fused_matmul;
    if (st == QKV_OK && changed)
        st = qkv_infer_graph(g, err);
    if (st == QKV_OK && changed)
        st = qkv_backends_assign(s, err);
    return st;
}

static qkv_status session_build(qkv_model *model, const qkv_session_options *opts,
                                qkv_session **out, qkv_error *err)
{
    qkv_session *s = calloc(1, sizeof *s);
    if (!s) {
        qkv_model_destroy(model);
        return qkv_error_set(err, QKV_ERR_OUT_OF_MEMORY, "out of memory creating a session");
    }
    if (opts && opts->struct_size < QKV_STRUCT_END(qkv_session_options, threads)) {
        free(s);
        qkv_model_destroy(model);
        return qkv_error_set(err, QKV_ERR_INVALID_ARGUMENT,
                             "session options: struct_size %zu is too small (set it with "
                             "qkv_session_options_init)",
                             opts->struct_size);
    }
    pthread_mutex_init(&s->cache_lock, NULL);
    atomic_init(&s->plans_built, 0);
    s->model = model;
    qkv_session_options_init(&s->opts);
    if (opts) {
        /* read only as far as the caller's struct reaches; the rest keeps
         * the defaults. Everything after this reads s->opts. */
        size_t n = opts->struct_size < sizeof s->opts ? opts->struct_size : sizeof s->opts;
        memcpy(&s->opts, opts, n);
        s->opts.struct_size = sizeof s->opts;
    }
    if (s->opts.threads == 0)
        s->opts.threads = 1;
    /* what plugins and kernels log while the session is built goes to its sink */
    qkv_log_scope scope;
    qkv_log_enter(&s->opts, &scope);
    qkv_status st = QKV_OK;
    s->registry = qkv_registry_create();
    if (!s->registry)
        st = qkv_error_set(err, QKV_ERR_OUT_OF_MEMORY, "out of memory creating a session");
    if (st == QKV_OK)
        st = name_unnamed_nodes(model->graph, err);
    if (st == QKV_OK)
        st = qkv_registry_add_builtins(s->registry, err);
    /* Plugins and backends: load the plugins into the registry and order
     * the backends; kernels are chosen provisionally (the first
     * backend with one) so init and inference can run, then each node goes
     * to the first backend whose supports() accepts it with its input types
     * known (a node that moves is re-initialised, the graph re-inferred). */
    if (st == QKV_OK)
        st = qkv_backends_setup(s, &s->opts, err);
    if (st == QKV_OK)
        st = resolve_kernels(s, err);
    if (st == QKV_OK)
        st = init_kernels(s, err);
    if (st == QKV_OK)
        st = qkv_infer_graph(model->graph, err);
    if (st == QKV_OK)
        st = qkv_backends_assign(s, err);
    if (st == QKV_OK && !s->opts.disable_folding)
        st = qkv_fold_constants(model->graph, &s->n_folded, err);
    /* Attention fusion: shapes are inferred again first (folded
     * constants, e.g. Unsqueeze axes, make more of them known); the pass
     * initialises the kernels of the nodes it creates and destroys those of
     * the nodes it removes; then the new values get their types and shapes,
     * the new nodes their backend, and constant masks fold. */
    if (st == QKV_OK && !s->opts.disable_fusion) {
        st = qkv_infer_graph(model->graph, err);
        if (st == QKV_OK)
            st = qkv_pass_fuse_attention(model->graph, s->registry, &s->n_fused, err);
        if (st == QKV_OK && s->n_fused)
            st = qkv_infer_graph(model->graph, err);
        if (st == QKV_OK && s->n_fused)
            st = qkv_backends_assign(s, err);
        size_t refolded = 0;
        if (st == QKV_OK && s->n_fused && !s->opts.disable_folding)
            st = qkv_fold_constants(model->graph, &refolded, err);
        s->n_folded += refolded;
    }
    if (st == QKV_OK && !s->opts.disable_fusion)
        st = fuse_activations(s, err);
    /* Last, with every kernel final: constant weights packed once. */
    if (st == QKV_OK)
        st = qkv_prepack_constants(model->graph, s->opts.memory_limit, &s->prepack, err);
    qkv_log_leave(&scope);
    if (st != QKV_OK) {
        qkv_session_destroy(s);
        return st;
    }
    *out = s;
    return QKV_OK;
}

qkv_status qkv_session_create(const char *path, const qkv_session_options *opts,
                              qkv_session **out, qkv_error *err)
{
    qkv_model *model = NULL;
    if (!path || !out)
        return qkv_error_set(err, QKV_ERR_INVALID_ARGUMENT, "qkv_session_create: NULL argument");
    qkv_status st = qkv_model_load_file(path, &model, err);
    if (st != QKV_OK)
        return st;
    return session_build(model, opts, out, err);
}

qkv_status qkv_session_create_from_buffer(const void *data, size_t bytes, const char *base_dir,
                                          const qkv_session_options *opts, qkv_session **out,
                                          qkv_error *err)
{
    qkv_model *model = NULL;
    if (!data || !out)
        return qkv_error_set(err, QKV_ERR_INVALID_ARGUMENT,
                             "qkv_session_create_from_buffer: NULL argument");
    qkv_status st = qkv_model_load_buffer(data, bytes, base_dir, &model, err);
    if (st != QKV_OK)
        return st;
    return session_build(model, opts, out, err);
}

/* ---- run inputs ------------------------------------------------------------ */

qkv_status qkv_session_check_inputs(const qkv_session *s, const qkv_tensor *inputs,
                                    size_t n_inputs, bool need_data, qkv_error *err)
{
    const qkv_ir_graph *g = s->model->graph;
    if (n_inputs != g->n_inputs)
        return qkv_error_set(err, QKV_ERR_INVALID_ARGUMENT,
                             "the model has %zu inputs, %zu were given", g->n_inputs, n_inputs);
    if (n_inputs && !inputs)
        return qkv_error_set(err, QKV_ERR_INVALID_ARGUMENT, "inputs is NULL");
    for (size_t i = 0; i < n_inputs; i++) {
        const qkv_ir_value *v = &g->values[g->inputs[i]];
        const qkv_tensor *t = &inputs[i];
        if (v->dtype != QKV_DTYPE_UNDEFINED && t->dtype != v->dtype)
            return qkv_error_set(err, QKV_ERR_TYPE, "input %zu '%s' has type %s, expected %s", i,
                                 v->name, qkv_dtype_name(t->dtype), qkv_dtype_name(v->dtype));
        if (t->rank < 0 || t->rank > QKV_MAX_RANK)
            return qkv_error_set(err, QKV_ERR_SHAPE, "input %zu '%s' has rank %d", i, v->name,
                                 t->rank);
        if (v->rank >= 0 && t->rank != v->rank)
            return qkv_error_set(err, QKV_ERR_SHAPE, "input %zu '%s' has rank %d, expected %d", i,
                                 v->name, t->rank, v->rank);
        for (int32_t k = 0; k < t->rank; k++) {
            if (t->dims[k] < 0)
                return qkv_error_set(err, QKV_ERR_SHAPE, "input %zu '%s': dim %d is %lld", i,
                                     v->name, k, (long long)t->dims[k]);
            if (v->rank >= 0 && v->dims[k] >= 0 && v->dims[k] != t->dims[k])
                return qkv_error_set(err, QKV_ERR_SHAPE,
                                     "input %zu '%s': dim %d is %lld, the model says %lld", i,
                                     v->name, k, (long long)t->dims[k], (long long)v->dims[k]);
            if (v->rank < 0 || !v->dim_params[k])
                continue;
            /* the same symbolic name must have one value across inputs */
            for (size_t j = 0; j < i; j++) {
                const qkv_ir_value *w = &g->values[g->inputs[j]];
                for (int32_t m = 0; w->rank >= 0 && m < w->rank; m++)
                    if (w->dim_params[m] && strcmp(w->dim_params[m], v->dim_params[k]) == 0 &&
                        inputs[j].dims[m] != t->dims[k])
                        return qkv_error_set(
                            err, QKV_ERR_SHAPE,
                            "input %zu '%s': dim %d ('%s') is %lld, but input %zu '%s' has "
                            "'%s' = %lld",
                            i, v->name, k, v->dim_params[k], (long long)t->dims[k], j, w->name,
                            w->dim_params[m], (long long)inputs[j].dims[m]);
            }
        }
        size_t elems, bytes;
        if (!qkv_shape_elements(t->dims, t->rank, &elems) ||
            !qkv_dtype_storage_bytes(t->dtype, elems, &bytes))
            return qkv_error_set(err, QKV_ERR_SHAPE, "input %zu '%s': size overflows", i,
                                 v->name);
        if (need_data && bytes > 0 && !t->data)
            return qkv_error_set(err, QKV_ERR_INVALID_ARGUMENT, "input %zu '%s' has no data", i,
                                 v->name);
        if (need_data && t->data_bytes < bytes)
            return qkv_error_set(err, QKV_ERR_INVALID_ARGUMENT,
                                 "input %zu '%s' has %zu bytes of data, its shape needs %zu", i,
                                 v->name, t->data_bytes, bytes);
    }
    return QKV_OK;
}

/* ---- fusion counts */
size_t qkv_session_fused_count(const qkv_session *s)
{
    return s ? s->n_fused : 0;
}
/* ---- end attention fusion */

size_t qkv_session_fusion_count(const qkv_session *s, const char *pass)
{
    if (!s || !pass)
        return 0;
    if (strcmp(pass, "attention") == 0)
        return s->n_fused;
    if (strcmp(pass, "gelu") == 0)
        return s->n_fused_gelu;
    if (strcmp(pass, "matmul") == 0)
        return s->n_fused_matmul;
    return 0;
}

/* ---- the plan cache --------------------------------------------------------- */

/* ---- plan cache observability */
size_t qkv_session_plans_built(const qkv_session *s)
{
    return s ? atomic_load(&((qkv_session *)s)->plans_built) : 0; /* C11 atomic_load takes no const */
}
/* ---- end plan cache observability */

static bool same_shapes(const qkv_exec_plan *p, const qkv_tensor *inputs, size_t n)
{
    if (p->n_inputs != n)
        return false;
    for (size_t i = 0; i < n; i++) {
        if (p->input_shapes[i].rank != inputs[i].rank)
            return false;
        for (int32_t k = 0; k < inputs[i].rank; k++)
            if (p->input_shapes[i].dims[k] != inputs[i].dims[k])
                return false;
    }
    return true;
}

qkv_status qkv_plan_get(qkv_session *s, const qkv_tensor *inputs, size_t n_inputs,
                        qkv_exec_plan **out, qkv_error *err)
{
    const size_t cap = sizeof s->plans / sizeof s->plans[0];
    pthread_mutex_lock(&s->cache_lock);
    for (size_t i = 0; i < s->n_plans; i++) {
        qkv_exec_plan *p = s->plans[i];
        if (!same_shapes(p, inputs, n_inputs))
            continue;
        /* move to front: least recently used plans are evicted first */
        memmove(&s->plans[1], &s->plans[0], i * sizeof s->plans[0]);
        s->plans[0] = p;
        atomic_fetch_add(&p->refs, 1);
        pthread_mutex_unlock(&s->cache_lock);
        *out = p;
        return QKV_OK;
    }
    pthread_mutex_unlock(&s->cache_lock);

    /* Build outside the lock: planning may evaluate nodes. Two threads may
     * build the same plan; the second one finds the first in the cache. */
    qkv_exec_plan *p = NULL;
    qkv_status st = qkv_plan_build(s, inputs, n_inputs, &p, err);
    if (st != QKV_OK)
        return st;
    atomic_fetch_add(&s->plans_built, 1);
    pthread_mutex_lock(&s->cache_lock);
    for (size_t i = 0; i < s->n_plans; i++) {
        if (same_shapes(s->plans[i], inputs, n_inputs)) {
            qkv_exec_plan *existing = s->plans[i];
            atomic_fetch_add(&existing->refs, 1);
            pthread_mutex_unlock(&s->cache_lock);
            qkv_plan_release(p);
            *out = existing;
            return QKV_OK;
        }
    }
    if (s->n_plans == cap)
        qkv_plan_release(s->plans[--s->n_plans]); /* contexts may still hold it */
    memmove(&s->plans[1], &s->plans[0], s->n_plans * sizeof s->plans[0]);
    s->plans[0] = p;
    s->n_plans++;
    atomic_fetch_add(&p->refs, 1); /* the cache's reference + the caller's */
    pthread_mutex_unlock(&s->cache_lock);
    *out = p;
    return QKV_OK;
}

size_t qkv_session_packed_bytes(const qkv_session *s, size_t *released_bytes)
{
    if (released_bytes)
        *released_bytes = s ? s->prepack.released_bytes : 0;
    return s ? s->prepack.packed_bytes : 0;
}

uint64_t qkv_cpu_features(void)
{
    return qkv_cpu_features_get();
}

const char *qkv_cpu_isa_name(void)
{
    return qkv_isa_name(qkv_cpu_isa());
}

const char *qkv_cpu_name(void)
{
    return qkv_cpu_brand();
}

size_t qkv_cpu_features_string(uint64_t features, char *buf, size_t cap)
{
    char all[256]; /* every name of qkv_cpu_features_str fits */
    qkv_cpu_features_str(features, all, sizeof all);
    int n = snprintf(buf, cap, "%s", all);
    return n > 0 ? (size_t)n : 0;
}
