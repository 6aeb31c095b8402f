/*
 * trilu.c - Trilu (opset 14).
 *
 * Keeps the upper (upper=1, the default) or lower triangle of each of the
 * last two dims' (N, M) matrices of input 0 (rank >= 2) and zeroes the rest.
 * The optional input 1 `k` (int64, one element; default 0) shifts the
 * diagonal: upper keeps j - i >= k, lower keeps j - i <= k. Zero is the
 * all-zero bytes of the element (0, 0.0, false). Any element type of whole
 * bytes. Output 0 may share input 0's buffer.
 *
 * Each row's kept part is one contiguous run, so a row is one memcpy (none
 * in place) and one memset; rows are split across threads when large.
 */
#include <stdlib.h>
#include <string.h>

#include "kernel_util.h"
#include "qkv.h"

#define PAR_MIN_BYTES ((size_t)1 << 18)

typedef struct trilu_run {
    const char *x;
    char *y;
    size_t n, m, es; /* rows, columns, element bytes */
    int64_t k;       /* clamped to [-n-1, m+1] */
    bool upper;
} trilu_run;

/* parallel_for body: rows [b, e) over all matrices (row r is row r % n). */
static void trilu_range(void *arg, size_t b, size_t e)
{
    const trilu_run *r = arg;
    const int64_t m = (int64_t)r->m;
    for (size_t row = b; row < e; row++) {
        int64_t i = (int64_t)(row % r->n);
        /* the kept columns are [lo, hi) */
        int64_t lo = 0, hi = m;
        if (r->upper)
            lo = i + r->k;
        else
            hi = i + r->k + 1;
        lo = lo < 0 ? 0 : lo > m ? m : lo;
        hi = hi < lo ? lo : hi > m ? m : hi;
        const char *x = r->x + row * r->m * r->es;
        char *y = r->y + row * r->m * r->es;
        if (x != y)
            memcpy(y + (size_t)lo * r->es, x + (size_t)lo * r->es, (size_t)(hi - lo) * r->es);
        memset(y, 0, (size_t)lo * r->es);
        memset(y + (size_t)hi * r->es, 0, (size_t)(m - hi) * r->es);
    }
}

static qkv_status trilu_init(const qkv_kernel *kernel, const qkv_host_api *host,
                             const qkv_node_ctx *node, void **state)
{
    (void)kernel;
    int64_t upper;
    qkv_status st = host->attr_int(node, "upper", 1, &upper);
    if (st != QKV_OK)
        return st;
    bool *s = malloc(sizeof *s);
    if (!s)
        return NERR(host, node, QKV_ERR_OUT_OF_MEMORY, "kernel state");
    *s = upper != 0;
    *state = s;
    return QKV_OK;
}

static void trilu_destroy(void *state) { free(state); }

/* k from input 1 (0 when absent) into *k; *known false when not known yet. */
static qkv_status trilu_k(qkv_kernel_io *io, int64_t *k, bool *known)
{
    *k = 0;
    *known = true;
    if (!qkv_present(io, 1))
        return QKV_OK;
    const qkv_tensor *t = &io->inputs[1];
    if (qkv_shape_known(t) && qkv_numel(t) != 1)
        return KERR(io, QKV_ERR_SHAPE, "input 1 'k' has %zu elements, expected 1", qkv_numel(t));
    if (!t->data || !qkv_shape_known(t)) {
        *known = false;
        return QKV_OK;
    }
    *k = qkv_int_at(t, 0);
    return QKV_OK;
}

static qkv_status trilu_infer(void *state, qkv_kernel_io *io)
{
    (void)state;
    const qkv_tensor *x = &io->inputs[0];
    qkv_set_shape(&io->outputs[0], x->dtype, x->rank, x->dims);
    if (x->rank >= 0 && x->rank < 2)
        return KERR(io, QKV_ERR_SHAPE, "input 0 'input' has rank %d, expected >= 2", x->rank);
    int64_t k;
    bool known;
    return trilu_k(io, &k, &known);
}

static qkv_status trilu_compute(const void *state, qkv_kernel_io *io)
{
    const qkv_tensor *x = &io->inputs[0];
    if (x->rank < 2)
        return KERR(io, QKV_ERR_SHAPE, "input 0 'input' has rank %d, expected >= 2", x->rank);
    trilu_run r = {.x = x->data, .y = io->outputs[0].data, .upper = *(const bool *)state};
    bool known;
    qkv_status st = trilu_k(io, &r.k, &known);
    if (st != QKV_OK)
        return st;
    r.n = (size_t)x->dims[x->rank - 2];
    r.m = (size_t)x->dims[x->rank - 1];
    r.es = qkv_dtype_bits(x->dtype) / 8;
    /* beyond these, every row is all kept or all zeroed: clamping keeps
     * i + k from overflowing */
    int64_t kmin = -(int64_t)r.n - 1, kmax = (int64_t)r.m + 1;
    r.k = r.k < kmin ? kmin : r.k > kmax ? kmax : r.k;
    if (r.n == 0 || r.m == 0)
        return QKV_OK;
    size_t rows = qkv_numel(x) / r.m; /* matrices * n */
    if (rows > 1 && x->data_bytes >= PAR_MIN_BYTES)
        io->host->parallel_for(io->host_ctx, rows, trilu_range, &r);
    else
        trilu_range(&r, 0, rows);
    return QKV_OK;
}

static const qkv_kernel kernels[] = {
    {
        QKV_KERNEL_V1,
        .domain = "",
        .op_type = "Trilu",
        .since_version = 14,
        .min_inputs = 1,
        .max_inputs = 2,
        .min_outputs = 1,
        .max_outputs = 1,
        .n_input_types = 2,
        .input_types = {QKV_TYPES_BYTES, QKV_T(INT64) | QKV_T(INT32)},
        .flags = QKV_KERNEL_INPLACE,
        .inplace_input = 0,
        .init = trilu_init,
        .infer = trilu_infer,
        .compute = trilu_compute,
        .destroy = trilu_destroy,
    },
};

/* The Trilu descriptor; *count set to 1. */
const qkv_kernel *qkv_ops_trilu(size_t *count)
{
    *count = sizeof kernels / sizeof kernels[0];
    return kernels;
}
