/*
 * plugin_path.c - where default plugins come from.
 *
 * QKV_PLUGIN_PATH, when set, is the whole search path (so "" means no
 * default plugins, and a test or a user can pin exactly what loads).
 * Otherwise qkv looks next to itself, found with dladdr on this very code
 * (the shared library, or the executable it is linked into):
 *   - a binary inside the build tree (QKV_BUILD_DIR, compiled in) uses
 *     BUILD/plugins, where plugins/CMakeLists.txt puts the backend plugins;
 *   - an installed library LIBDIR/libqkv.so uses LIBDIR/qkv/plugins, an
 *     installed executable PREFIX/bin/qkv uses PREFIX/LIBDIR/qkv/plugins;
 *   - else the configured install directory (QKV_INSTALL_PLUGIN_DIR).
 * The first of these that exists is the search path. So a relocated
 * install keeps finding its plugins, and a build tree never picks up an
 * installed copy of an older plugin.
 */
#define _GNU_SOURCE /* dladdr */
#include <dirent.h>
#include <dlfcn.h>
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "error.h"
#include "plugin.h"
#include "str_util.h"

#ifndef QKV_BUILD_DIR
#define QKV_BUILD_DIR ""
#endif
#ifndef QKV_INSTALL_LIBDIR
#define QKV_INSTALL_LIBDIR "lib"
#endif
#ifndef QKV_INSTALL_PLUGIN_DIR
#define QKV_INSTALL_PLUGIN_DIR ""
#endif

static int is_dir(const char *path)
{
    struct stat st;
    return path[0] && stat(path, &st) == 0 && S_ISDIR(st.st_mode);
}

/* The real path of the file holding this code, into buf; "" if unknown. */
static void self_path(char *buf, size_t cap)
{
    Dl_info info;
    char *real = NULL;
    buf[0] = '\0';
    if (dladdr((void *)&qkv_plugin_search_path, &info) && info.dli_fname &&
        strstr(info.dli_fname, ".so"))
        real = realpath(info.dli_fname, NULL);
    if (!real) /* linked into the executable: dli_fname may be argv[0] */
        real = realpath("/proc/self/exe", NULL);
    if (real) {
        qkv_strlcpy(buf, real, cap);
        free(real);
    }
}

const char *qkv_plugin_search_path(char *buf, size_t cap)
{
    const char *env = getenv("QKV_PLUGIN_PATH");
    if (env) {
        qkv_strlcpy(buf, env, cap);
        return buf;
    }
    char self[PATH_MAX], dir[PATH_MAX], cand[PATH_MAX];
    buf[0] = '\0';
    self_path(self, sizeof self);
    qkv_strlcpy(dir, self, sizeof dir);
    char *slash = strrchr(dir, '/');
    if (slash)
        *slash = '\0';
    else
        dir[0] = '\0';

    char *build = QKV_BUILD_DIR[0] ? realpath(QKV_BUILD_DIR, NULL) : NULL;
    size_t blen = build ? strlen(build) : 0;
    int in_build = build && dir[0] && strncmp(dir, build, blen) == 0 &&
                   (dir[blen] == '\0' || dir[blen] == '/');
    if (in_build) {
        snprintf(cand, sizeof cand, "%s/plugins", build);
        free(build);
        if (is_dir(cand))
            qkv_strlcpy(buf, cand, cap);
        return buf;
    }
    free(build);
    if (dir[0]) {
        snprintf(cand, sizeof cand, "%s/qkv/plugins", dir);
        if (is_dir(cand)) {
            qkv_strlcpy(buf, cand, cap);
            return buf;
        }
        snprintf(cand, sizeof cand, "%s/../%s/qkv/plugins", dir, QKV_INSTALL_LIBDIR);
        char *real = realpath(cand, NULL);
        if (real && is_dir(real)) {
            qkv_strlcpy(buf, real, cap);
            free(real);
            return buf;
        }
        free(real);
    }
    if (is_dir(QKV_INSTALL_PLUGIN_DIR))
        qkv_strlcpy(buf, QKV_INSTALL_PLUGIN_DIR, cap);
    return buf;
}

void qkv_plugin_files_free(char **files, size_t n)
{
    for (size_t i = 0; files && i < n; i++)
        free(files[i]);
    free(files);
}

typedef struct file_list {
    char **v;
    size_t n, cap;
} file_list;

static int push(file_list *l, const char *dir, const char *name)
{
    if (l->n == l->cap) {
        size_t cap = l->cap ? l->cap * 2 : 8;
        char **grown = realloc(l->v, cap * sizeof *grown);
        if (!grown)
            return -1;
        l->v = grown;
        l->cap = cap;
    }
    size_t len = (dir ? strlen(dir) + 1 : 0) + strlen(name) + 1;
    char *s = malloc(len);
    if (!s)
        return -1;
    if (dir)
        snprintf(s, len, "%s/%s", dir, name);
    else
        snprintf(s, len, "%s", name);
    l->v[l->n++] = s;
    return 0;
}

static int by_name(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

static int ends_with_so(const char *name)
{
    size_t n = strlen(name);
    return n > 3 && strcmp(name + n - 3, ".so") == 0;
}

/* Appends dir's *.so regular files (sorted by name). */
static qkv_status push_dir(file_list *l, const char *dir, qkv_error *err)
{
    DIR *d = opendir(dir);
    if (!d)
        return qkv_error_set(err, QKV_ERR_IO, "plugin directory '%s': %s", dir, strerror(errno));
    size_t first = l->n;
    qkv_status st = QKV_OK;
    struct dirent *e;
    while (st == QKV_OK && (e = readdir(d)) != NULL) {
        if (e->d_name[0] == '.' || !ends_with_so(e->d_name))
            continue;
        char full[PATH_MAX];
        struct stat sb;
        snprintf(full, sizeof full, "%s/%s", dir, e->d_name);
        if (stat(full, &sb) != 0 || !S_ISREG(sb.st_mode))
            continue;
        if (push(l, dir, e->d_name) != 0)
            st = qkv_error_set(err, QKV_ERR_OUT_OF_MEMORY, "out of memory listing '%s'", dir);
    }
    closedir(d);
    if (st == QKV_OK && l->n > first) /* qsort on an empty list would get a NULL base */
        qsort(l->v + first, l->n - first, sizeof *l->v, by_name);
    return st;
}

qkv_status qkv_plugin_expand_path(const char *search_path, char ***files, size_t *n, qkv_error *err)
{
    file_list l = {0};
    qkv_status st = QKV_OK;
    const char *p = search_path ? search_path : "";
    while (*p && st == QKV_OK) {
        const char *colon = strchr(p, ':');
        size_t len = colon ? (size_t)(colon - p) : strlen(p);
        if (len > 0 && len < PATH_MAX) {
            char entry[PATH_MAX];
            memcpy(entry, p, len);
            entry[len] = '\0';
            struct stat sb;
            if (stat(entry, &sb) != 0)
                ; /* a missing entry is skipped, as in PATH */
            else if (S_ISDIR(sb.st_mode))
                st = push_dir(&l, entry, err);
            else if (push(&l, NULL, entry) != 0)
                st = qkv_error_set(err, QKV_ERR_OUT_OF_MEMORY, "out of memory");
        }
        p += len;
        if (*p == ':')
            p++;
    }
    if (st != QKV_OK) {
        qkv_plugin_files_free(l.v, l.n);
        return st;
    }
    *files = l.v;
    *n = l.n;
    return QKV_OK;
}
