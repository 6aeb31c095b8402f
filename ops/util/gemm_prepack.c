/*
 * gemm_prepack.c - constant GEMM operands packed once per session.
 *
 * Packing B is a pass over it into the micro-kernel's panel layout; a weight
 * read by every run is packed here once instead of once per run, and the
 * original initializer is released when nothing else reads it, so the
 * weights are held once.
 */
#include "gemm_prepack.h"

#include <stdlib.h>
#include <string.h>

#include "kernel_util.h"

qkv_status qkv_gemm_prepack_b(const qkv_host_api *host, const qkv_node_ctx *node, size_t input,
                              bool trans_b, qkv_sgemm_packed_b *out)
{
    memset(out, 0, sizeof *out);
    if (!QKV_HOST_HAS(host, node_input_const) || !QKV_HOST_HAS(host, node_input_packed))
        return QKV_OK;
    const qkv_tensor *b = host->node_input_const(node, input);
    if (!b || b->dtype != QKV_DTYPE_FLOAT || b->rank != 2 || !b->data || b->dims[0] <= 0 ||
        b->dims[1] <= 0)
        return QKV_OK;
    size_t rows = (size_t)b->dims[0], cols = (size_t)b->dims[1];
    size_t k = trans_b ? cols : rows, n = trans_b ? rows : cols;
    const qkv_sgemm_arch *arch = qkv_sgemm_arch_get();
    size_t floats = qkv_sgemm_packed_b_floats(arch, k, n);
    if (floats == 0 || floats > SIZE_MAX / sizeof(float))
        return QKV_OK; /* too large to pack: multiplied as it comes */
    /* host->alloc: the host backs large blocks with huge pages */
    float *data = host->alloc(floats * sizeof(float));
    if (!data)
        return NERR(host, node, QKV_ERR_OUT_OF_MEMORY,
                    "out of memory packing input %zu (%zu bytes)", input, floats * sizeof(float));
    qkv_sgemm_pack_b(arch, b->data, cols, trans_b, k, n, data);
    qkv_status st = host->node_input_packed(node, input, floats * sizeof(float));
    if (st != QKV_OK) {
        host->free(data);
        return st;
    }
    *out = (qkv_sgemm_packed_b){.arch = arch, .k = k, .n = n, .data = data, .free = host->free};
    return QKV_OK;
}

void qkv_gemm_packed_free(qkv_sgemm_packed_b *pb)
{
    if (!pb)
        return;
    if (pb->data)
        pb->free(pb->data);
    memset(pb, 0, sizeof *pb);
}

void qkv_gemm_run_packed(qkv_kernel_io *io, const qkv_blas_gemm *g, const qkv_sgemm_packed_b *pb)
{
    qkv_gemm abi;
    qkv_blas_to_gemm(g, &abi);
    qkv_sgemm_run(io->host, io->host_ctx, pb->arch, &abi, pb);
}

void qkv_gemm_run_packed_post(qkv_kernel_io *io, const qkv_blas_gemm *g,
                              const qkv_sgemm_packed_b *pb, const qkv_sgemm_post *post)
{
    qkv_gemm abi;
    qkv_blas_to_gemm(g, &abi);
    qkv_sgemm_run_post(io->host, io->host_ctx, pb->arch, &abi, pb, post);
}
