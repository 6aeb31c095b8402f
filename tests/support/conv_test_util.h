/*
 * conv_test_util.h - what the Conv tests share: a case description, the
 * output geometry by the ONNX spec, a naive direct convolution in double
 * (any group, 1-D to 3-D, written from the definition), and runs of a case
 * through the kernel harness (weights as a runtime input) or through a
 * whole session of a one-node model built here (weights as an initializer,
 * so that the kernel's prepack sees them), compared with the reference.
 */
#ifndef QKV_CONV_TEST_UTIL_H
#define QKV_CONV_TEST_UTIL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "qkv.h"

typedef struct conv_case {
    int ns;                 /* spatial dims, 1..3 */
    int64_t n, c, m, group; /* batch, channels in, channels out, groups */
    int64_t in[3], k[3], s[3], d[3];
    int64_t pb[3], pe[3]; /* explicit pads (NOTSET) */
    const char *auto_pad; /* NULL: attribute absent */
    bool bias, set_kernel_shape, set_strides, set_dilations, set_pads;
    bool set_group;  /* write `group` even when it is 1 */
    bool hide_input; /* infer sees no input values (as for runtime inputs) */
    bool dbl;        /* double instead of float */
    qkv_dtype half;  /* FLOAT16 or BFLOAT16 instead of float; 0: not */
    int64_t opset;   /* 0: 11 */
    size_t threads;
} conv_case;

/* Output dims and begin pads of the case by the ONNX Conv spec. */
void conv_ref_geometry(const conv_case *t, int64_t *out, int64_t *pb);

/* The product of d[0..n). */
size_t conv_prod(const int64_t *d, int n);

/* y (n, m, out...) by the definition, in double; out from conv_ref_geometry. */
void conv_ref(const conv_case *t, const double *x, const double *w, const double *b, double *y);

/*
 * Runs Conv on the case through the kernel harness (values drawn from
 * seed, uniform in [-1, 1)) and asserts every output element within
 * tol * (1 + |expected|) of conv_ref; `what` names the case in failures.
 */
void conv_check_case(const conv_case *t, uint32_t seed, double tol, const char *what);

/*
 * The same through a session (backends "cpu", t->threads threads) of a
 * one-node float32 model whose W and B are initializers; the input's
 * length may be run at several values: lengths[0..n_lengths) replace the
 * case's last input dim in turn (n_lengths 0: the case's own), on one
 * context, so plans for several shapes share the session's packed weights.
 * Returns the bytes of constants the session released after packing them
 * (qkv_session_packed_bytes): W's when the kernel packed it.
 */
size_t conv_check_session(const conv_case *t, uint32_t seed, double tol, const int64_t *lengths,
                          size_t n_lengths, const char *what);

#endif /* QKV_CONV_TEST_UTIL_H */
