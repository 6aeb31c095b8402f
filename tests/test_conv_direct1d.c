/* The direct 1-D convolution (ops/conv_direct1d.h) that runs grouped 1-D
 * Conv nodes with constant weights: its tile kernels, every variant this
 * CPU runs, against a sum in double written here; the variant choice; the
 * packing and the plan's overflow checks; and whole sessions of one-node
 * models (weights as initializers, so prepack packs them) against the naive
 * convolution of conv_test_util.h: wav2vec2's positional conv, and shapes
 * around it with strides, dilations, pads wider than the input, every
 * auto_pad, channel counts per group that are not multiples of any vector
 * width, several inputs lengths on one session, 1 and 2 threads. CMake runs
 * this file again under QKV_ISA=baseline, avx2 and avx512, so the sessions
 * go through each variant the CPU has. */
#include <criterion/criterion.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "conv_direct1d.h"
#include "conv_test_util.h"
#include "kernel_harness.h"

/* float32 sums of up to a few thousand products of values in [-1, 1), in
 * any order, with or without FMA: far below 1e-4 of the sum's scale */
#define F32_TOL 1e-4
/* wav2vec2's positional conv sums up to 48 x 128 = 6144 products, their
 * magnitudes adding up to ~1500 against outputs of ~1: float32 rounding
 * (~1e-7 of that sum) reaches ~2e-4 of an output */
#define F32_LONG_TOL 1e-3

static uint32_t rng_state = 777;
static uint32_t rnd(uint32_t n)
{
    rng_state ^= rng_state << 13;
    rng_state ^= rng_state >> 17;
    rng_state ^= rng_state << 5;
    return rng_state % n;
}

/* ---- tile kernels ---------------------------------------------------------------- */

/* The variants this CPU runs (asked directly, not through the QKV_ISA
 * cap): the portable one always. */
static size_t variants(qkv_direct1d_kind *out)
{
    size_t n = 0;
    out[n++] = qkv_direct1d_select(0);
#if defined(QKV_DIRECT1D_HAVE_X86)
    __builtin_cpu_init();
    if (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma"))
        out[n++] = qkv_direct1d_select(QKV_CPU_AVX | QKV_CPU_AVX2);
    if (__builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") &&
        __builtin_cpu_supports("avx512vl") && __builtin_cpu_supports("avx512dq"))
        out[n++] = qkv_direct1d_select(QKV_CPU_AVX2 | QKV_CPU_AVX512);
#endif
    return n;
}

Test(conv_direct1d, tile_kernels_match_a_sum_in_double)
{
    enum { NC = 3, KSIZE = 7, XLD = 64, GUARD = 8 };
    qkv_direct1d_kind ks[3];
    size_t nk = variants(ks);
    float x[NC * XLD];
    kh_fill_random(x, NC * XLD, 5);
    for (size_t v = 0; v < nk; v++) {
        size_t cw = ks[v].mr * ks[v].vw + GUARD; /* a wider chunk: lanes past mr * vw untouched */
        float *w = malloc(NC * KSIZE * cw * sizeof(float));
        float *acc = malloc(ks[v].nj * cw * sizeof(float));
        float *acc0 = malloc(ks[v].nj * cw * sizeof(float));
        kh_fill_random(w, NC * KSIZE * cw, 6);
        for (size_t mr = 1; mr <= ks[v].mr; mr++)
            for (size_t nj = 1; nj <= ks[v].nj; nj++)
                for (size_t s = 1; s <= 3; s++)
                    for (size_t d = 1; d <= 2; d++) {
                        size_t klo = nj % 3, khi = KSIZE - mr % 2, nc = 1 + (nj + s) % NC;
                        kh_fill_random(acc0, ks[v].nj * cw, (uint32_t)(mr * 100 + nj));
                        memcpy(acc, acc0, ks[v].nj * cw * sizeof(float));
                        ks[v].tile(acc, cw, w, cw, x, XLD, nc, KSIZE, klo, khi, s, d, mr, nj);
                        for (size_t j = 0; j < ks[v].nj; j++)
                            for (size_t i = 0; i < cw; i++) {
                                double want = acc0[j * cw + i], mag = fabs(want);
                                bool inside = j < nj && i < mr * ks[v].vw;
                                for (size_t c = 0; inside && c < nc; c++)
                                    for (size_t k = klo; k < khi; k++) {
                                        double p = (double)w[(c * KSIZE + k) * cw + i] *
                                                   x[c * XLD + j * s + k * d];
                                        want += p;
                                        mag += fabs(p);
                                    }
                                cr_assert(fabs(acc[j * cw + i] - want) <= 1e-6 * (1 + mag),
                                          "%s mr %zu nj %zu s %zu d %zu: acc[%zu][%zu] = %.9g, "
                                          "expected %.9g",
                                          ks[v].name, mr, nj, s, d, j, i, acc[j * cw + i], want);
                            }
                    }
        free(acc0);
        free(acc);
        free(w);
    }
}

Test(conv_direct1d, variant_follows_the_cpu_features)
{
    cr_assert_str_eq(qkv_direct1d_select(0).name, "portable");
#if defined(QKV_DIRECT1D_HAVE_X86)
    qkv_direct1d_kind k = qkv_direct1d_select(QKV_CPU_AVX | QKV_CPU_AVX2);
    cr_assert(k.tile == qkv_direct1d_tile_avx2 && k.vw == 8);
    k = qkv_direct1d_select(QKV_CPU_AVX2 | QKV_CPU_AVX512);
    cr_assert(k.tile == qkv_direct1d_tile_avx512 && k.vw == 16);
#endif
}

/* ---- packing and the plan ------------------------------------------------------------ */

Test(conv_direct1d, packing_puts_a_chunk_of_channels_side_by_side)
{
    /* 2 groups of 3 output channels, 2 input channels per group, kernel 2:
     * W[m][c][k] = 100 m + 10 c + k */
    float w[6 * 2 * 2];
    for (int m = 0; m < 6; m++)
        for (int c = 0; c < 2; c++)
            for (int k = 0; k < 2; k++)
                w[(m * 2 + c) * 2 + k] = (float)(100 * m + 10 * c + k);
    qkv_direct1d_weights p;
    cr_assert(qkv_direct1d_pack(w, 6, 2, 2, 2, qkv_direct1d_select(0), &p));
    cr_assert_eq(p.cw, 16); /* portable: 2 vectors of 8 */
    cr_assert_eq(p.chunks, 1);
    for (size_t g = 0; g < 2; g++)
        for (size_t ck = 0; ck < 4; ck++)
            for (size_t i = 0; i < 16; i++) {
                float want = i < 3 ? w[(g * 3 + i) * 4 + ck] : 0.0f;
                cr_assert_eq(p.data[(g * 4 + ck) * 16 + i], want, "g %zu ck %zu i %zu", g, ck, i);
            }
    qkv_direct1d_weights_free(&p);
    cr_assert_null(p.data);
    qkv_direct1d_weights_free(NULL);
    cr_assert(!qkv_direct1d_pack(w, 6, 2, 2, 4, qkv_direct1d_select(0), &p),
              "6 channels in 4 groups");
    cr_assert(!qkv_direct1d_pack(w, SIZE_MAX / 2, 4, 4, 1, qkv_direct1d_select(0), &p),
              "a packed size past size_t");
    cr_assert_null(p.data);
}

Test(conv_direct1d, plan_refuses_sizes_that_overflow)
{
    float w[4] = {1, 2, 3, 4};
    qkv_direct1d_weights wp;
    cr_assert(qkv_direct1d_pack(w, 2, 2, 1, 1, qkv_direct1d_select(0), &wp));
    qkv_conv_geom g;
    memset(&g, 0, sizeof g);
    g.n_spatial = 1;
    g.kernel[0] = g.stride[0] = g.dilation[0] = 1;
    g.in[0] = g.out[0] = 100;
    g.pad_begin[0] = g.pad_end[0] = INT64_MAX; /* pads + length past a 64-bit size_t */
    qkv_direct1d_plan p;
    cr_assert(!qkv_direct1d_plan_init(&p, &g, 1, 2, &wp));
    cr_assert_eq(p.units, 0, "the plan is zeroed on failure");
    g.pad_begin[0] = g.pad_end[0] = 1;
    cr_assert(qkv_direct1d_plan_init(&p, &g, 3, 2, &wp));
    cr_assert_eq(p.padded_w, 102);
    size_t bytes = 1;
    cr_assert(!qkv_direct1d_scratch_bytes(&p, SIZE_MAX / 64, &bytes));
    cr_assert_eq(bytes, 0);
    cr_assert(qkv_direct1d_scratch_bytes(&p, 2, &bytes));
    /* 3 images x 2 channels x 102, to whole lines (624 floats), then 2 x 100 x 16 */
    cr_assert_eq(bytes, (624 + 2 * 100 * 16) * sizeof(float));
    qkv_direct1d_weights_free(&wp);
}

/* ---- whole sessions ------------------------------------------------------------------- */

Test(conv_direct1d, wav2vec2_positional_conv)
{
    /* 768 channels in 16 groups of 48, kernel 128, pads 64, bias; at one
     * second of audio (49 frames) and others on the same session */
    conv_case t = {.ns = 1,
                   .n = 1,
                   .c = 768,
                   .m = 768,
                   .group = 16,
                   .in = {49},
                   .k = {128},
                   .s = {1},
                   .d = {1},
                   .pb = {64},
                   .pe = {64},
                   .bias = true,
                   .threads = 2};
    static const int64_t lengths[] = {49, 7, 150};
    size_t released =
        conv_check_session(&t, 1, F32_LONG_TOL, lengths, 3, "wav2vec2 positional conv");
    cr_assert_eq(released, 768 * 48 * 128 * sizeof(float), "W packed and released");
}

static const char *auto_pads[] = {NULL, "NOTSET", "VALID", "SAME_UPPER", "SAME_LOWER"};

Test(conv_direct1d, matches_direct_convolution_on_random_grouped_shapes)
{
    for (int trial = 0; trial < 80; trial++) {
        conv_case t = {.ns = 1, .n = 1 + rnd(2), .group = 2 + rnd(4), .threads = 1 + rnd(2)};
        int64_t cg = 2 + rnd(9), mg = 1 + rnd(trial % 4 == 0 ? 70 : 20);
        t.c = t.group * cg;
        t.m = t.group * mg;
        t.auto_pad = auto_pads[rnd(5)];
        bool explicit_pads = !t.auto_pad || !strcmp(t.auto_pad, "NOTSET");
        t.k[0] = 1 + rnd(trial % 3 == 0 ? 40 : 9);
        t.s[0] = 1 + rnd(3);
        t.d[0] = 1 + rnd(3);
        t.pb[0] = explicit_pads ? rnd((uint32_t)t.k[0] + 3) : 0; /* up to wider than the input */
        t.pe[0] = explicit_pads ? rnd((uint32_t)t.k[0] + 3) : 0;
        int64_t ek = (t.k[0] - 1) * t.d[0] + 1, lo = ek - t.pb[0] - t.pe[0];
        if (t.auto_pad && !strcmp(t.auto_pad, "VALID"))
            lo = ek;
        lo = lo < 1 ? 1 : lo;
        t.in[0] = lo + rnd(60);
        t.bias = rnd(2);
        char what[200];
        snprintf(what, sizeof what,
                 "trial %d: n%lld c%lld m%lld group %lld in %lld k%lld s%lld d%lld pads "
                 "%lld/%lld auto_pad %s bias %d threads %zu",
                 trial, (long long)t.n, (long long)t.c, (long long)t.m, (long long)t.group,
                 (long long)t.in[0], (long long)t.k[0], (long long)t.s[0], (long long)t.d[0],
                 (long long)t.pb[0], (long long)t.pe[0], t.auto_pad ? t.auto_pad : "-", (int)t.bias,
                 t.threads);
        size_t released = conv_check_session(&t, (uint32_t)trial + 1, F32_TOL, NULL, 0, what);
        cr_assert_eq(released, (size_t)(t.m * cg * t.k[0]) * sizeof(float), "%s: W packed", what);
    }
}

Test(conv_direct1d, input_lengths_change_on_one_session)
{
    /* explicit pads keep every length valid; the lengths cross the tile
     * widths (6 and 8 positions) and leave whole tiles in the padding */
    conv_case t = {.ns = 1,
                   .n = 2,
                   .c = 12,
                   .m = 40,
                   .group = 4,
                   .in = {1},
                   .k = {16},
                   .s = {2},
                   .d = {1},
                   .pb = {15},
                   .pe = {15},
                   .bias = true,
                   .threads = 2};
    static const int64_t lengths[] = {1, 5, 17, 64, 3};
    size_t released = conv_check_session(&t, 7, F32_TOL, lengths, 5, "lengths 1..64");
    cr_assert_eq(released, 40 * 3 * 16 * sizeof(float), "W packed and released");
}
