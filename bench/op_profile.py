#!/usr/bin/python3
"""Per-operator time of one model on qkv and on ONNX Runtime, side by side:
where a gap between the two runtimes comes from.

usage: /usr/bin/python3 bench/op_profile.py MODEL [--qkv BUILD/qkv]
           [--ort-dir DIR] [--runs R] [--warmup W] [--threads T] [--no-fuse]
           [--top N] [--work DIR]

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
"""
import argparse
import collections
import glob
import json
import os
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


def qkv_profile(a, onnx, inputs):
    """{node index: (node name, op, minimum ms)} over a.runs `qkv run`s."""
    cmd = [a.qkv, "run", onnx, "--profile", "--warmup", str(a.warmup), "--threads",
           str(a.threads)]
    for name, f in inputs:
        cmd += ["--input", f"{name}={f}"]
    if a.no_fuse:
        cmd.append("--no-fuse")
    best = {}
    for _ in range(a.runs):
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


def table(title, q, o, top):
    qt = sum(v[0] for v in q.values()) or 1.0
    ot = sum(v[0] for v in o.values()) or 1.0
    keys = sorted(set(q) | set(o), key=lambda k: -max(q.get(k, [0])[0], o.get(k, [0])[0]))
    print(f"\n| {title} | qkv nodes | qkv ms | qkv % | ORT nodes | ORT ms | ORT % | qkv/ORT |")
    print("|---|---:|---:|---:|---:|---:|---:|---:|")
    for k in keys[:top]:
        qm, qn = q.get(k, [0.0, 0])
        om, on = o.get(k, [0.0, 0])
        ratio = f"{qm / om:.2f}" if om > 0 and qm > 0 else "-"
        print(f"| {k} | {qn} | {qm:.2f} | {100 * qm / qt:.1f} | {on} | {om:.2f} | "
              f"{100 * om / ot:.1f} | {ratio} |")
    print(f"| total | {sum(v[1] for v in q.values())} | {qt:.2f} | 100 | "
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
    a = p.parse_args()
    onnx, inputs = model_inputs(a.model)
    with tempfile.TemporaryDirectory() as tmp:
        work = a.work or tmp
        os.makedirs(work, exist_ok=True)
        q = qkv_profile(a, onnx, inputs)
        o = ort_profile(a, onnx, inputs, work)
    print(f"model: {onnx}\nthreads {a.threads}; per node the minimum of {a.runs} runs "
          f"(qkv: {a.runs} processes, {a.warmup} warm-up runs each; ORT: {a.warmup} warm-up "
          f"and {a.runs} runs, profiled); load average {os.getloadavg()[0]:.1f}")
    table("group", by(q, group), by(o, group), 100)
    table("op type", by(q, lambda op: op), by(o, lambda op: op), a.top)
    return 0


if __name__ == "__main__":
    sys.exit(main())
