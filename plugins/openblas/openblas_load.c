/*
 * openblas_load.c - finds and loads OpenBLAS at run time, choosing its CPU
 * core first.
 *
 * Why not link it: Debian's OpenBLAS (0.3.21, DYNAMIC_ARCH) picks its
 * kernels from the CPU model in its library constructor, and on CPUs newer
 * than the release (e.g. Sapphire Rapids-class Xeons) it silently falls back
 * to its Prescott (SSE3) kernels, 3-5x slower. The only way to choose is the
 * OPENBLAS_CORETYPE environment variable, read once by that constructor, so
 * it must be set before the library is loaded, which a plugin linked against
 * libopenblas cannot do.
 *
 * Order, in qkv_openblas_load:
 *  1. the library names: QKV_OPENBLAS_LIB alone when set (a path or a
 *     soname: a given OpenBLAS build, e.g. Debian's openblas-openmp), else
 *     libopenblas.so.0, libopenblas.so, libblas.so.3 (Debian's alternatives
 *     may point it at OpenBLAS); a library counts only if it has
 *     openblas_get_corename (so the reference BLAS is refused);
 *  2. if one is loaded in the process already (dlopen RTLD_NOLOAD), use it:
 *     its core was chosen when it was loaded and stays;
 *  3. else, when the user has not set OPENBLAS_CORETYPE, set it from
 *     host->cpu_features() (capped by QKV_ISA): AVX-512 -> "SkylakeX",
 *     AVX2 -> "Haswell" (on AMD Zen these are the kernels OpenBLAS's "Zen"
 *     core uses too, measured equal on Zen 3), else leave it unset (OpenBLAS
 *     detects); dlopen the first name that loads; unset the variable again.
 *  4. resolve cblas_sgemm, cblas_dgemm, openblas_set_num_threads,
 *     openblas_get_corename (a missing one is an init error), set OpenBLAS to
 *     one thread (qkv threads GEMMs itself, see openblas_gemm.c);
 *  5. read the core it runs (openblas_get_corename) and, when it is not an
 *     AVX2 core on a CPU with AVX2, log a warning saying how to override.
 *
 * Process-wide side effects, since OpenBLAS and the environment are shared
 * by the whole process: OPENBLAS_CORETYPE is set only while the plugin's
 * init dlopens OpenBLAS (and only if it was unset and OpenBLAS not loaded),
 * then removed; setenv is not safe against other threads reading the
 * environment at that moment, so an application that does so should set
 * OPENBLAS_CORETYPE itself (qkv then leaves the environment alone) or load
 * the plugins early (qkv_plugin_load_defaults). OpenBLAS's thread count is
 * set to 1 for everyone in the process.
 */
#include <dlfcn.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "openblas_plugin.h"

static const char *const DEFAULT_LIBS[] = {"libopenblas.so.0", "libopenblas.so", "libblas.so.3"};

/* Cores whose GEMM kernels use AVX2 (or AVX-512): anything else on an AVX2
 * CPU is OpenBLAS running generic kernels. */
static const char *const AVX2_CORES[] = {"Haswell", "Zen", "SkylakeX", "Cooperlake",
                                         "SapphireRapids"};

/* Appends to buf (cap bytes, NUL-terminated, cut when full). */
static void append(char *buf, size_t cap, const char *fmt, ...)
{
    size_t len = strlen(buf);
    if (len + 1 >= cap)
        return;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(buf + len, cap - len, fmt, ap);
    va_end(ap);
}

static int is_openblas(void *h) { return dlsym(h, "openblas_get_corename") != NULL; }

/* Step 2: an OpenBLAS of `names` the process has loaded already (a new
 * reference to it), else NULL. */
static void *find_loaded(const char *const *names, size_t n, char *which, size_t cap)
{
#ifdef RTLD_NOLOAD
    for (size_t i = 0; i < n; i++) {
        void *h = dlopen(names[i], RTLD_NOW | RTLD_LOCAL | RTLD_NOLOAD);
        if (!h)
            continue;
        if (is_openblas(h)) {
            snprintf(which, cap, "%s", names[i]);
            return h;
        }
        dlclose(h);
    }
#else
    (void)names, (void)n, (void)which, (void)cap;
#endif
    return NULL;
}

/* Step 3's dlopen: the first of `names` that loads and is OpenBLAS; else
 * NULL with every name's reason in why. */
static void *load_first(const char *const *names, size_t n, char *which, size_t which_cap,
                        char *why, size_t cap)
{
    for (size_t i = 0; i < n; i++) {
        void *h = dlopen(names[i], RTLD_NOW | RTLD_LOCAL);
        if (!h) {
            const char *e = dlerror();
            append(why, cap, "%s%s", why[0] ? "; " : "", e ? e : names[i]);
            continue;
        }
        if (is_openblas(h)) {
            snprintf(which, which_cap, "%s", names[i]);
            return h;
        }
        append(why, cap, "%s%s: not OpenBLAS (no openblas_get_corename)", why[0] ? "; " : "",
               names[i]);
        dlclose(h);
    }
    return NULL;
}

/* The OPENBLAS_CORETYPE qkv wants for these CPU features (NULL: none). */
static const char *core_for(uint64_t features)
{
    if (features & QKV_CPU_AVX512)
        return "SkylakeX";
    if (features & QKV_CPU_AVX2)
        return "Haswell";
    return NULL;
}

static int is_avx2_core(const char *core)
{
    for (size_t i = 0; i < sizeof AVX2_CORES / sizeof AVX2_CORES[0]; i++)
        if (strcasecmp(core, AVX2_CORES[i]) == 0)
            return 1;
    return 0;
}

/* "OpenBLAS 0.3.21" from openblas_get_config's "OpenBLAS 0.3.21 NO_LAPACKE ...". */
static void version_of(void *h, char *out, size_t cap)
{
    char *(*get_config)(void) = NULL;
    *(void **)&get_config = dlsym(h, "openblas_get_config");
    const char *cfg = get_config ? get_config() : NULL;
    snprintf(out, cap, "OpenBLAS");
    if (cfg && strncmp(cfg, "OpenBLAS ", 9) == 0) {
        size_t n = strcspn(cfg + 9, " ");
        snprintf(out, cap, "OpenBLAS %.*s", (int)(n < 32 ? n : 32), cfg + 9);
    }
}

/* Step 4: resolves the entry points into lib. */
static qkv_status resolve(openblas_lib *lib, char *errbuf, size_t errbuf_size)
{
    static const char *const names[] = {"cblas_sgemm", "cblas_dgemm", "openblas_set_num_threads",
                                        "openblas_get_corename"};
    void *syms[4];
    for (size_t i = 0; i < 4; i++) {
        syms[i] = dlsym(lib->handle, names[i]);
        if (!syms[i]) {
            snprintf(errbuf, errbuf_size,
                     "%s has no symbol '%s' (an OpenBLAS with the CBLAS interface is needed)",
                     lib->soname, names[i]);
            return QKV_ERR_PLUGIN;
        }
    }
    /* POSIX: a data pointer from dlsym converts to a function pointer this way */
    memcpy(&lib->sgemm, &syms[0], sizeof syms[0]);
    memcpy(&lib->dgemm, &syms[1], sizeof syms[1]);
    memcpy(&lib->set_num_threads, &syms[2], sizeof syms[2]);
    memcpy(&lib->get_corename, &syms[3], sizeof syms[3]);
    return QKV_OK;
}

/* Step 5: lib->describe, lib->generic and the warning. */
static void report(const qkv_host_api *host, openblas_lib *lib, uint64_t features,
                   const char *user_core)
{
    char version[48], how[160];
    const char *core = lib->get_corename();
    if (!core || !core[0])
        core = "unknown";
    version_of(lib->handle, version, sizeof version);
    switch (lib->source) {
    case OPENBLAS_CORE_BY_QKV:
        if (strcasecmp(core, lib->asked_core) == 0)
            snprintf(how, sizeof how, "chosen by qkv from the CPU's %s",
                     (features & QKV_CPU_AVX512) ? "AVX-512" : "AVX2");
        else
            snprintf(how, sizeof how, "qkv asked for %s, which this OpenBLAS lacks",
                     lib->asked_core);
        break;
    case OPENBLAS_CORE_BY_USER:
        snprintf(how, sizeof how, "from OPENBLAS_CORETYPE=%.64s", user_core);
        break;
    case OPENBLAS_CORE_PRELOADED:
        snprintf(how, sizeof how, "OpenBLAS was loaded before qkv's plugin: its own choice");
        break;
    default:
        snprintf(how, sizeof how, "OpenBLAS's own detection");
        break;
    }
    lib->generic = (features & QKV_CPU_AVX2) && !is_avx2_core(core);
    const char *better = (features & QKV_CPU_AVX512) ? "SkylakeX" : "Haswell";
    snprintf(lib->describe, sizeof lib->describe, "%s, core %.32s (%s)%s%s", version, core, how,
             lib->generic ? "; GENERIC kernels on an AVX2 CPU: set OPENBLAS_CORETYPE=" : "",
             lib->generic ? better : "");
    if (lib->generic)
        host->log(QKV_LOG_WARN,
                  "openblas: OpenBLAS runs its generic '%s' kernels on this AVX2 CPU (%s), so "
                  "GEMMs run several times slower than they could; set "
                  "OPENBLAS_CORETYPE=%s in the environment before the process starts",
                  core, how, better);
    else
        host->log(QKV_LOG_INFO, "openblas: %s", lib->describe);
}

qkv_status qkv_openblas_load(const qkv_host_api *host, openblas_lib *lib, char *errbuf,
                             size_t errbuf_size)
{
    memset(lib, 0, sizeof *lib);
    /* copied: the setenv below may not move it, but nothing says so */
    char override_buf[512];
    const char *override = getenv("QKV_OPENBLAS_LIB");
    const char *const *names = DEFAULT_LIBS;
    size_t n = sizeof DEFAULT_LIBS / sizeof DEFAULT_LIBS[0];
    if (override && override[0]) {
        snprintf(override_buf, sizeof override_buf, "%s", override);
        override = override_buf;
        names = &override;
        n = 1;
    }
    uint64_t features = QKV_HOST_HAS(host, cpu_features) ? host->cpu_features() : 0;
    const char *user_core = getenv("OPENBLAS_CORETYPE");
    lib->handle = find_loaded(names, n, lib->soname, sizeof lib->soname);
    if (lib->handle) {
        lib->source = OPENBLAS_CORE_PRELOADED;
    } else {
        char why[1024] = "";
        lib->asked_core = user_core ? NULL : core_for(features);
        lib->source = user_core         ? OPENBLAS_CORE_BY_USER
                      : lib->asked_core ? OPENBLAS_CORE_BY_QKV
                                        : OPENBLAS_CORE_BY_OPENBLAS;
        if (lib->asked_core && setenv("OPENBLAS_CORETYPE", lib->asked_core, 0) != 0) {
            lib->asked_core = NULL; /* out of memory for the environment: OpenBLAS detects */
            lib->source = OPENBLAS_CORE_BY_OPENBLAS;
        }
        lib->handle = load_first(names, n, lib->soname, sizeof lib->soname, why, sizeof why);
        if (lib->asked_core)
            unsetenv("OPENBLAS_CORETYPE"); /* read by OpenBLAS's constructor: done */
        if (!lib->handle) {
            snprintf(errbuf, errbuf_size, "cannot load OpenBLAS%s: %s",
                     names == DEFAULT_LIBS ? " (QKV_OPENBLAS_LIB=PATH names another)"
                                           : " from QKV_OPENBLAS_LIB",
                     why);
            return QKV_ERR_PLUGIN;
        }
    }
    qkv_status st = resolve(lib, errbuf, errbuf_size);
    if (st != QKV_OK) {
        qkv_openblas_unload(lib);
        return st;
    }
    lib->set_num_threads(1);
    report(host, lib, features, user_core);
    return QKV_OK;
}

void qkv_openblas_unload(openblas_lib *lib)
{
    if (lib->handle)
        dlclose(lib->handle);
    lib->handle = NULL;
}
