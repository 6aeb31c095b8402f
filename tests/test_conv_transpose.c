/* ConvTranspose: a naive scatter written here (each input element times
 * each kernel tap added where the ONNX spec puts it, in double, with its own
 * output-size and pad formulas from the spec) against the kernel on random
 * 1-D/2-D/3-D shapes with groups, strides, dilations, pads, output_padding,
 * output_shape and auto_pad, on 1 and 2 threads; then the error paths. */
#include <criterion/criterion.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "half.h"
#include "kernel_harness.h"

/* float32 sums of at most a few dozen products of values in [-1, 1) */
#define F32_TOL 1e-4
#define F64_TOL 1e-12
/* float16 outputs are rounded once from float32 (2^-11 relative) */
#define F16_TOL 1e-3

static uint32_t rng_state = 777;
static uint32_t rnd(uint32_t n)
{
    rng_state ^= rng_state << 13;
    rng_state ^= rng_state >> 17;
    rng_state ^= rng_state << 5;
    return rng_state % n;
}

typedef struct convt_case {
    int ns;
    int64_t n, c, m, group; /* m: output channels (W is (c, m / group, k...)) */
    int64_t in[3], k[3], s[3], d[3];
    int64_t pb[3], pe[3], op[3]; /* pads and output_padding */
    int64_t out_shape[3];        /* used when has_out_shape */
    bool has_out_shape, set_pads, set_op;
    const char *auto_pad;
    bool bias, dbl;
    bool f16; /* float16 instead of float */
    size_t threads;
} convt_case;

static int64_t floor_half(int64_t v) { return v >= 0 ? v / 2 : -((-v + 1) / 2); }

/* Output dims and begin pads by the ONNX ConvTranspose spec. */
static void ref_geometry(const convt_case *t, int64_t *out, int64_t *pb)
{
    const char *ap = t->auto_pad ? t->auto_pad : "NOTSET";
    bool same = !strcmp(ap, "SAME_UPPER") || !strcmp(ap, "SAME_LOWER");
    for (int i = 0; i < t->ns; i++) {
        int64_t full = t->s[i] * (t->in[i] - 1) + t->op[i] + (t->k[i] - 1) * t->d[i] + 1;
        if (t->has_out_shape || same) {
            out[i] = t->has_out_shape ? t->out_shape[i] : t->in[i] * t->s[i];
            int64_t total = full - out[i];
            if (total < 0)
                pb[i] = 0; /* the extra positions are at the end */
            else if (!strcmp(ap, "SAME_UPPER"))
                pb[i] = floor_half(total);
            else
                pb[i] = total - floor_half(total);
        } else if (!strcmp(ap, "VALID")) {
            out[i] = full;
            pb[i] = 0;
        } else {
            out[i] = full - t->pb[i] - t->pe[i];
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

/* y (n, m, out...) by scattering every input element through the kernel. */
static void ref_convt(const convt_case *t, const double *x, const double *w, const double *b,
                      double *y, const int64_t *out, const int64_t *pb)
{
    int ns = t->ns;
    int64_t o3[3] = {1, 1, 1}, i3[3] = {1, 1, 1}, k3[3] = {1, 1, 1}, s3[3] = {1, 1, 1},
            d3[3] = {1, 1, 1}, p3[3] = {0, 0, 0};
    for (int i = 0; i < ns; i++) {
        int j = 3 - ns + i;
        o3[j] = out[i];
        i3[j] = t->in[i];
        k3[j] = t->k[i];
        s3[j] = t->s[i];
        d3[j] = t->d[i];
        p3[j] = pb[i];
    }
    int64_t cg = t->c / t->group, mg = t->m / t->group;
    size_t in_size = prod(i3, 3), ks = prod(k3, 3), out_size = prod(o3, 3);
    for (int64_t n = 0; n < t->n; n++)
        for (int64_t m = 0; m < t->m; m++)
            for (size_t j = 0; j < out_size; j++)
                y[(size_t)(n * t->m + m) * out_size + j] = b ? b[m] : 0.0;
    for (int64_t n = 0; n < t->n; n++)
        for (int64_t ci = 0; ci < t->c; ci++) {
            int64_t g = ci / cg;
            for (int64_t a = 0; a < i3[0]; a++)
                for (int64_t bb = 0; bb < i3[1]; bb++)
                    for (int64_t cc = 0; cc < i3[2]; cc++) {
                        double xv = x[(size_t)(n * t->c + ci) * in_size +
                                      (size_t)((a * i3[1] + bb) * i3[2] + cc)];
                        for (int64_t mi = 0; mi < mg; mi++)
                            for (int64_t ka = 0; ka < k3[0]; ka++)
                                for (int64_t kb = 0; kb < k3[1]; kb++)
                                    for (int64_t kc = 0; kc < k3[2]; kc++) {
                                        int64_t oa = a * s3[0] - p3[0] + ka * d3[0];
                                        int64_t ob = bb * s3[1] - p3[1] + kb * d3[1];
                                        int64_t oc = cc * s3[2] - p3[2] + kc * d3[2];
                                        if (oa < 0 || oa >= o3[0] || ob < 0 || ob >= o3[1] ||
                                            oc < 0 || oc >= o3[2])
                                            continue;
                                        double wv = w[(size_t)(ci * mg + mi) * ks +
                                                      (size_t)((ka * k3[1] + kb) * k3[2] + kc)];
                                        int64_t m = g * mg + mi;
                                        y[(size_t)(n * t->m + m) * out_size +
                                          (size_t)((oa * o3[1] + ob) * o3[2] + oc)] += xv * wv;
                                    }
                    }
        }
}

static void check_case(const convt_case *t, uint32_t seed, const char *what)
{
    int ns = t->ns, rank = ns + 2;
    int64_t xd[5] = {t->n, t->c}, wd[5] = {t->c, t->m / t->group};
    for (int i = 0; i < ns; i++) {
        xd[2 + i] = t->in[i];
        wd[2 + i] = t->k[i];
    }
    size_t nx = prod(xd, rank), nw = prod(wd, rank), nb = (size_t)t->m;
    float *vf = malloc((nx + nw + nb + 1) * sizeof(float));
    kh_fill_random(vf, nx + nw + nb + 1, seed);
    double *vd = malloc((nx + nw + nb + 1) * sizeof(double));
    uint16_t *vh = malloc((nx + nw + nb + 1) * sizeof(uint16_t));
    for (size_t i = 0; i < nx + nw + nb + 1; i++) {
        if (t->f16) { /* the reference sees the rounded inputs */
            vh[i] = qkv_f32_to_f16(vf[i]);
            vf[i] = qkv_f16_to_f32(vh[i]);
        }
        vd[i] = vf[i];
    }
    int64_t out[3], pb[3];
    ref_geometry(t, out, pb);
    int64_t yd[5] = {t->n, t->m};
    for (int i = 0; i < ns; i++)
        yd[2 + i] = out[i];
    size_t ny = prod(yd, rank);
    double *want = malloc((ny + 1) * sizeof(double));
    ref_convt(t, vd, vd + nx, t->bias ? vd + nx + nw : NULL, want, out, pb);

    kh_node *node = kh_node_create("ConvTranspose", 11, t->bias ? 3 : 2, 1);
    if (t->group != 1)
        kh_attr_int(node, "group", t->group);
    kh_attr_ints(node, "strides", t->s, (size_t)ns);
    kh_attr_ints(node, "dilations", t->d, (size_t)ns);
    if (rnd(2))
        kh_attr_ints(node, "kernel_shape", t->k, (size_t)ns);
    if (t->set_pads) {
        int64_t pads[6];
        for (int i = 0; i < ns; i++) {
            pads[i] = t->pb[i];
            pads[ns + i] = t->pe[i];
        }
        kh_attr_ints(node, "pads", pads, 2 * (size_t)ns);
    }
    if (t->set_op)
        kh_attr_ints(node, "output_padding", t->op, (size_t)ns);
    if (t->has_out_shape) {
        if (rnd(2)) {
            kh_attr_ints(node, "output_shape", t->out_shape, (size_t)ns);
        } else { /* the full (N, C, ...) form */
            int64_t full[5] = {t->n, t->m};
            memcpy(full + 2, t->out_shape, (size_t)ns * sizeof full[0]);
            kh_attr_ints(node, "output_shape", full, (size_t)ns + 2);
        }
    }
    if (t->auto_pad)
        kh_attr_string(node, "auto_pad", t->auto_pad);
    kh_set_threads(node, t->threads);
    qkv_dtype dt = t->dbl ? QKV_DTYPE_DOUBLE : t->f16 ? QKV_DTYPE_FLOAT16 : QKV_DTYPE_FLOAT;
    void *base = t->dbl ? (void *)vd : t->f16 ? (void *)vh : (void *)vf;
    size_t eb = t->dbl ? sizeof(double) : t->f16 ? sizeof(uint16_t) : sizeof(float);
    qkv_tensor ins[3] = {kh_tensor(dt, rank, xd, base),
                         kh_tensor(dt, rank, wd, (char *)base + nx * eb),
                         kh_tensor(dt, 1, &t->m, (char *)base + (nx + nw) * eb)};
    qkv_tensor y;
    qkv_error err;
    cr_assert_eq(kh_run(node, ins, &y, &err), QKV_OK, "%s: %s", what, err.message);
    cr_assert_eq(y.rank, rank, "%s", what);
    for (int i = 0; i < rank; i++)
        cr_assert_eq(y.dims[i], yd[i], "%s: dim %d is %lld, expected %lld", what, i,
                     (long long)y.dims[i], (long long)yd[i]);
    cr_assert_eq(y.dtype, dt, "%s", what);
    double tol = t->dbl ? F64_TOL : t->f16 ? F16_TOL : F32_TOL;
    for (size_t i = 0; i < ny; i++) {
        double got = t->dbl   ? ((double *)y.data)[i]
                     : t->f16 ? qkv_f16_to_f32(((uint16_t *)y.data)[i])
                              : ((float *)y.data)[i];
        cr_assert(fabs(got - want[i]) <= tol * (1 + fabs(want[i])),
                  "%s: element %zu is %.9g, expected %.9g", what, i, got, want[i]);
    }
    kh_free_outputs(&y, 1);
    kh_node_destroy(node);
    free(want);
    free(vh);
    free(vd);
    free(vf);
}

static void random_case(convt_case *t, int ns)
{
    static const char *modes[] = {NULL, "NOTSET", "VALID", "SAME_UPPER", "SAME_LOWER"};
    memset(t, 0, sizeof *t);
    t->ns = ns;
    t->n = 1 + rnd(2);
    t->group = 1 + rnd(3);
    t->c = t->group * (1 + rnd(3));
    t->m = t->group * (1 + rnd(3));
    t->auto_pad = modes[rnd(5)];
    bool explicit_pads = !t->auto_pad || !strcmp(t->auto_pad, "NOTSET");
    t->has_out_shape = explicit_pads && rnd(4) == 0;
    t->set_pads = explicit_pads && !t->has_out_shape;
    t->set_op = rnd(2);
    int64_t max_in = ns == 3 ? 4 : ns == 2 ? 6 : 12;
    for (int i = 0; i < ns; i++) {
        t->in[i] = 1 + rnd((uint32_t)max_in);
        t->k[i] = 1 + rnd(3);
        t->s[i] = 1 + rnd(3);
        t->d[i] = 1 + rnd(2);
        t->op[i] = t->set_op ? rnd((uint32_t)t->s[i]) : 0;
        int64_t full = t->s[i] * (t->in[i] - 1) + t->op[i] + (t->k[i] - 1) * t->d[i] + 1;
        if (t->set_pads) { /* keep at least one output position */
            t->pb[i] = rnd(3);
            t->pe[i] = rnd(3);
            while (t->pb[i] + t->pe[i] >= full) {
                if (t->pb[i])
                    t->pb[i]--;
                else
                    t->pe[i]--;
            }
        }
        if (t->has_out_shape) { /* from 2 below to 2 above the full size, at least 1 */
            int64_t o = full - 2 + (int64_t)rnd(5);
            t->out_shape[i] = o > 0 ? o : 1;
        }
    }
    t->bias = rnd(2);
    t->threads = 1 + rnd(2);
}

Test(conv_transpose, matches_scatter_reference_on_random_shapes)
{
    for (int trial = 0; trial < 300; trial++) {
        convt_case t;
        random_case(&t, 1 + trial % 3);
        t.dbl = trial % 7 == 0;
        char what[200];
        snprintf(what, sizeof what,
                 "trial %d: %dD n%lld c%lld m%lld group %lld in %lld k%lld s%lld d%lld pads "
                 "%lld/%lld op %lld out_shape %lld auto_pad %s%s",
                 trial, t.ns, (long long)t.n, (long long)t.c, (long long)t.m, (long long)t.group,
                 (long long)t.in[0], (long long)t.k[0], (long long)t.s[0], (long long)t.d[0],
                 (long long)t.pb[0], (long long)t.pe[0], (long long)t.op[0],
                 t.has_out_shape ? (long long)t.out_shape[0] : -1LL, t.auto_pad ? t.auto_pad : "-",
                 t.dbl ? " double" : "");
        check_case(&t, (uint32_t)trial + 100, what);
    }
}

Test(conv_transpose, float16_computes_in_float32)
{
    for (int trial = 0; trial < 30; trial++) {
        convt_case t;
        random_case(&t, 1 + trial % 3);
        t.f16 = true;
        char what[32];
        snprintf(what, sizeof what, "float16 trial %d", trial);
        check_case(&t, (uint32_t)trial + 900, what);
    }
}

Test(conv_transpose, same_upper_puts_the_odd_pad_at_the_end)
{
    /* the ONNX node test's case: 3x3 input, stride 2, kernel 3 -> 6x6 */
    convt_case t = {.ns = 2,
                    .n = 1,
                    .c = 1,
                    .m = 2,
                    .group = 1,
                    .in = {3, 3},
                    .k = {3, 3},
                    .s = {2, 2},
                    .d = {1, 1},
                    .auto_pad = "SAME_UPPER",
                    .threads = 1};
    check_case(&t, 1, "SAME_UPPER");
    t.auto_pad = "SAME_LOWER";
    check_case(&t, 2, "SAME_LOWER");
}

Test(conv_transpose, pointwise_and_large_on_threads)
{
    convt_case p = {.ns = 2,
                    .n = 2,
                    .c = 4,
                    .m = 6,
                    .group = 2,
                    .in = {9, 7},
                    .k = {1, 1},
                    .s = {1, 1},
                    .d = {1, 1},
                    .bias = true,
                    .threads = 2};
    check_case(&p, 3, "pointwise");
    /* 64 output channels x 16 taps x 2304 positions: several column tiles */
    convt_case l = {.ns = 2,
                    .n = 1,
                    .c = 8,
                    .m = 64,
                    .group = 1,
                    .in = {48, 48},
                    .k = {4, 4},
                    .s = {2, 2},
                    .d = {1, 1},
                    .pb = {1, 1},
                    .pe = {1, 1},
                    .set_pads = true,
                    .bias = true,
                    .threads = 2};
    check_case(&l, 4, "large");
}

/* ---- errors ------------------------------------------------------------------------ */

static void expect_error(qkv_status st, qkv_status want, const qkv_error *err, const char *text)
{
    cr_assert_eq(st, want, "status %d, expected %d: %s", st, want, err->message);
    cr_assert(strstr(err->message, "node 'test_node' (ConvTranspose-11)"), "%s", err->message);
    cr_assert(strstr(err->message, text), "'%s' lacks '%s'", err->message, text);
}

static qkv_status run_bad(const int64_t *xd, const int64_t *wd, int rank, kh_node *n,
                          qkv_error *err)
{
    static float buf[4096];
    kh_fill_random(buf, 4096, 5);
    qkv_tensor ins[2] = {kh_f32(rank, xd, buf), kh_f32(rank, wd, buf + 2048)};
    qkv_tensor y;
    qkv_status st = kh_run(n, ins, &y, err);
    if (st == QKV_OK)
        kh_free_outputs(&y, 1);
    kh_node_destroy(n);
    return st;
}

Test(conv_transpose, refuses_channel_mismatch_and_bad_groups)
{
    qkv_error err;
    kh_node *n = kh_node_create("ConvTranspose", 11, 2, 1);
    expect_error(run_bad((int64_t[]){1, 3, 4, 4}, (int64_t[]){2, 2, 3, 3}, 4, n, &err),
                 QKV_ERR_SHAPE, &err, "input 1 'W' has 2 input channels but input 0 'X' has 3");
    n = kh_node_create("ConvTranspose", 11, 2, 1);
    kh_attr_int(n, "group", 2);
    expect_error(run_bad((int64_t[]){1, 3, 4, 4}, (int64_t[]){3, 2, 3, 3}, 4, n, &err),
                 QKV_ERR_SHAPE, &err, "3 channels, not a multiple of group 2");
}

Test(conv_transpose, refuses_pads_that_leave_no_output)
{
    qkv_error err;
    kh_node *n = kh_node_create("ConvTranspose", 11, 2, 1);
    kh_attr_ints(n, "pads", (int64_t[]){2, 2}, 2);
    expect_error(run_bad((int64_t[]){1, 1, 2}, (int64_t[]){1, 1, 3}, 3, n, &err), QKV_ERR_SHAPE,
                 &err, "spatial dim 0: pads 2 + 2 leave no output (full size 4)");
}

Test(conv_transpose, refuses_bad_output_attributes)
{
    qkv_error err;
    kh_node *n = kh_node_create("ConvTranspose", 11, 2, 1);
    kh_attr_ints(n, "output_padding", (int64_t[]){-1}, 1);
    expect_error(run_bad((int64_t[]){1, 1, 2}, (int64_t[]){1, 1, 3}, 3, n, &err),
                 QKV_ERR_INVALID_MODEL, &err, "attribute 'output_padding' has -1 at index 0");
    n = kh_node_create("ConvTranspose", 11, 2, 1);
    kh_attr_ints(n, "output_shape", (int64_t[]){5, 5}, 2); /* neither 1 nor 1 + 2 values */
    kh_attr_ints(n, "strides", (int64_t[]){2}, 1);
    expect_error(run_bad((int64_t[]){1, 1, 2}, (int64_t[]){1, 1, 3}, 3, n, &err),
                 QKV_ERR_INVALID_MODEL, &err,
                 "attribute 'output_shape' gives 2 spatial dims but 'strides' gives 1");
}

Test(conv_transpose, refuses_wrong_rank)
{
    qkv_error err;
    kh_node *n = kh_node_create("ConvTranspose", 11, 2, 1);
    expect_error(run_bad((int64_t[]){1, 2}, (int64_t[]){2, 2}, 2, n, &err), QKV_ERR_SHAPE, &err,
                 "input 0 'X' has rank 2, expected (N, C, D1, ...) of rank >= 3");
}
