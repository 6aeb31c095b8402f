/* MaxPool (values and Indices in both storage orders), AveragePool
 * (count_include_pad) and LpPool against a naive reference written here
 * (every tap of every window classified as input, padding or beyond), on
 * random 1-D/2-D/3-D geometries with pads, strides, dilations, ceil_mode and
 * auto_pad; hand-computed edge cases; GlobalAverage/Max/LpPool; other types,
 * threads, and errors. */
#include <criterion/criterion.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "half.h"
#include "kernel_harness.h"

static uint32_t rng_state = 31337;
static uint32_t rnd(uint32_t n)
{
    rng_state ^= rng_state << 13;
    rng_state ^= rng_state >> 17;
    rng_state ^= rng_state << 5;
    return rng_state % n;
}

enum { MAXP, AVGP, LPP };
enum { NOTSET, VALID, SAME_UPPER, SAME_LOWER };
static const char *const auto_pad_names[] = {"NOTSET", "VALID", "SAME_UPPER", "SAME_LOWER"};
static const char *const op_names[] = {"MaxPool", "AveragePool", "LpPool"};

typedef struct cfg {
    int kind, n; /* n spatial dims */
    int64_t batch, chans;
    int64_t in[3], k[3], s[3], d[3], pads[6]; /* pads: begins then ends */
    int ceil, auto_pad, include_pad, col_major;
    int64_t p;
    bool set_strides, set_dilations, set_pads;
} cfg;

/* Output dims and the effective pads, as the ONNX spec and PyTorch define
 * them (the last ceil_mode window may not start in the end padding). */
static void ref_geometry(const cfg *c, int64_t *out, int64_t *pb, int64_t *pe)
{
    for (int i = 0; i < c->n; i++) {
        int64_t ek = (c->k[i] - 1) * c->d[i] + 1;
        pb[i] = pe[i] = 0;
        if (c->auto_pad == SAME_UPPER || c->auto_pad == SAME_LOWER) {
            out[i] = (c->in[i] + c->s[i] - 1) / c->s[i];
            int64_t total = (out[i] - 1) * c->s[i] + ek - c->in[i];
            total = total < 0 ? 0 : total;
            pb[i] = c->auto_pad == SAME_UPPER ? total / 2 : total - total / 2;
            pe[i] = total - pb[i];
            continue;
        }
        if (c->auto_pad == NOTSET) {
            pb[i] = c->pads[i];
            pe[i] = c->pads[c->n + i];
        }
        double span = (double)(c->in[i] + pb[i] + pe[i] - ek) / (double)c->s[i];
        out[i] = (int64_t)(c->ceil ? ceil(span) : floor(span)) + 1;
        if (c->ceil && (out[i] - 1) * c->s[i] >= c->in[i] + pb[i])
            out[i]--;
    }
}

/* The reference: y (and idx for MaxPool) for every output element. */
static void ref_pool(const cfg *c, const float *x, double *y, int64_t *idx)
{
    int64_t out[3], pb[3], pe[3];
    ref_geometry(c, out, pb, pe);
    size_t in_size = 1, out_size = 1, taps = 1;
    for (int i = 0; i < c->n; i++) {
        in_size *= (size_t)c->in[i];
        out_size *= (size_t)out[i];
        taps *= (size_t)c->k[i];
    }
    for (size_t plane = 0; plane < (size_t)(c->batch * c->chans); plane++)
        for (size_t o = 0; o < out_size; o++) {
            int64_t oi[3];
            size_t rem = o;
            for (int i = c->n - 1; i >= 0; i--) {
                oi[i] = (int64_t)(rem % (size_t)out[i]);
                rem /= (size_t)out[i];
            }
            double best = -INFINITY, sum = 0;
            int64_t best_idx = -1, n_in = 0, n_pad = 0;
            for (size_t t = 0; t < taps; t++) {
                int64_t pos[3];
                size_t tr = t;
                bool inside = true, in_pad = true;
                for (int i = c->n - 1; i >= 0; i--) {
                    int64_t j = (int64_t)(tr % (size_t)c->k[i]);
                    tr /= (size_t)c->k[i];
                    pos[i] = oi[i] * c->s[i] - pb[i] + j * c->d[i];
                    inside = inside && pos[i] >= 0 && pos[i] < c->in[i];
                    in_pad = in_pad && pos[i] >= -pb[i] && pos[i] < c->in[i] + pe[i];
                }
                n_pad += in_pad;
                if (!inside)
                    continue;
                n_in++;
                int64_t rm = 0, cm = 0, stride = 1;
                for (int i = 0; i < c->n; i++)
                    rm = rm * c->in[i] + pos[i];
                for (int i = 0; i < c->n; i++) {
                    cm += pos[i] * stride;
                    stride *= c->in[i];
                }
                double v = x[plane * in_size + (size_t)rm];
                if (best_idx < 0 || v > best) {
                    best = v;
                    best_idx = (int64_t)(plane * in_size) + (c->col_major ? cm : rm);
                }
                sum += c->kind == LPP ? pow(fabs(v), (double)c->p) : v;
            }
            size_t e = plane * out_size + o;
            if (c->kind == MAXP) {
                y[e] = best;
                idx[e] = best_idx;
            } else if (c->kind == AVGP) {
                int64_t n = c->include_pad ? n_pad : n_in;
                y[e] = n ? sum / (double)n : 0;
            } else {
                y[e] = pow(sum, 1.0 / (double)c->p);
            }
        }
}

static kh_node *make_node(const cfg *c, int64_t opset, size_t n_outputs)
{
    kh_node *n = kh_node_create(op_names[c->kind], opset, 1, n_outputs);
    kh_attr_ints(n, "kernel_shape", c->k, (size_t)c->n);
    if (c->set_strides)
        kh_attr_ints(n, "strides", c->s, (size_t)c->n);
    if (c->set_dilations)
        kh_attr_ints(n, "dilations", c->d, (size_t)c->n);
    if (c->set_pads)
        kh_attr_ints(n, "pads", c->pads, 2 * (size_t)c->n);
    if (c->auto_pad != NOTSET)
        kh_attr_string(n, "auto_pad", auto_pad_names[c->auto_pad]);
    if (c->ceil)
        kh_attr_int(n, "ceil_mode", 1);
    if (c->include_pad)
        kh_attr_int(n, "count_include_pad", 1);
    if (c->col_major)
        kh_attr_int(n, "storage_order", 1);
    if (c->kind == LPP && c->p != 2)
        kh_attr_int(n, "p", c->p);
    return n;
}

/* A random geometry whose window fits the padded input. */
static void random_cfg(cfg *c, int kind)
{
    memset(c, 0, sizeof *c);
    c->kind = kind;
    c->n = 1 + (int)rnd(3);
    c->batch = 1 + rnd(2);
    c->chans = 1 + rnd(3);
    c->auto_pad = rnd(4) == 0 ? (int)rnd(4) : NOTSET;
    c->ceil = c->auto_pad == NOTSET && rnd(2);
    c->include_pad = kind == AVGP && rnd(2);
    c->col_major = kind == MAXP && rnd(2);
    c->p = 1 + rnd(3);
    c->set_strides = rnd(3) != 0;
    c->set_dilations = rnd(3) != 0;
    c->set_pads = c->auto_pad == NOTSET && rnd(3) != 0;
    for (int i = 0; i < c->n; i++) {
        c->k[i] = 1 + rnd(3);
        c->s[i] = c->set_strides ? 1 + rnd(3) : 1;
        c->d[i] = c->set_dilations ? 1 + rnd(2) : 1;
        int64_t ek = (c->k[i] - 1) * c->d[i] + 1;
        if (c->set_pads) {
            c->pads[i] = rnd((uint32_t)ek);
            c->pads[c->n + i] = rnd((uint32_t)ek);
        }
        int64_t need = ek - c->pads[i] - c->pads[c->n + i];
        c->in[i] = (need < 1 ? 1 : need) + rnd(c->n == 3 ? 4 : 7);
    }
}

/* Tolerance: both sides sum in double and the kernel rounds once to float
 * (pow for LpPool); 1e-5 relative is far above that and far below a wrong
 * tap or divisor. Max values and indices are exact. */
static void check_cfg(const cfg *c, int trial, size_t threads)
{
    size_t in_total = (size_t)(c->batch * c->chans), out_total = in_total;
    int64_t out[3], pb[3], pe[3];
    ref_geometry(c, out, pb, pe);
    int64_t xd[5] = {c->batch, c->chans}, yd[5] = {c->batch, c->chans};
    for (int i = 0; i < c->n; i++) {
        xd[2 + i] = c->in[i];
        yd[2 + i] = out[i];
        in_total *= (size_t)c->in[i];
        out_total *= (size_t)out[i];
    }
    float *x = malloc(in_total * sizeof *x);
    double *want = malloc(out_total * sizeof *want);
    int64_t *want_idx = malloc(out_total * sizeof *want_idx);
    kh_fill_random(x, in_total, (uint32_t)trial * 7 + 1);
    ref_pool(c, x, want, want_idx);
    size_t n_out = c->kind == MAXP ? 2 : 1;
    kh_node *n = make_node(c, c->kind == AVGP ? 19 : c->kind == LPP ? 18 : 12, n_out);
    if (threads)
        kh_set_threads(n, threads);
    qkv_tensor xt = kh_f32(2 + c->n, xd, x), y[2];
    qkv_error err;
    char what[160];
    snprintf(what, sizeof what,
             "trial %d %s n=%d k=%lld,%lld,%lld s=%lld,%lld,%lld d=%lld,%lld,%lld ceil %d "
             "auto_pad %d include_pad %d col_major %d",
             trial, op_names[c->kind], c->n, (long long)c->k[0], (long long)c->k[1],
             (long long)c->k[2], (long long)c->s[0], (long long)c->s[1], (long long)c->s[2],
             (long long)c->d[0], (long long)c->d[1], (long long)c->d[2], c->ceil, c->auto_pad,
             c->include_pad, c->col_major);
    cr_assert_eq(kh_run(n, &xt, y, &err), QKV_OK, "%s: %s", what, err.message);
    cr_assert_eq(y[0].rank, 2 + c->n, "%s", what);
    for (int i = 0; i < 2 + c->n; i++)
        cr_assert_eq(y[0].dims[i], yd[i], "%s: dim %d is %lld, expected %lld", what, i,
                     (long long)y[0].dims[i], (long long)yd[i]);
    const float *got = y[0].data;
    for (size_t e = 0; e < out_total; e++) {
        if (c->kind == MAXP) {
            cr_assert(got[e] == (float)want[e], "%s: element %zu is %g, expected %g", what, e,
                      got[e], want[e]);
            cr_assert_eq(((int64_t *)y[1].data)[e], want_idx[e],
                         "%s: index %zu is %lld, expected %lld", what, e,
                         (long long)((int64_t *)y[1].data)[e], (long long)want_idx[e]);
        } else {
            cr_assert(fabs(got[e] - want[e]) <= 1e-6 + 1e-5 * fabs(want[e]),
                      "%s: element %zu is %.9g, expected %.9g", what, e, got[e], want[e]);
        }
    }
    kh_free_outputs(y, n_out);
    kh_node_destroy(n);
    free(x);
    free(want);
    free(want_idx);
}

Test(pool, maxpool_matches_reference_on_random_geometries)
{
    for (int trial = 0; trial < 300; trial++) {
        cfg c;
        random_cfg(&c, MAXP);
        check_cfg(&c, trial, 0);
    }
}

Test(pool, averagepool_matches_reference_on_random_geometries)
{
    for (int trial = 0; trial < 300; trial++) {
        cfg c;
        random_cfg(&c, AVGP);
        check_cfg(&c, trial, 0);
    }
}

Test(pool, lppool_matches_reference_on_random_geometries)
{
    for (int trial = 0; trial < 200; trial++) {
        cfg c;
        random_cfg(&c, LPP);
        check_cfg(&c, trial, 0);
    }
}

Test(pool, large_2d_pools_on_threads)
{
    for (int kind = MAXP; kind <= LPP; kind++) {
        cfg c = {.kind = kind,
                 .n = 2,
                 .batch = 2,
                 .chans = 8,
                 .in = {56, 56},
                 .k = {3, 3},
                 .s = {2, 2},
                 .d = {1, 1},
                 .pads = {1, 1, 1, 1},
                 .ceil = 1,
                 .include_pad = 1,
                 .p = 2,
                 .set_strides = true,
                 .set_pads = true};
        check_cfg(&c, 1000 + kind, 4);
    }
}

/* ---- hand-computed edge cases ----------------------------------------------- */

/* Runs a 1-D pool over x (1, 1, len) and compares with want (exactly). */
static void check_1d(const cfg *c, const float *x, const float *want, int64_t want_len)
{
    kh_node *n = make_node(c, 19, 1);
    qkv_tensor xt = kh_f32(3, (int64_t[]){1, 1, c->in[0]}, (float *)x), y;
    qkv_error err;
    cr_assert_eq(kh_run(n, &xt, &y, &err), QKV_OK, "%s", err.message);
    cr_assert_eq(y.dims[2], want_len, "output length %lld, expected %lld", (long long)y.dims[2],
                 (long long)want_len);
    for (int64_t i = 0; i < want_len; i++)
        cr_assert(((float *)y.data)[i] == want[i], "element %lld is %g, expected %g", (long long)i,
                  ((float *)y.data)[i], want[i]);
    kh_free_outputs(&y, 1);
    kh_node_destroy(n);
}

Test(pool, ceil_mode_with_pads_counts_only_the_padded_input)
{
    /* x = 1..6, k 3, s 2, pads 1/1, ceil_mode: windows start at -1, 1, 3, 5;
     * the last reads 6, then the end pad, then beyond it */
    float x[6] = {1, 2, 3, 4, 5, 6};
    cfg c = {.kind = AVGP,
             .n = 1,
             .in = {6},
             .k = {3},
             .s = {2},
             .d = {1},
             .pads = {1, 1},
             .ceil = 1,
             .set_strides = true,
             .set_pads = true};
    check_1d(&c, x, (const float[]){1.5f, 3, 5, 6}, 4);
    c.include_pad = 1; /* (0+1+2)/3, 9/3, 15/3, (6+0)/2 */
    check_1d(&c, x, (const float[]){1, 3, 5, 3}, 4);
    /* no pads: the ceil window [5, 6, beyond] divides by 2 even with include_pad */
    c.set_pads = false;
    memset(c.pads, 0, sizeof c.pads);
    check_1d(&c, x, (const float[]){2, 4, 5.5f}, 3);
}

Test(pool, ceil_mode_drops_a_window_starting_in_the_end_padding)
{
    /* x = 1..5, k 2, s 2, pads 1/1: ceil((5 + 2 - 2) / 2) + 1 = 4 windows, but
     * the 4th would start at 5, in the end padding: 3 remain */
    float x[5] = {1, 2, 3, 4, 5};
    cfg c = {.kind = MAXP,
             .n = 1,
             .in = {5},
             .k = {2},
             .s = {2},
             .d = {1},
             .pads = {1, 1},
             .ceil = 1,
             .set_strides = true,
             .set_pads = true};
    check_1d(&c, x, (const float[]){1, 3, 5}, 3);
    c.ceil = 0;
    check_1d(&c, x, (const float[]){1, 3, 5}, 3);
}

Test(pool, dilated_maxpool_reads_every_other_element)
{
    /* the ONNX example: 4x4 ramp, k 2, dilation 2 -> [[11, 12], [15, 16]] */
    float x[16];
    for (int i = 0; i < 16; i++)
        x[i] = (float)(i + 1);
    kh_node *n = kh_node_create("MaxPool", 12, 1, 1);
    kh_attr_ints(n, "kernel_shape", (int64_t[]){2, 2}, 2);
    kh_attr_ints(n, "dilations", (int64_t[]){2, 2}, 2);
    qkv_tensor xt = kh_f32(4, (int64_t[]){1, 1, 4, 4}, x), y;
    qkv_error err;
    cr_assert_eq(kh_run(n, &xt, &y, &err), QKV_OK, "%s", err.message);
    float want[4] = {11, 12, 15, 16};
    cr_assert(y.dims[2] == 2 && y.dims[3] == 2);
    cr_assert_eq(memcmp(y.data, want, sizeof want), 0);
    kh_free_outputs(&y, 1);
    kh_node_destroy(n);
}

Test(pool, indices_count_planes_and_follow_storage_order)
{
    /* 2 planes of the 5x5 ramp, k 2, s 2: maxima 7, 9, 17, 19 (1-based),
     * at row-major 6, 8, 16, 18 and column-major 6, 16, 8, 18; plane 1 adds 25 */
    float x[50];
    for (int i = 0; i < 50; i++)
        x[i] = (float)(i % 25 + 1);
    for (int order = 0; order < 2; order++) {
        kh_node *n = kh_node_create("MaxPool", 8, 1, 2);
        kh_attr_ints(n, "kernel_shape", (int64_t[]){2, 2}, 2);
        kh_attr_ints(n, "strides", (int64_t[]){2, 2}, 2);
        kh_attr_int(n, "storage_order", order);
        qkv_tensor xt = kh_f32(4, (int64_t[]){1, 2, 5, 5}, x), y[2];
        qkv_error err;
        cr_assert_eq(kh_run(n, &xt, y, &err), QKV_OK, "%s", err.message);
        cr_assert_eq(y[1].dtype, QKV_DTYPE_INT64);
        const float vals[4] = {7, 9, 17, 19};
        const int64_t rows[4] = {6, 8, 16, 18}, cols[4] = {6, 16, 8, 18};
        for (int p = 0; p < 2; p++)
            for (int i = 0; i < 4; i++) {
                cr_assert_eq(((float *)y[0].data)[p * 4 + i], vals[i]);
                cr_assert_eq(((int64_t *)y[1].data)[p * 4 + i], (order ? cols : rows)[i] + 25 * p,
                             "order %d plane %d index %d", order, p, i);
            }
        kh_free_outputs(y, 2);
        kh_node_destroy(n);
    }
}

Test(pool, maxpool_takes_int8_and_uint8_and_nan_wins)
{
    int8_t a[6] = {-5, -3, -128, -7, 4, -1};
    kh_node *n = kh_node_create("MaxPool", 12, 1, 1);
    kh_attr_ints(n, "kernel_shape", (int64_t[]){2}, 1);
    qkv_tensor xt = kh_tensor(QKV_DTYPE_INT8, 3, (int64_t[]){1, 1, 6}, a), y;
    qkv_error err;
    cr_assert_eq(kh_run(n, &xt, &y, &err), QKV_OK, "%s", err.message);
    int8_t want[5] = {-3, -3, -7, 4, 4};
    cr_assert_eq(memcmp(y.data, want, 5), 0);
    kh_free_outputs(&y, 1);
    uint8_t b[6] = {200, 3, 0, 255, 9, 9};
    xt = kh_tensor(QKV_DTYPE_UINT8, 3, (int64_t[]){1, 1, 6}, b);
    cr_assert_eq(kh_run(n, &xt, &y, &err), QKV_OK, "%s", err.message);
    uint8_t wantu[5] = {200, 3, 255, 255, 9};
    cr_assert_eq(memcmp(y.data, wantu, 5), 0);
    kh_free_outputs(&y, 1);
    float f[4] = {1, NAN, 3, 2};
    xt = kh_f32(3, (int64_t[]){1, 1, 4}, f);
    cr_assert_eq(kh_run(n, &xt, &y, &err), QKV_OK, "%s", err.message);
    cr_assert(isnan(((float *)y.data)[0]) && isnan(((float *)y.data)[1]));
    cr_assert_eq(((float *)y.data)[2], 3);
    kh_free_outputs(&y, 1);
    kh_node_destroy(n);
}

Test(pool, float16_and_double_match_float)
{
    enum { T = 2 * 3 * 9 * 7 };
    float x[T];
    uint16_t h[T];
    double xd[T];
    kh_fill_random(x, T, 17);
    for (int i = 0; i < T; i++) {
        h[i] = qkv_f32_to_f16(x[i]);
        x[i] = qkv_f16_to_f32(h[i]);
        xd[i] = x[i];
    }
    int64_t dims[4] = {2, 3, 9, 7};
    for (int kind = MAXP; kind <= LPP; kind++) {
        cfg c = {.kind = kind,
                 .n = 2,
                 .batch = 2,
                 .chans = 3,
                 .in = {9, 7},
                 .k = {3, 2},
                 .s = {2, 1},
                 .d = {1, 2},
                 .pads = {1, 0, 1, 1},
                 .p = 3,
                 .set_strides = true,
                 .set_dilations = true,
                 .set_pads = true};
        double want[T];
        int64_t idx[T];
        ref_pool(&c, x, want, idx);
        int64_t out[3], pb[3], pe[3];
        ref_geometry(&c, out, pb, pe);
        size_t ny = (size_t)(2 * 3 * out[0] * out[1]);
        kh_node *n = make_node(&c, 19, 1);
        qkv_tensor xt = kh_tensor(QKV_DTYPE_FLOAT16, 4, dims, h), y;
        qkv_error err;
        cr_assert_eq(kh_run(n, &xt, &y, &err), QKV_OK, "%s", err.message);
        cr_assert_eq(y.dtype, QKV_DTYPE_FLOAT16);
        for (size_t e = 0; e < ny; e++) {
            /* the float result rounded once to half: at most that rounding apart */
            uint16_t got = ((uint16_t *)y.data)[e], w = qkv_f64_to_f16(want[e]);
            cr_assert(got == w || got == w + 1 || got + 1 == w, "%s half element %zu",
                      op_names[kind], e);
        }
        kh_free_outputs(&y, 1);
        xt = kh_tensor(QKV_DTYPE_DOUBLE, 4, dims, xd);
        cr_assert_eq(kh_run(n, &xt, &y, &err), QKV_OK, "%s", err.message);
        for (size_t e = 0; e < ny; e++)
            cr_assert(fabs(((double *)y.data)[e] - want[e]) <= 1e-12 * (1 + fabs(want[e])),
                      "%s double element %zu", op_names[kind], e);
        kh_free_outputs(&y, 1);
        kh_node_destroy(n);
    }
}

Test(pool, lppool_opset_1_takes_a_float_p)
{
    float x[4] = {3, -4, 1, 1};
    kh_node *n = kh_node_create("LpPool", 1, 1, 1);
    kh_attr_ints(n, "kernel_shape", (int64_t[]){2}, 1);
    kh_attr_ints(n, "strides", (int64_t[]){2}, 1);
    kh_attr_float(n, "p", 1.0f);
    qkv_tensor xt = kh_f32(3, (int64_t[]){1, 1, 4}, x), y;
    qkv_error err;
    cr_assert_eq(kh_run(n, &xt, &y, &err), QKV_OK, "%s", err.message);
    cr_assert(((float *)y.data)[0] == 7 && ((float *)y.data)[1] == 2);
    kh_free_outputs(&y, 1);
    kh_node_destroy(n);
}

/* ---- errors ------------------------------------------------------------------ */

static void expect_pool_error(kh_node *n, int rank, const int64_t *dims, qkv_dtype t,
                              qkv_status want, const char *msg)
{
    static char data[4096];
    qkv_tensor xt = kh_tensor(t, rank, dims, data), y[2];
    qkv_error err;
    cr_assert_eq(kh_run(n, &xt, y, &err), want, "%s", err.message);
    cr_assert(strstr(err.message, msg), "message: %s", err.message);
    kh_node_destroy(n);
}

Test(pool, refuses_bad_attributes_and_shapes)
{
    int64_t d4[4] = {1, 1, 4, 4};
    kh_node *n = kh_node_create("MaxPool", 12, 1, 1);
    expect_pool_error(n, 4, d4, QKV_DTYPE_FLOAT, QKV_ERR_INVALID_MODEL,
                      "(MaxPool-12): attribute 'kernel_shape' is required");
    n = kh_node_create("AveragePool", 19, 1, 1);
    kh_attr_ints(n, "kernel_shape", (int64_t[]){2, 2}, 2);
    expect_pool_error(n, 4, d4, QKV_DTYPE_INT8, QKV_ERR_TYPE, "input 0");
    n = kh_node_create("AveragePool", 19, 1, 1);
    kh_attr_ints(n, "kernel_shape", (int64_t[]){2, 2}, 2);
    kh_attr_int(n, "count_include_pad", 2);
    expect_pool_error(n, 4, d4, QKV_DTYPE_FLOAT, QKV_ERR_INVALID_MODEL,
                      "attribute count_include_pad=2, expected 0 or 1");
    n = kh_node_create("MaxPool", 12, 1, 2);
    kh_attr_ints(n, "kernel_shape", (int64_t[]){2, 2}, 2);
    kh_attr_int(n, "storage_order", 3);
    expect_pool_error(n, 4, d4, QKV_DTYPE_FLOAT, QKV_ERR_INVALID_MODEL,
                      "attribute storage_order=3, expected 0 (row major) or 1 (column major)");
    n = kh_node_create("LpPool", 18, 1, 1);
    kh_attr_ints(n, "kernel_shape", (int64_t[]){2, 2}, 2);
    kh_attr_int(n, "p", 0);
    expect_pool_error(n, 4, d4, QKV_DTYPE_FLOAT, QKV_ERR_INVALID_MODEL,
                      "attribute p=0 is not positive");
    n = kh_node_create("MaxPool", 12, 1, 1);
    kh_attr_ints(n, "kernel_shape", (int64_t[]){5, 2}, 2);
    expect_pool_error(n, 4, d4, QKV_DTYPE_FLOAT, QKV_ERR_SHAPE,
                      "spatial dim 0: the window (5 with dilation) is larger than the padded "
                      "input (4)");
    n = kh_node_create("MaxPool", 12, 1, 1);
    kh_attr_ints(n, "kernel_shape", (int64_t[]){2}, 1);
    expect_pool_error(n, 4, d4, QKV_DTYPE_FLOAT, QKV_ERR_SHAPE,
                      "the input has 2 spatial dims but the attributes give 1");
    n = kh_node_create("MaxPool", 12, 1, 1);
    kh_attr_ints(n, "kernel_shape", (int64_t[]){2}, 1);
    expect_pool_error(n, 2, (int64_t[]){1, 4}, QKV_DTYPE_FLOAT, QKV_ERR_SHAPE,
                      "input 0 'X' has rank 2, expected >= 3 (N, C and spatial dims)");
    n = kh_node_create("MaxPool", 12, 1, 1);
    kh_attr_ints(n, "kernel_shape", (int64_t[]){1, 1, 1, 1}, 4);
    expect_pool_error(n, 6, (int64_t[]){1, 1, 2, 2, 2, 2}, QKV_DTYPE_FLOAT, QKV_ERR_UNSUPPORTED,
                      "input 0 'X' has 4 spatial dims: pooling supports 1 to 3");
}

/* ---- global pools -------------------------------------------------------------- */

Test(global_pool, match_reference_on_random_shapes)
{
    static const char *const ops[] = {"GlobalAveragePool", "GlobalMaxPool", "GlobalLpPool"};
    float x[4 * 4 * 6 * 6 * 6];
    for (int trial = 0; trial < 90; trial++) {
        int kind = trial % 3, rank = 2 + (int)rnd(4);
        int64_t d[5], p = 1 + rnd(3);
        size_t planes, s = 1;
        for (int k = 0; k < rank; k++) {
            d[k] = 1 + rnd(k < 2 ? 4 : 6);
            if (k >= 2)
                s *= (size_t)d[k];
        }
        planes = (size_t)(d[0] * d[1]);
        kh_fill_random(x, planes * s, (uint32_t)trial + 5);
        kh_node *n = kh_node_create(ops[kind], 2, 1, 1);
        if (kind == 2)
            kh_attr_int(n, "p", p);
        qkv_tensor xt = kh_f32(rank, d, x), y;
        qkv_error err;
        cr_assert_eq(kh_run(n, &xt, &y, &err), QKV_OK, "%s", err.message);
        cr_assert_eq(y.rank, rank);
        for (int k = 0; k < rank; k++)
            cr_assert_eq(y.dims[k], k < 2 ? d[k] : 1);
        for (size_t q = 0; q < planes; q++) {
            double sum = 0, m = -INFINITY;
            for (size_t i = 0; i < s; i++) {
                double v = x[q * s + i];
                sum += kind == 2 ? pow(fabs(v), (double)p) : v;
                m = v > m ? v : m;
            }
            double want = kind == 0 ? sum / (double)s : kind == 1 ? m : pow(sum, 1.0 / (double)p);
            float got = ((float *)y.data)[q];
            /* one rounding of a double sum (pow for Lp) */
            cr_assert(fabs(got - want) <= 1e-6 + 1e-5 * fabs(want),
                      "%s trial %d plane %zu: %g, "
                      "expected %g",
                      ops[kind], trial, q, got, want);
        }
        kh_free_outputs(&y, 1);
        kh_node_destroy(n);
    }
}

Test(global_pool, float16_large_planes_on_threads)
{
    enum { P = 2 * 64, S = 28 * 28 };
    static float x[P * S];
    static uint16_t h[P * S];
    kh_fill_random(x, P * S, 44);
    for (size_t i = 0; i < P * S; i++) {
        h[i] = qkv_f32_to_f16(x[i]);
        x[i] = qkv_f16_to_f32(h[i]);
    }
    kh_node *n = kh_node_create("GlobalAveragePool", 22, 1, 1);
    kh_set_threads(n, 4);
    qkv_tensor xt = kh_tensor(QKV_DTYPE_FLOAT16, 4, (int64_t[]){2, 64, 28, 28}, h), y;
    qkv_error err;
    cr_assert_eq(kh_run(n, &xt, &y, &err), QKV_OK, "%s", err.message);
    for (size_t q = 0; q < P; q++) {
        double sum = 0;
        for (size_t i = 0; i < S; i++)
            sum += x[q * S + i];
        uint16_t got = ((uint16_t *)y.data)[q], w = qkv_f64_to_f16(sum / S);
        cr_assert(got == w || got == w + 1 || got + 1 == w, "plane %zu", q);
    }
    kh_free_outputs(&y, 1);
    kh_node_destroy(n);
}

Test(global_pool, lppool_opset_1_float_p_and_errors)
{
    float x[4] = {3, 4, 0, 0};
    kh_node *n = kh_node_create("GlobalLpPool", 1, 1, 1);
    kh_attr_float(n, "p", 2.0f);
    qkv_tensor xt = kh_f32(3, (int64_t[]){1, 1, 4}, x), y;
    qkv_error err;
    cr_assert_eq(kh_run(n, &xt, &y, &err), QKV_OK, "%s", err.message);
    cr_assert_eq(((float *)y.data)[0], 5);
    kh_free_outputs(&y, 1);
    kh_node_destroy(n);
    n = kh_node_create("GlobalLpPool", 2, 1, 1);
    kh_attr_int(n, "p", -1);
    cr_assert_eq(kh_run(n, &xt, &y, &err), QKV_ERR_INVALID_MODEL);
    cr_assert(strstr(err.message, "(GlobalLpPool-2): attribute p=-1 is not positive"), "%s",
              err.message);
    kh_node_destroy(n);
    n = kh_node_create("GlobalMaxPool", 1, 1, 1);
    xt = kh_f32(3, (int64_t[]){1, 1, 0}, x);
    cr_assert_eq(kh_run(n, &xt, &y, &err), QKV_ERR_SHAPE);
    cr_assert(strstr(err.message, "input 0 'X' has shape [1,1,0]: an empty spatial dim leaves "
                                  "nothing to pool"),
              "%s", err.message);
    xt = kh_f32(1, (int64_t[]){4}, x);
    cr_assert_eq(kh_run(n, &xt, &y, &err), QKV_ERR_SHAPE);
    cr_assert(strstr(err.message, "input 0 'X' has rank 1, expected >= 2"), "%s", err.message);
    kh_node_destroy(n);
}

/* ---- shapes only, and windows without input ----------------------------------- */

Test(pool, infer_keeps_unknown_dims)
{
    kh_node *n = kh_node_create("MaxPool", 12, 1, 2);
    kh_attr_ints(n, "kernel_shape", (int64_t[]){3, 3}, 2);
    kh_attr_ints(n, "strides", (int64_t[]){2, 2}, 2);
    kh_attr_string(n, "auto_pad", "SAME_UPPER");
    qkv_tensor x = kh_tensor(QKV_DTYPE_FLOAT, 4, (int64_t[]){-1, 3, -1, 9}, NULL), y[2];
    qkv_error err;
    cr_assert_eq(kh_infer(n, &x, y, &err), QKV_OK, "%s", err.message);
    for (int k = 0; k < 2; k++) {
        cr_assert_eq(y[k].dtype, k ? QKV_DTYPE_INT64 : QKV_DTYPE_FLOAT);
        cr_assert(y[k].rank == 4 && y[k].dims[0] == -1 && y[k].dims[1] == 3 && y[k].dims[2] == -1 &&
                  y[k].dims[3] == 5);
    }
    x.rank = -1;
    cr_assert_eq(kh_infer(n, &x, y, &err), QKV_OK, "%s", err.message);
    cr_assert_eq(y[0].rank, -1);
    kh_node_destroy(n);
}

Test(pool, a_window_of_padding_only_gives_lowest_or_zero)
{
    /* in 1, k 2, dilation 3, pads 2/1: the one window reads positions -2 and 1 */
    float x[1] = {5};
    static const char *const ops[] = {"MaxPool", "AveragePool", "LpPool"};
    static const int64_t opsets[] = {12, 19, 18};
    for (int kind = 0; kind < 3; kind++)
        for (int include = 0; include < 2; include++) {
            kh_node *n = kh_node_create(ops[kind], opsets[kind], 1, kind == 0 ? 2 : 1);
            kh_attr_ints(n, "kernel_shape", (int64_t[]){2}, 1);
            kh_attr_ints(n, "dilations", (int64_t[]){3}, 1);
            kh_attr_ints(n, "pads", (int64_t[]){2, 1}, 2);
            if (kind == 1)
                kh_attr_int(n, "count_include_pad", include);
            qkv_tensor xt = kh_f32(3, (int64_t[]){1, 1, 1}, x), y[2];
            qkv_error err;
            cr_assert_eq(kh_run(n, &xt, y, &err), QKV_OK, "%s", err.message);
            cr_assert_eq(y[0].dims[2], 1);
            float v = ((float *)y[0].data)[0];
            if (kind == 0) {
                cr_assert(isinf(v) && v < 0, "%s: %g", ops[kind], v);
                cr_assert_eq(((int64_t *)y[1].data)[0], -1);
            } else {
                cr_assert_eq(v, 0, "%s include %d: %g", ops[kind], include, v);
            }
            kh_free_outputs(y, kind == 0 ? 2 : 1);
            kh_node_destroy(n);
        }
}
