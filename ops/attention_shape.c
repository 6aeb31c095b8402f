/*
 * attention_shape.c - the shape and scratch helpers Attention and
 * MultiHeadAttention share (attention_shape.h).
 */
#include "attention_shape.h"

int64_t qkv_attn_dim(const qkv_tensor *t, int32_t k) { return t->rank > k ? t->dims[k] : -1; }

int64_t qkv_attn_pick(int64_t a, int64_t b) { return a >= 0 ? a : b; }

bool qkv_attn_differ(int64_t a, int64_t b) { return a >= 0 && b >= 0 && a != b; }

qkv_status qkv_attn_split_heads(qkv_kernel_io *io, size_t in, const char *name, const char *what,
                                int64_t width, int64_t heads, const char *attr, int64_t *head_size)
{
    *head_size = -1;
    if (width < 0)
        return QKV_OK;
    if (width % heads != 0)
        return KERR(io, QKV_ERR_SHAPE, "input %zu '%s' has %s %lld, not a multiple of %s=%lld", in,
                    name, what, (long long)width, attr, (long long)heads);
    *head_size = width / heads;
    return QKV_OK;
}

static size_t align64(size_t bytes) { return (bytes + 63) & ~(size_t)63; }

bool qkv_attn_take(size_t *off, size_t n, size_t elem, size_t *at)
{
    size_t bytes;
    if (__builtin_mul_overflow(n, elem, &bytes) || bytes > SIZE_MAX - 64)
        return false;
    *at = *off;
    return !__builtin_add_overflow(*off, align64(bytes), off);
}

qkv_status qkv_attn_prepare_slots(qkv_kernel_io *io, const qkv_attn_args *shape, size_t own_bytes)
{
    qkv_status st = qkv_attn_check(io, shape);
    if (st != QKV_OK)
        return st;
    size_t threads = io->host->thread_count(io->host_ctx), slots;
    if (!qkv_attn_scratch_bytes(shape, threads, &slots) ||
        __builtin_add_overflow(own_bytes, slots, &io->scratch_bytes))
        return KERR(io, QKV_ERR_SHAPE, "attention scratch size overflows");
    return QKV_OK;
}

qkv_status qkv_attn_run_slots(qkv_kernel_io *io, const qkv_attn_args *a, size_t own_bytes)
{
    size_t need = qkv_attn_slot_bytes(a);
    if (own_bytes > io->scratch_bytes || (need > 0 && io->scratch_bytes - own_bytes < need))
        return KERR(io, QKV_ERR_INTERNAL, "attention scratch of %zu bytes is too small",
                    io->scratch_bytes);
    /* no scratch at all (an empty query): no offset on a NULL pointer */
    unsigned char *slots = io->scratch ? (unsigned char *)io->scratch + own_bytes : NULL;
    return qkv_attn_run(io, a, slots, io->scratch_bytes - own_bytes);
}
