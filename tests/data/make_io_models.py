#!/usr/bin/env python3
"""Writes the models the I/O binding tests run (tests/test_io_binding.c).

Usage: make_io_models.py OUTDIR   (Debian's /usr/bin/python3: onnx, numpy)

OUTDIR/io/kv_decoder.onnx: one decode step of single-head attention with a
KV cache, as exporters write it:
    x [1, 1, D], past_k / past_v [1, past, D]
    q, k, v = x @ Wq, x @ Wk, x @ Wv
    present_k = Concat(past_k, k, axis=1)      [1, past + 1, D]
    present_v = Concat(past_v, v, axis=1)
    y = Softmax(q @ present_k^T / sqrt(D)) @ present_v   [1, 1, D]
  outputs y, present_k, present_v.
OUTDIR/io/log_echo.onnx: y = qkv.log.Echo(x), x float [n] (the fx_log
  fixture plugin's op, which logs through host->log).
"""
import os
import sys

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

D = 8


def kv_decoder(out):
    rng = np.random.default_rng(7)
    w = {n: (rng.standard_normal((D, D)) / np.sqrt(D)).astype(np.float32)
         for n in ("wq", "wk", "wv")}
    scale = np.array(1.0 / np.sqrt(D), dtype=np.float32)
    nodes = [
        helper.make_node("MatMul", ["x", "wq"], ["q"], name="q_proj"),
        helper.make_node("MatMul", ["x", "wk"], ["k"], name="k_proj"),
        helper.make_node("MatMul", ["x", "wv"], ["v"], name="v_proj"),
        helper.make_node("Concat", ["past_k", "k"], ["present_k"], name="cat_k", axis=1),
        helper.make_node("Concat", ["past_v", "v"], ["present_v"], name="cat_v", axis=1),
        helper.make_node("Transpose", ["present_k"], ["kt"], name="kt", perm=[0, 2, 1]),
        helper.make_node("MatMul", ["q", "kt"], ["s0"], name="scores"),
        helper.make_node("Mul", ["s0", "scale"], ["s1"], name="scale_mul"),
        helper.make_node("Softmax", ["s1"], ["p"], name="softmax", axis=-1),
        helper.make_node("MatMul", ["p", "present_v"], ["y"], name="context"),
    ]
    f = helper.make_tensor_value_info
    graph = helper.make_graph(
        nodes, "kv_decoder",
        [f("x", TensorProto.FLOAT, [1, 1, D]),
         f("past_k", TensorProto.FLOAT, [1, "past", D]),
         f("past_v", TensorProto.FLOAT, [1, "past", D])],
        [f("y", TensorProto.FLOAT, [1, 1, D]),
         f("present_k", TensorProto.FLOAT, [1, "total", D]),
         f("present_v", TensorProto.FLOAT, [1, "total", D])],
        [numpy_helper.from_array(w["wq"], "wq"), numpy_helper.from_array(w["wk"], "wk"),
         numpy_helper.from_array(w["wv"], "wv"), numpy_helper.from_array(scale, "scale")])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)],
                              producer_name="qkv-tests")
    onnx.checker.check_model(model)
    onnx.save(model, os.path.join(out, "kv_decoder.onnx"))


def log_echo(out):
    node = helper.make_node("Echo", ["x"], ["y"], name="echo", domain="qkv.log")
    graph = helper.make_graph(
        [node], "log_echo",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["n"])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["n"])])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17),
                                                    helper.make_opsetid("qkv.log", 1)],
                              producer_name="qkv-tests")
    onnx.save(model, os.path.join(out, "log_echo.onnx"))


def main():
    out = os.path.join(sys.argv[1], "io")
    os.makedirs(out, exist_ok=True)
    kv_decoder(out)
    log_echo(out)


if __name__ == "__main__":
    main()
