/*
 * cast_string.h - numbers to text as Cast (to STRING) writes them.
 */
#ifndef QKV_OPS_CAST_STRING_H
#define QKV_OPS_CAST_STRING_H

#include <stddef.h>

#include "qkv_plugin.h"

/* The longest text qkv_cast_format writes, its NUL included. */
#define QKV_CAST_STRING_MAX 32

/*
 * Writes v, a value of type `from` (float32, float64, float16, bfloat16),
 * into buf (QKV_CAST_STRING_MAX bytes) as numpy's str() of that type does:
 * the shortest digits that read back as the same value, positional for
 * 1e-4 <= |v| < 1e16 ("0.5", "100.0"), else scientific ("1e-05",
 * "1.5e+20"); "NaN", "INF" and "-INF" as the ONNX test data spells them.
 * Returns the length.
 */
size_t qkv_cast_format_float(char *buf, double v, qkv_dtype from);

#endif /* QKV_OPS_CAST_STRING_H */
