/*
 * test_plugin.c - plugin loading, custom operators and backends, with real
 * .so fixtures (tests/plugins/fx_*.c, built into QKV_FIXTURE_PLUGIN_DIR):
 *
 *   fx_good         custom ops (with and without shape inference, failing
 *                   compute, host->gemm) and the backend "testbk"
 *   fx_abi_major    exports qkv_plugin_abi_version 2.0: refused before its
 *                   init runs (the init counts its calls)
 *   fx_bad_major    no exported version (a 1.0/1.1-era plugin) and an info
 *                   claiming 2.0: refused after init, both versions named
 *   fx_newer_minor  ABI 1.(minor+1), exported and in grown structs: accepted,
 *                   runs
 *   fx_plan_state   per-plan state (ABI 1.2): a prepare that numbers itself,
 *                   and a compute that asks for per-plan memory
 *   fx_no_entry     no qkv_plugin_init
 *   fx_init_fail    qkv_plugin_init fails with its own message
 *   fx_dup          qkv.test.Scale again: a session with fx_good refuses both
 *   fx_dup_builtin  a plain kernel for the built-in Relu: refused at load
 *   fx_dup_backend  a backend named "testbk" too: a session with fx_good refuses
 *   fx_not_elf.so   a text file
 *
 * Each Criterion test runs in its own process, so the process-wide plugin
 * registry starts empty in every test. Sessions pass no_default_plugins
 * unless a test is about the defaults, so the results do not depend on
 * whether the OpenBLAS plugin was built.
 */
#define _XOPEN_SOURCE 700 /* realpath, setenv */
#include <criterion/criterion.h>
#include <dlfcn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>

#include "loader.h"
#include "plugin.h"
#include "qkv.h"
#include "test_util.h"

#define FIXTURES QKV_FIXTURE_PLUGIN_DIR
#define EXAMPLE_PLUGIN QKV_BINARY_DIR "/plugins/example_ops/libqkv_example_ops.so"
#define OPENBLAS_PLUGIN QKV_BINARY_DIR "/plugins/libqkv_openblas.so"
#define QKV_CLI QKV_BINARY_DIR "/qkv"

static const char *fx(const char *name)
{
    static char bufs[4][1024];
    static int slot;
    char *b = bufs[slot++ % 4];
    snprintf(b, 1024, "%s/%s.so", FIXTURES, name);
    return b;
}

/* realpath of a fixture: what messages name */
static const char *fx_real(const char *name)
{
    static char bufs[4][4096];
    static int slot;
    char *b = bufs[slot++ % 4];
    char *r = realpath(fx(name), NULL);
    cr_assert(r, "fixture %s missing", fx(name));
    snprintf(b, 4096, "%s", r);
    free(r);
    return b;
}

static void assert_contains(const char *haystack, const char *needle)
{
    cr_assert(strstr(haystack, needle), "expected \"%s\" in \"%s\"", needle, haystack);
}

/* A session of model plugin/<model>.onnx with these plugins and no default
 * plugins; backends may be NULL. */
static qkv_status open_session(const char *model, const char *const *plugins, size_t n,
                               const char *backends, qkv_session **out, qkv_error *err)
{
    char path[1024];
    snprintf(path, sizeof path, "plugin/%s.onnx", model);
    qkv_session_options opts;
    qkv_session_options_init(&opts);
    opts.plugins = plugins;
    opts.n_plugins = n;
    opts.no_default_plugins = 1;
    opts.backends = backends;
    memset(err, 0, sizeof *err);
    return qkv_session_create(tu_data(path), &opts, out, err);
}

static qkv_session *must_open(const char *model, const char *const *plugins, size_t n,
                              const char *backends)
{
    qkv_session *s = NULL;
    qkv_error err;
    qkv_status st = open_session(model, plugins, n, backends, &s, &err);
    cr_assert_eq(st, QKV_OK, "%s: %s", model, err.message);
    return s;
}

/* Runs model's reference case (inputs plugin/<model>_input_k.pb) and checks
 * every float output against plugin/<model>_output_k.pb. */
static void run_reference(qkv_session *s, const char *model, float rtol, float atol)
{
    const qkv_model *m = qkv_session_model(s);
    size_t n_in = qkv_model_input_count(m), n_out = qkv_model_output_count(m);
    qkv_tensor in[4] = {0};
    char rel[256];
    cr_assert(n_in <= 4);
    for (size_t i = 0; i < n_in; i++) {
        snprintf(rel, sizeof rel, "plugin/%s_input_%zu.pb", model, i);
        tu_read_pb(tu_data(rel), &in[i]);
    }
    qkv_context *ctx = NULL;
    qkv_error err = {0};
    cr_assert_eq(qkv_context_create(s, &ctx, &err), QKV_OK, "%s", err.message);
    cr_assert_eq(qkv_run(ctx, in, n_in, &err), QKV_OK, "%s: %s", model, err.message);
    for (size_t k = 0; k < n_out; k++) {
        qkv_tensor want;
        snprintf(rel, sizeof rel, "plugin/%s_output_%zu.pb", model, k);
        tu_read_pb(tu_data(rel), &want);
        const qkv_tensor *got = qkv_context_output(ctx, k);
        cr_assert(got);
        if (want.dtype == QKV_DTYPE_FLOAT) {
            tu_assert_close(got, &want, rtol, atol);
        } else {
            cr_assert_eq(got->dtype, want.dtype);
            cr_assert_eq(got->data_bytes, want.data_bytes);
            cr_assert_eq(memcmp(got->data, want.data, want.data_bytes), 0, "output %zu", k);
        }
        qkv_tensor_data_free(&want);
    }
    qkv_context_destroy(ctx);
    for (size_t i = 0; i < n_in; i++)
        qkv_tensor_data_free(&in[i]);
}

/* The node named `name` of a session. */
static qkv_node_info node_named(const qkv_session *s, const char *name)
{
    for (size_t i = 0; i < qkv_session_node_count(s); i++) {
        qkv_node_info ni = {.struct_size = sizeof(qkv_node_info)};
        cr_assert_eq(qkv_session_node_info(s, i, &ni), QKV_OK);
        if (strcmp(ni.name, name) == 0)
            return ni;
    }
    cr_assert_fail("no node '%s'", name);
    return (qkv_node_info){0};
}

/* ---- loading ---------------------------------------------------------------------- */

Test(plugin, load_copies_the_info_and_shares_one_library_per_file)
{
    qkv_plugin *a = NULL, *b = NULL;
    qkv_error err = {0};
    cr_assert_eq(qkv_plugin_load(fx("fx_good"), &a, &err), QKV_OK, "%s", err.message);
    cr_assert_str_eq(qkv_plugin_name(a), "fx_good");
    cr_assert_str_eq(qkv_plugin_version(a), "0.0.1");
    cr_assert_str_eq(qkv_plugin_path(a), fx_real("fx_good"));
    /* the same file by another spelling of its path: the same library */
    char other[1100];
    snprintf(other, sizeof other, "%s/./fx_good.so", FIXTURES);
    cr_assert_eq(qkv_plugin_load(other, &b, &err), QKV_OK, "%s", err.message);
    cr_assert_eq(a, b);
    cr_assert_eq(qkv_plugin_loaded_count(), 1);
    qkv_plugin_release(a);
    cr_assert_eq(qkv_plugin_loaded_count(), 1, "b still holds it");
    qkv_plugin_release(b);
    cr_assert_eq(qkv_plugin_loaded_count(), 0, "closed with the last reference");
    qkv_plugin_release(NULL);
}

/* Loads a fixture that must fail; checks status, message and that the
 * registry did not change. Returns the message. */
static const char *load_fails(const char *path, qkv_status want)
{
    static qkv_error err;
    qkv_plugin *p = (qkv_plugin *)&err; /* must stay untouched */
    size_t before = qkv_plugin_loaded_count();
    memset(&err, 0, sizeof err);
    qkv_status st = qkv_plugin_load(path, &p, &err);
    cr_assert_eq(st, want, "%s: status %d (%s)", path, st, err.message);
    cr_assert_eq(err.status, want);
    cr_assert_eq(p, (qkv_plugin *)&err, "*out written on failure");
    cr_assert_eq(qkv_plugin_loaded_count(), before, "the registry changed");
    return err.message;
}

Test(plugin, missing_file_is_not_found)
{
    const char *m = load_fails(FIXTURES "/no_such_plugin.so", QKV_ERR_IO);
    cr_assert_str_eq(m, "plugin '" FIXTURES "/no_such_plugin.so': not found");
}

Test(plugin, text_file_is_not_a_shared_object_with_dlerror_text)
{
    char want[4200];
    const char *m = load_fails(fx("fx_not_elf"), QKV_ERR_PLUGIN);
    snprintf(want, sizeof want,
             "plugin '%s': not a loadable shared object: ", fx_real("fx_not_elf"));
    assert_contains(m, want);
    /* dlerror names the file and says what is wrong with it */
    assert_contains(m, "fx_not_elf.so: ");
}

Test(plugin, library_without_entry_point_is_refused)
{
    char want[4200];
    const char *m = load_fails(fx("fx_no_entry"), QKV_ERR_PLUGIN);
    snprintf(want, sizeof want, "plugin '%s': no entry point 'qkv_plugin_init'",
             fx_real("fx_no_entry"));
    assert_contains(m, want);
}

Test(plugin, other_major_version_is_refused_with_both_versions)
{
    char want[4200];
    const char *m = load_fails(fx("fx_bad_major"), QKV_ERR_PLUGIN);
    snprintf(want, sizeof want,
             "plugin '%s' was built for the qkv plugin ABI 2.0; this qkv speaks %d.%d",
             fx_real("fx_bad_major"), QKV_ABI_MAJOR, QKV_ABI_MINOR);
    assert_contains(m, want);
}

Test(plugin, other_major_version_exported_is_refused_before_init_runs)
{
    /* the test's own handle on the fixture: the host's dlopen gets the same
     * library, so the same counter, and it stays readable after the host
     * closes its handle */
    void *lib = dlopen(fx("fx_abi_major"), RTLD_NOW | RTLD_LOCAL);
    cr_assert(lib, "%s", dlerror());
    int *init_calls = dlsym(lib, "fx_init_calls");
    cr_assert(init_calls);
    char want[4200];
    const char *m = load_fails(fx("fx_abi_major"), QKV_ERR_PLUGIN);
    snprintf(want, sizeof want,
             "plugin '%s' was built for the qkv plugin ABI 2.0; this qkv speaks %d.%d",
             fx_real("fx_abi_major"), QKV_ABI_MAJOR, QKV_ABI_MINOR);
    assert_contains(m, want);
    cr_assert_eq(*init_calls, 0, "the host ran the init of a plugin of another major");
    /* the counter does count: the fixture's init, called here, moves it */
    qkv_plugin_init_fn init;
    void *sym = dlsym(lib, QKV_PLUGIN_ENTRY);
    cr_assert(sym);
    memcpy(&init, &sym, sizeof init);
    const qkv_plugin_info *info = NULL;
    char msg[64];
    cr_assert_eq(init(NULL, &info, msg, sizeof msg), QKV_OK);
    cr_assert_eq(*init_calls, 1);
    dlclose(lib);
}

Test(plugin, failing_init_reports_the_plugins_message)
{
    char want[4200];
    const char *m = load_fails(fx("fx_init_fail"), QKV_ERR_PLUGIN);
    snprintf(want, sizeof want,
             "plugin '%s': qkv_plugin_init failed (I/O error): license file /nonexistent/fx.lic "
             "not found",
             fx_real("fx_init_fail"));
    cr_assert_str_eq(m, want);
}

Test(plugin, plain_kernel_for_a_builtin_op_is_refused_naming_both)
{
    const char *m = load_fails(fx("fx_dup_builtin"), QKV_ERR_PLUGIN);
    assert_contains(m, fx_real("fx_dup_builtin"));
    assert_contains(m, "kernel 'Relu' opsets [14, 0] collide with the one from built-in");
}

Test(plugin, failed_loads_leave_a_loaded_plugin_alone)
{
    qkv_plugin *good = NULL;
    qkv_error err = {0};
    cr_assert_eq(qkv_plugin_load(fx("fx_good"), &good, &err), QKV_OK, "%s", err.message);
    load_fails(fx("fx_bad_major"), QKV_ERR_PLUGIN);
    load_fails(fx("fx_init_fail"), QKV_ERR_PLUGIN);
    load_fails(fx("fx_not_elf"), QKV_ERR_PLUGIN);
    cr_assert_eq(qkv_plugin_loaded_count(), 1);
    /* a loaded plugin is not used implicitly: sessions name their plugins */
    qkv_error e2;
    qkv_session *s2 = NULL;
    cr_assert_eq(open_session("scale", NULL, 0, NULL, &s2, &e2), QKV_ERR_UNSUPPORTED);
    assert_contains(e2.message, "no kernel for op Scale (domain qkv.test, opset 1)");
    qkv_plugin_release(good);
    cr_assert_eq(qkv_plugin_loaded_count(), 0);
}

Test(plugin, newer_minor_version_is_accepted_and_runs)
{
    const char *plugins[] = {fx("fx_newer_minor")};
    qkv_session *s = must_open("neg", plugins, 1, NULL);
    cr_assert_str_eq(qkv_plugin_version(qkv_session_plugin(s, 0)), "9.9");
    run_reference(s, "neg", 0, 0);
    qkv_session_destroy(s);
}

Test(plugin, duplicate_op_in_two_libraries_names_both_and_changes_nothing)
{
    qkv_plugin *held = NULL;
    qkv_error err = {0};
    cr_assert_eq(qkv_plugin_load(fx("fx_good"), &held, &err), QKV_OK, "%s", err.message);
    const char *plugins[] = {fx("fx_good"), fx("fx_dup")};
    qkv_session *s = (qkv_session *)&err;
    cr_assert_eq(open_session("scale", plugins, 2, NULL, &s, &err), QKV_ERR_PLUGIN);
    cr_assert_eq(s, (qkv_session *)&err, "*out written on failure");
    char want[9000];
    snprintf(want, sizeof want,
             "%s: kernel 'qkv.test.Scale' opsets [1, 0] collide with the one from %s [1, 0]",
             fx_real("fx_dup"), fx_real("fx_good"));
    cr_assert_str_eq(err.message, want);
    /* the failed session released what it loaded: fx_dup is closed, fx_good
     * is back to the one reference held here */
    cr_assert_eq(qkv_plugin_loaded_count(), 1);
    qkv_plugin_release(held);
    cr_assert_eq(qkv_plugin_loaded_count(), 0);
    /* each of them alone is fine */
    const char *dup_only[] = {fx("fx_dup")};
    s = must_open("scale", dup_only, 1, NULL);
    qkv_session_destroy(s);
}

Test(plugin, duplicate_backend_name_names_both_libraries)
{
    const char *plugins[] = {fx("fx_good"), fx("fx_dup_backend")};
    qkv_session *s = NULL;
    qkv_error err;
    cr_assert_eq(open_session("relu_mixed", plugins, 2, NULL, &s, &err), QKV_ERR_PLUGIN);
    char want[9000];
    snprintf(want, sizeof want, "%s: backend 'testbk' is already provided by %s",
             fx_real("fx_dup_backend"), fx_real("fx_good"));
    cr_assert_str_eq(err.message, want);
    cr_assert_eq(qkv_plugin_loaded_count(), 0);
}

Test(plugin, sessions_hold_references_and_the_last_one_closes_the_library)
{
    const char *plugins[] = {fx("fx_good")};
    qkv_session *a = must_open("scale", plugins, 1, NULL);
    qkv_session *b = must_open("scale", plugins, 1, NULL);
    cr_assert_eq(qkv_plugin_loaded_count(), 1);
    cr_assert_eq(qkv_session_plugin(a, 0), qkv_session_plugin(b, 0));
    qkv_session_destroy(a);
    cr_assert_eq(qkv_plugin_loaded_count(), 1);
    run_reference(b, "scale", 0, 0);
    qkv_session_destroy(b);
    cr_assert_eq(qkv_plugin_loaded_count(), 0);
}

/* ---- custom operators ------------------------------------------------------------ */

Test(plugin, custom_op_with_an_attribute_runs)
{
    const char *plugins[] = {fx("fx_good")};
    qkv_session *s = must_open("scale", plugins, 1, NULL);
    qkv_node_info ni = node_named(s, "scale");
    cr_assert_str_eq(ni.domain, "qkv.test");
    cr_assert_str_eq(ni.backend, "cpu");
    cr_assert_str_eq(ni.origin, fx_real("fx_good"));
    cr_assert_eq(ni.shape_inference, 1);
    run_reference(s, "scale", 0, 0);
    qkv_session_destroy(s);
}

Test(plugin, op_without_shape_inference_runs_with_outputs_sized_at_run_time)
{
    const char *plugins[] = {fx("fx_good")};
    qkv_session *s = must_open("positives", plugins, 1, NULL);
    cr_assert_eq(node_named(s, "positives").shape_inference, 0);
    cr_assert_eq(node_named(s, "double").shape_inference, 1);
    run_reference(s, "positives", 0, 0);
    /* the node and the one after it are dynamic in the plan */
    qkv_context *ctx = NULL;
    qkv_error err = {0};
    qkv_plan_stats st = {.struct_size = sizeof(qkv_plan_stats)};
    qkv_tensor x;
    tu_read_pb(tu_data("plugin/positives_input_0.pb"), &x);
    cr_assert_eq(qkv_context_create(s, &ctx, &err), QKV_OK);
    cr_assert_eq(qkv_plan(ctx, &x, 1, &st, &err), QKV_OK, "%s", err.message);
    cr_assert_eq(st.dynamic_nodes, 2);
    /* and it runs again with other data (another output size) */
    float *xs = x.data;
    xs[1] = 7; /* now 4 positives */
    cr_assert_eq(qkv_run(ctx, &x, 1, &err), QKV_OK, "%s", err.message);
    const qkv_tensor *y = qkv_context_output(ctx, 0);
    cr_assert_eq(y->rank, 1);
    cr_assert_eq(y->dims[0], 4);
    float want[] = {2, 14, 6, 10};
    cr_assert_arr_eq(y->data, want, sizeof want);
    qkv_tensor_data_free(&x);
    qkv_context_destroy(ctx);
    qkv_session_destroy(s);
}

Test(plugin, op_without_infer_that_allocates_no_output_fails_the_run)
{
    const char *plugins[] = {fx("fx_good")};
    qkv_session *s = must_open("forgetful", plugins, 1, NULL);
    qkv_tensor x;
    tu_read_pb(tu_data("plugin/forgetful_input_0.pb"), &x);
    qkv_context *ctx = NULL;
    qkv_error err = {0};
    cr_assert_eq(qkv_context_create(s, &ctx, &err), QKV_OK);
    cr_assert_eq(qkv_run(ctx, &x, 1, &err), QKV_ERR_PLUGIN);
    cr_assert_str_eq(err.message,
                     "node 'forget' (qkv.test.Forgetful-1): output 0 was not produced: a kernel "
                     "without infer must allocate each output with host->output_alloc in "
                     "compute");
    qkv_tensor_data_free(&x);
    qkv_context_destroy(ctx);
    qkv_session_destroy(s);
}

Test(plugin, compute_error_fails_the_run_with_the_plugins_message_and_the_session_stays_usable)
{
    const char *plugins[] = {fx("fx_good")};
    qkv_session *s = must_open("fail", plugins, 1, NULL);
    qkv_context *ctx = NULL;
    qkv_error err = {0};
    cr_assert_eq(qkv_context_create(s, &ctx, &err), QKV_OK);
    float bad[] = {1, -2, 3, 4};
    qkv_tensor x = {
        .dtype = QKV_DTYPE_FLOAT, .rank = 1, .dims = {4}, .data = bad, .data_bytes = sizeof bad};
    cr_assert_eq(qkv_run(ctx, &x, 1, &err), QKV_ERR_INVALID_ARGUMENT);
    cr_assert_str_eq(err.message, "node 'guard' (qkv.test.FailIfNegative-1): fx_good refuses "
                                  "negative input: x[1] = -2");
    cr_assert_null(qkv_context_output(ctx, 0));
    /* the same context and session run fine afterwards */
    float good[] = {1, 2, 3, 4};
    x.data = good;
    cr_assert_eq(qkv_run(ctx, &x, 1, &err), QKV_OK, "%s", err.message);
    cr_assert_arr_eq(qkv_context_output(ctx, 0)->data, good, sizeof good);
    qkv_context_destroy(ctx);
    run_reference(s, "fail", 0, 0);
    qkv_session_destroy(s);
}

/* ---- per-plan state ----------------------------------------------------------------- */

/* Runs plan_once on n floats; returns y = [serial of the prepare that built
 * the plan, element count it saw]. */
static void run_plan_once(qkv_context *ctx, int64_t n, float y[2])
{
    float xs[64] = {0};
    cr_assert(n <= 64);
    qkv_tensor x = {.dtype = QKV_DTYPE_FLOAT,
                    .rank = 1,
                    .dims = {n},
                    .data = xs,
                    .data_bytes = (size_t)n * sizeof(float)};
    qkv_error err = {0};
    cr_assert_eq(qkv_run(ctx, &x, 1, &err), QKV_OK, "%s", err.message);
    const qkv_tensor *out = qkv_context_output(ctx, 0);
    cr_assert(out && out->data_bytes == 2 * sizeof(float));
    memcpy(y, out->data, 2 * sizeof(float));
}

Test(plugin, per_plan_state_is_built_once_per_plan_and_shared_by_its_runs)
{
    const char *plugins[] = {fx("fx_plan_state")};
    qkv_session *s = must_open("plan_once", plugins, 1, NULL);
    qkv_context *a = NULL, *b = NULL;
    qkv_error err = {0};
    cr_assert_eq(qkv_context_create(s, &a, &err), QKV_OK);
    cr_assert_eq(qkv_context_create(s, &b, &err), QKV_OK);
    float y[2];
    for (int run = 0; run < 3; run++) {
        run_plan_once(a, 3, y);
        cr_assert(y[0] == 1 && y[1] == 3, "run %d of length 3: [%g, %g]", run, y[0], y[1]);
    }
    run_plan_once(a, 5, y);
    cr_assert(y[0] == 2 && y[1] == 5, "length 5: [%g, %g]", y[0], y[1]);
    /* back to the cached plan of length 3, and from another context: its
     * state, not a new prepare */
    run_plan_once(a, 3, y);
    cr_assert(y[0] == 1 && y[1] == 3, "length 3 again: [%g, %g]", y[0], y[1]);
    run_plan_once(b, 3, y);
    cr_assert(y[0] == 1 && y[1] == 3, "other context: [%g, %g]", y[0], y[1]);
    cr_assert_eq(qkv_session_plans_built(s), 2);
    qkv_context_destroy(a);
    qkv_context_destroy(b);
    qkv_session_destroy(s);
}

Test(plugin, per_plan_state_goes_with_a_plan_evicted_from_the_cache)
{
    const char *plugins[] = {fx("fx_plan_state")};
    qkv_session *s = must_open("plan_once", plugins, 1, NULL);
    qkv_context *ctx = NULL;
    qkv_error err = {0};
    cr_assert_eq(qkv_context_create(s, &ctx, &err), QKV_OK);
    float y[2];
    /* lengths 1..40: more plans than the cache keeps (32), each prepared once */
    for (int64_t n = 1; n <= 40; n++) {
        run_plan_once(ctx, n, y);
        cr_assert(y[0] == (float)n && y[1] == (float)n, "length %lld: [%g, %g]", (long long)n, y[0],
                  y[1]);
    }
    /* length 1 was evicted (its state freed with it: the valgrind run of
     * this test checks for leaks): a new plan, a new prepare */
    run_plan_once(ctx, 1, y);
    cr_assert(y[0] == 41 && y[1] == 1, "length 1 again: [%g, %g]", y[0], y[1]);
    qkv_context_destroy(ctx);
    qkv_session_destroy(s);
}

Test(plugin, plan_alloc_outside_prepare_fails_naming_the_node)
{
    const char *plugins[] = {fx("fx_plan_state")};
    qkv_session *s = must_open("plan_alloc", plugins, 1, NULL);
    qkv_context *ctx = NULL;
    qkv_error err = {0};
    cr_assert_eq(qkv_context_create(s, &ctx, &err), QKV_OK);
    float xs[3] = {1, 2, 3};
    qkv_tensor x = {
        .dtype = QKV_DTYPE_FLOAT, .rank = 1, .dims = {3}, .data = xs, .data_bytes = sizeof xs};
    cr_assert_eq(qkv_run(ctx, &x, 1, &err), QKV_ERR_INVALID_ARGUMENT);
    cr_assert_str_eq(err.message, "node 'alloc' (qkv.plan.AllocInCompute-1): plan_alloc: only "
                                  "prepare may take per-plan memory");
    qkv_context_destroy(ctx);
    qkv_session_destroy(s);
}

Test(plugin, plugin_op_can_use_the_host_gemm_service)
{
    const char *plugins[] = {fx("fx_good")};
    qkv_session *s = must_open("host_gemm", plugins, 1, NULL);
    cr_assert_str_eq(qkv_session_gemm_backend(s), "portable");
    /* float32 GEMM against a float64 reference, k = 4 */
    run_reference(s, "host_gemm", 1e-5f, 1e-5f);
    qkv_session_destroy(s);
}

Test(plugin, example_plugin_models_match_numpy)
{
    const char *plugins[] = {EXAMPLE_PLUGIN};
    qkv_session *s = must_open("example", plugins, 1, NULL);
    cr_assert_str_eq(qkv_plugin_name(qkv_session_plugin(s, 0)), "example_ops");
    /* float32 math (powf-free: the angles are float64) against float64 */
    run_reference(s, "example", 1e-5f, 1e-5f);
    qkv_session_destroy(s);
    s = must_open("example_inter", plugins, 1, NULL);
    run_reference(s, "example_inter", 1e-5f, 1e-5f);
    qkv_session_destroy(s);
}

/* ---- backends ------------------------------------------------------------------------ */

Test(plugin, nodes_go_to_the_first_backend_that_supports_them)
{
    const char *plugins[] = {fx("fx_good")};
    qkv_session *s = must_open("relu_mixed", plugins, 1, NULL);
    cr_assert_eq(qkv_session_backend_count(s), 2);
    cr_assert_str_eq(qkv_session_backend_name(s, 0), "testbk"); /* priority 50 */
    cr_assert_str_eq(qkv_session_backend_name(s, 1), "cpu");
    cr_assert_str_eq(node_named(s, "relu_float").backend, "testbk");
    cr_assert_str_eq(node_named(s, "relu_double").backend, "cpu"); /* supports() said no */
    run_reference(s, "relu_mixed", 0, 0);
    qkv_session_destroy(s);
}

Test(plugin, backend_list_restricts_and_orders_the_backends)
{
    const char *plugins[] = {fx("fx_good")};
    qkv_session *s = must_open("relu_mixed", plugins, 1, "cpu");
    cr_assert_eq(qkv_session_backend_count(s), 1);
    cr_assert_str_eq(node_named(s, "relu_float").backend, "cpu");
    qkv_session_destroy(s);
    s = must_open("relu_mixed", plugins, 1, "cpu,testbk");
    cr_assert_str_eq(node_named(s, "relu_float").backend, "cpu");
    run_reference(s, "relu_mixed", 0, 0);
    qkv_session_destroy(s);

    qkv_error err;
    s = NULL;
    cr_assert_eq(open_session("relu_mixed", plugins, 1, "testbk", &s, &err), QKV_ERR_TYPE);
    assert_contains(err.message, "node 'relu_double' (Relu-6): input 0 has type float64");
    cr_assert_eq(open_session("relu_mixed", plugins, 1, "cpu,nope", &s, &err),
                 QKV_ERR_INVALID_ARGUMENT);
    cr_assert_str_eq(err.message, "backends 'cpu,nope': no backend 'nope' (available: cpu, "
                                  "testbk)");
    cr_assert_eq(open_session("relu_mixed", plugins, 1, "cpu,cpu", &s, &err),
                 QKV_ERR_INVALID_ARGUMENT);
    cr_assert_str_eq(err.message, "backends 'cpu,cpu': 'cpu' is listed twice");
    cr_assert_eq(qkv_plugin_loaded_count(), 0);
}

Test(plugin, openblas_backend_serves_the_gemm_of_the_core_matmul)
{
#ifdef QKV_HAVE_OPENBLAS_PLUGIN
    unsetenv("QKV_PLUGIN_PATH"); /* the build tree's defaults */
    qkv_session_options opts;
    qkv_session_options_init(&opts);
    qkv_session *s = NULL;
    qkv_error err = {0};
    cr_assert_eq(qkv_session_create(tu_data("plugin/matmul_mixed.onnx"), &opts, &s, &err), QKV_OK,
                 "%s", err.message);
    char *real = realpath(OPENBLAS_PLUGIN, NULL);
#ifdef QKV_HAVE_ONEDNN_PLUGIN
    /* the build tree has the oneDNN backend too (libqkv_onednn.so loads
     * first, by name), and its priority 200 puts it ahead of openblas */
    cr_assert_eq(qkv_session_plugin_count(s), 2);
    cr_assert_str_eq(qkv_plugin_path(qkv_session_plugin(s, 1)), real);
    cr_assert_str_eq(qkv_session_backend_name(s, 0), "onednn");
    cr_assert_str_eq(qkv_session_backend_name(s, 1), "openblas");
    cr_assert_str_eq(qkv_session_gemm_backend(s), "onednn");
    cr_assert_str_eq(node_named(s, "mm_float").backend, "onednn");
    size_t openblas = 1;
#else
    cr_assert_eq(qkv_session_plugin_count(s), 1);
    cr_assert_str_eq(qkv_plugin_path(qkv_session_plugin(s, 0)), real);
    cr_assert_str_eq(qkv_session_backend_name(s, 0), "openblas");
    cr_assert_str_eq(qkv_session_gemm_backend(s), "openblas");
    /* a GEMM provider only: the nodes are the core's, their GEMMs OpenBLAS's */
    cr_assert_str_eq(node_named(s, "mm_float").backend, "cpu");
    size_t openblas = 0;
#endif
    free(real);
    cr_assert_str_eq(node_named(s, "mm_int").backend, "cpu");
    assert_contains(qkv_session_backend_describe(s, openblas), "OpenBLAS ");
    assert_contains(qkv_session_backend_describe(s, openblas), ", core ");
    assert_contains(qkv_session_backend_describe(s, openblas + 1),
                    "qkv built-in kernels, ISA level ");
    cr_assert_str_eq(qkv_session_backend_describe(s, openblas + 2), "");
    cr_assert_str_eq(qkv_session_backend_describe(NULL, 0), "");
    run_reference(s, "matmul_mixed", 1e-5f, 1e-5f);
    qkv_session_destroy(s);
    /* without it: the portable GEMM, same results */
    opts.no_default_plugins = 1;
    cr_assert_eq(qkv_session_create(tu_data("plugin/matmul_mixed.onnx"), &opts, &s, &err), QKV_OK,
                 "%s", err.message);
    cr_assert_str_eq(node_named(s, "mm_float").backend, "cpu");
    cr_assert_str_eq(qkv_session_gemm_backend(s), "portable");
    run_reference(s, "matmul_mixed", 1e-5f, 1e-5f);
    qkv_session_destroy(s);
    cr_assert_eq(qkv_plugin_loaded_count(), 0);
    /* "openblas" alone could run no node: said at once, with the fix */
    const char *plugins[] = {OPENBLAS_PLUGIN};
    cr_assert_eq(open_session("matmul_mixed", plugins, 1, "openblas", &s, &err),
                 QKV_ERR_INVALID_ARGUMENT);
    cr_assert_str_eq(err.message, "backends 'openblas': none of them has kernels (a GEMM-only "
                                  "backend such as openblas serves the kernels of others: list "
                                  "cpu too, e.g. 'openblas,cpu')");
    s = must_open("matmul_mixed", plugins, 1, "openblas,cpu");
    cr_assert_str_eq(qkv_session_gemm_backend(s), "openblas");
    run_reference(s, "matmul_mixed", 1e-5f, 1e-5f);
    qkv_session_destroy(s);
    s = must_open("matmul_mixed", plugins, 1, "cpu");
    cr_assert_str_eq(qkv_session_gemm_backend(s), "portable");
    qkv_session_destroy(s);
    cr_assert_eq(qkv_plugin_loaded_count(), 0);
#else
    cr_skip_test("built without OpenBLAS: no openblas plugin");
#endif
}

Test(plugin, host_gemm_uses_the_openblas_provider_when_loaded)
{
#ifdef QKV_HAVE_OPENBLAS_PLUGIN
    const char *plugins[] = {OPENBLAS_PLUGIN, fx("fx_good")};
    qkv_session *s = must_open("host_gemm", plugins, 2, NULL);
    cr_assert_str_eq(qkv_session_gemm_backend(s), "openblas");
    run_reference(s, "host_gemm", 1e-5f, 1e-5f);
    qkv_session_destroy(s);
    s = must_open("host_gemm", plugins, 2, "testbk,cpu");
    cr_assert_str_eq(qkv_session_gemm_backend(s), "portable");
    run_reference(s, "host_gemm", 1e-5f, 1e-5f);
    qkv_session_destroy(s);
#else
    cr_skip_test("built without OpenBLAS: no openblas plugin");
#endif
}

/* ---- the search path -------------------------------------------------------------------- */

Test(plugin, qkv_plugin_path_replaces_the_default_plugins)
{
    qkv_session_options opts;
    qkv_session_options_init(&opts);
    qkv_session *s = NULL;
    qkv_error err = {0};
    /* a file entry, a missing entry (skipped), a directory entry */
    char path[4096];
    snprintf(path, sizeof path, "%s:/nonexistent/dir:%s", fx("fx_good"),
             QKV_BINARY_DIR "/plugins/example_ops");
    setenv("QKV_PLUGIN_PATH", path, 1);
    char got[4096];
    cr_assert_str_eq(qkv_plugin_search_path(got, sizeof got), path);
    cr_assert_eq(qkv_session_create(tu_data("plugin/scale.onnx"), &opts, &s, &err), QKV_OK, "%s",
                 err.message);
    cr_assert_eq(qkv_session_plugin_count(s), 2);
    cr_assert_str_eq(qkv_plugin_name(qkv_session_plugin(s, 0)), "fx_good");
    cr_assert_str_eq(qkv_plugin_name(qkv_session_plugin(s, 1)), "example_ops");
    qkv_session_destroy(s);
    /* empty: no default plugins at all */
    setenv("QKV_PLUGIN_PATH", "", 1);
    cr_assert_eq(qkv_session_create(tu_data("plugin/matmul_mixed.onnx"), &opts, &s, &err), QKV_OK,
                 "%s", err.message);
    cr_assert_eq(qkv_session_plugin_count(s), 0);
    qkv_session_destroy(s);
    /* a broken default plugin fails the session, saying how to skip it */
    setenv("QKV_PLUGIN_PATH", fx("fx_bad_major"), 1);
    cr_assert_eq(qkv_session_create(tu_data("plugin/matmul_mixed.onnx"), &opts, &s, &err),
                 QKV_ERR_PLUGIN);
    assert_contains(err.message, "default plugin (QKV_PLUGIN_PATH=\"\" or --no-default-plugins "
                                 "skips them): plugin '");
    assert_contains(err.message, "was built for the qkv plugin ABI 2.0");
    cr_assert_eq(qkv_plugin_loaded_count(), 0);
}

Test(plugin, default_plugins_can_be_held_across_sessions)
{
    setenv("QKV_PLUGIN_PATH", fx("fx_good"), 1);
    qkv_plugin **list = NULL;
    size_t n = 0;
    qkv_error err = {0};
    cr_assert_eq(qkv_plugin_load_defaults(&list, &n, &err), QKV_OK, "%s", err.message);
    cr_assert_eq(n, 1);
    cr_assert_str_eq(qkv_plugin_name(list[0]), "fx_good");
    qkv_session_options opts;
    qkv_session_options_init(&opts);
    qkv_session *s = NULL;
    cr_assert_eq(qkv_session_create(tu_data("plugin/scale.onnx"), &opts, &s, &err), QKV_OK, "%s",
                 err.message);
    cr_assert_eq(qkv_session_plugin(s, 0), list[0], "the session reuses the loaded library");
    qkv_session_destroy(s);
    cr_assert_eq(qkv_plugin_loaded_count(), 1, "held: still loaded");
    qkv_plugin_release_list(list, n);
    cr_assert_eq(qkv_plugin_loaded_count(), 0);
    /* a failing default: nothing stays loaded */
    char path[2100];
    snprintf(path, sizeof path, "%s:%s", fx("fx_good"), fx("fx_init_fail"));
    setenv("QKV_PLUGIN_PATH", path, 1);
    list = NULL;
    n = 7;
    cr_assert_eq(qkv_plugin_load_defaults(&list, &n, &err), QKV_ERR_PLUGIN);
    assert_contains(err.message, "license file /nonexistent/fx.lic not found");
    cr_assert_null(list);
    cr_assert_eq(n, 7);
    cr_assert_eq(qkv_plugin_loaded_count(), 0);
    setenv("QKV_PLUGIN_PATH", "", 1);
    cr_assert_eq(qkv_plugin_load_defaults(&list, &n, &err), QKV_OK);
    cr_assert_eq(n, 0);
    cr_assert_null(list);
    qkv_plugin_release_list(NULL, 0);
}

Test(plugin, default_search_path_of_a_build_tree_binary_is_build_plugins)
{
    unsetenv("QKV_PLUGIN_PATH");
    char got[4096];
    qkv_plugin_search_path(got, sizeof got);
#ifdef QKV_HAVE_OPENBLAS_PLUGIN
    char *real = realpath(QKV_BINARY_DIR "/plugins", NULL);
    cr_assert_str_eq(got, real);
    free(real);
#else
    (void)got;
#endif
}

/* ---- the CLI ------------------------------------------------------------------------------ */

/* Runs the qkv CLI with a shell command line; returns stdout+stderr. */
static char *cli(const char *args, int *status)
{
    char cmd[8192];
    snprintf(cmd, sizeof cmd, "%s %s 2>&1", QKV_CLI, args);
    FILE *f = popen(cmd, "r");
    cr_assert(f);
    size_t cap = 1 << 16, n = 0;
    char *out = calloc(cap, 1);
    cr_assert(out);
    while (n + 1 < cap && fgets(out + n, (int)(cap - n), f))
        n += strlen(out + n);
    int rc = pclose(f);
    *status = WIFEXITED(rc) ? WEXITSTATUS(rc) : -1;
    return out;
}

Test(plugin, cli_run_loads_plugins_and_profiles_nodes_with_their_backend)
{
    char args[4096];
    int rc;
    snprintf(args, sizeof args,
             "run %s --plugin %s --input x=%s --no-default-plugins --verbose --profile",
             tu_data("plugin/example.onnx"), EXAMPLE_PLUGIN, tu_data("plugin/example_input_0.pb"));
    char *out = cli(args, &rc);
    cr_assert_eq(rc, 0, "%s", out);
    assert_contains(out, "backends: cpu (GEMM service: portable)");
    assert_contains(out, "  rope  qkv.example.Rotary    cpu\n");
    assert_contains(out, "profile: 2 nodes run, ");
    assert_contains(out, " ms in kernels (GEMM service: portable)\n");
    assert_contains(out, "  act   qkv.example.BiasGelu  cpu     ");
    free(out);
}

Test(plugin, cli_reports_a_bad_plugin_in_one_line)
{
    char args[4096];
    int rc;
    snprintf(args, sizeof args, "run %s --random-inputs --plugin %s", tu_data("plugin/scale.onnx"),
             fx("fx_bad_major"));
    char *out = cli(args, &rc);
    cr_assert_eq(rc, 1, "%s", out);
    char want[4200];
    snprintf(want, sizeof want,
             "qkv: plugin '%s' was built for the qkv plugin ABI 2.0; this qkv speaks %d.%d",
             fx_real("fx_bad_major"), QKV_ABI_MAJOR, QKV_ABI_MINOR);
    assert_contains(out, want);
    cr_assert_eq(strchr(out, '\n'), out + strlen(out) - 1, "one line: %s", out);
    free(out);
    snprintf(args, sizeof args, "run %s --random-inputs --backend", tu_data("plugin/scale.onnx"));
    out = cli(args, &rc);
    cr_assert_eq(rc, 2, "%s", out);
    assert_contains(out, "qkv: option '--backend' needs a value");
    free(out);
}

Test(plugin, cli_info_says_which_ops_lack_shape_inference_and_where_ops_run)
{
    char args[4096];
    int rc;
    snprintf(args, sizeof args, "info %s --plugin %s --no-default-plugins",
             tu_data("plugin/positives.onnx"), fx("fx_good"));
    char *out = cli(args, &rc);
    cr_assert_eq(rc, 0, "%s", out);
    assert_contains(out, "operators by backend:\n");
    char want[4200];
    snprintf(want, sizeof want,
             "  qkv.test.Positives  cpu             1  from %s  (no shape inference: outputs "
             "sized at run time)\n",
             fx_real("fx_good"));
    assert_contains(out, want);
    assert_contains(out, "ops without shape inference: 1");
    free(out);
    /* without the plugin the model's ops have no kernel: info still works */
    snprintf(args, sizeof args, "info %s --no-default-plugins", tu_data("plugin/positives.onnx"));
    out = cli(args, &rc);
    cr_assert_eq(rc, 0, "%s", out);
    assert_contains(out, "backends: no session: node 'positives': no kernel for op Positives "
                         "(domain qkv.test, opset 1)");
    free(out);
}
