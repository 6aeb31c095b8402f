/* node_eval.c - one node, standalone: init, check, infer, prepare, allocate,
 * compute. Its per-plan state (host->plan_alloc in prepare) lives for that
 * one call. */
#include "node_eval.h"

#include <stdlib.h>
#include <string.h>

#include "error.h"
#include "loader.h"
#include "size_math.h"

static uint64_t input_mask(const qkv_kernel *k, size_t i)
{
    if (k->n_input_types == 0)
        return 0;
    return k->input_types[i < k->n_input_types ? i : k->n_input_types - 1];
}

/* The node's arity against the kernel's: counts, and no omitted input among
 * the ones the kernel cannot do without (the first min_inputs, unless the
 * kernel says one of them may be omitted). Checked before the kernel's init
 * runs, so no kernel reads an input that is not there. */
static qkv_status check_arity(const qkv_kernel *k, const qkv_ir_node *node, size_t *n_in_out,
                              qkv_error *err)
{
    size_t n_in = node->n_inputs, n_out = node->n_outputs;
    /* trailing omitted inputs do not count toward the arity */
    while (n_in > 0 && node->inputs[n_in - 1] < 0)
        n_in--;
    while (n_out > 0 && node->outputs[n_out - 1] < 0)
        n_out--;
    *n_in_out = n_in;
    size_t omitted = SIZE_MAX;
    for (size_t i = 0; i < n_in && (int64_t)i < k->min_inputs && omitted == SIZE_MAX; i++)
        if (node->inputs[i] < 0 && (i >= 64 || !(k->omittable_inputs >> i & 1)))
            omitted = i;
    bool bad_in =
        (int64_t)n_in < k->min_inputs || (k->max_inputs >= 0 && (int64_t)n_in > k->max_inputs);
    bool bad_out =
        (int64_t)n_out < k->min_outputs || (k->max_outputs >= 0 && (int64_t)n_out > k->max_outputs);
    if (!bad_in && !bad_out && omitted == SIZE_MAX)
        return QKV_OK;
    char what[256]; /* only on failure: the check runs for every node */
    qkv_node_describe(node, k->since_version, what, sizeof what);
    if (bad_in)
        return qkv_error_set(err, QKV_ERR_INVALID_MODEL, "%s: has %zu inputs, expected %d to %d",
                             what, n_in, k->min_inputs, k->max_inputs);
    if (bad_out)
        return qkv_error_set(err, QKV_ERR_INVALID_MODEL, "%s: has %zu outputs, expected %d to %d",
                             what, n_out, k->min_outputs, k->max_outputs);
    return qkv_error_set(err, QKV_ERR_INVALID_MODEL,
                         "%s: input %zu is omitted, but the first %d are required", what, omitted,
                         k->min_inputs);
}

qkv_status qkv_kernel_init_node(const qkv_kernel *k, qkv_ir_node *n, const qkv_ir_graph *g,
                                qkv_error *err)
{
    n->kernel = k;
    n->kernel_state = NULL;
    if (!k->init)
        return QKV_OK;
    size_t n_in;
    qkv_status st = check_arity(k, n, &n_in, err);
    if (st != QKV_OK) {
        n->kernel = NULL;
        return st;
    }
    qkv_node_ctx nctx = {.node = n, .version = k->since_version, .err = err, .graph = g};
    void *state = NULL;
    qkv_error_clear(err);
    st = k->init(k, qkv_host_api_get(), &nctx, &state);
    if (st != QKV_OK) {
        n->kernel = NULL;
        if (err && err->message[0] == '\0') {
            char what[256];
            qkv_node_describe(n, k->since_version, what, sizeof what);
            qkv_error_set(err, st, "%s: init failed", what);
        }
        return st;
    }
    n->kernel_state = state;
    return QKV_OK;
}

qkv_status qkv_kernel_check_io(const qkv_kernel *k, const qkv_ir_node *node,
                               const qkv_tensor *inputs, qkv_error *err)
{
    size_t n_in;
    qkv_status st = check_arity(k, node, &n_in, err);
    if (st != QKV_OK)
        return st;
    for (size_t i = 0; i < n_in; i++) {
        uint64_t mask = input_mask(k, i);
        qkv_dtype t = inputs[i].dtype;
        if (t == QKV_DTYPE_UNDEFINED || mask == 0)
            continue;
        if ((unsigned)t >= 64 || !(mask & QKV_DTYPE_BIT(t))) {
            char what[256];
            qkv_node_describe(node, k->since_version, what, sizeof what);
            return qkv_error_set(err, QKV_ERR_TYPE, "%s: input %zu has type %s, not supported",
                                 what, i, qkv_dtype_name(t));
        }
    }
    return QKV_OK;
}

qkv_status qkv_kernel_infer(const qkv_kernel *k, void *state, qkv_host_ctx *hctx,
                            const qkv_tensor *inputs, size_t n_inputs, qkv_tensor *outputs,
                            size_t n_outputs)
{
    qkv_kernel_io io;
    for (size_t i = 0; i < n_outputs; i++) {
        memset(&outputs[i], 0, sizeof outputs[i]);
        outputs[i].rank = -1;
    }
    if (!k->infer)
        return QKV_OK; /* shapes known only at run time */
    qkv_kernel_io_init(&io, hctx, inputs, n_inputs, outputs, n_outputs);
    qkv_status st = k->infer(state, &io);
    if (st != QKV_OK && hctx->err && hctx->err->status == QKV_OK)
        st = io.host->error(hctx, st, "infer failed without a message");
    return st;
}

/*
 * A string output as a kernel leaves it: numel pointers, then (when its
 * infer asked for room) the characters some of them point at; others may
 * point at an input's strings. Makes it an owned string tensor like a
 * loaded one (each string malloc'd, data exactly the pointer array), so it
 * outlives its inputs and qkv_tensor_data_free frees it. false when out of
 * memory (t is then a block that only needs free()).
 */
static bool own_strings(qkv_tensor *t)
{
    size_t n = 0;
    qkv_shape_elements(t->dims, t->rank, &n); /* checked when t was sized */
    char **s = t->data;
    char **copy = calloc(n ? n : 1, sizeof *copy);
    if (!copy)
        return false;
    for (size_t i = 0; i < n; i++) {
        const char *src = s[i] ? s[i] : "";
        size_t len = strlen(src);
        copy[i] = malloc(len + 1);
        if (!copy[i]) {
            for (size_t j = 0; j < i; j++)
                free(copy[j]);
            free(copy);
            return false;
        }
        memcpy(copy[i], src, len + 1);
    }
    free(t->data);
    t->data = copy;
    t->data_bytes = n * sizeof *copy;
    return true;
}

/* Output i is omitted by the node, or a sequence/optional (host->value_append
 * fills it): nothing to size or allocate. */
static bool not_allocated(const qkv_host_ctx *hctx, size_t i)
{
    const qkv_ir_node *node = hctx->node;
    return (i < node->n_outputs && node->outputs[i] < 0) ||
           (hctx->out_kinds && hctx->out_kinds[i] != QKV_KIND_TENSOR);
}

/* Output i is sized and allocated here: the kernel has infer, the output is
 * a tensor the node does not omit, and (i < 64) infer gave it a shape
 * (bit i of sized). */
static bool sized_here(const qkv_kernel *k, const qkv_host_ctx *hctx, uint64_t sized, size_t i)
{
    return i < 64 ? (sized >> i & 1) != 0 : k->infer && !not_allocated(hctx, i);
}

/* Sets data_bytes of each output infer gave a full shape; *sized gets bit i
 * for each such output i < 64. An output infer leaves unknown (every output
 * of a kernel without infer, a data-dependent output of a control-flow
 * node) is allocated by compute with host->output_alloc: nothing is sized
 * here. */
static qkv_status size_outputs(const qkv_kernel *k, qkv_host_ctx *hctx, const qkv_kernel_io *io,
                               qkv_tensor *outputs, size_t n_outputs, uint64_t *sized)
{
    *sized = 0;
    for (size_t i = 0; i < n_outputs && k->infer; i++) {
        qkv_tensor *o = &outputs[i];
        if (not_allocated(hctx, i))
            continue;
        size_t elems, bytes;
        /* a string output's infer may ask for room for its characters too */
        size_t asked = o->dtype == QKV_DTYPE_STRING ? o->data_bytes : 0;
        if (!qkv_shape_elements(o->dims, o->rank, &elems)) {
            if (!qkv_node_has_subgraphs(hctx->node) || i >= 64)
                return io->host->error(hctx, QKV_ERR_SHAPE,
                                       "output %zu: shape not known after inference (rank %d)", i,
                                       o->rank);
            o->rank = -1; /* compute gives it its shape */
            continue;
        }
        if (!qkv_dtype_storage_bytes(o->dtype, elems, &bytes))
            return io->host->error(hctx, QKV_ERR_SHAPE, "output %zu: %zu elements of %s overflow",
                                   i, elems, qkv_dtype_name(o->dtype));
        o->data_bytes = asked > bytes ? asked : bytes;
        if (i < 64)
            *sized |= (uint64_t)1 << i;
    }
    return QKV_OK;
}

/* Runs the kernel's prepare with plan_mem as the node's per-plan memory
 * (freed by the caller, also on failure). */
static qkv_status prepare_node(const qkv_kernel *k, void *state, qkv_host_ctx *hctx,
                               qkv_kernel_io *io, qkv_plan_mem *plan_mem)
{
    if (!k->prepare)
        return QKV_OK;
    qkv_plan_mem *outer = hctx->plan_mem;
    hctx->plan_mem = plan_mem;
    qkv_status st = k->prepare(state, io);
    hctx->plan_mem = outer;
    return st;
}

/* The bytes allocated here, scratch and the sized outputs, into *need
 * (SIZE_MAX when it overflows); an error when the session's memory limit
 * does not leave them. */
static qkv_status check_memory(const qkv_kernel *k, qkv_host_ctx *hctx, const qkv_kernel_io *io,
                               const qkv_tensor *outputs, size_t n_outputs, uint64_t sized,
                               size_t *need)
{
    *need = io->scratch_bytes;
    for (size_t i = 0; i < n_outputs; i++)
        if (sized_here(k, hctx, sized, i) && qkv_add_overflow(*need, outputs[i].data_bytes, need))
            *need = SIZE_MAX;
    if (hctx->memory_limited && *need > hctx->memory_left)
        return io->host->error(hctx, QKV_ERR_OUT_OF_MEMORY,
                               "outputs and scratch need %zu bytes, more than the %zu the "
                               "session's memory limit leaves",
                               *need, hctx->memory_left);
    return QKV_OK;
}

/* Allocates each sized output. calloc: string outputs start as NULL
 * pointers, and a kernel that fails half way leaves nothing uninitialised
 * to free. */
static qkv_status alloc_outputs(const qkv_kernel *k, qkv_host_ctx *hctx, const qkv_kernel_io *io,
                                qkv_tensor *outputs, size_t n_outputs, uint64_t sized)
{
    for (size_t i = 0; i < n_outputs; i++) {
        if (!sized_here(k, hctx, sized, i))
            continue;
        outputs[i].data = calloc(1, outputs[i].data_bytes ? outputs[i].data_bytes : 1);
        if (!outputs[i].data)
            return io->host->error(hctx, QKV_ERR_OUT_OF_MEMORY, "output %zu of %zu bytes", i,
                                   outputs[i].data_bytes);
    }
    return QKV_OK;
}

/* After compute: makes the sized string outputs own their strings (*owned:
 * outputs [0, *owned) were handled) and checks that compute allocated every
 * output it had to. */
static qkv_status finish_outputs(const qkv_kernel *k, qkv_host_ctx *hctx, const qkv_kernel_io *io,
                                 qkv_tensor *outputs, size_t n_outputs, uint64_t sized,
                                 size_t *owned)
{
    for (*owned = 0; *owned < n_outputs; ++*owned) {
        size_t i = *owned;
        if (sized_here(k, hctx, sized, i) && outputs[i].dtype == QKV_DTYPE_STRING &&
            !own_strings(&outputs[i]))
            return io->host->error(hctx, QKV_ERR_OUT_OF_MEMORY, "output %zu: copying its strings",
                                   i);
    }
    for (size_t i = 0; i < n_outputs; i++)
        if (!sized_here(k, hctx, sized, i) && !not_allocated(hctx, i) && !outputs[i].data)
            return io->host->error(hctx, QKV_ERR_PLUGIN,
                                   "output %zu was not produced: a kernel without infer must "
                                   "allocate each output with host->output_alloc in compute",
                                   i);
    return QKV_OK;
}

/* On failure: frees every tensor output (outputs [0, owned) own their
 * strings like loaded ones). */
static void free_failed_outputs(const qkv_kernel *k, const qkv_host_ctx *hctx, qkv_tensor *outputs,
                                size_t n_outputs, uint64_t sized, size_t owned)
{
    for (size_t i = 0; i < n_outputs; i++) {
        if (hctx->out_kinds && hctx->out_kinds[i] != QKV_KIND_TENSOR)
            continue; /* the value store owns sequences and optionals */
        /* strings a kernel wrote point into their own block, or at its
         * inputs' strings: none of them is ours to free */
        if (sized_here(k, hctx, sized, i) && outputs[i].dtype == QKV_DTYPE_STRING && i >= owned) {
            free(outputs[i].data);
            outputs[i].data = NULL;
        }
        qkv_tensor_data_free(&outputs[i]);
    }
}

qkv_status qkv_node_eval(const qkv_kernel *k, void *state, qkv_host_ctx *hctx,
                         const qkv_tensor *inputs, size_t n_inputs, qkv_tensor *outputs,
                         size_t n_outputs)
{
    qkv_status st = qkv_kernel_infer(k, state, hctx, inputs, n_inputs, outputs, n_outputs);
    if (st != QKV_OK)
        return st;
    qkv_kernel_io io;
    qkv_kernel_io_init(&io, hctx, inputs, n_inputs, outputs, n_outputs);
    uint64_t sized; /* bit i: output i < 64 is sized and allocated here */
    st = size_outputs(k, hctx, &io, outputs, n_outputs, &sized);
    if (st != QKV_OK)
        return st;
    /* the node's per-plan state lives for this one evaluation */
    qkv_plan_mem plan_mem = {0};
    size_t need = 0;
    st = prepare_node(k, state, hctx, &io, &plan_mem);
    if (st == QKV_OK)
        st = check_memory(k, hctx, &io, outputs, n_outputs, sized, &need);
    void *scratch = NULL;
    if (st == QKV_OK && io.scratch_bytes) {
        scratch = aligned_alloc(64, (io.scratch_bytes + 63) / 64 * 64);
        if (!scratch)
            st = io.host->error(hctx, QKV_ERR_OUT_OF_MEMORY, "scratch of %zu bytes",
                                io.scratch_bytes);
    }
    if (st != QKV_OK) {
        qkv_plan_mem_free(&plan_mem);
        return st;
    }
    io.scratch = scratch;
    st = alloc_outputs(k, hctx, &io, outputs, n_outputs, sized);
    if (hctx->memory_limited) /* what output_alloc in compute may still take */
        hctx->memory_left -= hctx->memory_left < need ? hctx->memory_left : need;
    if (st == QKV_OK)
        st = k->compute(state, &io);
    size_t owned = 0; /* outputs [0, owned) hold their strings like loaded ones */
    if (st == QKV_OK)
        st = finish_outputs(k, hctx, &io, outputs, n_outputs, sized, &owned);
    free(scratch);
    qkv_plan_mem_free(&plan_mem);
    if (st != QKV_OK)
        free_failed_outputs(k, hctx, outputs, n_outputs, sized, owned);
    return st;
}
