#!/usr/bin/python3
"""Dynamic int8 quantization of an ONNX float model, in the graph form ONNX
Runtime's `quantize_dynamic` writes (QOperator format, before ORT's own
fusions), built with onnx.helper since onnxruntime's Python package is not
available here.

Every MatMul whose B is a 2-D float32 initializer becomes

    x -> DynamicQuantizeLinear -> (x_q uint8, x_scale, x_zero_point)
    MatMulInteger(x_q, W_q int8, x_zero_point, W_zero_point) -> int32
    Cast(to float) -> Mul(., x_scale * W_scale) -> the MatMul's output

with W quantized symmetrically to int8 (zero point 0, scale max|W| / 127,
values in [-127, 127]) per tensor, or per output column (per_channel: a
scale and a zero point for each of the N columns). One DynamicQuantizeLinear
serves every MatMul that reads the same activation (the Q, K and V
projections). Everything else (the bias Add, attention's activation x
activation MatMuls, Gemm (not among quantize_dynamic's integer ops: torch
exports nn.MultiheadAttention's out-projection as one), LayerNorm, softmax)
stays float, as in ORT.

Usage: quantize_dynamic.py IN.onnx OUT.onnx [--per-channel]
"""
import argparse
import sys

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper


def quantize_weight(w, per_channel):
    """(W_q int8, scale float32 [] or [N], zero point int8 like scale)."""
    w = w.astype(np.float32)
    if per_channel:
        amax = np.abs(w).max(axis=0)
    else:
        amax = np.array(np.abs(w).max(), dtype=np.float32)
    scale = (np.maximum(amax, 1e-12) / 127.0).astype(np.float32)
    q = np.clip(np.rint(w / scale), -127, 127).astype(np.int8)
    return q, scale, np.zeros(scale.shape, dtype=np.int8)


def quantize_dynamic(model, per_channel=False):
    """A new ModelProto: model with its constant-weight MatMuls quantized."""
    model = onnx.ModelProto.FromString(model.SerializeToString())
    g = model.graph
    inits = {t.name: t for t in g.initializer}
    readers = {}
    for n in g.node:
        for i in n.input:
            readers[i] = readers.get(i, 0) + 1
    nodes, new_inits, quantized_inputs, dropped = [], [], {}, set()
    count = 0
    for n in g.node:
        w = inits.get(n.input[1]) if n.op_type == "MatMul" and len(n.input) == 2 else None
        if w is None or w.data_type != TensorProto.FLOAT or len(w.dims) != 2:
            nodes.append(n)
            continue
        count += 1
        x = n.input[0]
        tag = n.name or n.output[0]
        if x not in quantized_inputs:
            qx = (x + "_quantized", x + "_scale", x + "_zero_point")
            nodes.append(helper.make_node("DynamicQuantizeLinear", [x], list(qx),
                                          name=x + "_QuantizeLinear"))
            quantized_inputs[x] = qx
        qx = quantized_inputs[x]
        wq, ws, wz = quantize_weight(numpy_helper.to_array(w), per_channel)
        wname = w.name
        if wname + "_quantized" not in {t.name for t in new_inits}:
            new_inits += [numpy_helper.from_array(wq, wname + "_quantized"),
                          numpy_helper.from_array(ws, wname + "_scale"),
                          numpy_helper.from_array(wz, wname + "_zero_point")]
        readers[wname] -= 1
        if readers[wname] == 0:
            dropped.add(wname)
        y = n.output[0]
        nodes += [
            helper.make_node("MatMulInteger",
                             [qx[0], wname + "_quantized", qx[2], wname + "_zero_point"],
                             [y + "_output_quantized"], name=tag + "_quant"),
            helper.make_node("Cast", [y + "_output_quantized"], [y + "_cast_output"],
                             name=tag + "_cast", to=TensorProto.FLOAT),
            helper.make_node("Mul", [qx[1], wname + "_scale"], [y + "_scales_mul"],
                             name=tag + "_scales_mul"),
            helper.make_node("Mul", [y + "_cast_output", y + "_scales_mul"], [y],
                             name=tag + "_output_mul"),
        ]
    del g.node[:]
    g.node.extend(nodes)
    keep = [t for t in g.initializer if t.name not in dropped]
    del g.initializer[:]
    g.initializer.extend(keep + new_inits)
    # value_info of the old graph may name values that no longer exist: the
    # shapes are inferred again by the runtime
    del g.value_info[:]
    have = {o.domain for o in model.opset_import if o.domain in ("", "ai.onnx")}
    for o in model.opset_import:
        if o.domain in ("", "ai.onnx") and o.version < 11:
            o.version = 11  # DynamicQuantizeLinear
    if not have:
        model.opset_import.append(helper.make_opsetid("", 11))
    onnx.checker.check_model(model)
    return model, count


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("src")
    ap.add_argument("dst")
    ap.add_argument("--per-channel", action="store_true")
    a = ap.parse_args()
    model, count = quantize_dynamic(onnx.load(a.src), a.per_channel)
    onnx.save(model, a.dst)
    print("%s: %d MatMuls quantized" % (a.dst, count), file=sys.stderr)


if __name__ == "__main__":
    main()
