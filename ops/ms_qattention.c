/*
 * ms_qattention.c - com.microsoft.QAttention (since 1), the Attention that
 * ONNX Runtime's quantize_dynamic writes for a BERT layer: the packed Q/K/V
 * projection in 8-bit integers, the attention in float32:
 *
 *   qkv = (input - input_zero_point) @ (weight - weight_zero_point)
 *         * (input_scale * weight_scale) + bias
 *
 * then as com.microsoft.Attention (ms_attention.c, shared through
 * ms_attention.h): num_heads, unidirectional, scale, mask_filter_value; the
 * mask_index forms; past (2, B, N, P, H) and present.
 *
 *   input              uint8 or int8 (B, S, Di)
 *   weight             uint8 or int8 (Di, 3 D)
 *   bias               float32 (3 D)
 *   input_scale        float32 scalar (or 1 element)
 *   weight_scale       float32 scalar, or (3 D) per column
 *   mask_index         int32, optional
 *   input_zero_point   input's type, scalar, optional (0)
 *   weight_zero_point  weight's type, scalar or (3 D) per column, optional (0)
 *   past               float32 (2, B, N, P, H), optional
 *
 * The integer product runs on igemm.h (VNNI where the CPU has it) with a
 * constant weight packed once per session; each finished block is scaled
 * to float in place, bias added, in the projection buffer the attention
 * then reads. The scales and zero points of another shape or type are
 * QKV_ERR_SHAPE / QKV_ERR_TYPE naming the input.
 */
#include <stdlib.h>
#include <string.h>

#include "igemm.h"
#include "kernel_util.h"
#include "ms_attention.h"
#include "ms_dequant.h"

enum { IN_X, IN_W, IN_BIAS, IN_X_SCALE, IN_W_SCALE, IN_MASK, IN_X_ZERO, IN_W_ZERO, IN_PAST };

static const char *const qattention_names[] = {"input",
                                               "weight",
                                               "bias",
                                               "input_scale",
                                               "weight_scale",
                                               "mask_index",
                                               "input_zero_point",
                                               "weight_zero_point",
                                               "past"};

static const qkv_msa_inputs qattention_inputs = {
    .x = IN_X,
    .w = IN_W,
    .bias = IN_BIAS,
    .mask = IN_MASK,
    .past = IN_PAST,
    .attn_bias = -1,
    .past_len = -1,
    .names = qattention_names,
};

typedef struct qa_state {
    qkv_msa_attrs attrs;
    qkv_igemm_packed_b w; /* the weight packed by prepack; data NULL: read as it comes */
} qa_state;

static qkv_status qa_init(const qkv_kernel *kernel, const qkv_host_api *host,
                          const qkv_node_ctx *node, void **state)
{
    (void)kernel;
    qa_state *s = calloc(1, sizeof *s);
    if (!s)
        return NERR(host, node, QKV_ERR_OUT_OF_MEMORY, "kernel state");
    qkv_status st = qkv_msa_attrs_init(host, node, &qattention_inputs, &s->attrs);
    if (st != QKV_OK) {
        free(s);
        return st;
    }
    *state = s;
    return QKV_OK;
}

static qkv_status qa_prepack(void **state, const qkv_host_api *host, const qkv_node_ctx *node)
{
    qa_state *s = *state;
    return qkv_igemm_prepack_b(host, node, IN_W, false, &s->w);
}

static void qa_destroy(void *state)
{
    qa_state *s = state;
    if (s)
        qkv_igemm_packed_free(&s->w);
    free(s);
}

/* Input k (when present and known): a scalar or one element, or (width)
 * when per_column; of dtype `type` when type is not UNDEFINED. */
static qkv_status check_quant_param(qkv_kernel_io *io, size_t k, bool per_column, int64_t width,
                                    qkv_dtype type)
{
    if (!qkv_present(io, k))
        return QKV_OK;
    const qkv_tensor *t = &io->inputs[k];
    char buf[96];
    if (type != QKV_DTYPE_UNDEFINED && t->dtype != type)
        return KERR(io, QKV_ERR_TYPE, "input %zu '%s' has type %s, expected %s", k,
                    qattention_names[k], io->host->dtype_name(t->dtype),
                    io->host->dtype_name(type));
    if (t->rank < 0)
        return QKV_OK;
    int64_t n = t->rank == 1 ? t->dims[0] : t->rank == 0 ? 1 : -2;
    bool ok = n == -1 || n == 1 || (per_column && (width < 0 || n == width));
    if (!ok)
        return KERR(io, QKV_ERR_SHAPE, "input %zu '%s' has shape %s, expected a scalar%s", k,
                    qattention_names[k], qkv_dims_str(t, buf, sizeof buf),
                    per_column ? " or (3 * hidden size)" : "");
    return QKV_OK;
}

static qkv_status qa_shape_of(const qa_state *s, qkv_kernel_io *io, qkv_msa_shape *sh)
{
    qkv_status st = qkv_msa_shape_of(&s->attrs, io, sh);
    int64_t width = sh->dq >= 0 && sh->dv >= 0 ? 2 * sh->dq + sh->dv : -1;
    if (st == QKV_OK)
        st = check_quant_param(io, IN_X_SCALE, false, width, QKV_DTYPE_FLOAT);
    if (st == QKV_OK)
        st = check_quant_param(io, IN_W_SCALE, true, width, QKV_DTYPE_FLOAT);
    if (st == QKV_OK)
        st = check_quant_param(io, IN_X_ZERO, false, width, io->inputs[IN_X].dtype);
    if (st == QKV_OK)
        st = check_quant_param(io, IN_W_ZERO, true, width, io->inputs[IN_W].dtype);
    if (st == QKV_OK && qkv_present(io, IN_PAST) && io->inputs[IN_PAST].dtype != QKV_DTYPE_FLOAT)
        st = KERR(io, QKV_ERR_TYPE, "input 8 'past' has type %s, expected float32",
                  io->host->dtype_name(io->inputs[IN_PAST].dtype));
    return st;
}

static qkv_status qa_infer(void *state, qkv_kernel_io *io)
{
    const qa_state *s = state;
    qkv_msa_shape sh;
    qkv_status st = qa_shape_of(s, io, &sh);
    if (st == QKV_OK)
        qkv_msa_infer_outputs(&s->attrs, io, &sh);
    return st;
}

static qkv_status qa_prepare(void *state, qkv_kernel_io *io)
{
    const qa_state *s = state;
    qkv_msa_shape sh;
    qkv_status st = qa_shape_of(s, io, &sh);
    if (st != QKV_OK)
        return st;
    size_t width = (size_t)(2 * sh.dq + sh.dv);
    if (s->w.data && (s->w.k != (size_t)sh.di || s->w.n != width))
        return KERR(io, QKV_ERR_INTERNAL,
                    "input 1 'weight' was packed as (%zu, %zu) but the "
                    "plan multiplies by (%lld, %zu)",
                    s->w.k, s->w.n, (long long)sh.di, width);
    return qkv_msa_scratch_bytes(&s->attrs, io, &sh, &io->scratch_bytes);
}

static qkv_status qa_compute(const void *state, qkv_kernel_io *io)
{
    const qa_state *s = state;
    qkv_msa_shape sh;
    qkv_status st = qa_shape_of(s, io, &sh);
    if (st != QKV_OK)
        return st;
    size_t m = (size_t)sh.b * (size_t)sh.s, width = (size_t)(2 * sh.dq + sh.dv);
    if (m > 0) {
        const qkv_tensor *x = &io->inputs[IN_X], *w = &io->inputs[IN_W];
        const qkv_tensor *ws = &io->inputs[IN_W_SCALE];
        qkv_ms_dequant dq = {.a_scale = *(const float *)io->inputs[IN_X_SCALE].data,
                             .b_scale = ws->data,
                             .per_column = qkv_numel(ws) > 1,
                             .bias = io->inputs[IN_BIAS].data};
        float *qkv = qkv_msa_projection(io);
        qkv_igemm g = {.m = m,
                       .n = width,
                       .k = (size_t)sh.di,
                       .a = x->data,
                       .lda = (size_t)sh.di,
                       .a_signed = x->dtype == QKV_DTYPE_INT8,
                       .b = w->data,
                       .ldb = width,
                       .b_signed = w->dtype == QKV_DTYPE_INT8,
                       .c = (int32_t *)(void *)qkv,
                       .ldc = width};
        if (qkv_present(io, IN_X_ZERO))
            g.a_zero = io->inputs[IN_X_ZERO].data;
        if (qkv_present(io, IN_W_ZERO)) {
            g.b_zero = io->inputs[IN_W_ZERO].data;
            g.b_zero_stride = qkv_numel(&io->inputs[IN_W_ZERO]) > 1 ? 1 : 0;
        }
        qkv_igemm_post post = {.fn = qkv_ms_dequant_block, .arg = &dq};
        const qkv_igemm_arch *arch =
            s->w.data ? s->w.arch : qkv_igemm_arch_select(io->host->cpu_features());
        qkv_igemm_run(io->host, io->host_ctx, arch, &g, s->w.data ? &s->w : NULL, &post);
    }
    return qkv_msa_attend(&s->attrs, io, &sh);
}

static const qkv_kernel kernels[] = {
    {
        QKV_KERNEL_V1,
        .domain = "com.microsoft",
        .op_type = "QAttention",
        .since_version = 1,
        .min_inputs = 5,
        .max_inputs = 9,
        .min_outputs = 1,
        .max_outputs = 2,
        /* the zero points (6, 7) are checked against input and weight in
         * qa_shape_of; past (8) shares the last entry */
        .n_input_types = 8,
        .input_types = {QKV_T(UINT8) | QKV_T(INT8), QKV_T(UINT8) | QKV_T(INT8), QKV_T(FLOAT),
                        QKV_T(FLOAT), QKV_T(FLOAT), QKV_T(INT32), QKV_T(UINT8) | QKV_T(INT8),
                        QKV_T(UINT8) | QKV_T(INT8) | QKV_T(FLOAT)},
        .init = qa_init,
        .prepack = qa_prepack,
        .infer = qa_infer,
        .prepare = qa_prepare,
        .compute = qa_compute,
        .destroy = qa_destroy,
    },
};

/* The com.microsoft.QAttention descriptor; *count set to 1. */
const qkv_kernel *qkv_ops_ms_qattention(size_t *count)
{
    *count = sizeof kernels / sizeof kernels[0];
    return kernels;
}
