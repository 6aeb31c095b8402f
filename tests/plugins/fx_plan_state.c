/*
 * fx_plan_state.c - per-plan kernel state (ABI 1.2), seen from a plugin.
 *
 *   qkv.plan.PlanOnce (1)        x (float, any shape) -> y (float, [2]):
 *                                prepare numbers itself (1, 2, ... in this
 *                                process) and keeps that serial and x's
 *                                element count as per-plan state; compute
 *                                writes them: y = [serial, count]. So y[0]
 *                                tells which prepare built the plan a run used.
 *   qkv.plan.AllocInCompute (1)  y = x, but compute asks for per-plan memory,
 *                                which the host refuses outside prepare
 */
#include <stdatomic.h>
#include <string.h>

#include "qkv_plugin.h"

typedef struct once_plan {
    float serial; /* which prepare call built this state */
    float count;  /* x's element count */
} once_plan;

static atomic_int prepares;

static qkv_status pair_infer(void *state, qkv_kernel_io *io)
{
    (void)state;
    io->outputs[0].dtype = QKV_DTYPE_FLOAT;
    io->outputs[0].rank = 1;
    io->outputs[0].dims[0] = 2;
    return QKV_OK;
}

static qkv_status once_prepare(void *state, qkv_kernel_io *io)
{
    (void)state;
    if (!QKV_HOST_HAS(io->host, plan_alloc))
        return io->host->error(io->host_ctx, QKV_ERR_PLUGIN, "this host has no plan_alloc");
    once_plan *ps;
    qkv_status st = io->host->plan_alloc(io, sizeof *ps, (void **)&ps);
    if (st != QKV_OK)
        return st;
    size_t count = 1;
    for (int32_t d = 0; d < io->inputs[0].rank; d++)
        count *= (size_t)io->inputs[0].dims[d];
    ps->serial = (float)(atomic_fetch_add(&prepares, 1) + 1);
    ps->count = (float)count;
    io->plan_state = ps;
    return QKV_OK;
}

static qkv_status once_compute(const void *state, qkv_kernel_io *io)
{
    (void)state;
    const once_plan *ps = io->plan_state;
    if (!ps)
        return io->host->error(io->host_ctx, QKV_ERR_PLUGIN, "compute got no plan state");
    float *y = io->outputs[0].data;
    y[0] = ps->serial;
    y[1] = ps->count;
    return QKV_OK;
}

static qkv_status same_infer(void *state, qkv_kernel_io *io)
{
    (void)state;
    io->outputs[0] = io->inputs[0];
    io->outputs[0].data = NULL;
    io->outputs[0].data_bytes = 0;
    return QKV_OK;
}

static qkv_status alloc_compute(const void *state, qkv_kernel_io *io)
{
    (void)state;
    void *p = &p; /* must come back NULL */
    qkv_status st = io->host->plan_alloc(io, 16, &p);
    if (st == QKV_OK || p != NULL)
        return io->host->error(io->host_ctx, QKV_ERR_INTERNAL, "plan_alloc worked in compute");
    return st;
}

#define K(name, op, ...)                                                                           \
    static const qkv_kernel name = {.struct_size = sizeof(qkv_kernel),                             \
                                    .abi_version = QKV_ABI_VERSION,                                \
                                    .domain = "qkv.plan",                                          \
                                    .op_type = op,                                                 \
                                    .since_version = 1,                                            \
                                    .min_inputs = 1,                                               \
                                    .max_inputs = 1,                                               \
                                    .min_outputs = 1,                                              \
                                    .max_outputs = 1,                                              \
                                    .n_input_types = 1,                                            \
                                    .input_types = {QKV_DTYPE_BIT(QKV_DTYPE_FLOAT)},               \
                                    __VA_ARGS__}

K(k_once, "PlanOnce", .infer = pair_infer, .prepare = once_prepare, .compute = once_compute);
K(k_alloc, "AllocInCompute", .infer = same_infer, .compute = alloc_compute);

static const qkv_kernel *const kernels[] = {&k_once, &k_alloc};

static const qkv_plugin_info info = {
    .struct_size = sizeof(qkv_plugin_info),
    .abi_version = QKV_ABI_VERSION,
    .name = "fx_plan_state",
    .version = "1.2",
    .n_kernels = sizeof kernels / sizeof kernels[0],
    .kernels = kernels,
};

QKV_PLUGIN_EXPORT const uint32_t qkv_plugin_abi_version = QKV_ABI_VERSION;

QKV_PLUGIN_EXPORT qkv_status qkv_plugin_init(const qkv_host_api *host, const qkv_plugin_info **out,
                                             char *errbuf, size_t errbuf_size)
{
    (void)host;
    (void)errbuf;
    (void)errbuf_size;
    *out = &info;
    return QKV_OK;
}
