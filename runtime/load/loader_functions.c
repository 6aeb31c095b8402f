/*
 * loader_functions.c - model-local functions (ModelProto.functions) inlined
 * into the graphs before they are converted, so that an inlined node goes
 * through exactly the validation every other node does.
 *
 * A node calls a function when its (domain, op_type) is a function's
 * (domain, name); model-local functions take precedence over operators of
 * the same name. The call is replaced by a copy of the function's body in
 * which
 *   - the function's formal inputs and outputs become the call's actual
 *     names (a formal input the call omits becomes "", an omitted optional
 *     input; a formal output the call omits gets a unique name; a formal
 *     output that is a formal input too gets an Identity node),
 *   - every other value gets a name unique to the call site
 *     ("F#K/NAME": K counts the call sites of the model), also inside the
 *     subgraphs of body nodes (a function body is closed: a name it does not
 *     define is an error, as in any graph),
 *   - an attribute with ref_attr_name takes the caller's attribute of that
 *     name, renamed; when the caller does not give it, the attribute is left
 *     out and the operator's default applies (the ONNX 1.12 schema compiled
 *     here, IR 8, has no FunctionProto.attribute_proto defaults),
 *   - each node is named "CALLER/F/NAME" (CALLER: the call's name or "#K";
 *     NAME: the body node's name or "#INDEX"), so every later message names
 *     the call, the function and the node,
 *   - a body node that calls a function is expanded in its turn; a function
 *     that reaches itself is refused with the chain of calls.
 * An inlined node takes its opset versions from its function's opset_import
 * (qkv_loader_inline_opset), falling back to the model's.
 *
 * The bodies are copied by packing and unpacking them with protobuf-c, so
 * each copy owns its fields like the rest of the unpacked message (the
 * converter takes arrays and payloads over from it). The graphs that hold
 * calls get new node arrays; qkv_loader_inline_undo puts the original arrays
 * back and frees the copies, before the message is freed.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "error.h"
#include "ir.h"
#include "loader.h"
#include "onnx.pb-c.h"
#include "size_math.h"

/* At most this many nodes come out of inlining: a chain of functions that
 * each call the next twice grows exponentially. */
#define MAX_INLINED_NODES ((size_t)1 << 18)

/* A graph whose node array was replaced, with what to put back. */
typedef struct swap {
    Onnx__GraphProto *gp;
    Onnx__NodeProto **node;
    size_t n_node;
} swap;

/* An inlined node (or a node in one of its subgraphs) and its function. */
typedef struct owner {
    const Onnx__NodeProto *node;
    const Onnx__FunctionProto *fn;
} owner;

/* A growable array of node pointers. */
typedef struct node_list {
    Onnx__NodeProto **v;
    size_t n, cap;
} node_list;

struct qkv_loader_inline {
    Onnx__ModelProto *mp;
    ProtobufCAllocator alloc;
    bool alloc_failed;
    swap *swaps;
    size_t n_swaps, cap_swaps;
    node_list clones; /* every copy made, freed by undo */
    owner *owners;    /* sorted by node address once inlining is done */
    size_t n_owners, cap_owners;
    size_t calls;   /* call sites expanded so far */
    size_t inlined; /* nodes emitted from function bodies */
    qkv_error *err;
};

/* The chain of calls being expanded, innermost first. */
typedef struct frame {
    const Onnx__FunctionProto *fn;
    const struct frame *up;
    int depth;
} frame;

/* What one call site renames. */
typedef struct call_site {
    const Onnx__NodeProto *call;
    const Onnx__FunctionProto *fn;
    char prefix[96]; /* "F#K/" for inner values */
    char label[160]; /* "CALLER/F/" for node names */
} call_site;

static qkv_status expand_call(qkv_loader_inline *in, const Onnx__NodeProto *call,
                              const Onnx__FunctionProto *fn, const frame *up, node_list *out);
static qkv_status process_subgraphs(qkv_loader_inline *in, Onnx__NodeProto *np, const frame *up);

static qkv_status oom(qkv_loader_inline *in)
{
    return qkv_error_set(in->err, QKV_ERR_OUT_OF_MEMORY,
                         "out of memory while inlining model-local functions");
}

/* Grows *arr (elements of `elem` bytes, capacity *cap) to hold n + 1. */
static bool reserve(void **arr, size_t *cap, size_t n, size_t elem)
{
    if (n < *cap)
        return true;
    size_t want = *cap ? *cap * 2 : 8, bytes;
    if (qkv_mul_overflow(want, elem, &bytes))
        return false;
    void *p = realloc(*arr, bytes);
    if (!p)
        return false;
    *arr = p;
    *cap = want;
    return true;
}

static bool list_push(node_list *l, Onnx__NodeProto *np)
{
    if (!reserve((void **)&l->v, &l->cap, l->n, sizeof *l->v))
        return false;
    l->v[l->n++] = np;
    return true;
}

/* "" for the ONNX domain however it is spelled. */
static const char *norm_domain(const char *d) { return !d || strcmp(d, "ai.onnx") == 0 ? "" : d; }

static const Onnx__FunctionProto *find_function(const Onnx__ModelProto *mp, const char *domain,
                                                const char *name)
{
    domain = norm_domain(domain);
    for (size_t k = 0; k < mp->n_functions; k++) {
        const Onnx__FunctionProto *f = mp->functions[k];
        if (name && f->name && strcmp(f->name, name) == 0 &&
            strcmp(norm_domain(f->domain), domain) == 0)
            return f;
    }
    return NULL;
}

/* "DOMAIN.NAME", or "NAME" in the ONNX domain, into buf. */
static const char *fn_title(char *buf, size_t cap, const Onnx__FunctionProto *f)
{
    const char *d = norm_domain(f->domain);
    snprintf(buf, cap, "%s%s%s", d, d[0] ? "." : "", f->name);
    return buf;
}

/* ---- copies ---------------------------------------------------------------------- */

/* A deep copy of m, owned like an unpacked message; NULL when out of memory. */
static ProtobufCMessage *clone_message(qkv_loader_inline *in, const ProtobufCMessage *m)
{
    size_t bytes = protobuf_c_message_get_packed_size(m);
    uint8_t *buf = malloc(bytes ? bytes : 1);
    if (!buf)
        return NULL;
    protobuf_c_message_pack(m, buf);
    ProtobufCMessage *c = protobuf_c_message_unpack(m->descriptor, &in->alloc, bytes, buf);
    free(buf);
    return c;
}

/* Replaces the message-owned string *slot by a copy of "a" "b" "c". */
static bool set_string(qkv_loader_inline *in, char **slot, const char *a, const char *b,
                       const char *c)
{
    size_t na = strlen(a), nb = strlen(b), nc = strlen(c), n;
    if (qkv_add_overflow(na, nb, &n) || qkv_add_overflow(n, nc + 1, &n))
        return false;
    char *s = in->alloc.alloc(in->alloc.allocator_data, n);
    if (!s)
        return false;
    memcpy(s, a, na);
    memcpy(s + na, b, nb);
    memcpy(s + na + nb, c, nc + 1);
    if (*slot)
        in->alloc.free(in->alloc.allocator_data, *slot);
    *slot = s;
    return true;
}

/* ---- renaming a copied body ----------------------------------------------------------- */

/* Renames the value name in *slot for call site cs ("" stays ""). */
static bool rename_value(qkv_loader_inline *in, const call_site *cs, char **slot)
{
    const char *name = *slot;
    if (!name || !name[0])
        return true;
    const Onnx__FunctionProto *f = cs->fn;
    for (size_t k = 0; k < f->n_input; k++)
        if (strcmp(f->input[k], name) == 0) {
            const char *actual = k < cs->call->n_input ? cs->call->input[k] : "";
            return set_string(in, slot, actual ? actual : "", "", "");
        }
    for (size_t k = 0; k < f->n_output; k++)
        if (strcmp(f->output[k], name) == 0 && k < cs->call->n_output && cs->call->output[k] &&
            cs->call->output[k][0])
            return set_string(in, slot, cs->call->output[k], "", "");
    char *old = *slot;
    *slot = NULL;
    bool ok = set_string(in, slot, cs->prefix, old, "");
    if (ok)
        in->alloc.free(in->alloc.allocator_data, old);
    else
        *slot = old;
    return ok;
}

static const Onnx__AttributeProto *caller_attr(const call_site *cs, const char *name)
{
    for (size_t k = 0; k < cs->call->n_attribute; k++)
        if (cs->call->attribute[k]->name && strcmp(cs->call->attribute[k]->name, name) == 0)
            return cs->call->attribute[k];
    return NULL;
}

static qkv_status rewrite_graph(qkv_loader_inline *in, const call_site *cs, Onnx__GraphProto *g);

/* Renames the values of a copied node, substitutes its attribute
 * references, and recurses into its subgraphs. */
static qkv_status rewrite_node(qkv_loader_inline *in, const call_site *cs, Onnx__NodeProto *np)
{
    for (size_t k = 0; k < np->n_input; k++)
        if (!rename_value(in, cs, &np->input[k]))
            return oom(in);
    for (size_t k = 0; k < np->n_output; k++)
        if (!rename_value(in, cs, &np->output[k]))
            return oom(in);
    qkv_status st = QKV_OK;
    for (size_t k = 0; k < np->n_attribute && st == QKV_OK; k++) {
        Onnx__AttributeProto *a = np->attribute[k];
        if (!a->ref_attr_name || !a->ref_attr_name[0])
            continue;
        const Onnx__AttributeProto *given = caller_attr(cs, a->ref_attr_name);
        Onnx__AttributeProto *c = NULL;
        if (given) { /* not given: left out, the operator's default applies */
            c = (Onnx__AttributeProto *)clone_message(in, &given->base);
            if (!c || !set_string(in, &c->name, a->name ? a->name : "", "", "")) {
                if (c)
                    onnx__attribute_proto__free_unpacked(c, &in->alloc);
                st = oom(in);
                break;
            }
        }
        onnx__attribute_proto__free_unpacked(a, &in->alloc);
        np->attribute[k] = c;
    }
    size_t kept = 0; /* drop the left-out ones before anything can fail */
    for (size_t k = 0; k < np->n_attribute; k++)
        if (np->attribute[k])
            np->attribute[kept++] = np->attribute[k];
    np->n_attribute = kept;
    for (size_t k = 0; k < np->n_attribute && st == QKV_OK; k++) {
        Onnx__AttributeProto *a = np->attribute[k];
        if (a->g)
            st = rewrite_graph(in, cs, a->g);
        for (size_t j = 0; j < a->n_graphs && st == QKV_OK; j++)
            st = rewrite_graph(in, cs, a->graphs[j]);
    }
    return st;
}

/* Renames every value a subgraph of a copied body names. */
static qkv_status rewrite_graph(qkv_loader_inline *in, const call_site *cs, Onnx__GraphProto *g)
{
    for (size_t k = 0; k < g->n_input; k++)
        if (!rename_value(in, cs, &g->input[k]->name))
            return oom(in);
    for (size_t k = 0; k < g->n_output; k++)
        if (!rename_value(in, cs, &g->output[k]->name))
            return oom(in);
    for (size_t k = 0; k < g->n_value_info; k++)
        if (!rename_value(in, cs, &g->value_info[k]->name))
            return oom(in);
    for (size_t k = 0; k < g->n_initializer; k++)
        if (!rename_value(in, cs, &g->initializer[k]->name))
            return oom(in);
    for (size_t k = 0; k < g->n_node; k++) {
        qkv_status st = rewrite_node(in, cs, g->node[k]);
        if (st != QKV_OK)
            return st;
    }
    return QKV_OK;
}

/* ---- which function an inlined node came from ------------------------------------------- */

/* Records fn as the function of np and of every node in np's subgraphs. */
static bool add_owner_tree(qkv_loader_inline *in, const Onnx__NodeProto *np,
                           const Onnx__FunctionProto *fn)
{
    if (!reserve((void **)&in->owners, &in->cap_owners, in->n_owners, sizeof *in->owners))
        return false;
    in->owners[in->n_owners++] = (owner){np, fn};
    for (size_t k = 0; k < np->n_attribute; k++) {
        const Onnx__AttributeProto *a = np->attribute[k];
        size_t ng = a->g ? 1 : a->n_graphs;
        for (size_t j = 0; j < ng; j++) {
            const Onnx__GraphProto *g = a->g ? a->g : a->graphs[j];
            for (size_t i = 0; i < g->n_node; i++)
                if (!add_owner_tree(in, g->node[i], fn))
                    return false;
        }
    }
    return true;
}

static int owner_cmp(const void *a, const void *b)
{
    uintptr_t x = (uintptr_t)((const owner *)a)->node, y = (uintptr_t)((const owner *)b)->node;
    return x < y ? -1 : x > y;
}

/* ---- expansion -------------------------------------------------------------------------- */

/* The function np calls, or NULL. A node in a domain that holds model-local
 * functions (other than the ONNX domain) must call one of them. */
static qkv_status called_function(qkv_loader_inline *in, const Onnx__NodeProto *np,
                                  const Onnx__FunctionProto **fn)
{
    *fn = find_function(in->mp, np->domain, np->op_type);
    const char *domain = norm_domain(np->domain);
    if (*fn || !domain[0] || !np->op_type)
        return QKV_OK;
    for (size_t k = 0; k < in->mp->n_functions; k++)
        if (strcmp(norm_domain(in->mp->functions[k]->domain), domain) == 0) {
            char nd[QKV_ERROR_MESSAGE_BYTES / 2];
            return qkv_error_set(
                in->err, QKV_ERR_INVALID_MODEL,
                "%s: the model defines no function '%s' in domain '%s'",
                qkv_node_format(nd, sizeof nd, np->name, SIZE_MAX, domain, np->op_type, 0),
                np->op_type, domain);
        }
    return QKV_OK;
}

/* Expands the calls in gp's nodes (and in their subgraphs); gp gets a new
 * node array when it holds a call. */
static qkv_status process_graph(qkv_loader_inline *in, Onnx__GraphProto *gp, const frame *up)
{
    node_list out = {0};
    bool calls = false;
    qkv_status st = QKV_OK;
    for (size_t k = 0; k < gp->n_node && st == QKV_OK; k++) {
        Onnx__NodeProto *np = gp->node[k];
        const Onnx__FunctionProto *fn;
        if ((st = called_function(in, np, &fn)) != QKV_OK)
            break;
        if (fn) {
            calls = true;
            st = expand_call(in, np, fn, up, &out);
        } else {
            st = process_subgraphs(in, np, up);
            if (st == QKV_OK && !list_push(&out, np))
                st = oom(in);
        }
    }
    if (st == QKV_OK && calls &&
        !reserve((void **)&in->swaps, &in->cap_swaps, in->n_swaps, sizeof *in->swaps))
        st = oom(in);
    if (st != QKV_OK || !calls) {
        free(out.v);
        return st;
    }
    in->swaps[in->n_swaps++] = (swap){gp, gp->node, gp->n_node};
    gp->node = out.v;
    gp->n_node = out.n;
    return QKV_OK;
}

static qkv_status process_subgraphs(qkv_loader_inline *in, Onnx__NodeProto *np, const frame *up)
{
    for (size_t k = 0; k < np->n_attribute; k++) {
        Onnx__AttributeProto *a = np->attribute[k];
        qkv_status st = QKV_OK;
        if (a->g)
            st = process_graph(in, a->g, up);
        for (size_t j = 0; j < a->n_graphs && st == QKV_OK; j++)
            st = process_graph(in, a->graphs[j], up);
        if (st != QKV_OK)
            return st;
    }
    return QKV_OK;
}

/* "A -> B -> A": the chain of calls from fn's earlier frame f down to the
 * call of fn being expanded (frames are innermost first). */
static void call_chain(char *buf, size_t cap, const frame *up, const frame *f,
                       const Onnx__FunctionProto *fn)
{
    const frame *chain[QKV_LOADER_MAX_GRAPH_DEPTH + 1];
    size_t n = 0;
    for (const frame *g = up; g && n < sizeof chain / sizeof *chain; g = g->up) {
        chain[n++] = g;
        if (g == f)
            break;
    }
    size_t len = 0;
    buf[0] = '\0';
    for (size_t k = n; k-- > 0 && len < cap;) {
        char t[128];
        int w = snprintf(buf + len, cap - len, "%s -> ", fn_title(t, sizeof t, chain[k]->fn));
        len += w > 0 ? (size_t)w : 0;
    }
    if (len < cap) {
        char t[128];
        snprintf(buf + len, cap - len, "%s", fn_title(t, sizeof t, fn));
    }
}

/* Refuses a call that breaks the function's signature or recurses. */
static qkv_status check_call(qkv_loader_inline *in, const Onnx__NodeProto *call,
                             const Onnx__FunctionProto *fn, const frame *up)
{
    for (const frame *f = up; f; f = f->up)
        if (f->fn == fn) {
            char chain[QKV_ERROR_MESSAGE_BYTES / 2];
            call_chain(chain, sizeof chain, up, f, fn);
            return qkv_error_set(in->err, QKV_ERR_INVALID_MODEL,
                                 "the function calls itself (%s): recursion is not allowed", chain);
        }
    if (up && up->depth + 1 > QKV_LOADER_MAX_GRAPH_DEPTH)
        return qkv_error_set(in->err, QKV_ERR_UNSUPPORTED,
                             "function calls are nested more than %d levels deep",
                             QKV_LOADER_MAX_GRAPH_DEPTH);
    if (call->n_input > fn->n_input)
        return qkv_error_set(in->err, QKV_ERR_INVALID_MODEL,
                             "%zu inputs given, the function takes at most %zu", call->n_input,
                             fn->n_input);
    if (call->n_output > fn->n_output)
        return qkv_error_set(in->err, QKV_ERR_INVALID_MODEL,
                             "%zu outputs asked for, the function has %zu", call->n_output,
                             fn->n_output);
    for (size_t k = 0; k < call->n_attribute; k++) {
        const char *name = call->attribute[k]->name;
        bool declared = false;
        for (size_t j = 0; j < fn->n_attribute && !declared; j++)
            declared = name && strcmp(fn->attribute[j], name) == 0;
        if (!declared)
            return qkv_error_set(in->err, QKV_ERR_INVALID_MODEL,
                                 "attribute '%s' is not an attribute of the function",
                                 name ? name : "");
    }
    return QKV_OK;
}

/* One copy of body node b for call site cs, pushed to out (or expanded
 * further when it calls a function). */
static qkv_status inline_body_node(qkv_loader_inline *in, const call_site *cs,
                                   const Onnx__NodeProto *b, size_t index, const frame *here,
                                   node_list *out)
{
    if (++in->inlined > MAX_INLINED_NODES)
        return qkv_error_set(in->err, QKV_ERR_UNSUPPORTED,
                             "inlining the model's functions makes more than %zu nodes",
                             MAX_INLINED_NODES);
    Onnx__NodeProto *c = (Onnx__NodeProto *)clone_message(in, &b->base);
    if (!c || !list_push(&in->clones, c)) {
        if (c)
            onnx__node_proto__free_unpacked(c, &in->alloc);
        return oom(in);
    }
    char idx[32] = "";
    if (!b->name || !b->name[0])
        snprintf(idx, sizeof idx, "#%zu", index);
    if (!set_string(in, &c->name, cs->label, idx[0] ? idx : b->name, ""))
        return oom(in);
    qkv_status st = rewrite_node(in, cs, c);
    if (st != QKV_OK)
        return st;
    const Onnx__FunctionProto *callee;
    if ((st = called_function(in, c, &callee)) != QKV_OK)
        return st;
    if (callee)
        return expand_call(in, c, callee, here, out);
    if (!add_owner_tree(in, c, cs->fn))
        return oom(in);
    if ((st = process_subgraphs(in, c, here)) != QKV_OK)
        return st;
    return list_push(out, c) ? QKV_OK : oom(in);
}

/* An Identity node from -> to for call site cs, pushed to out: a formal
 * output that is also a formal input is produced by no body node. */
static qkv_status emit_identity(qkv_loader_inline *in, const call_site *cs, const char *from,
                                const char *to, node_list *out)
{
    void *ad = in->alloc.allocator_data;
    Onnx__NodeProto *n = in->alloc.alloc(ad, sizeof *n);
    if (!n)
        return oom(in);
    onnx__node_proto__init(n);
    if (!list_push(&in->clones, n)) {
        in->alloc.free(ad, n);
        return oom(in);
    }
    if (!(n->input = in->alloc.alloc(ad, sizeof *n->input)))
        return oom(in);
    n->input[0] = NULL;
    if (!set_string(in, &n->input[0], from, "", ""))
        return oom(in);
    n->n_input = 1;
    if (!(n->output = in->alloc.alloc(ad, sizeof *n->output)))
        return oom(in);
    n->output[0] = NULL;
    if (!set_string(in, &n->output[0], to, "", ""))
        return oom(in);
    n->n_output = 1;
    if (!set_string(in, &n->op_type, "Identity", "", "") ||
        !set_string(in, &n->name, cs->label, "output:", to) || !add_owner_tree(in, n, cs->fn))
        return oom(in);
    return list_push(out, n) ? QKV_OK : oom(in);
}

/* Identity nodes for the formal outputs that are formal inputs too. */
static qkv_status pass_through_outputs(qkv_loader_inline *in, const call_site *cs, node_list *out)
{
    const Onnx__FunctionProto *f = cs->fn;
    const Onnx__NodeProto *call = cs->call;
    for (size_t j = 0; j < f->n_output && j < call->n_output; j++) {
        const char *to = call->output[j];
        if (!to || !to[0])
            continue;
        for (size_t i = 0; i < f->n_input; i++) {
            if (strcmp(f->input[i], f->output[j]) != 0)
                continue;
            const char *from = i < call->n_input && call->input[i] ? call->input[i] : "";
            if (!from[0])
                return qkv_error_set(in->err, QKV_ERR_INVALID_MODEL,
                                     "output %zu is the function's input '%s', which the call "
                                     "leaves out",
                                     j, f->input[i]);
            qkv_status st = emit_identity(in, cs, from, to, out);
            if (st != QKV_OK)
                return st;
            break;
        }
    }
    return QKV_OK;
}

static qkv_status expand_call(qkv_loader_inline *in, const Onnx__NodeProto *call,
                              const Onnx__FunctionProto *fn, const frame *up, node_list *out)
{
    qkv_status st = check_call(in, call, fn, up);
    size_t site = ++in->calls;
    call_site cs = {call, fn, "", ""};
    snprintf(cs.prefix, sizeof cs.prefix, "%s#%zu/", fn->name, site);
    if (call->name && call->name[0])
        snprintf(cs.label, sizeof cs.label, "%s/%s/", call->name, fn->name);
    else
        snprintf(cs.label, sizeof cs.label, "#%zu/%s/", site, fn->name);
    frame here = {fn, up, up ? up->depth + 1 : 1};
    for (size_t k = 0; k < fn->n_node && st == QKV_OK; k++)
        st = inline_body_node(in, &cs, fn->node[k], k, &here, out);
    if (st == QKV_OK)
        st = pass_through_outputs(in, &cs, out);
    if (st != QKV_OK && st != QKV_ERR_OUT_OF_MEMORY) {
        /* name the call, unless that would cut the reason off the end of a
         * message that deep nesting has already filled with calls */
        char nd[QKV_ERROR_MESSAGE_BYTES / 2], t[128], what[QKV_ERROR_MESSAGE_BYTES];
        qkv_node_format(nd, sizeof nd, call->name, SIZE_MAX, norm_domain(call->domain),
                        call->op_type, 0);
        int n =
            snprintf(what, sizeof what, "%s: calling function '%s'", nd, fn_title(t, sizeof t, fn));
        if (n > 0 && (size_t)n + 2 + strlen(in->err->message) < sizeof in->err->message)
            qkv_error_prefix(in->err, "%s", what);
    }
    return st;
}

/* ---- checks of the function definitions --------------------------------------------------- */

/* Every ref_attr_name in np (and its subgraphs) names an attribute of fn. */
static qkv_status check_refs(qkv_loader_inline *in, const Onnx__FunctionProto *fn,
                             const Onnx__NodeProto *np, size_t index)
{
    for (size_t k = 0; k < np->n_attribute; k++) {
        const Onnx__AttributeProto *a = np->attribute[k];
        const char *ref = a->ref_attr_name;
        bool declared = !ref || !ref[0];
        for (size_t j = 0; j < fn->n_attribute && !declared; j++)
            declared = strcmp(fn->attribute[j], ref) == 0;
        if (!declared) {
            char nd[QKV_ERROR_MESSAGE_BYTES / 2], t[128];
            return qkv_error_set(
                in->err, QKV_ERR_INVALID_MODEL,
                "function '%s': %s: attribute '%s' refers to '%s', which is not an attribute "
                "of the function",
                fn_title(t, sizeof t, fn),
                qkv_node_format(nd, sizeof nd, np->name, index, np->domain, np->op_type, 0),
                a->name ? a->name : "", ref);
        }
        size_t ng = a->g ? 1 : a->n_graphs;
        for (size_t j = 0; j < ng; j++) {
            const Onnx__GraphProto *g = a->g ? a->g : a->graphs[j];
            for (size_t i = 0; i < g->n_node; i++) {
                qkv_status st = check_refs(in, fn, g->node[i], i);
                if (st != QKV_OK)
                    return st;
            }
        }
    }
    return QKV_OK;
}

static qkv_status check_functions(qkv_loader_inline *in)
{
    const Onnx__ModelProto *mp = in->mp;
    for (size_t k = 0; k < mp->n_functions; k++) {
        const Onnx__FunctionProto *f = mp->functions[k];
        if (!f->name || !f->name[0])
            return qkv_error_set(in->err, QKV_ERR_INVALID_MODEL, "function #%zu has no name", k);
        char t[128];
        fn_title(t, sizeof t, f);
        if (find_function(mp, f->domain, f->name) != f)
            return qkv_error_set(in->err, QKV_ERR_INVALID_MODEL, "function '%s' is defined twice",
                                 t);
        for (size_t j = 0; j < f->n_input; j++)
            if (!f->input[j] || !f->input[j][0])
                return qkv_error_set(in->err, QKV_ERR_INVALID_MODEL,
                                     "function '%s': input #%zu has no name", t, j);
        for (size_t j = 0; j < f->n_output; j++)
            if (!f->output[j] || !f->output[j][0])
                return qkv_error_set(in->err, QKV_ERR_INVALID_MODEL,
                                     "function '%s': output #%zu has no name", t, j);
        for (size_t j = 0; j < f->n_node; j++) {
            qkv_status st = check_refs(in, f, f->node[j], j);
            if (st != QKV_OK)
                return st;
        }
    }
    return QKV_OK;
}

/* ---- entry points ------------------------------------------------------------------------- */

qkv_status qkv_loader_inline_functions(struct Onnx__ModelProto *mp, qkv_loader_inline **out,
                                       qkv_error *err)
{
    *out = NULL;
    if (mp->n_functions == 0 || !mp->graph)
        return QKV_OK;
    qkv_loader_inline *in = calloc(1, sizeof *in);
    if (!in)
        return qkv_error_set(err, QKV_ERR_OUT_OF_MEMORY,
                             "out of memory while inlining model-local functions");
    in->mp = mp;
    in->err = err;
    qkv_loader_pb_allocator(&in->alloc, &in->alloc_failed);
    qkv_status st = check_functions(in);
    if (st == QKV_OK)
        st = process_graph(in, mp->graph, NULL);
    if (st != QKV_OK) {
        qkv_loader_inline_undo(in);
        return st;
    }
    if (in->n_owners > 1)
        qsort(in->owners, in->n_owners, sizeof *in->owners, owner_cmp);
    *out = in;
    return QKV_OK;
}

int64_t qkv_loader_inline_opset(const qkv_loader_inline *in, const struct Onnx__NodeProto *np,
                                const char *domain)
{
    if (!in || in->n_owners == 0)
        return -1;
    owner key = {np, NULL};
    const owner *o = bsearch(&key, in->owners, in->n_owners, sizeof *in->owners, owner_cmp);
    if (!o)
        return -1;
    domain = norm_domain(domain);
    for (size_t k = 0; k < o->fn->n_opset_import; k++) {
        const Onnx__OperatorSetIdProto *op = o->fn->opset_import[k];
        if (strcmp(norm_domain(op->domain), domain) == 0 && op->has_version)
            return op->version;
    }
    return -1;
}

void qkv_loader_inline_undo(qkv_loader_inline *in)
{
    if (!in)
        return;
    for (size_t k = in->n_swaps; k-- > 0;) {
        swap *s = &in->swaps[k];
        free(s->gp->node);
        s->gp->node = s->node;
        s->gp->n_node = s->n_node;
    }
    for (size_t k = 0; k < in->clones.n; k++)
        onnx__node_proto__free_unpacked(in->clones.v[k], &in->alloc);
    free(in->clones.v);
    free(in->swaps);
    free(in->owners);
    free(in);
}
