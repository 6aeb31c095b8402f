/*
 * einsum.c - Einsum (opset 12): Einstein summation over any number of
 * operands, numpy semantics.
 *
 * Equation. Terms of letters [a-zA-Z], at most one "..." per term, separated
 * by ',' (one term per input), optionally "->" and the output term; spaces
 * are ignored. A letter repeated within one term takes the diagonal. Without
 * "->" (implicit form) the output is the ellipsis dims followed by the
 * letters that occur exactly once, in ASCII order (uppercase first), as
 * numpy does. Ellipsis dims broadcast (right aligned, numpy rules); like
 * numpy, a letter's size-1 axis also broadcasts against the other operands'
 * size for that letter (not within one operand: a diagonal needs equal
 * dims). An explicit output without "..." while the inputs have ellipsis
 * dims is an error (numpy refuses it too).
 *
 * Types: every integer type, float and double (all operands one type);
 * float16/bfloat16 are not supported. Integer sums wrap (two's complement).
 *
 * Evaluation.
 *   - Two float/double operands whose labels are all either batch (in both
 *     operands and the output), free (in one operand and the output) or
 *     contracted (in both operands, not in the output) -- the forms exporters
 *     emit: "bij,bjk->bik", "bhqd,bhkd->bhqk", "...ij,...jk->...ik" -- run as
 *     a strided batch of GEMMs (blas.h, OpenBLAS split over the session's
 *     threads). An operand or output whose matrix part is not a plain strided
 *     matrix (e.g. its free labels interleave with the contracted ones) is
 *     first copied into a contiguous (batch, M, K) layout in scratch.
 *   - Everything else (one operand: transposes, sums, diagonals; three or
 *     more operands; labels summed out of a single operand; integer types)
 *     runs the general loop: for each output element, the sum over the
 *     contracted index space of the product of the operands, each operand
 *     addressed by per-label strides (a repeated label's strides add up,
 *     which is the diagonal). Floats accumulate in double. Output elements
 *     are split across threads.
 * Limits: at most EIN_MAX_OPS operands (QKV_ERR_UNSUPPORTED beyond).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "blas.h"
#include "kernel_util.h"
#include "qkv.h"

#define EIN_MAX_OPS 16
#define EIN_LETTERS 52 /* 'A'-'Z' are labels 0-25, 'a'-'z' 26-51: ASCII order */
/* ellipsis dim t (of the broadcast ellipsis) is label EIN_LETTERS + t */
#define EIN_MAX_LABELS (EIN_LETTERS + QKV_MAX_RANK)
/* The general loop goes parallel from this many multiply-adds. */
#define PAR_MIN_WORK ((double)(1u << 16))

/* One term of the equation. */
typedef struct ein_term {
    int32_t n;                  /* letters, the ellipsis not counted */
    int8_t label[QKV_MAX_RANK]; /* letter labels in order */
    int32_t ell;                /* "..." goes before letter `ell`; -1: no ellipsis */
} ein_term;

typedef struct einsum_state {
    char equation[256]; /* for messages (truncated if longer) */
    size_t n_ops;
    ein_term in[EIN_MAX_OPS];
    bool explicit_out;
    ein_term out;
    int32_t count[EIN_LETTERS]; /* occurrences of each letter in all input terms */
} einsum_state;

/* The equation bound to the inputs' ranks and dims. */
typedef struct ein_bind {
    int32_t n_ell;               /* rank of the broadcast ellipsis */
    int64_t dim[EIN_MAX_LABELS]; /* label sizes, -1 unknown */
    bool used[EIN_MAX_LABELS];
    int32_t rank[EIN_MAX_OPS];
    int8_t axis_label[EIN_MAX_OPS][QKV_MAX_RANK];
    int32_t out_rank;
    int8_t out_label[QKV_MAX_RANK];
    bool in_out[EIN_MAX_LABELS];
} ein_bind;

static int label_of(char c)
{
    if (c >= 'A' && c <= 'Z')
        return c - 'A';
    if (c >= 'a' && c <= 'z')
        return 26 + (c - 'a');
    return -1;
}

static char label_char(int l) { return l < 26 ? (char)('A' + l) : (char)('a' + l - 26); }

/* ---- parsing (init) --------------------------------------------------------------- */

/* Parses eq into s; on error reports through host/node with the position. */
static qkv_status ein_parse(const qkv_host_api *host, const qkv_node_ctx *node, const char *eq,
                            size_t n_inputs, einsum_state *s)
{
    size_t n_terms = 0;
    bool rhs = false;
    ein_term *t = &s->in[0];
    memset(t, 0, sizeof *t);
    t->ell = -1;
    for (size_t i = 0; eq[i]; i++) {
        char c = eq[i];
        if (c == ' ' || c == '\t')
            continue;
        int l = label_of(c);
        if (l >= 0) {
            if (t->n == QKV_MAX_RANK)
                return NERR(host, node, QKV_ERR_UNSUPPORTED,
                            "equation '%s': term at position %zu has more than %d labels",
                            s->equation, i, QKV_MAX_RANK);
            if (rhs) {
                if (s->count[l] == 0)
                    return NERR(host, node, QKV_ERR_INVALID_MODEL,
                                "equation '%s': output label '%c' at position %zu does not "
                                "occur in any input",
                                s->equation, c, i);
                for (int32_t k = 0; k < t->n; k++)
                    if (t->label[k] == l)
                        return NERR(host, node, QKV_ERR_INVALID_MODEL,
                                    "equation '%s': output label '%c' at position %zu is "
                                    "repeated",
                                    s->equation, c, i);
            } else {
                s->count[l]++;
            }
            t->label[t->n++] = (int8_t)l;
        } else if (c == '.') {
            if (eq[i + 1] != '.' || eq[i + 2] != '.')
                return NERR(host, node, QKV_ERR_INVALID_MODEL,
                            "equation '%s': '.' at position %zu is not part of an ellipsis "
                            "'...'",
                            s->equation, i);
            if (t->ell >= 0)
                return NERR(host, node, QKV_ERR_INVALID_MODEL,
                            "equation '%s': second ellipsis in one term at position %zu",
                            s->equation, i);
            t->ell = t->n;
            i += 2;
        } else if (c == ',' && !rhs) {
            if (++n_terms == EIN_MAX_OPS)
                return NERR(host, node, QKV_ERR_UNSUPPORTED,
                            "equation '%s' has more than %d operands", s->equation, EIN_MAX_OPS);
            t = &s->in[n_terms];
            memset(t, 0, sizeof *t);
            t->ell = -1;
        } else if (c == '-' && eq[i + 1] == '>' && !rhs) {
            rhs = true;
            n_terms++;
            t = &s->out;
            memset(t, 0, sizeof *t);
            t->ell = -1;
            i++;
        } else {
            return NERR(host, node, QKV_ERR_INVALID_MODEL,
                        "equation '%s': unexpected character '%c' at position %zu", s->equation, c,
                        i);
        }
    }
    if (!rhs)
        n_terms++;
    s->n_ops = n_terms;
    s->explicit_out = rhs;
    if (n_terms != n_inputs)
        return NERR(host, node, QKV_ERR_INVALID_MODEL,
                    "equation '%s' has %zu input terms but the node has %zu inputs", s->equation,
                    n_terms, n_inputs);
    return QKV_OK;
}

static qkv_status einsum_init(const qkv_kernel *k, const qkv_host_api *host,
                              const qkv_node_ctx *node, void **state)
{
    (void)k;
    const char *eq = NULL;
    qkv_status st = host->attr_string(node, "equation", NULL, &eq);
    if (st != QKV_OK)
        return st;
    if (!eq)
        return NERR(host, node, QKV_ERR_INVALID_MODEL, "attribute 'equation' is missing");
    einsum_state *s = calloc(1, sizeof *s);
    if (!s)
        return NERR(host, node, QKV_ERR_OUT_OF_MEMORY, "kernel state");
    snprintf(s->equation, sizeof s->equation, "%s", eq);
    st = ein_parse(host, node, eq, host->node_input_count(node), s);
    if (st != QKV_OK) {
        free(s);
        return st;
    }
    *state = s;
    return QKV_OK;
}

static void einsum_destroy(void *state) { free(state); }

/* ---- binding to shapes -------------------------------------------------------------- */

/* Label of the formatted name for messages: a letter, or "...[t]". */
static const char *label_name(int l, char *buf, size_t cap)
{
    if (l < EIN_LETTERS)
        snprintf(buf, cap, "'%c'", label_char(l));
    else
        snprintf(buf, cap, "ellipsis dim %d", l - EIN_LETTERS);
    return buf;
}

/* Each input's rank against its term: b->rank, b->n_ell (the broadcast
 * ellipsis rank) and ell[j], the ellipsis dims of input j. */
static qkv_status bind_ranks(const einsum_state *s, qkv_kernel_io *io, ein_bind *b, int32_t *ell)
{
    for (size_t j = 0; j < s->n_ops; j++) {
        const ein_term *t = &s->in[j];
        int32_t r = io->inputs[j].rank;
        ell[j] = r - t->n;
        if (ell[j] < 0 || (t->ell < 0 && ell[j] != 0))
            return KERR(io, QKV_ERR_SHAPE,
                        "equation '%s': input %zu has rank %d but its term has %d labels%s",
                        s->equation, j, r, t->n, t->ell >= 0 ? " and an ellipsis" : "");
        if (ell[j] > b->n_ell)
            b->n_ell = ell[j];
        b->rank[j] = r;
    }
    return QKV_OK;
}

/* The label of each axis of input j: its term's letters, with its ell
 * ellipsis dims as the last ell of the n_ell broadcast labels. */
static void bind_axis_labels(const einsum_state *s, ein_bind *b, size_t j, int32_t ell)
{
    const ein_term *t = &s->in[j];
    int32_t a = 0;
    for (int32_t p = 0; p <= t->n; p++) {
        if (p == t->ell)
            for (int32_t e = 0; e < ell; e++)
                b->axis_label[j][a++] = (int8_t)(EIN_LETTERS + b->n_ell - ell + e);
        if (p < t->n)
            b->axis_label[j][a++] = t->label[p];
    }
}

/* b->used and b->dim from the axis labels: a label's sizes are equal or 1
 * (broadcast); -1 when only unknown sizes are seen. A label repeated within
 * one input (a diagonal) needs equal dims there. */
static qkv_status bind_label_sizes(const einsum_state *s, qkv_kernel_io *io, ein_bind *b)
{
    int64_t big[EIN_MAX_LABELS]; /* the size other than 1 seen so far, -1: none */
    int src[EIN_MAX_LABELS] = {0};
    bool unknown[EIN_MAX_LABELS] = {false};
    for (int l = 0; l < EIN_MAX_LABELS; l++)
        big[l] = -1;
    for (size_t j = 0; j < s->n_ops; j++) {
        const qkv_tensor *x = &io->inputs[j];
        for (int32_t a = 0; a < x->rank; a++) {
            int l = b->axis_label[j][a];
            int64_t d = x->dims[a];
            char nb[32];
            for (int32_t a2 = 0; a2 < a; a2++)
                if (b->axis_label[j][a2] == l && x->dims[a2] >= 0 && d >= 0 && x->dims[a2] != d)
                    return KERR(io, QKV_ERR_SHAPE,
                                "equation '%s': label %s of input %zu has sizes %lld and %lld "
                                "(a repeated label takes the diagonal: sizes must be equal)",
                                s->equation, label_name(l, nb, sizeof nb), j,
                                (long long)x->dims[a2], (long long)d);
            b->used[l] = true;
            if (d < 0) {
                unknown[l] = true;
            } else if (d != 1) {
                if (big[l] >= 0 && big[l] != d)
                    return KERR(io, QKV_ERR_SHAPE,
                                "equation '%s': label %s has size %lld in input %d and %lld in "
                                "input %zu",
                                s->equation, label_name(l, nb, sizeof nb), (long long)big[l],
                                src[l], (long long)d, j);
                big[l] = d;
                src[l] = (int)j;
            }
        }
    }
    for (int l = 0; l < EIN_MAX_LABELS; l++)
        if (b->used[l])
            b->dim[l] = big[l] >= 0 ? big[l] : unknown[l] ? -1 : 1;
    return QKV_OK;
}

/* The output's labels (b->out_label, out_rank, in_out): the explicit term,
 * or else the ellipsis dims then the letters that occur once, in order. */
static qkv_status bind_output(const einsum_state *s, qkv_kernel_io *io, ein_bind *b)
{
    int32_t r = 0;
    if (s->explicit_out) {
        const ein_term *t = &s->out;
        if (t->ell < 0 && b->n_ell > 0)
            return KERR(io, QKV_ERR_SHAPE,
                        "equation '%s': the inputs have %d ellipsis dims but the output has "
                        "no '...'",
                        s->equation, b->n_ell);
        if (t->n + (t->ell >= 0 ? b->n_ell : 0) > QKV_MAX_RANK)
            return KERR(io, QKV_ERR_UNSUPPORTED, "equation '%s': output rank exceeds %d",
                        s->equation, QKV_MAX_RANK);
        for (int32_t p = 0; p <= t->n; p++) {
            if (p == t->ell)
                for (int32_t e = 0; e < b->n_ell; e++)
                    b->out_label[r++] = (int8_t)(EIN_LETTERS + e);
            if (p < t->n)
                b->out_label[r++] = t->label[p];
        }
    } else {
        for (int32_t e = 0; e < b->n_ell; e++)
            b->out_label[r++] = (int8_t)(EIN_LETTERS + e);
        for (int l = 0; l < EIN_LETTERS; l++) {
            if (s->count[l] != 1)
                continue;
            if (r == QKV_MAX_RANK)
                return KERR(io, QKV_ERR_UNSUPPORTED, "equation '%s': output rank exceeds %d",
                            s->equation, QKV_MAX_RANK);
            b->out_label[r++] = (int8_t)l;
        }
    }
    b->out_rank = r;
    for (int32_t a = 0; a < r; a++)
        b->in_out[b->out_label[a]] = true;
    return QKV_OK;
}

/*
 * Binds the equation to the inputs' shapes. Returns QKV_OK with *known false
 * when an input rank is unknown (nothing else can be said then). Errors:
 * QKV_ERR_SHAPE (a term that does not fit its input's rank, labels of
 * different sizes), QKV_ERR_UNSUPPORTED (output rank above QKV_MAX_RANK).
 */
static qkv_status ein_bind_shapes(const einsum_state *s, qkv_kernel_io *io, ein_bind *b,
                                  bool *known)
{
    memset(b, 0, sizeof *b);
    *known = false;
    for (size_t j = 0; j < s->n_ops; j++)
        if (io->inputs[j].rank < 0)
            return QKV_OK;
    int32_t ell[EIN_MAX_OPS];
    qkv_status st = bind_ranks(s, io, b, ell);
    if (st != QKV_OK)
        return st;
    for (size_t j = 0; j < s->n_ops; j++)
        bind_axis_labels(s, b, j, ell[j]);
    if ((st = bind_label_sizes(s, io, b)) != QKV_OK || (st = bind_output(s, io, b)) != QKV_OK)
        return st;
    *known = true;
    return QKV_OK;
}

/* Element strides of input j per label (0 for absent or broadcast labels;
 * a repeated label's strides add up: the diagonal). */
static void ein_label_strides(const ein_bind *b, size_t j, const qkv_tensor *x,
                              size_t st[EIN_MAX_LABELS])
{
    size_t cs[QKV_MAX_RANK];
    memset(st, 0, EIN_MAX_LABELS * sizeof st[0]);
    qkv_contiguous_strides(x, cs);
    for (int32_t a = 0; a < x->rank; a++) {
        int l = b->axis_label[j][a];
        if (x->dims[a] == 1 && b->dim[l] != 1)
            continue; /* broadcast */
        st[l] += cs[a];
    }
}

/* ---- infer ----------------------------------------------------------------------------- */

static qkv_status einsum_infer(void *state, qkv_kernel_io *io)
{
    const einsum_state *s = state;
    qkv_tensor *y = &io->outputs[0];
    qkv_dtype dt = io->inputs[0].dtype;
    for (size_t j = 1; j < s->n_ops; j++)
        if (io->inputs[j].dtype != dt && io->inputs[j].dtype != QKV_DTYPE_UNDEFINED &&
            dt != QKV_DTYPE_UNDEFINED)
            return KERR(io, QKV_ERR_TYPE, "input %zu has type %s but input 0 has %s", j,
                        qkv_dtype_name(io->inputs[j].dtype), qkv_dtype_name(dt));
    y->dtype = dt;
    y->rank = -1;
    ein_bind b;
    bool known;
    qkv_status st = ein_bind_shapes(s, io, &b, &known);
    if (st != QKV_OK || !known)
        return st;
    y->rank = b.out_rank;
    for (int32_t a = 0; a < b.out_rank; a++)
        y->dims[a] = b.dim[b.out_label[a]];
    return QKV_OK;
}

/* ---- the GEMM path ------------------------------------------------------------------ */

/* A strided copy over `rank` dims (elements of 4 or 8 bytes). */
typedef struct ein_copy {
    int32_t rank;
    size_t dims[QKV_MAX_RANK];
    size_t src[QKV_MAX_RANK], dst[QKV_MAX_RANK];
} ein_copy;

static void strided_copy(const ein_copy *c, void *dst, const void *src, size_t eb)
{
    size_t total = 1;
    for (int32_t k = 0; k < c->rank; k++)
        total *= c->dims[k];
    if (total == 0)
        return;
    if (c->rank == 0) {
        memcpy(dst, src, eb);
        return;
    }
    int32_t last = c->rank - 1;
    size_t n = c->dims[last], ss = c->src[last], ds = c->dst[last];
    size_t coord[QKV_MAX_RANK] = {0};
    size_t so = 0, dof = 0;
    for (size_t done = 0; done < total; done += n) {
        if (eb == 8) {
            const uint64_t *restrict sp = (const uint64_t *)src + so;
            uint64_t *restrict dp = (uint64_t *)dst + dof;
            for (size_t i = 0; i < n; i++)
                dp[i * ds] = sp[i * ss];
        } else {
            const uint32_t *restrict sp = (const uint32_t *)src + so;
            uint32_t *restrict dp = (uint32_t *)dst + dof;
            for (size_t i = 0; i < n; i++)
                dp[i * ds] = sp[i * ss];
        }
        for (int32_t k = last - 1; k >= 0; k--) {
            so += c->src[k];
            dof += c->dst[k];
            if (++coord[k] < c->dims[k])
                break;
            so -= coord[k] * c->src[k];
            dof -= coord[k] * c->dst[k];
            coord[k] = 0;
        }
    }
}

/* The GEMM plan: labels of size > 1 grouped into batch, m, n and k. */
typedef struct ein_gemm {
    int32_t nb, nm, nn, nk;
    int8_t bl[QKV_MAX_RANK], ml[QKV_MAX_RANK], nl[QKV_MAX_RANK], kl[QKV_MAX_RANK];
    size_t sa[EIN_MAX_LABELS], sb[EIN_MAX_LABELS], sc[EIN_MAX_LABELS]; /* label strides */
    bool copy_a, copy_b, copy_c;                                       /* through scratch */
    size_t a_off, b_off, c_off;                                        /* scratch byte offsets */
    ein_copy ca, cb; /* copy_a/copy_b: operand -> scratch */
    ein_copy cc;     /* copy_c: scratch -> output */
    size_t scratch_bytes;
    qkv_blas_gemm g; /* pointers filled at compute */
} ein_gemm;

/* Collapses the labels ls (in order) of an operand with strides st into one
 * dim: *size their product (always set), *stride the last one's stride.
 * false when they are not one strided run. An empty group is size 1, stride 0. */
static bool collapse(const int8_t *ls, int32_t n, const size_t *st, const int64_t *dim,
                     size_t *size, size_t *stride)
{
    bool run = true;
    *size = 1;
    *stride = n ? st[ls[n - 1]] : 0;
    for (int32_t i = 0; i < n; i++) {
        if (i + 1 < n && st[ls[i]] != st[ls[i + 1]] * (size_t)dim[ls[i + 1]])
            run = false;
        *size *= (size_t)dim[ls[i]];
    }
    return run;
}

/* Chooses how a stored (rows x cols) matrix with row stride sr and column
 * stride sc feeds cblas: *trans false with *ld the row stride, or true with
 * *ld the column stride. false when it needs a copy. */
static bool as_matrix(size_t rows, size_t sr, size_t cols, size_t scol, bool *trans, size_t *ld)
{
    if ((cols == 1 || scol == 1) && (rows == 1 || sr >= cols)) {
        *trans = false;
        *ld = rows == 1 ? (cols ? cols : 1) : sr;
        return true;
    }
    if ((rows == 1 || sr == 1) && (cols == 1 || scol >= rows)) {
        *trans = true;
        *ld = cols == 1 ? (rows ? rows : 1) : scol;
        return true;
    }
    return false;
}

static size_t align64(size_t n) { return (n + 63) / 64 * 64; }

/* Scratch strides for copying operand X (strides sx) into a contiguous
 * (batch, rows, cols) block: batch labels X broadcasts keep stride 0. Fills
 * the copy description and returns the block's element count. */
static size_t plan_copy(const ein_gemm *p, const size_t *sx, const int8_t *rl, int32_t nr,
                        const int8_t *cl, int32_t nc, const int64_t *dim, size_t *dst_st,
                        ein_copy *c)
{
    int8_t order[3 * QKV_MAX_RANK];
    int32_t n = 0;
    for (int32_t i = 0; i < p->nb; i++)
        order[n++] = p->bl[i];
    for (int32_t i = 0; i < nr; i++)
        order[n++] = rl[i];
    for (int32_t i = 0; i < nc; i++)
        order[n++] = cl[i];
    size_t run = 1;
    for (int32_t i = n - 1; i >= 0; i--) {
        int l = order[i];
        bool batch = i < p->nb;
        if (batch && sx[l] == 0) {
            dst_st[l] = 0;
            continue;
        }
        dst_st[l] = run;
        run *= (size_t)dim[l];
    }
    c->rank = 0;
    for (int32_t i = 0; i < n; i++) {
        int l = order[i];
        if (i < p->nb && sx[l] == 0)
            continue;
        c->dims[c->rank] = (size_t)dim[l];
        c->src[c->rank] = sx[l];
        c->dst[c->rank] = dst_st[l];
        c->rank++;
    }
    return run;
}

/* The copy of C from scratch, contiguous (batch, m, n), to the output's
 * strides p->sc. */
static void plan_output_copy(const ein_gemm *p, const int64_t *dim, ein_copy *c)
{
    int8_t order[3 * QKV_MAX_RANK];
    int32_t n = 0;
    for (int32_t i = 0; i < p->nb; i++)
        order[n++] = p->bl[i];
    for (int32_t i = 0; i < p->nm; i++)
        order[n++] = p->ml[i];
    for (int32_t i = 0; i < p->nn; i++)
        order[n++] = p->nl[i];
    memset(c, 0, sizeof *c);
    c->rank = n;
    size_t run = 1;
    for (int32_t i = n - 1; i >= 0; i--) {
        int l = order[i];
        c->dims[i] = (size_t)dim[l];
        c->src[i] = run;
        c->dst[i] = p->sc[l];
        run *= (size_t)dim[l];
    }
}

/* Groups the labels of size > 1 into batch, m and n (output order) and k
 * (A's order). false when the equation is not a GEMM: a label summed out of
 * one operand alone. */
static bool gemm_group_labels(const ein_bind *b, ein_gemm *p)
{
    bool in_a[EIN_MAX_LABELS] = {false}, in_b[EIN_MAX_LABELS] = {false};
    for (int32_t a = 0; a < b->rank[0]; a++)
        in_a[b->axis_label[0][a]] = true;
    for (int32_t a = 0; a < b->rank[1]; a++)
        in_b[b->axis_label[1][a]] = true;
    for (int32_t a = 0; a < b->out_rank; a++) {
        int l = b->out_label[a];
        if (b->dim[l] == 1)
            continue;
        if (in_a[l] && in_b[l])
            p->bl[p->nb++] = (int8_t)l;
        else if (in_a[l])
            p->ml[p->nm++] = (int8_t)l;
        else
            p->nl[p->nn++] = (int8_t)l;
    }
    for (int32_t a = 0; a < b->rank[0]; a++) {
        int l = b->axis_label[0][a];
        if (b->dim[l] == 1 || b->in_out[l])
            continue;
        if (!in_b[l])
            return false;
        bool seen = false;
        for (int32_t i = 0; i < p->nk; i++)
            seen |= p->kl[i] == l;
        if (!seen)
            p->kl[p->nk++] = (int8_t)l;
    }
    for (int32_t a = 0; a < b->rank[1]; a++) {
        int l = b->axis_label[1][a];
        if (b->dim[l] != 1 && !b->in_out[l] && !in_a[l])
            return false;
    }
    return true;
}

/* One operand of the GEMM, read as a (rows x cols) matrix. */
typedef struct gemm_operand {
    const int8_t *rl, *cl; /* row and column labels */
    int32_t nr, nc;
    size_t *st;          /* its label strides (scratch strides once copied) */
    size_t *rows, *cols; /* the GEMM's dims it sets */
    bool *trans, *copy;
    size_t *ld, *off;
    ein_copy *c;
} gemm_operand;

/* The operand as a strided matrix, or else through a contiguous copy in
 * scratch at *scratch (advanced past it). */
static void gemm_plan_operand(const ein_gemm *p, const ein_bind *b, size_t eb, size_t *scratch,
                              const gemm_operand *o)
{
    size_t sr, sc;
    bool ok_r = collapse(o->rl, o->nr, o->st, b->dim, o->rows, &sr);
    bool ok_c = collapse(o->cl, o->nc, o->st, b->dim, o->cols, &sc);
    if (ok_r && ok_c && as_matrix(*o->rows, sr, *o->cols, sc, o->trans, o->ld))
        return;
    size_t orig[EIN_MAX_LABELS];
    *o->copy = true;
    *o->off = *scratch;
    memcpy(orig, o->st, sizeof orig);
    *scratch += align64(plan_copy(p, orig, o->rl, o->nr, o->cl, o->nc, b->dim, o->st, o->c) * eb);
    *o->trans = false;
    *o->ld = *o->cols ? *o->cols : 1;
}

/* C written in place as an untransposed (m x n) matrix per batch, or else to
 * scratch as contiguous (batch, m, n) and copied to the output after. */
static void gemm_plan_c(ein_gemm *p, const ein_bind *b, size_t eb, size_t *scratch)
{
    qkv_blas_gemm *g = &p->g;
    size_t scm, scn;
    bool ok_cm = collapse(p->ml, p->nm, p->sc, b->dim, &g->m, &scm);
    bool ok_cn = collapse(p->nl, p->nn, p->sc, b->dim, &g->n, &scn);
    bool trans_c;
    if (ok_cm && ok_cn && as_matrix(g->m, scm, g->n, scn, &trans_c, &g->ldc) && !trans_c) {
        for (int32_t i = 0; i < p->nb; i++)
            g->c_strides[i] = p->sc[p->bl[i]];
        return;
    }
    p->copy_c = true;
    p->c_off = *scratch;
    size_t cs[EIN_MAX_LABELS] = {0}, r2 = 1;
    for (int32_t i = p->nn - 1; i >= 0; i--) {
        cs[p->nl[i]] = r2;
        r2 *= (size_t)b->dim[p->nl[i]];
    }
    for (int32_t i = p->nm - 1; i >= 0; i--) {
        cs[p->ml[i]] = r2;
        r2 *= (size_t)b->dim[p->ml[i]];
    }
    for (int32_t i = p->nb - 1; i >= 0; i--) {
        cs[p->bl[i]] = r2;
        r2 *= (size_t)b->dim[p->bl[i]];
    }
    *scratch += align64(r2 * eb);
    /* keep the output strides in sc for the final copy; the GEMM's own are cs */
    for (int32_t i = 0; i < p->nb; i++)
        g->c_strides[i] = cs[p->bl[i]];
    g->ldc = g->n ? g->n : 1;
    plan_output_copy(p, b->dim, &p->cc);
}

/*
 * Plans the GEMM path for known shapes, or returns false when the equation is
 * not of that form (see the file comment). Fills everything in p but the data
 * pointers, the copies through scratch included.
 */
static bool ein_gemm_plan(const einsum_state *s, const ein_bind *b, const qkv_kernel_io *io,
                          ein_gemm *p)
{
    if (s->n_ops != 2)
        return false;
    qkv_dtype dt = io->inputs[0].dtype;
    if (dt != QKV_DTYPE_FLOAT && dt != QKV_DTYPE_DOUBLE)
        return false;
    size_t eb = dt == QKV_DTYPE_FLOAT ? 4 : 8;
    memset(p, 0, sizeof *p);
    if (!gemm_group_labels(b, p))
        return false;
    ein_label_strides(b, 0, &io->inputs[0], p->sa);
    ein_label_strides(b, 1, &io->inputs[1], p->sb);
    size_t run = 1; /* the output's strides */
    for (int32_t a = b->out_rank - 1; a >= 0; a--) {
        int l = b->out_label[a];
        p->sc[l] = run;
        run *= (size_t)b->dim[l];
    }
    qkv_blas_gemm *g = &p->g;
    g->dtype = dt;
    g->alpha = 1;
    g->beta = 0;
    size_t scratch = 0;
    gemm_plan_operand(p, b, eb, &scratch,
                      &(gemm_operand){p->ml, p->kl, p->nm, p->nk, p->sa, &g->m, &g->k, &g->trans_a,
                                      &p->copy_a, &g->lda, &p->a_off, &p->ca});
    gemm_plan_operand(p, b, eb, &scratch,
                      &(gemm_operand){p->kl, p->nl, p->nk, p->nn, p->sb, &g->k, &g->n, &g->trans_b,
                                      &p->copy_b, &g->ldb, &p->b_off, &p->cb});
    gemm_plan_c(p, b, eb, &scratch);
    g->batch_rank = p->nb;
    for (int32_t i = 0; i < p->nb; i++) {
        int l = p->bl[i];
        g->batch_dims[i] = (size_t)b->dim[l];
        g->a_strides[i] = p->sa[l]; /* scratch strides when copied (plan_copy) */
        g->b_strides[i] = p->sb[l];
    }
    p->scratch_bytes = scratch;
    return qkv_blas_gemm_fits(g);
}

/* Runs the planned GEMM path (p as prepare planned it). */
static qkv_status ein_gemm_run(const ein_gemm *p, qkv_kernel_io *io)
{
    size_t eb = p->g.dtype == QKV_DTYPE_FLOAT ? 4 : 8;
    unsigned char *scratch = io->scratch;
    qkv_blas_gemm g = p->g;
    g.a = io->inputs[0].data;
    g.b = io->inputs[1].data;
    g.c = io->outputs[0].data;
    if (p->copy_a) {
        strided_copy(&p->ca, scratch + p->a_off, io->inputs[0].data, eb);
        g.a = scratch + p->a_off;
    }
    if (p->copy_b) {
        strided_copy(&p->cb, scratch + p->b_off, io->inputs[1].data, eb);
        g.b = scratch + p->b_off;
    }
    if (p->copy_c)
        g.c = scratch + p->c_off;
    qkv_status st = qkv_blas_gemm_run(io, &g);
    if (st == QKV_OK && p->copy_c)
        strided_copy(&p->cc, io->outputs[0].data, scratch + p->c_off, eb);
    return st;
}

/* ---- the general loop -------------------------------------------------------------- */

/* The general loop's dims and strides for the planned shapes. */
typedef struct ein_loop {
    size_t n_ops;
    int32_t n_out, n_con;
    size_t out_dims[QKV_MAX_RANK];
    size_t out_st[EIN_MAX_OPS][QKV_MAX_RANK]; /* operand strides per output axis */
    size_t con_dims[EIN_MAX_LABELS];
    size_t con_st[EIN_MAX_OPS][EIN_MAX_LABELS]; /* operand strides per contracted label */
    size_t con_total;
} ein_loop;

/* One run of the general loop: the plan's loop and this run's data. */
typedef struct ein_exec {
    const ein_loop *L;
    const void *op[EIN_MAX_OPS];
    void *out;
} ein_exec;

/*
 * One function per element type: out[e] = sum over the contracted space of
 * the product of the operands, for output elements [begin, end). The last
 * contracted label is the inner loop; the others run as an odometer.
 */
#define EIN_LOOP(NAME, T, ACC)                                                                     \
    static void NAME(void *arg, size_t begin, size_t end)                                          \
    {                                                                                              \
        const ein_exec *X = arg;                                                                   \
        const ein_loop *L = X->L;                                                                  \
        const size_t nop = L->n_ops;                                                               \
        const T *ops[EIN_MAX_OPS];                                                                 \
        for (size_t o = 0; o < nop; o++)                                                           \
            ops[o] = (const T *)X->op[o];                                                          \
        T *out = X->out;                                                                           \
        size_t oc[QKV_MAX_RANK], base[EIN_MAX_OPS] = {0};                                          \
        size_t rem = begin;                                                                        \
        for (int32_t a = L->n_out - 1; a >= 0; a--) {                                              \
            oc[a] = rem % L->out_dims[a];                                                          \
            rem /= L->out_dims[a];                                                                 \
            for (size_t o = 0; o < nop; o++)                                                       \
                base[o] += oc[a] * L->out_st[o][a];                                                \
        }                                                                                          \
        const int32_t nc = L->n_con;                                                               \
        const size_t inner = nc ? L->con_dims[nc - 1] : 1;                                         \
        size_t ist[EIN_MAX_OPS];                                                                   \
        for (size_t o = 0; o < nop; o++)                                                           \
            ist[o] = nc ? L->con_st[o][nc - 1] : 0;                                                \
        /* the odometer wraps back to all zeros after each full pass */                            \
        size_t cc[EIN_MAX_LABELS] = {0};                                                           \
        for (size_t e = begin; e < end; e++) {                                                     \
            ACC acc = 0;                                                                           \
            if (L->con_total) {                                                                    \
                size_t off[EIN_MAX_OPS];                                                           \
                for (size_t o = 0; o < nop; o++)                                                   \
                    off[o] = base[o];                                                              \
                for (size_t done = 0; done < L->con_total; done += inner) {                        \
                    if (nop == 1) {                                                                \
                        const T *a0 = ops[0] + off[0];                                             \
                        for (size_t i = 0; i < inner; i++)                                         \
                            acc += (ACC)a0[i * ist[0]];                                            \
                    } else if (nop == 2) {                                                         \
                        const T *a0 = ops[0] + off[0], *a1 = ops[1] + off[1];                      \
                        for (size_t i = 0; i < inner; i++)                                         \
                            acc += (ACC)a0[i * ist[0]] * (ACC)a1[i * ist[1]];                      \
                    } else {                                                                       \
                        for (size_t i = 0; i < inner; i++) {                                       \
                            ACC p = (ACC)ops[0][off[0] + i * ist[0]];                              \
                            for (size_t o = 1; o < nop; o++)                                       \
                                p *= (ACC)ops[o][off[o] + i * ist[o]];                             \
                            acc += p;                                                              \
                        }                                                                          \
                    }                                                                              \
                    for (int32_t c = nc - 2; c >= 0; c--) {                                        \
                        for (size_t o = 0; o < nop; o++)                                           \
                            off[o] += L->con_st[o][c];                                             \
                        if (++cc[c] < L->con_dims[c])                                              \
                            break;                                                                 \
                        for (size_t o = 0; o < nop; o++)                                           \
                            off[o] -= cc[c] * L->con_st[o][c];                                     \
                        cc[c] = 0;                                                                 \
                    }                                                                              \
                }                                                                                  \
            }                                                                                      \
            out[e] = (T)acc;                                                                       \
            for (int32_t a = L->n_out - 1; a >= 0; a--) {                                          \
                for (size_t o = 0; o < nop; o++)                                                   \
                    base[o] += L->out_st[o][a];                                                    \
                if (++oc[a] < L->out_dims[a])                                                      \
                    break;                                                                         \
                for (size_t o = 0; o < nop; o++)                                                   \
                    base[o] -= oc[a] * L->out_st[o][a];                                            \
                oc[a] = 0;                                                                         \
            }                                                                                      \
        }                                                                                          \
    }

/* Integers accumulate in uint64_t: wrapping is defined there, and the final
 * conversion keeps the low bits (two's complement wrap, as numpy). */
EIN_LOOP(loop_f32, float, double)
EIN_LOOP(loop_f64, double, double)
EIN_LOOP(loop_i8, int8_t, uint64_t)
EIN_LOOP(loop_i16, int16_t, uint64_t)
EIN_LOOP(loop_i32, int32_t, uint64_t)
EIN_LOOP(loop_i64, int64_t, uint64_t)
EIN_LOOP(loop_u8, uint8_t, uint64_t)
EIN_LOOP(loop_u16, uint16_t, uint64_t)
EIN_LOOP(loop_u32, uint32_t, uint64_t)
EIN_LOOP(loop_u64, uint64_t, uint64_t)

/* The general loop, planned: its dims and strides, the function for the
 * element type and whether it goes parallel. */
typedef struct ein_general {
    ein_loop loop;
    qkv_range_fn fn;
    size_t n_out; /* output elements */
    bool parallel;
} ein_general;

/* Plans the general loop for the bound shapes. QKV_ERR_TYPE for an element
 * type it does not run. */
static qkv_status ein_general_plan(const einsum_state *s, const ein_bind *b, qkv_kernel_io *io,
                                   ein_general *gp)
{
    ein_loop *L = &gp->loop;
    memset(gp, 0, sizeof *gp);
    L->n_ops = s->n_ops;
    L->n_out = b->out_rank;
    size_t st[EIN_MAX_OPS][EIN_MAX_LABELS];
    for (size_t j = 0; j < s->n_ops; j++)
        ein_label_strides(b, j, &io->inputs[j], st[j]);
    size_t n_out = 1;
    for (int32_t a = 0; a < b->out_rank; a++) {
        int l = b->out_label[a];
        L->out_dims[a] = (size_t)b->dim[l];
        n_out *= L->out_dims[a];
        for (size_t j = 0; j < s->n_ops; j++)
            L->out_st[j][a] = st[j][l];
    }
    L->con_total = 1;
    for (int l = 0; l < EIN_MAX_LABELS; l++) {
        if (!b->used[l] || b->in_out[l])
            continue;
        L->con_dims[L->n_con] = (size_t)b->dim[l];
        L->con_total *= (size_t)b->dim[l];
        for (size_t j = 0; j < s->n_ops; j++)
            L->con_st[j][L->n_con] = st[j][l];
        L->n_con++;
    }
    switch (io->outputs[0].dtype) {
    case QKV_DTYPE_FLOAT:
        gp->fn = loop_f32;
        break;
    case QKV_DTYPE_DOUBLE:
        gp->fn = loop_f64;
        break;
    case QKV_DTYPE_INT8:
        gp->fn = loop_i8;
        break;
    case QKV_DTYPE_INT16:
        gp->fn = loop_i16;
        break;
    case QKV_DTYPE_INT32:
        gp->fn = loop_i32;
        break;
    case QKV_DTYPE_INT64:
        gp->fn = loop_i64;
        break;
    case QKV_DTYPE_UINT8:
        gp->fn = loop_u8;
        break;
    case QKV_DTYPE_UINT16:
        gp->fn = loop_u16;
        break;
    case QKV_DTYPE_UINT32:
        gp->fn = loop_u32;
        break;
    case QKV_DTYPE_UINT64:
        gp->fn = loop_u64;
        break;
    default:
        return KERR(io, QKV_ERR_TYPE, "inputs have type %s, not supported",
                    qkv_dtype_name(io->outputs[0].dtype));
    }
    gp->n_out = n_out;
    double work = (double)n_out * (double)(L->con_total ? L->con_total : 1) * (double)s->n_ops;
    gp->parallel = work >= PAR_MIN_WORK && n_out > 1;
    return QKV_OK;
}

/* Runs the planned general loop on io's data. */
static void ein_general_run(const ein_general *gp, qkv_kernel_io *io)
{
    ein_exec x = {.L = &gp->loop, .out = io->outputs[0].data};
    for (size_t j = 0; j < gp->loop.n_ops; j++)
        x.op[j] = io->inputs[j].data;
    if (gp->n_out == 0)
        return;
    if (gp->parallel)
        io->host->parallel_for(io->host_ctx, gp->n_out, gp->fn, &x);
    else
        gp->fn(&x, 0, gp->n_out);
}

/* What prepare works out once per plan and compute reads (io->plan_state):
 * the GEMM path when the equation has its form and the scratch it needs was
 * declared, else the general loop. */
typedef struct ein_plan {
    bool use_gemm;
    union {
        ein_gemm gemm;
        ein_general general;
    } u;
} ein_plan;

/* ---- prepare / compute ------------------------------------------------------------------ */

static qkv_status einsum_prepare(void *state, qkv_kernel_io *io)
{
    const einsum_state *s = state;
    ein_bind b;
    bool known;
    qkv_status st = ein_bind_shapes(s, io, &b, &known);
    if (st != QKV_OK)
        return st;
    if (!known)
        return KERR(io, QKV_ERR_INTERNAL, "input shapes unknown at prepare");
    ein_plan *plan;
    if ((st = io->host->plan_alloc(io, sizeof *plan, (void **)&plan)) != QKV_OK)
        return st;
    plan->use_gemm = ein_gemm_plan(s, &b, io, &plan->u.gemm);
    if (plan->use_gemm)
        io->scratch_bytes = plan->u.gemm.scratch_bytes;
    else if ((st = ein_general_plan(s, &b, io, &plan->u.general)) != QKV_OK)
        return st;
    io->plan_state = plan;
    return QKV_OK;
}

static qkv_status einsum_compute(const void *state, qkv_kernel_io *io)
{
    (void)state;
    const ein_plan *plan = io->plan_state;
    if (!plan)
        return KERR(io, QKV_ERR_INTERNAL, "no per-plan state: prepare did not run");
    if (plan->use_gemm)
        return ein_gemm_run(&plan->u.gemm, io);
    ein_general_run(&plan->u.general, io);
    return QKV_OK;
}

static const qkv_kernel kernels[] = {
    {
        QKV_KERNEL_V1,
        .domain = "",
        .op_type = "Einsum",
        .since_version = 12,
        .min_inputs = 1,
        .max_inputs = -1,
        .min_outputs = 1,
        .max_outputs = 1,
        .n_input_types = 1,
        .input_types = {QKV_TYPES_NUMERIC},
        .init = einsum_init,
        .infer = einsum_infer,
        .prepare = einsum_prepare,
        .compute = einsum_compute,
        .destroy = einsum_destroy,
    },
};

/* The einsum family: Einsum. */
const qkv_kernel *qkv_ops_einsum(size_t *count)
{
    *count = sizeof kernels / sizeof kernels[0];
    return kernels;
}
