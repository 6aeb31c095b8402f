/*
 * tensor_io.h - reading and writing tensors as files for the CLI:
 * NumPy .npy (format versions 1.0, 2.0 and 3.0; C order only) and ONNX
 * TensorProto .pb files (read only, through the loader).
 *
 * Payload convention (the loader's): a tensor read here owns a malloc'd
 * `data` (NULL with data_bytes 0 when it has no elements); free it with
 * qkv_tensor_data_free(). On failure *out is untouched and err holds a
 * one-line message naming the file.
 */
#ifndef QKV_CLI_TENSOR_IO_H
#define QKV_CLI_TENSOR_IO_H

#include <stddef.h>
#include <stdint.h>

#include "qkv.h"

/* Reads a whole file into a malloc'd buffer (*buf is NULL when the file is
 * empty). QKV_ERR_IO (cannot open/read, a directory) or
 * QKV_ERR_OUT_OF_MEMORY. */
qkv_status qkv_cli_read_file(const char *path, void **buf, size_t *bytes, qkv_error *err);

/*
 * Decodes a .npy image. Supported descrs: [<|=>] b1 i1 u1 i2 u2 f2 i4 u4 f4
 * i8 u8 f8 c8 c16 (big-endian data is byte-swapped). The header is checked
 * strictly: magic, version, header length and padding, a dict with exactly
 * the keys 'descr', 'fortran_order' and 'shape', fortran_order False, dims
 * non-negative, element count and byte size overflow-checked, the payload
 * exactly as long as the shape says, bools 0 or 1. `what` names the source
 * in messages (e.g. the file name).
 * Errors: QKV_ERR_INVALID_ARGUMENT (malformed), QKV_ERR_UNSUPPORTED (a
 * descr or Fortran order qkv does not read, rank > QKV_MAX_RANK),
 * QKV_ERR_OUT_OF_MEMORY.
 */
qkv_status qkv_cli_npy_decode(const void *buf, size_t bytes, const char *what, qkv_tensor *out,
                              qkv_error *err);

/*
 * Encodes t (shape known, data of t->data_bytes) as a version 1.0 .npy image
 * in a malloc'd buffer. QKV_ERR_UNSUPPORTED for dtypes NumPy has no plain
 * descr for (string, bfloat16, float8, sub-byte types);
 * QKV_ERR_INVALID_ARGUMENT when data_bytes does not match the shape.
 */
qkv_status qkv_cli_npy_encode(const qkv_tensor *t, void **buf, size_t *bytes, qkv_error *err);

/* qkv_cli_npy_encode into the file at path (created or truncated). */
qkv_status qkv_cli_npy_write(const char *path, const qkv_tensor *t, qkv_error *err);

/* Reads a .npy file. */
qkv_status qkv_cli_npy_read(const char *path, qkv_tensor *out, qkv_error *err);

/* Reads a serialized TensorProto file; external data is resolved relative
 * to the file's directory. *name_out (may be NULL) receives a malloc'd copy
 * of the tensor's name. */
qkv_status qkv_cli_pb_read(const char *path, qkv_tensor *out, char **name_out, qkv_error *err);

/* Reads a tensor file: .npy when the file starts with the NumPy magic,
 * otherwise a TensorProto. */
qkv_status qkv_cli_tensor_read(const char *path, qkv_tensor *out, qkv_error *err);

/* IEEE half and bfloat16 conversions (round to nearest even). */
float qkv_cli_f16_to_f32(uint16_t h);
uint16_t qkv_cli_f32_to_f16(float f);
float qkv_cli_bf16_to_f32(uint16_t h);
uint16_t qkv_cli_f32_to_bf16(float f);

#endif /* QKV_CLI_TENSOR_IO_H */
