#!/usr/bin/python3
"""Writes the models of tests/test_quant_models.c into OUTDIR/quant.

Usage: make_quant_models.py OUTDIR   (Debian's /usr/bin/python3: torch, onnx, numpy)

  dq_matmul.onnx      x (2, 7, 40) -> DynamicQuantizeLinear -> MatMulInteger with a
                      constant uint8 B (40, 33) and per-column zero points (packed
                      once per session) -> Cast -> Mul by the scales. Reference:
                      the same float32/integer steps in numpy, so the result is
                      exact (dq_matmul_{input,output}_0.pb).
  encoder_f32.onnx    torch nn.TransformerEncoder: 2 layers, d_model 256, 4 heads,
                      feed-forward 512, ReLU, batch_first, opset 17.
  encoder_int8.onnx   the same quantized as ONNX Runtime's quantize_dynamic does
                      (models/quantize_dynamic.py): the in-projection and
                      feed-forward MatMuls with int8 weights per tensor (the
                      out-projection is a Gemm, which quantize_dynamic leaves
                      float);
  encoder_int8_pc.onnx  ... per output channel.
  encoder_{input,output}_0.pb   x (2, 16, 256) and torch's float output.
"""
import os
import sys

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "..", "models"))
from quantize_dynamic import quantize_dynamic  # noqa: E402

D, HEADS, FF, LAYERS, BATCH, SEQ = 256, 4, 512, 2, 2, 16


def save_pb(path, array):
    with open(path, "wb") as f:
        f.write(numpy_helper.from_array(array).SerializeToString())


def dq_matmul(out):
    rng = np.random.default_rng(11)
    b = rng.integers(0, 256, (40, 33), dtype=np.uint8)
    bz = rng.integers(100, 156, 33, dtype=np.uint8)
    bs = (rng.random(33) * 0.01 + 0.001).astype(np.float32)
    nodes = [
        helper.make_node("DynamicQuantizeLinear", ["x"], ["xq", "xs", "xz"]),
        helper.make_node("MatMulInteger", ["xq", "b", "xz", "bz"], ["acc"]),
        helper.make_node("Cast", ["acc"], ["accf"], to=TensorProto.FLOAT),
        helper.make_node("Mul", ["xs", "bs"], ["s"]),
        helper.make_node("Mul", ["accf", "s"], ["y"]),
    ]
    graph = helper.make_graph(
        nodes, "dq_matmul",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["batch", 7, 40])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["batch", 7, 33])],
        [numpy_helper.from_array(b, "b"), numpy_helper.from_array(bz, "bz"),
         numpy_helper.from_array(bs, "bs")])
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)],
                                producer_name="qkv-tests"), os.path.join(out, "dq_matmul.onnx"))
    x = (rng.standard_normal((2, 7, 40)) * 3).astype(np.float32)
    lo, hi = min(np.float32(0), x.min()), max(np.float32(0), x.max())
    scale = np.float32((hi - lo) / np.float32(255))
    zp = np.float32(np.clip(np.rint(-lo / scale), 0, 255))
    xq = np.clip(np.rint(x / scale) + zp, 0, 255)
    acc = (xq.astype(np.int64) - int(zp)) @ (b.astype(np.int64) - bz.astype(np.int64))
    y = acc.astype(np.int32).astype(np.float32) * (scale * bs)
    save_pb(os.path.join(out, "dq_matmul_input_0.pb"), x)
    save_pb(os.path.join(out, "dq_matmul_output_0.pb"), y.astype(np.float32))


def encoder(out):
    import torch
    torch.manual_seed(5)
    torch.set_num_threads(1)
    layer = torch.nn.TransformerEncoderLayer(D, HEADS, dim_feedforward=FF, dropout=0.0,
                                             batch_first=True)
    model = torch.nn.TransformerEncoder(layer, LAYERS, enable_nested_tensor=False).eval()
    # the layers are copies of one: draw each parameter afresh, or the
    # exporter shares the second layer's weights with the first's
    with torch.no_grad():
        for p in model.parameters():
            bound = 1.0 / np.sqrt(p.shape[-1]) if p.dim() > 1 else 0.1
            p.uniform_(-bound, bound)
        for layer_ in model.layers:
            for norm in (layer_.norm1, layer_.norm2):
                norm.weight.uniform_(0.9, 1.1)
    x = torch.randn(BATCH, SEQ, D)
    path = os.path.join(out, "encoder_f32.onnx")
    with torch.enable_grad():  # torch 1.13's no-grad fast path cannot be exported
        torch.onnx.export(model, (x,), path, opset_version=17, input_names=["x"],
                          output_names=["y"], do_constant_folding=True,
                          dynamic_axes={"x": {0: "batch", 1: "seq"}, "y": {0: "batch", 1: "seq"}})
        y = model(x).detach().numpy()
    save_pb(os.path.join(out, "encoder_input_0.pb"), x.numpy())
    save_pb(os.path.join(out, "encoder_output_0.pb"), y)
    f32 = onnx.load(path)
    for name, per_channel in (("encoder_int8.onnx", False), ("encoder_int8_pc.onnx", True)):
        q, count = quantize_dynamic(f32, per_channel)
        # the in-projection and the two feed-forward MatMuls of each layer;
        # the out-projection is a Gemm, which quantize_dynamic leaves float
        if count != 3 * LAYERS:
            sys.exit("make_quant_models.py: %d MatMuls quantized, expected %d"
                     % (count, 3 * LAYERS))
        onnx.save(q, os.path.join(out, name))


def main():
    out = os.path.join(sys.argv[1], "quant")
    os.makedirs(out, exist_ok=True)
    dq_matmul(out)
    encoder(out)


if __name__ == "__main__":
    main()
