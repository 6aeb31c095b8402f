/*
 * passes.h - the graph passes session creation runs over a loaded model
 * (runtime/session.c calls them in order): type and shape inference,
 * constant folding, the fusion rewrites, and the packing of constant
 * weights by their kernels.
 *
 * A rewrite pass changes a finalized graph in place: it adds nodes (kernels
 * chosen from the session's registry and initialised), marks the nodes it
 * replaces dead after destroying their kernel state, and finalizes the graph
 * again. Types and shapes of the values it creates are left for
 * qkv_infer_graph.
 */
#ifndef QKV_PASSES_H
#define QKV_PASSES_H

#include <stddef.h>

#include "ir.h"
#include "qkv.h"
#include "registry.h"

/* ---- inference and folding ------------------------------------------------ */

/* Static type and shape inference over the graph (infer.c): each node's
 * kernel infers its outputs from what is known of its inputs (unknown dims
 * stay -1). Errors are the kernels', naming the node. */
qkv_status qkv_infer_graph(qkv_ir_graph *g, qkv_error *err);

/* Gathers a node's input tensors as known statically (dtype/rank/dims from the
 * values, data for constants). ins has node->n_inputs entries. */
void qkv_node_static_inputs(const qkv_ir_graph *g, const qkv_ir_node *node, qkv_tensor *ins);

/* Constant folding (fold.c): evaluates nodes whose inputs are all constants.
 * *folded gets the number of nodes removed. */
qkv_status qkv_fold_constants(qkv_ir_graph *g, size_t *folded, qkv_error *err);

/* ---- fusion ----------------------------------------------------------------- */

/* The opset the fused Attention nodes are created with (set on the node,
 * whatever the model imports). */
#define QKV_FUSED_ATTENTION_OPSET 23

/*
 * Attention fusion (fuse_attention.c): rewrites each
 *
 *   MatMul(Q, Kᵀ) -> [Mul|Div by scalar constants] -> [mask: Add(float) or
 *   Where(bool, ., -inf)]... -> Softmax(last axis) -> [Identity|Dropout] ->
 *   MatMul(., V)
 *
 * over float32 rank-3 or rank-4 tensors into one ai.onnx Attention node
 * (opset QKV_FUSED_ATTENTION_OPSET) whose output replaces the last MatMul's,
 * when the rewrite is equivalent (the conditions are listed at the top of
 * fuse_attention.c). Nodes only the replaced ones used (a Transpose of K, a
 * Sqrt of the scale) are removed too.
 *
 * Requires a finalized graph whose values carry the inferred dtypes and
 * shapes, and nodes whose kernels are resolved and initialised (nodes with
 * kernel NULL are fine: nothing to destroy). Fuses nothing when `reg` has no
 * Attention kernel for opset QKV_FUSED_ATTENTION_OPSET.
 *
 * *fused gets the number of Attention nodes created (also on error: those
 * created before it). Errors: QKV_ERR_OUT_OF_MEMORY; a new node's kernel
 * failing init (its status, message prefixed "attention fusion: "). On error
 * the graph is still a valid, equivalent graph, and every node in it has its
 * kernel state.
 */
qkv_status qkv_pass_fuse_attention(qkv_ir_graph *g, const qkv_registry *reg, size_t *fused,
                                   qkv_error *err);

/*
 * GELU fusion (fuse_gelu.c): rewrites each erf form of GELU,
 * x 0.5 (1 + Erf(x / sqrt 2)) in the variants listed at the top of
 * fuse_gelu.c, over float32 or float16, into one ai.onnx Gelu node (opset
 * 20, set on the node) when that is equivalent. Same requirements on the
 * graph as qkv_pass_fuse_attention; fuses nothing when `reg` has no Gelu-20
 * kernel. *fused gets the number of Gelu nodes created (also on error).
 * Errors: QKV_ERR_OUT_OF_MEMORY; the new node's init failing (its status,
 * message prefixed "gelu fusion: "). On error the graph is still valid and
 * equivalent, every node with its kernel state.
 */
qkv_status qkv_pass_fuse_gelu(qkv_ir_graph *g, const qkv_registry *reg, size_t *fused,
                              qkv_error *err);

/*
 * MatMul fusion (fuse_matmul.c): rewrites each float32 MatMul(A, B) with B
 * of rank 2 and its following [Add(bias)] [Relu | Gelu] [Add(residual)]
 * (the conditions are listed at the top of fuse_matmul.c) into one
 * qkv.FusedMatMul node (opset 1, ops/fused_matmul.c). Run after GELU fusion,
 * whose Gelu nodes it takes in. Same requirements on the graph as
 * qkv_pass_fuse_attention; fuses nothing when `reg` has no qkv.FusedMatMul-1
 * kernel. *fused gets the number of FusedMatMul nodes created (also on
 * error). Errors: QKV_ERR_OUT_OF_MEMORY; the new node's init failing (its
 * status, message prefixed "matmul fusion: "). On error the graph is still
 * valid and equivalent, every node with its kernel state.
 */
qkv_status qkv_pass_fuse_matmul(qkv_ir_graph *g, const qkv_registry *reg, size_t *fused,
                                qkv_error *err);

/*
 * Transpose views (transpose_view.c): rewrites each Transpose that moves
 * only dims of size 1 (known statically; the conditions are listed at the
 * top of transpose_view.c) into a Reshape with a constant shape, which the
 * planner runs as a view. A Reshape read only by that Transpose is folded
 * into the new one. Same requirements on the graph as
 * qkv_pass_fuse_attention; rewrites nothing when `reg` has no Reshape-14
 * kernel. *rewritten gets the number of Transposes rewritten (also on
 * error). Errors: QKV_ERR_OUT_OF_MEMORY; the new node's init failing (its
 * status, message prefixed "transpose view: "). On error the graph is
 * still valid and equivalent, every node with its kernel state.
 */
qkv_status qkv_pass_transpose_view(qkv_ir_graph *g, const qkv_registry *reg, size_t *rewritten,
                                   qkv_error *err);

/* ---- prepacked constants ------------------------------------------------- */

typedef struct qkv_prepack_stats {
    size_t packed_bytes;   /* what the kernels said their packed copies hold */
    size_t released_bytes; /* original constant bytes freed */
} qkv_prepack_stats;

/* Constant inputs transformed once per session by their kernels
 * (qkv_kernel.prepack; prepack.c): calls every live node's prepack (kernels
 * and states must be final: after the passes and backend assignment), then
 * releases each constant that all its readers packed. On error the message
 * names the node; kernels' states stay valid for destroy. */
qkv_status qkv_prepack_constants(qkv_ir_graph *g, size_t memory_limit, qkv_prepack_stats *stats,
                                 qkv_error *err);

#endif /* QKV_PASSES_H */
