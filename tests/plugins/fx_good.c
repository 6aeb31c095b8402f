/*
 * fx_good.c - the "good" test plugin: custom ops in the domain "qkv.test"
 * and a backend, exercising every part of the ABI the tests check.
 *
 *   qkv.test.Scale (1)           y = x * factor (attribute, default 2), with infer
 *   qkv.test.Positives (1)       the elements > 0 of x, as 1-D: NO infer (the
 *                                output shape depends on the data), so the
 *                                host plans it at run time and compute
 *                                allocates with host->output_alloc
 *   qkv.test.FailIfNegative (1)  y = x, but compute fails with the plugin's
 *                                message when an element is negative
 *   qkv.test.HostGemm (1)        y = a @ b (2-D float) through host->gemm
 *   qkv.test.Forgetful (1)       no infer, and compute forgets output_alloc:
 *                                the host reports the missing output
 *   backend "testbk" (priority 50): a Relu kernel (default domain, opset 6+)
 *                                whose supports() takes float inputs only
 */
#include <stdio.h>
#include <string.h>

#include "qkv_plugin.h"

typedef struct scale_state {
    const qkv_host_api *host;
    float factor;
} scale_state;

static qkv_status scale_init(const qkv_kernel *k, const qkv_host_api *host,
                             const qkv_node_ctx *node, void **state)
{
    (void)k;
    scale_state *s = host->alloc(sizeof *s);
    if (!s)
        return host->node_error(node, QKV_ERR_OUT_OF_MEMORY, "state");
    s->host = host;
    qkv_status st = host->attr_float(node, "factor", 2.0f, &s->factor);
    if (st != QKV_OK) {
        host->free(s);
        return st;
    }
    *state = s;
    return QKV_OK;
}

static void scale_destroy(void *state)
{
    scale_state *s = state;
    s->host->free(s);
}

static qkv_status same_shape_infer(void *state, qkv_kernel_io *io)
{
    (void)state;
    const qkv_tensor *x = &io->inputs[0];
    io->outputs[0].dtype = x->dtype;
    io->outputs[0].rank = x->rank;
    for (int32_t d = 0; d < x->rank; d++)
        io->outputs[0].dims[d] = x->dims[d];
    return QKV_OK;
}

static qkv_status scale_compute(const void *state, qkv_kernel_io *io)
{
    const scale_state *s = state;
    const float *x = io->inputs[0].data;
    float *y = io->outputs[0].data;
    for (size_t i = 0; i < io->inputs[0].data_bytes / sizeof(float); i++)
        y[i] = x[i] * s->factor;
    return QKV_OK;
}

static qkv_status positives_compute(const void *state, qkv_kernel_io *io)
{
    (void)state;
    const float *x = io->inputs[0].data;
    size_t n = io->inputs[0].data_bytes / sizeof(float), count = 0;
    for (size_t i = 0; i < n; i++)
        count += x[i] > 0;
    int64_t dims[1] = {(int64_t)count};
    qkv_status st = io->host->output_alloc(io, 0, QKV_DTYPE_FLOAT, 1, dims);
    if (st != QKV_OK)
        return st;
    float *y = io->outputs[0].data;
    for (size_t i = 0, j = 0; i < n; i++)
        if (x[i] > 0)
            y[j++] = x[i];
    return QKV_OK;
}

static qkv_status fail_compute(const void *state, qkv_kernel_io *io)
{
    (void)state;
    const float *x = io->inputs[0].data;
    size_t n = io->inputs[0].data_bytes / sizeof(float);
    for (size_t i = 0; i < n; i++)
        if (x[i] < 0)
            return io->host->error(io->host_ctx, QKV_ERR_INVALID_ARGUMENT,
                                   "fx_good refuses negative input: x[%zu] = %g", i, (double)x[i]);
    memcpy(io->outputs[0].data, x, io->inputs[0].data_bytes);
    return QKV_OK;
}

static qkv_status host_gemm_infer(void *state, qkv_kernel_io *io)
{
    (void)state;
    const qkv_tensor *a = &io->inputs[0], *b = &io->inputs[1];
    if (a->rank != 2 || b->rank != 2)
        return io->host->error(io->host_ctx, QKV_ERR_SHAPE, "HostGemm takes 2-D inputs");
    io->outputs[0].dtype = QKV_DTYPE_FLOAT;
    io->outputs[0].rank = 2;
    io->outputs[0].dims[0] = a->dims[0];
    io->outputs[0].dims[1] = b->dims[1];
    return QKV_OK;
}

static qkv_status host_gemm_compute(const void *state, qkv_kernel_io *io)
{
    (void)state;
    const qkv_tensor *a = &io->inputs[0], *b = &io->inputs[1];
    qkv_gemm g;
    memset(&g, 0, sizeof g);
    g.struct_size = sizeof g;
    g.abi_version = QKV_ABI_VERSION;
    g.dtype = QKV_DTYPE_FLOAT;
    g.m = (size_t)a->dims[0];
    g.k = (size_t)a->dims[1];
    g.n = (size_t)b->dims[1];
    g.alpha = 1;
    g.a = a->data;
    g.lda = g.k ? g.k : 1;
    g.b = b->data;
    g.ldb = g.n ? g.n : 1;
    g.c = io->outputs[0].data;
    g.ldc = g.n ? g.n : 1;
    return io->host->gemm(io->host_ctx, &g);
}

static qkv_status forgetful_compute(const void *state, qkv_kernel_io *io)
{
    (void)state;
    (void)io;
    return QKV_OK;
}

static qkv_status relu_compute(const void *state, qkv_kernel_io *io)
{
    (void)state;
    const float *x = io->inputs[0].data;
    float *y = io->outputs[0].data;
    for (size_t i = 0; i < io->inputs[0].data_bytes / sizeof(float); i++)
        y[i] = x[i] > 0 ? x[i] : 0;
    return QKV_OK;
}

static int testbk_supports(void *user, const qkv_host_api *host, const qkv_node_ctx *node)
{
    (void)user;
    return host->node_input_dtype(node, 0) == QKV_DTYPE_FLOAT;
}

#define K(name, dom, op, since, min_in, max_in, ...)                                               \
    static const qkv_kernel name = {.struct_size = sizeof(qkv_kernel),                             \
                                    .abi_version = QKV_ABI_VERSION,                                \
                                    .domain = dom,                                                 \
                                    .op_type = op,                                                 \
                                    .since_version = since,                                        \
                                    .min_inputs = min_in,                                          \
                                    .max_inputs = max_in,                                          \
                                    .min_outputs = 1,                                              \
                                    .max_outputs = 1,                                              \
                                    __VA_ARGS__}

K(k_scale, "qkv.test", "Scale", 1, 1, 1, .init = scale_init, .infer = same_shape_infer,
  .compute = scale_compute, .destroy = scale_destroy);
K(k_positives, "qkv.test", "Positives", 1, 1, 1, .compute = positives_compute);
K(k_fail, "qkv.test", "FailIfNegative", 1, 1, 1, .infer = same_shape_infer,
  .compute = fail_compute);
K(k_host_gemm, "qkv.test", "HostGemm", 1, 2, 2, .infer = host_gemm_infer,
  .compute = host_gemm_compute);
K(k_forgetful, "qkv.test", "Forgetful", 1, 1, 1, .compute = forgetful_compute);
K(k_relu, "", "Relu", 6, 1, 1, .n_input_types = 1, .input_types = {QKV_DTYPE_BIT(QKV_DTYPE_FLOAT)},
  .infer = same_shape_infer, .compute = relu_compute);

static const qkv_kernel *const kernels[] = {&k_scale, &k_positives, &k_fail, &k_host_gemm,
                                            &k_forgetful};
static const qkv_kernel *const backend_kernels[] = {&k_relu};

static const qkv_backend testbk = {
    .struct_size = sizeof(qkv_backend),
    .abi_version = QKV_ABI_VERSION,
    .name = "testbk",
    .priority = 50,
    .n_kernels = 1,
    .kernels = backend_kernels,
    .supports = testbk_supports,
};
static const qkv_backend *const backends[] = {&testbk};

static const qkv_plugin_info info = {
    .struct_size = sizeof(qkv_plugin_info),
    .abi_version = QKV_ABI_VERSION,
    .name = "fx_good",
    .version = "0.0.1",
    .n_kernels = sizeof kernels / sizeof kernels[0],
    .kernels = kernels,
    .n_backends = 1,
    .backends = backends,
};

/* Read by the host before init: a qkv of another ABI major refuses this
 * library without running any of it. */
QKV_PLUGIN_EXPORT const uint32_t qkv_plugin_abi_version = QKV_ABI_VERSION;

QKV_PLUGIN_EXPORT qkv_status qkv_plugin_init(const qkv_host_api *host, const qkv_plugin_info **out,
                                             char *errbuf, size_t errbuf_size)
{
    (void)errbuf;
    (void)errbuf_size;
    if (host->struct_size < sizeof(qkv_host_api)) /* built with this header: all there */
        return QKV_ERR_PLUGIN;
    *out = &info;
    return QKV_OK;
}
