#!/usr/bin/python3
"""Per-node time of qkv's fused Attention nodes against what ONNX Runtime
spends on the same attention cores, side by side.

usage: /usr/bin/python3 bench/attn_profile.py MODEL [--qkv BUILD/qkv]...
           [--ort-dir DIR] [--runs R] [--warmup W] [--threads T] [--work DIR]

MODEL as for bench/op_profile.py (a models/export_vision.py directory, or a
bench/vs_ort_models.py NAME.onnx). Each --qkv binary (default build/qkv;
give two to compare a tree before and after a change) runs R times,
interleaved with the others (`qkv run --profile --warmup W`, one process
each), so every binary sees the same load. ONNX Runtime runs once
(bench/ort_bench.js --profile: W warm-up and R profiled runs). Times are
per-node minimums over the runs (the least disturbed run on a shared
machine).

Matching. ORT does not fuse these cores: the k-th qkv Attention node is the
core of ORT's k-th Softmax (both in graph order). ORT's core is every node
whose name starts with the Softmax's scope (its name up to the last '/')
and that is the Softmax, a MatMul/FusedMatMul/Einsum of two activations
(parameter_size 0: Q Kᵀ and P V), or an Add/Mul/Div/Sub/Where/Reshape whose
output has as many elements as the scores (the scale and the mask and bias
terms). Scope-less models (every node at top level) would match too
widely: check the "ORT nodes" column.
"""
import argparse
import glob
import json
import math
import os
import subprocess
import sys
import tempfile

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import op_profile  # noqa: E402

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SCORE_OPS = {"Add", "Mul", "Div", "Sub", "Where", "Reshape"}
PRODUCT_OPS = {"MatMul", "FusedMatMul", "Einsum"}


def qkv_attention_nodes(binary, a, onnx, inputs):
    """[minimum ms] of each Attention node in graph order, over a.runs runs
    of one binary; called once per run so several binaries interleave."""
    cmd = [binary, "run", onnx, "--profile", "--warmup", str(a.warmup), "--threads",
           str(a.threads)]
    for name, f in inputs:
        cmd += ["--input", f"{name}={f}"]
    out = subprocess.run(cmd, check=True, capture_output=True, text=True).stdout
    rows = out.split("\nprofile:", 1)[1].split("\ntime:", 1)[0].splitlines()[2:]
    times = []
    for row in rows:
        parts = row.split()
        if len(parts) >= 5 and parts[-4] == "Attention":
            times.append(float(parts[-2]))
    return times


def numel(shape):
    return math.prod(shape) if shape else 1


def ort_cores(a, onnx, inputs, work):
    """[(scope, scores shape, head size, [mask descriptions], ms, node count)]
    per ORT Softmax in graph order."""
    prefix = os.path.join(work, "ort_attn_profile")
    cmd = ["node", os.path.join(ROOT, "bench", "ort_bench.js"), "--ort-dir", a.ort_dir,
           "--model", onnx, "--threads", str(a.threads), "--warmup", str(a.warmup),
           "--iters", str(a.runs), "--profile", prefix]
    for name, f in inputs:
        cmd += ["--input", f"{name}={f}"]
    subprocess.run(cmd, check=True, capture_output=True, text=True)
    files = sorted(glob.glob(prefix + "*.json"), key=os.path.getmtime)
    with open(files[-1]) as f:
        events = json.load(f)
    order, best, info = [], {}, {}
    for e in events:
        if e.get("cat") != "Node" or not e.get("name", "").endswith("_kernel_time"):
            continue
        name = e["name"][:-len("_kernel_time")]
        args = e.get("args", {})
        if name not in best:
            order.append(name)
            ins = [list(t.values())[0] for t in args.get("input_type_shape", [])]
            outs = [list(t.values())[0] for t in args.get("output_type_shape", [])]
            info[name] = (args.get("op_name", "?"), str(args.get("parameter_size", "")), ins,
                          outs)
            best[name] = e["dur"] / 1000.0
        else:
            best[name] = min(best[name], e["dur"] / 1000.0)
    cores = []
    for sm in order:
        op, _, ins, _ = info[sm]
        if op != "Softmax" or not ins:
            continue
        scope = sm.rsplit("/", 1)[0] + "/"
        scores = ins[0]
        n_scores = numel(scores)
        ms, count, head, masks = 0.0, 0, None, []
        for name in order:
            if not name.startswith(scope):
                continue
            nop, psize, nins, nouts = info[name]
            take = name == sm
            if nop in PRODUCT_OPS and psize == "0":
                take = True
                if nouts and numel(nouts[0]) == n_scores and nins:
                    head = nins[0][-1]  # Q Kᵀ: Q's last dim
            elif nop in SCORE_OPS and nouts and numel(nouts[0]) == n_scores:
                take = True
                if nop in ("Add", "Where", "Sub"):
                    masks += [f"{nop}{tuple(s)}" for s in nins if numel(s) != n_scores]
            if take:
                ms += best[name]
                count += 1
        cores.append((scope, scores, head, masks, ms, count))
    return cores


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("model")
    p.add_argument("--qkv", action="append", help="a qkv binary (repeatable; default build/qkv)")
    cache = os.environ.get("XDG_CACHE_HOME", os.path.expanduser("~/.cache"))
    p.add_argument("--ort-dir", default=os.path.join(cache, "qkv-bench", "ort"))
    p.add_argument("--runs", type=int, default=5)
    p.add_argument("--warmup", type=int, default=3)
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--work", help="where ORT's profile goes (default: a temporary directory)")
    a = p.parse_args()
    bins = a.qkv or [os.path.join(ROOT, "build", "qkv")]
    onnx, inputs = op_profile.model_inputs(a.model)
    best = [None] * len(bins)
    for _ in range(a.runs):
        for k, b in enumerate(bins):
            t = qkv_attention_nodes(b, a, onnx, inputs)
            best[k] = t if best[k] is None else [min(x, y) for x, y in zip(best[k], t)]
    with tempfile.TemporaryDirectory() as tmp:
        work = a.work or tmp
        os.makedirs(work, exist_ok=True)
        cores = ort_cores(a, onnx, inputs, work)
    print(f"model: {onnx}\nthreads {a.threads}; per node the minimum of {a.runs} runs "
          f"({a.warmup} warm-up runs each); load average {os.getloadavg()[0]:.1f}")
    for k, b in enumerate(bins):
        print(f"qkv[{k}] = {b}")
    n = min(len(cores), *(len(t) for t in best))
    if any(len(t) != len(cores) for t in best):
        print(f"warning: {[len(t) for t in best]} qkv Attention nodes, {len(cores)} ORT "
              f"Softmaxes: the first {n} compared")
    head = " | ".join(f"qkv[{k}] ms" for k in range(len(bins)))
    ratios = " | ".join(f"qkv[{k}]/ORT" for k in range(len(bins)))
    extra = " | qkv[1]/qkv[0]" if len(bins) > 1 else ""
    print(f"\n| # | ORT scope | scores | D | mask/bias | {head} | ORT ms | ORT nodes | "
          f"{ratios}{extra} |")
    print("|---|---|---|---:|---|" + "---:|" * (2 * len(bins) + 2 + (len(bins) > 1)))
    tq = [0.0] * len(bins)
    to = 0.0
    for i in range(n):
        scope, scores, d, masks, oms, cnt = cores[i]
        qs = [best[k][i] for k in range(len(bins))]
        for k in range(len(bins)):
            tq[k] += qs[k]
        to += oms
        cells = " | ".join(f"{q:.3f}" for q in qs)
        rat = " | ".join(f"{q / oms:.2f}" if oms > 0 else "-" for q in qs)
        ex = f" | {qs[1] / qs[0]:.2f}" if len(bins) > 1 and qs[0] > 0 else ""
        short = scope if len(scope) <= 48 else "…" + scope[-47:]
        print(f"| {i} | {short} | {tuple(scores)} | {d} | {' '.join(masks) or '-'} | {cells} | "
              f"{oms:.3f} | {cnt} | {rat}{ex} |")
    cells = " | ".join(f"{q:.2f}" for q in tq)
    rat = " | ".join(f"{q / to:.2f}" if to > 0 else "-" for q in tq)
    ex = f" | {tq[1] / tq[0]:.2f}" if len(bins) > 1 and tq[0] > 0 else ""
    print(f"| total | | | | | {cells} | {to:.2f} | | {rat}{ex} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
