/*
 * slice.c - Slice (opsets 1, 10, 11, 13).
 *
 * Slice-1 takes starts, ends and (optional) axes as attributes; 10+ as
 * inputs 1..3, plus optional steps (input 4). Per sliced axis of size d:
 * negative starts/ends count from the end; then, numpy style, for step > 0
 * start and end are clamped to [0, d], for step < 0 start to [0, d-1] and
 * end to [-1, d-1] (so INT64_MAX / INT64_MIN mean "to the end").
 * Output length max(0, ceil((end - start) / step)).
 *
 * Errors: step 0, an axis out of range or given twice, lists of different
 * lengths (QKV_ERR_SHAPE). Negative axes are accepted at every opset.
 *
 * The copy folds the innermost untouched dims (and a step-1 axis before
 * them) into one contiguous block, then walks the remaining axes with an
 * odometer: one memcpy per block, blocks split across threads when large.
 * Any element type of whole bytes (strings are not supported).
 */
#include <stdlib.h>

#include "kernel_util.h"
#include "qkv.h"

/* Slice-1's attributes. */
typedef struct slice_state {
    size_t n;
    bool has_axes;
    int64_t starts[QKV_MAX_RANK], ends[QKV_MAX_RANK], axes[QKV_MAX_RANK];
} slice_state;

/* What to take from each axis of the input (all axes, untouched ones too). */
typedef struct slice_plan {
    int64_t start[QKV_MAX_RANK];
    int64_t step[QKV_MAX_RANK];
    int64_t len[QKV_MAX_RANK]; /* -1 when the input dim is unknown */
} slice_plan;

/* Reads the INTS attribute `name` into out (at most QKV_MAX_RANK); *n its count. */
static qkv_status read_list_attr(const qkv_host_api *host, const qkv_node_ctx *node,
                                 const char *name, bool required, int64_t *out, size_t *n,
                                 bool *present)
{
    const int64_t *v = NULL;
    qkv_status st = host->attr_ints(node, name, &v, n);
    if (st != QKV_OK)
        return st;
    *present = v != NULL;
    if (required && !v)
        return NERR(host, node, QKV_ERR_INVALID_MODEL, "attribute '%s' is required", name);
    if (*n > QKV_MAX_RANK)
        return NERR(host, node, QKV_ERR_UNSUPPORTED,
                    "attribute '%s' has %zu values, at most %d supported", name, *n, QKV_MAX_RANK);
    for (size_t i = 0; i < *n; i++)
        out[i] = v[i];
    return QKV_OK;
}

static qkv_status slice1_init(const qkv_kernel *k, const qkv_host_api *host,
                              const qkv_node_ctx *node, void **state)
{
    (void)k;
    slice_state *s = calloc(1, sizeof *s);
    if (!s)
        return NERR(host, node, QKV_ERR_OUT_OF_MEMORY, "kernel state");
    size_t n_starts, n_ends, n_axes = 0;
    bool present;
    qkv_status st = read_list_attr(host, node, "starts", true, s->starts, &n_starts, &present);
    if (st == QKV_OK)
        st = read_list_attr(host, node, "ends", true, s->ends, &n_ends, &present);
    if (st == QKV_OK)
        st = read_list_attr(host, node, "axes", false, s->axes, &n_axes, &s->has_axes);
    if (st == QKV_OK && (n_starts != n_ends || (s->has_axes && n_axes != n_starts)))
        st = NERR(host, node, QKV_ERR_INVALID_MODEL,
                  "attributes starts, ends and axes have %zu, %zu and %zu values; expected the "
                  "same count",
                  n_starts, n_ends, n_axes);
    if (st != QKV_OK) {
        free(s);
        return st;
    }
    s->n = n_starts;
    *state = s;
    return QKV_OK;
}

static void slice_destroy(void *state) { free(state); }

/* ---- planning ------------------------------------------------------------------- */

static int64_t clamp64(int64_t v, int64_t lo, int64_t hi) { return v < lo ? lo : v > hi ? hi : v; }

/* Start and length of slicing an axis of size d (>= 0) with (start, end, step != 0). */
static void slice_axis(int64_t d, int64_t start, int64_t end, int64_t step, int64_t *out_start,
                       int64_t *out_len)
{
    if (start < 0)
        start += d; /* no overflow: d >= 0 */
    if (end < 0)
        end += d;
    *out_start = 0;
    *out_len = 0;
    if (d == 0)
        return;
    if (step > 0) {
        start = clamp64(start, 0, d);
        end = clamp64(end, 0, d);
        if (end > start)
            *out_len = (end - start - 1) / step + 1;
    } else {
        start = clamp64(start, 0, d - 1);
        end = clamp64(end, -1, d - 1);
        uint64_t mag = (uint64_t)0 - (uint64_t)step; /* |step|, INT64_MIN included */
        if (start > end)
            *out_len = (int64_t)((uint64_t)(start - end - 1) / mag + 1);
    }
    *out_start = start;
}

/*
 * Fills `plan` for input 0 from n (start, end) pairs on `axes` (NULL:
 * 0..n-1) with `steps` (NULL: 1). QKV_ERR_SHAPE for more pairs than axes,
 * an axis out of range or repeated, a step of 0.
 */
static qkv_status slice_make_plan(qkv_kernel_io *io, const int64_t *starts, const int64_t *ends,
                                  const int64_t *axes, const int64_t *steps, size_t n,
                                  slice_plan *plan)
{
    const qkv_tensor *x = &io->inputs[0];
    int32_t r = x->rank;
    bool seen[QKV_MAX_RANK] = {false};
    if (n > (size_t)r)
        return KERR(io, QKV_ERR_SHAPE, "%zu axes to slice, but input 0 'data' has rank %d", n, r);
    for (int32_t k = 0; k < r; k++) {
        plan->start[k] = 0;
        plan->step[k] = 1;
        plan->len[k] = x->dims[k];
    }
    for (size_t i = 0; i < n; i++) {
        int32_t a = (int32_t)i;
        if (axes && !qkv_axis_normalize(axes[i], r, false, &a))
            return KERR(io, QKV_ERR_SHAPE,
                        "axes[%zu] = %lld is out of range for input 0 "
                        "'data' of rank %d",
                        i, (long long)axes[i], r);
        if (seen[a])
            return KERR(io, QKV_ERR_SHAPE, "axes[%zu] = %lld repeats axis %d", i,
                        (long long)axes[i], a);
        seen[a] = true;
        int64_t step = steps ? steps[i] : 1;
        if (step == 0)
            return KERR(io, QKV_ERR_SHAPE, "steps[%zu] is 0", i);
        plan->step[a] = step;
        if (x->dims[a] < 0) {
            plan->len[a] = -1;
            continue;
        }
        slice_axis(x->dims[a], starts[i], ends[i], step, &plan->start[a], &plan->len[a]);
    }
    return QKV_OK;
}

/*
 * Reads the inputs of Slice-10+ into a plan. *known false (and QKV_OK)
 * when some value is not known yet.
 */
static qkv_status slice10_plan(qkv_kernel_io *io, slice_plan *plan, bool *known)
{
    int64_t v[4][QKV_MAX_RANK];
    size_t n[4] = {0, 0, 0, 0};
    static const char *const names[4] = {"starts", "ends", "axes", "steps"};
    *known = true;
    for (size_t i = 0; i < 4; i++) {
        if (!qkv_present(io, i + 1))
            continue;
        const qkv_tensor *t = &io->inputs[i + 1];
        if (t->rank >= 0 && t->rank != 1)
            return KERR(io, QKV_ERR_SHAPE, "input %zu '%s' has rank %d, expected 1", i + 1,
                        names[i], t->rank);
        qkv_status st = qkv_read_ints(io, i + 1, v[i], QKV_MAX_RANK, &n[i]);
        if (st != QKV_OK)
            return st;
        if (n[i] == SIZE_MAX)
            *known = false;
    }
    if (!*known)
        return QKV_OK;
    for (size_t i = 1; i < 4; i++)
        if (qkv_present(io, i + 1) && n[i] != n[0])
            return KERR(io, QKV_ERR_SHAPE,
                        "input %zu '%s' has %zu values, input 1 'starts' has %zu", i + 1, names[i],
                        n[i], n[0]);
    return slice_make_plan(io, v[0], v[1], qkv_present(io, 3) ? v[2] : NULL,
                           qkv_present(io, 4) ? v[3] : NULL, n[0], plan);
}

static qkv_status slice1_plan(const slice_state *s, qkv_kernel_io *io, slice_plan *plan)
{
    return slice_make_plan(io, s->starts, s->ends, s->has_axes ? s->axes : NULL, NULL, s->n, plan);
}

/* ---- infer ---------------------------------------------------------------------- */

static qkv_status slice_set_output(qkv_kernel_io *io, const slice_plan *plan)
{
    const qkv_tensor *x = &io->inputs[0];
    qkv_set_shape(&io->outputs[0], x->dtype, x->rank, plan->len);
    return QKV_OK;
}

static qkv_status slice1_infer(void *state, qkv_kernel_io *io)
{
    const qkv_tensor *x = &io->inputs[0];
    if (x->rank < 0) {
        qkv_set_shape(&io->outputs[0], x->dtype, -1, NULL);
        return QKV_OK;
    }
    slice_plan plan;
    qkv_status st = slice1_plan(state, io, &plan);
    return st != QKV_OK ? st : slice_set_output(io, &plan);
}

static qkv_status slice10_infer(void *state, qkv_kernel_io *io)
{
    (void)state;
    const qkv_tensor *x = &io->inputs[0];
    qkv_tensor *y = &io->outputs[0];
    if (x->rank < 0) {
        qkv_set_shape(y, x->dtype, -1, NULL);
        return QKV_OK;
    }
    slice_plan plan;
    bool known;
    qkv_status st = slice10_plan(io, &plan, &known);
    if (st != QKV_OK)
        return st;
    if (!known) { /* the rank is kept; which dims change depends on the values */
        y->dtype = x->dtype;
        y->rank = x->rank;
        for (int32_t k = 0; k < x->rank; k++)
            y->dims[k] = -1;
        return QKV_OK;
    }
    return slice_set_output(io, &plan);
}

/* ---- compute -------------------------------------------------------------------- */

typedef struct slice_job {
    unsigned char *out;
    const unsigned char *in; /* at the first element taken */
    int32_t outer_rank;      /* axes walked by the odometer: 0..outer_rank-1 */
    int64_t len[QKV_MAX_RANK];
    int64_t step_bytes[QKV_MAX_RANK]; /* input bytes between consecutive taken elements */
    size_t block;                     /* contiguous bytes copied per position */
} slice_job;

/* Copies blocks [begin, end) (in row-major order of the outer axes). */
static void slice_range(void *arg, size_t begin, size_t end)
{
    const slice_job *j = arg;
    int64_t c[QKV_MAX_RANK];
    int64_t off = 0;
    size_t rest = begin;
    for (int32_t k = j->outer_rank - 1; k >= 0; k--) {
        c[k] = (int64_t)(rest % (size_t)j->len[k]);
        rest /= (size_t)j->len[k];
        off += c[k] * j->step_bytes[k];
    }
    for (size_t b = begin; b < end; b++) {
        qkv_copy_block(j->out + b * j->block, j->in + off, j->block);
        for (int32_t k = j->outer_rank - 1; k >= 0; k--) {
            off += j->step_bytes[k];
            if (++c[k] < j->len[k])
                break;
            off -= c[k] * j->step_bytes[k];
            c[k] = 0;
        }
    }
}

static qkv_status slice_run(qkv_kernel_io *io, const slice_plan *plan)
{
    const qkv_tensor *x = &io->inputs[0];
    const qkv_tensor *y = &io->outputs[0];
    size_t eb = qkv_elem_bytes(x->dtype);
    if (eb == 0)
        return KERR(io, QKV_ERR_TYPE, "input 0 'data' has type %s, not supported",
                    qkv_dtype_name(x->dtype));
    if (qkv_numel(y) == 0)
        return QKV_OK;
    size_t xs[QKV_MAX_RANK];
    qkv_contiguous_strides(x, xs);
    slice_job j = {.out = y->data, .outer_rank = x->rank, .block = eb};
    int64_t first = 0; /* byte offset of the first element taken */
    for (int32_t k = 0; k < x->rank; k++) {
        j.len[k] = plan->len[k];
        /* a step is at most the dim when two or more elements are taken, so
         * step_bytes stays within the tensor; with one, it is never used (a
         * huge step such as INT64_MAX would overflow) */
        j.step_bytes[k] = plan->len[k] > 1 ? plan->step[k] * (int64_t)(xs[k] * eb) : 0;
        first += plan->start[k] * (int64_t)(xs[k] * eb);
    }
    j.in = (const unsigned char *)x->data + first;
    /* fold the innermost axes taken whole, then one more taken with step 1 */
    while (j.outer_rank > 0) {
        int32_t k = j.outer_rank - 1;
        if (plan->start[k] != 0 || plan->step[k] != 1 || plan->len[k] != x->dims[k])
            break;
        j.block *= (size_t)x->dims[k];
        j.outer_rank--;
    }
    if (j.outer_rank > 0 && plan->step[j.outer_rank - 1] == 1) {
        j.block *= (size_t)plan->len[j.outer_rank - 1];
        j.outer_rank--;
    }
    size_t n_blocks = 1;
    for (int32_t k = 0; k < j.outer_rank; k++)
        n_blocks *= (size_t)j.len[k];
    qkv_run_range(io, n_blocks, n_blocks * j.block, slice_range, &j);
    return QKV_OK;
}

static qkv_status slice1_compute(const void *state, qkv_kernel_io *io)
{
    slice_plan plan;
    qkv_status st = slice1_plan(state, io, &plan);
    return st != QKV_OK ? st : slice_run(io, &plan);
}

static qkv_status slice10_compute(const void *state, qkv_kernel_io *io)
{
    (void)state;
    slice_plan plan;
    bool known;
    qkv_status st = slice10_plan(io, &plan, &known);
    if (st == QKV_OK && !known)
        st = KERR(io, QKV_ERR_INTERNAL, "slice parameters not known at compute");
    return st != QKV_OK ? st : slice_run(io, &plan);
}

static const qkv_kernel kernels[] = {
    {
        QKV_KERNEL_V1,
        .domain = "",
        .op_type = "Slice",
        .since_version = 1,
        .until_version = 9,
        .min_inputs = 1,
        .max_inputs = 1,
        .min_outputs = 1,
        .max_outputs = 1,
        .n_input_types = 1,
        .input_types = {QKV_TYPES_BYTES},
        .init = slice1_init,
        .infer = slice1_infer,
        .compute = slice1_compute,
        .destroy = slice_destroy,
    },
    {
        QKV_KERNEL_V1,
        .domain = "",
        .op_type = "Slice",
        .since_version = 10,
        .min_inputs = 3,
        .max_inputs = 5,
        .min_outputs = 1,
        .max_outputs = 1,
        .n_input_types = 2,
        .input_types = {QKV_TYPES_BYTES, QKV_TYPES_INDEX},
        .infer = slice10_infer,
        .compute = slice10_compute,
    },
};

/* The slice family: Slice. */
const qkv_kernel *qkv_ops_slice(size_t *count)
{
    *count = sizeof kernels / sizeof kernels[0];
    return kernels;
}
