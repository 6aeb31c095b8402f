#!/usr/bin/env python3
"""Writes the models of tests/test_control_flow_seq.c into OUTDIR/control_flow_seq/:
sequences and optionals crossing If, Loop and Scan bodies.

Usage: make_control_flow_seq_models.py OUTDIR   (Debian's /usr/bin/python3: onnx, numpy)

Inputs are fixed small arrays the C test builds too (X2, W32 below). Each
expected output of case CASE of model M goes to M_CASE_out<k>.pb (a tensor)
or, element i of a sequence, M_CASE_out<k>_<i>.pb; an empty sequence or an
empty optional has no file (the test checks the count).

  if_seq        If: then [x, 2x], else an empty sequence (SequenceEmpty)
  if_twice      If giving one sequence as both outputs (moved once, copied once)
  if_outer_seq  If reading the main graph's sequence s (SplitToSequence of w):
                then s with x appended, else s itself (a borrowed value passed on)
  if_opt        If-16: then Optional(x), else Optional(type=tensor(float)) (None)
  loop_acc      Loop(m, "", acc0, p): acc gets i*x appended each iteration,
                p (a sequence graph input) is passed through; a scan output
                SequenceLength(acc) per iteration
  loop_opt_none Loop carrying an optional sequence that starts empty (None)
                and becomes a sequence, like ONNX's test_loop16_seq_none
  loop_outer_seq a Loop whose body reads the main graph's sequence s: scan
                output SequenceAt(s, i)
  scan_outer_seq Scan-16 whose body adds SequenceAt(s, 0) to its state
  loop_unwrap   Loop carrying an optional sequence into a body input declared
                a sequence: runs with an element, fails with None
  loop_opt_tensor an optional tensor carried into a tensor (and back into the
                body's optional input)
  errors        loop_kind_mismatch, loop_body_kind, if_kind_mismatch,
                loop_seq_dtype, scan_seq_state, loop_elem_dtype (at run time),
                optional_type_map, optional_type_optional, optional_type_missing
                (Optional's TYPE_PROTO attribute)
"""
import os
import sys

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

F, I64, BOOL = TensorProto.FLOAT, TensorProto.INT64, TensorProto.BOOL
t_info = helper.make_tensor_value_info
OUT = None

# the inputs the C test passes (same values)
X2 = np.array([1.5, -2.0], np.float32)                                # x: [2]
W32 = np.arange(6, dtype=np.float32).reshape(3, 2) * 0.5 - 1.0       # w: [3, 2]


def seq_info(name, elem=F):
    return helper.make_tensor_sequence_value_info(name, elem, None)


def opt_seq_info(name, elem=F):
    return helper.make_value_info(name, helper.make_optional_type_proto(
        helper.make_sequence_type_proto(helper.make_tensor_type_proto(elem, None))))


def opt_info(name, elem=F, shape=None):
    return helper.make_value_info(name, helper.make_optional_type_proto(
        helper.make_tensor_type_proto(elem, shape)))


def save(graph, name, opset=16):
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)],
                              producer_name="qkv-tests")
    model.ir_version = 8
    onnx.save(model, os.path.join(OUT, name + ".onnx"))


def save_tensor(path, array):
    with open(path, "wb") as f:
        f.write(numpy_helper.from_array(np.asarray(array)).SerializeToString())


def expect(model, case, k, value):
    """A tensor, or a list of tensors (a sequence; [] writes nothing)."""
    base = os.path.join(OUT, f"{model}_{case}_out{k}")
    if isinstance(value, list):
        for i, v in enumerate(value):
            save_tensor(f"{base}_{i}.pb", v)
    else:
        save_tensor(base + ".pb", value)


def const(name, value):
    return helper.make_node("Constant", [], [name], value=numpy_helper.from_array(np.asarray(value)),
                            name=name + "_const")


def node(op, ins, outs, name, **attrs):
    return helper.make_node(op, ins, outs, name=name, **attrs)


def if_models():
    then = helper.make_graph([const("two", np.float32(2)),
                              node("Mul", ["x", "two"], ["x2"], "double"),
                              node("SequenceConstruct", ["x", "x2"], ["pair"], "pair")],
                             "then", [], [seq_info("pair")])
    els = helper.make_graph([node("SequenceEmpty", [], ["none"], "empty", dtype=F)],
                            "else", [], [seq_info("none")])
    save(helper.make_graph([node("If", ["c"], ["y"], "seq_if", then_branch=then,
                                 else_branch=els)],
                           "if_seq", [t_info("c", BOOL, []), t_info("x", F, [2])],
                           [seq_info("y")]), "if_seq")
    expect("if_seq", "then", 0, [X2, X2 * 2])

    then = helper.make_graph([node("SequenceConstruct", ["x", "x"], ["both"], "both")],
                             "then", [], [seq_info("both"), seq_info("both")])
    els = helper.make_graph([node("SequenceConstruct", ["x"], ["one"], "one")],
                            "else", [], [seq_info("one"), seq_info("one")])
    save(helper.make_graph([node("If", ["c"], ["y0", "y1"], "twice_if", then_branch=then,
                                 else_branch=els)],
                           "if_twice", [t_info("c", BOOL, []), t_info("x", F, [2])],
                           [seq_info("y0"), seq_info("y1")]), "if_twice")
    expect("if_twice", "then", 0, [X2, X2])
    expect("if_twice", "then", 1, [X2, X2])

    then = helper.make_graph([node("SequenceInsert", ["s", "x"], ["s_x"], "append")],
                             "then", [], [seq_info("s_x")])
    els = helper.make_graph([node("Identity", ["s"], ["s_same"], "same")],
                            "else", [], [seq_info("s_same")])
    save(helper.make_graph([node("SplitToSequence", ["w"], ["s"], "split", axis=0, keepdims=0),
                            node("If", ["c"], ["y"], "outer_if", then_branch=then,
                                 else_branch=els)],
                           "if_outer_seq", [t_info("c", BOOL, []), t_info("x", F, [2]),
                                            t_info("w", F, [3, 2])],
                           [seq_info("y")]), "if_outer_seq")
    expect("if_outer_seq", "then", 0, [W32[0], W32[1], W32[2], X2])
    expect("if_outer_seq", "else", 0, [W32[0], W32[1], W32[2]])

    then = helper.make_graph([node("Optional", ["x"], ["some"], "some")],
                             "then", [], [opt_info("some")])
    els = helper.make_graph([node("Optional", [], ["none"], "none",
                                  type=helper.make_tensor_type_proto(F, None))],
                            "else", [], [opt_info("none")])
    save(helper.make_graph([node("If", ["c"], ["y"], "opt_if", then_branch=then,
                                 else_branch=els)],
                           "if_opt", [t_info("c", BOOL, []), t_info("x", F, [2])],
                           [opt_info("y")]), "if_opt")
    expect("if_opt", "then", 0, [X2])


def loop_models():
    body = helper.make_graph(
        [node("Identity", ["c_in"], ["c_out"], "keep"),
         node("Cast", ["i"], ["i_f"], "cast", to=F),
         node("Mul", ["x", "i_f"], ["xi"], "scale"),
         node("SequenceInsert", ["acc_in", "xi"], ["acc_out"], "append"),
         node("SequenceLength", ["acc_out"], ["len"], "length")],
        "loop_body",
        [t_info("i", I64, []), t_info("c_in", BOOL, []), seq_info("acc_in"), seq_info("p_in")],
        [t_info("c_out", BOOL, []), seq_info("acc_out"), seq_info("p_in"), t_info("len", I64, [])])
    save(helper.make_graph([node("SequenceEmpty", [], ["acc0"], "empty", dtype=F),
                            node("Loop", ["m", "", "acc0", "p"], ["acc", "p_out", "lens"],
                                 "acc_loop", body=body)],
                           "loop_acc", [t_info("m", I64, []), t_info("x", F, [2]), seq_info("p")],
                           [seq_info("acc"), seq_info("p_out"), t_info("lens", I64, [None])]),
         "loop_acc")
    expect("loop_acc", "m4", 0, [X2 * i for i in range(4)])
    expect("loop_acc", "m4", 2, np.arange(1, 5, dtype=np.int64))

    # the carried value starts as an empty optional sequence and becomes a sequence
    then = helper.make_graph([node("OptionalGetElement", ["o_in"], ["got"], "get")],
                             "then", [], [seq_info("got")])
    els = helper.make_graph([node("SequenceEmpty", [], ["fresh"], "fresh", dtype=F)],
                            "else", [], [seq_info("fresh")])
    body = helper.make_graph(
        [node("Identity", ["c_in"], ["c_out"], "keep"),
         node("OptionalHasElement", ["o_in"], ["has"], "has"),
         node("If", ["has"], ["base"], "some_or_new", then_branch=then, else_branch=els),
         node("Cast", ["i"], ["i_f"], "cast", to=F),
         node("Add", ["x", "i_f"], ["xi"], "shift"),
         node("SequenceInsert", ["base", "xi"], ["o_out"], "append")],
        "loop_body", [t_info("i", I64, []), t_info("c_in", BOOL, []), opt_seq_info("o_in")],
        [t_info("c_out", BOOL, []), seq_info("o_out")])
    save(helper.make_graph([node("Loop", ["m", "", "o"], ["s"], "none_loop", body=body)],
                           "loop_opt_none", [t_info("m", I64, []), t_info("x", F, [2]),
                                             opt_seq_info("o")],
                           [seq_info("s")]), "loop_opt_none")
    expect("loop_opt_none", "m3", 0, [X2 + i for i in range(3)])

    body = helper.make_graph(
        [node("Identity", ["c_in"], ["c_out"], "keep"),
         node("SequenceAt", ["s", "i"], ["row"], "at")],
        "loop_body", [t_info("i", I64, []), t_info("c_in", BOOL, [])],
        [t_info("c_out", BOOL, []), t_info("row", F, None)])
    save(helper.make_graph([node("SplitToSequence", ["w"], ["s"], "split", axis=0, keepdims=0),
                            node("Loop", ["m", ""], ["rows"], "outer_loop", body=body)],
                           "loop_outer_seq", [t_info("m", I64, []), t_info("w", F, [3, 2])],
                           [t_info("rows", F, None)]), "loop_outer_seq")
    expect("loop_outer_seq", "m3", 0, W32)

    # a carried optional sequence given to a body input declared a sequence
    body = helper.make_graph(
        [node("Identity", ["c_in"], ["c_out"], "keep"),
         node("SequenceInsert", ["s_in", "x"], ["s_out"], "append")],
        "loop_body", [t_info("i", I64, []), t_info("c_in", BOOL, []), seq_info("s_in")],
        [t_info("c_out", BOOL, []), seq_info("s_out")])
    save(helper.make_graph([node("Loop", ["m", "", "o"], ["s"], "unwrap_loop", body=body)],
                           "loop_unwrap", [t_info("m", I64, []), t_info("x", F, [2]),
                                           opt_seq_info("o")],
                           [seq_info("s")]), "loop_unwrap")
    expect("loop_unwrap", "m2", 0, [W32[0], X2, X2])


def more_loop_models():
    # an optional tensor carried into a tensor: the body unwraps it; iteration 1 on,
    # the body's tensor output is wrapped back into its optional input
    body = helper.make_graph(
        [node("Identity", ["c_in"], ["c_out"], "keep"),
         node("OptionalGetElement", ["o_in"], ["v"], "get"),
         node("Neg", ["v"], ["v_out"], "neg")],
        "loop_body", [t_info("i", I64, []), t_info("c_in", BOOL, []), opt_info("o_in")],
        [t_info("c_out", BOOL, []), t_info("v_out", F, [2])])
    save(helper.make_graph([node("Loop", ["m", "", "o"], ["v"], "opt_tensor_loop", body=body)],
                           "loop_opt_tensor", [t_info("m", I64, []), opt_info("o")],
                           [t_info("v", F, None)]), "loop_opt_tensor")
    expect("loop_opt_tensor", "m3", 0, -X2)

    # a sequence graph input of no declared element type, carried into a body
    # that declares int64 elements: checked when the elements arrive
    body = helper.make_graph(
        [node("Identity", ["c_in"], ["c_out"], "keep"),
         node("Identity", ["s_in"], ["s_out"], "same")],
        "loop_body", [t_info("i", I64, []), t_info("c_in", BOOL, []), seq_info("s_in", I64)],
        [t_info("c_out", BOOL, []), seq_info("s_out", I64)])
    save(helper.make_graph([node("Loop", ["m", "", "s"], ["s_fin"], "any_loop", body=body)],
                           "loop_elem_dtype", [t_info("m", I64, []),
                                               seq_info("s", TensorProto.UNDEFINED)],
                           [seq_info("s_fin", I64)]), "loop_elem_dtype")


def type_attr_models():
    """Optional's TYPE_PROTO attribute: a map type, an optional type, none at all."""
    def opt_model(name, attr):
        n = node("Optional", [], ["o"], "opt_node")
        n.attribute.append(attr)
        save(helper.make_graph([n, node("OptionalHasElement", ["o"], ["has"], "has")], name, [],
                               [t_info("has", BOOL, [])]), name)
    map_type = onnx.TypeProto()
    map_type.map_type.key_type = TensorProto.INT64
    map_type.map_type.value_type.CopyFrom(helper.make_tensor_type_proto(F, None))
    opt_model("optional_type_map", helper.make_attribute("type", map_type))
    opt_model("optional_type_optional", helper.make_attribute(
        "type", helper.make_optional_type_proto(helper.make_tensor_type_proto(F, None))))
    opt_model("optional_type_missing", onnx.AttributeProto(name="type",
                                                           type=onnx.AttributeProto.TYPE_PROTO))


def scan_models():
    body = helper.make_graph(
        [const("zero", np.int64(0)),
         node("SequenceAt", ["s", "zero"], ["first"], "first"),
         node("Add", ["st_in", "x_t"], ["sum"], "add_x"),
         node("Add", ["sum", "first"], ["st_out"], "add_first")],
        "scan_body", [t_info("st_in", F, [2]), t_info("x_t", F, [2])],
        [t_info("st_out", F, [2])])
    save(helper.make_graph([node("SplitToSequence", ["w"], ["s"], "split", axis=0, keepdims=0),
                            node("Scan", ["st0", "xs"], ["st"], "outer_scan", body=body,
                                 num_scan_inputs=1)],
                           "scan_outer_seq", [t_info("st0", F, [2]), t_info("xs", F, [3, 2]),
                                              t_info("w", F, [3, 2])],
                           [t_info("st", F, [2])]), "scan_outer_seq")
    st = X2.copy()
    for t in range(3):
        st = st + W32[t] + W32[0]   # xs = w in the test
    expect("scan_outer_seq", "run", 0, st)


def error_models():
    body = helper.make_graph(
        [node("Identity", ["c_in"], ["c_out"], "keep"),
         node("Neg", ["v_in"], ["v_out"], "neg")],
        "kind_body", [t_info("i", I64, []), t_info("c_in", BOOL, []), t_info("v_in", F, [2])],
        [t_info("c_out", BOOL, []), t_info("v_out", F, [2])])
    save(helper.make_graph([node("SequenceEmpty", [], ["s0"], "empty", dtype=F),
                            node("Loop", ["m", "", "s0"], ["s"], "kind_loop", body=body)],
                           "loop_kind_mismatch", [t_info("m", I64, [])], [t_info("s", F, None)]),
         "loop_kind_mismatch")

    body = helper.make_graph(
        [node("Identity", ["c_in"], ["c_out"], "keep"),
         node("ConcatFromSequence", ["s_in"], ["flat"], "flatten", axis=0)],
        "flat_body", [t_info("i", I64, []), t_info("c_in", BOOL, []), seq_info("s_in")],
        [t_info("c_out", BOOL, []), t_info("flat", F, None)])
    save(helper.make_graph([node("SequenceEmpty", [], ["s0"], "empty", dtype=F),
                            node("Loop", ["m", "", "s0"], ["s"], "flat_loop", body=body)],
                           "loop_body_kind", [t_info("m", I64, [])], [t_info("s", F, None)]),
         "loop_body_kind")

    then = helper.make_graph([node("SequenceConstruct", ["x"], ["a"], "seq")], "then", [],
                             [seq_info("a")])
    els = helper.make_graph([node("Identity", ["x"], ["b"], "tensor")], "else", [],
                            [t_info("b", F, [2])])
    save(helper.make_graph([node("If", ["c"], ["y"], "mixed_if", then_branch=then,
                                 else_branch=els)],
                           "if_kind_mismatch", [t_info("c", BOOL, []), t_info("x", F, [2])],
                           [t_info("y", F, None)]), "if_kind_mismatch")

    body = helper.make_graph(
        [node("Identity", ["c_in"], ["c_out"], "keep"),
         node("Identity", ["s_in"], ["s_out"], "same")],
        "int_body", [t_info("i", I64, []), t_info("c_in", BOOL, []), seq_info("s_in", I64)],
        [t_info("c_out", BOOL, []), seq_info("s_out", I64)])
    save(helper.make_graph([node("SequenceEmpty", [], ["s0"], "empty", dtype=F),
                            node("Loop", ["m", "", "s0"], ["s"], "dtype_loop", body=body)],
                           "loop_seq_dtype", [t_info("m", I64, [])], [seq_info("s", I64)]),
         "loop_seq_dtype")

    body = helper.make_graph(
        [node("SequenceInsert", ["st_in", "x_t"], ["st_out"], "append")],
        "seq_scan_body", [seq_info("st_in"), t_info("x_t", F, [2])], [seq_info("st_out")])
    save(helper.make_graph([node("Scan", ["st0", "xs"], ["st"], "seq_scan", body=body,
                                 num_scan_inputs=1)],
                           "scan_seq_state", [t_info("st0", F, [2]), t_info("xs", F, [3, 2])],
                           [t_info("st", F, None)]), "scan_seq_state")


def main():
    global OUT
    OUT = os.path.join(sys.argv[1], "control_flow_seq")
    os.makedirs(OUT, exist_ok=True)
    if_models()
    loop_models()
    more_loop_models()
    scan_models()
    error_models()
    type_attr_models()


if __name__ == "__main__":
    main()
