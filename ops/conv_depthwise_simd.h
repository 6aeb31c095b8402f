/*
 * conv_depthwise_simd.h - the SIMD row kernel of the depthwise convolution
 * (conv_depthwise_rows.h), written once over a few macros and included by
 * conv_depthwise_avx2.c and conv_depthwise_avx512.c, which define them:
 *   DW_W        lanes per vector
 *   DW_SUFFIX   the variant's name (the function is qkv_dwconv_row_<suffix>)
 *   DW_TARGET   the target attribute string
 *   vf          the vector type
 *   v_set1, v_load, v_store, v_fma(a, b, c) = a * b + c
 *   v_load_n(p, n), v_store_n(p, v, n): the first n < DW_W lanes only (the
 *               others read as 0 and are not written; nothing past them is
 *               touched)
 *
 * A block of nv vectors of y stays in registers while every tap is added
 * to it: each tap costs one broadcast and nv loads and fused multiply-adds,
 * and y is stored once. 8 vectors (8 independent chains) cover the FMA
 * latency on two FMA units; rows shorter than a block fall to 4, 2 and 1
 * vectors, then one masked vector.
 *
 * The 4-row kernel (qkv_dwconv_rows4_<suffix>) computes four output
 * channels that read the same input channel (a channel multiplier, or a
 * convolution of one input channel into many): a block of DW_NV4 vectors
 * of each of the 4 rows stays in registers, so each tap costs DW_NV4 loads
 * and 4 broadcasts for 4 * DW_NV4 fused multiply-adds, where the 1-row
 * kernel needs a load per multiply-add.
 */
#define DW_CAT_(a, b) a##b
#define DW_CAT(a, b) DW_CAT_(a, b)
#define DW_BLOCK DW_CAT(dw_block_, DW_SUFFIX)
#define DW_ROW DW_CAT(qkv_dwconv_row_, DW_SUFFIX)
#define DW_BLOCK4 DW_CAT(dw_block4_, DW_SUFFIX)
#define DW_ROWS4 DW_CAT(qkv_dwconv_rows4_, DW_SUFFIX)

/* y[j .. j + nv * DW_W): nv is a constant wherever this is inlined, so the
 * loops over v unroll and acc lives in registers. */
static inline __attribute__((target(DW_TARGET), always_inline)) void
DW_BLOCK(float *y, size_t j, size_t nv, const float *const *src, const float *w, size_t taps,
         float bias, int accumulate)
{
    vf acc[8];
#pragma GCC unroll 8
    for (size_t v = 0; v < nv; v++)
        acc[v] = accumulate ? v_load(y + j + v * DW_W) : v_set1(bias);
    for (size_t t = 0; t < taps; t++) {
        const float *s = src[t] + j;
        const vf wt = v_set1(w[t]);
#pragma GCC unroll 8
        for (size_t v = 0; v < nv; v++)
            acc[v] = v_fma(wt, v_load(s + v * DW_W), acc[v]);
    }
#pragma GCC unroll 8
    for (size_t v = 0; v < nv; v++)
        v_store(y + j + v * DW_W, acc[v]);
}

__attribute__((target(DW_TARGET))) void DW_ROW(float *y, size_t n, const float *const *src,
                                               const float *w, size_t taps, float bias,
                                               int accumulate)
{
    size_t j = 0;
    for (; j + 8 * DW_W <= n; j += 8 * DW_W)
        DW_BLOCK(y, j, 8, src, w, taps, bias, accumulate);
    if (j + 4 * DW_W <= n) {
        DW_BLOCK(y, j, 4, src, w, taps, bias, accumulate);
        j += 4 * DW_W;
    }
    if (j + 2 * DW_W <= n) {
        DW_BLOCK(y, j, 2, src, w, taps, bias, accumulate);
        j += 2 * DW_W;
    }
    if (j + DW_W <= n) {
        DW_BLOCK(y, j, 1, src, w, taps, bias, accumulate);
        j += DW_W;
    }
    if (j < n) {
        size_t r = n - j;
        vf acc = accumulate ? v_load_n(y + j, r) : v_set1(bias);
        for (size_t t = 0; t < taps; t++)
            acc = v_fma(v_set1(w[t]), v_load_n(src[t] + j, r), acc);
        v_store_n(y + j, acc, r);
    }
}

/* y[i][j .. j + nv * DW_W) for the 4 rows i; nv constant where inlined. */
static inline __attribute__((target(DW_TARGET), always_inline)) void
DW_BLOCK4(float *const *y, size_t j, size_t nv, const float *const *src, const float *w,
          size_t taps, const float *bias, int accumulate)
{
    vf acc[4][DW_NV4];
#pragma GCC unroll 4
    for (size_t i = 0; i < 4; i++)
#pragma GCC unroll 4
        for (size_t v = 0; v < nv; v++)
            acc[i][v] = accumulate ? v_load(y[i] + j + v * DW_W) : v_set1(bias[i]);
    for (size_t t = 0; t < taps; t++) {
        const float *s = src[t] + j;
        vf x[DW_NV4];
#pragma GCC unroll 4
        for (size_t v = 0; v < nv; v++)
            x[v] = v_load(s + v * DW_W);
#pragma GCC unroll 4
        for (size_t i = 0; i < 4; i++) {
            const vf wt = v_set1(w[t * 4 + i]);
#pragma GCC unroll 4
            for (size_t v = 0; v < nv; v++)
                acc[i][v] = v_fma(wt, x[v], acc[i][v]);
        }
    }
#pragma GCC unroll 4
    for (size_t i = 0; i < 4; i++)
#pragma GCC unroll 4
        for (size_t v = 0; v < nv; v++)
            v_store(y[i] + j + v * DW_W, acc[i][v]);
}

__attribute__((target(DW_TARGET))) void DW_ROWS4(float *const *y, size_t n, const float *const *src,
                                                 const float *w, size_t taps, const float *bias,
                                                 int accumulate)
{
    size_t j = 0;
    for (; j + DW_NV4 * DW_W <= n; j += DW_NV4 * DW_W)
        DW_BLOCK4(y, j, DW_NV4, src, w, taps, bias, accumulate);
    for (; j + DW_W <= n; j += DW_W)
        DW_BLOCK4(y, j, 1, src, w, taps, bias, accumulate);
    if (j < n) {
        size_t r = n - j;
        vf acc[4];
        for (size_t i = 0; i < 4; i++)
            acc[i] = accumulate ? v_load_n(y[i] + j, r) : v_set1(bias[i]);
        for (size_t t = 0; t < taps; t++) {
            const vf x = v_load_n(src[t] + j, r);
            for (size_t i = 0; i < 4; i++)
                acc[i] = v_fma(v_set1(w[t * 4 + i]), x, acc[i]);
        }
        for (size_t i = 0; i < 4; i++)
            v_store_n(y[i] + j, acc[i], r);
    }
}

#undef DW_ROWS4
#undef DW_BLOCK4
#undef DW_ROW
#undef DW_BLOCK
#undef DW_CAT
#undef DW_CAT_
