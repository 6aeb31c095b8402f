#!/usr/bin/env python3
"""Writes the SequenceMap models tests/test_sequence_map.c runs, with their
inputs and the outputs numpy computes from them.

Usage: make_sequence_map_models.py OUTDIR   (Debian's /usr/bin/python3: onnx, numpy)

Models go to OUTDIR/sequence_map/<name>.onnx. For run case <case> of a
model, input j goes to <name>_<case>_in<j>.pb (a tensor) or to
<name>_<case>_in<j>_<i>.pb, one file per element i (a sequence); expected
output k likewise to <name>_<case>_out<k>_<i>.pb (every output is a
sequence). All are TensorProto files.
"""
import os
import sys

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

F = TensorProto.FLOAT
I64 = TensorProto.INT64


def seq_info(name, elem):
    return helper.make_tensor_sequence_value_info(name, elem, None)


def tensor_info(name, elem, shape=None):
    return helper.make_tensor_value_info(name, elem, shape)


def save(out, name, graph):
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)],
                              producer_name="qkv-tests")
    onnx.save(model, os.path.join(out, f"{name}.onnx"))


def save_tensor(path, array):
    with open(path, "wb") as f:
        f.write(numpy_helper.from_array(np.asarray(array)).SerializeToString())


def write_case(out, name, case, ins, outs):
    """ins: tensors or lists of tensors (sequences); outs: lists of tensors."""
    for j, v in enumerate(ins):
        base = os.path.join(out, f"{name}_{case}_in{j}")
        if isinstance(v, list):
            for i, e in enumerate(v):
                save_tensor(f"{base}_{i}.pb", e)
        else:
            save_tensor(base + ".pb", v)
    for k, seq in enumerate(outs):
        for i, e in enumerate(seq):
            save_tensor(os.path.join(out, f"{name}_{case}_out{k}_{i}.pb"), e)


def rng_floats(rng, shape):
    return rng.uniform(-2.0, 2.0, shape).astype(np.float32)


def map_shapes(out, rng):
    """One sequence of elements of different ranks and shapes; the body
    makes two outputs of different types: 2x+1 and the element's shape."""
    body = helper.make_graph(
        [helper.make_node("Constant", [], ["two"], value=numpy_helper.from_array(
            np.array(2.0, np.float32))),
         helper.make_node("Constant", [], ["one"], value=numpy_helper.from_array(
             np.array(1.0, np.float32))),
         helper.make_node("Mul", ["x", "two"], ["x2"]),
         helper.make_node("Add", ["x2", "one"], ["y"]),
         helper.make_node("Shape", ["x"], ["shape"])],
        "body", [tensor_info("x", F)], [tensor_info("y", F), tensor_info("shape", I64)])
    graph = helper.make_graph(
        [helper.make_node("SequenceMap", ["xs"], ["ys", "shapes"], name="map_shapes",
                          body=body)],
        "map_shapes", [seq_info("xs", F)], [seq_info("ys", F), seq_info("shapes", I64)])
    save(out, "map_shapes", graph)
    cases = {
        "mixed": [(2, 3), (4,), (1, 1, 2), (2, 3), (0, 3)],
        "one": [(5,)],
        "empty": [],
    }
    for case, shapes in cases.items():
        xs = [rng_floats(rng, s) for s in shapes]
        ys = [x * np.float32(2) + np.float32(1) for x in xs]
        write_case(out, "map_shapes", case, [xs],
                   [ys, [np.array(x.shape, np.int64) for x in xs]])


def map_mixed(out, rng):
    """Two sequences and a tensor in, and a value the body reads from the
    main graph: out0 = a + b * t, out1 = a * scale."""
    body = helper.make_graph(
        [helper.make_node("Mul", ["b", "t"], ["bt"]),
         helper.make_node("Add", ["a", "bt"], ["sum"]),
         helper.make_node("Mul", ["a", "scale"], ["scaled"])],
        "body", [tensor_info("a", F), tensor_info("b", F), tensor_info("t", F, [3])],
        [tensor_info("sum", F), tensor_info("scaled", F)])
    graph = helper.make_graph(
        [helper.make_node("SequenceMap", ["as", "bs", "t"], ["sums", "scaled_as"],
                          name="map_mixed", body=body)],
        "map_mixed",
        [seq_info("as", F), seq_info("bs", F), tensor_info("t", F, [3]),
         tensor_info("scale", F, [])],
        [seq_info("sums", F), seq_info("scaled_as", F)])
    save(out, "map_mixed", graph)
    for case, rows in (("a", [2, 1, 4]), ("b", [3, 3])):
        a = [rng_floats(rng, (r, 3)) for r in rows]
        b = [rng_floats(rng, (r, 3)) for r in rows]
        t = rng_floats(rng, (3,))
        scale = np.array(rng.uniform(-2.0, 2.0), np.float32)
        write_case(out, "map_mixed", case, [a, b, t, scale],
                   [[a[i] + b[i] * t for i in range(len(rows))],
                    [a[i] * scale for i in range(len(rows))]])


def bad_models(out):
    """Models refused at session creation, each naming its node."""
    ident = helper.make_graph([helper.make_node("Identity", ["x"], ["y"])], "body",
                              [tensor_info("x", F)], [tensor_info("y", F)])
    # two node inputs, one body input
    graph = helper.make_graph(
        [helper.make_node("SequenceMap", ["xs", "t"], ["ys"], name="map_count", body=ident)],
        "bad_count", [seq_info("xs", F), tensor_info("t", F, [2])], [seq_info("ys", F)])
    save(out, "bad_count", graph)
    # input 0 a tensor
    graph = helper.make_graph(
        [helper.make_node("SequenceMap", ["x"], ["ys"], name="map_tensor", body=ident)],
        "bad_tensor_input", [tensor_info("x", F, [2])], [seq_info("ys", F)])
    save(out, "bad_tensor_input", graph)
    # int64 elements into a float body input
    graph = helper.make_graph(
        [helper.make_node("SequenceMap", ["xs"], ["ys"], name="map_int", body=ident)],
        "bad_elem_type", [seq_info("xs", I64)], [seq_info("ys", F)])
    save(out, "bad_elem_type", graph)
    # the body reads a sequence of the main graph
    reads = helper.make_graph(
        [helper.make_node("SequenceLength", ["xs"], ["n"]),
         helper.make_node("Cast", ["n"], ["nf"], to=F),
         helper.make_node("Add", ["x", "nf"], ["y"])],
        "body", [tensor_info("x", F)], [tensor_info("y", F)])
    graph = helper.make_graph(
        [helper.make_node("SequenceMap", ["xs"], ["ys"], name="map_outer_seq", body=reads)],
        "bad_outer_sequence", [seq_info("xs", F)], [seq_info("ys", F)])
    save(out, "bad_outer_sequence", graph)


def main():
    if len(sys.argv) != 2:
        sys.exit(__doc__)
    out = os.path.join(sys.argv[1], "sequence_map")
    os.makedirs(out, exist_ok=True)
    rng = np.random.default_rng(17)
    map_shapes(out, rng)
    map_mixed(out, rng)
    bad_models(out)


if __name__ == "__main__":
    main()
