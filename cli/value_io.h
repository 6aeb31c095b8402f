/*
 * value_io.h - reading sequence and optional values for the CLI: ONNX
 * SequenceProto and OptionalProto .pb files (the test data format of the
 * node suite), with their tensors decoded by the loader's TensorProto
 * decoder. The outer messages are walked by a small bounds-checked wire
 * reader: fuzzed by fuzz/fuzz_tensor_io.c.
 */
#ifndef QKV_CLI_VALUE_IO_H
#define QKV_CLI_VALUE_IO_H

#include <stddef.h>

#include "qkv.h"

/*
 * Decodes a value of `kind` from a serialized message: a TensorProto for a
 * tensor, a SequenceProto (of tensors) for a sequence, an OptionalProto
 * holding a tensor or a SequenceProto (or nothing: empty) for an optional.
 * External data is resolved relative to base_dir (NULL refuses it). On
 * success *out owns a malloc'd array of tensors, each with a malloc'd
 * payload (free with qkv_cli_value_free). Errors: QKV_ERR_INVALID_MODEL
 * (malformed, or a message of another kind), QKV_ERR_UNSUPPORTED (nested
 * sequences, maps, sparse tensors), QKV_ERR_OUT_OF_MEMORY, and those of
 * the TensorProto decoder; *out is then empty.
 */
qkv_status qkv_cli_value_decode(const void *buf, size_t bytes, qkv_type_kind kind,
                                const char *base_dir, qkv_value *out, qkv_error *err);

/* qkv_cli_value_decode of the file at path (external data beside it). */
qkv_status qkv_cli_value_read(const char *path, qkv_type_kind kind, qkv_value *out, qkv_error *err);

/* Frees what a decoded value owns and empties it. NULL: no-op. */
void qkv_cli_value_free(qkv_value *v);

#endif /* QKV_CLI_VALUE_IO_H */
