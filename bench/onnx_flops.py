#!/usr/bin/python3
"""Counts the matrix-product FLOPs of one run of an ONNX model at its
declared (fixed) input shapes (run with Debian's /usr/bin/python3, which has
onnx).

Counted, 2 flops per multiply-add (2*M*N*K for an (M, K) @ (K, N) product):

  MatMul                      2 * batch * M * N * K (numpy broadcasting of
                              the batch dims; 1-D operands promoted)
  MatMulInteger               the same, as integer operations (int8 models)
  Gemm                        2 * M * N * K (transA/transB honoured)
  Attention (ai.onnx, 23)     Q @ K^T and P @ V: 2*B*Hq*S*L*(Dqk + Dv), for
                              4-D (B, H, S, D) or 3-D (B, S, H*D) inputs
  MultiHeadAttention          the same, from query (B, S, N*H), key
  (com.microsoft)             (B, L, N*H) and value (B, L, N*Hv)
  Conv                        2 * N * M * (output positions) * (C / group)
                              * (kernel positions), from W (M, C/group, k...)
                              and the output's shape
  Einsum (two operands)       2 * the product of the sizes of every letter
                              (MaxViT's "B G H I D, B G H J D -> B G H I J":
                              2*B*G*H*I*J*D); no "..."

Everything else (softmax, layer norm, bias adds, activations, transposes)
is not counted, so GFLOP/s compares directly with an sgemm peak. The shapes
of intermediate tensors come from onnx.shape_inference; a counted node whose
operand shapes are not known is an error (a FLOP count that silently misses
a product would overstate nothing but understate everything).

usage: onnx_flops.py MODEL [--verbose]   prints the total (an integer)
"""
import argparse
import sys

import onnx
from onnx import shape_inference


class FlopError(Exception):
    pass


def _shapes(model):
    """name -> list of int dims (None for an unknown dim) for every tensor
    whose shape is known: graph inputs/outputs, initializers and whatever
    onnx.shape_inference derives (it leaves ops it does not know alone)."""
    try:
        inferred = shape_inference.infer_shapes(model)
    except Exception:  # unknown opsets or contrib ops: keep what the file says
        inferred = model
    g = inferred.graph
    out = {}
    for vi in list(g.input) + list(g.output) + list(g.value_info):
        t = vi.type.tensor_type
        if t.HasField("shape"):
            out[vi.name] = [d.dim_value if d.HasField("dim_value") else None
                            for d in t.shape.dim]
    for init in g.initializer:
        out[init.name] = list(init.dims)
    return out


def _dims(shapes, node, k):
    name = node.input[k] if k < len(node.input) else ""
    dims = shapes.get(name)
    if not name or dims is None or any(d is None for d in dims):
        raise FlopError("node '%s' (%s): the shape of input %d '%s' is not known"
                        % (node.name, node.op_type, k, name))
    return dims


def _attr(node, name, default):
    for a in node.attribute:
        if a.name == name:
            return onnx.helper.get_attribute_value(a)
    return default


def _prod(xs):
    p = 1
    for x in xs:
        p *= x
    return p


def _matmul(a, b):
    a1, b1 = len(a) == 1, len(b) == 1
    a = [1] + a if a1 else a
    b = b + [1] if b1 else b
    m, k, n = a[-2], a[-1], b[-1]
    ba, bb = a[:-2], b[:-2]
    r = max(len(ba), len(bb))
    ba, bb = [1] * (r - len(ba)) + ba, [1] * (r - len(bb)) + bb
    batch = _prod(max(x, y) for x, y in zip(ba, bb))
    return 2 * batch * m * n * k


def _gemm(node, a, b):
    m, k = (a[1], a[0]) if _attr(node, "transA", 0) else (a[0], a[1])
    n = b[0] if _attr(node, "transB", 0) else b[1]
    return 2 * m * n * k


def _attention23(node, q, k, v):
    if len(q) == 4:
        b, hq, s, dqk = q
        l, dv = k[2], v[3]
    else:
        hq = _attr(node, "q_num_heads", 0)
        hkv = _attr(node, "kv_num_heads", 0)
        if not hq or not hkv:
            raise FlopError("node '%s' (Attention): 3-D inputs need q_num_heads and "
                            "kv_num_heads" % node.name)
        b, s, dqk = q[0], q[1], q[2] // hq
        l, dv = k[1], v[2] // hkv
    return 2 * b * hq * s * l * (dqk + dv)


def _ms_mha(node, q, k, v):
    if len(q) != 3 or len(k) != 3 or len(v) != 3:
        raise FlopError("node '%s' (MultiHeadAttention): only 3-D query, key and value "
                        "are counted" % node.name)
    b, s, d = q
    l, dv = k[1], v[2]
    return 2 * b * s * l * (d + dv)


def _conv(w, y):
    """Y (N, M, O...) from W (M, C/group, k...): every output element is a
    dot product of C/group * prod(k) terms."""
    return 2 * _prod(y) * _prod(w[1:])


def _einsum(node, a, b):
    eq = _attr(node, "equation", b"")
    eq = (eq.decode() if isinstance(eq, bytes) else eq).replace(" ", "")
    if "->" not in eq or "." in eq or eq.count(",") != 1:
        raise FlopError("node '%s' (Einsum): equation %r not counted by this tool"
                        % (node.name, eq))
    terms = eq.split("->")[0].split(",")
    size = {}
    for term, dims in zip(terms, (a, b)):
        if len(term) != len(dims):
            raise FlopError("node '%s' (Einsum): term %r for a rank-%d input"
                            % (node.name, term, len(dims)))
        for c, d in zip(term, dims):
            size[c] = max(size.get(c, 1), d)
    return 2 * _prod(size.values())


def count(model):
    """(total, [(node name, op, flops)]) for the main graph; raises FlopError."""
    shapes = _shapes(model)
    total, rows = 0, []
    for node in model.graph.node:
        dom = node.domain or "ai.onnx"
        if dom == "ai.onnx" and node.op_type in ("MatMul", "MatMulInteger"):
            f = _matmul(_dims(shapes, node, 0), _dims(shapes, node, 1))
        elif dom == "ai.onnx" and node.op_type == "Gemm":
            f = _gemm(node, _dims(shapes, node, 0), _dims(shapes, node, 1))
        elif dom == "ai.onnx" and node.op_type == "Attention":
            f = _attention23(node, _dims(shapes, node, 0), _dims(shapes, node, 1),
                             _dims(shapes, node, 2))
        elif dom == "com.microsoft" and node.op_type == "MultiHeadAttention":
            f = _ms_mha(node, _dims(shapes, node, 0), _dims(shapes, node, 1),
                        _dims(shapes, node, 2))
        elif dom == "ai.onnx" and node.op_type == "Conv":
            y = shapes.get(node.output[0])
            if y is None or any(d is None for d in y):
                raise FlopError("node '%s' (Conv): the shape of output 0 '%s' is not known"
                                % (node.name, node.output[0]))
            f = _conv(_dims(shapes, node, 1), y)
        elif dom == "ai.onnx" and node.op_type == "Einsum" and len(node.input) == 2:
            f = _einsum(node, _dims(shapes, node, 0), _dims(shapes, node, 1))
        elif node.op_type in ("Loop", "If", "Scan", "Einsum", "ConvTranspose"):
            raise FlopError("node '%s' (%s): not counted by this tool" % (node.name, node.op_type))
        else:
            continue
        total += f
        rows.append((node.name, node.op_type, f))
    return total, rows


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("model")
    ap.add_argument("--verbose", action="store_true", help="one line per counted node")
    a = ap.parse_args()
    try:
        total, rows = count(onnx.load(a.model, load_external_data=False))
    except FlopError as e:
        sys.exit("onnx_flops.py: %s: %s" % (a.model, e))
    if a.verbose:
        for name, op, f in rows:
            print("%-40s %-20s %d" % (name, op, f))
    print(total)


if __name__ == "__main__":
    main()
