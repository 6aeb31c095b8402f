/* Shape, Size (ops/shape.c). */
#include <criterion/criterion.h>
#include <string.h>

#include "error.h"
#include "kernel_harness.h"
#include "kernel_host.h"
#include "node_eval.h"
#include "registry.h"

/* Runs only init and infer of the kernel for (op, opset) on `ins` as given
 * (data NULL = value not known), as the session does before values are
 * known. No attributes. */
static qkv_status infer_only(const char *op, int64_t opset, const qkv_tensor *ins, size_t n_in,
                             qkv_tensor *outs, size_t n_out, qkv_error *err)
{
    qkv_error_clear(err);
    qkv_registry *reg = qkv_registry_create();
    qkv_status st = qkv_registry_add_builtins(reg, err);
    const qkv_kernel *k = st == QKV_OK ? qkv_registry_find(reg, "", op, opset, NULL) : NULL;
    cr_assert(k, "no kernel for %s-%lld", op, (long long)opset);
    int32_t in_ids[8], out_ids[8];
    for (size_t i = 0; i < n_in; i++)
        in_ids[i] = ins[i].dtype == QKV_DTYPE_UNDEFINED ? -1 : (int32_t)i;
    for (size_t i = 0; i < n_out; i++)
        out_ids[i] = (int32_t)(n_in + i);
    qkv_ir_node node = {.name = (char *)"probe", .op_type = (char *)op, .domain = (char *)"",
                        .opset = opset, .n_inputs = n_in, .inputs = in_ids,
                        .n_outputs = n_out, .outputs = out_ids};
    void *state = NULL;
    qkv_node_ctx nctx = {.node = &node, .version = k->since_version, .err = err};
    qkv_host_ctx hctx = {.node = &node, .version = k->since_version, .err = err};
    if (k->init)
        st = k->init(k, &nctx, &state);
    if (st == QKV_OK)
        st = qkv_kernel_infer(k, state, &hctx, ins, n_in, outs, n_out);
    if (k->destroy && state)
        k->destroy(state);
    qkv_registry_destroy(reg);
    return st;
}

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
    cr_assert_eq(infer_only("Shape", 15, &x, 1, &y, 1, &err), QKV_OK, "%s", err.message);
    cr_assert_eq(y.rank, 1);
    cr_assert_eq(y.dims[0], 3);
    x.rank = -1; /* rank unknown: length unknown */
    cr_assert_eq(infer_only("Shape", 15, &x, 1, &y, 1, &err), QKV_OK, "%s", err.message);
    cr_assert_eq(y.rank, 1);
    cr_assert_eq(y.dims[0], -1);
    cr_assert_eq(infer_only("Size", 13, &x, 1, &y, 1, &err), QKV_OK, "%s", err.message);
    cr_assert_eq(y.rank, 0);
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
