/*
 * loss_common.c - attributes, shape checks and the negative log-likelihood
 * core shared by NegativeLogLikelihoodLoss and SoftmaxCrossEntropyLoss
 * (contracts in loss_common.h).
 *
 * The core follows the ONNX reference (compute_negative_log_likelihood_loss
 * in onnx/backend/test/case/node/negativeloglikelihoodloss.py): an ignored
 * target contributes 0 to the loss and its weight to no denominator, and
 * "mean" is sum(w * loss) / sum(w) over the targets not ignored, so a batch
 * with every target ignored gives 0/0 = NaN. Sums are kept in double and
 * rounded once.
 */
#include "loss_common.h"

#include <string.h>

#include "half.h"
#include "kernel_util.h"

qkv_status qkv_loss_attrs_read(const qkv_host_api *host, const qkv_node_ctx *node,
                               qkv_loss_attrs *a)
{
    memset(a, 0, sizeof *a);
    a->reduction = QKV_LOSS_MEAN;
    const char *red;
    qkv_status st = host->attr_string(node, "reduction", "mean", &red);
    if (st != QKV_OK)
        return st;
    if (strcmp(red, "none") == 0)
        a->reduction = QKV_LOSS_NONE;
    else if (strcmp(red, "sum") == 0)
        a->reduction = QKV_LOSS_SUM;
    else if (strcmp(red, "mean") != 0)
        return NERR(host, node, QKV_ERR_INVALID_MODEL,
                    "attribute 'reduction' is '%s', expected 'none', 'sum' or 'mean'", red);
    a->has_ignore = host->attr_type(node, "ignore_index") != QKV_ATTR_UNDEFINED;
    return host->attr_int(node, "ignore_index", 0, &a->ignore_index);
}

/* Target dim k of input 0's shape: dims[0], then dims[2..]. */
static int64_t target_dim_of_input(const qkv_tensor *x, int32_t k)
{
    return x->dims[k == 0 ? 0 : k + 1];
}

static qkv_status check_target(qkv_kernel_io *io, const char *const names[3])
{
    const qkv_tensor *x = &io->inputs[0], *t = &io->inputs[1];
    if (x->rank < 0 || t->rank < 0)
        return QKV_OK;
    bool ok = t->rank == x->rank - 1;
    for (int32_t k = 0; ok && k < t->rank; k++) {
        int64_t want = target_dim_of_input(x, k);
        ok = want < 0 || t->dims[k] < 0 || t->dims[k] == want;
    }
    if (ok)
        return QKV_OK;
    char a[128], b[128];
    return KERR(io, QKV_ERR_SHAPE,
                "input 1 '%s' has shape %s, expected input 0 '%s' %s without its class "
                "axis 1",
                names[1], qkv_dims_str(t, a, sizeof a), names[0], qkv_dims_str(x, b, sizeof b));
}

static qkv_status check_weight(qkv_kernel_io *io, const char *const names[3])
{
    const qkv_tensor *x = &io->inputs[0], *w = &io->inputs[2];
    if (!qkv_present(io, 2))
        return QKV_OK;
    if (w->dtype != x->dtype)
        return KERR(io, QKV_ERR_TYPE, "input 2 '%s' has type %s, expected %s (input 0's type)",
                    names[2], io->host->dtype_name(w->dtype), io->host->dtype_name(x->dtype));
    if (w->rank < 0)
        return QKV_OK;
    int64_t c = x->rank >= 2 ? x->dims[1] : -1;
    if (w->rank == 1 && (c < 0 || w->dims[0] < 0 || w->dims[0] == c))
        return QKV_OK;
    char a[128];
    return KERR(io, QKV_ERR_SHAPE,
                "input 2 '%s' has shape %s, expected [%lld] (the classes, dim 1 of input 0 "
                "'%s')",
                names[2], qkv_dims_str(w, a, sizeof a), (long long)c, names[0]);
}

qkv_status qkv_loss_infer(const qkv_loss_attrs *a, qkv_kernel_io *io, const char *const names[3])
{
    const qkv_tensor *x = &io->inputs[0], *t = &io->inputs[1];
    qkv_tensor *out = &io->outputs[0];
    if (a->reduction != QKV_LOSS_NONE) {
        qkv_set_shape(out, x->dtype, 0, NULL);
    } else if (x->rank >= 2) {
        /* the target's shape, taken from input 0 where the target's is unknown */
        int64_t dims[QKV_MAX_RANK];
        for (int32_t k = 0; k < x->rank - 1; k++) {
            dims[k] = target_dim_of_input(x, k);
            if (dims[k] < 0 && t->rank == x->rank - 1)
                dims[k] = t->dims[k];
        }
        qkv_set_shape(out, x->dtype, x->rank - 1, dims);
    } else {
        qkv_set_shape(out, x->dtype, t->rank, t->dims);
    }
    if (x->rank >= 0 && x->rank < 2)
        return KERR(io, QKV_ERR_SHAPE,
                    "input 0 '%s' has rank %d, expected >= 2 (N, C, d1, ..., dk)", names[0],
                    x->rank);
    qkv_status st = check_target(io, names);
    return st != QKV_OK ? st : check_weight(io, names);
}

qkv_loss_dims qkv_loss_dims_of(const qkv_tensor *x)
{
    qkv_loss_dims d = {(size_t)x->dims[0], (size_t)x->dims[1], 1};
    for (int32_t k = 2; k < x->rank; k++)
        d.d *= (size_t)x->dims[k];
    return d;
}

double qkv_loss_load(const void *data, qkv_dtype t, size_t i)
{
    switch (t) {
    case QKV_DTYPE_DOUBLE:
        return ((const double *)data)[i];
    case QKV_DTYPE_FLOAT16:
        return qkv_f16_to_f32(((const uint16_t *)data)[i]);
    case QKV_DTYPE_BFLOAT16:
        return qkv_bf16_to_f32(((const uint16_t *)data)[i]);
    default:
        return ((const float *)data)[i];
    }
}

void qkv_loss_store(void *data, qkv_dtype t, size_t i, double v)
{
    switch (t) {
    case QKV_DTYPE_DOUBLE:
        ((double *)data)[i] = v;
        break;
    case QKV_DTYPE_FLOAT16:
        ((uint16_t *)data)[i] = qkv_f64_to_f16(v);
        break;
    case QKV_DTYPE_BFLOAT16:
        ((uint16_t *)data)[i] = qkv_f64_to_bf16(v);
        break;
    default:
        ((float *)data)[i] = qkv_f64_to_f32(v);
        break;
    }
}

static bool ignored(const qkv_loss_attrs *a, int64_t v)
{
    return a->has_ignore && v == a->ignore_index;
}

/* Every target is a class or ignore_index. */
static qkv_status check_target_values(qkv_kernel_io *io, const qkv_loss_attrs *a, size_t c,
                                      const qkv_tensor *target, size_t count,
                                      const char *target_name)
{
    for (size_t i = 0; i < count; i++) {
        int64_t v = qkv_int_at(target, i);
        if (ignored(a, v) || (v >= 0 && (uint64_t)v < (uint64_t)c))
            continue;
        if (a->has_ignore)
            return KERR(io, QKV_ERR_INVALID_ARGUMENT,
                        "input 1 '%s' holds %lld at flat index %zu: outside the classes "
                        "[0, %zu) and not ignore_index %lld",
                        target_name, (long long)v, i, c, (long long)a->ignore_index);
        return KERR(io, QKV_ERR_INVALID_ARGUMENT,
                    "input 1 '%s' holds %lld at flat index %zu: outside the classes [0, %zu)",
                    target_name, (long long)v, i, c);
    }
    return QKV_OK;
}

qkv_status qkv_loss_nll(qkv_kernel_io *io, const qkv_loss_attrs *a, qkv_loss_dims dims,
                        const void *logp, qkv_dtype logp_dtype, const qkv_tensor *target,
                        const qkv_tensor *weight, qkv_tensor *out, const char *target_name)
{
    const size_t count = dims.n * dims.d;
    qkv_status st = check_target_values(io, a, dims.c, target, count, target_name);
    if (st != QKV_OK)
        return st;
    double sum = 0, weight_sum = 0;
    for (size_t n = 0; n < dims.n; n++)
        for (size_t d = 0; d < dims.d; d++) {
            size_t i = n * dims.d + d;
            int64_t v = qkv_int_at(target, i);
            if (ignored(a, v)) {
                if (a->reduction == QKV_LOSS_NONE)
                    qkv_loss_store(out->data, out->dtype, i, 0.0);
                continue;
            }
            size_t cls = (size_t)v;
            double w = weight ? qkv_loss_load(weight->data, weight->dtype, cls) : 1.0;
            double loss = -w * qkv_loss_load(logp, logp_dtype, (n * dims.c + cls) * dims.d + d);
            if (a->reduction == QKV_LOSS_NONE)
                qkv_loss_store(out->data, out->dtype, i, loss);
            sum += loss;
            weight_sum += w;
        }
    if (a->reduction == QKV_LOSS_SUM)
        qkv_loss_store(out->data, out->dtype, 0, sum);
    else if (a->reduction == QKV_LOSS_MEAN)
        qkv_loss_store(out->data, out->dtype, 0, sum / weight_sum);
    return QKV_OK;
}
