/* Trilu: a reference loop (numpy triu/tril) on random batched shapes and
 * diagonals, extreme k, types, threads, and errors. Results are exact. */
#include <criterion/criterion.h>
#include <stdio.h>
#include <string.h>

#include "kernel_harness.h"

static uint32_t rng_state = 99;
static uint32_t rnd(uint32_t n)
{
    rng_state ^= rng_state << 13;
    rng_state ^= rng_state >> 17;
    rng_state ^= rng_state << 5;
    return rng_state % n;
}

/* k_present false: no k input */
static qkv_status run_trilu(int upper, bool k_present, int64_t k, qkv_tensor x, qkv_tensor *y,
                            qkv_error *err, size_t threads)
{
    kh_node *n = kh_node_create("Trilu", 14, k_present ? 2 : 1, 1);
    if (upper >= 0)
        kh_attr_int(n, "upper", upper);
    if (threads)
        kh_set_threads(n, threads);
    qkv_tensor ins[2] = {x, kh_i64(0, NULL, &k)};
    qkv_status st = kh_run(n, ins, y, err);
    kh_node_destroy(n);
    return st;
}

/* numpy: triu keeps j - i >= k, tril keeps j - i <= k */
static void check(const float *xs, const int64_t *dims, int rank, int upper, int64_t k,
                  const qkv_tensor *y, const char *what)
{
    size_t n = (size_t)dims[rank - 2], m = (size_t)dims[rank - 1], total = 1;
    for (int d = 0; d < rank; d++)
        total *= (size_t)dims[d];
    cr_assert_eq(y->rank, rank, "%s", what);
    for (size_t e = 0; e < total; e++) {
        int64_t i = (int64_t)((e / m) % n), j = (int64_t)(e % m);
        bool keep = upper ? j - i >= k : j - i <= k;
        float want = keep ? xs[e] : 0.0f;
        cr_assert_eq(((float *)y->data)[e], want, "%s: element %zu (row %lld col %lld)", what, e,
                     (long long)i, (long long)j);
    }
}

Test(trilu, matches_reference_on_random_batched_shapes)
{
    float xs[4 * 5 * 6 * 7];
    for (int trial = 0; trial < 150; trial++) {
        int rank = 2 + (int)rnd(3);
        int64_t dims[4];
        size_t total = 1;
        for (int d = 0; d < rank; d++) {
            dims[d] = 1 + rnd(d >= rank - 2 ? 7 : 3);
            total *= (size_t)dims[d];
        }
        kh_fill_random(xs, total, rnd(100) + 1);
        int upper = (int)rnd(2);
        bool k_present = trial % 5 != 0;
        int64_t k = k_present ? (int64_t)rnd(17) - 8 : 0;
        qkv_tensor y;
        qkv_error err;
        char what[64];
        snprintf(what, sizeof what, "trial %d upper %d k %lld", trial, upper, (long long)k);
        cr_assert_eq(run_trilu(upper, k_present, k, kh_f32(rank, dims, xs), &y, &err, 0), QKV_OK,
                     "%s: %s", what, err.message);
        check(xs, dims, rank, upper, k, &y, what);
        kh_free_outputs(&y, 1);
    }
}

Test(trilu, upper_is_the_default)
{
    float xs[4] = {1, 2, 3, 4};
    int64_t dims[2] = {2, 2};
    qkv_tensor y;
    qkv_error err;
    cr_assert_eq(run_trilu(-1, false, 0, kh_f32(2, dims, xs), &y, &err, 0), QKV_OK, "%s",
                 err.message);
    check(xs, dims, 2, 1, 0, &y, "default");
    kh_free_outputs(&y, 1);
}

Test(trilu, extreme_k_keeps_or_zeroes_everything)
{
    float xs[12];
    kh_fill_random(xs, 12, 3);
    int64_t dims[2] = {3, 4};
    int64_t ks[2] = {INT64_MAX, INT64_MIN};
    for (int upper = 0; upper < 2; upper++)
        for (int i = 0; i < 2; i++) {
            qkv_tensor y;
            qkv_error err;
            cr_assert_eq(run_trilu(upper, true, ks[i], kh_f32(2, dims, xs), &y, &err, 0), QKV_OK,
                         "%s", err.message);
            check(xs, dims, 2, upper, ks[i], &y, "extreme k");
            kh_free_outputs(&y, 1);
        }
}

Test(trilu, integer_elements_and_empty_matrices)
{
    int64_t a[6] = {1, 2, 3, 4, 5, 6};
    qkv_tensor y;
    qkv_error err;
    cr_assert_eq(
        run_trilu(0, true, -1, kh_tensor(QKV_DTYPE_INT64, 2, (int64_t[]){3, 2}, a), &y, &err, 0),
        QKV_OK, "%s", err.message);
    int64_t want[6] = {0, 0, 3, 0, 5, 6};
    for (int i = 0; i < 6; i++)
        cr_assert_eq(((int64_t *)y.data)[i], want[i], "element %d", i);
    kh_free_outputs(&y, 1);
    float dummy[1];
    cr_assert_eq(run_trilu(1, true, 6, kh_f32(3, (int64_t[]){3, 0, 5}, dummy), &y, &err, 0), QKV_OK,
                 "%s", err.message);
    cr_assert(y.rank == 3 && y.dims[1] == 0);
    kh_free_outputs(&y, 1);
}

Test(trilu, large_batch_on_threads)
{
    static float xs[8 * 100 * 90];
    kh_fill_random(xs, 8 * 100 * 90, 21);
    int64_t dims[3] = {8, 100, 90};
    qkv_tensor y;
    qkv_error err;
    cr_assert_eq(run_trilu(0, true, 3, kh_f32(3, dims, xs), &y, &err, 4), QKV_OK, "%s",
                 err.message);
    check(xs, dims, 3, 0, 3, &y, "threads");
    kh_free_outputs(&y, 1);
}

Test(trilu, refuses_rank_below_2)
{
    float xs[3] = {0};
    qkv_tensor y;
    qkv_error err;
    cr_assert_eq(run_trilu(1, false, 0, kh_f32(1, (int64_t[]){3}, xs), &y, &err, 0), QKV_ERR_SHAPE);
    cr_assert(strstr(err.message, "node 'test_node' (Trilu-14): input 0 'input' has rank 1, "
                                  "expected >= 2"),
              "%s", err.message);
}

Test(trilu, refuses_k_with_several_elements)
{
    float xs[4] = {0};
    int64_t ks[2] = {1, 2};
    kh_node *n = kh_node_create("Trilu", 14, 2, 1);
    qkv_tensor ins[2] = {kh_f32(2, (int64_t[]){2, 2}, xs), kh_i64(1, (int64_t[]){2}, ks)};
    qkv_tensor y;
    qkv_error err;
    cr_assert_eq(kh_run(n, ins, &y, &err), QKV_ERR_SHAPE);
    cr_assert(strstr(err.message, "input 1 'k' has 2 elements, expected 1"), "%s", err.message);
    kh_node_destroy(n);
}
