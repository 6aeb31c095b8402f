/*
 * half.h - float16 (IEEE binary16) and bfloat16 <-> float32/float64
 * conversions, the one copy every kernel uses (Cast, the elementwise ops,
 * MatMul, Softmax, the normalisations, RotaryEmbedding...).
 *
 *  - scalar conversions (inline): exact widening; narrowing rounds to
 *    nearest even with subnormals, overflow to inf and NaN handled;
 *  - bulk conversions of n contiguous elements (half.c), which use the F16C
 *    instructions when the CPU has them (same results: the instructions
 *    round to nearest even too; the only difference is that widening a
 *    signalling NaN gives the quiet NaN of the same payload);
 *  - helpers for kernels that compute float16/bfloat16 in float32: run a
 *    float32 function over half data chunk by chunk, convert a whole tensor
 *    in parallel.
 */
#ifndef QKV_HALF_H
#define QKV_HALF_H

#include <math.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "qkv_plugin.h"

/* ---- scalar conversions ------------------------------------------------- */

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

static inline float qkv_bf16_to_f32(uint16_t b) { return qkv_f32_from_bits((uint32_t)b << 16); }

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

/* ---- bulk conversions (half.c) ------------------------------------------ */

/* true for FLOAT16 and BFLOAT16, the types computed through float32. */
static inline bool qkv_is_half(qkv_dtype t)
{
    return t == QKV_DTYPE_FLOAT16 || t == QKV_DTYPE_BFLOAT16;
}

/* dst[j] = src[j] widened, j < n; t is FLOAT16 or BFLOAT16 (anything else
 * is read as FLOAT16). Exact. */
void qkv_half_to_f32(float *dst, const uint16_t *src, qkv_dtype t, size_t n);

/* dst[j] = src[j] rounded to nearest even, j < n; t as above. dst and src
 * must not overlap. */
void qkv_f32_to_half(uint16_t *dst, const float *src, qkv_dtype t, size_t n);

/* Elements converted per chunk by qkv_half_map (a stack buffer of floats). */
#define QKV_HALF_CHUNK 256

/* A float32 map: out[j] = f(in[j]) for j < n, ctx the caller's. out may be in. */
typedef void (*qkv_f32_map_fn)(float *out, const float *in, size_t n, const void *ctx);

/*
 * out = fn(in) for n elements of float16/bfloat16 type t, computed in
 * float32 chunk by chunk (QKV_HALF_CHUNK elements on the stack; allocates
 * nothing) and rounded back once per element. out may be exactly in.
 */
void qkv_half_map(uint16_t *out, const uint16_t *in, qkv_dtype t, size_t n, qkv_f32_map_fn fn,
                  const void *ctx);

/*
 * Whole-tensor conversions for kernels that compute in float32 scratch:
 * n elements, split over io's threads when n is large. Allocate nothing.
 */
void qkv_half_to_f32_par(qkv_kernel_io *io, float *dst, const uint16_t *src, qkv_dtype t, size_t n);
void qkv_f32_to_half_par(qkv_kernel_io *io, uint16_t *dst, const float *src, qkv_dtype t, size_t n);

/*
 * float16 / bfloat16 through float32, for a kernel whose compute handles
 * float: every present input is converted to float32 in scratch, the float
 * compute runs on those copies, and output 0 (the only one) is rounded back
 * once. qkv_half_scratch_bytes: in prepare, the scratch this needs on top of
 * float_scratch (what the float compute declared for the same shapes; 0 if
 * none); false on size_t overflow. qkv_half_run_as_f32: in compute, with the
 * first float_scratch bytes of io->scratch left to fn, which sees float32
 * tensors (same shapes) and io->scratch. Returns fn's status. Allocates
 * nothing.
 */
bool qkv_half_scratch_bytes(const qkv_kernel_io *io, size_t float_scratch, size_t *bytes);
qkv_status qkv_half_run_as_f32(const void *state, qkv_kernel_io *io, size_t float_scratch,
                               qkv_kernel_compute_fn fn);

/* ---- float maps over a tensor ------------------------------------------- */

typedef void (*qkv_f64_map_fn)(double *out, const double *in, size_t n, const void *ctx);

/* An elementwise float function in both precisions (ctx passed to both). */
typedef struct qkv_float_map {
    qkv_f32_map_fn f32; /* float32, and float16/bfloat16 through float32 */
    qkv_f64_map_fn f64; /* float64 */
    const void *ctx;
} qkv_float_map;

/*
 * out = map(x) elementwise for x of type FLOAT, DOUBLE, FLOAT16 or BFLOAT16
 * (out: same type and element count; out->data may be x->data), split over
 * io's threads when x is large. The unary kernels of gelu.c, swish.c and
 * trig.c are this plus their math. QKV_ERR_TYPE (message naming input 0)
 * for another dtype. Allocates nothing.
 */
qkv_status qkv_float_map_run(qkv_kernel_io *io, const qkv_tensor *x, qkv_tensor *out,
                             const qkv_float_map *map);

#endif /* QKV_HALF_H */
