/* ONNX Attention (opsets 23, 24) through the kernel harness: layouts, GQA,
 * masks, causal offsets, KV cache, score outputs, float16, threads, errors.
 * The reference folds every mask into one (B, Hq, Sq, T) additive bias and
 * computes in double. */
#include <criterion/criterion.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "elementwise.h"
#include "kernel_harness.h"
#include "loader.h"
#include "test_util.h"

/* out (B, Hq, Sq, Dv) = softmax(scale * q k^T (softcapped) + bias) v, in
 * double; a row whose bias is -inf everywhere gives zeros. q (B, Hq, Sq, D),
 * k (B, Hkv, T, D), v (B, Hkv, T, Dv), bias (B, Hq, Sq, T) or NULL. */
static void ref_attention(double *out, const float *q, const float *k, const float *v,
                          const double *bias, size_t bn, size_t hq, size_t hkv, size_t sq, size_t t,
                          size_t d, size_t dv, double scale, double softcap)
{
    double *s = malloc((t + 1) * sizeof *s);
    for (size_t b = 0; b < bn; b++)
        for (size_t h = 0; h < hq; h++)
            for (size_t i = 0; i < sq; i++) {
                size_t kh = h / (hq / hkv);
                double mx = -INFINITY;
                for (size_t j = 0; j < t; j++) {
                    double dot = 0;
                    for (size_t c = 0; c < d; c++)
                        dot += (double)q[((b * hq + h) * sq + i) * d + c] *
                               k[((b * hkv + kh) * t + j) * d + c];
                    dot *= scale;
                    if (softcap != 0)
                        dot = softcap * tanh(dot / softcap);
                    double bv = bias ? bias[((b * hq + h) * sq + i) * t + j] : 0;
                    s[j] = bv == -INFINITY ? -INFINITY : dot + bv;
                    mx = s[j] > mx ? s[j] : mx;
                }
                double sum = 0;
                for (size_t j = 0; j < t; j++)
                    sum += s[j] == -INFINITY ? 0 : exp(s[j] - mx);
                for (size_t c = 0; c < dv; c++) {
                    double acc = 0;
                    for (size_t j = 0; j < t && sum > 0; j++)
                        if (s[j] != -INFINITY)
                            acc += exp(s[j] - mx) / sum * v[((b * hkv + kh) * t + j) * dv + c];
                    out[((b * hq + h) * sq + i) * dv + c] = acc;
                }
            }
    free(s);
}

/* (B, S, H*D) -> (B, H, S, D) */
static float *to_bhsd(const float *x, size_t bn, size_t s, size_t h, size_t d)
{
    float *y = malloc((bn * s * h * d + 1) * sizeof *y);
    for (size_t b = 0; b < bn; b++)
        for (size_t i = 0; i < s; i++)
            for (size_t hh = 0; hh < h; hh++)
                memcpy(y + ((b * h + hh) * s + i) * d, x + ((b * s + i) * h + hh) * d,
                       d * sizeof *y);
    return y;
}

/* (B, H, P, D) ++ (B, H, S, D) on axis 2 */
static float *concat_seq(const float *p, const float *x, size_t bn, size_t h, size_t np, size_t s,
                         size_t d)
{
    float *y = malloc((bn * h * (np + s) * d + 1) * sizeof *y);
    for (size_t bh = 0; bh < bn * h; bh++) {
        memcpy(y + bh * (np + s) * d, p + bh * np * d, np * d * sizeof *y);
        memcpy(y + (bh * (np + s) + np) * d, x + bh * s * d, s * d * sizeof *y);
    }
    return y;
}

static float *rnd(size_t n, uint32_t seed)
{
    float *p = malloc((n + 1) * sizeof *p);
    kh_fill_random(p, n, seed);
    return p;
}

static double *zeros(size_t n) { return calloc(n + 1, sizeof(double)); }

/* Kernel float outputs vs the double reference: float GEMMs and expf give
 * ~1e-6 relative error; 1e-5 + 1e-4 relative is far below a semantic
 * error (a wrong mask, offset or head mapping moves outputs by > 1e-2). */
static void expect_close(const float *got, const double *want, size_t n, const char *what)
{
    for (size_t i = 0; i < n; i++)
        cr_assert(fabs(got[i] - want[i]) <= 1e-5 + 1e-4 * fabs(want[i]),
                  "%s[%zu] = %.8g, expected %.8g", what, i, (double)got[i], want[i]);
}

Test(attention, computes_4d_gqa_with_float_mask)
{
    size_t b = 2, hq = 4, hkv = 2, sq = 3, t = 5, d = 8, dv = 6;
    float *q = rnd(b * hq * sq * d, 1), *k = rnd(b * hkv * t * d, 2), *v = rnd(b * hkv * t * dv, 3);
    float *m = rnd(sq * t, 4);
    m[2] = -INFINITY;
    double *bias = zeros(b * hq * sq * t), *want = zeros(b * hq * sq * dv);
    for (size_t i = 0; i < b * hq; i++)
        for (size_t j = 0; j < sq * t; j++)
            bias[i * sq * t + j] = m[j];
    ref_attention(want, q, k, v, bias, b, hq, hkv, sq, t, d, dv, 1 / sqrt(8.0), 0);
    qkv_tensor in[4] = {kh_f32(4, (int64_t[]){2, 4, 3, 8}, q),
                        kh_f32(4, (int64_t[]){2, 2, 5, 8}, k),
                        kh_f32(4, (int64_t[]){2, 2, 5, 6}, v), kh_f32(2, (int64_t[]){3, 5}, m)};
    qkv_tensor y;
    qkv_error err;
    kh_node *n = kh_node_create("Attention", 23, 4, 1);
    cr_assert_eq(kh_run(n, in, &y, &err), QKV_OK, "%s", err.message);
    cr_assert_eq(y.rank, 4);
    cr_assert_eq(y.dims[1], 4);
    cr_assert_eq(y.dims[3], 6);
    expect_close(y.data, want, b * hq * sq * dv, "Y");
    kh_free_outputs(&y, 1);
    kh_node_destroy(n);
    free(q), free(k), free(v), free(m), free(bias), free(want);
}

Test(attention, computes_3d_with_past_causal_and_present_outputs)
{
    /* 3-D Q (B, Sq, Hq*D), causal offset = past length, scale and softcap */
    size_t b = 2, hq = 6, hkv = 3, sq = 4, np = 3, t = np + sq, d = 4, dv = 5;
    float *q3 = rnd(b * sq * hq * d, 5), *k3 = rnd(b * sq * hkv * d, 6);
    float *v3 = rnd(b * sq * hkv * dv, 7);
    float *pk = rnd(b * hkv * np * d, 8), *pv = rnd(b * hkv * np * dv, 9);
    float *q = to_bhsd(q3, b, sq, hq, d), *k4 = to_bhsd(k3, b, sq, hkv, d);
    float *v4 = to_bhsd(v3, b, sq, hkv, dv);
    float *kall = concat_seq(pk, k4, b, hkv, np, sq, d),
          *vall = concat_seq(pv, v4, b, hkv, np, sq, dv);
    double *bias = zeros(b * hq * sq * t), *want4 = zeros(b * hq * sq * dv);
    for (size_t bh = 0; bh < b * hq; bh++)
        for (size_t i = 0; i < sq; i++)
            for (size_t j = 0; j < t; j++)
                if (j > i + np)
                    bias[(bh * sq + i) * t + j] = -INFINITY;
    ref_attention(want4, q, kall, vall, bias, b, hq, hkv, sq, t, d, dv, 0.7, 1.5);
    qkv_tensor in[6] = {
        kh_f32(3, (int64_t[]){2, 4, 24}, q3),   kh_f32(3, (int64_t[]){2, 4, 12}, k3),
        kh_f32(3, (int64_t[]){2, 4, 15}, v3),   {0},
        kh_f32(4, (int64_t[]){2, 3, 3, 4}, pk), kh_f32(4, (int64_t[]){2, 3, 3, 5}, pv)};
    qkv_tensor out[3];
    qkv_error err;
    kh_node *n = kh_node_create("Attention", 23, 6, 3);
    kh_omit_input(n, 3);
    kh_attr_int(n, "q_num_heads", 6);
    kh_attr_int(n, "kv_num_heads", 3);
    kh_attr_int(n, "is_causal", 1);
    kh_attr_float(n, "scale", 0.7f);
    kh_attr_float(n, "softcap", 1.5f);
    cr_assert_eq(kh_run(n, in, out, &err), QKV_OK, "%s", err.message);
    cr_assert_eq(out[0].rank, 3);
    cr_assert_eq(out[0].dims[2], 30);
    cr_assert_eq(out[1].dims[2], 7);
    cr_assert_eq(out[2].dims[3], 5);
    float *y4 = to_bhsd(out[0].data, b, sq, hq, dv);
    expect_close(y4, want4, b * hq * sq * dv, "Y");
    cr_assert(memcmp(out[1].data, kall, b * hkv * t * d * sizeof(float)) == 0, "present_key");
    cr_assert(memcmp(out[2].data, vall, b * hkv * t * dv * sizeof(float)) == 0, "present_value");
    kh_free_outputs(out, 3);
    kh_node_destroy(n);
    free(q3), free(k3), free(v3), free(pk), free(pv), free(q), free(k4), free(v4), free(kall);
    free(vall), free(bias), free(want4), free(y4);
}

Test(attention, bool_mask_intersects_with_causal_and_fully_masked_rows_are_zero)
{
    size_t sq = 3, t = 3, d = 8;
    float *q = rnd(sq * d, 10), *k = rnd(t * d, 11), *v = rnd(t * d, 12);
    /* row 0 may only see key 2, which causal hides: fully masked */
    uint8_t mask[9] = {0, 0, 1, 1, 1, 0, 1, 0, 1};
    double bias[9], want[24];
    for (size_t i = 0; i < 3; i++)
        for (size_t j = 0; j < 3; j++)
            bias[i * 3 + j] = mask[i * 3 + j] && j <= i ? 0 : -INFINITY;
    ref_attention(want, q, k, v, bias, 1, 1, 1, sq, t, d, d, 1 / sqrt(8.0), 0);
    qkv_tensor in[4] = {kh_f32(4, (int64_t[]){1, 1, 3, 8}, q),
                        kh_f32(4, (int64_t[]){1, 1, 3, 8}, k),
                        kh_f32(4, (int64_t[]){1, 1, 3, 8}, v),
                        kh_tensor(QKV_DTYPE_BOOL, 2, (int64_t[]){3, 3}, mask)};
    qkv_tensor y;
    qkv_error err;
    kh_node *n = kh_node_create("Attention", 23, 4, 1);
    kh_attr_int(n, "is_causal", 1);
    cr_assert_eq(kh_run(n, in, &y, &err), QKV_OK, "%s", err.message);
    for (size_t c = 0; c < d; c++)
        cr_assert_eq(((float *)y.data)[c], 0.0f, "row 0 is fully masked");
    expect_close(y.data, want, 24, "Y");
    kh_free_outputs(&y, 1);
    kh_node_destroy(n);
    free(q), free(k), free(v);
}

Test(attention, opset24_pads_short_masks_and_applies_nonpad_lengths)
{
    /* T = 6; a float mask (B, 1, Sq, 4) leaves keys 4, 5 excluded; nonpad
     * (5, 3) hides more; causal offset nonpad[b] - Sq per batch */
    size_t b = 2, h = 2, sq = 2, t = 6, d = 8;
    float *q = rnd(b * h * sq * d, 13), *k = rnd(b * h * t * d, 14), *v = rnd(b * h * t * d, 15);
    float *m = rnd(b * sq * 4, 16);
    int64_t nonpad[2] = {5, 3};
    double *bias = zeros(b * h * sq * t), *want = zeros(b * h * sq * d);
    for (size_t bb = 0; bb < b; bb++)
        for (size_t hh = 0; hh < h; hh++)
            for (size_t i = 0; i < sq; i++)
                for (size_t j = 0; j < t; j++) {
                    double *e = &bias[((bb * h + hh) * sq + i) * t + j];
                    int64_t off = nonpad[bb] - (int64_t)sq;
                    if (j >= 4 || (int64_t)j >= nonpad[bb] || (int64_t)j > (int64_t)i + off)
                        *e = -INFINITY;
                    else
                        *e = m[(bb * sq + i) * 4 + j];
                }
    ref_attention(want, q, k, v, bias, b, h, h, sq, t, d, d, 1 / sqrt(8.0), 0);
    qkv_tensor in[7] = {kh_f32(4, (int64_t[]){2, 2, 2, 8}, q),
                        kh_f32(4, (int64_t[]){2, 2, 6, 8}, k),
                        kh_f32(4, (int64_t[]){2, 2, 6, 8}, v),
                        kh_f32(4, (int64_t[]){2, 1, 2, 4}, m),
                        {0},
                        {0},
                        kh_i64(1, (int64_t[]){2}, nonpad)};
    qkv_tensor y;
    qkv_error err;
    kh_node *n = kh_node_create("Attention", 24, 7, 1);
    kh_omit_input(n, 4);
    kh_omit_input(n, 5);
    kh_attr_int(n, "is_causal", 1);
    cr_assert_eq(kh_run(n, in, &y, &err), QKV_OK, "%s", err.message);
    expect_close(y.data, want, b * h * sq * d, "Y");
    kh_free_outputs(&y, 1);
    kh_node_destroy(n);
    free(q), free(k), free(v), free(m), free(bias), free(want);
}

/* Runs a 1-head attention with a float mask holding -inf and returns the
 * score output for qk_matmul_output_mode `mode`. */
static void check_qk_mode(int64_t mode)
{
    size_t sq = 2, t = 3, d = 4;
    float q[8] = {1, 0, 0, 1, 0, 1, 1, 0}, k[12] = {1, 1, 0, 0, 0, 1, 0, 1, 1, 0, 1, 1};
    float v[12] = {1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12};
    float m[6] = {0, -INFINITY, 0.5f, 0, 0, 0};
    qkv_tensor in[4] = {kh_f32(4, (int64_t[]){1, 1, 2, 4}, q),
                        kh_f32(4, (int64_t[]){1, 1, 3, 4}, k),
                        kh_f32(4, (int64_t[]){1, 1, 3, 4}, v), kh_f32(2, (int64_t[]){2, 3}, m)};
    qkv_tensor out[4];
    qkv_error err;
    kh_node *n = kh_node_create("Attention", 23, 4, 4);
    kh_attr_int(n, "qk_matmul_output_mode", mode);
    kh_attr_float(n, "softcap", 0.8f);
    cr_assert_eq(kh_run(n, in, out, &err), QKV_OK, "%s", err.message);
    cr_assert_eq(out[3].rank, 4);
    cr_assert_eq(out[3].dims[2], 2);
    cr_assert_eq(out[3].dims[3], 3);
    const float *qk = out[3].data;
    double p[6], sum[2] = {0, 0};
    for (size_t i = 0; i < sq; i++)
        for (size_t j = 0; j < t; j++) {
            double dot = 0;
            for (size_t c = 0; c < d; c++)
                dot += q[i * d + c] * k[j * d + c];
            double s0 = dot / 2; /* scale 1/sqrt(4) */
            double s1 = 0.8 * tanh(s0 / 0.8);
            double s2 = m[i * t + j] == -INFINITY ? -INFINITY : s1 + m[i * t + j];
            double want = mode == 0 ? s0 : mode == 1 ? s1 : s2;
            p[i * t + j] = s2 == -INFINITY ? 0 : exp(s2);
            sum[i] += p[i * t + j];
            if (mode < 3) {
                if (isinf(want))
                    cr_assert(qk[i * t + j] == -INFINITY, "mode %lld: qk[%zu] = %g, expected -inf",
                              (long long)mode, i * t + j, (double)qk[i * t + j]);
                else
                    cr_assert(fabs(qk[i * t + j] - want) < 1e-6,
                              "mode %lld: qk[%zu] = %g, expected %g", (long long)mode, i * t + j,
                              (double)qk[i * t + j], want);
            }
        }
    if (mode == 3)
        for (size_t e = 0; e < 6; e++) /* probabilities: exact to float rounding */
            cr_assert(fabs(qk[e] - p[e] / sum[e / 3]) < 1e-6, "mode 3: qk[%zu] = %g, expected %g",
                      e, (double)qk[e], p[e] / sum[e / 3]);
    kh_free_outputs(out, 4);
    kh_node_destroy(n);
}

Test(attention, score_output_follows_qk_matmul_output_mode)
{
    for (int64_t mode = 0; mode <= 3; mode++)
        check_qk_mode(mode);
}

Test(attention, float16_inputs_match_the_float_path)
{
    size_t b = 1, hq = 4, hkv = 2, sq = 5, np = 2, s = 5, d = 8;
    size_t nq = b * hq * sq * d, nk = b * hkv * s * d, np_ = b * hkv * np * d;
    float *q = rnd(nq, 17), *k = rnd(nk, 18), *v = rnd(nk, 19), *pk = rnd(np_, 20),
          *pv = rnd(np_, 21);
    uint16_t *q16 = malloc(nq * 2), *k16 = malloc(nk * 2), *v16 = malloc(nk * 2);
    uint16_t *pk16 = malloc(np_ * 2), *pv16 = malloc(np_ * 2);
    /* round the float inputs to float16 first, so both runs see equal values */
    qkv_ew_f32_to_half(q16, q, QKV_DTYPE_FLOAT16, nq);
    qkv_ew_f32_to_half(k16, k, QKV_DTYPE_FLOAT16, nk);
    qkv_ew_f32_to_half(v16, v, QKV_DTYPE_FLOAT16, nk);
    qkv_ew_f32_to_half(pk16, pk, QKV_DTYPE_FLOAT16, np_);
    qkv_ew_f32_to_half(pv16, pv, QKV_DTYPE_FLOAT16, np_);
    qkv_ew_half_to_f32(q, q16, QKV_DTYPE_FLOAT16, nq);
    qkv_ew_half_to_f32(k, k16, QKV_DTYPE_FLOAT16, nk);
    qkv_ew_half_to_f32(v, v16, QKV_DTYPE_FLOAT16, nk);
    qkv_ew_half_to_f32(pk, pk16, QKV_DTYPE_FLOAT16, np_);
    qkv_ew_half_to_f32(pv, pv16, QKV_DTYPE_FLOAT16, np_);
    int64_t qd[4] = {1, 4, 5, 8}, kd[4] = {1, 2, 5, 8}, pd[4] = {1, 2, 2, 8};
    qkv_tensor in32[6] = {kh_f32(4, qd, q),  kh_f32(4, kd, k), kh_f32(4, kd, v), {0},
                          kh_f32(4, pd, pk), kh_f32(4, pd, pv)};
    qkv_tensor in16[6] = {
        kh_tensor(QKV_DTYPE_FLOAT16, 4, qd, q16),  kh_tensor(QKV_DTYPE_FLOAT16, 4, kd, k16),
        kh_tensor(QKV_DTYPE_FLOAT16, 4, kd, v16),  {0},
        kh_tensor(QKV_DTYPE_FLOAT16, 4, pd, pk16), kh_tensor(QKV_DTYPE_FLOAT16, 4, pd, pv16)};
    qkv_tensor o32[4], o16[4];
    qkv_error err;
    kh_node *n = kh_node_create("Attention", 23, 6, 4);
    kh_omit_input(n, 3);
    kh_attr_int(n, "is_causal", 1);
    kh_attr_int(n, "qk_matmul_output_mode", 3);
    cr_assert_eq(kh_run(n, in32, o32, &err), QKV_OK, "%s", err.message);
    cr_assert_eq(kh_run(n, in16, o16, &err), QKV_OK, "%s", err.message);
    cr_assert_eq(o16[0].dtype, QKV_DTYPE_FLOAT16);
    cr_assert_eq(o16[1].dtype, QKV_DTYPE_FLOAT16);
    cr_assert_eq(o16[3].dtype, QKV_DTYPE_FLOAT16);
    size_t counts[4] = {nq, b * hkv * (np + s) * d, b * hkv * (np + s) * d, b * hq * sq * (np + s)};
    for (int o = 0; o < 4; o++) {
        float *back = malloc(counts[o] * sizeof *back);
        qkv_ew_half_to_f32(back, o16[o].data, QKV_DTYPE_FLOAT16, counts[o]);
        const float *ref = o32[o].data;
        /* same float32 computation, then one rounding to float16 (2^-11
         * relative) for Y and the scores; present outputs are exact copies */
        for (size_t i = 0; i < counts[o]; i++)
            cr_assert(fabsf(back[i] - ref[i]) <= 1e-3f * fabsf(ref[i]) + 1e-6f,
                      "output %d [%zu]: %g vs %g", o, i, (double)back[i], (double)ref[i]);
        free(back);
    }
    kh_free_outputs(o32, 4);
    kh_free_outputs(o16, 4);
    kh_node_destroy(n);
    free(q), free(k), free(v), free(pk), free(pv), free(q16), free(k16), free(v16), free(pk16);
    free(pv16);
}

Test(attention, one_and_two_threads_agree_on_long_sequences)
{
    size_t b = 1, hq = 4, hkv = 1, s = 300, d = 16;
    float *q = rnd(b * s * hq * d, 22), *k = rnd(b * s * hkv * d, 23),
          *v = rnd(b * s * hkv * d, 24);
    qkv_tensor in[3] = {kh_f32(3, (int64_t[]){1, 300, 64}, q),
                        kh_f32(3, (int64_t[]){1, 300, 16}, k),
                        kh_f32(3, (int64_t[]){1, 300, 16}, v)};
    qkv_tensor y1, y2;
    qkv_error err;
    kh_node *n = kh_node_create("Attention", 23, 3, 1);
    kh_attr_int(n, "q_num_heads", 4);
    kh_attr_int(n, "kv_num_heads", 1);
    kh_attr_int(n, "is_causal", 1);
    cr_assert_eq(kh_run(n, in, &y1, &err), QKV_OK, "%s", err.message);
    kh_set_threads(n, 2);
    cr_assert_eq(kh_run(n, in, &y2, &err), QKV_OK, "%s", err.message);
    /* every (b, h, query block) is computed the same way whatever thread runs it */
    cr_assert(memcmp(y1.data, y2.data, y1.data_bytes) == 0, "1 and 2 threads differ");
    float *q4 = to_bhsd(q, b, s, hq, d), *k4 = to_bhsd(k, b, s, hkv, d),
          *v4 = to_bhsd(v, b, s, hkv, d);
    double *bias = zeros(hq * s * s), *want = zeros(hq * s * d);
    for (size_t h = 0; h < hq; h++)
        for (size_t i = 0; i < s; i++)
            for (size_t j = i + 1; j < s; j++)
                bias[(h * s + i) * s + j] = -INFINITY;
    ref_attention(want, q4, k4, v4, bias, b, hq, hkv, s, s, d, d, 0.25, 0);
    float *y4 = to_bhsd(y1.data, b, s, hq, d);
    expect_close(y4, want, hq * s * d, "Y");
    kh_free_outputs(&y1, 1);
    kh_free_outputs(&y2, 1);
    kh_node_destroy(n);
    free(q), free(k), free(v), free(q4), free(k4), free(v4), free(bias), free(want), free(y4);
}

/* ---- errors ------------------------------------------------------------------- */

/* Runs Attention-opset on 3 float inputs of the given shapes (data unused by
 * the failing phases) and expects status and a message substring. */
static void expect_error(kh_node *n, qkv_tensor *in, qkv_status status, const char *msg)
{
    qkv_tensor out[4];
    qkv_error err;
    cr_assert_eq(kh_run(n, in, out, &err), status, "%s", err.message);
    cr_assert(strstr(err.message, msg), "message '%s' lacks '%s'", err.message, msg);
    kh_node_destroy(n);
}

static float buf[4096];

Test(attention, rejects_head_counts_that_do_not_divide)
{
    qkv_tensor in[3] = {kh_f32(4, (int64_t[]){1, 3, 2, 4}, buf),
                        kh_f32(4, (int64_t[]){1, 2, 2, 4}, buf),
                        kh_f32(4, (int64_t[]){1, 2, 2, 4}, buf)};
    expect_error(kh_node_create("Attention", 23, 3, 1), in, QKV_ERR_SHAPE,
                 "node 'test_node' (Attention-23): 3 query heads are not a multiple of 2 "
                 "key/value heads");
}

Test(attention, rejects_3d_inputs_without_head_attributes)
{
    qkv_tensor in[3] = {kh_f32(3, (int64_t[]){1, 2, 8}, buf), kh_f32(3, (int64_t[]){1, 2, 8}, buf),
                        kh_f32(3, (int64_t[]){1, 2, 8}, buf)};
    expect_error(kh_node_create("Attention", 23, 3, 1), in, QKV_ERR_INVALID_MODEL,
                 "3-D inputs need attributes q_num_heads and kv_num_heads");
}

Test(attention, rejects_hidden_sizes_not_divisible_by_heads)
{
    qkv_tensor in[3] = {kh_f32(3, (int64_t[]){1, 2, 8}, buf), kh_f32(3, (int64_t[]){1, 2, 9}, buf),
                        kh_f32(3, (int64_t[]){1, 2, 8}, buf)};
    kh_node *n = kh_node_create("Attention", 23, 3, 1);
    kh_attr_int(n, "q_num_heads", 2);
    kh_attr_int(n, "kv_num_heads", 2);
    expect_error(n, in, QKV_ERR_SHAPE,
                 "input 1 'K' has last dim 9, not a multiple of kv_num_heads=2");
}

Test(attention, rejects_wrong_and_mixed_ranks)
{
    qkv_tensor in[3] = {kh_f32(2, (int64_t[]){2, 8}, buf), kh_f32(4, (int64_t[]){1, 1, 2, 8}, buf),
                        kh_f32(4, (int64_t[]){1, 1, 2, 8}, buf)};
    expect_error(kh_node_create("Attention", 23, 3, 1), in, QKV_ERR_SHAPE,
                 "input 0 'Q' has rank 2, expected 3 or 4");
    qkv_tensor mixed[3] = {kh_f32(3, (int64_t[]){1, 2, 8}, buf),
                           kh_f32(4, (int64_t[]){1, 1, 2, 8}, buf),
                           kh_f32(4, (int64_t[]){1, 1, 2, 8}, buf)};
    expect_error(kh_node_create("Attention", 23, 3, 1), mixed, QKV_ERR_SHAPE,
                 "inputs 'Q', 'K', 'V' have ranks 3, 4, 4; they must be equal");
}

Test(attention, rejects_different_q_and_k_head_sizes)
{
    qkv_tensor in[3] = {kh_f32(4, (int64_t[]){1, 1, 2, 8}, buf),
                        kh_f32(4, (int64_t[]){1, 1, 2, 4}, buf),
                        kh_f32(4, (int64_t[]){1, 1, 2, 8}, buf)};
    expect_error(kh_node_create("Attention", 23, 3, 1), in, QKV_ERR_SHAPE,
                 "inputs 'Q' and 'K' have head sizes 8 and 4, expected equal");
}

Test(attention, rejects_masks_that_do_not_broadcast)
{
    qkv_tensor in[4] = {
        kh_f32(4, (int64_t[]){2, 2, 3, 4}, buf), kh_f32(4, (int64_t[]){2, 2, 5, 4}, buf),
        kh_f32(4, (int64_t[]){2, 2, 5, 4}, buf), kh_f32(3, (int64_t[]){3, 3, 5}, buf)};
    expect_error(kh_node_create("Attention", 23, 4, 1), in, QKV_ERR_SHAPE,
                 "input 3 'attn_mask' of shape [3,3,5] does not broadcast to (batch 2, heads 2, "
                 "q_len 3, total kv_len 5)");
    qkv_tensor shortm[4] = {in[0], in[1], in[2], kh_f32(2, (int64_t[]){3, 4}, buf)};
    expect_error(kh_node_create("Attention", 23, 4, 1), shortm, QKV_ERR_SHAPE,
                 "last dim 4 must be 1 or the total kv_len 5");
    qkv_tensor longm[4] = {in[0], in[1], in[2], kh_f32(2, (int64_t[]){3, 6}, buf)};
    expect_error(kh_node_create("Attention", 24, 4, 1), longm, QKV_ERR_SHAPE,
                 "last dim 6 must be at most the total kv_len 5");
    qkv_tensor rank5[4] = {in[0], in[1], in[2], kh_f32(5, (int64_t[]){1, 1, 1, 3, 5}, buf)};
    expect_error(kh_node_create("Attention", 23, 4, 1), rank5, QKV_ERR_SHAPE,
                 "input 3 'attn_mask' has rank 5, expected 1 to 4");
}

Test(attention, rejects_unpaired_or_misshapen_past)
{
    qkv_tensor in[5] = {kh_f32(4, (int64_t[]){1, 2, 3, 4}, buf),
                        kh_f32(4, (int64_t[]){1, 2, 3, 4}, buf),
                        kh_f32(4, (int64_t[]){1, 2, 3, 4}, buf),
                        {0},
                        kh_f32(4, (int64_t[]){1, 2, 2, 4}, buf)};
    kh_node *n = kh_node_create("Attention", 23, 5, 1);
    kh_omit_input(n, 3);
    expect_error(n, in, QKV_ERR_INVALID_MODEL, "past_key and past_value must be given together");
    qkv_tensor bad[6] = {in[0],
                         in[1],
                         in[2],
                         {0},
                         kh_f32(4, (int64_t[]){1, 3, 2, 4}, buf),
                         kh_f32(4, (int64_t[]){1, 2, 2, 4}, buf)};
    n = kh_node_create("Attention", 23, 6, 1);
    kh_omit_input(n, 3);
    expect_error(n, bad, QKV_ERR_SHAPE, "input 4 'past_key' has dim 1 = 3, expected 2");
}

Test(attention, rejects_nonpad_with_past_and_bad_nonpad_shape)
{
    int64_t np[2] = {1, 1};
    qkv_tensor in[7] = {kh_f32(4, (int64_t[]){1, 1, 2, 4}, buf),
                        kh_f32(4, (int64_t[]){1, 1, 2, 4}, buf),
                        kh_f32(4, (int64_t[]){1, 1, 2, 4}, buf),
                        {0},
                        kh_f32(4, (int64_t[]){1, 1, 2, 4}, buf),
                        kh_f32(4, (int64_t[]){1, 1, 2, 4}, buf),
                        kh_i64(1, (int64_t[]){1}, np)};
    kh_node *n = kh_node_create("Attention", 24, 7, 1);
    kh_omit_input(n, 3);
    expect_error(n, in, QKV_ERR_INVALID_MODEL,
                 "nonpad_kv_seqlen cannot be combined with past_key/past_value");
    qkv_tensor two[7] = {in[0], in[1], in[2], {0}, {0}, {0}, kh_i64(1, (int64_t[]){2}, np)};
    n = kh_node_create("Attention", 24, 7, 1);
    kh_omit_input(n, 3);
    kh_omit_input(n, 4);
    kh_omit_input(n, 5);
    expect_error(n, two, QKV_ERR_SHAPE, "input 6 'nonpad_kv_seqlen' must have shape (1)");
}

Test(attention, opset23_has_no_nonpad_input)
{
    int64_t np[1] = {1};
    qkv_tensor in[7] = {kh_f32(4, (int64_t[]){1, 1, 2, 4}, buf),
                        kh_f32(4, (int64_t[]){1, 1, 2, 4}, buf),
                        kh_f32(4, (int64_t[]){1, 1, 2, 4}, buf),
                        {0},
                        {0},
                        {0},
                        kh_i64(1, (int64_t[]){1}, np)};
    kh_node *n = kh_node_create("Attention", 23, 7, 1);
    kh_omit_input(n, 3);
    kh_omit_input(n, 4);
    kh_omit_input(n, 5);
    expect_error(n, in, QKV_ERR_INVALID_MODEL, "has 7 inputs, expected 3 to 6");
}

Test(attention, rejects_mixed_element_types)
{
    uint16_t h[64] = {0};
    qkv_tensor in[3] = {kh_f32(4, (int64_t[]){1, 1, 2, 4}, buf),
                        kh_tensor(QKV_DTYPE_FLOAT16, 4, (int64_t[]){1, 1, 2, 4}, h),
                        kh_f32(4, (int64_t[]){1, 1, 2, 4}, buf)};
    expect_error(kh_node_create("Attention", 23, 3, 1), in, QKV_ERR_TYPE,
                 "inputs 'Q', 'K', 'V' have types float32, float16, float32; qkv needs one type");
}

Test(attention, rejects_bad_attributes)
{
    qkv_tensor in[3] = {kh_f32(4, (int64_t[]){1, 1, 2, 4}, buf),
                        kh_f32(4, (int64_t[]){1, 1, 2, 4}, buf),
                        kh_f32(4, (int64_t[]){1, 1, 2, 4}, buf)};
    kh_node *n = kh_node_create("Attention", 23, 3, 1);
    kh_attr_float(n, "scale", -1.0f);
    expect_error(n, in, QKV_ERR_INVALID_MODEL, "attribute scale=-1 is negative");
    n = kh_node_create("Attention", 23, 3, 1);
    kh_attr_int(n, "qk_matmul_output_mode", 4);
    expect_error(n, in, QKV_ERR_INVALID_MODEL,
                 "attribute qk_matmul_output_mode=4 is not 0, 1, 2 or 3");
    n = kh_node_create("Attention", 23, 3, 1);
    kh_attr_int(n, "softmax_precision", 7);
    expect_error(n, in, QKV_ERR_INVALID_MODEL, "attribute softmax_precision=7 is not 1");
    n = kh_node_create("Attention", 23, 3, 1);
    kh_attr_int(n, "q_num_heads", 2);
    kh_attr_int(n, "kv_num_heads", 1);
    expect_error(n, in, QKV_ERR_SHAPE,
                 "4-D inputs have 1 query and 1 key/value heads, but "
                 "attributes say q_num_heads=2 kv_num_heads=1");
}

Test(attention, rejects_integer_masks)
{
    int32_t im[8] = {0};
    qkv_tensor in[4] = {kh_f32(4, (int64_t[]){1, 1, 2, 4}, buf),
                        kh_f32(4, (int64_t[]){1, 1, 2, 4}, buf),
                        kh_f32(4, (int64_t[]){1, 1, 2, 4}, buf),
                        kh_tensor(QKV_DTYPE_INT32, 2, (int64_t[]){2, 2}, im)};
    expect_error(kh_node_create("Attention", 23, 4, 1), in, QKV_ERR_TYPE,
                 "input 3 has type int32, not supported");
}

/* Found by fuzz_session: K given as "" reached compute, which converted a
 * float16 operand from a NULL pointer. */
Test(attention, refuses_an_omitted_required_input)
{
    qkv_tensor in[3] = {kh_tensor(QKV_DTYPE_FLOAT16, 4, (int64_t[]){1, 2, 1, 4}, buf),
                        kh_tensor(QKV_DTYPE_FLOAT16, 4, (int64_t[]){1, 2, 2, 4}, buf),
                        kh_tensor(QKV_DTYPE_FLOAT16, 4, (int64_t[]){1, 2, 2, 4}, buf)};
    kh_node *n = kh_node_create("Attention", 24, 3, 1);
    kh_omit_input(n, 1);
    expect_error(n, in, QKV_ERR_INVALID_MODEL, "input 1 is omitted, but the first 3 are required");
}

/* Found by fuzz_session (fuzz/regressions/fuzz_session-crash-dbe7840...): a
 * query with no heads needs no scratch, and compute offset the NULL scratch
 * pointer (UBSan, clang). The output is empty. */
Test(attention, empty_query_runs_without_scratch)
{
    static float k[32], v[32];
    qkv_tensor in[3] = {kh_f32(4, (int64_t[]){1, 0, 2, 8}, NULL),
                        kh_f32(4, (int64_t[]){1, 2, 2, 8}, k),
                        kh_f32(4, (int64_t[]){1, 2, 2, 8}, v)},
               y;
    qkv_error err;
    kh_node *n = kh_node_create("Attention", 23, 3, 1);
    cr_assert_eq(kh_run(n, in, &y, &err), QKV_OK, "%s", err.message);
    cr_assert_eq(y.rank, 4);
    cr_assert_eq(y.dims[1], 0);
    kh_free_outputs(&y, 1);
    kh_node_destroy(n);
}

/* ---- whole models (tests/data/make_attention_models.py) ---------------------- */

/* Runs OUTDIR/attention/<name>.onnx on its reference inputs with `threads`
 * threads and compares every output. Float tolerance: the references are
 * float64 numpy; 1e-4 relative + 1e-5 covers float rounding only. */
static void run_model(const char *name, size_t n_in, size_t n_out, size_t threads)
{
    char path[256];
    snprintf(path, sizeof path, "attention/%s.onnx", name);
    qkv_session_options opts;
    qkv_session_options_init(&opts);
    opts.threads = threads;
    qkv_session *s;
    qkv_context *c;
    qkv_error err;
    cr_assert_eq(qkv_session_create(tu_data(path), &opts, &s, &err), QKV_OK, "%s", err.message);
    cr_assert_eq(qkv_context_create(s, &c, &err), QKV_OK, "%s", err.message);
    qkv_tensor in[8];
    for (size_t k = 0; k < n_in; k++) {
        snprintf(path, sizeof path, "attention/%s_input_%zu.pb", name, k);
        tu_read_pb(tu_data(path), &in[k]);
    }
    cr_assert_eq(qkv_run(c, in, n_in, &err), QKV_OK, "%s", err.message);
    for (size_t k = 0; k < n_out; k++) {
        qkv_tensor want;
        snprintf(path, sizeof path, "attention/%s_output_%zu.pb", name, k);
        tu_read_pb(tu_data(path), &want);
        tu_assert_close(qkv_context_output(c, k), &want, 1e-4f, 1e-5f);
        qkv_tensor_data_free(&want);
    }
    for (size_t k = 0; k < n_in; k++)
        qkv_tensor_data_free(&in[k]);
    qkv_context_destroy(c);
    qkv_session_destroy(s);
}

Test(attention, model_gqa_with_past_mask_and_causal_across_tiles)
{
    run_model("gqa_past", 6, 3, 1);
    run_model("gqa_past", 6, 3, 2);
}

Test(attention, model_nonpad_decode_over_a_static_cache)
{
    run_model("nonpad_decode", 4, 1, 1);
    run_model("nonpad_decode", 4, 1, 2);
}
