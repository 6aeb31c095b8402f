/* conv_test_util.c - see conv_test_util.h. */
#include "conv_test_util.h"

#include <criterion/criterion.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "half.h"
#include "kernel_harness.h"
#include "onnx.pb-c.h"

void conv_ref_geometry(const conv_case *t, int64_t *out, int64_t *pb)
{
    for (int i = 0; i < t->ns; i++) {
        int64_t ek = (t->k[i] - 1) * t->d[i] + 1;
        const char *ap = t->auto_pad ? t->auto_pad : "NOTSET";
        if (!strcmp(ap, "SAME_UPPER") || !strcmp(ap, "SAME_LOWER")) {
            out[i] = (t->in[i] + t->s[i] - 1) / t->s[i];
            int64_t total = (out[i] - 1) * t->s[i] + ek - t->in[i];
            if (total < 0)
                total = 0;
            pb[i] = !strcmp(ap, "SAME_UPPER") ? total / 2 : total - total / 2;
        } else if (!strcmp(ap, "VALID")) {
            out[i] = (t->in[i] - ek) / t->s[i] + 1;
            pb[i] = 0;
        } else {
            out[i] = (t->in[i] + t->pb[i] + t->pe[i] - ek) / t->s[i] + 1;
            pb[i] = t->pb[i];
        }
    }
}

size_t conv_prod(const int64_t *d, int n)
{
    size_t p = 1;
    for (int i = 0; i < n; i++)
        p *= (size_t)d[i];
    return p;
}

void conv_ref(const conv_case *t, const double *x, const double *w, const double *b, double *y)
{
    int64_t out[3], pb[3];
    conv_ref_geometry(t, out, pb);
    int ns = t->ns;
    int64_t o3[3] = {1, 1, 1}, i3[3] = {1, 1, 1}, k3[3] = {1, 1, 1}, s3[3] = {1, 1, 1},
            d3[3] = {1, 1, 1}, p3[3] = {0, 0, 0};
    for (int i = 0; i < ns; i++) { /* right-aligned into 3 dims */
        int j = 3 - ns + i;
        o3[j] = out[i];
        i3[j] = t->in[i];
        k3[j] = t->k[i];
        s3[j] = t->s[i];
        d3[j] = t->d[i];
        p3[j] = pb[i];
    }
    int64_t cg = t->c / t->group, mg = t->m / t->group;
    size_t in_size = (size_t)(i3[0] * i3[1] * i3[2]), ks = (size_t)(k3[0] * k3[1] * k3[2]);
    size_t out_size = (size_t)(o3[0] * o3[1] * o3[2]);
    for (int64_t n = 0; n < t->n; n++)
        for (int64_t m = 0; m < t->m; m++) {
            int64_t g = m / mg;
            for (int64_t a = 0; a < o3[0]; a++)
                for (int64_t bb = 0; bb < o3[1]; bb++)
                    for (int64_t cc = 0; cc < o3[2]; cc++) {
                        double acc = b ? b[m] : 0.0;
                        for (int64_t ci = 0; ci < cg; ci++)
                            for (int64_t ka = 0; ka < k3[0]; ka++)
                                for (int64_t kb = 0; kb < k3[1]; kb++)
                                    for (int64_t kc = 0; kc < k3[2]; kc++) {
                                        int64_t ia = a * s3[0] - p3[0] + ka * d3[0];
                                        int64_t ib = bb * s3[1] - p3[1] + kb * d3[1];
                                        int64_t ic = cc * s3[2] - p3[2] + kc * d3[2];
                                        if (ia < 0 || ia >= i3[0] || ib < 0 || ib >= i3[1] ||
                                            ic < 0 || ic >= i3[2])
                                            continue;
                                        double xv = x[(size_t)(n * t->c + g * cg + ci) * in_size +
                                                      (size_t)((ia * i3[1] + ib) * i3[2] + ic)];
                                        double wv = w[(size_t)(m * cg + ci) * ks +
                                                      (size_t)((ka * k3[1] + kb) * k3[2] + kc)];
                                        acc += xv * wv;
                                    }
                        y[(size_t)(n * t->m + m) * out_size +
                          (size_t)((a * o3[1] + bb) * o3[2] + cc)] = acc;
                    }
        }
}

/* The dims of X, W and Y of the case (rank ns + 2 each). */
static void case_dims(const conv_case *t, int64_t *xd, int64_t *wd, int64_t *yd)
{
    int64_t out[3], pb[3];
    conv_ref_geometry(t, out, pb);
    xd[0] = t->n;
    xd[1] = t->c;
    wd[0] = t->m;
    wd[1] = t->c / t->group;
    yd[0] = t->n;
    yd[1] = t->m;
    for (int i = 0; i < t->ns; i++) {
        xd[2 + i] = t->in[i];
        wd[2 + i] = t->k[i];
        yd[2 + i] = out[i];
    }
}

/* Asserts y (float32 values in got, or as the case's dtype at data) against want. */
static void assert_matches(const conv_case *t, const void *data, const double *want, size_t ny,
                           double tol, const char *what)
{
    for (size_t i = 0; i < ny; i++) {
        const uint16_t *yh = data;
        double got = t->dbl                          ? ((const double *)data)[i]
                     : t->half == QKV_DTYPE_FLOAT16  ? qkv_f16_to_f32(yh[i])
                     : t->half == QKV_DTYPE_BFLOAT16 ? qkv_bf16_to_f32(yh[i])
                                                     : ((const float *)data)[i];
        cr_assert(fabs(got - want[i]) <= tol * (1 + fabs(want[i])),
                  "%s: element %zu is %.9g, expected %.9g", what, i, got, want[i]);
    }
}

void conv_check_case(const conv_case *t, uint32_t seed, double tol, const char *what)
{
    int ns = t->ns, rank = ns + 2;
    int64_t xd[5], wd[5], yd[5];
    case_dims(t, xd, wd, yd);
    size_t nx = conv_prod(xd, rank), nw = conv_prod(wd, rank), nb = (size_t)t->m;
    size_t all = nx + nw + nb + 1, ny = conv_prod(yd, rank);
    float *xf = malloc(all * sizeof(float));
    double *xdbl = malloc(all * sizeof(double));
    uint16_t *xh = malloc(all * sizeof(uint16_t));
    double *want = malloc((ny + 1) * sizeof(double));
    kh_fill_random(xf, all, seed);
    for (size_t i = 0; i < all; i++) {
        if (t->half == QKV_DTYPE_FLOAT16) { /* the reference sees the rounded inputs */
            xh[i] = qkv_f32_to_f16(xf[i]);
            xf[i] = qkv_f16_to_f32(xh[i]);
        } else if (t->half == QKV_DTYPE_BFLOAT16) {
            xh[i] = qkv_f32_to_bf16(xf[i]);
            xf[i] = qkv_bf16_to_f32(xh[i]);
        }
        xdbl[i] = xf[i];
    }
    conv_ref(t, xdbl, xdbl + nx, t->bias ? xdbl + nx + nw : NULL, want);

    kh_node *node = kh_node_create("Conv", t->opset ? t->opset : 11, t->bias ? 3 : 2, 1);
    if (t->group != 1 || t->set_group)
        kh_attr_int(node, "group", t->group);
    if (t->set_kernel_shape)
        kh_attr_ints(node, "kernel_shape", t->k, (size_t)ns);
    if (t->set_strides)
        kh_attr_ints(node, "strides", t->s, (size_t)ns);
    if (t->set_dilations)
        kh_attr_ints(node, "dilations", t->d, (size_t)ns);
    if (t->set_pads) {
        int64_t pads[6];
        for (int i = 0; i < ns; i++) {
            pads[i] = t->pb[i];
            pads[ns + i] = t->pe[i];
        }
        kh_attr_ints(node, "pads", pads, 2 * (size_t)ns);
    }
    if (t->auto_pad)
        kh_attr_string(node, "auto_pad", t->auto_pad);
    kh_set_threads(node, t->threads ? t->threads : 1);
    qkv_dtype dt = t->dbl ? QKV_DTYPE_DOUBLE : t->half ? t->half : QKV_DTYPE_FLOAT;
    void *base = t->dbl ? (void *)xdbl : t->half ? (void *)xh : (void *)xf;
    size_t eb = t->dbl ? sizeof(double) : t->half ? sizeof(uint16_t) : sizeof(float);
    qkv_tensor ins[3] = {kh_tensor(dt, rank, xd, base),
                         kh_tensor(dt, rank, wd, (char *)base + nx * eb),
                         kh_tensor(dt, 1, &t->m, (char *)base + (nx + nw) * eb)};
    qkv_tensor y;
    qkv_error err;
    if (t->hide_input)
        kh_hide_input_values(node);
    cr_assert_eq(kh_run(node, ins, &y, &err), QKV_OK, "%s: %s", what, err.message);
    cr_assert_eq(y.rank, rank, "%s", what);
    for (int i = 0; i < rank; i++)
        cr_assert_eq(y.dims[i], yd[i], "%s: dim %d is %lld, expected %lld", what, i,
                     (long long)y.dims[i], (long long)yd[i]);
    cr_assert_eq(y.dtype, dt, "%s", what);
    assert_matches(t, y.data, want, ny, tol, what);
    kh_free_outputs(&y, 1);
    kh_node_destroy(node);
    free(want);
    free(xh);
    free(xdbl);
    free(xf);
}

/* ---- a one-node model ------------------------------------------------------------ */

/* An INTS attribute (n values at v, which must outlive the packing). */
static Onnx__AttributeProto ints_attr(const char *name, int64_t *v, size_t n)
{
    Onnx__AttributeProto a = ONNX__ATTRIBUTE_PROTO__INIT;
    a.name = (char *)name;
    a.has_type = 1;
    a.type = ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__INTS;
    a.n_ints = n;
    a.ints = v;
    return a;
}

/* A float32 initializer. */
static Onnx__TensorProto float_init(const char *name, int64_t *dims, size_t rank, float *v,
                                    size_t n)
{
    Onnx__TensorProto t = ONNX__TENSOR_PROTO__INIT;
    t.name = (char *)name;
    t.has_data_type = 1;
    t.data_type = ONNX__TENSOR_PROTO__DATA_TYPE__FLOAT;
    t.n_dims = rank;
    t.dims = dims;
    t.n_float_data = n;
    t.float_data = v;
    return t;
}

/* The model bytes (malloc'd) of Conv(x, W[, B]) -> y, opset 17, with the
 * case's attributes; x (n, c, spatial...) with its last dim symbolic. */
static uint8_t *conv_model(const conv_case *t, float *w, size_t nw, float *b, size_t *bytes)
{
    int ns = t->ns;
    int64_t xd[5], wd[5], yd[5];
    case_dims(t, xd, wd, yd);
    Onnx__AttributeProto attrs[7];
    size_t na = 0;
    int64_t group = t->group, pads[6];
    Onnx__AttributeProto ga = ONNX__ATTRIBUTE_PROTO__INIT;
    ga.name = "group";
    ga.has_type = 1;
    ga.type = ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__INT;
    ga.has_i = 1;
    ga.i = group;
    attrs[na++] = ga;
    attrs[na++] = ints_attr("kernel_shape", (int64_t *)t->k, (size_t)ns);
    attrs[na++] = ints_attr("strides", (int64_t *)t->s, (size_t)ns);
    attrs[na++] = ints_attr("dilations", (int64_t *)t->d, (size_t)ns);
    if (!t->auto_pad || !strcmp(t->auto_pad, "NOTSET")) {
        for (int i = 0; i < ns; i++) {
            pads[i] = t->pb[i];
            pads[ns + i] = t->pe[i];
        }
        attrs[na++] = ints_attr("pads", pads, 2 * (size_t)ns);
    } else {
        Onnx__AttributeProto ap = ONNX__ATTRIBUTE_PROTO__INIT;
        ap.name = "auto_pad";
        ap.has_type = 1;
        ap.type = ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__STRING;
        ap.has_s = 1;
        ap.s.data = (uint8_t *)t->auto_pad;
        ap.s.len = strlen(t->auto_pad);
        attrs[na++] = ap;
    }
    Onnx__AttributeProto *attr_ptrs[7];
    for (size_t i = 0; i < na; i++)
        attr_ptrs[i] = &attrs[i];
    char *node_in[3] = {"x", "W", "B"}, *node_out[1] = {"y"};
    Onnx__NodeProto node = ONNX__NODE_PROTO__INIT;
    node.name = "conv";
    node.op_type = "Conv";
    node.n_input = t->bias ? 3 : 2;
    node.input = node_in;
    node.n_output = 1;
    node.output = node_out;
    node.n_attribute = na;
    node.attribute = attr_ptrs;
    Onnx__NodeProto *nodes[1] = {&node};

    int64_t bd[1] = {t->m};
    Onnx__TensorProto wt = float_init("W", wd, (size_t)ns + 2, w, nw);
    Onnx__TensorProto bt = float_init("B", bd, 1, b, (size_t)t->m);
    Onnx__TensorProto *inits[2] = {&wt, &bt};

    Onnx__TensorShapeProto__Dimension dims[5], *dim_ptrs[5];
    for (int i = 0; i < ns + 2; i++) {
        Onnx__TensorShapeProto__Dimension d = ONNX__TENSOR_SHAPE_PROTO__DIMENSION__INIT;
        if (i == ns + 1) {
            d.value_case = ONNX__TENSOR_SHAPE_PROTO__DIMENSION__VALUE_DIM_PARAM;
            d.dim_param = "L";
        } else {
            d.value_case = ONNX__TENSOR_SHAPE_PROTO__DIMENSION__VALUE_DIM_VALUE;
            d.dim_value = xd[i];
        }
        dims[i] = d;
        dim_ptrs[i] = &dims[i];
    }
    Onnx__TensorShapeProto shape = ONNX__TENSOR_SHAPE_PROTO__INIT;
    shape.n_dim = (size_t)ns + 2;
    shape.dim = dim_ptrs;
    Onnx__TypeProto__Tensor xt = ONNX__TYPE_PROTO__TENSOR__INIT,
                            yt = ONNX__TYPE_PROTO__TENSOR__INIT;
    xt.has_elem_type = yt.has_elem_type = 1;
    xt.elem_type = yt.elem_type = ONNX__TENSOR_PROTO__DATA_TYPE__FLOAT;
    xt.shape = &shape;
    Onnx__TypeProto x_type = ONNX__TYPE_PROTO__INIT, y_type = ONNX__TYPE_PROTO__INIT;
    x_type.value_case = y_type.value_case = ONNX__TYPE_PROTO__VALUE_TENSOR_TYPE;
    x_type.tensor_type = &xt;
    y_type.tensor_type = &yt;
    Onnx__ValueInfoProto x = ONNX__VALUE_INFO_PROTO__INIT, y = ONNX__VALUE_INFO_PROTO__INIT;
    x.name = "x";
    x.type = &x_type;
    y.name = "y";
    y.type = &y_type;
    Onnx__ValueInfoProto *ins[1] = {&x}, *outs[1] = {&y};

    Onnx__GraphProto g = ONNX__GRAPH_PROTO__INIT;
    g.name = "conv_case";
    g.n_node = 1;
    g.node = nodes;
    g.n_initializer = t->bias ? 2 : 1;
    g.initializer = inits;
    g.n_input = 1;
    g.input = ins;
    g.n_output = 1;
    g.output = outs;
    Onnx__OperatorSetIdProto set = ONNX__OPERATOR_SET_ID_PROTO__INIT;
    set.domain = "";
    set.has_version = 1;
    set.version = 17;
    Onnx__OperatorSetIdProto *sets[1] = {&set};
    Onnx__ModelProto model = ONNX__MODEL_PROTO__INIT;
    model.has_ir_version = 1;
    model.ir_version = 8;
    model.n_opset_import = 1;
    model.opset_import = sets;
    model.graph = &g;
    *bytes = onnx__model_proto__get_packed_size(&model);
    uint8_t *buf = malloc(*bytes);
    onnx__model_proto__pack(&model, buf);
    return buf;
}

size_t conv_check_session(const conv_case *t, uint32_t seed, double tol, const int64_t *lengths,
                          size_t n_lengths, const char *what)
{
    int rank = t->ns + 2;
    int64_t xd[5], wd[5], yd[5];
    case_dims(t, xd, wd, yd);
    size_t nw = conv_prod(wd, rank);
    float *wb = malloc((nw + (size_t)t->m) * sizeof(float));
    kh_fill_random(wb, nw + (size_t)t->m, seed);
    size_t bytes;
    uint8_t *model = conv_model(t, wb, nw, wb + nw, &bytes);
    qkv_session_options opts;
    qkv_session_options_init(&opts);
    opts.threads = t->threads ? t->threads : 1;
    opts.backends = "cpu";
    qkv_session *s = NULL;
    qkv_context *ctx = NULL;
    qkv_error err;
    cr_assert_eq(qkv_session_create_from_buffer(model, bytes, NULL, &opts, &s, &err), QKV_OK,
                 "%s: %s", what, err.message);
    cr_assert_eq(qkv_context_create(s, &ctx, &err), QKV_OK, "%s: %s", what, err.message);
    size_t released = 0;
    qkv_session_packed_bytes(s, &released);
    size_t runs = n_lengths ? n_lengths : 1;
    for (size_t r = 0; r < runs; r++) {
        conv_case u = *t;
        if (n_lengths)
            u.in[t->ns - 1] = lengths[r];
        case_dims(&u, xd, wd, yd);
        size_t nx = conv_prod(xd, rank), ny = conv_prod(yd, rank);
        float *xf = malloc((nx + 1) * sizeof(float));
        double *all = malloc((nx + nw + (size_t)t->m + 1) * sizeof(double));
        double *want = malloc((ny + 1) * sizeof(double));
        kh_fill_random(xf, nx + 1, seed + 1000 + (uint32_t)r);
        for (size_t i = 0; i < nx; i++)
            all[i] = xf[i];
        for (size_t i = 0; i < nw + (size_t)t->m; i++)
            all[nx + i] = wb[i];
        conv_ref(&u, all, all + nx, t->bias ? all + nx + nw : NULL, want);
        qkv_tensor x = kh_f32(rank, xd, xf);
        cr_assert_eq(qkv_run(ctx, &x, 1, &err), QKV_OK, "%s (length %lld): %s", what,
                     (long long)u.in[t->ns - 1], err.message);
        const qkv_tensor *y = qkv_context_output(ctx, 0);
        cr_assert_eq(y->rank, rank, "%s", what);
        for (int i = 0; i < rank; i++)
            cr_assert_eq(y->dims[i], yd[i], "%s: dim %d is %lld, expected %lld", what, i,
                         (long long)y->dims[i], (long long)yd[i]);
        assert_matches(&u, y->data, want, ny, tol, what);
        free(want);
        free(all);
        free(xf);
    }
    qkv_context_destroy(ctx);
    qkv_session_destroy(s);
    free(model);
    free(wb);
    return released;
}
