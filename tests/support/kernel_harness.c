/* kernel_harness.c - see kernel_harness.h. */
#include "kernel_harness.h"

#include <stdlib.h>
#include <string.h>

#include "error.h"
#include "ir.h"
#include "kernel_host.h"
#include "node_eval.h"
#include "registry.h"
#include "size_math.h"
#include "str_util.h"
#include "threadpool.h"

struct kh_node {
    qkv_ir_node node;
    size_t cap_attrs;
    int hide_values;
    size_t threads;
};

kh_node *kh_node_create_in(const char *domain, const char *op_type, int64_t opset, size_t n_inputs,
                           size_t n_outputs)
{
    kh_node *n = calloc(1, sizeof *n);
    n->node.name = qkv_strdup("test_node");
    n->node.op_type = qkv_strdup(op_type);
    n->node.domain = qkv_strdup(domain);
    n->node.opset = opset;
    n->node.n_inputs = n_inputs;
    n->node.inputs = calloc(n_inputs + 1, sizeof(int32_t));
    for (size_t i = 0; i < n_inputs; i++)
        n->node.inputs[i] = (int32_t)i;
    n->node.n_outputs = n_outputs;
    n->node.outputs = calloc(n_outputs + 1, sizeof(int32_t));
    for (size_t i = 0; i < n_outputs; i++)
        n->node.outputs[i] = (int32_t)(n_inputs + i);
    n->threads = 1;
    return n;
}

kh_node *kh_node_create(const char *op_type, int64_t opset, size_t n_inputs, size_t n_outputs)
{
    return kh_node_create_in("", op_type, opset, n_inputs, n_outputs);
}

void kh_node_destroy(kh_node *n)
{
    if (!n)
        return;
    for (size_t i = 0; i < n->node.n_attrs; i++) {
        qkv_ir_attr *a = &n->node.attrs[i];
        free(a->name);
        free(a->s);
        free(a->ints);
        free(a->floats);
        for (size_t k = 0; a->strings && k < a->n; k++)
            free(a->strings[k]);
        free(a->strings);
        if (a->tensors)
            free(a->tensors[0].data);
        free(a->tensors);
    }
    free(n->node.attrs);
    free(n->node.name);
    free(n->node.op_type);
    free(n->node.domain);
    free(n->node.inputs);
    free(n->node.outputs);
    free(n);
}

static qkv_ir_attr *add_attr(kh_node *n, const char *name, qkv_attr_type type)
{
    if (n->node.n_attrs == n->cap_attrs) {
        n->cap_attrs = n->cap_attrs ? n->cap_attrs * 2 : 4;
        n->node.attrs = realloc(n->node.attrs, n->cap_attrs * sizeof *n->node.attrs);
    }
    qkv_ir_attr *a = &n->node.attrs[n->node.n_attrs++];
    memset(a, 0, sizeof *a);
    a->name = qkv_strdup(name);
    a->type = type;
    return a;
}

void kh_attr_int(kh_node *n, const char *name, int64_t v)
{
    add_attr(n, name, QKV_ATTR_INT)->i = v;
}
void kh_attr_float(kh_node *n, const char *name, float v)
{
    add_attr(n, name, QKV_ATTR_FLOAT)->f = v;
}

void kh_attr_string(kh_node *n, const char *name, const char *v)
{
    qkv_ir_attr *a = add_attr(n, name, QKV_ATTR_STRING);
    a->s = qkv_strdup(v);
    a->s_len = strlen(v);
}

void kh_attr_ints(kh_node *n, const char *name, const int64_t *v, size_t count)
{
    qkv_ir_attr *a = add_attr(n, name, QKV_ATTR_INTS);
    a->n = count;
    a->ints = malloc((count + 1) * sizeof *v);
    if (count)
        memcpy(a->ints, v, count * sizeof *v);
}

void kh_attr_floats(kh_node *n, const char *name, const float *v, size_t count)
{
    qkv_ir_attr *a = add_attr(n, name, QKV_ATTR_FLOATS);
    a->n = count;
    a->floats = malloc((count + 1) * sizeof *v);
    if (count)
        memcpy(a->floats, v, count * sizeof *v);
}

void kh_attr_strings(kh_node *n, const char *name, const char *const *v, size_t count)
{
    qkv_ir_attr *a = add_attr(n, name, QKV_ATTR_STRINGS);
    a->n = count;
    a->strings = calloc(count + 1, sizeof *a->strings);
    for (size_t k = 0; k < count; k++)
        a->strings[k] = qkv_strdup(v[k]);
}

void kh_attr_tensor(kh_node *n, const char *name, const qkv_tensor *t)
{
    qkv_ir_attr *a = add_attr(n, name, QKV_ATTR_TENSOR);
    a->n = 1;
    a->tensors = calloc(1, sizeof *a->tensors);
    a->tensors[0] = *t;
    a->tensors[0].data = malloc(t->data_bytes ? t->data_bytes : 1);
    memcpy(a->tensors[0].data, t->data, t->data_bytes);
}

void kh_omit_input(kh_node *n, size_t k)
{
    if (k < n->node.n_inputs)
        n->node.inputs[k] = -1;
}

void kh_hide_input_values(kh_node *n) { n->hide_values = 1; }
void kh_set_threads(kh_node *n, size_t threads) { n->threads = threads; }

/* One run of a node's kernel: everything kh_run, kh_infer and kh_run_inplace
 * set up before the kernel's phases and tear down after. */
typedef struct kh_exec {
    qkv_registry *reg;
    const qkv_kernel *k;
    void *state; /* the kernel's, from init */
    qkv_threadpool *pool;
    qkv_tensor *ins; /* (n_inputs + 1) inputs as the kernel sees them */
    qkv_host_ctx hctx;
} kh_exec;

/* Frees what exec_begin built (any part of it; x zeroed first). */
static void exec_end(kh_exec *x)
{
    if (x->k && x->k->destroy && x->state)
        x->k->destroy(x->state);
    qkv_threadpool_destroy(x->pool);
    free(x->ins);
    qkv_registry_destroy(x->reg);
}

/* Finds the node's built-in kernel, lays out its inputs (omitted slots
 * UNDEFINED with rank -1), runs init and then checks the inputs against the
 * declaration, in the session's order (init_kernels, then settle_graph's
 * inference: a kernel's own message for an omitted input is the one a
 * session reports). On failure the status and message are the failing
 * step's; call exec_end in either case. */
static qkv_status exec_begin(kh_node *n, const qkv_tensor *inputs, kh_exec *x, qkv_error *err)
{
    memset(x, 0, sizeof *x);
    qkv_error_clear(err);
    x->reg = qkv_registry_create();
    qkv_status st = qkv_registry_add_builtins(x->reg, err);
    if (st != QKV_OK)
        return st;
    x->k = qkv_registry_find(x->reg, n->node.domain, n->node.op_type, n->node.opset, NULL);
    if (!x->k)
        return qkv_error_set(err, QKV_ERR_UNSUPPORTED, "no kernel for %s-%lld", n->node.op_type,
                             (long long)n->node.opset);
    size_t n_in = n->node.n_inputs;
    x->ins = calloc(n_in + 1, sizeof *x->ins);
    for (size_t i = 0; i < n_in; i++) {
        if (n->node.inputs[i] < 0) {
            x->ins[i].dtype = QKV_DTYPE_UNDEFINED;
            x->ins[i].rank = -1;
        } else {
            x->ins[i] = inputs[i];
        }
    }
    x->pool = qkv_threadpool_create(n->threads);
    x->hctx = (qkv_host_ctx){
        .node = &n->node, .version = x->k->since_version, .err = err, .pool = x->pool};
    if (x->k->init) {
        qkv_node_ctx nctx = {.node = &n->node, .version = x->k->since_version, .err = err};
        st = x->k->init(x->k, qkv_host_api_get(), &nctx, &x->state);
    }
    if (st == QKV_OK)
        st = qkv_kernel_check_io(x->k, &n->node, x->ins, err);
    return st;
}

qkv_status kh_run(kh_node *n, const qkv_tensor *inputs, qkv_tensor *outputs, qkv_error *err)
{
    kh_exec x;
    qkv_status st = exec_begin(n, inputs, &x, err);
    size_t n_in = n->node.n_inputs, n_out = n->node.n_outputs;
    if (st == QKV_OK && n->hide_values) {
        /* first as at session creation / planning: values of runtime inputs unknown */
        qkv_tensor *shape_ins = calloc(n_in + 1, sizeof *shape_ins);
        for (size_t i = 0; i < n_in; i++) {
            shape_ins[i] = x.ins[i];
            shape_ins[i].data = NULL;
        }
        st = qkv_kernel_infer(x.k, x.state, &x.hctx, shape_ins, n_in, outputs, n_out);
        free(shape_ins);
    }
    if (st == QKV_OK)
        st = qkv_node_eval(x.k, x.state, &x.hctx, x.ins, n_in, outputs, n_out);
    exec_end(&x);
    return st;
}

qkv_status kh_infer(kh_node *n, const qkv_tensor *inputs, qkv_tensor *outputs, qkv_error *err)
{
    kh_exec x;
    qkv_status st = exec_begin(n, inputs, &x, err);
    if (st == QKV_OK)
        st = qkv_kernel_infer(x.k, x.state, &x.hctx, x.ins, n->node.n_inputs, outputs,
                              n->node.n_outputs);
    exec_end(&x);
    return st;
}

qkv_status kh_run_inplace(kh_node *n, size_t alias, const qkv_tensor *inputs, qkv_tensor *output,
                          qkv_error *err)
{
    kh_exec x;
    qkv_status st = exec_begin(n, inputs, &x, err);
    size_t n_in = n->node.n_inputs;
    if (st == QKV_OK && (!(x.k->flags & QKV_KERNEL_INPLACE) || alias >= n_in ||
                         x.k->inplace_input != (int32_t)alias || n->node.n_outputs != 1))
        st = qkv_error_set(err, QKV_ERR_INVALID_ARGUMENT,
                           "%s-%lld declares no in-place output over input %zu", n->node.op_type,
                           (long long)x.k->since_version, alias);
    if (st == QKV_OK)
        st = qkv_kernel_infer(x.k, x.state, &x.hctx, x.ins, n_in, output, 1);
    size_t elems, bytes;
    if (st == QKV_OK && !(qkv_shape_elements(output->dims, output->rank, &elems) &&
                          qkv_dtype_storage_bytes(output->dtype, elems, &bytes) &&
                          bytes == x.ins[alias].data_bytes))
        st = qkv_error_set(err, QKV_ERR_SHAPE,
                           "%s: output 0 does not fit input %zu's %zu bytes exactly",
                           n->node.op_type, alias, x.ins[alias].data_bytes);
    void *scratch = NULL;
    qkv_plan_mem plan_mem = {0};
    if (st == QKV_OK) {
        /* as the planner does: the output is the input's buffer */
        output->data = x.ins[alias].data;
        output->data_bytes = x.ins[alias].data_bytes;
        qkv_kernel_io io;
        qkv_kernel_io_init(&io, &x.hctx, x.ins, n_in, output, 1);
        x.hctx.plan_mem = &plan_mem; /* as the planner: prepare only */
        if (x.k->prepare)
            st = x.k->prepare(x.state, &io);
        x.hctx.plan_mem = NULL;
        if (st == QKV_OK && io.scratch_bytes) {
            /* as qkv_node_eval: 64-byte aligned, as the ABI promises */
            scratch = aligned_alloc(64, (io.scratch_bytes + 63) / 64 * 64);
            io.scratch = scratch;
            if (!scratch)
                st = qkv_error_set(err, QKV_ERR_OUT_OF_MEMORY, "scratch of %zu bytes",
                                   io.scratch_bytes);
        }
        if (st == QKV_OK)
            st = x.k->compute(x.state, &io);
    }
    free(scratch);
    qkv_plan_mem_free(&plan_mem);
    exec_end(&x);
    return st;
}

void kh_free_outputs(qkv_tensor *outputs, size_t n)
{
    for (size_t i = 0; i < n; i++)
        qkv_tensor_data_free(&outputs[i]);
}

qkv_tensor kh_tensor(qkv_dtype dtype, int32_t rank, const int64_t *dims, void *data)
{
    qkv_tensor t;
    memset(&t, 0, sizeof t);
    t.dtype = dtype;
    t.rank = rank;
    for (int32_t k = 0; k < rank; k++)
        t.dims[k] = dims[k];
    t.data = data;
    size_t elems = 1;
    qkv_shape_elements(t.dims, rank, &elems);
    qkv_dtype_storage_bytes(dtype, elems, &t.data_bytes);
    return t;
}

qkv_tensor kh_f32(int32_t rank, const int64_t *dims, float *data)
{
    return kh_tensor(QKV_DTYPE_FLOAT, rank, dims, data);
}

qkv_tensor kh_i64(int32_t rank, const int64_t *dims, int64_t *data)
{
    return kh_tensor(QKV_DTYPE_INT64, rank, dims, data);
}

size_t kh_broadcast_index(size_t i, const qkv_tensor *out, const qkv_tensor *in)
{
    size_t idx = 0, stride = 1;
    for (int32_t k = out->rank - 1, ki = in->rank - 1; k >= 0; k--, ki--) {
        size_t d = (size_t)out->dims[k], c = i % d;
        i /= d;
        if (ki >= 0) {
            if (in->dims[ki] != 1)
                idx += c * stride;
            stride *= (size_t)in->dims[ki];
        }
    }
    return idx;
}

void kh_fill_random(float *buf, size_t n, uint32_t seed)
{
    uint32_t s = seed ? seed : 1;
    for (size_t i = 0; i < n; i++) {
        s ^= s << 13;
        s ^= s >> 17;
        s ^= s << 5;
        buf[i] = (float)((double)s / 2147483648.0 - 1.0);
    }
}
