/*
 * api.c - the library's version, and filling caller-allocated structs
 * within their struct_size (so they can grow at the end without breaking
 * programs built against an older qkv.h).
 */
#include "api.h"

#include <string.h>

#include "qkv.h"
#include "qkv_plugin.h" /* QKV_ABI_VERSION */

const char *qkv_version(int *major, int *minor, int *patch, uint32_t *plugin_abi)
{
    if (major)
        *major = QKV_VERSION_MAJOR;
    if (minor)
        *minor = QKV_VERSION_MINOR;
    if (patch)
        *patch = QKV_VERSION_PATCH;
    if (plugin_abi)
        *plugin_abi = QKV_ABI_VERSION;
    return QKV_VERSION_STRING;
}

bool qkv_struct_usable(const void *s, size_t min_bytes)
{
    if (!s)
        return false;
    size_t size;
    memcpy(&size, s, sizeof size);
    return size >= min_bytes;
}

bool qkv_struct_fill(void *dst, const void *src, size_t full_bytes, size_t min_bytes)
{
    if (!qkv_struct_usable(dst, min_bytes))
        return false;
    size_t size;
    memcpy(&size, dst, sizeof size);
    size_t n = size < full_bytes ? size : full_bytes;
    memcpy((unsigned char *)dst + sizeof size, (const unsigned char *)src + sizeof size,
           n - sizeof size);
    return true;
}
