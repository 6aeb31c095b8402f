#!/usr/bin/env python3
"""Exports small convolution front ends from PyTorch for tests/test_conv_models.c.

Usage: make_conv_models.py OUTDIR   (Debian's /usr/bin/python3: onnx, numpy, torch)

Each model goes to OUTDIR/conv/<name>.onnx (opset 17, random weights, the
batch and spatial dims dynamic), with two cases of different shapes:
OUTDIR/conv/<name>_<case>_{input,output}_0.pb, references from PyTorch eager
mode in float32. The layers are the ones real attention models put in front
of their encoders, at small sizes:

  w2v_front   wav2vec2's feature extractor and positional conv: Conv1d 1 -> 16
              k10 s5 (no bias), GELU, Conv1d 16 -> 16 k3 s2, then the grouped
              positional Conv1d 16 -> 16 k8 pad 4 groups 4 with its last
              position dropped, added back
  conv_stem   a vision stem: Conv2d 3 -> 8 k3 s2 p1, ReLU, depthwise Conv2d
              k3 p1 groups 8, pointwise Conv2d 8 -> 16, ConvTranspose2d
              16 -> 4 k4 s2 p1 (upsampling)
  conformer   Conformer's convolution module core: pointwise Conv1d 12 -> 24,
              GLU, depthwise Conv1d k31 pad 15, pointwise Conv1d 12 -> 12
  video       a video ViT's tubelet embedding: Conv3d 2 -> 6 k(2,4,4) s(2,4,4),
              then ConvTranspose3d 6 -> 2 k(1,2,2) s(1,2,2) dilation 1
"""
import os
import sys
import warnings

import numpy as np
from onnx import numpy_helper


def save_pb(path, array):
    with open(path, "wb") as f:
        f.write(numpy_helper.from_array(array).SerializeToString())


def models(torch):
    nn = torch.nn

    class W2vFront(nn.Module):
        def __init__(self):
            super().__init__()
            self.c0 = nn.Conv1d(1, 16, 10, stride=5, bias=False)
            self.c1 = nn.Conv1d(16, 16, 3, stride=2, bias=False)
            self.pos = nn.Conv1d(16, 16, 8, padding=4, groups=4)

        def forward(self, x):
            h = self.c1(nn.functional.gelu(self.c0(x)))
            p = self.pos(h)[:, :, :-1]
            return h + nn.functional.gelu(p)

    class ConvStem(nn.Module):
        def __init__(self):
            super().__init__()
            self.c0 = nn.Conv2d(3, 8, 3, stride=2, padding=1)
            self.dw = nn.Conv2d(8, 8, 3, padding=1, groups=8)
            self.pw = nn.Conv2d(8, 16, 1)
            self.up = nn.ConvTranspose2d(16, 4, 4, stride=2, padding=1)

        def forward(self, x):
            return self.up(self.pw(self.dw(torch.relu(self.c0(x)))))

    class Conformer(nn.Module):
        def __init__(self):
            super().__init__()
            self.pw1 = nn.Conv1d(12, 24, 1)
            self.dw = nn.Conv1d(12, 12, 31, padding=15, groups=12)
            self.pw2 = nn.Conv1d(12, 12, 1)

        def forward(self, x):
            return self.pw2(self.dw(nn.functional.glu(self.pw1(x), dim=1)))

    class Video(nn.Module):
        def __init__(self):
            super().__init__()
            self.embed = nn.Conv3d(2, 6, (2, 4, 4), stride=(2, 4, 4))
            self.back = nn.ConvTranspose3d(6, 2, (1, 2, 2), stride=(1, 2, 2))

        def forward(self, x):
            return self.back(self.embed(x))

    return {
        # name: (module, dynamic axes of x, ((case, shape), (case, shape)))
        "w2v_front": (W2vFront(), {0: "batch", 2: "time"},
                      (("a", (1, 1, 400)), ("b", (2, 1, 643)))),
        "conv_stem": (ConvStem(), {0: "batch", 2: "h", 3: "w"},
                      (("a", (1, 3, 16, 16)), ("b", (2, 3, 13, 22)))),
        "conformer": (Conformer(), {0: "batch", 2: "time"},
                      (("a", (1, 12, 50)), ("b", (3, 12, 97)))),
        "video": (Video(), {0: "batch", 2: "t", 3: "h", 4: "w"},
                  (("a", (1, 2, 4, 16, 16)), ("b", (2, 2, 6, 8, 12)))),
    }


def main():
    if len(sys.argv) != 2:
        sys.exit(__doc__)
    warnings.filterwarnings("ignore")  # the exporter's TracerWarnings are expected
    import torch
    torch.manual_seed(0)
    out = os.path.join(sys.argv[1], "conv")
    os.makedirs(out, exist_ok=True)
    rng = np.random.default_rng(3)
    for name, (module, axes, cases) in models(torch).items():
        module.eval()
        x0 = torch.from_numpy(rng.standard_normal(cases[0][1]).astype(np.float32))
        torch.onnx.export(module, (x0,), os.path.join(out, name + ".onnx"), opset_version=17,
                          input_names=["x"], output_names=["y"],
                          dynamic_axes={"x": axes, "y": {0: "batch"}})
        for case, shape in cases:
            x = rng.standard_normal(shape).astype(np.float32)
            with torch.no_grad():
                y = module(torch.from_numpy(x)).numpy()
            save_pb(os.path.join(out, f"{name}_{case}_input_0.pb"), x)
            save_pb(os.path.join(out, f"{name}_{case}_output_0.pb"), y)
        print(f"exported {name} to {out}")


if __name__ == "__main__":
    main()
