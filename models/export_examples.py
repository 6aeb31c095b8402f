#!/usr/bin/env python3
"""Exports the example attention models as ONNX backend test directories.

Usage: /usr/bin/python3 models/export_examples.py OUTDIR [NAME...]

For each model NAME this writes OUTDIR/NAME/model.onnx and, for every input
shape case, OUTDIR/NAME/test_data_set_K/{input_*.pb,output_*.pb} holding
inputs and the reference outputs computed by PyTorch in eager mode (numpy
for keras_attention) — the layout `qkv test` reads. Deterministic (fixed
seeds); nothing here is committed as binaries.

Every model has dynamic batch and sequence axes and two data sets that
differ in both. Models:
  mha              nn.MultiheadAttention (embed 64, 4 heads, batch_first)
                   self-attention with a key padding mask; outputs the
                   attention output and the head-averaged attention weights.
                   Opset 14; (batch 2, seq 10) and (batch 3, seq 17).
  encoder          nn.TransformerEncoder, 2 layers, d_model 64, 4 heads,
                   batch_first, src_key_padding_mask. Opset 13; as mha.
  vit              ViT-style block on [batch, 3, H, W] images: 4x4 patches cut
                   with Reshape/Transpose (no Conv), Linear embedding, class
                   token, sliced positional embeddings, LayerNorm, attention
                   written out (q/k/v Linear, reshape, transpose, matmul,
                   softmax), GELU MLP, classifier. Opset 17 (LayerNormalization);
                   (2, 3, 16, 16) -> 17 tokens and (3, 3, 8, 12) -> 7 tokens.
  gpt2             GPT-2-style causal decoder on int64 input_ids [batch, seq]:
                   embeddings, 2 blocks with a causal mask sliced from a tril
                   buffer, tanh GELU, LM head tied to the embedding. Opset 14;
                   (batch 2, seq 8) and (batch 3, seq 21).
  keras_attention  a Keras self-attention layer as tf2onnx emits it, built with
                   onnx.helper: a packed (3, d_in, d_out) kernel cut per q/k/v,
                   MatMuls, Transpose, batch MatMul, Div by sqrt(d), Softmax.
                   Opset 13; numpy references; (2, 12) and (5, 7).

models/export_variants.py is a wider sweep of export patterns (by hand).
"""
import math
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


# ---- TransformerEncoder --------------------------------------------------------------


class Encoder(torch.nn.Module):
    def __init__(self):
        super().__init__()
        layer = torch.nn.TransformerEncoderLayer(64, 4, dim_feedforward=128, dropout=0.0,
                                                 batch_first=True)
        self.encoder = torch.nn.TransformerEncoder(layer, 2, enable_nested_tensor=False)

    def forward(self, x, key_padding_mask):
        return self.encoder(x, src_key_padding_mask=key_padding_mask)


def export_encoder(out):
    """nn.TransformerEncoder, 2 layers, d_model 64, 4 heads, opset 13."""
    torch.manual_seed(0)
    gen = torch.Generator().manual_seed(2)
    model = Encoder().eval()
    model_dir = os.path.join(out, "encoder")
    os.makedirs(model_dir, exist_ok=True)
    x = torch.randn(2, 10, 64, generator=gen)
    mask = padding_mask(2, 10, gen)
    # torch 1.13 takes a "fast path" (a fused kernel the exporter cannot
    # trace) for an eval-mode encoder when gradients are off: export, and
    # compute the references, with gradients on so the plain modules run.
    with torch.enable_grad():
        torch.onnx.export(
            model, (x, mask), os.path.join(model_dir, "model.onnx"), opset_version=13,
            input_names=["x", "key_padding_mask"], output_names=["y"],
            dynamic_axes={"x": {0: "batch", 1: "seq"}, "key_padding_mask": {0: "batch", 1: "seq"},
                          "y": {0: "batch", 1: "seq"}})
        for k, (batch, seq) in enumerate(((2, 10), (3, 17))):
            x = torch.randn(batch, seq, 64, generator=gen)
            mask = padding_mask(batch, seq, gen)
            y = model(x, mask).detach()
            save_case(model_dir, k, [("x", x.numpy()), ("key_padding_mask", mask.numpy())],
                      [("y", y.numpy())])


# ---- ViT-style block ---------------------------------------------------------------


class ViTBlock(torch.nn.Module):
    """Patches cut with Reshape/Transpose (no Conv), a class token, positional
    embeddings sliced to the patch count, one pre-norm block with attention
    written out by hand and a GELU MLP, a classifier on the class token."""

    def __init__(self, channels=3, patch=4, dim=64, heads=4, max_patches=64, classes=10):
        super().__init__()
        self.patch, self.dim, self.heads = patch, dim, heads
        self.embed = torch.nn.Linear(channels * patch * patch, dim)
        self.cls = torch.nn.Parameter(torch.randn(1, 1, dim) * 0.02)
        self.pos = torch.nn.Parameter(torch.randn(1, max_patches + 1, dim) * 0.02)
        self.norm1 = torch.nn.LayerNorm(dim)
        self.q = torch.nn.Linear(dim, dim)
        self.k = torch.nn.Linear(dim, dim)
        self.v = torch.nn.Linear(dim, dim)
        self.proj = torch.nn.Linear(dim, dim)
        self.norm2 = torch.nn.LayerNorm(dim)
        self.fc1 = torch.nn.Linear(dim, 4 * dim)
        self.fc2 = torch.nn.Linear(4 * dim, dim)
        self.norm = torch.nn.LayerNorm(dim)
        self.head = torch.nn.Linear(dim, classes)

    def forward(self, img):
        b, c, h, w = img.shape
        p = self.patch
        x = img.reshape(b, c, h // p, p, w // p, p).permute(0, 2, 4, 1, 3, 5)
        x = self.embed(x.reshape(b, (h // p) * (w // p), c * p * p))  # (b, n, dim)
        x = torch.cat([self.cls.expand(b, -1, -1), x], dim=1)
        n = x.shape[1]
        x = x + self.pos[:, :n]
        hd = self.dim // self.heads
        t = self.norm1(x)
        q = self.q(t).reshape(b, n, self.heads, hd).transpose(1, 2)  # (b, heads, n, hd)
        k = self.k(t).reshape(b, n, self.heads, hd).transpose(1, 2)
        v = self.v(t).reshape(b, n, self.heads, hd).transpose(1, 2)
        att = torch.softmax(q @ k.transpose(-2, -1) / math.sqrt(hd), dim=-1)  # (b, heads, n, n)
        x = x + self.proj((att @ v).transpose(1, 2).reshape(b, n, self.dim))
        x = x + self.fc2(torch.nn.functional.gelu(self.fc1(self.norm2(x))))
        x = self.norm(x)
        return x, self.head(x[:, 0])


def export_vit(out):
    """ViT-style block on [batch, 3, H, W] images, opset 17 (LayerNormalization)."""
    torch.manual_seed(0)
    gen = torch.Generator().manual_seed(3)
    model = ViTBlock().eval()
    model_dir = os.path.join(out, "vit")
    os.makedirs(model_dir, exist_ok=True)
    img = torch.randn(2, 3, 16, 16, generator=gen)
    torch.onnx.export(
        model, (img,), os.path.join(model_dir, "model.onnx"), opset_version=17,
        input_names=["image"], output_names=["tokens", "logits"],
        dynamic_axes={"image": {0: "batch", 2: "height", 3: "width"},
                      "tokens": {0: "batch", 1: "tokens"}, "logits": {0: "batch"}})
    # (batch 2, 16x16 -> 16 patches + class token), (batch 3, 8x12 -> 6 + 1)
    for k, (batch, h, w) in enumerate(((2, 16, 16), (3, 8, 12))):
        img = torch.randn(batch, 3, h, w, generator=gen)
        with torch.no_grad():
            tokens, logits = model(img)
        save_case(model_dir, k, [("image", img.numpy())],
                  [("tokens", tokens.numpy()), ("logits", logits.numpy())])


# ---- GPT-2-style decoder -----------------------------------------------------------


class GPTBlock(torch.nn.Module):
    def __init__(self, dim, heads, n_ctx):
        super().__init__()
        self.dim, self.heads = dim, heads
        self.ln_1 = torch.nn.LayerNorm(dim)
        self.c_attn = torch.nn.Linear(dim, 3 * dim)
        self.c_proj = torch.nn.Linear(dim, dim)
        self.ln_2 = torch.nn.LayerNorm(dim)
        self.c_fc = torch.nn.Linear(dim, 4 * dim)
        self.mlp_proj = torch.nn.Linear(4 * dim, dim)
        self.register_buffer("bias", torch.tril(torch.ones(n_ctx, n_ctx, dtype=torch.bool))
                             .view(1, 1, n_ctx, n_ctx))

    def forward(self, x):
        b, t, _ = x.shape
        hd = self.dim // self.heads
        q, k, v = self.c_attn(self.ln_1(x)).split(self.dim, dim=2)
        q = q.view(b, t, self.heads, hd).transpose(1, 2)  # (b, heads, t, hd)
        k = k.view(b, t, self.heads, hd).transpose(1, 2)
        v = v.view(b, t, self.heads, hd).transpose(1, 2)
        att = torch.matmul(q, k.transpose(-1, -2)) / math.sqrt(hd)  # (b, heads, t, t)
        causal = self.bias[:, :, :t, :t]
        att = torch.where(causal, att, torch.tensor(torch.finfo(att.dtype).min))
        att = torch.softmax(att, dim=-1)
        y = torch.matmul(att, v).transpose(1, 2).contiguous().view(b, t, self.dim)
        x = x + self.c_proj(y)
        h = torch.nn.functional.gelu(self.c_fc(self.ln_2(x)), approximate="tanh")
        return x + self.mlp_proj(h)


class GPT(torch.nn.Module):
    def __init__(self, vocab=96, n_ctx=64, dim=64, heads=4, layers=2):
        super().__init__()
        self.wte = torch.nn.Embedding(vocab, dim)
        self.wpe = torch.nn.Embedding(n_ctx, dim)
        self.blocks = torch.nn.ModuleList(GPTBlock(dim, heads, n_ctx) for _ in range(layers))
        self.ln_f = torch.nn.LayerNorm(dim)
        self.lm_head = torch.nn.Linear(dim, vocab, bias=False)
        self.lm_head.weight = self.wte.weight  # tied, as in GPT-2

    def forward(self, input_ids):
        t = input_ids.shape[1]
        pos = torch.arange(0, t, dtype=torch.long, device=input_ids.device).unsqueeze(0)
        x = self.wte(input_ids) + self.wpe(pos)
        for block in self.blocks:
            x = block(x)
        return self.lm_head(self.ln_f(x))


def export_gpt2(out):
    """GPT-2-style causal decoder on int64 input_ids [batch, seq], opset 14."""
    torch.manual_seed(0)
    gen = torch.Generator().manual_seed(4)
    model = GPT().eval()
    model_dir = os.path.join(out, "gpt2")
    os.makedirs(model_dir, exist_ok=True)
    ids = torch.randint(0, 96, (2, 8), generator=gen)
    torch.onnx.export(
        model, (ids,), os.path.join(model_dir, "model.onnx"), opset_version=14,
        input_names=["input_ids"], output_names=["logits"],
        dynamic_axes={"input_ids": {0: "batch", 1: "seq"}, "logits": {0: "batch", 1: "seq"}})
    for k, (batch, seq) in enumerate(((2, 8), (3, 21))):
        ids = torch.randint(0, 96, (batch, seq), generator=gen)
        with torch.no_grad():
            logits = model(ids)
        save_case(model_dir, k, [("input_ids", ids.numpy())], [("logits", logits.numpy())])


# ---- Keras self-attention as tf2onnx emits it -----------------------------------------


def keras_attention_reference(x, kernel):
    """numpy: softmax(q k^T / sqrt(d)) v with q, k, v = x @ kernel[0..2]; float64 math."""
    x64, w64 = x.astype(np.float64), kernel.astype(np.float64)
    q, k, v = (x64 @ w64[i] for i in range(3))  # (batch, seq, d_out)
    s = q @ k.transpose(0, 2, 1) / np.sqrt(w64.shape[2])  # (batch, seq, seq)
    e = np.exp(s - s.max(axis=-1, keepdims=True))
    return ((e / e.sum(axis=-1, keepdims=True)) @ v).astype(np.float32)


def export_keras_attention(out):
    """A Keras custom self-attention layer (kernel of shape (3, d_in, d_out))
    as tf2onnx converts it, opset 13: the packed kernel cut per q/k/v (a Gather
    for q, Slice + Squeeze for k and v), three MatMuls, a Transpose of k, a
    batch MatMul, Div by sqrt(d_out), Softmax, MatMul. Names carry tf2onnx's
    ':0' suffixes. References come from numpy."""
    from onnx import TensorProto, helper
    rng = np.random.default_rng(5)
    d_in, d_out = 32, 16
    kernel = (rng.standard_normal((3, d_in, d_out)) / np.sqrt(d_in)).astype(np.float32)
    pre = "model/self_attention/"
    inits = [
        numpy_helper.from_array(kernel, pre + "kernel:0"),
        numpy_helper.from_array(np.array(0, np.int64), "const_zero"),
        numpy_helper.from_array(np.array([1], np.int64), "const_starts_k"),
        numpy_helper.from_array(np.array([2], np.int64), "const_ends_k"),
        numpy_helper.from_array(np.array([3], np.int64), "const_ends_v"),
        numpy_helper.from_array(np.array([0], np.int64), "const_axes"),
        numpy_helper.from_array(np.array(np.sqrt(d_out), np.float32), pre + "truediv/y:0"),
    ]
    nodes = [
        helper.make_node("Identity", ["input_1:0"], [pre + "x:0"], name=pre + "Identity"),
        helper.make_node("Gather", [pre + "kernel:0", "const_zero"], [pre + "wq:0"],
                         name=pre + "strided_slice", axis=0),
        helper.make_node("Slice", [pre + "kernel:0", "const_starts_k", "const_ends_k",
                                   "const_axes"], [pre + "wk3:0"], name=pre + "strided_slice_1"),
        helper.make_node("Squeeze", [pre + "wk3:0", "const_axes"], [pre + "wk:0"],
                         name=pre + "strided_slice_1__squeeze"),
        helper.make_node("Slice", [pre + "kernel:0", "const_ends_k", "const_ends_v",
                                   "const_axes"], [pre + "wv3:0"], name=pre + "strided_slice_2"),
        helper.make_node("Squeeze", [pre + "wv3:0", "const_axes"], [pre + "wv:0"],
                         name=pre + "strided_slice_2__squeeze"),
        helper.make_node("MatMul", [pre + "x:0", pre + "wq:0"], [pre + "q:0"], name=pre + "MatMul"),
        helper.make_node("MatMul", [pre + "x:0", pre + "wk:0"], [pre + "k:0"],
                         name=pre + "MatMul_1"),
        helper.make_node("MatMul", [pre + "x:0", pre + "wv:0"], [pre + "v:0"],
                         name=pre + "MatMul_2"),
        helper.make_node("Transpose", [pre + "k:0"], [pre + "transpose:0"],
                         name=pre + "transpose", perm=[0, 2, 1]),
        helper.make_node("MatMul", [pre + "q:0", pre + "transpose:0"], [pre + "MatMul_3:0"],
                         name=pre + "MatMul_3"),
        helper.make_node("Div", [pre + "MatMul_3:0", pre + "truediv/y:0"], [pre + "truediv:0"],
                         name=pre + "truediv"),
        helper.make_node("Softmax", [pre + "truediv:0"], [pre + "Softmax:0"], name=pre + "Softmax",
                         axis=-1),
        helper.make_node("MatMul", [pre + "Softmax:0", pre + "v:0"], ["self_attention"],
                         name=pre + "MatMul_4"),
    ]
    graph = helper.make_graph(
        nodes, "tf2onnx",
        [helper.make_tensor_value_info("input_1:0", TensorProto.FLOAT,
                                       ["unk__6", "unk__7", d_in])],
        [helper.make_tensor_value_info("self_attention", TensorProto.FLOAT,
                                       ["unk__8", "unk__9", d_out])],
        inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)],
                              producer_name="tf2onnx", producer_version="1.13.0")
    onnx.checker.check_model(model)
    model_dir = os.path.join(out, "keras_attention")
    os.makedirs(model_dir, exist_ok=True)
    onnx.save(model, os.path.join(model_dir, "model.onnx"))
    for k, (batch, seq) in enumerate(((2, 12), (5, 7))):
        x = rng.standard_normal((batch, seq, d_in)).astype(np.float32)
        save_case(model_dir, k, [("input_1:0", x)],
                  [("self_attention", keras_attention_reference(x, kernel))])


EXPORTERS = {"mha": export_mha, "encoder": export_encoder, "vit": export_vit, "gpt2": export_gpt2,
             "keras_attention": export_keras_attention}


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
