#!/usr/bin/env python3
"""Writes the models tests/test_misc_models.c runs: the data-dependent and
random single operators (ops/unique.c, ops/nms.c, ops/random.c) inside a
session, where the planner runs them as dynamic nodes.

Usage: make_misc_models.py OUTDIR   (Debian's /usr/bin/python3: onnx)

OUTDIR/misc/unique_y_counts.onnx: Y, counts = Unique(x) with indices and
  inverse_indices omitted, sorted=0; x float [n].
OUTDIR/misc/unique_counts_relu.onnx: counts only feeds a Cast and Relu (the
  count is unknown until the run; what follows is dynamic too).
OUTDIR/misc/nms.onnx: NonMaxSuppression of runtime inputs boxes [1, n, 4],
  scores [1, 1, n], max_output_boxes_per_class 3, iou 0.5 (constants).
OUTDIR/misc/random.onnx: outputs seeded = RandomUniform(shape [16], seed 7)
  and unseeded = RandomNormalLike(x) + x, x float [16].
"""
import os
import sys

import numpy as np
import onnx
from onnx import TensorProto as TP, helper as h, numpy_helper as nh


def save(out, name, nodes, ins, outs, inits=(), opset=15):
    g = h.make_graph(nodes, name, ins, outs, list(inits))
    m = h.make_model(g, opset_imports=[h.make_opsetid("", opset)])
    m.ir_version = 8
    onnx.save(m, os.path.join(out, name + ".onnx"))


def main():
    out = os.path.join(sys.argv[1], "misc")
    os.makedirs(out, exist_ok=True)
    fx = h.make_tensor_value_info("x", TP.FLOAT, ["n"])
    save(out, "unique_y_counts",
         [h.make_node("Unique", ["x"], ["y", "", "", "counts"], name="uniq", sorted=0)],
         [fx], [h.make_tensor_value_info("y", TP.FLOAT, None),
                h.make_tensor_value_info("counts", TP.INT64, None)])
    save(out, "unique_counts_relu",
         [h.make_node("Unique", ["x"], ["y", "", "", "counts"], name="uniq"),
          h.make_node("Cast", ["counts"], ["cf"], name="cast", to=TP.FLOAT),
          h.make_node("Relu", ["cf"], ["r"], name="relu")],
         [fx], [h.make_tensor_value_info("r", TP.FLOAT, None)])
    save(out, "nms",
         [h.make_node("NonMaxSuppression", ["boxes", "scores", "max", "iou"], ["sel"],
                      name="nms")],
         [h.make_tensor_value_info("boxes", TP.FLOAT, [1, "n", 4]),
          h.make_tensor_value_info("scores", TP.FLOAT, [1, 1, "n"])],
         [h.make_tensor_value_info("sel", TP.INT64, [None, 3])],
         [nh.from_array(np.array([3], np.int64), "max"),
          nh.from_array(np.array([0.5], np.float32), "iou")], opset=11)
    save(out, "random",
         [h.make_node("RandomUniform", [], ["seeded"], name="ru", shape=[16], seed=7.0),
          h.make_node("RandomNormalLike", ["x"], ["r"], name="rn"),
          h.make_node("Add", ["r", "x"], ["unseeded"], name="add")],
         [h.make_tensor_value_info("x", TP.FLOAT, [16])],
         [h.make_tensor_value_info("seeded", TP.FLOAT, None),
          h.make_tensor_value_info("unseeded", TP.FLOAT, None)])


if __name__ == "__main__":
    main()
