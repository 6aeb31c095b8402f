/* Shape, Size (ops/shape.c). */
#include <criterion/criterion.h>
#include <string.h>

#include "kernel_harness.h"

/* Runs Shape-`opset` on a [3,4,5] input whose data is NULL (Shape reads
 * dims only); start/end set when `set_*`. Checks the output values. */
static void check_shape(int64_t opset, bool set_start, int64_t start, bool set_end, int64_t end,
                        size_t n_want, const int64_t *want)
{
    qkv_tensor x = kh_f32(3, (int64_t[]){3, 4, 5}, NULL), y;
    qkv_error err;
    kh_node *n = kh_node_create("Shape", opset, 1, 1);
    if (set_start)
        kh_attr_int(n, "start", start);
    if (set_end)
        kh_attr_int(n, "end", end);
    cr_assert_eq(kh_run(n, &x, &y, &err), QKV_OK, "%s", err.message);
    cr_assert_eq(y.dtype, QKV_DTYPE_INT64);
    cr_assert_eq(y.rank, 1);
    cr_assert_eq(y.dims[0], (int64_t)n_want, "start %lld end %lld: %lld values", (long long)start,
                 (long long)end, (long long)y.dims[0]);
    for (size_t i = 0; i < n_want; i++)
        cr_assert_eq(((int64_t *)y.data)[i], want[i], "start %lld end %lld: value %zu",
                     (long long)start, (long long)end, i);
    kh_free_outputs(&y, 1);
    kh_node_destroy(n);
}

Test(shape, returns_every_dim_without_reading_data)
{
    check_shape(1, false, 0, false, 0, 3, (int64_t[]){3, 4, 5});
    check_shape(13, false, 0, false, 0, 3, (int64_t[]){3, 4, 5});
}

Test(shape, start_and_end_select_a_range)
{
    check_shape(15, true, 1, false, 0, 2, (int64_t[]){4, 5});
    check_shape(15, false, 0, true, 1, 1, (int64_t[]){3});
    check_shape(15, true, -1, false, 0, 1, (int64_t[]){5});
    check_shape(15, false, 0, true, -1, 2, (int64_t[]){3, 4});
    check_shape(15, true, 1, true, -1, 1, (int64_t[]){4});
    check_shape(15, true, 1, true, 2, 1, (int64_t[]){4});
}

Test(shape, start_and_end_are_clamped)
{
    check_shape(15, true, -10, false, 0, 3, (int64_t[]){3, 4, 5});
    check_shape(15, false, 0, true, 10, 3, (int64_t[]){3, 4, 5});
    check_shape(15, true, 2, true, 1, 0, NULL); /* start after end: empty */
    check_shape(15, true, 7, false, 0, 0, NULL);
}

Test(shape, of_a_scalar_is_empty)
{
    float one[1] = {1};
    qkv_tensor x = kh_f32(0, NULL, one), y;
    qkv_error err;
    kh_node *n = kh_node_create("Shape", 15, 1, 1);
    cr_assert_eq(kh_run(n, &x, &y, &err), QKV_OK, "%s", err.message);
    cr_assert_eq(y.rank, 1);
    cr_assert_eq(y.dims[0], 0);
    kh_free_outputs(&y, 1);
    kh_node_destroy(n);
}

Test(shape, output_length_follows_the_rank_even_with_unknown_dims)
{
    qkv_tensor x = kh_f32(3, (int64_t[]){-1, 4, -1}, NULL), y;
    qkv_error err;
    kh_node *shape = kh_node_create("Shape", 15, 1, 1), *size = kh_node_create("Size", 13, 1, 1);
    cr_assert_eq(kh_infer(shape, &x, &y, &err), QKV_OK, "%s", err.message);
    cr_assert_eq(y.rank, 1);
    cr_assert_eq(y.dims[0], 3);
    x.rank = -1; /* rank unknown: length unknown */
    cr_assert_eq(kh_infer(shape, &x, &y, &err), QKV_OK, "%s", err.message);
    cr_assert_eq(y.rank, 1);
    cr_assert_eq(y.dims[0], -1);
    cr_assert_eq(kh_infer(size, &x, &y, &err), QKV_OK, "%s", err.message);
    cr_assert_eq(y.rank, 0);
    kh_node_destroy(shape);
    kh_node_destroy(size);
}

Test(size, counts_elements_without_reading_data)
{
    qkv_tensor x = kh_f32(3, (int64_t[]){3, 4, 5}, NULL), y;
    qkv_error err;
    kh_node *n = kh_node_create("Size", 13, 1, 1);
    cr_assert_eq(kh_run(n, &x, &y, &err), QKV_OK, "%s", err.message);
    cr_assert_eq(y.dtype, QKV_DTYPE_INT64);
    cr_assert_eq(y.rank, 0);
    cr_assert_eq(*(int64_t *)y.data, 60);
    kh_free_outputs(&y, 1);
    x.dims[1] = 0;
    cr_assert_eq(kh_run(n, &x, &y, &err), QKV_OK, "%s", err.message);
    cr_assert_eq(*(int64_t *)y.data, 0);
    kh_free_outputs(&y, 1);
    kh_node_destroy(n);
}

Test(size, of_a_scalar_is_one)
{
    float one[1] = {1};
    qkv_tensor x = kh_f32(0, NULL, one), y;
    qkv_error err;
    kh_node *n = kh_node_create("Size", 1, 1, 1);
    cr_assert_eq(kh_run(n, &x, &y, &err), QKV_OK, "%s", err.message);
    cr_assert_eq(*(int64_t *)y.data, 1);
    kh_free_outputs(&y, 1);
    kh_node_destroy(n);
}
