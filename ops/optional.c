/*
 * optional.c - Optional, OptionalHasElement, OptionalGetElement (opsets 15
 * and 18).
 *
 * Optional wraps a tensor or a sequence; with no input it makes an empty
 * optional of the type its `type` attribute gives (a TYPE_PROTO, which the
 * host reads as {kind, element dtype}: qkv_plugin.h attr_ints), else of
 * the kind and element type the model declares for its output. OptionalHasElement-18 also takes a tensor or a sequence (true)
 * and an omitted input (false); OptionalGetElement-18 also takes a tensor
 * or a sequence and returns it. Getting the element of an empty optional is
 * QKV_ERR_INVALID_ARGUMENT. An optional of an optional is not supported.
 */
#include <stdlib.h>
#include <string.h>

#include "value_io.h"

static qkv_status opt_init(const qkv_kernel *kernel, const qkv_host_api *host,
                           const qkv_node_ctx *node, void **state)
{
    (void)kernel;
    (void)state;
    return qkv_value_services_check(host, node);
}

/* ---- Optional ------------------------------------------------------------------ */

/* Optional's `type` attribute: the element's kind and type. */
typedef struct optional_attrs {
    bool given;
    qkv_type_kind kind; /* a tensor or a sequence */
    qkv_dtype dtype;
} optional_attrs;

static qkv_status optional_init(const qkv_kernel *kernel, const qkv_host_api *host,
                                const qkv_node_ctx *node, void **state)
{
    qkv_status st = opt_init(kernel, host, node, state);
    const int64_t *type = NULL;
    size_t n = 0;
    if (st != QKV_OK || host->attr_type(node, "type") == QKV_ATTR_UNDEFINED)
        return st;
    if ((st = host->attr_ints(node, "type", &type, &n)) != QKV_OK)
        return st;
    if (n != 2 || (type[0] != QKV_KIND_TENSOR && type[0] != QKV_KIND_SEQUENCE) || type[1] < 0 ||
        type[1] >= QKV_DTYPE_COUNT)
        return host->node_error(node, QKV_ERR_UNSUPPORTED,
                                "attribute 'type' must be a tensor or a sequence type (an "
                                "optional of an optional is not supported)");
    optional_attrs *a = malloc(sizeof *a);
    if (!a)
        return host->node_error(node, QKV_ERR_OUT_OF_MEMORY, "out of memory");
    *a = (optional_attrs){
        .given = true, .kind = (qkv_type_kind)type[0], .dtype = (qkv_dtype)type[1]};
    *state = a;
    return QKV_OK;
}

static void optional_destroy(void *state) { free(state); }

static qkv_status optional_infer(void *state, qkv_kernel_io *io)
{
    const optional_attrs *a = state;
    if (!qkv_value_present(io, 0) && a)
        return qkv_set_output_value(io, 0, QKV_KIND_OPTIONAL | a->kind, a->dtype);
    if (!qkv_value_present(io, 0)) {
        qkv_type_kind declared = qkv_output_kind(io, 0);
        return qkv_set_output_value(io, 0,
                                    (declared & QKV_KIND_OPTIONAL) ? declared : QKV_KIND_OPTIONAL,
                                    QKV_DTYPE_UNDEFINED);
    }
    switch (qkv_input_kind(io, 0)) {
    case QKV_KIND_TENSOR:
        return qkv_set_output_value(io, 0, QKV_KIND_OPTIONAL, io->inputs[0].dtype);
    case QKV_KIND_SEQUENCE:
        return qkv_set_output_value(io, 0, QKV_KIND_OPTIONAL_SEQUENCE, io->inputs[0].dtype);
    default:
        return KERR(io, QKV_ERR_UNSUPPORTED, "an optional of an optional");
    }
}

static qkv_status optional_compute(const void *state, qkv_kernel_io *io)
{
    (void)state;
    if (!qkv_value_present(io, 0))
        return QKV_OK; /* the host hands over every optional output empty */
    if (qkv_input_kind(io, 0) == QKV_KIND_TENSOR)
        return qkv_value_push(io, 0, &io->inputs[0]);
    size_t n;
    qkv_status st = io->host->value_length(io, 0, &n);
    if (st == QKV_OK)
        st = io->host->value_set_has_element(io, 0, 1);
    if (st == QKV_OK)
        st = qkv_value_copy_range(io, 0, 0, n, 0);
    return st;
}

/* ---- OptionalHasElement ------------------------------------------------------------ */

static qkv_status has_infer(void *state, qkv_kernel_io *io)
{
    (void)state;
    qkv_set_shape(&io->outputs[0], QKV_DTYPE_BOOL, 0, NULL);
    return QKV_OK;
}

/* Opset 15: the input must be an optional. */
static qkv_status has15_infer(void *state, qkv_kernel_io *io)
{
    if (!(qkv_input_kind(io, 0) & QKV_KIND_OPTIONAL))
        return KERR(io, QKV_ERR_TYPE, "input 0 must be an optional (opset 15)");
    return has_infer(state, io);
}

static qkv_status has_compute(const void *state, qkv_kernel_io *io)
{
    (void)state;
    int has = qkv_value_present(io, 0);
    if (has && (qkv_input_kind(io, 0) & QKV_KIND_OPTIONAL)) {
        qkv_status st = io->host->value_has_element(io, 0, &has);
        if (st != QKV_OK)
            return st;
    }
    *(unsigned char *)io->outputs[0].data = has ? 1 : 0;
    return QKV_OK;
}

/* ---- OptionalGetElement ------------------------------------------------------------- */

/* The tensor an optional tensor holds (contents known). */
static qkv_status get_tensor(qkv_kernel_io *io, qkv_tensor *out)
{
    int has;
    qkv_status st = io->host->value_has_element(io, 0, &has);
    if (st != QKV_OK)
        return st;
    if (!has)
        return KERR(io, QKV_ERR_INVALID_ARGUMENT, "input 0 is an empty optional");
    return io->host->value_element(io, 0, 0, out);
}

static qkv_status get_infer(void *state, qkv_kernel_io *io)
{
    (void)state;
    const qkv_tensor *x = &io->inputs[0];
    qkv_tensor *y = &io->outputs[0];
    switch (qkv_input_kind(io, 0)) {
    case QKV_KIND_TENSOR:
        qkv_set_shape(y, x->dtype, x->rank, x->dims);
        return QKV_OK;
    case QKV_KIND_SEQUENCE:
    case QKV_KIND_OPTIONAL_SEQUENCE:
        return qkv_set_output_value(io, 0, QKV_KIND_SEQUENCE, x->dtype);
    case QKV_KIND_OPTIONAL:
        break;
    default:
        return KERR(io, QKV_ERR_UNSUPPORTED, "input 0 of an unknown kind");
    }
    y->dtype = x->dtype;
    y->rank = -1; /* known only from the contents, at run time */
    if (!qkv_value_known(io, 0))
        return QKV_OK;
    qkv_tensor e;
    qkv_status st = get_tensor(io, &e);
    if (st != QKV_OK)
        return st;
    if (e.dtype == QKV_DTYPE_STRING)
        return KERR(io, QKV_ERR_UNSUPPORTED, "OptionalGetElement of a string tensor");
    qkv_set_shape(y, e.dtype, e.rank, e.dims);
    return QKV_OK;
}

static qkv_status get_compute(const void *state, qkv_kernel_io *io)
{
    (void)state;
    qkv_type_kind kind = qkv_input_kind(io, 0);
    if (kind & QKV_KIND_SEQUENCE) {
        int has = 1;
        size_t n;
        qkv_status st = io->host->value_has_element(io, 0, &has);
        if (st == QKV_OK && !has)
            st = KERR(io, QKV_ERR_INVALID_ARGUMENT, "input 0 is an empty optional");
        if (st == QKV_OK)
            st = io->host->value_length(io, 0, &n);
        if (st == QKV_OK)
            st = qkv_value_copy_range(io, 0, 0, n, 0);
        return st;
    }
    qkv_tensor e = io->inputs[0];
    if (kind == QKV_KIND_OPTIONAL) {
        qkv_status st = get_tensor(io, &e);
        if (st != QKV_OK)
            return st;
    }
    if (e.data_bytes != io->outputs[0].data_bytes)
        return KERR(io, QKV_ERR_SHAPE, "the element has %zu bytes, the output %zu", e.data_bytes,
                    io->outputs[0].data_bytes);
    if (e.data_bytes && e.data != io->outputs[0].data)
        memcpy(io->outputs[0].data, e.data, e.data_bytes);
    return QKV_OK;
}

#define OPT_KERNEL(op, since, until, lo, infer_fn, compute_fn)                                     \
    {                                                                                              \
        QKV_KERNEL_V1, .domain = "", .op_type = op, .since_version = since,                        \
                       .until_version = until, .min_inputs = lo, .max_inputs = 1,                  \
                       .min_outputs = 1, .max_outputs = 1, .flags = QKV_KERNEL_VALUES,             \
                       .init = opt_init, .infer = infer_fn, .compute = compute_fn,                 \
    }

static const qkv_kernel kernels[] = {
    {QKV_KERNEL_V1, .domain = "", .op_type = "Optional", .since_version = 15, .until_version = 0,
     .min_inputs = 0, .max_inputs = 1, .min_outputs = 1, .max_outputs = 1,
     .flags = QKV_KERNEL_VALUES, .init = optional_init, .infer = optional_infer,
     .compute = optional_compute, .destroy = optional_destroy},
    OPT_KERNEL("OptionalHasElement", 15, 17, 1, has15_infer, has_compute),
    OPT_KERNEL("OptionalHasElement", 18, 0, 0, has_infer, has_compute),
    OPT_KERNEL("OptionalGetElement", 15, 0, 1, get_infer, get_compute),
};

const qkv_kernel *qkv_ops_optional(size_t *count)
{
    *count = sizeof kernels / sizeof kernels[0];
    return kernels;
}
