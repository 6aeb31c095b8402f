/*
 * resize_exec.c - runs a resize from its per-axis tables (resize_axis.c).
 *
 * nearest: one n-d gather. A table per axis maps each output coordinate to
 *   an input coordinate; output rows (all axes but the last) are filled in
 *   parallel, copying elements by size, so every type of whole bytes works.
 * linear, cubic: one weighted pass per axis that is not the identity,
 *   innermost first (the order the ONNX reference nests its 1-D
 *   interpolations), each a gather of `taps` input lines per output line:
 *   a dot product along the last axis, an axpy of whole rows along the
 *   others. Passes ping-pong between two scratch buffers; the last writes
 *   the output. The arithmetic is float32 for float32, float16, bfloat16 and
 *   8/16-bit integers, float64 for float64 and 32/64-bit integers; integer
 *   outputs are rounded half away from zero and saturated. Zero weights are
 *   skipped, so an Inf or NaN there does not reach the output.
 * tf_crop_and_resize: an output element with any coordinate outside the
 *   input is the extrapolation value (set after the passes, exactly).
 *
 * Scratch: every table, then the buffers; nothing is allocated.
 */
#include <math.h>
#include <string.h>

#include "half.h"
#include "resize.h"

#define ALIGN 64

typedef struct layout {
    size_t taps[QKV_MAX_RANK];
    bool pass[QKV_MAX_RANK]; /* interpolated along this axis (linear, cubic) */
    bool table[QKV_MAX_RANK];
    size_t index_off[QKV_MAX_RANK], weight_off[QKV_MAX_RANK], outside_off[QKV_MAX_RANK];
    int n_passes;
    bool convert; /* the data type is not the arithmetic type */
    size_t esize; /* bytes of the arithmetic type */
    size_t buf_off[2];
    size_t total;
} layout;

static bool is_wide(qkv_dtype t)
{
    return t == QKV_DTYPE_DOUBLE || t == QKV_DTYPE_INT32 || t == QKV_DTYPE_INT64 ||
           t == QKV_DTYPE_UINT32 || t == QKV_DTYPE_UINT64;
}

static bool can_interpolate(qkv_dtype t)
{
    switch (t) {
    case QKV_DTYPE_FLOAT:
    case QKV_DTYPE_DOUBLE:
    case QKV_DTYPE_FLOAT16:
    case QKV_DTYPE_BFLOAT16:
    case QKV_DTYPE_INT8:
    case QKV_DTYPE_UINT8:
    case QKV_DTYPE_INT16:
    case QKV_DTYPE_UINT16:
    case QKV_DTYPE_INT32:
    case QKV_DTYPE_UINT32:
    case QKV_DTYPE_INT64:
    case QKV_DTYPE_UINT64:
        return true;
    default:
        return false;
    }
}

/* offset += bytes, aligned; false on overflow */
static bool reserve(size_t *total, size_t count, size_t elem, size_t *off)
{
    size_t bytes;
    if (__builtin_mul_overflow(count, elem, &bytes) ||
        __builtin_add_overflow(*total, ALIGN - 1, total))
        return false;
    *total -= *total % ALIGN;
    *off = *total;
    return !__builtin_add_overflow(*total, bytes, total);
}

static qkv_status make_layout(qkv_kernel_io *io, const qkv_resize_job *job, layout *L)
{
    memset(L, 0, sizeof *L);
    const bool nearest = job->rank > 0 && job->axis[0].mode == QKV_RESIZE_NEAREST;
    if (!nearest && !can_interpolate(job->dtype))
        return KERR(io, QKV_ERR_TYPE, "input 0 'X' has type %s, which %s cannot interpolate",
                    io->host->dtype_name(job->dtype),
                    job->rank > 0 && job->axis[0].mode == QKV_RESIZE_CUBIC ? "cubic" : "linear");
    L->esize = is_wide(job->dtype) ? sizeof(double) : sizeof(float);
    L->convert = job->dtype != (is_wide(job->dtype) ? QKV_DTYPE_DOUBLE : QKV_DTYPE_FLOAT);
    size_t total = 0, stage = 1, bufs[2] = {0, 0};
    for (int32_t d = 0; d < job->rank; d++)
        stage *= (size_t)job->axis[d].in_len; /* known sizes: cannot overflow */
    bool fail = false;
    for (int32_t d = job->rank - 1; d >= 0; d--) {
        const qkv_resize_axis_spec *a = &job->axis[d];
        if (a->out_len == 0 || a->in_len == 0)
            continue; /* empty output: nothing runs */
        L->taps[d] = qkv_resize_axis_taps(a);
        if (L->taps[d] == 0)
            return KERR(io, QKV_ERR_UNSUPPORTED,
                        "axis %d: scale %g makes the antialiasing window wider than qkv "
                        "tabulates",
                        d, a->scale);
        L->table[d] = nearest || !qkv_resize_axis_is_identity(a);
        L->pass[d] = !nearest && L->table[d];
        if (!L->table[d])
            continue;
        size_t entries;
        fail = fail || __builtin_mul_overflow((size_t)a->out_len, L->taps[d], &entries) ||
               !reserve(&total, entries, sizeof(int64_t), &L->index_off[d]) ||
               !reserve(&total, (size_t)a->out_len, 1, &L->outside_off[d]) ||
               (!nearest && !reserve(&total, entries, sizeof(double), &L->weight_off[d]));
    }
    /* stage k (after k passes) lives in buffer k % 2; stage 0 only when
     * converted, the last stage only when converted (else it is y) */
    int passes = 0;
    for (int32_t d = 0; d < job->rank; d++)
        passes += L->pass[d];
    L->n_passes = passes;
    if (passes > 0 && L->convert)
        bufs[0] = stage;
    int k = 0;
    for (int32_t d = job->rank - 1; d >= 0 && !fail; d--) {
        if (!L->pass[d])
            continue;
        stage = stage / (size_t)job->axis[d].in_len;
        fail = __builtin_mul_overflow(stage, (size_t)job->axis[d].out_len, &stage);
        k++;
        if ((k < passes || L->convert) && stage > bufs[k % 2])
            bufs[k % 2] = stage;
    }
    for (int b = 0; b < 2 && !fail; b++)
        fail = !reserve(&total, bufs[b], L->esize, &L->buf_off[b]);
    if (fail)
        return KERR(io, QKV_ERR_SHAPE, "the resize's scratch size overflows");
    L->total = total;
    return QKV_OK;
}

qkv_status qkv_resize_scratch(qkv_kernel_io *io, const qkv_resize_job *job, size_t *bytes)
{
    layout L;
    *bytes = 0;
    qkv_status st = make_layout(io, job, &L);
    if (st == QKV_OK)
        *bytes = L.total;
    return st;
}

/* ---- element conversions ------------------------------------------------------------ */

static double saturate(double v, double lo, double hi)
{
    if (isnan(v))
        return 0.0;
    v = round(v);
    return v < lo ? lo : v > hi ? hi : v;
}

/* Writes v as one element of type t at dst (nearest's extrapolation value). */
static void store_value(qkv_dtype t, void *dst, double v)
{
    switch (t) {
    case QKV_DTYPE_FLOAT:
        *(float *)dst = (float)v;
        break;
    case QKV_DTYPE_DOUBLE:
        *(double *)dst = v;
        break;
    case QKV_DTYPE_FLOAT16:
        *(uint16_t *)dst = qkv_f64_to_f16(v);
        break;
    case QKV_DTYPE_BFLOAT16:
        *(uint16_t *)dst = qkv_f64_to_bf16(v);
        break;
    case QKV_DTYPE_INT8:
        *(int8_t *)dst = (int8_t)saturate(v, INT8_MIN, INT8_MAX);
        break;
    case QKV_DTYPE_UINT8:
        *(uint8_t *)dst = (uint8_t)saturate(v, 0, UINT8_MAX);
        break;
    case QKV_DTYPE_INT16:
        *(int16_t *)dst = (int16_t)saturate(v, INT16_MIN, INT16_MAX);
        break;
    case QKV_DTYPE_UINT16:
        *(uint16_t *)dst = (uint16_t)saturate(v, 0, UINT16_MAX);
        break;
    case QKV_DTYPE_INT32:
        *(int32_t *)dst = (int32_t)saturate(v, INT32_MIN, INT32_MAX);
        break;
    case QKV_DTYPE_UINT32:
        *(uint32_t *)dst = (uint32_t)saturate(v, 0, UINT32_MAX);
        break;
    /* 2^63 and 2^64 are the first doubles past the ranges */
    case QKV_DTYPE_INT64:
        v = saturate(v, -9223372036854775808.0, 9223372036854775807.0);
        *(int64_t *)dst = v >= 9223372036854775808.0 ? INT64_MAX : (int64_t)v;
        break;
    case QKV_DTYPE_UINT64:
        v = saturate(v, 0, 18446744073709551615.0);
        *(uint64_t *)dst = v >= 18446744073709551616.0 ? UINT64_MAX : (uint64_t)v;
        break;
    case QKV_DTYPE_BOOL:
        *(uint8_t *)dst = v != 0.0;
        break;
    default:
        memset(dst, 0, qkv_elem_bytes(t));
        break; /* complex: real part 0 too */
    }
}

/* dst[i] = src[i] as the arithmetic type (float or double), i < n. */
static void widen(qkv_dtype t, void *dst, const void *src, size_t n)
{
    float *f = dst;
    double *g = dst;
#define WIDEN(T, out)                                                                              \
    for (size_t i = 0; i < n; i++)                                                                 \
        out[i] = ((const T *)src)[i];                                                              \
    break;
    switch (t) {
    case QKV_DTYPE_INT8:
        WIDEN(int8_t, f)
    case QKV_DTYPE_UINT8:
        WIDEN(uint8_t, f)
    case QKV_DTYPE_INT16:
        WIDEN(int16_t, f)
    case QKV_DTYPE_UINT16:
        WIDEN(uint16_t, f)
    case QKV_DTYPE_INT32:
        WIDEN(int32_t, g)
    case QKV_DTYPE_UINT32:
        WIDEN(uint32_t, g)
    case QKV_DTYPE_INT64:
        WIDEN(int64_t, g)
    case QKV_DTYPE_UINT64:
        WIDEN(uint64_t, g)
    default:
        qkv_half_to_f32(f, src, t, n);
        break;
    }
#undef WIDEN
}

/* dst[i] = src[i] (float or double) as type t, rounded and saturated, i < n. */
static void narrow(qkv_dtype t, void *dst, const void *src, size_t n)
{
    const size_t eb = qkv_elem_bytes(t);
    unsigned char *out = dst;
    if (qkv_is_half(t)) {
        qkv_f32_to_half(dst, src, t, n);
        return;
    }
    for (size_t i = 0; i < n; i++)
        store_value(t, out + i * eb,
                    is_wide(t) ? ((const double *)src)[i] : (double)((const float *)src)[i]);
}

/* ---- nearest ---------------------------------------------------------------------- */

typedef struct gather_job {
    int32_t rank;
    int64_t out_dims[QKV_MAX_RANK];
    size_t in_stride[QKV_MAX_RANK]; /* bytes */
    const int64_t *index[QKV_MAX_RANK];
    const uint8_t *outside[QKV_MAX_RANK];
    const unsigned char *x;
    unsigned char *y;
    size_t eb;
    unsigned char fill[16]; /* the extrapolation value as one element */
} gather_job;

/* One output row of elements of type T: in[ix[o]], or the fill value. */
#define GATHER_ROW(T)                                                                              \
    {                                                                                              \
        T fill, *d = (T *)dst;                                                                     \
        const T *sr = (const T *)src;                                                              \
        memcpy(&fill, j->fill, sizeof fill);                                                       \
        for (size_t o = 0; o < row_len; o++)                                                       \
            d[o] = ox[o] ? fill : sr[ix[o]];                                                       \
    }

static void gather_rows(void *arg, size_t begin, size_t end)
{
    const gather_job *j = arg;
    const int32_t last = j->rank - 1;
    const size_t row_len = (size_t)j->out_dims[last], eb = j->eb;
    const int64_t *ix = j->index[last];
    const uint8_t *ox = j->outside[last];
    size_t c[QKV_MAX_RANK] = {0}, rest = begin;
    for (int32_t d = last - 1; d >= 0; d--) {
        c[d] = rest % (size_t)j->out_dims[d];
        rest /= (size_t)j->out_dims[d];
    }
    for (size_t r = begin; r < end; r++) {
        size_t off = 0;
        bool out = false;
        for (int32_t d = 0; d < last; d++) {
            off += (size_t)j->index[d][c[d]] * j->in_stride[d];
            out = out || j->outside[d][c[d]];
        }
        unsigned char *dst = j->y + r * row_len * eb;
        const unsigned char *src = j->x + off;
        if (out) {
            for (size_t o = 0; o < row_len; o++)
                memcpy(dst + o * eb, j->fill, eb);
        } else {
            switch (eb) { /* a constant size per loop: one move per element */
            case 1:
                GATHER_ROW(uint8_t) break;
            case 2:
                GATHER_ROW(uint16_t) break;
            case 4:
                GATHER_ROW(uint32_t) break;
            case 8:
                GATHER_ROW(uint64_t) break;
            default:
                for (size_t o = 0; o < row_len; o++)
                    memcpy(dst + o * eb, ox[o] ? j->fill : src + (size_t)ix[o] * eb, eb);
            }
        }
        for (int32_t d = last - 1; d >= 0; d--) {
            if (++c[d] < (size_t)j->out_dims[d])
                break;
            c[d] = 0;
        }
    }
}

static void run_nearest(qkv_kernel_io *io, const qkv_resize_job *job, const layout *L,
                        unsigned char *scratch, const void *x, void *y)
{
    gather_job j = {.rank = job->rank, .x = x, .y = y, .eb = qkv_elem_bytes(job->dtype)};
    size_t stride = j.eb, rows = 1;
    for (int32_t d = job->rank - 1; d >= 0; d--) {
        const qkv_resize_axis_spec *a = &job->axis[d];
        int64_t *index = (int64_t *)(scratch + L->index_off[d]);
        uint8_t *outside = scratch + L->outside_off[d];
        qkv_resize_axis_table(a, 1, index, NULL, outside);
        j.out_dims[d] = a->out_len;
        j.in_stride[d] = stride;
        j.index[d] = index;
        j.outside[d] = outside;
        stride *= (size_t)a->in_len;
        if (d < job->rank - 1)
            rows *= (size_t)a->out_len;
    }
    if (j.eb <= sizeof j.fill)
        store_value(job->dtype, j.fill, job->extrapolation);
    size_t row_bytes = (size_t)job->axis[job->rank - 1].out_len * j.eb;
    qkv_run_range(io, rows, rows * row_bytes, gather_rows, &j);
}

/* ---- linear, cubic ---------------------------------------------------------------- */

typedef struct pass_job {
    const void *src;
    void *dst;
    size_t l_in, l_out, inner, taps;
    const int64_t *index; /* (l_out, taps) */
    const double *weight; /* (l_out, taps) */
} pass_job;

/* Output lines [begin, end) of one pass: line r = (o, j) of (outer, l_out)
 * is sum_t weight[j, t] * input line (o, index[j, t]), each line `inner` long. */
#define DEFINE_PASS(NAME, T)                                                                       \
    static void NAME(void *arg, size_t begin, size_t end)                                          \
    {                                                                                              \
        const pass_job *p = arg;                                                                   \
        const size_t inner = p->inner, taps = p->taps;                                             \
        size_t o = begin / p->l_out, j = begin % p->l_out;                                         \
        for (size_t r = begin; r < end; r++, j = j + 1 == p->l_out ? 0 : j + 1, o += j == 0) {     \
            const T *src = (const T *)p->src + o * p->l_in * inner;                                \
            T *dst = (T *)p->dst + r * inner;                                                      \
            const int64_t *ix = p->index + j * taps;                                               \
            const double *w = p->weight + j * taps;                                                \
            if (inner == 1) {                                                                      \
                T acc = 0;                                                                         \
                for (size_t t = 0; t < taps; t++)                                                  \
                    if (w[t] != 0.0)                                                               \
                        acc += (T)w[t] * src[ix[t]];                                               \
                *dst = acc;                                                                        \
                continue;                                                                          \
            }                                                                                      \
            /* the first two taps of nonzero weight write the line in one sweep */                 \
            size_t t = 0, u;                                                                       \
            while (t < taps && w[t] == 0.0)                                                        \
                t++;                                                                               \
            for (u = t + 1; u < taps && w[u] == 0.0; u++)                                          \
                ;                                                                                  \
            if (t == taps) {                                                                       \
                memset(dst, 0, inner * sizeof(T));                                                 \
                continue;                                                                          \
            }                                                                                      \
            const T w0 = (T)w[t], *l0 = src + (size_t)ix[t] * inner;                               \
            if (u == taps) {                                                                       \
                for (size_t i = 0; i < inner; i++)                                                 \
                    dst[i] = w0 * l0[i];                                                           \
                continue;                                                                          \
            }                                                                                      \
            const T w1 = (T)w[u], *l1 = src + (size_t)ix[u] * inner;                               \
            for (size_t i = 0; i < inner; i++)                                                     \
                dst[i] = w0 * l0[i] + w1 * l1[i];                                                  \
            for (t = u + 1; t < taps; t++) {                                                       \
                if (w[t] == 0.0)                                                                   \
                    continue;                                                                      \
                const T wt = (T)w[t], *line = src + (size_t)ix[t] * inner;                         \
                for (size_t i = 0; i < inner; i++)                                                 \
                    dst[i] += wt * line[i];                                                        \
            }                                                                                      \
        }                                                                                          \
    }
DEFINE_PASS(pass_f32, float)
DEFINE_PASS(pass_f64, double)
#undef DEFINE_PASS

typedef struct fill_job {
    int32_t rank;
    int64_t dims[QKV_MAX_RANK];
    const uint8_t *outside[QKV_MAX_RANK]; /* NULL: no extrapolation on that axis */
    void *data;
    bool wide;
    double value;
} fill_job;

/* Sets the extrapolated elements of rows [begin, end) to the value. */
static void fill_rows(void *arg, size_t begin, size_t end)
{
    const fill_job *f = arg;
    const int32_t last = f->rank - 1;
    const size_t len = (size_t)f->dims[last];
    size_t c[QKV_MAX_RANK] = {0}, rest = begin;
    for (int32_t d = last - 1; d >= 0; d--) {
        c[d] = rest % (size_t)f->dims[d];
        rest /= (size_t)f->dims[d];
    }
    for (size_t r = begin; r < end; r++) {
        bool out = false;
        for (int32_t d = 0; d < last; d++)
            out = out || (f->outside[d] && f->outside[d][c[d]]);
        for (size_t o = 0; o < len; o++) {
            if (!out && !(f->outside[last] && f->outside[last][o]))
                continue;
            if (f->wide)
                ((double *)f->data)[r * len + o] = f->value;
            else
                ((float *)f->data)[r * len + o] = (float)f->value;
        }
        for (int32_t d = last - 1; d >= 0; d--) {
            if (++c[d] < (size_t)f->dims[d])
                break;
            c[d] = 0;
        }
    }
}

static void run_interpolate(qkv_kernel_io *io, const qkv_resize_job *job, const layout *L,
                            unsigned char *scratch, const void *x, void *y)
{
    const bool wide = L->esize == sizeof(double);
    int64_t dims[QKV_MAX_RANK];
    size_t numel = 1;
    fill_job fill = {.rank = job->rank, .wide = wide, .value = job->extrapolation};
    bool any_outside = false;
    for (int32_t d = 0; d < job->rank; d++) {
        dims[d] = job->axis[d].in_len;
        numel *= (size_t)dims[d];
        fill.dims[d] = job->axis[d].out_len;
    }
    if (L->n_passes == 0) { /* every axis is the identity */
        memcpy(y, x, numel * qkv_elem_bytes(job->dtype));
        return;
    }
    const void *src = x;
    if (L->convert) {
        widen(job->dtype, scratch + L->buf_off[0], x, numel);
        src = scratch + L->buf_off[0];
    }
    int k = 0;
    for (int32_t d = job->rank - 1; d >= 0; d--) {
        if (!L->pass[d])
            continue;
        const qkv_resize_axis_spec *a = &job->axis[d];
        int64_t *index = (int64_t *)(scratch + L->index_off[d]);
        double *weight = (double *)(scratch + L->weight_off[d]);
        uint8_t *outside = scratch + L->outside_off[d];
        qkv_resize_axis_table(a, L->taps[d], index, weight, outside);
        for (int64_t o = 0; o < a->out_len && !any_outside; o++)
            any_outside = outside[o];
        fill.outside[d] = outside;
        k++;
        size_t outer = 1, inner = 1;
        for (int32_t e = 0; e < d; e++)
            outer *= (size_t)dims[e];
        for (int32_t e = d + 1; e < job->rank; e++)
            inner *= (size_t)dims[e];
        void *dst = k == L->n_passes && !L->convert ? y : scratch + L->buf_off[k % 2];
        pass_job p = {.src = src,
                      .dst = dst,
                      .l_in = (size_t)a->in_len,
                      .l_out = (size_t)a->out_len,
                      .inner = inner,
                      .taps = L->taps[d],
                      .index = index,
                      .weight = weight};
        size_t lines = outer * p.l_out;
        qkv_run_range(io, lines, lines * inner * L->esize, wide ? pass_f64 : pass_f32, &p);
        dims[d] = a->out_len;
        src = dst;
    }
    void *result = (void *)src;
    if (any_outside) {
        fill.data = result;
        size_t rows = 1;
        for (int32_t d = 0; d + 1 < job->rank; d++)
            rows *= (size_t)fill.dims[d];
        qkv_run_range(io, rows, 0, fill_rows, &fill);
    }
    if (L->convert) {
        size_t n = 1;
        for (int32_t d = 0; d < job->rank; d++)
            n *= (size_t)dims[d];
        narrow(job->dtype, y, result, n);
    }
}

qkv_status qkv_resize_run(qkv_kernel_io *io, const qkv_resize_job *job, const void *x, void *y)
{
    layout L;
    qkv_status st = make_layout(io, job, &L);
    if (st != QKV_OK)
        return st;
    size_t numel = 1;
    for (int32_t d = 0; d < job->rank; d++)
        numel *= (size_t)job->axis[d].out_len;
    if (numel == 0)
        return QKV_OK;
    if (job->rank == 0) {
        memcpy(y, x, qkv_elem_bytes(job->dtype));
        return QKV_OK;
    }
    if (L.total > io->scratch_bytes)
        return KERR(io, QKV_ERR_INTERNAL, "resize needs %zu bytes of scratch, has %zu", L.total,
                    io->scratch_bytes);
    if (job->axis[0].mode == QKV_RESIZE_NEAREST)
        run_nearest(io, job, &L, io->scratch, x, y);
    else
        run_interpolate(io, job, &L, io->scratch, x, y);
    return QKV_OK;
}
