/*
 * reduce.h - loop helpers shared by the reduction-like kernels (reduce.c,
 * argminmax.c, cumsum.c, layernorm.c, batchnorm.c). Header-only.
 */
#ifndef QKV_OPS_REDUCE_H
#define QKV_OPS_REDUCE_H

#include <stddef.h>

/*
 * Runs BODY with `size_t j` over [0, w): in blocks of 8 with a constant
 * bound, which plain -O2 vectorizes (its cheap cost model will not
 * vectorize a loop of unknown count), then the remainder one by one.
 */
#define QKV_FOR_W(w, BODY)                                                                         \
    do {                                                                                           \
        size_t j0_ = 0;                                                                            \
        for (; j0_ + 8 <= (w); j0_ += 8)                                                           \
            for (size_t jj_ = 0; jj_ < 8; jj_++) {                                                 \
                size_t j = j0_ + jj_;                                                              \
                BODY;                                                                              \
            }                                                                                      \
        for (size_t j = j0_; j < (w); j++) {                                                       \
            BODY;                                                                                  \
        }                                                                                          \
    } while (0)

/* Strips shorter than this are not made: long runs keep reads sequential. */
#define QKV_MIN_STRIP 1024

/*
 * The strip length for splitting `outer` contiguous runs of `inner`
 * elements into work units: whole runs (inner) when there are at least as
 * many runs as threads, else runs cut into enough strips to feed the
 * threads, none shorter than QKV_MIN_STRIP. Always >= 1 when inner >= 1.
 */
static inline size_t qkv_strip_len(size_t inner, size_t outer, size_t threads)
{
    size_t n = 1;
    if (outer < threads) {
        size_t cap = inner / QKV_MIN_STRIP ? inner / QKV_MIN_STRIP : 1;
        n = (threads + outer - 1) / (outer ? outer : 1);
        n = n < cap ? n : cap;
    }
    return (inner + n - 1) / n;
}

#endif /* QKV_OPS_REDUCE_H */
