/*
 * random.c - the random generators: RandomUniform, RandomNormal (opset 1;
 * shape from attribute `shape`), RandomUniformLike, RandomNormalLike (opset
 * 1; shape of input 0), Bernoulli (opset 15; 1 with probability input 0) and
 * Multinomial (opset 7; `sample_size` class indices per row of input 0's
 * unnormalised log-probabilities).
 *
 * Generator: xoshiro256** (Blackman and Vigna), seeded through splitmix64;
 * a double in [0, 1) is its top 53 bits. Normal values come from Box-Muller
 * (both values of each pair used). Values are drawn in row-major order of the
 * output.
 *
 * Seeds. With attribute `seed`, every run restarts the stream from that seed:
 * the same node gives the same output on every run (and in every session),
 * so a model with a seeded random op is deterministic. Without `seed`, the
 * stream of a run is seeded from the clock read when the session created the
 * node, mixed with a per-node run counter that advances atomically on each
 * run: runs, contexts and sessions all differ. That counter, in the node's
 * kernel state, is the only thing compute changes; there is no global state.
 * The values are not those of numpy or ONNX Runtime (the spec makes no
 * promise across implementations, even with a seed).
 *
 * Output types: `dtype` (a TensorProto element type); default float for
 * RandomUniform/RandomNormal, input 0's type for the *Like ops and
 * Bernoulli (an error when that is not a float type for the *Like ops).
 * Uniform values are clamped below `high` after rounding to the output type,
 * so every value is in [low, high). Bernoulli writes 0 or 1 in any numeric
 * type or bool; Multinomial int32 (default) or int64.
 *
 * These kernels have no infer on purpose: a kernel with infer whose inputs
 * are constants is folded once at session creation (RandomUniform has no
 * inputs at all), or evaluated once per plan, and would then repeat its
 * values forever. Without infer the node runs at every run and allocates its
 * output with host->output_alloc.
 */
#include <math.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "elementwise.h"
#include "qkv.h"

#define RAND_FLOATS (QKV_TYPES_FLOATS | QKV_TYPES_HALF)
#define BERNOULLI_OUT (QKV_TYPES_NUMERIC | QKV_TYPES_HALF | QKV_T(BOOL))

enum rand_kind {
    RK_UNIFORM,
    RK_NORMAL,
    RK_UNIFORM_LIKE,
    RK_NORMAL_LIKE,
    RK_BERNOULLI,
    RK_MULTINOMIAL
};

typedef struct rand_def {
    enum rand_kind kind;
} rand_def;

static const rand_def def_uniform = {RK_UNIFORM};
static const rand_def def_normal = {RK_NORMAL};
static const rand_def def_uniform_like = {RK_UNIFORM_LIKE};
static const rand_def def_normal_like = {RK_NORMAL_LIKE};
static const rand_def def_bernoulli = {RK_BERNOULLI};
static const rand_def def_multinomial = {RK_MULTINOMIAL};

typedef struct rand_state {
    enum rand_kind kind;
    qkv_dtype dtype; /* UNDEFINED: input 0's */
    double a, b;     /* low/high or mean/scale */
    int64_t shape[QKV_MAX_RANK];
    int32_t rank;
    int64_t sample_size;
    bool seeded;
    uint64_t seed;             /* the `seed` attribute's bits, or the clock at init */
    atomic_uint_fast64_t runs; /* unseeded: runs so far */
} rand_state;

/* ---- the generator -------------------------------------------------------- */

typedef struct rng {
    uint64_t s[4];
} rng;

static uint64_t splitmix64(uint64_t *x)
{
    uint64_t z = (*x += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

static void rng_seed(rng *r, uint64_t seed)
{
    for (int i = 0; i < 4; i++)
        r->s[i] = splitmix64(&seed);
}

static inline uint64_t rotl(uint64_t x, int k) { return (x << k) | (x >> (64 - k)); }

static uint64_t rng_next(rng *r)
{
    uint64_t *s = r->s;
    uint64_t out = rotl(s[1] * 5, 7) * 9, t = s[1] << 17;
    s[2] ^= s[0];
    s[3] ^= s[1];
    s[1] ^= s[2];
    s[0] ^= s[3];
    s[2] ^= t;
    s[3] = rotl(s[3], 45);
    return out;
}

/* A double in [0, 1). */
static double rng_unit(rng *r) { return (double)(rng_next(r) >> 11) * 0x1.0p-53; }

/* The stream of this run (see the header). */
static void run_stream(const rand_state *cs, rng *r)
{
    rand_state *s = (rand_state *)cs; /* only the atomic counter changes */
    uint64_t seed = cs->seed;
    if (!cs->seeded)
        seed ^= atomic_fetch_add(&s->runs, 1) * 0xd1b54a32d192ed03ull;
    rng_seed(r, seed);
}

/* ---- attributes ------------------------------------------------------------ */

static qkv_status read_dtype(const qkv_host_api *host, const qkv_node_ctx *node, rand_state *s,
                             uint64_t allowed, int64_t dflt)
{
    int64_t dt;
    qkv_status st = host->attr_int(node, "dtype", dflt, &dt);
    if (st != QKV_OK)
        return st;
    if (dt != 0 && (dt < 0 || dt >= QKV_DTYPE_COUNT || !(allowed & QKV_DTYPE_BIT((qkv_dtype)dt))))
        return NERR(host, node, QKV_ERR_INVALID_MODEL,
                    "attribute 'dtype' is %lld, not an output type of this op", (long long)dt);
    s->dtype = (qkv_dtype)dt;
    return QKV_OK;
}

static qkv_status read_params(const qkv_host_api *host, const qkv_node_ctx *node, rand_state *s)
{
    float a = 0, b = 1;
    qkv_status st = QKV_OK;
    switch (s->kind) {
    case RK_UNIFORM:
    case RK_UNIFORM_LIKE:
        st = host->attr_float(node, "low", 0.0f, &a);
        if (st == QKV_OK)
            st = host->attr_float(node, "high", 1.0f, &b);
        if (st == QKV_OK && !(a < b))
            return NERR(host, node, QKV_ERR_INVALID_MODEL,
                        "attributes 'low' %g and 'high' %g: expected low < high", (double)a,
                        (double)b);
        break;
    case RK_NORMAL:
    case RK_NORMAL_LIKE:
        st = host->attr_float(node, "mean", 0.0f, &a);
        if (st == QKV_OK)
            st = host->attr_float(node, "scale", 1.0f, &b);
        break;
    default:
        break;
    }
    s->a = a;
    s->b = b;
    if (st != QKV_OK)
        return st;
    switch (s->kind) {
    case RK_UNIFORM:
    case RK_NORMAL: {
        const int64_t *shape = NULL;
        size_t n = 0;
        st = read_dtype(host, node, s, RAND_FLOATS, QKV_DTYPE_FLOAT);
        if (st == QKV_OK)
            st = host->attr_ints(node, "shape", &shape, &n);
        if (st != QKV_OK)
            return st;
        if (!shape || n > QKV_MAX_RANK)
            return NERR(host, node, QKV_ERR_INVALID_MODEL,
                        "attribute 'shape' is %s, expected a list of at most %d dims",
                        shape ? "too long" : "missing", QKV_MAX_RANK);
        for (size_t i = 0; i < n; i++) {
            if (shape[i] < 0)
                return NERR(host, node, QKV_ERR_INVALID_MODEL,
                            "attribute 'shape' has %lld at dim %zu, expected >= 0",
                            (long long)shape[i], i);
            s->shape[i] = shape[i];
        }
        s->rank = (int32_t)n;
        return QKV_OK;
    }
    case RK_UNIFORM_LIKE:
    case RK_NORMAL_LIKE:
        return read_dtype(host, node, s, RAND_FLOATS, 0);
    case RK_BERNOULLI:
        return read_dtype(host, node, s, BERNOULLI_OUT, 0);
    default:
        st = read_dtype(host, node, s, QKV_T(INT32) | QKV_T(INT64), QKV_DTYPE_INT32);
        if (st == QKV_OK)
            st = host->attr_int(node, "sample_size", 1, &s->sample_size);
        if (st == QKV_OK && s->sample_size < 1)
            st = NERR(host, node, QKV_ERR_INVALID_MODEL,
                      "attribute 'sample_size' is %lld, expected >= 1", (long long)s->sample_size);
        return st;
    }
}

static qkv_status rand_init(const qkv_kernel *kernel, const qkv_host_api *host,
                            const qkv_node_ctx *node, void **state)
{
    const rand_def *def = kernel->user;
    rand_state *s = calloc(1, sizeof *s);
    if (!s)
        return NERR(host, node, QKV_ERR_OUT_OF_MEMORY, "kernel state");
    s->kind = def->kind;
    qkv_status st = read_params(host, node, s);
    float seed = 0;
    if (st == QKV_OK) {
        s->seeded = host->attr_type(node, "seed") != QKV_ATTR_UNDEFINED;
        st = host->attr_float(node, "seed", 0.0f, &seed);
    }
    if (st != QKV_OK) {
        free(s);
        return st;
    }
    if (s->seeded) {
        double d = seed;
        memcpy(&s->seed, &d, sizeof d);
    } else {
        struct timespec ts;
        timespec_get(&ts, TIME_UTC);
        uint64_t mix = (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
        /* the state's address tells apart nodes created in the same tick */
        mix ^= (uint64_t)(uintptr_t)s;
        s->seed = splitmix64(&mix);
    }
    atomic_init(&s->runs, 0);
    *state = s;
    return QKV_OK;
}

static void rand_destroy(void *state) { free(state); }

/* ---- values ------------------------------------------------------------------ */

/* v as it reads after rounding to float type t. */
static double rounded(qkv_dtype t, double v)
{
    switch (t) {
    case QKV_DTYPE_FLOAT:
        return (float)v;
    case QKV_DTYPE_FLOAT16:
        return qkv_f16_to_f32(qkv_f64_to_f16(v));
    case QKV_DTYPE_BFLOAT16:
        return qkv_bf16_to_f32(qkv_f64_to_bf16(v));
    default:
        return v;
    }
}

/* The largest value of float type t below high. */
static double below(qkv_dtype t, double high)
{
    switch (t) {
    case QKV_DTYPE_FLOAT: {
        float f = (float)high;
        while ((double)f >= high)
            f = nextafterf(f, -INFINITY);
        return f;
    }
    case QKV_DTYPE_FLOAT16:
    case QKV_DTYPE_BFLOAT16: {
        bool h16 = t == QKV_DTYPE_FLOAT16;
        uint16_t h = h16 ? qkv_f64_to_f16(high) : qkv_f64_to_bf16(high);
        for (;;) {
            double v = h16 ? qkv_f16_to_f32(h) : qkv_bf16_to_f32(h);
            if (v < high)
                return v;
            /* one step toward -inf in sign-magnitude bits */
            if (h == 0x0000u)
                h = 0x8001u;
            else if (h & 0x8000u)
                h++;
            else
                h--;
        }
    }
    default:
        return nextafter(high, -INFINITY);
    }
}

/* Output t's type and shape: dtype as chosen, shape of dims. */
static qkv_status alloc_out(qkv_kernel_io *io, qkv_dtype t, int32_t rank, const int64_t *dims,
                            qkv_tensor **out)
{
    qkv_status st = io->host->output_alloc(io, 0, t, rank, dims);
    *out = &io->outputs[0];
    return st;
}

/* Uniform or normal values into y (float type). */
static void fill_continuous(const rand_state *s, rng *r, qkv_tensor *y)
{
    size_t n = qkv_numel(y), eb = qkv_ew_elem_bytes(y->dtype);
    double buf[QKV_EW_CHUNK];
    bool uniform = s->kind == RK_UNIFORM || s->kind == RK_UNIFORM_LIKE;
    double top = uniform ? below(y->dtype, s->b) : 0;
    for (size_t j0 = 0; j0 < n; j0 += QKV_EW_CHUNK) {
        size_t m = n - j0 < QKV_EW_CHUNK ? n - j0 : QKV_EW_CHUNK;
        if (uniform) {
            for (size_t j = 0; j < m; j++) {
                double v = s->a + (s->b - s->a) * rng_unit(r);
                buf[j] = rounded(y->dtype, v) >= s->b ? top : v;
            }
        } else {
            for (size_t j = 0; j < m; j += 2) {
                double u1 = 1.0 - rng_unit(r), u2 = rng_unit(r); /* u1 in (0, 1] */
                double rad = sqrt(-2.0 * log(u1)), th = 6.283185307179586 * u2;
                buf[j] = s->a + s->b * rad * cos(th);
                if (j + 1 < m)
                    buf[j + 1] = s->a + s->b * rad * sin(th);
            }
        }
        qkv_ew_store_f64((char *)y->data + j0 * eb, y->dtype, buf, m);
    }
}

static qkv_status bernoulli(const rand_state *s, rng *r, qkv_kernel_io *io)
{
    const qkv_tensor *p = &io->inputs[0];
    qkv_dtype t = s->dtype != QKV_DTYPE_UNDEFINED ? s->dtype : p->dtype;
    qkv_tensor *y;
    qkv_status st = alloc_out(io, t, p->rank, p->dims, &y);
    if (st != QKV_OK)
        return st;
    size_t n = qkv_numel(y), ib = qkv_ew_elem_bytes(p->dtype), ob = qkv_ew_elem_bytes(t);
    double buf[QKV_EW_CHUNK];
    for (size_t j0 = 0; j0 < n; j0 += QKV_EW_CHUNK) {
        size_t m = n - j0 < QKV_EW_CHUNK ? n - j0 : QKV_EW_CHUNK;
        if (!qkv_ew_load_f64(buf, (const char *)p->data + j0 * ib, p->dtype, 1, m))
            return KERR(io, QKV_ERR_TYPE, "input 0 'input' has type %s, not supported",
                        qkv_dtype_name(p->dtype));
        for (size_t j = 0; j < m; j++)
            buf[j] = rng_unit(r) < buf[j] ? 1.0 : 0.0;
        if (!qkv_ew_store_f64((char *)y->data + j0 * ob, t, buf, m))
            return KERR(io, QKV_ERR_TYPE, "output type %s is not supported", qkv_dtype_name(t));
    }
    return QKV_OK;
}

static qkv_status multinomial(const rand_state *s, rng *r, qkv_kernel_io *io)
{
    const qkv_tensor *x = &io->inputs[0];
    if (x->rank != 2)
        return KERR(io, QKV_ERR_SHAPE, "input 0 'input' has rank %d, expected 2 (batch, classes)",
                    x->rank);
    int64_t dims[2] = {x->dims[0], s->sample_size};
    qkv_tensor *y;
    qkv_status st = alloc_out(io, s->dtype, 2, dims, &y);
    if (st != QKV_OK)
        return st;
    size_t batch = (size_t)x->dims[0], k = (size_t)x->dims[1], eb = qkv_ew_elem_bytes(x->dtype);
    if (k == 0 && batch > 0)
        return KERR(io, QKV_ERR_SHAPE, "input 0 'input' has no classes");
    for (size_t b = 0; b < batch; b++) {
        /* the row's maximum, then the total of exp(x - max), read in chunks */
        double buf[QKV_EW_CHUNK], mx = -INFINITY, total = 0;
        const char *row = (const char *)x->data + b * k * eb;
        for (size_t pass = 0; pass < 2; pass++)
            for (size_t j0 = 0; j0 < k; j0 += QKV_EW_CHUNK) {
                size_t m = k - j0 < QKV_EW_CHUNK ? k - j0 : QKV_EW_CHUNK;
                if (!qkv_ew_load_f64(buf, row + j0 * eb, x->dtype, 1, m))
                    return KERR(io, QKV_ERR_TYPE, "input 0 'input' has type %s, not supported",
                                qkv_dtype_name(x->dtype));
                for (size_t j = 0; j < m; j++) {
                    if (pass == 0)
                        mx = buf[j] > mx ? buf[j] : mx;
                    else
                        total += exp(buf[j] - mx);
                }
            }
        for (int64_t i = 0; i < s->sample_size; i++) {
            double target = rng_unit(r) * total, acc = 0;
            size_t pick = k - 1;
            for (size_t j0 = 0; j0 < k && pick == k - 1; j0 += QKV_EW_CHUNK) {
                size_t m = k - j0 < QKV_EW_CHUNK ? k - j0 : QKV_EW_CHUNK;
                qkv_ew_load_f64(buf, row + j0 * eb, x->dtype, 1, m);
                for (size_t j = 0; j < m; j++) {
                    acc += exp(buf[j] - mx);
                    if (target < acc) {
                        pick = j0 + j;
                        break;
                    }
                }
            }
            size_t o = b * (size_t)s->sample_size + (size_t)i;
            if (s->dtype == QKV_DTYPE_INT64)
                ((int64_t *)y->data)[o] = (int64_t)pick;
            else
                ((int32_t *)y->data)[o] = (int32_t)pick;
        }
    }
    return QKV_OK;
}

static qkv_status rand_compute(const void *state, qkv_kernel_io *io)
{
    const rand_state *s = state;
    rng r;
    run_stream(s, &r);
    qkv_tensor *y;
    qkv_status st;
    switch (s->kind) {
    case RK_UNIFORM:
    case RK_NORMAL:
        st = alloc_out(io, s->dtype, s->rank, s->shape, &y);
        if (st == QKV_OK)
            fill_continuous(s, &r, y);
        return st;
    case RK_UNIFORM_LIKE:
    case RK_NORMAL_LIKE: {
        const qkv_tensor *x = &io->inputs[0];
        qkv_dtype t = s->dtype != QKV_DTYPE_UNDEFINED ? s->dtype : x->dtype;
        if (!(RAND_FLOATS & QKV_DTYPE_BIT(t)))
            return KERR(io, QKV_ERR_TYPE,
                        "input 0 has type %s and no attribute 'dtype': the output must be a "
                        "float type",
                        qkv_dtype_name(t));
        st = alloc_out(io, t, x->rank, x->dims, &y);
        if (st == QKV_OK)
            fill_continuous(s, &r, y);
        return st;
    }
    case RK_BERNOULLI:
        return bernoulli(s, &r, io);
    default:
        return multinomial(s, &r, io);
    }
}

/* ---- descriptors --------------------------------------------------------------- */

#define RANDOM(op, since, def_, n_in, types)                                                       \
    {                                                                                              \
        QKV_KERNEL_V1, .domain = "", .op_type = op, .since_version = since, .min_inputs = n_in,    \
                       .max_inputs = n_in, .min_outputs = 1, .max_outputs = 1,                     \
                       .n_input_types = n_in ? 1 : 0, .input_types = {types},                      \
                       .user = (void *)&def_, .init = rand_init, .compute = rand_compute,          \
                       .destroy = rand_destroy                                                     \
    }

static const qkv_kernel kernels[] = {
    RANDOM("RandomUniform", 1, def_uniform, 0, 0),
    RANDOM("RandomNormal", 1, def_normal, 0, 0),
    RANDOM("RandomUniformLike", 1, def_uniform_like, 1, QKV_TYPES_BYTES),
    RANDOM("RandomNormalLike", 1, def_normal_like, 1, QKV_TYPES_BYTES),
    RANDOM("Bernoulli", 15, def_bernoulli, 1, RAND_FLOATS),
    RANDOM("Multinomial", 7, def_multinomial, 1, RAND_FLOATS),
};

/* The random family: RandomUniform, RandomNormal, their *Like forms,
 * Bernoulli and Multinomial. */
const qkv_kernel *qkv_ops_random(size_t *count)
{
    *count = sizeof kernels / sizeof kernels[0];
    return kernels;
}
