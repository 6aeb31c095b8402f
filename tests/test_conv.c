/* Conv: a naive direct convolution (tests/support/conv_test_util.c: double
 * accumulation, its own output-size and auto_pad formulas from the ONNX
 * spec) against the
 * kernel on random 1-D/2-D/3-D shapes with groups, depthwise channels,
 * strides, dilations, pads and every auto_pad, on 1 and 2 threads, in float
 * and double; then the error paths. */
#include <criterion/criterion.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "conv_test_util.h"
#include "kernel_harness.h"

/* float32 sums of at most a few hundred products of values in [-1, 1):
 * rounding stays far below 1e-4 of the sum of magnitudes */
#define F32_TOL 1e-4
#define F64_TOL 1e-12
/* half-precision outputs are rounded once from float32: half an ulp, 2^-11
 * (float16) or 2^-8 (bfloat16) relative, with room for the float32 sums */
#define F16_TOL 1e-3
#define BF16_TOL 8e-3

static uint32_t rng_state = 12345;
static uint32_t rnd(uint32_t n)
{
    rng_state ^= rng_state << 13;
    rng_state ^= rng_state >> 17;
    rng_state ^= rng_state << 5;
    return rng_state % n;
}

/* Runs the case through the kernel harness against the reference
 * (conv_test_util.h), with the group attribute written or left to its
 * default and the input values shown to infer or not, at random. */
static void check_case(const conv_case *t, uint32_t seed, const char *what)
{
    conv_case u = *t;
    u.set_group = rnd(2);
    u.hide_input = rnd(2);
    double tol = t->dbl                          ? F64_TOL
                 : t->half == QKV_DTYPE_FLOAT16  ? F16_TOL
                 : t->half == QKV_DTYPE_BFLOAT16 ? BF16_TOL
                                                 : F32_TOL;
    conv_check_case(&u, seed, tol, what);
}

static const char *auto_pads[] = {NULL, "NOTSET", "VALID", "SAME_UPPER", "SAME_LOWER"};

/* A random case whose window fits the (padded) input. */
static void random_case(conv_case *t, int ns, bool depthwise)
{
    memset(t, 0, sizeof *t);
    t->ns = ns;
    t->n = 1 + rnd(2);
    if (depthwise) {
        t->group = 2 + rnd(5);
        t->c = t->group;
        t->m = t->group * (1 + rnd(2)); /* channel multiplier 1 or 2 */
    } else {
        t->group = 1 + rnd(3);
        t->c = t->group * (1 + rnd(3));
        t->m = t->group * (1 + rnd(3));
    }
    t->auto_pad = auto_pads[rnd(5)];
    int64_t max_in = ns == 3 ? 6 : ns == 2 ? 9 : 20;
    for (int i = 0; i < ns; i++) {
        t->k[i] = 1 + rnd(3);
        t->s[i] = 1 + rnd(3);
        t->d[i] = 1 + rnd(2);
        bool explicit_pads = !t->auto_pad || !strcmp(t->auto_pad, "NOTSET");
        t->pb[i] = explicit_pads ? rnd(3) : 0;
        t->pe[i] = explicit_pads ? rnd(3) : 0;
        int64_t ek = (t->k[i] - 1) * t->d[i] + 1, lo = ek - t->pb[i] - t->pe[i];
        if (t->auto_pad && !strcmp(t->auto_pad, "VALID"))
            lo = ek;
        if (lo < 1)
            lo = 1;
        t->in[i] = lo + rnd((uint32_t)(max_in > lo ? max_in - lo + 1 : 1));
    }
    t->bias = rnd(2);
    t->set_kernel_shape = rnd(2);
    t->set_strides = true;
    t->set_dilations = true;
    t->set_pads = !t->auto_pad || !strcmp(t->auto_pad, "NOTSET");
    t->threads = 1 + rnd(2);
}

Test(conv, matches_direct_convolution_on_random_shapes)
{
    for (int trial = 0; trial < 300; trial++) {
        conv_case t;
        random_case(&t, 1 + trial % 3, trial % 4 == 3);
        t.dbl = trial % 7 == 0;
        char what[160];
        snprintf(what, sizeof what,
                 "trial %d: %dD n%lld c%lld m%lld group %lld k%lld s%lld d%lld pads %lld/%lld "
                 "auto_pad %s%s",
                 trial, t.ns, (long long)t.n, (long long)t.c, (long long)t.m, (long long)t.group,
                 (long long)t.k[0], (long long)t.s[0], (long long)t.d[0], (long long)t.pb[0],
                 (long long)t.pe[0], t.auto_pad ? t.auto_pad : "-", t.dbl ? " double" : "");
        check_case(&t, (uint32_t)trial + 1, what);
    }
}

Test(conv, float16_and_bfloat16_compute_in_float32)
{
    for (int trial = 0; trial < 40; trial++) {
        conv_case t;
        random_case(&t, 1 + trial % 3, trial % 4 == 3);
        t.half = trial % 2 ? QKV_DTYPE_FLOAT16 : QKV_DTYPE_BFLOAT16;
        t.opset = 22; /* bfloat16 from opset 22 */
        char what[64];
        snprintf(what, sizeof what, "trial %d %s", trial,
                 t.half == QKV_DTYPE_FLOAT16 ? "float16" : "bfloat16");
        check_case(&t, (uint32_t)trial + 500, what);
    }
}

Test(conv, bfloat16_needs_opset_22)
{
    uint16_t x[16] = {0}, w[4] = {0};
    kh_node *n = kh_node_create("Conv", 21, 2, 1);
    qkv_tensor ins[2] = {kh_tensor(QKV_DTYPE_BFLOAT16, 4, (int64_t[]){1, 1, 4, 4}, x),
                         kh_tensor(QKV_DTYPE_BFLOAT16, 4, (int64_t[]){1, 1, 2, 2}, w)};
    qkv_tensor y;
    qkv_error err;
    cr_assert_eq(kh_run(n, ins, &y, &err), QKV_ERR_TYPE, "%s", err.message);
    kh_node_destroy(n);
}

Test(conv, defaults_are_stride_1_no_pads)
{
    conv_case t = {.ns = 2,
                   .n = 1,
                   .c = 2,
                   .m = 3,
                   .group = 1,
                   .in = {5, 4},
                   .k = {3, 2},
                   .s = {1, 1},
                   .d = {1, 1},
                   .threads = 1};
    check_case(&t, 7, "no attributes");
}

Test(conv, pointwise_runs_as_one_gemm)
{
    /* kernel 1, stride 1, no pads: the input is the GEMM's operand */
    conv_case t = {.ns = 2,
                   .n = 3,
                   .c = 6,
                   .m = 4,
                   .group = 2,
                   .in = {7, 5},
                   .k = {1, 1},
                   .s = {1, 1},
                   .d = {1, 1},
                   .bias = true,
                   .threads = 2};
    check_case(&t, 8, "pointwise grouped");
    t.group = 1;
    t.ns = 1;
    check_case(&t, 9, "pointwise 1-D");
}

Test(conv, large_im2col_splits_into_column_tiles)
{
    /* 64 channels x 9 taps x 1024 positions of float: 2.25 MiB of columns,
     * more than one 2 MiB tile */
    conv_case t = {.ns = 2,
                   .n = 1,
                   .c = 64,
                   .m = 5,
                   .group = 1,
                   .in = {32, 32},
                   .k = {3, 3},
                   .s = {1, 1},
                   .d = {1, 1},
                   .pb = {1, 1},
                   .pe = {1, 1},
                   .set_pads = true,
                   .bias = true,
                   .threads = 2};
    check_case(&t, 10, "two column tiles");
}

Test(conv, large_depthwise_on_threads)
{
    conv_case t = {.ns = 2,
                   .n = 2,
                   .c = 16,
                   .m = 16,
                   .group = 16,
                   .in = {40, 37},
                   .k = {5, 3},
                   .s = {1, 2},
                   .d = {2, 1},
                   .auto_pad = "SAME_LOWER",
                   .set_strides = true,
                   .set_dilations = true,
                   .bias = true,
                   .threads = 2};
    check_case(&t, 11, "depthwise 2-D");
    conv_case c1 = {.ns = 1,
                    .n = 1,
                    .c = 144,
                    .m = 144,
                    .group = 144,
                    .in = {200},
                    .k = {31},
                    .s = {1},
                    .d = {1},
                    .pb = {15},
                    .pe = {15},
                    .set_pads = true,
                    .threads = 2};
    check_case(&c1, 12, "conformer-style depthwise 1-D");
}

Test(conv, vit_patch_embedding_shape)
{
    /* kernel = stride: non-overlapping patches (ViT), scaled down */
    conv_case t = {.ns = 2,
                   .n = 1,
                   .c = 3,
                   .m = 24,
                   .group = 1,
                   .in = {32, 32},
                   .k = {8, 8},
                   .s = {8, 8},
                   .d = {1, 1},
                   .set_strides = true,
                   .bias = true,
                   .threads = 2};
    check_case(&t, 13, "patch embedding");
}

Test(conv, wav2vec2_feature_extractor_shapes)
{
    conv_case c0 = {.ns = 1,
                    .n = 1,
                    .c = 1,
                    .m = 32,
                    .group = 1,
                    .in = {1000},
                    .k = {10},
                    .s = {5},
                    .d = {1},
                    .set_strides = true,
                    .threads = 2};
    check_case(&c0, 14, "conv0 k10 s5");
    conv_case c1 = {.ns = 1,
                    .n = 1,
                    .c = 32,
                    .m = 32,
                    .group = 1,
                    .in = {199},
                    .k = {3},
                    .s = {2},
                    .d = {1},
                    .set_strides = true,
                    .threads = 2};
    check_case(&c1, 15, "conv1 k3 s2");
}

Test(conv, empty_batch_gives_empty_output)
{
    float x[1], w[2 * 3 * 3];
    kh_fill_random(w, 18, 3);
    kh_node *n = kh_node_create("Conv", 11, 2, 1);
    qkv_tensor ins[2] = {kh_f32(4, (int64_t[]){0, 2, 4, 4}, x),
                         kh_f32(4, (int64_t[]){1, 2, 3, 3}, w)};
    qkv_tensor y;
    qkv_error err;
    cr_assert_eq(kh_run(n, ins, &y, &err), QKV_OK, "%s", err.message);
    cr_assert(y.rank == 4 && y.dims[0] == 0 && y.dims[1] == 1 && y.dims[2] == 2 && y.dims[3] == 2);
    kh_free_outputs(&y, 1);
    kh_node_destroy(n);
}

Test(conv, infer_leaves_unknown_spatial_dims_unknown)
{
    kh_node *n = kh_node_create("Conv", 11, 2, 1);
    kh_attr_ints(n, "strides", (int64_t[]){2, 2}, 2);
    kh_attr_string(n, "auto_pad", "SAME_UPPER");
    qkv_tensor ins[2] = {kh_f32(4, (int64_t[]){-1, 3, -1, 10}, NULL),
                         kh_f32(4, (int64_t[]){8, 3, 3, 3}, NULL)};
    qkv_tensor y;
    qkv_error err;
    cr_assert_eq(kh_infer(n, ins, &y, &err), QKV_OK, "%s", err.message);
    cr_assert(y.rank == 4 && y.dims[0] == -1 && y.dims[1] == 8 && y.dims[2] == -1 && y.dims[3] == 5,
              "[%lld %lld %lld %lld]", (long long)y.dims[0], (long long)y.dims[1],
              (long long)y.dims[2], (long long)y.dims[3]);
    kh_node_destroy(n);
}

/* ---- errors ---------------------------------------------------------------------- */

/* Runs Conv-11 on X and W of the given dims (random values) after `setup`
 * added attributes; returns the status, err filled. */
static qkv_status run_bad(int xr, const int64_t *xd, int wr, const int64_t *wd,
                          void (*setup)(kh_node *), qkv_error *err)
{
    static float buf[4096];
    kh_fill_random(buf, 4096, 5);
    kh_node *n = kh_node_create("Conv", 11, 2, 1);
    if (setup)
        setup(n);
    qkv_tensor ins[2] = {kh_f32(xr, xd, buf), kh_f32(wr, wd, buf + 2048)};
    qkv_tensor y;
    qkv_status st = kh_run(n, ins, &y, err);
    if (st == QKV_OK)
        kh_free_outputs(&y, 1);
    kh_node_destroy(n);
    return st;
}

static void expect_error(qkv_status st, qkv_status want, const qkv_error *err, const char *text)
{
    cr_assert_eq(st, want, "status %d, expected %d: %s", st, want, err->message);
    cr_assert(strstr(err->message, "node 'test_node' (Conv-11)"), "%s", err->message);
    cr_assert(strstr(err->message, text), "'%s' lacks '%s'", err->message, text);
}

static void set_kernel_2x2(kh_node *n) { kh_attr_ints(n, "kernel_shape", (int64_t[]){2, 2}, 2); }
static void set_group_2(kh_node *n) { kh_attr_int(n, "group", 2); }
static void set_group_0(kh_node *n) { kh_attr_int(n, "group", 0); }
static void set_stride_0(kh_node *n) { kh_attr_ints(n, "strides", (int64_t[]){1, 0}, 2); }
static void set_pads_3(kh_node *n) { kh_attr_ints(n, "pads", (int64_t[]){1, 1, 1}, 3); }
static void set_pads_neg(kh_node *n) { kh_attr_ints(n, "pads", (int64_t[]){0, -1, 0, 0}, 4); }
static void set_auto_pad_bad(kh_node *n) { kh_attr_string(n, "auto_pad", "SAME"); }
static void set_strides_1d(kh_node *n) { kh_attr_ints(n, "strides", (int64_t[]){1}, 1); }
static void set_mixed_lengths(kh_node *n)
{
    kh_attr_ints(n, "strides", (int64_t[]){1, 1}, 2);
    kh_attr_ints(n, "dilations", (int64_t[]){1, 1, 1}, 3);
}

Test(conv, refuses_kernel_shape_differing_from_the_weight)
{
    qkv_error err;
    qkv_status st =
        run_bad(4, (int64_t[]){1, 2, 5, 5}, 4, (int64_t[]){3, 2, 3, 3}, set_kernel_2x2, &err);
    expect_error(st, QKV_ERR_SHAPE, &err,
                 "attribute 'kernel_shape' has 2 at index 0 but the "
                 "weight's spatial dim is 3");
}

Test(conv, refuses_channel_mismatch)
{
    qkv_error err;
    qkv_status st = run_bad(4, (int64_t[]){1, 4, 5, 5}, 4, (int64_t[]){3, 3, 3, 3}, NULL, &err);
    expect_error(st, QKV_ERR_SHAPE, &err, "input 0 'X' has 4 channels");
}

Test(conv, refuses_groups_not_dividing_the_channels)
{
    qkv_error err;
    qkv_status st =
        run_bad(4, (int64_t[]){1, 5, 5, 5}, 4, (int64_t[]){2, 2, 3, 3}, set_group_2, &err);
    expect_error(st, QKV_ERR_SHAPE, &err, "5 channels, not a multiple of group 2");
    st = run_bad(4, (int64_t[]){1, 4, 5, 5}, 4, (int64_t[]){3, 2, 3, 3}, set_group_2, &err);
    expect_error(st, QKV_ERR_SHAPE, &err, "3 output channels, not a multiple of group 2");
}

Test(conv, refuses_wrong_ranks)
{
    qkv_error err;
    qkv_status st = run_bad(2, (int64_t[]){1, 4}, 2, (int64_t[]){3, 4}, NULL, &err);
    expect_error(st, QKV_ERR_SHAPE, &err, "input 0 'X' has rank 2, expected (N, C, D1, ...)");
    st = run_bad(4, (int64_t[]){1, 2, 5, 5}, 3, (int64_t[]){3, 2, 3}, NULL, &err);
    expect_error(st, QKV_ERR_SHAPE, &err, "input 1 'W' has rank 3 but input 0 'X' has rank 4");
    st = run_bad(4, (int64_t[]){1, 2, 5, 5}, 4, (int64_t[]){3, 2, 3, 3}, set_strides_1d, &err);
    expect_error(st, QKV_ERR_SHAPE, &err, "the input has 2 spatial dims but the attributes give 1");
}

Test(conv, refuses_bad_attributes)
{
    static const struct {
        void (*setup)(kh_node *);
        const char *text;
    } cases[] = {
        {set_group_0, "attribute 'group' is 0, expected >= 1"},
        {set_stride_0, "attribute 'strides' has 0 at index 1, expected 1.."},
        {set_pads_3, "attribute 'pads' has 3 values, expected a multiple of 2"},
        {set_pads_neg, "attribute 'pads' has -1 at index 1, expected 0.."},
        {set_auto_pad_bad, "attribute 'auto_pad' is 'SAME', expected NOTSET"},
        {set_mixed_lengths, "attribute 'dilations' gives 3 spatial dims but 'strides' gives 2"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        qkv_error err;
        qkv_status st =
            run_bad(4, (int64_t[]){1, 2, 5, 5}, 4, (int64_t[]){3, 2, 3, 3}, cases[i].setup, &err);
        expect_error(st, QKV_ERR_INVALID_MODEL, &err, cases[i].text);
    }
}

Test(conv, refuses_a_window_larger_than_the_input)
{
    qkv_error err;
    qkv_status st = run_bad(3, (int64_t[]){1, 1, 2}, 3, (int64_t[]){1, 1, 3}, NULL, &err);
    expect_error(st, QKV_ERR_SHAPE, &err,
                 "spatial dim 0: the window (3 with dilation) is larger "
                 "than the padded input (2)");
}

Test(conv, refuses_mismatched_types_and_bias)
{
    float x[16], w[4], b[3];
    double wd[4];
    kh_fill_random(x, 16, 1);
    kh_fill_random(w, 4, 2);
    kh_node *n = kh_node_create("Conv", 11, 3, 1);
    qkv_tensor y;
    qkv_error err;
    qkv_tensor ins[3] = {kh_f32(4, (int64_t[]){1, 1, 4, 4}, x),
                         kh_tensor(QKV_DTYPE_DOUBLE, 4, (int64_t[]){1, 1, 2, 2}, wd),
                         kh_f32(1, (int64_t[]){1}, b)};
    expect_error(kh_run(n, ins, &y, &err), QKV_ERR_TYPE, &err,
                 "input 1 'W' is float64 but input 0 'X' is float32");
    ins[1] = kh_f32(4, (int64_t[]){1, 1, 2, 2}, w);
    ins[2] = kh_f32(1, (int64_t[]){3}, b);
    expect_error(kh_run(n, ins, &y, &err), QKV_ERR_SHAPE, &err,
                 "input 2 'B' must be 1-D with one value per output channel (1)");
    kh_node_destroy(n);
}
