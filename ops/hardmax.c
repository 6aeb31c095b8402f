/*
 * hardmax.c - Hardmax (opsets 1, 11: the input flattened to 2-D at `axis`,
 * default 1; 13: one axis, default -1): 1 at the first maximum along the
 * axis, 0 elsewhere.
 *
 * Types: float, double, float16 and bfloat16 (registered from opset 1 with
 * the types of Hardmax-13, which only added bfloat16: accepting it earlier
 * is harmless). NaN counts as larger than any number (numpy argmax: the
 * first NaN wins). Not in place: every output element is written before the
 * input is read in full.
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "half.h"
#include "kernel_util.h"
#include "qkv.h"

typedef struct hardmax_attrs {
    int64_t axis;
    bool flatten; /* opsets 1 and 11 */
} hardmax_attrs;

static qkv_status hardmax_init(const qkv_kernel *kernel, const qkv_host_api *host,
                               const qkv_node_ctx *node, void **state)
{
    bool flatten = kernel->since_version < 13;
    int64_t axis;
    qkv_status st = host->attr_int(node, "axis", flatten ? 1 : -1, &axis);
    if (st != QKV_OK)
        return st;
    hardmax_attrs *s = malloc(sizeof *s);
    if (!s)
        return NERR(host, node, QKV_ERR_OUT_OF_MEMORY, "kernel state");
    s->axis = axis;
    s->flatten = flatten;
    *state = s;
    return QKV_OK;
}

/* The axis in [0, r) ([0, r] when flattening: D = 1 then); false when out of range. */
static bool hardmax_axis(const hardmax_attrs *s, int32_t r, int32_t *axis)
{
    int64_t a = s->axis < 0 ? s->axis + r : s->axis;
    if (a < 0 || a > r || (a == r && !s->flatten))
        return false;
    *axis = (int32_t)a;
    return true;
}

static qkv_status hardmax_infer(void *state, qkv_kernel_io *io)
{
    const hardmax_attrs *s = state;
    const qkv_tensor *x = &io->inputs[0];
    int32_t axis;
    if (x->rank >= 0 && !hardmax_axis(s, x->rank, &axis))
        return KERR(io, QKV_ERR_SHAPE,
                    "attribute axis=%lld is out of range for input 0 'input' of rank %d "
                    "(expected %d to %d)",
                    (long long)s->axis, x->rank, -x->rank, s->flatten ? x->rank : x->rank - 1);
    qkv_set_shape(&io->outputs[0], x->dtype, x->rank, x->dims);
    return QKV_OK;
}

/* Element i of x as double (float types only). */
static double load1(const void *x, qkv_dtype t, size_t i)
{
    switch (t) {
    case QKV_DTYPE_FLOAT:
        return ((const float *)x)[i];
    case QKV_DTYPE_DOUBLE:
        return ((const double *)x)[i];
    case QKV_DTYPE_FLOAT16:
        return qkv_f16_to_f32(((const uint16_t *)x)[i]);
    default:
        return qkv_bf16_to_f32(((const uint16_t *)x)[i]); /* BFLOAT16 */
    }
}

static qkv_status hardmax_compute(const void *state, qkv_kernel_io *io)
{
    const hardmax_attrs *s = state;
    const qkv_tensor *x = &io->inputs[0];
    qkv_tensor *y = &io->outputs[0];
    int32_t axis;
    if (!hardmax_axis(s, x->rank, &axis))
        return KERR(io, QKV_ERR_SHAPE, "attribute axis=%lld is out of range for rank %d",
                    (long long)s->axis, x->rank);
    size_t es = qkv_elem_bytes(x->dtype);
    static const float one_f = 1.0f;
    static const double one_d = 1.0;
    static const uint16_t one_h = 0x3c00u, one_bf = 0x3f80u;
    const void *one;
    switch (x->dtype) {
    case QKV_DTYPE_FLOAT:
        one = &one_f;
        break;
    case QKV_DTYPE_DOUBLE:
        one = &one_d;
        break;
    case QKV_DTYPE_FLOAT16:
        one = &one_h;
        break;
    case QKV_DTYPE_BFLOAT16:
        one = &one_bf;
        break;
    default:
        return KERR(io, QKV_ERR_TYPE, "input 0 'input' has type %s, not supported",
                    qkv_dtype_name(x->dtype));
    }
    /* (outer, d, inner) view: flattening puts every dim from axis into d */
    size_t outer = 1, d = 1, inner = 1;
    for (int32_t k = 0; k < x->rank; k++) {
        size_t dim = (size_t)x->dims[k];
        if (k < axis)
            outer *= dim;
        else if (k == axis || s->flatten)
            d *= dim;
        else
            inner *= dim;
    }
    memset(y->data, 0, y->data_bytes); /* 0 is all-zero bits in every float type */
    if (d == 0)
        return QKV_OK;
    for (size_t o = 0; o < outer; o++)
        for (size_t i = 0; i < inner; i++) {
            size_t base = o * d * inner + i, best = 0;
            double mx = load1(x->data, x->dtype, base);
            for (size_t p = 1; p < d && !isnan(mx); p++) {
                double v = load1(x->data, x->dtype, base + p * inner);
                if (v > mx || isnan(v)) {
                    mx = v;
                    best = p;
                }
            }
            memcpy((char *)y->data + (base + best * inner) * es, one, es);
        }
    return QKV_OK;
}

static void hardmax_destroy(void *state) { free(state); }

/* ---- descriptors ------------------------------------------------------------- */

#define HARDMAX_KERNEL(since, until)                                                               \
    {                                                                                              \
        QKV_KERNEL_V1, .domain = "", .op_type = "Hardmax", .since_version = (since),               \
                       .until_version = (until), .min_inputs = 1, .max_inputs = 1,                 \
                       .min_outputs = 1, .max_outputs = 1, .n_input_types = 1,                     \
                       .input_types = {QKV_TYPES_FLOATS | QKV_T(FLOAT16) | QKV_T(BFLOAT16)},       \
                       .init = hardmax_init, .infer = hardmax_infer, .compute = hardmax_compute,   \
                       .destroy = hardmax_destroy,                                                 \
    }

static const qkv_kernel kernels[] = {
    HARDMAX_KERNEL(1, 10),
    HARDMAX_KERNEL(11, 12),
    HARDMAX_KERNEL(13, 0),
};

/* The descriptors of this family; *count set to their number. */
const qkv_kernel *qkv_ops_hardmax(size_t *count)
{
    *count = sizeof kernels / sizeof kernels[0];
    return kernels;
}
