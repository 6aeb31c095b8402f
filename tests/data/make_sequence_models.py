#!/usr/bin/env python3
"""Writes the sequence and optional models tests/test_sequence.c runs, with
reference outputs computed here with numpy.

Usage: make_sequence_models.py OUTDIR   (Debian's /usr/bin/python3: onnx, numpy)

Models go to OUTDIR/sequence/<name>.onnx. The inputs are fixed small arrays
(the C test builds the same ones: see INPUTS below); each expected tensor
goes to OUTDIR/sequence/<name>_<case>_out<k>.pb, and element i of an
expected sequence to <name>_<case>_out<k>_<i>.pb (TensorProto files).
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


def opt_info(name, elem, shape=None):
    return helper.make_value_info(
        name, helper.make_optional_type_proto(helper.make_tensor_type_proto(elem, shape)))


def opt_seq_info(name, elem):
    return helper.make_value_info(
        name, helper.make_optional_type_proto(
            helper.make_sequence_type_proto(helper.make_tensor_type_proto(elem, None))))


def save(out, name, graph, opset=18):
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)],
                              producer_name="qkv-tests")
    onnx.save(model, os.path.join(out, f"{name}.onnx"))


def save_tensor(path, array):
    with open(path, "wb") as f:
        f.write(numpy_helper.from_array(np.asarray(array)).SerializeToString())


def expect(out, name, case, k, value):
    """A tensor, or a list of tensors (a sequence)."""
    base = os.path.join(out, f"{name}_{case}_out{k}")
    if isinstance(value, list):
        for i, v in enumerate(value):
            save_tensor(f"{base}_{i}.pb", v)
    else:
        save_tensor(base + ".pb", value)


# the inputs the C test passes (same values)
X43 = np.arange(12, dtype=np.float32).reshape(4, 3) * 0.5 - 2.0   # x: [4, 3]
T23 = np.array([[10, 11, 12], [13, 14, 15]], dtype=np.float32)     # t: [2, 3]
X26 = np.arange(12, dtype=np.float32).reshape(2, 6) - 3.0          # [2, 6]
V3 = np.array([7, 8, 9], dtype=np.int64)


def seq_ops(out):
    """SplitToSequence, SequenceErase, SequenceInsert, SequenceLength, SequenceAt,
    ConcatFromSequence over x [4,3], t [2,3] and a position p."""
    nodes = [
        helper.make_node("SplitToSequence", ["x"], ["s1"], name="split", axis=0),
        helper.make_node("SequenceErase", ["s1", "p"], ["s2"], name="erase"),
        helper.make_node("Constant", [], ["zero"], name="zero",
                         value=numpy_helper.from_array(np.array(0, np.int64))),
        helper.make_node("Constant", [], ["last"], name="last_pos",
                         value=numpy_helper.from_array(np.array(-1, np.int32))),
        helper.make_node("SequenceInsert", ["s2", "t", "zero"], ["s4"], name="insert"),
        helper.make_node("SequenceLength", ["s4"], ["len"], name="length"),
        helper.make_node("SequenceAt", ["s4", "last"], ["at"], name="at"),
        helper.make_node("ConcatFromSequence", ["s4"], ["cat"], name="concat", axis=0),
        helper.make_node("Relu", ["at"], ["at_relu"], name="relu_after_at"),
    ]
    graph = helper.make_graph(
        nodes, "seq_ops",
        [helper.make_tensor_value_info("x", F, [4, 3]),
         helper.make_tensor_value_info("t", F, [2, 3]),
         helper.make_tensor_value_info("p", I64, [])],
        [seq_info("s4", F), helper.make_tensor_value_info("len", I64, []),
         helper.make_tensor_value_info("at", F, None),
         helper.make_tensor_value_info("cat", F, None),
         helper.make_tensor_value_info("at_relu", F, None)])
    save(out, "seq_ops", graph, opset=17)
    for case, p in (("p1", 1), ("pm4", -4)):
        s1 = [X43[i:i + 1] for i in range(4)]
        del s1[p]
        s4 = [T23] + s1
        expect(out, "seq_ops", case, 0, s4)
        expect(out, "seq_ops", case, 1, np.array(len(s4), np.int64))
        expect(out, "seq_ops", case, 2, s4[-1])
        expect(out, "seq_ops", case, 3, np.concatenate(s4, axis=0))
        expect(out, "seq_ops", case, 4, np.maximum(s4[-1], 0))


def seq_split(out):
    """SplitToSequence with a scalar split, sizes, keepdims 0; ConcatFromSequence new_axis."""
    nodes = [
        helper.make_node("Constant", [], ["three"], name="three",
                         value=numpy_helper.from_array(np.array(3, np.int64))),
        helper.make_node("Constant", [], ["sizes"], name="sizes",
                         value=numpy_helper.from_array(np.array([2, 4], np.int64))),
        helper.make_node("SplitToSequence", ["x", "three"], ["halves"], name="split_scalar",
                         axis=1),
        helper.make_node("ConcatFromSequence", ["halves"], ["stacked"], name="stack", axis=0,
                         new_axis=1),
        helper.make_node("ConcatFromSequence", ["halves"], ["stacked_last"], name="stack_last",
                         axis=-1, new_axis=1),
        helper.make_node("SplitToSequence", ["x", "sizes"], ["parts"], name="split_sizes",
                         axis=-1),
        helper.make_node("SplitToSequence", ["x"], ["rows"], name="split_rows", axis=0,
                         keepdims=0),
    ]
    graph = helper.make_graph(
        nodes, "seq_split", [helper.make_tensor_value_info("x", F, [2, 6])],
        [helper.make_tensor_value_info("stacked", F, None),
         helper.make_tensor_value_info("stacked_last", F, None),
         seq_info("parts", F), seq_info("rows", F)])
    save(out, "seq_split", graph, opset=17)
    halves = [X26[:, 0:3], X26[:, 3:6]]
    expect(out, "seq_split", "a", 0, np.stack(halves, axis=0))
    expect(out, "seq_split", "a", 1, np.stack(halves, axis=-1))
    expect(out, "seq_split", "a", 2, [X26[:, 0:2], X26[:, 2:6]])
    expect(out, "seq_split", "a", 3, [X26[0], X26[1]])


def seq_split_limits(out):
    """SplitToSequence of any X by any split (seq_split_by), without split
    and keepdims 0 (seq_split_rows), and by a split declared int4
    (seq_split_int4, type 22: onnx 1.12 has no name for it): the refusals
    and the empty pieces tests/test_sequence.c checks."""
    by = helper.make_node("SplitToSequence", ["x", "split"], ["parts"], name="split_by", axis=0)
    save(out, "seq_split_by", helper.make_graph(
        [by], "seq_split_by", [helper.make_tensor_value_info("x", F, None),
                               helper.make_tensor_value_info("split", I64, None)],
        [seq_info("parts", F)]), opset=17)
    rows = helper.make_node("SplitToSequence", ["x"], ["rows"], name="split_rows", axis=0,
                            keepdims=0)
    save(out, "seq_split_rows", helper.make_graph(
        [rows], "seq_split_rows", [helper.make_tensor_value_info("x", F, None)],
        [seq_info("rows", F)]), opset=17)
    by4 = helper.make_node("SplitToSequence", ["x", "split"], ["parts"], name="split_int4", axis=0)
    save(out, "seq_split_int4", helper.make_graph(
        [by4], "seq_split_int4", [helper.make_tensor_value_info("x", F, [4, 2]),
                                  helper.make_tensor_value_info("split", 22, [])],
        [seq_info("parts", F)]), opset=17)


def seq_build(out):
    """SequenceEmpty, SequenceConstruct, SequenceInsert at the back, lengths."""
    nodes = [
        helper.make_node("SequenceEmpty", [], ["e"], name="empty", dtype=I64),
        helper.make_node("SequenceLength", ["e"], ["len0"], name="len_empty"),
        helper.make_node("SequenceInsert", ["e", "v"], ["s"], name="insert_back"),
        helper.make_node("SequenceConstruct", ["v", "v", "w"], ["c"], name="construct"),
        helper.make_node("SequenceLength", ["c"], ["len3"], name="len_construct"),
    ]
    graph = helper.make_graph(
        nodes, "seq_build",
        [helper.make_tensor_value_info("v", I64, [3]),
         helper.make_tensor_value_info("w", I64, [1])],
        [seq_info("e", I64), helper.make_tensor_value_info("len0", I64, []), seq_info("s", I64),
         seq_info("c", I64), helper.make_tensor_value_info("len3", I64, [])])
    save(out, "seq_build", graph, opset=17)
    w = np.array([-5], np.int64)
    expect(out, "seq_build", "a", 0, [])
    expect(out, "seq_build", "a", 1, np.array(0, np.int64))
    expect(out, "seq_build", "a", 2, [V3])
    expect(out, "seq_build", "a", 3, [V3, V3, w])
    expect(out, "seq_build", "a", 4, np.array(3, np.int64))


def opt_ops(out):
    """Optional, OptionalHasElement (15/18 forms, omitted input), OptionalGetElement;
    an optional graph input that may be empty, passed through Identity."""
    nodes = [
        helper.make_node("OptionalHasElement", ["xo"], ["has_x"], name="has_x"),
        helper.make_node("Identity", ["xo"], ["xo_copy"], name="pass_optional"),
        helper.make_node("Optional", ["y"], ["oy"], name="wrap_y"),
        helper.make_node("OptionalGetElement", ["oy"], ["gy"], name="get_y"),
        helper.make_node("Optional", [], ["none"], name="empty_optional"),
        helper.make_node("OptionalHasElement", ["none"], ["has_none"], name="has_none"),
        helper.make_node("OptionalHasElement", [""], ["has_omitted"], name="has_omitted"),
        helper.make_node("OptionalHasElement", ["y"], ["has_tensor"], name="has_tensor"),
        helper.make_node("SequenceConstruct", ["y", "y"], ["sy"], name="seq_y"),
        helper.make_node("Optional", ["sy"], ["osy"], name="wrap_seq"),
        helper.make_node("OptionalGetElement", ["osy"], ["gsy"], name="get_seq"),
    ]
    graph = helper.make_graph(
        nodes, "opt_ops",
        [opt_info("xo", F, [3]), helper.make_tensor_value_info("y", F, [2])],
        [helper.make_tensor_value_info("has_x", TensorProto.BOOL, []),
         opt_info("xo_copy", F, [3]),
         helper.make_tensor_value_info("gy", F, [2]),
         helper.make_tensor_value_info("has_none", TensorProto.BOOL, []),
         helper.make_tensor_value_info("has_omitted", TensorProto.BOOL, []),
         helper.make_tensor_value_info("has_tensor", TensorProto.BOOL, []),
         seq_info("gsy", F), opt_seq_info("osy", F)],
        value_info=[opt_info("none", F)])
    save(out, "opt_ops", graph, opset=18)
    y = np.array([1.5, -2.5], np.float32)
    for case, has in (("full", True), ("empty", False)):
        expect(out, "opt_ops", case, 0, np.array(has))
        expect(out, "opt_ops", case, 2, y)
        expect(out, "opt_ops", case, 3, np.array(False))
        expect(out, "opt_ops", case, 4, np.array(False))
        expect(out, "opt_ops", case, 5, np.array(True))
        expect(out, "opt_ops", case, 6, [y, y])


def opt_get(out):
    """OptionalGetElement of an optional graph input (an error when it is empty),
    and OptionalHasElement in its opset 15 form."""
    nodes = [
        helper.make_node("OptionalGetElement", ["xo"], ["x"], name="get_x"),
        helper.make_node("OptionalHasElement", ["xo"], ["has"], name="has15"),
    ]
    graph = helper.make_graph(
        nodes, "opt_get", [opt_info("xo", F, [3])],
        [helper.make_tensor_value_info("x", F, [3]),
         helper.make_tensor_value_info("has", TensorProto.BOOL, [])])
    save(out, "opt_get", graph, opset=15)


def seq_io(out):
    """Sequence and optional-sequence graph inputs: Identity, SequenceAt, Insert."""
    nodes = [
        helper.make_node("Identity", ["s"], ["s_copy"], name="pass_sequence"),
        helper.make_node("Identity", ["os"], ["os_copy"], name="pass_optional_sequence"),
        helper.make_node("SequenceAt", ["s", "p"], ["at"], name="at"),
        helper.make_node("SequenceInsert", ["s", "t", "p"], ["ins"], name="insert"),
        helper.make_node("ConcatFromSequence", ["s"], ["cat"], name="concat", axis=1),
    ]
    graph = helper.make_graph(
        nodes, "seq_io",
        [seq_info("s", F), opt_seq_info("os", F), helper.make_tensor_value_info("p", I64, []),
         helper.make_tensor_value_info("t", F, None)],
        [seq_info("s_copy", F), opt_seq_info("os_copy", F),
         helper.make_tensor_value_info("at", F, None), seq_info("ins", F),
         helper.make_tensor_value_info("cat", F, None)])
    save(out, "seq_io", graph, opset=17)


def seq_insert(out):
    """SequenceInsert alone, its position an input (for the range error)."""
    graph = helper.make_graph(
        [helper.make_node("SequenceInsert", ["s", "t", "p"], ["o"], name="insert")],
        "seq_insert",
        [seq_info("s", F), helper.make_tensor_value_info("t", F, None),
         helper.make_tensor_value_info("p", I64, [])],
        [seq_info("o", F)])
    save(out, "seq_insert", graph, opset=17)


def bad_models(out):
    """Models that fail at session creation, each naming its node."""
    graph = helper.make_graph(
        [helper.make_node("SequenceInsert", ["s", "t"], ["o"], name="insert_int")],
        "bad_insert_type", [seq_info("s", F), helper.make_tensor_value_info("t", I64, [2])],
        [seq_info("o", F)])
    save(out, "bad_insert_type", graph, opset=17)
    graph = helper.make_graph(
        [helper.make_node("SequenceConstruct", ["a", "b"], ["o"], name="construct_mixed")],
        "bad_construct_type",
        [helper.make_tensor_value_info("a", F, [2]), helper.make_tensor_value_info("b", I64, [2])],
        [seq_info("o", F)])
    save(out, "bad_construct_type", graph, opset=17)
    graph = helper.make_graph(
        [helper.make_node("Relu", ["s"], ["o"], name="relu_of_sequence")],
        "bad_tensor_op", [seq_info("s", F)], [helper.make_tensor_value_info("o", F, None)])
    save(out, "bad_tensor_op", graph, opset=17)


def write_pb(path, proto):
    with open(path, "wb") as f:
        f.write(proto.SerializeToString())


def suite(out):
    """Node-suite-style test directories (model.onnx, test_data_set_N/) whose
    data are SequenceProto and OptionalProto files, for `qkv test`."""
    from onnx import OptionalProto

    def seq(name, arrays):
        return numpy_helper.from_list([np.asarray(a) for a in arrays], name)

    def opt_seq(name, arrays):
        if arrays is None:
            return helper.make_optional(name, OptionalProto.UNDEFINED, None)
        return helper.make_optional(name, OptionalProto.SEQUENCE, seq(name, arrays))

    def tensor(name, a):
        return numpy_helper.from_array(np.asarray(a), name)

    base = os.path.join(out, "suite", "test_seq_io")
    os.makedirs(base, exist_ok=True)
    seq_io_model = os.path.join(out, "seq_io.onnx")
    with open(seq_io_model, "rb") as f, open(os.path.join(base, "model.onnx"), "wb") as g:
        g.write(f.read())
    a = np.array([[1, 2], [3, 4]], np.float32)
    b = np.arange(6, dtype=np.float32).reshape(2, 3) + 5
    t = np.array([[-1], [-2]], np.float32)
    for ds, (p, full) in enumerate(((1, True), (0, False))):
        d = os.path.join(base, f"test_data_set_{ds}")
        os.makedirs(d, exist_ok=True)
        s_in = [a, b]
        ins = s_in[:p] + [t] + s_in[p:]
        write_pb(os.path.join(d, "input_0.pb"), seq("s", s_in))
        write_pb(os.path.join(d, "input_1.pb"), opt_seq("os", s_in if full else None))
        write_pb(os.path.join(d, "input_2.pb"), tensor("p", np.array(p, np.int64)))
        write_pb(os.path.join(d, "input_3.pb"), tensor("t", t))
        write_pb(os.path.join(d, "output_0.pb"), seq("s_copy", s_in))
        write_pb(os.path.join(d, "output_1.pb"), opt_seq("os_copy", s_in if full else None))
        write_pb(os.path.join(d, "output_2.pb"), tensor("at", s_in[p]))
        write_pb(os.path.join(d, "output_3.pb"), seq("ins", ins))
        write_pb(os.path.join(d, "output_4.pb"), tensor("cat", np.concatenate(s_in, axis=1)))

    # a wrong expectation: the inserted sequence one element short
    bad = os.path.join(out, "suite_bad", "test_seq_io_short")
    os.makedirs(os.path.join(bad, "test_data_set_0"), exist_ok=True)
    with open(seq_io_model, "rb") as f, open(os.path.join(bad, "model.onnx"), "wb") as g:
        g.write(f.read())
    for name in os.listdir(os.path.join(base, "test_data_set_0")):
        with open(os.path.join(base, "test_data_set_0", name), "rb") as f, \
                open(os.path.join(bad, "test_data_set_0", name), "wb") as g:
            g.write(f.read())
    write_pb(os.path.join(bad, "test_data_set_0", "output_3.pb"), seq("ins", [a, t]))

    base = os.path.join(out, "suite", "test_opt_get")
    os.makedirs(base, exist_ok=True)
    with open(os.path.join(out, "opt_get.onnx"), "rb") as f, \
            open(os.path.join(base, "model.onnx"), "wb") as g:
        g.write(f.read())
    d = os.path.join(base, "test_data_set_0")
    os.makedirs(d, exist_ok=True)
    x = np.array([0.5, 1.5, -3], np.float32)
    write_pb(os.path.join(d, "input_0.pb"),
             helper.make_optional("xo", OptionalProto.TENSOR, tensor("xo", x)))
    write_pb(os.path.join(d, "output_0.pb"), tensor("x", x))
    write_pb(os.path.join(d, "output_1.pb"), tensor("has", np.array(True)))


def main():
    if len(sys.argv) != 2:
        sys.exit(__doc__)
    out = os.path.join(sys.argv[1], "sequence")
    os.makedirs(out, exist_ok=True)
    for make in (seq_ops, seq_split, seq_split_limits, seq_build, opt_ops, opt_get, seq_io, seq_insert,
                 bad_models, suite):
        make(out)


if __name__ == "__main__":
    main()
