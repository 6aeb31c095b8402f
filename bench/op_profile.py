#!/usr/bin/python3
"""Per-operator time of one model on qkv and on ONNX Runtime, side by side:
where a gap between the two runtimes comes from.

usage: /usr/bin/python3 bench/op_profile.py MODEL [--qkv BUILD/qkv]
           [--ort-dir DIR] [--runs R] [--warmup W] [--threads T] [--no-fuse]
           [--top N] [--work DIR] [--nodes REGEX] [--baseline OTHER/qkv]

MODEL is a models/export_vision.py directory (model.onnx, inputs
test_data_set_0/in_NAME.npy) or a bench/vs_ort_models.py NAME.onnx (inputs
NAME/in/INPUT.npy).

qkv: R processes of `qkv run MODEL --profile --warmup W`, each profiling one
warm run. ONNX Runtime: one bench/ort_bench.js process with --profile (W
warm-up and R timed runs, all profiled; --ort-dir as bench/vs-ort.sh
installs it). For each node, the minimum over its runs: the machine is
shared, and the minimum is the run least disturbed. Per op type, the sum of
its nodes' minimums and its share of the model's sum: compare shares, not
absolute times, on a loaded machine.

The runtimes rewrite the graph differently (qkv: Attention, Gelu,
qkv.FusedMatMul; ORT at level 'all': FusedConv, NCHWc Convs with Reorder
nodes, FusedMatMul, Gemm, LayerNormalization, Gelu, BiasGelu...), so op
types differ: the first table groups them by job (GROUPS). ORT does not fuse
these attention blocks: its MatMuls of two activations (parameter_size 0:
Q Kᵀ and P V) and its Softmax count as attention.

--nodes REGEX adds a table of the nodes whose name (as qkv prints it, cut
at 40 characters) matches (re.search), each node's minimum in qkv and in
ORT (found by name, in order; "-" where ORT fused or renamed it). --baseline OTHER/qkv profiles a second qkv build in
the same minutes (its runs interleaved with the first's) and adds its
minimums as a "before" column to the op-type and node tables: a change
measured side by side, on the same machine load.
"""
import argparse
import collections
import glob
import json
import os
import re
import subprocess
import sys
import tempfile

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

GROUPS = {
    "conv": ["Conv", "FusedConv", "NchwcConv", "ReorderInput", "ReorderOutput"],
    "matmul/gemm": ["MatMul", "Gemm", "FusedMatMul", "FusedGemm", "qkv.FusedMatMul",
                    "com.microsoft.FusedMatMul"],
    "attention": ["Attention", "MultiHeadAttention", "Softmax"],
    "normalization": ["LayerNormalization", "SkipLayerNormalization", "GroupNormalization",
                      "InstanceNormalization", "BatchNormalization",
                      "SimplifiedLayerNormalization"],
    "activation": ["Gelu", "BiasGelu", "FastGelu", "Erf", "Relu", "Sigmoid", "Tanh",
                   "Softplus", "QuickGelu", "Glu", "HardSigmoid"],
    "elementwise": ["Add", "Sub", "Mul", "Div", "Pow", "Sqrt", "Where", "Not", "Equal",
                    "Less", "Greater", "Neg", "Exp", "Log", "Reciprocal", "Abs"],
    "reduction": ["ReduceMean", "ReduceMax", "ReduceSum", "ReduceMin"],
    "data movement": ["Transpose", "Reshape", "Concat", "Slice", "Gather", "Pad", "Expand",
                      "Split", "Squeeze", "Unsqueeze", "Shape", "Cast", "Identity",
                      "Flatten", "Tile", "ConstantOfShape", "Range"],
}
GROUP_OF = {op: g for g, ops in GROUPS.items() for op in ops}


def model_inputs(model):
    """(model.onnx path, [(input name, .npy path)]) of a MODEL argument."""
    if os.path.isdir(model):
        onnx = os.path.join(model, "model.onnx")
        files = glob.glob(os.path.join(model, "test_data_set_0", "in_*.npy"))
        return onnx, [(os.path.basename(f)[3:-4], f) for f in sorted(files)]
    files = glob.glob(os.path.join(model[:-len(".onnx")], "in", "*.npy"))
    return model, [(os.path.basename(f)[:-4], f) for f in sorted(files)]


def qkv_profile(a, onnx, inputs, qkv=None, runs=None):
    """{node index: (node name, op, minimum ms)} over `runs` (a.runs) runs
    of `qkv` (a.qkv) `run`."""
    cmd = [qkv or a.qkv, "run", onnx, "--profile", "--warmup", str(a.warmup), "--threads",
           str(a.threads)]
    for name, f in inputs:
        cmd += ["--input", f"{name}={f}"]
    if a.no_fuse:
        cmd.append("--no-fuse")
    best = {}
    for _ in range(a.runs if runs is None else runs):
        out = subprocess.run(cmd, check=True, capture_output=True, text=True).stdout
        rows = out.split("\nprofile:", 1)[1].split("\ntime:", 1)[0].splitlines()[2:]
        for i, row in enumerate(rows):
            parts = row.split()
            if len(parts) < 5:
                continue
            name, op, ms = " ".join(parts[:-4]), parts[-4], float(parts[-2])
            if i not in best or ms < best[i][2]:
                best[i] = (name, op, ms)
    return best


def ort_profile(a, onnx, inputs, work):
    """{node name: (node name, op, minimum ms)} over ORT's profiled runs."""
    prefix = os.path.join(work, "ort_profile")
    cmd = ["node", os.path.join(ROOT, "bench", "ort_bench.js"), "--ort-dir", a.ort_dir,
           "--model", onnx, "--threads", str(a.threads), "--warmup", str(a.warmup),
           "--iters", str(a.runs), "--profile", prefix]
    for name, f in inputs:
        cmd += ["--input", f"{name}={f}"]
    subprocess.run(cmd, check=True, capture_output=True, text=True)
    files = sorted(glob.glob(prefix + "*.json"), key=os.path.getmtime)
    with open(files[-1]) as f:
        events = json.load(f)
    best = {}
    for e in events:
        if e.get("cat") != "Node" or not e.get("name", "").endswith("_kernel_time"):
            continue
        name = e["name"][:-len("_kernel_time")]
        args = e.get("args", {})
        op = args.get("op_name", "?")
        if op == "MatMul" and str(args.get("parameter_size", "")) == "0":
            op = "MatMul(activations)"  # Q Kᵀ or P V of an unfused attention
        ms = e["dur"] / 1000.0
        if name not in best or ms < best[name][2]:
            best[name] = (name, op, ms)
    return best


def group(op):
    if op == "MatMul(activations)":
        return "attention"
    return GROUP_OF.get(op, GROUP_OF.get(op.split(".")[-1], "other"))


def by(best, key):
    """{key(op): [ms, node count]} from a per-node minimum table."""
    out = collections.defaultdict(lambda: [0.0, 0])
    for _, op, ms in best.values():
        out[key(op)][0] += ms
        out[key(op)][1] += 1
    return out


def merge_min(into, more):
    """Per-node minimums of two profile tables of the same build."""
    for k, v in more.items():
        if k not in into or v[2] < into[k][2]:
            into[k] = v
    return into


def match_ort(q, o):
    """{qkv node index: ORT minimum ms} for the qkv nodes ORT also ran. qkv
    prints names cut at 40 characters: a cut name takes the first ORT node
    of the same group (GROUPS) not taken yet, in ORT's order, that it
    begins."""
    ort = list(o.values())
    taken, out = set(), {}
    for i in sorted(q):
        name = q[i][0]
        for j, (oname, _, ms) in enumerate(ort):
            if j in taken or group(ort[j][1]) != group(q[i][1]):
                continue
            if oname == name or (len(name) >= 40 and oname.startswith(name)):
                taken.add(j)
                out[i] = ms
                break
    return out


def node_table(pattern, q, o, base):
    """The nodes matching pattern, qkv (and baseline, the same graph: its
    nodes by index) against ORT."""
    ort = match_ort(q, o)
    head = "| node | op | " + ("qkv before ms | " if base else "") + "qkv ms | ORT ms | qkv/ORT |"
    head += " after/before |" if base else ""
    print("\n" + head)
    print("|---|---|" + "---:|" * (5 if base else 3))
    sums = [0.0, 0.0, 0.0]
    for i in sorted(q):
        name, op, ms = q[i]
        if not re.search(pattern, name):
            continue
        om = ort.get(i)
        bm = base[i][2] if base and i in base and base[i][0] == name else None
        sums[0] += ms
        sums[1] += om or 0.0
        sums[2] += bm or 0.0
        row = f"| {name} | {op} | "
        if base:
            row += f"{bm:.3f} | " if bm is not None else "- | "
        row += f"{ms:.3f} | " + (f"{om:.3f} | {ms / om:.2f} |" if om else "- | - |")
        if base:
            row += f" {ms / bm:.2f} |" if bm else " - |"
        print(row)
    row = "| sum | | " + (f"{sums[2]:.3f} | " if base else "")
    row += f"{sums[0]:.3f} | {sums[1]:.3f} | "
    row += f"{sums[0] / sums[1]:.2f} |" if sums[1] else "- |"
    if base:
        row += f" {sums[0] / sums[2]:.2f} |" if sums[2] else " - |"
    print(row)


def table(title, q, o, top, base=None):
    qt = sum(v[0] for v in q.values()) or 1.0
    ot = sum(v[0] for v in o.values()) or 1.0
    keys = sorted(set(q) | set(o), key=lambda k: -max(q.get(k, [0])[0], o.get(k, [0])[0]))
    bcol = "qkv before ms | " if base is not None else ""
    print(f"\n| {title} | qkv nodes | {bcol}qkv ms | qkv % | ORT nodes | ORT ms | ORT % | qkv/ORT |")
    print("|---|---:|" + ("---:|" if base is not None else "") + "---:|---:|---:|---:|---:|---:|")
    for k in keys[:top]:
        qm, qn = q.get(k, [0.0, 0])
        om, on = o.get(k, [0.0, 0])
        ratio = f"{qm / om:.2f}" if om > 0 and qm > 0 else "-"
        bm = f"{base.get(k, [0.0])[0]:.2f} | " if base is not None else ""
        print(f"| {k} | {qn} | {bm}{qm:.2f} | {100 * qm / qt:.1f} | {on} | {om:.2f} | "
              f"{100 * om / ot:.1f} | {ratio} |")
    bt = f"{sum(v[0] for v in base.values()):.2f} | " if base is not None else ""
    print(f"| total | {sum(v[1] for v in q.values())} | {bt}{qt:.2f} | 100 | "
          f"{sum(v[1] for v in o.values())} | {ot:.2f} | 100 | {qt / ot:.2f} |")


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("model")
    p.add_argument("--qkv", default=os.path.join(ROOT, "build", "qkv"))
    cache = os.environ.get("XDG_CACHE_HOME", os.path.expanduser("~/.cache"))
    p.add_argument("--ort-dir", default=os.path.join(cache, "qkv-bench", "ort"))
    p.add_argument("--runs", type=int, default=5)
    p.add_argument("--warmup", type=int, default=3)
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--no-fuse", action="store_true", help="qkv without its fusions")
    p.add_argument("--top", type=int, default=25, help="rows of the op-type table")
    p.add_argument("--work", help="where ORT's profile goes (default: a temporary directory)")
    p.add_argument("--nodes", help="also list the nodes whose name matches this regex")
    p.add_argument("--baseline", help="another qkv build to profile alongside (before/after)")
    a = p.parse_args()
    onnx, inputs = model_inputs(a.model)
    with tempfile.TemporaryDirectory() as tmp:
        work = a.work or tmp
        os.makedirs(work, exist_ok=True)
        q, b = {}, {} if a.baseline else None
        for _ in range(a.runs):  # one run of each build in turn: the same load for both
            merge_min(q, qkv_profile(a, onnx, inputs, runs=1))
            if a.baseline:
                merge_min(b, qkv_profile(a, onnx, inputs, qkv=a.baseline, runs=1))
        o = ort_profile(a, onnx, inputs, work)
    print(f"model: {onnx}\nthreads {a.threads}; per node the minimum of {a.runs} runs "
          f"(qkv: {a.runs} processes, {a.warmup} warm-up runs each; ORT: {a.warmup} warm-up "
          f"and {a.runs} runs, profiled); load average {os.getloadavg()[0]:.1f}")
    bg = by(b, group) if b is not None else None
    bo = by(b, lambda op: op) if b is not None else None
    table("group", by(q, group), by(o, group), 100, bg)
    table("op type", by(q, lambda op: op), by(o, lambda op: op), a.top, bo)
    if a.nodes:
        node_table(a.nodes, q, o, b)
    return 0


if __name__ == "__main__":
    sys.exit(main())
