/*
 * test_plugin_gemm.c - the GEMM service behind host->gemm: the portable C
 * GEMM (the fallback of a qkv without the OpenBLAS plugin) and the OpenBLAS
 * backend's provider, both against a naive float64 reference on random
 * shapes that cross the portable GEMM's blocking (KC = 128, NC = 128/64,
 * MR x NR = 4 x 8), with transposes, broadcast batch strides, alpha, beta
 * (beta 0 over NaN), k = 0, on one thread and on a pool of three; and the
 * checks host->gemm makes, with their messages.
 *
 * Then the OpenBLAS plugin as a whole: the core's MatMul, Gemm and Attention
 * through its provider agree with the portable GEMM (`--backend cpu`) on
 * random shapes; and how it loads OpenBLAS (OPENBLAS_CORETYPE chosen from
 * the CPU features only while loading, a user's choice or an OpenBLAS loaded
 * before kept, generic cores reported, load errors), against a stand-in
 * library (tests/plugins/fx_fake_openblas.c) named by QKV_OPENBLAS_LIB.
 * Criterion runs each test in its own process, so each one's environment
 * and loaded libraries start fresh.
 */
#include <criterion/criterion.h>
#include <dlfcn.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "blas.h"
#include "gemm_portable.h"
#include "kernel_host.h"
#include "plugin.h"
#include "test_util.h"
#include "threadpool.h"

#define OPENBLAS_PLUGIN QKV_BINARY_DIR "/plugins/libqkv_openblas.so"
#define FAKE_OPENBLAS QKV_FIXTURE_PLUGIN_DIR "/fx_fake_openblas.so"
#define FAKE_NO_DGEMM QKV_FIXTURE_PLUGIN_DIR "/fx_fake_openblas_no_dgemm.so"

typedef qkv_status (*gemm_fn)(const qkv_host_api *host, void *host_ctx, const qkv_gemm *g);

static uint32_t rng_state = 12345;
static double rnd(void)
{
    rng_state = rng_state * 1664525u + 1013904223u;
    return (double)(rng_state >> 8) / (double)(1u << 24) * 2.0 - 1.0;
}
static size_t rnd_size(size_t lo, size_t hi)
{
    rng_state = rng_state * 1664525u + 1013904223u;
    return lo + (rng_state >> 8) % (hi - lo + 1);
}

/* One random case: dims, transposes, padding of the leading dims, a batch
 * of 1-3 dims with random broadcasting. */
typedef struct gcase {
    qkv_gemm g;
    size_t na, nb, nc; /* elements of A, B, C */
} gcase;

static void make_case(gcase *c, qkv_dtype dt, size_t m, size_t n, size_t k, int batch)
{
    qkv_gemm *g = &c->g;
    memset(c, 0, sizeof *c);
    g->struct_size = sizeof *g;
    g->abi_version = QKV_ABI_VERSION;
    g->dtype = dt;
    g->m = m;
    g->n = n;
    g->k = k;
    g->trans_a = rnd() > 0;
    g->trans_b = rnd() > 0;
    g->alpha = rnd() > 0.5 ? 1.0 : 0.5 + rnd();
    g->beta = rnd() > 0 ? 0.0 : rnd();
    size_t ra = g->trans_a ? k : m, ca = g->trans_a ? m : k;
    size_t rb = g->trans_b ? n : k, cb = g->trans_b ? k : n;
    g->lda = ca + rnd_size(0, 3);
    g->ldb = cb + rnd_size(0, 3);
    g->ldc = n + rnd_size(0, 3);
    if (g->lda == 0)
        g->lda = 1;
    if (g->ldb == 0)
        g->ldb = 1;
    if (g->ldc == 0)
        g->ldc = 1;
    size_t sa = ra * g->lda, sb = rb * g->ldb, sc = m * g->ldc;
    g->batch_rank = batch ? (int32_t)rnd_size(1, 3) : 0;
    for (int32_t j = g->batch_rank - 1; j >= 0; j--) {
        g->batch_dims[j] = rnd_size(1, 3);
        g->a_strides[j] = rnd() > 0.3 ? sa : 0; /* 0: broadcast */
        g->b_strides[j] = rnd() > 0.3 ? sb : 0;
        g->c_strides[j] = sc;
        sa *= g->a_strides[j] ? g->batch_dims[j] : 1;
        sb *= g->b_strides[j] ? g->batch_dims[j] : 1;
        sc *= g->batch_dims[j];
    }
    c->na = sa;
    c->nb = sb;
    c->nc = sc;
}

static double get(const qkv_gemm *g, const void *p, size_t i)
{
    return g->dtype == QKV_DTYPE_DOUBLE ? ((const double *)p)[i] : ((const float *)p)[i];
}

static void set(const qkv_gemm *g, void *p, size_t i, double v)
{
    if (g->dtype == QKV_DTYPE_DOUBLE)
        ((double *)p)[i] = v;
    else
        ((float *)p)[i] = (float)v;
}

/* The reference into want (float64), from the case's A, B and initial C. */
static void reference(const gcase *c, const void *a, const void *b, const void *c0, double *want)
{
    const qkv_gemm *g = &c->g;
    size_t nbatch = 1;
    for (int32_t j = 0; j < g->batch_rank; j++)
        nbatch *= g->batch_dims[j];
    for (size_t i = 0; i < c->nc; i++)
        want[i] = get(g, c0, i);
    for (size_t bi = 0; bi < nbatch; bi++) {
        size_t oa = 0, ob = 0, oc = 0, rest = bi;
        for (int32_t j = g->batch_rank - 1; j >= 0; j--) {
            size_t coord = rest % g->batch_dims[j];
            rest /= g->batch_dims[j];
            oa += coord * g->a_strides[j];
            ob += coord * g->b_strides[j];
            oc += coord * g->c_strides[j];
        }
        for (size_t i = 0; i < g->m; i++)
            for (size_t jn = 0; jn < g->n; jn++) {
                double acc = 0;
                for (size_t p = 0; p < g->k; p++) {
                    double av = get(g, a, oa + (g->trans_a ? p * g->lda + i : i * g->lda + p));
                    double bv = get(g, b, ob + (g->trans_b ? jn * g->ldb + p : p * g->ldb + jn));
                    acc += av * bv;
                }
                size_t ci = oc + i * g->ldc + jn;
                double old = want[ci];
                want[ci] = g->alpha * acc + (g->beta == 0 ? 0.0 : g->beta * old);
            }
    }
}

/* Runs n_cases random cases through fn and checks them. C's padding (the
 * columns between n and ldc) must be left alone. */
static void check_random(gemm_fn fn, const qkv_host_api *host, qkv_host_ctx *hctx, qkv_dtype dt,
                         int n_cases, size_t max_dim)
{
    size_t es = dt == QKV_DTYPE_DOUBLE ? 8 : 4;
    for (int t = 0; t < n_cases; t++) {
        gcase c;
        size_t m = rnd_size(1, max_dim), n = rnd_size(1, max_dim), k = rnd_size(0, max_dim);
        if (t % 5 == 0)
            k = 0;
        make_case(&c, dt, m, n, k, t % 2);
        void *a = calloc(c.na + 1, es), *b = calloc(c.nb + 1, es), *cc = calloc(c.nc + 1, es);
        void *c0 = calloc(c.nc + 1, es);
        double *want = calloc(c.nc + 1, sizeof *want);
        cr_assert(a && b && cc && c0 && want);
        for (size_t i = 0; i < c.na; i++)
            set(&c.g, a, i, rnd());
        for (size_t i = 0; i < c.nb; i++)
            set(&c.g, b, i, rnd());
        for (size_t i = 0; i < c.nc; i++)
            set(&c.g, c0, i, c.g.beta == 0 ? NAN : rnd()); /* beta 0: C is not read */
        memcpy(cc, c0, c.nc * es);
        reference(&c, a, b, c0, want);
        for (size_t i = 0; i < c.nc; i++)
            if (c.g.beta == 0 && (i % c.g.ldc) >= c.g.n)
                want[i] = NAN; /* padding keeps its NaN */
        c.g.a = a;
        c.g.b = b;
        c.g.c = cc;
        cr_assert_eq(fn(host, hctx, &c.g), QKV_OK, "%s", hctx->err ? hctx->err->message : "");
        /* float: k products of values in [-1, 1) summed in another order */
        double tol = dt == QKV_DTYPE_DOUBLE ? 1e-12 * (double)(k + 1) : 2e-6 * (double)(k + 1);
        for (size_t i = 0; i < c.nc; i++) {
            double got = get(&c.g, cc, i);
            if (isnan(want[i])) {
                cr_assert(isnan(got), "case %d: padding at %zu was written", t, i);
                continue;
            }
            cr_assert(fabs(got - want[i]) <= tol * (1 + fabs(want[i])),
                      "case %d (%s m=%zu n=%zu k=%zu ta=%d tb=%d batch=%d beta=%g) elem %zu: "
                      "%.9g vs %.9g",
                      t, dt == QKV_DTYPE_DOUBLE ? "f64" : "f32", c.g.m, c.g.n, c.g.k, c.g.trans_a,
                      c.g.trans_b, c.g.batch_rank, c.g.beta, i, got, want[i]);
        }
        free(a);
        free(b);
        free(cc);
        free(c0);
        free(want);
    }
}

static qkv_status portable(const qkv_host_api *host, void *host_ctx, const qkv_gemm *g)
{
    return qkv_gemm_portable(host, host_ctx, g);
}

Test(plugin_gemm, portable_gemm_matches_the_reference_on_random_shapes)
{
    qkv_error err = {0};
    qkv_host_ctx h = {.err = &err};
    check_random(portable, qkv_host_api_get(), &h, QKV_DTYPE_FLOAT, 40, 40);
    check_random(portable, qkv_host_api_get(), &h, QKV_DTYPE_DOUBLE, 40, 40);
    /* across the blocking: k > KC, n > NC */
    check_random(portable, qkv_host_api_get(), &h, QKV_DTYPE_FLOAT, 6, 300);
    check_random(portable, qkv_host_api_get(), &h, QKV_DTYPE_DOUBLE, 6, 300);
}

Test(plugin_gemm, portable_gemm_splits_over_threads_with_the_same_results)
{
    qkv_error err = {0};
    qkv_threadpool *pool = qkv_threadpool_create(3);
    cr_assert(pool);
    qkv_host_ctx h = {.err = &err, .pool = pool};
    check_random(portable, qkv_host_api_get(), &h, QKV_DTYPE_FLOAT, 8, 260);
    check_random(portable, qkv_host_api_get(), &h, QKV_DTYPE_DOUBLE, 8, 260);
    qkv_threadpool_destroy(pool);
}

#ifdef QKV_HAVE_OPENBLAS_PLUGIN
/* The OpenBLAS plugin's provider, reached like the host reaches it. */
static qkv_registry_backend openblas;
static qkv_status via_openblas(const qkv_host_api *host, void *host_ctx, const qkv_gemm *g)
{
    return openblas.gemm(openblas.user, host, host_ctx, g);
}
#endif

Test(plugin_gemm, openblas_provider_matches_the_reference_on_random_shapes)
{
#ifdef QKV_HAVE_OPENBLAS_PLUGIN
    qkv_plugin *p = NULL;
    qkv_error err = {0};
    cr_assert_eq(qkv_plugin_load(OPENBLAS_PLUGIN, &p, &err), QKV_OK, "%s", err.message);
    cr_assert_eq(qkv_registry_backend_count(p->provides), 2);
    openblas = *qkv_registry_backend_at(p->provides, 1);
    cr_assert_str_eq(openblas.name, "openblas");
    cr_assert_eq(openblas.priority, 100);
    /* a GEMM provider and a description, no kernels */
    cr_assert(openblas.gemm && openblas.describe && !openblas.supports);
    cr_assert_eq(qkv_registry_count(p->provides), 0);
    cr_assert_eq(qkv_registry_backend_kernel_count(p->provides, 1), 0);
    qkv_threadpool *pool = qkv_threadpool_create(2);
    qkv_host_ctx h = {.err = &err, .pool = pool};
    check_random(via_openblas, qkv_host_api_get(), &h, QKV_DTYPE_FLOAT, 30, 70);
    check_random(via_openblas, qkv_host_api_get(), &h, QKV_DTYPE_DOUBLE, 30, 70);
    /* what it does not do, it declines (the host then runs portable C) */
    qkv_gemm g = {.struct_size = sizeof g, .dtype = QKV_DTYPE_INT32, .m = 1, .n = 1, .k = 1};
    cr_assert_eq(via_openblas(qkv_host_api_get(), &h, &g), QKV_ERR_UNSUPPORTED);
    qkv_threadpool_destroy(pool);
    qkv_plugin_release(p);
#else
    cr_skip_test("built without OpenBLAS: no openblas plugin");
#endif
}

/* A provider that declines everything: host->gemm falls back to portable. */
static qkv_status decline(void *user, const qkv_host_api *host, void *host_ctx, const qkv_gemm *g)
{
    (void)user;
    (void)g;
    return host->error(host_ctx, QKV_ERR_UNSUPPORTED, "declined");
}

static qkv_status through_host(const qkv_host_api *host, void *host_ctx, const qkv_gemm *g)
{
    return host->gemm(host_ctx, g);
}

Test(plugin_gemm, host_gemm_falls_back_to_portable_when_the_provider_declines)
{
    qkv_error err = {0};
    qkv_gemm_provider prov = {.gemm = decline};
    qkv_host_ctx h = {.err = &err, .gemm = &prov};
    check_random(through_host, qkv_host_api_get(), &h, QKV_DTYPE_FLOAT, 10, 30);
    cr_assert_eq(err.status, QKV_OK, "the decline message is cleared: %s", err.message);
}

Test(plugin_gemm, host_gemm_checks_the_description)
{
    qkv_ir_node node = {.name = (char *)"g", .op_type = (char *)"MyOp", .domain = (char *)"x.y"};
    qkv_error err = {0};
    qkv_host_ctx h = {.node = &node, .version = 1, .err = &err};
    const qkv_host_api *host = qkv_host_api_get();
    float a[4] = {0}, b[4] = {0}, c[4] = {0};
    qkv_gemm g = {.struct_size = sizeof g,
                  .abi_version = QKV_ABI_VERSION,
                  .dtype = QKV_DTYPE_INT64,
                  .m = 2,
                  .n = 2,
                  .k = 2,
                  .a = a,
                  .lda = 2,
                  .b = b,
                  .ldb = 2,
                  .c = c,
                  .ldc = 2};
    cr_assert_eq(host->gemm(&h, &g), QKV_ERR_TYPE);
    cr_assert_str_eq(err.message, "node 'g' (x.y.MyOp-1): gemm: int64 is not supported (float "
                                  "and double are)");
    g.dtype = QKV_DTYPE_FLOAT;
    g.lda = 1; /* rows of A are 2 long */
    memset(&err, 0, sizeof err);
    cr_assert_eq(host->gemm(&h, &g), QKV_ERR_INVALID_ARGUMENT);
    cr_assert_str_eq(err.message, "node 'g' (x.y.MyOp-1): gemm: inconsistent description (m=2 "
                                  "n=2 k=2 lda=1 ldb=2 ldc=2 batch_rank=0)");
    g.lda = 2;
    g.struct_size = 16; /* a caller that did not set it */
    memset(&err, 0, sizeof err);
    cr_assert_eq(host->gemm(&h, &g), QKV_ERR_INVALID_ARGUMENT);
    cr_assert_str_eq(err.message, "node 'g' (x.y.MyOp-1): gemm: missing or too small description");
}

/* ---- the OpenBLAS plugin in sessions ------------------------------------------------ */

#ifdef QKV_HAVE_OPENBLAS_PLUGIN
/* gemm_ops (make_plugin_models.py) with only the OpenBLAS plugin, on two
 * threads, restricted to `backends` (NULL: all). */
static qkv_session *open_gemm_ops(const char *backends)
{
    const char *plugins[] = {OPENBLAS_PLUGIN};
    qkv_session_options opts;
    qkv_session_options_init(&opts);
    opts.plugins = plugins;
    opts.n_plugins = 1;
    opts.no_default_plugins = 1;
    opts.backends = backends;
    opts.threads = 2;
    qkv_session *s = NULL;
    qkv_error err = {0};
    cr_assert_eq(qkv_session_create(tu_data("plugin/gemm_ops.onnx"), &opts, &s, &err), QKV_OK, "%s",
                 err.message);
    return s;
}
#endif

Test(plugin_gemm, openblas_plugin_runs_matmul_gemm_and_attention_like_the_portable_gemm)
{
#ifdef QKV_HAVE_OPENBLAS_PLUGIN
    qkv_session *ob = open_gemm_ops(NULL), *pc = open_gemm_ops("cpu");
    cr_assert_str_eq(qkv_session_gemm_backend(ob), "openblas");
    cr_assert_str_eq(qkv_session_gemm_backend(pc), "portable");
    for (size_t i = 0; i < qkv_session_node_count(ob); i++) {
        qkv_node_info ni = {.struct_size = sizeof(qkv_node_info)};
        cr_assert_eq(qkv_session_node_info(ob, i, &ni), QKV_OK);
        cr_assert_str_eq(ni.backend, "cpu", "%s: the plugin has no kernels", ni.name);
    }
    qkv_context *cob = NULL, *cpc = NULL;
    qkv_error err = {0};
    cr_assert_eq(qkv_context_create(ob, &cob, &err), QKV_OK, "%s", err.message);
    cr_assert_eq(qkv_context_create(pc, &cpc, &err), QKV_OK, "%s", err.message);
    for (int t = 0; t < 6; t++) {
        int64_t B = (int64_t)rnd_size(1, 3), M = (int64_t)rnd_size(1, 70);
        int64_t K = (int64_t)rnd_size(1, 90), N = (int64_t)rnd_size(1, 80);
        int64_t H = (int64_t)rnd_size(1, 3), S = (int64_t)rnd_size(1, 40);
        int64_t L = (int64_t)rnd_size(1, 40), D = (int64_t)rnd_size(1, 40);
        /* a, w, x, wt, c, q, k, v as the model declares them */
        const int64_t shapes[8][4] = {{B, M, K}, {K, N},       {M, K},       {N, K},
                                      {N},       {B, H, S, D}, {B, H, L, D}, {B, H, L, D}};
        const int32_t ranks[8] = {3, 2, 2, 2, 1, 4, 4, 4};
        qkv_tensor in[8];
        memset(in, 0, sizeof in);
        for (int i = 0; i < 8; i++) {
            size_t n = 1;
            in[i].dtype = QKV_DTYPE_FLOAT;
            in[i].rank = ranks[i];
            for (int j = 0; j < ranks[i]; j++) {
                in[i].dims[j] = shapes[i][j];
                n *= (size_t)shapes[i][j];
            }
            float *data = malloc(n * sizeof *data);
            cr_assert(data);
            for (size_t e = 0; e < n; e++)
                data[e] = (float)rnd();
            in[i].data = data;
            in[i].data_bytes = n * sizeof *data;
        }
        cr_assert_eq(qkv_run(cob, in, 8, &err), QKV_OK, "%s", err.message);
        cr_assert_eq(qkv_run(cpc, in, 8, &err), QKV_OK, "%s", err.message);
        /* float sums of up to 90 products of values in [-1, 1), in
         * another order: a few ulps of the largest partial sums */
        for (size_t k = 0; k < 3; k++)
            tu_assert_close(qkv_context_output(cob, k), qkv_context_output(cpc, k), 1e-4f, 1e-4f);
        for (int i = 0; i < 8; i++)
            free(in[i].data);
    }
    qkv_context_destroy(cob);
    qkv_context_destroy(cpc);
    qkv_session_destroy(ob);
    qkv_session_destroy(pc);
    cr_assert_eq(qkv_plugin_loaded_count(), 0);
#else
    cr_skip_test("built without OpenBLAS: no openblas plugin");
#endif
}

/* ---- how the plugin loads OpenBLAS (against the stand-in library) -------------------- */

#ifdef QKV_HAVE_OPENBLAS_PLUGIN
/* Loads the OpenBLAS plugin with QKV_OPENBLAS_LIB=lib; returns its describe
 * string (copied into buf) and leaves the plugin loaded in *out. */
static const char *load_with(const char *lib, qkv_plugin **out, char *buf, size_t cap)
{
    qkv_error err = {0};
    setenv("QKV_OPENBLAS_LIB", lib, 1);
    setenv("QKV_LOG_LEVEL", "0", 1); /* the generic-core warning: tests/test_cli_system.c */
    cr_assert_eq(qkv_plugin_load(OPENBLAS_PLUGIN, out, &err), QKV_OK, "%s", err.message);
    const qkv_registry_backend *b = qkv_registry_backend_at((*out)->provides, 1);
    cr_assert(b && b->describe);
    snprintf(buf, cap, "%s", b->describe(b->user));
    return buf;
}

/* The GENERIC suffix of a describe string on this CPU ("" without AVX2). */
static const char *generic_suffix(void)
{
    uint64_t f = qkv_cpu_features();
    if (f & QKV_CPU_AVX512)
        return "; GENERIC kernels on an AVX2 CPU: set OPENBLAS_CORETYPE=SkylakeX";
    if (f & QKV_CPU_AVX2)
        return "; GENERIC kernels on an AVX2 CPU: set OPENBLAS_CORETYPE=Haswell";
    return "";
}

static int fake_loaded(void)
{
    void *h = dlopen(FAKE_OPENBLAS, RTLD_NOW | RTLD_NOLOAD);
    if (h)
        dlclose(h);
    return h != NULL;
}
#endif

Test(plugin_gemm, openblas_core_type_is_chosen_from_the_cpu_only_while_loading)
{
#ifdef QKV_HAVE_OPENBLAS_PLUGIN
    unsetenv("OPENBLAS_CORETYPE");
    qkv_plugin *p = NULL;
    char d[512];
    load_with(FAKE_OPENBLAS, &p, d, sizeof d);
    uint64_t f = qkv_cpu_features();
    if (f & QKV_CPU_AVX512)
        cr_assert_str_eq(d, "OpenBLAS 0.0-fake, core SkylakeX (chosen by qkv from the CPU's "
                            "AVX-512)");
    else if (f & QKV_CPU_AVX2)
        cr_assert_str_eq(d, "OpenBLAS 0.0-fake, core Haswell (chosen by qkv from the CPU's AVX2)");
    else
        cr_assert_str_eq(d, "OpenBLAS 0.0-fake, core Prescott (OpenBLAS's own detection)");
    cr_assert_null(getenv("OPENBLAS_CORETYPE"), "set only while loading");
    /* one OpenBLAS thread; the GEMMs go through the library it loaded */
    void *h = dlopen(FAKE_OPENBLAS, RTLD_NOW | RTLD_NOLOAD);
    cr_assert(h);
    int (*threads)(void) = NULL;
    *(void **)&threads = dlsym(h, "fake_openblas_threads");
    cr_assert(threads);
    cr_assert_eq(threads(), 1);
    dlclose(h);
    openblas = *qkv_registry_backend_at(p->provides, 1);
    qkv_error err = {0};
    qkv_host_ctx hc = {.err = &err};
    check_random(via_openblas, qkv_host_api_get(), &hc, QKV_DTYPE_FLOAT, 6, 20);
    check_random(via_openblas, qkv_host_api_get(), &hc, QKV_DTYPE_DOUBLE, 6, 20);
    qkv_plugin_release(p);
    cr_assert(!fake_loaded(), "OpenBLAS is closed with the plugin");
#else
    cr_skip_test("built without OpenBLAS: no openblas plugin");
#endif
}

Test(plugin_gemm, openblas_keeps_the_users_core_type_and_reports_a_generic_one)
{
#ifdef QKV_HAVE_OPENBLAS_PLUGIN
    setenv("OPENBLAS_CORETYPE", "Prescott", 1);
    qkv_plugin *p = NULL;
    char d[512], want[512];
    load_with(FAKE_OPENBLAS, &p, d, sizeof d);
    snprintf(want, sizeof want,
             "OpenBLAS 0.0-fake, core Prescott (from OPENBLAS_CORETYPE=Prescott)%s",
             generic_suffix());
    cr_assert_str_eq(d, want);
    cr_assert_str_eq(getenv("OPENBLAS_CORETYPE"), "Prescott");
    qkv_plugin_release(p);
#else
    cr_skip_test("built without OpenBLAS: no openblas plugin");
#endif
}

Test(plugin_gemm, openblas_loaded_before_the_plugin_keeps_its_core)
{
#ifdef QKV_HAVE_OPENBLAS_PLUGIN
    unsetenv("OPENBLAS_CORETYPE");
    void *app = dlopen(FAKE_OPENBLAS, RTLD_NOW | RTLD_LOCAL); /* the application's */
    cr_assert(app, "%s", dlerror());
    qkv_plugin *p = NULL;
    char d[512], want[512];
    load_with(FAKE_OPENBLAS, &p, d, sizeof d);
    snprintf(want, sizeof want,
             "OpenBLAS 0.0-fake, core Prescott (OpenBLAS was loaded before qkv's plugin: its "
             "own choice)%s",
             generic_suffix());
    cr_assert_str_eq(d, want);
    cr_assert_null(getenv("OPENBLAS_CORETYPE"));
    qkv_plugin_release(p);
    cr_assert(fake_loaded(), "the application's reference keeps it");
    dlclose(app);
#else
    cr_skip_test("built without OpenBLAS: no openblas plugin");
#endif
}

Test(plugin_gemm, qkv_isa_baseline_leaves_the_core_type_to_openblas)
{
#ifdef QKV_HAVE_OPENBLAS_PLUGIN
    setenv("QKV_ISA", "baseline", 1); /* before anything reads the CPU features */
    unsetenv("OPENBLAS_CORETYPE");
    cr_assert_str_eq(qkv_cpu_isa_name(), "baseline");
    qkv_plugin *p = NULL;
    char d[512];
    load_with(FAKE_OPENBLAS, &p, d, sizeof d);
    /* no AVX2 as far as qkv may use: no choice, and nothing generic to report */
    cr_assert_str_eq(d, "OpenBLAS 0.0-fake, core Prescott (OpenBLAS's own detection)");
    cr_assert_null(getenv("OPENBLAS_CORETYPE"));
    qkv_plugin_release(p);
#else
    cr_skip_test("built without OpenBLAS: no openblas plugin");
#endif
}

#ifdef QKV_HAVE_OPENBLAS_PLUGIN
static void assert_load_fails(const char *lib, const char *want)
{
    qkv_plugin *p = NULL;
    qkv_error err = {0};
    setenv("QKV_OPENBLAS_LIB", lib, 1);
    cr_assert_eq(qkv_plugin_load(OPENBLAS_PLUGIN, &p, &err), QKV_ERR_PLUGIN);
    cr_assert_null(p);
    char full[1024];
    snprintf(full, sizeof full, "qkv_plugin_init failed (plugin error): %s", want);
    cr_assert(strstr(err.message, full), "message '%s' lacks '%s'", err.message, full);
    cr_assert_eq(qkv_plugin_loaded_count(), 0);
}
#endif

Test(plugin_gemm, openblas_that_cannot_be_loaded_is_an_init_error)
{
#ifdef QKV_HAVE_OPENBLAS_PLUGIN
    unsetenv("OPENBLAS_CORETYPE");
    assert_load_fails("/nonexistent/libopenblas.so.0",
                      "cannot load OpenBLAS from QKV_OPENBLAS_LIB: /nonexistent/libopenblas.so.0: "
                      "cannot open shared object file");
    assert_load_fails("libm.so.6", "cannot load OpenBLAS from QKV_OPENBLAS_LIB: libm.so.6: not "
                                   "OpenBLAS (no openblas_get_corename)");
    assert_load_fails(FAKE_NO_DGEMM, FAKE_NO_DGEMM " has no symbol 'cblas_dgemm' (an OpenBLAS "
                                                   "with the CBLAS interface is needed)");
    void *h = dlopen(FAKE_NO_DGEMM, RTLD_NOW | RTLD_NOLOAD);
    cr_assert_null(h, "closed again after the failed init");
    cr_assert_null(getenv("OPENBLAS_CORETYPE"));
#else
    cr_skip_test("built without OpenBLAS: no openblas plugin");
#endif
}
