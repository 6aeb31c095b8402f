/* MaxUnpool: with and without output_shape, strides and pads, errors. */
#include <criterion/criterion.h>
#include <stdio.h>
#include <string.h>

#include "kernel_harness.h"

static kh_node *unpool_node(size_t n_in, int64_t k, int64_t s, const int64_t *pads)
{
    kh_node *n = kh_node_create("MaxUnpool", 11, n_in, 1);
    kh_attr_ints(n, "kernel_shape", (int64_t[]){k, k}, 2);
    kh_attr_ints(n, "strides", (int64_t[]){s, s}, 2);
    if (pads)
        kh_attr_ints(n, "pads", pads, 4);
    return n;
}

Test(maxunpool, puts_values_back_at_their_indices)
{
    float x[4] = {1, 2, 3, 4};
    int64_t ind[4] = {5, 7, 13, 15};
    qkv_tensor in[2] = {kh_f32(4, (int64_t[]){1, 1, 2, 2}, x),
                        kh_i64(4, (int64_t[]){1, 1, 2, 2}, ind)},
               y;
    qkv_error err;
    kh_node *n = unpool_node(2, 2, 2, NULL);
    cr_assert_eq(kh_run(n, in, &y, &err), QKV_OK, "%s", err.message);
    cr_assert_eq(y.dims[2], 4);
    cr_assert_eq(y.dims[3], 4);
    float want[16] = {0};
    want[5] = 1, want[7] = 2, want[13] = 3, want[15] = 4;
    cr_assert_arr_eq(y.data, want, sizeof want);
    kh_free_outputs(&y, 1);
    kh_node_destroy(n);
}

Test(maxunpool, output_shape_keeps_the_coordinates)
{
    float x[4] = {5, 6, 7, 8};
    int64_t ind[4] = {5, 7, 13, 15}, shape[4] = {1, 1, 5, 5};
    qkv_tensor in[3] = {kh_f32(4, (int64_t[]){1, 1, 2, 2}, x),
                        kh_i64(4, (int64_t[]){1, 1, 2, 2}, ind), kh_i64(1, (int64_t[]){4}, shape)},
               y;
    qkv_error err;
    kh_node *n = unpool_node(3, 2, 2, NULL);
    kh_hide_input_values(n); /* output_shape known only when it runs */
    cr_assert_eq(kh_run(n, in, &y, &err), QKV_OK, "%s", err.message);
    cr_assert_eq(y.dims[2], 5);
    cr_assert_eq(y.dims[3], 5);
    /* the ONNX reference: (1,1), (1,3), (3,1), (3,3) of the 5x5 plane */
    float want[25] = {0};
    want[6] = 5, want[8] = 6, want[16] = 7, want[18] = 8;
    cr_assert_arr_eq(y.data, want, sizeof want);
    kh_free_outputs(&y, 1);
    kh_node_destroy(n);
}

Test(maxunpool, pads_shrink_and_planes_offset_the_indices)
{
    /* 2 channels, input 2x2, kernel 3, stride 2, pads 1 each side:
     * output (2-1)*2 + 3 - 2 = 3 per spatial dim; indices flat over (1,2,3,3) */
    float x[8] = {1, 2, 3, 4, 5, 6, 7, 8};
    int64_t ind[8] = {0, 2, 6, 8, 9 + 4, 9 + 1, 9 + 3, 9 + 5};
    qkv_tensor in[2] = {kh_f32(4, (int64_t[]){1, 2, 2, 2}, x),
                        kh_i64(4, (int64_t[]){1, 2, 2, 2}, ind)},
               y;
    qkv_error err;
    kh_node *n = unpool_node(2, 3, 2, (int64_t[]){1, 1, 1, 1});
    cr_assert_eq(kh_run(n, in, &y, &err), QKV_OK, "%s", err.message);
    cr_assert_eq(y.dims[1], 2);
    cr_assert_eq(y.dims[2], 3);
    cr_assert_eq(y.dims[3], 3);
    float want[18] = {0};
    for (int i = 0; i < 8; i++)
        want[ind[i]] = x[i];
    cr_assert_arr_eq(y.data, want, sizeof want);
    kh_free_outputs(&y, 1);
    kh_node_destroy(n);
}

Test(maxunpool, refuses_an_index_out_of_range)
{
    float x[4] = {1, 2, 3, 4};
    int64_t ind[4] = {5, 7, 13, 16};
    qkv_tensor in[2] = {kh_f32(4, (int64_t[]){1, 1, 2, 2}, x),
                        kh_i64(4, (int64_t[]){1, 1, 2, 2}, ind)},
               y;
    qkv_error err;
    kh_node *n = unpool_node(2, 2, 2, NULL);
    cr_assert_eq(kh_run(n, in, &y, &err), QKV_ERR_INVALID_ARGUMENT);
    cr_assert(strstr(err.message, "test_node"), "%s", err.message);
    cr_assert(strstr(err.message, "element 3 is 16, outside [0, 16)"), "%s", err.message);
    kh_node_destroy(n);
}

Test(maxunpool, refuses_mismatched_shapes_and_attributes)
{
    float x[4] = {1, 2, 3, 4};
    int64_t ind[4] = {0, 1, 2, 3}, shape[4] = {1, 2, 4, 4};
    qkv_tensor in[3] = {kh_f32(4, (int64_t[]){1, 1, 2, 2}, x),
                        kh_i64(4, (int64_t[]){1, 1, 4, 1}, ind), kh_i64(1, (int64_t[]){4}, shape)},
               y;
    qkv_error err;
    kh_node *n = unpool_node(2, 2, 2, NULL);
    cr_assert_eq(kh_run(n, in, &y, &err), QKV_ERR_SHAPE);
    cr_assert(strstr(err.message, "input 1 'I' has shape"), "%s", err.message);
    kh_node_destroy(n);
    in[1] = kh_i64(4, (int64_t[]){1, 1, 2, 2}, ind);
    n = unpool_node(3, 2, 2, NULL);
    cr_assert_eq(kh_run(n, in, &y, &err), QKV_ERR_SHAPE);
    cr_assert(strstr(err.message, "'output_shape' has 2 at dim 1"), "%s", err.message);
    kh_node_destroy(n);
    n = kh_node_create("MaxUnpool", 11, 2, 1);
    kh_attr_ints(n, "kernel_shape", (int64_t[]){2, 2}, 2);
    kh_attr_ints(n, "strides", (int64_t[]){2}, 1);
    cr_assert_eq(kh_run(n, in, &y, &err), QKV_ERR_INVALID_MODEL);
    cr_assert(strstr(err.message, "'strides' (1 values)"), "%s", err.message);
    kh_node_destroy(n);
}

/* X and I are required: one given as "" before a present output_shape keeps
 * the arity, and is refused before init instead of being read as NULL. */
Test(maxunpool, refuses_an_omitted_required_input)
{
    for (size_t omit = 0; omit < 2; omit++) {
        float x[4] = {5, 6, 7, 8};
        int64_t ind[4] = {5, 7, 13, 15}, shape[4] = {1, 1, 5, 5};
        qkv_tensor in[3] = {kh_f32(4, (int64_t[]){1, 1, 2, 2}, x),
                            kh_i64(4, (int64_t[]){1, 1, 2, 2}, ind),
                            kh_i64(1, (int64_t[]){4}, shape)},
                   y;
        qkv_error err;
        kh_node *n = unpool_node(3, 2, 2, NULL);
        kh_omit_input(n, omit);
        cr_assert_eq(kh_run(n, in, &y, &err), QKV_ERR_INVALID_MODEL, "input %zu: %s", omit,
                     err.message);
        char want[64];
        snprintf(want, sizeof want, "input %zu is omitted", omit);
        cr_assert(strstr(err.message, "test_node") && strstr(err.message, want), "%s", err.message);
        kh_node_destroy(n);
    }
}
