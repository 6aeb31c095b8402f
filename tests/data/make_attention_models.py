#!/usr/bin/env python3
"""Writes the models the attention tests run end to end (tests/test_attention.c,
tests/test_mha.c) and the attention benchmark models.

Usage: make_attention_models.py OUTDIR   (Debian's /usr/bin/python3: onnx, numpy)

OUTDIR/attention/<name>.onnx with <name>_input_<k>.pb / <name>_output_<k>.pb
(TensorProto files, graph input/output order; references computed here in
float64 numpy from the ONNX / ORT semantics, see
/work/shared/reference/ATTENTION_SPEC.md and MHA_CONTRIB_SPEC.md).

  gqa_past         Attention-23, 3-D GQA (Hq 4, Hkv 2), past 30 + 70 new keys,
                   70 queries (both cross the 64-wide tiles), causal, a float
                   mask (Sq, T), present outputs.
  nonpad_decode    Attention-24, 4-D, one query per batch over a static cache
                   of 80 keys, nonpad_kv_seqlen (80, 45, 3), causal.
  mha_present_key  com.microsoft.MultiHeadAttention, bias, past, a (B, T)
                   key_padding_mask, unidirectional, outputs output and
                   present_key only (present_value omitted).

Benchmark models (no reference data; `qkv bench --shape seq=N`):
  bench_attention_causal   Attention-23, 4-D (1, 8, seq, 64), is_causal=1.
  bench_attention          Attention-23, 4-D (1, 8, seq, 64), no mask.
  bench_unfused            the same as MatMul, Mul, Softmax, MatMul
                           (run with --no-fuse for the materialised baseline).
"""
import os
import sys

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

F32 = TensorProto.FLOAT


def save_pb(path, array, name):
    with open(path, "wb") as f:
        f.write(numpy_helper.from_array(np.ascontiguousarray(array), name).SerializeToString())


def save_model(out, name, nodes, inputs, outputs, opsets, ir_version):
    graph = helper.make_graph(nodes, name, inputs, outputs)
    model = helper.make_model(graph, opset_imports=opsets, producer_name="qkv-tests")
    model.ir_version = ir_version  # onnx 1.12's helper does not know opset 23/24
    onnx.save(model, os.path.join(out, name + ".onnx"))


def save_case(out, name, inputs, outputs):
    for k, (n, a) in enumerate(inputs):
        save_pb(os.path.join(out, f"{name}_input_{k}.pb"), a, n)
    for k, (n, a) in enumerate(outputs):
        save_pb(os.path.join(out, f"{name}_output_{k}.pb"), a, n)


def attend(q, k, v, bias, scale):
    """float64 attention per (b, h): q (B,H,S,D), k/v (B,H,T,.), bias (B|1,H|1,S,T)
    additive with -inf; a row whose bias is -inf everywhere gives zeros."""
    s = scale * np.einsum("bhsd,bhtd->bhst", q.astype(np.float64), k.astype(np.float64))
    s = s + bias
    m = s.max(axis=-1, keepdims=True)
    dead = ~np.isfinite(m)
    e = np.where(np.isneginf(s), 0.0, np.exp(s - np.where(dead, 0.0, m)))
    tot = e.sum(axis=-1, keepdims=True)
    p = np.where(dead, 0.0, e / np.where(tot == 0, 1.0, tot))
    return p @ v.astype(np.float64)


def gqa_past(out, rng):
    b, hq, hkv, s, p, d = 2, 4, 2, 70, 30, 16
    t = p + s
    q3 = rng.uniform(-1, 1, (b, s, hq * d)).astype(np.float32)
    k3 = rng.uniform(-1, 1, (b, s, hkv * d)).astype(np.float32)
    v3 = rng.uniform(-1, 1, (b, s, hkv * d)).astype(np.float32)
    mask = rng.uniform(-1, 1, (s, t)).astype(np.float32)
    mask[:, 5] = -np.inf
    pk = rng.uniform(-1, 1, (b, hkv, p, d)).astype(np.float32)
    pv = rng.uniform(-1, 1, (b, hkv, p, d)).astype(np.float32)
    to4 = lambda x, h: x.reshape(b, s, h, d).transpose(0, 2, 1, 3)
    kall = np.concatenate([pk, to4(k3, hkv)], axis=2)
    vall = np.concatenate([pv, to4(v3, hkv)], axis=2)
    i, j = np.arange(s)[:, None], np.arange(t)[None, :]
    bias = mask.astype(np.float64) + np.where(j <= i + p, 0.0, -np.inf)
    g = hq // hkv
    y = attend(to4(q3, hq), np.repeat(kall, g, axis=1), np.repeat(vall, g, axis=1),
               bias[None, None], 1 / np.sqrt(d))
    y3 = y.transpose(0, 2, 1, 3).reshape(b, s, hq * d).astype(np.float32)
    node = helper.make_node("Attention", ["Q", "K", "V", "attn_mask", "past_key", "past_value"],
                            ["Y", "present_key", "present_value"], name="attn", is_causal=1,
                            q_num_heads=hq, kv_num_heads=hkv)
    vi = helper.make_tensor_value_info
    save_model(out, "gqa_past", [node],
               [vi("Q", F32, [b, "seq", hq * d]), vi("K", F32, [b, "seq", hkv * d]),
                vi("V", F32, [b, "seq", hkv * d]), vi("attn_mask", F32, ["seq", "total"]),
                vi("past_key", F32, [b, hkv, "past", d]), vi("past_value", F32, [b, hkv, "past", d])],
               [vi("Y", F32, None), vi("present_key", F32, None), vi("present_value", F32, None)],
               [helper.make_opsetid("", 23)], 11)
    save_case(out, "gqa_past",
              [("Q", q3), ("K", k3), ("V", v3), ("attn_mask", mask), ("past_key", pk),
               ("past_value", pv)],
              [("Y", y3), ("present_key", kall), ("present_value", vall)])


def nonpad_decode(out, rng):
    b, hq, hkv, t, d = 3, 4, 1, 80, 8
    q = rng.uniform(-1, 1, (b, hq, 1, d)).astype(np.float32)
    k = rng.uniform(-1, 1, (b, hkv, t, d)).astype(np.float32)
    v = rng.uniform(-1, 1, (b, hkv, t, d)).astype(np.float32)
    nonpad = np.array([80, 45, 3], dtype=np.int64)
    j = np.arange(t)
    bias = np.zeros((b, 1, 1, t))
    for bb in range(b):  # causal offset nonpad - 1 and padding give the same frontier here
        bias[bb, 0, 0] = np.where((j < nonpad[bb]) & (j <= 0 + nonpad[bb] - 1), 0.0, -np.inf)
    y = attend(q, np.repeat(k, hq, axis=1), np.repeat(v, hq, axis=1), bias, 1 / np.sqrt(d))
    node = helper.make_node("Attention", ["Q", "K", "V", "", "", "", "nonpad_kv_seqlen"], ["Y"],
                            name="attn", is_causal=1)
    vi = helper.make_tensor_value_info
    save_model(out, "nonpad_decode", [node],
               [vi("Q", F32, [b, hq, 1, d]), vi("K", F32, [b, hkv, t, d]),
                vi("V", F32, [b, hkv, t, d]), vi("nonpad_kv_seqlen", TensorProto.INT64, [b])],
               [vi("Y", F32, None)], [helper.make_opsetid("", 24)], 12)
    save_case(out, "nonpad_decode",
              [("Q", q), ("K", k), ("V", v), ("nonpad_kv_seqlen", nonpad)],
              [("Y", y.astype(np.float32))])


def mha_present_key(out, rng):
    b, n, s, p, h = 2, 2, 5, 3, 8
    t, dd = p + s, n * h
    q = rng.uniform(-1, 1, (b, s, dd)).astype(np.float32)
    k = rng.uniform(-1, 1, (b, s, dd)).astype(np.float32)
    v = rng.uniform(-1, 1, (b, s, dd)).astype(np.float32)
    bias = rng.uniform(-1, 1, 3 * dd).astype(np.float32)
    pk = rng.uniform(-1, 1, (b, n, p, h)).astype(np.float32)
    pv = rng.uniform(-1, 1, (b, n, p, h)).astype(np.float32)
    mask = np.ones((b, t), dtype=np.int32)
    mask[1, 2] = 0
    mask[0, 6] = 0
    to4 = lambda x, bb: (x + bb).reshape(b, s, n, h).transpose(0, 2, 1, 3)
    kall = np.concatenate([pk, to4(k, bias[dd:2 * dd])], axis=2)
    vall = np.concatenate([pv, to4(v, bias[2 * dd:])], axis=2)
    i, j = np.arange(s)[:, None], np.arange(t)[None, :]
    add = np.where(mask == 0, -10000.0, 0.0)[:, None, None, :] + np.where(j <= i + p, 0.0, -np.inf)
    y = attend(to4(q, bias[:dd]), kall, vall, add, 1 / np.sqrt(h))
    y3 = y.transpose(0, 2, 1, 3).reshape(b, s, dd).astype(np.float32)
    node = helper.make_node(
        "MultiHeadAttention",
        ["query", "key", "value", "bias", "key_padding_mask", "", "past_key", "past_value"],
        ["output", "present_key", ""], name="mha", domain="com.microsoft", num_heads=n,
        unidirectional=1)
    vi = helper.make_tensor_value_info
    save_model(out, "mha_present_key", [node],
               [vi("query", F32, [b, s, dd]), vi("key", F32, [b, s, dd]),
                vi("value", F32, [b, s, dd]), vi("bias", F32, [3 * dd]),
                vi("key_padding_mask", TensorProto.INT32, [b, t]),
                vi("past_key", F32, [b, n, p, h]), vi("past_value", F32, [b, n, p, h])],
               [vi("output", F32, None), vi("present_key", F32, None)],
               [helper.make_opsetid("", 17), helper.make_opsetid("com.microsoft", 1)], 8)
    save_case(out, "mha_present_key",
              [("query", q), ("key", k), ("value", v), ("bias", bias),
               ("key_padding_mask", mask), ("past_key", pk), ("past_value", pv)],
              [("output", y3), ("present_key", kall)])


def bench(out):
    vi = helper.make_tensor_value_info
    shape = [1, 8, "seq", 64]
    ins = [vi("Q", F32, shape), vi("K", F32, shape), vi("V", F32, shape)]
    for name, causal in (("bench_attention_causal", 1), ("bench_attention", 0)):
        node = helper.make_node("Attention", ["Q", "K", "V"], ["Y"], name="attn",
                                is_causal=causal)
        save_model(out, name, [node], ins, [vi("Y", F32, shape)], [helper.make_opsetid("", 23)],
                   11)
    nodes = [
        helper.make_node("Transpose", ["K"], ["Kt"], perm=[0, 1, 3, 2]),
        helper.make_node("MatMul", ["Q", "Kt"], ["S0"]),
        helper.make_node("Mul", ["S0", "scale"], ["S1"]),
        helper.make_node("Softmax", ["S1"], ["P"], axis=-1),
        helper.make_node("MatMul", ["P", "V"], ["Y"]),
    ]
    graph = helper.make_graph(nodes, "bench_unfused", ins, [vi("Y", F32, shape)],
                              [numpy_helper.from_array(np.array(0.125, np.float32), "scale")])
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)],
                                producer_name="qkv-tests"),
              os.path.join(out, "bench_unfused.onnx"))


def main():
    out = os.path.join(sys.argv[1], "attention")
    os.makedirs(out, exist_ok=True)
    rng = np.random.default_rng(7)
    gqa_past(out, rng)
    nonpad_decode(out, rng)
    mha_present_key(out, rng)
    bench(out)


if __name__ == "__main__":
    main()
