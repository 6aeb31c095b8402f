/*
 * blas.c - the core library's side of blas.h: a GEMM goes to host->gemm,
 * the session's GEMM service (a backend's provider such as the OpenBLAS
 * plugin's, or the portable C GEMM in blas_portable.c). The core links no
 * BLAS library.
 */
#include "blas.h"

bool qkv_blas_gemm_fits(const qkv_blas_gemm *g)
{
    /* the limit of a 32-bit cblas, kept in the core so that a model that runs
     * with one backend does not fail with another */
    return g->m <= QKV_BLAS_MAX_DIM && g->n <= QKV_BLAS_MAX_DIM && g->k <= QKV_BLAS_MAX_DIM &&
           g->lda <= QKV_BLAS_MAX_DIM && g->ldb <= QKV_BLAS_MAX_DIM && g->ldc <= QKV_BLAS_MAX_DIM;
}

qkv_status qkv_blas_gemm_run(qkv_kernel_io *io, const qkv_blas_gemm *g)
{
    qkv_gemm abi;
    qkv_blas_to_gemm(g, &abi);
    return io->host->gemm(io->host_ctx, &abi);
}
