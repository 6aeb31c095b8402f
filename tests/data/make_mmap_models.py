#!/usr/bin/env python3
"""Models for tests/test_loader_mmap.c: large initializers the loader leaves in
file mappings. Written into OUT/mmap/:

  inline.onnx          y = (x @ wa) * wb + wc + bias, x[16,64]; wa [64,64] (16 KiB),
                       wb and wc [16,64] (4 KiB: the smallest payload left in the
                       file) float32 raw_data inline, bias [64] (small).
                       The payload offsets are arranged: wa and wc at a multiple
                       of 4 (used in place), wb at 2 mod 4 (copied: kernels need
                       aligned floats).
  inline_in.pb, inline_out.pb   an input and numpy's output
  external/model.onnx  the same graph, every initializer in external/weights.bin
                       (onnx.save_model(save_as_external_data=True))
  bad_length.onnx      wa's raw_data is 16380 bytes for dims [64,64] float32
  bad_past_end.onnx    the file ends inside wa's raw_data (its length says more)
  fake_ref.onnx        initializer 'wa' has no raw_data but carries the field
                       number the loader uses for its own payload references
  two_raw.onnx         wa has two raw_data fields: a large one, then the real one
                       (the last wins)
"""
import os
import sys

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

RANGE_FIELD = 536870911  # loader_map.c: the field number of a payload reference


def varint(n):
    out = bytearray()
    while True:
        b = n & 0x7F
        n >>= 7
        out.append(b | (0x80 if n else 0))
        if not n:
            return bytes(out)


def weights():
    rng = np.random.default_rng(11)
    wa = (rng.standard_normal((64, 64)) * 0.1).astype(np.float32)
    wb = rng.standard_normal((16, 64)).astype(np.float32)
    wc = rng.standard_normal((16, 64)).astype(np.float32)
    bias = rng.standard_normal(64).astype(np.float32)
    x = rng.standard_normal((16, 64)).astype(np.float32)
    return wa, wb, wc, bias, x


def build(pads):
    """The model, with doc_string padding that shifts the payload offsets."""
    wa, wb, wc, bias, _ = weights()
    nodes = [
        helper.make_node("MatMul", ["x", "wa"], ["h"], name="proj"),
        helper.make_node("Mul", ["h", "wb"], ["h2"], name="scale"),
        helper.make_node("Add", ["h2", "wc"], ["h3"], name="shift"),
        helper.make_node("Add", ["h3", "bias"], ["y"], name="bias_add"),
    ]
    inits = [numpy_helper.from_array(a, n) for a, n in
             ((wa, "wa"), (wb, "wb"), (wc, "wc"), (bias, "bias"))]
    for t, pad in zip(inits, pads[1:]):
        t.doc_string = "p" * pad  # field 12, after raw_data: shifts the next tensor
    g = helper.make_graph(nodes, "mmap", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [16, 64])],
                          [helper.make_tensor_value_info("y", TensorProto.FLOAT, [16, 64])], inits)
    m = helper.make_model(g, opset_imports=[helper.make_opsetid("", 14)],
                          producer_name="qkv-tests")
    m.ir_version = 8
    m.doc_string = "d" * pads[0]  # field 6, before the graph: shifts everything
    return m


def offsets(data):
    wa, wb, wc, _, _ = weights()
    return [data.find(a.tobytes()) for a in (wa, wb, wc)]


def arranged():
    for p0 in range(8):
        for p1 in range(8):
            for p2 in range(8):
                m = build((p0, p1, p2, 0, 0))
                oa, ob, oc = offsets(m.SerializeToString())
                if oa % 8 == 0 and ob % 4 == 2 and oc % 4 == 0:
                    return m
    raise SystemExit("no padding gives the wanted payload offsets")


def main():
    out = os.path.join(sys.argv[1], "mmap")
    os.makedirs(os.path.join(out, "external"), exist_ok=True)
    wa, wb, wc, bias, x = weights()
    m = arranged()
    data = m.SerializeToString()
    with open(os.path.join(out, "inline.onnx"), "wb") as f:
        f.write(data)
    y = ((x.astype(np.float64) @ wa) * wb + wc + bias).astype(np.float32)
    with open(os.path.join(out, "inline_in.pb"), "wb") as f:
        f.write(numpy_helper.from_array(x, "x").SerializeToString())
    with open(os.path.join(out, "inline_out.pb"), "wb") as f:
        f.write(numpy_helper.from_array(y, "y").SerializeToString())

    ext = onnx.ModelProto()
    ext.CopyFrom(m)
    bin_path = os.path.join(out, "external", "weights.bin")
    if os.path.exists(bin_path):
        os.remove(bin_path)  # onnx appends to an existing file
    onnx.save_model(ext, os.path.join(out, "external", "model.onnx"), save_as_external_data=True,
                    all_tensors_to_one_file=True, location="weights.bin", size_threshold=0)

    # raw_data 4 bytes short of dims [64,64] float32: re-encode wa by hand
    bad = onnx.ModelProto()
    bad.CopyFrom(m)
    bad.graph.initializer[0].raw_data = wa.tobytes()[:-4]
    with open(os.path.join(out, "bad_length.onnx"), "wb") as f:
        f.write(bad.SerializeToString())

    # the file stops 100 bytes into wa's payload: every enclosing length lies
    with open(os.path.join(out, "bad_past_end.onnx"), "wb") as f:
        f.write(data[:offsets(data)[0] + 100])

    # wa without raw_data but with a reference field of its own making
    fake = onnx.ModelProto()
    fake.CopyFrom(m)
    fake.graph.initializer[0].ClearField("raw_data")
    t = fake.graph.initializer[0].SerializeToString() + varint(RANGE_FIELD << 3) + varint(0)
    fake.graph.initializer[0].ParseFromString(t)
    with open(os.path.join(out, "fake_ref.onnx"), "wb") as f:
        f.write(fake.SerializeToString())

    # two raw_data fields in wa: 16 KiB of zeros first, the real payload last
    two = onnx.ModelProto()
    two.CopyFrom(m)
    t = two.graph.initializer[0].SerializeToString()
    key = varint((9 << 3) | 2)
    zeros = bytes(wa.nbytes)
    t = key + varint(len(zeros)) + zeros + t
    two.graph.initializer[0].ParseFromString(t)  # keeps the last value
    raw = two.SerializeToString()
    # protobuf's python serializer merges the two: splice them back in by hand
    tensor = two.graph.initializer[0].SerializeToString()
    doubled = key + varint(len(zeros)) + zeros + tensor
    graph = two.graph.SerializeToString()
    graph = graph.replace(varint((5 << 3) | 2) + varint(len(tensor)) + tensor,
                          varint((5 << 3) | 2) + varint(len(doubled)) + doubled, 1)
    two.ClearField("graph")
    head = two.SerializeToString()
    raw = head + varint((7 << 3) | 2) + varint(len(graph)) + graph
    with open(os.path.join(out, "two_raw.onnx"), "wb") as f:
        f.write(raw)


if __name__ == "__main__":
    main()
