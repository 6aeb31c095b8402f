/*
 * elementwise.h - what the elementwise kernels (binary.c, unary.c, where.c,
 * cast.c) share:
 *
 *  - the broadcast iteration engine. The output shape is collapsed into the
 *    fewest dims where each input is either contiguous or broadcast, so the
 *    work is a sequence of contiguous "rows" of the innermost collapsed dim;
 *    along a row each input either advances by one element (step 1) or stays
 *    on one element (step 0). A row function then runs a tight loop of one
 *    of the forms vector-vector, vector-scalar, scalar-vector. Same-shape and
 *    scalar operands collapse to a single row. Large outputs are cut into
 *    blocks run through host->parallel_for.
 *  - exact conversions between float32/float64 and float16/bfloat16
 *    (round to nearest even, subnormals, inf and NaN handled), and
 *    well-defined float -> integer conversions (C leaves out-of-range ones
 *    undefined).
 *  - chunked loads of any numeric dtype into double and stores back, for the
 *    mixed-type paths (Pow with differing types, Cast).
 */
#ifndef QKV_ELEMENTWISE_H
#define QKV_ELEMENTWISE_H

#include <math.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "kernel_util.h"

/* The most operands one engine pass combines (Where has three). */
#define QKV_EW_MAX_INPUTS 3

/* Elements converted at a time by the chunked float16/bfloat16 paths (stack buffers). */
#define QKV_EW_CHUNK 256

/* Below this many output elements a kernel runs on the calling thread only:
 * handing out work costs more than it saves. */
#define QKV_EW_PARALLEL_MIN 65536

/*
 * for (size_t j = 0; j < n; j++) { BODY } written so that GCC vectorises it at
 * plain -O2: its default "very cheap" cost model only vectorises loops whose
 * trip count is a known multiple of the vector width, so the bulk runs in
 * blocks of 16 and the remainder in a scalar tail.
 */
#define QKV_EW_FOR(j, n, ...)                                          \
    do {                                                               \
        size_t j##_block = 0;                                          \
        for (; j##_block + 16 <= (n); j##_block += 16)                 \
            for (size_t j##_k = 0; j##_k < 16; j##_k++) {              \
                size_t j = j##_block + j##_k;                          \
                __VA_ARGS__                                            \
            }                                                          \
        for (size_t j = j##_block; j < (n); j++) {                     \
            __VA_ARGS__                                                \
        }                                                              \
    } while (0)

/* float types whose arithmetic is done in float32 (converted chunk by chunk) */
#define QKV_TYPES_HALF (QKV_T(FLOAT16) | QKV_T(BFLOAT16))

/*
 * An iteration plan: output = f(inputs) where every input broadcasts to the
 * output shape. `inner` is the row length; the rows are indexed by the
 * collapsed outer dims (outer_rank may be 0: one row).
 */
typedef struct qkv_ew_plan {
    size_t n_in;
    size_t numel;       /* output elements */
    size_t inner;       /* elements per row (>= 1 unless numel is 0) */
    int32_t outer_rank; /* collapsed dims outside the row */
    size_t outer_dims[QKV_MAX_RANK];
    size_t outer_strides[QKV_EW_MAX_INPUTS][QKV_MAX_RANK]; /* in elements; 0: broadcast */
    unsigned inner_step[QKV_EW_MAX_INPUTS];                /* 1: contiguous, 0: broadcast */
} qkv_ew_plan;

/*
 * Builds the plan for `out` (known shape) computed from n_in (<= 3) inputs of
 * known shapes that broadcast to it (the caller checked that with
 * qkv_broadcast_shapes). Never fails.
 */
void qkv_ew_plan_init(qkv_ew_plan *p, const qkv_tensor *out, const qkv_tensor *const *ins,
                      size_t n_in);

/*
 * A row function: writes out[0..n) from in[k][j * step[k]] (step 0 or 1),
 * with `ctx` the caller's argument. The engine never calls it with every step
 * 0 and n > 1 (it computes one element and replicates it). out may be the
 * very same address as an input with step 1 (in-place operation): a row
 * function reads element j of an input before it writes out[j] and does not
 * read it again.
 */
typedef void (*qkv_ew_row_fn)(void *out, const void *const *in, const unsigned *step, size_t n,
                              const void *ctx);

/*
 * Runs fn over the whole output of plan p: out holds numel elements of
 * out_elem bytes, ins[k] the data of input k with in_elem[k] bytes per
 * element. Uses io->host->parallel_for when the output is large (blocks of
 * whole elements; fn must therefore be safe to run concurrently on disjoint
 * output ranges, which a pure row function is).
 */
void qkv_ew_run(qkv_kernel_io *io, const qkv_ew_plan *p, void *out, size_t out_elem,
                const void *const *ins, const size_t *in_elem, qkv_ew_row_fn fn,
                const void *ctx);

/*
 * Runs fn(arg, begin, end) over [0, n) element ranges, in parallel blocks
 * when n is large (for unary kernels that need no broadcasting).
 */
void qkv_ew_run_flat(qkv_kernel_io *io, size_t n, qkv_range_fn fn, void *arg);

/* Bytes per element of a fixed-size dtype (0 for strings, sub-byte types and unknown). */
size_t qkv_ew_elem_bytes(qkv_dtype t);

/* ---- float16 / bfloat16 ---------------------------------------------------- */

static inline uint32_t qkv_f32_bits(float f)
{
    uint32_t u;
    memcpy(&u, &f, sizeof u);
    return u;
}

static inline float qkv_f32_from_bits(uint32_t u)
{
    float f;
    memcpy(&f, &u, sizeof f);
    return f;
}

/* IEEE half -> float (exact). NaN payloads are kept. */
static inline float qkv_f16_to_f32(uint16_t h)
{
    uint32_t sign = (uint32_t)(h & 0x8000u) << 16;
    uint32_t exp = (h >> 10) & 0x1fu, man = h & 0x3ffu;
    if (exp == 0x1f)
        return qkv_f32_from_bits(sign | 0x7f800000u | (man << 13));
    if (exp == 0) {
        /* zero or subnormal: man * 2^-24, exact in float */
        float v = (float)man * 0x1p-24f;
        return sign ? -v : v;
    }
    return qkv_f32_from_bits(sign | ((exp + 112u) << 23) | (man << 13));
}

/* float -> IEEE half, round to nearest even; overflow gives inf, NaN a quiet NaN. */
static inline uint16_t qkv_f32_to_f16(float f)
{
    uint32_t x = qkv_f32_bits(f);
    uint16_t sign = (uint16_t)((x >> 16) & 0x8000u);
    x &= 0x7fffffffu;
    if (x > 0x7f800000u) /* NaN: keep the top payload bits, force quiet */
        return (uint16_t)(sign | 0x7e00u | ((x >> 13) & 0x3ffu));
    if (x >= 0x477ff000u) /* >= 65520 = max half + half an ulp: ties to even go to inf */
        return (uint16_t)(sign | 0x7c00u);
    if (x >= 0x38800000u) { /* >= 2^-14: a normal half */
        /* rebias the exponent by -112 (0xc8000000 mod 2^32) and round the 13
         * dropped bits to nearest, ties to the even result */
        x += 0xc8000fffu + ((x >> 13) & 1u);
        return (uint16_t)(sign | (x >> 13));
    }
    /* subnormal half (or zero): round |f| * 2^24 to an integer (exact scaling,
     * rintf rounds half to even in the default rounding mode); 1024 carries
     * into the smallest normal exponent by itself */
    float q = rintf(qkv_f32_from_bits(x) * 0x1p24f);
    return (uint16_t)(sign | (uint16_t)q);
}

static inline float qkv_bf16_to_f32(uint16_t b)
{
    return qkv_f32_from_bits((uint32_t)b << 16);
}

/* float -> bfloat16, round to nearest even; NaN stays a (quiet) NaN. */
static inline uint16_t qkv_f32_to_bf16(float f)
{
    uint32_t x = qkv_f32_bits(f);
    if ((x & 0x7fffffffu) > 0x7f800000u)
        return (uint16_t)((x >> 16) | 0x40u);
    x += 0x7fffu + ((x >> 16) & 1u);
    return (uint16_t)(x >> 16);
}

/*
 * double -> float rounded to odd: truncate, and set the last bit when the
 * result is inexact. Rounding that to a format at least two bits narrower
 * (half, bfloat16) gives the correctly rounded result of the double, which
 * going through a round-to-nearest float would not always do.
 */
static inline float qkv_f64_to_f32_odd(double d)
{
    if (isnan(d))
        return (float)d;
    if (fabs(d) > 0x1.fffffep+127) /* beyond FLT_MAX: inf in every narrower type too */
        return d > 0 ? INFINITY : -INFINITY;
    float f = (float)d;
    if ((double)f == d)
        return f;
    uint32_t u = qkv_f32_bits(f);
    if (fabs((double)f) > fabs(d))
        u -= 1; /* rounded away from zero: step back toward zero (same sign) */
    return qkv_f32_from_bits(u | 1u);
}

/* double -> float, round to nearest even; beyond the float range gives inf
 * (a C conversion out of range would be undefined). */
static inline float qkv_f64_to_f32(double d)
{
    if (fabs(d) >= 0x1.ffffffp+127) /* FLT_MAX + half an ulp and beyond */
        return d > 0 ? INFINITY : -INFINITY;
    return (float)d;
}

static inline uint16_t qkv_f64_to_f16(double d) { return qkv_f32_to_f16(qkv_f64_to_f32_odd(d)); }
static inline uint16_t qkv_f64_to_bf16(double d) { return qkv_f32_to_bf16(qkv_f64_to_f32_odd(d)); }

/* ---- float -> integer ------------------------------------------------------ */

/* Truncates toward zero; NaN gives 0, values beyond int64 saturate. */
static inline int64_t qkv_f64_to_i64(double v)
{
    if (isnan(v))
        return 0;
    if (v >= 9223372036854775808.0)
        return INT64_MAX;
    if (v <= -9223372036854775808.0)
        return INT64_MIN;
    return (int64_t)v;
}

/* Truncates toward zero; NaN gives 0; [2^63, 2^64) converts exactly, larger
 * saturates; negative values wrap modulo 2^64 like their int64 truncation. */
static inline uint64_t qkv_f64_to_u64(double v)
{
    if (v >= 9223372036854775808.0)
        return v >= 18446744073709551616.0 ? UINT64_MAX : (uint64_t)v;
    return (uint64_t)qkv_f64_to_i64(v);
}

/* ---- chunked conversions through double --------------------------------- */

/*
 * Loads n elements of dtype t from src (element index j * step, step 0 or 1)
 * into dst as double. Integers beyond 2^53 round. false for a dtype that is
 * not numeric (bool counts as numeric: 0 or 1).
 */
bool qkv_ew_load_f64(double *dst, const void *src, qkv_dtype t, unsigned step, size_t n);

/*
 * Stores n doubles as dtype t: floats round to nearest even (overflow to
 * inf); integers truncate toward zero, saturate at the int64 range (uint64
 * for unsigned targets; see qkv_f64_to_i64/u64, NaN is 0), then wrap modulo
 * 2^bits; bool is (v != 0). false for a dtype that is not numeric.
 */
bool qkv_ew_store_f64(void *dst, qkv_dtype t, const double *src, size_t n);

/* Float16/bfloat16 <-> float32 for n contiguous elements (t is FLOAT16 or BFLOAT16). */
void qkv_ew_half_to_f32(float *dst, const uint16_t *src, qkv_dtype t, size_t n);
void qkv_ew_f32_to_half(uint16_t *dst, const float *src, qkv_dtype t, size_t n);

#endif /* QKV_ELEMENTWISE_H */
