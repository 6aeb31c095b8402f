/*
 * cast.c - Cast (opsets 6, 9, 13, 19) and CastLike (15, 19).
 *
 * Types: float32, float64, float16, bfloat16, int8/16/32/64,
 * uint8/16/32/64 and bool, in any direction; string to any of those (parsed
 * with strtod/strtoll); floats and integers to string (floats in the
 * shortest digits that read back exactly, laid out as numpy's str() does:
 * cast_string.h; integers in decimal). Refused with QKV_ERR_UNSUPPORTED:
 * bool to string, and from/to float8, 4-bit and complex types.
 *
 * Conversions (the spec leaves out-of-range ones undefined; these are the
 * numpy/x86 results where those are defined, and never C undefined
 * behaviour):
 *  - to float16/bfloat16: round to nearest even, from float64 without double
 *    rounding; overflow gives inf; NaN stays NaN. (ONNX 1.12's reference
 *    test for float -> bfloat16 truncates instead; ONNX >= 1.14, PyTorch and
 *    current ONNX Runtime round to nearest even.)
 *  - float to integer: truncate toward zero, then wrap modulo 2^bits
 *    (so -1.0 -> uint8 is 255, as numpy gives); NaN gives 0; beyond the
 *    int64 range (uint64 for unsigned targets) saturates before wrapping.
 *  - integer to integer wraps modulo 2^bits; anything to bool is (x != 0),
 *    NaN included; bool to anything is 0 or 1.
 * Opset 19's `saturate` only concerns float8 and is ignored.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>

#include "cast_string.h"
#include "elementwise.h"
#include "qkv.h"

/* The element types Cast converts between (strings only as a source). */
#define CAST_TYPES (QKV_TYPES_NUMERIC | QKV_T(BOOL) | QKV_T(FLOAT16) | QKV_T(BFLOAT16))

static bool cast_supported(qkv_dtype t)
{
    return (unsigned)t < QKV_DTYPE_COUNT && (CAST_TYPES & QKV_DTYPE_BIT(t));
}

static bool is_float_kind(qkv_dtype t)
{
    return t == QKV_DTYPE_FLOAT || t == QKV_DTYPE_DOUBLE || t == QKV_DTYPE_FLOAT16 ||
           t == QKV_DTYPE_BFLOAT16;
}

static bool is_unsigned(qkv_dtype t)
{
    return t == QKV_DTYPE_UINT8 || t == QKV_DTYPE_UINT16 || t == QKV_DTYPE_UINT32 ||
           t == QKV_DTYPE_UINT64;
}

static bool is_signed_int(qkv_dtype t)
{
    return t == QKV_DTYPE_INT8 || t == QKV_DTYPE_INT16 || t == QKV_DTYPE_INT32 ||
           t == QKV_DTYPE_INT64;
}

/* Loads n integers (or bools) as 64-bit patterns: signed types sign-extend,
 * unsigned ones zero-extend. */
static void load_bits(uint64_t *dst, const void *src, qkv_dtype t, size_t n)
{
#define LOAD(T)                                                                                    \
    do {                                                                                           \
        const T *s = src;                                                                          \
        for (size_t j = 0; j < n; j++)                                                             \
            dst[j] = (uint64_t)s[j];                                                               \
    } while (0)
    switch (t) {
    case QKV_DTYPE_INT8:
        LOAD(int8_t);
        break;
    case QKV_DTYPE_INT16:
        LOAD(int16_t);
        break;
    case QKV_DTYPE_INT32:
        LOAD(int32_t);
        break;
    case QKV_DTYPE_INT64:
        LOAD(int64_t);
        break;
    case QKV_DTYPE_UINT8:
        LOAD(uint8_t);
        break;
    case QKV_DTYPE_UINT16:
        LOAD(uint16_t);
        break;
    case QKV_DTYPE_UINT32:
        LOAD(uint32_t);
        break;
    case QKV_DTYPE_UINT64:
        LOAD(uint64_t);
        break;
    case QKV_DTYPE_BOOL:
        LOAD(uint8_t);
        break;
    default:
        break; /* callers pass integer types only */
    }
#undef LOAD
}

/* Stores n integers given as 64-bit patterns (`from_unsigned`: their
 * source type's signedness) as dtype t. */
static void store_bits(void *dst, qkv_dtype t, const uint64_t *v, size_t n, bool from_unsigned)
{
#define STORE_WRAP(T)                                                                              \
    do {                                                                                           \
        T *d = dst;                                                                                \
        for (size_t j = 0; j < n; j++)                                                             \
            d[j] = (T)v[j];                                                                        \
    } while (0)
    switch (t) {
    /* unsigned -> narrower signed is implementation-defined: modulo 2^N
     * on every compiler qkv supports, which is the wrap we want */
    case QKV_DTYPE_INT8:
        STORE_WRAP(int8_t);
        break;
    case QKV_DTYPE_INT16:
        STORE_WRAP(int16_t);
        break;
    case QKV_DTYPE_INT32:
        STORE_WRAP(int32_t);
        break;
    case QKV_DTYPE_INT64:
        STORE_WRAP(int64_t);
        break;
    case QKV_DTYPE_UINT8:
        STORE_WRAP(uint8_t);
        break;
    case QKV_DTYPE_UINT16:
        STORE_WRAP(uint16_t);
        break;
    case QKV_DTYPE_UINT32:
        STORE_WRAP(uint32_t);
        break;
    case QKV_DTYPE_UINT64:
        STORE_WRAP(uint64_t);
        break;
    case QKV_DTYPE_BOOL: {
        uint8_t *d = dst;
        for (size_t j = 0; j < n; j++)
            d[j] = v[j] != 0;
        break;
    }
    case QKV_DTYPE_FLOAT: {
        float *d = dst;
        for (size_t j = 0; j < n; j++)
            d[j] = from_unsigned ? (float)v[j] : (float)(int64_t)v[j];
        break;
    }
    case QKV_DTYPE_DOUBLE: {
        double *d = dst;
        for (size_t j = 0; j < n; j++)
            d[j] = from_unsigned ? (double)v[j] : (double)(int64_t)v[j];
        break;
    }
    case QKV_DTYPE_FLOAT16:
    case QKV_DTYPE_BFLOAT16: {
        uint16_t *d = dst;
        for (size_t j = 0; j < n; j++) {
            double x = from_unsigned ? (double)v[j] : (double)(int64_t)v[j];
            d[j] = t == QKV_DTYPE_FLOAT16 ? qkv_f64_to_f16(x) : qkv_f64_to_bf16(x);
        }
        break;
    }
    default:
        break; /* validated in infer */
    }
#undef STORE_WRAP
}

typedef struct cast_job {
    qkv_dtype from, to;
    const char *x;
    char *out;
    size_t in_elem, out_elem;
} cast_job;

static void cast_range(void *arg, size_t b, size_t e)
{
    const cast_job *j = arg;
    bool from_float = is_float_kind(j->from), from_unsigned = is_unsigned(j->from);
    if (j->from == QKV_DTYPE_INT32 && j->to == QKV_DTYPE_FLOAT) {
        /* the int8 GEMM's output on its way to float: one vectorised pass */
        const int32_t *x = (const int32_t *)(const void *)j->x;
        float *y = (float *)(void *)j->out;
        for (size_t i = b; i < e; i++)
            y[i] = (float)x[i];
        return;
    }
    double fv[QKV_EW_CHUNK];
    uint64_t iv[QKV_EW_CHUNK];
    for (size_t j0 = b; j0 < e; j0 += QKV_EW_CHUNK) {
        size_t m = e - j0 < QKV_EW_CHUNK ? e - j0 : QKV_EW_CHUNK;
        const char *src = j->x + j0 * j->in_elem;
        char *dst = j->out + j0 * j->out_elem;
        if (from_float) {
            /* float16/bfloat16/float32 are exact in double, so this is one rounding */
            qkv_ew_load_f64(fv, src, j->from, 1, m);
            qkv_ew_store_f64(dst, j->to, fv, m);
        } else {
            load_bits(iv, src, j->from, m);
            store_bits(dst, j->to, iv, m, from_unsigned);
        }
    }
}

/* Strings: parsed one by one on the calling thread (a parse error must be
 * reported, which a parallel_for chunk cannot do). */
static qkv_status cast_strings(qkv_kernel_io *io, qkv_dtype to, const char *const *s, char *out,
                               size_t n)
{
    size_t ob = qkv_ew_elem_bytes(to);
    for (size_t i = 0; i < n; i++) {
        const char *str = s[i] ? s[i] : "";
        char *end = NULL;
        errno = 0;
        if (is_signed_int(to) || is_unsigned(to)) {
            /* integers exactly when the whole string is one */
            uint64_t bits = is_unsigned(to) ? (uint64_t)strtoull(str, &end, 10)
                                            : (uint64_t)strtoll(str, &end, 10);
            if (end != str && *end == '\0' && errno == 0) {
                store_bits(out + i * ob, to, &bits, 1, is_unsigned(to));
                continue;
            }
        }
        errno = 0;
        double v = strtod(str, &end);
        if (end == str || *end != '\0')
            return KERR(io, QKV_ERR_INVALID_ARGUMENT,
                        "input 0 element %zu is \"%.40s\", not a number", i, str);
        qkv_ew_store_f64(out + i * ob, to, &v, 1);
    }
    return QKV_OK;
}

/* Numbers to text, each string stored after the output's pointer array
 * (infer asked for QKV_CAST_STRING_MAX bytes per element). */
static qkv_status cast_to_strings(qkv_kernel_io *io, const qkv_tensor *x, qkv_tensor *out)
{
    size_t n = qkv_numel(x), eb = qkv_ew_elem_bytes(x->dtype);
    qkv_string_writer w;
    qkv_string_writer_init(&w, out);
    const char *src = x->data;
    for (size_t i = 0; i < n; i++) {
        char text[QKV_CAST_STRING_MAX];
        size_t len;
        if (is_float_kind(x->dtype)) {
            double v;
            qkv_ew_load_f64(&v, src + i * eb, x->dtype, 1, 1);
            len = qkv_cast_format_float(text, v, x->dtype);
        } else {
            uint64_t bits = 0; /* load_bits writes it for every integer type */
            load_bits(&bits, src + i * eb, x->dtype, 1);
            int wn = is_unsigned(x->dtype)
                         ? snprintf(text, sizeof text, "%llu", (unsigned long long)bits)
                         : snprintf(text, sizeof text, "%lld", (long long)(int64_t)bits);
            len = wn > 0 ? (size_t)wn : 0;
        }
        if (!qkv_string_put(&w, i, text, len))
            return KERR(io, QKV_ERR_INTERNAL, "output 0: no room for string %zu", i);
    }
    return QKV_OK;
}

/* ---- callbacks ------------------------------------------------------------- */

typedef struct cast_state {
    qkv_dtype to; /* Cast: the `to` attribute; CastLike: UNDEFINED (input 1's type) */
} cast_state;

/* QKV_OK when `to` is a target qkv converts to, else the error (reported). */
static qkv_status check_target(const qkv_host_api *host, const qkv_node_ctx *node,
                               qkv_kernel_io *io, int64_t to)
{
    if (to <= 0 || to >= QKV_DTYPE_COUNT) {
        if (node)
            return NERR(host, node, QKV_ERR_INVALID_MODEL,
                        "attribute 'to' is %lld, not a tensor element type", (long long)to);
        return KERR(io, QKV_ERR_INVALID_MODEL, "target type %lld is not a tensor element type",
                    (long long)to);
    }
    if (!cast_supported((qkv_dtype)to) && to != QKV_DTYPE_STRING) {
        if (node)
            return NERR(host, node, QKV_ERR_UNSUPPORTED, "casting to %s is not supported",
                        qkv_dtype_name((qkv_dtype)to));
        return KERR(io, QKV_ERR_UNSUPPORTED, "casting to %s is not supported",
                    qkv_dtype_name((qkv_dtype)to));
    }
    return QKV_OK;
}

static qkv_status cast_init(const qkv_kernel *kernel, const qkv_host_api *host,
                            const qkv_node_ctx *node, void **state)
{
    bool like = kernel->user != NULL;
    int64_t to = 0;
    if (!like) {
        if (host->attr_type(node, "to") == QKV_ATTR_UNDEFINED)
            return NERR(host, node, QKV_ERR_INVALID_MODEL, "attribute 'to' is required");
        qkv_status st = host->attr_int(node, "to", 0, &to);
        if (st == QKV_OK)
            st = check_target(host, node, NULL, to);
        if (st != QKV_OK)
            return st;
    }
    cast_state *s = malloc(sizeof *s);
    if (!s)
        return NERR(host, node, QKV_ERR_OUT_OF_MEMORY, "kernel state");
    s->to = like ? QKV_DTYPE_UNDEFINED : (qkv_dtype)to;
    *state = s;
    return QKV_OK;
}

static void cast_destroy(void *state) { free(state); }

static qkv_status cast_infer(void *state, qkv_kernel_io *io)
{
    const cast_state *s = state;
    const qkv_tensor *x = &io->inputs[0];
    qkv_dtype to = s->to;
    if (to == QKV_DTYPE_UNDEFINED) { /* CastLike */
        to = io->inputs[1].dtype;
        if (to != QKV_DTYPE_UNDEFINED) {
            qkv_status st = check_target(NULL, NULL, io, to);
            if (st != QKV_OK)
                return st;
        }
    }
    if (x->dtype != QKV_DTYPE_UNDEFINED && x->dtype != QKV_DTYPE_STRING &&
        !cast_supported(x->dtype))
        return KERR(io, QKV_ERR_UNSUPPORTED, "casting from %s is not supported",
                    qkv_dtype_name(x->dtype));
    qkv_set_shape(&io->outputs[0], to, x->rank, x->dims);
    if (to == QKV_DTYPE_STRING) {
        if (x->dtype == QKV_DTYPE_BOOL || x->dtype == QKV_DTYPE_STRING)
            return KERR(io, QKV_ERR_UNSUPPORTED, "casting %s to string is not supported",
                        qkv_dtype_name(x->dtype));
        if (qkv_shape_known(x)) { /* room for the text of every element */
            size_t n = qkv_numel(x);
            io->outputs[0].data_bytes = qkv_string_bytes(
                n, n > SIZE_MAX / QKV_CAST_STRING_MAX ? SIZE_MAX : n * QKV_CAST_STRING_MAX);
        }
    }
    return QKV_OK;
}

static qkv_status cast_compute(const void *state, qkv_kernel_io *io)
{
    (void)state;
    const qkv_tensor *x = &io->inputs[0];
    qkv_tensor *out = &io->outputs[0];
    size_t n = qkv_numel(x);
    if (x->dtype == QKV_DTYPE_STRING)
        return cast_strings(io, out->dtype, x->data, out->data, n);
    if (out->dtype == QKV_DTYPE_STRING)
        return cast_to_strings(io, x, out);
    if (!cast_supported(x->dtype) || !cast_supported(out->dtype))
        return KERR(io, QKV_ERR_UNSUPPORTED, "casting %s to %s is not supported",
                    qkv_dtype_name(x->dtype), qkv_dtype_name(out->dtype));
    if (x->dtype == out->dtype) {
        if (out->data != x->data)
            memcpy(out->data, x->data, out->data_bytes);
        return QKV_OK;
    }
    cast_job j = {.from = x->dtype,
                  .to = out->dtype,
                  .x = x->data,
                  .out = out->data,
                  .in_elem = qkv_ew_elem_bytes(x->dtype),
                  .out_elem = qkv_ew_elem_bytes(out->dtype)};
    qkv_ew_run_flat(io, n, cast_range, &j);
    return QKV_OK;
}

/* a non-NULL `user` marks CastLike */
static const int castlike_marker = 1;

#define CAST(op, since, until, n_in, user_)                                                        \
    {                                                                                              \
        QKV_KERNEL_V1, .domain = "", .op_type = op, .since_version = since,                        \
                       .until_version = until, .min_inputs = n_in, .max_inputs = n_in,             \
                       .min_outputs = 1, .max_outputs = 1, .user = (void *)(user_),                \
                       .init = cast_init, .infer = cast_infer, .compute = cast_compute,            \
                       .destroy = cast_destroy                                                     \
    }

static const qkv_kernel kernels[] = {
    CAST("Cast", 6, 8, 1, NULL),
    CAST("Cast", 9, 12, 1, NULL),
    CAST("Cast", 13, 18, 1, NULL),
    CAST("Cast", 19, 0, 1, NULL),
    CAST("CastLike", 15, 18, 2, &castlike_marker),
    CAST("CastLike", 19, 0, 2, &castlike_marker),
};

/* The Cast family's descriptors (static; *count set to their number). */
const qkv_kernel *qkv_ops_cast(size_t *count)
{
    *count = sizeof kernels / sizeof kernels[0];
    return kernels;
}
