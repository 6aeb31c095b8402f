/*
 * qkv.h - the public API of qkv, an ONNX runtime for attention models.
 *
 * Conventions:
 *  - Every function that can fail returns a qkv_status and, when `err` is not
 *    NULL, writes a one-line message into it naming the node, op and tensor.
 *  - On failure nothing the caller owns changes and no output is written.
 *  - `*_destroy(NULL)` is a no-op.
 *  - There is no global mutable state (the plugin registry aside): models and
 *    sessions are independent objects.
 *
 *  - Structs that qkv fills for the caller (qkv_model_meta, qkv_value_info,
 *    qkv_node_info, qkv_profile_entry, qkv_plan_stats) start with
 *    `struct_size`, which the caller sets to sizeof(the struct) as it was
 *    compiled: qkv writes only the fields that fit in it, so a program built
 *    against an older qkv.h keeps working when the structs grow (they only
 *    grow at the end). A struct_size too small for the first field is
 *    QKV_ERR_INVALID_ARGUMENT and nothing is written. Likewise qkv reads
 *    qkv_session_options only within its struct_size.
 *
 * Threads: a qkv_session is immutable after creation and may be shared. Each
 * thread runs the session through its own qkv_context.
 */
#ifndef QKV_H
#define QKV_H

#include <stddef.h>
#include <stdint.h>

#include "qkv_types.h" /* qkv_status, qkv_dtype, qkv_tensor, QKV_CPU_* */

#ifdef __cplusplus
extern "C" {
#endif

#define QKV_VERSION_MAJOR 0
#define QKV_VERSION_MINOR 3
#define QKV_VERSION_PATCH 0
#define QKV_VERSION_STRING "0.3.0"

#if defined(QKV_BUILDING_LIBRARY) && defined(__GNUC__)
#define QKV_API __attribute__((visibility("default")))
#else
#define QKV_API
#endif

/* ---- errors --------------------------------------------------------------- */

#define QKV_ERROR_MESSAGE_BYTES 512

/* Caller-owned error record. */
typedef struct qkv_error {
    qkv_status status;
    char message[QKV_ERROR_MESSAGE_BYTES];
} qkv_error;

/*
 * The library's version: returns "MAJOR.MINOR.PATCH" of the qkv that is
 * running (which may differ from the QKV_VERSION_* this program was compiled
 * with), and writes its parts and the plugin ABI version it implements
 * (QKV_ABI_VERSION of qkv_plugin.h: major << 16 | minor) into the pointers
 * that are not NULL. Never fails.
 */
QKV_API const char *qkv_version(int *major, int *minor, int *patch, uint32_t *plugin_abi);

/* "ok", "invalid argument", ...; never NULL. */
QKV_API const char *qkv_status_string(qkv_status status);
/* "float32", "int64", ...; "unknown" for an unknown value. */
QKV_API const char *qkv_dtype_name(qkv_dtype dtype);
/* Bits per element (8 for bool, 4 for int4); 0 for UNDEFINED, STRING and unknown types. */
QKV_API size_t qkv_dtype_bits(qkv_dtype dtype);
/* Number of elements of a tensor of known shape (1 for rank 0); 0 if any dim is
 * unknown or the product overflows size_t (then *overflow is set if not NULL). */
QKV_API size_t qkv_tensor_elements(const qkv_tensor *t, int *overflow);

/* ---- models: a loaded, validated ONNX file ------------------------------ */

typedef struct qkv_model qkv_model;

/*
 * Load and validate an ONNX model. External data is resolved relative to the
 * file's directory (for a buffer: relative to `base_dir`; NULL refuses
 * external data). On success *out owns everything (the buffer may be freed).
 */
QKV_API qkv_status qkv_model_load_file(const char *path, qkv_model **out, qkv_error *err);
QKV_API qkv_status qkv_model_load_buffer(const void *data, size_t bytes, const char *base_dir,
                                         qkv_model **out, qkv_error *err);
QKV_API void qkv_model_destroy(qkv_model *model);

/* Model metadata; strings are "" when absent and live as long as the model. */
typedef struct qkv_model_meta {
    size_t struct_size; /* set by the caller: sizeof(qkv_model_meta) */
    int64_t ir_version;
    int64_t model_version;
    const char *producer_name;
    const char *producer_version;
    const char *domain;
    const char *doc_string;
    const char *graph_name;
    size_t opset_count;
    size_t metadata_count;
    size_t node_count;        /* in the main graph */
    size_t initializer_count; /* in the main graph */
    uint64_t initializer_bytes;
} qkv_model_meta;

/* Fills *out (within out->struct_size). QKV_ERR_INVALID_ARGUMENT for a NULL
 * out or a struct_size below sizeof(size_t) + 8 (nothing written); a NULL
 * model gives empty metadata. */
QKV_API qkv_status qkv_model_get_meta(const qkv_model *model, qkv_model_meta *out);
/* i < opset_count: the domain ("" is ai.onnx) and version of one opset import. */
QKV_API void qkv_model_opset(const qkv_model *model, size_t i, const char **domain,
                             int64_t *version);
/* i < metadata_count: one metadata_props entry. */
QKV_API void qkv_model_metadata(const qkv_model *model, size_t i, const char **key,
                                const char **value);
/* i < node_count: the op type and domain of node i of the main graph. */
QKV_API void qkv_model_node_op(const qkv_model *model, size_t i, const char **op_type,
                               const char **domain);

/* A graph input or output. dims[k] is -1 when unknown; dim_params[k] is the
 * symbolic name or NULL. rank is -1 when the model does not say. */
typedef struct qkv_value_info {
    size_t struct_size; /* set by the caller: sizeof(qkv_value_info) */
    const char *name;
    qkv_dtype dtype;
    int32_t rank;
    const int64_t *dims;
    const char *const *dim_params;
    /* since 0.2: a tensor, or a sequence/optional whose element type is
     * dtype (then rank is -1) */
    qkv_type_kind kind;
} qkv_value_info;

QKV_API size_t qkv_model_input_count(const qkv_model *model); /* runtime inputs only */
QKV_API size_t qkv_model_output_count(const qkv_model *model);
/* Input or output i (within out->struct_size). An i out of range (or a NULL
 * model) fills name "", dtype UNDEFINED, rank -1 and returns
 * QKV_ERR_INVALID_ARGUMENT, as does a NULL out or a struct_size too small
 * for `name` (then nothing is written). */
QKV_API qkv_status qkv_model_input(const qkv_model *model, size_t i, qkv_value_info *out);
QKV_API qkv_status qkv_model_output(const qkv_model *model, size_t i, qkv_value_info *out);
/* The index of the runtime input (or output) called `name`, for
 * qkv_model_input / qkv_run / qkv_context_output; -1 when the model has none
 * of that name, or for a NULL argument. */
QKV_API int64_t qkv_model_input_index(const qkv_model *model, const char *name);
QKV_API int64_t qkv_model_output_index(const qkv_model *model, const char *name);

/* ---- sessions: a model made ready to run --------------------------------- */

typedef struct qkv_session qkv_session;
typedef struct qkv_context qkv_context;

typedef struct qkv_session_options {
    size_t struct_size;  /* sizeof(qkv_session_options); set by qkv_session_options_init */
    size_t threads;      /* threads each run context uses; 0 or 1: the calling thread only */
    int disable_fusion;  /* 1: do not fuse attention subgraphs */
    int disable_folding; /* 1: do not fold constant subgraphs at session creation */
    /* -- plugins and backends (docs/plugins.md) -- */
    /* Plugin libraries to load (paths; the strings are read during
     * qkv_session_create only), after the default ones. */
    const char *const *plugins;
    size_t n_plugins;
    /* 1: load no default plugins (the directories of QKV_PLUGIN_PATH, or
     * qkv's plugin directory when that is unset). */
    int no_default_plugins;
    /* "name,name,...": the only backends nodes may go to, in this order of
     * preference (NULL or "": every backend, highest priority first). */
    const char *backends;
    /* -- memory -- */
    /* The most bytes the session may hold for a run, 0 for no limit: packed
     * weights, plus a context's arena for the input shapes, plus the
     * buffers of nodes whose shapes are known only at run time. A plan or a
     * node that would need more fails with QKV_ERR_OUT_OF_MEMORY, naming the
     * node and the bytes, before that memory is allocated; packing that
     * would pass it fails qkv_session_create the same way. The model's own
     * weights are not counted. */
    size_t memory_limit;
    /* -- logging (added in 0.2, after memory_limit) -- */
    /* Where the session's messages go: what plugins and kernels log through
     * qkv_host_api.log while this session is created, planned or run, as
     * log(log_user, level, message), message without a trailing newline,
     * called on the thread that called qkv (so from every thread that runs
     * the session; messages from a context's pool worker threads go to the
     * process default instead). NULL: stderr, as "qkv LEVEL: message". */
    void (*log)(void *log_user, int level, const char *message);
    void *log_user;
    /* The most verbose level delivered (QKV_LOG_ERROR 0 .. QKV_LOG_DEBUG 3);
     * qkv_session_options_init sets it from the QKV_LOG_LEVEL environment
     * variable (read once per process), else QKV_LOG_WARN. */
    int log_level;
} qkv_session_options;

/* Fills opts with the defaults. */
QKV_API void qkv_session_options_init(qkv_session_options *opts);

/*
 * Loads a model and prepares it: kernels are chosen for every node (a node
 * without one is QKV_ERR_UNSUPPORTED naming its domain, op type and opset),
 * attributes parsed, types and static shapes inferred, constants folded.
 * opts may be NULL (defaults).
 */
QKV_API qkv_status qkv_session_create(const char *path, const qkv_session_options *opts,
                                      qkv_session **out, qkv_error *err);
QKV_API qkv_status qkv_session_create_from_buffer(const void *data, size_t bytes,
                                                  const char *base_dir,
                                                  const qkv_session_options *opts,
                                                  qkv_session **out, qkv_error *err);
/* Destroys the session. All its contexts must have been destroyed first. */
QKV_API void qkv_session_destroy(qkv_session *session);
/* The session's model (after graph passes): inputs, outputs, metadata. */
QKV_API const qkv_model *qkv_session_model(const qkv_session *session);
/* How many memory plans the session has built so far: a run (or qkv_plan)
 * with input shapes whose plan is cached builds none, so this counts cache
 * misses. Safe to call while other threads run the session. 0 for NULL. */
QKV_API size_t qkv_session_plans_built(const qkv_session *session);
/* How many Attention nodes attention fusion created at session creation (0
 * with qkv_session_options.disable_fusion, and for NULL). */
QKV_API size_t qkv_session_fused_count(const qkv_session *session);
/* How many rewrites a fusion pass made at session creation: pass "attention"
 * (Attention nodes, as qkv_session_fused_count), "gelu" (erf-form GELU
 * subgraphs made one Gelu node, counted even when the matmul pass then took
 * the Gelu in), "matmul" (FusedMatMul nodes: MatMul with its bias,
 * activation and residual), "transpose_view" (Transposes moving only dims
 * of size 1 made Reshape views). 0 with disable_fusion, for NULL and for
 * another pass name. */
QKV_API size_t qkv_session_fusion_count(const qkv_session *session, const char *pass);
/* Bytes the kernels hold as prepacked copies of constant inputs (weights
 * packed once for the GEMM, shared by every context); *released_bytes (may
 * be NULL) gets the bytes of original constants freed because nothing else
 * reads them. 0 for NULL. */
QKV_API size_t qkv_session_packed_bytes(const qkv_session *session, size_t *released_bytes);

/* This CPU's QKV_CPU_* features (qkv_types.h) that the OS enables, detected
 * once per process and capped by the QKV_ISA environment variable
 * ("baseline", "avx2", "avx512"; unset or "native": no cap). */
QKV_API uint64_t qkv_cpu_features(void);
/* The level the built-in kernels run at: "baseline", "avx2" or "avx512". */
QKV_API const char *qkv_cpu_isa_name(void);
/* The CPU's brand string, "" when it gives none. */
QKV_API const char *qkv_cpu_name(void);
/* The names of the QKV_CPU_* bits set in `features`, space-separated
 * ("sse4.1 avx f16c avx2+fma ..."; "baseline" for none), into buf (cap
 * bytes, cut when short, always NUL-terminated when cap > 0). Returns the
 * length of the whole string, as snprintf does. */
QKV_API size_t qkv_cpu_features_string(uint64_t features, char *buf, size_t cap);

/*
 * A run context: the per-thread state of runs (arena, bindings, threads).
 * Any number of contexts may run one session at the same time, each from
 * one thread at a time.
 */
QKV_API qkv_status qkv_context_create(qkv_session *session, qkv_context **out, qkv_error *err);
QKV_API void qkv_context_destroy(qkv_context *ctx);

/*
 * Asks ctx's run to stop; the only context function another thread may call
 * while a run is in progress (a watchdog's, say). The run returns
 * QKV_ERR_CANCELLED, naming the node it stopped before, at its next node or
 * its next Loop/Scan iteration: a kernel already computing finishes first.
 * Its outputs are then undefined, and the context stays usable. The request
 * is consumed by the run it stops: called when no run is in progress, it
 * stops the next run before its first node. Since 0.3.
 */
QKV_API void qkv_context_cancel(qkv_context *ctx);

/*
 * Runs the model. inputs[i] binds model input i (qkv_model_input order) and
 * n_inputs must equal their count; the caller keeps ownership of the input
 * data, which is only read. Inputs are checked (dtype, rank, dims against the
 * model, symbolic dims consistent) before any kernel runs.
 * The first run for a set of input shapes plans memory (cached in the
 * session); later runs with those shapes allocate nothing in qkv's own
 * kernels (a backend plugin may: oneDNN's C API allocates a little inside
 * every primitive execution). The calling thread needs about 256 KiB of
 * stack: the GEMM packs its operands into stack buffers.
 * On success the outputs are read with qkv_context_output: they belong to the
 * context and stay valid until its next run or its destruction.
 */
QKV_API qkv_status qkv_run(qkv_context *ctx, const qkv_tensor *inputs, size_t n_inputs,
                           qkv_error *err);
/* Output i of the last successful run (NULL if none or i out of range). */
QKV_API const qkv_tensor *qkv_context_output(const qkv_context *ctx, size_t i);

/*
 * A value of any kind (since 0.2): a tensor, a sequence of tensors, or an
 * optional holding a tensor or a sequence (docs/api.md "Sequence and
 * optional values").
 *   tensor              count 1, tensors[0] is it
 *   sequence            count tensors (0 for an empty sequence)
 *   optional            has_element 0: empty (count 0); 1: count 1
 *   optional sequence   has_element 0: empty; 1: count tensors of the sequence
 * elem_dtype is the element type (the model's, for an empty value).
 */
typedef struct qkv_value {
    size_t struct_size; /* sizeof(qkv_value) */
    qkv_type_kind kind;
    qkv_dtype elem_dtype;
    int has_element;
    size_t count;
    const qkv_tensor *tensors; /* (count) */
} qkv_value;

/*
 * qkv_run for models with sequence or optional inputs: inputs[i] is model
 * input i of the kind the model declares (QKV_ERR_TYPE naming the input
 * otherwise), each tensor checked like a qkv_run input (a sequence's
 * elements must all have the element type). The caller keeps the tensors;
 * they are only read. qkv_run refuses such a model's inputs and
 * qkv_context_output returns NULL for its non-tensor outputs: read them
 * with qkv_context_output_value.
 */
QKV_API qkv_status qkv_run_values(qkv_context *ctx, const qkv_value *inputs, size_t n_inputs,
                                  qkv_error *err);
/* Output i of the last successful run as a value of any kind (within
 * out->struct_size). The tensors belong to the context (or, for an output
 * that is a graph input, to the caller) and stay valid until its next run.
 * QKV_ERR_INVALID_ARGUMENT when there is no such output or no run. */
QKV_API qkv_status qkv_context_output_value(const qkv_context *ctx, size_t i, qkv_value *out);

/*
 * Runs the model with inputs bound by name and outputs chosen by name, some
 * of them written straight into the caller's buffers (I/O binding).
 *
 * Inputs: input_names[i] names the model input that inputs[i] binds; every
 * model input must be bound exactly once (any order). input_names NULL:
 * inputs are in model order, as for qkv_run.
 *
 * Outputs: output_names[j] names the model output that outputs[j] receives
 * (output_names NULL: outputs[j] is model output j, n_outputs at most their
 * count). When outputs[j].data is NULL, on success outputs[j] is set to the
 * context-owned output, as qkv_context_output returns it. When it is not
 * NULL, outputs[j] is a destination the caller owns: its dtype, rank and
 * dims must equal the output's and data_bytes must hold it, checked after
 * planning and before any kernel runs (QKV_ERR_TYPE, QKV_ERR_SHAPE,
 * QKV_ERR_INVALID_ARGUMENT naming the output and both shapes). The output
 * is then computed in place in that buffer, with no copy, when it is an
 * ordinary computed value; an output that is a model input, a constant, a
 * value computed while planning, another bound output's bytes, or data
 * dependent (shape known only when its node runs: then the dims are checked
 * after the run) is copied in once. qkv_context_output(ctx, j) then points
 * at the caller's buffer too.
 *
 * Bound buffers must not overlap each other nor any input, with one
 * exception that makes a KV cache grow in place: a buffer may start at the
 * same address as an input that is input 0 of the Concat node producing the
 * output, when the input is the output's leading bytes (the dims before the
 * Concat axis are all 1) and nothing else writes that memory first. Decode
 * step t then binds past = cache[0:t] and present = cache[0:t+1] on one
 * buffer and only the new row is written. Any other overlap is
 * QKV_ERR_INVALID_ARGUMENT naming both tensors.
 *
 * Names that the model lacks, or a duplicate, are QKV_ERR_INVALID_ARGUMENT
 * naming them; all input checks of qkv_run apply. On failure before the run
 * no buffer is written; a kernel failing midway may have written bound
 * buffers.
 */
QKV_API qkv_status qkv_run_io(qkv_context *ctx, const char *const *input_names,
                              const qkv_tensor *inputs, size_t n_inputs,
                              const char *const *output_names, qkv_tensor *outputs,
                              size_t n_outputs, qkv_error *err);

/* ---- plugins and backends (docs/plugins.md) -------------------------------- */

/*
 * A loaded plugin library. Libraries live in one process-wide registry (the
 * only global state of qkv, behind a mutex): loading a file that is loaded
 * already (the same file by its real path) returns another reference to it.
 * A library is closed when its last reference is released (sessions that
 * loaded it hold references too).
 */
typedef struct qkv_plugin qkv_plugin;

/*
 * Loads the plugin library at `path` with dlopen(RTLD_NOW | RTLD_LOCAL),
 * calls its qkv_plugin_init and copies what it provides. On failure the
 * registry is as it was and the message names the file and the reason
 * (QKV_ERR_PLUGIN unless said): not found (QKV_ERR_IO), not a loadable
 * shared object (with dlerror's text), no qkv_plugin_init, another ABI major
 * version (both versions), the plugin's own init error (its message),
 * invalid or duplicate descriptors (a custom op that a built-in kernel
 * already implements for an overlapping opset range, naming both).
 * *out is a reference: release it with qkv_plugin_release.
 */
QKV_API qkv_status qkv_plugin_load(const char *path, qkv_plugin **out, qkv_error *err);
/* Drops a reference; the library is closed with its last one. NULL: no-op. */
QKV_API void qkv_plugin_release(qkv_plugin *plugin);
/* The plugin's name and version (as it declares them) and its real path. */
QKV_API const char *qkv_plugin_name(const qkv_plugin *plugin);
QKV_API const char *qkv_plugin_version(const qkv_plugin *plugin);
QKV_API const char *qkv_plugin_path(const qkv_plugin *plugin);

/*
 * Loads the default plugins (the QKV_PLUGIN_PATH entries, or qkv's plugin
 * directory) and returns a malloc'd array of references (*n of them; *out
 * NULL when there are none). A session loads them by itself; holding these
 * references keeps the libraries loaded between sessions, which saves a
 * process that creates many sessions one dlopen per session (~10-20 ms for
 * the OpenBLAS backend). On failure nothing stays loaded (errors as
 * qkv_plugin_load). Release with qkv_plugin_release_list.
 */
QKV_API qkv_status qkv_plugin_load_defaults(qkv_plugin ***out, size_t *n, qkv_error *err);
/* Releases each reference of the list, then frees it. NULL: no-op. */
QKV_API void qkv_plugin_release_list(qkv_plugin **list, size_t n);

/* The plugins a session loaded (defaults first, then opts->plugins). */
QKV_API size_t qkv_session_plugin_count(const qkv_session *session);
QKV_API const qkv_plugin *qkv_session_plugin(const qkv_session *session, size_t i);
/* The session's backends in dispatch order ("openblas", "cpu"...), and the
 * one its GEMM service uses ("portable" when none provides one). */
QKV_API size_t qkv_session_backend_count(const qkv_session *session);
QKV_API const char *qkv_session_backend_name(const qkv_session *session, size_t i);
QKV_API const char *qkv_session_gemm_backend(const qkv_session *session);
/* Backend i's one-line description (its qkv_backend.describe, e.g.
 * "OpenBLAS 0.3.21, core Haswell (chosen by qkv from the CPU's AVX2)"; for
 * "cpu", its ISA level): "" when it has none, i is out of range or session is
 * NULL. Lives as long as the session. */
QKV_API const char *qkv_session_backend_describe(const qkv_session *session, size_t i);

/* One node of a session's graph (after constant folding) and where it runs. */
typedef struct qkv_node_info {
    size_t struct_size; /* set by the caller: sizeof(qkv_node_info) */
    const char *name;
    const char *op_type;
    const char *domain;  /* "" for ai.onnx */
    int64_t opset;       /* the model's opset for the domain */
    const char *backend; /* "cpu", "openblas"... */
    const char *origin;  /* "built-in" or the plugin file the kernel came from */
    int shape_inference; /* 0: the kernel has no infer: outputs sized at run time */
} qkv_node_info;

QKV_API size_t qkv_session_node_count(const qkv_session *session);
/* i < qkv_session_node_count: QKV_OK, else QKV_ERR_INVALID_ARGUMENT (also
 * for a NULL out or a struct_size too small for `name`). Strings live as
 * long as the session. */
QKV_API qkv_status qkv_session_node_info(const qkv_session *session, size_t i, qkv_node_info *out);

/* Per-node timing of runs (`qkv run --profile`). Off by default; enabling
 * costs two clock reads per node and run. */
QKV_API qkv_status qkv_context_set_profiling(qkv_context *ctx, int enable, qkv_error *err);
/* One step of the last run with profiling on, in execution order. */
typedef struct qkv_profile_entry {
    size_t struct_size; /* set by the caller: sizeof(qkv_profile_entry) */
    size_t node;        /* index for qkv_session_node_info */
    double ms;          /* wall time of the node's kernel (dynamic nodes: with inference
                  * and output allocation) */
} qkv_profile_entry;
/* Steps of the last profiled run (0 if none). qkv_context_profile:
 * QKV_ERR_INVALID_ARGUMENT for i out of range, a NULL out or a struct_size
 * too small for `node`. */
QKV_API size_t qkv_context_profile_count(const qkv_context *ctx);
QKV_API qkv_status qkv_context_profile(const qkv_context *ctx, size_t i, qkv_profile_entry *out);

/* Memory plan statistics, for the plan of the last run or qkv_plan call. */
typedef struct qkv_plan_stats {
    size_t struct_size;       /* set by the caller: sizeof(qkv_plan_stats) */
    size_t arena_bytes;       /* the arena the plan needs */
    size_t lower_bound_bytes; /* the most bytes live at any one step */
    size_t steps;             /* nodes run per run */
    size_t views;             /* outputs that alias their input (no copy) */
    size_t in_place;          /* outputs written over a dying input */
    size_t planned_values;    /* values computed while planning (shape subgraphs) */
    size_t dynamic_nodes;     /* nodes whose outputs are allocated at run time */
    /* (added for `qkv bench`) the largest scratch one step declares, part of
     * arena_bytes: scratch lives for its step only, so this is the most
     * scratch ever live at once (dynamic nodes' scratch is not counted) */
    size_t scratch_bytes;
} qkv_plan_stats;

/* Plans for the given input shapes (data may be NULL) without running; the
 * plan is cached as by qkv_run. stats may be NULL; when not, its struct_size
 * must cover arena_bytes (else QKV_ERR_INVALID_ARGUMENT before planning).
 * qkv_context_plan_stats: QKV_ERR_INVALID_ARGUMENT when the context has no
 * plan yet or stats is unusable. */
QKV_API qkv_status qkv_plan(qkv_context *ctx, const qkv_tensor *inputs, size_t n_inputs,
                            qkv_plan_stats *stats, qkv_error *err);
QKV_API qkv_status qkv_context_plan_stats(const qkv_context *ctx, qkv_plan_stats *stats);

#ifdef __cplusplus
}
#endif
#endif /* QKV_H */
