#!/usr/bin/env python3
"""Writes the models the oneDNN backend test (tests/test_onednn.c) runs.

Usage: make_onednn_models.py OUTDIR   (Debian's /usr/bin/python3: onnx, numpy)

Models go to OUTDIR/onednn/<name>.onnx. Their activation dims are symbolic,
so the test picks random shapes at run time and compares the backend
"onednn" with the portable kernels (backends "cpu") on the same inputs;
weights are initializers (prepacked by the plugin) unless said.

  mm_const_r{1..4}_{k}x{n}   MatMul A (..., m, k) @ constant B (k, n)
  mm_var_r{2..4}             MatMul, A and B both inputs, equal batch dims
  mm_bcast_dyn               MatMul A (p, m, k) @ B (q, k, n): batch dims that
                             only broadcast at run time (plugin: host->gemm)
  mm_bcast_static            MatMul A (2, 1, m, k) @ B (3, k, n): declined
  mm_double                  MatMul in float64: declined
  gemm_{i}                   Gemm over transA x transB x C shape x alpha/beta,
                             B constant for even i, an input for odd i
                             (gemm_cases.txt lists each case's parameters)
  fused_{act}_{b}{r}_{bc}    qkv.FusedMatMul activation act, bias b, residual r,
                             B constant (c) or an input (v), A of rank 3
  ref_{act}_{b}{r}_{bc}      the same computed with standard ops (the
                             reference, run on "cpu")
  fused_bad_act              FusedMatMul activation="swish": init error
  gemm_bad_trans             Gemm transA=2: init error
  mm_kmismatch, gemm_c_dyn,  shapes the plugin's infer must reject at run
  fused_res_dyn              time (independent symbolic dims)
  prepack_shared             B (64, 96) read by two MatMuls: released
  prepack_kept               B (64, 96) read by a MatMul and an Add of an input: kept
"""
import os
import sys

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

RNG = np.random.default_rng(20261202)
F = TensorProto.FLOAT


def vi(name, dims, dtype=F):
    return helper.make_tensor_value_info(name, dtype, dims)


def weight(name, shape, dtype=np.float32):
    return numpy_helper.from_array(RNG.uniform(-1, 1, shape).astype(dtype), name)


def save(out, name, nodes, inputs, outputs, inits=(), opsets=(("", 17),)):
    graph = helper.make_graph(nodes, name, inputs, outputs, list(inits))
    model = helper.make_model(
        graph, opset_imports=[helper.make_opsetid(d, v) for d, v in opsets])
    model.ir_version = 8
    onnx.save(model, os.path.join(out, name + ".onnx"))


def batch_names(rank):
    return [f"b{i}" for i in range(rank - 2)]


def matmul_models(out):
    for k, n in ((37, 53), (128, 200)):
        for r in (1, 2, 3, 4):
            a = [k] if r == 1 else batch_names(r) + ["m", k]
            y = [n] if r == 1 else batch_names(r) + ["m", n]
            save(out, f"mm_const_r{r}_{k}x{n}",
                 [helper.make_node("MatMul", ["A", "B"], ["Y"], name="mm")],
                 [vi("A", a)], [vi("Y", y)], [weight("B", (k, n))])
    for r in (2, 3, 4):
        b = batch_names(r)
        save(out, f"mm_var_r{r}", [helper.make_node("MatMul", ["A", "B"], ["Y"], name="mm")],
             [vi("A", b + ["m", "k"]), vi("B", b + ["k", "n"])], [vi("Y", b + ["m", "n"])])
    save(out, "mm_bcast_dyn", [helper.make_node("MatMul", ["A", "B"], ["Y"], name="mm")],
         [vi("A", ["p", "m", "k"]), vi("B", ["q", "k", "n"])], [vi("Y", None)])
    save(out, "mm_bcast_static", [helper.make_node("MatMul", ["A", "B"], ["Y"], name="mm")],
         [vi("A", [2, 1, "m", 7]), vi("B", [3, 7, 4])], [vi("Y", [2, 3, "m", 4])])
    save(out, "mm_double", [helper.make_node("MatMul", ["A", "B"], ["Y"], name="mm")],
         [vi("A", ["m", 5], TensorProto.DOUBLE)], [vi("Y", ["m", 6], TensorProto.DOUBLE)],
         [weight("B", (5, 6), np.float64)])


C_SHAPES = ("none", "scalar", "n", "1n", "m1", "mn")
ALPHA_BETA = ((1.0, 1.0), (0.5, 1.0), (1.0, 0.0), (2.0, -0.75))


def gemm_models(out):
    cases = []
    i = 0
    for ta in (0, 1):
        for tb in (0, 1):
            for cs in C_SHAPES:
                for alpha, beta in ALPHA_BETA:
                    # every third case deep and wide enough that two threads
                    # split it into column panels of the packed weights
                    wide = i % 3 == 0
                    k = 19 + i % 7 + (256 if wide else 0)
                    n = (23 + i % 5) * (7 if wide else 1)
                    const_b = i % 2 == 0
                    a = [k, "m"] if ta else ["m", k]
                    bshape = [n, k] if tb else [k, n]
                    inputs = [vi("A", a)]
                    inits = []
                    if const_b:
                        inits.append(weight("B", bshape))
                    else:
                        inputs.append(vi("B", bshape))
                    node_in = ["A", "B"]
                    cdims = {"none": None, "scalar": [], "n": [n], "1n": [1, n],
                             "m1": ["m", 1], "mn": ["m", n]}[cs]
                    if cdims is not None:
                        node_in.append("C")
                        if "m" in cdims:
                            inputs.append(vi("C", cdims))
                        else:
                            inits.append(weight("C", tuple(cdims)))
                    node = helper.make_node("Gemm", node_in, ["Y"], name="gemm", alpha=alpha,
                                            beta=beta, transA=ta, transB=tb)
                    save(out, f"gemm_{i}", [node], inputs, [vi("Y", ["m", n])], inits,
                         opsets=(("", 13),))
                    cases.append(f"{i} ta={ta} tb={tb} c={cs} alpha={alpha} beta={beta} "
                                 f"k={k} n={n} const_b={int(const_b)}")
                    i += 1
    with open(os.path.join(out, "gemm_cases.txt"), "w") as f:
        f.write(f"{i}\n" + "\n".join(cases) + "\n")


def fused_models(out):
    # K 264, N 200: two threads cut the packed weights into column panels of
    # unequal widths (bias and residual offset with them) when N >= M, and
    # split rows when M > N
    k, n = 264, 200
    for act in ("", "relu", "gelu", "gelu_tanh"):
        for bias in (0, 1):
            for res in (0, 1):
                for const_b in (1, 0):
                    tag = f"{act or 'none'}_{bias}{res}_{'c' if const_b else 'v'}"
                    inputs = [vi("A", ["s", "m", k])]
                    inits = []
                    if const_b:
                        inits.append(weight("B", (k, n)))
                    else:
                        inputs.append(vi("B", [k, n]))
                    if bias:
                        inits.append(weight("bias", (n,)))
                    if res:
                        inputs.append(vi("R", ["s", "m", n]))
                    y = [vi("Y", ["s", "m", n])]
                    attrs = {"activation": act} if act else {}
                    fused = helper.make_node(
                        "FusedMatMul",
                        ["A", "B", "bias" if bias else "", "R" if res else ""], ["Y"],
                        domain="qkv", name="fmm", **attrs)
                    save(out, f"fused_{tag}", [fused], inputs, y, inits,
                         opsets=(("", 20), ("qkv", 1)))
                    nodes = [helper.make_node("MatMul", ["A", "B"], ["t0"], name="mm")]
                    last = "t0"
                    if bias:
                        nodes.append(helper.make_node("Add", [last, "bias"], ["t1"], name="add_b"))
                        last = "t1"
                    if act == "relu":
                        nodes.append(helper.make_node("Relu", [last], ["t2"], name="act"))
                        last = "t2"
                    elif act:
                        nodes.append(helper.make_node(
                            "Gelu", [last], ["t2"], name="act",
                            approximate="tanh" if act == "gelu_tanh" else "none"))
                        last = "t2"
                    if res:
                        nodes.append(helper.make_node("Add", [last, "R"], ["t3"], name="add_r"))
                        last = "t3"
                    nodes.append(helper.make_node("Identity", [last], ["Y"], name="out"))
                    save(out, f"ref_{tag}", nodes, inputs, y, inits, opsets=(("", 20),))
    save(out, "fused_bad_act",
         [helper.make_node("FusedMatMul", ["A", "B"], ["Y"], domain="qkv", name="fmm",
                           activation="swish")],
         [vi("A", ["m", 4])], [vi("Y", ["m", 3])], [weight("B", (4, 3))],
         opsets=(("", 17), ("qkv", 1)))
    save(out, "gemm_bad_trans",
         [helper.make_node("Gemm", ["A", "B"], ["Y"], name="gemm", transA=2)],
         [vi("A", ["m", 4])], [vi("Y", ["m", 3])], [weight("B", (4, 3))])


def error_models(out):
    save(out, "mm_kmismatch", [helper.make_node("MatMul", ["A", "B"], ["Y"], name="mm")],
         [vi("A", ["m", "k1"]), vi("B", ["k2", "n"])], [vi("Y", ["m", "n"])])
    save(out, "gemm_c_dyn", [helper.make_node("Gemm", ["A", "B", "C"], ["Y"], name="gemm")],
         [vi("A", ["m", 4]), vi("C", ["cm", "cn"])], [vi("Y", ["m", 3])],
         [weight("B", (4, 3))])
    save(out, "fused_res_dyn",
         [helper.make_node("FusedMatMul", ["A", "B", "", "R"], ["Y"], domain="qkv",
                           name="fmm")],
         [vi("A", ["m", 4]), vi("R", ["r0", "r1"])], [vi("Y", ["m", 3])],
         [weight("B", (4, 3))], opsets=(("", 17), ("qkv", 1)))


def prepack_models(out):
    k, n = 64, 96
    save(out, "prepack_shared",
         [helper.make_node("MatMul", ["A", "W"], ["y1"], name="mm1"),
          helper.make_node("MatMul", ["A", "W"], ["y2"], name="mm2"),
          helper.make_node("Add", ["y1", "y2"], ["Y"], name="add")],
         [vi("A", ["m", k])], [vi("Y", ["m", n])], [weight("W", (k, n))])
    save(out, "prepack_kept",
         [helper.make_node("MatMul", ["A", "W"], ["y1"], name="mm1"),
          helper.make_node("Add", ["X", "W"], ["Y2"], name="add")],
         [vi("A", ["m", k]), vi("X", [k, n])], [vi("y1", ["m", n]), vi("Y2", [k, n])],
         [weight("W", (k, n))])


def main():
    out = os.path.join(sys.argv[1], "onednn")
    os.makedirs(out, exist_ok=True)
    matmul_models(out)
    gemm_models(out)
    fused_models(out)
    error_models(out)
    prepack_models(out)


if __name__ == "__main__":
    main()
