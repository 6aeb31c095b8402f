/* fx_bad_major.c - a plugin from before qkv_plugin_abi_version (no such
 * symbol) whose info claims the ABI 2.0: refused after its init, with both
 * versions in the message. */
#include "qkv_plugin.h"

static qkv_status neg_compute(const void *state, qkv_kernel_io *io)
{
    (void)state;
    (void)io;
    return QKV_OK;
}

static const qkv_kernel k_op = {.struct_size = sizeof(qkv_kernel),
                                .abi_version = (2u << 16) | 0u,
                                .domain = "qkv.major",
                                .op_type = "Op",
                                .since_version = 1,
                                .min_inputs = 1,
                                .max_inputs = 1,
                                .min_outputs = 1,
                                .max_outputs = 1,
                                .compute = neg_compute};
static const qkv_kernel *const kernels[] = {&k_op};
static const qkv_plugin_info info = {.struct_size = sizeof(qkv_plugin_info),
                                     .abi_version = (2u << 16) | 0u,
                                     .name = "fx_bad_major",
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
