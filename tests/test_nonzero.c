/* NonZero: coordinates of non-zero elements; data-dependent shape inference. */
#include <criterion/criterion.h>
#include <string.h>

#include "kernel_harness.h"
#include "kernel_host.h"
#include "node_eval.h"
#include "registry.h"

/* Runs only init + infer of the default-domain op on `ins` (data NULL where
 * the value is unknown), as the session does before values are known. */
static qkv_status infer_only(const char *op, int64_t opset, const qkv_tensor *ins, size_t n_in,
                             qkv_tensor *outs, size_t n_out, qkv_error *err)
{
    qkv_registry *reg = qkv_registry_create();
    cr_assert_eq(qkv_registry_add_builtins(reg, err), QKV_OK);
    const qkv_kernel *k = qkv_registry_find(reg, "", op, opset, NULL);
    cr_assert_not_null(k);
    char name[] = "test_node", dom[] = "", op_type[32];
    strcpy(op_type, op);
    int32_t in_ids[8], out_ids[8];
    for (size_t i = 0; i < 8; i++)
        in_ids[i] = (int32_t)i, out_ids[i] = (int32_t)(8 + i);
    qkv_ir_node node = {.name = name, .op_type = op_type, .domain = dom, .opset = opset,
                        .n_inputs = n_in, .inputs = in_ids, .n_outputs = n_out,
                        .outputs = out_ids};
    qkv_node_ctx nctx = {.node = &node, .version = k->since_version, .err = err};
    qkv_host_ctx hctx = {.node = &node, .version = k->since_version, .err = err};
    void *state = NULL;
    qkv_status st = k->init ? k->init(k, &nctx, &state) : QKV_OK;
    if (st == QKV_OK)
        st = qkv_kernel_infer(k, state, &hctx, ins, n_in, outs, n_out);
    if (k->destroy && state)
        k->destroy(state);
    qkv_registry_destroy(reg);
    return st;
}

Test(nonzero, lists_coordinates_in_row_major_order)
{
    uint8_t c[4] = {1, 0, 1, 1};
    qkv_tensor x = kh_tensor(QKV_DTYPE_BOOL, 2, (int64_t[]){2, 2}, c), y;
    qkv_error err;
    kh_node *n = kh_node_create("NonZero", 13, 1, 1);
    cr_assert_eq(kh_run(n, &x, &y, &err), QKV_OK, "%s", err.message);
    cr_assert_eq(y.dtype, QKV_DTYPE_INT64);
    cr_assert_eq(y.rank, 2);
    cr_assert_eq(y.dims[0], 2);
    cr_assert_eq(y.dims[1], 3);
    int64_t want[6] = {0, 1, 1, 0, 0, 1};
    for (int i = 0; i < 6; i++)
        cr_assert_eq(((int64_t *)y.data)[i], want[i], "[%d]", i);
    kh_free_outputs(&y, 1);
    kh_node_destroy(n);
}

Test(nonzero, floats_count_nan_but_not_negative_zero)
{
    float v[5] = {0.0f, -0.0f, __builtin_nanf(""), 2.5f, 0.0f};
    qkv_tensor x = kh_f32(1, (int64_t[]){5}, v), y;
    qkv_error err;
    kh_node *n = kh_node_create("NonZero", 13, 1, 1);
    cr_assert_eq(kh_run(n, &x, &y, &err), QKV_OK, "%s", err.message);
    cr_assert_eq(y.dims[0], 1);
    cr_assert_eq(y.dims[1], 2);
    cr_assert_eq(((int64_t *)y.data)[0], 2);
    cr_assert_eq(((int64_t *)y.data)[1], 3);
    kh_free_outputs(&y, 1);
    kh_node_destroy(n);
}

Test(nonzero, all_zero_input_gives_empty_output)
{
    int32_t v[6] = {0};
    qkv_tensor x = kh_tensor(QKV_DTYPE_INT32, 3, (int64_t[]){1, 2, 3}, v), y;
    qkv_error err;
    kh_node *n = kh_node_create("NonZero", 9, 1, 1);
    kh_hide_input_values(n);
    cr_assert_eq(kh_run(n, &x, &y, &err), QKV_OK, "%s", err.message);
    cr_assert_eq(y.rank, 2);
    cr_assert_eq(y.dims[0], 3);
    cr_assert_eq(y.dims[1], 0);
    kh_free_outputs(&y, 1);
    kh_node_destroy(n);
}

Test(nonzero, int64_and_float16_inputs)
{
    int64_t v[4] = {0, -5, 0, 1ll << 40};
    uint16_t h[3] = {0x8000u /* -0 */, 0x3c00u /* 1 */, 0x0001u /* subnormal */};
    qkv_tensor x = kh_i64(1, (int64_t[]){4}, v), y;
    qkv_error err;
    kh_node *n = kh_node_create("NonZero", 13, 1, 1);
    cr_assert_eq(kh_run(n, &x, &y, &err), QKV_OK, "%s", err.message);
    cr_assert_eq(y.dims[1], 2);
    cr_assert_eq(((int64_t *)y.data)[1], 3);
    kh_free_outputs(&y, 1);
    x = kh_tensor(QKV_DTYPE_FLOAT16, 1, (int64_t[]){3}, h);
    cr_assert_eq(kh_run(n, &x, &y, &err), QKV_OK, "%s", err.message);
    cr_assert_eq(y.dims[1], 2);
    cr_assert_eq(((int64_t *)y.data)[0], 1);
    kh_free_outputs(&y, 1);
    kh_node_destroy(n);
}

Test(nonzero, scalar_input_has_zero_rows)
{
    float v = 3;
    qkv_tensor x = kh_f32(0, NULL, &v), y;
    qkv_error err;
    kh_node *n = kh_node_create("NonZero", 13, 1, 1);
    cr_assert_eq(kh_run(n, &x, &y, &err), QKV_OK, "%s", err.message);
    cr_assert_eq(y.dims[0], 0);
    cr_assert_eq(y.dims[1], 1);
    kh_free_outputs(&y, 1);
    kh_node_destroy(n);
}

Test(nonzero, infer_without_value_leaves_count_unknown)
{
    qkv_tensor x = kh_tensor(QKV_DTYPE_FLOAT, 2, (int64_t[]){2, 3}, NULL), y;
    qkv_error err;
    cr_assert_eq(infer_only("NonZero", 13, &x, 1, &y, 1, &err), QKV_OK, "%s", err.message);
    cr_assert_eq(y.dtype, QKV_DTYPE_INT64);
    cr_assert_eq(y.rank, 2);
    cr_assert_eq(y.dims[0], 2);
    cr_assert_eq(y.dims[1], -1);
    x.rank = -1; /* unknown rank: both dims unknown */
    cr_assert_eq(infer_only("NonZero", 13, &x, 1, &y, 1, &err), QKV_OK, "%s", err.message);
    cr_assert_eq(y.dims[0], -1);
    cr_assert_eq(y.dims[1], -1);
}

Test(nonzero, infer_with_value_counts)
{
    float v[6] = {0, 1, 0, 2, 0, 3};
    qkv_tensor x = kh_f32(2, (int64_t[]){2, 3}, v), y;
    qkv_error err;
    cr_assert_eq(infer_only("NonZero", 13, &x, 1, &y, 1, &err), QKV_OK, "%s", err.message);
    cr_assert_eq(y.dims[1], 3);
}

Test(nonzero, rejects_string_input)
{
    const char *s[1] = {"a"};
    qkv_tensor x = kh_tensor(QKV_DTYPE_STRING, 1, (int64_t[]){1}, s), y;
    qkv_error err;
    kh_node *n = kh_node_create("NonZero", 13, 1, 1);
    cr_assert_eq(kh_run(n, &x, &y, &err), QKV_ERR_TYPE);
    cr_assert(strstr(err.message, "input 0 has type string, not supported"), "%s", err.message);
    kh_node_destroy(n);
}
