/*
 * RoiAlign against torchvision.ops.roi_align (aligned=True is ONNX's
 * half_pixel, aligned=False output_half_pixel) on X(i) = ((7 i) mod 13) / 2 -
 * i / 16 as (2, 2, 5, 6), three regions (one reaching outside X) at
 * spatial_scale 0.8 into 3 x 2 bins; max mode and errors by hand.
 */
#include <criterion/criterion.h>
#include <math.h>
#include <string.h>

#include "kernel_harness.h"

typedef struct roi_case {
    int half_pixel;
    int64_t sampling_ratio;
    float want[36];
} roi_case;

/* Printed by torchvision 0.14 (Debian's python3-torchvision), float32. */
static const roi_case cases[] = {
    {0, 0, {-2.2787502f, -1.9687492f, -1.4687502f,   -1.1587493f, -2.1017499f, -1.83075f,
            -3.4189501f, -3.2389498f, -3.8023498f,   -4.2073507f, -3.63975f,   -3.6937509f,
            3.203625f,   1.8348751f,  0.86009145f,   2.1346748f,  1.0675915f,  1.8005079f,
            2.3286252f,  0.95987511f, -0.014908552f, 1.2596748f,  0.19259159f, 0.92550796f,
            -3.0113404f, -1.9891499f, -3.0594444f,   -1.7487502f, -2.4744444f, -1.1637503f,
            -4.2072001f, -3.3737504f, -3.9344444f,   -4.4333501f, -3.3494444f, -5.8087502f}},
    {0, 2, {-2.2378001f, -1.9284494f, -1.5409001f,   -1.2328494f, -2.1017499f, -1.8307502f,
            -3.4355252f, -3.2636495f, -3.7750497f,   -4.1332507f, -3.6397498f, -3.6937506f,
            3.2036252f,  1.834875f,   0.86009151f,   2.134675f,   1.0675915f,  1.8005079f,
            2.328625f,   0.95987517f, -0.014908485f, 1.2596749f,  0.19259158f, 0.92550808f,
            -3.1680167f, -1.6836497f, -3.3037498f,   -1.2612493f, -2.7299998f, -0.6874994f,
            -4.3766832f, -2.8862495f, -4.1787496f,   -4.4138508f, -3.6049998f, -6.2600508f}},
    {1, 0, {-1.5427001f, -0.99479997f, -2.1250002f, -1.0024998f, -1.5555f,     -0.60199964f,
            -3.8099999f, -2.6875f,     -3.0123501f, -3.4335999f, -2.4597497f,  -5.1625004f,
            2.6749997f,  3.6375003f,   1.6831999f,  1.6628999f,  1.0600002f,   0.20249999f,
            1.7999998f,  2.7625003f,   0.80819994f, 0.78789985f, 0.074066766f, -0.68636668f,
            -1.4985628f, -1.0781776f,  -3.5989335f, -2.8704004f, -2.9344444f,  -2.196667f,
            -2.8099775f, -4.5716672f,  -4.4866447f, -3.8216667f, -3.8094444f,  -4.8090448f}},
    {1, 2, {-1.5427002f, -0.99480003f, -2.1250002f, -1.0024998f, -1.6517f,     -0.76579988f,
            -3.8099999f, -2.6875f,     -3.0123501f, -3.4335999f, -2.5533497f,  -4.9987001f,
            2.6750002f,  3.5400002f,   1.6831999f,  1.6707f,     1.0600002f,   0.29480004f,
            1.8f,        2.665f,       0.8082f,     0.79569978f, 0.074066654f, -0.59926665f,
            -1.6620626f, -0.90426683f, -2.9368124f, -2.9696336f, -2.5053122f,  -2.6624999f,
            -2.6486459f, -5.0374999f,  -3.8269794f, -4.4162002f, -3.3803124f,  -4.6724f}},
};

static float rois[12] = {0.5f, 1.0f, 4.2f, 3.7f, 1.3f, 0.2f, 2.0f, 4.9f, -0.8f, 3.1f, 6.5f, 5.6f};
static int64_t batch[3] = {1, 0, 1};

static qkv_status run_roi(int64_t opset, const char *coord, const char *mode, int64_t sr,
                          qkv_tensor *in, qkv_tensor *y, qkv_error *err)
{
    kh_node *n = kh_node_create("RoiAlign", opset, 3, 1);
    if (coord)
        kh_attr_string(n, "coordinate_transformation_mode", coord);
    if (mode)
        kh_attr_string(n, "mode", mode);
    kh_attr_int(n, "output_height", 3);
    kh_attr_int(n, "output_width", 2);
    kh_attr_int(n, "sampling_ratio", sr);
    kh_attr_float(n, "spatial_scale", 0.8f);
    qkv_status st = kh_run(n, in, y, err);
    kh_node_destroy(n);
    return st;
}

Test(roialign, avg_matches_torchvision_both_transforms)
{
    float x[120];
    for (int i = 0; i < 120; i++)
        x[i] = (float)((i * 7) % 13) * 0.5f - (float)i / 16;
    qkv_tensor in[3] = {kh_f32(4, (int64_t[]){2, 2, 5, 6}, x), kh_f32(2, (int64_t[]){3, 4}, rois),
                        kh_i64(1, (int64_t[]){3}, batch)},
               y;
    qkv_error err;
    for (size_t c = 0; c < sizeof cases / sizeof cases[0]; c++) {
        const roi_case *t = &cases[c];
        /* opset 10 has only output_half_pixel; 16 defaults to half_pixel */
        int64_t opset = t->half_pixel ? 16 : 10;
        cr_assert_eq(run_roi(opset, NULL, NULL, t->sampling_ratio, in, &y, &err), QKV_OK, "%s",
                     err.message);
        cr_assert(y.dims[0] == 3 && y.dims[1] == 2 && y.dims[2] == 3 && y.dims[3] == 2);
        for (int i = 0; i < 36; i++) /* torchvision sums in float32 */
            cr_assert(fabsf(((float *)y.data)[i] - t->want[i]) <= 3e-6f * (1 + fabsf(t->want[i])),
                      "half_pixel %d ratio %lld [%d]: %.9g vs %.9g", t->half_pixel,
                      (long long)t->sampling_ratio, i, (double)((float *)y.data)[i],
                      (double)t->want[i]);
        kh_free_outputs(&y, 1);
    }
}

Test(roialign, max_takes_the_largest_weighted_corner)
{
    /* one sample at (0.5, 0.5): corners 1, 2, 3, 4 weighted 1/4 each */
    float x[4] = {1, 2, 3, 4}, roi[4] = {0, 0, 1, 1};
    int64_t b[1] = {0};
    qkv_tensor in[3] = {kh_f32(4, (int64_t[]){1, 1, 2, 2}, x), kh_f32(2, (int64_t[]){1, 4}, roi),
                        kh_i64(1, (int64_t[]){1}, b)},
               y;
    qkv_error err;
    static const char *const modes[2] = {"max", "avg"};
    static const float want[2] = {1.0f, 2.5f};
    for (int m = 0; m < 2; m++) {
        kh_node *n = kh_node_create("RoiAlign", 16, 3, 1);
        kh_attr_string(n, "mode", modes[m]);
        kh_attr_string(n, "coordinate_transformation_mode", "output_half_pixel");
        kh_attr_int(n, "sampling_ratio", 1);
        cr_assert_eq(kh_run(n, in, &y, &err), QKV_OK, "%s", err.message);
        cr_assert_float_eq(((float *)y.data)[0], want[m], 1e-6f, "%s", modes[m]);
        kh_free_outputs(&y, 1);
        kh_node_destroy(n);
    }
}

Test(roialign, errors)
{
    float x[120] = {0};
    int64_t bad[3] = {0, 2, 0};
    qkv_tensor in[3] = {kh_f32(4, (int64_t[]){2, 2, 5, 6}, x), kh_f32(2, (int64_t[]){3, 4}, rois),
                        kh_i64(1, (int64_t[]){3}, bad)},
               y;
    qkv_error err;
    cr_assert_eq(run_roi(16, NULL, NULL, 0, in, &y, &err), QKV_ERR_INVALID_ARGUMENT);
    cr_assert(strstr(err.message, "'batch_indices'[1] is 2, outside [0, 2)"), "%s", err.message);
    in[2] = kh_i64(1, (int64_t[]){2}, batch);
    cr_assert_eq(run_roi(16, NULL, NULL, 0, in, &y, &err), QKV_ERR_SHAPE);
    cr_assert(strstr(err.message, "'rois' has 3 rows, 'batch_indices' 2 values"), "%s",
              err.message);
    in[2] = kh_i64(1, (int64_t[]){3}, batch);
    cr_assert_eq(run_roi(16, NULL, "mean", 0, in, &y, &err), QKV_ERR_INVALID_MODEL);
    cr_assert(strstr(err.message, "'mode' is 'mean'"), "%s", err.message);
    cr_assert_eq(run_roi(16, "align_corners", NULL, 0, in, &y, &err), QKV_ERR_INVALID_MODEL);
    cr_assert(strstr(err.message, "'align_corners'"), "%s", err.message);
    float huge[12] = {0, 0, 1e30f, 1e30f, 0, 0, 1, 1, 0, 0, 1, 1};
    in[1] = kh_f32(2, (int64_t[]){3, 4}, huge);
    cr_assert_eq(run_roi(16, NULL, NULL, 0, in, &y, &err), QKV_ERR_UNSUPPORTED);
    cr_assert(strstr(err.message, "region 0 needs more than"), "%s", err.message);
}
