/*
 * kernel_host.h - the host side of the kernel ABI: the qkv_host_api table
 * and the contexts behind its opaque pointers.
 */
#ifndef QKV_KERNEL_HOST_H
#define QKV_KERNEL_HOST_H

#include "ir.h"
#include "qkv_plugin.h"

struct qkv_threadpool;

/* What a kernel's init (and a backend's supports) sees as `const qkv_node_ctx *`. */
struct qkv_node_ctx {
    const qkv_ir_node *node;
    int64_t version;           /* the kernel's since_version, for messages */
    qkv_error *err;            /* where node_error writes; may be NULL */
    const qkv_ir_graph *graph; /* for node_input_dtype/shape; NULL: inputs read as unknown */
    /* non-NULL during prepack only: node_input_const and node_input_packed
     * work, and the packed bytes are added here */
    size_t *packed_bytes;
    size_t memory_limit;   /* the session's (0: none): packed_bytes may not pass it */
    qkv_tensor const_view; /* what node_input_const returns */
};

/* A session's GEMM service (host->gemm): a backend's provider, or portable C. */
typedef struct qkv_gemm_provider {
    qkv_status (*gemm)(void *user, const qkv_host_api *host, void *host_ctx, const qkv_gemm *g);
    void *user;
} qkv_gemm_provider;

/* The memory of the per-plan states that prepare takes with
 * host->plan_alloc: blocks freed together, with the plan (or, for a node
 * evaluated on its own, after its compute). Zero-initialise. */
typedef struct qkv_plan_mem {
    void **blocks;
    size_t n, cap;
    size_t bytes; /* the sum of the sizes asked for */
} qkv_plan_mem;

/* Frees every block and leaves m empty. NULL: no-op. */
void qkv_plan_mem_free(qkv_plan_mem *m);

/* What infer/prepare/compute see as io->host_ctx. */
typedef struct qkv_host_ctx {
    const qkv_ir_node *node;
    int64_t version;
    qkv_error *err;                /* may be NULL */
    struct qkv_threadpool *pool;   /* NULL: parallel_for runs inline */
    size_t threads;                /* without a pool (planning): the threads compute will have,
                     * so prepare can size per-thread scratch; 0 means 1 */
    const qkv_gemm_provider *gemm; /* NULL: host->gemm runs portable C */
    /* The session's memory limit: when memory_limited, node outputs and
     * scratch allocated outside the arena may take at most memory_left bytes
     * (output_alloc takes its bytes off it). */
    bool memory_limited;
    size_t memory_left;
    qkv_plan_mem *plan_mem; /* set only around prepare: where host->plan_alloc takes memory */
    /* During a run: the context and the frame running the node, where a
     * control-flow node runs its subgraphs (frame.h). NULL otherwise. */
    struct qkv_context *context;
    struct qkv_frame *frame;
    /* Sequence and optional values (runtime/exec/value_store.h): the kinds
     * kernels see as io->input_kinds / io->output_kinds (NULL: all tensors),
     * and at run time the boxes of the non-tensor inputs and outputs (NULL
     * entries for tensors; NULL arrays before the run). */
    const qkv_type_kind *in_kinds;
    qkv_type_kind *out_kinds;
    struct qkv_box *const *in_boxes;
    struct qkv_box *const *out_boxes;
} qkv_host_ctx;

/* Fills in_kinds (n_inputs) and out_kinds (n_outputs) with the kinds of
 * node n's values in g (omitted ones: tensor); returns whether any is not a
 * tensor. */
bool qkv_node_kinds(const qkv_ir_graph *g, const qkv_ir_node *n, qkv_type_kind *in_kinds,
                    qkv_type_kind *out_kinds);

/* True when the host itself runs node n on a sequence or optional input:
 * a one-input, one-output ALIAS kernel (Identity) that does not take such
 * values (no QKV_KERNEL_VALUES) gets its output made a copy of the input by
 * the host. */
bool qkv_node_host_alias(const qkv_ir_node *n, const qkv_type_kind *in_kinds);

/* The host's function table (static, immutable). */
const qkv_host_api *qkv_host_api_get(void);

/* What host->gemm does: checks g, then runs it with hctx's provider (if any,
 * and unless it answers QKV_ERR_UNSUPPORTED) or the portable GEMM. */
qkv_status qkv_host_gemm(qkv_host_ctx *hctx, const qkv_gemm *g);

/* qkv_node_format (ir.h) of a node whose kernel has since_version
 * `version`: "node 'NAME' (DOMAIN.OP-VERSION)" into buf. */
void qkv_node_describe(const qkv_ir_node *node, int64_t version, char *buf, size_t cap);

/*
 * Empty tensors. A tensor with a zero dim has no bytes, yet a kernel must
 * never see NULL for it: memcpy(d, NULL, 0) and NULL + 0 are undefined
 * behaviour in C, and every kernel would need its own guard. So wherever the
 * runtime hands values to kernels (shape inference on constants, planning,
 * runs), a known-empty tensor without data points at one shared, 64-byte
 * aligned block that nothing reads, writes or frees. NULL data keeps its
 * meaning "value not known" (or "packed by the kernel") for the rest.
 */
void *qkv_empty_data(void);
/* True when t's rank and dims are known and one dim is 0. */
bool qkv_tensor_known_empty(const qkv_tensor *t);
/* Points t->data at qkv_empty_data() when t is known-empty and has none. */
void qkv_tensor_bind_empty(qkv_tensor *t);

/* Fills an io struct for a node: inputs/outputs arrays are the caller's;
 * the kinds come from hctx. */
void qkv_kernel_io_init(qkv_kernel_io *io, qkv_host_ctx *hctx, const qkv_tensor *inputs,
                        size_t n_inputs, qkv_tensor *outputs, size_t n_outputs);

#endif /* QKV_KERNEL_HOST_H */
