#!/usr/bin/env python3
"""A wider sweep of attention export patterns, for checking qkv by hand.

Usage: /usr/bin/python3 models/export_variants.py OUTDIR [NAME...]
       build/qkv test --rtol 1e-4 --atol 1e-5 OUTDIR

Not run by ctest (about 40 s of exporting): the CI set is
models/export_examples.py. Each variant is exported at several opsets to
OUTDIR/<name>_op<N>/ as an ONNX backend test directory with data sets at
(batch, seq) = (2, 10), (3, 17), (1, 1), (1, 5); references are PyTorch
eager (numpy for the tf2onnx graphs). Deterministic.

Variants (NAME):
  mha            nn.MultiheadAttention + key padding mask, averaged weights
  mha_per_head   the same, average_attn_weights=False (weights per head)
  mha_no_weights need_weights=False
  mha_bias_kv    add_bias_kv and add_zero_attn
  mha_causal     float (-inf) and bool causal attn_mask (Trilu: opset >= 14)
  mha_seq_first  batch_first=False, transposed around the module
  cross          cross-attention, kdim/vdim != embed_dim, other key length
  encoder        TransformerEncoder + final LayerNorm; also gelu/norm_first
  decoder        TransformerDecoder: causal tgt_mask + memory padding mask
  bert           BERT-style layer: 3 embeddings, extended additive mask,
                 attention probabilities as a 2nd output
  gpt_past       GPT-2-style layer with a KV cache (past length 0 and 7):
                 Concat of past and new keys, causal mask sliced [p:p+t]
  no_folding     encoder and bert exported with do_constant_folding=False
  init_inputs    encoder and bert with keep_initializers_as_inputs=True
  keras_mha      Keras MultiHeadAttention as tf2onnx emits it (Einsum)
"""
import math
import os
import sys
import warnings

import numpy as np
import onnx
import torch
from onnx import TensorProto, helper, numpy_helper

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from export_examples import padding_mask, save_case  # noqa: E402

SHAPES = ((2, 10), (3, 17), (1, 1), (1, 5))
OPSETS = (13, 14, 15, 16, 17)


def export(out, name, model, make_inputs, in_names, out_names, dyn, opset, grad=False, **kw):
    """Exports model at opset and writes a data set per SHAPES entry.

    grad: export and run with gradients on, which keeps torch 1.13 off the
    fused "fast paths" of nn.MultiheadAttention / TransformerEncoderLayer
    that the exporter cannot trace."""
    model_dir = os.path.join(out, f"{name}_op{opset}")
    os.makedirs(model_dir, exist_ok=True)
    gen = torch.Generator().manual_seed(7)
    with torch.set_grad_enabled(grad):
        torch.onnx.export(model, make_inputs(2, 10, gen), os.path.join(model_dir, "model.onnx"),
                          opset_version=opset, input_names=in_names, output_names=out_names,
                          dynamic_axes=dyn, **kw)
        for k, (batch, seq) in enumerate(SHAPES):
            args = make_inputs(batch, seq, gen)
            outs = model(*args)
            outs = outs if isinstance(outs, tuple) else (outs,)
            save_case(model_dir, k, [(n, a.numpy()) for n, a in zip(in_names, args)],
                      [(n, o.detach().numpy()) for n, o in zip(out_names, outs)])


def batch_seq(*names, **extra):
    axes = {n: {0: "batch", 1: "seq"} for n in names}
    axes.update(extra)
    return axes


def x_and_mask(batch, seq, gen):
    return torch.randn(batch, seq, 64, generator=gen), padding_mask(batch, seq, gen)


def x_only(batch, seq, gen):
    return (torch.randn(batch, seq, 64, generator=gen),)


def bert_inputs(batch, seq, gen):
    return (torch.randint(0, 50, (batch, seq), generator=gen),
            (~padding_mask(batch, seq, gen)).long(),
            torch.randint(0, 2, (batch, seq), generator=gen))


# ---- modules ----------------------------------------------------------------------


class MHA(torch.nn.Module):
    def __init__(self, need_weights=True, average=True, **kw):
        super().__init__()
        self.need_weights, self.average = need_weights, average
        self.attn = torch.nn.MultiheadAttention(64, 4, batch_first=True, **kw)

    def forward(self, x, mask):
        out = self.attn(x, x, x, key_padding_mask=mask, need_weights=self.need_weights,
                        average_attn_weights=self.average)
        return out if self.need_weights else out[0]


class MHACausal(torch.nn.Module):
    def __init__(self, bool_mask):
        super().__init__()
        self.attn = torch.nn.MultiheadAttention(64, 4, batch_first=True)
        self.bool_mask = bool_mask

    def forward(self, x):
        t = x.shape[1]
        if self.bool_mask:
            mask = torch.triu(torch.ones(t, t, dtype=torch.bool), diagonal=1)
        else:
            mask = torch.nn.Transformer.generate_square_subsequent_mask(t)
        return self.attn(x, x, x, attn_mask=mask, need_weights=False)[0]


class MHASeqFirst(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.attn = torch.nn.MultiheadAttention(64, 4)

    def forward(self, x, mask):
        t = x.transpose(0, 1)  # (seq, batch, embed)
        y, w = self.attn(t, t, t, key_padding_mask=mask)
        return y.transpose(0, 1), w


class Cross(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.attn = torch.nn.MultiheadAttention(64, 4, batch_first=True, kdim=32, vdim=48)

    def forward(self, q, k, v, mask):
        return self.attn(q, k, v, key_padding_mask=mask)


class Encoder(torch.nn.Module):
    def __init__(self, **kw):
        super().__init__()
        layer = torch.nn.TransformerEncoderLayer(64, 4, dim_feedforward=128, dropout=0.0,
                                                 batch_first=True, **kw)
        self.enc = torch.nn.TransformerEncoder(layer, 2, enable_nested_tensor=False,
                                               norm=torch.nn.LayerNorm(64))

    def forward(self, x, mask):
        return self.enc(x, src_key_padding_mask=mask)


class Decoder(torch.nn.Module):
    def __init__(self):
        super().__init__()
        layer = torch.nn.TransformerDecoderLayer(64, 4, dim_feedforward=128, dropout=0.0,
                                                 batch_first=True)
        self.dec = torch.nn.TransformerDecoder(layer, 2)

    def forward(self, x, memory, memory_mask):
        causal = torch.nn.Transformer.generate_square_subsequent_mask(x.shape[1])
        return self.dec(x, memory, tgt_mask=causal, memory_key_padding_mask=memory_mask)


class Bert(torch.nn.Module):
    def __init__(self, vocab=50, dim=64, heads=4):
        super().__init__()
        self.dim, self.heads = dim, heads
        self.word = torch.nn.Embedding(vocab, dim)
        self.position = torch.nn.Embedding(64, dim)
        self.token_type = torch.nn.Embedding(2, dim)
        self.ln = torch.nn.LayerNorm(dim, eps=1e-12)
        self.qkv = torch.nn.Linear(dim, 3 * dim)
        self.out = torch.nn.Linear(dim, dim)
        self.ln2 = torch.nn.LayerNorm(dim, eps=1e-12)
        self.fc1 = torch.nn.Linear(dim, 128)
        self.fc2 = torch.nn.Linear(128, dim)
        self.register_buffer("position_ids", torch.arange(64).expand((1, -1)))

    def forward(self, ids, attention_mask, token_type_ids):
        b, t = ids.shape
        x = self.ln(self.word(ids) + self.position(self.position_ids[:, :t]) +
                    self.token_type(token_type_ids))
        ext = (1.0 - attention_mask[:, None, None, :].to(torch.float32)) * \
            torch.finfo(torch.float32).min
        hd = self.dim // self.heads
        q, k, v = self.qkv(x).chunk(3, dim=-1)

        def heads(z):
            return z.view(b, -1, self.heads, hd).permute(0, 2, 1, 3)
        s = torch.matmul(heads(q), heads(k).transpose(-1, -2)) / math.sqrt(hd) + ext
        p = torch.nn.functional.softmax(s, dim=-1)
        c = torch.matmul(p, heads(v)).permute(0, 2, 1, 3).contiguous()
        x = self.ln2(x + self.out(c.view(c.size()[:-2] + (self.dim,))))
        return x + self.fc2(torch.nn.functional.gelu(self.fc1(x))), p


class GPTPast(torch.nn.Module):
    """One GPT-2 (HF-style) layer with past keys/values, uint8 causal buffer."""

    def __init__(self, dim=64, heads=4, n_ctx=64, vocab=96):
        super().__init__()
        self.dim, self.heads = dim, heads
        self.wte = torch.nn.Embedding(vocab, dim)
        self.wpe = torch.nn.Embedding(n_ctx, dim)
        self.ln_1 = torch.nn.LayerNorm(dim)
        self.c_attn = torch.nn.Linear(dim, 3 * dim)
        self.c_proj = torch.nn.Linear(dim, dim)
        self.register_buffer("bias", torch.tril(torch.ones(n_ctx, n_ctx, dtype=torch.uint8))
                             .view(1, 1, n_ctx, n_ctx))
        self.register_buffer("masked_bias", torch.tensor(-1e4))

    def forward(self, ids, past_k, past_v):
        b, t = ids.shape
        p = past_k.shape[2]
        x = self.wte(ids) + self.wpe(torch.arange(p, p + t, dtype=torch.long).unsqueeze(0))
        hd = self.dim // self.heads
        q, k, v = self.c_attn(self.ln_1(x)).split(self.dim, dim=2)
        q = q.view(b, t, self.heads, hd).transpose(1, 2)
        k = torch.cat((past_k, k.view(b, t, self.heads, hd).transpose(1, 2)), dim=-2)
        v = torch.cat((past_v, v.view(b, t, self.heads, hd).transpose(1, 2)), dim=-2)
        w = torch.matmul(q, k.transpose(-1, -2)) / (float(v.size(-1)) ** 0.5)
        nd, ns = w.size(-2), w.size(-1)
        w = torch.where(self.bias[:, :, ns - nd:ns, :ns].bool(), w, self.masked_bias.to(w.dtype))
        y = torch.matmul(torch.softmax(w, dim=-1), v).transpose(1, 2).contiguous()
        return x + self.c_proj(y.view(b, t, self.dim)), k, v


# ---- variants ----------------------------------------------------------------------

W_AXES = {0: "batch", 1: "seq", 2: "seq_k"}


def v_mha(out):
    for op in OPSETS:
        export(out, "mha", MHA().eval(), x_and_mask, ["x", "m"], ["y", "w"],
               batch_seq("x", "m", "y", w=W_AXES), op, grad=True)


def v_mha_per_head(out):
    for op in OPSETS:
        export(out, "mha_per_head", MHA(average=False).eval(), x_and_mask, ["x", "m"],
               ["y", "w"], batch_seq("x", "m", "y", w={0: "batch", 2: "seq", 3: "seq_k"}), op,
               grad=True)


def v_mha_no_weights(out):
    for op in OPSETS:
        export(out, "mha_no_weights", MHA(need_weights=False).eval(), x_and_mask, ["x", "m"],
               ["y"], batch_seq("x", "m", "y"), op, grad=True)


def v_mha_bias_kv(out):
    for op in OPSETS:
        export(out, "mha_bias_kv", MHA(add_bias_kv=True, add_zero_attn=True).eval(), x_and_mask,
               ["x", "m"], ["y", "w"], batch_seq("x", "m", "y", w=W_AXES), op)


def v_mha_causal(out):
    for op in OPSETS[1:]:  # torch.triu exports from opset 14 (Trilu)
        for kind, bool_mask in (("float", False), ("bool", True)):
            export(out, f"mha_causal_{kind}", MHACausal(bool_mask).eval(), x_only, ["x"], ["y"],
                   batch_seq("x", "y"), op)


def v_mha_seq_first(out):
    for op in OPSETS:
        export(out, "mha_seq_first", MHASeqFirst().eval(), x_and_mask, ["x", "m"], ["y", "w"],
               batch_seq("x", "m", "y", w=W_AXES), op)


def v_cross(out):
    def inputs(batch, seq, gen):
        return (torch.randn(batch, seq, 64, generator=gen),
                torch.randn(batch, seq + 3, 32, generator=gen),
                torch.randn(batch, seq + 3, 48, generator=gen), padding_mask(batch, seq + 3, gen))
    axes = {"q": {0: "b", 1: "t"}, "k": {0: "b", 1: "s"}, "v": {0: "b", 1: "s"},
            "m": {0: "b", 1: "s"}, "y": {0: "b", 1: "t"}, "w": {0: "b", 1: "t", 2: "s"}}
    for op in OPSETS:
        export(out, "cross", Cross().eval(), inputs, ["q", "k", "v", "m"], ["y", "w"], axes, op)


def v_encoder(out):
    for op in OPSETS:
        export(out, "encoder", Encoder().eval(), x_and_mask, ["x", "m"], ["y"],
               batch_seq("x", "m", "y"), op, grad=True)
        export(out, "encoder_gelu_norm_first", Encoder(activation="gelu", norm_first=True).eval(),
               x_and_mask, ["x", "m"], ["y"], batch_seq("x", "m", "y"), op, grad=True)


def v_decoder(out):
    def inputs(batch, seq, gen):
        return (torch.randn(batch, seq, 64, generator=gen),
                torch.randn(batch, seq + 2, 64, generator=gen), padding_mask(batch, seq + 2, gen))
    axes = {"x": {0: "b", 1: "t"}, "memory": {0: "b", 1: "s"}, "m": {0: "b", 1: "s"},
            "y": {0: "b", 1: "t"}}
    for op in OPSETS[1:]:  # Trilu
        export(out, "decoder", Decoder().eval(), inputs, ["x", "memory", "m"], ["y"], axes, op,
               grad=True)


def v_bert(out):
    for op in OPSETS:
        export(out, "bert", Bert().eval(), bert_inputs, ["ids", "am", "tt"], ["y", "p"],
               batch_seq("ids", "am", "tt", "y", p={0: "batch", 2: "seq", 3: "seq_k"}), op)


def v_gpt_past(out):
    def inputs(past):
        def make(batch, seq, gen):
            return (torch.randint(0, 96, (batch, seq), generator=gen),
                    torch.randn(batch, 4, past, 16, generator=gen),
                    torch.randn(batch, 4, past, 16, generator=gen))
        return make
    axes = {"ids": {0: "b", 1: "t"}, "pk": {0: "b", 2: "p"}, "pv": {0: "b", 2: "p"},
            "y": {0: "b", 1: "t"}, "k": {0: "b", 2: "pt"}, "v": {0: "b", 2: "pt"}}
    for op in (13, 14, 17):
        for past in (0, 7):
            export(out, f"gpt_past{past}", GPTPast().eval(), inputs(past), ["ids", "pk", "pv"],
                   ["y", "k", "v"], axes, op)


def v_exporter_options(out, tag, **kw):
    for op in (13, 17):
        export(out, f"encoder_{tag}", Encoder().eval(), x_and_mask, ["x", "m"], ["y"],
               batch_seq("x", "m", "y"), op, grad=True, **kw)
        export(out, f"bert_{tag}", Bert().eval(), bert_inputs, ["ids", "am", "tt"], ["y", "p"],
               batch_seq("ids", "am", "tt", "y", p={0: "batch", 2: "seq", 3: "seq_k"}), op, **kw)


def v_no_folding(out):
    v_exporter_options(out, "no_folding", do_constant_folding=False)


def v_init_inputs(out):
    v_exporter_options(out, "init_inputs", keep_initializers_as_inputs=True)


def v_keras_mha(out):
    """tf.keras.layers.MultiHeadAttention(4 heads, key_dim 8) self-attention
    with a key mask, as tf2onnx converts it: Einsum projections with (D, H, K)
    kernels, Keras' additive mask (1 - mask) * -1e9 through an ExpandDims."""
    rng = np.random.default_rng(0)
    d, h, kd = 32, 4, 8
    wq, wk, wv = [(rng.standard_normal((d, h, kd)) / np.sqrt(d)).astype(np.float32)
                  for _ in range(3)]
    bq, bk, bv = [(rng.standard_normal((h, kd)) * 0.1).astype(np.float32) for _ in range(3)]
    wo = (rng.standard_normal((h, kd, d)) / np.sqrt(h * kd)).astype(np.float32)
    bo = (rng.standard_normal(d) * 0.1).astype(np.float32)

    def reference(x, mask):
        x = x.astype(np.float64)
        q, k, v = (np.einsum("abc,cde->abde", x, w) + b for w, b in ((wq, bq), (wk, bk), (wv, bv)))
        s = np.einsum("aecd,abcd->acbe", k, q / np.sqrt(kd))
        s = s + (1.0 - mask[:, None, None, :].astype(np.float64)) * -1e9
        e = np.exp(s - s.max(-1, keepdims=True))
        c = np.einsum("acbe,aecd->abcd", e / e.sum(-1, keepdims=True), v)
        return (np.einsum("abcd,cde->abe", c, wo) + bo).astype(np.float32)

    pre = "model/multi_head_attention/"
    inits = [numpy_helper.from_array(a, pre + n) for a, n in (
        (wq, "query/kernel:0"), (wk, "key/kernel:0"), (wv, "value/kernel:0"),
        (bq, "query/bias:0"), (bk, "key/bias:0"), (bv, "value/bias:0"),
        (wo, "attention_output/kernel:0"), (bo, "attention_output/bias:0"),
        (np.array(1 / np.sqrt(kd), np.float32), "Mul/y:0"), (np.array(1.0, np.float32), "sub/x:0"),
        (np.array(-1e9, np.float32), "mul_1/y:0"), (np.array([1, 2], np.int64), "axes:0"))]
    node = helper.make_node
    nodes = [
        node("Cast", ["input_2:0"], ["mask:0"], to=TensorProto.FLOAT, name=pre + "Cast"),
        node("Einsum", ["input_1:0", pre + "query/kernel:0"], ["q0"], equation="abc,cde->abde",
             name=pre + "query/einsum/Einsum"),
        node("Add", ["q0", pre + "query/bias:0"], ["q1"], name=pre + "query/add"),
        node("Einsum", ["input_1:0", pre + "key/kernel:0"], ["k0"], equation="abc,cde->abde",
             name=pre + "key/einsum/Einsum"),
        node("Add", ["k0", pre + "key/bias:0"], ["k1"], name=pre + "key/add"),
        node("Einsum", ["input_1:0", pre + "value/kernel:0"], ["v0"], equation="abc,cde->abde",
             name=pre + "value/einsum/Einsum"),
        node("Add", ["v0", pre + "value/bias:0"], ["v1"], name=pre + "value/add"),
        node("Mul", ["q1", pre + "Mul/y:0"], ["q2"], name=pre + "Mul"),
        node("Einsum", ["k1", "q2"], ["s0"], equation="aecd,abcd->acbe", name=pre + "einsum/Einsum"),
        node("Unsqueeze", ["mask:0", pre + "axes:0"], ["m1"], name=pre + "ExpandDims"),
        node("Sub", [pre + "sub/x:0", "m1"], ["m2"], name=pre + "softmax/sub"),
        node("Mul", ["m2", pre + "mul_1/y:0"], ["m3"], name=pre + "softmax/mul"),
        node("Add", ["s0", "m3"], ["s1"], name=pre + "softmax/add"),
        node("Softmax", ["s1"], ["p"], axis=3, name=pre + "softmax/Softmax"),
        node("Einsum", ["p", "v1"], ["c"], equation="acbe,aecd->abcd",
             name=pre + "einsum_1/Einsum"),
        node("Einsum", ["c", pre + "attention_output/kernel:0"], ["o0"], equation="abcd,cde->abe",
             name=pre + "attention_output/einsum/Einsum"),
        node("Add", ["o0", pre + "attention_output/bias:0"], ["multi_head_attention"],
             name=pre + "attention_output/add"),
    ]
    graph = helper.make_graph(
        nodes, "tf2onnx",
        [helper.make_tensor_value_info("input_1:0", TensorProto.FLOAT, ["unk__1", "unk__2", d]),
         helper.make_tensor_value_info("input_2:0", TensorProto.BOOL, ["unk__1", "unk__2"])],
        [helper.make_tensor_value_info("multi_head_attention", TensorProto.FLOAT,
                                       ["unk__1", "unk__2", d])], inits)
    for op in (13, 15, 17):
        model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", op)],
                                  producer_name="tf2onnx")
        onnx.checker.check_model(model)
        model_dir = os.path.join(out, f"keras_mha_op{op}")
        os.makedirs(model_dir, exist_ok=True)
        onnx.save(model, os.path.join(model_dir, "model.onnx"))
        for k, (batch, seq) in enumerate(SHAPES):
            x = rng.standard_normal((batch, seq, d)).astype(np.float32)
            mask = np.ones((batch, seq), bool)  # True = attend
            for i in range(1, batch):
                mask[i, rng.integers(1, seq + 1):] = False
            save_case(model_dir, k, [("input_1:0", x), ("input_2:0", mask)],
                      [("multi_head_attention", reference(x, mask))])


VARIANTS = {
    "mha": v_mha, "mha_per_head": v_mha_per_head, "mha_no_weights": v_mha_no_weights,
    "mha_bias_kv": v_mha_bias_kv, "mha_causal": v_mha_causal, "mha_seq_first": v_mha_seq_first,
    "cross": v_cross, "encoder": v_encoder, "decoder": v_decoder, "bert": v_bert,
    "gpt_past": v_gpt_past, "no_folding": v_no_folding, "init_inputs": v_init_inputs,
    "keras_mha": v_keras_mha,
}


def main():
    if len(sys.argv) < 2:
        sys.exit(__doc__)
    warnings.filterwarnings("ignore")  # the exporter's TracerWarnings are expected
    out = sys.argv[1]
    names = sys.argv[2:] or list(VARIANTS)
    for name in names:
        if name not in VARIANTS:
            sys.exit(f"unknown variant {name!r}; known: {', '.join(VARIANTS)}")
    for name in names:
        torch.manual_seed(0)
        VARIANTS[name](out)
        print(f"exported {name}")


if __name__ == "__main__":
    main()
