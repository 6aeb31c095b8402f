/*
 * eyelike.c - EyeLike (opset 9): a 2-D tensor of input 0's shape with ones
 * on diagonal k (j - i == k; k > 0 above the main diagonal, k < 0 below)
 * and zeros elsewhere. Only input 0's shape is read.
 *
 * The output type is attribute `dtype` (a TensorProto element type) or, when
 * absent, input 0's type: numbers, bool and float16 (the spec's list; bfloat16
 * too). A diagonal entirely outside the matrix gives all zeros.
 */
#include <stdlib.h>
#include <string.h>

#include "elementwise.h"
#include "qkv.h"

#define EYE_TYPES (QKV_TYPES_NUMERIC | QKV_T(BOOL) | QKV_TYPES_HALF)

typedef struct eyelike_state {
    qkv_dtype dtype; /* UNDEFINED: input 0's */
    int64_t k;
} eyelike_state;

static qkv_status eyelike_init(const qkv_kernel *kernel, const qkv_host_api *host,
                               const qkv_node_ctx *node, void **state)
{
    (void)kernel;
    int64_t dtype, k;
    qkv_status st = host->attr_int(node, "dtype", 0, &dtype);
    if (st == QKV_OK)
        st = host->attr_int(node, "k", 0, &k);
    if (st != QKV_OK)
        return st;
    if (dtype != 0 &&
        (dtype < 0 || dtype >= QKV_DTYPE_COUNT || !(EYE_TYPES & QKV_DTYPE_BIT((qkv_dtype)dtype))))
        return NERR(host, node, QKV_ERR_INVALID_MODEL,
                    "attribute 'dtype' is %lld, not a supported output type (numbers, bool, "
                    "float16)",
                    (long long)dtype);
    eyelike_state *s = malloc(sizeof *s);
    if (!s)
        return NERR(host, node, QKV_ERR_OUT_OF_MEMORY, "kernel state");
    s->dtype = (qkv_dtype)dtype;
    s->k = k;
    *state = s;
    return QKV_OK;
}

static void eyelike_destroy(void *state) { free(state); }

static qkv_status eyelike_infer(void *state, qkv_kernel_io *io)
{
    const eyelike_state *s = state;
    const qkv_tensor *x = &io->inputs[0];
    qkv_dtype t = s->dtype != QKV_DTYPE_UNDEFINED ? s->dtype : x->dtype;
    qkv_set_shape(&io->outputs[0], t, x->rank, x->dims);
    if (x->rank >= 0 && x->rank != 2)
        return KERR(io, QKV_ERR_SHAPE, "input 0 'input' has rank %d, expected 2", x->rank);
    return QKV_OK;
}

static qkv_status eyelike_compute(const void *state, qkv_kernel_io *io)
{
    const eyelike_state *s = state;
    qkv_tensor *y = &io->outputs[0];
    if (y->rank != 2)
        return KERR(io, QKV_ERR_SHAPE, "input 0 'input' has rank %d, expected 2", y->rank);
    size_t eb = qkv_ew_elem_bytes(y->dtype);
    unsigned char one[8];
    const double v = 1.0;
    if (!eb || !qkv_ew_store_f64(one, y->dtype, &v, 1))
        return KERR(io, QKV_ERR_TYPE, "output type %s is not supported", qkv_dtype_name(y->dtype));
    if (y->data_bytes == 0)
        return QKV_OK;
    memset(y->data, 0, y->data_bytes);
    int64_t n = y->dims[0], m = y->dims[1];
    if (s->k <= -n || s->k >= m) /* the diagonal misses the matrix */
        return QKV_OK;
    /* row i has its one at column i + k when that is inside [0, m) */
    int64_t i0 = s->k < 0 ? -s->k : 0;
    for (int64_t i = i0; i < n; i++) {
        int64_t j = i + s->k;
        if (j >= m)
            break;
        memcpy((unsigned char *)y->data + (size_t)(i * m + j) * eb, one, eb);
    }
    return QKV_OK;
}

static const qkv_kernel kernels[] = {
    {
        QKV_KERNEL_V1,
        .domain = "",
        .op_type = "EyeLike",
        .since_version = 9,
        .min_inputs = 1,
        .max_inputs = 1,
        .min_outputs = 1,
        .max_outputs = 1,
        .n_input_types = 1,
        .input_types = {EYE_TYPES},
        .flags = QKV_KERNEL_SHAPE_ONLY,
        .init = eyelike_init,
        .infer = eyelike_infer,
        .compute = eyelike_compute,
        .destroy = eyelike_destroy,
    },
};

/* The eyelike family: EyeLike. */
const qkv_kernel *qkv_ops_eyelike(size_t *count)
{
    *count = sizeof kernels / sizeof kernels[0];
    return kernels;
}
