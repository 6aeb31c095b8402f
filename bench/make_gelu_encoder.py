#!/usr/bin/python3
"""Writes the GELU / FusedMatMul benchmark model (run with Debian's
/usr/bin/python3, which has torch and onnx).

usage: make_gelu_encoder.py OUT.onnx [--layers 2] [--seq 128] [--d 768] [--ff 3072]
                             [--ffn-only | --gelu-only]

A BERT-size nn.TransformerEncoder (post-norm, 12 heads, activation="gelu",
dropout 0, eval) exported by torch.onnx.export at opset 17 with a fixed
input x of shape (1, seq, d), so `qkv bench` needs no --shape. At opset 17
torch writes each GELU as Div(x, 1.4142135), Erf, Add(1), Mul(x, .),
Mul(., 0.5), and each feed-forward linear as MatMul + Add(bias): what the
GELU and MatMul fusion passes rewrite. Compare
  qkv bench OUT.onnx --threads 1            (fused)
  qkv bench OUT.onnx --threads 1 --no-fuse  (the graph as exported)

--ffn-only exports one feed-forward block instead, x + linear2(gelu(linear1(x)))
(where the elementwise work is a larger share), --gelu-only F.gelu alone on
(1, seq, ff) (the Erf kernel's speed, and the GELU pass's gain).
"""
import argparse

import torch


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("out")
    ap.add_argument("--layers", type=int, default=2)
    ap.add_argument("--seq", type=int, default=128)
    ap.add_argument("--d", type=int, default=768)
    ap.add_argument("--ff", type=int, default=3072)
    ap.add_argument("--ffn-only", action="store_true")
    ap.add_argument("--gelu-only", action="store_true")
    a = ap.parse_args()
    torch.manual_seed(0)
    if a.gelu_only or a.ffn_only:
        class Part(torch.nn.Module):
            def __init__(self):
                super().__init__()
                self.linear1 = torch.nn.Linear(a.d, a.ff)
                self.linear2 = torch.nn.Linear(a.ff, a.d)

            def forward(self, x):
                if a.gelu_only:
                    return torch.nn.functional.gelu(x)
                return x + self.linear2(torch.nn.functional.gelu(self.linear1(x)))

        x = torch.randn(1, a.seq, a.ff if a.gelu_only else a.d)
        torch.onnx.export(Part().eval(), (x,), a.out, opset_version=17, input_names=["x"],
                          output_names=["y"])
        return
    layer = torch.nn.TransformerEncoderLayer(a.d, 12, a.ff, dropout=0.0, activation="gelu",
                                             batch_first=True)
    model = torch.nn.TransformerEncoder(layer, a.layers, enable_nested_tensor=False).eval()
    x = torch.randn(1, a.seq, a.d)
    torch.onnx.export(model, (x,), a.out, opset_version=17, input_names=["x"],
                      output_names=["y"])


if __name__ == "__main__":
    main()
