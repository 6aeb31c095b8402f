/*
 * The qkv command-line tool (cli/), run as a subprocess: exit codes, stdout
 * and stderr. Each test makes its models and tensor files in a fresh
 * temporary directory with QKV_PYTHON (onnx + numpy).
 */
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "cli_runner.h"

#define QKV QKV_BINARY_DIR "/qkv"

/* Writes the test inputs into argv[1]:
 *   info.onnx   metadata, doc, two opsets, symbolic/unknown dims, unknown
 *               rank, initializers, an op qkv has no kernel for
 *   add.onnx    y = x + x, x: float32 [batch, 3]
 *   noout.onnx  a Relu whose result is no graph output (no outputs at all)
 *   x.npy x.pb  a (2, 3) float32 input; xf.npy the same in Fortran order;
 *               xd.npy float64
 *   suite/      ONNX backend test directories (see SUITE below) */
static const char MAKE_FILES[] =
    "import os, sys\n"
    "import numpy as np\n"
    "import onnx\n"
    "from onnx import TensorProto, helper, numpy_helper\n"
    "out = sys.argv[1]\n"
    "f = lambda n, s: helper.make_tensor_value_info(n, TensorProto.FLOAT, s)\n"
    "def model(nodes, ins, outs, inits=(), opsets=(('', 17),), name='g'):\n"
    "    g = helper.make_graph(nodes, name, ins, outs, list(inits))\n"
    "    m = helper.make_model(g, opset_imports=[helper.make_opsetid(a, b) for a, b in opsets])\n"
    "    m.ir_version = 8\n"
    "    return m\n"
    "w = numpy_helper.from_array(np.ones((3, 4), np.float32), 'w')\n"
    "b = numpy_helper.from_array(np.zeros((4,), np.int64), 'b')\n"
    "m = model([helper.make_node('MatMul', ['x', 'w'], ['h'], name='mm'),\n"
    "           helper.make_node('Relu', ['h'], ['r'], name='relu1'),\n"
    "           helper.make_node('Relu', ['r'], ['r2'], name='relu2'),\n"
    "           helper.make_node('Frob', ['r2', 'mask'], ['y', 'y2'], name='frob',\n"
    "                            domain='com.example')],\n"
    "          [f('x', ['batch', 3]),\n"
    "           helper.make_tensor_value_info('mask', TensorProto.BOOL, None)],\n"
    "          [f('y', ['batch', None]),\n"
    "           helper.make_tensor_value_info('y2', TensorProto.INT64, [2, 'n'])], [w, b],\n"
    "          opsets=(('', 17), ('com.example', 2)), name='info_graph')\n"
    "m.producer_name = 'qkv-cli-tests'\n"
    "m.producer_version = '0.9'\n"
    "m.model_version = 3\n"
    "m.domain = 'org.qkv.cli'\n"
    "m.doc_string = 'a model for qkv info'\n"
    "helper.set_model_props(m, {'author': 'qkv', 'license': 'MIT'})\n"
    "onnx.save(m, os.path.join(out, 'info.onnx'))\n"
    "add = [helper.make_node('Add', ['x', 'x'], ['y'], name='add')]\n"
    "onnx.save(model(add, [f('x', ['batch', 3])], [f('y', ['batch', 3])]),\n"
    "          os.path.join(out, 'add.onnx'))\n"
    "relu = [helper.make_node('Relu', ['x'], ['y'], name='relu')]\n"
    "onnx.save(model(relu, [f('x', [2, 3])], []), os.path.join(out, 'noout.onnx'))\n"
    "x = np.array([[0.5, -1, 2], [3, -4, 5]], np.float32)\n"
    "np.save(os.path.join(out, 'x.npy'), x)\n"
    "np.save(os.path.join(out, 'xf.npy'), np.asfortranarray(x))\n"
    "np.save(os.path.join(out, 'xd.npy'), x.astype(np.float64))\n"
    "open(os.path.join(out, 'x.pb'), 'wb').write(\n"
    "    numpy_helper.from_array(x, 'x').SerializeToString())\n"
    "def case(name, nodes, ins, outs, sets, opsets=(('', 17),)):\n"
    "    d = os.path.join(out, 'suite', name)\n"
    "    os.makedirs(d)\n"
    "    onnx.save(model(nodes, ins, outs, opsets=opsets), os.path.join(d, 'model.onnx'))\n"
    "    for i, (a, e) in enumerate(sets):\n"
    "        s = os.path.join(d, 'test_data_set_%d' % i)\n"
    "        os.makedirs(s)\n"
    "        for k, t in enumerate(a):\n"
    "            open(os.path.join(s, 'input_%d.pb' % k), 'wb').write(\n"
    "                numpy_helper.from_array(t).SerializeToString())\n"
    "        for k, t in enumerate(e):\n"
    "            open(os.path.join(s, 'output_%d.pb' % k), 'wb').write(\n"
    "                numpy_helper.from_array(t).SerializeToString())\n"
    "io = ([f('x', [2, 3])], [f('y', [2, 3])])\n"
    "bad = x + x\n"
    "bad[1, 2] = 10.5\n"
    "case('test_add', add, *io, [([x], [x + x]), ([x * 3], [x * 6])])\n"
    "s = np.array(1.5, np.float32)\n"
    "case('test_add_scalar', add, [f('x', [])], [f('y', [])], [([s], [s + s])])\n"
    "e = np.zeros((0, 3), np.float32)\n"
    "case('test_add_empty', add, [f('x', [0, 3])], [f('y', [0, 3])], [([e], [e])])\n"
    "case('test_add_wrong', add, *io, [([x], [bad])])\n"
    "case('test_add_shape', add, *io, [([x], [(x + x).reshape(3, 2)])])\n"
    "case('test_add_no_inputs', add, *io, [([], [x + x])])\n"
    "case('test_frob', [helper.make_node('Frob', ['x'], ['y'], domain='com.example')], *io,\n"
    "     [([x], [x])], opsets=(('', 17), ('com.example', 1)))\n";

static void setup(void) { cli_setup("/tmp/qkv_cli_test_XXXXXX", MAKE_FILES); }

static void teardown(void) { cli_teardown(); }

/* The last line of s without its newline (static buffer). */
static const char *last_line(const char *s)
{
    static char buf[512];
    size_t n = strlen(s);
    if (n && s[n - 1] == '\n')
        n--;
    size_t b = n;
    while (b > 0 && s[b - 1] != '\n')
        b--;
    snprintf(buf, sizeof buf, "%.*s", (int)(n - b), s + b);
    return buf;
}

/* An error: exit 1, nothing on stdout, exactly one "qkv: " line on stderr
 * containing `want`. */
static void assert_one_line_error(cli_result *r, const char *want)
{
    cr_assert_eq(r->code, 1, "exit %d, stderr: %s", r->code, r->err);
    cr_assert_eq(strncmp(r->err, "qkv: ", 5), 0, "stderr: %s", r->err);
    cr_assert_eq(cli_count_lines(r->err), 1, "stderr: %s", r->err);
    cr_assert(strstr(r->err, want), "want '%s' in: %s", want, r->err);
}

#define contains(hay, needle)                                                                      \
    cr_assert(strstr((hay), (needle)), "want '%s' in:\n%s", (needle), (hay))

/* ---- general ------------------------------------------------------------------- */

TestSuite(cli, .init = setup, .fini = teardown);

Test(cli, help_prints_usage_on_stdout)
{
    cli_result r = cli_qkv("--help", NULL);
    cr_assert_eq(r.code, 0);
    contains(r.out, "usage: qkv COMMAND");
    contains(r.out, "info MODEL");
    cr_assert_str_empty(r.err);
    cli_result_free(&r);
}

Test(cli, every_command_has_help)
{
    static const char *const cmds[] = {"info", "run", "test"};
    for (size_t i = 0; i < 3; i++) {
        char want[64];
        snprintf(want, sizeof want, "usage: qkv %s", cmds[i]);
        cli_result r = cli_qkv(cmds[i], "--help", NULL);
        cr_assert_eq(r.code, 0, "%s --help", cmds[i]);
        contains(r.out, want);
        cr_assert_str_empty(r.err);
        cli_result_free(&r);
        r = cli_qkv("help", cmds[i], NULL);
        cr_assert_eq(r.code, 0);
        contains(r.out, want);
        cli_result_free(&r);
    }
}

Test(cli, version_prints_the_version)
{
    cli_result r = cli_qkv("--version", NULL);
    cr_assert_eq(r.code, 0);
    cr_assert_eq(strncmp(r.out, "qkv ", 4), 0, "%s", r.out);
    cli_result_free(&r);
}

Test(cli, no_command_is_a_usage_error)
{
    cli_result r = cli_qkv(NULL, NULL);
    cr_assert_eq(r.code, 2);
    contains(r.err, "qkv: missing command");
    contains(r.err, "usage: qkv");
    cr_assert_str_empty(r.out);
    cli_result_free(&r);
}

Test(cli, unknown_command_prints_usage_on_stderr_and_exits_2)
{
    cli_result r = cli_qkv("frobnicate", "x", NULL);
    cr_assert_eq(r.code, 2);
    contains(r.err, "qkv: unknown command 'frobnicate'");
    contains(r.err, "usage: qkv COMMAND");
    cr_assert_str_empty(r.out);
    cli_result_free(&r);
}

Test(cli, unknown_option_exits_2)
{
    cli_result r = cli_qkv("info", "@/add.onnx", "--bogus", NULL);
    cr_assert_eq(r.code, 2);
    contains(r.err, "qkv: unknown option '--bogus' for 'info'");
    contains(r.err, "usage: qkv info");
    cli_result_free(&r);
    r = cli_qkv("run", "@/add.onnx", "--threads", "lots", NULL);
    cr_assert_eq(r.code, 2);
    contains(r.err, "qkv: --threads 'lots'");
    cli_result_free(&r);
    r = cli_qkv("run", "@/add.onnx", "--input", NULL);
    cr_assert_eq(r.code, 2);
    contains(r.err, "qkv: option '--input' needs a value");
    cli_result_free(&r);
    r = cli_qkv("info", NULL);
    cr_assert_eq(r.code, 2);
    contains(r.err, "qkv: missing MODEL");
    cli_result_free(&r);
}

/* ---- info --------------------------------------------------------------------- */

Test(cli, info_on_a_missing_file_is_one_line_error)
{
    cli_result r = cli_qkv("info", "@/nope.onnx", NULL);
    assert_one_line_error(&r, "nope.onnx");
    cr_assert_str_empty(r.out);
    cli_result_free(&r);
}

Test(cli, info_on_a_malformed_file_is_one_line_error)
{
    char path[512];
    snprintf(path, sizeof path, "%s/garbage.onnx", cli_tmp);
    FILE *f = fopen(path, "wb");
    fputs("\x0a\xff\xff\xff\xff\x0fnot a model\n", f);
    fclose(f);
    cli_result r = cli_qkv("info", "@/garbage.onnx", NULL);
    assert_one_line_error(&r, "garbage.onnx");
    cli_result_free(&r);
}

Test(cli, info_shows_metadata_values_and_operator_histogram)
{
    cli_result r = cli_qkv("info", "@/info.onnx", NULL);
    cr_assert_eq(r.code, 0, "%s", r.err);
    cr_assert_str_empty(r.err);
    contains(r.out, "producer: qkv-cli-tests 0.9\n");
    contains(r.out, "ir version: 8\n");
    contains(r.out, "model version: 3\n");
    contains(r.out, "domain: org.qkv.cli\n");
    contains(r.out, "doc: a model for qkv info\n");
    contains(r.out, "graph: info_graph\n");
    contains(r.out, "opsets: ai.onnx 17, com.example 2\n");
    contains(r.out, "metadata:\n  author: qkv\n  license: MIT\n");
    contains(r.out, "inputs: 2\n  input  x: float32 [batch, 3]\n  input  mask: bool [...]\n");
    contains(r.out, "outputs: 2\n  output y: float32 [batch, ?]\n  output y2: int64 [2, n]\n");
    contains(r.out, "initializers: 2 (80 bytes)\n");
    /* by domain (ai.onnx first), then count desc, then name */
    contains(r.out, "nodes: 4\n  ai.onnx:\n    Relu        2\n    MatMul      1\n"
                    "  com.example:\n    Frob        1\n");
    cli_result_free(&r);
}

Test(cli, info_reads_the_loader_test_model)
{
    const char *path = QKV_TEST_DATA "/mha_small.onnx";
    struct stat st;
    if (stat(path, &st) != 0)
        cr_skip_test("%s not generated (run ctest's make_test_models)", path);
    char *argv[] = {(char *)QKV, (char *)"info", (char *)path, NULL};
    cli_result r = cli_spawn(argv);
    cr_assert_eq(r.code, 0, "%s", r.err);
    contains(r.out, "input  x: float32 [batch, 3, 4]");
    contains(r.out, "output y: float32 [batch, 3, ?]");
    contains(r.out, "  author: qkv\n");
    contains(r.out, "Softmax");
    cli_result_free(&r);
}

Test(cli, info_plan_needs_every_symbolic_dim)
{
    cli_result r = cli_qkv("info", "@/add.onnx", "--plan", NULL);
    assert_one_line_error(&r, "input 'x' dim 0 is symbolic ('batch')");
    contains(r.err, "--shape batch=N");
    cr_assert_str_empty(r.out);
    cli_result_free(&r);
}

Test(cli, info_shape_must_name_an_input_or_symbol)
{
    cli_result r = cli_qkv("info", "@/add.onnx", "--plan", "--shape", "seq=4", NULL);
    assert_one_line_error(&r, "no input or symbolic dim named 'seq' (inputs: 'x')");
    cli_result_free(&r);
    r = cli_qkv("info", "@/add.onnx", "--plan", "--shape", "x=2,4", NULL);
    assert_one_line_error(&r, "input 'x' dim 1 is 3, got 4");
    cli_result_free(&r);
}

Test(cli, info_plan_prints_the_memory_plan)
{
    cli_result r = cli_qkv("info", "@/add.onnx", "--plan", "--shape", "batch=2", NULL);
    cr_assert_eq(r.code, 0, "%s", r.err);
    contains(r.out, "plan:\n  input x: float32 [2, 3]\n  arena: ");
    contains(r.out, "  lower bound: ");
    contains(r.out, "  steps: 1\n");
    contains(r.out, "  dynamic nodes: 0\n");
    cli_result_free(&r);
    r = cli_qkv("info", "@/add.onnx", "--plan", "--shape", "x=5,3", NULL);
    cr_assert_eq(r.code, 0, "%s", r.err);
    contains(r.out, "  input x: float32 [5, 3]\n");
    cli_result_free(&r);
}

/* ---- run ------------------------------------------------------------------------- */

Test(cli, run_with_random_inputs_prints_a_summary_and_writes_npy)
{
    cli_result r = cli_qkv("run", "@/add.onnx", "--random-inputs", "--shape", "batch=4", "--seed",
                           "7", "--output-dir", "@/out", NULL);
    cr_assert_eq(r.code, 0, "%s", r.err);
    cr_assert_str_empty(r.err);
    contains(r.out, "input x: float32 [4, 3] random (seed 7)\n");
    contains(r.out, "output y: float32 [4, 3]\n  values: [");
    contains(r.out, ", ...]\n  min ");
    contains(r.out, "/out/y.npy\n");
    contains(r.out, "time: load ");
    cli_python("import sys, numpy as np\n"
               "y = np.load(sys.argv[1] + '/out/y.npy')\n"
               "assert y.shape == (4, 3) and y.dtype == np.float32, y\n"
               "assert (y >= -2).all() and (y < 2).all() and len(set(y.ravel())) > 1, y\n",
               NULL);
    /* the same seed gives the same data */
    cli_result again =
        cli_qkv("run", "@/add.onnx", "--random-inputs", "--shape", "batch=4", "--seed", "7", NULL);
    cr_assert_eq(again.code, 0);
    char *v1 = strstr(r.out, "values:"), *v2 = strstr(again.out, "values:");
    cr_assert(v1 && v2);
    cr_assert_eq(strncmp(v1, v2, strcspn(v1, "\n")), 0);
    cli_result_free(&r);
    cli_result_free(&again);
}

Test(cli, run_warmup_runs_first_and_times_a_warm_run)
{
    cli_result cold = cli_qkv("run", "@/add.onnx", "--random-inputs", "--shape", "batch=4",
                              "--seed", "3", "--profile", NULL);
    cli_result warm = cli_qkv("run", "@/add.onnx", "--random-inputs", "--shape", "batch=4",
                              "--seed", "3", "--profile", "--warmup", "2", NULL);
    cr_assert_eq(cold.code, 0, "%s", cold.err);
    cr_assert_eq(warm.code, 0, "%s", warm.err);
    /* repeated runs on one context give the same values, and the profile is of one run */
    char *v1 = strstr(cold.out, "values:"), *v2 = strstr(warm.out, "values:");
    cr_assert(v1 && v2);
    cr_assert_eq(strncmp(v1, v2, strcspn(v1, "\n")), 0);
    contains(warm.out, "profile: 1 nodes run, ");
    cli_result_free(&cold);
    cli_result_free(&warm);
    cli_result bad = cli_qkv("run", "@/add.onnx", "--random-inputs", "--warmup", "-1", NULL);
    cr_assert_eq(bad.code, 2);
    contains(bad.err, "qkv: --warmup '-1': expected an integer in [0, 1000000]");
    cli_result_free(&bad);
}

Test(cli, run_reads_npy_and_pb_inputs)
{
    cli_result r =
        cli_qkv("run", "@/add.onnx", "--input", "x=@/x.npy", "--output-dir", "@/o", NULL);
    cr_assert_eq(r.code, 0, "%s", r.err);
    contains(r.out, "input x: float32 [2, 3] from ");
    contains(r.out, "output y: float32 [2, 3]\n  values: [1, -2, 4, 6, -8, 10]\n"
                    "  min -8  max 10  mean 1.83333\n");
    cli_python("import sys, numpy as np\n"
               "y = np.load(sys.argv[1] + '/o/y.npy')\n"
               "x = np.load(sys.argv[1] + '/x.npy')\n"
               "assert (y == x + x).all(), y\n",
               NULL);
    cli_result_free(&r);
    r = cli_qkv("run", "@/add.onnx", "--input", "x=@/x.pb", NULL);
    cr_assert_eq(r.code, 0, "%s", r.err);
    contains(r.out, "values: [1, -2, 4, 6, -8, 10]\n");
    cli_result_free(&r);
}

Test(cli, run_names_a_missing_input)
{
    cli_result r = cli_qkv("run", "@/add.onnx", NULL);
    assert_one_line_error(&r, "input 'x' has no value: pass --input x=FILE or --random-inputs");
    cli_result_free(&r);
    r = cli_qkv("run", "@/add.onnx", "--random-inputs", NULL);
    assert_one_line_error(&r, "input 'x' dim 0 is symbolic ('batch')");
    cli_result_free(&r);
}

Test(cli, run_lists_the_inputs_for_an_unknown_name)
{
    cli_result r = cli_qkv("run", "@/add.onnx", "--input", "q=@/x.npy", NULL);
    assert_one_line_error(&r, "--input q: the model has no input 'q' (inputs: 'x')");
    cli_result_free(&r);
}

Test(cli, run_refuses_a_model_without_outputs)
{
    /* nothing would be computed, so exit 0 would claim work not done */
    cli_result r = cli_qkv("run", "@/noout.onnx", "--random-inputs", NULL);
    assert_one_line_error(&r, "noout.onnx' has no graph outputs: nothing to run");
    cli_result_free(&r);
}

Test(cli, run_refuses_bad_input_files)
{
    cli_result r = cli_qkv("run", "@/add.onnx", "--input", "x=@/xf.npy", NULL);
    assert_one_line_error(&r, "Fortran-order .npy arrays are not supported");
    cli_result_free(&r);
    r = cli_qkv("run", "@/add.onnx", "--input", "x=@/xd.npy", NULL);
    assert_one_line_error(&r, "holds float64, the model expects float32");
    cli_result_free(&r);
    r = cli_qkv("run", "@/add.onnx", "--input", "x=@/missing.npy", NULL);
    assert_one_line_error(&r, "cannot open");
    cli_result_free(&r);
}

/* ---- test ------------------------------------------------------------------------- */

Test(cli, test_reports_each_test_and_the_summary)
{
    cli_result r = cli_qkv("test", "@/suite", NULL);
    cr_assert_eq(r.code, 1, "%s", r.err);
    cr_assert_str_empty(r.err);
    /* one line per test, in name order, then the summary */
    const char *want =
        "PASS test_add\n"
        "PASS test_add_empty\n"
        "ERROR test_add_no_inputs: 0 input files, the model has 1 inputs\n"
        "PASS test_add_scalar\n"
        "FAIL test_add_shape: output 0 'y' shape [2, 3], expected [3, 2]\n"
        "FAIL test_add_wrong: output 0 'y' worst at [1, 2] got 10 expected 10.5 (abs 5.0e-01; "
        "1 of 6 elements differ)\n"
        "UNSUPPORTED test_frob: ";
    cr_assert_eq(strncmp(r.out, want, strlen(want)), 0, "got:\n%s", r.out);
    contains(r.out, "Frob");
    cr_assert_str_eq(last_line(r.out), "3 passed, 3 failed, 1 skipped");
    cr_assert_eq(cli_count_lines(r.out), 8);
    cli_result_free(&r);
}

Test(cli, test_exits_0_when_everything_passes)
{
    cli_result r = cli_qkv("test", "@/suite/test_add", "@/suite/test_add_scalar", NULL);
    cr_assert_eq(r.code, 0, "%s", r.out);
    cr_assert_str_eq(r.out, "PASS test_add\nPASS test_add_scalar\n2 passed, 0 failed, 0 skipped\n");
    cli_result_free(&r);
    r = cli_qkv("test", "@/suite", "--filter", "empty", "--filter", "frob", NULL);
    cr_assert_eq(r.code, 0, "%s", r.out);
    cr_assert_str_eq(last_line(r.out), "1 passed, 0 failed, 1 skipped");
    cli_result_free(&r);
}

Test(cli, test_exits_1_when_every_test_is_unsupported)
{
    cli_result r = cli_qkv("test", "@/suite", "--filter", "frob", "--json", "@/u.json", NULL);
    assert_one_line_error(&r, "no test passed: all 1 unsupported (pass --allow-unsupported if "
                              "that is expected)");
    cli_result_free(&r);
    /* the per-test line, the totals and the JSON report are still written */
    r = cli_qkv("test", "@/suite", "--filter", "frob", NULL);
    contains(r.out, "UNSUPPORTED test_frob: ");
    cr_assert_str_eq(last_line(r.out), "0 passed, 0 failed, 1 skipped");
    cli_result_free(&r);
    cli_python("import sys, json\n"
               "d = json.load(open(sys.argv[1] + '/u.json'))\n"
               "assert d['summary']['unsupported'] == 1 and d['summary']['pass'] == 0, d\n",
               NULL);
}

Test(cli, test_allow_unsupported_accepts_a_run_of_only_unsupported_tests)
{
    cli_result r = cli_qkv("test", "@/suite", "--filter", "frob", "--allow-unsupported", NULL);
    cr_assert_eq(r.code, 0, "%s", r.err);
    cr_assert_str_empty(r.err);
    cr_assert_str_eq(last_line(r.out), "0 passed, 0 failed, 1 skipped");
    cli_result_free(&r);
    /* it does not hide failures */
    r = cli_qkv("test", "@/suite", "--filter", "frob", "--filter", "wrong", "--allow-unsupported",
                NULL);
    cr_assert_eq(r.code, 1, "%s", r.out);
    cr_assert_str_eq(last_line(r.out), "0 passed, 1 failed, 1 skipped");
    cli_result_free(&r);
}

Test(cli, test_exits_1_when_no_test_is_found)
{
    /* a directory without model.onnx anywhere below it */
    cli_result r = cli_qkv("test", "@/suite/test_add/test_data_set_0", NULL);
    assert_one_line_error(&r, "no tests found: nothing was checked");
    cr_assert_str_eq(r.out, "0 passed, 0 failed, 0 skipped\n");
    cli_result_free(&r);
    r = cli_qkv("test", "@/suite", "--filter", "no_such_test", "--allow-unsupported", NULL);
    assert_one_line_error(&r, "no tests found (none matches --filter): nothing was checked");
    cli_result_free(&r);
}

Test(cli, test_verbose_shows_every_output)
{
    cli_result r = cli_qkv("test", "@/suite", "--filter", "test_add_wrong", "--verbose", NULL);
    cr_assert_eq(r.code, 1);
    contains(r.out, "    output 0 'y': float32 [2, 3]: worst at [1, 2]");
    cli_result_free(&r);
}

Test(cli, test_writes_json_and_scoreboard)
{
    cli_result r =
        cli_qkv("test", "@/suite", "--json", "@/r.json", "--scoreboard", "@/sb.md", NULL);
    cr_assert_eq(r.code, 1);
    cli_result_free(&r);
    cli_python("import sys, json\n"
               "d = json.load(open(sys.argv[1] + '/r.json'))\n"
               "t = {x['name']: x for x in d['tests']}\n"
               "assert len(t) == 7, t\n"
               "assert t['test_add'] == {'name': 'test_add', 'status': 'pass', 'op': 'Add',\n"
               "                         'group': 'Add', 'message': ''}, t['test_add']\n"
               "assert t['test_add_wrong']['status'] == 'fail'\n"
               "assert 'worst at [1, 2]' in t['test_add_wrong']['message']\n"
               "assert t['test_add_no_inputs']['status'] == 'error'\n"
               "assert t['test_frob']['status'] == 'unsupported'\n"
               "assert t['test_frob']['op'] == 'Frob'\n"
               "assert d['summary'] == {'total': 7, 'pass': 3, 'fail': 2, 'unsupported': 1,\n"
               "                        'error': 1}, d['summary']\n"
               "md = open(sys.argv[1] + '/sb.md').read()\n"
               "assert '| **total** | 7 | 3 | 2 | 1 | 1 |' in md, md\n"
               "assert '| Add | 6 | 3 | 2 | 0 | 1 |' in md, md\n"
               "assert '| Frob | 1 | 0 | 0 | 1 | 0 |' in md, md\n"
               "assert md.index('| Add |') < md.index('| Frob |'), md\n",
               NULL);
}

Test(cli, test_on_a_missing_directory_is_one_line_error)
{
    cli_result r = cli_qkv("test", "@/nowhere", NULL);
    assert_one_line_error(&r, "nowhere");
    cli_result_free(&r);
    r = cli_qkv("test", NULL);
    cr_assert_eq(r.code, 2);
    contains(r.err, "qkv: missing DIR");
    cli_result_free(&r);
}
