/*
 * fx_fake_openblas_no_dgemm.c - an "OpenBLAS" (it has openblas_get_corename)
 * without cblas_dgemm: the OpenBLAS plugin must refuse it at init, naming
 * the missing symbol. Not a qkv plugin.
 */
#define FAKE_EXPORT __attribute__((visibility("default")))

FAKE_EXPORT char *openblas_get_corename(void)
{
    static char name[] = "Haswell";
    return name;
}

FAKE_EXPORT void openblas_set_num_threads(int n) { (void)n; }

FAKE_EXPORT void cblas_sgemm(int order, int ta, int tb, int m, int n, int k, float alpha,
                             const float *a, int lda, const float *b, int ldb, float beta, float *c,
                             int ldc)
{
    (void)order, (void)ta, (void)tb, (void)m, (void)n, (void)k, (void)alpha, (void)a;
    (void)lda, (void)b, (void)ldb, (void)beta, (void)c, (void)ldc;
}
