/*
 * reduce.c - ReduceSum, ReduceMean, ReduceMax, ReduceMin, ReduceProd,
 * ReduceL1, ReduceL2, ReduceLogSum, ReduceLogSumExp, ReduceSumSquare.
 *
 * Opsets: `axes` is an attribute in opsets 1, 11 (and 12 for Max/Min) and
 * an optional int64 input from opset 13 (ReduceSum) or 18 (the others),
 * where `noop_with_empty_axes` (default 0) also appears. Later versions
 * (ReduceSum-21, ReduceMax/Min-20 adding bool) are covered by the input-form
 * descriptor. `keepdims` defaults to 1; empty or absent axes reduce every
 * axis unless noop_with_empty_axes=1, which makes the op an identity.
 * Deviations: negative axes are accepted in opset 1 too; all numeric types
 * (float, double, 8/16/32/64-bit signed and unsigned ints) are accepted in
 * every opset, and bool for Max/Min; float16/bfloat16 are reduced as a
 * float32 copy in scratch and rounded back once.
 * An axes input may be int32 as well as int64.
 *
 * Reducing over an empty set (a reduced dim of 0) gives the identity of the
 * operation, as the numpy reference does: sum/L1/L2/sum-square 0, prod 1,
 * max -inf (ints: the type's minimum), min +inf (ints: maximum), log-sum and
 * log-sum-exp -inf (ints: the minimum), mean NaN (ints: 0).
 *
 * Numerics. Float32 sums (Sum, Mean, L1, L2, SumSquare, LogSum, Prod and
 * the exp-sum of LogSumExp) accumulate in double: double's rounding error
 * after n additions, about n * 2^-53 relative, stays below half a float ulp
 * (2^-24) for any n < 2^29, so the float result is as good as a compensated
 * float sum's while the loop stays a plain add (no Kahan bookkeeping), and
 * vectorizes. Double inputs accumulate in double, uncompensated (error
 * about n * 2^-53 of the sum of magnitudes); layout A keeps four
 * interleaved partial sums, which also beats one add latency per element.
 * LogSumExp subtracts the maximum before exponentiating so it cannot
 * overflow. Max/Min propagate NaN as numpy does. Integer sums and products
 * wrap modulo 2^64 (computed in uint64, so no signed overflow), then
 * convert to the element type; integer Mean truncates toward zero;
 * integer L2/LogSum/LogSumExp round through double and saturate.
 *
 * Layout. Size-1 dims are dropped and adjacent dims that are both reduced
 * or both kept are merged. If the innermost merged dim is reduced (layout
 * A), each output element folds contiguous rows with four partial
 * accumulators; otherwise (layout B) the innermost kept run of outputs has
 * one accumulator each (on the stack, in strips of at most RED_ACC_MAX
 * outputs; Max/Min accumulate in the output itself) and every reduced
 * position adds one contiguous run to them, so memory is read sequentially,
 * never down a column. Remaining reduced dims are walked with an odometer
 * of strides: no transposed copy.
 * Output elements (layout A) or strips of the kept run (layout B) are split
 * across threads. A reduction to a single output (all axes) runs on one
 * thread.
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "half.h"
#include "kernel_util.h"
#include "qkv.h"
#include "reduce.h"

/* Go parallel from this many input elements. */
#define PAR_MIN_ELEMS ((size_t)1 << 15)

typedef enum reduce_op {
    R_SUM,
    R_MEAN,
    R_MAX,
    R_MIN,
    R_PROD,
    R_L1,
    R_L2,
    R_LOGSUM,
    R_LOGSUMEXP,
    R_SUMSQ
} reduce_op;

static const struct {
    const char *name;
    reduce_op op;
} op_names[] = {
    {"ReduceSum", R_SUM},         {"ReduceMean", R_MEAN},     {"ReduceMax", R_MAX},
    {"ReduceMin", R_MIN},         {"ReduceProd", R_PROD},     {"ReduceL1", R_L1},
    {"ReduceL2", R_L2},           {"ReduceLogSum", R_LOGSUM}, {"ReduceLogSumExp", R_LOGSUMEXP},
    {"ReduceSumSquare", R_SUMSQ},
};

typedef struct reduce_attrs {
    reduce_op op;
    bool keepdims;
    bool noop_empty; /* noop_with_empty_axes (input forms) */
    bool axes_input; /* axes come from input 1 */
    size_t n_axes;   /* attribute form: the axes */
    int64_t axes[QKV_MAX_RANK];
} reduce_attrs;

/*
 * The input viewed for one reduction (see "Layout" above). Element strides.
 * layout A: units = kept positions, each folding rcount rows of `row`.
 * layout B: units = kept positions outside the innermost kept run of
 *           `inner` outputs, whose strips each fold rcount runs.
 */
typedef struct reduce_view {
    bool inner_kept; /* layout B */
    size_t row;      /* A: contiguous reduced run */
    size_t inner;    /* B: contiguous kept run */
    size_t units;
    int nk; /* kept dims walked per unit (B: without the inner run) */
    size_t kdim[QKV_MAX_RANK], kstride[QKV_MAX_RANK];
    int nr; /* reduced dims walked per unit (A: without the row) */
    size_t rdim[QKV_MAX_RANK], rstride[QKV_MAX_RANK];
    size_t rcount; /* product of rdim */
    size_t n;      /* reduced elements per output */
} reduce_view;

static void view_build(const qkv_tensor *x, const bool *mask, reduce_view *v)
{
    size_t md[QKV_MAX_RANK], ms[QKV_MAX_RANK];
    bool mr[QKV_MAX_RANK];
    int m = 0;
    for (int32_t k = 0; k < x->rank; k++) {
        size_t d = (size_t)x->dims[k];
        if (d == 1)
            continue;
        if (m > 0 && mr[m - 1] == mask[k]) {
            md[m - 1] *= d;
        } else {
            md[m] = d;
            mr[m] = mask[k];
            m++;
        }
    }
    size_t s = 1;
    for (int k = m - 1; k >= 0; k--) {
        ms[k] = s;
        s *= md[k];
    }
    memset(v, 0, sizeof *v);
    v->inner_kept = m > 0 && !mr[m - 1];
    v->row = 1;
    v->inner = 1;
    int last = m; /* merged dims [0, last) are walked */
    if (m > 0) {
        last = m - 1;
        if (v->inner_kept)
            v->inner = md[m - 1];
        else
            v->row = md[m - 1];
    }
    v->units = 1;
    v->rcount = 1;
    for (int k = 0; k < last; k++) {
        if (mr[k]) {
            v->rdim[v->nr] = md[k];
            v->rstride[v->nr++] = ms[k];
            v->rcount *= md[k];
        } else {
            v->kdim[v->nk] = md[k];
            v->kstride[v->nk++] = ms[k];
            v->units *= md[k];
        }
    }
    v->n = v->rcount * v->row;
}

/* Input offset of kept position u (row-major over kdim). */
static inline size_t unit_base(const reduce_view *v, size_t u)
{
    size_t off = 0;
    for (int k = v->nk - 1; k >= 0; k--) {
        off += (u % v->kdim[k]) * v->kstride[k];
        u /= v->kdim[k];
    }
    return off;
}

/* Walks the reduced positions of one unit. */
typedef struct odo {
    size_t idx[QKV_MAX_RANK];
    size_t off;
} odo;

static inline void odo_start(odo *o, const reduce_view *v, size_t base)
{
    for (int k = 0; k < v->nr; k++)
        o->idx[k] = 0;
    o->off = base;
}

static inline void odo_next(odo *o, const reduce_view *v)
{
    for (int k = v->nr - 1; k >= 0; k--) {
        o->off += v->rstride[k];
        if (++o->idx[k] < v->rdim[k])
            return;
        o->off -= v->rstride[k] * v->rdim[k];
        o->idx[k] = 0;
    }
}

typedef struct reduce_run {
    reduce_view v;
    reduce_op op;
    size_t strip, strips; /* layout B: run split into strips of `strip` outputs */
    const void *x;
    void *y;
    void *scratch; /* float16/bfloat16 float32 copies (layout B accumulates on the stack) */
} reduce_run;

/* ---- per-type element helpers -------------------------------------------
 * cvt: element to accumulator; sq: its square; ab: its magnitude;
 * expd: exp(x - m) for LogSumExp
 * (float: expf, whose 1-ulp error is far below the float output's);
 * fin: accumulator to the op's result; fromd: double to element
 * (saturating for ints, NaN -> 0). */

#define DEFINE_FLOAT_HELPERS(SFX, T, EXP)                                                          \
    static inline double cvt_##SFX(T x) { return (double)x; }                                      \
    static inline double sq_##SFX(T x) { return (double)x * (double)x; }                           \
    static inline double ab_##SFX(T x) { return fabs((double)x); }                                 \
    static inline double expd_##SFX(T x, T m) { return (double)EXP(x - m); }                       \
    static inline T fromd_##SFX(double d) { return (T)d; }                                         \
    static inline T fin_##SFX(reduce_op op, double a, size_t n)                                    \
    {                                                                                              \
        switch (op) {                                                                              \
        case R_MEAN:                                                                               \
            return (T)(a / (double)n); /* n == 0: NaN, as numpy */                                 \
        case R_L2:                                                                                 \
            return (T)sqrt(a);                                                                     \
        case R_LOGSUM:                                                                             \
            return (T)log(a);                                                                      \
        default:                                                                                   \
            return (T)a;                                                                           \
        }                                                                                          \
    }

/* Integers: accumulate in uint64 (defined wrap-around), interpret as
 * signed (S = int64_t) or unsigned (S = uint64_t) when finishing. */
#define DEFINE_INT_HELPERS(SFX, T, S, TMIN, TMAX, ABS)                                             \
    static inline uint64_t cvt_##SFX(T x) { return (uint64_t)(S)x; }                               \
    static inline uint64_t sq_##SFX(T x) { return cvt_##SFX(x) * cvt_##SFX(x); }                   \
    static inline uint64_t ab_##SFX(T x) { return ABS; }                                           \
    static inline double expd_##SFX(T x, T m) { return exp((double)x - (double)m); }               \
    static inline T fromd_##SFX(double d)                                                          \
    {                                                                                              \
        if (d != d)                                                                                \
            return 0;                                                                              \
        if (d <= (double)(TMIN))                                                                   \
            return (TMIN);                                                                         \
        if (d >= (double)(TMAX))                                                                   \
            return (TMAX);                                                                         \
        return (T)d;                                                                               \
    }                                                                                              \
    static inline T fin_##SFX(reduce_op op, uint64_t a, size_t n)                                  \
    {                                                                                              \
        S s = (S)a;                                                                                \
        switch (op) {                                                                              \
        case R_MEAN:                                                                               \
            return n ? (T)(s / (S)n) : 0;                                                          \
        case R_L2:                                                                                 \
            return fromd_##SFX(sqrt((double)s));                                                   \
        case R_LOGSUM:                                                                             \
            return fromd_##SFX(log((double)s));                                                    \
        default:                                                                                   \
            return (T)s;                                                                           \
        }                                                                                          \
    }

DEFINE_FLOAT_HELPERS(f32, float, expf)
DEFINE_FLOAT_HELPERS(f64, double, exp)
DEFINE_INT_HELPERS(i8, int8_t, int64_t, INT8_MIN, INT8_MAX, x < 0 ? 0 - cvt_i8(x) : cvt_i8(x))
DEFINE_INT_HELPERS(i16, int16_t, int64_t, INT16_MIN, INT16_MAX, x < 0 ? 0 - cvt_i16(x) : cvt_i16(x))
DEFINE_INT_HELPERS(i32, int32_t, int64_t, INT32_MIN, INT32_MAX, x < 0 ? 0 - cvt_i32(x) : cvt_i32(x))
DEFINE_INT_HELPERS(i64, int64_t, int64_t, INT64_MIN, INT64_MAX, x < 0 ? 0 - cvt_i64(x) : cvt_i64(x))
DEFINE_INT_HELPERS(u8, uint8_t, uint64_t, 0, UINT8_MAX, cvt_u8(x))
DEFINE_INT_HELPERS(u16, uint16_t, uint64_t, 0, UINT16_MAX, cvt_u16(x))
DEFINE_INT_HELPERS(u32, uint32_t, uint64_t, 0, UINT32_MAX, cvt_u32(x))
DEFINE_INT_HELPERS(u64, uint64_t, uint64_t, 0, UINT64_MAX, cvt_u64(x))

/* ---- folds: a is the accumulator, x an element --------------------------
 * Max/Min are branchless selects (`&`, not `&&`, so they vectorize); NaN
 * sticks: a NaN x is taken (x <= a is false) and a NaN a is kept (a == a is
 * false). */
#define F_ADD(SFX, a, x) ((a) += cvt_##SFX(x))
#define F_ADDSQ(SFX, a, x) ((a) += sq_##SFX(x))
#define F_ADDABS(SFX, a, x) ((a) += ab_##SFX(x))
#define F_MUL(SFX, a, x) ((a) *= cvt_##SFX(x))
#define F_MAX(SFX, a, x) ((a) = (((a) == (a)) & !((x) <= (a))) ? (x) : (a))
#define F_MIN(SFX, a, x) ((a) = (((a) == (a)) & !((x) >= (a))) ? (x) : (a))

#define C_ADD(SFX, a, b) ((a) += (b))
#define C_MUL(SFX, a, b) ((a) *= (b))
#define C_MAX(SFX, a, b) F_MAX(SFX, a, b)
#define C_MIN(SFX, a, b) F_MIN(SFX, a, b)

#define S_FIN(SFX, dst, a) ((dst) = fin_##SFX(op, (a), n))
#define S_RAW(SFX, dst, a) ((dst) = (a))

/* Layout A: unit u folds rcount rows of v->row contiguous elements into
 * four partial accumulators. Expects x, y, v, b, e (and op, n) in scope. */
#define RED_ROWS(SFX, ACCT, INIT, FOLD, COMBINE, STORE)                                            \
    for (size_t u = b; u < e; u++) {                                                               \
        ACCT a0 = (INIT), a1 = (INIT), a2 = (INIT), a3 = (INIT);                                   \
        odo o;                                                                                     \
        odo_start(&o, v, unit_base(v, u));                                                         \
        for (size_t c = 0; c < v->rcount; c++, odo_next(&o, v)) {                                  \
            const elem_t *restrict p = x + o.off;                                                  \
            size_t i = 0;                                                                          \
            for (; i + 4 <= v->row; i += 4) {                                                      \
                FOLD(SFX, a0, p[i]);                                                               \
                FOLD(SFX, a1, p[i + 1]);                                                           \
                FOLD(SFX, a2, p[i + 2]);                                                           \
                FOLD(SFX, a3, p[i + 3]);                                                           \
            }                                                                                      \
            for (; i < v->row; i++)                                                                \
                FOLD(SFX, a0, p[i]);                                                               \
        }                                                                                          \
        COMBINE(SFX, a0, a1);                                                                      \
        COMBINE(SFX, a2, a3);                                                                      \
        COMBINE(SFX, a0, a2);                                                                      \
        STORE(SFX, y[u], a0);                                                                      \
    }

/* Layout B's accumulators are bounded: a strip has at most RED_ACC_MAX
 * outputs and its accumulators live on the stack (8 KiB). Output-sized
 * scratch would set the memory peak of models averaging attention weights
 * over heads (nn.MultiheadAttention's ReduceSum). */
#define RED_ACC_MAX QKV_MIN_STRIP

/* Layout B: unit u is strip (u % strips) of kept position u / strips: w <=
 * RED_ACC_MAX accumulators at acc (on the stack, or in y itself for
 * Max/Min: IN_Y) fold one contiguous run of w elements per reduced position. */
#define RED_STRIPS(SFX, ACCT, IN_Y, INIT, FOLD, STORE)                                             \
    for (size_t u = b; u < e; u++) {                                                               \
        size_t ko = u / r->strips, t0 = (u % r->strips) * r->strip;                                \
        size_t w = v->inner - t0 < r->strip ? v->inner - t0 : r->strip;                            \
        size_t first = ko * v->inner + t0; /* output index of the strip */                         \
        ACCT acc_block[RED_ACC_MAX];                                                               \
        ACCT *restrict acc = IN_Y ? (ACCT *)(void *)(y + first) : acc_block;                       \
        QKV_FOR_W(w, acc[j] = (INIT));                                                             \
        odo o;                                                                                     \
        odo_start(&o, v, unit_base(v, ko) + t0);                                                   \
        for (size_t c = 0; c < v->rcount; c++, odo_next(&o, v)) {                                  \
            const elem_t *restrict p = x + o.off;                                                  \
            QKV_FOR_W(w, FOLD(SFX, acc[j], p[j]));                                                 \
        }                                                                                          \
        if (!IN_Y) {                                                                               \
            elem_t *restrict out = y + first;                                                      \
            QKV_FOR_W(w, STORE(SFX, out[j], acc[j]));                                              \
        }                                                                                          \
    }

/* log(sum(exp(x))) = m + log(sum(exp(x - m))), m the maximum. An empty set
 * gives -inf (ints: the minimum); a NaN or infinite maximum is the result. */
#define LSE_FINISH(SFX, m, s)                                                                      \
    (n == 0                   ? fromd_##SFX(-INFINITY)                                             \
     : !isfinite((double)(m)) ? (m)                                                                \
                              : fromd_##SFX((double)(m) + log(s)))

/*
 * reduce_range_SFX: folds units [b, e) of r for element type T.
 * LOWEST/HIGHEST: the identities of max and min.
 */
#define DEFINE_REDUCE(SFX, T, ACC, LOWEST, HIGHEST)                                                \
    static void reduce_range_##SFX(void *arg, size_t b, size_t e)                                  \
    {                                                                                              \
        typedef T elem_t; /* for RED_ROWS and RED_STRIPS */                                        \
        const reduce_run *r = arg;                                                                 \
        const reduce_view *v = &r->v;                                                              \
        const T *restrict x = r->x;                                                                \
        T *restrict y = r->y;                                                                      \
        const reduce_op op = r->op;                                                                \
        const size_t n = v->n;                                                                     \
        if (!v->inner_kept) {                                                                      \
            switch (op) {                                                                          \
            case R_SUM:                                                                            \
            case R_MEAN:                                                                           \
            case R_LOGSUM:                                                                         \
                RED_ROWS(SFX, ACC, 0, F_ADD, C_ADD, S_FIN)                                         \
                break;                                                                             \
            case R_SUMSQ:                                                                          \
            case R_L2:                                                                             \
                RED_ROWS(SFX, ACC, 0, F_ADDSQ, C_ADD, S_FIN)                                       \
                break;                                                                             \
            case R_L1:                                                                             \
                RED_ROWS(SFX, ACC, 0, F_ADDABS, C_ADD, S_FIN)                                      \
                break;                                                                             \
            case R_PROD:                                                                           \
                RED_ROWS(SFX, ACC, 1, F_MUL, C_MUL, S_FIN)                                         \
                break;                                                                             \
            case R_MAX:                                                                            \
                RED_ROWS(SFX, T, LOWEST, F_MAX, C_MAX, S_RAW)                                      \
                break;                                                                             \
            case R_MIN:                                                                            \
                RED_ROWS(SFX, T, HIGHEST, F_MIN, C_MIN, S_RAW)                                     \
                break;                                                                             \
            case R_LOGSUMEXP:                                                                      \
                for (size_t u = b; u < e; u++) {                                                   \
                    size_t base = unit_base(v, u);                                                 \
                    T m = LOWEST;                                                                  \
                    odo o;                                                                         \
                    odo_start(&o, v, base);                                                        \
                    for (size_t c = 0; c < v->rcount; c++, odo_next(&o, v))                        \
                        for (size_t i = 0; i < v->row; i++)                                        \
                            F_MAX(SFX, m, x[o.off + i]);                                           \
                    double s = 0;                                                                  \
                    if (isfinite((double)m)) {                                                     \
                        odo_start(&o, v, base);                                                    \
                        for (size_t c = 0; c < v->rcount; c++, odo_next(&o, v))                    \
                            for (size_t i = 0; i < v->row; i++)                                    \
                                s += expd_##SFX(x[o.off + i], m);                                  \
                    }                                                                              \
                    y[u] = LSE_FINISH(SFX, m, s);                                                  \
                }                                                                                  \
                break;                                                                             \
            }                                                                                      \
            return;                                                                                \
        }                                                                                          \
        switch (op) {                                                                              \
        case R_SUM:                                                                                \
        case R_MEAN:                                                                               \
        case R_LOGSUM:                                                                             \
            RED_STRIPS(SFX, ACC, 0, 0, F_ADD, S_FIN)                                               \
            break;                                                                                 \
        case R_SUMSQ:                                                                              \
        case R_L2:                                                                                 \
            RED_STRIPS(SFX, ACC, 0, 0, F_ADDSQ, S_FIN)                                             \
            break;                                                                                 \
        case R_L1:                                                                                 \
            RED_STRIPS(SFX, ACC, 0, 0, F_ADDABS, S_FIN)                                            \
            break;                                                                                 \
        case R_PROD:                                                                               \
            RED_STRIPS(SFX, ACC, 0, 1, F_MUL, S_FIN)                                               \
            break;                                                                                 \
        case R_MAX:                                                                                \
            RED_STRIPS(SFX, T, 1, LOWEST, F_MAX, S_RAW)                                            \
            break;                                                                                 \
        case R_MIN:                                                                                \
            RED_STRIPS(SFX, T, 1, HIGHEST, F_MIN, S_RAW)                                           \
            break;                                                                                 \
        case R_LOGSUMEXP:                                                                          \
            /* the maxima go to y, the exp-sums to the stack, then y is finished */                \
            for (size_t u = b; u < e; u++) {                                                       \
                size_t ko = u / r->strips, t0 = (u % r->strips) * r->strip;                        \
                size_t w = v->inner - t0 < r->strip ? v->inner - t0 : r->strip;                    \
                size_t first = ko * v->inner + t0, base = unit_base(v, ko) + t0;                   \
                T *restrict m = y + first;                                                         \
                double sum[RED_ACC_MAX];                                                           \
                QKV_FOR_W(w, (m[j] = LOWEST, sum[j] = 0));                                         \
                odo o;                                                                             \
                odo_start(&o, v, base);                                                            \
                for (size_t c = 0; c < v->rcount; c++, odo_next(&o, v)) {                          \
                    const T *restrict p = x + o.off;                                               \
                    QKV_FOR_W(w, F_MAX(SFX, m[j], p[j]));                                          \
                }                                                                                  \
                odo_start(&o, v, base);                                                            \
                for (size_t c = 0; c < v->rcount; c++, odo_next(&o, v)) {                          \
                    const T *restrict p = x + o.off;                                               \
                    QKV_FOR_W(w, sum[j] += isfinite((double)m[j]) ? expd_##SFX(p[j], m[j]) : 0);   \
                }                                                                                  \
                QKV_FOR_W(w, m[j] = LSE_FINISH(SFX, m[j], sum[j]));                                \
            }                                                                                      \
            break;                                                                                 \
        }                                                                                          \
    }

DEFINE_REDUCE(f32, float, double, -INFINITY, INFINITY)
DEFINE_REDUCE(f64, double, double, -INFINITY, INFINITY)
DEFINE_REDUCE(i8, int8_t, uint64_t, INT8_MIN, INT8_MAX)
DEFINE_REDUCE(i16, int16_t, uint64_t, INT16_MIN, INT16_MAX)
DEFINE_REDUCE(i32, int32_t, uint64_t, INT32_MIN, INT32_MAX)
DEFINE_REDUCE(i64, int64_t, uint64_t, INT64_MIN, INT64_MAX)
DEFINE_REDUCE(u8, uint8_t, uint64_t, 0, UINT8_MAX)
DEFINE_REDUCE(u16, uint16_t, uint64_t, 0, UINT16_MAX)
DEFINE_REDUCE(u32, uint32_t, uint64_t, 0, UINT32_MAX)
DEFINE_REDUCE(u64, uint64_t, uint64_t, 0, UINT64_MAX)

/* ---- axes ------------------------------------------------------------------ */

/* The node's axes into axes[0..*n); *n = SIZE_MAX when an axes input's value
 * is not known yet. */
static qkv_status reduce_axes(const reduce_attrs *s, qkv_kernel_io *io, int64_t *axes, size_t *n)
{
    if (!s->axes_input) {
        memcpy(axes, s->axes, s->n_axes * sizeof *axes);
        *n = s->n_axes;
        return QKV_OK;
    }
    if (!qkv_present(io, 1)) {
        *n = 0;
        return QKV_OK;
    }
    const qkv_tensor *a = &io->inputs[1];
    if (qkv_shape_known(a) && qkv_numel(a) == 0) {
        *n = 0; /* an empty axes value is known from its shape alone */
        return QKV_OK;
    }
    return qkv_read_ints(io, 1, axes, QKV_MAX_RANK, n);
}

/* mask[k]: dim k is reduced; *noop when the node is an identity. Checks the
 * axes against rank: QKV_ERR_SHAPE out of range, INVALID_MODEL repeated. */
static qkv_status reduce_mask(const reduce_attrs *s, qkv_kernel_io *io, int32_t rank,
                              const int64_t *axes, size_t n, bool *mask, bool *noop)
{
    *noop = n == 0 && s->noop_empty;
    for (int32_t k = 0; k < rank; k++)
        mask[k] = n == 0;
    for (size_t i = 0; i < n; i++) {
        int32_t a;
        if (!qkv_axis_normalize(axes[i], rank, false, &a))
            return KERR(io, QKV_ERR_SHAPE,
                        "axes[%zu]=%lld is out of range for input 0 'data' of rank %d "
                        "(expected %d to %d)",
                        i, (long long)axes[i], rank, -rank, rank - 1);
        if (mask[a])
            return KERR(io, QKV_ERR_INVALID_MODEL, "axes names axis %d twice (axes[%zu]=%lld)", a,
                        i, (long long)axes[i]);
        mask[a] = true;
    }
    return QKV_OK;
}

/* ---- callbacks ----------------------------------------------------------- */

static qkv_status reduce_init(const qkv_kernel *kernel, const qkv_host_api *host,
                              const qkv_node_ctx *node, void **state)
{
    reduce_attrs *s = calloc(1, sizeof *s);
    if (!s)
        return NERR(host, node, QKV_ERR_OUT_OF_MEMORY, "kernel state");
    for (size_t i = 0; i < sizeof op_names / sizeof op_names[0]; i++)
        if (strcmp(kernel->op_type, op_names[i].name) == 0)
            s->op = op_names[i].op;
    s->axes_input = kernel->max_inputs == 2;
    int64_t keepdims = 1, noop = 0;
    qkv_status st = host->attr_int(node, "keepdims", 1, &keepdims);
    if (st == QKV_OK && s->axes_input)
        st = host->attr_int(node, "noop_with_empty_axes", 0, &noop);
    if (st == QKV_OK && !s->axes_input) {
        const int64_t *axes;
        size_t n;
        st = host->attr_ints(node, "axes", &axes, &n);
        if (st == QKV_OK && n > QKV_MAX_RANK)
            st = NERR(host, node, QKV_ERR_INVALID_MODEL,
                      "attribute 'axes' has %zu entries, more than the %d dims a tensor can have",
                      n, QKV_MAX_RANK);
        if (st == QKV_OK && n) {
            memcpy(s->axes, axes, n * sizeof *axes);
            s->n_axes = n;
        }
    }
    if (st != QKV_OK) {
        free(s);
        return st;
    }
    s->keepdims = keepdims != 0;
    s->noop_empty = noop != 0;
    *state = s;
    return QKV_OK;
}

static void reduce_destroy(void *state) { free(state); }

static qkv_status reduce_infer(void *state, qkv_kernel_io *io)
{
    const reduce_attrs *s = state;
    const qkv_tensor *x = &io->inputs[0];
    qkv_tensor *y = &io->outputs[0];
    y->dtype = x->dtype;
    y->rank = -1;
    int64_t axes[QKV_MAX_RANK];
    size_t n;
    qkv_status st = reduce_axes(s, io, axes, &n);
    if (st != QKV_OK || x->rank < 0)
        return st;
    if (n == SIZE_MAX) {
        /* which axes go is data dependent: only size-1 dims are certain */
        const qkv_tensor *a = &io->inputs[1];
        if (s->keepdims) {
            y->rank = x->rank;
            for (int32_t k = 0; k < x->rank; k++)
                y->dims[k] = x->dims[k] == 1 ? 1 : -1;
        } else if (qkv_shape_known(a) && qkv_numel(a) <= (size_t)x->rank) {
            y->rank = x->rank - (int32_t)qkv_numel(a);
            for (int32_t k = 0; k < y->rank; k++)
                y->dims[k] = -1;
        }
        return QKV_OK;
    }
    bool mask[QKV_MAX_RANK], noop;
    st = reduce_mask(s, io, x->rank, axes, n, mask, &noop);
    if (st != QKV_OK)
        return st;
    int32_t r = 0;
    for (int32_t k = 0; k < x->rank; k++) {
        if (noop || !mask[k])
            y->dims[r++] = x->dims[k];
        else if (s->keepdims)
            y->dims[r++] = 1;
    }
    y->rank = r;
    return QKV_OK;
}

/* What prepare works out once per plan and compute reads (io->plan_state):
 * the view of the input, the loop for its element type. */
typedef struct reduce_plan {
    bool noop; /* the node is an identity */
    reduce_view v;
    qkv_range_fn fn;
    size_t half_offset; /* float16/bfloat16: where the float32 copies start in scratch */
} reduce_plan;

/* The loop over output units for an element type; NULL when not supported. */
static qkv_range_fn reduce_fn(qkv_dtype t)
{
    switch (t) {
    case QKV_DTYPE_FLOAT16:
    case QKV_DTYPE_BFLOAT16:
    case QKV_DTYPE_FLOAT:
        return reduce_range_f32;
    case QKV_DTYPE_DOUBLE:
        return reduce_range_f64;
    case QKV_DTYPE_INT8:
        return reduce_range_i8;
    case QKV_DTYPE_INT16:
        return reduce_range_i16;
    case QKV_DTYPE_INT32:
        return reduce_range_i32;
    case QKV_DTYPE_INT64:
        return reduce_range_i64;
    case QKV_DTYPE_BOOL: /* Max/Min only: max is "any", min is "all" on 0/1 bytes */
    case QKV_DTYPE_UINT8:
        return reduce_range_u8;
    case QKV_DTYPE_UINT16:
        return reduce_range_u16;
    case QKV_DTYPE_UINT32:
        return reduce_range_u32;
    case QKV_DTYPE_UINT64:
        return reduce_range_u64;
    default:
        return NULL;
    }
}

/* Accumulator scratch: none, layout B's are on the stack (RED_ACC_MAX). */
static size_t reduce_scratch_bytes(const reduce_view *v, const qkv_tensor *y)
{
    (void)v;
    (void)y;
    return 0;
}

/* Resolves the axes (their value must be known at prepare) into the view,
 * picks the loop and declares scratch. */
static qkv_status reduce_prepare(void *state, qkv_kernel_io *io)
{
    const reduce_attrs *s = state;
    const qkv_tensor *x = &io->inputs[0];
    int64_t axes[QKV_MAX_RANK];
    size_t n;
    qkv_status st = reduce_axes(s, io, axes, &n);
    if (st != QKV_OK)
        return st;
    if (n == SIZE_MAX)
        return KERR(io, QKV_ERR_INTERNAL, "input 1 'axes' has no value at prepare");
    bool mask[QKV_MAX_RANK], noop;
    if ((st = reduce_mask(s, io, x->rank, axes, n, mask, &noop)) != QKV_OK)
        return st;
    reduce_plan *plan;
    if ((st = io->host->plan_alloc(io, sizeof *plan, (void **)&plan)) != QKV_OK)
        return st;
    plan->noop = noop;
    io->plan_state = plan;
    if (noop)
        return QKV_OK;
    view_build(x, mask, &plan->v);
    if (!(plan->fn = reduce_fn(x->dtype)))
        return KERR(io, QKV_ERR_TYPE, "input 0 'data' has type %s, not supported",
                    qkv_dtype_name(x->dtype));
    plan->half_offset = reduce_scratch_bytes(&plan->v, &io->outputs[0]);
    io->scratch_bytes = plan->half_offset;
    /* float16/bfloat16: float32 copies of x and y after the accumulators */
    if (qkv_is_half(x->dtype))
        io->scratch_bytes += (qkv_numel(x) + qkv_numel(&io->outputs[0])) * 4;
    return QKV_OK;
}

static qkv_status reduce_compute(const void *state, qkv_kernel_io *io)
{
    const reduce_attrs *s = state;
    const reduce_plan *plan = io->plan_state;
    const qkv_tensor *x = &io->inputs[0];
    qkv_tensor *y = &io->outputs[0];
    if (!plan)
        return KERR(io, QKV_ERR_INTERNAL, "no per-plan state: prepare did not run");
    if (plan->noop) {
        if (y->data != x->data)
            memcpy(y->data, x->data, x->data_bytes);
        return QKV_OK;
    }
    if (qkv_numel(y) == 0)
        return QKV_OK;
    reduce_run r = {.v = plan->v, .op = s->op, .x = x->data, .y = y->data, .scratch = io->scratch};
    /* float16/bfloat16: reduce float32 copies (placed after the accumulators) */
    float *half_y = NULL;
    if (qkv_is_half(x->dtype)) {
        float *hx = (float *)((char *)io->scratch + plan->half_offset);
        half_y = hx + qkv_numel(x);
        qkv_half_to_f32_par(io, hx, x->data, x->dtype, qkv_numel(x));
        r.x = hx;
        r.y = half_y;
    }
    bool par = qkv_numel(x) >= PAR_MIN_ELEMS;
    size_t units = r.v.units;
    if (r.v.inner_kept) {
        size_t threads = par ? io->host->thread_count(io->host_ctx) : 1;
        r.strip = qkv_strip_len(r.v.inner, r.v.units, threads);
        if (r.strip > RED_ACC_MAX) /* the stack accumulator block */
            r.strip = RED_ACC_MAX;
        r.strips = (r.v.inner + r.strip - 1) / r.strip;
        units *= r.strips;
    }
    if (units > 1 && par)
        io->host->parallel_for(io->host_ctx, units, plan->fn, &r);
    else
        plan->fn(&r, 0, units);
    if (half_y)
        qkv_f32_to_half_par(io, y->data, half_y, y->dtype, qkv_numel(y));
    return QKV_OK;
}

/* ---- descriptors ------------------------------------------------------------- */

#define REDUCE_KERNEL(NAME, SINCE, UNTIL, N_IN, TYPES)                                             \
    {                                                                                              \
        QKV_KERNEL_V1,                                                                             \
            .domain = "", .op_type = (NAME), .since_version = (SINCE), .until_version = (UNTIL),   \
            .min_inputs = 1, .max_inputs = (N_IN), .min_outputs = 1, .max_outputs = 1,             \
            .n_input_types = 2, .input_types = {(TYPES), QKV_TYPES_INDEX}, .init = reduce_init,    \
            .infer = reduce_infer, .prepare = reduce_prepare, .compute = reduce_compute,           \
            .destroy = reduce_destroy,                                                             \
    }

/* One descriptor per opset version (so messages name it): the axes
 * attribute until 17 (ReduceSum: 12), then the axes input. */
#define REDUCE_OPSETS(NAME, TYPES)                                                                 \
    REDUCE_KERNEL(NAME, 1, 10, 1, TYPES), REDUCE_KERNEL(NAME, 11, 12, 1, TYPES),                   \
        REDUCE_KERNEL(NAME, 13, 17, 1, TYPES), REDUCE_KERNEL(NAME, 18, 0, 2, TYPES)

#define RED_TYPES (QKV_TYPES_NUMERIC | QKV_T(FLOAT16) | QKV_T(BFLOAT16))
#define MINMAX_TYPES (RED_TYPES | QKV_T(BOOL))

static const qkv_kernel kernels[] = {
    REDUCE_KERNEL("ReduceSum", 1, 10, 1, RED_TYPES),
    REDUCE_KERNEL("ReduceSum", 11, 12, 1, RED_TYPES),
    REDUCE_KERNEL("ReduceSum", 13, 0, 2, RED_TYPES),
    REDUCE_KERNEL("ReduceMax", 1, 10, 1, MINMAX_TYPES),
    REDUCE_KERNEL("ReduceMax", 11, 11, 1, MINMAX_TYPES),
    REDUCE_KERNEL("ReduceMax", 12, 12, 1, MINMAX_TYPES),
    REDUCE_KERNEL("ReduceMax", 13, 17, 1, MINMAX_TYPES),
    REDUCE_KERNEL("ReduceMax", 18, 19, 2, MINMAX_TYPES),
    REDUCE_KERNEL("ReduceMax", 20, 0, 2, MINMAX_TYPES),
    REDUCE_KERNEL("ReduceMin", 1, 10, 1, MINMAX_TYPES),
    REDUCE_KERNEL("ReduceMin", 11, 11, 1, MINMAX_TYPES),
    REDUCE_KERNEL("ReduceMin", 12, 12, 1, MINMAX_TYPES),
    REDUCE_KERNEL("ReduceMin", 13, 17, 1, MINMAX_TYPES),
    REDUCE_KERNEL("ReduceMin", 18, 19, 2, MINMAX_TYPES),
    REDUCE_KERNEL("ReduceMin", 20, 0, 2, MINMAX_TYPES),
    REDUCE_OPSETS("ReduceMean", RED_TYPES),
    REDUCE_OPSETS("ReduceProd", RED_TYPES),
    REDUCE_OPSETS("ReduceL1", RED_TYPES),
    REDUCE_OPSETS("ReduceL2", RED_TYPES),
    REDUCE_OPSETS("ReduceLogSum", RED_TYPES),
    REDUCE_OPSETS("ReduceLogSumExp", RED_TYPES),
    REDUCE_OPSETS("ReduceSumSquare", RED_TYPES),
};

/* The Reduce* descriptors (attribute and input forms); *count set to their
 * number. */
const qkv_kernel *qkv_ops_reduce(size_t *count)
{
    *count = sizeof kernels / sizeof kernels[0];
    return kernels;
}
