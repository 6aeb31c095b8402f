/*
 * trig.c - the remaining elementwise math ops, as unary maps:
 *   Sin, Cos, Tan, Asin, Acos, Atan (opset 7), Sinh, Cosh, Asinh, Acosh,
 *   Atanh (9), Softsign (1), ThresholdedRelu (10), Shrink (9).
 * (PRelu is in prelu.c, Hardmax in hardmax.c.)
 *
 * Types: float, double, float16 and bfloat16 (the last two computed in
 * float32 and rounded once). Each map is registered once from its first
 * opset with the types of its latest version (opset 22 only added bfloat16,
 * and accepting it earlier is harmless).
 *
 * Notes: Shrink is y = x < -lambd ? x + bias : x > lambd ? x - bias : 0
 * (float types only; the spec also lists integers). ThresholdedRelu is
 * y = x > alpha ? x : 0. Softsign is x / (1 + |x|). The maps may write over
 * their input 0 (in place).
 */
#include <stdlib.h>
#include <tgmath.h> /* one expression per op serves float and double */

#include "elementwise.h"
#include "kernel_util.h"
#include "qkv.h"

/* ---- unary maps --------------------------------------------------------------- */

/* Attribute values a map may use (parsed once in init). */
typedef struct map_params {
    float alpha;       /* ThresholdedRelu */
    float lambd, bias; /* Shrink */
} map_params;

/*
 * A map in float and double from one expression of x (tgmath picks sinf or
 * sin); the attributes are converted to T first. No restrict: out may be in
 * (element j is read before out[j] is written).
 */
#define MAP_LOOP(name, T, EXPR)                                                                    \
    static void name(T *o, const T *in, size_t n, const void *ctx)                                 \
    {                                                                                              \
        const map_params *p = ctx;                                                                 \
        const T alpha = (T)p->alpha, lambd = (T)p->lambd, bias = (T)p->bias;                       \
        (void)alpha, (void)lambd, (void)bias;                                                      \
        for (size_t j = 0; j < n; j++) {                                                           \
            T x = in[j];                                                                           \
            o[j] = (EXPR);                                                                         \
        }                                                                                          \
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
MAP(shrink_m, x<-lambd ? x + bias : x> lambd ? x - bias : 0)

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

/* ---- descriptors ------------------------------------------------------------- */

#define T_FLOAT (QKV_TYPES_FLOATS | QKV_T(FLOAT16) | QKV_T(BFLOAT16))

#define MAP_KERNEL(op, since, def_)                                                                \
    {                                                                                              \
        QKV_KERNEL_V1, .domain = "", .op_type = (op), .since_version = (since), .min_inputs = 1,   \
                       .max_inputs = 1, .min_outputs = 1, .max_outputs = 1, .n_input_types = 1,    \
                       .input_types = {T_FLOAT}, .flags = QKV_KERNEL_INPLACE, .inplace_input = 0,  \
                       .user = (void *)&(def_), .init = map_init, .infer = map_infer,              \
                       .compute = map_compute, .destroy = trig_destroy,                            \
    }

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
};

/* The descriptors of this family; *count set to their number. */
const qkv_kernel *qkv_ops_trig(size_t *count)
{
    *count = sizeof kernels / sizeof kernels[0];
    return kernels;
}
