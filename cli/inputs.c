/*
 * inputs.c - model inputs for `qkv run` and `qkv bench` (see inputs.h):
 * --input files, seeded random data, and the per-input summary lines.
 */
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include "error.h"
#include "inputs.h"
#include "loader.h"
#include "size_math.h"
#include "tensor_io.h"

/* ---- random data ------------------------------------------------------------- */

/* splitmix64: tiny, seedable with any value, good enough for test data. */
static uint64_t next_random(uint64_t *state)
{
    uint64_t z = (*state += 0x9e3779b97f4a7c15u);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9u;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebu;
    return z ^ (z >> 31);
}

/* uniform in [-1, 1) */
static double random_unit(uint64_t *state)
{
    return (double)(next_random(state) >> 11) * 0x1.0p-52 - 1.0;
}

/* True for the dtypes random data can be made of. */
static int random_dtype_ok(qkv_dtype dtype)
{
    switch (dtype) {
    case QKV_DTYPE_FLOAT:
    case QKV_DTYPE_DOUBLE:
    case QKV_DTYPE_FLOAT16:
    case QKV_DTYPE_BFLOAT16:
    case QKV_DTYPE_COMPLEX64:
    case QKV_DTYPE_COMPLEX128:
    case QKV_DTYPE_INT8:
    case QKV_DTYPE_INT16:
    case QKV_DTYPE_INT32:
    case QKV_DTYPE_INT64:
    case QKV_DTYPE_UINT8:
    case QKV_DTYPE_UINT16:
    case QKV_DTYPE_UINT32:
    case QKV_DTYPE_UINT64:
    case QKV_DTYPE_BOOL:
        return 1;
    default:
        return 0;
    }
}

/* Writes random element i of a `dtype` array at d (a random_dtype_ok type):
 * floats uniform in [-1, 1) (each part of a complex), integers in [0, 10),
 * bools 0 or 1. Every element draws once and a float once more per part:
 * that order is what a --seed reproduces. */
static void random_element(unsigned char *d, size_t i, qkv_dtype dtype, uint64_t *state)
{
    uint64_t r = next_random(state);
    int64_t iv = (int64_t)(r % 10);
    switch (dtype) {
    case QKV_DTYPE_FLOAT: {
        float v = (float)random_unit(state);
        memcpy(d + i * 4, &v, 4);
        break;
    }
    case QKV_DTYPE_COMPLEX64: {
        float v[2] = {(float)random_unit(state), (float)random_unit(state)};
        memcpy(d + i * 8, v, 8);
        break;
    }
    case QKV_DTYPE_DOUBLE: {
        double v = random_unit(state);
        memcpy(d + i * 8, &v, 8);
        break;
    }
    case QKV_DTYPE_COMPLEX128: {
        double v[2] = {random_unit(state), random_unit(state)};
        memcpy(d + i * 16, v, 16);
        break;
    }
    case QKV_DTYPE_FLOAT16:
    case QKV_DTYPE_BFLOAT16: {
        float f = (float)random_unit(state);
        uint16_t h = dtype == QKV_DTYPE_FLOAT16 ? qkv_cli_f32_to_f16(f) : qkv_cli_f32_to_bf16(f);
        memcpy(d + i * 2, &h, 2);
        break;
    }
    case QKV_DTYPE_BOOL:
        d[i] = (unsigned char)(r >> 63);
        break;
    case QKV_DTYPE_INT8:
    case QKV_DTYPE_UINT8:
        d[i] = (unsigned char)iv;
        break;
    case QKV_DTYPE_INT16:
    case QKV_DTYPE_UINT16: {
        uint16_t v = (uint16_t)iv;
        memcpy(d + i * 2, &v, 2);
        break;
    }
    case QKV_DTYPE_INT32:
    case QKV_DTYPE_UINT32: {
        uint32_t v = (uint32_t)iv;
        memcpy(d + i * 4, &v, 4);
        break;
    }
    default: /* INT64, UINT64 */
        memcpy(d + i * 8, &iv, 8);
        break;
    }
}

/* Fills t (shape and dtype set) with random data it allocates. */
static qkv_status fill_random(qkv_tensor *t, const char *name, uint64_t *state, qkv_error *err)
{
    size_t n = 0, bytes = 0;
    if (!qkv_shape_elements(t->dims, t->rank, &n) || !qkv_dtype_storage_bytes(t->dtype, n, &bytes))
        return qkv_error_set(err, QKV_ERR_INVALID_ARGUMENT, "input '%s': the shape is too large",
                             name);
    if (!random_dtype_ok(t->dtype))
        return qkv_error_set(
            err, QKV_ERR_UNSUPPORTED,
            "input '%s': --random-inputs cannot make %s data (pass --input %s=FILE)", name,
            qkv_dtype_name(t->dtype), name);
    unsigned char *d = NULL;
    if (bytes) {
        d = malloc(bytes);
        if (!d)
            return qkv_error_set(err, QKV_ERR_OUT_OF_MEMORY,
                                 "input '%s': out of memory (%zu bytes)", name, bytes);
    }
    for (size_t i = 0; i < n; i++)
        random_element(d, i, t->dtype, state);
    t->data = d;
    t->data_bytes = bytes;
    return QKV_OK;
}

/* ---- --input files --------------------------------------------------------------- */

/* Finds the model input an "NAME=FILE" argument names: the longest prefix
 * ending before an '=' that is an input name (names may contain '='). */
static int find_input(const qkv_model *model, const char *arg, size_t *index, const char **file)
{
    size_t n_in = qkv_model_input_count(model);
    int found = 0;
    for (const char *eq = strchr(arg, '='); eq; eq = strchr(eq + 1, '=')) {
        size_t len = (size_t)(eq - arg);
        for (size_t i = 0; i < n_in; i++) {
            qkv_value_info vi = {.struct_size = sizeof(qkv_value_info)};
            qkv_model_input(model, i, &vi);
            if (strlen(vi.name) == len && !strncmp(vi.name, arg, len)) {
                *index = i;
                *file = eq + 1;
                found = 1;
            }
        }
    }
    return found;
}

int qkv_cli_check_input_arg(const char *value, const char *usage)
{
    if (!strchr(value, '=') || value[0] == '=')
        return qkv_cli_usage_error(usage, "--input '%s': expected NAME=FILE", value);
    return QKV_EXIT_OK;
}

void qkv_cli_inputs_free(qkv_cli_inputs *in)
{
    for (size_t i = 0; in->tensors && i < in->count; i++)
        qkv_tensor_data_free(&in->tensors[i]);
    free(in->tensors);
    free(in->sources);
    in->tensors = NULL;
    in->sources = NULL;
    in->count = 0;
}

/* Reads every --input file into in (sources[i] set for each). */
static int read_files(const qkv_model *model, const qkv_cli_input_spec *spec, qkv_cli_inputs *in)
{
    qkv_error err = {0};
    char names[512];
    for (size_t k = 0; k < spec->n_input_args; k++) {
        size_t i = 0;
        const char *file = NULL;
        const char *arg = spec->input_args[k];
        if (!find_input(model, arg, &i, &file)) {
            const char *eq = strchr(arg, '=');
            return qkv_cli_fail("--input %.*s: the model has no input '%.*s' (inputs: %s)",
                                (int)(eq - arg), arg, (int)(eq - arg), arg,
                                qkv_cli_input_names(model, names, sizeof names));
        }
        qkv_value_info vi = {.struct_size = sizeof(qkv_value_info)};
        qkv_model_input(model, i, &vi);
        if (in->sources[i])
            return qkv_cli_fail("input '%s' is given twice (--input)", vi.name);
        if (!*file)
            return qkv_cli_fail("--input %s=: missing FILE", vi.name);
        if (qkv_cli_tensor_read(file, &in->tensors[i], &err) != QKV_OK)
            return qkv_cli_fail_error(&err, NULL);
        in->sources[i] = file;
        if (vi.dtype != QKV_DTYPE_UNDEFINED && in->tensors[i].dtype != vi.dtype)
            return qkv_cli_fail("input '%s': '%s' holds %s, the model expects %s", vi.name, file,
                                qkv_dtype_name(in->tensors[i].dtype), qkv_dtype_name(vi.dtype));
    }
    return QKV_EXIT_OK;
}

/* Fills the inputs without a file, printing one line per input. */
static int fill_rest(const qkv_model *model, const qkv_cli_input_spec *spec, qkv_cli_inputs *in)
{
    qkv_error err = {0};
    char dims[512];
    uint64_t state = spec->seed;
    for (size_t i = 0; i < in->count; i++) {
        qkv_value_info vi = {.struct_size = sizeof(qkv_value_info)};
        qkv_model_input(model, i, &vi);
        qkv_tensor *t = &in->tensors[i];
        if (in->sources[i]) {
            printf("input %s: %s %s from %s\n", vi.name, qkv_dtype_name(t->dtype),
                   qkv_cli_dims_str(t->rank, t->dims, dims, sizeof dims), in->sources[i]);
            continue;
        }
        if (!spec->random)
            return qkv_cli_fail("input '%s' has no value: pass --input %s=FILE or --random-inputs",
                                vi.name, vi.name);
        if (vi.dtype == QKV_DTYPE_UNDEFINED)
            return qkv_cli_fail(
                "input '%s': the model does not give its dtype (pass --input %s=FILE)", vi.name,
                vi.name);
        t->dtype = vi.dtype;
        if (qkv_cli_resolve_shape(&vi, spec->shapes, spec->n_shapes, &t->rank, t->dims, &err) !=
                QKV_OK ||
            fill_random(t, vi.name, &state, &err) != QKV_OK)
            return qkv_cli_fail_error(&err, NULL);
        printf("input %s: %s %s random (seed %" PRIu64 ")\n", vi.name, qkv_dtype_name(t->dtype),
               qkv_cli_dims_str(t->rank, t->dims, dims, sizeof dims), spec->seed);
    }
    return QKV_EXIT_OK;
}

int qkv_cli_inputs_load(const qkv_model *model, const qkv_cli_input_spec *spec, qkv_cli_inputs *out)
{
    qkv_error err = {0};
    qkv_cli_inputs in = {0};
    in.count = qkv_model_input_count(model);
    in.tensors = calloc(in.count ? in.count : 1, sizeof *in.tensors);
    in.sources = calloc(in.count ? in.count : 1, sizeof *in.sources);
    int rc = QKV_EXIT_OK;
    if (!in.tensors || !in.sources)
        rc = qkv_cli_fail("out of memory");
    else if (qkv_cli_check_shape_names(model, spec->shapes, spec->n_shapes, &err) != QKV_OK)
        rc = qkv_cli_fail_error(&err, NULL);
    if (rc == QKV_EXIT_OK)
        rc = read_files(model, spec, &in);
    if (rc == QKV_EXIT_OK)
        rc = fill_rest(model, spec, &in);
    if (rc != QKV_EXIT_OK) {
        qkv_cli_inputs_free(&in);
        *out = in;
        return rc;
    }
    *out = in;
    return QKV_EXIT_OK;
}
