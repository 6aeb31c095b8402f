/* float16/bfloat16: the conversions of half.h/half.c (every half exhaustively,
 * rounding checked against its definition, the F16C bulk path against the
 * scalar one) and the float16 paths added to MatMul, Softmax and the Reduce
 * ops, against double references on random inputs. */
#include <criterion/criterion.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "half.h"
#include "kernel_harness.h"

/* The value of half h from its definition (sign, 5-bit exponent, 10-bit
 * mantissa), independent of the code under test. NaN for NaNs. */
static double half_value(uint16_t h)
{
    int sign = h >> 15, e = (h >> 10) & 31, m = h & 1023;
    double v;
    if (e == 31)
        v = m ? NAN : INFINITY;
    else if (e == 0)
        v = ldexp(m, -24);
    else
        v = ldexp(1024 + m, e - 25);
    return sign ? -v : v;
}

static double bf16_value(uint16_t b)
{
    int sign = b >> 15, e = (b >> 7) & 255, m = b & 127;
    double v;
    if (e == 255)
        v = m ? NAN : INFINITY;
    else if (e == 0)
        v = ldexp(m, -133);
    else
        v = ldexp(128 + m, e - 134);
    return sign ? -v : v;
}

static uint32_t rng = 12345;
static uint32_t rnd32(void)
{
    rng ^= rng << 13;
    rng ^= rng >> 17;
    rng ^= rng << 5;
    return rng;
}

static float f32_of_bits(uint32_t u)
{
    float f;
    memcpy(&f, &u, sizeof f);
    return f;
}

Test(half, every_float16_widens_to_its_exact_value_in_scalar_and_bulk_paths)
{
    static uint16_t h[65536];
    static float bulk[65536];
    for (uint32_t i = 0; i < 65536; i++)
        h[i] = (uint16_t)i;
    qkv_half_to_f32(bulk, h, QKV_DTYPE_FLOAT16, 65536);
    for (uint32_t i = 0; i < 65536; i++) {
        double want = half_value(h[i]);
        float s = qkv_f16_to_f32(h[i]);
        if (isnan(want)) {
            cr_assert(isnan(s) && isnan(bulk[i]), "half 0x%04x: NaN expected", i);
            cr_assert_eq(signbit(s) != 0, (i >> 15) != 0, "half 0x%04x: NaN sign", i);
            /* the payload survives (F16C quiets a signalling NaN: compare
             * without the quiet bit) */
            uint32_t ps, pb;
            memcpy(&ps, &s, 4);
            memcpy(&pb, &bulk[i], 4);
            cr_assert_eq(ps & 0xffbfffffu, pb & 0xffbfffffu, "half 0x%04x: NaN payload", i);
        } else {
            cr_assert_eq((double)s, want, "half 0x%04x: scalar %.9g, expected %.9g", i, s, want);
            cr_assert_eq((double)bulk[i], want, "half 0x%04x: bulk %.9g", i, bulk[i]);
            cr_assert_eq(signbit(s) != 0, (i >> 15) != 0, "half 0x%04x: sign of zero", i);
        }
    }
}

Test(half, every_float16_round_trips_and_midpoints_round_to_even)
{
    for (uint32_t i = 0; i < 65536; i++) {
        uint16_t h = (uint16_t)i;
        double v = half_value(h);
        if (isnan(v)) {
            uint16_t r = qkv_f32_to_f16(qkv_f16_to_f32(h));
            cr_assert(((r >> 10) & 31) == 31 && (r & 1023), "NaN 0x%04x came back as 0x%04x", i, r);
            continue;
        }
        cr_assert_eq(qkv_f32_to_f16((float)v), h, "half 0x%04x does not round trip", i);
        /* the midpoint to the next half up in magnitude (exact in float) */
        if ((i & 0x7fff) >= 0x7bff) /* max finite and inf: no next finite half */
            continue;
        uint16_t up = (uint16_t)(h + 1);
        double mid = (v + half_value(up)) / 2;
        uint16_t even = (h & 1) ? up : h;
        cr_assert_eq(qkv_f32_to_f16((float)mid), even, "midpoint after 0x%04x: got 0x%04x", i,
                     qkv_f32_to_f16((float)mid));
        /* just off the midpoint goes to the nearer one */
        float below = nextafterf((float)mid, (float)v), above = nextafterf((float)mid, INFINITY);
        if (h & 0x8000) /* negative (-0 included): away from zero is down */
            above = nextafterf((float)mid, -INFINITY);
        cr_assert_eq(qkv_f32_to_f16(below), h, "below the midpoint after 0x%04x", i);
        cr_assert_eq(qkv_f32_to_f16(above), up, "above the midpoint after 0x%04x", i);
    }
    /* overflow: 65504 is the largest half, 65520 (its midpoint to 2^16) ties to inf */
    cr_assert_eq(qkv_f32_to_f16(65504.0f), 0x7bff);
    cr_assert_eq(qkv_f32_to_f16(65519.99f), 0x7bff);
    cr_assert_eq(qkv_f32_to_f16(65520.0f), 0x7c00);
    cr_assert_eq(qkv_f32_to_f16(-1e30f), 0xfc00);
    cr_assert_eq(qkv_f32_to_f16(0x1p-25f), 0x0000, "half the smallest subnormal ties to 0");
    cr_assert_eq(qkv_f32_to_f16(0x1.8p-25f), 0x0001);
}

Test(half, bulk_narrowing_equals_the_scalar_path_bit_for_bit)
{
    enum { N = 100003 }; /* odd: a scalar tail after the 8-wide F16C blocks */
    float *f = malloc(N * sizeof *f);
    uint16_t *bulk = malloc(N * sizeof *bulk);
    for (size_t i = 0; i < N; i++) {
        uint32_t u = rnd32();
        /* mostly the half range (exponents 100..150), some anything at all */
        if (i % 4)
            u = (u & 0x807fffffu) | ((100u + u % 51u) << 23);
        f[i] = f32_of_bits(u);
    }
    qkv_f32_to_half(bulk, f, QKV_DTYPE_FLOAT16, N);
    for (size_t i = 0; i < N; i++) {
        uint16_t s = qkv_f32_to_f16(f[i]);
        cr_assert_eq(bulk[i], s, "float %a: bulk 0x%04x, scalar 0x%04x", (double)f[i], bulk[i], s);
        if (isnan(f[i]))
            continue;
        /* and the scalar result is a nearest half (finite range) */
        double v = half_value(s);
        if (isinf(v))
            continue;
        double err = fabs(v - (double)f[i]);
        cr_assert(err <= fabs(half_value((uint16_t)(s + 1)) - f[i]) &&
                      ((s & 0x7fff) == 0 || err <= fabs(half_value((uint16_t)(s - 1)) - f[i])),
                  "float %a rounded to 0x%04x, not a nearest half", (double)f[i], s);
    }
    free(f);
    free(bulk);
}

Test(half, bfloat16_round_trips_and_rounds_to_nearest_even)
{
    for (uint32_t i = 0; i < 65536; i++) {
        uint16_t b = (uint16_t)i;
        double v = bf16_value(b);
        float w = qkv_bf16_to_f32(b);
        if (isnan(v)) {
            cr_assert(isnan(w));
            cr_assert(isnan(qkv_bf16_to_f32(qkv_f32_to_bf16(w))), "NaN 0x%04x", i);
            continue;
        }
        cr_assert_eq((double)w, v, "bf16 0x%04x widens to %.9g, expected %.9g", i, w, v);
        cr_assert_eq(qkv_f32_to_bf16(w), b, "bf16 0x%04x does not round trip", i);
        if ((i & 0x7fff) >= 0x7f7f)
            continue;
        uint16_t up = (uint16_t)(b + 1);
        float mid = (float)((v + bf16_value(up)) / 2); /* exact: 8 more bits fit */
        cr_assert_eq(qkv_f32_to_bf16(mid), (b & 1) ? up : b, "midpoint after 0x%04x", i);
    }
    /* bulk = scalar */
    float f[37];
    uint16_t out[37];
    for (int i = 0; i < 37; i++)
        f[i] = f32_of_bits(rnd32());
    qkv_f32_to_half(out, f, QKV_DTYPE_BFLOAT16, 37);
    for (int i = 0; i < 37; i++)
        cr_assert_eq(out[i], qkv_f32_to_bf16(f[i]), "element %d", i);
}

static void square_map(float *out, const float *in, size_t n, const void *ctx)
{
    float k = *(const float *)ctx;
    for (size_t j = 0; j < n; j++)
        out[j] = in[j] * in[j] * k;
}

Test(half, half_map_computes_in_float_and_rounds_once_even_in_place)
{
    enum { N = 1000 }; /* several chunks */
    uint16_t in[N], out[N], inplace[N];
    float k = 0.5f;
    for (int i = 0; i < N; i++)
        in[i] = inplace[i] = qkv_f32_to_f16((float)(i - 500) / 64.0f);
    qkv_half_map(out, in, QKV_DTYPE_FLOAT16, N, square_map, &k);
    qkv_half_map(inplace, inplace, QKV_DTYPE_FLOAT16, N, square_map, &k);
    for (int i = 0; i < N; i++) {
        float x = qkv_f16_to_f32(in[i]);
        cr_assert_eq(out[i], qkv_f32_to_f16(x * x * k), "element %d", i);
        cr_assert_eq(inplace[i], out[i], "in place, element %d", i);
    }
}

/* ---- kernels on float16 -------------------------------------------------------- */

/* n random halves in [-scale, scale), and their float values */
static void fill_half(uint16_t *h, float *f, size_t n, uint32_t seed, float scale)
{
    kh_fill_random(f, n, seed);
    for (size_t i = 0; i < n; i++) {
        h[i] = qkv_f32_to_f16(f[i] * scale);
        f[i] = qkv_f16_to_f32(h[i]);
    }
}

/* got (float16) within tolerance of want: the kernels compute in float32 and
 * round once, so the error is half an ulp of float16 (2^-11 relative) plus the
 * float32 error of the computation, far smaller; 1e-3 relative (about 2 ulps
 * near a power of two's top, 1 at its bottom) plus a small absolute term for
 * results near 0 (sums that cancel) leaves margin and still fails a wrong
 * element, axis or rounding direction gone astray by more than an ulp. */
static void assert_half_close(const uint16_t *got, const double *want, size_t n, double abs_tol,
                              const char *what)
{
    for (size_t i = 0; i < n; i++) {
        double g = qkv_f16_to_f32(got[i]);
        cr_assert(fabs(g - want[i]) <= abs_tol + 1e-3 * fabs(want[i]),
                  "%s: element %zu is %.6g, expected %.6g", what, i, g, want[i]);
    }
}

static qkv_status run_node(kh_node *n, const qkv_tensor *ins, qkv_tensor *outs, size_t threads)
{
    qkv_error err;
    kh_set_threads(n, threads);
    qkv_status st = kh_run(n, ins, outs, &err);
    cr_assert_eq(st, QKV_OK, "%s", err.message);
    return st;
}

Test(half, matmul_float16_with_broadcast_batch_matches_double_reference)
{
    /* a (2, 3, 4, 5) @ b (3, 5, 6): batch broadcast, no folding */
    enum { B0 = 2, B1 = 3, M = 4, K = 5, N = 6 };
    static uint16_t ha[B0 * B1 * M * K], hb[B1 * K * N];
    static float fa[B0 * B1 * M * K], fb[B1 * K * N];
    static double want[B0 * B1 * M * N];
    fill_half(ha, fa, B0 * B1 * M * K, 3, 2.0f);
    fill_half(hb, fb, B1 * K * N, 4, 2.0f);
    for (int p = 0; p < B0; p++)
        for (int q = 0; q < B1; q++)
            for (int i = 0; i < M; i++)
                for (int j = 0; j < N; j++) {
                    double s = 0;
                    for (int k = 0; k < K; k++)
                        s += (double)fa[((p * B1 + q) * M + i) * K + k] * fb[(q * K + k) * N + j];
                    want[((p * B1 + q) * M + i) * N + j] = s;
                }
    qkv_tensor ins[2] = {kh_tensor(QKV_DTYPE_FLOAT16, 4, (int64_t[]){B0, B1, M, K}, ha),
                         kh_tensor(QKV_DTYPE_FLOAT16, 3, (int64_t[]){B1, K, N}, hb)};
    qkv_tensor y;
    kh_node *n = kh_node_create("MatMul", 13, 2, 1);
    run_node(n, ins, &y, 1);
    cr_assert_eq(y.dtype, QKV_DTYPE_FLOAT16);
    cr_assert_eq(y.rank, 4);
    cr_assert_eq(y.dims[3], N);
    assert_half_close(y.data, want, B0 * B1 * M * N, 2e-3, "matmul f16");
    kh_free_outputs(&y, 1);
    kh_node_destroy(n);
}

Test(half, matmul_bfloat16_and_float16_folded_batch_large_enough_for_threads)
{
    /* (2, 300, 64) @ (64, 130): the batch folds into M; 2 threads; also
     * bfloat16 on the same values (exact in both: small integers / 8) */
    enum { B = 2, M = 300, K = 64, N = 130 };
    uint16_t *ha = malloc(B * M * K * 2), *hb = malloc(K * N * 2);
    uint16_t *ba = malloc(B * M * K * 2), *bb = malloc(K * N * 2);
    double *want = malloc(B * M * N * sizeof *want);
    float *fa = malloc(B * M * K * 4), *fb = malloc(K * N * 4);
    for (int i = 0; i < B * M * K; i++) {
        fa[i] = (float)((int)(rnd32() % 17) - 8) / 8.0f;
        ha[i] = qkv_f32_to_f16(fa[i]);
        ba[i] = qkv_f32_to_bf16(fa[i]);
    }
    for (int i = 0; i < K * N; i++) {
        fb[i] = (float)((int)(rnd32() % 17) - 8) / 8.0f;
        hb[i] = qkv_f32_to_f16(fb[i]);
        bb[i] = qkv_f32_to_bf16(fb[i]);
    }
    for (int i = 0; i < B * M; i++)
        for (int j = 0; j < N; j++) {
            double s = 0;
            for (int k = 0; k < K; k++)
                s += (double)fa[i * K + k] * fb[k * N + j];
            want[i * N + j] = s;
        }
    for (int t = 0; t < 2; t++) {
        qkv_dtype dt = t ? QKV_DTYPE_BFLOAT16 : QKV_DTYPE_FLOAT16;
        qkv_tensor ins[2] = {kh_tensor(dt, 3, (int64_t[]){B, M, K}, t ? ba : ha),
                             kh_tensor(dt, 2, (int64_t[]){K, N}, t ? bb : hb)};
        qkv_tensor y;
        kh_node *n = kh_node_create("MatMul", 13, 2, 1);
        run_node(n, ins, &y, 2);
        const uint16_t *g = y.data;
        for (int i = 0; i < B * M * N; i++) {
            /* the sums are multiples of 1/64 below 64 in magnitude: exact in
             * float32, and rounded once to the output type */
            double w = want[i];
            uint16_t e = t ? qkv_f32_to_bf16((float)w) : qkv_f32_to_f16((float)w);
            cr_assert_eq(g[i], e, "%s element %d: 0x%04x, expected 0x%04x (%g)", t ? "bf16" : "f16",
                         i, g[i], e, w);
        }
        kh_free_outputs(&y, 1);
        kh_node_destroy(n);
    }
    free(ha), free(hb), free(ba), free(bb), free(want), free(fa), free(fb);
}

Test(half, matmul_float16_before_opset_13_refuses_bfloat16)
{
    uint16_t a[4] = {0}, b[4] = {0};
    qkv_tensor ins[2] = {kh_tensor(QKV_DTYPE_BFLOAT16, 2, (int64_t[]){2, 2}, a),
                         kh_tensor(QKV_DTYPE_BFLOAT16, 2, (int64_t[]){2, 2}, b)};
    qkv_tensor y;
    qkv_error err;
    kh_node *n = kh_node_create("MatMul", 9, 2, 1);
    cr_assert_eq(kh_run(n, ins, &y, &err), QKV_ERR_TYPE);
    cr_assert(strstr(err.message, "(MatMul-9): input 0 has type bfloat16, not supported"), "%s",
              err.message);
    kh_node_destroy(n);
}

/* softmax of x (outer, d, inner) along d, in double */
static void ref_softmax(const float *x, double *y, size_t outer, size_t d, size_t inner)
{
    for (size_t o = 0; o < outer; o++)
        for (size_t i = 0; i < inner; i++) {
            double mx = -INFINITY, s = 0;
            for (size_t p = 0; p < d; p++)
                mx = fmax(mx, x[(o * d + p) * inner + i]);
            for (size_t p = 0; p < d; p++)
                s += exp(x[(o * d + p) * inner + i] - mx);
            for (size_t p = 0; p < d; p++)
                y[(o * d + p) * inner + i] = exp(x[(o * d + p) * inner + i] - mx) / s;
        }
}

Test(half, softmax_float16_on_last_and_inner_axes)
{
    enum { A = 3, B = 70, C = 5 };
    static uint16_t h[A * B * C];
    static float f[A * B * C];
    static double want[A * B * C];
    fill_half(h, f, A * B * C, 7, 8.0f);
    for (int axis = 1; axis <= 2; axis++) {
        if (axis == 1)
            ref_softmax(f, want, A, B, C);
        else
            ref_softmax(f, want, A * B, C, 1);
        qkv_tensor x = kh_tensor(QKV_DTYPE_FLOAT16, 3, (int64_t[]){A, B, C}, h), y;
        kh_node *n = kh_node_create("Softmax", 13, 1, 1);
        kh_attr_int(n, "axis", axis);
        run_node(n, &x, &y, 1);
        cr_assert_eq(y.dtype, QKV_DTYPE_FLOAT16);
        assert_half_close(y.data, want, A * B * C, 1e-6, axis == 1 ? "axis 1" : "axis 2");
        kh_free_outputs(&y, 1);
        kh_node_destroy(n);
    }
}

Test(half, softmax_bfloat16_large_input_two_threads_equal_one)
{
    enum { R = 700, D = 128 }; /* 89600 elements: the parallel conversion path */
    uint16_t *h = malloc(R * D * 2);
    for (int i = 0; i < R * D; i++)
        h[i] = qkv_f32_to_bf16((float)((int)(rnd32() % 200) - 100) / 16.0f);
    qkv_tensor x = kh_tensor(QKV_DTYPE_BFLOAT16, 2, (int64_t[]){R, D}, h), y1, y2;
    kh_node *n = kh_node_create("Softmax", 13, 1, 1);
    run_node(n, &x, &y1, 1);
    run_node(n, &x, &y2, 2);
    cr_assert_arr_eq(y1.data, y2.data, R * D * 2);
    /* and each row sums to 1 within bfloat16 rounding (2^-9 per element) */
    const uint16_t *g = y1.data;
    for (int r = 0; r < R; r++) {
        double s = 0;
        for (int j = 0; j < D; j++)
            s += qkv_bf16_to_f32(g[r * D + j]);
        cr_assert(fabs(s - 1) < 0.02, "row %d sums to %g", r, s);
    }
    kh_free_outputs(&y1, 1);
    kh_free_outputs(&y2, 1);
    kh_node_destroy(n);
    free(h);
}

Test(half, reduce_max_and_sum_on_float16)
{
    enum { A = 4, B = 6, C = 5 };
    static uint16_t h[A * B * C];
    static float f[A * B * C];
    fill_half(h, f, A * B * C, 11, 4.0f);
    int64_t axes[1] = {1};
    const char *ops[2] = {"ReduceMax", "ReduceSum"};
    for (int o = 0; o < 2; o++) {
        double want[A * C];
        for (int a = 0; a < A; a++)
            for (int c = 0; c < C; c++) {
                double acc = o == 0 ? -INFINITY : 0;
                for (int b = 0; b < B; b++) {
                    double v = f[(a * B + b) * C + c];
                    acc = o == 0 ? fmax(acc, v) : acc + v;
                }
                want[a * C + c] = acc;
            }
        qkv_tensor ins[2] = {kh_tensor(QKV_DTYPE_FLOAT16, 3, (int64_t[]){A, B, C}, h),
                             kh_i64(1, (int64_t[]){1}, axes)};
        qkv_tensor y;
        kh_node *n = kh_node_create(ops[o], 18, 2, 1);
        kh_attr_int(n, "keepdims", 0);
        run_node(n, ins, &y, 1);
        cr_assert_eq(y.dtype, QKV_DTYPE_FLOAT16);
        cr_assert_eq(y.rank, 2);
        /* Max is exact; the sum is rounded once (plus cancellation near 0) */
        assert_half_close(y.data, want, A * C, o == 0 ? 0 : 4e-3, ops[o]);
        if (o == 0)
            for (int i = 0; i < A * C; i++)
                cr_assert_eq(qkv_f16_to_f32(((uint16_t *)y.data)[i]), (float)want[i]);
        kh_free_outputs(&y, 1);
        kh_node_destroy(n);
    }
}
