/*
 * onednn_backend.c - the entry point of libqkv_onednn.so, the backend
 * "onednn" (priority 200: ahead of openblas at 100 and cpu at 0).
 *
 * Provides float32 MatMul, Gemm and qkv.FusedMatMul kernels on oneDNN's
 * matmul primitive (onednn_kernels.c), weights prepacked once per session,
 * and a GEMM provider on dnnl_sgemm (onednn_gemm.c). supports() takes only
 * the shapes those kernels handle; every other node goes to the next
 * backend (openblas, then cpu).
 *
 * Load-time checks, each refusing to load with a message (the host then
 * fails session creation, naming QKV_PLUGIN_PATH / --no-default-plugins):
 *  - the host speaks the plugin ABI 1.x with x >= 1 (prepack needs
 *    node_input_const and node_input_packed);
 *  - the oneDNN library found at run time has the major version and CPU
 *    runtime (OpenMP or sequential) this plugin was compiled for;
 *  - oneDNN has a CPU engine.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "onednn_plugin.h"

#ifndef QKV_ONEDNN_PLUGIN_VERSION
#define QKV_ONEDNN_PLUGIN_VERSION "0"
#endif

#if DNNL_CPU_RUNTIME != DNNL_RUNTIME_OMP && DNNL_CPU_RUNTIME != DNNL_RUNTIME_SEQ
#error "the onednn plugin supports oneDNN's OpenMP and sequential CPU runtimes only"
#endif

typedef struct dn_state {
    dn_plugin plugin;
    qkv_kernel kernels[DN_N_KERNELS];
    const qkv_kernel *kernel_ptrs[DN_N_KERNELS];
    qkv_backend backend;
    const qkv_backend *backends[1];
    qkv_plugin_info info;
} dn_state;

/* ---- supports ------------------------------------------------------------------ */

static bool all_float(const qkv_host_api *host, const qkv_node_ctx *node)
{
    size_t n = host->node_input_count(node);
    for (size_t k = 0; k < n; k++)
        if (host->node_input_present(node, k) && host->node_input_dtype(node, k) != QKV_DTYPE_FLOAT)
            return false;
    return true;
}

/* MatMul: B rank 2 (A's batch folds into M), or A and B of one rank >= 3
 * whose batch dims are not known to differ (broadcasting batches are left
 * to other backends; one that only shows at run time goes to host->gemm). */
static bool matmul_shapes_ok(const qkv_host_api *host, const qkv_node_ctx *node)
{
    int64_t da[QKV_MAX_RANK], db[QKV_MAX_RANK];
    int32_t ra = host->node_input_shape(node, 0, da, QKV_MAX_RANK);
    int32_t rb = host->node_input_shape(node, 1, db, QKV_MAX_RANK);
    if (ra < 1 || rb < 2 || ra > QKV_MAX_RANK || rb > QKV_MAX_RANK)
        return false;
    if (rb == 2)
        return true;
    if (ra != rb)
        return false;
    for (int32_t i = 0; i < ra - 2; i++)
        if (da[i] >= 0 && db[i] >= 0 && da[i] != db[i])
            return false;
    return true;
}

static int dn_supports(void *user, const qkv_host_api *host, const qkv_node_ctx *node)
{
    (void)user;
    const char *op = host->node_op_type(node);
    if (!all_float(host, node))
        return 0;
    if (strcmp(op, "MatMul") == 0)
        return matmul_shapes_ok(host, node);
    if (strcmp(op, "FusedMatMul") == 0) {
        int64_t d[QKV_MAX_RANK];
        return host->node_input_shape(node, 1, d, QKV_MAX_RANK) == 2 &&
               host->node_input_shape(node, 0, d, QKV_MAX_RANK) >= 1;
    }
    return strcmp(op, "Gemm") == 0;
}

/* ---- init / fini ------------------------------------------------------------------ */

static void dn_fini(void *user)
{
    dn_state *s = user;
    if (!s)
        return;
    if (s->plugin.engine)
        dnnl_engine_destroy(s->plugin.engine);
    free(s);
}

/* NULL when the host and the oneDNN library are usable, else the reason. */
static const char *check_environment(const qkv_host_api *host, char *buf, size_t cap)
{
    if (!host || QKV_ABI_VERSION_MAJOR(host->abi_version) != QKV_ABI_MAJOR ||
        QKV_ABI_VERSION_MINOR(host->abi_version) < 1 || !QKV_HOST_HAS(host, node_input_const) ||
        !QKV_HOST_HAS(host, node_input_packed)) {
        unsigned v = host ? host->abi_version : 0;
        snprintf(buf, cap,
                 "the onednn backend needs the qkv plugin ABI 1.1 or a later 1.x (prepack: "
                 "node_input_const, node_input_packed); this qkv speaks %u.%u",
                 QKV_ABI_VERSION_MAJOR(v), QKV_ABI_VERSION_MINOR(v));
        return buf;
    }
    const dnnl_version_t *v = dnnl_version();
    if (!v || v->major != DNNL_VERSION_MAJOR || v->cpu_runtime != DNNL_CPU_RUNTIME) {
        snprintf(buf, cap,
                 "the oneDNN library loaded (%d.%d.%d, CPU runtime %u) is not the one this "
                 "plugin was built for (%d.x, CPU runtime %u)",
                 v ? v->major : 0, v ? v->minor : 0, v ? v->patch : 0, v ? v->cpu_runtime : 0,
                 DNNL_VERSION_MAJOR, (unsigned)DNNL_CPU_RUNTIME);
        return buf;
    }
    if (dnnl_engine_get_count(dnnl_cpu) == 0) {
        snprintf(buf, cap, "oneDNN has no CPU engine");
        return buf;
    }
    return NULL;
}

static const char *isa_name(dnnl_cpu_isa_t isa)
{
    switch (isa) {
    case dnnl_cpu_isa_sse41:
        return "sse41";
    case dnnl_cpu_isa_avx:
        return "avx";
    case dnnl_cpu_isa_avx2:
        return "avx2";
    case dnnl_cpu_isa_avx2_vnni:
        return "avx2_vnni";
    case dnnl_cpu_isa_avx512_core:
        return "avx512_core";
    case dnnl_cpu_isa_avx512_core_vnni:
        return "avx512_core_vnni";
    case dnnl_cpu_isa_avx512_core_bf16:
        return "avx512_core_bf16";
    case dnnl_cpu_isa_avx512_core_amx:
        return "avx512_core_amx";
    default:
        return "other";
    }
}

/* oneDNN picks its kernels from the CPU itself; the host's features are
 * capped by QKV_ISA, so the same cap is passed on (tests run every level).
 * dnnl_set_max_cpu_isa works only before oneDNN's first use in the process
 * and only lowers the level; the user's DNNL_MAX_CPU_ISA wins. */
static void cap_isa(const qkv_host_api *host)
{
    if (getenv("DNNL_MAX_CPU_ISA") || getenv("ONEDNN_MAX_CPU_ISA"))
        return;
    uint64_t f = host->cpu_features();
    if (f & QKV_CPU_AVX512)
        return;
    dnnl_set_max_cpu_isa((f & QKV_CPU_AVX2) ? dnnl_cpu_isa_avx2 : dnnl_cpu_isa_sse41);
}

static const char *dn_describe(void *user)
{
    const dn_state *s = user;
    return s->plugin.description;
}

/* Read by the host before init: a qkv of another ABI major refuses this
 * library without running any of it. */
QKV_PLUGIN_EXPORT const uint32_t qkv_plugin_abi_version = QKV_ABI_VERSION;

QKV_PLUGIN_EXPORT qkv_status qkv_plugin_init(const qkv_host_api *host, const qkv_plugin_info **out,
                                             char *errbuf, size_t errbuf_size)
{
    const char *why = check_environment(host, errbuf, errbuf_size);
    if (why)
        return QKV_ERR_PLUGIN;
    dn_state *s = calloc(1, sizeof *s);
    if (!s) {
        snprintf(errbuf, errbuf_size, "out of memory");
        return QKV_ERR_OUT_OF_MEMORY;
    }
    if (QKV_HOST_HAS(host, cpu_features))
        cap_isa(host);
    dnnl_status_t ds = dnnl_engine_create(&s->plugin.engine, dnnl_cpu, 0);
    if (ds != dnnl_success) {
        s->plugin.engine = NULL;
        dn_fini(s);
        snprintf(errbuf, errbuf_size, "oneDNN: creating the CPU engine failed (%s)",
                 dn_status_name(ds));
        return QKV_ERR_PLUGIN;
    }
    dn_kernels(s->kernels, &s->plugin);
    for (size_t i = 0; i < DN_N_KERNELS; i++)
        s->kernel_ptrs[i] = &s->kernels[i];
    s->backend = (qkv_backend){
        .struct_size = sizeof(qkv_backend),
        .abi_version = QKV_ABI_VERSION,
        .name = DN_BACKEND_NAME,
        .priority = DN_PRIORITY,
        .user = s,
        .n_kernels = DN_N_KERNELS,
        .kernels = s->kernel_ptrs,
        .supports = dn_supports,
        .gemm = dn_gemm_provider,
        .describe = dn_describe,
    };
    const dnnl_version_t *v = dnnl_version();
    snprintf(s->plugin.description, sizeof s->plugin.description,
             "oneDNN %d.%d.%d (%s runtime), ISA %s", v->major, v->minor, v->patch,
             v->cpu_runtime == DNNL_RUNTIME_OMP ? "OpenMP" : "sequential",
             isa_name(dnnl_get_effective_cpu_isa()));
    s->backends[0] = &s->backend;
    s->info = (qkv_plugin_info){
        .struct_size = sizeof(qkv_plugin_info),
        .abi_version = QKV_ABI_VERSION,
        .name = DN_BACKEND_NAME,
        .version = QKV_ONEDNN_PLUGIN_VERSION,
        .n_backends = 1,
        .backends = s->backends,
        .user = s,
        .fini = dn_fini,
    };
    *out = &s->info;
    return QKV_OK;
}
