/*
 * Error paths of the com.microsoft contrib kernels (ops/ms_*.c), through the
 * kernel harness with shapes only (what the session's inference sees): each
 * bad attribute, shape or type is refused with the right status and a
 * message naming the input or attribute. The model-level errors (a session
 * that cannot be created) are in tests/test_contrib.c.
 */
#include <criterion/criterion.h>
#include <string.h>

#include "kernel_harness.h"
#include "qkv.h"

#define MS "com.microsoft"
#define MAX_IN 9

/* A tensor of known type and shape whose value is not known. */
static qkv_tensor shp(qkv_dtype t, int32_t rank, const int64_t *dims)
{
    qkv_tensor x;
    memset(&x, 0, sizeof x);
    x.dtype = t;
    x.rank = rank;
    if (rank > 0)
        memcpy(x.dims, dims, (size_t)rank * sizeof *dims);
    return x;
}

#define F32(...)                                                                                   \
    shp(QKV_DTYPE_FLOAT, (int32_t)(sizeof((int64_t[]){__VA_ARGS__}) / 8), (int64_t[]){__VA_ARGS__})
#define I32(...)                                                                                   \
    shp(QKV_DTYPE_INT32, (int32_t)(sizeof((int64_t[]){__VA_ARGS__}) / 8), (int64_t[]){__VA_ARGS__})
#define U8(...)                                                                                    \
    shp(QKV_DTYPE_UINT8, (int32_t)(sizeof((int64_t[]){__VA_ARGS__}) / 8), (int64_t[]){__VA_ARGS__})
#define S8(...)                                                                                    \
    shp(QKV_DTYPE_INT8, (int32_t)(sizeof((int64_t[]){__VA_ARGS__}) / 8), (int64_t[]){__VA_ARGS__})
#define SCALAR(t) shp((t), 0, NULL)

/* Infers node n on the first n_given inputs (the other slots omitted) and
 * expects status `want` with `needle` in the message; destroys n. */
static void expect(kh_node *n, const qkv_tensor *given, size_t n_given, size_t n_slots,
                   qkv_status want, const char *needle)
{
    qkv_tensor in[MAX_IN], out[4];
    cr_assert(n_slots <= MAX_IN);
    for (size_t k = 0; k < n_slots; k++) {
        in[k] = k < n_given ? given[k] : shp(QKV_DTYPE_UNDEFINED, -1, NULL);
        if (in[k].dtype == QKV_DTYPE_UNDEFINED)
            kh_omit_input(n, k);
    }
    qkv_error err = {0};
    qkv_status st = kh_infer(n, in, out, &err);
    cr_assert_eq(st, want, "status %d, expected %d: %s", st, want, err.message);
    cr_assert(strstr(err.message, needle), "message '%s' lacks '%s'", err.message, needle);
    kh_node_destroy(n);
}

#define NONE shp(QKV_DTYPE_UNDEFINED, -1, NULL)

/* ---- Attention ------------------------------------------------------------------ */

static kh_node *attention(int64_t heads, size_t n_out)
{
    kh_node *n = kh_node_create_in(MS, "Attention", 1, 7, n_out);
    if (heads)
        kh_attr_int(n, "num_heads", heads);
    return n;
}

#define X F32(2, 5, 16)
#define W F32(16, 48)
#define B F32(48)

Test(ms_attention_errors, num_heads_missing)
{
    qkv_tensor in[] = {X, W, B};
    expect(attention(0, 1), in, 3, 7, QKV_ERR_INVALID_MODEL, "num_heads=0 must be given");
}

Test(ms_attention_errors, rotary_and_shared_buffers_unsupported)
{
    qkv_tensor in[] = {X, W, B};
    kh_node *n = attention(2, 1);
    kh_attr_int(n, "do_rotary", 1);
    expect(n, in, 3, 7, QKV_ERR_UNSUPPORTED, "do_rotary");
    n = attention(2, 1);
    kh_attr_int(n, "past_present_share_buffer", 1);
    expect(n, in, 3, 7, QKV_ERR_UNSUPPORTED, "past_present_share_buffer");
}

Test(ms_attention_errors, nan_scale)
{
    qkv_tensor in[] = {X, W, B};
    kh_node *n = attention(2, 1);
    kh_attr_float(n, "scale", __builtin_nanf(""));
    expect(n, in, 3, 7, QKV_ERR_INVALID_MODEL, "must not be NaN");
}

Test(ms_attention_errors, qkv_hidden_sizes_count_and_divisibility)
{
    qkv_tensor in[] = {X, W, B};
    kh_node *n = attention(2, 1);
    kh_attr_ints(n, "qkv_hidden_sizes", (int64_t[]){16, 16}, 2);
    expect(n, in, 3, 7, QKV_ERR_INVALID_MODEL, "has 2 values, expected 3");
    n = attention(4, 1);
    kh_attr_ints(n, "qkv_hidden_sizes", (int64_t[]){16, 16, 10}, 3);
    expect(n, in, 3, 7, QKV_ERR_INVALID_MODEL, "qkv_hidden_sizes[2]=10 is not a positive multiple");
}

Test(ms_attention_errors, weights_not_three_blocks)
{
    qkv_tensor in[] = {X, F32(16, 47), F32(47)};
    expect(attention(2, 1), in, 3, 7, QKV_ERR_SHAPE, "input 1 'weights' has 47 columns");
}

Test(ms_attention_errors, weights_rows_differ_from_input_width)
{
    qkv_tensor in[] = {X, F32(12, 48), B};
    expect(attention(2, 1), in, 3, 7, QKV_ERR_SHAPE,
           "input 1 'weights' has shape [12,48]: dim 0 should be 16");
}

Test(ms_attention_errors, input_of_rank_two)
{
    qkv_tensor in[] = {F32(10, 16), W, B};
    expect(attention(2, 1), in, 3, 7, QKV_ERR_SHAPE,
           "input 0 'input' has shape [10,16], expected "
           "rank 3");
}

Test(ms_attention_errors, past_with_other_head_count)
{
    qkv_tensor in[] = {X, W, B, NONE, F32(2, 2, 4, 3, 8)};
    expect(attention(2, 2), in, 5, 7, QKV_ERR_SHAPE,
           "input 4 'past' has shape [2,2,4,3,8]: dim 2 should be 2");
}

Test(ms_attention_errors, present_with_v_wider_than_k)
{
    qkv_tensor in[] = {X, F32(16, 56), F32(56)};
    kh_node *n = attention(2, 2);
    kh_attr_ints(n, "qkv_hidden_sizes", (int64_t[]){16, 16, 24}, 3);
    expect(n, in, 3, 7, QKV_ERR_SHAPE, "past and present need equal K and V hidden sizes");
}

Test(ms_attention_errors, attention_bias_of_wrong_shape)
{
    qkv_tensor in[] = {X, W, B, NONE, NONE, F32(2, 3, 5, 5)};
    expect(attention(2, 1), in, 6, 7, QKV_ERR_SHAPE,
           "input 5 'attention_bias' has shape [2,3,5,5]");
}

Test(ms_attention_errors, past_sequence_length_unsupported)
{
    qkv_tensor in[] = {X, W, B, NONE, NONE, NONE, SCALAR(QKV_DTYPE_INT32)};
    expect(attention(2, 1), in, 7, 7, QKV_ERR_UNSUPPORTED, "input 6 'past_sequence_length'");
}

Test(ms_attention_errors, megatron_mask_smaller_than_the_keys)
{
    qkv_tensor in[] = {X, W, B, I32(2, 1, 4, 4)};
    expect(attention(2, 1), in, 4, 7, QKV_ERR_SHAPE, "M >= total sequence length 5");
}

Test(ms_attention_errors, key_lengths_of_another_batch)
{
    qkv_tensor in[] = {X, W, B, I32(3)};
    expect(attention(2, 1), in, 4, 7, QKV_ERR_SHAPE, "input 3 'mask_index' has shape [3]");
}

/* ---- QAttention ------------------------------------------------------------------ */

static kh_node *qattention(void)
{
    kh_node *n = kh_node_create_in(MS, "QAttention", 1, 9, 1);
    kh_attr_int(n, "num_heads", 2);
    return n;
}

Test(ms_qattention_errors, input_scale_not_a_scalar)
{
    qkv_tensor in[] = {U8(2, 5, 16), S8(16, 48), B, F32(2), SCALAR(QKV_DTYPE_FLOAT)};
    expect(qattention(), in, 5, 9, QKV_ERR_SHAPE, "input 3 'input_scale' has shape [2]");
}

Test(ms_qattention_errors, weight_scale_of_another_width)
{
    qkv_tensor in[] = {U8(2, 5, 16), S8(16, 48), B, SCALAR(QKV_DTYPE_FLOAT), F32(47)};
    expect(qattention(), in, 5, 9, QKV_ERR_SHAPE, "input 4 'weight_scale' has shape [47]");
}

Test(ms_qattention_errors, zero_point_of_another_type)
{
    qkv_tensor in[] = {U8(2, 5, 16),
                       S8(16, 48),
                       B,
                       SCALAR(QKV_DTYPE_FLOAT),
                       SCALAR(QKV_DTYPE_FLOAT),
                       NONE,
                       SCALAR(QKV_DTYPE_UINT8),
                       SCALAR(QKV_DTYPE_UINT8)};
    expect(qattention(), in, 8, 9, QKV_ERR_TYPE, "input 7 'weight_zero_point' has type uint8");
}

Test(ms_qattention_errors, past_not_float)
{
    qkv_tensor in[] = {
        U8(2, 5, 16), S8(16, 48), B,    SCALAR(QKV_DTYPE_FLOAT), SCALAR(QKV_DTYPE_FLOAT),
        NONE,         NONE,       NONE, S8(2, 2, 2, 3, 8)};
    expect(qattention(), in, 9, 9, QKV_ERR_TYPE, "input 8 'past' has type int8");
}

/* ---- DynamicQuantizeMatMul ------------------------------------------------------------ */

static kh_node *dqmm(void) { return kh_node_create_in(MS, "DynamicQuantizeMatMul", 1, 5, 1); }

Test(ms_dqmm_errors, b_of_rank_three_unsupported)
{
    qkv_tensor in[] = {F32(4, 16), S8(2, 16, 8), SCALAR(QKV_DTYPE_FLOAT)};
    expect(dqmm(), in, 3, 5, QKV_ERR_UNSUPPORTED, "only a 2-D (K, N) B");
}

Test(ms_dqmm_errors, k_differs)
{
    qkv_tensor in[] = {F32(4, 15), S8(16, 8), SCALAR(QKV_DTYPE_FLOAT)};
    expect(dqmm(), in, 3, 5, QKV_ERR_SHAPE, "K differs (15 vs 16)");
}

Test(ms_dqmm_errors, scale_zero_point_and_bias_shapes)
{
    qkv_tensor in[] = {F32(4, 16), S8(16, 8), F32(5)};
    expect(dqmm(), in, 3, 5, QKV_ERR_SHAPE, "input 2 'b_scale' has shape [5]");
    qkv_tensor in2[] = {F32(4, 16), S8(16, 8), F32(8), S8(8), F32(7)};
    expect(dqmm(), in2, 5, 5, QKV_ERR_SHAPE, "input 4 'bias' has shape [7]");
}

Test(ms_dqmm_errors, zero_point_of_another_type)
{
    qkv_tensor in[] = {F32(4, 16), S8(16, 8), F32(8), U8(8)};
    expect(dqmm(), in, 4, 5, QKV_ERR_TYPE, "input 3 'b_zero_point' has type uint8");
}

Test(ms_dqmm_errors, scalar_a)
{
    qkv_tensor in[] = {SCALAR(QKV_DTYPE_FLOAT), S8(16, 8), SCALAR(QKV_DTYPE_FLOAT)};
    expect(dqmm(), in, 3, 5, QKV_ERR_SHAPE, "input 0 'A' is a scalar");
}

/* ---- SkipLayerNormalization, EmbedLayerNormalization, FastGelu -------------------------- */

Test(ms_layernorm_errors, skip_of_another_shape)
{
    qkv_tensor in[] = {F32(2, 4, 16), F32(2, 3, 16), F32(16)};
    expect(kh_node_create_in(MS, "SkipLayerNormalization", 1, 5, 1), in, 3, 5, QKV_ERR_SHAPE,
           "input 1 'skip' has shape [2,3,16]");
}

Test(ms_layernorm_errors, input_of_rank_four)
{
    qkv_tensor in[] = {F32(1, 2, 4, 16), F32(1, 2, 4, 16), F32(16)};
    expect(kh_node_create_in(MS, "SkipLayerNormalization", 1, 5, 1), in, 3, 5, QKV_ERR_SHAPE,
           "input 0 'input' has shape [1,2,4,16]");
}

Test(ms_layernorm_errors, skip_beta_and_bias_lengths)
{
    qkv_tensor in[] = {F32(2, 4, 16), F32(2, 4, 16), F32(16), F32(8)};
    expect(kh_node_create_in(MS, "SkipLayerNormalization", 1, 5, 1), in, 4, 5, QKV_ERR_SHAPE,
           "input 3 'beta' has shape [8]");
    qkv_tensor in2[] = {F32(2, 4, 16), F32(2, 4, 16), F32(16), NONE, F32(2, 8)};
    expect(kh_node_create_in(MS, "SkipLayerNormalization", 1, 5, 1), in2, 5, 5, QKV_ERR_SHAPE,
           "input 4 'bias' has shape [2,8]");
}

static kh_node *embed(void) { return kh_node_create_in(MS, "EmbedLayerNormalization", 1, 9, 2); }

Test(ms_layernorm_errors, embed_segment_ids_without_table)
{
    qkv_tensor in[] = {I32(2, 6), I32(2, 6), F32(30, 16), F32(10, 16), NONE, F32(16), F32(16)};
    expect(embed(), in, 7, 9, QKV_ERR_INVALID_MODEL, "must be given together");
}

Test(ms_layernorm_errors, embed_mask_of_another_shape)
{
    qkv_tensor in[] = {I32(2, 6), NONE,    F32(30, 16), F32(10, 16),
                       NONE,      F32(16), F32(16),     I32(2, 5)};
    expect(embed(), in, 8, 9, QKV_ERR_SHAPE, "input 7 'mask' has shape [2,5]");
}

Test(ms_layernorm_errors, embed_tables_of_another_hidden_size)
{
    qkv_tensor in[] = {I32(2, 6), NONE, F32(30, 16), F32(10, 12), NONE, F32(16), F32(16)};
    expect(embed(), in, 7, 9, QKV_ERR_SHAPE, "input 3 'position_embedding' has shape [10,12]");
}

Test(ms_layernorm_errors, embed_position_ids_of_another_batch)
{
    qkv_tensor in[] = {I32(2, 6), NONE,    F32(30, 16), F32(10, 16), NONE,
                       F32(16),   F32(16), NONE,        I32(3, 6)};
    expect(embed(), in, 9, 9, QKV_ERR_SHAPE, "input 8 'position_ids' has shape [3,6]");
}

Test(ms_layernorm_errors, embed_ids_of_rank_three)
{
    qkv_tensor in[] = {I32(2, 6, 1), NONE, F32(30, 16), F32(10, 16), NONE, F32(16), F32(16)};
    expect(embed(), in, 7, 9, QKV_ERR_SHAPE, "input 0 'input_ids' has shape [2,6,1]");
}

/* A sequence longer than the position table, found when the run sees it. */
Test(ms_layernorm_errors, embed_sequence_longer_than_position_table)
{
    int32_t ids[8] = {0};
    float word[3 * 4] = {0}, pos[2 * 4] = {0}, g[4] = {1, 1, 1, 1}, b[4] = {0};
    kh_node *n = kh_node_create_in(MS, "EmbedLayerNormalization", 1, 7, 1);
    kh_omit_input(n, 1);
    kh_omit_input(n, 4);
    qkv_tensor in[7] = {kh_tensor(QKV_DTYPE_INT32, 2, (int64_t[]){2, 4}, ids),
                        NONE,
                        kh_f32(2, (int64_t[]){3, 4}, word),
                        kh_f32(2, (int64_t[]){2, 4}, pos),
                        NONE,
                        kh_f32(1, (int64_t[]){4}, g),
                        kh_f32(1, (int64_t[]){4}, b)};
    qkv_tensor out[1];
    qkv_error err = {0};
    cr_assert_eq(kh_run(n, in, out, &err), QKV_ERR_INVALID_ARGUMENT, "%s", err.message);
    cr_assert(strstr(err.message, "sequence length 4 is longer than input 3 'position_embedding' "
                                  "(2 positions)"),
              "%s", err.message);
    kh_node_destroy(n);
}

Test(ms_gelu_errors, fast_gelu_bias_of_rank_two)
{
    qkv_tensor in[] = {F32(3, 10), F32(1, 10)};
    expect(kh_node_create_in(MS, "FastGelu", 1, 2, 1), in, 2, 2, QKV_ERR_SHAPE,
           "input 1 (bias) has shape [1,10]");
}
