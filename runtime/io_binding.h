/*
 * io_binding.h - runs with inputs bound by name and outputs written into
 * caller-owned buffers (qkv_run_io), between the executor and io_binding.c.
 */
#ifndef QKV_IO_BINDING_H
#define QKV_IO_BINDING_H

#include "session.h"

/*
 * Runs the context (executor.c) on inputs in model order. bound is NULL, or
 * has one entry per model output: the caller's destination tensor, or NULL
 * when that output stays in the context. The session's log sink is current
 * while it runs.
 */
qkv_status qkv_context_run(qkv_context *ctx, const qkv_tensor *inputs, size_t n_inputs,
                           qkv_tensor *const *bound, qkv_error *err);
/* The session a context runs. */
qkv_session *qkv_context_session(const qkv_context *ctx);

/*
 * After the values of a run are bound (vals: every value's tensor for this
 * run, with its bytes) and before any step runs: checks each bound output
 * against the plan (dtype, dims, bytes), rejects overlaps (between bound
 * outputs, and with inputs unless it is the Concat prefix case of qkv_run_io)
 * and points the arena buffer of each bound output at the caller's memory,
 * so its producer writes there. Errors name the output; nothing is written.
 */
qkv_status qkv_io_bind_outputs(const qkv_exec_plan *plan, const qkv_ir_graph *g, qkv_tensor *vals,
                               const qkv_tensor *inputs, qkv_tensor *const *bound, qkv_error *err);
/*
 * After the steps: copies each bound output that was not computed in the
 * caller's buffer into it (checking the dims of data-dependent outputs,
 * QKV_ERR_SHAPE on a mismatch).
 */
qkv_status qkv_io_finish_outputs(const qkv_exec_plan *plan, const qkv_ir_graph *g,
                                 const qkv_tensor *vals, qkv_tensor *const *bound, qkv_error *err);

#endif /* QKV_IO_BINDING_H */
