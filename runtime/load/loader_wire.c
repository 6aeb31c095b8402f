/*
 * loader_wire.c - a bounded pre-scan of the protobuf wire format.
 *
 * protobuf-c unpacks nested messages recursively, so a hostile file that
 * nests, say, 100000 If subgraphs would overflow the stack inside
 * onnx__model_proto__unpack. This walk uses the message descriptors to know
 * which length-delimited fields are sub-messages, keeps its own explicit
 * stack, and refuses nesting deeper than a limit before unpack ever runs.
 * It checks framing only (varints, lengths, wire types); unpack does the rest.
 */
#include "loader.h"

#include <protobuf-c/protobuf-c.h>
#include <stdint.h>
#include <stdlib.h>

#include "error.h"
#include "size_math.h"

typedef struct wire_frame {
    const ProtobufCMessageDescriptor *desc; /* NULL: an unknown message, not descended */
    size_t end;                             /* offset one past the message's last byte */
} wire_frame;

bool qkv_loader_read_varint(const uint8_t *buf, size_t end, size_t *pos, uint64_t *out)
{
    uint64_t v = 0;
    for (unsigned shift = 0; shift < 70; shift += 7) {
        if (*pos >= end)
            return false;
        uint8_t b = buf[(*pos)++];
        v |= (uint64_t)(b & 0x7f) << shift;
        if (!(b & 0x80)) {
            *out = v;
            return true;
        }
    }
    return false;
}

/* Skips `n` bytes; false when fewer remain. */
static bool skip(size_t end, size_t *pos, uint64_t n)
{
    if (n > end - *pos)
        return false;
    *pos += (size_t)n;
    return true;
}

qkv_status qkv_loader_wire_check(const void *buf, size_t bytes,
                                 const struct ProtobufCMessageDescriptor *desc, size_t max_depth,
                                 const char *what, qkv_error *err)
{
    const uint8_t *p = buf;
    size_t cap;
    if (qkv_add_overflow(max_depth, 1, &cap))
        cap = max_depth;
    wire_frame *stack = malloc(cap * sizeof *stack);
    if (!stack)
        return qkv_error_set(err, QKV_ERR_OUT_OF_MEMORY, "%s: out of memory", what);
    size_t depth = 0; /* frames in use above the root */
    size_t pos = 0;
    stack[0].desc = desc;
    stack[0].end = bytes;
    qkv_status st = QKV_OK;

    for (;;) {
        wire_frame *top = &stack[depth];
        if (pos == top->end) {
            if (depth == 0)
                break;
            depth--;
            continue;
        }
        uint64_t tag, n;
        if (!qkv_loader_read_varint(p, top->end, &pos, &tag) || (tag >> 3) == 0 ||
            (tag >> 3) > UINT32_MAX)
            goto malformed;
        switch (tag & 7) {
        case 0: /* varint */
            if (!qkv_loader_read_varint(p, top->end, &pos, &n))
                goto malformed;
            break;
        case 1: /* fixed64 */
            if (!skip(top->end, &pos, 8))
                goto malformed;
            break;
        case 5: /* fixed32 */
            if (!skip(top->end, &pos, 4))
                goto malformed;
            break;
        case 2: { /* length-delimited: bytes, string, packed array or a message */
            if (!qkv_loader_read_varint(p, top->end, &pos, &n) || n > top->end - pos)
                goto malformed;
            const ProtobufCFieldDescriptor *f =
                top->desc ? protobuf_c_message_descriptor_get_field(top->desc, (unsigned)(tag >> 3))
                          : NULL;
            if (!f || f->type != PROTOBUF_C_TYPE_MESSAGE) {
                pos += (size_t)n; /* unknown fields are kept as bytes, never parsed */
                break;
            }
            if (depth + 1 >= cap) {
                st = qkv_error_set(err, QKV_ERR_UNSUPPORTED,
                                   "%s: protobuf messages are nested more than %zu levels deep",
                                   what, max_depth);
                goto done;
            }
            depth++;
            stack[depth].desc = f->descriptor;
            stack[depth].end = pos + (size_t)n;
            break;
        }
        default: /* groups (3, 4) and reserved wire types: protobuf-c refuses them too */
            goto malformed;
        }
    }
    goto done;

malformed:
    st = qkv_error_set(err, QKV_ERR_INVALID_MODEL,
                       "%s: truncated or corrupt protobuf at byte %zu of %zu", what, pos, bytes);
done:
    free(stack);
    return st;
}

static void *pb_alloc(void *data, size_t size)
{
    void *p = malloc(size);
    if (!p && size > 0)
        *(bool *)data = true;
    return p;
}

static void pb_free(void *data, void *p)
{
    (void)data;
    free(p);
}

void qkv_loader_pb_allocator(struct ProtobufCAllocator *a, bool *failed)
{
    *failed = false;
    a->alloc = pb_alloc;
    a->free = pb_free;
    a->allocator_data = failed;
}
