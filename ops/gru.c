/*
 * gru.c - GRU (opsets 7 and 14; 14 adds layout), gates z, r, h in that
 * order of W's and R's rows, f default Sigmoid and g default Tanh:
 *   z = f(X W_z^T + H R_z^T + Wbz + Rbz)
 *   r = f(X W_r^T + H R_r^T + Wbr + Rbr)
 *   h = g(X W_h^T + (r . H) R_h^T + Rbh + Wbh)     linear_before_reset = 0
 *   h = g(X W_h^T + r . (H R_h^T + Rbh) + Wbh)     linear_before_reset != 0
 *   H' = (1 - z) . h + z . H
 * Without linear_before_reset the h gate's recurrence multiply needs r
 * first, so it is a second GEMM per step (step.recur_h).
 *
 * The attributes, shapes, GEMMs, directions, sequence_lens and layouts are
 * shared with RNN and LSTM (rnn_common.h, rnn_exec.c). Types: float, double.
 */
#include "rnn_common.h"

#define DEFINE_GRU_STEP(SUF, T)                                                                    \
    static qkv_status gru_step_##SUF(const qkv_rnn_step *st)                                       \
    {                                                                                              \
        const qkv_rnn_act *f = &st->a->acts[st->dir][0], *g = &st->a->acts[st->dir][1];            \
        const size_t hid = st->hidden, gh = st->gh;                                                \
        const float clip = st->a->clip;                                                            \
        const bool lbr = st->a->linear_before_reset;                                               \
        const T *rbh = st->rb_h;                                                                   \
        /* z and r */                                                                              \
        for (size_t b = 0; b < st->batch; b++) {                                                   \
            T *rh = (T *)st->rh + b * hid;                                                         \
            if (st->rows[b] == SIZE_MAX) {                                                         \
                for (size_t j = 0; j < hid; j++)                                                   \
                    rh[j] = 0;                                                                     \
                continue;                                                                          \
            }                                                                                      \
            const T *x = (const T *)st->xw + st->rows[b] * gh;                                     \
            T *zr = (T *)st->hr + b * gh;                                                          \
            for (size_t j = 0; j < 2 * hid; j++)                                                   \
                zr[j] += x[j];                                                                     \
            qkv_rnn_activate_##SUF(f, clip, zr, 2 * hid);                                          \
            const T *h = (const T *)st->h + b * hid;                                               \
            for (size_t j = 0; j < hid; j++)                                                       \
                rh[j] = zr[hid + j] * h[j];                                                        \
        }                                                                                          \
        if (!lbr) {                                                                                \
            qkv_status s = st->recur_h(st);                                                        \
            if (s != QKV_OK)                                                                       \
                return s;                                                                          \
        }                                                                                          \
        /* h and the new state */                                                                  \
        for (size_t b = 0; b < st->batch; b++) {                                                   \
            if (st->rows[b] == SIZE_MAX)                                                           \
                continue;                                                                          \
            const T *x = (const T *)st->xw + st->rows[b] * gh + 2 * hid;                           \
            T *z = (T *)st->hr + b * gh, *r = z + hid, *hc = z + 2 * hid;                          \
            for (size_t j = 0; j < hid; j++)                                                       \
                hc[j] = lbr ? x[j] + r[j] * (hc[j] + (rbh ? rbh[j] : 0)) : x[j] + hc[j];           \
            qkv_rnn_activate_##SUF(g, clip, hc, hid);                                              \
            T *h = (T *)st->h + b * hid;                                                           \
            for (size_t j = 0; j < hid; j++)                                                       \
                h[j] = (1 - z[j]) * hc[j] + z[j] * h[j];                                           \
        }                                                                                          \
        return QKV_OK;                                                                             \
    }
DEFINE_GRU_STEP(f32, float)
DEFINE_GRU_STEP(f64, double)

static const qkv_rnn_cell gru_cell = {
    .gates = 3,
    .n_acts = 2,
    .default_acts = {"Sigmoid", "Tanh"},
    .has_cell_state = false,
    .step_f32 = gru_step_f32,
    .step_f64 = gru_step_f64,
};

static qkv_status gru_init(const qkv_kernel *kernel, const qkv_host_api *host,
                           const qkv_node_ctx *node, void **state)
{
    (void)kernel;
    return qkv_rnn_init(&gru_cell, host, node, state);
}

#define GRU_KERNEL(since, until)                                                                   \
    {                                                                                              \
        QKV_KERNEL_V1, .domain = "", .op_type = "GRU", .since_version = (since),                   \
                       .until_version = (until), .min_inputs = 3, .max_inputs = 6,                 \
                       .min_outputs = 0, .max_outputs = 2, .n_input_types = 6,                     \
                       .input_types = {QKV_TYPES_FLOATS, QKV_TYPES_FLOATS, QKV_TYPES_FLOATS,       \
                                       QKV_TYPES_FLOATS, QKV_TYPES_INDEX,  QKV_TYPES_FLOATS},      \
                       .init = gru_init, .infer = qkv_rnn_infer_cb, .prepare = qkv_rnn_prepare,    \
                       .compute = qkv_rnn_compute, .destroy = qkv_rnn_destroy,                     \
                       .prepack = qkv_rnn_prepack,                                                 \
    }

static const qkv_kernel kernels[] = {GRU_KERNEL(7, 13), GRU_KERNEL(14, 0)};

/* The GRU descriptors (opsets 7-13 and 14+); *count set to their number. */
const qkv_kernel *qkv_ops_gru(size_t *count)
{
    *count = sizeof kernels / sizeof kernels[0];
    return kernels;
}
