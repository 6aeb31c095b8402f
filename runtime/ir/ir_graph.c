/*
 * ir_graph.c - building, querying and finalizing the graph IR (ir.h).
 *
 * qkv_graph_finalize is the one place graph structure is validated: the
 * loader builds nodes and values by name and leaves "who produces what" and
 * the order to it, and passes call it again after rewriting.
 *
 * Consumers: every use of a value is one entry in value->consumers, in node
 * order; a node's regular input slots come first, then its implicit inputs
 * (values its subgraphs read), so liveness sees subgraph uses too.
 */
#include "ir.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

#include "error.h"
#include "size_math.h"
#include "str_util.h"
#include "strmap.h"

/* ---- freeing ---------------------------------------------------------------- */

static void free_payload(qkv_dtype dtype, void *data, size_t data_bytes)
{
    if (!data)
        return;
    if (dtype == QKV_DTYPE_STRING) {
        char **s = data;
        for (size_t k = 0; k < data_bytes / sizeof(char *); k++)
            free(s[k]);
    }
    free(data);
}

static void value_fini(qkv_ir_value *v)
{
    free(v->name);
    for (int k = 0; k < QKV_MAX_RANK; k++)
        free(v->dim_params[k]);
    if (!v->borrowed)
        free_payload(v->dtype, v->data, v->data_bytes);
    free(v->consumers);
}

void qkv_attr_fini(qkv_ir_attr *attr)
{
    if (!attr)
        return;
    free(attr->name);
    free(attr->s);
    free(attr->ints);
    free(attr->floats);
    if (attr->strings) {
        for (size_t k = 0; k < attr->n; k++)
            free(attr->strings[k]);
        free(attr->strings);
    }
    if (attr->tensors) {
        for (size_t k = 0; k < attr->n; k++)
            free_payload(attr->tensors[k].dtype, attr->tensors[k].data,
                         attr->tensors[k].data_bytes);
        free(attr->tensors);
    }
    if (attr->graphs) {
        for (size_t k = 0; k < attr->n; k++)
            qkv_graph_destroy(attr->graphs[k]);
        free(attr->graphs);
    }
    memset(attr, 0, sizeof *attr);
}

static void node_fini(qkv_ir_node *n)
{
    free(n->name);
    free(n->op_type);
    free(n->domain);
    free(n->inputs);
    free(n->outputs);
    free(n->implicit_inputs);
    for (size_t k = 0; k < n->n_attrs; k++)
        qkv_attr_fini(&n->attrs[k]);
    free(n->attrs);
    memset(n, 0, sizeof *n);
}

void qkv_graph_destroy(qkv_ir_graph *graph)
{
    if (!graph)
        return;
    for (size_t k = 0; k < graph->n_values; k++)
        value_fini(&graph->values[k]);
    free(graph->values);
    for (size_t k = 0; k < graph->n_nodes; k++)
        node_fini(&graph->nodes[k]);
    free(graph->nodes);
    free(graph->inputs);
    free(graph->outputs);
    free(graph->order);
    qkv_strmap_destroy(graph->names);
    free(graph->name);
    /* after the values: mapped payloads point into these */
    for (size_t k = 0; k < graph->n_mappings; k++)
        munmap(graph->mappings[k].addr, graph->mappings[k].bytes);
    free(graph->mappings);
    free(graph);
}

void qkv_value_release_data(qkv_ir_value *v)
{
    if (!v->data)
        return;
    if (v->mapped)
        qkv_ir_drop_pages(v->data, v->data_bytes);
    else if (!v->borrowed)
        free_payload(v->dtype, v->data, v->data_bytes);
    v->data = NULL;
    v->data_bytes = 0;
    v->borrowed = false;
    v->mapped = false;
}

/* ---- construction ----------------------------------------------------------- */

qkv_ir_graph *qkv_graph_create(const char *name, const qkv_ir_graph *parent)
{
    qkv_ir_graph *g = calloc(1, sizeof *g);
    if (!g)
        return NULL;
    g->parent = parent;
    g->body_id = -1;
    g->name = qkv_strdup(name);
    g->names = qkv_strmap_create();
    if (!g->name || !g->names) {
        qkv_graph_destroy(g);
        return NULL;
    }
    return g;
}

/* Makes room for one more element in *arr (count n, capacity *cap). */
static bool grow(void **arr, size_t *cap, size_t n, size_t elem_bytes)
{
    if (n < *cap)
        return true;
    size_t new_cap = *cap ? *cap : 8, bytes;
    if (qkv_mul_overflow(new_cap, 2, &new_cap) || new_cap > INT32_MAX ||
        qkv_mul_overflow(new_cap, elem_bytes, &bytes))
        return false;
    void *p = realloc(*arr, bytes);
    if (!p)
        return false;
    *arr = p;
    *cap = new_cap;
    return true;
}

int32_t qkv_graph_add_value(qkv_ir_graph *graph, const char *name, qkv_value_kind kind,
                            bool *duplicate)
{
    if (duplicate)
        *duplicate = false;
    if (!name)
        name = "";
    if (qkv_strmap_get(graph->names, name) >= 0) {
        if (duplicate)
            *duplicate = true;
        return -1;
    }
    if (!grow((void **)&graph->values, &graph->cap_values, graph->n_values, sizeof *graph->values))
        return -1;
    int32_t id = (int32_t)graph->n_values;
    qkv_ir_value *v = &graph->values[id];
    memset(v, 0, sizeof *v);
    v->name = qkv_strdup(name);
    if (!v->name)
        return -1;
    if (qkv_strmap_put(graph->names, name, id) != 0) {
        free(v->name);
        v->name = NULL;
        return -1;
    }
    v->kind = kind;
    v->dtype = QKV_DTYPE_UNDEFINED;
    v->rank = -1;
    for (int k = 0; k < QKV_MAX_RANK; k++)
        v->dims[k] = -1;
    v->outer_id = -1;
    v->producer = -1;
    graph->n_values++;
    return id;
}

int32_t qkv_graph_find_value(const qkv_ir_graph *graph, const char *name)
{
    if (!graph || !name)
        return -1;
    return qkv_strmap_get(graph->names, name);
}

/* n ids, all -1; NULL for n == 0 (and *ok false when out of memory). */
static int32_t *new_ids(size_t n, bool *ok)
{
    if (n == 0)
        return NULL;
    int32_t *ids = NULL;
    size_t bytes;
    if (!qkv_mul_overflow(n, sizeof *ids, &bytes))
        ids = malloc(bytes);
    if (!ids) {
        *ok = false;
        return NULL;
    }
    for (size_t k = 0; k < n; k++)
        ids[k] = -1;
    return ids;
}

int32_t qkv_graph_add_node(qkv_ir_graph *graph, const char *name, const char *op_type,
                           const char *domain, int64_t opset, size_t n_inputs, size_t n_outputs)
{
    if (!grow((void **)&graph->nodes, &graph->cap_nodes, graph->n_nodes, sizeof *graph->nodes))
        return -1;
    qkv_ir_node n = {0};
    bool ok = true;
    n.name = qkv_strdup(name);
    n.op_type = qkv_strdup(op_type);
    n.domain = qkv_strdup(domain && strcmp(domain, "ai.onnx") != 0 ? domain : "");
    n.opset = opset;
    n.n_inputs = n_inputs;
    n.inputs = new_ids(n_inputs, &ok);
    n.n_outputs = n_outputs;
    n.outputs = new_ids(n_outputs, &ok);
    if (!ok || !n.name || !n.op_type || !n.domain) {
        node_fini(&n);
        return -1;
    }
    graph->nodes[graph->n_nodes] = n;
    return (int32_t)graph->n_nodes++;
}

const qkv_ir_attr *qkv_node_attr(const qkv_ir_node *node, const char *name)
{
    if (!node || !name)
        return NULL;
    for (size_t k = 0; k < node->n_attrs; k++)
        if (node->attrs[k].name && strcmp(node->attrs[k].name, name) == 0)
            return &node->attrs[k];
    return NULL;
}

bool qkv_node_has_subgraphs(const qkv_ir_node *node)
{
    for (size_t k = 0; node && k < node->n_attrs; k++)
        if (node->attrs[k].type == QKV_ATTR_GRAPH || node->attrs[k].type == QKV_ATTR_GRAPHS)
            return true;
    return false;
}

size_t qkv_graph_bound_ids(const qkv_ir_graph *g, int32_t *ids)
{
    size_t n = 0;
    for (size_t i = 0; i < g->n_inputs; i++, n++)
        if (ids)
            ids[n] = g->inputs[i];
    for (size_t v = 0; v < g->n_values; v++) {
        if (g->values[v].kind != QKV_VALUE_OUTER)
            continue;
        if (ids)
            ids[n] = (int32_t)v;
        n++;
    }
    return n;
}

int64_t qkv_model_opset_for(const struct qkv_model *model, const char *domain)
{
    if (!model)
        return -1;
    if (!domain || strcmp(domain, "ai.onnx") == 0)
        domain = "";
    for (size_t k = 0; k < model->n_opsets; k++)
        if (strcmp(model->opsets[k].domain, domain) == 0)
            return model->opsets[k].version;
    return -1;
}

/* ---- finalize ----------------------------------------------------------------- */

const char *qkv_node_format(char *buf, size_t cap, const char *name, size_t index,
                            const char *domain, const char *op_type, int64_t version)
{
    char op[160];
    bool dom = domain && domain[0];
    if (version > 0)
        snprintf(op, sizeof op, "%s%s%s-%lld", dom ? domain : "", dom ? "." : "",
                 op_type ? op_type : "", (long long)version);
    else
        snprintf(op, sizeof op, "%s%s%s", dom ? domain : "", dom ? "." : "",
                 op_type ? op_type : "");
    if (name && name[0])
        snprintf(buf, cap, "node '%s' (%s)", name, op);
    else if (index != SIZE_MAX)
        snprintf(buf, cap, "node #%zu (%s)", index, op);
    else
        snprintf(buf, cap, "node (%s)", op);
    return buf;
}

/* node_format for node k of g, as the file's order numbers it. */
static const char *node_desc(char *buf, size_t cap, const qkv_ir_graph *g, int32_t k)
{
    const qkv_ir_node *n = &g->nodes[k];
    return qkv_node_format(buf, cap, n->name, (size_t)k, NULL, n->op_type, 0);
}

static void drop_dead_nodes(qkv_ir_graph *g)
{
    size_t w = 0;
    for (size_t r = 0; r < g->n_nodes; r++) {
        if (g->nodes[r].dead) {
            node_fini(&g->nodes[r]);
            continue;
        }
        if (w != r)
            g->nodes[w] = g->nodes[r];
        w++;
    }
    g->n_nodes = w;
}

/* A value id read or written by a node must be -1 or a valid index. */
static bool id_ok(const qkv_ir_graph *g, int32_t id)
{
    return id >= -1 && (id < 0 || (size_t)id < g->n_values);
}

/* Min-heap of node indices: Kahn's algorithm picks the smallest ready index,
 * so a graph already in a valid order keeps it. */
static void heap_push(int32_t *h, size_t *n, int32_t x)
{
    size_t i = (*n)++;
    while (i > 0 && h[(i - 1) / 2] > x) {
        h[i] = h[(i - 1) / 2];
        i = (i - 1) / 2;
    }
    h[i] = x;
}

static int32_t heap_pop(int32_t *h, size_t *n)
{
    int32_t top = h[0], x = h[--*n];
    size_t i = 0;
    for (;;) {
        size_t c = 2 * i + 1;
        if (c >= *n)
            break;
        if (c + 1 < *n && h[c + 1] < h[c])
            c++;
        if (h[c] >= x)
            break;
        h[i] = h[c];
        i = c;
    }
    if (*n > 0)
        h[i] = x;
    return top;
}

/* The producer of a node's k-th dependency (inputs, then implicit inputs), or -1. */
static int32_t dep_producer(const qkv_ir_graph *g, const qkv_ir_node *n, size_t k)
{
    int32_t v = k < n->n_inputs ? n->inputs[k] : n->implicit_inputs[k - n->n_inputs];
    return v >= 0 ? g->values[v].producer : -1;
}

/* Names one cycle among the nodes Kahn's algorithm could not order. */
static qkv_status report_cycle(const qkv_ir_graph *g, const int32_t *indeg, qkv_error *err)
{
    /* Every left-over node has a left-over predecessor: walk backwards until a
     * node repeats, then that node's walk is the cycle. */
    int32_t start = -1;
    for (size_t k = 0; k < g->n_nodes && start < 0; k++)
        if (indeg[k] > 0)
            start = (int32_t)k;
    int32_t *seen = calloc(g->n_nodes, sizeof *seen); /* step at which visited, 0 = never */
    if (!seen)
        return qkv_error_set(err, QKV_ERR_INVALID_MODEL, "the nodes form a cycle");
    int32_t cur = start, step = 1;
    while (!seen[cur]) {
        seen[cur] = step++;
        const qkv_ir_node *n = &g->nodes[cur];
        int32_t next = -1;
        for (size_t k = 0; k < n->n_inputs + n->n_implicit && next < 0; k++) {
            int32_t p = dep_producer(g, n, k);
            if (p >= 0 && indeg[p] > 0)
                next = p;
        }
        if (next < 0)
            break; /* cannot happen; keep the message generic */
        cur = next;
    }
    /* cur is on the cycle. Walking predecessors lists it backwards; print it
     * in data-flow order (producer first), starting at its smallest index. */
    enum { MAX_SHOWN = 32 };
    int32_t ring[MAX_SHOWN];
    size_t count = 0;
    int32_t c = cur;
    do {
        ring[count++] = c;
        const qkv_ir_node *n = &g->nodes[c];
        int32_t next = -1;
        for (size_t k = 0; k < n->n_inputs + n->n_implicit && next < 0; k++) {
            int32_t p = dep_producer(g, n, k);
            if (p >= 0 && indeg[p] > 0 && seen[p])
                next = p;
        }
        c = next;
    } while (c >= 0 && c != cur && count < MAX_SHOWN);
    free(seen);
    bool complete = c == cur;
    for (size_t k = 0; k < count / 2; k++) { /* reverse: data-flow order */
        int32_t t = ring[k];
        ring[k] = ring[count - 1 - k];
        ring[count - 1 - k] = t;
    }
    size_t first = 0;
    for (size_t k = 1; k < count && complete; k++)
        if (ring[k] < ring[first])
            first = k;
    char msg[QKV_ERROR_MESSAGE_BYTES], d[160];
    size_t len = 0;
    msg[0] = '\0';
    for (size_t k = 0; k <= count && len < sizeof msg; k++) {
        int w;
        if (k == count && !complete)
            w = snprintf(msg + len, sizeof msg - len, "...");
        else
            w = snprintf(msg + len, sizeof msg - len, "%s%s", k ? " -> " : "",
                         node_desc(d, sizeof d, g, ring[(first + k) % count]));
        len += w > 0 ? (size_t)w : 0;
    }
    return qkv_error_set(err, QKV_ERR_INVALID_MODEL, "the nodes form a cycle: %s", msg);
}

/* Finalize, phase 1: dead nodes dropped, the order and every value's
 * producer and consumers forgotten. */
static void reset_links(qkv_ir_graph *g)
{
    drop_dead_nodes(g);
    free(g->order);
    g->order = NULL;
    g->n_order = 0;
    for (size_t v = 0; v < g->n_values; v++) {
        g->values[v].producer = -1;
        g->values[v].n_consumers = 0;
        free(g->values[v].consumers);
        g->values[v].consumers = NULL;
    }
}

/* Phase 2: each value's producer. A value written twice, or a node writing
 * an input, an initializer or an enclosing graph's value, is an error. */
static qkv_status set_producers(qkv_ir_graph *g, qkv_error *err)
{
    char d[256];
    for (size_t k = 0; k < g->n_nodes; k++) {
        const qkv_ir_node *n = &g->nodes[k];
        node_desc(d, sizeof d, g, (int32_t)k);
        for (size_t j = 0; j < n->n_outputs; j++) {
            int32_t id = n->outputs[j];
            if (!id_ok(g, id))
                return qkv_error_set(err, QKV_ERR_INTERNAL, "%s: output %zu has bad value id %d", d,
                                     j, (int)id);
            if (id < 0)
                continue;
            qkv_ir_value *v = &g->values[id];
            if (v->kind != QKV_VALUE_ACTIVATION) {
                const char *what = v->kind == QKV_VALUE_INPUT      ? "a graph input"
                                   : v->kind == QKV_VALUE_CONSTANT ? "an initializer"
                                                                   : "an enclosing graph's value";
                return qkv_error_set(err, QKV_ERR_INVALID_MODEL,
                                     "%s: output %zu '%s' is produced twice: it is already %s", d,
                                     j, v->name, what);
            }
            if (v->producer >= 0) {
                char d0[256];
                return qkv_error_set(err, QKV_ERR_INVALID_MODEL,
                                     "%s: output %zu '%s' is produced twice: also by %s", d, j,
                                     v->name, node_desc(d0, sizeof d0, g, v->producer));
            }
            v->producer = (int32_t)k;
        }
    }
    return QKV_OK;
}

/* Phase 3: every node input and graph output is produced by something;
 * counts each value's consumers. */
static qkv_status count_uses(qkv_ir_graph *g, qkv_error *err)
{
    char d[256];
    for (size_t k = 0; k < g->n_nodes; k++) {
        const qkv_ir_node *n = &g->nodes[k];
        for (size_t j = 0; j < n->n_inputs + n->n_implicit; j++) {
            bool implicit = j >= n->n_inputs;
            int32_t id = implicit ? n->implicit_inputs[j - n->n_inputs] : n->inputs[j];
            if (!id_ok(g, id) || (implicit && id < 0))
                return qkv_error_set(err, QKV_ERR_INTERNAL, "%s: input %zu has bad value id %d",
                                     node_desc(d, sizeof d, g, (int32_t)k), j, (int)id);
            if (id < 0)
                continue;
            qkv_ir_value *v = &g->values[id];
            if (v->kind == QKV_VALUE_ACTIVATION && v->producer < 0 && implicit)
                return qkv_error_set(err, QKV_ERR_INVALID_MODEL,
                                     "%s: a subgraph reads '%s', which is not produced by any "
                                     "node, graph input or initializer",
                                     node_desc(d, sizeof d, g, (int32_t)k), v->name);
            if (v->kind == QKV_VALUE_ACTIVATION && v->producer < 0)
                return qkv_error_set(err, QKV_ERR_INVALID_MODEL,
                                     "%s: input %zu '%s' is not produced by any node, graph "
                                     "input or initializer",
                                     node_desc(d, sizeof d, g, (int32_t)k), j, v->name);
            v->n_consumers++;
        }
    }
    for (size_t k = 0; k < g->n_outputs; k++) {
        int32_t id = g->outputs[k];
        if (id < 0 || (size_t)id >= g->n_values)
            return qkv_error_set(err, QKV_ERR_INTERNAL, "graph output %zu has bad value id %d", k,
                                 (int)id);
        const qkv_ir_value *v = &g->values[id];
        if (v->kind == QKV_VALUE_ACTIVATION && v->producer < 0)
            return qkv_error_set(err, QKV_ERR_INVALID_MODEL,
                                 "graph output '%s' is not produced by any node, graph input or "
                                 "initializer",
                                 v->name);
    }
    return QKV_OK;
}

/* Phase 4: each value's consumer list, in node order, and each node's
 * count of produced inputs (indeg). fill has n_values zeroed entries.
 * false when out of memory. */
static bool fill_consumers(qkv_ir_graph *g, size_t *fill, int32_t *indeg)
{
    for (size_t v = 0; v < g->n_values; v++) {
        qkv_ir_value *val = &g->values[v];
        if (val->n_consumers == 0)
            continue;
        val->consumers = malloc(val->n_consumers * sizeof *val->consumers);
        if (!val->consumers)
            return false;
    }
    for (size_t k = 0; k < g->n_nodes; k++) {
        const qkv_ir_node *n = &g->nodes[k];
        for (size_t j = 0; j < n->n_inputs + n->n_implicit; j++) {
            int32_t id = j < n->n_inputs ? n->inputs[j] : n->implicit_inputs[j - n->n_inputs];
            if (id < 0)
                continue;
            g->values[id].consumers[fill[id]++] = (int32_t)k;
            if (g->values[id].producer >= 0)
                indeg[k]++;
        }
    }
    return true;
}

/* Phase 5: g->order by Kahn's algorithm, smallest ready index first (heap
 * has room for n_nodes). Nodes left with indeg > 0 are on a cycle. */
static void topo_order(qkv_ir_graph *g, int32_t *indeg, int32_t *heap)
{
    size_t n_heap = 0;
    for (size_t k = 0; k < g->n_nodes; k++)
        if (indeg[k] == 0)
            heap_push(heap, &n_heap, (int32_t)k);
    while (n_heap > 0) {
        int32_t k = heap_pop(heap, &n_heap);
        g->order[g->n_order++] = k;
        const qkv_ir_node *n = &g->nodes[k];
        for (size_t j = 0; j < n->n_outputs; j++) {
            int32_t id = n->outputs[j];
            if (id < 0)
                continue;
            const qkv_ir_value *v = &g->values[id];
            for (size_t c = 0; c < v->n_consumers; c++)
                if (--indeg[v->consumers[c]] == 0)
                    heap_push(heap, &n_heap, v->consumers[c]);
        }
    }
}

/* Undoes what a failed finalize built: no order, no consumer lists. */
static void drop_links(qkv_ir_graph *g)
{
    free(g->order);
    g->order = NULL;
    g->n_order = 0;
    for (size_t v = 0; v < g->n_values; v++) {
        free(g->values[v].consumers);
        g->values[v].consumers = NULL;
        g->values[v].n_consumers = 0;
    }
}

qkv_status qkv_graph_finalize(qkv_ir_graph *g, qkv_error *err)
{
    reset_links(g);
    qkv_status st = set_producers(g, err);
    if (st == QKV_OK)
        st = count_uses(g, err);
    if (st != QKV_OK) {
        drop_links(g);
        return st;
    }
    size_t *fill = calloc(g->n_values ? g->n_values : 1, sizeof *fill);
    int32_t *indeg = calloc(g->n_nodes ? g->n_nodes : 1, sizeof *indeg);
    int32_t *heap = malloc((g->n_nodes ? g->n_nodes : 1) * sizeof *heap);
    g->order = malloc((g->n_nodes ? g->n_nodes : 1) * sizeof *g->order);
    if (!fill || !indeg || !heap || !g->order || !fill_consumers(g, fill, indeg)) {
        st = qkv_error_set(err, QKV_ERR_OUT_OF_MEMORY, "out of memory finalizing graph '%s'",
                           g->name ? g->name : "");
    } else {
        topo_order(g, indeg, heap);
        if (g->n_order != g->n_nodes)
            st = report_cycle(g, indeg, err);
    }
    if (st != QKV_OK)
        drop_links(g);
    free(fill);
    free(indeg);
    free(heap);
    return st;
}

void qkv_graph_max_arity(const qkv_ir_graph *g, size_t *max_inputs, size_t *max_outputs)
{
    size_t in = 1, out = 1;
    for (size_t i = 0; i < g->n_nodes; i++) {
        if (g->nodes[i].n_inputs > in)
            in = g->nodes[i].n_inputs;
        if (g->nodes[i].n_outputs > out)
            out = g->nodes[i].n_outputs;
    }
    *max_inputs = in;
    *max_outputs = out;
}
