/*
 * arena_planner.h - the arena planner: offsets for buffers with known lifetimes.
 *
 * A pure algorithm with no graph knowledge. The caller describes each
 * intermediate tensor as (bytes, first_use, last_use) in execution steps; the
 * planner gives every buffer an offset in one arena so that two buffers alive
 * at the same step never share a byte. The contract follows TensorFlow Lite
 * Micro's greedy planner (add_buffer(size, first_use, last_use)), with size_t
 * sizes, overflow checks and an O(n log n) sort.
 */
#ifndef QKV_ARENA_PLANNER_H
#define QKV_ARENA_PLANNER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "qkv.h"

typedef struct qkv_plan_buffer {
    size_t bytes;      /* size requested (0 allowed: gets offset 0, occupies nothing) */
    int32_t first_use; /* step that writes it (a node index in execution order) */
    int32_t last_use;  /* last step that reads it (>= first_use) */
    size_t offset;     /* out: offset in the arena, a multiple of the alignment */
} qkv_plan_buffer;

/* How buffers are placed. Every strategy takes the buffers in some order and
 * puts each one into a gap between already-placed buffers whose lifetimes
 * intersect its own (so placed buffers never move). Ties in every order fall
 * back to: larger aligned size, then earlier first_use, then lower index, so
 * plans are deterministic. */
typedef enum qkv_plan_strategy {
    QKV_PLAN_BEST = 0,    /* run every strategy below, keep the smallest arena
                              (on a tie the one listed first) */
    QKV_PLAN_BY_SIZE,     /* largest aligned size first, each at the lowest
                              offset that fits (TFLite Micro's greedy planner) */
    QKV_PLAN_BY_AREA,     /* as BY_SIZE, ordered by aligned size x lifetime */
    QKV_PLAN_BY_LIFETIME, /* as BY_SIZE, longest lifetime first */
    QKV_PLAN_TWO_SIDED,   /* execution order (earliest first_use first); a buffer
                              that cannot go at offset 0 goes at the top of the
                              highest gap under the lower bound when one fits, else
                              at the lowest offset. Packs against both ends of the
                              arena: optimal on chains, where the others are not */
    QKV_PLAN_STRATEGY_COUNT_
} qkv_plan_strategy;

/* "best", "size", "area", "lifetime", "two_sided"; "unknown" otherwise. */
const char *qkv_planner_strategy_name(qkv_plan_strategy strategy);

/*
 * Assigns bufs[i].offset for all n buffers so that buffers whose
 * [first_use, last_use] intervals intersect never overlap in memory; a
 * zero-byte buffer gets offset 0. Same as qkv_planner_assign_with and
 * QKV_PLAN_BEST.
 *
 * alignment: a power of two (qkv uses 64); every offset is a multiple of it
 * and every buffer reserves its size rounded up to it.
 * *arena_bytes: the high-water mark (offset + aligned size, maximised).
 * *lower_bound_bytes: the max over steps of the sum of aligned sizes live at
 * that step; no plan can need less. Either output pointer may be NULL.
 *
 * Errors: QKV_ERR_INVALID_ARGUMENT for a bad alignment, bufs NULL with n > 0,
 * or last_use < first_use (the message names the buffer index);
 * QKV_ERR_SHAPE when a size overflows size_t once aligned, when the live
 * buffers at one step or the arena exceed SIZE_MAX; QKV_ERR_OUT_OF_MEMORY.
 * On error no offset and no output changes. The planner keeps no state and
 * allocates only scratch freed before it returns.
 */
qkv_status qkv_planner_assign(qkv_plan_buffer *bufs, size_t n, size_t alignment,
                              size_t *arena_bytes, size_t *lower_bound_bytes, qkv_error *err);

/*
 * qkv_planner_assign with one strategy, or QKV_PLAN_BEST. *chosen (may be
 * NULL) receives the strategy whose plan was kept (never QKV_PLAN_BEST). An
 * unknown strategy is QKV_ERR_INVALID_ARGUMENT; otherwise as
 * qkv_planner_assign.
 */
qkv_status qkv_planner_assign_with(qkv_plan_buffer *bufs, size_t n, size_t alignment,
                                   qkv_plan_strategy strategy, size_t *arena_bytes,
                                   size_t *lower_bound_bytes, qkv_plan_strategy *chosen,
                                   qkv_error *err);

/*
 * The plan checker. Returns true if the plan is wrong: two buffers with
 * intersecting lifetimes share a byte ([offset, offset + bytes) ranges
 * intersect), or an offset is not a multiple of alignment, or a buffer ends
 * past arena_bytes, or a lifetime is reversed. The offending indices go to *a
 * and *b (may be NULL; a == b for a single-buffer fault). A zero-byte buffer
 * occupies nothing. alignment must be a power of two; anything else is itself
 * reported as a fault with *a = *b = n. O(n^2): meant for tests and debug.
 */
bool qkv_planner_find_overlap(const qkv_plan_buffer *bufs, size_t n, size_t alignment,
                              size_t arena_bytes, size_t *a, size_t *b);

/*
 * Writes a picture of the plan to out, like TensorFlow Lite Micro's
 * PrintMemoryPlan: a table of the buffers (the character that draws each,
 * bytes, offset, lifetime), then one row per step at which some buffer is
 * first or last used, each column a 1/64 slice of the arena drawn with the
 * character of the buffer in it ('.' free, '+' several buffers: an overlap,
 * or buffers smaller than a column) and the bytes live at that step; then the
 * summary line "arena N bytes, lower bound M bytes (ratio R)". alignment is
 * the one given to the planner (for the lower bound). Allocates nothing.
 */
void qkv_planner_dump(FILE *out, const qkv_plan_buffer *bufs, size_t n, size_t alignment,
                      size_t arena_bytes);

#endif /* QKV_ARENA_PLANNER_H */
