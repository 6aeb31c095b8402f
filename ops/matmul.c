/*
 * matmul.c - MatMul (opsets 1, 9, 13) with numpy matmul semantics: the last
 * two dims are the matrices, leading dims broadcast; a 1-D A is promoted to
 * (1, K) and a 1-D B to (K, 1), and the promoted dim is removed from the
 * output.
 *
 * Types: float and double through BLAS (blas.h); from opset 9 also int32,
 * int64, uint32 and uint64 with a plain loop (wrapping on overflow, like
 * numpy); float16 (and bfloat16 from opset 13) converted to float32 in
 * scratch, multiplied in float32 and rounded back once (see matmul_half).
 *
 * Batches: when B is the same matrix for every batch entry (activations
 * (b, s, k) times weights (k, n), the common case) and A is contiguous across
 * the batch, the batch folds into M: one GEMM with M = b * s. Otherwise the
 * batch entries are separate GEMMs addressed through broadcast strides.
 * Constant weights: a float32 B of rank 2 that is a constant of the
 * session is packed once, in prepack, for qkv's GEMM (gemm_prepack.h), and
 * every run multiplies by the packed copy; the original is released when
 * nothing else reads it.
 *
 * GEMM and threads: qkv_blas_gemm_run (blas.h) spreads batch entries, or
 * row/column blocks of a single GEMM, over the run context's pool, through
 * the session's GEMM service (qkv's own GEMM, or a backend's).
 */
#include <stdlib.h>
#include <string.h>

#include "blas.h"
#include "gemm_prepack.h"
#include "half.h"
#include "kernel_util.h"
#include "matmul_shape.h"
#include "qkv.h"

/* Integer loops go parallel above this many multiply-adds. */
#define INT_PAR_MIN_MACS ((double)(1u << 16))

/* The batched GEMM computing y = a @ b for known shapes (infer validated
 * them). Folds the batch into M when it can (see the file comment). */
static void matmul_plan(const qkv_tensor *a, const qkv_tensor *b, const qkv_tensor *y,
                        qkv_blas_gemm *g)
{
    int32_t ra = a->rank, rb = b->rank;
    memset(g, 0, sizeof *g);
    g->dtype = a->dtype;
    g->m = ra >= 2 ? (size_t)a->dims[ra - 2] : 1;
    g->k = (size_t)a->dims[ra - 1];
    g->n = rb >= 2 ? (size_t)b->dims[rb - 1] : 1;
    g->alpha = 1;
    g->beta = 0;
    g->a = a->data;
    g->b = b->data;
    g->c = y->data;
    g->lda = g->k;
    g->ldb = g->n;
    g->ldc = g->n;
    int32_t nba = ra > 2 ? ra - 2 : 0, nbb = rb > 2 ? rb - 2 : 0;
    int32_t nb = nba > nbb ? nba : nbb;
    g->batch_rank = nb;
    /* Strides in elements: a batch dim of size 1 (or missing) broadcasts. */
    size_t sa = g->m * g->k, sb = g->k * g->n, sc = g->m * g->n;
    for (int32_t j = nb - 1; j >= 0; j--) {
        int32_t ja = j - (nb - nba), jb = j - (nb - nbb);
        size_t da = ja >= 0 ? (size_t)a->dims[ja] : 1;
        size_t db = jb >= 0 ? (size_t)b->dims[jb] : 1;
        g->batch_dims[j] = (size_t)y->dims[j];
        g->a_strides[j] = da == 1 ? 0 : sa;
        g->b_strides[j] = db == 1 ? 0 : sb;
        g->c_strides[j] = sc;
        sa *= da;
        sb *= db;
        sc *= g->batch_dims[j];
    }
    /* Fold: B shared by all entries and A covering every entry contiguously
     * means A is one (nbatch * m, k) matrix and C one (nbatch * m, n). */
    if (nb == 0 || ra < 2)
        return;
    size_t nbatch = 1;
    for (int32_t j = 0; j < nb; j++) {
        if (g->b_strides[j] != 0 || (g->batch_dims[j] != 1 && g->a_strides[j] == 0))
            return;
        nbatch *= g->batch_dims[j];
    }
    if (nbatch != 0 && g->m > QKV_BLAS_MAX_DIM / nbatch)
        return;
    g->m *= nbatch;
    g->batch_rank = 0;
}

/* ---- integer matmul (no BLAS) ---------------------------------------------- */

typedef struct int_run {
    const qkv_blas_gemm *g;
    size_t elem_bytes; /* 4 or 8 */
} int_run;

/*
 * One row of C: c[j] = sum_p a[p] * b[p * n + j], in unsigned arithmetic:
 * two's complement wrap-around gives the signed result bit for bit, without
 * the undefined behaviour of signed overflow.
 */
#define DEFINE_INT_ROW(T)                                                                          \
    static void int_row_##T(T *restrict c, const T *restrict a, const T *restrict b, size_t n,     \
                            size_t k)                                                              \
    {                                                                                              \
        for (size_t j = 0; j < n; j++)                                                             \
            c[j] = 0;                                                                              \
        for (size_t p = 0; p < k; p++) {                                                           \
            T ap = a[p];                                                                           \
            const T *restrict brow = b + p * n;                                                    \
            for (size_t j = 0; j < n; j++)                                                         \
                c[j] += ap * brow[j];                                                              \
        }                                                                                          \
    }
DEFINE_INT_ROW(uint32_t)
DEFINE_INT_ROW(uint64_t)

/* parallel_for body: rows [begin, end) of all batch entries' C stacked. */
static void int_range(void *arg, size_t begin, size_t end)
{
    const int_run *r = arg;
    const qkv_blas_gemm *g = r->g;
    for (size_t u = begin; u < end; u++) {
        size_t batch = u / g->m, i = u % g->m;
        size_t oa = 0, ob = 0, oc = 0;
        for (int32_t j = g->batch_rank - 1; j >= 0; j--) {
            size_t coord = batch % g->batch_dims[j];
            batch /= g->batch_dims[j];
            oa += coord * g->a_strides[j];
            ob += coord * g->b_strides[j];
            oc += coord * g->c_strides[j];
        }
        oa += i * g->lda;
        oc += i * g->ldc;
        if (r->elem_bytes == 4)
            int_row_uint32_t((uint32_t *)g->c + oc, (const uint32_t *)g->a + oa,
                             (const uint32_t *)g->b + ob, g->n, g->k);
        else
            int_row_uint64_t((uint64_t *)g->c + oc, (const uint64_t *)g->a + oa,
                             (const uint64_t *)g->b + ob, g->n, g->k);
    }
}

static void int_matmul(qkv_kernel_io *io, const qkv_blas_gemm *g, size_t elem_bytes)
{
    size_t rows = g->m;
    for (int32_t j = 0; j < g->batch_rank; j++)
        rows *= g->batch_dims[j]; /* the rows of C: no overflow */
    if (rows == 0 || g->n == 0)
        return;
    int_run r = {.g = g, .elem_bytes = elem_bytes};
    double macs = (double)rows * (double)g->n * (double)(g->k ? g->k : 1);
    if (macs >= INT_PAR_MIN_MACS)
        io->host->parallel_for(io->host_ctx, rows, int_range, &r);
    else
        int_range(&r, 0, rows);
}

/* ---- float16 / bfloat16 (through float32 scratch) --------------------------- */

/*
 * A, B and C in float32 take numel(A) + numel(B) + numel(C) floats of
 * scratch: the whole operands are converted (not tiles), which keeps the one
 * float32 GEMM path with its batching and threading, at the price of 2x the
 * half-precision size in scratch. *bytes 0 and false on size_t overflow.
 */
static bool half_scratch_bytes(const qkv_kernel_io *io, size_t *bytes)
{
    size_t n = 0;
    *bytes = 0;
    const qkv_tensor *ts[3] = {&io->inputs[0], &io->inputs[1], &io->outputs[0]};
    for (int i = 0; i < 3; i++) {
        size_t k = qkv_numel(ts[i]);
        if (k > SIZE_MAX / sizeof(float) - n)
            return false;
        n += k;
    }
    *bytes = n * sizeof(float);
    return true;
}

/* y = a @ b for float16/bfloat16 a, b: convert, float32 GEMM, round back.
 * Returns the GEMM's status. */
static qkv_status matmul_half(qkv_kernel_io *io)
{
    const qkv_tensor *a = &io->inputs[0], *b = &io->inputs[1];
    qkv_tensor *y = &io->outputs[0];
    size_t na = qkv_numel(a), nb = qkv_numel(b), ny = qkv_numel(y);
    float *fa = io->scratch, *fb = fa + na, *fy = fb + nb;
    qkv_half_to_f32_par(io, fa, a->data, a->dtype, na);
    qkv_half_to_f32_par(io, fb, b->data, b->dtype, nb);
    qkv_tensor ta = *a, tb = *b, ty = *y;
    ta.dtype = tb.dtype = ty.dtype = QKV_DTYPE_FLOAT;
    ta.data = fa;
    tb.data = fb;
    ty.data = fy;
    qkv_blas_gemm g;
    matmul_plan(&ta, &tb, &ty, &g);
    qkv_status st = qkv_blas_gemm_run(io, &g);
    if (st == QKV_OK)
        qkv_f32_to_half_par(io, y->data, fy, y->dtype, ny);
    return st;
}

/* ---- callbacks --------------------------------------------------------------- */

/* Broadcast of two batch dims (-1 unknown); false when they conflict. */
static bool batch_dim(int64_t da, int64_t db, int64_t *out)
{
    if (da == 1)
        *out = db;
    else if (db == 1 || db < 0)
        *out = da;
    else if (da < 0 || da == db)
        *out = db;
    else
        return false;
    return true;
}

qkv_status qkv_matmul_shape(qkv_kernel_io *io, const qkv_tensor *a, const qkv_tensor *b,
                            size_t b_input, qkv_tensor *y)
{
    char sa[96], sb[96];
    y->rank = -1;
    if (a->rank < 0 || b->rank < 0)
        return QKV_OK;
    if (a->rank == 0 || b->rank == 0)
        return KERR(io, QKV_ERR_SHAPE, "input %zu '%s' is a scalar, expected rank >= 1",
                    a->rank == 0 ? (size_t)0 : b_input, a->rank == 0 ? "A" : "B");
    int32_t ra = a->rank, rb = b->rank;
    int64_t ka = a->dims[ra - 1], kb = rb >= 2 ? b->dims[rb - 2] : b->dims[0];
    if (ka >= 0 && kb >= 0 && ka != kb)
        return KERR(io, QKV_ERR_SHAPE,
                    "inner dimensions differ: input 0 'A' %s has %lld columns, input %zu 'B' %s "
                    "has %lld rows",
                    qkv_dims_str(a, sa, sizeof sa), (long long)ka, b_input,
                    qkv_dims_str(b, sb, sizeof sb), (long long)kb);
    int32_t nba = ra > 2 ? ra - 2 : 0, nbb = rb > 2 ? rb - 2 : 0;
    int32_t nb = nba > nbb ? nba : nbb;
    for (int32_t j = 0; j < nb; j++) {
        int32_t ja = j - (nb - nba), jb = j - (nb - nbb);
        int64_t da = ja >= 0 ? a->dims[ja] : 1, db = jb >= 0 ? b->dims[jb] : 1;
        if (!batch_dim(da, db, &y->dims[j]))
            return KERR(io, QKV_ERR_SHAPE,
                        "batch dims do not broadcast: input 0 'A' %s, input %zu 'B' %s (%lld "
                        "vs %lld)",
                        qkv_dims_str(a, sa, sizeof sa), b_input, qkv_dims_str(b, sb, sizeof sb),
                        (long long)da, (long long)db);
    }
    int32_t r = nb;
    if (ra >= 2)
        y->dims[r++] = a->dims[ra - 2];
    if (rb >= 2)
        y->dims[r++] = b->dims[rb - 1];
    y->rank = r;
    return QKV_OK;
}

static qkv_status matmul_infer(void *state, qkv_kernel_io *io)
{
    (void)state;
    const qkv_tensor *a = &io->inputs[0], *b = &io->inputs[1];
    qkv_tensor *y = &io->outputs[0];
    if (a->dtype != b->dtype)
        return KERR(io, QKV_ERR_TYPE, "input 1 'B' is %s but input 0 'A' is %s: they must match",
                    qkv_dtype_name(b->dtype), qkv_dtype_name(a->dtype));
    y->dtype = a->dtype;
    return qkv_matmul_shape(io, a, b, 1, y);
}

/* ---- the packed constant B ------------------------------------------------- */

/* State: NULL, or the packed B when prepack packed one. */
typedef struct matmul_state {
    qkv_sgemm_packed_b b;
} matmul_state;

static qkv_status matmul_prepack(void **state, const qkv_host_api *host, const qkv_node_ctx *node)
{
    qkv_sgemm_packed_b pb;
    qkv_status st = qkv_gemm_prepack_b(host, node, 1, false, &pb);
    if (st != QKV_OK || !pb.data)
        return st;
    matmul_state *s = malloc(sizeof *s);
    if (!s) {
        qkv_gemm_packed_free(&pb);
        return NERR(host, node, QKV_ERR_OUT_OF_MEMORY, "out of memory");
    }
    s->b = pb;
    *state = s;
    return QKV_OK;
}

static void matmul_destroy(void *state)
{
    matmul_state *s = state;
    if (s)
        qkv_gemm_packed_free(&s->b);
    free(s);
}

static qkv_status matmul_prepare(void *state, qkv_kernel_io *io)
{
    const matmul_state *s = state;
    qkv_blas_gemm g;
    matmul_plan(&io->inputs[0], &io->inputs[1], &io->outputs[0], &g);
    if (s && (g.dtype != QKV_DTYPE_FLOAT || s->b.k != g.k || s->b.n != g.n))
        return KERR(io, QKV_ERR_INTERNAL,
                    "input 1 'B' was packed as (%zu, %zu) but the plan multiplies by (%zu, %zu) %s",
                    s->b.k, s->b.n, g.k, g.n, qkv_dtype_name(g.dtype));
    if (!qkv_blas_gemm_fits(&g))
        return KERR(io, QKV_ERR_UNSUPPORTED,
                    "matrices too large: m=%zu n=%zu k=%zu, at most %zu each", g.m, g.n, g.k,
                    QKV_BLAS_MAX_DIM);
    if (qkv_is_half(g.dtype) && !half_scratch_bytes(io, &io->scratch_bytes))
        return KERR(io, QKV_ERR_UNSUPPORTED, "operands too large for the float32 scratch copy");
    return QKV_OK;
}

static qkv_status matmul_compute(const void *state, qkv_kernel_io *io)
{
    const matmul_state *s = state;
    qkv_blas_gemm g;
    matmul_plan(&io->inputs[0], &io->inputs[1], &io->outputs[0], &g);
    if (s) { /* float32 with the packed B (prepare checked) */
        qkv_gemm_run_packed(io, &g, &s->b);
        return QKV_OK;
    }
    switch (g.dtype) {
    case QKV_DTYPE_FLOAT:
    case QKV_DTYPE_DOUBLE:
        return qkv_blas_gemm_run(io, &g);
    case QKV_DTYPE_INT32:
    case QKV_DTYPE_UINT32:
        int_matmul(io, &g, 4);
        return QKV_OK;
    case QKV_DTYPE_INT64:
    case QKV_DTYPE_UINT64:
        int_matmul(io, &g, 8);
        return QKV_OK;
    case QKV_DTYPE_FLOAT16:
    case QKV_DTYPE_BFLOAT16:
        return matmul_half(io);
    default:
        return KERR(io, QKV_ERR_TYPE, "input 0 'A' has type %s, not supported",
                    qkv_dtype_name(g.dtype));
    }
}

#define MATMUL_INTS (QKV_TYPES_FLOATS | QKV_T(INT32) | QKV_T(INT64) | QKV_T(UINT32) | QKV_T(UINT64))

#define MATMUL_KERNEL(since, until, types)                                                         \
    {                                                                                              \
        QKV_KERNEL_V1, .domain = "", .op_type = "MatMul", .since_version = (since),                \
                       .until_version = (until), .min_inputs = 2, .max_inputs = 2,                 \
                       .min_outputs = 1, .max_outputs = 1, .n_input_types = 1,                     \
                       .input_types = {(types)}, .infer = matmul_infer, .prepare = matmul_prepare, \
                       .compute = matmul_compute, .destroy = matmul_destroy,                       \
                       .prepack = matmul_prepack,                                                  \
    }

static const qkv_kernel kernels[] = {
    MATMUL_KERNEL(1, 8, QKV_TYPES_FLOATS | QKV_T(FLOAT16)),
    MATMUL_KERNEL(9, 12, MATMUL_INTS | QKV_T(FLOAT16)),
    MATMUL_KERNEL(13, 0, MATMUL_INTS | QKV_T(FLOAT16) | QKV_T(BFLOAT16)),
};

/* The MatMul descriptors (one per opset range); *count set to their number. */
const qkv_kernel *qkv_ops_matmul(size_t *count)
{
    *count = sizeof kernels / sizeof kernels[0];
    return kernels;
}
