/*
 * Quantized models (tests/data/make_quant_models.py): a DynamicQuantizeLinear
 * -> MatMulInteger chain with a constant weight packed once per session,
 * checked exactly against numpy; and a 2-layer encoder quantized the way ONNX
 * Runtime's quantize_dynamic does, checked against its float model (torch)
 * within the int8 error bound below.
 */
#include <criterion/criterion.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "loader.h"
#include "qkv.h"
#include "test_util.h"

static qkv_session *open_session(const char *rel, size_t threads)
{
    qkv_session_options opts;
    qkv_session_options_init(&opts);
    opts.threads = threads;
    qkv_session *s = NULL;
    qkv_error err;
    cr_assert_eq(qkv_session_create(tu_data(rel), &opts, &s, &err), QKV_OK, "%s: %s", rel,
                 err.message);
    return s;
}

/* Runs model `rel` on x and returns a copy of output 0's floats in *out
 * (malloc'd) and its element count. */
static size_t run_model(const char *rel, size_t threads, const qkv_tensor *x, float **out,
                        size_t *packed)
{
    qkv_session *s = open_session(rel, threads);
    if (packed)
        *packed = qkv_session_packed_bytes(s, NULL);
    qkv_context *c = NULL;
    qkv_error err;
    cr_assert_eq(qkv_context_create(s, &c, &err), QKV_OK, "%s", err.message);
    cr_assert_eq(qkv_run(c, x, 1, &err), QKV_OK, "%s: %s", rel, err.message);
    const qkv_tensor *y = qkv_context_output(c, 0);
    cr_assert_eq(y->dtype, QKV_DTYPE_FLOAT);
    size_t n = y->data_bytes / sizeof(float);
    *out = malloc(y->data_bytes);
    memcpy(*out, y->data, y->data_bytes);
    qkv_context_destroy(c);
    qkv_session_destroy(s);
    return n;
}

Test(quant_models, dynamic_quantize_matmul_chain_is_exact_and_packs_the_weight)
{
    qkv_tensor x, want;
    tu_read_pb(tu_data("quant/dq_matmul_input_0.pb"), &x);
    tu_read_pb(tu_data("quant/dq_matmul_output_0.pb"), &want);
    for (size_t threads = 1; threads <= 2; threads++) {
        float *y;
        size_t packed = 0;
        size_t n = run_model("quant/dq_matmul.onnx", threads, &x, &y, &packed);
        cr_assert_geq(packed, 40 * 33, "the uint8 weight (40, 33) is packed once");
        cr_assert_eq(n * sizeof(float), want.data_bytes);
        const float *w = want.data;
        /* the same float32 operations in the same order as numpy: equal */
        for (size_t i = 0; i < n; i++)
            cr_assert_eq(y[i], w[i], "threads %zu: y[%zu] = %.9g, expected %.9g", threads, i, y[i],
                         w[i]);
        free(y);
    }
    qkv_tensor_data_free(&x);
    qkv_tensor_data_free(&want);
}

/*
 * The int8 error bound. Dynamic quantization rounds every activation that
 * enters a quantized MatMul to 1/255 of its range (uint8) and every weight
 * to 1/127 of its largest magnitude (int8): each product then carries
 * rounding errors of up to half a step in each operand, independent, which
 * add up as noise rather than bias. Two layers of attention and
 * feed-forward, each ending in LayerNorm (outputs ~ N(0, 1)), measured on
 * the 8,192 outputs here: relative RMS error 0.40% and max abs error 0.016
 * (per tensor), 0.40% and 0.018 (per channel). The bound leaves about 3x
 * margin: RMS(int8 - float) / RMS(float) <= 1.2%, max |int8 - float| <= 0.05.
 */
#define INT8_REL_RMS 0.012
#define INT8_MAX_ABS 0.05

static void check_encoder(const char *rel, size_t threads, double *rel_rms_out)
{
    qkv_tensor x, want;
    tu_read_pb(tu_data("quant/encoder_input_0.pb"), &x);
    tu_read_pb(tu_data("quant/encoder_output_0.pb"), &want);
    float *y;
    size_t n = run_model(rel, threads, &x, &y, NULL);
    cr_assert_eq(n * sizeof(float), want.data_bytes);
    const float *w = want.data;
    double err2 = 0, ref2 = 0, max_abs = 0;
    for (size_t i = 0; i < n; i++) {
        double d = (double)y[i] - w[i];
        err2 += d * d;
        ref2 += (double)w[i] * w[i];
        max_abs = fabs(d) > max_abs ? fabs(d) : max_abs;
    }
    double rel_rms = sqrt(err2 / ref2);
    cr_log_info("%s threads %zu: relative RMS error %.4f, max abs error %.4f", rel, threads,
                rel_rms, max_abs);
    cr_assert_leq(rel_rms, INT8_REL_RMS, "%s: relative RMS error %.4f", rel, rel_rms);
    cr_assert_leq(max_abs, INT8_MAX_ABS, "%s: max abs error %.4f", rel, max_abs);
    if (rel_rms_out)
        *rel_rms_out = rel_rms;
    free(y);
    qkv_tensor_data_free(&x);
    qkv_tensor_data_free(&want);
}

Test(quant_models, int8_encoder_matches_float_within_the_int8_bound)
{
    double a, b;
    check_encoder("quant/encoder_int8.onnx", 1, &a);
    check_encoder("quant/encoder_int8.onnx", 2, &b);
    cr_assert_eq(a, b, "threads change the result: %.9g vs %.9g", a, b);
    check_encoder("quant/encoder_int8_pc.onnx", 2, NULL);
}

Test(quant_models, float_encoder_matches_torch)
{
    /* the baseline the bound is measured from: the float model itself */
    qkv_tensor x, want;
    tu_read_pb(tu_data("quant/encoder_input_0.pb"), &x);
    tu_read_pb(tu_data("quant/encoder_output_0.pb"), &want);
    float *y;
    size_t n = run_model("quant/encoder_f32.onnx", 1, &x, &y, NULL);
    const float *w = want.data;
    for (size_t i = 0; i < n; i++)
        cr_assert(fabsf(y[i] - w[i]) <= 1e-4f + 1e-4f * fabsf(w[i]), "y[%zu] = %g, torch %g", i,
                  y[i], w[i]);
    free(y);
    qkv_tensor_data_free(&x);
    qkv_tensor_data_free(&want);
}
