/* Det: 2-D and batched determinants against a cofactor expansion, pivoting,
 * singular matrices and errors. */
#include <criterion/criterion.h>
#include <math.h>
#include <string.h>

#include "kernel_harness.h"

/* The determinant by cofactor expansion along row 0 (independent of LU). */
static double cofactor_det(const double *a, int m)
{
    if (m == 1)
        return a[0];
    double sub[16], det = 0;
    for (int c = 0; c < m; c++) {
        int k = 0;
        for (int i = 1; i < m; i++)
            for (int j = 0; j < m; j++)
                if (j != c)
                    sub[k++] = a[i * m + j];
        det += (c % 2 ? -1 : 1) * a[c] * cofactor_det(sub, m - 1);
    }
    return det;
}

Test(det, matches_cofactor_expansion_for_a_batch)
{
    enum { B = 3, M = 4 };
    float x[B * M * M];
    kh_fill_random(x, B * M * M, 7);
    qkv_tensor in = kh_f32(3, (int64_t[]){B, M, M}, x), y;
    qkv_error err;
    kh_node *n = kh_node_create("Det", 11, 1, 1);
    cr_assert_eq(kh_run(n, &in, &y, &err), QKV_OK, "%s", err.message);
    cr_assert_eq(y.rank, 1);
    cr_assert_eq(y.dims[0], B);
    for (int b = 0; b < B; b++) {
        double a[M * M];
        for (int i = 0; i < M * M; i++)
            a[i] = x[b * M * M + i];
        double want = cofactor_det(a, M);
        /* float output of a double computation: float rounding only */
        cr_assert(fabs(((float *)y.data)[b] - want) <= 1e-6 + 1e-6 * fabs(want), "[%d] %g vs %g", b,
                  ((float *)y.data)[b], want);
    }
    kh_free_outputs(&y, 1);
    kh_node_destroy(n);
}

Test(det, needs_a_row_swap_and_gets_the_sign)
{
    double x[9] = {0, 1, 2, 1, 0, 3, 4, -3, 8}; /* det = -2 (zero first pivot) */
    qkv_tensor in = kh_tensor(QKV_DTYPE_DOUBLE, 2, (int64_t[]){3, 3}, x), y;
    qkv_error err;
    kh_node *n = kh_node_create("Det", 11, 1, 1);
    cr_assert_eq(kh_run(n, &in, &y, &err), QKV_OK, "%s", err.message);
    cr_assert_eq(y.rank, 0);
    cr_assert_float_eq(*(double *)y.data, cofactor_det(x, 3), 1e-12);
    cr_assert_float_eq(*(double *)y.data, -2.0, 1e-12);
    kh_free_outputs(&y, 1);
    kh_node_destroy(n);
}

Test(det, singular_matrix_is_zero)
{
    float x[4] = {1, 2, 2, 4};
    qkv_tensor in = kh_f32(2, (int64_t[]){2, 2}, x), y;
    qkv_error err;
    kh_node *n = kh_node_create("Det", 11, 1, 1);
    cr_assert_eq(kh_run(n, &in, &y, &err), QKV_OK, "%s", err.message);
    cr_assert_float_eq(*(float *)y.data, 0.0f, 0);
    kh_free_outputs(&y, 1);
    kh_node_destroy(n);
}

Test(det, refuses_non_square_and_low_rank)
{
    float x[6] = {0};
    qkv_tensor in = kh_f32(2, (int64_t[]){2, 3}, x), y;
    qkv_error err;
    kh_node *n = kh_node_create("Det", 11, 1, 1);
    cr_assert_eq(kh_run(n, &in, &y, &err), QKV_ERR_SHAPE);
    cr_assert(strstr(err.message, "test_node"), "%s", err.message);
    cr_assert(strstr(err.message, "2 x 3 matrices, expected square"), "%s", err.message);
    in = kh_f32(1, (int64_t[]){6}, x);
    cr_assert_eq(kh_run(n, &in, &y, &err), QKV_ERR_SHAPE);
    cr_assert(strstr(err.message, "rank 1, expected >= 2"), "%s", err.message);
    kh_node_destroy(n);
}

/* An empty batch may declare matrices of any size: no scratch is planned for
 * them (2^30 x 2^30 doubles used to be asked for, 8 EiB). */
Test(det, empty_batch_of_huge_matrices_needs_no_scratch)
{
    const int64_t m = (int64_t)1 << 30;
    qkv_tensor in = kh_f32(3, (int64_t[]){0, m, m}, NULL), y;
    qkv_error err;
    kh_node *n = kh_node_create("Det", 11, 1, 1);
    cr_assert_eq(kh_run(n, &in, &y, &err), QKV_OK, "%s", err.message);
    cr_assert_eq(y.rank, 1);
    cr_assert_eq(y.dims[0], 0);
    kh_free_outputs(&y, 1);
    kh_node_destroy(n);
}

/* 0 x 0 matrices: the empty product, 1, with no scratch either. */
Test(det, zero_by_zero_matrices_are_one)
{
    qkv_tensor in = kh_f32(3, (int64_t[]){2, 0, 0}, NULL), y;
    qkv_error err;
    kh_node *n = kh_node_create("Det", 11, 1, 1);
    cr_assert_eq(kh_run(n, &in, &y, &err), QKV_OK, "%s", err.message);
    cr_assert_eq(y.rank, 1);
    cr_assert_eq(y.dims[0], 2);
    cr_assert_float_eq(((float *)y.data)[0], 1.0f, 0);
    cr_assert_float_eq(((float *)y.data)[1], 1.0f, 0);
    kh_free_outputs(&y, 1);
    kh_node_destroy(n);
}
