#!/usr/bin/env python3
"""Writes the model tests/test_strings.c runs: string tensors through a graph.

Usage: make_string_models.py OUTDIR   (Debian's /usr/bin/python3: onnx, numpy)

OUTDIR/strings/pipeline.onnx:
  x (float [N]) -> Cast(to=STRING) -> s                  (sized at plan time: the arena)
  s -> StringNormalizer(UPPER, stopwords ["0.5"]) -> t   (size from the values: dynamic)
  words (string [C]) -> StringNormalizer(LOWER) -> w -> TfIdfVectorizer(TF) -> counts
Outputs s, t, counts. test_strings.c computes the expected values itself;
test_fault_sweep.c reads two data sets with numpy's outputs
(pipeline_{a,b}_{input,output}_K.pb).
"""
import os
import sys

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper


def pipeline(out):
    nodes = [
        helper.make_node("Cast", ["x"], ["s"], to=TensorProto.STRING),
        helper.make_node("StringNormalizer", ["s"], ["t"], case_change_action="UPPER",
                         stopwords=["0.5"]),
        helper.make_node("StringNormalizer", ["words"], ["w"], case_change_action="LOWER"),
        helper.make_node("TfIdfVectorizer", ["w"], ["counts"], mode="TF", min_gram_length=1,
                         max_gram_length=2, max_skip_count=0, ngram_counts=[0, 2],
                         ngram_indexes=[0, 1, 2], pool_strings=["a", "b", "a", "b"]),
    ]
    graph = helper.make_graph(
        nodes, "strings",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["n"]),
         helper.make_tensor_value_info("words", TensorProto.STRING, ["c"])],
        [helper.make_tensor_value_info("s", TensorProto.STRING, ["n"]),
         helper.make_tensor_value_info("t", TensorProto.STRING, ["k"]),
         helper.make_tensor_value_info("counts", TensorProto.FLOAT, [3])])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    onnx.checker.check_model(model)
    onnx.save(model, os.path.join(out, "pipeline.onnx"))


def save_pb(path, array):
    with open(path, "wb") as f:
        f.write(numpy_helper.from_array(array).SerializeToString())


def pipeline_data(out):
    """Two data sets of other shapes (cases a and b) with the outputs numpy
    gives: str() of each float32, upper-cased without "0.5"; the counts of
    a, b and (a b) in the lower-cased words."""
    cases = {"a": ([0.5, 1e-5, 0.25, 100.0], ["A", "b", "a", "B", "c"]),
             "b": ([0.5, 0.5], ["b", "C", "A"])}
    for name, (xs, words) in cases.items():
        x = np.array(xs, dtype=np.float32)
        s = np.array([str(v) for v in x], dtype=object)
        t = [v.upper() for v in s if v.lower() != "0.5"] or [""]
        w = [v.lower() for v in words]
        bigrams = sum(1 for i in range(len(w) - 1) if w[i] == "a" and w[i + 1] == "b")
        counts = np.array([w.count("a"), w.count("b"), bigrams], dtype=np.float32)
        save_pb(os.path.join(out, f"pipeline_{name}_input_0.pb"), x)
        save_pb(os.path.join(out, f"pipeline_{name}_input_1.pb"), np.array(words, dtype=object))
        save_pb(os.path.join(out, f"pipeline_{name}_output_0.pb"), s)
        save_pb(os.path.join(out, f"pipeline_{name}_output_1.pb"), np.array(t, dtype=object))
        save_pb(os.path.join(out, f"pipeline_{name}_output_2.pb"), counts)


def main():
    out = os.path.join(sys.argv[1], "strings")
    os.makedirs(out, exist_ok=True)
    pipeline(out)
    pipeline_data(out)


if __name__ == "__main__":
    main()
