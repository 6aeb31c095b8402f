/*
 * unary.c - elementwise unary ops:
 *   Neg, Abs, Sqrt, Exp, Log, Reciprocal, Floor, Ceil, Sigmoid, Tanh
 *   (opsets 6, 13), Relu (6, 13, 14), Erf, Sign (9, 13), IsNaN (9, 13),
 *   IsInf (10), Round (11), Softplus (1), LeakyRelu (6, 16), Elu, Selu,
 *   HardSigmoid (6), Celu (12), HardSwish (14), Not (1), Clip (6, 11, 12, 13).
 *
 * Types: float32 and float64 everywhere; float16 and bfloat16 computed in
 * float32 chunk by chunk and rounded back to nearest even. Integers where the
 * spec allows them: Neg and Relu (signed), Abs and Sign (all), Clip-12+ (all).
 * Not is bool only.
 *
 * Notes: integer Neg/Abs of the most negative value wrap (numpy); Round is
 * half to even (nearbyint in the default rounding mode); Sigmoid and Softplus
 * are written so that no intermediate overflows for large |x|; float32 Exp
 * and Tanh use a branch-free exp that vectorises (within 1.5 ulps), float32
 * Erf and Sigmoid vecmath.h's vectorised erf (within 2.5e-7) and sigmoid
 * (within 3 ulps);
 * Relu, Clip and the other piecewise ops keep NaN. Clip with min > max gives
 * max (numpy.clip).
 * Ops of opsets below the ones listed (with the legacy consumed_inputs
 * attribute) are not registered.
 */
#include <float.h>
#include <stdlib.h>
#include <tgmath.h> /* one expression per op serves float and double */

#include "elementwise.h"
#include "qkv.h"
#include "vecmath.h"

typedef enum unop {
    U_NEG,
    U_ABS,
    U_SQRT,
    U_EXP,
    U_LOG,
    U_RECIP,
    U_RELU,
    U_SIGMOID,
    U_TANH,
    U_ERF,
    U_SIGN,
    U_FLOOR,
    U_CEIL,
    U_ROUND,
    U_ISNAN,
    U_ISINF,
    U_SOFTPLUS,
    U_LEAKYRELU,
    U_ELU,
    U_SELU,
    U_CELU,
    U_HARDSIGMOID,
    U_HARDSWISH,
    U_NOT,
    U_COUNT_
} unop;

/* Attribute values an op may use (parsed once in init). */
typedef struct un_params {
    float alpha, beta, gamma;
    bool detect_pos, detect_neg; /* IsInf */
} un_params;

typedef void (*un_fn)(void *o, const void *x, size_t n, const un_params *p);

/*
 * One loop per op and type, with restrict parameters so it vectorises where
 * the math allows. out may be exactly x (in place): element j is read before
 * out[j] is written. The attributes are copied to locals of type TI first.
 */
#define UN_LOOP(name, TI, TO, EXPR)                                                                \
    static void name##_k(TO *restrict o, const TI *restrict xs, size_t n, const un_params *p)      \
    {                                                                                              \
        const TI alpha = (TI)p->alpha, beta = (TI)p->beta, gamma = (TI)p->gamma;                   \
        const bool pos = p->detect_pos, neg = p->detect_neg;                                       \
        (void)alpha, (void)beta, (void)gamma, (void)pos, (void)neg;                                \
        QKV_EW_FOR(j, n, TI x = xs[j]; o[j] = (TO)(EXPR););                                        \
    }                                                                                              \
    static void name(void *o, const void *x, size_t n, const un_params *p) { name##_k(o, x, n, p); }

/*
 * Exp and Tanh: float32 uses the branch-free qkv_ew_expf so the loops
 * vectorise (within 1 and 1.5 ulps of the correctly rounded results);
 * float64 uses libm. Sigmoid's float32 is vecmath.h's (below).
 */
static inline float exp1_f32(float x) { return qkv_ew_expf(x); }
static inline double exp1_f64(double x) { return exp(x); }
static inline double sigmoid1_f64(double x)
{
    if (x >= 0)
        return 1 / (1 + exp(-x));
    double e = exp(x);
    return e / (1 + e);
}
/* Cephes tanhf: an odd polynomial below |x| 0.625 (where 1 - 2/(e^2x + 1)
 * would cancel), else from exp with the sign of x */
static inline float tanh1_f32(float x)
{
    float a = qkv_f32_from_bits(qkv_f32_bits(x) & 0x7fffffffu), z = x * x;
    float p = ((((-5.70498872745e-3f * z + 2.06390887954e-2f) * z - 5.37397155531e-2f) * z +
                1.33314422036e-1f) *
                   z -
               3.33332819422e-1f) *
                  z * x +
              x;
    float t = 1.0f - 2.0f / (qkv_ew_expf(2.0f * a) + 1.0f);
    t = qkv_f32_from_bits(qkv_f32_bits(t) | (qkv_f32_bits(x) & 0x80000000u));
    return qkv_ew_select(a < 0.625f, p, t);
}
static inline double tanh1_f64(double x) { return tanh(x); }

/* Math helpers that need statements. */
#define DEF_FLOAT_HELPERS(sfx, T)                                                                  \
    /* log(1 + e^x) = max(x, 0) + log1p(e^-|x|) */                                                 \
    static inline T softplus1_##sfx(T x) { return (x > 0 ? x : (T)0) + log1p(exp(-fabs(x))); }     \
    /* min(max(v, 0), 1), NaN stays NaN */                                                         \
    static inline T clamp01_##sfx(T v) { return v < 0 ? (T)0 : v > 1 ? (T)1 : v; }

#define DEF_FLOAT_UNARY(sfx, T)                                                                    \
    DEF_FLOAT_HELPERS(sfx, T)                                                                      \
    UN_LOOP(neg_##sfx, T, T, -x)                                                                   \
    UN_LOOP(abs_##sfx, T, T, fabs(x))                                                              \
    UN_LOOP(sqrt_##sfx, T, T, sqrt(x))                                                             \
    UN_LOOP(exp_##sfx, T, T, exp1_##sfx(x))                                                        \
    UN_LOOP(log_##sfx, T, T, log(x))                                                               \
    UN_LOOP(recip_##sfx, T, T, (T)1 / x)                                                           \
    UN_LOOP(relu_##sfx, T, T, x < 0 ? (T)0 : x)                                                    \
    UN_LOOP(tanh_##sfx, T, T, tanh1_##sfx(x))                                                      \
    UN_LOOP(sign_##sfx, T, T, x > 0 ? (T)1 : x < 0 ? (T)-1 : x)                                    \
    UN_LOOP(floor_##sfx, T, T, floor(x))                                                           \
    UN_LOOP(ceil_##sfx, T, T, ceil(x))                                                             \
    UN_LOOP(round_##sfx, T, T, nearbyint(x))                                                       \
    UN_LOOP(isnan_##sfx, T, uint8_t, isnan(x))                                                     \
    UN_LOOP(isinf_##sfx, T, uint8_t, isinf(x) && (x > 0 ? pos : neg))                              \
    UN_LOOP(softplus_##sfx, T, T, softplus1_##sfx(x))                                              \
    UN_LOOP(leakyrelu_##sfx, T, T, x < 0 ? alpha * x : x)                                          \
    UN_LOOP(elu_##sfx, T, T, x < 0 ? alpha * expm1(x) : x)                                         \
    UN_LOOP(selu_##sfx, T, T, x > 0 ? gamma * x : gamma * alpha * expm1(x))                        \
    UN_LOOP(celu_##sfx, T, T, x > 0 ? x : alpha * expm1(x / alpha))                                \
    UN_LOOP(hardsigmoid_##sfx, T, T, clamp01_##sfx(alpha *x + beta))                               \
    UN_LOOP(hardswish_##sfx, T, T, x *clamp01_##sfx(x / (T)6 + (T)0.5))

DEF_FLOAT_UNARY(f32, float)
DEF_FLOAT_UNARY(f64, double)

/* Erf: float32 (and float16/bfloat16 through it) runs vecmath.h's
 * vectorised erf (within 2.5e-7 of the exact value), float64 libm. */
static void erf_f32(void *o, const void *x, size_t n, const un_params *p)
{
    (void)p;
    qkv_vm_erf_f32(o, x, n);
}
UN_LOOP(erf_f64, double, double, erf(x))

/* Sigmoid: float32 runs vecmath.h's sigmoid (AVX2 or AVX-512 where the CPU
 * has them: SiLU and GLU gates make it a hot op; within 3 ulps), float64
 * libm without overflow. */
static void sigmoid_f32(void *o, const void *x, size_t n, const un_params *p)
{
    (void)p;
    qkv_vm_sigmoid_f32(o, x, n);
}
UN_LOOP(sigmoid_f64, double, double, sigmoid1_f64(x))

/* W: the unsigned type negation wraps in (at least int wide, see binary.c). */
#define DEF_SINT_UNARY(sfx, T, W)                                                                  \
    UN_LOOP(neg_##sfx, T, T, 0u - (W)x)                                                            \
    UN_LOOP(abs_##sfx, T, T, x < 0 ? (T)(0u - (W)x) : x)                                           \
    UN_LOOP(relu_##sfx, T, T, x < 0 ? 0 : x)                                                       \
    UN_LOOP(sign_##sfx, T, T, (x > 0) - (x < 0))
#define DEF_UINT_UNARY(sfx, T)                                                                     \
    UN_LOOP(abs_##sfx, T, T, x)                                                                    \
    UN_LOOP(sign_##sfx, T, T, x > 0)

DEF_SINT_UNARY(i8, int8_t, unsigned)
DEF_SINT_UNARY(i16, int16_t, unsigned)
DEF_SINT_UNARY(i32, int32_t, uint32_t)
DEF_SINT_UNARY(i64, int64_t, uint64_t)
DEF_UINT_UNARY(u8, uint8_t)
DEF_UINT_UNARY(u16, uint16_t)
DEF_UINT_UNARY(u32, uint32_t)
DEF_UINT_UNARY(u64, uint64_t)
UN_LOOP(not_b, uint8_t, uint8_t, !x)

#define F(op) [QKV_DTYPE_FLOAT] = op##_f32, [QKV_DTYPE_DOUBLE] = op##_f64
#define SI(op)                                                                                     \
    [QKV_DTYPE_INT8] = op##_i8, [QKV_DTYPE_INT16] = op##_i16, [QKV_DTYPE_INT32] = op##_i32,        \
    [QKV_DTYPE_INT64] = op##_i64
#define UI(op)                                                                                     \
    [QKV_DTYPE_UINT8] = op##_u8, [QKV_DTYPE_UINT16] = op##_u16, [QKV_DTYPE_UINT32] = op##_u32,     \
    [QKV_DTYPE_UINT64] = op##_u64

/* The typed loops per op and dtype; float16/bfloat16 use the FLOAT entry. */
static const un_fn un_table[U_COUNT_][QKV_DTYPE_COUNT] = {
    [U_NEG] = {F(neg), SI(neg)},
    [U_ABS] = {F(abs), SI(abs), UI(abs)},
    [U_SQRT] = {F(sqrt)},
    [U_EXP] = {F(exp)},
    [U_LOG] = {F(log)},
    [U_RECIP] = {F(recip)},
    [U_RELU] = {F(relu), SI(relu)},
    [U_SIGMOID] = {F(sigmoid)},
    [U_TANH] = {F(tanh)},
    [U_ERF] = {F(erf)},
    [U_SIGN] = {F(sign), SI(sign), UI(sign)},
    [U_FLOOR] = {F(floor)},
    [U_CEIL] = {F(ceil)},
    [U_ROUND] = {F(round)},
    [U_ISNAN] = {F(isnan)},
    [U_ISINF] = {F(isinf)},
    [U_SOFTPLUS] = {F(softplus)},
    [U_LEAKYRELU] = {F(leakyrelu)},
    [U_ELU] = {F(elu)},
    [U_SELU] = {F(selu)},
    [U_CELU] = {F(celu)},
    [U_HARDSIGMOID] = {F(hardsigmoid)},
    [U_HARDSWISH] = {F(hardswish)},
    [U_NOT] = {[QKV_DTYPE_BOOL] = not_b},
};

static bool un_bool_out(unop op) { return op == U_ISNAN || op == U_ISINF; }

static bool is_half(qkv_dtype t) { return t == QKV_DTYPE_FLOAT16 || t == QKV_DTYPE_BFLOAT16; }

/* What a descriptor computes: the op and its attributes' defaults. */
typedef struct unary_def {
    unop op;
    float alpha, beta, gamma;
} unary_def;

#define DEF(name, op_) static const unary_def name = {op_, 0, 0, 0}
DEF(def_neg, U_NEG);
DEF(def_abs, U_ABS);
DEF(def_sqrt, U_SQRT);
DEF(def_exp, U_EXP);
DEF(def_log, U_LOG);
DEF(def_recip, U_RECIP);
DEF(def_relu, U_RELU);
DEF(def_sigmoid, U_SIGMOID);
DEF(def_tanh, U_TANH);
DEF(def_erf, U_ERF);
DEF(def_sign, U_SIGN);
DEF(def_floor, U_FLOOR);
DEF(def_ceil, U_CEIL);
DEF(def_round, U_ROUND);
DEF(def_isnan, U_ISNAN);
DEF(def_isinf, U_ISINF);
DEF(def_softplus, U_SOFTPLUS);
DEF(def_hardswish, U_HARDSWISH);
DEF(def_not, U_NOT);
#undef DEF
static const unary_def def_leakyrelu = {U_LEAKYRELU, 0.01f, 0, 0};
static const unary_def def_elu = {U_ELU, 1.0f, 0, 0};
static const unary_def def_selu = {U_SELU, 1.67326319217681884765625f, 0,
                                   1.05070102214813232421875f};
static const unary_def def_celu = {U_CELU, 1.0f, 0, 0};
static const unary_def def_hardsigmoid = {U_HARDSIGMOID, 0.2f, 0.5f, 0};

/* ---- callbacks ------------------------------------------------------------- */

typedef struct unary_state {
    unop op;
    un_params p;
} unary_state;

static qkv_status unary_init(const qkv_kernel *kernel, const qkv_host_api *host,
                             const qkv_node_ctx *node, void **state)
{
    const unary_def *def = kernel->user;
    unary_state *s = calloc(1, sizeof *s);
    if (!s)
        return NERR(host, node, QKV_ERR_OUT_OF_MEMORY, "kernel state");
    s->op = def->op;
    qkv_status st = host->attr_float(node, "alpha", def->alpha, &s->p.alpha);
    if (st == QKV_OK)
        st = host->attr_float(node, "beta", def->beta, &s->p.beta);
    if (st == QKV_OK)
        st = host->attr_float(node, "gamma", def->gamma, &s->p.gamma);
    int64_t pos = 1, neg = 1;
    if (st == QKV_OK && def->op == U_ISINF)
        st = host->attr_int(node, "detect_positive", 1, &pos);
    if (st == QKV_OK && def->op == U_ISINF)
        st = host->attr_int(node, "detect_negative", 1, &neg);
    if (st == QKV_OK && def->op == U_CELU && s->p.alpha == 0)
        st = NERR(host, node, QKV_ERR_INVALID_MODEL, "attribute 'alpha' is 0; Celu divides by it");
    if (st != QKV_OK) {
        free(s);
        return st;
    }
    s->p.detect_pos = pos != 0;
    s->p.detect_neg = neg != 0;
    *state = s;
    return QKV_OK;
}

static void unary_destroy(void *state) { free(state); }

static qkv_status unary_infer(void *state, qkv_kernel_io *io)
{
    const unary_state *s = state;
    const qkv_tensor *x = &io->inputs[0];
    qkv_set_shape(&io->outputs[0], un_bool_out(s->op) ? QKV_DTYPE_BOOL : x->dtype, x->rank,
                  x->dims);
    return QKV_OK;
}

typedef struct unary_job {
    un_fn fn;
    const un_params *p;
    qkv_dtype half; /* FLOAT16/BFLOAT16 when computing through float32 */
    bool bool_out;
    const char *x;
    char *out;
    size_t in_elem, out_elem;
} unary_job;

static void unary_range(void *arg, size_t begin, size_t end)
{
    const unary_job *j = arg;
    if (j->half == QKV_DTYPE_UNDEFINED) {
        j->fn(j->out + begin * j->out_elem, j->x + begin * j->in_elem, end - begin, j->p);
        return;
    }
    const uint16_t *x = (const uint16_t *)j->x;
    float tx[QKV_EW_CHUNK], to[QKV_EW_CHUNK];
    for (size_t j0 = begin; j0 < end; j0 += QKV_EW_CHUNK) {
        size_t m = end - j0 < QKV_EW_CHUNK ? end - j0 : QKV_EW_CHUNK;
        qkv_ew_half_to_f32(tx, x + j0, j->half, m);
        if (j->bool_out) {
            j->fn(j->out + j0, tx, m, j->p);
        } else {
            j->fn(to, tx, m, j->p);
            qkv_ew_f32_to_half((uint16_t *)j->out + j0, to, j->half, m);
        }
    }
}

static qkv_status unary_compute(const void *state, qkv_kernel_io *io)
{
    const unary_state *s = state;
    const qkv_tensor *x = &io->inputs[0];
    qkv_tensor *out = &io->outputs[0];
    unary_job j = {.p = &s->p,
                   .half = QKV_DTYPE_UNDEFINED,
                   .bool_out = un_bool_out(s->op),
                   .x = x->data,
                   .out = out->data,
                   .in_elem = qkv_ew_elem_bytes(x->dtype),
                   .out_elem = qkv_ew_elem_bytes(out->dtype)};
    qkv_dtype t = x->dtype;
    if (is_half(t)) {
        j.half = t;
        t = QKV_DTYPE_FLOAT;
    }
    if ((unsigned)t >= QKV_DTYPE_COUNT || !(j.fn = un_table[s->op][t]))
        return KERR(io, QKV_ERR_TYPE, "input 0 has type %s, which this op does not support",
                    qkv_dtype_name(x->dtype));
    qkv_ew_run_flat(io, qkv_numel(x), unary_range, &j);
    return QKV_OK;
}

/* ---- Clip ------------------------------------------------------------------ */

typedef struct clip_state {
    int64_t opset;
    float min_attr, max_attr; /* opset 6 */
} clip_state;

static qkv_status clip_init(const qkv_kernel *kernel, const qkv_host_api *host,
                            const qkv_node_ctx *node, void **state)
{
    (void)kernel;
    clip_state *s = calloc(1, sizeof *s);
    if (!s)
        return NERR(host, node, QKV_ERR_OUT_OF_MEMORY, "kernel state");
    s->opset = host->node_opset(node);
    qkv_status st = QKV_OK;
    if (s->opset < 11) {
        st = host->attr_float(node, "min", -FLT_MAX, &s->min_attr);
        if (st == QKV_OK)
            st = host->attr_float(node, "max", FLT_MAX, &s->max_attr);
    }
    if (st != QKV_OK) {
        free(s);
        return st;
    }
    *state = s;
    return QKV_OK;
}

static qkv_status clip_infer(void *state, qkv_kernel_io *io)
{
    (void)state;
    const qkv_tensor *x = &io->inputs[0];
    static const char *const names[] = {"input", "min", "max"};
    for (size_t k = 1; k < io->n_inputs && k < 3; k++) {
        const qkv_tensor *b = &io->inputs[k];
        if (!qkv_present(io, k))
            continue;
        if (x->dtype != QKV_DTYPE_UNDEFINED && b->dtype != x->dtype)
            return KERR(io, QKV_ERR_TYPE, "input %zu '%s' has type %s, input 0 has %s", k, names[k],
                        qkv_dtype_name(b->dtype), qkv_dtype_name(x->dtype));
        if (qkv_shape_known(b) && qkv_numel(b) != 1) {
            char buf[96];
            return KERR(io, QKV_ERR_SHAPE, "input %zu '%s' has shape %s, expected a scalar", k,
                        names[k], qkv_dims_str(b, buf, sizeof buf));
        }
    }
    qkv_set_shape(&io->outputs[0], x->dtype, x->rank, x->dims);
    return QKV_OK;
}

#define CLIP_LOOP(sfx, T)                                                                          \
    static void clip_##sfx(T *restrict o, const T *restrict x, size_t n, T lo, T hi)               \
    {                                                                                              \
        QKV_EW_FOR(j, n, T v = x[j]; v = v < lo ? lo : v; o[j] = v > hi ? hi : v;);                \
    }
CLIP_LOOP(f32, float)
CLIP_LOOP(f64, double)
CLIP_LOOP(i8, int8_t)
CLIP_LOOP(i16, int16_t)
CLIP_LOOP(i32, int32_t)
CLIP_LOOP(i64, int64_t)
CLIP_LOOP(u8, uint8_t)
CLIP_LOOP(u16, uint16_t)
CLIP_LOOP(u32, uint32_t)
CLIP_LOOP(u64, uint64_t)

/* A bound in the element type's kind (float for float16/bfloat16). */
typedef union clip_val {
    float f;
    double d;
    int64_t i;
    uint64_t u;
} clip_val;

typedef struct clip_job {
    qkv_dtype t;
    const void *x;
    void *out;
    clip_val lo, hi;
} clip_job;

static void clip_range(void *arg, size_t b, size_t e)
{
    const clip_job *j = arg;
    size_t n = e - b;
    switch (j->t) {
/* clip_<sfx> over [b, e) of element type T, bounds from field F of lo/hi */
#define CLIP_CASE(DT, sfx, T, F)                                                                   \
    case QKV_DTYPE_##DT:                                                                           \
        clip_##sfx((T *)j->out + b, (const T *)j->x + b, n, (T)j->lo.F, (T)j->hi.F);               \
        break;
        CLIP_CASE(FLOAT, f32, float, f)
        CLIP_CASE(DOUBLE, f64, double, d)
        CLIP_CASE(INT8, i8, int8_t, i)
        CLIP_CASE(INT16, i16, int16_t, i)
        CLIP_CASE(INT32, i32, int32_t, i)
        CLIP_CASE(INT64, i64, int64_t, i)
        CLIP_CASE(UINT8, u8, uint8_t, u)
        CLIP_CASE(UINT16, u16, uint16_t, u)
        CLIP_CASE(UINT32, u32, uint32_t, u)
        CLIP_CASE(UINT64, u64, uint64_t, u)
#undef CLIP_CASE
    case QKV_DTYPE_FLOAT16:
    case QKV_DTYPE_BFLOAT16: {
        float tx[QKV_EW_CHUNK], to[QKV_EW_CHUNK];
        for (size_t j0 = b; j0 < e; j0 += QKV_EW_CHUNK) {
            size_t m = e - j0 < QKV_EW_CHUNK ? e - j0 : QKV_EW_CHUNK;
            qkv_ew_half_to_f32(tx, (const uint16_t *)j->x + j0, j->t, m);
            clip_f32(to, tx, m, j->lo.f, j->hi.f);
            qkv_ew_f32_to_half((uint16_t *)j->out + j0, to, j->t, m);
        }
        break;
    }
    default:
        break; /* refused in clip_compute */
    }
}

/* Reads bound input k (a present scalar of x's dtype) into *v, or the
 * type's extreme (`upper` chooses which) when the input is omitted. */
static void clip_bound(const qkv_kernel_io *io, size_t k, bool upper, qkv_dtype t, clip_val *v)
{
    const void *d = qkv_present(io, k) ? io->inputs[k].data : NULL;
    switch (t) {
    case QKV_DTYPE_FLOAT:
        v->f = d ? *(const float *)d : upper ? INFINITY : -INFINITY;
        break;
    case QKV_DTYPE_FLOAT16:
        v->f = d ? qkv_f16_to_f32(*(const uint16_t *)d) : upper ? INFINITY : -INFINITY;
        break;
    case QKV_DTYPE_BFLOAT16:
        v->f = d ? qkv_bf16_to_f32(*(const uint16_t *)d) : upper ? INFINITY : -INFINITY;
        break;
    case QKV_DTYPE_DOUBLE:
        v->d = d ? *(const double *)d : upper ? INFINITY : -INFINITY;
        break;
    case QKV_DTYPE_INT8:
        v->i = d ? *(const int8_t *)d : upper ? INT8_MAX : INT8_MIN;
        break;
    case QKV_DTYPE_INT16:
        v->i = d ? *(const int16_t *)d : upper ? INT16_MAX : INT16_MIN;
        break;
    case QKV_DTYPE_INT32:
        v->i = d ? *(const int32_t *)d : upper ? INT32_MAX : INT32_MIN;
        break;
    case QKV_DTYPE_INT64:
        v->i = d ? *(const int64_t *)d : upper ? INT64_MAX : INT64_MIN;
        break;
    case QKV_DTYPE_UINT8:
        v->u = d ? *(const uint8_t *)d : upper ? UINT8_MAX : 0;
        break;
    case QKV_DTYPE_UINT16:
        v->u = d ? *(const uint16_t *)d : upper ? UINT16_MAX : 0;
        break;
    case QKV_DTYPE_UINT32:
        v->u = d ? *(const uint32_t *)d : upper ? UINT32_MAX : 0;
        break;
    case QKV_DTYPE_UINT64:
        v->u = d ? *(const uint64_t *)d : upper ? UINT64_MAX : 0;
        break;
    default:
        break;
    }
}

static qkv_status clip_compute(const void *state, qkv_kernel_io *io)
{
    const clip_state *s = state;
    const qkv_tensor *x = &io->inputs[0];
    clip_job j = {.t = x->dtype, .x = x->data, .out = io->outputs[0].data};
    switch (x->dtype) {
    case QKV_DTYPE_FLOAT:
    case QKV_DTYPE_DOUBLE:
    case QKV_DTYPE_FLOAT16:
    case QKV_DTYPE_BFLOAT16:
    case QKV_DTYPE_INT8:
    case QKV_DTYPE_INT16:
    case QKV_DTYPE_INT32:
    case QKV_DTYPE_INT64:
    case QKV_DTYPE_UINT8:
    case QKV_DTYPE_UINT16:
    case QKV_DTYPE_UINT32:
    case QKV_DTYPE_UINT64:
        break;
    default:
        return KERR(io, QKV_ERR_TYPE, "input 0 has type %s, which Clip does not support",
                    qkv_dtype_name(x->dtype));
    }
    if (s->opset < 11) { /* bounds from attributes (float types only at opset 6) */
        if (x->dtype == QKV_DTYPE_DOUBLE) {
            j.lo.d = s->min_attr;
            j.hi.d = s->max_attr;
        } else {
            j.lo.f = s->min_attr;
            j.hi.f = s->max_attr;
        }
    } else {
        for (size_t k = 1; k < 3; k++)
            if (qkv_present(io, k) && qkv_numel(&io->inputs[k]) != 1)
                return KERR(io, QKV_ERR_SHAPE, "input %zu of Clip must be a scalar", k);
        clip_bound(io, 1, false, x->dtype, &j.lo);
        clip_bound(io, 2, true, x->dtype, &j.hi);
    }
    qkv_ew_run_flat(io, qkv_numel(x), clip_range, &j);
    return QKV_OK;
}

/* ---- descriptors ------------------------------------------------------------ */

#define T_FLOAT (QKV_TYPES_FLOATS | QKV_TYPES_HALF)
#define T_SINT (QKV_T(INT8) | QKV_T(INT16) | QKV_T(INT32) | QKV_T(INT64))

#define UNARY(op, since, until, def_, types)                                                       \
    {                                                                                              \
        QKV_KERNEL_V1, .domain = "", .op_type = op, .since_version = since,                        \
                       .until_version = until, .min_inputs = 1, .max_inputs = 1, .min_outputs = 1, \
                       .max_outputs = 1, .n_input_types = 1, .input_types = {types},               \
                       .flags = QKV_KERNEL_INPLACE, .inplace_input = 0, .user = (void *)&def_,     \
                       .init = unary_init, .infer = unary_infer, .compute = unary_compute,         \
                       .destroy = unary_destroy                                                    \
    }
/* the common pair of registrations: opset 6 and 13 (13 adds bfloat16) */
#define UNARY_6_13(op, def_, types) UNARY(op, 6, 12, def_, types), UNARY(op, 13, 0, def_, types)

#define CLIP(since, until, types)                                                                  \
    {                                                                                              \
        QKV_KERNEL_V1, .domain = "", .op_type = "Clip", .since_version = since,                    \
                       .until_version = until, .min_inputs = 1,                                    \
                       .max_inputs = (since) < 11 ? 1 : 3, .min_outputs = 1, .max_outputs = 1,     \
                       .n_input_types = 1, .input_types = {types}, .flags = QKV_KERNEL_INPLACE,    \
                       .inplace_input = 0, .init = clip_init, .infer = clip_infer,                 \
                       .compute = clip_compute, .destroy = unary_destroy                           \
    }

static const qkv_kernel kernels[] = {
    UNARY_6_13("Neg", def_neg, T_FLOAT | T_SINT),
    UNARY_6_13("Abs", def_abs, T_FLOAT | QKV_TYPES_INTS),
    UNARY_6_13("Sqrt", def_sqrt, T_FLOAT),
    UNARY_6_13("Exp", def_exp, T_FLOAT),
    UNARY_6_13("Log", def_log, T_FLOAT),
    UNARY_6_13("Reciprocal", def_recip, T_FLOAT),
    UNARY_6_13("Floor", def_floor, T_FLOAT),
    UNARY_6_13("Ceil", def_ceil, T_FLOAT),
    UNARY_6_13("Sigmoid", def_sigmoid, T_FLOAT),
    UNARY_6_13("Tanh", def_tanh, T_FLOAT),
    UNARY("Relu", 6, 12, def_relu, T_FLOAT),
    UNARY("Relu", 13, 13, def_relu, T_FLOAT),
    UNARY("Relu", 14, 0, def_relu, T_FLOAT | T_SINT),
    UNARY("Erf", 9, 12, def_erf, T_FLOAT),
    UNARY("Erf", 13, 0, def_erf, T_FLOAT),
    UNARY("Sign", 9, 12, def_sign, T_FLOAT | QKV_TYPES_INTS),
    UNARY("Sign", 13, 0, def_sign, T_FLOAT | QKV_TYPES_INTS),
    UNARY("IsNaN", 9, 12, def_isnan, T_FLOAT),
    UNARY("IsNaN", 13, 0, def_isnan, T_FLOAT),
    UNARY("IsInf", 10, 0, def_isinf, T_FLOAT),
    UNARY("Round", 11, 0, def_round, T_FLOAT),
    UNARY("Softplus", 1, 0, def_softplus, T_FLOAT),
    UNARY("LeakyRelu", 6, 15, def_leakyrelu, T_FLOAT),
    UNARY("LeakyRelu", 16, 0, def_leakyrelu, T_FLOAT),
    UNARY("Elu", 6, 0, def_elu, T_FLOAT),
    UNARY("Selu", 6, 0, def_selu, T_FLOAT),
    UNARY("Celu", 12, 0, def_celu, T_FLOAT),
    UNARY("HardSigmoid", 6, 0, def_hardsigmoid, T_FLOAT),
    UNARY("HardSwish", 14, 0, def_hardswish, T_FLOAT),
    UNARY("Not", 1, 0, def_not, QKV_T(BOOL)),
    CLIP(6, 10, T_FLOAT),
    CLIP(11, 11, T_FLOAT),
    CLIP(12, 12, T_FLOAT | QKV_TYPES_INTS),
    CLIP(13, 0, T_FLOAT | QKV_TYPES_INTS),
};

/* The unary family's descriptors (static; *count set to their number). */
const qkv_kernel *qkv_ops_unary(size_t *count)
{
    *count = sizeof kernels / sizeof kernels[0];
    return kernels;
}
