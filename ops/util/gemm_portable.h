/*
 * gemm_portable.h - the GEMM host->gemm falls back to: all the runtime sees
 * of qkv's own GEMM (ops/util/blas_portable.c), in the ABI's terms.
 */
#ifndef QKV_GEMM_PORTABLE_H
#define QKV_GEMM_PORTABLE_H

#include "qkv_plugin.h"

/* Runs g with qkv's own sgemm for float32, a plain blocked loop for
 * float64, split over host_ctx's threads with host->parallel_for. g must be
 * valid (qkv_host_gemm checks it). Allocates nothing; uses up to 224 KiB of
 * stack per thread for packed blocks. */
qkv_status qkv_gemm_portable(const qkv_host_api *host, void *host_ctx, const qkv_gemm *g);

#endif /* QKV_GEMM_PORTABLE_H */
