/*
 * control_scan.c - Scan (opsets 8, 9, 11, 16, 19): runs the body once per
 * element of the scanned sequences, carrying state.
 *
 *   Scan-9+: inputs N initial states, then M scan inputs (num_scan_inputs),
 *            each scanned along scan_input_axes[j] (default 0, negative
 *            counts from the end) in scan_input_directions[j] (0 forward,
 *            1 reverse); outputs N final states, then K scan outputs, each
 *            the body's per-iteration output stacked along
 *            scan_output_axes[k] in scan_output_directions[k].
 *   Scan-8:  a leading batch axis on every input and output, an optional
 *            first input sequence_lens (int64 [batch]), scanning along axis
 *            1 in `directions`; batch b runs sequence_lens[b] iterations
 *            and its scan outputs are zero past them.
 *   body:    (states..., one element of each scan input...) ->
 *            (next states..., scan output elements...)
 *
 * Deviations: scan outputs must keep their shape across iterations; with
 * zero iterations a scan output's unknown body dims read as 0. Strings are
 * not supported. States, scan inputs and scan outputs are tensors, as the
 * spec says; the body may read enclosing sequences and optionals
 * (frame.h). Memory: as Loop (control_loop.c), plus one work buffer per
 * scan input scanned along an axis other than the first (the element is
 * gathered there).
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "control_flow.h"
#include "size_math.h"
#include "value_store.h"

enum { SLOT_TENSORS = 0, SLOT_CARRY = 1 /* and 2 */, SLOT_SLICE = 3 /* one per scan input */ };

typedef struct scan_state {
    const qkv_ir_graph *body;
    bool v8;                                          /* Scan-8: batch axis, sequence_lens */
    size_t n_state;                                   /* N */
    size_t n_in, n_out;                               /* M scan inputs, K scan outputs */
    int64_t *in_axes, *in_dirs, *out_axes, *out_dirs; /* (M), (M), (K), (K) */
} scan_state;

static void scan_destroy(void *state)
{
    scan_state *st = state;
    if (!st)
        return;
    free(st->in_axes);
    free(st->in_dirs);
    free(st->out_axes);
    free(st->out_dirs);
    free(st);
}

/* dst (n entries) from attribute `name` (absent: all 0); directions must be 0 or 1. */
static qkv_status read_list(const qkv_host_api *host, const qkv_node_ctx *node, const char *name,
                            size_t n, bool direction, int64_t **dst)
{
    const int64_t *v = NULL;
    size_t count = 0;
    qkv_status s = host->attr_ints(node, name, &v, &count);
    if (s != QKV_OK)
        return s;
    if (v && count != n)
        return host->node_error(node, QKV_ERR_INVALID_MODEL,
                                "attribute '%s' has %zu values, "
                                "expected %zu",
                                name, count, n);
    if (!(*dst = calloc(n + 1, sizeof **dst)))
        return host->node_error(node, QKV_ERR_OUT_OF_MEMORY, "out of memory");
    for (size_t k = 0; v && k < n; k++) {
        if (direction && v[k] != 0 && v[k] != 1)
            return host->node_error(node, QKV_ERR_INVALID_MODEL,
                                    "attribute '%s'[%zu] is %lld, expected 0 or 1", name, k,
                                    (long long)v[k]);
        (*dst)[k] = v[k];
    }
    return QKV_OK;
}

static qkv_status scan_parse(const qkv_host_api *host, const qkv_node_ctx *node, scan_state *st)
{
    qkv_status s = qkv_cf_graph_attr(node, "body", &st->body);
    if (s != QKV_OK)
        return s;
    st->v8 = host->node_opset(node) < 9;
    int64_t m;
    if ((s = host->attr_int(node, "num_scan_inputs", -1, &m)) != QKV_OK)
        return s;
    size_t n_in = host->node_input_count(node), n_out = host->node_output_count(node);
    size_t lead = st->v8 ? 1 : 0; /* sequence_lens */
    if (m < 1 || (size_t)m + lead > n_in)
        return host->node_error(node, QKV_ERR_INVALID_MODEL,
                                "num_scan_inputs is %lld, expected 1 to %zu", (long long)m,
                                n_in > lead ? n_in - lead : 0);
    st->n_in = (size_t)m;
    st->n_state = n_in - lead - st->n_in;
    if (n_out < st->n_state)
        return host->node_error(node, QKV_ERR_INVALID_MODEL,
                                "has %zu state inputs but only %zu outputs", st->n_state, n_out);
    st->n_out = n_out - st->n_state;
    const qkv_ir_graph *b = st->body;
    if (b->n_inputs != st->n_state + st->n_in || b->n_outputs != n_out)
        return host->node_error(node, QKV_ERR_INVALID_MODEL,
                                "the body has %zu inputs and %zu outputs, expected %zu and %zu "
                                "(%zu states, %zu scan inputs, %zu scan outputs)",
                                b->n_inputs, b->n_outputs, st->n_state + st->n_in, n_out,
                                st->n_state, st->n_in, st->n_out);
    s = read_list(host, node, st->v8 ? "directions" : "scan_input_directions", st->n_in, true,
                  &st->in_dirs);
    if (s == QKV_OK)
        s = st->v8 ? ((st->in_axes = calloc(st->n_in + 1, sizeof *st->in_axes))
                          ? QKV_OK
                          : host->node_error(node, QKV_ERR_OUT_OF_MEMORY, "out of memory"))
                   : read_list(host, node, "scan_input_axes", st->n_in, false, &st->in_axes);
    if (s == QKV_OK)
        s = st->v8 ? ((st->out_axes = calloc(st->n_out + 1, sizeof *st->out_axes))
                          ? QKV_OK
                          : host->node_error(node, QKV_ERR_OUT_OF_MEMORY, "out of memory"))
                   : read_list(host, node, "scan_output_axes", st->n_out, false, &st->out_axes);
    if (s == QKV_OK)
        s = st->v8
                ? ((st->out_dirs = calloc(st->n_out + 1, sizeof *st->out_dirs))
                       ? QKV_OK
                       : host->node_error(node, QKV_ERR_OUT_OF_MEMORY, "out of memory"))
                : read_list(host, node, "scan_output_directions", st->n_out, true, &st->out_dirs);
    return s;
}

/* Every input but Scan-8's sequence_lens is required: one given as ""
 * would reach compute as a tensor without type, shape or data. */
static qkv_status check_inputs_present(const qkv_host_api *host, const qkv_node_ctx *node,
                                       const scan_state *st)
{
    size_t lead = st->v8 ? 1 : 0, n = host->node_input_count(node);
    for (size_t i = lead; i < n; i++) {
        if (host->node_input_present(node, i))
            continue;
        size_t k = i - lead;
        bool state = k < st->n_state;
        return host->node_error(node, QKV_ERR_INVALID_MODEL,
                                "input %zu (%s %zu) is omitted; Scan requires its states and scan "
                                "inputs",
                                i, state ? "initial state" : "scan input",
                                state ? k : k - st->n_state);
    }
    return QKV_OK;
}

static qkv_status scan_init(const qkv_kernel *kernel, const qkv_host_api *host,
                            const qkv_node_ctx *node, void **state)
{
    (void)kernel;
    scan_state *st = calloc(1, sizeof *st);
    if (!st)
        return host->node_error(node, QKV_ERR_OUT_OF_MEMORY, "out of memory");
    qkv_status s = scan_parse(host, node, st);
    if (s == QKV_OK)
        s = check_inputs_present(host, node, st);
    if (s != QKV_OK) {
        scan_destroy(st);
        return s;
    }
    *state = st;
    return QKV_OK;
}

/* axis in [-rank, rank) made non-negative; false when out of range. */
static bool norm_axis(int64_t axis, int32_t rank, int64_t *out)
{
    if (axis < -(int64_t)rank || axis >= rank)
        return false;
    *out = axis < 0 ? axis + rank : axis;
    return true;
}

/* ---- inference --------------------------------------------------------------- */

/* The body's inputs and outputs are tensors (the spec's types). */
static qkv_status check_body_kinds(qkv_kernel_io *io, const qkv_ir_graph *b)
{
    for (size_t i = 0; i < b->n_inputs + b->n_outputs; i++) {
        bool in = i < b->n_inputs;
        const qkv_ir_value *v = &b->values[in ? b->inputs[i] : b->outputs[i - b->n_inputs]];
        if (v->type_kind != QKV_KIND_TENSOR)
            return io->host->error(io->host_ctx, QKV_ERR_TYPE,
                                   "the body's %s %zu '%s' is a %s; Scan's states and scanned "
                                   "values are tensors",
                                   in ? "input" : "output", in ? i : i - b->n_inputs, v->name,
                                   qkv_kind_name(v->type_kind));
    }
    return QKV_OK;
}

static qkv_status scan_infer(void *state, qkv_kernel_io *io)
{
    const scan_state *st = state;
    qkv_status ks = check_body_kinds(io, st->body);
    if (ks != QKV_OK)
        return ks;
    const size_t lead = st->v8 ? 1 : 0, extra = st->v8 ? 1 : 0; /* batch dim */
    const qkv_ir_graph *b = st->body;
    const qkv_tensor *first = &io->inputs[lead + st->n_state];
    int64_t len = -1, batch = -1, axis = 0;
    if (first->rank >= 0) {
        if (st->v8 && first->rank >= 2) {
            batch = first->dims[0];
            len = first->dims[1];
        } else if (!st->v8 && norm_axis(st->in_axes[0], first->rank, &axis)) {
            len = first->dims[axis];
        } else {
            return io->host->error(io->host_ctx, QKV_ERR_SHAPE,
                                   "scan input 0 has rank %d, too small for its scan axis",
                                   first->rank);
        }
    }
    for (size_t k = 0; k < st->n_state; k++) {
        qkv_tensor last, init = io->inputs[lead + k];
        if (st->v8 && init.rank == 0)
            return io->host->error(io->host_ctx, QKV_ERR_SHAPE,
                                   "input %zu (initial state %zu) is a scalar; Scan-8 states "
                                   "have the batch axis first",
                                   lead + k, k);
        qkv_cf_static_type(b, b->outputs[k], &last);
        if (st->v8 && init.rank >= 1) { /* compare without the batch dim */
            memmove(init.dims, init.dims + 1, (size_t)(init.rank - 1) * sizeof init.dims[0]);
            init.rank--;
        }
        qkv_tensor *o = &io->outputs[k];
        o->dtype = io->inputs[lead + k].dtype;
        qkv_cf_merge_shape(&init, &last, o);
        if (st->v8 && o->rank >= 0 && o->rank < QKV_MAX_RANK) {
            memmove(o->dims + 1, o->dims, (size_t)o->rank * sizeof o->dims[0]);
            o->dims[0] = batch;
            o->rank++;
        }
    }
    for (size_t k = 0; k < st->n_out; k++) {
        qkv_tensor each;
        qkv_cf_static_type(b, b->outputs[st->n_state + k], &each);
        qkv_tensor *o = &io->outputs[st->n_state + k];
        o->dtype = each.dtype;
        o->rank = -1;
        if (each.rank < 0 || each.rank + 1 + (int32_t)extra > QKV_MAX_RANK)
            continue;
        int64_t at;
        if (!norm_axis(st->out_axes[k], each.rank + 1, &at))
            return io->host->error(io->host_ctx, QKV_ERR_SHAPE,
                                   "scan_output_axes[%zu] is %lld, out of range for rank %d", k,
                                   (long long)st->out_axes[k], each.rank + 1);
        o->rank = each.rank + 1 + (int32_t)extra;
        int32_t w = 0;
        if (st->v8)
            o->dims[w++] = batch;
        for (int32_t d = 0; d <= each.rank; d++)
            o->dims[w++] = d == at ? len : each.dims[d < at ? d : d - 1];
    }
    return QKV_OK;
}

/* ---- compute ------------------------------------------------------------------- */

/* What one run of the node keeps while it iterates. */
typedef struct scan_run {
    qkv_kernel_io *io;
    const scan_state *st;
    qkv_tensor *in;     /* (N + M) the body's inputs of this iteration */
    qkv_dtype *dtypes;  /* (N) state types */
    qkv_tensor *seq;    /* (M) the scanned inputs of this sequence (a batch element for Scan-8) */
    qkv_tensor *shapes; /* (K) each scan output element's shape */
    int64_t *axes;      /* (M) scan inputs' axes, non-negative */
    int64_t len;        /* the scan inputs' length along their axes */
    int64_t batch;      /* Scan-8: batch size (1 for Scan-9+) */
    bool outputs_ready; /* scan outputs allocated */
} scan_run;

/* Product of dims[from..to) (to exclusive). */
static size_t span(const int64_t *dims, int32_t from, int32_t to)
{
    size_t n = 1;
    for (int32_t d = from; d < to; d++)
        n *= (size_t)dims[d];
    return n;
}

/* r->in[N + j] = element idx of scanned input j. */
static qkv_status take_element(scan_run *r, size_t j, int64_t idx)
{
    const qkv_tensor *src = &r->seq[j];
    int64_t a = r->axes[j];
    qkv_tensor *t = &r->in[r->st->n_state + j];
    *t = *src;
    t->rank = src->rank - 1;
    for (int32_t d = 0, w = 0; d < src->rank; d++)
        if (d != a)
            t->dims[w++] = src->dims[d];
    size_t esize = qkv_cf_bytes(&(qkv_tensor){.dtype = src->dtype, .rank = 0});
    size_t inner = span(src->dims, (int32_t)a + 1, src->rank) * esize;
    size_t outer = span(src->dims, 0, (int32_t)a);
    t->data_bytes = inner * outer;
    if (a == 0) {
        t->data = (unsigned char *)src->data + (size_t)idx * inner;
        qkv_tensor_bind_empty(t);
        return QKV_OK;
    }
    void *buf = NULL;
    qkv_status s =
        qkv_body_work(qkv_cf_host(r->io), r->st->body, SLOT_SLICE + j, t->data_bytes, &buf);
    if (s != QKV_OK)
        return s;
    for (size_t o = 0; o < outer && inner; o++)
        memcpy((unsigned char *)buf + o * inner,
               (const unsigned char *)src->data + (o * (size_t)r->len + (size_t)idx) * inner,
               inner);
    t->data = buf;
    return QKV_OK;
}

/* Allocates scan output k from its element shape (Scan-8: [batch, len,
 * element...], else the element with len inserted at its axis), zeroed. */
static qkv_status alloc_scan_output(scan_run *r, size_t k, const qkv_tensor *each)
{
    const scan_state *st = r->st;
    qkv_kernel_io *io = r->io;
    int64_t at;
    int32_t extra = st->v8 ? 1 : 0;
    if (each->dtype == QKV_DTYPE_STRING || each->rank + 1 + extra > QKV_MAX_RANK ||
        !norm_axis(st->out_axes[k], each->rank + 1, &at))
        return io->host->error(io->host_ctx, QKV_ERR_UNSUPPORTED,
                               "scan output %zu: %s of rank %d cannot be stacked on axis %lld", k,
                               qkv_dtype_name(each->dtype), each->rank, (long long)st->out_axes[k]);
    int64_t dims[QKV_MAX_RANK];
    int32_t w = 0;
    if (st->v8)
        dims[w++] = r->batch;
    for (int32_t d = 0; d <= each->rank; d++)
        dims[w++] = d == at ? r->len : each->dims[d < at ? d : d - 1];
    size_t o = st->n_state + k;
    qkv_status s = io->host->output_alloc(io, o, each->dtype, w, dims);
    if (s == QKV_OK && io->outputs[o].data)
        memset(io->outputs[o].data, 0, qkv_cf_bytes(&io->outputs[o]));
    return s;
}

/* Writes element `each` of scan output k at position idx of batch b. */
static qkv_status put_element(scan_run *r, size_t k, int64_t b, int64_t idx, const qkv_tensor *each)
{
    qkv_tensor *shape = &r->shapes[k];
    bool same = each->dtype == shape->dtype && each->rank == shape->rank;
    for (int32_t d = 0; same && d < each->rank; d++)
        same = each->dims[d] == shape->dims[d];
    if (!same)
        return r->io->host->error(r->io->host_ctx, QKV_ERR_SHAPE,
                                  "scan output %zu changes shape between iterations", k);
    int64_t at = 0;
    norm_axis(r->st->out_axes[k], each->rank + 1, &at);
    size_t esize = qkv_cf_bytes(&(qkv_tensor){.dtype = each->dtype, .rank = 0});
    size_t inner = span(each->dims, (int32_t)at, each->rank) * esize;
    size_t outer = span(each->dims, 0, (int32_t)at);
    unsigned char *base = (unsigned char *)r->io->outputs[r->st->n_state + k].data +
                          (size_t)b * (size_t)r->len * inner * outer;
    for (size_t o = 0; o < outer && inner; o++)
        memcpy(base + (o * (size_t)r->len + (size_t)idx) * inner,
               (const unsigned char *)each->data + o * inner, inner);
    return QKV_OK;
}

/* Runs `steps` iterations over r->seq from states[0..N) for batch element
 * b; r->in[0..N) holds the final states afterwards. */
static qkv_status run_sequence(scan_run *r, int64_t b, int64_t steps, const qkv_tensor *states)
{
    const scan_state *st = r->st;
    const size_t n = st->n_state;
    for (size_t k = 0; k < n; k++)
        r->in[k] = states[k];
    for (int64_t t = 0; t < steps; t++) {
        qkv_status s = QKV_OK;
        for (size_t j = 0; j < st->n_in && s == QKV_OK; j++)
            s = take_element(r, j, st->in_dirs[j] ? steps - 1 - t : t);
        const qkv_tensor *outs = NULL;
        if (s == QKV_OK)
            s = qkv_body_run(qkv_cf_host(r->io), st->body, r->in, n + st->n_in, &outs);
        for (size_t k = 0; k < st->n_out && s == QKV_OK; k++) {
            const qkv_tensor *each = &outs[n + k];
            if (!r->outputs_ready) {
                r->shapes[k] = *each;
                s = alloc_scan_output(r, k, each);
            }
            if (s == QKV_OK)
                s = put_element(r, k, b, st->out_dirs[k] ? steps - 1 - t : t, each);
        }
        r->outputs_ready = r->outputs_ready || s == QKV_OK;
        if (s == QKV_OK)
            s = qkv_cf_carry(r->io, st->body, SLOT_CARRY, (int)(t & 1), outs, r->dtypes, NULL, n,
                             r->in, "state");
        if (s != QKV_OK)
            return s;
    }
    return QKV_OK;
}

/* Scan outputs never written (no iteration ran): the body's static shape
 * with unknown dims 0. */
static qkv_status empty_scan_outputs(scan_run *r)
{
    for (size_t k = 0; k < r->st->n_out && !r->outputs_ready; k++) {
        qkv_tensor each;
        qkv_cf_static_type(r->st->body, r->st->body->outputs[r->st->n_state + k], &each);
        if (each.rank < 0)
            each.rank = 0;
        for (int32_t d = 0; d < each.rank; d++)
            each.dims[d] = each.dims[d] < 0 ? 0 : each.dims[d];
        qkv_status s = alloc_scan_output(r, k, &each);
        if (s != QKV_OK)
            return s;
    }
    return QKV_OK;
}

/* Scan-9+: one sequence; the scan inputs' lengths must agree. */
static qkv_status compute_v9(scan_run *r)
{
    const scan_state *st = r->st;
    qkv_kernel_io *io = r->io;
    for (size_t j = 0; j < st->n_in; j++) {
        const qkv_tensor *x = &io->inputs[st->n_state + j];
        if (!norm_axis(st->in_axes[j], x->rank, &r->axes[j]))
            return io->host->error(io->host_ctx, QKV_ERR_SHAPE,
                                   "scan_input_axes[%zu] is %lld, out of range for scan input "
                                   "%zu of rank %d",
                                   j, (long long)st->in_axes[j], j, x->rank);
        int64_t len = x->dims[r->axes[j]];
        if (j == 0)
            r->len = len;
        else if (len != r->len)
            return io->host->error(io->host_ctx, QKV_ERR_SHAPE,
                                   "scan input %zu has %lld elements along axis %lld, scan input "
                                   "0 has %lld: the sequence lengths differ",
                                   j, (long long)len, (long long)r->axes[j], (long long)r->len);
        r->seq[j] = *x;
    }
    qkv_status s = run_sequence(r, 0, r->len, io->inputs);
    if (s == QKV_OK)
        s = empty_scan_outputs(r);
    for (size_t k = 0; k < st->n_state && s == QKV_OK; k++)
        s = qkv_cf_set_output(io, k, &r->in[k]);
    return s;
}

/* Tensor t without its leading (batch) dim, at batch element b; t has
 * rank >= 1 and b < its dims[0] (check_v8_states, and compute_v8 for the
 * scan inputs). */
static qkv_tensor batch_slice(const qkv_tensor *t, int64_t b)
{
    qkv_tensor s = *t;
    s.rank = t->rank - 1;
    memmove(s.dims, t->dims + 1, (size_t)s.rank * sizeof s.dims[0]);
    size_t bytes = qkv_cf_bytes(&s);
    s.data = (unsigned char *)t->data + (size_t)b * bytes;
    s.data_bytes = bytes;
    qkv_tensor_bind_empty(&s);
    return s;
}

/* Scan-8: each initial state must have the scan inputs' batch axis first,
 * since each batch element runs from its own slice of the states. */
static qkv_status check_v8_states(const scan_run *r)
{
    qkv_kernel_io *io = r->io;
    for (size_t k = 0; k < r->st->n_state; k++) {
        const qkv_tensor *s0 = &io->inputs[1 + k];
        if (s0->rank < 1)
            return io->host->error(io->host_ctx, QKV_ERR_SHAPE,
                                   "input %zu (initial state %zu) has rank %d, expected [batch "
                                   "%lld, ...]: Scan-8 states have the batch axis first",
                                   1 + k, k, s0->rank, (long long)r->batch);
        if (s0->dims[0] != r->batch)
            return io->host->error(io->host_ctx, QKV_ERR_SHAPE,
                                   "input %zu (initial state %zu) has batch %lld, the scan "
                                   "inputs %lld",
                                   1 + k, k, (long long)s0->dims[0], (long long)r->batch);
    }
    return QKV_OK;
}

/* Scan-8: a batch of sequences, each as long as sequence_lens says. */
static qkv_status compute_v8(scan_run *r, qkv_tensor *states)
{
    const scan_state *st = r->st;
    qkv_kernel_io *io = r->io;
    const qkv_tensor *lens = &io->inputs[0];
    for (size_t j = 0; j < st->n_in; j++) {
        const qkv_tensor *x = &io->inputs[1 + st->n_state + j];
        if (x->rank < 2)
            return io->host->error(io->host_ctx, QKV_ERR_SHAPE,
                                   "scan input %zu has rank %d, expected [batch, sequence, ...]", j,
                                   x->rank);
        if (j == 0) {
            r->batch = x->dims[0];
            r->len = x->dims[1];
        } else if (x->dims[0] != r->batch || x->dims[1] != r->len) {
            return io->host->error(io->host_ctx, QKV_ERR_SHAPE,
                                   "scan input %zu is [%lld, %lld, ...], scan input 0 is [%lld, "
                                   "%lld, ...]: the batch or sequence lengths differ",
                                   j, (long long)x->dims[0], (long long)x->dims[1],
                                   (long long)r->batch, (long long)r->len);
        }
    }
    if (lens->rank >= 0 &&
        (lens->dtype != QKV_DTYPE_INT64 || lens->rank != 1 || lens->dims[0] != r->batch))
        return io->host->error(io->host_ctx, QKV_ERR_SHAPE, "sequence_lens must be int64 [%lld]",
                               (long long)r->batch);
    qkv_status vs = check_v8_states(r);
    if (vs != QKV_OK)
        return vs;
    for (int64_t b = 0; b < r->batch; b++) {
        int64_t steps = r->len;
        if (lens->rank >= 0)
            memcpy(&steps, (const int64_t *)lens->data + b, sizeof steps);
        if (steps < 0 || steps > r->len)
            return io->host->error(io->host_ctx, QKV_ERR_SHAPE,
                                   "sequence_lens[%lld] is %lld, expected 0 to %lld", (long long)b,
                                   (long long)steps, (long long)r->len);
        for (size_t k = 0; k < st->n_state; k++)
            states[k] = batch_slice(&io->inputs[1 + k], b);
        for (size_t j = 0; j < st->n_in; j++)
            r->seq[j] = batch_slice(&io->inputs[1 + st->n_state + j], b);
        qkv_status s = run_sequence(r, b, steps, states);
        for (size_t k = 0; k < st->n_state && s == QKV_OK; k++) {
            const qkv_tensor *fin = &r->in[k];
            if (b == 0) {
                int64_t dims[QKV_MAX_RANK];
                dims[0] = r->batch;
                memcpy(dims + 1, fin->dims, (size_t)fin->rank * sizeof dims[0]);
                s = io->host->output_alloc(io, k, fin->dtype, fin->rank + 1, dims);
            }
            size_t bytes = qkv_cf_bytes(fin);
            if (s == QKV_OK && bytes && io->outputs[k].data)
                memcpy((unsigned char *)io->outputs[k].data + (size_t)b * bytes, fin->data, bytes);
        }
        if (s != QKV_OK)
            return s;
    }
    for (size_t k = 0; k < st->n_state && r->batch == 0; k++) {
        qkv_status s = qkv_cf_set_output(io, k, &io->inputs[1 + k]); /* [0, ...]: empty */
        if (s != QKV_OK)
            return s;
    }
    return empty_scan_outputs(r);
}

static qkv_status scan_compute(const void *state, qkv_kernel_io *io)
{
    const scan_state *st = state;
    const size_t n = st->n_state, m = st->n_in;
    /* in (N + M), states (N), seq (M), shapes (K), dtypes (N), axes (M) */
    size_t tensors = (n + m) + n + m + st->n_out;
    size_t bytes = tensors * sizeof(qkv_tensor) + n * sizeof(qkv_dtype) + m * sizeof(int64_t) +
                   sizeof(int64_t);
    void *work = NULL;
    qkv_status s = qkv_body_work(qkv_cf_host(io), st->body, SLOT_TENSORS, bytes, &work);
    if (s != QKV_OK)
        return s;
    qkv_tensor *in = work, *states = in + n + m, *seq = states + n, *shapes = seq + m;
    int64_t *axes = (int64_t *)(shapes + st->n_out);
    qkv_dtype *dtypes = (qkv_dtype *)(axes + m);
    const size_t lead = st->v8 ? 1 : 0;
    for (size_t k = 0; k < n; k++)
        dtypes[k] = io->inputs[lead + k].dtype;
    scan_run r = {.io = io,
                  .st = st,
                  .in = in,
                  .dtypes = dtypes,
                  .seq = seq,
                  .shapes = shapes,
                  .axes = axes,
                  .batch = 1};
    if (st->v8) {
        for (size_t j = 0; j < m; j++)
            axes[j] = 0; /* within a batch element: the sequence axis */
        return compute_v8(&r, states);
    }
    return compute_v9(&r);
}

/* Scan-8's first input, sequence_lens, may be omitted ("") before the
 * required ones; Scan-9 and later have no such input. */
#define KERNEL(since, until, omittable)                                                            \
    {                                                                                              \
        .struct_size = sizeof(qkv_kernel), .abi_version = QKV_ABI_VERSION, .domain = "",           \
        .op_type = "Scan", .since_version = since, .until_version = until, .min_inputs = 1,        \
        .max_inputs = -1, .min_outputs = 0, .max_outputs = -1, .init = scan_init,                  \
        .infer = scan_infer, .compute = scan_compute, .destroy = scan_destroy,                     \
        .omittable_inputs = omittable                                                              \
    }

const qkv_kernel qkv_cf_scan_kernels[QKV_CF_VERSIONS] = {
    KERNEL(8, 8, 1), KERNEL(9, 10, 0), KERNEL(11, 15, 0), KERNEL(16, 18, 0), KERNEL(19, 0, 0),
};
