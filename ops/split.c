/*
 * split.c - Split (opsets 1, 2, 11, 13, 18).
 *
 * Cuts input 0 along `axis` (default 0) into the node's outputs, in order.
 * The part sizes come from:
 *   - opset 1: the `split` attribute or the optional input 1;
 *   - opsets 2-12: the `split` attribute;
 *   - opsets 13+: the optional int64 input 1 `split`;
 *   - opset 18+ without `split`: the `num_outputs` attribute (which must equal
 *     the number of outputs): parts of ceil(dim / n), the last smaller;
 *   - otherwise equal parts, one per output (the dim must divide evenly).
 * `split` needs one non-negative entry per output summing to the dim.
 * Deviations: negative axes are accepted before opset 11; in opset 18 a
 * num_outputs split whose ceil-sized parts run out before the last output
 * (e.g. 5 into 4) gives trailing parts of size 0 rather than failing; with
 * neither `split` nor `num_outputs` opset 18 falls back to equal parts.
 *
 * A `split` input whose value is unknown at inference leaves the outputs'
 * axis dim -1. Any element type of whole bytes (not strings). Each output
 * gets one memcpy per outer index (product of dims before the axis); outer
 * indices are split across threads when the input is large.
 */
#include <stdlib.h>
#include <string.h>

#include "kernel_util.h"
#include "qkv.h"

#define PAR_MIN_BYTES ((size_t)1 << 18)

typedef struct split_attrs {
    int64_t axis;
    int64_t num_outputs; /* 0: not given */
    bool split_input;    /* the part sizes may come from input 1 */
    size_t n_split;      /* the `split` attribute, if given */
    int64_t *split;
} split_attrs;

typedef struct split_run {
    const char *x;
    qkv_kernel_io *io;
    const int64_t *sizes; /* (n_outputs) */
    size_t dim, inner_bytes;
} split_run;

static qkv_status split_init(const qkv_kernel *kernel, const qkv_host_api *host,
                             const qkv_node_ctx *node, void **state)
{
    split_attrs *s = calloc(1, sizeof *s);
    if (!s)
        return NERR(host, node, QKV_ERR_OUT_OF_MEMORY, "kernel state");
    s->split_input = kernel->max_inputs == 2;
    qkv_status st = host->attr_int(node, "axis", 0, &s->axis);
    if (st == QKV_OK && kernel->since_version >= 18)
        st = host->attr_int(node, "num_outputs", 0, &s->num_outputs);
    if (st == QKV_OK && kernel->since_version < 13) {
        const int64_t *v;
        size_t n;
        st = host->attr_ints(node, "split", &v, &n);
        if (st == QKV_OK && n) {
            s->split = malloc(n * sizeof *v);
            if (!s->split)
                st = NERR(host, node, QKV_ERR_OUT_OF_MEMORY, "kernel state");
            else
                memcpy(s->split, v, n * sizeof *v);
            s->n_split = n;
        }
    }
    size_t n_out = host->node_output_count(node);
    if (st == QKV_OK && s->num_outputs != 0 && s->num_outputs != (int64_t)n_out)
        st = NERR(host, node, QKV_ERR_INVALID_MODEL,
                  "attribute num_outputs=%lld but the node has %zu outputs",
                  (long long)s->num_outputs, n_out);
    if (st == QKV_OK && s->num_outputs != 0 && host->node_input_present(node, 1))
        st = NERR(host, node, QKV_ERR_INVALID_MODEL,
                  "has both input 1 'split' and attribute num_outputs; give one");
    if (st == QKV_OK && s->n_split && host->node_input_present(node, 1))
        st = NERR(host, node, QKV_ERR_INVALID_MODEL,
                  "has both input 1 'split' and attribute split; give one");
    if (st != QKV_OK) {
        free(s->split);
        free(s);
        return st;
    }
    *state = s;
    return QKV_OK;
}

static void split_destroy(void *state)
{
    split_attrs *s = state;
    if (s)
        free(s->split);
    free(s);
}

/*
 * The part sizes into sizes[0..n) for a dim of `dim` (-1 unknown). Sets
 * *known false when they depend on a value or dim not known yet.
 * INVALID_MODEL for a split of the wrong length; SHAPE for negative parts,
 * a sum other than the dim, or a dim that does not divide evenly.
 */
static qkv_status split_sizes(const split_attrs *s, qkv_kernel_io *io, int64_t dim, int64_t *sizes,
                              size_t n, bool *known)
{
    *known = true;
    const int64_t *given = NULL;
    size_t n_given = 0;
    if (s->n_split) {
        given = s->split;
        n_given = s->n_split;
    } else if (s->split_input && qkv_present(io, 1)) {
        const qkv_tensor *t = &io->inputs[1];
        if (!t->data || !qkv_shape_known(t)) {
            *known = false;
            return QKV_OK;
        }
        if (t->rank != 1)
            return KERR(io, QKV_ERR_SHAPE, "input 1 'split' has rank %d, expected 1", t->rank);
        n_given = qkv_numel(t);
        if (n_given != n)
            return KERR(io, QKV_ERR_INVALID_MODEL,
                        "input 1 'split' has %zu entries but the node has %zu outputs", n_given, n);
        int64_t sum = 0;
        for (size_t i = 0; i < n; i++) {
            sizes[i] = qkv_int_at(t, i);
            if (sizes[i] < 0)
                return KERR(io, QKV_ERR_SHAPE, "split[%zu]=%lld is negative", i,
                            (long long)sizes[i]);
            sum += sizes[i];
        }
        if (dim >= 0 && sum != dim)
            return KERR(io, QKV_ERR_SHAPE,
                        "split sizes sum to %lld, but input 0 'input' has %lld on the axis",
                        (long long)sum, (long long)dim);
        return QKV_OK;
    }
    if (given) {
        if (n_given != n)
            return KERR(io, QKV_ERR_INVALID_MODEL,
                        "attribute split has %zu entries but the node has %zu outputs", n_given, n);
        int64_t sum = 0;
        for (size_t i = 0; i < n; i++) {
            if (given[i] < 0)
                return KERR(io, QKV_ERR_SHAPE, "split[%zu]=%lld is negative", i,
                            (long long)given[i]);
            sizes[i] = given[i];
            sum += given[i];
        }
        if (dim >= 0 && sum != dim)
            return KERR(io, QKV_ERR_SHAPE,
                        "split sizes sum to %lld, but input 0 'input' has %lld on the axis",
                        (long long)sum, (long long)dim);
        return QKV_OK;
    }
    if (dim < 0) {
        *known = false;
        return QKV_OK;
    }
    int64_t nn = (int64_t)n;
    if (s->num_outputs) {
        int64_t chunk = (dim + nn - 1) / nn, left = dim;
        for (size_t i = 0; i < n; i++) {
            sizes[i] = left < chunk ? left : chunk;
            left -= sizes[i];
        }
        return QKV_OK;
    }
    if (dim % nn != 0)
        return KERR(io, QKV_ERR_SHAPE,
                    "input 0 'input' has %lld on the axis, which does not split into %zu "
                    "equal parts",
                    (long long)dim, n);
    for (size_t i = 0; i < n; i++)
        sizes[i] = dim / nn;
    return QKV_OK;
}

static qkv_status split_infer(void *state, qkv_kernel_io *io)
{
    const split_attrs *s = state;
    const qkv_tensor *x = &io->inputs[0];
    size_t n = io->n_outputs;
    for (size_t k = 0; k < n; k++) {
        io->outputs[k].dtype = x->dtype;
        io->outputs[k].rank = -1;
    }
    if (x->rank < 0)
        return QKV_OK;
    int32_t axis;
    if (!qkv_axis_normalize(s->axis, x->rank, false, &axis))
        return KERR(io, QKV_ERR_SHAPE,
                    "attribute axis=%lld is out of range for input 0 'input' of rank %d "
                    "(expected %d to %d)",
                    (long long)s->axis, x->rank, -x->rank, x->rank - 1);
    int64_t *sizes = malloc(n * sizeof *sizes);
    if (!sizes)
        return KERR(io, QKV_ERR_OUT_OF_MEMORY, "split sizes");
    bool known;
    qkv_status st = split_sizes(s, io, x->dims[axis], sizes, n, &known);
    for (size_t k = 0; st == QKV_OK && k < n; k++) {
        qkv_set_shape(&io->outputs[k], x->dtype, x->rank, x->dims);
        io->outputs[k].dims[axis] = known ? sizes[k] : -1;
    }
    free(sizes);
    return st;
}

/* parallel_for body: outer indices [b, e), all outputs. */
static void split_range(void *arg, size_t b, size_t e)
{
    const split_run *r = arg;
    const size_t row_bytes = r->dim * r->inner_bytes;
    size_t off = 0; /* bytes into an input row */
    for (size_t k = 0; k < r->io->n_outputs; k++) {
        size_t part = (size_t)r->sizes[k] * r->inner_bytes;
        char *y = r->io->outputs[k].data;
        if (y && part)
            for (size_t o = b; o < e; o++)
                memcpy(y + o * part, r->x + o * row_bytes + off, part);
        off += part;
    }
}

static qkv_status split_compute(const void *state, qkv_kernel_io *io)
{
    const split_attrs *s = state;
    const qkv_tensor *x = &io->inputs[0];
    int32_t axis;
    if (!qkv_axis_normalize(s->axis, x->rank, false, &axis))
        return KERR(io, QKV_ERR_SHAPE, "attribute axis=%lld is out of range for rank %d",
                    (long long)s->axis, x->rank);
    size_t n = io->n_outputs, outer = 1, inner = qkv_dtype_bits(x->dtype) / 8;
    for (int32_t k = 0; k < x->rank; k++) {
        if (k < axis)
            outer *= (size_t)x->dims[k];
        else if (k > axis)
            inner *= (size_t)x->dims[k];
    }
    int64_t sizes[64];
    int64_t *sz = n <= 64 ? sizes : io->scratch;
    bool known;
    qkv_status st = split_sizes(s, io, x->dims[axis], sz, n, &known);
    if (st != QKV_OK)
        return st;
    if (!known)
        return KERR(io, QKV_ERR_INTERNAL, "input 1 'split' has no value at compute");
    for (size_t k = 0; k < n; k++)
        if (io->outputs[k].data &&
            (io->outputs[k].rank != x->rank || io->outputs[k].dims[axis] != sz[k]))
            return KERR(io, QKV_ERR_INTERNAL, "output %zu was not shaped for part size %lld", k,
                        (long long)sz[k]);
    split_run r = {
        .x = x->data, .io = io, .sizes = sz, .dim = (size_t)x->dims[axis], .inner_bytes = inner};
    if (outer == 0 || x->data_bytes == 0)
        return QKV_OK;
    if (outer > 1 && x->data_bytes >= PAR_MIN_BYTES)
        io->host->parallel_for(io->host_ctx, outer, split_range, &r);
    else
        split_range(&r, 0, outer);
    return QKV_OK;
}

/* More than 64 outputs: their sizes go to scratch. */
static qkv_status split_prepare(void *state, qkv_kernel_io *io)
{
    (void)state;
    io->scratch_bytes = io->n_outputs > 64 ? io->n_outputs * sizeof(int64_t) : 0;
    return QKV_OK;
}

#define SPLIT_KERNEL(SINCE, UNTIL, N_IN)                                                           \
    {                                                                                              \
        QKV_KERNEL_V1, .domain = "", .op_type = "Split", .since_version = (SINCE),                 \
                       .until_version = (UNTIL), .min_inputs = 1, .max_inputs = (N_IN),            \
                       .min_outputs = 1, .max_outputs = -1, .n_input_types = 2,                    \
                       .input_types = {QKV_TYPES_BYTES, QKV_TYPES_INDEX}, .init = split_init,      \
                       .infer = split_infer, .prepare = split_prepare, .compute = split_compute,   \
                       .destroy = split_destroy,                                                   \
    }

static const qkv_kernel kernels[] = {
    SPLIT_KERNEL(1, 1, 2),   SPLIT_KERNEL(2, 10, 1), SPLIT_KERNEL(11, 12, 1),
    SPLIT_KERNEL(13, 17, 2), SPLIT_KERNEL(18, 0, 2),
};

/* The Split descriptors; *count set to their number. */
const qkv_kernel *qkv_ops_split(size_t *count)
{
    *count = sizeof kernels / sizeof kernels[0];
    return kernels;
}
