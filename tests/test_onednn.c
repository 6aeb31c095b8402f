/*
 * test_onednn.c - the oneDNN backend plugin (plugins/onednn) against qkv's
 * portable kernels: every model of tests/data/make_onednn_models.py runs on
 * random shapes with backends "onednn,cpu" (two threads: calls split into
 * column panels of the packed weights or into row blocks, by shape) and
 * with "cpu", and the outputs must agree; plus prepacked weights (released originals, two contexts on
 * two threads, freed with the session: run under valgrind too), the GEMM
 * provider against a float64 reference, and the error paths.
 *
 * The sessions load only the onednn plugin (no default plugins), so "cpu"
 * is exactly the portable kernels and nothing else can take a node.
 */
#include <criterion/criterion.h>
#include <dlfcn.h>
#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "kernel_host.h"
#include "plugin.h"
#include "qkv.h"
#include "registry.h"
#include "test_util.h"
#include "threadpool.h"

#define ONEDNN_PLUGIN QKV_BINARY_DIR "/plugins/libqkv_onednn.so"

static uint32_t rng_state = 777;
static double rnd(void)
{
    rng_state = rng_state * 1664525u + 1013904223u;
    return (double)(rng_state >> 8) / (double)(1u << 24) * 2.0 - 1.0;
}
static int64_t rnd_int(int64_t lo, int64_t hi)
{
    rng_state = rng_state * 1664525u + 1013904223u;
    return lo + (int64_t)((rng_state >> 8) % (uint32_t)(hi - lo + 1));
}

/* ---- sessions ----------------------------------------------------------------- */

/* Options loading only the onednn plugin, on `backends` and `threads`. */
static qkv_session_options onednn_options(const char *backends, size_t threads)
{
    static const char *const plugins[] = {ONEDNN_PLUGIN};
    qkv_session_options opts;
    qkv_session_options_init(&opts);
    opts.no_default_plugins = 1;
    opts.plugins = plugins;
    opts.n_plugins = 1;
    opts.backends = backends;
    opts.threads = threads;
    return opts;
}

static qkv_status open_model(const char *name, const char *backends, size_t threads,
                             qkv_session **s, qkv_error *err)
{
    char path[256];
    snprintf(path, sizeof path, "onednn/%s.onnx", name);
    qkv_session_options opts = onednn_options(backends, threads);
    return qkv_session_create(tu_data(path), &opts, s, err);
}

static qkv_session *open_ok(const char *name, const char *backends, size_t threads)
{
    qkv_session *s = NULL;
    qkv_error err;
    qkv_status st = open_model(name, backends, threads, &s, &err);
    cr_assert_eq(st, QKV_OK, "%s: %s", name, err.message);
    return s;
}

/* The backend of the node named `node`. */
static const char *backend_of(const qkv_session *s, const char *node)
{
    for (size_t i = 0; i < qkv_session_node_count(s); i++) {
        qkv_node_info ni = {.struct_size = sizeof(qkv_node_info)};
        cr_assert_eq(qkv_session_node_info(s, i, &ni), QKV_OK);
        if (strcmp(ni.name, node) == 0)
            return ni.backend;
    }
    cr_assert_fail("no node '%s'", node);
    return NULL;
}

/* Symbolic dim values of one case: name -> value (unset names get random
 * values in [lo, hi]). */
typedef struct dimset {
    const char *names[16];
    int64_t values[16];
    size_t n;
    int64_t lo, hi;
} dimset;

static void dim_set(dimset *d, const char *name, int64_t v)
{
    d->names[d->n] = name;
    d->values[d->n++] = v;
}

static int64_t dim_get(dimset *d, const char *name)
{
    for (size_t i = 0; i < d->n; i++)
        if (strcmp(d->names[i], name) == 0)
            return d->values[i];
    int64_t v = rnd_int(d->lo, d->hi);
    dim_set(d, name, v);
    return v;
}

/* Random float32 inputs for the session's model, shaped by d. */
static size_t make_inputs(const qkv_session *s, dimset *d, qkv_tensor *in)
{
    const qkv_model *m = qkv_session_model(s);
    size_t n = qkv_model_input_count(m);
    for (size_t i = 0; i < n; i++) {
        qkv_value_info vi = {.struct_size = sizeof(qkv_value_info)};
        qkv_model_input(m, i, &vi);
        memset(&in[i], 0, sizeof in[i]);
        in[i].dtype = vi.dtype;
        in[i].rank = vi.rank;
        size_t count = 1;
        for (int32_t j = 0; j < vi.rank; j++) {
            in[i].dims[j] = vi.dims[j] >= 0 ? vi.dims[j] : dim_get(d, vi.dim_params[j]);
            count *= (size_t)in[i].dims[j];
        }
        size_t es = vi.dtype == QKV_DTYPE_DOUBLE ? 8 : 4;
        in[i].data = malloc(count * es + 1);
        in[i].data_bytes = count * es;
        for (size_t k = 0; k < count; k++) {
            if (vi.dtype == QKV_DTYPE_DOUBLE)
                ((double *)in[i].data)[k] = rnd();
            else
                ((float *)in[i].data)[k] = (float)rnd();
        }
    }
    return n;
}

static void free_inputs(qkv_tensor *in, size_t n)
{
    for (size_t i = 0; i < n; i++)
        free(in[i].data);
}

/* Output i of a run of s on in, copied (malloc'd) into *out. */
static void run_copy(qkv_session *s, const qkv_tensor *in, size_t n_in, size_t i, qkv_tensor *out)
{
    qkv_context *c;
    qkv_error err;
    cr_assert_eq(qkv_context_create(s, &c, &err), QKV_OK, "%s", err.message);
    cr_assert_eq(qkv_run(c, in, n_in, &err), QKV_OK, "%s", err.message);
    const qkv_tensor *y = qkv_context_output(c, i);
    cr_assert_not_null(y);
    *out = *y;
    out->data = malloc(y->data_bytes + 1);
    memcpy(out->data, y->data, y->data_bytes);
    qkv_context_destroy(c);
}

/*
 * Tolerance. Both sides multiply in float32 with K-term dot products of
 * values in [-1, 1), summed in different orders (oneDNN's blocked JIT sgemm
 * vs qkv's portable panels): the rounding error is bounded by about
 * K * 2^-24 * sum |a_p b_p| <= K^2 * 6e-8, but it behaves like a random
 * walk, ~sqrt(K) * 6e-8 * |y|; 2e-6 * (K + 1) relative to (1 + |y|) covers
 * the worst case seen with a wide margin (as in test_plugin_gemm.c).
 * oneDNN's gelu_erf and gelu_tanh use their own polynomial erf/tanh
 * (documented to ~1 ulp for the exp/tanh kernels); 1e-5 more absolute
 * covers those.
 */
static void assert_close(const qkv_tensor *got, const qkv_tensor *want, int64_t k, const char *what)
{
    cr_assert_eq(got->rank, want->rank, "%s: rank %d vs %d", what, got->rank, want->rank);
    for (int32_t i = 0; i < got->rank; i++)
        cr_assert_eq(got->dims[i], want->dims[i], "%s: dim %d", what, i);
    cr_assert_eq(got->data_bytes, want->data_bytes, "%s", what);
    size_t n = got->data_bytes / (got->dtype == QKV_DTYPE_DOUBLE ? 8 : 4);
    double tol = 2e-6 * (double)(k + 1) + 1e-5;
    for (size_t i = 0; i < n; i++) {
        double g =
            got->dtype == QKV_DTYPE_DOUBLE ? ((double *)got->data)[i] : ((float *)got->data)[i];
        double w =
            want->dtype == QKV_DTYPE_DOUBLE ? ((double *)want->data)[i] : ((float *)want->data)[i];
        cr_assert(fabs(g - w) <= tol * (1 + fabs(w)), "%s: element %zu: %.9g vs %.9g", what, i, g,
                  w);
    }
}

/*
 * Runs `model` with onednn and `ref_model` with cpu on the same random
 * inputs shaped by d, and compares output 0. The node `node` must be on
 * `want_backend`. k: the product's K (for the tolerance).
 */
static void compare(const char *model, const char *ref_model, const char *node,
                    const char *want_backend, dimset *d, int64_t k)
{
    qkv_session *s = open_ok(model, "onednn,cpu", 2);
    qkv_session *r = open_ok(ref_model, "cpu", 1);
    cr_assert_str_eq(backend_of(s, node), want_backend, "%s", model);
    qkv_tensor in[8], got, want;
    size_t n = make_inputs(s, d, in);
    run_copy(s, in, n, 0, &got);
    run_copy(r, in, n, 0, &want);
    char what[256];
    snprintf(what, sizeof what, "%s (k=%lld)", model, (long long)k);
    assert_close(&got, &want, k, what);
    free(got.data);
    free(want.data);
    free_inputs(in, n);
    qkv_session_destroy(s);
    qkv_session_destroy(r);
}

/* ---- MatMul ---------------------------------------------------------------------- */

Test(onednn, matmul_with_constant_b_matches_cpu_on_random_shapes)
{
    static const int64_t kn[2][2] = {{37, 53}, {128, 200}};
    for (int c = 0; c < 2; c++)
        for (int r = 1; r <= 4; r++)
            for (int t = 0; t < 3; t++) {
                char name[64];
                snprintf(name, sizeof name, "mm_const_r%d_%lldx%lld", r, (long long)kn[c][0],
                         (long long)kn[c][1]);
                dimset d = {.lo = 1, .hi = 4};
                /* M: 1, small, or across the sgemm's blocking */
                dim_set(&d, "m", t == 0 ? 1 : t == 1 ? rnd_int(2, 20) : rnd_int(60, 300));
                compare(name, name, "mm", "onednn", &d, kn[c][0]);
            }
}

Test(onednn, batched_matmul_matches_cpu_on_random_shapes)
{
    for (int r = 2; r <= 4; r++)
        for (int t = 0; t < 4; t++) {
            char name[64];
            snprintf(name, sizeof name, "mm_var_r%d", r);
            dimset d = {.lo = 1, .hi = 3};
            int64_t k = rnd_int(1, 90);
            dim_set(&d, "k", k);
            dim_set(&d, "m", rnd_int(1, 70));
            dim_set(&d, "n", rnd_int(1, 70));
            compare(name, name, "mm", "onednn", &d, k);
        }
}

Test(onednn, matmul_with_empty_and_zero_k_shapes_matches_cpu)
{
    dimset d = {.lo = 1, .hi = 3};
    dim_set(&d, "k", 0); /* Y = zeros */
    compare("mm_var_r3", "mm_var_r3", "mm", "onednn", &d, 0);
    dimset e = {.lo = 1, .hi = 3};
    dim_set(&e, "m", 0); /* Y empty */
    compare("mm_var_r3", "mm_var_r3", "mm", "onednn", &e, 5);
}

Test(onednn, matmul_batches_that_broadcast_at_run_time_go_through_host_gemm)
{
    static const int64_t pq[3][2] = {{1, 3}, {4, 1}, {2, 2}};
    for (int t = 0; t < 3; t++) {
        dimset d = {.lo = 1, .hi = 30};
        dim_set(&d, "p", pq[t][0]);
        dim_set(&d, "q", pq[t][1]);
        int64_t k = rnd_int(1, 40);
        dim_set(&d, "k", k);
        compare("mm_bcast_dyn", "mm_bcast_dyn", "mm", "onednn", &d, k);
    }
}

Test(onednn, matmul_it_does_not_handle_falls_back_to_cpu)
{
    dimset d = {.lo = 1, .hi = 9};
    compare("mm_bcast_static", "mm_bcast_static", "mm", "cpu", &d, 7);
    dimset e = {.lo = 1, .hi = 9};
    compare("mm_double", "mm_double", "mm", "cpu", &e, 5);
}

/* ---- Gemm -------------------------------------------------------------------------- */

Test(onednn, gemm_matches_cpu_for_every_transpose_alpha_beta_and_c_broadcast)
{
    FILE *f = fopen(tu_data("onednn/gemm_cases.txt"), "r");
    cr_assert(f);
    int n = 0;
    cr_assert_eq(fscanf(f, "%d", &n), 1);
    fclose(f);
    cr_assert_gt(n, 90);
    for (int i = 0; i < n; i++) {
        char name[32];
        snprintf(name, sizeof name, "gemm_%d", i);
        for (int t = 0; t < 2; t++) {
            dimset d = {.lo = 1, .hi = 4};
            dim_set(&d, "m", t == 0 ? rnd_int(1, 9) : rnd_int(30, 140));
            compare(name, name, "gemm", "onednn", &d, 19 + i % 7 + (i % 3 == 0 ? 256 : 0));
        }
    }
}

/* ---- FusedMatMul -------------------------------------------------------------------- */

Test(onednn, fused_matmul_matches_the_unfused_graph_on_cpu)
{
    static const char *const acts[] = {"none", "relu", "gelu", "gelu_tanh"};
    for (int a = 0; a < 4; a++)
        for (int b = 0; b < 2; b++)
            for (int r = 0; r < 2; r++)
                for (int c = 0; c < 2; c++) {
                    char fused[64], ref[64];
                    snprintf(fused, sizeof fused, "fused_%s_%d%d_%c", acts[a], b, r, c ? 'v' : 'c');
                    snprintf(ref, sizeof ref, "ref_%s_%d%d_%c", acts[a], b, r, c ? 'v' : 'c');
                    dimset d = {.lo = 1, .hi = 3};
                    dim_set(&d, "m", rnd_int(1, 70));
                    compare(fused, ref, "fmm", "onednn", &d, 264);
                }
}

/* ---- splitting a call over two threads -------------------------------------------- */

/* The plugin's DEBUG lines about how a matmul is split, joined. */
typedef struct split_log {
    pthread_mutex_t lock;
    char text[4096];
} split_log;

static void record_split(void *user, int level, const char *message)
{
    split_log *l = user;
    (void)level;
    if (!strstr(message, "onednn: matmul"))
        return;
    /* an optimised implementation for every split, never a reference one */
    cr_assert_null(strstr(message, "(ref"), "%s", message);
    pthread_mutex_lock(&l->lock);
    size_t len = strlen(l->text);
    snprintf(l->text + len, sizeof l->text - len, "%s\n", message);
    pthread_mutex_unlock(&l->lock);
}

/* Runs fused_gelu_11_c (bias, residual, GELU; B (264, 200) packed) at M = s * m
 * on two threads against its reference on cpu; *log gets how the call was
 * split. */
static void split_case(int64_t s_dim, int64_t m_dim, split_log *log)
{
    qkv_session_options opts = onednn_options("onednn,cpu", 2);
    opts.log = record_split;
    opts.log_user = log;
    opts.log_level = QKV_LOG_DEBUG;
    qkv_session *s = NULL;
    qkv_error err;
    cr_assert_eq(qkv_session_create(tu_data("onednn/fused_gelu_11_c.onnx"), &opts, &s, &err),
                 QKV_OK, "%s", err.message);
    qkv_session *r = open_ok("ref_gelu_11_c", "cpu", 1);
    dimset d = {.lo = 1, .hi = 1};
    dim_set(&d, "s", s_dim);
    dim_set(&d, "m", m_dim);
    qkv_tensor in[8], got, want;
    size_t n = make_inputs(s, &d, in);
    run_copy(s, in, n, 0, &got);
    run_copy(r, in, n, 0, &want);
    assert_close(&got, &want, 264, "fused_gelu_11_c on two threads");
    free(got.data);
    free(want.data);
    free_inputs(in, n);
    qkv_session_destroy(s);
    qkv_session_destroy(r);
}

Test(onednn, two_threads_split_wide_calls_by_columns_and_tall_ones_by_rows)
{
    /* N 200 >= M: two column panels of the packed weights, 16-column
     * aligned (112 + 88), bias and residual offset with them */
    split_log cols = {.lock = PTHREAD_MUTEX_INITIALIZER};
    split_case(2, 37, &cols);
    cr_assert(strstr(cols.text, "m=74 k=264 n=200 on 2 thread(s): 2 column panels of 112"), "%s",
              cols.text);
    /* M 210 > N: two row blocks */
    split_log rows = {.lock = PTHREAD_MUTEX_INITIALIZER};
    split_case(3, 70, &rows);
    cr_assert(strstr(rows.text, "m=210 k=264 n=200 on 2 thread(s): 2 row blocks"), "%s", rows.text);
    /* one row, wide: panels, where a row split has nothing to cut */
    split_log one = {.lock = PTHREAD_MUTEX_INITIALIZER};
    split_case(1, 1, &one);
    cr_assert(strstr(one.text, "m=1 k=264 n=200 on 2 thread(s): 2 column panels of 112"), "%s",
              one.text);
}

/* ---- prepacked weights ------------------------------------------------------------- */

Test(onednn, constant_weights_are_packed_and_the_original_released)
{
    size_t released = 0;
    qkv_session *s = open_ok("mm_const_r3_128x200", "onednn,cpu", 1);
    cr_assert_geq(qkv_session_packed_bytes(s, &released), 128 * 200 * 4);
    cr_assert_eq(released, 128 * 200 * 4);
    qkv_session_destroy(s);

    /* two MatMuls read W: each packs it, the original goes */
    s = open_ok("prepack_shared", "onednn,cpu", 1);
    cr_assert_geq(qkv_session_packed_bytes(s, &released), 2 * 64 * 96 * 4);
    cr_assert_eq(released, 64 * 96 * 4);
    qkv_session_destroy(s);
    dimset d = {.lo = 1, .hi = 40};
    compare("prepack_shared", "prepack_shared", "mm1", "onednn", &d, 64);

    /* an Add reads W too: it stays */
    s = open_ok("prepack_kept", "onednn,cpu", 1);
    cr_assert_gt(qkv_session_packed_bytes(s, &released), 0);
    cr_assert_eq(released, 0);
    qkv_session_destroy(s);

    /* on cpu nothing is packed by this plugin */
    s = open_ok("mm_const_r3_128x200", "cpu", 1);
    qkv_session_packed_bytes(s, &released);
    qkv_session_destroy(s);
}

typedef struct ctx_job {
    qkv_session *s;
    const qkv_tensor *inputs[2]; /* two shapes, alternated */
    const qkv_tensor *want[2];
    int failures;
} ctx_job;

static void *ctx_thread(void *arg)
{
    ctx_job *j = arg;
    qkv_context *c;
    qkv_error err;
    if (qkv_context_create(j->s, &c, &err) != QKV_OK) {
        j->failures++;
        return NULL;
    }
    for (int it = 0; it < 30; it++) {
        int w = it % 2;
        if (qkv_run(c, j->inputs[w], 1, &err) != QKV_OK) {
            j->failures++;
            continue;
        }
        const qkv_tensor *y = qkv_context_output(c, 0);
        if (!y || y->data_bytes != j->want[w]->data_bytes ||
            memcmp(y->data, j->want[w]->data, y->data_bytes) != 0)
            j->failures++;
    }
    qkv_context_destroy(c);
    return NULL;
}

Test(onednn, two_contexts_on_two_threads_share_the_packed_weights)
{
    qkv_session *s = open_ok("mm_const_r3_128x200", "onednn,cpu", 2);
    size_t released = 0;
    qkv_session_packed_bytes(s, &released);
    cr_assert_gt(released, 0);
    qkv_tensor in[2][1], want[2];
    for (int w = 0; w < 2; w++) {
        dimset d = {.lo = 1, .hi = 3};
        dim_set(&d, "m", w ? 67 : 5);
        make_inputs(s, &d, in[w]);
        run_copy(s, in[w], 1, 0, &want[w]); /* one context alone: the reference */
    }
    ctx_job jobs[2];
    pthread_t th[2];
    for (int t = 0; t < 2; t++) {
        jobs[t] = (ctx_job){.s = s, .inputs = {in[t], in[1 - t]}, .want = {&want[t], &want[1 - t]}};
        cr_assert_eq(pthread_create(&th[t], NULL, ctx_thread, &jobs[t]), 0);
    }
    for (int t = 0; t < 2; t++) {
        pthread_join(th[t], NULL);
        cr_assert_eq(jobs[t].failures, 0, "thread %d: %d runs differ or failed", t,
                     jobs[t].failures);
    }
    for (int w = 0; w < 2; w++) {
        free(want[w].data);
        free_inputs(in[w], 1);
    }
    qkv_session_destroy(s); /* valgrind: packed weights and primitives freed */
}

/* ---- errors -------------------------------------------------------------------------- */

static void expect_create_error(const char *model, qkv_status status, const char *text)
{
    qkv_session *s = NULL;
    qkv_error err;
    cr_assert_eq(open_model(model, "onednn,cpu", 1, &s, &err), status, "%s: %s", model,
                 err.message);
    cr_assert_null(s);
    cr_assert(strstr(err.message, text), "%s: message '%s' lacks '%s'", model, err.message, text);
}

Test(onednn, bad_attributes_fail_session_creation_naming_the_node)
{
    expect_create_error("fused_bad_act", QKV_ERR_INVALID_MODEL,
                        "node 'fmm' (qkv.FusedMatMul-1): attribute activation='swish' is not "
                        "'', 'relu', 'gelu' or 'gelu_tanh'");
    expect_create_error("gemm_bad_trans", QKV_ERR_INVALID_MODEL,
                        "node 'gemm' (Gemm-13): attributes transA=2, transB=0: each must be 0 "
                        "or 1");
}

/* Runs model on inputs shaped by d and expects the run to fail with text;
 * then a good shape runs (the session stays usable). */
static void expect_run_error(const char *model, dimset *bad, dimset *good, const char *text)
{
    qkv_session *s = open_ok(model, "onednn,cpu", 1);
    qkv_context *c;
    qkv_error err;
    cr_assert_eq(qkv_context_create(s, &c, &err), QKV_OK);
    qkv_tensor in[4];
    size_t n = make_inputs(s, bad, in);
    cr_assert_eq(qkv_run(c, in, n, &err), QKV_ERR_SHAPE, "%s: %s", model, err.message);
    cr_assert(strstr(err.message, text), "%s: message '%s' lacks '%s'", model, err.message, text);
    free_inputs(in, n);
    n = make_inputs(s, good, in);
    cr_assert_eq(qkv_run(c, in, n, &err), QKV_OK, "%s: %s", model, err.message);
    free_inputs(in, n);
    qkv_context_destroy(c);
    qkv_session_destroy(s);
}

Test(onednn, shapes_that_do_not_fit_fail_the_run_with_a_message)
{
    dimset bad = {.lo = 2, .hi = 2}, good = {.lo = 3, .hi = 3};
    dim_set(&bad, "k1", 5);
    dim_set(&bad, "k2", 6);
    expect_run_error("mm_kmismatch", &bad, &good,
                     "node 'mm' (MatMul-13): input 0 'A' has 5 columns but input 1 'B' has 6 "
                     "rows: they must match");

    dimset bad_c = {.lo = 5, .hi = 5}, good_c = {.lo = 1, .hi = 1};
    dim_set(&bad_c, "cm", 2);
    dim_set(&bad_c, "cn", 2);
    expect_run_error("gemm_c_dyn", &bad_c, &good_c,
                     "node 'gemm' (Gemm-13): input 2 'C' (2, 2) does not broadcast to the "
                     "output (5, 3)");

    dimset bad_r = {.lo = 5, .hi = 5}, good_r = {.lo = 5, .hi = 5};
    dim_set(&bad_r, "r1", 4);
    dim_set(&good_r, "r1", 3);
    expect_run_error("fused_res_dyn", &bad_r, &good_r,
                     "node 'fmm' (qkv.FusedMatMul-1): input 3 'residual' (5, 4) must have "
                     "the output's shape (5, 3)");
}

Test(onednn, refuses_to_load_into_a_host_older_than_abi_1_1)
{
    void *h = dlopen(ONEDNN_PLUGIN, RTLD_NOW | RTLD_LOCAL);
    cr_assert(h, "%s", dlerror());
    qkv_plugin_init_fn init = (qkv_plugin_init_fn)dlsym(h, QKV_PLUGIN_ENTRY);
    cr_assert(init);
    qkv_host_api old = *qkv_host_api_get();
    old.abi_version = (uint32_t)1 << 16; /* 1.0: no prepack functions */
    old.struct_size = (uint32_t)offsetof(qkv_host_api, cpu_features);
    const qkv_plugin_info *info = NULL;
    char msg[256] = "";
    cr_assert_eq(init(&old, &info, msg, sizeof msg), QKV_ERR_PLUGIN);
    cr_assert_str_eq(msg, "the onednn backend needs the qkv plugin ABI 1.1 or a later 1.x "
                          "(prepack: node_input_const, node_input_packed); this qkv speaks "
                          "1.0");
    /* and loads into the real one */
    cr_assert_eq(init(qkv_host_api_get(), &info, msg, sizeof msg), QKV_OK, "%s", msg);
    cr_assert_str_eq(info->name, "onednn");
    cr_assert_eq(info->n_backends, 1);
    cr_assert_eq(info->backends[0]->priority, 200);
    info->fini(info->user);
    dlclose(h);
}

/* ---- the GEMM provider ----------------------------------------------------------------- */

static qkv_registry_backend onednn_backend;

/* A random strided batch through the provider vs a float64 reference. */
static void provider_case(qkv_host_ctx *h, size_t m, size_t n, size_t k, int batch)
{
    qkv_gemm g;
    memset(&g, 0, sizeof g);
    g.struct_size = sizeof g;
    g.abi_version = QKV_ABI_VERSION;
    g.dtype = QKV_DTYPE_FLOAT;
    g.m = m;
    g.n = n;
    g.k = k;
    g.trans_a = rnd() > 0;
    g.trans_b = rnd() > 0;
    g.alpha = rnd() > 0 ? 1.0 : 0.5 + rnd();
    g.beta = rnd() > 0 ? 0.0 : rnd();
    size_t ra = g.trans_a ? k : m, ca = g.trans_a ? m : k;
    size_t rb = g.trans_b ? n : k, cb = g.trans_b ? k : n;
    g.lda = ca + (size_t)rnd_int(0, 2);
    g.ldb = cb + (size_t)rnd_int(0, 2);
    g.ldc = n + (size_t)rnd_int(0, 2);
    size_t sa = ra * g.lda, sb = rb * g.ldb, sc = m * g.ldc, nb = 1;
    if (batch) {
        g.batch_rank = 1;
        g.batch_dims[0] = (size_t)rnd_int(1, 5);
        g.a_strides[0] = rnd() > -0.5 ? sa : 0;
        g.b_strides[0] = rnd() > -0.5 ? sb : 0;
        g.c_strides[0] = sc;
        nb = g.batch_dims[0];
    }
    size_t na = g.a_strides[0] ? sa * nb : sa, nbb = g.b_strides[0] ? sb * nb : sb, nc = sc * nb;
    float *a = malloc(na * 4 + 4), *b = malloc(nbb * 4 + 4), *c = malloc(nc * 4 + 4);
    double *want = malloc(nc * 8 + 8);
    for (size_t i = 0; i < na; i++)
        a[i] = (float)rnd();
    for (size_t i = 0; i < nbb; i++)
        b[i] = (float)rnd();
    for (size_t i = 0; i < nc; i++) {
        c[i] = g.beta == 0 ? NAN : (float)rnd(); /* beta 0: C is not read */
        want[i] = c[i];
    }
    for (size_t e = 0; e < nb; e++)
        for (size_t i = 0; i < m; i++)
            for (size_t j = 0; j < n; j++) {
                double acc = 0;
                const float *ae = a + e * g.a_strides[0], *be = b + e * g.b_strides[0];
                for (size_t p = 0; p < k; p++)
                    acc += (double)ae[g.trans_a ? p * g.lda + i : i * g.lda + p] *
                           (double)be[g.trans_b ? j * g.ldb + p : p * g.ldb + j];
                size_t ci = e * sc + i * g.ldc + j;
                want[ci] = g.alpha * acc + (g.beta == 0 ? 0.0 : g.beta * want[ci]);
            }
    g.a = a;
    g.b = b;
    g.c = c;
    qkv_status st = onednn_backend.gemm(onednn_backend.user, qkv_host_api_get(), h, &g);
    cr_assert_eq(st, QKV_OK, "%s", h->err->message);
    double tol = 2e-6 * (double)(k + 1); /* see assert_close */
    for (size_t e = 0; e < nb; e++)
        for (size_t i = 0; i < m; i++)
            for (size_t j = 0; j < g.ldc; j++) {
                size_t ci = e * sc + i * g.ldc + j;
                if (j >= n) { /* padding untouched */
                    if (g.beta == 0)
                        cr_assert(isnan(c[ci]), "padding at %zu written", ci);
                    continue;
                }
                cr_assert(fabs(c[ci] - want[ci]) <= tol * (1 + fabs(want[ci])),
                          "m=%zu n=%zu k=%zu ta=%d tb=%d beta=%g batch=%d: %zu: %.9g vs %.9g", m, n,
                          k, g.trans_a, g.trans_b, g.beta, batch, ci, c[ci], want[ci]);
            }
    free(a);
    free(b);
    free(c);
    free(want);
}

Test(onednn, gemm_provider_matches_the_reference_and_declines_what_it_does_not_do)
{
    qkv_plugin *p = NULL;
    qkv_error err = {0};
    cr_assert_eq(qkv_plugin_load(ONEDNN_PLUGIN, &p, &err), QKV_OK, "%s", err.message);
    cr_assert_eq(qkv_registry_backend_count(p->provides), 2);
    onednn_backend = *qkv_registry_backend_at(p->provides, 1);
    cr_assert_str_eq(onednn_backend.name, "onednn");
    cr_assert(onednn_backend.gemm);
    for (size_t threads = 1; threads <= 3; threads += 2) {
        qkv_threadpool *pool = qkv_threadpool_create(threads);
        qkv_host_ctx h = {.err = &err, .pool = pool};
        for (int t = 0; t < 30; t++)
            provider_case(&h, (size_t)rnd_int(1, 70), (size_t)rnd_int(1, 70),
                          (size_t)rnd_int(1, t % 10 == 0 ? 300 : 70), t % 2);
        /* declined: double, k == 0 */
        double d[4] = {0};
        qkv_gemm g = {.struct_size = sizeof g,
                      .abi_version = QKV_ABI_VERSION,
                      .dtype = QKV_DTYPE_DOUBLE,
                      .m = 2,
                      .n = 2,
                      .k = 2,
                      .a = d,
                      .lda = 2,
                      .b = d,
                      .ldb = 2,
                      .c = d,
                      .ldc = 2,
                      .alpha = 1};
        cr_assert_eq(onednn_backend.gemm(onednn_backend.user, qkv_host_api_get(), &h, &g),
                     QKV_ERR_UNSUPPORTED);
        g.dtype = QKV_DTYPE_FLOAT;
        g.k = 0;
        cr_assert_eq(onednn_backend.gemm(onednn_backend.user, qkv_host_api_get(), &h, &g),
                     QKV_ERR_UNSUPPORTED);
        qkv_threadpool_destroy(pool);
    }
    qkv_plugin_release(p);
}
