/*
 * The int8 contrib ops of ONNX Runtime's quantize_dynamic
 * (com.microsoft.DynamicQuantizeMatMul in ops/ms_quant_matmul.c,
 * com.microsoft.QAttention in ops/ms_qattention.c) on the models of
 * tests/data/make_contrib_models.py, against its numpy references: the
 * activation's dynamic quantization and the integer products are ORT's
 * exactly (float32 scale and zero point, round half to even), so only the
 * float epilogue and the attention differ by rounding.
 */
#include <criterion/criterion.h>
#include <stdio.h>
#include <string.h>

#include "loader.h"
#include "qkv.h"
#include "test_util.h"

#define CONTRIB QKV_TEST_DATA "/contrib"
/* as tests/test_contrib.c: the float32 epilogue and attention against float64 */
#define RTOL 1e-3f
#define ATOL 1e-5f

static void check_with(const char *name, size_t threads)
{
    char path[512];
    snprintf(path, sizeof path, CONTRIB "/%s/model.onnx", name);
    qkv_session_options opts;
    qkv_session_options_init(&opts);
    opts.threads = threads;
    qkv_session *s = NULL;
    qkv_context *c = NULL;
    qkv_error err = {0};
    cr_assert_eq(qkv_session_create(path, &opts, &s, &err), QKV_OK, "%s: %s", name, err.message);
    cr_assert_eq(qkv_context_create(s, &c, &err), QKV_OK, "%s", err.message);
    const qkv_model *m = qkv_session_model(s);
    size_t n_in = qkv_model_input_count(m), n_out = qkv_model_output_count(m);
    qkv_tensor in[4], out[2];
    cr_assert(n_in <= 4 && n_out <= 2);
    for (size_t i = 0; i < n_in; i++) {
        snprintf(path, sizeof path, CONTRIB "/%s/test_data_set_0/input_%zu.pb", name, i);
        tu_read_pb(path, &in[i]);
    }
    for (size_t i = 0; i < n_out; i++) {
        snprintf(path, sizeof path, CONTRIB "/%s/test_data_set_0/output_%zu.pb", name, i);
        tu_read_pb(path, &out[i]);
    }
    for (int run = 0; run < 2; run++) {
        cr_assert_eq(qkv_run(c, in, n_in, &err), QKV_OK, "%s: %s", name, err.message);
        for (size_t k = 0; k < n_out; k++)
            tu_assert_close(qkv_context_output(c, k), &out[k], RTOL, ATOL);
    }
    for (size_t i = 0; i < n_in; i++)
        qkv_tensor_data_free(&in[i]);
    for (size_t i = 0; i < n_out; i++)
        qkv_tensor_data_free(&out[i]);
    qkv_context_destroy(c);
    qkv_session_destroy(s);
}

static void check(const char *name)
{
    check_with(name, 1);
    check_with(name, 2);
}

Test(ms_int8, dynamic_quantize_matmul_int8_weight) { check("dqmm_s8"); }
Test(ms_int8, dynamic_quantize_matmul_uint8_per_column) { check("dqmm_u8_per_column"); }
Test(ms_int8, dynamic_quantize_matmul_without_zero_point_and_bias)
{
    check("dqmm_no_zero_no_bias");
}
Test(ms_int8, qattention_int8_weight_with_key_lengths) { check("qattn_s8"); }
Test(ms_int8, qattention_uint8_per_column_with_2d_mask) { check("qattn_u8_per_column"); }
Test(ms_int8, qattention_past_present_unidirectional) { check("qattn_past"); }

/* A constant int8 weight is packed once (with its column sums) and the
 * original released. */
Test(ms_int8, constant_weights_are_packed_once)
{
    qkv_session *s = NULL;
    qkv_error err = {0};
    cr_assert_eq(qkv_session_create(CONTRIB "/qattn_s8/model.onnx", NULL, &s, &err), QKV_OK, "%s",
                 err.message);
    size_t released = 0;
    cr_expect_gt(qkv_session_packed_bytes(s, &released), 0);
    cr_expect_eq(released, 16 * 48, "released %zu bytes", released);
    qkv_session_destroy(s);
}
