/*
 * mel.c - MelWeightMatrix (opset 17).
 *
 * Inputs: num_mel_bins, dft_length, sample_rate (int32/int64 scalars, each
 * >= 1), lower_edge_hertz, upper_edge_hertz (float scalars). Output:
 * [dft_length / 2 + 1, num_mel_bins] in `output_datatype` (default float32).
 *
 * The weights follow the ONNX reference implementation exactly, in double:
 * num_mel_bins + 2 points evenly spaced in mel (mel = 2595 * log10(1 + hz /
 * 700), the step dividing by num_mel_bins + 2 as the reference does), back to
 * hertz, then to the bin floor((dft_length + 1) * hz / sample_rate); mel bin
 * i is the triangle rising from point i to point i + 1 and falling to point
 * i + 2 (a zero-width rise puts 1 at the centre).
 * Deviation: where the reference would index outside the output (an upper
 * edge above the Nyquist frequency), those weights are dropped instead of
 * failing or wrapping around.
 * The shape depends on the values, so infer leaves it -1 until they are known.
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "elementwise.h"
#include "kernel_util.h"

#define MEL_MAX_BINS ((int64_t)1 << 24)

static qkv_status mel_init(const qkv_kernel *kernel, const qkv_host_api *host,
                           const qkv_node_ctx *node, void **state)
{
    (void)kernel;
    int64_t dt;
    qkv_status st = host->attr_int(node, "output_datatype", QKV_DTYPE_FLOAT, &dt);
    if (st != QKV_OK)
        return st;
    if (dt <= 0 || dt >= QKV_DTYPE_COUNT || qkv_ew_elem_bytes((qkv_dtype)dt) == 0 ||
        dt == QKV_DTYPE_BOOL || dt == QKV_DTYPE_COMPLEX64 || dt == QKV_DTYPE_COMPLEX128 ||
        (dt >= QKV_DTYPE_FLOAT8E4M3FN && dt != QKV_DTYPE_BFLOAT16))
        return NERR(host, node, QKV_ERR_UNSUPPORTED,
                    "attribute 'output_datatype' is %lld, not a numeric type qkv produces",
                    (long long)dt);
    qkv_dtype *s = malloc(sizeof *s);
    if (!s)
        return NERR(host, node, QKV_ERR_OUT_OF_MEMORY, "kernel state");
    *s = (qkv_dtype)dt;
    *state = s;
    return QKV_OK;
}

static void mel_destroy(void *state) { free(state); }

static const char *const mel_names[5] = {"num_mel_bins", "dft_length", "sample_rate",
                                         "lower_edge_hertz", "upper_edge_hertz"};

/* The three integer inputs into v[0..2]; *known false while one is not known. */
static qkv_status mel_ints(qkv_kernel_io *io, int64_t v[3], bool *known)
{
    *known = true;
    for (size_t k = 0; k < 5; k++) {
        const qkv_tensor *t = &io->inputs[k];
        if (qkv_shape_known(t) && qkv_numel(t) != 1)
            return KERR(io, QKV_ERR_SHAPE, "input %zu '%s' must be a scalar, has %zu elements", k,
                        mel_names[k], qkv_numel(t));
        if (k >= 3)
            continue;
        if (!t->data || !qkv_shape_known(t)) {
            *known = false;
            continue;
        }
        v[k] = qkv_int_at(t, 0);
        if (v[k] < 1 || v[k] > MEL_MAX_BINS * (k == 2 ? 1024 : 1))
            return KERR(io, QKV_ERR_INVALID_ARGUMENT, "input %zu '%s' is %lld, out of range", k,
                        mel_names[k], (long long)v[k]);
    }
    return QKV_OK;
}

static qkv_status mel_infer(void *state, qkv_kernel_io *io)
{
    int64_t v[3] = {0, 0, 0};
    bool known;
    qkv_status st = mel_ints(io, v, &known);
    if (st != QKV_OK)
        return st;
    int64_t dims[2] = {v[1] ? v[1] / 2 + 1 : -1, v[0] ? v[0] : -1};
    qkv_set_shape(&io->outputs[0], *(const qkv_dtype *)state, 2, dims);
    return QKV_OK;
}

/* One scalar float input as double. */
static double scalar_f64(const qkv_tensor *t)
{
    double v = 0;
    qkv_ew_load_f64(&v, t->data, t->dtype, 1, 1);
    return v;
}

static qkv_status mel_compute(const void *state, qkv_kernel_io *io)
{
    (void)state;
    qkv_tensor *y = &io->outputs[0];
    int64_t v[3];
    bool known;
    qkv_status st = mel_ints(io, v, &known);
    if (st != QKV_OK)
        return st;
    int64_t mels = v[0], dft_length = v[1], rate = v[2];
    int64_t rows = dft_length / 2 + 1;
    double lo = scalar_f64(&io->inputs[3]), hi = scalar_f64(&io->inputs[4]);
    double lo_mel = 2595.0 * log10(1.0 + lo / 700.0), hi_mel = 2595.0 * log10(1.0 + hi / 700.0);
    double step = (hi_mel - lo_mel) / (double)(mels + 2);
    size_t es = qkv_ew_elem_bytes(y->dtype);
    char *out = y->data;
    memset(out, 0, y->data_bytes);
    int64_t prev2 = 0, prev1 = 0; /* the bins of points i and i + 1 */
    for (int64_t p = 0; p < mels + 2; p++) {
        double hz = 700.0 * (pow(10.0, ((double)p * step + lo_mel) / 2595.0) - 1.0);
        double b = floor((double)(dft_length + 1) * hz / (double)rate);
        int64_t bin = isfinite(b) && fabs(b) < 9e15 ? (int64_t)b : -1;
        if (p >= 2) {
            int64_t i = p - 2, left = prev2, center = prev1, right = bin;
            double w;
#define PUT(row, value)                                                                            \
    do {                                                                                           \
        w = (value);                                                                               \
        if ((row) >= 0 && (row) < rows)                                                            \
            qkv_ew_store_f64(out + ((size_t)(row) * (size_t)mels + (size_t)i) * es, y->dtype, &w,  \
                             1);                                                                   \
    } while (0)
            if (center == left)
                PUT(center, 1.0);
            else
                for (int64_t j = left < 0 ? 0 : left; j <= center && j < rows; j++)
                    PUT(j, (double)(j - left) / (double)(center - left));
            if (right > center)
                for (int64_t j = center < 0 ? 0 : center; j < right && j < rows; j++)
                    PUT(j, (double)(right - j) / (double)(right - center));
#undef PUT
        }
        prev2 = prev1;
        prev1 = bin;
    }
    return QKV_OK;
}

static const qkv_kernel kernels[] = {
    {
        QKV_KERNEL_V1,
        .domain = "",
        .op_type = "MelWeightMatrix",
        .since_version = 17,
        .min_inputs = 5,
        .max_inputs = 5,
        .min_outputs = 1,
        .max_outputs = 1,
        .n_input_types = 5,
        .input_types = {QKV_TYPES_INDEX, QKV_TYPES_INDEX, QKV_TYPES_INDEX,
                        QKV_TYPES_FLOATS | QKV_T(FLOAT16) | QKV_T(BFLOAT16),
                        QKV_TYPES_FLOATS | QKV_T(FLOAT16) | QKV_T(BFLOAT16)},
        .init = mel_init,
        .infer = mel_infer,
        .compute = mel_compute,
        .destroy = mel_destroy,
    },
};

/* The mel family: MelWeightMatrix. */
const qkv_kernel *qkv_ops_mel(size_t *count)
{
    *count = sizeof kernels / sizeof kernels[0];
    return kernels;
}
