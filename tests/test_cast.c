/* Cast and CastLike (ops/cast.c), including the float16/bfloat16 conversions
 * of ops/elementwise.h, checked against an independent reference rounding. */
#include <criterion/criterion.h>
#include <float.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "kernel_harness.h"

/* ---- reference ------------------------------------------------------------------ */

/*
 * Correct rounding of v to a binary format with `mbits` stored mantissa bits
 * and exponent bias `bias` (round to nearest even; overflow to inf):
 * scale |v| so the kept bits are the integer part (exact in double) and let
 * rint round. Written without bit tricks on purpose, to check the kernel's.
 * NaN is returned as the canonical quiet NaN.
 */
static uint32_t ref_round(double v, int mbits, int bias)
{
    int ebits_all_ones = 2 * bias + 1;
    uint32_t sign = signbit(v) ? 1u << (mbits + (bias == 15 ? 5 : 8)) : 0;
    if (isnan(v))
        return ((uint32_t)ebits_all_ones << mbits) | (1u << (mbits - 1));
    double a = fabs(v);
    uint32_t inf = sign | ((uint32_t)ebits_all_ones << mbits);
    if (isinf(a))
        return inf;
    if (a == 0)
        return sign;
    int e;
    frexp(a, &e);
    int E = e - 1; /* a in [2^E, 2^(E+1)) */
    if (E < 1 - bias)
        E = 1 - bias; /* subnormal range: fixed scale */
    double q = rint(ldexp(a, mbits - E));
    if (q >= ldexp(1, mbits + 1)) {
        q /= 2;
        E++;
    }
    if (E > bias)
        return inf;
    if (q < ldexp(1, mbits))
        return sign | (uint32_t)q; /* subnormal (or rounded to zero) */
    return sign | ((uint32_t)(E + bias) << mbits) | ((uint32_t)q - (1u << mbits));
}

static uint16_t ref_f16(double v) { return (uint16_t)ref_round(v, 10, 15); }
static uint16_t ref_bf16(double v) { return (uint16_t)ref_round(v, 7, 127); }

static double ref_f16_value(uint16_t h)
{
    int s = h >> 15, e = (h >> 10) & 0x1f, m = h & 0x3ff;
    double v = e == 0 ? ldexp(m, -24) : e == 31 ? (m ? NAN : INFINITY) : ldexp(m + 1024, e - 25);
    return s ? -v : v;
}

static bool half_is_nan(uint16_t h) { return (h & 0x7c00) == 0x7c00 && (h & 0x3ff); }
static bool bf16_is_nan(uint16_t h) { return (h & 0x7f80) == 0x7f80 && (h & 0x7f); }

static uint32_t xorshift(uint32_t *s)
{
    *s ^= *s << 13;
    *s ^= *s >> 17;
    *s ^= *s << 5;
    return *s;
}

/* ---- running ------------------------------------------------------------------- */

static qkv_status cast(qkv_tensor x, int64_t to, qkv_tensor *y, size_t threads, qkv_error *err)
{
    kh_node *n = kh_node_create("Cast", 13, 1, 1);
    kh_attr_int(n, "to", to);
    kh_set_threads(n, threads);
    qkv_status st = kh_run(n, &x, y, err);
    kh_node_destroy(n);
    return st;
}

static qkv_tensor cast_ok(qkv_tensor x, int64_t to)
{
    qkv_tensor y;
    qkv_error err;
    cr_assert_eq(cast(x, to, &y, 1, &err), QKV_OK, "%s", err.message);
    cr_assert_eq(y.dtype, (qkv_dtype)to);
    cr_assert_eq(y.rank, x.rank);
    return y;
}

/* ---- float16 ---------------------------------------------------------------------- */

Test(cast, float_to_float16_rounds_like_the_reference)
{
    /* random bit patterns (every exponent, NaNs and infs included), then the
     * exact midpoints between consecutive halves and their float neighbours */
    enum { RANDOM = 1 << 18, HALVES = 0x7c00 };
    size_t n = RANDOM + 3 * HALVES;
    float *x = malloc(n * sizeof *x);
    uint32_t s = 12345;
    for (size_t i = 0; i < RANDOM; i++) {
        uint32_t u = xorshift(&s);
        memcpy(&x[i], &u, 4);
    }
    for (uint32_t h = 0; h < HALVES; h++) {
        float mid = (float)((ref_f16_value((uint16_t)h) + ref_f16_value((uint16_t)(h + 1))) / 2);
        x[RANDOM + 3 * h] = mid;
        x[RANDOM + 3 * h + 1] = nextafterf(mid, 0);
        x[RANDOM + 3 * h + 2] = -nextafterf(mid, INFINITY);
    }
    qkv_tensor y = cast_ok(kh_f32(1, (int64_t[]){(int64_t)n}, x), QKV_DTYPE_FLOAT16);
    const uint16_t *h = y.data;
    for (size_t i = 0; i < n; i++) {
        if (isnan(x[i])) {
            cr_assert(half_is_nan(h[i]), "NaN elem %zu gave %04x", i, h[i]);
            continue;
        }
        cr_assert_eq(h[i], ref_f16(x[i]), "elem %zu (%a): %04x vs %04x", i, (double)x[i], h[i],
                     ref_f16(x[i]));
    }
    kh_free_outputs(&y, 1);
    free(x);
}

Test(cast, float16_edge_values)
{
    float x[12] = {65504.0f,   65519.99f, 65520.0f, 1e9f,      0x1p-24f,        0x1p-25f,
                   0x1.8p-25f, 0x1p-14f,  -0.0f,    -INFINITY, 1.0f + 0x1p-11f, 0x1.ffcp-15f};
    uint16_t want[12] = {0x7bff, 0x7bff, 0x7c00, 0x7c00, 0x0001, 0x0000,
                         0x0001, 0x0400, 0x8000, 0xfc00, 0x3c00, 0x0400};
    qkv_tensor y = cast_ok(kh_f32(1, (int64_t[]){12}, x), QKV_DTYPE_FLOAT16);
    for (int i = 0; i < 12; i++)
        cr_assert_eq(((uint16_t *)y.data)[i], want[i], "elem %d: %04x vs %04x", i,
                     ((uint16_t *)y.data)[i], want[i]);
    kh_free_outputs(&y, 1);
}

Test(cast, every_float16_converts_exactly_and_round_trips)
{
    uint16_t *h = malloc(65536 * sizeof *h);
    for (uint32_t i = 0; i < 65536; i++)
        h[i] = (uint16_t)i;
    qkv_tensor f = cast_ok(kh_tensor(QKV_DTYPE_FLOAT16, 1, (int64_t[]){65536}, h), QKV_DTYPE_FLOAT);
    qkv_tensor d =
        cast_ok(kh_tensor(QKV_DTYPE_FLOAT16, 1, (int64_t[]){65536}, h), QKV_DTYPE_DOUBLE);
    for (uint32_t i = 0; i < 65536; i++) {
        double want = ref_f16_value((uint16_t)i);
        float got = ((float *)f.data)[i];
        if (isnan(want)) {
            cr_assert(isnan(got) && isnan(((double *)d.data)[i]), "%04x", i);
            continue;
        }
        cr_assert_eq(got, want, "%04x", i);
        cr_assert_eq(!!signbit(got), !!signbit(want), "%04x", i);
        cr_assert_eq(((double *)d.data)[i], want, "%04x", i);
    }
    qkv_tensor back = cast_ok(f, QKV_DTYPE_FLOAT16);
    for (uint32_t i = 0; i < 65536; i++)
        if (!half_is_nan((uint16_t)i))
            cr_assert_eq(((uint16_t *)back.data)[i], i, "%04x", i);
    qkv_tensor back_d = cast_ok(d, QKV_DTYPE_FLOAT16);
    for (uint32_t i = 0; i < 65536; i++)
        if (!half_is_nan((uint16_t)i))
            cr_assert_eq(((uint16_t *)back_d.data)[i], i, "%04x", i);
    kh_free_outputs(&f, 1);
    kh_free_outputs(&d, 1);
    kh_free_outputs(&back, 1);
    kh_free_outputs(&back_d, 1);
    free(h);
}

Test(cast, double_to_float16_rounds_once)
{
    /* 1 + 2^-11 + 2^-40 lies just above the midpoint of 1 and 1 + 2^-10;
     * rounding through float first would land on the midpoint and tie to 1 */
    double x[4] = {1 + 0x1p-11 + 0x1p-40, 1 + 0x1p-11, 1e300, -0x1p-26};
    uint16_t want[4] = {0x3c01, 0x3c00, 0x7c00, 0x8000};
    qkv_tensor y = cast_ok(kh_tensor(QKV_DTYPE_DOUBLE, 1, (int64_t[]){4}, x), QKV_DTYPE_FLOAT16);
    cr_assert_arr_eq(y.data, want, sizeof want);
    kh_free_outputs(&y, 1);
    /* and random doubles of every magnitude a half can hold, against the reference */
    enum { N = 100000 };
    double *r = malloc(N * sizeof *r);
    uint32_t s = 777;
    for (size_t i = 0; i < N; i++) {
        uint64_t bits = ((uint64_t)xorshift(&s) << 32) | xorshift(&s);
        /* exponent in [2^-30, 2^17): subnormals to overflow */
        bits = (bits & 0x800fffffffffffffull) | ((uint64_t)(1023 - 30 + xorshift(&s) % 47) << 52);
        memcpy(&r[i], &bits, 8);
    }
    y = cast_ok(kh_tensor(QKV_DTYPE_DOUBLE, 1, (int64_t[]){N}, r), QKV_DTYPE_FLOAT16);
    for (size_t i = 0; i < N; i++)
        cr_assert_eq(((uint16_t *)y.data)[i], ref_f16(r[i]), "%a", r[i]);
    kh_free_outputs(&y, 1);
    free(r);
}

/* ---- bfloat16 ----------------------------------------------------------------------- */

Test(cast, float_to_bfloat16_rounds_to_nearest_even)
{
    enum { N = 1 << 18 };
    float *x = malloc(N * sizeof *x);
    uint32_t s = 99;
    for (size_t i = 0; i < N; i++) {
        uint32_t u = xorshift(&s);
        memcpy(&x[i], &u, 4);
    }
    qkv_tensor y = cast_ok(kh_f32(1, (int64_t[]){N}, x), QKV_DTYPE_BFLOAT16);
    for (size_t i = 0; i < N; i++) {
        uint16_t got = ((uint16_t *)y.data)[i];
        if (isnan(x[i]))
            cr_assert(bf16_is_nan(got), "elem %zu", i);
        else
            cr_assert_eq(got, ref_bf16(x[i]), "%a: %04x vs %04x", (double)x[i], got,
                         ref_bf16(x[i]));
    }
    kh_free_outputs(&y, 1);
    free(x);
    /* ties: 1 + 2^-8 goes down to 1, 1 + 3 * 2^-8 up to 1 + 2^-6; FLT_MAX overflows */
    float t[4] = {1 + 0x1p-8f, 1 + 0x3p-8f, FLT_MAX, -0x1p-140f};
    uint16_t want[4] = {0x3f80, 0x3f82, 0x7f80, 0x8000};
    y = cast_ok(kh_f32(1, (int64_t[]){4}, t), QKV_DTYPE_BFLOAT16);
    cr_assert_arr_eq(y.data, want, sizeof want);
    kh_free_outputs(&y, 1);
}

Test(cast, bfloat16_to_float_is_exact)
{
    uint16_t b[5] = {0x3f80, 0xc049, 0x7f80, 0x0001, 0x7fc1};
    qkv_tensor y = cast_ok(kh_tensor(QKV_DTYPE_BFLOAT16, 1, (int64_t[]){5}, b), QKV_DTYPE_FLOAT);
    const float *f = y.data;
    cr_assert_eq(f[0], 1.0f);
    cr_assert_eq(f[1], -0x1.92p+1f);
    cr_assert(isinf(f[2]) && f[2] > 0);
    cr_assert_eq(f[3], 0x1p-133f);
    cr_assert(isnan(f[4]));
    kh_free_outputs(&y, 1);
}

Test(cast, double_to_bfloat16_rounds_once)
{
    double x[2] = {1 + 0x1p-8 + 0x1p-40, 1e39};
    uint16_t want[2] = {0x3f81, 0x7f80};
    qkv_tensor y = cast_ok(kh_tensor(QKV_DTYPE_DOUBLE, 1, (int64_t[]){2}, x), QKV_DTYPE_BFLOAT16);
    cr_assert_arr_eq(y.data, want, sizeof want);
    kh_free_outputs(&y, 1);
}

/* ---- integers and bool ------------------------------------------------------------ */

Test(cast, float_to_integers_truncate_wrap_and_never_misbehave)
{
    float x[8] = {3.99f, -3.99f, -1.0f, 300.5f, NAN, 1e20f, -1e20f, INFINITY};
    qkv_tensor xt = kh_f32(1, (int64_t[]){8}, x);
    qkv_tensor y = cast_ok(xt, QKV_DTYPE_INT32);
    /* 1e20 and inf saturate to INT64 then wrap to int32: INT64_MAX's low bits are -1 */
    int32_t want32[8] = {3, -3, -1, 300, 0, -1, 0, -1};
    cr_assert_arr_eq(y.data, want32, sizeof want32);
    kh_free_outputs(&y, 1);
    y = cast_ok(xt, QKV_DTYPE_UINT8);
    uint8_t want8[8] = {3, 253, 255, 44, 0, 255, 0, 255};
    cr_assert_arr_eq(y.data, want8, sizeof want8);
    kh_free_outputs(&y, 1);
    y = cast_ok(xt, QKV_DTYPE_INT64);
    int64_t want64[8] = {3, -3, -1, 300, 0, INT64_MAX, INT64_MIN, INT64_MAX};
    cr_assert_arr_eq(y.data, want64, sizeof want64);
    kh_free_outputs(&y, 1);
    double big[2] = {1.8e19, 1e30};
    y = cast_ok(kh_tensor(QKV_DTYPE_DOUBLE, 1, (int64_t[]){2}, big), QKV_DTYPE_UINT64);
    uint64_t wantu[2] = {18000000000000000000ull, UINT64_MAX};
    cr_assert_arr_eq(y.data, wantu, sizeof wantu);
    kh_free_outputs(&y, 1);
}

Test(cast, integers_wrap_and_widen)
{
    int64_t x[4] = {-1, 300, INT64_MIN, 1LL << 40};
    qkv_tensor xt = kh_i64(1, (int64_t[]){4}, x);
    qkv_tensor y = cast_ok(xt, QKV_DTYPE_INT8);
    int8_t want8[4] = {-1, 44, 0, 0};
    cr_assert_arr_eq(y.data, want8, 4);
    kh_free_outputs(&y, 1);
    y = cast_ok(xt, QKV_DTYPE_UINT16);
    uint16_t want16[4] = {65535, 300, 0, 0};
    cr_assert_arr_eq(y.data, want16, sizeof want16);
    kh_free_outputs(&y, 1);
    y = cast_ok(xt, QKV_DTYPE_DOUBLE);
    double wantd[4] = {-1, 300, -0x1p63, 0x1p40};
    cr_assert_arr_eq(y.data, wantd, sizeof wantd);
    kh_free_outputs(&y, 1);
    uint64_t u[2] = {UINT64_MAX, 1};
    y = cast_ok(kh_tensor(QKV_DTYPE_UINT64, 1, (int64_t[]){2}, u), QKV_DTYPE_FLOAT);
    cr_assert_eq(((float *)y.data)[0], 0x1p64f); /* unsigned, not -1 */
    kh_free_outputs(&y, 1);
    int8_t s8[2] = {-2, 5};
    y = cast_ok(kh_tensor(QKV_DTYPE_INT8, 1, (int64_t[]){2}, s8), QKV_DTYPE_UINT32);
    uint32_t want_u32[2] = {4294967294u, 5};
    cr_assert_arr_eq(y.data, want_u32, sizeof want_u32);
    kh_free_outputs(&y, 1);
    y = cast_ok(kh_tensor(QKV_DTYPE_INT8, 1, (int64_t[]){2}, s8), QKV_DTYPE_FLOAT16);
    uint16_t want_h[2] = {0xc000, 0x4500};
    cr_assert_arr_eq(y.data, want_h, sizeof want_h);
    kh_free_outputs(&y, 1);
}

Test(cast, bool_is_nonzero_and_converts_to_0_or_1)
{
    float x[4] = {0.0f, -0.0f, 0.5f, NAN};
    qkv_tensor y = cast_ok(kh_f32(1, (int64_t[]){4}, x), QKV_DTYPE_BOOL);
    uint8_t want[4] = {0, 0, 1, 1};
    cr_assert_arr_eq(y.data, want, 4);
    kh_free_outputs(&y, 1);
    int32_t i[3] = {0, -5, 256};
    y = cast_ok(kh_tensor(QKV_DTYPE_INT32, 1, (int64_t[]){3}, i), QKV_DTYPE_BOOL);
    uint8_t want_i[3] = {0, 1, 1};
    cr_assert_arr_eq(y.data, want_i, 3);
    kh_free_outputs(&y, 1);
    uint8_t b[2] = {1, 0};
    y = cast_ok(kh_tensor(QKV_DTYPE_BOOL, 1, (int64_t[]){2}, b), QKV_DTYPE_FLOAT);
    float want_f[2] = {1, 0};
    cr_assert_arr_eq(y.data, want_f, sizeof want_f);
    kh_free_outputs(&y, 1);
}

Test(cast, double_to_float_overflows_to_inf)
{
    double x[3] = {1e300, -1e300, 0.1};
    qkv_tensor y = cast_ok(kh_tensor(QKV_DTYPE_DOUBLE, 1, (int64_t[]){3}, x), QKV_DTYPE_FLOAT);
    float *f = y.data;
    cr_assert(isinf(f[0]) && f[0] > 0);
    cr_assert(isinf(f[1]) && f[1] < 0);
    cr_assert_eq(f[2], 0.1f);
    kh_free_outputs(&y, 1);
}

Test(cast, same_type_copies)
{
    int64_t x[3] = {1, 2, 3};
    qkv_tensor y = cast_ok(kh_i64(1, (int64_t[]){3}, x), QKV_DTYPE_INT64);
    cr_assert_arr_eq(y.data, x, sizeof x);
    kh_free_outputs(&y, 1);
}

/* ---- strings ------------------------------------------------------------------- */

Test(cast, strings_parse_to_numbers)
{
    const char *s[6] = {"0.47892547", "INF", "-INF", "+INF", "NaN", "-2.5e-3"};
    qkv_tensor y =
        cast_ok(kh_tensor(QKV_DTYPE_STRING, 2, (int64_t[]){2, 3}, (void *)s), QKV_DTYPE_FLOAT);
    float *f = y.data;
    cr_assert_eq(f[0], 0.47892547f);
    cr_assert(isinf(f[1]) && f[1] > 0);
    cr_assert(isinf(f[2]) && f[2] < 0);
    cr_assert(isinf(f[3]) && f[3] > 0);
    cr_assert(isnan(f[4]));
    cr_assert_eq(f[5], -2.5e-3f);
    kh_free_outputs(&y, 1);
    const char *ints[3] = {"123456789012345678", "-7", "2.9"};
    y = cast_ok(kh_tensor(QKV_DTYPE_STRING, 1, (int64_t[]){3}, (void *)ints), QKV_DTYPE_INT64);
    int64_t want[3] = {123456789012345678LL, -7, 2}; /* exact, then truncated as a float */
    cr_assert_arr_eq(y.data, want, sizeof want);
    kh_free_outputs(&y, 1);
}

Test(cast, unparsable_string_is_an_error)
{
    const char *s[2] = {"1", "twelve"};
    qkv_tensor y;
    qkv_error err;
    cr_assert_eq(cast(kh_tensor(QKV_DTYPE_STRING, 1, (int64_t[]){2}, (void *)s), QKV_DTYPE_FLOAT,
                      &y, 1, &err),
                 QKV_ERR_INVALID_ARGUMENT);
    cr_assert(strstr(err.message, "input 0 element 1 is \"twelve\", not a number"), "%s",
              err.message);
}

/* ---- CastLike, threads, errors ------------------------------------------------------- */

Test(cast, castlike_takes_the_type_of_input_1)
{
    float x[2] = {1.0f, -2.0f};
    uint16_t like[1] = {0};
    qkv_tensor in[2] = {kh_f32(1, (int64_t[]){2}, x),
                        kh_tensor(QKV_DTYPE_FLOAT16, 1, (int64_t[]){1}, like)},
               y;
    qkv_error err;
    kh_node *n = kh_node_create("CastLike", 15, 2, 1);
    cr_assert_eq(kh_run(n, in, &y, &err), QKV_OK, "%s", err.message);
    cr_assert_eq(y.dtype, QKV_DTYPE_FLOAT16);
    uint16_t want[2] = {0x3c00, 0xc000};
    cr_assert_arr_eq(y.data, want, sizeof want);
    kh_free_outputs(&y, 1);
    kh_node_destroy(n);
}

Test(cast, two_threads_give_the_single_thread_result)
{
    enum { N = 300007 };
    float *x = malloc(N * sizeof *x);
    kh_fill_random(x, N, 21);
    static const qkv_dtype to[] = {QKV_DTYPE_FLOAT16, QKV_DTYPE_INT8, QKV_DTYPE_DOUBLE};
    for (size_t t = 0; t < 3; t++) {
        qkv_tensor y1, y2;
        qkv_error err;
        cr_assert_eq(cast(kh_f32(1, (int64_t[]){N}, x), to[t], &y1, 1, &err), QKV_OK);
        cr_assert_eq(cast(kh_f32(1, (int64_t[]){N}, x), to[t], &y2, 2, &err), QKV_OK);
        cr_assert_eq(y1.data_bytes, y2.data_bytes);
        cr_assert_arr_eq(y1.data, y2.data, y1.data_bytes, "to %d", to[t]);
        kh_free_outputs(&y1, 1);
        kh_free_outputs(&y2, 1);
    }
    free(x);
}

static void expect_error(int64_t to, bool set_to, qkv_status status, const char *msg)
{
    float x[1] = {1};
    qkv_tensor xt = kh_f32(1, (int64_t[]){1}, x), y;
    qkv_error err;
    kh_node *n = kh_node_create("Cast", 13, 1, 1);
    if (set_to)
        kh_attr_int(n, "to", to);
    cr_assert_eq(kh_run(n, &xt, &y, &err), status, "%s", err.message);
    cr_assert(strstr(err.message, msg), "%s", err.message);
    kh_node_destroy(n);
}

Test(cast, refuses_missing_to)
{
    expect_error(0, false, QKV_ERR_INVALID_MODEL, "(Cast-13): attribute 'to' is required");
}

Test(cast, refuses_invalid_to)
{
    expect_error(99, true, QKV_ERR_INVALID_MODEL,
                 "attribute 'to' is 99, not a tensor element type");
}

Test(cast, refuses_zero_to)
{
    expect_error(0, true, QKV_ERR_INVALID_MODEL, "attribute 'to' is 0, not a tensor element type");
}

Test(cast, refuses_cast_from_bool_to_string)
{
    /* floats and integers cast to string (tests/test_strings.c); bool does not */
    uint8_t x[1] = {1};
    qkv_tensor xt = kh_tensor(QKV_DTYPE_BOOL, 1, (int64_t[]){1}, x), y;
    qkv_error err;
    kh_node *n = kh_node_create("Cast", 13, 1, 1);
    kh_attr_int(n, "to", QKV_DTYPE_STRING);
    cr_assert_eq(kh_run(n, &xt, &y, &err), QKV_ERR_UNSUPPORTED, "%s", err.message);
    cr_assert(strstr(err.message, "(Cast-13): casting bool to string is not supported"), "%s",
              err.message);
    kh_node_destroy(n);
}

Test(cast, refuses_cast_to_float8)
{
    expect_error(QKV_DTYPE_FLOAT8E4M3FN, true, QKV_ERR_UNSUPPORTED,
                 "casting to float8e4m3fn is not supported");
}

Test(cast, refuses_cast_from_float8)
{
    uint8_t x[1] = {0};
    qkv_tensor y;
    qkv_error err;
    cr_assert_eq(
        cast(kh_tensor(QKV_DTYPE_FLOAT8E5M2, 1, (int64_t[]){1}, x), QKV_DTYPE_FLOAT, &y, 1, &err),
        QKV_ERR_UNSUPPORTED);
    cr_assert(strstr(err.message, "casting from float8e5m2 is not supported"), "%s", err.message);
}

Test(cast, castlike_from_bool_to_string_is_refused)
{
    uint8_t x[1] = {1};
    const char *like[1] = {"a"};
    qkv_tensor in[2] = {kh_tensor(QKV_DTYPE_BOOL, 1, (int64_t[]){1}, x),
                        kh_tensor(QKV_DTYPE_STRING, 1, (int64_t[]){1}, (void *)like)},
               y;
    qkv_error err;
    kh_node *n = kh_node_create("CastLike", 15, 2, 1);
    cr_assert_eq(kh_run(n, in, &y, &err), QKV_ERR_UNSUPPORTED);
    cr_assert(strstr(err.message, "(CastLike-15): casting bool to string is not supported"), "%s",
              err.message);
    kh_node_destroy(n);
}
