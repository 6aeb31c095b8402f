/*
 * loader.h - internal interface of the ONNX loader (runtime/load/loader*.c).
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
 * Free with qkv_tensor_data_free(). The one exception: initializers of a model
 * loaded from a file may point into a file mapping the graph owns
 * (qkv_ir_value.mapped; loader_map.c).
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
#include <stdint.h>

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

/* ---- payloads in file mappings (loader_map.c) ------------------------------------ */

/* raw_data and external payloads of at least this many bytes are used in
 * place in a file mapping (or copied from it page by page), smaller ones take
 * the ordinary copy path. */
#define QKV_LOADER_MAP_MIN_BYTES 4096

/* One raw_data payload cut out of the model file: bytes [offset, offset+bytes)
 * of the model file mapping. */
typedef struct qkv_loader_range {
    size_t offset;
    size_t bytes;
    bool used; /* taken by an initializer already */
} qkv_loader_range;

/* One read-only private file mapping made while loading. */
typedef struct qkv_loader_map {
    uint8_t *addr;
    size_t bytes;
    char *path; /* resolved path of an external data file (owned); NULL: the model */
    bool kept;  /* a constant points into it: hand it to the graph */
} qkv_loader_map;

/*
 * The mappings of one load. maps[0] is the model file when it was mapped
 * (ranges refer to it); external data files are mapped on first use, once
 * each. qkv_loader_source_fini unmaps what was not handed to a graph.
 */
typedef struct qkv_loader_source {
    qkv_loader_range *ranges;
    size_t n_ranges, cap_ranges;
    qkv_loader_map *maps;
    size_t n_maps, cap_maps;
} qkv_loader_source;

/*
 * Builds, from the well-formed ModelProto bytes at file[0..bytes) (the
 * mapping src->maps[0]), a copy without the payloads of the large raw_data
 * fields of the main graph's initializers: each such payload becomes a
 * reference to an entry of src->ranges (a varint in a field number
 * TensorProto does not use), and the lengths of the enclosing GraphProto
 * and TensorProto are re-encoded. Only a TensorProto with exactly one
 * raw_data field is rewritten; the reserved field number is stripped from
 * every initializer, so a reference can only come from here. Sets *out to
 * the malloc'd copy, or to NULL when nothing was cut (unpack the original).
 * Returns QKV_OK, QKV_ERR_OUT_OF_MEMORY or QKV_ERR_INVALID_MODEL (bad framing;
 * the pre-scan normally catches it first), with `what` starting the message.
 */
qkv_status qkv_loader_compact(const uint8_t *file, size_t bytes, qkv_loader_source *src,
                              uint8_t **out, size_t *out_bytes, const char *what, qkv_error *err);

/*
 * The payload of tp when it is a reference made by qkv_loader_compact:
 * true and *range set to its index in src->ranges; false when tp has none.
 */
bool qkv_loader_range_ref(const struct Onnx__TensorProto *tp, uint64_t *range);

/*
 * Makes bytes [offset, offset+bytes) of mapping map_index the payload of a
 * tensor of `dtype`: in place when the address is aligned for the element
 * type (*borrowed true; the mapping is kept for the graph), else copied into
 * a malloc'd buffer (the only way to give kernels an aligned pointer) and the
 * source pages dropped (*borrowed false). The range must lie in the mapping
 * (the caller checked). QKV_ERR_OUT_OF_MEMORY on a failed copy.
 */
qkv_status qkv_loader_map_payload(qkv_loader_source *src, size_t map_index, size_t offset,
                                  size_t bytes, qkv_dtype dtype, void **data, bool *borrowed,
                                  const char *what, qkv_error *err);

/*
 * The index in src->maps of the read-only private mapping of the whole
 * regular file open as fd (`path` its resolved name, `size` its size > 0),
 * mapping it on first use. QKV_ERR_IO when mmap fails (the caller then reads
 * the file), QKV_ERR_OUT_OF_MEMORY.
 */
qkv_status qkv_loader_map_file(qkv_loader_source *src, int fd, const char *path, size_t size,
                               size_t *index, const char *what, qkv_error *err);

/* Registers the model file's mapping as src->maps[0] (the ranges of
 * qkv_loader_compact refer to it); src then unmaps it unless a constant kept
 * it. false when out of memory or src has mappings already. */
bool qkv_loader_source_model(qkv_loader_source *src, void *addr, size_t bytes);

/* Moves the kept mappings into g->mappings (the graph unmaps them when
 * destroyed). false when out of memory: then nothing moved. */
struct qkv_ir_graph;
bool qkv_loader_source_give(qkv_loader_source *src, struct qkv_ir_graph *g);

/* Unmaps every mapping still held and frees the tables. */
void qkv_loader_source_fini(qkv_loader_source *src);

/*
 * Converts a parsed TensorProto into *out. `what` names the tensor in
 * messages ("initializer 'w'", "node 'c' (Constant): attribute 'value'").
 * The payload is taken from the message without copying where the layout
 * already matches (raw_data, float_data for float32, ...): those fields of
 * *tp are left empty, so *tp must be freed by the caller afterwards as usual.
 * Errors and ownership as qkv_tensor_proto_decode; on failure *out is untouched.
 *
 * With src not NULL (initializers of a model loaded from a file), a range
 * reference of qkv_loader_compact and large external payloads come from
 * src's file mappings (qkv_loader_map_payload): then *borrowed tells whether
 * out->data points into a mapping (not to be freed). src NULL: every payload
 * is malloc'd, and borrowed may be NULL.
 */
qkv_status qkv_loader_tensor_from_proto(struct Onnx__TensorProto *tp, const char *what,
                                        const char *base_dir, qkv_loader_source *src,
                                        qkv_tensor *out, bool *borrowed, qkv_error *err);

/* Reads the protobuf varint at buf[*pos..end) into *out and moves *pos past
 * it. false (nothing written) when truncated or longer than 10 bytes. */
bool qkv_loader_read_varint(const uint8_t *buf, size_t end, size_t *pos, uint64_t *out);

/*
 * Walks the protobuf wire format of a message of type `desc` without
 * recursion and checks it nests sub-messages at most max_depth levels deep.
 * Returns QKV_OK, QKV_ERR_UNSUPPORTED when the nesting is deeper, or
 * QKV_ERR_INVALID_MODEL when the bytes are not well-formed protobuf (the
 * message starts with `what`, e.g. "failed to parse 'm.onnx'").
 */
qkv_status qkv_loader_wire_check(const void *buf, size_t bytes,
                                 const struct ProtobufCMessageDescriptor *desc, size_t max_depth,
                                 const char *what, qkv_error *err);

/*
 * Sets *a to a protobuf-c allocator on malloc/free (so buffers unpacked with
 * it can be taken over and later released with free()) that sets *failed
 * when an allocation fails: protobuf-c's unpack returns NULL both for bad
 * bytes and for out of memory, and this tells them apart. *failed is set to
 * false here.
 */
void qkv_loader_pb_allocator(struct ProtobufCAllocator *a, bool *failed);

/* ---- model-local functions (loader_functions.c) ---------------------------------- */

struct Onnx__ModelProto;
struct Onnx__NodeProto;

/* What inlining changed in an unpacked model, to be undone before it is freed. */
typedef struct qkv_loader_inline qkv_loader_inline;

/*
 * Replaces every call of a model-local function (ModelProto.functions) in
 * mp's graphs and subgraphs by a renamed copy of the function's body, calls
 * inside bodies too, so that the converter sees ordinary nodes. On success
 * *out is NULL when the model has no functions, else the record of the
 * changes: undo it with qkv_loader_inline_undo before freeing mp. On failure
 * (QKV_ERR_INVALID_MODEL: a function defined twice or badly, an unknown
 * function called in a function domain, recursion, a call with more inputs
 * or outputs than the function has, an attribute the function does not
 * declare; QKV_ERR_UNSUPPORTED: calls nested too deeply or too many nodes;
 * QKV_ERR_OUT_OF_MEMORY) mp is as it was and err (not NULL) names the call,
 * the function and the node.
 */
qkv_status qkv_loader_inline_functions(struct Onnx__ModelProto *mp, qkv_loader_inline **out,
                                       qkv_error *err);

/* The opset version of `domain` that node np uses when it was inlined from a
 * function that imports that domain; -1 otherwise (np is not inlined, or
 * its function does not import the domain: the model's import applies).
 * in may be NULL. */
int64_t qkv_loader_inline_opset(const qkv_loader_inline *in, const struct Onnx__NodeProto *np,
                                const char *domain);

/* Puts mp's node arrays back as they were and frees the copies. NULL: no-op. */
void qkv_loader_inline_undo(qkv_loader_inline *in);

#endif /* QKV_LOADER_H */
