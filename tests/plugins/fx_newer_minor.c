/*
 * fx_newer_minor.c - built "for a newer qkv": ABI 1.(minor+1), with structs
 * that grew at the end (fields this host does not know). Accepted: the host
 * reads what it knows, ignores the rest, and the op runs. It exports that
 * newer version as qkv_plugin_abi_version too: accepted before init.
 *   qkv.minor.Neg (1): y = -x
 */
#include "qkv_plugin.h"

#define NEWER_ABI (QKV_ABI_VERSION + 1u)

static qkv_status neg_infer(void *state, qkv_kernel_io *io)
{
    (void)state;
    io->outputs[0] = io->inputs[0];
    io->outputs[0].data = NULL;
    io->outputs[0].data_bytes = 0;
    return QKV_OK;
}

static qkv_status neg_compute(const void *state, qkv_kernel_io *io)
{
    (void)state;
    const float *x = io->inputs[0].data;
    float *y = io->outputs[0].data;
    for (size_t i = 0; i < io->inputs[0].data_bytes / sizeof(float); i++)
        y[i] = -x[i];
    return QKV_OK;
}

/* A kernel descriptor of the "next" minor version: one more field at the end. */
typedef struct kernel_next {
    qkv_kernel v1;
    uint64_t future_flags; /* unknown to this host: must be ignored */
} kernel_next;

typedef struct info_next {
    qkv_plugin_info v1;
    const char *future_name;
    uint64_t future_flags;
} info_next;

static const kernel_next k_neg = {
    .v1 = {.struct_size = sizeof(kernel_next),
           .abi_version = NEWER_ABI,
           .domain = "qkv.minor",
           .op_type = "Neg",
           .since_version = 1,
           .min_inputs = 1,
           .max_inputs = 1,
           .min_outputs = 1,
           .max_outputs = 1,
           .n_input_types = 1,
           .input_types = {QKV_DTYPE_BIT(QKV_DTYPE_FLOAT)},
           .infer = neg_infer,
           .compute = neg_compute},
    .future_flags = 0xdeadbeef,
};
static const qkv_kernel *const kernels[] = {&k_neg.v1};
static const info_next info = {
    .v1 = {.struct_size = sizeof(info_next),
           .abi_version = NEWER_ABI,
           .name = "fx_newer_minor",
           .version = "9.9",
           .n_kernels = 1,
           .kernels = kernels},
    .future_name = "ignored",
    .future_flags = 42,
};

QKV_PLUGIN_EXPORT const uint32_t qkv_plugin_abi_version = NEWER_ABI;

QKV_PLUGIN_EXPORT qkv_status qkv_plugin_init(const qkv_host_api *host, const qkv_plugin_info **out,
                                             char *errbuf, size_t errbuf_size)
{
    (void)host;
    (void)errbuf;
    (void)errbuf_size;
    *out = &info.v1;
    return QKV_OK;
}
