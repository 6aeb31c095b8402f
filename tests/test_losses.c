/* NegativeLogLikelihoodLoss and SoftmaxCrossEntropyLoss against naive
 * references written here (in double): random (N, C, d1..dk) shapes, every
 * reduction, weights, ignore_index (in range, negative, above C, every
 * target ignored), int32 and int64 targets, the log_prob output, float16
 * and double, large scores, and each error. */
#include <criterion/criterion.h>
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "half.h"
#include "kernel_harness.h"

static uint32_t rng_state = 77;
static uint32_t rnd(uint32_t n)
{
    rng_state ^= rng_state << 13;
    rng_state ^= rng_state >> 17;
    rng_state ^= rng_state << 5;
    return rng_state % n;
}

enum { RED_NONE, RED_SUM, RED_MEAN };
static const char *const red_names[] = {"none", "sum", "mean"};

/* One loss problem: input (N, C, dims[2..]) and target (N, dims[2..]). */
typedef struct loss_case {
    int rank;
    int64_t dims[6];
    size_t n, c, d;
    int reduction;
    bool has_ignore;
    int64_t ignore_index;
    bool weighted;
    bool target_i32;
} loss_case;

#define MAX_ELEMS 2048
#define MAX_POS 512

/* The ONNX reference's loss, written plainly: -w[t] * logp[n, t, d] per
 * position (0 where ignored), then summed, or summed and divided by the sum
 * of the weights of the positions not ignored. */
static size_t ref_nll(const loss_case *lc, const double *logp, const int64_t *target,
                      const float *weight, double *out)
{
    double sum = 0, wsum = 0;
    for (size_t n = 0; n < lc->n; n++)
        for (size_t d = 0; d < lc->d; d++) {
            size_t i = n * lc->d + d;
            int64_t t = target[i];
            double l = 0;
            if (!(lc->has_ignore && t == lc->ignore_index)) {
                double w = lc->weighted ? weight[t] : 1.0;
                l = -w * logp[(n * lc->c + (size_t)t) * lc->d + d];
                sum += l;
                wsum += w;
            }
            if (lc->reduction == RED_NONE)
                out[i] = l;
        }
    if (lc->reduction == RED_NONE)
        return lc->n * lc->d;
    out[0] = lc->reduction == RED_SUM ? sum : sum / wsum;
    return 1;
}

/* log-softmax over C in long double, without max subtraction (the inputs
 * here are small, so exp cannot overflow): an independent formula. */
static void ref_log_softmax(const loss_case *lc, const float *x, double *logp)
{
    for (size_t n = 0; n < lc->n; n++)
        for (size_t d = 0; d < lc->d; d++) {
            long double s = 0;
            for (size_t c = 0; c < lc->c; c++)
                s += expl((long double)x[(n * lc->c + c) * lc->d + d]);
            for (size_t c = 0; c < lc->c; c++) {
                size_t i = (n * lc->c + c) * lc->d + d;
                logp[i] = (double)((long double)x[i] - logl(s));
            }
        }
}

static void random_case(loss_case *lc)
{
    memset(lc, 0, sizeof *lc);
    lc->rank = 2 + (int)rnd(4);
    lc->n = 1, lc->d = 1;
    for (int k = 0; k < lc->rank; k++) {
        lc->dims[k] = 1 + rnd(k == 1 ? 6 : 4);
        if (k >= 2)
            lc->d *= (size_t)lc->dims[k];
    }
    lc->n = (size_t)lc->dims[0];
    lc->c = (size_t)lc->dims[1];
    lc->reduction = (int)rnd(3);
    lc->weighted = rnd(2);
    lc->target_i32 = rnd(2);
    switch (rnd(4)) {
    case 0:
        break;
    case 1:
        lc->has_ignore = true, lc->ignore_index = (int64_t)rnd((uint32_t)lc->c);
        break;
    case 2:
        lc->has_ignore = true, lc->ignore_index = -1;
        break;
    default:
        lc->has_ignore = true, lc->ignore_index = 10 + rnd(5);
        break;
    }
}

/* Targets in [0, C), about a quarter of them ignore_index when there is one. */
static void random_targets(const loss_case *lc, int64_t *t)
{
    for (size_t i = 0; i < lc->n * lc->d; i++)
        t[i] = lc->has_ignore && rnd(4) == 0 ? lc->ignore_index : (int64_t)rnd((uint32_t)lc->c);
}

static kh_node *loss_node(const char *op, const loss_case *lc, size_t n_out)
{
    kh_node *node = kh_node_create(op, 13, lc->weighted ? 3 : 2, n_out);
    kh_attr_string(node, "reduction", red_names[lc->reduction]);
    if (lc->has_ignore)
        kh_attr_int(node, "ignore_index", lc->ignore_index);
    return node;
}

/* Input views for a case: x float32, target int64 or int32 (converted into
 * t32), weight float32. */
static void case_inputs(const loss_case *lc, float *x, int64_t *t64, int32_t *t32, float *w,
                        qkv_tensor ins[3])
{
    int64_t tdims[6];
    tdims[0] = lc->dims[0];
    for (int k = 2; k < lc->rank; k++)
        tdims[k - 1] = lc->dims[k];
    ins[0] = kh_f32(lc->rank, lc->dims, x);
    if (lc->target_i32) {
        for (size_t i = 0; i < lc->n * lc->d; i++)
            t32[i] = (int32_t)t64[i];
        ins[1] = kh_tensor(QKV_DTYPE_INT32, lc->rank - 1, tdims, t32);
    } else {
        ins[1] = kh_i64(lc->rank - 1, tdims, t64);
    }
    ins[2] = kh_f32(1, &lc->dims[1], w);
}

/* Tolerance: the kernels accumulate in double and round once to float;
 * the references are double (long double for the log-softmax), so the
 * difference is float rounding of the result plus float rounding of
 * log_prob (~1e-7 relative); 1e-5 is far below any wrong class, weight or
 * denominator. */
static void assert_close(const float *got, const double *want, size_t n, const char *what)
{
    for (size_t i = 0; i < n; i++) {
        if (isnan(want[i])) {
            cr_assert(isnan(got[i]), "%s: element %zu is %.9g, expected NaN", what, i, got[i]);
            continue;
        }
        cr_assert(fabs(got[i] - want[i]) <= 1e-5 + 1e-5 * fabs(want[i]),
                  "%s: element %zu is %.9g, expected %.9g", what, i, got[i], want[i]);
    }
}

static void describe(const loss_case *lc, int trial, char *buf, size_t cap)
{
    snprintf(buf, cap, "trial %d rank %d N %zu C %zu D %zu %s%s%s ii %lld%s", trial, lc->rank,
             lc->n, lc->c, lc->d, red_names[lc->reduction], lc->weighted ? " weighted" : "",
             lc->has_ignore ? " ignore" : "", (long long)lc->ignore_index,
             lc->target_i32 ? " int32" : "");
}

Test(nll_loss, matches_reference_on_random_cases)
{
    static float x[MAX_ELEMS], w[8];
    static int64_t t64[MAX_POS];
    static int32_t t32[MAX_POS];
    static double logp[MAX_ELEMS], want[MAX_POS];
    for (int trial = 0; trial < 300; trial++) {
        loss_case lc;
        random_case(&lc);
        kh_fill_random(x, lc.n * lc.c * lc.d, rnd(1000) + 1);
        kh_fill_random(w, lc.c, rnd(1000) + 1);
        for (size_t i = 0; i < lc.c; i++)
            w[i] = fabsf(w[i]) + 0.1f;
        random_targets(&lc, t64);
        for (size_t i = 0; i < lc.n * lc.c * lc.d; i++)
            logp[i] = x[i];
        size_t count = ref_nll(&lc, logp, t64, w, want);
        kh_node *node = loss_node("NegativeLogLikelihoodLoss", &lc, 1);
        qkv_tensor ins[3], out;
        case_inputs(&lc, x, t64, t32, w, ins);
        qkv_error err;
        char what[160];
        describe(&lc, trial, what, sizeof what);
        cr_assert_eq(kh_run(node, ins, &out, &err), QKV_OK, "%s: %s", what, err.message);
        cr_assert_eq(out.dtype, QKV_DTYPE_FLOAT, "%s", what);
        cr_assert_eq(out.rank, lc.reduction == RED_NONE ? lc.rank - 1 : 0, "%s", what);
        assert_close(out.data, want, count, what);
        kh_free_outputs(&out, 1);
        kh_node_destroy(node);
    }
}

Test(softmax_cross_entropy, matches_reference_with_and_without_log_prob)
{
    static float x[MAX_ELEMS], w[8];
    static int64_t t64[MAX_POS];
    static int32_t t32[MAX_POS];
    static double logp[MAX_ELEMS], want[MAX_POS];
    for (int trial = 0; trial < 300; trial++) {
        loss_case lc;
        random_case(&lc);
        kh_fill_random(x, lc.n * lc.c * lc.d, rnd(1000) + 1);
        for (size_t i = 0; i < lc.n * lc.c * lc.d; i++)
            x[i] *= 4;
        kh_fill_random(w, lc.c, rnd(1000) + 1);
        for (size_t i = 0; i < lc.c; i++)
            w[i] = fabsf(w[i]) + 0.1f;
        random_targets(&lc, t64);
        ref_log_softmax(&lc, x, logp);
        size_t count = ref_nll(&lc, logp, t64, w, want);
        const size_t n_out = 1 + (size_t)(trial % 2);
        kh_node *node = loss_node("SoftmaxCrossEntropyLoss", &lc, n_out);
        qkv_tensor ins[3], out[2];
        case_inputs(&lc, x, t64, t32, w, ins);
        qkv_error err;
        char what[160];
        describe(&lc, trial, what, sizeof what);
        cr_assert_eq(kh_run(node, ins, out, &err), QKV_OK, "%s: %s", what, err.message);
        assert_close(out[0].data, want, count, what);
        if (n_out == 2) {
            cr_assert_eq(out[1].rank, lc.rank, "%s", what);
            cr_assert_eq(out[1].dtype, QKV_DTYPE_FLOAT, "%s", what);
            assert_close(out[1].data, logp, lc.n * lc.c * lc.d, what);
        }
        kh_free_outputs(out, n_out);
        kh_node_destroy(node);
    }
}

/* Every target ignored: the reference divides 0 by a weight sum of 0, NaN
 * for mean; sum is 0 and none is all zeros. */
static void run_all_ignored(const char *op, int reduction, float *got)
{
    float x[12];
    kh_fill_random(x, 12, 5);
    int64_t t[4] = {-100, -100, -100, -100};
    float w[3] = {1, 2, 3};
    loss_case lc = {.rank = 3,
                    .dims = {2, 3, 2},
                    .n = 2,
                    .c = 3,
                    .d = 2,
                    .reduction = reduction,
                    .has_ignore = true,
                    .ignore_index = -100,
                    .weighted = reduction != RED_SUM};
    kh_node *node = loss_node(op, &lc, 1);
    qkv_tensor ins[3], out;
    case_inputs(&lc, x, t, NULL, w, ins);
    qkv_error err;
    cr_assert_eq(kh_run(node, ins, &out, &err), QKV_OK, "%s: %s", op, err.message);
    memcpy(got, out.data, out.data_bytes);
    kh_free_outputs(&out, 1);
    kh_node_destroy(node);
}

Test(nll_loss, every_target_ignored_follows_the_reference)
{
    static const char *const ops[] = {"NegativeLogLikelihoodLoss", "SoftmaxCrossEntropyLoss"};
    for (int k = 0; k < 2; k++) {
        float got[4];
        run_all_ignored(ops[k], RED_MEAN, got);
        cr_assert(isnan(got[0]), "%s mean: %g, expected NaN", ops[k], got[0]);
        run_all_ignored(ops[k], RED_SUM, got);
        cr_assert_eq(got[0], 0.0f, "%s sum: %g", ops[k], got[0]);
        run_all_ignored(ops[k], RED_NONE, got);
        for (int i = 0; i < 4; i++)
            cr_assert_eq(got[i], 0.0f, "%s none[%d]: %g", ops[k], i, got[i]);
    }
}

Test(nll_loss, mean_without_weight_divides_by_targets_not_ignored_in_every_opset)
{
    /* input (2, 3): row 0's target 1 is ignored, row 1 loses -x[1][0] = 2 */
    float x[6] = {-1, -9, -0.5f, -2, -3, -4};
    int64_t t[2] = {1, 0};
    static const int64_t opsets[] = {12, 13, 22};
    for (int k = 0; k < 3; k++) {
        kh_node *node = kh_node_create("NegativeLogLikelihoodLoss", opsets[k], 2, 1);
        kh_attr_int(node, "ignore_index", 1);
        qkv_tensor ins[2] = {kh_f32(2, (int64_t[]){2, 3}, x), kh_i64(1, (int64_t[]){2}, t)}, out;
        qkv_error err;
        cr_assert_eq(kh_run(node, ins, &out, &err), QKV_OK, "opset %lld: %s", (long long)opsets[k],
                     err.message);
        cr_assert_eq(out.rank, 0);
        cr_assert_float_eq(((float *)out.data)[0], 2.0f, 1e-7f);
        kh_free_outputs(&out, 1);
        kh_node_destroy(node);
    }
}

Test(softmax_cross_entropy, large_scores_stay_finite)
{
    /* exp(1000) overflows double: only a max-subtracted log-softmax is finite */
    float x[6] = {1000, 999, 998, -1000, 0, 1000};
    int64_t t[2] = {1, 2};
    kh_node *node = kh_node_create("SoftmaxCrossEntropyLoss", 13, 2, 2);
    kh_attr_string(node, "reduction", "none");
    qkv_tensor ins[2] = {kh_f32(2, (int64_t[]){2, 3}, x), kh_i64(1, (int64_t[]){2}, t)}, out[2];
    qkv_error err;
    cr_assert_eq(kh_run(node, ins, out, &err), QKV_OK, "%s", err.message);
    double lse0 = 1000 + log(1 + exp(-1.0) + exp(-2.0));
    double lse1 = 1000 + log(1 + exp(-1000.0) + exp(-2000.0));
    double want[2] = {lse0 - 999, lse1 - 1000};
    assert_close(out[0].data, want, 2, "loss");
    double want_lp[6] = {1000 - lse0, 999 - lse0, 998 - lse0, -1000 - lse1, 0 - lse1, 0};
    assert_close(out[1].data, want_lp, 6, "log_prob");
    kh_free_outputs(out, 2);
    kh_node_destroy(node);
}

Test(softmax_cross_entropy, double_and_float16)
{
    double xd[8] = {0.5, -1, 2, 0.25, 1, 1, -2, 3};
    uint16_t xh[8], wh[4];
    double wd[4] = {0.5, 1, 2, 1.5};
    int64_t t[2] = {2, 3};
    for (int i = 0; i < 8; i++)
        xh[i] = qkv_f32_to_f16((float)xd[i]);
    for (int i = 0; i < 4; i++)
        wh[i] = qkv_f32_to_f16((float)wd[i]);
    /* reference: weighted mean over the two rows, from the exact inputs */
    double num = 0, den = 0;
    for (int n = 0; n < 2; n++) {
        double s = 0;
        for (int c = 0; c < 4; c++)
            s += exp(xd[n * 4 + c]);
        num += -wd[t[n]] * (xd[n * 4 + t[n]] - log(s));
        den += wd[t[n]];
    }
    const double want = num / den;
    for (int k = 0; k < 2; k++) {
        qkv_dtype dt = k == 0 ? QKV_DTYPE_DOUBLE : QKV_DTYPE_FLOAT16;
        kh_node *node = kh_node_create("SoftmaxCrossEntropyLoss", 13, 3, 1);
        qkv_tensor ins[3] = {kh_tensor(dt, 2, (int64_t[]){2, 4}, k == 0 ? (void *)xd : xh),
                             kh_i64(1, (int64_t[]){2}, t),
                             kh_tensor(dt, 1, (int64_t[]){4}, k == 0 ? (void *)wd : wh)},
                   out;
        qkv_error err;
        cr_assert_eq(kh_run(node, ins, &out, &err), QKV_OK, "%s", err.message);
        cr_assert_eq(out.dtype, dt);
        double got = k == 0 ? ((double *)out.data)[0] : qkv_f16_to_f32(((uint16_t *)out.data)[0]);
        /* double: rounding only; float16: one rounding of the result (2^-11
         * relative), the inputs being exact in float16 */
        double tol = k == 0 ? 1e-12 : 1e-3;
        cr_assert(fabs(got - want) <= tol * fabs(want), "%s: %.9g, expected %.9g",
                  k == 0 ? "double" : "float16", got, want);
        kh_free_outputs(&out, 1);
        kh_node_destroy(node);
    }
}

Test(softmax_cross_entropy, large_batch_on_threads)
{
    /* (8, 100, 50): 320 KB of double log probabilities, split over threads */
    enum { N = 8, C = 100, D = 50 };
    static float x[N * C * D], w[C];
    static int64_t t[N * D];
    static double logp[N * C * D], want[N * D];
    loss_case lc = {.rank = 3,
                    .dims = {N, C, D},
                    .n = N,
                    .c = C,
                    .d = D,
                    .reduction = RED_NONE,
                    .has_ignore = true,
                    .ignore_index = 7,
                    .weighted = true};
    kh_fill_random(x, N * C * D, 91);
    kh_fill_random(w, C, 92);
    for (size_t i = 0; i < C; i++)
        w[i] = fabsf(w[i]) + 0.1f;
    random_targets(&lc, t);
    ref_log_softmax(&lc, x, logp);
    ref_nll(&lc, logp, t, w, want);
    kh_node *node = loss_node("SoftmaxCrossEntropyLoss", &lc, 2);
    kh_set_threads(node, 4);
    qkv_tensor ins[3], out[2];
    case_inputs(&lc, x, t, NULL, w, ins);
    qkv_error err;
    cr_assert_eq(kh_run(node, ins, out, &err), QKV_OK, "%s", err.message);
    assert_close(out[0].data, want, N * D, "loss");
    assert_close(out[1].data, logp, N * C * D, "log_prob");
    kh_free_outputs(out, 2);
    kh_node_destroy(node);
}

/* ---- errors ----------------------------------------------------------------- */

static qkv_status run_error(const char *op, int x_rank, const int64_t *x_dims, int t_rank,
                            const int64_t *t_dims, const int64_t *t_vals, bool has_ignore,
                            int64_t ignore, const char *reduction, int w_len, qkv_dtype w_type,
                            qkv_error *err)
{
    static float x[64], w[16];
    static double wd[16];
    kh_node *node = kh_node_create(op, 13, w_len ? 3 : 2, 1);
    if (reduction)
        kh_attr_string(node, "reduction", reduction);
    if (has_ignore)
        kh_attr_int(node, "ignore_index", ignore);
    int64_t wdims[1] = {w_len};
    qkv_tensor ins[3] = {kh_f32(x_rank, x_dims, x), kh_i64(t_rank, t_dims, (int64_t *)t_vals),
                         kh_tensor(w_type, 1, wdims, w_type == QKV_DTYPE_DOUBLE ? (void *)wd : w)},
               out;
    qkv_status st = kh_run(node, ins, &out, err);
    if (st == QKV_OK)
        kh_free_outputs(&out, 1);
    kh_node_destroy(node);
    return st;
}

static const int64_t dims23[2] = {2, 3}, dims2[1] = {2};

Test(nll_loss, refuses_target_out_of_range_naming_the_value)
{
    static const char *const ops[] = {"NegativeLogLikelihoodLoss", "SoftmaxCrossEntropyLoss"};
    for (int k = 0; k < 2; k++) {
        qkv_error err;
        int64_t t[2] = {0, 3};
        cr_assert_eq(
            run_error(ops[k], 2, dims23, 1, dims2, t, false, 0, NULL, 0, QKV_DTYPE_FLOAT, &err),
            QKV_ERR_INVALID_ARGUMENT);
        cr_assert(strstr(err.message, "node 'test_node'"), "%s", err.message);
        cr_assert(strstr(err.message, "holds 3 at flat index 1: outside the classes [0, 3)"), "%s",
                  err.message);
    }
}

Test(nll_loss, refuses_negative_target_that_is_not_ignore_index)
{
    qkv_error err;
    int64_t t[2] = {-1, 0};
    cr_assert_eq(run_error("NegativeLogLikelihoodLoss", 2, dims23, 1, dims2, t, true, -100, NULL, 0,
                           QKV_DTYPE_FLOAT, &err),
                 QKV_ERR_INVALID_ARGUMENT);
    cr_assert(strstr(err.message, "holds -1 at flat index 0: outside the classes [0, 3) and not "
                                  "ignore_index -100"),
              "%s", err.message);
}

Test(nll_loss, refuses_unknown_reduction)
{
    qkv_error err;
    int64_t t[2] = {0, 1};
    cr_assert_eq(run_error("NegativeLogLikelihoodLoss", 2, dims23, 1, dims2, t, false, 0, "average",
                           0, QKV_DTYPE_FLOAT, &err),
                 QKV_ERR_INVALID_MODEL);
    cr_assert(strstr(err.message, "attribute 'reduction' is 'average', expected 'none', 'sum' or "
                                  "'mean'"),
              "%s", err.message);
}

Test(nll_loss, refuses_target_shape_not_matching_input)
{
    qkv_error err;
    int64_t t[3] = {0, 1, 2};
    cr_assert_eq(run_error("NegativeLogLikelihoodLoss", 2, dims23, 1, (int64_t[]){3}, t, false, 0,
                           NULL, 0, QKV_DTYPE_FLOAT, &err),
                 QKV_ERR_SHAPE);
    cr_assert(strstr(err.message, "input 1 'target' has shape [3], expected input 0 'input' [2,3] "
                                  "without its class axis 1"),
              "%s", err.message);
    cr_assert_eq(run_error("SoftmaxCrossEntropyLoss", 2, dims23, 2, (int64_t[]){2, 1}, t, false, 0,
                           NULL, 0, QKV_DTYPE_FLOAT, &err),
                 QKV_ERR_SHAPE);
    cr_assert(strstr(err.message, "input 1 'labels' has shape [2,1], expected input 0 'scores'"),
              "%s", err.message);
}

Test(nll_loss, refuses_rank_1_input)
{
    qkv_error err;
    int64_t t[1] = {0};
    cr_assert_eq(run_error("NegativeLogLikelihoodLoss", 1, (int64_t[]){3}, 0, NULL, t, false, 0,
                           NULL, 0, QKV_DTYPE_FLOAT, &err),
                 QKV_ERR_SHAPE);
    cr_assert(strstr(err.message, "input 0 'input' has rank 1, expected >= 2 (N, C, d1, ..., dk)"),
              "%s", err.message);
}

Test(nll_loss, refuses_weight_of_wrong_length_or_type)
{
    qkv_error err;
    int64_t t[2] = {0, 1};
    cr_assert_eq(run_error("NegativeLogLikelihoodLoss", 2, dims23, 1, dims2, t, false, 0, NULL, 4,
                           QKV_DTYPE_FLOAT, &err),
                 QKV_ERR_SHAPE);
    cr_assert(strstr(err.message, "input 2 'weight' has shape [4], expected [3] (the classes, "
                                  "dim 1 of input 0 'input')"),
              "%s", err.message);
    cr_assert_eq(run_error("SoftmaxCrossEntropyLoss", 2, dims23, 1, dims2, t, false, 0, NULL, 3,
                           QKV_DTYPE_DOUBLE, &err),
                 QKV_ERR_TYPE);
    cr_assert(strstr(err.message, "input 2 'weights' has type float64, expected float32"), "%s",
              err.message);
}

/* The scores and the targets are required: one given as "" before a present
 * weight keeps the arity, and is refused before init instead of read as NULL. */
Test(nll_loss, refuses_an_omitted_required_input)
{
    static const char *const ops[2] = {"NegativeLogLikelihoodLoss", "SoftmaxCrossEntropyLoss"};
    static const char *const want[2][2] = {{"input 0 is omitted", "input 1 is omitted"},
                                           {"input 0 is omitted", "input 1 is omitted"}};
    for (int k = 0; k < 2; k++)
        for (size_t omit = 0; omit < 2; omit++) {
            static float x[6], w[3] = {1, 1, 1};
            static int64_t t[2] = {0, 1};
            kh_node *node = kh_node_create(ops[k], 13, 3, 1);
            kh_omit_input(node, omit);
            qkv_tensor ins[3] = {kh_f32(2, dims23, x), kh_i64(1, dims2, t),
                                 kh_f32(1, (int64_t[]){3}, w)},
                       out;
            qkv_error err;
            cr_assert_eq(kh_run(node, ins, &out, &err), QKV_ERR_INVALID_MODEL, "%s input %zu: %s",
                         ops[k], omit, err.message);
            cr_assert(strstr(err.message, "test_node") && strstr(err.message, want[k][omit]), "%s",
                      err.message);
            kh_node_destroy(node);
        }
}
