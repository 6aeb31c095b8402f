/*
 * gemm.c - Gemm (opsets 1, 7, 9, 11, 13): Y = alpha * op(A) @ op(B) + beta * C
 * with A, B 2-D, op() the optional transpose (transA, transB), and C
 * unidirectionally broadcast to (M, N). C is optional from opset 11.
 *
 * alpha, beta and the transposes go straight into the BLAS call (no copies
 * of A or B): Y is first filled with C broadcast, then the GEMM accumulates
 * into it with beta. With beta == 0, C is not read at all (as in BLAS and
 * onnxruntime), so a NaN or inf in C does not reach Y.
 *
 * Deviations: opsets 1-6 get the opset 7 semantics (C always broadcast; the
 * old `broadcast` attribute is ignored, which accepts every model the old
 * rule accepted). Types: float and double only (the integer types of opset
 * 9+ and bfloat16/float16 are not supported).
 */
#include <stdlib.h>
#include <string.h>

#include "blas.h"
#include "gemm_prepack.h"
#include "kernel_util.h"
#include "qkv.h"

/* Filling Y from C goes parallel above this many elements. */
#define FILL_PAR_MIN ((size_t)1 << 16)

typedef struct gemm_attrs {
    float alpha, beta;
    bool trans_a, trans_b;
    qkv_sgemm_packed_b b; /* op(B) packed by prepack when B is a float32 constant */
} gemm_attrs;

/* ---- Y = C broadcast ----------------------------------------------------------- */

typedef struct fill_run {
    const char *c; /* C's data */
    char *y;       /* (m, n) */
    size_t n, elem_bytes;
    size_t row_stride, col_stride; /* C's element strides over (m, n): 0 broadcasts */
} fill_run;

/* parallel_for body: rows [begin, end) of Y. */
static void fill_range(void *arg, size_t begin, size_t end)
{
    const fill_run *f = arg;
    size_t es = f->elem_bytes, rowb = f->n * es;
    for (size_t i = begin; i < end; i++) {
        const char *src = f->c + i * f->row_stride * es;
        char *dst = f->y + i * rowb;
        if (f->col_stride == 1) {
            if (dst != src)
                memcpy(dst, src, rowb);
        } else if (es == sizeof(double)) {
            double v, *restrict d = (double *)(void *)dst;
            memcpy(&v, src, sizeof v);
            for (size_t j = 0; j < f->n; j++)
                d[j] = v;
        } else {
            float v, *restrict d = (float *)(void *)dst;
            memcpy(&v, src, sizeof v);
            for (size_t j = 0; j < f->n; j++)
                d[j] = v;
        }
    }
}

/* Y (m, n) = C broadcast (C of rank 0-2, validated by infer). */
static void fill_from_c(qkv_kernel_io *io, const qkv_tensor *c, qkv_tensor *y, size_t elem_bytes)
{
    size_t m = (size_t)y->dims[0], n = (size_t)y->dims[1];
    fill_run f = {.c = c->data, .y = y->data, .n = n, .elem_bytes = elem_bytes};
    int64_t cm = c->rank == 2 ? c->dims[0] : 1, cn = c->rank >= 1 ? c->dims[c->rank - 1] : 1;
    f.col_stride = cn == 1 ? 0 : 1;
    f.row_stride = cm == 1 ? 0 : (size_t)cn;
    if (n == 1 && cn == 1)
        f.col_stride = 1; /* one column: a copy of one element per row */
    if (m * n >= FILL_PAR_MIN)
        io->host->parallel_for(io->host_ctx, m, fill_range, &f);
    else
        fill_range(&f, 0, m);
}

/* ---- callbacks --------------------------------------------------------------- */

static qkv_status gemm_init(const qkv_kernel *kernel, const qkv_host_api *host,
                            const qkv_node_ctx *node, void **state)
{
    (void)kernel;
    int64_t ta = 0, tb = 0;
    float alpha = 1, beta = 1;
    qkv_status st = host->attr_float(node, "alpha", 1.0f, &alpha);
    if (st == QKV_OK)
        st = host->attr_float(node, "beta", 1.0f, &beta);
    if (st == QKV_OK)
        st = host->attr_int(node, "transA", 0, &ta);
    if (st == QKV_OK)
        st = host->attr_int(node, "transB", 0, &tb);
    if (st != QKV_OK)
        return st;
    if ((ta != 0 && ta != 1) || (tb != 0 && tb != 1))
        return NERR(host, node, QKV_ERR_INVALID_MODEL,
                    "attributes transA=%lld, transB=%lld: each must be 0 or 1", (long long)ta,
                    (long long)tb);
    /* malloc, not host->alloc: destroy gets no host table */
    gemm_attrs *s = malloc(sizeof *s);
    if (!s)
        return NERR(host, node, QKV_ERR_OUT_OF_MEMORY, "kernel state");
    memset(s, 0, sizeof *s);
    s->alpha = alpha;
    s->beta = beta;
    s->trans_a = ta != 0;
    s->trans_b = tb != 0;
    *state = s;
    return QKV_OK;
}

static void gemm_destroy(void *state)
{
    gemm_attrs *s = state;
    if (s)
        qkv_gemm_packed_free(&s->b);
    free(s);
}

static qkv_status gemm_prepack(void **state, const qkv_host_api *host, const qkv_node_ctx *node)
{
    gemm_attrs *s = *state;
    return qkv_gemm_prepack_b(host, node, 1, s->trans_b, &s->b);
}

static qkv_status gemm_infer(void *state, qkv_kernel_io *io)
{
    const gemm_attrs *s = state;
    const qkv_tensor *a = &io->inputs[0], *b = &io->inputs[1];
    const qkv_tensor *c = qkv_present(io, 2) ? &io->inputs[2] : NULL;
    qkv_tensor *y = &io->outputs[0];
    char sa[96], sb[96];
    if (b->dtype != a->dtype || (c && c->dtype != a->dtype))
        return KERR(io, QKV_ERR_TYPE, "input %d '%s' is %s but input 0 'A' is %s: they must match",
                    b->dtype != a->dtype ? 1 : 2, b->dtype != a->dtype ? "B" : "C",
                    qkv_dtype_name(b->dtype != a->dtype ? b->dtype : c->dtype),
                    qkv_dtype_name(a->dtype));
    if (a->rank >= 0 && a->rank != 2)
        return KERR(io, QKV_ERR_SHAPE, "input 0 'A' has rank %d, expected 2", a->rank);
    if (b->rank >= 0 && b->rank != 2)
        return KERR(io, QKV_ERR_SHAPE, "input 1 'B' has rank %d, expected 2", b->rank);
    int64_t m = -1, ka = -1, kb = -1, n = -1;
    if (a->rank == 2) {
        m = a->dims[s->trans_a ? 1 : 0];
        ka = a->dims[s->trans_a ? 0 : 1];
    }
    if (b->rank == 2) {
        kb = b->dims[s->trans_b ? 1 : 0];
        n = b->dims[s->trans_b ? 0 : 1];
    }
    if (ka >= 0 && kb >= 0 && ka != kb)
        return KERR(io, QKV_ERR_SHAPE,
                    "inner dimensions differ: input 0 'A' %s%s gives K=%lld, input 1 'B' %s%s "
                    "gives K=%lld",
                    qkv_dims_str(a, sa, sizeof sa), s->trans_a ? " (transposed)" : "",
                    (long long)ka, qkv_dims_str(b, sb, sizeof sb),
                    s->trans_b ? " (transposed)" : "", (long long)kb);
    if (c && c->rank > 2)
        return KERR(io, QKV_ERR_SHAPE, "input 2 'C' has rank %d, expected at most 2", c->rank);
    if (c && c->rank >= 1) {
        int64_t cn = c->dims[c->rank - 1], cm = c->rank == 2 ? c->dims[0] : 1;
        if ((cn >= 0 && cn != 1 && n >= 0 && cn != n) || (cm >= 0 && cm != 1 && m >= 0 && cm != m))
            return KERR(io, QKV_ERR_SHAPE,
                        "input 2 'C' %s does not broadcast to the output [%lld,%lld]",
                        qkv_dims_str(c, sa, sizeof sa), (long long)m, (long long)n);
        /* where only C knows a dim, it tells the output's */
        if (n < 0 && cn > 1)
            n = cn;
        if (m < 0 && cm > 1)
            m = cm;
    }
    qkv_set_shape(y, a->dtype, 2, (int64_t[]){m, n});
    return QKV_OK;
}

/* The GEMM of the node for known shapes; beta as the BLAS call sees it
 * (0 without C: Y is not read). */
static void gemm_plan(const gemm_attrs *s, qkv_kernel_io *io, qkv_blas_gemm *g)
{
    const qkv_tensor *a = &io->inputs[0], *b = &io->inputs[1];
    qkv_tensor *y = &io->outputs[0];
    memset(g, 0, sizeof *g);
    g->dtype = a->dtype;
    g->trans_a = s->trans_a;
    g->trans_b = s->trans_b;
    g->m = (size_t)y->dims[0];
    g->n = (size_t)y->dims[1];
    g->k = (size_t)a->dims[s->trans_a ? 0 : 1];
    g->alpha = s->alpha;
    g->beta = qkv_present(io, 2) && s->beta != 0 ? s->beta : 0;
    g->a = a->data;
    g->lda = (size_t)a->dims[1];
    g->b = b->data;
    g->ldb = (size_t)b->dims[1];
    g->c = y->data;
    g->ldc = g->n;
    /* cblas wants a leading dimension >= 1 even for an empty matrix */
    if (g->lda == 0)
        g->lda = 1;
    if (g->ldb == 0)
        g->ldb = 1;
    if (g->ldc == 0)
        g->ldc = 1;
}

static qkv_status gemm_prepare(void *state, qkv_kernel_io *io)
{
    qkv_blas_gemm g;
    gemm_plan(state, io, &g);
    if (!qkv_blas_gemm_fits(&g))
        return KERR(io, QKV_ERR_UNSUPPORTED,
                    "matrices too large: m=%zu n=%zu k=%zu, at most %zu each", g.m, g.n, g.k,
                    QKV_BLAS_MAX_DIM);
    const gemm_attrs *s = state;
    if (s->b.data && (g.dtype != QKV_DTYPE_FLOAT || s->b.k != g.k || s->b.n != g.n))
        return KERR(io, QKV_ERR_INTERNAL,
                    "input 1 'B' was packed as (%zu, %zu) but the plan multiplies by (%zu, %zu) %s",
                    s->b.k, s->b.n, g.k, g.n, qkv_dtype_name(g.dtype));
    return QKV_OK;
}

static qkv_status gemm_compute(const void *state, qkv_kernel_io *io)
{
    qkv_blas_gemm g;
    gemm_plan(state, io, &g);
    size_t elem_bytes;
    switch (g.dtype) {
    case QKV_DTYPE_FLOAT:
        elem_bytes = sizeof(float);
        break;
    case QKV_DTYPE_DOUBLE:
        elem_bytes = sizeof(double);
        break;
    default:
        return KERR(io, QKV_ERR_TYPE, "input 0 'A' has type %s, not supported",
                    qkv_dtype_name(g.dtype));
    }
    if (g.beta != 0)
        fill_from_c(io, &io->inputs[2], &io->outputs[0], elem_bytes);
    const gemm_attrs *s = state;
    if (s->b.data) {
        qkv_gemm_run_packed(io, &g, &s->b);
        return QKV_OK;
    }
    return qkv_blas_gemm_run(io, &g);
}

#define GEMM_KERNEL(since, until, min_in)                                                          \
    {                                                                                              \
        QKV_KERNEL_V1, .domain = "", .op_type = "Gemm", .since_version = (since),                  \
                       .until_version = (until), .min_inputs = (min_in), .max_inputs = 3,          \
                       .min_outputs = 1, .max_outputs = 1, .n_input_types = 1,                     \
                       .input_types = {QKV_TYPES_FLOATS}, .init = gemm_init, .infer = gemm_infer,  \
                       .prepare = gemm_prepare, .compute = gemm_compute, .destroy = gemm_destroy,  \
                       .prepack = gemm_prepack,                                                    \
    }

static const qkv_kernel kernels[] = {
    GEMM_KERNEL(1, 6, 3),   GEMM_KERNEL(7, 8, 3),  GEMM_KERNEL(9, 10, 3),
    GEMM_KERNEL(11, 12, 2), GEMM_KERNEL(13, 0, 2),
};

/* The Gemm descriptors (one per opset range); *count set to their number. */
const qkv_kernel *qkv_ops_gemm(size_t *count)
{
    *count = sizeof kernels / sizeof kernels[0];
    return kernels;
}
