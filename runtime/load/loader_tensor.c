/*
 * loader_tensor.c - TensorProto -> qkv_tensor with an owned payload.
 *
 * Sources of a payload, in the order they are looked at:
 *   data_location EXTERNAL  a file beside the model: for an initializer of a
 *                           file-loaded model, used in place in a mapping of
 *                           the file (loader_map.c) when large enough; else
 *                           one read into one malloc'd buffer;
 *   a range reference       raw_data cut out of the model file before unpack
 *                           (loader_map.c): used in place in the mapping;
 *   raw_data                little-endian bytes, taken over from the message
 *                           (protobuf-c malloc'd them on unpack: no copy);
 *   the typed fields        float_data, int32_data, int64_data, double_data,
 *                           uint64_data, string_data. Arrays whose layout is
 *                           already the element layout (float_data of a
 *                           float32 tensor, ...) are taken over too; the
 *                           others are narrowed into a new buffer.
 * Everything taken from the file is size-checked with overflow-checked math
 * before it is used.
 */
/* realpath() is XSI; the build defines _POSIX_C_SOURCE only. */
#define _XOPEN_SOURCE 700

#include "loader.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "error.h"
#include "onnx.pb-c.h"
#include "size_math.h"
#include "str_util.h"

#if !defined(__BYTE_ORDER__) || __BYTE_ORDER__ != __ORDER_LITTLE_ENDIAN__
#error "qkv reads ONNX raw_data (little-endian) in place: it needs a little-endian host"
#endif

_Static_assert(sizeof(float) == 4 && sizeof(double) == 8, "IEEE float and double expected");

void qkv_tensor_data_free(qkv_tensor *t)
{
    if (!t || !t->data)
        return;
    if (t->dtype == QKV_DTYPE_STRING) {
        char **s = t->data;
        size_t n = t->data_bytes / sizeof(char *);
        for (size_t k = 0; k < n; k++)
            free(s[k]);
    }
    free(t->data);
    t->data = NULL;
    t->data_bytes = 0;
}

/* "dims [2,3] float32" into buf. */
static const char *describe(char *buf, size_t cap, const int64_t *dims, size_t rank, int32_t dtype)
{
    size_t len = 0;
    int w = snprintf(buf, cap, "dims [");
    len = w > 0 ? (size_t)w : 0;
    for (size_t k = 0; k < rank && len < cap; k++) {
        w = snprintf(buf + len, cap - len, "%s%" PRId64, k ? "," : "", dims[k]);
        len += w > 0 ? (size_t)w : 0;
    }
    if (len < cap)
        snprintf(buf + len, cap - len, "] %s", qkv_dtype_name((qkv_dtype)dtype));
    return buf;
}

/* A non-negative decimal integer; false on anything else or overflow. */
static bool parse_u64(const char *s, uint64_t *out)
{
    uint64_t v = 0;
    if (!s || !*s)
        return false;
    for (; *s; s++) {
        if (*s < '0' || *s > '9')
            return false;
        if (v > (UINT64_MAX - (uint64_t)(*s - '0')) / 10)
            return false;
        v = v * 10 + (uint64_t)(*s - '0');
    }
    *out = v;
    return true;
}

/*
 * Normalizes a relative '/'-separated location lexically into out (same
 * size as loc + 1): drops "." and empty components and applies "..".
 * false when a ".." would leave the directory.
 */
static bool normalize_location(const char *loc, char *out)
{
    size_t len = 0;
    const char *p = loc;
    while (*p) {
        const char *e = strchr(p, '/');
        size_t n = e ? (size_t)(e - p) : strlen(p);
        if (n == 2 && p[0] == '.' && p[1] == '.') {
            if (len == 0)
                return false;
            while (len > 0 && out[len - 1] != '/')
                len--;
            if (len > 0)
                len--; /* the separator before the dropped component */
        } else if (n > 0 && !(n == 1 && p[0] == '.')) {
            if (len > 0)
                out[len++] = '/';
            memcpy(out + len, p, n);
            len += n;
        }
        p += n;
        if (*p == '/')
            p++;
    }
    out[len] = '\0';
    return true;
}

/* Reads bytes [offset, offset+len) of fd into buf. */
static bool read_fully(int fd, void *buf, size_t len, uint64_t offset)
{
    uint8_t *p = buf;
    while (len > 0) {
        size_t chunk = len > ((size_t)1 << 30) ? ((size_t)1 << 30) : len;
        ssize_t r = pread(fd, p, chunk, (off_t)offset);
        if (r < 0 && errno == EINTR)
            continue;
        if (r <= 0)
            return false;
        p += r;
        len -= (size_t)r;
        offset += (uint64_t)r;
    }
    return true;
}

/* Where tp's external payload is: the location, offset and length keys.
 * The location must be relative; a given length must be `expected`. */
static qkv_status external_keys(const Onnx__TensorProto *tp, const char *what, size_t expected,
                                const char *desc, const char **loc, uint64_t *offset,
                                qkv_error *err)
{
    uint64_t length = 0;
    bool has_length = false;
    *loc = NULL;
    *offset = 0;
    for (size_t k = 0; k < tp->n_external_data; k++) {
        const Onnx__StringStringEntryProto *kv = tp->external_data[k];
        if (!kv->key)
            continue;
        if (strcmp(kv->key, "location") == 0) {
            *loc = kv->value;
        } else if (strcmp(kv->key, "offset") == 0) {
            if (!parse_u64(kv->value, offset))
                return qkv_error_set(err, QKV_ERR_INVALID_MODEL,
                                     "%s: external data offset '%s' is not a valid number", what,
                                     kv->value ? kv->value : "");
        } else if (strcmp(kv->key, "length") == 0) {
            if (!parse_u64(kv->value, &length))
                return qkv_error_set(err, QKV_ERR_INVALID_MODEL,
                                     "%s: external data length '%s' is not a valid number", what,
                                     kv->value ? kv->value : "");
            has_length = true;
        }
    }
    if (!*loc || !**loc)
        return qkv_error_set(err, QKV_ERR_INVALID_MODEL, "%s: external data has no location", what);
    if ((*loc)[0] == '/')
        return qkv_error_set(err, QKV_ERR_INVALID_MODEL,
                             "%s: external data location '%s' is an absolute path", what, *loc);
    if (has_length && length != expected)
        return qkv_error_set(err, QKV_ERR_INVALID_MODEL,
                             "%s: external data length is %" PRIu64 " bytes, expected %zu (%s)",
                             what, length, expected, desc);
    return QKV_OK;
}

/* The file behind location `loc`: *joined gets "base_dir/loc" (for
 * messages), *file_real its resolved path, which must stay inside base_dir
 * lexically and, after resolving symlinks, physically. The caller frees
 * both (also on error). */
static qkv_status external_path(const char *base_dir, const char *loc, const char *what,
                                char **joined, char **file_real, qkv_error *err)
{
    *joined = NULL;
    *file_real = NULL;
    qkv_status st = QKV_OK;
    char *rel = NULL, *base_real = NULL;
    size_t n_base = strlen(base_dir), n_loc = strlen(loc), n_joined;
    if (qkv_add_overflow(n_base, n_loc, &n_joined) || qkv_add_overflow(n_joined, 2, &n_joined) ||
        !(*joined = malloc(n_joined)) || !(rel = malloc(n_loc + 1))) {
        st = qkv_error_set(err, QKV_ERR_OUT_OF_MEMORY, "%s: out of memory", what);
        goto done;
    }
    if (!normalize_location(loc, rel)) {
        st = qkv_error_set(err, QKV_ERR_INVALID_MODEL,
                           "%s: external data location '%s' leaves the model directory", what, loc);
        goto done;
    }
    snprintf(*joined, n_joined, "%s/%s", base_dir, rel);
    base_real = realpath(base_dir, NULL);
    if (!base_real) {
        st = qkv_error_set(err, QKV_ERR_IO, "%s: cannot resolve the model directory '%s': %s", what,
                           base_dir, strerror(errno));
        goto done;
    }
    *file_real = realpath(*joined, NULL);
    if (!*file_real) {
        st = qkv_error_set(err, QKV_ERR_IO, "%s: cannot open external data file '%s': %s", what,
                           *joined, strerror(errno));
        goto done;
    }
    size_t nb = strlen(base_real);
    bool inside = strncmp(*file_real, base_real, nb) == 0 &&
                  ((*file_real)[nb] == '/' || (nb == 1 && base_real[0] == '/'));
    if (!inside)
        st = qkv_error_set(err, QKV_ERR_INVALID_MODEL,
                           "%s: external data location '%s' resolves to '%s', outside the model "
                           "directory",
                           what, loc, *file_real);
done:
    free(base_real);
    free(rel);
    return st;
}

/* Opens the regular file file_real (*fd, closed by the caller when >= 0)
 * and checks [offset, offset + expected) lies in it; *size its size. */
static qkv_status external_open(const char *file_real, const char *joined, const char *loc,
                                uint64_t offset, size_t expected, const char *what, int *fd,
                                uint64_t *size, qkv_error *err)
{
    struct stat sb;
    *size = 0;
    *fd = open(file_real, O_RDONLY);
    if (*fd < 0 || fstat(*fd, &sb) != 0)
        return qkv_error_set(err, QKV_ERR_IO, "%s: cannot open external data file '%s': %s", what,
                             joined, strerror(errno));
    if (!S_ISREG(sb.st_mode))
        return qkv_error_set(err, QKV_ERR_IO, "%s: external data file '%s' is not a regular file",
                             what, joined);
    *size = (uint64_t)sb.st_size;
    if (offset > *size || expected > *size - offset)
        return qkv_error_set(err, QKV_ERR_INVALID_MODEL,
                             "%s: external data offset %" PRIu64 " + length %zu is past the end "
                             "of '%s' (%" PRIu64 " bytes)",
                             what, offset, expected, loc, *size);
    return QKV_OK;
}

/*
 * Reads the external payload of tp (`expected` bytes) into a new buffer, or
 * with src, when at least QKV_LOADER_MAP_MIN_BYTES, takes it from a mapping
 * of the file (*borrowed as qkv_loader_map_payload says; a file that cannot
 * be mapped is read). The location must be relative, must not leave
 * base_dir (lexically and, after resolving symlinks, physically), and
 * [offset, offset+length) must lie in the file.
 */
static qkv_status read_external(const Onnx__TensorProto *tp, const char *what, const char *base_dir,
                                size_t expected, qkv_dtype dtype, const char *desc,
                                qkv_loader_source *src, void **data_out, bool *borrowed,
                                qkv_error *err)
{
    *data_out = NULL;
    *borrowed = false;
    if (!base_dir)
        return qkv_error_set(err, QKV_ERR_INVALID_ARGUMENT,
                             "%s: has external data, but the model was loaded from a buffer "
                             "without a base directory",
                             what);
    const char *loc;
    uint64_t offset, size = 0;
    qkv_status st = external_keys(tp, what, expected, desc, &loc, &offset, err);
    if (st != QKV_OK)
        return st;
    char *joined = NULL, *file_real = NULL;
    void *data = NULL;
    int fd = -1;
    st = external_path(base_dir, loc, what, &joined, &file_real, err);
    if (st == QKV_OK)
        st = external_open(file_real, joined, loc, offset, expected, what, &fd, &size, err);
    if (st != QKV_OK)
        goto done;
    if (src && expected >= QKV_LOADER_MAP_MIN_BYTES && size <= SIZE_MAX) {
        size_t map;
        qkv_error e2 = {QKV_OK, ""};
        st = qkv_loader_map_file(src, fd, file_real, (size_t)size, &map, what, &e2);
        if (st == QKV_OK) {
            st = qkv_loader_map_payload(src, map, (size_t)offset, expected, dtype, &data, borrowed,
                                        what, err);
            if (st == QKV_OK)
                *data_out = data;
            goto done;
        }
        if (st != QKV_ERR_IO) {
            *err = e2;
            goto done;
        }
        st = QKV_OK; /* a file system without mmap: read it */
    }
    if (expected > 0) {
        data = malloc(expected);
        if (!data) {
            st = qkv_error_set(err, QKV_ERR_OUT_OF_MEMORY,
                               "%s: out of memory reading %zu bytes of external data", what,
                               expected);
            goto done;
        }
        if (!read_fully(fd, data, expected, offset)) {
            st = qkv_error_set(err, QKV_ERR_IO, "%s: cannot read external data file '%s'", what,
                               joined);
            free(data);
            goto done;
        }
    }
    *data_out = data;
done:
    if (fd >= 0)
        close(fd);
    free(file_real);
    free(joined);
    return st;
}

/* Typed-field count mismatch message. */
static qkv_status count_error(qkv_error *err, const char *what, const char *field, size_t have,
                              size_t want, const char *desc)
{
    return qkv_error_set(err, QKV_ERR_INVALID_MODEL, "%s: %s has %zu values, expected %zu (%s)",
                         what, field, have, want, desc);
}

/* Takes over a repeated field's array: the message no longer owns it. */
#define STEAL(tp, field, out)                                                                      \
    do {                                                                                           \
        (out) = (tp)->field;                                                                       \
        (tp)->field = NULL;                                                                        \
        (tp)->n_##field = 0;                                                                       \
    } while (0)

/* Copies `count` int32_data (or, for uint32, uint64_data) entries into a new
 * payload of `bytes` bytes, each narrowed to the element's width: 4 bytes
 * (uint32), 2 (16-bit types: their bits), 1 (8-bit types: their bits; bool:
 * nonzero is 1; packed sub-byte types: one byte of packed elements). */
static qkv_status narrow_typed(const Onnx__TensorProto *tp, const char *what, qkv_dtype dtype,
                               size_t count, size_t bytes, void **data_out, qkv_error *err)
{
    unsigned char *d = malloc(bytes ? bytes : 1);
    if (!d)
        return qkv_error_set(err, QKV_ERR_OUT_OF_MEMORY, "%s: out of memory (%zu bytes)", what,
                             bytes);
    for (size_t k = 0; k < count; k++) {
        if (dtype == QKV_DTYPE_UINT32) {
            ((uint32_t *)(void *)d)[k] = (uint32_t)tp->uint64_data[k];
        } else if (bytes == 2 * count) {
            ((uint16_t *)(void *)d)[k] = (uint16_t)tp->int32_data[k];
        } else {
            d[k] = dtype == QKV_DTYPE_BOOL ? (uint8_t)(tp->int32_data[k] != 0)
                                           : (uint8_t)tp->int32_data[k];
        }
    }
    *data_out = d;
    return QKV_OK;
}

/* string_data (elements entries) as a new array of NUL-terminated copies. */
static qkv_status decode_strings(const Onnx__TensorProto *tp, const char *what, size_t elements,
                                 void **data_out, qkv_error *err)
{
    char **d = calloc(elements ? elements : 1, sizeof *d);
    if (!d)
        return qkv_error_set(err, QKV_ERR_OUT_OF_MEMORY, "%s: out of memory (%zu strings)", what,
                             elements);
    for (size_t k = 0; k < elements; k++) {
        const ProtobufCBinaryData *s = &tp->string_data[k];
        size_t n;
        if (qkv_add_overflow(s->len, 1, &n) || !(d[k] = malloc(n))) {
            for (size_t j = 0; j < k; j++)
                free(d[j]);
            free(d);
            return qkv_error_set(err, QKV_ERR_OUT_OF_MEMORY, "%s: out of memory (%zu strings)",
                                 what, elements);
        }
        if (s->len)
            memcpy(d[k], s->data, s->len);
        d[k][s->len] = '\0';
    }
    *data_out = d;
    return QKV_OK;
}

/* Decodes the typed repeated fields of tp into a new payload: the field
 * ONNX keeps each element type in, with the count the shape needs. */
static qkv_status decode_typed(Onnx__TensorProto *tp, const char *what, qkv_dtype dtype,
                               size_t elements, size_t bytes, const char *desc, void **data_out,
                               qkv_error *err)
{
    size_t pairs; /* complex: two scalars per element */
    *data_out = NULL;
    switch (dtype) {
    case QKV_DTYPE_FLOAT:
        if (tp->n_float_data != elements)
            return count_error(err, what, "float_data", tp->n_float_data, elements, desc);
        STEAL(tp, float_data, *data_out);
        return QKV_OK;
    case QKV_DTYPE_COMPLEX64:
        if (qkv_mul_overflow(elements, 2, &pairs) || tp->n_float_data != pairs)
            return count_error(err, what, "float_data", tp->n_float_data, elements * 2, desc);
        STEAL(tp, float_data, *data_out);
        return QKV_OK;
    case QKV_DTYPE_DOUBLE:
        if (tp->n_double_data != elements)
            return count_error(err, what, "double_data", tp->n_double_data, elements, desc);
        STEAL(tp, double_data, *data_out);
        return QKV_OK;
    case QKV_DTYPE_COMPLEX128:
        if (qkv_mul_overflow(elements, 2, &pairs) || tp->n_double_data != pairs)
            return count_error(err, what, "double_data", tp->n_double_data, elements * 2, desc);
        STEAL(tp, double_data, *data_out);
        return QKV_OK;
    case QKV_DTYPE_INT64:
        if (tp->n_int64_data != elements)
            return count_error(err, what, "int64_data", tp->n_int64_data, elements, desc);
        STEAL(tp, int64_data, *data_out);
        return QKV_OK;
    case QKV_DTYPE_INT32:
        if (tp->n_int32_data != elements)
            return count_error(err, what, "int32_data", tp->n_int32_data, elements, desc);
        STEAL(tp, int32_data, *data_out);
        return QKV_OK;
    case QKV_DTYPE_UINT64:
        if (tp->n_uint64_data != elements)
            return count_error(err, what, "uint64_data", tp->n_uint64_data, elements, desc);
        STEAL(tp, uint64_data, *data_out);
        return QKV_OK;
    case QKV_DTYPE_UINT32:
        if (tp->n_uint64_data != elements)
            return count_error(err, what, "uint64_data", tp->n_uint64_data, elements, desc);
        return narrow_typed(tp, what, dtype, elements, bytes, data_out, err);
    case QKV_DTYPE_INT16:
    case QKV_DTYPE_UINT16:
    case QKV_DTYPE_FLOAT16:
    case QKV_DTYPE_BFLOAT16:
    case QKV_DTYPE_BOOL:
    case QKV_DTYPE_INT8:
    case QKV_DTYPE_UINT8:
    case QKV_DTYPE_FLOAT8E4M3FN:
    case QKV_DTYPE_FLOAT8E4M3FNUZ:
    case QKV_DTYPE_FLOAT8E5M2:
    case QKV_DTYPE_FLOAT8E5M2FNUZ:
    case QKV_DTYPE_FLOAT8E8M0: /* one element (its 16 or 8 bits) per int32 */
        if (tp->n_int32_data != elements)
            return count_error(err, what, "int32_data", tp->n_int32_data, elements, desc);
        return narrow_typed(tp, what, dtype, elements, bytes, data_out, err);
    case QKV_DTYPE_UINT4:
    case QKV_DTYPE_INT4:
    case QKV_DTYPE_FLOAT4E2M1:
    case QKV_DTYPE_UINT2:
    case QKV_DTYPE_INT2: /* packed: one byte of packed elements per int32 */
        if (tp->n_int32_data != bytes)
            return count_error(err, what, "int32_data (packed bytes)", tp->n_int32_data, bytes,
                               desc);
        return narrow_typed(tp, what, dtype, bytes, bytes, data_out, err);
    case QKV_DTYPE_STRING:
        if (tp->n_string_data != elements)
            return count_error(err, what, "string_data", tp->n_string_data, elements, desc);
        return decode_strings(tp, what, elements, data_out, err);
    default:
        return qkv_error_set(err, QKV_ERR_UNSUPPORTED, "%s: element type %s has no typed field",
                             what, qkv_dtype_name(dtype));
    }
}

/* The payload of a raw_data field cut out of the model file (range index
 * `range` of src), checked against the tensor's size exactly as raw_data. */
static qkv_status mapped_raw_data(qkv_loader_source *src, uint64_t range, const char *what,
                                  qkv_dtype dtype, size_t bytes, const char *desc, void **data,
                                  bool *lent, qkv_error *err)
{
    if (dtype == QKV_DTYPE_STRING)
        return qkv_error_set(err, QKV_ERR_INVALID_MODEL, "%s: string tensors cannot use raw_data",
                             what);
    if (range >= src->n_ranges || src->ranges[range].used || src->n_maps == 0)
        return qkv_error_set(err, QKV_ERR_INTERNAL, "%s: bad raw_data reference %" PRIu64, what,
                             range);
    qkv_loader_range *r = &src->ranges[range];
    if (r->bytes != bytes)
        return qkv_error_set(err, QKV_ERR_INVALID_MODEL,
                             "%s: raw_data has %zu bytes, expected %zu (%s)", what, r->bytes, bytes,
                             desc);
    if (r->offset > src->maps[0].bytes || r->bytes > src->maps[0].bytes - r->offset)
        return qkv_error_set(err, QKV_ERR_INVALID_MODEL,
                             "%s: raw_data at byte %zu + %zu is past the end of the file (%zu "
                             "bytes)",
                             what, r->offset, r->bytes, src->maps[0].bytes);
    qkv_status st =
        qkv_loader_map_payload(src, 0, r->offset, r->bytes, dtype, data, lent, what, err);
    if (st == QKV_OK)
        r->used = true;
    return st;
}

/* true when tp carries no payload field at all. */
static bool has_no_data(const Onnx__TensorProto *tp)
{
    return !tp->has_raw_data && tp->raw_data.len == 0 && tp->n_float_data == 0 &&
           tp->n_int32_data == 0 && tp->n_string_data == 0 && tp->n_int64_data == 0 &&
           tp->n_double_data == 0 && tp->n_uint64_data == 0;
}

qkv_status qkv_loader_tensor_from_proto(struct Onnx__TensorProto *tp, const char *what,
                                        const char *base_dir, qkv_loader_source *src,
                                        qkv_tensor *out, bool *borrowed, qkv_error *err)
{
    char desc[256];
    bool lent = false;
    uint64_t range = 0;
    if (!tp->has_data_type || tp->data_type == QKV_DTYPE_UNDEFINED)
        return qkv_error_set(err, QKV_ERR_INVALID_MODEL, "%s: element type is undefined", what);
    if (tp->data_type < 0 || tp->data_type >= QKV_DTYPE_COUNT)
        return qkv_error_set(err, QKV_ERR_UNSUPPORTED, "%s: unknown element type %" PRId32, what,
                             tp->data_type);
    qkv_dtype dtype = (qkv_dtype)tp->data_type;
    if (tp->n_dims > QKV_MAX_RANK)
        return qkv_error_set(err, QKV_ERR_UNSUPPORTED, "%s: rank %zu exceeds the maximum %d", what,
                             tp->n_dims, QKV_MAX_RANK);
    describe(desc, sizeof desc, tp->dims, tp->n_dims, tp->data_type);
    for (size_t k = 0; k < tp->n_dims; k++)
        if (tp->dims[k] < 0)
            return qkv_error_set(err, QKV_ERR_INVALID_MODEL,
                                 "%s: negative dim %" PRId64 " at axis %zu (%s)", what, tp->dims[k],
                                 k, desc);
    size_t elements, bytes;
    if (!qkv_shape_elements(tp->dims, (int32_t)tp->n_dims, &elements) ||
        !qkv_dtype_storage_bytes(dtype, elements, &bytes))
        return qkv_error_set(err, QKV_ERR_INVALID_MODEL,
                             "%s: size overflows (%s): too many elements", what, desc);
    if (tp->segment)
        return qkv_error_set(err, QKV_ERR_UNSUPPORTED, "%s: segmented tensors are not supported",
                             what);

    void *data = NULL;
    qkv_status st = QKV_OK;
    if (tp->has_data_location && tp->data_location == ONNX__TENSOR_PROTO__DATA_LOCATION__EXTERNAL) {
        if (dtype == QKV_DTYPE_STRING)
            return qkv_error_set(err, QKV_ERR_UNSUPPORTED,
                                 "%s: external data for string tensors is not supported", what);
        st = read_external(tp, what, base_dir, bytes, dtype, desc, src, &data, &lent, err);
    } else if (src && src->n_ranges > 0 && qkv_loader_range_ref(tp, &range)) {
        st = mapped_raw_data(src, range, what, dtype, bytes, desc, &data, &lent, err);
    } else if (tp->has_raw_data || tp->raw_data.len > 0) {
        if (dtype == QKV_DTYPE_STRING)
            return qkv_error_set(err, QKV_ERR_INVALID_MODEL,
                                 "%s: string tensors cannot use raw_data", what);
        if (tp->raw_data.len != bytes)
            return qkv_error_set(err, QKV_ERR_INVALID_MODEL,
                                 "%s: raw_data has %zu bytes, expected %zu (%s)", what,
                                 tp->raw_data.len, bytes, desc);
        /* protobuf-c malloc'd these bytes on unpack: take them over. */
        data = tp->raw_data.data;
        tp->raw_data.data = NULL;
        tp->raw_data.len = 0;
    } else if (elements == 0) {
        data = NULL;
    } else if (has_no_data(tp)) {
        return qkv_error_set(err, QKV_ERR_INVALID_MODEL, "%s: has no data (%s)", what, desc);
    } else {
        st = decode_typed(tp, what, dtype, elements, bytes, desc, &data, err);
    }
    if (st != QKV_OK)
        return st;

    if (bytes == 0) { /* an empty tensor has no payload, whatever the file said */
        if (!lent)
            free(data);
        data = NULL;
        lent = false;
    }
    memset(out, 0, sizeof *out);
    out->dtype = dtype;
    out->rank = (int32_t)tp->n_dims;
    for (size_t k = 0; k < tp->n_dims; k++)
        out->dims[k] = tp->dims[k];
    out->data = data;
    out->data_bytes = bytes;
    if (borrowed)
        *borrowed = lent;
    return QKV_OK;
}

qkv_status qkv_tensor_proto_decode(const void *buf, size_t bytes, const char *base_dir,
                                   qkv_tensor *out, char **name_out, qkv_error *err)
{
    if (!buf && bytes > 0)
        return qkv_error_set(err, QKV_ERR_INVALID_ARGUMENT, "tensor buffer is NULL");
    if (!out)
        return qkv_error_set(err, QKV_ERR_INVALID_ARGUMENT, "tensor output is NULL");
    qkv_status st =
        qkv_loader_wire_check(buf, bytes, &onnx__tensor_proto__descriptor,
                              QKV_LOADER_MAX_MESSAGE_DEPTH, "failed to parse TensorProto", err);
    if (st != QKV_OK)
        return st;
    ProtobufCAllocator alloc;
    bool alloc_failed;
    qkv_loader_pb_allocator(&alloc, &alloc_failed);
    Onnx__TensorProto *tp = onnx__tensor_proto__unpack(&alloc, bytes, buf);
    if (!tp && alloc_failed)
        return qkv_error_set(err, QKV_ERR_OUT_OF_MEMORY,
                             "out of memory unpacking a TensorProto of %zu bytes", bytes);
    if (!tp)
        return qkv_error_set(err, QKV_ERR_INVALID_MODEL,
                             "failed to parse TensorProto of %zu bytes: truncated or corrupt "
                             "protobuf",
                             bytes);
    char what[QKV_ERROR_MESSAGE_BYTES / 2];
    snprintf(what, sizeof what, "tensor '%s'", tp->name ? tp->name : "");
    qkv_tensor t;
    char *name = NULL;
    st = qkv_loader_tensor_from_proto(tp, what, base_dir, NULL, &t, NULL, err);
    if (st == QKV_OK && name_out && !(name = qkv_strdup(tp->name))) {
        qkv_tensor_data_free(&t);
        st = qkv_error_set(err, QKV_ERR_OUT_OF_MEMORY, "%s: out of memory", what);
    }
    onnx__tensor_proto__free_unpacked(tp, &alloc);
    if (st != QKV_OK)
        return st;
    *out = t;
    if (name_out)
        *name_out = name;
    return QKV_OK;
}
