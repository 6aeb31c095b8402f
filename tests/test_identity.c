/* Identity: the model kernel test (see kernel_harness.h). */
#include <criterion/criterion.h>

#include "kernel_harness.h"

Test(identity, copies_input_to_output)
{
    float xs[6] = {1, 2, 3, 4, 5, 6};
    qkv_tensor x = kh_f32(2, (int64_t[]){2, 3}, xs), y;
    qkv_error err;
    kh_node *n = kh_node_create("Identity", 13, 1, 1);
    cr_assert_eq(kh_run(n, &x, &y, &err), QKV_OK, "%s", err.message);
    cr_assert_eq(y.rank, 2);
    cr_assert_eq(y.dims[1], 3);
    for (int i = 0; i < 6; i++)
        cr_assert_float_eq(((float *)y.data)[i], xs[i], 0);
    kh_free_outputs(&y, 1);
    kh_node_destroy(n);
}

Test(identity, refuses_two_inputs)
{
    float xs[1] = {1};
    qkv_tensor x[2] = {kh_f32(0, NULL, xs), kh_f32(0, NULL, xs)}, y;
    qkv_error err;
    kh_node *n = kh_node_create("Identity", 13, 2, 1);
    cr_assert_eq(kh_run(n, x, &y, &err), QKV_ERR_INVALID_MODEL);
    cr_assert(strstr(err.message, "node 'test_node' (Identity-1): has 2 inputs"), "%s",
              err.message);
    kh_node_destroy(n);
}
