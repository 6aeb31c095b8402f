/*
 * pool.c - MaxPool (opsets 1, 8, 10, 11, 12, 22), AveragePool (1, 7, 10, 11,
 * 19, 22) and LpPool (1, 2, 11, 18, 22), 1-D, 2-D and 3-D.
 *
 * X is (N, C, D1, ..., Dn), n = 1..3; Y is (N, C, O1, ..., On). The window
 * attributes (kernel_shape, required; strides, dilations, pads, auto_pad,
 * ceil_mode) and the output shape are conv_geom's (conv_geom.h): window o
 * along a dim reads input positions o * stride - pad_begin + j * dilation,
 * j < kernel; positions outside [0, D) are padding, and with ceil_mode a last
 * window starting in the end padding is dropped. Each (n, c) plane is pooled
 * on its own:
 *   MaxPool:     the maximum over the window's input elements (padding never
 *                wins; a NaN does, as in PyTorch). The optional output 1,
 *                Indices (int64, Y's shape), is the position of that element
 *                in X flattened, (n * C + c) * D1*...*Dn + the spatial index,
 *                row-major (storage_order 0) or column-major, first spatial
 *                dim fastest (storage_order 1), as ONNX Runtime numbers them;
 *                the first maximum in row-major window order wins a tie.
 *   AveragePool: the window's sum divided by the number of its input elements
 *                (count_include_pad 0, the default) or of its taps inside the
 *                padded input [-pad_begin, D + pad_end) (count_include_pad 1:
 *                taps added by ceil_mode beyond the end padding do not count,
 *                as in PyTorch and ONNX Runtime).
 *   LpPool:      (sum over the window's input elements of |x|^p)^(1/p), p the
 *                attribute (default 2; a float at opset 1, an int from opset 2;
 *                p <= 0 is refused). Padding adds 0.
 * A window that covers no input element (padding or dilation can make one)
 * gives the type's lowest value (-inf for floats) and Indices -1 for MaxPool,
 * and 0 for AveragePool and LpPool.
 *
 * Types: float, double, float16 and bfloat16 (the last two through float32
 * copies of X and Y in scratch); MaxPool also int8 and uint8. Sums are
 * accumulated in double. More than 3 spatial dims are QKV_ERR_UNSUPPORTED.
 * Rows of output windows are split across threads.
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "conv_geom.h"
#include "half.h"
#include "kernel_util.h"

#define PAR_MIN_WORK ((size_t)1 << 15)
/* the spatial dims handled: fewer are padded to 3 with dims of size 1 */
#define POOL_DIMS 3

typedef enum pool_kind { POOL_MAX, POOL_AVG, POOL_LP } pool_kind;

typedef struct pool_attrs {
    qkv_conv_attrs geom;
    pool_kind kind;
    bool include_pad; /* AveragePool count_include_pad */
    bool col_major;   /* MaxPool storage_order 1 */
    double p;         /* LpPool */
} pool_attrs;

/* One node at one shape, every spatial quantity padded to POOL_DIMS dims
 * (leading dims of size 1 with kernel, stride and dilation 1, no pads). */
typedef struct pool_run {
    const void *x; /* (planes, in[0], in[1], in[2]) */
    void *y;       /* (planes, out[0], out[1], out[2]) */
    int64_t *idx;  /* like y, or NULL */
    int64_t in[POOL_DIMS], out[POOL_DIMS], k[POOL_DIMS], s[POOL_DIMS], d[POOL_DIMS];
    int64_t pb[POOL_DIMS], pe[POOL_DIMS];
    int64_t idx_stride[POOL_DIMS]; /* Indices' stride of each spatial dim */
    size_t in_size, out_size;      /* elements per plane */
    const pool_attrs *a;
} pool_run;

/* The taps [*lo, *hi) of window o along dim i that read input elements;
 * *start is its first position; *hi_pad ends the taps inside the padded
 * input (they all start at tap 0: start >= -pad_begin). */
static void window_taps(const pool_run *r, int i, int64_t o, int64_t *start, int64_t *lo,
                        int64_t *hi, int64_t *hi_pad)
{
    const int64_t s0 = o * r->s[i] - r->pb[i], d = r->d[i], k = r->k[i];
    int64_t l = s0 >= 0 ? 0 : (-s0 + d - 1) / d;
    int64_t h = r->in[i] - s0 <= 0 ? 0 : (r->in[i] - s0 + d - 1) / d;
    int64_t hp = r->in[i] + r->pe[i] - s0 <= 0 ? 0 : (r->in[i] + r->pe[i] - s0 + d - 1) / d;
    l = l > k ? k : l;
    h = h > k ? k : h < l ? l : h;
    *start = s0;
    *lo = l;
    *hi = h;
    *hi_pad = hp > k ? k : hp;
}

/*
 * For each output element of the output rows [begin, end) (a row: one
 * (plane, o0, o1) and every o2), ACC runs over the window's input elements
 * with `v` the element and `pos` its offset in the plane, then STORE writes
 * output `yo` (offset in Y) from what ACC gathered; `count` and `count_pad`
 * hold the number of taps reading input and inside the padded input.
 */
#define POOL_LOOP(T, INIT, ACC, STORE)                                                             \
    const pool_run *r = arg;                                                                       \
    for (size_t row = begin; row < end; row++) {                                                   \
        const int64_t o1 = (int64_t)(row % (size_t)r->out[1]);                                     \
        const int64_t o0 = (int64_t)(row / (size_t)r->out[1] % (size_t)r->out[0]);                 \
        const size_t plane = row / ((size_t)r->out[1] * (size_t)r->out[0]);                        \
        const T *x = (const T *)r->x + plane * r->in_size;                                         \
        int64_t st0, lo0, hi0, hp0, st1, lo1, hi1, hp1;                                            \
        window_taps(r, 0, o0, &st0, &lo0, &hi0, &hp0);                                             \
        window_taps(r, 1, o1, &st1, &lo1, &hi1, &hp1);                                             \
        for (int64_t o2 = 0; o2 < r->out[2]; o2++) {                                               \
            int64_t st2, lo2, hi2, hp2;                                                            \
            window_taps(r, 2, o2, &st2, &lo2, &hi2, &hp2);                                         \
            const size_t yo = row * (size_t)r->out[2] + (size_t)o2;                                \
            /* in double: a huge padded window's tap count can pass int64 */                       \
            const double count = (double)(hi0 - lo0) * (double)(hi1 - lo1) * (double)(hi2 - lo2);  \
            const double count_pad = (double)hp0 * (double)hp1 * (double)hp2;                      \
            (void)count, (void)count_pad;                                                          \
            INIT;                                                                                  \
            for (int64_t j0 = lo0; j0 < hi0; j0++) {                                               \
                const int64_t i0 = st0 + j0 * r->d[0];                                             \
                for (int64_t j1 = lo1; j1 < hi1; j1++) {                                           \
                    const int64_t i1 = st1 + j1 * r->d[1];                                         \
                    const size_t base = (size_t)((i0 * r->in[1] + i1) * r->in[2]);                 \
                    for (int64_t j2 = lo2; j2 < hi2; j2++) {                                       \
                        const size_t pos = base + (size_t)(st2 + j2 * r->d[2]);                    \
                        const T v = x[pos];                                                        \
                        ACC;                                                                       \
                    }                                                                              \
                }                                                                                  \
            }                                                                                      \
            STORE;                                                                                 \
        }                                                                                          \
    }

/* The Indices value of plane offset `pos` in plane `plane`. */
static int64_t pool_index(const pool_run *r, size_t plane, size_t pos)
{
    size_t i2 = pos % (size_t)r->in[2], i1 = pos / (size_t)r->in[2] % (size_t)r->in[1],
           i0 = pos / ((size_t)r->in[2] * (size_t)r->in[1]);
    size_t sp = (size_t)r->idx_stride[0] * i0 + (size_t)r->idx_stride[1] * i1 +
                (size_t)r->idx_stride[2] * i2;
    return (int64_t)(plane * r->in_size + sp);
}

/* MaxPool of element type T; LOWEST is T's lowest value. A NaN wins and
 * stays (NAN_WINS(v, m): v is the first NaN; no v > NaN). */
#define DEFINE_MAX(SFX, T, LOWEST, NAN_WINS)                                                       \
    static void max_range_##SFX(void *arg, size_t begin, size_t end)                               \
    {                                                                                              \
        POOL_LOOP(                                                                                 \
            T, T m = (LOWEST); size_t best = SIZE_MAX,                                             \
                               if (best == SIZE_MAX || v > m || NAN_WINS(v, m)) {                  \
                                   m = v;                                                          \
                                   best = pos;                                                     \
                               },                                                                  \
                               {                                                                   \
                                   ((T *)r->y)[yo] = m;                                            \
                                   if (r->idx)                                                     \
                                       r->idx[yo] =                                                \
                                           best == SIZE_MAX ? -1 : pool_index(r, plane, best);     \
                               })                                                                  \
    }

#define DEFINE_AVG_LP(SFX, T)                                                                      \
    static void avg_range_##SFX(void *arg, size_t begin, size_t end)                               \
    {                                                                                              \
        POOL_LOOP(T, double sum = 0, sum += (double)v, {                                           \
            double n = r->a->include_pad ? count_pad : count;                                      \
            ((T *)r->y)[yo] = (T)(n > 0 ? sum / n : 0.0);                                          \
        })                                                                                         \
    }                                                                                              \
    static void lp_range_##SFX(void *arg, size_t begin, size_t end)                                \
    {                                                                                              \
        const double p_ = ((const pool_run *)arg)->a->p;                                           \
        if (p_ == 2.0) {                                                                           \
            POOL_LOOP(T, double sum = 0, sum += (double)v * (double)v,                             \
                      ((T *)r->y)[yo] = (T)sqrt(sum))                                              \
        } else if (p_ == 1.0) {                                                                    \
            POOL_LOOP(T, double sum = 0, sum += fabs((double)v), ((T *)r->y)[yo] = (T)sum)         \
        } else {                                                                                   \
            POOL_LOOP(T, double sum = 0, sum += pow(fabs((double)v), p_),                          \
                      ((T *)r->y)[yo] = (T)pow(sum, 1.0 / p_))                                     \
        }                                                                                          \
    }

#define FLOAT_NAN_WINS(v, m) (isnan(v) && !isnan(m))
#define INT_NAN_WINS(v, m) false

DEFINE_MAX(f32, float, -INFINITY, FLOAT_NAN_WINS)
DEFINE_MAX(f64, double, -INFINITY, FLOAT_NAN_WINS)
DEFINE_MAX(i8, int8_t, INT8_MIN, INT_NAN_WINS)
DEFINE_MAX(u8, uint8_t, 0, INT_NAN_WINS)
DEFINE_AVG_LP(f32, float)
DEFINE_AVG_LP(f64, double)

/* ---- callbacks ----------------------------------------------------------- */

static qkv_status pool_init(const qkv_kernel *kernel, const qkv_host_api *host,
                            const qkv_node_ctx *node, void **state)
{
    pool_attrs a;
    memset(&a, 0, sizeof a);
    a.kind = strcmp(kernel->op_type, "MaxPool") == 0       ? POOL_MAX
             : strcmp(kernel->op_type, "AveragePool") == 0 ? POOL_AVG
                                                           : POOL_LP;
    int64_t opset = host->node_opset(node), include_pad = 0, order = 0;
    qkv_status st = qkv_conv_attrs_parse(
        host, node, QKV_CONV_PARSE_CEIL_MODE | QKV_CONV_PARSE_KERNEL_REQUIRED, &a.geom);
    if (st == QKV_OK && a.kind == POOL_AVG)
        st = host->attr_int(node, "count_include_pad", 0, &include_pad);
    if (st == QKV_OK && a.kind == POOL_MAX)
        st = host->attr_int(node, "storage_order", 0, &order);
    if (st == QKV_OK && a.kind == POOL_LP) {
        if (opset < 2) {
            float pf;
            st = host->attr_float(node, "p", 2.0f, &pf);
            a.p = pf;
        } else {
            int64_t pi;
            st = host->attr_int(node, "p", 2, &pi);
            a.p = (double)pi;
        }
    }
    if (st != QKV_OK)
        return st;
    if (include_pad != 0 && include_pad != 1)
        return NERR(host, node, QKV_ERR_INVALID_MODEL,
                    "attribute count_include_pad=%lld, expected 0 or 1", (long long)include_pad);
    if (order != 0 && order != 1)
        return NERR(host, node, QKV_ERR_INVALID_MODEL,
                    "attribute storage_order=%lld, expected 0 (row major) or 1 (column major)",
                    (long long)order);
    if (a.kind == POOL_LP && !(a.p > 0))
        return NERR(host, node, QKV_ERR_INVALID_MODEL,
                    "attribute p=%g is not positive (the norm's exponent)", a.p);
    a.include_pad = include_pad == 1;
    a.col_major = order == 1;
    pool_attrs *s = malloc(sizeof *s);
    if (!s)
        return NERR(host, node, QKV_ERR_OUT_OF_MEMORY, "kernel state");
    *s = a;
    *state = s;
    return QKV_OK;
}

static void pool_destroy(void *state) { free(state); }

/* The window geometry of X's shape (rank >= 3 known). */
static qkv_status pool_geom(const pool_attrs *a, qkv_kernel_io *io, qkv_conv_geom *g)
{
    const qkv_tensor *x = &io->inputs[0];
    int32_t n = x->rank - 2;
    if (n > POOL_DIMS) {
        memset(g, 0, sizeof *g);
        return KERR(io, QKV_ERR_UNSUPPORTED,
                    "input 0 'X' has %d spatial dims: pooling supports 1 to %d", (int)n, POOL_DIMS);
    }
    return qkv_conv_geom_forward(io, &a->geom, n, x->dims + 2, a->geom.kernel_shape, g);
}

static qkv_status pool_infer(void *state, qkv_kernel_io *io)
{
    const pool_attrs *a = state;
    const qkv_tensor *x = &io->inputs[0];
    qkv_tensor *y = &io->outputs[0];
    qkv_set_shape(y, x->dtype, x->rank, x->dims);
    if (io->n_outputs > 1)
        qkv_set_shape(&io->outputs[1], QKV_DTYPE_INT64, x->rank, x->dims);
    if (x->rank < 0)
        return QKV_OK;
    if (x->rank < 3)
        return KERR(io, QKV_ERR_SHAPE,
                    "input 0 'X' has rank %d, expected >= 3 (N, C and spatial dims)", x->rank);
    qkv_conv_geom g;
    qkv_status st = pool_geom(a, io, &g);
    if (st != QKV_OK)
        return st;
    for (int32_t i = 0; i < g.n_spatial; i++)
        y->dims[2 + i] = g.out[i];
    if (io->n_outputs > 1)
        qkv_set_shape(&io->outputs[1], QKV_DTYPE_INT64, y->rank, y->dims);
    return QKV_OK;
}

/* float16/bfloat16: float32 copies of X and Y in scratch. */
static qkv_status pool_prepare(void *state, qkv_kernel_io *io)
{
    (void)state;
    const qkv_tensor *x = &io->inputs[0];
    io->scratch_bytes = 0;
    if (qkv_is_half(x->dtype))
        io->scratch_bytes = (qkv_numel(x) + qkv_numel(&io->outputs[0])) * sizeof(float);
    return QKV_OK;
}

/* Fills r's padded 3-D geometry from g (n spatial dims, all known). */
static void pool_run_init(pool_run *r, const qkv_conv_geom *g, bool col_major)
{
    const int32_t n = g->n_spatial, lead = POOL_DIMS - n;
    for (int i = 0; i < POOL_DIMS; i++) {
        r->in[i] = r->out[i] = r->k[i] = r->s[i] = r->d[i] = 1;
        r->pb[i] = r->pe[i] = 0;
        r->idx_stride[i] = 0;
    }
    for (int32_t i = 0; i < n; i++) {
        int c = lead + i;
        r->in[c] = g->in[i];
        r->out[c] = g->out[i];
        r->k[c] = g->kernel[i];
        r->s[c] = g->stride[i];
        r->d[c] = g->dilation[i];
        r->pb[c] = g->pad_begin[i];
        r->pe[c] = g->pad_end[i];
    }
    /* Indices' spatial strides: row-major, or column-major (first dim fastest) */
    int64_t acc = 1;
    for (int32_t k = 0; k < n; k++) {
        int32_t i = col_major ? k : n - 1 - k;
        r->idx_stride[lead + i] = acc;
        acc *= g->in[i];
    }
    r->in_size = (size_t)(r->in[0] * r->in[1] * r->in[2]);
    r->out_size = (size_t)(r->out[0] * r->out[1] * r->out[2]);
}

/* The range function for a's kind and X's type t; NULL for a type the kind
 * does not take. */
static qkv_range_fn pool_fn(pool_kind kind, qkv_dtype t)
{
    bool f64 = t == QKV_DTYPE_DOUBLE;
    if (t == QKV_DTYPE_FLOAT || t == QKV_DTYPE_DOUBLE || qkv_is_half(t)) {
        switch (kind) {
        case POOL_MAX:
            return f64 ? max_range_f64 : max_range_f32;
        case POOL_AVG:
            return f64 ? avg_range_f64 : avg_range_f32;
        case POOL_LP:
            return f64 ? lp_range_f64 : lp_range_f32;
        }
    }
    if (kind == POOL_MAX && t == QKV_DTYPE_INT8)
        return max_range_i8;
    if (kind == POOL_MAX && t == QKV_DTYPE_UINT8)
        return max_range_u8;
    return NULL;
}

static qkv_status pool_compute(const void *state, qkv_kernel_io *io)
{
    const pool_attrs *a = state;
    const qkv_tensor *x = &io->inputs[0];
    qkv_tensor *y = &io->outputs[0];
    if (x->rank < 3)
        return KERR(io, QKV_ERR_SHAPE, "input 0 'X' has rank %d, expected >= 3", x->rank);
    qkv_range_fn fn = pool_fn(a->kind, x->dtype);
    if (!fn)
        return KERR(io, QKV_ERR_TYPE, "input 0 'X' has type %s, not supported",
                    io->host->dtype_name(x->dtype));
    qkv_conv_geom g;
    qkv_status st = pool_geom(a, io, &g);
    if (st != QKV_OK)
        return st;
    pool_run r = {.x = x->data, .y = y->data, .a = a};
    pool_run_init(&r, &g, a->col_major);
    if (io->n_outputs > 1 && io->outputs[1].data)
        r.idx = io->outputs[1].data;
    size_t nx = qkv_numel(x), ny = qkv_numel(y);
    if (ny == 0)
        return QKV_OK;
    if (qkv_is_half(x->dtype)) {
        r.x = io->scratch;
        r.y = (float *)io->scratch + nx;
        qkv_half_to_f32_par(io, io->scratch, x->data, x->dtype, nx);
    }
    size_t rows = ny / (size_t)r.out[2];
    double taps = (double)r.k[0] * (double)r.k[1] * (double)r.k[2];
    if (rows > 1 && (double)ny * taps >= (double)PAR_MIN_WORK)
        io->host->parallel_for(io->host_ctx, rows, fn, &r);
    else
        fn(&r, 0, rows);
    if (qkv_is_half(x->dtype))
        qkv_f32_to_half_par(io, y->data, r.y, x->dtype, ny);
    return QKV_OK;
}

#define POOL_TYPES (QKV_TYPES_FLOATS | QKV_T(FLOAT16) | QKV_T(BFLOAT16))
/* MaxPool takes int8 and uint8 from opset 12 */
#define MAXPOOL_TYPES (POOL_TYPES | QKV_T(INT8) | QKV_T(UINT8))

#define POOL_KERNEL(OP, SINCE, UNTIL, TYPES, OUTS)                                                 \
    {                                                                                              \
        QKV_KERNEL_V1, .domain = "", .op_type = (OP), .since_version = (SINCE),                    \
                       .until_version = (UNTIL), .min_inputs = 1, .max_inputs = 1,                 \
                       .min_outputs = 1, .max_outputs = (OUTS), .n_input_types = 1,                \
                       .input_types = {TYPES}, .init = pool_init, .infer = pool_infer,             \
                       .prepare = pool_prepare, .compute = pool_compute, .destroy = pool_destroy,  \
    }

static const qkv_kernel kernels[] = {
    POOL_KERNEL("MaxPool", 1, 7, POOL_TYPES, 1),
    POOL_KERNEL("MaxPool", 8, 9, POOL_TYPES, 2),
    POOL_KERNEL("MaxPool", 10, 10, POOL_TYPES, 2),
    POOL_KERNEL("MaxPool", 11, 11, POOL_TYPES, 2),
    POOL_KERNEL("MaxPool", 12, 21, MAXPOOL_TYPES, 2),
    POOL_KERNEL("MaxPool", 22, 0, MAXPOOL_TYPES, 2),
    POOL_KERNEL("AveragePool", 1, 6, POOL_TYPES, 1),
    POOL_KERNEL("AveragePool", 7, 9, POOL_TYPES, 1),
    POOL_KERNEL("AveragePool", 10, 10, POOL_TYPES, 1),
    POOL_KERNEL("AveragePool", 11, 18, POOL_TYPES, 1),
    POOL_KERNEL("AveragePool", 19, 21, POOL_TYPES, 1),
    POOL_KERNEL("AveragePool", 22, 0, POOL_TYPES, 1),
    POOL_KERNEL("LpPool", 1, 1, POOL_TYPES, 1),
    POOL_KERNEL("LpPool", 2, 10, POOL_TYPES, 1),
    POOL_KERNEL("LpPool", 11, 17, POOL_TYPES, 1),
    POOL_KERNEL("LpPool", 18, 21, POOL_TYPES, 1),
    POOL_KERNEL("LpPool", 22, 0, POOL_TYPES, 1),
};

/* The MaxPool, AveragePool and LpPool descriptors, one per opset version;
 * *count set to their number. */
const qkv_kernel *qkv_ops_pool(size_t *count)
{
    *count = sizeof kernels / sizeof kernels[0];
    return kernels;
}
