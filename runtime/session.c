/*
 * session.c - turning a loaded model into a runnable session, and checking
 * run inputs against it.
 *
 * session_build runs the steps of session creation, each once and in this
 * order:
 *   1. the options, with defaults for what an older caller's struct lacks
 *   2. a name for every unnamed node, so messages can name it
 *   3. the kernels available: the built-ins, then the plugins' kernels and
 *      backends in their dispatch order (ext/registry.c, ext/backend.c)
 *   4. a provisional kernel for every node, initialised (the first backend
 *      in order with one), so inference can run
 *   5. the graph settled (settle_graph): types and static shapes inferred,
 *      every node on the first backend that accepts it with its input types
 *      known, constant subgraphs folded (passes/infer.c, fold.c)
 *   6. the fusion passes in order (fusion_passes), each followed by step 5
 *      again when it changed the graph: its new values need types and
 *      shapes, its new nodes a backend, and what it made constant folds
 *   7. constant weights packed once by their final kernels (passes/prepack.c)
 * Subgraphs (If/Loop/Scan bodies, subgraphs.h) go through steps 2, 4, 5 and
 * 7 with the main graph: their kernels are chosen and initialised after the
 * main graph's, inference descends into them before the node that owns
 * them, and their nodes are assigned and packed after the main graph's.
 * They are not folded or fused (a body's constant-only nodes are evaluated
 * when the body is planned).
 */
#include "session.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "api.h"
#include "backend.h"
#include "control_flow.h"
#include "cpu_features.h"
#include "error.h"
#include "kernel_host.h"
#include "log.h"
#include "node_eval.h"
#include "passes.h"
#include "size_math.h"
#include "str_util.h"

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
    qkv_subgraphs_destroy(s);
    if (s->model && s->model->graph)
        destroy_kernel_states(s->model->graph);
    qkv_model_destroy(s->model);
    qkv_registry_destroy(s->registry);
    /* plugins last: the kernel states above were freed by their code */
    qkv_backends_destroy(s->backends);
    pthread_mutex_destroy(&s->cache_lock);
    free(s);
}

const qkv_model *qkv_session_model(const qkv_session *s) { return s->model; }

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

/* Chooses a provisional kernel for every node; reports the first node
 * without one and how many others lack one too, so a user sees the whole gap
 * at once. */
static qkv_status resolve_kernels(qkv_session *s, const qkv_ir_graph *g, qkv_error *err)
{
    size_t missing = 0;
    const qkv_ir_node *first = NULL;
    char others[256] = "";
    for (size_t i = 0; i < g->n_nodes; i++) {
        qkv_ir_node *n = &g->nodes[i];
        n->kernel = qkv_backends_find_in_graph(s, g, n); /* provisional: see qkv_backends_assign */
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
                             "node '%s': no kernel for op %s (domain %s, opset %lld)", first->name,
                             first->op_type, domain, (long long)first->opset);
    return qkv_error_set(err, QKV_ERR_UNSUPPORTED,
                         "node '%s': no kernel for op %s (domain %s, opset %lld); %zu nodes in "
                         "all lack a kernel%s%s",
                         first->name, first->op_type, domain, (long long)first->opset, missing,
                         others[0] ? ", also: " : "", others);
}

static qkv_status init_kernels(qkv_ir_graph *g, qkv_error *err)
{
    for (size_t i = 0; i < g->n_nodes; i++) {
        qkv_status st = qkv_kernel_init_node(g->nodes[i].kernel, &g->nodes[i], g, err);
        if (st != QKV_OK)
            return st;
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

/* Step 5: brings the graph to a settled state after kernels were chosen or
 * a pass rewrote it: every value's type and static shape inferred, every
 * node on its backend (a node that moves is re-initialised and the graph
 * re-inferred, in qkv_backends_assign), constant subgraphs folded, and
 * shapes inferred again when folding made more of them known. */
static qkv_status settle_graph(qkv_session *s, qkv_error *err)
{
    qkv_ir_graph *g = s->model->graph;
    qkv_status st = qkv_infer_graph(g, err);
    if (st == QKV_OK)
        st = qkv_backends_assign(s, err);
    for (size_t i = 0; i < s->n_bodies && st == QKV_OK; i++)
        st = qkv_backends_assign_graph(s, s->bodies[i].g, err);
    size_t folded = 0;
    if (st == QKV_OK && !s->opts.disable_folding)
        st = qkv_fold_constants(g, &folded, err);
    s->n_folded += folded;
    if (st == QKV_OK && folded)
        st = qkv_infer_graph(g, err);
    return st;
}

/* The fusion passes of step 6, in order: Transposes that are views become
 * Reshapes first (that joins a MatMul to the Add behind such a Transpose);
 * attention next (it needs the shapes folding made known); GELU fusion
 * makes the Gelu nodes MatMul fusion takes in. The name is
 * qkv_session_fusion_count's key. */
static const struct fusion_pass {
    const char *name;
    qkv_status (*run)(qkv_ir_graph *g, const qkv_registry *reg, size_t *fused, qkv_error *err);
} fusion_passes[QKV_FUSION_PASSES] = {
    {"transpose_view", qkv_pass_transpose_view},
    {"attention", qkv_pass_fuse_attention},
    {"gelu", qkv_pass_fuse_gelu},
    {"matmul", qkv_pass_fuse_matmul},
};

static qkv_status run_fusion_passes(qkv_session *s, qkv_error *err)
{
    for (size_t i = 0; i < QKV_FUSION_PASSES; i++) {
        qkv_status st = fusion_passes[i].run(s->model->graph, s->registry, &s->n_fused[i], err);
        if (st == QKV_OK && s->n_fused[i])
            st = settle_graph(s, err);
        if (st != QKV_OK)
            return st;
    }
    return QKV_OK;
}

/* Step 1: opts (may be NULL) read as far as its struct_size covers. */
/* The caller's options, read only as far as its struct reaches (the rest
 * keeps the defaults); everything after this reads s->opts. */
static void copy_options(qkv_session *s, const qkv_session_options *opts)
{
    qkv_session_options_init(&s->opts);
    if (opts) {
        size_t n = opts->struct_size < sizeof s->opts ? opts->struct_size : sizeof s->opts;
        memcpy(&s->opts, opts, n);
        s->opts.struct_size = sizeof s->opts;
    }
    if (s->opts.threads == 0)
        s->opts.threads = 1;
}

/* Steps 2 and 4 for the subgraphs, after the main graph's: names, then
 * provisional kernels, initialised. */
static qkv_status setup_bodies(qkv_session *s, qkv_error *err)
{
    qkv_status st = qkv_subgraphs_collect(s, err);
    for (size_t i = 0; i < s->n_bodies && st == QKV_OK; i++) {
        qkv_ir_graph *b = s->bodies[i].g;
        st = name_unnamed_nodes(b, err);
        if (st == QKV_OK)
            st = resolve_kernels(s, b, err);
        if (st == QKV_OK)
            st = init_kernels(b, err);
    }
    return st;
}

/* Step 7 for the subgraphs: their packed weights count against the same
 * memory limit as the main graph's. */
static qkv_status prepack_bodies(qkv_session *s, qkv_error *err)
{
    size_t limit = s->opts.memory_limit;
    for (size_t i = 0; i < s->n_bodies; i++) {
        qkv_prepack_stats one = {0};
        size_t used = s->prepack.packed_bytes;
        size_t left = limit ? (used < limit ? limit - used : 1) : 0;
        qkv_status st = qkv_prepack_constants(s->bodies[i].g, left, &one, err);
        if (st != QKV_OK)
            return st;
        s->prepack.packed_bytes += one.packed_bytes;
        s->prepack.released_bytes += one.released_bytes;
    }
    return QKV_OK;
}

/* The runtime's own kernels: If, Loop and Scan run subgraphs in the run
 * context (exec/control_flow.h), so they are not in ops/. */
static qkv_status add_control_flow_kernels(qkv_session *s, qkv_error *err)
{
    size_t n = 0;
    const qkv_kernel *const *ks = qkv_control_flow_kernels(&n);
    for (size_t i = 0; i < n; i++) {
        qkv_status st = qkv_registry_add(s->registry, ks[i], "built-in", err);
        if (st != QKV_OK)
            return st;
    }
    return QKV_OK;
}

/* Steps 2-7 (see the top of this file); stops at the first error. */
static qkv_status build_steps(qkv_session *s, qkv_error *err)
{
    qkv_ir_graph *g = s->model->graph;
    s->registry = qkv_registry_create();
    if (!s->registry)
        return qkv_error_set(err, QKV_ERR_OUT_OF_MEMORY, "out of memory creating a session");
    qkv_status st = name_unnamed_nodes(g, err);
    if (st == QKV_OK)
        st = qkv_registry_add_builtins(s->registry, err);
    if (st == QKV_OK)
        st = add_control_flow_kernels(s, err);
    if (st == QKV_OK)
        st = qkv_backends_setup(s, &s->opts, err);
    if (st == QKV_OK)
        st = resolve_kernels(s, g, err);
    if (st == QKV_OK)
        st = init_kernels(g, err);
    if (st == QKV_OK)
        st = setup_bodies(s, err);
    if (st == QKV_OK)
        st = settle_graph(s, err);
    if (st == QKV_OK && !s->opts.disable_fusion)
        st = run_fusion_passes(s, err);
    if (st == QKV_OK)
        st = qkv_prepack_constants(g, s->opts.memory_limit, &s->prepack, err);
    if (st == QKV_OK)
        st = prepack_bodies(s, err);
    return st;
}

/* Takes model (destroyed on failure). *out is written only on success (qkv.h). */
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
    copy_options(s, opts);
    /* what plugins and kernels log while the session is built goes to its sink */
    qkv_log_scope scope;
    qkv_log_enter(&s->opts, &scope);
    qkv_status st = build_steps(s, err);
    qkv_log_leave(&scope);
    if (st != QKV_OK) {
        qkv_session_destroy(s);
        return st;
    }
    *out = s;
    return QKV_OK;
}

qkv_status qkv_session_create(const char *path, const qkv_session_options *opts, qkv_session **out,
                              qkv_error *err)
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

qkv_status qkv_session_check_inputs(const qkv_session *s, const qkv_tensor *inputs, size_t n_inputs,
                                    bool need_data, qkv_error *err)
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
        if (v->type_kind != QKV_KIND_TENSOR) {
            /* qkv_run_values checks the value and passes this placeholder */
            if (t->rank != 0 || t->data)
                return qkv_error_set(err, QKV_ERR_TYPE,
                                     "input %zu '%s' is a sequence or an optional: pass it with "
                                     "qkv_run_values",
                                     i, v->name);
            continue;
        }
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
            return qkv_error_set(err, QKV_ERR_SHAPE, "input %zu '%s': size overflows", i, v->name);
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

size_t qkv_session_fused_count(const qkv_session *s)
{
    return qkv_session_fusion_count(s, "attention");
}

size_t qkv_session_fusion_count(const qkv_session *s, const char *pass)
{
    for (size_t i = 0; s && pass && i < QKV_FUSION_PASSES; i++)
        if (strcmp(pass, fusion_passes[i].name) == 0)
            return s->n_fused[i];
    return 0;
}

size_t qkv_session_packed_bytes(const qkv_session *s, size_t *released_bytes)
{
    if (released_bytes)
        *released_bytes = s ? s->prepack.released_bytes : 0;
    return s ? s->prepack.packed_bytes : 0;
}

uint64_t qkv_cpu_features(void) { return qkv_cpu_features_get(); }

const char *qkv_cpu_isa_name(void) { return qkv_isa_name(qkv_cpu_isa()); }

const char *qkv_cpu_name(void) { return qkv_cpu_brand(); }

size_t qkv_cpu_features_string(uint64_t features, char *buf, size_t cap)
{
    char all[256]; /* every name of qkv_cpu_features_str fits */
    qkv_cpu_features_str(features, all, sizeof all);
    int n = snprintf(buf, cap, "%s", all);
    return n > 0 ? (size_t)n : 0;
}
