/*
 * matmul_integer.c - MatMulInteger (opset 10) and QLinearMatMul (10, 21) on
 * qkv's int8 GEMM (igemm.h), with numpy matmul shapes (matmul_shape.h).
 *
 *   MatMulInteger: Y (int32) = (A - a_zero_point) @ (B - b_zero_point)
 *   QLinearMatMul: y = saturate(round(acc * (a_scale * b_scale / y_scale)) + y_zero_point)
 *                  with acc that integer product
 *
 * A and B are uint8 or int8, independently. A's zero point (and scale) is
 * per tensor (one element), per row (1-D of M elements, for every batch
 * entry) or per row of each batch entry (A's batch dims, then (M, 1)); B's
 * per tensor, per column (1-D of N) or per column of each batch entry (B's
 * batch dims, then (1, N)). QLinearMatMul's zero points have their scales'
 * shapes; y_scale and y_zero_point are single elements. The multiplier is
 * computed in float32, (a_scale * b_scale) / y_scale, as ONNX Runtime does,
 * and the product rounded to nearest even.
 *
 * When B is a constant of rank 2 it is packed once per session (prepack);
 * when B is the same matrix for every batch entry and A is contiguous, the
 * batch folds into M. QLinearMatMul's int32 product lives in scratch and is
 * requantized block by block by the thread that computed it.
 *
 * Deviations: QLinearMatMul-21's float16/bfloat16 scales are not supported
 * (a type error).
 */
#include <math.h>
#include <stdlib.h>

#include "igemm.h"
#include "kernel_util.h"
#include "matmul_shape.h"

/* Input positions of the two ops. */
typedef struct mm_inputs {
    size_t a, a_scale, a_zero, b, b_scale, b_zero, y_scale, y_zero; /* SIZE_MAX: none */
} mm_inputs;

static const mm_inputs MMI_INPUTS = {0, SIZE_MAX, 2, 1, SIZE_MAX, 3, SIZE_MAX, SIZE_MAX};
static const mm_inputs QLMM_INPUTS = {0, 1, 2, 3, 4, 5, 6, 7};

/* State: NULL, or the packed B when prepack packed one. */
typedef struct mm_state {
    qkv_igemm_packed_b b;
} mm_state;

/* How a per-row (A) or per-column (B) parameter spreads over the product:
 * element `idx * stride` plus the batch offset from batch_strides. */
typedef struct param_layout {
    size_t stride;
    size_t batch_strides[QKV_MAX_RANK];
    bool per_batch; /* has the operand's batch dims */
} param_layout;

static bool present(const qkv_kernel_io *io, size_t k)
{
    return k != SIZE_MAX && qkv_present(io, k);
}

/* ---- the GEMM description ------------------------------------------------------ */

/*
 * The layout of parameter input `input` (zero point or scale) of operand
 * input x_input (A when rows, else B), whose rows (columns) number len:
 * QKV_ERR_SHAPE when it is none of the shapes in the file comment.
 */
static qkv_status param_layout_make(qkv_kernel_io *io, size_t input, const char *what,
                                    size_t x_input, bool rows, size_t len, param_layout *pl)
{
    const qkv_tensor *p = &io->inputs[input], *x = &io->inputs[x_input];
    char b1[96], b2[96];
    memset(pl, 0, sizeof *pl);
    size_t n = qkv_numel(p);
    if (n == 1)
        return QKV_OK;
    if (p->rank == 1 && (size_t)p->dims[0] == len) {
        pl->stride = 1;
        return QKV_OK;
    }
    bool ok = x->rank >= 2 && p->rank == x->rank;
    for (int32_t j = 0; ok && j < x->rank - 2; j++)
        ok = p->dims[j] == x->dims[j];
    if (ok)
        ok = rows ? ((size_t)p->dims[p->rank - 2] == len && p->dims[p->rank - 1] == 1)
                  : (p->dims[p->rank - 2] == 1 && (size_t)p->dims[p->rank - 1] == len);
    if (!ok)
        return KERR(io, QKV_ERR_SHAPE,
                    "input %zu (%s) %s fits neither per tensor nor per %s of input %zu %s "
                    "(expected one element, %zu elements, or %s's batch dims then %s)",
                    input, what, qkv_dims_str(p, b1, sizeof b1), rows ? "row" : "column", x_input,
                    qkv_dims_str(x, b2, sizeof b2), len, rows ? "A" : "B",
                    rows ? "(M, 1)" : "(1, N)");
    pl->stride = 1;
    pl->per_batch = true;
    return QKV_OK;
}

/* Everything compute needs for one shape. */
typedef struct mm_plan {
    qkv_igemm g;
    param_layout za, zb, sa, sb; /* zero points and scales */
} mm_plan;

/*
 * Fills p for the known shapes of io: batch strides of A, B, C, and of the
 * parameters (which follow their operand's batch dims, divided by k), then
 * folds the batch into M when it can. Shape errors of the parameters.
 */
static qkv_status mm_plan_make(qkv_kernel_io *io, const mm_inputs *in, int32_t *c_data, mm_plan *p)
{
    const qkv_tensor *a = &io->inputs[in->a], *b = &io->inputs[in->b];
    const qkv_tensor *y = &io->outputs[0];
    qkv_igemm *g = &p->g;
    memset(p, 0, sizeof *p);
    int32_t ra = a->rank, rb = b->rank;
    g->m = ra >= 2 ? (size_t)a->dims[ra - 2] : 1;
    g->k = (size_t)a->dims[ra - 1];
    g->n = rb >= 2 ? (size_t)b->dims[rb - 1] : 1;
    g->a = a->data;
    g->lda = g->k;
    g->a_signed = a->dtype == QKV_DTYPE_INT8;
    g->b = b->data;
    g->ldb = g->n;
    g->b_signed = b->dtype == QKV_DTYPE_INT8;
    g->c = c_data;
    g->ldc = g->n;
    qkv_status st = QKV_OK;
    if (present(io, in->a_zero)) {
        st = param_layout_make(io, in->a_zero, "zero point", in->a, true, g->m, &p->za);
        g->a_zero = io->inputs[in->a_zero].data;
        g->a_zero_stride = p->za.stride;
    }
    if (st == QKV_OK && present(io, in->b_zero)) {
        st = param_layout_make(io, in->b_zero, "zero point", in->b, false, g->n, &p->zb);
        g->b_zero = io->inputs[in->b_zero].data;
        g->b_zero_stride = p->zb.stride;
    }
    if (st == QKV_OK && present(io, in->a_scale))
        st = param_layout_make(io, in->a_scale, "scale", in->a, true, g->m, &p->sa);
    if (st == QKV_OK && present(io, in->b_scale))
        st = param_layout_make(io, in->b_scale, "scale", in->b, false, g->n, &p->sb);
    if (st != QKV_OK)
        return st;
    int32_t nba = ra > 2 ? ra - 2 : 0, nbb = rb > 2 ? rb - 2 : 0;
    int32_t nb = nba > nbb ? nba : nbb;
    g->batch_rank = nb;
    size_t sa = g->m * g->k, sb = g->k * g->n, sc = g->m * g->n, spa = g->m, spb = g->n;
    for (int32_t j = nb - 1; j >= 0; j--) {
        int32_t ja = j - (nb - nba), jb = j - (nb - nbb);
        size_t da = ja >= 0 ? (size_t)a->dims[ja] : 1, db = jb >= 0 ? (size_t)b->dims[jb] : 1;
        g->batch_dims[j] = (size_t)y->dims[j];
        g->a_strides[j] = da == 1 ? 0 : sa;
        g->b_strides[j] = db == 1 ? 0 : sb;
        g->c_strides[j] = sc;
        size_t pa = da == 1 ? 0 : spa, pb = db == 1 ? 0 : spb;
        p->za.batch_strides[j] = p->za.per_batch ? pa : 0;
        p->sa.batch_strides[j] = p->sa.per_batch ? pa : 0;
        p->zb.batch_strides[j] = p->zb.per_batch ? pb : 0;
        p->sb.batch_strides[j] = p->sb.per_batch ? pb : 0;
        sa *= da;
        sb *= db;
        sc *= g->batch_dims[j];
        spa *= da;
        spb *= db;
    }
    memcpy(g->a_zero_strides, p->za.batch_strides, sizeof g->a_zero_strides);
    memcpy(g->b_zero_strides, p->zb.batch_strides, sizeof g->b_zero_strides);
    /* Fold: B shared by every entry, A (and the per-row parameters) covering
     * the entries contiguously: one (nbatch * m, k) product. */
    if (nb == 0 || ra < 2)
        return QKV_OK;
    size_t nbatch = 1;
    for (int32_t j = 0; j < nb; j++) {
        if (g->b_strides[j] != 0 || (g->batch_dims[j] != 1 && g->a_strides[j] == 0))
            return QKV_OK;
        nbatch *= g->batch_dims[j];
    }
    bool rows_shared = (p->za.stride && !p->za.per_batch) || (p->sa.stride && !p->sa.per_batch);
    if (rows_shared && nbatch > 1)
        return QKV_OK; /* a per-row parameter repeats for every entry */
    g->m *= nbatch;
    g->batch_rank = 0;
    return QKV_OK;
}

/* ---- callbacks ---------------------------------------------------------------- */

static qkv_status mm_infer_common(qkv_kernel_io *io, const mm_inputs *in, qkv_dtype out)
{
    const qkv_tensor *a = &io->inputs[in->a], *b = &io->inputs[in->b];
    qkv_tensor *y = &io->outputs[0];
    if (present(io, in->a_zero) && io->inputs[in->a_zero].dtype != a->dtype)
        return KERR(io, QKV_ERR_TYPE, "input %zu (A's zero point) is %s but input %zu (A) is %s",
                    in->a_zero, io->host->dtype_name(io->inputs[in->a_zero].dtype), in->a,
                    io->host->dtype_name(a->dtype));
    if (present(io, in->b_zero) && io->inputs[in->b_zero].dtype != b->dtype)
        return KERR(io, QKV_ERR_TYPE, "input %zu (B's zero point) is %s but input %zu (B) is %s",
                    in->b_zero, io->host->dtype_name(io->inputs[in->b_zero].dtype), in->b,
                    io->host->dtype_name(b->dtype));
    y->dtype = out;
    return qkv_matmul_shape(io, a, b, in->b, y);
}

static qkv_status mmi_infer(void *state, qkv_kernel_io *io)
{
    (void)state;
    return mm_infer_common(io, &MMI_INPUTS, QKV_DTYPE_INT32);
}

static qkv_status qlmm_infer(void *state, qkv_kernel_io *io)
{
    (void)state;
    const qkv_tensor *yz = &io->inputs[QLMM_INPUTS.y_zero];
    return mm_infer_common(io, &QLMM_INPUTS, yz->dtype);
}

static qkv_status mm_prepack(void **state, const qkv_host_api *host, const qkv_node_ctx *node,
                             size_t b_input)
{
    qkv_igemm_packed_b pb;
    qkv_status st = qkv_igemm_prepack_b(host, node, b_input, false, &pb);
    if (st != QKV_OK || !pb.data)
        return st;
    mm_state *s = malloc(sizeof *s);
    if (!s) {
        qkv_igemm_packed_free(&pb);
        return NERR(host, node, QKV_ERR_OUT_OF_MEMORY, "out of memory");
    }
    s->b = pb;
    *state = s;
    return QKV_OK;
}

static qkv_status mmi_prepack(void **state, const qkv_host_api *host, const qkv_node_ctx *node)
{
    return mm_prepack(state, host, node, MMI_INPUTS.b);
}

static qkv_status qlmm_prepack(void **state, const qkv_host_api *host, const qkv_node_ctx *node)
{
    return mm_prepack(state, host, node, QLMM_INPUTS.b);
}

static void mm_destroy(void *state)
{
    mm_state *s = state;
    if (s)
        qkv_igemm_packed_free(&s->b);
    free(s);
}

/* Checks shared by both ops' prepare: the parameter shapes, the packed B. */
static qkv_status mm_prepare_common(const mm_state *s, qkv_kernel_io *io, const mm_inputs *in)
{
    mm_plan p;
    qkv_status st = mm_plan_make(io, in, NULL, &p);
    if (st != QKV_OK)
        return st;
    if (s && (s->b.k != p.g.k || s->b.n != p.g.n))
        return KERR(io, QKV_ERR_INTERNAL,
                    "input %zu was packed as (%zu, %zu) but the plan multiplies by (%zu, %zu)",
                    in->b, s->b.k, s->b.n, p.g.k, p.g.n);
    return QKV_OK;
}

static qkv_status mmi_prepare(void *state, qkv_kernel_io *io)
{
    return mm_prepare_common(state, io, &MMI_INPUTS);
}

static qkv_status mmi_compute(const void *state, qkv_kernel_io *io)
{
    const mm_state *s = state;
    mm_plan p;
    qkv_status st = mm_plan_make(io, &MMI_INPUTS, io->outputs[0].data, &p);
    if (st != QKV_OK)
        return st;
    const qkv_igemm_arch *arch = qkv_igemm_arch_select(io->host->cpu_features());
    qkv_igemm_run(io->host, io->host_ctx, arch, &p.g, s ? &s->b : NULL, NULL);
    return QKV_OK;
}

/* ---- QLinearMatMul's requantization --------------------------------------------------- */

typedef struct requant {
    const mm_plan *p;
    const int32_t *c0; /* the int32 product's start: offsets into it are offsets into y */
    void *y;
    bool y_signed;
    const float *a_scale, *b_scale;
    float y_scale, y_zero;
} requant;

/* The offsets of batch entry `batch` into the per-row and per-column scales. */
static void scale_offsets(const mm_plan *p, size_t batch, size_t *oa, size_t *ob)
{
    *oa = *ob = 0;
    for (int32_t j = p->g.batch_rank - 1; j >= 0; j--) {
        size_t coord = batch % p->g.batch_dims[j];
        batch /= p->g.batch_dims[j];
        *oa += coord * p->sa.batch_strides[j];
        *ob += coord * p->sb.batch_strides[j];
    }
}

static void requant_block(const void *arg, size_t batch, int32_t *c, size_t ldc, size_t row0,
                          size_t col0, size_t rows, size_t cols)
{
    const requant *r = arg;
    size_t oa, ob;
    scale_offsets(r->p, batch, &oa, &ob);
    size_t off = (size_t)(c - r->c0);
    for (size_t i = 0; i < rows; i++) {
        float sa = r->a_scale[oa + (row0 + i) * r->p->sa.stride];
        for (size_t j = 0; j < cols; j++) {
            float mult = sa * r->b_scale[ob + (col0 + j) * r->p->sb.stride] / r->y_scale;
            float v = rintf((float)c[i * ldc + j] * mult) + r->y_zero;
            qkv_igemm_store_q8(r->y, r->y_signed, off + i * ldc + j, v, r->y_zero);
        }
    }
}

static qkv_status qlmm_prepare(void *state, qkv_kernel_io *io)
{
    qkv_status st = mm_prepare_common(state, io, &QLMM_INPUTS);
    if (st != QKV_OK)
        return st;
    const qkv_tensor *ys = &io->inputs[QLMM_INPUTS.y_scale], *yz = &io->inputs[QLMM_INPUTS.y_zero];
    if (qkv_numel(ys) != 1 || qkv_numel(yz) != 1)
        return KERR(io, QKV_ERR_SHAPE,
                    "inputs 6 (y_scale) and 7 (y_zero_point) must have one "
                    "element each, they have %zu and %zu",
                    qkv_numel(ys), qkv_numel(yz));
    size_t n = qkv_numel(&io->outputs[0]);
    if (n > SIZE_MAX / sizeof(int32_t))
        return KERR(io, QKV_ERR_UNSUPPORTED, "output too large for the int32 scratch");
    io->scratch_bytes = n * sizeof(int32_t);
    return QKV_OK;
}

static qkv_status qlmm_compute(const void *state, qkv_kernel_io *io)
{
    const mm_state *s = state;
    mm_plan p;
    qkv_status st = mm_plan_make(io, &QLMM_INPUTS, io->scratch, &p);
    if (st != QKV_OK)
        return st;
    const qkv_tensor *yz = &io->inputs[QLMM_INPUTS.y_zero];
    bool y_signed = yz->dtype == QKV_DTYPE_INT8;
    requant r = {.p = &p,
                 .c0 = io->scratch,
                 .y = io->outputs[0].data,
                 .y_signed = y_signed,
                 .a_scale = io->inputs[QLMM_INPUTS.a_scale].data,
                 .b_scale = io->inputs[QLMM_INPUTS.b_scale].data,
                 .y_scale = *(const float *)io->inputs[QLMM_INPUTS.y_scale].data,
                 .y_zero = y_signed ? (float)*(const int8_t *)yz->data
                                    : (float)*(const uint8_t *)yz->data};
    qkv_igemm_post post = {.fn = requant_block, .arg = &r};
    const qkv_igemm_arch *arch = qkv_igemm_arch_select(io->host->cpu_features());
    qkv_igemm_run(io->host, io->host_ctx, arch, &p.g, s ? &s->b : NULL, &post);
    return QKV_OK;
}

/* ---- descriptors ------------------------------------------------------------------ */

#define Q8 (QKV_T(UINT8) | QKV_T(INT8))

static const qkv_kernel kernels[] = {
    {
        QKV_KERNEL_V1,
        .domain = "",
        .op_type = "MatMulInteger",
        .since_version = 10,
        .until_version = 0,
        .min_inputs = 2,
        .max_inputs = 4,
        .min_outputs = 1,
        .max_outputs = 1,
        .n_input_types = 4,
        .input_types = {Q8, Q8, Q8, Q8},
        .infer = mmi_infer,
        .prepare = mmi_prepare,
        .compute = mmi_compute,
        .destroy = mm_destroy,
        .prepack = mmi_prepack,
    },
    {
        QKV_KERNEL_V1,
        .domain = "",
        .op_type = "QLinearMatMul",
        .since_version = 10,
        .until_version = 0,
        .min_inputs = 8,
        .max_inputs = 8,
        .min_outputs = 1,
        .max_outputs = 1,
        .n_input_types = 8,
        .input_types = {Q8, QKV_T(FLOAT), Q8, Q8, QKV_T(FLOAT), Q8, QKV_T(FLOAT), Q8},
        .infer = qlmm_infer,
        .prepare = qlmm_prepare,
        .compute = qlmm_compute,
        .destroy = mm_destroy,
        .prepack = qlmm_prepack,
    },
};

/* The MatMulInteger and QLinearMatMul descriptors; *count set to their number. */
const qkv_kernel *qkv_ops_matmul_integer(size_t *count)
{
    *count = sizeof kernels / sizeof kernels[0];
    return kernels;
}
