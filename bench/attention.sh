#!/usr/bin/env bash
# bench/attention.sh - the fused ONNX Attention kernel against the same math
# as an unfused graph (Transpose, MatMul, Mul, Softmax, MatMul), measured with
# `qkv bench`, next to this machine's sgemm peak (the best of OpenBLAS and oneDNN).
#
# usage: bench/attention.sh [BUILD_DIR]          (default: ./build of the repo)
# environment:
#   SEQS="128 512 2048 4096"  sequence lengths (batch 1, 12 heads, head size 64)
#   THREADS="1 2"             thread counts
#   PASS=1                    also run the unfused graph with the fusion pass on
#                             (0: skip that column)
#   QKV_PYTHON=/usr/bin/python3   Python with onnx (Debian's)
#   NO_BUILD=1                use the binaries in BUILD_DIR as they are
#
# What it does: builds qkv, its OpenBLAS backend plugin and bench/sgemm_peak
# (cmake; a BUILD_DIR without a cache is configured RelWithDebInfo), writes the models into
# BUILD_DIR/bench/models (bench/make_attention_models.py), measures the sgemm
# peak at each thread count (best GFLOP/s of sizes 512, 1024 and 2048), then runs
# for each sequence length and thread count
#   fused    qkv bench attention_fused_S.onnx               (one Attention node)
#   unfused  qkv bench attention_unfused_S.onnx --no-fuse   (five plain nodes)
#   pass     qkv bench attention_unfused_S.onnx             (PASS=1: the fusion
#            pass is allowed to rewrite the unfused graph; "steps" shows if it did)
# and prints a table, also written to BUILD_DIR/bench/attention_results.md with
# the JSON reports beside it.
#
# FLOPs of attention = 4 * B * H * S^2 * D: two GEMMs (Q @ K^T and P @ V), each
# B * H * S * S * D multiply-adds, 2 flops per multiply-add. The scale, the
# softmax and the transpose are not counted, so GFLOP/s compares directly with
# the sgemm peak. Speedups and GFLOP/s use the median latency; GFLOP/s also
# shows the best (minimum-latency) run in parentheses, the figure least
# disturbed by other load, comparable with the best-of-10 sgemm peak.
#
# Memory columns: "arena" is the memory plan's arena for one run (tensors +
# kernel scratch), "scratch" the largest kernel scratch of one step (for the
# fused node: its per-thread tiles), "RSS" the process's peak resident set
# (getrusage), which also counts the libraries, the model and the inputs.
#
# Takes about a minute on a quiet 2-core machine (fewer iterations at long
# sequences), a few minutes on a loaded one. Timings on a shared machine are
# noisy: the load average is printed with the results.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
BUILD=${1:-$ROOT/build}
SEQS=${SEQS:-"128 512 2048 4096"}
THREADS=${THREADS:-"1 2"}
PASS=${PASS:-1}
PY=${QKV_PYTHON:-/usr/bin/python3}
OUT=$BUILD/bench
MODELS=$OUT/models
JSON=$OUT/json
read -ra SEQ_LIST <<<"$SEQS"
read -ra THREAD_LIST <<<"$THREADS"
csv() {
    local IFS=,
    echo "$*"
}

# Builds qkv, sgemm_peak and (when this build has it) the OpenBLAS backend
# plugin; the output goes to a log shown only on failure.
build() {
    local log=$BUILD/bench_build.log targets=(qkv_cli sgemm_peak)
    mkdir -p "$BUILD"
    : >"$log"
    if [[ ! -f $BUILD/CMakeCache.txt ]] &&
        ! cmake -S "$ROOT" -B "$BUILD" -DCMAKE_BUILD_TYPE=RelWithDebInfo >>"$log" 2>&1; then
        tail -20 "$log" >&2
        echo "attention.sh: cmake configure failed (full log: $log)" >&2
        exit 1
    fi
    local all
    all=$(cmake --build "$BUILD" --target help 2>/dev/null || true)
    if [[ $all == *qkv_plugin_openblas* ]]; then
        targets+=(qkv_plugin_openblas)
    fi
    if ! cmake --build "$BUILD" -j2 --target "${targets[@]}" >>"$log" 2>&1; then
        tail -20 "$log" >&2
        echo "attention.sh: the build failed (full log: $log)" >&2
        exit 1
    fi
}
if [[ ${NO_BUILD:-0} != 1 ]]; then
    build
fi
QKV=$BUILD/qkv
SGEMM=$BUILD/bench/sgemm_peak
for f in "$QKV" "$SGEMM"; do
    [[ -x $f ]] || { echo "attention.sh: $f is missing (build it first)" >&2; exit 1; }
done

mkdir -p "$MODELS" "$JSON"
rm -f "$JSON"/*.json
"$PY" "$ROOT/bench/make_attention_models.py" "$MODELS" --seqs "$(csv "${SEQ_LIST[@]}")" >/dev/null

echo "# load before: $(uptime)"
echo "# sgemm peak (best of OpenBLAS cblas_sgemm and oneDNN dnnl_sgemm, square n = 512, 1024 and 2048, best of 10)"
"$SGEMM" --sizes 512,1024,2048 --threads "$(csv "${THREAD_LIST[@]}")" --reps 10 \
    | tee "$OUT/sgemm_peak.txt" | sed 's/^/#   /'

# iterations per sequence length: warm-up, timed
plan_for() {
    case $1 in
    128) echo "3 30" ;;
    512) echo "2 10" ;;
    2048) echo "1 4" ;;
    *) echo "1 2" ;;
    esac
}

B=1 H=12 D=64
for s in "${SEQ_LIST[@]}"; do
    flops=$((4 * B * H * s * s * D))
    read -r warm iters < <(plan_for "$s")
    for t in "${THREAD_LIST[@]}"; do
        common=(--threads "$t" --warmup "$warm" --iters "$iters" --flops "$flops")
        echo "# seq $s, threads $t: fused" >&2
        "$QKV" bench "$MODELS/attention_fused_$s.onnx" "${common[@]}" \
            --json "$JSON/fused_${s}_$t.json" >/dev/null
        echo "# seq $s, threads $t: unfused (--no-fuse)" >&2
        "$QKV" bench "$MODELS/attention_unfused_$s.onnx" "${common[@]}" --no-fuse \
            --json "$JSON/unfused_${s}_$t.json" >/dev/null
        if [[ $PASS == 1 ]]; then
            echo "# seq $s, threads $t: unfused graph, fusion pass on" >&2
            "$QKV" bench "$MODELS/attention_unfused_$s.onnx" "${common[@]}" \
                --json "$JSON/pass_${s}_$t.json" >/dev/null
        fi
    done
done
LOAD_AFTER=$(uptime)

"$PY" - "$OUT" "${SEQ_LIST[*]}" "${THREAD_LIST[*]}" "$PASS" "$LOAD_AFTER" <<'EOF'
import json, os, re, sys

out, seqs, threads, with_pass, load_after = sys.argv[1:6]
seqs = [int(x) for x in seqs.split()]
threads = [int(x) for x in threads.split()]
peak = {}
for line in open(os.path.join(out, "sgemm_peak.txt")):
    m = re.match(r"peak threads=(\d+) gflops=([\d.]+)", line)
    if m:
        peak[int(m.group(1))] = float(m.group(2))

def load(kind, s, t):
    p = os.path.join(out, "json", "%s_%d_%d.json" % (kind, s, t))
    return json.load(open(p)) if os.path.exists(p) else None

def mib(b):
    return "%.1f MiB" % (b / 1048576) if b >= 1048576 else "%.1f KiB" % (b / 1024)

head = ["seq", "threads", "fused ms", "unfused ms", "speedup", "fused GFLOP/s (best)",
        "% of sgemm peak (best)", "fused arena / scratch", "unfused arena",
        "fused RSS", "unfused RSS"]
if with_pass == "1":
    head += ["pass ms (steps)"]
rows = []
for s in seqs:
    for t in threads:
        f, u, p = load("fused", s, t), load("unfused", s, t), load("pass", s, t)
        fm, um = f["latency_ms"]["median"], u["latency_ms"]["median"]
        g, gb = f["gflops_median"], f["gflops_min"]
        row = [str(s), str(t), "%.2f" % fm, "%.2f" % um, "%.2fx" % (um / fm),
               "%.1f (%.1f)" % (g, gb),
               "%.0f%% (%.0f%%) of %.1f" % (100 * g / peak[t], 100 * gb / peak[t], peak[t])
               if t in peak else "?",
               "%s / %s" % (mib(f["arena_bytes"]), mib(f["scratch_bytes"])),
               mib(u["arena_bytes"]), mib(f["peak_rss_bytes"]), mib(u["peak_rss_bytes"])]
        if with_pass == "1":
            row += ["%.2f (%d)" % (p["latency_ms"]["median"], p["steps"]) if p else "-"]
        rows.append(row)

gemm = sorted(set(load(k, s, t)["gemm_backend"] for k in ("fused", "unfused")
                   for s in seqs for t in threads))
note = "qkv's GEMM backend: %s" % ", ".join(gemm)
if gemm != ["openblas"]:
    note += " (not OpenBLAS: is the openblas plugin built and found? see docs/plugins.md)"
lines = ["| " + " | ".join(head) + " |", "|" + "|".join("---" for _ in head) + "|"]
lines += ["| " + " | ".join(r) + " |" for r in rows]
table = "\n".join(lines)

# the targets: >= 60% of the sgemm peak at sequence 128, >= 1.5x over unfused at 2048
verdict = []
for t in threads:
    f = load("fused", 128, t)
    if f and t in peak:
        pct = 100 * f["gflops_median"] / peak[t]
        best = 100 * f["gflops_min"] / peak[t]
        verdict.append("seq 128, %d thread(s): fused at %.0f%% of sgemm peak at the median, "
                       "%.0f%% at its best run (target >= 60%%): %s"
                       % (t, pct, best, "MET" if pct >= 60 else "NOT MET"))
    f, u = load("fused", 2048, t), load("unfused", 2048, t)
    if f and u:
        sp = u["latency_ms"]["median"] / f["latency_ms"]["median"]
        verdict.append("seq 2048, %d thread(s): fused %.2fx faster than unfused (target >= 1.5x): %s"
                       % (t, sp, "MET" if sp >= 1.5 else "NOT MET"))
    sc = [(s, load("fused", s, t)["scratch_bytes"]) for s in seqs if 512 <= s <= 4096]
    if len(sc) > 1:
        flat = len(set(b for _, b in sc)) == 1
        verdict.append("seq 512..4096, %d thread(s): fused scratch %s (target: flat): %s"
                       % (t, ", ".join("%d: %d B" % x for x in sc), "MET" if flat else "NOT MET"))

text = note + "\n\n" + table + "\n\n" + "\n".join(verdict) + "\n\n# load after: " + load_after + "\n"
print()
print(text)
open(os.path.join(out, "attention_results.md"), "w").write(text)
EOF
