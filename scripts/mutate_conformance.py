#!/usr/bin/python3
"""Write error-path variants of the ONNX node conformance tests.

Usage: mutate_conformance.py [--op OP]... [--kinds K,K] SUITE OUTDIR
       mutate_conformance.py --run QKV [--jobs N] OUTDIR

SUITE is a generated node suite (scripts/gen_conformance.py: SUITE/test_*/).
For each single-node test (the *_expanded ones are skipped) it writes variants
into OUTDIR/<test>__<mutation>/ with data set 0 and the original expected
outputs. A variant is not expected to pass: it is bad input that must give an
error (or some result), never a crash, a sanitizer report or a leak.

--run QKV runs `QKV test VARIANT` for each variant, one process each (N at a
time, default 2), with ASan/UBSan reports written to OUTDIR.logs/ (the
binary should be a sanitizer build: scripts/build.sh --asan --clang), and
lists every variant that died on a signal, timed out (60 s), or left a
sanitizer report. Exit status 1 if there is one.

Kinds (--kinds, default all):
  omit   node input k given as "" (an omitted optional input)
  empty  graph input k with its dim j set to 0 (an empty tensor)
  rank   graph input k as a scalar (its first element), and with a leading 1
  attr   an int attribute set to -1, 0, 2**40; an ints attribute with one
         entry set to -1 or 2**40, or emptied; an attribute removed
  value  an integer graph input with its entries set to -1, 2**31-1 or
         int64 max (indices, axes, shapes, lengths, counts)
  dtype  a float graph input as double, and a double one as float
"""

import argparse
import copy
import os
import shutil
import subprocess
import sys

import numpy as np
import onnx
from onnx import helper, numpy_helper

BIG = 2**40


def load_inputs(ds):
    out = []
    k = 0
    while os.path.exists(os.path.join(ds, f"input_{k}.pb")):
        t = onnx.TensorProto()
        with open(os.path.join(ds, f"input_{k}.pb"), "rb") as f:
            t.ParseFromString(f.read())
        out.append(t)
        k += 1
    return out


def is_plain_tensor_input(model, k, inputs):
    vi = model.graph.input[k]
    return vi.type.HasField("tensor_type") and k < len(inputs) and inputs[k].data_type != 0


def write_variant(outdir, name, model, inputs, src_ds):
    d = os.path.join(outdir, name)
    ds = os.path.join(d, "test_data_set_0")
    os.makedirs(ds, exist_ok=True)
    onnx.save(model, os.path.join(d, "model.onnx"))
    for k, t in enumerate(inputs):
        with open(os.path.join(ds, f"input_{k}.pb"), "wb") as f:
            f.write(t if isinstance(t, bytes) else t.SerializeToString())
    k = 0
    while os.path.exists(os.path.join(src_ds, f"output_{k}.pb")):
        shutil.copy(os.path.join(src_ds, f"output_{k}.pb"), ds)
        k += 1


def raw_inputs(ds):
    out = []
    k = 0
    while os.path.exists(os.path.join(ds, f"input_{k}.pb")):
        with open(os.path.join(ds, f"input_{k}.pb"), "rb") as f:
            out.append(f.read())
        k += 1
    return out


def unshape(model):
    """Forget the declared shapes of the graph's inputs and outputs."""
    for vi in list(model.graph.input) + list(model.graph.output):
        if vi.type.HasField("tensor_type"):
            vi.type.tensor_type.ClearField("shape")
    model.graph.ClearField("value_info")


def set_input(model, raws, k, arr, name):
    m = copy.deepcopy(model)
    unshape(m)
    t = numpy_helper.from_array(arr, name)
    m.graph.input[k].type.tensor_type.elem_type = t.data_type
    r = list(raws)
    r[k] = t.SerializeToString()
    return m, r


def mutations(model, raws, tensors, kinds):
    g = model.graph
    node = g.node[0]
    graph_inputs = [vi.name for vi in g.input]
    if "omit" in kinds:
        for k, name in enumerate(node.input):
            if not name:
                continue
            m = copy.deepcopy(model)
            m.graph.node[0].input[k] = ""
            r = list(raws)
            if name in graph_inputs and name not in list(node.input[:k]) + list(node.input[k + 1:]):
                gi = graph_inputs.index(name)
                del m.graph.input[gi]
                del r[gi]
            yield f"omit{k}", m, r
    for k, t in enumerate(tensors):
        if not is_plain_tensor_input(model, k, tensors) or t.data_type == onnx.TensorProto.STRING:
            continue
        try:
            a = numpy_helper.to_array(t)
        except Exception:
            continue
        if "empty" in kinds:
            for j in range(a.ndim):
                shape = list(a.shape)
                shape[j] = 0
                yield (f"in{k}_dim{j}_0",) + set_input(model, raws, k, np.zeros(shape, a.dtype), t.name)
        if "rank" in kinds:
            if a.ndim > 0 and a.size > 0:
                yield (f"in{k}_scalar",) + set_input(model, raws, k, np.array(a.flat[0]), t.name)
            yield (f"in{k}_lead1",) + set_input(model, raws, k, a[None], t.name)
        if "value" in kinds and a.dtype in (np.int32, np.int64) and a.size > 0:
            info = np.iinfo(a.dtype)
            for v, tag in ((-1, "m1"), (2**31 - 1, "i32max"), (info.max, "max"), (info.min, "min")):
                b = np.full_like(a, min(max(v, info.min), info.max))
                yield (f"in{k}_val_{tag}",) + set_input(model, raws, k, b, t.name)
        if "dtype" in kinds and a.dtype in (np.float32, np.float64):
            other = np.float64 if a.dtype == np.float32 else np.float32
            yield (f"in{k}_as_{np.dtype(other).name}",) + set_input(model, raws, k, a.astype(other), t.name)
    if "attr" in kinds:
        for i, at in enumerate(node.attribute):
            m = copy.deepcopy(model)
            del m.graph.node[0].attribute[i]
            yield f"attr_{at.name}_removed", m, raws
            if at.type == onnx.AttributeProto.INT:
                for v, tag in ((-1, "m1"), (0, "0"), (BIG, "big"), (-BIG, "mbig")):
                    m = copy.deepcopy(model)
                    m.graph.node[0].attribute[i].i = v
                    yield f"attr_{at.name}_{tag}", m, raws
            elif at.type == onnx.AttributeProto.INTS:
                m = copy.deepcopy(model)
                del m.graph.node[0].attribute[i].ints[:]
                yield f"attr_{at.name}_empty", m, raws
                for j in range(len(at.ints)):
                    for v, tag in ((-1, "m1"), (BIG, "big")):
                        m = copy.deepcopy(model)
                        m.graph.node[0].attribute[i].ints[j] = v
                        yield f"attr_{at.name}{j}_{tag}", m, raws
            elif at.type == onnx.AttributeProto.FLOAT:
                for v, tag in ((float("nan"), "nan"), (-1.0, "m1"), (1e30, "huge")):
                    m = copy.deepcopy(model)
                    m.graph.node[0].attribute[i].f = v
                    yield f"attr_{at.name}_{tag}", m, raws


def run_one(qkv, vdir, logdir):
    name = os.path.basename(vdir.rstrip("/"))
    env = dict(os.environ)
    env["ASAN_OPTIONS"] = (f"detect_leaks=1:allocator_may_return_null=1:"
                          f"log_path={logdir}/{name}.asan")
    env["UBSAN_OPTIONS"] = f"print_stacktrace=1:halt_on_error=1:log_path={logdir}/{name}.ubsan"
    try:
        p = subprocess.run([qkv, "test", vdir], env=env, stdout=subprocess.PIPE,
                           stderr=subprocess.STDOUT, timeout=60)
        rc, out = p.returncode, p.stdout.decode(errors="replace")
    except subprocess.TimeoutExpired:
        rc, out = "timeout", ""
    reports = [f for f in os.listdir(logdir) if f.startswith(name + ".")]
    bad = rc == "timeout" or (isinstance(rc, int) and (rc < 0 or rc >= 128)) or reports
    return name, rc, reports, out if bad else ""


def run_all(qkv, outdir, jobs):
    from concurrent.futures import ThreadPoolExecutor
    logdir = os.path.abspath(outdir.rstrip("/") + ".logs")
    shutil.rmtree(logdir, ignore_errors=True)
    os.makedirs(logdir)
    variants = sorted(os.path.join(outdir, d) for d in os.listdir(outdir))
    bad = []
    with ThreadPoolExecutor(jobs) as ex:
        for name, rc, reports, out in ex.map(lambda v: run_one(qkv, v, logdir), variants):
            if reports or out:
                bad.append(name)
                print(f"BAD {name}: exit {rc}, reports {reports}")
                print("\n".join(out.splitlines()[-5:]))
    print(f"mutate_conformance: {len(variants)} variants run, {len(bad)} bad (logs in {logdir})")
    return 1 if bad else 0


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--run", metavar="QKV", help="run the variants in OUTDIR with this qkv")
    ap.add_argument("--jobs", type=int, default=2)
    ap.add_argument("--op", action="append", default=[], help="only nodes of this op type")
    ap.add_argument("--kinds", default="omit,empty,rank,attr,value,dtype")
    ap.add_argument("dirs", nargs="+", metavar="SUITE OUTDIR")
    a = ap.parse_args()
    if a.run:
        return run_all(a.run, a.dirs[-1], a.jobs)
    if len(a.dirs) != 2:
        ap.error("expected SUITE OUTDIR")
    a.suite, a.outdir = a.dirs
    kinds = set(a.kinds.split(","))
    os.makedirs(a.outdir, exist_ok=True)
    n = 0
    for test in sorted(os.listdir(a.suite)):
        if not test.startswith("test_") or test.endswith("_expanded"):
            continue
        tdir = os.path.join(a.suite, test)
        ds = os.path.join(tdir, "test_data_set_0")
        try:
            model = onnx.load(os.path.join(tdir, "model.onnx"))
        except Exception:
            continue
        if len(model.graph.node) != 1 or not os.path.isdir(ds):
            continue
        if a.op and model.graph.node[0].op_type not in a.op:
            continue
        raws = raw_inputs(ds)
        try:
            tensors = load_inputs(ds)
        except Exception:
            tensors = []
        for name, m, r in mutations(model, raws, tensors, kinds):
            write_variant(a.outdir, f"{test}__{name}", m, r, ds)
            n += 1
    print(f"mutate_conformance: {n} variants in {a.outdir}")
    return 0 if n else 1


if __name__ == "__main__":
    sys.exit(main())
