/* Expand, Tile (ops/expand.c). Both copy elements, so comparisons are exact. */
#include <criterion/criterion.h>
#include <stdlib.h>
#include <string.h>

#include "kernel_harness.h"
#include "kernel_util.h"

static void assert_dims(const qkv_tensor *t, int32_t rank, const int64_t *dims)
{
    cr_assert_eq(t->rank, rank, "rank %d, expected %d", t->rank, rank);
    for (int32_t k = 0; k < rank; k++)
        cr_assert_eq(t->dims[k], dims[k], "dim %d is %lld, expected %lld", k, (long long)t->dims[k],
                     (long long)dims[k]);
}

static void assert_floats(const qkv_tensor *y, const float *want, size_t n)
{
    cr_assert_eq(y->data_bytes, n * sizeof(float));
    for (size_t i = 0; i < n; i++)
        cr_assert_eq(((float *)y->data)[i], want[i], "element %zu is %g, expected %g", i,
                     ((float *)y->data)[i], want[i]);
}

static qkv_status run(const char *op, qkv_tensor x, const int64_t *list, int64_t n, qkv_tensor *y,
                      qkv_error *err)
{
    qkv_tensor in[2] = {x, kh_i64(1, (int64_t[]){n}, (int64_t *)list)};
    kh_node *node = kh_node_create(op, 13, 2, 1);
    qkv_status st = kh_run(node, in, y, err);
    kh_node_destroy(node);
    return st;
}

static float col3[3] = {1, 2, 3};

/*
 * Checks y == x broadcast to y's shape, element by element, by computing
 * each input index from the output coordinates (dims of 1 repeat).
 */
static void assert_broadcast_of(const qkv_tensor *y, const qkv_tensor *x)
{
    size_t n = qkv_numel(y);
    int32_t off = y->rank - x->rank;
    for (size_t i = 0; i < n; i++) {
        size_t rest = i, src = 0, stride = 1;
        for (int32_t k = y->rank - 1; k >= 0; k--) {
            size_t c = rest % (size_t)y->dims[k];
            rest /= (size_t)y->dims[k];
            if (k >= off) {
                size_t d = (size_t)x->dims[k - off];
                src += (d == 1 ? 0 : c) * stride;
                stride *= d;
            }
        }
        cr_assert_eq(((float *)y->data)[i], ((float *)x->data)[src], "element %zu", i);
    }
}

Test(expand, adds_and_widens_dims)
{
    qkv_tensor x = kh_f32(2, (int64_t[]){3, 1}, col3), y;
    qkv_error err;
    cr_assert_eq(run("Expand", x, (int64_t[]){2, 1, 6}, 3, &y, &err), QKV_OK, "%s", err.message);
    assert_dims(&y, 3, (int64_t[]){2, 3, 6});
    assert_broadcast_of(&y, &x);
    cr_assert_eq(((float *)y.data)[6 * 3 + 7], 2.0f); /* [1,1,1] */
    kh_free_outputs(&y, 1);
    cr_assert_eq(run("Expand", x, (int64_t[]){3, 4}, 2, &y, &err), QKV_OK, "%s", err.message);
    assert_floats(&y, (float[]){1, 1, 1, 1, 2, 2, 2, 2, 3, 3, 3, 3}, 12);
    kh_free_outputs(&y, 1);
}

Test(expand, a_smaller_shape_keeps_the_input_dims)
{
    float x6[6] = {1, 2, 3, 4, 5, 6};
    qkv_tensor x = kh_f32(2, (int64_t[]){2, 3}, x6), y;
    qkv_error err;
    cr_assert_eq(run("Expand", x, (int64_t[]){1, 1}, 2, &y, &err), QKV_OK, "%s", err.message);
    assert_dims(&y, 2, (int64_t[]){2, 3});
    assert_floats(&y, x6, 6);
    kh_free_outputs(&y, 1);
    cr_assert_eq(run("Expand", x, (int64_t[]){3}, 1, &y, &err), QKV_OK, "%s", err.message);
    assert_dims(&y, 2, (int64_t[]){2, 3});
    kh_free_outputs(&y, 1);
}

Test(expand, repeats_a_middle_dim_of_whole_rows)
{
    float x6[6] = {1, 2, 3, 4, 5, 6};
    qkv_tensor x = kh_f32(3, (int64_t[]){2, 1, 3}, x6), y;
    qkv_error err;
    cr_assert_eq(run("Expand", x, (int64_t[]){2, 2, 4, 3}, 4, &y, &err), QKV_OK, "%s", err.message);
    assert_dims(&y, 4, (int64_t[]){2, 2, 4, 3});
    assert_broadcast_of(&y, &x);
    kh_free_outputs(&y, 1);
}

Test(expand, zero_dims_give_an_empty_output)
{
    qkv_tensor x = kh_f32(2, (int64_t[]){1, 3}, col3), y;
    qkv_error err;
    cr_assert_eq(run("Expand", x, (int64_t[]){0, 1}, 2, &y, &err), QKV_OK, "%s", err.message);
    assert_dims(&y, 2, (int64_t[]){0, 3});
    cr_assert_eq(y.data_bytes, 0);
    kh_free_outputs(&y, 1);
}

Test(expand, refuses_incompatible_and_negative_shapes)
{
    qkv_tensor x = kh_f32(2, (int64_t[]){3, 1}, col3), y;
    qkv_error err;
    cr_assert_eq(run("Expand", x, (int64_t[]){2, 1}, 2, &y, &err), QKV_ERR_SHAPE);
    cr_assert(strstr(err.message, "node 'test_node' (Expand-8): cannot broadcast shapes"), "%s",
              err.message);
    cr_assert_eq(run("Expand", x, (int64_t[]){3, -1}, 2, &y, &err), QKV_ERR_SHAPE);
    cr_assert(strstr(err.message, "input 1 'shape'[1] is -1, expected >= 0"), "%s", err.message);
}

Test(expand, unknown_shape_value_gives_known_rank)
{
    qkv_tensor in[2] = {kh_f32(2, (int64_t[]){3, 1}, NULL), kh_i64(1, (int64_t[]){4}, NULL)}, y;
    qkv_error err;
    kh_node *n = kh_node_create("Expand", 13, 2, 1);
    cr_assert_eq(kh_infer(n, in, &y, &err), QKV_OK, "%s", err.message);
    assert_dims(&y, 4, (int64_t[]){-1, -1, -1, -1});
    in[1].dims[0] = 1; /* the rank is the larger of the two */
    cr_assert_eq(kh_infer(n, in, &y, &err), QKV_OK, "%s", err.message);
    assert_dims(&y, 2, (int64_t[]){-1, -1});
    kh_node_destroy(n);
}

Test(expand, large_expand_on_threads_matches_the_reference)
{
    enum { N = 300 };
    float *xs = malloc(sizeof(float) * N);
    for (int i = 0; i < N; i++)
        xs[i] = (float)i;
    qkv_tensor in[2] = {kh_f32(3, (int64_t[]){1, N, 1}, xs),
                        kh_i64(1, (int64_t[]){3}, (int64_t[]){4, N, 64})},
               y;
    qkv_error err;
    kh_node *n = kh_node_create("Expand", 13, 2, 1);
    kh_set_threads(n, 4);
    kh_hide_input_values(n);
    cr_assert_eq(kh_run(n, in, &y, &err), QKV_OK, "%s", err.message);
    assert_dims(&y, 3, (int64_t[]){4, N, 64});
    assert_broadcast_of(&y, &in[0]);
    kh_free_outputs(&y, 1);
    kh_node_destroy(n);
    free(xs);
}

/* ---- Tile ---- */

Test(tile, repeats_a_matrix)
{
    float x4[4] = {0, 1, 2, 3};
    qkv_tensor x = kh_f32(2, (int64_t[]){2, 2}, x4), y;
    qkv_error err;
    cr_assert_eq(run("Tile", x, (int64_t[]){2, 2}, 2, &y, &err), QKV_OK, "%s", err.message);
    assert_dims(&y, 2, (int64_t[]){4, 4});
    assert_floats(&y, (float[]){0, 1, 0, 1, 2, 3, 2, 3, 0, 1, 0, 1, 2, 3, 2, 3}, 16);
    kh_free_outputs(&y, 1);
}

Test(tile, three_d_matches_modular_indexing)
{
    enum { A = 2, B = 3, C = 4 };
    float xs[A * B * C];
    for (int i = 0; i < A * B * C; i++)
        xs[i] = (float)i;
    const int64_t reps[3] = {2, 1, 3};
    qkv_tensor x = kh_f32(3, (int64_t[]){A, B, C}, xs), y;
    qkv_error err;
    cr_assert_eq(run("Tile", x, reps, 3, &y, &err), QKV_OK, "%s", err.message);
    assert_dims(&y, 3, (int64_t[]){2 * A, B, 3 * C});
    const float *got = y.data;
    for (int i = 0; i < 2 * A; i++)
        for (int j = 0; j < B; j++)
            for (int k = 0; k < 3 * C; k++)
                cr_assert_eq(got[(i * B + j) * 3 * C + k], xs[((i % A) * B + j) * C + k % C],
                             "(%d,%d,%d)", i, j, k);
    kh_free_outputs(&y, 1);
}

Test(tile, zero_repeats_give_an_empty_dim)
{
    qkv_tensor x = kh_f32(2, (int64_t[]){3, 1}, col3), y;
    qkv_error err;
    cr_assert_eq(run("Tile", x, (int64_t[]){0, 5}, 2, &y, &err), QKV_OK, "%s", err.message);
    assert_dims(&y, 2, (int64_t[]){0, 5});
    kh_free_outputs(&y, 1);
}

Test(tile, refuses_wrong_repeat_counts_and_negative_repeats)
{
    qkv_tensor x = kh_f32(2, (int64_t[]){3, 1}, col3), y;
    qkv_error err;
    cr_assert_eq(run("Tile", x, (int64_t[]){2}, 1, &y, &err), QKV_ERR_SHAPE);
    cr_assert(strstr(err.message, "node 'test_node' (Tile-6): input 1 'repeats' has 1 values, "
                                  "expected the rank of input 0 'input' (2)"),
              "%s", err.message);
    cr_assert_eq(run("Tile", x, (int64_t[]){2, -1}, 2, &y, &err), QKV_ERR_SHAPE);
    cr_assert(strstr(err.message, "input 1 'repeats'[1] is -1, expected >= 0"), "%s", err.message);
}

Test(tile, unknown_repeats_value_gives_known_rank)
{
    qkv_tensor in[2] = {kh_f32(2, (int64_t[]){3, 1}, NULL), kh_i64(1, (int64_t[]){2}, NULL)}, y;
    qkv_error err;
    kh_node *n = kh_node_create("Tile", 13, 2, 1);
    cr_assert_eq(kh_infer(n, in, &y, &err), QKV_OK, "%s", err.message);
    assert_dims(&y, 2, (int64_t[]){-1, -1});
    kh_node_destroy(n);
}
