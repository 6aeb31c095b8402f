#!/usr/bin/python3
"""Writes one-node ONNX Attention models (opset 23) with the shapes and
masks the fused attention nodes of real models get, for `qkv bench`
(run with Debian's /usr/bin/python3, which has onnx and numpy).

usage: /usr/bin/python3 bench/make_attention_shapes.py OUT_DIR

  conformer         Conformer-S (torchaudio): 4 batches of one head (3-D
                    Q, K, V (4, 256, 36)), a float key padding mask
                    (4, 1, 1, 256): 0, -inf on the last 3 keys
  conformer_nomask  the same without the mask
  swin_shift        Swin-T stage 1, shifted windows: (64, 3, 49, 32) and a
                    float mask (64, 3, 49, 49) (bias plus the -100 shift
                    mask, as constant folding leaves them)
  swin_bias         Swin-T stage 1: the relative position bias (1, 3, 49, 49)
  swin_nomask       the same without a mask
  maxvit_bias       MaxViT-T stage 3: (4, 8, 49, 32), bias (1, 8, 49, 49)
  encoder           no mask: (1, 12, 128, 64), as a BERT-base layer

The masks are initializers, the inputs random (`qkv bench` fills them), so
e.g. `qkv bench OUT_DIR/conformer.onnx --iters 200` times the node alone.
onnx 1.12 does not know Attention-23: the models are written without the
checker (ir_version 11).
"""
import os
import sys

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper


def case(out, name, b, h, s, d, mask_shape, mask_kind, rng, rank3=False):
    inputs = ["Q", "K", "V"] + (["M"] if mask_shape else [])
    attrs = {"scale": float(d) ** -0.5}
    if rank3:
        attrs.update(q_num_heads=h, kv_num_heads=h)
    node = helper.make_node("Attention", inputs, ["Y"], name="attention", **attrs)
    shape = [b, s, h * d] if rank3 else [b, h, s, d]
    inits = []
    if mask_shape:
        m = rng.standard_normal(mask_shape).astype(np.float32)
        if mask_kind == "pad":
            m[...] = 0
            m[..., -3:] = -np.inf
        elif mask_kind == "shift":
            m[rng.random(mask_shape) < 0.2] = -100.0
        inits.append(numpy_helper.from_array(m, "M"))
    vi = [helper.make_tensor_value_info(n, TensorProto.FLOAT, shape) for n in ("Q", "K", "V")]
    y = helper.make_tensor_value_info("Y", TensorProto.FLOAT, shape)
    g = helper.make_graph([node], name, vi, [y], inits)
    m = helper.make_model(g, opset_imports=[helper.make_opsetid("", 23)],
                          producer_name="qkv-bench")
    m.ir_version = 11
    onnx.save(m, os.path.join(out, name + ".onnx"))


def main():
    if len(sys.argv) != 2:
        print(__doc__.split("\n\n")[1], file=sys.stderr)
        return 2
    out = sys.argv[1]
    os.makedirs(out, exist_ok=True)
    rng = np.random.default_rng(0)
    case(out, "conformer", 4, 1, 256, 36, [4, 1, 1, 256], "pad", rng, rank3=True)
    case(out, "conformer_nomask", 4, 1, 256, 36, None, None, rng, rank3=True)
    case(out, "swin_shift", 64, 3, 49, 32, [64, 3, 49, 49], "shift", rng)
    case(out, "swin_bias", 64, 3, 49, 32, [1, 3, 49, 49], "bias", rng)
    case(out, "swin_nomask", 64, 3, 49, 32, None, None, rng)
    case(out, "maxvit_bias", 4, 8, 49, 32, [1, 8, 49, 49], "bias", rng)
    case(out, "encoder", 1, 12, 128, 64, None, None, rng)
    return 0


if __name__ == "__main__":
    sys.exit(main())
