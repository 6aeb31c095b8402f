/*
 * api.h - helpers of the public API's conventions: structs that qkv fills
 * for a caller, within the struct_size the caller was compiled with.
 */
#ifndef QKV_API_INTERNAL_H
#define QKV_API_INTERNAL_H

#include <stdbool.h>
#include <stddef.h>

/*
 * Copies the struct `src` (full_bytes, qkv's own sizeof, starting with a
 * size_t struct_size) into the caller's `dst`, only as far as
 * dst->struct_size reaches; dst->struct_size is kept. Returns false and
 * writes nothing when dst is NULL or its struct_size is below min_bytes (the
 * end of the first field after struct_size).
 */
bool qkv_struct_fill(void *dst, const void *src, size_t full_bytes, size_t min_bytes);

/* The end of `field` in `type`: the least struct_size that reaches it. */
#define QKV_STRUCT_END(type, field) (offsetof(type, field) + sizeof(((type *)0)->field))

/* True when a caller's struct (NULL allowed) is usable up to `field`. */
bool qkv_struct_usable(const void *s, size_t min_bytes);

#endif /* QKV_API_INTERNAL_H */
