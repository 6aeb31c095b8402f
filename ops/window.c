/*
 * window.c - HannWindow, HammingWindow, BlackmanWindow (opset 17).
 *
 * Input 0 is the size (int32/int64 scalar, >= 0); the output is 1-D of that
 * length, in `output_datatype` (default float32; any numeric type, float16
 * and bfloat16 too). With `periodic` (default 1) N = size, else N = size - 1,
 * and y[i] = a0 - a1 * cos(2*pi*i/N) + a2 * cos(4*pi*i/N), computed in
 * double with the exact pi (the 1.12 test data uses 3.1415; the difference
 * is within its tolerance). Hann: a0 = a1 = 0.5. Hamming: a0 = 25/46,
 * a1 = 21/46. Blackman: a0 = 0.42, a1 = 0.5, a2 = 0.08.
 * Deviation: a symmetric window of size 1 (N = 0, which the formula divides
 * by) is [1], as numpy's hanning(1) is.
 * The length depends on the value, so infer leaves it -1 until known.
 */
#include <math.h>
#include <stdlib.h>

#include "elementwise.h"
#include "kernel_util.h"

typedef struct window_coef {
    double a0, a1, a2;
} window_coef;

static const window_coef hann = {0.5, 0.5, 0.0};
static const window_coef hamming = {25.0 / 46.0, 21.0 / 46.0, 0.0};
static const window_coef blackman = {0.42, 0.5, 0.08};

typedef struct window_state {
    window_coef c;
    qkv_dtype out;
    bool periodic;
} window_state;

static qkv_status window_init(const qkv_kernel *kernel, const qkv_host_api *host,
                              const qkv_node_ctx *node, void **state)
{
    int64_t dt, periodic;
    qkv_status st = host->attr_int(node, "output_datatype", QKV_DTYPE_FLOAT, &dt);
    if (st == QKV_OK)
        st = host->attr_int(node, "periodic", 1, &periodic);
    if (st != QKV_OK)
        return st;
    if (dt <= 0 || dt >= QKV_DTYPE_COUNT || qkv_ew_elem_bytes((qkv_dtype)dt) == 0 ||
        dt == QKV_DTYPE_BOOL || dt == QKV_DTYPE_COMPLEX64 || dt == QKV_DTYPE_COMPLEX128 ||
        (dt >= QKV_DTYPE_FLOAT8E4M3FN && dt != QKV_DTYPE_BFLOAT16))
        return NERR(host, node, QKV_ERR_UNSUPPORTED,
                    "attribute 'output_datatype' is %lld, not a numeric type qkv produces",
                    (long long)dt);
    window_state *s = malloc(sizeof *s);
    if (!s)
        return NERR(host, node, QKV_ERR_OUT_OF_MEMORY, "kernel state");
    *s = (window_state){
        .c = *(const window_coef *)kernel->user, .out = (qkv_dtype)dt, .periodic = periodic != 0};
    *state = s;
    return QKV_OK;
}

static void window_destroy(void *state) { free(state); }

static qkv_status window_infer(void *state, qkv_kernel_io *io)
{
    const window_state *s = state;
    const qkv_tensor *n = &io->inputs[0];
    int64_t len = -1;
    if (qkv_shape_known(n) && qkv_numel(n) != 1)
        return KERR(io, QKV_ERR_SHAPE, "input 0 'size' must be a scalar, has %zu elements",
                    qkv_numel(n));
    if (n->data && qkv_shape_known(n)) {
        len = qkv_int_at(n, 0);
        if (len < 0 || len > ((int64_t)1 << 40))
            return KERR(io, QKV_ERR_INVALID_ARGUMENT, "input 0 'size' is %lld, must be >= 0",
                        (long long)len);
    }
    qkv_set_shape(&io->outputs[0], s->out, 1, &len);
    return QKV_OK;
}

static qkv_status window_compute(const void *state, qkv_kernel_io *io)
{
    const window_state *s = state;
    qkv_tensor *y = &io->outputs[0];
    size_t n = (size_t)y->dims[0], es = qkv_ew_elem_bytes(y->dtype);
    double denom = (double)(s->periodic ? n : n - 1);
    const double two_pi = 6.28318530717958647692;
    char *out = y->data;
    for (size_t i = 0; i < n; i++) {
        double v = 1.0;
        if (denom > 0) {
            double a = two_pi * (double)i / denom;
            v = s->c.a0 - s->c.a1 * cos(a) + s->c.a2 * cos(2 * a);
        }
        qkv_ew_store_f64(out + i * es, y->dtype, &v, 1);
    }
    return QKV_OK;
}

#define WINDOW(op, coef)                                                                           \
    {                                                                                              \
        QKV_KERNEL_V1, .domain = "", .op_type = op, .since_version = 17, .min_inputs = 1,          \
                       .max_inputs = 1, .min_outputs = 1, .max_outputs = 1, .n_input_types = 1,    \
                       .input_types = {QKV_TYPES_INDEX}, .user = (void *)&(coef),                  \
                       .init = window_init, .infer = window_infer, .compute = window_compute,      \
                       .destroy = window_destroy                                                   \
    }

static const qkv_kernel kernels[] = {
    WINDOW("HannWindow", hann),
    WINDOW("HammingWindow", hamming),
    WINDOW("BlackmanWindow", blackman),
};

/* The window family: HannWindow, HammingWindow, BlackmanWindow. */
const qkv_kernel *qkv_ops_window(size_t *count)
{
    *count = sizeof kernels / sizeof kernels[0];
    return kernels;
}
