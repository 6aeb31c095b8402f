/*
 * elementwise.c - the broadcast iteration engine and the chunked dtype
 * conversions shared by the elementwise kernels (see elementwise.h).
 */
#include "elementwise.h"

#include "qkv.h"

/* Output elements per parallel work unit: big enough that the per-unit
 * bookkeeping (index decomposition, an indirect call per row) is noise. */
#define EW_BLOCK 16384

size_t qkv_ew_elem_bytes(qkv_dtype t)
{
    switch (t) {
    case QKV_DTYPE_STRING:
    case QKV_DTYPE_UNDEFINED:
        return 0;
    default: {
        size_t bits = qkv_dtype_bits(t);
        return bits % 8 ? 0 : bits / 8;
    }
    }
}

void qkv_ew_plan_init(qkv_ew_plan *p, const qkv_tensor *out, const qkv_tensor *const *ins,
                      size_t n_in)
{
    size_t full[QKV_EW_MAX_INPUTS][QKV_MAX_RANK];
    size_t dims[QKV_MAX_RANK];
    int32_t r = 0; /* collapsed rank */

    memset(p, 0, sizeof *p);
    p->n_in = n_in;
    p->numel = qkv_numel(out);
    for (size_t i = 0; i < n_in; i++)
        qkv_broadcast_strides(ins[i], out, full[i]);

    /* Drop size-1 dims (nothing moves along them) and merge a dim into the
     * previous collapsed one when every input continues seamlessly: its
     * stride there equals its stride here times this dim (true both for a
     * contiguous input and for an input broadcast along both). */
    size_t st[QKV_EW_MAX_INPUTS][QKV_MAX_RANK];
    for (int32_t k = 0; k < out->rank; k++) {
        size_t d = (size_t)out->dims[k];
        if (d == 1)
            continue;
        bool merge = r > 0;
        for (size_t i = 0; i < n_in && merge; i++)
            if (st[i][r - 1] != full[i][k] * d)
                merge = false;
        if (merge) {
            dims[r - 1] *= d;
            for (size_t i = 0; i < n_in; i++)
                st[i][r - 1] = full[i][k];
        } else {
            dims[r] = d;
            for (size_t i = 0; i < n_in; i++)
                st[i][r] = full[i][k];
            r++;
        }
    }
    if (r == 0) { /* a scalar, or only 1-sized dims: one row of one element */
        p->inner = 1;
        p->outer_rank = 0;
        return;
    }
    p->inner = dims[r - 1];
    p->outer_rank = r - 1;
    for (size_t i = 0; i < n_in; i++) {
        /* the innermost kept dim of a non-broadcast input has stride 1 */
        p->inner_step[i] = st[i][r - 1] ? 1u : 0u;
        for (int32_t k = 0; k < r - 1; k++)
            p->outer_strides[i][k] = st[i][k];
    }
    for (int32_t k = 0; k < r - 1; k++)
        p->outer_dims[k] = dims[k];
}

typedef struct ew_job {
    const qkv_ew_plan *p;
    unsigned char *out;
    size_t out_elem;
    const unsigned char *ins[QKV_EW_MAX_INPUTS];
    size_t in_elem[QKV_EW_MAX_INPUTS];
    qkv_ew_row_fn fn;
    const void *ctx;
} ew_job;

/* One row segment: out[0..n) with inputs at in (already offset). */
static void run_segment(const ew_job *j, unsigned char *out, const void *const *in, size_t n)
{
    const qkv_ew_plan *p = j->p;
    bool any_step = false;
    for (size_t i = 0; i < p->n_in; i++)
        any_step |= p->inner_step[i] != 0;
    if (any_step || n == 1) {
        j->fn(out, in, p->inner_step, n, j->ctx);
        return;
    }
    /* every operand is constant along the row: compute one element and
     * replicate it, doubling the copied span */
    j->fn(out, in, p->inner_step, 1, j->ctx);
    size_t done = 1;
    while (done < n) {
        size_t c = done < n - done ? done : n - done;
        memcpy(out + done * j->out_elem, out, c * j->out_elem);
        done += c;
    }
}

/* Output elements [e0, e1). */
static void run_range(const ew_job *j, size_t e0, size_t e1)
{
    const qkv_ew_plan *p = j->p;
    size_t inner = p->inner;
    size_t row = e0 / inner, col = e0 % inner;
    size_t idx[QKV_MAX_RANK];
    size_t off[QKV_EW_MAX_INPUTS] = {0};

    /* decompose the starting row into outer indices and input offsets */
    size_t rem = row;
    for (int32_t k = p->outer_rank - 1; k >= 0; k--) {
        idx[k] = rem % p->outer_dims[k];
        rem /= p->outer_dims[k];
        for (size_t i = 0; i < p->n_in; i++)
            off[i] += idx[k] * p->outer_strides[i][k];
    }
    while (e0 < e1) {
        size_t n = inner - col;
        if (n > e1 - e0)
            n = e1 - e0;
        const void *in[QKV_EW_MAX_INPUTS];
        for (size_t i = 0; i < p->n_in; i++)
            in[i] = j->ins[i] + (off[i] + col * p->inner_step[i]) * j->in_elem[i];
        run_segment(j, j->out + e0 * j->out_elem, in, n);
        e0 += n;
        col = 0;
        if (e0 >= e1)
            break;
        /* next row: odometer over the outer dims, offsets kept incrementally */
        for (int32_t k = p->outer_rank - 1; k >= 0; k--) {
            if (++idx[k] < p->outer_dims[k]) {
                for (size_t i = 0; i < p->n_in; i++)
                    off[i] += p->outer_strides[i][k];
                break;
            }
            for (size_t i = 0; i < p->n_in; i++)
                off[i] -= (p->outer_dims[k] - 1) * p->outer_strides[i][k];
            idx[k] = 0;
        }
    }
}

static void run_blocks(void *arg, size_t begin, size_t end)
{
    const ew_job *j = arg;
    size_t e0 = begin * EW_BLOCK, e1 = end * EW_BLOCK;
    if (e1 > j->p->numel)
        e1 = j->p->numel;
    run_range(j, e0, e1);
}

void qkv_ew_run(qkv_kernel_io *io, const qkv_ew_plan *p, void *out, size_t out_elem,
                const void *const *ins, const size_t *in_elem, qkv_ew_row_fn fn, const void *ctx)
{
    ew_job j = {.p = p, .out = out, .out_elem = out_elem, .fn = fn, .ctx = ctx};
    for (size_t i = 0; i < p->n_in; i++) {
        j.ins[i] = ins[i];
        j.in_elem[i] = in_elem[i];
    }
    if (p->numel == 0)
        return;
    qkv_run_range_min(io, (p->numel + EW_BLOCK - 1) / EW_BLOCK, p->numel, QKV_EW_PARALLEL_MIN,
                      run_blocks, &j);
}

typedef struct flat_job {
    size_t n;
    qkv_range_fn fn;
    void *arg;
} flat_job;

static void run_flat_blocks(void *arg, size_t begin, size_t end)
{
    const flat_job *j = arg;
    size_t e1 = end * EW_BLOCK;
    j->fn(j->arg, begin * EW_BLOCK, e1 < j->n ? e1 : j->n);
}

void qkv_ew_run_flat(qkv_kernel_io *io, size_t n, qkv_range_fn fn, void *arg)
{
    if (n == 0)
        return;
    flat_job j = {.n = n, .fn = fn, .arg = arg};
    qkv_run_range_min(io, (n + EW_BLOCK - 1) / EW_BLOCK, n, QKV_EW_PARALLEL_MIN, run_flat_blocks,
                      &j);
}

/* ---- conversions ----------------------------------------------------------- */

#define LOAD_AS_F64(T)                                                                             \
    do {                                                                                           \
        const T *s = src;                                                                          \
        for (size_t j = 0; j < n; j++)                                                             \
            dst[j] = (double)s[j * step];                                                          \
    } while (0)

bool qkv_ew_load_f64(double *dst, const void *src, qkv_dtype t, unsigned step, size_t n)
{
    switch (t) {
    case QKV_DTYPE_FLOAT:
        LOAD_AS_F64(float);
        return true;
    case QKV_DTYPE_DOUBLE:
        LOAD_AS_F64(double);
        return true;
    case QKV_DTYPE_INT8:
        LOAD_AS_F64(int8_t);
        return true;
    case QKV_DTYPE_INT16:
        LOAD_AS_F64(int16_t);
        return true;
    case QKV_DTYPE_INT32:
        LOAD_AS_F64(int32_t);
        return true;
    case QKV_DTYPE_INT64:
        LOAD_AS_F64(int64_t);
        return true;
    case QKV_DTYPE_UINT8:
        LOAD_AS_F64(uint8_t);
        return true;
    case QKV_DTYPE_UINT16:
        LOAD_AS_F64(uint16_t);
        return true;
    case QKV_DTYPE_UINT32:
        LOAD_AS_F64(uint32_t);
        return true;
    case QKV_DTYPE_UINT64:
        LOAD_AS_F64(uint64_t);
        return true;
    case QKV_DTYPE_BOOL:
        LOAD_AS_F64(uint8_t);
        return true;
    case QKV_DTYPE_FLOAT16: {
        const uint16_t *s = src;
        for (size_t j = 0; j < n; j++)
            dst[j] = qkv_f16_to_f32(s[j * step]);
        return true;
    }
    case QKV_DTYPE_BFLOAT16: {
        const uint16_t *s = src;
        for (size_t j = 0; j < n; j++)
            dst[j] = qkv_bf16_to_f32(s[j * step]);
        return true;
    }
    default:
        return false;
    }
}

/* Integers: truncate (saturating at the 64-bit range of the target's
 * signedness), then wrap to the width through the unsigned type (the
 * conversion of an out-of-range unsigned to a signed type is
 * implementation-defined, modulo 2^N on every compiler qkv supports). */
#define STORE_INT_FROM_F64(T, U, CONV)                                                             \
    do {                                                                                           \
        T *d = dst;                                                                                \
        for (size_t j = 0; j < n; j++)                                                             \
            d[j] = (T)(U)CONV(src[j]);                                                             \
    } while (0)

bool qkv_ew_store_f64(void *dst, qkv_dtype t, const double *src, size_t n)
{
    switch (t) {
    case QKV_DTYPE_FLOAT: {
        float *d = dst;
        for (size_t j = 0; j < n; j++)
            d[j] = qkv_f64_to_f32(src[j]);
        return true;
    }
    case QKV_DTYPE_DOUBLE:
        memcpy(dst, src, n * sizeof(double));
        return true;
    case QKV_DTYPE_INT8:
        STORE_INT_FROM_F64(int8_t, uint8_t, qkv_f64_to_i64);
        return true;
    case QKV_DTYPE_INT16:
        STORE_INT_FROM_F64(int16_t, uint16_t, qkv_f64_to_i64);
        return true;
    case QKV_DTYPE_INT32:
        STORE_INT_FROM_F64(int32_t, uint32_t, qkv_f64_to_i64);
        return true;
    case QKV_DTYPE_INT64:
        STORE_INT_FROM_F64(int64_t, uint64_t, qkv_f64_to_i64);
        return true;
    case QKV_DTYPE_UINT8:
        STORE_INT_FROM_F64(uint8_t, uint8_t, qkv_f64_to_u64);
        return true;
    case QKV_DTYPE_UINT16:
        STORE_INT_FROM_F64(uint16_t, uint16_t, qkv_f64_to_u64);
        return true;
    case QKV_DTYPE_UINT32:
        STORE_INT_FROM_F64(uint32_t, uint32_t, qkv_f64_to_u64);
        return true;
    case QKV_DTYPE_UINT64:
        STORE_INT_FROM_F64(uint64_t, uint64_t, qkv_f64_to_u64);
        return true;
    case QKV_DTYPE_BOOL: {
        uint8_t *d = dst;
        for (size_t j = 0; j < n; j++)
            d[j] = src[j] != 0; /* NaN is true, as in numpy */
        return true;
    }
    case QKV_DTYPE_FLOAT16: {
        uint16_t *d = dst;
        for (size_t j = 0; j < n; j++)
            d[j] = qkv_f64_to_f16(src[j]);
        return true;
    }
    case QKV_DTYPE_BFLOAT16: {
        uint16_t *d = dst;
        for (size_t j = 0; j < n; j++)
            d[j] = qkv_f64_to_bf16(src[j]);
        return true;
    }
    default:
        return false;
    }
}

/* Both are the bulk conversions of half.c (F16C where the CPU has it). */
void qkv_ew_half_to_f32(float *dst, const uint16_t *src, qkv_dtype t, size_t n)
{
    qkv_half_to_f32(dst, src, t, n);
}

void qkv_ew_f32_to_half(uint16_t *dst, const float *src, qkv_dtype t, size_t n)
{
    qkv_f32_to_half(dst, src, t, n);
}
