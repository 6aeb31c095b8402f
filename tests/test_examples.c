/*
 * The example attention models of models/export_examples.py, exported from
 * PyTorch (torch.onnx.export, opsets 13, 14, 17) or built as tf2onnx emits a
 * Keras layer, run end to end through the session API and compared with the
 * PyTorch-eager / numpy references at two input shapes each (different batch
 * AND sequence lengths). The fixture tests/data/make_example_models.py writes
 * them into QKV_TEST_DATA/examples as ONNX backend test directories.
 *
 * Also checked: one session serves both shapes without reloading and plans
 * each shape once (qkv_session_plans_built); the exporters' shape subgraphs
 * are evaluated at plan time (planned_values); padded keys get zero
 * attention weight; the plans of the PyTorch exports at a realistic shape
 * stay within 10% of their lower bound; `qkv test --rtol/--atol`.
 */
#include <criterion/criterion.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>

#include "loader.h"
#include "qkv.h"
#include "test_util.h"

#define QKV QKV_BINARY_DIR "/qkv"
#define EXAMPLES QKV_TEST_DATA "/examples"

/* Output tolerance: float32 kernels sum in a different order than PyTorch's
 * (and than numpy's float64 reference for the Keras graph); over two
 * transformer layers that moves results by a few ulps of the largest
 * intermediate, well inside these bounds (stricter than the ONNX runner's
 * rtol 1e-3). */
#define RTOL 1e-4f
#define ATOL 1e-5f

#define MAX_IO 4

typedef struct data_set {
    qkv_tensor in[MAX_IO], out[MAX_IO];
    size_t n_in, n_out;
} data_set;

static void load_data_set(const char *model, int k, size_t n_in, size_t n_out, data_set *d)
{
    char path[512];
    cr_assert(n_in <= MAX_IO && n_out <= MAX_IO);
    memset(d, 0, sizeof *d);
    d->n_in = n_in;
    d->n_out = n_out;
    for (size_t i = 0; i < n_in; i++) {
        snprintf(path, sizeof path, EXAMPLES "/%s/test_data_set_%d/input_%zu.pb", model, k, i);
        tu_read_pb(path, &d->in[i]);
    }
    for (size_t i = 0; i < n_out; i++) {
        snprintf(path, sizeof path, EXAMPLES "/%s/test_data_set_%d/output_%zu.pb", model, k, i);
        tu_read_pb(path, &d->out[i]);
    }
}

static void free_data_set(data_set *d)
{
    for (size_t i = 0; i < d->n_in; i++)
        qkv_tensor_data_free(&d->in[i]);
    for (size_t i = 0; i < d->n_out; i++)
        qkv_tensor_data_free(&d->out[i]);
}

/* A session on the model; fuse 0 turns attention fusion off (the graph runs
 * as exported). */
static qkv_session *open_model_with(const char *model, int fuse)
{
    char path[512];
    snprintf(path, sizeof path, EXAMPLES "/%s/model.onnx", model);
    qkv_session_options opts;
    qkv_session_options_init(&opts);
    opts.disable_fusion = !fuse;
    qkv_session *s = NULL;
    qkv_error err = {0};
    cr_assert_eq(qkv_session_create(path, &opts, &s, &err), QKV_OK, "%s: %s", model, err.message);
    return s;
}

static qkv_session *open_model(const char *model) { return open_model_with(model, 1); }

static void run_and_compare(const char *model, qkv_context *c, const data_set *d, int k)
{
    qkv_error err = {0};
    cr_assert_eq(qkv_run(c, d->in, d->n_in, &err), QKV_OK, "%s data set %d: %s", model, k,
                 err.message);
    for (size_t i = 0; i < d->n_out; i++) {
        const qkv_tensor *got = qkv_context_output(c, i);
        cr_assert_not_null(got, "%s data set %d: output %zu missing", model, k, i);
        tu_assert_close(got, &d->out[i], RTOL, ATOL);
    }
}

/*
 * One session, one context, the two shapes alternated (0, 1, 0, 1, 1, 0):
 * every run matches the reference, the first run of each shape builds its
 * plan and the repeats reuse it. shape_subgraphs: the model has exporter
 * shape arithmetic (Shape -> Gather -> ... -> Reshape) that must be
 * evaluated while planning rather than by every run. Once with attention
 * fusion, once with the graph as exported.
 */
static void check_model_with(const char *model, int shape_subgraphs, int fuse)
{
    qkv_session *s = open_model_with(model, fuse);
    qkv_error err = {0};
    qkv_context *c = NULL;
    cr_assert_eq(qkv_context_create(s, &c, &err), QKV_OK, "%s", err.message);
    const qkv_model *m = qkv_session_model(s);
    size_t n_in = qkv_model_input_count(m), n_out = qkv_model_output_count(m);
    data_set d[2];
    load_data_set(model, 0, n_in, n_out, &d[0]);
    load_data_set(model, 1, n_in, n_out, &d[1]);
    /* the two data sets really are different shapes: batch and sequence (dim
     * 1 of [batch, seq, ...] inputs; the image height for the ViT's
     * [batch, channels, height, width]) */
    int seq_dim = d[0].in[0].rank == 4 ? 2 : 1;
    cr_assert_neq(d[0].in[0].dims[0], d[1].in[0].dims[0], "%s: same batch", model);
    cr_assert_neq(d[0].in[0].dims[seq_dim], d[1].in[0].dims[seq_dim], "%s: same sequence length",
                  model);

    cr_assert_eq(qkv_session_plans_built(s), 0);
    static const int order[] = {0, 1, 0, 1, 1, 0};
    for (size_t r = 0; r < sizeof order / sizeof order[0]; r++) {
        int k = order[r];
        run_and_compare(model, c, &d[k], k);
        qkv_plan_stats st = {.struct_size = sizeof(qkv_plan_stats)};
        cr_assert_eq(qkv_context_plan_stats(c, &st), QKV_OK);
        cr_expect_gt(st.steps, 0);
        cr_expect_eq(st.dynamic_nodes, 0, "%s: %zu nodes allocated at run time", model,
                     st.dynamic_nodes);
        if (shape_subgraphs)
            cr_expect_gt(st.planned_values, 0, "%s: no value computed while planning", model);
        /* runs 0 and 1 plan their shape; every later run reuses a cached plan */
        size_t want = r == 0 ? 1 : 2;
        cr_expect_eq(qkv_session_plans_built(s), want, "%s run %zu: %zu plans built, expected %zu",
                     model, r, qkv_session_plans_built(s), want);
    }
    free_data_set(&d[0]);
    free_data_set(&d[1]);
    qkv_context_destroy(c);
    qkv_session_destroy(s);
}

static void check_model(const char *model, int shape_subgraphs)
{
    check_model_with(model, shape_subgraphs, 1);
    check_model_with(model, shape_subgraphs, 0);
}

Test(examples, mha_matches_pytorch_at_two_shapes_in_one_session) { check_model("mha", 1); }

Test(examples, transformer_encoder_matches_pytorch_at_two_shapes_in_one_session)
{
    check_model("encoder", 1);
}

Test(examples, vit_block_matches_pytorch_at_two_shapes_in_one_session) { check_model("vit", 1); }

Test(examples, gpt2_decoder_matches_pytorch_at_two_shapes_in_one_session)
{
    check_model("gpt2", 1);
}

Test(examples, keras_attention_matches_numpy_at_two_shapes_in_one_session)
{
    /* tf2onnx's graph cuts the packed kernel with Gather/Slice of constants:
     * folded at session creation, nothing left to evaluate while planning */
    check_model("keras_attention", 0);
}

/* nn.MultiheadAttention turns the key padding mask into -inf scores: a padded
 * key must get exactly zero weight (exp(-inf) = 0), and each row of weights
 * still sums to 1 over the kept keys. */
Test(examples, mha_gives_padded_keys_zero_attention_weight)
{
    qkv_session *s = open_model("mha");
    qkv_error err = {0};
    qkv_context *c = NULL;
    cr_assert_eq(qkv_context_create(s, &c, &err), QKV_OK, "%s", err.message);
    size_t padded_seen = 0;
    for (int k = 0; k < 2; k++) {
        data_set d;
        load_data_set("mha", k, 2, 2, &d);
        cr_assert_eq(qkv_run(c, d.in, 2, &err), QKV_OK, "%s", err.message);
        const qkv_tensor *mask = &d.in[1], *w = qkv_context_output(c, 1);
        cr_assert_eq(mask->dtype, QKV_DTYPE_BOOL);
        cr_assert_not_null(w);
        cr_assert_eq(w->rank, 3);
        int64_t batch = mask->dims[0], seq = mask->dims[1];
        cr_assert(w->dims[0] == batch && w->dims[1] == seq && w->dims[2] == seq);
        const uint8_t *pad = mask->data; /* (batch, seq): 1 = padded key */
        const float *wt = w->data;       /* (batch, seq_q, seq_k) */
        for (int64_t b = 0; b < batch; b++) {
            for (int64_t i = 0; i < seq; i++) {
                const float *row = wt + (b * seq + i) * seq;
                double sum = 0;
                for (int64_t j = 0; j < seq; j++) {
                    sum += row[j];
                    if (!pad[b * seq + j])
                        continue;
                    padded_seen++;
                    cr_assert(row[j] == 0.0f || fabsf(row[j]) < 1e-9f,
                              "data set %d: batch %lld query %lld padded key %lld has weight %g", k,
                              (long long)b, (long long)i, (long long)j, (double)row[j]);
                }
                cr_assert(fabs(sum - 1.0) < 1e-5, "data set %d: row %lld/%lld sums to %.7f", k,
                          (long long)b, (long long)i, sum);
            }
        }
        free_data_set(&d);
    }
    cr_assert_gt(padded_seen, 0, "the data sets pad no key: the test checks nothing");
    qkv_context_destroy(c);
    qkv_session_destroy(s);
}

/* A second context on the same session shares its cached plans: no new plan
 * for shapes another context already ran. */
Test(examples, second_context_reuses_the_sessions_plans)
{
    qkv_session *s = open_model("gpt2");
    qkv_error err = {0};
    qkv_context *a = NULL, *b = NULL;
    cr_assert_eq(qkv_context_create(s, &a, &err), QKV_OK, "%s", err.message);
    cr_assert_eq(qkv_context_create(s, &b, &err), QKV_OK, "%s", err.message);
    data_set d[2];
    load_data_set("gpt2", 0, 1, 1, &d[0]);
    load_data_set("gpt2", 1, 1, 1, &d[1]);
    run_and_compare("gpt2", a, &d[0], 0);
    run_and_compare("gpt2", a, &d[1], 1);
    cr_assert_eq(qkv_session_plans_built(s), 2);
    run_and_compare("gpt2", b, &d[1], 1);
    run_and_compare("gpt2", b, &d[0], 0);
    cr_assert_eq(qkv_session_plans_built(s), 2);
    free_data_set(&d[0]);
    free_data_set(&d[1]);
    qkv_context_destroy(a);
    qkv_context_destroy(b);
    qkv_session_destroy(s);
}

Test(examples, plans_built_of_null_session_is_zero)
{
    cr_assert_eq(qkv_session_plans_built(NULL), 0);
}

/* ---- memory plans at a realistic shape ----------------------------------- */

/* Plans (without running) for the given input shapes and checks the arena
 * against the lower bound: views and in-place outputs should leave the
 * planner little to waste on these straight-line graphs. */
static void check_plan(const char *model, const qkv_tensor *inputs, size_t n, qkv_plan_stats *out)
{
    qkv_session *s = open_model(model);
    qkv_error err = {0};
    qkv_context *c = NULL;
    cr_assert_eq(qkv_context_create(s, &c, &err), QKV_OK, "%s", err.message);
    qkv_plan_stats st = {.struct_size = sizeof(qkv_plan_stats)};
    cr_assert_eq(qkv_plan(c, inputs, n, &st, &err), QKV_OK, "%s: %s", model, err.message);
    cr_assert_gt(st.lower_bound_bytes, 0);
    cr_expect_leq((double)st.arena_bytes, 1.10 * (double)st.lower_bound_bytes,
                  "%s: arena %zu bytes, lower bound %zu", model, st.arena_bytes,
                  st.lower_bound_bytes);
    cr_expect_gt(st.planned_values, 0);
    cr_expect_eq(st.dynamic_nodes, 0);
    cr_expect_eq(qkv_session_plans_built(s), 1);
    /* planning the same shapes again finds the cached plan */
    cr_assert_eq(qkv_plan(c, inputs, n, &st, &err), QKV_OK, "%s: %s", model, err.message);
    cr_expect_eq(qkv_session_plans_built(s), 1);
    if (out)
        *out = st;
    qkv_context_destroy(c);
    qkv_session_destroy(s);
}

static qkv_tensor shape_only(qkv_dtype dtype, int32_t rank, const int64_t *dims)
{
    qkv_tensor t = {.dtype = dtype, .rank = rank};
    memcpy(t.dims, dims, (size_t)rank * sizeof *dims);
    return t;
}

Test(examples, pytorch_exports_plan_within_ten_percent_of_lower_bound)
{
    qkv_tensor x[2] = {shape_only(QKV_DTYPE_FLOAT, 3, (int64_t[]){8, 128, 64}),
                       shape_only(QKV_DTYPE_BOOL, 2, (int64_t[]){8, 128})};
    check_plan("mha", x, 2, NULL);
    check_plan("encoder", x, 2, NULL);
    qkv_tensor img = shape_only(QKV_DTYPE_FLOAT, 4, (int64_t[]){8, 3, 32, 32});
    check_plan("vit", &img, 1, NULL);
    qkv_tensor ids = shape_only(QKV_DTYPE_INT64, 2, (int64_t[]){8, 64});
    check_plan("gpt2", &ids, 1, NULL);
}

/* At batch 8, seq 128 the mha model's peak is its attention probabilities
 * (8 x 4 heads x 128 x 128 floats = 2 MiB), kept for the head average, plus
 * the averaged weights (512 KiB), the output (256 KiB) and small masks. The
 * ReduceSum averaging the heads used to declare an output-sized double
 * accumulator (1 MiB of scratch) live at the same time: 3.75 MiB. */
Test(examples, mha_plan_peak_is_the_attention_probabilities)
{
    qkv_tensor x[2] = {shape_only(QKV_DTYPE_FLOAT, 3, (int64_t[]){8, 128, 64}),
                       shape_only(QKV_DTYPE_BOOL, 2, (int64_t[]){8, 128})};
    qkv_plan_stats st = {.struct_size = sizeof(qkv_plan_stats)};
    check_plan("mha", x, 2, &st);
    cr_expect_leq(st.arena_bytes, (size_t)3 << 20, "arena %zu bytes", st.arena_bytes);
}

/* ---- `qkv test --rtol/--atol` ---------------------------------------------- */

typedef struct cli_result {
    int code;
    char out[16384]; /* stdout and stderr */
} cli_result;

static void run_cli(const char *args, cli_result *r)
{
    char cmd[1024];
    snprintf(cmd, sizeof cmd, "'%s' %s 2>&1", QKV, args);
    FILE *p = popen(cmd, "r");
    cr_assert_not_null(p, "cannot run %s", cmd);
    size_t n = fread(r->out, 1, sizeof r->out - 1, p);
    r->out[n] = '\0';
    int status = pclose(p);
    cr_assert(WIFEXITED(status), "%s did not exit", cmd);
    r->code = WEXITSTATUS(status);
}

Test(examples, qkv_test_passes_every_model_at_tight_tolerances)
{
    static cli_result r;
    run_cli("test --rtol 1e-4 --atol 1e-5 '" EXAMPLES "'", &r);
    cr_assert_eq(r.code, 0, "%s", r.out);
    cr_assert(strstr(r.out, "\n5 passed, 0 failed, 0 skipped\n"), "%s", r.out);
    for (const char *const *m =
             (const char *const[]){"encoder", "gpt2", "keras_attention", "mha", "vit", NULL};
         *m; m++) {
        char line[64];
        snprintf(line, sizeof line, "PASS %s\n", *m);
        cr_assert(strstr(r.out, line), "%s missing in:\n%s", line, r.out);
    }
}

Test(examples, qkv_test_zero_tolerance_fails_where_float_order_differs)
{
    /* two transformer blocks and a 96-way LM head cannot match PyTorch bit for
     * bit: --rtol 0 --atol 0 must reach the comparison and fail it */
    static cli_result r;
    run_cli("test --rtol 0 --atol=0 '" EXAMPLES "/gpt2'", &r);
    cr_assert_eq(r.code, 1, "%s", r.out);
    cr_assert(strstr(r.out, "FAIL gpt2: data set 0: output 0 'logits' worst at"), "%s", r.out);
    cr_assert(strstr(r.out, "0 passed, 1 failed, 0 skipped"), "%s", r.out);
}

Test(examples, qkv_test_rejects_a_bad_tolerance)
{
    static cli_result r;
    run_cli("test --rtol abc '" EXAMPLES "'", &r);
    cr_assert_eq(r.code, 2, "%s", r.out);
    cr_assert(strstr(r.out, "qkv: --rtol 'abc': expected a non-negative number"), "%s", r.out);
    run_cli("test --atol -1e-5 '" EXAMPLES "'", &r);
    cr_assert_eq(r.code, 2, "%s", r.out);
    cr_assert(strstr(r.out, "qkv: --atol '-1e-5': expected a non-negative number"), "%s", r.out);
    run_cli("test --atol nan '" EXAMPLES "'", &r);
    cr_assert_eq(r.code, 2, "%s", r.out);
    cr_assert(strstr(r.out, "qkv: --atol 'nan': expected a non-negative number"), "%s", r.out);
    run_cli("test --rtol 1e-4x '" EXAMPLES "'", &r);
    cr_assert_eq(r.code, 2, "%s", r.out);
    cr_assert(strstr(r.out, "qkv: --rtol '1e-4x': expected a non-negative number"), "%s", r.out);
}
