/*
 * half.c - bulk float16/bfloat16 <-> float32 conversions (see half.h).
 *
 * float16 uses the F16C instructions (vcvtph2ps / vcvtps2ph, 8 elements at
 * a time) when the CPU reports them; the build has no -march flags, so those
 * functions are compiled for that target alone and chosen at run time from
 * qkv_cpu_features_get() (CPUID, detected once per process and capped by
 * QKV_ISA; clang's __builtin_cpu_supports does not know "f16c"). Elsewhere, and
 * for the tail of each array, the scalar conversions of half.h. bfloat16 is
 * a shift (widening) or an add-and-shift (narrowing), plain loops.
 */
#include "half.h"

#include "cpu_features.h"
#include "kernel_util.h"
#include "qkv.h"

#if defined(__GNUC__) && (defined(__x86_64__) || defined(__i386__))
#define QKV_HAVE_F16C_PATH 1
#include <immintrin.h>
#endif

/* Elements per parallel_for unit of the whole-tensor conversions, and the
 * size below which one thread converts everything (conversion is
 * memory-bound: splitting small arrays costs more than it saves). */
#define PAR_BLOCK ((size_t)1 << 14)
#define PAR_MIN ((size_t)1 << 16)

#ifdef QKV_HAVE_F16C_PATH
__attribute__((target("avx,f16c"))) static void f16_to_f32_f16c(float *dst, const uint16_t *src,
                                                                size_t n)
{
    size_t j = 0;
    for (; j + 8 <= n; j += 8)
        _mm256_storeu_ps(dst + j, _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)(src + j))));
    for (; j < n; j++)
        dst[j] = qkv_f16_to_f32(src[j]);
}

__attribute__((target("avx,f16c"))) static void f32_to_f16_f16c(uint16_t *dst, const float *src,
                                                                size_t n)
{
    size_t j = 0;
    for (; j + 8 <= n; j += 8)
        _mm_storeu_si128((__m128i *)(dst + j),
                         _mm256_cvtps_ph(_mm256_loadu_ps(src + j), _MM_FROUND_TO_NEAREST_INT));
    for (; j < n; j++)
        dst[j] = qkv_f32_to_f16(src[j]);
}

static bool have_f16c(void)
{
    const uint64_t need = QKV_CPU_AVX | QKV_CPU_F16C;
    return (qkv_cpu_features_get() & need) == need;
}
#endif

void qkv_half_to_f32(float *restrict dst, const uint16_t *restrict src, qkv_dtype t, size_t n)
{
    if (t == QKV_DTYPE_BFLOAT16) {
        for (size_t j = 0; j < n; j++)
            dst[j] = qkv_bf16_to_f32(src[j]);
        return;
    }
#ifdef QKV_HAVE_F16C_PATH
    if (n >= 8 && have_f16c()) {
        f16_to_f32_f16c(dst, src, n);
        return;
    }
#endif
    for (size_t j = 0; j < n; j++)
        dst[j] = qkv_f16_to_f32(src[j]);
}

void qkv_f32_to_half(uint16_t *restrict dst, const float *restrict src, qkv_dtype t, size_t n)
{
    if (t == QKV_DTYPE_BFLOAT16) {
        for (size_t j = 0; j < n; j++)
            dst[j] = qkv_f32_to_bf16(src[j]);
        return;
    }
#ifdef QKV_HAVE_F16C_PATH
    if (n >= 8 && have_f16c()) {
        f32_to_f16_f16c(dst, src, n);
        return;
    }
#endif
    for (size_t j = 0; j < n; j++)
        dst[j] = qkv_f32_to_f16(src[j]);
}

void qkv_half_map(uint16_t *out, const uint16_t *in, qkv_dtype t, size_t n, qkv_f32_map_fn fn,
                  const void *ctx)
{
    float buf[QKV_HALF_CHUNK];
    for (size_t j0 = 0; j0 < n; j0 += QKV_HALF_CHUNK) {
        size_t m = n - j0 < QKV_HALF_CHUNK ? n - j0 : QKV_HALF_CHUNK;
        qkv_half_to_f32(buf, in + j0, t, m);
        fn(buf, buf, m, ctx);
        qkv_f32_to_half(out + j0, buf, t, m);
    }
}

/* ---- whole tensors, in parallel -------------------------------------------- */

typedef struct conv_job {
    void *dst;
    const void *src;
    qkv_dtype t;
    size_t n;
    bool widen; /* half -> float32 */
} conv_job;

static void conv_range(void *arg, size_t begin, size_t end)
{
    const conv_job *j = arg;
    size_t lo = begin * PAR_BLOCK, hi = end * PAR_BLOCK < j->n ? end * PAR_BLOCK : j->n;
    if (j->widen)
        qkv_half_to_f32((float *)j->dst + lo, (const uint16_t *)j->src + lo, j->t, hi - lo);
    else
        qkv_f32_to_half((uint16_t *)j->dst + lo, (const float *)j->src + lo, j->t, hi - lo);
}

static void conv_par(qkv_kernel_io *io, conv_job *j)
{
    if (j->n < PAR_MIN || !io) {
        if (j->widen)
            qkv_half_to_f32(j->dst, j->src, j->t, j->n);
        else
            qkv_f32_to_half(j->dst, j->src, j->t, j->n);
        return;
    }
    io->host->parallel_for(io->host_ctx, (j->n + PAR_BLOCK - 1) / PAR_BLOCK, conv_range, j);
}

void qkv_half_to_f32_par(qkv_kernel_io *io, float *dst, const uint16_t *src, qkv_dtype t, size_t n)
{
    conv_job j = {.dst = dst, .src = src, .t = t, .n = n, .widen = true};
    conv_par(io, &j);
}

void qkv_f32_to_half_par(qkv_kernel_io *io, uint16_t *dst, const float *src, qkv_dtype t, size_t n)
{
    conv_job j = {.dst = dst, .src = src, .t = t, .n = n, .widen = false};
    conv_par(io, &j);
}

/* ---- float maps ---------------------------------------------------------------- */

/* Elements per parallel unit of qkv_float_map_run, and the size below which
 * it runs on the calling thread. */
#define MAP_BLOCK ((size_t)1 << 13)
#define MAP_PAR_MIN ((size_t)1 << 15)

typedef struct map_job {
    const qkv_float_map *map;
    const void *x;
    void *out;
    qkv_dtype t;
    size_t n;
} map_job;

static void map_range(void *arg, size_t begin, size_t end)
{
    const map_job *j = arg;
    size_t lo = begin * MAP_BLOCK, hi = end * MAP_BLOCK < j->n ? end * MAP_BLOCK : j->n;
    switch (j->t) {
    case QKV_DTYPE_FLOAT:
        j->map->f32((float *)j->out + lo, (const float *)j->x + lo, hi - lo, j->map->ctx);
        break;
    case QKV_DTYPE_DOUBLE:
        j->map->f64((double *)j->out + lo, (const double *)j->x + lo, hi - lo, j->map->ctx);
        break;
    default: /* FLOAT16, BFLOAT16: checked by the caller */
        qkv_half_map((uint16_t *)j->out + lo, (const uint16_t *)j->x + lo, j->t, hi - lo,
                     j->map->f32, j->map->ctx);
        break;
    }
}

qkv_status qkv_float_map_run(qkv_kernel_io *io, const qkv_tensor *x, qkv_tensor *out,
                             const qkv_float_map *map)
{
    switch (x->dtype) {
    case QKV_DTYPE_FLOAT:
    case QKV_DTYPE_DOUBLE:
    case QKV_DTYPE_FLOAT16:
    case QKV_DTYPE_BFLOAT16:
        break;
    default:
        return KERR(io, QKV_ERR_TYPE, "input 0 has type %s, not supported",
                    qkv_dtype_name(x->dtype));
    }
    map_job j = {.map = map, .x = x->data, .out = out->data, .t = x->dtype, .n = qkv_numel(x)};
    size_t units = (j.n + MAP_BLOCK - 1) / MAP_BLOCK;
    if (j.n >= MAP_PAR_MIN)
        io->host->parallel_for(io->host_ctx, units, map_range, &j);
    else if (j.n > 0)
        map_range(&j, 0, units);
    return QKV_OK;
}

/* ---- kernels computed in float32 ------------------------------------------------ */

/* Rounds up to a whole 64-byte line, so every float32 copy stays aligned. */
static bool align64(size_t n, size_t *out)
{
    if (n > SIZE_MAX - 63)
        return false;
    *out = (n + 63) / 64 * 64;
    return true;
}

bool qkv_half_scratch_bytes(const qkv_kernel_io *io, size_t float_scratch, size_t *bytes)
{
    size_t total;
    *bytes = 0;
    if (!align64(float_scratch, &total))
        return false;
    for (size_t k = 0; k <= io->n_inputs; k++) {
        const qkv_tensor *t = k < io->n_inputs ? &io->inputs[k] : &io->outputs[0];
        if (k < io->n_inputs && !qkv_present(io, k))
            continue;
        size_t b;
        if (__builtin_mul_overflow(qkv_numel(t), sizeof(float), &b) || !align64(b, &b) ||
            __builtin_add_overflow(total, b, &total))
            return false;
    }
    *bytes = total;
    return true;
}

qkv_status qkv_half_run_as_f32(const void *state, qkv_kernel_io *io, size_t float_scratch,
                               qkv_kernel_compute_fn fn)
{
    qkv_tensor ins[QKV_KERNEL_MAX_TYPED_IO], out = io->outputs[0];
    if (io->n_inputs > QKV_KERNEL_MAX_TYPED_IO)
        return KERR(io, QKV_ERR_INTERNAL, "%zu inputs, at most %d", io->n_inputs,
                    QKV_KERNEL_MAX_TYPED_IO);
    size_t off = 0; /* prepare checked that none of these sums overflows */
    align64(float_scratch, &off);
    unsigned char *base = io->scratch;
    for (size_t k = 0; k < io->n_inputs; k++) {
        ins[k] = io->inputs[k];
        if (!qkv_present(io, k))
            continue;
        size_t n = qkv_numel(&ins[k]), b = 0;
        float *f = (float *)(void *)(base + off);
        qkv_half_to_f32_par(io, f, ins[k].data, ins[k].dtype, n);
        ins[k].dtype = QKV_DTYPE_FLOAT;
        ins[k].data = f;
        ins[k].data_bytes = n * sizeof(float);
        align64(n * sizeof(float), &b);
        off += b;
    }
    size_t ny = qkv_numel(&out);
    out.dtype = QKV_DTYPE_FLOAT;
    out.data = base + off;
    out.data_bytes = ny * sizeof(float);
    qkv_kernel_io fio = *io;
    fio.inputs = ins;
    fio.outputs = &out;
    fio.n_outputs = 1;
    fio.scratch_bytes = float_scratch;
    qkv_status st = fn(state, &fio);
    if (st == QKV_OK)
        qkv_f32_to_half_par(io, io->outputs[0].data, out.data, io->outputs[0].dtype, ny);
    return st;
}
