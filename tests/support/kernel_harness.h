/*
 * kernel_harness.h - run one built-in kernel on hand-made tensors, the way
 * the runtime would (init -> check -> infer -> prepare -> compute -> destroy),
 * without a model file. For kernel unit tests.
 *
 *   kh_node *n = kh_node_create("Softmax", 13, 1, 1);
 *   kh_attr_int(n, "axis", -1);
 *   qkv_tensor x = kh_f32(2, (int64_t[]){2, 3}, xs), y;
 *   qkv_error err;
 *   cr_assert_eq(kh_run(n, &x, &y, &err), QKV_OK, "%s", err.message);
 *   ... kh_free_outputs(&y, 1); kh_node_destroy(n);
 */
#ifndef QKV_KERNEL_HARNESS_H
#define QKV_KERNEL_HARNESS_H

#include <stddef.h>
#include <stdint.h>

#include "qkv.h"

typedef struct kh_node kh_node;

/* A node of the default domain ("") with op_type at the model opset `opset`,
 * n_inputs input slots and n_outputs outputs, named "test_node". */
kh_node *kh_node_create(const char *op_type, int64_t opset, size_t n_inputs, size_t n_outputs);
/* Same, in another domain. */
kh_node *kh_node_create_in(const char *domain, const char *op_type, int64_t opset, size_t n_inputs,
                           size_t n_outputs);
void kh_node_destroy(kh_node *n);

void kh_attr_int(kh_node *n, const char *name, int64_t v);
void kh_attr_float(kh_node *n, const char *name, float v);
void kh_attr_string(kh_node *n, const char *name, const char *v);
void kh_attr_ints(kh_node *n, const char *name, const int64_t *v, size_t count);
void kh_attr_floats(kh_node *n, const char *name, const float *v, size_t count);
void kh_attr_strings(kh_node *n, const char *name, const char *const *v, size_t count);
/* The tensor's data is copied (t->data_bytes bytes). */
void kh_attr_tensor(kh_node *n, const char *name, const qkv_tensor *t);
/* Marks input k as omitted (an optional input given as ""). */
void kh_omit_input(kh_node *n, size_t k);

/*
 * Runs the node. inputs: n_inputs tensors (omitted ones are ignored).
 * outputs: n_outputs tensors, filled with malloc'd data on success.
 * Inputs' data is visible to infer (as for constants) unless
 * kh_hide_input_values(n) was called (then infer sees data NULL, as for
 * runtime values, and must still produce a known shape for a non
 * data-dependent op). Returns the first failing phase's status with its message.
 */
qkv_status kh_run(kh_node *n, const qkv_tensor *inputs, qkv_tensor *outputs, qkv_error *err);
void kh_hide_input_values(kh_node *n);
/*
 * Runs only check, init and infer on `inputs` exactly as given (data NULL: the
 * value is not known; dims -1 / rank -1: unknown), as the session does before
 * values are known, so a test can see what infer leaves unknown.
 * outputs: n_outputs tensors, given dtype/rank/dims only (data NULL, nothing
 * to free). Returns the first failing phase's status with its message.
 */
qkv_status kh_infer(kh_node *n, const qkv_tensor *inputs, qkv_tensor *outputs, qkv_error *err);
/*
 * Runs a one-output node the way the planner runs a QKV_KERNEL_INPLACE kernel:
 * check, init, infer, prepare, compute, with *output's data being input
 * `alias`'s buffer (output->data == inputs[alias].data afterwards; nothing to
 * free). QKV_ERR_INVALID_ARGUMENT if the kernel does not declare output 0
 * in place over input `alias` (or the node has more than one output);
 * QKV_ERR_SHAPE if the inferred output is not exactly that input's size;
 * otherwise the first failing phase's status with its message.
 */
qkv_status kh_run_inplace(kh_node *n, size_t alias, const qkv_tensor *inputs, qkv_tensor *output,
                          qkv_error *err);
/* Runs with a pool of `threads` threads (default 1). */
void kh_set_threads(kh_node *n, size_t threads);
void kh_free_outputs(qkv_tensor *outputs, size_t n);

/* Tensor views of caller data (data_bytes computed). dims may be NULL for rank 0. */
qkv_tensor kh_tensor(qkv_dtype dtype, int32_t rank, const int64_t *dims, void *data);
qkv_tensor kh_f32(int32_t rank, const int64_t *dims, float *data);
qkv_tensor kh_i64(int32_t rank, const int64_t *dims, int64_t *data);

/* For reference loops: the flat index into `in` of output element `i` when
 * `in` is broadcast (numpy rules) to `out`'s shape (both known). */
size_t kh_broadcast_index(size_t i, const qkv_tensor *out, const qkv_tensor *in);

/* Fills buf with n deterministic pseudo-random floats in [-1, 1). */
void kh_fill_random(float *buf, size_t n, uint32_t seed);

#endif /* QKV_KERNEL_HARNESS_H */
