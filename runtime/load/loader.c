/*
 * loader.c - ONNX ModelProto -> qkv_model (the graph IR of ir.h).
 *
 * Steps: map the file, pre-scan the wire format for hostile nesting
 * (loader_wire.c), cut the large initializer payloads out of a copy of the
 * bytes (loader_map.c), unpack that with protobuf-c, convert into the IR,
 * free the protobuf message. Large initializers of the main graph, inline or
 * external, stay in read-only file mappings that the graph owns (aligned ones
 * in place; others are copied and their pages dropped); other payloads move
 * from the message into the IR without a second copy (loader_tensor.c). A
 * model loaded from a caller's buffer copies every payload.
 *
 * Conversion of one graph, so that every name is known before it is used:
 *   1. initializers (CONSTANT values with their payload),
 *   2. graph inputs (INPUT values; an input that is also an initializer stays
 *      a CONSTANT: the IR<4 way of giving a constant a default),
 *   3. every node output (ACTIVATION values),
 *   4. graph outputs and value_info (types and shapes),
 *   5. the nodes: inputs by name; subgraph attributes are converted
 *      recursively, and a name a subgraph does not define is looked up in
 *      the enclosing graphs, becoming an OUTER value there and an implicit
 *      input of the node that owns the subgraph (at every level),
 *   6. qkv_graph_finalize: producers, consumers, cycles, topological order.
 * Before step 1, calls of model-local functions are replaced by copies of
 * their bodies (loader_functions.c), so inlined nodes are converted and
 * checked like any other.
 * On any error everything built so far is freed and *out is not touched.
 */
#include "loader.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "error.h"
#include "ir.h"
#include "onnx.pb-c.h"
#include "size_math.h"
#include "str_util.h"

/* The enclosing graphs of the one being converted, innermost first. */
typedef struct scope {
    qkv_ir_graph *graph;
    struct scope *parent;
    int depth; /* 0 for the main graph */
} scope;

typedef struct load_ctx {
    qkv_model *model; /* opset imports */
    const char *base_dir;
    qkv_loader_source *src;           /* file mappings for main-graph initializers, or NULL */
    const qkv_loader_inline *inlined; /* nodes inlined from functions, or NULL */
    qkv_error *err;                   /* never NULL */
} load_ctx;

static qkv_status convert_graph(load_ctx *cx, Onnx__GraphProto *gp, scope *parent,
                                qkv_ir_graph **out);

static qkv_status oom(load_ctx *cx)
{
    return qkv_error_set(cx->err, QKV_ERR_OUT_OF_MEMORY, "out of memory while loading the model");
}

/* Appends id to a malloc'd int32 array of n elements. */
static bool append_id(int32_t **arr, size_t *n, int32_t id)
{
    size_t bytes;
    if (qkv_add_overflow(*n, 1, &bytes) || qkv_mul_overflow(bytes, sizeof **arr, &bytes))
        return false;
    int32_t *p = realloc(*arr, bytes);
    if (!p)
        return false;
    p[(*n)++] = id;
    *arr = p;
    return true;
}

/*
 * Prepends "what: " to the message in err. When that would not fit, the
 * middle of the chain of contexts is elided ("what: ...: rest") so the reason
 * at the end of the message survives deep subgraph nesting.
 */
static void add_context(qkv_error *err, const char *what)
{
    size_t nw = strlen(what), nm = strlen(err->message);
    if (nw + 2 + nm < sizeof err->message) {
        qkv_error_prefix(err, "%s", what);
        return;
    }
    const char *sep = ": ...: ";
    size_t fixed = nw + strlen(sep);
    if (fixed + 16 >= sizeof err->message)
        return; /* keep the inner message as it is */
    size_t room = sizeof err->message - 1 - fixed;
    const char *tail = err->message + (nm - room);
    /* start the kept part after a ": " boundary when there is one */
    for (const char *p = err->message; (p = strstr(p, ": ")) != NULL; p += 2)
        if (p + 2 >= tail) {
            tail = p + 2;
            break;
        }
    char buf[QKV_ERROR_MESSAGE_BYTES];
    snprintf(buf, sizeof buf, "%s%s%s", what, sep, tail);
    memcpy(err->message, buf, sizeof buf);
}

/* ---- types -------------------------------------------------------------------- */

/*
 * The kind of a TypeProto (tensor, sequence(tensor), optional(tensor) or
 * optional(sequence(tensor))) and its innermost tensor type (NULL when not
 * given). Maps, sparse tensors and deeper nesting read as a tensor of
 * unknown type: a model declaring them still loads, and fails where a
 * kernel meets them.
 */
static void type_kind(const Onnx__TypeProto *tp, qkv_type_kind *kind,
                      const Onnx__TypeProto__Tensor **tensor)
{
    unsigned bits = 0;
    *kind = QKV_KIND_TENSOR;
    *tensor = NULL;
    if (tp && tp->value_case == ONNX__TYPE_PROTO__VALUE_OPTIONAL_TYPE) {
        bits |= QKV_KIND_OPTIONAL;
        tp = tp->optional_type ? tp->optional_type->elem_type : NULL;
    }
    if (tp && tp->value_case == ONNX__TYPE_PROTO__VALUE_SEQUENCE_TYPE) {
        bits |= QKV_KIND_SEQUENCE;
        tp = tp->sequence_type ? tp->sequence_type->elem_type : NULL;
    }
    if (tp && tp->value_case != ONNX__TYPE_PROTO__VALUE_TENSOR_TYPE &&
        tp->value_case != ONNX__TYPE_PROTO__VALUE__NOT_SET)
        return; /* a map or a sparse tensor */
    *kind = (qkv_type_kind)bits;
    *tensor = tp && tp->value_case == ONNX__TYPE_PROTO__VALUE_TENSOR_TYPE ? tp->tensor_type : NULL;
}

/*
 * Applies a declared TypeProto to value v: its kind, dtype (when `force` or
 * still unknown) and shape (when `force` or rank still unknown). A sequence
 * or optional gives its element type; the shape of a sequence's elements is
 * not kept (they may differ).
 */
static qkv_status apply_type(load_ctx *cx, qkv_ir_value *v, const Onnx__TypeProto *tp,
                             const char *what, bool force)
{
    if (!tp)
        return QKV_OK;
    qkv_type_kind kind;
    const Onnx__TypeProto__Tensor *tt;
    type_kind(tp, &kind, &tt);
    v->type_kind = kind;
    if (!tt)
        return QKV_OK;
    if (kind != QKV_KIND_TENSOR) {
        if (tt->has_elem_type && tt->elem_type > 0 && tt->elem_type < QKV_DTYPE_COUNT &&
            (force || v->dtype == QKV_DTYPE_UNDEFINED))
            v->dtype = (qkv_dtype)tt->elem_type;
        return QKV_OK;
    }
    if (tt->has_elem_type) {
        if (tt->elem_type < 0 || tt->elem_type >= QKV_DTYPE_COUNT)
            return qkv_error_set(cx->err, QKV_ERR_UNSUPPORTED, "%s: unknown element type %" PRId32,
                                 what, tt->elem_type);
        if (force || v->dtype == QKV_DTYPE_UNDEFINED)
            v->dtype = (qkv_dtype)tt->elem_type;
    }
    const Onnx__TensorShapeProto *sp = tt->shape;
    if (!sp)
        return QKV_OK; /* rank unknown */
    if (sp->n_dim > QKV_MAX_RANK)
        return qkv_error_set(cx->err, QKV_ERR_UNSUPPORTED, "%s: rank %zu exceeds the maximum %d",
                             what, sp->n_dim, QKV_MAX_RANK);
    for (size_t k = 0; k < sp->n_dim; k++) {
        const Onnx__TensorShapeProto__Dimension *dp = sp->dim[k];
        if (dp->value_case == ONNX__TENSOR_SHAPE_PROTO__DIMENSION__VALUE_DIM_VALUE &&
            dp->dim_value < 0)
            return qkv_error_set(cx->err, QKV_ERR_INVALID_MODEL,
                                 "%s: negative dim %" PRId64 " at axis %zu", what, dp->dim_value,
                                 k);
    }
    if (!force && v->rank >= 0)
        return QKV_OK;
    char *params[QKV_MAX_RANK] = {0};
    for (size_t k = 0; k < sp->n_dim; k++) {
        const Onnx__TensorShapeProto__Dimension *dp = sp->dim[k];
        if (dp->value_case == ONNX__TENSOR_SHAPE_PROTO__DIMENSION__VALUE_DIM_PARAM &&
            dp->dim_param && dp->dim_param[0] && !(params[k] = qkv_strdup(dp->dim_param))) {
            for (size_t j = 0; j < k; j++)
                free(params[j]);
            return oom(cx);
        }
    }
    for (int k = 0; k < QKV_MAX_RANK; k++) {
        free(v->dim_params[k]);
        v->dim_params[k] = params[k];
        v->dims[k] = -1;
    }
    v->rank = (int32_t)sp->n_dim;
    for (size_t k = 0; k < sp->n_dim; k++)
        if (sp->dim[k]->value_case == ONNX__TENSOR_SHAPE_PROTO__DIMENSION__VALUE_DIM_VALUE)
            v->dims[k] = sp->dim[k]->dim_value;
    return QKV_OK;
}

/* ---- name resolution across scopes ----------------------------------------------- */

/*
 * The id of `name` in s->graph: a local value, or else a value of an
 * enclosing graph, for which an OUTER value is created here (and, on the way,
 * in every intermediate graph). -1 when no graph defines the name; -2 when
 * out of memory.
 */
static int32_t resolve(scope *s, const char *name)
{
    int32_t id = qkv_graph_find_value(s->graph, name);
    if (id >= 0 || !s->parent)
        return id;
    int32_t pid = resolve(s->parent, name);
    if (pid < 0)
        return pid;
    id = qkv_graph_add_value(s->graph, name, QKV_VALUE_OUTER, NULL);
    if (id < 0)
        return -2;
    const qkv_ir_value *pv = &s->parent->graph->values[pid];
    qkv_ir_value *v = &s->graph->values[id];
    v->outer_id = pid;
    v->dtype = pv->dtype;
    v->rank = pv->rank;
    for (int k = 0; k < QKV_MAX_RANK; k++) {
        v->dims[k] = pv->dims[k];
        if (pv->dim_params[k] && !(v->dim_params[k] = qkv_strdup(pv->dim_params[k])))
            return -2; /* the value stays, freed with the graph */
    }
    return id;
}

/* ---- attributes ------------------------------------------------------------------ */

static const char *attr_type_name(int t)
{
    static const char *const names[] = {
        "UNDEFINED",      "FLOAT",      "INT",        "STRING",  "TENSOR", "GRAPH",
        "FLOATS",         "INTS",       "STRINGS",    "TENSORS", "GRAPHS", "SPARSE_TENSOR",
        "SPARSE_TENSORS", "TYPE_PROTO", "TYPE_PROTOS"};
    return t >= 0 && t < (int)(sizeof names / sizeof *names) ? names[t] : "unknown";
}

/* The attribute type of an IR<2 attribute without `type`, from the field set. */
static int guess_attr_type(const Onnx__AttributeProto *ap)
{
    if (ap->has_f)
        return QKV_ATTR_FLOAT;
    if (ap->has_i)
        return QKV_ATTR_INT;
    if (ap->has_s)
        return QKV_ATTR_STRING;
    if (ap->t)
        return QKV_ATTR_TENSOR;
    if (ap->g)
        return QKV_ATTR_GRAPH;
    if (ap->n_floats)
        return QKV_ATTR_FLOATS;
    if (ap->n_ints)
        return QKV_ATTR_INTS;
    if (ap->n_strings)
        return QKV_ATTR_STRINGS;
    if (ap->n_tensors)
        return QKV_ATTR_TENSORS;
    if (ap->n_graphs)
        return QKV_ATTR_GRAPHS;
    return QKV_ATTR_UNDEFINED;
}

static char *dup_bytes(const ProtobufCBinaryData *b)
{
    size_t n;
    if (qkv_add_overflow(b->len, 1, &n))
        return NULL;
    char *s = malloc(n);
    if (!s)
        return NULL;
    if (b->len)
        memcpy(s, b->data, b->len);
    s[b->len] = '\0';
    return s;
}

/* Converts one subgraph of node `idx` of s->graph and records the enclosing
 * values it reads as implicit inputs of that node. */
static qkv_status convert_subgraph(load_ctx *cx, scope *s, int32_t idx, Onnx__GraphProto *gp,
                                   qkv_ir_graph **out)
{
    if (s->depth + 1 > QKV_LOADER_MAX_GRAPH_DEPTH)
        return qkv_error_set(cx->err, QKV_ERR_UNSUPPORTED,
                             "subgraphs are nested more than %d levels deep",
                             QKV_LOADER_MAX_GRAPH_DEPTH);
    qkv_status st = convert_graph(cx, gp, s, out);
    if (st != QKV_OK)
        return st;
    const qkv_ir_graph *sg = *out;
    for (size_t v = 0; v < sg->n_values; v++) {
        if (sg->values[v].kind != QKV_VALUE_OUTER)
            continue;
        int32_t oid = sg->values[v].outer_id;
        qkv_ir_node *n = &s->graph->nodes[idx];
        bool have = false;
        for (size_t k = 0; k < n->n_implicit && !have; k++)
            have = n->implicit_inputs[k] == oid;
        if (!have && !append_id(&n->implicit_inputs, &n->n_implicit, oid))
            return oom(cx);
    }
    return QKV_OK;
}

/* The TENSOR or TENSORS attribute ap (a->type) into a->tensors; `what`
 * names the attribute in messages. */
static qkv_status convert_attr_tensors(load_ctx *cx, Onnx__AttributeProto *ap, qkv_ir_attr *a,
                                       const char *what)
{
    bool one = a->type == QKV_ATTR_TENSOR;
    size_t n = one ? 1 : ap->n_tensors;
    if (one && !ap->t)
        return qkv_error_set(cx->err, QKV_ERR_INVALID_MODEL, "%s: TENSOR attribute has no tensor",
                             what);
    if (n == 0)
        return QKV_OK;
    if (!(a->tensors = calloc(n, sizeof *a->tensors)))
        return oom(cx);
    a->n = n;
    qkv_status st = QKV_OK;
    for (size_t j = 0; j < n && st == QKV_OK; j++) {
        Onnx__TensorProto *tp = one ? ap->t : ap->tensors[j];
        char w[QKV_ERROR_MESSAGE_BYTES];
        if (!one)
            snprintf(w, sizeof w, "%s: tensor %zu", what, j);
        else
            snprintf(w, sizeof w, "%s", what);
        st = qkv_loader_tensor_from_proto(tp, w, cx->base_dir, NULL, &a->tensors[j], NULL, cx->err);
    }
    return st;
}

/* The GRAPH or GRAPHS attribute ap (a->type) of node idx into a->graphs. */
static qkv_status convert_attr_graphs(load_ctx *cx, scope *s, int32_t idx, Onnx__AttributeProto *ap,
                                      qkv_ir_attr *a, const char *what)
{
    bool one = a->type == QKV_ATTR_GRAPH;
    size_t n = one ? 1 : ap->n_graphs;
    if (one && !ap->g)
        return qkv_error_set(cx->err, QKV_ERR_INVALID_MODEL, "%s: GRAPH attribute has no graph",
                             what);
    if (n == 0)
        return QKV_OK;
    if (!(a->graphs = calloc(n, sizeof *a->graphs)))
        return oom(cx);
    a->n = n;
    qkv_status st = QKV_OK;
    for (size_t j = 0; j < n && st == QKV_OK; j++) {
        st = convert_subgraph(cx, s, idx, one ? ap->g : ap->graphs[j], &a->graphs[j]);
        if (st != QKV_OK) {
            char w[QKV_ERROR_MESSAGE_BYTES];
            if (!one)
                snprintf(w, sizeof w, "%s: graph %zu", what, j);
            else
                snprintf(w, sizeof w, "%s", what);
            add_context(cx->err, w);
        }
    }
    return st;
}

/* Converts attribute ap of node idx into a (zeroed by the caller). On error
 * a holds what was built so far (qkv_attr_fini frees it). */
/* A TYPE_PROTO attribute (Optional's `type`): a tensor, sequence(tensor),
 * optional(tensor) or optional(sequence(tensor)) type, kept as the two ints
 * {qkv_type_kind, element qkv_dtype} that host->attr_ints returns. */
static qkv_status convert_attr_type(load_ctx *cx, const Onnx__AttributeProto *ap, qkv_ir_attr *a,
                                    const char *what)
{
    const Onnx__TypeProto *tp = ap->tp;
    if (!tp || tp->value_case == ONNX__TYPE_PROTO__VALUE__NOT_SET)
        return qkv_error_set(cx->err, QKV_ERR_INVALID_MODEL, "%s: the type is missing", what);
    qkv_type_kind kind;
    const Onnx__TypeProto__Tensor *tt;
    type_kind(tp, &kind, &tt);
    /* type_kind reads a map or sparse tensor, inside or out, as a tensor without a type */
    if (kind == QKV_KIND_TENSOR && tp->value_case != ONNX__TYPE_PROTO__VALUE_TENSOR_TYPE)
        return qkv_error_set(cx->err, QKV_ERR_UNSUPPORTED,
                             "%s: only tensor, sequence and optional types are supported", what);
    qkv_dtype dtype = QKV_DTYPE_UNDEFINED;
    if (tt && tt->has_elem_type && tt->elem_type > 0 && tt->elem_type < QKV_DTYPE_COUNT)
        dtype = (qkv_dtype)tt->elem_type;
    if (!(a->ints = malloc(2 * sizeof *a->ints)))
        return oom(cx);
    a->n = 2;
    a->ints[0] = kind;
    a->ints[1] = dtype;
    return QKV_OK;
}

static qkv_status convert_attr(load_ctx *cx, scope *s, int32_t idx, Onnx__AttributeProto *ap,
                               qkv_ir_attr *a, const char *nd, size_t k)
{
    if (!ap->name || !ap->name[0])
        return qkv_error_set(cx->err, QKV_ERR_INVALID_MODEL, "%s: attribute #%zu has no name", nd,
                             k);
    if (!(a->name = qkv_strdup(ap->name)))
        return oom(cx);
    if (ap->ref_attr_name && ap->ref_attr_name[0])
        return qkv_error_set(cx->err, QKV_ERR_UNSUPPORTED,
                             "%s: attribute '%s' refers to function attribute '%s', which is "
                             "only valid inside a function",
                             nd, ap->name, ap->ref_attr_name);
    int type = ap->has_type ? (int)ap->type : guess_attr_type(ap);
    char what[QKV_ERROR_MESSAGE_BYTES / 2];
    if (snprintf(what, sizeof what, "%s: attribute '%s'", nd, ap->name) >= (int)sizeof what)
        what[sizeof what - 1] = '\0'; /* a cut name still says where */
    a->type = (qkv_attr_type)type;
    qkv_status st = QKV_OK;
    switch (type) {
    case QKV_ATTR_FLOAT:
        a->f = ap->f;
        break;
    case QKV_ATTR_INT:
        a->i = ap->i;
        break;
    case QKV_ATTR_STRING:
        if (!(a->s = dup_bytes(&ap->s)))
            return oom(cx);
        a->s_len = ap->s.len;
        break;
    case QKV_ATTR_FLOATS: /* protobuf-c malloc'd the array: take it over */
        a->n = ap->n_floats;
        a->floats = ap->floats;
        ap->floats = NULL;
        ap->n_floats = 0;
        break;
    case QKV_ATTR_INTS:
        a->n = ap->n_ints;
        a->ints = ap->ints;
        ap->ints = NULL;
        ap->n_ints = 0;
        break;
    case QKV_ATTR_STRINGS:
        if (ap->n_strings == 0)
            break;
        if (!(a->strings = calloc(ap->n_strings, sizeof *a->strings)))
            return oom(cx);
        a->n = ap->n_strings;
        for (size_t j = 0; j < ap->n_strings; j++)
            if (!(a->strings[j] = dup_bytes(&ap->strings[j])))
                return oom(cx);
        break;
    case QKV_ATTR_TENSOR:
    case QKV_ATTR_TENSORS:
        st = convert_attr_tensors(cx, ap, a, what);
        break;
    case QKV_ATTR_GRAPH:
    case QKV_ATTR_GRAPHS:
        st = convert_attr_graphs(cx, s, idx, ap, a, what);
        break;
    case QKV_ATTR_TYPE_PROTO:
        st = convert_attr_type(cx, ap, a, what);
        break;
    case QKV_ATTR_SPARSE_TENSOR:
    case QKV_ATTR_SPARSE_TENSORS:
    case QKV_ATTR_TYPE_PROTOS:
        return qkv_error_set(cx->err, QKV_ERR_UNSUPPORTED, "%s: type %s is not supported", what,
                             attr_type_name(type));
    default:
        return qkv_error_set(cx->err, QKV_ERR_INVALID_MODEL, "%s: invalid attribute type %d (%s)",
                             what, type, attr_type_name(type));
    }
    return st;
}

/* ---- nodes ---------------------------------------------------------------------- */

static qkv_status convert_node(load_ctx *cx, scope *s, Onnx__NodeProto *np, size_t index)
{
    char nd[QKV_ERROR_MESSAGE_BYTES / 2];
    qkv_node_format(nd, sizeof nd, np->name, index, NULL, np->op_type, 0);
    if (!np->op_type || !np->op_type[0])
        return qkv_error_set(cx->err, QKV_ERR_INVALID_MODEL, "%s: node has no op_type", nd);
    const char *domain = np->domain ? np->domain : "";
    int64_t opset = qkv_loader_inline_opset(cx->inlined, np, domain);
    if (opset < 0)
        opset = qkv_model_opset_for(cx->model, domain);
    if (opset < 0)
        return qkv_error_set(cx->err, QKV_ERR_INVALID_MODEL,
                             "%s: the model has no opset import for domain '%s'", nd, domain);
    int32_t idx = qkv_graph_add_node(s->graph, np->name, np->op_type, domain, opset, np->n_input,
                                     np->n_output);
    if (idx < 0)
        return oom(cx);

    for (size_t j = 0; j < np->n_input; j++) {
        const char *name = np->input[j];
        if (!name || !name[0])
            continue; /* an omitted optional input stays -1 */
        int32_t id = resolve(s, name);
        if (id == -2)
            return oom(cx);
        if (id < 0)
            return qkv_error_set(cx->err, QKV_ERR_INVALID_MODEL,
                                 "%s: input %zu '%s' is not produced by any node, graph input "
                                 "or initializer",
                                 nd, j, name);
        s->graph->nodes[idx].inputs[j] = id;
    }
    for (size_t j = 0; j < np->n_output; j++) {
        const char *name = np->output[j];
        if (name && name[0])
            s->graph->nodes[idx].outputs[j] = qkv_graph_find_value(s->graph, name);
    }
    if (np->n_attribute > 0) {
        qkv_ir_attr *attrs = calloc(np->n_attribute, sizeof *attrs);
        if (!attrs)
            return oom(cx);
        s->graph->nodes[idx].attrs = attrs;
        s->graph->nodes[idx].n_attrs = np->n_attribute;
        for (size_t k = 0; k < np->n_attribute; k++) {
            /* nodes[] is not reallocated while this graph's node idx converts its
             * subgraphs (they add values and nodes to other graphs only). */
            qkv_status st = convert_attr(cx, s, idx, np->attribute[k], &attrs[k], nd, k);
            if (st != QKV_OK)
                return st;
        }
    }
    return QKV_OK;
}

/* ---- graphs --------------------------------------------------------------------- */

/* Initializers of g. src: file mappings the payloads may stay in (main
 * graph only: subgraph initializers are never cut out of the file). */
static qkv_status add_initializers(load_ctx *cx, qkv_ir_graph *g, Onnx__GraphProto *gp,
                                   qkv_loader_source *src)
{
    if (gp->n_sparse_initializer > 0) {
        const Onnx__SparseTensorProto *sp = gp->sparse_initializer[0];
        const char *name = sp->values && sp->values->name ? sp->values->name : "";
        return qkv_error_set(cx->err, QKV_ERR_UNSUPPORTED,
                             "sparse initializer '%s' is not supported", name);
    }
    for (size_t k = 0; k < gp->n_initializer; k++) {
        Onnx__TensorProto *tp = gp->initializer[k];
        if (!tp->name || !tp->name[0])
            return qkv_error_set(cx->err, QKV_ERR_INVALID_MODEL, "initializer #%zu has no name", k);
        bool dup;
        int32_t id = qkv_graph_add_value(g, tp->name, QKV_VALUE_CONSTANT, &dup);
        if (dup)
            return qkv_error_set(cx->err, QKV_ERR_INVALID_MODEL, "initializer '%s' appears twice",
                                 tp->name);
        if (id < 0)
            return oom(cx);
        char what[QKV_ERROR_MESSAGE_BYTES / 2];
        snprintf(what, sizeof what, "initializer '%s'", tp->name);
        qkv_tensor t;
        bool lent = false;
        qkv_status st =
            qkv_loader_tensor_from_proto(tp, what, cx->base_dir, src, &t, &lent, cx->err);
        if (st != QKV_OK)
            return st;
        qkv_ir_value *v = &g->values[id];
        v->borrowed = v->mapped = lent;
        v->dtype = t.dtype;
        v->rank = t.rank;
        memcpy(v->dims, t.dims, sizeof v->dims);
        v->data = t.data;
        v->data_bytes = t.data_bytes;
    }
    return QKV_OK;
}

static qkv_status add_inputs(load_ctx *cx, qkv_ir_graph *g, const Onnx__GraphProto *gp)
{
    for (size_t k = 0; k < gp->n_input; k++) {
        const Onnx__ValueInfoProto *vi = gp->input[k];
        if (!vi->name || !vi->name[0])
            return qkv_error_set(cx->err, QKV_ERR_INVALID_MODEL, "graph input #%zu has no name", k);
        int32_t id = qkv_graph_find_value(g, vi->name);
        if (id >= 0) {
            if (g->values[id].kind == QKV_VALUE_CONSTANT)
                continue; /* an initializer with a default: stays a constant */
            return qkv_error_set(cx->err, QKV_ERR_INVALID_MODEL, "graph input '%s' appears twice",
                                 vi->name);
        }
        id = qkv_graph_add_value(g, vi->name, QKV_VALUE_INPUT, NULL);
        if (id < 0 || !append_id(&g->inputs, &g->n_inputs, id))
            return oom(cx);
        char what[QKV_ERROR_MESSAGE_BYTES / 2];
        snprintf(what, sizeof what, "graph input '%s'", vi->name);
        qkv_status st = apply_type(cx, &g->values[id], vi->type, what, true);
        if (st != QKV_OK)
            return st;
    }
    return QKV_OK;
}

/* Declares an ACTIVATION value for every node output name not seen yet. A
 * name produced twice, or shadowing an input or initializer, is left to
 * qkv_graph_finalize to report. */
static qkv_status add_node_outputs(load_ctx *cx, qkv_ir_graph *g, const Onnx__GraphProto *gp)
{
    for (size_t k = 0; k < gp->n_node; k++) {
        const Onnx__NodeProto *np = gp->node[k];
        for (size_t j = 0; j < np->n_output; j++) {
            const char *name = np->output[j];
            if (!name || !name[0] || qkv_graph_find_value(g, name) >= 0)
                continue;
            if (qkv_graph_add_value(g, name, QKV_VALUE_ACTIVATION, NULL) < 0)
                return oom(cx);
        }
    }
    return QKV_OK;
}

static qkv_status add_outputs(load_ctx *cx, scope *s, const Onnx__GraphProto *gp)
{
    qkv_ir_graph *g = s->graph;
    for (size_t k = 0; k < gp->n_output; k++) {
        const Onnx__ValueInfoProto *vi = gp->output[k];
        if (!vi->name || !vi->name[0])
            return qkv_error_set(cx->err, QKV_ERR_INVALID_MODEL, "graph output #%zu has no name",
                                 k);
        int32_t id = resolve(s, vi->name);
        if (id == -2)
            return oom(cx);
        if (id < 0)
            return qkv_error_set(cx->err, QKV_ERR_INVALID_MODEL,
                                 "graph output '%s' is not produced by any node, graph input or "
                                 "initializer",
                                 vi->name);
        if (!append_id(&g->outputs, &g->n_outputs, id))
            return oom(cx);
        qkv_ir_value *v = &g->values[id];
        v->is_output = true;
        if (v->kind == QKV_VALUE_CONSTANT)
            continue; /* the payload defines its type */
        char what[QKV_ERROR_MESSAGE_BYTES / 2];
        snprintf(what, sizeof what, "graph output '%s'", vi->name);
        qkv_status st = apply_type(cx, v, vi->type, what, false);
        if (st != QKV_OK)
            return st;
    }
    for (size_t k = 0; k < gp->n_value_info; k++) {
        const Onnx__ValueInfoProto *vi = gp->value_info[k];
        int32_t id = qkv_graph_find_value(g, vi->name);
        if (id < 0 || g->values[id].kind != QKV_VALUE_ACTIVATION)
            continue;
        char what[QKV_ERROR_MESSAGE_BYTES / 2];
        snprintf(what, sizeof what, "value_info '%s'", vi->name);
        qkv_status st = apply_type(cx, &g->values[id], vi->type, what, false);
        if (st != QKV_OK)
            return st;
    }
    return QKV_OK;
}

static qkv_status convert_graph(load_ctx *cx, Onnx__GraphProto *gp, scope *parent,
                                qkv_ir_graph **out)
{
    qkv_ir_graph *g = qkv_graph_create(gp->name, parent ? parent->graph : NULL);
    if (!g)
        return oom(cx);
    scope s = {g, parent, parent ? parent->depth + 1 : 0};
    qkv_status st = add_initializers(cx, g, gp, parent ? NULL : cx->src);
    if (st == QKV_OK)
        st = add_inputs(cx, g, gp);
    if (st == QKV_OK)
        st = add_node_outputs(cx, g, gp);
    if (st == QKV_OK)
        st = add_outputs(cx, &s, gp);
    for (size_t k = 0; k < gp->n_node && st == QKV_OK; k++)
        st = convert_node(cx, &s, gp->node[k], k);
    if (st == QKV_OK)
        st = qkv_graph_finalize(g, cx->err);
    if (st != QKV_OK) {
        qkv_graph_destroy(g);
        return st;
    }
    *out = g;
    return QKV_OK;
}

/* ---- the model ------------------------------------------------------------------- */

static qkv_status add_opsets(load_ctx *cx, qkv_model *m, const Onnx__ModelProto *mp)
{
    size_t n = mp->n_opset_import;
    bool legacy = n == 0 && mp->has_ir_version && mp->ir_version < 3;
    if (legacy)
        n = 1; /* before IR 3 there were no imports: the default domain at version 1 */
    if (n == 0)
        return QKV_OK;
    if (!(m->opsets = calloc(n, sizeof *m->opsets)))
        return oom(cx);
    if (legacy) {
        if (!(m->opsets[0].domain = qkv_strdup("")))
            return oom(cx);
        m->opsets[0].version = 1;
        m->n_opsets = 1;
        return QKV_OK;
    }
    for (size_t k = 0; k < n; k++) {
        const Onnx__OperatorSetIdProto *op = mp->opset_import[k];
        const char *domain = op->domain && strcmp(op->domain, "ai.onnx") != 0 ? op->domain : "";
        int64_t version = op->has_version ? op->version : 0;
        int64_t have = qkv_model_opset_for(m, domain);
        if (have >= 0) {
            if (have != version)
                return qkv_error_set(cx->err, QKV_ERR_INVALID_MODEL,
                                     "opset import for domain '%s' appears twice (versions %" PRId64
                                     " and %" PRId64 ")",
                                     domain, have, version);
            continue;
        }
        if (version < 0)
            return qkv_error_set(cx->err, QKV_ERR_INVALID_MODEL,
                                 "opset import for domain '%s' has version %" PRId64, domain,
                                 version);
        if (!(m->opsets[m->n_opsets].domain = qkv_strdup(domain)))
            return oom(cx);
        m->opsets[m->n_opsets++].version = version;
    }
    return QKV_OK;
}

static qkv_status convert_model(Onnx__ModelProto *mp, const char *base_dir, qkv_loader_source *src,
                                qkv_model **out, qkv_error *err)
{
    qkv_model *m = calloc(1, sizeof *m);
    load_ctx cx = {m, base_dir, src, NULL, err};
    qkv_loader_inline *inlined = NULL;
    if (!m)
        return oom(&cx);
    qkv_status st = QKV_OK;
    m->ir_version = mp->has_ir_version ? mp->ir_version : 0;
    m->model_version = mp->has_model_version ? mp->model_version : 0;
    m->producer_name = qkv_strdup(mp->producer_name);
    m->producer_version = qkv_strdup(mp->producer_version);
    m->domain = qkv_strdup(mp->domain);
    m->doc_string = qkv_strdup(mp->doc_string);
    if (!m->producer_name || !m->producer_version || !m->domain || !m->doc_string) {
        st = oom(&cx);
        goto fail;
    }
    if ((st = add_opsets(&cx, m, mp)) != QKV_OK)
        goto fail;
    if (mp->n_metadata_props > 0) {
        if (!(m->props = calloc(mp->n_metadata_props, sizeof *m->props))) {
            st = oom(&cx);
            goto fail;
        }
        for (size_t k = 0; k < mp->n_metadata_props; k++) {
            qkv_ir_prop *p = &m->props[m->n_props++];
            p->key = qkv_strdup(mp->metadata_props[k]->key);
            p->value = qkv_strdup(mp->metadata_props[k]->value);
            if (!p->key || !p->value) {
                st = oom(&cx);
                goto fail;
            }
        }
    }
    if (!mp->graph) {
        st = qkv_error_set(err, QKV_ERR_INVALID_MODEL, "the model has no graph");
        goto fail;
    }
    if ((st = qkv_loader_inline_functions(mp, &inlined, err)) != QKV_OK)
        goto fail;
    cx.inlined = inlined;
    st = convert_graph(&cx, mp->graph, NULL, &m->graph);
    qkv_loader_inline_undo(inlined);
    if (st != QKV_OK)
        goto fail;
    if (src && !qkv_loader_source_give(src, m->graph)) {
        st = oom(&cx);
        goto fail;
    }
    *out = m;
    return QKV_OK;
fail:
    qkv_model_destroy(m);
    return st;
}

/* Pre-scan, cut out the large payloads (when src holds the file's mapping),
 * unpack, convert, free the message. `what` starts parse errors. src NULL:
 * every payload is copied (a caller's buffer). */
static qkv_status load_bytes(const void *data, size_t bytes, const char *base_dir,
                             qkv_loader_source *src, const char *what, qkv_model **out,
                             qkv_error *err)
{
    qkv_status st = qkv_loader_wire_check(data, bytes, &onnx__model_proto__descriptor,
                                          QKV_LOADER_MAX_MESSAGE_DEPTH, what, err);
    if (st != QKV_OK)
        return st;
    uint8_t *compact = NULL;
    size_t compact_bytes = 0;
    if (src && src->n_maps == 1 &&
        (st = qkv_loader_compact(data, bytes, src, &compact, &compact_bytes, what, err)) != QKV_OK)
        return st;
    ProtobufCAllocator alloc;
    bool alloc_failed;
    qkv_loader_pb_allocator(&alloc, &alloc_failed);
    Onnx__ModelProto *mp = compact ? onnx__model_proto__unpack(&alloc, compact_bytes, compact)
                                   : onnx__model_proto__unpack(&alloc, bytes, data);
    free(compact);
    if (!mp && alloc_failed)
        return qkv_error_set(err, QKV_ERR_OUT_OF_MEMORY, "%s: out of memory unpacking the model",
                             what);
    if (!mp)
        return qkv_error_set(err, QKV_ERR_INVALID_MODEL,
                             "%s: truncated or corrupt protobuf (not an ONNX ModelProto)", what);
    st = convert_model(mp, base_dir, src, out, err);
    onnx__model_proto__free_unpacked(mp, &alloc);
    return st;
}

/* Copies the caller-visible part of a local error record. */
static qkv_status finish(qkv_status st, const qkv_error *local, qkv_error *err)
{
    if (st != QKV_OK && err)
        *err = *local;
    return st;
}

qkv_status qkv_model_load_buffer(const void *data, size_t bytes, const char *base_dir,
                                 qkv_model **out, qkv_error *err)
{
    qkv_error e = {QKV_OK, ""};
    if ((!data && bytes > 0) || !out)
        return qkv_error_set(err, QKV_ERR_INVALID_ARGUMENT,
                             "qkv_model_load_buffer: data and out must not be NULL");
    char what[96];
    snprintf(what, sizeof what, "failed to parse buffer of %zu bytes", bytes);
    qkv_model *m = NULL;
    qkv_status st = bytes == 0 ? qkv_error_set(&e, QKV_ERR_INVALID_MODEL, "%s: it is empty", what)
                               : load_bytes(data, bytes, base_dir, NULL, what, &m, &e);
    if (st == QKV_OK)
        *out = m;
    return finish(st, &e, err);
}

/* The directory part of path ("." when there is none), malloc'd. */
static char *dir_of(const char *path)
{
    const char *slash = strrchr(path, '/');
    if (!slash)
        return qkv_strdup(".");
    size_t n = slash == path ? 1 : (size_t)(slash - path);
    char *d = malloc(n + 1);
    if (d) {
        memcpy(d, path, n);
        d[n] = '\0';
    }
    return d;
}

qkv_status qkv_model_load_file(const char *path, qkv_model **out, qkv_error *err)
{
    qkv_error e = {QKV_OK, ""};
    if (!path || !out)
        return qkv_error_set(err, QKV_ERR_INVALID_ARGUMENT,
                             "qkv_model_load_file: path and out must not be NULL");
    qkv_status st = QKV_OK;
    qkv_model *m = NULL;
    void *map = MAP_FAILED, *buf = NULL;
    size_t size = 0;
    qkv_loader_source src = {0};
    char *dir = NULL;
    char what[QKV_ERROR_MESSAGE_BYTES / 2];
    snprintf(what, sizeof what, "failed to parse '%s'", path);

    int fd = open(path, O_RDONLY);
    struct stat sb;
    if (fd < 0 || fstat(fd, &sb) != 0) {
        st = qkv_error_set(&e, QKV_ERR_IO, "cannot open '%s': %s", path, strerror(errno));
        goto done;
    }
    if (!S_ISREG(sb.st_mode)) {
        st = qkv_error_set(&e, QKV_ERR_IO, "cannot load '%s': not a regular file", path);
        goto done;
    }
    if ((uint64_t)sb.st_size > SIZE_MAX) {
        st = qkv_error_set(&e, QKV_ERR_UNSUPPORTED, "cannot load '%s': too large", path);
        goto done;
    }
    size = (size_t)sb.st_size;
    if (size == 0) {
        st = qkv_error_set(&e, QKV_ERR_INVALID_MODEL, "%s: the file is empty", what);
        goto done;
    }
    map = mmap(NULL, size, PROT_READ, MAP_PRIVATE, fd, 0);
    if (map != MAP_FAILED && !qkv_loader_source_model(&src, map, size)) {
        munmap(map, size);
        st = qkv_error_set(&e, QKV_ERR_OUT_OF_MEMORY, "cannot load '%s': out of memory", path);
        goto done;
    }
    if (map == MAP_FAILED) { /* e.g. a file system without mmap: read it */
        buf = malloc(size);
        if (!buf) {
            st = qkv_error_set(&e, QKV_ERR_OUT_OF_MEMORY, "cannot load '%s': out of memory", path);
            goto done;
        }
        size_t got = 0;
        while (got < size) {
            ssize_t r = read(fd, (char *)buf + got, size - got);
            if (r < 0 && errno == EINTR)
                continue;
            if (r <= 0) {
                st = qkv_error_set(&e, QKV_ERR_IO, "cannot read '%s'", path);
                goto done;
            }
            got += (size_t)r;
        }
    }
    if (!(dir = dir_of(path))) {
        st = qkv_error_set(&e, QKV_ERR_OUT_OF_MEMORY, "cannot load '%s': out of memory", path);
        goto done;
    }
    st = load_bytes(map != MAP_FAILED ? map : buf, size, dir, &src, what, &m, &e);
done:
    qkv_loader_source_fini(&src); /* unmaps the file unless a constant kept it */
    free(buf);
    free(dir);
    if (fd >= 0)
        close(fd);
    if (st == QKV_OK)
        *out = m;
    return finish(st, &e, err);
}
