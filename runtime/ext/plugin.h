/*
 * plugin.h - loaded plugin libraries (the process-wide plugin registry) and
 * the plugin search path.
 *
 * The registry is the only mutable global state of qkv: a mutex-protected
 * list of libraries, each with its real path, dlopen handle, reference count
 * and a validated copy of what it provides (a qkv_registry: backend 0 holds
 * its plain kernels, the others its backends). Sessions take references;
 * the last release runs the plugin's fini and dlcloses it.
 */
#ifndef QKV_PLUGIN_INTERNAL_H
#define QKV_PLUGIN_INTERNAL_H

#include <stddef.h>

#include "qkv.h"
#include "registry.h"

struct qkv_plugin {
    char *path; /* real path: the identity of the library */
    void *handle;
    size_t refs; /* under the registry's mutex */
    char *name;
    char *version;
    qkv_registry *provides; /* immutable after load */
    void *user;
    void (*fini)(void *user);
    struct qkv_plugin *next;
};

/* Adds what plugin p provides to a session's registry: its plain kernels to
 * "cpu", its backends as backends. On failure (a duplicate naming both
 * origins, out of memory) reg may hold part of it: the caller discards reg. */
qkv_status qkv_plugin_merge(const qkv_plugin *p, qkv_registry *reg, qkv_error *err);

/* Takes one more reference to a loaded plugin. */
void qkv_plugin_retain(qkv_plugin *p);

/* How many libraries the registry holds (for tests: a failed load leaves it
 * unchanged, the last release empties it). */
size_t qkv_plugin_loaded_count(void);

/*
 * The plugin search path: the value of QKV_PLUGIN_PATH when it is set
 * (entries separated by ':'; each a plugin file or a directory whose *.so
 * files are loaded in name order; "" loads nothing), else qkv's own plugin
 * directory: BUILD/plugins for binaries in the build tree, else
 * LIBDIR/qkv/plugins next to the library or executable, else the configured
 * install directory (see plugin_path.c). Writes the ':'-separated list into
 * buf (truncated to cap); returns buf.
 */
const char *qkv_plugin_search_path(char *buf, size_t cap);

/*
 * Expands a search path into plugin files: *files gets a malloc'd array of
 * malloc'd paths (free with qkv_plugin_files_free), directories expanded to
 * their *.so files sorted by name, missing entries skipped. QKV_ERR_IO when
 * a directory cannot be read; QKV_ERR_OUT_OF_MEMORY.
 */
qkv_status qkv_plugin_expand_path(const char *search_path, char ***files, size_t *n,
                                  qkv_error *err);
void qkv_plugin_files_free(char **files, size_t n);

#endif /* QKV_PLUGIN_INTERNAL_H */
