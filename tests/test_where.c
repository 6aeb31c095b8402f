/* Where (ops/where.c): three-way broadcasting against a reference loop. */
#include <criterion/criterion.h>
#include <stdlib.h>
#include <string.h>

#include "kernel_harness.h"

static size_t count(int32_t rank, const int64_t *dims)
{
    size_t n = 1;
    for (int32_t k = 0; k < rank; k++)
        n *= (size_t)dims[k];
    return n;
}

static qkv_status run_where(qkv_tensor *in, qkv_tensor *y, size_t threads, qkv_error *err)
{
    kh_node *n = kh_node_create("Where", 16, 3, 1);
    kh_set_threads(n, threads);
    qkv_status st = kh_run(n, in, y, err);
    kh_node_destroy(n);
    return st;
}

typedef struct wshape {
    int32_t rank;
    int64_t dims[4];
} wshape;

/* condition, X, Y shapes */
static const wshape triples[][3] = {
    {{2, {3, 4}}, {2, {3, 4}}, {2, {3, 4}}},
    {{0, {0}}, {0, {0}}, {0, {0}}},
    {{2, {3, 4}}, {0, {0}}, {0, {0}}},
    {{0, {0}}, {2, {3, 4}}, {1, {4}}},
    {{1, {4}}, {2, {3, 1}}, {3, {2, 1, 1}}},
    {{3, {2, 1, 4}}, {2, {3, 1}}, {1, {1}}},
    {{4, {2, 3, 1, 5}}, {3, {3, 4, 1}}, {1, {5}}},
    {{2, {1, 1}}, {2, {1, 6}}, {2, {6, 1}}},
};

/* Checks Where for element size `eb` (values are byte patterns). */
static void check_triples(qkv_dtype t, size_t eb)
{
    for (size_t p = 0; p < sizeof triples / sizeof triples[0]; p++) {
        const wshape *s = triples[p];
        size_t nc = count(s[0].rank, s[0].dims), nx = count(s[1].rank, s[1].dims),
               ny = count(s[2].rank, s[2].dims);
        uint8_t *c = malloc(nc);
        unsigned char *x = malloc(nx * eb), *yv = malloc(ny * eb);
        for (size_t i = 0; i < nc; i++)
            c[i] = (uint8_t)((i * 7 + p) % 3 == 0);
        for (size_t i = 0; i < nx * eb; i++)
            x[i] = (unsigned char)(i * 13 + 1);
        for (size_t i = 0; i < ny * eb; i++)
            yv[i] = (unsigned char)(200 - i * 5);
        qkv_tensor in[3] = {kh_tensor(QKV_DTYPE_BOOL, s[0].rank, s[0].dims, c),
                            kh_tensor(t, s[1].rank, s[1].dims, x),
                            kh_tensor(t, s[2].rank, s[2].dims, yv)},
                   out;
        qkv_error err;
        cr_assert_eq(run_where(in, &out, 1, &err), QKV_OK, "%s", err.message);
        cr_assert_eq(out.dtype, t);
        for (size_t i = 0; i < qkv_tensor_elements(&out, NULL); i++) {
            size_t ic = kh_broadcast_index(i, &out, &in[0]);
            const unsigned char *want = c[ic] ? x + kh_broadcast_index(i, &out, &in[1]) * eb
                                              : yv + kh_broadcast_index(i, &out, &in[2]) * eb;
            cr_assert(memcmp((char *)out.data + i * eb, want, eb) == 0,
                      "triple %zu elem %zu (type %d)", p, i, t);
        }
        kh_free_outputs(&out, 1);
        free(c);
        free(x);
        free(yv);
    }
}

Test(where, float32_matches_reference_on_broadcast_shapes) { check_triples(QKV_DTYPE_FLOAT, 4); }
Test(where, int64_matches_reference_on_broadcast_shapes) { check_triples(QKV_DTYPE_INT64, 8); }
Test(where, float16_matches_reference_on_broadcast_shapes) { check_triples(QKV_DTYPE_FLOAT16, 2); }
Test(where, int8_matches_reference_on_broadcast_shapes) { check_triples(QKV_DTYPE_INT8, 1); }

Test(where, bool_values)
{
    uint8_t c[3] = {1, 0, 1}, x[3] = {1, 1, 0}, y[3] = {0, 0, 1};
    qkv_tensor in[3] = {kh_tensor(QKV_DTYPE_BOOL, 1, (int64_t[]){3}, c),
                        kh_tensor(QKV_DTYPE_BOOL, 1, (int64_t[]){3}, x),
                        kh_tensor(QKV_DTYPE_BOOL, 1, (int64_t[]){3}, y)},
               out;
    qkv_error err;
    cr_assert_eq(run_where(in, &out, 1, &err), QKV_OK, "%s", err.message);
    uint8_t want[3] = {1, 0, 0};
    cr_assert_arr_eq(out.data, want, 3);
    kh_free_outputs(&out, 1);
}

Test(where, in_place_over_x_gives_the_same_result)
{
    enum { R = 9, C = 31 };
    uint8_t c[C];
    float x[R * C], y[R];
    for (int i = 0; i < C; i++)
        c[i] = (uint8_t)(i % 2);
    kh_fill_random(x, R * C, 1);
    kh_fill_random(y, R, 2);
    qkv_tensor in[3] = {kh_tensor(QKV_DTYPE_BOOL, 1, (int64_t[]){C}, c),
                        kh_f32(2, (int64_t[]){R, C}, x), kh_f32(2, (int64_t[]){R, 1}, y)},
               ref, out;
    qkv_error err;
    cr_assert_eq(run_where(in, &ref, 1, &err), QKV_OK, "%s", err.message);

    kh_node *n = kh_node_create("Where", 16, 3, 1);
    /* the output overwrites X */
    cr_assert_eq(kh_run_inplace(n, 1, in, &out, &err), QKV_OK, "%s", err.message);
    cr_assert_eq(out.data, (void *)x);
    cr_assert_arr_eq(x, ref.data, sizeof x);
    kh_node_destroy(n);
    kh_free_outputs(&ref, 1);
}

Test(where, two_threads_give_the_single_thread_result)
{
    enum { R = 300, C = 701 };
    uint8_t *c = malloc(R * C);
    float *x = malloc(R * C * sizeof *x), y[C];
    for (size_t i = 0; i < (size_t)R * C; i++)
        c[i] = (uint8_t)(i % 3 == 0);
    kh_fill_random(x, R * C, 3);
    kh_fill_random(y, C, 4);
    qkv_tensor in[3] = {kh_tensor(QKV_DTYPE_BOOL, 2, (int64_t[]){R, C}, c),
                        kh_f32(2, (int64_t[]){R, C}, x), kh_f32(1, (int64_t[]){C}, y)},
               o1, o2;
    qkv_error err;
    cr_assert_eq(run_where(in, &o1, 1, &err), QKV_OK, "%s", err.message);
    cr_assert_eq(run_where(in, &o2, 2, &err), QKV_OK, "%s", err.message);
    cr_assert_arr_eq(o1.data, o2.data, (size_t)R * C * sizeof(float));
    for (size_t i = 0; i < (size_t)R * C; i += 1013)
        cr_assert_eq(((float *)o2.data)[i], c[i] ? x[i] : y[i % C]);
    kh_free_outputs(&o1, 1);
    kh_free_outputs(&o2, 1);
    free(c);
    free(x);
}

Test(where, refuses_x_and_y_of_different_types)
{
    uint8_t c[1] = {1};
    float x[1] = {0};
    int64_t y[1] = {0};
    qkv_tensor in[3] = {kh_tensor(QKV_DTYPE_BOOL, 1, (int64_t[]){1}, c),
                        kh_f32(1, (int64_t[]){1}, x), kh_i64(1, (int64_t[]){1}, y)},
               out;
    qkv_error err;
    cr_assert_eq(run_where(in, &out, 1, &err), QKV_ERR_TYPE);
    cr_assert(
        strstr(err.message, "(Where-16): input 1 'X' has type float32 but input 2 'Y' has int64"),
        "%s", err.message);
}

Test(where, refuses_incompatible_shapes)
{
    uint8_t c[3] = {1, 0, 1};
    float x[2] = {0}, y[1] = {0};
    qkv_tensor in[3] = {kh_tensor(QKV_DTYPE_BOOL, 1, (int64_t[]){3}, c),
                        kh_f32(1, (int64_t[]){2}, x), kh_f32(1, (int64_t[]){1}, y)},
               out;
    qkv_error err;
    cr_assert_eq(run_where(in, &out, 1, &err), QKV_ERR_SHAPE);
    cr_assert(strstr(err.message, "cannot broadcast shapes"), "%s", err.message);
}

Test(where, refuses_non_bool_condition)
{
    float c[1] = {1}, x[1] = {0}, y[1] = {0};
    qkv_tensor in[3] = {kh_f32(1, (int64_t[]){1}, c), kh_f32(1, (int64_t[]){1}, x),
                        kh_f32(1, (int64_t[]){1}, y)},
               out;
    qkv_error err;
    cr_assert_eq(run_where(in, &out, 1, &err), QKV_ERR_TYPE);
    cr_assert(strstr(err.message, "input 0 has type float32, not supported"), "%s", err.message);
}
