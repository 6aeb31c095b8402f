#!/usr/bin/env bash
# bench/vision.sh - the full-size real architectures of models/export_vision.py
# (ViT-B/16, Swin-T, MaxViT-T, wav2vec2 base, Conformer-S; batch 1): qkv with
# attention fusion, qkv --no-fuse and ONNX Runtime, side by side on the same
# files and inputs.
#
# usage: bench/vision.sh [BUILD_DIR]       (default: ./build; qkv, its plugins
#                                           built there already)
# environment:
#   MODELS="vit_b_16 swin_t maxvit_t wav2vec2_base conformer_s"
#   THREADS=1      qkv --threads, ORT intraOpNumThreads
#   ITERS=5        timed runs per measurement; WARMUP=2 untimed runs first
#   REPS=1         repetitions of the interleaved sweep (the table takes the
#                  best median of each)
#   ORT_DIR=${XDG_CACHE_HOME:-$HOME/.cache}/qkv-bench/ort   onnxruntime-node,
#                  as bench/vs-ort.sh installs it (ORT is skipped without it)
#   QKV_PYTHON=/usr/bin/python3
#
# What it does: exports the models missing from BUILD_DIR/vision_full
# (models/export_vision.py --full: minutes each on 2 cores); checks each once
# (`qkv test` fused and --no-fuse against the PyTorch reference at rtol 1e-3,
# atol 1e-5; ORT's output against it too); then for each repetition, model:
# qkv bench (fused), qkv bench --no-fuse, ORT (bench/ort_bench.js),
# interleaved so the drift of a shared machine hits all three; prints a table
# of median latencies and ratios (also in BUILD_DIR/bench/vision/results.md,
# JSON reports beside it). Timings on a loaded machine are noisy: the load
# average is printed with them.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
BUILD=${1:-$ROOT/build}
MODELS=${MODELS:-"vit_b_16 swin_t maxvit_t wav2vec2_base conformer_s"}
THREADS=${THREADS:-1}
ITERS=${ITERS:-5}
WARMUP=${WARMUP:-2}
REPS=${REPS:-1}
ORT_DIR=${ORT_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/qkv-bench/ort}
PY=${QKV_PYTHON:-/usr/bin/python3}
QKV=$BUILD/qkv
SRC=$BUILD/vision_full
OUT=$BUILD/bench/vision
read -ra MODEL_LIST <<<"$MODELS"

[[ -x $QKV ]] || { echo "vision.sh: $QKV not built" >&2; exit 1; }
have_ort=0
if command -v node >/dev/null && [[ -d $ORT_DIR/node_modules/onnxruntime-node ]]; then
    have_ort=1
else
    echo "vision.sh: no onnxruntime-node in $ORT_DIR (bench/vs-ort.sh installs it): qkv only" >&2
fi
mkdir -p "$OUT/json" "$OUT/ort_out"

# model inputs as --input NAME=FILE arguments (test_data_set_0/in_NAME.npy)
inputs() {
    local f
    in_args=()
    for f in "$SRC/$1"/test_data_set_0/in_*.npy; do
        local n=${f##*/in_}
        in_args+=(--input "${n%.npy}=$f")
    done
}

for m in "${MODEL_LIST[@]}"; do
    [[ -f $SRC/$m/model.onnx ]] || "$PY" "$ROOT/models/export_vision.py" "$SRC" --full "$m"
done

echo "== correctness (rtol 1e-3, atol 1e-5 against PyTorch)"
for m in "${MODEL_LIST[@]}"; do
    "$QKV" test --rtol 1e-3 --atol 1e-5 "$SRC/$m" | sed -n 's/^\(PASS\|FAIL\|ERROR\)/qkv fused:   \1/p'
    "$QKV" test --no-fuse --rtol 1e-3 --atol 1e-5 "$SRC/$m" |
        sed -n 's/^\(PASS\|FAIL\|ERROR\)/qkv unfused: \1/p'
    if ((have_ort)); then
        inputs "$m"
        node "$ROOT/bench/ort_bench.js" --ort-dir "$ORT_DIR" --model "$SRC/$m/model.onnx" \
            --warmup 0 --iters 1 "${in_args[@]}" --output-dir "$OUT/ort_out/$m" >/dev/null
        "$PY" - "$OUT/ort_out/$m" "$SRC/$m/test_data_set_0" "$m" <<'EOF'
import glob, os, sys
import numpy as np
out, ref, name = sys.argv[1:]
ok = True
for f in glob.glob(os.path.join(ref, "ref_*.npy")):
    r = np.load(f)
    g = np.load(os.path.join(out, os.path.basename(f)[4:]))
    ok = ok and np.allclose(g, r, rtol=1e-3, atol=1e-5)
print("ORT:         %s %s (max abs diff %.1e)" % ("PASS" if ok else "FAIL", name,
                                                  float(np.max(np.abs(g - r)))))
EOF
    fi
done

echo "== timing: threads $THREADS, $WARMUP warm-up + $ITERS timed runs, $REPS repetition(s)"
for rep in $(seq 1 "$REPS"); do
    for m in "${MODEL_LIST[@]}"; do
        inputs "$m"
        common=(--threads "$THREADS" --iters "$ITERS" --warmup "$WARMUP" "${in_args[@]}")
        "$QKV" bench "$SRC/$m/model.onnx" "${common[@]}" --json "$OUT/json/$m.fused.$rep.json" >/dev/null
        "$QKV" bench "$SRC/$m/model.onnx" "${common[@]}" --no-fuse \
            --json "$OUT/json/$m.unfused.$rep.json" >/dev/null
        if ((have_ort)); then
            node "$ROOT/bench/ort_bench.js" --ort-dir "$ORT_DIR" --model "$SRC/$m/model.onnx" \
                "${common[@]}" --json "$OUT/json/$m.ort.$rep.json" >/dev/null ||
                echo "vision.sh: ORT failed on $m" >&2
        fi
        echo "  rep $rep: $m done (load $(cut -d' ' -f1-3 /proc/loadavg))"
    done
done

"$PY" - "$OUT" "$THREADS" "${MODEL_LIST[@]}" <<'EOF' | tee "$OUT/results.md"
import glob, json, os, sys
out, threads, models = sys.argv[1], sys.argv[2], sys.argv[3:]


def best(m, kind):
    ms = []
    for f in glob.glob(os.path.join(out, "json", "%s.%s.*.json" % (m, kind))):
        with open(f) as fh:
            j = json.load(fh)
        if "latency_ms" in j:
            ms.append(j["latency_ms"]["median"])
    return min(ms) if ms else None


def fmt(x):
    return "-" if x is None else "%.1f" % x


def ratio(a, b):
    return "-" if a is None or b is None else "%.2f" % (a / b)


print("| model | qkv fused ms | qkv --no-fuse ms | ORT ms | fused / unfused | qkv fused / ORT |")
print("|---|---:|---:|---:|---:|---:|")
for m in models:
    f, u, o = best(m, "fused"), best(m, "unfused"), best(m, "ort")
    print("| %s | %s | %s | %s | %s | %s |" % (m, fmt(f), fmt(u), fmt(o), ratio(f, u), ratio(f, o)))
with open("/proc/loadavg") as fh:
    print("\nthreads %s; median latency, best of the repetitions; load average after: %s"
          % (threads, " ".join(fh.read().split()[:3])))
EOF
