#!/usr/bin/env python3
"""qkv against ONNX Runtime (npm onnxruntime-node, CPU) on models with the
com.microsoft contrib ops of ORT's transformer optimizer.

usage: bench/contrib_vs_ort.py [--build DIR] [--ort-dir DIR] [check | bench]

  check   (default) runs every test directory tests/data/make_contrib_models.py
          wrote (BUILD/testdata/contrib/<name>, not the err_* ones) through
          `qkv run` and bench/ort_bench.js on the same inputs and compares each
          output three ways: qkv with the numpy reference, ORT with the numpy
          reference, qkv with ORT (|a - b| <= 1e-5 + 1e-3 |b|). Prints one row
          per output; exits 1 if qkv disagrees with ORT anywhere ORT ran.
  bench   com.microsoft.Attention on a BERT-base layer (batch 1, sequence 128,
          hidden 768, 12 heads x 64, a (batch) key-length mask), written to
          BUILD/bench/contrib/; `qkv bench` and ort_bench.js interleaved, REPS
          times per thread count; prints the best median of each and their
          ratio, and the fastest single run of each (a disturbed machine
          shows as medians far above it).

environment: THREADS="1 2", REPS=3, ITERS=50, WARMUP=5 (bench only)
Run with Debian's /usr/bin/python3 (numpy, onnx). ORT comes from
`npm install --ignore-scripts --prefix ORT_DIR onnxruntime-node` (as
bench/vs-ort.sh installs it); this script never installs anything.
"""
import json
import os
import subprocess
import sys
import tempfile

import numpy as np
import onnx
from onnx import helper, numpy_helper

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
RTOL, ATOL = 1e-3, 1e-5


def run(cmd):
    p = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    return p.returncode, p.stdout


def read_pb(path):
    t = onnx.TensorProto()
    with open(path, "rb") as f:
        t.ParseFromString(f.read())
    return numpy_helper.to_array(t)


def compare(a, b):
    """(ok, max abs diff) of a against reference b."""
    if a is None or b is None:
        return None, None
    if a.shape != b.shape:
        return False, float("inf")
    if a.dtype.kind in "iu":
        return bool((a == b).all()), float(np.abs(a.astype(np.int64) - b).max(initial=0))
    d = np.abs(a.astype(np.float64) - b.astype(np.float64))
    return bool((d <= ATOL + RTOL * np.abs(b)).all()), float(d.max(initial=0))


def fmt(ok, diff):
    if ok is None:
        return "-"
    return f"{'ok' if ok else 'MISMATCH'} ({diff:.1e})"


def check(build, ort_dir):
    data = os.path.join(build, "testdata", "contrib")
    qkv = os.path.join(build, "qkv")
    names = sorted(n for n in os.listdir(data) if not n.startswith("err_"))
    bad = 0
    print(f"{'model':24} {'output':12} {'qkv vs numpy':22} {'ORT vs numpy':22} qkv vs ORT")
    with tempfile.TemporaryDirectory() as tmp:
        for name in names:
            d = os.path.join(data, name)
            model = onnx.load(os.path.join(d, "model.onnx"))
            ins = [i.name for i in model.graph.input]
            outs = [o.name for o in model.graph.output]
            qkv_args, ort_args = [], []
            for k, n in enumerate(ins):
                pb = os.path.join(d, "test_data_set_0", f"input_{k}.pb")
                npy = os.path.join(tmp, f"{name}.{n}.npy")
                np.save(npy, read_pb(pb))
                qkv_args += ["--input", f"{n}={pb}"]
                ort_args += ["--input", f"{n}={npy}"]
            qdir, odir = os.path.join(tmp, name + ".qkv"), os.path.join(tmp, name + ".ort")
            rc_q, log_q = run([qkv, "run", os.path.join(d, "model.onnx"), "--output-dir", qdir]
                              + qkv_args)
            rc_o, log_o = run(["node", os.path.join(ROOT, "bench", "ort_bench.js"), "--ort-dir",
                               ort_dir, "--model", os.path.join(d, "model.onnx"), "--warmup",
                               "0", "--iters", "1", "--output-dir", odir] + ort_args)
            if rc_q != 0:
                print(f"{name:24} qkv failed: {log_q.strip().splitlines()[-1]}")
                bad += 1
            if rc_o != 0:
                err = [ln for ln in log_o.splitlines() if ln.strip()]
                print(f"{name:24} ORT failed: {err[-1][:150] if err else '?'}")
            for k, o in enumerate(outs):
                ref = read_pb(os.path.join(d, "test_data_set_0", f"output_{k}.pb"))
                fq, fo = os.path.join(qdir, f"{o}.npy"), os.path.join(odir, f"{o}.npy")
                q = np.load(fq) if rc_q == 0 and os.path.exists(fq) else None
                r = np.load(fo) if rc_o == 0 and os.path.exists(fo) else None
                qn, on, qo = compare(q, ref), compare(r, ref), compare(q, r)
                if qo[0] is False:
                    bad += 1
                print(f"{name:24} {o:12} {fmt(*qn):22} {fmt(*on):22} {fmt(*qo)}")
    print("all outputs agree with ORT where ORT ran" if bad == 0 else f"{bad} disagreements")
    return 1 if bad else 0


def bert_base_attention(out):
    """One BERT-base Attention node with a key-length mask, and its inputs."""
    rng = np.random.default_rng(0)
    b, s, d, heads = 1, 128, 768, 12
    x = rng.standard_normal((b, s, d)).astype(np.float32)
    w = (rng.standard_normal((d, 3 * d)) * 0.03).astype(np.float32)
    bias = (rng.standard_normal(3 * d) * 0.1).astype(np.float32)
    mask = np.array([s - 10], np.int32)
    node = helper.make_node("Attention", ["x", "w", "bias", "mask"], ["y"],
                            domain="com.microsoft", name="attention", num_heads=heads)
    graph = helper.make_graph(
        [node], "bert_base_attention",
        [helper.make_tensor_value_info("x", onnx.TensorProto.FLOAT, [b, s, d]),
         helper.make_tensor_value_info("mask", onnx.TensorProto.INT32, [b])],
        [helper.make_tensor_value_info("y", onnx.TensorProto.FLOAT, [b, s, d])],
        [numpy_helper.from_array(w, "w"), numpy_helper.from_array(bias, "bias")])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17),
                                                    helper.make_opsetid("com.microsoft", 1)])
    os.makedirs(out, exist_ok=True)
    path = os.path.join(out, "bert_base_attention.onnx")
    onnx.save(model, path)
    np.save(os.path.join(out, "x.npy"), x)
    np.save(os.path.join(out, "mask.npy"), mask)
    return path


def bench(build, ort_dir):
    out = os.path.join(build, "bench", "contrib")
    model = bert_base_attention(out)
    threads = os.environ.get("THREADS", "1 2").split()
    reps = int(os.environ.get("REPS", "3"))
    iters, warmup = os.environ.get("ITERS", "50"), os.environ.get("WARMUP", "5")
    inputs = [f"x={out}/x.npy", f"mask={out}/mask.npy"]
    best = {}
    for rep in range(reps):
        for t in threads:
            jq, jo = os.path.join(out, f"qkv_{t}.json"), os.path.join(out, f"ort_{t}.json")
            cmd = [os.path.join(build, "qkv"), "bench", model, "--threads", t, "--iters", iters,
                   "--warmup", warmup, "--json", jq]
            for i in inputs:
                cmd += ["--input", i]
            rc, log = run(cmd)
            if rc != 0:
                sys.exit(f"qkv bench failed:\n{log}")
            cmd = ["node", os.path.join(ROOT, "bench", "ort_bench.js"), "--ort-dir", ort_dir,
                   "--model", model, "--threads", t, "--iters", iters, "--warmup", warmup,
                   "--json", jo]
            for i in inputs:
                cmd += ["--input", i]
            rc, log = run(cmd)
            if rc != 0:
                sys.exit(f"ort_bench.js failed:\n{log}")
            for who, path in (("qkv", jq), ("ort", jo)):
                with open(path) as f:
                    lat = json.load(f)["latency_ms"]
                for stat in ("median", "min"):
                    key = (who, t, stat)
                    best[key] = min(best.get(key, lat[stat]), lat[stat])
    print("com.microsoft.Attention, BERT-base layer: batch 1, sequence 128, hidden 768, "
          f"12 heads x 64, key-length mask; best of {reps} medians of {iters} runs")
    print(f"{'threads':>7} {'qkv ms':>9} {'ORT ms':>9} {'qkv/ORT':>8}   fastest run: "
          f"{'qkv ms':>7} {'ORT ms':>7} {'qkv/ORT':>8}")
    for t in threads:
        q, o = best[("qkv", t, "median")], best[("ort", t, "median")]
        qm, om = best[("qkv", t, "min")], best[("ort", t, "min")]
        print(f"{t:>7} {q:9.3f} {o:9.3f} {q / o:8.2f}   {'':13}{qm:7.3f} {om:7.3f} "
              f"{qm / om:8.2f}")
    with open("/proc/loadavg") as f:
        print(f"load average at the end: {f.read().split()[0]}")
    return 0


def main():
    args = sys.argv[1:]
    build = os.path.join(ROOT, "build")
    ort_dir = os.path.join(os.environ.get("XDG_CACHE_HOME", os.path.expanduser("~/.cache")),
                           "qkv-bench", "ort")
    mode = "check"
    while args:
        a = args.pop(0)
        if a == "--build" and args:
            build = os.path.abspath(args.pop(0))
        elif a == "--ort-dir" and args:
            ort_dir = args.pop(0)
        elif a in ("check", "bench"):
            mode = a
        else:
            sys.exit(__doc__)
    if not os.path.isdir(os.path.join(ort_dir, "node_modules", "onnxruntime-node")):
        sys.exit(f"no onnxruntime-node in {ort_dir}: npm install --ignore-scripts --prefix "
                 f"{ort_dir} onnxruntime-node")
    sys.exit(check(build, ort_dir) if mode == "check" else bench(build, ort_dir))


if __name__ == "__main__":
    main()
