/*
 * fx_log.c - a test plugin that logs through host->log, for the session
 * option's log callback:
 *   qkv.log.Echo (1)  y = x (float); init logs at INFO "fx_log: init NODE",
 *                     compute logs at WARN "fx_log: compute" and at
 *                     DEBUG "fx_log: debug"
 */
#include <string.h>

#include "qkv_plugin.h"

static qkv_status echo_init(const qkv_kernel *k, const qkv_host_api *host, const qkv_node_ctx *node,
                            void **state)
{
    (void)k;
    (void)state;
    host->log(QKV_LOG_INFO, "fx_log: init %s", host->node_name(node));
    return QKV_OK;
}

static qkv_status echo_infer(void *state, qkv_kernel_io *io)
{
    (void)state;
    io->outputs[0] = io->inputs[0];
    io->outputs[0].data = NULL;
    io->outputs[0].data_bytes = 0;
    return QKV_OK;
}

static qkv_status echo_compute(const void *state, qkv_kernel_io *io)
{
    (void)state;
    io->host->log(QKV_LOG_WARN, "fx_log: compute");
    io->host->log(QKV_LOG_DEBUG, "fx_log: debug");
    memcpy(io->outputs[0].data, io->inputs[0].data, io->inputs[0].data_bytes);
    return QKV_OK;
}

static const qkv_kernel k_echo = {.struct_size = sizeof(qkv_kernel),
                                  .abi_version = QKV_ABI_VERSION,
                                  .domain = "qkv.log",
                                  .op_type = "Echo",
                                  .since_version = 1,
                                  .min_inputs = 1,
                                  .max_inputs = 1,
                                  .min_outputs = 1,
                                  .max_outputs = 1,
                                  .n_input_types = 1,
                                  .input_types = {QKV_DTYPE_BIT(QKV_DTYPE_FLOAT)},
                                  .init = echo_init,
                                  .infer = echo_infer,
                                  .compute = echo_compute};
static const qkv_kernel *const kernels[] = {&k_echo};
static const qkv_plugin_info info = {.struct_size = sizeof(qkv_plugin_info),
                                     .abi_version = QKV_ABI_VERSION,
                                     .name = "fx_log",
                                     .version = "0.0.1",
                                     .n_kernels = 1,
                                     .kernels = kernels};

QKV_PLUGIN_EXPORT qkv_status qkv_plugin_init(const qkv_host_api *host, const qkv_plugin_info **out,
                                             char *errbuf, size_t errbuf_size)
{
    (void)host;
    (void)errbuf;
    (void)errbuf_size;
    *out = &info;
    return QKV_OK;
}
