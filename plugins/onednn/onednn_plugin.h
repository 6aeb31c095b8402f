/*
 * onednn_plugin.h - what the files of the oneDNN backend plugin
 * (libqkv_onednn.so) share. Nothing here is seen outside the plugin.
 *
 * Files:
 *   onednn_backend.c  entry point: ABI and oneDNN runtime checks, the engine,
 *                     supports(), the backend and plugin descriptors
 *   onednn_kernels.c  the MatMul, Gemm and qkv.FusedMatMul descriptors:
 *                     init (attributes), infer, prepack, prepare, compute
 *   onednn_shape.c    output shapes and their checks (numpy matmul, Gemm)
 *   onednn_prim.c     matmul primitives: building one for a problem, the
 *                     per-node cache, executing
 *   onednn_pack.c     prepacking constant weights into the primitive's layout
 *   onednn_gemm.c     the GEMM provider (dnnl_sgemm)
 *   onednn_threads.c  the OpenMP thread count of the calling thread
 */
#ifndef QKV_ONEDNN_PLUGIN_H
#define QKV_ONEDNN_PLUGIN_H

#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <oneapi/dnnl/dnnl.h>

#include "qkv_plugin.h"

#define KERR(io, status, ...) ((io)->host->error((io)->host_ctx, (status), __VA_ARGS__))
#define NERR(host, node, status, ...) ((host)->node_error((node), (status), __VA_ARGS__))

/* ---- threads (onednn_threads.c) ------------------------------------------ */

/* The OpenMP thread count of the calling thread, saved by dn_threads_enter
 * and put back by dn_threads_leave. */
typedef struct dn_threads {
    int saved;
    int set;
} dn_threads;

/* Makes oneDNN calls on this thread use `threads` threads (OpenMP's
 * nthreads-var of the calling thread only: other threads, and other
 * sessions, keep theirs) until dn_threads_leave restores the old value. */
void dn_threads_enter(dn_threads *t, size_t threads);
void dn_threads_leave(const dn_threads *t);

/* ---- the plugin ------------------------------------------------------------ */

/* One per load of the library: what every kernel state shares. */
typedef struct dn_plugin {
    dnnl_engine_t engine;  /* the CPU engine (thread-safe, read-only) */
    char description[160]; /* the backend's describe() */
} dn_plugin;

/* The backend's name and priority (openblas is 100, cpu 0). */
#define DN_BACKEND_NAME "onednn"
#define DN_PRIORITY 200

/* The kernels' descriptors (onednn_kernels.c): MatMul at opsets 1, 9, 13,
 * Gemm at 1, 7, 9, 11, 13, qkv.FusedMatMul 1; written into out (room for
 * DN_N_KERNELS), each with user = plugin. Returns the count. */
#define DN_N_KERNELS 9
size_t dn_kernels(qkv_kernel *out, const dn_plugin *plugin);

/* The GEMM provider (onednn_gemm.c): float32 strided batches through
 * dnnl_sgemm; QKV_ERR_UNSUPPORTED for double, k == 0 and dims beyond int32,
 * which the host's next provider then runs. */
qkv_status dn_gemm_provider(void *user, const qkv_host_api *host, void *host_ctx,
                            const qkv_gemm *g);

/* Which fused activation (qkv.FusedMatMul "activation"). */
typedef enum dn_act { DN_ACT_NONE = 0, DN_ACT_RELU, DN_ACT_GELU, DN_ACT_GELU_TANH } dn_act;

/* ---- one matmul problem and its primitive (onednn_prim.c) --------------- */

/*
 * Everything a matmul primitive depends on that varies between calls of one
 * node: the cache key. Zero-initialised before filling, so memcmp compares.
 *   src (batch, m, k), or (m, k) when batch == 0; trans_a: A stored (k, m)
 *   weights (batch, k, n) / (k, n); trans_b: stored (n, k); packed: the
 *     node's prepacked layout (2-D only)
 *   dst (batch, m, n) / (m, n)
 *   bias: a (1, n) bias input; post: a binary-add source of dims
 *     (post_m, post_n) in {1, m} x {1, n} (Gemm's C, FusedMatMul's residual);
 *   sum: dst holds beta * C on entry (Gemm's general C: a sum post-op)
 *   panel: the weights are columns of the packed weights (a column block
 *     of a split call: dn_panel_md); ld_dst, ld_post: the row strides of
 *     dst and of an (m, n) post source when they are wider than n (0: n)
 */
typedef struct dn_key {
    int64_t batch, m, k, n;
    int64_t post_m, post_n;
    int64_t ld_dst, ld_post;
    int32_t trans_a, trans_b;
    int32_t packed, bias, post, sum;
    int32_t threads, panel;
} dn_key;

/* The memory arguments a matmul call may have, in this order. */
enum { DN_SRC, DN_WEIGHTS, DN_BIAS, DN_POST, DN_DST, DN_SCRATCH, DN_N_ARGS };

/* What a node's primitives share: attributes fixed at init, the packed
 * weights. Read-only after prepack. */
typedef struct dn_prim_config {
    dnnl_engine_t engine;
    float alpha; /* output scale (Gemm), 1 otherwise */
    float beta;  /* the sum post-op's scale (Gemm's general C) */
    dn_act act;
    /* prepacked weights: their descriptor, and one memory object over them
     * that every call shares (its handle never changes) */
    bool have_packed;
    dnnl_memory_desc_t packed_md;
    dnnl_memory_t packed_mem;
    void *packed_data; /* the bytes packed_mem is over */
    /* column panels of the packed weights start at multiples of this many
     * columns (dn_panel_md); 0: calls are not split by columns (blocked
     * weights, fewer than DN_PANEL_MIN_K rows or 2 panels' columns, or no
     * optimised kernel for the panels) */
    int64_t panel_step;
} dn_prim_config;

typedef struct dn_entry dn_entry;
typedef struct dn_slot dn_slot;

/*
 * The primitives of one node, by key: at most DN_CACHE_MAX of them, the
 * least recently used unpinned one evicted for a new key. Lookup and insert
 * under `lock`; building a primitive happens outside it. An entry in use
 * (pinned) is never evicted; when every entry is pinned, a call builds a
 * private primitive and destroys it after.
 */
#define DN_CACHE_MAX 16
typedef struct dn_cache {
    pthread_mutex_t lock;
    dn_entry *entries[DN_CACHE_MAX];
    size_t n;
    uint64_t clock;
    size_t built; /* primitives built so far (for debugging) */
} dn_cache;

void dn_cache_init(dn_cache *c);
/* Destroys every entry (none may be in use). */
void dn_cache_fini(dn_cache *c);

/* The pointers of one call, by DN_* argument (NULL where absent). */
typedef struct dn_call {
    void *ptr[DN_N_ARGS];
} dn_call;

/*
 * The scratchpad bytes dn_prim_run needs for `key` (every row block's, when
 * it splits), building (and caching) the primitives: prepare declares them
 * as the node's scratch. On failure an error through io and *bytes 0.
 */
qkv_status dn_prim_scratch(const dn_prim_config *cfg, dn_cache *cache, const dn_key *key,
                           qkv_kernel_io *io, size_t *bytes);

/*
 * Runs the matmul `key` on the pointers of `call` with key->threads threads:
 * a 2-D problem with packed weights as one single-threaded primitive per
 * column panel, or one with enough rows as one per row block, over
 * host->parallel_for; anything else as one primitive on an OpenMP team of
 * the calling thread (its OpenMP count set and restored around it).
 * Primitives and memory objects come from the cache (built on a miss: the
 * plugin's only allocations). Errors through io:
 * QKV_ERR_UNSUPPORTED when oneDNN has no implementation for the problem,
 * QKV_ERR_OUT_OF_MEMORY, QKV_ERR_INTERNAL for another oneDNN failure.
 */
qkv_status dn_prim_run(const dn_prim_config *cfg, dn_cache *cache, const dn_key *key,
                       const dn_call *call, qkv_kernel_io *io);

/*
 * Builds the primitive descriptor of `key` (weights `weights_any`: format
 * any instead of the key's layout) with the calling thread's OpenMP count.
 * Returns the dnnl status; *pd NULL on failure.
 */
dnnl_status_t dn_prim_desc(const dn_prim_config *cfg, const dn_key *key, bool weights_any,
                           dnnl_primitive_desc_t *pd);

/* A plain f32 md of rank 2, or 3 when batch > 0 (batch, rows, cols), for a
 * (rows, cols) matrix stored transposed (cols, rows) when trans. */
dnnl_status_t dn_matrix_md(dnnl_memory_desc_t *md, int64_t batch, int64_t rows, int64_t cols,
                           bool trans);

/* The name of a dnnl status, for messages. */
const char *dn_status_name(dnnl_status_t s);

/* ---- prepacked weights (onednn_pack.c) ------------------------------------ */

/*
 * Packs the constant (K, N) weights `b` (stored (N, K) when trans_b) plain
 * row-major (K, N) with a padded row stride when the representative M
 * (m_hint) is 16 or more and K 256 or more; else into the layout the matmul primitive
 * picks (weights format any), after checking that the same layout is picked
 * for every M in a probe set (plain when it is not). Sets cfg->panel_step
 * when the plain weights may be cut into column panels (see onednn_pack.c).
 * Fills cfg's packed fields;
 * *packed (from host->alloc, 64-byte aligned inside) and *raw (to free) own
 * the bytes, *bytes their count. Errors through host->node_error.
 */
qkv_status dn_pack_weights(dn_prim_config *cfg, const qkv_host_api *host, const qkv_node_ctx *node,
                           const qkv_tensor *b, bool trans_b, int64_t m_hint, const dn_key *proto,
                           void **raw, size_t *bytes, bool *blocked);

/*
 * The descriptor of columns [n0, n0 + nb) of the packed weights, as a (K, nb)
 * matrix, and its byte offset in cfg->packed_data (either may be NULL).
 * false when the layout cannot be cut there: n0 not a multiple of
 * cfg->panel_step (always false when that is 0).
 */
bool dn_panel_md(const dn_prim_config *cfg, int64_t n0, int64_t nb, dnnl_memory_desc_t *md,
                 size_t *offset);

/* Weights are cut into column panels only from this K on: below it the JIT
 * sgemm's fixed cost per call with a bias or post-ops and a strided
 * destination outweighs the saving (Conformer's M 256, K 144 products on 2
 * threads: panels 0.49 ms, row blocks 0.38 ms; the encoder's K 768 and 3072
 * ones: 4.70 against 5.24 ms). */
#define DN_PANEL_MIN_K 256

/* The width of every column panel but the last when n columns are cut into
 * at most `blocks` panels starting at multiples of step; there are
 * ceil(n / width) of them. */
static inline int64_t dn_panel_width(int64_t n, int64_t blocks, int64_t step)
{
    int64_t w = (n + blocks - 1) / blocks;
    return (w + step - 1) / step * step;
}

/* ---- shapes (onednn_shape.c) ------------------------------------------------ */

/* Y's shape for MatMul/FusedMatMul a @ b (numpy rules; -1 dims stay
 * unknown). QKV_ERR_SHAPE with a message for mismatched K, ranks < 1 or
 * batch dims that do not broadcast. */
qkv_status dn_matmul_shape(qkv_kernel_io *io, const qkv_tensor *a, const qkv_tensor *b,
                           qkv_tensor *y);
/* "(d0, d1, ...)" of t into buf (cap bytes); returns buf. */
const char *dn_shape_str(const qkv_tensor *t, char *buf, size_t cap);
/* Element count of a known shape. */
size_t dn_numel(const qkv_tensor *t);
/* Present optional input. */
static inline bool dn_present(const qkv_kernel_io *io, size_t k)
{
    return k < io->n_inputs && io->inputs[k].dtype != QKV_DTYPE_UNDEFINED;
}

#endif /* QKV_ONEDNN_PLUGIN_H */
