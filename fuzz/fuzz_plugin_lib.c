/*
 * fuzz_plugin_lib.c - the plugin library that fuzz_plugin.c loads: its
 * qkv_plugin_init returns a descriptor table decoded from the bytes last
 * handed to fuzz_plugin_set, so every field a plugin controls is mutated:
 * struct sizes and ABI versions, names and domains, opset ranges, arities,
 * dtype tables, flags and in-place inputs, which callbacks exist, and what
 * each callback does (succeed, fail, claim odd shapes and dtypes, ask for
 * scratch, pack inputs that may not be constants, misuse output_alloc).
 *
 * Everything lives in static storage rewritten by each init: the host may
 * keep pointers into it until fini, and the harness loads the library
 * again only after the previous session (and so fini) is gone.
 */
#include <stdint.h>
#include <string.h>

#include "qkv_plugin.h"

#define MAX_KERNELS 4
#define MAX_BACKENDS 2
#define INPUT_BYTES 4096

/* What one kernel's callbacks do; each kernel's `user` points at one. */
typedef struct behaviour {
    uint8_t init, infer, prepare, compute, prepack, supports;
    qkv_dtype dtype;
    int32_t rank;
    int64_t dims[QKV_MAX_RANK + 1];
    size_t scratch;
    size_t pack_input, pack_bytes;
} behaviour;

typedef struct reader {
    uint8_t buf[INPUT_BYTES];
    size_t n, pos;
} reader;

static reader input;
static qkv_kernel kernels[MAX_KERNELS];
static behaviour behaviours[MAX_KERNELS];
static const qkv_kernel *kernel_ptrs[MAX_KERNELS];
static qkv_backend backends[MAX_BACKENDS];
static const qkv_backend *backend_ptrs[MAX_BACKENDS];
static const qkv_kernel *backend_kernels[MAX_BACKENDS][MAX_KERNELS];
static qkv_plugin_info info;
static char names[8][16];

/* Called by the harness (through dlsym) before the library is loaded by qkv. */
QKV_PLUGIN_EXPORT void fuzz_plugin_set(const uint8_t *data, size_t size);
void fuzz_plugin_set(const uint8_t *data, size_t size)
{
    input.n = size < INPUT_BYTES ? size : INPUT_BYTES;
    memcpy(input.buf, data, input.n);
    input.pos = 0;
}

static uint8_t byte(void) { return input.pos < input.n ? input.buf[input.pos++] : 0; }

static uint32_t u32(void)
{
    uint32_t v = byte();
    v = v << 8 | byte();
    v = v << 8 | byte();
    return v << 8 | byte();
}

/* A small signed value, now and then an extreme one. */
static int32_t small_int(int32_t lo, int32_t hi)
{
    uint8_t b = byte();
    if (b == 0xff)
        return INT32_MAX;
    if (b == 0xfe)
        return INT32_MIN;
    return lo + (int32_t)(b % (uint8_t)(hi - lo + 1));
}

/* A string from a few meaningful ones, or a short one of raw bytes. */
static const char *pick_string(const char *const *choices, size_t n, size_t slot)
{
    uint8_t b = byte();
    if (b < 200)
        return choices[b % n];
    if (b < 220)
        return NULL;
    char *s = names[slot % 8];
    size_t len = byte() % 15;
    for (size_t i = 0; i < len; i++)
        s[i] = (char)(byte() | 1); /* no NUL inside */
    s[len] = '\0';
    return s;
}

static uint32_t pick_size(uint32_t real)
{
    uint8_t b = byte();
    if (b < 200)
        return real;
    if (b < 220)
        return real / 2;
    return u32() % (real * 2 + 1);
}

static uint32_t pick_abi(void)
{
    uint8_t b = byte();
    if (b < 220)
        return QKV_ABI_VERSION;
    if (b < 240)
        return ((uint32_t)QKV_ABI_MAJOR << 16) | (u32() & 0xffffu);
    return u32();
}

/* ---- the callbacks: behaviour from the kernel's user pointer ------------- */

static qkv_status k_init(const qkv_kernel *k, const qkv_host_api *host, const qkv_node_ctx *node,
                         void **state)
{
    const behaviour *b = k->user;
    if (!b)
        return QKV_OK;
    if (b->init == 1)
        return host->node_error(node, QKV_ERR_PLUGIN, "fuzz kernel refuses its node");
    if (b->init == 2) {
        int64_t v;
        const int64_t *ints;
        size_t n;
        (void)host->attr_int(node, "a", 0, &v);
        (void)host->attr_ints(node, "b", &ints, &n);
        (void)host->node_input_dtype(node, 0);
        int64_t dims[QKV_MAX_RANK];
        (void)host->node_input_shape(node, 7, dims, QKV_MAX_RANK);
    }
    *state = (void *)b;
    return QKV_OK;
}

static qkv_status k_infer(void *state, qkv_kernel_io *io)
{
    const behaviour *b = state;
    uint8_t mode = b ? b->infer : 0;
    if (mode == 1)
        return io->host->error(io->host_ctx, QKV_ERR_SHAPE, "fuzz infer fails");
    for (size_t j = 0; j < io->n_outputs; j++) {
        qkv_tensor *o = &io->outputs[j];
        if (mode == 2 && b) {
            o->dtype = b->dtype;
            o->rank = b->rank;
            for (int32_t d = 0; d < b->rank && d < QKV_MAX_RANK; d++)
                o->dims[d] = b->dims[d];
        } else if (io->n_inputs > 0) {
            const qkv_tensor *x = &io->inputs[0];
            o->dtype = x->dtype;
            o->rank = x->rank;
            for (int32_t d = 0; d < x->rank && d < QKV_MAX_RANK; d++)
                o->dims[d] = x->dims[d];
        }
    }
    return QKV_OK;
}

static qkv_status k_prepare(void *state, qkv_kernel_io *io)
{
    const behaviour *b = state;
    if (b && b->prepare == 1)
        return io->host->error(io->host_ctx, QKV_ERR_INVALID_ARGUMENT, "fuzz prepare fails");
    io->scratch_bytes = b ? b->scratch : 0;
    return QKV_OK;
}

static qkv_status k_compute(const void *state, qkv_kernel_io *io)
{
    const behaviour *b = state;
    uint8_t mode = b ? b->compute : 0;
    if (mode == 1)
        return io->host->error(io->host_ctx, QKV_ERR_INVALID_ARGUMENT, "fuzz compute fails");
    if (io->scratch && io->scratch_bytes)
        memset(io->scratch, 0x5a, io->scratch_bytes);
    for (size_t j = 0; j < io->n_outputs; j++) {
        qkv_tensor *o = &io->outputs[j];
        if (mode == 2 && b) {
            qkv_status st = io->host->output_alloc(io, j, b->dtype, b->rank, b->dims);
            if (st != QKV_OK)
                return st;
        }
        if (o->data && o->dtype != QKV_DTYPE_STRING)
            memset(o->data, 0, o->data_bytes);
    }
    return QKV_OK;
}

static void k_destroy(void *state) { (void)state; }

static qkv_status k_prepack(void **state, const qkv_host_api *host, const qkv_node_ctx *node)
{
    const behaviour *b = *state;
    if (!b || !b->prepack)
        return QKV_OK;
    if (QKV_HOST_HAS(host, node_input_const))
        (void)host->node_input_const(node, b->pack_input);
    if (b->prepack == 2 && QKV_HOST_HAS(host, node_input_packed))
        return host->node_input_packed(node, b->pack_input, b->pack_bytes);
    return QKV_OK;
}

static int b_supports(void *user, const qkv_host_api *host, const qkv_node_ctx *node)
{
    (void)host;
    (void)node;
    return user ? ((const behaviour *)user)->supports & 1 : 1;
}

static qkv_status b_gemm(void *user, const qkv_host_api *host, void *host_ctx, const qkv_gemm *g)
{
    (void)g;
    if (user && ((const behaviour *)user)->supports & 2)
        return host->error(host_ctx, QKV_ERR_INTERNAL, "fuzz gemm fails");
    return QKV_ERR_UNSUPPORTED;
}

static const char *b_describe(void *user)
{
    (void)user;
    return "fuzz backend";
}

/* ---- decoding the descriptors --------------------------------------------- */

static void decode_behaviour(behaviour *b)
{
    b->init = byte() % 3;
    b->infer = byte() % 3;
    b->prepare = byte() % 2;
    b->compute = byte() % 3;
    b->prepack = byte() % 3;
    b->supports = byte();
    b->dtype = (qkv_dtype)(byte() % 30);
    b->rank = small_int(-2, QKV_MAX_RANK + 1);
    for (int d = 0; d <= QKV_MAX_RANK; d++)
        b->dims[d] = small_int(-2, 5);
    b->scratch = byte() < 250 ? byte() * 16u : (size_t)(u32() % (1u << 20));
    b->pack_input = byte() % 4;
    b->pack_bytes = u32();
}

static void decode_kernel(size_t i)
{
    static const char *const domains[] = {"fuzz", "", "ai.onnx", "fuzz"};
    static const char *const ops[] = {"F", "MatMul", "Relu", "F"};
    qkv_kernel *k = &kernels[i];
    behaviour *b = &behaviours[i];
    memset(k, 0, sizeof *k);
    decode_behaviour(b);
    k->struct_size = pick_size(sizeof *k);
    k->abi_version = pick_abi();
    k->domain = pick_string(domains, 4, i);
    k->op_type = pick_string(ops, 4, 4 + i);
    k->since_version = small_int(-1, 20);
    k->until_version = byte() < 200 ? 0 : small_int(-1, 20);
    k->min_inputs = small_int(-1, 3);
    k->max_inputs = small_int(-2, 4);
    k->min_outputs = small_int(-1, 2);
    k->max_outputs = small_int(-2, 3);
    k->n_input_types = (uint32_t)small_int(0, QKV_KERNEL_MAX_TYPED_IO + 1);
    for (size_t t = 0; t < QKV_KERNEL_MAX_TYPED_IO; t++)
        k->input_types[t] = byte() < 128 ? 0 : ((uint64_t)u32() << 32 | u32());
    k->flags = byte() & 0x7u;
    k->inplace_input = small_int(-2, 3);
    k->user = b;
    uint8_t present = byte();
    k->init = present & 1 ? k_init : NULL;
    k->infer = present & 2 ? k_infer : NULL;
    k->prepare = present & 4 ? k_prepare : NULL;
    k->compute = present & 8 ? NULL : k_compute;
    k->destroy = present & 16 ? k_destroy : NULL;
    k->prepack = present & 32 ? k_prepack : NULL;
    kernel_ptrs[i] = k;
}

static void decode_backend(size_t i, size_t n_kernels)
{
    static const char *const bnames[] = {"fz", "fz2", "cpu", "bad name"};
    qkv_backend *bk = &backends[i];
    memset(bk, 0, sizeof *bk);
    bk->struct_size = pick_size(sizeof *bk);
    bk->abi_version = pick_abi();
    bk->name = pick_string(bnames, 4, 6 + i);
    bk->priority = small_int(-5, 300);
    bk->user = n_kernels ? &behaviours[byte() % n_kernels] : NULL;
    size_t n = n_kernels ? byte() % (n_kernels + 1) : 0;
    for (size_t j = 0; j < n; j++)
        backend_kernels[i][j] = kernel_ptrs[byte() % n_kernels];
    bk->n_kernels = byte() < 240 ? n : n + 1 + byte() % 3; /* sometimes a count beyond */
    if (bk->n_kernels > MAX_KERNELS)
        bk->n_kernels = n;
    bk->kernels = n || byte() < 128 ? backend_kernels[i] : NULL;
    uint8_t present = byte();
    bk->supports = present & 1 ? b_supports : NULL;
    bk->gemm = present & 2 ? b_gemm : NULL;
    bk->describe = present & 4 ? b_describe : NULL;
}

QKV_PLUGIN_EXPORT qkv_status qkv_plugin_init(const qkv_host_api *host, const qkv_plugin_info **out,
                                             char *errbuf, size_t errbuf_size)
{
    (void)host;
    input.pos = 0;
    if (byte() == 0xff) {
        if (errbuf_size)
            strncpy(errbuf, "fuzz init fails", errbuf_size - 1);
        return QKV_ERR_PLUGIN;
    }
    size_t n_kernels = byte() % (MAX_KERNELS + 1);
    size_t n_backends = byte() % (MAX_BACKENDS + 1);
    for (size_t i = 0; i < n_kernels; i++)
        decode_kernel(i);
    for (size_t i = 0; i < n_backends; i++)
        decode_backend(i, n_kernels);
    memset(&info, 0, sizeof info);
    info.struct_size = pick_size(sizeof info);
    info.abi_version = pick_abi();
    info.name = byte() < 200 ? "fuzz" : NULL;
    info.version = "0";
    info.n_kernels = byte() < 64 ? 0 : n_kernels;
    info.kernels = info.n_kernels || byte() < 128 ? kernel_ptrs : NULL;
    info.n_backends = n_backends;
    info.backends = n_backends || byte() < 128 ? backend_ptrs : NULL;
    for (size_t i = 0; i < n_backends; i++)
        backend_ptrs[i] = &backends[i];
    *out = byte() == 0xfe ? NULL : &info;
    return QKV_OK;
}
