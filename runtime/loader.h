/*
 * loader.h - internal interface of the ONNX loader (runtime/loader*.c).
 *
 * The public entry points are qkv_model_load_file/buffer in qkv.h. This
 * header exposes the pieces other parts of qkv reuse: decoding one TensorProto
 * (the CLI's tensor files, the conformance runner's test_data_set_N/input_K.pb)
 * and the bounded wire-format pre-scan.
 *
 * Tensor payload convention (everywhere a qkv_tensor comes out of here):
 * `data` is malloc'd and owned by the receiver; for QKV_DTYPE_STRING it is an
 * array of data_bytes / sizeof(char *) NUL-terminated strings, each malloc'd.
 * A tensor with no elements has data NULL and data_bytes 0.
 * Free with qkv_tensor_data_free().
 *
 * Requires a little-endian host (raw_data is little-endian; checked at
 * compile time in loader_tensor.c).
 */
#ifndef QKV_LOADER_H
#define QKV_LOADER_H

#include <stddef.h>

#include "qkv.h"

/* Protobuf messages nested deeper than this are refused before unpacking
 * (protobuf-c recurses once per nested message). A model graph uses about 7
 * levels and every level of subgraph adds 3, so this admits every graph the
 * subgraph limit below admits. */
#define QKV_LOADER_MAX_MESSAGE_DEPTH 128
/* Subgraphs (If/Loop/Scan bodies) nested deeper than this are refused. */
#define QKV_LOADER_MAX_GRAPH_DEPTH 32

#include <stdbool.h>

struct Onnx__TensorProto;
struct ProtobufCMessageDescriptor;
struct ProtobufCAllocator;

/*
 * Parses one serialized TensorProto (bytes at buf) into *out, with the same
 * validation as initializers (element type, rank, dims, payload length,
 * external data). External data is resolved relative to base_dir; NULL
 * refuses it. On success *out holds a malloc'd payload (free it with
 * qkv_tensor_data_free) and, when name_out is not NULL, *name_out a malloc'd
 * copy of the tensor's name ("" when absent). On failure returns
 * QKV_ERR_INVALID_MODEL (malformed), QKV_ERR_UNSUPPORTED, QKV_ERR_IO,
 * QKV_ERR_INVALID_ARGUMENT or QKV_ERR_OUT_OF_MEMORY with a message in err,
 * and leaves *out and *name_out untouched.
 */
qkv_status qkv_tensor_proto_decode(const void *buf, size_t bytes, const char *base_dir,
                                   qkv_tensor *out, char **name_out, qkv_error *err);

/* Frees a payload made by the loader (string elements too) and sets
 * t->data to NULL and t->data_bytes to 0. NULL t or NULL data: no-op. */
void qkv_tensor_data_free(qkv_tensor *t);

/*
 * Converts a parsed TensorProto into *out. `what` names the tensor in
 * messages ("initializer 'w'", "node 'c' (Constant): attribute 'value'").
 * The payload is taken from the message without copying where the layout
 * already matches (raw_data, float_data for float32, ...): those fields of
 * *tp are left empty, so *tp must be freed by the caller afterwards as usual.
 * Errors and ownership as qkv_tensor_proto_decode; on failure *out is untouched.
 */
qkv_status qkv_loader_tensor_from_proto(struct Onnx__TensorProto *tp, const char *what,
                                        const char *base_dir, qkv_tensor *out,
                                        qkv_error *err);

/*
 * Walks the protobuf wire format of a message of type `desc` without
 * recursion and checks it nests sub-messages at most max_depth levels deep.
 * Returns QKV_OK, QKV_ERR_UNSUPPORTED when the nesting is deeper, or
 * QKV_ERR_INVALID_MODEL when the bytes are not well-formed protobuf (the
 * message starts with `what`, e.g. "failed to parse 'm.onnx'").
 */
qkv_status qkv_loader_wire_check(const void *buf, size_t bytes,
                                 const struct ProtobufCMessageDescriptor *desc,
                                 size_t max_depth, const char *what, qkv_error *err);

/*
 * Sets *a to a protobuf-c allocator on malloc/free (so buffers unpacked with
 * it can be taken over and later released with free()) that sets *failed
 * when an allocation fails: protobuf-c's unpack returns NULL both for bad
 * bytes and for out of memory, and this tells them apart. *failed is set to
 * false here.
 */
void qkv_loader_pb_allocator(struct ProtobufCAllocator *a, bool *failed);

#endif /* QKV_LOADER_H */
