/*
 * depth_space.c - DepthToSpace (opsets 1, 11, 13) and SpaceToDepth (opsets
 * 1, 13).
 *
 * X is (N, C, H, W) and b the `blocksize` attribute (required, > 0).
 *   DepthToSpace: Y is (N, C / b^2, H * b, W * b) with
 *     DCR mode (the default; the only one before opset 11):
 *       Y[n, c, h*b + i, w*b + j] = X[n, (i*b + j) * C/b^2 + c, h, w]
 *     CRD mode:
 *       Y[n, c, h*b + i, w*b + j] = X[n, c*b^2 + i*b + j, h, w]
 *   SpaceToDepth: Y is (N, C * b^2, H / b, W / b) with
 *       Y[n, (i*b + j) * C + c, h, w] = X[n, c, h*b + i, w*b + j]
 * C not divisible by b^2 (DepthToSpace), or H or W not divisible by b
 * (SpaceToDepth), is QKV_ERR_SHAPE.
 *
 * Any element type of whole bytes (strings, in the spec's type list, are
 * not supported). Output rows are split across threads when large.
 */
#include <stdlib.h>
#include <string.h>

#include "kernel_util.h"

typedef enum ds_mode { DS_DCR, DS_CRD, DS_S2D } ds_mode;

typedef struct ds_attrs {
    int64_t b;
    ds_mode mode;
} ds_attrs;

typedef struct ds_run {
    const unsigned char *x;
    unsigned char *y;
    size_t es;         /* element bytes */
    size_t b, c, h, w; /* X's channels and spatial dims */
    size_t oc, oh, ow; /* Y's */
    ds_mode mode;
} ds_run;

/* parallel_for body: output rows [begin, end) of (N * oc * oh) rows. */
static void ds_range(void *arg, size_t begin, size_t end)
{
    const ds_run *r = arg;
    const size_t b = r->b, es = r->es;
    for (size_t row = begin; row < end; row++) {
        size_t oy = row % r->oh, plane = row / r->oh;
        size_t oc = plane % r->oc, n = plane / r->oc;
        unsigned char *y = r->y + row * r->ow * es;
        if (r->mode == DS_S2D) {
            /* oc = (i*b + j) * C + c: the row reads every b-th element of
             * input row oy*b + i from column j */
            size_t c = oc % r->c, ij = oc / r->c, i = ij / b, j = ij % b;
            const unsigned char *x = r->x + (((n * r->c + c) * r->h + oy * b + i) * r->w + j) * es;
            for (size_t ox = 0; ox < r->ow; ox++)
                qkv_copy_block(y + ox * es, x + ox * b * es, es);
            continue;
        }
        /* DepthToSpace: output row (oc, oy) takes row h = oy / b of b input
         * channels (one per j), interleaved */
        size_t h = oy / b, i = oy % b;
        for (size_t j = 0; j < b; j++) {
            size_t ic = r->mode == DS_DCR ? (i * b + j) * r->oc + oc : (oc * b + i) * b + j;
            const unsigned char *x = r->x + (((n * r->c + ic) * r->h + h) * r->w) * es;
            for (size_t w = 0; w < r->w; w++)
                qkv_copy_block(y + (w * b + j) * es, x + w * es, es);
        }
    }
}

/* ---- callbacks ----------------------------------------------------------- */

static qkv_status ds_init(const qkv_kernel *kernel, const qkv_host_api *host,
                          const qkv_node_ctx *node, void **state)
{
    bool s2d = strcmp(kernel->op_type, "SpaceToDepth") == 0;
    int64_t b;
    const char *mode = "DCR";
    qkv_status st = host->attr_int(node, "blocksize", 0, &b);
    if (st == QKV_OK && !s2d && host->node_opset(node) >= 11)
        st = host->attr_string(node, "mode", "DCR", &mode);
    if (st != QKV_OK)
        return st;
    if (host->attr_type(node, "blocksize") == QKV_ATTR_UNDEFINED)
        return NERR(host, node, QKV_ERR_INVALID_MODEL, "attribute blocksize is missing");
    /* b^2 must fit an int64 */
    if (b <= 0 || b > INT32_MAX)
        return NERR(host, node, QKV_ERR_INVALID_MODEL,
                    "attribute blocksize=%lld is out of range (1 to %d)", (long long)b, INT32_MAX);
    ds_mode m = DS_S2D;
    if (!s2d) {
        if (strcmp(mode, "DCR") == 0)
            m = DS_DCR;
        else if (strcmp(mode, "CRD") == 0)
            m = DS_CRD;
        else
            return NERR(host, node, QKV_ERR_INVALID_MODEL, "attribute mode='%s' is not DCR or CRD",
                        mode);
    }
    ds_attrs *s = calloc(1, sizeof *s);
    if (!s)
        return NERR(host, node, QKV_ERR_OUT_OF_MEMORY, "kernel state");
    s->b = b;
    s->mode = m;
    *state = s;
    return QKV_OK;
}

static void ds_destroy(void *state) { free(state); }

static qkv_status ds_infer(void *state, qkv_kernel_io *io)
{
    const ds_attrs *s = state;
    const qkv_tensor *x = &io->inputs[0];
    qkv_tensor *y = &io->outputs[0];
    qkv_set_shape(y, x->dtype, x->rank, x->dims);
    if (x->rank < 0)
        return QKV_OK;
    char a[96];
    if (x->rank != 4)
        return KERR(io, QKV_ERR_SHAPE, "input 0 'input' has rank %d, expected 4 (N, C, H, W)",
                    x->rank);
    const int64_t b = s->b, bb = b * b, c = x->dims[1];
    if (s->mode == DS_S2D) {
        for (int k = 2; k < 4; k++)
            if (x->dims[k] >= 0 && x->dims[k] % b != 0)
                return KERR(io, QKV_ERR_SHAPE,
                            "input 0 'input' has shape %s: dim %d is not a multiple of "
                            "blocksize %lld",
                            qkv_dims_str(x, a, sizeof a), k, (long long)b);
        if (c > INT64_MAX / bb)
            return KERR(io, QKV_ERR_SHAPE,
                        "input 0 'input' has shape %s: channels times blocksize^2 = %lld "
                        "overflow",
                        qkv_dims_str(x, a, sizeof a), (long long)bb);
        y->dims[1] = c < 0 ? -1 : c * bb;
        y->dims[2] = x->dims[2] < 0 ? -1 : x->dims[2] / b;
        y->dims[3] = x->dims[3] < 0 ? -1 : x->dims[3] / b;
        return QKV_OK;
    }
    if (c >= 0 && c % bb != 0)
        return KERR(io, QKV_ERR_SHAPE,
                    "input 0 'input' has shape %s: channels %lld are not a multiple of "
                    "blocksize^2 = %lld",
                    qkv_dims_str(x, a, sizeof a), (long long)c, (long long)bb);
    y->dims[1] = c < 0 ? -1 : c / bb;
    for (int k = 2; k < 4; k++) {
        int64_t d = x->dims[k];
        if (d > INT64_MAX / b)
            return KERR(io, QKV_ERR_SHAPE,
                        "input 0 'input' has shape %s: dim %d times blocksize %lld overflows",
                        qkv_dims_str(x, a, sizeof a), k, (long long)b);
        y->dims[k] = d < 0 ? -1 : d * b;
    }
    return QKV_OK;
}

static qkv_status ds_compute(const void *state, qkv_kernel_io *io)
{
    const ds_attrs *s = state;
    const qkv_tensor *x = &io->inputs[0];
    const qkv_tensor *y = &io->outputs[0];
    size_t es = qkv_elem_bytes(x->dtype);
    if (es == 0)
        return KERR(io, QKV_ERR_TYPE, "input 0 'input' has type %s, not supported",
                    io->host->dtype_name(x->dtype));
    if (x->rank != 4)
        return KERR(io, QKV_ERR_SHAPE, "input 0 'input' has rank %d, expected 4", x->rank);
    ds_run r = {.x = x->data,
                .y = y->data,
                .es = es,
                .b = (size_t)s->b,
                .mode = s->mode,
                .c = (size_t)x->dims[1],
                .h = (size_t)x->dims[2],
                .w = (size_t)x->dims[3],
                .oc = (size_t)y->dims[1],
                .oh = (size_t)y->dims[2],
                .ow = (size_t)y->dims[3]};
    size_t rows = (size_t)y->dims[0] * r.oc * r.oh;
    if (rows == 0 || r.ow == 0)
        return QKV_OK;
    qkv_run_range(io, rows, qkv_numel(y) * es, ds_range, &r);
    return QKV_OK;
}

#define DS_KERNEL(OP, SINCE, UNTIL)                                                                \
    {                                                                                              \
        QKV_KERNEL_V1, .domain = "", .op_type = (OP), .since_version = (SINCE),                    \
                       .until_version = (UNTIL), .min_inputs = 1, .max_inputs = 1,                 \
                       .min_outputs = 1, .max_outputs = 1, .n_input_types = 1,                     \
                       .input_types = {QKV_TYPES_BYTES}, .init = ds_init, .infer = ds_infer,       \
                       .compute = ds_compute, .destroy = ds_destroy,                               \
    }

static const qkv_kernel kernels[] = {
    DS_KERNEL("DepthToSpace", 1, 10), DS_KERNEL("DepthToSpace", 11, 12),
    DS_KERNEL("DepthToSpace", 13, 0), DS_KERNEL("SpaceToDepth", 1, 12),
    DS_KERNEL("SpaceToDepth", 13, 0),
};

/* The DepthToSpace and SpaceToDepth descriptors; *count set to their number. */
const qkv_kernel *qkv_ops_depth_space(size_t *count)
{
    *count = sizeof kernels / sizeof kernels[0];
    return kernels;
}
