/* The random ops: seed behaviour, ranges, distributions (loose statistical
 * bounds, each many standard errors wide) and errors. */
#include <criterion/criterion.h>
#include <math.h>
#include <string.h>

#include "kernel_harness.h"

static qkv_status uniform(int64_t n, const float *seed, float lo, float hi, int64_t dtype,
                          qkv_tensor *y, qkv_error *err)
{
    kh_node *node = kh_node_create("RandomUniform", 1, 0, 1);
    kh_attr_ints(node, "shape", (int64_t[]){n}, 1);
    kh_attr_float(node, "low", lo);
    kh_attr_float(node, "high", hi);
    if (seed)
        kh_attr_float(node, "seed", *seed);
    if (dtype)
        kh_attr_int(node, "dtype", dtype);
    qkv_status st = kh_run(node, NULL, y, err);
    kh_node_destroy(node);
    return st;
}

Test(random, seeded_uniform_repeats_and_stays_in_range)
{
    enum { N = 10000 };
    float seed = 3;
    qkv_tensor a, b;
    qkv_error err;
    cr_assert_eq(uniform(N, &seed, -2, 5, 0, &a, &err), QKV_OK, "%s", err.message);
    cr_assert_eq(uniform(N, &seed, -2, 5, 0, &b, &err), QKV_OK, "%s", err.message);
    cr_assert_eq(a.dtype, QKV_DTYPE_FLOAT);
    cr_assert_eq(a.rank, 1);
    cr_assert_eq(a.dims[0], N);
    cr_assert_arr_eq(a.data, b.data, N * sizeof(float), "a seed gives the same values");
    double sum = 0;
    for (int i = 0; i < N; i++) {
        float v = ((float *)a.data)[i];
        cr_assert(v >= -2.0f && v < 5.0f, "[%d] %g", i, v);
        sum += v;
    }
    /* mean 1.5, sd of the mean 7/sqrt(12 N) = 0.02 */
    cr_assert(fabs(sum / N - 1.5) < 0.1, "mean %g", sum / N);
    kh_free_outputs(&a, 1);
    kh_free_outputs(&b, 1);
    float other = 4;
    cr_assert_eq(uniform(N, &other, -2, 5, 0, &b, &err), QKV_OK, "%s", err.message);
    cr_assert_eq(uniform(N, &seed, -2, 5, 0, &a, &err), QKV_OK, "%s", err.message);
    cr_assert(memcmp(a.data, b.data, N * sizeof(float)) != 0, "another seed, other values");
    kh_free_outputs(&a, 1);
    kh_free_outputs(&b, 1);
}

Test(random, unseeded_runs_differ)
{
    qkv_tensor a, b;
    qkv_error err;
    cr_assert_eq(uniform(64, NULL, 0, 1, 0, &a, &err), QKV_OK, "%s", err.message);
    cr_assert_eq(uniform(64, NULL, 0, 1, 0, &b, &err), QKV_OK, "%s", err.message);
    cr_assert(memcmp(a.data, b.data, 64 * sizeof(float)) != 0);
    kh_free_outputs(&a, 1);
    kh_free_outputs(&b, 1);
}

Test(random, narrow_float16_range_stays_below_high)
{
    /* [1, 1.0009): float16 has only 1.0 there; half the draws round to 1.00098 */
    enum { N = 2000 };
    float seed = 1;
    qkv_tensor a;
    qkv_error err;
    cr_assert_eq(uniform(N, &seed, 1.0f, 1.0009f, QKV_DTYPE_FLOAT16, &a, &err), QKV_OK, "%s",
                 err.message);
    cr_assert_eq(a.dtype, QKV_DTYPE_FLOAT16);
    for (int i = 0; i < N; i++)
        cr_assert_eq(((uint16_t *)a.data)[i], 0x3c00u, "[%d]", i);
    kh_free_outputs(&a, 1);
}

Test(random, normal_like_has_the_mean_and_scale)
{
    enum { N = 20000 };
    static double x[N];
    qkv_tensor in = kh_tensor(QKV_DTYPE_DOUBLE, 2, (int64_t[]){100, N / 100}, x), y;
    qkv_error err;
    kh_node *n = kh_node_create("RandomNormalLike", 1, 1, 1);
    kh_attr_float(n, "mean", 3);
    kh_attr_float(n, "scale", 2);
    kh_attr_float(n, "seed", 9);
    cr_assert_eq(kh_run(n, &in, &y, &err), QKV_OK, "%s", err.message);
    cr_assert_eq(y.dtype, QKV_DTYPE_DOUBLE);
    cr_assert_eq(y.rank, 2);
    double s = 0, s2 = 0;
    for (int i = 0; i < N; i++) {
        double v = ((double *)y.data)[i];
        s += v;
        s2 += v * v;
    }
    double mean = s / N, sd = sqrt(s2 / N - mean * mean);
    /* sd of the mean 2/sqrt(N) = 0.014; of the sd about 0.01 */
    cr_assert(fabs(mean - 3) < 0.1, "mean %g", mean);
    cr_assert(fabs(sd - 2) < 0.1, "sd %g", sd);
    kh_free_outputs(&y, 1);
    kh_node_destroy(n);
}

Test(random, bernoulli_follows_p)
{
    enum { N = 10000 };
    static float p[N];
    for (int i = 0; i < N; i++)
        p[i] = i % 3 == 0 ? 0.0f : i % 3 == 1 ? 1.0f : 0.25f;
    qkv_tensor in = kh_f32(1, (int64_t[]){N}, p), y;
    qkv_error err;
    kh_node *n = kh_node_create("Bernoulli", 15, 1, 1);
    kh_attr_int(n, "dtype", QKV_DTYPE_INT32);
    cr_assert_eq(kh_run(n, &in, &y, &err), QKV_OK, "%s", err.message);
    cr_assert_eq(y.dtype, QKV_DTYPE_INT32);
    int ones = 0, quarter = 0;
    for (int i = 0; i < N; i++) {
        int32_t v = ((int32_t *)y.data)[i];
        cr_assert(v == 0 || v == 1);
        if (i % 3 == 0)
            cr_assert_eq(v, 0, "p 0 at %d", i);
        if (i % 3 == 1)
            cr_assert_eq(v, 1, "p 1 at %d", i);
        if (i % 3 == 2) {
            ones += v;
            quarter++;
        }
    }
    /* 3333 draws of p 0.25: sd of the share 0.0075 */
    cr_assert(fabs((double)ones / quarter - 0.25) < 0.05, "share %g", (double)ones / quarter);
    kh_free_outputs(&y, 1);
    kh_node_destroy(n);
}

Test(random, multinomial_draws_by_probability)
{
    enum { S = 4000 };
    float logits[6] = {0, 0, -1000, 0, logf(3.0f), -1000}; /* row 1: 1/4 vs 3/4 */
    qkv_tensor in = kh_f32(2, (int64_t[]){2, 3}, logits), y;
    qkv_error err;
    kh_node *n = kh_node_create("Multinomial", 7, 1, 1);
    kh_attr_int(n, "sample_size", S);
    kh_attr_int(n, "dtype", QKV_DTYPE_INT64);
    kh_attr_float(n, "seed", 2);
    cr_assert_eq(kh_run(n, &in, &y, &err), QKV_OK, "%s", err.message);
    cr_assert_eq(y.dtype, QKV_DTYPE_INT64);
    cr_assert_eq(y.dims[0], 2);
    cr_assert_eq(y.dims[1], S);
    int ones = 0;
    for (int i = 0; i < S; i++) {
        int64_t a = ((int64_t *)y.data)[i], b = ((int64_t *)y.data)[S + i];
        cr_assert(a == 0 || a == 1, "row 0 [%d] %lld", i, (long long)a);
        cr_assert(b == 0 || b == 1, "row 1 [%d] %lld", i, (long long)b);
        ones += b == 1;
    }
    cr_assert(fabs((double)ones / S - 0.75) < 0.05, "share %g", (double)ones / S);
    kh_free_outputs(&y, 1);
    kh_node_destroy(n);
}

Test(random, errors_name_the_node)
{
    qkv_tensor y;
    qkv_error err;
    cr_assert_eq(uniform(4, NULL, 1, 1, 0, &y, &err), QKV_ERR_INVALID_MODEL);
    cr_assert(strstr(err.message, "test_node"), "%s", err.message);
    cr_assert(strstr(err.message, "expected low < high"), "%s", err.message);
    cr_assert_eq(uniform(4, NULL, 0, 1, QKV_DTYPE_INT32, &y, &err), QKV_ERR_INVALID_MODEL);
    cr_assert(strstr(err.message, "'dtype' is 6"), "%s", err.message);
    int32_t x[2] = {0};
    qkv_tensor in = kh_tensor(QKV_DTYPE_INT32, 1, (int64_t[]){2}, x);
    kh_node *n = kh_node_create("RandomUniformLike", 1, 1, 1);
    cr_assert_eq(kh_run(n, &in, &y, &err), QKV_ERR_TYPE);
    cr_assert(strstr(err.message, "the output must be a float type"), "%s", err.message);
    kh_node_destroy(n);
    n = kh_node_create("RandomNormal", 1, 0, 1);
    cr_assert_eq(kh_run(n, NULL, &y, &err), QKV_ERR_INVALID_MODEL);
    cr_assert(strstr(err.message, "'shape' is missing"), "%s", err.message);
    kh_node_destroy(n);
}
