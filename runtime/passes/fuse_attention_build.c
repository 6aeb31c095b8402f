/*
 * fuse_attention_build.c - the builder the attention rewrite adds its
 * values, constants and nodes with: every name is "STEM/role" (STEM the
 * matched Softmax's name, so a fused graph says where each node came
 * from), every node is recorded so that a failure can drop them all and
 * leave the graph as it was. The graph primitives are pass_util's.
 */
#include <stdio.h>

#include "error.h"
#include "fuse_attention.h"
#include "pass_util.h"

qkv_status qkv_fuse_attn_oom(attn_builder *b)
{
    return qkv_error_set(b->err, QKV_ERR_OUT_OF_MEMORY,
                         "attention fusion at node '%s': out of memory", b->stem);
}

int32_t qkv_fuse_attn_new_value(attn_builder *b, const char *role, qkv_value_kind kind)
{
    char name[320];
    snprintf(name, sizeof name, "%s/%s", b->stem, role);
    return qkv_pass_add_value(b->g, name, kind);
}

int32_t qkv_fuse_attn_new_const(attn_builder *b, const char *role, qkv_dtype dtype, int32_t rank,
                                const int64_t *dims, const void *data, size_t bytes)
{
    char name[320];
    snprintf(name, sizeof name, "%s/%s", b->stem, role);
    return qkv_pass_add_const(b->g, name, dtype, rank, dims, data, bytes);
}

int32_t qkv_fuse_attn_new_node(attn_builder *b, const char *role, const char *op, int64_t opset,
                               const int32_t *inputs, size_t n_inputs, int32_t out_value,
                               int32_t *out)
{
    if (b->n_new == MAX_NEW)
        return -1;
    char name[320];
    snprintf(name, sizeof name, "%s/%s", b->stem, role);
    int32_t o = out_value;
    if (o < 0 && (o = qkv_fuse_attn_new_value(b, role, QKV_VALUE_ACTIVATION)) < 0)
        return -1;
    int32_t idx = qkv_pass_add_node(b->g, name, op, "", opset, inputs, n_inputs, o);
    if (idx < 0)
        return -1;
    b->new_nodes[b->n_new++] = idx;
    if (out)
        *out = o;
    return idx;
}

void qkv_fuse_attn_roll_back(attn_builder *b)
{
    for (size_t k = 0; k < b->n_new; k++)
        qkv_pass_kill_node(&b->g->nodes[b->new_nodes[k]]);
    qkv_graph_finalize(b->g, NULL);
}
