/*
 * rnn_common.h - what RNN, GRU and LSTM (rnn.c, gru.c, lstm.c) share: the
 * attributes, the activation functions, shape inference and validation, and
 * the driver that runs the recurrence (rnn_exec.c). A cell file supplies only
 * its gate arithmetic for one time step (qkv_rnn_cell).
 *
 * Layouts (ONNX): with layout 0, X is (seq, batch, input), Y (seq, dirs,
 * batch, hidden) and Y_h, Y_c, initial_h, initial_c (dirs, batch, hidden);
 * with layout 1 (opset 14), X is (batch, seq, input), Y (batch, seq, dirs,
 * hidden) and the states (batch, dirs, hidden). W is (dirs, G*hidden, input),
 * R (dirs, G*hidden, hidden), B (dirs, 2*G*hidden) (Wb then Rb), where G is
 * the cell's gate count (1, 3, 4); LSTM's P is (dirs, 3*hidden).
 */
#ifndef QKV_OPS_RNN_COMMON_H
#define QKV_OPS_RNN_COMMON_H

#include <stdbool.h>
#include <stddef.h>

#include "gemm_prepack.h"
#include "kernel_util.h"

/* Input and output slots, shared by the three ops. */
enum {
    QKV_RNN_IN_X = 0,
    QKV_RNN_IN_W = 1,
    QKV_RNN_IN_R = 2,
    QKV_RNN_IN_B = 3,
    QKV_RNN_IN_SEQ_LENS = 4,
    QKV_RNN_IN_INITIAL_H = 5,
    QKV_RNN_IN_INITIAL_C = 6, /* LSTM */
    QKV_RNN_IN_P = 7,         /* LSTM */
    QKV_RNN_OUT_Y = 0,
    QKV_RNN_OUT_Y_H = 1,
    QKV_RNN_OUT_Y_C = 2 /* LSTM */
};

/* The activation functions of the ONNX recurrent ops. */
typedef enum qkv_rnn_act_kind {
    QKV_RNN_ACT_RELU,
    QKV_RNN_ACT_TANH,
    QKV_RNN_ACT_SIGMOID,
    QKV_RNN_ACT_AFFINE,           /* alpha x + beta */
    QKV_RNN_ACT_LEAKY_RELU,       /* x >= 0 ? x : alpha x */
    QKV_RNN_ACT_THRESHOLDED_RELU, /* x > alpha ? x : 0 */
    QKV_RNN_ACT_SCALED_TANH,      /* alpha tanh(beta x) */
    QKV_RNN_ACT_HARD_SIGMOID,     /* min(max(alpha x + beta, 0), 1) */
    QKV_RNN_ACT_ELU,              /* x >= 0 ? x : alpha (e^x - 1) */
    QKV_RNN_ACT_SOFTSIGN,         /* x / (1 + |x|) */
    QKV_RNN_ACT_SOFTPLUS          /* log(1 + e^x) */
} qkv_rnn_act_kind;

typedef struct qkv_rnn_act {
    qkv_rnn_act_kind kind;
    float alpha, beta;
} qkv_rnn_act;

/* x[j] = act(clip(x[j])) for j < n, in place; clip <= 0 means no clipping
 * (ONNX clips the input of every activation to [-clip, clip]). */
void qkv_rnn_activate_f32(const qkv_rnn_act *act, float clip, float *x, size_t n);
void qkv_rnn_activate_f64(const qkv_rnn_act *act, float clip, double *x, size_t n);

/* What distinguishes RNN, GRU and LSTM for the shared code. */
typedef struct qkv_rnn_step qkv_rnn_step;
typedef struct qkv_rnn_cell {
    size_t gates;  /* G: rows of W per hidden unit */
    size_t n_acts; /* activations per direction */
    const char *default_acts[3];
    bool has_cell_state; /* LSTM: initial_c, P, Y_c */
    /* One time step of one direction (rnn_exec.c fills the step): reads the
     * pre-activation sums, updates h (and c) of the active batch entries. */
    qkv_status (*step_f32)(const qkv_rnn_step *st);
    qkv_status (*step_f64)(const qkv_rnn_step *st);
} qkv_rnn_cell;

/* The attributes, parsed once in init. */
typedef struct qkv_rnn_attrs {
    const qkv_rnn_cell *cell;
    size_t dirs;              /* 1, or 2 for "bidirectional" */
    bool reverse;             /* "reverse" (dirs 1) */
    int64_t hidden_size;      /* -1 when the attribute is absent: taken from R */
    int64_t layout;           /* 0 or 1 */
    float clip;               /* 0: no clipping */
    bool linear_before_reset; /* GRU */
    bool input_forget;        /* LSTM */
    qkv_rnn_act acts[2][3];   /* [direction][f, g, h] */
} qkv_rnn_attrs;

/* Parses and validates the attributes of node (opset from the host: layout
 * only from 14). Errors name the node and attribute: an unknown direction or
 * activation, a wrong number of activations, layout not 0/1, a negative clip
 * or hidden_size. */
qkv_status qkv_rnn_parse_attrs(const qkv_host_api *host, const qkv_node_ctx *node,
                               const qkv_rnn_cell *cell, qkv_rnn_attrs *a);

/* Sizes of one run, from known shapes. */
typedef struct qkv_rnn_dims {
    size_t seq, batch, input, hidden, dirs;
    size_t gh; /* gates * hidden */
} qkv_rnn_dims;

/* Infer: checks every input's rank and dims against X, W and hidden_size
 * (QKV_ERR_SHAPE naming the input and both sizes; QKV_ERR_TYPE when an input's
 * type differs from X's) and sets the present outputs' types and shapes.
 * Unknown dims pass and give unknown output dims. */
qkv_status qkv_rnn_infer(const qkv_rnn_attrs *a, qkv_kernel_io *io);

/* The dims of io's (known, validated) shapes. */
void qkv_rnn_dims_of(const qkv_rnn_attrs *a, const qkv_kernel_io *io, qkv_rnn_dims *d);

/* Per-node state: the attributes, and W and R packed for qkv's float32 GEMM
 * when they are float32 constants (prepack). */
typedef struct qkv_rnn_state {
    qkv_rnn_attrs attrs;
    /* op(B) = W[d]^T, (input, G*hidden); data NULL when not packed */
    qkv_sgemm_packed_b w[2];
    /* op(B) = R[d]^T, as the recurrence's segments (rnn_exec.c) */
    qkv_sgemm_packed_b r[2][2];
} qkv_rnn_state;

/* The shared callbacks (rnn_exec.c): a cell's init parses with its cell and
 * the rest is common. */
qkv_status qkv_rnn_init(const qkv_rnn_cell *cell, const qkv_host_api *host,
                        const qkv_node_ctx *node, void **state);
void qkv_rnn_destroy(void *state);
qkv_status qkv_rnn_infer_cb(void *state, qkv_kernel_io *io);
qkv_status qkv_rnn_prepack(void **state, const qkv_host_api *host, const qkv_node_ctx *node);
qkv_status qkv_rnn_prepare(void *state, qkv_kernel_io *io);
qkv_status qkv_rnn_compute(const void *state, qkv_kernel_io *io);

/*
 * One time step of one direction, as a cell sees it. For every batch entry
 * b with rows[b] != SIZE_MAX (active at this step):
 *   xw + rows[b] * gh  the input projection X_t W^T plus the biases that
 *                      can be added there (every gate's Wb + Rb, except
 *                      GRU's Rbh when linear_before_reset), (gh);
 *   hr + b * gh        H_{t-1} R^T (GRU without linear_before_reset: only
 *                      the z and r columns; the cell calls recur for h);
 *   h + b * hidden     H_{t-1} in, H_t out; c likewise for LSTM.
 * Inactive entries keep h and c unchanged. The cell may overwrite hr.
 */
struct qkv_rnn_step {
    const qkv_rnn_attrs *a;
    size_t dir, batch, hidden, gh;
    const size_t *rows; /* (batch) */
    const void *xw;     /* (seq * batch, gh) */
    void *hr;           /* (batch, gh) */
    void *h, *c;        /* (batch, hidden); c NULL except LSTM */
    const void *rb_h;   /* GRU linear_before_reset: Rbh (hidden); NULL = 0 */
    const void *p;      /* LSTM peepholes of this direction (3 * hidden); NULL = 0 */
    void *rh;           /* GRU: (batch, hidden) for r * H_{t-1} */
    /* GRU without linear_before_reset: hr[:, 2H:3H] = rh R_h^T (the GEMM's
     * status: a GEMM provider may fail). */
    qkv_status (*recur_h)(const qkv_rnn_step *st);
    void *ctx; /* for recur_h */
};

#endif /* QKV_OPS_RNN_COMMON_H */
