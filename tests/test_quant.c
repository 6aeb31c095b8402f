/* QuantizeLinear, DequantizeLinear, DynamicQuantizeLinear, MatMulInteger and
 * QLinearMatMul through the kernel harness, against references written
 * here: rounding ties to even, saturation, per-tensor / per-axis / blocked
 * parameters, every uint8/int8 pairing, batches, threads, and each error
 * path. Integer results are exact; float ones are compared exactly too where
 * the reference does the same float32 operations in the same order. */
#include <criterion/criterion.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "kernel_harness.h"

static uint32_t rng = 12345;
static uint32_t rnd(void)
{
    rng ^= rng << 13;
    rng ^= rng >> 17;
    rng ^= rng << 5;
    return rng;
}

static float sat(float v, float lo, float hi) { return v < lo ? lo : v > hi ? hi : v; }

/* ---- QuantizeLinear ---------------------------------------------------------------- */

Test(quantize, per_tensor_rounds_half_to_even_and_saturates)
{
    float xs[] = {0, 1, 3, 5, -1, -3, 1000, -1000, 253.9f, NAN, 2.9999f, -2.5f};
    int64_t dims[1] = {12};
    float scale = 2.0f;
    uint8_t zp = 128;
    int8_t zps = -3;
    /* x / 2: 0, 0.5->0, 1.5->2, 2.5->2, -0.5->-0, -1.5->-2, 500, -500, 126.95->127,
     * NaN, 1.49995->1, -1.25->-1 */
    uint8_t want_u[] = {128, 128, 130, 130, 128, 126, 255, 0, 255, 128, 129, 127};
    int8_t want_s[] = {-3, -3, -1, -1, -3, -5, 127, -128, 124, -3, -2, -4};
    for (int sgn = 0; sgn < 2; sgn++) {
        kh_node *n = kh_node_create("QuantizeLinear", 13, 3, 1);
        qkv_tensor ins[3] = {kh_f32(1, dims, xs), kh_f32(0, NULL, &scale),
                             sgn ? kh_tensor(QKV_DTYPE_INT8, 0, NULL, &zps)
                                 : kh_tensor(QKV_DTYPE_UINT8, 0, NULL, &zp)};
        qkv_tensor y;
        qkv_error err;
        cr_assert_eq(kh_run(n, ins, &y, &err), QKV_OK, "%s", err.message);
        cr_assert_eq(y.dtype, sgn ? QKV_DTYPE_INT8 : QKV_DTYPE_UINT8);
        for (int i = 0; i < 12; i++) {
            if (sgn)
                cr_assert_eq(((int8_t *)y.data)[i], want_s[i], "int8 element %d (x=%g): %d", i,
                             xs[i], ((int8_t *)y.data)[i]);
            else
                cr_assert_eq(((uint8_t *)y.data)[i], want_u[i], "uint8 element %d (x=%g): %d", i,
                             xs[i], ((uint8_t *)y.data)[i]);
        }
        kh_free_outputs(&y, 1);
        kh_node_destroy(n);
    }
}

Test(quantize, no_zero_point_gives_uint8_and_int32_input_works)
{
    int32_t xs[] = {-7, 0, 7, 9, 600};
    int64_t dims[1] = {5};
    float scale = 2.0f;
    uint8_t want[] = {0, 0, 4, 4, 255}; /* 3.5 -> 4, 4.5 -> 4 */
    kh_node *n = kh_node_create("QuantizeLinear", 10, 2, 1);
    qkv_tensor ins[2] = {kh_tensor(QKV_DTYPE_INT32, 1, dims, xs), kh_f32(0, NULL, &scale)};
    qkv_tensor y;
    qkv_error err;
    cr_assert_eq(kh_run(n, ins, &y, &err), QKV_OK, "%s", err.message);
    cr_assert_eq(y.dtype, QKV_DTYPE_UINT8);
    cr_assert_eq(memcmp(y.data, want, 5), 0);
    kh_free_outputs(&y, 1);
    kh_node_destroy(n);
}

/* Reference quantization of x (outer, d, inner) with per-axis or blocked
 * parameters. */
static void check_quantize_layout(int64_t opset, int64_t axis, int64_t block, size_t threads)
{
    int64_t dims[3] = {3, 70, 5};
    size_t n = 3 * 70 * 5;
    float *xs = malloc(n * sizeof *xs);
    kh_fill_random(xs, n, 7);
    for (size_t i = 0; i < n; i++)
        xs[i] *= 40;
    int32_t ax = (int32_t)(axis < 0 ? axis + 3 : axis);
    int64_t sdims[3] = {3, 70, 5};
    int32_t srank = 1;
    size_t ns;
    if (block) {
        sdims[ax] = (dims[ax] + block - 1) / block;
        srank = 3;
        ns = (size_t)(sdims[0] * sdims[1] * sdims[2]);
    } else {
        sdims[0] = dims[ax];
        ns = (size_t)dims[ax];
    }
    float *sc = malloc(ns * sizeof *sc);
    int8_t *zp = malloc(ns);
    for (size_t i = 0; i < ns; i++) {
        sc[i] = 0.05f + (float)(rnd() % 100) / 50.0f;
        zp[i] = (int8_t)(rnd() % 60) - 30;
    }
    kh_node *nd = kh_node_create("QuantizeLinear", opset, 3, 1);
    kh_attr_int(nd, "axis", axis);
    if (block)
        kh_attr_int(nd, "block_size", block);
    kh_set_threads(nd, threads);
    qkv_tensor ins[3] = {kh_f32(3, dims, xs), kh_f32(srank, sdims, sc),
                         kh_tensor(QKV_DTYPE_INT8, srank, sdims, zp)};
    qkv_tensor y;
    qkv_error err;
    cr_assert_eq(kh_run(nd, ins, &y, &err), QKV_OK, "%s", err.message);
    for (int64_t i = 0; i < dims[0]; i++)
        for (int64_t j = 0; j < dims[1]; j++)
            for (int64_t k = 0; k < dims[2]; k++) {
                int64_t c[3] = {i, j, k};
                size_t e = (size_t)((i * dims[1] + j) * dims[2] + k), si;
                if (block) {
                    c[ax] /= block;
                    si = (size_t)((c[0] * sdims[1] + c[1]) * sdims[2] + c[2]);
                } else {
                    si = (size_t)c[ax];
                }
                float want = sat(rintf(xs[e] / sc[si]) + (float)zp[si], -128, 127);
                cr_assert_eq(((int8_t *)y.data)[e], (int8_t)want,
                             "opset %lld axis %lld block %lld: element (%lld,%lld,%lld) = %d, "
                             "expected %d",
                             (long long)opset, (long long)axis, (long long)block, (long long)i,
                             (long long)j, (long long)k, ((int8_t *)y.data)[e], (int)want);
            }
    kh_free_outputs(&y, 1);
    kh_node_destroy(nd);
    free(xs);
    free(sc);
    free(zp);
}

Test(quantize, per_axis_and_blocked_match_reference)
{
    check_quantize_layout(13, 1, 0, 1);
    check_quantize_layout(13, -1, 0, 2);
    check_quantize_layout(13, 0, 0, 1);
    check_quantize_layout(21, 1, 16, 1); /* 70 = 4 * 16 + 6: a ragged last block */
    check_quantize_layout(21, 2, 2, 2);
}

Test(quantize, float16_input_and_scale_at_opset_19)
{
    uint16_t xs[4] = {0x3c00, 0xc000, 0x4200, 0x0000}; /* 1, -2, 3, 0 */
    uint16_t scale = 0x3800;                           /* 0.5 */
    int64_t dims[1] = {4};
    kh_node *n = kh_node_create("QuantizeLinear", 19, 2, 1);
    qkv_tensor ins[2] = {kh_tensor(QKV_DTYPE_FLOAT16, 1, dims, xs),
                         kh_tensor(QKV_DTYPE_FLOAT16, 0, NULL, &scale)};
    qkv_tensor y;
    qkv_error err;
    cr_assert_eq(kh_run(n, ins, &y, &err), QKV_OK, "%s", err.message);
    uint8_t want[4] = {2, 0, 6, 0};
    cr_assert_eq(memcmp(y.data, want, 4), 0);
    kh_free_outputs(&y, 1);
    kh_node_destroy(n);
}

/* ---- DequantizeLinear ------------------------------------------------------------- */

Test(dequantize, per_tensor_per_axis_and_int32)
{
    uint8_t xs[6] = {0, 3, 128, 255, 7, 9};
    int64_t dims[2] = {2, 3};
    float scale = 2.0f;
    uint8_t zp = 128;
    kh_node *n = kh_node_create("DequantizeLinear", 10, 3, 1);
    qkv_tensor ins[3] = {kh_tensor(QKV_DTYPE_UINT8, 2, dims, xs), kh_f32(0, NULL, &scale),
                         kh_tensor(QKV_DTYPE_UINT8, 0, NULL, &zp)};
    qkv_tensor y;
    qkv_error err;
    cr_assert_eq(kh_run(n, ins, &y, &err), QKV_OK, "%s", err.message);
    float want[6] = {-256, -250, 0, 254, -242, -238};
    for (int i = 0; i < 6; i++)
        cr_assert_eq(((float *)y.data)[i], want[i], "element %d", i);
    kh_free_outputs(&y, 1);
    kh_node_destroy(n);

    /* per axis 0 of int8, and axis -1 */
    int8_t xq[6] = {-128, 0, 127, 5, -5, 1};
    float sc2[2] = {0.5f, 3.0f}, sc3[3] = {1, 2, 4};
    int8_t zp2[2] = {1, -1}, zp3[3] = {0, 1, 2};
    int64_t d1[1] = {2}, d3[1] = {3};
    for (int axis = 0; axis < 2; axis++) {
        n = kh_node_create("DequantizeLinear", 13, 3, 1);
        kh_attr_int(n, "axis", axis ? -1 : 0);
        qkv_tensor in2[3] = {kh_tensor(QKV_DTYPE_INT8, 2, dims, xq),
                             kh_f32(1, axis ? d3 : d1, axis ? sc3 : sc2),
                             kh_tensor(QKV_DTYPE_INT8, 1, axis ? d3 : d1, axis ? zp3 : zp2)};
        cr_assert_eq(kh_run(n, in2, &y, &err), QKV_OK, "%s", err.message);
        for (int i = 0; i < 6; i++) {
            int a = axis ? i % 3 : i / 3;
            float w = axis ? (float)(xq[i] - zp3[a]) * sc3[a] : (float)(xq[i] - zp2[a]) * sc2[a];
            cr_assert_eq(((float *)y.data)[i], w, "axis %d element %d", axis, i);
        }
        kh_free_outputs(&y, 1);
        kh_node_destroy(n);
    }

    int32_t xi[3] = {-100000, 0, 7};
    int64_t di[1] = {3};
    n = kh_node_create("DequantizeLinear", 13, 2, 1);
    qkv_tensor in3[2] = {kh_tensor(QKV_DTYPE_INT32, 1, di, xi), kh_f32(0, NULL, &scale)};
    cr_assert_eq(kh_run(n, in3, &y, &err), QKV_OK, "%s", err.message);
    cr_assert_eq(((float *)y.data)[0], -200000.0f);
    cr_assert_eq(((float *)y.data)[2], 14.0f);
    kh_free_outputs(&y, 1);
    kh_node_destroy(n);
}

Test(dequantize, bfloat16_scale_gives_bfloat16_output_at_opset_19)
{
    uint8_t xs[2] = {10, 0};
    int64_t dims[1] = {2};
    uint16_t scale = 0x3f00; /* bfloat16 0.5 */
    kh_node *n = kh_node_create("DequantizeLinear", 19, 2, 1);
    qkv_tensor ins[2] = {kh_tensor(QKV_DTYPE_UINT8, 1, dims, xs),
                         kh_tensor(QKV_DTYPE_BFLOAT16, 0, NULL, &scale)};
    qkv_tensor y;
    qkv_error err;
    cr_assert_eq(kh_run(n, ins, &y, &err), QKV_OK, "%s", err.message);
    cr_assert_eq(y.dtype, QKV_DTYPE_BFLOAT16);
    cr_assert_eq(((uint16_t *)y.data)[0], 0x40a0); /* 5.0 */
    cr_assert_eq(((uint16_t *)y.data)[1], 0x0000);
    kh_free_outputs(&y, 1);
    kh_node_destroy(n);
}

/* ---- DynamicQuantizeLinear --------------------------------------------------------- */

static void check_dynamic(const float *xs, size_t n, size_t threads)
{
    int64_t dims[1] = {(int64_t)n};
    kh_node *nd = kh_node_create("DynamicQuantizeLinear", 11, 1, 3);
    kh_set_threads(nd, threads);
    qkv_tensor ins[1] = {kh_f32(1, dims, (float *)xs)}, outs[3];
    qkv_error err;
    cr_assert_eq(kh_run(nd, ins, outs, &err), QKV_OK, "%s", err.message);
    float lo = 0, hi = 0;
    for (size_t i = 0; i < n; i++) {
        lo = fminf(lo, xs[i]);
        hi = fmaxf(hi, xs[i]);
    }
    float scale = hi == lo ? 1.0f : (hi - lo) / 255.0f;
    float zp = sat(rintf(-lo / scale), 0, 255);
    cr_assert_eq(*(float *)outs[1].data, scale, "scale %g, expected %g", *(float *)outs[1].data,
                 scale);
    cr_assert_eq(*(uint8_t *)outs[2].data, (uint8_t)zp);
    cr_assert_eq(outs[1].rank, 0);
    for (size_t i = 0; i < n; i++) {
        uint8_t want = (uint8_t)sat(rintf(xs[i] / scale) + zp, 0, 255);
        cr_assert_eq(((uint8_t *)outs[0].data)[i], want, "element %zu (x=%g): %d, expected %d", i,
                     xs[i], ((uint8_t *)outs[0].data)[i], want);
    }
    kh_free_outputs(outs, 3);
    kh_node_destroy(nd);
}

Test(dynamic_quantize, matches_the_spec_formula)
{
    float a[6] = {0, 2, -3, -2.5f, 1.34f, 0.5f}; /* the ONNX example: scale 0.0196, zp 153 */
    check_dynamic(a, 6, 1);
    float neg[6] = {-1, -2.1f, -1.3f, -2.5f, -3.34f, -4}; /* zero point 255 */
    check_dynamic(neg, 6, 1);
    float pos[4] = {1, 2.1f, 3.9f, 4}; /* zero point 0 */
    check_dynamic(pos, 4, 1);
    float zeros[5] = {0, 0, 0, 0, 0}; /* range 0: scale 1 */
    check_dynamic(zeros, 5, 1);
    size_t big = 100000; /* several chunks, over two threads */
    float *x = malloc(big * sizeof *x);
    kh_fill_random(x, big, 3);
    x[77777] = -9.0f;
    x[12] = 4.0f;
    check_dynamic(x, big, 2);
    free(x);
}

/* ---- MatMulInteger ------------------------------------------------------------------ */

typedef struct mm_case {
    int64_t adims[4], bdims[4];
    int32_t arank, brank;
    bool a_signed, b_signed;
    int zp_mode; /* 0 none, 1 scalar, 2 per row 1-D / per column 1-D, 3 per batch entry */
} mm_case;

static int32_t get8(const uint8_t *p, size_t i, bool s)
{
    return s ? (int32_t)(int8_t)p[i] : (int32_t)p[i];
}

static size_t prod(const int64_t *d, int32_t r)
{
    size_t n = 1;
    for (int32_t i = 0; i < r; i++)
        n *= (size_t)d[i];
    return n;
}

/* C[batch][i][j] by the definition, for batch dims that broadcast. */
static void check_matmul_integer(mm_case c, size_t threads)
{
    size_t na = prod(c.adims, c.arank), nb = prod(c.bdims, c.brank);
    uint8_t *a = malloc(na), *b = malloc(nb);
    for (size_t i = 0; i < na; i++)
        a[i] = (uint8_t)rnd();
    for (size_t i = 0; i < nb; i++)
        b[i] = (uint8_t)rnd();
    int32_t ar = c.arank, br = c.brank;
    size_t m = (size_t)c.adims[ar - 2], k = (size_t)c.adims[ar - 1], n = (size_t)c.bdims[br - 1];
    /* zero points */
    int64_t zadims[4], zbdims[4];
    int32_t zar = 0, zbr = 0;
    if (c.zp_mode == 2) {
        zar = zbr = 1;
        zadims[0] = (int64_t)m;
        zbdims[0] = (int64_t)n;
    } else if (c.zp_mode == 3) {
        zar = ar;
        zbr = br;
        memcpy(zadims, c.adims, sizeof zadims);
        memcpy(zbdims, c.bdims, sizeof zbdims);
        zadims[ar - 1] = 1;
        zbdims[br - 2] = 1;
    }
    size_t nza = prod(zadims, zar), nzb = prod(zbdims, zbr);
    uint8_t *za = malloc(nza), *zb = malloc(nzb);
    for (size_t i = 0; i < nza; i++)
        za[i] = (uint8_t)rnd();
    for (size_t i = 0; i < nzb; i++)
        zb[i] = (uint8_t)rnd();
    qkv_dtype ta = c.a_signed ? QKV_DTYPE_INT8 : QKV_DTYPE_UINT8;
    qkv_dtype tb = c.b_signed ? QKV_DTYPE_INT8 : QKV_DTYPE_UINT8;
    kh_node *nd = kh_node_create("MatMulInteger", 10, c.zp_mode ? 4 : 2, 1);
    kh_set_threads(nd, threads);
    qkv_tensor ins[4] = {kh_tensor(ta, ar, c.adims, a), kh_tensor(tb, br, c.bdims, b),
                         kh_tensor(ta, zar, zadims, za), kh_tensor(tb, zbr, zbdims, zb)};
    qkv_tensor y;
    qkv_error err;
    cr_assert_eq(kh_run(nd, ins, &y, &err), QKV_OK, "%s", err.message);
    cr_assert_eq(y.dtype, QKV_DTYPE_INT32);
    /* batch: both ranks 3 here at most, broadcasting over dim 0 */
    size_t batch = (size_t)y.dims[0] * (y.rank == 4 ? (size_t)y.dims[1] : 1);
    if (y.rank == 2)
        batch = 1;
    size_t a_batches = na / (m * k), b_batches = nb / (k * n);
    for (size_t e = 0; e < batch; e++) {
        size_t ea = a_batches == 1 ? 0 : e, eb = b_batches == 1 ? 0 : e;
        for (size_t i = 0; i < m; i++)
            for (size_t j = 0; j < n; j++) {
                int32_t a0 = 0, b0 = 0;
                if (c.zp_mode == 1) {
                    a0 = get8(za, 0, c.a_signed);
                    b0 = get8(zb, 0, c.b_signed);
                } else if (c.zp_mode == 2) {
                    a0 = get8(za, i, c.a_signed);
                    b0 = get8(zb, j, c.b_signed);
                } else if (c.zp_mode == 3) {
                    a0 = get8(za, ea * m + i, c.a_signed);
                    b0 = get8(zb, eb * n + j, c.b_signed);
                }
                int64_t acc = 0;
                for (size_t p = 0; p < k; p++)
                    acc += (int64_t)(get8(a, (ea * m + i) * k + p, c.a_signed) - a0) *
                           (get8(b, (eb * k + p) * n + j, c.b_signed) - b0);
                int32_t got = ((int32_t *)y.data)[(e * m + i) * n + j];
                cr_assert_eq(got, (int32_t)acc,
                             "a %s b %s zp mode %d: Y[%zu][%zu][%zu] = %d, expected %lld",
                             c.a_signed ? "int8" : "uint8", c.b_signed ? "int8" : "uint8",
                             c.zp_mode, e, i, j, got, (long long)acc);
            }
    }
    kh_free_outputs(&y, 1);
    kh_node_destroy(nd);
    free(a);
    free(b);
    free(za);
    free(zb);
}

Test(matmul_integer, every_pairing_and_zero_point_layout)
{
    for (int zp = 0; zp < 4; zp++)
        for (int as = 0; as < 2; as++)
            for (int bs = 0; bs < 2; bs++) {
                mm_case c = {{2, 13, 40}, {2, 40, 21}, 3, 3, as, bs, zp};
                check_matmul_integer(c, 1);
            }
}

Test(matmul_integer, batch_folds_and_broadcasts_over_threads)
{
    mm_case shared_b = {{3, 37, 300}, {300, 70}, 3, 2, false, true, 2};
    check_matmul_integer(shared_b, 2);
    shared_b.zp_mode = 1;
    check_matmul_integer(shared_b, 2);
    mm_case shared_a = {{1, 9, 64}, {4, 64, 33}, 3, 3, true, false, 1};
    check_matmul_integer(shared_a, 2);
    mm_case per_entry = {{2, 130, 70}, {2, 70, 150}, 3, 3, false, true, 3};
    check_matmul_integer(per_entry, 2);
    mm_case plain = {{200, 520}, {520, 260}, 2, 2, false, false, 2};
    check_matmul_integer(plain, 2);
}

/* ---- QLinearMatMul ------------------------------------------------------------------ */

static void check_qlinear(bool a_signed, bool b_signed, bool y_signed, bool per_col, size_t threads)
{
    size_t m = 11, k = 37, n = 19;
    int64_t adims[2] = {(int64_t)m, (int64_t)k}, bdims[2] = {(int64_t)k, (int64_t)n};
    int64_t coldims[1] = {(int64_t)n};
    uint8_t *a = malloc(m * k), *b = malloc(k * n), zb[19], za = (uint8_t)rnd(), zy = 17;
    float sb[19], sa = 0.02f, sy = 0.9f;
    for (size_t i = 0; i < m * k; i++)
        a[i] = (uint8_t)rnd();
    for (size_t i = 0; i < k * n; i++)
        b[i] = (uint8_t)rnd();
    for (size_t j = 0; j < n; j++) {
        zb[j] = (uint8_t)rnd();
        sb[j] = 0.01f + (float)(rnd() % 100) * 0.001f;
    }
    qkv_dtype ta = a_signed ? QKV_DTYPE_INT8 : QKV_DTYPE_UINT8;
    qkv_dtype tb = b_signed ? QKV_DTYPE_INT8 : QKV_DTYPE_UINT8;
    qkv_dtype ty = y_signed ? QKV_DTYPE_INT8 : QKV_DTYPE_UINT8;
    kh_node *nd = kh_node_create("QLinearMatMul", 10, 8, 1);
    kh_set_threads(nd, threads);
    qkv_tensor ins[8] = {kh_tensor(ta, 2, adims, a),   kh_f32(0, NULL, &sa),
                         kh_tensor(ta, 0, NULL, &za),  kh_tensor(tb, 2, bdims, b),
                         kh_f32(per_col, coldims, sb), kh_tensor(tb, per_col, coldims, zb),
                         kh_f32(0, NULL, &sy),         kh_tensor(ty, 0, NULL, &zy)};
    qkv_tensor y;
    qkv_error err;
    cr_assert_eq(kh_run(nd, ins, &y, &err), QKV_OK, "%s", err.message);
    cr_assert_eq(y.dtype, ty);
    for (size_t i = 0; i < m; i++)
        for (size_t j = 0; j < n; j++) {
            size_t cj = per_col ? j : 0;
            int64_t acc = 0;
            for (size_t p = 0; p < k; p++)
                acc += (int64_t)(get8(a, i * k + p, a_signed) - get8(&za, 0, a_signed)) *
                       (get8(b, p * n + j, b_signed) - get8(zb, cj, b_signed));
            float mult = sa * sb[cj] / sy;
            float zyf = (float)get8(&zy, 0, y_signed);
            float want =
                sat(rintf((float)acc * mult) + zyf, y_signed ? -128 : 0, y_signed ? 127 : 255);
            int got = y_signed ? ((int8_t *)y.data)[i * n + j] : ((uint8_t *)y.data)[i * n + j];
            cr_assert_eq(got, (int)want, "y[%zu][%zu] = %d, expected %d (acc %lld)", i, j, got,
                         (int)want, (long long)acc);
        }
    kh_free_outputs(&y, 1);
    kh_node_destroy(nd);
    free(a);
    free(b);
}

Test(qlinear_matmul, requantizes_per_tensor_and_per_column)
{
    for (int v = 0; v < 8; v++)
        check_qlinear(v & 1, (v >> 1) & 1, (v >> 2) & 1, v % 3 == 0, v % 2 ? 2 : 1);
}

/* ---- errors ------------------------------------------------------------------------- */

static void expect_error(kh_node *n, qkv_tensor *ins, size_t n_out, qkv_status want,
                         const char *needle)
{
    qkv_tensor outs[3];
    qkv_error err;
    qkv_status st = kh_run(n, ins, outs, &err);
    cr_assert_eq(st, want, "status %d, expected %d: %s", st, want, err.message);
    cr_assert(strstr(err.message, needle), "message '%s' lacks '%s'", err.message, needle);
    (void)n_out;
    kh_node_destroy(n);
}

Test(quant_errors, scale_and_zero_point_shapes)
{
    float xs[6] = {0}, sc[4] = {1, 1, 1, 1};
    uint8_t zp[4] = {0};
    int64_t dims[2] = {2, 3}, d4[1] = {4}, d3[1] = {3}, d2[1] = {2};
    /* per-axis length differs from the axis dim */
    kh_node *n = kh_node_create("QuantizeLinear", 13, 2, 1);
    qkv_tensor in1[2] = {kh_f32(2, dims, xs), kh_f32(1, d4, sc)};
    expect_error(n, in1, 1, QKV_ERR_SHAPE, "has 4 elements but input 0 [2,3] has 3 along axis 1");
    /* opset 10: only per tensor */
    n = kh_node_create("QuantizeLinear", 10, 2, 1);
    qkv_tensor in2[2] = {kh_f32(2, dims, xs), kh_f32(1, d3, sc)};
    expect_error(n, in2, 1, QKV_ERR_SHAPE, "must be a scalar");
    /* zero point shape differs from the scale's */
    n = kh_node_create("QuantizeLinear", 13, 3, 1);
    qkv_tensor in3[3] = {kh_f32(2, dims, xs), kh_f32(1, d3, sc),
                         kh_tensor(QKV_DTYPE_UINT8, 1, d2, zp)};
    expect_error(n, in3, 1, QKV_ERR_SHAPE, "must have the shape of input 1");
    /* axis out of range */
    n = kh_node_create("DequantizeLinear", 13, 2, 1);
    kh_attr_int(n, "axis", 2);
    uint8_t xq[6] = {0};
    qkv_tensor in4[2] = {kh_tensor(QKV_DTYPE_UINT8, 2, dims, xq), kh_f32(1, d3, sc)};
    expect_error(n, in4, 1, QKV_ERR_SHAPE, "attribute 'axis' is 2");
    /* block_size: scale of the wrong shape, and negative */
    n = kh_node_create("QuantizeLinear", 21, 2, 1);
    kh_attr_int(n, "block_size", 2);
    qkv_tensor in5[2] = {kh_f32(2, dims, xs), kh_f32(1, d3, sc)};
    expect_error(n, in5, 1, QKV_ERR_SHAPE, "block_size 2");
    n = kh_node_create("QuantizeLinear", 21, 2, 1);
    kh_attr_int(n, "block_size", -1);
    expect_error(n, in5, 1, QKV_ERR_INVALID_MODEL, "'block_size' is -1");
    n = kh_node_create("QuantizeLinear", 21, 2, 1);
    kh_attr_int(n, "output_dtype", QKV_DTYPE_FLOAT8E4M3FN);
    expect_error(n, in5, 1, QKV_ERR_UNSUPPORTED, "'output_dtype' is 17");
}

Test(quant_errors, types)
{
    float xs[3] = {0}, sc = 1;
    int64_t d3[1] = {3};
    int8_t zp = 0;
    uint8_t zu = 0;
    /* DequantizeLinear: zero point of another type than x */
    uint8_t xq[3] = {0};
    kh_node *n = kh_node_create("DequantizeLinear", 13, 3, 1);
    qkv_tensor in1[3] = {kh_tensor(QKV_DTYPE_UINT8, 1, d3, xq), kh_f32(0, NULL, &sc),
                         kh_tensor(QKV_DTYPE_INT8, 0, NULL, &zp)};
    expect_error(n, in1, 1, QKV_ERR_TYPE, "input 2 (zero point) is int8 but input 0 is uint8");
    /* int32 with a nonzero zero point */
    int32_t xi[3] = {0}, zi = 4;
    n = kh_node_create("DequantizeLinear", 13, 3, 1);
    qkv_tensor in2[3] = {kh_tensor(QKV_DTYPE_INT32, 1, d3, xi), kh_f32(0, NULL, &sc),
                         kh_tensor(QKV_DTYPE_INT32, 0, NULL, &zi)};
    expect_error(n, in2, 1, QKV_ERR_INVALID_MODEL, "must be 0, element 0 is 4");
    /* QuantizeLinear-13 x float16: not in the opset */
    uint16_t xh[3] = {0};
    n = kh_node_create("QuantizeLinear", 13, 3, 1);
    qkv_tensor in3[3] = {kh_tensor(QKV_DTYPE_FLOAT16, 1, d3, xh), kh_f32(0, NULL, &sc),
                         kh_tensor(QKV_DTYPE_UINT8, 0, NULL, &zu)};
    expect_error(n, in3, 1, QKV_ERR_TYPE, "float16");
    /* DynamicQuantizeLinear takes float32 only */
    n = kh_node_create("DynamicQuantizeLinear", 11, 1, 3);
    qkv_tensor in4[1] = {kh_tensor(QKV_DTYPE_FLOAT16, 1, d3, xh)};
    expect_error(n, in4, 3, QKV_ERR_TYPE, "float16");
    (void)xs;
}

Test(quant_errors, matmul_integer_shapes_and_types)
{
    uint8_t a[12] = {0}, b[12] = {0}, z[4] = {0};
    int8_t zs = 0;
    int64_t ad[2] = {3, 4}, bd[2] = {4, 3}, bad[2] = {3, 3}, z2[1] = {2}, z4[2] = {4, 1};
    kh_node *n = kh_node_create("MatMulInteger", 10, 2, 1);
    qkv_tensor in1[2] = {kh_tensor(QKV_DTYPE_UINT8, 2, ad, a),
                         kh_tensor(QKV_DTYPE_UINT8, 2, bad, b)};
    expect_error(n, in1, 1, QKV_ERR_SHAPE, "inner dimensions differ");
    n = kh_node_create("MatMulInteger", 10, 4, 1);
    qkv_tensor in2[4] = {kh_tensor(QKV_DTYPE_UINT8, 2, ad, a), kh_tensor(QKV_DTYPE_UINT8, 2, bd, b),
                         kh_tensor(QKV_DTYPE_INT8, 0, NULL, &zs),
                         kh_tensor(QKV_DTYPE_UINT8, 0, NULL, z)};
    expect_error(n, in2, 1, QKV_ERR_TYPE,
                 "input 2 (A's zero point) is int8 but input 0 (A) is uint8");
    /* a zero point of 2 elements for 3 rows */
    n = kh_node_create("MatMulInteger", 10, 3, 1);
    qkv_tensor in3[3] = {kh_tensor(QKV_DTYPE_UINT8, 2, ad, a), kh_tensor(QKV_DTYPE_UINT8, 2, bd, b),
                         kh_tensor(QKV_DTYPE_UINT8, 1, z2, z)};
    expect_error(n, in3, 1, QKV_ERR_SHAPE,
                 "input 2 (zero point) [2] fits neither per tensor nor per row");
    /* B's zero point shaped as a row one */
    n = kh_node_create("MatMulInteger", 10, 4, 1);
    kh_omit_input(n, 2);
    qkv_tensor in4[4] = {kh_tensor(QKV_DTYPE_UINT8, 2, ad, a), kh_tensor(QKV_DTYPE_UINT8, 2, bd, b),
                         kh_tensor(QKV_DTYPE_UINT8, 0, NULL, z),
                         kh_tensor(QKV_DTYPE_UINT8, 2, z4, z)};
    expect_error(n, in4, 1, QKV_ERR_SHAPE, "per column of input 1");
    /* QLinearMatMul: y_scale must be one element */
    float s1 = 1, s2[2] = {1, 1};
    n = kh_node_create("QLinearMatMul", 10, 8, 1);
    qkv_tensor in5[8] = {kh_tensor(QKV_DTYPE_UINT8, 2, ad, a),
                         kh_f32(0, NULL, &s1),
                         kh_tensor(QKV_DTYPE_UINT8, 0, NULL, z),
                         kh_tensor(QKV_DTYPE_UINT8, 2, bd, b),
                         kh_f32(0, NULL, &s1),
                         kh_tensor(QKV_DTYPE_UINT8, 0, NULL, z),
                         kh_f32(1, z2, s2),
                         kh_tensor(QKV_DTYPE_UINT8, 0, NULL, z)};
    expect_error(n, in5, 1, QKV_ERR_SHAPE, "must have one element each");
}

/* ---- ConvInteger and QLinearConv ----------------------------------------------------- */

typedef struct conv_case {
    int64_t n, c, h, w, m, kh, kw, group;
    int64_t sh, sw, dh, dw, ph0, pw0, ph1, pw1;
    bool one_d; /* rank 3: h, kh 1, no pads or stride along h */
    bool x_signed, w_signed, w_zero_per_channel;
} conv_case;

/* int32 acc of output (img, oc, oy, ox) by the definition; padding reads
 * nothing (it is x's zero point, which subtracts to 0). */
static int64_t conv_ref(const conv_case *c, const uint8_t *x, const uint8_t *w, int32_t xz,
                        const int32_t *wz, int64_t img, int64_t oc, int64_t oy, int64_t ox)
{
    int64_t cg = c->c / c->group, mg = c->m / c->group, gi = oc / mg;
    int64_t acc = 0;
    for (int64_t ic = 0; ic < cg; ic++)
        for (int64_t ky = 0; ky < c->kh; ky++)
            for (int64_t kx = 0; kx < c->kw; kx++) {
                int64_t iy = oy * c->sh - c->ph0 + ky * c->dh,
                        ix = ox * c->sw - c->pw0 + kx * c->dw;
                if (iy < 0 || iy >= c->h || ix < 0 || ix >= c->w)
                    continue;
                size_t xi = (size_t)(((img * c->c + gi * cg + ic) * c->h + iy) * c->w + ix);
                size_t wi = (size_t)(((oc * cg + ic) * c->kh + ky) * c->kw + kx);
                acc +=
                    (int64_t)(get8(x, xi, c->x_signed) - xz) * (get8(w, wi, c->w_signed) - wz[oc]);
            }
    return acc;
}

static void run_conv_case(conv_case c, bool qlinear, size_t threads)
{
    int64_t oh = (c.h + c.ph0 + c.ph1 - ((c.kh - 1) * c.dh + 1)) / c.sh + 1;
    int64_t ow = (c.w + c.pw0 + c.pw1 - ((c.kw - 1) * c.dw + 1)) / c.sw + 1;
    size_t nx = (size_t)(c.n * c.c * c.h * c.w), nw = (size_t)(c.m * (c.c / c.group) * c.kh * c.kw);
    uint8_t *x = malloc(nx), *w = malloc(nw), xz = (uint8_t)rnd(), wzb[64];
    int32_t wz[64], bias[64];
    float wsc[64], xs = 0.02f, ys = 0.7f;
    uint8_t yz = 100;
    for (size_t i = 0; i < nx; i++)
        x[i] = (uint8_t)rnd();
    for (size_t i = 0; i < nw; i++)
        w[i] = (uint8_t)rnd();
    for (int64_t i = 0; i < c.m; i++) {
        wzb[i] = c.w_zero_per_channel || i == 0 ? (uint8_t)rnd() : wzb[0];
        wz[i] = get8(wzb, (size_t)i, c.w_signed);
        bias[i] = (int32_t)(rnd() % 2001) - 1000;
        wsc[i] = c.w_zero_per_channel ? 0.005f + (float)(rnd() % 50) * 0.0005f : 0.01f;
    }
    qkv_dtype tx = c.x_signed ? QKV_DTYPE_INT8 : QKV_DTYPE_UINT8;
    qkv_dtype tw = c.w_signed ? QKV_DTYPE_INT8 : QKV_DTYPE_UINT8;
    int32_t rank = c.one_d ? 3 : 4;
    int64_t xd[4] = {c.n, c.c, c.h, c.w}, wd[4] = {c.m, c.c / c.group, c.kh, c.kw};
    if (c.one_d) {
        xd[2] = c.w;
        wd[2] = c.kw;
    }
    int64_t md[1] = {c.m};
    int32_t zr = c.w_zero_per_channel ? 1 : 0;
    kh_node *nd = kh_node_create(qlinear ? "QLinearConv" : "ConvInteger", 10, qlinear ? 9 : 4, 1);
    kh_set_threads(nd, threads);
    int64_t strides[2] = {c.sh, c.sw}, dil[2] = {c.dh, c.dw},
            pads[4] = {c.ph0, c.pw0, c.ph1, c.pw1};
    if (c.one_d) {
        strides[0] = c.sw;
        dil[0] = c.dw;
        pads[0] = c.pw0;
        pads[1] = c.pw1;
    }
    kh_attr_ints(nd, "strides", strides, (size_t)(rank - 2));
    kh_attr_ints(nd, "dilations", dil, (size_t)(rank - 2));
    kh_attr_ints(nd, "pads", pads, (size_t)(2 * (rank - 2)));
    kh_attr_int(nd, "group", c.group);
    qkv_tensor y;
    qkv_error err;
    qkv_status st;
    if (qlinear) {
        qkv_tensor ins[9] = {kh_tensor(tx, rank, xd, x),
                             kh_f32(0, NULL, &xs),
                             kh_tensor(tx, 0, NULL, &xz),
                             kh_tensor(tw, rank, wd, w),
                             kh_f32(zr, md, wsc),
                             kh_tensor(tw, zr, md, wzb),
                             kh_f32(0, NULL, &ys),
                             kh_tensor(QKV_DTYPE_UINT8, 0, NULL, &yz),
                             kh_tensor(QKV_DTYPE_INT32, 1, md, bias)};
        st = kh_run(nd, ins, &y, &err);
    } else {
        qkv_tensor ins[4] = {kh_tensor(tx, rank, xd, x), kh_tensor(tw, rank, wd, w),
                             kh_tensor(tx, 0, NULL, &xz), kh_tensor(tw, zr, md, wzb)};
        st = kh_run(nd, ins, &y, &err);
    }
    cr_assert_eq(st, QKV_OK, "%s", err.message);
    cr_assert_eq(y.dims[1], c.m);
    cr_assert_eq(y.dims[rank - 1], ow);
    int32_t xzv = get8(&xz, 0, c.x_signed);
    for (int64_t img = 0; img < c.n; img++)
        for (int64_t oc = 0; oc < c.m; oc++)
            for (int64_t oy = 0; oy < oh; oy++)
                for (int64_t ox = 0; ox < ow; ox++) {
                    int64_t acc = conv_ref(&c, x, w, xzv, wz, img, oc, oy, ox);
                    size_t e = (size_t)(((img * c.m + oc) * oh + oy) * ow + ox);
                    if (!qlinear) {
                        cr_assert_eq(((int32_t *)y.data)[e], (int32_t)acc,
                                     "Y[%lld][%lld][%lld][%lld] = %d, expected %lld",
                                     (long long)img, (long long)oc, (long long)oy, (long long)ox,
                                     ((int32_t *)y.data)[e], (long long)acc);
                        continue;
                    }
                    float mult = xs * wsc[c.w_zero_per_channel ? oc : 0] / ys;
                    float want = sat(rintf((float)(acc + bias[oc]) * mult) + yz, 0, 255);
                    cr_assert_eq(((uint8_t *)y.data)[e], (uint8_t)want,
                                 "y[%lld][%lld][%lld][%lld] = %d, expected %d", (long long)img,
                                 (long long)oc, (long long)oy, (long long)ox,
                                 ((uint8_t *)y.data)[e], (int)want);
                }
    kh_free_outputs(&y, 1);
    kh_node_destroy(nd);
    free(x);
    free(w);
}

Test(conv_integer, matches_direct_convolution)
{
    /* n c h w m kh kw group sh sw dh dw pads(4) 1d xs ws per-channel */
    conv_case cases[] = {
        {2, 3, 9, 8, 4, 3, 3, 1, 1, 1, 1, 1, 1, 1, 1, 1, false, false, true, false},
        {1, 4, 11, 10, 6, 3, 2, 2, 2, 1, 1, 2, 0, 1, 2, 0, false, true, false, true},
        {1, 6, 7, 7, 6, 3, 3, 6, 1, 2, 2, 1, 2, 2, 2, 2, false, false, false, true}, /* depthwise */
        {2, 16, 5, 6, 8, 1, 1, 1, 1, 1, 1, 1, 0, 0, 0, 0, false, true, true, false}, /* pointwise */
        {1, 5, 1, 40, 7, 1, 5, 1, 1, 3, 1, 2, 0, 2, 0, 1, true, false, true, true},  /* 1-D */
        {1, 70, 6, 6, 33, 3, 3, 1, 1, 1, 1, 1, 1, 1, 1, 1, false, false, true, true}, /* deep k */
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        run_conv_case(cases[i], false, i % 2 ? 2 : 1);
        run_conv_case(cases[i], true, i % 2 ? 1 : 2);
    }
}

Test(quant_errors, conv_integer_shapes)
{
    uint8_t x[2 * 3 * 4 * 4] = {0}, w[4 * 3 * 2 * 2] = {0}, z[4] = {0};
    int64_t xd[4] = {2, 3, 4, 4}, wd[4] = {4, 3, 2, 2}, wd2[4] = {4, 2, 2, 2}, wd3[3] = {4, 3, 2};
    int64_t z3[1] = {3};
    kh_node *n = kh_node_create("ConvInteger", 10, 2, 1);
    qkv_tensor in1[2] = {kh_tensor(QKV_DTYPE_UINT8, 4, xd, x),
                         kh_tensor(QKV_DTYPE_UINT8, 4, wd2, w)};
    expect_error(n, in1, 1, QKV_ERR_SHAPE, "has 3 channels but input 1 (w)");
    n = kh_node_create("ConvInteger", 10, 2, 1);
    qkv_tensor in2[2] = {kh_tensor(QKV_DTYPE_UINT8, 4, xd, x),
                         kh_tensor(QKV_DTYPE_UINT8, 3, wd3, w)};
    expect_error(n, in2, 1, QKV_ERR_SHAPE, "must have the rank of input 0");
    n = kh_node_create("ConvInteger", 10, 4, 1);
    qkv_tensor in3[4] = {kh_tensor(QKV_DTYPE_UINT8, 4, xd, x), kh_tensor(QKV_DTYPE_UINT8, 4, wd, w),
                         kh_tensor(QKV_DTYPE_UINT8, 0, NULL, z),
                         kh_tensor(QKV_DTYPE_UINT8, 1, z3, z)};
    expect_error(n, in3, 1, QKV_ERR_SHAPE, "must be a scalar or 1-D of the 4 output channels");
    n = kh_node_create("ConvInteger", 10, 3, 1);
    qkv_tensor in4[3] = {kh_tensor(QKV_DTYPE_UINT8, 4, xd, x), kh_tensor(QKV_DTYPE_UINT8, 4, wd, w),
                         kh_tensor(QKV_DTYPE_INT8, 0, NULL, z)};
    expect_error(n, in4, 1, QKV_ERR_TYPE, "x's zero point) is int8");
    n = kh_node_create("ConvInteger", 10, 2, 1);
    kh_attr_int(n, "group", 3);
    int64_t wd4[4] = {4, 1, 2, 2};
    qkv_tensor in5[2] = {kh_tensor(QKV_DTYPE_UINT8, 4, xd, x),
                         kh_tensor(QKV_DTYPE_UINT8, 4, wd4, w)};
    expect_error(n, in5, 1, QKV_ERR_SHAPE, "not a multiple of group 3");
}

/* ---- NaN scales ------------------------------------------------------------------------ */

/* A NaN scale makes every requantized value NaN; like QuantizeLinear, the
 * output is then the zero point (a NaN converted to an integer is undefined
 * behaviour, which UBSan reported from a fuzzed QLinearMatMul). */
Test(qlinear_matmul, nan_scale_gives_the_zero_point)
{
    int64_t adims[2] = {2, 3}, bdims[2] = {3, 2};
    uint8_t a[6] = {1, 2, 3, 4, 5, 6}, b[6] = {7, 8, 9, 10, 11, 12}, za = 0, zb = 0, zy = 77;
    float sa = __builtin_nanf(""), sb = 0.5f, sy = 0.25f;
    kh_node *nd = kh_node_create("QLinearMatMul", 10, 8, 1);
    qkv_tensor ins[8] = {kh_tensor(QKV_DTYPE_UINT8, 2, adims, a),
                         kh_f32(0, NULL, &sa),
                         kh_tensor(QKV_DTYPE_UINT8, 0, NULL, &za),
                         kh_tensor(QKV_DTYPE_UINT8, 2, bdims, b),
                         kh_f32(0, NULL, &sb),
                         kh_tensor(QKV_DTYPE_UINT8, 0, NULL, &zb),
                         kh_f32(0, NULL, &sy),
                         kh_tensor(QKV_DTYPE_UINT8, 0, NULL, &zy)};
    qkv_tensor y;
    qkv_error err;
    cr_assert_eq(kh_run(nd, ins, &y, &err), QKV_OK, "%s", err.message);
    for (size_t i = 0; i < 4; i++)
        cr_assert_eq(((uint8_t *)y.data)[i], 77, "y[%zu] = %d", i, ((uint8_t *)y.data)[i]);
    kh_free_outputs(&y, 1);
    kh_node_destroy(nd);
}

Test(conv_integer, qlinear_conv_nan_scale_gives_the_zero_point)
{
    int64_t xd[4] = {1, 1, 2, 2}, wd[4] = {2, 1, 1, 1}, md[1] = {2};
    uint8_t x[4] = {1, 2, 3, 4}, w[2] = {5, 6}, xz = 0, wz = 0, yz = 9;
    float xs = 0.1f, ws[2] = {0.2f, __builtin_nanf("")}, ys = 0.5f;
    kh_node *nd = kh_node_create("QLinearConv", 10, 8, 1);
    qkv_tensor ins[8] = {kh_tensor(QKV_DTYPE_UINT8, 4, xd, x),
                         kh_f32(0, NULL, &xs),
                         kh_tensor(QKV_DTYPE_UINT8, 0, NULL, &xz),
                         kh_tensor(QKV_DTYPE_UINT8, 4, wd, w),
                         kh_f32(1, md, ws),
                         kh_tensor(QKV_DTYPE_UINT8, 0, NULL, &wz),
                         kh_f32(0, NULL, &ys),
                         kh_tensor(QKV_DTYPE_UINT8, 0, NULL, &yz)};
    qkv_tensor y;
    qkv_error err;
    cr_assert_eq(kh_run(nd, ins, &y, &err), QKV_OK, "%s", err.message);
    for (size_t i = 0; i < 4; i++) { /* channel 0: round(x * 5 * 0.04) + 9 */
        float want = rintf((float)(x[i] * 5) * (0.1f * 0.2f / 0.5f)) + 9;
        cr_assert_eq(((uint8_t *)y.data)[i], (uint8_t)want, "y[0][%zu] = %d", i,
                     ((uint8_t *)y.data)[i]);
        cr_assert_eq(((uint8_t *)y.data)[4 + i], 9, "y[1][%zu] = %d", i,
                     ((uint8_t *)y.data)[4 + i]);
    }
    kh_free_outputs(&y, 1);
    kh_node_destroy(nd);
}
