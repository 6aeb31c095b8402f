/*
 * optimizers.c - the training optimizers of domain ai.onnx.preview.training
 * (opset 1): Adagrad, Adam and Momentum (modes "standard" and "nesterov").
 *
 * Inputs: R (scalar learning rate), T (scalar int64 update count), then k
 * tensors to optimize X1..Xk, their gradients G1..Gk, and per optimizer
 * state tensor S one group S1..Sk (Adagrad: H; Adam: V, H; Momentum: V).
 * Outputs: X1_new..Xk_new, then the new value of each state group in input
 * order. Any output may be omitted. Every update is element-wise, as the
 * ONNX operator documents (g = norm_coefficient * x + g throughout):
 *   Adagrad:  r' = R / (1 + T * decay_factor); h' = h + g^2;
 *             x' = x - r' * g / (sqrt(h') + epsilon)
 *   Adam:     v' = alpha v + (1 - alpha) g; h' = beta h + (1 - beta) g^2;
 *             r' = T > 0 ? R sqrt(1 - beta^T) / (1 - alpha^T) : R;
 *             x' = (1 - norm_coefficient_post) (x - r' v' / (sqrt(h') + epsilon))
 *   Momentum: b = T > 0 ? beta : 1; v' = alpha v + b g;
 *             standard x' = x - R v'; nesterov x' = x - R (g + alpha v')
 *
 * Types: R float or double, T int64, each group float or double (X, G and
 * the states of one tensor share X's type and shape; different tensors may
 * differ). Each element is computed in double and rounded once. Large
 * tensors are split across threads.
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "kernel_util.h"

#define TRAINING_DOMAIN "ai.onnx.preview.training"
#define MAX_STATES 2 /* Adam's V and H */

typedef enum opt_kind { OPT_ADAGRAD, OPT_ADAM, OPT_MOMENTUM } opt_kind;

typedef struct opt_attrs {
    opt_kind kind;
    size_t n_states; /* state tensors per optimized tensor */
    size_t k;        /* tensors optimized by the node */
    double norm_coefficient, norm_coefficient_post;
    double alpha, beta, epsilon, decay_factor;
    bool nesterov;
} opt_attrs;

/* One tensor's update: the scalars derived from R and T, and its buffers. */
typedef struct opt_run {
    const opt_attrs *a;
    double rate; /* R adjusted by T (Adagrad's decay, Adam's bias correction) */
    double beta; /* Momentum's gradient coefficient for this T */
    const void *x, *g, *s[MAX_STATES];
    void *x_new, *s_new[MAX_STATES]; /* NULL: output omitted */
} opt_run;

/* The new x and states of one element. s and s_new hold n_states values. */
static double update_1(const opt_run *r, double x, double g, const double *s, double *s_new)
{
    const opt_attrs *a = r->a;
    g += a->norm_coefficient * x;
    switch (a->kind) {
    case OPT_ADAGRAD:
        s_new[0] = s[0] + g * g;
        return x - r->rate * g / (sqrt(s_new[0]) + a->epsilon);
    case OPT_ADAM:
        s_new[0] = a->alpha * s[0] + (1 - a->alpha) * g;
        s_new[1] = a->beta * s[1] + (1 - a->beta) * (g * g);
        return (1 - a->norm_coefficient_post) *
               (x - r->rate * (s_new[0] / (sqrt(s_new[1]) + a->epsilon)));
    case OPT_MOMENTUM:
    default:
        s_new[0] = a->alpha * s[0] + r->beta * g;
        return a->nesterov ? x - r->rate * (g + a->alpha * s_new[0]) : x - r->rate * s_new[0];
    }
}

#define DEFINE_UPDATE(SFX, T)                                                                      \
    static void update_range_##SFX(void *arg, size_t begin, size_t end)                            \
    {                                                                                              \
        const opt_run *r = arg;                                                                    \
        const size_t ns = r->a->n_states;                                                          \
        for (size_t i = begin; i < end; i++) {                                                     \
            double s[MAX_STATES] = {0}, s_new[MAX_STATES] = {0};                                   \
            for (size_t j = 0; j < ns; j++)                                                        \
                s[j] = ((const T *)r->s[j])[i];                                                    \
            double x = update_1(r, ((const T *)r->x)[i], ((const T *)r->g)[i], s, s_new);          \
            if (r->x_new)                                                                          \
                ((T *)r->x_new)[i] = (T)x;                                                         \
            for (size_t j = 0; j < ns; j++)                                                        \
                if (r->s_new[j])                                                                   \
                    ((T *)r->s_new[j])[i] = (T)s_new[j];                                           \
        }                                                                                          \
    }

DEFINE_UPDATE(f32, float)
DEFINE_UPDATE(f64, double)

/* ---- callbacks ----------------------------------------------------------- */

static qkv_status read_float(const qkv_host_api *host, const qkv_node_ctx *node, const char *name,
                             float dflt, bool required, double *out)
{
    *out = dflt;
    if (required && host->attr_type(node, name) == QKV_ATTR_UNDEFINED)
        return NERR(host, node, QKV_ERR_INVALID_MODEL, "attribute '%s' is required", name);
    float v;
    qkv_status st = host->attr_float(node, name, dflt, &v);
    if (st == QKV_OK)
        *out = v;
    return st;
}

static qkv_status read_attrs(const qkv_host_api *host, const qkv_node_ctx *node, opt_attrs *a)
{
    /* defaults from the operator schemas; Momentum's are all required */
    const bool mom = a->kind == OPT_MOMENTUM;
    qkv_status st = read_float(host, node, "norm_coefficient", 0.0f, mom, &a->norm_coefficient);
    if (st == QKV_OK && a->kind == OPT_ADAM)
        st =
            read_float(host, node, "norm_coefficient_post", 0.0f, false, &a->norm_coefficient_post);
    if (st == QKV_OK && a->kind != OPT_ADAGRAD)
        st = read_float(host, node, "alpha", 0.9f, mom, &a->alpha);
    if (st == QKV_OK && a->kind != OPT_ADAGRAD)
        st = read_float(host, node, "beta", 0.999f, mom, &a->beta);
    if (st == QKV_OK && a->kind != OPT_MOMENTUM)
        st = read_float(host, node, "epsilon", 1e-6f, false, &a->epsilon);
    if (st == QKV_OK && a->kind == OPT_ADAGRAD)
        st = read_float(host, node, "decay_factor", 0.0f, false, &a->decay_factor);
    if (st != QKV_OK || !mom)
        return st;
    if (host->attr_type(node, "mode") == QKV_ATTR_UNDEFINED)
        return NERR(host, node, QKV_ERR_INVALID_MODEL, "attribute 'mode' is required");
    const char *mode;
    st = host->attr_string(node, "mode", "", &mode);
    if (st != QKV_OK)
        return st;
    if (strcmp(mode, "nesterov") == 0)
        a->nesterov = true;
    else if (strcmp(mode, "standard") != 0)
        return NERR(host, node, QKV_ERR_INVALID_MODEL,
                    "attribute 'mode' is '%s', expected 'standard' or 'nesterov'", mode);
    return QKV_OK;
}

static qkv_status opt_init(const qkv_kernel *kernel, const qkv_host_api *host,
                           const qkv_node_ctx *node, void **state)
{
    opt_attrs a = {0};
    if (strcmp(kernel->op_type, "Adagrad") == 0) {
        a.kind = OPT_ADAGRAD;
        a.n_states = 1;
    } else if (strcmp(kernel->op_type, "Adam") == 0) {
        a.kind = OPT_ADAM;
        a.n_states = 2;
    } else {
        a.kind = OPT_MOMENTUM;
        a.n_states = 1;
    }
    /* omitted trailing inputs/outputs are not part of the groups either */
    size_t n_in = host->node_input_count(node), n_out = host->node_output_count(node);
    const size_t per_in = 2 + a.n_states, per_out = 1 + a.n_states;
    a.k = n_in >= 2 ? (n_in - 2) / per_in : 0;
    if (n_in < 2 + per_in || (n_in - 2) % per_in != 0)
        return NERR(host, node, QKV_ERR_INVALID_MODEL,
                    "has %zu inputs, expected R, T and then %zu groups of k tensors "
                    "(2 + %zu*k inputs, k >= 1)",
                    n_in, per_in, per_in);
    if (n_out != per_out * a.k)
        return NERR(host, node, QKV_ERR_INVALID_MODEL,
                    "has %zu outputs, expected %zu (%zu groups of the %zu tensors optimized)",
                    n_out, per_out * a.k, per_out, a.k);
    for (size_t i = 0; i < n_in; i++)
        if (!host->node_input_present(node, i))
            return NERR(host, node, QKV_ERR_INVALID_MODEL, "input %zu%s is required but omitted", i,
                        i == 0   ? " 'R'"
                        : i == 1 ? " 'T'"
                                 : "");
    qkv_status st = read_attrs(host, node, &a);
    if (st != QKV_OK)
        return st;
    opt_attrs *s = malloc(sizeof *s);
    if (!s)
        return NERR(host, node, QKV_ERR_OUT_OF_MEMORY, "kernel state");
    *s = a;
    *state = s;
    return QKV_OK;
}

static void opt_destroy(void *state) { free(state); }

static const char *group_name(const opt_attrs *a, size_t group)
{
    static const char *const adagrad[] = {"X", "G", "H"}, *const adam[] = {"X", "G", "V", "H"},
                             *const momentum[] = {"X", "G", "V"};
    switch (a->kind) {
    case OPT_ADAGRAD:
        return adagrad[group];
    case OPT_ADAM:
        return adam[group];
    default:
        return momentum[group];
    }
}

/* R and T hold one element each (rank 0, or every dim 1). */
static qkv_status check_scalar(qkv_kernel_io *io, size_t i, const char *name)
{
    const qkv_tensor *t = &io->inputs[i];
    bool ok = true;
    for (int32_t d = 0; d < t->rank; d++)
        ok = ok && (t->dims[d] == 1 || t->dims[d] < 0);
    if (ok)
        return QKV_OK;
    char buf[96];
    return KERR(io, QKV_ERR_SHAPE, "input %zu '%s' has shape %s, expected a scalar", i, name,
                qkv_dims_str(t, buf, sizeof buf));
}

static bool same_shape(const qkv_tensor *a, const qkv_tensor *b)
{
    if (a->rank < 0 || b->rank < 0)
        return true;
    if (a->rank != b->rank)
        return false;
    for (int32_t d = 0; d < a->rank; d++)
        if (a->dims[d] >= 0 && b->dims[d] >= 0 && a->dims[d] != b->dims[d])
            return false;
    return true;
}

static qkv_status opt_infer(void *state, qkv_kernel_io *io)
{
    const opt_attrs *a = state;
    const size_t per_out = 1 + a->n_states;
    for (size_t i = 0; i < a->k; i++) {
        const qkv_tensor *x = &io->inputs[2 + i];
        for (size_t o = 0; o < per_out; o++)
            qkv_set_shape(&io->outputs[o * a->k + i], x->dtype, x->rank, x->dims);
    }
    qkv_status st = check_scalar(io, 0, "R");
    if (st == QKV_OK)
        st = check_scalar(io, 1, "T");
    for (size_t i = 0; i < a->k && st == QKV_OK; i++) {
        const size_t xi = 2 + i;
        const qkv_tensor *x = &io->inputs[xi];
        for (size_t grp = 1; grp < 2 + a->n_states; grp++) {
            const size_t j = 2 + grp * a->k + i;
            const qkv_tensor *t = &io->inputs[j];
            char sa[96], sb[96];
            if (t->dtype != x->dtype)
                return KERR(io, QKV_ERR_TYPE,
                            "input %zu '%s%zu' has type %s, expected %s (the type of input %zu "
                            "'X%zu')",
                            j, group_name(a, grp), i + 1, io->host->dtype_name(t->dtype),
                            io->host->dtype_name(x->dtype), xi, i + 1);
            if (!same_shape(t, x))
                return KERR(io, QKV_ERR_SHAPE,
                            "input %zu '%s%zu' has shape %s, expected %s (the shape of input "
                            "%zu 'X%zu')",
                            j, group_name(a, grp), i + 1, qkv_dims_str(t, sa, sizeof sa),
                            qkv_dims_str(x, sb, sizeof sb), xi, i + 1);
        }
    }
    return st;
}

static double scalar_at(const qkv_tensor *t)
{
    return t->dtype == QKV_DTYPE_DOUBLE ? ((const double *)t->data)[0]
                                        : ((const float *)t->data)[0];
}

static qkv_status opt_compute(const void *state, qkv_kernel_io *io)
{
    const opt_attrs *a = state;
    const double rate = scalar_at(&io->inputs[0]);
    const int64_t t = qkv_int_at(&io->inputs[1], 0);
    opt_run r = {.a = a, .rate = rate, .beta = t > 0 ? a->beta : 1.0};
    if (a->kind == OPT_ADAGRAD)
        r.rate = rate / (1 + (double)t * a->decay_factor);
    else if (a->kind == OPT_ADAM && t > 0)
        r.rate = rate * sqrt(1 - pow(a->beta, (double)t)) / (1 - pow(a->alpha, (double)t));
    for (size_t i = 0; i < a->k; i++) {
        const qkv_tensor *x = &io->inputs[2 + i];
        r.x = x->data;
        r.g = io->inputs[2 + a->k + i].data;
        r.x_new = io->outputs[i].data;
        for (size_t j = 0; j < a->n_states; j++) {
            r.s[j] = io->inputs[2 + (2 + j) * a->k + i].data;
            r.s_new[j] = io->outputs[(1 + j) * a->k + i].data;
        }
        const size_t n = qkv_numel(x);
        switch (x->dtype) {
        case QKV_DTYPE_FLOAT:
            qkv_run_range(io, n, n * sizeof(float) * (1 + a->n_states), update_range_f32, &r);
            break;
        case QKV_DTYPE_DOUBLE:
            qkv_run_range(io, n, n * sizeof(double) * (1 + a->n_states), update_range_f64, &r);
            break;
        default:
            return KERR(io, QKV_ERR_TYPE, "input %zu 'X%zu' has type %s, not supported", 2 + i,
                        i + 1, io->host->dtype_name(x->dtype));
        }
    }
    return QKV_OK;
}

#define OPT_KERNEL(NAME)                                                                           \
    {                                                                                              \
        QKV_KERNEL_V1,                                                                             \
            .domain = TRAINING_DOMAIN, .op_type = (NAME), .since_version = 1, .min_inputs = 3,     \
            .max_inputs = -1, .min_outputs = 1, .max_outputs = -1, .n_input_types = 3,             \
            .input_types = {QKV_TYPES_FLOATS, QKV_T(INT64), QKV_TYPES_FLOATS}, .init = opt_init,   \
            .infer = opt_infer, .compute = opt_compute, .destroy = opt_destroy,                    \
    }

static const qkv_kernel kernels[] = {
    OPT_KERNEL("Adagrad"),
    OPT_KERNEL("Adam"),
    OPT_KERNEL("Momentum"),
};

/* The Adagrad, Adam and Momentum descriptors; *count set to their number. */
const qkv_kernel *qkv_ops_optimizers(size_t *count)
{
    *count = sizeof kernels / sizeof kernels[0];
    return kernels;
}
