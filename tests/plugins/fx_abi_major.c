/*
 * fx_abi_major.c - exports qkv_plugin_abi_version 2.0: the host must refuse
 * it before calling its init. The init counts its calls in an exported
 * counter, which the test reads through its own dlopen of this file (the
 * same library, so the same counter) to see that the host never called it.
 */
#include "qkv_plugin.h"

#define ABI_2_0 ((2u << 16) | 0u)

QKV_PLUGIN_VISIBLE int fx_init_calls;

static qkv_status op_compute(const void *state, qkv_kernel_io *io)
{
    (void)state;
    (void)io;
    return QKV_OK;
}

static const qkv_kernel k_op = {.struct_size = sizeof(qkv_kernel),
                                .abi_version = ABI_2_0,
                                .domain = "qkv.major",
                                .op_type = "Op",
                                .since_version = 1,
                                .min_inputs = 1,
                                .max_inputs = 1,
                                .min_outputs = 1,
                                .max_outputs = 1,
                                .compute = op_compute};
static const qkv_kernel *const kernels[] = {&k_op};
static const qkv_plugin_info info = {.struct_size = sizeof(qkv_plugin_info),
                                     .abi_version = ABI_2_0,
                                     .name = "fx_abi_major",
                                     .n_kernels = 1,
                                     .kernels = kernels};

QKV_PLUGIN_EXPORT const uint32_t qkv_plugin_abi_version = ABI_2_0;

QKV_PLUGIN_EXPORT qkv_status qkv_plugin_init(const qkv_host_api *host, const qkv_plugin_info **out,
                                             char *errbuf, size_t errbuf_size)
{
    (void)host;
    (void)errbuf;
    (void)errbuf_size;
    fx_init_calls++;
    *out = &info;
    return QKV_OK;
}
