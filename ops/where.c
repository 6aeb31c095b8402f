/*
 * where.c - Where (opsets 9, 16): out = condition ? X : Y with three-way
 * multidirectional broadcasting.
 *
 * X and Y may be any fixed-size type (the selection only moves bytes, so it
 * is written per element size: 1, 2, 4 or 8 bytes). Strings are not
 * supported. Output 0 may overwrite X when it has the output's shape.
 */
#include "elementwise.h"
#include "qkv.h"

/*
 * One row per element size. The all-contiguous case is its own loop (the
 * common same-shape Where) so it vectorises; the general one multiplies by
 * the 0/1 steps. out may be exactly x or y (in place): element j of each is
 * read before out[j] is written.
 */
#define WHERE_ROW(bits)                                                                            \
    static void where_all_##bits(uint##bits##_t *restrict o, const uint8_t *restrict c,            \
                                 const uint##bits##_t *restrict x,                                 \
                                 const uint##bits##_t *restrict y, size_t n)                       \
    {                                                                                              \
        QKV_EW_FOR(j, n, o[j] = c[j] ? x[j] : y[j];);                                              \
    }                                                                                              \
    static void where_row_##bits(void *out, const void *const *in, const unsigned *step, size_t n, \
                                 const void *ctx)                                                  \
    {                                                                                              \
        (void)ctx;                                                                                 \
        uint##bits##_t *o = out;                                                                   \
        const uint8_t *c = in[0];                                                                  \
        const uint##bits##_t *x = in[1], *y = in[2];                                               \
        if (step[0] && step[1] && step[2]) {                                                       \
            where_all_##bits(o, c, x, y, n);                                                       \
            return;                                                                                \
        }                                                                                          \
        for (size_t j = 0; j < n; j++)                                                             \
            o[j] = c[j * step[0]] ? x[j * step[1]] : y[j * step[2]];                               \
    }
WHERE_ROW(8)
WHERE_ROW(16)
WHERE_ROW(32)
WHERE_ROW(64)

static qkv_status where_infer(void *state, qkv_kernel_io *io)
{
    (void)state;
    const qkv_tensor *x = &io->inputs[1], *y = &io->inputs[2];
    if (x->dtype != QKV_DTYPE_UNDEFINED && y->dtype != QKV_DTYPE_UNDEFINED && x->dtype != y->dtype)
        return KERR(io, QKV_ERR_TYPE, "input 1 'X' has type %s but input 2 'Y' has %s",
                    qkv_dtype_name(x->dtype), qkv_dtype_name(y->dtype));
    const qkv_tensor *ins[3] = {&io->inputs[0], x, y};
    io->outputs[0].dtype = x->dtype;
    return qkv_broadcast_shapes(io, ins, 3, &io->outputs[0]);
}

static qkv_status where_compute(const void *state, qkv_kernel_io *io)
{
    (void)state;
    qkv_tensor *out = &io->outputs[0];
    const qkv_tensor *ins[3] = {&io->inputs[0], &io->inputs[1], &io->inputs[2]};
    size_t elem = qkv_ew_elem_bytes(out->dtype);
    qkv_ew_row_fn row;
    switch (elem) {
    case 1:
        row = where_row_8;
        break;
    case 2:
        row = where_row_16;
        break;
    case 4:
        row = where_row_32;
        break;
    case 8:
        row = where_row_64;
        break;
    default:
        return KERR(io, QKV_ERR_TYPE, "input 1 'X' has type %s, which Where does not support",
                    qkv_dtype_name(out->dtype));
    }
    qkv_ew_plan plan;
    qkv_ew_plan_init(&plan, out, ins, 3);
    const void *data[3] = {ins[0]->data, ins[1]->data, ins[2]->data};
    size_t sizes[3] = {1, elem, elem};
    qkv_ew_run(io, &plan, out->data, elem, data, sizes, row, NULL);
    return QKV_OK;
}

/* every type of 1, 2, 4 or 8 bytes (strings are pointers a byte copy would share) */
#define T_ANY (QKV_TYPES_PLAIN | QKV_T(COMPLEX64))

#define WHERE(since, until)                                                                        \
    {                                                                                              \
        QKV_KERNEL_V1, .domain = "", .op_type = "Where", .since_version = since,                   \
                       .until_version = until, .min_inputs = 3, .max_inputs = 3, .min_outputs = 1, \
                       .max_outputs = 1, .n_input_types = 3,                                       \
                       .input_types = {QKV_T(BOOL), T_ANY, T_ANY}, .flags = QKV_KERNEL_INPLACE,    \
                       .inplace_input = 1, .infer = where_infer, .compute = where_compute          \
    }

static const qkv_kernel kernels[] = {
    WHERE(9, 15),
    WHERE(16, 0),
};

/* The Where family's descriptors (static; *count set to their number). */
const qkv_kernel *qkv_ops_where(size_t *count)
{
    *count = sizeof kernels / sizeof kernels[0];
    return kernels;
}
