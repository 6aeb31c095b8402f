/*
 * conv.c - Conv (opsets 1, 11, 22): X (N, C, D1..Dn) convolved with
 * W (M, C / group, k1..kn), plus an optional bias B (M), into
 * Y (N, M, O1..On), for any n >= 1 spatial dims, with groups, strides,
 * dilations, explicit pads and every auto_pad (geometry: conv_geom.h).
 *
 * Types: float and double; float16 (and bfloat16 from opset 22) computed
 * in float32 scratch copies and rounded once at the end.
 *
 * Four ways to compute, chosen in prepare from the shapes (and from
 * whether prepack packed W):
 *  - depthwise (float, one input channel per group: group == C, or a
 *    single input channel, as wav2vec2's first conv over raw audio): the
 *    direct convolution of conv_depthwise.h, on SIMD row kernels, planes
 *    split over the threads, each worker with a padded copy of the input
 *    channel in its own scratch slot;
 *  - direct 1-D (float32, grouped with several channels per group, constant
 *    W, packed in prepack: wav2vec2's positional conv): conv_direct1d.h,
 *    which skips the taps that read only padding;
 *  - pointwise (every kernel dim 1, stride 1, no pad): X is already the
 *    GEMM's B, so Y[n, g] = W[g] @ X[n, g] runs as one batched GEMM;
 *  - otherwise im2col: for each (image, group), tiles of the
 *    (C/group * K, O) column matrix are built in scratch (at most
 *    COL_TILE_BYTES, rows split over threads) and multiplied by
 *    W[g] (M/group, C/group * K) into a column block of Y.
 * The GEMMs go to host->gemm, the session's GEMM (qkv's own, or a backend's),
 * which splits them over the threads. With a bias, Y starts as the bias
 * and the GEMMs accumulate into it (beta 1); without, they write it.
 *
 * Other constant weights are not prepacked: W is the GEMM's left operand, which
 * qkv's GEMM packs per block of Y in any case, and packing it once would
 * save about as much as it costs to multiply the other way round (Y^T =
 * col^T W^T with a packed W^T) and transpose Y back.
 */
#include <stdlib.h>
#include <string.h>

#include "blas.h"
#include "conv_depthwise.h"
#include "conv_direct1d.h"
#include "conv_geom.h"
#include "half.h"
#include "kernel_util.h"

/* The largest column tile built in scratch: the GEMM's B operand, sized to
 * stay mostly in L2 while several blocks of Y read it. */
#define COL_TILE_BYTES ((size_t)2 << 20)

typedef struct conv_state {
    qkv_conv_attrs attrs;
    qkv_direct1d_weights packed; /* W packed for the direct 1-D path; data NULL: none */
} conv_state;

/* How prepare decided to compute (recomputed in compute from the shapes). */
typedef enum conv_path { CONV_DEPTHWISE, CONV_DIRECT1D, CONV_POINTWISE, CONV_IM2COL } conv_path;

/* Everything compute needs, derived from the concrete shapes. */
typedef struct conv_plan {
    qkv_conv_geom g;
    conv_path path;
    size_t n, c, m, group;    /* batch, input channels, output channels, groups */
    size_t cg, mg;            /* channels per group in X and Y */
    size_t ksize;             /* kernel positions K */
    size_t in_size, out_size; /* spatial positions of X and of Y */
    size_t rows;              /* cg * ksize: rows of the column matrix */
    size_t tile;              /* columns of Y per im2col tile */
    size_t elem_bytes;
    qkv_dwconv_plan dw;   /* the depthwise path's plan */
    qkv_direct1d_plan d1; /* the direct 1-D path's plan */
} conv_plan;

/* ---- the plan ---------------------------------------------------------------------- */

static qkv_status conv_plan_make(const conv_state *s, qkv_kernel_io *io, conv_plan *p)
{
    const qkv_tensor *x = &io->inputs[0], *w = &io->inputs[1];
    memset(p, 0, sizeof *p);
    int32_t ns = x->rank - 2;
    qkv_status st = qkv_conv_geom_forward(io, &s->attrs, ns, x->dims + 2, w->dims + 2, &p->g);
    if (st != QKV_OK)
        return st;
    p->n = (size_t)x->dims[0];
    p->c = (size_t)x->dims[1];
    p->m = (size_t)w->dims[0];
    p->group = (size_t)s->attrs.group;
    p->cg = p->c / p->group;
    p->mg = p->m / p->group;
    p->elem_bytes = x->dtype == QKV_DTYPE_DOUBLE ? sizeof(double) : sizeof(float);
    if (!qkv_conv_geom_kernel_size(&p->g, &p->ksize) ||
        !qkv_conv_geom_in_size(&p->g, &p->in_size) ||
        !qkv_conv_geom_out_size(&p->g, &p->out_size) ||
        __builtin_mul_overflow(p->cg, p->ksize, &p->rows))
        return KERR(io, QKV_ERR_UNSUPPORTED, "convolution too large: sizes overflow");
    if (s->packed.data) {
        /* W was packed: its original may be gone, so this is the only path
         * (prepack packs only a float32 W of rank 3 with cg > 1: X is too) */
        p->path = CONV_DIRECT1D;
        if (!qkv_direct1d_plan_init(&p->d1, &p->g, p->n, p->c, &s->packed))
            return KERR(io, QKV_ERR_UNSUPPORTED, "convolution too large: sizes overflow");
    } else if (p->elem_bytes == sizeof(float) && p->cg == 1 && (p->group > 1 || p->c == 1)) {
        p->path = CONV_DEPTHWISE;
        if (!qkv_dwconv_plan_init(&p->dw, &p->g, p->n, p->c, p->mg))
            return KERR(io, QKV_ERR_UNSUPPORTED, "convolution too large: sizes overflow");
    } else if (qkv_conv_geom_is_pointwise(&p->g))
        p->path = CONV_POINTWISE;
    else
        p->path = CONV_IM2COL;
    if (p->path == CONV_IM2COL) {
        size_t row_bytes = (p->rows ? p->rows : 1) * p->elem_bytes;
        size_t tile = COL_TILE_BYTES / row_bytes;
        tile = tile >= 64 ? tile / 64 * 64 : 64; /* whole GEMM panels, never fewer than 64 */
        p->tile = tile < p->out_size ? tile : p->out_size;
    }
    return QKV_OK;
}

/* ---- GEMM paths -------------------------------------------------------------------------- */

/* Y[n, g] = W[g] @ X[n, g] + beta * Y[n, g] for every (n, g): one batched
 * GEMM. */
static qkv_status conv_pointwise(qkv_kernel_io *io, const conv_plan *p, const void *x,
                                 const void *w, void *y, double beta)
{
    qkv_blas_gemm gm;
    memset(&gm, 0, sizeof gm);
    gm.dtype = io->inputs[0].dtype;
    gm.m = p->mg;
    gm.n = p->out_size;
    gm.k = p->cg;
    gm.alpha = 1;
    gm.beta = beta;
    gm.a = w;
    gm.lda = p->cg;
    gm.b = x;
    gm.ldb = p->out_size;
    gm.c = y;
    gm.ldc = p->out_size;
    gm.batch_rank = 2;
    gm.batch_dims[0] = p->n;
    gm.batch_dims[1] = p->group;
    gm.a_strides[0] = 0;
    gm.a_strides[1] = p->mg * p->cg;
    gm.b_strides[0] = p->c * p->in_size;
    gm.b_strides[1] = p->cg * p->in_size;
    gm.c_strides[0] = p->m * p->out_size;
    gm.c_strides[1] = p->mg * p->out_size;
    return qkv_blas_gemm_run(io, &gm);
}

typedef struct im2col_run {
    const conv_plan *p;
    const void *x; /* the group's first channel of one image */
    void *col;
    size_t col0, col1;
} im2col_run;

static void im2col_range(void *arg, size_t begin, size_t end)
{
    const im2col_run *r = arg;
    const conv_plan *p = r->p;
    qkv_im2col(&p->g, p->elem_bytes, r->x, p->cg, begin, end, r->col0, r->col1,
               (unsigned char *)r->col + begin * (r->col1 - r->col0) * p->elem_bytes,
               r->col1 - r->col0, NULL);
}

/* For each (n, g) and column tile: im2col into scratch, then
 * Y[n, g][:, tile] = W[g] @ col + beta * Y[n, g][:, tile]. */
static qkv_status conv_im2col(qkv_kernel_io *io, const conv_plan *p, const void *x, const void *w,
                              void *y, double beta)
{
    const size_t eb = p->elem_bytes;
    for (size_t n = 0; n < p->n; n++) {
        for (size_t grp = 0; grp < p->group; grp++) {
            const unsigned char *xg =
                (const unsigned char *)x + (n * p->c + grp * p->cg) * p->in_size * eb;
            unsigned char *yg = (unsigned char *)y + (n * p->m + grp * p->mg) * p->out_size * eb;
            for (size_t c0 = 0; c0 < p->out_size; c0 += p->tile) {
                size_t c1 = c0 + p->tile < p->out_size ? c0 + p->tile : p->out_size;
                im2col_run r = {.p = p, .x = xg, .col = io->scratch, .col0 = c0, .col1 = c1};
                qkv_run_range(io, p->rows, p->rows * (c1 - c0) * eb, im2col_range, &r);
                qkv_blas_gemm gm;
                memset(&gm, 0, sizeof gm);
                gm.dtype = io->inputs[0].dtype;
                gm.m = p->mg;
                gm.n = c1 - c0;
                gm.k = p->rows;
                gm.alpha = 1;
                gm.beta = beta;
                gm.a = (const unsigned char *)w + grp * p->mg * p->rows * eb;
                gm.lda = p->rows;
                gm.b = io->scratch;
                gm.ldb = c1 - c0;
                gm.c = yg + c0 * eb;
                gm.ldc = p->out_size;
                qkv_status st = qkv_blas_gemm_run(io, &gm);
                if (st != QKV_OK)
                    return st;
            }
        }
    }
    return QKV_OK;
}

/* ---- callbacks ------------------------------------------------------------------------- */

static qkv_status conv_init(const qkv_kernel *kernel, const qkv_host_api *host,
                            const qkv_node_ctx *node, void **state)
{
    (void)kernel;
    conv_state *s = calloc(1, sizeof *s);
    if (!s)
        return NERR(host, node, QKV_ERR_OUT_OF_MEMORY, "kernel state");
    qkv_status st = qkv_conv_attrs_parse(host, node, QKV_CONV_PARSE_GROUP, &s->attrs);
    if (st != QKV_OK) {
        free(s);
        return st;
    }
    *state = s;
    return QKV_OK;
}

static void conv_destroy(void *state)
{
    conv_state *s = state;
    if (s)
        qkv_direct1d_weights_free(&s->packed);
    free(s);
}

/* Packs a constant float32 W (M, C/group, kernel) of a grouped 1-D
 * convolution with several channels per group for the direct 1-D path,
 * for the best variant the CPU runs. Any other W is left as it is. */
static qkv_status conv_prepack(void **state, const qkv_host_api *host, const qkv_node_ctx *node)
{
    conv_state *s = *state;
    if (!QKV_HOST_HAS(host, node_input_const) || !QKV_HOST_HAS(host, node_input_packed))
        return QKV_OK;
    const qkv_tensor *w = host->node_input_const(node, 1);
    if (!w || !w->data || w->dtype != QKV_DTYPE_FLOAT || w->rank != 3 || s->attrs.group < 2 ||
        w->dims[0] <= 0 || w->dims[1] < 2 || w->dims[2] <= 0 || w->dims[0] % s->attrs.group != 0)
        return QKV_OK; /* conv_check reports a bad W */
    uint64_t features = QKV_HOST_HAS(host, cpu_features) ? host->cpu_features() : 0;
    qkv_direct1d_weights pw;
    if (!qkv_direct1d_pack(w->data, (size_t)w->dims[0], (size_t)w->dims[1], (size_t)w->dims[2],
                           (size_t)s->attrs.group, qkv_direct1d_select(features), &pw))
        return NERR(host, node, QKV_ERR_OUT_OF_MEMORY, "out of memory packing input 1 'W'");
    size_t bytes = pw.group * pw.chunks * pw.cg * pw.ksize * pw.cw * sizeof(float);
    qkv_status st = host->node_input_packed(node, 1, bytes);
    if (st != QKV_OK) {
        qkv_direct1d_weights_free(&pw);
        return st;
    }
    s->packed = pw;
    return QKV_OK;
}

/* Checks X, W and B against each other where their dims are known. */
static qkv_status conv_check(const conv_state *s, qkv_kernel_io *io)
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
    if (w->rank >= 2 && x->rank >= 2 && x->dims[1] >= 0 && w->dims[1] >= 0 &&
        w->dims[1] * group != x->dims[1])
        return KERR(io, QKV_ERR_SHAPE,
                    "input 1 'W' has %lld input channels per group, so %lld with group %lld, but "
                    "input 0 'X' has %lld channels",
                    (long long)w->dims[1], (long long)(w->dims[1] * group), (long long)group,
                    (long long)x->dims[1]);
    if (w->rank >= 1 && w->dims[0] >= 0 && w->dims[0] % group != 0)
        return KERR(io, QKV_ERR_SHAPE,
                    "input 1 'W' has %lld output channels, not a multiple of group %lld",
                    (long long)w->dims[0], (long long)group);
    if (qkv_present(io, 2)) {
        const qkv_tensor *b = &io->inputs[2];
        if (b->dtype != x->dtype)
            return KERR(io, QKV_ERR_TYPE, "input 2 'B' is %s but input 0 'X' is %s", name(b->dtype),
                        name(x->dtype));
        if (b->rank >= 0 && (b->rank != 1 || (w->rank >= 1 && w->dims[0] >= 0 && b->dims[0] >= 0 &&
                                              b->dims[0] != w->dims[0])))
            return KERR(io, QKV_ERR_SHAPE,
                        "input 2 'B' must be 1-D with one value per output channel (%lld)",
                        (long long)(w->rank >= 1 ? w->dims[0] : -1));
    }
    return QKV_OK;
}

static qkv_status conv_infer(void *state, qkv_kernel_io *io)
{
    const conv_state *s = state;
    const qkv_tensor *x = &io->inputs[0], *w = &io->inputs[1];
    qkv_tensor *y = &io->outputs[0];
    y->dtype = x->dtype;
    y->rank = -1;
    qkv_status st = conv_check(s, io);
    if (st != QKV_OK || x->rank < 0)
        return st;
    int32_t ns = x->rank - 2;
    y->rank = x->rank;
    y->dims[0] = x->dims[0];
    y->dims[1] = w->rank >= 1 ? w->dims[0] : -1;
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
            y->dims[2 + i] = -1;
        return QKV_OK;
    }
    qkv_conv_geom g;
    st = qkv_conv_geom_forward(io, &s->attrs, ns, x->dims + 2, kernel, &g);
    if (st != QKV_OK)
        return st;
    for (int32_t i = 0; i < ns; i++)
        y->dims[2 + i] = g.out[i];
    return QKV_OK;
}

/* The scratch the float/double compute needs: one column tile, or for
 * the direct paths a slot (a padded channel, or accumulators) per share of
 * the work, 4 shares per thread (conv_depthwise.c, conv_direct1d.c). */
#define CONV_SHARES_PER_THREAD 4
static bool conv_float_scratch(const conv_plan *p, qkv_kernel_io *io, size_t *bytes)
{
    *bytes = 0;
    size_t threads = io->host->thread_count(io->host_ctx);
    size_t shares = threads > 1 ? threads * CONV_SHARES_PER_THREAD : 1;
    if (p->path == CONV_DEPTHWISE)
        return qkv_dwconv_scratch_bytes(&p->dw, shares, bytes);
    if (p->path == CONV_DIRECT1D)
        return qkv_direct1d_scratch_bytes(&p->d1, shares, bytes);
    return p->path != CONV_IM2COL ||
           !__builtin_mul_overflow(p->rows * p->elem_bytes, p->tile, bytes);
}

static qkv_status conv_prepare(void *state, qkv_kernel_io *io)
{
    conv_plan p;
    qkv_status st = conv_plan_make(state, io, &p);
    if (st != QKV_OK)
        return st;
    size_t bytes;
    if (!conv_float_scratch(&p, io, &bytes) ||
        (qkv_is_half(io->inputs[0].dtype) && !qkv_half_scratch_bytes(io, bytes, &bytes)))
        return KERR(io, QKV_ERR_UNSUPPORTED, "convolution too large for its scratch");
    io->scratch_bytes = bytes;
    qkv_blas_gemm gm = {.m = p.mg,
                        .n = p.out_size,
                        .k = p.rows,
                        .lda = p.rows,
                        .ldb = p.out_size,
                        .ldc = p.out_size};
    if (!qkv_blas_gemm_fits(&gm))
        return KERR(io, QKV_ERR_UNSUPPORTED,
                    "convolution too large for the GEMM: m=%zu n=%zu k=%zu", gm.m, gm.n, gm.k);
    return QKV_OK;
}

/* float or double */
static qkv_status conv_compute_float(const void *state, qkv_kernel_io *io)
{
    conv_plan p;
    qkv_status st = conv_plan_make(state, io, &p);
    if (st != QKV_OK)
        return st;
    const qkv_tensor *b = qkv_present(io, 2) ? &io->inputs[2] : NULL;
    void *y = io->outputs[0].data;
    if (p.n * p.m * p.out_size == 0)
        return QKV_OK;
    if (p.path == CONV_DEPTHWISE) {
        size_t need;
        qkv_dwconv_scratch_bytes(&p.dw, 1, &need); /* prepare checked the size */
        if (io->scratch_bytes < need)
            return KERR(io, QKV_ERR_INTERNAL, "scratch of %zu bytes, %zu needed", io->scratch_bytes,
                        need);
        qkv_dwconv_run(io, &p.dw, io->inputs[0].data, io->inputs[1].data, b ? b->data : NULL, y,
                       io->scratch, io->scratch_bytes);
        return QKV_OK;
    }
    if (p.path == CONV_DIRECT1D) {
        const conv_state *s = state;
        size_t need;
        qkv_direct1d_scratch_bytes(&p.d1, 1, &need); /* prepare checked the size */
        if (io->scratch_bytes < need)
            return KERR(io, QKV_ERR_INTERNAL, "scratch of %zu bytes, %zu needed", io->scratch_bytes,
                        need);
        qkv_direct1d_run(io, &p.d1, &s->packed, io->inputs[0].data, b ? b->data : NULL, y,
                         io->scratch, io->scratch_bytes);
        return QKV_OK;
    }
    /* each GEMM writes its own block of Y once: it adds to the bias, or
     * overwrites Y when there is none */
    if (b || p.rows == 0)
        qkv_conv_fill_planes(io, p.n * p.m, p.m, p.out_size, p.elem_bytes, b ? b->data : NULL, y);
    if (p.rows == 0)
        return QKV_OK; /* no input channels: the bias alone */
    double beta = b ? 1 : 0;
    if (p.path == CONV_POINTWISE)
        return conv_pointwise(io, &p, io->inputs[0].data, io->inputs[1].data, y, beta);
    return conv_im2col(io, &p, io->inputs[0].data, io->inputs[1].data, y, beta);
}

static qkv_status conv_compute(const void *state, qkv_kernel_io *io)
{
    if (!qkv_is_half(io->inputs[0].dtype))
        return conv_compute_float(state, io);
    /* the float compute gets what prepare declared beyond the float32
     * copies (its depthwise slots depend on the thread count) */
    size_t copies;
    if (!qkv_half_scratch_bytes(io, 0, &copies) || copies > io->scratch_bytes)
        return KERR(io, QKV_ERR_INTERNAL, "scratch of %zu bytes, more needed", io->scratch_bytes);
    return qkv_half_run_as_f32(state, io, io->scratch_bytes - copies, conv_compute_float);
}

#define CONV_KERNEL(since, until, types)                                                           \
    {                                                                                              \
        QKV_KERNEL_V1, .domain = "", .op_type = "Conv", .since_version = (since),                  \
                       .until_version = (until), .min_inputs = 2, .max_inputs = 3,                 \
                       .min_outputs = 1, .max_outputs = 1, .n_input_types = 1,                     \
                       .input_types = {(types)}, .init = conv_init, .infer = conv_infer,           \
                       .prepare = conv_prepare, .compute = conv_compute, .destroy = conv_destroy,  \
                       .prepack = conv_prepack,                                                    \
    }

/* One descriptor per opset that changed Conv: 11 only reworded the schema,
 * 22 added bfloat16; the semantics are the same in all three. */
static const qkv_kernel kernels[] = {
    CONV_KERNEL(1, 10, QKV_TYPES_FLOATS | QKV_T(FLOAT16)),
    CONV_KERNEL(11, 21, QKV_TYPES_FLOATS | QKV_T(FLOAT16)),
    CONV_KERNEL(22, 0, QKV_TYPES_FLOATS | QKV_T(FLOAT16) | QKV_T(BFLOAT16)),
};

/* The Conv descriptors; *count set to their number. */
const qkv_kernel *qkv_ops_conv(size_t *count)
{
    *count = sizeof kernels / sizeof kernels[0];
    return kernels;
}
