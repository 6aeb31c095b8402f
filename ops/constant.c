/*
 * constant.c - Constant (opsets 1, 9, 11, 12, 13, 19, 21) and
 * ConstantOfShape (9, 20, 21).
 *
 * Constant: exactly one of the attributes value (a tensor), value_float,
 * value_floats, value_int, value_ints gives the output. Its value is copied
 * into the state at init; compute copies it out. The session usually turns
 * Constant nodes into initializers, so compute seldom runs.
 *
 * ConstantOfShape: output dims are the values of input 0 (int64, 1-D; an
 * empty one gives a scalar, zero dims are allowed), every element the one
 * element of the `value` tensor attribute (default float 0).
 *
 * Deviations: string values (value_string, value_strings, a string tensor)
 * and sparse_value are QKV_ERR_UNSUPPORTED; so are sub-byte element types
 * for ConstantOfShape's value (a Constant of them is copied as bytes).
 */
#include <stdlib.h>
#include <string.h>

#include "kernel_util.h"
#include "qkv.h"
#include "size_math.h"

/* ---- Constant ------------------------------------------------------------------ */

typedef struct const_state {
    qkv_tensor value; /* data owned by the state */
} const_state;

static void const_destroy(void *state)
{
    const_state *s = state;
    if (s)
        free(s->value.data);
    free(s);
}

/* The value attributes; exactly one must be present. */
static const char *const value_attrs[] = {"value",        "sparse_value", "value_float",
                                          "value_floats", "value_int",    "value_ints",
                                          "value_string", "value_strings"};

/* Fills s->value from the one present attribute `name`. */
static qkv_status const_read(const qkv_host_api *host, const qkv_node_ctx *node, const char *name,
                             const_state *s)
{
    qkv_tensor *v = &s->value;
    qkv_status st;
    if (strcmp(name, "value") == 0) {
        const qkv_tensor *t = NULL;
        if ((st = host->attr_tensor(node, name, &t)) != QKV_OK)
            return st;
        if (t->dtype == QKV_DTYPE_STRING)
            return NERR(host, node, QKV_ERR_UNSUPPORTED,
                        "attribute 'value' is a string tensor; strings are not supported");
        size_t elems, bytes;
        if (t->rank < 0 || t->rank > QKV_MAX_RANK ||
            !qkv_shape_elements(t->dims, t->rank, &elems) ||
            !qkv_dtype_storage_bytes(t->dtype, elems, &bytes) || bytes != t->data_bytes ||
            (bytes && !t->data))
            return NERR(host, node, QKV_ERR_INVALID_MODEL,
                        "attribute 'value' has %zu bytes of data, which does not match its type "
                        "%s and shape",
                        t->data_bytes, qkv_dtype_name(t->dtype));
        *v = *t;
        v->data = malloc(bytes ? bytes : 1);
        if (!v->data)
            return NERR(host, node, QKV_ERR_OUT_OF_MEMORY, "copy of attribute 'value'");
        if (bytes)
            memcpy(v->data, t->data, bytes);
        return QKV_OK;
    }
    if (strcmp(name, "value_float") == 0 || strcmp(name, "value_int") == 0) {
        bool is_float = name[6] == 'f';
        v->rank = 0;
        v->dtype = is_float ? QKV_DTYPE_FLOAT : QKV_DTYPE_INT64;
        v->data_bytes = is_float ? sizeof(float) : sizeof(int64_t);
        v->data = malloc(v->data_bytes);
        if (!v->data)
            return NERR(host, node, QKV_ERR_OUT_OF_MEMORY, "constant value");
        if (is_float)
            return host->attr_float(node, name, 0.0f, v->data);
        return host->attr_int(node, name, 0, v->data);
    }
    if (strcmp(name, "value_floats") == 0 || strcmp(name, "value_ints") == 0) {
        bool is_float = name[6] == 'f';
        const void *src = NULL;
        size_t n = 0;
        if (is_float)
            st = host->attr_floats(node, name, (const float **)&src, &n);
        else
            st = host->attr_ints(node, name, (const int64_t **)&src, &n);
        if (st != QKV_OK)
            return st;
        v->rank = 1;
        v->dims[0] = (int64_t)n;
        v->dtype = is_float ? QKV_DTYPE_FLOAT : QKV_DTYPE_INT64;
        v->data_bytes = n * (is_float ? sizeof(float) : sizeof(int64_t));
        v->data = malloc(v->data_bytes ? v->data_bytes : 1);
        if (!v->data)
            return NERR(host, node, QKV_ERR_OUT_OF_MEMORY, "constant value");
        if (n)
            memcpy(v->data, src, v->data_bytes);
        return QKV_OK;
    }
    return NERR(host, node, QKV_ERR_UNSUPPORTED, "attribute '%s' is not supported", name);
}

static qkv_status const_init(const qkv_kernel *k, const qkv_host_api *host,
                             const qkv_node_ctx *node, void **state)
{
    (void)k;
    const char *which = NULL;
    size_t count = 0;
    for (size_t i = 0; i < sizeof value_attrs / sizeof value_attrs[0]; i++)
        if (host->attr_type(node, value_attrs[i]) != QKV_ATTR_UNDEFINED) {
            which = value_attrs[i];
            count++;
        }
    if (count != 1)
        return NERR(host, node, QKV_ERR_INVALID_MODEL,
                    "expected exactly one of the attributes value, sparse_value, value_float, "
                    "value_floats, value_int, value_ints, value_string, value_strings; got %zu",
                    count);
    const_state *s = calloc(1, sizeof *s);
    if (!s)
        return NERR(host, node, QKV_ERR_OUT_OF_MEMORY, "kernel state");
    qkv_status st = const_read(host, node, which, s);
    if (st != QKV_OK) {
        const_destroy(s);
        return st;
    }
    *state = s;
    return QKV_OK;
}

static qkv_status const_infer(void *state, qkv_kernel_io *io)
{
    const const_state *s = state;
    qkv_set_shape(&io->outputs[0], s->value.dtype, s->value.rank, s->value.dims);
    return QKV_OK;
}

static qkv_status const_compute(const void *state, qkv_kernel_io *io)
{
    const const_state *s = state;
    if (s->value.data_bytes)
        memcpy(io->outputs[0].data, s->value.data, s->value.data_bytes);
    return QKV_OK;
}

/* ---- ConstantOfShape ---------------------------------------------------------- */

typedef struct cos_state {
    qkv_dtype dtype;
    size_t elem_bytes;
    bool all_zero;           /* every byte of the value is 0: memset */
    unsigned char value[16]; /* the element, elem_bytes long */
} cos_state;

static qkv_status cos_init(const qkv_kernel *k, const qkv_host_api *host, const qkv_node_ctx *node,
                           void **state)
{
    (void)k;
    const qkv_tensor *t = NULL;
    qkv_status st = host->attr_tensor(node, "value", &t);
    if (st != QKV_OK)
        return st;
    cos_state *s = calloc(1, sizeof *s);
    if (!s)
        return NERR(host, node, QKV_ERR_OUT_OF_MEMORY, "kernel state");
    s->dtype = QKV_DTYPE_FLOAT;
    s->elem_bytes = sizeof(float);
    if (t) {
        size_t bits = qkv_dtype_bits(t->dtype);
        size_t elems = 0;
        if (t->dtype == QKV_DTYPE_STRING || bits < 8 || bits % 8 || bits / 8 > sizeof s->value) {
            free(s);
            return NERR(host, node, QKV_ERR_UNSUPPORTED,
                        "attribute 'value' has type %s, which is not supported",
                        qkv_dtype_name(t->dtype));
        }
        if (t->rank < 0 || t->rank > QKV_MAX_RANK ||
            !qkv_shape_elements(t->dims, t->rank, &elems) || elems != 1 ||
            t->data_bytes != bits / 8 || !t->data) {
            free(s);
            return NERR(host, node, QKV_ERR_INVALID_MODEL,
                        "attribute 'value' must hold exactly one element");
        }
        s->dtype = t->dtype;
        s->elem_bytes = bits / 8;
        memcpy(s->value, t->data, s->elem_bytes);
    }
    s->all_zero = true;
    for (size_t i = 0; i < s->elem_bytes; i++)
        s->all_zero = s->all_zero && s->value[i] == 0;
    *state = s;
    return QKV_OK;
}

static void cos_destroy(void *state) { free(state); }

static qkv_status cos_infer(void *state, qkv_kernel_io *io)
{
    const cos_state *s = state;
    const qkv_tensor *shape = &io->inputs[0];
    qkv_tensor *y = &io->outputs[0];
    y->dtype = s->dtype;
    if (shape->rank >= 0 && shape->rank != 1)
        return KERR(io, QKV_ERR_SHAPE, "input 0 'input' has rank %d, expected 1", shape->rank);
    int64_t dims[QKV_MAX_RANK];
    size_t n;
    qkv_status st = qkv_read_ints(io, 0, dims, QKV_MAX_RANK, &n);
    if (st != QKV_OK)
        return st;
    if (n == SIZE_MAX) { /* value not known yet: only the rank may be */
        y->rank = shape->rank == 1 && shape->dims[0] >= 0 ? (int32_t)shape->dims[0] : -1;
        if (y->rank > QKV_MAX_RANK)
            return KERR(io, QKV_ERR_UNSUPPORTED, "output rank %d exceeds the maximum %d", y->rank,
                        QKV_MAX_RANK);
        for (int32_t k = 0; k < y->rank; k++)
            y->dims[k] = -1;
        return QKV_OK;
    }
    for (size_t i = 0; i < n; i++)
        if (dims[i] < 0)
            return KERR(io, QKV_ERR_SHAPE, "input 0 'input'[%zu] is %lld, expected >= 0", i,
                        (long long)dims[i]);
    qkv_set_shape(y, s->dtype, (int32_t)n, dims);
    return QKV_OK;
}

/* Writes n copies of the elem_bytes-long `value` at dst. */
static void fill_elements(void *restrict dst, size_t n, const unsigned char *restrict value,
                          size_t elem_bytes)
{
    switch (elem_bytes) {
    case 1:
        memset(dst, value[0], n);
        return;
    case 2: {
        uint16_t v, *d = dst;
        memcpy(&v, value, 2);
        for (size_t i = 0; i < n; i++)
            d[i] = v;
        return;
    }
    case 4: {
        uint32_t v, *d = dst;
        memcpy(&v, value, 4);
        for (size_t i = 0; i < n; i++)
            d[i] = v;
        return;
    }
    case 8: {
        uint64_t v, *d = dst;
        memcpy(&v, value, 8);
        for (size_t i = 0; i < n; i++)
            d[i] = v;
        return;
    }
    default: {
        unsigned char *d = dst;
        for (size_t i = 0; i < n; i++)
            memcpy(d + i * elem_bytes, value, elem_bytes);
        return;
    }
    }
}

static qkv_status cos_compute(const void *state, qkv_kernel_io *io)
{
    const cos_state *s = state;
    qkv_tensor *y = &io->outputs[0];
    size_t n = qkv_numel(y);
    if (n == 0)
        return QKV_OK;
    if (s->all_zero)
        memset(y->data, 0, n * s->elem_bytes);
    else
        fill_elements(y->data, n, s->value, s->elem_bytes);
    return QKV_OK;
}

/* ---- descriptors -------------------------------------------------------------- */

static const qkv_kernel kernels[] = {
    {
        QKV_KERNEL_V1,
        .domain = "",
        .op_type = "Constant",
        .since_version = 1,
        .min_inputs = 0,
        .max_inputs = 0,
        .min_outputs = 1,
        .max_outputs = 1,
        .init = const_init,
        .infer = const_infer,
        .compute = const_compute,
        .destroy = const_destroy,
    },
    {
        QKV_KERNEL_V1,
        .domain = "",
        .op_type = "ConstantOfShape",
        .since_version = 9,
        .min_inputs = 1,
        .max_inputs = 1,
        .min_outputs = 1,
        .max_outputs = 1,
        .n_input_types = 1,
        .input_types = {QKV_TYPES_INDEX},
        .init = cos_init,
        .infer = cos_infer,
        .compute = cos_compute,
        .destroy = cos_destroy,
    },
};

/* The constant family: Constant, ConstantOfShape. */
const qkv_kernel *qkv_ops_constant(size_t *count)
{
    *count = sizeof kernels / sizeof kernels[0];
    return kernels;
}
