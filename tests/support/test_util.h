/*
 * test_util.h - helpers shared by the tests that run whole models: reading
 * reference tensors, comparing outputs.
 */
#ifndef QKV_TEST_UTIL_H
#define QKV_TEST_UTIL_H

#include <stddef.h>

#include "qkv.h"

/* Reads a TensorProto file into *t (data malloc'd; free with
 * qkv_tensor_data_free). Fails the current test on error. */
void tu_read_pb(const char *path, qkv_tensor *t);
/* Path of a generated test file: QKV_TEST_DATA "/" rel, in one of four
 * rotating static buffers (so not for concurrent threads). */
const char *tu_data(const char *rel);
/* Asserts that a float32 output matches the expected tensor:
 * same shape, |a - e| <= atol + rtol * |e| element by element. */
void tu_assert_close(const qkv_tensor *got, const qkv_tensor *want, float rtol, float atol);

#endif /* QKV_TEST_UTIL_H */
