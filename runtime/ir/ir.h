/*
 * ir.h - the graph IR every stage after the loader works on.
 *
 * Shape inference, rewrite passes, the planner and the executor see only
 * these structs, never protobuf ones. A graph owns its values, nodes and
 * constant payloads; a value is referred to by its index in graph->values
 * (int32_t, -1 = none), a node by its index in graph->nodes.
 *
 * Mutation (passes): add values/nodes with the functions below, mark nodes
 * dead, then call qkv_graph_finalize() to drop dead nodes, rebuild
 * producer/consumer links and the topological order.
 */
#ifndef QKV_IR_H
#define QKV_IR_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "qkv.h"
#include "qkv_plugin.h" /* the kernel descriptors a node points at */

typedef enum qkv_value_kind {
    QKV_VALUE_ACTIVATION = 0, /* produced by a node */
    QKV_VALUE_INPUT = 1,      /* a runtime graph input */
    QKV_VALUE_CONSTANT = 2,   /* an initializer (or a folded value): data known */
    QKV_VALUE_OUTER = 3       /* in a subgraph: a value of an enclosing graph */
} qkv_value_kind;

typedef struct qkv_ir_value {
    char *name;
    qkv_value_kind kind;
    /* type and shape as declared (or inferred); rank -1 unknown, dims[k] -1 unknown */
    qkv_dtype dtype;
    int32_t rank;
    int64_t dims[QKV_MAX_RANK];
    char *dim_params[QKV_MAX_RANK]; /* symbolic dim names (owned) or NULL */
    /* QKV_VALUE_CONSTANT: the payload. Owned (free(); for STRING each element
     * too) unless `borrowed` (then it points into another object of the graph).
     * `mapped` (implies borrowed): it points into one of graph->mappings, a
     * read-only private file mapping, aligned for its element type. */
    void *data;
    size_t data_bytes;
    bool borrowed;
    bool mapped;
    /* the constant's data was released after every reader packed its own
     * copy (runtime/passes/prepack.c): data NULL, dtype and shape still valid */
    bool packed;
    /* QKV_VALUE_OUTER: the value's index in graph->parent */
    int32_t outer_id;
    bool is_output;     /* a graph output */
    int32_t producer;   /* node index, -1 for inputs, constants and outer values */
    size_t n_consumers; /* one entry per (node, input slot) use */
    int32_t *consumers; /* node indices */
    /* a tensor, or a sequence/optional whose element type is dtype above
     * (rank -1: sequence elements may differ in shape); declared by the
     * model's TypeProto, inferred for node outputs */
    qkv_type_kind type_kind;
} qkv_ir_value;

struct qkv_ir_graph;

typedef struct qkv_ir_attr {
    char *name;
    qkv_attr_type type;
    int64_t i;
    float f;
    char *s; /* STRING: NUL-terminated (owned); s_len excludes the NUL */
    size_t s_len;
    size_t n;                     /* element count of the list types (1 for TENSOR/GRAPH) */
    int64_t *ints;                /* INTS */
    float *floats;                /* FLOATS */
    char **strings;               /* STRINGS */
    qkv_tensor *tensors;          /* TENSOR (n = 1) / TENSORS; data owned by the attribute */
    struct qkv_ir_graph **graphs; /* GRAPH (n = 1) / GRAPHS; owned */
} qkv_ir_attr;

typedef struct qkv_ir_node {
    char *name; /* never NULL; "" if the model gave none */
    char *op_type;
    char *domain;  /* "" for ai.onnx */
    int64_t opset; /* the opset import for `domain` (its function's for an inlined node) */
    size_t n_inputs;
    int32_t *inputs; /* value ids, -1 for an omitted optional input */
    size_t n_outputs;
    int32_t *outputs; /* value ids, -1 for an omitted optional output */
    /* values of enclosing graphs that subgraph attributes of this node read:
     * they order the node after their producers and keep them alive. */
    size_t n_implicit;
    int32_t *implicit_inputs;
    size_t n_attrs;
    qkv_ir_attr *attrs;
    bool dead; /* marked by a pass; removed by qkv_graph_finalize */
    /* set by the session: the chosen kernel (owned by the session's registry)
     * and its state from init (a pass that kills a node destroys the state) */
    const qkv_kernel *kernel;
    void *kernel_state;
    /* set by the prepack step: bit k when the kernel keeps its own copy of
     * constant input k (k < 64) and no longer reads the original's data */
    uint64_t packed_inputs;
} qkv_ir_node;

typedef struct qkv_strmap qkv_strmap;

/* A read-only MAP_PRIVATE file mapping (the model file, an external data
 * file) that `mapped` constants point into. */
typedef struct qkv_ir_mapping {
    void *addr;
    size_t bytes;
} qkv_ir_mapping;

typedef struct qkv_ir_graph {
    char *name;
    const struct qkv_ir_graph *parent; /* enclosing graph of a subgraph, else NULL */
    /* set by the session for a subgraph: its index in the session's table of
     * subgraphs (runtime/subgraphs.h); -1 for the main graph */
    int32_t body_id;
    size_t n_values, cap_values;
    qkv_ir_value *values;
    size_t n_nodes, cap_nodes;
    qkv_ir_node *nodes;
    size_t n_inputs;
    int32_t *inputs; /* runtime inputs in declaration order (initializers excluded) */
    size_t n_outputs;
    int32_t *outputs;
    size_t n_order;
    int32_t *order;    /* node indices in a topological order (valid after finalize) */
    qkv_strmap *names; /* value name -> id */
    /* file mappings the mapped constants of this graph and its subgraphs
     * point into: owned, unmapped by qkv_graph_destroy after the values */
    size_t n_mappings;
    qkv_ir_mapping *mappings;
} qkv_ir_graph;

typedef struct qkv_ir_opset {
    char *domain; /* "" for ai.onnx */
    int64_t version;
} qkv_ir_opset;

typedef struct qkv_ir_prop {
    char *key;
    char *value;
} qkv_ir_prop;

/* The model: struct qkv_model of the public API. */
struct qkv_model {
    int64_t ir_version;
    int64_t model_version;
    char *producer_name;
    char *producer_version;
    char *domain;
    char *doc_string;
    size_t n_opsets;
    qkv_ir_opset *opsets;
    size_t n_props;
    qkv_ir_prop *props;
    qkv_ir_graph *graph;
};

/* ---- graph construction and queries (runtime/ir/ir_graph.c) ---------------- */

/* An empty graph. NULL when out of memory. */
qkv_ir_graph *qkv_graph_create(const char *name, const qkv_ir_graph *parent);
/* Frees the graph, its values, nodes, payloads and subgraphs. NULL: no-op. */
void qkv_graph_destroy(qkv_ir_graph *graph);

/* Adds a value named `name` (copied) of `kind` with unknown type. Returns its
 * id, or -1 when out of memory or when the name exists already (then
 * *duplicate is set if not NULL). Pointers into graph->values are invalidated. */
int32_t qkv_graph_add_value(qkv_ir_graph *graph, const char *name, qkv_value_kind kind,
                            bool *duplicate);
/* The id of the value named `name` in this graph only, or -1. */
int32_t qkv_graph_find_value(const qkv_ir_graph *graph, const char *name);

/* Adds a node (name, op_type, domain copied) with room for the given numbers
 * of inputs and outputs (all -1) and no attributes. Returns its index or -1
 * when out of memory. Pointers into graph->nodes are invalidated. */
int32_t qkv_graph_add_node(qkv_ir_graph *graph, const char *name, const char *op_type,
                           const char *domain, int64_t opset, size_t n_inputs, size_t n_outputs);

/* Drops dead nodes, rebuilds producer/consumer links and the topological
 * order. Fails with QKV_ERR_INVALID_MODEL when a value is produced twice, a
 * node reads a value nothing produces, or the nodes form a cycle; the message
 * names the node and the value. */
qkv_status qkv_graph_finalize(qkv_ir_graph *graph, qkv_error *err);

/* The most inputs and the most outputs any node of the graph has (at least 1
 * each): the size of per-node scratch arrays. */
void qkv_graph_max_arity(const qkv_ir_graph *graph, size_t *max_inputs, size_t *max_outputs);

/* How every message names a node: "node 'NAME' (OP)", or "node #INDEX (OP)"
 * when it has no name (INDEX: its position in the file; SIZE_MAX when not
 * known, which prints "node (OP)"). OP is "DOMAIN.OP_TYPE-VERSION", without
 * "DOMAIN." for ai.onnx (domain NULL or "") and without "-VERSION" when
 * version <= 0. Returns buf. */
const char *qkv_node_format(char *buf, size_t cap, const char *name, size_t index,
                            const char *domain, const char *op_type, int64_t version);

/* Releases a constant's payload: frees it when owned, drops the pages of a
 * mapped one (qkv_ir_drop_pages), forgets a borrowed one; then data is NULL
 * and data_bytes 0 (dtype and shape stay). No-op when data is NULL. */
void qkv_value_release_data(qkv_ir_value *v);

/* Drops the resident pages wholly inside [data, data+bytes) of a read-only
 * private file mapping (madvise MADV_DONTNEED): RSS falls, and a later read
 * faults the same bytes in again from the file. Partial pages at either end
 * are kept (a neighbour may be using them). Never call it on anonymous or
 * writable memory. */
void qkv_ir_drop_pages(const void *data, size_t bytes);

/* True when the node has a GRAPH or GRAPHS attribute (If, Loop, Scan). */
bool qkv_node_has_subgraphs(const qkv_ir_node *node);

/* A graph's bound inputs, the tensors a run of it is given: its graph
 * inputs in declaration order, then (a subgraph) its OUTER values in value
 * id order. Returns their number; writes their value ids into ids when not
 * NULL (room for the returned count). */
size_t qkv_graph_bound_ids(const qkv_ir_graph *graph, int32_t *ids);

/* The attribute `name` of a node, or NULL. */
const qkv_ir_attr *qkv_node_attr(const qkv_ir_node *node, const char *name);
/* Frees what an attribute owns (not the struct itself). */
void qkv_attr_fini(qkv_ir_attr *attr);

/* The model's opset for `domain` ("" and "ai.onnx" are the same), or -1. */
int64_t qkv_model_opset_for(const struct qkv_model *model, const char *domain);

#endif /* QKV_IR_H */
