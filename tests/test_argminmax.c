/* ArgMax/ArgMin: a reference loop on random shapes full of ties, NaN, types,
 * and errors. Indices are exact: every comparison is exact. */
#include <criterion/criterion.h>
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "kernel_harness.h"

static uint32_t rng_state = 777;
static uint32_t rnd(uint32_t n)
{
    rng_state ^= rng_state << 13;
    rng_state ^= rng_state >> 17;
    rng_state ^= rng_state << 5;
    return rng_state % n;
}

/* Index along `axis` of the extreme of each (outer, inner) lane; ties to
 * the first, or the last with `last`. */
static void ref_arg(bool is_max, bool last, const float *x, const int64_t *dims, int rank, int axis,
                    int64_t *y)
{
    size_t outer = 1, d = (size_t)dims[axis], inner = 1;
    for (int k = 0; k < axis; k++)
        outer *= (size_t)dims[k];
    for (int k = axis + 1; k < rank; k++)
        inner *= (size_t)dims[k];
    for (size_t o = 0; o < outer; o++)
        for (size_t j = 0; j < inner; j++) {
            size_t best = 0;
            for (size_t i = 1; i < d; i++) {
                float v = x[(o * d + i) * inner + j], b = x[(o * d + best) * inner + j];
                if (is_max ? (v > b || (last && v == b)) : (v < b || (last && v == b)))
                    best = i;
            }
            y[o * inner + j] = (int64_t)best;
        }
}

static qkv_status run_arg(const char *op, int64_t axis, int keepdims, int last, qkv_tensor x,
                          qkv_tensor *y, qkv_error *err, size_t threads)
{
    kh_node *n = kh_node_create(op, 13, 1, 1);
    if (axis != INT64_MIN)
        kh_attr_int(n, "axis", axis);
    if (keepdims >= 0)
        kh_attr_int(n, "keepdims", keepdims);
    if (last >= 0)
        kh_attr_int(n, "select_last_index", last);
    if (threads)
        kh_set_threads(n, threads);
    qkv_status st = kh_run(n, &x, y, err);
    kh_node_destroy(n);
    return st;
}

static void check(const char *op, int64_t axis_attr, int keepdims, int last, const float *xs,
                  const int64_t *dims, int rank, size_t threads, const char *what)
{
    int axis = (int)(axis_attr < 0 ? axis_attr + rank : axis_attr);
    static int64_t want[1 << 16];
    ref_arg(strcmp(op, "ArgMax") == 0, last == 1, xs, dims, rank, axis, want);
    qkv_tensor y;
    qkv_error err;
    cr_assert_eq(
        run_arg(op, axis_attr, keepdims, last, kh_f32(rank, dims, (float *)xs), &y, &err, threads),
        QKV_OK, "%s: %s", what, err.message);
    cr_assert_eq(y.dtype, QKV_DTYPE_INT64, "%s", what);
    int r = 0;
    size_t n = 1;
    for (int k = 0; k < rank; k++) {
        if (k == axis && keepdims == 0)
            continue;
        int64_t want_dim = k == axis ? 1 : dims[k];
        cr_assert_eq(y.dims[r], want_dim, "%s: dim %d", what, r);
        n *= (size_t)want_dim;
        r++;
    }
    cr_assert_eq(y.rank, r, "%s: rank %d, expected %d", what, y.rank, r);
    for (size_t i = 0; i < n; i++)
        cr_assert_eq(((int64_t *)y.data)[i], want[i], "%s: element %zu is %lld, expected %lld",
                     what, i, (long long)((int64_t *)y.data)[i], (long long)want[i]);
    kh_free_outputs(&y, 1);
}

Test(argminmax, matches_reference_with_ties_on_random_shapes)
{
    float xs[1024];
    for (int trial = 0; trial < 200; trial++) {
        int64_t dims[4];
        int rank = 1 + (int)rnd(4);
        size_t numel = 1;
        for (int k = 0; k < rank; k++) {
            dims[k] = 1 + rnd(5);
            numel *= (size_t)dims[k];
        }
        for (size_t i = 0; i < numel; i++)
            xs[i] = (float)rnd(3); /* values 0..2: ties everywhere */
        int64_t axis = (int64_t)rnd((uint32_t)rank) - (rnd(2) ? rank : 0);
        int keepdims = (int)rnd(2), last = (int)rnd(2);
        const char *op = trial % 2 ? "ArgMax" : "ArgMin";
        char what[96];
        snprintf(what, sizeof what, "%s trial %d axis %lld last %d", op, trial, (long long)axis,
                 last);
        check(op, axis, keepdims, last, xs, dims, rank, 0, what);
    }
}

/* enough elements for the threaded path, every axis; then one long inner
 * run (outer 1) split into strips across the threads */
Test(argminmax, matches_reference_on_large_shapes_with_threads)
{
    static float xs[40 * 30 * 100];
    kh_fill_random(xs, 40 * 30 * 100, 5);
    int64_t dims[3] = {40, 30, 100};
    for (int axis = 0; axis < 3; axis++)
        for (int last = 0; last < 2; last++) {
            check("ArgMax", axis, 1, last, xs, dims, 3, 4, "large ArgMax");
            check("ArgMin", axis, 0, last, xs, dims, 3, 4, "large ArgMin");
        }
    int64_t wide[2] = {10, 4000};
    for (int i = 0; i < 40000; i++)
        xs[i] = (float)(i % 7); /* ties */
    check("ArgMax", 0, 0, 1, xs, wide, 2, 4, "strips ArgMax");
    check("ArgMin", 0, 1, 0, xs, wide, 2, 4, "strips ArgMin");
}

Test(argminmax, defaults_are_axis_0_and_keepdims)
{
    float xs[4] = {2, 1, 3, 10};
    int64_t dims[2] = {2, 2};
    qkv_tensor y;
    qkv_error err;
    cr_assert_eq(run_arg("ArgMax", INT64_MIN, -1, -1, kh_f32(2, dims, xs), &y, &err, 0), QKV_OK,
                 "%s", err.message);
    cr_assert(y.rank == 2 && y.dims[0] == 1 && y.dims[1] == 2);
    cr_assert(((int64_t *)y.data)[0] == 1 && ((int64_t *)y.data)[1] == 1);
    kh_free_outputs(&y, 1);
}

Test(argminmax, nan_wins_first_or_last)
{
    float xs[5] = {1, NAN, 7, NAN, -3};
    int64_t dims[1] = {5};
    static const struct {
        const char *op;
        int last;
        int64_t want;
    } cases[] = {{"ArgMax", 0, 1}, {"ArgMax", 1, 3}, {"ArgMin", 0, 1}, {"ArgMin", 1, 3}};
    for (int i = 0; i < 4; i++) {
        qkv_tensor y;
        qkv_error err;
        cr_assert_eq(run_arg(cases[i].op, 0, 0, cases[i].last, kh_f32(1, dims, xs), &y, &err, 0),
                     QKV_OK, "%s", err.message);
        cr_assert_eq(((int64_t *)y.data)[0], cases[i].want, "%s last=%d: got %lld", cases[i].op,
                     cases[i].last, (long long)((int64_t *)y.data)[0]);
        kh_free_outputs(&y, 1);
    }
}

Test(argminmax, integer_inputs)
{
    int32_t a[6] = {5, -9, 5, 2, 2, 8};
    uint8_t b[6] = {200, 7, 255, 255, 0, 1};
    int64_t dims[2] = {2, 3};
    qkv_tensor y;
    qkv_error err;
    cr_assert_eq(run_arg("ArgMax", 1, 0, 1, kh_tensor(QKV_DTYPE_INT32, 2, dims, a), &y, &err, 0),
                 QKV_OK, "%s", err.message);
    cr_assert(((int64_t *)y.data)[0] == 2 && ((int64_t *)y.data)[1] == 2);
    kh_free_outputs(&y, 1);
    cr_assert_eq(run_arg("ArgMin", -1, 0, 0, kh_tensor(QKV_DTYPE_UINT8, 2, dims, b), &y, &err, 0),
                 QKV_OK, "%s", err.message);
    cr_assert(((int64_t *)y.data)[0] == 1 && ((int64_t *)y.data)[1] == 1);
    kh_free_outputs(&y, 1);
}

Test(argminmax, refuses_axis_out_of_range)
{
    float xs[6] = {0};
    int64_t dims[2] = {2, 3};
    qkv_tensor y;
    qkv_error err;
    cr_assert_eq(run_arg("ArgMax", 2, 1, 0, kh_f32(2, dims, xs), &y, &err, 0), QKV_ERR_SHAPE);
    cr_assert(strstr(err.message, "node 'test_node' (ArgMax-13): attribute axis=2 is out of "
                                  "range for input 0 'data' of rank 2 (expected -2 to 1)"),
              "%s", err.message);
    cr_assert_eq(run_arg("ArgMin", -3, 1, 0, kh_f32(2, dims, xs), &y, &err, 0), QKV_ERR_SHAPE);
    cr_assert(strstr(err.message, "attribute axis=-3 is out of range"), "%s", err.message);
}

Test(argminmax, refuses_an_empty_axis)
{
    float xs[1] = {0};
    int64_t dims[2] = {3, 0};
    qkv_tensor y;
    qkv_error err;
    cr_assert_eq(run_arg("ArgMin", 1, 1, 0, kh_f32(2, dims, xs), &y, &err, 0), QKV_ERR_SHAPE);
    cr_assert(strstr(err.message, "input 0 'data' has size 0 on axis 1: no smallest index"), "%s",
              err.message);
}

Test(argminmax, refuses_bool_input)
{
    uint8_t b[2] = {0, 1};
    qkv_tensor y;
    qkv_error err;
    cr_assert_eq(
        run_arg("ArgMax", 0, 1, 0, kh_tensor(QKV_DTYPE_BOOL, 1, (int64_t[]){2}, b), &y, &err, 0),
        QKV_ERR_TYPE);
    cr_assert(strstr(err.message, "input 0 has type bool, not supported"), "%s", err.message);
}
