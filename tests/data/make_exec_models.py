#!/usr/bin/env python3
"""Writes the models the session/executor tests run, with reference outputs.

Usage: make_exec_models.py OUTDIR   (Debian's /usr/bin/python3: onnx, numpy)

Each model goes to OUTDIR/exec/<name>.onnx; reference data to
OUTDIR/exec/<name>_<case>_{input,output}_<k>.pb (TensorProto files), computed
here with numpy.
"""
import os
import sys

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

OPSET = [helper.make_opsetid("", 17)]


def save_pb(path, array):
    with open(path, "wb") as f:
        f.write(numpy_helper.from_array(array).SerializeToString())


def softmax(x, axis=-1):
    e = np.exp(x - x.max(axis=axis, keepdims=True))
    return e / e.sum(axis=axis, keepdims=True)


def mlp(out):
    """x[batch,8] -> MatMul W1[8,16] -> Add b1 -> Relu -> MatMul W2[16,4] -> Add b2 -> Softmax."""
    rng = np.random.default_rng(1)
    w1 = rng.standard_normal((8, 16)).astype(np.float32)
    b1 = rng.standard_normal(16).astype(np.float32)
    w2 = rng.standard_normal((16, 4)).astype(np.float32)
    b2 = rng.standard_normal(4).astype(np.float32)
    nodes = [
        helper.make_node("MatMul", ["x", "w1"], ["h0"], name="fc1/MatMul"),
        helper.make_node("Add", ["h0", "b1"], ["h1"], name="fc1/Add"),
        helper.make_node("Relu", ["h1"], ["h2"], name="relu"),
        helper.make_node("MatMul", ["h2", "w2"], ["h3"], name="fc2/MatMul"),
        helper.make_node("Add", ["h3", "b2"], ["h4"], name="fc2/Add"),
        helper.make_node("Softmax", ["h4"], ["y"], name="softmax", axis=-1),
    ]
    graph = helper.make_graph(
        nodes, "mlp",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["batch", 8])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["batch", 4])],
        [numpy_helper.from_array(w1, "w1"), numpy_helper.from_array(b1, "b1"),
         numpy_helper.from_array(w2, "w2"), numpy_helper.from_array(b2, "b2")])
    onnx.save(helper.make_model(graph, opset_imports=OPSET, producer_name="qkv-tests"),
              os.path.join(out, "mlp.onnx"))
    for case, batch in (("b1", 1), ("b5", 5)):
        x = rng.standard_normal((batch, 8)).astype(np.float32)
        y = softmax(np.maximum(x @ w1 + b1, 0) @ w2 + b2)
        save_pb(os.path.join(out, f"mlp_{case}_input_0.pb"), x)
        save_pb(os.path.join(out, f"mlp_{case}_output_0.pb"), y.astype(np.float32))


def shape_chain(out):
    """The shape subgraph exporters emit: x[b,s,8] -> Shape -> Gather(0), Gather(1)
    -> Unsqueeze -> Concat([b, s, 2, 4]) -> Reshape -> Transpose -> Reshape back."""
    rng = np.random.default_rng(2)
    i64 = lambda name, v: numpy_helper.from_array(np.array(v, dtype=np.int64), name)
    nodes = [
        helper.make_node("Shape", ["x"], ["shape"], name="shape"),
        helper.make_node("Gather", ["shape", "zero"], ["b"], name="gather_b", axis=0),
        helper.make_node("Gather", ["shape", "one"], ["s"], name="gather_s", axis=0),
        helper.make_node("Unsqueeze", ["b", "axes0"], ["b1"], name="unsq_b"),
        helper.make_node("Unsqueeze", ["s", "axes0"], ["s1"], name="unsq_s"),
        helper.make_node("Concat", ["b1", "s1", "heads"], ["newshape"], name="concat", axis=0),
        helper.make_node("Reshape", ["x", "newshape"], ["xr"], name="split_heads"),
        helper.make_node("Transpose", ["xr"], ["xt"], name="transpose", perm=[0, 2, 1, 3]),
        helper.make_node("Relu", ["xt"], ["y"], name="relu"),
    ]
    graph = helper.make_graph(
        nodes, "shape_chain",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["batch", "seq", 8])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["batch", 2, "seq", 4])],
        [i64("zero", 0), i64("one", 1), i64("axes0", [0]), i64("heads", [2, 4])])
    onnx.save(helper.make_model(graph, opset_imports=OPSET, producer_name="qkv-tests"),
              os.path.join(out, "shape_chain.onnx"))
    for case, (b, s) in (("a", (1, 3)), ("b", (3, 7))):
        x = rng.standard_normal((b, s, 8)).astype(np.float32)
        y = np.maximum(x.reshape(b, s, 2, 4).transpose(0, 2, 1, 3), 0)
        save_pb(os.path.join(out, f"shape_chain_{case}_input_0.pb"), x)
        save_pb(os.path.join(out, f"shape_chain_{case}_output_0.pb"), y)


def dynamic_reshape(out):
    """Reshape whose shape is a runtime input: planned only when it runs."""
    nodes = [
        helper.make_node("Reshape", ["x", "shape"], ["r"], name="reshape"),
        helper.make_node("Relu", ["r"], ["y"], name="relu"),
    ]
    graph = helper.make_graph(
        nodes, "dynamic_reshape",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [2, 6]),
         helper.make_tensor_value_info("shape", TensorProto.INT64, [2])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, None)], [])
    onnx.save(helper.make_model(graph, opset_imports=OPSET, producer_name="qkv-tests"),
              os.path.join(out, "dynamic_reshape.onnx"))


def unknown_op(out):
    nodes = [helper.make_node("FancyOp", ["x"], ["y"], name="fancy", domain="com.example"),
             helper.make_node("Relu", ["y"], ["z"], name="relu")]
    graph = helper.make_graph(
        nodes, "unknown_op",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [2])],
        [helper.make_tensor_value_info("z", TensorProto.FLOAT, [2])], [])
    model = helper.make_model(graph, opset_imports=OPSET + [helper.make_opsetid("com.example", 3)])
    onnx.save(model, os.path.join(out, "unknown_op.onnx"))
    # several missing ops, one name inside another: each is listed once
    names = ["FancyOp", "MatMulX", "Mul", "FancyOp", "MatMulX"]
    nodes = [helper.make_node(op, [f"v{i}"], [f"v{i + 1}"], name=f"n{i}", domain="com.example")
             for i, op in enumerate(names)]
    graph = helper.make_graph(
        nodes, "unknown_ops",
        [helper.make_tensor_value_info("v0", TensorProto.FLOAT, [2])],
        [helper.make_tensor_value_info(f"v{len(names)}", TensorProto.FLOAT, [2])], [])
    model = helper.make_model(graph, opset_imports=OPSET + [helper.make_opsetid("com.example", 3)])
    onnx.save(model, os.path.join(out, "unknown_ops.onnx"))


def linear_stack(out):
    """Constant weights the kernels pack once per session:
    x[batch,40] -> Gemm(W0[70,40]^T, b0) -> MatMul W1[70,300] -> Relu -> MatMul W2[300,33] -> y.
    Every weight has one reader, so every original can be released."""
    rng = np.random.default_rng(7)
    w0 = rng.standard_normal((70, 40)).astype(np.float32)
    b0 = rng.standard_normal(70).astype(np.float32)
    w1 = (rng.standard_normal((70, 300)) * 0.2).astype(np.float32)
    w2 = (rng.standard_normal((300, 33)) * 0.1).astype(np.float32)
    nodes = [
        helper.make_node("Gemm", ["x", "w0", "b0"], ["h0"], name="fc0/Gemm", transB=1),
        helper.make_node("MatMul", ["h0", "w1"], ["h1"], name="fc1/MatMul"),
        helper.make_node("Relu", ["h1"], ["h2"], name="relu"),
        helper.make_node("MatMul", ["h2", "w2"], ["y"], name="fc2/MatMul"),
    ]
    graph = helper.make_graph(
        nodes, "linear_stack",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["batch", 40])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["batch", 33])],
        [numpy_helper.from_array(w0, "w0"), numpy_helper.from_array(b0, "b0"),
         numpy_helper.from_array(w1, "w1"), numpy_helper.from_array(w2, "w2")])
    onnx.save(helper.make_model(graph, opset_imports=OPSET, producer_name="qkv-tests"),
              os.path.join(out, "linear_stack.onnx"))
    for case, batch in (("b1", 1), ("b7", 7), ("b100", 100)):
        x = rng.standard_normal((batch, 40)).astype(np.float32)
        h = np.maximum((x.astype(np.float64) @ w0.T + b0) @ w1, 0)
        save_pb(os.path.join(out, f"linear_stack_{case}_input_0.pb"), x)
        save_pb(os.path.join(out, f"linear_stack_{case}_output_0.pb"), (h @ w2).astype(np.float32))


def tied_weight(out):
    """W[33,20] read by MatMul (packed) and by Gather (not): y = x @ W, e = W[idx].
    The original must stay, since Gather reads it."""
    rng = np.random.default_rng(8)
    w = rng.standard_normal((33, 20)).astype(np.float32)
    nodes = [
        helper.make_node("MatMul", ["x", "w"], ["y"], name="proj"),
        helper.make_node("Gather", ["w", "idx"], ["e"], name="embed", axis=0),
    ]
    graph = helper.make_graph(
        nodes, "tied_weight",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [4, 33]),
         helper.make_tensor_value_info("idx", TensorProto.INT64, [3])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [4, 20]),
         helper.make_tensor_value_info("e", TensorProto.FLOAT, [3, 20])],
        [numpy_helper.from_array(w, "w")])
    onnx.save(helper.make_model(graph, opset_imports=OPSET, producer_name="qkv-tests"),
              os.path.join(out, "tied_weight.onnx"))
    x = rng.standard_normal((4, 33)).astype(np.float32)
    idx = np.array([0, 32, 5], dtype=np.int64)
    save_pb(os.path.join(out, "tied_weight_a_input_0.pb"), x)
    save_pb(os.path.join(out, "tied_weight_a_input_1.pb"), idx)
    save_pb(os.path.join(out, "tied_weight_a_output_0.pb"), (x.astype(np.float64) @ w).astype(np.float32))
    save_pb(os.path.join(out, "tied_weight_a_output_1.pb"), w[idx])


def empty_tensors(out):
    """Empty values everywhere: an input with a zero dim (that is also an
    output, so it is copied), an empty initializer, kernels on both."""
    e = numpy_helper.from_array(np.zeros((0, 3), np.float32), "e")
    nodes = [
        helper.make_node("Dropout", ["x"], ["d"], name="dropout_x"),
        helper.make_node("Relu", ["d"], ["y"], name="relu"),
        helper.make_node("Concat", ["x", "e"], ["c"], name="concat", axis=0),
        helper.make_node("Dropout", ["e"], ["z"], name="dropout_e"),
    ]
    f = lambda n, s: helper.make_tensor_value_info(n, TensorProto.FLOAT, s)
    graph = helper.make_graph(nodes, "empty_tensors", [f("x", ["n", 3])],
                              [f("y", ["n", 3]), f("c", ["n", 3]), f("z", [0, 3]),
                               f("x", ["n", 3])], [e])
    onnx.save(helper.make_model(graph, opset_imports=OPSET, producer_name="qkv-tests"),
              os.path.join(out, "empty_tensors.onnx"))


def main():
    out = os.path.join(sys.argv[1], "exec")
    os.makedirs(out, exist_ok=True)
    mlp(out)
    shape_chain(out)
    dynamic_reshape(out)
    unknown_op(out)
    linear_stack(out)
    tied_weight(out)
    empty_tensors(out)


if __name__ == "__main__":
    main()
