/*
 * Resize and Upsample.
 *
 * Checked two ways:
 *  - against ref_resize below, a per-element reference written the way the
 *    ONNX reference (onnx/reference/ops/op_resize.py) computes: nested 1-D
 *    interpolations over every axis, each taking the n input coordinates
 *    nearest x_original from the edge-padded line (ties to the smaller) with
 *    the reference's coefficient formulas. It shares no code with the kernel
 *    (which tabulates weights per axis and runs separable passes). It uses
 *    the spec's integer resized length in align_corners and
 *    tf_crop_and_resize, and 0 for pytorch_half_pixel's length-1 output, as
 *    ONNX Runtime does (see ops/resize.c);
 *  - against fixed values from a numpy port of the same reference, each of
 *    which ONNX Runtime 1.30 reproduces within 2.4e-6
 *    (tests/data/resize_expected.py prints them and the differences).
 */
#include <criterion/criterion.h>
#include <math.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "kernel_harness.h"
#include "test_util.h"

/* ---- the reference ------------------------------------------------------------------ */

typedef struct ref_cfg {
    const char *mode;    /* nearest, linear, cubic */
    const char *coord;   /* coordinate_transformation_mode */
    const char *nearest; /* nearest_mode; NULL: round_prefer_floor */
    bool antialias, exclude;
    double a; /* cubic_coeff_a; 0 reads as -0.75 */
    double extrap;
} ref_cfg;

static bool is(const char *s, const char *v) { return s && strcmp(s, v) == 0; }

/* The reference's coefficients for ratio r in (0, 1] at scale s; returns n. */
static size_t ref_coeffs(const ref_cfg *c, double r, double s, double *w)
{
    const double A = c->a != 0 ? c->a : -0.75;
    if (is(c->mode, "nearest")) {
        const char *m = c->nearest ? c->nearest : "round_prefer_floor";
        bool lo = r == 1.0                      ? false
                  : is(m, "round_prefer_floor") ? r <= 0.5
                  : is(m, "round_prefer_ceil")  ? r < 0.5
                  : is(m, "floor")              ? true
                                                : false;
        w[0] = lo;
        w[1] = !lo;
        return 2;
    }
    s = s < 1.0 && c->antialias ? s : 1.0;
    if (is(c->mode, "linear") && !c->antialias) {
        w[0] = 1 - r;
        w[1] = r;
        return 2;
    }
    if (is(c->mode, "cubic") && !c->antialias) {
        double p = r + 1, q = 1 - r, u = 2 - r;
        w[0] = ((A * p - 5 * A) * p + 8 * A) * p - 4 * A;
        w[1] = ((A + 2) * r - (A + 3)) * r * r + 1;
        w[2] = ((A + 2) * q - (A + 3)) * q * q + 1;
        w[3] = ((A * u - 5 * A) * u + 8 * A) * u - 4 * A;
        return 4;
    }
    const bool cubic = is(c->mode, "cubic");
    int start = (int)floor((cubic ? -2.0 : -1.0) / s) + 1;
    size_t n = (size_t)(2 - 2 * start);
    double sum = 0;
    for (size_t i = 0; i < n; i++) {
        double x = fabs(s * ((double)start + (double)i - r));
        if (!cubic)
            w[i] = x < 1 ? 1 - x : 0;
        else if (x <= 1)
            w[i] = (A + 2) * x * x * x - (A + 3) * x * x + 1;
        else if (x < 2)
            w[i] = A * x * x * x - 5 * A * x * x + 8 * A * x - 4 * A;
        else
            w[i] = 0;
        sum += w[i];
    }
    for (size_t i = 0; i < n; i++)
        w[i] /= sum;
    return n;
}

/* One output coordinate x of a line of length len resized to oint. */
static double ref_interp1(const double *line, int64_t len, double s, int64_t oint, int64_t x,
                          const double *roi, const ref_cfg *c)
{
    double L = (double)len, xd = (double)x, xo;
    if (is(c->coord, "align_corners")) {
        xo = oint == 1 ? 0 : xd * (L - 1) / ((double)oint - 1);
    } else if (is(c->coord, "asymmetric")) {
        xo = xd / s;
    } else if (is(c->coord, "tf_crop_and_resize")) {
        xo = oint == 1 ? (roi[1] - roi[0]) * (L - 1) / 2
                       : xd * (roi[1] - roi[0]) * (L - 1) / ((double)oint - 1);
        xo += roi[0] * (L - 1);
        if (xo < 0 || xo > L - 1)
            return c->extrap;
    } else if (is(c->coord, "pytorch_half_pixel")) {
        xo = oint == 1 ? 0 : (xd + 0.5) / s - 0.5;
    } else if (is(c->coord, "half_pixel_symmetric")) {
        xo = L / 2 * (1 - (double)oint / (s * L)) + (xd + 0.5) / s - 0.5;
    } else if (is(c->coord, "tf_half_pixel_for_nn")) {
        xo = (xd + 0.5) / s;
    } else {
        xo = (xd + 0.5) / s - 0.5;
    }
    double fl = floor(xo), r = xo == fl ? 1.0 : xo - fl, w[256];
    size_t n = ref_coeffs(c, r, s, w);
    /* the n coordinates of the edge-padded line nearest xo, ties to the smaller
     * (distances measured from xo itself: the reference's xo + pad rounds, and
     * then picks a window one off from its ratio when xo is within an ulp of
     * an integer) */
    int64_t pad = (int64_t)(n + 1) / 2, padded = len + 2 * pad, pick[256];
    bool taken[1024] = {false};
    cr_assert(padded <= 1024 && n <= 256);
    for (size_t k = 0; k < n; k++) {
        int64_t best = -1;
        for (int64_t i = 0; i < padded; i++) {
            if (taken[i])
                continue;
            if (best < 0 || fabs(xo - (double)(i - pad)) < fabs(xo - (double)(best - pad)))
                best = i;
        }
        taken[best] = true;
    }
    size_t m = 0;
    for (int64_t i = 0; i < padded; i++)
        if (taken[i])
            pick[m++] = i - pad;
    if (c->exclude) {
        double sum = 0;
        for (size_t k = 0; k < n; k++) {
            if (pick[k] < 0 || pick[k] >= len)
                w[k] = 0;
            sum += w[k];
        }
        for (size_t k = 0; k < n; k++)
            w[k] /= sum;
    }
    double v = 0;
    for (size_t k = 0; k < n; k++) {
        int64_t j = pick[k] < 0 ? 0 : pick[k] >= len ? len - 1 : pick[k];
        v += w[k] * line[j];
    }
    return v;
}

/* Output element pos of x (dims in, rank) resized to osz with per-axis
 * scales sc; roi: 2 * rank values (starts, ends) or NULL. */
static double ref_interp(const double *x, const int64_t *in, int rank, const double *sc,
                         const int64_t *osz, const int64_t *pos, const double *roi,
                         const ref_cfg *c)
{
    double pair[2] = {roi ? roi[0] : 0, roi ? roi[rank] : 1};
    if (rank == 1)
        return ref_interp1(x, in[0], sc[0], osz[0], pos[0], pair, c);
    size_t inner = 1;
    for (int d = 1; d < rank; d++)
        inner *= (size_t)in[d];
    double sub[2 * 12], *vals = malloc((size_t)in[0] * sizeof *vals);
    for (int d = 1; roi && d < rank; d++) {
        sub[d - 1] = roi[d];
        sub[rank - 1 + d - 1] = roi[rank + d];
    }
    for (int64_t i = 0; i < in[0]; i++)
        vals[i] = ref_interp(x + (size_t)i * inner, in + 1, rank - 1, sc + 1, osz + 1, pos + 1,
                             roi ? sub : NULL, c);
    double v = ref_interp1(vals, in[0], sc[0], osz[0], pos[0], pair, c);
    free(vals);
    return v;
}

/* ---- running the kernel ------------------------------------------------------------- */

typedef struct rcase {
    int64_t opset; /* 0: 19 */
    ref_cfg cfg;
    int32_t rank;
    int64_t in[8];
    const float *scales;  /* n_list values, or NULL */
    const int64_t *sizes; /* n_list values, or NULL */
    size_t n_list;
    const int64_t *axes; /* n_list values, or NULL: every axis */
    const float *roi;    /* 2 * n_list values, or NULL */
    const char *policy;  /* keep_aspect_ratio_policy, or NULL */
    size_t threads;
} rcase;

/* Adds the attributes of cfg (and policy, axes) to n. */
static void set_attrs(kh_node *n, const rcase *t, int64_t opset)
{
    const ref_cfg *c = &t->cfg;
    kh_attr_string(n, "mode", c->mode);
    if (c->coord)
        kh_attr_string(n, "coordinate_transformation_mode", c->coord);
    if (c->nearest)
        kh_attr_string(n, "nearest_mode", c->nearest);
    if (c->a != 0)
        kh_attr_float(n, "cubic_coeff_a", (float)c->a);
    if (c->exclude)
        kh_attr_int(n, "exclude_outside", 1);
    if (c->extrap != 0)
        kh_attr_float(n, "extrapolation_value", (float)c->extrap);
    if (opset >= 18 && c->antialias)
        kh_attr_int(n, "antialias", 1);
    if (t->policy)
        kh_attr_string(n, "keep_aspect_ratio_policy", t->policy);
    if (t->axes)
        kh_attr_ints(n, "axes", t->axes, t->n_list);
}

/* Runs case t on x (the input's floats) into *y; returns the status. */
static qkv_status run_resize(const rcase *t, qkv_tensor x, qkv_tensor *y, qkv_error *err)
{
    int64_t opset = t->opset ? t->opset : 19;
    int64_t n_list = (int64_t)t->n_list, n_roi = 2 * n_list;
    qkv_tensor in[4] = {
        x,
        t->roi ? kh_f32(1, &n_roi, (float *)t->roi) : kh_f32(0, NULL, NULL),
        t->scales ? kh_f32(1, &n_list, (float *)t->scales) : kh_f32(0, NULL, NULL),
        t->sizes ? kh_i64(1, &n_list, (int64_t *)t->sizes) : kh_i64(0, NULL, NULL),
    };
    size_t n_in = t->sizes ? 4 : 3;
    kh_node *n = kh_node_create("Resize", opset, n_in, 1);
    if (!t->roi)
        kh_omit_input(n, 1);
    if (!t->scales)
        kh_omit_input(n, 2);
    set_attrs(n, t, opset);
    kh_set_threads(n, t->threads ? t->threads : 1);
    qkv_status st = kh_run(n, in, y, err);
    kh_node_destroy(n);
    return st;
}

/* The expected output dims and per-axis scales and roi of case t. */
static void expected_geometry(const rcase *t, int64_t *osz, double *sc, double *roi)
{
    int32_t r = t->rank;
    int64_t axes[8];
    for (int32_t d = 0; d < r; d++) {
        osz[d] = t->in[d];
        sc[d] = 1;
        roi[d] = 0;
        roi[r + d] = 1;
    }
    for (size_t i = 0; i < t->n_list; i++) {
        axes[i] = t->axes ? (t->axes[i] + r) % r : (int64_t)i;
        if (t->roi) {
            roi[axes[i]] = t->roi[i];
            roi[r + axes[i]] = t->roi[t->n_list + i];
        }
        if (t->scales) {
            sc[axes[i]] = t->scales[i];
            osz[axes[i]] = (int64_t)floorf((float)t->in[axes[i]] * t->scales[i]);
        } else {
            sc[axes[i]] = (double)t->sizes[i] / (double)t->in[axes[i]];
            osz[axes[i]] = t->sizes[i];
        }
    }
    if (t->sizes && t->policy && !is(t->policy, "stretch")) {
        double s = sc[axes[0]];
        for (size_t i = 1; i < t->n_list; i++)
            s = is(t->policy, "not_larger") ? fmin(s, sc[axes[i]]) : fmax(s, sc[axes[i]]);
        for (size_t i = 0; i < t->n_list; i++) {
            sc[axes[i]] = s;
            osz[axes[i]] = (int64_t)(s * (double)t->in[axes[i]] + 0.5);
        }
    }
}

/* Runs case t on random floats and compares every element with ref_interp
 * (tolerance: float32 arithmetic against the double reference). */
static void check_case(const rcase *t, uint32_t seed)
{
    size_t numel = 1;
    for (int32_t d = 0; d < t->rank; d++)
        numel *= (size_t)t->in[d];
    float *xs = malloc(numel * sizeof *xs);
    double *xd = malloc(numel * sizeof *xd);
    kh_fill_random(xs, numel, seed);
    for (size_t i = 0; i < numel; i++)
        xd[i] = xs[i];
    qkv_tensor y;
    qkv_error err;
    cr_assert_eq(run_resize(t, kh_f32(t->rank, t->in, xs), &y, &err), QKV_OK, "%s %s: %s",
                 t->cfg.mode, t->cfg.coord, err.message);
    int64_t osz[8], pos[8] = {0};
    double sc[8], roi[16];
    expected_geometry(t, osz, sc, roi);
    size_t out_n = 1;
    cr_assert_eq(y.rank, t->rank);
    for (int32_t d = 0; d < t->rank; d++) {
        cr_assert_eq(y.dims[d], osz[d], "%s %s: dim %d is %lld, expected %lld", t->cfg.mode,
                     t->cfg.coord, d, (long long)y.dims[d], (long long)osz[d]);
        out_n *= (size_t)osz[d];
    }
    for (size_t i = 0; i < out_n; i++) {
        double want = ref_interp(xd, t->in, t->rank, sc, osz, pos, t->roi ? roi : NULL, &t->cfg);
        float got = ((float *)y.data)[i];
        cr_assert(fabs(got - want) <= 2e-6 + 2e-6 * fabs(want),
                  "%s %s %s aa=%d: element %zu is %.9g, expected %.9g", t->cfg.mode, t->cfg.coord,
                  t->cfg.nearest ? t->cfg.nearest : "", t->cfg.antialias, i, (double)got, want);
        for (int32_t d = t->rank - 1; d >= 0; d--) {
            if (++pos[d] < osz[d])
                break;
            pos[d] = 0;
        }
    }
    kh_free_outputs(&y, 1);
    free(xs);
    free(xd);
}

static const char *const coords[] = {"half_pixel",         "half_pixel_symmetric",
                                     "pytorch_half_pixel", "align_corners",
                                     "asymmetric",         "tf_half_pixel_for_nn"};
#define N_COORDS (sizeof coords / sizeof coords[0])

/* ---- every mode and transform against the reference ------------------------------------ */

Test(resize, nearest_every_rounding_and_transform_up_and_down)
{
    static const char *const rounding[] = {"round_prefer_floor", "round_prefer_ceil", "floor",
                                           "ceil"};
    static const float scales[2][4] = {{1, 1, 2.5f, 1.75f}, {1, 1, 0.6f, 0.45f}};
    for (size_t r = 0; r < 4; r++)
        for (size_t c = 0; c < N_COORDS; c++)
            for (size_t s = 0; s < 2; s++) {
                rcase t = {.cfg = {"nearest", coords[c], rounding[r]},
                           .rank = 4,
                           .in = {2, 1, 5, 7},
                           .scales = scales[s],
                           .n_list = 4};
                check_case(&t, (uint32_t)(r * 100 + c * 10 + s));
            }
}

Test(resize, linear_every_transform_with_scales_and_sizes)
{
    static const float scales[2][4] = {{1, 1, 2.5f, 1.3f}, {1, 1, 0.6f, 0.45f}};
    static const int64_t sizes[2][4] = {{1, 2, 9, 4}, {1, 2, 1, 11}};
    for (size_t c = 0; c < N_COORDS; c++)
        for (size_t s = 0; s < 2; s++) {
            rcase t = {.cfg = {"linear", coords[c]},
                       .rank = 4,
                       .in = {1, 2, 5, 7},
                       .scales = scales[s],
                       .n_list = 4};
            check_case(&t, (uint32_t)(c * 10 + s));
            rcase u = {.cfg = {"linear", coords[c]},
                       .rank = 4,
                       .in = {1, 2, 5, 7},
                       .sizes = sizes[s],
                       .n_list = 4};
            check_case(&u, (uint32_t)(c * 10 + s + 5));
        }
}

Test(resize, cubic_every_transform_coefficient_and_exclude_outside)
{
    static const float scales[2][4] = {{1, 1, 2.5f, 1.3f}, {1, 1, 0.6f, 0.8f}};
    for (size_t c = 0; c < N_COORDS; c++)
        for (size_t s = 0; s < 2; s++)
            for (int ex = 0; ex < 2; ex++) {
                rcase t = {.cfg = {"cubic", coords[c], NULL, false, ex, ex ? -0.5 : 0},
                           .rank = 4,
                           .in = {1, 2, 6, 7},
                           .scales = scales[s],
                           .n_list = 4};
                check_case(&t, (uint32_t)(c * 10 + s + ex));
            }
}

Test(resize, antialias_linear_and_cubic_down_and_up)
{
    static const float scales[3][4] = {
        {1, 1, 0.6f, 0.45f}, {1, 1, 0.3f, 0.26f}, {1, 1, 1.5f, 0.7f}};
    static const char *const modes[] = {"linear", "cubic"};
    for (size_t m = 0; m < 2; m++)
        for (size_t s = 0; s < 3; s++)
            for (int ex = 0; ex < 2; ex++) {
                rcase t = {.cfg = {modes[m], "half_pixel", NULL, true, ex},
                           .rank = 4,
                           .in = {1, 2, 11, 13},
                           .scales = scales[s],
                           .n_list = 4};
                check_case(&t, (uint32_t)(m * 10 + s + ex));
            }
    /* sizes, and the align_corners transform under antialiasing */
    rcase t = {.cfg = {"cubic", "align_corners", NULL, true},
               .rank = 2,
               .in = {9, 17},
               .sizes = (int64_t[]){4, 5},
               .n_list = 2};
    check_case(&t, 7);
}

Test(resize, tf_crop_and_resize_inside_and_beyond_the_input)
{
    static const char *const modes[] = {"nearest", "linear", "cubic"};
    static const float rois[2][8] = {{0, 0, 0.2f, 0.3f, 1, 1, 0.7f, 0.9f},
                                     {0, 0, -0.3f, 0.4f, 1, 1, 1.2f, 1.7f}};
    for (size_t m = 0; m < 3; m++)
        for (size_t r = 0; r < 2; r++) {
            rcase t = {.cfg = {modes[m], "tf_crop_and_resize", NULL, false, false, 0, 2.5},
                       .rank = 4,
                       .in = {1, 2, 6, 5},
                       .sizes = (int64_t[]){1, 2, 4, 7},
                       .n_list = 4,
                       .roi = rois[r]};
            check_case(&t, (uint32_t)(m * 10 + r));
        }
}

Test(resize, axes_pick_the_resized_axes_negative_too)
{
    rcase t = {.cfg = {"linear", "half_pixel"},
               .rank = 3,
               .in = {3, 5, 4},
               .scales = (float[]){1.6f},
               .axes = (int64_t[]){-2},
               .n_list = 1};
    check_case(&t, 1);
    rcase u = {.cfg = {"cubic", "tf_crop_and_resize"},
               .rank = 4,
               .in = {2, 3, 5, 4},
               .sizes = (int64_t[]){6, 3},
               .axes = (int64_t[]){3, 1},
               .n_list = 2,
               .roi = (float[]){0.1f, 0.2f, 0.9f, 0.7f}};
    check_case(&u, 2);
}

Test(resize, keep_aspect_ratio_policies)
{
    static const char *const policies[] = {"stretch", "not_larger", "not_smaller"};
    for (size_t p = 0; p < 3; p++) {
        rcase t = {.cfg = {"linear", "half_pixel_symmetric"},
                   .rank = 4,
                   .in = {1, 2, 5, 8},
                   .sizes = (int64_t[]){7, 9},
                   .axes = (int64_t[]){2, 3},
                   .n_list = 2,
                   .policy = policies[p]};
        check_case(&t, (uint32_t)p);
    }
}

Test(resize, n_linear_at_ranks_1_3_and_5)
{
    rcase t1 = {.cfg = {"linear", "align_corners"},
                .rank = 1,
                .in = {6},
                .scales = (float[]){2.2f},
                .n_list = 1};
    check_case(&t1, 1);
    rcase t3 = {.cfg = {"linear", "half_pixel"},
                .rank = 3,
                .in = {3, 4, 5},
                .scales = (float[]){1.5f, 0.5f, 2},
                .n_list = 3};
    check_case(&t3, 2);
    rcase t5 = {.cfg = {"cubic", "asymmetric"},
                .rank = 5,
                .in = {2, 3, 2, 3, 4},
                .sizes = (int64_t[]){3, 2, 4, 4, 3},
                .n_list = 5};
    check_case(&t5, 3);
}

Test(resize, opset_11_and_13_forms)
{
    /* opset 11: empty scales with sizes; opset 13 roi and scales omitted */
    float xs[6] = {1, 2, 3, 4, 5, 6}, none[1] = {0};
    int64_t sizes[2] = {2, 5}, zero = 0;
    qkv_tensor in[4] = {kh_f32(2, (int64_t[]){2, 3}, xs), kh_f32(1, &zero, none),
                        kh_f32(1, &zero, none), kh_i64(1, (int64_t[]){2}, sizes)},
               y;
    qkv_error err;
    kh_node *n = kh_node_create("Resize", 11, 4, 1);
    kh_attr_string(n, "mode", "linear");
    kh_attr_string(n, "coordinate_transformation_mode", "align_corners");
    cr_assert_eq(kh_run(n, in, &y, &err), QKV_OK, "%s", err.message);
    cr_assert_eq(y.dims[0], 2);
    cr_assert_eq(y.dims[1], 5);
    const float want[10] = {1, 1.5f, 2, 2.5f, 3, 4, 4.5f, 5, 5.5f, 6};
    for (int i = 0; i < 10; i++)
        cr_assert_float_eq(((float *)y.data)[i], want[i], 1e-6f, "[%d]", i);
    kh_free_outputs(&y, 1);
    kh_node_destroy(n);
}

Test(resize, scales_that_floor_to_zero_give_an_empty_output)
{
    float xs[10] = {0};
    qkv_tensor in[3] = {kh_f32(2, (int64_t[]){2, 5}, xs), kh_f32(0, NULL, NULL),
                        kh_f32(1, (int64_t[]){2}, (float[]){1, 0.1f})},
               y;
    qkv_error err;
    static const char *const modes[3] = {"nearest", "linear", "cubic"};
    for (int m = 0; m < 3; m++) {
        kh_node *n = kh_node_create("Resize", 13, 3, 1);
        kh_omit_input(n, 1);
        kh_attr_string(n, "mode", modes[m]);
        cr_assert_eq(kh_run(n, in, &y, &err), QKV_OK, "%s: %s", modes[m], err.message);
        cr_assert(y.rank == 2 && y.dims[0] == 2 && y.dims[1] == 0, "%s", modes[m]);
        kh_free_outputs(&y, 1);
        kh_node_destroy(n);
    }
}

Test(resize, big_output_on_four_threads_equals_one_thread)
{
    enum { N = 2, C = 3, H = 40, W = 50 }; /* output > 64 KiB: parallel rows and lines */
    float *xs = malloc(N * C * H * W * sizeof *xs);
    kh_fill_random(xs, N * C * H * W, 9);
    static const char *const modes[] = {"nearest", "linear", "cubic"};
    for (size_t m = 0; m < 3; m++) {
        qkv_tensor y1, y4;
        qkv_error err;
        rcase t = {.cfg = {modes[m], "half_pixel"},
                   .rank = 4,
                   .in = {N, C, H, W},
                   .scales = (float[]){1, 1, 2.1f, 1.7f},
                   .n_list = 4,
                   .threads = 1};
        cr_assert_eq(run_resize(&t, kh_f32(4, t.in, xs), &y1, &err), QKV_OK, "%s", err.message);
        t.threads = 4;
        cr_assert_eq(run_resize(&t, kh_f32(4, t.in, xs), &y4, &err), QKV_OK, "%s", err.message);
        cr_assert_eq(y1.data_bytes, y4.data_bytes);
        cr_assert(memcmp(y1.data, y4.data, y1.data_bytes) == 0, "%s: threads differ", modes[m]);
        kh_free_outputs(&y1, 1);
        kh_free_outputs(&y4, 1);
    }
    free(xs);
    /* and the reference on one (smaller) parallel case */
    rcase t = {.cfg = {"linear", "half_pixel"},
               .rank = 4,
               .in = {1, 2, 30, 40},
               .scales = (float[]){1, 1, 3, 3},
               .n_list = 4,
               .threads = 4};
    check_case(&t, 11);
}

/* ---- values from the numpy port of the ONNX reference (and ONNX Runtime) ---------------- */

static float d4[16] = {1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16};

/* (i * 7) % 11 + i / 8 for i < 35, as (1, 1, 5, 7) */
static void fill_e(float *e)
{
    for (int i = 0; i < 35; i++)
        e[i] = (float)((i * 7) % 11) + (float)i * 0.125f;
}

static void check_pinned(rcase *t, float *x, const int64_t *odims, const float *want)
{
    qkv_tensor y;
    qkv_error err;
    cr_assert_eq(run_resize(t, kh_f32(t->rank, t->in, x), &y, &err), QKV_OK, "%s", err.message);
    size_t n = 1;
    for (int32_t d = 0; d < t->rank; d++) {
        cr_assert_eq(y.dims[d], odims[d], "dim %d", d);
        n *= (size_t)odims[d];
    }
    for (size_t i = 0; i < n; i++) /* the pins have 8 significant digits */
        cr_assert_float_eq(((float *)y.data)[i], want[i], 2e-6f * fmaxf(1, fabsf(want[i])),
                           "[%zu] %.9g vs %.9g", i, (double)((float *)y.data)[i], (double)want[i]);
    kh_free_outputs(&y, 1);
}

Test(resize, pinned_antialias)
{
    float e[35];
    fill_e(e);
    rcase t = {.cfg = {"linear", NULL, NULL, true},
               .rank = 4,
               .in = {1, 1, 4, 4},
               .scales = (float[]){1, 1, 0.6f, 0.6f},
               .n_list = 4};
    check_pinned(&t, d4, (int64_t[]){1, 1, 2, 2},
                 (float[]){2.8749999f, 4.4999999f, 9.3749997f, 11.0f});
    rcase u = {.cfg = {"cubic", NULL, NULL, true},
               .rank = 4,
               .in = {1, 1, 4, 4},
               .sizes = (int64_t[]){1, 1, 3, 2},
               .n_list = 4};
    check_pinned(&u, d4, (int64_t[]){1, 1, 3, 2},
                 (float[]){2.1102417f, 4.129773f, 7.4902344f, 9.5097656f, 12.870227f, 14.889758f});
    rcase v = {.cfg = {"cubic", NULL, NULL, true, true, -0.5},
               .rank = 4,
               .in = {1, 1, 5, 7},
               .scales = (float[]){1, 1, 0.5f, 0.4f},
               .n_list = 4};
    check_pinned(&v, e, (int64_t[]){1, 1, 2, 2},
                 (float[]){4.8728634f, 6.0699514f, 7.139681f, 8.0536963f});
}

Test(resize, pinned_keep_aspect_ratio_and_half_pixel_symmetric)
{
    float e[35];
    fill_e(e);
    rcase t = {.cfg = {"nearest"},
               .rank = 4,
               .in = {1, 1, 4, 4},
               .sizes = (int64_t[]){7, 8},
               .axes = (int64_t[]){2, 3},
               .n_list = 2,
               .policy = "not_larger"};
    static const float row[7] = {1, 1, 2, 2, 3, 4, 4};
    static const int rows[7] = {0, 0, 1, 1, 2, 3, 3};
    float want[49];
    for (int i = 0; i < 49; i++)
        want[i] = row[i % 7] + 4.0f * (float)rows[i / 7];
    check_pinned(&t, d4, (int64_t[]){1, 1, 7, 7}, want);
    rcase u = {.cfg = {"linear"},
               .rank = 4,
               .in = {1, 1, 5, 7},
               .sizes = (int64_t[]){3, 3},
               .axes = (int64_t[]){-2, -1},
               .n_list = 2,
               .policy = "not_smaller"};
    check_pinned(&u, e, (int64_t[]){1, 1, 3, 4},
                 (float[]){3.1111111f, 5.2083333f, 6.0833333f, 5.7361111f, 10.458333f, 4.0f,
                           8.5416667f, 5.75f, 9.25f, 6.4583333f, 9.7777778f, 6.9861111f});
    rcase v = {.cfg = {"linear", "half_pixel_symmetric"},
               .rank = 4,
               .in = {1, 1, 5, 7},
               .scales = (float[]){1, 1, 0.7f, 1.4f},
               .n_list = 4};
    check_pinned(&v, e, (int64_t[]){1, 1, 3, 9},
                 (float[]){3.4770407f, 4.0765307f, 5.5739795f, 6.8469387f, 7.4464287f, 4.6785715f,
                           4.6045919f, 6.1020407f, 6.7015307f, 11.196429f, 8.4285716f, 5.6607144f,
                           6.0357142f, 11.125f,    8.3571428f, 5.5892856f, 4.3928574f, 9.4821432f,
                           8.589286f,  5.8214289f, 6.6454081f, 7.9183673f, 8.5178573f, 10.239796f,
                           9.2678569f, 7.1734693f, 7.7729593f});
}

Test(resize, pinned_crop_with_extrapolation_and_onnx_doc_cubic)
{
    rcase t = {.cfg = {"nearest", "tf_crop_and_resize", NULL, false, false, 0, 10},
               .rank = 4,
               .in = {1, 1, 4, 4},
               .sizes = (int64_t[]){1, 1, 3, 3},
               .n_list = 4,
               .roi = (float[]){0, 0, 0.4f, 0.6f, 1, 1, 1.2f, 1.7f}};
    check_pinned(&t, d4, (int64_t[]){1, 1, 3, 3}, (float[]){7, 10, 10, 11, 10, 10, 10, 10, 10});
    /* the first row of ONNX's test_resize_upsample_scales_cubic_A_n0p5_exclude_outside */
    rcase u = {.cfg = {"cubic", NULL, NULL, false, true, -0.5},
               .rank = 4,
               .in = {1, 1, 4, 4},
               .scales = (float[]){1, 1, 2, 2},
               .n_list = 4,
               .opset = 13};
    qkv_tensor y;
    qkv_error err;
    cr_assert_eq(run_resize(&u, kh_f32(4, u.in, d4), &y, &err), QKV_OK, "%s", err.message);
    static const float row0[8] = {0.55882353f, 0.81494204f, 1.35698249f, 1.89705882f,
                                  2.39705882f, 2.93713516f, 3.47917561f, 3.73529412f};
    for (int i = 0; i < 8; i++)
        cr_assert_float_eq(((float *)y.data)[i], row0[i], 2e-6f, "[%d]", i);
    kh_free_outputs(&y, 1);
}

/* ---- other types and forms ------------------------------------------------------------- */

Test(resize, uint8_nearest_copies_and_int8_linear_rounds_and_saturates)
{
    uint8_t xu[4] = {10, 200, 30, 255};
    qkv_tensor in[3] = {kh_tensor(QKV_DTYPE_UINT8, 2, (int64_t[]){2, 2}, xu), kh_f32(0, NULL, NULL),
                        kh_f32(1, (int64_t[]){2}, (float[]){1.5f, 2})},
               y;
    qkv_error err;
    kh_node *n = kh_node_create("Resize", 13, 3, 1);
    kh_omit_input(n, 1);
    kh_attr_string(n, "mode", "nearest");
    cr_assert_eq(kh_run(n, in, &y, &err), QKV_OK, "%s", err.message);
    cr_assert_eq(y.dtype, QKV_DTYPE_UINT8);
    cr_assert_eq(y.dims[0], 3);
    cr_assert_eq(y.dims[1], 4);
    /* half_pixel rows at 1.5x: x_original -1/6, 1/2, 7/6 -> 0, 0 (a tie rounds
     * down), 1; columns at 2x: 0 0 1 1 */
    static const uint8_t want[12] = {10, 10, 200, 200, 10, 10, 200, 200, 30, 30, 255, 255};
    cr_assert(memcmp(y.data, want, 12) == 0);
    kh_free_outputs(&y, 1);
    kh_node_destroy(n);

    /* int8 cubic overshoots past 127 and below -128: saturated; linear rounds */
    int8_t xi[4] = {-128, 127, -128, 127};
    qkv_tensor ini[3] = {kh_tensor(QKV_DTYPE_INT8, 1, (int64_t[]){4}, xi), kh_f32(0, NULL, NULL),
                         kh_f32(1, (int64_t[]){1}, (float[]){2})};
    static const char *const modes[2] = {"linear", "cubic"};
    for (int m = 0; m < 2; m++) {
        n = kh_node_create("Resize", 13, 3, 1);
        kh_omit_input(n, 1);
        kh_attr_string(n, "mode", modes[m]);
        cr_assert_eq(kh_run(n, ini, &y, &err), QKV_OK, "%s", err.message);
        double xd[4] = {-128, 127, -128, 127}, sc = 2;
        int64_t len = 4, osz = 8;
        ref_cfg c = {modes[m], "half_pixel"};
        for (int64_t o = 0; o < 8; o++) {
            double v = round(ref_interp(xd, &len, 1, &sc, &osz, &o, NULL, &c));
            v = v < -128 ? -128 : v > 127 ? 127 : v;
            cr_assert_eq(((int8_t *)y.data)[o], (int8_t)v, "%s [%lld]: %d vs %g", modes[m],
                         (long long)o, ((int8_t *)y.data)[o], v);
        }
        kh_free_outputs(&y, 1);
        kh_node_destroy(n);
    }
}

Test(resize, double_and_float16_linear)
{
    double xd[6] = {0.5, -1.25, 3, 7, 0.125, 2};
    qkv_tensor in[3] = {kh_tensor(QKV_DTYPE_DOUBLE, 2, (int64_t[]){2, 3}, xd),
                        kh_f32(0, NULL, NULL), kh_f32(1, (int64_t[]){2}, (float[]){2, 1.5f})},
               y;
    qkv_error err;
    kh_node *n = kh_node_create("Resize", 13, 3, 1);
    kh_omit_input(n, 1);
    kh_attr_string(n, "mode", "linear");
    cr_assert_eq(kh_run(n, in, &y, &err), QKV_OK, "%s", err.message);
    int64_t dims[2] = {2, 3}, osz[2] = {4, 4}, pos[2];
    double sc[2] = {2, 1.5};
    ref_cfg c = {"linear", "half_pixel"};
    for (int i = 0; i < 16; i++) {
        pos[0] = i / 4;
        pos[1] = i % 4;
        double want = ref_interp(xd, dims, 2, sc, osz, pos, NULL, &c);
        cr_assert(fabs(((double *)y.data)[i] - want) < 1e-12, "[%d]", i);
    }
    kh_free_outputs(&y, 1);

    /* float16: 1, 2, 3 at 2x, asymmetric: x / 2 */
    uint16_t xh[3] = {0x3c00, 0x4000, 0x4200};
    in[0] = kh_tensor(QKV_DTYPE_FLOAT16, 1, (int64_t[]){3}, xh);
    in[2] = kh_f32(1, (int64_t[]){1}, (float[]){2});
    kh_node_destroy(n);
    n = kh_node_create("Resize", 13, 3, 1);
    kh_omit_input(n, 1);
    kh_attr_string(n, "mode", "linear");
    kh_attr_string(n, "coordinate_transformation_mode", "asymmetric");
    cr_assert_eq(kh_run(n, in, &y, &err), QKV_OK, "%s", err.message);
    cr_assert_eq(y.dims[0], 6);
    /* 1, 1.5, 2, 2.5, 3, 3 */
    static const uint16_t want_h[6] = {0x3c00, 0x3e00, 0x4000, 0x4100, 0x4200, 0x4200};
    for (int i = 0; i < 6; i++)
        cr_assert_eq(((uint16_t *)y.data)[i], want_h[i], "[%d] %#x", i, ((uint16_t *)y.data)[i]);
    kh_free_outputs(&y, 1);
    kh_node_destroy(n);
}

Test(resize, upsample_7_9_and_resize_10)
{
    float xs[4] = {1, 2, 3, 4};
    qkv_tensor x = kh_f32(2, (int64_t[]){2, 2}, xs), y;
    qkv_error err;
    /* Upsample-7: scales attribute, linear: asymmetric */
    kh_node *n = kh_node_create("Upsample", 7, 1, 1);
    kh_attr_string(n, "mode", "bilinear");
    kh_attr_floats(n, "scales", (float[]){1, 2}, 2);
    cr_assert_eq(kh_run(n, &x, &y, &err), QKV_OK, "%s", err.message);
    static const float want7[8] = {1, 1.5f, 2, 2, 3, 3.5f, 4, 4};
    for (int i = 0; i < 8; i++)
        cr_assert_float_eq(((float *)y.data)[i], want7[i], 1e-6f, "[%d]", i);
    kh_free_outputs(&y, 1);
    kh_node_destroy(n);
    /* Upsample-9: scales input, nearest repeats */
    qkv_tensor in9[2] = {x, kh_f32(1, (int64_t[]){2}, (float[]){2, 3})};
    n = kh_node_create("Upsample", 9, 2, 1);
    cr_assert_eq(kh_run(n, in9, &y, &err), QKV_OK, "%s", err.message);
    cr_assert_eq(y.dims[0], 4);
    cr_assert_eq(y.dims[1], 6);
    for (int i = 0; i < 24; i++)
        cr_assert_float_eq(((float *)y.data)[i], xs[(i / 6 / 2) * 2 + (i % 6) / 3], 0, "[%d]", i);
    kh_free_outputs(&y, 1);
    kh_node_destroy(n);
    /* Resize-10 nearest shrinking rounds up ("simple"): 1..8 at 0.5 -> x[ceil(2 o)] */
    float x8[8] = {1, 2, 3, 4, 5, 6, 7, 8};
    qkv_tensor in10[2] = {kh_f32(1, (int64_t[]){8}, x8),
                          kh_f32(1, (int64_t[]){1}, (float[]){0.3f})};
    n = kh_node_create("Resize", 10, 2, 1);
    cr_assert_eq(kh_run(n, in10, &y, &err), QKV_OK, "%s", err.message);
    cr_assert_eq(y.dims[0], 2); /* x_original 0, 3.33 -> ceil: 0, 4 */
    cr_assert_float_eq(((float *)y.data)[0], 1, 0);
    cr_assert_float_eq(((float *)y.data)[1], 5, 0);
    kh_free_outputs(&y, 1);
    kh_node_destroy(n);
}

/* ---- inference with values not known ----------------------------------------------------- */

Test(resize, infer_leaves_dims_decided_by_unknown_values_unknown)
{
    qkv_tensor in[4] = {kh_f32(4, (int64_t[]){1, 3, 8, 8}, NULL), kh_f32(0, NULL, NULL),
                        kh_f32(0, NULL, NULL), kh_i64(1, (int64_t[]){2}, NULL)},
               y;
    qkv_error err;
    kh_node *n = kh_node_create("Resize", 19, 4, 1);
    kh_omit_input(n, 1);
    kh_omit_input(n, 2);
    kh_attr_string(n, "mode", "linear");
    kh_attr_ints(n, "axes", (int64_t[]){2, 3}, 2);
    cr_assert_eq(kh_infer(n, in, &y, &err), QKV_OK, "%s", err.message);
    cr_assert_eq(y.rank, 4);
    cr_assert_eq(y.dims[0], 1);
    cr_assert_eq(y.dims[1], 3);
    cr_assert_eq(y.dims[2], -1);
    cr_assert_eq(y.dims[3], -1);
    kh_node_destroy(n);

    /* sizes known, input dims not: stretch gives the sizes */
    int64_t sizes[4] = {1, 3, 16, 12};
    in[0] = kh_f32(4, (int64_t[]){-1, 3, -1, -1}, NULL);
    in[3] = kh_i64(1, (int64_t[]){4}, sizes);
    n = kh_node_create("Resize", 13, 4, 1);
    kh_omit_input(n, 1);
    kh_omit_input(n, 2);
    cr_assert_eq(kh_infer(n, in, &y, &err), QKV_OK, "%s", err.message);
    for (int d = 0; d < 4; d++)
        cr_assert_eq(y.dims[d], sizes[d]);
    kh_node_destroy(n);
}

Test(resize, runs_when_scales_are_known_only_at_run_time)
{
    float xs[4] = {1, 2, 3, 4};
    qkv_tensor in[3] = {kh_f32(2, (int64_t[]){2, 2}, xs), kh_f32(0, NULL, NULL),
                        kh_f32(1, (int64_t[]){2}, (float[]){1, 2})},
               y;
    qkv_error err;
    kh_node *n = kh_node_create("Resize", 13, 3, 1);
    kh_omit_input(n, 1);
    kh_hide_input_values(n);
    cr_assert_eq(kh_run(n, in, &y, &err), QKV_OK, "%s", err.message);
    cr_assert_eq(y.dims[1], 4);
    static const float want[8] = {1, 1, 2, 2, 3, 3, 4, 4};
    for (int i = 0; i < 8; i++)
        cr_assert_float_eq(((float *)y.data)[i], want[i], 0);
    kh_free_outputs(&y, 1);
    kh_node_destroy(n);
}

/* ---- errors ----------------------------------------------------------------------------- */

/* Runs Resize-opset on a (1, 1, 2, 2) float input with the given lists and
 * attributes; expects status and a message containing `needle`. */
static void expect_error(int64_t opset, const float *scales, size_t ns, const int64_t *sizes,
                         size_t nz, const char *mode, const int64_t *axes, size_t n_axes,
                         const char *policy, qkv_status status, const char *needle)
{
    float xs[4] = {1, 2, 3, 4};
    int64_t ls = (int64_t)ns, lz = (int64_t)nz;
    qkv_tensor in[4] = {kh_f32(4, (int64_t[]){1, 1, 2, 2}, xs), kh_f32(0, NULL, NULL),
                        kh_f32(1, &ls, (float *)scales), kh_i64(1, &lz, (int64_t *)sizes)},
               y;
    qkv_error err;
    kh_node *n = kh_node_create("Resize", opset, 4, 1);
    kh_omit_input(n, 1);
    if (!scales)
        kh_omit_input(n, 2);
    if (!sizes)
        kh_omit_input(n, 3);
    if (mode)
        kh_attr_string(n, "mode", mode);
    if (axes)
        kh_attr_ints(n, "axes", axes, n_axes);
    if (policy)
        kh_attr_string(n, "keep_aspect_ratio_policy", policy);
    qkv_status st = kh_run(n, in, &y, &err);
    cr_assert_eq(st, status, "expected status %d, got %d: %s", status, st, err.message);
    cr_assert(strstr(err.message, needle), "message '%s' lacks '%s'", err.message, needle);
    cr_assert(strstr(err.message, "Resize"), "message '%s' does not name the op", err.message);
    kh_node_destroy(n);
}

Test(resize, errors_name_what_is_wrong)
{
    const float s4[4] = {1, 1, 2, 2}, s3[3] = {1, 2, 2}, zero[4] = {1, 1, 0, 2},
                neg[4] = {1, 1, -1, 2}, nan4[4] = {1, 1, NAN, 2};
    const int64_t z4[4] = {1, 1, 4, 4}, z3[3] = {1, 4, 4}, zneg[4] = {1, 1, -3, 4};
    expect_error(13, s4, 4, z4, 4, NULL, NULL, 0, NULL, QKV_ERR_INVALID_ARGUMENT,
                 "both 'scales' and 'sizes'");
    expect_error(13, NULL, 0, NULL, 0, NULL, NULL, 0, NULL, QKV_ERR_INVALID_ARGUMENT,
                 "neither 'scales' nor 'sizes'");
    expect_error(13, s3, 3, NULL, 0, NULL, NULL, 0, NULL, QKV_ERR_SHAPE,
                 "'scales' has 3 values, expected 4");
    expect_error(13, NULL, 0, z3, 3, NULL, NULL, 0, NULL, QKV_ERR_SHAPE,
                 "'sizes' has 3 values, expected 4");
    expect_error(19, NULL, 0, z3, 3, NULL, (int64_t[]){2, 3}, 2, NULL, QKV_ERR_SHAPE,
                 "one per axis in 'axes'");
    expect_error(13, zero, 4, NULL, 0, NULL, NULL, 0, NULL, QKV_ERR_INVALID_ARGUMENT,
                 "input 'scales'[2] is 0");
    expect_error(13, neg, 4, NULL, 0, NULL, NULL, 0, NULL, QKV_ERR_INVALID_ARGUMENT,
                 "input 'scales'[2] is -1");
    expect_error(13, nan4, 4, NULL, 0, NULL, NULL, 0, NULL, QKV_ERR_INVALID_ARGUMENT,
                 "input 'scales'[2] is nan");
    expect_error(13, NULL, 0, zneg, 4, NULL, NULL, 0, NULL, QKV_ERR_INVALID_ARGUMENT,
                 "input 'sizes'[2] is -3");
    expect_error(13, s4, 4, NULL, 0, "bicubic", NULL, 0, NULL, QKV_ERR_INVALID_MODEL,
                 "attribute 'mode' is 'bicubic'");
    expect_error(19, NULL, 0, z4 + 2, 2, NULL, (int64_t[]){2, 4}, 2, NULL, QKV_ERR_INVALID_ARGUMENT,
                 "attribute 'axes'[1] is 4");
    expect_error(19, NULL, 0, z4 + 2, 2, NULL, (int64_t[]){2, -2}, 2, NULL,
                 QKV_ERR_INVALID_ARGUMENT, "repeats axis 2");
    expect_error(19, NULL, 0, z4, 4, NULL, NULL, 0, "smaller", QKV_ERR_INVALID_MODEL,
                 "'keep_aspect_ratio_policy' is 'smaller'");
}

Test(resize, errors_for_types_forms_and_shapes)
{
    qkv_error err;
    qkv_tensor y;
    /* bool cannot be interpolated (nearest copies it) */
    uint8_t xb[2] = {1, 0};
    qkv_tensor in[3] = {kh_tensor(QKV_DTYPE_BOOL, 1, (int64_t[]){2}, xb), kh_f32(0, NULL, NULL),
                        kh_f32(1, (int64_t[]){1}, (float[]){2})};
    kh_node *n = kh_node_create("Resize", 13, 3, 1);
    kh_omit_input(n, 1);
    kh_attr_string(n, "mode", "linear");
    cr_assert_eq(kh_run(n, in, &y, &err), QKV_ERR_TYPE);
    cr_assert(strstr(err.message, "bool") && strstr(err.message, "linear"), "%s", err.message);
    kh_node_destroy(n);
    /* Upsample scales below 1 */
    float xs[2] = {1, 2};
    qkv_tensor in9[2] = {kh_f32(1, (int64_t[]){2}, xs), kh_f32(1, (int64_t[]){1}, (float[]){0.5f})};
    n = kh_node_create("Upsample", 9, 2, 1);
    cr_assert_eq(kh_run(n, in9, &y, &err), QKV_ERR_INVALID_ARGUMENT);
    cr_assert(strstr(err.message, "Upsample needs >= 1"), "%s", err.message);
    kh_node_destroy(n);
    /* cubic is not a mode of Resize-10 */
    n = kh_node_create("Resize", 10, 2, 1);
    kh_attr_string(n, "mode", "cubic");
    cr_assert_eq(kh_run(n, in9, &y, &err), QKV_ERR_INVALID_MODEL);
    cr_assert(strstr(err.message, "'cubic', which opset 10"), "%s", err.message);
    kh_node_destroy(n);
    /* an empty axis cannot grow; roi of the wrong length */
    float none[1] = {0};
    int64_t sz[1] = {3};
    qkv_tensor ine[4] = {kh_f32(1, (int64_t[]){0}, none), kh_f32(0, NULL, NULL),
                         kh_f32(0, NULL, NULL), kh_i64(1, (int64_t[]){1}, sz)};
    n = kh_node_create("Resize", 13, 4, 1);
    kh_omit_input(n, 1);
    kh_omit_input(n, 2);
    cr_assert_eq(kh_run(n, ine, &y, &err), QKV_ERR_SHAPE);
    cr_assert(strstr(err.message, "axis 0 is empty"), "%s", err.message);
    kh_node_destroy(n);
    float roi[3] = {0, 1, 1};
    qkv_tensor inr[4] = {kh_f32(1, (int64_t[]){2}, xs), kh_f32(1, (int64_t[]){3}, roi),
                         kh_f32(0, NULL, NULL), kh_i64(1, (int64_t[]){1}, sz)};
    n = kh_node_create("Resize", 13, 4, 1);
    kh_omit_input(n, 2);
    kh_attr_string(n, "coordinate_transformation_mode", "tf_crop_and_resize");
    cr_assert_eq(kh_run(n, inr, &y, &err), QKV_ERR_SHAPE);
    cr_assert(strstr(err.message, "'roi' has 3 values, expected 2 x 1"), "%s", err.message);
    kh_node_destroy(n);
}

/* ---- through a session: a planned node, and one whose shape waits for its scales ------ */

/* Runs ctx on inputs and compares output 0 with ref_interp over x (dims in). */
static void run_and_check(qkv_context *ctx, const qkv_tensor *inputs, size_t n_inputs,
                          const float *x, const int64_t *in, const double *sc, const int64_t *osz,
                          const double *roi, const ref_cfg *c)
{
    qkv_error err;
    cr_assert_eq(qkv_run(ctx, inputs, n_inputs, &err), QKV_OK, "%s", err.message);
    const qkv_tensor *y = qkv_context_output(ctx, 0);
    size_t n = 1, numel = 1;
    for (int d = 0; d < 4; d++) {
        cr_assert_eq(y->dims[d], osz[d], "dim %d: %lld vs %lld", d, (long long)y->dims[d],
                     (long long)osz[d]);
        n *= (size_t)osz[d];
        numel *= (size_t)in[d];
    }
    double *xd = malloc(numel * sizeof *xd);
    for (size_t i = 0; i < numel; i++)
        xd[i] = x[i];
    int64_t pos[4] = {0};
    for (size_t i = 0; i < n; i++) {
        double want = ref_interp(xd, in, 4, sc, osz, pos, roi, c);
        float got = ((const float *)y->data)[i];
        cr_assert(fabs(got - want) <= 2e-6 + 2e-6 * fabs(want), "[%zu] %.9g vs %.9g", i,
                  (double)got, want);
        for (int d = 3; d >= 0; d--) {
            if (++pos[d] < osz[d])
                break;
            pos[d] = 0;
        }
    }
    free(xd);
}

Test(resize, session_plans_constant_sizes_and_reads_the_roi_when_running)
{
    qkv_session *s;
    qkv_context *ctx;
    qkv_error err;
    cr_assert_eq(qkv_session_create(tu_data("resize/crop_static.onnx"), NULL, &s, &err), QKV_OK,
                 "%s", err.message);
    cr_assert_eq(qkv_context_create(s, &ctx, &err), QKV_OK, "%s", err.message);
    float x[2 * 2 * 6 * 7];
    kh_fill_random(x, 2 * 2 * 6 * 7, 21);
    static float rois[2][8] = {{0, 0, 0.1f, -0.2f, 1, 1, 0.8f, 1.3f},
                               {0, 0, 0.3f, 0.1f, 1, 1, 0.6f, 0.9f}};
    ref_cfg c = {"cubic", "tf_crop_and_resize", NULL, false, false, 0, -1};
    for (int64_t batch = 1; batch <= 2; batch++)
        for (int r = 0; r < 2; r++) { /* same shape, new roi: the plan is reused */
            /* sizes [1, 2, 5, 9]: a batch of 2 is cropped and resized to 1 too */
            int64_t in[4] = {batch, 2, 6, 7}, osz[4] = {1, 2, 5, 9};
            double sc[4] = {1.0 / (double)batch, 1, 5.0 / 6.0, 9.0 / 7.0}, roi[8];
            for (int k = 0; k < 8; k++)
                roi[k] = rois[r][k];
            qkv_tensor inputs[2] = {kh_f32(4, in, x), kh_f32(1, (int64_t[]){8}, rois[r])};
            run_and_check(ctx, inputs, 2, x, in, sc, osz, roi, &c);
        }
    qkv_context_destroy(ctx);
    qkv_session_destroy(s);
}

Test(resize, session_output_shape_follows_scales_given_when_running)
{
    qkv_session *s;
    qkv_context *ctx;
    qkv_error err;
    cr_assert_eq(qkv_session_create(tu_data("resize/scales_runtime.onnx"), NULL, &s, &err), QKV_OK,
                 "%s", err.message);
    cr_assert_eq(qkv_context_create(s, &ctx, &err), QKV_OK, "%s", err.message);
    float x[12];
    kh_fill_random(x, 12, 22);
    static float scales[3][4] = {{1, 1, 2, 1.5f}, {1, 1, 0.5f, 0.5f}, {1, 1, 2, 1.5f}};
    ref_cfg c = {"linear", "half_pixel"};
    for (int r = 0; r < 3; r++) { /* one input shape, three output shapes */
        int64_t in[4] = {1, 1, 3, 4}, osz[4];
        double sc[4];
        for (int d = 0; d < 4; d++) {
            osz[d] = (int64_t)floorf((float)in[d] * scales[r][d]);
            sc[d] = scales[r][d];
        }
        qkv_tensor inputs[2] = {kh_f32(4, in, x), kh_f32(1, (int64_t[]){4}, scales[r])};
        run_and_check(ctx, inputs, 2, x, in, sc, osz, NULL, &c);
    }
    qkv_context_destroy(ctx);
    qkv_session_destroy(s);
}
