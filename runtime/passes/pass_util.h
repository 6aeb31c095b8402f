/*
 * pass_util.h - what the rewrite passes (fuse_gelu.c, fuse_matmul.c,
 * fuse_attention*.c) share:
 * graph queries for matching, reading small constants, and creating,
 * initialising and removing nodes.
 */
#ifndef QKV_PASS_UTIL_H
#define QKV_PASS_UTIL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "ir.h"
#include "registry.h"

/* n is op `op` of the default (ai.onnx) domain. */
bool qkv_pass_is_op(const qkv_ir_node *n, const char *op);

/* The live node producing value v, or NULL (inputs, constants, v < 0). */
const qkv_ir_node *qkv_pass_producer(const qkv_ir_graph *g, int32_t v);

/* The index of the node reading v when that is v's only use (one input
 * slot of one live node) and v is not a graph output; else -1. */
int32_t qkv_pass_sole_consumer(const qkv_ir_graph *g, int32_t v);

/* Constant v's type, shape and data (borrowed from the graph): an
 * initializer or folded value, or (constant folding off) the output of a
 * live Constant node with a `value` tensor. false for anything else. */
bool qkv_pass_const_tensor(const qkv_ir_graph *g, int32_t v, qkv_tensor *out);

/* qkv_pass_const_tensor would succeed. */
bool qkv_pass_is_const(const qkv_ir_graph *g, int32_t v);

/*
 * The value of constant v (as qkv_pass_is_const) when it holds exactly one
 * element of type float, float16, bfloat16 or double, and has rank <=
 * max_rank; false otherwise.
 */
bool qkv_pass_const_scalar(const qkv_ir_graph *g, int32_t v, int32_t max_rank, double *out);

/* |got - want| <= rel |want|: a constant that is `want` as written in a
 * model of dtype t (rel covers the rounding of float16/bfloat16 constants;
 * 1e-6 for float and double). */
bool qkv_pass_const_near(double got, double want, qkv_dtype t);

/*
 * Adds node "name" (op of domain, created with `opset` whatever the model
 * imports) reading inputs[0..n_inputs) and writing the existing value
 * `output`. Returns its index, or -1 when out of memory (graph unchanged).
 */
int32_t qkv_pass_add_node(qkv_ir_graph *g, const char *name, const char *op, const char *domain,
                          int64_t opset, const int32_t *inputs, size_t n_inputs, int32_t output);

/* Adds a value "name" (or "name_N" when taken) of the given kind, its type
 * and shape unset. Returns its id or -1 when out of memory. */
int32_t qkv_pass_add_value(qkv_ir_graph *g, const char *name, qkv_value_kind kind);

/* Adds a constant value "name" (or "name_N" when taken) of the given type
 * and shape holding a copy of `bytes` of data. Returns its id or -1 when out
 * of memory. */
int32_t qkv_pass_add_const(qkv_ir_graph *g, const char *name, qkv_dtype dtype, int32_t rank,
                           const int64_t *dims, const void *data, size_t bytes);

/* Append a STRING, INT, FLOAT or INTS (n values) attribute to node idx;
 * false when out of memory (the node's attributes then stay as they were). */
bool qkv_pass_add_string_attr(qkv_ir_graph *g, int32_t idx, const char *name, const char *value);
bool qkv_pass_add_int_attr(qkv_ir_graph *g, int32_t idx, const char *name, int64_t value);
bool qkv_pass_add_float_attr(qkv_ir_graph *g, int32_t idx, const char *name, float value);
bool qkv_pass_add_ints_attr(qkv_ir_graph *g, int32_t idx, const char *name, const int64_t *values,
                            size_t n);

/*
 * Chooses node idx's kernel from reg ("cpu" backend; qkv_backends_assign may
 * move it later) and runs its init. Errors: QKV_ERR_INTERNAL when reg has no
 * kernel; the init's status, the message prefixed "WHAT: ". On error the
 * node has no kernel and no state.
 */
qkv_status qkv_pass_init_node(qkv_ir_graph *g, int32_t idx, const qkv_registry *reg,
                              const char *what, qkv_error *err);

/* After a rewrite (graph finalized): removes the Constant nodes producing
 * any of values[0..n) that nothing reads any more, and finalizes again. */
void qkv_pass_drop_unused_constant_nodes(qkv_ir_graph *g, const int32_t *values, size_t n);

/* Destroys node n's kernel state (the kernel pointer stays) and marks it
 * dead; qkv_graph_finalize removes it. */
void qkv_pass_kill_node(qkv_ir_node *n);

/* One rewrite attempt of a pass at node idx (whose op is the pass's anchor):
 * sets *rewrote when it rewrote the graph (and finalized it), leaves it
 * false when the pattern does not match there. A status other than QKV_OK
 * stops the pass. */
typedef qkv_status (*qkv_pass_try_fn)(qkv_ir_graph *g, const qkv_registry *reg, int32_t idx,
                                      bool *rewrote, qkv_error *err);

/*
 * The driver every rewrite pass shares: tries `try_at` at each node of op
 * `anchor_op` in topological order; after a rewrite (which rebuilt the
 * order) it scans again from the start, until a scan rewrites nothing.
 * *count gets the rewrites made (also on error). Returns the first error.
 */
qkv_status qkv_pass_rewrite_all(qkv_ir_graph *g, const qkv_registry *reg, const char *anchor_op,
                                qkv_pass_try_fn try_at, size_t *count, qkv_error *err);

/* The permutation of Transpose node n for an input of rank `rank` into
 * perm (its perm attribute, or the reversed dims when it has none); false
 * when that is not a permutation of 0..rank-1. */
bool qkv_pass_transpose_perm(const qkv_ir_node *n, int32_t rank, int64_t *perm);

/* Transpose(x, perm), x of dims `dims` (-1 unknown), moves only dims known to
 * be 1: the other dims keep their order, so every element keeps its offset
 * and the output is x's bytes under the permuted shape (a view). */
bool qkv_pass_transpose_is_view(const int64_t *dims, int32_t rank, const int64_t *perm);

#endif /* QKV_PASS_UTIL_H */
