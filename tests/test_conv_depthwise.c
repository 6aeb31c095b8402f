/* The direct depthwise convolution (ops/conv_depthwise.h): its 1-row and
 * 4-row kernels, every variant this CPU runs, against sums in double
 * written here; the variant choice against the CPU features and the
 * QKV_ISA cap; and whole depthwise Conv nodes (group == C, and one input
 * channel into many) against the naive direct convolution of
 * tests/support/conv_test_util.c, in 1-D, 2-D and 3-D, with strides,
 * dilations, asymmetric pads, every auto_pad, with and without bias, channel
 * multipliers, widths that are not multiples of any vector width, on 1 and
 * 2 threads. CMake runs
 * this file again under QKV_ISA=baseline, avx2 and avx512, so the node
 * tests go through each row kernel the CPU has. */
#include <criterion/criterion.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "conv_depthwise.h"
#include "conv_depthwise_rows.h"
#include "conv_test_util.h"
#include "cpu_features.h"
#include "kernel_harness.h"

/* float32 sums of at most a few hundred products of values in [-1, 1):
 * rounding, in any order, with or without FMA, stays far below 1e-4 of the
 * sum of magnitudes (at most about taps * 2^-24 * taps relative) */
#define F32_TOL 1e-4
/* float16 outputs are rounded once from float32: half an ulp, 2^-11 */
#define F16_TOL 1e-3

static uint32_t rng_state = 2026;
static uint32_t rnd(uint32_t n)
{
    rng_state ^= rng_state << 13;
    rng_state ^= rng_state >> 17;
    rng_state ^= rng_state << 5;
    return rng_state % n;
}

/* ---- row kernels ---------------------------------------------------------------- */

typedef struct variant {
    const char *name;
    qkv_dwconv_row_fn fn;
} variant;

/* The variants this CPU runs (asked directly, not through the QKV_ISA
 * cap): the portable one always. */
static size_t variants(variant *out)
{
    size_t n = 0;
    out[n++] = (variant){"portable", qkv_dwconv_row_portable};
#if defined(QKV_DWCONV_HAVE_X86)
    __builtin_cpu_init();
    if (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma"))
        out[n++] = (variant){"avx2", qkv_dwconv_row_avx2};
    if (__builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") &&
        __builtin_cpu_supports("avx512vl") && __builtin_cpu_supports("avx512dq"))
        out[n++] = (variant){"avx512", qkv_dwconv_row_avx512};
#endif
    return n;
}

Test(conv_depthwise, row_kernels_match_a_sum_in_double)
{
    static const size_t widths[] = {0,  1,  3,  7,  8,   9,   15,  16,  17,  31,  32,  33,
                                    47, 63, 64, 65, 100, 127, 128, 129, 200, 255, 256, 300};
    static const size_t tap_counts[] = {0, 1, 2, 3, 31, 64};
    enum { GUARD = 20, MAX_TAPS = 64, MAX_W = 300 };
    /* the sources share one buffer, each at an odd offset; the last one
     * ends exactly at the end of it (a read past n is a heap overflow) */
    float *pool = malloc(MAX_TAPS * MAX_W * sizeof(float) + 4 * MAX_TAPS);
    float w[MAX_TAPS], y[MAX_W + GUARD], y0[MAX_W + GUARD];
    const float *src[MAX_TAPS];
    variant vs[3];
    size_t nv = variants(vs);
    kh_fill_random(w, MAX_TAPS, 2);
    for (size_t v = 0; v < nv; v++)
        for (size_t wi = 0; wi < sizeof widths / sizeof widths[0]; wi++)
            for (size_t ti = 0; ti < sizeof tap_counts / sizeof tap_counts[0]; ti++)
                for (int acc = 0; acc < 2; acc++) {
                    size_t n = widths[wi], taps = tap_counts[ti], used = taps * n + taps;
                    float *buf = realloc(pool, (used + 1) * sizeof(float));
                    cr_assert_not_null(buf);
                    pool = buf;
                    kh_fill_random(pool, used + 1, (uint32_t)(n * 100 + taps));
                    for (size_t t = 0; t < taps; t++)
                        src[t] = pool + (used + 1) - (taps - t) * (n + 1) + 1;
                    kh_fill_random(y0, MAX_W + GUARD, (uint32_t)(n + 7));
                    memcpy(y, y0, sizeof y);
                    vs[v].fn(y, n, src, w, taps, 0.375f, acc);
                    for (size_t j = 0; j < n; j++) {
                        double want = acc ? y0[j] : 0.375, mag = fabs(want);
                        for (size_t t = 0; t < taps; t++) {
                            want += (double)w[t] * src[t][j];
                            mag += fabs((double)w[t] * src[t][j]);
                        }
                        cr_assert(fabs(y[j] - want) <= 1e-6 * (1 + mag),
                                  "%s n %zu taps %zu acc %d: y[%zu] = %.9g, expected %.9g",
                                  vs[v].name, n, taps, acc, j, y[j], want);
                    }
                    for (size_t j = n; j < MAX_W + GUARD; j++)
                        cr_assert(y[j] == y0[j], "%s n %zu taps %zu: wrote y[%zu]", vs[v].name, n,
                                  taps, j);
                }
    free(pool);
}

/* The 4-row kernels this CPU runs, portable first. */
static size_t variants4(const char **names, qkv_dwconv_rows4_fn *fns)
{
    size_t n = 0;
    names[n] = "portable";
    fns[n++] = qkv_dwconv_rows4_portable;
#if defined(QKV_DWCONV_HAVE_X86)
    __builtin_cpu_init();
    if (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma")) {
        names[n] = "avx2";
        fns[n++] = qkv_dwconv_rows4_avx2;
    }
    if (__builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") &&
        __builtin_cpu_supports("avx512vl") && __builtin_cpu_supports("avx512dq")) {
        names[n] = "avx512";
        fns[n++] = qkv_dwconv_rows4_avx512;
    }
#endif
    return n;
}

Test(conv_depthwise, four_row_kernels_match_a_sum_in_double)
{
    static const size_t widths[] = {0, 1, 7, 8, 15, 16, 17, 33, 63, 64, 65, 100, 129, 300};
    static const size_t tap_counts[] = {0, 1, 3, 10, 64};
    enum { GUARD = 20, MAX_TAPS = 64, MAX_W = 300 };
    float *src_buf = malloc((MAX_TAPS * (MAX_W + 1) + 1) * sizeof(float));
    float w[MAX_TAPS * 4], bias[4] = {0.375f, -0.5f, 0.0f, 1.25f};
    float *rows = malloc(4 * (MAX_W + GUARD) * sizeof(float));
    float *rows0 = malloc(4 * (MAX_W + GUARD) * sizeof(float));
    const float *src[MAX_TAPS];
    const char *names[3];
    qkv_dwconv_rows4_fn fns[3];
    size_t nv = variants4(names, fns);
    kh_fill_random(w, MAX_TAPS * 4, 3);
    for (size_t v = 0; v < nv; v++)
        for (size_t wi = 0; wi < sizeof widths / sizeof widths[0]; wi++)
            for (size_t ti = 0; ti < sizeof tap_counts / sizeof tap_counts[0]; ti++)
                for (int acc = 0; acc < 2; acc++) {
                    size_t n = widths[wi], taps = tap_counts[ti];
                    kh_fill_random(src_buf, MAX_TAPS * (MAX_W + 1) + 1, (uint32_t)(n + taps));
                    for (size_t t = 0; t < taps; t++) /* odd offsets, overlapping runs */
                        src[t] = src_buf + 1 + t * (n / 2 + 1);
                    kh_fill_random(rows0, 4 * (MAX_W + GUARD), (uint32_t)(n + 11));
                    memcpy(rows, rows0, 4 * (MAX_W + GUARD) * sizeof(float));
                    float *y[4];
                    for (size_t i = 0; i < 4; i++)
                        y[i] = rows + i * (MAX_W + GUARD);
                    fns[v](y, n, src, w, taps, bias, acc);
                    for (size_t i = 0; i < 4; i++) {
                        const float *y0 = rows0 + i * (MAX_W + GUARD);
                        for (size_t j = 0; j < n; j++) {
                            double want = acc ? y0[j] : bias[i], mag = fabs(want);
                            for (size_t t = 0; t < taps; t++) {
                                want += (double)w[t * 4 + i] * src[t][j];
                                mag += fabs((double)w[t * 4 + i] * src[t][j]);
                            }
                            cr_assert(fabs(y[i][j] - want) <= 1e-6 * (1 + mag),
                                      "%s n %zu taps %zu acc %d: y[%zu][%zu] = %.9g, expected "
                                      "%.9g",
                                      names[v], n, taps, acc, i, j, y[i][j], want);
                        }
                        for (size_t j = n; j < MAX_W + GUARD; j++)
                            cr_assert(y[i][j] == y0[j], "%s n %zu taps %zu: wrote y[%zu][%zu]",
                                      names[v], n, taps, i, j);
                    }
                }
    free(rows0);
    free(rows);
    free(src_buf);
}

/* The level the QKV_ISA cap and this CPU (asked directly) allow. */
static qkv_isa expected_isa(void)
{
#if defined(QKV_DWCONV_HAVE_X86)
    const char *cap = getenv("QKV_ISA");
    __builtin_cpu_init();
    bool avx2 = __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
    bool avx512 = __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") &&
                  __builtin_cpu_supports("avx512vl") && __builtin_cpu_supports("avx512dq");
    if (cap && !strcmp(cap, "baseline"))
        return QKV_ISA_BASELINE;
    if (avx512 && !(cap && !strcmp(cap, "avx2")))
        return QKV_ISA_AVX512;
    return avx2 ? QKV_ISA_AVX2 : QKV_ISA_BASELINE;
#else
    return QKV_ISA_BASELINE;
#endif
}

Test(conv_depthwise, variant_follows_the_cpu_features_and_the_isa_cap)
{
    cr_assert(qkv_dwconv_row_select(0) == qkv_dwconv_row_portable);
    qkv_dwconv_row_fn want = qkv_dwconv_row_portable;
#if defined(QKV_DWCONV_HAVE_X86)
    cr_assert(qkv_dwconv_row_select(QKV_CPU_AVX | QKV_CPU_AVX2) == qkv_dwconv_row_avx2);
    cr_assert(qkv_dwconv_row_select(QKV_CPU_AVX2 | QKV_CPU_AVX512) == qkv_dwconv_row_avx512);
    cr_assert(qkv_dwconv_rows4_select(0) == qkv_dwconv_rows4_portable);
    cr_assert(qkv_dwconv_rows4_select(QKV_CPU_AVX | QKV_CPU_AVX2) == qkv_dwconv_rows4_avx2);
    cr_assert(qkv_dwconv_rows4_select(QKV_CPU_AVX2 | QKV_CPU_AVX512) == qkv_dwconv_rows4_avx512);
    if (expected_isa() == QKV_ISA_AVX512)
        want = qkv_dwconv_row_avx512;
    else if (expected_isa() == QKV_ISA_AVX2)
        want = qkv_dwconv_row_avx2;
#endif
    /* what host->cpu_features() gives the kernel: the same capped bits */
    cr_assert(qkv_dwconv_row_select(qkv_cpu_features_get()) == want, "QKV_ISA=%s",
              getenv("QKV_ISA") ? getenv("QKV_ISA") : "(unset)");
}

/* ---- the plan ------------------------------------------------------------------- */

Test(conv_depthwise, plan_refuses_sizes_that_overflow)
{
    qkv_conv_geom g;
    memset(&g, 0, sizeof g);
    g.n_spatial = 3;
    for (int i = 0; i < 3; i++) {
        g.in[i] = g.out[i] = (int64_t)1 << 31;
        g.kernel[i] = g.stride[i] = g.dilation[i] = 1;
    }
    qkv_dwconv_plan p;
    cr_assert(!qkv_dwconv_plan_init(&p, &g, 1, 1, 1), "2^93 positions fit size_t");
    cr_assert_eq(p.slot_floats, 0, "the plan is zeroed on failure");
    g.n_spatial = 1;
    g.in[0] = 100;
    g.out[0] = 100;
    cr_assert(qkv_dwconv_plan_init(&p, &g, 1, 1, 1));
    size_t bytes = 1;
    cr_assert(!qkv_dwconv_scratch_bytes(&p, SIZE_MAX / 64, &bytes));
    cr_assert_eq(bytes, 0);
    cr_assert(qkv_dwconv_scratch_bytes(&p, 2, &bytes));
    cr_assert_eq(bytes, 2 * 100 * sizeof(float));
}

Test(conv_depthwise, plan_splits_a_strided_row_into_phases)
{
    /* width 10, stride 3, kernel 4, dilation 2: padded positions
     * 0 .. 9 * 3 + 3 * 2 = 33, so 34 positions in 3 phases of 12 */
    qkv_conv_geom g;
    memset(&g, 0, sizeof g);
    g.n_spatial = 2;
    g.in[0] = 5;
    g.out[0] = 4;
    g.kernel[0] = g.stride[0] = g.dilation[0] = 1;
    g.in[1] = 30;
    g.out[1] = 10;
    g.kernel[1] = 4;
    g.stride[1] = 3;
    g.dilation[1] = 2;
    g.pad_begin[1] = 2;
    g.pad_end[1] = 2;
    qkv_dwconv_plan p;
    cr_assert(qkv_dwconv_plan_init(&p, &g, 2, 3, 1));
    cr_assert_eq(p.phase_len, 12);
    cr_assert_eq(p.row_len, 36);
    cr_assert_eq(p.in_rows, 5);
    cr_assert_eq(p.out_rows, 4);
    cr_assert_eq(p.slot_floats, 5 * 36);
}

/* ---- whole nodes ------------------------------------------------------------------ */

typedef struct dw_case {
    int ns; /* spatial dims, 1..3 */
    int64_t n, c, mult;
    int64_t in[3], k[3], s[3], d[3];
    int64_t pb[3], pe[3]; /* explicit pads (NOTSET) */
    const char *auto_pad; /* NULL: attribute absent */
    bool bias, half;      /* half: float16 instead of float */
    size_t threads;
} dw_case;

/* Runs Conv-11 (group = C) on the case (values from seed) through the
 * kernel harness against the naive convolution of conv_test_util.h; `what`
 * names the case in failures. */
static void check_case(const dw_case *t, uint32_t seed, const char *what)
{
    conv_case u = {.ns = t->ns,
                   .n = t->n,
                   .c = t->c,
                   .m = t->c * t->mult,
                   .group = t->c,
                   .auto_pad = t->auto_pad,
                   .bias = t->bias,
                   .set_kernel_shape = true,
                   .set_strides = true,
                   .set_dilations = true,
                   .set_pads = !t->auto_pad || !strcmp(t->auto_pad, "NOTSET"),
                   .half = t->half ? QKV_DTYPE_FLOAT16 : 0,
                   .threads = t->threads};
    for (int i = 0; i < t->ns; i++) {
        u.in[i] = t->in[i];
        u.k[i] = t->k[i];
        u.s[i] = t->s[i];
        u.d[i] = t->d[i];
        u.pb[i] = t->pb[i];
        u.pe[i] = t->pe[i];
    }
    conv_check_case(&u, seed, t->half ? F16_TOL : F32_TOL, what);
}

static const char *auto_pads[] = {NULL, "NOTSET", "VALID", "SAME_UPPER", "SAME_LOWER"};

/* A random depthwise case whose window fits the (padded) input; the last
 * dim up to `max_w`. */
static void random_case(dw_case *t, int ns, int64_t max_w)
{
    memset(t, 0, sizeof *t);
    t->ns = ns;
    t->n = 1 + rnd(2);
    t->c = 2 + rnd(5);        /* group == C > 1: the depthwise path */
    t->mult = 1 + rnd(3) / 2; /* 1 twice as often as 2 */
    t->auto_pad = auto_pads[rnd(5)];
    bool explicit_pads = !t->auto_pad || !strcmp(t->auto_pad, "NOTSET");
    for (int i = 0; i < ns; i++) {
        bool last = i == ns - 1;
        t->k[i] = 1 + rnd(last ? 9 : 4);
        t->s[i] = 1 + rnd(3);
        t->d[i] = 1 + rnd(3);
        t->pb[i] = explicit_pads ? rnd(5) : 0; /* asymmetric: drawn apart */
        t->pe[i] = explicit_pads ? rnd(5) : 0;
        int64_t ek = (t->k[i] - 1) * t->d[i] + 1, lo = ek - t->pb[i] - t->pe[i];
        if (t->auto_pad && !strcmp(t->auto_pad, "VALID"))
            lo = ek;
        lo = lo < 1 ? 1 : lo;
        int64_t hi = last ? max_w : ns == 3 ? 6 : 9;
        hi = hi > lo ? hi : lo;
        t->in[i] = lo + rnd((uint32_t)(hi - lo + 1));
    }
    t->bias = rnd(2);
    t->threads = 1 + rnd(2);
}

static void describe(const dw_case *t, int trial, char *buf, size_t cap)
{
    int ns = t->ns, l = ns - 1;
    snprintf(buf, cap,
             "trial %d: %dD n%lld c%lld mult %lld in %lldx..x%lld k%lld s%lld d%lld pads "
             "%lld/%lld auto_pad %s bias %d threads %zu%s",
             trial, ns, (long long)t->n, (long long)t->c, (long long)t->mult, (long long)t->in[0],
             (long long)t->in[l], (long long)t->k[l], (long long)t->s[l], (long long)t->d[l],
             (long long)t->pb[l], (long long)t->pe[l], t->auto_pad ? t->auto_pad : "-",
             (int)t->bias, t->threads, t->half ? " float16" : "");
}

Test(conv_depthwise, matches_direct_convolution_on_random_shapes)
{
    for (int trial = 0; trial < 400; trial++) {
        dw_case t;
        /* rows up to 150 wide: every block size of both SIMD widths, and tails */
        random_case(&t, 1 + trial % 3, trial % 3 == 0 ? 150 : 40);
        char what[200];
        describe(&t, trial, what, sizeof what);
        check_case(&t, (uint32_t)trial + 1, what);
    }
}

Test(conv_depthwise, float16_runs_through_the_float_path)
{
    for (int trial = 0; trial < 30; trial++) {
        dw_case t;
        random_case(&t, 1 + trial % 2, 70);
        t.half = true;
        t.threads = 2;
        char what[200];
        describe(&t, trial, what, sizeof what);
        check_case(&t, (uint32_t)trial + 900, what);
    }
}

Test(conv_depthwise, same_upper_and_lower_put_the_odd_pad_apart)
{
    /* kernel 4: total pad 3 at stride 1, 1 + 2 (UPPER) or 2 + 1 (LOWER) */
    for (int lower = 0; lower < 2; lower++)
        for (int64_t s = 1; s <= 2; s++) {
            dw_case t = {.ns = 1,
                         .n = 1,
                         .c = 3,
                         .mult = 1,
                         .in = {37},
                         .k = {4},
                         .s = {s},
                         .d = {1},
                         .auto_pad = lower ? "SAME_LOWER" : "SAME_UPPER",
                         .bias = true,
                         .threads = 1};
            check_case(&t, 31 + (uint32_t)s, t.auto_pad);
            t.ns = 2;
            t.in[0] = 6;
            t.in[1] = 19;
            t.k[0] = 3;
            t.k[1] = 4;
            t.s[0] = 1;
            t.s[1] = s;
            t.d[0] = 2;
            t.d[1] = 1;
            check_case(&t, 41 + (uint32_t)s, t.auto_pad);
        }
}

Test(conv_depthwise, conformer_kernel_31_on_two_threads)
{
    /* Conformer-S's conv module: 144 channels, 256 frames, kernel 31,
     * "same" pads 15/15, bias; and a length that is no multiple of 8 */
    dw_case t = {.ns = 1,
                 .n = 1,
                 .c = 144,
                 .mult = 1,
                 .in = {256},
                 .k = {31},
                 .s = {1},
                 .d = {1},
                 .pb = {15},
                 .pe = {15},
                 .bias = true,
                 .threads = 2};
    check_case(&t, 51, "conformer k31 T256");
    t.in[0] = 203;
    t.bias = false;
    check_case(&t, 52, "conformer k31 T203 no bias");
}

Test(conv_depthwise, large_kernels_take_several_tap_batches)
{
    /* 9 x 9 = 81 taps and a 1-D kernel of 128: more than one batch of 64 */
    dw_case t = {.ns = 2,
                 .n = 2,
                 .c = 5,
                 .mult = 2,
                 .in = {12, 41},
                 .k = {9, 9},
                 .s = {1, 2},
                 .d = {1, 1},
                 .pb = {4, 3},
                 .pe = {4, 5},
                 .bias = true,
                 .threads = 2};
    check_case(&t, 61, "9x9");
    dw_case u = {.ns = 1,
                 .n = 1,
                 .c = 4,
                 .mult = 1,
                 .in = {70},
                 .k = {128},
                 .s = {1},
                 .d = {1},
                 .pb = {64},
                 .pe = {64},
                 .bias = true,
                 .threads = 1};
    check_case(&u, 62, "k128 pads 64");
}

Test(conv_depthwise, pads_wider_than_the_input)
{
    /* every output reads mostly padding; some rows of the 2-D kernel read
     * none of the input */
    dw_case t = {.ns = 2,
                 .n = 1,
                 .c = 2,
                 .mult = 1,
                 .in = {2, 3},
                 .k = {3, 3},
                 .s = {2, 3},
                 .d = {3, 2},
                 .pb = {5, 7},
                 .pe = {6, 4},
                 .bias = true,
                 .threads = 2};
    check_case(&t, 71, "wide pads");
}

Test(conv_depthwise, one_input_channel_into_many_outputs)
{
    /* wav2vec2's first conv over raw audio (1 -> 512, kernel 10, stride 5),
     * scaled down, and variations around it: output channel counts that are
     * not multiples of the 4-row kernel's 4, pads, dilation, auto_pad, a
     * second image, 2-D; group 1 with one input channel is this path too */
    static const struct {
        int64_t n, m, in, k, s, d, pb, pe;
        const char *auto_pad;
        bool bias;
    } cases[] = {
        {1, 64, 1000, 10, 5, 1, 0, 0, NULL, false},     {1, 37, 1003, 10, 5, 1, 0, 0, NULL, true},
        {2, 6, 301, 3, 2, 1, 0, 0, NULL, false},        {1, 9, 200, 4, 3, 2, 3, 1, NULL, true},
        {1, 13, 97, 7, 1, 1, 0, 0, "SAME_UPPER", true}, {1, 5, 50, 2, 2, 1, 0, 0, "VALID", false},
        {1, 3, 40, 5, 1, 3, 6, 6, "NOTSET", true},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++)
        for (size_t threads = 1; threads <= 2; threads++) {
            conv_case t = {.ns = 1,
                           .n = cases[i].n,
                           .c = 1,
                           .m = cases[i].m,
                           .group = 1,
                           .in = {cases[i].in},
                           .k = {cases[i].k},
                           .s = {cases[i].s},
                           .d = {cases[i].d},
                           .pb = {cases[i].pb},
                           .pe = {cases[i].pe},
                           .auto_pad = cases[i].auto_pad,
                           .bias = cases[i].bias,
                           .set_strides = true,
                           .set_dilations = true,
                           .set_pads = !cases[i].auto_pad || !strcmp(cases[i].auto_pad, "NOTSET"),
                           .threads = threads};
            char what[64];
            snprintf(what, sizeof what, "case %zu threads %zu", i, threads);
            conv_check_case(&t, 80 + (uint32_t)i, F32_TOL, what);
        }
    conv_case t2 = {.ns = 2,
                    .n = 1,
                    .c = 1,
                    .m = 10,
                    .group = 1,
                    .in = {9, 23},
                    .k = {3, 3},
                    .s = {2, 1},
                    .d = {1, 2},
                    .pb = {1, 2},
                    .pe = {1, 2},
                    .set_strides = true,
                    .set_dilations = true,
                    .set_pads = true,
                    .bias = true,
                    .threads = 2};
    conv_check_case(&t2, 90, F32_TOL, "2-D one input channel");
}
