#!/usr/bin/env python3
"""Writes the models of the Transpose-view and head-view tests (tests/test_views.c).

Usage: make_view_models.py OUTDIR   (Debian's /usr/bin/python3: onnx, numpy)

OUTDIR/views/<name>.onnx with <name>_input_<k>.pb and <name>_output_<k>.pb
(TensorProto files; references computed here with numpy, float64 for the
attention models).

Transpose views (runtime/passes/transpose_view.c):
  unit_dim_moves      x (1, 4, 6) -> Transpose (1, 0, 2) -> Relu: a view
  data_moves          x (2, 4, 6) -> Transpose (1, 0, 2): moves data, stays
  one_dynamic_dim     x (n, 1, 6) -> Transpose (1, 0, 2): a view, shape (1, -1, 6)
  two_dynamic_dims    x (n, 1, m) -> Transpose (2, 1, 0): the graph cannot tell
                      (left to the planner: a view when n or m is 1)
  reshape_then_view   x (4, 6) -> Reshape (4, 1, 6) -> Transpose (1, 0, 2) -> Add r:
                      one Reshape
  matmul_view_residual  a (4, 6) @ W (6, 5) + b -> Reshape (4, 1, 5) ->
                      Transpose (1, 0, 2) -> Add r (1, 4, 5): the MatMul, its
                      bias and the residual become one qkv.FusedMatMul
  gemm_view_residual  the same with Gemm(a, Wt, b, transB=1), as torch exports
                      the out-projection of nn.MultiheadAttention

Head views (runtime/passes/fuse_attention_heads.c):
  heads_rank4         q, k, v (B, S, H*D) -> Reshape (B, S, H, D) -> Transpose
                      (0, 2, 1, 3) (K: (0, 2, 3, 1)), scaled scores, additive
                      mask (B, 1, 1, T), Softmax, P V, Transpose back, Reshape
                      (B, S, H*D)
  heads_rank3         torch's layout: x (S, N, D) -> Transpose (1, 0, 2)
                      (K: (1, 2, 0)), a 3-D mask (N, S, T), the output
                      Transpose (1, 0, 2)
  heads_not_merged    heads_rank4 whose output (B, H, S, D) is the graph output:
                      fused with the transposes kept
  heads_v_other_perm  heads_rank4 with V given (B, H, T, D): fused with the
                      transposes kept
"""
import os
import sys

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

F32 = TensorProto.FLOAT
B, S, T, H, D = 2, 5, 7, 3, 4


def save_pb(path, array, name):
    with open(path, "wb") as f:
        f.write(numpy_helper.from_array(np.array(array, order="C"), name).SerializeToString())


class Maker:
    def __init__(self, out):
        self.out = out
        self.rng = np.random.default_rng(11)

    def randn(self, *shape):
        return self.rng.standard_normal(shape).astype(np.float32)

    def save(self, name, nodes, inputs, outputs, feeds, expected, inits=()):
        """inputs: [(name, shape)], outputs: [(name, shape)], all float32."""
        graph = helper.make_graph(
            nodes, name,
            [helper.make_tensor_value_info(n, F32, s) for n, s in inputs],
            [helper.make_tensor_value_info(n, F32, s) for n, s in outputs],
            [numpy_helper.from_array(np.asarray(a), n) for n, a in inits])
        model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)],
                                  producer_name="qkv-tests")
        model.ir_version = 8
        onnx.checker.check_model(model)
        onnx.save(model, os.path.join(self.out, f"{name}.onnx"))
        for k, ((n, _), a) in enumerate(zip(inputs, feeds)):
            save_pb(os.path.join(self.out, f"{name}_input_{k}.pb"), a, n)
        for k, ((n, _), a) in enumerate(zip(outputs, expected)):
            save_pb(os.path.join(self.out, f"{name}_output_{k}.pb"), a, n)


def node(op, ins, outs, **attrs):
    return helper.make_node(op, ins, outs, name=outs[0] + "_node", **attrs)


def transpose_views(m):
    x = m.randn(1, 4, 6)
    m.save("unit_dim_moves", [node("Transpose", ["x"], ["t"], perm=[1, 0, 2]),
                              node("Relu", ["t"], ["y"])],
           [("x", [1, 4, 6])], [("y", [4, 1, 6])], [x],
           [np.maximum(x.transpose(1, 0, 2), 0)])

    x = m.randn(2, 4, 6)
    m.save("data_moves", [node("Transpose", ["x"], ["t"], perm=[1, 0, 2]),
                          node("Relu", ["t"], ["y"])],
           [("x", [2, 4, 6])], [("y", [4, 2, 6])], [x],
           [np.maximum(x.transpose(1, 0, 2), 0)])

    x = m.randn(3, 1, 6)
    m.save("one_dynamic_dim", [node("Transpose", ["x"], ["t"], perm=[1, 0, 2]),
                               node("Relu", ["t"], ["y"])],
           [("x", ["n", 1, 6])], [("y", [1, "n", 6])], [x],
           [np.maximum(x.transpose(1, 0, 2), 0)])

    x = m.randn(3, 1, 1)
    m.save("two_dynamic_dims", [node("Transpose", ["x"], ["t"], perm=[2, 1, 0]),
                                node("Relu", ["t"], ["y"])],
           [("x", ["n", 1, "m"])], [("y", ["m", 1, "n"])], [x],
           [np.maximum(x.transpose(2, 1, 0), 0)])

    x, r = m.randn(4, 6), m.randn(1, 4, 6)
    m.save("reshape_then_view",
           [node("Reshape", ["x", "shape"], ["rs"]),
            node("Transpose", ["rs"], ["t"], perm=[1, 0, 2]),
            node("Add", ["r", "t"], ["y"])],
           [("x", [4, 6]), ("r", [1, 4, 6])], [("y", [1, 4, 6])], [x, r],
           [r + x.reshape(4, 1, 6).transpose(1, 0, 2)],
           [("shape", np.array([4, 1, 6], np.int64))])

    a, r = m.randn(4, 6), m.randn(1, 4, 5)
    w, b = m.randn(6, 5), m.randn(5)
    want = r + (a.astype(np.float64) @ w + b).reshape(4, 1, 5).transpose(1, 0, 2)
    view = [node("Reshape", ["mm", "shape"], ["rs"]),
            node("Transpose", ["rs"], ["t"], perm=[1, 0, 2]),
            node("Add", ["r", "t"], ["y"])]
    m.save("matmul_view_residual",
           [node("MatMul", ["a", "w"], ["ab"]), node("Add", ["ab", "b"], ["mm"])] + view,
           [("a", [4, 6]), ("r", [1, 4, 5])], [("y", [1, 4, 5])], [a, r],
           [want.astype(np.float32)],
           [("w", w), ("b", b), ("shape", np.array([4, 1, 5], np.int64))])
    m.save("gemm_view_residual",
           [node("Gemm", ["a", "wt", "b"], ["mm"], transB=1)] + view,
           [("a", [4, 6]), ("r", [1, 4, 5])], [("y", [1, 4, 5])], [a, r],
           [want.astype(np.float32)],
           [("wt", np.ascontiguousarray(w.T)), ("b", b), ("shape", np.array([4, 1, 5], np.int64))])


def softmax(x):
    e = np.exp(x - x.max(axis=-1, keepdims=True))
    return e / e.sum(axis=-1, keepdims=True)


def heads_rank4(m, name, merged=True, v_split=True):
    q, k, v = m.randn(B, S, H * D), m.randn(B, T, H * D), m.randn(B, T, H * D)
    mask = np.zeros((B, 1, 1, T), np.float32)
    mask[1, 0, 0, 5:] = -np.inf
    split = [("split", np.array([B, -1, H, D], np.int64)),
             ("merge", np.array([B, S, H * D], np.int64)), ("c", np.array(0.5, np.float32)),
             ("mask", mask)]
    nodes = [node("Reshape", ["q", "split"], ["q4"]), node("Reshape", ["k", "split"], ["k4"]),
             node("Transpose", ["q4"], ["qh"], perm=[0, 2, 1, 3]),
             node("Transpose", ["k4"], ["kt"], perm=[0, 2, 3, 1]),
             node("MatMul", ["qh", "kt"], ["s"]), node("Mul", ["s", "c"], ["ss"]),
             node("Add", ["ss", "mask"], ["sm"]), node("Softmax", ["sm"], ["p"], axis=-1)]
    q4 = q.reshape(B, S, H, D).transpose(0, 2, 1, 3).astype(np.float64)
    k4 = k.reshape(B, T, H, D).transpose(0, 2, 1, 3)
    v4 = v.reshape(B, T, H, D).transpose(0, 2, 1, 3)
    y = softmax(0.5 * q4 @ k4.transpose(0, 1, 3, 2) + mask) @ v4  # (B, H, S, D)
    ins = [("q", [B, S, H * D]), ("k", [B, T, H * D])]
    feeds = [q, k]
    if v_split:
        nodes += [node("Reshape", ["v", "split"], ["v4"]),
                  node("Transpose", ["v4"], ["vh"], perm=[0, 2, 1, 3])]
        ins.append(("v", [B, T, H * D]))
        feeds.append(v)
    else:
        nodes += [node("Identity", ["v"], ["vh"])]
        ins.append(("v", [B, H, T, D]))
        feeds.append(np.ascontiguousarray(v4.astype(np.float32)))
    if merged:
        nodes += [node("MatMul", ["p", "vh"], ["o"]),
                  node("Transpose", ["o"], ["om"], perm=[0, 2, 1, 3]),
                  node("Reshape", ["om", "merge"], ["y"])]
        out, want = ("y", [B, S, H * D]), y.transpose(0, 2, 1, 3).reshape(B, S, H * D)
    else:
        nodes += [node("MatMul", ["p", "vh"], ["y"])]
        out, want = ("y", [B, H, S, D]), y
    m.save(name, nodes, ins, [out], feeds, [want.astype(np.float32)], split)


def heads_rank3(m):
    n = B * H
    q, k, v = m.randn(S, n, D), m.randn(T, n, D), m.randn(T, n, D)
    mask = m.randn(n, S, T)
    nodes = [node("Transpose", ["q"], ["qh"], perm=[1, 0, 2]),
             node("Div", ["qh", "c"], ["qs"]),
             node("Transpose", ["k"], ["kt"], perm=[1, 2, 0]),
             node("Transpose", ["v"], ["vh"], perm=[1, 0, 2]),
             node("MatMul", ["qs", "kt"], ["s"]), node("Add", ["s", "mask"], ["sm"]),
             node("Softmax", ["sm"], ["p"], axis=-1), node("MatMul", ["p", "vh"], ["o"]),
             node("Transpose", ["o"], ["y"], perm=[1, 0, 2])]
    qh = q.transpose(1, 0, 2).astype(np.float64) / 2.0
    y = softmax(qh @ k.transpose(1, 2, 0) + mask) @ v.transpose(1, 0, 2)
    m.save("heads_rank3", nodes, [("q", [S, n, D]), ("k", [T, n, D]), ("v", [T, n, D])],
           [("y", [S, n, D])], [q, k, v], [y.transpose(1, 0, 2).astype(np.float32)],
           [("c", np.array(2.0, np.float32)), ("mask", mask)])


def main():
    if len(sys.argv) != 2:
        sys.exit(__doc__)
    out = os.path.join(sys.argv[1], "views")
    os.makedirs(out, exist_ok=True)
    m = Maker(out)
    transpose_views(m)
    heads_rank4(m, "heads_rank4")
    heads_rank3(m)
    heads_rank4(m, "heads_not_merged", merged=False)
    heads_rank4(m, "heads_v_other_perm", v_split=False)


if __name__ == "__main__":
    main()
