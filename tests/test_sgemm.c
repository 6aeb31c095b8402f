/* The float32 GEMM (ops/util/sgemm.h) at every ISA level this CPU has, packed
 * and unpacked B, against a float64 reference on random shapes. */
#include <criterion/criterion.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "cpu_features.h"
#include "sgemm.h"

/* A deterministic generator, so a failure repeats. */
static uint64_t rng_next(uint64_t *s)
{
    *s = *s * 6364136223846793005ull + 1442695040888963407ull;
    return *s >> 33;
}

static void fill(float *x, size_t n, uint64_t *s)
{
    for (size_t i = 0; i < n; i++)
        x[i] = (float)((double)rng_next(s) / (double)(1ull << 31)) * 2.0f - 1.0f;
}

typedef struct shape {
    size_t m, n, k;
    bool ta, tb;
    float alpha, beta;
} shape;

/* Runs one GEMM with arch (packed B when `packed`) and checks every element
 * against a float64 reference. The tolerance grows with k: float32 sums of k
 * products of values in [-1, 1] round with a relative error about
 * k * 2^-24 of the sum of magnitudes, so 1e-6 * k (plus 1e-5) bounds it. */
static void check(const qkv_sgemm_arch *arch, shape sh, bool packed, uint64_t seed)
{
    size_t lda = (sh.ta ? sh.m : sh.k) + 3, ldb = (sh.tb ? sh.k : sh.n) + 1, ldc = sh.n + 5;
    size_t arows = sh.ta ? sh.k : sh.m, brows = sh.tb ? sh.n : sh.k;
    float *a = malloc((arows * lda + 1) * sizeof *a), *b = malloc((brows * ldb + 1) * sizeof *b);
    float *c = malloc((sh.m * ldc + 1) * sizeof *c), *c0 = malloc((sh.m * ldc + 1) * sizeof *c0);
    uint64_t s = seed;
    fill(a, arows * lda, &s);
    fill(b, brows * ldb, &s);
    fill(c0, sh.m * ldc, &s);
    if (sh.beta == 0) /* beta 0: C is not read, NaN included */
        for (size_t i = 0; i < sh.m * ldc; i++)
            c0[i] = NAN;
    memcpy(c, c0, sh.m * ldc * sizeof *c);
    qkv_gemm g = {.struct_size = sizeof g,
                  .abi_version = QKV_ABI_VERSION,
                  .dtype = QKV_DTYPE_FLOAT,
                  .trans_a = sh.ta,
                  .trans_b = sh.tb,
                  .m = sh.m,
                  .n = sh.n,
                  .k = sh.k,
                  .alpha = sh.alpha,
                  .beta = sh.beta,
                  .a = a,
                  .lda = lda,
                  .b = b,
                  .ldb = ldb,
                  .c = c,
                  .ldc = ldc};
    qkv_sgemm_packed_b pb = {.arch = arch, .k = sh.k, .n = sh.n};
    if (packed) {
        size_t floats = qkv_sgemm_packed_b_floats(arch, sh.k, sh.n);
        pb.data = malloc((floats + 1) * sizeof(float));
        qkv_sgemm_pack_b(arch, b, ldb, sh.tb, sh.k, sh.n, pb.data);
    }
    qkv_sgemm_run(NULL, NULL, arch, &g, packed ? &pb : NULL);
    for (size_t i = 0; i < sh.m; i++) {
        for (size_t j = 0; j < sh.n; j++) {
            double acc = 0;
            for (size_t p = 0; p < sh.k; p++) {
                double av = sh.ta ? a[p * lda + i] : a[i * lda + p];
                double bv = sh.tb ? b[j * ldb + p] : b[p * ldb + j];
                acc += av * bv;
            }
            double want = sh.alpha * acc + (sh.beta != 0 ? sh.beta * c0[i * ldc + j] : 0);
            double got = c[i * ldc + j];
            double tol = 1e-5 + 1e-6 * (double)sh.k;
            cr_assert(fabs(got - want) <= tol,
                      "%s%s m=%zu n=%zu k=%zu ta=%d tb=%d alpha=%g beta=%g: C[%zu,%zu] = %.7g, "
                      "expected %.7g",
                      arch->name, packed ? " packed" : "", sh.m, sh.n, sh.k, sh.ta, sh.tb, sh.alpha,
                      sh.beta, i, j, got, want);
        }
        /* the padding between rows is untouched */
        for (size_t j = sh.n; j < ldc && i + 1 < sh.m; j++)
            cr_assert(memcmp(&c[i * ldc + j], &c0[i * ldc + j], sizeof(float)) == 0,
                      "%s: wrote outside C at [%zu,%zu]", arch->name, i, j);
    }
    free(pb.data);
    free(a);
    free(b);
    free(c);
    free(c0);
}

static void check_all_levels(shape sh, uint64_t seed)
{
    int levels = 0;
    for (int level = QKV_ISA_BASELINE; level <= QKV_ISA_AVX512; level++) {
        const qkv_sgemm_arch *arch = qkv_sgemm_arch_for(level);
        if (!arch)
            continue;
        levels++;
        check(arch, sh, false, seed);
        check(arch, sh, true, seed);
    }
    cr_assert(levels >= 1, "no GEMM kernels at all");
}

Test(sgemm, tile_sized_and_ragged_shapes_at_every_level)
{
    const size_t dims[] = {1, 5, 6, 7, 8, 16, 17, 31, 33, 97};
    uint64_t seed = 1;
    for (size_t i = 0; i < sizeof dims / sizeof dims[0]; i++)
        for (size_t j = 0; j < sizeof dims / sizeof dims[0]; j += 3) {
            shape sh = {dims[i], dims[j], dims[(i + j) % 10], false, false, 1.0f, 0.0f};
            check_all_levels(sh, seed++);
        }
}

Test(sgemm, transposes_alpha_beta)
{
    uint64_t seed = 100;
    for (int ta = 0; ta < 2; ta++)
        for (int tb = 0; tb < 2; tb++) {
            shape sh = {13, 45, 29, ta, tb, 0.5f, 0.0f};
            check_all_levels(sh, seed++);
            sh.beta = 1.0f;
            check_all_levels(sh, seed++);
            sh.alpha = -2.0f;
            sh.beta = 0.25f;
            check_all_levels(sh, seed++);
        }
}

Test(sgemm, several_cache_blocks_in_every_dim)
{
    /* k > kc (256), m > mc (96), n > nc (128): every block boundary */
    shape sh = {200, 300, 600, false, false, 1.0f, 0.5f};
    check_all_levels(sh, 7);
    shape st = {130, 129, 257, true, true, 1.0f, 0.0f};
    check_all_levels(st, 8);
}

Test(sgemm, k_zero_scales_c)
{
    for (int level = QKV_ISA_BASELINE; level <= QKV_ISA_AVX512; level++) {
        const qkv_sgemm_arch *arch = qkv_sgemm_arch_for(level);
        if (!arch)
            continue;
        float c[6] = {1, 2, 3, 4, 5, 6}, a[1] = {0}, b[1] = {0};
        qkv_gemm g = {.struct_size = sizeof g,
                      .abi_version = QKV_ABI_VERSION,
                      .dtype = QKV_DTYPE_FLOAT,
                      .m = 2,
                      .n = 3,
                      .k = 0,
                      .alpha = 1,
                      .beta = 2,
                      .a = a,
                      .lda = 1,
                      .b = b,
                      .ldb = 3,
                      .c = c,
                      .ldc = 3};
        qkv_sgemm_run(NULL, NULL, arch, &g, NULL);
        for (int i = 0; i < 6; i++)
            cr_assert_float_eq(c[i], 2.0f * (float)(i + 1), 0, "%s", arch->name);
    }
}

Test(sgemm, chosen_level_follows_the_cpu)
{
    const qkv_sgemm_arch *arch = qkv_sgemm_arch_get();
    cr_assert_str_eq(arch->name, qkv_isa_name(qkv_cpu_isa()));
    /* a level above the CPU's is refused */
    if (qkv_cpu_isa() < QKV_ISA_AVX512)
        cr_assert_null(qkv_sgemm_arch_for(QKV_ISA_AVX512));
}

typedef struct post_check {
    const float *bias;
    unsigned char *visits; /* (m, n) */
    size_t n;
} post_check;

static void add_bias(const void *arg, size_t batch, float *c, size_t ldc, size_t row0, size_t col0,
                     size_t rows, size_t cols)
{
    const post_check *p = arg;
    (void)batch;
    for (size_t i = 0; i < rows; i++)
        for (size_t j = 0; j < cols; j++) {
            c[i * ldc + j] += p->bias[col0 + j];
            p->visits[(row0 + i) * p->n + col0 + j]++;
        }
}

Test(sgemm, post_runs_once_on_every_final_block)
{
    const size_t m = 100, n = 150, k = 300;
    float *a = malloc(m * k * sizeof *a), *b = malloc(k * n * sizeof *b);
    float *c = malloc(m * n * sizeof *c), *bias = malloc(n * sizeof *bias);
    unsigned char *visits = malloc(m * n);
    uint64_t s = 42;
    fill(a, m * k, &s);
    fill(b, k * n, &s);
    fill(bias, n, &s);
    for (int level = QKV_ISA_BASELINE; level <= QKV_ISA_AVX512; level++) {
        const qkv_sgemm_arch *arch = qkv_sgemm_arch_for(level);
        if (!arch)
            continue;
        memset(visits, 0, m * n);
        post_check pc = {.bias = bias, .visits = visits, .n = n};
        qkv_sgemm_post post = {.fn = add_bias, .arg = &pc};
        qkv_gemm g = {.struct_size = sizeof g,
                      .abi_version = QKV_ABI_VERSION,
                      .dtype = QKV_DTYPE_FLOAT,
                      .m = m,
                      .n = n,
                      .k = k,
                      .alpha = 1,
                      .beta = 0,
                      .a = a,
                      .lda = k,
                      .b = b,
                      .ldb = n,
                      .c = c,
                      .ldc = n};
        qkv_sgemm_run_post(NULL, NULL, arch, &g, NULL, &post);
        for (size_t i = 0; i < m; i++)
            for (size_t j = 0; j < n; j++) {
                double acc = bias[j];
                for (size_t p = 0; p < k; p++)
                    acc += (double)a[i * k + p] * b[p * n + j];
                cr_assert_eq(visits[i * n + j], 1, "%s: [%zu,%zu] visited %d times", arch->name, i,
                             j, visits[i * n + j]);
                cr_assert(fabs(c[i * n + j] - acc) <= 1e-5 + 1e-6 * (double)k,
                          "%s: [%zu,%zu] = %g, expected %g", arch->name, i, j, c[i * n + j], acc);
            }
    }
    free(a);
    free(b);
    free(c);
    free(bias);
    free(visits);
}
