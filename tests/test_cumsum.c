/* CumSum: a sequential float reference (numpy's order, so results must be
 * bit-identical) on random shapes and axes with exclusive/reverse, int and
 * double types, threads, and errors. */
#include <criterion/criterion.h>
#include <stdio.h>
#include <string.h>

#include "kernel_harness.h"

static uint32_t rng_state = 31337;
static uint32_t rnd(uint32_t n)
{
    rng_state ^= rng_state << 13;
    rng_state ^= rng_state >> 17;
    rng_state ^= rng_state << 5;
    return rng_state % n;
}

static qkv_status run_cumsum(qkv_tensor x, qkv_tensor axis, int exclusive, int reverse,
                             qkv_tensor *y, qkv_error *err, size_t threads)
{
    kh_node *n = kh_node_create("CumSum", 14, 2, 1);
    if (exclusive >= 0)
        kh_attr_int(n, "exclusive", exclusive);
    if (reverse >= 0)
        kh_attr_int(n, "reverse", reverse);
    if (threads)
        kh_set_threads(n, threads);
    qkv_tensor ins[2] = {x, axis};
    qkv_status st = kh_run(n, ins, y, err);
    kh_node_destroy(n);
    return st;
}

/* Running sums in float, element by element along the axis as numpy does. */
static void ref_cumsum(const float *x, const int64_t *dims, int rank, int axis, bool exclusive,
                       bool reverse, float *y)
{
    size_t outer = 1, d = (size_t)dims[axis], inner = 1;
    for (int k = 0; k < axis; k++)
        outer *= (size_t)dims[k];
    for (int k = axis + 1; k < rank; k++)
        inner *= (size_t)dims[k];
    for (size_t o = 0; o < outer; o++)
        for (size_t j = 0; j < inner; j++) {
            float acc = 0;
            for (size_t s = 0; s < d; s++) {
                size_t p = reverse ? d - 1 - s : s;
                size_t e = (o * d + p) * inner + j;
                if (exclusive) {
                    y[e] = acc;
                    acc += x[e];
                } else {
                    acc += x[e];
                    y[e] = acc;
                }
            }
        }
}

static void check(const float *xs, const int64_t *dims, int rank, int64_t axis_v, int exclusive,
                  int reverse, size_t threads, const char *what)
{
    static float want[3 * 5 * 2100];
    int axis = (int)(axis_v < 0 ? axis_v + rank : axis_v);
    ref_cumsum(xs, dims, rank, axis, exclusive == 1, reverse == 1, want);
    qkv_tensor y;
    qkv_error err;
    cr_assert_eq(run_cumsum(kh_f32(rank, dims, (float *)xs), kh_i64(0, NULL, &axis_v), exclusive,
                            reverse, &y, &err, threads),
                 QKV_OK, "%s: %s", what, err.message);
    cr_assert_eq(y.rank, rank, "%s", what);
    size_t total = 1;
    for (int k = 0; k < rank; k++) {
        cr_assert_eq(y.dims[k], dims[k], "%s", what);
        total *= (size_t)dims[k];
    }
    for (size_t i = 0; i < total; i++)
        cr_assert_eq(((float *)y.data)[i], want[i], "%s: element %zu is %.9g, expected %.9g", what,
                     i, ((float *)y.data)[i], want[i]);
    kh_free_outputs(&y, 1);
}

Test(cumsum, matches_sequential_reference_on_random_shapes)
{
    float xs[1024];
    for (int trial = 0; trial < 160; trial++) {
        int rank = 1 + (int)rnd(4);
        int64_t dims[4];
        size_t total = 1;
        for (int k = 0; k < rank; k++) {
            dims[k] = 1 + rnd(5);
            total *= (size_t)dims[k];
        }
        kh_fill_random(xs, total, rnd(1000) + 1);
        int64_t axis = (int64_t)rnd((uint32_t)rank) - (rnd(2) ? rank : 0);
        int exclusive = (int)rnd(2), reverse = (int)rnd(2);
        char what[80];
        snprintf(what, sizeof what, "trial %d axis %lld excl %d rev %d", trial, (long long)axis,
                 exclusive, reverse);
        check(xs, dims, rank, axis, exclusive, reverse, 0, what);
    }
}

/* several inner strips (> 1024) and the threaded path */
Test(cumsum, large_shapes_on_threads)
{
    static float xs[3 * 5 * 2100];
    kh_fill_random(xs, 3 * 5 * 2100, 17);
    int64_t dims[3] = {3, 5, 2100};
    for (int axis = 0; axis < 3; axis++)
        for (int mode = 0; mode < 4; mode++)
            check(xs, dims, 3, axis, mode & 1, mode >> 1, 4, "threads");
}

Test(cumsum, one_d_examples_from_the_spec)
{
    double xs[5] = {1, 2, 3, 4, 5};
    static const struct {
        int exclusive, reverse;
        double want[5];
    } cases[] = {{-1, -1, {1, 3, 6, 10, 15}},
                 {1, 0, {0, 1, 3, 6, 10}},
                 {0, 1, {15, 14, 12, 9, 5}},
                 {1, 1, {14, 12, 9, 5, 0}}};
    int32_t axis = 0;
    for (int c = 0; c < 4; c++) {
        qkv_tensor y;
        qkv_error err;
        cr_assert_eq(run_cumsum(kh_tensor(QKV_DTYPE_DOUBLE, 1, (int64_t[]){5}, xs),
                                kh_tensor(QKV_DTYPE_INT32, 0, NULL, &axis), cases[c].exclusive,
                                cases[c].reverse, &y, &err, 0),
                     QKV_OK, "%s", err.message);
        cr_assert_eq(y.dtype, QKV_DTYPE_DOUBLE);
        for (int i = 0; i < 5; i++)
            cr_assert_eq(((double *)y.data)[i], cases[c].want[i], "case %d element %d", c, i);
        kh_free_outputs(&y, 1);
    }
}

Test(cumsum, integers_sum_exactly_and_wrap)
{
    int64_t a[4] = {INT64_MAX, 1, 5, -7};
    int32_t b[3] = {INT32_MAX, 1, 1};
    int64_t axis = 0;
    qkv_tensor y;
    qkv_error err;
    cr_assert_eq(run_cumsum(kh_tensor(QKV_DTYPE_INT64, 1, (int64_t[]){4}, a),
                            kh_i64(1, (int64_t[]){1}, &axis), 0, 1, &y, &err, 0),
                 QKV_OK, "%s", err.message);
    /* reversed: -7, -2, -1, then INT64_MAX - 1 */
    int64_t want[4] = {INT64_MAX - 1, -1, -2, -7};
    for (int i = 0; i < 4; i++)
        cr_assert_eq(((int64_t *)y.data)[i], want[i], "element %d", i);
    kh_free_outputs(&y, 1);
    cr_assert_eq(run_cumsum(kh_tensor(QKV_DTYPE_INT32, 1, (int64_t[]){3}, b),
                            kh_i64(0, NULL, &axis), 0, 0, &y, &err, 0),
                 QKV_OK, "%s", err.message);
    cr_assert_eq(((int32_t *)y.data)[1], INT32_MIN); /* wraps like two's complement */
    cr_assert_eq(((int32_t *)y.data)[2], INT32_MIN + 1);
    kh_free_outputs(&y, 1);
}

Test(cumsum, refuses_axis_out_of_range)
{
    float xs[6] = {0};
    int64_t axis = 2;
    qkv_tensor y;
    qkv_error err;
    cr_assert_eq(
        run_cumsum(kh_f32(2, (int64_t[]){2, 3}, xs), kh_i64(0, NULL, &axis), 0, 0, &y, &err, 0),
        QKV_ERR_SHAPE);
    cr_assert(strstr(err.message, "node 'test_node' (CumSum-14): input 1 'axis' is 2, out of "
                                  "range for input 0 'x' of rank 2 (expected -2 to 1)"),
              "%s", err.message);
}

Test(cumsum, refuses_axis_with_several_elements)
{
    float xs[6] = {0};
    int64_t axis[2] = {0, 1};
    qkv_tensor y;
    qkv_error err;
    cr_assert_eq(run_cumsum(kh_f32(2, (int64_t[]){2, 3}, xs), kh_i64(1, (int64_t[]){2}, axis), 0, 0,
                            &y, &err, 0),
                 QKV_ERR_SHAPE);
    cr_assert(strstr(err.message, "input 1 'axis' has rank 1 and 2 elements, expected one "
                                  "element"),
              "%s", err.message);
}

Test(cumsum, refuses_int8_input)
{
    int8_t xs[2] = {1, 2};
    int64_t axis = 0;
    qkv_tensor y;
    qkv_error err;
    cr_assert_eq(run_cumsum(kh_tensor(QKV_DTYPE_INT8, 1, (int64_t[]){2}, xs),
                            kh_i64(0, NULL, &axis), 0, 0, &y, &err, 0),
                 QKV_ERR_TYPE);
    cr_assert(strstr(err.message, "input 0 has type int8, not supported"), "%s", err.message);
}
