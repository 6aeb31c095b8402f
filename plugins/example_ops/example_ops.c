/*
 * example_ops.c - an example qkv plugin: two custom operators in the domain
 * "qkv.example". Copy this directory to start your own (docs/plugins.md).
 *
 *   qkv.example.Rotary (opset 1)      rotary position embedding
 *     inputs:  X (float, shape (..., seq, dim), dim even)
 *              positions (int64, shape (seq)), optional: default 0..seq-1
 *     output:  Y, same shape: each pair (a, b) of a row at position p turns
 *              by the angle p * base^(-2i/dim) of its pair index i
 *     attributes: base (float, default 10000), interleaved (int, default 0:
 *              pairs are (x[i], x[i + dim/2]); 1: pairs are (x[2i], x[2i+1]))
 *
 *   qkv.example.BiasGelu (opset 1)    fused bias + GELU activation
 *     inputs:  X (float, shape (..., n)), bias (float, shape (n))
 *     output:  Y = gelu(X + bias), same shape as X
 *     attributes: approximate (string "none" (erf, default) or "tanh")
 *
 * What a plugin file shows here, top to bottom: the attribute structs, pure
 * math helpers, the callbacks (init parses attributes once; infer gives
 * output types and shapes so the planner can place the outputs; compute runs
 * and may be called from several threads at once, so it only reads the
 * state), the descriptors, and the one exported entry point.
 *
 * It includes nothing from qkv but qkv_plugin.h and never links libqkv:
 * everything comes through the host table.
 */
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "qkv_plugin.h"

#define EXAMPLE_DOMAIN "qkv.example"

/* ---- Rotary ------------------------------------------------------------------ */

typedef struct rotary_attrs {
    const qkv_host_api *host; /* destroy frees the state with host->free */
    float base;
    int interleaved;
} rotary_attrs;

/* Turns one row x (dim) at position pos into y: pairs (first, second). */
static void rotary_row(float *y, const float *x, size_t dim, double pos, double base,
                       int interleaved)
{
    size_t half = dim / 2;
    for (size_t i = 0; i < half; i++) {
        double theta = pos * pow(base, -2.0 * (double)i / (double)dim);
        double c = cos(theta), s = sin(theta);
        size_t a = interleaved ? 2 * i : i, b = interleaved ? 2 * i + 1 : i + half;
        double xa = x[a], xb = x[b];
        y[a] = (float)(xa * c - xb * s);
        y[b] = (float)(xb * c + xa * s);
    }
}

static qkv_status rotary_init(const qkv_kernel *kernel, const qkv_host_api *host,
                              const qkv_node_ctx *node, void **state)
{
    (void)kernel;
    int64_t interleaved = 0;
    float base = 10000.0f;
    qkv_status st = host->attr_float(node, "base", 10000.0f, &base);
    if (st == QKV_OK)
        st = host->attr_int(node, "interleaved", 0, &interleaved);
    if (st != QKV_OK)
        return st; /* the host wrote the message (wrong attribute type) */
    if (!(base > 0.0f))
        return host->node_error(node, QKV_ERR_INVALID_MODEL, "base is %g, must be > 0",
                                (double)base);
    if (interleaved != 0 && interleaved != 1)
        return host->node_error(node, QKV_ERR_INVALID_MODEL, "interleaved is %lld, must be 0 or 1",
                                (long long)interleaved);
    rotary_attrs *a = host->alloc(sizeof *a);
    if (!a)
        return host->node_error(node, QKV_ERR_OUT_OF_MEMORY, "kernel state");
    a->host = host;
    a->base = base;
    a->interleaved = (int)interleaved;
    *state = a;
    return QKV_OK;
}

static void attrs_destroy(void *state)
{
    /* both states start with the host pointer */
    const qkv_host_api *host = *(const qkv_host_api *const *)state;
    host->free(state);
}

static qkv_status rotary_infer(void *state, qkv_kernel_io *io)
{
    (void)state;
    const qkv_tensor *x = &io->inputs[0];
    qkv_tensor *y = &io->outputs[0];
    /* rank -1 / dim -1 mean unknown (at session creation): check what is known */
    if (x->rank >= 0 && x->rank < 2)
        return io->host->error(io->host_ctx, QKV_ERR_SHAPE,
                               "input 0 'X' has rank %d, expected (..., seq, dim)", x->rank);
    if (x->rank >= 2 && x->dims[x->rank - 1] >= 0 && x->dims[x->rank - 1] % 2 != 0)
        return io->host->error(io->host_ctx, QKV_ERR_SHAPE, "input 0 'X': dim %lld is odd",
                               (long long)x->dims[x->rank - 1]);
    if (io->n_inputs > 1 && io->inputs[1].dtype != QKV_DTYPE_UNDEFINED) {
        const qkv_tensor *p = &io->inputs[1];
        if (p->rank >= 0 && p->rank != 1)
            return io->host->error(io->host_ctx, QKV_ERR_SHAPE,
                                   "input 1 'positions' has rank %d, expected 1", p->rank);
        if (p->rank == 1 && x->rank >= 2 && p->dims[0] >= 0 && x->dims[x->rank - 2] >= 0 &&
            p->dims[0] != x->dims[x->rank - 2])
            return io->host->error(io->host_ctx, QKV_ERR_SHAPE,
                                   "input 1 'positions' has %lld entries, X has seq %lld",
                                   (long long)p->dims[0], (long long)x->dims[x->rank - 2]);
    }
    y->dtype = x->dtype;
    y->rank = x->rank;
    for (int32_t d = 0; d < x->rank; d++)
        y->dims[d] = x->dims[d];
    return QKV_OK;
}

typedef struct rotary_job {
    const rotary_attrs *a;
    const float *x;
    float *y;
    const int64_t *positions; /* NULL: the row's index in seq */
    size_t seq, dim;
} rotary_job;

static void rotary_rows(void *arg, size_t begin, size_t end)
{
    const rotary_job *j = arg;
    for (size_t r = begin; r < end; r++) {
        size_t s = r % j->seq;
        double pos = j->positions ? (double)j->positions[s] : (double)s;
        rotary_row(j->y + r * j->dim, j->x + r * j->dim, j->dim, pos, j->a->base,
                   j->a->interleaved);
    }
}

static qkv_status rotary_compute(const void *state, qkv_kernel_io *io)
{
    const qkv_tensor *x = &io->inputs[0];
    rotary_job j = {.a = state, .x = x->data, .y = io->outputs[0].data};
    j.dim = (size_t)x->dims[x->rank - 1];
    j.seq = (size_t)x->dims[x->rank - 2];
    size_t rows = 1;
    for (int32_t d = 0; d < x->rank - 1; d++)
        rows *= (size_t)x->dims[d]; /* the host checked the size: no overflow */
    if (io->n_inputs > 1 && io->inputs[1].dtype != QKV_DTYPE_UNDEFINED)
        j.positions = io->inputs[1].data;
    if (rows == 0 || j.seq == 0)
        return QKV_OK;
    io->host->parallel_for(io->host_ctx, rows, rotary_rows, &j);
    return QKV_OK;
}

/* ---- BiasGelu ------------------------------------------------------------------- */

typedef struct gelu_attrs {
    const qkv_host_api *host;
    int tanh_approx;
} gelu_attrs;

static float gelu(float v, int tanh_approx)
{
    if (tanh_approx) {
        const float k = 0.7978845608028654f; /* sqrt(2 / pi) */
        return 0.5f * v * (1.0f + tanhf(k * (v + 0.044715f * v * v * v)));
    }
    return 0.5f * v * (1.0f + erff(v * 0.7071067811865476f));
}

static qkv_status bias_gelu_init(const qkv_kernel *kernel, const qkv_host_api *host,
                                 const qkv_node_ctx *node, void **state)
{
    (void)kernel;
    const char *approx = "none";
    qkv_status st = host->attr_string(node, "approximate", "none", &approx);
    if (st != QKV_OK)
        return st;
    if (strcmp(approx, "none") != 0 && strcmp(approx, "tanh") != 0)
        return host->node_error(node, QKV_ERR_INVALID_MODEL,
                                "approximate is '%s', expected 'none' or 'tanh'", approx);
    gelu_attrs *a = host->alloc(sizeof *a);
    if (!a)
        return host->node_error(node, QKV_ERR_OUT_OF_MEMORY, "kernel state");
    a->host = host;
    a->tanh_approx = strcmp(approx, "tanh") == 0;
    *state = a;
    return QKV_OK;
}

static qkv_status bias_gelu_infer(void *state, qkv_kernel_io *io)
{
    (void)state;
    const qkv_tensor *x = &io->inputs[0], *bias = &io->inputs[1];
    if (x->rank == 0)
        return io->host->error(io->host_ctx, QKV_ERR_SHAPE, "input 0 'X' is a scalar");
    if (bias->rank >= 0 && bias->rank != 1)
        return io->host->error(io->host_ctx, QKV_ERR_SHAPE,
                               "input 1 'bias' has rank %d, expected 1", bias->rank);
    if (x->rank > 0 && bias->rank == 1 && x->dims[x->rank - 1] >= 0 && bias->dims[0] >= 0 &&
        x->dims[x->rank - 1] != bias->dims[0])
        return io->host->error(io->host_ctx, QKV_ERR_SHAPE,
                               "input 1 'bias' has %lld entries, X's last dim is %lld",
                               (long long)bias->dims[0], (long long)x->dims[x->rank - 1]);
    qkv_tensor *y = &io->outputs[0];
    y->dtype = x->dtype;
    y->rank = x->rank;
    for (int32_t d = 0; d < x->rank; d++)
        y->dims[d] = x->dims[d];
    return QKV_OK;
}

typedef struct gelu_job {
    const float *x, *bias;
    float *y;
    size_t n; /* bias length */
    int tanh_approx;
} gelu_job;

static void gelu_range(void *arg, size_t begin, size_t end)
{
    const gelu_job *j = arg;
    for (size_t i = begin; i < end; i++)
        j->y[i] = gelu(j->x[i] + j->bias[i % j->n], j->tanh_approx);
}

static qkv_status bias_gelu_compute(const void *state, qkv_kernel_io *io)
{
    const gelu_attrs *a = state;
    const qkv_tensor *x = &io->inputs[0];
    gelu_job j = {.x = x->data,
                  .bias = io->inputs[1].data,
                  .y = io->outputs[0].data,
                  .n = (size_t)io->inputs[1].dims[0],
                  .tanh_approx = a->tanh_approx};
    size_t count = x->data_bytes / sizeof(float);
    if (count == 0)
        return QKV_OK;
    if (j.n == 0)
        return io->host->error(io->host_ctx, QKV_ERR_SHAPE, "input 1 'bias' is empty");
    io->host->parallel_for(io->host_ctx, count, gelu_range, &j);
    return QKV_OK;
}

/* ---- descriptors and the entry point --------------------------------------------- */

static const qkv_kernel rotary_kernel = {
    .struct_size = sizeof(qkv_kernel),
    .abi_version = QKV_ABI_VERSION,
    .domain = EXAMPLE_DOMAIN,
    .op_type = "Rotary",
    .since_version = 1,
    .min_inputs = 1,
    .max_inputs = 2,
    .min_outputs = 1,
    .max_outputs = 1,
    .n_input_types = 2, /* the host checks these before any callback runs */
    .input_types = {QKV_DTYPE_BIT(QKV_DTYPE_FLOAT), QKV_DTYPE_BIT(QKV_DTYPE_INT64)},
    .init = rotary_init,
    .infer = rotary_infer,
    .compute = rotary_compute,
    .destroy = attrs_destroy,
};

static const qkv_kernel bias_gelu_kernel = {
    .struct_size = sizeof(qkv_kernel),
    .abi_version = QKV_ABI_VERSION,
    .domain = EXAMPLE_DOMAIN,
    .op_type = "BiasGelu",
    .since_version = 1,
    .min_inputs = 2,
    .max_inputs = 2,
    .min_outputs = 1,
    .max_outputs = 1,
    .n_input_types = 1,
    .input_types = {QKV_DTYPE_BIT(QKV_DTYPE_FLOAT)},
    .flags = QKV_KERNEL_INPLACE, /* y[i] depends on x[i] only: may overwrite X */
    .inplace_input = 0,
    .init = bias_gelu_init,
    .infer = bias_gelu_infer,
    .compute = bias_gelu_compute,
    .destroy = attrs_destroy,
};

static const qkv_kernel *const kernels[] = {&rotary_kernel, &bias_gelu_kernel};

static const qkv_plugin_info info = {
    .struct_size = sizeof(qkv_plugin_info),
    .abi_version = QKV_ABI_VERSION,
    .name = "example_ops",
    .version = "1.0.0",
    .n_kernels = sizeof kernels / sizeof kernels[0],
    .kernels = kernels,
};

/* Read by the host before init: a qkv of another ABI major refuses this
 * library without running any of it. */
QKV_PLUGIN_EXPORT const uint32_t qkv_plugin_abi_version = QKV_ABI_VERSION;

QKV_PLUGIN_EXPORT qkv_status qkv_plugin_init(const qkv_host_api *host, const qkv_plugin_info **out,
                                             char *errbuf, size_t errbuf_size)
{
    /* Everything used here is in ABI 1.0. A plugin that needs a host
     * function added later checks for it, and fails with a message: */
    if (!QKV_HOST_HAS(host, output_alloc)) {
        snprintf(errbuf, errbuf_size, "this qkv is too old for example_ops");
        return QKV_ERR_PLUGIN;
    }
    *out = &info; /* static: valid as long as the library is loaded */
    return QKV_OK;
}
