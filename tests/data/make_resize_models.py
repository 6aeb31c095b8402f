#!/usr/bin/env python3
"""Writes the Resize models tests/test_resize.c runs through a session.

Usage: make_resize_models.py OUTDIR   (Debian's /usr/bin/python3: onnx, numpy)

OUTDIR/resize/crop_static.onnx: Resize-13 cubic tf_crop_and_resize with the
  sizes an initializer (the output shape is known when planning) and the roi
  a graph input (known only when running): X float [n, 2, 6, 7], roi [8].
OUTDIR/resize/scales_runtime.onnx: Resize-13 linear with the scales a graph
  input, so the output shape is known only when running: X float [1, 1, 3, 4],
  scales float [4].
The expected outputs are computed by the test's own reference.
"""
import os
import sys

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper


def save(model, path):
    model.ir_version = 8
    onnx.checker.check_model(model)
    onnx.save(model, path)


def main(out):
    d = os.path.join(out, "resize")
    os.makedirs(d, exist_ok=True)
    crop = helper.make_node("Resize", ["X", "roi", "", "sizes"], ["Y"], name="crop",
                            mode="cubic", coordinate_transformation_mode="tf_crop_and_resize",
                            extrapolation_value=-1.0)
    graph = helper.make_graph(
        [crop], "crop_static",
        [helper.make_tensor_value_info("X", TensorProto.FLOAT, ["n", 2, 6, 7]),
         helper.make_tensor_value_info("roi", TensorProto.FLOAT, [8])],
        [helper.make_tensor_value_info("Y", TensorProto.FLOAT, [None, None, None, None])],
        [numpy_helper.from_array(np.array([1, 2, 5, 9], np.int64), "sizes")])
    save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)]),
         os.path.join(d, "crop_static.onnx"))
    up = helper.make_node("Resize", ["X", "", "scales"], ["Y"], name="up", mode="linear")
    graph = helper.make_graph(
        [up], "scales_runtime",
        [helper.make_tensor_value_info("X", TensorProto.FLOAT, [1, 1, 3, 4]),
         helper.make_tensor_value_info("scales", TensorProto.FLOAT, [4])],
        [helper.make_tensor_value_info("Y", TensorProto.FLOAT, [None, None, None, None])])
    save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)]),
         os.path.join(d, "scales_runtime.onnx"))


if __name__ == "__main__":
    if len(sys.argv) != 2:
        sys.exit(__doc__)
    main(sys.argv[1])
