/*
 * rnn_common.c - the attributes, activations and shapes of RNN, GRU and
 * LSTM (rnn_common.h).
 *
 * Activation names are matched without regard to case, as ONNX Runtime
 * does. activation_alpha and activation_beta are consumed in the order of
 * the activations, each value only by an activation that takes that
 * parameter (Affine, LeakyRelu, ThresholdedRelu, ScaledTanh, HardSigmoid,
 * Elu take alpha; Affine, ScaledTanh, HardSigmoid take beta); when the list
 * runs out the defaults are used: LeakyRelu 0.01, ThresholdedRelu 1,
 * HardSigmoid 0.2 and 0.5, Elu 1, Affine 1 and 0, ScaledTanh 1 and 1.
 * A bidirectional node given only one direction's activations uses them for
 * both (as ONNX Runtime does); any other count is an error.
 */
#include "rnn_common.h"

#include <math.h>
#include <stdio.h>
#include <string.h>

/* ---- activations ------------------------------------------------------------- */

typedef struct act_name {
    const char *name;
    qkv_rnn_act_kind kind;
    bool takes_alpha, takes_beta;
    float alpha, beta; /* defaults */
} act_name;

static const act_name act_names[] = {
    {"Relu", QKV_RNN_ACT_RELU, false, false, 0, 0},
    {"Tanh", QKV_RNN_ACT_TANH, false, false, 0, 0},
    {"Sigmoid", QKV_RNN_ACT_SIGMOID, false, false, 0, 0},
    {"Affine", QKV_RNN_ACT_AFFINE, true, true, 1.0f, 0.0f},
    {"LeakyRelu", QKV_RNN_ACT_LEAKY_RELU, true, false, 0.01f, 0},
    {"ThresholdedRelu", QKV_RNN_ACT_THRESHOLDED_RELU, true, false, 1.0f, 0},
    {"ScaledTanh", QKV_RNN_ACT_SCALED_TANH, true, true, 1.0f, 1.0f},
    {"HardSigmoid", QKV_RNN_ACT_HARD_SIGMOID, true, true, 0.2f, 0.5f},
    {"Elu", QKV_RNN_ACT_ELU, true, false, 1.0f, 0},
    {"Softsign", QKV_RNN_ACT_SOFTSIGN, false, false, 0, 0},
    {"Softplus", QKV_RNN_ACT_SOFTPLUS, false, false, 0, 0},
};

static bool ascii_ieq(const char *a, const char *b)
{
    for (; *a && *b; a++, b++) {
        char ca = *a >= 'A' && *a <= 'Z' ? (char)(*a - 'A' + 'a') : *a;
        char cb = *b >= 'A' && *b <= 'Z' ? (char)(*b - 'A' + 'a') : *b;
        if (ca != cb)
            return false;
    }
    return *a == *b;
}

static const act_name *find_act(const char *name)
{
    for (size_t i = 0; i < sizeof act_names / sizeof act_names[0]; i++)
        if (ascii_ieq(name, act_names[i].name))
            return &act_names[i];
    return NULL;
}

/* One element of each activation, in T; CLIP clamps first (c > 0). Sigmoid
 * and Softplus are written so that no intermediate overflows. */
#define DEFINE_ACTIVATE(SUF, T, EXP, TANH, LOG1P, FABS)                                            \
    void qkv_rnn_activate_##SUF(const qkv_rnn_act *act, float clip, T *x, size_t n)                \
    {                                                                                              \
        const T al = (T)act->alpha, be = (T)act->beta, c = (T)clip;                                \
        if (clip > 0)                                                                              \
            for (size_t j = 0; j < n; j++)                                                         \
                x[j] = x[j] < -c ? -c : x[j] > c ? c : x[j];                                       \
        switch (act->kind) {                                                                       \
        case QKV_RNN_ACT_RELU:                                                                     \
            for (size_t j = 0; j < n; j++)                                                         \
                x[j] = x[j] < 0 ? 0 : x[j];                                                        \
            break;                                                                                 \
        case QKV_RNN_ACT_TANH:                                                                     \
            for (size_t j = 0; j < n; j++)                                                         \
                x[j] = TANH(x[j]);                                                                 \
            break;                                                                                 \
        case QKV_RNN_ACT_SIGMOID:                                                                  \
            for (size_t j = 0; j < n; j++) {                                                       \
                T e = EXP(-FABS(x[j]));                                                            \
                x[j] = x[j] >= 0 ? 1 / (1 + e) : e / (1 + e);                                      \
            }                                                                                      \
            break;                                                                                 \
        case QKV_RNN_ACT_AFFINE:                                                                   \
            for (size_t j = 0; j < n; j++)                                                         \
                x[j] = al * x[j] + be;                                                             \
            break;                                                                                 \
        case QKV_RNN_ACT_LEAKY_RELU:                                                               \
            for (size_t j = 0; j < n; j++)                                                         \
                x[j] = x[j] >= 0 ? x[j] : al * x[j];                                               \
            break;                                                                                 \
        case QKV_RNN_ACT_THRESHOLDED_RELU:                                                         \
            for (size_t j = 0; j < n; j++)                                                         \
                x[j] = x[j] > al ? x[j] : 0;                                                       \
            break;                                                                                 \
        case QKV_RNN_ACT_SCALED_TANH:                                                              \
            for (size_t j = 0; j < n; j++)                                                         \
                x[j] = al * TANH(be * x[j]);                                                       \
            break;                                                                                 \
        case QKV_RNN_ACT_HARD_SIGMOID:                                                             \
            for (size_t j = 0; j < n; j++) {                                                       \
                T v = al * x[j] + be;                                                              \
                x[j] = v < 0 ? 0 : v > 1 ? 1 : v;                                                  \
            }                                                                                      \
            break;                                                                                 \
        case QKV_RNN_ACT_ELU:                                                                      \
            for (size_t j = 0; j < n; j++)                                                         \
                x[j] = x[j] >= 0 ? x[j] : al * (EXP(x[j]) - 1);                                    \
            break;                                                                                 \
        case QKV_RNN_ACT_SOFTSIGN:                                                                 \
            for (size_t j = 0; j < n; j++)                                                         \
                x[j] = x[j] / (1 + FABS(x[j]));                                                    \
            break;                                                                                 \
        case QKV_RNN_ACT_SOFTPLUS:                                                                 \
            for (size_t j = 0; j < n; j++) {                                                       \
                T v = x[j];                                                                        \
                x[j] = (v > 0 ? v : 0) + LOG1P(EXP(-FABS(v)));                                     \
            }                                                                                      \
            break;                                                                                 \
        }                                                                                          \
    }
DEFINE_ACTIVATE(f32, float, expf, tanhf, log1pf, fabsf)
DEFINE_ACTIVATE(f64, double, exp, tanh, log1p, fabs)

/* ---- attributes ---------------------------------------------------------------- */

static qkv_status parse_direction(const qkv_host_api *host, const qkv_node_ctx *node,
                                  qkv_rnn_attrs *a)
{
    const char *dir;
    qkv_status st = host->attr_string(node, "direction", "forward", &dir);
    if (st != QKV_OK)
        return st;
    a->dirs = 1;
    a->reverse = false;
    if (strcmp(dir, "reverse") == 0)
        a->reverse = true;
    else if (strcmp(dir, "bidirectional") == 0)
        a->dirs = 2;
    else if (strcmp(dir, "forward") != 0)
        return NERR(host, node, QKV_ERR_INVALID_MODEL,
                    "attribute 'direction' is '%s', expected forward, reverse or bidirectional",
                    dir);
    return QKV_OK;
}

static qkv_status parse_activations(const qkv_host_api *host, const qkv_node_ctx *node,
                                    qkv_rnn_attrs *a)
{
    const qkv_rnn_cell *cell = a->cell;
    const char *const *names;
    const float *alphas, *betas;
    size_t n, n_alpha, n_beta;
    qkv_status st = host->attr_strings(node, "activations", &names, &n);
    if (st == QKV_OK)
        st = host->attr_floats(node, "activation_alpha", &alphas, &n_alpha);
    if (st == QKV_OK)
        st = host->attr_floats(node, "activation_beta", &betas, &n_beta);
    if (st != QKV_OK)
        return st;
    size_t per = cell->n_acts;
    if (n != 0 && n != per * a->dirs && !(a->dirs == 2 && n == per))
        return NERR(host, node, QKV_ERR_INVALID_MODEL,
                    "attribute 'activations' has %zu names, expected %zu (%zu per direction, "
                    "%zu direction%s)",
                    n, per * a->dirs, per, a->dirs, a->dirs == 2 ? "s" : "");
    size_t ia = 0, ib = 0;
    for (size_t d = 0; d < a->dirs; d++) {
        for (size_t f = 0; f < per; f++) {
            const char *name = n == 0 ? cell->default_acts[f] : names[(n == per ? 0 : d * per) + f];
            const act_name *an = find_act(name);
            if (!an)
                return NERR(host, node, QKV_ERR_INVALID_MODEL,
                            "attribute 'activations': unknown activation '%s' (expected Relu, "
                            "Tanh, Sigmoid, Affine, LeakyRelu, ThresholdedRelu, ScaledTanh, "
                            "HardSigmoid, Elu, Softsign or Softplus)",
                            name);
            qkv_rnn_act *act = &a->acts[d][f];
            act->kind = an->kind;
            act->alpha = an->alpha;
            act->beta = an->beta;
            /* the reused list of a bidirectional node reads its parameters
             * again from the start for the second direction */
            if (n == per && d == 1 && f == 0)
                ia = ib = 0;
            if (an->takes_alpha && ia < n_alpha)
                act->alpha = alphas[ia++];
            if (an->takes_beta && ib < n_beta)
                act->beta = betas[ib++];
        }
    }
    return QKV_OK;
}

qkv_status qkv_rnn_parse_attrs(const qkv_host_api *host, const qkv_node_ctx *node,
                               const qkv_rnn_cell *cell, qkv_rnn_attrs *a)
{
    memset(a, 0, sizeof *a);
    a->cell = cell;
    qkv_status st = parse_direction(host, node, a);
    if (st != QKV_OK)
        return st;
    st = host->attr_int(node, "hidden_size", -1, &a->hidden_size);
    if (st != QKV_OK)
        return st;
    if (a->hidden_size == 0 || a->hidden_size < -1 ||
        (a->hidden_size == -1 && host->attr_type(node, "hidden_size") != QKV_ATTR_UNDEFINED))
        return NERR(host, node, QKV_ERR_INVALID_MODEL,
                    "attribute 'hidden_size' is %lld, expected > 0", (long long)a->hidden_size);
    a->layout = 0;
    if (host->node_opset(node) >= 14) {
        st = host->attr_int(node, "layout", 0, &a->layout);
        if (st != QKV_OK)
            return st;
        if (a->layout != 0 && a->layout != 1)
            return NERR(host, node, QKV_ERR_INVALID_MODEL,
                        "attribute 'layout' is %lld, expected 0 or 1", (long long)a->layout);
    }
    if (host->attr_type(node, "clip") != QKV_ATTR_UNDEFINED) {
        st = host->attr_float(node, "clip", 0, &a->clip);
        if (st != QKV_OK)
            return st;
        if (!(a->clip > 0))
            return NERR(host, node, QKV_ERR_INVALID_MODEL, "attribute 'clip' is %g, expected > 0",
                        (double)a->clip);
    }
    int64_t v = 0;
    if (cell->gates == 3) {
        st = host->attr_int(node, "linear_before_reset", 0, &v);
        a->linear_before_reset = v != 0;
    } else if (cell->has_cell_state) {
        st = host->attr_int(node, "input_forget", 0, &v);
        a->input_forget = v != 0;
    }
    if (st != QKV_OK)
        return st;
    return parse_activations(host, node, a);
}

/* ---- shapes -------------------------------------------------------------------- */

static const char *const in_names[] = {"X",         "W",         "R", "B", "sequence_lens",
                                       "initial_h", "initial_c", "P"};

/* Merges a dim known from another input into *have (-1 unknown). */
static void learn(int64_t *have, int64_t v)
{
    if (*have < 0 && v >= 0)
        *have = v;
}

/* Checks dim `axis` of input k against `want` (-1: not known yet), where
 * `what` says what the dim is. */
static qkv_status check_dim(qkv_kernel_io *io, size_t k, int32_t axis, int64_t want,
                            const char *what)
{
    const qkv_tensor *t = &io->inputs[k];
    int64_t got = t->dims[axis];
    if (got < 0 || want < 0 || got == want)
        return QKV_OK;
    char buf[96];
    return KERR(io, QKV_ERR_SHAPE,
                "input %zu '%s' has shape %s: dim %d is %lld, expected %s = %lld", k, in_names[k],
                qkv_dims_str(t, buf, sizeof buf), (int)axis, (long long)got, what, (long long)want);
}

static qkv_status check_rank(qkv_kernel_io *io, size_t k, int32_t rank)
{
    const qkv_tensor *t = &io->inputs[k];
    if (t->rank < 0 || t->rank == rank)
        return QKV_OK;
    char buf[96];
    return KERR(io, QKV_ERR_SHAPE, "input %zu '%s' has shape %s, expected rank %d", k, in_names[k],
                qkv_dims_str(t, buf, sizeof buf), (int)rank);
}

typedef struct known_dims {
    int64_t seq, batch, input, hidden, dirs, gh;
} known_dims;

/* The dims X, W and R (and the attribute) give, with their ranks checked. */
static qkv_status core_dims(const qkv_rnn_attrs *a, qkv_kernel_io *io, known_dims *k)
{
    const qkv_tensor *x = &io->inputs[QKV_RNN_IN_X], *w = &io->inputs[QKV_RNN_IN_W],
                     *r = &io->inputs[QKV_RNN_IN_R];
    int64_t g = (int64_t)a->cell->gates;
    qkv_status st;
    if ((st = check_rank(io, QKV_RNN_IN_X, 3)) != QKV_OK ||
        (st = check_rank(io, QKV_RNN_IN_W, 3)) != QKV_OK ||
        (st = check_rank(io, QKV_RNN_IN_R, 3)) != QKV_OK)
        return st;
    *k = (known_dims){-1, -1, -1, a->hidden_size, (int64_t)a->dirs, -1};
    if (x->rank == 3) {
        k->seq = x->dims[a->layout ? 1 : 0];
        k->batch = x->dims[a->layout ? 0 : 1];
        k->input = x->dims[2];
    }
    if (r->rank == 3)
        learn(&k->hidden, r->dims[2]);
    if (w->rank == 3 && w->dims[1] >= 0 && w->dims[1] % g == 0)
        learn(&k->hidden, w->dims[1] / g);
    if (k->hidden >= 0)
        k->gh = g * k->hidden;
    char what[64];
    snprintf(what, sizeof what, "%lld * hidden_size", (long long)g);
    if (w->rank == 3 &&
        ((st = check_dim(io, QKV_RNN_IN_W, 0, k->dirs, "num_directions")) != QKV_OK ||
         (st = check_dim(io, QKV_RNN_IN_W, 1, k->gh, what)) != QKV_OK ||
         (st = check_dim(io, QKV_RNN_IN_W, 2, k->input, "input_size of X")) != QKV_OK))
        return st;
    if (w->rank == 3)
        learn(&k->input, w->dims[2]);
    if (r->rank == 3 &&
        ((st = check_dim(io, QKV_RNN_IN_R, 0, k->dirs, "num_directions")) != QKV_OK ||
         (st = check_dim(io, QKV_RNN_IN_R, 1, k->gh, what)) != QKV_OK ||
         (st = check_dim(io, QKV_RNN_IN_R, 2, k->hidden, "hidden_size")) != QKV_OK))
        return st;
    return QKV_OK;
}

/* The optional inputs' ranks and dims against k. */
static qkv_status optional_dims(const qkv_rnn_attrs *a, qkv_kernel_io *io, const known_dims *k)
{
    qkv_status st;
    char what[64];
    if (qkv_present(io, QKV_RNN_IN_B)) {
        snprintf(what, sizeof what, "2 * %zu * hidden_size", a->cell->gates);
        if ((st = check_rank(io, QKV_RNN_IN_B, 2)) != QKV_OK ||
            (io->inputs[QKV_RNN_IN_B].rank == 2 &&
             ((st = check_dim(io, QKV_RNN_IN_B, 0, k->dirs, "num_directions")) != QKV_OK ||
              (st = check_dim(io, QKV_RNN_IN_B, 1, k->gh < 0 ? -1 : 2 * k->gh, what)) != QKV_OK)))
            return st;
    }
    if (qkv_present(io, QKV_RNN_IN_SEQ_LENS)) {
        if ((st = check_rank(io, QKV_RNN_IN_SEQ_LENS, 1)) != QKV_OK ||
            (io->inputs[QKV_RNN_IN_SEQ_LENS].rank == 1 &&
             (st = check_dim(io, QKV_RNN_IN_SEQ_LENS, 0, k->batch, "batch_size")) != QKV_OK))
            return st;
    }
    for (size_t in = QKV_RNN_IN_INITIAL_H; in <= QKV_RNN_IN_INITIAL_C; in++) {
        if (!qkv_present(io, in))
            continue;
        if ((st = check_rank(io, in, 3)) != QKV_OK)
            return st;
        if (io->inputs[in].rank != 3)
            continue;
        int32_t ad = a->layout ? 1 : 0, ab = a->layout ? 0 : 1;
        if ((st = check_dim(io, in, ad, k->dirs, "num_directions")) != QKV_OK ||
            (st = check_dim(io, in, ab, k->batch, "batch_size")) != QKV_OK ||
            (st = check_dim(io, in, 2, k->hidden, "hidden_size")) != QKV_OK)
            return st;
    }
    if (qkv_present(io, QKV_RNN_IN_P)) {
        if ((st = check_rank(io, QKV_RNN_IN_P, 2)) != QKV_OK ||
            (io->inputs[QKV_RNN_IN_P].rank == 2 &&
             ((st = check_dim(io, QKV_RNN_IN_P, 0, k->dirs, "num_directions")) != QKV_OK ||
              (st = check_dim(io, QKV_RNN_IN_P, 1, k->hidden < 0 ? -1 : 3 * k->hidden,
                              "3 * hidden_size")) != QKV_OK)))
            return st;
    }
    return QKV_OK;
}

qkv_status qkv_rnn_infer(const qkv_rnn_attrs *a, qkv_kernel_io *io)
{
    qkv_dtype t = io->inputs[QKV_RNN_IN_X].dtype;
    for (size_t in = 1; in < io->n_inputs; in++) {
        if (in == QKV_RNN_IN_SEQ_LENS || !qkv_present(io, in) || io->inputs[in].dtype == t)
            continue;
        return KERR(io, QKV_ERR_TYPE, "input %zu '%s' is %s but input 0 'X' is %s: they must match",
                    in, in_names[in], io->host->dtype_name(io->inputs[in].dtype),
                    io->host->dtype_name(t));
    }
    known_dims k;
    qkv_status st = core_dims(a, io, &k);
    if (st == QKV_OK)
        st = optional_dims(a, io, &k);
    if (st != QKV_OK)
        return st;
    if (io->n_outputs > QKV_RNN_OUT_Y) {
        int64_t y0[4] = {k.seq, k.dirs, k.batch, k.hidden},
                y1[4] = {k.batch, k.seq, k.dirs, k.hidden};
        qkv_set_shape(&io->outputs[QKV_RNN_OUT_Y], t, 4, a->layout ? y1 : y0);
    }
    int64_t s0[3] = {k.dirs, k.batch, k.hidden}, s1[3] = {k.batch, k.dirs, k.hidden};
    for (size_t out = QKV_RNN_OUT_Y_H; out < io->n_outputs && out <= QKV_RNN_OUT_Y_C; out++)
        qkv_set_shape(&io->outputs[out], t, 3, a->layout ? s1 : s0);
    return QKV_OK;
}

void qkv_rnn_dims_of(const qkv_rnn_attrs *a, const qkv_kernel_io *io, qkv_rnn_dims *d)
{
    const qkv_tensor *x = &io->inputs[QKV_RNN_IN_X], *r = &io->inputs[QKV_RNN_IN_R];
    d->seq = (size_t)x->dims[a->layout ? 1 : 0];
    d->batch = (size_t)x->dims[a->layout ? 0 : 1];
    d->input = (size_t)x->dims[2];
    d->hidden = (size_t)r->dims[2];
    d->dirs = a->dirs;
    d->gh = a->cell->gates * d->hidden;
}
