/*
 * igemm_vnni_tile.h - the vpdpbusd micro-kernel of the int8 GEMM (igemm.h),
 * written once for both vector widths: included by igemm_vnni.c once per
 * width with VNNI_WIDTH defined as 512 or 256 (and <immintrin.h> included).
 *
 *   512: AVX512-VNNI, an 8 x 32 int32 tile in 16 zmm accumulators; each
 *        k-group of four loads two 64-byte vectors of the B panel (32 columns
 *        x 4 int8), broadcasts eight 4-byte groups of the A sliver and issues
 *        16 vpdpbusd (1,024 multiply-adds).
 *   256: AVX-VNNI, vpdpbusd on ymm (the VEX form, for CPUs with AVX-VNNI but
 *        no AVX-512, and for QKV_ISA=avx2 on those with both): a 6 x 16 tile
 *        in 12 ymm accumulators, two 32-byte vectors of B and six broadcasts
 *        of A per k-group, 12 vpdpbusd.
 *
 * The accumulators are named variables, not an array, so that they stay in
 * registers whatever the compiler's unrolling. Defines VNNI_TILE (the tile
 * function) and VNNI_ARCH (its qkv_igemm_arch); every other macro it defines
 * is undefined at the end, so the next inclusion starts clean.
 */
#if VNNI_WIDTH == 512
#define VNNI_MR 8
#define VNNI_NR 32
#define VNNI_FN __attribute__((target("avx512f,avx512bw,avx512vl,avx512vnni")))
#define VNNI_V __m512i
#define VNNI_ZERO() _mm512_setzero_si512()
#define VNNI_LOAD(p) _mm512_loadu_si512((const void *)(p))
#define VNNI_STORE(p, v) _mm512_storeu_si512((void *)(p), v)
#define VNNI_ADD(a, b) _mm512_add_epi32(a, b)
#define VNNI_SET1(v) _mm512_set1_epi32(v)
#define VNNI_DPBUSD(c, a, b) _mm512_dpbusd_epi32(c, a, b)
#define VNNI_NAME(x) x##_avx512vnni
#elif VNNI_WIDTH == 256
#define VNNI_MR 6
#define VNNI_NR 16
#define VNNI_FN __attribute__((target("avx2,avxvnni")))
#define VNNI_V __m256i
#define VNNI_ZERO() _mm256_setzero_si256()
#define VNNI_LOAD(p) _mm256_loadu_si256((const __m256i *)(p))
#define VNNI_STORE(p, v) _mm256_storeu_si256((__m256i *)(p), v)
#define VNNI_ADD(a, b) _mm256_add_epi32(a, b)
#define VNNI_SET1(v) _mm256_set1_epi32(v)
#define VNNI_DPBUSD(c, a, b) _mm256_dpbusd_avx_epi32(c, a, b)
#define VNNI_NAME(x) x##_avxvnni
#else
#error "VNNI_WIDTH must be 512 or 256"
#endif
#define VNNI_LANES (VNNI_WIDTH / 32) /* int32 lanes in one vector */

VNNI_FN static inline VNNI_V VNNI_NAME(bcast4)(const uint8_t *p)
{
    int32_t v;
    memcpy(&v, p, sizeof v);
    return VNNI_SET1(v);
}

VNNI_FN static inline void VNNI_NAME(store_row)(int32_t *c, VNNI_V acc0, VNNI_V acc1,
                                                bool accumulate)
{
    if (accumulate) {
        acc0 = VNNI_ADD(acc0, VNNI_LOAD(c));
        acc1 = VNNI_ADD(acc1, VNNI_LOAD(c + VNNI_LANES));
    }
    VNNI_STORE(c, acc0);
    VNNI_STORE(c + VNNI_LANES, acc1);
}

#define VNNI_DP_ROW(i)                                                                             \
    do {                                                                                           \
        VNNI_V a_ = VNNI_NAME(bcast4)(ap + 4 * (i));                                               \
        c##i##0 = VNNI_DPBUSD(c##i##0, a_, b0);                                                    \
        c##i##1 = VNNI_DPBUSD(c##i##1, a_, b1);                                                    \
    } while (0)

VNNI_FN static void VNNI_NAME(tile)(size_t groups, const void *ap_, const int8_t *bp, int32_t *c,
                                    size_t ldc, bool accumulate)
{
    const uint8_t *ap = ap_;
    VNNI_V c00 = VNNI_ZERO(), c01 = c00, c10 = c00, c11 = c00, c20 = c00;
    VNNI_V c21 = c00, c30 = c00, c31 = c00, c40 = c00, c41 = c00, c50 = c00, c51 = c00;
#if VNNI_MR == 8
    VNNI_V c60 = c00, c61 = c00, c70 = c00, c71 = c00;
#endif
#pragma GCC unroll 2
    for (size_t g = 0; g < groups; g++) {
        VNNI_V b0 = VNNI_LOAD(bp);
        VNNI_V b1 = VNNI_LOAD(bp + VNNI_WIDTH / 8);
        VNNI_DP_ROW(0);
        VNNI_DP_ROW(1);
        VNNI_DP_ROW(2);
        VNNI_DP_ROW(3);
        VNNI_DP_ROW(4);
        VNNI_DP_ROW(5);
#if VNNI_MR == 8
        VNNI_DP_ROW(6);
        VNNI_DP_ROW(7);
#endif
        ap += VNNI_MR * 4;
        bp += VNNI_NR * 4;
    }
    VNNI_NAME(store_row)(c, c00, c01, accumulate);
    VNNI_NAME(store_row)(c + ldc, c10, c11, accumulate);
    VNNI_NAME(store_row)(c + 2 * ldc, c20, c21, accumulate);
    VNNI_NAME(store_row)(c + 3 * ldc, c30, c31, accumulate);
    VNNI_NAME(store_row)(c + 4 * ldc, c40, c41, accumulate);
    VNNI_NAME(store_row)(c + 5 * ldc, c50, c51, accumulate);
#if VNNI_MR == 8
    VNNI_NAME(store_row)(c + 6 * ldc, c60, c61, accumulate);
    VNNI_NAME(store_row)(c + 7 * ldc, c70, c71, accumulate);
#endif
}

static const qkv_igemm_arch VNNI_NAME(arch) = {
#if VNNI_WIDTH == 512
    .name = "avx512vnni",
    .needs = QKV_CPU_AVX512 | QKV_CPU_AVX512_VNNI,
#else
    .name = "avxvnni",
    .needs = QKV_CPU_AVX2 | QKV_CPU_AVX_VNNI,
#endif
    .mr = VNNI_MR,
    .nr = VNNI_NR,
    .kgroup = 4,
    .a_elem_bytes = 1,
    .kc = 512,
    .mc = 96,
    .nc = 128,
    .tile = VNNI_NAME(tile),
};

#undef VNNI_MR
#undef VNNI_NR
#undef VNNI_FN
#undef VNNI_V
#undef VNNI_ZERO
#undef VNNI_LOAD
#undef VNNI_STORE
#undef VNNI_ADD
#undef VNNI_SET1
#undef VNNI_DPBUSD
#undef VNNI_NAME
#undef VNNI_LANES
#undef VNNI_DP_ROW
