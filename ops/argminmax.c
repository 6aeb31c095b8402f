/*
 * argminmax.c - ArgMax and ArgMin (opsets 1, 11, 12, 13).
 *
 * The int64 index of the largest (smallest) element along `axis` (default
 * 0), the axis kept as size 1 when keepdims=1 (default). Ties go to the
 * first index, or the last with select_last_index=1 (opset 12; read in
 * every opset, where it defaults to 0). NaN counts as the extreme, so the
 * first (or last) NaN wins, as in numpy. An axis of size 0 is an error.
 * Deviations: negative axes are accepted in opset 1 too; all numeric types
 * are accepted (float16/bfloat16 are not supported).
 *
 * The input is viewed as (outer, d, inner). With inner == 1 each output
 * scans a contiguous row; otherwise a run of adjacent outputs is updated
 * from each contiguous run of x (sequential reads, never down a column),
 * their best values in scratch (output-sized). Rows, or (outer, strip of
 * the inner run) units, are split across threads.
 */
#include <stdlib.h>
#include <string.h>

#include "kernel_util.h"
#include "qkv.h"
#include "reduce.h"

#define PAR_MIN_ELEMS ((size_t)1 << 15)

typedef struct arg_attrs {
    int64_t axis;
    bool keepdims;
    bool last;   /* select_last_index */
    bool is_max; /* ArgMax */
} arg_attrs;

typedef struct arg_run {
    const void *x;
    int64_t *y;
    void *scratch;        /* inner > 1: the best value of each output */
    size_t d, inner;      /* x viewed as (outer, d, inner) */
    size_t strip, strips; /* inner > 1: inner split into strips */
    bool last;
} arg_run;

/* better(x, best): x replaces the current best. For ArgMax "greater", for
 * ArgMin "less"; a NaN replaces a number, and with `last` ties (equal or
 * both NaN) replace too. */
#define BETTER(x, best, CMP, last)                                                                 \
    ((best) != (best) ? ((last) && (x) != (x))                                                     \
                      : ((x) != (x) || (x)CMP(best) || ((last) && (x) == (best))))

#define DEFINE_ARG(SFX, NAME, T, CMP)                                                              \
    static void arg_##NAME##_##SFX(void *arg, size_t b, size_t e)                                  \
    {                                                                                              \
        const arg_run *r = arg;                                                                    \
        const T *restrict x = r->x;                                                                \
        const size_t d = r->d, inner = r->inner;                                                   \
        const bool last = r->last;                                                                 \
        if (inner == 1) {                                                                          \
            for (size_t u = b; u < e; u++) {                                                       \
                const T *restrict row = x + u * d;                                                 \
                T best = row[0];                                                                   \
                size_t bi = 0;                                                                     \
                for (size_t i = 1; i < d; i++)                                                     \
                    if (BETTER(row[i], best, CMP, last)) {                                         \
                        best = row[i];                                                             \
                        bi = i;                                                                    \
                    }                                                                              \
                r->y[u] = (int64_t)bi;                                                             \
            }                                                                                      \
            return;                                                                                \
        }                                                                                          \
        for (size_t u = b; u < e; u++) {                                                           \
            size_t o = u / r->strips, t0 = (u % r->strips) * r->strip;                             \
            size_t w = inner - t0 < r->strip ? inner - t0 : r->strip;                              \
            const T *restrict base = x + o * d * inner + t0;                                       \
            int64_t *restrict out = r->y + o * inner + t0;                                         \
            T *restrict best = (T *)r->scratch + o * inner + t0;                                   \
            for (size_t j = 0; j < w; j++) {                                                       \
                best[j] = base[j];                                                                 \
                out[j] = 0;                                                                        \
            }                                                                                      \
            for (size_t i = 1; i < d; i++) {                                                       \
                const T *restrict run = base + i * inner;                                          \
                for (size_t j = 0; j < w; j++)                                                     \
                    if (BETTER(run[j], best[j], CMP, last)) {                                      \
                        best[j] = run[j];                                                          \
                        out[j] = (int64_t)i;                                                       \
                    }                                                                              \
            }                                                                                      \
        }                                                                                          \
    }

#define DEFINE_ARGS(SFX, T)                                                                        \
    DEFINE_ARG(SFX, max, T, >)                                                                     \
    DEFINE_ARG(SFX, min, T, <)

/* x != x is the NaN test (always false for ints) */
DEFINE_ARGS(f32, float)
DEFINE_ARGS(f64, double)
DEFINE_ARGS(i8, int8_t)
DEFINE_ARGS(i16, int16_t)
DEFINE_ARGS(i32, int32_t)
DEFINE_ARGS(i64, int64_t)
DEFINE_ARGS(u8, uint8_t)
DEFINE_ARGS(u16, uint16_t)
DEFINE_ARGS(u32, uint32_t)
DEFINE_ARGS(u64, uint64_t)

/* ---- callbacks ----------------------------------------------------------- */

static qkv_status arg_init(const qkv_kernel *kernel, const qkv_host_api *host,
                           const qkv_node_ctx *node, void **state)
{
    arg_attrs *s = calloc(1, sizeof *s);
    if (!s)
        return NERR(host, node, QKV_ERR_OUT_OF_MEMORY, "kernel state");
    int64_t keepdims = 1, last = 0;
    qkv_status st = host->attr_int(node, "axis", 0, &s->axis);
    if (st == QKV_OK)
        st = host->attr_int(node, "keepdims", 1, &keepdims);
    if (st == QKV_OK)
        st = host->attr_int(node, "select_last_index", 0, &last);
    if (st != QKV_OK) {
        free(s);
        return st;
    }
    s->keepdims = keepdims != 0;
    s->last = last != 0;
    s->is_max = strcmp(kernel->op_type, "ArgMax") == 0;
    *state = s;
    return QKV_OK;
}

static void arg_destroy(void *state) { free(state); }

static qkv_status arg_infer(void *state, qkv_kernel_io *io)
{
    const arg_attrs *s = state;
    const qkv_tensor *x = &io->inputs[0];
    qkv_tensor *y = &io->outputs[0];
    y->dtype = QKV_DTYPE_INT64;
    y->rank = -1;
    if (x->rank < 0)
        return QKV_OK;
    int32_t axis;
    if (!qkv_axis_normalize(s->axis, x->rank, false, &axis))
        return KERR(io, QKV_ERR_SHAPE,
                    "attribute axis=%lld is out of range for input 0 'data' of rank %d "
                    "(expected %d to %d)",
                    (long long)s->axis, x->rank, -x->rank, x->rank - 1);
    if (x->dims[axis] == 0)
        return KERR(io, QKV_ERR_SHAPE, "input 0 'data' has size 0 on axis %d: no %s index", axis,
                    s->is_max ? "largest" : "smallest");
    int32_t r = 0;
    for (int32_t k = 0; k < x->rank; k++) {
        if (k != axis)
            y->dims[r++] = x->dims[k];
        else if (s->keepdims)
            y->dims[r++] = 1;
    }
    y->rank = r;
    return QKV_OK;
}

/* The (outer, d, inner) view of input 0 for the node's axis; false when
 * the axis does not fit (out of range or an empty axis). */
static bool arg_view(const arg_attrs *s, const qkv_tensor *x, size_t *outer, arg_run *r)
{
    int32_t axis;
    if (!qkv_axis_normalize(s->axis, x->rank, false, &axis) || x->dims[axis] == 0)
        return false;
    *outer = 1;
    r->d = (size_t)x->dims[axis];
    r->inner = 1;
    for (int32_t k = 0; k < x->rank; k++) {
        if (k < axis)
            *outer *= (size_t)x->dims[k];
        else if (k > axis)
            r->inner *= (size_t)x->dims[k];
    }
    return true;
}

static qkv_status arg_prepare(void *state, qkv_kernel_io *io)
{
    const qkv_tensor *x = &io->inputs[0];
    arg_run r;
    size_t outer;
    if (!arg_view(state, x, &outer, &r))
        return KERR(io, QKV_ERR_SHAPE, "attribute axis=%lld does not fit input 0 'data'",
                    (long long)((const arg_attrs *)state)->axis);
    io->scratch_bytes = r.inner > 1 ? outer * r.inner * (qkv_dtype_bits(x->dtype) / 8) : 0;
    return QKV_OK;
}

static qkv_status arg_compute(const void *state, qkv_kernel_io *io)
{
    const arg_attrs *s = state;
    const qkv_tensor *x = &io->inputs[0];
    arg_run r = {.x = x->data, .y = io->outputs[0].data, .scratch = io->scratch, .last = s->last};
    size_t outer;
    if (!arg_view(s, x, &outer, &r))
        return KERR(io, QKV_ERR_SHAPE, "attribute axis=%lld does not fit input 0 'data'",
                    (long long)s->axis);
    if (outer * r.inner == 0)
        return QKV_OK;
    size_t es = qkv_dtype_bits(x->dtype) / 8;
    if (r.inner > 1 && io->scratch_bytes < outer * r.inner * es)
        return KERR(io, QKV_ERR_INTERNAL, "scratch of %zu bytes, %zu needed", io->scratch_bytes,
                    outer * r.inner * es);
    bool par = qkv_numel(x) >= PAR_MIN_ELEMS;
    size_t units = outer;
    if (r.inner > 1) {
        size_t threads = par ? io->host->thread_count(io->host_ctx) : 1;
        r.strip = qkv_strip_len(r.inner, outer, threads);
        r.strips = (r.inner + r.strip - 1) / r.strip;
        units = outer * r.strips;
    }
    qkv_range_fn fn;
#define PICK(SFX) fn = s->is_max ? arg_max_##SFX : arg_min_##SFX
    switch (x->dtype) {
    case QKV_DTYPE_FLOAT:
        PICK(f32);
        break;
    case QKV_DTYPE_DOUBLE:
        PICK(f64);
        break;
    case QKV_DTYPE_INT8:
        PICK(i8);
        break;
    case QKV_DTYPE_INT16:
        PICK(i16);
        break;
    case QKV_DTYPE_INT32:
        PICK(i32);
        break;
    case QKV_DTYPE_INT64:
        PICK(i64);
        break;
    case QKV_DTYPE_UINT8:
        PICK(u8);
        break;
    case QKV_DTYPE_UINT16:
        PICK(u16);
        break;
    case QKV_DTYPE_UINT32:
        PICK(u32);
        break;
    case QKV_DTYPE_UINT64:
        PICK(u64);
        break;
    default:
        return KERR(io, QKV_ERR_TYPE, "input 0 'data' has type %s, not supported",
                    qkv_dtype_name(x->dtype));
    }
#undef PICK
    if (units > 1 && par)
        io->host->parallel_for(io->host_ctx, units, fn, &r);
    else
        fn(&r, 0, units);
    return QKV_OK;
}

#define ARG_KERNEL(NAME, SINCE, UNTIL)                                                             \
    {                                                                                              \
        QKV_KERNEL_V1, .domain = "", .op_type = (NAME), .since_version = (SINCE),                  \
                       .until_version = (UNTIL), .min_inputs = 1, .max_inputs = 1,                 \
                       .min_outputs = 1, .max_outputs = 1, .n_input_types = 1,                     \
                       .input_types = {QKV_TYPES_NUMERIC}, .init = arg_init, .infer = arg_infer,   \
                       .prepare = arg_prepare, .compute = arg_compute, .destroy = arg_destroy,     \
    }

/* one descriptor per opset version, so messages name it */
static const qkv_kernel kernels[] = {
    ARG_KERNEL("ArgMax", 1, 10),  ARG_KERNEL("ArgMax", 11, 11), ARG_KERNEL("ArgMax", 12, 12),
    ARG_KERNEL("ArgMax", 13, 0),  ARG_KERNEL("ArgMin", 1, 10),  ARG_KERNEL("ArgMin", 11, 11),
    ARG_KERNEL("ArgMin", 12, 12), ARG_KERNEL("ArgMin", 13, 0),
};

/* The ArgMax and ArgMin descriptors; *count set to their number. */
const qkv_kernel *qkv_ops_argminmax(size_t *count)
{
    *count = sizeof kernels / sizeof kernels[0];
    return kernels;
}
