/*
 * plugin.c - loading plugin libraries: dlopen, the exported ABI version
 * (checked before the plugin's init runs), the entry point, copying the
 * descriptors, reference counting and closing.
 *
 * A load either completes or leaves the registry exactly as it was: the
 * library is linked into the list only after everything it provides has
 * been validated and copied; every failure before that closes the handle
 * (after the plugin's fini, once its init has succeeded).
 *
 * The mutex is held across dlopen and the plugin's init: two threads loading
 * the same file must not both open it, and plugin inits are rare and short.
 * A plugin's init must not call back into qkv's public API (it gets only the
 * host table, which takes no lock).
 */
#define _XOPEN_SOURCE 700 /* realpath */
#include "plugin.h"

#include <dlfcn.h>
#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "error.h"
#include "kernel_host.h"
#include "str_util.h"

static pthread_mutex_t registry_lock = PTHREAD_MUTEX_INITIALIZER;
static qkv_plugin *loaded; /* the registry: guarded by registry_lock */

size_t qkv_plugin_loaded_count(void)
{
    size_t n = 0;
    pthread_mutex_lock(&registry_lock);
    for (const qkv_plugin *p = loaded; p; p = p->next)
        n++;
    pthread_mutex_unlock(&registry_lock);
    return n;
}

/* Frees a plugin record that is not (or no longer) in the list: runs fini
 * when `initialised`, closes the library. */
static void plugin_free(qkv_plugin *p, int initialised)
{
    if (!p)
        return;
    qkv_registry_destroy(p->provides);
    if (initialised && p->fini)
        p->fini(p->user);
    if (p->handle)
        dlclose(p->handle);
    free(p->path);
    free(p->name);
    free(p->version);
    free(p);
}

/* The message for a plugin built for another major version of the ABI. */
static qkv_status refuse_major(const char *path, uint32_t abi, qkv_error *err)
{
    return qkv_error_set(err, QKV_ERR_PLUGIN,
                         "plugin '%s' was built for the qkv plugin ABI %u.%u; this qkv speaks "
                         "%u.%u (rebuild the plugin against this qkv's qkv_plugin.h)",
                         path, QKV_ABI_VERSION_MAJOR(abi), QKV_ABI_VERSION_MINOR(abi),
                         QKV_ABI_MAJOR, QKV_ABI_MINOR);
}

/* Checks the ABI version the library exports (QKV_PLUGIN_ABI_SYMBOL) before
 * its init may run: another major is refused. A library without the symbol
 * predates it (ABI 1.0/1.1): its info's version is checked after init. */
static qkv_status check_exported_abi(const qkv_plugin *p, qkv_error *err)
{
    dlerror();
    const uint32_t *abi = dlsym(p->handle, QKV_PLUGIN_ABI_SYMBOL);
    if (!abi)
        return QKV_OK;
    if (QKV_ABI_VERSION_MAJOR(*abi) != QKV_ABI_MAJOR)
        return refuse_major(p->path, *abi, err);
    return QKV_OK;
}

/* Reads the plugin's info (only as far as its struct_size covers) and copies
 * its kernels and backends into p->provides, checking them against each
 * other and against the built-in kernels. */
static qkv_status adopt_info(qkv_plugin *p, const qkv_plugin_info *info, qkv_error *err)
{
    const size_t v1_size = offsetof(qkv_plugin_info, fini) + sizeof info->fini;
    const char *path = p->path;
    if (!info)
        return qkv_error_set(err, QKV_ERR_PLUGIN,
                             "plugin '%s': qkv_plugin_init succeeded but returned no info", path);
    if (QKV_ABI_VERSION_MAJOR(info->abi_version) != QKV_ABI_MAJOR)
        return refuse_major(path, info->abi_version, err);
    if (info->struct_size < v1_size)
        return qkv_error_set(err, QKV_ERR_PLUGIN,
                             "plugin '%s': qkv_plugin_info has struct_size %u, at least %zu "
                             "expected",
                             path, info->struct_size, v1_size);
    /* the host's view: what the plugin's struct_size covers; newer fields
     * ignored, fields an older plugin lacks read as 0 */
    qkv_plugin_info in;
    memset(&in, 0, sizeof in);
    memcpy(&in, info, info->struct_size < sizeof in ? info->struct_size : sizeof in);
    p->user = in.user;
    p->fini = in.fini;
    p->name = qkv_strdup(in.name && in.name[0] ? in.name : "(unnamed)");
    p->version = qkv_strdup(in.version ? in.version : "");
    p->provides = qkv_registry_create();
    if (!p->name || !p->version || !p->provides)
        return qkv_error_set(err, QKV_ERR_OUT_OF_MEMORY, "plugin '%s': out of memory", path);
    if ((in.n_kernels && !in.kernels) || (in.n_backends && !in.backends))
        return qkv_error_set(err, QKV_ERR_PLUGIN,
                             "plugin '%s': qkv_plugin_info counts kernels or backends but has "
                             "no array",
                             path);
    if (in.n_kernels == 0 && in.n_backends == 0)
        return qkv_error_set(err, QKV_ERR_PLUGIN, "plugin '%s' provides no kernels or backends",
                             path);
    qkv_status st = QKV_OK;
    for (size_t i = 0; i < in.n_kernels && st == QKV_OK; i++)
        st = qkv_registry_add(p->provides, in.kernels[i], path, err);
    for (size_t i = 0; i < in.n_backends && st == QKV_OK; i++)
        st = qkv_registry_add_backend(p->provides, in.backends[i], path, NULL, err);
    if (st != QKV_OK || in.n_kernels == 0)
        return st;
    /* a plain kernel may not take over a built-in op: that is what a
     * backend (with a priority and a supports predicate) is for */
    qkv_registry *check = qkv_registry_create();
    if (!check)
        return qkv_error_set(err, QKV_ERR_OUT_OF_MEMORY, "plugin '%s': out of memory", path);
    st = qkv_registry_add_builtins(check, err);
    for (size_t i = 0; i < in.n_kernels && st == QKV_OK; i++)
        st = qkv_registry_add(check, in.kernels[i], path, err);
    qkv_registry_destroy(check);
    return st;
}

/* Opens and initialises the library at real path `path` (not yet loaded). */
static qkv_status open_plugin(const char *path, qkv_plugin **out, qkv_error *err)
{
    qkv_plugin *p = calloc(1, sizeof *p);
    if (!p || !(p->path = qkv_strdup(path))) {
        free(p);
        return qkv_error_set(err, QKV_ERR_OUT_OF_MEMORY, "plugin '%s': out of memory", path);
    }
    dlerror();
    p->handle = dlopen(path, RTLD_NOW | RTLD_LOCAL);
    if (!p->handle) {
        const char *why = dlerror();
        qkv_status st =
            qkv_error_set(err, QKV_ERR_PLUGIN, "plugin '%s': not a loadable shared object: %s",
                          path, why ? why : "dlopen failed");
        plugin_free(p, 0);
        return st;
    }
    dlerror();
    void *sym = dlsym(p->handle, QKV_PLUGIN_ENTRY);
    if (!sym) {
        qkv_status st = qkv_error_set(err, QKV_ERR_PLUGIN,
                                      "plugin '%s': no entry point '%s' (is it a qkv plugin? it "
                                      "must export it with QKV_PLUGIN_EXPORT)",
                                      path, QKV_PLUGIN_ENTRY);
        plugin_free(p, 0);
        return st;
    }
    qkv_status st = check_exported_abi(p, err);
    if (st != QKV_OK) {
        plugin_free(p, 0);
        return st;
    }
    qkv_plugin_init_fn init;
    /* POSIX: a data pointer from dlsym converts to a function pointer */
    memcpy(&init, &sym, sizeof init);
    char msg[QKV_ERROR_MESSAGE_BYTES] = "";
    const qkv_plugin_info *info = NULL;
    st = init(qkv_host_api_get(), &info, msg, sizeof msg);
    msg[sizeof msg - 1] = '\0';
    if (st != QKV_OK) {
        qkv_status ret = st == QKV_ERR_OUT_OF_MEMORY ? st : QKV_ERR_PLUGIN;
        qkv_error_set(err, ret, "plugin '%s': qkv_plugin_init failed (%s): %s", path,
                      qkv_status_string(st), msg[0] ? msg : "no message");
        plugin_free(p, 0);
        return ret;
    }
    st = adopt_info(p, info, err);
    if (st != QKV_OK) {
        plugin_free(p, 1);
        return st;
    }
    p->refs = 1;
    *out = p;
    return QKV_OK;
}

qkv_status qkv_plugin_load(const char *path, qkv_plugin **out, qkv_error *err)
{
    if (!path || !out)
        return qkv_error_set(err, QKV_ERR_INVALID_ARGUMENT, "qkv_plugin_load: NULL argument");
    char *real = realpath(path, NULL);
    if (!real) {
        if (errno == ENOENT || errno == ENOTDIR)
            return qkv_error_set(err, QKV_ERR_IO, "plugin '%s': not found", path);
        if (errno == ENOMEM)
            return qkv_error_set(err, QKV_ERR_OUT_OF_MEMORY, "plugin '%s': out of memory", path);
        return qkv_error_set(err, QKV_ERR_IO, "plugin '%s': %s", path, strerror(errno));
    }
    qkv_status st = QKV_OK;
    pthread_mutex_lock(&registry_lock);
    qkv_plugin *p = loaded;
    while (p && strcmp(p->path, real) != 0)
        p = p->next;
    if (p) {
        p->refs++;
    } else {
        st = open_plugin(real, &p, err);
        if (st == QKV_OK) {
            p->next = loaded;
            loaded = p;
        }
    }
    pthread_mutex_unlock(&registry_lock);
    free(real);
    if (st == QKV_OK)
        *out = p;
    return st;
}

void qkv_plugin_retain(qkv_plugin *p)
{
    pthread_mutex_lock(&registry_lock);
    p->refs++;
    pthread_mutex_unlock(&registry_lock);
}

void qkv_plugin_release(qkv_plugin *p)
{
    if (!p)
        return;
    pthread_mutex_lock(&registry_lock);
    int last = --p->refs == 0;
    if (last) {
        qkv_plugin **link = &loaded;
        while (*link && *link != p)
            link = &(*link)->next;
        if (*link)
            *link = p->next;
    }
    pthread_mutex_unlock(&registry_lock);
    /* fini and dlclose outside the lock: another thread may load meanwhile
     * (the same file then gets a fresh handle, which dlopen refcounts) */
    if (last)
        plugin_free(p, 1);
}

qkv_status qkv_plugin_load_defaults(qkv_plugin ***out, size_t *n, qkv_error *err)
{
    char search[4096];
    char **files = NULL;
    size_t n_files = 0;
    if (!out || !n)
        return qkv_error_set(err, QKV_ERR_INVALID_ARGUMENT,
                             "qkv_plugin_load_defaults: NULL argument");
    qkv_plugin_search_path(search, sizeof search);
    qkv_status st = qkv_plugin_expand_path(search, &files, &n_files, err);
    if (st != QKV_OK)
        return st;
    qkv_plugin **list = n_files ? calloc(n_files, sizeof *list) : NULL;
    if (n_files && !list)
        st = qkv_error_set(err, QKV_ERR_OUT_OF_MEMORY, "out of memory loading plugins");
    size_t loaded_here = 0;
    for (size_t i = 0; i < n_files && st == QKV_OK; i++) {
        st = qkv_plugin_load(files[i], &list[i], err);
        if (st == QKV_OK)
            loaded_here++;
    }
    qkv_plugin_files_free(files, n_files);
    if (st != QKV_OK) {
        qkv_plugin_release_list(list, loaded_here);
        return st;
    }
    *out = list;
    *n = loaded_here;
    return QKV_OK;
}

void qkv_plugin_release_list(qkv_plugin **list, size_t n)
{
    for (size_t i = 0; list && i < n; i++)
        qkv_plugin_release(list[i]);
    free(list);
}

const char *qkv_plugin_name(const qkv_plugin *p) { return p ? p->name : ""; }

const char *qkv_plugin_version(const qkv_plugin *p) { return p ? p->version : ""; }

const char *qkv_plugin_path(const qkv_plugin *p) { return p ? p->path : ""; }

qkv_status qkv_plugin_merge(const qkv_plugin *p, qkv_registry *reg, qkv_error *err)
{
    const qkv_registry *from = p->provides;
    qkv_status st = QKV_OK;
    size_t n = qkv_registry_count(from);
    for (size_t i = 0; i < n && st == QKV_OK; i++) {
        const char *origin = NULL;
        const qkv_kernel *k = qkv_registry_at(from, i, &origin);
        if (qkv_registry_kernel_backend(from, k) == 0)
            st = qkv_registry_add(reg, k, origin, err);
    }
    for (size_t b = 1; b < qkv_registry_backend_count(from) && st == QKV_OK; b++) {
        const qkv_registry_backend *rb = qkv_registry_backend_at(from, b);
        /* rebuild a descriptor from the copy: its kernels are the ones of backend b */
        size_t nk = 0;
        for (size_t i = 0; i < n; i++)
            nk += qkv_registry_kernel_backend(from, qkv_registry_at(from, i, NULL)) == (int32_t)b;
        const qkv_kernel **ks = calloc(nk ? nk : 1, sizeof *ks);
        if (!ks)
            return qkv_error_set(err, QKV_ERR_OUT_OF_MEMORY, "out of memory");
        nk = 0;
        for (size_t i = 0; i < n; i++) {
            const qkv_kernel *k = qkv_registry_at(from, i, NULL);
            if (qkv_registry_kernel_backend(from, k) == (int32_t)b)
                ks[nk++] = k;
        }
        qkv_backend desc = {
            .struct_size = sizeof desc,
            .abi_version = QKV_ABI_VERSION,
            .name = rb->name,
            .priority = rb->priority,
            .user = rb->user,
            .n_kernels = nk,
            .kernels = ks,
            .supports = rb->supports,
            .gemm = rb->gemm,
            .describe = rb->describe,
        };
        st = qkv_registry_add_backend(reg, &desc, rb->origin, NULL, err);
        free(ks);
    }
    return st;
}
