/* The int8 GEMM (ops/igemm.h): every variant this CPU can run (the SIMD
 * ones called directly, whatever QKV_ISA says), every pairing of uint8 and
 * int8 operands, zero points per tensor, row and column, packed and unpacked
 * and transposed B, broadcast batches, against a naive int64 reference. The
 * results are exact, so every element is compared for equality. */
#include <criterion/criterion.h>
#include <stdlib.h>
#include <string.h>

#include "cpu_features.h"
#include "igemm.h"

/* A deterministic generator, so a failure repeats. */
static uint64_t rng_next(uint64_t *s)
{
    *s = *s * 6364136223846793005ull + 1442695040888963407ull;
    return *s >> 33;
}

static void fill_bytes(uint8_t *x, size_t n, uint64_t *s)
{
    for (size_t i = 0; i < n; i++)
        x[i] = (uint8_t)rng_next(s);
}

typedef struct icase {
    size_t m, n, k;
    bool a_signed, b_signed, trans_b;
    int zero_mode; /* 0 none, 1 per tensor, 2 per row of A and column of B */
    size_t batch;  /* entries of A and C; B broadcast when b_broadcast */
    bool b_broadcast;
} icase;

static int32_t val(const uint8_t *p, size_t i, bool is_signed)
{
    return is_signed ? (int32_t)(int8_t)p[i] : (int32_t)p[i];
}

/* Runs one case on arch (packed B when `packed`, which needs b_broadcast or
 * batch 1) and compares every element of C with the reference; the row
 * padding of C must be untouched. */
static void check(const qkv_igemm_arch *arch, icase cs, bool packed, uint64_t seed)
{
    size_t lda = cs.k + 3, ldb = (cs.trans_b ? cs.k : cs.n) + 1, ldc = cs.n + 2;
    size_t brows = cs.trans_b ? cs.n : cs.k;
    size_t nb_b = cs.b_broadcast ? 1 : cs.batch;
    size_t a_sz = cs.batch * cs.m * lda, b_sz = nb_b * brows * ldb, c_sz = cs.batch * cs.m * ldc;
    uint8_t *a = malloc(a_sz + 1), *b = malloc(b_sz + 1);
    uint8_t *za = malloc(cs.batch * cs.m + 1), *zb = malloc(nb_b * cs.n + 1);
    int32_t *c = malloc((c_sz + 1) * sizeof *c);
    uint64_t s = seed;
    fill_bytes(a, a_sz, &s);
    fill_bytes(b, b_sz, &s);
    fill_bytes(za, cs.batch * cs.m, &s);
    fill_bytes(zb, nb_b * cs.n, &s);
    for (size_t i = 0; i < c_sz; i++)
        c[i] = 0x5a5a5a5a;
    qkv_igemm g = {.m = cs.m,
                   .n = cs.n,
                   .k = cs.k,
                   .a = a,
                   .lda = lda,
                   .a_signed = cs.a_signed,
                   .b = b,
                   .ldb = ldb,
                   .b_signed = cs.b_signed,
                   .trans_b = cs.trans_b,
                   .c = c,
                   .ldc = ldc};
    if (cs.zero_mode) {
        g.a_zero = za;
        g.b_zero = zb;
        g.a_zero_stride = cs.zero_mode == 2;
        g.b_zero_stride = cs.zero_mode == 2;
    }
    if (cs.batch > 1) {
        g.batch_rank = 1;
        g.batch_dims[0] = cs.batch;
        g.a_strides[0] = cs.m * lda;
        g.b_strides[0] = cs.b_broadcast ? 0 : brows * ldb;
        g.c_strides[0] = cs.m * ldc;
        g.a_zero_strides[0] = cs.zero_mode == 2 ? cs.m : 0;
        g.b_zero_strides[0] = cs.zero_mode == 2 && !cs.b_broadcast ? cs.n : 0;
    }
    qkv_igemm_packed_b pb = {0};
    void *pdata = NULL;
    if (packed) {
        size_t bytes = qkv_igemm_packed_b_bytes(arch, cs.k, cs.n);
        cr_assert(bytes > 0);
        pdata = malloc(bytes);
        qkv_igemm_pack_b(arch, b, ldb, cs.b_signed, cs.trans_b, cs.k, cs.n, pdata, &pb);
        g.b = NULL; /* must not be read */
    }
    qkv_igemm_run(NULL, NULL, arch, &g, packed ? &pb : NULL, NULL);
    for (size_t e = 0; e < cs.batch; e++) {
        const uint8_t *ae = a + e * cs.m * lda;
        const uint8_t *be = b + (cs.b_broadcast ? 0 : e) * brows * ldb;
        const uint8_t *zae = za + e * cs.m, *zbe = zb + (cs.b_broadcast ? 0 : e) * cs.n;
        const int32_t *ce = c + e * cs.m * ldc;
        for (size_t i = 0; i < cs.m; i++) {
            for (size_t j = 0; j < cs.n; j++) {
                int32_t a0 = 0, b0 = 0;
                if (cs.zero_mode == 1) {
                    a0 = val(za, 0, cs.a_signed);
                    b0 = val(zb, 0, cs.b_signed);
                } else if (cs.zero_mode == 2) {
                    a0 = val(zae, i, cs.a_signed);
                    b0 = val(zbe, j, cs.b_signed);
                }
                int64_t acc = 0;
                for (size_t p = 0; p < cs.k; p++) {
                    int32_t av = val(ae, i * lda + p, cs.a_signed);
                    int32_t bv = val(be, cs.trans_b ? j * ldb + p : p * ldb + j, cs.b_signed);
                    acc += (int64_t)(av - a0) * (bv - b0);
                }
                int32_t want = (int32_t)(uint32_t)(uint64_t)acc; /* wraps like the GEMM */
                cr_assert_eq(
                    ce[i * ldc + j], want,
                    "%s%s m=%zu n=%zu k=%zu a%s b%s tb=%d zp=%d batch=%zu: C[%zu][%zu][%zu]"
                    " = %d, expected %d",
                    qkv_igemm_arch_name(arch), packed ? " packed" : "", cs.m, cs.n, cs.k,
                    cs.a_signed ? "s8" : "u8", cs.b_signed ? "s8" : "u8", cs.trans_b, cs.zero_mode,
                    cs.batch, e, i, j, ce[i * ldc + j], want);
            }
            for (size_t j = cs.n; j < ldc && !(e + 1 == cs.batch && i + 1 == cs.m); j++)
                cr_assert_eq(ce[i * ldc + j], 0x5a5a5a5a, "%s: wrote outside C at [%zu,%zu]",
                             qkv_igemm_arch_name(arch), i, j);
        }
    }
    free(pdata);
    free(a);
    free(b);
    free(za);
    free(zb);
    free(c);
}

/* Every variant the CPU runs, with and without a packed B when allowed. */
static void check_all(icase cs, uint64_t seed)
{
    uint64_t cpu = qkv_cpu_features_get();
    int ran = 0;
    const qkv_igemm_arch *arch;
    for (size_t i = 0; (arch = qkv_igemm_arch_at(i)) != NULL; i++) {
        if ((qkv_igemm_arch_needs(arch) & cpu) != qkv_igemm_arch_needs(arch))
            continue;
        ran++;
        check(arch, cs, false, seed);
        if (cs.batch == 1 || cs.b_broadcast)
            check(arch, cs, true, seed);
    }
    cr_assert(ran >= 1, "no integer GEMM variant ran");
}

static bool built(const char *name)
{
    const qkv_igemm_arch *arch;
    for (size_t i = 0; (arch = qkv_igemm_arch_at(i)) != NULL; i++)
        if (strcmp(qkv_igemm_arch_name(arch), name) == 0)
            return true;
    return false;
}

Test(igemm, variants_this_cpu_runs_are_listed_and_selected)
{
    const qkv_igemm_arch *best = qkv_igemm_arch_select(qkv_cpu_features_get());
    cr_assert_not_null(best);
    cr_assert_str_eq(qkv_igemm_arch_name(qkv_igemm_arch_select(0)), "baseline");
    uint64_t cpu = qkv_cpu_features_get();
    if ((cpu & QKV_CPU_AVX512_VNNI) && (cpu & QKV_CPU_AVX512) && built("avx512vnni"))
        cr_assert_str_eq(qkv_igemm_arch_name(best), "avx512vnni");
    else if ((cpu & QKV_CPU_AVX_VNNI) && built("avxvnni"))
        cr_assert_str_eq(qkv_igemm_arch_name(best), "avxvnni");
    else if (cpu & QKV_CPU_AVX2)
        cr_assert_str_eq(qkv_igemm_arch_name(best), "avx2");
    /* the AVX2 cap (QKV_ISA=avx2) keeps AVX-VNNI, and the selection follows */
    cr_assert_str_eq(qkv_igemm_arch_name(qkv_igemm_arch_select(QKV_CPU_AVX2 | QKV_CPU_AVX_VNNI)),
                     built("avxvnni") ? "avxvnni" : "avx2");
}

Test(igemm, tile_sized_and_ragged_shapes_every_type_pairing)
{
    const size_t dims[] = {1, 3, 4, 6, 8, 13, 16, 31, 33, 65};
    uint64_t seed = 1;
    for (size_t i = 0; i < 10; i++)
        for (size_t j = 0; j < 10; j += 3) {
            icase cs = {dims[i],      dims[j], dims[(i + j + 1) % 10], i & 1,
                        (i >> 1) & 1, false,   (int)(j % 3),           1,
                        false};
            check_all(cs, seed++);
        }
}

Test(igemm, zero_points_per_tensor_row_and_column_all_pairings)
{
    uint64_t seed = 50;
    for (int zp = 0; zp < 3; zp++)
        for (int as = 0; as < 2; as++)
            for (int bs = 0; bs < 2; bs++) {
                icase cs = {19, 37, 45, as, bs, false, zp, 1, false};
                check_all(cs, seed++);
            }
}

Test(igemm, transposed_b)
{
    uint64_t seed = 70;
    for (int bs = 0; bs < 2; bs++) {
        icase cs = {9, 35, 23, false, bs, true, 2, 1, false};
        check_all(cs, seed++);
    }
}

Test(igemm, k_across_several_cache_slices_and_wide_n)
{
    /* k over two kc slices with a ragged last group; n over several column
     * blocks; m over several row blocks */
    icase cs = {130, 300, 1031, false, true, false, 1, 1, false};
    check_all(cs, 90);
    icase cs2 = {7, 1100, 517, true, false, true, 2, 1, false};
    check_all(cs2, 91);
}

Test(igemm, batches_with_and_without_a_broadcast_b)
{
    icase cs = {5, 17, 29, false, true, false, 2, 3, false};
    check_all(cs, 110);
    cs.b_broadcast = true;
    check_all(cs, 111);
    cs.a_signed = true;
    cs.b_signed = false;
    check_all(cs, 112);
}

/* The extremes: 255 x 127 (and -128) summed over a long k is where
 * vpmaddubsw would saturate and int32 nears overflow; the zero points push
 * the raw products further. */
static void check_constant(const qkv_igemm_arch *arch, uint8_t av, bool as, uint8_t bv, bool bs,
                           uint8_t zav, uint8_t zbv, size_t k, bool packed)
{
    size_t m = 7, n = 40;
    uint8_t *a = malloc(m * k), *b = malloc(k * n);
    int32_t *c = malloc(m * n * sizeof *c);
    memset(a, av, m * k);
    memset(b, bv, k * n);
    qkv_igemm g = {.m = m,
                   .n = n,
                   .k = k,
                   .a = a,
                   .lda = k,
                   .a_signed = as,
                   .b = b,
                   .ldb = n,
                   .b_signed = bs,
                   .c = c,
                   .ldc = n,
                   .a_zero = &zav,
                   .b_zero = &zbv};
    qkv_igemm_packed_b pb;
    void *pdata = NULL;
    if (packed) {
        pdata = malloc(qkv_igemm_packed_b_bytes(arch, k, n));
        qkv_igemm_pack_b(arch, b, n, bs, false, k, n, pdata, &pb);
    }
    qkv_igemm_run(NULL, NULL, arch, &g, packed ? &pb : NULL, NULL);
    int64_t x = as ? (int8_t)av : av, y = bs ? (int8_t)bv : bv;
    int64_t za = as ? (int8_t)zav : zav, zb = bs ? (int8_t)zbv : zbv;
    int32_t want = (int32_t)(uint32_t)(uint64_t)((int64_t)k * (x - za) * (y - zb));
    for (size_t i = 0; i < m * n; i++)
        cr_assert_eq(c[i], want,
                     "%s%s: %lld x %lld (zero points %lld, %lld) over k=%zu: got %d, "
                     "expected %d",
                     qkv_igemm_arch_name(arch), packed ? " packed" : "", (long long)x, (long long)y,
                     (long long)za, (long long)zb, k, c[i], want);
    free(pdata);
    free(a);
    free(b);
    free(c);
}

Test(igemm, saturation_edges_are_exact)
{
    uint64_t cpu = qkv_cpu_features_get();
    const qkv_igemm_arch *arch;
    for (size_t i = 0; (arch = qkv_igemm_arch_at(i)) != NULL; i++) {
        if ((qkv_igemm_arch_needs(arch) & cpu) != qkv_igemm_arch_needs(arch))
            continue;
        for (int packed = 0; packed < 2; packed++) {
            check_constant(arch, 255, false, 127, true, 0, 0, 4099, packed);
            check_constant(arch, 255, false, 0x80, true, 0, 0, 4099, packed);       /* x -128 */
            check_constant(arch, 0x80, true, 0x80, true, 0x7f, 0x7f, 2053, packed); /* -255^2 */
            check_constant(arch, 255, false, 255, false, 0, 0, 33100, packed); /* > 2^31: wraps */
            check_constant(arch, 0, false, 0, false, 255, 255, 33100, packed); /* (-255)^2 k */
        }
    }
}

Test(igemm, k_zero_gives_zeros)
{
    uint8_t a[1], b[1];
    int32_t c[6] = {1, 2, 3, 4, 5, 6};
    uint8_t zp = 3;
    qkv_igemm g = {.m = 2,
                   .n = 3,
                   .k = 0,
                   .a = a,
                   .lda = 1,
                   .b = b,
                   .ldb = 3,
                   .c = c,
                   .ldc = 3,
                   .a_zero = &zp,
                   .b_zero = &zp};
    qkv_igemm_run(NULL, NULL, qkv_igemm_arch_select(qkv_cpu_features_get()), &g, NULL, NULL);
    for (int i = 0; i < 6; i++)
        cr_assert_eq(c[i], 0);
}
