/*
 * subgraphs.c - the session's table of subgraphs (subgraphs.h).
 */
#include "subgraphs.h"

#include <stdlib.h>

#include "error.h"
#include "plan.h"
#include "session.h"

/* Counts the subgraphs of g's nodes, at every level below g. */
static size_t count_bodies(const qkv_ir_graph *g)
{
    size_t n = 0;
    for (size_t i = 0; i < g->n_nodes; i++) {
        const qkv_ir_node *node = &g->nodes[i];
        for (size_t a = 0; a < node->n_attrs; a++) {
            const qkv_ir_attr *at = &node->attrs[a];
            if (at->type != QKV_ATTR_GRAPH && at->type != QKV_ATTR_GRAPHS)
                continue;
            for (size_t k = 0; k < at->n; k++)
                if (at->graphs && at->graphs[k])
                    n += 1 + count_bodies(at->graphs[k]);
        }
    }
    return n;
}

/* Appends g's subgraphs, each followed by its own (depth: g's depth). The
 * loader bounds the nesting, so the recursion is bounded too. */
static void add_bodies(qkv_session *s, qkv_ir_graph *g, int32_t depth)
{
    for (size_t i = 0; i < g->n_nodes; i++) {
        qkv_ir_node *node = &g->nodes[i];
        for (size_t a = 0; a < node->n_attrs; a++) {
            qkv_ir_attr *at = &node->attrs[a];
            if (at->type != QKV_ATTR_GRAPH && at->type != QKV_ATTR_GRAPHS)
                continue;
            for (size_t k = 0; k < at->n; k++) {
                qkv_ir_graph *sg = at->graphs ? at->graphs[k] : NULL;
                if (!sg)
                    continue;
                qkv_body *b = &s->bodies[s->n_bodies];
                b->g = sg;
                b->depth = depth + 1;
                b->n_bound = qkv_graph_bound_ids(sg, NULL);
                pthread_mutex_init(&b->lock, NULL);
                sg->body_id = (int32_t)s->n_bodies++;
                add_bodies(s, sg, depth + 1);
            }
        }
    }
}

qkv_status qkv_subgraphs_collect(qkv_session *s, qkv_error *err)
{
    size_t n = count_bodies(s->model->graph);
    if (n == 0)
        return QKV_OK;
    s->bodies = calloc(n, sizeof *s->bodies);
    if (!s->bodies)
        return qkv_error_set(err, QKV_ERR_OUT_OF_MEMORY, "out of memory collecting subgraphs");
    add_bodies(s, s->model->graph, 0);
    return QKV_OK;
}

void qkv_subgraphs_destroy(qkv_session *s)
{
    if (!s || !s->bodies)
        return;
    for (size_t i = 0; i < s->n_bodies; i++) {
        qkv_body *b = &s->bodies[i];
        for (size_t p = 0; p < b->n_plans; p++)
            qkv_plan_release(b->plans[p]);
        for (size_t k = 0; k < b->g->n_nodes; k++) {
            qkv_ir_node *n = &b->g->nodes[k];
            if (n->kernel && n->kernel->destroy && n->kernel_state)
                n->kernel->destroy(n->kernel_state);
            n->kernel_state = NULL;
            n->kernel = NULL;
        }
        pthread_mutex_destroy(&b->lock);
    }
    free(s->bodies);
    s->bodies = NULL;
    s->n_bodies = 0;
}
