/* com.microsoft.MultiHeadAttention through the kernel harness: the separate,
 * packed QKV, packed KV and per-head K/V forms, bias, key_padding_mask
 * forms, attention_bias, past/present, unidirectional, the qk output, errors.
 * The reference builds biased (B, N, ., H) Q/K/V and one additive
 * (B, N, S, T) bias, and computes in double. */
#include <criterion/criterion.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "kernel_harness.h"
#include "loader.h"
#include "test_util.h"

#define MAXN 4096

typedef struct mha_ref {
    size_t b, n, s, l, p, h, hv;
    float q[MAXN], k[MAXN], v[MAXN]; /* (B, N, S, H), (B, N, T, H), (B, N, T, Hv) with past */
    double bias[MAXN];               /* (B, N, S, T): additive, -inf excludes */
    double out[MAXN];                /* (B, S, N * Hv) */
    double qk[MAXN];                 /* (B, N, S, T): scores + bias */
} mha_ref;

/* Softmax attention of r's tensors into r->out and r->qk. */
static void ref_run(mha_ref *r, double scale)
{
    size_t t = r->p + r->l;
    for (size_t b = 0; b < r->b; b++)
        for (size_t hh = 0; hh < r->n; hh++)
            for (size_t i = 0; i < r->s; i++) {
                double s[256], mx = -INFINITY;
                size_t row = ((b * r->n + hh) * r->s + i) * t;
                for (size_t j = 0; j < t; j++) {
                    double dot = 0;
                    for (size_t c = 0; c < r->h; c++)
                        dot += (double)r->q[((b * r->n + hh) * r->s + i) * r->h + c] *
                               r->k[((b * r->n + hh) * t + j) * r->h + c];
                    double bv = r->bias[row + j];
                    s[j] = bv == -INFINITY ? -INFINITY : scale * dot + bv;
                    r->qk[row + j] = s[j];
                    mx = s[j] > mx ? s[j] : mx;
                }
                double sum = 0;
                for (size_t j = 0; j < t; j++)
                    sum += s[j] == -INFINITY ? 0 : exp(s[j] - mx);
                for (size_t c = 0; c < r->hv; c++) {
                    double acc = 0;
                    for (size_t j = 0; j < t && sum > 0; j++)
                        if (s[j] != -INFINITY)
                            acc +=
                                exp(s[j] - mx) / sum * r->v[((b * r->n + hh) * t + j) * r->hv + c];
                    r->out[(b * r->s + i) * r->n * r->hv + hh * r->hv + c] = acc;
                }
            }
}

/* Float results vs the double reference: ~1e-6 relative rounding; 1e-5 +
 * 1e-4 relative is far below a semantic error. Scores with the -10000
 * mask value lose float precision at that magnitude (ulp ~1e-3), so the
 * qk check allows 2e-3 there. */
static void expect_close(const float *got, const double *want, size_t n, double extra,
                         const char *what)
{
    for (size_t i = 0; i < n; i++) {
        if (isinf(want[i])) {
            cr_assert(got[i] == want[i], "%s[%zu] = %g, expected %g", what, i, (double)got[i],
                      want[i]);
            continue;
        }
        cr_assert(fabs(got[i] - want[i]) <= 1e-5 + 1e-4 * fabs(want[i]) + extra,
                  "%s[%zu] = %.8g, expected %.8g", what, i, (double)got[i], want[i]);
    }
}

static void fill(float *p, size_t n, uint32_t seed) { kh_fill_random(p, n, seed); }

static mha_ref R; /* big: static */

Test(mha, separate_inputs_with_bias_padding_mask_attention_bias_past_and_causal)
{
    mha_ref *r = &R;
    memset(r, 0, sizeof *r);
    size_t b = 2, n = 2, s = 3, l = 3, p = 2, h = 4, hv = 5, t = p + l, d = n * h, dv = n * hv;
    r->b = b, r->n = n, r->s = s, r->l = l, r->p = p, r->h = h, r->hv = hv;
    float q[2 * 3 * 8], k[2 * 3 * 8], v[2 * 3 * 10], bias[8 + 8 + 10], pk[2 * 2 * 2 * 4];
    float pv[2 * 2 * 2 * 5], ab[1 * 2 * 3 * 5];
    int32_t mask[2 * 5] = {1, 1, 1, 1, 1, 1, 0, 1, 1, 0};
    fill(q, sizeof q / 4, 1), fill(k, sizeof k / 4, 2), fill(v, sizeof v / 4, 3);
    fill(bias, 26, 4), fill(pk, sizeof pk / 4, 5), fill(pv, sizeof pv / 4, 6), fill(ab, 30, 7);
    float want_pk[2 * 2 * 5 * 4], want_pv[2 * 2 * 5 * 5];
    for (size_t bb = 0; bb < b; bb++)
        for (size_t hh = 0; hh < n; hh++) {
            for (size_t i = 0; i < s; i++)
                for (size_t c = 0; c < h; c++)
                    r->q[((bb * n + hh) * s + i) * h + c] =
                        q[(bb * s + i) * d + hh * h + c] + bias[hh * h + c];
            for (size_t j = 0; j < t; j++) {
                for (size_t c = 0; c < h; c++)
                    want_pk[((bb * n + hh) * t + j) * h + c] =
                        r->k[((bb * n + hh) * t + j) * h + c] =
                            j < p ? pk[((bb * n + hh) * p + j) * h + c]
                                  : k[(bb * l + j - p) * d + hh * h + c] + bias[d + hh * h + c];
                for (size_t c = 0; c < hv; c++)
                    want_pv[((bb * n + hh) * t + j) * hv + c] =
                        r->v[((bb * n + hh) * t + j) * hv + c] =
                            j < p ? pv[((bb * n + hh) * p + j) * hv + c]
                                  : v[(bb * l + j - p) * dv + hh * hv + c] +
                                        bias[2 * d + hh * hv + c];
            }
            for (size_t i = 0; i < s; i++)
                for (size_t j = 0; j < t; j++) {
                    double e = ab[(hh * s + i) * t + j];
                    if (!mask[bb * t + j])
                        e += -10000.0;
                    if (j > i + p)
                        e = -INFINITY;
                    r->bias[((bb * n + hh) * s + i) * t + j] = e;
                }
        }
    ref_run(r, 1 / sqrt(4.0));
    qkv_tensor in[8] = {kh_f32(3, (int64_t[]){2, 3, 8}, q),
                        kh_f32(3, (int64_t[]){2, 3, 8}, k),
                        kh_f32(3, (int64_t[]){2, 3, 10}, v),
                        kh_f32(1, (int64_t[]){26}, bias),
                        kh_tensor(QKV_DTYPE_INT32, 2, (int64_t[]){2, 5}, mask),
                        kh_f32(4, (int64_t[]){1, 2, 3, 5}, ab),
                        kh_f32(4, (int64_t[]){2, 2, 2, 4}, pk),
                        kh_f32(4, (int64_t[]){2, 2, 2, 5}, pv)};
    qkv_tensor out[4];
    qkv_error err;
    kh_node *node = kh_node_create_in("com.microsoft", "MultiHeadAttention", 1, 8, 4);
    kh_attr_int(node, "num_heads", 2);
    kh_attr_int(node, "unidirectional", 1);
    cr_assert_eq(kh_run(node, in, out, &err), QKV_OK, "%s", err.message);
    cr_assert_eq(out[0].rank, 3);
    cr_assert_eq(out[0].dims[2], 10);
    cr_assert_eq(out[1].dims[2], 5);
    cr_assert_eq(out[3].dims[3], 5);
    expect_close(out[0].data, r->out, b * s * dv, 0, "output");
    expect_close(out[3].data, r->qk, b * n * s * t, 2e-3, "qk");
    cr_assert(memcmp(out[1].data, want_pk, sizeof want_pk) == 0, "present_key");
    cr_assert(memcmp(out[2].data, want_pv, sizeof want_pv) == 0, "present_value");
    kh_free_outputs(out, 4);
    kh_node_destroy(node);
}

Test(mha, packed_qkv_with_bias_and_key_lengths)
{
    mha_ref *r = &R;
    memset(r, 0, sizeof *r);
    size_t b = 2, n = 3, s = 4, h = 4, d = n * h;
    r->b = b, r->n = n, r->s = s, r->l = s, r->p = 0, r->h = h, r->hv = h;
    float qkv[2 * 4 * 3 * 3 * 4], bias[3 * 12];
    int32_t lens[2] = {4, 2};
    fill(qkv, sizeof qkv / 4, 8), fill(bias, 36, 9);
    for (size_t bb = 0; bb < b; bb++)
        for (size_t hh = 0; hh < n; hh++) {
            for (size_t i = 0; i < s; i++)
                for (size_t c = 0; c < h; c++) {
                    size_t base = ((bb * s + i) * n + hh) * 3 * h + c;
                    size_t o = ((bb * n + hh) * s + i) * h + c;
                    r->q[o] = qkv[base] + bias[hh * h + c];
                    r->k[o] = qkv[base + h] + bias[d + hh * h + c];
                    r->v[o] = qkv[base + 2 * h] + bias[2 * d + hh * h + c];
                }
            for (size_t i = 0; i < s; i++)
                for (size_t j = 0; j < s; j++)
                    r->bias[((bb * n + hh) * s + i) * s + j] =
                        (int32_t)j >= lens[bb] ? -10000.0 : 0;
        }
    ref_run(r, 0.3);
    qkv_tensor in[5] = {kh_f32(5, (int64_t[]){2, 4, 3, 3, 4}, qkv),
                        {0},
                        {0},
                        kh_f32(1, (int64_t[]){36}, bias),
                        kh_tensor(QKV_DTYPE_INT32, 1, (int64_t[]){2}, lens)};
    qkv_tensor out[3];
    qkv_error err;
    kh_node *node = kh_node_create_in("com.microsoft", "MultiHeadAttention", 1, 5, 3);
    kh_omit_input(node, 1);
    kh_omit_input(node, 2);
    kh_attr_int(node, "num_heads", 3);
    kh_attr_float(node, "scale", 0.3f);
    cr_assert_eq(kh_run(node, in, out, &err), QKV_OK, "%s", err.message);
    cr_assert_eq(out[0].dims[2], 12);
    expect_close(out[0].data, r->out, b * s * d, 0, "output");
    /* present_key holds the biased K, (B, N, S, H) */
    const float *pk = out[1].data;
    for (size_t i = 0; i < b * n * s * h; i++)
        cr_assert_eq(pk[i], r->k[i], "present_key[%zu]", i);
    kh_free_outputs(out, 3);
    kh_node_destroy(node);
}

Test(mha, packed_kv_with_3d_mask)
{
    mha_ref *r = &R;
    memset(r, 0, sizeof *r);
    size_t b = 1, n = 2, s = 3, l = 5, h = 4, d = n * h;
    r->b = b, r->n = n, r->s = s, r->l = l, r->p = 0, r->h = h, r->hv = h;
    float q[3 * 8], kv[5 * 2 * 2 * 4];
    int32_t mask[3 * 5] = {1, 1, 0, 1, 0, 0, 0, 0, 0, 0, 1, 1, 1, 1, 1};
    fill(q, 24, 10), fill(kv, 80, 11);
    for (size_t hh = 0; hh < n; hh++) {
        for (size_t i = 0; i < s; i++)
            for (size_t c = 0; c < h; c++)
                r->q[(hh * s + i) * h + c] = q[i * d + hh * h + c];
        for (size_t j = 0; j < l; j++)
            for (size_t c = 0; c < h; c++) {
                r->k[(hh * l + j) * h + c] = kv[((j * n + hh) * 2) * h + c];
                r->v[(hh * l + j) * h + c] = kv[((j * n + hh) * 2 + 1) * h + c];
            }
        for (size_t i = 0; i < s; i++)
            for (size_t j = 0; j < l; j++)
                r->bias[(hh * s + i) * l + j] = mask[i * l + j] ? 0 : -10000.0;
    }
    ref_run(r, 0.5);
    qkv_tensor in[5] = {kh_f32(3, (int64_t[]){1, 3, 8}, q),
                        kh_f32(5, (int64_t[]){1, 5, 2, 2, 4}, kv),
                        {0},
                        {0},
                        kh_tensor(QKV_DTYPE_INT32, 3, (int64_t[]){1, 3, 5}, mask)};
    qkv_tensor y;
    qkv_error err;
    kh_node *node = kh_node_create_in("com.microsoft", "MultiHeadAttention", 1, 5, 1);
    kh_omit_input(node, 2);
    kh_omit_input(node, 3);
    kh_attr_int(node, "num_heads", 2);
    cr_assert_eq(kh_run(node, in, &y, &err), QKV_OK, "%s", err.message);
    /* row 1 has every key masked with the same finite value: plain softmax
     * (ORT semantics), not zeros */
    expect_close(y.data, r->out, s * d, 2e-3, "output");
    cr_assert(fabsf(((float *)y.data)[1 * d]) > 1e-4f, "row 1 is not a zero row");
    kh_free_outputs(&y, 1);
    kh_node_destroy(node);
}

Test(mha, per_head_key_value_cross_attention_with_qk_output)
{
    mha_ref *r = &R;
    memset(r, 0, sizeof *r);
    size_t b = 2, n = 2, s = 2, l = 7, h = 4, hv = 3, d = n * h;
    r->b = b, r->n = n, r->s = s, r->l = l, r->p = 0, r->h = h, r->hv = hv;
    float q[2 * 2 * 8], ab[2 * 1 * 2 * 7];
    fill(q, 32, 12), fill(r->k, b * n * l * h, 13), fill(r->v, b * n * l * hv, 14),
        fill(ab, 28, 15);
    for (size_t bb = 0; bb < b; bb++)
        for (size_t hh = 0; hh < n; hh++) {
            for (size_t i = 0; i < s; i++)
                for (size_t c = 0; c < h; c++)
                    r->q[((bb * n + hh) * s + i) * h + c] = q[(bb * s + i) * d + hh * h + c];
            for (size_t i = 0; i < s; i++)
                for (size_t j = 0; j < l; j++)
                    r->bias[((bb * n + hh) * s + i) * l + j] = ab[(bb * s + i) * l + j];
        }
    qkv_tensor in[6] = {kh_f32(3, (int64_t[]){2, 2, 8}, q),
                        kh_f32(4, (int64_t[]){2, 2, 7, 4}, r->k),
                        kh_f32(4, (int64_t[]){2, 2, 7, 3}, r->v),
                        {0},
                        {0},
                        kh_f32(4, (int64_t[]){2, 1, 2, 7}, ab)};
    qkv_tensor out[4];
    qkv_error err;
    kh_node *node = kh_node_create_in("com.microsoft", "MultiHeadAttention", 1, 6, 4);
    kh_omit_input(node, 3);
    kh_omit_input(node, 4);
    kh_attr_int(node, "num_heads", 2);
    kh_attr_int(node, "unidirectional", 1); /* S > 1, no past: offset 0 */
    /* causal, top-left: row 0 sees key 0, row 1 keys 0 and 1 */
    for (size_t bh = 0; bh < b * n; bh++)
        for (size_t j = 1; j < l; j++) {
            r->bias[(bh * s + 0) * l + j] = -INFINITY;
            if (j > 1)
                r->bias[(bh * s + 1) * l + j] = -INFINITY;
        }
    ref_run(r, 0.5);
    cr_assert_eq(kh_run(node, in, out, &err), QKV_OK, "%s", err.message);
    cr_assert_eq(out[0].dims[2], 6);
    expect_close(out[0].data, r->out, b * s * n * hv, 0, "output");
    expect_close(out[3].data, r->qk, b * n * s * l, 0, "qk");
    kh_free_outputs(out, 4);
    kh_node_destroy(node);
}

Test(mha, unidirectional_is_ignored_for_a_single_query)
{
    /* ORT applies the causal mask only when S > 1 */
    float q[4], k[3 * 4], v[3 * 4];
    fill(q, 4, 16), fill(k, 12, 17), fill(v, 12, 18);
    qkv_tensor in[3] = {kh_f32(3, (int64_t[]){1, 1, 4}, q), kh_f32(3, (int64_t[]){1, 3, 4}, k),
                        kh_f32(3, (int64_t[]){1, 3, 4}, v)};
    qkv_tensor y1, y2;
    qkv_error err;
    kh_node *a = kh_node_create_in("com.microsoft", "MultiHeadAttention", 1, 3, 1);
    kh_attr_int(a, "num_heads", 1);
    kh_node *c = kh_node_create_in("com.microsoft", "MultiHeadAttention", 1, 3, 1);
    kh_attr_int(c, "num_heads", 1);
    kh_attr_int(c, "unidirectional", 1);
    cr_assert_eq(kh_run(a, in, &y1, &err), QKV_OK, "%s", err.message);
    cr_assert_eq(kh_run(c, in, &y2, &err), QKV_OK, "%s", err.message);
    cr_assert(memcmp(y1.data, y2.data, 4 * sizeof(float)) == 0);
    kh_free_outputs(&y1, 1);
    kh_free_outputs(&y2, 1);
    kh_node_destroy(a);
    kh_node_destroy(c);
}

/* ---- errors ----------------------------------------------------------------- */

static float buf[4096];
static int32_t ibuf[64];

static void expect_error(kh_node *node, qkv_tensor *in, qkv_status status, const char *msg)
{
    qkv_tensor out[4];
    qkv_error err;
    cr_assert_eq(kh_run(node, in, out, &err), status, "%s", err.message);
    cr_assert(strstr(err.message, msg), "message '%s' lacks '%s'", err.message, msg);
    kh_node_destroy(node);
}

static kh_node *mha(size_t n_in, int64_t heads)
{
    kh_node *node = kh_node_create_in("com.microsoft", "MultiHeadAttention", 1, n_in, 1);
    if (heads)
        kh_attr_int(node, "num_heads", heads);
    return node;
}

Test(mha, rejects_missing_num_heads)
{
    qkv_tensor in[3] = {kh_f32(3, (int64_t[]){1, 2, 8}, buf), kh_f32(3, (int64_t[]){1, 2, 8}, buf),
                        kh_f32(3, (int64_t[]){1, 2, 8}, buf)};
    expect_error(mha(3, 0), in, QKV_ERR_INVALID_MODEL,
                 "node 'test_node' (com.microsoft.MultiHeadAttention-1): attribute num_heads=0 "
                 "must be given and positive");
}

Test(mha, rejects_hidden_sizes_not_divisible_by_heads)
{
    qkv_tensor in[3] = {kh_f32(3, (int64_t[]){1, 2, 9}, buf), kh_f32(3, (int64_t[]){1, 2, 9}, buf),
                        kh_f32(3, (int64_t[]){1, 2, 9}, buf)};
    expect_error(mha(3, 2), in, QKV_ERR_SHAPE,
                 "input 0 'query' has hidden size 9, not a multiple of num_heads=2");
}

Test(mha, rejects_wrong_ranks_and_missing_key)
{
    qkv_tensor in[3] = {kh_f32(4, (int64_t[]){1, 2, 2, 4}, buf),
                        kh_f32(3, (int64_t[]){1, 2, 8}, buf), kh_f32(3, (int64_t[]){1, 2, 8}, buf)};
    expect_error(mha(3, 2), in, QKV_ERR_SHAPE, "input 0 'query' has rank 4, expected 3 or 5");
    qkv_tensor alone[1] = {kh_f32(3, (int64_t[]){1, 2, 8}, buf)};
    expect_error(mha(1, 2), alone, QKV_ERR_INVALID_MODEL, "a 3-D 'query' needs 'key'");
    qkv_tensor k2[3] = {kh_f32(3, (int64_t[]){1, 2, 8}, buf), kh_f32(2, (int64_t[]){2, 8}, buf),
                        kh_f32(3, (int64_t[]){1, 2, 8}, buf)};
    expect_error(mha(3, 2), k2, QKV_ERR_SHAPE, "input 1 'key' has rank 2, expected 3, 4 or 5");
}

Test(mha, rejects_key_and_value_shape_mismatches)
{
    qkv_tensor in[3] = {kh_f32(3, (int64_t[]){1, 2, 8}, buf), kh_f32(3, (int64_t[]){1, 3, 8}, buf),
                        kh_f32(3, (int64_t[]){1, 2, 8}, buf)};
    expect_error(mha(3, 2), in, QKV_ERR_SHAPE,
                 "input 2 'value' has shape [1,2,8]: dim 1 should be 3");
}

Test(mha, rejects_bias_with_packed_kv_and_past_with_per_head_kv)
{
    qkv_tensor in[4] = {kh_f32(3, (int64_t[]){1, 2, 8}, buf),
                        kh_f32(5, (int64_t[]){1, 2, 2, 2, 4}, buf),
                        {0},
                        kh_f32(1, (int64_t[]){24}, buf)};
    kh_node *node = mha(4, 2);
    kh_omit_input(node, 2);
    expect_error(node, in, QKV_ERR_INVALID_MODEL,
                 "packed KV key (rank 5) takes no 'value' and no 'bias'");
    qkv_tensor p[8] = {kh_f32(3, (int64_t[]){1, 2, 8}, buf),
                       kh_f32(4, (int64_t[]){1, 2, 2, 4}, buf),
                       kh_f32(4, (int64_t[]){1, 2, 2, 4}, buf),
                       {0},
                       {0},
                       {0},
                       kh_f32(4, (int64_t[]){1, 2, 1, 4}, buf),
                       kh_f32(4, (int64_t[]){1, 2, 1, 4}, buf)};
    node = mha(8, 2);
    kh_omit_input(node, 3);
    kh_omit_input(node, 4);
    kh_omit_input(node, 5);
    expect_error(node, p, QKV_ERR_INVALID_MODEL,
                 "a 4-D (per-head) 'key' needs a 4-D 'value' and takes no 'bias' and no past");
}

Test(mha, rejects_bad_mask_and_attention_bias_shapes)
{
    qkv_tensor in[6] = {kh_f32(3, (int64_t[]){2, 2, 8}, buf),
                        kh_f32(3, (int64_t[]){2, 3, 8}, buf),
                        kh_f32(3, (int64_t[]){2, 3, 8}, buf),
                        {0},
                        kh_tensor(QKV_DTYPE_INT32, 2, (int64_t[]){2, 4}, ibuf)};
    kh_node *node = mha(5, 2);
    kh_omit_input(node, 3);
    expect_error(node, in, QKV_ERR_SHAPE,
                 "input 4 'key_padding_mask' has shape [2,4], expected (batch 2), (batch, total "
                 "kv_len 3) or (batch, q_len 2, total kv_len)");
    in[4] = kh_tensor(QKV_DTYPE_INT32, 1, (int64_t[]){8}, ibuf);
    node = mha(5, 2);
    kh_omit_input(node, 3);
    expect_error(node, in, QKV_ERR_UNSUPPORTED,
                 "input 4 'key_padding_mask' of shape (3 * batch + 2)");
    in[4] = (qkv_tensor){0};
    in[5] = kh_f32(4, (int64_t[]){2, 3, 2, 3}, buf);
    node = mha(6, 2);
    kh_omit_input(node, 3);
    kh_omit_input(node, 4);
    expect_error(node, in, QKV_ERR_SHAPE,
                 "input 5 'attention_bias' has shape [2,3,2,3], expected (batch 2 or 1, "
                 "num_heads 2 or 1, q_len 2, total kv_len 3)");
}

Test(mha, rejects_buffer_sharing_inputs)
{
    qkv_tensor in[9] = {kh_f32(3, (int64_t[]){1, 2, 8}, buf),
                        kh_f32(3, (int64_t[]){1, 2, 8}, buf),
                        kh_f32(3, (int64_t[]){1, 2, 8}, buf),
                        {0},
                        {0},
                        {0},
                        kh_f32(4, (int64_t[]){1, 2, 1, 4}, buf),
                        kh_f32(4, (int64_t[]){1, 2, 1, 4}, buf),
                        kh_tensor(QKV_DTYPE_INT32, 0, NULL, ibuf)};
    kh_node *node = mha(9, 2);
    kh_omit_input(node, 3);
    kh_omit_input(node, 4);
    kh_omit_input(node, 5);
    expect_error(node, in, QKV_ERR_UNSUPPORTED,
                 "past_sequence_length and cache_indirection (KV buffer sharing, beam search) "
                 "are not supported");
}

Test(mha, rejects_float16)
{
    uint16_t h[64] = {0};
    qkv_tensor in[3] = {kh_tensor(QKV_DTYPE_FLOAT16, 3, (int64_t[]){1, 2, 8}, h),
                        kh_tensor(QKV_DTYPE_FLOAT16, 3, (int64_t[]){1, 2, 8}, h),
                        kh_tensor(QKV_DTYPE_FLOAT16, 3, (int64_t[]){1, 2, 8}, h)};
    expect_error(mha(3, 2), in, QKV_ERR_TYPE, "input 0 has type float16, not supported");
}

/* ---- a whole model (tests/data/make_attention_models.py) ---------------------- */

/* present_key wanted, present_value omitted: keys come from the present
 * buffer, values from past + biased copy (two segments each). Tolerance:
 * float64 numpy reference, float rounding only. */
Test(mha, model_with_present_key_only)
{
    for (size_t threads = 1; threads <= 2; threads++) {
        qkv_session_options opts;
        qkv_session_options_init(&opts);
        opts.threads = threads;
        qkv_session *s;
        qkv_context *c;
        qkv_error err;
        char path[128];
        cr_assert_eq(qkv_session_create(tu_data("attention/mha_present_key.onnx"), &opts, &s, &err),
                     QKV_OK, "%s", err.message);
        cr_assert_eq(qkv_context_create(s, &c, &err), QKV_OK, "%s", err.message);
        qkv_tensor in[7];
        for (size_t k = 0; k < 7; k++) {
            snprintf(path, sizeof path, "attention/mha_present_key_input_%zu.pb", k);
            tu_read_pb(tu_data(path), &in[k]);
        }
        cr_assert_eq(qkv_run(c, in, 7, &err), QKV_OK, "%s", err.message);
        for (size_t k = 0; k < 2; k++) {
            qkv_tensor want;
            snprintf(path, sizeof path, "attention/mha_present_key_output_%zu.pb", k);
            tu_read_pb(tu_data(path), &want);
            tu_assert_close(qkv_context_output(c, k), &want, 1e-4f, 1e-5f);
            qkv_tensor_data_free(&want);
        }
        for (size_t k = 0; k < 7; k++)
            qkv_tensor_data_free(&in[k]);
        qkv_context_destroy(c);
        qkv_session_destroy(s);
    }
}
