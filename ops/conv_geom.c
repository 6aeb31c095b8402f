/*
 * conv_geom.c - attribute parsing, output shapes and im2col for the
 * convolution and pooling kernels (contracts in conv_geom.h).
 *
 * Attribute values are bounded by QKV_CONV_ATTR_MAX (2^31 - 1) at parse time
 * so that (kernel - 1) * dilation + 1 and the pad sums below cannot overflow
 * int64 for any dim a tensor can have; a window larger than that is not a
 * model anyone can run.
 */
#include "conv_geom.h"

#include <string.h>

#include "kernel_util.h"

#define QKV_CONV_ATTR_MAX ((int64_t)INT32_MAX)

/* ---- attributes -------------------------------------------------------------- */

/* Reads int list `name` into dst (at most cap values) with every value in
 * [lo, QKV_CONV_ATTR_MAX]. Absent: *n 0. */
static qkv_status read_list(const qkv_host_api *host, const qkv_node_ctx *node, const char *name,
                            int64_t lo, int64_t *dst, size_t cap, size_t *n)
{
    const int64_t *v = NULL;
    *n = 0;
    qkv_status st = host->attr_ints(node, name, &v, n);
    if (st != QKV_OK)
        return st;
    if (*n > cap)
        return NERR(host, node, QKV_ERR_UNSUPPORTED,
                    "attribute '%s' has %zu values: at most %zu spatial dims are supported", name,
                    *n, cap);
    for (size_t i = 0; i < *n; i++) {
        if (v[i] < lo || v[i] > QKV_CONV_ATTR_MAX)
            return NERR(host, node, QKV_ERR_INVALID_MODEL,
                        "attribute '%s' has %lld at index %zu, expected %lld..%lld", name,
                        (long long)v[i], i, (long long)lo, (long long)QKV_CONV_ATTR_MAX);
        dst[i] = v[i];
    }
    return QKV_OK;
}

/* Checks that list `name` of n values (present when n > 0) gives
 * n / per_dim spatial dims, agreeing with what earlier lists gave. */
static qkv_status agree(const qkv_host_api *host, const qkv_node_ctx *node, const char *name,
                        size_t n, size_t per_dim, int32_t *n_spatial, const char **first)
{
    if (n == 0)
        return QKV_OK;
    if (n % per_dim != 0)
        return NERR(host, node, QKV_ERR_INVALID_MODEL,
                    "attribute '%s' has %zu values, expected a multiple of %zu", name, n, per_dim);
    int32_t dims = (int32_t)(n / per_dim);
    if (*n_spatial == 0) {
        *n_spatial = dims;
        *first = name;
        return QKV_OK;
    }
    if (dims != *n_spatial)
        return NERR(host, node, QKV_ERR_INVALID_MODEL,
                    "attribute '%s' gives %d spatial dims but '%s' gives %d", name, (int)dims,
                    *first, (int)*n_spatial);
    return QKV_OK;
}

static qkv_status parse_auto_pad(const qkv_host_api *host, const qkv_node_ctx *node,
                                 qkv_conv_auto_pad *out)
{
    const char *s = NULL;
    qkv_status st = host->attr_string(node, "auto_pad", "NOTSET", &s);
    if (st != QKV_OK)
        return st;
    if (strcmp(s, "NOTSET") == 0 || s[0] == '\0')
        *out = QKV_CONV_PAD_NOTSET;
    else if (strcmp(s, "VALID") == 0)
        *out = QKV_CONV_PAD_VALID;
    else if (strcmp(s, "SAME_UPPER") == 0)
        *out = QKV_CONV_PAD_SAME_UPPER;
    else if (strcmp(s, "SAME_LOWER") == 0)
        *out = QKV_CONV_PAD_SAME_LOWER;
    else
        return NERR(host, node, QKV_ERR_INVALID_MODEL,
                    "attribute 'auto_pad' is '%s', expected NOTSET, VALID, SAME_UPPER or "
                    "SAME_LOWER",
                    s);
    return QKV_OK;
}

/* group and ceil_mode, when flags ask for them. */
static qkv_status parse_scalars(const qkv_host_api *host, const qkv_node_ctx *node, unsigned flags,
                                qkv_conv_attrs *a)
{
    qkv_status st;
    if (flags & QKV_CONV_PARSE_GROUP) {
        if ((st = host->attr_int(node, "group", 1, &a->group)) != QKV_OK)
            return st;
        if (a->group < 1 || a->group > QKV_CONV_ATTR_MAX)
            return NERR(host, node, QKV_ERR_INVALID_MODEL,
                        "attribute 'group' is %lld, expected >= 1", (long long)a->group);
    }
    if (flags & QKV_CONV_PARSE_CEIL_MODE) {
        int64_t c = 0;
        if ((st = host->attr_int(node, "ceil_mode", 0, &c)) != QKV_OK)
            return st;
        if (c != 0 && c != 1)
            return NERR(host, node, QKV_ERR_INVALID_MODEL,
                        "attribute 'ceil_mode' is %lld, expected 0 or 1", (long long)c);
        a->ceil_mode = c == 1;
    }
    return QKV_OK;
}

/* output_padding and output_shape (ConvTranspose). output_shape may list
 * (N, C) too: then its first two values are dropped. */
static qkv_status parse_transpose(const qkv_host_api *host, const qkv_node_ctx *node,
                                  qkv_conv_attrs *a, const char **first)
{
    size_t n = 0;
    qkv_status st =
        read_list(host, node, "output_padding", 0, a->output_padding, QKV_CONV_MAX_SPATIAL, &n);
    if (st == QKV_OK)
        st = agree(host, node, "output_padding", n, 1, &a->n_spatial, first);
    if (st != QKV_OK)
        return st;
    int64_t shape[QKV_MAX_RANK];
    if ((st = read_list(host, node, "output_shape", 1, shape, QKV_MAX_RANK, &n)) != QKV_OK)
        return st;
    if (n == 0)
        return QKV_OK;
    size_t skip = 0;
    if (a->n_spatial > 0 && n == (size_t)a->n_spatial + 2)
        skip = 2;
    else if (a->n_spatial == 0 && n > QKV_CONV_MAX_SPATIAL)
        skip = 2; /* only a full (N, C, ...) shape can be this long */
    if ((st = agree(host, node, "output_shape", n - skip, 1, &a->n_spatial, first)) != QKV_OK)
        return st;
    memcpy(a->output_shape, shape + skip, (n - skip) * sizeof shape[0]);
    a->has_output_shape = true;
    return QKV_OK;
}

qkv_status qkv_conv_attrs_parse(const qkv_host_api *host, const qkv_node_ctx *node, unsigned flags,
                                qkv_conv_attrs *out)
{
    qkv_conv_attrs a;
    memset(&a, 0, sizeof a);
    for (int i = 0; i < QKV_CONV_MAX_SPATIAL; i++)
        a.strides[i] = a.dilations[i] = 1;
    a.group = 1;
    *out = a;
    const char *first = NULL;
    size_t nk = 0, ns = 0, nd = 0, np = 0;
    qkv_status st =
        read_list(host, node, "kernel_shape", 1, a.kernel_shape, QKV_CONV_MAX_SPATIAL, &nk);
    if (st == QKV_OK)
        st = read_list(host, node, "strides", 1, a.strides, QKV_CONV_MAX_SPATIAL, &ns);
    if (st == QKV_OK)
        st = read_list(host, node, "dilations", 1, a.dilations, QKV_CONV_MAX_SPATIAL, &nd);
    if (st == QKV_OK)
        st = read_list(host, node, "pads", 0, a.pads, 2 * QKV_CONV_MAX_SPATIAL, &np);
    if (st == QKV_OK)
        st = agree(host, node, "kernel_shape", nk, 1, &a.n_spatial, &first);
    if (st == QKV_OK)
        st = agree(host, node, "strides", ns, 1, &a.n_spatial, &first);
    if (st == QKV_OK)
        st = agree(host, node, "dilations", nd, 1, &a.n_spatial, &first);
    if (st == QKV_OK)
        st = agree(host, node, "pads", np, 2, &a.n_spatial, &first);
    if (st == QKV_OK)
        st = parse_auto_pad(host, node, &a.auto_pad);
    if (st == QKV_OK)
        st = parse_scalars(host, node, flags, &a);
    if (st == QKV_OK && (flags & QKV_CONV_PARSE_TRANSPOSE))
        st = parse_transpose(host, node, &a, &first);
    if (st != QKV_OK)
        return st;
    if ((flags & QKV_CONV_PARSE_KERNEL_REQUIRED) && nk == 0)
        return NERR(host, node, QKV_ERR_INVALID_MODEL, "attribute 'kernel_shape' is required");
    a.has_kernel_shape = nk > 0;
    a.has_pads = np > 0;
    /* pads lists all begins then all ends: spread them when fewer than the
     * maximum spatial dims were given */
    if (np > 0 && np / 2 < QKV_CONV_MAX_SPATIAL) {
        int64_t ends[QKV_CONV_MAX_SPATIAL] = {0};
        memcpy(ends, a.pads + np / 2, np / 2 * sizeof ends[0]);
        memset(a.pads + np / 2, 0, (2 * QKV_CONV_MAX_SPATIAL - np / 2) * sizeof a.pads[0]);
        memcpy(a.pads + QKV_CONV_MAX_SPATIAL, ends, np / 2 * sizeof ends[0]);
    }
    *out = a;
    return QKV_OK;
}

/* ---- output shapes ------------------------------------------------------------- */

/* floor(a / b) for b > 0 */
static int64_t floor_div(int64_t a, int64_t b) { return a >= 0 ? a / b : -((-a + b - 1) / b); }

/* Common checks and the copy of strides, dilations and kernel into g. */
static qkv_status geom_begin(qkv_kernel_io *io, const qkv_conv_attrs *a, int32_t n,
                             const int64_t *kernel, qkv_conv_geom *g)
{
    memset(g, 0, sizeof *g);
    g->n_spatial = n;
    if (n < 1 || n > QKV_CONV_MAX_SPATIAL)
        return KERR(io, QKV_ERR_SHAPE, "%d spatial dims, expected 1..%d", (int)n,
                    QKV_CONV_MAX_SPATIAL);
    if (a->n_spatial != 0 && a->n_spatial != n)
        return KERR(io, QKV_ERR_SHAPE, "the input has %d spatial dims but the attributes give %d",
                    (int)n, (int)a->n_spatial);
    for (int32_t i = 0; i < n; i++) {
        if (a->has_kernel_shape && kernel[i] != a->kernel_shape[i])
            return KERR(io, QKV_ERR_SHAPE,
                        "attribute 'kernel_shape' has %lld at index %d but the weight's spatial "
                        "dim is %lld",
                        (long long)a->kernel_shape[i], (int)i, (long long)kernel[i]);
        if (kernel[i] < 1 || kernel[i] > QKV_CONV_ATTR_MAX)
            return KERR(io, QKV_ERR_SHAPE, "kernel spatial dim %d is %lld, expected >= 1", (int)i,
                        (long long)kernel[i]);
        g->kernel[i] = kernel[i];
        g->stride[i] = a->strides[i];
        g->dilation[i] = a->dilations[i];
    }
    return QKV_OK;
}

qkv_status qkv_conv_geom_forward(qkv_kernel_io *io, const qkv_conv_attrs *a, int32_t n,
                                 const int64_t *in, const int64_t *kernel, qkv_conv_geom *g)
{
    qkv_status st = geom_begin(io, a, n, kernel, g);
    if (st != QKV_OK)
        return st;
    for (int32_t i = 0; i < n; i++) {
        int64_t s = g->stride[i], ek = (g->kernel[i] - 1) * g->dilation[i] + 1;
        g->in[i] = in[i];
        if (a->auto_pad == QKV_CONV_PAD_NOTSET) {
            g->pad_begin[i] = a->pads[i];
            g->pad_end[i] = a->pads[QKV_CONV_MAX_SPATIAL + i];
        }
        if (in[i] < 0) {
            g->out[i] = -1;
            if (a->auto_pad == QKV_CONV_PAD_SAME_UPPER || a->auto_pad == QKV_CONV_PAD_SAME_LOWER)
                g->pad_begin[i] = g->pad_end[i] = -1; /* known with the input */
            continue;
        }
        if (in[i] == 0) { /* an empty dim stays empty */
            g->out[i] = 0;
            continue;
        }
        if (a->auto_pad == QKV_CONV_PAD_SAME_UPPER || a->auto_pad == QKV_CONV_PAD_SAME_LOWER) {
            int64_t out = (in[i] + s - 1) / s;
            int64_t total = (out - 1) * s + ek - in[i];
            if (total < 0)
                total = 0;
            int64_t small = total / 2;
            g->pad_begin[i] = a->auto_pad == QKV_CONV_PAD_SAME_UPPER ? small : total - small;
            g->pad_end[i] = total - g->pad_begin[i];
            g->out[i] = out;
            continue;
        }
        int64_t span = in[i] + g->pad_begin[i] + g->pad_end[i] - ek;
        if (span < 0)
            return KERR(io, QKV_ERR_SHAPE,
                        "spatial dim %d: the window (%lld with dilation) is larger than the "
                        "padded input (%lld)",
                        (int)i, (long long)ek,
                        (long long)(in[i] + g->pad_begin[i] + g->pad_end[i]));
        int64_t out = (a->ceil_mode ? (span + s - 1) / s : span / s) + 1;
        /* ceil_mode: a last window starting in the end padding is dropped */
        if (a->ceil_mode && (out - 1) * s >= in[i] + g->pad_begin[i])
            out--;
        g->out[i] = out;
    }
    return QKV_OK;
}

qkv_status qkv_conv_geom_transpose(qkv_kernel_io *io, const qkv_conv_attrs *a, int32_t n,
                                   const int64_t *in, const int64_t *kernel, qkv_conv_geom *g)
{
    qkv_status st = geom_begin(io, a, n, kernel, g);
    if (st != QKV_OK)
        return st;
    bool same = a->auto_pad == QKV_CONV_PAD_SAME_UPPER || a->auto_pad == QKV_CONV_PAD_SAME_LOWER;
    for (int32_t i = 0; i < n; i++) {
        int64_t s = g->stride[i], ek = (g->kernel[i] - 1) * g->dilation[i] + 1;
        int64_t op = a->output_padding[i];
        g->out[i] = in[i]; /* the adjoint orientation: the transpose's input */
        if (a->has_output_shape || same) {
            int64_t out = a->has_output_shape ? a->output_shape[i] : (in[i] < 0 ? -1 : in[i] * s);
            g->in[i] = out;
            if (in[i] < 0) {
                g->pad_begin[i] = g->pad_end[i] = -1;
                continue;
            }
            int64_t total = s * (in[i] - 1) + op + ek - out;
            if (in[i] == 0)
                total = 0;
            if (total < 0) { /* a larger output than the full result: extend at the end */
                g->pad_begin[i] = 0;
                g->pad_end[i] = total;
                continue;
            }
            int64_t half = floor_div(total, 2);
            g->pad_begin[i] = a->auto_pad == QKV_CONV_PAD_SAME_UPPER ? half : total - half;
            g->pad_end[i] = total - g->pad_begin[i];
            continue;
        }
        if (a->auto_pad == QKV_CONV_PAD_NOTSET) {
            g->pad_begin[i] = a->pads[i];
            g->pad_end[i] = a->pads[QKV_CONV_MAX_SPATIAL + i];
        }
        if (in[i] < 0) {
            g->in[i] = -1;
            continue;
        }
        if (in[i] == 0) {
            g->in[i] = 0;
            continue;
        }
        int64_t out = s * (in[i] - 1) + op + ek - g->pad_begin[i] - g->pad_end[i];
        if (out < 1)
            return KERR(io, QKV_ERR_SHAPE,
                        "spatial dim %d: pads %lld + %lld leave no output (full size %lld)", (int)i,
                        (long long)g->pad_begin[i], (long long)g->pad_end[i],
                        (long long)(s * (in[i] - 1) + op + ek));
        g->in[i] = out;
    }
    return QKV_OK;
}

static bool dims_product(const int64_t *dims, int32_t n, size_t *out)
{
    size_t p = 1;
    *out = 0;
    for (int32_t i = 0; i < n; i++) {
        if (dims[i] < 0 || __builtin_mul_overflow(p, (size_t)dims[i], &p))
            return false;
    }
    *out = p;
    return true;
}

bool qkv_conv_geom_kernel_size(const qkv_conv_geom *g, size_t *out)
{
    return dims_product(g->kernel, g->n_spatial, out);
}

bool qkv_conv_geom_in_size(const qkv_conv_geom *g, size_t *out)
{
    return dims_product(g->in, g->n_spatial, out);
}

bool qkv_conv_geom_out_size(const qkv_conv_geom *g, size_t *out)
{
    return dims_product(g->out, g->n_spatial, out);
}

bool qkv_conv_geom_is_pointwise(const qkv_conv_geom *g)
{
    for (int32_t i = 0; i < g->n_spatial; i++)
        if (g->kernel[i] != 1 || g->stride[i] != 1 || g->pad_begin[i] != 0 || g->pad_end[i] != 0 ||
            g->in[i] != g->out[i])
            return false;
    return true;
}

/* ---- im2col --------------------------------------------------------------------- */

/* n elements of eb bytes from src with a stride of `stride` elements to dst
 * (contiguous). */
static void copy_strided(unsigned char *restrict dst, const unsigned char *restrict src, size_t n,
                         size_t stride, size_t eb)
{
    if (stride == 1) {
        memcpy(dst, src, n * eb);
        return;
    }
    switch (eb) {
    case 4:
        for (size_t i = 0; i < n; i++)
            memcpy(dst + i * 4, src + i * stride * 4, 4);
        break;
    case 1:
        for (size_t i = 0; i < n; i++)
            dst[i] = src[i * stride];
        break;
    default:
        for (size_t i = 0; i < n; i++)
            qkv_copy_block(dst + i * eb, src + i * stride * eb, eb);
        break;
    }
}

static void fill(unsigned char *dst, size_t n, size_t eb, const unsigned char *pad)
{
    if (!pad) {
        memset(dst, 0, n * eb);
        return;
    }
    for (size_t i = 0; i < n; i++)
        qkv_copy_block(dst + i * eb, pad, eb);
}

/* The output positions o in [0, out) whose tap o * s + off reads inside
 * [0, in): [*lo, *hi). */
static void valid_range(int64_t off, int64_t s, int64_t in, int64_t out, int64_t *lo, int64_t *hi)
{
    /* o * s + off >= 0  <=>  o >= ceil(-off / s) */
    int64_t l = off >= 0 ? 0 : (-off + s - 1) / s;
    /* o * s + off <= in - 1  <=>  o <= floor((in - 1 - off) / s) */
    int64_t h = in - 1 - off < 0 ? 0 : (in - 1 - off) / s + 1;
    if (l > out)
        l = out;
    if (h > out)
        h = out;
    if (h < l)
        h = l;
    *lo = l;
    *hi = h;
}

void qkv_im2col(const qkv_conv_geom *g, size_t elem_bytes, const void *x, size_t channels,
                size_t row_begin, size_t row_end, size_t col_begin, size_t col_end, void *col,
                size_t ld, const void *pad_value)
{
    int32_t n = g->n_spatial, last = n - 1;
    size_t ksize, in_size;
    qkv_conv_geom_kernel_size(g, &ksize);
    qkv_conv_geom_in_size(g, &in_size);
    size_t in_stride[QKV_CONV_MAX_SPATIAL]; /* elements between steps of each input dim */
    in_stride[last] = 1;
    for (int32_t i = last - 1; i >= 0; i--)
        in_stride[i] = in_stride[i + 1] * (size_t)g->in[i + 1];
    const unsigned char *pad = pad_value;
    const size_t eb = elem_bytes, width = (size_t)g->out[last];
    if (width == 0 || ksize == 0)
        return;
    for (size_t r = row_begin; r < row_end && r / ksize < channels; r++) {
        const unsigned char *xc = (const unsigned char *)x + (r / ksize) * in_size * eb;
        unsigned char *dst_row = (unsigned char *)col + (r - row_begin) * ld * eb;
        int64_t off[QKV_CONV_MAX_SPATIAL]; /* input offset of the tap at output position 0 */
        size_t t = r % ksize;
        for (int32_t i = last; i >= 0; i--) {
            off[i] = (int64_t)(t % (size_t)g->kernel[i]) * g->dilation[i] - g->pad_begin[i];
            t /= (size_t)g->kernel[i];
        }
        int64_t lo, hi; /* the last dim's in-bounds output positions */
        valid_range(off[last], g->stride[last], g->in[last], g->out[last], &lo, &hi);
        /* one segment of the last output dim per iteration */
        for (size_t p = col_begin; p < col_end;) {
            size_t q = p / width, w0 = p % width;
            size_t w1 = width - w0 < col_end - p ? width : w0 + (col_end - p);
            unsigned char *dst = dst_row + (p - col_begin) * eb;
            const unsigned char *src = xc;
            bool inside = true;
            for (int32_t i = last - 1; i >= 0 && inside; i--) {
                int64_t o = (int64_t)(q % (size_t)g->out[i]);
                q /= (size_t)g->out[i];
                int64_t pos = o * g->stride[i] + off[i];
                inside = pos >= 0 && pos < g->in[i];
                if (inside)
                    src += (size_t)pos * in_stride[i] * eb;
            }
            if (!inside) {
                fill(dst, w1 - w0, eb, pad);
            } else {
                size_t a = (size_t)lo < w0 ? w0 : (size_t)lo > w1 ? w1 : (size_t)lo;
                size_t b = (size_t)hi < a ? a : (size_t)hi > w1 ? w1 : (size_t)hi;
                fill(dst, a - w0, eb, pad);
                if (b > a)
                    copy_strided(dst + (a - w0) * eb,
                                 src + (size_t)((int64_t)a * g->stride[last] + off[last]) * eb,
                                 b - a, (size_t)g->stride[last], eb);
                fill(dst + (b - w0) * eb, w1 - b, eb, pad);
            }
            p += w1 - w0;
        }
    }
}

/* ---- bias planes ------------------------------------------------------------------ */

typedef struct fill_run {
    size_t channels, plane_len, elem_bytes;
    const unsigned char *values;
    unsigned char *y;
} fill_run;

static void fill_range(void *arg, size_t begin, size_t end)
{
    const fill_run *r = arg;
    const size_t len = r->plane_len, eb = r->elem_bytes;
    for (size_t plane = begin; plane < end; plane++) {
        unsigned char *y = r->y + plane * len * eb;
        const unsigned char *v = r->values ? r->values + (plane % r->channels) * eb : NULL;
        if (!v) {
            memset(y, 0, len * eb);
        } else if (eb == 4) { /* float, int32: constant-size copies become single stores */
            uint32_t u;
            memcpy(&u, v, 4);
            for (size_t j = 0; j < len; j++)
                memcpy(y + j * 4, &u, 4);
        } else if (eb == 8) {
            uint64_t u;
            memcpy(&u, v, 8);
            for (size_t j = 0; j < len; j++)
                memcpy(y + j * 8, &u, 8);
        } else {
            fill(y, len, eb, v);
        }
    }
}

void qkv_conv_fill_planes(qkv_kernel_io *io, size_t planes, size_t channels, size_t plane_len,
                          size_t elem_bytes, const void *values, void *y)
{
    fill_run r = {.channels = channels,
                  .plane_len = plane_len,
                  .elem_bytes = elem_bytes,
                  .values = values,
                  .y = y};
    qkv_run_range(io, planes, planes * plane_len * elem_bytes, fill_range, &r);
}
