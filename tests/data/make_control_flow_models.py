#!/usr/bin/env python3
"""Writes the models of tests/test_control_flow.c into OUTDIR/control_flow/.

Usage: make_control_flow_models.py OUTDIR   (Debian's /usr/bin/python3: onnx, numpy)

Each model M.onnx comes with cases: M_CASE_input_I.pb and M_CASE_output_I.pb
(TensorProto files), the expected outputs computed here with numpy.

  if_shapes     If whose branches give different shapes: x*2 [3] or concat(x, x) [6]
  loop_scan     Loop(M, "", s) with a scan output; the body reads w from outside
  loop_if       an If nested in a Loop's body, both reading the main graph's w;
                the body's cond stops the loop at `limit`
  loop_1000     1000 iterations of x = 0.5 x + 1 (static shapes: planned once)
  loop_m        the same body, the trip count an input: with INT64_MAX a run
                that only qkv_context_cancel ends (tests/test_cancel.c)
  scan_axes     Scan-16: a forward scan along axis 0 and a reverse one along
                axis -1, scan outputs on axis 1 (one reversed)
  scan8_batch   Scan-8 with a batch axis and sequence_lens
  nest4         four If levels, the innermost reading the main graph's x
  loop_seq_body a Loop whose body builds a sequence (v, 2v) and carries its
                element 1: a sequence inside a body lives in the body's frame
  error models  if_cond_int, if_cond_two, if_dtype_mismatch, loop_body_outputs,
                loop_negative, scan_len_mismatch, loop_scan_shape, nest40,
                scan8_omitted_state, scan8_scalar_state, scan8_any_state
(sequences crossing a body's boundary: make_control_flow_seq_models.py)
"""
import os
import sys

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

f = helper.make_tensor_value_info
FLOAT, INT64, BOOL = TensorProto.FLOAT, TensorProto.INT64, TensorProto.BOOL
OUT = None


def save(graph, name, opset=16):
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)],
                              producer_name="qkv-tests")
    model.ir_version = 8
    onnx.save(model, os.path.join(OUT, name + ".onnx"))


def case(model, name, inputs, outputs):
    for i, a in enumerate(inputs):
        t = numpy_helper.from_array(np.asarray(a))
        open(os.path.join(OUT, f"{model}_{name}_input_{i}.pb"), "wb").write(t.SerializeToString())
    for i, a in enumerate(outputs):
        t = numpy_helper.from_array(np.asarray(a))
        open(os.path.join(OUT, f"{model}_{name}_output_{i}.pb"), "wb").write(t.SerializeToString())


def const(name, value):
    return helper.make_node("Constant", [], [name], value=numpy_helper.from_array(np.asarray(value)),
                            name=name + "_const")


def if_shapes():
    then = helper.make_graph([const("two", np.float32(2)),
                              helper.make_node("Mul", ["x", "two"], ["y_then"], name="double")],
                             "then", [], [f("y_then", FLOAT, [3])])
    els = helper.make_graph([helper.make_node("Concat", ["x", "x"], ["y_else"], axis=0,
                                              name="concat")],
                            "else", [], [f("y_else", FLOAT, [6])])
    g = helper.make_graph([helper.make_node("If", ["cond"], ["y"], then_branch=then,
                                            else_branch=els, name="if")],
                          "if_shapes", [f("cond", BOOL, []), f("x", FLOAT, [3])],
                          [f("y", FLOAT, None)])
    save(g, "if_shapes")
    x = np.array([1, -2, 3.5], np.float32)
    case("if_shapes", "then", [np.array(True), x], [x * 2])
    case("if_shapes", "else", [np.array(False), x], [np.concatenate([x, x])])


def loop_scan():
    body = helper.make_graph(
        [helper.make_node("Cast", ["i"], ["i_f"], to=FLOAT, name="cast"),
         helper.make_node("Mul", ["w", "i_f"], ["wi"], name="mul"),
         helper.make_node("Add", ["s_in", "wi"], ["s_out"], name="add"),
         helper.make_node("Identity", ["c_in"], ["c_out"], name="keep"),
         helper.make_node("Identity", ["s_out"], ["scan"], name="emit")],
        "body", [f("i", INT64, []), f("c_in", BOOL, []), f("s_in", FLOAT, [2])],
        [f("c_out", BOOL, []), f("s_out", FLOAT, [2]), f("scan", FLOAT, [2])])
    g = helper.make_graph([helper.make_node("Loop", ["m", "", "s0"], ["s", "scans"], body=body,
                                            name="loop")],
                          "loop_scan", [f("m", INT64, []), f("s0", FLOAT, [2]),
                                        f("w", FLOAT, [2])],
                          [f("s", FLOAT, [2]), f("scans", FLOAT, None)])
    save(g, "loop_scan")
    s0 = np.array([1, 2], np.float32)
    w = np.array([0.5, -1], np.float32)
    for m in (5, 0):
        s, rows = s0.copy(), []
        for i in range(m):
            s = s + w * np.float32(i)
            rows.append(s.copy())
        scans = np.stack(rows) if rows else np.zeros((0, 2), np.float32)
        case("loop_scan", f"m{m}", [np.array(m, np.int64), s0, w], [s, scans])


def loop_if():
    then = helper.make_graph([helper.make_node("Add", ["s_in", "w"], ["t_out"], name="plus")],
                             "then", [], [f("t_out", FLOAT, [2])])
    els = helper.make_graph([helper.make_node("Mul", ["s_in", "w"], ["e_out"], name="times")],
                            "else", [], [f("e_out", FLOAT, [2])])
    body = helper.make_graph(
        [const("two", np.int64(2)), const("zero", np.int64(0)), const("one", np.int64(1)),
         helper.make_node("Mod", ["i", "two"], ["parity"], name="mod"),
         helper.make_node("Equal", ["parity", "zero"], ["even"], name="even"),
         helper.make_node("If", ["even"], ["s_out"], then_branch=then, else_branch=els,
                          name="inner_if"),
         helper.make_node("Add", ["i", "one"], ["next_i"], name="next"),
         helper.make_node("Less", ["next_i", "limit"], ["c_out"], name="go_on")],
        "body", [f("i", INT64, []), f("c_in", BOOL, []), f("s_in", FLOAT, [2])],
        [f("c_out", BOOL, []), f("s_out", FLOAT, [2])])
    g = helper.make_graph([const("big", np.int64(100)),
                           helper.make_node("Loop", ["big", "", "s0"], ["s"], body=body,
                                            name="loop")],
                          "loop_if", [f("s0", FLOAT, [2]), f("w", FLOAT, [2]),
                                      f("limit", INT64, [])],
                          [f("s", FLOAT, [2])])
    save(g, "loop_if")
    s0 = np.array([1, 2], np.float32)
    w = np.array([1.5, -0.5], np.float32)
    for limit in (5, 1):
        s = s0.copy()
        for i in range(100):
            s = s + w if i % 2 == 0 else s * w
            if not i + 1 < limit:
                break
        case("loop_if", f"limit{limit}", [s0, w, np.array(limit, np.int64)], [s])


def halving_body():
    """A Loop body: x = 0.5 x + 1, the condition passed through."""
    return helper.make_graph(
        [const("half", np.float32(0.5)), const("one", np.float32(1)),
         helper.make_node("Mul", ["x_in", "half"], ["h"], name="mul"),
         helper.make_node("Add", ["h", "one"], ["x_out"], name="add"),
         helper.make_node("Identity", ["c_in"], ["c_out"], name="keep")],
        "body", [f("i", INT64, []), f("c_in", BOOL, []), f("x_in", FLOAT, [4])],
        [f("c_out", BOOL, []), f("x_out", FLOAT, [4])])


def loop_1000():
    body = halving_body()
    g = helper.make_graph([helper.make_node("Loop", ["m", "", "x0"], ["x"], body=body,
                                            name="loop")],
                          "loop_1000", [f("x0", FLOAT, [4])], [f("x", FLOAT, [4])],
                          [numpy_helper.from_array(np.array(1000, np.int64), "m")])
    save(g, "loop_1000")
    x0 = np.array([0, 1, 100, -7], np.float32)
    x = x0.copy()
    for _ in range(1000):
        x = x * np.float32(0.5) + np.float32(1)
    case("loop_1000", "a", [x0], [x])


def loop_m():
    body = halving_body()
    g = helper.make_graph([helper.make_node("Loop", ["m", "", "x0"], ["x"], body=body,
                                            name="loop")],
                          "loop_m", [f("m", INT64, []), f("x0", FLOAT, [4])],
                          [f("x", FLOAT, [4])])
    save(g, "loop_m")


def scan_axes():
    body = helper.make_graph(
        [helper.make_node("Add", ["acc_in", "a"], ["acc_out"], name="acc"),
         helper.make_node("Mul", ["a", "b"], ["ab"], name="prod"),
         helper.make_node("Identity", ["acc_out"], ["acc_scan"], name="emit")],
        "body", [f("acc_in", FLOAT, [2]), f("a", FLOAT, [2]), f("b", FLOAT, [2])],
        [f("acc_out", FLOAT, [2]), f("acc_scan", FLOAT, [2]), f("ab", FLOAT, [2])])
    node = helper.make_node("Scan", ["acc0", "xa", "xb"], ["acc", "accs", "abs"], body=body,
                            num_scan_inputs=2, scan_input_axes=[0, -1],
                            scan_input_directions=[0, 1], scan_output_axes=[1, -1],
                            scan_output_directions=[0, 1], name="scan")
    g = helper.make_graph([node], "scan_axes",
                          [f("acc0", FLOAT, [2]), f("xa", FLOAT, ["n", 2]),
                           f("xb", FLOAT, [2, "n"])],
                          [f("acc", FLOAT, [2]), f("accs", FLOAT, None), f("abs", FLOAT, None)])
    save(g, "scan_axes")
    rng = np.random.default_rng(5)
    acc0 = np.array([1, -1], np.float32)
    xa = rng.standard_normal((3, 2)).astype(np.float32)
    xb = rng.standard_normal((2, 3)).astype(np.float32)
    acc, accs, abs_ = acc0.copy(), [], []
    n = xa.shape[0]
    for t in range(n):
        a, b = xa[t], xb[:, n - 1 - t]
        acc = acc + a
        accs.append(acc.copy())
        abs_.append(a * b)
    accs = np.stack(accs, axis=1)                  # [2, n]
    abs_ = np.stack(abs_[::-1], axis=1)            # reverse direction, axis -1 -> [2, n]
    case("scan_axes", "n3", [acc0, xa, xb], [acc, accs, abs_])
    # a sequence of length 0: the state stays, the scan outputs are empty
    case("scan_axes", "n0", [acc0, np.zeros((0, 2), np.float32), np.zeros((2, 0), np.float32)],
         [acc0, np.zeros((2, 0), np.float32), np.zeros((2, 0), np.float32)])


def scan8_batch():
    body = helper.make_graph(
        [helper.make_node("Add", ["s_in", "x"], ["s_out"], name="acc"),
         helper.make_node("Identity", ["s_out"], ["y"], name="emit")],
        "body", [f("s_in", FLOAT, [2]), f("x", FLOAT, [2])],
        [f("s_out", FLOAT, [2]), f("y", FLOAT, [2])])
    node = helper.make_node("Scan", ["lens", "s0", "x"], ["s", "ys"], body=body,
                            num_scan_inputs=1, directions=[1], name="scan8")
    g = helper.make_graph([node], "scan8_batch",
                          [f("lens", INT64, [2]), f("s0", FLOAT, [2, 2]),
                           f("x", FLOAT, [2, 3, 2])],
                          [f("s", FLOAT, [2, 2]), f("ys", FLOAT, [2, 3, 2])])
    save(g, "scan8_batch", opset=8)
    rng = np.random.default_rng(8)
    s0 = rng.standard_normal((2, 2)).astype(np.float32)
    x = rng.standard_normal((2, 3, 2)).astype(np.float32)
    lens = np.array([3, 2], np.int64)
    s, ys = s0.copy(), np.zeros((2, 3, 2), np.float32)
    for b in range(2):
        for t in range(lens[b]):
            s[b] = s[b] + x[b, lens[b] - 1 - t]
            ys[b, t] = s[b]
    case("scan8_batch", "a", [lens, s0, x], [s, ys])


def nested_ifs(depth, name):
    """depth If levels; the innermost then-branch computes x + 1 from the main graph's x."""
    inner = helper.make_graph([const("one_%d" % depth, np.float32(1)),
                               helper.make_node("Add", ["x", "one_%d" % depth], ["y%d" % depth],
                                                name="add")],
                              "then%d" % depth, [], [f("y%d" % depth, FLOAT, [2])])
    for level in range(depth - 1, -1, -1):
        els = helper.make_graph([helper.make_node("Neg", ["x"], ["n%d" % level], name="neg")],
                                "else%d" % level, [], [f("n%d" % level, FLOAT, [2])])
        node = helper.make_node("If", ["c"], ["y%d" % level], then_branch=inner,
                                else_branch=els, name="if%d" % level)
        if level == 0:
            g = helper.make_graph([node], name, [f("c", BOOL, []), f("x", FLOAT, [2])],
                                  [f("y0", FLOAT, [2])])
        else:
            inner = helper.make_graph([node], "then%d" % level, [], [f("y%d" % level, FLOAT, [2])])
    save(g, name)
    return g


def passes_outer():
    """Folding and GELU fusion around values a body reads from outside: k is
    folded to a constant, d is the inner value of an erf GELU; both must stay."""
    then = helper.make_graph([helper.make_node("Mul", ["d", "k"], ["dk"], name="dk"),
                              helper.make_node("Add", ["g", "dk"], ["y_then"], name="plus")],
                             "then", [], [f("y_then", FLOAT, [4])])
    els = helper.make_graph([helper.make_node("Sub", ["g", "d"], ["y_else"], name="minus")],
                            "else", [], [f("y_else", FLOAT, [4])])
    inits = [numpy_helper.from_array(np.float32(v), n) for n, v in
             (("two", 2), ("three", 3), ("sqrt2", np.sqrt(2)), ("one", 1), ("half", 0.5))]
    g = helper.make_graph(
        [helper.make_node("Mul", ["two", "three"], ["k"], name="fold_me"),
         helper.make_node("Div", ["x", "sqrt2"], ["d"], name="div"),
         helper.make_node("Erf", ["d"], ["e"], name="erf"),
         helper.make_node("Add", ["e", "one"], ["p"], name="add"),
         helper.make_node("Mul", ["x", "p"], ["m"], name="mul"),
         helper.make_node("Mul", ["m", "half"], ["g"], name="half"),
         helper.make_node("If", ["c"], ["y"], then_branch=then, else_branch=els, name="if")],
        "passes_outer", [f("c", BOOL, []), f("x", FLOAT, [4])], [f("y", FLOAT, [4])], inits)
    save(g, "passes_outer")
    from math import erf
    x = np.array([-1.5, -0.25, 0.5, 2], np.float32)
    d = x / np.float32(np.sqrt(2))
    gl = x * (np.array([erf(v) for v in d], np.float32) + 1) * np.float32(0.5)
    case("passes_outer", "then", [np.array(True), x], [gl + d * 6])
    case("passes_outer", "else", [np.array(False), x], [gl - d])


def sequences():
    body = helper.make_graph(
        [const("two", np.float32(2)), const("one", np.int64(1)),
         helper.make_node("Mul", ["v", "two"], ["v2"], name="double"),
         helper.make_node("SequenceConstruct", ["v", "v2"], ["pair"], name="pair"),
         helper.make_node("SequenceAt", ["pair", "one"], ["v_out"], name="second"),
         helper.make_node("Identity", ["c_in"], ["c_out"], name="keep")],
        "body", [f("i", INT64, []), f("c_in", BOOL, []), f("v", FLOAT, [2])],
        [f("c_out", BOOL, []), f("v_out", FLOAT, [2])])
    save(helper.make_graph([helper.make_node("Loop", ["m", "", "x"], ["y"], body=body,
                                             name="seq_body_loop")],
                           "loop_seq_body", [f("m", INT64, []), f("x", FLOAT, [2])],
                           [f("y", FLOAT, [2])]), "loop_seq_body")
    x = np.array([1, -2], np.float32)
    case("loop_seq_body", "m3", [np.int64(3), x], [x * 8])


def errors():
    then = helper.make_graph([helper.make_node("Identity", ["x"], ["a"], name="id")], "then", [],
                             [f("a", FLOAT, [2])])
    els = helper.make_graph([helper.make_node("Neg", ["x"], ["b"], name="neg")], "else", [],
                            [f("b", FLOAT, [2])])
    save(helper.make_graph([helper.make_node("If", ["c"], ["y"], then_branch=then,
                                             else_branch=els, name="bad_if")],
                           "if_cond_int", [f("c", INT64, []), f("x", FLOAT, [2])],
                           [f("y", FLOAT, [2])]), "if_cond_int")
    save(helper.make_graph([helper.make_node("If", ["c"], ["y"], then_branch=then,
                                             else_branch=els, name="two_if")],
                           "if_cond_two", [f("c", BOOL, ["n"]), f("x", FLOAT, [2])],
                           [f("y", FLOAT, [2])]), "if_cond_two")
    els_int = helper.make_graph([helper.make_node("Cast", ["x"], ["b"], to=INT64, name="cast")],
                                "else", [], [f("b", INT64, [2])])
    save(helper.make_graph([helper.make_node("If", ["c"], ["y"], then_branch=then,
                                             else_branch=els_int, name="mixed_if")],
                           "if_dtype_mismatch", [f("c", BOOL, []), f("x", FLOAT, [2])],
                           [f("y", FLOAT, None)]), "if_dtype_mismatch")
    body = helper.make_graph([helper.make_node("Identity", ["c_in"], ["c_out"], name="keep")],
                             "body", [f("i", INT64, []), f("c_in", BOOL, []), f("v", FLOAT, [2])],
                             [f("c_out", BOOL, [])])
    save(helper.make_graph([helper.make_node("Loop", ["m", "", "x"], ["y"], body=body,
                                             name="short_loop")],
                           "loop_body_outputs", [f("m", INT64, []), f("x", FLOAT, [2])],
                           [f("y", FLOAT, [2])]), "loop_body_outputs")
    body = helper.make_graph([helper.make_node("Identity", ["c_in"], ["c_out"], name="keep"),
                              helper.make_node("Identity", ["v"], ["v_out"], name="pass")],
                             "body", [f("i", INT64, []), f("c_in", BOOL, []), f("v", FLOAT, [2])],
                             [f("c_out", BOOL, []), f("v_out", FLOAT, [2])])
    save(helper.make_graph([helper.make_node("Loop", ["m", "", "x"], ["y"], body=body,
                                             name="neg_loop")],
                           "loop_negative", [f("m", INT64, []), f("x", FLOAT, [2])],
                           [f("y", FLOAT, [2])]), "loop_negative")
    sbody = helper.make_graph([helper.make_node("Add", ["s", "a"], ["s1"], name="add1"),
                               helper.make_node("Add", ["s1", "b"], ["s2"], name="add2")],
                              "body", [f("s", FLOAT, [2]), f("a", FLOAT, [2]), f("b", FLOAT, [2])],
                              [f("s2", FLOAT, [2])])
    save(helper.make_graph([helper.make_node("Scan", ["s0", "xa", "xb"], ["s"], body=sbody,
                                             num_scan_inputs=2, name="uneven_scan")],
                           "scan_len_mismatch", [f("s0", FLOAT, [2]), f("xa", FLOAT, ["n", 2]),
                                                 f("xb", FLOAT, ["m", 2])],
                           [f("s", FLOAT, [2])]), "scan_len_mismatch")
    # the scan output grows every iteration: an error in the middle of the loop
    body = helper.make_graph(
        [const("one", np.int64(1)), const("vector", np.array([1], np.int64)),
         helper.make_node("Add", ["i", "one"], ["n"], name="count"),
         helper.make_node("Reshape", ["n", "vector"], ["n1"], name="as_vector"),
         helper.make_node("ConstantOfShape", ["n1"], ["row"],
                          value=numpy_helper.from_array(np.array([1], np.float32)), name="row"),
         helper.make_node("Identity", ["c_in"], ["c_out"], name="keep")],
        "body", [f("i", INT64, []), f("c_in", BOOL, [])],
        [f("c_out", BOOL, []), f("row", FLOAT, None)])
    save(helper.make_graph([helper.make_node("Loop", ["m", ""], ["rows"], body=body,
                                             name="ragged_loop")],
                           "loop_scan_shape", [f("m", INT64, [])], [f("rows", FLOAT, None)]),
         "loop_scan_shape")
    nested_ifs(40, "nest40")
    scan8_bad_states()


def scan8_bad_states():
    """Scan-8 (the ONNX test_scan_sum body) with its initial state omitted,
    declared a scalar, or of any shape (checked at run time)."""
    body = helper.make_graph(
        [helper.make_node("Add", ["s_in", "x"], ["s_out"], name="acc"),
         helper.make_node("Identity", ["s_out"], ["y"], name="emit")],
        "body", [f("s_in", FLOAT, [2]), f("x", FLOAT, [2])],
        [f("s_out", FLOAT, [2]), f("y", FLOAT, [2])])
    for name, state, s0 in (("scan8_omitted_state", "", None),
                            ("scan8_scalar_state", "s0", []),
                            ("scan8_any_state", "s0", None)):
        node = helper.make_node("Scan", ["", state, "x"], ["s", "ys"], body=body,
                                num_scan_inputs=1, name="scan8_" + name.split("_")[1])
        inputs = [f("x", FLOAT, [2, 3, 2])]
        if state:
            inputs.insert(0, f("s0", FLOAT, s0))
        save(helper.make_graph([node], name, inputs,
                               [f("s", FLOAT, None), f("ys", FLOAT, None)]), name, opset=8)


def main():
    global OUT
    OUT = os.path.join(sys.argv[1], "control_flow")
    os.makedirs(OUT, exist_ok=True)
    if_shapes()
    loop_scan()
    loop_if()
    loop_1000()
    loop_m()
    scan_axes()
    scan8_batch()
    nested_ifs(4, "nest4")
    x = np.array([1, -2], np.float32)
    case("nest4", "then", [np.array(True), x], [x + 1])
    case("nest4", "else", [np.array(False), x], [-x])
    passes_outer()
    sequences()
    errors()


if __name__ == "__main__":
    main()
