/* fx_dup.c - defines qkv.test.Scale again (as fx_good does): a session
 * loading both must refuse, naming both libraries. Alone it loads. */
#include "qkv_plugin.h"

static qkv_status scale_compute(const void *state, qkv_kernel_io *io)
{
    (void)state;
    (void)io;
    return QKV_OK;
}

static const qkv_kernel k_scale = {.struct_size = sizeof(qkv_kernel),
                                   .abi_version = QKV_ABI_VERSION,
                                   .domain = "qkv.test",
                                   .op_type = "Scale",
                                   .since_version = 1,
                                   .min_inputs = 1,
                                   .max_inputs = 1,
                                   .min_outputs = 1,
                                   .max_outputs = 1,
                                   .compute = scale_compute};
static const qkv_kernel *const kernels[] = {&k_scale};
static const qkv_plugin_info info = {.struct_size = sizeof(qkv_plugin_info),
                                     .abi_version = QKV_ABI_VERSION,
                                     .name = "fx_dup",
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
