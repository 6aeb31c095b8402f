/*
 * fuzz_plugin.c - libFuzzer target: plugin registration with a mutated
 * descriptor table. The input bytes become the qkv_plugin_info that
 * fuzz_plugin_lib.so's qkv_plugin_init returns (every field a plugin sets,
 * and what its callbacks do); a session of a small model is created with
 * that plugin (no default plugins, a 64 MiB memory limit) and run twice.
 * The model uses the plugin's op (fuzz.F), and ops a backend may claim
 * (MatMul, Relu):
 *
 *     x (float [2, 3]) -> fuzz.F(x, w) -> t -> MatMul(t, w) -> u -> Relu -> y
 *     w: a (3, 3) float initializer
 *
 * Session creation may refuse the plugin and runs may fail; a crash, a
 * sanitizer report or a leak is the finding.
 *
 * The library is found beside this executable (FUZZ_PLUGIN_LIB at build
 * time). The harness dlopens it once to reach fuzz_plugin_set; qkv's own
 * loads and releases then reuse that mapping, so the bytes set here are
 * what its next qkv_plugin_init reads.
 */
#include <dlfcn.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "onnx.pb-c.h"
#include "qkv.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerInitialize(int *argc, char ***argv);

static void (*plugin_set)(const uint8_t *data, size_t size);
static uint8_t *model_bytes;
static size_t model_size;
static int verbose; /* FUZZ_PLUGIN_VERBOSE=1: say why each input was refused */

/* The model above, serialised with protobuf-c. */
static int build_model(void)
{
    static float w_data[9] = {0.5f, -1, 2, 1, 0.25f, -0.5f, -2, 1, 0.75f};
    Onnx__TensorProto w = ONNX__TENSOR_PROTO__INIT;
    int64_t w_dims[2] = {3, 3};
    w.name = "w";
    w.has_data_type = 1;
    w.data_type = ONNX__TENSOR_PROTO__DATA_TYPE__FLOAT;
    w.n_dims = 2;
    w.dims = w_dims;
    w.has_raw_data = 1;
    w.raw_data.data = (uint8_t *)w_data;
    w.raw_data.len = sizeof w_data;

    char *f_in[2] = {"x", "w"}, *f_out[1] = {"t"};
    char *m_in[2] = {"t", "w"}, *m_out[1] = {"u"};
    char *r_in[1] = {"u"}, *r_out[1] = {"y"};
    Onnx__NodeProto f = ONNX__NODE_PROTO__INIT, m = ONNX__NODE_PROTO__INIT,
                    r = ONNX__NODE_PROTO__INIT;
    f.name = "plugin_op";
    f.op_type = "F";
    f.domain = "fuzz";
    f.n_input = 2;
    f.input = f_in;
    f.n_output = 1;
    f.output = f_out;
    m.name = "matmul";
    m.op_type = "MatMul";
    m.n_input = 2;
    m.input = m_in;
    m.n_output = 1;
    m.output = m_out;
    r.name = "relu";
    r.op_type = "Relu";
    r.n_input = 1;
    r.input = r_in;
    r.n_output = 1;
    r.output = r_out;
    Onnx__NodeProto *nodes[3] = {&f, &m, &r};

    Onnx__TensorShapeProto__Dimension d2 = ONNX__TENSOR_SHAPE_PROTO__DIMENSION__INIT,
                                      d3 = ONNX__TENSOR_SHAPE_PROTO__DIMENSION__INIT;
    d2.value_case = ONNX__TENSOR_SHAPE_PROTO__DIMENSION__VALUE_DIM_VALUE;
    d2.dim_value = 2;
    d3.value_case = ONNX__TENSOR_SHAPE_PROTO__DIMENSION__VALUE_DIM_VALUE;
    d3.dim_value = 3;
    Onnx__TensorShapeProto__Dimension *dims[2] = {&d2, &d3};
    Onnx__TensorShapeProto shape = ONNX__TENSOR_SHAPE_PROTO__INIT;
    shape.n_dim = 2;
    shape.dim = dims;
    Onnx__TypeProto__Tensor tt = ONNX__TYPE_PROTO__TENSOR__INIT;
    tt.has_elem_type = 1;
    tt.elem_type = ONNX__TENSOR_PROTO__DATA_TYPE__FLOAT;
    tt.shape = &shape;
    Onnx__TypeProto x_type = ONNX__TYPE_PROTO__INIT, y_type = ONNX__TYPE_PROTO__INIT;
    x_type.value_case = ONNX__TYPE_PROTO__VALUE_TENSOR_TYPE;
    x_type.tensor_type = &tt;
    Onnx__TypeProto__Tensor yt = ONNX__TYPE_PROTO__TENSOR__INIT;
    yt.has_elem_type = 1;
    yt.elem_type = ONNX__TENSOR_PROTO__DATA_TYPE__FLOAT;
    y_type.value_case = ONNX__TYPE_PROTO__VALUE_TENSOR_TYPE;
    y_type.tensor_type = &yt;
    Onnx__ValueInfoProto x = ONNX__VALUE_INFO_PROTO__INIT, y = ONNX__VALUE_INFO_PROTO__INIT;
    x.name = "x";
    x.type = &x_type;
    y.name = "y";
    y.type = &y_type;
    Onnx__ValueInfoProto *ins[1] = {&x}, *outs[1] = {&y};
    Onnx__TensorProto *inits[1] = {&w};

    Onnx__GraphProto g = ONNX__GRAPH_PROTO__INIT;
    g.name = "fuzz_plugin";
    g.n_node = 3;
    g.node = nodes;
    g.n_initializer = 1;
    g.initializer = inits;
    g.n_input = 1;
    g.input = ins;
    g.n_output = 1;
    g.output = outs;

    Onnx__OperatorSetIdProto onnx_set = ONNX__OPERATOR_SET_ID_PROTO__INIT,
                             fuzz_set = ONNX__OPERATOR_SET_ID_PROTO__INIT;
    onnx_set.domain = "";
    onnx_set.has_version = 1;
    onnx_set.version = 17;
    fuzz_set.domain = "fuzz";
    fuzz_set.has_version = 1;
    fuzz_set.version = 1;
    Onnx__OperatorSetIdProto *sets[2] = {&onnx_set, &fuzz_set};
    Onnx__ModelProto model = ONNX__MODEL_PROTO__INIT;
    model.has_ir_version = 1;
    model.ir_version = 8;
    model.n_opset_import = 2;
    model.opset_import = sets;
    model.graph = &g;

    model_size = onnx__model_proto__get_packed_size(&model);
    model_bytes = malloc(model_size);
    if (!model_bytes)
        return -1;
    onnx__model_proto__pack(&model, model_bytes);
    return 0;
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc;
    (void)argv;
    void *lib = dlopen(FUZZ_PLUGIN_LIB, RTLD_NOW | RTLD_LOCAL);
    void *sym = lib ? dlsym(lib, "fuzz_plugin_set") : NULL;
    if (!sym || build_model() != 0) {
        fprintf(stderr, "fuzz_plugin: cannot load %s: %s\n", FUZZ_PLUGIN_LIB, dlerror());
        exit(1);
    }
    memcpy(&plugin_set, &sym, sizeof plugin_set); /* POSIX: data to function pointer */
    verbose = getenv("FUZZ_PLUGIN_VERBOSE") != NULL;
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    plugin_set(data, size);
    const char *plugins[1] = {FUZZ_PLUGIN_LIB};
    qkv_session_options opts;
    qkv_session_options_init(&opts);
    opts.no_default_plugins = 1;
    opts.plugins = plugins;
    opts.n_plugins = 1;
    opts.threads = 1 + (size & 1);        /* one or two threads: parallel_for both ways */
    opts.memory_limit = (size_t)64 << 20; /* odd shapes a kernel claims stay small */
    qkv_session *s = NULL;
    qkv_error err;
    if (qkv_session_create_from_buffer(model_bytes, model_size, NULL, &opts, &s, &err) != QKV_OK) {
        if (verbose)
            fprintf(stderr, "fuzz_plugin: session refused: %s\n", err.message);
        return 0;
    }
    qkv_context *c = NULL;
    if (qkv_context_create(s, &c, &err) == QKV_OK) {
        float xv[6] = {1, -2, 3, -4, 5, -6};
        qkv_tensor x = {.dtype = QKV_DTYPE_FLOAT,
                        .rank = 2,
                        .dims = {2, 3},
                        .data = xv,
                        .data_bytes = sizeof xv};
        for (int run = 0; run < 2; run++)
            if (qkv_run(c, &x, 1, &err) == QKV_OK) {
                const qkv_tensor *y = qkv_context_output(c, 0);
                volatile unsigned char sink = 0;
                for (size_t i = 0; y && y->data && i < y->data_bytes; i++)
                    sink ^= ((const unsigned char *)y->data)[i]; /* read what was written */
                (void)sink;
            }
        qkv_context_destroy(c);
    }
    qkv_session_destroy(s);
    return 0;
}
