#!/usr/bin/env python3
"""Writes the model tests/test_strings.c runs: string tensors through a graph.

Usage: make_string_models.py OUTDIR   (Debian's /usr/bin/python3: onnx)

OUTDIR/strings/pipeline.onnx:
  x (float [N]) -> Cast(to=STRING) -> s                  (sized at plan time: the arena)
  s -> StringNormalizer(UPPER, stopwords ["0.5"]) -> t   (size from the values: dynamic)
  words (string [C]) -> StringNormalizer(LOWER) -> w -> TfIdfVectorizer(TF) -> counts
Outputs s, t, counts. The test computes the expected values itself.
"""
import os
import sys

import onnx
from onnx import TensorProto, helper


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


def main():
    out = os.path.join(sys.argv[1], "strings")
    os.makedirs(out, exist_ok=True)
    pipeline(out)


if __name__ == "__main__":
    main()
