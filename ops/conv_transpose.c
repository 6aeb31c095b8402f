/*
 * conv_transpose.c - ConvTranspose (opsets 1, 11, 22): the adjoint of Conv.
 * X (N, C, D1..Dn) and W (C, M / group, k1..kn), plus an optional bias
 * B (M), give Y (N, M, O1..On) for any n >= 1 spatial dims, with groups,
 * strides, dilations, pads, output_padding, output_shape and every auto_pad
 * (output shape and pads as the ONNX spec gives them: conv_geom.h,
 * qkv_conv_geom_transpose).
 *
 * Types: float and double; float16 (and bfloat16 from opset 22) computed
 * in float32 scratch copies and rounded once at the end.
 *
 * Computation: Y starts as the bias (or zero). For each (image, group) and
 * tile of input positions, a GEMM makes the column matrix
 * col (M/group * K, tile) = W[g]^T @ X[n, g][:, tile] in scratch (at most
 * COL_TILE_BYTES), and col2im adds every column into the output positions
 * its kernel taps reach (split over threads by output channel, whose planes
 * are disjoint). A pointwise ConvTranspose (kernel 1, stride 1, no pads)
 * is a GEMM straight into Y.
 */
#include <stdlib.h>
#include <string.h>

#include "blas.h"
#include "conv_geom.h"
#include "half.h"
#include "kernel_util.h"

#define COL_TILE_BYTES ((size_t)2 << 20)

typedef struct convt_state {
    qkv_conv_attrs attrs;
} convt_state;

/* Derived from the concrete shapes. The geometry is in the adjoint
 * orientation: g.in is Y's spatial dims, g.out X's. */
typedef struct convt_plan {
    qkv_conv_geom g;
    size_t n, c, m, group, cg, mg;
    size_t ksize;
    size_t x_size, y_size; /* spatial positions of X and of Y */
    size_t rows;           /* mg * ksize: rows of the column matrix */
    size_t tile;           /* X positions per column tile */
    size_t elem_bytes;
    bool pointwise;
} convt_plan;

static qkv_status convt_plan_make(const convt_state *s, qkv_kernel_io *io, convt_plan *p)
{
    const qkv_tensor *x = &io->inputs[0], *w = &io->inputs[1];
    memset(p, 0, sizeof *p);
    qkv_status st =
        qkv_conv_geom_transpose(io, &s->attrs, x->rank - 2, x->dims + 2, w->dims + 2, &p->g);
    if (st != QKV_OK)
        return st;
    p->n = (size_t)x->dims[0];
    p->c = (size_t)x->dims[1];
    p->group = (size_t)s->attrs.group;
    p->cg = p->c / p->group;
    p->mg = (size_t)w->dims[1];
    p->m = p->mg * p->group;
    p->elem_bytes = x->dtype == QKV_DTYPE_DOUBLE ? sizeof(double) : sizeof(float);
    if (!qkv_conv_geom_kernel_size(&p->g, &p->ksize) || !qkv_conv_geom_in_size(&p->g, &p->y_size) ||
        !qkv_conv_geom_out_size(&p->g, &p->x_size) ||
        __builtin_mul_overflow(p->mg, p->ksize, &p->rows))
        return KERR(io, QKV_ERR_UNSUPPORTED, "convolution too large: sizes overflow");
    p->pointwise = qkv_conv_geom_is_pointwise(&p->g);
    size_t row_bytes = (p->rows ? p->rows : 1) * p->elem_bytes;
    size_t tile = COL_TILE_BYTES / row_bytes;
    tile = tile >= 64 ? tile / 64 * 64 : 64;
    p->tile = tile < p->x_size ? tile : p->x_size;
    return QKV_OK;
}

/* ---- col2im ------------------------------------------------------------------------ */

typedef struct col2im_run {
    const convt_plan *p;
    const void *col; /* (rows, col1 - col0) */
    void *y;         /* the group's first output plane of one image */
    size_t col0, col1;
} col2im_run;

/*
 * The adjoint of qkv_im2col for channels [m0, m1) of y: every element of
 * column p, row r = m * K + tap is added to the y position that tap reads
 * at output position p (nothing where it reads padding).
 */
#define DEFINE_COL2IM(SFX, T)                                                                      \
    static void col2im_##SFX(const convt_plan *p, const T *col, T *y, size_t m0, size_t m1,        \
                             size_t col0, size_t col1)                                             \
    {                                                                                              \
        const qkv_conv_geom *g = &p->g;                                                            \
        int32_t last = g->n_spatial - 1;                                                           \
        const size_t width = (size_t)g->out[last], ld = col1 - col0;                               \
        const int64_t s = g->stride[last];                                                         \
        for (size_t r = m0 * p->ksize; r < m1 * p->ksize; r++) {                                   \
            T *ym = y + (r / p->ksize) * p->y_size;                                                \
            const T *crow = col + r * ld;                                                          \
            int64_t off[QKV_CONV_MAX_SPATIAL];                                                     \
            size_t t = r % p->ksize;                                                               \
            for (int32_t i = last; i >= 0; i--) {                                                  \
                off[i] = (int64_t)(t % (size_t)g->kernel[i]) * g->dilation[i] - g->pad_begin[i];   \
                t /= (size_t)g->kernel[i];                                                         \
            }                                                                                      \
            int64_t in_w = g->in[last], ol = off[last];                                            \
            int64_t lo = ol >= 0 ? 0 : (-ol + s - 1) / s;                                          \
            int64_t hi = in_w - 1 - ol < 0 ? 0 : (in_w - 1 - ol) / s + 1;                          \
            for (size_t c = col0; c < col1;) {                                                     \
                size_t q = c / width, w0 = c % width;                                              \
                size_t w1 = width - w0 < col1 - c ? width : w0 + (col1 - c);                       \
                size_t dst = 0, mul = (size_t)in_w;                                                \
                bool inside = true;                                                                \
                for (int32_t i = last - 1; i >= 0; i--) {                                          \
                    int64_t pos = (int64_t)(q % (size_t)g->out[i]) * g->stride[i] + off[i];        \
                    q /= (size_t)g->out[i];                                                        \
                    if (pos < 0 || pos >= g->in[i]) {                                              \
                        inside = false;                                                            \
                        break;                                                                     \
                    }                                                                              \
                    dst += (size_t)pos * mul;                                                      \
                    mul *= (size_t)g->in[i];                                                       \
                }                                                                                  \
                int64_t a = lo > (int64_t)w0 ? lo : (int64_t)w0;                                   \
                int64_t b = hi < (int64_t)w1 ? hi : (int64_t)w1;                                   \
                if (inside && a < b) {                                                             \
                    const T *restrict src = crow + (c - col0) - w0;                                \
                    T *restrict yr = ym + dst + ol;                                                \
                    for (int64_t j = a; j < b; j++)                                                \
                        yr[j * s] += src[j];                                                       \
                }                                                                                  \
                c += w1 - w0;                                                                      \
            }                                                                                      \
        }                                                                                          \
    }
DEFINE_COL2IM(f32, float)
DEFINE_COL2IM(f64, double)

/* parallel_for body: output channels [begin, end) of the group. */
static void col2im_range(void *arg, size_t begin, size_t end)
{
    const col2im_run *r = arg;
    if (r->p->elem_bytes == sizeof(double))
        col2im_f64(r->p, r->col, r->y, begin, end, r->col0, r->col1);
    else
        col2im_f32(r->p, r->col, r->y, begin, end, r->col0, r->col1);
}

/* ---- compute ---------------------------------------------------------------------- */

/* col (or Y directly when pointwise) = W[g]^T @ X[n, g][:, c0:c1] (+ C when
 * beta 1). */
static qkv_status convt_gemm(qkv_kernel_io *io, const convt_plan *p, const void *w, const void *x,
                             void *c, size_t ldc, size_t c0, size_t c1, double beta)
{
    qkv_blas_gemm gm;
    memset(&gm, 0, sizeof gm);
    gm.dtype = io->inputs[0].dtype;
    gm.trans_a = true; /* W[g] is stored (cg, mg * K) */
    gm.m = p->rows;
    gm.n = c1 - c0;
    gm.k = p->cg;
    gm.alpha = 1;
    gm.beta = beta;
    gm.a = w;
    gm.lda = p->rows;
    gm.b = (const unsigned char *)x + c0 * p->elem_bytes;
    gm.ldb = p->x_size;
    gm.c = c;
    gm.ldc = ldc;
    return qkv_blas_gemm_run(io, &gm);
}

static qkv_status convt_run(qkv_kernel_io *io, const convt_plan *p)
{
    const size_t eb = p->elem_bytes;
    const unsigned char *x = io->inputs[0].data, *w = io->inputs[1].data;
    unsigned char *y = io->outputs[0].data;
    for (size_t n = 0; n < p->n; n++) {
        for (size_t grp = 0; grp < p->group; grp++) {
            const unsigned char *xg = x + (n * p->c + grp * p->cg) * p->x_size * eb;
            const unsigned char *wg = w + grp * p->cg * p->rows * eb;
            unsigned char *yg = y + (n * p->m + grp * p->mg) * p->y_size * eb;
            if (p->pointwise) {
                qkv_status st = convt_gemm(io, p, wg, xg, yg, p->y_size, 0, p->x_size, 1);
                if (st != QKV_OK)
                    return st;
                continue;
            }
            for (size_t c0 = 0; c0 < p->x_size; c0 += p->tile) {
                size_t c1 = c0 + p->tile < p->x_size ? c0 + p->tile : p->x_size;
                qkv_status st = convt_gemm(io, p, wg, xg, io->scratch, c1 - c0, c0, c1, 0);
                if (st != QKV_OK)
                    return st;
                col2im_run r = {.p = p, .col = io->scratch, .y = yg, .col0 = c0, .col1 = c1};
                qkv_run_range(io, p->mg, p->rows * (c1 - c0) * eb, col2im_range, &r);
            }
        }
    }
    return QKV_OK;
}

/* ---- callbacks ------------------------------------------------------------------------- */

static qkv_status convt_init(const qkv_kernel *kernel, const qkv_host_api *host,
                             const qkv_node_ctx *node, void **state)
{
    (void)kernel;
    convt_state *s = malloc(sizeof *s);
    if (!s)
        return NERR(host, node, QKV_ERR_OUT_OF_MEMORY, "kernel state");
    qkv_status st = qkv_conv_attrs_parse(
        host, node, QKV_CONV_PARSE_GROUP | QKV_CONV_PARSE_TRANSPOSE, &s->attrs);
    if (st != QKV_OK) {
        free(s);
        return st;
    }
    *state = s;
    return QKV_OK;
}

static void convt_destroy(void *state) { free(state); }

/* Checks X, W and B against each other where their dims are known. */
static qkv_status convt_check(const convt_state *s, qkv_kernel_io *io)
{
    const qkv_tensor *x = &io->inputs[0], *w = &io->inputs[1];
    const char *(*name)(qkv_dtype) = io->host->dtype_name;
    if (w->dtype != x->dtype)
        return KERR(io, QKV_ERR_TYPE, "input 1 'W' is %s but input 0 'X' is %s: they must match",
                    name(w->dtype), name(x->dtype));
    if (x->rank >= 0 && x->rank < 3)
        return KERR(io, QKV_ERR_SHAPE,
                    "input 0 'X' has rank %d, expected (N, C, D1, ...) of rank >= 3", (int)x->rank);
    if (x->rank >= 0 && w->rank >= 0 && w->rank != x->rank)
        return KERR(io, QKV_ERR_SHAPE,
                    "input 1 'W' has rank %d but input 0 'X' has rank %d: they must match",
                    (int)w->rank, (int)x->rank);
    int64_t group = s->attrs.group;
    if (x->rank >= 2 && x->dims[1] >= 0 && x->dims[1] % group != 0)
        return KERR(io, QKV_ERR_SHAPE,
                    "input 0 'X' has %lld channels, not a multiple of group %lld",
                    (long long)x->dims[1], (long long)group);
    if (w->rank >= 1 && x->rank >= 2 && x->dims[1] >= 0 && w->dims[0] >= 0 &&
        w->dims[0] != x->dims[1])
        return KERR(io, QKV_ERR_SHAPE,
                    "input 1 'W' has %lld input channels but input 0 'X' has %lld",
                    (long long)w->dims[0], (long long)x->dims[1]);
    if (qkv_present(io, 2)) {
        const qkv_tensor *b = &io->inputs[2];
        int64_t m = w->rank >= 2 && w->dims[1] >= 0 ? w->dims[1] * group : -1;
        if (b->dtype != x->dtype)
            return KERR(io, QKV_ERR_TYPE, "input 2 'B' is %s but input 0 'X' is %s", name(b->dtype),
                        name(x->dtype));
        if (b->rank >= 0 && (b->rank != 1 || (m >= 0 && b->dims[0] >= 0 && b->dims[0] != m)))
            return KERR(io, QKV_ERR_SHAPE,
                        "input 2 'B' must be 1-D with one value per output channel (%lld)",
                        (long long)m);
    }
    return QKV_OK;
}

static qkv_status convt_infer(void *state, qkv_kernel_io *io)
{
    const convt_state *s = state;
    const qkv_tensor *x = &io->inputs[0], *w = &io->inputs[1];
    qkv_tensor *y = &io->outputs[0];
    y->dtype = x->dtype;
    y->rank = -1;
    qkv_status st = convt_check(s, io);
    if (st != QKV_OK || x->rank < 0)
        return st;
    int32_t ns = x->rank - 2;
    y->rank = x->rank;
    y->dims[0] = x->dims[0];
    y->dims[1] = w->rank >= 2 && w->dims[1] >= 0 ? w->dims[1] * s->attrs.group : -1;
    int64_t kernel[QKV_CONV_MAX_SPATIAL];
    bool known = true;
    for (int32_t i = 0; i < ns; i++) {
        kernel[i] = w->rank == x->rank ? w->dims[2 + i] : -1;
        if (kernel[i] < 0 && s->attrs.has_kernel_shape && s->attrs.n_spatial == ns)
            kernel[i] = s->attrs.kernel_shape[i];
        known = known && kernel[i] >= 0;
    }
    if (!known) {
        for (int32_t i = 0; i < ns; i++)
            y->dims[2 + i] = s->attrs.has_output_shape && s->attrs.n_spatial == ns
                                 ? s->attrs.output_shape[i]
                                 : -1;
        return QKV_OK;
    }
    qkv_conv_geom g;
    st = qkv_conv_geom_transpose(io, &s->attrs, ns, x->dims + 2, kernel, &g);
    if (st != QKV_OK)
        return st;
    for (int32_t i = 0; i < ns; i++)
        y->dims[2 + i] = g.in[i];
    return QKV_OK;
}

/* The scratch the float/double compute needs: one column tile. */
static bool convt_float_scratch(const convt_plan *p, size_t *bytes)
{
    *bytes = 0;
    return p->pointwise || !__builtin_mul_overflow(p->rows * p->elem_bytes, p->tile, bytes);
}

static qkv_status convt_prepare(void *state, qkv_kernel_io *io)
{
    convt_plan p;
    qkv_status st = convt_plan_make(state, io, &p);
    if (st != QKV_OK)
        return st;
    size_t bytes;
    if (!convt_float_scratch(&p, &bytes) ||
        (qkv_is_half(io->inputs[0].dtype) && !qkv_half_scratch_bytes(io, bytes, &bytes)))
        return KERR(io, QKV_ERR_UNSUPPORTED, "convolution too large for its scratch");
    io->scratch_bytes = bytes;
    qkv_blas_gemm gm = {
        .m = p.rows, .n = p.x_size, .k = p.cg, .lda = p.rows, .ldb = p.x_size, .ldc = p.y_size};
    if (!qkv_blas_gemm_fits(&gm))
        return KERR(io, QKV_ERR_UNSUPPORTED,
                    "convolution too large for the GEMM: m=%zu n=%zu k=%zu", gm.m, gm.n, gm.k);
    return QKV_OK;
}

/* float or double */
static qkv_status convt_compute_float(const void *state, qkv_kernel_io *io)
{
    convt_plan p;
    qkv_status st = convt_plan_make(state, io, &p);
    if (st != QKV_OK)
        return st;
    if (p.n * p.m * p.y_size == 0)
        return QKV_OK;
    const qkv_tensor *b = qkv_present(io, 2) ? &io->inputs[2] : NULL;
    qkv_conv_fill_planes(io, p.n * p.m, p.m, p.y_size, p.elem_bytes, b ? b->data : NULL,
                         io->outputs[0].data);
    if (p.cg == 0 || p.x_size == 0 || p.rows == 0)
        return QKV_OK; /* nothing reaches Y: the bias alone */
    return convt_run(io, &p);
}

static qkv_status convt_compute(const void *state, qkv_kernel_io *io)
{
    if (!qkv_is_half(io->inputs[0].dtype))
        return convt_compute_float(state, io);
    convt_plan p;
    size_t bytes;
    qkv_status st = convt_plan_make(state, io, &p);
    if (st != QKV_OK)
        return st;
    convt_float_scratch(&p, &bytes); /* prepare checked it */
    return qkv_half_run_as_f32(state, io, bytes, convt_compute_float);
}

#define CONVT_KERNEL(since, until, types)                                                          \
    {                                                                                              \
        QKV_KERNEL_V1, .domain = "", .op_type = "ConvTranspose", .since_version = (since),         \
                       .until_version = (until), .min_inputs = 2, .max_inputs = 3,                 \
                       .min_outputs = 1, .max_outputs = 1, .n_input_types = 1,                     \
                       .input_types = {(types)}, .init = convt_init, .infer = convt_infer,         \
                       .prepare = convt_prepare, .compute = convt_compute,                         \
                       .destroy = convt_destroy,                                                   \
    }

/* One descriptor per opset that changed ConvTranspose (11: the schema's
 * optional attributes; 22: bfloat16); float and double behave alike. */
static const qkv_kernel kernels[] = {
    CONVT_KERNEL(1, 10, QKV_TYPES_FLOATS | QKV_T(FLOAT16)),
    CONVT_KERNEL(11, 21, QKV_TYPES_FLOATS | QKV_T(FLOAT16)),
    CONVT_KERNEL(22, 0, QKV_TYPES_FLOATS | QKV_T(FLOAT16) | QKV_T(BFLOAT16)),
};

/* The ConvTranspose descriptors; *count set to their number. */
const qkv_kernel *qkv_ops_conv_transpose(size_t *count)
{
    *count = sizeof kernels / sizeof kernels[0];
    return kernels;
}
