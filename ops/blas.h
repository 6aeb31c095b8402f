/*
 * blas.h - the one place the built-in kernels reach a BLAS library.
 *
 * MatMul, Gemm (and the fused attention kernel) describe a strided batch of
 * row-major GEMMs with qkv_blas_gemm and run it with qkv_blas_gemm_run, which
 * splits the work over the run context's threads and calls OpenBLAS
 * (cblas_sgemm / cblas_dgemm) once per piece. Nothing else includes
 * <cblas.h>, so OpenBLAS can later move into a backend plugin by replacing
 * this file's implementation.
 *
 * Threading. OpenBLAS's thread count is process-global, while qkv runs each
 * context on its own pool (sessions with different thread counts may run at
 * the same time). So OpenBLAS is set to one thread, once, on first use
 * (openblas_set_num_threads(1) under pthread_once), and the parallelism comes
 * from host->parallel_for: batches and row/column blocks of one GEMM are
 * independent cblas calls. Side effect: an application that also uses
 * OpenBLAS in the same process sees its thread count set to 1.
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

/* Sets OpenBLAS to one thread, once per process; safe to call from any
 * thread, any number of times (qkv_blas_gemm_run calls it too). */
void qkv_blas_init(void);

/* true when m, n, k and the leading dimensions of g fit a cblas call
 * (<= QKV_BLAS_MAX_DIM). Kernels check this in prepare and report
 * QKV_ERR_UNSUPPORTED otherwise; qkv_blas_gemm_run assumes it. */
bool qkv_blas_gemm_fits(const qkv_blas_gemm *g);

/*
 * Runs the batch described by g, spread over io's threads with
 * io->host->parallel_for when the work is large enough (each piece a
 * separate single-threaded cblas call: whole batches, or row blocks of C, or
 * column blocks of C when m is small). Allocates nothing. g->dtype must be
 * float or double and qkv_blas_gemm_fits(g) true: both are the caller's
 * contract, checked before compute.
 */
void qkv_blas_gemm_run(qkv_kernel_io *io, const qkv_blas_gemm *g);

#endif /* QKV_OPS_BLAS_H */
