/*
 * registry.h - the kernels a session can dispatch to.
 *
 * A registry holds copies of kernel descriptors, each with the name of where
 * it came from ("built-in" or a plugin's path) for messages, grouped into
 * backends (backend 0 is "cpu"). Built-in kernels go through the same
 * qkv_registry_add as plugin kernels. A session owns one registry; a loaded
 * plugin library keeps one too (its validated copy of what it provides).
 */
#ifndef QKV_REGISTRY_H
#define QKV_REGISTRY_H

#include "qkv.h"
#include "qkv_plugin.h"

typedef struct qkv_registry qkv_registry;

/*
 * A backend of a registry (qkv_plugin.h's qkv_backend, copied). Backend 0 is
 * always "cpu" (priority 0, origin "built-in"): the built-in kernels and
 * plugins' plain kernels. Each kernel belongs to exactly one backend.
 */
typedef struct qkv_registry_backend {
    char *name;
    int32_t priority;
    char *origin; /* "built-in" or the plugin's path */
    void *user;
    int (*supports)(void *user, const qkv_host_api *host, const qkv_node_ctx *node);
    qkv_status (*gemm)(void *user, const qkv_host_api *host, void *host_ctx, const qkv_gemm *g);
    const char *(*describe)(void *user); /* NULL: none (or a 1.0 plugin) */
} qkv_registry_backend;

/* An empty registry with the backend "cpu" (no kernels yet); NULL when out
 * of memory. */
qkv_registry *qkv_registry_create(void);
void qkv_registry_destroy(qkv_registry *reg);

/*
 * Copies `kernel` (and its strings) into backend 0 ("cpu"). Refuses, leaving
 * the registry unchanged: a descriptor whose struct_size is too small for the
 * 1.0 fields or whose ABI major differs (QKV_ERR_PLUGIN, both versions in the
 * message); missing op_type or compute, bad opset or arity ranges
 * (QKV_ERR_PLUGIN); a kernel whose (domain, op_type) opset range intersects
 * one already in the same backend (QKV_ERR_PLUGIN, naming both origins).
 * Pointers returned by qkv_registry_find* before an add may be invalidated.
 */
qkv_status qkv_registry_add(qkv_registry *reg, const qkv_kernel *kernel, const char *origin,
                            qkv_error *err);
/* The same into backend `backend` (an index < qkv_registry_backend_count). */
qkv_status qkv_registry_add_to(qkv_registry *reg, size_t backend, const qkv_kernel *kernel,
                               const char *origin, qkv_error *err);

/*
 * Copies a backend descriptor (read as far as its struct_size covers) and its
 * kernels. Refuses, leaving the registry unchanged (QKV_ERR_PLUGIN, the
 * message naming `origin`): a NULL or too small descriptor, another ABI
 * major (both versions in the message), an empty or malformed name, "cpu",
 * a name the registry has already (naming both origins), any kernel
 * qkv_registry_add_to refuses. *index (may be NULL) gets the new backend's.
 */
qkv_status qkv_registry_add_backend(qkv_registry *reg, const qkv_backend *backend,
                                    const char *origin, size_t *index, qkv_error *err);

/* Adds every built-in kernel (ops/op_families.h) to "cpu". */
qkv_status qkv_registry_add_builtins(qkv_registry *reg, qkv_error *err);

/* The "cpu" kernel for a node of (domain, op_type) in a model importing
 * `opset` of that domain: among kernels with since <= opset <= until (until 0
 * = open), the newest since_version. NULL if none. *origin (may be NULL) gets
 * the registrant's name. */
const qkv_kernel *qkv_registry_find(const qkv_registry *reg, const char *domain,
                                    const char *op_type, int64_t opset, const char **origin);
/* The same within backend `backend`. */
const qkv_kernel *qkv_registry_find_in(const qkv_registry *reg, size_t backend, const char *domain,
                                       const char *op_type, int64_t opset, const char **origin);

/* Number of kernels and the i-th one (for listings). */
size_t qkv_registry_count(const qkv_registry *reg);
const qkv_kernel *qkv_registry_at(const qkv_registry *reg, size_t i, const char **origin);

/* Backends: count, the i-th one (NULL when out of range), and the backend of
 * a kernel pointer this registry returned (-1 when it is not one of its). */
size_t qkv_registry_backend_count(const qkv_registry *reg);
const qkv_registry_backend *qkv_registry_backend_at(const qkv_registry *reg, size_t i);
int32_t qkv_registry_kernel_backend(const qkv_registry *reg, const qkv_kernel *kernel);
/* How many kernels backend `backend` has (0 for a GEMM-only backend, or an
 * index out of range). */
size_t qkv_registry_backend_kernel_count(const qkv_registry *reg, size_t backend);

/* "" for "ai.onnx" and "", else domain itself. */
const char *qkv_domain_normalize(const char *domain);

#endif /* QKV_REGISTRY_H */
