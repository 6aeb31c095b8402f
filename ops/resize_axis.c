/*
 * resize_axis.c - the sampling table of one resized axis: which input
 * coordinates each output coordinate reads, and with what weights.
 *
 * Coordinates are computed in double, as the ONNX reference does. For
 * output coordinate x the transform gives x_original; then
 *   nearest: one input coordinate, rounded as nearest_mode says;
 *   linear, cubic: the `taps` coordinates around x_original, starting at
 *     ceil(x_original) - taps/2 (x_original's left neighbour when it is not
 *     an integer, the one before it when it is: the window the reference's
 *     "n nearest, prefer smaller" search picks), weighted by the kernel at
 *     (j - x_original) * s, where s is min(scale, 1) with antialiasing and 1
 *     without; antialiased weights are normalised to sum 1.
 * Input coordinates outside [0, in_len) are clamped (the reference pads
 * the edge), or with exclude_outside get weight 0 and the rest is
 * renormalised.
 */
#include <math.h>

#include "resize.h"

/* The widest antialiasing window tabulated (taps per output coordinate). */
#define MAX_TAPS ((size_t)1 << 20)

/* Half-width of the kernel's support: 1 for linear, 2 for cubic. */
static double support(qkv_resize_mode mode) { return mode == QKV_RESIZE_CUBIC ? 2.0 : 1.0; }

static double filter_scale(const qkv_resize_axis_spec *a)
{
    return a->antialias && a->scale < 1.0 ? a->scale : 1.0;
}

size_t qkv_resize_axis_taps(const qkv_resize_axis_spec *a)
{
    if (a->mode == QKV_RESIZE_NEAREST)
        return 1;
    /* the reference's window: start = floor(-support / s) + 1, taps = 2 - 2 start */
    double start = floor(-support(a->mode) / filter_scale(a)) + 1.0;
    double taps = 2.0 - 2.0 * start;
    return taps > (double)MAX_TAPS ? 0 : (size_t)taps;
}

bool qkv_resize_axis_is_identity(const qkv_resize_axis_spec *a)
{
    return a->in_len == a->out_len && a->scale == 1.0 &&
           a->coord != QKV_COORD_TF_HALF_PIXEL_FOR_NN && a->coord != QKV_COORD_TF_CROP_AND_RESIZE;
}

/* x_original of output coordinate x; *outside set when tf_crop_and_resize
 * lands outside the input. */
static double original_coord(const qkv_resize_axis_spec *a, double x, bool *outside)
{
    const double len = (double)a->in_len, out = (double)a->out_len, s = a->scale;
    double xo;
    *outside = false;
    switch (a->coord) {
    case QKV_COORD_HALF_PIXEL:
        return (x + 0.5) / s - 0.5;
    case QKV_COORD_HALF_PIXEL_SYMMETRIC: {
        /* centres the implicit roi when floor(scale * len) cut the output short */
        double adjustment = out / (s * len);
        return len / 2.0 * (1.0 - adjustment) + (x + 0.5) / s - 0.5;
    }
    case QKV_COORD_PYTORCH_HALF_PIXEL:
        return a->out_len > 1 ? (x + 0.5) / s - 0.5 : 0.0;
    case QKV_COORD_ALIGN_CORNERS:
        return a->out_len > 1 ? x * (len - 1.0) / (out - 1.0) : 0.0;
    case QKV_COORD_ASYMMETRIC:
        return x / s;
    case QKV_COORD_TF_HALF_PIXEL_FOR_NN:
        return (x + 0.5) / s;
    case QKV_COORD_TF_CROP_AND_RESIZE:
        if (a->out_len > 1)
            xo = a->roi_start * (len - 1.0) +
                 x * (a->roi_end - a->roi_start) * (len - 1.0) / (out - 1.0);
        else
            xo = 0.5 * (a->roi_start + a->roi_end) * (len - 1.0);
        *outside = !(xo >= 0.0 && xo <= len - 1.0); /* NaN (a NaN roi) too */
        return xo;
    }
    return x;
}

static int64_t clamp_index(double j, int64_t len)
{
    if (!(j > 0.0)) /* also NaN */
        return 0;
    if (j >= (double)(len - 1))
        return len - 1;
    return (int64_t)j;
}

static int64_t nearest_index(const qkv_resize_axis_spec *a, double xo)
{
    double f = floor(xo), r = xo - f;
    double j;
    switch (a->nearest) {
    case QKV_NEAREST_ROUND_PREFER_FLOOR:
        j = r <= 0.5 ? f : f + 1.0;
        break;
    case QKV_NEAREST_ROUND_PREFER_CEIL:
        j = r < 0.5 ? f : f + 1.0;
        break;
    case QKV_NEAREST_FLOOR:
        j = f;
        break;
    case QKV_NEAREST_CEIL:
        j = ceil(xo);
        break;
    default:
        j = a->scale < 1.0 ? ceil(xo) : f;
        break;
    }
    return clamp_index(j, a->in_len);
}

/* The kernel at distance d (already scaled). */
static double kernel_at(const qkv_resize_axis_spec *a, double d)
{
    d = fabs(d);
    if (a->mode == QKV_RESIZE_LINEAR)
        return d < 1.0 ? 1.0 - d : 0.0;
    const double A = a->cubic_a;
    if (d <= 1.0)
        return ((A + 2.0) * d - (A + 3.0)) * d * d + 1.0;
    if (d < 2.0)
        return ((A * d - 5.0 * A) * d + 8.0 * A) * d - 4.0 * A;
    return 0.0;
}

/* Weights of one output coordinate at x_original xo into w[0, taps), input
 * coordinates (clamped) into idx. */
static void weights_at(const qkv_resize_axis_spec *a, double xo, size_t taps, int64_t *idx,
                       double *w)
{
    const double s = filter_scale(a);
    const double first = ceil(xo) - (double)(taps / 2);
    double sum = 0.0, kept = 0.0;
    for (size_t t = 0; t < taps; t++) {
        double j = first + (double)t;
        w[t] = kernel_at(a, (j - xo) * s);
        sum += w[t];
        if (a->exclude_outside && (j < 0.0 || j > (double)(a->in_len - 1)))
            w[t] = 0.0;
        kept += w[t];
        idx[t] = clamp_index(j, a->in_len);
    }
    /* antialiased weights are normalised; exclude_outside renormalises what
     * is left (the two compose to one division by what is kept) */
    double norm = a->exclude_outside ? kept : a->antialias ? sum : 1.0;
    if (norm != 1.0 && norm != 0.0)
        for (size_t t = 0; t < taps; t++)
            w[t] /= norm;
}

void qkv_resize_axis_table(const qkv_resize_axis_spec *a, size_t taps, int64_t *index,
                           double *weight, uint8_t *outside)
{
    for (int64_t o = 0; o < a->out_len; o++) {
        bool out_of_range;
        double xo = original_coord(a, (double)o, &out_of_range);
        int64_t *idx = index + (size_t)o * taps;
        double *w = weight ? weight + (size_t)o * taps : NULL;
        outside[o] = out_of_range;
        if (out_of_range) {
            for (size_t t = 0; t < taps; t++) {
                idx[t] = 0;
                if (w)
                    w[t] = 0.0;
            }
            continue;
        }
        if (a->mode == QKV_RESIZE_NEAREST) {
            idx[0] = nearest_index(a, xo);
            if (w)
                w[0] = 1.0;
            continue;
        }
        weights_at(a, xo, taps, idx, w);
    }
}
