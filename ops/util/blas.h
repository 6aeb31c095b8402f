/*
 * blas.h - the one GEMM interface of the kernels: MatMul, Gemm, Einsum and
 * the fused attention kernels describe a strided batch of row-major GEMMs
 * with qkv_blas_gemm and run it with qkv_blas_gemm_run.
 *
 * qkv_blas_gemm_run hands the GEMM to host->gemm, the session's GEMM
 * service: the highest-priority backend that provides a GEMM (the OpenBLAS
 * or oneDNN plugin when loaded), or else qkv's own float32 GEMM (sgemm.h,
 * through blas_portable.c). So the core links no BLAS library, and every
 * core kernel that multiplies matrices uses the best GEMM the session has.
 * A constant B is better packed once (gemm_prepack.h): MatMul and Gemm do.
 *
 * Threading: the work is split over the run context's threads with
 * host->parallel_for by whichever GEMM runs it.
 */
#ifndef QKV_OPS_BLAS_H
#define QKV_OPS_BLAS_H

#include <stdbool.h>
#include <stddef.h>

#include "kernel_util.h"

/* The largest m, n, k (and leading dimension) a cblas call accepts: cblas
 * indexes with a 32-bit int in this build. */
#define QKV_BLAS_MAX_DIM ((size_t)2147483647)

/*
 * A batch of C[b] = alpha * op(A[b]) @ op(B[b]) + beta * C[b], row-major,
 * op(A) of shape (m, k), op(B) (k, n), C (m, n), where the batch index b runs
 * over batch_dims and matrix b of X starts at element
 * sum_j coord_j * x_strides[j] (a stride 0 broadcasts X along that dim).
 * A is stored (m, k) with row stride lda, or (k, m) when trans_a; B is stored
 * (k, n) with row stride ldb, or (n, k) when trans_b; C row stride is ldc.
 * With beta == 0, C need not be initialised (its old contents, NaN included,
 * are ignored).
 */
typedef struct qkv_blas_gemm {
    qkv_dtype dtype; /* QKV_DTYPE_FLOAT or QKV_DTYPE_DOUBLE */
    bool trans_a, trans_b;
    size_t m, n, k;
    double alpha, beta;
    const void *a;
    size_t lda;
    const void *b;
    size_t ldb;
    void *c;
    size_t ldc;
    int32_t batch_rank; /* 0: a single GEMM */
    size_t batch_dims[QKV_MAX_RANK];
    size_t a_strides[QKV_MAX_RANK], b_strides[QKV_MAX_RANK], c_strides[QKV_MAX_RANK];
} qkv_blas_gemm;

/* true when m, n, k and the leading dimensions of g fit a cblas call
 * (<= QKV_BLAS_MAX_DIM). Kernels check this in prepare and report
 * QKV_ERR_UNSUPPORTED otherwise; qkv_blas_gemm_run assumes it. */
bool qkv_blas_gemm_fits(const qkv_blas_gemm *g);

/*
 * Runs the batch described by g, spread over io's threads with
 * io->host->parallel_for when the work is large enough. Allocates nothing.
 * g->dtype must be float or double and qkv_blas_gemm_fits(g) true: both are
 * the caller's contract, checked before compute. Returns QKV_OK, or the
 * error a GEMM provider reported (already written with io->host->error).
 */
qkv_status qkv_blas_gemm_run(qkv_kernel_io *io, const qkv_blas_gemm *g);

/* The ABI form (qkv_plugin.h) of a GEMM description. */
static inline void qkv_blas_to_gemm(const qkv_blas_gemm *g, qkv_gemm *out)
{
    out->struct_size = sizeof *out;
    out->abi_version = QKV_ABI_VERSION;
    out->dtype = g->dtype;
    out->trans_a = g->trans_a;
    out->trans_b = g->trans_b;
    out->m = g->m;
    out->n = g->n;
    out->k = g->k;
    out->alpha = g->alpha;
    out->beta = g->beta;
    out->a = g->a;
    out->lda = g->lda;
    out->b = g->b;
    out->ldb = g->ldb;
    out->c = g->c;
    out->ldc = g->ldc;
    out->batch_rank = g->batch_rank;
    for (int32_t j = 0; j < QKV_MAX_RANK; j++) {
        out->batch_dims[j] = g->batch_dims[j];
        out->a_strides[j] = g->a_strides[j];
        out->b_strides[j] = g->b_strides[j];
        out->c_strides[j] = g->c_strides[j];
    }
}

#endif /* QKV_OPS_BLAS_H */
