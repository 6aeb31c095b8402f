/*
 * onednn_kernels.c - the backend's kernels: MatMul (opsets 1-13), Gemm
 * (opsets 1-13, opset 7 broadcasting for all) and qkv.FusedMatMul (qkv 1),
 * float32 only, each one oneDNN matmul primitive per problem:
 *
 *   MatMul       B rank 2: A's leading dims fold into M, (M, K) x (K, N);
 *                B rank >= 3 with A of the same rank and equal batch dims:
 *                a batched (batch, M, K) x (batch, K, N) primitive. Batch
 *                dims that turn out to broadcast at run time (supports()
 *                declines those it can see) go to host->gemm.
 *   Gemm         alpha as the output scale; transposes as strides; C:
 *                alpha == beta == 1 and C of shape (N) or (1, N): the
 *                primitive's bias; beta == 1 and C of shape (N), (1, N),
 *                (M, N) or a scalar: a binary-add post-op reading C;
 *                otherwise Y = C broadcast first and a sum post-op with
 *                scale beta.
 *   FusedMatMul  Y = act(A @ B + bias) + residual: the primitive's bias,
 *                an eltwise post-op (relu, gelu_erf, gelu_tanh) and a
 *                binary-add post-op for the residual. Not declared in place:
 *                oneDNN's sgemm writes dst before the post-ops read the
 *                residual, so Y may not share the residual's buffer.
 *
 * A rank-2 constant B is packed once (prepack, onednn_pack.c) and the
 * original released. K == 0 is done here (Y = epilogue of zeros).
 * supports() (onednn_backend.c) keeps everything else on other backends.
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "onednn_plugin.h"

typedef enum dn_op { DN_OP_MATMUL, DN_OP_GEMM, DN_OP_FUSED } dn_op;

typedef struct dn_node {
    const qkv_host_api *host; /* destroy frees with it */
    dn_op op;
    bool trans_a, trans_b; /* Gemm */
    dn_prim_config cfg;
    void *packed_raw; /* host->alloc'd bytes behind cfg.packed_mem */
    dn_cache cache;
} dn_node;

/* How a call runs. */
typedef enum dn_path {
    DN_PATH_EMPTY, /* Y has no elements */
    DN_PATH_K0,    /* K == 0: Y is the epilogue of zeros */
    DN_PATH_PRIM,  /* a oneDNN matmul primitive */
    DN_PATH_GEMM   /* MatMul with broadcast batch dims: host->gemm */
} dn_path;

/* ---- init / destroy ------------------------------------------------------------ */

static qkv_status node_alloc(const qkv_kernel *kernel, const qkv_host_api *host,
                             const qkv_node_ctx *node, dn_op op, dn_node **out)
{
    *out = NULL;
    const dn_plugin *p = kernel->user;
    dn_node *s = host->alloc(sizeof *s);
    if (!s)
        return NERR(host, node, QKV_ERR_OUT_OF_MEMORY, "kernel state");
    memset(s, 0, sizeof *s);
    s->host = host;
    s->op = op;
    s->cfg.engine = p->engine;
    s->cfg.alpha = 1.0f;
    s->cfg.beta = 1.0f;
    dn_cache_init(&s->cache);
    *out = s;
    return QKV_OK;
}

static void dn_destroy(void *state)
{
    dn_node *s = state;
    if (!s)
        return;
    dn_cache_fini(&s->cache);
    if (s->cfg.packed_mem)
        dnnl_memory_destroy(s->cfg.packed_mem);
    if (s->packed_raw)
        s->host->free(s->packed_raw);
    s->host->free(s);
}

static qkv_status matmul_init(const qkv_kernel *kernel, const qkv_host_api *host,
                              const qkv_node_ctx *node, void **state)
{
    dn_node *s;
    qkv_status st = node_alloc(kernel, host, node, DN_OP_MATMUL, &s);
    *state = s;
    return st;
}

static qkv_status gemm_init(const qkv_kernel *kernel, const qkv_host_api *host,
                            const qkv_node_ctx *node, void **state)
{
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
    dn_node *s;
    if ((st = node_alloc(kernel, host, node, DN_OP_GEMM, &s)) != QKV_OK)
        return st;
    s->cfg.alpha = alpha;
    s->cfg.beta = beta;
    s->trans_a = ta != 0;
    s->trans_b = tb != 0;
    *state = s;
    return QKV_OK;
}

static qkv_status fused_init(const qkv_kernel *kernel, const qkv_host_api *host,
                             const qkv_node_ctx *node, void **state)
{
    const char *act = "";
    qkv_status st = host->attr_string(node, "activation", "", &act);
    if (st != QKV_OK)
        return st;
    dn_act a;
    if (strcmp(act, "") == 0)
        a = DN_ACT_NONE;
    else if (strcmp(act, "relu") == 0)
        a = DN_ACT_RELU;
    else if (strcmp(act, "gelu") == 0)
        a = DN_ACT_GELU;
    else if (strcmp(act, "gelu_tanh") == 0)
        a = DN_ACT_GELU_TANH;
    else
        return NERR(host, node, QKV_ERR_INVALID_MODEL,
                    "attribute activation='%s' is not '', 'relu', 'gelu' or 'gelu_tanh'", act);
    dn_node *s;
    if ((st = node_alloc(kernel, host, node, DN_OP_FUSED, &s)) != QKV_OK)
        return st;
    s->cfg.act = a;
    *state = s;
    return QKV_OK;
}

/* ---- infer --------------------------------------------------------------------- */

/* The host infers types and shapes at session creation with the kernel of
 * the highest-priority backend, before supports() picks the backend: so
 * infer passes any dtype through (supports() keeps non-float32 nodes off
 * this backend) and checks shapes only, as the op specs require. */

static qkv_status matmul_infer(void *state, qkv_kernel_io *io)
{
    (void)state;
    return dn_matmul_shape(io, &io->inputs[0], &io->inputs[1], &io->outputs[0]);
}

static qkv_status gemm_infer(void *state, qkv_kernel_io *io)
{
    const dn_node *s = state;
    const qkv_tensor *a = &io->inputs[0], *b = &io->inputs[1];
    qkv_tensor *y = &io->outputs[0];
    if (a->rank >= 0 && a->rank != 2)
        return KERR(io, QKV_ERR_SHAPE, "input 0 'A' has rank %d, expected 2", a->rank);
    if (b->rank >= 0 && b->rank != 2)
        return KERR(io, QKV_ERR_SHAPE, "input 1 'B' has rank %d, expected 2", b->rank);
    int64_t m = a->rank == 2 ? a->dims[s->trans_a ? 1 : 0] : -1;
    int64_t ka = a->rank == 2 ? a->dims[s->trans_a ? 0 : 1] : -1;
    int64_t kb = b->rank == 2 ? b->dims[s->trans_b ? 1 : 0] : -1;
    int64_t n = b->rank == 2 ? b->dims[s->trans_b ? 0 : 1] : -1;
    if (ka >= 0 && kb >= 0 && ka != kb)
        return KERR(io, QKV_ERR_SHAPE, "op(A) has %lld columns but op(B) has %lld rows",
                    (long long)ka, (long long)kb);
    if (dn_present(io, 2)) {
        const qkv_tensor *c = &io->inputs[2];
        if (c->rank > 2)
            return KERR(io, QKV_ERR_SHAPE, "input 2 'C' has rank %d, expected <= 2", c->rank);
        int64_t cn = c->rank >= 1 ? c->dims[c->rank - 1] : 1, cm = c->rank == 2 ? c->dims[0] : 1;
        if ((cn >= 0 && n >= 0 && cn != 1 && cn != n) || (cm >= 0 && m >= 0 && cm != 1 && cm != m))
            return KERR(io, QKV_ERR_SHAPE,
                        "input 2 'C' (%lld, %lld) does not broadcast to the output (%lld, %lld)",
                        (long long)cm, (long long)cn, (long long)m, (long long)n);
    }
    y->dtype = a->dtype;
    y->rank = 2;
    y->dims[0] = m;
    y->dims[1] = n;
    return QKV_OK;
}

static qkv_status fused_infer(void *state, qkv_kernel_io *io)
{
    (void)state;
    qkv_status st;
    const qkv_tensor *b = &io->inputs[1];
    if (b->rank >= 0 && b->rank != 2)
        return KERR(io, QKV_ERR_SHAPE, "input 1 'B' has rank %d, expected 2", b->rank);
    qkv_tensor *y = &io->outputs[0];
    if ((st = dn_matmul_shape(io, &io->inputs[0], b, y)) != QKV_OK)
        return st;
    int64_t n = b->rank == 2 ? b->dims[1] : -1;
    if (dn_present(io, 2)) {
        const qkv_tensor *bias = &io->inputs[2];
        bool ok = bias->rank != 0;
        for (int32_t i = 0; i + 1 < bias->rank; i++)
            ok = ok && bias->dims[i] == 1;
        if (ok && bias->rank > 0 && n >= 0 && bias->dims[bias->rank - 1] >= 0)
            ok = bias->dims[bias->rank - 1] == n;
        if (!ok)
            return KERR(io, QKV_ERR_SHAPE, "input 2 'bias' must have shape (N) with N = %lld",
                        (long long)n);
    }
    if (dn_present(io, 3) && y->rank >= 0) {
        const qkv_tensor *r = &io->inputs[3];
        bool ok = r->rank < 0 || r->rank == y->rank;
        for (int32_t i = 0; ok && r->rank >= 0 && i < r->rank; i++)
            ok = r->dims[i] < 0 || y->dims[i] < 0 || r->dims[i] == y->dims[i];
        if (!ok) {
            char rs[128], ys[128];
            return KERR(io, QKV_ERR_SHAPE, "input 3 'residual' %s must have the output's shape %s",
                        dn_shape_str(r, rs, sizeof rs), dn_shape_str(y, ys, sizeof ys));
        }
    }
    return QKV_OK;
}

/* ---- planning a call ------------------------------------------------------------ */

/* Fills key and call for the io's concrete shapes; *path says how it runs. */
static void plan_call(const dn_node *s, const qkv_kernel_io *io, dn_key *key, dn_call *call,
                      dn_path *path)
{
    const qkv_tensor *a = &io->inputs[0], *b = &io->inputs[1], *y = &io->outputs[0];
    memset(key, 0, sizeof *key);
    memset(call, 0, sizeof *call);
    key->threads = (int32_t)io->host->thread_count(io->host_ctx);
    key->packed = s->cfg.have_packed;
    call->ptr[DN_SRC] = a->data;
    call->ptr[DN_WEIGHTS] = b->data;
    call->ptr[DN_DST] = y->data;
    *path = DN_PATH_PRIM;
    if (dn_numel(y) == 0) {
        *path = DN_PATH_EMPTY;
        return;
    }
    int32_t ra = a->rank, rb = b->rank;
    if (s->op == DN_OP_GEMM) {
        key->m = a->dims[s->trans_a ? 1 : 0];
        key->k = a->dims[s->trans_a ? 0 : 1];
        key->n = b->dims[s->trans_b ? 0 : 1];
        key->trans_a = s->trans_a;
        key->trans_b = key->packed ? 0 : s->trans_b;
    } else {
        key->k = a->dims[ra - 1];
        key->n = b->dims[rb - 1];
        if (rb == 2) {
            key->m = 1; /* A's leading dims fold into M */
            for (int32_t i = 0; i + 1 < ra; i++)
                key->m *= a->dims[i];
        } else {
            bool same = ra == rb;
            int64_t batch = 1;
            for (int32_t i = 0; same && i < ra - 2; i++) {
                same = a->dims[i] == b->dims[i];
                batch *= a->dims[i];
            }
            if (!same) {
                *path = DN_PATH_GEMM;
                return;
            }
            key->batch = batch;
            key->m = a->dims[ra - 2];
        }
    }
    if (key->k == 0) {
        *path = DN_PATH_K0;
        return;
    }
    if (s->op == DN_OP_FUSED) {
        if (dn_present(io, 2)) {
            key->bias = 1;
            call->ptr[DN_BIAS] = io->inputs[2].data;
        }
        if (dn_present(io, 3)) {
            key->post = 1;
            key->post_m = key->m;
            key->post_n = key->n;
            call->ptr[DN_POST] = io->inputs[3].data;
        }
    } else if (s->op == DN_OP_GEMM && dn_present(io, 2) && s->cfg.beta != 0.0f) {
        const qkv_tensor *c = &io->inputs[2];
        int64_t cn = c->rank >= 1 ? c->dims[c->rank - 1] : 1, cm = c->rank == 2 ? c->dims[0] : 1;
        if (s->cfg.alpha == 1.0f && s->cfg.beta == 1.0f && cm == 1 && cn == key->n && cn > 1) {
            key->bias = 1; /* a row added to every row: the primitive's bias */
            call->ptr[DN_BIAS] = c->data;
        } else if (s->cfg.beta == 1.0f && (cn == key->n || (cn == 1 && cm == 1))) {
            key->post = 1;
            key->post_m = cm;
            key->post_n = cn;
            call->ptr[DN_POST] = c->data;
        } else {
            key->sum = 1; /* compute fills Y with C first */
        }
    }
}

/* ---- the epilogue for K == 0 and Gemm's C fill ------------------------------------ */

static float act_ref(dn_act a, float x)
{
    switch (a) {
    case DN_ACT_RELU:
        return x > 0 ? x : 0;
    case DN_ACT_GELU:
        return 0.5f * x * (1.0f + erff(x * 0.70710678118654752f));
    case DN_ACT_GELU_TANH:
        return 0.5f * x * (1.0f + tanhf(0.79788456080286536f * (x + 0.044715f * x * x * x)));
    default:
        return x;
    }
}

/* Y (m, n) = C broadcast (Gemm, before the sum post-op or for K == 0). */
static void fill_from_c(const qkv_tensor *c, float *y, int64_t m, int64_t n, float scale)
{
    const float *cd = c->data;
    int64_t cn = c->rank >= 1 ? c->dims[c->rank - 1] : 1, cm = c->rank == 2 ? c->dims[0] : 1;
    for (int64_t i = 0; i < m; i++)
        for (int64_t j = 0; j < n; j++)
            y[i * n + j] = scale * cd[(cm == 1 ? 0 : i) * cn + (cn == 1 ? 0 : j)];
}

/* K == 0: the product is zeros. */
static void run_k0(const dn_node *s, qkv_kernel_io *io, const dn_key *key)
{
    float *y = io->outputs[0].data;
    size_t total = dn_numel(&io->outputs[0]);
    if (s->op == DN_OP_GEMM) {
        if (dn_present(io, 2) && s->cfg.beta != 0.0f)
            fill_from_c(&io->inputs[2], y, key->m, key->n, s->cfg.beta);
        else
            memset(y, 0, total * sizeof *y);
        return;
    }
    const float *bias = dn_present(io, 2) ? io->inputs[2].data : NULL;
    const float *res = dn_present(io, 3) ? io->inputs[3].data : NULL;
    size_t n = (size_t)key->n;
    for (size_t i = 0; i < total; i++) {
        float v = s->op == DN_OP_FUSED ? act_ref(s->cfg.act, bias ? bias[i % n] : 0.0f) : 0.0f;
        y[i] = res ? v + res[i] : v;
    }
}

/* MatMul whose batch dims broadcast: a strided batch through host->gemm. */
static qkv_status run_gemm(qkv_kernel_io *io)
{
    const qkv_tensor *a = &io->inputs[0], *b = &io->inputs[1], *y = &io->outputs[0];
    qkv_gemm g;
    memset(&g, 0, sizeof g);
    g.struct_size = sizeof g;
    g.abi_version = QKV_ABI_VERSION;
    g.dtype = QKV_DTYPE_FLOAT;
    int32_t ra = a->rank, rb = b->rank;
    g.m = (size_t)a->dims[ra - 2];
    g.k = (size_t)a->dims[ra - 1];
    g.n = (size_t)b->dims[rb - 1];
    g.alpha = 1;
    g.a = a->data;
    g.b = b->data;
    g.c = y->data;
    g.lda = g.k ? g.k : 1;
    g.ldb = g.n;
    g.ldc = g.n;
    int32_t nba = ra - 2, nbb = rb - 2, nb = y->rank - 2;
    size_t sa = g.m * g.k, sb = g.k * g.n, sc = g.m * g.n;
    g.batch_rank = nb;
    for (int32_t j = nb - 1; j >= 0; j--) {
        int32_t ja = j - (nb - nba), jb = j - (nb - nbb);
        size_t da = ja >= 0 ? (size_t)a->dims[ja] : 1, db = jb >= 0 ? (size_t)b->dims[jb] : 1;
        g.batch_dims[j] = (size_t)y->dims[j];
        g.a_strides[j] = da == 1 ? 0 : sa;
        g.b_strides[j] = db == 1 ? 0 : sb;
        g.c_strides[j] = sc;
        sa *= da;
        sb *= db;
        sc *= g.batch_dims[j];
    }
    return io->host->gemm(io->host_ctx, &g);
}

/* ---- prepare / compute ------------------------------------------------------------ */

static qkv_status dn_prepare(void *state, qkv_kernel_io *io)
{
    dn_node *s = state;
    dn_key key;
    dn_call call;
    dn_path path;
    io->scratch_bytes = 0;
    plan_call(s, io, &key, &call, &path);
    if (path != DN_PATH_PRIM)
        return QKV_OK;
    size_t bytes = 0;
    qkv_status st = dn_prim_scratch(&s->cfg, &s->cache, &key, io, &bytes);
    io->scratch_bytes = bytes;
    return st;
}

static qkv_status dn_compute(const void *state, qkv_kernel_io *io)
{
    /* the cache is the one mutable part of the state, behind its mutex */
    dn_node *s = (dn_node *)state;
    dn_key key;
    dn_call call;
    dn_path path;
    plan_call(s, io, &key, &call, &path);
    switch (path) {
    case DN_PATH_EMPTY:
        return QKV_OK;
    case DN_PATH_K0:
        run_k0(s, io, &key);
        return QKV_OK;
    case DN_PATH_GEMM:
        return run_gemm(io);
    case DN_PATH_PRIM:
        break;
    }
    if (!key.packed && !call.ptr[DN_WEIGHTS])
        return KERR(io, QKV_ERR_INTERNAL, "input 1 'B' has no data and was not packed");
    if (key.sum)
        fill_from_c(&io->inputs[2], io->outputs[0].data, key.m, key.n, 1.0f);
    return dn_prim_run(&s->cfg, &s->cache, &key, &call, io);
}

/* ---- prepack ---------------------------------------------------------------------- */

/* M to choose the packed layout for: the static M when every dim is known. */
static int64_t m_hint(const qkv_host_api *host, const qkv_node_ctx *node, bool gemm, bool trans_a)
{
    int64_t dims[QKV_MAX_RANK];
    int32_t r = host->node_input_shape(node, 0, dims, QKV_MAX_RANK);
    if (r < 1 || r > QKV_MAX_RANK)
        return 128;
    int64_t m = 1;
    if (gemm) {
        m = r == 2 ? dims[trans_a ? 1 : 0] : -1;
    } else {
        for (int32_t i = 0; i + 1 < r && m > 0; i++)
            m = dims[i] < 0 ? -1 : m * dims[i];
    }
    return m > 0 && m <= ((int64_t)1 << 24) ? m : 128;
}

static qkv_status dn_prepack(void **state, const qkv_host_api *host, const qkv_node_ctx *node)
{
    dn_node *s = *state;
    const qkv_tensor *b = host->node_input_const(node, 1);
    if (!s || !b || !b->data || b->dtype != QKV_DTYPE_FLOAT || b->rank != 2 || b->dims[0] <= 0 ||
        b->dims[1] <= 0)
        return QKV_OK; /* B varies (or is empty): the plain path */
    bool tb = s->op == DN_OP_GEMM && s->trans_b;
    dn_key proto;
    memset(&proto, 0, sizeof proto);
    proto.k = b->dims[tb ? 1 : 0];
    proto.n = b->dims[tb ? 0 : 1];
    proto.trans_a = s->op == DN_OP_GEMM && s->trans_a;
    proto.bias = s->op == DN_OP_FUSED && host->node_input_present(node, 2);
    size_t bytes = 0;
    bool blocked = false;
    qkv_status st = dn_pack_weights(&s->cfg, host, node, b, tb,
                                    m_hint(host, node, s->op == DN_OP_GEMM, proto.trans_a), &proto,
                                    &s->packed_raw, &bytes, &blocked);
    if (st != QKV_OK)
        return st;
    host->log(QKV_LOG_DEBUG, "onednn: node '%s': input 1 'B' (%lld, %lld) packed %s, %zu bytes",
              host->node_name(node), (long long)proto.k, (long long)proto.n,
              blocked ? "blocked" : "plain", bytes);
    return host->node_input_packed(node, 1, bytes);
}

/* ---- descriptors ------------------------------------------------------------------ */

#define DN_KERNEL_COMMON                                                                           \
    .struct_size = sizeof(qkv_kernel), .abi_version = QKV_ABI_VERSION, .min_outputs = 1,           \
    .max_outputs = 1, .prepare = dn_prepare, .compute = dn_compute, .destroy = dn_destroy,         \
    .prepack = dn_prepack

static const qkv_kernel matmul_kernel = {
    DN_KERNEL_COMMON, .domain = "",        .op_type = "MatMul",   .min_inputs = 2,
    .max_inputs = 2,  .init = matmul_init, .infer = matmul_infer,
};

static const qkv_kernel gemm_kernel = {
    DN_KERNEL_COMMON, .domain = "",      .op_type = "Gemm",   .min_inputs = 2,
    .max_inputs = 3,  .init = gemm_init, .infer = gemm_infer,
};

static const qkv_kernel fused_matmul_kernel = {
    DN_KERNEL_COMMON, .domain = "qkv",    .op_type = "FusedMatMul", .min_inputs = 2,
    .max_inputs = 4,  .init = fused_init, .infer = fused_infer,
};

size_t dn_kernels(qkv_kernel *out, const dn_plugin *plugin)
{
    /* one descriptor per opset the op's spec changed at, so messages name
     * the version as the built-in kernels do ("Gemm-13") */
    static const struct {
        const qkv_kernel *k;
        int32_t since, until;
    } list[DN_N_KERNELS] = {
        {&matmul_kernel, 1, 8}, {&matmul_kernel, 9, 12}, {&matmul_kernel, 13, 0},
        {&gemm_kernel, 1, 6},   {&gemm_kernel, 7, 8},    {&gemm_kernel, 9, 10},
        {&gemm_kernel, 11, 12}, {&gemm_kernel, 13, 0},   {&fused_matmul_kernel, 1, 0},
    };
    for (size_t i = 0; i < DN_N_KERNELS; i++) {
        out[i] = *list[i].k;
        out[i].since_version = list[i].since;
        out[i].until_version = list[i].until;
        out[i].user = (void *)plugin; /* init reaches the engine through it */
    }
    return DN_N_KERNELS;
}
