/*
 * igemm.h - qkv's 8-bit integer GEMM, the engine of MatMulInteger,
 * QLinearMatMul, ConvInteger and QLinearConv (and of any kernel that
 * multiplies quantized matrices):
 *
 *     C[i][j] = sum_p (A[i][p] - a_zero[i]) * (B[p][j] - b_zero[j])    (int32)
 *
 * A and B are each uint8 or int8 (all four pairings), a_zero is per tensor
 * or per row, b_zero per tensor or per column. Sums wrap modulo 2^32 like
 * the ONNX reference (only possible for k above ~33,000).
 *
 * How: both operands are mapped exactly onto the uint8 x int8 products the
 * dot-product instructions take (int8 A + 128 and uint8 B - 128, zero points
 * shifted alike), the raw products are summed by a register-tile
 * micro-kernel, and the zero points enter once per element at the end
 * through row sums of A and column sums of B:
 *     C = A.B - b_zero * rowsum(A) - a_zero * colsum(B) + k * a_zero * b_zero.
 * Micro-kernels, chosen from host->cpu_features(): AVX512-VNNI (vpdpbusd on
 * zmm), AVX-VNNI (vpdpbusd on ymm), AVX2 (uint8 and int8 widened to int16,
 * then vpmaddwd: exact, unlike vpmaddubsw which saturates at 2 x 255 x 127),
 * and portable C. Every variant gives bit-identical results.
 *
 * Blocking and threads as in sgemm.h: units of (batch entry, row block,
 * column block) go to host->parallel_for; each thread packs what it
 * computes into stack buffers (at most 208 KiB); nothing is allocated while
 * a GEMM runs. A constant B is better packed once (qkv_igemm_prepack_b in a
 * kernel's prepack callback), with its column sums.
 */
#ifndef QKV_IGEMM_H
#define QKV_IGEMM_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "qkv_plugin.h"

/* One micro-kernel variant with its blocking and packed layouts (opaque). */
typedef struct qkv_igemm_arch qkv_igemm_arch;

/* The best variant for `cpu_features` (host->cpu_features(); 0 gives the
 * portable one). Never NULL. */
const qkv_igemm_arch *qkv_igemm_arch_select(uint64_t cpu_features);
/* The variants this build has, best first, for tests and benchmarks: NULL
 * once i is past the last. qkv_igemm_arch_needs says which CPU features
 * (QKV_CPU_* bits) a variant needs. */
const qkv_igemm_arch *qkv_igemm_arch_at(size_t i);
uint64_t qkv_igemm_arch_needs(const qkv_igemm_arch *arch);
/* "avx512vnni", "avxvnni", "avx2", "baseline". */
const char *qkv_igemm_arch_name(const qkv_igemm_arch *arch);

/*
 * A batch of integer GEMMs. A is stored (m, k) with row stride lda; B is
 * stored (k, n) with row stride ldb, or (n, k) when trans_b; C (int32) has
 * row stride ldc (strides in elements). A zero point pointer is NULL for 0,
 * else points at elements of its operand's type: row i of A uses
 * a_zero[i * a_zero_stride], column j of B b_zero[j * b_zero_stride]
 * (stride 0: one per tensor). The batch index runs over batch_dims and matrix
 * b of X starts sum_j coord_j * x_strides[j] elements after X (0 broadcasts),
 * for A, B, C and both zero points.
 */
typedef struct qkv_igemm {
    size_t m, n, k;
    const void *a;
    size_t lda;
    bool a_signed; /* int8 A, else uint8 */
    const void *b; /* ignored with a packed B */
    size_t ldb;
    bool b_signed; /* int8 B, else uint8 (a packed B says itself) */
    bool trans_b;
    int32_t *c;
    size_t ldc;
    const void *a_zero;
    size_t a_zero_stride;
    const void *b_zero;
    size_t b_zero_stride;
    int32_t batch_rank; /* 0: a single GEMM */
    size_t batch_dims[QKV_MAX_RANK];
    size_t a_strides[QKV_MAX_RANK], b_strides[QKV_MAX_RANK], c_strides[QKV_MAX_RANK];
    size_t a_zero_strides[QKV_MAX_RANK], b_zero_strides[QKV_MAX_RANK];
} qkv_igemm;

/* B (k, n) packed once for one variant, with its column sums. */
typedef struct qkv_igemm_packed_b {
    const qkv_igemm_arch *arch; /* the layout's variant: runs use this one */
    size_t k, n;
    bool b_signed; /* the original's type (for b_zero) */
    void *data;    /* qkv_igemm_packed_b_bytes(arch, k, n) bytes, owned by the packer */
} qkv_igemm_packed_b;

/* Bytes of a packed (k, n) B for arch (0 on size_t overflow). */
size_t qkv_igemm_packed_b_bytes(const qkv_igemm_arch *arch, size_t k, size_t n);

/* Packs B (stored (k, n) with row stride ldb, or (n, k) when trans_b; int8
 * when b_signed, else uint8) into dst (qkv_igemm_packed_b_bytes bytes,
 * aligned as malloc aligns: the column sums follow the panels) and describes
 * it in *out (out->data = dst). */
void qkv_igemm_pack_b(const qkv_igemm_arch *arch, const void *b, size_t ldb, bool b_signed,
                      bool trans_b, size_t k, size_t n, void *dst, qkv_igemm_packed_b *out);

/*
 * In a kernel's prepack callback: when input `input` of node is a uint8 or
 * int8 constant of rank 2 with no zero dim, packs it (op(B): the transpose
 * when trans_b) for the variant host->cpu_features() selects into malloc'd
 * memory (free with qkv_igemm_packed_free) and tells the host with
 * node_input_packed, so the original can be released. Otherwise leaves
 * out->data NULL and returns QKV_OK. QKV_ERR_OUT_OF_MEMORY, reported on the
 * node.
 */
qkv_status qkv_igemm_prepack_b(const qkv_host_api *host, const qkv_node_ctx *node, size_t input,
                               bool trans_b, qkv_igemm_packed_b *out);

/* Frees what qkv_igemm_prepack_b packed (NULL or empty: nothing). */
void qkv_igemm_packed_free(qkv_igemm_packed_b *pb);

/* Work on a finished block of C, by the thread that computed it while the
 * block is in its cache (e.g. scaling to float in place, requantizing):
 * c points at element (row0, col0) of batch entry `batch`'s C; the block is
 * rows x cols with row stride ldc. */
typedef struct qkv_igemm_post {
    void (*fn)(const void *arg, size_t batch, int32_t *c, size_t ldc, size_t row0, size_t col0,
               size_t rows, size_t cols);
    const void *arg;
} qkv_igemm_post;

/*
 * For a post that requantizes: stores v (already rounded, zero point zp
 * added) as element e of an int8 (y_signed) or uint8 output, saturated to
 * the type's range. NaN (from a NaN or infinite scale, or a zero y_scale
 * times a zero product) gives the zero point, as QuantizeLinear does: its
 * conversion to an integer would be undefined.
 */
static inline void qkv_igemm_store_q8(void *y, bool y_signed, size_t e, float v, float zp)
{
    const float lo = y_signed ? -128.0f : 0.0f, hi = y_signed ? 127.0f : 255.0f;
    v = v < lo ? lo : v > hi ? hi : v == v ? v : zp;
    if (y_signed)
        ((int8_t *)y)[e] = (int8_t)v;
    else
        ((uint8_t *)y)[e] = (uint8_t)v;
}

/*
 * Runs g with arch's kernels over host_ctx's threads (host and host_ctx may
 * be NULL: one thread), then post->fn on every block of C (post may be NULL).
 * With pb, B comes from the packed copy (g->b, ldb, b_signed and trans_b are
 * ignored; pb->k == g->k, pb->n == g->n, every b_stride 0) and runs on
 * pb->arch. The caller validates g (sizes consistent); allocates nothing.
 */
void qkv_igemm_run(const qkv_host_api *host, void *host_ctx, const qkv_igemm_arch *arch,
                   const qkv_igemm *g, const qkv_igemm_packed_b *pb, const qkv_igemm_post *post);

#endif /* QKV_IGEMM_H */
