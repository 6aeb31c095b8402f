/*
 * transpose.c - Transpose (opsets 1, 13, 21): output dim k is input dim
 * perm[k]; perm defaults to the reversed axes.
 *
 * Types: every type whose elements are whole bytes (1, 2, 4, 8 or 16 bytes:
 * numbers, bool, float16/bfloat16, float8, complex). Not supported: strings
 * (compute may not allocate the copies) and the packed sub-byte types.
 *
 * The copy is planned from the shape, not done per element with index math:
 *   1. input dims of size 1 are dropped (they do not move data);
 *   2. runs of output axes that are adjacent input axes in the same order are
 *      merged into one axis;
 *   3. when the last output axis is also the input's last, its contiguous run
 *      becomes one wide "element" (whole runs are memcpy'd);
 *   4. what is left is a batch of 2-D transposes between the output axis that
 *      is contiguous in the input and the output's last axis, done in square
 *      tiles (16 or 32 elements a side) so reads and writes both stay in
 *      cache; the other axes are walked with an odometer. A wide element that is not 1, 2, 4,
 *      8 or 16 bytes is copied with memcpy per element instead.
 * Identity-like permutations end as one memcpy.
 */
#include <stdlib.h>
#include <string.h>

#include "kernel_util.h"
#include "qkv.h"

typedef struct transpose_attrs {
    bool has_perm;
    int32_t rank; /* perm's length when has_perm */
    int32_t perm[QKV_MAX_RANK];
} transpose_attrs;

/* The copy after steps 1-3 of the file comment. Axes are output axes. */
typedef struct transpose_plan {
    int32_t rank;
    size_t dims[QKV_MAX_RANK];
    size_t in_strides[QKV_MAX_RANK];  /* bytes */
    size_t out_strides[QKV_MAX_RANK]; /* bytes */
    size_t elem_bytes;                /* the (possibly widened) element */
    size_t count;                     /* elements of elem_bytes */
} transpose_plan;

/* Plans the copy of x (known shape, elem_bytes per element) to perm. */
static void transpose_plan_make(const qkv_tensor *x, const int32_t *perm, size_t elem_bytes,
                                transpose_plan *p)
{
    int32_t r = x->rank;
    /* 1. drop size-1 input axes; kperm is perm over the kept axes */
    int32_t renum[QKV_MAX_RANK], kept = 0, kperm[QKV_MAX_RANK], kr = 0;
    size_t kdims[QKV_MAX_RANK];
    for (int32_t a = 0; a < r; a++) {
        renum[a] = x->dims[a] == 1 ? -1 : kept;
        if (x->dims[a] != 1)
            kdims[kept++] = (size_t)x->dims[a];
    }
    for (int32_t k = 0; k < r; k++)
        if (renum[perm[k]] >= 0)
            kperm[kr++] = renum[perm[k]];
    /* 2. groups of output axes that are consecutive input axes; a group
     * covers input axes [first[g], first[g] + len[g]) */
    int32_t first[QKV_MAX_RANK], len[QKV_MAX_RANK], ng = 0;
    for (int32_t k = 0; k < kr; k++) {
        if (k > 0 && kperm[k] == kperm[k - 1] + 1) {
            len[ng - 1]++;
        } else {
            first[ng] = kperm[k];
            len[ng] = 1;
            ng++;
        }
    }
    for (int32_t g = 0; g < ng; g++) {
        size_t d = 1, stride = 1;
        for (int32_t a = first[g]; a < first[g] + len[g]; a++)
            d *= kdims[a];
        for (int32_t a = first[g] + len[g]; a < kept; a++)
            stride *= kdims[a];
        p->dims[g] = d;
        p->in_strides[g] = stride * elem_bytes;
    }
    /* 3. a last output axis contiguous in the input widens the element */
    if (ng > 0 && p->in_strides[ng - 1] == elem_bytes) {
        elem_bytes *= p->dims[ng - 1];
        ng--;
    }
    p->rank = ng;
    p->elem_bytes = elem_bytes;
    size_t s = elem_bytes;
    p->count = 1;
    for (int32_t g = ng - 1; g >= 0; g--) {
        p->out_strides[g] = s;
        s *= p->dims[g];
        p->count *= p->dims[g];
    }
}

/* ---- the copies ------------------------------------------------------------------ */

typedef struct transpose_run {
    const transpose_plan *p;
    const char *x;
    char *y;
    /* tiled path */
    int32_t q;           /* the output axis contiguous in the input */
    size_t tile, strips; /* strips of `tile` indices along q, per outer index */
} transpose_run;

/* Input and output byte offsets of index `o` over the plan's axes other
 * than `skip_a` and `skip_b` (pass -1 to skip none). */
static void odometer_offsets(const transpose_plan *p, size_t o, int32_t skip_a, int32_t skip_b,
                             size_t *in_off, size_t *out_off)
{
    *in_off = *out_off = 0;
    for (int32_t g = p->rank - 1; g >= 0; g--) {
        if (g == skip_a || g == skip_b)
            continue;
        size_t c = o % p->dims[g];
        o /= p->dims[g];
        *in_off += c * p->in_strides[g];
        *out_off += c * p->out_strides[g];
    }
}

/* parallel_for body of the generic path: output elements [begin, end),
 * written in order (the output offset just grows by es); the input offset
 * follows an odometer stepped per element, not recomputed with divisions. */
static void copy_elems_range(void *arg, size_t begin, size_t end)
{
    const transpose_run *r = arg;
    const transpose_plan *p = r->p;
    size_t es = p->elem_bytes;
    size_t c[QKV_MAX_RANK], in_off, out_off, rest = begin;
    odometer_offsets(p, begin, -1, -1, &in_off, &out_off);
    for (int32_t g = p->rank - 1; g >= 0; g--) {
        c[g] = rest % p->dims[g];
        rest /= p->dims[g];
    }
    for (size_t u = begin; u < end; u++) {
        memcpy(r->y + out_off, r->x + in_off, es);
        out_off += es;
        for (int32_t g = p->rank - 1; g >= 0; g--) {
            in_off += p->in_strides[g];
            if (++c[g] < p->dims[g])
                break;
            in_off -= c[g] * p->in_strides[g];
            c[g] = 0;
        }
    }
}

/*
 * Strip of the tiled path for ES-byte elements: output indices i in
 * [i0, i1) along axis q and all j along the last axis, where
 * out[i * osq + j] = in[i + j * isl] (in elements, from the bases). Elements
 * move with constant-size memcpy: plain loads and stores once compiled, and
 * no aliasing question whatever the element type.
 */
#define DEFINE_TILE_STRIP(ES)                                                                      \
    static void strip_##ES(char *restrict out, const char *restrict in, size_t i0, size_t i1,      \
                           size_t nl, size_t osq, size_t isl, size_t tile)                         \
    {                                                                                              \
        for (size_t j0 = 0; j0 < nl; j0 += tile) {                                                 \
            size_t j1 = j0 + tile < nl ? j0 + tile : nl;                                           \
            for (size_t i = i0; i < i1; i++) {                                                     \
                char *restrict dst = out + i * osq * (ES);                                         \
                const char *restrict src = in + i * (ES);                                          \
                for (size_t j = j0; j < j1; j++)                                                   \
                    memcpy(dst + j * (ES), src + j * isl * (ES), (ES));                            \
            }                                                                                      \
        }                                                                                          \
    }
DEFINE_TILE_STRIP(1)
DEFINE_TILE_STRIP(2)
DEFINE_TILE_STRIP(4)
DEFINE_TILE_STRIP(8)
DEFINE_TILE_STRIP(16)

/* parallel_for body of the tiled path: units are (outer index, strip). */
static void tiled_range(void *arg, size_t begin, size_t end)
{
    const transpose_run *r = arg;
    const transpose_plan *p = r->p;
    int32_t q = r->q, l = p->rank - 1;
    size_t es = p->elem_bytes;
    size_t nq = p->dims[q], nl = p->dims[l];
    size_t osq = p->out_strides[q] / es, isl = p->in_strides[l] / es;
    for (size_t u = begin; u < end; u++) {
        size_t o = u / r->strips, i0 = (u % r->strips) * r->tile;
        size_t i1 = i0 + r->tile < nq ? i0 + r->tile : nq;
        size_t in_off, out_off;
        odometer_offsets(p, o, q, l, &in_off, &out_off);
        const char *in = r->x + in_off;
        char *out = r->y + out_off;
        switch (es) {
        case 1:
            strip_1(out, in, i0, i1, nl, osq, isl, r->tile);
            break;
        case 2:
            strip_2(out, in, i0, i1, nl, osq, isl, r->tile);
            break;
        case 4:
            strip_4(out, in, i0, i1, nl, osq, isl, r->tile);
            break;
        case 8:
            strip_8(out, in, i0, i1, nl, osq, isl, r->tile);
            break;
        default: /* 16: transpose_compute only picks this path for these sizes */
            strip_16(out, in, i0, i1, nl, osq, isl, r->tile);
            break;
        }
    }
}

/* ---- callbacks --------------------------------------------------------------- */

static qkv_status transpose_init(const qkv_kernel *kernel, const qkv_host_api *host,
                                 const qkv_node_ctx *node, void **state)
{
    (void)kernel;
    const int64_t *perm;
    size_t n;
    qkv_status st = host->attr_ints(node, "perm", &perm, &n);
    if (st != QKV_OK)
        return st;
    if (n > QKV_MAX_RANK)
        return NERR(host, node, QKV_ERR_UNSUPPORTED,
                    "attribute perm has %zu entries, at most %d supported", n, QKV_MAX_RANK);
    transpose_attrs *s = malloc(sizeof *s);
    if (!s)
        return NERR(host, node, QKV_ERR_OUT_OF_MEMORY, "kernel state");
    memset(s, 0, sizeof *s);
    s->has_perm = perm != NULL;
    s->rank = (int32_t)n;
    bool seen[QKV_MAX_RANK] = {false};
    for (size_t k = 0; k < n; k++) {
        if (perm[k] < 0 || perm[k] >= (int64_t)n) {
            free(s);
            return NERR(host, node, QKV_ERR_INVALID_MODEL,
                        "attribute perm[%zu] = %lld is out of range [0, %zu)", k,
                        (long long)perm[k], n);
        }
        if (seen[perm[k]]) {
            free(s);
            return NERR(host, node, QKV_ERR_INVALID_MODEL,
                        "attribute perm repeats axis %lld (at position %zu)", (long long)perm[k],
                        k);
        }
        seen[perm[k]] = true;
        s->perm[k] = (int32_t)perm[k];
    }
    *state = s;
    return QKV_OK;
}

static void transpose_destroy(void *state) { free(state); }

/* The permutation for input rank r: the attribute, or reversed axes. */
static void transpose_perm(const transpose_attrs *s, int32_t r, int32_t perm[QKV_MAX_RANK])
{
    for (int32_t k = 0; k < r; k++)
        perm[k] = s->has_perm ? s->perm[k] : r - 1 - k;
}

static qkv_status transpose_infer(void *state, qkv_kernel_io *io)
{
    const transpose_attrs *s = state;
    const qkv_tensor *x = &io->inputs[0];
    qkv_tensor *y = &io->outputs[0];
    y->dtype = x->dtype;
    if (x->rank < 0) {
        /* perm's length is the rank; its dims are not known yet */
        y->rank = s->has_perm ? s->rank : -1;
        for (int32_t k = 0; k < y->rank; k++)
            y->dims[k] = -1;
        return QKV_OK;
    }
    if (s->has_perm && s->rank != x->rank)
        return KERR(io, QKV_ERR_SHAPE,
                    "attribute perm has %d entries but input 0 'data' has rank %d", s->rank,
                    x->rank);
    int32_t perm[QKV_MAX_RANK];
    transpose_perm(s, x->rank, perm);
    y->rank = x->rank;
    for (int32_t k = 0; k < x->rank; k++)
        y->dims[k] = x->dims[perm[k]];
    return QKV_OK;
}

static qkv_status transpose_compute(const void *state, qkv_kernel_io *io)
{
    const transpose_attrs *s = state;
    const qkv_tensor *x = &io->inputs[0];
    size_t bits = qkv_dtype_bits(x->dtype);
    switch (bits) {
    case 8:
    case 16:
    case 32:
    case 64:
    case 128:
        break;
    default:
        return KERR(io, QKV_ERR_TYPE, "input 0 'data' has type %s, not supported",
                    qkv_dtype_name(x->dtype));
    }
    if (s->has_perm && s->rank != x->rank)
        return KERR(io, QKV_ERR_SHAPE,
                    "attribute perm has %d entries but input 0 'data' has rank %d", s->rank,
                    x->rank);
    int32_t perm[QKV_MAX_RANK];
    transpose_perm(s, x->rank, perm);
    transpose_plan p;
    transpose_plan_make(x, perm, bits / 8, &p);
    size_t bytes = p.count * p.elem_bytes;
    if (bytes == 0)
        return QKV_OK;
    transpose_run r = {.p = &p, .x = x->data, .y = io->outputs[0].data};
    if (p.rank == 0) { /* the permutation moves no data */
        memcpy(r.y, r.x, bytes);
        return QKV_OK;
    }
    /* qkv_run_range: small copies stay on the calling thread */
    size_t es = p.elem_bytes;
    if (es != 1 && es != 2 && es != 4 && es != 8 && es != 16) {
        qkv_run_range(io, p.count, bytes, copy_elems_range, &r);
        return QKV_OK;
    }
    /* the input's innermost axis: the one with stride one element (there is
     * one, and it is not the last output axis, or step 3 would have widened
     * the element) */
    r.q = 0;
    while (p.in_strides[r.q] != es)
        r.q++;
    r.tile = es <= 2 ? 32 : 16; /* a tile row spans at least 32 bytes */
    size_t nq = p.dims[r.q];
    r.strips = (nq + r.tile - 1) / r.tile;
    size_t units = p.count / (nq * p.dims[p.rank - 1]) * r.strips;
    qkv_run_range(io, units, bytes, tiled_range, &r);
    return QKV_OK;
}

#define TRANSPOSE_TYPES                                                                            \
    (QKV_TYPES_PLAIN | QKV_T(COMPLEX64) | QKV_T(COMPLEX128) | QKV_T(FLOAT8E4M3FN) |                \
     QKV_T(FLOAT8E4M3FNUZ) | QKV_T(FLOAT8E5M2) | QKV_T(FLOAT8E5M2FNUZ))

#define TRANSPOSE_KERNEL(since, until)                                                             \
    {                                                                                              \
        QKV_KERNEL_V1, .domain = "", .op_type = "Transpose", .since_version = (since),             \
                       .until_version = (until), .min_inputs = 1, .max_inputs = 1,                 \
                       .min_outputs = 1, .max_outputs = 1, .n_input_types = 1,                     \
                       .input_types = {TRANSPOSE_TYPES}, .init = transpose_init,                   \
                       .infer = transpose_infer, .compute = transpose_compute,                     \
                       .destroy = transpose_destroy,                                               \
    }

static const qkv_kernel kernels[] = {
    TRANSPOSE_KERNEL(1, 12),
    TRANSPOSE_KERNEL(13, 20),
    TRANSPOSE_KERNEL(21, 0),
};

/* The Transpose descriptors (one per opset range); *count set to their number. */
const qkv_kernel *qkv_ops_transpose(size_t *count)
{
    *count = sizeof kernels / sizeof kernels[0];
    return kernels;
}
