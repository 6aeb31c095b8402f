/* MatMul: numpy semantics against a reference loop, threads, errors. */
#include <criterion/criterion.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "kernel_harness.h"

/* A float32 dot product of K terms in [-1, 1) is off the exact value by at
 * most about K * 2^-24 per term: 2e-7 * K (plus a floor) bounds that. */
static double tol_for_k(int64_t k) { return 2e-7 * (double)k + 1e-6; }

/* Reference: numpy matmul of a (ra dims) and b (rb dims), in double, into
 * out (dims written to out_dims, rank returned; out NULL: dims only). */
static int32_t ref_matmul(const float *a, int32_t ra, const int64_t *ad, const float *b, int32_t rb,
                          const int64_t *bd, double *out, int64_t *out_dims)
{
    /* promote to >= 2-D */
    int64_t pa[QKV_MAX_RANK + 1], pb[QKV_MAX_RANK + 1];
    int32_t pra = ra, prb = rb;
    if (ra == 1) {
        pa[0] = 1;
        pa[1] = ad[0];
        pra = 2;
    } else {
        memcpy(pa, ad, (size_t)ra * sizeof *ad);
    }
    if (rb == 1) {
        pb[0] = bd[0];
        pb[1] = 1;
        prb = 2;
    } else {
        memcpy(pb, bd, (size_t)rb * sizeof *bd);
    }
    int64_t m = pa[pra - 2], k = pa[pra - 1], n = pb[prb - 1];
    int32_t nb = (pra > prb ? pra : prb) - 2;
    int64_t bdims[QKV_MAX_RANK];
    int64_t nbatch = 1;
    for (int32_t j = 0; j < nb; j++) {
        int32_t ja = j - (nb - (pra - 2)), jb = j - (nb - (prb - 2));
        int64_t da = ja >= 0 ? pa[ja] : 1, db = jb >= 0 ? pb[jb] : 1;
        bdims[j] = da == 1 ? db : da;
        nbatch *= bdims[j];
    }
    for (int64_t bi = 0; out && bi < nbatch; bi++) {
        /* batch offsets by index math */
        int64_t rem = bi, oa = 0, ob = 0, sa = m * k, sb = k * n;
        for (int32_t j = nb - 1; j >= 0; j--) {
            int64_t c = rem % bdims[j];
            rem /= bdims[j];
            int32_t ja = j - (nb - (pra - 2)), jb = j - (nb - (prb - 2));
            int64_t da = ja >= 0 ? pa[ja] : 1, db = jb >= 0 ? pb[jb] : 1;
            if (da != 1)
                oa += c * sa;
            if (db != 1)
                ob += c * sb;
            sa *= da;
            sb *= db;
        }
        for (int64_t i = 0; i < m; i++)
            for (int64_t j = 0; j < n; j++) {
                double s = 0;
                for (int64_t p = 0; p < k; p++)
                    s += (double)a[oa + i * k + p] * (double)b[ob + p * n + j];
                out[bi * m * n + i * n + j] = s;
            }
    }
    int32_t r = 0;
    for (int32_t j = 0; j < nb; j++)
        out_dims[r++] = bdims[j];
    if (ra >= 2)
        out_dims[r++] = m;
    if (rb >= 2)
        out_dims[r++] = n;
    return r;
}

static size_t numel(int32_t r, const int64_t *d)
{
    size_t n = 1;
    for (int32_t i = 0; i < r; i++)
        n *= (size_t)d[i];
    return n;
}

/* Runs MatMul-13 on random a, b of the given shapes with `threads` threads,
 * checks shape and values against ref_matmul; returns the output (caller
 * frees with kh_free_outputs). */
static qkv_tensor check_matmul(int32_t ra, const int64_t *ad, int32_t rb, const int64_t *bd,
                               size_t threads, uint32_t seed)
{
    size_t na = numel(ra, ad), nbe = numel(rb, bd);
    float *a = malloc((na + 1) * sizeof *a), *b = malloc((nbe + 1) * sizeof *b);
    cr_assert(a && b);
    kh_fill_random(a, na, seed);
    kh_fill_random(b, nbe, seed + 7);
    qkv_tensor in[2] = {kh_f32(ra, ad, a), kh_f32(rb, bd, b)}, y;
    qkv_error err;
    kh_node *n = kh_node_create("MatMul", 13, 2, 1);
    kh_set_threads(n, threads);
    cr_assert_eq(kh_run(n, in, &y, &err), QKV_OK, "%s", err.message);
    int64_t rd[QKV_MAX_RANK];
    int32_t rr = ref_matmul(a, ra, ad, b, rb, bd, NULL, rd);
    double *ref = malloc((numel(rr, rd) + 1) * sizeof *ref);
    cr_assert(ref);
    ref_matmul(a, ra, ad, b, rb, bd, ref, rd);
    cr_assert_eq(y.rank, rr, "rank %d, expected %d", y.rank, rr);
    for (int32_t i = 0; i < rr; i++)
        cr_assert_eq(y.dims[i], rd[i], "dim %d: %lld, expected %lld", i, (long long)y.dims[i],
                     (long long)rd[i]);
    int64_t k = ad[ra - 1];
    const float *yv = y.data;
    for (size_t i = 0; i < numel(rr, rd); i++)
        cr_assert(fabs(yv[i] - ref[i]) <= tol_for_k(k), "element %zu: %g, expected %g", i,
                  (double)yv[i], ref[i]);
    free(ref);
    free(a);
    free(b);
    kh_node_destroy(n);
    return y;
}

static void check_shapes(int32_t ra, const int64_t *ad, int32_t rb, const int64_t *bd)
{
    qkv_tensor y = check_matmul(ra, ad, rb, bd, 1, 42);
    kh_free_outputs(&y, 1);
}

Test(matmul, multiplies_2d) { check_shapes(2, (int64_t[]){3, 4}, 2, (int64_t[]){4, 5}); }

Test(matmul, promotes_1d_a_and_drops_its_row_dim)
{
    check_shapes(1, (int64_t[]){4}, 2, (int64_t[]){4, 5});
}

Test(matmul, promotes_1d_b_and_drops_its_column_dim)
{
    check_shapes(2, (int64_t[]){3, 4}, 1, (int64_t[]){4});
}

Test(matmul, two_vectors_give_a_scalar) { check_shapes(1, (int64_t[]){7}, 1, (int64_t[]){7}); }

Test(matmul, 1d_a_times_batched_b) { check_shapes(1, (int64_t[]){4}, 3, (int64_t[]){2, 4, 5}); }

Test(matmul, batched_a_times_1d_b) { check_shapes(3, (int64_t[]){2, 3, 4}, 1, (int64_t[]){4}); }

Test(matmul, folds_batch_when_b_is_shared)
{
    check_shapes(3, (int64_t[]){2, 3, 4}, 2, (int64_t[]){4, 5});
    check_shapes(4, (int64_t[]){2, 3, 5, 4}, 4, (int64_t[]){1, 1, 4, 6});
}

Test(matmul, broadcasts_batch_dims_both_ways)
{
    check_shapes(4, (int64_t[]){2, 1, 3, 4}, 3, (int64_t[]){5, 4, 6});
    check_shapes(2, (int64_t[]){3, 4}, 3, (int64_t[]){2, 4, 5});
    check_shapes(3, (int64_t[]){1, 3, 4}, 3, (int64_t[]){3, 4, 2});
}

Test(matmul, empty_inner_dim_gives_zeros)
{
    float a[1], b[1];
    qkv_tensor in[2] = {kh_f32(2, (int64_t[]){2, 0}, a), kh_f32(2, (int64_t[]){0, 3}, b)}, y;
    qkv_error err;
    kh_node *n = kh_node_create("MatMul", 13, 2, 1);
    cr_assert_eq(kh_run(n, in, &y, &err), QKV_OK, "%s", err.message);
    cr_assert_eq(y.rank, 2);
    cr_assert_eq(y.dims[0], 2);
    cr_assert_eq(y.dims[1], 3);
    for (int i = 0; i < 6; i++)
        cr_assert_eq(((float *)y.data)[i], 0.0f);
    kh_free_outputs(&y, 1);
    kh_node_destroy(n);
}

Test(matmul, empty_batch_gives_empty_output)
{
    check_shapes(3, (int64_t[]){0, 3, 4}, 3, (int64_t[]){1, 4, 5});
}

Test(matmul, random_shapes_match_reference)
{
    uint32_t s = 12345;
    for (int iter = 0; iter < 200; iter++) {
        int64_t ad[5], bd[5];
        s = s * 1103515245u + 12345u;
        int32_t ra = 1 + (int32_t)((s >> 16) % 4), rb = 1 + (int32_t)((s >> 20) % 4);
        s = s * 1103515245u + 12345u;
        int64_t k = 1 + (s >> 16) % 9;
        int32_t nb = (ra > rb ? ra : rb) - 2;
        for (int32_t j = 0; j < ra; j++) {
            s = s * 1103515245u + 12345u;
            ad[j] = 1 + (s >> 16) % 4;
        }
        for (int32_t j = 0; j < rb; j++) {
            s = s * 1103515245u + 12345u;
            bd[j] = 1 + (s >> 16) % 4;
        }
        /* make batch dims compatible: where both exist, copy or use 1 */
        for (int32_t j = 0; j < nb; j++) {
            int32_t ja = j - (nb - (ra - 2)), jb = j - (nb - (rb - 2));
            if (ja >= 0 && jb >= 0 && ad[ja] != bd[jb]) {
                s = s * 1103515245u + 12345u;
                if ((s >> 16) % 2)
                    ad[ja] = 1;
                else
                    bd[jb] = ad[ja];
            }
        }
        ad[ra - 1] = k;
        bd[rb >= 2 ? rb - 2 : 0] = k;
        qkv_tensor y = check_matmul(ra, ad, rb, bd, 1, (uint32_t)iter + 1);
        kh_free_outputs(&y, 1);
    }
}

/* Runs the same product on 1 and 3 threads: both match the reference, and
 * each other to within float rounding (OpenBLAS may pick a different
 * micro-kernel for a block's edge, so bitwise equality is not promised). */
static void check_threads_agree(int32_t ra, const int64_t *ad, int32_t rb, const int64_t *bd)
{
    qkv_tensor y1 = check_matmul(ra, ad, rb, bd, 1, 99);
    qkv_tensor y3 = check_matmul(ra, ad, rb, bd, 3, 99);
    cr_assert_eq(y1.data_bytes, y3.data_bytes);
    const float *p1 = y1.data, *p3 = y3.data;
    for (size_t i = 0; i < y1.data_bytes / sizeof(float); i++)
        cr_assert(fabsf(p1[i] - p3[i]) <= 1e-5f * (1 + fabsf(p1[i])), "element %zu: %g vs %g", i,
                  (double)p1[i], (double)p3[i]);
    kh_free_outputs(&y1, 1);
    kh_free_outputs(&y3, 1);
}

Test(matmul, threads_split_rows_of_one_big_gemm)
{
    /* folded: M = 4 * 64 rows, split into row blocks */
    check_threads_agree(3, (int64_t[]){4, 64, 96}, 2, (int64_t[]){96, 80});
}

Test(matmul, threads_split_columns_when_m_is_one)
{
    check_threads_agree(1, (int64_t[]){1024}, 2, (int64_t[]){1024, 512});
}

Test(matmul, threads_split_batches)
{
    check_threads_agree(3, (int64_t[]){16, 32, 64}, 3, (int64_t[]){16, 64, 48});
    /* few batch entries: each is split too */
    check_threads_agree(3, (int64_t[]){2, 64, 64}, 3, (int64_t[]){2, 64, 64});
    /* A broadcast over B's batch */
    check_threads_agree(2, (int64_t[]){64, 64}, 3, (int64_t[]){3, 64, 70});
}

Test(matmul, infers_shape_without_values)
{
    float a[24], b[20];
    kh_fill_random(a, 24, 1);
    kh_fill_random(b, 20, 2);
    qkv_tensor in[2] = {kh_f32(3, (int64_t[]){2, 3, 4}, a), kh_f32(2, (int64_t[]){4, 5}, b)}, y;
    qkv_error err;
    kh_node *n = kh_node_create("MatMul", 13, 2, 1);
    kh_hide_input_values(n);
    cr_assert_eq(kh_run(n, in, &y, &err), QKV_OK, "%s", err.message);
    cr_assert_eq(y.rank, 3);
    cr_assert_eq(y.dims[2], 5);
    kh_free_outputs(&y, 1);
    kh_node_destroy(n);
}

Test(matmul, multiplies_double)
{
    double a[6] = {1, 2, 3, 4, 5, 6}, b[6] = {7, 8, 9, 10, 11, 12};
    /* (2,3) @ (3,2) */
    double want[4] = {58, 64, 139, 154};
    qkv_tensor in[2] = {kh_tensor(QKV_DTYPE_DOUBLE, 2, (int64_t[]){2, 3}, a),
                        kh_tensor(QKV_DTYPE_DOUBLE, 2, (int64_t[]){3, 2}, b)},
               y;
    qkv_error err;
    kh_node *n = kh_node_create("MatMul", 13, 2, 1);
    cr_assert_eq(kh_run(n, in, &y, &err), QKV_OK, "%s", err.message);
    cr_assert_eq(y.dtype, QKV_DTYPE_DOUBLE);
    for (int i = 0; i < 4; i++) /* small integers: exact in double */
        cr_assert_eq(((double *)y.data)[i], want[i]);
    kh_free_outputs(&y, 1);
    kh_node_destroy(n);
}

Test(matmul, multiplies_int64_with_batch_broadcast)
{
    /* (2,2,3) @ (3,2) */
    int64_t a[12], b[6];
    for (int i = 0; i < 12; i++)
        a[i] = i - 5;
    for (int i = 0; i < 6; i++)
        b[i] = 3 * i - 7;
    qkv_tensor in[2] = {kh_i64(3, (int64_t[]){2, 2, 3}, a), kh_i64(2, (int64_t[]){3, 2}, b)}, y;
    qkv_error err;
    kh_node *n = kh_node_create("MatMul", 13, 2, 1);
    cr_assert_eq(kh_run(n, in, &y, &err), QKV_OK, "%s", err.message);
    cr_assert_eq(y.dtype, QKV_DTYPE_INT64);
    cr_assert_eq(y.rank, 3);
    const int64_t *yv = y.data;
    for (int bi = 0; bi < 2; bi++)
        for (int i = 0; i < 2; i++)
            for (int j = 0; j < 2; j++) {
                int64_t s = 0;
                for (int p = 0; p < 3; p++)
                    s += a[bi * 6 + i * 3 + p] * b[p * 2 + j];
                cr_assert_eq(yv[bi * 4 + i * 2 + j], s);
            }
    kh_free_outputs(&y, 1);
    kh_node_destroy(n);
}

Test(matmul, int32_wraps_around_on_overflow)
{
    int32_t a[2] = {INT32_MAX, 2}, b[2] = {2, INT32_MAX};
    qkv_tensor in[2] = {kh_tensor(QKV_DTYPE_INT32, 1, (int64_t[]){2}, a),
                        kh_tensor(QKV_DTYPE_INT32, 1, (int64_t[]){2}, b)},
               y;
    qkv_error err;
    kh_node *n = kh_node_create("MatMul", 13, 2, 1);
    cr_assert_eq(kh_run(n, in, &y, &err), QKV_OK, "%s", err.message);
    cr_assert_eq(y.rank, 0);
    /* 4 * (2^31 - 1) mod 2^32 = 2^32 - 4, i.e. -4 as int32 (numpy agrees) */
    cr_assert_eq(*(int32_t *)y.data, -4);
    kh_free_outputs(&y, 1);
    kh_node_destroy(n);
}

/* Runs MatMul on shapes that must fail; checks status and message. */
static void check_error(int64_t opset, qkv_tensor a, qkv_tensor b, qkv_status want, const char *msg)
{
    qkv_tensor in[2] = {a, b}, y;
    qkv_error err;
    kh_node *n = kh_node_create("MatMul", opset, 2, 1);
    cr_assert_eq(kh_run(n, in, &y, &err), want, "status %d: %s", (int)err.status, err.message);
    cr_assert(strstr(err.message, msg), "message: %s", err.message);
    kh_node_destroy(n);
}

Test(matmul, refuses_mismatched_inner_dims)
{
    float a[6] = {0}, b[20] = {0};
    check_error(13, kh_f32(2, (int64_t[]){2, 3}, a), kh_f32(2, (int64_t[]){4, 5}, b), QKV_ERR_SHAPE,
                "node 'test_node' (MatMul-13): inner dimensions differ: input 0 'A' [2,3] has 3 "
                "columns, input 1 'B' [4,5] has 4 rows");
}

Test(matmul, refuses_mismatched_1d_inner_dims)
{
    float a[3] = {0}, b[4] = {0};
    check_error(13, kh_f32(1, (int64_t[]){3}, a), kh_f32(1, (int64_t[]){4}, b), QKV_ERR_SHAPE,
                "inner dimensions differ");
}

Test(matmul, refuses_batch_dims_that_do_not_broadcast)
{
    float a[24] = {0}, b[60] = {0};
    check_error(13, kh_f32(3, (int64_t[]){2, 3, 4}, a), kh_f32(3, (int64_t[]){3, 4, 5}, b),
                QKV_ERR_SHAPE,
                "batch dims do not broadcast: input 0 'A' [2,3,4], input 1 'B' [3,4,5] (2 vs 3)");
}

Test(matmul, refuses_a_scalar)
{
    float a[1] = {0}, b[4] = {0};
    check_error(13, kh_f32(0, NULL, a), kh_f32(1, (int64_t[]){4}, b), QKV_ERR_SHAPE,
                "input 0 'A' is a scalar, expected rank >= 1");
}

Test(matmul, refuses_mixed_types)
{
    float a[4] = {0};
    double b[4] = {0};
    check_error(13, kh_f32(2, (int64_t[]){2, 2}, a),
                kh_tensor(QKV_DTYPE_DOUBLE, 2, (int64_t[]){2, 2}, b), QKV_ERR_TYPE,
                "input 1 'B' is float64 but input 0 'A' is float32: they must match");
}

Test(matmul, refuses_int_types_before_opset_9)
{
    int64_t a[4] = {0}, b[4] = {0};
    check_error(8, kh_i64(2, (int64_t[]){2, 2}, a), kh_i64(2, (int64_t[]){2, 2}, b), QKV_ERR_TYPE,
                "(MatMul-1): input 0 has type int64, not supported");
}
