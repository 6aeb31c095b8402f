/*
 * backend.h - a session's plugins and backends: which libraries it loaded,
 * the order in which backends are asked for a node, the node's assignment,
 * and the session's GEMM service.
 *
 * Session creation (session.c) calls, in order:
 *   qkv_backends_setup   load the plugins, merge them into the registry,
 *                        order the backends (priority, or opts->backends)
 *   qkv_backends_find    per node: a provisional kernel (the first backend in
 *                        order that has one), so init and inference can run
 *   qkv_backends_assign  after inference, with input types known: the first
 *                        backend in order whose kernel exists and whose
 *                        supports() accepts the node; nodes that move get
 *                        the new kernel's init (and the graph is re-inferred)
 * and qkv_backends_destroy last (after the kernel states are destroyed: it
 * may close the libraries their callbacks live in).
 */
#ifndef QKV_BACKEND_H
#define QKV_BACKEND_H

#include <stdbool.h>

#include "kernel_host.h"
#include "plugin.h"
#include "session.h"

typedef struct qkv_session_backends {
    size_t n_plugins;
    qkv_plugin **plugins; /* references, in load order */
    size_t n_order;
    size_t *order;          /* registry backend indices, most preferred first */
    qkv_gemm_provider gemm; /* gemm.gemm NULL: portable */
    const char *gemm_name;  /* "portable" or the providing backend's name */
    char cpu_describe[96];  /* the built-in "cpu" backend's describe string */
} qkv_session_backends;

/* Loads the default plugins (unless opts->no_default_plugins) and
 * opts->plugins into s->backends, merges them into s->registry (which holds
 * the built-ins already) and orders the backends. Errors name the plugin
 * file; an unknown name in opts->backends is QKV_ERR_INVALID_ARGUMENT
 * listing the available ones. On failure what was set up stays in s for
 * qkv_session_destroy. opts may be NULL; session.c passes its own complete
 * copy (&s->opts), never the caller's struct, whose struct_size may stop
 * short of the plugin fields. */
qkv_status qkv_backends_setup(qkv_session *s, const qkv_session_options *opts, qkv_error *err);

/* The provisional kernel of node n: from the first backend in order that
 * has one. NULL if none. */
const qkv_kernel *qkv_backends_find(const qkv_session *s, const qkv_ir_node *n);
/* The same for node n of graph g (the main graph or one of its subgraphs). */
const qkv_kernel *qkv_backends_find_in_graph(const qkv_session *s, const qkv_ir_graph *g,
                                             const qkv_ir_node *n);

/* Final assignment (see above). QKV_ERR_UNSUPPORTED naming the node and the
 * backends asked when every backend with a kernel declines; init errors of a
 * new kernel as from init. */
qkv_status qkv_backends_assign(qkv_session *s, qkv_error *err);
/* The same for graph g (the main graph or one of its subgraphs). */
qkv_status qkv_backends_assign_graph(qkv_session *s, qkv_ir_graph *g, qkv_error *err);

/* Releases the plugins and frees b. NULL: no-op. */
void qkv_backends_destroy(qkv_session_backends *b);

/* The GEMM provider run contexts put in their qkv_host_ctx (NULL: portable). */
const qkv_gemm_provider *qkv_session_gemm(const qkv_session *s);

/* The name of the backend node n's kernel belongs to ("cpu" if unknown). */
const char *qkv_session_node_backend(const qkv_session *s, const qkv_ir_node *n);

#endif /* QKV_BACKEND_H */
