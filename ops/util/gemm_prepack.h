/*
 * gemm_prepack.h - a kernel's constant B operand packed once per session for
 * qkv's float32 GEMM (sgemm.h), and GEMMs that read it. Used by the prepack
 * callbacks of MatMul, Gemm and FusedMatMul.
 */
#ifndef QKV_GEMM_PREPACK_H
#define QKV_GEMM_PREPACK_H

#include <stdbool.h>

#include "blas.h"
#include "sgemm.h"

/*
 * In a kernel's prepack: when input `input` of node is a float32 constant of
 * rank 2 with no zero dim, packs op(B) (the input itself, or its transpose
 * when trans_b) into out (malloc'd: free with qkv_gemm_packed_free, which a
 * destroy callback can call without the host table) and tells the host with
 * node_input_packed, so that the original can be released. Otherwise leaves
 * out empty (out->data NULL) and returns QKV_OK: the kernel then multiplies
 * the input as it comes. QKV_ERR_OUT_OF_MEMORY (reported on the node).
 */
qkv_status qkv_gemm_prepack_b(const qkv_host_api *host, const qkv_node_ctx *node, size_t input,
                              bool trans_b, qkv_sgemm_packed_b *out);

/* Frees what qkv_gemm_prepack_b packed; out becomes empty. */
void qkv_gemm_packed_free(qkv_sgemm_packed_b *pb);

/* Runs g (float32; g->b is ignored) with op(B) from pb, over io's threads.
 * pb->k and pb->n must equal g->k and g->n (prepare checks it: the packed
 * shape is the constant's, which inference gave every plan). */
void qkv_gemm_run_packed(qkv_kernel_io *io, const qkv_blas_gemm *g, const qkv_sgemm_packed_b *pb);

/* The same with post->fn run on every block of C once it is final, by the
 * thread that computed it (a fused epilogue). */
void qkv_gemm_run_packed_post(qkv_kernel_io *io, const qkv_blas_gemm *g,
                              const qkv_sgemm_packed_b *pb, const qkv_sgemm_post *post);

#endif /* QKV_GEMM_PREPACK_H */
