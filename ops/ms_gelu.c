/*
 * ms_gelu.c - the GELU contrib ops of ONNX Runtime's transformer optimizer
 * (domain com.microsoft, since 1):
 *
 *   Gelu(X)            Y = 0.5 X (1 + erf(X / sqrt 2))
 *   BiasGelu(A, B)     Y = Gelu(A + B)
 *   FastGelu(X[, bias]) Y = 0.5 x (1 + tanh(sqrt(2/pi) (x + 0.044715 x^3))), x = X + bias
 *
 * The bias is 1-D with the size of the input's last dim and is added along
 * it. float32 only (as ORT's CPU kernels), computed with vecmath.h's
 * vectorised GELUs (their accuracy is stated there). Output 0 may share
 * input 0's buffer. A bias of another shape is QKV_ERR_SHAPE.
 */
#include <stdint.h>
#include <string.h>

#include "kernel_util.h"
#include "vecmath.h"

/* Elements per work item when there is no bias to align rows to. */
#define CHUNK 4096

typedef struct gelu_job {
    const float *x;
    const float *bias; /* (d) or NULL */
    float *y;
    size_t n; /* elements in all */
    size_t d; /* elements per work item: the bias length, or CHUNK */
    qkv_act act;
} gelu_job;

static void gelu_range(void *arg, size_t begin, size_t end)
{
    const gelu_job *j = arg;
    for (size_t r = begin; r < end; r++) {
        size_t at = r * j->d, len = j->n - at < j->d ? j->n - at : j->d;
        float *y = j->y + at;
        const float *x = j->x + at;
        if (j->bias) {
            if (y != x)
                memcpy(y, x, len * sizeof *y);
            qkv_vm_epilogue_f32(y, j->bias, NULL, len, j->act);
        } else if (j->act == QKV_ACT_GELU) {
            qkv_vm_gelu_f32(y, x, len);
        } else {
            qkv_vm_gelu_tanh_f32(y, x, len);
        }
    }
}

static qkv_status gelu_init(const qkv_kernel *kernel, const qkv_host_api *host,
                            const qkv_node_ctx *node, void **state)
{
    (void)host;
    (void)node;
    *state = kernel->user; /* the qkv_act, as an integer: nothing to free */
    return QKV_OK;
}

static qkv_status gelu_infer(void *state, qkv_kernel_io *io)
{
    (void)state;
    const qkv_tensor *x = &io->inputs[0];
    qkv_set_shape(&io->outputs[0], QKV_DTYPE_FLOAT, x->rank, x->dims);
    if (!qkv_present(io, 1))
        return QKV_OK;
    const qkv_tensor *b = &io->inputs[1];
    int64_t last = x->rank > 0 ? x->dims[x->rank - 1] : x->rank == 0 ? 1 : -1;
    char bs[96], xs[96];
    if (b->rank >= 0 &&
        (b->rank != 1 || x->rank == 0 || (b->dims[0] >= 0 && last >= 0 && b->dims[0] != last)))
        return KERR(io, QKV_ERR_SHAPE,
                    "input 1 (bias) has shape %s, expected (%lld): the last "
                    "dim of input 0 %s",
                    qkv_dims_str(b, bs, sizeof bs), (long long)last,
                    qkv_dims_str(x, xs, sizeof xs));
    return QKV_OK;
}

static qkv_status gelu_compute(const void *state, qkv_kernel_io *io)
{
    const qkv_tensor *x = &io->inputs[0];
    gelu_job j = {.x = x->data,
                  .y = io->outputs[0].data,
                  .n = qkv_numel(x),
                  .d = CHUNK,
                  .act = (qkv_act)(uintptr_t)state};
    if (qkv_present(io, 1)) {
        j.bias = io->inputs[1].data;
        j.d = (size_t)io->inputs[1].dims[0];
    }
    if (j.n == 0)
        return QKV_OK;
    size_t items = (j.n + j.d - 1) / j.d;
    qkv_run_range(io, items, j.n * sizeof(float), gelu_range, &j);
    return QKV_OK;
}

#define MS_GELU(NAME, ACT, MIN_IN, MAX_IN)                                                         \
    {                                                                                              \
        QKV_KERNEL_V1, .domain = "com.microsoft", .op_type = (NAME), .since_version = 1,           \
                       .min_inputs = (MIN_IN), .max_inputs = (MAX_IN), .min_outputs = 1,           \
                       .max_outputs = 1, .n_input_types = 1, .input_types = {QKV_T(FLOAT)},        \
                       .flags = QKV_KERNEL_INPLACE, .inplace_input = 0,                            \
                       .user = (void *)(uintptr_t)(ACT), .init = gelu_init, .infer = gelu_infer,   \
                       .compute = gelu_compute,                                                    \
    }

static const qkv_kernel kernels[] = {
    MS_GELU("Gelu", QKV_ACT_GELU, 1, 1),
    MS_GELU("BiasGelu", QKV_ACT_GELU, 2, 2),
    MS_GELU("FastGelu", QKV_ACT_GELU_TANH, 1, 2),
};

/* The com.microsoft Gelu, BiasGelu and FastGelu descriptors; *count set to 3. */
const qkv_kernel *qkv_ops_ms_gelu(size_t *count)
{
    *count = sizeof kernels / sizeof kernels[0];
    return kernels;
}
