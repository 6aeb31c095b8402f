/*
 * resize.h - what the Resize/Upsample kernel (resize.c), its per-axis
 * sampling tables (resize_axis.c) and its passes (resize_exec.c) share.
 *
 * A resize is separable: along each axis, output coordinate o reads `taps`
 * input coordinates with weights, the same for every line along that axis.
 * resize_axis.c builds those tables from the geometry (lengths, scale, roi);
 * resize_exec.c applies them: one n-d gather for nearest, one weighted pass
 * per resized axis (innermost first) for linear and cubic.
 */
#ifndef QKV_OPS_RESIZE_H
#define QKV_OPS_RESIZE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "kernel_util.h"

typedef enum qkv_resize_mode {
    QKV_RESIZE_NEAREST,
    QKV_RESIZE_LINEAR,
    QKV_RESIZE_CUBIC
} qkv_resize_mode;

typedef enum qkv_resize_coord {
    QKV_COORD_HALF_PIXEL,
    QKV_COORD_HALF_PIXEL_SYMMETRIC,
    QKV_COORD_PYTORCH_HALF_PIXEL,
    QKV_COORD_ALIGN_CORNERS,
    QKV_COORD_ASYMMETRIC,
    QKV_COORD_TF_HALF_PIXEL_FOR_NN,
    QKV_COORD_TF_CROP_AND_RESIZE
} qkv_resize_coord;

typedef enum qkv_resize_nearest {
    QKV_NEAREST_ROUND_PREFER_FLOOR,
    QKV_NEAREST_ROUND_PREFER_CEIL,
    QKV_NEAREST_FLOOR,
    QKV_NEAREST_CEIL,
    QKV_NEAREST_SIMPLE /* Resize-10, Upsample: floor when enlarging, ceil when shrinking */
} qkv_resize_nearest;

/* How one axis is sampled: everything resize_axis.c needs. */
typedef struct qkv_resize_axis_spec {
    qkv_resize_mode mode;
    qkv_resize_coord coord;
    qkv_resize_nearest nearest;
    bool antialias, exclude_outside;
    double cubic_a;
    int64_t in_len, out_len;
    double scale;              /* the scale of the coordinate transform */
    double roi_start, roi_end; /* tf_crop_and_resize only */
} qkv_resize_axis_spec;

/* Input coordinates (and weights) read per output coordinate of one axis;
 * 0 when the scale makes the antialiasing window too wide to tabulate. */
size_t qkv_resize_axis_taps(const qkv_resize_axis_spec *a);

/* True when the axis maps output o to input o for every o whatever the roi
 * (same length, scale 1, a transform that is then the identity). */
bool qkv_resize_axis_is_identity(const qkv_resize_axis_spec *a);

/*
 * Fills the table of one axis: for output coordinate o, index[o * taps + t]
 * is an input coordinate in [0, in_len) and weight[o * taps + t] its weight
 * (weight may be NULL for nearest, which has one tap of weight 1).
 * outside[o] is 1 where tf_crop_and_resize samples outside the input (the
 * output there is the extrapolation value; index and weights are 0), else
 * 0. taps is qkv_resize_axis_taps(a); in_len > 0.
 */
void qkv_resize_axis_table(const qkv_resize_axis_spec *a, size_t taps, int64_t *index,
                           double *weight, uint8_t *outside);

/* One resize, ready to run: shapes, dtype and the per-axis specs. */
typedef struct qkv_resize_job {
    int32_t rank;
    qkv_dtype dtype;
    qkv_resize_axis_spec axis[QKV_MAX_RANK];
    double extrapolation;
} qkv_resize_job;

/* Scratch bytes qkv_resize_run needs for job; QKV_ERR_SHAPE (reported) on
 * overflow, QKV_ERR_UNSUPPORTED when an antialiasing window is too wide. */
qkv_status qkv_resize_scratch(qkv_kernel_io *io, const qkv_resize_job *job, size_t *bytes);

/* Resizes x into y (shapes as job says; y does not overlap x) with
 * scratch_bytes of io->scratch from qkv_resize_scratch. QKV_ERR_TYPE for a
 * dtype the mode cannot interpolate. */
qkv_status qkv_resize_run(qkv_kernel_io *io, const qkv_resize_job *job, const void *x, void *y);

#endif /* QKV_OPS_RESIZE_H */
