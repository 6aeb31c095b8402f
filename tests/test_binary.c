/* Binary and variadic elementwise ops (ops/binary.c) and the broadcast engine
 * (ops/elementwise.c), checked against plain reference loops. */
#include <criterion/criterion.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "elementwise.h"
#include "kernel_harness.h"
#include "kernel_util.h"

/* ---- helpers ----------------------------------------------------------------- */

typedef struct shape {
    int32_t rank;
    int64_t dims[6];
} shape;

static size_t numel(const shape *s)
{
    size_t n = 1;
    for (int32_t k = 0; k < s->rank; k++)
        n *= (size_t)s->dims[k];
    return n;
}

/* Runs a 2-input op on float tensors; returns the output (caller frees). */
static qkv_tensor run2(const char *op, int64_t opset, qkv_tensor a, qkv_tensor b, size_t threads)
{
    qkv_tensor in[2] = {a, b}, y;
    qkv_error err;
    kh_node *n = kh_node_create(op, opset, 2, 1);
    kh_set_threads(n, threads);
    qkv_status st = kh_run(n, in, &y, &err);
    cr_assert_eq(st, QKV_OK, "%s: %s", op, err.message);
    kh_node_destroy(n);
    return y;
}

/* Shape pairs covering scalars, rank 0, 1-sized dims and differing ranks. */
static const shape pairs[][2] = {
    {{2, {3, 4}}, {2, {3, 4}}},
    {{0, {0}}, {0, {0}}},
    {{3, {2, 3, 4}}, {0, {0}}},
    {{0, {0}}, {3, {2, 3, 4}}},
    {{3, {2, 3, 4}}, {1, {4}}},
    {{1, {4}}, {3, {2, 3, 4}}},
    {{3, {2, 3, 4}}, {3, {2, 1, 4}}},
    {{3, {2, 1, 4}}, {3, {1, 3, 1}}},
    {{4, {2, 1, 3, 1}}, {3, {5, 1, 1}}},
    {{4, {1, 2, 1, 5}}, {4, {3, 1, 4, 1}}},
    {{2, {1, 1}}, {1, {7}}},
    {{3, {5, 1, 1}}, {3, {1, 1, 1}}},
    {{3, {2, 0, 3}}, {1, {3}}},
    {{5, {2, 3, 1, 2, 3}}, {3, {3, 2, 1}}},
};

typedef float (*ref2_fn)(float, float);
static float ref_add(float x, float y) { return x + y; }
static float ref_sub(float x, float y) { return x - y; }
static float ref_mul(float x, float y) { return x * y; }
static float ref_div(float x, float y) { return x / y; }
static float ref_pow(float x, float y) { return powf(x, y); }
static float ref_max(float x, float y) { return x > y ? x : y; }
static float ref_min(float x, float y) { return x < y ? x : y; }

static void check_float_op(const char *op, int64_t opset, ref2_fn ref, bool positive_a)
{
    for (size_t p = 0; p < sizeof pairs / sizeof pairs[0]; p++) {
        const shape *sa = &pairs[p][0], *sb = &pairs[p][1];
        size_t na = numel(sa), nb = numel(sb);
        float *a = malloc((na + 1) * sizeof *a), *b = malloc((nb + 1) * sizeof *b);
        kh_fill_random(a, na, 11 + (uint32_t)p);
        kh_fill_random(b, nb, 97 + (uint32_t)p);
        if (positive_a)
            for (size_t i = 0; i < na; i++)
                a[i] = fabsf(a[i]) + 0.1f;
        qkv_tensor ta = kh_f32(sa->rank, sa->dims, a), tb = kh_f32(sb->rank, sb->dims, b);
        qkv_tensor y = run2(op, opset, ta, tb, 1);
        int32_t rank = sa->rank > sb->rank ? sa->rank : sb->rank;
        cr_assert_eq(y.rank, rank, "%s pair %zu", op, p);
        for (size_t i = 0; i < qkv_numel(&y); i++) {
            float want = ref(a[kh_broadcast_index(i, &y, &ta)], b[kh_broadcast_index(i, &y, &tb)]);
            /* exact: the kernel does the same single float operation (powf included) */
            cr_assert_eq(((float *)y.data)[i], want, "%s pair %zu elem %zu: %g vs %g", op, p, i,
                         ((float *)y.data)[i], want);
        }
        kh_free_outputs(&y, 1);
        free(a);
        free(b);
    }
}

/* ---- arithmetic over broadcast shapes ---------------------------------------- */

Test(binary, add_matches_reference_on_broadcast_shapes)
{
    check_float_op("Add", 14, ref_add, false);
}
Test(binary, sub_matches_reference_on_broadcast_shapes)
{
    check_float_op("Sub", 14, ref_sub, false);
}
Test(binary, mul_matches_reference_on_broadcast_shapes)
{
    check_float_op("Mul", 13, ref_mul, false);
}
Test(binary, div_matches_reference_on_broadcast_shapes)
{
    check_float_op("Div", 7, ref_div, false);
}
Test(binary, pow_matches_reference_on_broadcast_shapes)
{
    check_float_op("Pow", 15, ref_pow, true);
}
Test(binary, max_matches_reference_on_broadcast_shapes)
{
    check_float_op("Max", 13, ref_max, false);
}
Test(binary, min_matches_reference_on_broadcast_shapes)
{
    check_float_op("Min", 8, ref_min, false);
}

Test(binary, broadcast_output_shape_is_the_numpy_one)
{
    float a[6] = {0}, b[4] = {0};
    qkv_tensor y =
        run2("Add", 14, kh_f32(3, (int64_t[]){2, 1, 3}, a), kh_f32(2, (int64_t[]){4, 1}, b), 1);
    cr_assert_eq(y.rank, 3);
    cr_assert_eq(y.dims[0], 2);
    cr_assert_eq(y.dims[1], 4);
    cr_assert_eq(y.dims[2], 3);
    kh_free_outputs(&y, 1);
}

Test(binary, double_add_and_div)
{
    double a[3] = {1, 2, 3}, b[1] = {4};
    qkv_tensor ta = kh_tensor(QKV_DTYPE_DOUBLE, 1, (int64_t[]){3}, a);
    qkv_tensor tb = kh_tensor(QKV_DTYPE_DOUBLE, 0, NULL, b);
    qkv_tensor y = run2("Div", 14, ta, tb, 1);
    cr_assert_eq(y.dtype, QKV_DTYPE_DOUBLE);
    for (int i = 0; i < 3; i++)
        cr_assert_eq(((double *)y.data)[i], a[i] / 4.0);
    kh_free_outputs(&y, 1);
}

/* ---- integers ------------------------------------------------------------------ */

Test(binary, int32_add_and_mul_wrap_around)
{
    int32_t a[3] = {INT32_MAX, INT32_MIN, 7}, b[3] = {1, -1, 3};
    qkv_tensor ta = kh_tensor(QKV_DTYPE_INT32, 1, (int64_t[]){3}, a);
    qkv_tensor tb = kh_tensor(QKV_DTYPE_INT32, 1, (int64_t[]){3}, b);
    qkv_tensor y = run2("Add", 14, ta, tb, 1);
    int32_t *o = y.data;
    cr_assert_eq(o[0], INT32_MIN);
    cr_assert_eq(o[1], INT32_MAX);
    cr_assert_eq(o[2], 10);
    kh_free_outputs(&y, 1);
    y = run2("Mul", 14, ta, tb, 1);
    o = y.data;
    cr_assert_eq(o[0], INT32_MAX);
    cr_assert_eq(o[1], INT32_MIN); /* -INT32_MIN wraps */
    cr_assert_eq(o[2], 21);
    kh_free_outputs(&y, 1);
}

Test(binary, int64_div_truncates_and_defines_edge_cases)
{
    int64_t a[6] = {7, -7, 7, -7, 5, INT64_MIN}, b[6] = {2, 2, -2, -2, 0, -1};
    qkv_tensor y = run2("Div", 14, kh_i64(1, (int64_t[]){6}, a), kh_i64(1, (int64_t[]){6}, b), 1);
    int64_t want[6] = {3, -3, -3, 3, 0, INT64_MIN};
    for (int i = 0; i < 6; i++)
        cr_assert_eq(((int64_t *)y.data)[i], want[i], "elem %d", i);
    kh_free_outputs(&y, 1);
}

Test(binary, uint8_ops_wrap_like_numpy)
{
    uint8_t a[4] = {250, 3, 200, 17}, b[4] = {10, 5, 2, 4};
    qkv_tensor ta = kh_tensor(QKV_DTYPE_UINT8, 1, (int64_t[]){4}, a);
    qkv_tensor tb = kh_tensor(QKV_DTYPE_UINT8, 1, (int64_t[]){4}, b);
    qkv_tensor y = run2("Add", 14, ta, tb, 1);
    uint8_t want_add[4] = {4, 8, 202, 21};
    cr_assert_arr_eq(y.data, want_add, 4);
    kh_free_outputs(&y, 1);
    y = run2("Sub", 14, ta, tb, 1);
    uint8_t want_sub[4] = {240, 254, 198, 13};
    cr_assert_arr_eq(y.data, want_sub, 4);
    kh_free_outputs(&y, 1);
    y = run2("Mul", 14, ta, tb, 1);
    uint8_t want_mul[4] = {196, 15, 144, 68};
    cr_assert_arr_eq(y.data, want_mul, 4);
    kh_free_outputs(&y, 1);
    y = run2("Div", 14, ta, tb, 1);
    uint8_t want_div[4] = {25, 0, 100, 4};
    cr_assert_arr_eq(y.data, want_div, 4);
    kh_free_outputs(&y, 1);
}

Test(binary, int16_mul_does_not_overflow_int)
{
    /* uint16 * uint16 promotes to int in C and could overflow without care */
    uint16_t a[1] = {65535}, b[1] = {65535};
    qkv_tensor y = run2("Mul", 14, kh_tensor(QKV_DTYPE_UINT16, 1, (int64_t[]){1}, a),
                        kh_tensor(QKV_DTYPE_UINT16, 1, (int64_t[]){1}, b), 1);
    cr_assert_eq(((uint16_t *)y.data)[0], 1); /* 65535^2 mod 65536 */
    kh_free_outputs(&y, 1);
}

static qkv_tensor run_mod(int64_t fmod_attr, qkv_tensor a, qkv_tensor b, qkv_status *st,
                          qkv_error *err)
{
    qkv_tensor in[2] = {a, b}, y;
    kh_node *n = kh_node_create("Mod", 13, 2, 1);
    if (fmod_attr >= 0)
        kh_attr_int(n, "fmod", fmod_attr);
    *st = kh_run(n, in, &y, err);
    kh_node_destroy(n);
    return y;
}

Test(binary, mod_follows_divisor_sign_and_fmod_dividend_sign)
{
    int64_t a[7] = {-4, 7, 5, 4, -7, 8, 3}, b[7] = {2, -3, 8, -2, 3, 5, 0};
    qkv_tensor ta = kh_i64(1, (int64_t[]){7}, a), tb = kh_i64(1, (int64_t[]){7}, b);
    qkv_status st;
    qkv_error err;
    qkv_tensor y = run_mod(-1, ta, tb, &st, &err);
    cr_assert_eq(st, QKV_OK, "%s", err.message);
    int64_t want_mod[7] = {0, -2, 5, 0, 2, 3, 0}; /* numpy.mod, x mod 0 defined as 0 */
    cr_assert_arr_eq(y.data, want_mod, sizeof want_mod);
    kh_free_outputs(&y, 1);
    y = run_mod(1, ta, tb, &st, &err);
    cr_assert_eq(st, QKV_OK, "%s", err.message);
    int64_t want_fmod[7] = {0, 1, 5, 0, -1, 3, 0}; /* numpy.fmod */
    cr_assert_arr_eq(y.data, want_fmod, sizeof want_fmod);
    kh_free_outputs(&y, 1);
}

Test(binary, mod_int8_and_float_fmod)
{
    int8_t a[3] = {-128, -7, 7}, b[3] = {-1, 3, -3};
    qkv_status st;
    qkv_error err;
    qkv_tensor y = run_mod(0, kh_tensor(QKV_DTYPE_INT8, 1, (int64_t[]){3}, a),
                           kh_tensor(QKV_DTYPE_INT8, 1, (int64_t[]){3}, b), &st, &err);
    cr_assert_eq(st, QKV_OK, "%s", err.message);
    int8_t want[3] = {0, 2, -2};
    cr_assert_arr_eq(y.data, want, 3);
    kh_free_outputs(&y, 1);

    float fa[3] = {-4.3f, 7.2f, 5.0f}, fb[3] = {2.1f, -3.4f, 8.0f};
    y = run_mod(1, kh_f32(1, (int64_t[]){3}, fa), kh_f32(1, (int64_t[]){3}, fb), &st, &err);
    cr_assert_eq(st, QKV_OK, "%s", err.message);
    for (int i = 0; i < 3; i++)
        cr_assert_eq(((float *)y.data)[i], fmodf(fa[i], fb[i]));
    kh_free_outputs(&y, 1);
}

Test(binary, mod_of_floats_without_fmod_is_refused)
{
    float fa[1] = {1}, fb[1] = {2};
    qkv_status st;
    qkv_error err;
    run_mod(0, kh_f32(1, (int64_t[]){1}, fa), kh_f32(1, (int64_t[]){1}, fb), &st, &err);
    cr_assert_eq(st, QKV_ERR_INVALID_MODEL);
    cr_assert(strstr(err.message, "Mod requires attribute fmod=1"), "%s", err.message);
}

Test(binary, mod_refuses_fmod_other_than_0_or_1)
{
    int64_t a[1] = {1};
    qkv_status st;
    qkv_error err;
    run_mod(2, kh_i64(1, (int64_t[]){1}, a), kh_i64(1, (int64_t[]){1}, a), &st, &err);
    cr_assert_eq(st, QKV_ERR_INVALID_MODEL);
    cr_assert(strstr(err.message, "attribute 'fmod' is 2, expected 0 or 1"), "%s", err.message);
}

/* ---- Pow with mixed types --------------------------------------------------------- */

Test(binary, pow_float_base_int64_exponent)
{
    float a[3] = {1, 2, 3};
    int64_t b[3] = {4, 5, -2};
    qkv_tensor y = run2("Pow", 15, kh_f32(1, (int64_t[]){3}, a), kh_i64(1, (int64_t[]){3}, b), 1);
    cr_assert_eq(y.dtype, QKV_DTYPE_FLOAT);
    float want[3] = {1, 32, 1.0f / 9};
    for (int i = 0; i < 3; i++)
        cr_assert_float_eq(((float *)y.data)[i], want[i],
                           1e-7f); /* computed in double then rounded */
    kh_free_outputs(&y, 1);
}

Test(binary, pow_int_base_float_exponent_truncates)
{
    int32_t a[3] = {2, 3, 10};
    float b[3] = {0.5f, 2.0f, -1.0f};
    qkv_tensor y = run2("Pow", 12, kh_tensor(QKV_DTYPE_INT32, 1, (int64_t[]){3}, a),
                        kh_f32(1, (int64_t[]){3}, b), 1);
    cr_assert_eq(y.dtype, QKV_DTYPE_INT32);
    int32_t want[3] = {1, 9, 0}; /* sqrt(2) -> 1, 10^-1 -> 0 */
    cr_assert_arr_eq(y.data, want, sizeof want);
    kh_free_outputs(&y, 1);
}

Test(binary, pow_integers_exact_with_negative_exponents)
{
    int64_t a[6] = {3, 2, 1, -1, -1, 5}, b[6] = {39, 62, -3, -3, -2, -1};
    qkv_tensor y = run2("Pow", 15, kh_i64(1, (int64_t[]){6}, a), kh_i64(1, (int64_t[]){6}, b), 1);
    int64_t want[6] = {4052555153018976267LL, 4611686018427387904LL, 1, -1, 1, 0};
    cr_assert_arr_eq(y.data, want, sizeof want);
    kh_free_outputs(&y, 1);
}

/* ---- comparisons and logic ------------------------------------------------------- */

Test(binary, comparisons_broadcast_to_bool)
{
    float a[6] = {1, 2, 3, 4, 5, NAN}, b[3] = {2, 2, 5};
    qkv_tensor ta = kh_f32(2, (int64_t[]){2, 3}, a), tb = kh_f32(1, (int64_t[]){3}, b);
    struct {
        const char *op;
        int64_t opset;
        uint8_t want[6];
    } cases[] = {
        {"Equal", 13, {0, 1, 0, 0, 0, 0}},          {"Less", 13, {1, 0, 1, 0, 0, 0}},
        {"Greater", 9, {0, 0, 0, 1, 1, 0}},         {"LessOrEqual", 16, {1, 1, 1, 0, 0, 0}},
        {"GreaterOrEqual", 12, {0, 1, 0, 1, 1, 0}},
    };
    for (size_t c = 0; c < sizeof cases / sizeof cases[0]; c++) {
        qkv_tensor y = run2(cases[c].op, cases[c].opset, ta, tb, 1);
        cr_assert_eq(y.dtype, QKV_DTYPE_BOOL, "%s", cases[c].op);
        cr_assert_arr_eq(y.data, cases[c].want, 6, "%s", cases[c].op);
        kh_free_outputs(&y, 1);
    }
}

Test(binary, int64_equal_and_bool_equal)
{
    int64_t a[3] = {INT64_MAX, 5, -1}, b[3] = {INT64_MAX, 6, -1};
    qkv_tensor y = run2("Equal", 13, kh_i64(1, (int64_t[]){3}, a), kh_i64(1, (int64_t[]){3}, b), 1);
    uint8_t want[3] = {1, 0, 1};
    cr_assert_arr_eq(y.data, want, 3);
    kh_free_outputs(&y, 1);
    uint8_t p[4] = {0, 0, 1, 1}, q[4] = {0, 1, 0, 1};
    qkv_tensor tp = kh_tensor(QKV_DTYPE_BOOL, 1, (int64_t[]){4}, p);
    qkv_tensor tq = kh_tensor(QKV_DTYPE_BOOL, 1, (int64_t[]){4}, q);
    y = run2("Equal", 11, tp, tq, 1);
    uint8_t want_eq[4] = {1, 0, 0, 1};
    cr_assert_arr_eq(y.data, want_eq, 4);
    kh_free_outputs(&y, 1);
}

Test(binary, and_or_xor_broadcast)
{
    uint8_t p[4] = {0, 0, 1, 1}, q[2] = {0, 1};
    qkv_tensor tp = kh_tensor(QKV_DTYPE_BOOL, 2, (int64_t[]){2, 2}, p);
    qkv_tensor tq = kh_tensor(QKV_DTYPE_BOOL, 1, (int64_t[]){2}, q);
    struct {
        const char *op;
        uint8_t want[4];
    } cases[] = {{"And", {0, 0, 0, 1}}, {"Or", {0, 1, 1, 1}}, {"Xor", {0, 1, 1, 0}}};
    for (size_t c = 0; c < 3; c++) {
        qkv_tensor y = run2(cases[c].op, 7, tp, tq, 1);
        cr_assert_eq(y.dtype, QKV_DTYPE_BOOL);
        cr_assert_arr_eq(y.data, cases[c].want, 4, "%s", cases[c].op);
        kh_free_outputs(&y, 1);
    }
}

/* ---- Max/Min/Sum/Mean ---------------------------------------------------------------- */

Test(binary, max_and_min_propagate_nan)
{
    float a[3] = {NAN, 1, 2}, b[3] = {0, NAN, 1};
    qkv_tensor ta = kh_f32(1, (int64_t[]){3}, a), tb = kh_f32(1, (int64_t[]){3}, b);
    qkv_tensor y = run2("Max", 13, ta, tb, 1);
    cr_assert(isnan(((float *)y.data)[0]) && isnan(((float *)y.data)[1]));
    cr_assert_eq(((float *)y.data)[2], 2);
    kh_free_outputs(&y, 1);
    y = run2("Min", 13, ta, tb, 1);
    cr_assert(isnan(((float *)y.data)[0]) && isnan(((float *)y.data)[1]));
    cr_assert_eq(((float *)y.data)[2], 1);
    kh_free_outputs(&y, 1);
}

static qkv_tensor run_variadic(const char *op, qkv_tensor *in, size_t n_in, size_t threads)
{
    qkv_tensor y;
    qkv_error err;
    kh_node *n = kh_node_create(op, 13, n_in, 1);
    kh_set_threads(n, threads);
    cr_assert_eq(kh_run(n, in, &y, &err), QKV_OK, "%s: %s", op, err.message);
    kh_node_destroy(n);
    return y;
}

Test(binary, variadic_ops_broadcast_over_all_inputs)
{
    float a[2] = {1, -2}, b[3] = {10, 20, 30}, c[1] = {-5}, d[6] = {1, 2, 3, 4, 5, 6};
    qkv_tensor in[4] = {kh_f32(2, (int64_t[]){2, 1}, a), kh_f32(1, (int64_t[]){3}, b),
                        kh_f32(0, NULL, c), kh_f32(2, (int64_t[]){2, 3}, d)};
    qkv_tensor y = run_variadic("Sum", in, 4, 1);
    cr_assert_eq(y.rank, 2);
    cr_assert_eq(y.dims[0], 2);
    cr_assert_eq(y.dims[1], 3);
    for (int i = 0; i < 2; i++)
        for (int j = 0; j < 3; j++) {
            float want = a[i] + b[j] + c[0] + d[i * 3 + j];
            cr_assert_eq(((float *)y.data)[i * 3 + j], want);
        }
    kh_free_outputs(&y, 1);
    y = run_variadic("Mean", in, 4, 1);
    for (int i = 0; i < 2; i++)
        for (int j = 0; j < 3; j++) {
            float want = (a[i] + b[j] + c[0] + d[i * 3 + j]) / 4;
            cr_assert_eq(((float *)y.data)[i * 3 + j], want);
        }
    kh_free_outputs(&y, 1);
    y = run_variadic("Max", in, 3, 1);
    for (int i = 0; i < 2; i++)
        for (int j = 0; j < 3; j++)
            cr_assert_eq(((float *)y.data)[i * 3 + j], b[j]);
    kh_free_outputs(&y, 1);
}

Test(binary, variadic_with_one_input_copies_it)
{
    int64_t a[3] = {4, -1, 9};
    qkv_tensor in = kh_i64(1, (int64_t[]){3}, a);
    qkv_tensor y = run_variadic("Min", &in, 1, 1);
    cr_assert_arr_eq(y.data, a, sizeof a);
    kh_free_outputs(&y, 1);
}

Test(binary, max_of_every_integer_type)
{
    static const qkv_dtype types[] = {QKV_DTYPE_INT8,   QKV_DTYPE_INT16, QKV_DTYPE_INT32,
                                      QKV_DTYPE_INT64,  QKV_DTYPE_UINT8, QKV_DTYPE_UINT16,
                                      QKV_DTYPE_UINT32, QKV_DTYPE_UINT64};
    for (size_t t = 0; t < 8; t++) {
        /* the same small values in every width: {3, 1} vs {2, 4} */
        uint64_t a64[2] = {3, 1}, b64[2] = {2, 4};
        unsigned char a[16], b[16];
        size_t eb = qkv_dtype_bits(types[t]) / 8;
        for (int i = 0; i < 2; i++) {
            memcpy(a + i * eb, &a64[i], eb); /* little-endian: low bytes first */
            memcpy(b + i * eb, &b64[i], eb);
        }
        qkv_tensor in[2] = {kh_tensor(types[t], 1, (int64_t[]){2}, a),
                            kh_tensor(types[t], 1, (int64_t[]){2}, b)};
        qkv_tensor y = run_variadic("Max", in, 2, 1);
        uint64_t got0 = 0, got1 = 0;
        memcpy(&got0, y.data, eb);
        memcpy(&got1, (char *)y.data + eb, eb);
        cr_assert_eq(got0, 3, "type %d", types[t]);
        cr_assert_eq(got1, 4, "type %d", types[t]);
        kh_free_outputs(&y, 1);
    }
}

/* ---- float16 / bfloat16 ---------------------------------------------------------------- */

Test(binary, float16_add_and_max_round_to_half)
{
    /* 1.0, 2.0, 0.5, -inf and 1.0, 0.0009765625 (2^-10), 0.25, 1 */
    uint16_t a[4] = {0x3c00, 0x4000, 0x3800, 0xfc00}, b[4] = {0x3c00, 0x1400, 0x3400, 0x3c00};
    qkv_tensor ta = kh_tensor(QKV_DTYPE_FLOAT16, 1, (int64_t[]){4}, a);
    qkv_tensor tb = kh_tensor(QKV_DTYPE_FLOAT16, 1, (int64_t[]){4}, b);
    qkv_tensor y = run2("Add", 14, ta, tb, 1);
    cr_assert_eq(y.dtype, QKV_DTYPE_FLOAT16);
    /* 2.0; 2 + 2^-10 is a tie between 2 and 2+2^-9: to even gives 2.0; 0.75; -inf */
    uint16_t want_add[4] = {0x4000, 0x4000, 0x3a00, 0xfc00};
    cr_assert_arr_eq(y.data, want_add, sizeof want_add);
    kh_free_outputs(&y, 1);
    y = run2("Max", 13, ta, tb, 1);
    uint16_t want_max[4] = {0x3c00, 0x4000, 0x3800, 0x3c00};
    cr_assert_arr_eq(y.data, want_max, sizeof want_max);
    kh_free_outputs(&y, 1);
}

Test(binary, bfloat16_mul_and_less)
{
    uint16_t a[2] = {0x4040, 0xbf80}, b[2] = {0x4000, 0x3f80}; /* 3, -1 and 2, 1 */
    qkv_tensor ta = kh_tensor(QKV_DTYPE_BFLOAT16, 1, (int64_t[]){2}, a);
    qkv_tensor tb = kh_tensor(QKV_DTYPE_BFLOAT16, 1, (int64_t[]){2}, b);
    qkv_tensor y = run2("Mul", 14, ta, tb, 1);
    uint16_t want[2] = {0x40c0, 0xbf80}; /* 6, -1 */
    cr_assert_arr_eq(y.data, want, sizeof want);
    kh_free_outputs(&y, 1);
    y = run2("Less", 13, ta, tb, 1);
    uint8_t want_lt[2] = {0, 1};
    cr_assert_arr_eq(y.data, want_lt, 2);
    kh_free_outputs(&y, 1);
}

/* ---- in place, threads, unknown values ---------------------------------------------- */

Test(binary, in_place_output_over_input_0_gives_the_same_result)
{
    enum { R = 37, C = 53 };
    float a[R * C], a_copy[R * C], b[C];
    kh_fill_random(a, R * C, 5);
    kh_fill_random(b, C, 6);
    memcpy(a_copy, a, sizeof a);
    qkv_tensor ref =
        run2("Sub", 14, kh_f32(2, (int64_t[]){R, C}, a), kh_f32(1, (int64_t[]){C}, b), 1);
    qkv_tensor in[2] = {kh_f32(2, (int64_t[]){R, C}, a), kh_f32(1, (int64_t[]){C}, b)}, y;
    qkv_error err;
    kh_node *n = kh_node_create("Sub", 14, 2, 1);
    cr_assert_eq(kh_run_inplace(n, 0, in, &y, &err), QKV_OK, "%s", err.message);
    cr_assert_eq(y.data, (void *)a);
    cr_assert_arr_eq(a, ref.data, sizeof a);
    kh_free_outputs(&ref, 1);
    (void)a_copy;
    kh_node_destroy(n);
}

Test(binary, in_place_add_of_a_tensor_to_itself)
{
    float a[5] = {1, 2, 3, 4, 5};
    qkv_tensor in[2] = {kh_f32(1, (int64_t[]){5}, a), kh_f32(1, (int64_t[]){5}, a)}, y;
    qkv_error err;
    kh_node *n = kh_node_create("Add", 14, 2, 1);
    cr_assert_eq(kh_run_inplace(n, 0, in, &y, &err), QKV_OK, "%s", err.message);
    float want[5] = {2, 4, 6, 8, 10};
    cr_assert_arr_eq(a, want, sizeof a);
    kh_node_destroy(n);
}

Test(binary, in_place_variadic_with_aliased_later_input_uses_scratch)
{
    /* Sum(a, b, a) with the output over a: a is read again in the third step */
    float a[4] = {1, 2, 3, 4}, b[4] = {10, 20, 30, 40};
    qkv_tensor in[3] = {kh_f32(1, (int64_t[]){4}, a), kh_f32(1, (int64_t[]){4}, b),
                        kh_f32(1, (int64_t[]){4}, a)},
               y;
    qkv_error err;
    kh_node *n = kh_node_create("Sum", 13, 3, 1);
    cr_assert_eq(kh_run_inplace(n, 0, in, &y, &err), QKV_OK, "%s", err.message);
    float want[4] = {12, 24, 36, 48};
    cr_assert_arr_eq(a, want, sizeof a);
    kh_node_destroy(n);
}

Test(binary, two_threads_give_the_single_thread_result)
{
    /* 320 x 1031 = 329920 elements: above the parallel threshold, with rows
     * that do not line up with the engine's blocks */
    enum { R = 320, C = 1031 };
    float *a = malloc(R * C * sizeof *a), *b = malloc(R * sizeof *b);
    kh_fill_random(a, R * C, 1);
    kh_fill_random(b, R, 2);
    qkv_tensor ta = kh_f32(2, (int64_t[]){R, C}, a), tb = kh_f32(2, (int64_t[]){R, 1}, b);
    qkv_tensor y1 = run2("Mul", 14, ta, tb, 1), y2 = run2("Mul", 14, ta, tb, 2);
    cr_assert_arr_eq(y1.data, y2.data, R * C * sizeof(float));
    for (size_t i = 0; i < (size_t)R * C; i += 997)
        cr_assert_eq(((float *)y2.data)[i], a[i] * b[i / C]);
    kh_free_outputs(&y1, 1);
    kh_free_outputs(&y2, 1);
    /* three inputs, float16 path, comparison output */
    qkv_tensor in[3] = {ta, tb, kh_f32(1, (int64_t[]){C}, a)};
    y1 = run_variadic("Mean", in, 3, 1);
    y2 = run_variadic("Mean", in, 3, 2);
    cr_assert_arr_eq(y1.data, y2.data, R * C * sizeof(float));
    kh_free_outputs(&y1, 1);
    kh_free_outputs(&y2, 1);
    y1 = run2("Greater", 13, ta, tb, 1);
    y2 = run2("Greater", 13, ta, tb, 2);
    cr_assert_arr_eq(y1.data, y2.data, R * C);
    kh_free_outputs(&y1, 1);
    kh_free_outputs(&y2, 1);
    free(a);
    free(b);
}

Test(binary, infers_shape_without_input_values)
{
    float a[6] = {1, 2, 3, 4, 5, 6}, b[2] = {1, 2};
    qkv_tensor in[2] = {kh_f32(2, (int64_t[]){3, 2}, a), kh_f32(1, (int64_t[]){2}, b)}, y;
    qkv_error err;
    kh_node *n = kh_node_create("Add", 14, 2, 1);
    kh_hide_input_values(n);
    cr_assert_eq(kh_run(n, in, &y, &err), QKV_OK, "%s", err.message);
    cr_assert_eq(((float *)y.data)[5], 8);
    kh_free_outputs(&y, 1);
    kh_node_destroy(n);
}

/* ---- errors ------------------------------------------------------------------------ */

Test(binary, incompatible_broadcast_shapes_are_refused)
{
    float a[6] = {0}, b[4] = {0};
    qkv_tensor in[2] = {kh_f32(2, (int64_t[]){2, 3}, a), kh_f32(2, (int64_t[]){2, 2}, b)}, y;
    qkv_error err;
    kh_node *n = kh_node_create("Add", 14, 2, 1);
    cr_assert_eq(kh_run(n, in, &y, &err), QKV_ERR_SHAPE);
    cr_assert(strstr(err.message, "node 'test_node' (Add-14): cannot broadcast shapes"), "%s",
              err.message);
    cr_assert(strstr(err.message, "[2,2]"), "%s", err.message);
    kh_node_destroy(n);
}

Test(binary, differing_input_types_are_refused)
{
    float a[2] = {0};
    int64_t b[2] = {0};
    qkv_tensor in[2] = {kh_f32(1, (int64_t[]){2}, a), kh_i64(1, (int64_t[]){2}, b)}, y;
    qkv_error err;
    kh_node *n = kh_node_create("Mul", 14, 2, 1);
    cr_assert_eq(kh_run(n, in, &y, &err), QKV_ERR_TYPE);
    cr_assert(strstr(err.message, "input 1 has type int64 but input 0 has float32"), "%s",
              err.message);
    kh_node_destroy(n);
}

Test(binary, bool_arithmetic_is_refused_by_the_declared_types)
{
    uint8_t a[2] = {0, 1};
    qkv_tensor in[2] = {kh_tensor(QKV_DTYPE_BOOL, 1, (int64_t[]){2}, a),
                        kh_tensor(QKV_DTYPE_BOOL, 1, (int64_t[]){2}, a)},
               y;
    qkv_error err;
    kh_node *n = kh_node_create("Add", 14, 2, 1);
    cr_assert_eq(kh_run(n, in, &y, &err), QKV_ERR_TYPE);
    cr_assert(strstr(err.message, "input 0 has type bool, not supported"), "%s", err.message);
    kh_node_destroy(n);
}

Test(binary, sum_of_many_inputs_broadcasts_them_all)
{
    /* more inputs than the shape inference folds at once (16) */
    enum { K = 20 };
    float v[K][3];
    qkv_tensor in[K];
    for (int k = 0; k < K; k++) {
        for (int j = 0; j < 3; j++)
            v[k][j] = (float)(k * 3 + j);
        /* alternate [3], [1,3] and a scalar so ranks and broadcasting vary */
        in[k] = k % 3 == 0   ? kh_f32(1, (int64_t[]){3}, v[k])
                : k % 3 == 1 ? kh_f32(2, (int64_t[]){1, 3}, v[k])
                             : kh_f32(0, NULL, v[k]);
    }
    qkv_tensor y = run_variadic("Sum", in, K, 1);
    cr_assert_eq(y.rank, 2);
    cr_assert_eq(y.dims[0], 1);
    cr_assert_eq(y.dims[1], 3);
    for (int j = 0; j < 3; j++) {
        float want = 0;
        for (int k = 0; k < K; k++)
            want += k % 3 == 2 ? v[k][0] : v[k][j];
        cr_assert_eq(((float *)y.data)[j], want, "elem %d", j); /* small integers: exact */
    }
    kh_free_outputs(&y, 1);
}

Test(binary, sum_of_many_inputs_reports_the_incompatible_one)
{
    enum { K = 18 };
    float v[4] = {0};
    qkv_tensor in[K], y;
    for (int k = 0; k < K; k++)
        in[k] = kh_f32(1, (int64_t[]){k == 17 ? 4 : 3}, v);
    qkv_error err;
    kh_node *n = kh_node_create("Sum", 13, K, 1);
    cr_assert_eq(kh_run(n, in, &y, &err), QKV_ERR_SHAPE);
    cr_assert(strstr(err.message, "cannot broadcast shapes: input 17 is [4], the inputs before "
                                  "it broadcast to [3]"),
              "%s", err.message);
    kh_node_destroy(n);
}

/* ---- Max/Min over every type, Pow over every exponent type ---------------------------- */

/* Min and Max of {lo, hi} against {hi, lo} for the extremes of each integer
 * type, given as the two's complement bit patterns of its width. */
Test(binary, min_and_max_at_the_extremes_of_every_integer_type)
{
    static const struct {
        qkv_dtype t;
        uint64_t lo, hi; /* the type's minimum and maximum */
    } types[] = {
        {QKV_DTYPE_INT8, 0x80u, 0x7fu},
        {QKV_DTYPE_INT16, 0x8000u, 0x7fffu},
        {QKV_DTYPE_INT32, 0x80000000u, 0x7fffffffu},
        {QKV_DTYPE_INT64, 0x8000000000000000ull, 0x7fffffffffffffffull},
        {QKV_DTYPE_UINT8, 0, 0xffu},
        {QKV_DTYPE_UINT16, 0, 0xffffu},
        {QKV_DTYPE_UINT32, 0, 0xffffffffu},
        {QKV_DTYPE_UINT64, 0, 0xffffffffffffffffull},
    };
    for (size_t k = 0; k < sizeof types / sizeof types[0]; k++) {
        size_t eb = qkv_dtype_bits(types[k].t) / 8;
        unsigned char a[16], b[16];
        memcpy(a, &types[k].lo, eb);
        memcpy(a + eb, &types[k].hi, eb);
        memcpy(b, &types[k].hi, eb);
        memcpy(b + eb, &types[k].lo, eb);
        for (int want_max = 0; want_max < 2; want_max++) {
            qkv_tensor in[2] = {kh_tensor(types[k].t, 1, (int64_t[]){2}, a),
                                kh_tensor(types[k].t, 1, (int64_t[]){2}, b)};
            qkv_tensor y = run_variadic(want_max ? "Max" : "Min", in, 2, 1);
            cr_assert_eq(y.dtype, types[k].t);
            uint64_t want = want_max ? types[k].hi : types[k].lo;
            for (int i = 0; i < 2; i++) {
                uint64_t got = 0;
                memcpy(&got, (char *)y.data + i * eb, eb);
                cr_assert_eq(got, want, "%s type %d [%d]", want_max ? "Max" : "Min", types[k].t, i);
            }
            kh_free_outputs(&y, 1);
        }
    }
}

Test(binary, min_and_max_of_doubles_at_opset_6)
{
    double a[3] = {1e300, -2.5, 0}, b[3] = {-1e300, 3.25, -0.5};
    qkv_tensor in[2] = {kh_tensor(QKV_DTYPE_DOUBLE, 1, (int64_t[]){3}, a),
                        kh_tensor(QKV_DTYPE_DOUBLE, 1, (int64_t[]){3}, b)};
    kh_node *n = kh_node_create("Max", 6, 2, 1);
    qkv_tensor y;
    qkv_error err;
    cr_assert_eq(kh_run(n, in, &y, &err), QKV_OK, "%s", err.message);
    double want_max[3] = {1e300, 3.25, 0};
    cr_assert_arr_eq(y.data, want_max, sizeof want_max);
    kh_free_outputs(&y, 1);
    kh_node_destroy(n);
    n = kh_node_create("Min", 7, 2, 1);
    cr_assert_eq(kh_run(n, in, &y, &err), QKV_OK, "%s", err.message);
    double want_min[3] = {-1e300, -2.5, -0.5};
    cr_assert_arr_eq(y.data, want_min, sizeof want_min);
    kh_free_outputs(&y, 1);
    kh_node_destroy(n);
}

/* Pow of each base type the spec allows by each exponent type, against
 * pow() in double rounded to the base type. */
Test(binary, pow_of_every_base_type_by_every_exponent_type)
{
    static const qkv_dtype bases[] = {QKV_DTYPE_FLOAT, QKV_DTYPE_DOUBLE, QKV_DTYPE_FLOAT16,
                                      QKV_DTYPE_INT32, QKV_DTYPE_INT64};
    static const qkv_dtype expos[] = {QKV_DTYPE_UINT8,  QKV_DTYPE_UINT16, QKV_DTYPE_UINT32,
                                      QKV_DTYPE_UINT64, QKV_DTYPE_INT8,   QKV_DTYPE_INT16,
                                      QKV_DTYPE_INT32,  QKV_DTYPE_INT64,  QKV_DTYPE_FLOAT16,
                                      QKV_DTYPE_FLOAT,  QKV_DTYPE_DOUBLE};
    const double base_v[3] = {2, 3, 5}, expo_v[3] = {3, 0, 2};
    for (size_t i = 0; i < sizeof bases / sizeof bases[0]; i++)
        for (size_t j = 0; j < sizeof expos / sizeof expos[0]; j++) {
            unsigned char a[24], b[24];
            cr_assert(qkv_ew_store_f64(a, bases[i], base_v, 3));
            cr_assert(qkv_ew_store_f64(b, expos[j], expo_v, 3));
            qkv_tensor y = run2("Pow", 15, kh_tensor(bases[i], 1, (int64_t[]){3}, a),
                                kh_tensor(expos[j], 1, (int64_t[]){3}, b), 1);
            cr_assert_eq(y.dtype, bases[i]);
            double got[3];
            cr_assert(qkv_ew_load_f64(got, y.data, bases[i], 1, 3));
            double want[3] = {8, 1, 25}; /* exact in every base type */
            for (int e = 0; e < 3; e++)
                cr_assert_eq(got[e], want[e], "base %d exponent %d [%d]: %g", bases[i], expos[j], e,
                             got[e]);
            kh_free_outputs(&y, 1);
        }
}
