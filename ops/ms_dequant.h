/*
 * ms_dequant.h - the float epilogue of the contrib ops that multiply in
 * 8-bit integers (DynamicQuantizeMatMul in ms_quant_matmul.c, QAttention in
 * ms_qattention.c): an igemm.h post step that turns each finished block of
 * int32 sums into float in place,
 *
 *     y[i][j] = (float)c[i][j] * (a_scale * b_scale[j or 0]) + bias[j]
 *
 * the order ORT's MLAS output processor computes it in.
 */
#ifndef QKV_MS_DEQUANT_H
#define QKV_MS_DEQUANT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef struct qkv_ms_dequant {
    float a_scale;        /* A's (per tensor) */
    const float *b_scale; /* (1), or (n) when per_column */
    bool per_column;
    const float *bias; /* (n), or NULL */
} qkv_ms_dequant;

/* A qkv_igemm_post fn (arg: a qkv_ms_dequant): the block's int32 values are
 * replaced by their float results, bit for bit in the same 4 bytes. */
void qkv_ms_dequant_block(const void *arg, size_t batch, int32_t *c, size_t ldc, size_t row0,
                          size_t col0, size_t rows, size_t cols);

#endif /* QKV_MS_DEQUANT_H */
