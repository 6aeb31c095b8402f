#!/usr/bin/python3
"""Writes the attention benchmark models (run with Debian's /usr/bin/python3,
which has onnx).

For every sequence length S (default 128, 512, 2048, 4096), batch B = 1,
H = 12 heads and head size D = 64, into OUT_DIR:

  attention_fused_S.onnx    one ONNX Attention node (ai.onnx opset 23),
                            Y = Attention(Q, K, V), scale 1/sqrt(D)
  attention_unfused_S.onnx  the same math as plain ops:
                            Kt = Transpose(K, perm 0,1,3,2)
                            S  = MatMul(Q, Kt)         (B, H, S, S)
                            Ss = Mul(S, 1/sqrt(D))
                            P  = Softmax(Ss, axis -1)
                            Y  = MatMul(P, V)          (B, H, S, D)
                            (run it with `qkv bench --no-fuse` for the unfused
                            baseline; without it the fusion pass may rewrite
                            it into Attention)

Q, K, V and Y are float32 (B, H, S, D) with fixed dims, so `qkv bench` needs
no --shape. onnx 1.12 does not know Attention-23, so the models are written
without onnx.checker (ir_version 11, as ONNX 1.18+ writes opset 23).
"""
import argparse
import math
import os

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper


def io(name, b, h, s, d):
    return helper.make_tensor_value_info(name, TensorProto.FLOAT, [b, h, s, d])


def finish(graph):
    m = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 23)],
                          producer_name="qkv-bench")
    m.ir_version = 11
    return m


def fused(b, h, s, d):
    scale = 1.0 / math.sqrt(d)
    node = helper.make_node("Attention", ["Q", "K", "V"], ["Y"], name="attention",
                            scale=scale)
    g = helper.make_graph([node], "attention_fused_%d" % s,
                          [io("Q", b, h, s, d), io("K", b, h, s, d), io("V", b, h, s, d)],
                          [io("Y", b, h, s, d)])
    return finish(g)


def unfused(b, h, s, d):
    scale = numpy_helper.from_array(np.array(1.0 / math.sqrt(d), np.float32), "scale")
    nodes = [
        helper.make_node("Transpose", ["K"], ["Kt"], name="k_transpose", perm=[0, 1, 3, 2]),
        helper.make_node("MatMul", ["Q", "Kt"], ["scores"], name="qk_matmul"),
        helper.make_node("Mul", ["scores", "scale"], ["scaled"], name="scale_mul"),
        helper.make_node("Softmax", ["scaled"], ["probs"], name="softmax", axis=-1),
        helper.make_node("MatMul", ["probs", "V"], ["Y"], name="pv_matmul"),
    ]
    g = helper.make_graph(nodes, "attention_unfused_%d" % s,
                          [io("Q", b, h, s, d), io("K", b, h, s, d), io("V", b, h, s, d)],
                          [io("Y", b, h, s, d)], [scale])
    return finish(g)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("out_dir")
    ap.add_argument("--seqs", default="128,512,2048,4096",
                    help="comma-separated sequence lengths (default %(default)s)")
    ap.add_argument("--batch", type=int, default=1)
    ap.add_argument("--heads", type=int, default=12)
    ap.add_argument("--head-size", type=int, default=64)
    a = ap.parse_args()
    seqs = [int(x) for x in a.seqs.split(",") if x]
    if not seqs or min(seqs) < 1 or a.batch < 1 or a.heads < 1 or a.head_size < 1:
        ap.error("sizes must be positive")
    os.makedirs(a.out_dir, exist_ok=True)
    for s in seqs:
        for kind, make in (("fused", fused), ("unfused", unfused)):
            path = os.path.join(a.out_dir, "attention_%s_%d.onnx" % (kind, s))
            onnx.save(make(a.batch, a.heads, s, a.head_size), path)
            print(path)


if __name__ == "__main__":
    main()
