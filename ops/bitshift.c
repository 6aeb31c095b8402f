/*
 * bitshift.c - BitShift (opset 11): Z = X << Y or X >> Y elementwise, with
 * numpy broadcasting, for uint8, uint16, uint32 and uint64 (X and Y of one
 * type).
 *
 * `direction` is "LEFT" or "RIGHT" (required). A shift by the type's width or
 * more gives 0 (C leaves it undefined; numpy gives 0 for these unsigned
 * types), and a left shift drops the bits shifted out of the type.
 * Output 0 may share X's buffer.
 */
#include <stdlib.h>
#include <string.h>

#include "elementwise.h"
#include "qkv.h"

#define BITSHIFT_TYPES (QKV_T(UINT8) | QKV_T(UINT16) | QKV_T(UINT32) | QKV_T(UINT64))

typedef struct bitshift_state {
    bool left;
} bitshift_state;

/* One row per type and direction: o[j] = a[j * sa] shifted by b[j * sb]. */
#define SHIFT_ROW(NAME, T, BITS, OP)                                                               \
    static void NAME(void *out, const void *const *in, const unsigned *step, size_t n,             \
                     const void *ctx)                                                              \
    {                                                                                              \
        (void)ctx;                                                                                 \
        T *o = out;                                                                                \
        const T *a = in[0], *b = in[1];                                                            \
        for (size_t j = 0; j < n; j++) {                                                           \
            T x = a[j * step[0]], y = b[j * step[1]];                                              \
            o[j] = y >= (BITS) ? (T)0 : (T)((uint64_t)x OP y);                                     \
        }                                                                                          \
    }
SHIFT_ROW(shl_u8, uint8_t, 8, <<)
SHIFT_ROW(shl_u16, uint16_t, 16, <<)
SHIFT_ROW(shl_u32, uint32_t, 32, <<)
SHIFT_ROW(shl_u64, uint64_t, 64, <<)
SHIFT_ROW(shr_u8, uint8_t, 8, >>)
SHIFT_ROW(shr_u16, uint16_t, 16, >>)
SHIFT_ROW(shr_u32, uint32_t, 32, >>)
SHIFT_ROW(shr_u64, uint64_t, 64, >>)

static qkv_status bitshift_init(const qkv_kernel *kernel, const qkv_host_api *host,
                                const qkv_node_ctx *node, void **state)
{
    (void)kernel;
    const char *dir = NULL;
    qkv_status st = host->attr_string(node, "direction", "", &dir);
    if (st != QKV_OK)
        return st;
    bool left = strcmp(dir, "LEFT") == 0;
    if (!left && strcmp(dir, "RIGHT") != 0)
        return NERR(host, node, QKV_ERR_INVALID_MODEL,
                    "attribute 'direction' is '%s', expected \"LEFT\" or \"RIGHT\"", dir);
    bitshift_state *s = malloc(sizeof *s);
    if (!s)
        return NERR(host, node, QKV_ERR_OUT_OF_MEMORY, "kernel state");
    s->left = left;
    *state = s;
    return QKV_OK;
}

static void bitshift_destroy(void *state) { free(state); }

static qkv_status bitshift_infer(void *state, qkv_kernel_io *io)
{
    (void)state;
    const qkv_tensor *x = &io->inputs[0], *y = &io->inputs[1];
    if (x->dtype != y->dtype)
        return KERR(io, QKV_ERR_TYPE, "input 1 'Y' has type %s but input 0 'X' has %s",
                    qkv_dtype_name(y->dtype), qkv_dtype_name(x->dtype));
    const qkv_tensor *ins[2] = {x, y};
    io->outputs[0].dtype = x->dtype;
    return qkv_broadcast_shapes(io, ins, 2, &io->outputs[0]);
}

static qkv_status bitshift_compute(const void *state, qkv_kernel_io *io)
{
    const bitshift_state *s = state;
    const qkv_tensor *x = &io->inputs[0], *y = &io->inputs[1];
    qkv_tensor *z = &io->outputs[0];
    qkv_ew_row_fn fn;
    switch (x->dtype) {
    case QKV_DTYPE_UINT8:
        fn = s->left ? shl_u8 : shr_u8;
        break;
    case QKV_DTYPE_UINT16:
        fn = s->left ? shl_u16 : shr_u16;
        break;
    case QKV_DTYPE_UINT32:
        fn = s->left ? shl_u32 : shr_u32;
        break;
    case QKV_DTYPE_UINT64:
        fn = s->left ? shl_u64 : shr_u64;
        break;
    default:
        return KERR(io, QKV_ERR_TYPE, "input 0 'X' has type %s, expected an unsigned integer",
                    qkv_dtype_name(x->dtype));
    }
    if (y->dtype != x->dtype)
        return KERR(io, QKV_ERR_TYPE, "input 1 'Y' has type %s but input 0 'X' has %s",
                    qkv_dtype_name(y->dtype), qkv_dtype_name(x->dtype));
    const qkv_tensor *ins[2] = {x, y};
    qkv_ew_plan plan;
    qkv_ew_plan_init(&plan, z, ins, 2);
    size_t eb = qkv_ew_elem_bytes(x->dtype);
    const void *data[2] = {x->data, y->data};
    size_t sizes[2] = {eb, eb};
    qkv_ew_run(io, &plan, z->data, eb, data, sizes, fn, NULL);
    return QKV_OK;
}

static const qkv_kernel kernels[] = {
    {
        QKV_KERNEL_V1,
        .domain = "",
        .op_type = "BitShift",
        .since_version = 11,
        .min_inputs = 2,
        .max_inputs = 2,
        .min_outputs = 1,
        .max_outputs = 1,
        .n_input_types = 1,
        .input_types = {BITSHIFT_TYPES},
        .flags = QKV_KERNEL_INPLACE,
        .inplace_input = 0,
        .init = bitshift_init,
        .infer = bitshift_infer,
        .compute = bitshift_compute,
        .destroy = bitshift_destroy,
    },
};

/* The bitshift family: BitShift. */
const qkv_kernel *qkv_ops_bitshift(size_t *count)
{
    *count = sizeof kernels / sizeof kernels[0];
    return kernels;
}
