/*
 * registry.c - a flat array of copied descriptors, each tagged with its
 * backend, and a small array of backends. Lookups scan it: a model has a few
 * hundred nodes and a registry a few hundred kernels, and lookups happen
 * once per node and backend at session creation.
 */
#include "registry.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#include "error.h"
#include "str_util.h"

#define QKV_OP_FAMILY(name) const qkv_kernel *qkv_ops_##name(size_t *count);
#include "op_families.h"
#undef QKV_OP_FAMILY

typedef struct entry {
    qkv_kernel kernel; /* strings point at the copies below */
    char *domain;
    char *op_type;
    char *origin;
    size_t backend;
} entry;

struct qkv_registry {
    size_t n, cap;
    entry *entries;
    size_t n_backends, cap_backends;
    qkv_registry_backend *backends;
};

const char *qkv_domain_normalize(const char *domain)
{
    if (!domain || strcmp(domain, "ai.onnx") == 0)
        return "";
    return domain;
}

static void backend_fini(qkv_registry_backend *b)
{
    free(b->name);
    free(b->origin);
}

qkv_registry *qkv_registry_create(void)
{
    qkv_registry *reg = calloc(1, sizeof *reg);
    if (!reg)
        return NULL;
    reg->backends = calloc(4, sizeof *reg->backends);
    if (!reg->backends) {
        free(reg);
        return NULL;
    }
    reg->cap_backends = 4;
    qkv_registry_backend *cpu = &reg->backends[0];
    cpu->name = qkv_strdup("cpu");
    cpu->origin = qkv_strdup("built-in");
    if (!cpu->name || !cpu->origin) {
        backend_fini(cpu);
        free(reg->backends);
        free(reg);
        return NULL;
    }
    reg->n_backends = 1;
    return reg;
}

static void entry_fini(entry *e)
{
    free(e->domain);
    free(e->op_type);
    free(e->origin);
}

void qkv_registry_destroy(qkv_registry *reg)
{
    if (!reg)
        return;
    for (size_t i = 0; i < reg->n; i++)
        entry_fini(&reg->entries[i]);
    free(reg->entries);
    for (size_t i = 0; i < reg->n_backends; i++)
        backend_fini(&reg->backends[i]);
    free(reg->backends);
    free(reg);
}

static int32_t until_or_max(int32_t until) { return until <= 0 ? INT32_MAX : until; }

qkv_status qkv_registry_add(qkv_registry *reg, const qkv_kernel *k, const char *origin,
                            qkv_error *err)
{
    return qkv_registry_add_to(reg, 0, k, origin, err);
}

qkv_status qkv_registry_add_to(qkv_registry *reg, size_t backend, const qkv_kernel *k,
                               const char *origin, qkv_error *err)
{
    const size_t v1_size = offsetof(qkv_kernel, destroy) + sizeof(k->destroy);
    if (!origin)
        origin = "(unnamed)";
    if (!k)
        return qkv_error_set(err, QKV_ERR_PLUGIN, "%s: NULL kernel descriptor", origin);
    if (backend >= reg->n_backends)
        return qkv_error_set(err, QKV_ERR_INTERNAL, "%s: no backend #%zu", origin, backend);
    if (QKV_ABI_VERSION_MAJOR(k->abi_version) != QKV_ABI_MAJOR)
        return qkv_error_set(
            err, QKV_ERR_PLUGIN, "%s: kernel '%s' was built for ABI %u.%u, this qkv speaks %u.%u",
            origin, k->op_type ? k->op_type : "?", QKV_ABI_VERSION_MAJOR(k->abi_version),
            QKV_ABI_VERSION_MINOR(k->abi_version), QKV_ABI_MAJOR, QKV_ABI_MINOR);
    if (k->struct_size < v1_size)
        return qkv_error_set(err, QKV_ERR_PLUGIN,
                             "%s: kernel descriptor has struct_size %u, at least %zu expected",
                             origin, k->struct_size, v1_size);
    if (!k->op_type || !k->op_type[0] || !k->compute)
        return qkv_error_set(err, QKV_ERR_PLUGIN,
                             "%s: kernel descriptor needs an op_type and a compute callback",
                             origin);
    const char *domain = qkv_domain_normalize(k->domain);
    if (k->since_version < 1 || (k->until_version > 0 && k->until_version < k->since_version))
        return qkv_error_set(err, QKV_ERR_PLUGIN, "%s: kernel '%s': bad opset range [%d, %d]",
                             origin, k->op_type, k->since_version, k->until_version);
    if (k->min_inputs < 0 || (k->max_inputs >= 0 && k->max_inputs < k->min_inputs) ||
        k->min_outputs < 0 || (k->max_outputs >= 0 && k->max_outputs < k->min_outputs) ||
        k->n_input_types > QKV_KERNEL_MAX_TYPED_IO)
        return qkv_error_set(err, QKV_ERR_PLUGIN, "%s: kernel '%s': bad input/output arity", origin,
                             k->op_type);
    for (size_t i = 0; i < reg->n; i++) {
        const entry *e = &reg->entries[i];
        if (e->backend != backend || strcmp(e->domain, domain) != 0 ||
            strcmp(e->op_type, k->op_type) != 0)
            continue;
        if (k->since_version <= until_or_max(e->kernel.until_version) &&
            e->kernel.since_version <= until_or_max(k->until_version))
            return qkv_error_set(
                err, QKV_ERR_PLUGIN,
                "%s: kernel '%s%s%s' opsets [%d, %d] collide with the one from %s [%d, %d]", origin,
                domain, domain[0] ? "." : "", k->op_type, k->since_version, k->until_version,
                e->origin, e->kernel.since_version, e->kernel.until_version);
    }
    if (reg->n == reg->cap) {
        size_t cap = reg->cap ? reg->cap * 2 : 64;
        entry *grown = realloc(reg->entries, cap * sizeof *grown);
        if (!grown)
            return qkv_error_set(err, QKV_ERR_OUT_OF_MEMORY, "out of memory");
        reg->entries = grown;
        reg->cap = cap;
    }
    entry e = {0};
    /* Copy only what the registrant's struct_size covers; newer fields the
     * host does not know are ignored, older plugins' missing ones read 0. */
    memcpy(&e.kernel, k, k->struct_size < sizeof e.kernel ? k->struct_size : sizeof e.kernel);
    if (k->struct_size < offsetof(qkv_kernel, omittable_inputs) + sizeof k->omittable_inputs)
        e.kernel.omittable_inputs = ~(uint64_t)0; /* before 1.4: the kernel checks omissions */
    e.domain = qkv_strdup(domain);
    e.op_type = qkv_strdup(k->op_type);
    e.origin = qkv_strdup(origin);
    if (!e.domain || !e.op_type || !e.origin) {
        entry_fini(&e);
        return qkv_error_set(err, QKV_ERR_OUT_OF_MEMORY, "out of memory");
    }
    e.backend = backend;
    e.kernel.struct_size = sizeof e.kernel;
    e.kernel.abi_version = QKV_ABI_VERSION; /* the host's copy is in the host's layout */
    e.kernel.domain = e.domain;
    e.kernel.op_type = e.op_type;
    reg->entries[reg->n++] = e;
    return QKV_OK;
}

qkv_status qkv_registry_add_builtins(qkv_registry *reg, qkv_error *err)
{
    typedef const qkv_kernel *(*family_fn)(size_t *);
    static const family_fn families[] = {
#define QKV_OP_FAMILY(name) qkv_ops_##name,
#include "op_families.h"
#undef QKV_OP_FAMILY
    };
    for (size_t f = 0; f < sizeof families / sizeof families[0]; f++) {
        size_t n = 0;
        const qkv_kernel *ks = families[f](&n);
        for (size_t i = 0; i < n; i++) {
            qkv_status st = qkv_registry_add(reg, &ks[i], "built-in", err);
            if (st != QKV_OK)
                return st;
        }
    }
    return QKV_OK;
}

/* Backend names: [A-Za-z0-9_.-]+, so `--backend a,b` can list them. */
static bool valid_backend_name(const char *name)
{
    if (!name || !name[0] || strlen(name) > 64)
        return false;
    for (const char *c = name; *c; c++)
        if (!((*c >= 'a' && *c <= 'z') || (*c >= 'A' && *c <= 'Z') || (*c >= '0' && *c <= '9') ||
              *c == '_' || *c == '.' || *c == '-'))
            return false;
    return true;
}

qkv_status qkv_registry_add_backend(qkv_registry *reg, const qkv_backend *b, const char *origin,
                                    size_t *index, qkv_error *err)
{
    const size_t v1_size = offsetof(qkv_backend, gemm) + sizeof b->gemm;
    if (!origin)
        origin = "(unnamed)";
    if (!b)
        return qkv_error_set(err, QKV_ERR_PLUGIN, "%s: NULL backend descriptor", origin);
    if (QKV_ABI_VERSION_MAJOR(b->abi_version) != QKV_ABI_MAJOR)
        return qkv_error_set(err, QKV_ERR_PLUGIN,
                             "%s: backend '%s' was built for ABI %u.%u, this qkv speaks %u.%u",
                             origin, b->name ? b->name : "?", QKV_ABI_VERSION_MAJOR(b->abi_version),
                             QKV_ABI_VERSION_MINOR(b->abi_version), QKV_ABI_MAJOR, QKV_ABI_MINOR);
    if (b->struct_size < v1_size)
        return qkv_error_set(err, QKV_ERR_PLUGIN,
                             "%s: backend descriptor has struct_size %u, at least %zu expected",
                             origin, b->struct_size, v1_size);
    if (!valid_backend_name(b->name))
        return qkv_error_set(err, QKV_ERR_PLUGIN,
                             "%s: backend name '%s' is empty or has characters outside "
                             "[A-Za-z0-9_.-] (64 at most)",
                             origin, b->name ? b->name : "(null)");
    if (b->n_kernels && !b->kernels)
        return qkv_error_set(err, QKV_ERR_PLUGIN, "%s: backend '%s' has %zu kernels but no array",
                             origin, b->name, b->n_kernels);
    for (size_t i = 0; i < reg->n_backends; i++)
        if (strcmp(reg->backends[i].name, b->name) == 0)
            return qkv_error_set(err, QKV_ERR_PLUGIN, "%s: backend '%s' is already provided by %s",
                                 origin, b->name, reg->backends[i].origin);
    if (reg->n_backends == reg->cap_backends) {
        size_t cap = reg->cap_backends * 2;
        qkv_registry_backend *grown = realloc(reg->backends, cap * sizeof *grown);
        if (!grown)
            return qkv_error_set(err, QKV_ERR_OUT_OF_MEMORY, "out of memory");
        reg->backends = grown;
        reg->cap_backends = cap;
    }
    qkv_registry_backend nb = {
        .name = qkv_strdup(b->name),
        .priority = b->priority,
        .origin = qkv_strdup(origin),
        .user = b->user,
        .supports = b->supports,
        .gemm = b->gemm,
        /* since 1.1: read only when the plugin's struct has it */
        .describe = b->struct_size >= offsetof(qkv_backend, describe) + sizeof b->describe
                        ? b->describe
                        : NULL,
    };
    if (!nb.name || !nb.origin) {
        backend_fini(&nb);
        return qkv_error_set(err, QKV_ERR_OUT_OF_MEMORY, "out of memory");
    }
    size_t bi = reg->n_backends, n_before = reg->n;
    reg->backends[reg->n_backends++] = nb;
    for (size_t i = 0; i < b->n_kernels; i++) {
        qkv_status st = qkv_registry_add_to(reg, bi, b->kernels[i], origin, err);
        if (st != QKV_OK) {
            /* roll back: the kernels added so far, then the backend */
            while (reg->n > n_before)
                entry_fini(&reg->entries[--reg->n]);
            backend_fini(&reg->backends[--reg->n_backends]);
            return st;
        }
    }
    if (index)
        *index = bi;
    return QKV_OK;
}

const qkv_kernel *qkv_registry_find_in(const qkv_registry *reg, size_t backend, const char *domain,
                                       const char *op_type, int64_t opset, const char **origin)
{
    const entry *best = NULL;
    domain = qkv_domain_normalize(domain);
    for (size_t i = 0; i < reg->n; i++) {
        const entry *e = &reg->entries[i];
        if (e->backend != backend || strcmp(e->op_type, op_type) != 0 ||
            strcmp(e->domain, domain) != 0)
            continue;
        if (opset < e->kernel.since_version || opset > until_or_max(e->kernel.until_version))
            continue;
        if (!best || e->kernel.since_version > best->kernel.since_version)
            best = e;
    }
    if (best && origin)
        *origin = best->origin;
    return best ? &best->kernel : NULL;
}

const qkv_kernel *qkv_registry_find(const qkv_registry *reg, const char *domain,
                                    const char *op_type, int64_t opset, const char **origin)
{
    return qkv_registry_find_in(reg, 0, domain, op_type, opset, origin);
}

size_t qkv_registry_count(const qkv_registry *reg) { return reg->n; }

const qkv_kernel *qkv_registry_at(const qkv_registry *reg, size_t i, const char **origin)
{
    if (i >= reg->n)
        return NULL;
    if (origin)
        *origin = reg->entries[i].origin;
    return &reg->entries[i].kernel;
}

size_t qkv_registry_backend_count(const qkv_registry *reg) { return reg->n_backends; }

const qkv_registry_backend *qkv_registry_backend_at(const qkv_registry *reg, size_t i)
{
    return i < reg->n_backends ? &reg->backends[i] : NULL;
}

int32_t qkv_registry_kernel_backend(const qkv_registry *reg, const qkv_kernel *kernel)
{
    for (size_t i = 0; i < reg->n; i++)
        if (&reg->entries[i].kernel == kernel)
            return (int32_t)reg->entries[i].backend;
    return -1;
}

size_t qkv_registry_backend_kernel_count(const qkv_registry *reg, size_t backend)
{
    size_t n = 0;
    for (size_t i = 0; i < reg->n; i++)
        n += reg->entries[i].backend == backend;
    return n;
}
