/*
 * rnn.c - RNN (opsets 7 and 14; 14 adds layout): the simple recurrent
 * layer, H_t = f(X_t W^T + H_{t-1} R^T + Wb + Rb), f default Tanh.
 *
 * The attributes, shapes, GEMMs, directions, sequence_lens and layouts are
 * shared with GRU and LSTM (rnn_common.h, rnn_exec.c); this file is the
 * step. Types: float and double.
 */
#include <string.h>

#include "rnn_common.h"

/* h_b = f(xw_b + hr_b) for the active entries. */
#define DEFINE_RNN_STEP(SUF, T)                                                                    \
    static qkv_status rnn_step_##SUF(const qkv_rnn_step *st)                                       \
    {                                                                                              \
        const qkv_rnn_act *f = &st->a->acts[st->dir][0];                                           \
        size_t hid = st->hidden;                                                                   \
        for (size_t b = 0; b < st->batch; b++) {                                                   \
            if (st->rows[b] == SIZE_MAX)                                                           \
                continue;                                                                          \
            const T *x = (const T *)st->xw + st->rows[b] * st->gh;                                 \
            T *g = (T *)st->hr + b * st->gh;                                                       \
            for (size_t j = 0; j < hid; j++)                                                       \
                g[j] += x[j];                                                                      \
            qkv_rnn_activate_##SUF(f, st->a->clip, g, hid);                                        \
            memcpy((T *)st->h + b * hid, g, hid * sizeof(T));                                      \
        }                                                                                          \
        return QKV_OK;                                                                             \
    }
DEFINE_RNN_STEP(f32, float)
DEFINE_RNN_STEP(f64, double)

static const qkv_rnn_cell rnn_cell = {
    .gates = 1,
    .n_acts = 1,
    .default_acts = {"Tanh"},
    .has_cell_state = false,
    .step_f32 = rnn_step_f32,
    .step_f64 = rnn_step_f64,
};

static qkv_status rnn_init(const qkv_kernel *kernel, const qkv_host_api *host,
                           const qkv_node_ctx *node, void **state)
{
    (void)kernel;
    return qkv_rnn_init(&rnn_cell, host, node, state);
}

#define RNN_KERNEL(since, until)                                                                   \
    {                                                                                              \
        QKV_KERNEL_V1, .domain = "", .op_type = "RNN", .since_version = (since),                   \
                       .until_version = (until), .min_inputs = 3, .max_inputs = 6,                 \
                       .min_outputs = 0, .max_outputs = 2, .n_input_types = 6,                     \
                       .input_types = {QKV_TYPES_FLOATS, QKV_TYPES_FLOATS, QKV_TYPES_FLOATS,       \
                                       QKV_TYPES_FLOATS, QKV_TYPES_INDEX,  QKV_TYPES_FLOATS},      \
                       .init = rnn_init, .infer = qkv_rnn_infer_cb, .prepare = qkv_rnn_prepare,    \
                       .compute = qkv_rnn_compute, .destroy = qkv_rnn_destroy,                     \
                       .prepack = qkv_rnn_prepack,                                                 \
    }

static const qkv_kernel kernels[] = {RNN_KERNEL(7, 13), RNN_KERNEL(14, 0)};

/* The RNN descriptors (opsets 7-13 and 14+); *count set to their number. */
const qkv_kernel *qkv_ops_rnn(size_t *count)
{
    *count = sizeof kernels / sizeof kernels[0];
    return kernels;
}
