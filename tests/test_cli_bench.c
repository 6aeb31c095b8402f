/*
 * `qkv bench` (cli/cmd_bench.c), run as a subprocess: the usage, the fields
 * it prints and writes as JSON, and its command-line errors. Nothing here
 * looks at the timings themselves (the machine is shared and noisy): only
 * that they are there, ordered and consistent.
 */
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli_runner.h"

/* Writes into argv[1]:
 *   add.onnx     y = x + x, x: float32 [batch, 3]
 *   argmax.onnx  two ArgMax nodes over axis 0 of x [2, 3] and of
 *                concat(x, x) [2, 6]: the kernel declares 3 and 6 floats
 *                of scratch (12 and 24 bytes)
 *   x.npy        a (2, 3) float32 input */
static const char MAKE_FILES[] =
    "import os, sys\n"
    "import numpy as np\n"
    "import onnx\n"
    "from onnx import TensorProto, helper\n"
    "out = sys.argv[1]\n"
    "f = lambda n, s: helper.make_tensor_value_info(n, TensorProto.FLOAT, s)\n"
    "i64 = lambda n, s: helper.make_tensor_value_info(n, TensorProto.INT64, s)\n"
    "def save(nodes, ins, outs, name):\n"
    "    g = helper.make_graph(nodes, name, ins, outs)\n"
    "    m = helper.make_model(g, opset_imports=[helper.make_opsetid('', 17)])\n"
    "    m.ir_version = 8\n"
    "    onnx.save(m, os.path.join(out, name + '.onnx'))\n"
    "save([helper.make_node('Add', ['x', 'x'], ['y'], name='add')],\n"
    "     [f('x', ['batch', 3])], [f('y', ['batch', 3])], 'add')\n"
    "save([helper.make_node('ArgMax', ['x'], ['a'], name='am1', axis=0),\n"
    "      helper.make_node('Concat', ['x', 'x'], ['xx'], name='cat', axis=1),\n"
    "      helper.make_node('ArgMax', ['xx'], ['b'], name='am2', axis=0)],\n"
    "     [f('x', [2, 3])], [i64('a', [1, 3]), i64('b', [1, 6])], 'argmax')\n"
    "np.save(os.path.join(out, 'x.npy'), np.array([[0.5, -1, 2], [3, -4, 5]], np.float32))\n";

/* Checks the JSON report argv[2] (in the test directory argv[1]) of a run
 * with --iters 2 --warmup 1 --flops 12: every field, times in run order, sorted stats
 * consistent with them. */
static const char CHECK_JSON[] =
    "import json, os, sys\n"
    "d = json.load(open(os.path.join(sys.argv[1], sys.argv[2])))\n"
    "assert d['iters'] == 2 and d['warmup'] == 1 and d['threads'] == 1, d\n"
    "assert d['fusion'] is True and d['steps'] == 1, d\n"
    "assert isinstance(d['gemm_backend'], str) and d['gemm_backend'], d\n"
    "t = d['times_ms']\n"
    "assert len(t) == 2 and all(x > 0 for x in t), t\n"
    "l = d['latency_ms']\n"
    "near = lambda a, b: abs(a - b) <= 1e-6 * abs(b)  # 9 significant digits in the file\n"
    "assert l['min'] == min(t) and l['max'] == max(t) and l['p90'] == l['max'], d\n"
    "assert near(l['median'], sum(t) / 2) and near(l['mean'], sum(t) / 2), d\n"
    "assert near(d['runs_per_s'], 2000 / sum(t)), d\n"
    "assert d['flops'] == 12 and near(d['gflops_median'], 12 / (l['median'] * 1e6)), d\n"
    "assert near(d['gflops_min'], 12 / (l['min'] * 1e6)), d\n"
    "assert d['arena_bytes'] >= 24 and d['scratch_bytes'] == 0, d\n"
    "assert d['peak_rss_bytes'] >= d['rss_before_bytes'] > 0, d\n";

static void setup(void) { cli_setup("/tmp/qkv_cli_bench_XXXXXX", MAKE_FILES); }

static void teardown(void) { cli_teardown(); }

#define contains(hay, needle)                                                                      \
    cr_assert(strstr((hay), (needle)), "want '%s' in:\n%s", (needle), (hay))

/* A command-line mistake: exit 2, nothing on stdout, the message and the
 * bench usage on stderr. */
static void assert_usage_error(cli_result *r, const char *want)
{
    cr_assert_eq(r->code, 2, "exit %d, stderr: %s", r->code, r->err);
    cr_assert_str_empty(r->out);
    contains(r->err, want);
    contains(r->err, "usage: qkv bench");
}

/* An error: exit 1 and exactly one "qkv: " line on stderr containing want. */
static void assert_one_line_error(cli_result *r, const char *want)
{
    cr_assert_eq(r->code, 1, "exit %d, stderr: %s", r->code, r->err);
    cr_assert_eq(strncmp(r->err, "qkv: ", 5), 0, "stderr: %s", r->err);
    cr_assert_eq(cli_count_lines(r->err), 1, "stderr: %s", r->err);
    contains(r->err, want);
}

TestSuite(cli_bench, .init = setup, .fini = teardown);

Test(cli_bench, help_prints_the_usage_and_every_option)
{
    cli_result r = cli_qkv("bench", "--help", NULL);
    cr_assert_eq(r.code, 0);
    cr_assert_str_empty(r.err);
    contains(r.out, "usage: qkv bench MODEL");
    static const char *const opts[] = {
        "--threads", "--iters", "--warmup", "--shape",  "--input",   "--seed",
        "--no-fuse", "--flops", "--json",   "--plugin", "--backend", "--no-default-plugins"};
    for (size_t i = 0; i < sizeof opts / sizeof opts[0]; i++)
        contains(r.out, opts[i]);
    cli_result_free(&r);
    r = cli_qkv("help", "bench", NULL);
    cr_assert_eq(r.code, 0);
    contains(r.out, "usage: qkv bench MODEL");
    cli_result_free(&r);
    r = cli_qkv("--help", NULL);
    contains(r.out, "bench MODEL");
    cli_result_free(&r);
}

Test(cli_bench, prints_latency_throughput_and_memory_fields)
{
    cli_result r = cli_qkv("bench", "@/add.onnx", "--shape", "batch=2", "--iters", "2", "--warmup",
                           "1", "--flops", "12", "--json", "@/report.json", NULL);
    cr_assert_eq(r.code, 0, "stderr: %s", r.err);
    cr_assert_str_empty(r.err);
    contains(r.out, "input x: float32 [2, 3] random (seed 0)");
    contains(r.out, "backends: ");
    contains(r.out, "(GEMM service: ");
    contains(r.out, "threads 1, fusion on, 1 warm-up run, 2 timed runs");
    contains(r.out, "plan: 1 step per run");
    contains(r.out, "latency (ms): median ");
    static const char *const fields[] = {"  min ", "  mean ", "  p90 ", "  max "};
    for (size_t i = 0; i < 4; i++)
        contains(r.out, fields[i]);
    contains(r.out, " runs/s");
    contains(r.out, "compute: 12 FLOP per run: ");
    contains(r.out, " GFLOP/s at the median");
    contains(r.out, "  plan arena:      ");
    contains(r.out, "  plan scratch:    0 bytes");
    contains(r.out, "  peak RSS:        ");
    contains(r.out, "getrusage ru_maxrss");
    contains(r.out, "  RSS before runs: ");
    cli_result_free(&r);
    cli_python(CHECK_JSON, "report.json");
}

Test(cli_bench, reads_input_files_and_reports_the_largest_step_scratch)
{
    cli_result r = cli_qkv("bench", "@/argmax.onnx", "--input", "x=@/x.npy", "--iters", "3",
                           "--no-fuse", NULL);
    cr_assert_eq(r.code, 0, "stderr: %s", r.err);
    contains(r.out, "input x: float32 [2, 3] from ");
    contains(r.out, "fusion off (--no-fuse), 3 warm-up runs, 3 timed runs");
    contains(r.out, "plan: 3 steps per run");
    /* 24 bytes from the second ArgMax, not 12 + 24: scratch lives one step */
    contains(r.out, "  plan scratch:    24 bytes");
    cr_assert_null(strstr(r.out, "compute:"), "no --flops, no GFLOP/s:\n%s", r.out);
    cli_result_free(&r);
}

Test(cli_bench, plugin_options_reach_the_session)
{
    /* the cpu backend alone: GEMMs on the portable C GEMM, whatever plugins load */
    cli_result r = cli_qkv("bench", "@/add.onnx", "--shape", "batch=2", "--iters", "1", "--backend",
                           "cpu", NULL);
    cr_assert_eq(r.code, 0, "stderr: %s", r.err);
    contains(r.out, "backends: cpu (GEMM service: portable)");
    cli_result_free(&r);
    r = cli_qkv("bench", "@/add.onnx", "--shape", "batch=2", "--no-default-plugins", "--backend",
                "nope", NULL);
    assert_one_line_error(&r, "no backend 'nope'");
    cli_result_free(&r);
}

Test(cli_bench, bad_option_values_exit_2)
{
    static const char *const bad_iters[] = {"0", "x", "-3", "1000001", ""};
    for (size_t i = 0; i < sizeof bad_iters / sizeof bad_iters[0]; i++) {
        char want[96];
        snprintf(want, sizeof want, "qkv: --iters '%s': expected an integer in [1, 1000000]",
                 bad_iters[i]);
        cli_result r = cli_qkv("bench", "@/add.onnx", "--iters", bad_iters[i], NULL);
        assert_usage_error(&r, want);
        cli_result_free(&r);
    }
    cli_result r = cli_qkv("bench", "@/add.onnx", "--warmup", "-1", NULL);
    assert_usage_error(&r, "qkv: --warmup '-1': expected an integer in [0, 100000]");
    cli_result_free(&r);
    r = cli_qkv("bench", "@/add.onnx", "--flops", "0", NULL);
    assert_usage_error(&r, "qkv: --flops '0': expected a positive number");
    cli_result_free(&r);
    r = cli_qkv("bench", "@/add.onnx", "--flops", "1e9x", NULL);
    assert_usage_error(&r, "qkv: --flops '1e9x': expected a positive number");
    cli_result_free(&r);
    r = cli_qkv("bench", "@/add.onnx", "--input", "=x.npy", NULL);
    assert_usage_error(&r, "qkv: --input '=x.npy': expected NAME=FILE");
    cli_result_free(&r);
    r = cli_qkv("bench", "@/add.onnx", "--iters", NULL);
    assert_usage_error(&r, "qkv: option '--iters' needs a value");
    cli_result_free(&r);
    r = cli_qkv("bench", "--iters", "2", NULL);
    assert_usage_error(&r, "qkv: missing MODEL");
    cli_result_free(&r);
    r = cli_qkv("bench", "@/add.onnx", "@/add.onnx", NULL);
    assert_usage_error(&r, "unexpected argument");
    cli_result_free(&r);
}

Test(cli_bench, model_and_input_errors_are_one_line)
{
    cli_result r = cli_qkv("bench", "@/missing.onnx", NULL);
    assert_one_line_error(&r, "missing.onnx");
    cr_assert_str_empty(r.out);
    cli_result_free(&r);
    r = cli_qkv("bench", "@/add.onnx", "--iters", "1", NULL);
    assert_one_line_error(&r, "input 'x' dim 0 is symbolic ('batch')");
    cli_result_free(&r);
    r = cli_qkv("bench", "@/add.onnx", "--shape", "nope=2", NULL);
    assert_one_line_error(&r, "--shape nope: the model has no input or symbolic dim named 'nope'");
    cli_result_free(&r);
    r = cli_qkv("bench", "@/add.onnx", "--input", "z=@/x.npy", NULL);
    assert_one_line_error(&r, "--input z: the model has no input 'z' (inputs: 'x')");
    cli_result_free(&r);
    r = cli_qkv("bench", "@/add.onnx", "--shape", "batch=2", "--json", "@/no/such/dir/r.json",
                NULL);
    assert_one_line_error(&r, "cannot write '");
    cli_result_free(&r);
}
