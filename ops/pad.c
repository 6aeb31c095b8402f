/*
 * pad.c - Pad (opsets 2, 11, 13, 18, 19): pads (or, with negative pads,
 * crops) each axis; modes constant, reflect, edge, and wrap (opset 19+).
 *
 * Forms: opsets 2-10 take `pads` (ints) and `value` (float) attributes;
 * 11+ take inputs pads (int64, [x1_begin, x2_begin, ..., x1_end, ...]) and
 * an optional constant_value (a scalar of the data's type, default 0);
 * 18+ an optional `axes` input naming the axes the pads apply to (others
 * get 0). A pads or axes value unknown at inference -> every output dim -1.
 *
 * Negative pads crop first: each axis' source is the input with the
 * negative amounts removed from its ends, then that source is padded by the
 * positive amounts (the order ONNX Runtime uses; the spec's numpy reference
 * cannot take negative pads). Padding beyond the source length cycles:
 * reflect as numpy.pad does; wrap is periodic, out[o] = src[(o - pre) mod
 * len] (numpy.pad differs when one side's pad exceeds the length and the
 * other side is padded too: it wraps over its own earlier padding). Padding
 * an axis whose source is empty in a mode other than constant is
 * QKV_ERR_SHAPE.
 *
 * Types: opset 2: float16, float, double; 11+: numbers, bool, float16,
 * bfloat16 (strings are not supported: compute cannot allocate copies).
 *
 * Method: a table per axis maps each output coordinate to its source
 * coordinate (or -1 for the constant), built in scratch; output rows (all
 * axes but the last) are filled in parallel, the unpadded middle of each
 * row with one memcpy.
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "kernel_util.h"
#include "qkv.h"

#define DATA_TYPES (QKV_TYPES_PLAIN)
#define PAR_MIN_BYTES ((size_t)1 << 16)

enum pad_mode { PAD_CONSTANT, PAD_REFLECT, PAD_EDGE, PAD_WRAP };
static const char *const mode_names[] = {"constant", "reflect", "edge", "wrap"};

typedef struct pad_state {
    int64_t opset;
    enum pad_mode mode;
    /* opsets 2-10 */
    size_t n_attr_pads;
    int64_t attr_pads[2 * QKV_MAX_RANK];
    float value;
} pad_state;

static qkv_status pad_init(const qkv_kernel *k, const qkv_host_api *host, const qkv_node_ctx *node,
                           void **state)
{
    (void)k;
    pad_state *s = calloc(1, sizeof *s);
    if (!s)
        return NERR(host, node, QKV_ERR_OUT_OF_MEMORY, "kernel state");
    s->opset = host->node_opset(node);
    const char *mode = NULL;
    qkv_status st = host->attr_string(node, "mode", "constant", &mode);
    if (st == QKV_OK) {
        size_t m = 0;
        while (m < 4 && strcmp(mode, mode_names[m]) != 0)
            m++;
        if (m == 4 || (m == PAD_WRAP && s->opset < 19))
            st = NERR(host, node, QKV_ERR_INVALID_MODEL,
                      "attribute 'mode' is '%s', expected 'constant', 'reflect' or 'edge'%s", mode,
                      s->opset >= 19 ? " or 'wrap'" : " ('wrap' needs opset 19)");
        s->mode = (enum pad_mode)m;
    }
    if (st == QKV_OK && s->opset < 11) {
        const int64_t *pads = NULL;
        size_t n = 0;
        st = host->attr_ints(node, "pads", &pads, &n);
        if (st == QKV_OK && !pads)
            st = NERR(host, node, QKV_ERR_INVALID_MODEL, "attribute 'pads' is missing");
        else if (st == QKV_OK && n > 2 * QKV_MAX_RANK)
            st = NERR(host, node, QKV_ERR_UNSUPPORTED,
                      "attribute 'pads' has %zu values, at most %d supported", n, 2 * QKV_MAX_RANK);
        if (st == QKV_OK) {
            memcpy(s->attr_pads, pads, n * sizeof *pads);
            s->n_attr_pads = n;
            st = host->attr_float(node, "value", 0.0f, &s->value);
        }
    }
    if (st != QKV_OK) {
        free(s);
        return st;
    }
    *state = s;
    return QKV_OK;
}

static void pad_destroy(void *state) { free(state); }

/* Per-axis begin/end pads for data of rank r; *known false when the pads
 * or axes values are not known. */
static qkv_status read_pads(const pad_state *s, qkv_kernel_io *io, int32_t r,
                            int64_t begin[QKV_MAX_RANK], int64_t end[QKV_MAX_RANK], bool *known)
{
    int64_t raw[2 * QKV_MAX_RANK];
    size_t n;
    *known = false;
    memset(begin, 0, QKV_MAX_RANK * sizeof begin[0]);
    memset(end, 0, QKV_MAX_RANK * sizeof end[0]);
    if (s->opset < 11) {
        n = s->n_attr_pads;
        memcpy(raw, s->attr_pads, n * sizeof raw[0]);
    } else {
        qkv_status st = qkv_read_ints(io, 1, raw, 2 * QKV_MAX_RANK, &n);
        if (st != QKV_OK)
            return st;
        if (n == SIZE_MAX)
            return QKV_OK;
    }
    int32_t axes[QKV_MAX_RANK];
    size_t n_axes = (size_t)r;
    for (int32_t a = 0; a < r; a++)
        axes[a] = a;
    if (s->opset >= 18 && qkv_present(io, 3)) {
        int64_t av[QKV_MAX_RANK];
        qkv_status st = qkv_read_ints(io, 3, av, QKV_MAX_RANK, &n_axes);
        if (st != QKV_OK)
            return st;
        if (n_axes == SIZE_MAX)
            return QKV_OK;
        bool seen[QKV_MAX_RANK] = {false};
        for (size_t i = 0; i < n_axes; i++) {
            if (!qkv_axis_normalize(av[i], r, false, &axes[i]))
                return KERR(io, QKV_ERR_SHAPE,
                            "input 3 'axes' has axis %lld, out of range for input 0 'data' of "
                            "rank %d",
                            (long long)av[i], r);
            if (seen[axes[i]])
                return KERR(io, QKV_ERR_SHAPE, "input 3 'axes' repeats axis %d", axes[i]);
            seen[axes[i]] = true;
        }
    }
    if (n != 2 * n_axes)
        return KERR(io, QKV_ERR_SHAPE, "%s 'pads' has %zu values, expected %zu (2 * %s %zu)",
                    s->opset < 11 ? "attribute" : "input 1", n, 2 * n_axes,
                    qkv_present(io, 3) && s->opset >= 18 ? "axes" : "rank", n_axes);
    for (size_t i = 0; i < n_axes; i++) {
        begin[axes[i]] = raw[i];
        end[axes[i]] = raw[n_axes + i];
    }
    *known = true;
    return QKV_OK;
}

static qkv_status pad_infer(void *state, qkv_kernel_io *io)
{
    const pad_state *s = state;
    const qkv_tensor *x = &io->inputs[0];
    qkv_tensor *y = &io->outputs[0];
    y->dtype = x->dtype;
    y->rank = x->rank;
    if (s->opset >= 11 && qkv_present(io, 2)) {
        const qkv_tensor *c = &io->inputs[2];
        if (c->dtype != x->dtype)
            return KERR(io, QKV_ERR_TYPE,
                        "input 2 'constant_value' has type %s, input 0 'data' has %s",
                        qkv_dtype_name(c->dtype), qkv_dtype_name(x->dtype));
        if (c->rank > 1 || (qkv_shape_known(c) && qkv_numel(c) != 1)) {
            char b[96];
            return KERR(io, QKV_ERR_SHAPE,
                        "input 2 'constant_value' has shape %s, expected a "
                        "scalar",
                        qkv_dims_str(c, b, sizeof b));
        }
    }
    if (x->rank < 0)
        return QKV_OK;
    int64_t begin[QKV_MAX_RANK], end[QKV_MAX_RANK];
    bool known;
    qkv_status st = read_pads(s, io, x->rank, begin, end, &known);
    if (st != QKV_OK)
        return st;
    for (int32_t a = 0; a < x->rank; a++) {
        y->dims[a] = -1;
        if (!known || x->dims[a] < 0)
            continue;
        int64_t d = x->dims[a];
        /* the source left after cropping, and the output; no overflow: pads
         * beyond +-2^62 are refused first */
        if (begin[a] > (INT64_C(1) << 62) || begin[a] < -(INT64_C(1) << 62) ||
            end[a] > (INT64_C(1) << 62) || end[a] < -(INT64_C(1) << 62))
            return KERR(io, QKV_ERR_SHAPE, "pads for axis %d (%lld, %lld) are too large", a,
                        (long long)begin[a], (long long)end[a]);
        int64_t src = d + (begin[a] < 0 ? begin[a] : 0) + (end[a] < 0 ? end[a] : 0);
        int64_t out = d + begin[a] + end[a];
        if (src < 0 || out < 0)
            return KERR(io, QKV_ERR_SHAPE,
                        "pads (%lld, %lld) crop more than axis %d of input 0 'data' (size %lld)",
                        (long long)begin[a], (long long)end[a], a, (long long)d);
        if (src == 0 && out > 0 && s->mode != PAD_CONSTANT)
            return KERR(io, QKV_ERR_SHAPE,
                        "mode '%s' cannot pad axis %d: nothing is left of it to repeat",
                        mode_names[s->mode], a);
        y->dims[a] = out;
    }
    return QKV_OK;
}

static qkv_status pad_prepare(void *state, qkv_kernel_io *io)
{
    (void)state;
    const qkv_tensor *y = &io->outputs[0];
    size_t total = 0;
    for (int32_t a = 0; a < y->rank; a++)
        total += (size_t)y->dims[a];
    io->scratch_bytes = total * sizeof(int64_t);
    return QKV_OK;
}

/* Source coordinate of output coordinate o on an axis (-1: the constant). */
static int64_t map_coord(enum pad_mode mode, int64_t o, int64_t pre, int64_t crop, int64_t len)
{
    int64_t i = o - pre;
    if (i >= 0 && i < len)
        return i + crop;
    switch (mode) {
    case PAD_EDGE:
        return (i < 0 ? 0 : len - 1) + crop;
    case PAD_WRAP: {
        int64_t m = i % len;
        return (m < 0 ? m + len : m) + crop;
    }
    case PAD_REFLECT: {
        if (len == 1)
            return crop;
        int64_t period = 2 * (len - 1), m = i % period;
        if (m < 0)
            m += period;
        return (m >= len ? period - m : m) + crop;
    }
    default:
        return -1;
    }
}

typedef struct pad_job {
    int32_t rank;
    const int64_t *map[QKV_MAX_RANK]; /* per axis: (out dim) source coords */
    size_t out_dims[QKV_MAX_RANK];
    size_t in_strides[QKV_MAX_RANK]; /* elements */
    int64_t pre, crop, len;          /* last axis: the unpadded middle */
    const unsigned char *in;
    unsigned char *out;
    const unsigned char *value; /* one element */
    size_t eb;
} pad_job;

static inline void copy_elem(unsigned char *dst, const unsigned char *src, size_t eb)
{
    switch (eb) {
    case 1:
        memcpy(dst, src, 1);
        break;
    case 2:
        memcpy(dst, src, 2);
        break;
    case 4:
        memcpy(dst, src, 4);
        break;
    case 8:
        memcpy(dst, src, 8);
        break;
    default:
        memcpy(dst, src, eb);
        break;
    }
}

/* Fills output rows [begin, end) (a row: one coordinate of all axes but the last). */
static void pad_rows(void *arg, size_t begin, size_t end)
{
    const pad_job *j = arg;
    const int32_t last = j->rank - 1;
    const size_t eb = j->eb, width = j->out_dims[last];
    const int64_t *lmap = j->map[last];
    for (size_t row = begin; row < end; row++) {
        unsigned char *dst = j->out + row * width * eb;
        size_t rem = row, src = 0;
        bool constant = false;
        for (int32_t a = last - 1; a >= 0; a--) {
            size_t c = rem % j->out_dims[a];
            rem /= j->out_dims[a];
            int64_t sc = j->map[a][c];
            if (sc < 0)
                constant = true;
            else
                src += (size_t)sc * j->in_strides[a];
        }
        if (constant) {
            for (size_t o = 0; o < width; o++)
                copy_elem(dst + o * eb, j->value, eb);
            continue;
        }
        const unsigned char *srow = j->in + src * eb;
        size_t mid0 = (size_t)(j->pre > 0 ? j->pre : 0);
        size_t mid1 = mid0 + (size_t)j->len;
        if (mid1 > width)
            mid1 = width;
        for (size_t o = 0; o < mid0 && o < width; o++) {
            int64_t sc = lmap[o];
            copy_elem(dst + o * eb, sc < 0 ? j->value : srow + (size_t)sc * eb, eb);
        }
        if (mid1 > mid0)
            memcpy(dst + mid0 * eb, srow + (size_t)j->crop * eb, (mid1 - mid0) * eb);
        for (size_t o = mid1 > mid0 ? mid1 : mid0; o < width; o++) {
            int64_t sc = lmap[o];
            copy_elem(dst + o * eb, sc < 0 ? j->value : srow + (size_t)sc * eb, eb);
        }
    }
}

/* Rounds a float to IEEE half (round to nearest even). */
static uint16_t float_to_half(float f)
{
    uint32_t x;
    memcpy(&x, &f, sizeof x);
    uint16_t sign = (uint16_t)((x >> 16) & 0x8000u);
    uint32_t absx = x & 0x7fffffffu;
    if (absx >= 0x7f800000u) /* inf or NaN */
        return (uint16_t)(sign | 0x7c00u | (absx > 0x7f800000u ? 0x200u : 0u));
    if (absx >= 0x477ff000u) /* rounds to >= 65520: overflow to inf */
        return (uint16_t)(sign | 0x7c00u);
    if (absx < 0x38800000u) { /* below the smallest normal half: subnormal */
        float a;
        memcpy(&a, &absx, sizeof a);
        return (uint16_t)(sign | (uint16_t)lrintf(a * 16777216.0f)); /* a / 2^-24 */
    }
    uint32_t mant = absx & 0x7fffffu, exp = (absx >> 23) - 112u;
    uint32_t h = (exp << 10) | (mant >> 13);
    uint32_t rest = mant & 0x1fffu;
    if (rest > 0x1000u || (rest == 0x1000u && (h & 1u)))
        h++;
    return (uint16_t)(sign | h);
}

/* The padding constant as one element of X's type into value[16] (zero
 * when none is given): opsets < 11 take the float attribute, later ones
 * input 2. */
static qkv_status pad_value(const pad_state *s, qkv_kernel_io *io, size_t eb,
                            unsigned char value[16])
{
    const qkv_tensor *x = &io->inputs[0];
    memset(value, 0, 16);
    if (s->opset >= 11) {
        if (s->mode == PAD_CONSTANT && qkv_present(io, 2))
            memcpy(value, io->inputs[2].data, eb);
        return QKV_OK;
    }
    switch (x->dtype) {
    case QKV_DTYPE_FLOAT:
        memcpy(value, &s->value, 4);
        return QKV_OK;
    case QKV_DTYPE_DOUBLE: {
        double d = s->value;
        memcpy(value, &d, 8);
        return QKV_OK;
    }
    case QKV_DTYPE_FLOAT16: {
        uint16_t h = float_to_half(s->value);
        memcpy(value, &h, 2);
        return QKV_OK;
    }
    default:
        return KERR(io, QKV_ERR_TYPE, "input 0 'data' has type %s, not supported",
                    qkv_dtype_name(x->dtype));
    }
}

/* Fills j's per-axis tables (in scratch: for each output coordinate, the
 * source coordinate or -1 for the constant) and the last axis's unpadded
 * middle, from the pads begin/end. */
static qkv_status pad_tables(const pad_state *s, qkv_kernel_io *io, const int64_t *begin,
                             const int64_t *end, pad_job *j)
{
    const qkv_tensor *x = &io->inputs[0], *y = &io->outputs[0];
    /* output dims were checked against these pads in infer */
    size_t need = 0;
    for (int32_t a = 0; a < x->rank; a++)
        need += (size_t)y->dims[a] * sizeof(int64_t);
    if (need > io->scratch_bytes || !io->scratch)
        return KERR(io, QKV_ERR_INTERNAL, "scratch of %zu bytes, %zu needed", io->scratch_bytes,
                    need);
    int64_t *tab = io->scratch;
    for (int32_t a = 0; a < x->rank; a++) {
        int64_t pre = begin[a] > 0 ? begin[a] : 0, crop = begin[a] < 0 ? -begin[a] : 0;
        int64_t len = x->dims[a] - crop - (end[a] < 0 ? -end[a] : 0);
        if (x->dims[a] + begin[a] + end[a] != y->dims[a])
            return KERR(io, QKV_ERR_INTERNAL, "output dim %d is %lld, pads give %lld", a,
                        (long long)y->dims[a], (long long)(x->dims[a] + begin[a] + end[a]));
        if (len == 0 && y->dims[a] > 0 && s->mode != PAD_CONSTANT)
            return KERR(io, QKV_ERR_SHAPE,
                        "mode '%s' cannot pad axis %d: nothing is left of it to repeat",
                        mode_names[s->mode], a);
        j->out_dims[a] = (size_t)y->dims[a];
        for (int64_t o = 0; o < y->dims[a]; o++)
            tab[o] = map_coord(s->mode, o, pre, crop, len);
        j->map[a] = tab;
        tab += y->dims[a];
        if (a == x->rank - 1) {
            j->pre = pre;
            j->crop = crop;
            j->len = len;
        }
    }
    return QKV_OK;
}

static qkv_status pad_compute(const void *state, qkv_kernel_io *io)
{
    const pad_state *s = state;
    const qkv_tensor *x = &io->inputs[0];
    qkv_tensor *y = &io->outputs[0];
    size_t eb = qkv_dtype_bits(x->dtype) / 8;
    if (eb == 0 || x->dtype == QKV_DTYPE_STRING)
        return KERR(io, QKV_ERR_TYPE, "input 0 'data' has type %s, not supported",
                    qkv_dtype_name(x->dtype));
    int64_t begin[QKV_MAX_RANK], end[QKV_MAX_RANK];
    bool known;
    qkv_status st = read_pads(s, io, x->rank, begin, end, &known);
    if (st != QKV_OK)
        return st;
    if (!known)
        return KERR(io, QKV_ERR_INTERNAL, "pads unknown at compute");
    unsigned char value[16];
    st = pad_value(s, io, eb, value);
    if (st != QKV_OK)
        return st;
    size_t total = qkv_numel(y);
    if (total == 0)
        return QKV_OK;
    if (x->rank == 0) {
        memcpy(y->data, x->data, eb);
        return QKV_OK;
    }
    pad_job j = {.rank = x->rank, .in = x->data, .out = y->data, .value = value, .eb = eb};
    qkv_contiguous_strides(x, j.in_strides);
    st = pad_tables(s, io, begin, end, &j);
    if (st != QKV_OK)
        return st;
    size_t rows = total / j.out_dims[x->rank - 1];
    if (total * eb >= PAR_MIN_BYTES && rows > 1)
        io->host->parallel_for(io->host_ctx, rows, pad_rows, &j);
    else
        pad_rows(&j, 0, rows);
    return QKV_OK;
}

#define PAD_KERNEL(since, until, max_in, types0)                                                   \
    {                                                                                              \
        QKV_KERNEL_V1,                                                                             \
            .domain = "", .op_type = "Pad", .since_version = (since), .until_version = (until),    \
            .min_inputs = (since) < 11 ? 1 : 2, .max_inputs = (max_in), .min_outputs = 1,          \
            .max_outputs = 1, .n_input_types = 4,                                                  \
            .input_types = {(types0), QKV_T(INT64), DATA_TYPES, QKV_TYPES_INDEX},                  \
            .init = pad_init, .infer = pad_infer, .prepare = pad_prepare, .compute = pad_compute,  \
            .destroy = pad_destroy,                                                                \
    }

static const qkv_kernel kernels[] = {
    PAD_KERNEL(2, 10, 1, QKV_TYPES_FLOATS | QKV_T(FLOAT16)),
    PAD_KERNEL(11, 17, 3, DATA_TYPES),
    PAD_KERNEL(18, 0, 4, DATA_TYPES),
};

/* The pad family: Pad. */
const qkv_kernel *qkv_ops_pad(size_t *count)
{
    *count = sizeof kernels / sizeof kernels[0];
    return kernels;
}
