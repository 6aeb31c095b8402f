/*
 * control_flow.h - If, Loop, Scan and SequenceMap: the kernels that run
 * subgraphs.
 *
 * They use the kernel descriptor like every op (so arity and type checks,
 * inference, planning and steps treat them as any node) but live in the
 * runtime, not in ops/: their compute runs bodies in the run context's
 * frames (frame.h, reached through the runtime's qkv_host_ctx), keeps
 * loop-carried values and scan outputs in work buffers that persist across
 * runs, and so never allocates per iteration. docs/architecture.md
 * ("Subgraphs and control flow") says why they are not behind the plugin ABI.
 *
 * Their infer gives output types and shapes from the bodies' statically
 * inferred outputs where those are fixed, and leaves data-dependent dims
 * unknown: the node is then planned as dynamic and compute sizes those
 * outputs with host->output_alloc.
 */
#ifndef QKV_CONTROL_FLOW_H
#define QKV_CONTROL_FLOW_H

#include <stdbool.h>
#include <stddef.h>

#include "frame.h"
#include "ir.h"
#include "kernel_host.h"
#include "qkv_plugin.h"

/* The If, Loop, Scan and SequenceMap kernels (*count pointers), for the
 * "cpu" backend. */
const qkv_kernel *const *qkv_control_flow_kernels(size_t *count);

/* The descriptors (control_if.c, control_loop.c, control_scan.c), one per
 * opset version of each op (If and Loop 1, 11, 13, 16, 19; Scan 8, 9, 11,
 * 16, 19), so messages name the version the model uses. */
#define QKV_CF_VERSIONS 5
extern const qkv_kernel qkv_cf_if_kernels[QKV_CF_VERSIONS];
extern const qkv_kernel qkv_cf_loop_kernels[QKV_CF_VERSIONS];
extern const qkv_kernel qkv_cf_scan_kernels[QKV_CF_VERSIONS];
/* SequenceMap-17 (control_seqmap.c). */
extern const qkv_kernel qkv_cf_seqmap_kernel;

/* ---- what the three share (control_flow.c) ------------------------------ */

/* The GRAPH attribute `name` of the node being initialised: *out NULL and
 * QKV_ERR_INVALID_MODEL naming the node when absent or not a graph. */
qkv_status qkv_cf_graph_attr(const qkv_node_ctx *node, const char *name, const qkv_ir_graph **out);

/* The statically inferred type and shape of value id of graph g as a tensor
 * (no data). */
void qkv_cf_static_type(const qkv_ir_graph *g, int32_t id, qkv_tensor *out);

/* A carried value's final shape (the initial value's after zero
 * iterations, the body output's after one or more): the dims the initial
 * value and the body output's static shape agree on, -1 elsewhere (rank -1
 * when the ranks differ or are unknown). */
void qkv_cf_merge_shape(const qkv_tensor *initial, const qkv_tensor *last, qkv_tensor *out);

/* Output k gets src's type, shape and bytes (host->output_alloc, then a
 * copy). QKV_ERR_UNSUPPORTED for strings; output_alloc's errors. */
qkv_status qkv_cf_set_output(qkv_kernel_io *io, size_t k, const qkv_tensor *src);

/* The single element of a bool tensor t, or an error naming `what`
 * (QKV_ERR_TYPE for another type, QKV_ERR_SHAPE for another count). */
qkv_status qkv_cf_bool_scalar(qkv_kernel_io *io, const qkv_tensor *t, const char *what, bool *out);

/* The runtime's host context behind io (control-flow kernels only run in
 * the runtime). */
qkv_host_ctx *qkv_cf_host(qkv_kernel_io *io);

/*
 * Loop-carried values across iterations without allocating: `n` values are
 * copied into one of two work buffers of the body's frame (slots base and
 * base + 1, alternating with `parity`), 64-byte aligned each, and
 * vals[0..n) are pointed at the copies. dtypes[k] (when not UNDEFINED) is the
 * type value k must keep: another is QKV_ERR_TYPE naming `what` and k.
 * kinds[k] (NULL: all tensors) other than QKV_KIND_TENSOR skips value k:
 * a sequence or optional is carried by qkv_cf_carry_value.
 */
qkv_status qkv_cf_carry(qkv_kernel_io *io, const qkv_ir_graph *body, size_t base, int parity,
                        const qkv_tensor *src, const qkv_dtype *dtypes, const qkv_type_kind *kinds,
                        size_t n, qkv_tensor *vals, const char *what);

/* The bytes of t's elements (0 for an unknown shape). */
size_t qkv_cf_bytes(const qkv_tensor *t);

/* ---- sequences and optionals leaving a subgraph (control_values.c) ------- */

/* The kind of input k of io (a tensor when the host gives no kinds). */
qkv_type_kind qkv_cf_input_kind(const qkv_kernel_io *io, size_t k);

/* The kind of output k of io (a tensor when the host gives no kinds). */
qkv_type_kind qkv_cf_output_kind(const qkv_kernel_io *io, size_t k);

/* True when no output after k (of n) is the same value as outs[k]: a
 * sequence or optional given twice is copied at its first uses and moved
 * at its last. */
bool qkv_cf_last_use(const qkv_tensor *outs, size_t k, size_t n);

/* The kind of `body`'s output k. */
qkv_type_kind qkv_cf_body_output_kind(const qkv_ir_graph *body, size_t k);

/*
 * Output k of io gets src, a value of kind `from` (a tensor, or the box in
 * src->data of a sequence or optional, as qkv_body_run_values gives them):
 * a tensor output as qkv_cf_set_output (the element of an optional
 * tensor), a sequence or optional output through its box. With `move`, a
 * box that is not borrowed gives up its contents (qkv_box_move: no copy,
 * no allocation); otherwise they are copied. An output the node omits
 * (an empty name) is left alone. Errors name output k:
 * QKV_ERR_TYPE for a kind or element type the output cannot take,
 * QKV_ERR_INVALID_ARGUMENT for an empty optional where the output is not
 * an optional, and qkv_cf_set_output's.
 */
qkv_status qkv_cf_set_value(qkv_kernel_io *io, size_t k, const qkv_tensor *src, qkv_type_kind from,
                            bool move);

/*
 * Loop-carried sequence or optional: dst (a box of qkv_body_boxes, given
 * the kind and element type of the body's output) takes the body output
 * src of that kind (its box in src->data), moved when `move`, and *val
 * becomes the tensor that stands for it as the next iteration's input
 * (element type, rank -1, data dst). Errors as qkv_box_take, naming `what`
 * and k.
 */
qkv_status qkv_cf_carry_value(qkv_kernel_io *io, struct qkv_box *dst, qkv_type_kind kind,
                              qkv_dtype elem, const qkv_tensor *src, bool move, qkv_tensor *val,
                              const char *what, size_t k);

#endif /* QKV_CONTROL_FLOW_H */
