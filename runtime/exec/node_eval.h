/*
 * node_eval.h - running one node on its own, outside a plan: used by
 * constant folding, by values computed while planning, by nodes whose output
 * shapes are only known at run time, and by the kernel tests.
 */
#ifndef QKV_NODE_EVAL_H
#define QKV_NODE_EVAL_H

#include "ir.h"
#include "kernel_host.h"

/* Makes k the kernel of node n (of graph g, whose static types init may
 * read) and runs k's init into n->kernel_state. On failure n->kernel is NULL
 * (no state was made: nothing to destroy) and err says why: the kernel's
 * message, or "NODE: init failed" when it gave none. */
qkv_status qkv_kernel_init_node(const qkv_kernel *k, qkv_ir_node *n, const qkv_ir_graph *g,
                                qkv_error *err);

/* Checks the node's arity and the input dtypes against the kernel's
 * declaration. QKV_ERR_INVALID_MODEL (arity) or QKV_ERR_TYPE, naming the node
 * and input. A dtype of UNDEFINED (unknown yet) passes. */
qkv_status qkv_kernel_check_io(const qkv_kernel *k, const qkv_ir_node *node,
                               const qkv_tensor *inputs, qkv_error *err);

/* Runs the kernel's infer on `inputs` into `outputs` (dtype/rank/dims). */
qkv_status qkv_kernel_infer(const qkv_kernel *k, void *state, qkv_host_ctx *hctx,
                            const qkv_tensor *inputs, size_t n_inputs, qkv_tensor *outputs,
                            size_t n_outputs);

/*
 * Evaluates a node: infer (outputs must come out fully known, except those
 * of a node with subgraphs, whose compute sizes them with host->output_alloc),
 * prepare, allocate outputs and scratch with malloc, compute. On success every
 * present output has data malloc'd (free with qkv_tensor_data_free); on
 * failure no output holds memory.
 */
qkv_status qkv_node_eval(const qkv_kernel *k, void *state, qkv_host_ctx *hctx,
                         const qkv_tensor *inputs, size_t n_inputs, qkv_tensor *outputs,
                         size_t n_outputs);

/* qkv_tensor_data_free (loader.h) frees what qkv_node_eval allocated. */
#include "loader.h"

#endif /* QKV_NODE_EVAL_H */
