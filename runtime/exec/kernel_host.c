/*
 * kernel_host.c - the qkv_host_api table: attribute getters for init, error
 * reporting with the node's description, parallel_for, allocation, logging.
 */
#include "kernel_host.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cpu_features.h"
#include "error.h"
#include "gemm_portable.h"
#include "hugepages.h"
#include "log.h"
#include "size_math.h"
#include "threadpool.h"
#include "value_store.h"

void qkv_node_describe(const qkv_ir_node *node, int64_t version, char *buf, size_t cap)
{
    qkv_node_format(buf, cap, node->name, SIZE_MAX, node->domain, node->op_type, version);
}

static qkv_status report(const qkv_ir_node *node, int64_t version, qkv_error *err,
                         qkv_status status, const char *fmt, va_list ap)
{
    if (!err)
        return status;
    char what[256];
    char msg[QKV_ERROR_MESSAGE_BYTES];
    if (!node) /* a host context outside any node (a GEMM called from a test) */
        return qkv_error_setv(err, status, fmt, ap);
    qkv_node_describe(node, version, what, sizeof what);
    vsnprintf(msg, sizeof msg, fmt, ap);
    return qkv_error_set(err, status, "%s: %s", what, msg);
}

/* ---- node queries (init) ------------------------------------------------- */

static const char *node_name(const qkv_node_ctx *n) { return n->node->name; }
static const char *node_op_type(const qkv_node_ctx *n) { return n->node->op_type; }
static const char *node_domain(const qkv_node_ctx *n) { return n->node->domain; }
static int64_t node_opset(const qkv_node_ctx *n) { return n->node->opset; }
static size_t node_input_count(const qkv_node_ctx *n) { return n->node->n_inputs; }
static size_t node_output_count(const qkv_node_ctx *n) { return n->node->n_outputs; }

static int node_input_present(const qkv_node_ctx *n, size_t k)
{
    return k < n->node->n_inputs && n->node->inputs[k] >= 0;
}

static int node_output_present(const qkv_node_ctx *n, size_t k)
{
    return k < n->node->n_outputs && n->node->outputs[k] >= 0;
}

static qkv_status node_error(const qkv_node_ctx *n, qkv_status status, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    report(n->node, n->version, n->err, status, fmt, ap);
    va_end(ap);
    return status;
}

static const char *attr_type_name(qkv_attr_type t)
{
    static const char *const names[] = {
        "undefined",      "float",      "int",        "string",  "tensor", "graph",
        "floats",         "ints",       "strings",    "tensors", "graphs", "sparse_tensor",
        "sparse_tensors", "type_proto", "type_protos"};
    return (unsigned)t < sizeof names / sizeof names[0] ? names[t] : "unknown";
}

static qkv_attr_type attr_type(const qkv_node_ctx *n, const char *name)
{
    const qkv_ir_attr *a = qkv_node_attr(n->node, name);
    return a ? a->type : QKV_ATTR_UNDEFINED;
}

/* The attribute if present with type `want`; NULL if absent; an error if
 * present with another type. */
static qkv_status find_typed(const qkv_node_ctx *n, const char *name, qkv_attr_type want,
                             const qkv_ir_attr **out)
{
    const qkv_ir_attr *a = qkv_node_attr(n->node, name);
    *out = NULL;
    if (!a)
        return QKV_OK;
    if (a->type != want)
        return node_error(n, QKV_ERR_TYPE, "attribute '%s' is %s, expected %s", name,
                          attr_type_name(a->type), attr_type_name(want));
    *out = a;
    return QKV_OK;
}

static qkv_status attr_int(const qkv_node_ctx *n, const char *name, int64_t dflt, int64_t *out)
{
    const qkv_ir_attr *a;
    qkv_status st = find_typed(n, name, QKV_ATTR_INT, &a);
    if (st == QKV_OK)
        *out = a ? a->i : dflt;
    return st;
}

static qkv_status attr_float(const qkv_node_ctx *n, const char *name, float dflt, float *out)
{
    const qkv_ir_attr *a;
    qkv_status st = find_typed(n, name, QKV_ATTR_FLOAT, &a);
    if (st == QKV_OK)
        *out = a ? a->f : dflt;
    return st;
}

static qkv_status attr_string(const qkv_node_ctx *n, const char *name, const char *dflt,
                              const char **out)
{
    const qkv_ir_attr *a;
    qkv_status st = find_typed(n, name, QKV_ATTR_STRING, &a);
    if (st == QKV_OK)
        *out = a ? a->s : dflt;
    return st;
}

static qkv_status attr_ints(const qkv_node_ctx *n, const char *name, const int64_t **out,
                            size_t *count)
{
    const qkv_ir_attr *a = qkv_node_attr(n->node, name);
    /* a TYPE_PROTO attribute reads as {kind, element dtype} (qkv_plugin.h) */
    qkv_status st =
        a && a->type == QKV_ATTR_TYPE_PROTO ? QKV_OK : find_typed(n, name, QKV_ATTR_INTS, &a);
    *out = NULL;
    *count = 0;
    if (st == QKV_OK && a) {
        *out = a->ints;
        *count = a->n;
    }
    return st;
}

static qkv_status attr_floats(const qkv_node_ctx *n, const char *name, const float **out,
                              size_t *count)
{
    const qkv_ir_attr *a;
    qkv_status st = find_typed(n, name, QKV_ATTR_FLOATS, &a);
    if (st == QKV_OK) {
        *out = a ? a->floats : NULL;
        *count = a ? a->n : 0;
    }
    return st;
}

static qkv_status attr_strings(const qkv_node_ctx *n, const char *name, const char *const **out,
                               size_t *count)
{
    const qkv_ir_attr *a;
    qkv_status st = find_typed(n, name, QKV_ATTR_STRINGS, &a);
    if (st == QKV_OK) {
        *out = a ? (const char *const *)a->strings : NULL;
        *count = a ? a->n : 0;
    }
    return st;
}

static qkv_status attr_tensor(const qkv_node_ctx *n, const char *name, const qkv_tensor **out)
{
    const qkv_ir_attr *a;
    qkv_status st = find_typed(n, name, QKV_ATTR_TENSOR, &a);
    if (st == QKV_OK)
        *out = a ? &a->tensors[0] : NULL;
    return st;
}

/* The value of node input k, or NULL when absent or no graph is known. */
static const qkv_ir_value *input_value(const qkv_node_ctx *n, size_t k)
{
    if (!n->graph || k >= n->node->n_inputs || n->node->inputs[k] < 0)
        return NULL;
    return &n->graph->values[n->node->inputs[k]];
}

static qkv_dtype node_input_dtype(const qkv_node_ctx *n, size_t k)
{
    const qkv_ir_value *v = input_value(n, k);
    return v ? v->dtype : QKV_DTYPE_UNDEFINED;
}

static int32_t node_input_shape(const qkv_node_ctx *n, size_t k, int64_t *dims, size_t cap)
{
    const qkv_ir_value *v = input_value(n, k);
    if (!v || v->rank < 0)
        return -1;
    for (int32_t d = 0; d < v->rank && (size_t)d < cap && dims; d++)
        dims[d] = v->dims[d];
    return v->rank;
}

/* ---- prepack ---------------------------------------------------------------- */

static const qkv_tensor *node_input_const(const qkv_node_ctx *n, size_t k)
{
    const qkv_ir_value *v = n->packed_bytes ? input_value(n, k) : NULL;
    if (!v || v->kind != QKV_VALUE_CONSTANT || !v->data)
        return NULL;
    /* the node ctx is the caller's and lives through the prepack call */
    qkv_tensor *t = &((qkv_node_ctx *)n)->const_view;
    memset(t, 0, sizeof *t);
    t->dtype = v->dtype;
    t->rank = v->rank;
    for (int32_t d = 0; d < v->rank; d++)
        t->dims[d] = v->dims[d];
    t->data = v->data;
    t->data_bytes = v->data_bytes;
    return t;
}

static qkv_status node_input_packed(const qkv_node_ctx *n, size_t k, size_t packed_bytes)
{
    const qkv_ir_value *v = n->packed_bytes ? input_value(n, k) : NULL;
    if (!v || v->kind != QKV_VALUE_CONSTANT || k >= 64)
        return node_error(n, QKV_ERR_INVALID_ARGUMENT,
                          "node_input_packed: input %zu is not a constant (or not in prepack)", k);
    qkv_ir_node *node = (qkv_ir_node *)n->node; /* the session is being built */
    if (!(node->packed_inputs & ((uint64_t)1 << k))) {
        size_t total;
        if (n->memory_limit &&
            (qkv_add_overflow(*n->packed_bytes, packed_bytes, &total) || total > n->memory_limit))
            return node_error(n, QKV_ERR_OUT_OF_MEMORY,
                              "packing input %zu takes %zu bytes, which brings packed weights "
                              "over the session's memory limit of %zu bytes (%zu packed before)",
                              k, packed_bytes, n->memory_limit, *n->packed_bytes);
        *n->packed_bytes += packed_bytes;
    }
    node->packed_inputs |= (uint64_t)1 << k;
    return QKV_OK;
}

/* ---- infer/prepare/compute ------------------------------------------------ */

static qkv_status host_error(void *host_ctx, qkv_status status, const char *fmt, ...)
{
    qkv_host_ctx *h = host_ctx;
    va_list ap;
    va_start(ap, fmt);
    report(h->node, h->version, h->err, status, fmt, ap);
    va_end(ap);
    return status;
}

static void host_parallel_for(void *host_ctx, size_t n, qkv_range_fn fn, void *arg)
{
    qkv_host_ctx *h = host_ctx;
    qkv_threadpool_run(h ? h->pool : NULL, n, fn, arg);
}

static size_t host_thread_count(void *host_ctx)
{
    qkv_host_ctx *h = host_ctx;
    if (h && !h->pool && h->threads > 1)
        return h->threads;
    return qkv_threadpool_size(h ? h->pool : NULL);
}

static qkv_status host_output_alloc(qkv_kernel_io *io, size_t k, qkv_dtype dtype, int32_t rank,
                                    const int64_t *dims)
{
    qkv_host_ctx *h = io->host_ctx;
    if (k >= io->n_outputs)
        return host_error(h, QKV_ERR_INVALID_ARGUMENT, "output_alloc: output %zu of %zu", k,
                          io->n_outputs);
    if (h->node && (k >= h->node->n_outputs || h->node->outputs[k] < 0))
        return QKV_OK; /* the node omits this output: nothing to write */
    size_t elems = 0, bytes = 0;
    if (rank < 0 || rank > QKV_MAX_RANK || (rank > 0 && !dims))
        return host_error(h, QKV_ERR_SHAPE, "output %zu: rank %d (at most %d)", k, rank,
                          QKV_MAX_RANK);
    if (!qkv_shape_elements(dims, rank, &elems) || !qkv_dtype_storage_bytes(dtype, elems, &bytes))
        return host_error(h, QKV_ERR_SHAPE, "output %zu: a negative dim or a size overflow (%s)", k,
                          qkv_dtype_name(dtype));
    qkv_tensor *o = &io->outputs[k];
    if (o->data) {
        /* allocated by the host from infer's shape: it must agree */
        bool same = o->dtype == dtype && o->rank == rank;
        for (int32_t d = 0; same && d < rank; d++)
            same = o->dims[d] == dims[d];
        if (!same)
            return host_error(h, QKV_ERR_SHAPE,
                              "output %zu: output_alloc asks for another type or shape than "
                              "infer gave",
                              k);
        return QKV_OK;
    }
    if (h->memory_limited) {
        if (bytes > h->memory_left)
            return host_error(h, QKV_ERR_OUT_OF_MEMORY,
                              "output %zu needs %zu bytes, more than the %zu the session's "
                              "memory limit leaves",
                              k, bytes, h->memory_left);
        h->memory_left -= bytes;
    }
    /* calloc: string outputs start as NULL pointers (see qkv_node_eval) */
    void *data = calloc(1, bytes ? bytes : 1);
    if (!data)
        return host_error(h, QKV_ERR_OUT_OF_MEMORY, "output %zu of %zu bytes", k, bytes);
    o->dtype = dtype;
    o->rank = rank;
    for (int32_t d = 0; d < rank; d++)
        o->dims[d] = dims[d];
    o->data = data;
    o->data_bytes = bytes;
    return QKV_OK;
}

qkv_status qkv_host_gemm(qkv_host_ctx *h, const qkv_gemm *g)
{
    const qkv_host_api *host = qkv_host_api_get();
    if (!g || g->struct_size < offsetof(qkv_gemm, c_strides) + sizeof g->c_strides)
        return host_error(h, QKV_ERR_INVALID_ARGUMENT, "gemm: missing or too small description");
    if (g->dtype != QKV_DTYPE_FLOAT && g->dtype != QKV_DTYPE_DOUBLE)
        return host_error(h, QKV_ERR_TYPE, "gemm: %s is not supported (float and double are)",
                          qkv_dtype_name(g->dtype));
    /* a leading dimension matters only for a non-empty matrix */
    bool a_bad = g->m && g->k && g->lda < (g->trans_a ? g->m : g->k);
    bool b_bad = g->k && g->n && g->ldb < (g->trans_b ? g->k : g->n);
    bool c_bad = g->m && g->n && g->ldc < g->n;
    if (g->batch_rank < 0 || g->batch_rank > QKV_MAX_RANK || a_bad || b_bad || c_bad)
        return host_error(h, QKV_ERR_INVALID_ARGUMENT,
                          "gemm: inconsistent description (m=%zu n=%zu k=%zu lda=%zu ldb=%zu "
                          "ldc=%zu batch_rank=%d)",
                          g->m, g->n, g->k, g->lda, g->ldb, g->ldc, g->batch_rank);
    if (h->gemm && h->gemm->gemm) {
        qkv_status st = h->gemm->gemm(h->gemm->user, host, h, g);
        if (st != QKV_ERR_UNSUPPORTED)
            return st;
        qkv_error_clear(h->err); /* a provider that declines may have said why */
    }
    return qkv_gemm_portable(host, h, g);
}

static qkv_status host_gemm(void *host_ctx, const qkv_gemm *g)
{
    return qkv_host_gemm(host_ctx, g);
}

/* ---- per-plan state ---------------------------------------------------------- */

void qkv_plan_mem_free(qkv_plan_mem *m)
{
    if (!m)
        return;
    for (size_t i = 0; i < m->n; i++)
        free(m->blocks[i]);
    free(m->blocks);
    memset(m, 0, sizeof *m);
}

static qkv_status host_plan_alloc(qkv_kernel_io *io, size_t bytes, void **out)
{
    qkv_host_ctx *h = io ? io->host_ctx : NULL;
    if (out)
        *out = NULL;
    if (!h || !out || !h->plan_mem)
        return h ? host_error(h, QKV_ERR_INVALID_ARGUMENT,
                              "plan_alloc: only prepare may take per-plan memory")
                 : QKV_ERR_INVALID_ARGUMENT;
    qkv_plan_mem *m = h->plan_mem;
    size_t rounded = (bytes + 63) & ~(size_t)63;
    if (rounded < bytes)
        return host_error(h, QKV_ERR_OUT_OF_MEMORY, "plan_alloc: %zu bytes", bytes);
    if (m->n == m->cap) {
        size_t cap = m->cap ? m->cap * 2 : 4;
        void **grown = realloc(m->blocks, cap * sizeof *grown);
        if (!grown)
            return host_error(h, QKV_ERR_OUT_OF_MEMORY, "plan_alloc: %zu bytes", bytes);
        m->blocks = grown;
        m->cap = cap;
    }
    void *block = aligned_alloc(64, rounded ? rounded : 64);
    if (!block)
        return host_error(h, QKV_ERR_OUT_OF_MEMORY, "plan_alloc: %zu bytes", bytes);
    memset(block, 0, rounded ? rounded : 64);
    m->blocks[m->n++] = block;
    m->bytes += bytes;
    *out = block;
    return QKV_OK;
}

/* ---- services --------------------------------------------------------------- */

/* Large blocks are packed weights, written whole once at session creation:
 * their pages are faulted in with one call. Not huge pages: GEMMs reading
 * packed weights from them ran with unsteady times (runtime/hugepages.c). */
static void *host_alloc(size_t bytes)
{
    void *p = malloc(bytes ? bytes : 1);
    qkv_prefault_pages(p, bytes);
    return p;
}
static void host_free(void *p) { free(p); }

static void host_log(int level, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    qkv_log_vmessage(level, fmt, ap);
    va_end(ap);
}

static const qkv_host_api host_api = {
    .struct_size = sizeof(qkv_host_api),
    .abi_version = QKV_ABI_VERSION,
    .node_name = node_name,
    .node_op_type = node_op_type,
    .node_domain = node_domain,
    .node_opset = node_opset,
    .node_input_count = node_input_count,
    .node_output_count = node_output_count,
    .node_input_present = node_input_present,
    .node_output_present = node_output_present,
    .attr_type = attr_type,
    .attr_int = attr_int,
    .attr_float = attr_float,
    .attr_string = attr_string,
    .attr_ints = attr_ints,
    .attr_floats = attr_floats,
    .attr_strings = attr_strings,
    .attr_tensor = attr_tensor,
    .node_error = node_error,
    .node_input_dtype = node_input_dtype,
    .node_input_shape = node_input_shape,
    .error = host_error,
    .parallel_for = host_parallel_for,
    .thread_count = host_thread_count,
    .output_alloc = host_output_alloc,
    .gemm = host_gemm,
    .alloc = host_alloc,
    .free = host_free,
    .log = host_log,
    .dtype_name = qkv_dtype_name,
    .cpu_features = qkv_cpu_features_get,
    .node_input_const = node_input_const,
    .node_input_packed = node_input_packed,
    .plan_alloc = host_plan_alloc,
    .value_length = qkv_host_value_length,
    .value_has_element = qkv_host_value_has_element,
    .value_element = qkv_host_value_element,
    .value_append = qkv_host_value_append,
    .value_set_has_element = qkv_host_value_set_has_element,
};

const qkv_host_api *qkv_host_api_get(void) { return &host_api; }

void *qkv_empty_data(void)
{
    /* 64 bytes, so a kernel's aligned vector load of "nothing" stays inside */
    static _Alignas(64) unsigned char empty[64];
    return empty;
}

bool qkv_tensor_known_empty(const qkv_tensor *t)
{
    if (t->rank < 0 || t->rank > QKV_MAX_RANK)
        return false;
    bool zero = false;
    for (int32_t d = 0; d < t->rank; d++) {
        if (t->dims[d] < 0)
            return false;
        zero = zero || t->dims[d] == 0;
    }
    return zero;
}

void qkv_tensor_bind_empty(qkv_tensor *t)
{
    if (!t->data && qkv_tensor_known_empty(t))
        t->data = qkv_empty_data();
}

void qkv_kernel_io_init(qkv_kernel_io *io, qkv_host_ctx *hctx, const qkv_tensor *inputs,
                        size_t n_inputs, qkv_tensor *outputs, size_t n_outputs)
{
    memset(io, 0, sizeof *io);
    io->struct_size = sizeof *io;
    io->abi_version = QKV_ABI_VERSION;
    io->host = &host_api;
    io->host_ctx = hctx;
    io->inputs = inputs;
    io->n_inputs = n_inputs;
    io->outputs = outputs;
    io->n_outputs = n_outputs;
    io->input_kinds = hctx ? hctx->in_kinds : NULL;
    io->output_kinds = hctx ? hctx->out_kinds : NULL;
}

bool qkv_node_kinds(const qkv_ir_graph *g, const qkv_ir_node *n, qkv_type_kind *in_kinds,
                    qkv_type_kind *out_kinds)
{
    bool any = false;
    for (size_t i = 0; i < n->n_inputs; i++) {
        in_kinds[i] = n->inputs[i] >= 0 ? g->values[n->inputs[i]].type_kind : QKV_KIND_TENSOR;
        any = any || in_kinds[i] != QKV_KIND_TENSOR;
    }
    for (size_t j = 0; j < n->n_outputs; j++) {
        out_kinds[j] = n->outputs[j] >= 0 ? g->values[n->outputs[j]].type_kind : QKV_KIND_TENSOR;
        any = any || out_kinds[j] != QKV_KIND_TENSOR;
    }
    return any;
}

bool qkv_node_host_alias(const qkv_ir_node *n, const qkv_type_kind *in_kinds)
{
    const qkv_kernel *k = n->kernel;
    /* one input, one output: Identity (a Reshape-like op of a sequence is
     * a type error, reported by the infer pass) */
    return k && !(k->flags & QKV_KERNEL_VALUES) && (k->flags & QKV_KERNEL_ALIAS) &&
           n->n_inputs == 1 && n->n_outputs == 1 && in_kinds[0] != QKV_KIND_TENSOR;
}
