/*
 * matmul_shape.h - the output shape of numpy matmul, shared by MatMul and
 * the integer matmuls (MatMulInteger, QLinearMatMul).
 */
#ifndef QKV_MATMUL_SHAPE_H
#define QKV_MATMUL_SHAPE_H

#include "qkv_plugin.h"

/*
 * Sets y's rank and dims (not its dtype) to numpy matmul's output for a @ b:
 * the last two dims are the matrices, leading dims broadcast, a 1-D a is
 * promoted to (1, K) and a 1-D b to (K, 1) and the promoted dim dropped.
 * Unknown ranks give rank -1, unknown dims -1. QKV_ERR_SHAPE (via io, naming
 * input 0 'A' and input b_input 'B') for a scalar, different inner dims, or batch
 * dims that do not broadcast.
 */
qkv_status qkv_matmul_shape(qkv_kernel_io *io, const qkv_tensor *a, const qkv_tensor *b,
                            size_t b_input, qkv_tensor *y);

#endif /* QKV_MATMUL_SHAPE_H */
