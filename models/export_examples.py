#!/usr/bin/env python3
"""Exports the example attention models as ONNX backend test directories.

Usage: /usr/bin/python3 models/export_examples.py OUTDIR [NAME...]

For each model NAME this writes OUTDIR/NAME/model.onnx and, for every input
shape case, OUTDIR/NAME/test_data_set_K/{input_*.pb,output_*.pb} holding
inputs and the reference outputs computed by PyTorch in eager mode — the
layout `qkv test` reads. Deterministic (fixed seeds); nothing here is
committed as binaries.

Models:
  mha   nn.MultiheadAttention (embed 64, 4 heads, batch_first) self-attention
        with a key padding mask; outputs the attention output and the
        head-averaged attention weights. Dynamic batch and sequence axes;
        data sets at (batch 2, seq 10) and (batch 3, seq 17).
"""
import os
import sys

import numpy as np
import onnx
import torch
from onnx import numpy_helper


def save_case(model_dir, k, inputs, outputs):
    case = os.path.join(model_dir, f"test_data_set_{k}")
    os.makedirs(case, exist_ok=True)
    for i, (name, a) in enumerate(inputs):
        with open(os.path.join(case, f"input_{i}.pb"), "wb") as f:
            f.write(numpy_helper.from_array(np.ascontiguousarray(a), name).SerializeToString())
    for i, (name, a) in enumerate(outputs):
        with open(os.path.join(case, f"output_{i}.pb"), "wb") as f:
            f.write(numpy_helper.from_array(np.ascontiguousarray(a), name).SerializeToString())


class SelfAttention(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.attn = torch.nn.MultiheadAttention(64, 4, batch_first=True)

    def forward(self, x, key_padding_mask):
        return self.attn(x, x, x, key_padding_mask=key_padding_mask, need_weights=True)


def padding_mask(batch, seq, gen):
    """True marks padded keys: sequence b keeps a random prefix of at least 1."""
    mask = torch.zeros(batch, seq, dtype=torch.bool)
    for b in range(1, batch):
        keep = int(torch.randint(1, seq + 1, (1,), generator=gen))
        mask[b, keep:] = True
    return mask


def export_mha(out):
    torch.manual_seed(0)
    gen = torch.Generator().manual_seed(1)
    model = SelfAttention().eval()
    model_dir = os.path.join(out, "mha")
    os.makedirs(model_dir, exist_ok=True)
    x = torch.randn(2, 10, 64, generator=gen)
    mask = padding_mask(2, 10, gen)
    torch.onnx.export(
        model, (x, mask), os.path.join(model_dir, "model.onnx"), opset_version=14,
        input_names=["x", "key_padding_mask"], output_names=["attn_output", "attn_weights"],
        dynamic_axes={"x": {0: "batch", 1: "seq"}, "key_padding_mask": {0: "batch", 1: "seq"},
                      "attn_output": {0: "batch", 1: "seq"},
                      "attn_weights": {0: "batch", 1: "seq", 2: "seq_k"}})
    for k, (batch, seq) in enumerate(((2, 10), (3, 17))):
        x = torch.randn(batch, seq, 64, generator=gen)
        mask = padding_mask(batch, seq, gen)
        with torch.no_grad():
            y, w = model(x, mask)
        save_case(model_dir, k, [("x", x.numpy()), ("key_padding_mask", mask.numpy())],
                  [("attn_output", y.numpy()), ("attn_weights", w.numpy())])


EXPORTERS = {"mha": export_mha}


def main():
    if len(sys.argv) < 2:
        sys.exit(__doc__)
    out = sys.argv[1]
    names = sys.argv[2:] or list(EXPORTERS)
    for name in names:
        if name not in EXPORTERS:
            sys.exit(f"unknown model {name!r}; known: {', '.join(EXPORTERS)}")
        EXPORTERS[name](out)
        print(f"exported {name} to {os.path.join(out, name)}")


if __name__ == "__main__":
    main()
