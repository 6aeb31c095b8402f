/*
 * qkv_types.h - the types qkv's two interfaces share: status codes, element
 * types, CPU feature bits and the tensor view.
 *
 * Self-contained C11 (standard headers only). qkv.h (the API for
 * applications) and qkv_plugin.h (the ABI for kernels and plugins) both
 * include it; neither includes the other, so an application does not see
 * the plugin ABI and a plugin does not see the application API.
 *
 * Everything here is part of the plugin ABI too: enums and bit numbers only
 * grow, and qkv_tensor does not change.
 */
#ifndef QKV_TYPES_H
#define QKV_TYPES_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* Status codes: a closed set. New codes are only ever appended. */
typedef enum qkv_status {
    QKV_OK = 0,
    QKV_ERR_INVALID_ARGUMENT = 1, /* the caller passed something wrong */
    QKV_ERR_INVALID_MODEL = 2,    /* the model file is malformed */
    QKV_ERR_UNSUPPORTED = 3,      /* valid, but qkv cannot do it */
    QKV_ERR_SHAPE = 4,            /* a shape or dim is wrong */
    QKV_ERR_TYPE = 5,             /* an element type is wrong */
    QKV_ERR_OUT_OF_MEMORY = 6,
    QKV_ERR_IO = 7,        /* a file could not be read or written */
    QKV_ERR_PLUGIN = 8,    /* a plugin could not be loaded or failed */
    QKV_ERR_INTERNAL = 9,  /* a bug in qkv */
    QKV_ERR_CANCELLED = 10 /* qkv_context_cancel stopped the run (since 0.3) */
} qkv_status;

/* Element types, numbered as ONNX TensorProto.DataType. */
typedef enum qkv_dtype {
    QKV_DTYPE_UNDEFINED = 0,
    QKV_DTYPE_FLOAT = 1,
    QKV_DTYPE_UINT8 = 2,
    QKV_DTYPE_INT8 = 3,
    QKV_DTYPE_UINT16 = 4,
    QKV_DTYPE_INT16 = 5,
    QKV_DTYPE_INT32 = 6,
    QKV_DTYPE_INT64 = 7,
    QKV_DTYPE_STRING = 8, /* data is an array of NUL-terminated char * */
    QKV_DTYPE_BOOL = 9,   /* one byte per element, 0 or 1 */
    QKV_DTYPE_FLOAT16 = 10,
    QKV_DTYPE_DOUBLE = 11,
    QKV_DTYPE_UINT32 = 12,
    QKV_DTYPE_UINT64 = 13,
    QKV_DTYPE_COMPLEX64 = 14,
    QKV_DTYPE_COMPLEX128 = 15,
    QKV_DTYPE_BFLOAT16 = 16,
    QKV_DTYPE_FLOAT8E4M3FN = 17,
    QKV_DTYPE_FLOAT8E4M3FNUZ = 18,
    QKV_DTYPE_FLOAT8E5M2 = 19,
    QKV_DTYPE_FLOAT8E5M2FNUZ = 20,
    QKV_DTYPE_UINT4 = 21, /* sub-byte types are packed, low nibble first */
    QKV_DTYPE_INT4 = 22,
    QKV_DTYPE_FLOAT4E2M1 = 23,
    QKV_DTYPE_FLOAT8E8M0 = 24,
    QKV_DTYPE_UINT2 = 25,
    QKV_DTYPE_INT2 = 26
} qkv_dtype;

/* One past the last element type this header names. Not an enum member: the
 * enum only grows at its end, and a count inside it would change value (and
 * meaning) with every addition. A table indexed by dtype is sized with this
 * and checks `(unsigned)t < QKV_DTYPE_COUNT` before indexing: a newer peer
 * may send a type this build does not know. */
#define QKV_DTYPE_COUNT 27

#define QKV_DTYPE_BIT(t) ((uint64_t)1 << (t))

/* CPU features (qkv_cpu_features, and host->cpu_features for kernels): bits of a uint64_t,
 * each set only when the CPU has it and the OS saves its registers. The
 * numbering only grows. x86-64's baseline (SSE2) has no bit. */
#define QKV_CPU_SSE41 ((uint64_t)1 << 0)
#define QKV_CPU_AVX ((uint64_t)1 << 1)
#define QKV_CPU_F16C ((uint64_t)1 << 2)
#define QKV_CPU_AVX2 ((uint64_t)1 << 3)   /* with FMA3: the x86-64-v3 level */
#define QKV_CPU_AVX512 ((uint64_t)1 << 4) /* F, BW, VL, DQ, CD: the x86-64-v4 level */
#define QKV_CPU_AVX512_VNNI ((uint64_t)1 << 5)
#define QKV_CPU_AVX512_BF16 ((uint64_t)1 << 6)
#define QKV_CPU_AVX512_FP16 ((uint64_t)1 << 7)
#define QKV_CPU_AVX_VNNI ((uint64_t)1 << 8)
#define QKV_CPU_AMX ((uint64_t)1 << 9) /* AMX-TILE, -INT8, -BF16 with tile state enabled */

/* What kind of value a graph input, output or node I/O is (since ABI 1.3):
 * a tensor, a sequence of tensors, or an optional (of a tensor or of a
 * sequence). Bit 0 says "sequence", bit 1 "optional". Only grows. */
typedef enum qkv_type_kind {
    QKV_KIND_TENSOR = 0,
    QKV_KIND_SEQUENCE = 1,         /* sequence(tensor) */
    QKV_KIND_OPTIONAL = 2,         /* optional(tensor) */
    QKV_KIND_OPTIONAL_SEQUENCE = 3 /* optional(sequence(tensor)) */
} qkv_type_kind;

/* Log levels: host->log in plugins, the session's log callback in qkv.h. */
enum { QKV_LOG_ERROR = 0, QKV_LOG_WARN = 1, QKV_LOG_INFO = 2, QKV_LOG_DEBUG = 3 };

/* The largest rank qkv handles; a larger one is QKV_ERR_UNSUPPORTED. */
#define QKV_MAX_RANK 12

/*
 * A tensor: a view of `data` (dense, row-major). The struct never owns the
 * data; who does is said wherever a tensor is handed over.
 * rank -1 and dims -1 mean "unknown" (only during shape inference).
 */
typedef struct qkv_tensor {
    qkv_dtype dtype;
    int32_t rank;
    int64_t dims[QKV_MAX_RANK];
    void *data;        /* NULL when the value is not known */
    size_t data_bytes; /* bytes at data */
} qkv_tensor;

#ifdef __cplusplus
}
#endif
#endif /* QKV_TYPES_H */
