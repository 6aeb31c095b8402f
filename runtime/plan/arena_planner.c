/*
 * arena_planner.c - greedy arena planner (offsets for buffers with known lifetimes).
 *
 * Each buffer, in some order, goes into a gap among the already-placed
 * buffers whose lifetimes intersect its own (a walk over a list of placed
 * buffers kept sorted by offset, as in TensorFlow Lite Micro's
 * GreedyMemoryPlanner). No single order wins everywhere, so the default runs
 * four cheap strategies and keeps the smallest arena, stopping early when one
 * reaches the lower bound: O(strategies * n^2) worst case, small for graphs of
 * a few thousand tensors.
 *
 * Measured (tests/test_planner.c): largest-first alone is within 1.5% of the
 * lower bound on the transformer-shaped workloads (BERT, GPT-2, LLaMA with a
 * KV cache, Whisper) and is what BEST keeps there; on random lifetimes the
 * other strategies take the mean arena / lower bound from 1.016 to 1.011
 * (worst 1.172 to 1.146); two-sided packing is what makes chains
 * (a -> b -> c -> ...) optimal, where largest-first is up to 1.4x the bound.
 */
#include "arena_planner.h"

#include <stdlib.h>
#include <string.h>

#include "error.h"
#include "size_math.h"

static bool is_power_of_two(size_t x) { return x != 0 && (x & (x - 1)) == 0; }

/* false on overflow. alignment is a power of two. */
static bool align_up(size_t bytes, size_t alignment, size_t *out)
{
    size_t t;
    if (qkv_add_overflow(bytes, alignment - 1, &t))
        return false;
    *out = t & ~(alignment - 1);
    return true;
}

static bool lifetimes_intersect(const qkv_plan_buffer *x, const qkv_plan_buffer *y)
{
    return x->first_use <= y->last_use && y->first_use <= x->last_use;
}

/* malloc(count * size), NULL on overflow too. */
static void *alloc_array(size_t count, size_t size)
{
    size_t bytes;
    if (qkv_mul_overflow(count, size, &bytes))
        return NULL;
    return malloc(bytes ? bytes : 1);
}

const char *qkv_planner_strategy_name(qkv_plan_strategy strategy)
{
    switch (strategy) {
    case QKV_PLAN_BEST:
        return "best";
    case QKV_PLAN_BY_SIZE:
        return "size";
    case QKV_PLAN_BY_AREA:
        return "area";
    case QKV_PLAN_BY_LIFETIME:
        return "lifetime";
    case QKV_PLAN_TWO_SIDED:
        return "two_sided";
    case QKV_PLAN_STRATEGY_COUNT_:
        break;
    }
    return "unknown";
}

/* ---- lower bound: a sweep over start/end events -------------------------- */

typedef struct live_event {
    int64_t step; /* first_use, or last_use + 1 for an end */
    size_t bytes; /* aligned */
    int starts;   /* 1 start, 0 end: ends sort first so a step's frees come first */
} live_event;

static int live_event_cmp(const void *pa, const void *pb)
{
    const live_event *a = pa, *b = pb;
    if (a->step != b->step)
        return a->step < b->step ? -1 : 1;
    return a->starts - b->starts;
}

/* Max over steps of the aligned bytes live; false if that sum overflows. */
static bool live_lower_bound(const qkv_plan_buffer *bufs, const size_t *aligned, size_t n,
                             live_event *events, size_t *out)
{
    size_t m = 0;
    for (size_t i = 0; i < n; i++) {
        if (aligned[i] == 0)
            continue;
        events[m++] = (live_event){bufs[i].first_use, aligned[i], 1};
        events[m++] = (live_event){(int64_t)bufs[i].last_use + 1, aligned[i], 0};
    }
    qsort(events, m, sizeof *events, live_event_cmp);
    size_t live = 0, peak = 0;
    for (size_t k = 0; k < m; k++) {
        if (!events[k].starts) {
            live -= events[k].bytes;
            continue;
        }
        if (qkv_add_overflow(live, events[k].bytes, &live))
            return false;
        if (live > peak)
            peak = live;
    }
    *out = peak;
    return true;
}

/* ---- placement ------------------------------------------------------------ */

typedef struct order_key {
    uint64_t primary; /* larger first */
    size_t bytes;     /* aligned; larger first */
    int32_t first_use;
    size_t index;
} order_key;

static int order_key_cmp(const void *pa, const void *pb)
{
    const order_key *a = pa, *b = pb;
    if (a->primary != b->primary)
        return a->primary > b->primary ? -1 : 1;
    if (a->bytes != b->bytes)
        return a->bytes > b->bytes ? -1 : 1;
    if (a->first_use != b->first_use)
        return a->first_use < b->first_use ? -1 : 1;
    return a->index < b->index ? -1 : a->index > b->index;
}

static uint64_t primary_key(qkv_plan_strategy strategy, const qkv_plan_buffer *b, size_t aligned)
{
    /* Fits: last_use - first_use + 1 <= 2^32. */
    uint64_t steps = (uint64_t)((int64_t)b->last_use - b->first_use) + 1;
    uint64_t area;
    switch (strategy) {
    case QKV_PLAN_BY_SIZE:
        return aligned;
    case QKV_PLAN_BY_AREA:
        /* Saturating: past 2^64 the order only needs to stay deterministic. */
        if (__builtin_mul_overflow((uint64_t)aligned, steps, &area))
            return UINT64_MAX;
        return area;
    case QKV_PLAN_BY_LIFETIME:
        return steps;
    case QKV_PLAN_TWO_SIDED:
        /* Earliest first: invert into 0 .. 2^32 - 1. */
        return (uint64_t)((int64_t)INT32_MAX - b->first_use);
    default:
        return 0;
    }
}

/* Scratch shared by every strategy tried. */
typedef struct plan_work {
    size_t *aligned;    /* (n) aligned sizes */
    order_key *keys;    /* (n) the nonzero buffers, in placement order */
    size_t *placed;     /* (n) placed buffers, sorted by offset */
    size_t *offsets;    /* (n) offsets of the strategy being tried */
    size_t *best;       /* (n) offsets of the best plan so far */
    live_event *events; /* (2n) */
} plan_work;

/*
 * Places the m buffers of w->keys, in that order, into w->offsets. Each goes
 * into a gap among the placed buffers alive at the same time: the lowest one
 * (first fit), or with two_sided the top of the highest gap that ends at or
 * below `ceiling` unless the first fit is offset 0. Returns false when an
 * offset + size would pass SIZE_MAX (then *failed names the buffer).
 */
static bool place_in_order(const qkv_plan_buffer *bufs, plan_work *w, size_t m, bool two_sided,
                           size_t ceiling, size_t *arena, size_t *failed)
{
    size_t nplaced = 0, high = 0;
    for (size_t k = 0; k < m; k++) {
        size_t i = w->keys[k].index;
        size_t need = w->aligned[i];
        /* Walk the placed buffers by offset; only those alive at the same
         * time as i constrain it. `at` is the lowest offset above all of them
         * seen so far, so [at, offsets[j]) is a gap. */
        size_t at = 0, low = SIZE_MAX, top = SIZE_MAX, end;
        for (size_t p = 0; p < nplaced; p++) {
            size_t j = w->placed[p];
            if (!lifetimes_intersect(&bufs[i], &bufs[j]))
                continue;
            size_t gap_end = w->offsets[j];
            if (gap_end >= at && gap_end - at >= need) {
                if (low == SIZE_MAX)
                    low = at;
                if (!two_sided)
                    break;
                if (gap_end > ceiling)
                    gap_end = ceiling;
                if (gap_end >= at && gap_end - at >= need)
                    top = gap_end - need;
            }
            size_t j_end = w->offsets[j] + w->aligned[j]; /* checked when j was placed */
            if (j_end > at)
                at = j_end;
        }
        /* The open gap above everything alive with i. */
        if (low == SIZE_MAX)
            low = at;
        if (two_sided && ceiling >= at && ceiling - at >= need)
            top = ceiling - need;
        /* Offsets, sizes and the ceiling are aligned, so `top` is too. */
        at = two_sided && low != 0 && top != SIZE_MAX ? top : low;
        if (qkv_add_overflow(at, need, &end)) {
            *failed = i;
            return false;
        }
        w->offsets[i] = at;
        if (end > high)
            high = end;
        /* Insert after every placed buffer at an offset <= at (binary search). */
        size_t lo = 0, hi = nplaced;
        while (lo < hi) {
            size_t mid = lo + (hi - lo) / 2;
            if (w->offsets[w->placed[mid]] <= at)
                lo = mid + 1;
            else
                hi = mid;
        }
        memmove(&w->placed[lo + 1], &w->placed[lo], (nplaced - lo) * sizeof *w->placed);
        w->placed[lo] = i;
        nplaced++;
    }
    *arena = high;
    return true;
}

/* Fills w->keys with the nonzero buffers sorted for `strategy`; returns their count. */
static size_t sort_for_strategy(const qkv_plan_buffer *bufs, size_t n, plan_work *w,
                                qkv_plan_strategy strategy)
{
    size_t m = 0;
    for (size_t i = 0; i < n; i++) {
        if (w->aligned[i] == 0)
            continue;
        w->keys[m++] = (order_key){primary_key(strategy, &bufs[i], w->aligned[i]), w->aligned[i],
                                   bufs[i].first_use, i};
    }
    qsort(w->keys, m, sizeof *w->keys, order_key_cmp);
    return m;
}

static void plan_work_free(plan_work *w)
{
    free(w->aligned);
    free(w->keys);
    free(w->placed);
    free(w->offsets);
    free(w->best);
    free(w->events);
}

/* The arguments of qkv_planner_assign_with, checked. */
static qkv_status check_args(const qkv_plan_buffer *bufs, size_t n, size_t alignment,
                             qkv_plan_strategy strategy, qkv_error *err)
{
    if (!is_power_of_two(alignment))
        return qkv_error_set(err, QKV_ERR_INVALID_ARGUMENT,
                             "planner: alignment %zu is not a power of two", alignment);
    if ((int)strategy < 0 || strategy >= QKV_PLAN_STRATEGY_COUNT_)
        return qkv_error_set(err, QKV_ERR_INVALID_ARGUMENT, "planner: unknown strategy %d",
                             (int)strategy);
    if (!bufs && n > 0)
        return qkv_error_set(err, QKV_ERR_INVALID_ARGUMENT, "planner: %zu buffers but bufs is NULL",
                             n);
    for (size_t i = 0; i < n; i++)
        if (bufs[i].last_use < bufs[i].first_use)
            return qkv_error_set(err, QKV_ERR_INVALID_ARGUMENT,
                                 "planner: buffer %zu: last_use %d is before first_use %d", i,
                                 (int)bufs[i].last_use, (int)bufs[i].first_use);
    return QKV_OK;
}

/* Allocates w's arrays for n > 0 buffers; false when out of memory (what
 * was allocated is for plan_work_free). */
static bool plan_work_alloc(plan_work *w, size_t n)
{
    w->aligned = alloc_array(n, sizeof *w->aligned);
    w->keys = alloc_array(n, sizeof *w->keys);
    w->placed = alloc_array(n, sizeof *w->placed);
    w->offsets = alloc_array(n, sizeof *w->offsets);
    w->best = alloc_array(n, sizeof *w->best);
    w->events = n <= SIZE_MAX / 2 ? alloc_array(2 * n, sizeof *w->events) : NULL;
    return w->aligned && w->keys && w->placed && w->offsets && w->best && w->events;
}

/* Places the buffers with each strategy in [first, last], keeping the
 * smallest arena's offsets in w->best (*arena, *strategy); stops early at
 * the lower bound, which nothing can beat. false when no strategy placed
 * every buffer (*failed: one that did not fit). */
static bool best_placement(const qkv_plan_buffer *bufs, size_t n, plan_work *w,
                           qkv_plan_strategy first, qkv_plan_strategy last, size_t lower,
                           size_t *arena, qkv_plan_strategy *strategy, size_t *failed)
{
    bool have_best = false;
    *failed = 0;
    for (int s = first; s <= (int)last; s++) {
        size_t m = sort_for_strategy(bufs, n, w, (qkv_plan_strategy)s);
        size_t a;
        if (!place_in_order(bufs, w, m, s == QKV_PLAN_TWO_SIDED, lower, &a, failed))
            continue;
        if (!have_best || a < *arena) {
            size_t *t = w->best;
            w->best = w->offsets;
            w->offsets = t;
            *arena = a;
            *strategy = (qkv_plan_strategy)s;
            have_best = true;
        }
        if (*arena == lower)
            break;
    }
    return have_best;
}

qkv_status qkv_planner_assign_with(qkv_plan_buffer *bufs, size_t n, size_t alignment,
                                   qkv_plan_strategy strategy, size_t *arena_bytes,
                                   size_t *lower_bound_bytes, qkv_plan_strategy *chosen,
                                   qkv_error *err)
{
    qkv_plan_strategy first = strategy, last = strategy;
    if (strategy == QKV_PLAN_BEST) {
        first = QKV_PLAN_BY_SIZE;
        last = QKV_PLAN_STRATEGY_COUNT_ - 1;
    }
    qkv_status st = check_args(bufs, n, alignment, strategy, err);
    if (st != QKV_OK)
        return st; /* the outputs stay as they were (the contract in arena_planner.h) */
    if (n == 0) {
        if (arena_bytes)
            *arena_bytes = 0;
        if (lower_bound_bytes)
            *lower_bound_bytes = 0;
        if (chosen)
            *chosen = first;
        return QKV_OK;
    }

    plan_work w = {0};
    if (!plan_work_alloc(&w, n)) {
        st = qkv_error_set(err, QKV_ERR_OUT_OF_MEMORY, "planner: out of memory for %zu buffers", n);
        goto done;
    }
    for (size_t i = 0; i < n; i++) {
        if (!align_up(bufs[i].bytes, alignment, &w.aligned[i])) {
            st = qkv_error_set(err, QKV_ERR_SHAPE,
                               "planner: buffer %zu: %zu bytes overflow size_t when aligned to %zu",
                               i, bufs[i].bytes, alignment);
            goto done;
        }
    }
    size_t lower, best_arena = 0, failed;
    if (!live_lower_bound(bufs, w.aligned, n, w.events, &lower)) {
        st = qkv_error_set(err, QKV_ERR_SHAPE,
                           "planner: buffers live at the same step total more than %zu bytes",
                           (size_t)SIZE_MAX);
        goto done;
    }
    qkv_plan_strategy best_strategy = first;
    if (!best_placement(bufs, n, &w, first, last, lower, &best_arena, &best_strategy, &failed)) {
        st = qkv_error_set(err, QKV_ERR_SHAPE,
                           "planner: buffer %zu (%zu bytes) does not fit below %zu bytes", failed,
                           bufs[failed].bytes, (size_t)SIZE_MAX);
        goto done;
    }
    for (size_t i = 0; i < n; i++)
        bufs[i].offset = w.aligned[i] ? w.best[i] : 0;
    if (arena_bytes)
        *arena_bytes = best_arena;
    if (lower_bound_bytes)
        *lower_bound_bytes = lower;
    if (chosen)
        *chosen = best_strategy;
done:
    plan_work_free(&w);
    return st;
}

qkv_status qkv_planner_assign(qkv_plan_buffer *bufs, size_t n, size_t alignment,
                              size_t *arena_bytes, size_t *lower_bound_bytes, qkv_error *err)
{
    return qkv_planner_assign_with(bufs, n, alignment, QKV_PLAN_BEST, arena_bytes,
                                   lower_bound_bytes, NULL, err);
}

/* ---- checking ------------------------------------------------------------ */

static void set_pair(size_t *a, size_t *b, size_t i, size_t j)
{
    if (a)
        *a = i;
    if (b)
        *b = j;
}

bool qkv_planner_find_overlap(const qkv_plan_buffer *bufs, size_t n, size_t alignment,
                              size_t arena_bytes, size_t *a, size_t *b)
{
    if (!is_power_of_two(alignment) || (!bufs && n > 0)) {
        set_pair(a, b, n, n);
        return true;
    }
    /* Deliberately the obvious pairwise check: it must be easy to trust. */
    for (size_t i = 0; i < n; i++) {
        size_t end;
        if (bufs[i].last_use < bufs[i].first_use || (bufs[i].offset & (alignment - 1)) != 0 ||
            qkv_add_overflow(bufs[i].offset, bufs[i].bytes, &end) || end > arena_bytes) {
            set_pair(a, b, i, i);
            return true;
        }
    }
    for (size_t i = 0; i < n; i++) {
        if (bufs[i].bytes == 0)
            continue;
        for (size_t j = i + 1; j < n; j++) {
            if (bufs[j].bytes == 0 || !lifetimes_intersect(&bufs[i], &bufs[j]))
                continue;
            /* Ends cannot overflow: checked above. */
            if (bufs[i].offset < bufs[j].offset + bufs[j].bytes &&
                bufs[j].offset < bufs[i].offset + bufs[i].bytes) {
                set_pair(a, b, i, j);
                return true;
            }
        }
    }
    return false;
}

/* ---- the picture ---------------------------------------------------------- */

enum { DUMP_COLUMNS = 64 };

static char buffer_char(size_t i)
{
    static const char chars[] = "0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ";
    return i < sizeof chars - 1 ? chars[i] : '*';
}

/* The column of arena byte x: floor(x * DUMP_COLUMNS / arena), without overflow. */
static size_t dump_column(size_t x, size_t arena)
{
    size_t c;
    if (arena <= SIZE_MAX / DUMP_COLUMNS)
        c = x / arena * DUMP_COLUMNS + x % arena * DUMP_COLUMNS / arena;
    else /* arena / DUMP_COLUMNS >= 2^57: close enough for a picture */
        c = x / (arena / DUMP_COLUMNS);
    return c < DUMP_COLUMNS ? c : DUMP_COLUMNS;
}

/* The smallest first_use or last_use greater than `after`; false if none. */
static bool next_step(const qkv_plan_buffer *bufs, size_t n, int64_t after, int64_t *step)
{
    bool found = false;
    for (size_t i = 0; i < n; i++) {
        int64_t s[2] = {bufs[i].first_use, bufs[i].last_use};
        for (int k = 0; k < 2; k++)
            if (s[k] > after && (!found || s[k] < *step)) {
                *step = s[k];
                found = true;
            }
    }
    return found;
}

void qkv_planner_dump(FILE *out, const qkv_plan_buffer *bufs, size_t n, size_t alignment,
                      size_t arena_bytes)
{
    if (!out)
        return;
    if (!is_power_of_two(alignment))
        alignment = 1;
    if (!bufs)
        n = 0;
    fprintf(out, "plan: %zu buffers, arena %zu bytes, %d columns of %.1f bytes\n", n, arena_bytes,
            DUMP_COLUMNS, (double)arena_bytes / DUMP_COLUMNS);
    fprintf(out, "  buf chr            bytes           offset      first       last\n");
    for (size_t i = 0; i < n; i++)
        fprintf(out, "%5zu   %c %16zu %16zu %10d %10d\n", i, buffer_char(i), bufs[i].bytes,
                bufs[i].offset, (int)bufs[i].first_use, (int)bufs[i].last_use);

    fprintf(out, "      step |");
    for (int c = 0; c < DUMP_COLUMNS; c++)
        fputc(c % 8 == 0 ? '|' : '-', out);
    fprintf(out, "| live bytes (aligned)\n");

    size_t lower = 0;
    bool lower_overflow = false;
    int64_t step = INT64_MIN;
    while (next_step(bufs, n, step, &step)) {
        char line[DUMP_COLUMNS + 1];
        memset(line, '.', DUMP_COLUMNS);
        line[DUMP_COLUMNS] = '\0';
        size_t live = 0;
        bool live_overflow = false;
        for (size_t i = 0; i < n; i++) {
            if (bufs[i].bytes == 0 || step < bufs[i].first_use || step > bufs[i].last_use)
                continue;
            size_t aligned;
            if (!align_up(bufs[i].bytes, alignment, &aligned) ||
                qkv_add_overflow(live, aligned, &live))
                live_overflow = true;
            if (arena_bytes == 0)
                continue;
            /* Columns [c0, c1): adjacent buffers never share one; a buffer
             * narrower than a column still gets one. */
            size_t end;
            if (qkv_add_overflow(bufs[i].offset, bufs[i].bytes, &end))
                end = SIZE_MAX;
            size_t c0 = dump_column(bufs[i].offset, arena_bytes);
            size_t c1 = dump_column(end, arena_bytes);
            if (c1 <= c0)
                c1 = c0 + 1;
            for (size_t c = c0; c < c1 && c < DUMP_COLUMNS; c++)
                line[c] = line[c] == '.' ? buffer_char(i) : '+';
        }
        if (live_overflow)
            lower_overflow = true;
        else if (live > lower)
            lower = live;
        if (live_overflow)
            fprintf(out, "%10lld |%s| overflow\n", (long long)step, line);
        else
            fprintf(out, "%10lld |%s| %zu\n", (long long)step, line, live);
    }

    if (lower_overflow)
        fprintf(out, "arena %zu bytes, lower bound overflows size_t\n", arena_bytes);
    else if (lower == 0)
        fprintf(out, "arena %zu bytes, lower bound 0 bytes (ratio n/a)\n", arena_bytes);
    else
        fprintf(out, "arena %zu bytes, lower bound %zu bytes (ratio %.3f)\n", arena_bytes, lower,
                (double)arena_bytes / (double)lower);
}
