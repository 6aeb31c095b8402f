/*
 * rnn_exec.c - the shared callbacks of RNN, GRU and LSTM: state, prepack,
 * prepare and the recurrence driver (rnn_common.h).
 *
 * Per direction, compute:
 *   1. projects every time step at once: xw = X W^T + biases, one GEMM of
 *      (seq * batch) rows through the session's GEMM (or the packed W);
 *   2. walks the steps: hr = H_{t-1} R^T (a GEMM, or a plain loop when
 *      hidden is under SMALL_HIDDEN), then the cell's gate arithmetic
 *      (one thread: it is O(batch * hidden) per step against the GEMM's
 *      O(batch * hidden^2)), then Y's rows;
 *   3. writes Y_h (and Y_c).
 * xw keeps X's row order (time-major for layout 0, batch-major for layout
 * 1), so no transpose is ever made; a step finds each batch entry's row.
 *
 * sequence_lens: entry b runs len_b steps; the reverse direction walks
 * t = len_b - 1 down to 0. Y is zero past len_b, and Y_h / Y_c hold the
 * state after the entry's last step (initial_h, or 0, when len_b is 0).
 * A length outside [0, seq_length] is QKV_ERR_INVALID_ARGUMENT.
 *
 * Constant float32 W and R are packed once (prepack) for qkv's GEMM; R only
 * when hidden >= SMALL_HIDDEN (below it the plain loop runs). Types: float
 * and double (double through host->gemm and the plain loop, never packed).
 */
#include <stdlib.h>
#include <string.h>

#include "rnn_common.h"
#include "size_math.h"

/* Below this hidden size the recurrence multiply is a plain loop: a step's
 * multiply is then at most batch x 4*32 x 32 multiply-adds, where a GEMM
 * call's packing and dispatch are a large share. The value is a judgement,
 * not a measurement. */
#define SMALL_HIDDEN 32

/* ---- state and prepack --------------------------------------------------------- */

qkv_status qkv_rnn_init(const qkv_rnn_cell *cell, const qkv_host_api *host,
                        const qkv_node_ctx *node, void **state)
{
    qkv_rnn_state *s = calloc(1, sizeof *s);
    if (!s)
        return NERR(host, node, QKV_ERR_OUT_OF_MEMORY, "kernel state");
    qkv_status st = qkv_rnn_parse_attrs(host, node, cell, &s->attrs);
    if (st != QKV_OK) {
        free(s);
        return st;
    }
    *state = s;
    return QKV_OK;
}

void qkv_rnn_destroy(void *state)
{
    qkv_rnn_state *s = state;
    if (!s)
        return;
    for (size_t d = 0; d < 2; d++) {
        qkv_gemm_packed_free(&s->w[d]);
        qkv_gemm_packed_free(&s->r[d][0]);
        qkv_gemm_packed_free(&s->r[d][1]);
    }
    free(s);
}

qkv_status qkv_rnn_infer_cb(void *state, qkv_kernel_io *io)
{
    const qkv_rnn_state *s = state;
    return qkv_rnn_infer(&s->attrs, io);
}

/* The recurrence's segments of R's rows: GRU without linear_before_reset
 * multiplies z, r (rows [0, 2H)) and h (rows [2H, 3H)) separately; the
 * others all G*H rows at once. Returns the count. */
static size_t r_segments(const qkv_rnn_attrs *a, size_t hidden, size_t row0[2], size_t rows[2])
{
    size_t gh = a->cell->gates * hidden;
    if (a->cell->gates == 3 && !a->linear_before_reset) {
        row0[0] = 0, rows[0] = 2 * hidden;
        row0[1] = 2 * hidden, rows[1] = hidden;
        return 2;
    }
    row0[0] = 0, rows[0] = gh;
    return 1;
}

/* Packs op(B) = M[d][row0 : row0 + rows]^T for each direction of a float32
 * constant M (dirs, G*hidden, k). */
static qkv_status pack_rows(const qkv_host_api *host, const qkv_node_ctx *node, const qkv_tensor *m,
                            size_t row0, size_t rows, size_t k, size_t dirs,
                            qkv_sgemm_packed_b *out, size_t out_stride, size_t *bytes)
{
    const qkv_sgemm_arch *arch = qkv_sgemm_arch_get();
    size_t floats = qkv_sgemm_packed_b_floats(arch, k, rows);
    if (floats == 0 || floats > SIZE_MAX / sizeof(float) / 4)
        return QKV_OK; /* too large to pack: multiplied as it comes */
    size_t per_dir = (size_t)m->dims[1] * k;
    for (size_t d = 0; d < dirs; d++) {
        float *data = host->alloc(floats * sizeof(float));
        if (!data)
            return NERR(host, node, QKV_ERR_OUT_OF_MEMORY,
                        "out of memory packing weights (%zu bytes)", floats * sizeof(float));
        qkv_sgemm_pack_b(arch, (const float *)m->data + d * per_dir + row0 * k, k, true, k, rows,
                         data);
        out[d * out_stride] =
            (qkv_sgemm_packed_b){.arch = arch, .k = k, .n = rows, .data = data, .free = host->free};
        *bytes += floats * sizeof(float);
    }
    return QKV_OK;
}

/* A float32 constant (dirs, gh, k) with no zero dim, or NULL. */
static const qkv_tensor *packable(const qkv_host_api *host, const qkv_node_ctx *node, size_t in,
                                  size_t dirs, size_t gates)
{
    const qkv_tensor *t = host->node_input_const(node, in);
    if (!t || t->dtype != QKV_DTYPE_FLOAT || t->rank != 3 || !t->data ||
        t->dims[0] != (int64_t)dirs || t->dims[1] <= 0 || t->dims[2] <= 0 ||
        t->dims[1] % (int64_t)gates != 0)
        return NULL;
    return t;
}

qkv_status qkv_rnn_prepack(void **state, const qkv_host_api *host, const qkv_node_ctx *node)
{
    qkv_rnn_state *s = *state;
    const qkv_rnn_attrs *a = &s->attrs;
    if (!QKV_HOST_HAS(host, node_input_const) || !QKV_HOST_HAS(host, node_input_packed))
        return QKV_OK;
    size_t g = a->cell->gates, bytes = 0;
    /* one constant at a time: the host's view of one may not outlive the
     * next node_input_const */
    const qkv_tensor *w = packable(host, node, QKV_RNN_IN_W, a->dirs, g);
    qkv_status st = QKV_OK;
    if (w) {
        st = pack_rows(host, node, w, 0, (size_t)w->dims[1], (size_t)w->dims[2], a->dirs, s->w, 1,
                       &bytes);
        if (st == QKV_OK && s->w[0].data)
            st = host->node_input_packed(node, QKV_RNN_IN_W, bytes);
    }
    const qkv_tensor *r = st == QKV_OK ? packable(host, node, QKV_RNN_IN_R, a->dirs, g) : NULL;
    /* R's rows must be G * hidden (infer checks it) to be packed by segment */
    if (r && (r->dims[1] != (int64_t)g * r->dims[2] || r->dims[2] < SMALL_HIDDEN))
        r = NULL;
    if (r) {
        size_t hidden = (size_t)r->dims[2], row0[2], rows[2];
        size_t nseg = r_segments(a, hidden, row0, rows);
        bytes = 0;
        for (size_t j = 0; j < nseg && st == QKV_OK; j++)
            st =
                pack_rows(host, node, r, row0[j], rows[j], hidden, a->dirs, &s->r[0][j], 2, &bytes);
        bool all = st == QKV_OK;
        for (size_t d = 0; d < a->dirs; d++)
            for (size_t j = 0; j < nseg; j++)
                all = all && s->r[d][j].data;
        if (all)
            st = host->node_input_packed(node, QKV_RNN_IN_R, bytes);
        else
            for (size_t d = 0; d < 2; d++)
                for (size_t j = 0; j < 2; j++)
                    qkv_gemm_packed_free(&s->r[d][j]); /* all or nothing: R is read as it is */
    }
    if (st != QKV_OK)
        for (size_t d = 0; d < 2; d++) {
            qkv_gemm_packed_free(&s->w[d]);
            qkv_gemm_packed_free(&s->r[d][0]);
            qkv_gemm_packed_free(&s->r[d][1]);
        }
    return st;
}

/* ---- scratch ------------------------------------------------------------------- */

/* Byte offsets of the scratch buffers, each 64-byte aligned. */
typedef struct rnn_layout {
    size_t xw;   /* (seq * batch, gh): one direction's projection */
    size_t h, c; /* (batch, hidden) */
    size_t hr;   /* (batch, gh) */
    size_t rh;   /* (batch, hidden), GRU */
    size_t bias; /* (gh) */
    size_t rows; /* (batch) size_t */
    size_t total;
} rnn_layout;

static bool take(size_t *off, size_t n, size_t elem, size_t *at)
{
    size_t bytes, end;
    if (qkv_mul_overflow(n, elem, &bytes) || qkv_add_overflow(bytes, 63, &bytes))
        return false;
    bytes &= ~(size_t)63;
    *at = *off;
    if (qkv_add_overflow(*off, bytes, &end))
        return false;
    *off = end;
    return true;
}

static bool layout_of(const qkv_rnn_attrs *a, const qkv_rnn_dims *d, size_t es, rnn_layout *l)
{
    size_t off = 0, sb, rows_xw, bh, bgh;
    if (qkv_mul_overflow(d->seq, d->batch, &sb) || qkv_mul_overflow(sb, d->gh, &rows_xw) ||
        qkv_mul_overflow(d->batch, d->hidden, &bh) || qkv_mul_overflow(d->batch, d->gh, &bgh))
        return false;
    bool has_c = a->cell->has_cell_state, gru = a->cell->gates == 3;
    bool ok = take(&off, rows_xw, es, &l->xw) && take(&off, bh, es, &l->h) &&
              take(&off, has_c ? bh : 0, es, &l->c) && take(&off, bgh, es, &l->hr) &&
              take(&off, gru ? bh : 0, es, &l->rh) && take(&off, d->gh, es, &l->bias) &&
              take(&off, d->batch, sizeof(size_t), &l->rows);
    l->total = off;
    return ok;
}

qkv_status qkv_rnn_prepare(void *state, qkv_kernel_io *io)
{
    const qkv_rnn_state *s = state;
    const qkv_rnn_attrs *a = &s->attrs;
    qkv_dtype t = io->inputs[QKV_RNN_IN_X].dtype;
    if (t != QKV_DTYPE_FLOAT && t != QKV_DTYPE_DOUBLE)
        return KERR(io, QKV_ERR_TYPE, "input 0 'X' is %s, expected float32 or float64",
                    io->host->dtype_name(t));
    qkv_rnn_dims d;
    qkv_rnn_dims_of(a, io, &d);
    size_t rows;
    if (qkv_mul_overflow(d.seq, d.batch, &rows) || rows > QKV_BLAS_MAX_DIM ||
        d.gh > QKV_BLAS_MAX_DIM || d.input > QKV_BLAS_MAX_DIM)
        return KERR(io, QKV_ERR_UNSUPPORTED, "sizes too large for the GEMM: %zu rows, %zu x %zu",
                    d.seq * d.batch, d.gh, d.input);
    size_t row0[2], nrows[2], nseg = r_segments(a, d.hidden, row0, nrows);
    for (size_t dir = 0; dir < a->dirs; dir++) {
        bool bad = s->w[dir].data &&
                   (t != QKV_DTYPE_FLOAT || s->w[dir].k != d.input || s->w[dir].n != d.gh);
        for (size_t j = 0; j < nseg; j++)
            bad =
                bad || (s->r[dir][j].data && (t != QKV_DTYPE_FLOAT || s->r[dir][j].k != d.hidden ||
                                              s->r[dir][j].n != nrows[j]));
        if (bad)
            return KERR(io, QKV_ERR_INTERNAL,
                        "the packed weights do not match the plan's input_size %zu, hidden_size "
                        "%zu",
                        d.input, d.hidden);
    }
    rnn_layout l;
    if (!layout_of(a, &d, qkv_elem_bytes(t), &l))
        return KERR(io, QKV_ERR_UNSUPPORTED, "scratch size overflows");
    io->scratch_bytes = l.total;
    return QKV_OK;
}

/* ---- compute ------------------------------------------------------------------- */

/* One direction's run, shared with the cell's recur_h. */
typedef struct dir_run {
    qkv_kernel_io *io;
    const qkv_rnn_state *s;
    qkv_dtype t;
    size_t es;
    const qkv_rnn_dims *d;
    size_t dir;
    const unsigned char *r; /* R[dir] (gh, hidden) or NULL when packed */
    size_t row0[2], nrows[2];
} dir_run;

/* C (m, n; row stride ldc) = beta C + A (m, k) B^T, B stored (n, k): through
 * the packed copy, or the session's GEMM. */
static qkv_status gemm_bt(dir_run *run, size_t m, size_t n, size_t k, const void *a, size_t lda,
                          const void *b, const qkv_sgemm_packed_b *pb, void *c, size_t ldc,
                          double beta)
{
    if (m == 0 || n == 0)
        return QKV_OK;
    qkv_blas_gemm g = {.dtype = run->t,
                       .trans_b = true,
                       .m = m,
                       .n = n,
                       .k = k,
                       .alpha = 1,
                       .beta = beta,
                       .a = a,
                       .lda = lda ? lda : 1,
                       .b = b,
                       .ldb = k ? k : 1,
                       .c = c,
                       .ldc = ldc};
    if (pb && pb->data) {
        qkv_gemm_run_packed(run->io, &g, pb);
        return QKV_OK;
    }
    return qkv_blas_gemm_run(run->io, &g);
}

/* out (batch, n; row stride ldc) = h (batch, k) rows^T for rows (n, k): the
 * recurrence multiply of small hidden sizes. */
#define DEFINE_SMALL_MM(SUF, T)                                                                    \
    static void small_mm_##SUF(T *out, size_t ldc, const T *h, const T *rows, size_t batch,        \
                               size_t n, size_t k)                                                 \
    {                                                                                              \
        for (size_t b = 0; b < batch; b++)                                                         \
            for (size_t j = 0; j < n; j++) {                                                       \
                const T *hb = h + b * k, *rj = rows + j * k;                                       \
                T acc = 0;                                                                         \
                for (size_t p = 0; p < k; p++)                                                     \
                    acc += hb[p] * rj[p];                                                          \
                out[b * ldc + j] = acc;                                                            \
            }                                                                                      \
    }
DEFINE_SMALL_MM(f32, float)
DEFINE_SMALL_MM(f64, double)

/* out[:, col0 : col0 + nrows[seg]] = in (batch, hidden) R[dir][segment]^T. */
static qkv_status recur(dir_run *run, size_t seg, const void *in, void *out)
{
    const qkv_rnn_dims *d = run->d;
    const qkv_sgemm_packed_b *pb = &run->s->r[run->dir][seg];
    size_t row0 = run->row0[seg], n = run->nrows[seg];
    unsigned char *c = (unsigned char *)out + row0 * run->es;
    if (!pb->data && d->hidden < SMALL_HIDDEN) {
        const unsigned char *rows = run->r + row0 * d->hidden * run->es;
        if (run->t == QKV_DTYPE_FLOAT)
            small_mm_f32((float *)c, d->gh, in, (const float *)rows, d->batch, n, d->hidden);
        else
            small_mm_f64((double *)c, d->gh, in, (const double *)rows, d->batch, n, d->hidden);
        return QKV_OK;
    }
    const void *b = run->r ? run->r + row0 * d->hidden * run->es : NULL;
    return gemm_bt(run, d->batch, n, d->hidden, in, d->hidden, b, pb, c, d->gh, 0);
}

static qkv_status recur_h(const qkv_rnn_step *st) { return recur(st->ctx, 1, st->rh, st->hr); }

/* Element i of a float-typed tensor as double. */
static double real_at(const qkv_tensor *t, size_t i)
{
    return t->dtype == QKV_DTYPE_DOUBLE ? ((const double *)t->data)[i]
                                        : (double)((const float *)t->data)[i];
}

static void real_set(qkv_dtype t, void *p, size_t i, double v)
{
    if (t == QKV_DTYPE_DOUBLE)
        ((double *)p)[i] = v;
    else
        ((float *)p)[i] = (float)v;
}

/* bias (gh) = Wb[dir] + Rb[dir], leaving out GRU's Rbh when it is applied
 * inside the reset (linear_before_reset). */
static void fill_bias(const dir_run *run, void *bias)
{
    const qkv_kernel_io *io = run->io;
    const qkv_rnn_dims *d = run->d;
    if (!qkv_present(io, QKV_RNN_IN_B)) {
        memset(bias, 0, d->gh * run->es);
        return;
    }
    const qkv_tensor *b = &io->inputs[QKV_RNN_IN_B];
    size_t base = run->dir * 2 * d->gh;
    size_t rb_end = run->s->attrs.linear_before_reset ? 2 * d->hidden : d->gh;
    for (size_t j = 0; j < d->gh; j++)
        real_set(run->t, bias, j,
                 real_at(b, base + j) + (j < rb_end ? real_at(b, base + d->gh + j) : 0.0));
}

/* dst (batch, hidden) = state input `in` for this direction, or 0. */
static void load_state(const dir_run *run, size_t in, unsigned char *dst)
{
    const qkv_rnn_dims *d = run->d;
    size_t row = d->hidden * run->es;
    if (!qkv_present(run->io, in)) {
        memset(dst, 0, d->batch * row);
        return;
    }
    const unsigned char *src = run->io->inputs[in].data;
    bool bm = run->s->attrs.layout != 0;
    for (size_t b = 0; b < d->batch; b++)
        memcpy(dst + b * row, src + (bm ? b * d->dirs + run->dir : run->dir * d->batch + b) * row,
               row);
}

/* Output `out` (Y_h or Y_c) for this direction = src (batch, hidden). */
static void store_state(const dir_run *run, size_t out, const unsigned char *src)
{
    qkv_kernel_io *io = run->io;
    if (io->n_outputs <= out || !io->outputs[out].data)
        return;
    const qkv_rnn_dims *d = run->d;
    size_t row = d->hidden * run->es;
    unsigned char *dst = io->outputs[out].data;
    bool bm = run->s->attrs.layout != 0;
    for (size_t b = 0; b < d->batch; b++)
        memcpy(dst + (bm ? b * d->dirs + run->dir : run->dir * d->batch + b) * row, src + b * row,
               row);
}

static size_t seq_len(const qkv_kernel_io *io, const qkv_rnn_dims *d, size_t b)
{
    return qkv_present(io, QKV_RNN_IN_SEQ_LENS)
               ? (size_t)qkv_int_at(&io->inputs[QKV_RNN_IN_SEQ_LENS], b)
               : d->seq;
}

/* Step 1 of a direction: xw = bias + X W^T for every step, one GEMM. */
static qkv_status project_inputs(dir_run *run, const rnn_layout *l)
{
    qkv_kernel_io *io = run->io;
    const qkv_rnn_dims *d = run->d;
    size_t es = run->es, dir = run->dir, nrows = d->seq * d->batch;
    unsigned char *scr = io->scratch;
    unsigned char *xw = scr + l->xw, *bias = scr + l->bias;
    const qkv_tensor *w = &io->inputs[QKV_RNN_IN_W];
    fill_bias(run, bias);
    for (size_t i = 0; i < nrows; i++)
        memcpy(xw + i * d->gh * es, bias, d->gh * es);
    const void *wd = w->data ? (const unsigned char *)w->data + dir * d->gh * d->input * es : NULL;
    return gemm_bt(run, nrows, d->gh, d->input, io->inputs[QKV_RNN_IN_X].data, d->input, wd,
                   &run->s->w[dir], xw, d->gh, 1);
}

/* The cell's view of direction run->dir: scratch rows, states, the
 * recurrent bias of linear_before_reset and the peepholes. */
static qkv_rnn_step step_of(dir_run *run, const rnn_layout *l)
{
    qkv_kernel_io *io = run->io;
    const qkv_rnn_attrs *a = &run->s->attrs;
    const qkv_rnn_dims *d = run->d;
    size_t es = run->es, dir = run->dir;
    unsigned char *scr = io->scratch;
    qkv_rnn_step step = {.a = a,
                         .dir = dir,
                         .batch = d->batch,
                         .hidden = d->hidden,
                         .gh = d->gh,
                         .rows = (size_t *)(void *)(scr + l->rows),
                         .xw = scr + l->xw,
                         .hr = scr + l->hr,
                         .h = scr + l->h,
                         .c = a->cell->has_cell_state ? scr + l->c : NULL,
                         .rh = scr + l->rh,
                         .recur_h = recur_h,
                         .ctx = run};
    if (a->linear_before_reset && qkv_present(io, QKV_RNN_IN_B))
        step.rb_h = (const unsigned char *)io->inputs[QKV_RNN_IN_B].data +
                    (dir * 2 * d->gh + d->gh + 2 * d->hidden) * es;
    if (qkv_present(io, QKV_RNN_IN_P))
        step.p = (const unsigned char *)io->inputs[QKV_RNN_IN_P].data + dir * 3 * d->hidden * es;
    return step;
}

/* The longest sequence of the batch (sequence_lens, or seq for all). */
static size_t max_seq_len(const qkv_kernel_io *io, const qkv_rnn_dims *d)
{
    size_t max_len = 0;
    for (size_t b = 0; b < d->batch; b++) {
        size_t len = seq_len(io, d, b);
        max_len = len > max_len ? len : max_len;
    }
    return max_len;
}

/* Copies the new hidden state h of each sequence the step ran (rows[b] not
 * SIZE_MAX) into Y at its time step and this direction. */
static void store_y_step(const dir_run *run, const size_t *rows, const unsigned char *h)
{
    const qkv_kernel_io *io = run->io;
    const qkv_rnn_attrs *a = &run->s->attrs;
    const qkv_rnn_dims *d = run->d;
    const qkv_tensor *y = io->n_outputs > QKV_RNN_OUT_Y ? &io->outputs[QKV_RNN_OUT_Y] : NULL;
    size_t dir = run->dir, hrow = d->hidden * run->es;
    if (!y || !y->data)
        return;
    for (size_t b = 0; b < d->batch; b++) {
        if (rows[b] == SIZE_MAX)
            continue;
        size_t t = a->layout ? rows[b] - b * d->seq : rows[b] / d->batch;
        size_t at =
            a->layout ? (b * d->seq + t) * d->dirs + dir : (t * d->dirs + dir) * d->batch + b;
        memcpy((unsigned char *)y->data + at * hrow, h + b * hrow, hrow);
    }
}

/* One direction, start to end (see the file comment). */
static qkv_status run_direction(dir_run *run, const rnn_layout *l)
{
    qkv_kernel_io *io = run->io;
    const qkv_rnn_attrs *a = &run->s->attrs;
    const qkv_rnn_dims *d = run->d;
    const qkv_tensor *r = &io->inputs[QKV_RNN_IN_R];
    run->r =
        r->data ? (const unsigned char *)r->data + run->dir * d->gh * d->hidden * run->es : NULL;
    r_segments(a, d->hidden, run->row0, run->nrows);

    /* 1. xw = bias + X W^T for every step */
    qkv_status st = project_inputs(run, l);
    if (st != QKV_OK)
        return st;

    /* 2. the steps */
    qkv_rnn_step step = step_of(run, l);
    size_t *rows = (size_t *)(void *)((unsigned char *)io->scratch + l->rows); /* step.rows */
    load_state(run, QKV_RNN_IN_INITIAL_H, step.h);
    if (a->cell->has_cell_state)
        load_state(run, QKV_RNN_IN_INITIAL_C, step.c);
    bool reverse = a->reverse || run->dir == 1;
    size_t max_len = max_seq_len(io, d);
    for (size_t sidx = 0; sidx < max_len; sidx++) {
        for (size_t b = 0; b < d->batch; b++) {
            size_t len = seq_len(io, d, b), t = reverse ? len - 1 - sidx : sidx;
            rows[b] = sidx >= len ? SIZE_MAX : a->layout ? b * d->seq + t : t * d->batch + b;
        }
        st = recur(run, 0, step.h, step.hr);
        if (st == QKV_OK)
            st = run->t == QKV_DTYPE_FLOAT ? a->cell->step_f32(&step) : a->cell->step_f64(&step);
        if (st != QKV_OK)
            return st;
        store_y_step(run, rows, step.h);
    }

    /* 3. the final states */
    store_state(run, QKV_RNN_OUT_Y_H, step.h);
    if (a->cell->has_cell_state)
        store_state(run, QKV_RNN_OUT_Y_C, step.c);
    return QKV_OK;
}

qkv_status qkv_rnn_compute(const void *state, qkv_kernel_io *io)
{
    const qkv_rnn_state *s = state;
    const qkv_rnn_attrs *a = &s->attrs;
    qkv_rnn_dims d;
    qkv_rnn_dims_of(a, io, &d);
    qkv_dtype t = io->inputs[QKV_RNN_IN_X].dtype;
    bool short_seq = false;
    if (qkv_present(io, QKV_RNN_IN_SEQ_LENS)) {
        const qkv_tensor *sl = &io->inputs[QKV_RNN_IN_SEQ_LENS];
        for (size_t b = 0; b < d.batch; b++) {
            int64_t len = qkv_int_at(sl, b);
            if (len < 0 || (uint64_t)len > d.seq)
                return KERR(io, QKV_ERR_INVALID_ARGUMENT,
                            "input 4 'sequence_lens' has %lld at batch entry %zu, expected 0 to "
                            "seq_length %zu",
                            (long long)len, b, d.seq);
            short_seq = short_seq || (size_t)len < d.seq;
        }
    }
    /* Y past each entry's length is zero */
    if (short_seq && io->n_outputs > QKV_RNN_OUT_Y && io->outputs[QKV_RNN_OUT_Y].data)
        memset(io->outputs[QKV_RNN_OUT_Y].data, 0, io->outputs[QKV_RNN_OUT_Y].data_bytes);
    rnn_layout l;
    if (!layout_of(a, &d, qkv_elem_bytes(t), &l))
        return KERR(io, QKV_ERR_INTERNAL, "scratch size overflows");
    for (size_t dir = 0; dir < a->dirs; dir++) {
        dir_run run = {.io = io, .s = s, .t = t, .es = qkv_elem_bytes(t), .d = &d, .dir = dir};
        qkv_status st = run_direction(&run, &l);
        if (st != QKV_OK)
            return st;
    }
    return QKV_OK;
}
