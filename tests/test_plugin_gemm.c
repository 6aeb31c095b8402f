/*
 * test_plugin_gemm.c - the GEMM service behind host->gemm: the portable C
 * GEMM (the fallback of a qkv without the OpenBLAS plugin) and the OpenBLAS
 * backend's provider, both against a naive float64 reference on random
 * shapes that cross the portable GEMM's blocking (KC = 128, NC = 128/64,
 * MR x NR = 4 x 8), with transposes, broadcast batch strides, alpha, beta
 * (beta 0 over NaN), k = 0, on one thread and on a pool of three; and the
 * checks host->gemm makes, with their messages.
 */
#include <criterion/criterion.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "blas.h"
#include "kernel_host.h"
#include "plugin.h"
#include "threadpool.h"

#define OPENBLAS_PLUGIN QKV_BINARY_DIR "/plugins/libqkv_openblas.so"

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
                      t, dt == QKV_DTYPE_DOUBLE ? "f64" : "f32", c.g.m, c.g.n, c.g.k,
                      c.g.trans_a, c.g.trans_b, c.g.batch_rank, c.g.beta, i, got, want[i]);
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
    cr_assert(openblas.gemm && openblas.supports);
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
    qkv_gemm g = {.struct_size = sizeof g, .abi_version = QKV_ABI_VERSION,
                  .dtype = QKV_DTYPE_INT64, .m = 2, .n = 2, .k = 2, .a = a, .lda = 2,
                  .b = b, .ldb = 2, .c = c, .ldc = 2};
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
    cr_assert_str_eq(err.message,
                     "node 'g' (x.y.MyOp-1): gemm: missing or too small description");
}
