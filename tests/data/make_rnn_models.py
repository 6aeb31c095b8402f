#!/usr/bin/env python3
"""Writes RNN/GRU/LSTM tests: PyTorch exports of nn.LSTM, nn.GRU and nn.RNN
(2 layers, bidirectional, batch_first) checked against PyTorch eager at two
shapes, and single-node LSTM/GRU models whose W and R are initializers (so
qkv packs them) with sequence_lens, layout 1 and omitted outputs, checked
against a numpy implementation of the ONNX equations written here.

Usage: make_rnn_models.py OUTDIR   (Debian's /usr/bin/python3: onnx, numpy, torch)

Layout (the ONNX backend test format, run with `qkv test`):
    OUTDIR/rnn_node/test_<name>/model.onnx
    OUTDIR/rnn_node/test_<name>/test_data_set_<k>/{input,output}_<i>.pb
"""
import os
import sys

import numpy as np
import onnx
import torch
from onnx import helper, numpy_helper, TensorProto

RNG = np.random.default_rng(7)


def write_pb(path, a):
    with open(path, "wb") as f:
        f.write(numpy_helper.from_array(a).SerializeToString())


def write_sets(d, sets):
    """sets: list of (inputs, outputs), each a list of numpy arrays."""
    for k, (ins, outs) in enumerate(sets):
        ds = os.path.join(d, f"test_data_set_{k}")
        os.makedirs(ds, exist_ok=True)
        for kind, arrays in (("input", ins), ("output", outs)):
            for i, a in enumerate(arrays):
                write_pb(os.path.join(ds, f"{kind}_{i}.pb"), a)


# ---- PyTorch exports ------------------------------------------------------------

def torch_case(root, name, module, x_shapes, with_state):
    """module exported at opset 17 with dynamic batch and sequence dims and
    checked at each shape of x_shapes against eager PyTorch."""
    torch.manual_seed(0)
    m = module.eval()
    d = os.path.join(root, "test_" + name)
    os.makedirs(d, exist_ok=True)
    layers = m.num_layers * (2 if m.bidirectional else 1)
    is_lstm = isinstance(m, torch.nn.LSTM)

    def states(batch):
        h = torch.randn(layers, batch, m.hidden_size)
        return (h, torch.randn(layers, batch, m.hidden_size)) if is_lstm else h

    x = torch.randn(*x_shapes[0])
    args = (x, states(x.shape[0])) if with_state else (x,)
    in_names = ["x"] + ((["h0", "c0"] if is_lstm else ["h0"]) if with_state else [])
    out_names = ["y", "h_n"] + (["c_n"] if is_lstm else [])
    dyn = {"x": {0: "batch", 1: "seq"}, "y": {0: "batch", 1: "seq"}}
    for n in in_names[1:] + out_names[1:]:
        dyn[n] = {1: "batch"}
    torch.onnx.export(m, args, os.path.join(d, "model.onnx"), opset_version=17,
                      input_names=in_names, output_names=out_names, dynamic_axes=dyn)
    sets = []
    for shape in x_shapes:
        x = torch.randn(*shape)
        st = states(shape[0]) if with_state else None
        with torch.no_grad():
            y, hn = m(x, st) if with_state else m(x)
        ins = [x] + (list(st) if is_lstm else [st]) if with_state else [x]
        outs = [y] + (list(hn) if is_lstm else [hn])
        sets.append(([t.numpy() for t in ins], [t.numpy() for t in outs]))
    write_sets(d, sets)


def torch_cases(root):
    torch.manual_seed(1)
    shapes = [(3, 7, 24), (2, 4, 24)]
    torch_case(root, "torch_lstm_2layer_bidir_batch_first",
               torch.nn.LSTM(24, 40, num_layers=2, bidirectional=True, batch_first=True),
               shapes, with_state=True)
    torch_case(root, "torch_lstm_2layer_bidir_no_state",
               torch.nn.LSTM(24, 8, num_layers=2, bidirectional=True, batch_first=True),
               shapes, with_state=False)
    torch_case(root, "torch_gru_2layer_bidir_batch_first",
               torch.nn.GRU(24, 36, num_layers=2, bidirectional=True, batch_first=True),
               shapes, with_state=True)
    torch_case(root, "torch_gru_2layer_bidir_small",
               torch.nn.GRU(24, 6, num_layers=2, bidirectional=True, batch_first=True),
               shapes, with_state=False)
    torch_case(root, "torch_rnn_relu_2layer_bidir",
               torch.nn.RNN(24, 33, num_layers=2, nonlinearity="relu", bidirectional=True,
                            batch_first=True),
               shapes, with_state=True)


# ---- single nodes with constant weights, against numpy --------------------------

def sigmoid(x):
    return 1 / (1 + np.exp(-x))


def reference(op, x, w, r, b, lens, h0, c0, p, layout, dirs, lbr=0):
    """The ONNX equations in float64 (default activations), one batch entry
    and one direction at a time. Returns Y, Y_h, Y_c in the node's layout."""
    if layout:
        x = x.transpose(1, 0, 2)
        h0 = None if h0 is None else h0.transpose(1, 0, 2)
        c0 = None if c0 is None else c0.transpose(1, 0, 2)
    seq, batch, _ = x.shape
    hid = r.shape[-1]
    y = np.zeros((seq, dirs, batch, hid))
    yh = np.zeros((dirs, batch, hid))
    yc = np.zeros((dirs, batch, hid))
    for d in range(dirs):
        g = w.shape[1] // hid
        wb, rb = (b[d][:g * hid], b[d][g * hid:]) if b is not None else (0, 0)
        for n in range(batch):
            h = h0[d, n].copy() if h0 is not None else np.zeros(hid)
            c = c0[d, n].copy() if c0 is not None else np.zeros(hid)
            steps = range(lens[n]) if d == 0 else range(lens[n] - 1, -1, -1)
            for t in steps:
                xw = x[t, n] @ w[d].T + wb
                hr = h @ r[d].T + rb
                if op == "LSTM":
                    pi, po, pf = np.split(p[d], 3) if p is not None else (0, 0, 0)
                    i_, o_, f_, c_ = np.split(xw + hr, 4)
                    i_ = sigmoid(i_ + pi * c)
                    f_ = sigmoid(f_ + pf * c)
                    c = f_ * c + i_ * np.tanh(c_)
                    h = sigmoid(o_ + po * c) * np.tanh(c)
                else:
                    z = sigmoid(xw[:hid] + hr[:hid])
                    rr = sigmoid(xw[hid:2 * hid] + hr[hid:2 * hid])
                    rh = r[d][2 * hid:]
                    rbh = rb[2 * hid:] if b is not None else 0
                    if lbr:
                        hh = np.tanh(xw[2 * hid:] + rr * (h @ rh.T + rbh))
                    else:
                        hh = np.tanh(xw[2 * hid:] + (rr * h) @ rh.T + rbh)
                    h = (1 - z) * hh + z * h
                y[t, d, n] = h
            yh[d, n] = h
            yc[d, n] = c
    if layout:
        return y.transpose(2, 0, 1, 3), yh.transpose(1, 0, 2), yc.transpose(1, 0, 2)
    return y, yh, yc


def const_case(root, name, op, seq, batch, inp, hid, layout, lens, outputs, lbr=0):
    """One bidirectional node with W, R, B (and P) as initializers, X,
    sequence_lens and initial_h (initial_c) as inputs; `outputs` names the
    node's outputs ('' omits one)."""
    g = 4 if op == "LSTM" else 3
    dirs = 2
    f32 = np.float32
    w = (RNG.standard_normal((dirs, g * hid, inp)) * 0.3).astype(f32)
    r = (RNG.standard_normal((dirs, g * hid, hid)) * 0.3).astype(f32)
    b = (RNG.standard_normal((dirs, 2 * g * hid)) * 0.3).astype(f32)
    p = (RNG.standard_normal((dirs, 3 * hid)) * 0.3).astype(f32) if op == "LSTM" else None
    xs = (batch, seq, inp) if layout else (seq, batch, inp)
    ss = (batch, dirs, hid) if layout else (dirs, batch, hid)
    x = RNG.standard_normal(xs).astype(f32)
    h0 = RNG.standard_normal(ss).astype(f32)
    c0 = RNG.standard_normal(ss).astype(f32) if op == "LSTM" else None
    lens = np.array(lens, dtype=np.int32)
    ref = reference(op, x.astype(np.float64), w.astype(np.float64), r.astype(np.float64),
                    b.astype(np.float64), lens, h0.astype(np.float64),
                    None if c0 is None else c0.astype(np.float64),
                    None if p is None else p.astype(np.float64), layout, dirs, lbr)
    node_in = ["x", "w", "r", "b", "lens", "h0"] + (["c0", "p"] if op == "LSTM" else [])
    attrs = dict(hidden_size=hid, direction="bidirectional", layout=layout)
    if op == "GRU":
        attrs["linear_before_reset"] = lbr
    node = helper.make_node(op, node_in, outputs, **attrs)
    graph_in = [("x", x), ("lens", lens), ("h0", h0)] + ([("c0", c0)] if op == "LSTM" else [])
    inits = [("w", w), ("r", r), ("b", b)] + ([("p", p)] if op == "LSTM" else [])
    want = [(n, ref[k].astype(f32)) for k, n in enumerate(outputs) if n]

    def info(n, a):
        t = TensorProto.INT32 if a.dtype == np.int32 else TensorProto.FLOAT
        return helper.make_tensor_value_info(n, t, a.shape)

    graph = helper.make_graph([node], name, [info(n, a) for n, a in graph_in],
                              [info(n, a) for n, a in want],
                              [numpy_helper.from_array(a, n) for n, a in inits])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 14)])
    d = os.path.join(root, "test_" + name)
    os.makedirs(d, exist_ok=True)
    onnx.save(model, os.path.join(d, "model.onnx"))
    write_sets(d, [([a for _, a in graph_in], [a for _, a in want])])


def const_cases(root):
    const_case(root, "lstm_const_weights_seq_lens_only_y_c", "LSTM", 5, 3, 12, 40, 1,
               [5, 2, 4], ["", "", "y_c"])
    const_case(root, "lstm_const_weights_only_y", "LSTM", 4, 2, 6, 34, 0, [4, 3], ["y"])
    const_case(root, "gru_const_weights_seq_lens_only_y_h", "GRU", 6, 3, 10, 36, 0,
               [6, 1, 3], ["", "y_h"])
    const_case(root, "gru_const_weights_lbr_layout1", "GRU", 5, 2, 8, 33, 1, [5, 3],
               ["y", "y_h"], lbr=1)


def main():
    if len(sys.argv) != 2:
        sys.exit(__doc__)
    root = os.path.join(sys.argv[1], "rnn_node")
    os.makedirs(root, exist_ok=True)
    torch_cases(root)
    const_cases(root)


if __name__ == "__main__":
    main()
