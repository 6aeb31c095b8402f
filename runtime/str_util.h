/*
 * str_util.h - string helpers of the runtime.
 */
#ifndef QKV_STR_UTIL_H
#define QKV_STR_UTIL_H

#include <stddef.h>

/* Copies at most cap-1 bytes of src into dst and terminates it. */
void qkv_strlcpy(char *dst, const char *src, size_t cap);
/* strdup that accepts NULL (returns a copy of ""). NULL when out of memory. */
char *qkv_strdup(const char *s);

#endif /* QKV_STR_UTIL_H */
