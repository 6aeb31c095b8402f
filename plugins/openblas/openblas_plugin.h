/*
 * openblas_plugin.h - what the OpenBLAS backend plugin's files share.
 */
#ifndef QKV_OPENBLAS_PLUGIN_H
#define QKV_OPENBLAS_PLUGIN_H

#include "qkv_plugin.h"

/* The backend's GEMM provider (qkv_backend.gemm): float and double within
 * cblas's int range, else QKV_ERR_UNSUPPORTED (the host's portable GEMM
 * then runs it). Splits the batch over host->parallel_for. */
qkv_status qkv_openblas_gemm(void *user, const qkv_host_api *host, void *host_ctx,
                             const qkv_gemm *g);

#endif /* QKV_OPENBLAS_PLUGIN_H */
