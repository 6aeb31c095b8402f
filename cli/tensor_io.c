/*
 * tensor_io.c - .npy read/write and TensorProto .pb reading for the CLI.
 *
 * The .npy format (numpy/lib/format.py): the magic "\x93NUMPY", a major and
 * minor version byte, the header length (2 bytes little-endian in 1.0, 4
 * bytes in 2.0 and 3.0), then an ASCII (UTF-8 in 3.0) Python dict literal
 *   {'descr': '<f4', 'fortran_order': False, 'shape': (2, 3), }
 * padded with spaces and ended by '\n', then the raw array data.
 * Everything in a header is treated as untrusted: it is parsed by a strict
 * little recursive-descent reader rather than by scanning for substrings.
 */
#include <ctype.h>
#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "error.h"
#include "loader.h"
#include "size_math.h"
#include "str_util.h"
#include "tensor_io.h"

#if !defined(__BYTE_ORDER__) || __BYTE_ORDER__ != __ORDER_LITTLE_ENDIAN__
#error "tensor_io.c assumes a little-endian host"
#endif

#define NPY_MAGIC "\x93NUMPY"
#define NPY_MAGIC_BYTES 6
/* A real header is < 200 bytes; refuse absurd lengths before trusting them. */
#define NPY_MAX_HEADER_BYTES (1u << 20)
#define NPY_ALIGN 64

/* ---- files ---------------------------------------------------------------- */

qkv_status qkv_cli_read_file(const char *path, void **buf, size_t *bytes, qkv_error *err)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        return qkv_error_set(err, QKV_ERR_IO, "cannot open '%s': %s", path, strerror(errno));
    struct stat st;
    if (fstat(fileno(f), &st) != 0) {
        int e = errno;
        fclose(f);
        return qkv_error_set(err, QKV_ERR_IO, "cannot stat '%s': %s", path, strerror(e));
    }
    if (S_ISDIR(st.st_mode)) {
        fclose(f);
        return qkv_error_set(err, QKV_ERR_IO, "cannot read '%s': is a directory", path);
    }
    /* Read in growing chunks: st_size is only a hint (pipes, /proc files). */
    size_t cap = S_ISREG(st.st_mode) && st.st_size > 0 && (uintmax_t)st.st_size < SIZE_MAX
                     ? (size_t)st.st_size + 1
                     : 4096;
    size_t len = 0;
    char *data = malloc(cap);
    if (!data) {
        fclose(f);
        return qkv_error_set(err, QKV_ERR_OUT_OF_MEMORY, "out of memory reading '%s'", path);
    }
    for (;;) {
        if (len == cap) {
            size_t ncap;
            char *nd = NULL;
            if (!qkv_mul_overflow(cap, 2, &ncap))
                nd = realloc(data, ncap);
            if (!nd) {
                free(data);
                fclose(f);
                return qkv_error_set(err, QKV_ERR_OUT_OF_MEMORY, "out of memory reading '%s'",
                                     path);
            }
            data = nd;
            cap = ncap;
        }
        size_t got = fread(data + len, 1, cap - len, f);
        len += got;
        if (got == 0)
            break;
    }
    int failed = ferror(f);
    fclose(f);
    if (failed) {
        free(data);
        return qkv_error_set(err, QKV_ERR_IO, "cannot read '%s': read error", path);
    }
    if (len == 0) {
        free(data);
        data = NULL;
    }
    *buf = data;
    *bytes = len;
    return QKV_OK;
}

static qkv_status write_file(const char *path, const void *buf, size_t bytes, qkv_error *err)
{
    FILE *f = fopen(path, "wb");
    if (!f)
        return qkv_error_set(err, QKV_ERR_IO, "cannot create '%s': %s", path, strerror(errno));
    size_t put = bytes ? fwrite(buf, 1, bytes, f) : 0;
    int e = put == bytes ? 0 : errno;
    if (fclose(f) != 0 && !e)
        e = errno ? errno : EIO;
    if (put != bytes || e)
        return qkv_error_set(err, QKV_ERR_IO, "cannot write '%s': %s", path, strerror(e ? e : EIO));
    return QKV_OK;
}

/* ---- half precision --------------------------------------------------------- */

float qkv_cli_f16_to_f32(uint16_t h)
{
    uint32_t sign = (uint32_t)(h & 0x8000u) << 16;
    uint32_t exp = (h >> 10) & 0x1fu;
    uint32_t man = h & 0x3ffu;
    uint32_t bits;
    if (exp == 0x1f) {
        bits = sign | 0x7f800000u | (man << 13); /* inf / nan */
    } else if (exp == 0) {
        if (man == 0) {
            bits = sign;
        } else { /* subnormal: normalise */
            int e = -1;
            do {
                e++;
                man <<= 1;
            } while (!(man & 0x400u));
            bits = sign | ((uint32_t)(127 - 15 - e) << 23) | ((man & 0x3ffu) << 13);
        }
    } else {
        bits = sign | ((exp + 127 - 15) << 23) | (man << 13);
    }
    float f;
    memcpy(&f, &bits, sizeof f);
    return f;
}

uint16_t qkv_cli_f32_to_f16(float f)
{
    uint32_t x;
    memcpy(&x, &f, sizeof x);
    uint16_t sign = (uint16_t)((x >> 16) & 0x8000u);
    uint32_t exp = (x >> 23) & 0xffu;
    uint32_t man = x & 0x7fffffu;
    if (exp == 0xff)
        return (uint16_t)(sign | 0x7c00u | (man ? 0x200u : 0)); /* inf / quiet nan */
    int32_t e = (int32_t)exp - 127 + 15;
    if (e >= 0x1f)
        return (uint16_t)(sign | 0x7c00u); /* overflow: inf */
    if (e <= 0) {
        if (e < -10)
            return sign; /* underflow: zero */
        man |= 0x800000u;
        uint32_t shift = (uint32_t)(14 - e);
        uint32_t half = man >> shift;
        uint32_t rem = man & ((1u << shift) - 1);
        uint32_t mid = 1u << (shift - 1);
        if (rem > mid || (rem == mid && (half & 1)))
            half++;
        return (uint16_t)(sign | half);
    }
    uint32_t half = ((uint32_t)e << 10) | (man >> 13);
    uint32_t rem = man & 0x1fffu;
    if (rem > 0x1000u || (rem == 0x1000u && (half & 1)))
        half++; /* may carry into the exponent, up to inf: correct */
    return (uint16_t)(sign | half);
}

float qkv_cli_bf16_to_f32(uint16_t h)
{
    uint32_t bits = (uint32_t)h << 16;
    float f;
    memcpy(&f, &bits, sizeof f);
    return f;
}

uint16_t qkv_cli_f32_to_bf16(float f)
{
    uint32_t x;
    memcpy(&x, &f, sizeof x);
    if ((x & 0x7f800000u) == 0x7f800000u && (x & 0x7fffffu))
        return (uint16_t)((x >> 16) | 0x40u); /* nan stays a quiet nan */
    x += 0x7fffu + ((x >> 16) & 1u);
    return (uint16_t)(x >> 16);
}

/* ---- npy descr <-> dtype ---------------------------------------------------- */

typedef struct npy_type {
    char kind;
    unsigned size;
    qkv_dtype dtype;
} npy_type;

static const npy_type NPY_TYPES[] = {
    {'b', 1, QKV_DTYPE_BOOL},      {'i', 1, QKV_DTYPE_INT8},        {'u', 1, QKV_DTYPE_UINT8},
    {'i', 2, QKV_DTYPE_INT16},     {'u', 2, QKV_DTYPE_UINT16},      {'f', 2, QKV_DTYPE_FLOAT16},
    {'i', 4, QKV_DTYPE_INT32},     {'u', 4, QKV_DTYPE_UINT32},      {'f', 4, QKV_DTYPE_FLOAT},
    {'i', 8, QKV_DTYPE_INT64},     {'u', 8, QKV_DTYPE_UINT64},      {'f', 8, QKV_DTYPE_DOUBLE},
    {'c', 8, QKV_DTYPE_COMPLEX64}, {'c', 16, QKV_DTYPE_COMPLEX128},
};

#define NPY_SUPPORTED "b1 i1 u1 i2 u2 f2 i4 u4 f4 i8 u8 f8 c8 c16"

/* Parses a descr like "<f4" into dtype, item size and whether to byte-swap.
 * Returns 0, or -1 (malformed) / -2 (well-formed but not supported). */
static int parse_descr(const char *d, qkv_dtype *dtype, unsigned *size, bool *swap)
{
    char order = d[0];
    if (!order || !strchr("<>|=", order))
        return -1;
    char kind = d[1];
    if (!kind)
        return -1;
    const char *p = d + 2;
    if (*p < '1' || *p > '9')
        return isalpha((unsigned char)kind) ? -2 : -1;
    unsigned n = 0;
    for (; *p >= '0' && *p <= '9'; p++) {
        if (n > 100000)
            return -2;
        n = n * 10 + (unsigned)(*p - '0');
    }
    if (*p)
        return -2; /* e.g. datetime units "<M8[ns]" */
    for (size_t i = 0; i < sizeof NPY_TYPES / sizeof NPY_TYPES[0]; i++) {
        if (NPY_TYPES[i].kind != kind || NPY_TYPES[i].size != n)
            continue;
        if (n > 1 && order == '|')
            return -1; /* '|' is "not applicable": only for one-byte types */
        *dtype = NPY_TYPES[i].dtype;
        *size = n;
        *swap = order == '>' && n > 1;
        return 0;
    }
    return -2;
}

static const char *dtype_descr(qkv_dtype dtype)
{
    switch (dtype) {
    case QKV_DTYPE_BOOL:
        return "|b1";
    case QKV_DTYPE_INT8:
        return "|i1";
    case QKV_DTYPE_UINT8:
        return "|u1";
    case QKV_DTYPE_INT16:
        return "<i2";
    case QKV_DTYPE_UINT16:
        return "<u2";
    case QKV_DTYPE_FLOAT16:
        return "<f2";
    case QKV_DTYPE_INT32:
        return "<i4";
    case QKV_DTYPE_UINT32:
        return "<u4";
    case QKV_DTYPE_FLOAT:
        return "<f4";
    case QKV_DTYPE_INT64:
        return "<i8";
    case QKV_DTYPE_UINT64:
        return "<u8";
    case QKV_DTYPE_DOUBLE:
        return "<f8";
    case QKV_DTYPE_COMPLEX64:
        return "<c8";
    case QKV_DTYPE_COMPLEX128:
        return "<c16";
    default:
        return NULL;
    }
}

/* ---- the header dict -------------------------------------------------------- */

typedef struct hdr_reader {
    const char *p, *end;
} hdr_reader;

static void skip_ws(hdr_reader *r)
{
    while (r->p < r->end && (*r->p == ' ' || *r->p == '\t' || *r->p == '\n' || *r->p == '\r'))
        r->p++;
}

static bool eat(hdr_reader *r, char c)
{
    skip_ws(r);
    if (r->p < r->end && *r->p == c) {
        r->p++;
        return true;
    }
    return false;
}

/* A quoted string without escapes into buf; false if malformed or too long. */
static bool read_str(hdr_reader *r, char *buf, size_t cap)
{
    skip_ws(r);
    if (r->p >= r->end || (*r->p != '\'' && *r->p != '"'))
        return false;
    char q = *r->p++;
    size_t n = 0;
    while (r->p < r->end && *r->p != q) {
        if (*r->p == '\\' || *r->p == '\n' || n + 1 >= cap)
            return false;
        buf[n++] = *r->p++;
    }
    if (r->p >= r->end)
        return false;
    r->p++;
    buf[n] = '\0';
    return true;
}

static bool read_word(hdr_reader *r, const char *w)
{
    skip_ws(r);
    size_t n = strlen(w);
    if ((size_t)(r->end - r->p) < n || memcmp(r->p, w, n) != 0)
        return false;
    const char *after = r->p + n;
    if (after < r->end && (isalnum((unsigned char)*after) || *after == '_'))
        return false;
    r->p = after;
    return true;
}

/* A non-negative decimal int64; -1 malformed, -2 too large. */
static int read_dim(hdr_reader *r, int64_t *out)
{
    skip_ws(r);
    if (r->p >= r->end || *r->p < '0' || *r->p > '9')
        return -1;
    uint64_t v = 0;
    bool big = false;
    while (r->p < r->end && *r->p >= '0' && *r->p <= '9') {
        unsigned d = (unsigned)(*r->p++ - '0');
        if (v > ((uint64_t)INT64_MAX - d) / 10)
            big = true;
        else
            v = v * 10 + d;
    }
    if (big)
        return -2;
    *out = (int64_t)v;
    return 0;
}

typedef struct npy_header {
    char descr[64];
    bool fortran;
    int32_t rank;
    int64_t dims[QKV_MAX_RANK];
} npy_header;

/* The value of 'descr': a quoted type string (a structured dtype's list or
 * dict is refused). */
static qkv_status read_descr_value(hdr_reader *r, const char *what, npy_header *h, qkv_error *err)
{
    skip_ws(r);
    if (r->p < r->end && (*r->p == '[' || *r->p == '{'))
        return qkv_error_set(err, QKV_ERR_UNSUPPORTED,
                             "%s: structured .npy dtypes are not supported", what);
    if (!read_str(r, h->descr, sizeof h->descr))
        return qkv_error_set(err, QKV_ERR_INVALID_ARGUMENT,
                             "%s: malformed .npy header: bad 'descr' value", what);
    return QKV_OK;
}

/* The value of 'fortran_order': True or False. */
static qkv_status read_fortran_value(hdr_reader *r, const char *what, npy_header *h, qkv_error *err)
{
    if (read_word(r, "True"))
        h->fortran = true;
    else if (read_word(r, "False"))
        h->fortran = false;
    else
        return qkv_error_set(err, QKV_ERR_INVALID_ARGUMENT,
                             "%s: malformed .npy header: 'fortran_order' is not True or False",
                             what);
    return QKV_OK;
}

/* The value of 'shape': a tuple of non-negative ints, at most QKV_MAX_RANK
 * ("(5)" is the int 5 in Python, not a tuple; "(5,)" and "()" are). */
static qkv_status read_shape_value(hdr_reader *r, const char *what, npy_header *h, qkv_error *err)
{
    if (!eat(r, '('))
        return qkv_error_set(err, QKV_ERR_INVALID_ARGUMENT,
                             "%s: malformed .npy header: 'shape' is not a tuple", what);
    h->rank = 0;
    bool comma = true; /* a dim may follow */
    int32_t commas = 0;
    for (;;) {
        if (eat(r, ')'))
            break;
        if (!comma)
            return qkv_error_set(err, QKV_ERR_INVALID_ARGUMENT,
                                 "%s: malformed .npy header: bad 'shape' tuple", what);
        int64_t d;
        int rc = read_dim(r, &d);
        if (rc == -2)
            return qkv_error_set(err, QKV_ERR_INVALID_ARGUMENT,
                                 "%s: .npy shape dim %d is too large", what, (int)h->rank);
        if (rc != 0)
            return qkv_error_set(err, QKV_ERR_INVALID_ARGUMENT,
                                 "%s: malformed .npy header: shape dim %d is not a "
                                 "non-negative integer",
                                 what, (int)h->rank);
        if (h->rank == QKV_MAX_RANK)
            return qkv_error_set(err, QKV_ERR_UNSUPPORTED, "%s: .npy array has more than %d dims",
                                 what, QKV_MAX_RANK);
        h->dims[h->rank++] = d;
        comma = eat(r, ',');
        commas += comma;
    }
    if (h->rank == 1 && commas == 0)
        return qkv_error_set(err, QKV_ERR_INVALID_ARGUMENT,
                             "%s: malformed .npy header: 'shape' is not a tuple", what);
    return QKV_OK;
}

/* Parses the dict; err names `what`. */
static qkv_status parse_header(const char *text, size_t len, const char *what, npy_header *h,
                               qkv_error *err)
{
    hdr_reader r = {text, text + len};
    bool have_descr = false, have_fortran = false, have_shape = false;
    if (!eat(&r, '{'))
        return qkv_error_set(err, QKV_ERR_INVALID_ARGUMENT,
                             "%s: malformed .npy header: expected '{'", what);
    for (;;) {
        if (eat(&r, '}'))
            break;
        char key[32];
        if (!read_str(&r, key, sizeof key))
            return qkv_error_set(err, QKV_ERR_INVALID_ARGUMENT,
                                 "%s: malformed .npy header: expected a quoted key", what);
        if (!eat(&r, ':'))
            return qkv_error_set(err, QKV_ERR_INVALID_ARGUMENT,
                                 "%s: malformed .npy header: expected ':' after '%s'", what, key);
        bool *have = !strcmp(key, "descr")           ? &have_descr
                     : !strcmp(key, "fortran_order") ? &have_fortran
                     : !strcmp(key, "shape")         ? &have_shape
                                                     : NULL;
        if (!have)
            return qkv_error_set(err, QKV_ERR_INVALID_ARGUMENT,
                                 "%s: malformed .npy header: unexpected key '%s'", what, key);
        if (*have)
            return qkv_error_set(err, QKV_ERR_INVALID_ARGUMENT,
                                 "%s: malformed .npy header: a key appears twice", what);
        qkv_status st = have == &have_descr     ? read_descr_value(&r, what, h, err)
                        : have == &have_fortran ? read_fortran_value(&r, what, h, err)
                                                : read_shape_value(&r, what, h, err);
        if (st != QKV_OK)
            return st;
        *have = true;
        if (eat(&r, '}'))
            break;
        if (!eat(&r, ','))
            return qkv_error_set(err, QKV_ERR_INVALID_ARGUMENT,
                                 "%s: malformed .npy header: expected ',' or '}'", what);
    }
    skip_ws(&r);
    if (r.p != r.end)
        return qkv_error_set(err, QKV_ERR_INVALID_ARGUMENT,
                             "%s: malformed .npy header: text after the dict", what);
    if (!have_descr || !have_fortran || !have_shape)
        return qkv_error_set(err, QKV_ERR_INVALID_ARGUMENT,
                             "%s: malformed .npy header: missing key '%s'", what,
                             !have_descr     ? "descr"
                             : !have_fortran ? "fortran_order"
                                             : "shape");
    return QKV_OK;
}

/* ---- decode / encode --------------------------------------------------------- */

static uint32_t le32(const unsigned char *p)
{
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

/* Finds the header dict of the .npy image b[0..bytes): magic, version,
 * length and a newline-terminated ASCII text. Sets *text, *len and *offset
 * (where the data starts). */
static qkv_status find_header(const unsigned char *b, size_t bytes, const char *what,
                              const char **text, size_t *len, size_t *offset, qkv_error *err)
{
    if (bytes < NPY_MAGIC_BYTES + 2 || memcmp(b, NPY_MAGIC, NPY_MAGIC_BYTES) != 0)
        return qkv_error_set(err, QKV_ERR_INVALID_ARGUMENT, "%s: not a .npy file (bad magic)",
                             what);
    unsigned major = b[6], minor = b[7];
    if (major < 1 || major > 3 || minor != 0)
        return qkv_error_set(err, QKV_ERR_UNSUPPORTED,
                             "%s: .npy format version %u.%u is not supported (1.0, 2.0, 3.0)", what,
                             major, minor);
    size_t len_bytes = major == 1 ? 2 : 4;
    size_t pre = NPY_MAGIC_BYTES + 2 + len_bytes;
    if (bytes < pre)
        return qkv_error_set(err, QKV_ERR_INVALID_ARGUMENT, "%s: truncated .npy header", what);
    size_t header_len = major == 1 ? (size_t)b[8] | (size_t)b[9] << 8 : (size_t)le32(b + 8);
    if (header_len > NPY_MAX_HEADER_BYTES)
        return qkv_error_set(err, QKV_ERR_INVALID_ARGUMENT,
                             "%s: .npy header length %zu is implausible", what, header_len);
    if (bytes - pre < header_len)
        return qkv_error_set(err, QKV_ERR_INVALID_ARGUMENT,
                             "%s: truncated .npy header (%zu of %zu bytes)", what, bytes - pre,
                             header_len);
    const char *t = (const char *)b + pre;
    if (header_len == 0 || t[header_len - 1] != '\n')
        return qkv_error_set(err, QKV_ERR_INVALID_ARGUMENT,
                             "%s: malformed .npy header: not terminated by a newline", what);
    for (size_t i = 0; i < header_len; i++) {
        unsigned char c = (unsigned char)t[i];
        /* 1.0/2.0 headers are ASCII; 3.0 allows UTF-8, but only in field
         * names of structured types, which are refused anyway */
        if (c == 0 || c >= 0x80)
            return qkv_error_set(err, QKV_ERR_INVALID_ARGUMENT,
                                 "%s: malformed .npy header: non-ASCII byte", what);
    }
    *text = t;
    *len = header_len;
    *offset = pre + header_len;
    return QKV_OK;
}

/* The element type the header names, its item size and whether the data is
 * byte-swapped; Fortran order only where it is the same as C order. */
static qkv_status header_type(const npy_header *h, const char *what, qkv_dtype *dtype,
                              unsigned *item, bool *swap, qkv_error *err)
{
    int rc = parse_descr(h->descr, dtype, item, swap);
    if (rc == -1)
        return qkv_error_set(err, QKV_ERR_INVALID_ARGUMENT, "%s: malformed .npy descr '%s'", what,
                             h->descr);
    if (rc == -2)
        return qkv_error_set(err, QKV_ERR_UNSUPPORTED,
                             "%s: .npy dtype '%s' is not supported (supported: " NPY_SUPPORTED ")",
                             what, h->descr);
    if (h->fortran) {
        /* order does not matter when at most one dim is larger than 1 */
        int big = 0;
        for (int32_t k = 0; k < h->rank; k++)
            big += h->dims[k] > 1;
        if (big > 1)
            return qkv_error_set(err, QKV_ERR_UNSUPPORTED,
                                 "%s: Fortran-order .npy arrays are not supported (save it in C "
                                 "order, e.g. with np.ascontiguousarray)",
                                 what);
    }
    return QKV_OK;
}

/* A copy of the payload src[0..data_bytes) in native byte order (*data NULL
 * when empty), bools checked to be 0 or 1. */
static qkv_status copy_payload(const unsigned char *src, size_t data_bytes, qkv_dtype dtype,
                               unsigned item, bool swap, const char *what, unsigned char **data,
                               qkv_error *err)
{
    *data = NULL;
    if (!data_bytes)
        return QKV_OK;
    unsigned char *d = malloc(data_bytes);
    if (!d)
        return qkv_error_set(err, QKV_ERR_OUT_OF_MEMORY, "%s: out of memory (%zu bytes)", what,
                             data_bytes);
    memcpy(d, src, data_bytes);
    if (swap) {
        /* complex: each of the two parts is swapped on its own */
        size_t unit = dtype == QKV_DTYPE_COMPLEX64 ? 4 : dtype == QKV_DTYPE_COMPLEX128 ? 8 : item;
        for (size_t i = 0; i + unit <= data_bytes; i += unit)
            for (size_t a = 0, z = unit - 1; a < z; a++, z--) {
                unsigned char t = d[i + a];
                d[i + a] = d[i + z];
                d[i + z] = t;
            }
    }
    for (size_t i = 0; dtype == QKV_DTYPE_BOOL && i < data_bytes; i++) {
        if (d[i] > 1) {
            free(d);
            return qkv_error_set(err, QKV_ERR_INVALID_ARGUMENT,
                                 "%s: bool element %zu is %u (must be 0 or 1)", what, i,
                                 (unsigned)src[i]);
        }
    }
    *data = d;
    return QKV_OK;
}

qkv_status qkv_cli_npy_decode(const void *buf, size_t bytes, const char *what, qkv_tensor *out,
                              qkv_error *err)
{
    const unsigned char *b = buf;
    if (!what)
        what = ".npy data";
    const char *text = NULL;
    size_t header_len = 0, offset = 0;
    qkv_status st = find_header(b, bytes, what, &text, &header_len, &offset, err);
    npy_header h = {0};
    if (st == QKV_OK)
        st = parse_header(text, header_len, what, &h, err);
    qkv_dtype dtype = QKV_DTYPE_UNDEFINED;
    unsigned item = 0;
    bool swap = false;
    if (st == QKV_OK)
        st = header_type(&h, what, &dtype, &item, &swap, err);
    if (st != QKV_OK)
        return st;
    size_t elements = 0, data_bytes = 0;
    if (!qkv_shape_elements(h.dims, h.rank, &elements) ||
        qkv_mul_overflow(elements, item, &data_bytes))
        return qkv_error_set(err, QKV_ERR_INVALID_ARGUMENT,
                             "%s: .npy shape is too large (the size overflows)", what);
    size_t avail = bytes - offset;
    if (avail < data_bytes)
        return qkv_error_set(err, QKV_ERR_INVALID_ARGUMENT,
                             "%s: truncated .npy data: %zu bytes, the shape needs %zu", what, avail,
                             data_bytes);
    if (avail > data_bytes)
        return qkv_error_set(err, QKV_ERR_INVALID_ARGUMENT,
                             "%s: %zu unexpected bytes after the .npy data", what,
                             avail - data_bytes);
    unsigned char *data;
    st = copy_payload(b + offset, data_bytes, dtype, item, swap, what, &data, err);
    if (st != QKV_OK)
        return st;
    memset(out, 0, sizeof *out);
    out->dtype = dtype;
    out->rank = h.rank;
    memcpy(out->dims, h.dims, sizeof(int64_t) * (size_t)h.rank);
    out->data = data;
    out->data_bytes = data_bytes;
    return QKV_OK;
}

qkv_status qkv_cli_npy_encode(const qkv_tensor *t, void **buf, size_t *bytes, qkv_error *err)
{
    const char *descr = dtype_descr(t->dtype);
    if (!descr)
        return qkv_error_set(err, QKV_ERR_UNSUPPORTED,
                             "%s tensors cannot be written as .npy (no NumPy dtype)",
                             qkv_dtype_name(t->dtype));
    size_t elements = 0, need = 0;
    if (t->rank < 0 || t->rank > QKV_MAX_RANK || !qkv_shape_elements(t->dims, t->rank, &elements) ||
        !qkv_dtype_storage_bytes(t->dtype, elements, &need))
        return qkv_error_set(err, QKV_ERR_INVALID_ARGUMENT,
                             "tensor shape is not known or too large");
    if (need != t->data_bytes || (need && !t->data))
        return qkv_error_set(err, QKV_ERR_INVALID_ARGUMENT,
                             "tensor has %zu data bytes, its shape needs %zu", t->data_bytes, need);
    char header[64 + 24 * QKV_MAX_RANK];
    size_t len = 0;
    int w = snprintf(header, sizeof header, "{'descr': '%s', 'fortran_order': False, 'shape': (",
                     descr);
    len = (size_t)w;
    for (int32_t k = 0; k < t->rank; k++) {
        w = snprintf(header + len, sizeof header - len, "%s%" PRId64, k ? ", " : "", t->dims[k]);
        len += (size_t)w;
    }
    w = snprintf(header + len, sizeof header - len, "%s), }", t->rank == 1 ? "," : "");
    len += (size_t)w;
    /* pad with spaces so the data starts on a 64-byte boundary; then '\n' */
    size_t pre = NPY_MAGIC_BYTES + 2 + 2;
    size_t total_header = len + 1;
    total_header += (NPY_ALIGN - (pre + total_header) % NPY_ALIGN) % NPY_ALIGN;
    size_t total;
    if (qkv_add_overflow(pre + total_header, t->data_bytes, &total))
        return qkv_error_set(err, QKV_ERR_INVALID_ARGUMENT, "tensor too large for .npy");
    unsigned char *out = malloc(total);
    if (!out)
        return qkv_error_set(err, QKV_ERR_OUT_OF_MEMORY, "out of memory (%zu bytes)", total);
    memcpy(out, NPY_MAGIC, NPY_MAGIC_BYTES);
    out[6] = 1;
    out[7] = 0;
    out[8] = (unsigned char)(total_header & 0xff);
    out[9] = (unsigned char)(total_header >> 8);
    memcpy(out + pre, header, len);
    memset(out + pre + len, ' ', total_header - len - 1);
    out[pre + total_header - 1] = '\n';
    if (t->data_bytes)
        memcpy(out + pre + total_header, t->data, t->data_bytes);
    *buf = out;
    *bytes = total;
    return QKV_OK;
}

qkv_status qkv_cli_npy_write(const char *path, const qkv_tensor *t, qkv_error *err)
{
    void *buf = NULL;
    size_t bytes = 0;
    qkv_status st = qkv_cli_npy_encode(t, &buf, &bytes, err);
    if (st != QKV_OK)
        return qkv_error_prefix(err, "%s", path);
    st = write_file(path, buf, bytes, err);
    free(buf);
    return st;
}

qkv_status qkv_cli_npy_read(const char *path, qkv_tensor *out, qkv_error *err)
{
    void *buf = NULL;
    size_t bytes = 0;
    qkv_status st = qkv_cli_read_file(path, &buf, &bytes, err);
    if (st != QKV_OK)
        return st;
    st = qkv_cli_npy_decode(buf, bytes, path, out, err);
    free(buf);
    return st;
}

/* Decodes a TensorProto image read from path. */
static qkv_status pb_decode(const void *buf, size_t bytes, const char *path, qkv_tensor *out,
                            char **name_out, qkv_error *err)
{
    char *dir = qkv_strdup(path);
    if (!dir)
        return qkv_error_set(err, QKV_ERR_OUT_OF_MEMORY, "out of memory");
    char *slash = strrchr(dir, '/');
    if (slash == dir)
        dir[1] = '\0';
    else if (slash)
        *slash = '\0';
    else
        strcpy(dir, ".");
    /* an empty file is a valid (empty) message: give it a non-NULL pointer */
    static const unsigned char empty = 0;
    qkv_status st = qkv_tensor_proto_decode(buf ? buf : &empty, bytes, dir, out, name_out, err);
    free(dir);
    if (st != QKV_OK)
        return qkv_error_prefix(err, "%s", path);
    return QKV_OK;
}

qkv_status qkv_cli_pb_read(const char *path, qkv_tensor *out, char **name_out, qkv_error *err)
{
    void *buf = NULL;
    size_t bytes = 0;
    qkv_status st = qkv_cli_read_file(path, &buf, &bytes, err);
    if (st != QKV_OK)
        return st;
    st = pb_decode(buf, bytes, path, out, name_out, err);
    free(buf);
    return st;
}

qkv_status qkv_cli_tensor_read(const char *path, qkv_tensor *out, qkv_error *err)
{
    void *buf = NULL;
    size_t bytes = 0;
    qkv_status st = qkv_cli_read_file(path, &buf, &bytes, err);
    if (st != QKV_OK)
        return st;
    size_t n = strlen(path);
    bool npy = (bytes >= NPY_MAGIC_BYTES && memcmp(buf, NPY_MAGIC, NPY_MAGIC_BYTES) == 0) ||
               (n >= 4 && !strcmp(path + n - 4, ".npy")); /* the latter reports bad magic */
    if (npy)
        st = qkv_cli_npy_decode(buf, bytes, path, out, err);
    else
        st = pb_decode(buf, bytes, path, out, NULL, err);
    free(buf);
    return st;
}
