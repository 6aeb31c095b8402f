/*
 * compare.h - comparing an output tensor with an expected one the way the
 * ONNX backend tests do (onnx/backend/test/runner: np.testing.assert_allclose
 * for floating types, exact equality otherwise).
 */
#ifndef QKV_CLI_COMPARE_H
#define QKV_CLI_COMPARE_H

#include <stddef.h>

#include "qkv.h"

/* The ONNX backend test runner's defaults. */
#define QKV_CLI_RTOL 1e-3
#define QKV_CLI_ATOL 1e-7

typedef struct qkv_cli_compare_result {
    int match;           /* 1: same dtype, shape and values */
    size_t elements;     /* compared elements */
    size_t mismatches;   /* elements outside the tolerance */
    double max_abs_diff; /* over all compared (non-NaN) elements of float types */
    char message[512];   /* when !match: "dtype float32, expected int64", "shape [2, 3],
                          * expected [2, 4]" or "worst at [1, 2] got 0.1234 expected
                          * 0.1299 (abs 6.5e-03; 3 of 24 elements differ)" */
} qkv_cli_compare_result;

/*
 * Compares got with expected. Floating types (float16, bfloat16, float32,
 * float64 and both parts of complex types): |got - expected| <= atol +
 * rtol * |expected|, NaN matches NaN, an infinity only the same infinity.
 * Integers and bool: exact. Strings: byte-equal. Any other dtype: the bytes
 * must be equal. The worst element is the one with the largest |difference|
 * (a NaN or infinity mismatch counts as the largest).
 * Returns r->match. Never fails: tensors whose data_bytes do not match their
 * shape are reported as a mismatch.
 */
int qkv_cli_compare(const qkv_tensor *got, const qkv_tensor *expected, double rtol, double atol,
                    qkv_cli_compare_result *r);

/* Element i of a numeric tensor as double (0 for non-numeric dtypes; the real
 * part for complex). *is_float is set for floating types (may be NULL). */
double qkv_cli_element(const qkv_tensor *t, size_t i, int *is_float);

/* True for dtypes qkv_cli_element reads. */
int qkv_cli_dtype_numeric(qkv_dtype dtype);

#endif /* QKV_CLI_COMPARE_H */
