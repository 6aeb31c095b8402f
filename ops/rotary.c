/*
 * rotary.c - RotaryEmbedding (opset 23): rotary positional embeddings (RoPE).
 *
 * Inputs: X (batch, num_heads, seq, head_size), or (batch, seq, hidden) with
 * the num_heads attribute (hidden = num_heads * head_size); cos_cache and
 * sin_cache; optional position_ids (batch, seq) int64.
 *  - with position_ids: the caches are (max_position, rot / 2) and row
 *    position_ids[b, s] is used for token (b, s); an id outside
 *    [0, max_position) is QKV_ERR_INVALID_ARGUMENT from compute (negative ids
 *    are not wrapped as numpy indexing would);
 *  - without: the caches are already gathered, (batch, seq, rot / 2); a cache
 *    batch dim of 1 is broadcast over the batch.
 * rot = rotary_embedding_dim, or head_size when 0 (the default); it must be
 * even and <= head_size. The first rot elements of each head vector are
 * rotated, the rest copied. Pairs are (x[i], x[i + rot/2]) (halves, the
 * default) or (x[2i], x[2i+1]) (interleaved = 1):
 *   y1 = cos * x1 - sin * x2,   y2 = sin * x1 + cos * x2.
 *
 * Types: float, float16 and bfloat16 (X and caches of one type; the last two
 * computed in float32 chunk by chunk and rounded once per element). Output
 * 0 may share X's buffer: each pair is read before it is written. Work is
 * split across threads by head vector.
 */
#include <stdlib.h>
#include <string.h>

#include "half.h"
#include "kernel_util.h"
#include "qkv.h"

#define PAR_MIN_ELEMS ((size_t)1 << 14)
/* pairs converted per chunk by the float16/bfloat16 path (stack buffers) */
#define PAIR_CHUNK 128

typedef struct rope_attrs {
    bool interleaved;
    int64_t rot_dim;   /* 0: head_size */
    int64_t num_heads; /* 0: not given */
} rope_attrs;

/* The geometry of one run (all sizes known). */
typedef struct rope_geom {
    bool x3d; /* X is (batch, seq, hidden) */
    size_t batch, heads, seq, head, rot;
    bool have_pos;      /* caches indexed by position_ids */
    size_t max_pos;     /* rows of the caches with position_ids */
    size_t cache_batch; /* without position_ids: 1 or batch */
} rope_geom;

typedef struct rope_run {
    const rope_geom *g;
    const rope_attrs *a;
    const void *x, *cos, *sin;
    const int64_t *pos; /* (batch, seq) or NULL */
    void *y;
    qkv_dtype t;
} rope_run;

/*
 * m rotations: pair k is (x1[k * st], x2[k * st]) -> (y1[k * st], y2[k * st])
 * with angle cos c[k], sin s[k]. y may be x (each pair is read first).
 */
static void rotate_f32(float *y1, float *y2, const float *x1, const float *x2, const float *c,
                       const float *s, size_t m, size_t st)
{
    for (size_t k = 0; k < m; k++) {
        float a = x1[k * st], b = x2[k * st];
        y1[k * st] = c[k] * a - s[k] * b;
        y2[k * st] = s[k] * a + c[k] * b;
    }
}

/* float16/bfloat16: the same on a chunk converted to float32. */
static void rotate_half(uint16_t *y1, uint16_t *y2, const uint16_t *x1, const uint16_t *x2,
                        const uint16_t *c, const uint16_t *s, size_t m, bool inter, qkv_dtype t)
{
    float fx[2 * PAIR_CHUNK], fc[PAIR_CHUNK], fs[PAIR_CHUNK];
    for (size_t k0 = 0; k0 < m; k0 += PAIR_CHUNK) {
        size_t n = m - k0 < PAIR_CHUNK ? m - k0 : PAIR_CHUNK;
        qkv_half_to_f32(fc, c + k0, t, n);
        qkv_half_to_f32(fs, s + k0, t, n);
        if (inter) { /* x1 = x + 2k, x2 = x1 + 1: one contiguous run of 2n */
            qkv_half_to_f32(fx, x1 + 2 * k0, t, 2 * n);
            rotate_f32(fx, fx + 1, fx, fx + 1, fc, fs, n, 2);
            qkv_f32_to_half(y1 + 2 * k0, fx, t, 2 * n);
        } else {
            qkv_half_to_f32(fx, x1 + k0, t, n);
            qkv_half_to_f32(fx + PAIR_CHUNK, x2 + k0, t, n);
            rotate_f32(fx, fx + PAIR_CHUNK, fx, fx + PAIR_CHUNK, fc, fs, n, 1);
            qkv_f32_to_half(y1 + k0, fx, t, n);
            qkv_f32_to_half(y2 + k0, fx + PAIR_CHUNK, t, n);
        }
    }
}

/* parallel_for body: head vectors [begin, end). Vector u starts at element
 * u * head of X and Y in both layouts; its (b, s) depends on the layout. */
static void rope_range(void *arg, size_t begin, size_t end)
{
    const rope_run *r = arg;
    const rope_geom *g = r->g;
    const size_t half = g->rot / 2, es = r->t == QKV_DTYPE_FLOAT ? 4 : 2;
    const bool inter = r->a->interleaved;
    for (size_t u = begin; u < end; u++) {
        size_t b, s;
        if (g->x3d) { /* u = (b * seq + s) * heads + h */
            b = u / (g->seq * g->heads);
            s = (u / g->heads) % g->seq;
        } else { /* u = (b * heads + h) * seq + s */
            b = u / (g->heads * g->seq);
            s = u % g->seq;
        }
        size_t crow = g->have_pos ? (size_t)r->pos[b * g->seq + s]
                                  : (g->cache_batch == 1 ? 0 : b) * g->seq + s;
        size_t coff = crow * half, off = u * g->head;
        /* element offsets of x1/x2 within the vector and their stride */
        size_t o2 = inter ? 1 : half, st = inter ? 2 : 1;
        if (r->t == QKV_DTYPE_FLOAT) {
            const float *x = (const float *)r->x + off;
            float *y = (float *)r->y + off;
            rotate_f32(y, y + o2, x, x + o2, (const float *)r->cos + coff,
                       (const float *)r->sin + coff, half, st);
        } else {
            const uint16_t *x = (const uint16_t *)r->x + off;
            uint16_t *y = (uint16_t *)r->y + off;
            rotate_half(y, y + o2, x, x + o2, (const uint16_t *)r->cos + coff,
                        (const uint16_t *)r->sin + coff, half, inter, r->t);
        }
        if (g->rot < g->head && r->y != r->x)
            memcpy((char *)r->y + (off + g->rot) * es, (const char *)r->x + (off + g->rot) * es,
                   (g->head - g->rot) * es);
    }
}

/* ---- callbacks ------------------------------------------------------------- */

static qkv_status rope_init(const qkv_kernel *kernel, const qkv_host_api *host,
                            const qkv_node_ctx *node, void **state)
{
    (void)kernel;
    int64_t inter, rot, heads;
    qkv_status st = host->attr_int(node, "interleaved", 0, &inter);
    if (st == QKV_OK)
        st = host->attr_int(node, "rotary_embedding_dim", 0, &rot);
    if (st == QKV_OK)
        st = host->attr_int(node, "num_heads", 0, &heads);
    if (st != QKV_OK)
        return st;
    if (rot < 0 || rot % 2 != 0)
        return NERR(host, node, QKV_ERR_INVALID_MODEL,
                    "attribute rotary_embedding_dim=%lld must be even and >= 0", (long long)rot);
    if (heads < 0)
        return NERR(host, node, QKV_ERR_INVALID_MODEL, "attribute num_heads=%lld is negative",
                    (long long)heads);
    rope_attrs *s = calloc(1, sizeof *s);
    if (!s)
        return NERR(host, node, QKV_ERR_OUT_OF_MEMORY, "kernel state");
    s->interleaved = inter != 0;
    s->rot_dim = rot;
    s->num_heads = heads;
    *state = s;
    return QKV_OK;
}

static void rope_destroy(void *state) { free(state); }

/* a == b, or either unknown */
static bool dim_ok(int64_t a, int64_t b) { return a < 0 || b < 0 || a == b; }

/* X's batch, heads, sequence and head sizes and the rotated size (-1
 * where unknown), as the shapes are checked. */
typedef struct rope_dims {
    int64_t batch, heads, seq, head, rot;
} rope_dims;

/* Reads *d from X (rank 3 or 4, known) and the attributes: a 3-D X needs
 * num_heads dividing its hidden size; the rotated size is even and at most
 * the head size. */
static qkv_status rope_x_dims(const rope_attrs *a, qkv_kernel_io *io, rope_dims *d)
{
    const qkv_tensor *x = &io->inputs[0];
    char s1[96];
    *d = (rope_dims){-1, -1, -1, -1, -1};
    if (x->rank != 3 && x->rank != 4)
        return KERR(io, QKV_ERR_SHAPE, "input 0 'X' has rank %d, expected 3 or 4", x->rank);
    d->batch = x->dims[0];
    if (x->rank == 4) {
        d->heads = x->dims[1];
        d->seq = x->dims[2];
        d->head = x->dims[3];
    } else {
        if (a->num_heads == 0)
            return KERR(io, QKV_ERR_INVALID_MODEL,
                        "input 0 'X' is 3-D %s but attribute num_heads is not set",
                        qkv_dims_str(x, s1, sizeof s1));
        d->heads = a->num_heads;
        d->seq = x->dims[1];
        d->head = x->dims[2] < 0 ? -1 : x->dims[2] / a->num_heads;
        if (x->dims[2] >= 0 && x->dims[2] % a->num_heads != 0)
            return KERR(io, QKV_ERR_SHAPE,
                        "input 0 'X' hidden size %lld is not a multiple of num_heads=%lld",
                        (long long)x->dims[2], (long long)a->num_heads);
    }
    d->rot = a->rot_dim ? a->rot_dim : d->head;
    if (d->head >= 0 && d->rot > d->head)
        return KERR(io, QKV_ERR_SHAPE,
                    "attribute rotary_embedding_dim=%lld exceeds the head size %lld of input 0 "
                    "'X' %s",
                    (long long)d->rot, (long long)d->head, qkv_dims_str(x, s1, sizeof s1));
    if (d->rot >= 0 && d->rot % 2 != 0)
        return KERR(io, QKV_ERR_SHAPE, "the rotated size %lld (head size of input 0 'X') is odd",
                    (long long)d->rot);
    return QKV_OK;
}

/* The caches (same shape, last dim rot/2: (max_position, rot/2) with
 * position_ids, else (batch or 1, seq, rot/2)) and position_ids (batch,
 * seq) against X's sizes d; unknown dims pass. */
static qkv_status rope_check_caches(qkv_kernel_io *io, const rope_dims *d)
{
    const qkv_tensor *x = &io->inputs[0], *cc = &io->inputs[1], *sc = &io->inputs[2];
    const bool have_pos = qkv_present(io, 3);
    const qkv_tensor *pos = have_pos ? &io->inputs[3] : NULL;
    const int64_t halfd = d->rot < 0 ? -1 : d->rot / 2;
    char s1[96], s2[96];
    for (int k = 1; k < 3; k++) {
        const qkv_tensor *c = &io->inputs[k];
        const char *name = k == 1 ? "cos_cache" : "sin_cache";
        if (c->rank < 0)
            continue;
        int want = have_pos ? 2 : 3;
        bool ok = c->rank == want && dim_ok(c->dims[want - 1], halfd);
        if (ok && !have_pos)
            ok = (c->dims[0] < 0 || d->batch < 0 || c->dims[0] == d->batch || c->dims[0] == 1) &&
                 dim_ok(c->dims[1], d->seq);
        if (!ok)
            return KERR(io, QKV_ERR_SHAPE,
                        "input %d '%s' has shape %s, expected %s with input 0 'X' %s and "
                        "rotated size %lld",
                        k, name, qkv_dims_str(c, s1, sizeof s1),
                        have_pos ? "(max_position, rot/2)" : "(batch or 1, seq, rot/2)",
                        qkv_dims_str(x, s2, sizeof s2), (long long)d->rot);
    }
    if (cc->rank >= 0 && sc->rank >= 0)
        for (int32_t i = 0; i < cc->rank; i++)
            if (!dim_ok(cc->dims[i], sc->dims[i]))
                return KERR(io, QKV_ERR_SHAPE,
                            "input 1 'cos_cache' %s and input 2 'sin_cache' %s differ",
                            qkv_dims_str(cc, s1, sizeof s1), qkv_dims_str(sc, s2, sizeof s2));
    if (pos && pos->rank >= 0 &&
        (pos->rank != 2 || !dim_ok(pos->dims[0], d->batch) || !dim_ok(pos->dims[1], d->seq)))
        return KERR(io, QKV_ERR_SHAPE,
                    "input 3 'position_ids' has shape %s, expected (batch, seq) of input 0 'X' %s",
                    qkv_dims_str(pos, s1, sizeof s1), qkv_dims_str(x, s2, sizeof s2));
    return QKV_OK;
}

/*
 * Checks X, the caches and position_ids against each other, as far as the
 * shapes are known (infer: g NULL). With g (compute: every shape known) also
 * fills in the geometry.
 */
static qkv_status rope_check(const rope_attrs *a, qkv_kernel_io *io, rope_geom *g)
{
    const qkv_tensor *x = &io->inputs[0], *cc = &io->inputs[1];
    for (int k = 1; k < 3; k++)
        if (io->inputs[k].dtype != x->dtype)
            return KERR(io, QKV_ERR_TYPE, "input %d '%s' is %s but input 0 'X' is %s", k,
                        k == 1 ? "cos_cache" : "sin_cache", qkv_dtype_name(io->inputs[k].dtype),
                        qkv_dtype_name(x->dtype));
    if (x->rank < 0)
        return QKV_OK;
    rope_dims d;
    qkv_status st = rope_x_dims(a, io, &d);
    if (st == QKV_OK)
        st = rope_check_caches(io, &d);
    if (st != QKV_OK || !g)
        return st;
    /* compute/prepare: every shape is known */
    const bool have_pos = qkv_present(io, 3);
    g->x3d = x->rank == 3;
    g->batch = (size_t)d.batch;
    g->heads = (size_t)d.heads;
    g->seq = (size_t)d.seq;
    g->head = (size_t)d.head;
    g->rot = (size_t)d.rot;
    g->have_pos = have_pos;
    g->max_pos = have_pos ? (size_t)cc->dims[0] : 0;
    g->cache_batch = have_pos ? 0 : (size_t)cc->dims[0];
    return QKV_OK;
}

static qkv_status rope_infer(void *state, qkv_kernel_io *io)
{
    const qkv_tensor *x = &io->inputs[0];
    qkv_set_shape(&io->outputs[0], x->dtype, x->rank, x->dims);
    return rope_check(state, io, NULL);
}

static qkv_status rope_compute(const void *state, qkv_kernel_io *io)
{
    const rope_attrs *a = state;
    rope_geom g;
    qkv_status st = rope_check(a, io, &g);
    if (st != QKV_OK)
        return st;
    const qkv_tensor *x = &io->inputs[0];
    if (x->dtype != QKV_DTYPE_FLOAT && !qkv_is_half(x->dtype))
        return KERR(io, QKV_ERR_TYPE, "input 0 'X' has type %s, not supported",
                    qkv_dtype_name(x->dtype));
    rope_run r = {.g = &g,
                  .a = a,
                  .x = x->data,
                  .cos = io->inputs[1].data,
                  .sin = io->inputs[2].data,
                  .y = io->outputs[0].data,
                  .t = x->dtype};
    if (g.have_pos) {
        const qkv_tensor *pos = &io->inputs[3];
        r.pos = pos->data;
        /* every id is checked before any is used */
        for (size_t i = 0; i < g.batch * g.seq; i++)
            if (r.pos[i] < 0 || (uint64_t)r.pos[i] >= g.max_pos)
                return KERR(io, QKV_ERR_INVALID_ARGUMENT,
                            "input 3 'position_ids'[%zu][%zu] = %lld is out of range [0, %zu) "
                            "of the cache rows",
                            i / g.seq, i % g.seq, (long long)r.pos[i], g.max_pos);
    }
    size_t vectors = g.batch * g.heads * g.seq;
    if (vectors == 0 || g.head == 0)
        return QKV_OK;
    if (vectors > 1 && vectors * g.head >= PAR_MIN_ELEMS)
        io->host->parallel_for(io->host_ctx, vectors, rope_range, &r);
    else
        rope_range(&r, 0, vectors);
    return QKV_OK;
}

#define ROPE_T (QKV_T(FLOAT) | QKV_T(FLOAT16) | QKV_T(BFLOAT16))

static const qkv_kernel kernels[] = {
    {
        QKV_KERNEL_V1,
        .domain = "",
        .op_type = "RotaryEmbedding",
        .since_version = 23,
        .min_inputs = 3,
        .max_inputs = 4,
        .min_outputs = 1,
        .max_outputs = 1,
        .n_input_types = 4,
        .input_types = {ROPE_T, ROPE_T, ROPE_T, QKV_T(INT64)},
        .flags = QKV_KERNEL_INPLACE,
        .inplace_input = 0,
        .init = rope_init,
        .infer = rope_infer,
        .compute = rope_compute,
        .destroy = rope_destroy,
    },
};

/* The RotaryEmbedding descriptor; *count set to 1. */
const qkv_kernel *qkv_ops_rotary(size_t *count)
{
    *count = sizeof kernels / sizeof kernels[0];
    return kernels;
}
