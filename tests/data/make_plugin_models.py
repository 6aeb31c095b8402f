#!/usr/bin/env python3
"""Writes the models the plugin tests run (tests/test_plugin*.c, and the
out-of-tree plugin test), with reference outputs computed here with numpy.

Usage: make_plugin_models.py OUTDIR   (Debian's /usr/bin/python3: onnx, numpy)

Models go to OUTDIR/plugin/<name>.onnx, reference tensors to
OUTDIR/plugin/<name>_{input,output}_<k>.pb (TensorProto files).

  example          qkv.example.Rotary (positions given, halves) -> BiasGelu (tanh)
  example_inter    qkv.example.Rotary (interleaved, default positions) -> BiasGelu (erf)
  scale            qkv.test.Scale factor=3.5
  positives        qkv.test.Positives (no shape inference) -> qkv.test.Scale
  forgetful        qkv.test.Forgetful (no infer, never allocates its output)
  fail             qkv.test.FailIfNegative
  host_gemm        qkv.test.HostGemm (a plugin op using host->gemm)
  relu_mixed       Relu on float (backend testbk takes it) and on double (cpu)
  neg              qkv.minor.Neg (the newer-minor fixture)
  plan_once        qkv.plan.PlanOnce on x of symbolic length (per-plan state)
  plan_alloc       qkv.plan.AllocInCompute (plan_alloc outside prepare)
  matmul_mixed     MatMul on float and on int32
  gemm_ops         MatMul (batched), Gemm (transB, alpha, beta, bias) and
                   Attention-23 (4-D, causal), every dim symbolic: the GEMM
                   provider tests run it on random shapes (no reference files)
"""
import math
import os
import sys

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper


def save_pb(path, array):
    with open(path, "wb") as f:
        f.write(numpy_helper.from_array(array).SerializeToString())


def save_model(out, name, nodes, inputs, outputs, inits=(), opsets=(("", 17),), feeds=(),
               expected=()):
    graph = helper.make_graph(nodes, name, inputs, outputs, list(inits))
    model = helper.make_model(
        graph, opset_imports=[helper.make_opsetid(d, v) for d, v in opsets])
    model.ir_version = 8
    onnx.save(model, os.path.join(out, name + ".onnx"))
    for k, a in enumerate(feeds):
        save_pb(os.path.join(out, f"{name}_input_{k}.pb"), a)
    for k, a in enumerate(expected):
        save_pb(os.path.join(out, f"{name}_output_{k}.pb"), a)


def rotary(x, positions, base, interleaved):
    """x (..., seq, dim): the example plugin's Rotary, in float64."""
    x = x.astype(np.float64)
    dim = x.shape[-1]
    half = dim // 2
    inv = base ** (-2.0 * np.arange(half) / dim)  # (half)
    theta = positions.astype(np.float64)[:, None] * inv[None, :]  # (seq, half)
    c, s = np.cos(theta), np.sin(theta)
    y = x.copy()
    if interleaved:
        a, b = x[..., 0::2], x[..., 1::2]
        y[..., 0::2] = a * c - b * s
        y[..., 1::2] = b * c + a * s
    else:
        a, b = x[..., :half], x[..., half:]
        y[..., :half] = a * c - b * s
        y[..., half:] = b * c + a * s
    return y


def gelu(v, approx):
    if approx == "tanh":
        return 0.5 * v * (1 + np.tanh(math.sqrt(2 / math.pi) * (v + 0.044715 * v ** 3)))
    erf = np.vectorize(math.erf)
    return 0.5 * v * (1 + erf(v / math.sqrt(2)))


def example(out):
    rng = np.random.default_rng(4)
    f = lambda n, s: helper.make_tensor_value_info(n, TensorProto.FLOAT, s)
    ops = (("", 17), ("qkv.example", 1))
    # 1: positions given, halves, tanh GELU
    x = rng.standard_normal((2, 5, 8)).astype(np.float32)
    pos = np.array([3, 4, 5, 6, 7], dtype=np.int64)
    bias = rng.standard_normal(8).astype(np.float32)
    y = gelu(rotary(x, pos, 100.0, 0) + bias, "tanh").astype(np.float32)
    nodes = [
        helper.make_node("Rotary", ["x", "pos"], ["r"], name="rope", domain="qkv.example",
                         base=100.0, interleaved=0),
        helper.make_node("BiasGelu", ["r", "bias"], ["y"], name="act", domain="qkv.example",
                         approximate="tanh"),
    ]
    save_model(out, "example", nodes, [f("x", ["batch", 5, 8])], [f("y", ["batch", 5, 8])],
               [numpy_helper.from_array(pos, "pos"), numpy_helper.from_array(bias, "bias")],
               ops, [x], [y])
    # 2: interleaved, default positions and base, erf GELU
    x = rng.standard_normal((3, 4, 6)).astype(np.float32)
    bias = rng.standard_normal(6).astype(np.float32)
    y = gelu(rotary(x, np.arange(4), 10000.0, 1) + bias, "none").astype(np.float32)
    nodes = [
        helper.make_node("Rotary", ["x"], ["r"], name="rope", domain="qkv.example",
                         interleaved=1),
        helper.make_node("BiasGelu", ["r", "bias"], ["y"], name="act", domain="qkv.example"),
    ]
    save_model(out, "example_inter", nodes, [f("x", [3, 4, 6])], [f("y", [3, 4, 6])],
               [numpy_helper.from_array(bias, "bias")], ops, [x], [y])


def fixtures(out):
    f = lambda n, s: helper.make_tensor_value_info(n, TensorProto.FLOAT, s)
    test = (("", 17), ("qkv.test", 1))
    x = np.array([[1, -2, 3], [-4, 5, 0.5]], dtype=np.float32)
    save_model(out, "scale",
               [helper.make_node("Scale", ["x"], ["y"], name="scale", domain="qkv.test",
                                 factor=3.5)],
               [f("x", [2, 3])], [f("y", [2, 3])], (), test, [x], [x * 3.5])
    x = np.array([1, -2, 3, -4, 5, 0], dtype=np.float32)
    save_model(out, "positives",
               [helper.make_node("Positives", ["x"], ["p"], name="positives",
                                 domain="qkv.test"),
                helper.make_node("Scale", ["p"], ["y"], name="double", domain="qkv.test")],
               [f("x", [6])], [f("y", None)], (), test, [x],
               [np.array([2, 6, 10], dtype=np.float32)])
    x = np.array([1, 2, 3], dtype=np.float32)
    save_model(out, "forgetful",
               [helper.make_node("Forgetful", ["x"], ["y"], name="forget", domain="qkv.test")],
               [f("x", [3])], [f("y", None)], (), test, [x], [])
    x = np.array([1, 2, 3, 4], dtype=np.float32)
    save_model(out, "fail",
               [helper.make_node("FailIfNegative", ["x"], ["y"], name="guard",
                                 domain="qkv.test")],
               [f("x", [4])], [f("y", [4])], (), test, [x], [x])
    rng = np.random.default_rng(5)
    a = rng.standard_normal((3, 4)).astype(np.float32)
    b = rng.standard_normal((4, 5)).astype(np.float32)
    save_model(out, "host_gemm",
               [helper.make_node("HostGemm", ["a", "b"], ["y"], name="hg", domain="qkv.test")],
               [f("a", [3, 4]), f("b", [4, 5])], [f("y", [3, 5])], (), test, [a, b],
               [(a.astype(np.float64) @ b).astype(np.float32)])
    xf = np.array([[-1, 2, -3], [4, -5, 6]], dtype=np.float32)
    xd = xf.astype(np.float64)
    save_model(out, "relu_mixed",
               [helper.make_node("Relu", ["xf"], ["yf"], name="relu_float"),
                helper.make_node("Relu", ["xd"], ["yd"], name="relu_double")],
               [f("xf", [2, 3]), helper.make_tensor_value_info("xd", TensorProto.DOUBLE, [2, 3])],
               [f("yf", [2, 3]), helper.make_tensor_value_info("yd", TensorProto.DOUBLE, [2, 3])],
               (), (("", 14),), [xf, xd], [np.maximum(xf, 0), np.maximum(xd, 0)])
    x = np.array([1, -2, 3], dtype=np.float32)
    save_model(out, "neg",
               [helper.make_node("Neg", ["x"], ["y"], name="neg", domain="qkv.minor")],
               [f("x", [3])], [f("y", [3])], (), (("", 17), ("qkv.minor", 1)), [x], [-x])
    plan = (("", 17), ("qkv.plan", 1))
    save_model(out, "plan_once",
               [helper.make_node("PlanOnce", ["x"], ["y"], name="once", domain="qkv.plan")],
               [f("x", ["n"])], [f("y", [2])], (), plan)
    save_model(out, "plan_alloc",
               [helper.make_node("AllocInCompute", ["x"], ["y"], name="alloc",
                                 domain="qkv.plan")],
               [f("x", [3])], [f("y", [3])], (), plan)
    a = rng.standard_normal((4, 6)).astype(np.float32)
    w = rng.standard_normal((6, 3)).astype(np.float32)
    ai = rng.integers(-5, 5, (2, 3)).astype(np.int32)
    wi = rng.integers(-5, 5, (3, 2)).astype(np.int32)
    save_model(out, "matmul_mixed",
               [helper.make_node("MatMul", ["a", "w"], ["y"], name="mm_float"),
                helper.make_node("MatMul", ["ai", "wi"], ["yi"], name="mm_int")],
               [f("a", [4, 6]), helper.make_tensor_value_info("ai", TensorProto.INT32, [2, 3])],
               [f("y", [4, 3]), helper.make_tensor_value_info("yi", TensorProto.INT32, [2, 2])],
               [numpy_helper.from_array(w, "w"), numpy_helper.from_array(wi, "wi")],
               (("", 13),), [a, ai], [(a.astype(np.float64) @ w).astype(np.float32), ai @ wi])


def gemm_ops(out):
    f = lambda n, s: helper.make_tensor_value_info(n, TensorProto.FLOAT, s)
    nodes = [
        helper.make_node("MatMul", ["a", "w"], ["mm"], name="matmul"),
        helper.make_node("Gemm", ["x", "wt", "c"], ["gm"], name="gemm", transB=1, alpha=0.5,
                         beta=2.0),
        helper.make_node("Attention", ["q", "k", "v"], ["att"], name="attention",
                         is_causal=1),
    ]
    save_model(out, "gemm_ops", nodes,
               [f("a", ["B", "M", "K"]), f("w", ["K", "N"]), f("x", ["M", "K"]),
                f("wt", ["N", "K"]), f("c", ["N"]), f("q", ["B", "H", "S", "D"]),
                f("k", ["B", "H", "L", "D"]), f("v", ["B", "H", "L", "D"])],
               [f("mm", ["B", "M", "N"]), f("gm", ["M", "N"]), f("att", ["B", "H", "S", "D"])],
               (), (("", 23),))


def main():
    out = os.path.join(sys.argv[1], "plugin")
    os.makedirs(out, exist_ok=True)
    example(out)
    fixtures(out)
    gemm_ops(out)


if __name__ == "__main__":
    main()
