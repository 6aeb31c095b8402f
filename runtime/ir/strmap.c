/* strmap.c - string -> int32 hash map (FNV-1a, linear probing). */
#include "strmap.h"

#include <stdlib.h>
#include <string.h>

typedef struct slot {
    char *key; /* NULL: empty */
    int32_t value;
} slot;

struct qkv_strmap {
    size_t cap; /* power of two */
    size_t count;
    slot *slots;
};

static uint64_t hash_str(const char *s)
{
    uint64_t h = 1469598103934665603ull;
    for (; *s; s++)
        h = (h ^ (unsigned char)*s) * 1099511628211ull;
    return h;
}

qkv_strmap *qkv_strmap_create(void)
{
    qkv_strmap *m = calloc(1, sizeof *m);
    if (!m)
        return NULL;
    m->cap = 16;
    m->slots = calloc(m->cap, sizeof *m->slots);
    if (!m->slots) {
        free(m);
        return NULL;
    }
    return m;
}

void qkv_strmap_destroy(qkv_strmap *m)
{
    if (!m)
        return;
    for (size_t i = 0; i < m->cap; i++)
        free(m->slots[i].key);
    free(m->slots);
    free(m);
}

static slot *find_slot(slot *slots, size_t cap, const char *key)
{
    size_t i = (size_t)hash_str(key) & (cap - 1);
    while (slots[i].key && strcmp(slots[i].key, key) != 0)
        i = (i + 1) & (cap - 1);
    return &slots[i];
}

static int grow(qkv_strmap *m)
{
    size_t cap = m->cap * 2;
    slot *slots = calloc(cap, sizeof *slots);
    if (!slots)
        return -1;
    for (size_t i = 0; i < m->cap; i++)
        if (m->slots[i].key)
            *find_slot(slots, cap, m->slots[i].key) = m->slots[i];
    free(m->slots);
    m->slots = slots;
    m->cap = cap;
    return 0;
}

int qkv_strmap_put(qkv_strmap *m, const char *key, int32_t value)
{
    slot *s = find_slot(m->slots, m->cap, key);
    if (s->key) {
        s->value = value;
        return 0;
    }
    if ((m->count + 1) * 2 > m->cap) {
        if (grow(m) != 0)
            return -1;
        s = find_slot(m->slots, m->cap, key);
    }
    size_t n = strlen(key) + 1;
    char *copy = malloc(n);
    if (!copy)
        return -1;
    memcpy(copy, key, n);
    s->key = copy;
    s->value = value;
    m->count++;
    return 0;
}

int32_t qkv_strmap_get(const qkv_strmap *m, const char *key)
{
    const slot *s = find_slot(m->slots, m->cap, key);
    return s->key ? s->value : -1;
}

size_t qkv_strmap_count(const qkv_strmap *m) { return m->count; }
