/*
 * maxunpool.c - MaxUnpool (opsets 9, 11): the partial inverse of MaxPool.
 * X (N, C, D1..Dk) and I (int64, X's shape) come from MaxPool's two outputs;
 * the output is zero except that X's values go back to the positions I
 * names.
 *
 * The default output has spatial dims (Di - 1) * stride_i + kernel_i -
 * pad_begin_i - pad_end_i. The optional input output_shape (int64, N, C and
 * every spatial dim) overrides it; its value is needed to know the shape, so
 * a non-constant one makes the node dynamic.
 *
 * An index is read as MaxPool writes it, flat over the default output shape
 * (N, C and the spatial dims: MaxPool's flattened input). Its spatial
 * coordinates in that shape give the position in the output, also when
 * output_shape differs from the default (this is what the ONNX 1.12
 * reference data has; ONNX Runtime instead scatters the flat index into the
 * bigger plane). An index outside the default shape, or coordinates outside
 * output_shape, is QKV_ERR_INVALID_ARGUMENT naming the element. Duplicate
 * indices keep the last value written. float, double, float16.
 */
#include <stdlib.h>
#include <string.h>

#include "kernel_util.h"
#include "qkv.h"

#define UNPOOL_TYPES (QKV_TYPES_FLOATS | QKV_T(FLOAT16))
#define MAX_SPATIAL (QKV_MAX_RANK - 2)

typedef struct unpool_state {
    size_t n_spatial;
    int64_t kernel[MAX_SPATIAL], strides[MAX_SPATIAL], pads[2 * MAX_SPATIAL];
} unpool_state;

static qkv_status unpool_init(const qkv_kernel *kernel, const qkv_host_api *host,
                              const qkv_node_ctx *node, void **state)
{
    (void)kernel;
    const int64_t *ks = NULL, *st = NULL, *pads = NULL;
    size_t nk = 0, ns = 0, np = 0;
    qkv_status s = host->attr_ints(node, "kernel_shape", &ks, &nk);
    if (s == QKV_OK)
        s = host->attr_ints(node, "strides", &st, &ns);
    if (s == QKV_OK)
        s = host->attr_ints(node, "pads", &pads, &np);
    if (s != QKV_OK)
        return s;
    if (nk == 0 || nk > MAX_SPATIAL)
        return NERR(host, node, QKV_ERR_INVALID_MODEL,
                    "attribute 'kernel_shape' has %zu values, expected 1 to %d", nk, MAX_SPATIAL);
    if ((ns && ns != nk) || (np && np != 2 * nk))
        return NERR(host, node, QKV_ERR_INVALID_MODEL,
                    "attributes 'strides' (%zu values) and 'pads' (%zu) do not match "
                    "'kernel_shape' (%zu): expected %zu and %zu",
                    ns, np, nk, nk, 2 * nk);
    unpool_state *u = calloc(1, sizeof *u);
    if (!u)
        return NERR(host, node, QKV_ERR_OUT_OF_MEMORY, "kernel state");
    u->n_spatial = nk;
    for (size_t i = 0; i < nk; i++) {
        u->kernel[i] = ks[i];
        u->strides[i] = ns ? st[i] : 1;
        u->pads[i] = np ? pads[i] : 0;
        u->pads[nk + i] = np ? pads[nk + i] : 0;
        if (u->kernel[i] < 1 || u->strides[i] < 1 || u->pads[i] < 0 || u->pads[nk + i] < 0) {
            free(u);
            return NERR(host, node, QKV_ERR_INVALID_MODEL,
                        "spatial axis %zu: kernel %lld, stride %lld, pads %lld/%lld; expected "
                        "kernel and stride >= 1 and pads >= 0",
                        i, (long long)ks[i], (long long)(ns ? st[i] : 1),
                        (long long)(np ? pads[i] : 0), (long long)(np ? pads[nk + i] : 0));
        }
    }
    *state = u;
    return QKV_OK;
}

static void unpool_destroy(void *state) { free(state); }

/* The default output shape of X (rank known) into dims; false when a dim
 * comes out below 1 (*bad names the spatial axis). Unknown dims stay -1. */
static bool default_shape(const unpool_state *u, const qkv_tensor *x, int64_t *dims, size_t *bad)
{
    dims[0] = x->dims[0];
    dims[1] = x->dims[1];
    for (size_t i = 0; i < u->n_spatial; i++) {
        int64_t d = x->dims[2 + i];
        if (d < 0) {
            dims[2 + i] = -1;
            continue;
        }
        int64_t v;
        bool over = d == 0 || __builtin_mul_overflow(d - 1, u->strides[i], &v) ||
                    __builtin_add_overflow(v, u->kernel[i], &v) ||
                    __builtin_sub_overflow(v, u->pads[i], &v) ||
                    __builtin_sub_overflow(v, u->pads[u->n_spatial + i], &v);
        dims[2 + i] = over ? 0 : v;
        if (dims[2 + i] < 1) {
            *bad = i;
            return false;
        }
    }
    return true;
}

static qkv_status unpool_infer(void *state, qkv_kernel_io *io)
{
    const unpool_state *u = state;
    const qkv_tensor *x = &io->inputs[0], *ind = &io->inputs[1];
    qkv_tensor *y = &io->outputs[0];
    y->dtype = x->dtype;
    y->rank = -1;
    if (x->rank < 0)
        return QKV_OK;
    if ((size_t)x->rank != u->n_spatial + 2)
        return KERR(io, QKV_ERR_SHAPE,
                    "input 0 'X' has rank %d, expected %zu (N, C and the %zu spatial dims of "
                    "'kernel_shape')",
                    x->rank, u->n_spatial + 2, u->n_spatial);
    if (ind->rank >= 0) {
        bool same = ind->rank == x->rank;
        for (int32_t a = 0; same && a < x->rank; a++)
            same = ind->dims[a] < 0 || x->dims[a] < 0 || ind->dims[a] == x->dims[a];
        if (!same) {
            char a1[96], a2[96];
            return KERR(io, QKV_ERR_SHAPE,
                        "input 1 'I' has shape %s, input 0 'X' has %s: they must match",
                        qkv_dims_str(ind, a1, sizeof a1), qkv_dims_str(x, a2, sizeof a2));
        }
    }
    y->rank = x->rank;
    size_t bad = 0;
    if (!default_shape(u, x, y->dims, &bad))
        return KERR(io, QKV_ERR_SHAPE,
                    "the output's spatial dim %zu would be %lld: an empty input, pads larger "
                    "than the unpooled size, or an overflow",
                    bad, (long long)y->dims[2 + bad]);
    if (!qkv_present(io, 2))
        return QKV_OK;
    int64_t want[QKV_MAX_RANK];
    size_t n;
    qkv_status st = qkv_read_ints(io, 2, want, QKV_MAX_RANK, &n);
    if (st != QKV_OK)
        return st;
    if (n == SIZE_MAX) { /* not known yet: the runtime asks again with the value */
        for (int32_t a = 0; a < y->rank; a++)
            y->dims[a] = -1;
        return QKV_OK;
    }
    if (n != (size_t)x->rank)
        return KERR(io, QKV_ERR_SHAPE, "input 2 'output_shape' has %zu values, expected %d", n,
                    x->rank);
    for (size_t a = 0; a < n; a++) {
        if (want[a] < 0 || (a < 2 && x->dims[a] >= 0 && want[a] != x->dims[a]))
            return KERR(io, QKV_ERR_SHAPE,
                        "input 2 'output_shape' has %lld at dim %zu, expected %s",
                        (long long)want[a], a, a < 2 ? "input 0's N and C" : "a size >= 0");
        y->dims[a] = want[a];
    }
    return QKV_OK;
}

static qkv_status unpool_compute(const void *state, qkv_kernel_io *io)
{
    const unpool_state *u = state;
    const qkv_tensor *x = &io->inputs[0], *ind = &io->inputs[1];
    qkv_tensor *y = &io->outputs[0];
    size_t eb = qkv_elem_bytes(x->dtype);
    int64_t def[QKV_MAX_RANK];
    size_t bad = 0;
    if (!default_shape(u, x, def, &bad))
        return KERR(io, QKV_ERR_SHAPE, "the output's spatial dim %zu would be %lld", bad,
                    (long long)def[2 + bad]);
    size_t ns = u->n_spatial, def_plane = 1, out_plane = 1;
    for (size_t i = 0; i < ns; i++) {
        def_plane *= (size_t)def[2 + i];
        out_plane *= (size_t)y->dims[2 + i];
    }
    size_t planes = (size_t)x->dims[0] * (size_t)x->dims[1];
    size_t in_plane = planes ? qkv_numel(x) / planes : 0;
    int64_t total = (int64_t)(planes * def_plane);
    if (y->data_bytes)
        memset(y->data, 0, y->data_bytes);
    const unsigned char *src = x->data;
    unsigned char *dst = y->data;
    for (size_t p = 0; p < planes; p++) {
        for (size_t j = 0; j < in_plane; j++) {
            size_t e = p * in_plane + j;
            int64_t idx = qkv_int_at(ind, e);
            if (idx < 0 || idx >= total)
                return KERR(io, QKV_ERR_INVALID_ARGUMENT,
                            "input 1 'I' element %zu is %lld, outside [0, %lld) (the unpooled "
                            "tensor)",
                            e, (long long)idx, (long long)total);
            /* spatial coordinates in the default shape, then the flat
             * position in the output's plane */
            size_t rem = (size_t)idx % def_plane, pos = 0, scale = 1;
            for (size_t i = ns; i-- > 0;) {
                size_t c = rem % (size_t)def[2 + i];
                rem /= (size_t)def[2 + i];
                if (c >= (size_t)y->dims[2 + i])
                    return KERR(io, QKV_ERR_INVALID_ARGUMENT,
                                "input 1 'I' element %zu (%lld) lands at %zu on spatial axis "
                                "%zu, outside the output's %lld",
                                e, (long long)idx, c, i, (long long)y->dims[2 + i]);
                pos += c * scale;
                scale *= (size_t)y->dims[2 + i];
            }
            memcpy(dst + (p * out_plane + pos) * eb, src + e * eb, eb);
        }
    }
    return QKV_OK;
}

#define UNPOOL(since, until)                                                                       \
    {                                                                                              \
        QKV_KERNEL_V1, .domain = "", .op_type = "MaxUnpool", .since_version = since,               \
                       .until_version = until, .min_inputs = 2, .max_inputs = 3, .min_outputs = 1, \
                       .max_outputs = 1, .n_input_types = 3,                                       \
                       .input_types = {UNPOOL_TYPES, QKV_T(INT64), QKV_T(INT64)},                  \
                       .init = unpool_init, .infer = unpool_infer, .compute = unpool_compute,      \
                       .destroy = unpool_destroy                                                   \
    }

static const qkv_kernel kernels[] = {
    UNPOOL(9, 10),
    UNPOOL(11, 0),
};

/* The maxunpool family: MaxUnpool. */
const qkv_kernel *qkv_ops_maxunpool(size_t *count)
{
    *count = sizeof kernels / sizeof kernels[0];
    return kernels;
}
