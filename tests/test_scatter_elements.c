/* ScatterElements and Scatter: axes, negative and duplicate indices, every
 * reduction, and the errors. */
#include <criterion/criterion.h>
#include <stdio.h>
#include <string.h>

#include "kernel_harness.h"

/* Naive reference over (3, 3) data, (2, 3) indices along `axis`. */
static void reference(const float *data, const int64_t *ind, const float *upd, int axis,
                      const char *red, float *out)
{
    memcpy(out, data, 9 * sizeof *out);
    for (int i = 0; i < 2; i++)
        for (int j = 0; j < 3; j++) {
            int64_t v = ind[i * 3 + j];
            if (v < 0)
                v += 3;
            float *d = axis == 0 ? &out[v * 3 + j] : &out[i * 3 + v];
            float u = upd[i * 3 + j];
            if (!strcmp(red, "add"))
                *d += u;
            else if (!strcmp(red, "mul"))
                *d *= u;
            else if (!strcmp(red, "max"))
                *d = u > *d ? u : *d;
            else if (!strcmp(red, "min"))
                *d = u < *d ? u : *d;
            else
                *d = u;
        }
}

static void check(const char *op, int64_t opset, int axis, const char *red, const int64_t *ind_in)
{
    float data[9] = {1, 2, 3, 4, 5, 6, 7, 8, 9}, upd[6] = {-1, 10, 0.5f, 3, -2, 7}, want[9];
    int64_t ind[6];
    memcpy(ind, ind_in, sizeof ind);
    qkv_tensor in[3] = {kh_f32(2, (int64_t[]){3, 3}, data), kh_i64(2, (int64_t[]){2, 3}, ind),
                        kh_f32(2, (int64_t[]){2, 3}, upd)},
               y;
    qkv_error err;
    kh_node *n = kh_node_create(op, opset, 3, 1);
    kh_attr_int(n, "axis", axis);
    if (strcmp(red, "none"))
        kh_attr_string(n, "reduction", red);
    cr_assert_eq(kh_run(n, in, &y, &err), QKV_OK, "%s", err.message);
    reference(data, ind, upd, axis, red, want);
    for (int i = 0; i < 9; i++)
        cr_assert_float_eq(((float *)y.data)[i], want[i], 0, "%s %s axis %d [%d]", op, red, axis,
                           i);
    kh_free_outputs(&y, 1);
    kh_node_destroy(n);
}

static const int64_t distinct[6] = {1, 0, 2, 0, 2, 1};
static const int64_t dups_neg[6] = {-1, 0, 0, -1, 0, 2}; /* duplicates, negatives */

Test(scatter_elements, replaces_along_both_axes)
{
    check("ScatterElements", 11, 0, "none", distinct);
    check("ScatterElements", 13, 1, "none", distinct);
    check("ScatterElements", 13, -1, "none", dups_neg);
}

Test(scatter_elements, every_reduction_combines_duplicates)
{
    check("ScatterElements", 16, 0, "add", dups_neg);
    check("ScatterElements", 16, 1, "mul", dups_neg);
    check("ScatterElements", 18, 0, "max", dups_neg);
    check("ScatterElements", 18, 1, "min", dups_neg);
}

Test(scatter_elements, deprecated_scatter_is_the_same_kernel)
{
    check("Scatter", 9, 0, "none", distinct);
    check("Scatter", 10, 1, "none", dups_neg);
}

Test(scatter_elements, integer_add_wraps)
{
    int8_t data[2] = {120, 0}, upd[2] = {10, 5};
    int64_t ind[2] = {0, 0};
    qkv_tensor in[3] = {kh_tensor(QKV_DTYPE_INT8, 1, (int64_t[]){2}, data),
                        kh_i64(1, (int64_t[]){2}, ind),
                        kh_tensor(QKV_DTYPE_INT8, 1, (int64_t[]){2}, upd)},
               y;
    qkv_error err;
    kh_node *n = kh_node_create("ScatterElements", 18, 3, 1);
    kh_attr_string(n, "reduction", "add");
    cr_assert_eq(kh_run(n, in, &y, &err), QKV_OK, "%s", err.message);
    cr_assert_eq(((int8_t *)y.data)[0], (int8_t)(120 + 15 - 256));
    cr_assert_eq(((int8_t *)y.data)[1], 0);
    kh_free_outputs(&y, 1);
    kh_node_destroy(n);
}

static qkv_status run_bad(int64_t opset, const char *red, int64_t axis, int64_t index,
                          int32_t ind_rank, qkv_error *err)
{
    float data[4] = {0}, upd[2] = {0};
    int64_t ind[2] = {index, 0};
    qkv_tensor in[3] = {kh_f32(2, (int64_t[]){2, 2}, data),
                        kh_i64(ind_rank, (int64_t[]){1, 2}, ind),
                        kh_f32(ind_rank, (int64_t[]){1, 2}, upd)},
               y;
    kh_node *n = kh_node_create("ScatterElements", opset, 3, 1);
    kh_attr_int(n, "axis", axis);
    if (red)
        kh_attr_string(n, "reduction", red);
    qkv_status st = kh_run(n, in, &y, err);
    if (st == QKV_OK)
        kh_free_outputs(&y, 1);
    kh_node_destroy(n);
    return st;
}

Test(scatter_elements, errors_name_the_node)
{
    qkv_error err;
    cr_assert_eq(run_bad(13, NULL, 0, 2, 2, &err), QKV_ERR_INVALID_ARGUMENT);
    cr_assert(strstr(err.message, "test_node"), "%s", err.message);
    cr_assert(strstr(err.message, "element 0 is 2, out of range [-2, 2)"), "%s", err.message);
    cr_assert_eq(run_bad(13, NULL, 0, -3, 2, &err), QKV_ERR_INVALID_ARGUMENT);
    cr_assert_eq(run_bad(13, NULL, 2, 0, 2, &err), QKV_ERR_INVALID_MODEL);
    cr_assert(strstr(err.message, "'axis' is 2, out of range"), "%s", err.message);
    cr_assert_eq(run_bad(13, NULL, 0, 0, 1, &err), QKV_ERR_SHAPE);
    cr_assert(strstr(err.message, "rank 1, input 0 'data' has rank 2"), "%s", err.message);
    cr_assert_eq(run_bad(13, "add", 0, 0, 2, &err), QKV_ERR_INVALID_MODEL);
    cr_assert(strstr(err.message, "'reduction' is 'add', not supported at opset 13"), "%s",
              err.message);
    cr_assert_eq(run_bad(18, "sum", 0, 0, 2, &err), QKV_ERR_INVALID_MODEL);
    cr_assert_eq(run_bad(18, "max", 0, 1, 2, &err), QKV_OK, "%s", err.message);
}

/* An input given as "" arrives with no type, shape or data: data and indices
 * are required, so the host refuses it before init instead of reading NULL. */
Test(scatter_elements, refuses_an_omitted_required_input)
{
    for (size_t omit = 0; omit < 2; omit++) {
        float data[4] = {0}, upd[2] = {1, 2};
        int64_t ind[2] = {1, 0};
        qkv_tensor in[3] = {kh_f32(2, (int64_t[]){2, 2}, data), kh_i64(2, (int64_t[]){1, 2}, ind),
                            kh_f32(2, (int64_t[]){1, 2}, upd)},
                   y;
        qkv_error err;
        kh_node *n = kh_node_create("ScatterElements", 18, 3, 1);
        kh_omit_input(n, omit);
        cr_assert_eq(kh_run(n, in, &y, &err), QKV_ERR_INVALID_MODEL, "input %zu: %s", omit,
                     err.message);
        char want[64];
        snprintf(want, sizeof want, "input %zu is omitted", omit);
        cr_assert(strstr(err.message, "test_node") && strstr(err.message, want), "%s", err.message);
        kh_node_destroy(n);
    }
}
