/* BitShift: every unsigned type, both directions, shifts past the width,
 * broadcasting and the errors. */
#include <criterion/criterion.h>
#include <string.h>

#include "kernel_harness.h"

static kh_node *shift_node(const char *dir)
{
    kh_node *n = kh_node_create("BitShift", 11, 2, 1);
    if (dir)
        kh_attr_string(n, "direction", dir);
    return n;
}

#define SHIFT_TEST(NAME, T, DT, BITS)                                                              \
    Test(bitshift, NAME)                                                                           \
    {                                                                                              \
        T x[6] = {1, 3, (T) ~(T)0, 0x80, 5, 7};                                                    \
        T y[6] = {0, 1, 1, 3, BITS - 1, BITS};                                                     \
        for (int left = 0; left < 2; left++) {                                                     \
            qkv_tensor in[2] = {kh_tensor(DT, 1, (int64_t[]){6}, x),                               \
                                kh_tensor(DT, 1, (int64_t[]){6}, y)},                              \
                       z;                                                                          \
            qkv_error err;                                                                         \
            kh_node *n = shift_node(left ? "LEFT" : "RIGHT");                                      \
            cr_assert_eq(kh_run(n, in, &z, &err), QKV_OK, "%s", err.message);                      \
            cr_assert_eq(z.dtype, DT);                                                             \
            for (int i = 0; i < 6; i++) {                                                          \
                /* the reference: shift in 64 bits (in range), 0 at the width or more */           \
                T want = y[i] >= BITS ? 0                                                          \
                         : left       ? (T)((unsigned long long)x[i] << y[i])                      \
                                      : (T)((unsigned long long)x[i] >> y[i]);                           \
                cr_assert_eq(((T *)z.data)[i], want, "%s [%d]", left ? "LEFT" : "RIGHT", i);       \
            }                                                                                      \
            kh_free_outputs(&z, 1);                                                                \
            kh_node_destroy(n);                                                                    \
        }                                                                                          \
    }

SHIFT_TEST(uint8_both_directions, uint8_t, QKV_DTYPE_UINT8, 8)
SHIFT_TEST(uint16_both_directions, uint16_t, QKV_DTYPE_UINT16, 16)
SHIFT_TEST(uint32_both_directions, uint32_t, QKV_DTYPE_UINT32, 32)
SHIFT_TEST(uint64_both_directions, uint64_t, QKV_DTYPE_UINT64, 64)

Test(bitshift, shift_beyond_width_gives_zero)
{
    uint8_t x[2] = {0xff, 1}, y[2] = {8, 200};
    qkv_tensor in[2] = {kh_tensor(QKV_DTYPE_UINT8, 1, (int64_t[]){2}, x),
                        kh_tensor(QKV_DTYPE_UINT8, 1, (int64_t[]){2}, y)},
               z;
    qkv_error err;
    kh_node *n = shift_node("LEFT");
    cr_assert_eq(kh_run(n, in, &z, &err), QKV_OK, "%s", err.message);
    cr_assert_eq(((uint8_t *)z.data)[0], 0);
    cr_assert_eq(((uint8_t *)z.data)[1], 0);
    kh_free_outputs(&z, 1);
    kh_node_destroy(n);
}

Test(bitshift, broadcasts_a_scalar_shift)
{
    uint32_t x[2][3] = {{1, 2, 3}, {4, 5, 6}}, y = 2;
    qkv_tensor in[2] = {kh_tensor(QKV_DTYPE_UINT32, 2, (int64_t[]){2, 3}, x),
                        kh_tensor(QKV_DTYPE_UINT32, 0, NULL, &y)},
               z;
    qkv_error err;
    kh_node *n = shift_node("LEFT");
    cr_assert_eq(kh_run(n, in, &z, &err), QKV_OK, "%s", err.message);
    cr_assert_eq(z.rank, 2);
    for (int i = 0; i < 6; i++)
        cr_assert_eq(((uint32_t *)z.data)[i], (uint32_t)(i + 1) * 4u);
    kh_free_outputs(&z, 1);
    kh_node_destroy(n);
}

Test(bitshift, refuses_a_bad_direction)
{
    uint8_t x = 1;
    qkv_tensor in[2] = {kh_tensor(QKV_DTYPE_UINT8, 0, NULL, &x),
                        kh_tensor(QKV_DTYPE_UINT8, 0, NULL, &x)},
               z;
    qkv_error err;
    kh_node *n = shift_node("left");
    cr_assert_eq(kh_run(n, in, &z, &err), QKV_ERR_INVALID_MODEL);
    cr_assert(strstr(err.message, "test_node"), "%s", err.message);
    cr_assert(strstr(err.message, "'direction' is 'left'"), "%s", err.message);
    kh_node_destroy(n);
    n = shift_node(NULL);
    cr_assert_eq(kh_run(n, in, &z, &err), QKV_ERR_INVALID_MODEL);
    cr_assert(strstr(err.message, "'direction' is ''"), "%s", err.message);
    kh_node_destroy(n);
}

Test(bitshift, refuses_mixed_types)
{
    uint8_t x = 1;
    uint16_t y = 1;
    qkv_tensor in[2] = {kh_tensor(QKV_DTYPE_UINT8, 0, NULL, &x),
                        kh_tensor(QKV_DTYPE_UINT16, 0, NULL, &y)},
               z;
    qkv_error err;
    kh_node *n = shift_node("RIGHT");
    cr_assert_eq(kh_run(n, in, &z, &err), QKV_ERR_TYPE);
    cr_assert(strstr(err.message, "test_node"), "%s", err.message);
    cr_assert(strstr(err.message, "uint16"), "%s", err.message);
    kh_node_destroy(n);
}

Test(bitshift, refuses_signed_types)
{
    int32_t x = 1;
    qkv_tensor in[2] = {kh_tensor(QKV_DTYPE_INT32, 0, NULL, &x),
                        kh_tensor(QKV_DTYPE_INT32, 0, NULL, &x)},
               z;
    qkv_error err;
    kh_node *n = shift_node("RIGHT");
    cr_assert_eq(kh_run(n, in, &z, &err), QKV_ERR_TYPE, "%s", err.message);
    kh_node_destroy(n);
}
