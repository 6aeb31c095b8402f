/* Softmax and LogSoftmax: both axis semantics, stability, threads, errors. */
#include <criterion/criterion.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "kernel_harness.h"

/* Reference over the (outer, d, inner) view, in double. */
static void ref_softmax(const float *x, double *y, size_t outer, size_t d, size_t inner,
                        int log_out)
{
    for (size_t o = 0; o < outer; o++)
        for (size_t t = 0; t < inner; t++) {
            const float *xs = x + o * d * inner + t;
            double *ys = y + o * d * inner + t;
            double mx = -INFINITY, sum = 0;
            for (size_t p = 0; p < d; p++)
                mx = fmax(mx, xs[p * inner]);
            for (size_t p = 0; p < d; p++)
                sum += exp(xs[p * inner] - mx);
            for (size_t p = 0; p < d; p++)
                ys[p * inner] =
                    log_out ? (xs[p * inner] - mx) - log(sum) : exp(xs[p * inner] - mx) / sum;
        }
}

/* Runs op at opset with attribute axis (unless axis_set is 0) on random x
 * of the given shape, and checks against the reference over (outer, d,
 * inner). Returns y (free with kh_free_outputs). */
static qkv_tensor check_softmax(const char *op, int64_t opset, int axis_set, int64_t axis,
                                int32_t rank, const int64_t *dims, size_t outer, size_t d,
                                size_t inner, size_t threads)
{
    size_t n = outer * d * inner;
    float *x = malloc((n + 1) * sizeof *x);
    double *ref = malloc((n + 1) * sizeof *ref);
    kh_fill_random(x, n, 11);
    for (size_t i = 0; i < n; i++)
        x[i] *= 8; /* spread the values so exp matters */
    qkv_tensor in = kh_f32(rank, dims, x), y;
    qkv_error err;
    kh_node *node = kh_node_create(op, opset, 1, 1);
    if (axis_set)
        kh_attr_int(node, "axis", axis);
    kh_set_threads(node, threads);
    cr_assert_eq(kh_run(node, &in, &y, &err), QKV_OK, "%s", err.message);
    cr_assert_eq(y.rank, rank);
    for (int32_t i = 0; i < rank; i++)
        cr_assert_eq(y.dims[i], dims[i]);
    int log_out = strcmp(op, "LogSoftmax") == 0;
    ref_softmax(x, ref, outer, d, inner, log_out);
    /* expf/logf are within a few ulp: 1e-6 relative to the magnitude (up to
     * ~20 for log outputs here), plus a floor for values near 0 */
    const float *yv = y.data;
    for (size_t i = 0; i < n; i++)
        cr_assert(fabs(yv[i] - ref[i]) <= 1e-6 * (1 + fabs(ref[i])) + 1e-7,
                  "%s-%lld axis %lld: element %zu = %.9g, expected %.9g", op, (long long)opset,
                  (long long)axis, i, (double)yv[i], ref[i]);
    free(x);
    free(ref);
    kh_node_destroy(node);
    return y;
}

static void check(const char *op, int64_t opset, int64_t axis, int32_t rank, const int64_t *dims,
                  size_t outer, size_t d, size_t inner)
{
    qkv_tensor y = check_softmax(op, opset, 1, axis, rank, dims, outer, d, inner, 1);
    kh_free_outputs(&y, 1);
}

static const char *const ops[] = {"Softmax", "LogSoftmax"};

Test(softmax, opset_13_normalises_along_each_axis)
{
    const int64_t dims[3] = {3, 4, 5};
    for (int i = 0; i < 2; i++) {
        check(ops[i], 13, 0, 3, dims, 1, 3, 20);
        check(ops[i], 13, 1, 3, dims, 3, 4, 5);
        check(ops[i], 13, 2, 3, dims, 12, 5, 1);
        check(ops[i], 13, -1, 3, dims, 12, 5, 1);
        check(ops[i], 13, -2, 3, dims, 3, 4, 5);
        check(ops[i], 13, -3, 3, dims, 1, 3, 20);
    }
}

Test(softmax, opsets_1_and_11_flatten_at_axis)
{
    const int64_t dims[3] = {3, 4, 5};
    for (int i = 0; i < 2; i++)
        for (int64_t opset = 1; opset <= 11; opset += 10) {
            check(ops[i], opset, 0, 3, dims, 1, 60, 1);
            check(ops[i], opset, 1, 3, dims, 3, 20, 1);
            check(ops[i], opset, 2, 3, dims, 12, 5, 1);
            check(ops[i], opset, -2, 3, dims, 3, 20, 1);
            check(ops[i], opset, -1, 3, dims, 12, 5, 1);
            check(ops[i], opset, -3, 3, dims, 1, 60, 1);
            check(ops[i], opset, 3, 3, dims, 60, 1, 1); /* axis == rank: D = 1 */
        }
}

Test(softmax, default_axis_depends_on_opset)
{
    const int64_t dims[3] = {2, 3, 4};
    for (int i = 0; i < 2; i++) {
        qkv_tensor y = check_softmax(ops[i], 13, 0, 0, 3, dims, 6, 4, 1, 1); /* -1 */
        kh_free_outputs(&y, 1);
        y = check_softmax(ops[i], 11, 0, 0, 3, dims, 2, 12, 1, 1); /* 1, flattened */
        kh_free_outputs(&y, 1);
    }
}

Test(softmax, non_last_axis_with_several_tiles)
{
    /* inner = 150 is two full tiles of 64 and a partial one */
    const int64_t dims[3] = {2, 3, 150};
    for (int i = 0; i < 2; i++)
        check(ops[i], 13, 1, 3, dims, 2, 3, 150);
}

Test(softmax, one_dimensional_input)
{
    const int64_t dims[1] = {9};
    for (int i = 0; i < 2; i++) {
        check(ops[i], 13, 0, 1, dims, 1, 9, 1);
        check(ops[i], 11, 0, 1, dims, 1, 9, 1);
    }
}

/* Runs op-13 on the 2x4 rows {0,1,2,3} and {base..base+3}. */
static qkv_tensor run_rows(const char *op, float base)
{
    float x[8] = {0, 1, 2, 3, base, base + 1, base + 2, base + 3};
    qkv_tensor in = kh_f32(2, (int64_t[]){2, 4}, x), y;
    qkv_error err;
    kh_node *node = kh_node_create(op, 13, 1, 1);
    cr_assert_eq(kh_run(node, &in, &y, &err), QKV_OK, "%s", err.message);
    kh_node_destroy(node);
    return y;
}

Test(softmax, large_inputs_stay_finite)
{
    /* the ONNX reference values; 1e-6: a few float ulps */
    const float soft[4] = {0.032058604f, 0.08714432f, 0.23688284f, 0.6439143f};
    const float logs[4] = {-3.4401896f, -2.4401896f, -1.4401896f, -0.44018966f};
    qkv_tensor y = run_rows("Softmax", 10000);
    qkv_tensor ly = run_rows("LogSoftmax", 1000);
    for (int i = 0; i < 8; i++) {
        cr_assert_float_eq(((float *)y.data)[i], soft[i % 4], 1e-6, "softmax %d", i);
        cr_assert_float_eq(((float *)ly.data)[i], logs[i % 4], 1e-6, "logsoftmax %d", i);
    }
    kh_free_outputs(&y, 1);
    kh_free_outputs(&ly, 1);
}

Test(softmax, row_of_minus_infinity_gives_nan_like_numpy)
{
    for (int i = 0; i < 2; i++) {
        float x[4] = {-INFINITY, -INFINITY, 0, 1};
        qkv_tensor in = kh_f32(2, (int64_t[]){2, 2}, x), y;
        qkv_error err;
        kh_node *node = kh_node_create(ops[i], 13, 1, 1);
        cr_assert_eq(kh_run(node, &in, &y, &err), QKV_OK, "%s", err.message);
        const float *yv = y.data;
        cr_assert(isnan(yv[0]) && isnan(yv[1]), "%s: %g %g", ops[i], (double)yv[0], (double)yv[1]);
        cr_assert(!isnan(yv[2]) && !isnan(yv[3]), "%s: the other row is finite", ops[i]);
        kh_free_outputs(&y, 1);
        kh_node_destroy(node);
    }
}

Test(softmax, computes_double)
{
    double x[3] = {-1, 0, 1};
    /* 1e-12: double rounding of exp/log on three terms */
    const double want[3] = {0.09003057317038046, 0.24472847105479767, 0.6652409557748219};
    qkv_tensor in = kh_tensor(QKV_DTYPE_DOUBLE, 2, (int64_t[]){1, 3}, x), y;
    qkv_error err;
    kh_node *node = kh_node_create("Softmax", 13, 1, 1);
    cr_assert_eq(kh_run(node, &in, &y, &err), QKV_OK, "%s", err.message);
    cr_assert_eq(y.dtype, QKV_DTYPE_DOUBLE);
    for (int i = 0; i < 3; i++)
        cr_assert_float_eq(((double *)y.data)[i], want[i], 1e-12);
    kh_free_outputs(&y, 1);
    kh_node_destroy(node);
}

/* 1 and 3 threads compute each row/tile with the same code: bitwise equal. */
static void check_threads_agree(const char *op, int64_t axis, int32_t rank, const int64_t *dims,
                                size_t outer, size_t d, size_t inner)
{
    qkv_tensor y1 = check_softmax(op, 13, 1, axis, rank, dims, outer, d, inner, 1);
    qkv_tensor y3 = check_softmax(op, 13, 1, axis, rank, dims, outer, d, inner, 3);
    cr_assert_eq(y1.data_bytes, y3.data_bytes);
    cr_assert(memcmp(y1.data, y3.data, y1.data_bytes) == 0, "%s axis %lld differs", op,
              (long long)axis);
    kh_free_outputs(&y1, 1);
    kh_free_outputs(&y3, 1);
}

Test(softmax, threads_give_the_same_result)
{
    for (int i = 0; i < 2; i++) {
        check_threads_agree(ops[i], -1, 2, (int64_t[]){64, 1000}, 64, 1000, 1);
        check_threads_agree(ops[i], 1, 3, (int64_t[]){8, 50, 200}, 8, 50, 200);
    }
}

Test(softmax, infers_shape_without_values)
{
    float x[6] = {0};
    qkv_tensor in = kh_f32(2, (int64_t[]){2, 3}, x), y;
    qkv_error err;
    kh_node *node = kh_node_create("LogSoftmax", 13, 1, 1);
    kh_hide_input_values(node);
    cr_assert_eq(kh_run(node, &in, &y, &err), QKV_OK, "%s", err.message);
    cr_assert_eq(y.rank, 2);
    cr_assert_eq(y.dims[1], 3);
    kh_free_outputs(&y, 1);
    kh_node_destroy(node);
}

static void check_error(const char *op, int64_t opset, int64_t axis, qkv_tensor in, qkv_status want,
                        const char *msg)
{
    qkv_tensor y;
    qkv_error err;
    kh_node *node = kh_node_create(op, opset, 1, 1);
    kh_attr_int(node, "axis", axis);
    cr_assert_eq(kh_run(node, &in, &y, &err), want, "status %d: %s", (int)err.status, err.message);
    cr_assert(strstr(err.message, msg), "message: %s", err.message);
    kh_node_destroy(node);
}

Test(softmax, refuses_axis_out_of_range)
{
    float x[24] = {0};
    check_error("Softmax", 13, 3, kh_f32(3, (int64_t[]){2, 3, 4}, x), QKV_ERR_SHAPE,
                "node 'test_node' (Softmax-13): attribute axis=3 is out of range for input 0 "
                "'input' of rank 3 (expected -3 to 2)");
    check_error("LogSoftmax", 13, -4, kh_f32(3, (int64_t[]){2, 3, 4}, x), QKV_ERR_SHAPE,
                "(LogSoftmax-13): attribute axis=-4 is out of range");
    /* the flattening opsets accept axis == rank, not beyond */
    check_error("Softmax", 11, 4, kh_f32(3, (int64_t[]){2, 3, 4}, x), QKV_ERR_SHAPE,
                "(Softmax-11): attribute axis=4 is out of range for input 0 'input' of rank 3 "
                "(expected -3 to 3)");
}

Test(softmax, refuses_a_scalar_at_opset_13)
{
    float x[1] = {0};
    check_error("Softmax", 13, -1, kh_f32(0, NULL, x), QKV_ERR_SHAPE,
                "attribute axis=-1 is out of range for input 0 'input' of rank 0");
}

Test(softmax, refuses_integer_input)
{
    int64_t x[2] = {0};
    check_error("Softmax", 13, -1, kh_i64(1, (int64_t[]){2}, x), QKV_ERR_TYPE,
                "input 0 has type int64, not supported");
}
