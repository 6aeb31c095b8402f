/*
 * size_math.c - element type names and widths (the public qkv_dtype_name,
 * qkv_dtype_bits, qkv_tensor_elements) and the overflow-checked size of a
 * tensor's storage. Here, below the runtime, because kernels use them too.
 */
#include "size_math.h"

static const struct {
    const char *name;
    size_t bits;
} dtype_table[QKV_DTYPE_COUNT] = {
    [QKV_DTYPE_UNDEFINED] = {"undefined", 0},
    [QKV_DTYPE_FLOAT] = {"float32", 32},
    [QKV_DTYPE_UINT8] = {"uint8", 8},
    [QKV_DTYPE_INT8] = {"int8", 8},
    [QKV_DTYPE_UINT16] = {"uint16", 16},
    [QKV_DTYPE_INT16] = {"int16", 16},
    [QKV_DTYPE_INT32] = {"int32", 32},
    [QKV_DTYPE_INT64] = {"int64", 64},
    [QKV_DTYPE_STRING] = {"string", 0},
    [QKV_DTYPE_BOOL] = {"bool", 8},
    [QKV_DTYPE_FLOAT16] = {"float16", 16},
    [QKV_DTYPE_DOUBLE] = {"float64", 64},
    [QKV_DTYPE_UINT32] = {"uint32", 32},
    [QKV_DTYPE_UINT64] = {"uint64", 64},
    [QKV_DTYPE_COMPLEX64] = {"complex64", 64},
    [QKV_DTYPE_COMPLEX128] = {"complex128", 128},
    [QKV_DTYPE_BFLOAT16] = {"bfloat16", 16},
    [QKV_DTYPE_FLOAT8E4M3FN] = {"float8e4m3fn", 8},
    [QKV_DTYPE_FLOAT8E4M3FNUZ] = {"float8e4m3fnuz", 8},
    [QKV_DTYPE_FLOAT8E5M2] = {"float8e5m2", 8},
    [QKV_DTYPE_FLOAT8E5M2FNUZ] = {"float8e5m2fnuz", 8},
    [QKV_DTYPE_UINT4] = {"uint4", 4},
    [QKV_DTYPE_INT4] = {"int4", 4},
    [QKV_DTYPE_FLOAT4E2M1] = {"float4e2m1", 4},
    [QKV_DTYPE_FLOAT8E8M0] = {"float8e8m0", 8},
    [QKV_DTYPE_UINT2] = {"uint2", 2},
    [QKV_DTYPE_INT2] = {"int2", 2},
};

const char *qkv_dtype_name(qkv_dtype dtype)
{
    if ((int)dtype < 0 || dtype >= QKV_DTYPE_COUNT)
        return "unknown";
    return dtype_table[dtype].name;
}

size_t qkv_dtype_bits(qkv_dtype dtype)
{
    if ((int)dtype < 0 || dtype >= QKV_DTYPE_COUNT)
        return 0;
    return dtype_table[dtype].bits;
}

bool qkv_dtype_storage_bytes(qkv_dtype dtype, size_t elements, size_t *bytes)
{
    if (dtype == QKV_DTYPE_STRING)
        return !qkv_mul_overflow(elements, sizeof(char *), bytes);
    size_t bits = qkv_dtype_bits(dtype);
    if (bits == 0)
        return false;
    if (bits >= 8)
        return !qkv_mul_overflow(elements, bits / 8, bytes);
    size_t total_bits;
    if (qkv_mul_overflow(elements, bits, &total_bits))
        return false;
    *bytes = total_bits / 8 + (total_bits % 8 != 0);
    return true;
}

bool qkv_shape_elements(const int64_t *dims, int32_t rank, size_t *elements)
{
    size_t n = 1;
    if (rank < 0)
        return false;
    for (int32_t k = 0; k < rank; k++) {
        if (dims[k] < 0 || (uint64_t)dims[k] > SIZE_MAX)
            return false;
        if (qkv_mul_overflow(n, (size_t)dims[k], &n))
            return false;
    }
    *elements = n;
    return true;
}

size_t qkv_tensor_elements(const qkv_tensor *t, int *overflow)
{
    size_t n;
    if (overflow)
        *overflow = 0;
    if (!t || t->rank < 0 || t->rank > QKV_MAX_RANK)
        return 0;
    if (!qkv_shape_elements(t->dims, t->rank, &n)) {
        for (int32_t k = 0; k < t->rank; k++)
            if (t->dims[k] < 0)
                return 0;
        if (overflow)
            *overflow = 1;
        return 0;
    }
    return n;
}
