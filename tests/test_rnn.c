/* RNN, GRU and LSTM against a naive reference written here from the ONNX
 * equations (double precision, step by step, no shared code with the
 * kernels): every attribute, both layouts, every direction, sequence_lens,
 * initial states, peepholes, float and double, omitted outputs, and each
 * error path. Whole models (omitted outputs, packed constant weights, PyTorch
 * exports) are in test_rnn_models.c. */
#include <criterion/criterion.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "kernel_harness.h"

/* float32 kernels against a double reference: a few roundings per gate
 * over at most 7 recurrent steps stay well under 1e-5 absolute on values of
 * order 1; 1e-4 relative covers the larger Affine/Relu outputs. */
#define ATOL 2e-5
#define RTOL 1e-4

/* ---- the reference ------------------------------------------------------------ */

typedef struct ref_act {
    const char *name;
    float alpha, beta;
} ref_act;

typedef struct rcase {
    const char *op; /* "RNN", "GRU", "LSTM" */
    size_t seq, batch, input, hidden;
    const char *direction; /* NULL: forward */
    int layout;
    float clip; /* 0: none */
    int lbr, input_forget;
    bool custom_acts; /* acts below are given as attributes */
    ref_act acts[2][3];
    bool has_b, has_lens, has_h0, has_c0, has_p;
    int32_t lens[8];
    bool dbl; /* run in double */
} rcase;

static size_t gates_of(const char *op) { return op[0] == 'R' ? 1 : op[0] == 'G' ? 3 : 4; }
static size_t nacts_of(const char *op) { return op[0] == 'R' ? 1 : op[0] == 'G' ? 2 : 3; }
static size_t dirs_of(const rcase *c)
{
    return c->direction && strcmp(c->direction, "bidirectional") == 0 ? 2 : 1;
}

static double ref_apply(const ref_act *a, double x, double clip)
{
    if (clip > 0)
        x = fmin(fmax(x, -clip), clip);
    const char *n = a->name;
    double al = a->alpha, be = a->beta;
    if (!strcmp(n, "Relu"))
        return x > 0 ? x : 0;
    if (!strcmp(n, "Tanh"))
        return tanh(x);
    if (!strcmp(n, "Sigmoid"))
        return 1 / (1 + exp(-x));
    if (!strcmp(n, "Affine"))
        return al * x + be;
    if (!strcmp(n, "LeakyRelu"))
        return x >= 0 ? x : al * x;
    if (!strcmp(n, "ThresholdedRelu"))
        return x > al ? x : 0;
    if (!strcmp(n, "ScaledTanh"))
        return al * tanh(be * x);
    if (!strcmp(n, "HardSigmoid"))
        return fmin(fmax(al * x + be, 0), 1);
    if (!strcmp(n, "Elu"))
        return x >= 0 ? x : al * (exp(x) - 1);
    if (!strcmp(n, "Softsign"))
        return x / (1 + fabs(x));
    if (!strcmp(n, "Softplus"))
        return log(1 + exp(x));
    cr_assert_fail("reference: unknown activation %s", n);
    return 0;
}

typedef struct rdata {
    double *x, *w, *r, *b, *h0, *c0, *p; /* as the op's inputs, in double */
} rdata;

/* Index of X[t][b][i] for the layout. */
static size_t xi(const rcase *c, size_t t, size_t b, size_t i)
{
    return (c->layout ? b * c->seq + t : t * c->batch + b) * c->input + i;
}
/* Index of a state [d][b][j] (layout 0) or [b][d][j] (layout 1). */
static size_t si(const rcase *c, size_t d, size_t b, size_t j)
{
    size_t D = dirs_of(c);
    return (c->layout ? b * D + d : d * c->batch + b) * c->hidden + j;
}
static size_t yi(const rcase *c, size_t t, size_t d, size_t b, size_t j)
{
    size_t D = dirs_of(c);
    return (c->layout ? (b * c->seq + t) * D + d : (t * D + d) * c->batch + b) * c->hidden + j;
}

/* The ONNX equations, one entry, one direction, one step at a time. */
static void reference(const rcase *c, const rdata *in, double *y, double *yh, double *yc)
{
    size_t G = gates_of(c->op), H = c->hidden, I = c->input, D = dirs_of(c);
    bool rev1 = c->direction && !strcmp(c->direction, "reverse");
    double *h = calloc(H, sizeof *h), *cs = calloc(H, sizeof *cs),
           *pre = calloc(G * H, sizeof *pre), *hn = calloc(H, sizeof *hn);
    memset(y, 0, c->seq * D * c->batch * H * sizeof *y);
    for (size_t d = 0; d < D; d++) {
        const double *W = in->w + d * G * H * I, *R = in->r + d * G * H * H;
        const double *Wb = in->b ? in->b + d * 2 * G * H : NULL, *Rb = Wb ? Wb + G * H : NULL;
        const double *P = in->p ? in->p + d * 3 * H : NULL;
        const ref_act *A = c->acts[d];
        for (size_t b = 0; b < c->batch; b++) {
            size_t len = c->has_lens ? (size_t)c->lens[b] : c->seq;
            for (size_t j = 0; j < H; j++) {
                h[j] = in->h0 ? in->h0[si(c, d, b, j)] : 0;
                cs[j] = in->c0 ? in->c0[si(c, d, b, j)] : 0;
            }
            for (size_t s = 0; s < len; s++) {
                size_t t = (rev1 || d == 1) ? len - 1 - s : s;
                /* pre[g] = x W_g^T + Wb_g, and hr[g] = h R_g^T + Rb_g kept apart for GRU */
                double hr[4 * 64];
                for (size_t g = 0; g < G * H; g++) {
                    double xw = Wb ? Wb[g] : 0, rr = Rb ? Rb[g] : 0;
                    for (size_t i = 0; i < I; i++)
                        xw += in->x[xi(c, t, b, i)] * W[g * I + i];
                    for (size_t k = 0; k < H; k++)
                        rr += h[k] * R[g * H + k];
                    pre[g] = xw;
                    hr[g] = rr;
                }
                if (G == 1) {
                    for (size_t j = 0; j < H; j++)
                        hn[j] = ref_apply(&A[0], pre[j] + hr[j], c->clip);
                } else if (G == 3) {
                    for (size_t j = 0; j < H; j++) {
                        double z = ref_apply(&A[0], pre[j] + hr[j], c->clip);
                        double r = ref_apply(&A[0], pre[H + j] + hr[H + j], c->clip);
                        double hh;
                        if (c->lbr) {
                            hh = pre[2 * H + j] + r * hr[2 * H + j];
                        } else {
                            double rr = Rb ? Rb[2 * H + j] : 0;
                            for (size_t k = 0; k < H; k++) {
                                double rk = ref_apply(&A[0], pre[H + k] + hr[H + k], c->clip);
                                rr += rk * h[k] * R[(2 * H + j) * H + k];
                            }
                            hh = pre[2 * H + j] + rr;
                        }
                        hh = ref_apply(&A[1], hh, c->clip);
                        hn[j] = (1 - z) * hh + z * h[j];
                    }
                } else {
                    for (size_t j = 0; j < H; j++) {
                        double pi = P ? P[j] : 0, po = P ? P[H + j] : 0, pf = P ? P[2 * H + j] : 0;
                        double ig = ref_apply(&A[0], pre[j] + hr[j] + pi * cs[j], c->clip);
                        double fg =
                            c->input_forget
                                ? 1 - ig
                                : ref_apply(&A[0], pre[2 * H + j] + hr[2 * H + j] + pf * cs[j],
                                            c->clip);
                        double cg = ref_apply(&A[1], pre[3 * H + j] + hr[3 * H + j], c->clip);
                        double cn = fg * cs[j] + ig * cg;
                        double og = ref_apply(&A[0], pre[H + j] + hr[H + j] + po * cn, c->clip);
                        cs[j] = cn;
                        hn[j] = og * ref_apply(&A[2], cn, 0);
                    }
                }
                memcpy(h, hn, H * sizeof *h);
                for (size_t j = 0; j < H; j++)
                    y[yi(c, t, d, b, j)] = h[j];
            }
            for (size_t j = 0; j < H; j++) {
                yh[si(c, d, b, j)] = h[j];
                yc[si(c, d, b, j)] = cs[j];
            }
        }
    }
    free(h), free(cs), free(pre), free(hn);
}

/* ---- running the kernel --------------------------------------------------------- */

static const char *default_act(const char *op, size_t f)
{
    if (op[0] == 'R')
        return "Tanh";
    return f == 0 ? "Sigmoid" : "Tanh";
}

/* A tensor of dtype float or double holding v (n values), malloc'd. */
static qkv_tensor mk(bool dbl, int32_t rank, const int64_t *dims, const double *v, size_t n)
{
    void *p = malloc((n ? n : 1) * (dbl ? 8 : 4));
    for (size_t i = 0; i < n; i++) {
        if (dbl)
            ((double *)p)[i] = v[i];
        else
            ((float *)p)[i] = (float)v[i];
    }
    return kh_tensor(dbl ? QKV_DTYPE_DOUBLE : QKV_DTYPE_FLOAT, rank, dims, p);
}

static double *rnd(size_t n, uint32_t seed, double scale)
{
    float *f = malloc((n ? n : 1) * sizeof *f);
    double *d = malloc((n ? n : 1) * sizeof *d);
    kh_fill_random(f, n, seed);
    for (size_t i = 0; i < n; i++)
        d[i] = (double)f[i] * scale; /* float values: exact in both types */
    free(f);
    return d;
}

static double val(const qkv_tensor *t, size_t i)
{
    return t->dtype == QKV_DTYPE_DOUBLE ? ((double *)t->data)[i] : ((float *)t->data)[i];
}

static void expect_close(const qkv_tensor *got, const double *want, size_t n, const char *what)
{
    for (size_t i = 0; i < n; i++) {
        double g = val(got, i), w = want[i];
        cr_assert(fabs(g - w) <= ATOL + RTOL * fabs(w), "%s: element %zu is %.9g, expected %.9g",
                  what, i, g, w);
    }
}

/* Fills in default activations of c. */
static void resolve_acts(rcase *c)
{
    if (c->custom_acts)
        return;
    for (size_t d = 0; d < 2; d++)
        for (size_t f = 0; f < nacts_of(c->op); f++)
            c->acts[d][f] = (ref_act){default_act(c->op, f), 0, 0};
}

static bool takes_alpha(const char *n)
{
    return !strcmp(n, "Affine") || !strcmp(n, "LeakyRelu") || !strcmp(n, "ThresholdedRelu") ||
           !strcmp(n, "ScaledTanh") || !strcmp(n, "HardSigmoid") || !strcmp(n, "Elu");
}
static bool takes_beta(const char *n)
{
    return !strcmp(n, "Affine") || !strcmp(n, "ScaledTanh") || !strcmp(n, "HardSigmoid");
}

/* Builds the node for c (n_outputs outputs, opset 14, or 7 for layout 0 when
 * opset7), with its inputs in ins (malloc'd data) and the reference data. */
static kh_node *build(const rcase *c, size_t n_outputs, int64_t opset, qkv_tensor *ins, rdata *rd,
                      uint32_t seed)
{
    size_t G = gates_of(c->op), H = c->hidden, I = c->input, D = dirs_of(c), B = c->batch;
    bool lstm = G == 4;
    size_t n_in = lstm ? 8 : 6;
    kh_node *n = kh_node_create(c->op, opset, n_in, n_outputs);
    kh_attr_int(n, "hidden_size", (int64_t)H);
    if (c->direction)
        kh_attr_string(n, "direction", c->direction);
    if (c->layout)
        kh_attr_int(n, "layout", c->layout);
    if (c->clip > 0)
        kh_attr_float(n, "clip", c->clip);
    if (G == 3 && c->lbr)
        kh_attr_int(n, "linear_before_reset", 1);
    if (lstm && c->input_forget)
        kh_attr_int(n, "input_forget", 1);
    if (c->custom_acts) {
        const char *names[6];
        float al[6], be[6];
        size_t nn = 0, na = 0, nb = 0;
        for (size_t d = 0; d < D; d++)
            for (size_t f = 0; f < nacts_of(c->op); f++) {
                const ref_act *a = &c->acts[d][f];
                names[nn++] = a->name;
                if (takes_alpha(a->name))
                    al[na++] = a->alpha;
                if (takes_beta(a->name))
                    be[nb++] = a->beta;
            }
        kh_attr_strings(n, "activations", names, nn);
        if (na)
            kh_attr_floats(n, "activation_alpha", al, na);
        if (nb)
            kh_attr_floats(n, "activation_beta", be, nb);
    }
    memset(rd, 0, sizeof *rd);
    int64_t xd[3] = {(int64_t)(c->layout ? B : c->seq), (int64_t)(c->layout ? c->seq : B),
                     (int64_t)I};
    int64_t sd[3] = {(int64_t)(c->layout ? B : D), (int64_t)(c->layout ? D : B), (int64_t)H};
    rd->x = rnd(c->seq * B * I, seed, 1.0);
    rd->w = rnd(D * G * H * I, seed + 1, 0.6);
    rd->r = rnd(D * G * H * H, seed + 2, 0.6);
    ins[0] = mk(c->dbl, 3, xd, rd->x, c->seq * B * I);
    ins[1] =
        mk(c->dbl, 3, (int64_t[]){(int64_t)D, (int64_t)(G * H), (int64_t)I}, rd->w, D * G * H * I);
    ins[2] =
        mk(c->dbl, 3, (int64_t[]){(int64_t)D, (int64_t)(G * H), (int64_t)H}, rd->r, D * G * H * H);
    for (size_t k = 3; k < n_in; k++)
        memset(&ins[k], 0, sizeof ins[k]);
    if (c->has_b) {
        rd->b = rnd(D * 2 * G * H, seed + 3, 0.5);
        ins[3] = mk(c->dbl, 2, (int64_t[]){(int64_t)D, (int64_t)(2 * G * H)}, rd->b, D * 2 * G * H);
    } else {
        kh_omit_input(n, 3);
    }
    if (c->has_lens) {
        int32_t *l = malloc(B * sizeof *l);
        memcpy(l, c->lens, B * sizeof *l);
        ins[4] = kh_tensor(QKV_DTYPE_INT32, 1, (int64_t[]){(int64_t)B}, l);
    } else {
        kh_omit_input(n, 4);
    }
    if (c->has_h0) {
        rd->h0 = rnd(D * B * H, seed + 4, 0.8);
        ins[5] = mk(c->dbl, 3, sd, rd->h0, D * B * H);
    } else {
        kh_omit_input(n, 5);
    }
    if (lstm) {
        if (c->has_c0) {
            rd->c0 = rnd(D * B * H, seed + 5, 0.8);
            ins[6] = mk(c->dbl, 3, sd, rd->c0, D * B * H);
        } else {
            kh_omit_input(n, 6);
        }
        if (c->has_p) {
            rd->p = rnd(D * 3 * H, seed + 6, 0.5);
            ins[7] = mk(c->dbl, 2, (int64_t[]){(int64_t)D, (int64_t)(3 * H)}, rd->p, D * 3 * H);
        } else {
            kh_omit_input(n, 7);
        }
    }
    return n;
}

static void free_case(qkv_tensor *ins, size_t n_in, rdata *rd)
{
    for (size_t k = 0; k < n_in; k++)
        free(ins[k].data);
    free(rd->x), free(rd->w), free(rd->r), free(rd->b), free(rd->h0), free(rd->c0), free(rd->p);
}

/* Runs c with n_outputs outputs and checks each against the reference. */
static void check_case(rcase c, size_t n_outputs, int64_t opset, uint32_t seed)
{
    resolve_acts(&c);
    size_t D = dirs_of(&c), ny = c.seq * D * c.batch * c.hidden, ns = D * c.batch * c.hidden;
    qkv_tensor ins[8], outs[3];
    rdata rd;
    kh_node *n = build(&c, n_outputs, opset, ins, &rd, seed);
    qkv_error err;
    cr_assert_eq(kh_run(n, ins, outs, &err), QKV_OK, "%s: %s", c.op, err.message);
    double *y = malloc(ny * sizeof *y), *yh = malloc(ns * sizeof *yh),
           *yc = malloc(ns * sizeof *yc);
    reference(&c, &rd, y, yh, yc);
    char what[64];
    if (n_outputs > 0) {
        cr_assert_eq(outs[0].rank, 4);
        int64_t want[4] = {(int64_t)c.seq, (int64_t)D, (int64_t)c.batch, (int64_t)c.hidden};
        if (c.layout)
            want[0] = (int64_t)c.batch, want[1] = (int64_t)c.seq, want[2] = (int64_t)D;
        for (int k = 0; k < 4; k++)
            cr_assert_eq(outs[0].dims[k], want[k], "%s Y dim %d", c.op, k);
        snprintf(what, sizeof what, "%s Y", c.op);
        expect_close(&outs[0], y, ny, what);
    }
    if (n_outputs > 1) {
        snprintf(what, sizeof what, "%s Y_h", c.op);
        cr_assert_eq(outs[1].rank, 3);
        expect_close(&outs[1], yh, ns, what);
    }
    if (n_outputs > 2) {
        snprintf(what, sizeof what, "%s Y_c", c.op);
        expect_close(&outs[2], yc, ns, what);
    }
    free(y), free(yh), free(yc);
    kh_free_outputs(outs, n_outputs);
    free_case(ins, gates_of(c.op) == 4 ? 8 : 6, &rd);
    kh_node_destroy(n);
}

static size_t all_outputs(const char *op) { return gates_of(op) == 4 ? 3 : 2; }

/* ---- results ----------------------------------------------------------------------- */

static const char *const ops[] = {"RNN", "GRU", "LSTM"};

Test(rnn, defaults_forward_all_outputs)
{
    for (int o = 0; o < 3; o++)
        check_case((rcase){.op = ops[o], .seq = 4, .batch = 3, .input = 5, .hidden = 6},
                   all_outputs(ops[o]), 14, 10 + (uint32_t)o);
}

Test(rnn, opset7_kernels)
{
    for (int o = 0; o < 3; o++)
        check_case(
            (rcase){.op = ops[o], .seq = 3, .batch = 2, .input = 3, .hidden = 4, .has_b = true},
            all_outputs(ops[o]), 7, 20 + (uint32_t)o);
}

Test(rnn, bias_and_initial_states)
{
    for (int o = 0; o < 3; o++)
        check_case((rcase){.op = ops[o],
                           .seq = 5,
                           .batch = 2,
                           .input = 3,
                           .hidden = 4,
                           .has_b = true,
                           .has_h0 = true,
                           .has_c0 = true},
                   all_outputs(ops[o]), 14, 30 + (uint32_t)o);
}

Test(rnn, reverse_direction)
{
    for (int o = 0; o < 3; o++)
        check_case((rcase){.op = ops[o],
                           .seq = 5,
                           .batch = 2,
                           .input = 3,
                           .hidden = 4,
                           .direction = "reverse",
                           .has_b = true,
                           .has_h0 = true},
                   all_outputs(ops[o]), 14, 40 + (uint32_t)o);
}

Test(rnn, bidirectional)
{
    for (int o = 0; o < 3; o++)
        check_case((rcase){.op = ops[o],
                           .seq = 4,
                           .batch = 3,
                           .input = 2,
                           .hidden = 5,
                           .direction = "bidirectional",
                           .has_b = true,
                           .has_h0 = true,
                           .has_c0 = true},
                   all_outputs(ops[o]), 14, 50 + (uint32_t)o);
}

Test(rnn, bidirectional_with_sequence_lens_zero_pads_y)
{
    for (int o = 0; o < 3; o++)
        for (int layout = 0; layout < 2; layout++)
            check_case((rcase){.op = ops[o],
                               .seq = 6,
                               .batch = 4,
                               .input = 3,
                               .hidden = 4,
                               .direction = "bidirectional",
                               .layout = layout,
                               .has_b = true,
                               .has_h0 = true,
                               .has_c0 = true,
                               .has_lens = true,
                               .lens = {6, 2, 0, 5}},
                       all_outputs(ops[o]), 14, 60 + (uint32_t)(o * 2 + layout));
}

Test(rnn, reverse_with_sequence_lens)
{
    for (int o = 0; o < 3; o++)
        check_case((rcase){.op = ops[o],
                           .seq = 5,
                           .batch = 3,
                           .input = 2,
                           .hidden = 3,
                           .direction = "reverse",
                           .has_lens = true,
                           .lens = {3, 5, 1}},
                   all_outputs(ops[o]), 14, 70 + (uint32_t)o);
}

Test(rnn, layout_1_batch_major)
{
    for (int o = 0; o < 3; o++)
        check_case((rcase){.op = ops[o],
                           .seq = 4,
                           .batch = 3,
                           .input = 3,
                           .hidden = 5,
                           .layout = 1,
                           .has_b = true,
                           .has_h0 = true,
                           .has_c0 = true},
                   all_outputs(ops[o]), 14, 80 + (uint32_t)o);
}

Test(rnn, clip_bounds_activation_inputs)
{
    for (int o = 0; o < 3; o++)
        check_case((rcase){.op = ops[o],
                           .seq = 4,
                           .batch = 2,
                           .input = 4,
                           .hidden = 3,
                           .clip = 0.3f,
                           .has_b = true,
                           .has_h0 = true},
                   all_outputs(ops[o]), 14, 90 + (uint32_t)o);
}

Test(rnn, every_activation_with_alpha_and_beta)
{
    static const ref_act acts[] = {
        {"Relu", 0, 0},
        {"Tanh", 0, 0},
        {"Sigmoid", 0, 0},
        {"Affine", 0.7f, 0.2f},
        {"LeakyRelu", 0.3f, 0},
        {"ThresholdedRelu", 0.1f, 0},
        {"ScaledTanh", 1.3f, 0.6f},
        {"HardSigmoid", 0.3f, 0.4f},
        {"Elu", 0.8f, 0},
        {"Softsign", 0, 0},
        {"Softplus", 0, 0},
    };
    for (size_t k = 0; k < sizeof acts / sizeof acts[0]; k++) {
        rcase c = {.op = "RNN",
                   .seq = 3,
                   .batch = 2,
                   .input = 3,
                   .hidden = 4,
                   .has_b = true,
                   .custom_acts = true,
                   .direction = "bidirectional"};
        c.acts[0][0] = acts[k];
        c.acts[1][0] = acts[(k + 1) % 11];
        check_case(c, 2, 14, 100 + (uint32_t)k);
    }
}

Test(rnn, gru_and_lstm_custom_activations)
{
    rcase g = {.op = "GRU",
               .seq = 3,
               .batch = 2,
               .input = 3,
               .hidden = 4,
               .has_b = true,
               .custom_acts = true,
               .direction = "bidirectional"};
    g.acts[0][0] = (ref_act){"HardSigmoid", 0.25f, 0.45f};
    g.acts[0][1] = (ref_act){"Softsign", 0, 0};
    g.acts[1][0] = (ref_act){"Sigmoid", 0, 0};
    g.acts[1][1] = (ref_act){"ScaledTanh", 0.9f, 1.1f};
    check_case(g, 2, 14, 120);
    rcase l = {.op = "LSTM",
               .seq = 3,
               .batch = 2,
               .input = 3,
               .hidden = 4,
               .has_b = true,
               .has_c0 = true,
               .custom_acts = true};
    l.acts[0][0] = (ref_act){"HardSigmoid", 0.3f, 0.5f};
    l.acts[0][1] = (ref_act){"Elu", 0.7f, 0};
    l.acts[0][2] = (ref_act){"Affine", 0.5f, -0.1f};
    check_case(l, 3, 14, 121);
}

Test(rnn, default_activation_parameters)
{
    /* no activation_alpha/beta: LeakyRelu 0.01, HardSigmoid 0.2/0.5, Elu 1 */
    const char *names[3] = {"LeakyRelu", "HardSigmoid", "Elu"};
    ref_act want[3] = {{"LeakyRelu", 0.01f, 0}, {"HardSigmoid", 0.2f, 0.5f}, {"Elu", 1.0f, 0}};
    for (int k = 0; k < 3; k++) {
        rcase c = {.op = "RNN",
                   .seq = 3,
                   .batch = 2,
                   .input = 3,
                   .hidden = 4,
                   .has_b = true,
                   .custom_acts = true};
        c.acts[0][0] = want[k];
        resolve_acts(&c);
        qkv_tensor ins[6], outs[2];
        rdata rd;
        c.custom_acts = false; /* build without the parameter lists... */
        kh_node *n = build(&c, 2, 14, ins, &rd, 130 + (uint32_t)k);
        kh_attr_strings(n, "activations", &names[k], 1); /* ...but with the name */
        qkv_error err;
        cr_assert_eq(kh_run(n, ins, outs, &err), QKV_OK, "%s", err.message);
        double y[3 * 2 * 4], yh[2 * 4], yc[2 * 4];
        reference(&c, &rd, y, yh, yc);
        expect_close(&outs[0], y, 24, names[k]);
        kh_free_outputs(outs, 2);
        free_case(ins, 6, &rd);
        kh_node_destroy(n);
    }
}

Test(rnn, bidirectional_reuses_one_directions_activations)
{
    /* GRU bidirectional given two names (one direction's): both directions
     * use them, each reading activation_alpha/beta from the start */
    const char *names[2] = {"HardSigmoid", "ScaledTanh"};
    float al[2] = {0.3f, 0.8f}, be[2] = {0.45f, 1.2f};
    rcase c = {.op = "GRU",
               .seq = 3,
               .batch = 2,
               .input = 3,
               .hidden = 4,
               .has_b = true,
               .direction = "bidirectional"};
    qkv_tensor ins[6], outs[2];
    rdata rd;
    kh_node *n = build(&c, 2, 14, ins, &rd, 135);
    kh_attr_strings(n, "activations", names, 2);
    kh_attr_floats(n, "activation_alpha", al, 2);
    kh_attr_floats(n, "activation_beta", be, 2);
    for (int d = 0; d < 2; d++) {
        c.acts[d][0] = (ref_act){"HardSigmoid", 0.3f, 0.45f};
        c.acts[d][1] = (ref_act){"ScaledTanh", 0.8f, 1.2f};
    }
    qkv_error err;
    cr_assert_eq(kh_run(n, ins, outs, &err), QKV_OK, "%s", err.message);
    double y[3 * 2 * 2 * 4], yh[2 * 2 * 4], yc[2 * 2 * 4];
    reference(&c, &rd, y, yh, yc);
    expect_close(&outs[0], y, 48, "GRU Y");
    expect_close(&outs[1], yh, 16, "GRU Y_h");
    kh_free_outputs(outs, 2);
    free_case(ins, 6, &rd);
    kh_node_destroy(n);
}

Test(rnn, gru_linear_before_reset)
{
    for (int lbr = 0; lbr < 2; lbr++)
        check_case((rcase){.op = "GRU",
                           .seq = 5,
                           .batch = 3,
                           .input = 4,
                           .hidden = 5,
                           .lbr = lbr,
                           .has_b = true,
                           .has_h0 = true,
                           .direction = "bidirectional"},
                   2, 14, 140 + (uint32_t)lbr);
}

Test(rnn, lstm_peepholes_and_input_forget)
{
    for (int f = 0; f < 2; f++)
        check_case((rcase){.op = "LSTM",
                           .seq = 5,
                           .batch = 2,
                           .input = 3,
                           .hidden = 4,
                           .has_b = true,
                           .has_h0 = true,
                           .has_c0 = true,
                           .has_p = true,
                           .input_forget = f,
                           .direction = "bidirectional"},
                   3, 14, 150 + (uint32_t)f);
}

Test(rnn, hidden_sizes_through_the_gemm)
{
    /* hidden >= 32: the recurrence goes to the session's GEMM */
    for (int o = 0; o < 3; o++)
        check_case((rcase){.op = ops[o],
                           .seq = 3,
                           .batch = 5,
                           .input = 17,
                           .hidden = 40,
                           .has_b = true,
                           .has_h0 = true,
                           .has_c0 = true,
                           .has_p = true,
                           .direction = "bidirectional",
                           .has_lens = true,
                           .lens = {3, 1, 2, 3, 0}},
                   all_outputs(ops[o]), 14, 160 + (uint32_t)o);
}

Test(rnn, double_precision)
{
    for (int o = 0; o < 3; o++)
        for (int big = 0; big < 2; big++)
            check_case((rcase){.op = ops[o],
                               .seq = 4,
                               .batch = 2,
                               .input = 3,
                               .hidden = big ? 33 : 4,
                               .has_b = true,
                               .has_h0 = true,
                               .has_c0 = true,
                               .has_p = true,
                               .direction = "bidirectional",
                               .has_lens = true,
                               .lens = {4, 2},
                               .dbl = true},
                       all_outputs(ops[o]), 14, 170 + (uint32_t)(2 * o + big));
}

Test(rnn, only_y_or_only_y_h)
{
    for (int o = 0; o < 3; o++)
        check_case(
            (rcase){.op = ops[o], .seq = 3, .batch = 2, .input = 3, .hidden = 4, .has_b = true}, 1,
            14, 180 + (uint32_t)o);
}

Test(rnn, empty_sequence_keeps_the_initial_state)
{
    /* seq_length 0: Y is empty and Y_h (Y_c) is the initial state */
    for (int o = 0; o < 3; o++)
        check_case((rcase){.op = ops[o],
                           .seq = 0,
                           .batch = 2,
                           .input = 3,
                           .hidden = 4,
                           .has_b = true,
                           .has_h0 = true,
                           .has_c0 = true,
                           .direction = "bidirectional"},
                   all_outputs(ops[o]), 14, 195 + (uint32_t)o);
}

Test(rnn, threads_give_the_same_result)
{
    rcase c = {.op = "LSTM",
               .seq = 6,
               .batch = 8,
               .input = 64,
               .hidden = 48,
               .has_b = true,
               .direction = "bidirectional"};
    resolve_acts(&c);
    qkv_tensor ins[8], o1[3], o2[3];
    rdata rd;
    kh_node *n = build(&c, 3, 14, ins, &rd, 200);
    qkv_error err;
    cr_assert_eq(kh_run(n, ins, o1, &err), QKV_OK, "%s", err.message);
    kh_set_threads(n, 2);
    cr_assert_eq(kh_run(n, ins, o2, &err), QKV_OK, "%s", err.message);
    for (size_t i = 0; i < 6 * 2 * 8 * 48; i++)
        cr_assert_float_eq(((float *)o1[0].data)[i], ((float *)o2[0].data)[i], 1e-6, "Y %zu", i);
    kh_free_outputs(o1, 3);
    kh_free_outputs(o2, 3);
    free_case(ins, 8, &rd);
    kh_node_destroy(n);
}

/* ---- errors ------------------------------------------------------------------------ */

typedef void (*tweak_fn)(kh_node *n, qkv_tensor *ins);

/* Builds a valid LSTM/GRU/RNN case, applies tweak, runs, expects status and
 * a message containing `needle` and naming the node. */
static void expect_error(const char *op, rcase c, tweak_fn tweak, qkv_status want,
                         const char *needle)
{
    c.op = op;
    resolve_acts(&c);
    qkv_tensor ins[8], outs[3];
    rdata rd;
    kh_node *n = build(&c, 2, 14, ins, &rd, 300);
    if (tweak)
        tweak(n, ins);
    qkv_error err;
    qkv_status st = kh_run(n, ins, outs, &err);
    cr_assert_eq(st, want, "%s: status %d (%s), expected %d", op, st, err.message, want);
    cr_assert(strstr(err.message, needle), "%s: message '%s' lacks '%s'", op, err.message, needle);
    cr_assert(strstr(err.message, "test_node"), "message '%s' does not name the node", err.message);
    free_case(ins, gates_of(op) == 4 ? 8 : 6, &rd);
    kh_node_destroy(n);
}

static const rcase base = {.seq = 3,
                           .batch = 2,
                           .input = 3,
                           .hidden = 4,
                           .has_b = true,
                           .has_h0 = true,
                           .has_c0 = true,
                           .has_p = true,
                           .has_lens = true,
                           .lens = {3, 2}};

static void w_rank2(kh_node *n, qkv_tensor *ins)
{
    (void)n;
    ins[1].rank = 2;
    ins[1].dims[1] *= ins[1].dims[2];
}
static void w_rows(kh_node *n, qkv_tensor *ins)
{
    (void)n;
    ins[1].dims[1] -= 1;
}
static void w_input(kh_node *n, qkv_tensor *ins)
{
    (void)n;
    ins[1].dims[2] -= 1;
}
static void r_dirs(kh_node *n, qkv_tensor *ins)
{
    (void)n;
    ins[2].dims[0] = 2;
    ins[2].dims[1] /= 2;
}
static void r_cols(kh_node *n, qkv_tensor *ins)
{
    (void)n;
    ins[2].dims[2] -= 1;
    ins[2].dims[1] += 1;
}
static void b_len(kh_node *n, qkv_tensor *ins)
{
    (void)n;
    ins[3].dims[1] -= 2;
}
static void b_rank(kh_node *n, qkv_tensor *ins)
{
    (void)n;
    ins[3].rank = 1;
    ins[3].dims[0] = ins[3].dims[1];
}
static void p_len(kh_node *n, qkv_tensor *ins)
{
    (void)n;
    ins[7].dims[1] -= 1;
}
static void h0_batch(kh_node *n, qkv_tensor *ins)
{
    (void)n;
    ins[5].dims[1] = 1;
}
static void lens_long(kh_node *n, qkv_tensor *ins)
{
    (void)n;
    ((int32_t *)ins[4].data)[1] = 4;
}
static void lens_negative(kh_node *n, qkv_tensor *ins)
{
    (void)n;
    ((int32_t *)ins[4].data)[0] = -1;
}
static void lens_count(kh_node *n, qkv_tensor *ins)
{
    (void)n;
    ins[4].dims[0] = 1;
}
static void hidden_attr(kh_node *n, qkv_tensor *ins)
{
    (void)ins;
    kh_attr_int(n, "hidden_size", 5);
}
static void bad_direction(kh_node *n, qkv_tensor *ins)
{
    (void)ins;
    kh_attr_string(n, "direction", "sideways");
}
static void bad_layout(kh_node *n, qkv_tensor *ins)
{
    (void)ins;
    kh_attr_int(n, "layout", 2);
}
static void bad_clip(kh_node *n, qkv_tensor *ins)
{
    (void)ins;
    kh_attr_float(n, "clip", -1.0f);
}
static void bad_act_name(kh_node *n, qkv_tensor *ins)
{
    (void)ins;
    const char *names[3] = {"Sigmoid", "Tanhh", "Tanh"};
    kh_attr_strings(n, "activations", names, 3);
}
static void bad_act_count(kh_node *n, qkv_tensor *ins)
{
    (void)ins;
    const char *names[2] = {"Sigmoid", "Tanh"};
    kh_attr_strings(n, "activations", names, 2);
}
static void x_double(kh_node *n, qkv_tensor *ins)
{
    (void)n;
    ins[2].dtype = QKV_DTYPE_DOUBLE; /* R's type differs from X's */
    ins[2].data_bytes *= 2;
    ins[2].data = realloc(ins[2].data, ins[2].data_bytes);
}

static void omit_x(kh_node *n, qkv_tensor *ins)
{
    (void)ins;
    kh_omit_input(n, 0);
}
static void omit_w(kh_node *n, qkv_tensor *ins)
{
    (void)ins;
    kh_omit_input(n, 1);
}
static void omit_r(kh_node *n, qkv_tensor *ins)
{
    (void)ins;
    kh_omit_input(n, 2);
}

Test(rnn_errors, shapes_of_w_r_b_p_and_states)
{
    expect_error("LSTM", base, w_rank2, QKV_ERR_SHAPE, "input 1 'W'");
    expect_error("LSTM", base, w_rows, QKV_ERR_SHAPE, "input 1 'W'");
    expect_error("GRU", base, w_input, QKV_ERR_SHAPE, "input_size");
    expect_error("RNN", base, r_dirs, QKV_ERR_SHAPE, "num_directions");
    expect_error("GRU", base, r_cols, QKV_ERR_SHAPE, "input 2 'R'");
    expect_error("LSTM", base, b_len, QKV_ERR_SHAPE, "input 3 'B'");
    expect_error("RNN", base, b_rank, QKV_ERR_SHAPE, "expected rank 2");
    expect_error("LSTM", base, p_len, QKV_ERR_SHAPE, "input 7 'P'");
    expect_error("GRU", base, h0_batch, QKV_ERR_SHAPE, "input 5 'initial_h'");
    expect_error("RNN", base, lens_count, QKV_ERR_SHAPE, "input 4 'sequence_lens'");
    expect_error("LSTM", base, x_double, QKV_ERR_TYPE, "input 2 'R'");
}

Test(rnn_errors, sequence_lens_out_of_range)
{
    expect_error("LSTM", base, lens_long, QKV_ERR_INVALID_ARGUMENT, "sequence_lens");
    expect_error("GRU", base, lens_negative, QKV_ERR_INVALID_ARGUMENT, "sequence_lens");
}

Test(rnn_errors, attributes)
{
    expect_error("LSTM", base, bad_direction, QKV_ERR_INVALID_MODEL, "sideways");
    expect_error("GRU", base, bad_layout, QKV_ERR_INVALID_MODEL, "layout");
    expect_error("RNN", base, bad_clip, QKV_ERR_INVALID_MODEL, "clip");
    expect_error("LSTM", base, bad_act_name, QKV_ERR_INVALID_MODEL, "Tanhh");
    expect_error("LSTM", base, bad_act_count, QKV_ERR_INVALID_MODEL, "expected 3");
}

Test(rnn_errors, hidden_size_mismatch)
{
    /* build() sets hidden_size 4; a node with 5 and the same weights */
    rcase c = base;
    c.op = "GRU";
    resolve_acts(&c);
    qkv_tensor ins[6], outs[2];
    rdata rd;
    kh_node *n = build(&c, 2, 14, ins, &rd, 310);
    kh_node *m = kh_node_create("GRU", 14, 6, 2);
    hidden_attr(m, ins);
    qkv_error err;
    qkv_status st = kh_run(m, ins, outs, &err);
    cr_assert_eq(st, QKV_ERR_SHAPE, "%s", err.message);
    cr_assert(strstr(err.message, "expected 3 * hidden_size = 15"), "%s", err.message);
    free_case(ins, 6, &rd);
    kh_node_destroy(n);
    kh_node_destroy(m);
}

Test(rnn, hidden_size_taken_from_r_when_absent)
{
    rcase c = {.op = "LSTM", .seq = 3, .batch = 2, .input = 3, .hidden = 5, .has_b = true};
    resolve_acts(&c);
    qkv_tensor ins[8], outs[2];
    rdata rd;
    kh_node *n = build(&c, 2, 14, ins, &rd, 320);
    kh_node *m = kh_node_create("LSTM", 14, 4, 2); /* no attributes at all */
    qkv_error err;
    cr_assert_eq(kh_run(m, ins, outs, &err), QKV_OK, "%s", err.message);
    cr_assert_eq(outs[1].dims[2], 5);
    double y[3 * 2 * 5], yh[2 * 5], yc[2 * 5];
    reference(&c, &rd, y, yh, yc);
    expect_close(&outs[0], y, 30, "LSTM Y");
    expect_close(&outs[1], yh, 10, "LSTM Y_h");
    kh_free_outputs(outs, 2);
    free_case(ins, 8, &rd);
    kh_node_destroy(n);
    kh_node_destroy(m);
}

/* X, W and R are required: one given as "" (the optional inputs after it keep
 * the arity) is refused before the kernel's init runs, not read as NULL. */
Test(rnn_errors, omitted_required_input)
{
    expect_error("LSTM", base, omit_x, QKV_ERR_INVALID_MODEL, "input 0 is omitted");
    expect_error("GRU", base, omit_w, QKV_ERR_INVALID_MODEL, "input 1 is omitted");
    expect_error("RNN", base, omit_r, QKV_ERR_INVALID_MODEL, "input 2 is omitted");
}
