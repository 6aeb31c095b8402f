/*
 * The C API of names and caller-owned I/O: qkv_version, lookup by name,
 * qkv_run_io (inputs by name, outputs by name, outputs written into caller
 * buffers, a KV cache extended in place), struct_size on the structs qkv
 * fills and on the session options, and the session's log callback. Every
 * error path is checked on its status and message.
 */
#include <criterion/criterion.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "io_binding.h"
#include "qkv.h"
#include "test_util.h"

#define D 8 /* the kv_decoder's model width (tests/data/make_io_models.py) */

static qkv_session *open_model(const char *rel)
{
    qkv_session *s = NULL;
    qkv_error err;
    cr_assert_eq(qkv_session_create(tu_data(rel), NULL, &s, &err), QKV_OK, "%s: %s", rel,
                 err.message);
    return s;
}

static qkv_tensor f32(void *data, int32_t rank, const int64_t *dims)
{
    qkv_tensor t = {.dtype = QKV_DTYPE_FLOAT, .rank = rank, .data = data};
    size_t n = 1;
    for (int32_t d = 0; d < rank; d++) {
        t.dims[d] = dims[d];
        n *= (size_t)dims[d];
    }
    t.data_bytes = n * sizeof(float);
    return t;
}

static void fill(float *x, size_t n, unsigned seed)
{
    for (size_t i = 0; i < n; i++) {
        seed = seed * 1103515245u + 12345u;
        x[i] = (float)((seed >> 8) & 0xffff) / 32768.0f - 1.0f;
    }
}

/* ---- version and names ----------------------------------------------------- */

Test(io_api, version_reports_library_and_abi)
{
    int major = -1, minor = -1, patch = -1;
    uint32_t abi = 0;
    const char *v = qkv_version(&major, &minor, &patch, &abi);
    cr_assert_str_eq(v, QKV_VERSION_STRING);
    cr_assert_eq(major, QKV_VERSION_MAJOR);
    cr_assert_eq(minor, QKV_VERSION_MINOR);
    cr_assert_eq(patch, QKV_VERSION_PATCH);
    cr_assert_eq(abi, QKV_ABI_VERSION);
    char want[32];
    snprintf(want, sizeof want, "%d.%d.%d", major, minor, patch);
    cr_assert_str_eq(v, want);
    cr_assert_str_eq(qkv_version(NULL, NULL, NULL, NULL), v);
}

Test(io_api, finds_inputs_and_outputs_by_name)
{
    qkv_session *s = open_model("io/kv_decoder.onnx");
    const qkv_model *m = qkv_session_model(s);
    cr_assert_eq(qkv_model_input_index(m, "x"), 0);
    cr_assert_eq(qkv_model_input_index(m, "past_v"), 2);
    cr_assert_eq(qkv_model_output_index(m, "y"), 0);
    cr_assert_eq(qkv_model_output_index(m, "present_v"), 2);
    cr_assert_eq(qkv_model_input_index(m, "present_k"), -1); /* an output, not an input */
    cr_assert_eq(qkv_model_output_index(m, "x"), -1);
    cr_assert_eq(qkv_model_input_index(m, "nope"), -1);
    cr_assert_eq(qkv_model_input_index(m, NULL), -1);
    cr_assert_eq(qkv_model_output_index(NULL, "y"), -1);
    qkv_session_destroy(s);
}

/* ---- struct_size ------------------------------------------------------------- */

Test(io_api, fills_structs_only_within_struct_size)
{
    qkv_session *s = open_model("io/kv_decoder.onnx");
    const qkv_model *m = qkv_session_model(s);
    /* a caller compiled when qkv_model_meta ended after ir_version */
    qkv_model_meta meta;
    memset(&meta, 0xAB, sizeof meta);
    meta.struct_size = offsetof(qkv_model_meta, model_version);
    cr_assert_eq(qkv_model_get_meta(m, &meta), QKV_OK);
    cr_assert_eq(meta.struct_size, offsetof(qkv_model_meta, model_version));
    cr_assert_gt(meta.ir_version, 0);
    unsigned char tail[sizeof meta];
    memset(tail, 0xAB, sizeof tail);
    size_t from = offsetof(qkv_model_meta, model_version);
    cr_assert_eq(memcmp((unsigned char *)&meta + from, tail, sizeof meta - from), 0,
                 "bytes past struct_size were written");

    qkv_model_meta full = {.struct_size = sizeof full};
    cr_assert_eq(qkv_model_get_meta(m, &full), QKV_OK);
    cr_assert_eq(full.ir_version, meta.ir_version);
    cr_assert_str_eq(full.producer_name, "qkv-tests");

    qkv_value_info vi;
    memset(&vi, 0xAB, sizeof vi);
    vi.struct_size = offsetof(qkv_value_info, dtype);
    cr_assert_eq(qkv_model_input(m, 1, &vi), QKV_OK);
    cr_assert_str_eq(vi.name, "past_k");
    cr_assert_eq((unsigned)vi.dtype, 0xABABABABu, "dtype is past struct_size");

    qkv_node_info ni;
    memset(&ni, 0xAB, sizeof ni);
    ni.struct_size = offsetof(qkv_node_info, op_type);
    cr_assert_eq(qkv_session_node_info(s, 0, &ni), QKV_OK);
    cr_assert_neq(ni.name, NULL);
    unsigned char pat[sizeof(void *)];
    memset(pat, 0xAB, sizeof pat);
    cr_assert_eq(memcmp(&ni.op_type, pat, sizeof pat), 0, "op_type is past struct_size");
    qkv_session_destroy(s);
}

Test(io_api, refuses_structs_too_small_for_their_first_field)
{
    qkv_session *s = open_model("io/kv_decoder.onnx");
    const qkv_model *m = qkv_session_model(s);
    qkv_model_meta meta = {.struct_size = 0, .ir_version = 12345};
    cr_assert_eq(qkv_model_get_meta(m, &meta), QKV_ERR_INVALID_ARGUMENT);
    cr_assert_eq(meta.ir_version, 12345, "nothing is written");
    cr_assert_eq(qkv_model_get_meta(m, NULL), QKV_ERR_INVALID_ARGUMENT);

    qkv_value_info vi = {.struct_size = sizeof(size_t), .name = "untouched"};
    cr_assert_eq(qkv_model_input(m, 0, &vi), QKV_ERR_INVALID_ARGUMENT);
    cr_assert_str_eq(vi.name, "untouched");
    cr_assert_eq(qkv_model_output(m, 0, NULL), QKV_ERR_INVALID_ARGUMENT);
    /* an index out of range: the empty description, and an error */
    qkv_value_info out = {.struct_size = sizeof out};
    cr_assert_eq(qkv_model_output(m, 3, &out), QKV_ERR_INVALID_ARGUMENT);
    cr_assert_str_eq(out.name, "");
    cr_assert_eq(out.rank, -1);

    qkv_node_info ni = {.struct_size = 0, .name = "untouched"};
    cr_assert_eq(qkv_session_node_info(s, 0, &ni), QKV_ERR_INVALID_ARGUMENT);
    cr_assert_str_eq(ni.name, "untouched");

    qkv_context *c;
    cr_assert_eq(qkv_context_create(s, &c, NULL), QKV_OK);
    float x[D] = {0}, pk[D], pv[D];
    fill(pk, D, 1);
    fill(pv, D, 2);
    qkv_tensor in[3] = {f32(x, 3, (int64_t[]){1, 1, D}), f32(pk, 3, (int64_t[]){1, 1, D}),
                        f32(pv, 3, (int64_t[]){1, 1, D})};
    qkv_plan_stats st = {.struct_size = 4, .arena_bytes = 7};
    qkv_error err;
    cr_assert_eq(qkv_plan(c, in, 3, &st, &err), QKV_ERR_INVALID_ARGUMENT);
    cr_assert(strstr(err.message, "struct_size 4 is too small"), "%s", err.message);
    cr_assert_eq(st.arena_bytes, 7);
    cr_assert_eq(qkv_context_plan_stats(c, &st), QKV_ERR_INVALID_ARGUMENT, "no plan yet");
    cr_assert_eq(qkv_run(c, in, 3, &err), QKV_OK, "%s", err.message);
    /* an older qkv_plan_stats without scratch_bytes */
    qkv_plan_stats old;
    memset(&old, 0xAB, sizeof old);
    old.struct_size = offsetof(qkv_plan_stats, scratch_bytes);
    cr_assert_eq(qkv_context_plan_stats(c, &old), QKV_OK);
    cr_assert_gt(old.steps, 0);
    cr_assert_eq(old.scratch_bytes, (size_t)0xABABABABABABABABull);
    cr_assert_eq(qkv_context_plan_stats(c, &st), QKV_ERR_INVALID_ARGUMENT);

    cr_assert_eq(qkv_context_set_profiling(c, 1, NULL), QKV_OK);
    cr_assert_eq(qkv_run(c, in, 3, &err), QKV_OK, "%s", err.message);
    cr_assert_gt(qkv_context_profile_count(c), 0);
    qkv_profile_entry e = {.struct_size = offsetof(qkv_profile_entry, ms), .ms = -1};
    cr_assert_eq(qkv_context_profile(c, 0, &e), QKV_OK);
    cr_assert_eq(e.ms, -1, "ms is past struct_size");
    e.struct_size = 0;
    cr_assert_eq(qkv_context_profile(c, 0, &e), QKV_ERR_INVALID_ARGUMENT);
    qkv_context_destroy(c);
    qkv_session_destroy(s);
}

Test(io_api, reads_session_options_only_within_struct_size)
{
    /* A caller compiled before the plugin/backend fields: what lies beyond
     * its struct_size (here: a backend list no session could satisfy and a
     * plugin that does not exist) must not be read. */
    qkv_session_options opts;
    qkv_session_options_init(&opts);
    const char *missing[] = {"/nonexistent/plugin.so"};
    opts.plugins = missing;
    opts.n_plugins = 1;
    opts.backends = "no-such-backend";
    opts.struct_size = offsetof(qkv_session_options, plugins);
    qkv_session *s = NULL;
    qkv_error err;
    cr_assert_eq(qkv_session_create(tu_data("io/kv_decoder.onnx"), &opts, &s, &err), QKV_OK, "%s",
                 err.message);
    qkv_session_destroy(s);

    opts.struct_size = sizeof opts; /* now they are read */
    cr_assert_neq(qkv_session_create(tu_data("io/kv_decoder.onnx"), &opts, &s, &err), QKV_OK);

    opts.struct_size = 3;
    cr_assert_eq(qkv_session_create(tu_data("io/kv_decoder.onnx"), &opts, &s, &err),
                 QKV_ERR_INVALID_ARGUMENT);
    cr_assert(strstr(err.message, "struct_size 3 is too small"), "%s", err.message);
}

/* ---- the log callback ---------------------------------------------------------- */

typedef struct log_record {
    int n;
    char lines[8][128];
    int levels[8];
} log_record;

static void record(void *user, int level, const char *message)
{
    log_record *r = user;
    if (r->n < 8) {
        snprintf(r->lines[r->n], sizeof r->lines[0], "%s", message);
        r->levels[r->n] = level;
    }
    r->n++;
}

Test(io_api, log_callback_gets_the_sessions_messages_up_to_its_level)
{
    log_record rec = {0};
    qkv_session_options opts;
    qkv_session_options_init(&opts);
    const char *plugins[] = {QKV_FIXTURE_PLUGIN_DIR "/fx_log.so"};
    opts.plugins = plugins;
    opts.n_plugins = 1;
    opts.log = record;
    opts.log_user = &rec;
    opts.log_level = QKV_LOG_INFO;
    opts.no_default_plugins = 1; /* only fx_log speaks */
    qkv_session *s = NULL;
    qkv_error err;
    cr_assert_eq(qkv_session_create(tu_data("io/log_echo.onnx"), &opts, &s, &err), QKV_OK, "%s",
                 err.message);
    cr_assert_eq(rec.n, 1, "init logs once at INFO (got %d)", rec.n);
    cr_assert_str_eq(rec.lines[0], "fx_log: init echo");
    cr_assert_eq(rec.levels[0], QKV_LOG_INFO);

    qkv_context *c;
    cr_assert_eq(qkv_context_create(s, &c, NULL), QKV_OK);
    float x[3] = {1, 2, 3};
    qkv_tensor in = f32(x, 1, (int64_t[]){3});
    cr_assert_eq(qkv_run(c, &in, 1, &err), QKV_OK, "%s", err.message);
    cr_assert_eq(rec.n, 2, "compute's WARN is delivered, its DEBUG is above the level");
    cr_assert_str_eq(rec.lines[1], "fx_log: compute");
    cr_assert_eq(rec.levels[1], QKV_LOG_WARN);
    qkv_context_destroy(c);
    qkv_session_destroy(s);

    /* a session at ERROR gets nothing from the same plugin */
    log_record quiet = {0};
    opts.log_user = &quiet;
    opts.log_level = QKV_LOG_ERROR;
    cr_assert_eq(qkv_session_create(tu_data("io/log_echo.onnx"), &opts, &s, &err), QKV_OK);
    cr_assert_eq(qkv_context_create(s, &c, NULL), QKV_OK);
    cr_assert_eq(qkv_run(c, &in, 1, &err), QKV_OK, "%s", err.message);
    cr_assert_eq(quiet.n, 0);
    qkv_context_destroy(c);
    qkv_session_destroy(s);
}

/* ---- qkv_run_io: names --------------------------------------------------------- */

typedef struct decoder_case {
    qkv_session *s;
    qkv_context *c;
    float x[D], pk[3 * D], pv[3 * D];
    qkv_tensor in[3]; /* x, past_k, past_v (model order), past = 3 */
} decoder_case;

static void decoder_open(decoder_case *dc)
{
    dc->s = open_model("io/kv_decoder.onnx");
    cr_assert_eq(qkv_context_create(dc->s, &dc->c, NULL), QKV_OK);
    fill(dc->x, D, 3);
    fill(dc->pk, 3 * D, 4);
    fill(dc->pv, 3 * D, 5);
    dc->in[0] = f32(dc->x, 3, (int64_t[]){1, 1, D});
    dc->in[1] = f32(dc->pk, 3, (int64_t[]){1, 3, D});
    dc->in[2] = f32(dc->pv, 3, (int64_t[]){1, 3, D});
}

static void decoder_close(decoder_case *dc)
{
    qkv_context_destroy(dc->c);
    qkv_session_destroy(dc->s);
}

/* The outputs of a plain qkv_run, copied out. */
static void reference_run(decoder_case *dc, float y[D], float k[4 * D], float v[4 * D])
{
    qkv_error err;
    cr_assert_eq(qkv_run(dc->c, dc->in, 3, &err), QKV_OK, "%s", err.message);
    memcpy(y, qkv_context_output(dc->c, 0)->data, D * sizeof(float));
    memcpy(k, qkv_context_output(dc->c, 1)->data, 4 * D * sizeof(float));
    memcpy(v, qkv_context_output(dc->c, 2)->data, 4 * D * sizeof(float));
}

Test(io_run, binds_inputs_and_outputs_by_name_in_any_order)
{
    decoder_case dc;
    decoder_open(&dc);
    float y[D], k[4 * D], v[4 * D];
    reference_run(&dc, y, k, v);
    const char *in_names[] = {"past_v", "x", "past_k"};
    qkv_tensor in[3] = {dc.in[2], dc.in[0], dc.in[1]};
    const char *out_names[] = {"present_v", "y"};
    qkv_tensor out[2] = {{0}};
    qkv_error err;
    cr_assert_eq(qkv_run_io(dc.c, in_names, in, 3, out_names, out, 2, &err), QKV_OK, "%s",
                 err.message);
    cr_assert_eq(out[0].rank, 3);
    cr_assert_eq(out[0].dims[1], 4);
    cr_assert_eq(memcmp(out[0].data, v, sizeof v), 0);
    cr_assert_eq(memcmp(out[1].data, y, sizeof y), 0);
    cr_assert_eq(out[1].data, qkv_context_output(dc.c, 0)->data, "context-owned");
    /* positional, as qkv_run */
    qkv_tensor all[3] = {{0}};
    cr_assert_eq(qkv_run_io(dc.c, NULL, dc.in, 3, NULL, all, 3, &err), QKV_OK, "%s", err.message);
    cr_assert_eq(memcmp(all[1].data, k, sizeof k), 0);
    decoder_close(&dc);
}

static void expect_error(decoder_case *dc, const char *const *in_names, const qkv_tensor *in,
                         size_t n_in, const char *const *out_names, qkv_tensor *out, size_t n_out,
                         qkv_status want, const char *text)
{
    qkv_error err;
    qkv_status st = qkv_run_io(dc->c, in_names, in, n_in, out_names, out, n_out, &err);
    cr_assert_eq(st, want, "status %s, expected %s: %s", qkv_status_string(st),
                 qkv_status_string(want), err.message);
    cr_assert(strstr(err.message, text), "message '%s' lacks '%s'", err.message, text);
}

Test(io_run, refuses_bad_names)
{
    decoder_case dc;
    decoder_open(&dc);
    const char *unknown[] = {"x", "past_k", "past_q"};
    expect_error(&dc, unknown, dc.in, 3, NULL, NULL, 0, QKV_ERR_INVALID_ARGUMENT,
                 "no input named 'past_q'");
    const char *twice[] = {"x", "past_k", "past_k"};
    expect_error(&dc, twice, dc.in, 3, NULL, NULL, 0, QKV_ERR_INVALID_ARGUMENT,
                 "input 'past_k' is bound twice");
    const char *two[] = {"x", "past_v"};
    expect_error(&dc, two, dc.in, 2, NULL, NULL, 0, QKV_ERR_INVALID_ARGUMENT,
                 "input 1 'past_k' is not bound");
    const char *null_name[] = {"x", NULL, "past_v"};
    expect_error(&dc, null_name, dc.in, 3, NULL, NULL, 0, QKV_ERR_INVALID_ARGUMENT,
                 "input name 1 is NULL");
    const char *names[] = {"x", "past_k", "past_v"};
    qkv_tensor out[4] = {{0}};
    const char *bad_out[] = {"present_q"};
    expect_error(&dc, names, dc.in, 3, bad_out, out, 1, QKV_ERR_INVALID_ARGUMENT,
                 "no output named 'present_q'");
    const char *dup_out[] = {"y", "y"};
    expect_error(&dc, names, dc.in, 3, dup_out, out, 2, QKV_ERR_INVALID_ARGUMENT,
                 "output 'y' is requested twice");
    const char *null_out[] = {NULL};
    expect_error(&dc, names, dc.in, 3, null_out, out, 1, QKV_ERR_INVALID_ARGUMENT,
                 "output name 0 is NULL");
    expect_error(&dc, names, dc.in, 3, NULL, out, 4, QKV_ERR_INVALID_ARGUMENT,
                 "4 outputs requested, the model has 3");
    expect_error(&dc, names, NULL, 3, NULL, NULL, 0, QKV_ERR_INVALID_ARGUMENT, "inputs is NULL");
    expect_error(&dc, names, dc.in, 3, NULL, NULL, 1, QKV_ERR_INVALID_ARGUMENT, "outputs is NULL");
    /* qkv_run's own checks still apply */
    qkv_tensor wrong[3] = {dc.in[0], dc.in[1], dc.in[2]};
    wrong[2].dtype = QKV_DTYPE_DOUBLE;
    expect_error(&dc, names, wrong, 3, NULL, NULL, 0, QKV_ERR_TYPE, "'past_v' has type");
    qkv_error err;
    cr_assert_eq(qkv_run_io(NULL, NULL, NULL, 0, NULL, NULL, 0, &err), QKV_ERR_INVALID_ARGUMENT);
    decoder_close(&dc);
}

/* ---- qkv_run_io: caller-owned outputs -------------------------------------------- */

#define SENTINEL 1234.5f

Test(io_run, writes_bound_outputs_into_caller_buffers)
{
    decoder_case dc;
    decoder_open(&dc);
    float y[D], k[4 * D], v[4 * D];
    reference_run(&dc, y, k, v);
    float by[D], bk[4 * D];
    qkv_tensor out[3] = {f32(by, 3, (int64_t[]){1, 1, D}), {0}, f32(bk, 3, (int64_t[]){1, 4, D})};
    const char *names[] = {"y", "present_v", "present_k"};
    qkv_error err;
    cr_assert_eq(qkv_run_io(dc.c, NULL, dc.in, 3, names, out, 3, &err), QKV_OK, "%s", err.message);
    cr_assert_eq(memcmp(by, y, sizeof y), 0);
    cr_assert_eq(memcmp(bk, k, sizeof k), 0);
    cr_assert_eq(memcmp(out[1].data, v, sizeof v), 0);
    cr_assert_eq(out[0].data, by, "a bound tensor is left as the caller set it");
    cr_assert_eq(qkv_context_output(dc.c, 0)->data, by);
    cr_assert_eq(qkv_context_output(dc.c, 1)->data, bk);
    decoder_close(&dc);
}

Test(io_run, computes_a_bound_output_in_place_without_a_copy)
{
    /* White-box: once the plan is bound, the output's value (and everything
     * sharing its arena buffer) points at the caller's memory, so the node
     * that computes it writes there and no copy is needed at the end. */
    decoder_case dc;
    decoder_open(&dc);
    qkv_exec_plan *p = NULL;
    qkv_error err;
    cr_assert_eq(qkv_plan_get(dc.s, dc.in, 3, &p, &err), QKV_OK, "%s", err.message);
    const qkv_ir_graph *g = dc.s->model->graph;
    int32_t yv = g->outputs[0];
    cr_assert_eq(p->values[yv].storage, QKV_STORE_ARENA);
    qkv_tensor *vals = calloc(p->n_values, sizeof *vals);
    for (size_t i = 0; i < p->n_values; i++)
        vals[i] = p->values[i].t;
    float by[D];
    qkv_tensor dst = f32(by, 3, (int64_t[]){1, 1, D});
    qkv_tensor *bound[3] = {&dst, NULL, NULL};
    cr_assert_eq(qkv_io_bind_outputs(p, g, vals, dc.in, bound, &err), QKV_OK, "%s", err.message);
    cr_assert_eq(vals[yv].data, by);
    free(vals);
    qkv_plan_release(p);
    decoder_close(&dc);
}

static void expect_bound_error(decoder_case *dc, qkv_tensor *out, const char *name, qkv_status want,
                               const char *text)
{
    const char *names[] = {name};
    float *buf = out->data;
    size_t n = out->data_bytes / sizeof(float);
    for (size_t i = 0; i < n; i++)
        buf[i] = SENTINEL;
    expect_error(dc, NULL, dc->in, 3, names, out, 1, want, text);
    for (size_t i = 0; i < n; i++)
        cr_assert_eq(buf[i], SENTINEL, "the buffer was written before the check failed");
}

Test(io_run, refuses_bound_outputs_that_do_not_match_before_running)
{
    decoder_case dc;
    decoder_open(&dc);
    float buf[8 * D];
    qkv_tensor t = f32(buf, 3, (int64_t[]){1, 3, D}); /* present_k is [1, 4, D] */
    expect_bound_error(&dc, &t, "present_k", QKV_ERR_SHAPE,
                       "output 1 'present_k': the bound buffer has shape [1,3,8], the run "
                       "makes [1,4,8]");
    t = f32(buf, 2, (int64_t[]){4, D});
    expect_bound_error(&dc, &t, "present_k", QKV_ERR_SHAPE, "shape [4,8]");
    t = f32(buf, 3, (int64_t[]){1, 4, D});
    t.dtype = QKV_DTYPE_INT32;
    expect_bound_error(&dc, &t, "present_k", QKV_ERR_TYPE,
                       "output 1 'present_k': the bound buffer is int32, the output is float32");
    t = f32(buf, 3, (int64_t[]){1, 4, D});
    t.data_bytes -= 4;
    expect_bound_error(&dc, &t, "present_k", QKV_ERR_INVALID_ARGUMENT,
                       "the bound buffer has 124 bytes, the output needs 128");
    decoder_close(&dc);
}

Test(io_run, refuses_overlapping_buffers)
{
    decoder_case dc;
    decoder_open(&dc);
    float buf[8 * D];
    /* two outputs on one buffer */
    qkv_tensor out[2] = {f32(buf, 3, (int64_t[]){1, 4, D}), f32(buf + D, 3, (int64_t[]){1, 4, D})};
    const char *names[] = {"present_k", "present_v"};
    expect_error(&dc, NULL, dc.in, 3, names, out, 2, QKV_ERR_INVALID_ARGUMENT,
                 "outputs 1 'present_k' and 2 'present_v' are bound to overlapping memory");
    /* an output over an input it does not extend: present_v over past_k */
    float cache[4 * D];
    memcpy(cache, dc.pk, sizeof dc.pk);
    qkv_tensor in[3] = {dc.in[0], f32(cache, 3, (int64_t[]){1, 3, D}), dc.in[2]};
    qkv_tensor pv = f32(cache, 3, (int64_t[]){1, 4, D});
    const char *pv_name[] = {"present_v"};
    expect_error(&dc, NULL, in, 3, pv_name, &pv, 1, QKV_ERR_INVALID_ARGUMENT,
                 "output 2 'present_v' is bound to memory that overlaps input 1 'past_k'");
    /* y over x */
    qkv_tensor y = f32(dc.x, 3, (int64_t[]){1, 1, D});
    const char *y_name[] = {"y"};
    expect_error(&dc, NULL, dc.in, 3, y_name, &y, 1, QKV_ERR_INVALID_ARGUMENT,
                 "output 0 'y' is bound to memory that overlaps input 0 'x'");
    /* present_k over past_k, but not starting at the same address */
    float shifted[5 * D];
    memcpy(shifted + D, dc.pk, sizeof dc.pk);
    qkv_tensor in2[3] = {dc.in[0], f32(shifted + D, 3, (int64_t[]){1, 3, D}), dc.in[2]};
    qkv_tensor pk = f32(shifted, 3, (int64_t[]){1, 4, D});
    const char *pk_name[] = {"present_k"};
    expect_error(&dc, NULL, in2, 3, pk_name, &pk, 1, QKV_ERR_INVALID_ARGUMENT,
                 "overlaps input 1 'past_k'");
    decoder_close(&dc);
}

/* ---- a KV cache extended in place across decode steps ---------------------------- */

#define STEPS 6

Test(io_run, extends_a_kv_cache_in_place_across_decode_steps)
{
    qkv_session *s = open_model("io/kv_decoder.onnx");
    qkv_context *c, *ref;
    cr_assert_eq(qkv_context_create(s, &c, NULL), QKV_OK);
    cr_assert_eq(qkv_context_create(s, &ref, NULL), QKV_OK);
    /* one buffer per cache, sized for every step; step t binds past as its
     * first t rows and present as its first t + 1 */
    float cache_k[STEPS * D], cache_v[STEPS * D];
    float ref_k[STEPS * D] = {0}, ref_v[STEPS * D] = {0};
    memset(cache_k, 0, sizeof cache_k);
    memset(cache_v, 0, sizeof cache_v);
    qkv_error err;
    for (int64_t t = 0; t < STEPS; t++) {
        float x[D], y[D];
        fill(x, D, 100 + (unsigned)t);
        qkv_tensor in[3] = {f32(x, 3, (int64_t[]){1, 1, D}), f32(cache_k, 3, (int64_t[]){1, t, D}),
                            f32(cache_v, 3, (int64_t[]){1, t, D})};
        qkv_tensor out[3] = {f32(y, 3, (int64_t[]){1, 1, D}),
                             f32(cache_k, 3, (int64_t[]){1, t + 1, D}),
                             f32(cache_v, 3, (int64_t[]){1, t + 1, D})};
        cr_assert_eq(qkv_run_io(c, NULL, in, 3, NULL, out, 3, &err), QKV_OK, "step %lld: %s",
                     (long long)t, err.message);
        cr_assert_eq(qkv_context_output(c, 1)->data, cache_k);

        /* the reference: separate copies through qkv_run */
        qkv_tensor rin[3] = {in[0], f32(ref_k, 3, (int64_t[]){1, t, D}),
                             f32(ref_v, 3, (int64_t[]){1, t, D})};
        cr_assert_eq(qkv_run(ref, rin, 3, &err), QKV_OK, "%s", err.message);
        cr_assert_eq(memcmp(y, qkv_context_output(ref, 0)->data, sizeof y), 0, "step %lld y",
                     (long long)t);
        size_t bytes = (size_t)(t + 1) * D * sizeof(float);
        memcpy(ref_k, qkv_context_output(ref, 1)->data, bytes);
        memcpy(ref_v, qkv_context_output(ref, 2)->data, bytes);
        cr_assert_eq(memcmp(cache_k, ref_k, bytes), 0, "step %lld present_k", (long long)t);
        cr_assert_eq(memcmp(cache_v, ref_v, bytes), 0, "step %lld present_v", (long long)t);
    }
    qkv_context_destroy(ref);
    qkv_context_destroy(c);
    qkv_session_destroy(s);
}
