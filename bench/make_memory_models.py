#!/usr/bin/env python3
"""Exports the models of the peak-memory benchmark (docs/benchmarks.md).

  encoder12.onnx            nn.TransformerEncoder, 12 layers, d_model 768, 12 heads,
                            ff 3072 (BERT-base size, about 340 MB of float32
                            weights inside the .onnx file), batch 1, seq 128,
                            opset 17
  encoder12_ext/model.onnx  the same graph with its weights in external data
                            (onnx.save_model(save_as_external_data=True))

Usage: /usr/bin/python3 bench/make_memory_models.py OUT_DIR
Then:  build/qkv bench OUT_DIR/encoder12.onnx --iters 3   (prints peak RSS)
"""
import os
import sys

import onnx
import onnx.numpy_helper
import torch


class Encoder(torch.nn.Module):
    def __init__(self):
        super().__init__()
        layer = torch.nn.TransformerEncoderLayer(768, 12, dim_feedforward=3072, dropout=0.0,
                                                 batch_first=True)
        self.encoder = torch.nn.TransformerEncoder(layer, 12, enable_nested_tensor=False)

    def forward(self, x):
        return self.encoder(x)


def main():
    out = sys.argv[1] if len(sys.argv) > 1 else "build/bench_models"
    os.makedirs(out, exist_ok=True)
    torch.manual_seed(0)
    model = Encoder().eval()
    # the encoder deep-copies one layer; give every layer its own weights so
    # the exporter does not merge identical initializers
    with torch.no_grad():
        for p in model.parameters():
            p.normal_(0.0, 0.02)
    x = torch.randn(1, 128, 768)
    path = os.path.join(out, "encoder12.onnx")
    # gradients on: torch's fused encoder fast path cannot be traced
    with torch.enable_grad():
        torch.onnx.export(model, (x,), path, opset_version=17, input_names=["x"],
                          output_names=["y"])
    m = onnx.load(path)
    weights = sum(onnx.numpy_helper.to_array(t).nbytes for t in m.graph.initializer)
    ext_dir = os.path.join(out, "encoder12_ext")
    os.makedirs(ext_dir, exist_ok=True)
    data = os.path.join(ext_dir, "model.onnx.data")
    if os.path.exists(data):
        os.remove(data)  # onnx appends to an existing data file
    onnx.save_model(m, os.path.join(ext_dir, "model.onnx"), save_as_external_data=True,
                    all_tensors_to_one_file=True, location="model.onnx.data")
    print(f"{path}: {os.path.getsize(path)} bytes, initializers {weights} bytes")


if __name__ == "__main__":
    main()
