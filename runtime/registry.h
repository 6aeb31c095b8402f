/*
 * registry.h - the kernels a session can dispatch to.
 *
 * A registry holds copies of kernel descriptors, each with the name of where
 * it came from ("built-in" or a plugin's path) for messages. Built-in kernels
 * go through the same qkv_registry_add as plugin kernels.
 */
#ifndef QKV_REGISTRY_H
#define QKV_REGISTRY_H

#include "qkv.h"

typedef struct qkv_registry qkv_registry;

/* An empty registry; NULL when out of memory. */
qkv_registry *qkv_registry_create(void);
void qkv_registry_destroy(qkv_registry *reg);

/*
 * Copies `kernel` (and its strings) into the registry. Refuses, leaving the
 * registry unchanged: a descriptor whose struct_size is too small for the
 * 1.0 fields or whose ABI major differs (QKV_ERR_PLUGIN, both versions in the
 * message); missing op_type or compute, bad opset or arity ranges
 * (QKV_ERR_PLUGIN); a kernel whose (domain, op_type) opset range intersects
 * one already registered (QKV_ERR_PLUGIN, naming both origins).
 */
qkv_status qkv_registry_add(qkv_registry *reg, const qkv_kernel *kernel, const char *origin,
                            qkv_error *err);

/* Adds every built-in kernel (ops/op_families.h). */
qkv_status qkv_registry_add_builtins(qkv_registry *reg, qkv_error *err);

/* The kernel for a node of (domain, op_type) in a model importing `opset` of
 * that domain: among kernels with since <= opset <= until (until 0 = open),
 * the newest since_version. NULL if none. *origin (may be NULL) gets the
 * registrant's name. */
const qkv_kernel *qkv_registry_find(const qkv_registry *reg, const char *domain,
                                    const char *op_type, int64_t opset, const char **origin);

/* Number of kernels and the i-th one (for listings). */
size_t qkv_registry_count(const qkv_registry *reg);
const qkv_kernel *qkv_registry_at(const qkv_registry *reg, size_t i, const char **origin);

/* "" for "ai.onnx" and "", else domain itself. */
const char *qkv_domain_normalize(const char *domain);

#endif /* QKV_REGISTRY_H */
