/*
 * binary.c - broadcasting binary and variadic elementwise ops:
 *   Add, Sub, Mul, Div (opsets 7, 13, 14), Pow (7, 12, 13, 15), Mod (10, 13),
 *   Equal (7, 11, 13, 19), Less, Greater (7, 9, 13), LessOrEqual,
 *   GreaterOrEqual (12, 16), And, Or, Xor (7), Max, Min (8, 12, 13),
 *   Sum, Mean (8, 13).
 *
 * Types: float32, float64, every 8..64-bit integer, float16 and bfloat16
 * (computed in float32 chunk by chunk, rounded back to nearest even);
 * bool for Equal/And/Or/Xor. Integer arithmetic wraps modulo 2^bits, as in
 * numpy.
 *
 * Deviations and choices where the spec leaves things open:
 *  - integer Div truncates toward zero (C and ONNX Runtime; numpy floors);
 *    division by zero gives 0 and INT_MIN / -1 wraps to INT_MIN, instead of
 *    undefined behaviour.
 *  - integer Mod with fmod=0 takes the sign of the divisor (numpy.mod), with
 *    fmod=1 the sign of the dividend (C %); x mod 0 is 0. A floating-point
 *    Mod with fmod=0 is refused, as the spec requires fmod=1 there.
 *  - integer Pow uses exact integer powers (wrapping); a negative exponent
 *    gives the truncated real result (1 for base 1, +-1 for base -1, else 0).
 *    Pow with differing base/exponent types computes in double and stores
 *    the base type (integers truncate toward zero, as numpy's astype).
 *  - Max/Min propagate NaN (numpy.maximum/minimum).
 *  - Max/Min/Sum/Mean accept inputs of differing shapes from opset 8 on;
 *    opsets 6 and 7 (float types, same shapes only) run the same kernel,
 *    which also broadcasts there (a superset of what they allow).
 */
#include <math.h>
#include <stdlib.h>

#include "elementwise.h"
#include "qkv.h"

typedef enum binop {
    OP_ADD,
    OP_SUB,
    OP_MUL,
    OP_DIV,
    OP_POW,
    OP_MOD,
    OP_FMOD,
    OP_MAX,
    OP_MIN,
    OP_EQ,
    OP_LT,
    OP_GT,
    OP_LE,
    OP_GE,
    OP_AND,
    OP_OR,
    OP_XOR,
    OP_COUNT_
} binop;

/* How a row combines its operands: both vectors, b constant, a constant. */
enum { VV = 0, VS = 1, SV = 2 };

/* A typed row: o[j] = a[j or 0] OP b[j or 0] for j < n. */
typedef void (*bin_fn)(void *o, const void *a, const void *b, size_t n, unsigned mode);

/*
 * The loop body is instantiated once per operand form (vector-vector,
 * vector-scalar, scalar-vector) as a function with restrict parameters (GCC
 * honours restrict on parameters, not on locals), so each is a plain loop the
 * compiler vectorises. `restrict` is sound for the in-place case too: out may
 * be exactly `a` or `b` (never a shifted view), and element j is read before
 * out[j] is written and never read again.
 */
#define BIN_LOOP(name, TI, TO, EXPR)                                                               \
    static void name##_vv(TO *restrict o, const TI *restrict a, const TI *restrict b, size_t n)    \
    {                                                                                              \
        QKV_EW_FOR(j, n, TI x = a[j]; TI y = b[j]; o[j] = (TO)(EXPR););                            \
    }                                                                                              \
    static void name##_vs(TO *restrict o, const TI *restrict a, const TI y, size_t n)              \
    {                                                                                              \
        QKV_EW_FOR(j, n, TI x = a[j]; o[j] = (TO)(EXPR););                                         \
    }                                                                                              \
    static void name##_sv(TO *restrict o, const TI x, const TI *restrict b, size_t n)              \
    {                                                                                              \
        QKV_EW_FOR(j, n, TI y = b[j]; o[j] = (TO)(EXPR););                                         \
    }                                                                                              \
    static void name(void *o, const void *a, const void *b, size_t n, unsigned mode)               \
    {                                                                                              \
        if (mode == VV)                                                                            \
            name##_vv(o, a, b, n);                                                                 \
        else if (mode == VS)                                                                       \
            name##_vs(o, a, *(const TI *)b, n);                                                    \
        else                                                                                       \
            name##_sv(o, *(const TI *)a, b, n);                                                    \
    }

/* comparisons: any T -> bool (one byte, 0 or 1) */
#define DEF_CMP_OPS(sfx, T)                                                                        \
    BIN_LOOP(eq_##sfx, T, uint8_t, x == y)                                                         \
    BIN_LOOP(lt_##sfx, T, uint8_t, x < y)                                                          \
    BIN_LOOP(gt_##sfx, T, uint8_t, x > y)                                                          \
    BIN_LOOP(le_##sfx, T, uint8_t, x <= y)                                                         \
    BIN_LOOP(ge_##sfx, T, uint8_t, x >= y)

/* floating point: IEEE arithmetic; x != x tests NaN for Max/Min */
#define DEF_FLOAT_OPS(sfx, T, POW, FMOD)                                                           \
    BIN_LOOP(add_##sfx, T, T, x + y)                                                               \
    BIN_LOOP(sub_##sfx, T, T, x - y)                                                               \
    BIN_LOOP(mul_##sfx, T, T, x *y)                                                                \
    BIN_LOOP(div_##sfx, T, T, x / y)                                                               \
    BIN_LOOP(pow_##sfx, T, T, POW(x, y))                                                           \
    BIN_LOOP(fmod_##sfx, T, T, FMOD(x, y))                                                         \
    BIN_LOOP(max_##sfx, T, T, (x > y || x != x) ? x : y)                                           \
    BIN_LOOP(min_##sfx, T, T, (x < y || x != x) ? x : y)                                           \
    DEF_CMP_OPS(sfx, T)

DEF_FLOAT_OPS(f32, float, powf, fmodf)
DEF_FLOAT_OPS(f64, double, pow, fmod)

/*
 * Integers. W is the unsigned type the arithmetic wraps in: at least as wide
 * as int, so that narrow operands do not promote to (overflowing) signed int.
 */
#define DEF_INT_COMMON(sfx, T, W)                                                                  \
    static inline T ipow_##sfx(T x, T y);                                                          \
    BIN_LOOP(add_##sfx, T, T, (W)x + (W)y)                                                         \
    BIN_LOOP(sub_##sfx, T, T, (W)x - (W)y)                                                         \
    BIN_LOOP(mul_##sfx, T, T, (W)x *(W)y)                                                          \
    BIN_LOOP(div_##sfx, T, T, idiv_##sfx(x, y))                                                    \
    BIN_LOOP(mod_##sfx, T, T, imod_##sfx(x, y))                                                    \
    BIN_LOOP(fmod_##sfx, T, T, ifmod_##sfx(x, y))                                                  \
    BIN_LOOP(pow_##sfx, T, T, ipow_##sfx(x, y))                                                    \
    BIN_LOOP(max_##sfx, T, T, x > y ? x : y)                                                       \
    BIN_LOOP(min_##sfx, T, T, x < y ? x : y)                                                       \
    DEF_CMP_OPS(sfx, T)                                                                            \
    /* exponent >= 0: square and multiply, wrapping in W */                                        \
    static inline T ipow_pos_##sfx(T x, uint64_t e)                                                \
    {                                                                                              \
        W r = 1, b = (W)x;                                                                         \
        while (e) {                                                                                \
            if (e & 1u)                                                                            \
                r *= b;                                                                            \
            b *= b;                                                                                \
            e >>= 1;                                                                               \
        }                                                                                          \
        return (T)r;                                                                               \
    }

#define DEF_SINT_OPS(sfx, T, W)                                                                    \
    static inline T idiv_##sfx(T x, T y)                                                           \
    {                                                                                              \
        if (y == 0)                                                                                \
            return 0;                                                                              \
        if (y == -1) /* INT_MIN / -1 overflows: wrap */                                            \
            return (T)(0u - (W)x);                                                                 \
        return (T)(x / y);                                                                         \
    }                                                                                              \
    static inline T ifmod_##sfx(T x, T y) { return (y == 0 || y == -1) ? 0 : (T)(x % y); }         \
    static inline T imod_##sfx(T x, T y)                                                           \
    {                                                                                              \
        T r = ifmod_##sfx(x, y);                                                                   \
        return (r != 0 && ((r < 0) != (y < 0))) ? (T)(r + y) : r;                                  \
    }                                                                                              \
    DEF_INT_COMMON(sfx, T, W)                                                                      \
    static inline T ipow_##sfx(T x, T y)                                                           \
    {                                                                                              \
        if (y < 0) /* the real result truncated toward zero */                                     \
            return x == 1 ? 1 : x == -1 ? ((y & 1) ? -1 : 1) : 0;                                  \
        return ipow_pos_##sfx(x, (uint64_t)y);                                                     \
    }

#define DEF_UINT_OPS(sfx, T, W)                                                                    \
    static inline T idiv_##sfx(T x, T y) { return y == 0 ? 0 : (T)(x / y); }                       \
    static inline T ifmod_##sfx(T x, T y) { return y == 0 ? 0 : (T)(x % y); }                      \
    static inline T imod_##sfx(T x, T y) { return ifmod_##sfx(x, y); }                             \
    DEF_INT_COMMON(sfx, T, W)                                                                      \
    static inline T ipow_##sfx(T x, T y) { return ipow_pos_##sfx(x, (uint64_t)y); }

DEF_SINT_OPS(i8, int8_t, unsigned)
DEF_SINT_OPS(i16, int16_t, unsigned)
DEF_SINT_OPS(i32, int32_t, uint32_t)
DEF_SINT_OPS(i64, int64_t, uint64_t)
DEF_UINT_OPS(u8, uint8_t, unsigned)
DEF_UINT_OPS(u16, uint16_t, unsigned)
DEF_UINT_OPS(u32, uint32_t, uint32_t)
DEF_UINT_OPS(u64, uint64_t, uint64_t)

/* bool: bytes 0 or 1 */
BIN_LOOP(and_b, uint8_t, uint8_t, x &y)
BIN_LOOP(or_b, uint8_t, uint8_t, x | y)
BIN_LOOP(xor_b, uint8_t, uint8_t, x ^ y)
BIN_LOOP(eq_b, uint8_t, uint8_t, x == y)

#define FLOAT_ENTRIES(op) [QKV_DTYPE_FLOAT] = op##_f32, [QKV_DTYPE_DOUBLE] = op##_f64
#define INT_ENTRIES(op)                                                                            \
    [QKV_DTYPE_INT8] = op##_i8, [QKV_DTYPE_INT16] = op##_i16, [QKV_DTYPE_INT32] = op##_i32,        \
    [QKV_DTYPE_INT64] = op##_i64, [QKV_DTYPE_UINT8] = op##_u8, [QKV_DTYPE_UINT16] = op##_u16,      \
    [QKV_DTYPE_UINT32] = op##_u32, [QKV_DTYPE_UINT64] = op##_u64
#define NUM_ENTRIES(op) FLOAT_ENTRIES(op), INT_ENTRIES(op)

/* The typed rows per op and dtype. float16/bfloat16 use the FLOAT entry. */
static const bin_fn fn_table[OP_COUNT_][QKV_DTYPE_COUNT] = {
    [OP_ADD] = {NUM_ENTRIES(add)},         [OP_SUB] = {NUM_ENTRIES(sub)},
    [OP_MUL] = {NUM_ENTRIES(mul)},         [OP_DIV] = {NUM_ENTRIES(div)},
    [OP_POW] = {NUM_ENTRIES(pow)},         [OP_MOD] = {INT_ENTRIES(mod)}, /* floats need fmod=1 */
    [OP_FMOD] = {NUM_ENTRIES(fmod)},       [OP_MAX] = {NUM_ENTRIES(max)},
    [OP_MIN] = {NUM_ENTRIES(min)},         [OP_EQ] = {NUM_ENTRIES(eq), [QKV_DTYPE_BOOL] = eq_b},
    [OP_LT] = {NUM_ENTRIES(lt)},           [OP_GT] = {NUM_ENTRIES(gt)},
    [OP_LE] = {NUM_ENTRIES(le)},           [OP_GE] = {NUM_ENTRIES(ge)},
    [OP_AND] = {[QKV_DTYPE_BOOL] = and_b}, [OP_OR] = {[QKV_DTYPE_BOOL] = or_b},
    [OP_XOR] = {[QKV_DTYPE_BOOL] = xor_b},
};

static bool op_bool_out(binop op) { return op >= OP_EQ; }

static bool is_half(qkv_dtype t) { return t == QKV_DTYPE_FLOAT16 || t == QKV_DTYPE_BFLOAT16; }

/* What one node computes; the descriptor's `user` points at one of these. */
typedef struct binary_def {
    binop op;
    bool mean; /* Mean: Sum, then divide by the input count */
} binary_def;

static const binary_def def_add = {OP_ADD, false};
static const binary_def def_sub = {OP_SUB, false};
static const binary_def def_mul = {OP_MUL, false};
static const binary_def def_div = {OP_DIV, false};
static const binary_def def_pow = {OP_POW, false};
static const binary_def def_mod = {OP_MOD, false}; /* OP_FMOD with fmod=1 */
static const binary_def def_eq = {OP_EQ, false};
static const binary_def def_lt = {OP_LT, false};
static const binary_def def_gt = {OP_GT, false};
static const binary_def def_le = {OP_LE, false};
static const binary_def def_ge = {OP_GE, false};
static const binary_def def_and = {OP_AND, false};
static const binary_def def_or = {OP_OR, false};
static const binary_def def_xor = {OP_XOR, false};
static const binary_def def_max = {OP_MAX, false};
static const binary_def def_min = {OP_MIN, false};
static const binary_def def_sum = {OP_ADD, false};
static const binary_def def_mean = {OP_ADD, true};

/* ---- row functions for the engine --------------------------------------- */

typedef struct bin_ctx {
    bin_fn fn;
    qkv_dtype half; /* FLOAT16/BFLOAT16 when computing through float32 */
    bool bool_out;
} bin_ctx;

static unsigned row_mode(const unsigned *step)
{
    if (step[0] && !step[1])
        return VS;
    if (!step[0] && step[1])
        return SV;
    return VV; /* both vectors, or a single element of two scalars */
}

static void bin_row(void *out, const void *const *in, const unsigned *step, size_t n,
                    const void *ctx)
{
    const bin_ctx *c = ctx;
    c->fn(out, in[0], in[1], n, row_mode(step));
}

/* float16/bfloat16: convert a chunk to float32, run the float row, convert back. */
static void bin_row_half(void *out, const void *const *in, const unsigned *step, size_t n,
                         const void *ctx)
{
    const bin_ctx *c = ctx;
    const uint16_t *a = in[0], *b = in[1];
    unsigned mode = row_mode(step);
    float ta[QKV_EW_CHUNK], tb[QKV_EW_CHUNK], to[QKV_EW_CHUNK];
    for (size_t j0 = 0; j0 < n; j0 += QKV_EW_CHUNK) {
        size_t m = n - j0 < QKV_EW_CHUNK ? n - j0 : QKV_EW_CHUNK;
        qkv_ew_half_to_f32(ta, a + j0 * step[0], c->half, step[0] ? m : 1);
        qkv_ew_half_to_f32(tb, b + j0 * step[1], c->half, step[1] ? m : 1);
        if (c->bool_out) {
            c->fn((uint8_t *)out + j0, ta, tb, m, mode);
        } else {
            c->fn(to, ta, tb, m, mode);
            qkv_ew_f32_to_half((uint16_t *)out + j0, to, c->half, m);
        }
    }
}

/* Pow with differing types: through double, stored as the base type. */
typedef struct pow_mixed_ctx {
    qkv_dtype base, expo;
} pow_mixed_ctx;

static void pow_row_mixed(void *out, const void *const *in, const unsigned *step, size_t n,
                          const void *ctx)
{
    const pow_mixed_ctx *c = ctx;
    size_t ob = qkv_ew_elem_bytes(c->base), eb = qkv_ew_elem_bytes(c->expo);
    double ta[QKV_EW_CHUNK], tb[QKV_EW_CHUNK], to[QKV_EW_CHUNK];
    for (size_t j0 = 0; j0 < n; j0 += QKV_EW_CHUNK) {
        size_t m = n - j0 < QKV_EW_CHUNK ? n - j0 : QKV_EW_CHUNK;
        /* both dtypes were checked numeric in infer, so the loads succeed */
        qkv_ew_load_f64(ta, (const char *)in[0] + j0 * step[0] * ob, c->base, step[0], m);
        qkv_ew_load_f64(tb, (const char *)in[1] + j0 * step[1] * eb, c->expo, step[1], m);
        for (size_t j = 0; j < m; j++)
            to[j] = pow(ta[j], tb[j]);
        qkv_ew_store_f64((char *)out + j0 * ob, c->base, to, m);
    }
}

/* ---- callbacks ------------------------------------------------------------- */

typedef struct binary_state {
    const binary_def *def;
    binop op; /* def->op, or OP_FMOD for Mod with fmod=1 */
} binary_state;

static qkv_status binary_init(const qkv_kernel *kernel, const qkv_host_api *host,
                              const qkv_node_ctx *node, void **state)
{
    const binary_def *def = kernel->user;
    binary_state *s = malloc(sizeof *s);
    if (!s)
        return NERR(host, node, QKV_ERR_OUT_OF_MEMORY, "kernel state");
    s->def = def;
    s->op = def->op;
    if (def->op == OP_MOD) {
        int64_t fmod_attr = 0;
        qkv_status st = host->attr_int(node, "fmod", 0, &fmod_attr);
        if (st == QKV_OK && fmod_attr != 0 && fmod_attr != 1)
            st = NERR(host, node, QKV_ERR_INVALID_MODEL,
                      "attribute 'fmod' is %lld, expected 0 or 1", (long long)fmod_attr);
        if (st != QKV_OK) {
            free(s);
            return st;
        }
        if (fmod_attr)
            s->op = OP_FMOD;
    }
    *state = s;
    return QKV_OK;
}

static void binary_destroy(void *state) { free(state); }

/* Output shape = broadcast of all inputs. More inputs than fit in a stack
 * array are folded in one by one, each checked first so that the message
 * names the input that does not fit. */
static qkv_status broadcast_all(qkv_kernel_io *io, qkv_tensor *out)
{
    enum { DIRECT = 16 };
    size_t n = io->n_inputs;
    if (n <= DIRECT) {
        const qkv_tensor *ins[DIRECT];
        for (size_t i = 0; i < n; i++)
            ins[i] = &io->inputs[i];
        return qkv_broadcast_shapes(io, ins, n, out);
    }
    qkv_tensor acc = io->inputs[0];
    for (size_t i = 1; i < n; i++) {
        const qkv_tensor *in = &io->inputs[i];
        for (int32_t k = 1; acc.rank >= 0 && in->rank >= 0 && k <= acc.rank && k <= in->rank; k++) {
            int64_t a = acc.dims[acc.rank - k], b = in->dims[in->rank - k];
            if (a > 1 && b > 1 && a != b) {
                char sa[96], sb[96];
                return KERR(io, QKV_ERR_SHAPE,
                            "cannot broadcast shapes: input %zu is %s, the inputs before it "
                            "broadcast to %s",
                            i, qkv_dims_str(in, sb, sizeof sb), qkv_dims_str(&acc, sa, sizeof sa));
            }
        }
        const qkv_tensor *pair[2] = {&acc, in};
        qkv_tensor next = acc;
        qkv_status st = qkv_broadcast_shapes(io, pair, 2, &next);
        if (st != QKV_OK)
            return st;
        acc = next;
    }
    out->rank = acc.rank;
    for (int32_t k = 0; k < acc.rank; k++)
        out->dims[k] = acc.dims[k];
    return QKV_OK;
}

static qkv_status binary_infer(void *state, qkv_kernel_io *io)
{
    const binary_state *s = state;
    qkv_dtype t = io->inputs[0].dtype;
    /* every input but Pow's exponent has the first input's type */
    size_t same_from = s->op == OP_POW ? io->n_inputs : 1;
    for (size_t i = same_from; i < io->n_inputs; i++) {
        qkv_dtype ti = io->inputs[i].dtype;
        if (t != QKV_DTYPE_UNDEFINED && ti != QKV_DTYPE_UNDEFINED && ti != t)
            return KERR(io, QKV_ERR_TYPE,
                        "input %zu has type %s but input 0 has %s; the types must match", i,
                        qkv_dtype_name(ti), qkv_dtype_name(t));
    }
    if (s->op == OP_MOD && (t == QKV_DTYPE_FLOAT || t == QKV_DTYPE_DOUBLE || is_half(t)))
        return KERR(io, QKV_ERR_INVALID_MODEL,
                    "input 0 has floating-point type %s: Mod requires attribute fmod=1 for it",
                    qkv_dtype_name(t));
    qkv_tensor *out = &io->outputs[0];
    out->dtype = op_bool_out(s->op) ? QKV_DTYPE_BOOL : t;
    return broadcast_all(io, out);
}

static qkv_status binary_prepare(void *state, qkv_kernel_io *io)
{
    (void)state;
    /* a variadic op whose output aliases input k >= 2 accumulates here (see
     * compute); only nodes with 3+ inputs can need it */
    if (io->n_inputs >= 3)
        io->scratch_bytes = io->outputs[0].data_bytes;
    return QKV_OK;
}

/* Picks the row function for dtype t; false when the op has none for it. */
static bool pick_row(binop op, qkv_dtype t, bin_ctx *c, qkv_ew_row_fn *row)
{
    c->half = QKV_DTYPE_UNDEFINED;
    c->bool_out = op_bool_out(op);
    *row = bin_row;
    if (is_half(t)) {
        c->half = t;
        *row = bin_row_half;
        t = QKV_DTYPE_FLOAT;
    }
    if ((unsigned)t >= QKV_DTYPE_COUNT || !fn_table[op][t])
        return false;
    c->fn = fn_table[op][t];
    return true;
}

/* out (shape of io->outputs[0]) = a OP b with broadcasting. */
static void run_pair(qkv_kernel_io *io, qkv_ew_row_fn row, const bin_ctx *c, void *out,
                     const qkv_tensor *a, const qkv_tensor *b)
{
    const qkv_tensor *o = &io->outputs[0];
    const qkv_tensor *ins[2] = {a, b};
    qkv_ew_plan plan;
    qkv_ew_plan_init(&plan, o, ins, 2);
    const void *data[2] = {a->data, b->data};
    size_t sizes[2] = {qkv_ew_elem_bytes(a->dtype), qkv_ew_elem_bytes(b->dtype)};
    qkv_ew_run(io, &plan, out, qkv_ew_elem_bytes(o->dtype), data, sizes, row, c);
}

/* Mean's final division by the input count, in place. */
static void divide_by_count(void *acc, qkv_dtype t, size_t numel, size_t count)
{
    if (t == QKV_DTYPE_DOUBLE) {
        double *p = acc;
        for (size_t j = 0; j < numel; j++)
            p[j] /= (double)count;
    } else if (t == QKV_DTYPE_FLOAT) {
        float *p = acc;
        for (size_t j = 0; j < numel; j++)
            p[j] /= (float)count;
    } else { /* float16/bfloat16 */
        uint16_t *p = acc;
        float tmp[QKV_EW_CHUNK];
        for (size_t j0 = 0; j0 < numel; j0 += QKV_EW_CHUNK) {
            size_t m = numel - j0 < QKV_EW_CHUNK ? numel - j0 : QKV_EW_CHUNK;
            qkv_ew_half_to_f32(tmp, p + j0, t, m);
            for (size_t j = 0; j < m; j++)
                tmp[j] /= (float)count;
            qkv_ew_f32_to_half(p + j0, tmp, t, m);
        }
    }
}

static qkv_status binary_compute(const void *state, qkv_kernel_io *io)
{
    const binary_state *s = state;
    qkv_tensor *out = &io->outputs[0];
    const qkv_tensor *in = io->inputs;
    size_t n_in = io->n_inputs;
    qkv_dtype t = in[0].dtype;

    if (s->op == OP_POW && in[1].dtype != t) {
        pow_mixed_ctx pc = {t, in[1].dtype};
        if (!qkv_ew_elem_bytes(t) || !qkv_ew_elem_bytes(in[1].dtype))
            return KERR(io, QKV_ERR_TYPE, "Pow of %s by %s is not supported", qkv_dtype_name(t),
                        qkv_dtype_name(in[1].dtype));
        const qkv_tensor *ins[2] = {&in[0], &in[1]};
        qkv_ew_plan plan;
        qkv_ew_plan_init(&plan, out, ins, 2);
        const void *data[2] = {in[0].data, in[1].data};
        size_t sizes[2] = {qkv_ew_elem_bytes(t), qkv_ew_elem_bytes(in[1].dtype)};
        qkv_ew_run(io, &plan, out->data, sizes[0], data, sizes, pow_row_mixed, &pc);
        return QKV_OK;
    }

    bin_ctx c;
    qkv_ew_row_fn row;
    if (!pick_row(s->op, t, &c, &row))
        return KERR(io, QKV_ERR_TYPE, "input 0 has type %s, which this op does not support",
                    qkv_dtype_name(t));
    if (n_in == 1) { /* variadic with one input: a copy */
        if (out->data != in[0].data)
            memcpy(out->data, in[0].data, out->data_bytes);
        return QKV_OK;
    }
    /* Variadic ops fold input by input into acc. When the output shares the
     * buffer of an input read after the first step, accumulate in scratch. */
    void *acc = out->data;
    for (size_t i = 2; i < n_in; i++)
        if (in[i].data == out->data && io->scratch)
            acc = io->scratch;
    run_pair(io, row, &c, acc, &in[0], &in[1]);
    qkv_tensor acc_t = *out;
    acc_t.data = acc;
    for (size_t i = 2; i < n_in; i++)
        run_pair(io, row, &c, acc, &acc_t, &in[i]);
    if (s->def->mean)
        divide_by_count(acc, t, qkv_numel(out), n_in);
    if (acc != out->data)
        memcpy(out->data, acc, out->data_bytes);
    return QKV_OK;
}

/* ---- descriptors ------------------------------------------------------------ */

#define T_NUM (QKV_TYPES_NUMERIC | QKV_TYPES_HALF)
#define T_BOOL QKV_T(BOOL)
#define T_FLOAT (QKV_TYPES_FLOATS | QKV_TYPES_HALF)
/* Pow: base float/int32/int64, exponent any numeric */
#define T_POW_BASE (T_FLOAT | QKV_TYPES_INDEX)

#define BINARY(op, since, until, def_, types, flags_)                                              \
    {                                                                                              \
        QKV_KERNEL_V1, .domain = "", .op_type = op, .since_version = since,                        \
                       .until_version = until, .min_inputs = 2, .max_inputs = 2, .min_outputs = 1, \
                       .max_outputs = 1, .n_input_types = 1, .input_types = {types},               \
                       .flags = flags_, .inplace_input = 0, .user = (void *)&def_,                 \
                       .init = binary_init, .infer = binary_infer, .compute = binary_compute,      \
                       .destroy = binary_destroy                                                   \
    }
#define VARIADIC(op, since, until, def_, types)                                                    \
    {                                                                                              \
        QKV_KERNEL_V1,                                                                             \
            .domain = "", .op_type = op, .since_version = since, .until_version = until,           \
            .min_inputs = 1, .max_inputs = -1, .min_outputs = 1, .max_outputs = 1,                 \
            .n_input_types = 1, .input_types = {types}, .flags = QKV_KERNEL_INPLACE,               \
            .inplace_input = 0, .user = (void *)&def_, .init = binary_init, .infer = binary_infer, \
            .prepare = binary_prepare, .compute = binary_compute, .destroy = binary_destroy        \
    }
#define POW(since, until, base_types, exponent_types)                                              \
    {                                                                                              \
        QKV_KERNEL_V1, .domain = "", .op_type = "Pow", .since_version = since,                     \
                       .until_version = until, .min_inputs = 2, .max_inputs = 2, .min_outputs = 1, \
                       .max_outputs = 1, .n_input_types = 2,                                       \
                       .input_types = {base_types, exponent_types}, .flags = QKV_KERNEL_INPLACE,   \
                       .inplace_input = 0, .user = (void *)&def_pow, .init = binary_init,          \
                       .infer = binary_infer, .compute = binary_compute, .destroy = binary_destroy \
    }
#define ARITH(op, def_)                                                                            \
    BINARY(op, 7, 12, def_, T_NUM, QKV_KERNEL_INPLACE),                                            \
        BINARY(op, 13, 13, def_, T_NUM, QKV_KERNEL_INPLACE),                                       \
        BINARY(op, 14, 0, def_, T_NUM, QKV_KERNEL_INPLACE)

static const qkv_kernel kernels[] = {
    ARITH("Add", def_add),
    ARITH("Sub", def_sub),
    ARITH("Mul", def_mul),
    ARITH("Div", def_div),
    POW(7, 11, T_FLOAT, T_FLOAT), /* same-type floats before opset 12 */
    POW(12, 12, T_POW_BASE, T_NUM),
    POW(13, 14, T_POW_BASE, T_NUM),
    POW(15, 0, T_POW_BASE, T_NUM),
    BINARY("Mod", 10, 12, def_mod, T_NUM, QKV_KERNEL_INPLACE),
    BINARY("Mod", 13, 0, def_mod, T_NUM, QKV_KERNEL_INPLACE),
    BINARY("Equal", 7, 10, def_eq, T_NUM | T_BOOL, 0),
    BINARY("Equal", 11, 12, def_eq, T_NUM | T_BOOL, 0),
    BINARY("Equal", 13, 18, def_eq, T_NUM | T_BOOL, 0),
    BINARY("Equal", 19, 0, def_eq, T_NUM | T_BOOL, 0),
    BINARY("Less", 7, 8, def_lt, T_NUM, 0),
    BINARY("Less", 9, 12, def_lt, T_NUM, 0),
    BINARY("Less", 13, 0, def_lt, T_NUM, 0),
    BINARY("Greater", 7, 8, def_gt, T_NUM, 0),
    BINARY("Greater", 9, 12, def_gt, T_NUM, 0),
    BINARY("Greater", 13, 0, def_gt, T_NUM, 0),
    BINARY("LessOrEqual", 12, 15, def_le, T_NUM, 0),
    BINARY("LessOrEqual", 16, 0, def_le, T_NUM, 0),
    BINARY("GreaterOrEqual", 12, 15, def_ge, T_NUM, 0),
    BINARY("GreaterOrEqual", 16, 0, def_ge, T_NUM, 0),
    BINARY("And", 7, 0, def_and, T_BOOL, QKV_KERNEL_INPLACE),
    BINARY("Or", 7, 0, def_or, T_BOOL, QKV_KERNEL_INPLACE),
    BINARY("Xor", 7, 0, def_xor, T_BOOL, QKV_KERNEL_INPLACE),
    VARIADIC("Max", 8, 11, def_max, T_NUM),
    VARIADIC("Max", 12, 12, def_max, T_NUM),
    VARIADIC("Max", 13, 0, def_max, T_NUM),
    VARIADIC("Min", 8, 11, def_min, T_NUM),
    VARIADIC("Min", 12, 12, def_min, T_NUM),
    VARIADIC("Min", 13, 0, def_min, T_NUM),
    VARIADIC("Sum", 8, 12, def_sum, T_FLOAT),
    VARIADIC("Sum", 13, 0, def_sum, T_FLOAT),
    VARIADIC("Mean", 8, 12, def_mean, T_FLOAT),
    VARIADIC("Mean", 13, 0, def_mean, T_FLOAT),
    VARIADIC("Max", 6, 7, def_max, T_FLOAT),
    VARIADIC("Min", 6, 7, def_min, T_FLOAT),
    VARIADIC("Sum", 6, 7, def_sum, T_FLOAT),
    VARIADIC("Mean", 6, 7, def_mean, T_FLOAT),
};

/* The binary family's descriptors (static; *count set to their number). */
const qkv_kernel *qkv_ops_binary(size_t *count)
{
    *count = sizeof kernels / sizeof kernels[0];
    return kernels;
}
