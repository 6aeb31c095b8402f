/* Gemm: alpha, beta, transposes and C broadcast against a reference loop. */
#include <criterion/criterion.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "kernel_harness.h"

typedef struct gemm_case {
    int64_t m, n, k;
    int trans_a, trans_b;
    float alpha, beta;
    int32_t c_rank; /* -1: no C */
    int64_t c_dims[2];
} gemm_case;

/* Runs Gemm at `opset` on random data for case g with `threads` threads and
 * checks Y against alpha * op(A) @ op(B) + beta * C computed in double.
 * Returns Y (free with kh_free_outputs). */
static qkv_tensor check_gemm(const gemm_case *g, int64_t opset, size_t threads)
{
    int64_t ad[2] = {g->trans_a ? g->k : g->m, g->trans_a ? g->m : g->k};
    int64_t bd[2] = {g->trans_b ? g->n : g->k, g->trans_b ? g->k : g->n};
    size_t na = (size_t)(g->m * g->k), nb = (size_t)(g->k * g->n), nc = 1;
    for (int32_t i = 0; i < g->c_rank; i++)
        nc *= (size_t)g->c_dims[i];
    float *a = malloc((na + 1) * sizeof *a), *b = malloc((nb + 1) * sizeof *b);
    float *c = malloc((nc + 1) * sizeof *c);
    kh_fill_random(a, na, 3);
    kh_fill_random(b, nb, 5);
    kh_fill_random(c, nc, 7);
    qkv_tensor in[3] = {kh_f32(2, ad, a), kh_f32(2, bd, b), kh_f32(g->c_rank, g->c_dims, c)}, y;
    qkv_error err;
    kh_node *node = kh_node_create("Gemm", opset, g->c_rank >= 0 ? 3 : 2, 1);
    kh_attr_float(node, "alpha", g->alpha);
    kh_attr_float(node, "beta", g->beta);
    kh_attr_int(node, "transA", g->trans_a);
    kh_attr_int(node, "transB", g->trans_b);
    kh_set_threads(node, threads);
    cr_assert_eq(kh_run(node, in, &y, &err), QKV_OK, "%s", err.message);
    cr_assert_eq(y.rank, 2);
    cr_assert_eq(y.dims[0], g->m);
    cr_assert_eq(y.dims[1], g->n);
    const float *yv = y.data;
    /* C's strides over (m, n): 0 where it broadcasts */
    int64_t cm = g->c_rank == 2 ? g->c_dims[0] : 1;
    int64_t cn = g->c_rank >= 1 ? g->c_dims[g->c_rank - 1] : 1;
    for (int64_t i = 0; i < g->m; i++)
        for (int64_t j = 0; j < g->n; j++) {
            double s = 0;
            for (int64_t p = 0; p < g->k; p++) {
                double av = g->trans_a ? a[p * g->m + i] : a[i * g->k + p];
                double bv = g->trans_b ? b[j * g->k + p] : b[p * g->n + j];
                s += av * bv;
            }
            double want = g->alpha * s;
            if (g->c_rank >= 0)
                want += g->beta * c[(cm == 1 ? 0 : i * cn) + (cn == 1 ? 0 : j)];
            /* float32 dot product of k terms in [-1, 1): error <~ k * 2^-24 */
            double tol = 2e-7 * (double)g->k + 1e-6;
            cr_assert(fabs(yv[i * g->n + j] - want) <= tol, "y[%lld,%lld] = %g, expected %g",
                      (long long)i, (long long)j, (double)yv[i * g->n + j], want);
        }
    free(a);
    free(b);
    free(c);
    kh_node_destroy(node);
    return y;
}

static void run_case(gemm_case g, int64_t opset)
{
    qkv_tensor y = check_gemm(&g, opset, 1);
    kh_free_outputs(&y, 1);
}

Test(gemm, default_attributes_with_matrix_bias)
{
    run_case((gemm_case){3, 4, 6, 0, 0, 1, 1, 2, {3, 4}}, 13);
}

Test(gemm, no_bias_from_opset_11)
{
    run_case((gemm_case){2, 3, 10, 0, 0, 1, 1, -1, {0}}, 11);
    run_case((gemm_case){2, 3, 10, 0, 0, 1, 1, -1, {0}}, 13);
}

Test(gemm, every_transpose_with_alpha_beta_and_every_c_shape)
{
    const int64_t m = 5, n = 7, k = 3;
    const struct {
        int32_t rank;
        int64_t dims[2];
    } cs[] = {{-1, {0}},   {0, {0}},    {1, {1}},    {1, {n}},
              {2, {1, 1}}, {2, {1, n}}, {2, {m, 1}}, {2, {m, n}}};
    for (int ta = 0; ta < 2; ta++)
        for (int tb = 0; tb < 2; tb++)
            for (size_t i = 0; i < sizeof cs / sizeof cs[0]; i++)
                run_case(
                    (gemm_case){
                        m, n, k, ta, tb, 0.25f, 0.35f, cs[i].rank, {cs[i].dims[0], cs[i].dims[1]}},
                    13);
}

Test(gemm, single_column_output_with_column_bias)
{
    run_case((gemm_case){4, 1, 3, 1, 1, 2.0f, -1.0f, 2, {4, 1}}, 13);
    run_case((gemm_case){4, 1, 3, 0, 0, 1.0f, 0.5f, 1, {1}}, 13);
}

Test(gemm, opset_7_broadcasts_c)
{
    run_case((gemm_case){3, 4, 5, 0, 1, 1, 1, 1, {4}}, 7);
    run_case((gemm_case){3, 4, 5, 0, 0, 1, 1, 2, {3, 4}}, 6);
}

Test(gemm, empty_inner_dim_gives_beta_times_c)
{
    run_case((gemm_case){3, 4, 0, 0, 0, 1, 0.5f, 2, {1, 4}}, 13);
    run_case((gemm_case){3, 4, 0, 1, 1, 1, 0.5f, -1, {0}}, 13);
}

Test(gemm, zero_beta_ignores_c)
{
    /* like BLAS (and onnxruntime): with beta 0, C is not read, so its NaN
     * does not reach Y */
    float a[4] = {1, 2, 3, 4}, b[4] = {1, 0, 0, 1}, c[1] = {NAN};
    qkv_tensor in[3] = {kh_f32(2, (int64_t[]){2, 2}, a), kh_f32(2, (int64_t[]){2, 2}, b),
                        kh_f32(1, (int64_t[]){1}, c)},
               y;
    qkv_error err;
    kh_node *node = kh_node_create("Gemm", 13, 3, 1);
    kh_attr_float(node, "beta", 0.0f);
    cr_assert_eq(kh_run(node, in, &y, &err), QKV_OK, "%s", err.message);
    for (int i = 0; i < 4; i++) /* a @ identity: exact */
        cr_assert_eq(((float *)y.data)[i], a[i]);
    kh_free_outputs(&y, 1);
    kh_node_destroy(node);
}

Test(gemm, computes_double)
{
    double a[6] = {1, 2, 3, 4, 5, 6}, b[6] = {7, 8, 9, 10, 11, 12}, c[2] = {1, -1};
    /* op(A) = A (2,3), op(B) = B^T with B stored (2,3): Y (2,2) = 2 A B^T + C */
    double want[4] = {2 * (1 * 7 + 2 * 8 + 3 * 9) + 1, 2 * (1 * 10 + 2 * 11 + 3 * 12) - 1,
                      2 * (4 * 7 + 5 * 8 + 6 * 9) + 1, 2 * (4 * 10 + 5 * 11 + 6 * 12) - 1};
    qkv_tensor in[3] = {kh_tensor(QKV_DTYPE_DOUBLE, 2, (int64_t[]){2, 3}, a),
                        kh_tensor(QKV_DTYPE_DOUBLE, 2, (int64_t[]){2, 3}, b),
                        kh_tensor(QKV_DTYPE_DOUBLE, 1, (int64_t[]){2}, c)},
               y;
    qkv_error err;
    kh_node *node = kh_node_create("Gemm", 13, 3, 1);
    kh_attr_float(node, "alpha", 2.0f);
    kh_attr_int(node, "transB", 1);
    cr_assert_eq(kh_run(node, in, &y, &err), QKV_OK, "%s", err.message);
    cr_assert_eq(y.dtype, QKV_DTYPE_DOUBLE);
    for (int i = 0; i < 4; i++) /* small integers: exact in double */
        cr_assert_eq(((double *)y.data)[i], want[i], "%d: %g", i, ((double *)y.data)[i]);
    kh_free_outputs(&y, 1);
    kh_node_destroy(node);
}

/* 1 and 3 threads agree to float rounding (a row or column block may use
 * another OpenBLAS edge kernel, so bits may differ). */
static void check_threads_agree(gemm_case g)
{
    qkv_tensor y1 = check_gemm(&g, 13, 1), y3 = check_gemm(&g, 13, 3);
    const float *p1 = y1.data, *p3 = y3.data;
    for (size_t i = 0; i < y1.data_bytes / sizeof(float); i++)
        cr_assert(fabsf(p1[i] - p3[i]) <= 1e-5f * (1 + fabsf(p1[i])), "element %zu: %g vs %g", i,
                  (double)p1[i], (double)p3[i]);
    kh_free_outputs(&y1, 1);
    kh_free_outputs(&y3, 1);
}

Test(gemm, threads_split_rows_with_transposes)
{
    check_threads_agree((gemm_case){130, 96, 128, 1, 1, 0.5f, 2.0f, 1, {96}});
    check_threads_agree((gemm_case){130, 96, 128, 0, 0, 1.0f, 1.0f, 2, {130, 1}});
}

Test(gemm, threads_split_columns_when_m_is_one)
{
    check_threads_agree((gemm_case){1, 600, 512, 1, 1, 1.5f, 0.5f, 2, {1, 600}});
    check_threads_agree((gemm_case){1, 600, 512, 0, 0, 1.0f, 1.0f, -1, {0}});
}

static void check_error(kh_node *node, const qkv_tensor *in, qkv_status want, const char *msg)
{
    qkv_tensor y;
    qkv_error err;
    cr_assert_eq(kh_run(node, in, &y, &err), want, "status %d: %s", (int)err.status, err.message);
    cr_assert(strstr(err.message, msg), "message: %s", err.message);
    kh_node_destroy(node);
}

Test(gemm, refuses_mismatched_inner_dims)
{
    float a[6] = {0}, b[12] = {0};
    qkv_tensor in[2] = {kh_f32(2, (int64_t[]){2, 3}, a), kh_f32(2, (int64_t[]){3, 4}, b)};
    kh_node *node = kh_node_create("Gemm", 13, 2, 1);
    kh_attr_int(node, "transA", 1);
    check_error(node, in, QKV_ERR_SHAPE,
                "node 'test_node' (Gemm-13): inner dimensions differ: input 0 'A' [2,3] "
                "(transposed) gives K=2, input 1 'B' [3,4] gives K=3");
}

Test(gemm, refuses_a_of_rank_3)
{
    float a[8] = {0}, b[4] = {0};
    qkv_tensor in[2] = {kh_f32(3, (int64_t[]){2, 2, 2}, a), kh_f32(2, (int64_t[]){2, 2}, b)};
    check_error(kh_node_create("Gemm", 13, 2, 1), in, QKV_ERR_SHAPE,
                "input 0 'A' has rank 3, expected 2");
}

Test(gemm, refuses_c_that_does_not_broadcast)
{
    float a[6] = {0}, b[12] = {0}, c[3] = {0};
    qkv_tensor in[3] = {kh_f32(2, (int64_t[]){2, 3}, a), kh_f32(2, (int64_t[]){3, 4}, b),
                        kh_f32(1, (int64_t[]){3}, c)};
    check_error(kh_node_create("Gemm", 13, 3, 1), in, QKV_ERR_SHAPE,
                "input 2 'C' [3] does not broadcast to the output [2,4]");
}

Test(gemm, refuses_a_transpose_flag_other_than_0_or_1)
{
    float a[4] = {0}, b[4] = {0};
    qkv_tensor in[2] = {kh_f32(2, (int64_t[]){2, 2}, a), kh_f32(2, (int64_t[]){2, 2}, b)};
    kh_node *node = kh_node_create("Gemm", 13, 2, 1);
    kh_attr_int(node, "transB", 2);
    check_error(node, in, QKV_ERR_INVALID_MODEL,
                "attributes transA=0, transB=2: each must be 0 or 1");
}

Test(gemm, requires_c_before_opset_11)
{
    float a[4] = {0}, b[4] = {0};
    qkv_tensor in[2] = {kh_f32(2, (int64_t[]){2, 2}, a), kh_f32(2, (int64_t[]){2, 2}, b)};
    check_error(kh_node_create("Gemm", 9, 2, 1), in, QKV_ERR_INVALID_MODEL,
                "(Gemm-9): has 2 inputs, expected 3 to 3");
}

Test(gemm, refuses_mixed_types)
{
    float a[4] = {0}, b[4] = {0};
    double c[1] = {0};
    qkv_tensor in[3] = {kh_f32(2, (int64_t[]){2, 2}, a), kh_f32(2, (int64_t[]){2, 2}, b),
                        kh_tensor(QKV_DTYPE_DOUBLE, 0, NULL, c)};
    check_error(kh_node_create("Gemm", 13, 3, 1), in, QKV_ERR_TYPE,
                "input 2 'C' is float64 but input 0 'A' is float32: they must match");
}

/* The host refuses an omitted ("") input among the ones a kernel requires,
 * before the kernel sees it. */
Test(gemm, refuses_an_omitted_required_input)
{
    float a[4] = {0}, c[2] = {0};
    qkv_tensor in[3] = {kh_f32(2, (int64_t[]){2, 2}, a), kh_f32(2, (int64_t[]){2, 2}, a),
                        kh_f32(1, (int64_t[]){2}, c)};
    kh_node *node = kh_node_create("Gemm", 13, 3, 1);
    kh_omit_input(node, 1);
    check_error(node, in, QKV_ERR_INVALID_MODEL,
                "(Gemm-13): input 1 is omitted, but the first 2 are required");
}
