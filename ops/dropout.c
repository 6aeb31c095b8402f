/*
 * dropout.c - Dropout (opsets 1, 6, 7, 10, 12, 13), for inference.
 *
 * Inference (always before opset 12; from 12 when training_mode is absent or
 * false): output = input, and the optional mask output is all ones (bool from
 * opset 10, the input's type before). Deviation: opsets 1 and 6 default to
 * is_test = 0 ("training"); qkv treats every Dropout before opset 7 as in
 * test mode, as inference runtimes do.
 *
 * Training (opset 12+, training_mode true and ratio > 0): the reference
 * (onnx backend tests, numpy) draws u = np.random.uniform(0, 1, shape) after
 * np.random.seed(seed) and keeps x / (1 - ratio) where u >= ratio. qkv does
 * exactly that: MT19937 seeded like numpy's legacy RandomState(seed), two
 * 32-bit draws per element combined into a 53-bit double, in row-major
 * order, so the conformance tests match bit for bit. Without a `seed`
 * attribute seed 0 is used (deterministic: every run drops the same
 * elements; the spec leaves the seed to the implementation). float and
 * double only in training mode.
 *
 * Planning: the kernel is QKV_KERNEL_INPLACE on input 0 rather than
 * QKV_KERNEL_ALIAS: the planner skips compute for an aliased node, which
 * would leave the mask output unwritten and ignore a training_mode that is
 * only known at run time.
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "kernel_util.h"
#include "qkv.h"

#define FLOAT_TYPES (QKV_TYPES_FLOATS | QKV_T(FLOAT16) | QKV_T(BFLOAT16))

typedef struct dropout_state {
    int64_t opset;
    uint32_t seed;
} dropout_state;

static qkv_status dropout_init(const qkv_kernel *k, const qkv_host_api *host,
                               const qkv_node_ctx *node, void **state)
{
    (void)k;
    dropout_state *s = calloc(1, sizeof *s);
    if (!s)
        return NERR(host, node, QKV_ERR_OUT_OF_MEMORY, "kernel state");
    s->opset = host->node_opset(node);
    int64_t seed = 0;
    qkv_status st = host->attr_int(node, "seed", 0, &seed);
    if (st != QKV_OK) {
        free(s);
        return st;
    }
    /* numpy's legacy seeding takes the seed as a 32-bit unsigned value */
    s->seed = (uint32_t)seed;
    *state = s;
    return QKV_OK;
}

static void dropout_destroy(void *state) { free(state); }

/* ---- MT19937, as numpy's legacy RandomState ---------------------------------------- */

#define MT_N 624
#define MT_M 397

typedef struct mt19937 {
    uint32_t key[MT_N];
    int pos;
} mt19937;

static void mt_seed(mt19937 *m, uint32_t seed)
{
    for (int i = 0; i < MT_N; i++) {
        m->key[i] = seed;
        seed = 1812433253u * (seed ^ (seed >> 30)) + (uint32_t)i + 1u;
    }
    m->pos = MT_N;
}

static void mt_refill(mt19937 *m)
{
    for (int i = 0; i < MT_N; i++) {
        uint32_t y = (m->key[i] & 0x80000000u) | (m->key[(i + 1) % MT_N] & 0x7fffffffu);
        m->key[i] = m->key[(i + MT_M) % MT_N] ^ (y >> 1) ^ ((y & 1u) ? 0x9908b0dfu : 0u);
    }
    m->pos = 0;
}

static uint32_t mt_next(mt19937 *m)
{
    if (m->pos == MT_N)
        mt_refill(m);
    uint32_t y = m->key[m->pos++];
    y ^= y >> 11;
    y ^= (y << 7) & 0x9d2c5680u;
    y ^= (y << 15) & 0xefc60000u;
    y ^= y >> 18;
    return y;
}

/* A double in [0, 1) from 53 random bits (numpy's random_sample). */
static double mt_double(mt19937 *m)
{
    uint32_t a = mt_next(m) >> 5, b = mt_next(m) >> 6;
    return ((double)a * 67108864.0 + (double)b) / 9007199254740992.0;
}

/* ---- helpers ---------------------------------------------------------------------- */

static float half_to_float(uint16_t h)
{
    uint32_t sign = (uint32_t)(h & 0x8000u) << 16, e = (h >> 10) & 0x1fu, f = h & 0x3ffu;
    float v;
    if (e == 0)
        v = ldexpf((float)f, -24);
    else if (e == 31)
        v = f ? NAN : INFINITY;
    else
        v = ldexpf((float)(f | 0x400u), (int)e - 25);
    return sign ? -v : v;
}

/* Reads the scalar ratio input (float16/bfloat16/float/double) as double. */
static double read_ratio(const qkv_tensor *r)
{
    switch (r->dtype) {
    case QKV_DTYPE_FLOAT:
        return *(const float *)r->data;
    case QKV_DTYPE_DOUBLE:
        return *(const double *)r->data;
    case QKV_DTYPE_FLOAT16:
        return half_to_float(*(const uint16_t *)r->data);
    case QKV_DTYPE_BFLOAT16: {
        uint32_t bits = (uint32_t) * (const uint16_t *)r->data << 16;
        float f;
        memcpy(&f, &bits, sizeof f);
        return f;
    }
    default:
        return NAN; /* excluded by the descriptor's input types */
    }
}

/* Checks the optional ratio and training_mode inputs (0-D or one element)
 * when known; *training and *ratio get their values (false / 0.5 when
 * absent). *known false when a present one's value is not known. */
static qkv_status read_mode(const dropout_state *s, qkv_kernel_io *io, bool *training,
                            double *ratio, bool *known)
{
    *training = false;
    *ratio = 0.5;
    *known = true;
    if (s->opset < 12)
        return QKV_OK;
    for (size_t i = 1; i < 3; i++) {
        if (!qkv_present(io, i))
            continue;
        const qkv_tensor *t = &io->inputs[i];
        if (t->rank > 1 || (qkv_shape_known(t) && qkv_numel(t) != 1)) {
            char b[96];
            return KERR(io, QKV_ERR_SHAPE, "input %zu '%s' has shape %s, expected a scalar", i,
                        i == 1 ? "ratio" : "training_mode", qkv_dims_str(t, b, sizeof b));
        }
        if (!t->data) {
            *known = false;
            continue;
        }
        if (i == 1)
            *ratio = read_ratio(t);
        else
            *training = *(const uint8_t *)t->data != 0;
    }
    if (*known && *training && !(*ratio >= 0 && *ratio < 1))
        return KERR(io, QKV_ERR_INVALID_ARGUMENT,
                    "input 1 'ratio' is %g, expected a value in [0, 1) in training mode", *ratio);
    return QKV_OK;
}

/* ---- callbacks ---------------------------------------------------------------------- */

static qkv_status dropout_infer(void *state, qkv_kernel_io *io)
{
    const dropout_state *s = state;
    const qkv_tensor *x = &io->inputs[0];
    qkv_set_shape(&io->outputs[0], x->dtype, x->rank, x->dims);
    if (io->n_outputs > 1)
        qkv_set_shape(&io->outputs[1], s->opset >= 10 ? QKV_DTYPE_BOOL : x->dtype, x->rank,
                      x->dims);
    bool training, known;
    double ratio;
    return read_mode(s, io, &training, &ratio, &known);
}

/* The mask output, if present, is all ones of its type. */
static qkv_status fill_ones(qkv_kernel_io *io)
{
    if (io->n_outputs < 2 || !io->outputs[1].data)
        return QKV_OK;
    qkv_tensor *m = &io->outputs[1];
    size_t n = qkv_numel(m);
    switch (m->dtype) {
    case QKV_DTYPE_BOOL:
        memset(m->data, 1, n);
        break;
    case QKV_DTYPE_FLOAT:
        for (size_t i = 0; i < n; i++)
            ((float *)m->data)[i] = 1.0f;
        break;
    case QKV_DTYPE_DOUBLE:
        for (size_t i = 0; i < n; i++)
            ((double *)m->data)[i] = 1.0;
        break;
    case QKV_DTYPE_FLOAT16:
        for (size_t i = 0; i < n; i++)
            ((uint16_t *)m->data)[i] = 0x3c00u; /* 1.0 */
        break;
    case QKV_DTYPE_BFLOAT16:
        for (size_t i = 0; i < n; i++)
            ((uint16_t *)m->data)[i] = 0x3f80u; /* 1.0 */
        break;
    default:
        return KERR(io, QKV_ERR_TYPE, "output 1 'mask' has type %s, not supported",
                    qkv_dtype_name(m->dtype));
    }
    return QKV_OK;
}

/* y = mask ? x * scale : 0 with mask[i] = (u_i >= ratio), T float or double. */
#define DROPOUT_TRAIN(NAME, T)                                                                     \
    static void NAME(T *y, const T *x, uint8_t *mask, size_t n, double ratio, uint32_t seed)       \
    {                                                                                              \
        mt19937 m;                                                                                 \
        mt_seed(&m, seed);                                                                         \
        /* in T, as numpy computes 1 / (1 - r) for a float32 r */                                  \
        const T scale = (T)1 / ((T)1 - (T)ratio);                                                  \
        for (size_t i = 0; i < n; i++) {                                                           \
            bool keep = mt_double(&m) >= ratio;                                                    \
            y[i] = keep ? x[i] * scale : (T)0;                                                     \
            if (mask)                                                                              \
                mask[i] = keep;                                                                    \
        }                                                                                          \
    }

DROPOUT_TRAIN(train_f32, float)
DROPOUT_TRAIN(train_f64, double)

static qkv_status dropout_compute(const void *state, qkv_kernel_io *io)
{
    const dropout_state *s = state;
    const qkv_tensor *x = &io->inputs[0];
    qkv_tensor *y = &io->outputs[0];
    bool training, known;
    double ratio;
    qkv_status st = read_mode(s, io, &training, &ratio, &known);
    if (st != QKV_OK)
        return st;
    if (!training || ratio == 0) {
        if (y->data != x->data)
            memcpy(y->data, x->data, x->data_bytes);
        return fill_ones(io);
    }
    uint8_t *mask = io->n_outputs > 1 ? io->outputs[1].data : NULL;
    size_t n = qkv_numel(x);
    switch (x->dtype) {
    case QKV_DTYPE_FLOAT:
        train_f32(y->data, x->data, mask, n, ratio, s->seed);
        break;
    case QKV_DTYPE_DOUBLE:
        train_f64(y->data, x->data, mask, n, ratio, s->seed);
        break;
    default:
        return KERR(io, QKV_ERR_UNSUPPORTED,
                    "training mode is supported for float and double inputs, not %s",
                    qkv_dtype_name(x->dtype));
    }
    return QKV_OK;
}

static const qkv_kernel kernels[] = {
    {
        QKV_KERNEL_V1,
        .domain = "",
        .op_type = "Dropout",
        .since_version = 1,
        .until_version = 11,
        .min_inputs = 1,
        .max_inputs = 1,
        .min_outputs = 1,
        .max_outputs = 2,
        .n_input_types = 1,
        .input_types = {FLOAT_TYPES},
        .flags = QKV_KERNEL_INPLACE,
        .inplace_input = 0,
        .init = dropout_init,
        .infer = dropout_infer,
        .compute = dropout_compute,
        .destroy = dropout_destroy,
    },
    {
        QKV_KERNEL_V1,
        .domain = "",
        .op_type = "Dropout",
        .since_version = 12,
        .min_inputs = 1,
        .max_inputs = 3,
        .min_outputs = 1,
        .max_outputs = 2,
        .n_input_types = 3,
        .input_types = {FLOAT_TYPES, FLOAT_TYPES, QKV_T(BOOL)},
        .flags = QKV_KERNEL_INPLACE,
        .inplace_input = 0,
        .init = dropout_init,
        .infer = dropout_infer,
        .compute = dropout_compute,
        .destroy = dropout_destroy,
    },
};

/* The dropout family: Dropout. */
const qkv_kernel *qkv_ops_dropout(size_t *count)
{
    *count = sizeof kernels / sizeof kernels[0];
    return kernels;
}
