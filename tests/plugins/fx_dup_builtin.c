/* fx_dup_builtin.c - a plain kernel for the built-in op Relu: refused at
 * load, naming the built-in (taking over a built-in op is a backend's job). */
#include "qkv_plugin.h"

static qkv_status relu_compute(const void *state, qkv_kernel_io *io)
{
    (void)state;
    (void)io;
    return QKV_OK;
}

static const qkv_kernel k_relu = {.struct_size = sizeof(qkv_kernel),
                                  .abi_version = QKV_ABI_VERSION,
                                  .domain = "",
                                  .op_type = "Relu",
                                  .since_version = 14,
                                  .min_inputs = 1,
                                  .max_inputs = 1,
                                  .min_outputs = 1,
                                  .max_outputs = 1,
                                  .compute = relu_compute};
static const qkv_kernel *const kernels[] = {&k_relu};
static const qkv_plugin_info info = {.struct_size = sizeof(qkv_plugin_info),
                                     .abi_version = QKV_ABI_VERSION,
                                     .name = "fx_dup_builtin",
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
