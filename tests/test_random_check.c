/*
 * How `qkv test` checks outputs of random ops (cli/random_check.c): which
 * outputs count as random, the check itself (that it fails on a wrong shape,
 * dtype or an out-of-range value), and the CLI's report on real models.
 * The CLI sources are not in a library, so they are compiled in directly.
 */
#include <criterion/criterion.h>
#include <math.h>
#include <string.h>

#include "../cli/compare.c"
#include "../cli/random_check.c"
#include "../cli/tensor_io.c"
#include "cli_runner.h"

static qkv_tensor f32(int32_t rank, const int64_t *dims, float *data)
{
    qkv_tensor t = {.dtype = QKV_DTYPE_FLOAT, .rank = rank, .data = data};
    size_t n = 1;
    for (int32_t i = 0; i < rank; i++) {
        t.dims[i] = dims[i];
        n *= (size_t)dims[i];
    }
    t.data_bytes = n * sizeof(float);
    return t;
}

static const qkv_cli_random_range bernoulli = {
    .random = 1, .has_range = 1, .lo = 0, .hi = 1, .integral = 1, .rule = "Bernoulli"};
static const qkv_cli_random_range uniform = {
    .random = 1, .has_range = 1, .lo = -1, .hi = 2, .hi_open = 1, .rule = "RandomUniform"};

Test(random_check, passes_values_in_range_whatever_the_reference)
{
    float got[4] = {0, 1, 1, 0}, ref[4] = {1, 1, 0, 0};
    qkv_tensor g = f32(1, (int64_t[]){4}, got), e = f32(1, (int64_t[]){4}, ref);
    qkv_cli_compare_result r;
    cr_assert(qkv_cli_check_random(&g, &e, &bernoulli, &r), "%s", r.message);
    float u[3] = {-1, 0.5f, 1.999f};
    g = f32(1, (int64_t[]){3}, u);
    e = f32(1, (int64_t[]){3}, ref);
    cr_assert(qkv_cli_check_random(&g, &e, &uniform, &r), "%s", r.message);
}

Test(random_check, fails_on_a_value_outside_the_range)
{
    float got[4] = {0, 1, 0.5f, 0}, ref[4] = {0};
    qkv_tensor g = f32(1, (int64_t[]){4}, got), e = f32(1, (int64_t[]){4}, ref);
    qkv_cli_compare_result r;
    cr_assert_not(qkv_cli_check_random(&g, &e, &bernoulli, &r));
    cr_assert(strstr(r.message, "element 2 is 0.5, outside {0, 1} (Bernoulli)"), "%s", r.message);
    float u[3] = {0, 2, 1}; /* high is excluded */
    g = f32(1, (int64_t[]){3}, u);
    e = f32(1, (int64_t[]){3}, ref);
    cr_assert_not(qkv_cli_check_random(&g, &e, &uniform, &r));
    cr_assert(strstr(r.message, "element 1 is 2, outside [-1, 2)"), "%s", r.message);
    u[1] = NAN;
    cr_assert_not(qkv_cli_check_random(&g, &e, &uniform, &r));
}

Test(random_check, fails_on_shape_or_dtype)
{
    float got[4] = {0}, ref[4] = {0};
    qkv_tensor g = f32(1, (int64_t[]){4}, got), e = f32(2, (int64_t[]){2, 2}, ref);
    qkv_cli_compare_result r;
    cr_assert_not(qkv_cli_check_random(&g, &e, &bernoulli, &r));
    cr_assert(strstr(r.message, "shape [4], expected [2, 2]"), "%s", r.message);
    e = f32(1, (int64_t[]){4}, ref);
    e.dtype = QKV_DTYPE_DOUBLE;
    cr_assert_not(qkv_cli_check_random(&g, &e, &bernoulli, &r));
    cr_assert(strstr(r.message, "dtype float32, expected float64"), "%s", r.message);
    /* without a range, only shape and dtype count */
    qkv_cli_random_range none = {.random = 1};
    e.dtype = QKV_DTYPE_FLOAT;
    got[0] = 1e30f;
    cr_assert(qkv_cli_check_random(&g, &e, &none, &r), "%s", r.message);
}

/* ---- the CLI on models ------------------------------------------------------ */

/* suite/: test_bern (Bernoulli), test_bern_expanded (RandomUniformLike ->
 * Greater -> Cast), test_unif (RandomUniformLike into Add: random, no range),
 * test_bern_shape (the reference has the wrong shape), test_mixed (one
 * random and one deterministic output; the deterministic one is wrong). */
static const char MAKE_SUITE[] =
    "import os, sys\n"
    "import numpy as np\n"
    "import onnx\n"
    "from onnx import TensorProto as TP, helper as h, numpy_helper as nh\n"
    "root = os.path.join(sys.argv[1], 'suite')\n"
    "def save(name, nodes, outs, ys, x):\n"
    "    g = h.make_graph(nodes, name, [h.make_tensor_value_info('x', TP.FLOAT, [10])], outs)\n"
    "    m = h.make_model(g, opset_imports=[h.make_opsetid('', 15)])\n"
    "    m.ir_version = 8\n"
    "    d = os.path.join(root, name, 'test_data_set_0')\n"
    "    os.makedirs(d)\n"
    "    onnx.save(m, os.path.join(root, name, 'model.onnx'))\n"
    "    open(os.path.join(d, 'input_0.pb'), 'wb').write(nh.from_array(x).SerializeToString())\n"
    "    for k, y in enumerate(ys):\n"
    "        open(os.path.join(d, 'output_%d.pb' % k), 'wb').write(\n"
    "            nh.from_array(y).SerializeToString())\n"
    "x = np.full(10, 0.5, np.float32)\n"
    "y = (np.arange(10) % 2).astype(np.float32)\n"
    "o = lambda n, s: h.make_tensor_value_info(n, TP.FLOAT, s)\n"
    "bern = [h.make_node('Bernoulli', ['x'], ['y'])]\n"
    "save('test_bern', bern, [o('y', [10])], [y], x)\n"
    "save('test_bern_shape', bern, [o('y', None)], [y[:5]], x)\n"
    "exp = [h.make_node('RandomUniformLike', ['x'], ['r'], dtype=1, high=1.0, low=0.0),\n"
    "       h.make_node('Greater', ['r', 'x'], ['g']),\n"
    "       h.make_node('Cast', ['g'], ['y'], to=1)]\n"
    "save('test_bern_expanded', exp, [o('y', [10])], [y], x)\n"
    "unif = [h.make_node('RandomUniformLike', ['x'], ['r'], seed=1.0),\n"
    "        h.make_node('Add', ['r', 'x'], ['y'])]\n"
    "save('test_unif', unif, [o('y', [10])], [y], x)\n"
    "mixed = [h.make_node('Bernoulli', ['x'], ['y']), h.make_node('Neg', ['x'], ['z'])]\n"
    "save('test_mixed', mixed, [o('y', [10]), o('z', [10])], [y, x], x)\n";

static void setup(void) { cli_setup("/tmp/qkv_random_check_XXXXXX", MAKE_SUITE); }

TestSuite(random_cli, .init = setup, .fini = cli_teardown);

Test(random_cli, random_outputs_pass_by_shape_dtype_and_range)
{
    cli_result r = cli_qkv("test", "@/suite/test_bern", "@/suite/test_bern_expanded",
                           "@/suite/test_unif", NULL);
    cr_assert_eq(r.code, 0, "%s%s", r.out, r.err);
    cr_assert(strstr(r.out, "PASS test_bern (random: shape, dtype, range)"), "%s", r.out);
    cr_assert(strstr(r.out, "PASS test_bern_expanded (random: shape, dtype, range)"), "%s", r.out);
    cr_assert(strstr(r.out, "PASS test_unif (random: shape, dtype)"), "%s", r.out);
    cli_result_free(&r);
}

Test(random_cli, a_wrong_shape_or_a_deterministic_mismatch_fails)
{
    cli_result r = cli_qkv("test", "@/suite/test_bern_shape", "@/suite/test_mixed", NULL);
    cr_assert_eq(r.code, 1, "%s%s", r.out, r.err);
    cr_assert(strstr(r.out, "FAIL test_bern_shape: output 0 'y' shape [10], expected [5]"), "%s",
              r.out);
    cr_assert(strstr(r.out, "FAIL test_mixed: output 1 'z'"), "%s", r.out);
    cli_result_free(&r);
}
