#!/usr/bin/env python3
"""Writes models with the com.microsoft contrib ops of ONNX Runtime's
transformer optimizer (Attention, SkipLayerNormalization,
EmbedLayerNormalization, BiasGelu, FastGelu, Gelu), with reference outputs.

Usage: make_contrib_models.py OUTDIR   (Debian's /usr/bin/python3: onnx, numpy)

Each model goes to OUTDIR/contrib/<name>/ as an ONNX backend test directory
(model.onnx, test_data_set_0/{input,output}_K.pb). The references are
computed here in float64 numpy following ORT's CPU kernels (the mask forms,
the finite mask_filter_value, past/present layout), not by running ORT:
bench/contrib_vs_ort.py runs the same directories through ORT as well.
Models named err_* are invalid on purpose and have no data: the tests check
the error qkv reports for them. tests/test_contrib.c reads all of them.
"""
import math
import os
import sys

import numpy as np
import onnx
from onnx import TensorProto, helper, mapping, numpy_helper

OPSET = [helper.make_opsetid("", 17), helper.make_opsetid("com.microsoft", 1)]
MS = "com.microsoft"

# ---- numpy references ---------------------------------------------------------------


def softmax(x):
    e = np.exp(x - x.max(axis=-1, keepdims=True))
    return e / e.sum(axis=-1, keepdims=True)


def gelu(x):
    return 0.5 * x * (1.0 + np.vectorize(math.erf)(x / math.sqrt(2.0)))


def gelu_tanh(x):
    return 0.5 * x * (1.0 + np.tanh(math.sqrt(2.0 / math.pi) * (x + 0.044715 * x ** 3)))


def layer_norm(v, gamma, beta, eps):
    mean = v.mean(axis=-1, keepdims=True)
    var = ((v - mean) ** 2).mean(axis=-1, keepdims=True)
    inv = 1.0 / np.sqrt(var + eps)
    y = (v - mean) * inv * gamma
    if beta is not None:
        y = y + beta
    return y, mean, inv


def mask_add(mask, kind, b, s, t, p, filt):
    """The (B, S, T) additive mask ORT's kernels build from mask_index."""
    add = np.zeros((b, s, t))
    if mask is None:
        return add
    if kind == "lengths" or kind == "end_start":
        for bi in range(b):
            end = mask[bi]
            start = mask[b + bi] if kind == "end_start" else 0
            for j in range(t):
                if j >= end or j < start:
                    add[bi, :, j] = filt
    elif kind == "2d":
        add[:] = np.where(mask[:, None, :] > 0, 0.0, filt)
    elif kind == "3d":
        add[:] = np.where(mask > 0, 0.0, filt)
    elif kind == "4d":
        rows = mask[:, 0, p:p + s, :t]
        add[:] = np.where(rows != 0, 0.0, filt)
    return add


def ms_attention(x, w, bias, heads, mask=None, kind=None, past=None, attn_bias=None,
                 causal=False, scale=None, sizes=None, filt=-10000.0, qkv=None):
    """ORT's Attention; qkv (B, S, width), when given, is the projection
    (QAttention's) and x, w, bias are not used."""
    if qkv is None:
        x, w = x.astype(np.float64), w.astype(np.float64)
        qkv = x @ w + (bias.astype(np.float64) if bias is not None else 0.0)
    qkv = qkv.astype(np.float64)
    b, s, width = qkv.shape
    dq, dk, dv = sizes if sizes else (width // 3,) * 3
    h, hv = dq // heads, dv // heads

    def heads_of(m, d):
        return m.reshape(b, s, heads, d).transpose(0, 2, 1, 3)

    q = heads_of(qkv[..., :dq], h)
    k = heads_of(qkv[..., dq:dq + dk], h)
    v = heads_of(qkv[..., dq + dk:], hv)
    p = 0
    if past is not None:
        p = past.shape[3]
        k = np.concatenate([past[0].astype(np.float64), k], axis=2)
        v = np.concatenate([past[1].astype(np.float64), v], axis=2)
    present = np.stack([k, v]) if h == hv else None
    t = p + s
    sc = scale if scale else 1.0 / math.sqrt(h)
    scores = (q @ k.transpose(0, 1, 3, 2)) * sc
    if attn_bias is not None:
        scores = scores + attn_bias
    scores = scores + mask_add(mask, kind, b, s, t, p, filt)[:, None]
    if causal and s > 1:
        for i in range(s):
            scores[:, :, i, p + i + 1:] = -np.inf
    out = softmax(scores) @ v
    out = out.transpose(0, 2, 1, 3).reshape(b, s, heads * hv)
    return out.astype(np.float32), present


# ---- writing ----------------------------------------------------------------------------


def save_pb(path, array):
    with open(path, "wb") as f:
        f.write(numpy_helper.from_array(array).SerializeToString())


def vinfo(name, array_or_type, dims):
    t = array_or_type
    if isinstance(t, np.ndarray):
        t = mapping.NP_TYPE_TO_TENSOR_TYPE[t.dtype]  # onnx 1.12 (Debian's)
    return helper.make_tensor_value_info(name, t, dims)


def write_test(out, name, nodes, inputs, outputs, consts=(), sym=None):
    """inputs/outputs: lists of (name, array); consts: initializers (name,
    array); sym: {input name: dims with symbols}. Writes the model and one data
    set; an output array None is declared but not checked."""
    d = os.path.join(out, name)
    os.makedirs(os.path.join(d, "test_data_set_0"), exist_ok=True)
    sym = sym or {}
    g_in = [vinfo(n, a, sym.get(n, list(a.shape))) for n, a in inputs]
    g_out = [vinfo(n, a if a is not None else TensorProto.FLOAT, None) for n, a in outputs]
    init = [numpy_helper.from_array(a, n) for n, a in consts]
    graph = helper.make_graph(nodes, name, g_in, g_out, init)
    model = helper.make_model(graph, opset_imports=OPSET, producer_name="qkv-tests")
    onnx.save(model, os.path.join(d, "model.onnx"))
    for k, (n, a) in enumerate(inputs):
        save_pb(os.path.join(d, "test_data_set_0", f"input_{k}.pb"), a)
    for k, (n, a) in enumerate(outputs):
        if a is not None:
            save_pb(os.path.join(d, "test_data_set_0", f"output_{k}.pb"), a)


def write_error_model(out, name, nodes, inputs, outputs, consts=()):
    d = os.path.join(out, name)
    os.makedirs(d, exist_ok=True)
    graph = helper.make_graph(nodes, name, [vinfo(n, t, s) for n, t, s in inputs],
                              [vinfo(n, t, s) for n, t, s in outputs],
                              [numpy_helper.from_array(a, n) for n, a in consts])
    onnx.save(helper.make_model(graph, opset_imports=OPSET, producer_name="qkv-tests"),
              os.path.join(d, "model.onnx"))


def f32(rng, *shape, scale=1.0):
    return (rng.standard_normal(shape) * scale).astype(np.float32)


# ---- Attention ---------------------------------------------------------------------------

def attention_case(out, name, seed, b=2, s=5, di=16, heads=2, mask_kind=None, causal=False,
                   past_len=None, attn_bias=None, sizes=None, scale=None, weights_input=False,
                   no_bias=False, filt=None):
    rng = np.random.default_rng(seed)
    dq, dk, dv = sizes if sizes else (di,) * 3
    width = dq + dk + dv
    x = f32(rng, b, s, di)
    w = f32(rng, di, width, scale=0.3)
    bias = None if no_bias else f32(rng, width, scale=0.3)
    p = past_len or 0
    t = p + s
    mask = None
    if mask_kind == "lengths":
        mask = rng.integers(1, t + 1, size=b).astype(np.int32)
        mask[0] = t
    elif mask_kind == "end_start":
        end = rng.integers(t // 2 + 1, t + 1, size=b)
        start = rng.integers(0, t // 2, size=b)
        mask = np.concatenate([end, start]).astype(np.int32)
    elif mask_kind == "2d":
        mask = (rng.random((b, t)) > 0.3).astype(np.int32)
        mask[:, 0] = 1
        if b > 1 and filt is not None and filt > -100:
            # a fully masked row: the finite filter leaves its softmax unchanged. Only
            # with a small filter: scores + -10000 keep 3 decimals in float32 (ORT and
            # qkv alike), too few for a float64 reference
            mask[1, :] = 0
    elif mask_kind == "3d":
        mask = (rng.random((b, s, t)) > 0.3).astype(np.int32)
        mask[:, :, 0] = 1
    elif mask_kind == "4d":
        m = t + 3
        mask = np.tril(np.ones((m, m), np.int32))[None, None].repeat(b, axis=0)
        mask[0, 0, :, 1] = 0
    elif mask_kind == "dummy":
        mask = np.ones((b, 1), np.int32)
    past = f32(rng, 2, b, heads, p, dq // heads) if past_len else None
    ab = f32(rng, *attn_bias) if attn_bias else None

    attrs = {"num_heads": heads}
    if causal:
        attrs["unidirectional"] = 1
    if sizes:
        attrs["qkv_hidden_sizes"] = list(sizes)
    if scale:
        attrs["scale"] = scale
    if filt is not None:
        attrs["mask_filter_value"] = filt
    node_in = ["x", "w", "" if no_bias else "bias", "mask" if mask is not None else "",
               "past" if past is not None else "", "attn_bias" if ab is not None else ""]
    while node_in and node_in[-1] == "":
        node_in.pop()
    node_out = ["y"] + (["present"] if past is not None else [])
    node = helper.make_node("Attention", node_in, node_out, domain=MS, name="attention", **attrs)

    kind = "lengths" if mask_kind == "lengths" else mask_kind
    y, present = ms_attention(x, w, bias, heads, mask=None if mask_kind == "dummy" else mask,
                              kind=kind, past=past, attn_bias=ab, causal=causal, scale=scale,
                              sizes=sizes, filt=-10000.0 if filt is None else filt)
    inputs = [("x", x)]
    consts = []
    if weights_input:
        inputs.append(("w", w))
    else:
        consts.append(("w", w))
    if bias is not None:
        consts.append(("bias", bias))
    for n, a in (("mask", mask), ("past", past), ("attn_bias", ab)):
        if a is not None:
            inputs.append((n, a))
    outputs = [("y", y)]
    if past is not None:
        outputs.append(("present", present.astype(np.float32)))
    sym = {"x": ["batch", "seq", di]}
    write_test(out, name, [node], inputs, outputs, consts, sym)


def attention_models(out):
    attention_case(out, "attn_nomask", 1)
    attention_case(out, "attn_mask_lengths", 2, b=3, mask_kind="lengths")
    attention_case(out, "attn_mask_end_start", 3, b=3, s=6, mask_kind="end_start")
    attention_case(out, "attn_mask_2d", 4, mask_kind="2d")
    attention_case(out, "attn_mask_3d", 5, mask_kind="3d")
    attention_case(out, "attn_mask_4d", 6, mask_kind="4d")
    attention_case(out, "attn_mask_dummy", 7, mask_kind="dummy")
    attention_case(out, "attn_unidirectional", 8, s=6, causal=True, mask_kind="2d")
    attention_case(out, "attn_qkv_sizes", 9, di=12, heads=4, sizes=(16, 16, 24))
    attention_case(out, "attn_past_present", 10, s=4, causal=True, past_len=3,
                   mask_kind="2d")
    attention_case(out, "attn_past_decode", 11, s=1, past_len=6, mask_kind="lengths")
    attention_case(out, "attn_bias_1n", 12, attn_bias=(1, 2, 5, 5), mask_kind="lengths")
    attention_case(out, "attn_bias_bn", 13, attn_bias=(2, 2, 5, 5))
    attention_case(out, "attn_weights_input", 14, weights_input=True, mask_kind="2d")
    attention_case(out, "attn_scale_filter", 15, scale=0.2, mask_kind="2d", filt=-50.0)
    attention_case(out, "attn_no_bias", 16, no_bias=True, mask_kind="3d")
    attention_case(out, "attn_long", 17, b=1, s=150, di=32, heads=2, mask_kind="lengths")


# ---- normalisations and GELUs ---------------------------------------------------------------


def skip_case(out, name, seed, shape=(2, 4, 16), skip_shape=None, beta=True, bias=True,
              outputs=("y", "mean", "inv", "sum"), eps=None):
    rng = np.random.default_rng(seed)
    d = shape[-1]
    x, sk = f32(rng, *shape), f32(rng, *(skip_shape or shape))
    gamma, be, bi = f32(rng, d), f32(rng, d), f32(rng, d)
    consts = [("gamma", gamma)] + ([("beta", be)] if beta else []) + \
        ([("bias", bi)] if bias else [])
    node_in = ["x", "skip", "gamma", "beta" if beta else "", "bias" if bias else ""]
    while node_in[-1] == "":
        node_in.pop()
    node_out = [o if o in outputs else "" for o in ("y", "mean", "inv", "sum")]
    while node_out[-1] == "":
        node_out.pop()
    attrs = {"epsilon": eps} if eps is not None else {}
    node = helper.make_node("SkipLayerNormalization", node_in, node_out, domain=MS,
                            name="skip_ln", **attrs)
    v = x.astype(np.float64) + sk + (bi if bias else 0)
    y, mean, inv = layer_norm(v, gamma, be if beta else None, 1e-12 if eps is None else eps)
    ref = {"y": y, "mean": mean, "inv": inv, "sum": v}
    write_test(out, name, [node], [("x", x), ("skip", sk)],
               [(o, ref[o].astype(np.float32)) for o in node_out if o], consts)


def embed_case(out, name, seed, b=2, s=6, d=16, segments=True, mask=True, pos_ids=None,
               outputs=("y", "mask_index", "sum")):
    rng = np.random.default_rng(seed)
    vocab, n_pos, n_seg = 30, 10, 2
    ids = rng.integers(0, vocab, size=(b, s)).astype(np.int32)
    seg = rng.integers(0, n_seg, size=(b, s)).astype(np.int32)
    word, pos, segt = f32(rng, vocab, d), f32(rng, n_pos, d), f32(rng, n_seg, d)
    gamma, beta = f32(rng, d), f32(rng, d)
    m = (rng.random((b, s)) > 0.3).astype(np.int32)
    m[0, 2] = 2  # only values of exactly 1 count
    pids = None
    if pos_ids == "row":
        pids = rng.integers(0, n_pos, size=(1, s)).astype(np.int32)
    elif pos_ids == "full":
        pids = rng.integers(0, n_pos, size=(b, s)).astype(np.int32)
    node_in = ["ids", "seg" if segments else "", "word", "pos", "segt" if segments else "",
               "gamma", "beta", "mask" if mask else "", "pids" if pids is not None else ""]
    while node_in[-1] == "":
        node_in.pop()
    node_out = [o if o in outputs else "" for o in ("y", "mask_index", "sum")]
    while node_out[-1] == "":
        node_out.pop()
    node = helper.make_node("EmbedLayerNormalization", node_in, node_out, domain=MS,
                            name="embed_ln", epsilon=1e-5)
    p = np.broadcast_to(pids, (b, s)) if pids is not None else np.broadcast_to(np.arange(s),
                                                                               (b, s))
    v = word[ids].astype(np.float64) + pos[p]
    if segments:
        v = v + segt[seg]
    y, _, _ = layer_norm(v, gamma, beta, 1e-5)
    mi = (m == 1).sum(axis=1).astype(np.int32) if mask else np.zeros(b, np.int32)
    ref = {"y": y.astype(np.float32), "mask_index": mi, "sum": v.astype(np.float32)}
    inputs = [("ids", ids)] + ([("seg", seg)] if segments else []) + \
        ([("mask", m)] if mask else []) + ([("pids", pids)] if pids is not None else [])
    consts = [("word", word), ("pos", pos), ("gamma", gamma), ("beta", beta)] + \
        ([("segt", segt)] if segments else [])
    write_test(out, name, [node], inputs, [(o, ref[o]) for o in node_out if o], consts)


def gelu_case(out, name, op, seed, shape=(3, 4, 10), with_bias=True):
    rng = np.random.default_rng(seed)
    x = f32(rng, *shape, scale=2.0)
    bias = f32(rng, shape[-1])
    node_in = ["x"] + (["bias"] if with_bias else [])
    node = helper.make_node(op, node_in, ["y"], domain=MS, name=op.lower())
    v = x.astype(np.float64) + (bias if with_bias else 0)
    y = gelu_tanh(v) if op == "FastGelu" else gelu(v)
    write_test(out, name, [node], [("x", x)], [("y", y.astype(np.float32))],
               [("bias", bias)] if with_bias else [])


def norm_and_gelu_models(out):
    skip_case(out, "skln_full", 20)
    skip_case(out, "skln_skip_2d", 21, skip_shape=(4, 16), beta=False, bias=False,
              outputs=("y",))
    skip_case(out, "skln_skip_batch1", 22, skip_shape=(1, 4, 16), outputs=("y", "sum"))
    skip_case(out, "skln_rows", 23, shape=(6, 24), bias=False, outputs=("y",), eps=1e-5)
    embed_case(out, "embed_full", 30)
    embed_case(out, "embed_distil_posids", 31, segments=False, pos_ids="row",
               outputs=("y", "mask_index"))
    embed_case(out, "embed_posids_nomask", 32, mask=False, pos_ids="full", outputs=("y",
                                                                                     "mask_index"))
    gelu_case(out, "gelu", "Gelu", 40, with_bias=False)
    gelu_case(out, "bias_gelu", "BiasGelu", 41)
    gelu_case(out, "fast_gelu_bias", "FastGelu", 42)
    gelu_case(out, "fast_gelu", "FastGelu", 43, shape=(5000,), with_bias=False)


# ---- int8: DynamicQuantizeMatMul and QAttention ---------------------------------------------


def dynamic_quantize(a):
    """ORT's uint8 quantization of a float32 tensor's range, in float32."""
    lo = np.float32(min(a.min(), 0.0))
    hi = np.float32(max(a.max(), 0.0))
    scale = np.float32(1.0) if hi == lo else np.float32((hi - lo) / np.float32(255.0))
    zero = np.float32(np.clip(np.float32(0.0) - lo / scale, 0, 255))
    zp = np.uint8(np.rint(zero))
    q = np.clip(np.rint(a / scale) + np.float32(zp), 0, 255).astype(np.uint8)
    return q, scale, zp


def int_matmul(a, a_zero, b, b_zero):
    return (a.astype(np.int64) - np.int64(a_zero)) @ (b.astype(np.int64) - b_zero.astype(np.int64))


def dequant(c, a_scale, b_scale, bias):
    """float32, in ORT's order: c * (a_scale * b_scale) + bias."""
    sc = (np.float32(a_scale) * b_scale.astype(np.float32)).astype(np.float32)
    y = c.astype(np.float32) * sc
    return y + bias.astype(np.float32) if bias is not None else y


def dqmm_case(out, name, seed, a_shape=(2, 5, 16), n=12, b_type=np.int8, per_column=False,
              zero=True, bias=True):
    rng = np.random.default_rng(seed)
    k = a_shape[-1]
    a = f32(rng, *a_shape)
    lo, hi = (-128, 128) if b_type == np.int8 else (0, 256)
    b = rng.integers(lo, hi, size=(k, n)).astype(b_type)
    shape = (n,) if per_column else ()
    bs = (rng.random(shape) * 0.02 + 0.005).astype(np.float32)
    bz = rng.integers(lo // 4 + (0 if b_type == np.int8 else 100), hi // 4 +
                      (0 if b_type == np.int8 else 100), size=shape).astype(b_type)
    bias_v = f32(rng, n)
    q, a_scale, a_zero = dynamic_quantize(a)
    c = int_matmul(q.reshape(-1, k), a_zero, b, bz if zero else np.zeros(shape, b_type))
    y = dequant(c, a_scale, bs, bias_v if bias else None).reshape(*a_shape[:-1], n)
    node_in = ["a", "b", "b_scale", "b_zero" if zero else "", "bias" if bias else ""]
    while node_in[-1] == "":
        node_in.pop()
    node = helper.make_node("DynamicQuantizeMatMul", node_in, ["y"], domain=MS, name="dqmm")
    consts = [("b", b), ("b_scale", bs)] + ([("b_zero", bz)] if zero else []) + \
        ([("bias", bias_v)] if bias else [])
    write_test(out, name, [node], [("a", a)], [("y", y)], consts)


def qattention_case(out, name, seed, b=2, s=5, di=16, heads=2, w_type=np.int8,
                    per_column=False, mask_kind=None, causal=False, past_len=None):
    rng = np.random.default_rng(seed)
    width = 3 * di
    x = rng.integers(0, 256, size=(b, s, di)).astype(np.uint8)
    lo, hi = (-128, 128) if w_type == np.int8 else (0, 256)
    w = rng.integers(lo, hi, size=(di, width)).astype(w_type)
    bias = f32(rng, width, scale=0.3)
    x_scale = np.float32(0.02)
    shape = (width,) if per_column else ()
    w_scale = (rng.random(shape) * 0.002 + 0.001).astype(np.float32)
    x_zero = np.uint8(120)
    w_zero = rng.integers(lo // 8 + (0 if w_type == np.int8 else 120),
                          hi // 8 + (0 if w_type == np.int8 else 120), size=shape).astype(w_type)
    p = past_len or 0
    t = p + s
    mask = None
    if mask_kind == "lengths":
        mask = np.array([t, t - 2][:b], np.int32)
    elif mask_kind == "2d":
        mask = (rng.random((b, t)) > 0.3).astype(np.int32)
        mask[:, 0] = 1
    past = f32(rng, 2, b, heads, p, di // heads) if past_len else None
    c = int_matmul(x.reshape(-1, di), x_zero, w, w_zero)
    qkv = dequant(c, x_scale, w_scale, bias).reshape(b, s, width)
    y, present = ms_attention(None, None, None, heads, mask=mask, kind=mask_kind, past=past,
                              causal=causal, qkv=qkv)
    attrs = {"num_heads": heads}
    if causal:
        attrs["unidirectional"] = 1
    node_in = ["x", "w", "bias", "x_scale", "w_scale", "mask" if mask is not None else "",
               "x_zero", "w_zero", "past" if past is not None else ""]
    while node_in[-1] == "":
        node_in.pop()
    node_out = ["y"] + (["present"] if past is not None else [])
    node = helper.make_node("QAttention", node_in, node_out, domain=MS, name="qattention",
                            **attrs)
    inputs = [("x", x)] + [(n, a) for n, a in (("mask", mask), ("past", past)) if a is not None]
    consts = [("w", w), ("bias", bias), ("x_scale", np.array(x_scale, np.float32)),
              ("w_scale", np.array(w_scale, np.float32)), ("x_zero", np.array(x_zero, np.uint8)),
              ("w_zero", np.array(w_zero, w_type))]
    outputs = [("y", y)] + ([("present", present.astype(np.float32))] if past is not None else [])
    write_test(out, name, [node], inputs, outputs, consts)


def int8_models(out):
    dqmm_case(out, "dqmm_s8", 70)
    dqmm_case(out, "dqmm_u8_per_column", 71, b_type=np.uint8, per_column=True)
    dqmm_case(out, "dqmm_no_zero_no_bias", 72, a_shape=(7, 33), n=40, zero=False, bias=False)
    qattention_case(out, "qattn_s8", 73, mask_kind="lengths")
    qattention_case(out, "qattn_u8_per_column", 74, w_type=np.uint8, per_column=True,
                    mask_kind="2d")
    qattention_case(out, "qattn_past", 75, s=3, causal=True, past_len=4)


# ---- a whole optimised encoder layer ---------------------------------------------------------


def bert_layer(out, seed=50):
    """EmbedLayerNormalization -> Attention (mask_index from the embedding) ->
    MatMul -> SkipLayerNormalization -> MatMul -> BiasGelu -> MatMul ->
    SkipLayerNormalization: what ORT's optimizer makes of a BERT layer."""
    rng = np.random.default_rng(seed)
    b, s, d, heads, ff, vocab = 2, 7, 32, 4, 64, 40
    ids = rng.integers(0, vocab, size=(b, s)).astype(np.int32)
    seg = rng.integers(0, 2, size=(b, s)).astype(np.int32)
    mask = np.ones((b, s), np.int32)
    mask[1, 5:] = 0  # right padding, as the optimizer's key-length mask assumes
    word, pos, segt = f32(rng, vocab, d), f32(rng, 16, d), f32(rng, 2, d)
    g0, b0 = f32(rng, d), f32(rng, d, scale=0.1)
    wqkv, bqkv = f32(rng, d, 3 * d, scale=0.2), f32(rng, 3 * d, scale=0.1)
    wo, bo = f32(rng, d, d, scale=0.2), f32(rng, d, scale=0.1)
    g1, b1 = f32(rng, d), f32(rng, d, scale=0.1)
    w1, bf1 = f32(rng, d, ff, scale=0.2), f32(rng, ff, scale=0.1)
    w2, bf2 = f32(rng, ff, d, scale=0.2), f32(rng, d, scale=0.1)
    g2, b2 = f32(rng, d), f32(rng, d, scale=0.1)
    nodes = [
        helper.make_node("EmbedLayerNormalization",
                         ["ids", "seg", "word", "pos", "segt", "g0", "b0", "mask"],
                         ["emb", "mask_index"], domain=MS, name="embed", epsilon=1e-12),
        helper.make_node("Attention", ["emb", "wqkv", "bqkv", "mask_index"], ["ctx"],
                         domain=MS, name="attention", num_heads=heads),
        helper.make_node("MatMul", ["ctx", "wo"], ["proj"], name="attn_out"),
        helper.make_node("SkipLayerNormalization", ["proj", "emb", "g1", "b1", "bo"], ["h1"],
                         domain=MS, name="skip_ln1", epsilon=1e-12),
        helper.make_node("MatMul", ["h1", "w1"], ["f1"], name="ffn1"),
        helper.make_node("BiasGelu", ["f1", "bf1"], ["f1g"], domain=MS, name="bias_gelu"),
        helper.make_node("MatMul", ["f1g", "w2"], ["f2"], name="ffn2"),
        helper.make_node("SkipLayerNormalization", ["f2", "h1", "g2", "b2", "bf2"], ["y"],
                         domain=MS, name="skip_ln2", epsilon=1e-12),
    ]
    v = word[ids].astype(np.float64) + pos[np.arange(s)][None] + segt[seg]
    emb, _, _ = layer_norm(v, g0, b0, 1e-12)
    emb = emb.astype(np.float32)
    lengths = mask.sum(axis=1).astype(np.int32)
    ctx, _ = ms_attention(emb, wqkv, bqkv, heads, mask=lengths, kind="lengths")
    h1, _, _ = layer_norm(ctx.astype(np.float64) @ wo + emb + bo, g1, b1, 1e-12)
    f1 = gelu(h1 @ w1 + bf1)
    y, _, _ = layer_norm(f1 @ w2 + h1 + bf2, g2, b2, 1e-12)
    consts = [("word", word), ("pos", pos), ("segt", segt), ("g0", g0), ("b0", b0),
              ("wqkv", wqkv), ("bqkv", bqkv), ("wo", wo), ("g1", g1), ("b1", b1), ("bo", bo),
              ("w1", w1), ("bf1", bf1), ("w2", w2), ("bf2", bf2), ("g2", g2), ("b2", b2)]
    write_test(out, "bert_layer", nodes, [("ids", ids), ("seg", seg), ("mask", mask)],
               [("y", y.astype(np.float32))], consts,
               {"ids": ["batch", "seq"], "seg": ["batch", "seq"], "mask": ["batch", "seq"]})


# ---- invalid models ------------------------------------------------------------------------------


def error_models(out):
    f, i32 = TensorProto.FLOAT, TensorProto.INT32
    rng = np.random.default_rng(60)
    w48, b48 = f32(rng, 16, 48), f32(rng, 48)

    def attn(name, consts, attrs, mask_shape=None):
        node_in = ["x", "w", "bias"] + (["mask"] if mask_shape else [])
        node = helper.make_node("Attention", node_in, ["y"], domain=MS, name="attention",
                                **attrs)
        inputs = [("x", f, [2, 5, 16])] + ([("mask", i32, mask_shape)] if mask_shape else [])
        write_error_model(out, name, [node], inputs, [("y", f, None)], consts)

    attn("err_attn_heads", [("w", w48), ("bias", b48)], {"num_heads": 3})
    attn("err_attn_bias_len", [("w", w48), ("bias", f32(rng, 47))], {"num_heads": 2})
    attn("err_attn_mask_shape", [("w", w48), ("bias", b48)], {"num_heads": 2}, [2, 7])
    attn("err_attn_mask_rank", [("w", w48), ("bias", b48)], {"num_heads": 2}, [2, 1, 5, 5, 1])
    attn("err_attn_qkv_sizes", [("w", w48), ("bias", b48)],
         {"num_heads": 2, "qkv_hidden_sizes": [16, 8, 24]})
    attn("err_attn_4d_causal", [("w", w48), ("bias", b48)],
         {"num_heads": 2, "unidirectional": 1}, [2, 1, 8, 8])
    skip = helper.make_node("SkipLayerNormalization", ["x", "skip", "gamma"], ["y"], domain=MS,
                            name="skip_ln")
    write_error_model(out, "err_skln_gamma", [skip],
                      [("x", f, [2, 4, 16]), ("skip", f, [2, 4, 16])], [("y", f, None)],
                      [("gamma", f32(rng, 15))])
    bg = helper.make_node("BiasGelu", ["x", "bias"], ["y"], domain=MS, name="bias_gelu")
    write_error_model(out, "err_bias_gelu_len", [bg], [("x", f, [3, 10])], [("y", f, None)],
                      [("bias", f32(rng, 9))])


def main():
    if len(sys.argv) != 2:
        sys.exit(__doc__)
    out = os.path.join(sys.argv[1], "contrib")
    os.makedirs(out, exist_ok=True)
    attention_models(out)
    norm_and_gelu_models(out)
    int8_models(out)
    bert_layer(out)
    error_models(out)
    print(f"wrote contrib models to {out}")


if __name__ == "__main__":
    main()
