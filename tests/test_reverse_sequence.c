/* ReverseSequence: both axis orders, inner dims, errors. */
#include <criterion/criterion.h>
#include <string.h>

#include "kernel_harness.h"

/* Reference: out[b][t] = in[b][len-1-t] for t < len, else in[b][t]. */
static void reference(const float *x, const int64_t *lens, int batch_axis, int64_t d0, int64_t d1,
                      int64_t inner, float *out)
{
    for (int64_t i = 0; i < d0; i++)
        for (int64_t j = 0; j < d1; j++) {
            int64_t b = batch_axis == 0 ? i : j, t = batch_axis == 0 ? j : i;
            int64_t src_t = t < lens[b] ? lens[b] - 1 - t : t;
            int64_t si = batch_axis == 0 ? i : src_t, sj = batch_axis == 0 ? src_t : j;
            for (int64_t k = 0; k < inner; k++)
                out[(i * d1 + j) * inner + k] = x[(si * d1 + sj) * inner + k];
        }
}

static void check(int batch_axis, int64_t d0, int64_t d1, int64_t inner, const int64_t *lens)
{
    float x[256], want[256];
    for (int i = 0; i < 256; i++)
        x[i] = (float)i;
    int64_t batch = batch_axis == 0 ? d0 : d1;
    int64_t lv[16];
    memcpy(lv, lens, (size_t)batch * sizeof *lv);
    qkv_tensor in[2] = {kh_f32(3, (int64_t[]){d0, d1, inner}, x),
                        kh_i64(1, (int64_t[]){batch}, lv)},
               y;
    qkv_error err;
    kh_node *n = kh_node_create("ReverseSequence", 10, 2, 1);
    kh_attr_int(n, "batch_axis", batch_axis);
    kh_attr_int(n, "time_axis", 1 - batch_axis);
    cr_assert_eq(kh_run(n, in, &y, &err), QKV_OK, "%s", err.message);
    reference(x, lens, batch_axis, d0, d1, inner, want);
    for (int64_t i = 0; i < d0 * d1 * inner; i++)
        cr_assert_float_eq(((float *)y.data)[i], want[i], 0, "[%lld]", (long long)i);
    kh_free_outputs(&y, 1);
    kh_node_destroy(n);
}

Test(reverse_sequence, batch_axis_0) { check(0, 4, 5, 2, (int64_t[]){1, 2, 5, 0}); }

Test(reverse_sequence, batch_axis_1_default_layout) { check(1, 5, 3, 3, (int64_t[]){5, 3, 1}); }

Test(reverse_sequence, refuses_a_length_beyond_the_time_axis)
{
    float x[6] = {0};
    int64_t lens[2] = {1, 4};
    qkv_tensor in[2] = {kh_f32(2, (int64_t[]){3, 2}, x), kh_i64(1, (int64_t[]){2}, lens)}, y;
    qkv_error err;
    kh_node *n = kh_node_create("ReverseSequence", 10, 2, 1);
    cr_assert_eq(kh_run(n, in, &y, &err), QKV_ERR_INVALID_ARGUMENT);
    cr_assert(strstr(err.message, "test_node"), "%s", err.message);
    cr_assert(strstr(err.message, "entry 1 is 4, outside [0, 3]"), "%s", err.message);
    kh_node_destroy(n);
}

Test(reverse_sequence, refuses_bad_axes_and_shapes)
{
    float x[6] = {0};
    int64_t lens[3] = {1, 1, 1};
    qkv_tensor in[2] = {kh_f32(2, (int64_t[]){3, 2}, x), kh_i64(1, (int64_t[]){3}, lens)}, y;
    qkv_error err;
    kh_node *n = kh_node_create("ReverseSequence", 10, 2, 1);
    kh_attr_int(n, "batch_axis", 1);
    kh_attr_int(n, "time_axis", 1);
    cr_assert_eq(kh_run(n, in, &y, &err), QKV_ERR_INVALID_MODEL);
    cr_assert(strstr(err.message, "'batch_axis' 1 and 'time_axis' 1"), "%s", err.message);
    kh_node_destroy(n);
    n = kh_node_create("ReverseSequence", 10, 2, 1); /* batch axis 1 has 2 entries, lens 3 */
    cr_assert_eq(kh_run(n, in, &y, &err), QKV_ERR_SHAPE);
    cr_assert(strstr(err.message, "has 3 entries"), "%s", err.message);
    kh_node_destroy(n);
}
