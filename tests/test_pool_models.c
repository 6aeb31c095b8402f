/*
 * The pooling, normalisation and layout node tests of
 * tests/data/make_pool_models.py (opsets the ONNX 1.12 suite does not
 * reach, references from PyTorch where it has the operation) and its
 * torch.onnx.export of a pooling/normalisation block, run through `qkv test`
 * like the conformance suite: every one must pass.
 */
#include <criterion/criterion.h>
#include <dirent.h>
#include <stdio.h>
#include <string.h>

#include "cli_runner.h"

#define POOL_NODE QKV_TEST_DATA "/pool_node"

static void setup(void) { cli_setup("/tmp/qkv_pool_models_XXXXXX", "pass"); }

/* The number of test_* directories the generator wrote. */
static int count_tests(void)
{
    DIR *d = opendir(POOL_NODE);
    cr_assert_not_null(d, "%s is missing: run tests/data/make_pool_models.py", POOL_NODE);
    int n = 0;
    for (struct dirent *e; (e = readdir(d));)
        n += strncmp(e->d_name, "test_", 5) == 0;
    closedir(d);
    return n;
}

/* Tolerance: each output element is one window or one normalised value
 * computed in double and rounded to float, against a float64 PyTorch or
 * numpy reference rounded the same way: a few ulps, far inside 1e-5. */
Test(pool_models, every_generated_node_test_passes, .init = setup, .fini = cli_teardown)
{
    int n = count_tests();
    cr_assert_geq(n, 25, "only %d tests generated", n);
    cli_result r = cli_qkv("test", POOL_NODE, "--rtol", "1e-5", "--atol", "1e-6", NULL);
    char want[64];
    snprintf(want, sizeof want, "%d passed, 0 failed, 0 skipped\n", n);
    cr_assert_eq(r.code, 0, "%s%s", r.out, r.err);
    cr_assert(strstr(r.out, want), "expected '%s' in:\n%s", want, r.out);
    cli_result_free(&r);
}
