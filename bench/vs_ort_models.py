#!/usr/bin/python3
"""Writes the models, inputs and reference outputs of bench/vs-ort.sh (run
with Debian's /usr/bin/python3, which has torch, onnx and numpy).

Into OUT_DIR, for each model NAME (batch 1, sequence 128, float32, fixed
shapes so neither runtime needs shape options; random weights and inputs
from fixed seeds):

  encoder2   torch nn.TransformerEncoder, 2 layers, d_model 768, 12 heads,
             feed-forward 3072, ReLU, post-norm, batch_first; input x
             (1, 128, 768); opset 17
  mha        torch nn.MultiheadAttention(768, 12, batch_first), self-attention
             y = attn(x, x, x, need_weights=False); input x (1, 128, 768);
             opset 17
  attention23  one ai.onnx Attention-23 node, Q, K, V (1, 12, 128, 64),
             scale 1/8 (bench/make_attention_models.py's fused model)
  ms_mha     one com.microsoft.MultiHeadAttention node, num_heads 12, query,
             key, value (1, 128, 768) (already projected)
  encoder2_int8  encoder2 (the same weights and input) quantized the way ONNX
             Runtime's quantize_dynamic does (models/quantize_dynamic.py: int8
             weights per tensor, DynamicQuantizeLinear -> MatMulInteger ->
             Cast -> Mul); the reference is the float torch output, met
             within the int8 bound (atol 0.25), not 1e-3
  bert12     torch nn.TransformerEncoder, 12 layers, d_model 768, 12 heads,
             feed-forward 3072, GELU (exported as Erf), post-norm: BERT-base's
             encoder size; inputs x (1, 128, 768) and key_padding_mask bool
             (1, 128), True on the last 28 positions (padding); opset 17
  vit_patch  ViT-B/16's patch embedding: one Conv 3 -> 768, kernel 16,
             stride 16, with bias, on x (1, 3, 224, 224); opset 17
  w2v_conv   wav2vec2's first feature-extractor convs: Conv1d 1 -> 512,
             kernel 10, stride 5, then Relu, then Conv1d 512 -> 512, kernel 3,
             stride 2 (no biases, as in wav2vec2), on one second of 16 kHz
             audio x (1, 1, 16000); opset 17
  vit_b_16, swin_t, maxvit_t, wav2vec2_base, conformer_s
             the full-size real architectures of models/export_vision.py
             --full (torchvision / torchaudio, random weights, batch 1, 224x224
             images, one second of audio, 256 Conformer frames; torch
             reference); not in the default set (minutes to export)

  NAME.onnx                 the model
  NAME/in/INPUT.npy         its inputs (both runtimes read these files)
  NAME/ref/OUTPUT.npy       the reference outputs: torch (eager, float32) for
                            the torch exports, numpy float64 for the two
                            single-node models
  manifest.json             per model: file, inputs, outputs, description,
                            FLOPs (bench/onnx_flops.py)

The torch layers are copies of one layer (nn.TransformerEncoder deep-copies
it), so every parameter is re-drawn per layer: the models carry distinct
weights per layer, as a trained model does. torch 1.13 runs a fused "fast
path" for eval-mode encoders and attention when gradients are off, which
the exporter cannot trace: export and references run with gradients on.

Models already written by the same version of this script are kept (the
manifest records a hash of this file and of onnx_flops.py); --force rewrites.
"""
import argparse
import hashlib
import json
import math
import os
import sys

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import make_attention_models  # noqa: E402  (the Attention-23 model)
import onnx_flops  # noqa: E402

B, S, D, H, FF = 1, 128, 768, 12, 3072
PAD = 28  # padded positions at the end of bert12's sequence
ALL = ["encoder2", "mha", "attention23", "ms_mha", "bert12", "encoder2_int8", "vit_patch",
       "w2v_conv", "vit_b_16", "swin_t", "maxvit_t", "wav2vec2_base", "conformer_s"]
VISION = ("vit_b_16", "swin_t", "maxvit_t", "wav2vec2_base", "conformer_s")
# per-model comparison bounds other than bench/vs_ort_report.py's default
TOLERANCE = {"encoder2_int8": {"rtol": 0.0, "atol": 0.25}}


def save_npy(path, a):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    np.save(path, np.ascontiguousarray(a))


# ---- torch models -------------------------------------------------------------------


def _torch():
    import torch
    torch.set_num_threads(2)
    return torch


def _reinit(torch, module, seed):
    """Every parameter drawn afresh: matrices Xavier-uniform, biases small,
    LayerNorm scales near 1, so activations stay in range through 12 layers."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, p in module.named_parameters():
            if p.dim() > 1:
                bound = math.sqrt(6.0 / (p.shape[0] + p.shape[1]))
                p.copy_((torch.rand(p.shape, generator=g) * 2 - 1) * bound)
            elif "norm" in name and name.endswith("weight"):
                p.copy_(1 + 0.1 * (torch.rand(p.shape, generator=g) * 2 - 1))
            else:
                p.copy_(0.1 * (torch.rand(p.shape, generator=g) * 2 - 1))


def _export_torch(torch, model, args, in_names, out_dir, name):
    """Exports model(*args) and writes inputs and the eager reference."""
    path = os.path.join(out_dir, name + ".onnx")
    with torch.enable_grad():  # no fast path: see the module docstring
        torch.onnx.export(model, tuple(args), path, opset_version=17,
                          input_names=in_names, output_names=["y"], do_constant_folding=True)
        y = model(*args).detach().numpy()
    for n, a in zip(in_names, args):
        save_npy(os.path.join(out_dir, name, "in", n + ".npy"), a.numpy())
    save_npy(os.path.join(out_dir, name, "ref", "y.npy"), y)
    return path, in_names, ["y"]


def make_encoder(out_dir, name, layers, activation, with_mask, seed):
    torch = _torch()

    class Encoder(torch.nn.Module):
        def __init__(self):
            super().__init__()
            layer = torch.nn.TransformerEncoderLayer(D, H, dim_feedforward=FF, dropout=0.0,
                                                     activation=activation, batch_first=True)
            self.encoder = torch.nn.TransformerEncoder(layer, layers, enable_nested_tensor=False)

        def forward(self, x, key_padding_mask=None):
            return self.encoder(x, src_key_padding_mask=key_padding_mask)

    model = Encoder().eval()
    _reinit(torch, model, seed)
    x = torch.from_numpy(np.random.RandomState(seed + 1).standard_normal((B, S, D))
                         .astype(np.float32))
    args, names = [x], ["x"]
    if with_mask:
        mask = torch.zeros(B, S, dtype=torch.bool)
        mask[:, S - PAD:] = True
        args.append(mask)
        names.append("key_padding_mask")
    return _export_torch(torch, model, args, names, out_dir, name)


def make_encoder_int8(out_dir, name, layers, activation, seed):
    """make_encoder's model, quantized; its reference stays torch's float output."""
    sys.path.insert(0, os.path.join(HERE, "..", "models"))
    from quantize_dynamic import quantize_dynamic
    path, ins, outs = make_encoder(out_dir, name, layers, activation, False, seed)
    model, count = quantize_dynamic(onnx.load(path))
    if count != 3 * layers:  # in-projection, feed-forward; the out-projection is a Gemm
        sys.exit("vs_ort_models.py: %s: %d MatMuls quantized, expected %d"
                 % (name, count, 3 * layers))
    onnx.save(model, path)
    return path, ins, outs


def make_mha(out_dir, name, seed):
    torch = _torch()

    class SelfAttention(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.attn = torch.nn.MultiheadAttention(D, H, dropout=0.0, batch_first=True)

        def forward(self, x):
            return self.attn(x, x, x, need_weights=False)[0]

    model = SelfAttention().eval()
    _reinit(torch, model, seed)
    x = torch.from_numpy(np.random.RandomState(seed + 1).standard_normal((B, S, D))
                         .astype(np.float32))
    return _export_torch(torch, model, [x], ["x"], out_dir, name)


# ---- single-node models -----------------------------------------------------------


def _softmax_attention(q, k, v):
    """(..., S, d) float64 softmax(q k^T / sqrt(d)) v."""
    s = q @ np.swapaxes(k, -1, -2) / math.sqrt(q.shape[-1])
    s = np.exp(s - s.max(axis=-1, keepdims=True))
    return (s / s.sum(axis=-1, keepdims=True)) @ v


def make_attention23(out_dir, name, seed):
    path = os.path.join(out_dir, name + ".onnx")
    onnx.save(make_attention_models.fused(B, H, S, D // H), path)
    rs = np.random.RandomState(seed)
    qkv = [rs.standard_normal((B, H, S, D // H)).astype(np.float32) for _ in range(3)]
    for n, a in zip("QKV", qkv):
        save_npy(os.path.join(out_dir, name, "in", n + ".npy"), a)
    y = _softmax_attention(*(a.astype(np.float64) for a in qkv))
    save_npy(os.path.join(out_dir, name, "ref", "Y.npy"), y.astype(np.float32))
    return path, ["Q", "K", "V"], ["Y"]


def make_ms_mha(out_dir, name, seed):
    names = ["query", "key", "value"]
    vi = [helper.make_tensor_value_info(n, TensorProto.FLOAT, [B, S, D]) for n in names]
    node = helper.make_node("MultiHeadAttention", names, ["output"], name="mha",
                            domain="com.microsoft", num_heads=H)
    g = helper.make_graph([node], name, vi,
                          [helper.make_tensor_value_info("output", TensorProto.FLOAT, [B, S, D])])
    m = helper.make_model(g, opset_imports=[helper.make_opsetid("", 17),
                                            helper.make_opsetid("com.microsoft", 1)],
                          producer_name="qkv-bench")
    m.ir_version = 8
    path = os.path.join(out_dir, name + ".onnx")
    onnx.save(m, path)
    rs = np.random.RandomState(seed)
    qkv = [rs.standard_normal((B, S, D)).astype(np.float32) for _ in range(3)]
    for n, a in zip(names, qkv):
        save_npy(os.path.join(out_dir, name, "in", n + ".npy"), a)
    # (B, S, N*h) -> (B, N, S, h), attention per head, back to (B, S, N*h)
    heads = [a.astype(np.float64).reshape(B, S, H, D // H).transpose(0, 2, 1, 3) for a in qkv]
    y = _softmax_attention(*heads).transpose(0, 2, 1, 3).reshape(B, S, D)
    save_npy(os.path.join(out_dir, name, "ref", "output.npy"), y.astype(np.float32))
    return path, names, ["output"]


# ---- convolution front ends ---------------------------------------------------------


def _conv1d_ref(x, w, stride):
    """(C, L) float64 x, (M, C, K) w -> (M, Lout), no padding."""
    m, c, k = w.shape
    lout = (x.shape[1] - k) // stride + 1
    cols = np.stack([x[:, j:j + stride * (lout - 1) + 1:stride] for j in range(k)], axis=1)
    return np.einsum("mck,ckl->ml", w, cols)  # cols (C, K, Lout)


def _conv_model(name, x_shape, y_shape, convs, relu_between):
    """A chain of Conv nodes (weights as initializers) with Relu between."""
    nodes, inits, prev = [], [], "x"
    for i, (w, b, kw) in enumerate(convs):
        ins = [prev, "w%d" % i]
        inits.append(numpy_helper.from_array(w, "w%d" % i))
        if b is not None:
            inits.append(numpy_helper.from_array(b, "b%d" % i))
            ins.append("b%d" % i)
        out = "y" if i == len(convs) - 1 else "c%d" % i
        nodes.append(helper.make_node("Conv", ins, [out], name="conv%d" % i, **kw))
        if relu_between and out != "y":
            nodes.append(helper.make_node("Relu", [out], ["r%d" % i], name="relu%d" % i))
            out = "r%d" % i
        prev = out
    g = helper.make_graph(nodes, name,
                          [helper.make_tensor_value_info("x", TensorProto.FLOAT, x_shape)],
                          [helper.make_tensor_value_info("y", TensorProto.FLOAT, y_shape)], inits)
    m = helper.make_model(g, opset_imports=[helper.make_opsetid("", 17)],
                          producer_name="qkv-bench")
    m.ir_version = 8
    onnx.checker.check_model(m)
    return m


def make_vit_patch(out_dir, name, seed):
    rs = np.random.RandomState(seed)
    x = rs.standard_normal((1, 3, 224, 224)).astype(np.float32)
    w = (rs.standard_normal((768, 3, 16, 16)) / math.sqrt(3 * 256)).astype(np.float32)
    b = (0.1 * rs.standard_normal(768)).astype(np.float32)
    m = _conv_model(name, [1, 3, 224, 224], [1, 768, 14, 14], [(w, b, {"kernel_shape": [16, 16],
                                                    "strides": [16, 16]})], False)
    path = os.path.join(out_dir, name + ".onnx")
    onnx.save(m, path)
    save_npy(os.path.join(out_dir, name, "in", "x.npy"), x)
    # non-overlapping patches: (3, 14, 16, 14, 16) -> (14, 14, 3 * 16 * 16)
    patches = x[0].astype(np.float64).reshape(3, 14, 16, 14, 16).transpose(1, 3, 0, 2, 4)
    y = patches.reshape(196, 768) @ w.astype(np.float64).reshape(768, 768).T + b
    save_npy(os.path.join(out_dir, name, "ref", "y.npy"),
             y.T.reshape(1, 768, 14, 14).astype(np.float32))
    return path, ["x"], ["y"]


def make_w2v_conv(out_dir, name, seed):
    rs = np.random.RandomState(seed)
    x = rs.standard_normal((1, 1, 16000)).astype(np.float32)
    w0 = (rs.standard_normal((512, 1, 10)) / math.sqrt(10)).astype(np.float32)
    w1 = (rs.standard_normal((512, 512, 3)) / math.sqrt(512 * 3)).astype(np.float32)
    m = _conv_model(name, [1, 1, 16000], [1, 512, 1599],
                    [(w0, None, {"kernel_shape": [10], "strides": [5]}),
                     (w1, None, {"kernel_shape": [3], "strides": [2]})], True)
    path = os.path.join(out_dir, name + ".onnx")
    onnx.save(m, path)
    save_npy(os.path.join(out_dir, name, "in", "x.npy"), x)
    h = np.maximum(_conv1d_ref(x[0].astype(np.float64), w0.astype(np.float64), 5), 0)
    y = _conv1d_ref(h, w1.astype(np.float64), 2)
    save_npy(os.path.join(out_dir, name, "ref", "y.npy"), y[None].astype(np.float32))
    return path, ["x"], ["y"]


def make_vision(out_dir, name):
    """models/export_vision.py --full NAME, moved into this script's layout."""
    import shutil
    sys.path.insert(0, os.path.join(HERE, "..", "models"))
    import export_vision
    tmp = os.path.join(out_dir, name + ".export")
    export_vision.main([tmp, "--full", name])
    src = os.path.join(tmp, name)
    path = os.path.join(out_dir, name + ".onnx")
    shutil.move(os.path.join(src, "model.onnx"), path)
    graph = onnx.load(path, load_external_data=False).graph
    ins = [i.name for i in graph.input]
    outs = [o.name for o in graph.output]
    case = os.path.join(src, "test_data_set_0")
    for kind, names, prefix in (("in", ins, "in_"), ("ref", outs, "ref_")):
        for n in names:
            save_npy(os.path.join(out_dir, name, kind, n + ".npy"),
                     np.load(os.path.join(case, prefix + n + ".npy")))
    shutil.rmtree(tmp)
    return path, ins, outs


MAKERS = {
    "encoder2": ("torch nn.TransformerEncoder, 2 layers, d 768, 12 heads, ff 3072, ReLU",
                 lambda o, n: make_encoder(o, n, 2, "relu", False, 10)),
    "mha": ("torch nn.MultiheadAttention d 768, 12 heads, self-attention",
            lambda o, n: make_mha(o, n, 20)),
    "attention23": ("ONNX Attention-23 node, Q/K/V (1, 12, 128, 64)",
                    lambda o, n: make_attention23(o, n, 30)),
    "ms_mha": ("com.microsoft.MultiHeadAttention, q/k/v (1, 128, 768), 12 heads",
               lambda o, n: make_ms_mha(o, n, 40)),
    "encoder2_int8": ("encoder2 quantized as ORT's quantize_dynamic does (int8 weights, "
                      "uint8 dynamic activations)",
                      lambda o, n: make_encoder_int8(o, n, 2, "relu", 10)),
    "bert12": ("torch nn.TransformerEncoder, 12 layers, d 768, 12 heads, ff 3072, GELU, "
               "key padding mask (28 of 128 padded)",
               lambda o, n: make_encoder(o, n, 12, "gelu", True, 50)),
    "vit_patch": ("ViT-B/16 patch embedding: Conv 3 -> 768, k16 s16, x (1, 3, 224, 224)",
                  lambda o, n: make_vit_patch(o, n, 60)),
    "w2v_conv": ("wav2vec2 feature extractor convs: Conv1d 1 -> 512 k10 s5, Relu, "
                 "512 -> 512 k3 s2, x (1, 1, 16000)",
                 lambda o, n: make_w2v_conv(o, n, 70)),
    "vit_b_16": ("torchvision vit_b_16, x (1, 3, 224, 224)", make_vision),
    "swin_t": ("torchvision swin_t, x (1, 3, 224, 224)", make_vision),
    "maxvit_t": ("torchvision maxvit_t, x (1, 3, 224, 224)", make_vision),
    "wav2vec2_base": ("torchaudio wav2vec2_base, one second of 16 kHz audio x (1, 16000)",
                      make_vision),
    "conformer_s": ("torchaudio Conformer, width 144, 4 heads, ffn 576, 16 layers, kernel 31, "
                    "x (1, 256, 144), lengths (1,)", make_vision),
}


def _version():
    h = hashlib.sha256()
    for f in ("vs_ort_models.py", "onnx_flops.py", "make_attention_models.py",
              "../models/quantize_dynamic.py", "../models/export_vision.py"):
        with open(os.path.join(HERE, f), "rb") as fh:
            h.update(fh.read())
    return h.hexdigest()[:16]


def _complete(out_dir, entry):
    files = [entry["model"]] + list(entry["inputs"].values()) + list(entry["refs"].values())
    return all(os.path.exists(os.path.join(out_dir, f)) for f in files)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("out_dir")
    ap.add_argument("--models", default=",".join(n for n in ALL if n not in VISION),
                    help="comma-separated subset of %s" % ",".join(ALL))
    ap.add_argument("--force", action="store_true", help="rewrite models that exist")
    a = ap.parse_args()
    names = [n for n in a.models.split(",") if n]
    bad = [n for n in names if n not in MAKERS]
    if bad or not names:
        ap.error("unknown model(s) %s (known: %s)" % (", ".join(bad) or "''", ", ".join(ALL)))
    os.makedirs(a.out_dir, exist_ok=True)
    mpath = os.path.join(a.out_dir, "manifest.json")
    version = _version()
    manifest = {}
    if os.path.exists(mpath):
        with open(mpath) as f:
            old = json.load(f)
        if old.get("version") == version:
            manifest = old.get("models", {})
    for n in names:
        if not a.force and n in manifest and _complete(a.out_dir, manifest[n]):
            print("%s: kept %s" % (n, manifest[n]["model"]))
            continue
        desc, make = MAKERS[n]
        path, ins, outs = make(a.out_dir, n)
        try:
            flops, _ = onnx_flops.count(onnx.load(path))
        except onnx_flops.FlopError as e:
            sys.exit("vs_ort_models.py: %s: %s" % (path, e))
        manifest[n] = {
            "description": desc,
            "model": os.path.basename(path),
            "inputs": {i: os.path.join(n, "in", i + ".npy") for i in ins},
            "refs": {o: os.path.join(n, "ref", o + ".npy") for o in outs},
            "flops": flops,
        }
        manifest[n].update(TOLERANCE.get(n, {}))
        with open(mpath, "w") as f:  # after each model: a failure keeps the others
            json.dump({"version": version, "models": manifest}, f, indent=1)
        print("%s: wrote %s (%.3f GFLOP per run)" % (n, path, flops / 1e9))
    with open(mpath, "w") as f:
        json.dump({"version": version, "models": manifest}, f, indent=1)


if __name__ == "__main__":
    main()
