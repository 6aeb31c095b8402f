/*
 * control_loop.c - Loop (opsets 1, 11, 13, 16, 19): runs the body while the
 * iteration count is below M and the condition holds.
 *
 *   inputs:  M (optional int64, one element), cond (optional bool, one
 *            element), v_initial... (N loop-carried values)
 *   body:    (iteration_num, cond_in, v...) -> (cond_out, v_next..., scan...)
 *   outputs: v_final... (N), then K scan outputs: each body scan output of
 *            every iteration, stacked on a new first axis.
 *
 * Deviations: a negative M is an error (the spec leaves it undefined); with
 * neither M nor cond the loop runs until the body's cond_out is false.
 * Carried values may change shape between iterations; scan outputs may not.
 * After zero iterations the final values are the initial ones and each scan
 * output is empty, shaped [0, body dims...] (unknown body dims read as 0).
 *
 * Sequences and optionals (Loop-13+, Loop-16+): a carried value may be one,
 * and may change between a kind and its optional (qkv_kind_converts: an
 * empty optional sequence becoming a sequence, as ONNX's
 * test_loop16_seq_none does); each output has the kind of the body's
 * output. Scan outputs are tensors.
 *
 * Memory: carried values alternate between two work buffers of the body's
 * frame; each scan output grows in its own work buffer (doubling); all of
 * them persist across runs, so iterations with shapes seen before allocate
 * nothing. A carried sequence or optional alternates between two boxes of
 * the body's frame (qkv_body_boxes): the body's output moves into one
 * without a copy (control_values.c), and the next iteration's input
 * borrows it. The body's own kernels allocate what they add to sequences.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "control_flow.h"
#include "size_math.h"
#include "value_store.h"

/* Work buffer slots in the body's frame. */
enum { SLOT_TENSORS = 0, SLOT_CARRY = 1 /* and 2 */, SLOT_SCAN = 3 /* one per scan output */ };

typedef struct loop_state {
    const qkv_ir_graph *body;
    size_t n_carried; /* N */
    size_t n_scan;    /* K */
} loop_state;

static qkv_status loop_init(const qkv_kernel *kernel, const qkv_host_api *host,
                            const qkv_node_ctx *node, void **state)
{
    (void)kernel;
    const qkv_ir_graph *body;
    qkv_status s = qkv_cf_graph_attr(node, "body", &body);
    if (s != QKV_OK)
        return s;
    size_t n_in = host->node_input_count(node), n_out = host->node_output_count(node);
    if (n_in < 2)
        return host->node_error(node, QKV_ERR_INVALID_MODEL,
                                "has %zu inputs, expected M, cond and the loop-carried values "
                                "(M and cond may be empty names)",
                                n_in);
    size_t n = n_in - 2;
    if (n_out < n)
        return host->node_error(node, QKV_ERR_INVALID_MODEL,
                                "has %zu loop-carried inputs but only %zu outputs", n, n_out);
    if (body->n_inputs != n + 2)
        return host->node_error(node, QKV_ERR_INVALID_MODEL,
                                "the body has %zu inputs, expected %zu (iteration_num, cond and "
                                "%zu loop-carried values)",
                                body->n_inputs, n + 2, n);
    if (body->n_outputs != 1 + n_out)
        return host->node_error(node, QKV_ERR_INVALID_MODEL,
                                "the body has %zu outputs, expected %zu (cond, %zu loop-carried "
                                "values and %zu scan outputs)",
                                body->n_outputs, 1 + n_out, n, n_out - n);
    loop_state *st = calloc(1, sizeof *st);
    if (!st)
        return host->node_error(node, QKV_ERR_OUT_OF_MEMORY, "out of memory");
    st->body = body;
    st->n_carried = n;
    st->n_scan = n_out - n;
    *state = st;
    return QKV_OK;
}

/* Carried value k's kinds across the boundary: the node's initial value
 * and the body's output must each stand where the body declares its input
 * (qkv_kind_converts); the node's output takes the body output's kind. */
static qkv_status carried_kind(qkv_kernel_io *io, const loop_state *st, size_t k)
{
    const qkv_ir_graph *b = st->body;
    const qkv_ir_value *in = &b->values[b->inputs[2 + k]];
    qkv_type_kind init = qkv_cf_input_kind(io, 2 + k);
    qkv_type_kind last = qkv_cf_body_output_kind(b, 1 + k);
    if (!qkv_kind_converts(init, in->type_kind))
        return io->host->error(io->host_ctx, QKV_ERR_TYPE,
                               "loop-carried value %zu: the body '%s' input %zu '%s' is a %s, the "
                               "node gives it a %s",
                               k, b->name, 2 + k, in->name, qkv_kind_name(in->type_kind),
                               qkv_kind_name(init));
    if (!qkv_kind_converts(last, in->type_kind))
        return io->host->error(io->host_ctx, QKV_ERR_TYPE,
                               "loop-carried value %zu: the body '%s' output %zu '%s' is a %s, its "
                               "input %zu '%s' is a %s",
                               k, b->name, 1 + k, b->values[b->outputs[1 + k]].name,
                               qkv_kind_name(last), 2 + k, in->name, qkv_kind_name(in->type_kind));
    qkv_dtype given = io->inputs[2 + k].dtype;
    if (init != QKV_KIND_TENSOR && given != QKV_DTYPE_UNDEFINED &&
        in->dtype != QKV_DTYPE_UNDEFINED && given != in->dtype)
        return io->host->error(io->host_ctx, QKV_ERR_TYPE,
                               "loop-carried value %zu: the body '%s' input %zu '%s' holds %s, the "
                               "node gives it %s",
                               k, b->name, 2 + k, in->name, qkv_dtype_name(in->dtype),
                               qkv_dtype_name(given));
    if (io->output_kinds)
        io->output_kinds[k] = last;
    return QKV_OK;
}

static qkv_status loop_infer(void *state, qkv_kernel_io *io)
{
    const loop_state *st = state;
    const qkv_tensor *m = &io->inputs[0], *cond = io->n_inputs > 1 ? &io->inputs[1] : NULL;
    if (m->dtype != QKV_DTYPE_UNDEFINED && m->dtype != QKV_DTYPE_INT64)
        return io->host->error(io->host_ctx, QKV_ERR_TYPE, "M is %s, expected int64",
                               qkv_dtype_name(m->dtype));
    if (cond && cond->dtype != QKV_DTYPE_UNDEFINED && cond->dtype != QKV_DTYPE_BOOL)
        return io->host->error(io->host_ctx, QKV_ERR_TYPE, "cond is %s, expected bool",
                               qkv_dtype_name(cond->dtype));
    const qkv_ir_graph *b = st->body;
    for (size_t k = 0; k < st->n_carried; k++) {
        qkv_status s = carried_kind(io, st, k);
        if (s != QKV_OK)
            return s;
        qkv_tensor last;
        qkv_cf_static_type(b, b->outputs[1 + k], &last);
        const qkv_tensor *init = &io->inputs[2 + k];
        qkv_tensor *o = &io->outputs[k];
        o->dtype = init->dtype != QKV_DTYPE_UNDEFINED ? init->dtype : last.dtype;
        if (last.dtype != QKV_DTYPE_UNDEFINED && init->dtype != QKV_DTYPE_UNDEFINED &&
            last.dtype != init->dtype)
            return io->host->error(io->host_ctx, QKV_ERR_TYPE,
                                   "loop-carried value %zu starts as %s, the body makes it %s", k,
                                   qkv_dtype_name(init->dtype), qkv_dtype_name(last.dtype));
        if (qkv_cf_output_kind(io, k) == QKV_KIND_TENSOR)
            qkv_cf_merge_shape(init, &last, o);
        else
            o->rank = -1; /* the element type only */
    }
    for (size_t k = 0; k < st->n_scan; k++) {
        qkv_type_kind kind = qkv_cf_body_output_kind(b, 1 + st->n_carried + k);
        if (kind != QKV_KIND_TENSOR)
            return io->host->error(io->host_ctx, QKV_ERR_TYPE,
                                   "the body's scan output %zu '%s' is a %s; scan outputs are "
                                   "tensors",
                                   k, b->values[b->outputs[1 + st->n_carried + k]].name,
                                   qkv_kind_name(kind));
        if (io->output_kinds)
            io->output_kinds[st->n_carried + k] = QKV_KIND_TENSOR;
        qkv_tensor each;
        qkv_cf_static_type(b, b->outputs[1 + st->n_carried + k], &each);
        qkv_tensor *o = &io->outputs[st->n_carried + k];
        o->dtype = each.dtype;
        o->rank = each.rank >= 0 && each.rank < QKV_MAX_RANK ? each.rank + 1 : -1;
        o->dims[0] = -1; /* the trip count: known when the loop ends */
        for (int32_t d = 0; d < each.rank && o->rank > 0; d++)
            o->dims[d + 1] = each.dims[d];
    }
    return QKV_OK;
}

/* Trip count from input 0 (INT64_MAX when omitted). */
static qkv_status trip_count(qkv_kernel_io *io, int64_t *out)
{
    const qkv_tensor *m = &io->inputs[0];
    *out = INT64_MAX;
    if (m->rank < 0)
        return QKV_OK;
    size_t elems = 0;
    if (m->dtype != QKV_DTYPE_INT64)
        return io->host->error(io->host_ctx, QKV_ERR_TYPE, "M is %s, expected int64",
                               qkv_dtype_name(m->dtype));
    if (!qkv_shape_elements(m->dims, m->rank, &elems) || elems != 1 || !m->data)
        return io->host->error(io->host_ctx, QKV_ERR_SHAPE,
                               "M must have one element, it has %zu (rank %d)", elems, m->rank);
    memcpy(out, m->data, sizeof *out);
    if (*out < 0)
        return io->host->error(io->host_ctx, QKV_ERR_INVALID_ARGUMENT,
                               "the trip count M is %lld, expected >= 0", (long long)*out);
    return QKV_OK;
}

/* One scan output of an iteration appended at row `iter` of its work
 * buffer; `shape` holds the first iteration's (every one must match). */
static qkv_status append_scan(qkv_kernel_io *io, const loop_state *st, size_t k, int64_t iter,
                              const qkv_tensor *each, qkv_tensor *shape)
{
    if (iter == 0) {
        if (each->dtype == QKV_DTYPE_STRING || each->rank >= QKV_MAX_RANK)
            return io->host->error(io->host_ctx, QKV_ERR_UNSUPPORTED,
                                   "scan output %zu: %s of rank %d cannot be stacked", k,
                                   qkv_dtype_name(each->dtype), each->rank);
        *shape = *each;
    } else {
        bool same = each->dtype == shape->dtype && each->rank == shape->rank;
        for (int32_t d = 0; same && d < each->rank; d++)
            same = each->dims[d] == shape->dims[d];
        if (!same)
            return io->host->error(io->host_ctx, QKV_ERR_SHAPE,
                                   "scan output %zu changes shape at iteration %lld", k,
                                   (long long)iter);
    }
    size_t row = qkv_cf_bytes(each), need;
    if (qkv_mul_overflow(row, (size_t)iter + 1, &need))
        return io->host->error(io->host_ctx, QKV_ERR_OUT_OF_MEMORY,
                               "scan output %zu: size overflow", k);
    void *buf = NULL;
    qkv_status s = qkv_body_work(qkv_cf_host(io), st->body, SLOT_SCAN + k, need, &buf);
    if (s == QKV_OK && row)
        memcpy((unsigned char *)buf + row * (size_t)iter, each->data, row);
    return s;
}

/* The node's outputs after `iters` iterations. */
static qkv_status finish(qkv_kernel_io *io, const loop_state *st, int64_t iters,
                         const qkv_tensor *carried, const qkv_type_kind *kinds,
                         const qkv_tensor *shapes)
{
    for (size_t k = 0; k < st->n_carried; k++) {
        /* after an iteration a sequence or optional is in a box of ours:
         * it moves out; the initial value (zero iterations) is copied */
        qkv_status s = qkv_cf_set_value(io, k, &carried[k], kinds[k], iters > 0);
        if (s != QKV_OK)
            return s;
    }
    for (size_t k = 0; k < st->n_scan; k++) {
        qkv_tensor t;
        if (iters > 0) {
            t = shapes[k];
        } else { /* no iteration: the body's static shape, unknown dims 0 */
            qkv_cf_static_type(st->body, st->body->outputs[1 + st->n_carried + k], &t);
            if (t.rank < 0 || t.rank >= QKV_MAX_RANK)
                t.rank = 0;
            for (int32_t d = 0; d < t.rank; d++)
                t.dims[d] = t.dims[d] < 0 ? 0 : t.dims[d];
        }
        memmove(t.dims + 1, t.dims, (size_t)t.rank * sizeof t.dims[0]);
        t.dims[0] = iters;
        t.rank++;
        void *buf = NULL;
        qkv_status s = QKV_OK;
        if (iters > 0)
            s = qkv_body_work(qkv_cf_host(io), st->body, SLOT_SCAN + k, 0, &buf);
        t.data = buf;
        if (s == QKV_OK)
            s = qkv_cf_set_output(io, st->n_carried + k, &t);
        if (s != QKV_OK)
            return s;
    }
    return QKV_OK;
}

static qkv_status loop_compute(const void *state, qkv_kernel_io *io)
{
    const loop_state *st = state;
    int64_t m;
    bool cond = true;
    qkv_status s = trip_count(io, &m);
    if (s == QKV_OK && io->n_inputs > 1 && io->inputs[1].rank >= 0)
        s = qkv_cf_bool_scalar(io, &io->inputs[1], "cond", &cond);
    if (s != QKV_OK)
        return s;
    const size_t n = st->n_carried;
    /* body inputs (2 + N), scan shapes (K), carried dtypes (N), the inputs'
     * kinds (2 + N) and the body's carried outputs' kinds (N), in one work
     * buffer */
    size_t bytes = (2 + n + st->n_scan) * sizeof(qkv_tensor) + n * sizeof(qkv_dtype) +
                   (2 + 2 * n) * sizeof(qkv_type_kind);
    void *tensors = NULL;
    s = qkv_body_work(qkv_cf_host(io), st->body, SLOT_TENSORS, bytes, &tensors);
    if (s != QKV_OK)
        return s;
    qkv_tensor *in = tensors, *shapes = in + 2 + n;
    qkv_dtype *dtypes = (qkv_dtype *)(shapes + st->n_scan);
    qkv_type_kind *kinds = (qkv_type_kind *)(dtypes + n), *out_kinds = kinds + 2 + n;
    qkv_box *boxes = NULL; /* (2N) carried sequences and optionals, two per value */
    kinds[0] = kinds[1] = QKV_KIND_TENSOR;
    bool values = false;
    for (size_t k = 0; k < n; k++) {
        kinds[2 + k] = qkv_cf_input_kind(io, 2 + k);
        out_kinds[k] = qkv_cf_body_output_kind(st->body, 1 + k);
        values = values || kinds[2 + k] != QKV_KIND_TENSOR || out_kinds[k] != QKV_KIND_TENSOR;
    }
    if (values && (s = qkv_body_boxes(qkv_cf_host(io), st->body, 2 * n, &boxes)) != QKV_OK)
        return s;
    int64_t iter = 0;
    unsigned char cond_byte = cond;
    in[0] =
        (qkv_tensor){.dtype = QKV_DTYPE_INT64, .rank = 0, .data = &iter, .data_bytes = sizeof iter};
    in[1] = (qkv_tensor){.dtype = QKV_DTYPE_BOOL, .rank = 0, .data = &cond_byte, .data_bytes = 1};
    for (size_t k = 0; k < n; k++) {
        in[2 + k] = io->inputs[2 + k];
        dtypes[k] = io->inputs[2 + k].dtype;
    }
    for (; iter < m && cond; iter++) {
        const qkv_tensor *outs = NULL;
        s = qkv_body_run_values(qkv_cf_host(io), st->body, in, kinds, 2 + n, &outs);
        if (s == QKV_OK)
            s = qkv_cf_bool_scalar(io, &outs[0], "the body's cond output", &cond);
        if (s == QKV_OK)
            s = qkv_cf_carry(io, st->body, SLOT_CARRY, (int)(iter & 1), outs + 1, dtypes, out_kinds,
                             n, in + 2, "loop-carried value");
        for (size_t k = 0; k < n && s == QKV_OK && values; k++) {
            if (out_kinds[k] == QKV_KIND_TENSOR)
                continue;
            const qkv_ir_value *v = &st->body->values[st->body->outputs[1 + k]];
            s = qkv_cf_carry_value(io, &boxes[2 * k + (size_t)(iter & 1)], out_kinds[k], v->dtype,
                                   &outs[1 + k], qkv_cf_last_use(outs + 1, k, n), &in[2 + k],
                                   "loop-carried value", k);
        }
        for (size_t k = 0; k < n; k++)
            kinds[2 + k] = out_kinds[k];
        for (size_t k = 0; k < st->n_scan && s == QKV_OK; k++)
            s = append_scan(io, st, k, iter, &outs[1 + n + k], &shapes[k]);
        if (s != QKV_OK)
            return s;
        cond_byte = cond;
    }
    return finish(io, st, iter, in + 2, kinds + 2, shapes);
}

static void loop_destroy(void *state) { free(state); }

#define KERNEL(since, until)                                                                       \
    {                                                                                              \
        .struct_size = sizeof(qkv_kernel), .abi_version = QKV_ABI_VERSION, .domain = "",           \
        .op_type = "Loop", .since_version = since, .until_version = until, .min_inputs = 0,        \
        .max_inputs = -1, .min_outputs = 0, .max_outputs = -1, .flags = QKV_KERNEL_VALUES,         \
        .init = loop_init, .infer = loop_infer, .compute = loop_compute, .destroy = loop_destroy   \
    }

const qkv_kernel qkv_cf_loop_kernels[QKV_CF_VERSIONS] = {
    KERNEL(1, 10), KERNEL(11, 12), KERNEL(13, 15), KERNEL(16, 18), KERNEL(19, 0),
};
