/*
 * openblas_backend.c - the entry point of libqkv_openblas.so, the backend
 * "openblas" (priority 100, ahead of the built-in "cpu" at 0).
 *
 * What it provides: a GEMM provider and nothing else. It has no kernels:
 * MatMul, Gemm, Einsum and attention are the core's ("cpu") kernels, whose
 * matrix products go through host->gemm, which the session routes to the
 * highest-priority backend in its order that has a GEMM provider: this one
 * whenever it is loaded and allowed (`--backend cpu` leaves it out: the
 * portable C GEMM then runs). So the core library needs no BLAS, and the
 * default build (which builds and finds this plugin) runs at OpenBLAS speed.
 *
 * OpenBLAS itself is not linked: init loads it (openblas_load.c), after
 * setting OPENBLAS_CORETYPE from the CPU features when the user has not, so
 * that an OpenBLAS older than the CPU does not fall back to its generic
 * kernels. Process-wide side effects of that, and of OpenBLAS's thread count
 * being set to 1: see openblas_load.c and docs/plugins.md.
 *
 * describe() says which OpenBLAS and which of its cores run, and how the
 * core was chosen (`qkv info --system`, `qkv run --verbose`).
 *
 * Like every plugin it reaches qkv only through the host table.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "openblas_plugin.h"

#define OPENBLAS_PRIORITY 100

/* Built at init; freed by fini. */
typedef struct openblas_state {
    openblas_lib lib; /* the backend's user pointer */
    qkv_backend backend;
    const qkv_backend *backends[1];
    qkv_plugin_info info;
} openblas_state;

static const char *openblas_describe(void *user)
{
    const openblas_lib *lib = user;
    return lib->describe;
}

static void openblas_fini(void *user)
{
    openblas_state *s = user;
    qkv_openblas_unload(&s->lib);
    free(s);
}

/* Read by the host before init: a qkv of another ABI major refuses this
 * library without running any of it. */
QKV_PLUGIN_EXPORT const uint32_t qkv_plugin_abi_version = QKV_ABI_VERSION;

QKV_PLUGIN_EXPORT qkv_status qkv_plugin_init(const qkv_host_api *host, const qkv_plugin_info **out,
                                             char *errbuf, size_t errbuf_size)
{
    openblas_state *s = calloc(1, sizeof *s);
    if (!s) {
        snprintf(errbuf, errbuf_size, "out of memory");
        return QKV_ERR_OUT_OF_MEMORY;
    }
    qkv_status st = qkv_openblas_load(host, &s->lib, errbuf, errbuf_size);
    if (st != QKV_OK) {
        free(s);
        return st;
    }
    s->backend = (qkv_backend){
        .struct_size = sizeof(qkv_backend),
        .abi_version = QKV_ABI_VERSION,
        .name = "openblas",
        .priority = OPENBLAS_PRIORITY,
        .user = &s->lib,
        .n_kernels = 0,
        .kernels = NULL,
        .gemm = qkv_openblas_gemm,
        .describe = openblas_describe,
    };
    s->backends[0] = &s->backend;
    s->info = (qkv_plugin_info){
        .struct_size = sizeof(qkv_plugin_info),
        .abi_version = QKV_ABI_VERSION,
        .name = "openblas",
        .version = QKV_OPENBLAS_PLUGIN_VERSION,
        .n_backends = 1,
        .backends = s->backends,
        .user = s,
        .fini = openblas_fini,
    };
    *out = &s->info;
    return QKV_OK;
}
