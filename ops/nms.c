/*
 * nms.c - NonMaxSuppression (opsets 10, 11): greedy selection of boxes per
 * batch and class, highest score first, dropping a box whose IoU with one
 * already selected exceeds iou_threshold.
 *
 * Inputs: boxes (float, (B, N, 4)), scores (float, (B, C, N)), and optional
 * max_output_boxes_per_class (int64, one value; absent or 0: no box),
 * iou_threshold (float, one value, default 0) and score_threshold (float, one
 * value; absent: no threshold). Output selected_indices (int64, (K, 3)) of
 * rows (batch, class, box), by batch, then class, then selection order.
 *
 * center_point_box 0: a box is [y1, x1, y2, x2], any diagonal pair of
 * corners (flipped coordinates are normalised); 1: [x_center, y_center,
 * width, height]. A box is kept only when its score is > score_threshold
 * (strictly, as ONNX Runtime and TensorFlow); it is suppressed when its IoU
 * with a selected box is > iou_threshold. Equal scores keep the lower box
 * index first. A box of zero area has IoU 0 with every box.
 *
 * K is known only with the inputs' values: infer gives (-1, 3) without
 * them, and the runtime runs the node dynamically, calling infer again with
 * the data (infer then runs the selection to count). Scratch: N box indices,
 * N selected flags and N normalised boxes.
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "kernel_util.h"
#include "qkv.h"

typedef struct nms_state {
    bool center_point_box;
} nms_state;

/* The optional scalar inputs, read. */
typedef struct nms_params {
    int64_t max_per_class;
    float iou_threshold;
    bool has_score_threshold;
    float score_threshold;
} nms_params;

/* A box as (ymin, xmin, ymax, xmax). */
typedef struct nms_box {
    float y0, x0, y1, x1;
} nms_box;

static qkv_status nms_init(const qkv_kernel *kernel, const qkv_host_api *host,
                           const qkv_node_ctx *node, void **state)
{
    (void)kernel;
    int64_t cpb;
    qkv_status st = host->attr_int(node, "center_point_box", 0, &cpb);
    if (st != QKV_OK)
        return st;
    if (cpb != 0 && cpb != 1)
        return NERR(host, node, QKV_ERR_INVALID_MODEL,
                    "attribute 'center_point_box' is %lld, expected 0 or 1", (long long)cpb);
    nms_state *s = malloc(sizeof *s);
    if (!s)
        return NERR(host, node, QKV_ERR_OUT_OF_MEMORY, "kernel state");
    s->center_point_box = cpb == 1;
    *state = s;
    return QKV_OK;
}

static void nms_destroy(void *state) { free(state); }

static qkv_status check_shapes(qkv_kernel_io *io)
{
    const qkv_tensor *b = &io->inputs[0], *s = &io->inputs[1];
    char a1[96], a2[96];
    if (b->rank >= 0 && (b->rank != 3 || (b->dims[2] >= 0 && b->dims[2] != 4)))
        return KERR(io, QKV_ERR_SHAPE, "input 0 'boxes' has shape %s, expected (B, N, 4)",
                    qkv_dims_str(b, a1, sizeof a1));
    if (s->rank >= 0 && s->rank != 3)
        return KERR(io, QKV_ERR_SHAPE, "input 1 'scores' has shape %s, expected (B, C, N)",
                    qkv_dims_str(s, a1, sizeof a1));
    if (b->rank == 3 && s->rank == 3) {
        bool ok = (b->dims[0] < 0 || s->dims[0] < 0 || b->dims[0] == s->dims[0]) &&
                  (b->dims[1] < 0 || s->dims[2] < 0 || b->dims[1] == s->dims[2]);
        if (!ok)
            return KERR(io, QKV_ERR_SHAPE,
                        "input 1 'scores' has shape %s, input 0 'boxes' %s: expected (B, C, N) "
                        "for boxes (B, N, 4)",
                        qkv_dims_str(s, a1, sizeof a1), qkv_dims_str(b, a2, sizeof a2));
    }
    for (size_t k = 2; k < 5; k++) {
        const qkv_tensor *t = &io->inputs[k];
        if (qkv_present(io, k) && qkv_shape_known(t) && qkv_numel(t) != 1)
            return KERR(io, QKV_ERR_SHAPE, "input %zu has %zu elements, expected 1", k,
                        qkv_numel(t));
    }
    return QKV_OK;
}

/* Reads the scalar inputs; *known false when one is present without a value. */
static void read_params(const qkv_kernel_io *io, nms_params *p, bool *known)
{
    memset(p, 0, sizeof *p);
    *known = true;
    for (size_t k = 2; k < 5; k++)
        if (qkv_present(io, k) && !io->inputs[k].data)
            *known = false;
    if (!*known)
        return;
    if (qkv_present(io, 2))
        p->max_per_class = *(const int64_t *)io->inputs[2].data;
    if (qkv_present(io, 3))
        p->iou_threshold = *(const float *)io->inputs[3].data;
    if (qkv_present(io, 4)) {
        p->has_score_threshold = true;
        p->score_threshold = *(const float *)io->inputs[4].data;
    }
}

static nms_box load_box(const float *c, bool center)
{
    nms_box b;
    if (center) {
        float hw = c[2] * 0.5f, hh = c[3] * 0.5f;
        b.x0 = c[0] - hw;
        b.x1 = c[0] + hw;
        b.y0 = c[1] - hh;
        b.y1 = c[1] + hh;
    } else {
        b.y0 = fminf(c[0], c[2]);
        b.y1 = fmaxf(c[0], c[2]);
        b.x0 = fminf(c[1], c[3]);
        b.x1 = fmaxf(c[1], c[3]);
    }
    return b;
}

/* IoU of two normalised boxes; 0 when either has no area. */
static float iou(const nms_box *a, const nms_box *b)
{
    float area_a = (a->y1 - a->y0) * (a->x1 - a->x0);
    float area_b = (b->y1 - b->y0) * (b->x1 - b->x0);
    if (area_a <= 0.0f || area_b <= 0.0f)
        return 0.0f;
    float ih = fminf(a->y1, b->y1) - fmaxf(a->y0, b->y0);
    float iw = fminf(a->x1, b->x1) - fmaxf(a->x0, b->x0);
    if (ih <= 0.0f || iw <= 0.0f)
        return 0.0f;
    float inter = ih * iw;
    return inter / (area_a + area_b - inter);
}

/* Scratch layout for n boxes. */
typedef struct nms_work {
    size_t *order;  /* (n) candidate box indices, best score first */
    size_t *picked; /* (n) selected box indices */
    nms_box *boxes; /* (n) normalised boxes of the batch */
} nms_work;

static size_t work_bytes(size_t n) { return n * (2 * sizeof(size_t) + sizeof(nms_box)); }

static nms_work work_at(void *mem, size_t n)
{
    nms_work w = {0};
    if (n == 0) /* scratch may be NULL: no pointer arithmetic on it */
        return w;
    w.order = mem;
    w.picked = w.order + n;
    w.boxes = (nms_box *)(w.picked + n);
    return w;
}

/* Insertion position by (score desc, index asc): a stable insertion sort
 * keeps equal scores in index order. */
static void sort_by_score(size_t *order, size_t m, const float *score)
{
    for (size_t i = 1; i < m; i++) {
        size_t v = order[i], j = i;
        while (j > 0 && score[order[j - 1]] < score[v]) {
            order[j] = order[j - 1];
            j--;
        }
        order[j] = v;
    }
}

/*
 * Runs the selection over every batch and class. With out NULL only counts
 * (*count); else writes the rows into out, which has room for *count rows.
 */
static void run_nms(const nms_state *s, const nms_params *p, const qkv_tensor *boxes,
                    const qkv_tensor *scores, nms_work *w, int64_t *out, size_t *count)
{
    size_t nb = (size_t)scores->dims[0], nc = (size_t)scores->dims[1], n = (size_t)scores->dims[2];
    size_t rows = 0;
    size_t cap = p->max_per_class > 0 && n > 0 ? (size_t)p->max_per_class : 0;
    for (size_t b = 0; b < nb && cap; b++) {
        const float *bx = (const float *)boxes->data + b * n * 4;
        for (size_t i = 0; i < n; i++)
            w->boxes[i] = load_box(bx + i * 4, s->center_point_box);
        for (size_t c = 0; c < nc; c++) {
            const float *sc = (const float *)scores->data + (b * nc + c) * n;
            size_t m = 0;
            for (size_t i = 0; i < n; i++)
                if (!p->has_score_threshold || sc[i] > p->score_threshold)
                    w->order[m++] = i;
            sort_by_score(w->order, m, sc);
            size_t k = 0;
            for (size_t i = 0; i < m && k < cap; i++) {
                size_t cand = w->order[i];
                bool keep = true;
                for (size_t j = 0; j < k && keep; j++)
                    keep = !(iou(&w->boxes[cand], &w->boxes[w->picked[j]]) > p->iou_threshold);
                if (!keep)
                    continue;
                w->picked[k++] = cand;
                if (out) {
                    out[rows * 3 + 0] = (int64_t)b;
                    out[rows * 3 + 1] = (int64_t)c;
                    out[rows * 3 + 2] = (int64_t)cand;
                }
                rows++;
            }
        }
    }
    *count = rows;
}

static qkv_status nms_infer(void *state, qkv_kernel_io *io)
{
    const nms_state *s = state;
    qkv_tensor *y = &io->outputs[0];
    int64_t dims[2] = {-1, 3};
    qkv_set_shape(y, QKV_DTYPE_INT64, 2, dims);
    qkv_status st = check_shapes(io);
    if (st != QKV_OK)
        return st;
    const qkv_tensor *boxes = &io->inputs[0], *scores = &io->inputs[1];
    nms_params p;
    bool known;
    read_params(io, &p, &known);
    /* an empty value is known without data */
    if (!known || !qkv_shape_known(boxes) || !qkv_shape_known(scores) ||
        (!boxes->data && qkv_numel(boxes)) || (!scores->data && qkv_numel(scores)))
        return QKV_OK;
    size_t n = (size_t)scores->dims[2];
    void *mem = malloc(work_bytes(n) ? work_bytes(n) : 1);
    if (!mem)
        return KERR(io, QKV_ERR_OUT_OF_MEMORY, "%zu bytes to count the selected boxes",
                    work_bytes(n));
    nms_work w = work_at(mem, n);
    size_t count;
    run_nms(s, &p, boxes, scores, &w, NULL, &count);
    free(mem);
    y->dims[0] = (int64_t)count;
    return QKV_OK;
}

static qkv_status nms_prepare(void *state, qkv_kernel_io *io)
{
    (void)state;
    io->scratch_bytes = work_bytes((size_t)io->inputs[1].dims[2]);
    return QKV_OK;
}

static qkv_status nms_compute(const void *state, qkv_kernel_io *io)
{
    const nms_state *s = state;
    const qkv_tensor *boxes = &io->inputs[0], *scores = &io->inputs[1];
    qkv_tensor *y = &io->outputs[0];
    nms_params p;
    bool known;
    read_params(io, &p, &known);
    size_t n = (size_t)scores->dims[2];
    nms_work w = work_at(io->scratch, n);
    size_t count;
    run_nms(s, &p, boxes, scores, &w, NULL, &count);
    /* the output was sized by infer from the same values */
    if (y->rank != 2 || y->dims[0] != (int64_t)count)
        return KERR(io, QKV_ERR_INTERNAL, "output 0 has %lld rows, the selection has %zu",
                    (long long)y->dims[0], count);
    run_nms(s, &p, boxes, scores, &w, y->data, &count);
    return QKV_OK;
}

#define NMS(since, until)                                                                          \
    {                                                                                              \
        QKV_KERNEL_V1,                                                                             \
            .domain = "", .op_type = "NonMaxSuppression", .since_version = since,                  \
            .until_version = until, .min_inputs = 2, .max_inputs = 5, .min_outputs = 1,            \
            .max_outputs = 1, .n_input_types = 5,                                                  \
            .input_types = {QKV_T(FLOAT), QKV_T(FLOAT), QKV_T(INT64), QKV_T(FLOAT), QKV_T(FLOAT)}, \
            .init = nms_init, .infer = nms_infer, .prepare = nms_prepare, .compute = nms_compute,  \
            .destroy = nms_destroy                                                                 \
    }

static const qkv_kernel kernels[] = {
    NMS(10, 10),
    NMS(11, 0),
};

/* The nms family: NonMaxSuppression. */
const qkv_kernel *qkv_ops_nms(size_t *count)
{
    *count = sizeof kernels / sizeof kernels[0];
    return kernels;
}
