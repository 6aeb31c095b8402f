/*
 * openblas_backend.c - the entry point of libqkv_openblas.so, the backend
 * "openblas" (priority 100, ahead of the built-in "cpu" at 0).
 *
 * What it provides:
 *  - kernels for MatMul, Gemm and Einsum: qkv's own ops/matmul.c, gemm.c
 *    and einsum.c compiled into this library, where their GEMMs call
 *    OpenBLAS directly (openblas_gemm.c implements ops/blas.h here);
 *  - supports(): float and double (and, for MatMul, float16/bfloat16, which
 *    it multiplies in float32): the integer MatMuls stay on "cpu";
 *  - a GEMM provider, so the core kernels that multiply matrices inside
 *    (fused attention) use OpenBLAS too whenever this plugin is loaded.
 * So the core library needs no BLAS, and the default build (which builds and
 * finds this plugin) runs at OpenBLAS speed.
 *
 * Like every plugin it reaches qkv only through the host table: the ops/
 * files it compiles use nothing else (the build links with --no-undefined,
 * so a new dependency on the core shows up as a link error here).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "openblas_plugin.h"

/* The descriptor arrays of qkv's op families, compiled into this library. */
const qkv_kernel *qkv_ops_matmul(size_t *count);
const qkv_kernel *qkv_ops_gemm(size_t *count);
const qkv_kernel *qkv_ops_einsum(size_t *count);

#define OPENBLAS_PRIORITY 100

static int is_float_type(qkv_dtype t, int half_ok)
{
    return t == QKV_DTYPE_FLOAT || t == QKV_DTYPE_DOUBLE ||
           (half_ok && (t == QKV_DTYPE_FLOAT16 || t == QKV_DTYPE_BFLOAT16));
}

static int openblas_supports(void *user, const qkv_host_api *host, const qkv_node_ctx *node)
{
    (void)user;
    const char *op = host->node_op_type(node);
    qkv_dtype t = host->node_input_dtype(node, 0);
    /* MatMul of float16/bfloat16 runs in float32 through the same GEMM */
    return is_float_type(t, strcmp(op, "MatMul") == 0);
}

/* Built at init: the pointer array qkv_backend wants and the backend. */
typedef struct openblas_state {
    const qkv_kernel **kernels;
    qkv_backend backend;
    const qkv_backend *backends[1];
    qkv_plugin_info info;
} openblas_state;

static void openblas_fini(void *user)
{
    openblas_state *s = user;
    free(s->kernels);
    free(s);
}

QKV_PLUGIN_EXPORT qkv_status qkv_plugin_init(const qkv_host_api *host, const qkv_plugin_info **out,
                                             char *errbuf, size_t errbuf_size)
{
    (void)host;
    typedef const qkv_kernel *(*family_fn)(size_t *);
    static const family_fn families[] = {qkv_ops_matmul, qkv_ops_gemm, qkv_ops_einsum};
    const size_t n_families = sizeof families / sizeof families[0];
    size_t total = 0;
    for (size_t f = 0; f < n_families; f++) {
        size_t n = 0;
        families[f](&n);
        total += n;
    }
    openblas_state *s = calloc(1, sizeof *s);
    const qkv_kernel **ks = calloc(total, sizeof *ks);
    if (!s || !ks) {
        free(s);
        free(ks);
        snprintf(errbuf, errbuf_size, "out of memory");
        return QKV_ERR_OUT_OF_MEMORY;
    }
    size_t k = 0;
    for (size_t f = 0; f < n_families; f++) {
        size_t n = 0;
        const qkv_kernel *arr = families[f](&n);
        for (size_t i = 0; i < n; i++)
            ks[k++] = &arr[i];
    }
    s->kernels = ks;
    s->backend = (qkv_backend){
        .struct_size = sizeof(qkv_backend),
        .abi_version = QKV_ABI_VERSION,
        .name = "openblas",
        .priority = OPENBLAS_PRIORITY,
        .n_kernels = total,
        .kernels = ks,
        .supports = openblas_supports,
        .gemm = qkv_openblas_gemm,
    };
    s->backends[0] = &s->backend;
    s->info = (qkv_plugin_info){
        .struct_size = sizeof(qkv_plugin_info),
        .abi_version = QKV_ABI_VERSION,
        .name = "openblas",
        .version = QKV_OPENBLAS_PLUGIN_VERSION,
        .n_backends = 1,
        .backends = s->backends,
        .user = s,
        .fini = openblas_fini,
    };
    *out = &s->info;
    return QKV_OK;
}
