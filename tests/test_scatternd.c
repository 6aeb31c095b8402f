/* ScatterND: slices and elements, reductions with duplicates, errors. */
#include <criterion/criterion.h>
#include <string.h>

#include "kernel_harness.h"

/* data (4, 4, 4) as in the ONNX example */
static float data444[64] = {1, 2, 3, 4, 5, 6, 7, 8, 8, 7, 6, 5, 4, 3, 2, 1, 1, 2, 3, 4, 5, 6,
                            7, 8, 8, 7, 6, 5, 4, 3, 2, 1, 8, 7, 6, 5, 4, 3, 2, 1, 1, 2, 3, 4,
                            5, 6, 7, 8, 8, 7, 6, 5, 4, 3, 2, 1, 1, 2, 3, 4, 5, 6, 7, 8};
/* updates (2, 4, 4): rows of 5,6,7,8 then 1,2,3,4 */
static float upd244[32] = {5, 5, 5, 5, 6, 6, 6, 6, 7, 7, 7, 7, 8, 8, 8, 8,
                           1, 1, 1, 1, 2, 2, 2, 2, 3, 3, 3, 3, 4, 4, 4, 4};

static qkv_status run_slices(int64_t opset, const char *red, int64_t i0, int64_t i1, qkv_tensor *y,
                             qkv_error *err)
{
    int64_t ind[2] = {i0, i1};
    qkv_tensor in[3] = {kh_f32(3, (int64_t[]){4, 4, 4}, data444), kh_i64(2, (int64_t[]){2, 1}, ind),
                        kh_f32(3, (int64_t[]){2, 4, 4}, upd244)};
    kh_node *n = kh_node_create("ScatterND", opset, 3, 1);
    if (red)
        kh_attr_string(n, "reduction", red);
    qkv_status st = kh_run(n, in, y, err);
    kh_node_destroy(n);
    return st;
}

Test(scatternd, replaces_slices)
{
    qkv_tensor y;
    qkv_error err;
    cr_assert_eq(run_slices(11, NULL, 0, 2, &y, &err), QKV_OK, "%s", err.message);
    const float *o = y.data;
    for (int i = 0; i < 16; i++) { /* exact copies */
        cr_assert_float_eq(o[i], upd244[i], 0);
        cr_assert_float_eq(o[16 + i], data444[16 + i], 0);
        cr_assert_float_eq(o[32 + i], upd244[16 + i], 0);
        cr_assert_float_eq(o[48 + i], data444[48 + i], 0);
    }
    kh_free_outputs(&y, 1);
}

Test(scatternd, add_combines_duplicate_indices)
{
    qkv_tensor y;
    qkv_error err;
    cr_assert_eq(run_slices(16, "add", 0, 0, &y, &err), QKV_OK, "%s", err.message);
    const float *o = y.data;
    for (int i = 0; i < 16; i++)
        cr_assert_float_eq(o[i], data444[i] + upd244[i] + upd244[16 + i], 0, "[%d]", i);
    for (int i = 16; i < 64; i++)
        cr_assert_float_eq(o[i], data444[i], 0);
    kh_free_outputs(&y, 1);
}

Test(scatternd, mul_combines_duplicate_indices)
{
    qkv_tensor y;
    qkv_error err;
    cr_assert_eq(run_slices(16, "mul", 0, 0, &y, &err), QKV_OK, "%s", err.message);
    for (int i = 0; i < 16; i++)
        cr_assert_float_eq(((float *)y.data)[i], data444[i] * upd244[i] * upd244[16 + i], 0);
    kh_free_outputs(&y, 1);
}

Test(scatternd, none_with_duplicates_keeps_the_last_update)
{
    qkv_tensor y;
    qkv_error err;
    cr_assert_eq(run_slices(13, NULL, 1, 1, &y, &err), QKV_OK, "%s", err.message);
    for (int i = 0; i < 16; i++)
        cr_assert_float_eq(((float *)y.data)[16 + i], upd244[16 + i], 0);
    kh_free_outputs(&y, 1);
}

Test(scatternd, negative_index_counts_from_the_end)
{
    qkv_tensor y;
    qkv_error err;
    cr_assert_eq(run_slices(13, NULL, -1, -4, &y, &err), QKV_OK, "%s", err.message);
    for (int i = 0; i < 16; i++) {
        cr_assert_float_eq(((float *)y.data)[48 + i], upd244[i], 0);
        cr_assert_float_eq(((float *)y.data)[i], upd244[16 + i], 0);
    }
    kh_free_outputs(&y, 1);
}

Test(scatternd, max_and_min_on_elements_with_int32_indices)
{
    int64_t xs[4] = {5, -3, 10, 0}, ups[3] = {7, 1, -9};
    int32_t ind[6] = {0, 0, 1, 1, 0, 1}; /* (3, 2): elements (0,0), (1,1), (0,1) */
    qkv_tensor in[3] = {kh_i64(2, (int64_t[]){2, 2}, xs),
                        kh_tensor(QKV_DTYPE_INT32, 2, (int64_t[]){3, 2}, ind),
                        kh_i64(1, (int64_t[]){3}, ups)},
               y;
    qkv_error err;
    kh_node *n = kh_node_create("ScatterND", 18, 3, 1);
    kh_attr_string(n, "reduction", "max");
    cr_assert_eq(kh_run(n, in, &y, &err), QKV_OK, "%s", err.message);
    int64_t want_max[4] = {7, -3, 10, 1};
    for (int i = 0; i < 4; i++)
        cr_assert_eq(((int64_t *)y.data)[i], want_max[i], "max [%d]", i);
    kh_free_outputs(&y, 1);
    kh_node_destroy(n);
    n = kh_node_create("ScatterND", 18, 3, 1);
    kh_attr_string(n, "reduction", "min");
    cr_assert_eq(kh_run(n, in, &y, &err), QKV_OK, "%s", err.message);
    int64_t want_min[4] = {5, -9, 10, 0};
    for (int i = 0; i < 4; i++)
        cr_assert_eq(((int64_t *)y.data)[i], want_min[i], "min [%d]", i);
    kh_free_outputs(&y, 1);
    kh_node_destroy(n);
}

Test(scatternd, int32_add_wraps_on_overflow)
{
    int32_t xs[1] = {2147483647}, ups[1] = {1};
    int64_t ind[1] = {0};
    qkv_tensor in[3] = {kh_tensor(QKV_DTYPE_INT32, 1, (int64_t[]){1}, xs),
                        kh_i64(2, (int64_t[]){1, 1}, ind),
                        kh_tensor(QKV_DTYPE_INT32, 1, (int64_t[]){1}, ups)},
               y;
    qkv_error err;
    kh_node *n = kh_node_create("ScatterND", 16, 3, 1);
    kh_attr_string(n, "reduction", "add");
    cr_assert_eq(kh_run(n, in, &y, &err), QKV_OK, "%s", err.message);
    cr_assert_eq(((int32_t *)y.data)[0], (int32_t)-2147483647 - 1);
    kh_free_outputs(&y, 1);
    kh_node_destroy(n);
}

Test(scatternd, empty_index_tuples_replace_all_of_data)
{
    /* indices (2, 0): two updates of data's whole shape; the last wins */
    float xs[3] = {1, 2, 3}, ups[6] = {4, 5, 6, 7, 8, 9};
    int64_t ind[1];
    qkv_tensor in[3] = {kh_f32(1, (int64_t[]){3}, xs), kh_i64(2, (int64_t[]){2, 0}, ind),
                        kh_f32(2, (int64_t[]){2, 3}, ups)},
               y;
    qkv_error err;
    kh_node *n = kh_node_create("ScatterND", 13, 3, 1);
    cr_assert_eq(kh_run(n, in, &y, &err), QKV_OK, "%s", err.message);
    for (int i = 0; i < 3; i++)
        cr_assert_float_eq(((float *)y.data)[i], ups[3 + i], 0);
    kh_free_outputs(&y, 1);
    kh_node_destroy(n);
}

Test(scatternd, uint8_mul_wraps)
{
    uint8_t xs[2] = {16, 3}, ups[1] = {17};
    int64_t ind[1] = {0};
    qkv_tensor in[3] = {kh_tensor(QKV_DTYPE_UINT8, 1, (int64_t[]){2}, xs),
                        kh_i64(2, (int64_t[]){1, 1}, ind),
                        kh_tensor(QKV_DTYPE_UINT8, 1, (int64_t[]){1}, ups)},
               y;
    qkv_error err;
    kh_node *n = kh_node_create("ScatterND", 16, 3, 1);
    kh_attr_string(n, "reduction", "mul");
    cr_assert_eq(kh_run(n, in, &y, &err), QKV_OK, "%s", err.message);
    cr_assert_eq(((uint8_t *)y.data)[0], (16 * 17) % 256);
    cr_assert_eq(((uint8_t *)y.data)[1], 3);
    kh_free_outputs(&y, 1);
    kh_node_destroy(n);
}

Test(scatternd, rejects_index_out_of_range_from_compute)
{
    qkv_tensor y;
    qkv_error err;
    cr_assert_eq(run_slices(13, NULL, 1, 4, &y, &err), QKV_ERR_INVALID_ARGUMENT);
    cr_assert(strstr(err.message, "(ScatterND-11): input 1 'indices' tuple 1 [4]: 4 is out of "
                                  "range [-4, 4) for dim 0 of input 0 'data'"),
              "%s", err.message);
    cr_assert_eq(run_slices(13, NULL, -5, 0, &y, &err), QKV_ERR_INVALID_ARGUMENT);
    cr_assert(strstr(err.message, "tuple 0 [-5]: -5 is out of range"), "%s", err.message);
}

Test(scatternd, rejects_updates_of_the_wrong_shape)
{
    int64_t ind[2] = {0, 1};
    qkv_tensor in[3] = {kh_f32(3, (int64_t[]){4, 4, 4}, data444), kh_i64(2, (int64_t[]){2, 1}, ind),
                        kh_f32(3, (int64_t[]){2, 4, 2}, upd244)},
               y;
    qkv_error err;
    kh_node *n = kh_node_create("ScatterND", 13, 3, 1);
    cr_assert_eq(kh_run(n, in, &y, &err), QKV_ERR_SHAPE);
    cr_assert(strstr(err.message, "input 2 'updates' has shape [2,4,2], expected "
                                  "indices.shape[:-1] + data.shape[1:] (indices [2,1], data "
                                  "[4,4,4])"),
              "%s", err.message);
    kh_node_destroy(n);
}

Test(scatternd, rejects_index_tuples_longer_than_the_rank)
{
    int64_t ind[4] = {0, 0, 0, 0};
    qkv_tensor in[3] = {kh_f32(1, (int64_t[]){4}, data444), kh_i64(2, (int64_t[]){2, 2}, ind),
                        kh_f32(1, (int64_t[]){2}, upd244)},
               y;
    qkv_error err;
    kh_node *n = kh_node_create("ScatterND", 13, 3, 1);
    cr_assert_eq(kh_run(n, in, &y, &err), QKV_ERR_SHAPE);
    cr_assert(strstr(err.message, "input 1 'indices' has last dim 2, larger than the rank 1"), "%s",
              err.message);
    kh_node_destroy(n);
}

Test(scatternd, rejects_reduction_before_its_opset)
{
    qkv_tensor y;
    qkv_error err;
    cr_assert_eq(run_slices(13, "add", 0, 0, &y, &err), QKV_ERR_INVALID_MODEL);
    cr_assert(strstr(err.message, "attribute 'reduction' is 'add', not supported at opset 13"),
              "%s", err.message);
    cr_assert_eq(run_slices(16, "max", 0, 0, &y, &err), QKV_ERR_INVALID_MODEL);
    cr_assert(strstr(err.message, "'max', not supported at opset 16"), "%s", err.message);
}

Test(scatternd, rejects_updates_of_another_type)
{
    int64_t ind[2] = {0, 1}, ups[32] = {0};
    qkv_tensor in[3] = {kh_f32(3, (int64_t[]){4, 4, 4}, data444), kh_i64(2, (int64_t[]){2, 1}, ind),
                        kh_i64(3, (int64_t[]){2, 4, 4}, ups)},
               y;
    qkv_error err;
    kh_node *n = kh_node_create("ScatterND", 13, 3, 1);
    cr_assert_eq(kh_run(n, in, &y, &err), QKV_ERR_TYPE);
    cr_assert(strstr(err.message, "input 2 'updates' has type int64, input 0 'data' has float32"),
              "%s", err.message);
    kh_node_destroy(n);
}
