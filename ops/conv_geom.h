/*
 * conv_geom.h - the window geometry shared by the convolution and pooling
 * kernels (Conv, ConvTranspose, MaxPool, AveragePool, LpPool, ConvInteger,
 * QLinearConv): their common attributes parsed and validated once in init,
 * the output shape and padding for any number of spatial dims, and im2col
 * for elements of any size.
 *
 * Conventions. Tensors are (N, C, D1, ..., Dn), n = n_spatial >= 1 spatial
 * dims. A window position o along a spatial dim reads input positions
 * o * stride - pad_begin + j * dilation for j in [0, kernel); positions
 * outside [0, in) are padding. ONNX's `pads` lists every begin, then every
 * end: [x1_begin, x2_begin, ..., x1_end, x2_end, ...].
 *
 * Usage (a kernel):
 *   init:    qkv_conv_attrs_parse(host, node, QKV_CONV_PARSE_GROUP, &s->attrs);
 *   infer:   qkv_conv_geom_forward(io, &s->attrs, n, x_spatial, w_spatial, &g);
 *            then the output dims are (N, M, g.out[0..n)), -1 where unknown;
 *   compute: qkv_im2col(&g, sizeof(float), x_image, channels, 0, rows, 0, cols, col, cols, NULL);
 */
#ifndef QKV_CONV_GEOM_H
#define QKV_CONV_GEOM_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "qkv_plugin.h"

/* The most spatial dims: the ABI's rank limit less N and C. */
#define QKV_CONV_MAX_SPATIAL (QKV_MAX_RANK - 2)

typedef enum qkv_conv_auto_pad {
    QKV_CONV_PAD_NOTSET = 0, /* explicit `pads` (default 0) */
    QKV_CONV_PAD_VALID,      /* no padding */
    QKV_CONV_PAD_SAME_UPPER, /* output = ceil(in / stride); an odd pad's extra at the end */
    QKV_CONV_PAD_SAME_LOWER  /* the same, the extra at the beginning */
} qkv_conv_auto_pad;

/* Which attributes qkv_conv_attrs_parse reads beyond the common ones
 * (kernel_shape, strides, dilations, pads, auto_pad). */
#define QKV_CONV_PARSE_GROUP 0x1u           /* group (Conv, ConvTranspose, QLinearConv...) */
#define QKV_CONV_PARSE_TRANSPOSE 0x2u       /* output_padding, output_shape (ConvTranspose) */
#define QKV_CONV_PARSE_CEIL_MODE 0x4u       /* ceil_mode (MaxPool, AveragePool, LpPool) */
#define QKV_CONV_PARSE_KERNEL_REQUIRED 0x8u /* kernel_shape must be present (pooling) */

/*
 * The attributes as the model gives them, checked for consistency: every
 * list that is present has n_spatial entries (pads 2 * n_spatial;
 * output_shape n_spatial or n_spatial + 2, in which case the leading (N, C)
 * are dropped). An absent list reads as its default for every spatial dim
 * (strides and dilations 1, pads and output_padding 0).
 */
typedef struct qkv_conv_attrs {
    int32_t n_spatial; /* from the lists present; 0 when none is (any rank goes) */
    bool has_kernel_shape, has_pads, has_output_shape;
    int64_t kernel_shape[QKV_CONV_MAX_SPATIAL];   /* >= 1 */
    int64_t strides[QKV_CONV_MAX_SPATIAL];        /* >= 1 */
    int64_t dilations[QKV_CONV_MAX_SPATIAL];      /* >= 1 */
    int64_t pads[2 * QKV_CONV_MAX_SPATIAL];       /* >= 0, ONNX order (all begins, all ends) */
    int64_t output_padding[QKV_CONV_MAX_SPATIAL]; /* >= 0 */
    int64_t output_shape[QKV_CONV_MAX_SPATIAL];   /* >= 1, spatial dims only */
    qkv_conv_auto_pad auto_pad;
    int64_t group; /* >= 1; 1 when not parsed */
    bool ceil_mode;
} qkv_conv_attrs;

/*
 * Reads and validates the attributes of a Conv-like node (init only): the
 * common ones, plus those `flags` (QKV_CONV_PARSE_*) ask for. The list
 * lengths must agree and be at most QKV_CONV_MAX_SPATIAL, values must be in
 * the ranges of qkv_conv_attrs, auto_pad one of NOTSET, VALID, SAME_UPPER,
 * SAME_LOWER. Errors (reported on the node with NERR, naming the attribute
 * and the bad value): QKV_ERR_INVALID_MODEL for bad values or lengths,
 * QKV_ERR_TYPE for an attribute of the wrong type, QKV_ERR_UNSUPPORTED for
 * more than QKV_CONV_MAX_SPATIAL spatial dims. *out is always written.
 */
qkv_status qkv_conv_attrs_parse(const qkv_host_api *host, const qkv_node_ctx *node, unsigned flags,
                                qkv_conv_attrs *out);

/*
 * The window geometry of one node at one shape. For a forward window (Conv,
 * pooling) `in` is the input's spatial dims and `out` the output's. For
 * ConvTranspose it describes the forward convolution the transpose is the
 * adjoint of: `in` is the ConvTranspose's OUTPUT spatial dims and `out` its
 * input's, so im2col of this geometry and col2im are exact adjoints.
 * Pads may be negative only for ConvTranspose with output_shape (an output
 * larger than the full transposed convolution: the extra positions receive
 * no contribution).
 */
typedef struct qkv_conv_geom {
    int32_t n_spatial;
    int64_t in[QKV_CONV_MAX_SPATIAL];  /* -1: unknown (infer only) */
    int64_t out[QKV_CONV_MAX_SPATIAL]; /* -1: unknown (infer only) */
    int64_t kernel[QKV_CONV_MAX_SPATIAL];
    int64_t stride[QKV_CONV_MAX_SPATIAL];
    int64_t dilation[QKV_CONV_MAX_SPATIAL];
    int64_t pad_begin[QKV_CONV_MAX_SPATIAL];
    int64_t pad_end[QKV_CONV_MAX_SPATIAL];
} qkv_conv_geom;

/*
 * Forward window geometry (Conv, pooling) for n_spatial input dims `in`
 * (-1 where unknown) and a known kernel `kernel` (each >= 1), under a's
 * strides, dilations, pads and auto_pad (and ceil_mode: the output dim
 * rounds up, and a last window that would start in the end padding is
 * dropped, as PyTorch and the ONNX reference do; SAME ignores ceil_mode):
 *   NOTSET: out = floor((in + pad_begin + pad_end - ((kernel - 1) * dilation + 1)) / stride) + 1
 *   VALID:  the same with no padding
 *   SAME_*: out = ceil(in / stride), the total padding
 *           max(0, (out - 1) * stride + (kernel - 1) * dilation + 1 - in) split with the odd
 *           one at the end (UPPER) or the beginning (LOWER).
 * Out dims are -1 where `in` is unknown. QKV_ERR_SHAPE (via io, naming the
 * dim) when a's n_spatial differs from n_spatial, when a's kernel_shape
 * differs from `kernel`, or when the window does not fit (out < 1 for a
 * known in >= 1; an empty input dim gives an empty output dim).
 * *g is always written.
 */
qkv_status qkv_conv_geom_forward(qkv_kernel_io *io, const qkv_conv_attrs *a, int32_t n_spatial,
                                 const int64_t *in, const int64_t *kernel, qkv_conv_geom *g);

/*
 * ConvTranspose geometry for input spatial dims `in` (-1 where unknown) and
 * kernel dims `kernel`, following the ONNX spec:
 *   output_shape given: out = output_shape, total padding
 *       stride * (in - 1) + output_padding + (kernel - 1) * dilation + 1 - out
 *       split floor(total / 2) at the beginning for SAME_UPPER, at the end otherwise;
 *   else SAME_*: out = in * stride, the total padding split the same way;
 *   else: out = stride * (in - 1) + output_padding + (kernel - 1) * dilation + 1
 *       - pad_begin - pad_end (VALID: no pads).
 * g is in the adjoint orientation (see qkv_conv_geom): g->in is the output.
 * QKV_ERR_SHAPE via io when ranks disagree or the output would be < 1 (a
 * known input dim of 0 gives an output dim of 0 only with output_shape).
 * *g is always written.
 */
qkv_status qkv_conv_geom_transpose(qkv_kernel_io *io, const qkv_conv_attrs *a, int32_t n_spatial,
                                   const int64_t *in, const int64_t *kernel, qkv_conv_geom *g);

/* Products of g's dims (all known): kernel positions, input positions,
 * output positions. false on size_t overflow (then *out is 0). */
bool qkv_conv_geom_kernel_size(const qkv_conv_geom *g, size_t *out);
bool qkv_conv_geom_in_size(const qkv_conv_geom *g, size_t *out);
bool qkv_conv_geom_out_size(const qkv_conv_geom *g, size_t *out);

/* true when the window is a plain matrix product: every kernel dim 1,
 * stride 1 and pad 0 (then im2col of an image is the image itself). */
bool qkv_conv_geom_is_pointwise(const qkv_conv_geom *g);

/*
 * im2col of one image x (channels, in[0], ..., in[n-1]) of elem_bytes-byte
 * elements: the matrix col of (channels * K, P) rows, K the kernel size and
 * P the output size, row r = c * K + (kernel offset, row-major) holding, for
 * every output position p (row-major), the input element that kernel tap
 * reads at p, or *pad_value (elem_bytes bytes; NULL: all-zero bytes) where
 * it reads padding. Writes only rows [row_begin, row_end) and columns
 * [col_begin, col_end): element (r, p) goes to
 * col[(r - row_begin) * ld + (p - col_begin)], so a caller may build one
 * tile of the matrix, or split rows over threads. Every dim of g known;
 * elem_bytes >= 1. Allocates nothing.
 */
void qkv_im2col(const qkv_conv_geom *g, size_t elem_bytes, const void *x, size_t channels,
                size_t row_begin, size_t row_end, size_t col_begin, size_t col_end, void *col,
                size_t ld, const void *pad_value);

/*
 * Sets each of `planes` planes of plane_len elem_bytes-byte elements at y to
 * its channel's value: plane i gets values[i % channels] (values holds
 * `channels` elements; NULL: all-zero bytes). The bias that the
 * convolutions' GEMMs then accumulate onto. Splits the planes over io's
 * threads when large. Allocates nothing.
 */
void qkv_conv_fill_planes(qkv_kernel_io *io, size_t planes, size_t channels, size_t plane_len,
                          size_t elem_bytes, const void *values, void *y);

#endif /* QKV_CONV_GEOM_H */
