/* DepthToSpace (DCR, CRD) and SpaceToDepth against the spec's own
 * reshape -> transpose -> reshape definitions (a 6-D transpose written
 * here), on random shapes and block sizes, element types, threads, and
 * errors. Results are exact (elements are only moved). */
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "kernel_harness.h"

static uint32_t rng_state = 4242;
static uint32_t rnd(uint32_t n)
{
    rng_state ^= rng_state << 13;
    rng_state ^= rng_state >> 17;
    rng_state ^= rng_state << 5;
    return rng_state % n;
}

/* out = transpose(in viewed with 6-D shape d, perm): out's dim k is d[perm[k]]. */
static void transpose6(float *out, const float *in, const int64_t d[6], const int perm[6])
{
    int64_t od[6], is[6], idx[6];
    for (int k = 0; k < 6; k++)
        od[k] = d[perm[k]];
    is[5] = 1;
    for (int k = 4; k >= 0; k--)
        is[k] = is[k + 1] * d[k + 1];
    size_t total = 1;
    for (int k = 0; k < 6; k++)
        total *= (size_t)d[k];
    for (size_t e = 0; e < total; e++) {
        size_t rem = e;
        for (int k = 5; k >= 0; k--) {
            idx[k] = (int64_t)(rem % (size_t)od[k]);
            rem /= (size_t)od[k];
        }
        int64_t off = 0;
        for (int k = 0; k < 6; k++)
            off += idx[k] * is[perm[k]];
        out[e] = in[off];
    }
}

/* mode: "DCR", "CRD" or NULL for SpaceToDepth; x is (n, c, h, w). */
static void reference(float *out, const float *x, const int64_t *xd, int64_t b, const char *mode)
{
    int64_t n = xd[0], c = xd[1], h = xd[2], w = xd[3];
    if (!mode) {
        int64_t d[6] = {n, c, h / b, b, w / b, b};
        transpose6(out, x, d, (const int[]){0, 3, 5, 1, 2, 4});
    } else if (strcmp(mode, "DCR") == 0) {
        int64_t d[6] = {n, b, b, c / (b * b), h, w};
        transpose6(out, x, d, (const int[]){0, 3, 4, 1, 5, 2});
    } else {
        int64_t d[6] = {n, c / (b * b), b, b, h, w};
        transpose6(out, x, d, (const int[]){0, 1, 4, 2, 5, 3});
    }
}

/* mode NULL: SpaceToDepth; "" : DepthToSpace without a mode attribute. */
static qkv_status run(const char *mode, int64_t opset, int64_t b, qkv_tensor x, qkv_tensor *y,
                      qkv_error *err, size_t threads)
{
    kh_node *n = kh_node_create(mode ? "DepthToSpace" : "SpaceToDepth", opset, 1, 1);
    if (b)
        kh_attr_int(n, "blocksize", b);
    if (mode && *mode)
        kh_attr_string(n, "mode", mode);
    if (threads)
        kh_set_threads(n, threads);
    qkv_status st = kh_run(n, &x, y, err);
    kh_node_destroy(n);
    return st;
}

static void check_random(const char *mode, int64_t opset)
{
    static float xs[3 * 36 * 6 * 6], want[3 * 36 * 6 * 6];
    for (int trial = 0; trial < 60; trial++) {
        int64_t b = 1 + rnd(3), xd[4];
        xd[0] = 1 + rnd(3);
        if (mode) {
            xd[1] = b * b * (1 + rnd(4));
            xd[2] = 1 + rnd(6);
            xd[3] = 1 + rnd(6);
        } else {
            xd[1] = 1 + rnd(4);
            xd[2] = b * (1 + rnd(6 / b));
            xd[3] = b * (1 + rnd(6 / b));
        }
        size_t total = (size_t)(xd[0] * xd[1] * xd[2] * xd[3]);
        for (size_t i = 0; i < total; i++)
            xs[i] = (float)i;
        const char *ref_mode = mode && *mode ? mode : mode ? "DCR" : NULL;
        reference(want, xs, xd, b, ref_mode);
        qkv_tensor y;
        qkv_error err;
        cr_assert_eq(run(mode, opset, b, kh_f32(4, xd, xs), &y, &err, 0), QKV_OK, "%s",
                     err.message);
        int64_t wd[4] = {xd[0], mode ? xd[1] / (b * b) : xd[1] * b * b,
                         mode ? xd[2] * b : xd[2] / b, mode ? xd[3] * b : xd[3] / b};
        cr_assert_eq(y.rank, 4);
        for (int k = 0; k < 4; k++)
            cr_assert_eq(y.dims[k], wd[k], "trial %d dim %d: %lld, expected %lld", trial, k,
                         (long long)y.dims[k], (long long)wd[k]);
        for (size_t i = 0; i < total; i++)
            cr_assert_eq(((float *)y.data)[i], want[i], "%s trial %d b %lld element %zu",
                         ref_mode ? ref_mode : "S2D", trial, (long long)b, i);
        kh_free_outputs(&y, 1);
    }
}

Test(depth_space, dcr_matches_spec_definition) { check_random("DCR", 13); }
Test(depth_space, crd_matches_spec_definition) { check_random("CRD", 13); }
Test(depth_space, dcr_is_the_default_mode_and_the_only_one_before_opset_11)
{
    check_random("", 13);
    check_random("", 1);
}
Test(depth_space, space_to_depth_matches_spec_definition) { check_random(NULL, 13); }

Test(depth_space, round_trip_restores_input_for_bytes_and_doubles)
{
    uint8_t a[2 * 8 * 3 * 5];
    for (size_t i = 0; i < sizeof a; i++)
        a[i] = (uint8_t)(i * 7);
    qkv_tensor y, z;
    qkv_error err;
    int64_t d[4] = {2, 8, 3, 5};
    cr_assert_eq(run("DCR", 13, 2, kh_tensor(QKV_DTYPE_UINT8, 4, d, a), &y, &err, 0), QKV_OK, "%s",
                 err.message);
    cr_assert_eq(run(NULL, 13, 2, y, &z, &err, 0), QKV_OK, "%s", err.message);
    cr_assert(z.dims[1] == 8 && z.dims[2] == 3 && z.dims[3] == 5);
    cr_assert_eq(memcmp(z.data, a, sizeof a), 0);
    kh_free_outputs(&y, 1);
    kh_free_outputs(&z, 1);
    double b[1 * 4 * 2 * 2];
    for (size_t i = 0; i < 16; i++)
        b[i] = (double)i + 0.5;
    int64_t e[4] = {1, 1, 4, 4};
    cr_assert_eq(run(NULL, 13, 2, kh_tensor(QKV_DTYPE_DOUBLE, 4, e, b), &y, &err, 0), QKV_OK, "%s",
                 err.message);
    /* SpaceToDepth of a 4x4 ramp with b 2: channel (i*2 + j) holds x[2h+i, 2w+j] */
    cr_assert_eq(((double *)y.data)[0], 0.5);
    cr_assert_eq(((double *)y.data)[4 * 1 + 0], 1.5);  /* channel 1: (0, 1) */
    cr_assert_eq(((double *)y.data)[4 * 2 + 0], 4.5);  /* channel 2: (1, 0) */
    cr_assert_eq(((double *)y.data)[4 * 3 + 3], 15.5); /* channel 3, (1,1): x[3,3] */
    /* with one output channel CRD and DCR agree: back to the ramp */
    cr_assert_eq(run("CRD", 13, 2, y, &z, &err, 0), QKV_OK, "%s", err.message);
    cr_assert_eq(memcmp(z.data, b, sizeof b), 0);
    kh_free_outputs(&y, 1);
    kh_free_outputs(&z, 1);
}

Test(depth_space, large_tensor_on_threads)
{
    static float xs[4 * 64 * 32 * 32], want[4 * 64 * 32 * 32];
    int64_t xd[4] = {4, 64, 32, 32};
    kh_fill_random(xs, sizeof xs / sizeof xs[0], 5);
    reference(want, xs, xd, 4, "CRD");
    qkv_tensor y;
    qkv_error err;
    cr_assert_eq(run("CRD", 13, 4, kh_f32(4, xd, xs), &y, &err, 4), QKV_OK, "%s", err.message);
    cr_assert_eq(memcmp(y.data, want, sizeof want), 0);
    kh_free_outputs(&y, 1);
}

static void expect_error(const char *mode, int64_t b, int rank, const int64_t *dims,
                         qkv_status want, const char *msg)
{
    float xs[64] = {0};
    qkv_tensor y;
    qkv_error err;
    cr_assert_eq(run(mode, 13, b, kh_f32(rank, dims, xs), &y, &err, 0), want, "%s", err.message);
    cr_assert(strstr(err.message, msg), "message: %s", err.message);
}

Test(depth_space, refuses_bad_shapes_and_attributes)
{
    expect_error("DCR", 2, 4, (int64_t[]){1, 6, 2, 2}, QKV_ERR_SHAPE,
                 "(DepthToSpace-13): input 0 'input' has shape [1,6,2,2]: channels 6 are not "
                 "a multiple of blocksize^2 = 4");
    expect_error(NULL, 2, 4, (int64_t[]){1, 1, 3, 2}, QKV_ERR_SHAPE,
                 "(SpaceToDepth-13): input 0 'input' has shape [1,1,3,2]: dim 2 is not a "
                 "multiple of blocksize 2");
    expect_error("DCR", 2, 3, (int64_t[]){1, 4, 2}, QKV_ERR_SHAPE,
                 "input 0 'input' has rank 3, expected 4 (N, C, H, W)");
    expect_error("DCR", 0, 4, (int64_t[]){1, 4, 2, 2}, QKV_ERR_INVALID_MODEL,
                 "attribute blocksize is missing");
    expect_error(NULL, -3, 4, (int64_t[]){1, 4, 2, 2}, QKV_ERR_INVALID_MODEL,
                 "attribute blocksize=-3 is out of range");
    expect_error("DRC", 2, 4, (int64_t[]){1, 4, 2, 2}, QKV_ERR_INVALID_MODEL,
                 "attribute mode='DRC' is not DCR or CRD");
}

/* Shapes only (as at session creation): unknown dims stay unknown, and a
 * block size that would overflow a dim is refused instead of wrapping. */
Test(depth_space, infer_keeps_unknown_dims_and_refuses_overflow)
{
    qkv_tensor x = kh_tensor(QKV_DTYPE_FLOAT, 4, (int64_t[]){-1, 8, -1, 5}, NULL), y;
    qkv_error err;
    kh_node *n = kh_node_create("DepthToSpace", 13, 1, 1);
    kh_attr_int(n, "blocksize", 2);
    cr_assert_eq(kh_infer(n, &x, &y, &err), QKV_OK, "%s", err.message);
    cr_assert(y.rank == 4 && y.dims[0] == -1 && y.dims[1] == 2 && y.dims[2] == -1 &&
              y.dims[3] == 10);
    kh_node_destroy(n);
    const int64_t b = INT32_MAX; /* the largest block size: b^2 still fits */
    n = kh_node_create("DepthToSpace", 13, 1, 1);
    kh_attr_int(n, "blocksize", b);
    x = kh_tensor(QKV_DTYPE_FLOAT, 4, (int64_t[]){1, b * b, (int64_t)1 << 40, 1}, NULL);
    cr_assert_eq(kh_infer(n, &x, &y, &err), QKV_ERR_SHAPE);
    cr_assert(strstr(err.message, "dim 2 times blocksize 2147483647 overflows"), "%s", err.message);
    kh_node_destroy(n);
    n = kh_node_create("SpaceToDepth", 13, 1, 1);
    kh_attr_int(n, "blocksize", b);
    x = kh_tensor(QKV_DTYPE_FLOAT, 4, (int64_t[]){1, (int64_t)1 << 40, b, b}, NULL);
    cr_assert_eq(kh_infer(n, &x, &y, &err), QKV_ERR_SHAPE);
    cr_assert(strstr(err.message, "channels times blocksize^2 = 4611686014132420609 overflow"),
              "%s", err.message);
    kh_node_destroy(n);
}
