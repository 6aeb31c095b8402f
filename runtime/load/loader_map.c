/*
 * loader_map.c - initializer payloads used in place in file mappings.
 *
 * protobuf-c copies every bytes field on unpack, so unpacking a mapped model
 * file leaves both the file's pages and a malloc'd copy of every weight
 * resident: twice the weights. Instead the loader
 *   1. cuts the large raw_data payloads of the main graph's initializers out
 *      of the wire bytes (ModelProto.graph = 7 -> GraphProto.initializer = 5
 *      -> TensorProto.raw_data = 9): the payload becomes a small reference,
 *      and only the two enclosing length prefixes are re-encoded;
 *   2. unpacks that compact copy (only the graph's structure is copied);
 *   3. points each referenced initializer at its bytes in the mapping.
 * Subgraph initializers and Constant node tensors stay on the copy path.
 *
 * Alignment: a payload sits wherever the protobuf framing put it. Kernels
 * read constant data through typed pointers (and vectorised loops assume the
 * element alignment), so a payload is used in place only when its address is
 * aligned for its element type; otherwise it is copied into a malloc'd buffer
 * and the pages it came from are dropped at once, which keeps the peak at one
 * copy of the weights either way.
 *
 * The mappings are read-only and private: a page is only ever read, so
 * dropping it (MADV_DONTNEED) after a kernel packed its own copy just lowers
 * RSS; reading it again would fault it in from the file. A file truncated by
 * someone else while mapped makes reads fault (SIGBUS), as with every mmap
 * based loader.
 */
#define _DEFAULT_SOURCE /* madvise */

#include "loader.h"

#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "error.h"
#include "hugepages.h"
#include "ir.h"
#include "onnx.pb-c.h"
#include "size_math.h"
#include "str_util.h"

/* The field number of a range reference: the largest protobuf allows, one
 * TensorProto will not use. */
#define RANGE_FIELD 536870911u
#define MODEL_GRAPH_FIELD 7u
#define GRAPH_INITIALIZER_FIELD 5u
#define TENSOR_RAW_DATA_FIELD 9u

/* ---- wire format ----------------------------------------------------------------- */

typedef struct field {
    uint32_t number;
    unsigned wire;
    size_t start; /* the key's first byte */
    size_t body;  /* length-delimited: the payload's first byte */
    size_t len;   /* length-delimited: payload bytes */
    size_t end;   /* one past the field */
} field;

/* Reads the field at p[*pos..end) into *f and moves *pos past it. */
static bool next_field(const uint8_t *p, size_t end, size_t *pos, field *f)
{
    uint64_t key, n;
    f->start = *pos;
    if (!qkv_loader_read_varint(p, end, pos, &key) || (key >> 3) == 0 || (key >> 3) > UINT32_MAX)
        return false;
    f->number = (uint32_t)(key >> 3);
    f->wire = (unsigned)(key & 7);
    f->body = f->len = 0;
    switch (f->wire) {
    case 0:
        if (!qkv_loader_read_varint(p, end, pos, &n))
            return false;
        break;
    case 1:
    case 5: {
        size_t w = f->wire == 1 ? 8 : 4;
        if (w > end - *pos)
            return false;
        *pos += w;
        break;
    }
    case 2:
        if (!qkv_loader_read_varint(p, end, pos, &n) || n > end - *pos)
            return false;
        f->body = *pos;
        f->len = (size_t)n;
        *pos += (size_t)n;
        break;
    default:
        return false;
    }
    f->end = *pos;
    return true;
}

/* A growable output buffer; `failed` once an allocation failed. */
typedef struct obuf {
    uint8_t *p;
    size_t n, cap;
    bool failed;
} obuf;

static void put(obuf *b, const void *src, size_t n)
{
    if (b->failed || n == 0)
        return;
    if (n > b->cap - b->n) {
        size_t cap = b->cap ? b->cap : 4096, need;
        if (qkv_add_overflow(b->n, n, &need)) {
            b->failed = true;
            return;
        }
        while (cap < need)
            if (qkv_mul_overflow(cap, 2, &cap)) {
                b->failed = true;
                return;
            }
        uint8_t *q = realloc(b->p, cap);
        if (!q) {
            b->failed = true;
            return;
        }
        b->p = q;
        b->cap = cap;
    }
    memcpy(b->p + b->n, src, n);
    b->n += n;
}

static void put_varint(obuf *b, uint64_t v)
{
    uint8_t tmp[10];
    size_t n = 0;
    do {
        tmp[n] = (uint8_t)(v & 0x7f);
        v >>= 7;
        if (v)
            tmp[n] |= 0x80;
        n++;
    } while (v);
    put(b, tmp, n);
}

/* Appends a length-delimited field `number` holding body. */
static void put_message(obuf *b, uint32_t number, const obuf *body)
{
    put_varint(b, ((uint64_t)number << 3) | 2);
    put_varint(b, body->n);
    put(b, body->p, body->n);
}

/* ---- the compact copy --------------------------------------------------------------- */

static bool add_range(qkv_loader_source *src, size_t offset, size_t bytes)
{
    if (src->n_ranges == src->cap_ranges) {
        size_t cap = src->cap_ranges ? src->cap_ranges * 2 : 64, sz;
        if (qkv_mul_overflow(cap, sizeof *src->ranges, &sz))
            return false;
        qkv_loader_range *r = realloc(src->ranges, sz);
        if (!r)
            return false;
        src->ranges = r;
        src->cap_ranges = cap;
    }
    src->ranges[src->n_ranges++] = (qkv_loader_range){offset, bytes, false};
    return true;
}

/* Copies the TensorProto at p[start..end) into out, its one large raw_data
 * payload (if any) replaced by a range reference. */
static bool compact_tensor(const uint8_t *p, size_t start, size_t end, qkv_loader_source *src,
                           obuf *out)
{
    field f, raw = {0};
    size_t n_raw = 0;
    for (size_t pos = start; pos < end;) {
        if (!next_field(p, end, &pos, &f))
            return false;
        if (f.number == TENSOR_RAW_DATA_FIELD && f.wire == 2) {
            raw = f;
            n_raw++;
        }
    }
    /* with several raw_data fields the last one wins: leave that to unpack */
    bool cut = n_raw == 1 && raw.len >= QKV_LOADER_MAP_MIN_BYTES;
    for (size_t pos = start; pos < end;) {
        next_field(p, end, &pos, &f);
        if (f.number == RANGE_FIELD)
            continue; /* only references made here are honoured */
        if (cut && f.start == raw.start) {
            if (!add_range(src, raw.body, raw.len)) {
                out->failed = true;
                return true;
            }
            put_varint(out, (uint64_t)RANGE_FIELD << 3);
            put_varint(out, src->n_ranges - 1);
        } else {
            put(out, p + f.start, f.end - f.start);
        }
    }
    return true;
}

/* Copies the GraphProto at p[start..end) into out with its initializers
 * compacted (tmp: scratch for one initializer). */
static bool compact_graph(const uint8_t *p, size_t start, size_t end, qkv_loader_source *src,
                          obuf *out, obuf *tmp)
{
    field f;
    for (size_t pos = start; pos < end && !out->failed;) {
        if (!next_field(p, end, &pos, &f))
            return false;
        if (f.number != GRAPH_INITIALIZER_FIELD || f.wire != 2) {
            put(out, p + f.start, f.end - f.start);
            continue;
        }
        tmp->n = 0;
        if (!compact_tensor(p, f.body, f.body + f.len, src, tmp))
            return false;
        out->failed |= tmp->failed;
        put_message(out, GRAPH_INITIALIZER_FIELD, tmp);
    }
    return true;
}

qkv_status qkv_loader_compact(const uint8_t *file, size_t bytes, qkv_loader_source *src,
                              uint8_t **out, size_t *out_bytes, const char *what, qkv_error *err)
{
    *out = NULL;
    *out_bytes = 0;
    obuf model = {0}, graph = {0}, tmp = {0};
    bool ok = true;
    field f;
    for (size_t pos = 0; pos < bytes && ok && !model.failed;) {
        if (!(ok = next_field(file, bytes, &pos, &f)))
            break;
        if (f.number != MODEL_GRAPH_FIELD || f.wire != 2) {
            put(&model, file + f.start, f.end - f.start);
            continue;
        }
        graph.n = 0;
        ok = compact_graph(file, f.body, f.body + f.len, src, &graph, &tmp);
        model.failed |= graph.failed;
        put_message(&model, MODEL_GRAPH_FIELD, &graph);
    }
    free(graph.p);
    free(tmp.p);
    qkv_status st = QKV_OK;
    if (!ok)
        st = qkv_error_set(err, QKV_ERR_INVALID_MODEL, "%s: truncated or corrupt protobuf", what);
    else if (model.failed)
        st = qkv_error_set(err, QKV_ERR_OUT_OF_MEMORY, "%s: out of memory", what);
    if (st != QKV_OK || src->n_ranges == 0) {
        free(model.p);
        return st;
    }
    *out = model.p;
    *out_bytes = model.n;
    return QKV_OK;
}

bool qkv_loader_range_ref(const struct Onnx__TensorProto *tp, uint64_t *range)
{
    const ProtobufCMessage *m = &tp->base;
    for (unsigned k = m->n_unknown_fields; k-- > 0;) {
        const ProtobufCMessageUnknownField *u = &m->unknown_fields[k];
        size_t pos = 0;
        if (u->tag == RANGE_FIELD && u->wire_type == PROTOBUF_C_WIRE_TYPE_VARINT &&
            qkv_loader_read_varint(u->data, u->len, &pos, range))
            return true;
    }
    return false;
}

/* ---- mappings ------------------------------------------------------------------------ */

void qkv_ir_drop_pages(const void *data, size_t bytes)
{
    long ps = sysconf(_SC_PAGESIZE);
    uintptr_t page = ps > 0 ? (uintptr_t)ps : 4096;
    uintptr_t lo = ((uintptr_t)data + page - 1) & ~(page - 1);
    uintptr_t hi = ((uintptr_t)data + bytes) & ~(page - 1);
    if (hi > lo)
        madvise((void *)lo, hi - lo, MADV_DONTNEED); /* advice only: failure changes nothing */
}

/* The alignment kernels may assume for a pointer to elements of dtype. */
static size_t element_align(qkv_dtype dtype)
{
    size_t b;
    if (!qkv_dtype_storage_bytes(dtype, 1, &b) || b == 0)
        return 8;
    return b >= 8 ? 8 : b >= 4 ? 4 : b >= 2 ? 2 : 1;
}

qkv_status qkv_loader_map_payload(qkv_loader_source *src, size_t map_index, size_t offset,
                                  size_t bytes, qkv_dtype dtype, void **data, bool *borrowed,
                                  const char *what, qkv_error *err)
{
    qkv_loader_map *m = &src->maps[map_index];
    uint8_t *p = m->addr + offset;
    if ((uintptr_t)p % element_align(dtype) == 0) {
        m->kept = true;
        *data = p;
        *borrowed = true;
        return QKV_OK;
    }
    void *copy = malloc(bytes);
    qkv_advise_hugepages(copy, bytes);
    if (!copy)
        return qkv_error_set(err, QKV_ERR_OUT_OF_MEMORY, "%s: out of memory (%zu bytes)", what,
                             bytes);
    memcpy(copy, p, bytes);
    qkv_ir_drop_pages(p, bytes);
    *data = copy;
    *borrowed = false;
    return QKV_OK;
}

static bool add_map(qkv_loader_source *src, void *addr, size_t bytes, char *path)
{
    if (src->n_maps == src->cap_maps) {
        size_t cap = src->cap_maps ? src->cap_maps * 2 : 4, sz;
        if (qkv_mul_overflow(cap, sizeof *src->maps, &sz))
            return false;
        qkv_loader_map *m = realloc(src->maps, sz);
        if (!m)
            return false;
        src->maps = m;
        src->cap_maps = cap;
    }
    src->maps[src->n_maps++] = (qkv_loader_map){addr, bytes, path, false};
    return true;
}

qkv_status qkv_loader_map_file(qkv_loader_source *src, int fd, const char *path, size_t size,
                               size_t *index, const char *what, qkv_error *err)
{
    for (size_t k = 0; k < src->n_maps; k++)
        if (src->maps[k].path && strcmp(src->maps[k].path, path) == 0) {
            if (src->maps[k].bytes != size)
                break; /* the file changed size under us: map it again */
            *index = k;
            return QKV_OK;
        }
    char *name = qkv_strdup(path);
    if (!name)
        return qkv_error_set(err, QKV_ERR_OUT_OF_MEMORY, "%s: out of memory", what);
    /* MAP_POPULATE: every payload is read at load or prepack anyway, and
     * mapping the pages in one call costs far less than a fault per page */
    void *addr = mmap(NULL, size, PROT_READ, MAP_PRIVATE | MAP_POPULATE, fd, 0);
    if (addr == MAP_FAILED) {
        free(name);
        return qkv_error_set(err, QKV_ERR_IO, "%s: cannot map '%s'", what, path);
    }
    if (!add_map(src, addr, size, name)) {
        munmap(addr, size);
        free(name);
        return qkv_error_set(err, QKV_ERR_OUT_OF_MEMORY, "%s: out of memory", what);
    }
    *index = src->n_maps - 1;
    return QKV_OK;
}

/* Registers the model file mapping as maps[0]. */
bool qkv_loader_source_model(qkv_loader_source *src, void *addr, size_t bytes)
{
    return src->n_maps == 0 && add_map(src, addr, bytes, NULL);
}

bool qkv_loader_source_give(qkv_loader_source *src, struct qkv_ir_graph *g)
{
    size_t n = 0, sz;
    for (size_t k = 0; k < src->n_maps; k++)
        n += src->maps[k].kept;
    if (n == 0)
        return true;
    if (qkv_add_overflow(g->n_mappings, n, &n) || qkv_mul_overflow(n, sizeof *g->mappings, &sz))
        return false;
    qkv_ir_mapping *m = realloc(g->mappings, sz);
    if (!m)
        return false;
    g->mappings = m;
    for (size_t k = 0; k < src->n_maps; k++) {
        qkv_loader_map *s = &src->maps[k];
        if (!s->kept)
            continue;
        /* nothing reads the rest of the file again: only the pages of the
         * payloads fault back in when kernels read them */
        qkv_ir_drop_pages(s->addr, s->bytes);
        g->mappings[g->n_mappings++] = (qkv_ir_mapping){s->addr, s->bytes};
        s->addr = NULL;
        s->kept = false;
    }
    return true;
}

void qkv_loader_source_fini(qkv_loader_source *src)
{
    for (size_t k = 0; k < src->n_maps; k++) {
        if (src->maps[k].addr)
            munmap(src->maps[k].addr, src->maps[k].bytes);
        free(src->maps[k].path);
    }
    free(src->maps);
    free(src->ranges);
    memset(src, 0, sizeof *src);
}
