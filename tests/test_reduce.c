/* Reduce*: the ten reductions against a double-precision reference on random
 * shapes and axes (attribute and input forms), plus edge cases and errors. */
#include <criterion/criterion.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "kernel_harness.h"

static const char *const ops[] = {"ReduceSum",       "ReduceMean",     "ReduceMax", "ReduceMin",
                                  "ReduceProd",      "ReduceL1",       "ReduceL2",  "ReduceLogSum",
                                  "ReduceLogSumExp", "ReduceSumSquare"};
enum { N_OPS = sizeof ops / sizeof ops[0] };

/* The opset of each form: ReduceSum takes an axes input from 13, the others
 * from 18. */
static int64_t attr_opset(const char *op) { return strcmp(op, "ReduceSum") == 0 ? 11 : 13; }
static int64_t input_opset(const char *op) { return strcmp(op, "ReduceSum") == 0 ? 13 : 18; }

static uint32_t rng_state = 12345;
static uint32_t rnd(uint32_t n)
{
    rng_state ^= rng_state << 13;
    rng_state ^= rng_state >> 17;
    rng_state ^= rng_state << 5;
    return rng_state % n;
}

/* ---- the reference: double accumulators over every input element -------- */

static void ref_reduce(const char *op, const float *x, const int64_t *dims, int rank,
                       const bool *mask, double *y, size_t *y_count)
{
    size_t n_in = 1, n_out = 1, kd[QKV_MAX_RANK];
    for (int k = 0; k < rank; k++) {
        n_in *= (size_t)dims[k];
        kd[k] = mask[k] ? 1 : (size_t)dims[k];
        n_out *= kd[k];
    }
    double *acc = calloc(n_out + 1, sizeof *acc), *mx = calloc(n_out + 1, sizeof *mx);
    size_t *cnt = calloc(n_out + 1, sizeof *cnt);
    bool is_prod = strcmp(op, "ReduceProd") == 0;
    for (size_t o = 0; o < n_out; o++) {
        acc[o] = is_prod ? 1 : 0;
        mx[o] = strcmp(op, "ReduceMin") == 0 ? INFINITY : -INFINITY;
    }
    for (int pass = 0; pass < 2; pass++) {
        for (size_t i = 0; i < n_in; i++) {
            size_t rem = i, o = 0, ostride = 1;
            for (int k = rank - 1; k >= 0; k--) {
                size_t ik = rem % (size_t)dims[k];
                rem /= (size_t)dims[k];
                o += (mask[k] ? 0 : ik) * ostride;
                ostride *= kd[k];
            }
            double v = x[i];
            if (pass == 0) {
                cnt[o]++;
                if (!strcmp(op, "ReduceMax") || !strcmp(op, "ReduceLogSumExp"))
                    mx[o] = v > mx[o] ? v : mx[o];
                else if (!strcmp(op, "ReduceMin"))
                    mx[o] = v < mx[o] ? v : mx[o];
                else if (is_prod)
                    acc[o] *= v;
                else if (!strcmp(op, "ReduceL1"))
                    acc[o] += fabs(v);
                else if (!strcmp(op, "ReduceL2") || !strcmp(op, "ReduceSumSquare"))
                    acc[o] += v * v;
                else
                    acc[o] += v;
            } else if (!strcmp(op, "ReduceLogSumExp")) {
                acc[o] += exp(v - mx[o]);
            }
        }
    }
    for (size_t o = 0; o < n_out; o++) {
        if (!strcmp(op, "ReduceMax") || !strcmp(op, "ReduceMin"))
            y[o] = mx[o];
        else if (!strcmp(op, "ReduceMean"))
            y[o] = acc[o] / (double)cnt[o];
        else if (!strcmp(op, "ReduceL2"))
            y[o] = sqrt(acc[o]);
        else if (!strcmp(op, "ReduceLogSum"))
            y[o] = log(acc[o]);
        else if (!strcmp(op, "ReduceLogSumExp"))
            y[o] = mx[o] + log(acc[o]);
        else
            y[o] = acc[o];
    }
    *y_count = n_out;
    free(acc);
    free(mx);
    free(cnt);
}

/* ---- running one node ----------------------------------------------------- */

typedef struct reduce_case {
    const char *op;
    bool axes_input; /* axes as input 1 (else the attribute) */
    const int64_t *axes;
    size_t n_axes;  /* SIZE_MAX: no axes at all */
    int keepdims;   /* -1: attribute absent */
    int noop;       /* -1: attribute absent */
    bool hide_axes; /* infer first sees the axes input without a value */
    size_t threads;
} reduce_case;

static qkv_status run_case(const reduce_case *c, qkv_tensor x, qkv_tensor *y, qkv_error *err)
{
    bool with_input = c->axes_input && c->n_axes != SIZE_MAX;
    int64_t opset = c->axes_input ? input_opset(c->op) : attr_opset(c->op);
    kh_node *n = kh_node_create(c->op, opset, with_input ? 2 : 1, 1);
    if (c->keepdims >= 0)
        kh_attr_int(n, "keepdims", c->keepdims);
    if (c->noop >= 0)
        kh_attr_int(n, "noop_with_empty_axes", c->noop);
    if (!c->axes_input && c->n_axes != SIZE_MAX)
        kh_attr_ints(n, "axes", c->axes, c->n_axes);
    if (c->hide_axes)
        kh_hide_input_values(n);
    if (c->threads)
        kh_set_threads(n, c->threads);
    int64_t axes_copy[QKV_MAX_RANK + 1] = {0};
    if (with_input && c->n_axes)
        memcpy(axes_copy, c->axes, c->n_axes * sizeof *axes_copy);
    qkv_tensor ins[2] = {x,
                         kh_i64(1, (int64_t[]){(int64_t)(with_input ? c->n_axes : 0)}, axes_copy)};
    qkv_status st = kh_run(n, ins, y, err);
    kh_node_destroy(n);
    return st;
}

/* Checks y against the reference for x reduced over mask. Tolerance: the
 * kernel accumulates in double like the reference, so the difference is the
 * final rounding to float (6e-8 relative) plus libm's exp/log/sqrt
 * differences; 1e-5 relative (and 1e-6 absolute for results near 0, e.g.
 * products of many small values) leaves a wide margin while still catching
 * a wrong element, axis or accumulation. */
static void check_against_ref(const char *op, const float *xs, const int64_t *dims, int rank,
                              const bool *mask, int keepdims, const qkv_tensor *y, const char *what)
{
    double *want = malloc(8192 * sizeof *want);
    size_t n_out;
    ref_reduce(op, xs, dims, rank, mask, want, &n_out);
    int32_t r = 0;
    for (int k = 0; k < rank; k++) {
        if (!mask[k]) {
            cr_assert_eq(y->dims[r], dims[k], "%s: dim %d is %lld, expected %lld", what, r,
                         (long long)y->dims[r], (long long)dims[k]);
            r++;
        } else if (keepdims) {
            cr_assert_eq(y->dims[r], 1, "%s: dim %d is %lld, expected 1", what, r,
                         (long long)y->dims[r]);
            r++;
        }
    }
    cr_assert_eq(y->rank, r, "%s: rank %d, expected %d", what, y->rank, r);
    cr_assert_eq(y->dtype, QKV_DTYPE_FLOAT, "%s", what);
    const float *got = y->data;
    for (size_t i = 0; i < n_out; i++)
        cr_assert(fabs(got[i] - want[i]) <= 1e-6 + 1e-5 * fabs(want[i]),
                  "%s: element %zu is %.9g, expected %.9g", what, i, got[i], want[i]);
    free(want);
}

/* Random rank 1-4 shape (dims 1-4, total <= 256 so products stay finite in
 * float), random non-empty axes given in a random order, some negative. */
static void random_case(int64_t *dims, int *rank, int64_t *axes, size_t *n_axes, bool *mask)
{
    *rank = 1 + (int)rnd(4);
    for (int k = 0; k < *rank; k++) {
        dims[k] = 1 + rnd(4);
        mask[k] = rnd(2);
    }
    bool any = false;
    for (int k = 0; k < *rank; k++)
        any |= mask[k];
    if (!any)
        mask[rnd((uint32_t)*rank)] = true;
    *n_axes = 0;
    for (int k = *rank - 1; k >= 0; k--)
        if (mask[k])
            axes[(*n_axes)++] = rnd(2) ? k : k - *rank;
}

static void fill_for(const char *op, float *xs, size_t n)
{
    kh_fill_random(xs, n, rnd(1000) + 1);
    for (size_t i = 0; i < n; i++) {
        xs[i] *= 1.25f;
        if (!strcmp(op, "ReduceLogSum"))
            xs[i] = fabsf(xs[i]) + 0.01f; /* log of a positive sum */
    }
}

static void random_trials(bool axes_input)
{
    for (int o = 0; o < N_OPS; o++) {
        for (int trial = 0; trial < 40; trial++) {
            /* zeroed: gcc -O3 cannot see that random_case writes dims[0, rank) */
            int64_t dims[QKV_MAX_RANK] = {0}, axes[QKV_MAX_RANK] = {0};
            bool mask[QKV_MAX_RANK] = {0};
            int rank;
            size_t n_axes;
            random_case(dims, &rank, axes, &n_axes, mask);
            int keepdims = (int)rnd(2);
            size_t numel = 1;
            for (int k = 0; k < rank; k++)
                numel *= (size_t)dims[k];
            float xs[256];
            fill_for(ops[o], xs, numel);
            reduce_case c = {.op = ops[o],
                             .axes_input = axes_input,
                             .axes = axes,
                             .n_axes = n_axes,
                             .keepdims = keepdims,
                             .noop = -1,
                             .hide_axes = axes_input && trial % 2};
            qkv_tensor y;
            qkv_error err;
            char what[128];
            snprintf(what, sizeof what, "%s trial %d rank %d keepdims %d", ops[o], trial, rank,
                     keepdims);
            cr_assert_eq(run_case(&c, kh_f32(rank, dims, xs), &y, &err), QKV_OK, "%s: %s", what,
                         err.message);
            check_against_ref(ops[o], xs, dims, rank, mask, keepdims, &y, what);
            kh_free_outputs(&y, 1);
        }
    }
}

Test(reduce, matches_reference_on_random_shapes_with_axes_attribute) { random_trials(false); }

Test(reduce, matches_reference_on_random_shapes_with_axes_input) { random_trials(true); }

/* Shapes that exercise both layouts with several walked reduced dims, the
 * threaded path (>= 32768 elements, 4 threads) and a kept run long enough
 * to be split into strips across threads. */
Test(reduce, matches_reference_on_large_shapes_with_threads)
{
    static const struct {
        int rank;
        int64_t dims[4];
        bool mask[4];
    } shapes[] = {
        {3, {3, 50, 130}, {false, true, false}}, {4, {13, 7, 3, 70}, {true, false, true, false}},
        {3, {64, 40, 20}, {false, false, true}}, {3, {64, 40, 20}, {true, false, true}},
        {2, {300, 130}, {true, false}},          {4, {9, 10, 11, 40}, {true, true, true, true}},
        {2, {20, 5000}, {true, false}}, /* one kept run split into strips */
    };
    static float xs[20 * 5000];
    for (size_t sh = 0; sh < sizeof shapes / sizeof shapes[0]; sh++) {
        for (int o = 0; o < N_OPS; o++) {
            if (!strcmp(ops[o], "ReduceProd"))
                continue; /* thousands of factors: covered on small shapes */
            int64_t axes[4];
            size_t n_axes = 0, numel = 1;
            for (int k = 0; k < shapes[sh].rank; k++) {
                numel *= (size_t)shapes[sh].dims[k];
                if (shapes[sh].mask[k])
                    axes[n_axes++] = k;
            }
            fill_for(ops[o], xs, numel);
            reduce_case c = {.op = ops[o],
                             .axes_input = true,
                             .axes = axes,
                             .n_axes = n_axes,
                             .keepdims = 0,
                             .noop = -1,
                             .threads = 4};
            qkv_tensor y;
            qkv_error err;
            char what[96];
            snprintf(what, sizeof what, "%s shape %zu", ops[o], sh);
            cr_assert_eq(run_case(&c, kh_f32(shapes[sh].rank, shapes[sh].dims, xs), &y, &err),
                         QKV_OK, "%s: %s", what, err.message);
            check_against_ref(ops[o], xs, shapes[sh].dims, shapes[sh].rank, shapes[sh].mask, 0, &y,
                              what);
            kh_free_outputs(&y, 1);
        }
    }
}

Test(reduce, absent_or_empty_axes_reduce_everything_with_keepdims_default)
{
    float xs[6] = {1, 2, 3, 4, 5, 6};
    int64_t dims[2] = {2, 3};
    /* attribute form without axes; input form without the input; input form
     * with an empty axes tensor */
    reduce_case cases[] = {
        {.op = "ReduceSum", .axes_input = false, .n_axes = SIZE_MAX, .keepdims = -1, .noop = -1},
        {.op = "ReduceSum", .axes_input = true, .n_axes = SIZE_MAX, .keepdims = -1, .noop = -1},
        {.op = "ReduceSum", .axes_input = true, .n_axes = 0, .keepdims = -1, .noop = 0},
    };
    for (size_t i = 0; i < 3; i++) {
        qkv_tensor y;
        qkv_error err;
        cr_assert_eq(run_case(&cases[i], kh_f32(2, dims, xs), &y, &err), QKV_OK, "%s", err.message);
        cr_assert_eq(y.rank, 2, "case %zu", i);
        cr_assert(y.dims[0] == 1 && y.dims[1] == 1, "case %zu", i);
        cr_assert_float_eq(((float *)y.data)[0], 21.0f, 0, "case %zu", i);
        kh_free_outputs(&y, 1);
    }
}

Test(reduce, empty_axes_with_noop_copies_the_input)
{
    float xs[6] = {1, -2, 3, 4, 5, 6};
    int64_t dims[2] = {2, 3};
    reduce_case c = {.op = "ReduceMax", .axes_input = true, .n_axes = 0, .keepdims = 0, .noop = 1};
    qkv_tensor y;
    qkv_error err;
    cr_assert_eq(run_case(&c, kh_f32(2, dims, xs), &y, &err), QKV_OK, "%s", err.message);
    cr_assert_eq(y.rank, 2);
    cr_assert(y.dims[0] == 2 && y.dims[1] == 3);
    for (int i = 0; i < 6; i++)
        cr_assert_float_eq(((float *)y.data)[i], xs[i], 0);
    kh_free_outputs(&y, 1);
}

Test(reduce, scalar_input_reduces_to_itself)
{
    float xs[1] = {-3};
    reduce_case c = {
        .op = "ReduceL1", .axes_input = false, .n_axes = SIZE_MAX, .keepdims = 1, .noop = -1};
    qkv_tensor y;
    qkv_error err;
    cr_assert_eq(run_case(&c, kh_f32(0, NULL, xs), &y, &err), QKV_OK, "%s", err.message);
    cr_assert_eq(y.rank, 0);
    cr_assert_float_eq(((float *)y.data)[0], 3.0f, 0);
    kh_free_outputs(&y, 1);
}

/* numpy: sum 0, prod 1, max -inf, min +inf, mean NaN, L2 0, log-sum -inf,
 * log-sum-exp -inf over an empty set. */
Test(reduce, empty_set_gives_the_identity_of_each_op)
{
    static const struct {
        const char *op;
        float want;
    } cases[] = {
        {"ReduceSum", 0.0f},       {"ReduceProd", 1.0f},        {"ReduceMax", -INFINITY},
        {"ReduceMin", INFINITY},   {"ReduceMean", NAN},         {"ReduceL1", 0.0f},
        {"ReduceL2", 0.0f},        {"ReduceLogSum", -INFINITY}, {"ReduceLogSumExp", -INFINITY},
        {"ReduceSumSquare", 0.0f},
    };
    int64_t dims[3] = {2, 0, 3}, axes[1] = {1};
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        reduce_case c = {.op = cases[i].op,
                         .axes_input = false,
                         .axes = axes,
                         .n_axes = 1,
                         .keepdims = 1,
                         .noop = -1};
        qkv_tensor y;
        qkv_error err;
        float dummy[1];
        cr_assert_eq(run_case(&c, kh_f32(3, dims, dummy), &y, &err), QKV_OK, "%s: %s", cases[i].op,
                     err.message);
        cr_assert(y.rank == 3 && y.dims[0] == 2 && y.dims[1] == 1 && y.dims[2] == 3, "%s",
                  cases[i].op);
        for (int k = 0; k < 6; k++) {
            float got = ((float *)y.data)[k];
            if (isnan(cases[i].want))
                cr_assert(isnan(got), "%s: element %d is %g, expected NaN", cases[i].op, k, got);
            else
                cr_assert(got == cases[i].want, "%s: element %d is %g, expected %g", cases[i].op, k,
                          got, cases[i].want);
        }
        kh_free_outputs(&y, 1);
    }
}

Test(reduce, max_and_min_propagate_nan)
{
    float xs[8] = {1, NAN, 3, 4, 5, 6, NAN, -8};
    for (int layout = 0; layout < 2; layout++) {
        /* layout 0: rows of 4 (axis 1); layout 1: viewed as (4, 2), axis 0 */
        int64_t d[2] = {layout ? 4 : 2, layout ? 2 : 4};
        int64_t ax[1] = {layout ? 0 : 1};
        for (int mn = 0; mn < 2; mn++) {
            reduce_case c = {.op = mn ? "ReduceMin" : "ReduceMax",
                             .axes = ax,
                             .n_axes = 1,
                             .keepdims = 0,
                             .noop = -1};
            qkv_tensor y;
            qkv_error err;
            cr_assert_eq(run_case(&c, kh_f32(2, d, xs), &y, &err), QKV_OK, "%s", err.message);
            /* layout 0 rows {1,NaN,3,4} {5,6,NaN,-8}; layout 1 columns
             * {1,3,5,NaN} {NaN,4,6,-8}: every group holds a NaN */
            const float *g = y.data;
            cr_assert(isnan(g[0]) && isnan(g[1]), "%s layout %d: %g %g", c.op, layout, g[0], g[1]);
            kh_free_outputs(&y, 1);
        }
    }
}

Test(reduce, integer_types_reduce_exactly)
{
    qkv_error err;
    qkv_tensor y;
    /* int32 sum and truncating mean over axis 1 */
    int32_t a[6] = {1, 2, 4, -7, 5, -1};
    int64_t d23[2] = {2, 3}, ax1[1] = {1};
    reduce_case c = {.op = "ReduceSum", .axes = ax1, .n_axes = 1, .keepdims = 0, .noop = -1};
    cr_assert_eq(run_case(&c, kh_tensor(QKV_DTYPE_INT32, 2, d23, a), &y, &err), QKV_OK, "%s",
                 err.message);
    cr_assert_eq(y.dtype, QKV_DTYPE_INT32);
    cr_assert(((int32_t *)y.data)[0] == 7 && ((int32_t *)y.data)[1] == -3);
    kh_free_outputs(&y, 1);
    c.op = "ReduceMean";
    cr_assert_eq(run_case(&c, kh_tensor(QKV_DTYPE_INT32, 2, d23, a), &y, &err), QKV_OK, "%s",
                 err.message);
    cr_assert(((int32_t *)y.data)[0] == 2 && ((int32_t *)y.data)[1] == -1, "%d %d",
              ((int32_t *)y.data)[0], ((int32_t *)y.data)[1]);
    kh_free_outputs(&y, 1);
    /* int64 product beyond 2^53 stays exact */
    int64_t p[3] = {3037000493LL, 3037000453LL, 1};
    int64_t d3[1] = {3};
    c.op = "ReduceProd";
    c.axes = NULL;
    c.n_axes = SIZE_MAX;
    cr_assert_eq(run_case(&c, kh_tensor(QKV_DTYPE_INT64, 1, d3, p), &y, &err), QKV_OK, "%s",
                 err.message);
    cr_assert_eq(((int64_t *)y.data)[0], 3037000493LL * 3037000453LL);
    kh_free_outputs(&y, 1);
    /* int8 and uint8 max/min, bool max ("any") and min ("all") */
    int8_t i8[4] = {-5, 7, -128, 3};
    int64_t d4[1] = {4};
    c.op = "ReduceMin";
    cr_assert_eq(run_case(&c, kh_tensor(QKV_DTYPE_INT8, 1, d4, i8), &y, &err), QKV_OK, "%s",
                 err.message);
    cr_assert_eq(((int8_t *)y.data)[0], -128);
    kh_free_outputs(&y, 1);
    uint8_t u8[4] = {5, 255, 0, 3};
    c.op = "ReduceMax";
    cr_assert_eq(run_case(&c, kh_tensor(QKV_DTYPE_UINT8, 1, d4, u8), &y, &err), QKV_OK, "%s",
                 err.message);
    cr_assert_eq(((uint8_t *)y.data)[0], 255);
    kh_free_outputs(&y, 1);
    uint8_t bools[4] = {0, 1, 1, 1};
    cr_assert_eq(run_case(&c, kh_tensor(QKV_DTYPE_BOOL, 1, d4, bools), &y, &err), QKV_OK, "%s",
                 err.message);
    cr_assert_eq(y.dtype, QKV_DTYPE_BOOL);
    cr_assert_eq(((uint8_t *)y.data)[0], 1);
    kh_free_outputs(&y, 1);
    c.op = "ReduceMin";
    cr_assert_eq(run_case(&c, kh_tensor(QKV_DTYPE_BOOL, 1, d4, bools), &y, &err), QKV_OK, "%s",
                 err.message);
    cr_assert_eq(((uint8_t *)y.data)[0], 0);
    kh_free_outputs(&y, 1);
    /* int32 sum of squares and L2 (sqrt(9 + 16) = 5) */
    int32_t sq[2] = {3, -4};
    int64_t d2[1] = {2};
    c.op = "ReduceL2";
    cr_assert_eq(run_case(&c, kh_tensor(QKV_DTYPE_INT32, 1, d2, sq), &y, &err), QKV_OK, "%s",
                 err.message);
    cr_assert_eq(((int32_t *)y.data)[0], 5);
    kh_free_outputs(&y, 1);
}

Test(reduce, double_input_reduces_in_double)
{
    /* 1 + 1e-12 is lost in float (ulp 1.2e-7) but kept in double (ulp 2.2e-16) */
    double xs[2] = {1, 1e-12};
    int64_t d[1] = {2};
    reduce_case c = {.op = "ReduceSum", .n_axes = SIZE_MAX, .keepdims = 0, .noop = -1};
    qkv_tensor y;
    qkv_error err;
    cr_assert_eq(run_case(&c, kh_tensor(QKV_DTYPE_DOUBLE, 1, d, xs), &y, &err), QKV_OK, "%s",
                 err.message);
    cr_assert_eq(y.dtype, QKV_DTYPE_DOUBLE);
    cr_assert_eq(y.rank, 0);
    cr_assert_float_eq(((double *)y.data)[0], 1 + 1e-12, 1e-15);
    kh_free_outputs(&y, 1);
    c.op = "ReduceLogSumExp";
    double big[2] = {1000, 1000}; /* exp(1000) overflows: the max is subtracted first */
    d[0] = 2;
    cr_assert_eq(run_case(&c, kh_tensor(QKV_DTYPE_DOUBLE, 1, d, big), &y, &err), QKV_OK, "%s",
                 err.message);
    /* 1e-12: a few ulps of 1000.69 (log rounding) */
    cr_assert_float_eq(((double *)y.data)[0], 1000 + log(2.0), 1e-12);
    kh_free_outputs(&y, 1);
}

/* ---- inference without values ---------------------------------------------- */

Test(reduce, unknown_axes_value_gives_unknown_dims_keeping_rank_with_keepdims)
{
    qkv_tensor ins[2] = {kh_f32(3, (int64_t[]){2, 1, 4}, NULL), kh_i64(1, (int64_t[]){1}, NULL)};
    qkv_tensor y;
    qkv_error err;
    kh_node *keep = kh_node_create("ReduceMean", 18, 2, 1);
    kh_node *drop = kh_node_create("ReduceMean", 18, 2, 1);
    kh_attr_int(keep, "keepdims", 1);
    kh_attr_int(drop, "keepdims", 0);
    cr_assert_eq(kh_infer(keep, ins, &y, &err), QKV_OK, "%s", err.message);
    cr_assert_eq(y.rank, 3);
    cr_assert(y.dims[0] == -1 && y.dims[1] == 1 && y.dims[2] == -1);
    /* keepdims=0: one axis goes (the axes tensor has one element) */
    cr_assert_eq(kh_infer(drop, ins, &y, &err), QKV_OK, "%s", err.message);
    cr_assert_eq(y.rank, 2);
    cr_assert(y.dims[0] == -1 && y.dims[1] == -1);
    /* keepdims=0 and not even the axes count known: rank unknown */
    ins[1].rank = -1;
    cr_assert_eq(kh_infer(drop, ins, &y, &err), QKV_OK, "%s", err.message);
    cr_assert_eq(y.rank, -1);
    cr_assert_eq(y.dtype, QKV_DTYPE_FLOAT);
    kh_node_destroy(keep);
    kh_node_destroy(drop);
}

Test(reduce, empty_axes_tensor_is_known_without_its_value)
{
    qkv_tensor ins[2] = {kh_f32(2, (int64_t[]){2, 5}, NULL), kh_i64(1, (int64_t[]){0}, NULL)};
    qkv_tensor y;
    qkv_error err;
    kh_node *n = kh_node_create("ReduceSum", 13, 2, 1);
    kh_attr_int(n, "keepdims", 0);
    cr_assert_eq(kh_infer(n, ins, &y, &err), QKV_OK, "%s", err.message);
    cr_assert_eq(y.rank, 0);
    kh_node_destroy(n);
}

Test(reduce, unknown_input_rank_gives_unknown_rank)
{
    qkv_tensor x = kh_f32(0, NULL, NULL);
    x.rank = -1;
    qkv_tensor y;
    qkv_error err;
    kh_node *n = kh_node_create("ReduceMax", 13, 1, 1);
    kh_attr_int(n, "keepdims", 1);
    cr_assert_eq(kh_infer(n, &x, &y, &err), QKV_OK, "%s", err.message);
    cr_assert_eq(y.rank, -1);
    kh_node_destroy(n);
}

/* ---- errors ------------------------------------------------------------------- */

Test(reduce, refuses_axis_out_of_range)
{
    float xs[6] = {0};
    int64_t axes[1] = {3};
    reduce_case c = {.op = "ReduceSum",
                     .axes_input = true,
                     .axes = axes,
                     .n_axes = 1,
                     .keepdims = 1,
                     .noop = -1};
    qkv_tensor y;
    qkv_error err;
    cr_assert_eq(run_case(&c, kh_f32(3, (int64_t[]){1, 2, 3}, xs), &y, &err), QKV_ERR_SHAPE);
    cr_assert(strstr(err.message, "node 'test_node' (ReduceSum-13): axes[0]=3 is out of range "
                                  "for input 0 'data' of rank 3 (expected -3 to 2)"),
              "%s", err.message);
    axes[0] = -4;
    c.axes_input = false;
    c.op = "ReduceLogSumExp";
    cr_assert_eq(run_case(&c, kh_f32(3, (int64_t[]){1, 2, 3}, xs), &y, &err), QKV_ERR_SHAPE);
    cr_assert(strstr(err.message, "axes[0]=-4 is out of range"), "%s", err.message);
}

Test(reduce, refuses_duplicate_axes)
{
    float xs[6] = {0};
    int64_t axes[2] = {1, -2};
    reduce_case c = {.op = "ReduceMean", .axes = axes, .n_axes = 2, .keepdims = 1, .noop = -1};
    qkv_tensor y;
    qkv_error err;
    cr_assert_eq(run_case(&c, kh_f32(3, (int64_t[]){1, 2, 3}, xs), &y, &err),
                 QKV_ERR_INVALID_MODEL);
    cr_assert(strstr(err.message, "axes names axis 1 twice (axes[1]=-2)"), "%s", err.message);
}

Test(reduce, refuses_more_axes_than_a_tensor_has_dims)
{
    float xs[1] = {0};
    int64_t axes[13] = {0};
    reduce_case c = {.op = "ReduceProd", .axes = axes, .n_axes = 13, .keepdims = 1, .noop = -1};
    qkv_tensor y;
    qkv_error err;
    cr_assert_eq(run_case(&c, kh_f32(1, (int64_t[]){1}, xs), &y, &err), QKV_ERR_INVALID_MODEL);
    cr_assert(strstr(err.message, "attribute 'axes' has 13 entries"), "%s", err.message);
}

Test(reduce, refuses_bool_sum)
{
    uint8_t b[2] = {1, 0};
    reduce_case c = {.op = "ReduceSum", .n_axes = SIZE_MAX, .keepdims = 1, .noop = -1};
    qkv_tensor y;
    qkv_error err;
    cr_assert_eq(run_case(&c, kh_tensor(QKV_DTYPE_BOOL, 1, (int64_t[]){2}, b), &y, &err),
                 QKV_ERR_TYPE);
    cr_assert(strstr(err.message, "input 0 has type bool, not supported"), "%s", err.message);
}
