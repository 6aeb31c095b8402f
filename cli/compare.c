/*
 * compare.c - output comparison for `qkv test` (see compare.h).
 *
 * Integers are compared as integers (int64 and uint64 exactly, never through
 * double, which would round above 2^53); floating types through double.
 */
#include <inttypes.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "compare.h"
#include "error.h"
#include "size_math.h"
#include "tensor_io.h"

int qkv_cli_dtype_numeric(qkv_dtype dtype)
{
    switch (dtype) {
    case QKV_DTYPE_FLOAT:
    case QKV_DTYPE_DOUBLE:
    case QKV_DTYPE_FLOAT16:
    case QKV_DTYPE_BFLOAT16:
    case QKV_DTYPE_INT8:
    case QKV_DTYPE_INT16:
    case QKV_DTYPE_INT32:
    case QKV_DTYPE_INT64:
    case QKV_DTYPE_UINT8:
    case QKV_DTYPE_UINT16:
    case QKV_DTYPE_UINT32:
    case QKV_DTYPE_UINT64:
    case QKV_DTYPE_BOOL:
        return 1;
    default:
        return 0;
    }
}

static int dtype_is_float(qkv_dtype dtype)
{
    return dtype == QKV_DTYPE_FLOAT || dtype == QKV_DTYPE_DOUBLE || dtype == QKV_DTYPE_FLOAT16 ||
           dtype == QKV_DTYPE_BFLOAT16 || dtype == QKV_DTYPE_COMPLEX64 ||
           dtype == QKV_DTYPE_COMPLEX128;
}

/* Reads scalar i (for complex: part i of the interleaved pairs). */
static double float_at(const qkv_tensor *t, size_t i)
{
    const unsigned char *p = t->data;
    switch (t->dtype) {
    case QKV_DTYPE_FLOAT:
    case QKV_DTYPE_COMPLEX64: {
        float v;
        memcpy(&v, p + i * 4, 4);
        return v;
    }
    case QKV_DTYPE_DOUBLE:
    case QKV_DTYPE_COMPLEX128: {
        double v;
        memcpy(&v, p + i * 8, 8);
        return v;
    }
    case QKV_DTYPE_FLOAT16:
    case QKV_DTYPE_BFLOAT16: {
        uint16_t h;
        memcpy(&h, p + i * 2, 2);
        return t->dtype == QKV_DTYPE_FLOAT16 ? qkv_cli_f16_to_f32(h) : qkv_cli_bf16_to_f32(h);
    }
    default:
        return 0.0;
    }
}

/* Integer element i as int64 (uint64 above INT64_MAX wraps; compared
 * separately). */
static int64_t int_at(const qkv_tensor *t, size_t i)
{
    const unsigned char *p = t->data;
    switch (t->dtype) {
    case QKV_DTYPE_BOOL:
    case QKV_DTYPE_UINT8:
        return p[i];
    case QKV_DTYPE_INT8:
        return (int8_t)p[i];
    case QKV_DTYPE_INT16: {
        int16_t v;
        memcpy(&v, p + i * 2, 2);
        return v;
    }
    case QKV_DTYPE_UINT16: {
        uint16_t v;
        memcpy(&v, p + i * 2, 2);
        return v;
    }
    case QKV_DTYPE_INT32: {
        int32_t v;
        memcpy(&v, p + i * 4, 4);
        return v;
    }
    case QKV_DTYPE_UINT32: {
        uint32_t v;
        memcpy(&v, p + i * 4, 4);
        return v;
    }
    case QKV_DTYPE_INT64:
    case QKV_DTYPE_UINT64: {
        int64_t v;
        memcpy(&v, p + i * 8, 8);
        return v;
    }
    default:
        return 0;
    }
}

double qkv_cli_element(const qkv_tensor *t, size_t i, int *is_float)
{
    int f = dtype_is_float(t->dtype);
    if (is_float)
        *is_float = f;
    if (f) {
        if (t->dtype == QKV_DTYPE_COMPLEX64 || t->dtype == QKV_DTYPE_COMPLEX128)
            return float_at(t, 2 * i);
        return float_at(t, i);
    }
    if (t->dtype == QKV_DTYPE_UINT64)
        return (double)(uint64_t)int_at(t, i);
    return (double)int_at(t, i);
}

static void set_msg(qkv_cli_compare_result *r, const char *fmt, ...) QKV_PRINTF(2, 3);
static void set_msg(qkv_cli_compare_result *r, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(r->message, sizeof r->message, fmt, ap);
    va_end(ap);
}

static void dims_str(const qkv_tensor *t, char *buf, size_t cap)
{
    size_t len = 0;
    int w = snprintf(buf, cap, "[");
    len = (size_t)w;
    for (int32_t k = 0; k < t->rank && len < cap; k++) {
        w = snprintf(buf + len, cap - len, "%s%" PRId64, k ? ", " : "", t->dims[k]);
        if (w > 0)
            len += (size_t)w;
    }
    if (len < cap)
        snprintf(buf + len, cap - len, "]");
}

/* Element index `flat` of shape t as "[1, 2]". */
static void index_str(const qkv_tensor *t, size_t flat, char *buf, size_t cap)
{
    qkv_tensor idx = {.rank = t->rank};
    for (int32_t k = t->rank - 1; k >= 0; k--) {
        size_t d = (size_t)t->dims[k];
        idx.dims[k] = d ? (int64_t)(flat % d) : 0;
        flat = d ? flat / d : 0;
    }
    dims_str(&idx, buf, cap);
}

static int float_close(double a, double e, double rtol, double atol)
{
    if (isnan(e) || isnan(a))
        return isnan(e) && isnan(a);
    if (isinf(e) || isinf(a))
        return a == e;
    return fabs(a - e) <= atol + rtol * fabs(e);
}

/* How bad a mismatch is, for picking the worst one: +inf for NaN/inf. */
static double badness(double a, double e)
{
    if (isnan(a) || isnan(e) || isinf(a) || isinf(e))
        return INFINITY;
    return fabs(a - e);
}

/* Dtype, shape and data size: 1 with *n elements and *need bytes when the
 * tensors can be compared element by element, else 0 with r->message set. */
static int check_layout(const qkv_tensor *got, const qkv_tensor *expected,
                        qkv_cli_compare_result *r, size_t *n, size_t *need)
{
    char a[160], b[160];
    *n = *need = 0;
    if (got->dtype != expected->dtype) {
        set_msg(r, "dtype %s, expected %s", qkv_dtype_name(got->dtype),
                qkv_dtype_name(expected->dtype));
        return 0;
    }
    int same_shape = got->rank == expected->rank && got->rank >= 0 && got->rank <= QKV_MAX_RANK;
    for (int32_t k = 0; same_shape && k < got->rank; k++)
        same_shape = got->dims[k] == expected->dims[k];
    if (!same_shape) {
        if (got->rank < 0 || got->rank > QKV_MAX_RANK)
            snprintf(a, sizeof a, "(rank %d)", (int)got->rank);
        else
            dims_str(got, a, sizeof a);
        dims_str(expected, b, sizeof b);
        set_msg(r, "shape %s, expected %s", a, b);
        return 0;
    }
    if (!qkv_shape_elements(expected->dims, expected->rank, n) ||
        !qkv_dtype_storage_bytes(expected->dtype, *n, need)) {
        set_msg(r, "%s tensors of this shape cannot be compared", qkv_dtype_name(got->dtype));
        return 0;
    }
    if (got->data_bytes != *need || expected->data_bytes != *need ||
        (*need && (!got->data || !expected->data))) {
        set_msg(r, "%zu data bytes, expected %zu (shape needs %zu)", got->data_bytes,
                expected->data_bytes, *need);
        return 0;
    }
    return 1;
}

/* Floating types (both parts of complex ones) within rtol/atol; n > 0. */
static int compare_floats(const qkv_tensor *got, const qkv_tensor *expected, size_t n, double rtol,
                          double atol, qkv_cli_compare_result *r)
{
    qkv_dtype dt = got->dtype;
    int complex = dt == QKV_DTYPE_COMPLEX64 || dt == QKV_DTYPE_COMPLEX128;
    size_t parts = complex ? 2 * n : n, worst = SIZE_MAX;
    double worst_bad = -1.0;
    for (size_t i = 0; i < parts; i++) {
        double x = float_at(got, i), e = float_at(expected, i);
        if (!isnan(x) && !isnan(e) && !isinf(x) && !isinf(e) && fabs(x - e) > r->max_abs_diff)
            r->max_abs_diff = fabs(x - e);
        if (float_close(x, e, rtol, atol))
            continue;
        /* a complex element counts once even if both parts differ */
        if (!complex || i % 2 == 0 ||
            float_close(float_at(got, i - 1), float_at(expected, i - 1), rtol, atol))
            r->mismatches++;
        double bad = badness(x, e);
        if (bad > worst_bad) {
            worst_bad = bad;
            worst = i;
        }
    }
    r->match = !r->mismatches;
    if (r->match)
        return 1;
    char a[160];
    double x = float_at(got, worst), e = float_at(expected, worst);
    index_str(got, complex ? worst / 2 : worst, a, sizeof a);
    set_msg(r, "worst at %s%s got %.7g expected %.7g (abs %.1e; %zu of %zu elements differ)", a,
            complex ? (worst % 2 ? " (imag)" : " (real)") : "", x, e, fabs(x - e), r->mismatches,
            n);
    return 0;
}

/* Integers and bool: exact; n > 0. */
static int compare_ints(const qkv_tensor *got, const qkv_tensor *expected, size_t n,
                        qkv_cli_compare_result *r)
{
    qkv_dtype dt = got->dtype;
    size_t worst = SIZE_MAX;
    double worst_bad = -1.0;
    for (size_t i = 0; i < n; i++) {
        int64_t x = int_at(got, i), e = int_at(expected, i);
        if (x == e)
            continue;
        r->mismatches++;
        /* |x - e| without overflow, as a double (only used to rank) */
        double bad = fabs((double)x - (double)e);
        if (dt == QKV_DTYPE_UINT64)
            bad = fabs((double)(uint64_t)x - (double)(uint64_t)e);
        if (bad > worst_bad) {
            worst_bad = bad;
            worst = i;
        }
    }
    r->match = !r->mismatches;
    if (r->match)
        return 1;
    char a[160];
    int64_t x = int_at(got, worst), e = int_at(expected, worst);
    index_str(got, worst, a, sizeof a);
    if (dt == QKV_DTYPE_UINT64)
        set_msg(r, "worst at %s got %" PRIu64 " expected %" PRIu64 " (%zu of %zu elements differ)",
                a, (uint64_t)x, (uint64_t)e, r->mismatches, n);
    else
        set_msg(r, "worst at %s got %" PRId64 " expected %" PRId64 " (%zu of %zu elements differ)",
                a, x, e, r->mismatches, n);
    return 0;
}

/* Strings: byte-equal (NULL reads as ""); n > 0. */
static int compare_strings(const qkv_tensor *got, const qkv_tensor *expected, size_t n,
                           qkv_cli_compare_result *r)
{
    char *const *gs = got->data, *const *es = expected->data;
    size_t first = SIZE_MAX;
    for (size_t i = 0; i < n; i++) {
        const char *x = gs[i] ? gs[i] : "", *e = es[i] ? es[i] : "";
        if (strcmp(x, e) == 0)
            continue;
        if (!r->mismatches++)
            first = i;
    }
    r->match = !r->mismatches;
    if (r->match)
        return 1;
    char a[160];
    index_str(got, first, a, sizeof a);
    set_msg(r,
            "first difference at %s got \"%.60s\" expected \"%.60s\" (%zu of %zu elements differ)",
            a, gs[first] ? gs[first] : "", es[first] ? es[first] : "", r->mismatches, n);
    return 0;
}

/* Other types (float8, sub-byte, ...): the `need` stored bytes must be equal. */
static int compare_bytes(const qkv_tensor *got, const qkv_tensor *expected, size_t need,
                         qkv_cli_compare_result *r)
{
    const unsigned char *gp = got->data, *ep = expected->data;
    size_t first = SIZE_MAX;
    for (size_t i = 0; i < need; i++) {
        if (gp[i] == ep[i])
            continue;
        if (!r->mismatches++)
            first = i;
    }
    r->match = !r->mismatches;
    if (r->match)
        return 1;
    set_msg(
        r,
        "%s data differs: first at byte %zu got 0x%02x expected 0x%02x (%zu of %zu bytes differ)",
        qkv_dtype_name(got->dtype), first, gp[first], ep[first], r->mismatches, need);
    return 0;
}

int qkv_cli_compare(const qkv_tensor *got, const qkv_tensor *expected, double rtol, double atol,
                    qkv_cli_compare_result *r)
{
    memset(r, 0, sizeof *r);
    size_t n, need;
    if (!check_layout(got, expected, r, &n, &need))
        return 0;
    r->elements = n;
    if (n == 0) {
        r->match = 1;
        return 1;
    }
    qkv_dtype dt = got->dtype;
    if (dtype_is_float(dt))
        return compare_floats(got, expected, n, rtol, atol, r);
    if (qkv_cli_dtype_numeric(dt))
        return compare_ints(got, expected, n, r);
    if (dt == QKV_DTYPE_STRING)
        return compare_strings(got, expected, n, r);
    return compare_bytes(got, expected, need, r);
}
