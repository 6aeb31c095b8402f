/*
 * control_if.c - If (opsets 1, 11, 13, 16, 19): runs then_branch or
 * else_branch by a one-element bool condition.
 *
 * The branches take no inputs and read what they need from enclosing
 * graphs. Their outputs may differ in shape (not in type): the node's
 * output shape is static only where both branches agree, else the node is
 * dynamic and compute gives each output the taken branch's shape.
 *
 * Sequence and optional outputs (If-13's sequences, If-16's optionals):
 * the branches may give the same kind, or one the optional of the other's
 * (then the output is that optional). The taken branch's value moves from
 * its frame into the node's output (control_values.c); branches read
 * enclosing sequences and optionals without a copy (frame.h).
 */
#include <stdlib.h>
#include <string.h>

#include "control_flow.h"
#include "value_store.h"

typedef struct if_state {
    const qkv_ir_graph *branch[2]; /* else, then */
} if_state;

static qkv_status if_init(const qkv_kernel *kernel, const qkv_host_api *host,
                          const qkv_node_ctx *node, void **state)
{
    (void)kernel;
    if_state *st = calloc(1, sizeof *st);
    if (!st)
        return host->node_error(node, QKV_ERR_OUT_OF_MEMORY, "out of memory");
    qkv_status s = qkv_cf_graph_attr(node, "then_branch", &st->branch[1]);
    if (s == QKV_OK)
        s = qkv_cf_graph_attr(node, "else_branch", &st->branch[0]);
    size_t n_out = host->node_output_count(node);
    for (int b = 1; b >= 0 && s == QKV_OK; b--) {
        const qkv_ir_graph *g = st->branch[b];
        const char *name = b ? "then_branch" : "else_branch";
        if (g->n_outputs != n_out)
            s = host->node_error(node, QKV_ERR_INVALID_MODEL,
                                 "%s has %zu outputs, the node has %zu", name, g->n_outputs, n_out);
        else if (g->n_inputs != 0)
            s = host->node_error(node, QKV_ERR_INVALID_MODEL, "%s has %zu inputs, expected none",
                                 name, g->n_inputs);
    }
    if (s != QKV_OK) {
        free(st);
        return s;
    }
    *state = st;
    return QKV_OK;
}

/* The taken branch when cond is known now (a constant), else -1. */
static int known_branch(const qkv_tensor *cond)
{
    size_t elems = 1;
    for (int32_t d = 0; d < cond->rank; d++)
        elems *= cond->dims[d] < 0 ? 0 : (size_t)cond->dims[d];
    if (!cond->data || cond->dtype != QKV_DTYPE_BOOL || cond->rank < 0 || elems != 1)
        return -1;
    return *(const unsigned char *)cond->data != 0;
}

/* The kind of output k: the branches' kind, or the optional one when one
 * branch gives the optional of the other's kind. */
static qkv_status output_kind(qkv_kernel_io *io, const if_state *st, size_t k, qkv_type_kind *out)
{
    qkv_type_kind then_kind = qkv_cf_body_output_kind(st->branch[1], k);
    qkv_type_kind else_kind = qkv_cf_body_output_kind(st->branch[0], k);
    *out = then_kind | else_kind;
    if (!qkv_kind_converts(then_kind, else_kind))
        return io->host->error(io->host_ctx, QKV_ERR_TYPE,
                               "output %zu: then_branch gives a %s, else_branch gives a %s", k,
                               qkv_kind_name(then_kind), qkv_kind_name(else_kind));
    if (io->output_kinds)
        io->output_kinds[k] = *out;
    return QKV_OK;
}

static qkv_status if_infer(void *state, qkv_kernel_io *io)
{
    const if_state *st = state;
    const qkv_tensor *cond = &io->inputs[0];
    if (cond->dtype != QKV_DTYPE_UNDEFINED && cond->dtype != QKV_DTYPE_BOOL)
        return io->host->error(io->host_ctx, QKV_ERR_TYPE, "cond is %s, expected bool",
                               qkv_dtype_name(cond->dtype));
    for (int32_t d = 0; d < cond->rank; d++)
        if (cond->dims[d] > 1)
            return io->host->error(io->host_ctx, QKV_ERR_SHAPE,
                                   "cond must have one element, its dim %d is %lld", d,
                                   (long long)cond->dims[d]);
    int taken = known_branch(cond);
    for (size_t k = 0; k < io->n_outputs; k++) {
        qkv_type_kind kind;
        qkv_status s = output_kind(io, st, k, &kind);
        if (s != QKV_OK)
            return s;
        qkv_tensor t[2];
        for (int b = 0; b < 2; b++)
            qkv_cf_static_type(st->branch[b], st->branch[b]->outputs[k], &t[b]);
        if (t[0].dtype != QKV_DTYPE_UNDEFINED && t[1].dtype != QKV_DTYPE_UNDEFINED &&
            t[0].dtype != t[1].dtype)
            return io->host->error(io->host_ctx, QKV_ERR_TYPE,
                                   "output %zu: then_branch gives %s, else_branch gives %s", k,
                                   qkv_dtype_name(t[1].dtype), qkv_dtype_name(t[0].dtype));
        qkv_tensor *o = &io->outputs[k];
        o->dtype = t[1].dtype != QKV_DTYPE_UNDEFINED ? t[1].dtype : t[0].dtype;
        if (kind != QKV_KIND_TENSOR) {
            o->rank = -1; /* the element type only */
        } else if (taken >= 0) {
            o->rank = t[taken].rank;
            memcpy(o->dims, t[taken].dims, sizeof o->dims);
        } else {
            qkv_cf_merge_shape(&t[0], &t[1], o);
        }
    }
    return QKV_OK;
}

static qkv_status if_compute(const void *state, qkv_kernel_io *io)
{
    const if_state *st = state;
    bool cond;
    qkv_status s = qkv_cf_bool_scalar(io, &io->inputs[0], "cond", &cond);
    if (s != QKV_OK)
        return s;
    const qkv_ir_graph *g = st->branch[cond];
    const qkv_tensor *outs = NULL;
    s = qkv_body_run(qkv_cf_host(io), g, NULL, 0, &outs);
    for (size_t k = 0; k < io->n_outputs && s == QKV_OK; k++) {
        const qkv_ir_graph *other = st->branch[!cond];
        qkv_dtype want = other->values[other->outputs[k]].dtype;
        if (want != QKV_DTYPE_UNDEFINED && outs[k].dtype != QKV_DTYPE_UNDEFINED &&
            outs[k].dtype != want)
            return io->host->error(
                io->host_ctx, QKV_ERR_TYPE, "output %zu: %s gives %s, %s gives %s", k,
                cond ? "then_branch" : "else_branch", qkv_dtype_name(outs[k].dtype),
                cond ? "else_branch" : "then_branch", qkv_dtype_name(want));
        s = qkv_cf_set_value(io, k, &outs[k], qkv_cf_body_output_kind(g, k),
                             qkv_cf_last_use(outs, k, io->n_outputs));
    }
    return s;
}

static void if_destroy(void *state) { free(state); }

#define KERNEL(since, until)                                                                       \
    {                                                                                              \
        .struct_size = sizeof(qkv_kernel), .abi_version = QKV_ABI_VERSION, .domain = "",           \
        .op_type = "If", .since_version = since, .until_version = until, .min_inputs = 1,          \
        .max_inputs = 1, .min_outputs = 0, .max_outputs = -1, .flags = QKV_KERNEL_VALUES,          \
        .init = if_init, .infer = if_infer, .compute = if_compute, .destroy = if_destroy           \
    }

const qkv_kernel qkv_cf_if_kernels[QKV_CF_VERSIONS] = {
    KERNEL(1, 10), KERNEL(11, 12), KERNEL(13, 15), KERNEL(16, 18), KERNEL(19, 0),
};
