/* NonMaxSuppression: the ONNX examples' boxes (expected rows from the ONNX
 * operator documentation), both box formats, limits, thresholds, several
 * batches and classes, and errors. */
#include <criterion/criterion.h>
#include <stdio.h>
#include <string.h>

#include "kernel_harness.h"

static float corners[24] = {0, 0,  1, 1,  0, 0.1f,  1, 1.1f,  0, -0.1f, 1, 0.9f,
                            0, 10, 1, 11, 0, 10.1f, 1, 11.1f, 0, 100,   1, 101};
static float scores6[6] = {0.9f, 0.75f, 0.6f, 0.95f, 0.5f, 0.3f};

typedef struct nms_args {
    float *boxes, *scores;
    int64_t batches, classes, n;
    int64_t max_out;  /* < 0: input omitted */
    float iou, score; /* score < 0: input omitted */
    int64_t center;
} nms_args;

static qkv_status run(const nms_args *a, qkv_tensor *y, qkv_error *err)
{
    int64_t mo = a->max_out;
    float iou = a->iou, sc = a->score;
    qkv_tensor in[5] = {kh_f32(3, (int64_t[]){a->batches, a->n, 4}, a->boxes),
                        kh_f32(3, (int64_t[]){a->batches, a->classes, a->n}, a->scores),
                        kh_i64(1, (int64_t[]){1}, &mo), kh_f32(1, (int64_t[]){1}, &iou),
                        kh_f32(1, (int64_t[]){1}, &sc)};
    kh_node *n = kh_node_create("NonMaxSuppression", 11, 5, 1);
    if (a->center)
        kh_attr_int(n, "center_point_box", a->center);
    if (a->max_out < 0)
        kh_omit_input(n, 2);
    if (a->score < 0)
        kh_omit_input(n, 4);
    kh_hide_input_values(n);
    qkv_status st = kh_run(n, in, y, err);
    kh_node_destroy(n);
    return st;
}

static void expect_rows(const qkv_tensor *y, const int64_t *rows, int64_t k)
{
    cr_assert_eq(y->dtype, QKV_DTYPE_INT64);
    cr_assert_eq(y->rank, 2);
    cr_assert_eq(y->dims[0], k);
    cr_assert_eq(y->dims[1], 3);
    for (int64_t i = 0; i < 3 * k; i++)
        cr_assert_eq(((int64_t *)y->data)[i], rows[i], "[%lld]", (long long)i);
}

Test(nms, suppresses_by_iou)
{
    nms_args a = {corners, scores6, 1, 1, 6, 3, 0.5f, 0.0f, 0};
    qkv_tensor y;
    qkv_error err;
    cr_assert_eq(run(&a, &y, &err), QKV_OK, "%s", err.message);
    expect_rows(&y, (int64_t[]){0, 0, 3, 0, 0, 0, 0, 0, 5}, 3);
    kh_free_outputs(&y, 1);
}

Test(nms, flipped_corners_select_the_same)
{
    float flipped[24] = {1, 1,  0, 0,  0, 0.1f,  1, 1.1f,  0, 0.9f, 1, -0.1f,
                         0, 10, 1, 11, 1, 10.1f, 0, 11.1f, 1, 101,  0, 100};
    nms_args a = {flipped, scores6, 1, 1, 6, 3, 0.5f, 0.0f, 0};
    qkv_tensor y;
    qkv_error err;
    cr_assert_eq(run(&a, &y, &err), QKV_OK, "%s", err.message);
    expect_rows(&y, (int64_t[]){0, 0, 3, 0, 0, 0, 0, 0, 5}, 3);
    kh_free_outputs(&y, 1);
}

Test(nms, center_point_boxes)
{
    float centers[24] = {0.5f, 0.5f,  1, 1, 0.5f, 0.6f,  1, 1, 0.5f, 0.4f,   1, 1,
                         0.5f, 10.5f, 1, 1, 0.5f, 10.6f, 1, 1, 0.5f, 100.5f, 1, 1};
    nms_args a = {centers, scores6, 1, 1, 6, 3, 0.5f, 0.0f, 1};
    qkv_tensor y;
    qkv_error err;
    cr_assert_eq(run(&a, &y, &err), QKV_OK, "%s", err.message);
    expect_rows(&y, (int64_t[]){0, 0, 3, 0, 0, 0, 0, 0, 5}, 3);
    kh_free_outputs(&y, 1);
}

Test(nms, limit_and_score_threshold)
{
    nms_args a = {corners, scores6, 1, 1, 6, 2, 0.5f, 0.0f, 0};
    qkv_tensor y;
    qkv_error err;
    cr_assert_eq(run(&a, &y, &err), QKV_OK, "%s", err.message);
    expect_rows(&y, (int64_t[]){0, 0, 3, 0, 0, 0}, 2);
    kh_free_outputs(&y, 1);
    a.max_out = 3;
    a.score = 0.4f; /* box 5 (0.3) is below */
    cr_assert_eq(run(&a, &y, &err), QKV_OK, "%s", err.message);
    expect_rows(&y, (int64_t[]){0, 0, 3, 0, 0, 0}, 2);
    kh_free_outputs(&y, 1);
    a.max_out = -1; /* omitted: no box */
    a.score = -1;
    cr_assert_eq(run(&a, &y, &err), QKV_OK, "%s", err.message);
    cr_assert_eq(y.dims[0], 0);
    kh_free_outputs(&y, 1);
}

Test(nms, batches_and_classes_in_order)
{
    float boxes[48], scores[24];
    memcpy(boxes, corners, sizeof corners);
    memcpy(boxes + 24, corners, sizeof corners);
    for (int i = 0; i < 4; i++)
        memcpy(scores + 6 * i, scores6, sizeof scores6);
    nms_args a = {boxes, scores, 2, 2, 6, 2, 0.5f, 0.0f, 0};
    qkv_tensor y;
    qkv_error err;
    cr_assert_eq(run(&a, &y, &err), QKV_OK, "%s", err.message);
    expect_rows(
        &y, (int64_t[]){0, 0, 3, 0, 0, 0, 0, 1, 3, 0, 1, 0, 1, 0, 3, 1, 0, 0, 1, 1, 3, 1, 1, 0}, 8);
    kh_free_outputs(&y, 1);
}

Test(nms, identical_boxes_keep_one)
{
    float boxes[40], scores[10];
    for (int i = 0; i < 10; i++) {
        memcpy(boxes + 4 * i, (float[]){0, 0, 1, 1}, 4 * sizeof(float));
        scores[i] = 0.9f;
    }
    nms_args a = {boxes, scores, 1, 1, 10, 3, 0.5f, 0.0f, 0};
    qkv_tensor y;
    qkv_error err;
    cr_assert_eq(run(&a, &y, &err), QKV_OK, "%s", err.message);
    expect_rows(&y, (int64_t[]){0, 0, 0}, 1);
    kh_free_outputs(&y, 1);
}

Test(nms, refuses_mismatched_shapes_and_bad_attribute)
{
    nms_args a = {corners, scores6, 1, 1, 6, 3, 0.5f, 0.0f, 0};
    qkv_tensor y;
    qkv_error err;
    int64_t mo = 3;
    float iou = 0.5f;
    qkv_tensor in[4] = {kh_f32(3, (int64_t[]){1, 6, 4}, corners),
                        kh_f32(3, (int64_t[]){1, 1, 5}, scores6), kh_i64(1, (int64_t[]){1}, &mo),
                        kh_f32(1, (int64_t[]){1}, &iou)};
    kh_node *n = kh_node_create("NonMaxSuppression", 11, 4, 1);
    cr_assert_eq(kh_run(n, in, &y, &err), QKV_ERR_SHAPE);
    cr_assert(strstr(err.message, "test_node"), "%s", err.message);
    cr_assert(strstr(err.message, "input 1 'scores' has shape [1,1,5]"), "%s", err.message);
    kh_node_destroy(n);
    a.center = 2;
    cr_assert_eq(run(&a, &y, &err), QKV_ERR_INVALID_MODEL);
    cr_assert(strstr(err.message, "'center_point_box' is 2"), "%s", err.message);
}

Test(nms, no_boxes_select_nothing)
{
    nms_args a = {NULL, NULL, 1, 1, 0, 3, 0.5f, 0.0f, 0};
    qkv_tensor y;
    qkv_error err;
    cr_assert_eq(run(&a, &y, &err), QKV_OK, "%s", err.message);
    cr_assert_eq(y.dims[0], 0);
    cr_assert_eq(y.dims[1], 3);
    kh_free_outputs(&y, 1);
}

/* boxes and scores are required: one given as "" (the optional inputs after
 * it keep the arity) is refused before the kernel's init runs, not read as NULL. */
Test(nms, refuses_an_omitted_required_input)
{
    for (size_t omit = 0; omit < 2; omit++) {
        int64_t mo = 3;
        float iou = 0.5f;
        qkv_tensor in[4] = {kh_f32(3, (int64_t[]){1, 6, 4}, corners),
                            kh_f32(3, (int64_t[]){1, 1, 6}, scores6),
                            kh_i64(1, (int64_t[]){1}, &mo), kh_f32(1, (int64_t[]){1}, &iou)},
                   y;
        qkv_error err;
        kh_node *n = kh_node_create("NonMaxSuppression", 11, 4, 1);
        kh_omit_input(n, omit);
        cr_assert_eq(kh_run(n, in, &y, &err), QKV_ERR_INVALID_MODEL, "input %zu: %s", omit,
                     err.message);
        char want[64];
        snprintf(want, sizeof want, "input %zu is omitted", omit);
        cr_assert(strstr(err.message, "test_node") && strstr(err.message, want), "%s", err.message);
        kh_node_destroy(n);
    }
}
