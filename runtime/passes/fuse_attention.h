/*
 * fuse_attention.h - what the files of the attention fusion share (private
 * to runtime/passes/fuse_attention*.c; the pass itself is declared in
 * passes.h):
 *
 *   fuse_attention.c          the pass: what it matches, when, and its driver
 *   fuse_attention_match.c    recognising an attention core from its Q Kᵀ product
 *   fuse_attention_mask.c     the mask and bias terms: recognised, then rebuilt
 *                             as one attn_mask
 *   fuse_attention_heads.c    heads split and merged by Transposes, read as
 *                             3-D views instead
 *   fuse_attention_build.c    adding named values, constants and nodes (the builder)
 *   fuse_attention_rewrite.c  replacing a matched core by an Attention node
 *
 * A match (attn_match) is found on the graph without changing it; the
 * rewrite then changes it, or leaves it as it was.
 */
#ifndef QKV_FUSE_ATTENTION_H
#define QKV_FUSE_ATTENTION_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "ir.h"
#include "qkv.h"
#include "registry.h"

enum { MAX_TERMS = 4, MAX_CHAIN = 48, MAX_NEW = 40 };

/* Finite fills at or below this make masked scores exactly the fill. */
#define FILL_LIMIT (-1e30)

/* The ops a rewrite may create, and the opsets they are created with. */
#define OPSET_TRANSPOSE 13
#define OPSET_UNSQUEEZE 13
#define OPSET_NOT 1
#define OPSET_WHERE 16
#define OPSET_ADD 14
#define OPSET_EXPAND 13
#define OPSET_RESHAPE 14
#define OPSET_SHAPE 15
#define OPSET_CONCAT 13

typedef enum term_kind {
    TERM_ADD,        /* scores + value (float) */
    TERM_KEEP_TRUE,  /* Where(value, scores, fill) */
    TERM_KEEP_FALSE, /* Where(value, fill, scores) */
    TERM_SPLIT_ADD   /* Reshape(Reshape(scores, split) + value, merge) */
} term_kind;

typedef struct mask_term {
    term_kind kind;
    int32_t value; /* TERM_ADD*: the float mask; else the Where's bool condition */
    float fill;    /* Where: -inf or a finite value <= FILL_LIMIT */
    int32_t split; /* TERM_SPLIT_ADD: the shape values of the two Reshapes */
    int32_t merge;
} mask_term;

typedef struct attn_match {
    int32_t rank;  /* of the scores: 3, 4, or 5 (then run as 4-D, batch dims merged) */
    int32_t q, v;  /* Q (.., Sq, D) and V (.., T, Dv) as Attention reads them */
    int32_t k_src; /* K = Transpose(k_src, k_perm) if k_transpose, else k_src */
    bool k_transpose;
    int64_t k_perm[QKV_MAX_RANK];
    double scale;
    bool causal;
    size_t n_terms;
    mask_term terms[MAX_TERMS];
    int32_t scores; /* S0: its static dims give (Sq, T) */
    int32_t out;    /* Y: produced by Attention after the rewrite */
    /* Heads split by Transposes, read without them: Q, K and V are
     * Transpose(x, head perm) of x (.., S, H, D) (rank 3: (S, N, D), the N
     * "batches" being heads), and Y's only reader is the Transpose back to
     * (.., S, H, Dv). Attention then reads x viewed as 3-D (B, S, H*D)
     * with H heads and its 3-D output, viewed as (.., S, H, Dv), replaces
     * that Transpose's output y_merged. */
    bool heads_3d;
    int32_t q_split, k_split, v_split; /* the x of Q, K and V */
    int32_t y_merged;
    int64_t heads, head_dim, head_dim_v;
    size_t n_chain;
    int32_t chain[MAX_CHAIN]; /* the nodes replaced */
    char anchor[200];         /* the Softmax's name, the stem of new names */
} attn_match;

/* ---- matching (fuse_attention_match.c, fuse_attention_mask.c, fuse_attention_heads.c) - */

/* Value v is float32 of rank `rank` (v >= 0). */
bool qkv_fuse_attn_is_f32(const qkv_ir_graph *g, int32_t v, int32_t rank);

/* The value of a one-element float32 constant of rank <= max_rank, or of
 * Sqrt of one (left when constant folding is off); false for anything else. */
bool qkv_fuse_attn_scalar_of(const qkv_ir_graph *g, int32_t v, int32_t max_rank, double *out);

/* Appends node to m's chain of replaced nodes; false when the chain is full. */
bool qkv_fuse_attn_add_chain(attn_match *m, int32_t node);

/* Tries to match an attention core whose Q Kᵀ product is node `qk_idx` (a
 * MatMul, or an Einsum "Pid,Pjd->Pij"). Fills *m and returns true on a
 * match; the graph is not changed. */
bool qkv_fuse_attn_match(const qkv_ir_graph *g, int32_t qk_idx, attn_match *m);

/*
 * When node c, reading the scores value cur (rank m->rank), is a mask op
 * (Add of a float mask, Where with a bool condition and a -inf or finite
 * <= FILL_LIMIT fill, or the Swin split-Add-merge Reshapes) that fits the
 * scores: records its terms in m (the split's nodes also in m's chain; c
 * itself the caller has added) and returns the value it gives; else -1.
 */
int32_t qkv_fuse_attn_match_mask_op(const qkv_ir_graph *g, attn_match *m, int32_t c, int32_t cur);

/* Sets m->heads_3d (and its fields) when Q, K, V and Y of the matched core
 * m are transposes of head-split tensors that Attention can read as 3-D
 * views instead (see attn_match), adding Y's Transpose to m's chain. */
void qkv_fuse_attn_match_heads_3d(const qkv_ir_graph *g, attn_match *m);

/* Removes from m's terms the constant ones that are exactly the top-left
 * causal pattern for the scores' static (Sq, T), setting m->causal. */
void qkv_fuse_attn_take_causal(const qkv_ir_graph *g, attn_match *m);

/* With rank-5 scores (run as 4-D Attention over the merged batch dims):
 * every mask aligns with the 4-D scores as it did with the 5-D ones, i.e.
 * its dim for the second batch dim (if it has one) is 1. */
bool qkv_fuse_attn_masks_merge(const qkv_ir_graph *g, const attn_match *m);

/* ---- building (fuse_attention_build.c, fuse_attention_mask.c) ------------------- */

/* The nodes a rewrite adds, named "STEM/role" (STEM the match's anchor). */
typedef struct attn_builder {
    qkv_ir_graph *g;
    const qkv_registry *reg;
    const char *stem;
    size_t n_new;
    int32_t new_nodes[MAX_NEW];
    qkv_error *err;
} attn_builder;

/* Sets b->err to "attention fusion at node 'STEM': out of memory" and
 * returns QKV_ERR_OUT_OF_MEMORY. */
qkv_status qkv_fuse_attn_oom(attn_builder *b);

/* A new value named "STEM/role" (or "STEM/role_N" if taken); -1 when out of
 * memory. */
int32_t qkv_fuse_attn_new_value(attn_builder *b, const char *role, qkv_value_kind kind);

/* A new constant "STEM/role" holding `bytes` of data (copied), of the given
 * type and shape; -1 when out of memory. */
int32_t qkv_fuse_attn_new_const(attn_builder *b, const char *role, qkv_dtype dtype, int32_t rank,
                                const int64_t *dims, const void *data, size_t bytes);

/* A new node "STEM/role" of ai.onnx op `op` with the given inputs and one
 * output: a new value (returned through *out when not NULL), or the
 * existing value `out_value` when that is >= 0. Recorded in b->new_nodes;
 * its kernel is chosen later. Returns the node index, -1 when out of memory
 * or when b already holds MAX_NEW nodes. */
int32_t qkv_fuse_attn_new_node(attn_builder *b, const char *role, const char *op, int64_t opset,
                               const int32_t *inputs, size_t n_inputs, int32_t out_value,
                               int32_t *out);

/* Drops b's new nodes after a failure: the graph is the original again. */
void qkv_fuse_attn_roll_back(attn_builder *b);

/* Can every node that building m's mask needs be run by reg? */
bool qkv_fuse_attn_mask_kernels_available(const qkv_registry *reg, const attn_match *m);

/* Builds the attn_mask value of m with b (-1: none). *failed on out of
 * memory (the nodes built so far stay in b, for qkv_fuse_attn_roll_back). */
int32_t qkv_fuse_attn_build_mask(attn_builder *b, const attn_match *m, bool *failed);

/* ---- rewriting (fuse_attention_rewrite.c) --------------------------------------- */

/* reg has a kernel for ai.onnx op `op` at `opset`. */
bool qkv_fuse_attn_have(const qkv_registry *reg, const char *op, int64_t opset);

/* Can every node the rewrite of m needs be run by reg? */
bool qkv_fuse_attn_kernels_available(const qkv_registry *reg, const attn_match *m);

/*
 * Replaces the core matched as m by an Attention node (with the Transpose,
 * mask and view nodes it needs), removes the replaced nodes and the ones
 * only they used, and finalizes g. Errors: QKV_ERR_OUT_OF_MEMORY; a new
 * node's kernel failing init (its status, message prefixed "attention
 * fusion: "). On an error before the replaced nodes go, g is as it was.
 */
qkv_status qkv_fuse_attn_rewrite(qkv_ir_graph *g, const qkv_registry *reg, const attn_match *m,
                                 qkv_error *err);

#endif /* QKV_FUSE_ATTENTION_H */
