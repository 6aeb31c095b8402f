/* fx_dup_backend.c - a backend named "testbk", as fx_good's: a session
 * loading both refuses, naming both libraries. */
#include "qkv_plugin.h"

static qkv_status sigmoid_compute(const void *state, qkv_kernel_io *io)
{
    (void)state;
    (void)io;
    return QKV_OK;
}

static const qkv_kernel k_sigmoid = {.struct_size = sizeof(qkv_kernel),
                                     .abi_version = QKV_ABI_VERSION,
                                     .domain = "",
                                     .op_type = "Sigmoid",
                                     .since_version = 13,
                                     .min_inputs = 1,
                                     .max_inputs = 1,
                                     .min_outputs = 1,
                                     .max_outputs = 1,
                                     .compute = sigmoid_compute};
static const qkv_kernel *const kernels[] = {&k_sigmoid};
static const qkv_backend backend = {.struct_size = sizeof(qkv_backend),
                                    .abi_version = QKV_ABI_VERSION,
                                    .name = "testbk",
                                    .priority = 10,
                                    .n_kernels = 1,
                                    .kernels = kernels};
static const qkv_backend *const backends[] = {&backend};
static const qkv_plugin_info info = {.struct_size = sizeof(qkv_plugin_info),
                                     .abi_version = QKV_ABI_VERSION,
                                     .name = "fx_dup_backend",
                                     .n_backends = 1,
                                     .backends = backends};

QKV_PLUGIN_EXPORT qkv_status qkv_plugin_init(const qkv_host_api *host, const qkv_plugin_info **out,
                                             char *errbuf, size_t errbuf_size)
{
    (void)host;
    (void)errbuf;
    (void)errbuf_size;
    *out = &info;
    return QKV_OK;
}
