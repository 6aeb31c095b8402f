#!/usr/bin/python3
"""Writes the ONNX models the loader tests read: make_models.py OUTDIR

Run with Debian's /usr/bin/python3 (onnx 1.12, numpy, torch 1.13).
Deterministic: the same bytes on every run. Models are written without
onnx.checker, because many are malformed on purpose.

Valid models
  mha_small.onnx          MatMul + Add + Softmax, symbolic batch dim, metadata,
                          value_info, an initializer that is also a graph input
  if_outer.onnx           If whose branches read main-graph values, one through
                          a nested If (transitive implicit inputs)
  dtypes_raw.onnx         one initializer of every element type, via raw_data
  dtypes_typed.onnx       the same tensors via the typed repeated fields
  external_ok.onnx        initializers in weights.bin (offsets, sub/../ path)
  external_saved.onnx     onnx.save_model(save_as_external_data=True)
  attrs.onnx              a node with attributes of every supported type
  mha_torch.onnx          torch.onnx export of nn.MultiheadAttention (opset 14)
  deep_if_32.onnx         If subgraphs nested 32 levels (the limit)
Malformed models: bad_*.onnx, ext_bad/*.onnx, deep_*.onnx (see below).
TensorProto files: tensor_*.pb.
"""
import os
import struct
import sys

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

OUT = None


def write(name, data):
    path = os.path.join(OUT, name)
    os.makedirs(os.path.dirname(path), exist_ok=True)
    if not isinstance(data, (bytes, bytearray)):
        data = data.SerializeToString()
    with open(path, "wb") as f:
        f.write(data)


def model(nodes, inputs, outputs, inits=(), opsets=(("", 14),), value_info=(), name="g", **kw):
    g = helper.make_graph(list(nodes), name, list(inputs), list(outputs), list(inits),
                          value_info=list(value_info))
    m = helper.make_model(g, opset_imports=[helper.make_opsetid(d, v) for d, v in opsets],
                          producer_name="qkv-tests", producer_version="1.0")
    m.ir_version = kw.get("ir_version", 8)
    return m


def vinfo(name, dtype=TensorProto.FLOAT, shape=None):
    return helper.make_tensor_value_info(name, dtype, shape)


def raw_tensor(name, dtype, dims, raw):
    t = TensorProto()
    t.name = name
    t.data_type = dtype
    t.dims.extend(dims)
    t.raw_data = raw
    return t


def external_tensor(name, dtype, dims, location, offset=None, length=None):
    t = TensorProto()
    t.name = name
    t.data_type = dtype
    t.dims.extend(dims)
    t.data_location = TensorProto.EXTERNAL
    for k, v in (("location", location), ("offset", offset), ("length", length)):
        if v is not None:
            e = t.external_data.add()
            e.key = k
            e.value = str(v)
    return t


# ---- valid models -------------------------------------------------------------

def mha_small():
    w = numpy_helper.from_array(np.arange(16, dtype=np.float32).reshape(4, 4) / 16, "W")
    b = numpy_helper.from_array(np.array([0.5, -0.5, 1, 2], dtype=np.float32), "B")
    nodes = [
        helper.make_node("MatMul", ["x", "W"], ["mm"], name="attn/MatMul_0"),
        helper.make_node("Add", ["mm", "B"], ["biased"], name="attn/Add_1"),
        helper.make_node("Mul", ["biased", "scale"], ["scaled"], name="attn/Mul_2"),
        helper.make_node("Softmax", ["scaled"], ["y"], name="attn/Softmax_3", axis=-1),
    ]
    m = model(nodes,
              [vinfo("x", shape=["batch", 3, 4]), vinfo("scale"), vinfo("B", shape=[4])],
              [vinfo("y", shape=["batch", 3, None])],
              [w, b],
              value_info=[vinfo("mm", shape=["batch", 3, 4])], name="mha_small")
    m.model_version = 7
    m.domain = "org.qkv.test"
    m.doc_string = "a tiny attention-like block"
    helper.set_model_props(m, {"author": "qkv", "purpose": "loader test"})
    write("mha_small.onnx", m)
    return m


def if_outer():
    # then: nested If (reads x from two levels up) ; else: y + x
    inner_then = helper.make_graph(
        [helper.make_node("Relu", ["x"], ["it"], name="inner_relu")], "inner_then", [],
        [vinfo("it", shape=[2])])
    inner_else = helper.make_graph(
        [helper.make_node("Neg", ["x"], ["ie"], name="inner_neg")], "inner_else", [],
        [vinfo("ie", shape=[2])])
    then_g = helper.make_graph(
        [helper.make_node("If", ["c"], ["t_if"], name="nested_if",
                          then_branch=inner_then, else_branch=inner_else),
         helper.make_node("Add", ["t_if", "k"], ["t_out"], name="then_add")],
        "then", [], [vinfo("t_out", shape=[2])],
        [numpy_helper.from_array(np.array([1, 1], dtype=np.float32), "k")])
    else_g = helper.make_graph(
        [helper.make_node("Add", ["y", "x"], ["e_out"], name="else_add")], "else", [],
        [vinfo("e_out", shape=[2])])
    nodes = [
        helper.make_node("Abs", ["x"], ["y"], name="abs"),
        helper.make_node("If", ["c"], ["z"], name="the_if", then_branch=then_g,
                         else_branch=else_g),
        helper.make_node("Identity", ["z"], ["out"], name="ident"),
    ]
    m = model(nodes, [vinfo("c", TensorProto.BOOL, []), vinfo("x", shape=[2])],
              [vinfo("out", shape=[2])], name="if_outer")
    write("if_outer.onnx", m)


def bits_bf16(vals):
    return (np.array(vals, dtype=np.float32).view(np.uint32) >> 16).astype(np.uint16)


# (name, data_type, dims, raw bytes, typed-field setter)
def dtype_cases():
    cases = []

    def num(name, dt, arr, field, conv=lambda a: a.ravel().tolist()):
        cases.append((name, dt, list(arr.shape), arr.tobytes(), (field, conv(arr))))

    num("f32", TensorProto.FLOAT, np.array([[1.5, -2], [3.25, 4]], np.float32), "float_data")
    num("u8", TensorProto.UINT8, np.array([0, 7, 255], np.uint8), "int32_data")
    num("i8", TensorProto.INT8, np.array([-128, 0, 127], np.int8), "int32_data")
    num("u16", TensorProto.UINT16, np.array([0, 65535], np.uint16), "int32_data")
    num("i16", TensorProto.INT16, np.array([-32768, 32767], np.int16), "int32_data")
    num("i32", TensorProto.INT32, np.array([-5, 2**31 - 1], np.int32), "int32_data")
    num("i64", TensorProto.INT64, np.array([-2**40, 2**62], np.int64), "int64_data")
    num("bool", TensorProto.BOOL, np.array([True, False, True, True]), "int32_data",
        lambda a: a.astype(np.int32).tolist())
    num("f16", TensorProto.FLOAT16, np.array([1, -0.5, 65504], np.float16), "int32_data",
        lambda a: a.view(np.uint16).astype(np.int32).tolist())
    num("f64", TensorProto.DOUBLE, np.array([3.141592653589793, -1e300]), "double_data")
    num("u32", TensorProto.UINT32, np.array([0, 2**32 - 1], np.uint32), "uint64_data")
    num("u64", TensorProto.UINT64, np.array([0, 2**64 - 1], np.uint64), "uint64_data")
    num("c64", TensorProto.COMPLEX64, np.array([1 + 2j, -3.5], np.complex64), "float_data",
        lambda a: a.view(np.float32).tolist())
    num("c128", TensorProto.COMPLEX128, np.array([1e-3 - 2j], np.complex128), "double_data",
        lambda a: a.view(np.float64).tolist())
    bf = bits_bf16([1.0, -2.0, 0.5])
    cases.append(("bf16", 16, [3], bf.tobytes(), ("int32_data", bf.astype(np.int32).tolist())))
    # types newer than onnx 1.12's enum: one byte each, or packed
    for name, dt, dims, raw in [
        ("f8e4m3fn", 17, [3], bytes([0x38, 0xC0, 0x7E])),
        ("f8e4m3fnuz", 18, [2], bytes([0x40, 0x80])),
        ("f8e5m2", 19, [2], bytes([0x3C, 0xFB])),
        ("f8e5m2fnuz", 20, [1], bytes([0x41])),
        ("u4", 21, [3], bytes([0xF1, 0x07])),        # 1, 15, 7: low nibble first
        ("i4", 22, [2, 2], bytes([0x78, 0x0F])),     # -8, 7, -1, 0
        ("f4e2m1", 23, [2], bytes([0x21])),
        ("f8e8m0", 24, [2], bytes([0x7F, 0x80])),
        ("u2", 25, [5], bytes([0xE4, 0x03])),        # 0,1,2,3,3
        ("i2", 26, [3], bytes([0x1B])),
    ]:
        cases.append((name, dt, dims, raw, ("int32_data", list(raw))))
    cases.append(("empty", TensorProto.FLOAT, [0, 3], b"", ("float_data", [])))
    cases.append(("scalar", TensorProto.INT64, [], struct.pack("<q", 42), ("int64_data", [42])))
    return cases


def dtypes():
    strings = [b"hello", b"", "w\u00f6rld".encode()]
    for variant in ("raw", "typed"):
        inits = []
        for name, dt, dims, raw, (field, vals) in dtype_cases():
            if variant == "raw":
                t = raw_tensor(name, dt, dims, raw)
            else:
                t = TensorProto()
                t.name, t.data_type = name, dt
                t.dims.extend(dims)
                getattr(t, field).extend(vals)
            inits.append(t)
        s = TensorProto()
        s.name, s.data_type = "str", TensorProto.STRING
        s.dims.append(3)
        s.string_data.extend(strings)
        inits.append(s)
        m = model([helper.make_node("Identity", ["f32"], ["out"], name="id")], [],
                  [vinfo("out", shape=[2, 2])], inits, name="dtypes_" + variant)
        write("dtypes_%s.onnx" % variant, m)


def external():
    i64 = np.array([7, -9], np.int64).tobytes()
    f32 = np.array([1, 2, 3, 4], np.float32).tobytes()
    write("weights.bin", i64 + f32)
    write("extdir/w.bin", np.array([5, 6], np.int32).tobytes())
    inits = [
        external_tensor("w_f32", TensorProto.FLOAT, [2, 2], "weights.bin", 16, 16),
        external_tensor("w_i64", TensorProto.INT64, [2], "sub/../weights.bin"),
        external_tensor("w_dir", TensorProto.INT32, [2], "extdir/w.bin", 0, 8),
    ]
    m = model([helper.make_node("Identity", ["w_f32"], ["out"], name="id")], [],
              [vinfo("out", shape=[2, 2])], inits, name="external_ok")
    write("external_ok.onnx", m)

    # onnx's own writer
    w = numpy_helper.from_array(np.arange(6, dtype=np.float32).reshape(2, 3), "w_saved")
    m = model([helper.make_node("Identity", ["w_saved"], ["out"], name="id")], [],
              [vinfo("out", shape=[2, 3])], [w], name="external_saved")
    saved_bin = os.path.join(OUT, "external_saved.bin")
    if os.path.exists(saved_bin):
        os.remove(saved_bin)  # onnx appends to an existing file
    onnx.save_model(m, os.path.join(OUT, "external_saved.onnx"), save_as_external_data=True,
                    all_tensors_to_one_file=True, location="external_saved.bin",
                    size_threshold=0)

    # refused external references, in their own directory
    write("outside.bin", bytes(64))
    write("ext_bad/data.bin", bytes(range(64)))
    link = os.path.join(OUT, "ext_bad", "link.bin")
    if os.path.lexists(link):
        os.remove(link)
    os.symlink("../outside.bin", link)
    for name, t in [
        ("absolute", external_tensor("w", TensorProto.FLOAT, [4], "/etc/hostname")),
        ("escape", external_tensor("w", TensorProto.FLOAT, [4], "../outside.bin")),
        ("escape_deep", external_tensor("w", TensorProto.FLOAT, [4], "a/../../outside.bin")),
        ("symlink", external_tensor("w", TensorProto.FLOAT, [4], "link.bin")),
        ("past_end", external_tensor("w", TensorProto.FLOAT, [4], "data.bin", 60, 16)),
        ("offset_past_end", external_tensor("w", TensorProto.FLOAT, [4], "data.bin", 1000)),
        ("length_mismatch", external_tensor("w", TensorProto.FLOAT, [4], "data.bin", 0, 12)),
        ("missing", external_tensor("w", TensorProto.FLOAT, [4], "nope.bin")),
        ("bad_offset", external_tensor("w", TensorProto.FLOAT, [4], "data.bin", "-5")),
        ("no_location", external_tensor("w", TensorProto.FLOAT, [4], None, 0)),
    ]:
        m = model([helper.make_node("Identity", ["w"], ["out"], name="id")], [],
                  [vinfo("out", shape=[4])], [t], name="ext_" + name)
        write("ext_bad/ext_%s.onnx" % name, m)


def attrs():
    sub = helper.make_graph([helper.make_node("Identity", ["x"], ["sx"], name="sub_id")], "body",
                            [], [vinfo("sx")])
    sub2 = helper.make_graph([helper.make_node("Neg", ["x"], ["sy"], name="sub_neg")], "body2",
                             [], [vinfo("sy")])
    t1 = numpy_helper.from_array(np.array([1, 2, 3], np.int64), "t1")
    t2 = numpy_helper.from_array(np.array([0.25], np.float32), "t2")
    node = helper.make_node(
        "Everything", ["x"], ["y"], name="every_attr", domain="org.qkv.test",
        f=0.5, i=-7, s="text", t=t1, g=sub, floats=[1.0, 2.5], ints=[3, -4, 5],
        strings=["a", "bc"], tensors=[t1, t2], graphs=[sub, sub2])
    const = helper.make_node("Constant", [], ["c"], name="const",
                             value=numpy_helper.from_array(np.array([[9.0]], np.float32)))
    m = model([node, const], [vinfo("x", shape=[1])], [vinfo("y"), vinfo("c")],
              opsets=(("", 14), ("org.qkv.test", 1)), name="attrs")
    write("attrs.onnx", m)


def mha_torch():
    import torch
    torch.manual_seed(0)
    mha = torch.nn.MultiheadAttention(embed_dim=8, num_heads=2)
    mha.eval()
    q = torch.randn(5, 2, 8)
    # torch 1.13 cannot export eval-mode MultiheadAttention under no_grad (it takes
    # the fused fast path): export with gradients enabled.
    path = os.path.join(OUT, "mha_torch.onnx")
    axes = {0: "seq", 1: "batch"}
    torch.onnx.export(mha, (q, q, q), path, opset_version=14,
                      input_names=["query", "key", "value"],
                      output_names=["attn_output", "attn_weights"],
                      dynamic_axes={"query": axes, "key": axes, "value": axes,
                                    "attn_output": axes, "attn_weights": {0: "batch"}})


# ---- hand-built protobuf bytes ---------------------------------------------------

def varint(n):
    out = bytearray()
    while True:
        b = n & 0x7F
        n >>= 7
        if n:
            out.append(b | 0x80)
        else:
            out.append(b)
            return bytes(out)


def key(field, wire):
    return varint(field << 3 | wire)


def ld(field, payload):
    return key(field, 2) + varint(len(payload)) + payload


def deep_if(levels):
    """A ModelProto whose graph nests `levels` If subgraphs, built without
    recursion: each message's nested field comes last, so the file is the
    prefixes of every level followed by the innermost (empty) graph."""
    prefixes = []
    inner_len = 0  # the innermost graph is empty
    for _ in range(levels):
        attr_pre = ld(1, b"then_branch") + key(20, 0) + varint(5) + key(6, 2) + varint(inner_len)
        attr_len = len(attr_pre) + inner_len
        node_pre = ld(1, b"c") + ld(2, b"o") + ld(4, b"If") + key(5, 2) + varint(attr_len)
        node_len = len(node_pre) + attr_len
        graph_pre = key(1, 2) + varint(node_len)
        prefixes.append(graph_pre + node_pre + attr_pre)
        inner_len = len(graph_pre) + node_len
    # the main graph also declares input "c" (bool scalar)
    cond = ld(11, ld(1, b"c") + ld(2, ld(1, key(1, 0) + varint(9) + ld(2, b""))))
    main_len = len(cond) + inner_len
    head = key(1, 0) + varint(8) + ld(8, key(2, 0) + varint(14)) + key(7, 2) + varint(main_len)
    prefixes.reverse()  # outermost first
    return head + cond + b"".join(prefixes)


# ---- malformed models ---------------------------------------------------------------

def malformed(good):
    data = good.SerializeToString()
    write("bad_truncated.onnx", data[: len(data) // 2])
    write("bad_garbage.onnx", b"this is not an ONNX model \xff\xfe\x00\x01" * 4)
    write("bad_empty.onnx", b"")

    x = vinfo("x", shape=[2])
    y = vinfo("y", shape=[2])

    def one(name, nodes, inputs=(x,), outputs=(y,), inits=(), **kw):
        write("bad_%s.onnx" % name, model(nodes, inputs, outputs, inits, name=name, **kw))

    one("missing_opset", [helper.make_node("Custom", ["x"], ["y"], name="custom_0",
                                           domain="com.example")])
    one("unproduced_input", [helper.make_node("Add", ["x", "ghost"], ["y"], name="add_0")])
    one("duplicate_producer", [helper.make_node("Relu", ["x"], ["y"], name="relu_a"),
                               helper.make_node("Neg", ["x"], ["y"], name="neg_b")])
    one("shadow_initializer",
        [helper.make_node("Relu", ["x"], ["w"], name="relu_w"),
         helper.make_node("Add", ["x", "w"], ["y"], name="add_w")],
        inits=[numpy_helper.from_array(np.zeros(2, np.float32), "w")])
    one("shadow_input", [helper.make_node("Relu", ["y"], ["x"], name="relu_x"),
                         helper.make_node("Neg", ["x"], ["y"], name="neg_y")])
    one("cycle", [helper.make_node("Add", ["x", "t2"], ["t1"], name="cyc_add"),
                  helper.make_node("Relu", ["t1"], ["t2"], name="cyc_relu"),
                  helper.make_node("Neg", ["t1"], ["y"], name="cyc_out")])
    one("unproduced_output", [helper.make_node("Relu", ["x"], ["y"], name="relu")],
        outputs=[y, vinfo("nothing")])
    one("raw_mismatch", [helper.make_node("Add", ["x", "w"], ["y"], name="add")],
        inits=[raw_tensor("w", TensorProto.FLOAT, [2, 2], bytes(12))])
    typed = TensorProto()
    typed.name, typed.data_type = "w", TensorProto.FLOAT
    typed.dims.extend([2, 2])
    typed.float_data.extend([1, 2, 3])
    one("typed_mismatch", [helper.make_node("Add", ["x", "w"], ["y"], name="add")],
        inits=[typed])
    one("negative_dim", [helper.make_node("Add", ["x", "w"], ["y"], name="add")],
        inits=[raw_tensor("w", TensorProto.FLOAT, [-1, 2], b"")])
    one("dims_overflow", [helper.make_node("Add", ["x", "w"], ["y"], name="add")],
        inits=[raw_tensor("w", TensorProto.FLOAT, [2**40, 2**40], b"")])
    one("unknown_dtype", [helper.make_node("Add", ["x", "w"], ["y"], name="add")],
        inits=[raw_tensor("w", 99, [1], b"\0")])
    one("rank13", [helper.make_node("Add", ["x", "w"], ["y"], name="add")],
        inits=[raw_tensor("w", TensorProto.FLOAT, [1] * 13, bytes(4))])
    one("input_rank13", [helper.make_node("Relu", ["x"], ["y"], name="relu")],
        inputs=[vinfo("x", shape=[1] * 13)])
    nodata = TensorProto()
    nodata.name, nodata.data_type = "w", TensorProto.FLOAT
    nodata.dims.append(2)
    one("no_data", [helper.make_node("Add", ["x", "w"], ["y"], name="add")], inits=[nodata])
    # sparse initializer
    m = model([helper.make_node("Relu", ["x"], ["y"], name="relu")], [x], [y], name="sparse")
    sp = m.graph.sparse_initializer.add()
    sp.values.CopyFrom(numpy_helper.from_array(np.array([1.0], np.float32), "sp"))
    sp.indices.CopyFrom(numpy_helper.from_array(np.array([0], np.int64), "sp_idx"))
    sp.dims.extend([4])
    write("bad_sparse_initializer.onnx", m)
    # sparse tensor attribute
    node = helper.make_node("ConstantOfShape", ["x"], ["y"], name="cos_sparse")
    a = node.attribute.add()
    a.name, a.type = "sparse_value", onnx.AttributeProto.SPARSE_TENSOR
    a.sparse_tensor.CopyFrom(sp)
    one("sparse_attr", [node])
    # a subgraph reading a name nobody defines
    then_g = helper.make_graph([helper.make_node("Add", ["x", "ghost"], ["t"], name="inner_add")],
                               "then", [], [vinfo("t")])
    else_g = helper.make_graph([helper.make_node("Relu", ["x"], ["e"], name="inner_relu")],
                               "else", [], [vinfo("e")])
    one("subgraph_unresolved",
        [helper.make_node("If", ["c"], ["y"], name="if_0", then_branch=then_g,
                          else_branch=else_g)],
        inputs=[vinfo("c", TensorProto.BOOL, []), x])
    # a subgraph reading the output of the node that owns it: a cycle
    loop_g = helper.make_graph([helper.make_node("Relu", ["y"], ["t"], name="inner_relu")],
                               "then", [], [vinfo("t")])
    one("subgraph_cycle",
        [helper.make_node("If", ["c"], ["y"], name="if_self", then_branch=loop_g,
                          else_branch=loop_g)],
        inputs=[vinfo("c", TensorProto.BOOL, []), x])

    write("deep_nesting.onnx", deep_if(10000))
    write("deep_if_40.onnx", deep_if(40))
    write("deep_if_32.onnx", deep_if(32))


# ---- TensorProto files ------------------------------------------------------------------

def tensors():
    write("tensor_float.pb",
          numpy_helper.from_array(np.arange(6, dtype=np.float32).reshape(2, 3), "input_0"))
    s = TensorProto()
    s.name, s.data_type = "words", TensorProto.STRING
    s.dims.append(2)
    s.string_data.extend([b"qkv", b"attention"])
    write("tensor_string.pb", s)
    write("tensor_bad.pb", raw_tensor("bad", TensorProto.FLOAT, [3], bytes(8)))
    write("tensor_ext.bin", np.array([1, 2, 3], np.int64).tobytes())
    write("tensor_ext.pb", external_tensor("ext", TensorProto.INT64, [3], "tensor_ext.bin"))
    write("tensor_garbage.pb", b"\xff\xff\xff\xff")


def main():
    global OUT
    if len(sys.argv) != 2:
        sys.exit("usage: make_models.py OUTDIR")
    OUT = sys.argv[1]
    os.makedirs(OUT, exist_ok=True)
    good = mha_small()
    if_outer()
    dtypes()
    external()
    attrs()
    malformed(good)
    tensors()
    mha_torch()


if __name__ == "__main__":
    main()
