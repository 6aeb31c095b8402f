#!/usr/bin/env python3
"""Writes the models the attention-fusion tests run (tests/test_fusion.c).

Usage: make_fusion_models.py OUTDIR   (Debian's /usr/bin/python3: onnx, numpy, torch)

OUTDIR/fusion/<name>.onnx with OUTDIR/fusion/<name>_input_<k>.pb and
<name>_output_<k>.pb (TensorProto files; references computed here in float64
numpy, or by PyTorch in eager mode for the torch exports).

Hand-written patterns (float32, [batch, heads, seq, head] unless said):
each variant of the attention core the pass must fuse, and the negative cases
it must leave alone. PyTorch exports (torch 1.13): nn.MultiheadAttention
without attention weights. The example set of models/export_examples.py is
exported to OUTDIR/fusion/examples/<name>/ (backend-test layout) when that
script is present.
"""
import importlib.util
import os
import sys

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

F32, BOOL = TensorProto.FLOAT, TensorProto.BOOL
B, H, S, T, D = 2, 2, 5, 7, 8  # batch, heads, query len, key len, head size
NEG_INF = np.float32(-np.inf)
FINFO_MIN = np.finfo(np.float32).min


def save_pb(path, array, name):
    with open(path, "wb") as f:
        # (np.ascontiguousarray would make a scalar 1-D)
        f.write(numpy_helper.from_array(np.array(array, order="C"), name).SerializeToString())


def softmax(x):
    m = x.max(axis=-1, keepdims=True)
    e = np.exp(x - m)
    return e / e.sum(axis=-1, keepdims=True)


def attention(q, k, v, scale, bias=None):
    """float64 softmax(scale * q k^T + bias) v, k given as (.., T, D)."""
    s = scale * (q.astype(np.float64) @ np.swapaxes(k.astype(np.float64), -1, -2))
    if bias is not None:
        s = s + bias
    return (softmax(s) @ v.astype(np.float64)).astype(np.float32)


class Maker:
    def __init__(self, out):
        self.out = out
        self.rng = np.random.default_rng(7)

    def randn(self, *shape):
        return self.rng.standard_normal(shape).astype(np.float32)

    def save(self, name, nodes, inputs, outputs, feeds, expected, inits=(), opset=17):
        """inputs: [(name, elem_type, shape)]; outputs: [(name, shape)] (float32);
        feeds/expected: arrays in graph input/output order. Opsets newer than
        this onnx (1.12: 17) are saved unchecked."""
        graph = helper.make_graph(
            nodes, name,
            [helper.make_tensor_value_info(n, t, s) for n, t, s in inputs],
            [helper.make_tensor_value_info(n, F32, s) for n, s in outputs],
            [numpy_helper.from_array(np.asarray(a), n) for n, a in inits])
        model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)],
                                  producer_name="qkv-tests")
        model.ir_version = 8
        if opset <= 17:
            onnx.checker.check_model(model)
        onnx.save(model, os.path.join(self.out, f"{name}.onnx"))
        for k, ((n, _, _), a) in enumerate(zip(inputs, feeds)):
            save_pb(os.path.join(self.out, f"{name}_input_{k}.pb"), a, n)
        for k, ((n, _), a) in enumerate(zip(outputs, expected)):
            save_pb(os.path.join(self.out, f"{name}_output_{k}.pb"), a, n)


def qkv_inputs(m, b=B, h=H, s=S, t=T, d=D, dims=None):
    q, k, v = m.randn(b, h, s, d), m.randn(b, h, t, d), m.randn(b, h, t, d)
    qs, ks = (dims or ([b, h, s, d], [b, h, t, d]))
    return (q, k, v), [("q", F32, qs), ("k", F32, ks), ("v", F32, ks)]


def core(scores_out="s", k_t="kt"):
    """MatMul(q, Transpose(k)) -> scores."""
    return [helper.make_node("Transpose", ["k"], [k_t], name="k_t", perm=[0, 1, 3, 2]),
            helper.make_node("MatMul", ["q", k_t], [scores_out], name="qk")]


def tail(probs_in, out="y"):
    return [helper.make_node("Softmax", [probs_in], ["p"], name="softmax", axis=-1),
            helper.make_node("MatMul", ["p", "v"], [out], name="pv")]


def sqrt_d():
    return ("sqrt_d", np.array(np.sqrt(D), np.float32))


def positive_patterns(m):
    # 1. Div by sqrt(d) after the MatMul (the common torch export)
    (q, k, v), ins = qkv_inputs(m)
    nodes = core() + [helper.make_node("Div", ["s", "sqrt_d"], ["sd"], name="scale")] + tail("sd")
    m.save("scale_div_after", nodes, ins, [("y", [B, H, S, D])], [q, k, v],
           [attention(q, k, v, 1 / np.sqrt(D))], [sqrt_d()])

    # 2. Mul on Q before the MatMul; K given already transposed (B, H, D, T)
    (q, k, v), ins = qkv_inputs(m)
    kt = np.ascontiguousarray(np.swapaxes(k, -1, -2))
    ins[1] = ("kt", F32, [B, H, D, T])
    nodes = [helper.make_node("Mul", ["q", "c"], ["qs"], name="q_scale"),
             helper.make_node("MatMul", ["qs", "kt"], ["s"], name="qk")] + tail("s")
    m.save("scale_mul_before", nodes, ins, [("y", [B, H, S, D])], [q, kt, v],
           [attention(q, k, v, 0.25)], [("c", np.array(0.25, np.float32))])

    # 3. Div by Sqrt of a constant (folded unless folding is off), constant first in Mul
    (q, k, v), ins = qkv_inputs(m)
    nodes = core() + [
        helper.make_node("Sqrt", ["d"], ["sq"], name="sqrt"),
        helper.make_node("Div", ["s", "sq"], ["sd"], name="scale"),
        helper.make_node("Mul", ["half", "sd"], ["sh"], name="alpha")] + tail("sh")
    m.save("scale_sqrt_const", nodes, ins, [("y", [B, H, S, D])], [q, k, v],
           [attention(q, k, v, 0.5 / np.sqrt(D))],
           [("d", np.array(float(D), np.float32)), ("half", np.array([0.5], np.float32))])

    # 4. sqrt(scale) on both Q and K (as some exporters do), no scale on the scores
    (q, k, v), ins = qkv_inputs(m)
    r = np.float32(D ** -0.25)
    nodes = [helper.make_node("Mul", ["q", "r"], ["qs"], name="q_scale"),
             helper.make_node("Mul", ["k", "r"], ["ks"], name="k_scale"),
             helper.make_node("Transpose", ["ks"], ["kt"], name="k_t", perm=[0, 1, 3, 2]),
             helper.make_node("MatMul", ["qs", "kt"], ["s"], name="qk")] + tail("s")
    m.save("scale_q_and_k", nodes, ins, [("y", [B, H, S, D])], [q, k, v],
           [attention(q, k, v, float(r) * float(r))], [("r", np.array(r, np.float32))])

    # 5. additive float mask (B, 1, 1, T) with -inf and -10000 entries
    (q, k, v), ins = qkv_inputs(m)
    mask = np.zeros((B, 1, 1, T), np.float32)
    mask[1, 0, 0, 4:] = NEG_INF
    mask[0, 0, 0, 6] = -10000.0
    nodes = core() + [helper.make_node("Div", ["s", "sqrt_d"], ["sd"], name="scale"),
                      helper.make_node("Add", ["sd", "mask"], ["sm"], name="mask")] + tail("sm")
    m.save("mask_add", nodes, ins + [("mask", F32, [B, 1, 1, T])], [("y", [B, H, S, D])],
           [q, k, v, mask], [attention(q, k, v, 1 / np.sqrt(D), mask)], [sqrt_d()])

    # 6. additive 2-D mask (S, T) first operand of the Add, dynamic batch
    (q, k, v), ins = qkv_inputs(m, dims=(["batch", H, S, D], ["batch", H, T, D]))
    mask = m.randn(S, T)
    nodes = core() + [helper.make_node("Mul", ["s", "c"], ["sd"], name="scale"),
                      helper.make_node("Add", ["mask", "sd"], ["sm"], name="mask")] + tail("sm")
    m.save("mask_add_2d_first", nodes, ins + [("mask", F32, [S, T])],
           [("y", ["batch", H, S, D])], [q, k, v, mask],
           [attention(q, k, v, 0.3, mask)], [("c", np.array(0.3, np.float32))])

    # 7. Where(keep, scores, -inf): bool mask, True = attend
    (q, k, v), ins = qkv_inputs(m)
    keep = m.rng.random((B, 1, S, T)) > 0.3
    keep[..., 0] = True
    nodes = core() + [helper.make_node("Div", ["s", "sqrt_d"], ["sd"], name="scale"),
                      helper.make_node("Where", ["keep", "sd", "ninf"], ["sw"], name="mask")]
    m.save("mask_where", nodes + tail("sw"), ins + [("keep", BOOL, [B, 1, S, T])],
           [("y", [B, H, S, D])], [q, k, v, keep],
           [attention(q, k, v, 1 / np.sqrt(D), np.where(keep, 0.0, -np.inf))],
           [sqrt_d(), ("ninf", np.array(NEG_INF))])

    # 8. masked_fill style: Where(pad, -inf, scores), True = padded key
    (q, k, v), ins = qkv_inputs(m)
    pad = np.zeros((B, 1, 1, T), bool)
    pad[1, ..., 3:] = True
    nodes = core() + [helper.make_node("Div", ["s", "sqrt_d"], ["sd"], name="scale"),
                      helper.make_node("Where", ["pad", "ninf", "sd"], ["sw"], name="mask")]
    m.save("mask_where_inverted", nodes + tail("sw"), ins + [("pad", BOOL, [B, 1, 1, T])],
           [("y", [B, H, S, D])], [q, k, v, pad],
           [attention(q, k, v, 1 / np.sqrt(D), np.where(pad, -np.inf, 0.0))],
           [sqrt_d(), ("ninf", np.array([NEG_INF]))])

    # 9. Where(keep, scores, finfo.min) (GPT-2 code): a float mask; a fully
    #    masked row (batch 1, query 0) averages all keys, as the graph does
    (q, k, v), ins = qkv_inputs(m)
    keep = m.rng.random((B, 1, S, T)) > 0.4
    keep[1, 0, 0, :] = False
    s = (q.astype(np.float64) @ np.swapaxes(k, -1, -2)) / np.sqrt(D)
    ref = (softmax(np.where(keep, s, float(FINFO_MIN))) @ v).astype(np.float32)
    nodes = core() + [helper.make_node("Div", ["s", "sqrt_d"], ["sd"], name="scale"),
                      helper.make_node("Where", ["keep", "sd", "fmin"], ["sw"], name="mask")]
    m.save("mask_where_finfo_min", nodes + tail("sw"), ins + [("keep", BOOL, [B, 1, S, T])],
           [("y", [B, H, S, D])], [q, k, v, keep], [ref],
           [sqrt_d(), ("fmin", np.array(FINFO_MIN, np.float32))])

    # 10. causal mask from a float constant (S, S): becomes is_causal
    (q, k, v), ins = qkv_inputs(m, t=S)
    causal = np.triu(np.full((S, S), NEG_INF, np.float32), 1)
    nodes = core() + [helper.make_node("Div", ["s", "sqrt_d"], ["sd"], name="scale"),
                      helper.make_node("Add", ["sd", "causal"], ["sm"], name="mask")] + tail("sm")
    m.save("mask_causal_const_add", nodes, ins, [("y", [B, H, S, D])], [q, k, v],
           [attention(q, k, v, 1 / np.sqrt(D), causal)], [sqrt_d(), ("causal", causal)])

    # 11. causal mask from a bool constant (1, 1, S, S) in a Where
    (q, k, v), ins = qkv_inputs(m, t=S)
    tril = np.tril(np.ones((1, 1, S, S), bool))
    nodes = core() + [helper.make_node("Div", ["s", "sqrt_d"], ["sd"], name="scale"),
                      helper.make_node("Where", ["tril", "sd", "ninf"], ["sw"], name="mask")]
    m.save("mask_causal_const_where", nodes + tail("sw"), ins, [("y", [B, H, S, D])],
           [q, k, v], [attention(q, k, v, 1 / np.sqrt(D), np.where(tril, 0.0, -np.inf))],
           [sqrt_d(), ("tril", tril), ("ninf", np.array(NEG_INF))])

    # 12. a constant that is almost causal (one cell differs) stays a mask
    (q, k, v), ins = qkv_inputs(m, t=S)
    almost = np.tril(np.ones((S, S), bool))
    almost[S - 1, 1] = False
    nodes = core() + [helper.make_node("Where", ["almost", "s", "ninf"], ["sw"], name="mask")]
    m.save("mask_const_not_causal", nodes + tail("sw"), ins, [("y", [B, H, S, D])], [q, k, v],
           [attention(q, k, v, 1.0, np.where(almost, 0.0, -np.inf))],
           [("almost", almost), ("ninf", np.array(NEG_INF))])

    # 13. two masks: a bool keep mask (runtime) then an additive padding mask
    (q, k, v), ins = qkv_inputs(m)
    keep = m.rng.random((1, 1, S, T)) > 0.3
    keep[..., 0] = True
    mask = np.where(m.rng.random((B, 1, 1, T)) > 0.8, -100.0, 0.0).astype(np.float32)
    nodes = core() + [helper.make_node("Div", ["s", "sqrt_d"], ["sd"], name="scale"),
                      helper.make_node("Where", ["keep", "sd", "ninf"], ["sw"], name="keep"),
                      helper.make_node("Add", ["sw", "mask"], ["sm"], name="pad")] + tail("sm")
    m.save("mask_two_terms", nodes,
           ins + [("keep", BOOL, [1, 1, S, T]), ("mask", F32, [B, 1, 1, T])],
           [("y", [B, H, S, D])], [q, k, v, keep, mask],
           [attention(q, k, v, 1 / np.sqrt(D), np.where(keep, 0.0, -np.inf) + mask)],
           [sqrt_d(), ("ninf", np.array(NEG_INF))])

    # 14. rank 3 (batch*heads, seq, head) with a rank-3 additive mask, dynamic dims
    n = B * H
    q, k, v = m.randn(n, S, D), m.randn(n, T, D), m.randn(n, T, D)
    mask = np.where(m.rng.random((n, S, T)) > 0.8, -np.inf, 0.0).astype(np.float32)
    mask[..., 0] = 0.0
    nodes = [helper.make_node("Transpose", ["k"], ["kt"], name="k_t", perm=[0, 2, 1]),
             helper.make_node("MatMul", ["q", "kt"], ["s"], name="qk"),
             helper.make_node("Mul", ["s", "c"], ["sd"], name="scale"),
             helper.make_node("Add", ["sd", "mask"], ["sm"], name="mask")] + tail("sm")
    m.save("rank3_mask", nodes,
           [("q", F32, ["n", "s", D]), ("k", F32, ["n", "t", D]), ("v", F32, ["n", "t", D]),
            ("mask", F32, ["n", "s", "t"])],
           [("y", ["n", "s", D])], [q, k, v, mask],
           [attention(q, k, v, 0.125, mask)], [("c", np.array(0.125, np.float32))])

    # 15. multi-query: K and V with one head, broadcast by MatMul over 4 query heads
    q, k, v = m.randn(B, 4, S, D), m.randn(B, 1, T, D), m.randn(B, 1, T, D)
    nodes = core() + [helper.make_node("Div", ["s", "sqrt_d"], ["sd"], name="scale")] + tail("sd")
    m.save("multi_query", nodes,
           [("q", F32, [B, 4, S, D]), ("k", F32, [B, 1, T, D]), ("v", F32, [B, 1, T, D])],
           [("y", [B, 4, S, D])], [q, k, v], [attention(q, k, v, 1 / np.sqrt(D))], [sqrt_d()])

    # 16. no-op Cast before the Softmax, inference Dropout and Identity
    #     between Softmax and the last MatMul; V's head size differs from Q/K's
    q, k, v = m.randn(B, H, S, D), m.randn(B, H, T, D), m.randn(B, H, T, 3)
    nodes = core() + [helper.make_node("Div", ["s", "sqrt_d"], ["sd0"], name="scale"),
                      helper.make_node("Cast", ["sd0"], ["sd"], name="cast", to=F32),
                      helper.make_node("Softmax", ["sd"], ["p"], name="softmax", axis=3),
                      helper.make_node("Dropout", ["p", "ratio"], ["pd"], name="dropout"),
                      helper.make_node("Identity", ["pd"], ["pi"], name="identity"),
                      helper.make_node("MatMul", ["pi", "v"], ["y"], name="pv")]
    m.save("dropout_identity", nodes,
           [("q", F32, [B, H, S, D]), ("k", F32, [B, H, T, D]), ("v", F32, [B, H, T, 3])],
           [("y", [B, H, S, 3])], [q, k, v], [attention(q, k, v, 1 / np.sqrt(D))],
           [sqrt_d(), ("ratio", np.array(0.1, np.float32))])

    # 17. opset 11: Softmax with axis = rank - 1 is the last-axis softmax
    (q, k, v), ins = qkv_inputs(m)
    nodes = core() + [helper.make_node("Div", ["s", "sqrt_d"], ["sd"], name="scale"),
                      helper.make_node("Softmax", ["sd"], ["p"], name="softmax", axis=3),
                      helper.make_node("MatMul", ["p", "v"], ["y"], name="pv")]
    m.save("opset11_softmax_last_axis", nodes, ins, [("y", [B, H, S, D])], [q, k, v],
           [attention(q, k, v, 1 / np.sqrt(D))], [sqrt_d()], opset=11)

    # 18. K from a (seq, batch*heads, head) layout: Transpose perm (1, 2, 0) as
    #     nn.MultiheadAttention exports it (composes to a (1, 0, 2) Transpose)
    n = B * H
    q, k, v = m.randn(n, S, D), m.randn(T, n, D), m.randn(n, T, D)
    nodes = [helper.make_node("Div", ["q", "sqrt_d"], ["qs"], name="q_scale"),
             helper.make_node("Transpose", ["k"], ["kt"], name="k_t", perm=[1, 2, 0]),
             helper.make_node("MatMul", ["qs", "kt"], ["s"], name="qk")] + tail("s")
    m.save("k_seq_first", nodes,
           [("q", F32, [n, S, D]), ("k", F32, [T, n, D]), ("v", F32, [n, T, D])],
           [("y", [n, S, D])], [q, k, v],
           [attention(q, np.transpose(k, (1, 0, 2)), v, 1 / np.sqrt(D))], [sqrt_d()])


def negative_patterns(m):
    # the scores have a second consumer (also an output)
    (q, k, v), ins = qkv_inputs(m)
    nodes = core() + [helper.make_node("Div", ["s", "sqrt_d"], ["sd"], name="scale")] + tail("sd")
    s = (q.astype(np.float64) @ np.swapaxes(k, -1, -2)).astype(np.float32)
    m.save("neg_scores_used", nodes, ins, [("y", [B, H, S, D]), ("s", [B, H, S, T])],
           [q, k, v], [attention(q, k, v, 1 / np.sqrt(D)), s], [sqrt_d()])

    # Softmax over the query axis
    (q, k, v), ins = qkv_inputs(m, t=S)
    nodes = core() + [helper.make_node("Softmax", ["s"], ["p"], name="softmax", axis=2),
                      helper.make_node("MatMul", ["p", "v"], ["y"], name="pv")]
    sc = q.astype(np.float64) @ np.swapaxes(k, -1, -2)
    e = np.exp(sc - sc.max(axis=2, keepdims=True))
    ref = ((e / e.sum(axis=2, keepdims=True)) @ v).astype(np.float32)
    m.save("neg_softmax_axis", nodes, ins, [("y", [B, H, S, D])], [q, k, v], [ref])

    # opset 11 Softmax with the default axis 1 (flattens heads, seq, keys)
    (q, k, v), ins = qkv_inputs(m, t=S)
    nodes = core() + [helper.make_node("Softmax", ["s"], ["p"], name="softmax"),
                      helper.make_node("MatMul", ["p", "v"], ["y"], name="pv")]
    sc = (q.astype(np.float64) @ np.swapaxes(k, -1, -2)).reshape(B, -1)
    p = softmax(sc).reshape(B, H, S, S)
    m.save("neg_opset11_softmax_default_axis", nodes, ins, [("y", [B, H, S, D])], [q, k, v],
           [(p @ v).astype(np.float32)], opset=11)

    # the scale is a runtime input
    (q, k, v), ins = qkv_inputs(m)
    nodes = core() + [helper.make_node("Div", ["s", "scale"], ["sd"], name="scale")] + tail("sd")
    m.save("neg_runtime_scale", nodes, ins + [("scale", F32, [])], [("y", [B, H, S, D])],
           [q, k, v, np.array(3.0, np.float32)], [attention(q, k, v, 1 / 3.0)])

    # the attention weights are a graph output too
    (q, k, v), ins = qkv_inputs(m)
    nodes = core() + [helper.make_node("Div", ["s", "sqrt_d"], ["sd"], name="scale")] + tail("sd")
    sc = (q.astype(np.float64) @ np.swapaxes(k, -1, -2)) / np.sqrt(D)
    m.save("neg_weights_output", nodes, ins, [("y", [B, H, S, D]), ("p", [B, H, S, T])],
           [q, k, v], [attention(q, k, v, 1 / np.sqrt(D)), softmax(sc).astype(np.float32)],
           [sqrt_d()])

    # Where with a moderate fill (-10000): a fully masked row would differ
    (q, k, v), ins = qkv_inputs(m)
    keep = m.rng.random((B, 1, S, T)) > 0.3
    keep[0, 0, 1, :] = False
    sc = (q.astype(np.float64) @ np.swapaxes(k, -1, -2))
    ref = (softmax(np.where(keep, sc, -10000.0)) @ v).astype(np.float32)
    nodes = core() + [helper.make_node("Where", ["keep", "s", "fill"], ["sw"], name="mask")]
    m.save("neg_where_fill_1e4", nodes + tail("sw"), ins + [("keep", BOOL, [B, 1, S, T])],
           [("y", [B, H, S, D])], [q, k, v, keep], [ref],
           [("fill", np.array(-10000.0, np.float32))])

    # a scale after the mask (would scale the mask as well)
    (q, k, v), ins = qkv_inputs(m)
    mask = m.randn(B, 1, 1, T)
    nodes = core() + [helper.make_node("Add", ["s", "mask"], ["sm"], name="mask"),
                      helper.make_node("Div", ["sm", "sqrt_d"], ["sd"], name="scale")] + tail("sd")
    sc = (q.astype(np.float64) @ np.swapaxes(k, -1, -2) + mask) / np.sqrt(D)
    m.save("neg_scale_after_mask", nodes, ins + [("mask", F32, [B, 1, 1, T])],
           [("y", [B, H, S, D])], [q, k, v, mask], [(softmax(sc) @ v).astype(np.float32)],
           [sqrt_d()])

    # K and V shared by the batch (batch dim 1, broadcast by MatMul)
    q, k, v = m.randn(B, H, S, D), m.randn(1, H, T, D), m.randn(1, H, T, D)
    nodes = core() + tail("s")
    m.save("neg_batch_broadcast", nodes,
           [("q", F32, [B, H, S, D]), ("k", F32, [1, H, T, D]), ("v", F32, [1, H, T, D])],
           [("y", [B, H, S, D])], [q, k, v], [attention(q, k, v, 1.0)])

    # scores multiplied by a per-key vector: not a scale
    (q, k, v), ins = qkv_inputs(m)
    w = (m.rng.random(T) + 0.5).astype(np.float32)
    nodes = core() + [helper.make_node("Mul", ["s", "w"], ["sw"], name="weigh")] + tail("sw")
    sc = (q.astype(np.float64) @ np.swapaxes(k, -1, -2)) * w
    m.save("neg_vector_scale", nodes, ins, [("y", [B, H, S, D])], [q, k, v],
           [(softmax(sc) @ v).astype(np.float32)], [("w", w)])


def node(op, ins, outs, name, **kw):
    return helper.make_node(op, ins, outs, name=name, **kw)


def windows(scores, bias, shift, nw):
    """Swin's scores: + bias (1, H, N, N), viewed as (B, nW, H, N, N) + shift
    (1, nW, 1, N, N), merged back."""
    s = scores + bias
    bw = s.shape[0]
    return (s.reshape((bw // nw, nw) + s.shape[1:]) + shift).reshape(s.shape)


def real_arch_patterns(m):
    """The forms real architectures write (fuse_attention.c, "Real models"),
    and a near miss of each."""
    # wav2vec2: Mul(c, Q) times K given as (B, H, D, T), then
    # Sub(S, ReduceMax(S, last axis, keepdims)); axes as an attribute (opset
    # 17) and as an input (opset 18)
    for opset in (17, 18):
        (q, k, v), ins = qkv_inputs(m)
        kt = np.ascontiguousarray(np.swapaxes(k, -1, -2))
        ins[1] = ("kt", F32, [B, H, D, T])
        inits = [("c", np.array(0.3, np.float32))]
        if opset < 18:
            rowmax = node("ReduceMax", ["s"], ["mx"], "rowmax", axes=[-1], keepdims=1)
        else:
            rowmax = node("ReduceMax", ["s", "axes"], ["mx"], "rowmax", keepdims=1)
            inits.append(("axes", np.array([3], np.int64)))
        nodes = [node("Mul", ["c", "q"], ["qs"], "q_scale"),
                 node("MatMul", ["qs", "kt"], ["s"], "qk"), rowmax,
                 node("Sub", ["s", "mx"], ["sc"], "shift")] + tail("sc")
        m.save(f"max_shift_op{opset}", nodes, ins, [("y", [B, H, S, D])], [q, kt, v],
               [attention(q, k, v, 0.3)], inits, opset=opset)

    # near miss: the maximum over the query axis is not a per-row constant
    (q, k, v), ins = qkv_inputs(m, t=S)
    nodes = core() + [node("ReduceMax", ["s"], ["mx"], "colmax", axes=[2], keepdims=1),
                      node("Sub", ["s", "mx"], ["sc"], "shift")] + tail("sc")
    sc = q.astype(np.float64) @ np.swapaxes(k, -1, -2)
    sc = sc - sc.max(axis=2, keepdims=True)
    m.save("neg_max_shift_other_axis", nodes, ins, [("y", [B, H, S, D])], [q, k, v],
           [(softmax(sc) @ v).astype(np.float32)])

    # Swin: relative position bias, then the shift mask between a split into
    # (B, nW, H, N, N) and the merge back; constant split shape
    bw, nw, n = 4, 2, 5
    q, k, v = m.randn(bw, H, n, D), m.randn(bw, H, n, D), m.randn(bw, H, n, D)
    bias = 0.5 * m.randn(1, H, n, n)
    shift = np.where(m.rng.random((1, nw, 1, n, n)) > 0.6, -100.0, 0.0).astype(np.float32)
    split_core = [node("Mul", ["q", "c"], ["qs"], "q_scale"),
                   node("Transpose", ["k"], ["kt"], "k_t", perm=[0, 1, 3, 2]),
                   node("MatMul", ["qs", "kt"], ["s"], "qk"),
                   node("Add", ["s", "bias"], ["sb"], "rel_bias"),
                   node("Reshape", ["sb", "split"], ["s5"], "split"),
                   node("Add", ["s5", "shift"], ["s5m"], "shift_mask"),
                   node("Reshape", ["s5m", "merge"], ["sm"], "merge")]
    split_nodes = split_core + tail("sm")
    qkv_in = [("q", F32, [bw, H, n, D]), ("k", F32, [bw, H, n, D]), ("v", F32, [bw, H, n, D])]
    s0 = 0.3 * (q.astype(np.float64) @ np.swapaxes(k, -1, -2))
    ref = (softmax(windows(s0, bias, shift, nw)) @ v).astype(np.float32)
    consts = [("c", np.array(0.3, np.float32)), ("bias", bias), ("shift", shift),
              ("merge", np.array([-1, H, n, n], np.int64))]
    m.save("swin_split_mask", split_nodes, qkv_in, [("y", [bw, H, n, D])], [q, k, v], [ref],
           consts + [("split", np.array([bw // nw, nw, H, n, n], np.int64))])

    # the same with a dynamic batch, the split shape computed as torch
    # exports it: (Shape(q)[0] / nW, nW, H, N, N)
    shape_nodes = [node("Shape", ["q"], ["qshape"], "q_shape"),
                   node("Gather", ["qshape", "zero"], ["b0"], "batch", axis=0),
                   node("Div", ["b0", "nw"], ["b1"], "groups"),
                   node("Unsqueeze", ["b1", "axes0"], ["b2"], "groups_1d"),
                   node("Concat", ["b2", "tail"], ["split"], "split_shape", axis=0)]
    dyn_in = [(nm, F32, ["bw", H, n, D]) for nm, _, _ in qkv_in]
    m.save("swin_split_mask_dynamic", shape_nodes + split_nodes, dyn_in,
           [("y", ["bw", H, n, D])], [q, k, v], [ref],
           consts + [("zero", np.array(0, np.int64)), ("nw", np.array(nw, np.int64)),
                     ("axes0", np.array([0], np.int64)),
                     ("tail", np.array([nw, H, n, n], np.int64))])

    # near miss: merged back as (B nW, N, H, N), not the scores' layout
    q, k = m.randn(bw, H, n, D), m.randn(bw, H, n, D)
    v = m.randn(bw, n, n, D)
    nodes = split_nodes  # with another merge shape
    s0 = 0.3 * (q.astype(np.float64) @ np.swapaxes(k, -1, -2))
    p = softmax(windows(s0, bias, shift, nw).reshape(bw, n, H, n))
    m.save("neg_split_merge_other_layout", nodes,
           qkv_in[:2] + [("v", F32, [bw, n, n, D])], [("y", [bw, n, H, D])], [q, k, v],
           [(p @ v).astype(np.float32)],
           consts[:3] + [("merge", np.array([-1, n, H, n], np.int64)),
                         ("split", np.array([bw // nw, nw, H, n, n], np.int64))])

    # near miss: a scale between the split and the merge
    q, k, v = m.randn(bw, H, n, D), m.randn(bw, H, n, D), m.randn(bw, H, n, D)
    nodes = split_core[:5] + [node("Mul", ["s5", "two"], ["s5m"], "scale_windows"),
                              split_core[6]] + tail("sm")
    s0 = 0.3 * (q.astype(np.float64) @ np.swapaxes(k, -1, -2))
    m.save("neg_split_scaled", nodes, qkv_in, [("y", [bw, H, n, D])], [q, k, v],
           [(softmax(2 * (s0 + bias)) @ v).astype(np.float32)],
           consts[:2] + consts[3:] + [("two", np.array(2.0, np.float32)),
                                      ("split", np.array([bw // nw, nw, H, n, n], np.int64))])

    # MaxViT: rank-5 (B, G, H, P, D) Einsums with K scaled and a relative
    # position bias (1, H, P, P); static dims, then every dim dynamic
    bb, gg, pp = 2, 3, 4
    eq_qk, eq_pv = "B G H I D, B G H J D -> B G H I J", "B G H I J, B G H J D -> B G H I D"
    q, k, v = (m.randn(bb, gg, H, pp, D) for _ in range(3))
    bias = 0.5 * m.randn(1, H, pp, pp)
    nodes = [node("Mul", ["k", "c"], ["ks"], "k_scale"),
             node("Einsum", ["q", "ks"], ["s"], "qk", equation=eq_qk),
             node("Add", ["s", "bias"], ["sb"], "rel_bias"),
             node("Softmax", ["sb"], ["p"], "softmax", axis=-1),
             node("Einsum", ["p", "v"], ["y"], "pv", equation=eq_pv)]
    ref = attention(q, k, v, 0.25, bias)
    for name, dims in (("einsum_rank5", [bb, gg, H, pp, D]),
                       ("einsum_rank5_dynamic", ["b", "g", "h", "p", "d"])):
        m.save(name, nodes, [(nm, F32, dims) for nm in "qkv"], [("y", dims)], [q, k, v], [ref],
               [("c", np.array(0.25, np.float32)), ("bias", bias)])

    # near miss: a mask that differs along G cannot be a mask of the merged batch
    gbias = 0.5 * m.randn(gg, H, pp, pp)
    m.save("neg_einsum_rank5_mask_per_group", nodes,
           [(nm, F32, [bb, gg, H, pp, D]) for nm in "qkv"], [("y", [bb, gg, H, pp, D])],
           [q, k, v], [attention(q, k, v, 0.25, gbias)],
           [("c", np.array(0.25, np.float32)), ("bias", gbias)])

    # Swin's F.dropout(p=0.0) exported in training mode: ratio 0 keeps all
    (q, k, v), ins = qkv_inputs(m)
    nodes = core() + [node("Div", ["s", "sqrt_d"], ["sd"], "scale"),
                      node("Softmax", ["sd"], ["p"], "softmax", axis=-1),
                      node("Dropout", ["p", "zero_ratio", "training"], ["pd", "pmask"], "dropout"),
                      node("MatMul", ["pd", "v"], ["y"], "pv")]
    m.save("training_dropout_ratio_0", nodes, ins, [("y", [B, H, S, D])], [q, k, v],
           [attention(q, k, v, 1 / np.sqrt(D))],
           [sqrt_d(), ("zero_ratio", np.array(0.0, np.float32)), ("training", np.array(True))])

    # rank-4 Einsums, lowercase, no spaces
    (q, k, v), ins = qkv_inputs(m)
    nodes = [node("Einsum", ["q", "k"], ["s"], "qk", equation="bhqd,bhkd->bhqk"),
             node("Div", ["s", "sqrt_d"], ["sd"], "scale"),
             node("Softmax", ["sd"], ["p"], "softmax", axis=-1),
             node("Einsum", ["p", "v"], ["y"], "pv", equation="bhqk,bhkd->bhqd")]
    m.save("einsum_rank4", nodes, ins, [("y", [B, H, S, D])], [q, k, v],
           [attention(q, k, v, 1 / np.sqrt(D))], [sqrt_d()])

    # near miss: the scores come out transposed (keys, queries)
    (q, k, v), ins = qkv_inputs(m, t=S)
    nodes[0] = node("Einsum", ["q", "k"], ["s"], "qk", equation="bhqd,bhkd->bhkq")
    sc = np.swapaxes(q.astype(np.float64) @ np.swapaxes(k, -1, -2), -1, -2) / np.sqrt(D)
    m.save("neg_einsum_transposed_scores", nodes, ins, [("y", [B, H, S, D])], [q, k, v],
           [(softmax(sc) @ v).astype(np.float32)], [sqrt_d()])


def torch_exports(m):
    """nn.MultiheadAttention without weights: key padding mask, and a float
    causal attn_mask; dynamic batch and sequence."""
    import torch
    torch.manual_seed(0)

    class MHA(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.attn = torch.nn.MultiheadAttention(32, 4, batch_first=True)

        def forward(self, x, key_padding_mask, attn_mask):
            return self.attn(x, x, x, key_padding_mask=key_padding_mask, attn_mask=attn_mask,
                             need_weights=False)[0]

    model = MHA().eval()
    b, s = 3, 6
    x = torch.randn(b, s, 32)
    kpm = torch.zeros(b, s, dtype=torch.bool)
    kpm[1, 4:] = True
    kpm[2, 2:] = True
    am = torch.triu(torch.full((s, s), float("-inf")), 1)
    path = os.path.join(m.out, "torch_mha.onnx")
    torch.onnx.export(model, (x, kpm, am), path, opset_version=14,
                      input_names=["x", "key_padding_mask", "attn_mask"], output_names=["y"],
                      dynamic_axes={"x": {0: "batch", 1: "seq"},
                                    "key_padding_mask": {0: "batch", 1: "seq"},
                                    "attn_mask": {0: "seq", 1: "seq"},
                                    "y": {0: "batch", 1: "seq"}})
    with torch.no_grad():
        y = model(x, kpm, am)
    for k, (n, a) in enumerate((("x", x), ("key_padding_mask", kpm), ("attn_mask", am))):
        save_pb(os.path.join(m.out, f"torch_mha_input_{k}.pb"), a.numpy(), n)
    save_pb(os.path.join(m.out, "torch_mha_output_0.pb"), y.numpy(), "y")


def example_set(out):
    """models/export_examples.py, when present, into OUTDIR/fusion/examples."""
    here = os.path.dirname(os.path.abspath(__file__))
    script = os.path.join(here, "..", "..", "models", "export_examples.py")
    if not os.path.exists(script):
        return
    spec = importlib.util.spec_from_file_location("export_examples", script)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    dest = os.path.join(out, "examples")
    os.makedirs(dest, exist_ok=True)
    for name, export in mod.EXPORTERS.items():
        export(dest)


def main():
    if len(sys.argv) != 2:
        sys.exit(__doc__)
    out = os.path.join(sys.argv[1], "fusion")
    os.makedirs(out, exist_ok=True)
    m = Maker(out)
    positive_patterns(m)
    negative_patterns(m)
    real_arch_patterns(m)
    import warnings
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch_exports(m)
        example_set(out)


if __name__ == "__main__":
    main()
