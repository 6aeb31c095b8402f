/* Conv: a naive direct convolution written here (double accumulation, its
 * own output-size and auto_pad formulas from the ONNX spec) against the
 * kernel on random 1-D/2-D/3-D shapes with groups, depthwise channels,
 * strides, dilations, pads and every auto_pad, on 1 and 2 threads, in float
 * and double; then the error paths. */
#include <criterion/criterion.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "half.h"
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

typedef struct conv_case {
    int ns;                 /* spatial dims */
    int64_t n, c, m, group; /* batch, channels in, channels out, groups */
    int64_t in[3], k[3], s[3], d[3];
    int64_t pb[3], pe[3]; /* explicit pads (NOTSET) */
    const char *auto_pad; /* NULL: attribute absent */
    bool bias, set_kernel_shape, set_strides, set_dilations, set_pads;
    bool dbl;       /* double instead of float */
    qkv_dtype half; /* FLOAT16 or BFLOAT16 instead of float; 0: not */
    int64_t opset;  /* 0: 11 */
    size_t threads;
} conv_case;

/* Output dims and pads by the ONNX Conv spec. */
static void ref_geometry(const conv_case *t, int64_t *out, int64_t *pb)
{
    for (int i = 0; i < t->ns; i++) {
        int64_t ek = (t->k[i] - 1) * t->d[i] + 1;
        const char *ap = t->auto_pad ? t->auto_pad : "NOTSET";
        if (!strcmp(ap, "SAME_UPPER") || !strcmp(ap, "SAME_LOWER")) {
            out[i] = (t->in[i] + t->s[i] - 1) / t->s[i];
            int64_t total = (out[i] - 1) * t->s[i] + ek - t->in[i];
            if (total < 0)
                total = 0;
            pb[i] = !strcmp(ap, "SAME_UPPER") ? total / 2 : total - total / 2;
        } else if (!strcmp(ap, "VALID")) {
            out[i] = (t->in[i] - ek) / t->s[i] + 1;
            pb[i] = 0;
        } else {
            out[i] = (t->in[i] + t->pb[i] + t->pe[i] - ek) / t->s[i] + 1;
            pb[i] = t->pb[i];
        }
    }
}

static size_t prod(const int64_t *d, int n)
{
    size_t p = 1;
    for (int i = 0; i < n; i++)
        p *= (size_t)d[i];
    return p;
}

/* y (n, m, out...) by the definition, in double. */
static void ref_conv(const conv_case *t, const double *x, const double *w, const double *b,
                     double *y, int64_t *out)
{
    int64_t pb[3];
    ref_geometry(t, out, pb);
    int ns = t->ns;
    int64_t o3[3] = {1, 1, 1}, i3[3] = {1, 1, 1}, k3[3] = {1, 1, 1}, s3[3] = {1, 1, 1},
            d3[3] = {1, 1, 1}, p3[3] = {0, 0, 0};
    for (int i = 0; i < ns; i++) { /* right-aligned into 3 dims */
        int j = 3 - ns + i;
        o3[j] = out[i];
        i3[j] = t->in[i];
        k3[j] = t->k[i];
        s3[j] = t->s[i];
        d3[j] = t->d[i];
        p3[j] = pb[i];
    }
    int64_t cg = t->c / t->group, mg = t->m / t->group;
    size_t in_size = (size_t)(i3[0] * i3[1] * i3[2]), ks = (size_t)(k3[0] * k3[1] * k3[2]);
    size_t out_size = (size_t)(o3[0] * o3[1] * o3[2]);
    for (int64_t n = 0; n < t->n; n++)
        for (int64_t m = 0; m < t->m; m++) {
            int64_t g = m / mg;
            for (int64_t a = 0; a < o3[0]; a++)
                for (int64_t bb = 0; bb < o3[1]; bb++)
                    for (int64_t cc = 0; cc < o3[2]; cc++) {
                        double acc = b ? b[m] : 0.0;
                        for (int64_t ci = 0; ci < cg; ci++)
                            for (int64_t ka = 0; ka < k3[0]; ka++)
                                for (int64_t kb = 0; kb < k3[1]; kb++)
                                    for (int64_t kc = 0; kc < k3[2]; kc++) {
                                        int64_t ia = a * s3[0] - p3[0] + ka * d3[0];
                                        int64_t ib = bb * s3[1] - p3[1] + kb * d3[1];
                                        int64_t ic = cc * s3[2] - p3[2] + kc * d3[2];
                                        if (ia < 0 || ia >= i3[0] || ib < 0 || ib >= i3[1] ||
                                            ic < 0 || ic >= i3[2])
                                            continue;
                                        double xv = x[(size_t)(n * t->c + g * cg + ci) * in_size +
                                                      (size_t)((ia * i3[1] + ib) * i3[2] + ic)];
                                        double wv = w[(size_t)(m * cg + ci) * ks +
                                                      (size_t)((ka * k3[1] + kb) * k3[2] + kc)];
                                        acc += xv * wv;
                                    }
                        y[(size_t)(n * t->m + m) * out_size +
                          (size_t)((a * o3[1] + bb) * o3[2] + cc)] = acc;
                    }
        }
}

/* Runs the kernel on the case (values from seed) and compares with
 * ref_conv; `what` names the case in failures. */
static void check_case(const conv_case *t, uint32_t seed, const char *what)
{
    int ns = t->ns, rank = ns + 2;
    int64_t xd[5] = {t->n, t->c}, wd[5] = {t->m, t->c / t->group};
    for (int i = 0; i < ns; i++) {
        xd[2 + i] = t->in[i];
        wd[2 + i] = t->k[i];
    }
    size_t nx = prod(xd, rank), nw = prod(wd, rank), nb = (size_t)t->m;
    float *xf = malloc((nx + nw + nb + 1) * sizeof(float));
    kh_fill_random(xf, nx + nw + nb + 1, seed);
    double *xdbl = malloc((nx + nw + nb + 1) * sizeof(double));
    uint16_t *xh = malloc((nx + nw + nb + 1) * sizeof(uint16_t));
    for (size_t i = 0; i < nx + nw + nb + 1; i++) {
        if (t->half == QKV_DTYPE_FLOAT16) { /* the reference sees the rounded inputs */
            xh[i] = qkv_f32_to_f16(xf[i]);
            xf[i] = qkv_f16_to_f32(xh[i]);
        } else if (t->half == QKV_DTYPE_BFLOAT16) {
            xh[i] = qkv_f32_to_bf16(xf[i]);
            xf[i] = qkv_bf16_to_f32(xh[i]);
        }
        xdbl[i] = xf[i];
    }
    int64_t out[3];
    int64_t pb_unused[3];
    ref_geometry(t, out, pb_unused);
    int64_t yd[5] = {t->n, t->m};
    for (int i = 0; i < ns; i++)
        yd[2 + i] = out[i];
    size_t ny = prod(yd, rank);
    double *want = malloc((ny + 1) * sizeof(double));
    ref_conv(t, xdbl, xdbl + nx, t->bias ? xdbl + nx + nw : NULL, want, out);

    kh_node *node = kh_node_create("Conv", t->opset ? t->opset : 11, t->bias ? 3 : 2, 1);
    if (t->group != 1 || rnd(2))
        kh_attr_int(node, "group", t->group);
    if (t->set_kernel_shape)
        kh_attr_ints(node, "kernel_shape", t->k, (size_t)ns);
    if (t->set_strides)
        kh_attr_ints(node, "strides", t->s, (size_t)ns);
    if (t->set_dilations)
        kh_attr_ints(node, "dilations", t->d, (size_t)ns);
    if (t->set_pads) {
        int64_t pads[6];
        for (int i = 0; i < ns; i++) {
            pads[i] = t->pb[i];
            pads[ns + i] = t->pe[i];
        }
        kh_attr_ints(node, "pads", pads, 2 * (size_t)ns);
    }
    if (t->auto_pad)
        kh_attr_string(node, "auto_pad", t->auto_pad);
    kh_set_threads(node, t->threads);
    qkv_dtype dt = t->dbl ? QKV_DTYPE_DOUBLE : t->half ? t->half : QKV_DTYPE_FLOAT;
    void *base = t->dbl ? (void *)xdbl : t->half ? (void *)xh : (void *)xf;
    size_t eb = t->dbl ? sizeof(double) : t->half ? sizeof(uint16_t) : sizeof(float);
    qkv_tensor ins[3] = {kh_tensor(dt, rank, xd, base),
                         kh_tensor(dt, rank, wd, (char *)base + nx * eb),
                         kh_tensor(dt, 1, &t->m, (char *)base + (nx + nw) * eb)};
    qkv_tensor y;
    qkv_error err;
    if (rnd(2))
        kh_hide_input_values(node);
    cr_assert_eq(kh_run(node, ins, &y, &err), QKV_OK, "%s: %s", what, err.message);
    cr_assert_eq(y.rank, rank, "%s", what);
    for (int i = 0; i < rank; i++)
        cr_assert_eq(y.dims[i], yd[i], "%s: dim %d is %lld, expected %lld", what, i,
                     (long long)y.dims[i], (long long)yd[i]);
    cr_assert_eq(y.dtype, dt, "%s", what);
    double tol = t->dbl                          ? F64_TOL
                 : t->half == QKV_DTYPE_FLOAT16  ? F16_TOL
                 : t->half == QKV_DTYPE_BFLOAT16 ? BF16_TOL
                                                 : F32_TOL;
    for (size_t i = 0; i < ny; i++) {
        uint16_t *yh = y.data;
        double got = t->dbl                          ? ((double *)y.data)[i]
                     : t->half == QKV_DTYPE_FLOAT16  ? qkv_f16_to_f32(yh[i])
                     : t->half == QKV_DTYPE_BFLOAT16 ? qkv_bf16_to_f32(yh[i])
                                                     : ((float *)y.data)[i];
        cr_assert(fabs(got - want[i]) <= tol * (1 + fabs(want[i])),
                  "%s: element %zu is %.9g, expected %.9g", what, i, got, want[i]);
    }
    kh_free_outputs(&y, 1);
    kh_node_destroy(node);
    free(want);
    free(xh);
    free(xdbl);
    free(xf);
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
