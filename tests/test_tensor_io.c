/*
 * The CLI's tensor files (cli/tensor_io.c) and output comparison
 * (cli/compare.c). The CLI sources are not in a library, so they are
 * compiled into this test directly.
 */
#include <criterion/criterion.h>
#include <math.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "../cli/compare.c"
#include "../cli/tensor_io.c"
#include "size_math.h"

extern char **environ;

/* ---- helpers ---------------------------------------------------------------- */

static qkv_tensor make(qkv_dtype dtype, int32_t rank, const int64_t *dims)
{
    qkv_tensor t = {.dtype = dtype, .rank = rank};
    size_t n = 0, bytes = 0;
    if (rank > 0)
        memcpy(t.dims, dims, sizeof(int64_t) * (size_t)rank);
    cr_assert(qkv_shape_elements(t.dims, rank, &n));
    cr_assert(qkv_dtype_storage_bytes(dtype, n, &bytes));
    t.data_bytes = bytes;
    t.data = bytes ? malloc(bytes) : NULL;
    unsigned char *p = t.data;
    for (size_t i = 0; i < bytes; i++)
        p[i] = dtype == QKV_DTYPE_BOOL ? (unsigned char)(i % 2) : (unsigned char)(i * 7 + 3);
    return t;
}

/* A .npy image with the given header text (padded and ended by '\n' here
 * unless raw) and `data_bytes` zero bytes of data. */
static unsigned char *npy_image(const char *header, size_t data_bytes, size_t *bytes)
{
    size_t hl = strlen(header) + 1;
    hl += (64 - (10 + hl) % 64) % 64;
    *bytes = 10 + hl + data_bytes;
    unsigned char *b = calloc(1, *bytes);
    memcpy(b, "\x93NUMPY\x01\x00", 8);
    b[8] = (unsigned char)(hl & 0xff);
    b[9] = (unsigned char)(hl >> 8);
    memset(b + 10, ' ', hl - 1);
    memcpy(b + 10, header, strlen(header));
    b[10 + hl - 1] = '\n';
    return b;
}

/* Decodes an image with the given header; returns the status, message in err. */
static qkv_status decode_header(const char *header, size_t data_bytes, qkv_error *err)
{
    size_t bytes;
    unsigned char *b = npy_image(header, data_bytes, &bytes);
    qkv_tensor t = {0};
    qkv_status st = qkv_cli_npy_decode(b, bytes, "x.npy", &t, err);
    qkv_tensor_data_free(&t);
    free(b);
    return st;
}

static void roundtrip(qkv_dtype dtype, int32_t rank, const int64_t *dims)
{
    qkv_tensor t = make(dtype, rank, dims), back = {0};
    qkv_error err = {0};
    void *buf = NULL;
    size_t bytes = 0;
    cr_assert_eq(qkv_cli_npy_encode(&t, &buf, &bytes, &err), QKV_OK, "%s", err.message);
    /* the data starts on a 64-byte boundary, as NumPy writes it */
    cr_assert_eq((bytes - t.data_bytes) % 64, 0);
    cr_assert_eq(qkv_cli_npy_decode(buf, bytes, "rt", &back, &err), QKV_OK, "%s %s",
                 qkv_dtype_name(dtype), err.message);
    cr_assert_eq(back.dtype, dtype);
    cr_assert_eq(back.rank, rank);
    for (int32_t k = 0; k < rank; k++)
        cr_assert_eq(back.dims[k], dims[k]);
    cr_assert_eq(back.data_bytes, t.data_bytes);
    if (t.data_bytes)
        cr_assert_eq(memcmp(back.data, t.data, t.data_bytes), 0);
    else
        cr_assert_null(back.data);
    free(buf);
    qkv_tensor_data_free(&t);
    qkv_tensor_data_free(&back);
}

/* Runs QKV_PYTHON -c script arg; returns the exit status. */
static int python(const char *script, const char *arg)
{
    char *argv[] = {(char *)QKV_PYTHON, (char *)"-c", (char *)script, (char *)arg, NULL};
    pid_t pid;
    if (posix_spawn(&pid, QKV_PYTHON, NULL, NULL, argv, environ) != 0)
        return -1;
    int status = 0;
    if (waitpid(pid, &status, 0) < 0 || !WIFEXITED(status))
        return -1;
    return WEXITSTATUS(status);
}

static char *temp_dir(void)
{
    char *d = strdup("/tmp/qkv_tensor_io_XXXXXX");
    cr_assert_not_null(mkdtemp(d));
    return d;
}

static void remove_dir(char *d)
{
    char *argv[] = {(char *)"/bin/rm", (char *)"-rf", d, NULL};
    pid_t pid;
    int status;
    if (posix_spawn(&pid, "/bin/rm", NULL, NULL, argv, environ) == 0)
        waitpid(pid, &status, 0);
    free(d);
}

/* ---- round trips ------------------------------------------------------------ */

Test(npy, roundtrips_every_dtype_with_numpy_descr)
{
    static const qkv_dtype types[] = {
        QKV_DTYPE_FLOAT,     QKV_DTYPE_DOUBLE,     QKV_DTYPE_FLOAT16, QKV_DTYPE_INT8,
        QKV_DTYPE_UINT8,     QKV_DTYPE_INT16,      QKV_DTYPE_UINT16,  QKV_DTYPE_INT32,
        QKV_DTYPE_UINT32,    QKV_DTYPE_INT64,      QKV_DTYPE_UINT64,  QKV_DTYPE_BOOL,
        QKV_DTYPE_COMPLEX64, QKV_DTYPE_COMPLEX128,
    };
    const int64_t dims[] = {2, 3, 4};
    for (size_t i = 0; i < sizeof types / sizeof types[0]; i++)
        roundtrip(types[i], 3, dims);
}

Test(npy, roundtrips_rank_0_rank_1_and_zero_size)
{
    const int64_t d1[] = {5}, d0[] = {0}, dz[] = {2, 0, 3};
    int64_t big[QKV_MAX_RANK];
    for (int k = 0; k < QKV_MAX_RANK; k++)
        big[k] = 1 + (k == 3);
    roundtrip(QKV_DTYPE_FLOAT, 0, NULL);
    roundtrip(QKV_DTYPE_INT64, 0, NULL);
    roundtrip(QKV_DTYPE_BOOL, 1, d1);
    roundtrip(QKV_DTYPE_FLOAT, 1, d0);
    roundtrip(QKV_DTYPE_INT32, 3, dz);
    roundtrip(QKV_DTYPE_DOUBLE, QKV_MAX_RANK, big);
}

Test(npy, writes_the_header_numpy_writes)
{
    const int64_t dims[] = {2, 3};
    qkv_tensor t = make(QKV_DTYPE_FLOAT, 2, dims);
    void *buf = NULL;
    size_t bytes = 0;
    cr_assert_eq(qkv_cli_npy_encode(&t, &buf, &bytes, NULL), QKV_OK);
    const char want[] = "\x93NUMPY\x01\x00v\x00{'descr': '<f4', 'fortran_order': False, "
                        "'shape': (2, 3), }";
    cr_assert_eq(memcmp(buf, want, sizeof want - 1), 0);
    cr_assert_eq(((unsigned char *)buf)[127], '\n');
    cr_assert_eq(bytes, 128 + 24);
    free(buf);
    qkv_tensor_data_free(&t);
}

Test(npy, refuses_to_encode_dtypes_numpy_lacks)
{
    const int64_t dims[] = {2};
    qkv_tensor t = make(QKV_DTYPE_BFLOAT16, 1, dims);
    qkv_error err = {0};
    void *buf = NULL;
    size_t bytes = 0;
    cr_assert_eq(qkv_cli_npy_encode(&t, &buf, &bytes, &err), QKV_ERR_UNSUPPORTED);
    cr_assert(strstr(err.message, "bfloat16"), "%s", err.message);
    cr_assert_null(buf);
    qkv_tensor_data_free(&t);
}

Test(npy, reads_files_numpy_wrote)
{
    char *dir = temp_dir();
    const char *script =
        "import sys, numpy as np\n"
        "d = sys.argv[1]\n"
        "np.save(d + '/f.npy', np.arange(6, dtype=np.float32).reshape(2, 3) / 4)\n"
        "np.save(d + '/s.npy', np.int64(-7))\n"
        "np.save(d + '/b.npy', np.array([True, False, True]))\n"
        "np.save(d + '/e.npy', np.zeros((0, 4), np.float16))\n"
        "np.save(d + '/be.npy', np.array([1, 256], dtype='>i4'))\n"
        "np.lib.format.write_array(open(d + '/v2.npy', 'wb'), np.arange(3, dtype=np.uint16),"
        " version=(2, 0))\n"
        "np.save(d + '/fo.npy', np.asfortranarray(np.arange(6.0).reshape(2, 3)))\n";
    cr_assert_eq(python(script, dir), 0);
    char path[256];
    qkv_tensor t = {0};
    qkv_error err = {0};

    snprintf(path, sizeof path, "%s/f.npy", dir);
    cr_assert_eq(qkv_cli_tensor_read(path, &t, &err), QKV_OK, "%s", err.message);
    cr_assert_eq(t.dtype, QKV_DTYPE_FLOAT);
    cr_assert_eq(t.rank, 2);
    cr_assert_eq(t.dims[1], 3);
    cr_assert_float_eq(((float *)t.data)[5], 1.25f, 0);
    qkv_tensor_data_free(&t);

    snprintf(path, sizeof path, "%s/s.npy", dir);
    cr_assert_eq(qkv_cli_npy_read(path, &t, &err), QKV_OK, "%s", err.message);
    cr_assert_eq(t.rank, 0);
    cr_assert_eq(*(int64_t *)t.data, -7);
    qkv_tensor_data_free(&t);

    snprintf(path, sizeof path, "%s/b.npy", dir);
    cr_assert_eq(qkv_cli_npy_read(path, &t, &err), QKV_OK, "%s", err.message);
    cr_assert_eq(t.dtype, QKV_DTYPE_BOOL);
    cr_assert_eq(memcmp(t.data, "\1\0\1", 3), 0);
    qkv_tensor_data_free(&t);

    snprintf(path, sizeof path, "%s/e.npy", dir);
    cr_assert_eq(qkv_cli_npy_read(path, &t, &err), QKV_OK, "%s", err.message);
    cr_assert_eq(t.dtype, QKV_DTYPE_FLOAT16);
    cr_assert_eq(t.dims[0], 0);
    cr_assert_null(t.data);
    cr_assert_eq(t.data_bytes, 0);

    snprintf(path, sizeof path, "%s/be.npy", dir);
    cr_assert_eq(qkv_cli_npy_read(path, &t, &err), QKV_OK, "%s", err.message);
    cr_assert_eq(((int32_t *)t.data)[1], 256, "big-endian data is swapped");
    qkv_tensor_data_free(&t);

    snprintf(path, sizeof path, "%s/v2.npy", dir);
    cr_assert_eq(qkv_cli_npy_read(path, &t, &err), QKV_OK, "%s", err.message);
    cr_assert_eq(((uint16_t *)t.data)[2], 2);
    qkv_tensor_data_free(&t);

    snprintf(path, sizeof path, "%s/fo.npy", dir);
    cr_assert_eq(qkv_cli_npy_read(path, &t, &err), QKV_ERR_UNSUPPORTED);
    cr_assert(strstr(err.message, "Fortran"), "%s", err.message);
    cr_assert(strstr(err.message, "fo.npy"), "%s", err.message);
    remove_dir(dir);
}

Test(npy, files_it_writes_load_in_numpy)
{
    char *dir = temp_dir();
    char path[256];
    const int64_t dims[] = {2, 2};
    qkv_tensor t = {.dtype = QKV_DTYPE_INT16, .rank = 2, .dims = {2, 2}};
    int16_t v[] = {1, -2, 300, -400};
    t.data = v;
    t.data_bytes = sizeof v;
    (void)dims;
    snprintf(path, sizeof path, "%s/out.npy", dir);
    cr_assert_eq(qkv_cli_npy_write(path, &t, NULL), QKV_OK);
    const char *check = "import sys, numpy as np\n"
                        "a = np.load(sys.argv[1])\n"
                        "assert a.dtype == np.int16 and a.shape == (2, 2), (a.dtype, a.shape)\n"
                        "assert a.tolist() == [[1, -2], [300, -400]], a\n";
    cr_assert_eq(python(check, path), 0);
    remove_dir(dir);
}

/* ---- malformed files -------------------------------------------------------- */

Test(npy, rejects_bad_magic)
{
    qkv_error err = {0};
    qkv_tensor t = {0};
    cr_assert_eq(qkv_cli_npy_decode("\x93NUMPZ\x01\x00\x00\x00", 10, "x.npy", &t, &err),
                 QKV_ERR_INVALID_ARGUMENT);
    cr_assert(strstr(err.message, "x.npy: not a .npy file (bad magic)"), "%s", err.message);
    cr_assert_eq(qkv_cli_npy_decode("", 0, "x.npy", &t, &err), QKV_ERR_INVALID_ARGUMENT);
    cr_assert_eq(t.dtype, QKV_DTYPE_UNDEFINED, "*out untouched on failure");
}

Test(npy, rejects_truncated_header_and_data)
{
    qkv_error err = {0};
    qkv_tensor t = {0};
    size_t bytes;
    unsigned char *b =
        npy_image("{'descr': '<f4', 'fortran_order': False, 'shape': (2,), }", 8, &bytes);
    cr_assert_eq(qkv_cli_npy_decode(b, bytes, "x.npy", &t, &err), QKV_OK, "%s", err.message);
    qkv_tensor_data_free(&t);
    cr_assert_eq(qkv_cli_npy_decode(b, 9, "x.npy", &t, &err), QKV_ERR_INVALID_ARGUMENT);
    cr_assert(strstr(err.message, "truncated .npy header"), "%s", err.message);
    cr_assert_eq(qkv_cli_npy_decode(b, 40, "x.npy", &t, &err), QKV_ERR_INVALID_ARGUMENT);
    cr_assert(strstr(err.message, "truncated .npy header"), "%s", err.message);
    cr_assert_eq(qkv_cli_npy_decode(b, bytes - 1, "x.npy", &t, &err), QKV_ERR_INVALID_ARGUMENT);
    cr_assert(strstr(err.message, "truncated .npy data: 7 bytes, the shape needs 8"), "%s",
              err.message);
    free(b);
    b = npy_image("{'descr': '<f4', 'fortran_order': False, 'shape': (2,), }", 9, &bytes);
    cr_assert_eq(qkv_cli_npy_decode(b, bytes, "x.npy", &t, &err), QKV_ERR_INVALID_ARGUMENT);
    cr_assert(strstr(err.message, "1 unexpected bytes after the .npy data"), "%s", err.message);
    free(b);
}

Test(npy, rejects_fortran_order)
{
    qkv_error err = {0};
    cr_assert_eq(
        decode_header("{'descr': '<f4', 'fortran_order': True, 'shape': (2, 3), }", 24, &err),
        QKV_ERR_UNSUPPORTED);
    cr_assert(strstr(err.message, "x.npy: Fortran-order .npy arrays are not supported"), "%s",
              err.message);
}

Test(npy, rejects_unknown_descr)
{
    qkv_error err = {0};
    cr_assert_eq(
        decode_header("{'descr': '<U5', 'fortran_order': False, 'shape': (1,), }", 20, &err),
        QKV_ERR_UNSUPPORTED);
    cr_assert(strstr(err.message, ".npy dtype '<U5' is not supported"), "%s", err.message);
    cr_assert_eq(
        decode_header("{'descr': '<f3', 'fortran_order': False, 'shape': (1,), }", 3, &err),
        QKV_ERR_UNSUPPORTED);
    cr_assert_eq(
        decode_header("{'descr': '|f4', 'fortran_order': False, 'shape': (1,), }", 4, &err),
        QKV_ERR_INVALID_ARGUMENT);
    cr_assert(strstr(err.message, "malformed .npy descr '|f4'"), "%s", err.message);
    cr_assert_eq(decode_header("{'descr': [('a', '<f4')], 'fortran_order': False, 'shape': (1,), }",
                               4, &err),
                 QKV_ERR_UNSUPPORTED);
    cr_assert(strstr(err.message, "structured"), "%s", err.message);
}

Test(npy, rejects_shapes_whose_size_overflows)
{
    qkv_error err = {0};
    cr_assert_eq(decode_header("{'descr': '<f4', 'fortran_order': False, "
                               "'shape': (4294967296, 4294967296), }",
                               0, &err),
                 QKV_ERR_INVALID_ARGUMENT);
    cr_assert(strstr(err.message, "overflows"), "%s", err.message);
    /* elements fit in size_t, bytes do not */
    cr_assert_eq(decode_header("{'descr': '<f8', 'fortran_order': False, "
                               "'shape': (4611686018427387904,), }",
                               0, &err),
                 QKV_ERR_INVALID_ARGUMENT);
    cr_assert(strstr(err.message, "overflows"), "%s", err.message);
    cr_assert_eq(decode_header("{'descr': '<f8', 'fortran_order': False, "
                               "'shape': (99999999999999999999,), }",
                               0, &err),
                 QKV_ERR_INVALID_ARGUMENT);
    cr_assert(strstr(err.message, "too large"), "%s", err.message);
    cr_assert_eq(decode_header("{'descr': '<f8', 'fortran_order': False, "
                               "'shape': (1,1,1,1,1,1,1,1,1,1,1,1,1), }",
                               8, &err),
                 QKV_ERR_UNSUPPORTED);
}

Test(npy, rejects_malformed_dicts)
{
    static const char *const bad[] = {
        "{'descr': '<f4', 'fortran_order': False, 'shape': (-1,), }",
        "{'descr': '<f4', 'fortran_order': False, 'shape': (2), }",
        "{'descr': '<f4', 'fortran_order': False, 'shape': (2,,), }",
        "{'descr': '<f4', 'fortran_order': False, 'shape': [2], }",
        "{'descr': '<f4', 'fortran_order': False }",
        "{'descr': '<f4', 'fortran_order': 0, 'shape': (2,), }",
        "{'descr': '<f4', 'fortran_order': False, 'shape': (2,), 'extra': 1, }",
        "{'descr': '<f4', 'descr': '<f4', 'fortran_order': False, 'shape': (2,), }",
        "{'descr': '<f4' 'fortran_order': False, 'shape': (2,), }",
        "{'descr': '<f4', 'fortran_order': False, 'shape': (2,), } x",
        "'descr': '<f4', 'fortran_order': False, 'shape': (2,)",
        "{'descr': '<f4\\n', 'fortran_order': False, 'shape': (2,), }",
        "{'descr': '<f4', 'fortran_order': Falsey, 'shape': (2,), }",
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        qkv_error err = {0};
        cr_assert_eq(decode_header(bad[i], 8, &err), QKV_ERR_INVALID_ARGUMENT, "%s", bad[i]);
        cr_assert(strstr(err.message, "x.npy: "), "%s", err.message);
    }
}

Test(npy, rejects_bad_versions_and_unterminated_headers)
{
    qkv_error err = {0};
    qkv_tensor t = {0};
    size_t bytes;
    unsigned char *b =
        npy_image("{'descr': '<f4', 'fortran_order': False, 'shape': (), }", 4, &bytes);
    b[6] = 4;
    cr_assert_eq(qkv_cli_npy_decode(b, bytes, "x.npy", &t, &err), QKV_ERR_UNSUPPORTED);
    cr_assert(strstr(err.message, "version 4.0"), "%s", err.message);
    b[6] = 1;
    b[10 + b[8] - 1] = ' ';
    cr_assert_eq(qkv_cli_npy_decode(b, bytes, "x.npy", &t, &err), QKV_ERR_INVALID_ARGUMENT);
    cr_assert(strstr(err.message, "newline"), "%s", err.message);
    free(b);
}

Test(npy, rejects_bools_other_than_0_and_1)
{
    qkv_error err = {0};
    qkv_tensor t = {0};
    size_t bytes;
    unsigned char *b =
        npy_image("{'descr': '|b1', 'fortran_order': False, 'shape': (2,), }", 2, &bytes);
    b[bytes - 1] = 2;
    cr_assert_eq(qkv_cli_npy_decode(b, bytes, "x.npy", &t, &err), QKV_ERR_INVALID_ARGUMENT);
    cr_assert(strstr(err.message, "bool element 1 is 2"), "%s", err.message);
    free(b);
}

Test(npy, reports_missing_files_and_directories)
{
    qkv_error err = {0};
    qkv_tensor t = {0};
    cr_assert_eq(qkv_cli_npy_read("/nonexistent/x.npy", &t, &err), QKV_ERR_IO);
    cr_assert(strstr(err.message, "cannot open '/nonexistent/x.npy'"), "%s", err.message);
    cr_assert_eq(qkv_cli_tensor_read("/tmp", &t, &err), QKV_ERR_IO);
    cr_assert(strstr(err.message, "is a directory"), "%s", err.message);
}

/* ---- TensorProto files -------------------------------------------------------- */

Test(pb, reads_a_tensor_proto_file)
{
    char *dir = temp_dir();
    char path[256];
    snprintf(path, sizeof path, "%s/input_0.pb", dir);
    /* TensorProto{dims: [2], data_type: FLOAT, name: "x", raw_data: 1.5f, -2f} */
    const unsigned char pb[] = {0x08, 0x02, 0x10, 0x01, 0x42, 0x01, 'x',  0x4a, 0x08,
                                0x00, 0x00, 0xc0, 0x3f, 0x00, 0x00, 0x00, 0xc0};
    FILE *f = fopen(path, "wb");
    cr_assert_not_null(f);
    cr_assert_eq(fwrite(pb, 1, sizeof pb, f), sizeof pb);
    fclose(f);
    qkv_tensor t = {0};
    qkv_error err = {0};
    char *name = NULL;
    cr_assert_eq(qkv_cli_pb_read(path, &t, &name, &err), QKV_OK, "%s", err.message);
    cr_assert_str_eq(name, "x");
    cr_assert_eq(t.dtype, QKV_DTYPE_FLOAT);
    cr_assert_eq(t.rank, 1);
    cr_assert_float_eq(((float *)t.data)[1], -2.0f, 0);
    free(name);
    qkv_tensor_data_free(&t);
    /* the same through the sniffing reader */
    cr_assert_eq(qkv_cli_tensor_read(path, &t, &err), QKV_OK, "%s", err.message);
    cr_assert_eq(t.dims[0], 2);
    qkv_tensor_data_free(&t);
    /* garbage: the message names the file */
    f = fopen(path, "wb");
    fputs("\xff\xff\xff garbage", f);
    fclose(f);
    cr_assert_neq(qkv_cli_pb_read(path, &t, NULL, &err), QKV_OK);
    cr_assert(strstr(err.message, path), "%s", err.message);
    remove_dir(dir);
}

/* ---- half precision ----------------------------------------------------------- */

Test(half, converts_known_values)
{
    cr_assert_eq(qkv_cli_f32_to_f16(1.0f), 0x3c00);
    cr_assert_eq(qkv_cli_f32_to_f16(-2.0f), 0xc000);
    cr_assert_eq(qkv_cli_f32_to_f16(65504.0f), 0x7bff);
    cr_assert_eq(qkv_cli_f32_to_f16(65520.0f), 0x7c00, "rounds up to inf");
    cr_assert_eq(qkv_cli_f32_to_f16(5.9604645e-8f), 0x0001, "smallest subnormal");
    cr_assert_eq(qkv_cli_f32_to_f16(1.0f + 1.0f / 2048), 0x3c00, "tie rounds to even");
    cr_assert_eq(qkv_cli_f32_to_f16(1.0f + 3.0f / 2048), 0x3c02, "tie rounds to even");
    cr_assert_float_eq(qkv_cli_f16_to_f32(0x3555), 0.333251953125f, 0);
    cr_assert_float_eq(qkv_cli_f16_to_f32(0x0001), 5.9604645e-8f, 0);
    cr_assert(isinf(qkv_cli_f16_to_f32(0xfc00)) && qkv_cli_f16_to_f32(0xfc00) < 0);
    cr_assert(isnan(qkv_cli_f16_to_f32(qkv_cli_f32_to_f16(NAN))));
    for (uint32_t h = 0; h < 0x7c00; h++) /* every finite half round-trips */
        cr_assert_eq(qkv_cli_f32_to_f16(qkv_cli_f16_to_f32((uint16_t)h)), h);
    cr_assert_eq(qkv_cli_f32_to_bf16(1.0f), 0x3f80);
    cr_assert_float_eq(qkv_cli_bf16_to_f32(0xc040), -3.0f, 0);
}

/* ---- comparison ----------------------------------------------------------------- */

static qkv_tensor floats(const float *v, int64_t n)
{
    qkv_tensor t = {.dtype = QKV_DTYPE_FLOAT, .rank = 2, .dims = {1, n}};
    t.data = (void *)v;
    t.data_bytes = (size_t)n * sizeof(float);
    return t;
}

Test(compare, uses_onnx_tolerances_and_nan_rules)
{
    const float e[] = {1.0f, NAN, INFINITY, -INFINITY, 0.0f, 100.0f};
    const float g[] = {1.0009f, NAN, INFINITY, -INFINITY, 5e-8f, 100.09f};
    qkv_tensor ge = floats(g, 6), ee = floats(e, 6);
    qkv_cli_compare_result r;
    cr_assert(qkv_cli_compare(&ge, &ee, QKV_CLI_RTOL, QKV_CLI_ATOL, &r), "%s", r.message);

    const float g2[] = {1.0f, 0.0f, INFINITY, INFINITY, 0.0f, 100.5f};
    qkv_tensor g2t = floats(g2, 6);
    cr_assert_not(qkv_cli_compare(&g2t, &ee, QKV_CLI_RTOL, QKV_CLI_ATOL, &r));
    cr_assert_eq(r.mismatches, 3);
    /* NaN vs number outranks a finite difference */
    cr_assert(strstr(r.message, "worst at [0, 1] got 0 expected nan"), "%s", r.message);
    cr_assert(strstr(r.message, "3 of 6 elements differ"), "%s", r.message);
}

Test(compare, reports_the_largest_difference)
{
    const float e[] = {0.1299f, 1.0f, 2.0f, 3.0f};
    const float g[] = {0.1234f, 1.0f, 2.0f, 3.5f};
    qkv_tensor gt = floats(g, 4), et = floats(e, 4);
    gt.rank = et.rank = 2;
    gt.dims[0] = et.dims[0] = 2;
    gt.dims[1] = et.dims[1] = 2;
    qkv_cli_compare_result r;
    cr_assert_not(qkv_cli_compare(&gt, &et, QKV_CLI_RTOL, QKV_CLI_ATOL, &r));
    cr_assert(strstr(r.message, "worst at [1, 1] got 3.5 expected 3 (abs 5.0e-01; 2 of 4"), "%s",
              r.message);
}

Test(compare, reports_dtype_and_shape_mismatches)
{
    const float v[] = {1, 2, 3, 4};
    qkv_tensor a = floats(v, 4), b = floats(v, 4);
    qkv_cli_compare_result r;
    b.dims[1] = 2;
    b.dims[0] = 2;
    cr_assert_not(qkv_cli_compare(&a, &b, QKV_CLI_RTOL, QKV_CLI_ATOL, &r));
    cr_assert_str_eq(r.message, "shape [1, 4], expected [2, 2]");
    b = floats(v, 4);
    b.dtype = QKV_DTYPE_INT32;
    cr_assert_not(qkv_cli_compare(&a, &b, QKV_CLI_RTOL, QKV_CLI_ATOL, &r));
    cr_assert_str_eq(r.message, "dtype float32, expected int32");
}

Test(compare, compares_integers_exactly)
{
    int64_t e[] = {INT64_MAX, 2, 3}, g[] = {INT64_MAX - 1, 2, 3};
    qkv_tensor et = {
        .dtype = QKV_DTYPE_INT64, .rank = 1, .dims = {3}, .data = e, .data_bytes = sizeof e};
    qkv_tensor gt = et;
    gt.data = g;
    qkv_cli_compare_result r;
    cr_assert_not(qkv_cli_compare(&gt, &et, QKV_CLI_RTOL, QKV_CLI_ATOL, &r));
    cr_assert(strstr(r.message, "worst at [0] got 9223372036854775806 expected "
                                "9223372036854775807"),
              "%s", r.message);
    /* rank 0 and empty tensors */
    qkv_tensor s = {.dtype = QKV_DTYPE_INT64, .rank = 0, .data = e, .data_bytes = 8};
    cr_assert(qkv_cli_compare(&s, &s, QKV_CLI_RTOL, QKV_CLI_ATOL, &r));
    qkv_tensor z = {.dtype = QKV_DTYPE_BOOL, .rank = 2, .dims = {0, 3}};
    cr_assert(qkv_cli_compare(&z, &z, QKV_CLI_RTOL, QKV_CLI_ATOL, &r));
}
