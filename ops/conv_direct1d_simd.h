/*
 * conv_direct1d_simd.h - the SIMD tile kernel of the direct 1-D
 * convolution (conv_direct1d_tiles.h), written once over a few macros and
 * included by conv_direct1d_avx2.c and conv_direct1d_avx512.c:
 *   D1_W        lanes per vector
 *   D1_MR       the most vectors of channels per tile
 *   D1_NJ       the most positions per tile
 *   D1_SUFFIX   the variant's name (qkv_direct1d_tile_<suffix>)
 *   D1_TARGET   the target attribute string
 *   vf, v_set1, v_load, v_store, v_fma(a, b, c) = a * b + c
 *
 * The D1_MR x D1_NJ accumulators stay in registers across every tap:
 * each tap costs D1_MR weight loads and D1_NJ broadcasts of input values
 * for D1_MR * D1_NJ fused multiply-adds (AVX-512: 3 x 8 = 24 of 32
 * registers; AVX2: 2 x 6 = 12 of 16). mr and nj are constants wherever the
 * block is inlined, so the loops over them unroll.
 */
#define D1_CAT_(a, b) a##b
#define D1_CAT(a, b) D1_CAT_(a, b)
#define D1_BLOCK D1_CAT(d1_block_, D1_SUFFIX)
#define D1_TILE D1_CAT(qkv_direct1d_tile_, D1_SUFFIX)

static inline __attribute__((target(D1_TARGET), always_inline)) void
D1_BLOCK(float *acc, size_t ldacc, const float *w, size_t cw, const float *x, size_t xld, size_t nc,
         size_t ksize, size_t klo, size_t khi, size_t s, size_t d, size_t mr, size_t nj)
{
    vf a[D1_MR][D1_NJ];
#pragma GCC unroll 8
    for (size_t j = 0; j < nj; j++)
#pragma GCC unroll 4
        for (size_t i = 0; i < mr; i++)
            a[i][j] = v_load(acc + j * ldacc + i * D1_W);
    for (size_t c = 0; c < nc; c++) {
        const float *wk = w + (c * ksize + klo) * cw;
        const float *xk = x + c * xld + klo * d;
        for (size_t k = klo; k < khi; k++, wk += cw, xk += d) {
            vf wv[D1_MR];
#pragma GCC unroll 4
            for (size_t i = 0; i < mr; i++)
                wv[i] = v_load(wk + i * D1_W);
#pragma GCC unroll 8
            for (size_t j = 0; j < nj; j++) {
                const vf xb = v_set1(xk[j * s]);
#pragma GCC unroll 4
                for (size_t i = 0; i < mr; i++)
                    a[i][j] = v_fma(wv[i], xb, a[i][j]);
            }
        }
    }
#pragma GCC unroll 8
    for (size_t j = 0; j < nj; j++)
#pragma GCC unroll 4
        for (size_t i = 0; i < mr; i++)
            v_store(acc + j * ldacc + i * D1_W, a[i][j]);
}

/* One case of the dispatch below: the block with constant mr and nj. */
#define D1_CASE(m, n)                                                                              \
    case (m)*16 + (n):                                                                             \
        D1_BLOCK(acc, ldacc, w, cw, x, xld, nc, ksize, klo, khi, s, d, m, n);                      \
        return;

__attribute__((target(D1_TARGET))) void D1_TILE(float *acc, size_t ldacc, const float *w, size_t cw,
                                                const float *x, size_t xld, size_t nc, size_t ksize,
                                                size_t klo, size_t khi, size_t s, size_t d,
                                                size_t mr, size_t nj)
{
    switch (mr * 16 + nj) {
        D1_CASES
    default: /* outside the variant's tile: never asked for */
        return;
    }
}

#undef D1_CASE
#undef D1_TILE
#undef D1_BLOCK
#undef D1_CAT
#undef D1_CAT_
