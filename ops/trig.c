/*
 * trig.c - the remaining elementwise math ops and two small activations:
 *   Sin, Cos, Tan, Asin, Acos, Atan (opset 7), Sinh, Cosh, Asinh, Acosh,
 *   Atanh (9), Softsign (1), ThresholdedRelu (10), Shrink (9): unary maps;
 *   PRelu (7, 9 adding integers, 16 adding bfloat16): y = x < 0 ? slope * x : x,
 *   slope broadcast unidirectionally to x;
 *   Hardmax (1, 11: the input flattened to 2-D at `axis`, default 1; 13: one
 *   axis, default -1): 1 at the first maximum along the axis, 0 elsewhere.
 *
 * Types: float, double, float16 and bfloat16 (the last two computed in
 * float32 and rounded once) for every op; PRelu also int32, int64, uint32
 * and uint64 (opset 9+; integer products wrap). The maps and Hardmax are
 * registered once from their first opset with the types of their latest
 * version (opset 22 and Hardmax-13 only added bfloat16, and accepting it
 * earlier is harmless).
 *
 * Notes: Shrink is y = x < -lambd ? x + bias : x > lambd ? x - bias : 0
 * (float types only; the spec also lists integers). ThresholdedRelu is
 * y = x > alpha ? x : 0. Softsign is x / (1 + |x|). Hardmax treats NaN as
 * larger than any number (numpy argmax: the first NaN wins). The unary maps
 * and PRelu may write over their input 0 (in place); Hardmax may not.
 */
#include <stdlib.h>
#include <string.h>
#include <tgmath.h> /* one expression per op serves float and double */

#include "elementwise.h"
#include "kernel_util.h"
#include "qkv.h"

/* ---- unary maps --------------------------------------------------------------- */

/* Attribute values a map may use (parsed once in init). */
typedef struct map_params {
    float alpha;        /* ThresholdedRelu */
    float lambd, bias;  /* Shrink */
} map_params;

/*
 * A map in float and double from one expression of x (tgmath picks sinf or
 * sin); the attributes are converted to T first. No restrict: out may be in
 * (element j is read before out[j] is written).
 */
#define MAP_LOOP(name, T, EXPR)                                                            \
    static void name(T *o, const T *in, size_t n, const void *ctx)                         \
    {                                                                                      \
        const map_params *p = ctx;                                                         \
        const T alpha = (T)p->alpha, lambd = (T)p->lambd, bias = (T)p->bias;               \
        (void)alpha, (void)lambd, (void)bias;                                              \
        for (size_t j = 0; j < n; j++) {                                                   \
            T x = in[j];                                                                   \
            o[j] = (EXPR);                                                                 \
        }                                                                                  \
    }
#define MAP(name, EXPR) MAP_LOOP(name##_f32, float, EXPR) MAP_LOOP(name##_f64, double, EXPR)

MAP(sin_m, sin(x))
MAP(cos_m, cos(x))
MAP(tan_m, tan(x))
MAP(asin_m, asin(x))
MAP(acos_m, acos(x))
MAP(atan_m, atan(x))
MAP(sinh_m, sinh(x))
MAP(cosh_m, cosh(x))
MAP(asinh_m, asinh(x))
MAP(acosh_m, acosh(x))
MAP(atanh_m, atanh(x))
MAP(softsign_m, x / (1 + fabs(x)))
MAP(thresholded_m, x > alpha ? x : 0)
MAP(shrink_m, x < -lambd ? x + bias : x > lambd ? x - bias : 0)

/* What a unary descriptor computes, and its attributes. */
typedef struct map_def {
    qkv_f32_map_fn f32;
    qkv_f64_map_fn f64;
    bool has_alpha, has_shrink;
} map_def;

#define DEF(name, m) static const map_def name = {m##_f32, m##_f64, false, false}
DEF(def_sin, sin_m);
DEF(def_cos, cos_m);
DEF(def_tan, tan_m);
DEF(def_asin, asin_m);
DEF(def_acos, acos_m);
DEF(def_atan, atan_m);
DEF(def_sinh, sinh_m);
DEF(def_cosh, cosh_m);
DEF(def_asinh, asinh_m);
DEF(def_acosh, acosh_m);
DEF(def_atanh, atanh_m);
DEF(def_softsign, softsign_m);
#undef DEF
static const map_def def_thresholded = {thresholded_m_f32, thresholded_m_f64, true, false};
static const map_def def_shrink = {shrink_m_f32, shrink_m_f64, false, true};

typedef struct map_state {
    const map_def *def;
    map_params p;
} map_state;

static qkv_status map_init(const qkv_kernel *kernel, const qkv_host_api *host,
                           const qkv_node_ctx *node, void **state)
{
    const map_def *def = kernel->user;
    map_params p = {0};
    qkv_status st = QKV_OK;
    if (def->has_alpha)
        st = host->attr_float(node, "alpha", 1.0f, &p.alpha);
    if (st == QKV_OK && def->has_shrink)
        st = host->attr_float(node, "lambd", 0.5f, &p.lambd);
    if (st == QKV_OK && def->has_shrink)
        st = host->attr_float(node, "bias", 0.0f, &p.bias);
    if (st != QKV_OK)
        return st;
    map_state *s = malloc(sizeof *s);
    if (!s)
        return NERR(host, node, QKV_ERR_OUT_OF_MEMORY, "kernel state");
    s->def = def;
    s->p = p;
    *state = s;
    return QKV_OK;
}

static void trig_destroy(void *state) { free(state); }

static qkv_status map_infer(void *state, qkv_kernel_io *io)
{
    (void)state;
    const qkv_tensor *x = &io->inputs[0];
    qkv_set_shape(&io->outputs[0], x->dtype, x->rank, x->dims);
    return QKV_OK;
}

static qkv_status map_compute(const void *state, qkv_kernel_io *io)
{
    const map_state *s = state;
    qkv_float_map map = {s->def->f32, s->def->f64, &s->p};
    return qkv_float_map_run(io, &io->inputs[0], &io->outputs[0], &map);
}

/* ---- PRelu ------------------------------------------------------------------- */

typedef struct prelu_ctx {
    qkv_dtype half; /* FLOAT16/BFLOAT16 when computing through float32 */
} prelu_ctx;

/* Engine rows: y[j] = x < 0 ? s * x : x with x = in[0][j * step[0]],
 * s = in[1][j * step[1]]; MUL(s, x) is the product in T. */
#define PRELU_ROW(name, T, MUL)                                                            \
    static void name(void *out, const void *const *in, const unsigned *step, size_t n,     \
                     const void *ctx)                                                      \
    {                                                                                      \
        (void)ctx;                                                                         \
        const T *x = in[0], *sl = in[1];                                                   \
        T *y = out;                                                                        \
        for (size_t j = 0; j < n; j++) {                                                   \
            T v = x[j * step[0]], s = sl[j * step[1]];                                     \
            y[j] = v < 0 ? MUL(s, v) : v;                                                  \
        }                                                                                  \
    }
#define FMUL(a, b) ((a) * (b))
/* two's complement wrap through the unsigned type, never signed overflow */
#define I32MUL(a, b) ((int32_t)((uint32_t)(a) * (uint32_t)(b)))
#define I64MUL(a, b) ((int64_t)((uint64_t)(a) * (uint64_t)(b)))
PRELU_ROW(prelu_row_f32, float, FMUL)
PRELU_ROW(prelu_row_f64, double, FMUL)
PRELU_ROW(prelu_row_i32, int32_t, I32MUL)
PRELU_ROW(prelu_row_i64, int64_t, I64MUL)

/* unsigned values are never negative: y = x */
static void prelu_row_copy(void *out, const void *const *in, const unsigned *step, size_t n,
                           const void *ctx)
{
    size_t es = *(const size_t *)ctx;
    if (step[0])
        memmove(out, in[0], n * es);
    else
        for (size_t j = 0; j < n; j++)
            memcpy((char *)out + j * es, in[0], es);
}

static void prelu_row_half(void *out, const void *const *in, const unsigned *step, size_t n,
                           const void *ctx)
{
    const prelu_ctx *c = ctx;
    const uint16_t *x = in[0], *sl = in[1];
    float tx[QKV_HALF_CHUNK], ts[QKV_HALF_CHUNK];
    for (size_t j0 = 0; j0 < n; j0 += QKV_HALF_CHUNK) {
        size_t m = n - j0 < QKV_HALF_CHUNK ? n - j0 : QKV_HALF_CHUNK;
        qkv_half_to_f32(tx, x + j0 * step[0], c->half, step[0] ? m : 1);
        qkv_half_to_f32(ts, sl + j0 * step[1], c->half, step[1] ? m : 1);
        float ty[QKV_HALF_CHUNK];
        for (size_t j = 0; j < m; j++) {
            float v = tx[j * step[0]];
            ty[j] = v < 0 ? ts[j * step[1]] * v : v;
        }
        qkv_f32_to_half((uint16_t *)out + j0, ty, c->half, m);
    }
}

static qkv_status prelu_infer(void *state, qkv_kernel_io *io)
{
    (void)state;
    const qkv_tensor *x = &io->inputs[0], *s = &io->inputs[1];
    qkv_tensor *y = &io->outputs[0];
    if (s->dtype != x->dtype)
        return KERR(io, QKV_ERR_TYPE, "input 1 'slope' is %s but input 0 'X' is %s",
                    qkv_dtype_name(s->dtype), qkv_dtype_name(x->dtype));
    qkv_set_shape(y, x->dtype, x->rank, x->dims);
    if (x->rank < 0 || s->rank < 0)
        return QKV_OK;
    /* unidirectional: slope's dims (aligned right) are 1 or x's */
    char a[96], b[96];
    bool ok = s->rank <= x->rank;
    for (int32_t i = 0; ok && i < s->rank; i++) {
        int64_t sd = s->dims[i], xd = x->dims[x->rank - s->rank + i];
        ok = sd == 1 || sd < 0 || xd < 0 || sd == xd;
    }
    if (!ok)
        return KERR(io, QKV_ERR_SHAPE,
                    "input 1 'slope' %s does not broadcast (unidirectionally) to input 0 'X' %s",
                    qkv_dims_str(s, a, sizeof a), qkv_dims_str(x, b, sizeof b));
    return QKV_OK;
}

static qkv_status prelu_compute(const void *state, qkv_kernel_io *io)
{
    (void)state;
    const qkv_tensor *x = &io->inputs[0], *s = &io->inputs[1];
    qkv_tensor *y = &io->outputs[0];
    size_t es = qkv_ew_elem_bytes(x->dtype);
    prelu_ctx c = {.half = QKV_DTYPE_UNDEFINED};
    const void *ctx = &c;
    qkv_ew_row_fn row;
    switch (x->dtype) {
    case QKV_DTYPE_FLOAT: row = prelu_row_f32; break;
    case QKV_DTYPE_DOUBLE: row = prelu_row_f64; break;
    case QKV_DTYPE_INT32: row = prelu_row_i32; break;
    case QKV_DTYPE_INT64: row = prelu_row_i64; break;
    case QKV_DTYPE_UINT32:
    case QKV_DTYPE_UINT64:
        row = prelu_row_copy;
        ctx = &es;
        break;
    case QKV_DTYPE_FLOAT16:
    case QKV_DTYPE_BFLOAT16:
        row = prelu_row_half;
        c.half = x->dtype;
        break;
    default:
        return KERR(io, QKV_ERR_TYPE, "input 0 'X' has type %s, not supported",
                    qkv_dtype_name(x->dtype));
    }
    const qkv_tensor *ins[2] = {x, s};
    qkv_ew_plan plan;
    qkv_ew_plan_init(&plan, y, ins, 2);
    const void *data[2] = {x->data, s->data};
    const size_t in_elem[2] = {es, es};
    qkv_ew_run(io, &plan, y->data, es, data, in_elem, row, ctx);
    return QKV_OK;
}

/* ---- Hardmax ----------------------------------------------------------------- */

typedef struct hardmax_attrs {
    int64_t axis;
    bool flatten; /* opsets 1 and 11 */
} hardmax_attrs;

static qkv_status hardmax_init(const qkv_kernel *kernel, const qkv_host_api *host,
                               const qkv_node_ctx *node, void **state)
{
    bool flatten = kernel->since_version < 13;
    int64_t axis;
    qkv_status st = host->attr_int(node, "axis", flatten ? 1 : -1, &axis);
    if (st != QKV_OK)
        return st;
    hardmax_attrs *s = malloc(sizeof *s);
    if (!s)
        return NERR(host, node, QKV_ERR_OUT_OF_MEMORY, "kernel state");
    s->axis = axis;
    s->flatten = flatten;
    *state = s;
    return QKV_OK;
}

/* The axis in [0, r) ([0, r] when flattening: D = 1 then); false when out of range. */
static bool hardmax_axis(const hardmax_attrs *s, int32_t r, int32_t *axis)
{
    int64_t a = s->axis < 0 ? s->axis + r : s->axis;
    if (a < 0 || a > r || (a == r && !s->flatten))
        return false;
    *axis = (int32_t)a;
    return true;
}

static qkv_status hardmax_infer(void *state, qkv_kernel_io *io)
{
    const hardmax_attrs *s = state;
    const qkv_tensor *x = &io->inputs[0];
    int32_t axis;
    if (x->rank >= 0 && !hardmax_axis(s, x->rank, &axis))
        return KERR(io, QKV_ERR_SHAPE,
                    "attribute axis=%lld is out of range for input 0 'input' of rank %d "
                    "(expected %d to %d)",
                    (long long)s->axis, x->rank, -x->rank, s->flatten ? x->rank : x->rank - 1);
    qkv_set_shape(&io->outputs[0], x->dtype, x->rank, x->dims);
    return QKV_OK;
}

/* Element i of x as double (float types only). */
static double load1(const void *x, qkv_dtype t, size_t i)
{
    switch (t) {
    case QKV_DTYPE_FLOAT: return ((const float *)x)[i];
    case QKV_DTYPE_DOUBLE: return ((const double *)x)[i];
    case QKV_DTYPE_FLOAT16: return qkv_f16_to_f32(((const uint16_t *)x)[i]);
    default: return qkv_bf16_to_f32(((const uint16_t *)x)[i]); /* BFLOAT16 */
    }
}

static qkv_status hardmax_compute(const void *state, qkv_kernel_io *io)
{
    const hardmax_attrs *s = state;
    const qkv_tensor *x = &io->inputs[0];
    qkv_tensor *y = &io->outputs[0];
    int32_t axis;
    if (!hardmax_axis(s, x->rank, &axis))
        return KERR(io, QKV_ERR_SHAPE, "attribute axis=%lld is out of range for rank %d",
                    (long long)s->axis, x->rank);
    size_t es = qkv_ew_elem_bytes(x->dtype);
    static const float one_f = 1.0f;
    static const double one_d = 1.0;
    static const uint16_t one_h = 0x3c00u, one_bf = 0x3f80u;
    const void *one;
    switch (x->dtype) {
    case QKV_DTYPE_FLOAT: one = &one_f; break;
    case QKV_DTYPE_DOUBLE: one = &one_d; break;
    case QKV_DTYPE_FLOAT16: one = &one_h; break;
    case QKV_DTYPE_BFLOAT16: one = &one_bf; break;
    default:
        return KERR(io, QKV_ERR_TYPE, "input 0 'input' has type %s, not supported",
                    qkv_dtype_name(x->dtype));
    }
    /* (outer, d, inner) view: flattening puts every dim from axis into d */
    size_t outer = 1, d = 1, inner = 1;
    for (int32_t k = 0; k < x->rank; k++) {
        size_t dim = (size_t)x->dims[k];
        if (k < axis)
            outer *= dim;
        else if (k == axis || s->flatten)
            d *= dim;
        else
            inner *= dim;
    }
    memset(y->data, 0, y->data_bytes); /* 0 is all-zero bits in every float type */
    if (d == 0)
        return QKV_OK;
    for (size_t o = 0; o < outer; o++)
        for (size_t i = 0; i < inner; i++) {
            size_t base = o * d * inner + i, best = 0;
            double mx = load1(x->data, x->dtype, base);
            for (size_t p = 1; p < d && !isnan(mx); p++) {
                double v = load1(x->data, x->dtype, base + p * inner);
                if (v > mx || isnan(v)) {
                    mx = v;
                    best = p;
                }
            }
            memcpy((char *)y->data + (base + best * inner) * es, one, es);
        }
    return QKV_OK;
}

/* ---- descriptors ------------------------------------------------------------- */

#define T_FLOAT (QKV_TYPES_FLOATS | QKV_T(FLOAT16) | QKV_T(BFLOAT16))
#define T_FLOAT_NO_BF16 (QKV_TYPES_FLOATS | QKV_T(FLOAT16))

#define MAP_KERNEL(op, since, def_)                                                        \
    {                                                                                      \
        QKV_KERNEL_V1, .domain = "", .op_type = (op), .since_version = (since),            \
        .min_inputs = 1, .max_inputs = 1, .min_outputs = 1, .max_outputs = 1,              \
        .n_input_types = 1, .input_types = {T_FLOAT}, .flags = QKV_KERNEL_INPLACE,         \
        .inplace_input = 0, .user = (void *)&(def_), .init = map_init, .infer = map_infer,  \
        .compute = map_compute, .destroy = trig_destroy,                                   \
    }

#define PRELU_KERNEL(since, until, types)                                                  \
    {                                                                                      \
        QKV_KERNEL_V1, .domain = "", .op_type = "PRelu", .since_version = (since),         \
        .until_version = (until), .min_inputs = 2, .max_inputs = 2, .min_outputs = 1,      \
        .max_outputs = 1, .n_input_types = 1, .input_types = {types},                      \
        .flags = QKV_KERNEL_INPLACE, .inplace_input = 0, .infer = prelu_infer,             \
        .compute = prelu_compute,                                                          \
    }

#define HARDMAX_KERNEL(since, until)                                                       \
    {                                                                                      \
        QKV_KERNEL_V1, .domain = "", .op_type = "Hardmax", .since_version = (since),       \
        .until_version = (until), .min_inputs = 1, .max_inputs = 1, .min_outputs = 1,      \
        .max_outputs = 1, .n_input_types = 1, .input_types = {T_FLOAT},                    \
        .init = hardmax_init, .infer = hardmax_infer, .compute = hardmax_compute,          \
        .destroy = trig_destroy,                                                           \
    }

#define PRELU_INTS (QKV_T(INT32) | QKV_T(INT64) | QKV_T(UINT32) | QKV_T(UINT64))

static const qkv_kernel kernels[] = {
    MAP_KERNEL("Sin", 7, def_sin),
    MAP_KERNEL("Cos", 7, def_cos),
    MAP_KERNEL("Tan", 7, def_tan),
    MAP_KERNEL("Asin", 7, def_asin),
    MAP_KERNEL("Acos", 7, def_acos),
    MAP_KERNEL("Atan", 7, def_atan),
    MAP_KERNEL("Sinh", 9, def_sinh),
    MAP_KERNEL("Cosh", 9, def_cosh),
    MAP_KERNEL("Asinh", 9, def_asinh),
    MAP_KERNEL("Acosh", 9, def_acosh),
    MAP_KERNEL("Atanh", 9, def_atanh),
    MAP_KERNEL("Softsign", 1, def_softsign),
    MAP_KERNEL("ThresholdedRelu", 10, def_thresholded),
    MAP_KERNEL("Shrink", 9, def_shrink),
    PRELU_KERNEL(7, 8, T_FLOAT_NO_BF16),
    PRELU_KERNEL(9, 15, T_FLOAT_NO_BF16 | PRELU_INTS),
    PRELU_KERNEL(16, 0, T_FLOAT | PRELU_INTS),
    HARDMAX_KERNEL(1, 10),
    HARDMAX_KERNEL(11, 12),
    HARDMAX_KERNEL(13, 0),
};

/* The descriptors of this family; *count set to their number. */
const qkv_kernel *qkv_ops_trig(size_t *count)
{
    *count = sizeof kernels / sizeof kernels[0];
    return kernels;
}
