/*
 * strmap.h - a map from strings to int32_t (value and node name lookup).
 * Keys are copied. Open addressing with linear probing; grows at 1/2 load.
 */
#ifndef QKV_STRMAP_H
#define QKV_STRMAP_H

#include <stddef.h>
#include <stdint.h>

typedef struct qkv_strmap qkv_strmap;

/* NULL when out of memory. */
qkv_strmap *qkv_strmap_create(void);
void qkv_strmap_destroy(qkv_strmap *map);
/* Inserts or replaces. 0 on success, -1 when out of memory (map unchanged). */
int qkv_strmap_put(qkv_strmap *map, const char *key, int32_t value);
/* The value for key, or -1 when absent. */
int32_t qkv_strmap_get(const qkv_strmap *map, const char *key);
size_t qkv_strmap_count(const qkv_strmap *map);

#endif /* QKV_STRMAP_H */
