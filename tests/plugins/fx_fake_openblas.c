/*
 * fx_fake_openblas.c - a stand-in for libopenblas, not a qkv plugin: the
 * OpenBLAS plugin loads it when QKV_OPENBLAS_LIB names it. Like OpenBLAS it
 * reads OPENBLAS_CORETYPE once, in its constructor, and its
 * openblas_get_corename answers that value ("Prescott", a generic core, when
 * unset), so a test sees exactly what the plugin set before loading it.
 * cblas_sgemm/cblas_dgemm are naive row-major loops (all the plugin calls).
 */
#include <stdio.h>
#include <stdlib.h>

#define FAKE_EXPORT __attribute__((visibility("default")))

static char corename[64] = "Prescott";
static int threads = -1;

__attribute__((constructor)) static void fake_openblas_init(void)
{
    const char *env = getenv("OPENBLAS_CORETYPE");
    if (env && env[0])
        snprintf(corename, sizeof corename, "%s", env);
}

FAKE_EXPORT char *openblas_get_corename(void) { return corename; }

FAKE_EXPORT char *openblas_get_config(void)
{
    static char config[] = "OpenBLAS 0.0-fake DYNAMIC_ARCH";
    return config;
}

/* the thread count the plugin set (-1: never called), for the tests */
FAKE_EXPORT int fake_openblas_threads(void) { return threads; }

FAKE_EXPORT void openblas_set_num_threads(int n) { threads = n; }

#define FAKE_GEMM(NAME, T)                                                                         \
    FAKE_EXPORT void NAME(int order, int ta, int tb, int m, int n, int k, T alpha, const T *a,     \
                          int lda, const T *b, int ldb, T beta, T *c, int ldc)                     \
    {                                                                                              \
        (void)order; /* row-major (101) is all the plugin uses */                                  \
        for (int i = 0; i < m; i++)                                                                \
            for (int j = 0; j < n; j++) {                                                          \
                T acc = 0;                                                                         \
                for (int p = 0; p < k; p++)                                                        \
                    acc += (ta == 112 ? a[p * lda + i] : a[i * lda + p]) *                         \
                           (tb == 112 ? b[j * ldb + p] : b[p * ldb + j]);                          \
                c[i * ldc + j] = alpha * acc + (beta == 0 ? 0 : beta * c[i * ldc + j]);            \
            }                                                                                      \
    }

FAKE_GEMM(cblas_sgemm, float)
FAKE_GEMM(cblas_dgemm, double)
