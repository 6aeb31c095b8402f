/*
 * shape.c - Shape (opsets 1, 13, 15, 19, 21) and Size (1, 13, 19, 21).
 *
 * Both read only their input's dims, never its data: they are
 * QKV_KERNEL_SHAPE_ONLY, and compute must not touch inputs[0].data (it may
 * be NULL). Any input type is accepted, strings included.
 *
 * Shape-15 takes `start` and `end` (negative counts from the back, clamped
 * to [0, rank]); the attributes are read at every opset, where older
 * models simply do not have them.
 */
#include <stdlib.h>
#include <string.h>

#include "kernel_util.h"

typedef struct shape_state {
    int64_t start;
    int64_t end;
    bool has_end;
} shape_state;

static qkv_status shape_init(const qkv_kernel *k, const qkv_host_api *host,
                             const qkv_node_ctx *node, void **state)
{
    (void)k;
    shape_state *s = calloc(1, sizeof *s);
    if (!s)
        return NERR(host, node, QKV_ERR_OUT_OF_MEMORY, "kernel state");
    qkv_status st = host->attr_int(node, "start", 0, &s->start);
    if (st == QKV_OK)
        st = host->attr_int(node, "end", 0, &s->end);
    if (st != QKV_OK) {
        free(s);
        return st;
    }
    s->has_end = host->attr_type(node, "end") != QKV_ATTR_UNDEFINED;
    *state = s;
    return QKV_OK;
}

static void shape_destroy(void *state) { free(state); }

/* Clamps a start/end attribute to [0, rank] (negative counts from the end). */
static int32_t clamp_axis(int64_t v, int32_t rank)
{
    if (v < 0)
        v += rank;
    if (v < 0)
        return 0;
    return v > rank ? rank : (int32_t)v;
}

/* The [begin, end) range of dims Shape outputs for an input of rank `rank`. */
static void shape_range(const shape_state *s, int32_t rank, int32_t *begin, int32_t *end)
{
    *begin = clamp_axis(s->start, rank);
    *end = s->has_end ? clamp_axis(s->end, rank) : rank;
    if (*end < *begin)
        *end = *begin;
}

static qkv_status shape_infer(void *state, qkv_kernel_io *io)
{
    const qkv_tensor *x = &io->inputs[0];
    qkv_tensor *y = &io->outputs[0];
    y->dtype = QKV_DTYPE_INT64;
    y->rank = 1;
    if (x->rank < 0) {
        y->dims[0] = -1;
        return QKV_OK;
    }
    int32_t begin, end;
    shape_range(state, x->rank, &begin, &end);
    y->dims[0] = end - begin;
    return QKV_OK;
}

static qkv_status shape_compute(const void *state, qkv_kernel_io *io)
{
    const qkv_tensor *x = &io->inputs[0];
    int64_t *y = io->outputs[0].data; /* (end - begin) */
    int32_t begin, end;
    shape_range(state, x->rank, &begin, &end);
    for (int32_t k = begin; k < end; k++)
        y[k - begin] = x->dims[k];
    return QKV_OK;
}

static qkv_status size_infer(void *state, qkv_kernel_io *io)
{
    (void)state;
    qkv_set_shape(&io->outputs[0], QKV_DTYPE_INT64, 0, NULL);
    return QKV_OK;
}

static qkv_status size_compute(const void *state, qkv_kernel_io *io)
{
    (void)state;
    *(int64_t *)io->outputs[0].data = (int64_t)qkv_numel(&io->inputs[0]);
    return QKV_OK;
}

static const qkv_kernel kernels[] = {
    {
        QKV_KERNEL_V1,
        .domain = "",
        .op_type = "Shape",
        .since_version = 1,
        .min_inputs = 1,
        .max_inputs = 1,
        .min_outputs = 1,
        .max_outputs = 1,
        .flags = QKV_KERNEL_SHAPE_ONLY,
        .init = shape_init,
        .infer = shape_infer,
        .compute = shape_compute,
        .destroy = shape_destroy,
    },
    {
        QKV_KERNEL_V1,
        .domain = "",
        .op_type = "Size",
        .since_version = 1,
        .min_inputs = 1,
        .max_inputs = 1,
        .min_outputs = 1,
        .max_outputs = 1,
        .flags = QKV_KERNEL_SHAPE_ONLY,
        .infer = size_infer,
        .compute = size_compute,
    },
};

/* The shape family: Shape, Size. */
const qkv_kernel *qkv_ops_shape(size_t *count)
{
    *count = sizeof kernels / sizeof kernels[0];
    return kernels;
}
