/*
 * control_seqmap.c - SequenceMap (opset 17): runs the body once per element
 * of a sequence and collects its outputs into sequences.
 *
 *   inputs:  input_sequence (a sequence of length n), then additional
 *            inputs, each a sequence of length n or a tensor
 *   body:    (element i of input_sequence, for each additional input its
 *            element i or the tensor itself) -> (K tensors)
 *   outputs: K sequences; element i of output k is the body's output k of
 *            iteration i.
 *
 * Iterations run in order (the spec allows any). Element shapes may differ
 * from one iteration to the next: the body's plan cache holds one plan per
 * shape. An empty input_sequence gives empty output sequences whose element
 * type is the body outputs' inferred one.
 *
 * Deviations: optional additional inputs, sequence body inputs or outputs,
 * and bodies reading a sequence or optional of an enclosing graph are
 * refused at session creation: only tensors cross a body's boundary
 * (frame.h, qkv_body_run).
 *
 * Memory: the body's inputs live in one work buffer of the body's frame;
 * each output element is copied into its output sequence by
 * host->value_append, which allocates (a sequence's elements are known only
 * when it is built: docs/architecture.md, "Sequences and optionals").
 */
#include <stdlib.h>

#include "control_flow.h"
#include "value_store.h" /* qkv_kind_name */

/* Work buffer slots in the body's frame. */
enum { SLOT_TENSORS = 0 };

typedef struct seqmap_state {
    const qkv_ir_graph *body;
    size_t n_in;  /* the node's inputs = the body's inputs */
    size_t n_out; /* the node's outputs = the body's outputs */
} seqmap_state;

static qkv_status seqmap_init(const qkv_kernel *kernel, const qkv_host_api *host,
                              const qkv_node_ctx *node, void **state)
{
    (void)kernel;
    const qkv_ir_graph *body;
    qkv_status s = qkv_cf_graph_attr(node, "body", &body);
    if (s != QKV_OK)
        return s;
    size_t n_in = host->node_input_count(node), n_out = host->node_output_count(node);
    if (body->n_inputs != n_in || body->n_outputs != n_out)
        return host->node_error(node, QKV_ERR_INVALID_MODEL,
                                "the body has %zu inputs and %zu outputs, expected %zu and %zu "
                                "(one per input and output of the node)",
                                body->n_inputs, body->n_outputs, n_in, n_out);
    seqmap_state *st = calloc(1, sizeof *st);
    if (!st)
        return host->node_error(node, QKV_ERR_OUT_OF_MEMORY, "out of memory");
    st->body = body;
    st->n_in = n_in;
    st->n_out = n_out;
    *state = st;
    return QKV_OK;
}

static void seqmap_destroy(void *state) { free(state); }

/* The kind of input k (a tensor when the host gives no kinds). */
static qkv_type_kind input_kind(const qkv_kernel_io *io, size_t k)
{
    return io->input_kinds ? io->input_kinds[k] : QKV_KIND_TENSOR;
}

/* The name of the node's input k, for messages. */
static const char *input_name(qkv_kernel_io *io, size_t k)
{
    const qkv_host_ctx *h = qkv_cf_host(io);
    if (!h->frame || k >= h->node->n_inputs || h->node->inputs[k] < 0)
        return "";
    return h->frame->g->values[h->node->inputs[k]].name;
}

/* ---- inference --------------------------------------------------------------- */

/* Only tensors cross the body's boundary: its declared inputs and outputs,
 * and what it reads from enclosing graphs. */
static qkv_status check_body_kinds(const qkv_ir_graph *b, qkv_kernel_io *io)
{
    for (size_t v = 0; v < b->n_values; v++) {
        const qkv_ir_value *val = &b->values[v];
        const char *role = val->kind == QKV_VALUE_OUTER ? "reads" : NULL;
        for (size_t i = 0; !role && i < b->n_inputs; i++)
            role = b->inputs[i] == (int32_t)v ? "has an input" : NULL;
        for (size_t k = 0; !role && k < b->n_outputs; k++)
            role = b->outputs[k] == (int32_t)v ? "has an output" : NULL;
        if (role && val->type_kind != QKV_KIND_TENSOR)
            return io->host->error(io->host_ctx, QKV_ERR_UNSUPPORTED,
                                   "the body %s '%s', a %s; only tensors cross a subgraph's "
                                   "boundary",
                                   role, val->name, qkv_kind_name(val->type_kind));
    }
    return QKV_OK;
}

static qkv_status seqmap_infer(void *state, qkv_kernel_io *io)
{
    const seqmap_state *st = state;
    const qkv_ir_graph *b = st->body;
    if (input_kind(io, 0) != QKV_KIND_SEQUENCE)
        return io->host->error(io->host_ctx, QKV_ERR_TYPE, "input 0 is a %s, expected a sequence",
                               qkv_kind_name(input_kind(io, 0)));
    const qkv_ir_node *n = qkv_cf_host(io)->node;
    for (size_t j = 0; j < st->n_in; j++) {
        qkv_type_kind kind = input_kind(io, j);
        if (n->inputs[j] < 0)
            return io->host->error(io->host_ctx, QKV_ERR_INVALID_MODEL,
                                   "input %zu is omitted; the body needs a value for it", j);
        if (kind != QKV_KIND_TENSOR && kind != QKV_KIND_SEQUENCE)
            return io->host->error(io->host_ctx, QKV_ERR_UNSUPPORTED,
                                   "input %zu is an %s, expected a sequence or a tensor", j,
                                   qkv_kind_name(kind));
        const qkv_ir_value *bv = &b->values[b->inputs[j]];
        qkv_dtype given = io->inputs[j].dtype;
        if (bv->dtype != QKV_DTYPE_UNDEFINED && given != QKV_DTYPE_UNDEFINED && given != bv->dtype)
            return io->host->error(io->host_ctx, QKV_ERR_TYPE,
                                   "input %zu holds %s, the body's input %zu '%s' is %s", j,
                                   qkv_dtype_name(given), j, bv->name, qkv_dtype_name(bv->dtype));
    }
    qkv_status s = check_body_kinds(b, io);
    if (s != QKV_OK)
        return s;
    if (!io->output_kinds)
        return io->host->error(io->host_ctx, QKV_ERR_INTERNAL, "the host gives no output kinds");
    for (size_t k = 0; k < st->n_out; k++) {
        qkv_tensor each;
        qkv_cf_static_type(b, b->outputs[k], &each);
        io->output_kinds[k] = QKV_KIND_SEQUENCE;
        io->outputs[k].dtype = each.dtype;
        io->outputs[k].rank = -1; /* a sequence: only the element type */
    }
    return QKV_OK;
}

/* ---- compute ------------------------------------------------------------------- */

/* *len gets input 0's length; every other sequence input must have it. */
static qkv_status common_length(qkv_kernel_io *io, size_t n_in, size_t *len)
{
    qkv_status s = io->host->value_length(io, 0, len);
    for (size_t j = 1; j < n_in && s == QKV_OK; j++) {
        size_t lj = 0;
        if (input_kind(io, j) != QKV_KIND_SEQUENCE)
            continue;
        s = io->host->value_length(io, j, &lj);
        if (s == QKV_OK && lj != *len)
            return io->host->error(io->host_ctx, QKV_ERR_SHAPE,
                                   "input %zu '%s' has %zu elements, input 0 '%s' has %zu: the "
                                   "sequences' lengths differ",
                                   j, input_name(io, j), lj, input_name(io, 0), *len);
    }
    return s;
}

static qkv_status seqmap_compute(const void *state, qkv_kernel_io *io)
{
    const seqmap_state *st = state;
    size_t len = 0;
    qkv_status s = common_length(io, st->n_in, &len);
    void *work = NULL;
    if (s == QKV_OK)
        s = qkv_body_work(qkv_cf_host(io), st->body, SLOT_TENSORS, st->n_in * sizeof(qkv_tensor),
                          &work);
    if (s != QKV_OK)
        return s;
    qkv_tensor *in = work; /* (n_in) the body's inputs of this iteration */
    for (size_t j = 0; j < st->n_in; j++)
        in[j] = io->inputs[j]; /* tensors: the same every iteration */
    for (size_t i = 0; i < len; i++) {
        for (size_t j = 0; j < st->n_in && s == QKV_OK; j++)
            if (input_kind(io, j) == QKV_KIND_SEQUENCE)
                s = io->host->value_element(io, j, i, &in[j]);
        const qkv_tensor *outs = NULL;
        if (s == QKV_OK)
            s = qkv_body_run(qkv_cf_host(io), st->body, in, st->n_in, &outs);
        for (size_t k = 0; k < st->n_out && s == QKV_OK; k++)
            s = io->host->value_append(io, k, outs[k].dtype, outs[k].rank, outs[k].dims,
                                       outs[k].data, NULL);
        if (s != QKV_OK)
            return s;
    }
    return QKV_OK;
}

const qkv_kernel qkv_cf_seqmap_kernel = {
    .struct_size = sizeof(qkv_kernel),
    .abi_version = QKV_ABI_VERSION,
    .domain = "",
    .op_type = "SequenceMap",
    .since_version = 17,
    .until_version = 0,
    .min_inputs = 1,
    .max_inputs = -1,
    .min_outputs = 1,
    .max_outputs = -1,
    .flags = QKV_KERNEL_VALUES,
    .init = seqmap_init,
    .infer = seqmap_infer,
    .compute = seqmap_compute,
    .destroy = seqmap_destroy,
};
