/*
 * conv_integer.c - ConvInteger (opset 10) and QLinearConv (10) on the int8
 * GEMM (igemm.h), with the window geometry and im2col of conv_geom.h.
 *
 *   ConvInteger: Y (int32) = conv(x - x_zero_point, w - w_zero_point)
 *   QLinearConv: y = saturate(round((acc + B[m]) * (x_scale * w_scale[m] / y_scale))
 *                + y_zero_point), acc that integer convolution
 *
 * x (N, C, D1..Dn) and w (M, C / group, k1..kn) are each uint8 or int8; any
 * number of spatial dims, groups, strides, dilations, pads, auto_pad. x's
 * zero point is per tensor; w's per tensor or per output channel (1-D of
 * M), and so is w_scale. B is an optional int32 bias of M.
 *
 * Per image and group: the group's weights (M / group, C / group * K) are
 * the GEMM's A, the image's im2col (C / group * K, P) its B, padded with
 * x's zero point so that padding adds nothing; a 1x1 window with stride 1
 * and no padding multiplies the image itself. The GEMM splits each product
 * over the threads. QLinearConv requantizes each block of the int32 product
 * (in scratch) as it is finished.
 */
#include <math.h>
#include <stdlib.h>

#include "conv_geom.h"
#include "igemm.h"
#include "kernel_util.h"

typedef struct ci_state {
    bool qlinear;
    qkv_conv_attrs attrs;
} ci_state;

/* Input positions of the two ops. */
typedef struct ci_inputs {
    size_t x, x_scale, x_zero, w, w_scale, w_zero, y_scale, y_zero, bias; /* SIZE_MAX: none */
} ci_inputs;

static const ci_inputs CI_INPUTS = {0, SIZE_MAX, 2, 1, SIZE_MAX, 3, SIZE_MAX, SIZE_MAX, SIZE_MAX};
static const ci_inputs QLC_INPUTS = {0, 1, 2, 3, 4, 5, 6, 7, 8};

static const ci_inputs *inputs_of(const ci_state *s)
{
    return s->qlinear ? &QLC_INPUTS : &CI_INPUTS;
}

static bool present(const qkv_kernel_io *io, size_t k)
{
    return k != SIZE_MAX && qkv_present(io, k);
}

/* Everything compute needs for one shape. */
typedef struct ci_plan {
    qkv_conv_geom g;
    size_t n, c, m, groups;
    size_t cg, mg; /* channels and output channels per group */
    size_t ksize;  /* kernel positions */
    size_t rows;   /* cg * ksize: the GEMM's k */
    size_t in_size, out_size;
    bool pointwise;
    size_t w_zero_stride, w_scale_stride; /* 0 per tensor, 1 per channel */
} ci_plan;

static qkv_status ci_init(const qkv_kernel *kernel, const qkv_host_api *host,
                          const qkv_node_ctx *node, void **state)
{
    (void)kernel;
    ci_state s = {.qlinear = strcmp(host->node_op_type(node), "QLinearConv") == 0};
    qkv_status st = qkv_conv_attrs_parse(host, node, QKV_CONV_PARSE_GROUP, &s.attrs);
    if (st != QKV_OK)
        return st;
    ci_state *p = malloc(sizeof *p);
    if (!p)
        return NERR(host, node, QKV_ERR_OUT_OF_MEMORY, "kernel state");
    *p = s;
    *state = p;
    return QKV_OK;
}

static void ci_destroy(void *state) { free(state); }

/* A per-tensor or per-output-channel parameter: its stride (0 or 1), or
 * QKV_ERR_SHAPE naming it. */
static qkv_status channel_param(qkv_kernel_io *io, size_t input, const char *what, size_t m,
                                size_t *stride)
{
    const qkv_tensor *p = &io->inputs[input];
    char b[96];
    *stride = 0;
    size_t n = qkv_numel(p);
    if (n == 1 && p->rank <= 1)
        return QKV_OK;
    if (p->rank == 1 && n == m) {
        *stride = 1;
        return QKV_OK;
    }
    return KERR(io, QKV_ERR_SHAPE,
                "input %zu (%s) %s must be a scalar or 1-D of the %zu output "
                "channels",
                input, what, qkv_dims_str(p, b, sizeof b), m);
}

/* Shapes, dtypes and geometry checks shared by infer (ranks and known dims
 * only) and the plan. */
static qkv_status ci_check(const ci_state *s, qkv_kernel_io *io)
{
    const ci_inputs *in = inputs_of(s);
    const qkv_tensor *x = &io->inputs[in->x], *w = &io->inputs[in->w];
    char bx[96], bw[96];
    if (present(io, in->x_zero) && io->inputs[in->x_zero].dtype != x->dtype)
        return KERR(io, QKV_ERR_TYPE, "input %zu (x's zero point) is %s but input 0 (x) is %s",
                    in->x_zero, io->host->dtype_name(io->inputs[in->x_zero].dtype),
                    io->host->dtype_name(x->dtype));
    if (present(io, in->w_zero) && io->inputs[in->w_zero].dtype != w->dtype)
        return KERR(io, QKV_ERR_TYPE, "input %zu (w's zero point) is %s but input %zu (w) is %s",
                    in->w_zero, io->host->dtype_name(io->inputs[in->w_zero].dtype), in->w,
                    io->host->dtype_name(w->dtype));
    if (s->qlinear && io->inputs[in->y_zero].dtype == QKV_DTYPE_INT32)
        return KERR(io, QKV_ERR_TYPE, "input 7 (y_zero_point) is int32, expected uint8 or int8");
    if (present(io, in->bias) && io->inputs[in->bias].dtype != QKV_DTYPE_INT32)
        return KERR(io, QKV_ERR_TYPE, "input 8 (B) is %s, expected int32",
                    io->host->dtype_name(io->inputs[in->bias].dtype));
    if (x->rank < 0 || w->rank < 0)
        return QKV_OK;
    if (x->rank < 3)
        return KERR(io, QKV_ERR_SHAPE, "input 0 (x) %s must have rank >= 3 (N, C, spatial...)",
                    qkv_dims_str(x, bx, sizeof bx));
    if (w->rank != x->rank)
        return KERR(io, QKV_ERR_SHAPE, "input %zu (w) %s must have the rank of input 0 (x) %s",
                    in->w, qkv_dims_str(w, bw, sizeof bw), qkv_dims_str(x, bx, sizeof bx));
    int64_t groups = s->attrs.group, c = x->dims[1], m = w->dims[0], cg = w->dims[1];
    if (c >= 0 && cg >= 0 && c != cg * groups)
        return KERR(io, QKV_ERR_SHAPE,
                    "input 0 (x) %s has %lld channels but input %zu (w) %s "
                    "expects %lld x group %lld",
                    qkv_dims_str(x, bx, sizeof bx), (long long)c, in->w,
                    qkv_dims_str(w, bw, sizeof bw), (long long)cg, (long long)groups);
    if (m >= 0 && m % groups != 0)
        return KERR(io, QKV_ERR_SHAPE,
                    "input %zu (w) has %lld output channels, not a multiple "
                    "of group %lld",
                    in->w, (long long)m, (long long)groups);
    return QKV_OK;
}

static qkv_status ci_infer(void *state, qkv_kernel_io *io)
{
    const ci_state *s = state;
    const ci_inputs *in = inputs_of(s);
    const qkv_tensor *x = &io->inputs[in->x], *w = &io->inputs[in->w];
    qkv_tensor *y = &io->outputs[0];
    y->dtype = s->qlinear ? io->inputs[in->y_zero].dtype : QKV_DTYPE_INT32;
    y->rank = -1;
    qkv_status st = ci_check(s, io);
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
        known = known && kernel[i] >= 0;
    }
    if (!known) {
        for (int32_t i = 0; i < ns; i++)
            y->dims[2 + i] = -1;
        return QKV_OK;
    }
    qkv_conv_geom g;
    st = qkv_conv_geom_forward(io, &s->attrs, ns, x->dims + 2, kernel, &g);
    for (int32_t i = 0; st == QKV_OK && i < ns; i++)
        y->dims[2 + i] = g.out[i];
    return st;
}

/* The plan for the known shapes of io. */
static qkv_status ci_plan_make(const ci_state *s, qkv_kernel_io *io, ci_plan *p)
{
    const ci_inputs *in = inputs_of(s);
    const qkv_tensor *x = &io->inputs[in->x], *w = &io->inputs[in->w];
    memset(p, 0, sizeof *p);
    qkv_status st = ci_check(s, io);
    if (st != QKV_OK)
        return st;
    int32_t ns = x->rank - 2;
    st = qkv_conv_geom_forward(io, &s->attrs, ns, x->dims + 2, w->dims + 2, &p->g);
    if (st != QKV_OK)
        return st;
    p->n = (size_t)x->dims[0];
    p->c = (size_t)x->dims[1];
    p->m = (size_t)w->dims[0];
    p->groups = (size_t)s->attrs.group;
    p->cg = (size_t)w->dims[1];
    p->mg = p->m / p->groups;
    if (!qkv_conv_geom_kernel_size(&p->g, &p->ksize) ||
        !qkv_conv_geom_in_size(&p->g, &p->in_size) ||
        !qkv_conv_geom_out_size(&p->g, &p->out_size) ||
        __builtin_mul_overflow(p->cg, p->ksize, &p->rows))
        return KERR(io, QKV_ERR_UNSUPPORTED, "convolution too large");
    p->pointwise = qkv_conv_geom_is_pointwise(&p->g);
    const qkv_tensor *xz = present(io, in->x_zero) ? &io->inputs[in->x_zero] : NULL;
    if (xz && qkv_numel(xz) != 1)
        return KERR(io, QKV_ERR_SHAPE,
                    "input %zu (x's zero point) must have one element, it has "
                    "%zu",
                    in->x_zero, qkv_numel(xz));
    if (present(io, in->x_scale) && qkv_numel(&io->inputs[in->x_scale]) != 1)
        return KERR(io, QKV_ERR_SHAPE, "input %zu (x_scale) must have one element", in->x_scale);
    if (present(io, in->w_zero))
        st = channel_param(io, in->w_zero, "w's zero point", p->m, &p->w_zero_stride);
    if (st == QKV_OK && present(io, in->w_scale))
        st = channel_param(io, in->w_scale, "w_scale", p->m, &p->w_scale_stride);
    if (st != QKV_OK)
        return st;
    if (s->qlinear) {
        if (qkv_numel(&io->inputs[in->y_scale]) != 1 || qkv_numel(&io->inputs[in->y_zero]) != 1)
            return KERR(io, QKV_ERR_SHAPE,
                        "inputs 6 (y_scale) and 7 (y_zero_point) must have "
                        "one element each");
        if (present(io, in->bias)) {
            const qkv_tensor *b = &io->inputs[in->bias];
            if (b->rank != 1 || (size_t)b->dims[0] != p->m)
                return KERR(io, QKV_ERR_SHAPE,
                            "input 8 (B) must be 1-D of the %zu output "
                            "channels",
                            p->m);
        }
    }
    return QKV_OK;
}

static qkv_status ci_prepare(void *state, qkv_kernel_io *io)
{
    const ci_state *s = state;
    ci_plan p;
    qkv_status st = ci_plan_make(s, io, &p);
    if (st != QKV_OK)
        return st;
    size_t col = p.pointwise ? 0 : p.rows, acc = s->qlinear ? p.mg : 0, bytes;
    /* col (rows, P) bytes, then the int32 product (mg, P), 64-byte aligned */
    if (__builtin_mul_overflow(col, p.out_size, &col) ||
        __builtin_mul_overflow(acc, p.out_size * sizeof(int32_t), &acc) ||
        __builtin_add_overflow((col + 63) / 64 * 64, acc, &bytes))
        return KERR(io, QKV_ERR_UNSUPPORTED, "convolution too large for its scratch");
    io->scratch_bytes = bytes;
    return QKV_OK;
}

/* ---- QLinearConv's requantization -------------------------------------------------- */

typedef struct ci_requant {
    const ci_plan *p;
    size_t m0; /* the group's first output channel */
    void *y;   /* the group's first output element */
    bool y_signed;
    const float *w_scale;
    const int32_t *bias; /* NULL: none */
    float x_scale, y_scale, y_zero;
} ci_requant;

static void requant_block(const void *arg, size_t batch, int32_t *c, size_t ldc, size_t row0,
                          size_t col0, size_t rows, size_t cols)
{
    (void)batch;
    const ci_requant *r = arg;
    size_t P = r->p->out_size;
    for (size_t i = 0; i < rows; i++) {
        size_t ch = r->m0 + row0 + i;
        float mult = r->x_scale * r->w_scale[ch * r->p->w_scale_stride] / r->y_scale;
        uint32_t b = r->bias ? (uint32_t)r->bias[ch] : 0;
        for (size_t j = 0; j < cols; j++) {
            int32_t acc = (int32_t)((uint32_t)c[i * ldc + j] + b);
            float v = rintf((float)acc * mult) + r->y_zero;
            qkv_igemm_store_q8(r->y, r->y_signed, (row0 + i) * P + col0 + j, v, r->y_zero);
        }
    }
}

static qkv_status ci_compute(const void *state, qkv_kernel_io *io)
{
    const ci_state *s = state;
    const ci_inputs *in = inputs_of(s);
    ci_plan p;
    qkv_status st = ci_plan_make(s, io, &p);
    if (st != QKV_OK)
        return st;
    const qkv_tensor *x = &io->inputs[in->x], *w = &io->inputs[in->w];
    bool x_signed = x->dtype == QKV_DTYPE_INT8, w_signed = w->dtype == QKV_DTYPE_INT8;
    const void *xz = present(io, in->x_zero) ? io->inputs[in->x_zero].data : NULL;
    const uint8_t *wz = present(io, in->w_zero) ? io->inputs[in->w_zero].data : NULL;
    uint8_t pad = xz ? *(const uint8_t *)xz : 0;
    uint8_t *col = io->scratch;
    int32_t *acc =
        s->qlinear ? (int32_t *)(void *)((uint8_t *)io->scratch +
                                         (p.pointwise ? 0 : (p.rows * p.out_size + 63) / 64 * 64))
                   : NULL;
    const qkv_igemm_arch *arch = qkv_igemm_arch_select(io->host->cpu_features());
    ci_requant r = {.p = &p};
    qkv_igemm_post post = {.fn = requant_block, .arg = &r};
    if (s->qlinear) {
        const qkv_tensor *yz = &io->inputs[in->y_zero];
        r.y_signed = yz->dtype == QKV_DTYPE_INT8;
        r.w_scale = io->inputs[in->w_scale].data;
        r.bias = present(io, in->bias) ? io->inputs[in->bias].data : NULL;
        r.x_scale = *(const float *)io->inputs[in->x_scale].data;
        r.y_scale = *(const float *)io->inputs[in->y_scale].data;
        r.y_zero =
            r.y_signed ? (float)*(const int8_t *)yz->data : (float)*(const uint8_t *)yz->data;
    }
    size_t esize = s->qlinear ? 1 : sizeof(int32_t);
    for (size_t img = 0; img < p.n; img++) {
        const uint8_t *ximg = (const uint8_t *)x->data + img * p.c * p.in_size;
        for (size_t gi = 0; gi < p.groups; gi++) {
            const uint8_t *xg = ximg + gi * p.cg * p.in_size;
            const uint8_t *b = xg;
            if (!p.pointwise) {
                qkv_im2col(&p.g, 1, xg, p.cg, 0, p.rows, 0, p.out_size, col, p.out_size, &pad);
                b = col;
            }
            size_t m0 = gi * p.mg;
            uint8_t *yg = (uint8_t *)io->outputs[0].data + (img * p.m + m0) * p.out_size * esize;
            qkv_igemm g = {.m = p.mg,
                           .n = p.out_size,
                           .k = p.rows,
                           .a = (const uint8_t *)w->data + m0 * p.rows,
                           .lda = p.rows,
                           .a_signed = w_signed,
                           .b = b,
                           .ldb = p.out_size,
                           .b_signed = x_signed,
                           .c = s->qlinear ? acc : (int32_t *)(void *)yg,
                           .ldc = p.out_size,
                           .a_zero = wz ? wz + m0 * p.w_zero_stride : NULL,
                           .a_zero_stride = p.w_zero_stride,
                           .b_zero = xz};
            r.m0 = m0;
            r.y = yg;
            qkv_igemm_run(io->host, io->host_ctx, arch, &g, NULL, s->qlinear ? &post : NULL);
        }
    }
    return QKV_OK;
}

/* ---- descriptors ------------------------------------------------------------------ */

#define Q8 (QKV_T(UINT8) | QKV_T(INT8))

static const qkv_kernel kernels[] = {
    {
        QKV_KERNEL_V1,
        .domain = "",
        .op_type = "ConvInteger",
        .since_version = 10,
        .until_version = 0,
        .min_inputs = 2,
        .max_inputs = 4,
        .min_outputs = 1,
        .max_outputs = 1,
        .n_input_types = 4,
        .input_types = {Q8, Q8, Q8, Q8},
        .init = ci_init,
        .infer = ci_infer,
        .prepare = ci_prepare,
        .compute = ci_compute,
        .destroy = ci_destroy,
    },
    {
        QKV_KERNEL_V1,
        .domain = "",
        .op_type = "QLinearConv",
        .since_version = 10,
        .until_version = 0,
        .min_inputs = 8,
        .max_inputs = 9,
        .min_outputs = 1,
        .max_outputs = 1,
        .n_input_types = 8,
        /* the last entry covers y_zero_point and B: ci_check tells them apart */
        .input_types = {Q8, QKV_T(FLOAT), Q8, Q8, QKV_T(FLOAT), Q8, QKV_T(FLOAT),
                        Q8 | QKV_T(INT32)},
        .init = ci_init,
        .infer = ci_infer,
        .prepare = ci_prepare,
        .compute = ci_compute,
        .destroy = ci_destroy,
    },
};

/* The ConvInteger and QLinearConv descriptors; *count set to their number. */
const qkv_kernel *qkv_ops_conv_integer(size_t *count)
{
    *count = sizeof kernels / sizeof kernels[0];
    return kernels;
}
