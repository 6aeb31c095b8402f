/*
 * stress_threads.c - many threads running one shared session at once.
 *
 * usage: stress_threads MODEL [SECONDS [THREADS [CTX_THREADS [SHAPES [PLUGIN]]]]]
 *   MODEL        a model with one float input whose first dim is symbolic
 *                and one float output (tests' exec/linear_stack.onnx)
 *   SECONDS      how long the threads run (default 10)
 *   THREADS      application threads, each with its own context (default 4)
 *   CTX_THREADS  threads each context uses (default 2)
 *   SHAPES       how many first-dim sizes to alternate (default 40: more than
 *                the session's 32-plan cache, so plans are evicted under load)
 *   PLUGIN       a plugin library: two more threads load and release it over
 *                and over, each time by creating a session of MODEL with it
 *                (and no default plugins), running one shape and destroying
 *                the session, so the library is opened and closed while the
 *                other threads run (the plugin registry under contention)
 *
 * First every shape runs once, alone, on a context of its own session with
 * the same options: the references. Then the threads run random shapes until
 * the time is up and compare every output with its reference bit for bit
 * (same options, same arithmetic: qkv's kernels are even bit-identical across
 * thread counts, but a backend such as oneDNN picks its blocking by the
 * rows each thread gets, so a reference with another thread count could
 * differ in the last bit). Prints the run count
 * and mismatches; exit 0 only when every run succeeded and matched. Built
 * with -fsanitize=thread it checks the runtime's concurrency (Criterion's
 * test runner does not start under TSan).
 */
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "qkv.h"

typedef struct shared {
    qkv_session *s;
    const char *model, *plugin;
    size_t ctx_threads;
    atomic_size_t plugin_loads;
    size_t n_shapes;
    qkv_tensor *in;  /* per shape */
    qkv_tensor *ref; /* per shape: data malloc'd */
    double until;
    atomic_size_t runs, failures;
} shared;

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

static void *worker(void *arg)
{
    shared *sh = arg;
    qkv_context *c = NULL;
    qkv_error err;
    if (qkv_context_create(sh->s, &c, &err) != QKV_OK) {
        fprintf(stderr, "stress: context: %s\n", err.message);
        atomic_fetch_add(&sh->failures, 1);
        return NULL;
    }
    unsigned seed = (unsigned)(size_t)pthread_self();
    while (now_s() < sh->until) {
        size_t k = (size_t)rand_r(&seed) % sh->n_shapes;
        bool ok = qkv_run(c, &sh->in[k], 1, &err) == QKV_OK;
        const qkv_tensor *y = ok ? qkv_context_output(c, 0) : NULL;
        if (!ok)
            fprintf(stderr, "stress: run: %s\n", err.message);
        else if (!y || y->data_bytes != sh->ref[k].data_bytes ||
                 memcmp(y->data, sh->ref[k].data, y->data_bytes) != 0)
            ok = false;
        atomic_fetch_add(&sh->runs, 1);
        if (!ok)
            atomic_fetch_add(&sh->failures, 1);
    }
    qkv_context_destroy(c);
    return NULL;
}

/* Loads and releases sh->plugin until the time is up: one session with it
 * per round, one run checked against the reference. */
static void *plugin_cycler(void *arg)
{
    shared *sh = arg;
    unsigned seed = (unsigned)(size_t)pthread_self() ^ 0x5bd1e995u;
    qkv_session_options o;
    qkv_session_options_init(&o);
    o.threads = sh->ctx_threads;
    o.no_default_plugins = 1;
    o.plugins = &sh->plugin;
    o.n_plugins = 1;
    while (now_s() < sh->until) {
        qkv_session *s = NULL;
        qkv_context *c = NULL;
        qkv_error err;
        size_t k = (size_t)rand_r(&seed) % sh->n_shapes;
        bool ok = qkv_session_create(sh->model, &o, &s, &err) == QKV_OK &&
                  qkv_context_create(s, &c, &err) == QKV_OK &&
                  qkv_run(c, &sh->in[k], 1, &err) == QKV_OK;
        const qkv_tensor *y = ok ? qkv_context_output(c, 0) : NULL;
        if (!ok)
            fprintf(stderr, "stress: plugin session: %s\n", err.message);
        /* another backend may round differently: compare with a tolerance */
        for (size_t i = 0; ok && i < sh->ref[k].data_bytes / sizeof(float); i++) {
            float a = ((const float *)y->data)[i], b = ((const float *)sh->ref[k].data)[i];
            float d = a > b ? a - b : b - a, m = b < 0 ? -b : b;
            ok = d <= 1e-4f + 1e-3f * m;
        }
        qkv_context_destroy(c);
        qkv_session_destroy(s);
        atomic_fetch_add(&sh->plugin_loads, 1);
        if (!ok)
            atomic_fetch_add(&sh->failures, 1);
    }
    return NULL;
}

int main(int argc, char **argv)
{
    if (argc < 2) {
        fprintf(stderr, "usage: stress_threads MODEL [SECONDS [THREADS [CTX_THREADS [SHAPES "
                        "[PLUGIN]]]]]\n");
        return 2;
    }
    double seconds = argc > 2 ? atof(argv[2]) : 10;
    size_t threads = argc > 3 ? (size_t)atoi(argv[3]) : 4;
    size_t ctx_threads = argc > 4 ? (size_t)atoi(argv[4]) : 2;
    size_t n_shapes = argc > 5 ? (size_t)atoi(argv[5]) : 40;
    if (seconds <= 0 || threads < 1 || threads > 64 || n_shapes < 1 || n_shapes > 1000) {
        fprintf(stderr, "stress: bad arguments\n");
        return 2;
    }
    qkv_session_options opts;
    qkv_session_options_init(&opts);
    opts.threads = ctx_threads;
    shared sh = {.n_shapes = n_shapes,
                 .model = argv[1],
                 .plugin = argc > 6 ? argv[6] : NULL,
                 .ctx_threads = ctx_threads};
    atomic_init(&sh.plugin_loads, 0);
    atomic_init(&sh.runs, 0);
    atomic_init(&sh.failures, 0);
    qkv_error err;
    if (qkv_session_create(argv[1], &opts, &sh.s, &err) != QKV_OK) {
        fprintf(stderr, "stress: %s\n", err.message);
        return 1;
    }
    qkv_value_info vi = {.struct_size = sizeof(qkv_value_info)};
    qkv_model_input(qkv_session_model(sh.s), 0, &vi);
    if (qkv_model_input_count(qkv_session_model(sh.s)) != 1 || vi.dtype != QKV_DTYPE_FLOAT ||
        vi.rank < 1 || vi.dims[0] >= 0) {
        fprintf(stderr, "stress: the model needs one float input with a symbolic first dim\n");
        qkv_session_destroy(sh.s);
        return 2;
    }
    sh.in = calloc(n_shapes, sizeof *sh.in);
    sh.ref = calloc(n_shapes, sizeof *sh.ref);
    qkv_session_options one = opts;
    qkv_session *s1 = NULL;
    qkv_context *c1 = NULL;
    int rc = 1;
    if (!sh.in || !sh.ref || qkv_session_create(argv[1], &one, &s1, &err) != QKV_OK ||
        qkv_context_create(s1, &c1, &err) != QKV_OK) {
        fprintf(stderr, "stress: reference session: %s\n", err.message);
        goto done;
    }
    for (size_t k = 0; k < n_shapes; k++) { /* references, one run at a time */
        qkv_tensor *t = &sh.in[k];
        t->dtype = QKV_DTYPE_FLOAT;
        t->rank = vi.rank;
        size_t n = 1;
        for (int32_t d = 0; d < vi.rank; d++) {
            t->dims[d] = d == 0 ? (int64_t)k + 1 : (vi.dims[d] > 0 ? vi.dims[d] : 1);
            n *= (size_t)t->dims[d];
        }
        float *x = malloc(n * sizeof *x);
        if (!x)
            goto done;
        for (size_t i = 0; i < n; i++)
            x[i] = (float)((i * 7 + k * 13) % 17) / 17.0f - 0.5f;
        t->data = x;
        t->data_bytes = n * sizeof *x;
        if (qkv_run(c1, t, 1, &err) != QKV_OK) {
            fprintf(stderr, "stress: reference run: %s\n", err.message);
            goto done;
        }
        const qkv_tensor *y = qkv_context_output(c1, 0);
        sh.ref[k] = *y;
        sh.ref[k].data = malloc(y->data_bytes ? y->data_bytes : 1);
        if (!sh.ref[k].data)
            goto done;
        memcpy(sh.ref[k].data, y->data, y->data_bytes);
    }
    pthread_t tid[64 + 2];
    size_t n_tid = 0;
    sh.until = now_s() + seconds;
    for (size_t i = 0; i < threads; i++)
        if (pthread_create(&tid[n_tid], NULL, worker, &sh) == 0)
            n_tid++;
    for (size_t i = 0; sh.plugin && i < 2; i++)
        if (pthread_create(&tid[n_tid], NULL, plugin_cycler, &sh) == 0)
            n_tid++;
    for (size_t i = 0; i < n_tid; i++)
        pthread_join(tid[i], NULL);
    size_t runs = atomic_load(&sh.runs), bad = atomic_load(&sh.failures);
    printf("stress: %zu threads x %zu-thread contexts, %zu shapes, %.0f s: %zu runs, %zu failed "
           "or differed, %zu plans built\n",
           threads, ctx_threads, n_shapes, seconds, runs, bad, qkv_session_plans_built(sh.s));
    if (sh.plugin)
        printf("stress: 2 threads loaded and released %s %zu times\n", sh.plugin,
               atomic_load(&sh.plugin_loads));
    rc = bad == 0 && runs > 0 && n_tid == threads + (sh.plugin ? 2 : 0) &&
                 (!sh.plugin || atomic_load(&sh.plugin_loads) > 0)
             ? 0
             : 1;
done:
    for (size_t k = 0; sh.in && k < n_shapes; k++) {
        free(sh.in[k].data);
        if (sh.ref)
            free(sh.ref[k].data);
    }
    free(sh.in);
    free(sh.ref);
    qkv_context_destroy(c1);
    qkv_session_destroy(s1);
    qkv_session_destroy(sh.s);
    return rc;
}
