/*
 * value_io.c - SequenceProto and OptionalProto files (value_io.h).
 *
 * Only the fields qkv reads are interpreted; unknown fields are skipped by
 * their wire type. Field numbers (onnx-data.proto):
 *   SequenceProto: 1 name, 2 elem_type, 3 tensor_values (repeated),
 *                  4 sparse_tensor_values, 5 sequence_values, 6 map_values,
 *                  7 optional_values
 *   OptionalProto: 1 name, 2 elem_type, 3 tensor_value, 4 sparse_tensor_value,
 *                  5 sequence_value, 6 map_value, 7 optional_value
 */
#include "value_io.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "error.h"
#include "loader.h" /* qkv_tensor_proto_decode, qkv_tensor_data_free */
#include "str_util.h"
#include "tensor_io.h"

typedef struct wire {
    const unsigned char *p, *end;
} wire;

static bool read_varint(wire *w, uint64_t *out)
{
    uint64_t v = 0;
    for (unsigned shift = 0; shift < 64; shift += 7) {
        if (w->p >= w->end)
            return false;
        unsigned char b = *w->p++;
        v |= (uint64_t)(b & 0x7f) << shift;
        if (!(b & 0x80)) {
            *out = v;
            return true;
        }
    }
    return false;
}

/* The next field: its number, wire type and, for length-delimited ones, the
 * bytes. false at the end or when malformed (*bad set then). */
static bool next_field(wire *w, uint32_t *field, const unsigned char **data, size_t *len, bool *bad)
{
    uint64_t key, v;
    *bad = false;
    *data = NULL;
    *len = 0;
    if (w->p >= w->end)
        return false;
    if (!read_varint(w, &key) || (key >> 3) == 0 || (key >> 3) > UINT32_MAX) {
        *bad = true;
        return false;
    }
    *field = (uint32_t)(key >> 3);
    switch (key & 7) {
    case 0:
        if (!read_varint(w, &v))
            break;
        return true;
    case 1:
        if ((size_t)(w->end - w->p) < 8)
            break;
        w->p += 8;
        return true;
    case 2:
        if (!read_varint(w, &v) || v > (uint64_t)(w->end - w->p))
            break;
        *data = w->p;
        *len = (size_t)v;
        w->p += v;
        return true;
    case 5:
        if ((size_t)(w->end - w->p) < 4)
            break;
        w->p += 4;
        return true;
    default:
        break; /* groups (3, 4) and reserved types */
    }
    *bad = true;
    return false;
}

void qkv_cli_value_free(qkv_value *v)
{
    if (!v)
        return;
    qkv_tensor *ts = (qkv_tensor *)v->tensors; /* decoded here: ours */
    for (size_t i = 0; i < v->count; i++)
        qkv_tensor_data_free(&ts[i]);
    free(ts);
    v->tensors = NULL;
    v->count = 0;
    v->has_element = 0;
}

static qkv_status add_tensor(qkv_value *v, const unsigned char *data, size_t len,
                             const char *base_dir, qkv_error *err)
{
    static const unsigned char empty = 0;
    qkv_tensor *ts = realloc((void *)v->tensors, (v->count + 1) * sizeof *ts);
    if (!ts)
        return qkv_error_set(err, QKV_ERR_OUT_OF_MEMORY, "out of memory reading a value");
    v->tensors = ts;
    memset(&ts[v->count], 0, sizeof ts[v->count]);
    qkv_status st =
        qkv_tensor_proto_decode(len ? data : &empty, len, base_dir, &ts[v->count], NULL, err);
    if (st != QKV_OK)
        return st;
    if (v->count == 0)
        v->elem_dtype = ts[0].dtype;
    v->count++;
    return QKV_OK;
}

static qkv_status unsupported_field(uint32_t field, const char *msg, qkv_error *err)
{
    return qkv_error_set(err, QKV_ERR_UNSUPPORTED,
                         "%s: field %u (nested sequences, maps, "
                         "optionals and sparse tensors are not read)",
                         msg, field);
}

static qkv_status malformed(const char *msg, qkv_error *err)
{
    return qkv_error_set(err, QKV_ERR_INVALID_MODEL, "%s: truncated or corrupt protobuf", msg);
}

/* The tensors of a SequenceProto appended to v. */
static qkv_status decode_sequence(const unsigned char *buf, size_t bytes, const char *base_dir,
                                  qkv_value *v, qkv_error *err)
{
    wire w = {buf, buf + bytes};
    uint32_t field;
    const unsigned char *data;
    size_t len;
    bool bad;
    while (next_field(&w, &field, &data, &len, &bad)) {
        qkv_status st = QKV_OK;
        if (field == 3 && data)
            st = add_tensor(v, data, len, base_dir, err);
        else if (field >= 4 && field <= 7)
            st = unsupported_field(field, "SequenceProto", err);
        if (st != QKV_OK)
            return st;
    }
    return bad ? malformed("SequenceProto", err) : QKV_OK;
}

/* An OptionalProto into v: its tensor or sequence, or nothing (empty). */
static qkv_status decode_optional(const unsigned char *buf, size_t bytes, bool sequence,
                                  const char *base_dir, qkv_value *v, qkv_error *err)
{
    wire w = {buf, buf + bytes};
    uint32_t field;
    const unsigned char *data;
    size_t len;
    bool bad;
    while (next_field(&w, &field, &data, &len, &bad)) {
        qkv_status st = QKV_OK;
        if ((field == 3 || field == 5) && data && v->has_element)
            return qkv_error_set(err, QKV_ERR_INVALID_MODEL, "OptionalProto holds two values");
        if (field == 3 && data && !sequence)
            st = add_tensor(v, data, len, base_dir, err);
        else if (field == 5 && data && sequence)
            st = decode_sequence(data, len, base_dir, v, err);
        else if (field == 3 || field == 5)
            st = qkv_error_set(
                err, QKV_ERR_INVALID_MODEL, "OptionalProto holds a %s, the model expects a %s",
                field == 3 ? "tensor" : "sequence", sequence ? "sequence" : "tensor");
        else if (field == 4 || field == 6 || field == 7)
            st = unsupported_field(field, "OptionalProto", err);
        if (st != QKV_OK)
            return st;
        if (field == 3 || field == 5)
            v->has_element = 1;
    }
    return bad ? malformed("OptionalProto", err) : QKV_OK;
}

qkv_status qkv_cli_value_decode(const void *buf, size_t bytes, qkv_type_kind kind,
                                const char *base_dir, qkv_value *out, qkv_error *err)
{
    static const unsigned char empty = 0;
    qkv_value v = {.struct_size = sizeof v, .kind = kind, .has_element = 1};
    const unsigned char *b = bytes ? buf : &empty;
    qkv_status st;
    switch (kind) {
    case QKV_KIND_TENSOR:
        st = add_tensor(&v, b, bytes, base_dir, err);
        break;
    case QKV_KIND_SEQUENCE:
        st = decode_sequence(b, bytes, base_dir, &v, err);
        break;
    case QKV_KIND_OPTIONAL:
    case QKV_KIND_OPTIONAL_SEQUENCE:
        v.has_element = 0;
        st = decode_optional(b, bytes, kind == QKV_KIND_OPTIONAL_SEQUENCE, base_dir, &v, err);
        break;
    default:
        st = qkv_error_set(err, QKV_ERR_UNSUPPORTED, "values of kind %d", (int)kind);
        break;
    }
    if (st != QKV_OK) {
        qkv_cli_value_free(&v);
        memset(out, 0, sizeof *out);
        return st;
    }
    *out = v;
    return QKV_OK;
}

qkv_status qkv_cli_value_read(const char *path, qkv_type_kind kind, qkv_value *out, qkv_error *err)
{
    void *buf = NULL;
    size_t bytes = 0;
    memset(out, 0, sizeof *out);
    qkv_status st = qkv_cli_read_file(path, &buf, &bytes, err);
    if (st != QKV_OK)
        return st;
    char *dir = qkv_strdup(path);
    if (!dir) {
        free(buf);
        return qkv_error_set(err, QKV_ERR_OUT_OF_MEMORY, "out of memory");
    }
    char *slash = strrchr(dir, '/');
    if (slash == dir)
        dir[1] = '\0';
    else if (slash)
        *slash = '\0';
    else
        strcpy(dir, ".");
    st = qkv_cli_value_decode(buf, bytes, kind, dir, out, err);
    free(dir);
    free(buf);
    if (st != QKV_OK)
        return qkv_error_prefix(err, "%s", path);
    return QKV_OK;
}
