/*
 * Once a plan exists for a set of input shapes, a run allocates nothing.
 *
 * The test binary interposes malloc and friends (forwarding to glibc's
 * __libc_* entry points) and counts calls while a run is in progress, on
 * every thread (the context's pool workers included). Under ASan the
 * allocator belongs to the sanitizer, so the test is skipped there.
 */
#include <criterion/criterion.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdio.h>

#include "loader.h"
#include "qkv.h"
#include "test_util.h"

#if defined(__SANITIZE_ADDRESS__)
#define QKV_NO_INTERPOSE 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define QKV_NO_INTERPOSE 1
#endif
#endif

static atomic_int counting;
static atomic_long allocations;

#ifndef QKV_NO_INTERPOSE
extern void *__libc_malloc(size_t);
extern void *__libc_calloc(size_t, size_t);
extern void *__libc_realloc(void *, size_t);
extern void *__libc_memalign(size_t, size_t);

static void count(void)
{
    if (atomic_load(&counting))
        atomic_fetch_add(&allocations, 1);
}

void *malloc(size_t n)
{
    count();
    return __libc_malloc(n);
}

void *calloc(size_t a, size_t b)
{
    count();
    return __libc_calloc(a, b);
}

void *realloc(void *p, size_t n)
{
    count();
    return __libc_realloc(p, n);
}

void *aligned_alloc(size_t align, size_t n)
{
    count();
    return __libc_memalign(align, n);
}

int posix_memalign(void **out, size_t align, size_t n)
{
    count();
    void *p = __libc_memalign(align, n);
    if (!p)
        return 12; /* ENOMEM */
    *out = p;
    return 0;
}
#endif

static long allocations_during_run(qkv_context *c, const qkv_tensor *x)
{
    qkv_error err;
    atomic_store(&allocations, 0);
    atomic_store(&counting, 1);
    qkv_status st = qkv_run(c, x, 1, &err);
    atomic_store(&counting, 0);
    cr_assert_eq(st, QKV_OK, "%s", err.message);
    return atomic_load(&allocations);
}

static void check_model(const char *model, const char *case_a, const char *case_b, size_t threads)
{
#ifdef QKV_NO_INTERPOSE
    cr_skip_test("malloc cannot be interposed under AddressSanitizer");
#endif
    char a[128], b[128];
    snprintf(a, sizeof a, "exec/%s_%s_input_0.pb", model, case_a);
    snprintf(b, sizeof b, "exec/%s_%s_input_0.pb", model, case_b);
    char path[128];
    snprintf(path, sizeof path, "exec/%s.onnx", model);
    qkv_session_options opts;
    qkv_session_options_init(&opts);
    opts.threads = threads;
    qkv_session *s;
    qkv_error err;
    cr_assert_eq(qkv_session_create(tu_data(path), &opts, &s, &err), QKV_OK, "%s", err.message);
    qkv_context *c;
    cr_assert_eq(qkv_context_create(s, &c, &err), QKV_OK);
    qkv_tensor xa, xb;
    tu_read_pb(tu_data(a), &xa);
    tu_read_pb(tu_data(b), &xb);
    /* first runs plan (and let OpenBLAS set up its buffers) */
    allocations_during_run(c, &xa);
    allocations_during_run(c, &xb);
    /* shapes seen before: no allocation, also when switching between them */
    cr_expect_eq(allocations_during_run(c, &xa), 0);
    cr_expect_eq(allocations_during_run(c, &xb), 0);
    cr_expect_eq(allocations_during_run(c, &xb), 0);
    qkv_tensor_data_free(&xa);
    qkv_tensor_data_free(&xb);
    qkv_context_destroy(c);
    qkv_session_destroy(s);
}

Test(no_alloc, mlp_run_allocates_nothing_once_planned) { check_model("mlp", "b1", "b5", 1); }

Test(no_alloc, pooled_run_allocates_nothing_once_planned) { check_model("mlp", "b1", "b5", 2); }

Test(no_alloc, shape_chain_run_allocates_nothing_once_planned)
{
    check_model("shape_chain", "a", "b", 1);
}

/* A Loop of 1000 iterations whose shapes are static: after the first run
 * (planning the body, sizing the work buffers) a run allocates nothing, in
 * no iteration. */
Test(no_alloc, loop_iterations_allocate_nothing_once_planned)
{
#ifdef QKV_NO_INTERPOSE
    cr_skip_test("malloc cannot be interposed under AddressSanitizer");
#endif
    qkv_session *s;
    qkv_error err;
    cr_assert_eq(qkv_session_create(tu_data("control_flow/loop_1000.onnx"), NULL, &s, &err), QKV_OK,
                 "%s", err.message);
    qkv_context *c;
    cr_assert_eq(qkv_context_create(s, &c, &err), QKV_OK);
    qkv_tensor x;
    tu_read_pb(tu_data("control_flow/loop_1000_a_input_0.pb"), &x);
    allocations_during_run(c, &x);
    cr_expect_eq(allocations_during_run(c, &x), 0);
    cr_expect_eq(allocations_during_run(c, &x), 0);
    qkv_tensor_data_free(&x);
    qkv_context_destroy(c);
    qkv_session_destroy(s);
}
