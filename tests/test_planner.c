/*
 * test_planner.c - the arena planner: hand-made cases, error paths, a
 * randomized property test and transformer-shaped workloads. Every plan the
 * tests make goes through check_plan (the overlap checker plus an independent
 * lower bound), and one test plants an overlap to show the checker sees it.
 */
#include <criterion/criterion.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "arena_planner.h"

#define ALIGN 64

/* ---- helpers ------------------------------------------------------------- */

static size_t round_up(size_t bytes, size_t alignment)
{
    return (bytes + alignment - 1) / alignment * alignment;
}

/* Lower bound computed the slow, obvious way: the live aligned bytes at every
 * step where some buffer starts (the peak is always at such a step). */
static size_t brute_lower_bound(const qkv_plan_buffer *bufs, size_t n, size_t alignment)
{
    size_t peak = 0;
    for (size_t i = 0; i < n; i++) {
        size_t live = 0;
        for (size_t j = 0; j < n; j++)
            if (bufs[j].first_use <= bufs[i].first_use && bufs[i].first_use <= bufs[j].last_use)
                live += round_up(bufs[j].bytes, alignment);
        if (live > peak)
            peak = live;
    }
    return peak;
}

/* Asserts the plan is sound: no overlap, aligned, inside the arena, zero-size
 * buffers at 0, the lower bound right and the arena not below it. */
static void check_plan(const qkv_plan_buffer *bufs, size_t n, size_t alignment, size_t arena,
                       size_t lower)
{
    size_t a = 0, b = 0;
    cr_assert_not(qkv_planner_find_overlap(bufs, n, alignment, arena, &a, &b),
                  "plan fault between buffer %zu (%zu bytes at %zu, steps %d..%d) and buffer %zu "
                  "(%zu bytes at %zu, steps %d..%d)",
                  a, bufs[a].bytes, bufs[a].offset, bufs[a].first_use, bufs[a].last_use, b,
                  bufs[b].bytes, bufs[b].offset, bufs[b].first_use, bufs[b].last_use);
    for (size_t i = 0; i < n; i++)
        if (bufs[i].bytes == 0)
            cr_assert_eq(bufs[i].offset, 0, "zero-size buffer %zu at offset %zu", i,
                         bufs[i].offset);
    cr_assert_eq(lower, brute_lower_bound(bufs, n, alignment));
    cr_assert_geq(arena, lower);
}

/* Sum of aligned sizes: a lowest-offset-first plan never needs more. */
static size_t total_aligned(const qkv_plan_buffer *bufs, size_t n, size_t alignment)
{
    size_t total = 0;
    for (size_t i = 0; i < n; i++)
        total += round_up(bufs[i].bytes, alignment);
    return total;
}

/* Plans with the default strategy (best) and checks the result. */
static void plan_ok(qkv_plan_buffer *bufs, size_t n, size_t alignment, size_t *arena, size_t *lower)
{
    qkv_error err = {0};
    qkv_status st = qkv_planner_assign(bufs, n, alignment, arena, lower, &err);
    cr_assert_eq(st, QKV_OK, "status %d: %s", (int)st, err.message);
    check_plan(bufs, n, alignment, *arena, *lower);
}

#define BUF(bytes, first, last)                                                                    \
    {                                                                                              \
        (bytes), (first), (last), 0                                                                \
    }

/* ---- the checker ------------------------------------------------------------ */

Test(planner, checker_detects_planted_overlap)
{
    qkv_plan_buffer bufs[] = {BUF(100, 0, 2), BUF(100, 1, 3), BUF(100, 4, 5)};
    size_t arena, lower;
    plan_ok(bufs, 3, ALIGN, &arena, &lower);

    /* Buffer 1 slid one byte into buffer 0 while both are live at steps 1..2. */
    qkv_plan_buffer bad[] = {{100, 0, 2, 0}, {100, 1, 3, 64}, {100, 4, 5, 0}};
    size_t a = 99, b = 99;
    cr_assert(qkv_planner_find_overlap(bad, 3, 1, 1000, &a, &b));
    cr_assert_eq(a, 0);
    cr_assert_eq(b, 1);

    /* Same offsets, disjoint lifetimes: not a fault. */
    qkv_plan_buffer shared[] = {{100, 0, 1, 0}, {100, 2, 3, 0}};
    cr_assert_not(qkv_planner_find_overlap(shared, 2, ALIGN, 100, NULL, NULL));
    /* Touching lifetimes (last_use == first_use) do intersect. */
    shared[1].first_use = 1;
    cr_assert(qkv_planner_find_overlap(shared, 2, ALIGN, 100, NULL, NULL));
}

Test(planner, checker_detects_misalignment_arena_overrun_and_bad_alignment)
{
    qkv_plan_buffer bufs[] = {{100, 0, 0, 0}, {10, 1, 1, 32}};
    size_t a = 99, b = 99;
    cr_assert(qkv_planner_find_overlap(bufs, 2, ALIGN, 1000, &a, &b));
    cr_assert_eq(a, 1);
    cr_assert_eq(b, 1);
    bufs[1].offset = 0;
    cr_assert_not(qkv_planner_find_overlap(bufs, 2, ALIGN, 100, NULL, NULL));
    cr_assert(qkv_planner_find_overlap(bufs, 2, ALIGN, 99, &a, &b), "ends past the arena");
    cr_assert_eq(a, 0);
    cr_assert(qkv_planner_find_overlap(bufs, 2, 48, 1000, &a, &b));
    cr_assert_eq(a, 2);
    qkv_plan_buffer wraps[] = {{SIZE_MAX, 0, 0, 64}};
    cr_assert(qkv_planner_find_overlap(wraps, 1, ALIGN, SIZE_MAX, NULL, NULL));
}

/* ---- basic cases ------------------------------------------------------------ */

Test(planner, empty_input_gives_empty_arena)
{
    size_t arena = 7, lower = 7;
    qkv_error err = {0};
    cr_assert_eq(qkv_planner_assign(NULL, 0, ALIGN, &arena, &lower, &err), QKV_OK);
    cr_assert_eq(arena, 0);
    cr_assert_eq(lower, 0);
}

Test(planner, single_buffer_at_offset_zero_with_aligned_arena)
{
    qkv_plan_buffer bufs[] = {{100, 3, 3, 12345}};
    size_t arena, lower;
    plan_ok(bufs, 1, ALIGN, &arena, &lower);
    cr_assert_eq(bufs[0].offset, 0);
    cr_assert_eq(arena, 128);
    cr_assert_eq(lower, 128);
}

Test(planner, disjoint_lifetimes_share_offset_zero)
{
    qkv_plan_buffer bufs[] = {BUF(1000, 0, 1), BUF(500, 2, 3), BUF(2000, 4, 4), BUF(64, 5, 9)};
    size_t arena, lower;
    plan_ok(bufs, 4, ALIGN, &arena, &lower);
    for (size_t i = 0; i < 4; i++)
        cr_assert_eq(bufs[i].offset, 0, "buffer %zu at %zu", i, bufs[i].offset);
    cr_assert_eq(arena, 2048);
    cr_assert_eq(lower, 2048);
}

Test(planner, overlapping_lifetimes_do_not_overlap)
{
    qkv_plan_buffer bufs[] = {BUF(300, 0, 5), BUF(300, 1, 4), BUF(300, 2, 3), BUF(300, 3, 3)};
    size_t arena, lower;
    plan_ok(bufs, 4, ALIGN, &arena, &lower);
    /* All four are live at step 3: four distinct 320-byte slots. */
    cr_assert_eq(lower, 4 * 320);
    cr_assert_eq(arena, 4 * 320);
}

Test(planner, reuses_gap_between_dead_buffers)
{
    /* 0 and 2 are live at different times; 1 spans both. 2 lands in 0's slot. */
    qkv_plan_buffer bufs[] = {BUF(256, 0, 1), BUF(128, 0, 3), BUF(128, 2, 3)};
    size_t arena, lower;
    plan_ok(bufs, 3, ALIGN, &arena, &lower);
    cr_assert_eq(bufs[0].offset, 0);
    cr_assert_eq(bufs[1].offset, 256);
    cr_assert_eq(bufs[2].offset, 0);
    cr_assert_eq(arena, 384);
}

Test(planner, fills_hole_between_live_buffers)
{
    /* 1 dies at step 0, leaving a hole between 0 and 2 that 3 fits into. */
    qkv_plan_buffer bufs[] = {BUF(256, 0, 5), BUF(256, 0, 0), BUF(256, 0, 5), BUF(128, 1, 5)};
    size_t arena, lower;
    qkv_plan_strategy chosen;
    qkv_error err = {0};
    cr_assert_eq(
        qkv_planner_assign_with(bufs, 4, ALIGN, QKV_PLAN_BY_SIZE, &arena, &lower, &chosen, &err),
        QKV_OK);
    check_plan(bufs, 4, ALIGN, arena, lower);
    cr_assert_eq(chosen, QKV_PLAN_BY_SIZE);
    cr_assert_eq(bufs[0].offset, 0);
    cr_assert_eq(bufs[1].offset, 256);
    cr_assert_eq(bufs[2].offset, 512);
    cr_assert_eq(bufs[3].offset, 256);
    cr_assert_eq(arena, 768);
}

Test(planner, alignment_respected_for_every_power_of_two)
{
    for (size_t alignment = 1; alignment <= 4096; alignment *= 2) {
        qkv_plan_buffer bufs[] = {BUF(1, 0, 3), BUF(3, 0, 3), BUF(65, 1, 2), BUF(7, 2, 3),
                                  BUF(1000, 3, 3)};
        size_t arena, lower;
        plan_ok(bufs, 5, alignment, &arena, &lower);
        for (size_t i = 0; i < 5; i++)
            cr_assert_eq(bufs[i].offset % alignment, 0, "alignment %zu: buffer %zu at %zu",
                         alignment, i, bufs[i].offset);
        cr_assert_eq(arena % alignment, 0);
    }
}

Test(planner, zero_size_buffers_get_offset_zero_and_occupy_nothing)
{
    qkv_plan_buffer bufs[] = {{0, 0, 9, 777}, BUF(100, 0, 9), {0, 2, 3, 5}, BUF(50, 1, 2)};
    size_t arena, lower;
    plan_ok(bufs, 4, ALIGN, &arena, &lower);
    cr_assert_eq(bufs[0].offset, 0);
    cr_assert_eq(bufs[2].offset, 0);
    cr_assert_eq(arena, 128 + 64);
    cr_assert_eq(lower, 128 + 64);

    qkv_plan_buffer only_zero[] = {{0, 0, 0, 9}, {0, 0, 0, 9}};
    plan_ok(only_zero, 2, ALIGN, &arena, &lower);
    cr_assert_eq(arena, 0);
    cr_assert_eq(only_zero[1].offset, 0);
}

Test(planner, arena_equals_lower_bound_on_chains)
{
    /* a -> b -> c: each buffer is read by the next step only. */
    qkv_plan_buffer abc[] = {BUF(100, 0, 1), BUF(200, 1, 2), BUF(300, 2, 3)};
    size_t arena, lower;
    plan_ok(abc, 3, ALIGN, &arena, &lower);
    cr_assert_eq(lower, 256 + 320);
    cr_assert_eq(arena, lower);

    /* Longer chains with pseudo-random sizes, including zeros: largest-first
     * alone misses the bound here (see the report line); two-sided packing
     * alternates buffers between the bottom and the top of the arena. */
    uint32_t x = 12345;
    double worst_size_ratio = 1.0;
    for (int trial = 0; trial < 50; trial++) {
        qkv_plan_buffer chain[40];
        for (int i = 0; i < 40; i++) {
            x = x * 1103515245u + 12345u;
            chain[i] = (qkv_plan_buffer)BUF((x >> 8) % 5000, i, i + 1);
        }
        plan_ok(chain, 40, ALIGN, &arena, &lower);
        cr_assert_eq(arena, lower, "trial %d: arena %zu, lower bound %zu", trial, arena, lower);
        size_t size_arena;
        qkv_error err = {0};
        cr_assert_eq(qkv_planner_assign_with(chain, 40, ALIGN, QKV_PLAN_BY_SIZE, &size_arena,
                                             &lower, NULL, &err),
                     QKV_OK);
        check_plan(chain, 40, ALIGN, size_arena, lower);
        double r = (double)size_arena / (double)lower;
        if (r > worst_size_ratio)
            worst_size_ratio = r;
    }
    cr_log_info("chains: best strategy meets the lower bound on 50 random chains; "
                "largest-first alone is up to %.3f x it",
                worst_size_ratio);
}

Test(planner, same_input_gives_same_plan)
{
    qkv_plan_buffer a[] = {BUF(100, 0, 4), BUF(100, 0, 4), BUF(100, 1, 2), BUF(100, 3, 4),
                           BUF(100, 2, 3)};
    qkv_plan_buffer b[5];
    memcpy(b, a, sizeof a);
    size_t arena_a, arena_b, lower;
    plan_ok(a, 5, ALIGN, &arena_a, &lower);
    plan_ok(b, 5, ALIGN, &arena_b, &lower);
    cr_assert_eq(arena_a, arena_b);
    for (size_t i = 0; i < 5; i++)
        cr_assert_eq(a[i].offset, b[i].offset);
    /* Equal sizes and first uses: ties go to the lower index. */
    cr_assert_lt(a[0].offset, a[1].offset);
}

Test(planner, negative_and_sparse_steps_are_allowed)
{
    qkv_plan_buffer bufs[] = {BUF(64, -5, -1), BUF(64, -1, 1000000), BUF(64, INT32_MAX, INT32_MAX),
                              BUF(64, INT32_MIN, INT32_MAX)};
    size_t arena, lower;
    plan_ok(bufs, 4, ALIGN, &arena, &lower);
    cr_assert_eq(lower, 192);
    cr_assert_eq(arena, 192);
}

Test(planner, every_strategy_gives_a_sound_plan_and_best_is_smallest)
{
    qkv_plan_buffer base[] = {BUF(500, 0, 9),  BUF(4000, 1, 2), BUF(300, 2, 6),  BUF(2500, 3, 4),
                              BUF(1200, 4, 8), BUF(64, 0, 9),   BUF(3000, 6, 7), BUF(800, 8, 9)};
    enum { N = sizeof base / sizeof base[0] };
    size_t min_arena = SIZE_MAX;
    for (int o = QKV_PLAN_BY_SIZE; o < QKV_PLAN_STRATEGY_COUNT_; o++) {
        qkv_plan_buffer bufs[N];
        memcpy(bufs, base, sizeof base);
        size_t arena, lower;
        qkv_plan_strategy chosen;
        qkv_error err = {0};
        cr_assert_eq(qkv_planner_assign_with(bufs, N, ALIGN, (qkv_plan_strategy)o, &arena, &lower,
                                             &chosen, &err),
                     QKV_OK, "%s", err.message);
        cr_assert_eq((int)chosen, o);
        check_plan(bufs, N, ALIGN, arena, lower);
        if (arena < min_arena)
            min_arena = arena;
    }
    qkv_plan_buffer bufs[N];
    memcpy(bufs, base, sizeof base);
    size_t arena, lower;
    plan_ok(bufs, N, ALIGN, &arena, &lower);
    cr_assert_eq(arena, min_arena);
    cr_assert_str_eq(qkv_planner_strategy_name(QKV_PLAN_BY_AREA), "area");
    cr_assert_str_eq(qkv_planner_strategy_name((qkv_plan_strategy)99), "unknown");
}

/* ---- errors ----------------------------------------------------------------- */

/* Sentinel offsets that an erroring call must leave alone. */
static void fill_sentinels(qkv_plan_buffer *bufs, size_t n)
{
    for (size_t i = 0; i < n; i++)
        bufs[i].offset = 1000 + i;
}

static void assert_sentinels(const qkv_plan_buffer *bufs, size_t n)
{
    for (size_t i = 0; i < n; i++)
        cr_assert_eq(bufs[i].offset, 1000 + i, "buffer %zu offset changed on error", i);
}

Test(planner, refuses_alignment_that_is_not_a_power_of_two)
{
    qkv_plan_buffer bufs[] = {BUF(100, 0, 1), BUF(100, 1, 2)};
    size_t bad[] = {0, 3, 48, 100};
    for (size_t k = 0; k < sizeof bad / sizeof bad[0]; k++) {
        fill_sentinels(bufs, 2);
        size_t arena = 7, lower = 7;
        qkv_error err = {0};
        cr_assert_eq(qkv_planner_assign(bufs, 2, bad[k], &arena, &lower, &err),
                     QKV_ERR_INVALID_ARGUMENT);
        cr_assert_eq(err.status, QKV_ERR_INVALID_ARGUMENT);
        char want[64];
        snprintf(want, sizeof want, "alignment %zu is not a power of two", bad[k]);
        cr_assert(strstr(err.message, want), "message: %s", err.message);
        assert_sentinels(bufs, 2);
        cr_assert_eq(arena, 7);
        cr_assert_eq(lower, 7);
    }
}

Test(planner, refuses_last_use_before_first_use_naming_the_buffer)
{
    qkv_plan_buffer bufs[] = {BUF(100, 0, 1), BUF(100, 1, 2), BUF(100, 5, 4)};
    fill_sentinels(bufs, 3);
    size_t arena = 7;
    qkv_error err = {0};
    cr_assert_eq(qkv_planner_assign(bufs, 3, ALIGN, &arena, NULL, &err), QKV_ERR_INVALID_ARGUMENT);
    cr_assert_str_eq(err.message, "planner: buffer 2: last_use 4 is before first_use 5");
    assert_sentinels(bufs, 3);
    cr_assert_eq(arena, 7);
    /* err may be NULL. */
    cr_assert_eq(qkv_planner_assign(bufs, 3, ALIGN, &arena, NULL, NULL), QKV_ERR_INVALID_ARGUMENT);
}

Test(planner, refuses_null_buffers_and_unknown_strategy)
{
    size_t arena;
    qkv_error err = {0};
    cr_assert_eq(qkv_planner_assign(NULL, 3, ALIGN, &arena, NULL, &err), QKV_ERR_INVALID_ARGUMENT);
    cr_assert(strstr(err.message, "3 buffers but bufs is NULL"), "message: %s", err.message);
    qkv_plan_buffer bufs[] = {BUF(1, 0, 0)};
    cr_assert_eq(
        qkv_planner_assign_with(bufs, 1, ALIGN, QKV_PLAN_STRATEGY_COUNT_, &arena, NULL, NULL, &err),
        QKV_ERR_INVALID_ARGUMENT);
    cr_assert(strstr(err.message, "unknown strategy"), "message: %s", err.message);
}

Test(planner, refuses_size_that_overflows_when_aligned)
{
    qkv_plan_buffer bufs[] = {BUF(100, 0, 1), BUF(SIZE_MAX - 10, 1, 2)};
    fill_sentinels(bufs, 2);
    size_t arena = 7;
    qkv_error err = {0};
    cr_assert_eq(qkv_planner_assign(bufs, 2, ALIGN, &arena, NULL, &err), QKV_ERR_SHAPE);
    cr_assert(strstr(err.message, "buffer 1:"), "message: %s", err.message);
    cr_assert(strstr(err.message, "overflow size_t when aligned to 64"), "message: %s",
              err.message);
    assert_sentinels(bufs, 2);
    cr_assert_eq(arena, 7);
}

Test(planner, refuses_live_buffers_summing_past_size_max)
{
    size_t half = (SIZE_MAX / 2 + 1) & ~(size_t)(ALIGN - 1); /* aligned, two of them overflow */
    qkv_plan_buffer bufs[] = {BUF(half, 0, 2), BUF(half, 1, 3)};
    fill_sentinels(bufs, 2);
    size_t arena = 7, lower = 7;
    qkv_error err = {0};
    cr_assert_eq(qkv_planner_assign(bufs, 2, ALIGN, &arena, &lower, &err), QKV_ERR_SHAPE);
    cr_assert(strstr(err.message, "live at the same step"), "message: %s", err.message);
    assert_sentinels(bufs, 2);
    cr_assert_eq(arena, 7);
    cr_assert_eq(lower, 7);

    /* The same two sizes at disjoint times fit: they share offset 0. */
    bufs[1].first_use = 3;
    plan_ok(bufs, 2, ALIGN, &arena, &lower);
    cr_assert_eq(arena, half);
}

Test(planner, refuses_plan_whose_arena_passes_size_max)
{
    /* In units of u, every strategy needs an arena of 12 for these five
     * buffers while the lower bound is 9 (checked at unit scale first); with
     * 11 u <= SIZE_MAX < 12 u the bound fits and no plan does. */
    qkv_plan_buffer unit[] = {BUF(3, 0, 2), BUF(6, 3, 3), BUF(2, 2, 3), BUF(6, 0, 1), BUF(1, 2, 4)};
    enum { N = sizeof unit / sizeof unit[0] };
    size_t arena = 7, lower = 7;
    plan_ok(unit, N, 1, &arena, &lower);
    cr_assert_eq(arena, 12);
    cr_assert_eq(lower, 9);

    size_t u = (SIZE_MAX / 11) & ~(size_t)(ALIGN - 1);
    qkv_plan_buffer bufs[N];
    for (size_t i = 0; i < N; i++)
        bufs[i] = (qkv_plan_buffer)BUF(unit[i].bytes * u, unit[i].first_use, unit[i].last_use);
    fill_sentinels(bufs, N);
    arena = 7;
    lower = 7;
    qkv_error err = {0};
    cr_assert_eq(qkv_planner_assign(bufs, N, ALIGN, &arena, &lower, &err), QKV_ERR_SHAPE);
    cr_assert(strstr(err.message, "does not fit below"), "message: %s", err.message);
    assert_sentinels(bufs, N);
    cr_assert_eq(arena, 7);
    cr_assert_eq(lower, 7);
}

/* ---- the dump --------------------------------------------------------------- */

Test(planner, dump_draws_one_row_per_step_and_summary)
{
    qkv_plan_buffer bufs[] = {BUF(256, 0, 1), BUF(128, 0, 3), BUF(128, 2, 3)};
    size_t arena, lower;
    plan_ok(bufs, 3, ALIGN, &arena, &lower);
    char *text = NULL;
    size_t text_bytes = 0;
    FILE *f = open_memstream(&text, &text_bytes);
    cr_assert_not_null(f);
    qkv_planner_dump(f, bufs, 3, ALIGN, arena);
    fclose(f);
    cr_assert(strstr(text, "arena 384 bytes, lower bound 384 bytes (ratio 1.000)"), "%s", text);
    /* Step 0: buffer 0 in the low 2/3 of the arena, buffer 1 above it. */
    /* 64 columns of 6 bytes: buffer 0 is bytes 0..255 (columns 0..41), buffer 1
     * bytes 256..383 (columns 42..63), buffer 2 bytes 0..127 (columns 0..20). */
    cr_assert(strstr(text,
                     "         0 |000000000000000000000000000000000000000000111111111111111111111"
                     "1| 384\n"),
              "%s", text);
    cr_assert(strstr(text,
                     "         3 |222222222222222222222.....................11111111111111111111"
                     "11| 256\n"),
              "%s", text);
    cr_assert(strstr(text, "    2   2              128                0          2          3\n"),
              "%s", text);
    free(text);
}

Test(planner, dump_marks_shared_columns_and_handles_empty_plans)
{
    qkv_plan_buffer bad[] = {{128, 0, 1, 0}, {128, 1, 2, 64}};
    char *text = NULL;
    size_t text_bytes = 0;
    FILE *f = open_memstream(&text, &text_bytes);
    cr_assert_not_null(f);
    qkv_planner_dump(f, bad, 2, ALIGN, 192);
    qkv_planner_dump(f, NULL, 0, ALIGN, 0);
    qkv_plan_buffer zero[] = {{0, 0, 0, 0}};
    qkv_planner_dump(f, zero, 1, 3 /* not a power of two: treated as 1 */, 0);
    fclose(f);
    /* Step 1: both live, columns 21..41 hold both. */
    cr_assert(strstr(text,
                     "         1 |000000000000000000000+++++++++++++++++++++1111111111111111111111"
                     "| 256\n"),
              "%s", text);
    cr_assert(strstr(text, "arena 192 bytes, lower bound 256 bytes (ratio 0.750)\n"), "%s", text);
    cr_assert(strstr(text, "arena 0 bytes, lower bound 0 bytes (ratio n/a)\n"), "%s", text);
    free(text);
    qkv_planner_dump(NULL, bad, 2, ALIGN, 192); /* no-op */
}

/* ---- randomized property test --------------------------------------------- */

static uint64_t rng_next(uint64_t *s) /* splitmix64: same sequence everywhere */
{
    uint64_t z = (*s += 0x9e3779b97f4a7c15u);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9u;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebu;
    return z ^ (z >> 31);
}

static size_t rng_below(uint64_t *s, size_t n) { return (size_t)(rng_next(s) % n); }

Test(planner, random_instances_never_overlap_and_respect_lower_bound)
{
    uint64_t seed = 20240611;
    double max_ratio = 1.0, sum_ratio = 0;
    double order_max[QKV_PLAN_STRATEGY_COUNT_] = {0}, order_sum[QKV_PLAN_STRATEGY_COUNT_] = {0};
    size_t order_wins[QKV_PLAN_STRATEGY_COUNT_] = {0};
    enum { INSTANCES = 600, MAX_N = 150 };
    qkv_plan_buffer *bufs = malloc(MAX_N * sizeof *bufs);
    qkv_plan_buffer *copy = malloc(MAX_N * sizeof *bufs);
    cr_assert(bufs && copy);
    for (int inst = 0; inst < INSTANCES; inst++) {
        size_t n = 1 + rng_below(&seed, MAX_N);
        int32_t steps = 1 + (int32_t)rng_below(&seed, 60);
        size_t alignment = (size_t)1 << rng_below(&seed, 9);
        int shape = inst % 3; /* uniform sizes, log-uniform sizes, short chains */
        for (size_t i = 0; i < n; i++) {
            int32_t first = (int32_t)rng_below(&seed, (size_t)steps);
            int32_t span = shape == 2 ? (int32_t)rng_below(&seed, 3)
                                      : (int32_t)rng_below(&seed, (size_t)steps - first);
            size_t bytes = shape == 1 ? (size_t)1 << rng_below(&seed, 20) : rng_below(&seed, 10000);
            if (rng_below(&seed, 20) == 0)
                bytes = 0;
            bufs[i] = (qkv_plan_buffer)BUF(bytes, first, first + span);
        }
        size_t arena, lower;
        size_t min_arena = SIZE_MAX;
        for (int o = QKV_PLAN_BY_SIZE; o < QKV_PLAN_STRATEGY_COUNT_; o++) {
            memcpy(copy, bufs, n * sizeof *bufs);
            qkv_error err = {0};
            cr_assert_eq(qkv_planner_assign_with(copy, n, alignment, (qkv_plan_strategy)o, &arena,
                                                 &lower, NULL, &err),
                         QKV_OK, "instance %d: %s", inst, err.message);
            check_plan(copy, n, alignment, arena, lower);
            if (o != QKV_PLAN_TWO_SIDED) /* may stack on top of the ceiling */
                cr_assert_leq(arena, total_aligned(bufs, n, alignment));
            double r = lower ? (double)arena / (double)lower : 1.0;
            order_sum[o] += r;
            if (r > order_max[o])
                order_max[o] = r;
            if (arena < min_arena)
                min_arena = arena;
        }
        qkv_plan_strategy chosen;
        qkv_error err = {0};
        cr_assert_eq(qkv_planner_assign_with(bufs, n, alignment, QKV_PLAN_BEST, &arena, &lower,
                                             &chosen, &err),
                     QKV_OK);
        check_plan(bufs, n, alignment, arena, lower);
        cr_assert_eq(arena, min_arena, "instance %d: best is not the smallest", inst);
        order_wins[chosen]++;
        double r = lower ? (double)arena / (double)lower : 1.0;
        sum_ratio += r;
        if (r > max_ratio)
            max_ratio = r;
    }
    cr_log_info("random: %d instances, arena/lower bound max %.3f mean %.3f", INSTANCES, max_ratio,
                sum_ratio / INSTANCES);
    for (int o = QKV_PLAN_BY_SIZE; o < QKV_PLAN_STRATEGY_COUNT_; o++)
        cr_log_info("random: strategy %-9s alone: max %.3f mean %.3f, chosen by best %zu times",
                    qkv_planner_strategy_name((qkv_plan_strategy)o), order_max[o],
                    order_sum[o] / INSTANCES, order_wins[o]);
    free(bufs);
    free(copy);
}

/* ---- transformer-shaped workloads ----------------------------------------- */

/* A graph in execution order: each node is one step that writes one or more
 * buffers and reads earlier ones; a read extends the buffer's last_use. */
typedef struct graph {
    qkv_plan_buffer *bufs;
    size_t n, cap;
    int32_t step; /* step of the node being built */
} graph;

static size_t g_new_buffer(graph *g, size_t bytes)
{
    if (g->n == g->cap) {
        g->cap = g->cap ? 2 * g->cap : 256;
        g->bufs = realloc(g->bufs, g->cap * sizeof *g->bufs);
        cr_assert_not_null(g->bufs);
    }
    g->bufs[g->n] = (qkv_plan_buffer)BUF(bytes, g->step, g->step);
    return g->n++;
}

static void g_read(graph *g, size_t buf)
{
    if (g->bufs[buf].last_use < g->step)
        g->bufs[buf].last_use = g->step;
}

/* One node: reads `inputs`, writes one buffer of `bytes`. */
static size_t g_node(graph *g, size_t bytes, size_t ninputs, const size_t *inputs)
{
    g->step++;
    for (size_t k = 0; k < ninputs; k++)
        g_read(g, inputs[k]);
    return g_new_buffer(g, bytes);
}

#define NODE(g, bytes, ...)                                                                        \
    g_node((g), (bytes), sizeof((size_t[]){__VA_ARGS__}) / sizeof(size_t), (size_t[]){__VA_ARGS__})

/* Kernel scratch for the node just built (live during that step only). */
static void g_scratch(graph *g, size_t bytes) { g_new_buffer(g, bytes); }

/* A graph output: live to the end of the run. */
static void g_output(graph *g, size_t buf) { g->bufs[buf].last_use = INT32_MAX; }

typedef enum model_kind {
    BERT,    /* post-LN, erf GELU, separate q/k/v projections */
    GPT2,    /* pre-LN, tanh GELU, fused QKV + Split, causal mask, presents as outputs */
    LLAMA,   /* RMSNorm, RoPE, grouped KV heads, SwiGLU, KV cache (past inputs, presents) */
    WHISPER, /* encoder, then a decoder with self- and cross-attention */
} model_kind;

typedef struct model_cfg {
    const char *name;
    model_kind kind;
    size_t layers, batch, seq, hidden, heads, ffn;
    size_t vocab;      /* LM head width; 0: none */
    int decomposed_ln; /* ReduceMean/Sub/Pow/... instead of LayerNormalization */
    size_t kv_heads;   /* LLAMA: grouped KV heads */
    size_t past;       /* LLAMA: cached tokens; WHISPER: decoder tokens */
    size_t dec_layers; /* WHISPER */
} model_cfg;

/* Buffer sizes are float32. Graph inputs and outputs are planned too: a worst
 * case, since the runtime may keep them outside the arena. */
enum { F32 = 4 };

/* LayerNormalization over `rows` rows of `width`, or its decomposed export. */
static size_t layer_norm(graph *g, size_t rows, size_t width, int decomposed, size_t x)
{
    size_t full = rows * width * F32, row = rows * F32;
    if (!decomposed) {
        size_t y = NODE(g, full, x);
        g_scratch(g, 2 * row); /* mean and inverse std per row */
        return y;
    }
    size_t mean = NODE(g, row, x);
    size_t d = NODE(g, full, x, mean);
    size_t sq = NODE(g, full, d);
    size_t var = NODE(g, row, sq);
    size_t ve = NODE(g, row, var);
    size_t sd = NODE(g, row, ve);
    size_t nrm = NODE(g, full, d, sd);
    size_t w = NODE(g, full, nrm);
    return NODE(g, full, w);
}

/* RMSNorm as exported: Pow, ReduceMean, Add, Sqrt, Div, Mul. */
static size_t rms_norm(graph *g, size_t rows, size_t width, size_t x)
{
    size_t full = rows * width * F32, row = rows * F32;
    size_t sq = NODE(g, full, x);
    size_t ms = NODE(g, row, sq);
    size_t e = NODE(g, row, ms);
    size_t r = NODE(g, row, e);
    size_t n = NODE(g, full, x, r);
    return NODE(g, full, n);
}

/* x reshaped and transposed to heads, as exporters write it. */
static size_t to_heads(graph *g, size_t x, size_t bytes)
{
    size_t r = NODE(g, bytes, x);
    return NODE(g, bytes, r);
}

/* Scaled dot-product attention of qh (B, H, Tq, dh) over kt (B, H, dh, Tk) and
 * vh (B, H, Tk, dh), with an optional additive mask; returns (B, Tq, D). */
static size_t attention(graph *g, size_t B, size_t H, size_t Tq, size_t Tk, size_t D, size_t qh,
                        size_t kt, size_t vh, const size_t *mask)
{
    size_t scores = B * H * Tq * Tk * F32, out = B * Tq * D * F32;
    size_t s = NODE(g, scores, qh, kt);
    g_scratch(g, 256 * 1024); /* GEMM packing */
    s = NODE(g, scores, s);
    if (mask)
        s = NODE(g, scores, s, *mask);
    size_t p = NODE(g, scores, s);
    size_t ctx = NODE(g, out, p, vh);
    ctx = NODE(g, out, ctx);
    return NODE(g, out, ctx);
}

/* MatMul + bias Add, with GEMM packing scratch. */
static size_t linear(graph *g, size_t bytes, size_t x)
{
    size_t y = NODE(g, bytes, x);
    g_scratch(g, 256 * 1024);
    return NODE(g, bytes, y);
}

static void build_bert_gpt2(graph *g, const model_cfg *c)
{
    int gpt2 = c->kind == GPT2;
    size_t B = c->batch, S = c->seq, D = c->hidden, H = c->heads, F = c->ffn;
    size_t rows = B * S, bsd = B * S * D * F32, bsf = B * S * F * F32;

    /* Embeddings and the additive attention mask. */
    size_t ids = g_new_buffer(g, B * S * 8);
    size_t mask_in = g_new_buffer(g, B * S * 8);
    size_t tok = NODE(g, bsd, ids);
    size_t pos_ids = NODE(g, S * 8, ids);
    size_t pos = NODE(g, S * D * F32, pos_ids);
    size_t h = NODE(g, bsd, tok, pos);
    if (!gpt2) {
        size_t type = NODE(g, bsd, ids);
        h = NODE(g, bsd, h, type);
        h = layer_norm(g, rows, D, c->decomposed_ln, h);
    }
    size_t m1 = NODE(g, B * S * 8, mask_in);
    size_t m2 = NODE(g, B * S * F32, m1);
    size_t m3 = NODE(g, B * S * F32, m2);
    size_t mask = NODE(g, B * S * F32, m3); /* (B, 1, 1, S), read by every layer */
    if (gpt2) { /* causal: Where(tril, scores, -inf) folded into one additive mask */
        size_t tril = NODE(g, S * S, ids);
        mask = NODE(g, B * S * S * F32, tril, mask);
    }

    for (size_t l = 0; l < c->layers; l++) {
        size_t x = gpt2 ? layer_norm(g, rows, D, c->decomposed_ln, h) : h;
        size_t q, k, v;
        if (gpt2) { /* fused QKV projection, then Split */
            size_t qkv = linear(g, 3 * bsd, x);
            q = NODE(g, bsd, qkv);
            k = g_new_buffer(g, bsd);
            v = g_new_buffer(g, bsd);
        } else {
            q = linear(g, bsd, x);
            k = linear(g, bsd, x);
            v = linear(g, bsd, x);
        }
        size_t qh = to_heads(g, q, bsd);
        size_t kh = to_heads(g, k, bsd);
        size_t vh = to_heads(g, v, bsd);
        if (gpt2) { /* present = stack(k, v): a graph output */
            size_t ku = NODE(g, bsd, kh);
            size_t vu = NODE(g, bsd, vh);
            size_t present = NODE(g, 2 * bsd, ku, vu);
            g_output(g, present);
        }
        size_t kt = NODE(g, bsd, kh); /* (B, H, dh, S) */
        size_t ctx = attention(g, B, H, S, S, D, qh, kt, vh, &mask);
        size_t o = linear(g, bsd, ctx);
        size_t r1 = NODE(g, bsd, o, h);
        size_t y; /* input of the MLP */
        if (gpt2) {
            y = layer_norm(g, rows, D, c->decomposed_ln, r1);
        } else { /* post-LN: the second residual adds the normalized value */
            r1 = layer_norm(g, rows, D, c->decomposed_ln, r1);
            y = r1;
        }
        size_t u = linear(g, bsf, y);
        size_t act;
        if (gpt2) { /* 0.5 x (1 + tanh(sqrt(2/pi) (x + 0.044715 x^3))) */
            size_t t = NODE(g, bsf, u);
            t = NODE(g, bsf, t);
            t = NODE(g, bsf, u, t);
            t = NODE(g, bsf, t);
            t = NODE(g, bsf, t);
            t = NODE(g, bsf, t);
            t = NODE(g, bsf, u, t);
            act = NODE(g, bsf, t);
        } else { /* x * 0.5 * (1 + erf(x / sqrt 2)) */
            size_t t = NODE(g, bsf, u);
            t = NODE(g, bsf, t);
            t = NODE(g, bsf, t);
            t = NODE(g, bsf, u, t);
            act = NODE(g, bsf, t);
        }
        size_t d = linear(g, bsd, act);
        size_t r2 = NODE(g, bsd, d, r1);
        h = gpt2 ? r2 : layer_norm(g, rows, D, c->decomposed_ln, r2);
    }

    if (gpt2) {
        h = layer_norm(g, rows, D, c->decomposed_ln, h);
        if (c->vocab)
            g_output(g, NODE(g, B * S * c->vocab * F32, h));
    } else {
        size_t first = NODE(g, B * D * F32, h);
        size_t pooled = linear(g, B * D * F32, first);
        g_output(g, NODE(g, B * D * F32, pooled));
    }
    g_output(g, h);
}

/* Rotary embedding of t (bytes) with the shared cos/sin tables. */
static size_t rope(graph *g, size_t t, size_t bytes, size_t cos_t, size_t sin_t)
{
    size_t x1 = NODE(g, bytes / 2, t);
    size_t x2 = NODE(g, bytes / 2, t);
    size_t nx2 = NODE(g, bytes / 2, x2);
    size_t rot = NODE(g, bytes, nx2, x1);
    size_t a = NODE(g, bytes, t, cos_t);
    size_t b = NODE(g, bytes, rot, sin_t);
    return NODE(g, bytes, a, b);
}

static void build_llama(graph *g, const model_cfg *c)
{
    size_t B = c->batch, T = c->seq, P = c->past, D = c->hidden, H = c->heads, KV = c->kv_heads;
    size_t dh = D / H, F = c->ffn, rows = B * T, all = P + T;
    size_t btd = rows * D * F32, kv_new = B * KV * T * dh * F32, kv_all = B * KV * all * dh * F32;
    size_t kv_full = B * H * all * dh * F32, btf = rows * F * F32;

    size_t ids = g_new_buffer(g, rows * 8);
    size_t past[2 * 64];
    cr_assert_leq(c->layers, 64);
    for (size_t l = 0; P && l < 2 * c->layers; l++)
        past[l] = g_new_buffer(g, B * KV * P * dh * F32);
    size_t h = NODE(g, btd, ids);
    size_t pos = NODE(g, T * 8, ids);
    size_t cos_t = NODE(g, T * dh * F32, pos);
    size_t sin_t = NODE(g, T * dh * F32, pos);
    size_t mask = NODE(g, B * T * all * F32, ids); /* causal over past + new */

    for (size_t l = 0; l < c->layers; l++) {
        size_t x = rms_norm(g, rows, D, h);
        size_t q = NODE(g, btd, x);
        g_scratch(g, 256 * 1024);
        size_t k = NODE(g, kv_new, x);
        size_t v = NODE(g, kv_new, x);
        size_t qh = rope(g, to_heads(g, q, btd), btd, cos_t, sin_t);
        size_t kh = rope(g, to_heads(g, k, kv_new), kv_new, cos_t, sin_t);
        size_t vh = to_heads(g, v, kv_new);
        size_t pk = P ? NODE(g, kv_all, past[2 * l], kh) : kh;
        size_t pv = P ? NODE(g, kv_all, past[2 * l + 1], vh) : vh;
        g_output(g, pk);
        g_output(g, pv);
        /* Grouped heads: Unsqueeze, Expand, Reshape to H heads. */
        size_t ke = NODE(g, kv_full, NODE(g, kv_all, pk));
        size_t ve = NODE(g, kv_full, NODE(g, kv_all, pv));
        ke = NODE(g, kv_full, ke);
        ve = NODE(g, kv_full, ve);
        size_t kt = NODE(g, kv_full, ke);
        size_t ctx = attention(g, B, H, T, all, D, qh, kt, ve, &mask);
        size_t o = NODE(g, btd, ctx);
        size_t r1 = NODE(g, btd, o, h);
        size_t y = rms_norm(g, rows, D, r1);
        size_t gate = NODE(g, btf, y);
        g_scratch(g, 256 * 1024);
        size_t up = NODE(g, btf, y);
        size_t sg = NODE(g, btf, gate);
        size_t silu = NODE(g, btf, gate, sg);
        size_t m = NODE(g, btf, silu, up);
        size_t d = NODE(g, btd, m);
        g_scratch(g, 256 * 1024);
        h = NODE(g, btd, d, r1);
    }
    h = rms_norm(g, rows, D, h);
    g_output(g, NODE(g, rows * c->vocab * F32, h));
}

static void build_whisper(graph *g, const model_cfg *c)
{
    size_t B = c->batch, S = c->seq, T = c->past, D = c->hidden, H = c->heads, F = c->ffn;
    size_t bsd = B * S * D * F32, btd = B * T * D * F32;

    /* Encoder: two convolutions over the mel input, then pre-LN layers. */
    size_t mel = g_new_buffer(g, B * 80 * 2 * S * F32);
    size_t c1 = NODE(g, B * D * 2 * S * F32, mel);
    c1 = NODE(g, B * D * 2 * S * F32, c1);
    size_t c2 = NODE(g, bsd, c1);
    c2 = NODE(g, bsd, c2);
    size_t h = NODE(g, bsd, NODE(g, bsd, c2));
    for (size_t l = 0; l < c->layers; l++) {
        size_t x = layer_norm(g, B * S, D, 0, h);
        size_t qh = to_heads(g, linear(g, bsd, x), bsd);
        size_t kt = to_heads(g, NODE(g, bsd, x), bsd);
        size_t vh = to_heads(g, linear(g, bsd, x), bsd);
        size_t r1 = NODE(g, bsd, linear(g, bsd, attention(g, B, H, S, S, D, qh, kt, vh, NULL)), h);
        size_t y = layer_norm(g, B * S, D, 0, r1);
        size_t u = NODE(g, B * S * F * F32, linear(g, B * S * F * F32, y)); /* GELU */
        h = NODE(g, bsd, linear(g, bsd, u), r1);
    }
    size_t enc = layer_norm(g, B * S, D, 0, h); /* read by every decoder layer */

    /* Decoder over T tokens. */
    size_t ids = g_new_buffer(g, B * T * 8);
    size_t mask = NODE(g, T * T * F32, ids);
    h = NODE(g, btd, NODE(g, btd, ids));
    for (size_t l = 0; l < c->dec_layers; l++) {
        size_t x = layer_norm(g, B * T, D, 0, h);
        size_t qh = to_heads(g, linear(g, btd, x), btd);
        size_t kt = to_heads(g, NODE(g, btd, x), btd);
        size_t vh = to_heads(g, linear(g, btd, x), btd);
        size_t a = attention(g, B, H, T, T, D, qh, kt, vh, &mask);
        size_t r1 = NODE(g, btd, linear(g, btd, a), h);
        x = layer_norm(g, B * T, D, 0, r1);
        qh = to_heads(g, linear(g, btd, x), btd);
        kt = to_heads(g, NODE(g, bsd, enc), bsd); /* cross-attention over the encoder */
        vh = to_heads(g, linear(g, bsd, enc), bsd);
        a = attention(g, B, H, T, S, D, qh, kt, vh, NULL);
        size_t r2 = NODE(g, btd, linear(g, btd, a), r1);
        size_t y = layer_norm(g, B * T, D, 0, r2);
        size_t u = NODE(g, B * T * F * F32, linear(g, B * T * F * F32, y));
        h = NODE(g, btd, linear(g, btd, u), r2);
    }
    h = layer_norm(g, B * T, D, 0, h);
    g_output(g, NODE(g, B * T * c->vocab * F32, h));
}

static void build_model(graph *g, const model_cfg *c)
{
    memset(g, 0, sizeof *g);
    switch (c->kind) {
    case BERT:
    case GPT2:
        build_bert_gpt2(g, c);
        break;
    case LLAMA:
        build_llama(g, c);
        break;
    case WHISPER:
        build_whisper(g, c);
        break;
    }
    /* Outputs live until the last step, not to INT32_MAX: keeps the dump short. */
    for (size_t i = 0; i < g->n; i++)
        if (g->bufs[i].last_use == INT32_MAX)
            g->bufs[i].last_use = g->step + 1;
}

static const model_cfg transformer_models[] = {
    /* name                          kind   L  B     S     D   H     F  vocab dLN KV past decL */
    {"bert-base s128", BERT, 12, 1, 128, 768, 12, 3072, 0, 0, 0, 0, 0},
    {"bert-base s512", BERT, 12, 1, 512, 768, 12, 3072, 0, 0, 0, 0, 0},
    {"bert-base s128 b8 decomposed-LN", BERT, 12, 8, 128, 768, 12, 3072, 0, 1, 0, 0, 0},
    {"bert-small s64", BERT, 4, 1, 64, 512, 8, 2048, 0, 0, 0, 0, 0},
    {"gpt2 s256 no-head", GPT2, 12, 1, 256, 768, 12, 3072, 0, 0, 0, 0, 0},
    {"gpt2 s1024 decomposed-LN", GPT2, 12, 1, 1024, 768, 12, 3072, 0, 1, 0, 0, 0},
    {"gpt2 s128 lm-head", GPT2, 12, 1, 128, 768, 12, 3072, 50257, 0, 0, 0, 0},
    {"gpt2-medium s512 b2", GPT2, 24, 2, 512, 1024, 16, 4096, 0, 0, 0, 0, 0},
    {"tinyllama prefill t128", LLAMA, 22, 1, 128, 2048, 32, 5632, 32000, 0, 4, 0, 0},
    {"tinyllama decode t1 past511", LLAMA, 22, 1, 1, 2048, 32, 5632, 32000, 0, 4, 511, 0},
    {"llama-7b decode t4 past1020 b2", LLAMA, 32, 2, 4, 4096, 32, 11008, 32000, 0, 32, 1020, 0},
    {"whisper-tiny enc1500 dec32", WHISPER, 4, 1, 1500, 384, 6, 1536, 51865, 0, 0, 32, 4},
    {"whisper-base enc1500 dec224 b4", WHISPER, 6, 4, 1500, 512, 8, 2048, 51865, 0, 0, 224, 6},
};

Test(planner, transformer_workloads_within_ten_percent_of_lower_bound)
{
    for (size_t mi = 0; mi < sizeof transformer_models / sizeof transformer_models[0]; mi++) {
        const model_cfg *c = &transformer_models[mi];
        graph g;
        build_model(&g, c);
        char line[512];
        int len = snprintf(line, sizeof line, "%-31s %5zu buffers:", c->name, g.n);
        for (int o = QKV_PLAN_BY_SIZE; o < QKV_PLAN_STRATEGY_COUNT_; o++) {
            size_t arena, lower;
            qkv_error err = {0};
            cr_assert_eq(qkv_planner_assign_with(g.bufs, g.n, ALIGN, (qkv_plan_strategy)o, &arena,
                                                 &lower, NULL, &err),
                         QKV_OK, "%s", err.message);
            check_plan(g.bufs, g.n, ALIGN, arena, lower);
            len += snprintf(line + len, sizeof line - (size_t)len, " %s %.3f",
                            qkv_planner_strategy_name((qkv_plan_strategy)o),
                            (double)arena / (double)lower);
        }
        size_t arena, lower;
        qkv_plan_strategy chosen;
        qkv_error err = {0};
        cr_assert_eq(qkv_planner_assign_with(g.bufs, g.n, ALIGN, QKV_PLAN_BEST, &arena, &lower,
                                             &chosen, &err),
                     QKV_OK, "%s", err.message);
        check_plan(g.bufs, g.n, ALIGN, arena, lower);
        double ratio = (double)arena / (double)lower;
        cr_log_info("%s -> best %s %.3f (arena %zu, lower bound %zu)", line,
                    qkv_planner_strategy_name(chosen), ratio, arena, lower);
        cr_assert_leq(ratio, 1.10, "%s: arena %zu is %.3f x the lower bound %zu", c->name, arena,
                      ratio, lower);
        if (getenv("QKV_PLANNER_DUMP") && mi == 0)
            qkv_planner_dump(stderr, g.bufs, g.n, ALIGN, arena);
        free(g.bufs);
    }
}
