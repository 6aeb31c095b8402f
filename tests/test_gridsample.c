/*
 * GridSample: every mode, padding mode and align_corners on a 2-D input,
 * and a 3-D (volumetric) grid, against values PyTorch's
 * torch.nn.functional.grid_sample gives for the same inputs (the source of
 * ONNX's GridSample test data). X(i) = (5 i) mod 7 - i / 4 as (1, 2, 3, 4);
 * the grid's points fall inside and outside [-1, 1].
 */
#include <criterion/criterion.h>
#include <math.h>
#include <string.h>

#include "kernel_harness.h"

static float grid2[12] = {-1.3f, -1.1f,  -0.7f, 0.2f, 0.1f,  0.9f,
                          0.55f, -0.35f, 1.2f,  0.4f, 0.95f, 1.45f};

typedef struct gs_case {
    const char *mode, *pad;
    int align;
    float want[12];
} gs_case;

/* Printed by torch 1.13 (Debian's python3-torch), float32. */
static const gs_case cases[] = {
    {"bilinear",
     "zeros",
     0,
     {0.0f, 4.1750002f, -0.53625017f, 0.20000032f, 0.12499982f, 0.0f, 0.0f, -1.8250002f, -1.25125f,
      -0.27000022f, -0.19499978f, 0.0f}},
    {"bilinear",
     "zeros",
     1,
     {0.0f, 3.5875001f, -0.51250017f, 0.46875051f, 0.17499988f, 1.591563f, 0.49500006f, -2.4125001f,
      -1.9624995f, -0.18500014f, -1.0849997f, -1.4196876f}},
    {"bilinear",
     "border",
     0,
     {0.0f, 4.1750002f, -0.82500011f, 0.20000032f, 1.2499995f, 3.25f, 1.0f, -1.8250002f,
      -1.9249998f, -0.27000022f, -1.9499998f, -2.75f}},
    {"bilinear",
     "border",
     1,
     {0.0f, 3.5875001f, -0.51250017f, 0.46875051f, 0.24999985f, 2.8937509f, 1.0f, -2.4125001f,
      -1.9624995f, -0.18500014f, -1.55f, -2.5812504f}},
    {"bilinear",
     "reflection",
     0,
     {0.47499955f, 4.1750002f, -0.82500011f, 0.20000032f, 1.2499995f, 2.374999f, 0.77500021f,
      -1.8250002f, -1.9249998f, -0.27000022f, -1.9499998f, -2.3999996f}},
    {"bilinear",
     "reflection",
     1,
     {2.3224998f, 3.5875001f, -0.51250017f, 0.46875051f, 0.084999844f, 0.88000011f, -0.21249986f,
      -2.4125001f, -1.9624995f, -0.18500014f, -0.87499952f, -1.6812503f}},
    {"nearest",
     "zeros",
     0,
     {0.0f, 5.0f, -1.5f, 0.25f, 0.0f, 0.0f, 0.0f, -1.0f, -0.5f, 1.25f, 0.0f, 0.0f}},
    {"nearest",
     "zeros",
     1,
     {0.0f, 5.0f, -1.5f, 0.5f, -1.75f, 3.25f, 1.0f, -1.0f, -0.5f, 1.5f, -0.75f, -2.75f}},
    {"nearest",
     "border",
     0,
     {0.0f, 5.0f, -1.5f, 0.25f, 3.25f, 3.25f, 1.0f, -1.0f, -0.5f, 1.25f, -2.75f, -2.75f}},
    {"nearest",
     "border",
     1,
     {0.0f, 5.0f, -1.5f, 0.5f, -1.75f, 3.25f, 1.0f, -1.0f, -0.5f, 1.5f, -0.75f, -2.75f}},
    {"nearest",
     "reflection",
     0,
     {0.0f, 5.0f, -1.5f, 0.25f, 3.25f, 3.25f, 1.0f, -1.0f, -0.5f, 1.25f, -2.75f, -2.75f}},
    {"nearest",
     "reflection",
     1,
     {0.0f, 5.0f, -1.5f, 0.5f, -1.75f, 3.25f, 1.0f, -1.0f, -0.5f, 1.5f, -0.75f, -2.75f}},
    {"bicubic",
     "zeros",
     0,
     {0.018139532f, 5.2063556f, -1.3094983f, -0.21156321f, 0.14158612f, -0.22350894f, -0.027481677f,
      -2.2689097f, -1.3448124f, -0.010238806f, -0.21825947f, 0.17205361f}},
    {"bicubic",
     "zeros",
     1,
     {-0.657538f, 4.6025572f, -1.2865058f, 0.21879591f, 0.23904973f, 2.2225029f, 0.78903186f,
      -3.2659571f, -1.8984741f, 0.22462171f, -1.7480115f, -1.7314264f}},
    {"bicubic",
     "border",
     0,
     {-0.29859424f, 4.7606525f, -1.8096532f, -0.18567534f, 1.1797285f, 3.7629986f, 1.1194379f,
      -2.0002697f, -1.9053122f, -0.0016233581f, -2.1365893f, -2.9929984f}},
    {"bicubic",
     "border",
     1,
     {-0.83211184f, 4.0191264f, -1.2007231f, 0.21233669f, 0.025375256f, 3.4224002f, 1.3512118f,
      -2.9954865f, -1.7790225f, 0.35045984f, -2.0734112f, -2.8000708f}},
    {"bicubic",
     "reflection",
     0,
     {-0.35049868f, 4.7606525f, -1.9751788f, -0.18567534f, 1.3032935f, 3.1184661f, 1.1800003f,
      -2.0002697f, -2.02475f, -0.0016233581f, -2.303894f, -2.913697f}},
    {"bicubic",
     "reflection",
     1,
     {1.8800288f, 4.2694445f, -1.3693858f, 0.16994773f, 0.064000234f, 1.3369633f, 0.37765139f,
      -2.8137751f, -1.9005226f, 0.1599375f, -1.118579f, -2.1784248f}},
};

static qkv_status run_gs(int64_t opset, const char *mode, const char *pad, int align,
                         qkv_tensor *in, qkv_tensor *y, qkv_error *err)
{
    kh_node *n = kh_node_create("GridSample", opset, 2, 1);
    if (mode)
        kh_attr_string(n, "mode", mode);
    if (pad)
        kh_attr_string(n, "padding_mode", pad);
    kh_attr_int(n, "align_corners", align);
    qkv_status st = kh_run(n, in, y, err);
    kh_node_destroy(n);
    return st;
}

Test(gridsample, every_mode_padding_and_alignment_matches_pytorch)
{
    float x[24];
    for (int i = 0; i < 24; i++)
        x[i] = (float)((i * 5) % 7) - (float)i / 4;
    qkv_tensor in[2] = {kh_f32(4, (int64_t[]){1, 2, 3, 4}, x),
                        kh_f32(4, (int64_t[]){1, 2, 3, 2}, grid2)},
               y;
    qkv_error err;
    for (size_t c = 0; c < sizeof cases / sizeof cases[0]; c++) {
        const gs_case *t = &cases[c];
        cr_assert_eq(run_gs(16, t->mode, t->pad, t->align, in, &y, &err), QKV_OK, "%s",
                     err.message);
        cr_assert_eq(y.rank, 4);
        cr_assert(y.dims[0] == 1 && y.dims[1] == 2 && y.dims[2] == 2 && y.dims[3] == 3);
        for (int i = 0; i < 12; i++) /* torch computes in float32: a few ulp */
            cr_assert(fabsf(((float *)y.data)[i] - t->want[i]) <= 2e-6f * (1 + fabsf(t->want[i])),
                      "%s %s align %d [%d]: %.9g vs %.9g", t->mode, t->pad, t->align, i,
                      (double)((float *)y.data)[i], (double)t->want[i]);
        kh_free_outputs(&y, 1);
    }
}

Test(gridsample, opset_20_names_and_a_volumetric_grid)
{
    float x[24],
        g[12] = {-0.9f, 0.3f, -0.2f, 0.6f, -1.2f, 0.75f, 0.05f, 0.5f, -0.4f, 1.1f, -0.8f, 0.2f};
    for (int i = 0; i < 24; i++)
        x[i] = (float)((i * 3) % 5) + (float)i / 8;
    qkv_tensor in[2] = {kh_f32(5, (int64_t[]){1, 1, 3, 2, 4}, x),
                        kh_f32(5, (int64_t[]){1, 1, 2, 2, 3}, g)},
               y;
    qkv_error err;
    static const char *const modes[2] = {"linear", "nearest"}, *const pads[2] = {"zeros",
                                                                                 "reflection"};
    static const float want[2][2][4] = {
        {{1.8900001f, 1.2960935f, 3.3f, 0.91875052f}, {2.7000003f, 4.9375f, 3.3f, 4.375f}},
        {{2.5f, 0.0f, 3.75f, 0.0f}, {2.5f, 4.375f, 3.75f, 4.375f}}};
    for (int m = 0; m < 2; m++)
        for (int p = 0; p < 2; p++) {
            cr_assert_eq(run_gs(20, modes[m], pads[p], 0, in, &y, &err), QKV_OK, "%s", err.message);
            cr_assert(y.rank == 5 && y.dims[2] == 1 && y.dims[3] == 2 && y.dims[4] == 2);
            for (int i = 0; i < 4; i++)
                cr_assert(fabsf(((float *)y.data)[i] - want[m][p][i]) <=
                              2e-6f * (1 + fabsf(want[m][p][i])),
                          "%s %s [%d]: %.9g", modes[m], pads[p], i, (double)((float *)y.data)[i]);
            kh_free_outputs(&y, 1);
        }
}

Test(gridsample, errors)
{
    float x[24] = {0}, g[12] = {0};
    qkv_tensor y;
    qkv_error err;
    qkv_tensor bad_last[2] = {kh_f32(4, (int64_t[]){1, 2, 3, 4}, x),
                              kh_f32(4, (int64_t[]){1, 2, 2, 3}, g)};
    cr_assert_eq(run_gs(16, NULL, NULL, 0, bad_last, &y, &err), QKV_ERR_SHAPE);
    cr_assert(strstr(err.message, "3 coordinates per point, expected 2"), "%s", err.message);
    qkv_tensor bad_batch[2] = {kh_f32(4, (int64_t[]){1, 2, 3, 4}, x),
                               kh_f32(4, (int64_t[]){2, 1, 3, 2}, g)};
    cr_assert_eq(run_gs(16, NULL, NULL, 0, bad_batch, &y, &err), QKV_ERR_SHAPE);
    cr_assert(strstr(err.message, "batch of 'X' (1) and 'grid' (2) differ"), "%s", err.message);
    qkv_tensor ok[2] = {kh_f32(4, (int64_t[]){1, 2, 3, 4}, x),
                        kh_f32(4, (int64_t[]){1, 2, 3, 2}, g)};
    cr_assert_eq(run_gs(16, "bilinear", "mirror", 0, ok, &y, &err), QKV_ERR_INVALID_MODEL);
    cr_assert(strstr(err.message, "'padding_mode' is 'mirror'"), "%s", err.message);
    cr_assert_eq(run_gs(16, "area", NULL, 0, ok, &y, &err), QKV_ERR_INVALID_MODEL);
    cr_assert(strstr(err.message, "'mode' is 'area'"), "%s", err.message);
}

Test(gridsample, big_grid_on_four_threads_equals_one_thread_and_double_agrees)
{
    enum { N = 2, C = 8, H = 30, W = 40, HO = 50, WO = 60 }; /* output > 64 KiB */
    static float x[N * C * H * W], g[N * HO * WO * 2];
    static double xd[N * C * H * W], gd[N * HO * WO * 2];
    kh_fill_random(x, N * C * H * W, 3);
    kh_fill_random(g, N * HO * WO * 2, 4);
    for (size_t i = 0; i < N * HO * WO * 2; i++)
        g[i] *= 1.2f; /* some points outside */
    for (size_t i = 0; i < N * C * H * W; i++)
        xd[i] = x[i];
    for (size_t i = 0; i < N * HO * WO * 2; i++)
        gd[i] = g[i];
    static const char *const modes[3] = {"bilinear", "nearest", "bicubic"};
    for (int m = 0; m < 3; m++) {
        qkv_tensor in[2] = {kh_f32(4, (int64_t[]){N, C, H, W}, x),
                            kh_f32(4, (int64_t[]){N, HO, WO, 2}, g)},
                   y1, y4, yd;
        qkv_error err;
        size_t threads[2] = {1, 4};
        qkv_tensor *ys[2] = {&y1, &y4};
        for (int t = 0; t < 2; t++) {
            kh_node *n = kh_node_create("GridSample", 16, 2, 1);
            kh_attr_string(n, "mode", modes[m]);
            kh_attr_string(n, "padding_mode", "reflection");
            kh_set_threads(n, threads[t]);
            cr_assert_eq(kh_run(n, in, ys[t], &err), QKV_OK, "%s", err.message);
            kh_node_destroy(n);
        }
        cr_assert(memcmp(y1.data, y4.data, y1.data_bytes) == 0, "%s: threads differ", modes[m]);
        qkv_tensor ind[2] = {kh_tensor(QKV_DTYPE_DOUBLE, 4, (int64_t[]){N, C, H, W}, xd),
                             kh_tensor(QKV_DTYPE_DOUBLE, 4, (int64_t[]){N, HO, WO, 2}, gd)};
        kh_node *n = kh_node_create("GridSample", 16, 2, 1);
        kh_attr_string(n, "mode", modes[m]);
        kh_attr_string(n, "padding_mode", "reflection");
        cr_assert_eq(kh_run(n, ind, &yd, &err), QKV_OK, "%s", err.message);
        kh_node_destroy(n);
        /* the same points (the grid's floats widened): float rounding of the result only */
        for (size_t i = 0; i < (size_t)N * C * HO * WO; i++)
            cr_assert(fabs(((float *)y1.data)[i] - ((double *)yd.data)[i]) <= 1e-6, "%s [%zu]",
                      modes[m], i);
        kh_free_outputs(&y1, 1);
        kh_free_outputs(&y4, 1);
        kh_free_outputs(&yd, 1);
    }
}
