#!/usr/bin/env python3
"""Writes the models the GELU and FusedMatMul fusion tests run
(tests/test_fuse_activations.c).

Usage: make_act_fusion_models.py OUTDIR   (Debian's /usr/bin/python3: onnx, numpy, torch)

OUTDIR/actfusion/<name>.onnx with <name>_input_<k>.pb and <name>_output_<k>.pb
(references in float64 numpy, or PyTorch eager for the torch export).

 - gelu_*: each erf form of GELU the pass must fuse (operand orders, Mul by
   1/sqrt2 or Div by sqrt2, the 0.5 first, last or on the sum, Div by 2;
   float16; opset 13), and the cases it must leave alone (nogelu_*).
 - mm_*: MatMul [-> Add(bias)] [-> activation] [-> Add(residual)] chains
   FusedMatMul takes, and those it must not (nomm_*).
 - torch_encoder_gelu: a 2-layer nn.TransformerEncoder (activation="gelu")
   exported by torch.onnx at opset 17.
"""
import math
import os
import sys

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

F32, F16 = TensorProto.FLOAT, TensorProto.FLOAT16
SQRT2 = math.sqrt(2.0)


def save_pb(path, array, name):
    with open(path, "wb") as f:
        f.write(numpy_helper.from_array(np.array(array, order="C"), name).SerializeToString())


def gelu(x):
    x = x.astype(np.float64)
    return 0.5 * x * (1 + np.vectorize(math.erf)(x / SQRT2))


def gelu_tanh(x):
    x = x.astype(np.float64)
    return 0.5 * x * (1 + np.tanh(math.sqrt(2 / math.pi) * (x + 0.044715 * x ** 3)))


class Maker:
    def __init__(self, out):
        self.out = out
        self.rng = np.random.default_rng(11)

    def randn(self, *shape, scale=1.0):
        return (self.rng.standard_normal(shape) * scale).astype(np.float32)

    def save(self, name, nodes, inputs, outputs, feeds, expected, inits=(), opset=17,
             out_type=F32):
        """inputs: [(name, elem_type, shape)]; outputs: [(name, shape)]."""
        graph = helper.make_graph(
            nodes, name,
            [helper.make_tensor_value_info(n, t, s) for n, t, s in inputs],
            [helper.make_tensor_value_info(n, out_type, s) for n, s in outputs],
            [numpy_helper.from_array(np.asarray(a), n) for n, a in inits])
        model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)],
                                  producer_name="qkv-tests")
        model.ir_version = 8
        if opset <= onnx.defs.onnx_opset_version():  # (this onnx may predate Gelu-20)
            onnx.checker.check_model(model)
        onnx.save(model, os.path.join(self.out, f"{name}.onnx"))
        for k, ((n, _, _), a) in enumerate(zip(inputs, feeds)):
            save_pb(os.path.join(self.out, f"{name}_input_{k}.pb"), a, n)
        for k, ((n, _), a) in enumerate(zip(outputs, expected)):
            save_pb(os.path.join(self.out, f"{name}_output_{k}.pb"), a, n)


def n(op, ins, outs, **attrs):
    return helper.make_node(op, ins, outs, **attrs)


def c32(v, shape=()):
    return np.full(shape, v, dtype=np.float32)


# ---- GELU -----------------------------------------------------------------------

X_SHAPE = [2, 3, 16]


def gelu_nodes(form, x="x", y="y", p=""):
    """The erf GELU of x into y in one of the exported forms; constants named
    p + role (initializers from gelu_inits)."""
    if form == "torch":          # Div, Erf, Add(e,1), Mul(x,a), Mul(m,0.5)
        return [n("Div", [x, p + "sqrt2"], [p + "v"]), n("Erf", [p + "v"], [p + "e"]),
                n("Add", [p + "e", p + "one"], [p + "a"]), n("Mul", [x, p + "a"], [p + "m"]),
                n("Mul", [p + "m", p + "half"], [y])]
    if form == "swapped":        # Mul(c,x), Add(1,e), Mul(a,x), Mul(0.5,m)
        return [n("Mul", [p + "rsqrt2", x], [p + "v"]), n("Erf", [p + "v"], [p + "e"]),
                n("Add", [p + "one", p + "e"], [p + "a"]), n("Mul", [p + "a", x], [p + "m"]),
                n("Mul", [p + "half", p + "m"], [y])]
    if form == "half_first":     # (x 0.5) (1 + erf)
        return [n("Mul", [x, p + "half"], [p + "hx"]), n("Div", [x, p + "sqrt2"], [p + "v"]),
                n("Erf", [p + "v"], [p + "e"]), n("Add", [p + "e", p + "one"], [p + "a"]),
                n("Mul", [p + "hx", p + "a"], [y])]
    if form == "half_of_sum":    # x (0.5 (1 + erf))
        return [n("Mul", [x, p + "rsqrt2"], [p + "v"]), n("Erf", [p + "v"], [p + "e"]),
                n("Add", [p + "e", p + "one"], [p + "a"]), n("Mul", [p + "a", p + "half"], [p + "h"]),
                n("Mul", [x, p + "h"], [y])]
    if form == "div_two":        # (x (1 + erf)) / 2
        return [n("Div", [x, p + "sqrt2"], [p + "v"]), n("Erf", [p + "v"], [p + "e"]),
                n("Add", [p + "e", p + "one"], [p + "a"]), n("Mul", [p + "a", x], [p + "m"]),
                n("Div", [p + "m", p + "two"], [y])]
    raise ValueError(form)


def gelu_inits(p="", dtype=np.float32, sqrt2=SQRT2, shape=()):
    return [(p + "sqrt2", np.full(shape, sqrt2, dtype)),
            (p + "rsqrt2", np.full(shape, 1 / sqrt2, dtype)),
            (p + "one", np.full(shape, 1, dtype)), (p + "half", np.full(shape, 0.5, dtype)),
            (p + "two", np.full(shape, 2, dtype))]


def used_inits(nodes, inits):
    names = {i for nd in nodes for i in nd.input}
    return [(k, v) for k, v in inits if k in names]


def gelu_models(m):
    x = m.randn(*X_SHAPE, scale=2.0)
    for form in ("torch", "swapped", "half_first", "half_of_sum", "div_two"):
        nodes = gelu_nodes(form)
        m.save(f"gelu_{form}", nodes, [("x", F32, X_SHAPE)], [("y", X_SHAPE)], [x],
               [gelu(x).astype(np.float32)], used_inits(nodes, gelu_inits()))
    # the constants as exported in float32 (1.4142135 rounds from sqrt 2), opset 13
    nodes = gelu_nodes("torch")
    m.save("gelu_opset13", nodes, [("x", F32, X_SHAPE)], [("y", X_SHAPE)], [x],
           [gelu(x).astype(np.float32)],
           used_inits(nodes, gelu_inits(sqrt2=np.float32(1.4142135))), opset=13)
    # float16 throughout
    x16 = x.astype(np.float16)
    nodes = gelu_nodes("torch")
    m.save("gelu_f16", nodes, [("x", F16, X_SHAPE)], [("y", X_SHAPE)], [x16],
           [gelu(x16.astype(np.float32)).astype(np.float16)],
           used_inits(nodes, gelu_inits(dtype=np.float16)), out_type=F16)
    # two GELUs in a row, constants of shape [1] (rank <= x's)
    nodes = gelu_nodes("torch", "x", "g1", "a_") + gelu_nodes("half_first", "g1", "y", "b_")
    inits = gelu_inits("a_", shape=(1,)) + gelu_inits("b_")
    m.save("gelu_twice", nodes, [("x", F32, X_SHAPE)], [("y", X_SHAPE)], [x],
           [gelu(gelu(x).astype(np.float32)).astype(np.float32)], used_inits(nodes, inits))

    # ---- not fused
    nodes = gelu_nodes("torch")
    m.save("nogelu_wrong_constant", nodes, [("x", F32, X_SHAPE)], [("y", X_SHAPE)], [x],
           [(0.5 * x * (1 + np.vectorize(math.erf)(x / 1.5))).astype(np.float32)],
           used_inits(nodes, gelu_inits(sqrt2=1.5)))
    nodes = gelu_nodes("torch")
    e = np.vectorize(math.erf)(x.astype(np.float64) / SQRT2)
    m.save("nogelu_erf_is_an_output", nodes, [("x", F32, X_SHAPE)],
           [("y", X_SHAPE), ("e", X_SHAPE)], [x],
           [gelu(x).astype(np.float32), e.astype(np.float32)], used_inits(nodes, gelu_inits()))
    nodes = [n("Div", ["x", "sqrt2"], ["v"]), n("Erf", ["v"], ["e"]),
             n("Add", ["e", "one"], ["a"]), n("Mul", ["z", "a"], ["m"]),
             n("Mul", ["m", "half"], ["y"])]
    z = m.randn(*X_SHAPE)
    m.save("nogelu_other_operand", nodes, [("x", F32, X_SHAPE), ("z", F32, X_SHAPE)],
           [("y", X_SHAPE)], [x, z],
           [(0.5 * z * (1 + e)).astype(np.float32)], used_inits(nodes, gelu_inits()))
    nodes = gelu_nodes("torch")
    inits = [(k, v if k != "half" else np.full((1, 1, 1, 1), 0.5, np.float32))
             for k, v in gelu_inits()]
    m.save("nogelu_broadcast_constant", nodes, [("x", F32, X_SHAPE)],
           [("y", [1] + X_SHAPE)], [x], [gelu(x).astype(np.float32)[None]],
           used_inits(nodes, inits))


# ---- MatMul chains -----------------------------------------------------------------

M_, K_, N_ = 5, 16, 24


def mm_models(m):
    a = m.randn(2, M_, K_)
    w = m.randn(K_, N_, scale=0.3)
    b = m.randn(N_)
    r = m.randn(2, M_, N_)
    mm = a.astype(np.float64) @ w
    A_IN = [("a", F32, [2, M_, K_])]
    Y = [("y", [2, M_, N_])]

    nodes = [n("MatMul", ["a", "w"], ["mm"]), n("Add", ["mm", "b"], ["z"])] + \
        gelu_nodes("torch", "z", "g", "g_") + [n("Add", ["g", "r"], ["y"])]
    m.save("mm_bias_gelu_residual", nodes, A_IN + [("r", F32, [2, M_, N_])], Y, [a, r],
           [(gelu(mm + b) + r).astype(np.float32)],
           [("w", w), ("b", b)] + used_inits(nodes, gelu_inits("g_")))

    nodes = [n("MatMul", ["a", "w"], ["mm"]), n("Add", ["b", "mm"], ["y"])]
    m.save("mm_bias_first", nodes, A_IN, Y, [a], [(mm + b).astype(np.float32)],
           [("w", w), ("b", b)])

    nodes = [n("MatMul", ["a", "w"], ["mm"]), n("Add", ["mm", "b"], ["z"]),
             n("Relu", ["z"], ["y"])]
    m.save("mm_bias_relu", nodes, A_IN, Y, [a], [np.maximum(mm + b, 0).astype(np.float32)],
           [("w", w), ("b", b.reshape(1, 1, N_))])

    nodes = [n("MatMul", ["a", "w"], ["mm"]), n("Add", ["mm", "b"], ["z"]),
             n("Gelu", ["z"], ["g"], approximate="tanh"), n("Add", ["r", "g"], ["y"])]
    m.save("mm_bias_gelu_tanh_residual", nodes, A_IN + [("r", F32, [2, M_, N_])], Y, [a, r],
           [(gelu_tanh(mm + b) + r).astype(np.float32)], [("w", w), ("b", b)], opset=20)

    nodes = [n("MatMul", ["a", "w"], ["mm"]), n("Gelu", ["mm"], ["y"])]
    m.save("mm_gelu", nodes, A_IN, Y, [a], [gelu(mm).astype(np.float32)], [("w", w)],
           opset=20)

    nodes = [n("MatMul", ["a", "w"], ["mm"]), n("Add", ["mm", "r"], ["y"])]
    m.save("mm_residual", nodes, A_IN + [("r", F32, [2, M_, N_])], Y, [a, r],
           [(mm + r).astype(np.float32)], [("w", w)])

    a1 = m.randn(K_)
    nodes = [n("MatMul", ["a", "w"], ["mm"]), n("Add", ["mm", "b"], ["y"])]
    m.save("mm_1d_bias", nodes, [("a", F32, [K_])], [("y", [N_])], [a1],
           [(a1.astype(np.float64) @ w + b).astype(np.float32)], [("w", w), ("b", b)])

    # a dynamic batch: shapes known only at run time
    nodes = [n("MatMul", ["a", "w"], ["mm"]), n("Add", ["mm", "b"], ["z"]),
             n("Relu", ["z"], ["y"])]
    m.save("mm_dynamic_batch", nodes, [("a", F32, ["batch", "seq", K_])],
           [("y", ["batch", "seq", N_])], [a], [np.maximum(mm + b, 0).astype(np.float32)],
           [("w", w), ("b", b)])

    # ---- not fused
    nodes = [n("MatMul", ["a", "w"], ["y"])]
    m.save("nomm_alone", nodes, A_IN, Y, [a], [mm.astype(np.float32)], [("w", w)])
    nodes = [n("MatMul", ["a", "w"], ["mm"]), n("Add", ["mm", "b"], ["y"])]
    m.save("nomm_output_used_twice", nodes, A_IN, Y + [("mm", [2, M_, N_])], [a],
           [(mm + b).astype(np.float32), mm.astype(np.float32)], [("w", w), ("b", b)])
    b2 = m.randn(M_, N_)
    nodes = [n("MatMul", ["a", "w"], ["mm"]), n("Add", ["mm", "b2"], ["y"])]
    m.save("nomm_bias_not_a_row", nodes, A_IN, Y, [a], [(mm + b2).astype(np.float32)],
           [("w", w), ("b2", b2)])
    w3 = m.randn(2, K_, N_)
    nodes = [n("MatMul", ["a", "w3"], ["mm"]), n("Add", ["mm", "b"], ["y"])]
    m.save("nomm_batched_b", nodes, A_IN, Y, [a],
           [(a.astype(np.float64) @ w3 + b).astype(np.float32)], [("w3", w3), ("b", b)])
    r_row = m.randn(N_)
    nodes = [n("MatMul", ["a", "w"], ["mm"]), n("Add", ["mm", "rr"], ["y"])]
    m.save("nomm_residual_broadcasts", nodes, A_IN + [("rr", F32, [N_])], Y, [a, r_row],
           [(mm + r_row).astype(np.float32)], [("w", w)])


# ---- a PyTorch export --------------------------------------------------------------

def torch_encoder(m):
    import torch
    torch.manual_seed(0)
    layer = torch.nn.TransformerEncoderLayer(32, 4, 64, dropout=0.0, activation="gelu",
                                             batch_first=True)
    model = torch.nn.TransformerEncoder(layer, 2, enable_nested_tensor=False).eval()
    x = torch.randn(2, 6, 32)
    path = os.path.join(m.out, "torch_encoder_gelu.onnx")
    torch.onnx.export(model, (x,), path, opset_version=17, input_names=["x"],
                      output_names=["y"])
    with torch.no_grad():
        y = model(x)
    save_pb(os.path.join(m.out, "torch_encoder_gelu_input_0.pb"), x.numpy(), "x")
    save_pb(os.path.join(m.out, "torch_encoder_gelu_output_0.pb"), y.numpy(), "y")


def main():
    out = os.path.join(sys.argv[1], "actfusion")
    os.makedirs(out, exist_ok=True)
    m = Maker(out)
    gelu_models(m)
    mm_models(m)
    torch_encoder(m)


if __name__ == "__main__":
    main()
