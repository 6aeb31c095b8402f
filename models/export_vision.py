#!/usr/bin/env python3
"""Exports real vision and audio transformers from Debian's torchvision 0.14
and torchaudio 0.13 (random weights, fixed seeds, eval mode, opset 17).

Usage: /usr/bin/python3 models/export_vision.py OUTDIR [--full] [NAME...]
       build/qkv test --rtol 1e-3 --atol 1e-5 OUTDIR

Each model goes to OUTDIR/<name>/ as an ONNX backend test directory:
model.onnx, test_data_set_K/{input,output}_N.pb, and the same arrays as
.npy beside them (test_data_set_K/in_<input name>.npy, ref_<output
name>.npy) for `qkv run --input NAME=FILE`. References are PyTorch eager
float32.

Small variants (the default; tests/data/make_vision_models.py writes them for
tests/test_vision_models.c), each with two data sets of different shapes:
  vit        torchvision VisionTransformer: 32x32 image, patch 8 (a Conv),
             2 layers, 2 heads, width 32; batch 2, then 3
  swin       torchvision SwinTransformer: 32x32, patch 4 (Conv), depths
             [2, 2], heads [2, 4], window 4: a shifted-window block with its
             shift mask, then a stage whose window covers the whole map; batch
             2, then 3
  maxvit     torchvision MaxVit: 32x32, stem 8, partition 2, channels
             [16, 32], one layer per stage (each a block- and a grid-attention
             layer after MBConv), head dim 8; batch 2, then 1
  wav2vec2   torchaudio wav2vec2_model: 3 feature-extractor convs (group
             norm), width 32, grouped positional conv (k 8, 4 groups), 2
             layers, 2 heads; audio (2, 1200), then (3, 1700)
  conformer  torchaudio Conformer: width 32, 4 heads, ffn 64, 2 layers,
             depthwise kernel 7; inputs x (B, T, 32) and lengths (B,) (later
             sequences padded: a key padding mask); (2, 20), then (3, 13).
             Exported through TracedConformer: Conformer's own mask would
             freeze T at the export's length

--full: the full-size models for benchmarks (one data set, batch 1):
  vit_b_16      torchvision vit_b_16, 224x224
  swin_t        torchvision swin_t, 224x224
  maxvit_t      torchvision maxvit_t, 224x224
  wav2vec2_base torchaudio wav2vec2_base, one second of 16 kHz audio
  conformer_s   torchaudio Conformer, Conformer-S size: width 144, 4 heads,
                ffn 576, 16 layers, depthwise kernel 31, 256 frames

Weights are redrawn from a fixed seed (matrices with variance 1/fan-in,
biases small, norm scales near 1), so no layer is left zero-initialised (a
zero classifier would make every output 0). Exported with gradients on:
torch 1.13's nn.MultiheadAttention (in Conformer) otherwise takes its fused
fast path, which the exporter cannot trace.
"""
import math
import os
import sys
import warnings

import numpy as np
import torch
from onnx import numpy_helper

OPSET = 17


def reinit(model, seed):
    """Every parameter redrawn: weights uniform with variance 1/fan-in,
    vector weights (norm scales) within 1 +- 0.1, other vectors (biases)
    within +-0.1."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, p in model.named_parameters():
            u = torch.rand(p.shape, generator=g) * 2 - 1
            if p.dim() > 1:
                fan_in = p[0].numel()
                p.copy_(u * math.sqrt(3.0 / fan_in))
            elif name.endswith("weight"):  # norm scales
                p.copy_(1 + 0.1 * u)
            else:
                p.copy_(0.1 * u)
    return model.eval()


def save_case(model_dir, k, inputs, outputs):
    case = os.path.join(model_dir, f"test_data_set_{k}")
    os.makedirs(case, exist_ok=True)
    for kind, prefix, arrays in (("input", "in", inputs), ("output", "ref", outputs)):
        for i, (name, a) in enumerate(arrays):
            a = np.ascontiguousarray(a)
            with open(os.path.join(case, f"{kind}_{i}.pb"), "wb") as f:
                f.write(numpy_helper.from_array(a, name).SerializeToString())
            np.save(os.path.join(case, f"{prefix}_{name}.npy"), a)


def export(out, name, model, cases, in_names, out_names, dynamic_axes, traced=None):
    """Exports model (or `traced`, an equivalent wrapper the exporter can
    trace) with the first case's inputs, then runs every case (a list of
    input tuples) through model in eager mode for the references."""
    model_dir = os.path.join(out, name)
    os.makedirs(model_dir, exist_ok=True)
    # eval mode on the wrapper too: the exporter restores the mode it found,
    # recursively, which would put the shared layers in training mode
    traced = (traced or model).eval()
    with torch.enable_grad():
        torch.onnx.export(traced, cases[0], os.path.join(model_dir, "model.onnx"),
                          opset_version=OPSET, input_names=in_names, output_names=out_names,
                          dynamic_axes=dynamic_axes, do_constant_folding=True)
        for k, args in enumerate(cases):
            outs = model(*args)
            outs = outs if isinstance(outs, tuple) else (outs,)
            save_case(model_dir, k, [(n, a.numpy()) for n, a in zip(in_names, args)],
                      [(n, o.detach().numpy()) for n, o in zip(out_names, outs)])


def images(gen, size, *batches):
    return [(torch.randn(b, 3, size, size, generator=gen),) for b in batches]


def audio(gen, *shapes):
    return [(torch.randn(*s, generator=gen),) for s in shapes]


def sequences(gen, dim, *shapes):
    """(x (B, T, dim), lengths (B,)): sequence 0 full, the others shorter."""
    cases = []
    for b, t in shapes:
        lengths = torch.tensor([t] + [max(1, t - 3 * i - 2) for i in range(1, b)])
        cases.append((torch.randn(b, t, dim, generator=gen), lengths))
    return cases


class FirstOutput(torch.nn.Module):
    """torchaudio models return (output, lengths); the export keeps output."""

    def __init__(self, model):
        super().__init__()
        self.model = model

    def forward(self, *args):
        return self.model(*args)[0]


class TracedConformer(torch.nn.Module):
    """torchaudio's Conformer.forward, but the padding mask compares
    arange(T) with the lengths: Conformer computes it from
    int(max(lengths)), which tracing freezes to the export's length. Equal
    whenever max(lengths) = T (every data set has a full-length sequence)."""

    def __init__(self, conformer):
        super().__init__()
        self.conformer = conformer

    def forward(self, x, lengths):
        mask = torch.arange(x.shape[1]).unsqueeze(0) >= lengths.unsqueeze(1)
        y = x.transpose(0, 1)
        for layer in self.conformer.conformer_layers:
            y = layer(y, mask)
        return y.transpose(0, 1)


BATCH = {"x": {0: "batch"}, "y": {0: "batch"}}
AUDIO = {"x": {0: "batch", 1: "samples"}, "y": {0: "batch", 1: "frames"}}
SEQ = {"x": {0: "batch", 1: "time"}, "lengths": {0: "batch"}, "y": {0: "batch", 1: "time"}}


# ---- small variants (tests) ---------------------------------------------------------


def vit(out, gen):
    from torchvision.models.vision_transformer import VisionTransformer
    m = reinit(VisionTransformer(image_size=32, patch_size=8, num_layers=2, num_heads=2,
                                 hidden_dim=32, mlp_dim=64, num_classes=10), 1)
    export(out, "vit", m, images(gen, 32, 2, 3), ["x"], ["y"], BATCH)


def swin(out, gen):
    from torchvision.models.swin_transformer import SwinTransformer
    m = reinit(SwinTransformer(patch_size=[4, 4], embed_dim=16, depths=[2, 2], num_heads=[2, 4],
                               window_size=[4, 4], stochastic_depth_prob=0.0, num_classes=10), 2)
    export(out, "swin", m, images(gen, 32, 2, 3), ["x"], ["y"], BATCH)


def maxvit(out, gen):
    from torchvision.models.maxvit import MaxVit
    m = reinit(MaxVit(input_size=(32, 32), stem_channels=8, partition_size=2,
                      block_channels=[16, 32], block_layers=[1, 1], head_dim=8,
                      stochastic_depth_prob=0.0, num_classes=10), 3)
    export(out, "maxvit", m, images(gen, 32, 2, 1), ["x"], ["y"], BATCH)


def wav2vec2(out, gen):
    from torchaudio.models.wav2vec2.model import wav2vec2_model
    m = wav2vec2_model(extractor_mode="group_norm",
                       extractor_conv_layer_config=[(16, 10, 5), (16, 3, 2), (16, 2, 2)],
                       extractor_conv_bias=False, encoder_embed_dim=32,
                       encoder_projection_dropout=0.0, encoder_pos_conv_kernel=8,
                       encoder_pos_conv_groups=4, encoder_num_layers=2, encoder_num_heads=2,
                       encoder_attention_dropout=0.0, encoder_ff_interm_features=64,
                       encoder_ff_interm_dropout=0.0, encoder_dropout=0.0,
                       encoder_layer_norm_first=False, encoder_layer_drop=0.0, aux_num_out=None)
    m = reinit(FirstOutput(m), 4)
    export(out, "wav2vec2", m, audio(gen, (2, 1200), (3, 1700)), ["x"], ["y"], AUDIO)


def conformer(out, gen):
    from torchaudio.models import Conformer
    m = reinit(FirstOutput(Conformer(input_dim=32, num_heads=4, ffn_dim=64, num_layers=2,
                                     depthwise_conv_kernel_size=7)), 5)
    export(out, "conformer", m, sequences(gen, 32, (2, 20), (3, 13)), ["x", "lengths"], ["y"],
           SEQ, TracedConformer(m.model))


# ---- full-size models (benchmarks) --------------------------------------------------


def vit_b_16(out, gen):
    from torchvision.models import vit_b_16 as make
    export(out, "vit_b_16", reinit(make(), 11), images(gen, 224, 1), ["x"], ["y"], None)


def swin_t(out, gen):
    from torchvision.models import swin_t as make
    export(out, "swin_t", reinit(make(), 12), images(gen, 224, 1), ["x"], ["y"], None)


def maxvit_t(out, gen):
    from torchvision.models import maxvit_t as make
    export(out, "maxvit_t", reinit(make(), 13), images(gen, 224, 1), ["x"], ["y"], None)


def wav2vec2_base(out, gen):
    from torchaudio.models import wav2vec2_base as make
    m = reinit(FirstOutput(make(encoder_projection_dropout=0.0, encoder_attention_dropout=0.0,
                                encoder_ff_interm_dropout=0.0, encoder_dropout=0.0,
                                encoder_layer_drop=0.0)), 14)
    export(out, "wav2vec2_base", m, audio(gen, (1, 16000)), ["x"], ["y"], None)


def conformer_s(out, gen):
    from torchaudio.models import Conformer
    m = reinit(FirstOutput(Conformer(input_dim=144, num_heads=4, ffn_dim=576, num_layers=16,
                                     depthwise_conv_kernel_size=31)), 15)
    export(out, "conformer_s", m, sequences(gen, 144, (1, 256)), ["x", "lengths"], ["y"], None,
           TracedConformer(m.model))


SMALL = {"vit": vit, "swin": swin, "maxvit": maxvit, "wav2vec2": wav2vec2,
         "conformer": conformer}
FULL = {"vit_b_16": vit_b_16, "swin_t": swin_t, "maxvit_t": maxvit_t,
        "wav2vec2_base": wav2vec2_base, "conformer_s": conformer_s}


def main(argv):
    args = [a for a in argv if a != "--full"]
    if not args or args[0].startswith("-"):
        sys.exit(__doc__)
    table = FULL if "--full" in argv else SMALL
    out, names = args[0], args[1:] or list(table)
    for name in names:
        if name not in table:
            sys.exit(f"export_vision.py: unknown model {name!r}; known: {', '.join(table)}")
    warnings.filterwarnings("ignore")  # the exporter's TracerWarnings are expected
    torch.set_num_threads(2)
    for name in names:
        torch.manual_seed(0)
        table[name](out, torch.Generator().manual_seed(100))
        print(f"exported {name} to {os.path.join(out, name)}")


if __name__ == "__main__":
    main(sys.argv[1:])
