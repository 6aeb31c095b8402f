/*
 * ms_layernorm.c - the layer normalisations ONNX Runtime's transformer
 * optimizer fuses into BERT-style graphs (domain com.microsoft, since 1).
 * Both normalise rows of D = hidden size values:
 *   LN(v) = (v - mean(v)) / sqrt(var(v) + epsilon) * gamma + beta
 * with the biased variance; epsilon defaults to 1e-12 (ORT's schema default).
 *
 * SkipLayerNormalization(input, skip, gamma[, beta[, bias]])
 *   v = input + skip (+ bias); output = LN(v). input is (B, S, D) or (N, D);
 *   skip has input's shape, or (1, S, D) / (S, D) for a 3-D input (shared by
 *   every batch). Outputs: output, mean and inv_std_var (input's shape with
 *   the last dim 1; ORT declares them for training and its CPU kernel leaves
 *   them unwritten), input_skip_bias_sum (v).
 *
 * EmbedLayerNormalization(input_ids, segment_ids, word_embedding,
 *     position_embedding, segment_embedding, gamma, beta[, mask[, position_ids]])
 *   v[b, s] = word[input_ids[b, s]] + position[pos(b, s)] (+ segment[segment_ids[b, s]])
 *   with pos(b, s) = s, or position_ids[b, s] ((B, S) or (1, S)); output =
 *   LN(v) (B, S, D). segment_ids and segment_embedding come together or not
 *   at all (DistilBERT). Outputs: output, mask_index (B) int32 = how many
 *   mask values of each batch row are exactly 1 (0 without a mask, as ORT),
 *   embedding_sum (v). An id outside its table is QKV_ERR_INVALID_ARGUMENT
 *   naming the input, row and value (checked before anything is written).
 *
 * Numerics: the mean and variance of a row in two passes (vecmath's row
 * steps: float lanes over blocks of 256, double across them; ORT sums in
 * float, the variance as E[v^2] - mean^2 for Skip), so results agree with
 * ORT to float rounding. float32 only.
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "kernel_util.h"
#include "vecmath.h"

#define DEFAULT_EPSILON 1e-12f

typedef struct ln_state {
    double epsilon;
} ln_state;

/* y = LN(v) for one row of d values (y may be v); mean and inv, when not
 * NULL, receive the row's statistics. */
static void ln_row(float *y, const float *v, const float *gamma, const float *beta, size_t d,
                   double eps, float *mean_out, float *inv_out)
{
    double mean, var;
    qkv_vm_moments_f32(v, d, &mean, &var);
    const double inv = 1.0 / sqrt(var + eps);
    qkv_vm_normalize_f32(y, v, d, (float)mean, (float)inv, gamma, beta);
    if (mean_out)
        *mean_out = (float)mean;
    if (inv_out)
        *inv_out = (float)inv;
}

static qkv_status ln_init(const qkv_kernel *kernel, const qkv_host_api *host,
                          const qkv_node_ctx *node, void **state)
{
    (void)kernel;
    float eps;
    qkv_status st = host->attr_float(node, "epsilon", DEFAULT_EPSILON, &eps);
    if (st != QKV_OK)
        return st;
    if (!(eps >= 0))
        return NERR(host, node, QKV_ERR_INVALID_MODEL, "attribute epsilon=%g must be >= 0",
                    (double)eps);
    ln_state *s = malloc(sizeof *s);
    if (!s)
        return NERR(host, node, QKV_ERR_OUT_OF_MEMORY, "kernel state");
    s->epsilon = eps;
    *state = s;
    return QKV_OK;
}

static void ln_destroy(void *state) { free(state); }

/* Checks that input k, when present and its shape known, is 1-D of length d
 * (d -1: unknown). */
static qkv_status check_vec(qkv_kernel_io *io, size_t k, const char *name, int64_t d)
{
    if (!qkv_present(io, k) || io->inputs[k].rank < 0)
        return QKV_OK;
    const qkv_tensor *t = &io->inputs[k];
    char buf[96];
    if (t->rank != 1 || (t->dims[0] >= 0 && d >= 0 && t->dims[0] != d))
        return KERR(io, QKV_ERR_SHAPE,
                    "input %zu '%s' has shape %s, expected (%lld): the "
                    "hidden size",
                    k, name, qkv_dims_str(t, buf, sizeof buf), (long long)d);
    return QKV_OK;
}

/* ---- SkipLayerNormalization ----------------------------------------------------- */

enum { SK_X, SK_SKIP, SK_GAMMA, SK_BETA, SK_BIAS };
enum { SK_Y, SK_MEAN, SK_INV, SK_SUM };

typedef struct skip_job {
    const float *x, *skip, *gamma, *beta, *bias;
    float *y, *mean, *inv, *sum; /* the optional outputs may be NULL */
    size_t d, skip_rows;         /* skip repeats every skip_rows rows */
    double eps;
} skip_job;

static void skip_range(void *arg, size_t begin, size_t end)
{
    const skip_job *j = arg;
    const size_t d = j->d;
    for (size_t r = begin; r < end; r++) {
        const float *x = j->x + r * d, *sk = j->skip + (r % j->skip_rows) * d;
        float *v = j->sum ? j->sum + r * d : j->y + r * d;
        if (j->bias)
            for (size_t i = 0; i < d; i++)
                v[i] = x[i] + sk[i] + j->bias[i];
        else
            for (size_t i = 0; i < d; i++)
                v[i] = x[i] + sk[i];
        ln_row(j->y + r * d, v, j->gamma, j->beta, d, j->eps, j->mean ? j->mean + r : NULL,
               j->inv ? j->inv + r : NULL);
    }
}

static qkv_status skip_infer(void *state, qkv_kernel_io *io)
{
    (void)state;
    const qkv_tensor *x = &io->inputs[SK_X], *sk = &io->inputs[SK_SKIP];
    char xs[96], ss[96];
    qkv_set_shape(&io->outputs[SK_Y], QKV_DTYPE_FLOAT, x->rank, x->dims);
    for (size_t k = SK_MEAN; k < io->n_outputs; k++) {
        qkv_set_shape(&io->outputs[k], QKV_DTYPE_FLOAT, x->rank, x->dims);
        if (k != SK_SUM && x->rank > 0)
            io->outputs[k].dims[x->rank - 1] = 1;
    }
    if (x->rank < 0)
        return QKV_OK;
    if (x->rank != 2 && x->rank != 3)
        return KERR(io, QKV_ERR_SHAPE,
                    "input 0 'input' has shape %s, expected (batch, "
                    "sequence, hidden) or (rows, hidden)",
                    qkv_dims_str(x, xs, sizeof xs));
    int64_t d = x->dims[x->rank - 1];
    if (sk->rank >= 0) {
        /* skip: input's shape, or for a 3-D input (1, S, D) or (S, D) */
        bool ok = sk->rank == x->rank || (x->rank == 3 && sk->rank == 2);
        for (int32_t j = 1; ok && j <= sk->rank; j++) {
            int64_t a = sk->dims[sk->rank - j], b = x->dims[x->rank - j];
            bool lead_one = x->rank == 3 && sk->rank == 3 && j == 3 && a == 1;
            ok = a < 0 || b < 0 || a == b || lead_one;
        }
        if (!ok)
            return KERR(io, QKV_ERR_SHAPE,
                        "input 1 'skip' has shape %s; expected input 0's %s, "
                        "or (1, S, D) or (S, D) for a 3-D input",
                        qkv_dims_str(sk, ss, sizeof ss), qkv_dims_str(x, xs, sizeof xs));
    }
    qkv_status st = check_vec(io, SK_GAMMA, "gamma", d);
    if (st == QKV_OK)
        st = check_vec(io, SK_BETA, "beta", d);
    if (st == QKV_OK)
        st = check_vec(io, SK_BIAS, "bias", d);
    return st;
}

static qkv_status skip_compute(const void *state, qkv_kernel_io *io)
{
    const ln_state *s = state;
    const qkv_tensor *x = &io->inputs[SK_X], *sk = &io->inputs[SK_SKIP];
    size_t d = (size_t)x->dims[x->rank - 1];
    size_t rows = d ? qkv_numel(x) / d : 0, skip_rows = d ? qkv_numel(sk) / d : 0;
    if (rows == 0 || d == 0)
        return QKV_OK; /* infer gave the zero-sized outputs */
    skip_job j = {
        .x = x->data,
        .skip = sk->data,
        .gamma = io->inputs[SK_GAMMA].data,
        .beta = qkv_present(io, SK_BETA) ? io->inputs[SK_BETA].data : NULL,
        .bias = qkv_present(io, SK_BIAS) ? io->inputs[SK_BIAS].data : NULL,
        .y = io->outputs[SK_Y].data,
        .d = d,
        .skip_rows = skip_rows ? skip_rows : 1,
        .eps = s->epsilon,
    };
    if (io->n_outputs > SK_MEAN)
        j.mean = io->outputs[SK_MEAN].data;
    if (io->n_outputs > SK_INV)
        j.inv = io->outputs[SK_INV].data;
    if (io->n_outputs > SK_SUM)
        j.sum = io->outputs[SK_SUM].data;
    qkv_run_range(io, rows, rows * d * sizeof(float) * (j.sum ? 2 : 1), skip_range, &j);
    return QKV_OK;
}

/* ---- EmbedLayerNormalization ------------------------------------------------------ */

enum { EM_IDS, EM_SEG_IDS, EM_WORD, EM_POS, EM_SEG, EM_GAMMA, EM_BETA, EM_MASK, EM_POS_IDS };
enum { EM_Y, EM_MASK_INDEX, EM_SUM };

typedef struct embed_job {
    const int32_t *ids, *seg_ids, *pos_ids; /* seg_ids, pos_ids may be NULL */
    const float *word, *pos, *seg, *gamma, *beta;
    float *y, *sum;
    size_t d, s;
    bool pos_broadcast; /* position_ids is (1, S) */
    double eps;
} embed_job;

static void embed_range(void *arg, size_t begin, size_t end)
{
    const embed_job *j = arg;
    const size_t d = j->d;
    for (size_t r = begin; r < end; r++) {
        size_t p = j->pos_ids ? (size_t)j->pos_ids[j->pos_broadcast ? r % j->s : r] : r % j->s;
        const float *w = j->word + (size_t)j->ids[r] * d, *pe = j->pos + p * d;
        const float *se = j->seg_ids ? j->seg + (size_t)j->seg_ids[r] * d : NULL;
        float *v = j->sum ? j->sum + r * d : j->y + r * d;
        for (size_t i = 0; i < d; i++)
            v[i] = se ? w[i] + pe[i] + se[i] : w[i] + pe[i];
        ln_row(j->y + r * d, v, j->gamma, j->beta, d, j->eps, NULL, NULL);
    }
}

/* Checks that input k, when present and known, is (B, S) int32 (rows 1 is
 * also allowed when broadcast_rows). */
static qkv_status check_ids(qkv_kernel_io *io, size_t k, const char *name, bool broadcast_rows)
{
    if (!qkv_present(io, k))
        return QKV_OK;
    const qkv_tensor *t = &io->inputs[k], *ids = &io->inputs[EM_IDS];
    char buf[96], ib[96];
    if (t->rank < 0 || ids->rank < 0)
        return QKV_OK;
    bool ok = t->rank == 2;
    for (int32_t j = 0; ok && j < 2; j++) {
        int64_t a = t->dims[j], b = ids->dims[j];
        ok = a < 0 || b < 0 || a == b || (j == 0 && broadcast_rows && a == 1);
    }
    if (!ok)
        return KERR(io, QKV_ERR_SHAPE,
                    "input %zu '%s' has shape %s, expected input 0 "
                    "'input_ids' shape %s%s",
                    k, name, qkv_dims_str(t, buf, sizeof buf), qkv_dims_str(ids, ib, sizeof ib),
                    broadcast_rows ? " or (1, sequence)" : "");
    return QKV_OK;
}

/* Checks that table k is (rows, d). */
static qkv_status check_table(qkv_kernel_io *io, size_t k, const char *name, int64_t d)
{
    if (!qkv_present(io, k) || io->inputs[k].rank < 0)
        return QKV_OK;
    const qkv_tensor *t = &io->inputs[k];
    char buf[96];
    if (t->rank != 2 || (d >= 0 && t->dims[1] >= 0 && t->dims[1] != d))
        return KERR(io, QKV_ERR_SHAPE,
                    "input %zu '%s' has shape %s, expected (rows, hidden "
                    "size %lld)",
                    k, name, qkv_dims_str(t, buf, sizeof buf), (long long)d);
    return QKV_OK;
}

static qkv_status embed_infer(void *state, qkv_kernel_io *io)
{
    (void)state;
    const qkv_tensor *ids = &io->inputs[EM_IDS], *word = &io->inputs[EM_WORD];
    char buf[96];
    int64_t b = ids->rank == 2 ? ids->dims[0] : -1, sq = ids->rank == 2 ? ids->dims[1] : -1;
    int64_t d = word->rank == 2 ? word->dims[1] : -1;
    qkv_set_shape(&io->outputs[EM_Y], QKV_DTYPE_FLOAT, 3, (int64_t[]){b, sq, d});
    if (io->n_outputs > EM_MASK_INDEX)
        qkv_set_shape(&io->outputs[EM_MASK_INDEX], QKV_DTYPE_INT32, 1, &b);
    if (io->n_outputs > EM_SUM)
        qkv_set_shape(&io->outputs[EM_SUM], QKV_DTYPE_FLOAT, 3, (int64_t[]){b, sq, d});
    if (ids->rank >= 0 && ids->rank != 2)
        return KERR(io, QKV_ERR_SHAPE,
                    "input 0 'input_ids' has shape %s, expected (batch, "
                    "sequence)",
                    qkv_dims_str(ids, buf, sizeof buf));
    if (qkv_present(io, EM_SEG_IDS) != qkv_present(io, EM_SEG))
        return KERR(io, QKV_ERR_INVALID_MODEL,
                    "inputs 1 'segment_ids' and 4 "
                    "'segment_embedding' must be given together");
    qkv_status st;
    if ((st = check_ids(io, EM_SEG_IDS, "segment_ids", false)) ||
        (st = check_ids(io, EM_MASK, "mask", false)) ||
        (st = check_ids(io, EM_POS_IDS, "position_ids", true)) ||
        (st = check_table(io, EM_WORD, "word_embedding", d)) ||
        (st = check_table(io, EM_POS, "position_embedding", d)) ||
        (st = check_table(io, EM_SEG, "segment_embedding", d)) ||
        (st = check_vec(io, EM_GAMMA, "gamma", d)) || (st = check_vec(io, EM_BETA, "beta", d)))
        return st;
    return QKV_OK;
}

/* Checks every id of input k (n values, in [0, rows)). */
static qkv_status check_range(qkv_kernel_io *io, size_t k, const char *name, size_t n, int64_t rows)
{
    const int32_t *v = io->inputs[k].data;
    for (size_t i = 0; i < n; i++)
        if (v[i] < 0 || v[i] >= rows)
            return KERR(io, QKV_ERR_INVALID_ARGUMENT,
                        "input %zu '%s' has %d at flat index %zu, "
                        "outside the table's %lld rows",
                        k, name, (int)v[i], i, (long long)rows);
    return QKV_OK;
}

static qkv_status embed_compute(const void *state, qkv_kernel_io *io)
{
    const ln_state *s = state;
    const qkv_tensor *ids = &io->inputs[EM_IDS];
    size_t b = (size_t)ids->dims[0], sq = (size_t)ids->dims[1], rows = b * sq;
    size_t d = (size_t)io->inputs[EM_WORD].dims[1];
    bool has_seg = qkv_present(io, EM_SEG_IDS), has_pos = qkv_present(io, EM_POS_IDS);
    embed_job j = {
        .ids = ids->data,
        .seg_ids = has_seg ? io->inputs[EM_SEG_IDS].data : NULL,
        .pos_ids = has_pos ? io->inputs[EM_POS_IDS].data : NULL,
        .word = io->inputs[EM_WORD].data,
        .pos = io->inputs[EM_POS].data,
        .seg = has_seg ? io->inputs[EM_SEG].data : NULL,
        .gamma = io->inputs[EM_GAMMA].data,
        .beta = io->inputs[EM_BETA].data,
        .y = io->outputs[EM_Y].data,
        .d = d,
        .s = sq,
        .pos_broadcast = has_pos && io->inputs[EM_POS_IDS].dims[0] == 1,
        .eps = s->epsilon,
    };
    if (io->n_outputs > EM_SUM)
        j.sum = io->outputs[EM_SUM].data;
    int64_t n_pos = io->inputs[EM_POS].dims[0];
    qkv_status st = check_range(io, EM_IDS, "input_ids", rows, io->inputs[EM_WORD].dims[0]);
    if (st == QKV_OK && has_seg)
        st = check_range(io, EM_SEG_IDS, "segment_ids", rows, io->inputs[EM_SEG].dims[0]);
    if (st == QKV_OK && has_pos)
        st = check_range(io, EM_POS_IDS, "position_ids", qkv_numel(&io->inputs[EM_POS_IDS]), n_pos);
    if (st == QKV_OK && !has_pos && (int64_t)sq > n_pos)
        st = KERR(io, QKV_ERR_INVALID_ARGUMENT,
                  "sequence length %zu is longer than input 3 "
                  "'position_embedding' (%lld positions)",
                  sq, (long long)n_pos);
    if (st != QKV_OK)
        return st;
    if (rows > 0 && d > 0)
        qkv_run_range(io, rows, rows * d * sizeof(float) * (j.sum ? 2 : 1), embed_range, &j);
    if (io->n_outputs > EM_MASK_INDEX && io->outputs[EM_MASK_INDEX].data) {
        int32_t *mi = io->outputs[EM_MASK_INDEX].data;
        const int32_t *m = qkv_present(io, EM_MASK) ? io->inputs[EM_MASK].data : NULL;
        for (size_t i = 0; i < b; i++) {
            int32_t count = 0;
            for (size_t t = 0; m && t < sq; t++)
                count += m[i * sq + t] == 1;
            mi[i] = count;
        }
    }
    return QKV_OK;
}

static const qkv_kernel kernels[] = {
    {
        QKV_KERNEL_V1,
        .domain = "com.microsoft",
        .op_type = "SkipLayerNormalization",
        .since_version = 1,
        .min_inputs = 3,
        .max_inputs = 5,
        .min_outputs = 1,
        .max_outputs = 4,
        .n_input_types = 1,
        .input_types = {QKV_T(FLOAT)},
        .init = ln_init,
        .infer = skip_infer,
        .compute = skip_compute,
        .destroy = ln_destroy,
    },
    {
        QKV_KERNEL_V1,
        .domain = "com.microsoft",
        .op_type = "EmbedLayerNormalization",
        .since_version = 1,
        .min_inputs = 7,
        .max_inputs = 9,
        /* segment_ids and segment_embedding are optional among the required */
        .omittable_inputs = 1u << EM_SEG_IDS | 1u << EM_SEG,
        .min_outputs = 1,
        .max_outputs = 3,
        /* the last entry covers inputs 7 'mask' and 8 'position_ids' */
        .n_input_types = 8,
        .input_types = {QKV_T(INT32), QKV_T(INT32), QKV_T(FLOAT), QKV_T(FLOAT), QKV_T(FLOAT),
                        QKV_T(FLOAT), QKV_T(FLOAT), QKV_T(INT32)},
        .init = ln_init,
        .infer = embed_infer,
        .compute = embed_compute,
        .destroy = ln_destroy,
    },
};

/* The SkipLayerNormalization and EmbedLayerNormalization descriptors; *count set to 2. */
const qkv_kernel *qkv_ops_ms_layernorm(size_t *count)
{
    *count = sizeof kernels / sizeof kernels[0];
    return kernels;
}
