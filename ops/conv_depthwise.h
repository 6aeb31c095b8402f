/*
 * conv_depthwise.h - the direct depthwise convolution of the Conv kernel
 * (float32): one input channel per group (group == C, or C == 1), M = C * mult output
 * channels, output channel m reading input channel m / mult, any number of
 * spatial dims, any kernel, strides, dilations and pads (geometry:
 * conv_geom.h). No im2col, no GEMM.
 *
 * How. Each worker takes a contiguous share of the (image, output
 * channel) planes of Y. It copies the input channel a plane reads (once
 * for the planes that share it) into its scratch slot with the last dim's padding
 * written as zeros and, for a stride s > 1, split into s phases (phase r
 * holds padded positions r, r + s, r + 2s, ...), so that every tap of the
 * last dim reads a contiguous run of the slot: tap k of output position j
 * reads padded position j * s + k * d, which is element j + (k * d) / s of
 * phase (k * d) % s. An output row (the last output dim) is then
 *   y[j] = bias + sum over taps t of w[t] * src[t][j]
 * over the taps whose outer coordinates fall inside the input (the others
 * read only padding), computed by a row kernel that keeps blocks of up to
 * 8 vectors of y in registers across all taps. Four output channels that
 * read the same input channel (a channel multiplier of 4 or more, such as a
 * convolution of one input channel into many: wav2vec2's first conv over raw
 * audio) go through a 4-row kernel together, which loads each input vector
 * once for the four. Row kernels: AVX-512, AVX2/FMA and portable C
 * (conv_depthwise_rows.h), chosen from host->cpu_features().
 */
#ifndef QKV_CONV_DEPTHWISE_H
#define QKV_CONV_DEPTHWISE_H

#include <stdbool.h>
#include <stddef.h>

#include "conv_geom.h"
#include "kernel_util.h"

/* Everything a run needs, derived from the geometry and the sizes. */
typedef struct qkv_dwconv_plan {
    qkv_conv_geom g;          /* every dim known */
    size_t n, c, mult;        /* images, input channels, output channels per input channel */
    size_t ksize;             /* kernel positions (all dims) */
    size_t kw;                /* kernel positions along the last dim */
    size_t in_size, out_size; /* spatial positions of one channel of X and of Y */
    size_t in_w, width;       /* last dim of X and of Y */
    size_t in_rows, out_rows; /* in_size / in_w, out_size / width: rows of the last dim */
    size_t phase_len;         /* elements of one stride phase of a padded row */
    size_t row_len;           /* stride * phase_len: one padded row, every phase */
    size_t slot_floats;       /* in_rows * row_len: one worker's padded channel */
} qkv_dwconv_plan;

/*
 * Fills *p for images (n, c, in...) and output (n, c * mult, out...) of
 * geometry g (every dim known, n_spatial >= 1, pads >= 0). Returns false
 * (with *p zeroed) when a size overflows size_t; an empty input or output
 * is valid (qkv_dwconv_run then only writes what there is).
 */
bool qkv_dwconv_plan_init(qkv_dwconv_plan *p, const qkv_conv_geom *g, size_t n, size_t c,
                          size_t mult);

/*
 * The scratch bytes a run with at most `workers` (>= 1) workers needs, into
 * *bytes; false on overflow.
 */
bool qkv_dwconv_scratch_bytes(const qkv_dwconv_plan *p, size_t workers, size_t *bytes);

/*
 * Y (n, c * mult, out...) = the depthwise convolution of X (n, c, in...)
 * with W (c * mult, 1, kernel...) plus B (c * mult; NULL: no bias), over
 * io's threads (as many shares as the scratch has slots for, at most 4 per
 * thread, fewer for a small convolution). scratch: 64-byte aligned,
 * scratch_bytes of it, at least qkv_dwconv_scratch_bytes(p, 1). The row
 * kernel is the best the CPU features of io's host allow. Allocates
 * nothing; y must not overlap x, w or b.
 */
void qkv_dwconv_run(qkv_kernel_io *io, const qkv_dwconv_plan *p, const float *x, const float *w,
                    const float *b, float *y, void *scratch, size_t scratch_bytes);

#endif /* QKV_CONV_DEPTHWISE_H */
