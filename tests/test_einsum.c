/* Einsum: the GEMM path and the general loop against reference loops. */
#include <criterion/criterion.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "kernel_harness.h"

/*
 * A reference einsum for explicit equations of letters only (no ellipsis):
 * iterates the whole label space in double. dims[c - 'a'] is the size of
 * label c; ops[j] are row-major float arrays.
 */
static void ref_einsum(const char *eq, const int64_t dims[26], const float *const *ops, double *out)
{
    char terms[8][16];
    int nt = 0, len = 0;
    char outt[16] = {0};
    const char *arrow = strstr(eq, "->");
    for (const char *p = eq; p < arrow; p++) {
        if (*p == ',') {
            terms[nt++][len] = 0;
            len = 0;
        } else {
            terms[nt][len++] = *p;
        }
    }
    terms[nt++][len] = 0;
    strcpy(outt, arrow + 2);
    int labels[26], nl = 0;
    for (int c = 0; c < 26; c++)
        if (dims[c] > 0 && strchr(eq, 'a' + c))
            labels[nl++] = c;
    size_t out_n = 1;
    for (size_t k = 0; k < strlen(outt); k++)
        out_n *= (size_t)dims[outt[k] - 'a'];
    for (size_t i = 0; i < out_n; i++)
        out[i] = 0;
    int64_t idx[26] = {0};
    for (;;) {
        double prod = 1;
        for (int j = 0; j < nt; j++) {
            size_t off = 0;
            for (size_t k = 0; k < strlen(terms[j]); k++)
                off = off * (size_t)dims[terms[j][k] - 'a'] + (size_t)idx[terms[j][k] - 'a'];
            prod *= ops[j][off];
        }
        size_t off = 0;
        for (size_t k = 0; k < strlen(outt); k++)
            off = off * (size_t)dims[outt[k] - 'a'] + (size_t)idx[outt[k] - 'a'];
        out[off] += prod;
        int l = nl - 1;
        for (; l >= 0; l--) {
            if (++idx[labels[l]] < dims[labels[l]])
                break;
            idx[labels[l]] = 0;
        }
        if (l < 0)
            break;
    }
}

/* Runs Einsum on float inputs; returns the status, output in *y. */
static qkv_status run_einsum(const char *eq, size_t n, qkv_tensor *ins, qkv_tensor *y,
                             qkv_error *err, size_t threads)
{
    kh_node *node = kh_node_create("Einsum", 12, n, 1);
    kh_attr_string(node, "equation", eq);
    kh_set_threads(node, threads);
    qkv_status st = kh_run(node, ins, y, err);
    kh_node_destroy(node);
    return st;
}

/* Checks eq on random operands of the given shapes against ref_einsum.
 * Tolerance: float inputs in [-1, 1); the kernel sums K products in float
 * (BLAS) or double, the reference in double: K * 2^-23 relative is ample. */
static void check_random(const char *eq, size_t n, const int32_t *ranks, const int64_t (*shapes)[6],
                         const int64_t dims[26], size_t threads)
{
    float *data[4];
    qkv_tensor ins[4], y;
    qkv_error err;
    for (size_t j = 0; j < n; j++) {
        size_t cnt = 1;
        for (int32_t a = 0; a < ranks[j]; a++)
            cnt *= (size_t)shapes[j][a];
        data[j] = malloc(cnt * sizeof(float) + 1);
        kh_fill_random(data[j], cnt, (uint32_t)(17 + j));
        ins[j] = kh_f32(ranks[j], shapes[j], data[j]);
    }
    cr_assert_eq(run_einsum(eq, n, ins, &y, &err, threads), QKV_OK, "%s: %s", eq, err.message);
    size_t out_n = 1;
    for (int32_t a = 0; a < y.rank; a++)
        out_n *= (size_t)y.dims[a];
    double *ref = malloc(out_n * sizeof(double) + 1);
    ref_einsum(eq, dims, (const float *const *)data, ref);
    const char *outt = strstr(eq, "->") + 2;
    cr_assert_eq(y.rank, (int32_t)strlen(outt), "%s", eq);
    for (int32_t a = 0; a < y.rank; a++)
        cr_assert_eq(y.dims[a], dims[outt[a] - 'a'], "%s dim %d", eq, a);
    size_t con = 1; /* products summed per output element */
    for (int c = 0; c < 26; c++)
        if (dims[c] > 0 && strchr(eq, 'a' + c) && !strchr(outt, 'a' + c))
            con *= (size_t)dims[c];
    double tol = 2e-7 * (double)(con + 1);
    for (size_t i = 0; i < out_n; i++)
        cr_assert(fabs(((float *)y.data)[i] - ref[i]) <= tol * (1 + fabs(ref[i])),
                  "%s: element %zu is %g, expected %g", eq, i, ((float *)y.data)[i], ref[i]);
    free(ref);
    kh_free_outputs(&y, 1);
    for (size_t j = 0; j < n; j++)
        free(data[j]);
}

Test(einsum, batch_matmul_matches_reference)
{
    int64_t dims[26] = {0};
    dims['b' - 'a'] = 3, dims['i' - 'a'] = 4, dims['j' - 'a'] = 5, dims['k' - 'a'] = 6;
    check_random("bij,bjk->bik", 2, (int32_t[]){3, 3}, (const int64_t[][6]){{3, 4, 5}, {3, 5, 6}},
                 dims, 1);
}

Test(einsum, attention_scores_with_transposed_b_match_reference)
{
    int64_t dims[26] = {0};
    dims['b' - 'a'] = 2, dims['h' - 'a'] = 3, dims['q' - 'a'] = 5, dims['d' - 'a'] = 8,
               dims['k' - 'a'] = 7;
    check_random("bhqd,bhkd->bhqk", 2, (int32_t[]){4, 4},
                 (const int64_t[][6]){{2, 3, 5, 8}, {2, 3, 7, 8}}, dims, 1);
}

Test(einsum, interleaved_labels_go_through_scratch_copies)
{
    /* m and k interleave in A, n and k in B, output order mixes groups:
     * every operand and the output need a copy */
    int64_t dims[26] = {0};
    dims['m' - 'a'] = 3, dims['k' - 'a'] = 4, dims['p' - 'a'] = 2, dims['n' - 'a'] = 5,
               dims['b' - 'a'] = 2, dims['l' - 'a'] = 3;
    check_random("mkpb,lkbnp->nbml", 2, (int32_t[]){4, 5},
                 (const int64_t[][6]){{3, 4, 2, 2}, {3, 4, 2, 5, 2}}, dims, 1);
}

Test(einsum, output_permuted_against_batch_order)
{
    int64_t dims[26] = {0};
    dims['b' - 'a'] = 3, dims['i' - 'a'] = 4, dims['j' - 'a'] = 5, dims['k' - 'a'] = 2;
    check_random("bij,bjk->kbi", 2, (int32_t[]){3, 3}, (const int64_t[][6]){{3, 4, 5}, {3, 5, 2}},
                 dims, 1);
}

Test(einsum, three_operands_match_reference)
{
    int64_t dims[26] = {0};
    dims['i' - 'a'] = 3, dims['j' - 'a'] = 4, dims['k' - 'a'] = 5, dims['l' - 'a'] = 2;
    check_random("ij,jk,kl->il", 3, (int32_t[]){2, 2, 2},
                 (const int64_t[][6]){{3, 4}, {4, 5}, {5, 2}}, dims, 1);
}

Test(einsum, label_summed_out_of_one_operand_matches_reference)
{
    int64_t dims[26] = {0};
    dims['i' - 'a'] = 3, dims['j' - 'a'] = 4, dims['k' - 'a'] = 5, dims['z' - 'a'] = 2;
    check_random("ijz,jk->ik", 2, (int32_t[]){3, 2}, (const int64_t[][6]){{3, 4, 2}, {4, 5}}, dims,
                 1);
}

Test(einsum, label_summed_out_of_the_second_operand_matches_reference)
{
    int64_t dims[26] = {0};
    dims['i' - 'a'] = 3, dims['j' - 'a'] = 4, dims['k' - 'a'] = 5, dims['z' - 'a'] = 2;
    check_random("ij,jkz->ik", 2, (int32_t[]){2, 3}, (const int64_t[][6]){{3, 4}, {4, 5, 2}}, dims,
                 1);
}

/* Runs eq on double operands (and again with a ones operand over label b
 * appended as "<eq inputs>,b->..." to force the general loop); both must
 * agree. Tolerance: double sums of < 100 products of |x| < 1, float noise
 * far below 1e-12. */
static void check_double_gemm_vs_loop(const char *eq, const char *eq_loop, size_t n,
                                      const int32_t *ranks, const int64_t (*shapes)[6],
                                      int64_t b_dim)
{
    double *data[3];
    qkv_tensor ins[3], fast, slow;
    qkv_error err;
    for (size_t j = 0; j < n; j++) {
        size_t cnt = 1;
        for (int32_t a = 0; a < ranks[j]; a++)
            cnt *= (size_t)shapes[j][a];
        float *tmp = malloc(cnt * sizeof(float));
        data[j] = malloc(cnt * sizeof(double));
        kh_fill_random(tmp, cnt, (uint32_t)(3 + j));
        for (size_t i = 0; i < cnt; i++)
            data[j][i] = tmp[i];
        free(tmp);
        ins[j] = kh_tensor(QKV_DTYPE_DOUBLE, ranks[j], shapes[j], data[j]);
    }
    data[n] = malloc((size_t)b_dim * sizeof(double));
    for (int64_t i = 0; i < b_dim; i++)
        data[n][i] = 1;
    ins[n] = kh_tensor(QKV_DTYPE_DOUBLE, 1, (int64_t[]){b_dim}, data[n]);
    cr_assert_eq(run_einsum(eq, n, ins, &fast, &err, 1), QKV_OK, "%s: %s", eq, err.message);
    cr_assert_eq(run_einsum(eq_loop, n + 1, ins, &slow, &err, 1), QKV_OK, "%s: %s", eq_loop,
                 err.message);
    cr_assert_eq(fast.rank, slow.rank);
    size_t cnt = 1;
    for (int32_t a = 0; a < fast.rank; a++) {
        cr_assert_eq(fast.dims[a], slow.dims[a]);
        cnt *= (size_t)fast.dims[a];
    }
    for (size_t i = 0; i < cnt; i++)
        cr_assert(fabs(((double *)fast.data)[i] - ((double *)slow.data)[i]) < 1e-12,
                  "%s: element %zu %g vs %g", eq, i, ((double *)fast.data)[i],
                  ((double *)slow.data)[i]);
    kh_free_outputs(&fast, 1);
    kh_free_outputs(&slow, 1);
    for (size_t j = 0; j <= n; j++)
        free(data[j]);
}

Test(einsum, double_gemm_with_copies_and_broadcast_batch_equals_general_loop)
{
    /* A's b is 1 (broadcast) and its k, j interleave with i: A and B are
     * copied to scratch, A's broadcast batch keeps stride 0 there */
    check_double_gemm_vs_loop("kibj,bjkn->bin", "kibj,bjkn,b->bin", 2, (int32_t[]){4, 4},
                              (const int64_t[][6]){{3, 4, 1, 5}, {3, 5, 3, 2}}, 3);
    /* output order needs the C copy */
    check_double_gemm_vs_loop("bij,bjk->kib", "bij,bjk,b->kib", 2, (int32_t[]){3, 3},
                              (const int64_t[][6]){{2, 3, 4}, {2, 4, 5}}, 2);
}

Test(einsum, double_transpose_runs_the_general_loop)
{
    double x[6] = {1, 2, 3, 4, 5, 6};
    qkv_tensor in = kh_tensor(QKV_DTYPE_DOUBLE, 2, (int64_t[]){3, 2}, x), y;
    qkv_error err;
    cr_assert_eq(run_einsum("ij->ji", 1, &in, &y, &err, 1), QKV_OK, "%s", err.message);
    double want[6] = {1, 3, 5, 2, 4, 6};
    for (int i = 0; i < 6; i++)
        cr_assert_eq(((double *)y.data)[i], want[i]);
    kh_free_outputs(&y, 1);
}

Test(einsum, large_shapes_on_four_threads_match_reference)
{
    int64_t dims[26] = {0};
    dims['b' - 'a'] = 4, dims['i' - 'a'] = 33, dims['j' - 'a'] = 40, dims['k' - 'a'] = 70;
    check_random("bij,bjk->bik", 2, (int32_t[]){3, 3},
                 (const int64_t[][6]){{4, 33, 40}, {4, 40, 70}}, dims, 4);
    /* the general loop, split across threads: */
    check_random("bij,bjk,b->bik", 3, (int32_t[]){3, 3, 1},
                 (const int64_t[][6]){{4, 33, 40}, {4, 40, 70}, {4}}, dims, 4);
}

/* The GEMM path equals the general loop: the same contraction with a third
 * operand of ones (which forces the general loop) on random shapes. */
Test(einsum, gemm_path_equals_general_loop_on_random_shapes)
{
    uint32_t seed = 12345;
    for (int trial = 0; trial < 20; trial++) {
        int64_t d[4];
        for (int k = 0; k < 4; k++) {
            seed = seed * 1103515245u + 12345u;
            d[k] = 1 + (int64_t)((seed >> 16) % 9);
        }
        size_t na = (size_t)(d[0] * d[1] * d[3]), nb = (size_t)(d[0] * d[2] * d[3]);
        float *a = malloc(na * sizeof(float)), *b = malloc(nb * sizeof(float));
        float *ones = malloc((size_t)d[0] * sizeof(float));
        kh_fill_random(a, na, seed | 1);
        kh_fill_random(b, nb, seed ^ 0x5555u);
        for (int64_t i = 0; i < d[0]; i++)
            ones[i] = 1;
        qkv_tensor ins[3] = {kh_f32(3, (int64_t[]){d[0], d[1], d[3]}, a),
                             kh_f32(3, (int64_t[]){d[0], d[2], d[3]}, b),
                             kh_f32(1, (int64_t[]){d[0]}, ones)};
        qkv_tensor fast, slow;
        qkv_error err;
        cr_assert_eq(run_einsum("bqd,bkd->bqk", 2, ins, &fast, &err, 1), QKV_OK, "%s", err.message);
        cr_assert_eq(run_einsum("bqd,bkd,b->bqk", 3, ins, &slow, &err, 1), QKV_OK, "%s",
                     err.message);
        size_t n = (size_t)(d[0] * d[1] * d[2]);
        for (size_t i = 0; i < n; i++) /* <= 8 products of |x| < 1: float vs double sums */
            cr_assert_float_eq(((float *)fast.data)[i], ((float *)slow.data)[i], 1e-5,
                               "trial %d element %zu", trial, i);
        kh_free_outputs(&fast, 1);
        kh_free_outputs(&slow, 1);
        free(a);
        free(b);
        free(ones);
    }
}

Test(einsum, ellipsis_batch_matmul_broadcasts_batch_dims)
{
    /* a (2, 1, 2, 3) x b (3, 3, 2) -> (2, 3, 2, 2) */
    float a[12], b[18];
    for (int i = 0; i < 12; i++)
        a[i] = (float)(i + 1);
    for (int i = 0; i < 18; i++)
        b[i] = (float)(i % 5) - 2;
    qkv_tensor ins[2] = {kh_f32(4, (int64_t[]){2, 1, 2, 3}, a), kh_f32(3, (int64_t[]){3, 3, 2}, b)},
               y;
    qkv_error err;
    cr_assert_eq(run_einsum("...ij,...jk->...ik", 2, ins, &y, &err, 1), QKV_OK, "%s", err.message);
    cr_assert_eq(y.rank, 4);
    cr_assert_eq(y.dims[0], 2);
    cr_assert_eq(y.dims[1], 3);
    cr_assert_eq(y.dims[2], 2);
    cr_assert_eq(y.dims[3], 2);
    for (int p = 0; p < 2; p++)
        for (int q = 0; q < 3; q++)
            for (int i = 0; i < 2; i++)
                for (int k = 0; k < 2; k++) {
                    float s = 0;
                    for (int j = 0; j < 3; j++)
                        s += a[p * 6 + i * 3 + j] * b[q * 6 + j * 2 + k];
                    /* small integers: exact */
                    cr_assert_float_eq(((float *)y.data)[((p * 3 + q) * 2 + i) * 2 + k], s, 0,
                                       "[%d,%d,%d,%d]", p, q, i, k);
                }
    kh_free_outputs(&y, 1);
}

Test(einsum, implicit_output_puts_ellipsis_dims_first)
{
    float a[12], b[6];
    for (int i = 0; i < 12; i++)
        a[i] = (float)i;
    for (int i = 0; i < 6; i++)
        b[i] = (float)(i - 2);
    qkv_tensor ins[2] = {kh_f32(3, (int64_t[]){2, 2, 3}, a), kh_f32(2, (int64_t[]){3, 2}, b)}, y;
    qkv_error err;
    cr_assert_eq(run_einsum("...ij,jk", 2, ins, &y, &err, 1), QKV_OK, "%s", err.message);
    cr_assert_eq(y.rank, 3);
    cr_assert_eq(y.dims[0], 2);
    cr_assert_eq(y.dims[1], 2);
    cr_assert_eq(y.dims[2], 2);
    for (int p = 0; p < 2; p++)
        for (int i = 0; i < 2; i++)
            for (int k = 0; k < 2; k++) {
                float s = 0;
                for (int j = 0; j < 3; j++)
                    s += a[(p * 2 + i) * 3 + j] * b[j * 2 + k];
                cr_assert_float_eq(((float *)y.data)[(p * 2 + i) * 2 + k], s, 0); /* exact */
            }
    kh_free_outputs(&y, 1);
}

Test(einsum, infer_propagates_unknown_dims_and_rank)
{
    qkv_tensor ins[2] = {kh_tensor(QKV_DTYPE_FLOAT, 3, (int64_t[]){-1, 4, 5}, NULL),
                         kh_tensor(QKV_DTYPE_FLOAT, 3, (int64_t[]){3, -1, 6}, NULL)},
               y;
    qkv_error err;
    kh_node *n = kh_node_create("Einsum", 12, 2, 1);
    kh_attr_string(n, "equation", "bij,bjk->bik");
    /* b known from input 1, j from input 0, i unknown everywhere */
    cr_assert_eq(kh_infer(n, ins, &y, &err), QKV_OK, "%s", err.message);
    cr_assert_eq(y.rank, 3);
    cr_assert_eq(y.dims[0], 3);
    cr_assert_eq(y.dims[1], 4);
    cr_assert_eq(y.dims[2], 6);
    ins[0].dims[1] = -1;
    cr_assert_eq(kh_infer(n, ins, &y, &err), QKV_OK, "%s", err.message);
    cr_assert_eq(y.dims[1], -1);
    ins[1].rank = -1;
    cr_assert_eq(kh_infer(n, ins, &y, &err), QKV_OK, "%s", err.message);
    cr_assert_eq(y.rank, -1);
    cr_assert_eq(y.dtype, QKV_DTYPE_FLOAT);
    kh_node_destroy(n);
}

Test(einsum, transpose_permutes)
{
    float x[6] = {1, 2, 3, 4, 5, 6};
    qkv_tensor in = kh_f32(2, (int64_t[]){2, 3}, x), y;
    qkv_error err;
    cr_assert_eq(run_einsum("ij->ji", 1, &in, &y, &err, 1), QKV_OK, "%s", err.message);
    cr_assert_eq(y.dims[0], 3);
    cr_assert_eq(y.dims[1], 2);
    float want[6] = {1, 4, 2, 5, 3, 6};
    for (int i = 0; i < 6; i++)
        cr_assert_float_eq(((float *)y.data)[i], want[i], 0);
    kh_free_outputs(&y, 1);
}

Test(einsum, implicit_output_is_sorted_single_labels)
{
    /* "ba" implicit output is "ab": a transpose; spaces are ignored */
    float x[6] = {1, 2, 3, 4, 5, 6};
    qkv_tensor in = kh_f32(2, (int64_t[]){2, 3}, x), y;
    qkv_error err;
    cr_assert_eq(run_einsum(" b a ", 1, &in, &y, &err, 1), QKV_OK, "%s", err.message);
    cr_assert_eq(y.dims[0], 3);
    float want[6] = {1, 4, 2, 5, 3, 6};
    for (int i = 0; i < 6; i++)
        cr_assert_float_eq(((float *)y.data)[i], want[i], 0);
    kh_free_outputs(&y, 1);
}

Test(einsum, implicit_inner_product_is_scalar)
{
    float x[3] = {1, 2, 3}, z[3] = {4, 5, 6};
    qkv_tensor ins[2] = {kh_f32(1, (int64_t[]){3}, x), kh_f32(1, (int64_t[]){3}, z)}, y;
    qkv_error err;
    cr_assert_eq(run_einsum("i,i", 2, ins, &y, &err, 1), QKV_OK, "%s", err.message);
    cr_assert_eq(y.rank, 0);
    cr_assert_float_eq(((float *)y.data)[0], 32, 0);
    kh_free_outputs(&y, 1);
}

Test(einsum, implicit_uppercase_sorts_before_lowercase)
{
    /* ASCII order, as numpy: "a,B" -> "Ba", an outer product of shape (3, 2) */
    float x[2] = {1, 2}, z[3] = {10, 20, 30};
    qkv_tensor ins[2] = {kh_f32(1, (int64_t[]){2}, x), kh_f32(1, (int64_t[]){3}, z)}, y;
    qkv_error err;
    cr_assert_eq(run_einsum("a,B", 2, ins, &y, &err, 1), QKV_OK, "%s", err.message);
    cr_assert_eq(y.rank, 2);
    cr_assert_eq(y.dims[0], 3);
    cr_assert_eq(y.dims[1], 2);
    cr_assert_float_eq(((float *)y.data)[1], 20, 0); /* [B=0, a=1] = 10 * 2 */
    kh_free_outputs(&y, 1);
}

Test(einsum, diagonal_trace_and_batch_diagonal)
{
    float x[18];
    for (int i = 0; i < 18; i++)
        x[i] = (float)i;
    qkv_tensor sq = kh_f32(2, (int64_t[]){3, 3}, x), y;
    qkv_error err;
    cr_assert_eq(run_einsum("ii->i", 1, &sq, &y, &err, 1), QKV_OK, "%s", err.message);
    cr_assert_eq(y.dims[0], 3);
    cr_assert_float_eq(((float *)y.data)[2], 8, 0);
    kh_free_outputs(&y, 1);
    cr_assert_eq(run_einsum("ii", 1, &sq, &y, &err, 1), QKV_OK, "%s", err.message);
    cr_assert_eq(y.rank, 0);
    cr_assert_float_eq(((float *)y.data)[0], 12, 0);
    kh_free_outputs(&y, 1);
    qkv_tensor batch = kh_f32(3, (int64_t[]){2, 3, 3}, x);
    cr_assert_eq(run_einsum("...ii ->...i", 1, &batch, &y, &err, 1), QKV_OK, "%s", err.message);
    cr_assert_eq(y.rank, 2);
    float want[6] = {0, 4, 8, 9, 13, 17};
    for (int i = 0; i < 6; i++)
        cr_assert_float_eq(((float *)y.data)[i], want[i], 0);
    kh_free_outputs(&y, 1);
}

Test(einsum, row_sum_reduces)
{
    float x[6] = {1, 2, 3, 4, 5, 6};
    qkv_tensor in = kh_f32(2, (int64_t[]){2, 3}, x), y;
    qkv_error err;
    cr_assert_eq(run_einsum("ij->i", 1, &in, &y, &err, 1), QKV_OK, "%s", err.message);
    cr_assert_float_eq(((float *)y.data)[0], 6, 0);
    cr_assert_float_eq(((float *)y.data)[1], 15, 0);
    kh_free_outputs(&y, 1);
}

Test(einsum, integer_and_double_batch_matmul)
{
    int32_t a32[12], b32[12];
    int64_t a64[12], b64[12];
    double ad[12], bd[12];
    for (int i = 0; i < 12; i++) {
        a32[i] = i - 5, b32[i] = 2 * i - 7;
        a64[i] = a32[i], b64[i] = b32[i];
        ad[i] = a32[i], bd[i] = b32[i];
    }
    int64_t sa[3] = {2, 2, 3}, sb[3] = {2, 3, 2};
    qkv_dtype types[3] = {QKV_DTYPE_INT32, QKV_DTYPE_INT64, QKV_DTYPE_DOUBLE};
    void *as[3] = {a32, a64, ad}, *bs[3] = {b32, b64, bd};
    for (int t = 0; t < 3; t++) {
        qkv_tensor ins[2] = {kh_tensor(types[t], 3, sa, as[t]), kh_tensor(types[t], 3, sb, bs[t])},
                   y;
        qkv_error err;
        cr_assert_eq(run_einsum("bij,bjk->bik", 2, ins, &y, &err, 1), QKV_OK, "%s", err.message);
        cr_assert_eq(y.dtype, types[t]);
        for (int b = 0; b < 2; b++)
            for (int i = 0; i < 2; i++)
                for (int k = 0; k < 2; k++) {
                    int64_t s = 0;
                    for (int j = 0; j < 3; j++)
                        s += (int64_t)a32[b * 6 + i * 3 + j] * b32[b * 6 + j * 2 + k];
                    size_t o = (size_t)((b * 2 + i) * 2 + k);
                    double got = t == 0   ? ((int32_t *)y.data)[o]
                                 : t == 1 ? (double)((int64_t *)y.data)[o]
                                          : ((double *)y.data)[o];
                    cr_assert_eq(got, (double)s, "type %d [%d,%d,%d]", t, b, i, k);
                }
        kh_free_outputs(&y, 1);
    }
}

Test(einsum, zero_sized_contraction_gives_zeros)
{
    float a[1], b[1];
    qkv_tensor ins[2] = {kh_f32(2, (int64_t[]){2, 0}, a), kh_f32(2, (int64_t[]){0, 3}, b)}, y;
    qkv_error err;
    cr_assert_eq(run_einsum("ij,jk->ik", 2, ins, &y, &err, 1), QKV_OK, "%s", err.message);
    cr_assert_eq(y.dims[0], 2);
    cr_assert_eq(y.dims[1], 3);
    for (int i = 0; i < 6; i++)
        cr_assert_float_eq(((float *)y.data)[i], 0, 0);
    kh_free_outputs(&y, 1);
}

Test(einsum, infer_without_values_gives_the_shape)
{
    float a[6] = {0}, b[6] = {0};
    qkv_tensor ins[2] = {kh_f32(2, (int64_t[]){2, 3}, a), kh_f32(2, (int64_t[]){3, 2}, b)}, y;
    qkv_error err;
    kh_node *n = kh_node_create("Einsum", 12, 2, 1);
    kh_attr_string(n, "equation", "ij,jk->ki");
    kh_hide_input_values(n);
    cr_assert_eq(kh_run(n, ins, &y, &err), QKV_OK, "%s", err.message);
    cr_assert_eq(y.rank, 2);
    cr_assert_eq(y.dims[0], 2);
    kh_free_outputs(&y, 1);
    kh_node_destroy(n);
}

/* ---- errors ---------------------------------------------------------------------- */

static void expect_error(const char *eq, size_t n, qkv_tensor *ins, qkv_status want,
                         const char *msg)
{
    qkv_tensor y[1];
    qkv_error err;
    cr_assert_eq(run_einsum(eq, n, ins, y, &err, 1), want, "%s: %s", eq, err.message);
    cr_assert(strstr(err.message, msg), "%s: message '%s' lacks '%s'", eq, err.message, msg);
}

Test(einsum, rejects_bad_character_with_position)
{
    float x[4] = {0};
    qkv_tensor in[2] = {kh_f32(2, (int64_t[]){2, 2}, x), kh_f32(2, (int64_t[]){2, 2}, x)};
    expect_error("ij,j1->i", 2, in, QKV_ERR_INVALID_MODEL,
                 "node 'test_node' (Einsum-12): equation 'ij,j1->i': unexpected character '1' "
                 "at position 4");
}

Test(einsum, rejects_unknown_output_label)
{
    float x[4] = {0};
    qkv_tensor in = kh_f32(2, (int64_t[]){2, 2}, x);
    expect_error("ij->iz", 1, &in, QKV_ERR_INVALID_MODEL,
                 "equation 'ij->iz': output label 'z' at position 5 does not occur in any input");
}

Test(einsum, rejects_repeated_output_label)
{
    float x[4] = {0};
    qkv_tensor in = kh_f32(2, (int64_t[]){2, 2}, x);
    expect_error("ij->ii", 1, &in, QKV_ERR_INVALID_MODEL,
                 "output label 'i' at position 5 is repeated");
}

Test(einsum, rejects_broken_ellipsis)
{
    float x[4] = {0};
    qkv_tensor in = kh_f32(2, (int64_t[]){2, 2}, x);
    expect_error("..ij->ij", 1, &in, QKV_ERR_INVALID_MODEL,
                 "'.' at position 0 is not part of an ellipsis");
    expect_error("...i...->i", 1, &in, QKV_ERR_INVALID_MODEL,
                 "second ellipsis in one term at position 4");
}

Test(einsum, rejects_term_count_unlike_inputs)
{
    float x[4] = {0};
    qkv_tensor in = kh_f32(2, (int64_t[]){2, 2}, x);
    expect_error("ij,jk->ik", 1, &in, QKV_ERR_INVALID_MODEL,
                 "equation 'ij,jk->ik' has 2 input terms but the node has 1 inputs");
}

Test(einsum, rejects_inconsistent_label_sizes)
{
    float x[12] = {0};
    qkv_tensor in[2] = {kh_f32(2, (int64_t[]){2, 3}, x), kh_f32(2, (int64_t[]){4, 2}, x)};
    expect_error("ij,jk->ik", 2, in, QKV_ERR_SHAPE,
                 "equation 'ij,jk->ik': label 'j' has size 3 in input 0 and 4 in input 1");
}

Test(einsum, rejects_diagonal_of_unequal_dims)
{
    float x[6] = {0};
    qkv_tensor in = kh_f32(2, (int64_t[]){2, 3}, x);
    expect_error("ii->i", 1, &in, QKV_ERR_SHAPE, "label 'i' of input 0 has sizes 2 and 3");
}

Test(einsum, rejects_rank_unlike_term)
{
    float x[6] = {0};
    qkv_tensor in = kh_f32(3, (int64_t[]){1, 2, 3}, x);
    expect_error("ij->ji", 1, &in, QKV_ERR_SHAPE,
                 "equation 'ij->ji': input 0 has rank 3 but its term has 2 labels");
}

Test(einsum, rejects_explicit_output_without_ellipsis)
{
    float x[6] = {0};
    qkv_tensor in = kh_f32(3, (int64_t[]){1, 2, 3}, x);
    expect_error("...ij->ij", 1, &in, QKV_ERR_SHAPE,
                 "the inputs have 1 ellipsis dims but the output has no '...'");
}

Test(einsum, rejects_mixed_types)
{
    float x[4] = {0};
    double z[4] = {0};
    qkv_tensor in[2] = {kh_f32(2, (int64_t[]){2, 2}, x),
                        kh_tensor(QKV_DTYPE_DOUBLE, 2, (int64_t[]){2, 2}, z)};
    expect_error("ij,jk->ik", 2, in, QKV_ERR_TYPE, "input 1 has type ");
}

Test(einsum, rejects_missing_equation)
{
    float x[4] = {0};
    qkv_tensor in = kh_f32(2, (int64_t[]){2, 2}, x), y;
    qkv_error err;
    kh_node *n = kh_node_create("Einsum", 12, 1, 1);
    cr_assert_eq(kh_run(n, &in, &y, &err), QKV_ERR_INVALID_MODEL);
    cr_assert(strstr(err.message, "attribute 'equation' is missing"), "%s", err.message);
    kh_node_destroy(n);
}
