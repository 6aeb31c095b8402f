/*
 * The com.microsoft contrib ops of ONNX Runtime's transformer optimizer
 * (ops/ms_attention.c, ops/ms_layernorm.c, ops/ms_gelu.c) run through the
 * session API on the models of tests/data/make_contrib_models.py and compared
 * with its float64 numpy references, which follow ORT's CPU kernels: every
 * mask_index form, past/present, attention_bias, qkv_hidden_sizes, the
 * optional inputs and outputs of the normalisations, and a whole optimised
 * BERT layer. Each model runs with 1 and with 2 threads. The invalid models
 * (err_*) must fail at session creation with a message naming the problem.
 */
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "loader.h"
#include "qkv.h"
#include "test_util.h"

#define CONTRIB QKV_TEST_DATA "/contrib"

/* float32 kernels sum in another order than the float64 reference; 1e-3
 * relative is the ONNX test runner's tolerance, 1e-5 absolute covers values
 * near zero (softmax weights of masked keys, GELU of negative inputs) */
#define RTOL 1e-3f
#define ATOL 1e-5f

#define MAX_IO 8

typedef struct data_set {
    qkv_tensor in[MAX_IO], out[MAX_IO];
    size_t n_in, n_out;
} data_set;

static qkv_session *open_model(const char *name, size_t threads)
{
    char path[512];
    snprintf(path, sizeof path, CONTRIB "/%s/model.onnx", name);
    qkv_session_options opts;
    qkv_session_options_init(&opts);
    opts.threads = threads;
    qkv_session *s = NULL;
    qkv_error err = {0};
    cr_assert_eq(qkv_session_create(path, &opts, &s, &err), QKV_OK, "%s: %s", name, err.message);
    return s;
}

static void load_data_set(const char *name, const qkv_session *s, data_set *d)
{
    char path[512];
    const qkv_model *m = qkv_session_model(s);
    memset(d, 0, sizeof *d);
    d->n_in = qkv_model_input_count(m);
    d->n_out = qkv_model_output_count(m);
    cr_assert(d->n_in <= MAX_IO && d->n_out <= MAX_IO);
    for (size_t i = 0; i < d->n_in; i++) {
        snprintf(path, sizeof path, CONTRIB "/%s/test_data_set_0/input_%zu.pb", name, i);
        tu_read_pb(path, &d->in[i]);
    }
    for (size_t i = 0; i < d->n_out; i++) {
        snprintf(path, sizeof path, CONTRIB "/%s/test_data_set_0/output_%zu.pb", name, i);
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

static void assert_equal_i32(const char *name, size_t k, const qkv_tensor *got,
                             const qkv_tensor *want)
{
    cr_assert_eq(got->dtype, QKV_DTYPE_INT32, "%s output %zu: dtype %d", name, k, got->dtype);
    cr_assert_eq(got->data_bytes, want->data_bytes, "%s output %zu: size", name, k);
    const int32_t *a = got->data, *e = want->data;
    for (size_t i = 0; i < want->data_bytes / sizeof *e; i++)
        cr_assert_eq(a[i], e[i], "%s output %zu element %zu: got %d expected %d", name, k, i, a[i],
                     e[i]);
}

/* Runs model `name` with `threads` threads, twice (the second run reuses
 * the plan), and compares every output with the reference. */
static void check_with(const char *name, size_t threads)
{
    qkv_session *s = open_model(name, threads);
    qkv_context *c = NULL;
    qkv_error err = {0};
    cr_assert_eq(qkv_context_create(s, &c, &err), QKV_OK, "%s", err.message);
    data_set d;
    load_data_set(name, s, &d);
    for (int run = 0; run < 2; run++) {
        cr_assert_eq(qkv_run(c, d.in, d.n_in, &err), QKV_OK, "%s: %s", name, err.message);
        for (size_t k = 0; k < d.n_out; k++) {
            const qkv_tensor *got = qkv_context_output(c, k);
            cr_assert_not_null(got, "%s: output %zu missing", name, k);
            if (d.out[k].dtype == QKV_DTYPE_INT32)
                assert_equal_i32(name, k, got, &d.out[k]);
            else
                tu_assert_close(got, &d.out[k], RTOL, ATOL);
        }
    }
    free_data_set(&d);
    qkv_context_destroy(c);
    qkv_session_destroy(s);
}

static void check(const char *name)
{
    check_with(name, 1);
    check_with(name, 2);
}

/* ---- Attention ---------------------------------------------------------------------- */

Test(ms_attention, matches_numpy_without_mask) { check("attn_nomask"); }
Test(ms_attention, key_lengths_mask_masks_keys_past_each_length) { check("attn_mask_lengths"); }
Test(ms_attention, end_start_mask_masks_left_and_right_padding) { check("attn_mask_end_start"); }
Test(ms_attention, raw_2d_mask) { check("attn_mask_2d"); }
Test(ms_attention, per_query_3d_mask) { check("attn_mask_3d"); }
Test(ms_attention, megatron_4d_mask_reads_rows_past_length_on) { check("attn_mask_4d"); }
Test(ms_attention, broadcast_dummy_mask_changes_nothing) { check("attn_mask_dummy"); }
Test(ms_attention, unidirectional_with_mask) { check("attn_unidirectional"); }
Test(ms_attention, qkv_hidden_sizes_with_a_wider_value_and_pruned_input)
{
    check("attn_qkv_sizes");
}
Test(ms_attention, past_and_present_with_causal_offset) { check("attn_past_present"); }
Test(ms_attention, single_token_decode_over_past) { check("attn_past_decode"); }
Test(ms_attention, attention_bias_broadcast_over_batch) { check("attn_bias_1n"); }
Test(ms_attention, attention_bias_per_batch_and_head) { check("attn_bias_bn"); }
Test(ms_attention, weights_as_a_graph_input_use_the_session_gemm) { check("attn_weights_input"); }
/* with a fully masked row: the finite filter value leaves its softmax as if unmasked */
Test(ms_attention, custom_scale_and_mask_filter_value_with_a_fully_masked_row)
{
    check("attn_scale_filter");
}
Test(ms_attention, without_bias) { check("attn_no_bias"); }
Test(ms_attention, sequence_longer_than_one_tile) { check("attn_long"); }

/* A constant weights input is packed once for the GEMM and the original
 * released; weights fed as a graph input are not. */
Test(ms_attention, constant_weights_are_packed_once)
{
    size_t released = 0;
    qkv_session *s = open_model("attn_nomask", 1);
    cr_expect_gt(qkv_session_packed_bytes(s, &released), 0);
    cr_expect_eq(released, 16 * 48 * sizeof(float), "released %zu bytes", released);
    qkv_session_destroy(s);
    s = open_model("attn_weights_input", 1);
    cr_expect_eq(qkv_session_packed_bytes(s, NULL), 0);
    qkv_session_destroy(s);
}

/* ---- normalisations and GELUs ----------------------------------------------------------- */

Test(ms_layernorm, skip_with_beta_bias_and_every_output) { check("skln_full"); }
Test(ms_layernorm, skip_of_shape_s_d_shared_by_batches) { check("skln_skip_2d"); }
Test(ms_layernorm, skip_of_batch_one_and_the_sum_output) { check("skln_skip_batch1"); }
Test(ms_layernorm, skip_on_2d_rows_with_epsilon) { check("skln_rows"); }
Test(ms_layernorm, embed_with_segments_mask_and_sum) { check("embed_full"); }
Test(ms_layernorm, embed_distilbert_with_broadcast_position_ids) { check("embed_distil_posids"); }
Test(ms_layernorm, embed_without_mask_gives_zero_mask_index) { check("embed_posids_nomask"); }

Test(ms_gelu, gelu_exact) { check("gelu"); }
Test(ms_gelu, bias_gelu) { check("bias_gelu"); }
Test(ms_gelu, fast_gelu_with_bias) { check("fast_gelu_bias"); }
Test(ms_gelu, fast_gelu_without_bias_over_chunks) { check("fast_gelu"); }

Test(ms_contrib, optimised_bert_layer_end_to_end) { check("bert_layer"); }

/* ---- invalid models ----------------------------------------------------------------------- */

static void expect_error(const char *name, qkv_status want, const char *needle)
{
    char path[512];
    snprintf(path, sizeof path, CONTRIB "/%s/model.onnx", name);
    qkv_session *s = NULL;
    qkv_error err = {0};
    qkv_status st = qkv_session_create(path, NULL, &s, &err);
    cr_assert_eq(st, want, "%s: status %d, expected %d (%s)", name, st, want, err.message);
    cr_assert_null(s);
    cr_assert(strstr(err.message, needle), "%s: message '%s' lacks '%s'", name, err.message,
              needle);
}

Test(ms_errors, hidden_size_not_divisible_by_heads)
{
    expect_error("err_attn_heads", QKV_ERR_SHAPE, "not divisible by num_heads=3");
}
Test(ms_errors, attention_bias_of_wrong_length)
{
    expect_error("err_attn_bias_len", QKV_ERR_SHAPE, "input 2 'bias' has shape [47]");
}
Test(ms_errors, mask_of_wrong_shape)
{
    expect_error("err_attn_mask_shape", QKV_ERR_SHAPE, "input 3 'mask_index' has shape [2,7]");
}
Test(ms_errors, mask_of_rank_five)
{
    expect_error("err_attn_mask_rank", QKV_ERR_SHAPE, "'mask_index' has shape [2,1,5,5,1]");
}
Test(ms_errors, qkv_hidden_sizes_with_q_and_k_differing)
{
    expect_error("err_attn_qkv_sizes", QKV_ERR_INVALID_MODEL, "Q's 16 and K's 8 differ");
}
Test(ms_errors, megatron_mask_with_unidirectional)
{
    expect_error("err_attn_4d_causal", QKV_ERR_INVALID_MODEL, "unidirectional");
}
Test(ms_errors, skip_layer_norm_gamma_of_wrong_length)
{
    expect_error("err_skln_gamma", QKV_ERR_SHAPE, "input 2 'gamma' has shape [15]");
}
Test(ms_errors, bias_gelu_bias_of_wrong_length)
{
    expect_error("err_bias_gelu_len", QKV_ERR_SHAPE, "input 1 (bias) has shape [9]");
}

/* An id outside its embedding table is a run-time error, not a wild read. */
Test(ms_errors, embed_id_out_of_range)
{
    qkv_session *s = open_model("embed_full", 1);
    qkv_context *c = NULL;
    qkv_error err = {0};
    cr_assert_eq(qkv_context_create(s, &c, &err), QKV_OK, "%s", err.message);
    data_set d;
    load_data_set("embed_full", s, &d);
    ((int32_t *)d.in[0].data)[3] = 30; /* the word table has 30 rows */
    cr_assert_eq(qkv_run(c, d.in, d.n_in, &err), QKV_ERR_INVALID_ARGUMENT, "%s", err.message);
    cr_assert(strstr(err.message, "input 0 'input_ids' has 30 at flat index 3"), "%s", err.message);
    ((int32_t *)d.in[0].data)[3] = 0;
    ((int32_t *)d.in[1].data)[0] = -1;
    cr_assert_eq(qkv_run(c, d.in, d.n_in, &err), QKV_ERR_INVALID_ARGUMENT, "%s", err.message);
    cr_assert(strstr(err.message, "'segment_ids' has -1"), "%s", err.message);
    free_data_set(&d);
    qkv_context_destroy(c);
    qkv_session_destroy(s);
}
