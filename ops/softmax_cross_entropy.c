/*
 * softmax_cross_entropy.c - SoftmaxCrossEntropyLoss (opsets 12, 13).
 *
 * scores (N, C, d1, ..., dk) go through a log-softmax over the class axis
 * 1, and the result through the negative log-likelihood loss of
 * loss_common.c with labels (N, d1, ..., dk), the optional weights (C),
 * reduction and ignore_index, exactly as NegativeLogLikelihoodLoss does.
 * The optional output 1, log_prob, is the log-softmax itself (scores'
 * shape and type).
 *
 * Numerics: the log-softmax is computed in double, max-subtracted:
 * log_prob = (x - max) - log(sum exp(x - max)), and kept in double scratch
 * for the loss, so log_prob and the loss are each rounded once. A position
 * whose scores are all -inf, or hold NaN or +inf, gives NaN, as the ONNX
 * reference does.
 *
 * Types: float, double, float16 and bfloat16 (opset 12 lists no bfloat16:
 * accepting it there is a superset); labels int32 or int64. A label
 * outside [0, C) that is not ignore_index is QKV_ERR_INVALID_ARGUMENT.
 * Scratch: the log probabilities and two doubles per (n, d) position.
 * Batches (n) are split across threads.
 */
#include <math.h>
#include <stdlib.h>

#include "kernel_util.h"
#include "loss_common.h"

static const char *const input_names[3] = {"scores", "labels", "weights"};

typedef struct sce_state {
    qkv_loss_attrs attrs;
    bool log_prob; /* output 1 is wanted */
} sce_state;

typedef struct sce_run {
    const void *x;  /* (N, C, D) scores */
    qkv_dtype type; /* of x */
    double *logp;   /* (N, C, D) */
    double *aux;    /* (N, 2, D): per position the max, then the sum of exps */
    qkv_loss_dims dims;
} sce_run;

/* Log-softmax over C of the (C, D) blocks of batches [begin, end). */
static void log_softmax_range(void *arg, size_t begin, size_t end)
{
    const sce_run *r = arg;
    const size_t c = r->dims.c, d = r->dims.d;
    for (size_t n = begin; n < end; n++) {
        double *logp = r->logp + n * c * d; /* (C, D) */
        double *mx = r->aux + n * 2 * d;    /* (D) */
        double *sum = mx + d;               /* (D) */
        for (size_t j = 0; j < d; j++) {
            mx[j] = -INFINITY;
            sum[j] = 0;
        }
        for (size_t k = 0; k < c * d; k++)
            logp[k] = qkv_loss_load(r->x, r->type, n * c * d + k);
        for (size_t i = 0; i < c; i++)
            for (size_t j = 0; j < d; j++) {
                double v = logp[i * d + j];
                /* NaN propagates: NaN - mx is NaN below, and so is the sum */
                mx[j] = v > mx[j] ? v : mx[j];
            }
        for (size_t i = 0; i < c; i++)
            for (size_t j = 0; j < d; j++)
                sum[j] += exp(logp[i * d + j] - mx[j]);
        for (size_t j = 0; j < d; j++)
            sum[j] = log(sum[j]);
        for (size_t i = 0; i < c; i++)
            for (size_t j = 0; j < d; j++)
                logp[i * d + j] = (logp[i * d + j] - mx[j]) - sum[j];
    }
}

/* ---- callbacks ----------------------------------------------------------- */

static qkv_status sce_init(const qkv_kernel *kernel, const qkv_host_api *host,
                           const qkv_node_ctx *node, void **state)
{
    (void)kernel;
    qkv_loss_attrs a;
    qkv_status st = qkv_loss_attrs_read(host, node, &a);
    if (st != QKV_OK)
        return st;
    sce_state *s = malloc(sizeof *s);
    if (!s)
        return NERR(host, node, QKV_ERR_OUT_OF_MEMORY, "kernel state");
    s->attrs = a;
    s->log_prob = host->node_output_count(node) > 1 && host->node_output_present(node, 1);
    *state = s;
    return QKV_OK;
}

static void sce_destroy(void *state) { free(state); }

static qkv_status sce_infer(void *state, qkv_kernel_io *io)
{
    const sce_state *s = state;
    const qkv_tensor *x = &io->inputs[0];
    if (io->n_outputs > 1)
        qkv_set_shape(&io->outputs[1], x->dtype, x->rank, x->dims);
    return qkv_loss_infer(&s->attrs, io, input_names);
}

static qkv_status sce_prepare(void *state, qkv_kernel_io *io)
{
    (void)state;
    qkv_loss_dims dims = qkv_loss_dims_of(&io->inputs[0]);
    size_t positions, total, bytes;
    if (__builtin_mul_overflow(dims.n, dims.d, &positions) ||
        __builtin_mul_overflow(positions, dims.c + 2, &total) ||
        __builtin_mul_overflow(total, sizeof(double), &bytes))
        return KERR(io, QKV_ERR_SHAPE, "input 0 'scores': scratch size overflows");
    io->scratch_bytes = bytes;
    return QKV_OK;
}

static qkv_status sce_compute(const void *state, qkv_kernel_io *io)
{
    const sce_state *s = state;
    const qkv_tensor *x = &io->inputs[0];
    sce_run r = {.x = x->data, .type = x->dtype, .dims = qkv_loss_dims_of(x)};
    const size_t elems = r.dims.n * r.dims.c * r.dims.d;
    r.logp = io->scratch;
    r.aux = r.logp + elems;
    qkv_run_range(io, r.dims.n, elems * sizeof(double), log_softmax_range, &r);
    const qkv_tensor *weight = qkv_present(io, 2) ? &io->inputs[2] : NULL;
    qkv_status st = qkv_loss_nll(io, &s->attrs, r.dims, r.logp, QKV_DTYPE_DOUBLE, &io->inputs[1],
                                 weight, &io->outputs[0], input_names[1]);
    if (st != QKV_OK || !s->log_prob)
        return st;
    qkv_tensor *lp = &io->outputs[1];
    for (size_t k = 0; k < elems; k++)
        qkv_loss_store(lp->data, lp->dtype, k, r.logp[k]);
    return QKV_OK;
}

#define LOSS_FLOATS (QKV_TYPES_FLOATS | QKV_T(FLOAT16) | QKV_T(BFLOAT16))

static const qkv_kernel kernels[] = {
    {
        QKV_KERNEL_V1,
        .domain = "",
        .op_type = "SoftmaxCrossEntropyLoss",
        .since_version = 12,
        .min_inputs = 2,
        .max_inputs = 3,
        .min_outputs = 1,
        .max_outputs = 2,
        .n_input_types = 3,
        .input_types = {LOSS_FLOATS, QKV_TYPES_INDEX, LOSS_FLOATS},
        .init = sce_init,
        .infer = sce_infer,
        .prepare = sce_prepare,
        .compute = sce_compute,
        .destroy = sce_destroy,
    },
};

/* The SoftmaxCrossEntropyLoss descriptor; *count set to 1. */
const qkv_kernel *qkv_ops_softmax_cross_entropy(size_t *count)
{
    *count = sizeof kernels / sizeof kernels[0];
    return kernels;
}
