/* Transpose: every path of the planned copy against per-element index math. */
#include <criterion/criterion.h>
#include <stdlib.h>
#include <string.h>

#include "kernel_harness.h"

static uint32_t next_rand(uint32_t *s)
{
    *s = *s * 1103515245u + 12345u;
    return *s >> 16;
}

/* Reference: y[out index] = x[in index], element size es, by index math. */
static void ref_transpose(const unsigned char *x, unsigned char *y, int32_t rank,
                          const int64_t *dims, const int64_t *perm, size_t es)
{
    size_t n = 1, in_strides[QKV_MAX_RANK];
    for (int32_t a = rank - 1; a >= 0; a--) {
        in_strides[a] = n;
        n *= (size_t)dims[a];
    }
    for (size_t o = 0; o < n; o++) {
        size_t rem = o, src = 0;
        for (int32_t k = rank - 1; k >= 0; k--) {
            size_t d = (size_t)dims[perm[k]];
            src += (rem % d) * in_strides[perm[k]];
            rem /= d;
        }
        memcpy(y + o * es, x + src * es, es);
    }
}

/* Transposes random bytes of shape dims (dtype dt) by perm (NULL: the
 * default) with `threads` threads and checks the result bytewise. */
static void check_transpose(qkv_dtype dt, size_t es, int32_t rank, const int64_t *dims,
                            const int64_t *perm, size_t threads)
{
    size_t n = 1;
    for (int32_t a = 0; a < rank; a++)
        n *= (size_t)dims[a];
    unsigned char *x = malloc(n * es + 1), *ref = malloc(n * es + 1);
    uint32_t s = (uint32_t)n * 31u + (uint32_t)rank;
    for (size_t i = 0; i < n * es; i++)
        x[i] = (unsigned char)next_rand(&s);
    int64_t rev[QKV_MAX_RANK];
    for (int32_t k = 0; k < rank; k++)
        rev[k] = rank - 1 - k;
    const int64_t *p = perm ? perm : rev;
    ref_transpose(x, ref, rank, dims, p, es);
    qkv_tensor in = kh_tensor(dt, rank, dims, x), y;
    qkv_error err;
    kh_node *node = kh_node_create("Transpose", 13, 1, 1);
    if (perm)
        kh_attr_ints(node, "perm", perm, (size_t)rank);
    kh_set_threads(node, threads);
    cr_assert_eq(kh_run(node, &in, &y, &err), QKV_OK, "%s", err.message);
    cr_assert_eq(y.dtype, dt);
    cr_assert_eq(y.rank, rank);
    for (int32_t k = 0; k < rank; k++)
        cr_assert_eq(y.dims[k], dims[p[k]]);
    cr_assert_eq(y.data_bytes, n * es);
    for (size_t i = 0; i < n * es; i++)
        cr_assert_eq(((unsigned char *)y.data)[i], ref[i], "byte %zu (rank %d, es %zu)", i, rank,
                     es);
    kh_free_outputs(&y, 1);
    kh_node_destroy(node);
    free(x);
    free(ref);
}

Test(transpose, default_reverses_axes)
{
    check_transpose(QKV_DTYPE_FLOAT, 4, 3, (int64_t[]){2, 3, 4}, NULL, 1);
}

Test(transpose, all_permutations_of_rank_3)
{
    const int64_t perms[6][3] = {{0, 1, 2}, {0, 2, 1}, {1, 0, 2}, {1, 2, 0}, {2, 0, 1}, {2, 1, 0}};
    for (int i = 0; i < 6; i++)
        check_transpose(QKV_DTYPE_FLOAT, 4, 3, (int64_t[]){2, 3, 4}, perms[i], 1);
}

Test(transpose, every_element_size)
{
    const struct {
        qkv_dtype dt;
        size_t es;
    } ts[] = {{QKV_DTYPE_BOOL, 1},      {QKV_DTYPE_UINT8, 1},      {QKV_DTYPE_FLOAT16, 2},
              {QKV_DTYPE_INT32, 4},     {QKV_DTYPE_INT64, 8},      {QKV_DTYPE_DOUBLE, 8},
              {QKV_DTYPE_COMPLEX64, 8}, {QKV_DTYPE_COMPLEX128, 16}};
    for (size_t i = 0; i < sizeof ts / sizeof ts[0]; i++) {
        check_transpose(ts[i].dt, ts[i].es, 2, (int64_t[]){37, 45}, NULL, 1);
        check_transpose(ts[i].dt, ts[i].es, 4, (int64_t[]){3, 5, 7, 2}, (int64_t[]){2, 0, 3, 1}, 1);
    }
}

Test(transpose, contiguous_inner_runs_of_odd_width)
{
    /* the last axis stays last: 3-float (12-byte) runs copied whole */
    check_transpose(QKV_DTYPE_FLOAT, 4, 3, (int64_t[]){4, 5, 3}, (int64_t[]){1, 0, 2}, 1);
    /* and 2-float runs become one 8-byte element of the tiled path */
    check_transpose(QKV_DTYPE_FLOAT, 4, 4, (int64_t[]){3, 4, 5, 2}, (int64_t[]){2, 1, 0, 3}, 1);
}

Test(transpose, size_one_dims_and_identity)
{
    check_transpose(QKV_DTYPE_FLOAT, 4, 4, (int64_t[]){1, 3, 1, 4}, (int64_t[]){2, 1, 0, 3}, 1);
    check_transpose(QKV_DTYPE_FLOAT, 4, 4, (int64_t[]){1, 3, 1, 4}, (int64_t[]){3, 2, 0, 1}, 1);
    check_transpose(QKV_DTYPE_FLOAT, 4, 3, (int64_t[]){2, 3, 4}, (int64_t[]){0, 1, 2}, 1);
    check_transpose(QKV_DTYPE_FLOAT, 4, 0, NULL, NULL, 1);
    check_transpose(QKV_DTYPE_FLOAT, 4, 1, (int64_t[]){5}, NULL, 1);
}

Test(transpose, empty_tensor)
{
    check_transpose(QKV_DTYPE_FLOAT, 4, 3, (int64_t[]){2, 0, 4}, (int64_t[]){2, 0, 1}, 1);
}

/* A random shape of rank 1-6 (dims 1-5) and a random permutation. */
static int32_t random_case(uint32_t *s, int64_t *dims, int64_t *perm)
{
    int32_t rank = 1 + (int32_t)(next_rand(s) % 6);
    for (int32_t k = 0; k < rank; k++) {
        dims[k] = 1 + next_rand(s) % 5;
        perm[k] = k;
    }
    for (int32_t k = rank - 1; k > 0; k--) { /* Fisher-Yates */
        int32_t j = (int32_t)(next_rand(s) % (uint32_t)(k + 1));
        int64_t t = perm[k];
        perm[k] = perm[j];
        perm[j] = t;
    }
    return rank;
}

Test(transpose, random_permutations_up_to_rank_6)
{
    uint32_t s = 2024;
    const size_t sizes[] = {1, 2, 4, 8};
    for (int iter = 0; iter < 300; iter++) {
        int64_t dims[6], perm[6];
        int32_t rank = random_case(&s, dims, perm);
        size_t es = sizes[iter % 4];
        qkv_dtype dt = es == 1   ? QKV_DTYPE_UINT8
                       : es == 2 ? QKV_DTYPE_INT16
                       : es == 4 ? QKV_DTYPE_FLOAT
                                 : QKV_DTYPE_INT64;
        check_transpose(dt, es, rank, dims, perm, 1);
    }
}

Test(transpose, threads_give_the_same_result)
{
    /* large enough to go parallel (at least two chunks of
     * QKV_PARALLEL_MIN_CHUNK_BYTES): tiled, memcpy-run and generic paths,
     * the units cut into runs that do not divide evenly */
    check_transpose(QKV_DTYPE_FLOAT, 4, 3, (int64_t[]){8, 70, 90}, (int64_t[]){0, 2, 1}, 3);
    check_transpose(QKV_DTYPE_FLOAT, 4, 4, (int64_t[]){6, 12, 20, 64}, (int64_t[]){2, 0, 1, 3}, 3);
    check_transpose(QKV_DTYPE_FLOAT, 4, 3, (int64_t[]){301, 70, 3}, (int64_t[]){1, 0, 2}, 3);
    /* attention's head split (S, B*H, D) -> (B*H, S, D): 256-byte runs */
    check_transpose(QKV_DTYPE_FLOAT, 4, 3, (int64_t[]){128, 12, 64}, (int64_t[]){1, 0, 2}, 2);
    check_transpose(QKV_DTYPE_UINT8, 1, 5, (int64_t[]){8, 5, 6, 7, 40}, (int64_t[]){4, 2, 0, 3, 1},
                    3);
}

Test(transpose, infers_shape_without_values)
{
    float x[24] = {0};
    qkv_tensor in = kh_f32(3, (int64_t[]){2, 3, 4}, x), y;
    qkv_error err;
    kh_node *node = kh_node_create("Transpose", 13, 1, 1);
    kh_attr_ints(node, "perm", (int64_t[]){1, 2, 0}, 3);
    kh_hide_input_values(node);
    cr_assert_eq(kh_run(node, &in, &y, &err), QKV_OK, "%s", err.message);
    cr_assert_eq(y.rank, 3);
    cr_assert_eq(y.dims[0], 3);
    cr_assert_eq(y.dims[1], 4);
    cr_assert_eq(y.dims[2], 2);
    kh_free_outputs(&y, 1);
    kh_node_destroy(node);
}

static void check_error(const int64_t *perm, size_t n_perm, qkv_tensor in, qkv_status want,
                        const char *msg)
{
    qkv_tensor y;
    qkv_error err;
    kh_node *node = kh_node_create("Transpose", 13, 1, 1);
    kh_attr_ints(node, "perm", perm, n_perm);
    cr_assert_eq(kh_run(node, &in, &y, &err), want, "status %d: %s", (int)err.status, err.message);
    cr_assert(strstr(err.message, msg), "message: %s", err.message);
    kh_node_destroy(node);
}

Test(transpose, refuses_perm_of_wrong_length)
{
    float x[24] = {0};
    check_error((int64_t[]){1, 0}, 2, kh_f32(3, (int64_t[]){2, 3, 4}, x), QKV_ERR_SHAPE,
                "node 'test_node' (Transpose-13): attribute perm has 2 entries but input 0 "
                "'data' has rank 3");
}

Test(transpose, refuses_repeated_axis)
{
    float x[24] = {0};
    check_error((int64_t[]){0, 2, 0}, 3, kh_f32(3, (int64_t[]){2, 3, 4}, x), QKV_ERR_INVALID_MODEL,
                "node 'test_node' (Transpose-13): attribute perm repeats axis 0 (at position 2)");
}

Test(transpose, refuses_axis_out_of_range)
{
    float x[24] = {0};
    check_error((int64_t[]){0, 3, 1}, 3, kh_f32(3, (int64_t[]){2, 3, 4}, x), QKV_ERR_INVALID_MODEL,
                "attribute perm[1] = 3 is out of range [0, 3)");
    check_error((int64_t[]){0, -1, 1}, 3, kh_f32(3, (int64_t[]){2, 3, 4}, x), QKV_ERR_INVALID_MODEL,
                "attribute perm[1] = -1 is out of range [0, 3)");
}

Test(transpose, refuses_strings)
{
    char *x[2] = {"a", "b"};
    qkv_tensor in = kh_tensor(QKV_DTYPE_STRING, 1, (int64_t[]){2}, x), y;
    qkv_error err;
    kh_node *node = kh_node_create("Transpose", 13, 1, 1);
    cr_assert_eq(kh_run(node, &in, &y, &err), QKV_ERR_TYPE, "%s", err.message);
    cr_assert(strstr(err.message, "input 0 has type string, not supported"), "%s", err.message);
    kh_node_destroy(node);
}
