/* LayerNormalization against a double-precision reference: every axis of
 * random shapes, with and without B, Mean/InvStdDev outputs, broadcast
 * Scale, stash_type, double input, threads, and errors. */
#include <criterion/criterion.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "kernel_harness.h"

static uint32_t rng_state = 4242;
static uint32_t rnd(uint32_t n)
{
    rng_state ^= rng_state << 13;
    rng_state ^= rng_state >> 17;
    rng_state ^= rng_state << 5;
    return rng_state % n;
}

/* y (rows, d), mean (rows), inv (rows) in double; w, b (d), b may be NULL */
static void ref_ln(const float *x, const float *w, const float *b, size_t rows, size_t d,
                   double eps, double *y, double *mean, double *inv)
{
    for (size_t r = 0; r < rows; r++) {
        double m = 0, v = 0;
        for (size_t i = 0; i < d; i++)
            m += x[r * d + i];
        m /= (double)d;
        for (size_t i = 0; i < d; i++)
            v += (x[r * d + i] - m) * (x[r * d + i] - m);
        v /= (double)d;
        double is = 1 / sqrt(v + eps);
        for (size_t i = 0; i < d; i++)
            y[r * d + i] = (x[r * d + i] - m) * is * w[i] + (b ? b[i] : 0);
        mean[r] = m;
        inv[r] = is;
    }
}

typedef struct ln_case {
    int64_t axis;  /* INT64_MIN: attribute absent */
    float epsilon; /* 0: attribute absent */
    bool with_b;
    size_t n_outputs;
    int64_t stash; /* 0: absent */
    size_t threads;
} ln_case;

static qkv_status run_ln(const ln_case *c, qkv_tensor x, qkv_tensor w, qkv_tensor b,
                         qkv_tensor *outs, qkv_error *err)
{
    kh_node *n = kh_node_create("LayerNormalization", 17, 3, c->n_outputs);
    if (c->axis != INT64_MIN)
        kh_attr_int(n, "axis", c->axis);
    if (c->epsilon != 0)
        kh_attr_float(n, "epsilon", c->epsilon);
    if (c->stash)
        kh_attr_int(n, "stash_type", c->stash);
    if (!c->with_b)
        kh_omit_input(n, 2);
    if (c->threads)
        kh_set_threads(n, c->threads);
    qkv_tensor ins[3] = {x, w, b};
    qkv_status st = kh_run(n, ins, outs, err);
    kh_node_destroy(n);
    return st;
}

/* Tolerance: the kernel computes in double and rounds once to float, the
 * reference stays in double on the same float inputs, so the difference is
 * the output rounding (values are O(1-10): a few 1e-7); 1e-5 absolute +
 * relative leaves margin and still catches a wrong mean, variance, epsilon
 * or Scale/B element. */
static void assert_close(const float *got, const double *want, size_t n, const char *what)
{
    for (size_t i = 0; i < n; i++)
        cr_assert(fabs(got[i] - want[i]) <= 1e-5 + 1e-5 * fabs(want[i]),
                  "%s: element %zu is %.9g, expected %.9g", what, i, got[i], want[i]);
}

Test(layernorm, matches_reference_for_every_axis_of_random_shapes)
{
    static float xs[1024], ws[1024], bs[1024];
    static double y[1024], mean[1024], inv[1024];
    for (int trial = 0; trial < 120; trial++) {
        int rank = 1 + (int)rnd(4);
        int64_t dims[4];
        size_t numel = 1;
        for (int k = 0; k < rank; k++) {
            dims[k] = 1 + rnd(5);
            numel *= (size_t)dims[k];
        }
        int axis = (int)rnd((uint32_t)rank);
        int64_t axis_attr = rnd(2) ? axis : axis - rank;
        size_t rows = 1, d = 1;
        for (int k = 0; k < rank; k++)
            *(k < axis ? &rows : &d) *= (size_t)dims[k];
        kh_fill_random(xs, numel, rnd(1000) + 1);
        for (size_t i = 0; i < numel; i++)
            xs[i] = xs[i] * 3 + 2; /* a mean away from 0 */
        kh_fill_random(ws, d, rnd(1000) + 1);
        kh_fill_random(bs, d, rnd(1000) + 1);
        ln_case c = {.axis = axis_attr,
                     .epsilon = trial % 3 ? 0 : 0.1f,
                     .with_b = trial % 2,
                     .n_outputs = trial % 4 < 2 ? 3 : 1};
        double eps = c.epsilon ? (double)0.1f : (double)1e-5f;
        ref_ln(xs, ws, c.with_b ? bs : NULL, rows, d, eps, y, mean, inv);
        qkv_tensor outs[3];
        qkv_error err;
        char what[96];
        snprintf(what, sizeof what, "trial %d rank %d axis %lld", trial, rank,
                 (long long)axis_attr);
        cr_assert_eq(run_ln(&c, kh_f32(rank, dims, xs), kh_f32(rank - axis, dims + axis, ws),
                            kh_f32(rank - axis, dims + axis, bs), outs, &err),
                     QKV_OK, "%s: %s", what, err.message);
        cr_assert_eq(outs[0].rank, rank, "%s", what);
        assert_close(outs[0].data, y, numel, what);
        if (c.n_outputs == 3) {
            for (int k = 0; k < 2; k++) {
                qkv_tensor *o = &outs[1 + k];
                cr_assert_eq(o->dtype, QKV_DTYPE_FLOAT, "%s", what);
                cr_assert_eq(o->rank, rank, "%s", what);
                for (int i = 0; i < rank; i++)
                    cr_assert_eq(o->dims[i], i < axis ? dims[i] : 1, "%s: stat dim %d", what, i);
            }
            assert_close(outs[1].data, mean, rows, what);
            assert_close(outs[2].data, inv, rows, what);
        }
        kh_free_outputs(outs, c.n_outputs);
    }
}

Test(layernorm, broadcasts_a_smaller_scale_and_bias)
{
    /* normalized shape [3, 4] (axis -2); Scale [4] and B [1, 4] repeat per row */
    float xs[2 * 3 * 4], ws[4] = {1, 2, 3, 4}, bs[4] = {0.5f, -0.5f, 1, 0};
    float wfull[12], bfull[12];
    for (int i = 0; i < 12; i++) {
        wfull[i] = ws[i % 4];
        bfull[i] = bs[i % 4];
    }
    kh_fill_random(xs, 24, 9);
    double y[24], mean[2], inv[2];
    ref_ln(xs, wfull, bfull, 2, 12, 1e-5f, y, mean, inv);
    ln_case c = {.axis = -2, .with_b = true, .n_outputs = 1};
    qkv_tensor out;
    qkv_error err;
    cr_assert_eq(run_ln(&c, kh_f32(3, (int64_t[]){2, 3, 4}, xs), kh_f32(1, (int64_t[]){4}, ws),
                        kh_f32(2, (int64_t[]){1, 4}, bs), &out, &err),
                 QKV_OK, "%s", err.message);
    assert_close(out.data, y, 24, "broadcast");
    kh_free_outputs(&out, 1);
}

Test(layernorm, stash_type_double_gives_double_statistics)
{
    float xs[6] = {1, 2, 3, 4, 5, 7}, ws[3] = {1, 1, 1};
    ln_case c = {.axis = -1, .n_outputs = 3, .stash = 11};
    qkv_tensor outs[3];
    qkv_error err;
    cr_assert_eq(run_ln(&c, kh_f32(2, (int64_t[]){2, 3}, xs), kh_f32(1, (int64_t[]){3}, ws),
                        kh_f32(0, NULL, NULL), outs, &err),
                 QKV_OK, "%s", err.message);
    cr_assert_eq(outs[1].dtype, QKV_DTYPE_DOUBLE);
    cr_assert_eq(outs[2].dtype, QKV_DTYPE_DOUBLE);
    /* means 2 and 16/3, exact in double up to its rounding */
    cr_assert_float_eq(((double *)outs[1].data)[0], 2.0, 1e-15);
    cr_assert_float_eq(((double *)outs[1].data)[1], 16.0 / 3.0, 1e-15);
    /* row 0 variance 2/3: inv = 1/sqrt(2/3 + eps) (eps the float 1e-5) */
    cr_assert_float_eq(((double *)outs[2].data)[0], 1 / sqrt(2.0 / 3.0 + (double)1e-5f), 1e-14);
    kh_free_outputs(outs, 3);
}

Test(layernorm, double_input)
{
    double xs[4] = {1, 2, 3, 4}, ws[4] = {1, 1, 1, 1}, bs[4] = {0, 0, 0, 10};
    ln_case c = {.axis = 0, .with_b = true, .n_outputs = 1};
    qkv_tensor out;
    qkv_error err;
    int64_t d[1] = {4};
    cr_assert_eq(run_ln(&c, kh_tensor(QKV_DTYPE_DOUBLE, 1, d, xs),
                        kh_tensor(QKV_DTYPE_DOUBLE, 1, d, ws),
                        kh_tensor(QKV_DTYPE_DOUBLE, 1, d, bs), &out, &err),
                 QKV_OK, "%s", err.message);
    double inv = 1 / sqrt(1.25 + (double)1e-5f);
    const double *g = out.data;
    /* computed in double throughout: only a few ulps of difference */
    cr_assert_float_eq(g[0], -1.5 * inv, 1e-14);
    cr_assert_float_eq(g[3], 1.5 * inv + 10, 1e-14);
    kh_free_outputs(&out, 1);
}

Test(layernorm, many_rows_on_threads)
{
    enum { ROWS = 1500, D = 96 }; /* 562 KiB out: two parallel chunks */
    static float xs[ROWS * D], ws[D], bs[D];
    static double y[ROWS * D], mean[ROWS], inv[ROWS];
    kh_fill_random(xs, ROWS * D, 3);
    kh_fill_random(ws, D, 4);
    kh_fill_random(bs, D, 5);
    ref_ln(xs, ws, bs, ROWS, D, 1e-5f, y, mean, inv);
    ln_case c = {.axis = -1, .with_b = true, .n_outputs = 3, .threads = 4};
    qkv_tensor outs[3];
    qkv_error err;
    cr_assert_eq(run_ln(&c, kh_f32(3, (int64_t[]){ROWS / 100, 100, D}, xs),
                        kh_f32(1, (int64_t[]){D}, ws), kh_f32(1, (int64_t[]){D}, bs), outs, &err),
                 QKV_OK, "%s", err.message);
    assert_close(outs[0].data, y, ROWS * D, "threads Y");
    assert_close(outs[1].data, mean, ROWS, "threads Mean");
    assert_close(outs[2].data, inv, ROWS, "threads InvStdDev");
    kh_free_outputs(outs, 3);
}

Test(layernorm, refuses_axis_out_of_range)
{
    float xs[6] = {0}, ws[3] = {0};
    ln_case c = {.axis = 2, .n_outputs = 1};
    qkv_tensor out;
    qkv_error err;
    cr_assert_eq(run_ln(&c, kh_f32(2, (int64_t[]){2, 3}, xs), kh_f32(1, (int64_t[]){3}, ws),
                        kh_f32(0, NULL, NULL), &out, &err),
                 QKV_ERR_SHAPE);
    cr_assert(strstr(err.message, "node 'test_node' (LayerNormalization-17): attribute axis=2 "
                                  "is out of range for input 0 'X' of rank 2 (expected -2 to 1)"),
              "%s", err.message);
}

Test(layernorm, refuses_scale_that_does_not_broadcast)
{
    float xs[6] = {0}, ws[2] = {0};
    ln_case c = {.axis = -1, .n_outputs = 1};
    qkv_tensor out;
    qkv_error err;
    cr_assert_eq(run_ln(&c, kh_f32(2, (int64_t[]){2, 3}, xs), kh_f32(1, (int64_t[]){2}, ws),
                        kh_f32(0, NULL, NULL), &out, &err),
                 QKV_ERR_SHAPE);
    cr_assert(strstr(err.message, "input 1 'Scale' has shape [2], which does not broadcast to "
                                  "the normalized dims of input 0 'X' [2,3] from axis 1"),
              "%s", err.message);
    /* [2, 3] Scale for axis 1 of [2, 3] (normalized [3]): the leading 2 is too much */
    float w6[6] = {0};
    cr_assert_eq(run_ln(&c, kh_f32(2, (int64_t[]){2, 3}, xs), kh_f32(2, (int64_t[]){2, 3}, w6),
                        kh_f32(0, NULL, NULL), &out, &err),
                 QKV_ERR_SHAPE);
    cr_assert(strstr(err.message, "input 1 'Scale' has shape [2,3]"), "%s", err.message);
}

Test(layernorm, refuses_bias_of_another_type)
{
    float xs[3] = {0}, ws[3] = {0};
    double bs[3] = {0};
    ln_case c = {.axis = -1, .with_b = true, .n_outputs = 1};
    qkv_tensor out;
    qkv_error err;
    cr_assert_eq(run_ln(&c, kh_f32(1, (int64_t[]){3}, xs), kh_f32(1, (int64_t[]){3}, ws),
                        kh_tensor(QKV_DTYPE_DOUBLE, 1, (int64_t[]){3}, bs), &out, &err),
                 QKV_ERR_TYPE);
    cr_assert(strstr(err.message, "input 2 'B' has type float64, input 0 'X' has float32"), "%s",
              err.message);
}

Test(layernorm, refuses_unsupported_stash_type)
{
    float xs[3] = {0}, ws[3] = {0};
    ln_case c = {.axis = -1, .n_outputs = 1, .stash = 16};
    qkv_tensor out;
    qkv_error err;
    cr_assert_eq(run_ln(&c, kh_f32(1, (int64_t[]){3}, xs), kh_f32(1, (int64_t[]){3}, ws),
                        kh_f32(0, NULL, NULL), &out, &err),
                 QKV_ERR_UNSUPPORTED);
    cr_assert(strstr(err.message, "attribute stash_type=16 is not supported"), "%s", err.message);
}
