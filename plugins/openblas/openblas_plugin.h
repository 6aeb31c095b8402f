/*
 * openblas_plugin.h - what the OpenBLAS backend plugin's files share: the
 * OpenBLAS library it loaded at run time (openblas_load.c) and the GEMM
 * provider that calls it (openblas_gemm.c).
 */
#ifndef QKV_OPENBLAS_PLUGIN_H
#define QKV_OPENBLAS_PLUGIN_H

#include "qkv_plugin.h"

/* The CBLAS entry points, as the LP64 libopenblas.so.0 exports them (a
 * 32-bit int for dims; the enums are CBLAS's: RowMajor 101, NoTrans 111,
 * Trans 112). Declared here so the plugin needs no BLAS headers. */
enum { OPENBLAS_ROW_MAJOR = 101, OPENBLAS_NO_TRANS = 111, OPENBLAS_TRANS = 112 };
typedef void (*openblas_sgemm_fn)(int order, int trans_a, int trans_b, int m, int n, int k,
                                  float alpha, const float *a, int lda, const float *b, int ldb,
                                  float beta, float *c, int ldc);
typedef void (*openblas_dgemm_fn)(int order, int trans_a, int trans_b, int m, int n, int k,
                                  double alpha, const double *a, int lda, const double *b, int ldb,
                                  double beta, double *c, int ldc);

/* How the core OpenBLAS runs came to be chosen. */
typedef enum openblas_core_source {
    OPENBLAS_CORE_BY_QKV,      /* qkv set OPENBLAS_CORETYPE from the CPU features */
    OPENBLAS_CORE_BY_USER,     /* the user's OPENBLAS_CORETYPE */
    OPENBLAS_CORE_BY_OPENBLAS, /* OpenBLAS's own detection (no AVX2, or QKV_ISA capped it) */
    OPENBLAS_CORE_PRELOADED    /* OpenBLAS was loaded before the plugin: its choice stands */
} openblas_core_source;

/* The loaded OpenBLAS: one per plugin load, read-only after openblas_load. */
typedef struct openblas_lib {
    void *handle; /* dlopen handle (a reference of our own, also when preloaded) */
    openblas_sgemm_fn sgemm;
    openblas_dgemm_fn dgemm;
    void (*set_num_threads)(int n);
    char *(*get_corename)(void);
    char soname[256];       /* the name it was loaded by (a copy: getenv's may move) */
    const char *asked_core; /* what qkv set OPENBLAS_CORETYPE to (BY_QKV), else NULL */
    openblas_core_source source;
    int generic;        /* runs kernels without AVX2 on a CPU that has AVX2 */
    char describe[256]; /* qkv_backend.describe's answer */
} openblas_lib;

/*
 * Loads OpenBLAS into lib (see openblas_load.c for the order and the
 * OPENBLAS_CORETYPE choice), resolves its entry points, sets it to one
 * thread, writes lib->describe and logs a warning through host->log when it
 * runs generic kernels on an AVX2 CPU. On failure writes the reason into
 * errbuf, leaves nothing loaded and returns QKV_ERR_PLUGIN.
 */
qkv_status qkv_openblas_load(const qkv_host_api *host, openblas_lib *lib, char *errbuf,
                             size_t errbuf_size);

/* Closes what qkv_openblas_load opened. */
void qkv_openblas_unload(openblas_lib *lib);

/* The backend's GEMM provider (qkv_backend.gemm; user is the openblas_lib):
 * float and double within cblas's int range, else QKV_ERR_UNSUPPORTED (the
 * host's portable GEMM then runs it). Splits the batch over
 * host->parallel_for. */
qkv_status qkv_openblas_gemm(void *user, const qkv_host_api *host, void *host_ctx,
                             const qkv_gemm *g);

#endif /* QKV_OPENBLAS_PLUGIN_H */
