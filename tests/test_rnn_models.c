/*
 * The recurrent-layer tests of tests/data/make_rnn_models.py, run through
 * `qkv test` like the conformance suite: PyTorch exports of nn.LSTM, nn.GRU
 * and nn.RNN (2 layers, bidirectional, batch_first) against PyTorch eager,
 * and single LSTM/GRU nodes with constant (packed) W and R, sequence_lens,
 * layout 1 and omitted outputs against the generator's numpy reference.
 * Every one must pass.
 */
#include <criterion/criterion.h>
#include <dirent.h>
#include <stdio.h>
#include <string.h>

#include "cli_runner.h"

#define RNN_NODE QKV_TEST_DATA "/rnn_node"

static void setup(void) { cli_setup("/tmp/qkv_rnn_models_XXXXXX", "pass"); }

/* The number of test_* directories the generator wrote. */
static int count_tests(void)
{
    DIR *d = opendir(RNN_NODE);
    cr_assert_not_null(d, "%s is missing: run tests/data/make_rnn_models.py", RNN_NODE);
    int n = 0;
    for (struct dirent *e; (e = readdir(d));)
        n += strncmp(e->d_name, "test_", 5) == 0;
    closedir(d);
    return n;
}

/* Tolerance: float32 recurrences of up to 7 steps through 2 layers, against
 * PyTorch's float32 (a different summation order) or a float64 numpy
 * reference: rtol 1e-3, atol 1e-5, as the brief for these layers asks. */
Test(rnn_models, every_generated_test_passes, .init = setup, .fini = cli_teardown)
{
    int n = count_tests();
    cr_assert_geq(n, 9, "only %d tests generated", n);
    cli_result r = cli_qkv("test", RNN_NODE, "--rtol", "1e-3", "--atol", "1e-5", NULL);
    char want[64];
    snprintf(want, sizeof want, "%d passed, 0 failed, 0 skipped\n", n);
    cr_assert_eq(r.code, 0, "%s%s", r.out, r.err);
    cr_assert(strstr(r.out, want), "expected '%s' in:\n%s", want, r.out);
    cli_result_free(&r);
}

/* The same on two threads: the GEMMs split their blocks, the results stay
 * within the same tolerance. */
Test(rnn_models, passes_on_two_threads, .init = setup, .fini = cli_teardown)
{
    int n = count_tests();
    cli_result r =
        cli_qkv("test", RNN_NODE, "--rtol", "1e-3", "--atol", "1e-5", "--threads", "2", NULL);
    char want[64];
    snprintf(want, sizeof want, "%d passed, 0 failed, 0 skipped\n", n);
    cr_assert_eq(r.code, 0, "%s%s", r.out, r.err);
    cr_assert(strstr(r.out, want), "expected '%s' in:\n%s", want, r.out);
    cli_result_free(&r);
}
