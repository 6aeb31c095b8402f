/*
 * fused_matmul.c - qkv.FusedMatMul (domain "qkv", opset 1), the op the
 * matmul fusion pass (runtime/passes/fuse_matmul.c) creates:
 *
 *   Y = activation(A @ B + bias) + residual
 *
 *   A         float32 (..., M, K), rank >= 1 (1-D: (K), Y loses that dim)
 *   B         float32 (K, N)
 *   bias      float32 (N), optional
 *   residual  float32, Y's shape, optional
 *   activation  "" (none, default), "relu", "gelu" (exact), "gelu_tanh"
 *
 * The GEMM is one call with every leading dim of A folded into M: with a
 * constant B packed once in prepack (gemm_prepack.h, as MatMul does; the
 * original weight is then released), else qkv_blas_gemm_run (the session's
 * GEMM service). The epilogue (bias, activation and residual in one pass,
 * vecmath.h's vectorised kernels) runs in place: with the packed B, inside
 * the GEMM on each block of Y as it completes, while the block is in cache
 * (sgemm's post step); else once over Y's rows after the GEMM, split over
 * the run's threads.
 * Y never shares the residual's buffer (no in-place flag): the GEMM writes Y
 * before the epilogue reads the residual.
 *
 * Errors: an unknown activation is QKV_ERR_INVALID_MODEL at session
 * creation; shapes that do not fit (K, N, bias or residual) are
 * QKV_ERR_SHAPE naming the input and the dims.
 */
#include <stdlib.h>
#include <string.h>

#include "blas.h"
#include "gemm_prepack.h"
#include "kernel_util.h"
#include "vecmath.h"

typedef struct fmm_state {
    qkv_act act;
    qkv_sgemm_packed_b b; /* B packed by prepack; b.data NULL: B read as it comes */
} fmm_state;

/* The activation attribute's values, indexed by qkv_act. */
static const char *const act_names[] = {"", "relu", "gelu", "gelu_tanh"};

static qkv_status fmm_init(const qkv_kernel *kernel, const qkv_host_api *host,
                           const qkv_node_ctx *node, void **state)
{
    (void)kernel;
    const char *name;
    qkv_status st = host->attr_string(node, "activation", "", &name);
    if (st != QKV_OK)
        return st;
    int act = -1;
    for (int k = 0; k < (int)(sizeof act_names / sizeof act_names[0]); k++)
        if (strcmp(name, act_names[k]) == 0)
            act = k;
    if (act < 0)
        return NERR(host, node, QKV_ERR_INVALID_MODEL,
                    "attribute activation='%s' is not '', 'relu', 'gelu' or 'gelu_tanh'", name);
    fmm_state *s = calloc(1, sizeof *s);
    if (!s)
        return NERR(host, node, QKV_ERR_OUT_OF_MEMORY, "kernel state");
    s->act = (qkv_act)act;
    *state = s;
    return QKV_OK;
}

static qkv_status fmm_prepack(void **state, const qkv_host_api *host, const qkv_node_ctx *node)
{
    fmm_state *s = *state; /* init made it */
    return qkv_gemm_prepack_b(host, node, 1, false, &s->b);
}

static void fmm_destroy(void *state)
{
    fmm_state *s = state;
    if (s)
        qkv_gemm_packed_free(&s->b);
    free(s);
}

static qkv_status fmm_infer(void *state, qkv_kernel_io *io)
{
    (void)state;
    const qkv_tensor *a = &io->inputs[0], *b = &io->inputs[1];
    qkv_tensor *y = &io->outputs[0];
    char da[96], db[96];
    if (a->rank == 0)
        return KERR(io, QKV_ERR_SHAPE, "input 0 'A' is a scalar; expected rank >= 1");
    if (b->rank != 2)
        return KERR(io, QKV_ERR_SHAPE, "input 1 'B' has shape %s; expected rank 2 (K, N)",
                    qkv_dims_str(b, db, sizeof db));
    if (a->rank < 0) {
        y->dtype = QKV_DTYPE_FLOAT;
        y->rank = -1;
        return QKV_OK;
    }
    int64_t k = a->dims[a->rank - 1];
    if (k >= 0 && b->dims[0] >= 0 && k != b->dims[0])
        return KERR(io, QKV_ERR_SHAPE, "A %s and B %s: K differs (%lld vs %lld)",
                    qkv_dims_str(a, da, sizeof da), qkv_dims_str(b, db, sizeof db), (long long)k,
                    (long long)b->dims[0]);
    int64_t dims[QKV_MAX_RANK];
    for (int32_t j = 0; j + 1 < a->rank; j++)
        dims[j] = a->dims[j];
    dims[a->rank - 1] = b->dims[1];
    qkv_set_shape(y, QKV_DTYPE_FLOAT, a->rank, dims);
    if (qkv_present(io, 2)) {
        const qkv_tensor *bias = &io->inputs[2];
        if (bias->rank >= 0 && (bias->rank != 1 || (bias->dims[0] >= 0 && b->dims[1] >= 0 &&
                                                    bias->dims[0] != b->dims[1])))
            return KERR(io, QKV_ERR_SHAPE, "input 2 'bias' has shape %s; expected (N) = (%lld)",
                        qkv_dims_str(bias, da, sizeof da), (long long)b->dims[1]);
    }
    if (qkv_present(io, 3)) {
        const qkv_tensor *r = &io->inputs[3];
        bool ok = r->rank < 0 || r->rank == y->rank;
        for (int32_t j = 0; ok && r->rank >= 0 && j < r->rank; j++)
            ok = r->dims[j] < 0 || y->dims[j] < 0 || r->dims[j] == y->dims[j];
        if (!ok)
            return KERR(io, QKV_ERR_SHAPE, "input 3 'residual' has shape %s; expected Y's %s",
                        qkv_dims_str(r, da, sizeof da), qkv_dims_str(y, db, sizeof db));
    }
    return QKV_OK;
}

/* The GEMM Y = A @ B: every leading dim of A folded into M. */
static void fmm_plan(const qkv_kernel_io *io, qkv_blas_gemm *g)
{
    const qkv_tensor *a = &io->inputs[0], *b = &io->inputs[1];
    memset(g, 0, sizeof *g);
    g->dtype = QKV_DTYPE_FLOAT;
    g->k = (size_t)a->dims[a->rank - 1];
    g->n = (size_t)b->dims[1];
    g->m = g->k ? qkv_numel(a) / g->k : 1;
    if (g->k == 0) /* A holds nothing; M is still the product of its leading dims */
        for (int32_t j = 0; j + 1 < a->rank; j++)
            g->m *= (size_t)a->dims[j];
    g->alpha = 1;
    g->beta = 0;
    g->a = a->data;
    g->b = b->data;
    g->c = io->outputs[0].data;
    g->lda = g->k;
    g->ldb = g->n;
    g->ldc = g->n;
}

static qkv_status fmm_prepare(void *state, qkv_kernel_io *io)
{
    const fmm_state *s = state;
    qkv_blas_gemm g;
    fmm_plan(io, &g);
    if (s->b.data && (s->b.k != g.k || s->b.n != g.n))
        return KERR(io, QKV_ERR_INTERNAL,
                    "input 1 'B' was packed as (%zu, %zu) but the plan multiplies by (%zu, %zu)",
                    s->b.k, s->b.n, g.k, g.n);
    if (!qkv_blas_gemm_fits(&g))
        return KERR(io, QKV_ERR_UNSUPPORTED,
                    "matrices too large: m=%zu n=%zu k=%zu, at most %zu each", g.m, g.n, g.k,
                    QKV_BLAS_MAX_DIM);
    return QKV_OK;
}

typedef struct epi_job {
    float *y;          /* (rows, n) */
    const float *bias; /* (n) or NULL */
    const float *res;  /* (rows, n) or NULL */
    size_t n;
    qkv_act act;
} epi_job;

static void epi_range(void *arg, size_t begin, size_t end)
{
    const epi_job *j = arg;
    for (size_t i = begin; i < end; i++)
        qkv_vm_epilogue_f32(j->y + i * j->n, j->bias, j->res ? j->res + i * j->n : NULL, j->n,
                            j->act);
}

/* sgemm post step: the epilogue on a block of Y the GEMM just finished, still
 * in the computing thread's cache (A's dims are folded into M: batch 0). */
static void epi_block(const void *arg, size_t batch, float *c, size_t ldc, size_t row0, size_t col0,
                      size_t rows, size_t cols)
{
    const epi_job *j = arg;
    (void)batch;
    for (size_t i = 0; i < rows; i++)
        qkv_vm_epilogue_f32(c + i * ldc, j->bias ? j->bias + col0 : NULL,
                            j->res ? j->res + (row0 + i) * j->n + col0 : NULL, cols, j->act);
}

static qkv_status fmm_compute(const void *state, qkv_kernel_io *io)
{
    const fmm_state *s = state;
    qkv_blas_gemm g;
    fmm_plan(io, &g);
    epi_job j = {.y = io->outputs[0].data,
                 .bias = qkv_present(io, 2) ? io->inputs[2].data : NULL,
                 .res = qkv_present(io, 3) ? io->inputs[3].data : NULL,
                 .n = g.n,
                 .act = s->act};
    bool has_epilogue = j.bias || j.res || j.act != QKV_ACT_NONE;
    if (s->b.data) { /* qkv's own GEMM: the epilogue runs on each block as it completes */
        qkv_sgemm_post post = {.fn = epi_block, .arg = &j};
        qkv_gemm_run_packed_post(io, &g, &s->b, has_epilogue ? &post : NULL);
        return QKV_OK;
    }
    qkv_status st = qkv_blas_gemm_run(io, &g);
    if (st != QKV_OK || !has_epilogue)
        return st;
    /* the epilogue reads and writes Y once (and reads the residual): a
     * memory pass, worth threads only when large */
    qkv_run_range(io, g.m, g.m * g.n * sizeof(float) * (j.res ? 2 : 1), epi_range, &j);
    return QKV_OK;
}

static const qkv_kernel kernels[] = {
    {
        QKV_KERNEL_V1,
        .domain = "qkv",
        .op_type = "FusedMatMul",
        .since_version = 1,
        .min_inputs = 2,
        .max_inputs = 4,
        .min_outputs = 1,
        .max_outputs = 1,
        .n_input_types = 1,
        .input_types = {QKV_T(FLOAT)},
        .init = fmm_init,
        .infer = fmm_infer,
        .prepare = fmm_prepare,
        .compute = fmm_compute,
        .destroy = fmm_destroy,
        .prepack = fmm_prepack,
    },
};

/* The qkv.FusedMatMul descriptor; *count set to 1. */
const qkv_kernel *qkv_ops_fused_matmul(size_t *count)
{
    *count = sizeof kernels / sizeof kernels[0];
    return kernels;
}
