/*
 * lstm.c - LSTM (opsets 7 and 14; 14 adds layout), gates i, o, f, c in that
 * order of W's and R's rows, P = (P_i, P_o, P_f), activations f (Sigmoid),
 * g (Tanh), h (Tanh):
 *   i = f(X W_i^T + H R_i^T + P_i . C + Wbi + Rbi)
 *   f = f(X W_f^T + H R_f^T + P_f . C + Wbf + Rbf)   (1 - i with input_forget)
 *   c = g(X W_c^T + H R_c^T + Wbc + Rbc)
 *   C' = f . C + i . c
 *   o = f(X W_o^T + H R_o^T + P_o . C' + Wbo + Rbo)
 *   H' = o . h(C')
 * clip bounds the input of f and g; h(C') is not clipped (the cell state
 * itself is not a gate's sum; ONNX Runtime does the same).
 *
 * The attributes, shapes, GEMMs, directions, sequence_lens and layouts are
 * shared with RNN and GRU (rnn_common.h, rnn_exec.c). Types: float, double.
 */
#include "rnn_common.h"

#define DEFINE_LSTM_STEP(SUF, T)                                                                   \
    static qkv_status lstm_step_##SUF(const qkv_rnn_step *st)                                      \
    {                                                                                              \
        const qkv_rnn_act *f = &st->a->acts[st->dir][0], *g = &st->a->acts[st->dir][1],            \
                          *ha = &st->a->acts[st->dir][2];                                          \
        const size_t hid = st->hidden, gh = st->gh;                                                \
        const float clip = st->a->clip;                                                            \
        const T *p = st->p;                                                                        \
        for (size_t b = 0; b < st->batch; b++) {                                                   \
            if (st->rows[b] == SIZE_MAX)                                                           \
                continue;                                                                          \
            const T *x = (const T *)st->xw + st->rows[b] * gh;                                     \
            T *gi = (T *)st->hr + b * gh, *go = gi + hid, *gf = gi + 2 * hid, *gc = gi + 3 * hid;  \
            T *c = (T *)st->c + b * hid, *h = (T *)st->h + b * hid;                                \
            for (size_t j = 0; j < gh; j++)                                                        \
                gi[j] += x[j];                                                                     \
            if (p)                                                                                 \
                for (size_t j = 0; j < hid; j++) {                                                 \
                    gi[j] += p[j] * c[j];                                                          \
                    gf[j] += p[2 * hid + j] * c[j];                                                \
                }                                                                                  \
            qkv_rnn_activate_##SUF(f, clip, gi, hid);                                              \
            if (st->a->input_forget)                                                               \
                for (size_t j = 0; j < hid; j++)                                                   \
                    gf[j] = 1 - gi[j];                                                             \
            else                                                                                   \
                qkv_rnn_activate_##SUF(f, clip, gf, hid);                                          \
            qkv_rnn_activate_##SUF(g, clip, gc, hid);                                              \
            for (size_t j = 0; j < hid; j++)                                                       \
                c[j] = gf[j] * c[j] + gi[j] * gc[j];                                               \
            if (p)                                                                                 \
                for (size_t j = 0; j < hid; j++)                                                   \
                    go[j] += p[hid + j] * c[j];                                                    \
            qkv_rnn_activate_##SUF(f, clip, go, hid);                                              \
            for (size_t j = 0; j < hid; j++)                                                       \
                gc[j] = c[j];                                                                      \
            qkv_rnn_activate_##SUF(ha, 0, gc, hid);                                                \
            for (size_t j = 0; j < hid; j++)                                                       \
                h[j] = go[j] * gc[j];                                                              \
        }                                                                                          \
        return QKV_OK;                                                                             \
    }
DEFINE_LSTM_STEP(f32, float)
DEFINE_LSTM_STEP(f64, double)

static const qkv_rnn_cell lstm_cell = {
    .gates = 4,
    .n_acts = 3,
    .default_acts = {"Sigmoid", "Tanh", "Tanh"},
    .has_cell_state = true,
    .step_f32 = lstm_step_f32,
    .step_f64 = lstm_step_f64,
};

static qkv_status lstm_init(const qkv_kernel *kernel, const qkv_host_api *host,
                            const qkv_node_ctx *node, void **state)
{
    (void)kernel;
    return qkv_rnn_init(&lstm_cell, host, node, state);
}

#define LSTM_KERNEL(since, until)                                                                  \
    {                                                                                              \
        QKV_KERNEL_V1, .domain = "", .op_type = "LSTM", .since_version = (since),                  \
                       .until_version = (until), .min_inputs = 3, .max_inputs = 8,                 \
                       .min_outputs = 0, .max_outputs = 3, .n_input_types = 8,                     \
                       .input_types = {QKV_TYPES_FLOATS, QKV_TYPES_FLOATS, QKV_TYPES_FLOATS,       \
                                       QKV_TYPES_FLOATS, QKV_TYPES_INDEX,  QKV_TYPES_FLOATS,       \
                                       QKV_TYPES_FLOATS, QKV_TYPES_FLOATS},                        \
                       .init = lstm_init, .infer = qkv_rnn_infer_cb, .prepare = qkv_rnn_prepare,   \
                       .compute = qkv_rnn_compute, .destroy = qkv_rnn_destroy,                     \
                       .prepack = qkv_rnn_prepack,                                                 \
    }

static const qkv_kernel kernels[] = {LSTM_KERNEL(7, 13), LSTM_KERNEL(14, 0)};

/* The LSTM descriptors (opsets 7-13 and 14+); *count set to their number. */
const qkv_kernel *qkv_ops_lstm(size_t *count)
{
    *count = sizeof kernels / sizeof kernels[0];
    return kernels;
}
