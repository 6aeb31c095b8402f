/*
 * `qkv info --system` (cli/cmd_info.c) and the backend descriptions the
 * other commands print, run as a subprocess: which lines it must show, the
 * QKV_ISA cap, the OpenBLAS plugin's description and its warning about
 * generic kernels (against the stand-in OpenBLAS of
 * tests/plugins/fx_fake_openblas.c, named by QKV_OPENBLAS_LIB), and a
 * default plugin that fails to load.
 */
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli_runner.h"
#include "qkv.h"

/* The default plugins of the build tree: the oneDNN backend, when built,
 * goes first and serves the GEMMs. */
#ifdef QKV_HAVE_ONEDNN_PLUGIN
#define DEFAULT_BACKENDS "onednn, openblas, cpu"
#define GEMM_SERVICE "onednn"
#else
#define DEFAULT_BACKENDS "openblas, cpu"
#define GEMM_SERVICE "openblas"
#endif

#define FAKE_OPENBLAS QKV_FIXTURE_PLUGIN_DIR "/fx_fake_openblas.so"

static void setup(void)
{
    /* a clean environment for what the tests set */
    unsetenv("QKV_ISA");
    unsetenv("QKV_OPENBLAS_LIB");
    unsetenv("OPENBLAS_CORETYPE");
    unsetenv("QKV_PLUGIN_PATH");
    unsetenv("QKV_LOG_LEVEL");
    cli_setup("/tmp/qkv_cli_system_XXXXXX", "import sys\n");
}

static void teardown(void) { cli_teardown(); }

#define contains(hay, needle)                                                                      \
    cr_assert(strstr((hay), (needle)), "want '%s' in:\n%s", (needle), (hay))

TestSuite(cli_system, .init = setup, .fini = teardown);

Test(cli_system, info_system_shows_the_cpu_the_isa_level_and_the_backends)
{
    cli_result r = cli_qkv("info", "--system", NULL);
    cr_assert_eq(r.code, 0, "stderr: %s", r.err);
    cr_assert_eq(strncmp(r.out, "system:\n  cpu: ", 15), 0, "%s", r.out);
    contains(r.out, "\n  features: ");
    contains(r.out, "\n  kernel ISA level: ");
    contains(r.out, "(the best this CPU has; QKV_ISA=baseline|avx2|avx512 caps it)\n");
    contains(r.out, "\nplugins: ");
    char want[256];
    snprintf(want, sizeof want, "  cpu       qkv built-in kernels, ISA level %s\n",
             qkv_cpu_isa_name());
#ifdef QKV_HAVE_OPENBLAS_PLUGIN
    contains(r.out, "/plugins/libqkv_openblas.so\n");
    contains(r.out, "\nbackends: " DEFAULT_BACKENDS " (GEMM service: " GEMM_SERVICE ")\n");
    contains(r.out, "\n  openblas  OpenBLAS ");
    contains(r.out, ", core ");
    contains(r.out, want);
#endif
    cli_result_free(&r);

    /* the model is optional with --system, and its info follows */
    r = cli_qkv("info", "--system", "--no-default-plugins",
                QKV_TEST_DATA "/plugin/matmul_mixed.onnx", NULL);
    cr_assert_eq(r.code, 0, "stderr: %s", r.err);
    contains(r.out, "plugins: 0\nbackends: cpu (GEMM service: portable)\n");
    snprintf(want, sizeof want, "  cpu  qkv built-in kernels, ISA level %s\n", qkv_cpu_isa_name());
    contains(r.out, want);
    contains(r.out, "\n\nmodel: " QKV_TEST_DATA "/plugin/matmul_mixed.onnx\n");
    cli_result_free(&r);

    /* without --system the model is still required */
    r = cli_qkv("info", NULL);
    cr_assert_eq(r.code, 2);
    contains(r.err, "missing MODEL");
    contains(r.err, "qkv info --system [MODEL ...]");
    cli_result_free(&r);
}

Test(cli_system, qkv_isa_baseline_shows_baseline)
{
    setenv("QKV_ISA", "baseline", 1);
    cli_result r = cli_qkv("info", "--system", NULL);
    cr_assert_eq(r.code, 0, "stderr: %s", r.err);
    contains(r.out, "\n  kernel ISA level: baseline (capped by QKV_ISA=baseline)\n");
    contains(r.out, " (as capped by QKV_ISA)\n");
    contains(r.out, "qkv built-in kernels, ISA level baseline (QKV_ISA=baseline)\n");
    cli_result_free(&r);
}

Test(cli_system, openblas_generic_kernels_are_reported_and_warned_about)
{
#ifdef QKV_HAVE_OPENBLAS_PLUGIN
    setenv("QKV_OPENBLAS_LIB", FAKE_OPENBLAS, 1);
    setenv("OPENBLAS_CORETYPE", "Prescott", 1); /* the stand-in then runs "Prescott" */
    cli_result r = cli_qkv("info", "--system", NULL);
    cr_assert_eq(r.code, 0, "stderr: %s", r.err);
    uint64_t f = qkv_cpu_features();
    const char *better = (f & QKV_CPU_AVX512) ? "SkylakeX" : "Haswell";
    char want[512];
    if (f & QKV_CPU_AVX2) {
        snprintf(want, sizeof want,
                 "  openblas  OpenBLAS 0.0-fake, core Prescott (from OPENBLAS_CORETYPE=Prescott)"
                 "; GENERIC kernels on an AVX2 CPU: set OPENBLAS_CORETYPE=%s\n",
                 better);
        contains(r.out, want);
        /* once, though the CLI and the session both load the plugin */
        snprintf(want, sizeof want,
                 "qkv warning: openblas: OpenBLAS runs its generic 'Prescott' kernels on this "
                 "AVX2 CPU (from OPENBLAS_CORETYPE=Prescott), so GEMMs run several times slower "
                 "than they could; set OPENBLAS_CORETYPE=%s in the environment before the "
                 "process starts\n",
                 better);
        cr_assert_str_eq(r.err, want);
    } else {
        contains(r.out, "  openblas  OpenBLAS 0.0-fake, core Prescott (from "
                        "OPENBLAS_CORETYPE=Prescott)\n");
        cr_assert_str_empty(r.err);
    }
    cli_result_free(&r);

    /* the description is in run --verbose and bench too */
    unsetenv("OPENBLAS_CORETYPE");
    r = cli_qkv("run", QKV_TEST_DATA "/plugin/matmul_mixed.onnx", "--random-inputs", "--verbose",
                "--profile", NULL);
    cr_assert_eq(r.code, 0, "stderr: %s", r.err);
    contains(r.out, "\n  openblas  OpenBLAS 0.0-fake, core ");
    contains(r.out, " ms in kernels (GEMM service: " GEMM_SERVICE ")\n");
    cli_result_free(&r);
    r = cli_qkv("bench", QKV_TEST_DATA "/plugin/matmul_mixed.onnx", "--iters", "1", NULL);
    cr_assert_eq(r.code, 0, "stderr: %s", r.err);
    contains(r.out, "\n  openblas  OpenBLAS 0.0-fake, core ");
    cli_result_free(&r);
#else
    cr_skip_test("built without OpenBLAS: no openblas plugin");
#endif
}

Test(cli_system, a_default_plugin_that_fails_is_the_error)
{
#ifdef QKV_HAVE_OPENBLAS_PLUGIN
    setenv("QKV_OPENBLAS_LIB", "/nonexistent/libopenblas.so.0", 1);
    cli_result r = cli_qkv("info", "--system", NULL);
    cr_assert_eq(r.code, 1, "stdout: %s", r.out);
    contains(r.out, "\n  kernel ISA level: "); /* what is known is printed */
    contains(r.err, "qkv: no session: default plugin");
    contains(r.err, "cannot load OpenBLAS from QKV_OPENBLAS_LIB: /nonexistent/libopenblas.so.0: ");
    cr_assert_eq(cli_count_lines(r.err), 1, "%s", r.err);
    cli_result_free(&r);
#else
    cr_skip_test("built without OpenBLAS: no openblas plugin");
#endif
}
