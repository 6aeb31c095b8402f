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

#include "half.h"
#include "kernel_util.h"

/* The most operands one engine pass combines (Where has three). */
#define QKV_EW_MAX_INPUTS 3

/* Elements converted at a time by the chunked float16/bfloat16 paths (stack buffers). */
#define QKV_EW_CHUNK 256

/* The fewest output elements one parallel chunk gets (so below twice this a
 * kernel runs on the calling thread only): handing out less costs more than
 * it saves (the encoder's 96 Ki-element residual Add ran slower on 2 threads
 * than on 1 when cut into 16 Ki-element blocks). */
#define QKV_EW_PARALLEL_MIN 65536

/*
 * for (size_t j = 0; j < n; j++) { BODY } written so that GCC vectorises it at
 * plain -O2: its default "very cheap" cost model only vectorises loops whose
 * trip count is a known multiple of the vector width, so the bulk runs in
 * blocks of 16 and the remainder in a scalar tail.
 */
#define QKV_EW_FOR(j, n, ...)                                                                      \
    do {                                                                                           \
        size_t j##_block = 0;                                                                      \
        for (; j##_block + 16 <= (n); j##_block += 16)                                             \
            for (size_t j##_k = 0; j##_k < 16; j##_k++) {                                          \
                size_t j = j##_block + j##_k;                                                      \
                __VA_ARGS__                                                                        \
            }                                                                                      \
        for (size_t j = j##_block; j < (n); j++) {                                                 \
            __VA_ARGS__                                                                            \
        }                                                                                          \
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
                const void *const *ins, const size_t *in_elem, qkv_ew_row_fn fn, const void *ctx);

/*
 * Runs fn(arg, begin, end) over [0, n) element ranges, in parallel blocks
 * when n is large (for unary kernels that need no broadcasting).
 */
void qkv_ew_run_flat(qkv_kernel_io *io, size_t n, qkv_range_fn fn, void *arg);

/* Bytes per element of a fixed-size dtype (0 for strings, sub-byte types and unknown). */
size_t qkv_ew_elem_bytes(qkv_dtype t);

/* ---- float16 / bfloat16 ---------------------------------------------------- */

/* The scalar conversions (qkv_f16_to_f32, qkv_f32_to_f16, qkv_bf16_to_f32,
 * qkv_f32_to_bf16, qkv_f64_to_f32[_odd], qkv_f64_to_f16/bf16) live in half.h. */

/* ---- vectorisable float32 exp ---------------------------------------------- */

/* c ? a : b on float bits: a select GCC vectorises (a float ?: in a longer
 * expression can stop its if-conversion, and with it the vectoriser). */
static inline float qkv_ew_select(int c, float a, float b)
{
    uint32_t m = 0u - (uint32_t)c;
    return qkv_f32_from_bits((qkv_f32_bits(a) & m) | (qkv_f32_bits(b) & ~m));
}

static inline float qkv_ew_pow2i(int32_t n) /* 2^n for n in [-126, 127] */
{
    return qkv_f32_from_bits((uint32_t)(n + 127) << 23);
}

/*
 * e^x in float32 without branches or calls, so loops over it vectorise
 * (libm's expf is a call per element). Cephes' reduction x = n ln2 + r,
 * |r| <= ln2/2, and its degree-6 polynomial: at most 1 ulp from the correctly
 * rounded result over the whole range, subnormal results included; overflow
 * gives inf, NaN stays NaN. 2^n is applied in two halves so that n down to
 * -150 (subnormal results) needs no special case.
 */
static inline float qkv_ew_expf(float x0)
{
    /* clamp first (NaN becomes a bound too) so the int conversion below is defined */
    float x = qkv_ew_select(x0 < 89.0f, x0, 89.0f);
    x = qkv_ew_select(x > -104.0f, x, -104.0f);
    /* n = round(x / ln2) by the 1.5 * 2^23 trick (rintf would be a call) */
    float nf = (x * 1.44269504088896341f + 12582912.0f) - 12582912.0f;
    float r = x - nf * 0.693359375f; /* ln2 split so nf * hi is exact */
    r = r - nf * -2.12194440e-4f;
    float p = 1.9875691500e-4f;
    p = p * r + 1.3981999507e-3f;
    p = p * r + 8.3334519073e-3f;
    p = p * r + 4.1665795894e-2f;
    p = p * r + 1.6666665459e-1f;
    p = p * r + 5.0000001201e-1f;
    p = p * r * r + r + 1.0f;
    int32_t n = (int32_t)nf, n1 = (int32_t)(nf * 0.5f);
    float res = p * qkv_ew_pow2i(n1) * qkv_ew_pow2i(n - n1);
    return qkv_ew_select(x0 != x0, x0, res);
}

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
