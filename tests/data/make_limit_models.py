#!/usr/bin/env python3
"""Writes the models of tests/test_memory_limit.c into OUTDIR/limit/.

Usage: make_limit_models.py OUTDIR   (Debian's /usr/bin/python3: onnx, numpy)

  range.onnx       n (int64 scalar) -> Range(0, n, 1) -> y: a data-dependent size
  const_shape.onnx shape (int64 [2]) -> ConstantOfShape -> y (float32)
  expand.onnx      x (float32 [1]), shape (int64 [2]) -> Expand -> y
  tile.onnx        x (float32 [2]), reps (int64 [1]) -> Tile -> y
  chain.onnx       x (float32 [batch, 1024]) -> Relu(x) + Neg(x) -> y: two values live at once
  weight.onnx      x (float32 [batch, 256]) -> MatMul W (256, 256) -> y: W is packed
"""
import os
import sys

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

OPSET = [helper.make_opsetid("", 17)]
f = helper.make_tensor_value_info


def save(graph, out, name):
    onnx.save(helper.make_model(graph, opset_imports=OPSET, producer_name="qkv-tests"),
              os.path.join(out, name))


def main():
    out = os.path.join(sys.argv[1], "limit")
    os.makedirs(out, exist_ok=True)
    zero = numpy_helper.from_array(np.array(0, np.int64), "zero")
    one = numpy_helper.from_array(np.array(1, np.int64), "one")
    save(helper.make_graph([helper.make_node("Range", ["zero", "n", "one"], ["y"], name="range")],
                           "range", [f("n", TensorProto.INT64, [])],
                           [f("y", TensorProto.INT64, None)], [zero, one]), out, "range.onnx")
    save(helper.make_graph([helper.make_node("ConstantOfShape", ["shape"], ["y"], name="fill")],
                           "const_shape", [f("shape", TensorProto.INT64, [2])],
                           [f("y", TensorProto.FLOAT, None)]), out, "const_shape.onnx")
    save(helper.make_graph([helper.make_node("Expand", ["x", "shape"], ["y"], name="expand")],
                           "expand", [f("x", TensorProto.FLOAT, [1]),
                                      f("shape", TensorProto.INT64, [2])],
                           [f("y", TensorProto.FLOAT, None)]), out, "expand.onnx")
    save(helper.make_graph([helper.make_node("Tile", ["x", "reps"], ["y"], name="tile")],
                           "tile", [f("x", TensorProto.FLOAT, [2]),
                                    f("reps", TensorProto.INT64, [1])],
                           [f("y", TensorProto.FLOAT, None)]), out, "tile.onnx")
    save(helper.make_graph([helper.make_node("Relu", ["x"], ["h"], name="relu"),
                            helper.make_node("Neg", ["x"], ["g"], name="neg"),
                            helper.make_node("Add", ["h", "g"], ["y"], name="add")],
                           "chain", [f("x", TensorProto.FLOAT, ["batch", 1024])],
                           [f("y", TensorProto.FLOAT, ["batch", 1024])]), out, "chain.onnx")
    w = np.random.default_rng(3).standard_normal((256, 256)).astype(np.float32)
    save(helper.make_graph([helper.make_node("MatMul", ["x", "w"], ["y"], name="proj")],
                           "weight", [f("x", TensorProto.FLOAT, ["batch", 256])],
                           [f("y", TensorProto.FLOAT, ["batch", 256])],
                           [numpy_helper.from_array(w, "w")]), out, "weight.onnx")


if __name__ == "__main__":
    main()
