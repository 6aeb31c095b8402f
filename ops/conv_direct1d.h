/*
 * conv_direct1d.h - the direct 1-D convolution of the Conv kernel
 * (float32) for grouped convolutions with constant weights, such as
 * wav2vec2's positional convolution (768 channels in 16 groups of 48,
 * kernel 128, pads 64, over ~50 frames). No im2col, no GEMM.
 *
 * Why. im2col + GEMM multiplies every tap with the input, padding
 * included; with a kernel as long as the sequence most taps of most
 * positions read padding (at 49 frames, 79 of 128). Here each tile of
 * output positions runs over the taps that read the input for at least one
 * of its positions only, and reads the input in place (a zero-padded copy)
 * instead of building a column matrix.
 *
 * How. The weights are packed once per session (prepack): per group, per
 * chunk of cw output channels (cw = mr * vw of the variant), (C/group,
 * kernel, cw) floats, zero beyond the group's channels. A worker takes an
 * (image, group, chunk) unit: its accumulators (out_w, cw) start as the
 * bias; for each block of input channels (whose weights stay in L2) it
 * sweeps the output positions in tiles of nj, each tile adding the taps it
 * needs in registers (conv_direct1d_tiles.h); then it writes the chunk's
 * channels into Y. Variants: AVX-512, AVX2/FMA, portable, chosen from
 * host->cpu_features() when the weights are packed.
 */
#ifndef QKV_CONV_DIRECT1D_H
#define QKV_CONV_DIRECT1D_H

#include <stdbool.h>
#include <stddef.h>

#include "conv_direct1d_tiles.h"
#include "conv_geom.h"
#include "kernel_util.h"

/* Weights packed for one variant (qkv_direct1d_pack). */
typedef struct qkv_direct1d_weights {
    float *data;              /* (group, chunks, cg, ksize, cw); NULL: none */
    size_t m, cg, ksize;      /* W's dims (M, C/group, kernel) */
    size_t group, mg, chunks; /* groups, channels per group, chunks per group */
    size_t cw;                /* channels per chunk: kind.mr * kind.vw */
    qkv_direct1d_kind kind;
} qkv_direct1d_weights;

/*
 * Packs W (m, cg, ksize) of a convolution with `group` groups (m a multiple
 * of group) for `kind` into *out (malloc'd; free with
 * qkv_direct1d_weights_free). Returns false (with *out zeroed) when a size
 * overflows or memory runs out.
 */
bool qkv_direct1d_pack(const float *w, size_t m, size_t cg, size_t ksize, size_t group,
                       qkv_direct1d_kind kind, qkv_direct1d_weights *out);

/* Frees what qkv_direct1d_pack made; *wp becomes empty. NULL-safe. */
void qkv_direct1d_weights_free(qkv_direct1d_weights *wp);

/* Everything a run needs, derived from the geometry and the sizes. */
typedef struct qkv_direct1d_plan {
    size_t n, c, m, group, cg, mg; /* images, channels in and out, groups, per group */
    size_t ksize, stride, dilation;
    size_t in_w, out_w; /* input and output lengths */
    size_t pad_begin;
    size_t padded_w; /* pad_begin + in_w + pad_end: one padded input row */
    size_t units;    /* n * group * chunks */
    size_t kc;       /* input channels per block */
    size_t cw, chunks;
} qkv_direct1d_plan;

/*
 * Fills *p for images (n, c, in_w) and output (n, m, out_w) of the 1-D
 * geometry g (every dim known, pads >= 0) with weights wp (packed for this
 * m, c / group and kernel). Returns false (with *p zeroed) when a size
 * overflows size_t.
 */
bool qkv_direct1d_plan_init(qkv_direct1d_plan *p, const qkv_conv_geom *g, size_t n, size_t c,
                            const qkv_direct1d_weights *wp);

/* The scratch bytes a run with at most `workers` (>= 1) workers needs:
 * the padded input and one accumulator block per worker. false on
 * overflow. */
bool qkv_direct1d_scratch_bytes(const qkv_direct1d_plan *p, size_t workers, size_t *bytes);

/*
 * Y (n, m, out_w) = the convolution of X (n, c, in_w) with the packed
 * weights plus B (m; NULL: no bias), over io's threads (as many shares
 * as the scratch has accumulator blocks for, at most 4 per thread). scratch: 64-byte
 * aligned, scratch_bytes of it, at least qkv_direct1d_scratch_bytes(p, 1).
 * Allocates nothing; y must not overlap x or b.
 */
void qkv_direct1d_run(qkv_kernel_io *io, const qkv_direct1d_plan *p, const qkv_direct1d_weights *wp,
                      const float *x, const float *b, float *y, void *scratch,
                      size_t scratch_bytes);

#endif /* QKV_CONV_DIRECT1D_H */
