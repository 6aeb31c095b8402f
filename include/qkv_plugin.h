/*
 * qkv_plugin.h - the kernel and plugin ABI of qkv.
 *
 * Self-contained C11 (standard headers only): a plugin includes this file
 * (which brings qkv_types.h, the types it shares with qkv.h) and nothing
 * else, and never links against libqkv. Everything the host offers a
 * kernel reaches it through the qkv_host_api table passed to every callback.
 *
 * The built-in CPU kernels use exactly these structures, so a plugin kernel
 * is a first-class citizen: same descriptor, same phases, same host table.
 *
 * Versioning. Every struct that crosses the boundary starts with
 * `struct_size` and `abi_version` and only ever grows at the end. The host
 * refuses a different major version and accepts a newer minor one (fields it
 * does not know are ignored; fields an older plugin lacks read as absent).
 *
 * A plugin is a shared library exporting two symbols: the constant
 * qkv_plugin_abi_version (since 1.2), which the host reads first and refuses
 * the library on when its major version differs, so nothing of a plugin of
 * another major ever runs; and the function qkv_plugin_init
 * (QKV_PLUGIN_ENTRY below), which receives the host's function table and
 * returns a qkv_plugin_info: the custom operators (kernels) and execution
 * backends the library provides. The host copies every descriptor; the
 * pointers a descriptor holds (user, callbacks) must stay valid until the
 * library's fini runs, just before the host closes it. docs/plugins.md is the
 * guide; this file is the contract.
 *
 * Reading structs across versions. A struct the plugin hands over is read
 * only as far as its struct_size covers (what an older plugin lacks reads as
 * 0/NULL). The host table handed to the plugin may be older than the header
 * the plugin was built with: test QKV_HOST_HAS(host, field) before calling a
 * function added after 1.0.
 *
 * Kernel phases (all callbacks return a qkv_status; on error they report a
 * message with host->error()):
 *   init     once per node at session creation: parse attributes into state
 *            (the host table comes as a parameter: a plugin has no other way
 *            to reach it).
 *   infer    output dtypes and shapes from input dtypes/shapes. Optional: a
 *            kernel without infer runs with its outputs unknown until compute,
 *            which then allocates each output with host->output_alloc (the
 *            node, and everything after it, is planned as dynamic). Called at
 *            session creation with possibly unknown dims (-1) and at planning
 *            time with concrete input shapes. Input `data` is non-NULL when the
 *            value is known (a constant, or a value computed while planning);
 *            a kernel that needs a value it does not have sets the dependent
 *            output dims to -1 ("data dependent"). Must not allocate output.
 *   prepare  optional; once per plan (a set of concrete input shapes),
 *            before any compute with those shapes: validate, declare scratch
 *            (io->scratch_bytes) and, since 1.2, keep what it worked out from
 *            the shapes as per-plan state (host->plan_alloc, io->plan_state),
 *            so compute does not redo it on every run.
 *   compute  run. May be called concurrently on the same state from several
 *            threads, so state (and io->plan_state) is read-only here. Must
 *            not allocate: scratch comes from io->scratch.
 *   destroy  free the state made by init.
 *
 * String tensors (QKV_DTYPE_STRING). data holds one NUL-terminated char *
 * per element. An input's strings are read-only and live as long as the
 * input. For a string output the host allocates the pointer array, and more
 * when infer asks: infer may set the output's data_bytes to the pointer
 * array's bytes plus room for the characters (it leaves 0 otherwise), and
 * compute stores the characters in that room, after the array, pointing
 * each element at its own. Such an output lives in the run's arena like any
 * other value (a node evaluated on its own, or with its shape known only at
 * run time, gets a block the host frees with the run's other dynamic
 * memory), so compute allocates nothing; a kernel whose output size depends
 * on the strings' values leaves dims -1 in infer until the input data is
 * known. Copy every output string into that room, even one equal to an
 * input's: an element pointing at an input's string would dangle once the
 * input's arena bytes are reused.
 */
#ifndef QKV_PLUGIN_H
#define QKV_PLUGIN_H

#include <stddef.h>
#include <stdint.h>

#include "qkv_types.h" /* qkv_status, qkv_dtype, qkv_tensor, QKV_CPU_* */

#ifdef __cplusplus
extern "C" {
#endif

/* ---- the plugin ABI ------------------------------------------------------ */

#define QKV_ABI_MAJOR 1
#define QKV_ABI_MINOR 4
#define QKV_ABI_VERSION (((uint32_t)QKV_ABI_MAJOR << 16) | (uint32_t)QKV_ABI_MINOR)
#define QKV_ABI_VERSION_MAJOR(v) ((uint32_t)(v) >> 16)
#define QKV_ABI_VERSION_MINOR(v) ((uint32_t)(v)&0xffffu)

/* The node a kernel is being initialised for (opaque; read with the host). */
typedef struct qkv_node_ctx qkv_node_ctx;

typedef struct qkv_host_api qkv_host_api;

/* What infer, prepare and compute see. Filled by the host. */
typedef struct qkv_kernel_io {
    uint32_t struct_size;
    uint32_t abi_version;
    const struct qkv_host_api *host;
    void *host_ctx; /* pass to host->error and host->parallel_for */
    size_t n_inputs;
    const qkv_tensor *inputs; /* an omitted optional input has dtype UNDEFINED, rank -1 */
    size_t n_outputs;
    qkv_tensor *outputs;  /* infer fills dtype/rank/dims; compute writes data */
    void *scratch;        /* compute: scratch_bytes of 64-byte aligned memory, NULL when 0 */
    size_t scratch_bytes; /* prepare: set to the scratch compute needs */
    /* -- since 1.2 -- */
    /* Per-plan state. prepare may point it at memory it took with
     * host->plan_alloc and filled with what it derived from the shapes
     * (dims, strides, a layout, a variant choice); the host keeps it with
     * the plan and hands it back to every compute of that plan, read-only
     * (contexts sharing the plan run at once). NULL when prepare set none;
     * infer never sees it. A kernel that may run on a 1.0/1.1 host tests
     * QKV_HOST_HAS(io->host, plan_alloc) before using either. */
    const void *plan_state;
    /* -- since 1.3: sequence and optional values -- */
    /* The kind of each input (n_inputs entries), or NULL when every input is
     * a tensor. A sequence or optional input's qkv_tensor gives the element
     * type (dtype; rank -1) and its `data` is opaque: NULL while the contents
     * are not known (infer at session creation and planning), non-NULL when
     * host->value_length / value_has_element / value_element may read them
     * (compute, and an infer run just before compute for a node whose output
     * shapes depend on them). Only a kernel with QKV_KERNEL_VALUES (or
     * QKV_KERNEL_ALIAS, which the host then runs itself) gets such inputs. */
    const qkv_type_kind *input_kinds;
    /* The kind of each output (n_outputs entries), or NULL when the host
     * has no room for them (a 1.2 host: every output is a tensor). The host
     * sets each entry before infer (QKV_KIND_TENSOR at session creation);
     * infer writes the kind of an output that is not a tensor and gives its
     * element type in outputs[k].dtype. Compute fills such an output with
     * host->value_append / value_set_has_element, never through its data. */
    qkv_type_kind *output_kinds;
} qkv_kernel_io;

typedef struct qkv_kernel qkv_kernel;

/* init: kernel is the host's copy of the descriptor (kernel->user is the
 * registrant's pointer); read the node through host; *state (NULL on entry)
 * is what infer/prepare/compute/destroy get. */
typedef qkv_status (*qkv_kernel_init_fn)(const qkv_kernel *kernel, const qkv_host_api *host,
                                         const qkv_node_ctx *node, void **state);
typedef qkv_status (*qkv_kernel_io_fn)(void *state, qkv_kernel_io *io);
typedef qkv_status (*qkv_kernel_compute_fn)(const void *state, qkv_kernel_io *io);
/* destroy: frees what init made. It gets no host table: a state that was
 * allocated with host->alloc keeps the host pointer to free itself. */
typedef void (*qkv_kernel_destroy_fn)(void *state);

/* Kernel flags. */
#define QKV_KERNEL_SHAPE_ONLY 0x1u /* compute reads input shapes only, never input data */
#define QKV_KERNEL_INPLACE 0x2u    /* output 0 may share input `inplace_input`'s buffer */
#define QKV_KERNEL_ALIAS                                                                           \
    0x4u /* output 0 holds input 0's bytes unchanged (Reshape...):
                                    * the host makes it a view and skips compute when it can */
#define QKV_KERNEL_VALUES                                                                          \
    0x8u /* since 1.3: takes sequence/optional inputs or makes such
                                    * outputs (io->input_kinds, io->output_kinds); without it
                                    * the host refuses a non-tensor input at session creation */

/* The widest per-input dtype table a descriptor may have. */
#define QKV_KERNEL_MAX_TYPED_IO 8

/*
 * A kernel descriptor. The host copies it at registration.
 * Dispatch: for a node in `domain` whose model imports opset V of that domain,
 * the kernels with since_version <= V <= until_version (until_version 0: no
 * upper bound) are candidates and the one with the newest since_version wins.
 */
struct qkv_kernel {
    uint32_t struct_size; /* sizeof(qkv_kernel) as the plugin saw it */
    uint32_t abi_version; /* QKV_ABI_VERSION as the plugin saw it */
    const char *domain;   /* "" (or "ai.onnx") for the default domain */
    const char *op_type;
    int32_t since_version;
    int32_t until_version;
    /* The host refuses a node with fewer inputs (trailing omitted ones do not
     * count) and, since 1.4, one that omits ("") any of its first min_inputs
     * not in omittable_inputs, before the kernel's init runs: those reach
     * every callback present. max_inputs -1: variadic. */
    int32_t min_inputs, max_inputs;
    int32_t min_outputs, max_outputs; /* max_outputs -1: variadic */
    /* Allowed dtypes per input as QKV_DTYPE_BIT masks; input k >= n uses entry
     * n-1; 0 (or n_input_types 0) allows any. Checked by the host. */
    uint32_t n_input_types;
    uint64_t input_types[QKV_KERNEL_MAX_TYPED_IO];
    uint32_t flags;                /* QKV_KERNEL_* */
    int32_t inplace_input;         /* with QKV_KERNEL_INPLACE: the input output 0 may overwrite
                              * (same dtype and size; compute must allow out == in) */
    void *user;                    /* the registrant's pointer, for init */
    qkv_kernel_init_fn init;       /* optional: NULL leaves state NULL */
    qkv_kernel_io_fn infer;        /* optional for plugins: NULL = shapes known only at run time */
    qkv_kernel_io_fn prepare;      /* optional */
    qkv_kernel_compute_fn compute; /* required */
    qkv_kernel_destroy_fn destroy; /* optional */
    /* -- since 1.1 -- */
    /* Optional. Called once per node at session creation, after the graph
     * passes and backend assignment, before any plan: may transform constant
     * inputs (host->node_input_const) into state, e.g. weights reordered for
     * the GEMM, and say so with host->node_input_packed. Memory comes from
     * host->alloc and is freed by destroy; *state is init's state (NULL
     * without init), and prepack may set it. Every context of the session
     * shares the result, so compute only reads it. */
    qkv_status (*prepack)(void **state, const qkv_host_api *host, const qkv_node_ctx *node);
    /* -- since 1.4 -- */
    /* Bit k set: input k may be given as "" although it is among the first
     * min_inputs, i.e. an optional input placed before required ones (Scan-8's
     * sequence_lens, EmbedLayerNormalization's segment_ids). A descriptor
     * whose struct_size does not cover this field reads as all bits set: the
     * host then leaves omitted inputs to the kernel, as before 1.4. */
    uint64_t omittable_inputs;
};

/* Attribute types, numbered as ONNX AttributeProto.AttributeType. */
typedef enum qkv_attr_type {
    QKV_ATTR_UNDEFINED = 0,
    QKV_ATTR_FLOAT = 1,
    QKV_ATTR_INT = 2,
    QKV_ATTR_STRING = 3,
    QKV_ATTR_TENSOR = 4,
    QKV_ATTR_GRAPH = 5,
    QKV_ATTR_FLOATS = 6,
    QKV_ATTR_INTS = 7,
    QKV_ATTR_STRINGS = 8,
    QKV_ATTR_TENSORS = 9,
    QKV_ATTR_GRAPHS = 10,
    QKV_ATTR_SPARSE_TENSOR = 11,
    QKV_ATTR_SPARSE_TENSORS = 12,
    QKV_ATTR_TYPE_PROTO = 13,
    QKV_ATTR_TYPE_PROTOS = 14
} qkv_attr_type;

/* Log levels for host->log: QKV_LOG_* in qkv_types.h. */

typedef void (*qkv_range_fn)(void *arg, size_t begin, size_t end);

/*
 * A strided batch of row-major GEMMs, the host's GEMM service (host->gemm)
 * and what a backend's GEMM provider receives:
 *   C[b] = alpha * op(A[b]) @ op(B[b]) + beta * C[b]
 * op(A) is (m, k), op(B) (k, n), C (m, n). A is stored (m, k) with row stride
 * lda, or (k, m) when trans_a; B is stored (k, n) with row stride ldb, or
 * (n, k) when trans_b; C's row stride is ldc (all in elements, >= 1). The
 * batch index b runs over batch_dims[0..batch_rank) and matrix b of X starts
 * sum_j coord_j * x_strides[j] elements after X (stride 0 broadcasts). With
 * beta == 0, C is not read (NaN there is ignored). k == 0 gives C = beta * C.
 */
typedef struct qkv_gemm {
    uint32_t struct_size; /* sizeof(qkv_gemm) as the caller saw it */
    uint32_t abi_version;
    qkv_dtype dtype; /* QKV_DTYPE_FLOAT or QKV_DTYPE_DOUBLE */
    int32_t trans_a, trans_b;
    size_t m, n, k;
    double alpha, beta;
    const void *a;
    size_t lda;
    const void *b;
    size_t ldb;
    void *c;
    size_t ldc;
    int32_t batch_rank; /* 0: a single GEMM */
    size_t batch_dims[QKV_MAX_RANK];
    size_t a_strides[QKV_MAX_RANK], b_strides[QKV_MAX_RANK], c_strides[QKV_MAX_RANK];
} qkv_gemm;

/*
 * The host's function table. Attribute getters work during init only.
 * Getters return QKV_OK and the default when the attribute is absent, and
 * QKV_ERR_TYPE (with a message naming the node and attribute) when it is
 * present with another type. Returned pointers live as long as the session.
 * The table only grows at the end; each batch says the version that added it.
 */
struct qkv_host_api {
    uint32_t struct_size;
    uint32_t abi_version;

    /* -- since 1.0: the node (init, and a backend's supports) -- */
    const char *(*node_name)(const qkv_node_ctx *node);
    const char *(*node_op_type)(const qkv_node_ctx *node);
    const char *(*node_domain)(const qkv_node_ctx *node);
    int64_t (*node_opset)(const qkv_node_ctx *node);      /* the model's opset for the domain */
    size_t (*node_input_count)(const qkv_node_ctx *node); /* including omitted optionals */
    size_t (*node_output_count)(const qkv_node_ctx *node);
    int (*node_input_present)(const qkv_node_ctx *node, size_t k);
    int (*node_output_present)(const qkv_node_ctx *node, size_t k);
    qkv_attr_type (*attr_type)(const qkv_node_ctx *node,
                               const char *name); /* UNDEFINED if absent */
    qkv_status (*attr_int)(const qkv_node_ctx *node, const char *name, int64_t dflt, int64_t *out);
    qkv_status (*attr_float)(const qkv_node_ctx *node, const char *name, float dflt, float *out);
    qkv_status (*attr_string)(const qkv_node_ctx *node, const char *name, const char *dflt,
                              const char **out);
    /* absent: *out NULL, *n 0. Since 1.4 a TYPE_PROTO attribute (Optional's
     * `type`) reads as two ints: its qkv_type_kind and its element
     * qkv_dtype (UNDEFINED when not given); an older host answers QKV_ERR_TYPE. */
    qkv_status (*attr_ints)(const qkv_node_ctx *node, const char *name, const int64_t **out,
                            size_t *n);
    qkv_status (*attr_floats)(const qkv_node_ctx *node, const char *name, const float **out,
                              size_t *n);
    qkv_status (*attr_strings)(const qkv_node_ctx *node, const char *name, const char *const **out,
                               size_t *n);
    qkv_status (*attr_tensor)(const qkv_node_ctx *node, const char *name,
                              const qkv_tensor **out); /* absent: *out NULL */
    /* Report an error during init: the host prefixes the node description. */
    qkv_status (*node_error)(const qkv_node_ctx *node, qkv_status status, const char *fmt, ...);
    /* The static type of input k as inferred at session creation: UNDEFINED
     * when absent or not known yet (in init, before inference, the type of a
     * value computed by another node may not be known; in a backend's
     * supports it is, unless an upstream op has no shape inference). */
    qkv_dtype (*node_input_dtype)(const qkv_node_ctx *node, size_t k);
    /* The static shape of input k: returns the rank (-1 unknown or absent)
     * and writes min(rank, cap) dims (-1 where unknown) into dims. */
    int32_t (*node_input_shape)(const qkv_node_ctx *node, size_t k, int64_t *dims, size_t cap);

    /* -- since 1.0: infer/prepare/compute -- */
    /* Report an error; returns `status` so a kernel can `return host->error(...)`.
     * The host prefixes "node 'NAME' (OP-VERSION): ". */
    qkv_status (*error)(void *host_ctx, qkv_status status, const char *fmt, ...);
    /* Run fn over [0, n) split into chunks across the session's threads; blocks
     * until all are done. fn must not fail; it may be called on the caller's thread. */
    void (*parallel_for)(void *host_ctx, size_t n, qkv_range_fn fn, void *arg);
    /* The number of threads parallel_for may use. */
    size_t (*thread_count)(void *host_ctx);
    /* Compute only, for a kernel without infer: gives output k its type and
     * shape and points io->outputs[k].data at zeroed host memory of the right
     * size (owned by the host, valid like any output). When the host already
     * allocated output k (the kernel has infer), succeeds if the type and
     * shape match and fails with QKV_ERR_SHAPE otherwise. QKV_ERR_SHAPE for a
     * bad rank, negative dim or size overflow; QKV_ERR_OUT_OF_MEMORY. */
    qkv_status (*output_alloc)(qkv_kernel_io *io, size_t k, qkv_dtype dtype, int32_t rank,
                               const int64_t *dims);
    /* Compute only: runs a strided batched GEMM (qkv_gemm) with the session's
     * GEMM provider (the highest-priority backend that has one, else portable
     * C), split over the session's threads. Float and double only
     * (QKV_ERR_TYPE otherwise); QKV_ERR_INVALID_ARGUMENT for an inconsistent
     * description. Allocates nothing. */
    qkv_status (*gemm)(void *host_ctx, const qkv_gemm *g);

    /* -- since 1.0: services -- */
    void *(*alloc)(size_t bytes); /* init/destroy, prepack; never in compute */
    void (*free)(void *ptr);
    void (*log)(int level, const char *fmt, ...);
    const char *(*dtype_name)(qkv_dtype dtype); /* "float32", "int64"...; never NULL */

    /* -- since 1.1: CPU features and prepacked constants -- */
    /* The QKV_CPU_* features of this CPU that the OS has enabled, detected
     * once per process, less those above the level the QKV_ISA environment
     * variable caps (read once). Pick kernel variants from this, never from
     * the CPU's model name. */
    uint64_t (*cpu_features)(void);
    /* Prepack only: the value of input k when it is a constant of the session
     * (an initializer or a folded value), else NULL. The tensor and its data
     * stay valid until prepack returns. */
    const qkv_tensor *(*node_input_const)(const qkv_node_ctx *node, size_t k);
    /* Prepack only: this kernel keeps its own transformed copy of constant
     * input k (packed_bytes bytes, held in its state) and from now on reads
     * nothing of the original but its type and shape. When no other node or
     * output reads the constant, the host frees the original, and compute
     * then sees that input with data NULL. The host counts packed_bytes in
     * the session's memory figures. QKV_ERR_INVALID_ARGUMENT when input k is
     * not a constant. */
    qkv_status (*node_input_packed)(const qkv_node_ctx *node, size_t k, size_t packed_bytes);

    /* -- since 1.2: per-plan state -- */
    /* Prepare only: *out gets `bytes` of zeroed, 64-byte aligned memory that
     * lives exactly as long as the plan being prepared: the host frees it
     * with the plan (the kernel never frees it, and needs no destroy for
     * it). Call it any number of times; point io->plan_state at what compute
     * should get. Fails, with *out NULL and a message naming the node, with
     * QKV_ERR_OUT_OF_MEMORY, or QKV_ERR_INVALID_ARGUMENT outside prepare. */
    qkv_status (*plan_alloc)(qkv_kernel_io *io, size_t bytes, void **out);

    /* -- since 1.3: sequence and optional values (io->input_kinds) -- */
    /* Input k (a sequence or an optional): *length gets the number of
     * tensors it holds: a sequence's length; for an optional tensor 0 (empty)
     * or 1; for an optional sequence the sequence's length (0 when empty:
     * tell the two apart with value_has_element). QKV_ERR_INVALID_ARGUMENT
     * (with a message naming the node) when input k is a tensor or its
     * contents are not known (io->inputs[k].data NULL). */
    qkv_status (*value_length)(const qkv_kernel_io *io, size_t k, size_t *length);
    /* Input k: *has gets 1 when it holds an element (a sequence always
     * does; an optional unless it is empty). Errors as value_length. */
    qkv_status (*value_has_element)(const qkv_kernel_io *io, size_t k, int *has);
    /* Input k: *out gets a view of its tensor i (i < value_length), valid
     * until the compute returns; never write through it. Errors as
     * value_length, and QKV_ERR_INVALID_ARGUMENT for i out of range. */
    qkv_status (*value_element)(const qkv_kernel_io *io, size_t k, size_t i, qkv_tensor *out);
    /* Compute only, output k (a sequence or an optional): appends a tensor
     * of this type and shape, holding a copy of `data` (data_bytes of the
     * shape; for STRING an array of char *, each copied) or zeros when data
     * is NULL, and gives a view of it in *out (may be NULL) for the kernel to
     * fill. An optional output gets an element by this (and then holds one
     * tensor, or one sequence built by further appends). The host owns the
     * memory (this may allocate: a sequence grows). QKV_ERR_INVALID_ARGUMENT
     * (output k is a tensor, or an optional tensor that has its element
     * already), QKV_ERR_SHAPE (bad rank, negative dim, overflow),
     * QKV_ERR_TYPE (the element type differs from the output's),
     * QKV_ERR_OUT_OF_MEMORY; each with a message naming the node. */
    qkv_status (*value_append)(qkv_kernel_io *io, size_t k, qkv_dtype dtype, int32_t rank,
                               const int64_t *dims, const void *data, qkv_tensor *out);
    /* Compute only, output k (an optional): has 0 leaves it empty (what it
     * is before compute), 1 gives it an element: for an optional sequence
     * an empty sequence, which value_append then fills. A sequence output
     * always has its element. Errors as value_append. */
    qkv_status (*value_set_has_element)(qkv_kernel_io *io, size_t k, int has);
};

/* True when the host table has `field` (added after 1.0) and it is set. */
#define QKV_HOST_HAS(host, field)                                                                  \
    ((host)->struct_size >= offsetof(qkv_host_api, field) + sizeof((host)->field) &&               \
     (host)->field != NULL)

/* ---- backends ------------------------------------------------------------ */

/*
 * An execution backend: a named set of kernels with a priority. A session
 * puts each node on the first backend of its order (highest priority first,
 * or the order the user gave) that has a kernel for the node's (domain, op,
 * opset) and whose supports() accepts the node. The built-in kernels are the
 * backend "cpu" (priority 0); a plugin's plain kernels (qkv_plugin_info.kernels)
 * join "cpu" too. Two backends may both have a kernel for one op: that is
 * the point. Within one backend (domain, op, opset range) is unique.
 */
typedef struct qkv_backend {
    uint32_t struct_size; /* sizeof(qkv_backend) as the plugin saw it */
    uint32_t abi_version;
    const char *name; /* [A-Za-z0-9_.-]+, unique among a session's backends; not "cpu" */
    int32_t priority; /* higher goes first; "cpu" is 0 */
    void *user;       /* passed to supports and gemm */
    size_t n_kernels;
    const qkv_kernel *const *kernels; /* n_kernels pointers */
    /* Optional. Called at session creation after type inference, for a node
     * the backend has a kernel for: nonzero when this backend should run it
     * (read input types and shapes with host->node_input_dtype/shape). NULL
     * accepts every node it has a kernel for. Must not fail or keep `node`. */
    int (*supports)(void *user, const qkv_host_api *host, const qkv_node_ctx *node);
    /* Optional GEMM provider for the session's host->gemm (the built-in
     * kernels that multiply matrices inside, e.g. attention, use it):
     * return QKV_ERR_UNSUPPORTED to let the next provider (finally portable
     * C) do a GEMM it does not handle; any other error fails the node. */
    qkv_status (*gemm)(void *user, const qkv_host_api *host, void *host_ctx, const qkv_gemm *g);
    /* -- since 1.1 -- */
    /* Optional. One line for reports (`qkv info --system`, `qkv run
     * --verbose`, qkv_session_backend_describe): what the backend runs on and
     * how it was set up, e.g. "OpenBLAS 0.3.21, core Haswell (chosen by qkv
     * from the CPU's AVX2)". The string must stay valid until the plugin's
     * fini; NULL reads as "". */
    const char *(*describe)(void *user);
} qkv_backend;

/* ---- the plugin entry point ------------------------------------------------ */

/* What a plugin library provides; returned by its qkv_plugin_init. */
typedef struct qkv_plugin_info {
    uint32_t struct_size; /* sizeof(qkv_plugin_info) as the plugin saw it */
    uint32_t abi_version; /* QKV_ABI_VERSION as the plugin saw it */
    const char *name;     /* short name, e.g. "example_ops" */
    const char *version;  /* the plugin's own version, e.g. "1.2.0" */
    size_t n_kernels;     /* custom operators, added to the "cpu" backend */
    const qkv_kernel *const *kernels;
    size_t n_backends;
    const qkv_backend *const *backends;
    void *user;               /* passed to fini */
    void (*fini)(void *user); /* optional: called once, just before the library is closed */
} qkv_plugin_info;

/* The names of the two symbols a plugin exports. */
#define QKV_PLUGIN_ENTRY "qkv_plugin_init"
#define QKV_PLUGIN_ABI_SYMBOL "qkv_plugin_abi_version"

/*
 * Called once when the library is loaded (a library loaded by several
 * sessions is loaded once). On success *out points at the plugin's info,
 * which (and everything it points to) must stay valid until fini. On failure
 * return an error status (QKV_ERR_PLUGIN, or a more precise one) and write a
 * message into errbuf (errbuf_size bytes, always > 0); the host then closes
 * the library without calling fini, so release what init made.
 */
typedef qkv_status (*qkv_plugin_init_fn)(const qkv_host_api *host, const qkv_plugin_info **out,
                                         char *errbuf, size_t errbuf_size);

#if defined(_WIN32)
#define QKV_PLUGIN_VISIBLE __declspec(dllexport)
#elif defined(__GNUC__)
#define QKV_PLUGIN_VISIBLE __attribute__((visibility("default")))
#else
#define QKV_PLUGIN_VISIBLE
#endif

#ifdef __cplusplus
#define QKV_PLUGIN_EXPORT extern "C" QKV_PLUGIN_VISIBLE
#else
#define QKV_PLUGIN_EXPORT QKV_PLUGIN_VISIBLE
#endif

/*
 * Since 1.2: the ABI version the plugin was built for, read by the host
 * before anything of the plugin runs. Another major version is refused with
 * both versions in the message and without calling qkv_plugin_init; a newer
 * minor is accepted. A plugin defines it once, exactly so:
 *   QKV_PLUGIN_EXPORT const uint32_t qkv_plugin_abi_version = QKV_ABI_VERSION;
 * A library without it (built against 1.0 or 1.1) still loads: its init runs
 * and the abi_version of its qkv_plugin_info is checked afterwards.
 */
extern QKV_PLUGIN_VISIBLE const uint32_t qkv_plugin_abi_version;

/* Declares the entry point a plugin defines:
 *   QKV_PLUGIN_EXPORT qkv_status qkv_plugin_init(const qkv_host_api *host,
 *       const qkv_plugin_info **out, char *errbuf, size_t errbuf_size) { ... } */
QKV_PLUGIN_EXPORT qkv_status qkv_plugin_init(const qkv_host_api *host, const qkv_plugin_info **out,
                                             char *errbuf, size_t errbuf_size);

#ifdef __cplusplus
}
#endif
#endif /* QKV_PLUGIN_H */
