/*
 * Out-of-memory sweep: the k-th heap allocation fails, for every k, during
 * (1) session creation, (2) context creation and the first run (which plans
 * the shape), (3) the run of a new shape on a context that already ran
 * another one; and (2b) a second context's creation and run of a shape
 * whose plan the session has cached. Once failing the k-th allocation only,
 * once failing it and every later one (so the error paths cannot allocate
 * either).
 *
 * Every time the call returns an error (QKV_ERR_OUT_OF_MEMORY, or another
 * non-OK status with a message) or, when the failed allocation had a
 * fallback, succeeds with correct outputs; nothing crashes; and afterwards,
 * with allocations allowed again, the same session and context run correctly
 * (outputs against the generators' references). A sweep ends at the first k
 * the operation does not reach (it made fewer allocations). Leaks are
 * checked by the valgrind variant of this test (tests/CMakeLists.txt); there
 * QKV_FAULT_SWEEP_STRIDE=n tries every n-th k only, to bound the run time.
 *
 * The test binary interposes malloc and friends (forwarding to glibc's
 * __libc_* entry points, as test_no_alloc.c does); only allocations of the
 * thread that armed the fault are counted (threads 1: all of qkv's). No
 * default plugins, so no dlopen'd library's allocations are counted. Under
 * ASan the allocator belongs to the sanitizer: skipped there.
 */
#include <criterion/criterion.h>
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

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

/* armed: this thread's allocations are counted; the fail_at-th one fails
 * (persist: and every later one too) */
static _Thread_local int armed, persist;
static _Thread_local long seen, fail_at;

#ifndef QKV_NO_INTERPOSE
extern void *__libc_malloc(size_t);
extern void *__libc_calloc(size_t, size_t);
extern void *__libc_realloc(void *, size_t);
extern void *__libc_memalign(size_t, size_t);

/* 1: this allocation is the one to fail */
static int inject(void)
{
    if (!armed)
        return 0;
    if (++seen == fail_at || (persist && seen > fail_at)) {
        errno = ENOMEM;
        return 1;
    }
    return 0;
}

void *malloc(size_t n) { return inject() ? NULL : __libc_malloc(n); }

void *calloc(size_t a, size_t b) { return inject() ? NULL : __libc_calloc(a, b); }

void *realloc(void *p, size_t n) { return inject() ? NULL : __libc_realloc(p, n); }

void *aligned_alloc(size_t align, size_t n) { return inject() ? NULL : __libc_memalign(align, n); }

int posix_memalign(void **out, size_t align, size_t n)
{
    if (inject())
        return ENOMEM;
    void *p = __libc_memalign(align, n);
    if (!p)
        return ENOMEM;
    *out = p;
    return 0;
}
#endif

static void arm(long k)
{
    seen = 0;
    fail_at = k;
    armed = 1;
}

/* Disarms; 1 when the k-th allocation was reached (and failed). */
static int disarm(void)
{
    armed = 0;
    return seen >= fail_at;
}

/* Safety bound: no operation here comes near it. */
#define MAX_K 200000

static long sweep_stride(void)
{
    const char *s = getenv("QKV_FAULT_SWEEP_STRIDE");
    long n = s ? strtol(s, NULL, 10) : 1;
    return n > 0 ? n : 1;
}

/* With a stride n > 1, the single-failure sweeps try k = 1, 1 + n, ... and
 * the persistent ones start half a stride later, so that between them the
 * valgrind variant still fails every allocation point once. */
static long first_k(long stride) { return 1 + (persist ? stride / 2 : 0); }

/* ---- the models and their reference data ---------------------------------- */

#define MAX_IO 4

typedef struct data_set {
    qkv_tensor in[MAX_IO], out[MAX_IO];
    size_t n_in, n_out;
} data_set;

typedef struct model {
    char name[64];
    char path[512];
    data_set sets[2]; /* two different input shapes */
    float rtol, atol;
} model;

/* <dir>/<name>.onnx, cases a and b (<dir>/<name>_<case>_{input,output}_0.pb) */
static void load_cases(model *m, const char *dir, const char *name, const char *a, const char *b)
{
    memset(m, 0, sizeof *m);
    snprintf(m->name, sizeof m->name, "%s", name);
    char rel[256];
    snprintf(rel, sizeof rel, "%s/%s.onnx", dir, name);
    snprintf(m->path, sizeof m->path, "%s", tu_data(rel));
    const char *cases[2] = {a, b};
    for (int i = 0; i < 2; i++) {
        data_set *d = &m->sets[i];
        d->n_in = d->n_out = 1;
        snprintf(rel, sizeof rel, "%s/%s_%s_input_0.pb", dir, name, cases[i]);
        tu_read_pb(tu_data(rel), &d->in[0]);
        snprintf(rel, sizeof rel, "%s/%s_%s_output_0.pb", dir, name, cases[i]);
        tu_read_pb(tu_data(rel), &d->out[0]);
    }
    m->rtol = 1e-4f;
    m->atol = 1e-4f;
}

/* exec/<name>.onnx, cases a and b */
static void load_exec(model *m, const char *name, const char *a, const char *b)
{
    load_cases(m, "exec", name, a, b);
}

/* examples/<name>/model.onnx with test_data_set_0 and _1 */
static void load_example(model *m, const char *name, size_t n_in, size_t n_out)
{
    memset(m, 0, sizeof *m);
    snprintf(m->name, sizeof m->name, "%s", name);
    char rel[256];
    snprintf(rel, sizeof rel, "examples/%s/model.onnx", name);
    snprintf(m->path, sizeof m->path, "%s", tu_data(rel));
    for (int i = 0; i < 2; i++) {
        data_set *d = &m->sets[i];
        d->n_in = n_in;
        d->n_out = n_out;
        for (size_t j = 0; j < n_in; j++) {
            snprintf(rel, sizeof rel, "examples/%s/test_data_set_%d/input_%zu.pb", name, i, j);
            tu_read_pb(tu_data(rel), &d->in[j]);
        }
        for (size_t j = 0; j < n_out; j++) {
            snprintf(rel, sizeof rel, "examples/%s/test_data_set_%d/output_%zu.pb", name, i, j);
            tu_read_pb(tu_data(rel), &d->out[j]);
        }
    }
    m->rtol = 1e-4f;
    m->atol = 1e-5f;
}

/* strings/<name>.onnx, cases a and b, n_in inputs and n_out outputs */
static void load_strings(model *m, const char *name, size_t n_in, size_t n_out)
{
    memset(m, 0, sizeof *m);
    snprintf(m->name, sizeof m->name, "%s", name);
    char rel[256];
    snprintf(rel, sizeof rel, "strings/%s.onnx", name);
    snprintf(m->path, sizeof m->path, "%s", tu_data(rel));
    for (int i = 0; i < 2; i++) {
        data_set *d = &m->sets[i];
        d->n_in = n_in;
        d->n_out = n_out;
        for (size_t j = 0; j < n_in; j++) {
            snprintf(rel, sizeof rel, "strings/%s_%c_input_%zu.pb", name, 'a' + i, j);
            tu_read_pb(tu_data(rel), &d->in[j]);
        }
        for (size_t j = 0; j < n_out; j++) {
            snprintf(rel, sizeof rel, "strings/%s_%c_output_%zu.pb", name, 'a' + i, j);
            tu_read_pb(tu_data(rel), &d->out[j]);
        }
    }
    m->rtol = 0;
    m->atol = 0;
}

static void free_model(model *m)
{
    for (int i = 0; i < 2; i++) {
        for (size_t j = 0; j < m->sets[i].n_in; j++)
            qkv_tensor_data_free(&m->sets[i].in[j]);
        for (size_t j = 0; j < m->sets[i].n_out; j++)
            qkv_tensor_data_free(&m->sets[i].out[j]);
    }
}

/* 1 when the context's outputs match data set d (shape and values) */
static int outputs_match(const model *m, const qkv_context *c, const data_set *d)
{
    for (size_t i = 0; i < d->n_out; i++) {
        const qkv_tensor *got = qkv_context_output(c, i), *want = &d->out[i];
        if (!got || got->dtype != want->dtype || got->rank != want->rank)
            return 0;
        size_t n = 1;
        for (int32_t r = 0; r < want->rank; r++) {
            if (got->dims[r] != want->dims[r])
                return 0;
            n *= (size_t)want->dims[r];
        }
        if (want->dtype == QKV_DTYPE_STRING) {
            char *const *gs = got->data, *const *ws = want->data;
            for (size_t e = 0; e < n; e++)
                if (strcmp(gs[e], ws[e]) != 0)
                    return 0;
            continue;
        }
        const float *g = got->data, *w = want->data;
        for (size_t e = 0; e < n; e++)
            if (!(fabsf(g[e] - w[e]) <= m->atol + m->rtol * fabsf(w[e])))
                return 0;
    }
    return 1;
}

static qkv_session *open_session(const model *m, qkv_status *st, qkv_error *err)
{
    qkv_session_options opts;
    qkv_session_options_init(&opts);
    opts.threads = 1;
    opts.no_default_plugins = 1;
    qkv_session *s = NULL;
    *st = qkv_session_create(m->path, &opts, &s, err);
    return s;
}

static qkv_session *open_session_ok(const model *m)
{
    qkv_status st;
    qkv_error err = {0};
    qkv_session *s = open_session(m, &st, &err);
    cr_assert_eq(st, QKV_OK, "%s: %s", m->name, err.message);
    return s;
}

/* Runs data set i (allocations allowed) and checks the outputs. */
static void run_ok(const model *m, qkv_context *c, int i, const char *phase, long k)
{
    qkv_error err = {0};
    qkv_status st = qkv_run(c, m->sets[i].in, m->sets[i].n_in, &err);
    cr_assert_eq(st, QKV_OK, "%s %s k=%ld: run of data set %d afterwards: %s", m->name, phase, k, i,
                 err.message);
    cr_assert(outputs_match(m, c, &m->sets[i]),
              "%s %s k=%ld: wrong outputs of data set %d afterwards", m->name, phase, k, i);
}

/* Failures with another status than QKV_ERR_OUT_OF_MEMORY (reported). */
static long other_status;
static char other_message[QKV_ERROR_MESSAGE_BYTES + 64];

/* A failed call: it failed because of the injected failure (hit), with a
 * status and a message. */
static void check_failure(const model *m, qkv_status st, int hit, const qkv_error *err,
                          const char *phase, long k)
{
    cr_assert(hit, "%s %s k=%ld: fails without a failed allocation: %s", m->name, phase, k,
              err->message);
    cr_assert_neq(st, QKV_OK);
    cr_assert(err->message[0] != '\0', "%s %s k=%ld: status %d with no message", m->name, phase, k,
              (int)st);
    if (st != QKV_ERR_OUT_OF_MEMORY && other_status++ == 0)
        snprintf(other_message, sizeof other_message, "k=%ld status %d: %s", k, (int)st,
                 err->message);
}

/* Counts of one sweep: allocation points, and of those the calls that
 * succeeded anyway (the allocation had a fallback). */
typedef struct sweep_result {
    long points, tolerated;
} sweep_result;

/* A run with a failure injected: failed as check_failure wants, or
 * succeeded with the right outputs (counted as tolerated when the failure
 * was hit). */
static void check_run(const model *m, const qkv_context *c, const data_set *d, qkv_status st,
                      int hit, const qkv_error *err, const char *phase, long k, sweep_result *r)
{
    if (st != QKV_OK) {
        check_failure(m, st, hit, err, phase, k);
        return;
    }
    cr_assert(outputs_match(m, c, d), "%s %s k=%ld: wrong outputs", m->name, phase, k);
    if (hit)
        r->tolerated++;
}

static void report(const model *m, const char *phase, sweep_result r)
{
    fprintf(stderr,
            "fault sweep %s %s: %ld allocation points, %ld tolerated, %ld other status%s%s\n",
            m->name, phase, r.points, r.tolerated, other_status, other_status ? "; first: " : "",
            other_status ? other_message : "");
    other_status = 0;
    cr_assert_gt(r.points, 0, "%s %s: no allocation seen (interposition broken?)", m->name, phase);
}

/* ---- (1) session creation -------------------------------------------------- */

static sweep_result sweep_session_create(const model *m)
{
    sweep_result r = {0, 0};
    long stride = sweep_stride();
    for (long k = first_k(stride); k < MAX_K; k += stride) {
        qkv_status st;
        qkv_error err = {0};
        arm(k);
        qkv_session *s = open_session(m, &st, &err);
        int hit = disarm();
        if (st != QKV_OK) {
            check_failure(m, st, hit, &err, "session", k);
            cr_assert_null(s, "%s session k=%ld: failed but returned a session", m->name, k);
            continue;
        }
        /* the session works: run both shapes */
        qkv_context *c = NULL;
        cr_assert_eq(qkv_context_create(s, &c, &err), QKV_OK, "%s", err.message);
        run_ok(m, c, 0, "session", k);
        run_ok(m, c, 1, "session", k);
        qkv_context_destroy(c);
        qkv_session_destroy(s);
        if (!hit) {
            r.points = seen;
            return r;
        }
        r.tolerated++;
    }
    cr_assert_fail("%s session: sweep did not end", m->name);
    return r;
}

/* ---- (2) context creation + first run -------------------------------------- */

static sweep_result sweep_context_first_run(const model *m)
{
    sweep_result r = {0, 0};
    long stride = sweep_stride();
    for (long k = first_k(stride); k < MAX_K; k += stride) {
        /* a fresh session each time: plans are cached in the session */
        qkv_session *s = open_session_ok(m);
        qkv_error err = {0};
        qkv_context *c = NULL;
        const data_set *d = &m->sets[0];
        arm(k);
        qkv_status st = qkv_context_create(s, &c, &err);
        int created = st == QKV_OK;
        if (created)
            st = qkv_run(c, d->in, d->n_in, &err);
        int hit = disarm();
        if (!created) {
            check_failure(m, st, hit, &err, "context", k);
            cr_assert_null(c, "%s context k=%ld: failed but returned a context", m->name, k);
            /* the session still works */
            cr_assert_eq(qkv_context_create(s, &c, &err), QKV_OK, "%s", err.message);
        } else {
            check_run(m, c, d, st, hit, &err, "first run", k, &r);
        }
        /* the same context runs both shapes */
        run_ok(m, c, 0, "first run", k);
        run_ok(m, c, 1, "first run", k);
        qkv_context_destroy(c);
        qkv_session_destroy(s);
        if (!hit) {
            r.points = seen;
            return r;
        }
    }
    cr_assert_fail("%s context: sweep did not end", m->name);
    return r;
}

/* ---- (2b) a second context, on a shape whose plan the session has -------- */

static sweep_result sweep_second_context(const model *m)
{
    sweep_result r = {0, 0};
    long stride = sweep_stride();
    for (long k = first_k(stride); k < MAX_K; k += stride) {
        qkv_session *s = open_session_ok(m);
        qkv_error err = {0};
        qkv_context *first = NULL, *c = NULL;
        cr_assert_eq(qkv_context_create(s, &first, &err), QKV_OK, "%s", err.message);
        run_ok(m, first, 0, "second context (first)", k);
        const data_set *d = &m->sets[0];
        arm(k);
        qkv_status st = qkv_context_create(s, &c, &err);
        int created = st == QKV_OK;
        if (created)
            st = qkv_run(c, d->in, d->n_in, &err);
        int hit = disarm();
        check_run(m, c, d, st, hit, &err, "second context", k, &r);
        if (!created) {
            cr_assert_null(c, "%s second context k=%ld: failed but returned one", m->name, k);
            cr_assert_eq(qkv_context_create(s, &c, &err), QKV_OK, "%s", err.message);
        }
        run_ok(m, c, 0, "second context", k);
        run_ok(m, c, 1, "second context", k);
        run_ok(m, first, 1, "second context (first)", k);
        qkv_context_destroy(c);
        qkv_context_destroy(first);
        qkv_session_destroy(s);
        if (!hit) {
            r.points = seen;
            return r;
        }
    }
    cr_assert_fail("%s second context: sweep did not end", m->name);
    return r;
}

/* ---- (3) a new shape on a context that ran another --------------------------- */

static sweep_result sweep_new_shape(const model *m)
{
    sweep_result r = {0, 0};
    long stride = sweep_stride();
    for (long k = first_k(stride); k < MAX_K; k += stride) {
        qkv_session *s = open_session_ok(m);
        qkv_error err = {0};
        qkv_context *c = NULL;
        cr_assert_eq(qkv_context_create(s, &c, &err), QKV_OK, "%s", err.message);
        run_ok(m, c, 0, "new shape (before)", k);
        const data_set *d = &m->sets[1];
        arm(k);
        qkv_status st = qkv_run(c, d->in, d->n_in, &err);
        int hit = disarm();
        check_run(m, c, d, st, hit, &err, "new shape", k, &r);
        /* the context runs the new shape and still the old one */
        run_ok(m, c, 1, "new shape", k);
        run_ok(m, c, 0, "new shape", k);
        qkv_context_destroy(c);
        qkv_session_destroy(s);
        if (!hit) {
            r.points = seen;
            return r;
        }
    }
    cr_assert_fail("%s new shape: sweep did not end", m->name);
    return r;
}

/* ---- the tests ---------------------------------------------------------------- */

static void skip_without_interposition(void)
{
#ifdef QKV_NO_INTERPOSE
    cr_skip_test("malloc cannot be interposed under AddressSanitizer");
#endif
}

/* persistent 0: only the k-th allocation fails; 1: the k-th and all later
 * ones (the error paths themselves then cannot allocate) */
static void sweep_all(model *m, int persistent)
{
    persist = persistent;
    const char *mode = persistent ? " (k-th and later fail)" : "";
    char phase[96];
    snprintf(phase, sizeof phase, "session_create%s", mode);
    report(m, phase, sweep_session_create(m));
    snprintf(phase, sizeof phase, "context_create+first_run%s", mode);
    report(m, phase, sweep_context_first_run(m));
    snprintf(phase, sizeof phase, "second_context+cached_plan_run%s", mode);
    report(m, phase, sweep_second_context(m));
    snprintf(phase, sizeof phase, "new_shape_run%s", mode);
    report(m, phase, sweep_new_shape(m));
    persist = 0;
    free_model(m);
}

Test(fault_sweep, mlp_survives_every_failed_allocation)
{
    skip_without_interposition();
    model m;
    load_exec(&m, "mlp", "b1", "b5");
    sweep_all(&m, 0);
}

Test(fault_sweep, linear_stack_survives_every_failed_allocation)
{
    skip_without_interposition();
    model m;
    load_exec(&m, "linear_stack", "b7", "b100");
    sweep_all(&m, 0);
}

Test(fault_sweep, mha_example_survives_every_failed_allocation)
{
    skip_without_interposition();
    model m;
    load_example(&m, "mha", 2, 2);
    sweep_all(&m, 0);
}

Test(fault_sweep, mlp_survives_running_out_of_memory_for_good)
{
    skip_without_interposition();
    model m;
    load_exec(&m, "mlp", "b1", "b5");
    sweep_all(&m, 1);
}

Test(fault_sweep, linear_stack_survives_running_out_of_memory_for_good)
{
    skip_without_interposition();
    model m;
    load_exec(&m, "linear_stack", "b7", "b100");
    sweep_all(&m, 1);
}

Test(fault_sweep, mha_example_survives_running_out_of_memory_for_good)
{
    skip_without_interposition();
    model m;
    load_example(&m, "mha", 2, 2);
    sweep_all(&m, 1);
}

Test(fault_sweep, string_pipeline_survives_every_failed_allocation)
{
    /* strings in the arena (Cast) and in dynamic nodes (StringNormalizer) */
    skip_without_interposition();
    model m;
    load_strings(&m, "pipeline", 2, 3);
    sweep_all(&m, 0);
}

Test(fault_sweep, string_pipeline_survives_running_out_of_memory_for_good)
{
    skip_without_interposition();
    model m;
    load_strings(&m, "pipeline", 2, 3);
    sweep_all(&m, 1);
}

Test(fault_sweep, keras_attention_example_survives_every_failed_allocation)
{
    /* attention fusion (rank 3, its K Transpose dropped as an orphan): a
     * failed allocation while rewriting rolls the graph back */
    skip_without_interposition();
    model m;
    load_example(&m, "keras_attention", 1, 1);
    sweep_all(&m, 0);
}

Test(fault_sweep, keras_attention_example_survives_running_out_of_memory_for_good)
{
    skip_without_interposition();
    model m;
    load_example(&m, "keras_attention", 1, 1);
    sweep_all(&m, 1);
}

Test(fault_sweep, wav2vec2_conv_front_survives_every_failed_allocation)
{
    /* its grouped positional conv packs W in prepack (ops/conv_direct1d.h) */
    skip_without_interposition();
    model m;
    load_cases(&m, "conv", "w2v_front", "a", "b");
    sweep_all(&m, 0);
}
