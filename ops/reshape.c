/*
 * reshape.c - the view ops: Reshape (opsets 1, 5, 13, 14, 19, 21), Flatten
 * (1, 9, 11, 13, 21), Squeeze and Unsqueeze (1, 11, 13, 21).
 *
 * Each output holds its input's bytes unchanged, so all four are
 * QKV_KERNEL_ALIAS: the planner makes the output a view and compute only
 * runs (a memcpy) when it could not. The work is in infer: turning the shape,
 * axis or axes into output dims and refusing anything inconsistent.
 *
 * Forms: Reshape-1 takes `shape` as an attribute, 5+ as input 1 (allowzero
 * from 14). Squeeze/Unsqueeze 1 and 11 take `axes` as an attribute, 13+ as
 * input 1 (optional for Squeeze: absent squeezes every dim of size 1).
 * Negative axes are refused below opset 11, as the spec says.
 *
 * Deviations: int32 shape/axes inputs are accepted as well as int64. An
 * empty axes input to Squeeze squeezes nothing (as numpy and ONNX shape
 * inference do). Strings are not accepted (their elements are owned pointers a
 * byte copy would share). Reshape-1's `consumed_inputs` is ignored. A -1 in
 * Reshape whose other dims have product 0 is refused as ambiguous (numpy and
 * PyTorch refuse it too).
 */
#include <stdlib.h>
#include <string.h>

#include "kernel_util.h"

/* Every dtype whose bytes may be copied as they are (all but strings). */
#define BYTES_TYPES ((QKV_DTYPE_BIT(QKV_DTYPE_COUNT) - 1) & ~QKV_T(UNDEFINED) & ~QKV_T(STRING))

typedef struct view_state {
    int64_t opset;
    int64_t allowzero; /* Reshape-14+ */
    int64_t axis;      /* Flatten */
    bool has_list;     /* `shape` / `axes` came as an attribute */
    size_t n;
    int64_t list[QKV_MAX_RANK]; /* the attribute's values */
} view_state;

/* ---- init ------------------------------------------------------------------- */

/* Allocates the state and reads the INTS attribute `list_attr` (NULL: none)
 * into it; `required` refuses a missing one. */
static qkv_status view_init_common(const qkv_host_api *host, const qkv_node_ctx *node,
                                   const char *list_attr, bool required, void **state)
{
    view_state *s = calloc(1, sizeof *s);
    if (!s)
        return NERR(host, node, QKV_ERR_OUT_OF_MEMORY, "kernel state");
    s->opset = host->node_opset(node);
    if (list_attr) {
        const int64_t *v = NULL;
        size_t n = 0;
        qkv_status st = host->attr_ints(node, list_attr, &v, &n);
        if (st != QKV_OK) {
            free(s);
            return st;
        }
        if (required && !v) {
            free(s);
            return NERR(host, node, QKV_ERR_INVALID_MODEL, "attribute '%s' is required", list_attr);
        }
        if (n > QKV_MAX_RANK) {
            free(s);
            return NERR(host, node, QKV_ERR_UNSUPPORTED,
                        "attribute '%s' has %zu values, at most %d supported", list_attr, n,
                        QKV_MAX_RANK);
        }
        s->has_list = v != NULL;
        s->n = n;
        for (size_t i = 0; i < n; i++)
            s->list[i] = v[i];
    }
    *state = s;
    return QKV_OK;
}

static qkv_status reshape1_init(const qkv_kernel *k, const qkv_host_api *host,
                                const qkv_node_ctx *node, void **state)
{
    (void)host;
    (void)k;
    return view_init_common(host, node, "shape", false, state);
}

static qkv_status reshape5_init(const qkv_kernel *k, const qkv_host_api *host,
                                const qkv_node_ctx *node, void **state)
{
    (void)k;
    qkv_status st = view_init_common(host, node, NULL, false, state);
    if (st != QKV_OK)
        return st;
    view_state *s = *state;
    st = host->attr_int(node, "allowzero", 0, &s->allowzero);
    if (st == QKV_OK && s->allowzero != 0 && s->allowzero != 1)
        st = NERR(host, node, QKV_ERR_INVALID_MODEL,
                  "attribute 'allowzero' is %lld, expected 0 or 1", (long long)s->allowzero);
    if (st != QKV_OK) {
        free(s);
        *state = NULL;
    }
    return st;
}

static qkv_status flatten_init(const qkv_kernel *k, const qkv_host_api *host,
                               const qkv_node_ctx *node, void **state)
{
    (void)k;
    qkv_status st = view_init_common(host, node, NULL, false, state);
    if (st != QKV_OK)
        return st;
    view_state *s = *state;
    st = host->attr_int(node, "axis", 1, &s->axis);
    if (st == QKV_OK && s->axis < 0 && s->opset < 11)
        st = NERR(host, node, QKV_ERR_INVALID_MODEL,
                  "attribute 'axis' is %lld; negative axes need opset 11", (long long)s->axis);
    if (st != QKV_OK) {
        free(s);
        *state = NULL;
    }
    return st;
}

/* Squeeze-1/11 and Unsqueeze-1/11: `axes` attribute (required by Unsqueeze). */
static qkv_status axes_attr_init(const qkv_kernel *k, const qkv_host_api *host,
                                 const qkv_node_ctx *node, void **state)
{
    bool unsqueeze = strcmp(k->op_type, "Unsqueeze") == 0;
    qkv_status st = view_init_common(host, node, "axes", unsqueeze, state);
    if (st != QKV_OK)
        return st;
    view_state *s = *state;
    for (size_t i = 0; i < s->n; i++)
        if (s->list[i] < 0 && s->opset < 11) {
            st = NERR(host, node, QKV_ERR_INVALID_MODEL,
                      "axes[%zu] is %lld; negative axes need opset 11", i, (long long)s->list[i]);
            free(s);
            *state = NULL;
            return st;
        }
    return QKV_OK;
}

/* Squeeze-13/Unsqueeze-13: axes come as input 1. */
static qkv_status axes_input_init(const qkv_kernel *k, const qkv_host_api *host,
                                  const qkv_node_ctx *node, void **state)
{
    (void)host;
    (void)k;
    return view_init_common(host, node, NULL, false, state);
}

static void view_destroy(void *state) { free(state); }

/* ---- shared infer helpers ----------------------------------------------------- */

/* Copies the input when the host could not make the output a view. */
static qkv_status view_compute(const void *state, qkv_kernel_io *io)
{
    (void)state;
    const qkv_tensor *x = &io->inputs[0];
    qkv_tensor *y = &io->outputs[0];
    if (y->data != x->data && x->data_bytes)
        memcpy(y->data, x->data, x->data_bytes);
    return QKV_OK;
}

/*
 * Sets output 0 to dtype of x, rank `rank` and all dims unknown: for an
 * output whose dims depend on an input value not known yet. rank -1 too
 * when unknown.
 */
static qkv_status unknown_dims(qkv_kernel_io *io, int64_t rank)
{
    qkv_tensor *y = &io->outputs[0];
    y->dtype = io->inputs[0].dtype;
    if (rank > QKV_MAX_RANK)
        return KERR(io, QKV_ERR_UNSUPPORTED, "output rank %lld exceeds the maximum %d",
                    (long long)rank, QKV_MAX_RANK);
    y->rank = rank < 0 ? -1 : (int32_t)rank;
    for (int32_t k = 0; k < y->rank; k++)
        y->dims[k] = -1;
    return QKV_OK;
}

/* Length of a 1-D (or 0-D: 1) int input whose value is not known; -1 if
 * its shape is not known either. */
static int64_t list_input_length(const qkv_tensor *t)
{
    if (t->rank == 0)
        return 1;
    if (t->rank == 1)
        return t->dims[0];
    return -1;
}

/*
 * Product of dims[from..to) of t into *out: -1 when some dim is unknown
 * (unless a known dim is 0, which makes the product 0 anyway).
 * QKV_ERR_SHAPE when it overflows int64.
 */
static qkv_status dims_product(qkv_kernel_io *io, const qkv_tensor *t, int32_t from, int32_t to,
                               int64_t *out)
{
    int64_t p = 1;
    bool unknown = false;
    for (int32_t k = from; k < to; k++) {
        int64_t d = t->dims[k];
        if (d < 0) {
            unknown = true;
            continue;
        }
        if (d == 0) {
            *out = 0;
            return QKV_OK;
        }
        if (__builtin_mul_overflow(p, d, &p))
            return KERR(io, QKV_ERR_SHAPE, "the product of input 0's dims overflows");
    }
    *out = unknown ? -1 : p;
    return QKV_OK;
}

/* ---- Reshape ------------------------------------------------------------------- */

/*
 * Output dims of reshaping x into `shape` (n values): 0 copies x's dim
 * (unless allowzero), one -1 takes what is left. Unknown parts of x leave
 * the matching output dims -1. Errors (QKV_ERR_SHAPE): two -1, a value
 * below -1, a 0 past x's rank, 0 and -1 together with allowzero, element
 * counts that do not match.
 */
static qkv_status reshape_dims(qkv_kernel_io *io, const int64_t *shape, size_t n, bool allowzero)
{
    const qkv_tensor *x = &io->inputs[0];
    qkv_tensor *y = &io->outputs[0];
    char xs[160], ys[160];
    if (n > QKV_MAX_RANK)
        return KERR(io, QKV_ERR_UNSUPPORTED, "target shape has %zu dims, at most %d supported", n,
                    QKV_MAX_RANK);
    y->dtype = x->dtype;
    y->rank = (int32_t)n;
    int32_t infer_at = -1;
    bool has_zero = false, all_known = true;
    int64_t known = 1; /* product of the output dims other than the -1 */
    for (size_t i = 0; i < n; i++) {
        int64_t s = shape[i], d;
        if (s == -1) {
            if (infer_at >= 0)
                return KERR(io, QKV_ERR_SHAPE,
                            "target shape has -1 at both index %d and %zu; at most one allowed",
                            infer_at, i);
            infer_at = (int32_t)i;
            y->dims[i] = -1;
            continue;
        }
        if (s < -1)
            return KERR(io, QKV_ERR_SHAPE, "target shape[%zu] is %lld, expected >= -1", i,
                        (long long)s);
        if (s == 0 && !allowzero) {
            if (x->rank >= 0 && (int64_t)i >= x->rank)
                return KERR(io, QKV_ERR_SHAPE,
                            "target shape[%zu] is 0 (copy the input dim) but input 0 'data' "
                            "has rank %d",
                            i, x->rank);
            d = x->rank < 0 ? -1 : x->dims[i];
        } else {
            d = s;
            has_zero = has_zero || s == 0;
        }
        y->dims[i] = d;
        if (d < 0)
            all_known = false;
        else if (__builtin_mul_overflow(known, d, &known))
            return KERR(io, QKV_ERR_SHAPE, "target shape's element count overflows");
    }
    if (allowzero && has_zero && infer_at >= 0)
        return KERR(io, QKV_ERR_SHAPE, "target shape has both 0 and -1, which allowzero=1 forbids");
    if (!qkv_shape_known(x) || !all_known)
        return QKV_OK; /* the -1 (if any) stays unknown */
    int64_t total = (int64_t)qkv_numel(x);
    if (infer_at >= 0) {
        if (known == 0)
            return KERR(io, QKV_ERR_SHAPE,
                        "cannot infer the -1 of the target shape: the other dims have product 0 "
                        "(input 0 'data' is %s)",
                        qkv_dims_str(x, xs, sizeof xs));
        if (total % known != 0) {
            y->dims[infer_at] = -1;
            return KERR(io, QKV_ERR_SHAPE,
                        "cannot reshape input 0 'data' of shape %s (%lld elements) into %s: "
                        "%lld is not a multiple of %lld",
                        qkv_dims_str(x, xs, sizeof xs), (long long)total,
                        qkv_dims_str(y, ys, sizeof ys), (long long)total, (long long)known);
        }
        y->dims[infer_at] = total / known;
    } else if (known != total) {
        return KERR(io, QKV_ERR_SHAPE,
                    "cannot reshape input 0 'data' of shape %s (%lld elements) into %s (%lld "
                    "elements)",
                    qkv_dims_str(x, xs, sizeof xs), (long long)total,
                    qkv_dims_str(y, ys, sizeof ys), (long long)known);
    }
    return QKV_OK;
}

static qkv_status reshape1_infer(void *state, qkv_kernel_io *io)
{
    const view_state *s = state;
    return reshape_dims(io, s->list, s->n, false);
}

static qkv_status reshape5_infer(void *state, qkv_kernel_io *io)
{
    const view_state *s = state;
    const qkv_tensor *shape = &io->inputs[1];
    if (shape->rank >= 0 && shape->rank != 1)
        return KERR(io, QKV_ERR_SHAPE, "input 1 'shape' has rank %d, expected 1", shape->rank);
    int64_t v[QKV_MAX_RANK];
    size_t n;
    qkv_status st = qkv_read_ints(io, 1, v, QKV_MAX_RANK, &n);
    if (st != QKV_OK)
        return st;
    if (n == SIZE_MAX)
        return unknown_dims(io, list_input_length(shape));
    return reshape_dims(io, v, n, s->allowzero != 0);
}

/* ---- Flatten ----------------------------------------------------------------- */

static qkv_status flatten_infer(void *state, qkv_kernel_io *io)
{
    const view_state *s = state;
    const qkv_tensor *x = &io->inputs[0];
    qkv_tensor *y = &io->outputs[0];
    y->dtype = x->dtype;
    y->rank = 2;
    if (x->rank < 0) {
        y->dims[0] = y->dims[1] = -1;
        return QKV_OK;
    }
    int64_t axis = s->axis < 0 ? s->axis + x->rank : s->axis;
    if (axis < 0 || axis > x->rank)
        return KERR(io, QKV_ERR_SHAPE, "axis %lld is out of range for input 0 'input' of rank %d",
                    (long long)s->axis, x->rank);
    qkv_status st = dims_product(io, x, 0, (int32_t)axis, &y->dims[0]);
    if (st == QKV_OK)
        st = dims_product(io, x, (int32_t)axis, x->rank, &y->dims[1]);
    return st;
}

/* ---- Squeeze / Unsqueeze --------------------------------------------------------- */

/*
 * The axes of Squeeze/Unsqueeze: from the attribute, from input 1, or none.
 * *n = SIZE_MAX when input 1 is present but its value unknown; *given false
 * when there are no axes at all (Squeeze: squeeze every 1).
 */
static qkv_status read_axes(const view_state *s, qkv_kernel_io *io, int64_t *axes, size_t *n,
                            bool *given)
{
    *given = true;
    if (s->has_list) {
        memcpy(axes, s->list, s->n * sizeof *axes);
        *n = s->n;
        return QKV_OK;
    }
    if (!qkv_present(io, 1)) {
        *given = false;
        *n = 0;
        return QKV_OK;
    }
    const qkv_tensor *t = &io->inputs[1];
    if (t->rank > 1)
        return KERR(io, QKV_ERR_SHAPE, "input 1 'axes' has rank %d, expected 1", t->rank);
    return qkv_read_ints(io, 1, axes, QKV_MAX_RANK, n);
}

/* Normalises axes[0..n) against `rank` into `marked` (true at each axis);
 * QKV_ERR_SHAPE for an axis out of range or given twice. */
static qkv_status mark_axes(qkv_kernel_io *io, const int64_t *axes, size_t n, int32_t rank,
                            const char *rank_what, bool marked[QKV_MAX_RANK])
{
    for (int32_t k = 0; k < QKV_MAX_RANK; k++)
        marked[k] = false;
    for (size_t i = 0; i < n; i++) {
        int32_t a;
        if (!qkv_axis_normalize(axes[i], rank, false, &a))
            return KERR(io, QKV_ERR_SHAPE, "axes[%zu] = %lld is out of range for %s rank %d", i,
                        (long long)axes[i], rank_what, rank);
        if (marked[a])
            return KERR(io, QKV_ERR_SHAPE, "axes[%zu] = %lld repeats axis %d", i,
                        (long long)axes[i], a);
        marked[a] = true;
    }
    return QKV_OK;
}

static qkv_status squeeze_infer(void *state, qkv_kernel_io *io)
{
    const view_state *s = state;
    const qkv_tensor *x = &io->inputs[0];
    qkv_tensor *y = &io->outputs[0];
    int64_t axes[QKV_MAX_RANK];
    size_t n;
    bool given;
    qkv_status st = read_axes(s, io, axes, &n, &given);
    if (st != QKV_OK)
        return st;
    y->dtype = x->dtype;
    if (x->rank < 0)
        return unknown_dims(io, -1);
    if (n == SIZE_MAX) {
        int64_t len = list_input_length(&io->inputs[1]);
        return unknown_dims(io, len < 0 ? -1 : x->rank - len);
    }
    bool marked[QKV_MAX_RANK];
    if (given) {
        st = mark_axes(io, axes, n, x->rank, "input 0 'data' of", marked);
        if (st != QKV_OK)
            return st;
        for (int32_t k = 0; k < x->rank; k++)
            if (marked[k] && x->dims[k] != 1 && x->dims[k] >= 0) {
                char xs[160];
                return KERR(io, QKV_ERR_SHAPE,
                            "cannot squeeze axis %d of input 0 'data' of shape %s: its size is "
                            "%lld, not 1",
                            k, qkv_dims_str(x, xs, sizeof xs), (long long)x->dims[k]);
            }
    } else {
        for (int32_t k = 0; k < x->rank; k++) {
            if (x->dims[k] < 0) /* whether it is 1 decides the rank */
                return unknown_dims(io, -1);
            marked[k] = x->dims[k] == 1;
        }
    }
    int32_t r = 0;
    for (int32_t k = 0; k < x->rank; k++)
        if (!marked[k])
            y->dims[r++] = x->dims[k];
    y->rank = r;
    return QKV_OK;
}

static qkv_status unsqueeze_infer(void *state, qkv_kernel_io *io)
{
    const view_state *s = state;
    const qkv_tensor *x = &io->inputs[0];
    qkv_tensor *y = &io->outputs[0];
    int64_t axes[QKV_MAX_RANK];
    size_t n;
    bool given;
    qkv_status st = read_axes(s, io, axes, &n, &given);
    if (st != QKV_OK)
        return st;
    y->dtype = x->dtype;
    if (!given)
        return KERR(io, QKV_ERR_INVALID_MODEL, "input 1 'axes' is required");
    if (x->rank < 0)
        return unknown_dims(io, -1);
    if (n == SIZE_MAX) {
        int64_t len = list_input_length(&io->inputs[1]);
        return unknown_dims(io, len < 0 ? -1 : x->rank + len);
    }
    int64_t out_rank = x->rank + (int64_t)n;
    if (out_rank > QKV_MAX_RANK)
        return KERR(io, QKV_ERR_UNSUPPORTED, "output rank %lld exceeds the maximum %d",
                    (long long)out_rank, QKV_MAX_RANK);
    bool marked[QKV_MAX_RANK];
    st = mark_axes(io, axes, n, (int32_t)out_rank, "output", marked);
    if (st != QKV_OK)
        return st;
    int32_t from = 0;
    for (int32_t k = 0; k < out_rank; k++)
        y->dims[k] = marked[k] ? 1 : x->dims[from++];
    y->rank = (int32_t)out_rank;
    return QKV_OK;
}

/* ---- descriptors ----------------------------------------------------------------- */

#define VIEW_KERNEL(op, since, until, min_in, max_in, init_fn, infer_fn)                           \
    {                                                                                              \
        QKV_KERNEL_V1, .domain = "", .op_type = op, .since_version = since,                        \
                       .until_version = until, .min_inputs = min_in, .max_inputs = max_in,         \
                       .min_outputs = 1, .max_outputs = 1, .n_input_types = 2,                     \
                       .input_types = {BYTES_TYPES, QKV_TYPES_INDEX}, .flags = QKV_KERNEL_ALIAS,   \
                       .init = init_fn, .infer = infer_fn, .compute = view_compute,                \
                       .destroy = view_destroy,                                                    \
    }

static const qkv_kernel kernels[] = {
    VIEW_KERNEL("Reshape", 1, 4, 1, 1, reshape1_init, reshape1_infer),
    VIEW_KERNEL("Reshape", 5, 0, 2, 2, reshape5_init, reshape5_infer),
    VIEW_KERNEL("Flatten", 1, 0, 1, 1, flatten_init, flatten_infer),
    VIEW_KERNEL("Squeeze", 1, 12, 1, 1, axes_attr_init, squeeze_infer),
    VIEW_KERNEL("Squeeze", 13, 0, 1, 2, axes_input_init, squeeze_infer),
    VIEW_KERNEL("Unsqueeze", 1, 12, 1, 1, axes_attr_init, unsqueeze_infer),
    VIEW_KERNEL("Unsqueeze", 13, 0, 2, 2, axes_input_init, unsqueeze_infer),
};

/* The view family: Reshape, Flatten, Squeeze, Unsqueeze. */
const qkv_kernel *qkv_ops_reshape(size_t *count)
{
    *count = sizeof kernels / sizeof kernels[0];
    return kernels;
}
