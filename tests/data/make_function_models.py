#!/usr/bin/env python3
"""Writes models with model-local functions (ModelProto.functions) for
tests/test_functions.c, with numpy reference outputs.

Usage: make_function_models.py OUTDIR   (Debian's /usr/bin/python3: onnx, numpy)

Each model goes to OUTDIR/functions/<name>.onnx. A model that runs has
OUTDIR/functions/<name>_input_<k>.pb and <name>_output_<k>.pb (TensorProto
files) computed here with numpy; the error models only need to load.
"""
import math
import os
import sys

import numpy as np
import onnx
from onnx import AttributeProto, TensorProto, helper, numpy_helper

ONNX17 = helper.make_opsetid("", 17)
LOCAL = helper.make_opsetid("local", 1)


def save_pb(path, array):
    with open(path, "wb") as f:
        f.write(numpy_helper.from_array(array).SerializeToString())


def attr_ref(name, ref, attr_type):
    """An attribute of a function body node that takes the caller's `ref`."""
    a = AttributeProto()
    a.name = name
    a.ref_attr_name = ref
    a.type = attr_type
    return a


def node_with(op, inputs, outputs, refs=(), domain="", **attrs):
    n = helper.make_node(op, inputs, outputs, domain=domain, **attrs)
    n.attribute.extend(refs)
    return n


def save(out, name, nodes, inputs, outputs, functions, opsets=(ONNX17, LOCAL), arrays=()):
    graph = helper.make_graph(nodes, name, inputs, outputs)
    model = helper.make_model(graph, opset_imports=list(opsets), functions=functions,
                              producer_name="qkv-tests")
    onnx.save(model, os.path.join(out, f"{name}.onnx"))
    for kind, values in arrays:
        for k, a in enumerate(values):
            save_pb(os.path.join(out, f"{name}_{kind}_{k}.pb"), a)


def f32_info(name, shape):
    return helper.make_tensor_value_info(name, TensorProto.FLOAT, shape)


def swish():
    """local.Swish(x) = x * Sigmoid(x): the inner value 's' at each call site."""
    return helper.make_function(
        "local", "Swish", ["x"], ["y"],
        [helper.make_node("Sigmoid", ["x"], ["s"], name="sig"),
         helper.make_node("Mul", ["x", "s"], ["y"], name="mul")],
        [ONNX17])


def np_swish(x):
    return x / (1 + np.exp(-x))


def two_calls(out, rng):
    """Two calls of one function: each gets its own copy of the inner values."""
    x = rng.standard_normal((2, 5)).astype(np.float32)
    a = np_swish(x)
    b = np_swish(a)
    nodes = [helper.make_node("Swish", ["x"], ["a"], domain="local", name="first"),
             helper.make_node("Swish", ["a"], ["b"], domain="local")]
    save(out, "two_calls", nodes, [f32_info("x", [2, 5])],
         [f32_info("a", [2, 5]), f32_info("b", [2, 5])], [swish()],
         arrays=[("input", [x]), ("output", [a.astype(np.float32), b.astype(np.float32)])])


def attr_refs(out, rng):
    """local.ScaledLeaky(x; alpha, scale) = LeakyRelu(x, alpha) * scale: called
    once with both attributes and once without alpha (LeakyRelu's default
    0.01 applies)."""
    fn = helper.make_function(
        "local", "ScaledLeaky", ["x"], ["y"],
        [node_with("LeakyRelu", ["x"], ["t"],
                   [attr_ref("alpha", "alpha", AttributeProto.FLOAT)]),
         node_with("Constant", [], ["c"],
                   [attr_ref("value_float", "scale", AttributeProto.FLOAT)]),
         helper.make_node("Mul", ["t", "c"], ["y"])],
        [ONNX17], attributes=["alpha", "scale"])
    x = rng.standard_normal((3, 4)).astype(np.float32)
    y1 = np.where(x >= 0, x, 0.2 * x) * 3.0
    y2 = np.where(x >= 0, x, 0.01 * x) * 2.0
    nodes = [helper.make_node("ScaledLeaky", ["x"], ["y1"], domain="local", alpha=0.2,
                              scale=3.0),
             helper.make_node("ScaledLeaky", ["x"], ["y2"], domain="local", scale=2.0)]
    save(out, "attr_refs", nodes, [f32_info("x", [3, 4])],
         [f32_info("y1", [3, 4]), f32_info("y2", [3, 4])], [fn],
         arrays=[("input", [x]), ("output", [y1.astype(np.float32), y2.astype(np.float32)])])


def nested(out, rng):
    """local.Block(x, w) calls local.Proj(x, w) = MatMul, then com.microsoft
    Gelu: a domain only the function imports, not the model. Block has two
    outputs; the caller asks for the first only."""
    proj = helper.make_function("local", "Proj", ["x", "w"], ["y"],
                                [helper.make_node("MatMul", ["x", "w"], ["y"])], [ONNX17])
    block = helper.make_function(
        "local", "Block", ["x", "w"], ["y", "pre"],
        [helper.make_node("Proj", ["x", "w"], ["pre"], domain="local", name="proj"),
         helper.make_node("Gelu", ["pre"], ["y"], domain="com.microsoft", name="gelu")],
        [ONNX17, LOCAL, helper.make_opsetid("com.microsoft", 1)])
    x = rng.standard_normal((2, 3)).astype(np.float32)
    w = rng.standard_normal((3, 4)).astype(np.float32)
    pre = x.astype(np.float64) @ w
    erf = np.vectorize(math.erf)
    y = 0.5 * pre * (1 + erf(pre / math.sqrt(2)))
    nodes = [helper.make_node("Block", ["x", "w"], ["y"], domain="local", name="block")]
    save(out, "nested", nodes, [f32_info("x", [2, 3]), f32_info("w", [3, 4])],
         [f32_info("y", [2, 4])], [block, proj],
         arrays=[("input", [x, w]), ("output", [y.astype(np.float32)])])


def function_opset(out, rng):
    """The function imports opset 11, where Softmax flattens the input at
    axis into 2-D; the model imports 17, where it normalises one axis."""
    fn = helper.make_function("local", "OldSoftmax", ["x"], ["y"],
                              [helper.make_node("Softmax", ["x"], ["y"], axis=1)],
                              [helper.make_opsetid("", 11)])
    x = rng.standard_normal((2, 3, 4)).astype(np.float32)
    flat = x.reshape(2, 12).astype(np.float64)
    e = np.exp(flat - flat.max(axis=1, keepdims=True))
    y = (e / e.sum(axis=1, keepdims=True)).reshape(2, 3, 4)
    nodes = [helper.make_node("OldSoftmax", ["x"], ["y"], domain="local")]
    save(out, "function_opset", nodes, [f32_info("x", [2, 3, 4])], [f32_info("y", [2, 3, 4])],
         [fn], arrays=[("input", [x]), ("output", [y.astype(np.float32)])])


def omitted_input(out, rng):
    """local.Bound(x, lo, hi) = Clip(x, lo, hi) called with x alone: the
    omitted formal inputs become omitted inputs of Clip."""
    fn = helper.make_function("local", "Bound", ["x", "lo", "hi"], ["y"],
                              [helper.make_node("Clip", ["x", "lo", "hi"], ["y"])], [ONNX17])
    x = rng.standard_normal((6,)).astype(np.float32)
    nodes = [helper.make_node("Bound", ["x"], ["y"], domain="local")]
    save(out, "omitted_input", nodes, [f32_info("x", [6])], [f32_info("y", [6])], [fn],
         arrays=[("input", [x]), ("output", [x])])


def pass_through(out, rng):
    """local.Tee(x) = (x, Neg(x)): the first output is the input itself."""
    fn = helper.make_function("local", "Tee", ["x"], ["x", "y"],
                              [helper.make_node("Neg", ["x"], ["y"])], [ONNX17])
    x = rng.standard_normal((4,)).astype(np.float32)
    nodes = [helper.make_node("Tee", ["x"], ["a", "b"], domain="local", name="tee")]
    save(out, "pass_through", nodes, [f32_info("x", [4])],
         [f32_info("a", [4]), f32_info("b", [4])], [fn],
         arrays=[("input", [x]), ("output", [x, -x])])


def subgraph_in_function(out):
    """local.Pick(c, x) = If(c, then: Identity(t), else: Identity(x)) with
    t = Neg(x): the branches read body values, renamed at each of two calls.
    Loaded only (the test reads the IR)."""
    then_g = helper.make_graph([helper.make_node("Identity", ["t"], ["o1"])], "then", [],
                               [f32_info("o1", [2])])
    else_g = helper.make_graph([helper.make_node("Identity", ["x"], ["o2"])], "else", [],
                               [f32_info("o2", [2])])
    fn = helper.make_function(
        "local", "Pick", ["c", "x"], ["y"],
        [helper.make_node("Neg", ["x"], ["t"], name="neg"),
         helper.make_node("If", ["c"], ["y"], name="if", then_branch=then_g,
                          else_branch=else_g)],
        [ONNX17])
    nodes = [helper.make_node("Pick", ["c", "x"], ["y1"], domain="local", name="p1"),
             helper.make_node("Pick", ["c", "y1"], ["y2"], domain="local", name="p2")]
    save(out, "subgraph_in_function", nodes,
         [helper.make_tensor_value_info("c", TensorProto.BOOL, []), f32_info("x", [2])],
         [f32_info("y2", [2])], [fn])


def errors(out):
    x_in, y_out = [f32_info("x", [2])], [f32_info("y", [2])]
    # a call of a function the model does not define, in a function domain
    save(out, "unknown_function",
         [helper.make_node("Nope", ["x"], ["y"], domain="local", name="caller")],
         x_in, y_out, [swish()])
    # F -> G -> F
    f = helper.make_function("local", "F", ["x"], ["y"],
                             [helper.make_node("G", ["x"], ["y"], domain="local")],
                             [ONNX17, LOCAL])
    g = helper.make_function("local", "G", ["x"], ["y"],
                             [helper.make_node("F", ["x"], ["y"], domain="local")],
                             [ONNX17, LOCAL])
    save(out, "recursion", [helper.make_node("F", ["x"], ["y"], domain="local", name="top")],
         x_in, y_out, [f, g])
    # a body attribute refers to an attribute the function does not declare
    bad = helper.make_function(
        "local", "Leaky", ["x"], ["y"],
        [node_with("LeakyRelu", ["x"], ["y"], [attr_ref("alpha", "slope", AttributeProto.FLOAT)],
                   name="leaky")],
        [ONNX17], attributes=["alpha"])
    save(out, "missing_attribute",
         [helper.make_node("Leaky", ["x"], ["y"], domain="local", alpha=0.5)],
         x_in, y_out, [bad])
    # three inputs to a one-input function
    save(out, "wrong_input_count",
         [helper.make_node("Swish", ["x", "x", "x"], ["y"], domain="local", name="caller")],
         x_in, y_out, [swish()])
    # an attribute the function does not declare
    save(out, "undeclared_attribute",
         [helper.make_node("Swish", ["x"], ["y"], domain="local", name="caller", beta=2.0)],
         x_in, y_out, [swish()])
    # an output that is the function's input, which the call leaves out
    tee = helper.make_function("local", "Tee", ["x"], ["x", "y"],
                               [helper.make_node("Neg", ["x"], ["y"])], [ONNX17])
    save(out, "pass_through_omitted",
         [helper.make_node("Tee", [], ["a"], domain="local", name="caller")], [],
         [f32_info("a", [2])], [tee])
    # the same function twice
    save(out, "duplicate_function",
         [helper.make_node("Swish", ["x"], ["y"], domain="local")], x_in, y_out,
         [swish(), swish()])
    # a body node with no opset import anywhere for its domain
    lost = helper.make_function("local", "Lost", ["x"], ["y"],
                                [helper.make_node("Thing", ["x"], ["y"], domain="elsewhere",
                                                  name="thing")], [ONNX17])
    save(out, "no_opset_in_function",
         [helper.make_node("Lost", ["x"], ["y"], domain="local")], x_in, y_out, [lost])


def main():
    out = os.path.join(sys.argv[1], "functions")
    os.makedirs(out, exist_ok=True)
    rng = np.random.default_rng(14)
    two_calls(out, rng)
    attr_refs(out, rng)
    nested(out, rng)
    function_opset(out, rng)
    omitted_input(out, rng)
    subgraph_in_function(out)
    pass_through(out, rng)
    errors(out)


if __name__ == "__main__":
    main()
