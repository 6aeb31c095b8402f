/* pass_harness.c - see pass_harness.h. */
#include "pass_harness.h"

#include <criterion/criterion.h>

#include "kernel_host.h"
#include "loader.h"
#include "passes.h"
#include "session.h"

qkv_model *ph_prepare(const char *path, qkv_registry *reg)
{
    qkv_model *model = NULL;
    qkv_error err = {0};
    cr_assert_eq(qkv_model_load_file(path, &model, &err), QKV_OK, "%s: %s", path, err.message);
    qkv_ir_graph *g = model->graph;
    for (size_t i = 0; i < g->n_nodes; i++) {
        qkv_ir_node *n = &g->nodes[i];
        const qkv_kernel *k = qkv_registry_find(reg, n->domain, n->op_type, n->opset, NULL);
        cr_assert(k, "no kernel for %s", n->op_type);
        n->kernel = k;
        if (!k->init)
            continue;
        qkv_node_ctx nctx = {.node = n, .version = k->since_version, .err = &err};
        cr_assert_eq(k->init(k, qkv_host_api_get(), &nctx, &n->kernel_state), QKV_OK, "%s",
                     err.message);
    }
    cr_assert_eq(qkv_infer_graph(g, &err), QKV_OK, "%s", err.message);
    return model;
}

void ph_release(qkv_model *model)
{
    qkv_ir_graph *g = model->graph;
    for (size_t i = 0; i < g->n_nodes; i++) {
        qkv_ir_node *n = &g->nodes[i];
        if (n->kernel && n->kernel->destroy && n->kernel_state)
            n->kernel->destroy(n->kernel_state);
        n->kernel_state = NULL;
    }
    qkv_model_destroy(model);
}

qkv_registry *ph_builtins(void)
{
    qkv_registry *reg = qkv_registry_create();
    qkv_error err = {0};
    cr_assert(reg);
    cr_assert_eq(qkv_registry_add_builtins(reg, &err), QKV_OK, "%s", err.message);
    return reg;
}
