/*
 * random_check.h - how `qkv test` checks outputs that depend on a random op.
 *
 * A test's reference outputs for Bernoulli, RandomUniform(Like),
 * RandomNormal(Like) or Multinomial are one draw of another generator: no
 * implementation can reproduce them. An output whose value depends on such a
 * node (found by walking the graph back from the output) is checked for
 * dtype and shape against the reference, and its values against the range
 * the op guarantees, where one is known:
 *   Bernoulli, and the comparisons and logic ops (Greater, Less, Equal, Not,
 *   And...)                     every value 0 or 1
 *   RandomUniform(Like)         every value in [low, high)
 *   Multinomial                 every value an integer >= 0
 *   Cast, Identity              the range of their input (Cast closes the
 *                               upper bound: rounding may reach it)
 *   anything else, RandomNormal no value check
 */
#ifndef QKV_CLI_RANDOM_CHECK_H
#define QKV_CLI_RANDOM_CHECK_H

#include <stddef.h>

#include "compare.h"
#include "qkv.h"

/* What one graph output may hold. */
typedef struct qkv_cli_random_range {
    int random;    /* the output depends on a random op */
    int has_range; /* the values must lie in [lo, hi] (or [lo, hi) with hi_open) */
    double lo, hi;
    int hi_open;
    int integral;     /* and be integers */
    const char *rule; /* the op the range comes from ("Bernoulli", "RandomUniform"...) */
} qkv_cli_random_range;

/*
 * Fills ranges[k] for graph outputs k < n (n <= the model's output count;
 * ranges[k].random 0 for a deterministic output). Never fails: a graph it
 * cannot walk (no memory) reads as deterministic.
 */
void qkv_cli_random_outputs(const qkv_model *model, qkv_cli_random_range *ranges, size_t n);

/*
 * Checks got against expected's dtype and shape and every value of got
 * against r's range. Returns 1 on a match; on a mismatch 0 with res->message
 * saying what differs ("shape [3], expected [10]", "element 4 is 2, outside
 * {0, 1}"). res is always written.
 */
int qkv_cli_check_random(const qkv_tensor *got, const qkv_tensor *expected,
                         const qkv_cli_random_range *r, qkv_cli_compare_result *res);

#endif /* QKV_CLI_RANDOM_CHECK_H */
