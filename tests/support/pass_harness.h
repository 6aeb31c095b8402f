/*
 * pass_harness.h - what the graph-pass tests share: a model loaded with its
 * kernels chosen and initialised and its shapes inferred (what a pass
 * expects), released afterwards, and a registry of the built-in kernels.
 */
#ifndef QKV_PASS_HARNESS_H
#define QKV_PASS_HARNESS_H

#include "ir.h"
#include "registry.h"

/* Loads the model at path, picks every node's kernel from reg, runs the
 * inits and infers shapes. Fails the current test on any error. */
qkv_model *ph_prepare(const char *path, qkv_registry *reg);
/* Destroys the nodes' kernel states, then the model. */
void ph_release(qkv_model *model);
/* A registry holding the built-in kernels. */
qkv_registry *ph_builtins(void);

#endif /* QKV_PASS_HARNESS_H */
