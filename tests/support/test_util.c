/* test_util.c - see test_util.h. */
#include "test_util.h"

#include <criterion/criterion.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>

#include "loader.h"

void tu_read_pb(const char *path, qkv_tensor *t)
{
    FILE *f = fopen(path, "rb");
    cr_assert(f, "cannot open %s", path);
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    fseek(f, 0, SEEK_SET);
    char *buf = malloc((size_t)n + 1);
    cr_assert_eq(fread(buf, 1, (size_t)n, f), (size_t)n);
    fclose(f);
    qkv_error err;
    qkv_status st = qkv_tensor_proto_decode(buf, (size_t)n, NULL, t, NULL, &err);
    free(buf);
    cr_assert_eq(st, QKV_OK, "%s: %s", path, err.message);
}

const char *tu_data(const char *rel)
{
    static char bufs[4][1024];
    static int slot;
    char *b = bufs[slot++ & 3];
    snprintf(b, sizeof bufs[0], "%s/%s", QKV_TEST_DATA, rel);
    return b;
}

void tu_assert_close(const qkv_tensor *got, const qkv_tensor *want, float rtol, float atol)
{
    cr_assert_not_null(got);
    cr_assert_eq(got->dtype, QKV_DTYPE_FLOAT);
    cr_assert_eq(got->rank, want->rank, "rank %d vs %d", got->rank, want->rank);
    for (int32_t d = 0; d < got->rank; d++)
        cr_assert_eq(got->dims[d], want->dims[d], "dim %d: %lld vs %lld", d,
                     (long long)got->dims[d], (long long)want->dims[d]);
    size_t n = want->data_bytes / sizeof(float);
    cr_assert_eq(got->data_bytes, want->data_bytes);
    const float *a = got->data, *e = want->data;
    for (size_t i = 0; i < n; i++)
        cr_assert(fabsf(a[i] - e[i]) <= atol + rtol * fabsf(e[i]),
                  "element %zu: got %.7g expected %.7g", i, (double)a[i], (double)e[i]);
}
