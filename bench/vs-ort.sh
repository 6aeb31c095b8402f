#!/usr/bin/env bash
# bench/vs-ort.sh - qkv against ONNX Runtime (CPU) on whole attention models,
# side by side, with the same model files and the same input values.
#
# usage: bench/vs-ort.sh [BUILD_DIR]       (default: $BUILD_DIR, else ./build)
# environment:
#   THREADS="1 2"     thread counts (qkv --threads, ORT intraOpNumThreads)
#   REPS=3            repetitions of the whole interleaved sweep
#   MODELS="encoder2 mha attention23 ms_mha bert12 vit_patch w2v_conv"   a subset, in this order
#                     (also encoder2_int8: encoder2 quantized as ORT's
#                     quantize_dynamic does; and the full-size real
#                     architectures vit_b_16 swin_t maxvit_t wav2vec2_base
#                     conformer_s of models/export_vision.py; not in the
#                     default set)
#   ITERS=            timed runs per measurement (default per model: 50 for the
#                     single-node models, 30 mha, 20 encoder2, 10 bert12)
#   WARMUP=3          untimed runs before each measurement
#   NO_BUILD=1        use the binaries in BUILD_DIR as they are
#   ORT_VERSION=1.30.0             the onnxruntime-node version to install
#   ORT_DIR=${XDG_CACHE_HOME:-$HOME/.cache}/qkv-bench/ort   where it goes
#                     (reused when it already holds ORT_VERSION; must be
#                     outside the source tree)
#   QKV_PYTHON=/usr/bin/python3    Python with torch, onnx and numpy (Debian's)
#   QKV_ARGS=         extra options for every `qkv run` and `qkv bench`, e.g.
#                     "--backend cpu" (qkv's own kernels only, no plugins'),
#                     "--no-fuse"; the table's footnote records them
#
# What it does:
#  1. installs ONNX Runtime for comparison only: npm's onnxruntime-node with
#     --ignore-scripts into ORT_DIR (its postinstall only fetches the CUDA
#     provider; the CPU binding and libonnxruntime.so.1 for Linux x64 are in
#     the npm package itself), then checks that they are there and load;
#  2. builds qkv, its OpenBLAS backend plugin and bench/sgemm_peak (cmake,
#     RelWithDebInfo when BUILD_DIR has no cache) unless NO_BUILD=1;
#  3. writes the models, their inputs (.npy, fixed seeds) and reference
#     outputs into BUILD_DIR/bench/vs-ort with bench/vs_ort_models.py (kept
#     from an earlier run when that script has not changed);
#  4. checks each model once: `qkv run` and bench/ort_bench.js on the same
#     inputs, both compared with the reference (torch or numpy), rtol 1e-3,
#     atol 1e-5: "ok" or "MISMATCH" (a benchmark of a wrong result is
#     worthless, so look at that column first);
#  5. measures the sgemm peak (the best of OpenBLAS and oneDNN) at each
#     thread count (bench/sgemm_peak,
#     as bench/attention.sh does), once in each repetition; the table uses
#     the best;
#  6. for rep in 1..REPS, for each model, for each thread count T: qkv (`qkv
#     run` once for the session-creation time, then `qkv bench`), then ORT
#     (bench/ort_bench.js): interleaved, so slow drift of a shared machine
#     hits both;
#  7. prints the table (best-of-REPS medians, qkv/ORT latency ratio, qkv's
#     whole-model GFLOP/s from bench/onnx_flops.py's count as a share of the
#     sgemm peak, session creation, peak RSS) and writes it to
#     BUILD_DIR/bench/vs-ort/results.md, with the raw JSON reports in
#     BUILD_DIR/bench/vs-ort/json/.
# A runtime that cannot load or run a model gets its error in the table
# instead of a time; the script goes on.
#
# Network: only `npm install` (once, when ORT_DIR lacks ORT_VERSION).
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
BUILD=${1:-${BUILD_DIR:-$ROOT/build}}
THREADS=${THREADS:-"1 2"}
REPS=${REPS:-3}
read -r -a QKV_EXTRA <<<"${QKV_ARGS:-}"
MODELS=${MODELS:-"encoder2 mha attention23 ms_mha bert12 vit_patch w2v_conv"}
ITERS=${ITERS:-}
WARMUP=${WARMUP:-3}
ORT_VERSION=${ORT_VERSION:-1.30.0}
ORT_DIR=${ORT_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/qkv-bench/ort}
PY=${QKV_PYTHON:-/usr/bin/python3}
OUT=$BUILD/bench/vs-ort
JSON=$OUT/json
read -ra THREAD_LIST <<<"$THREADS"
read -ra MODEL_LIST <<<"${MODELS//,/ }"

die() {
    echo "vs-ort.sh: $*" >&2
    exit 1
}
is_uint() { [[ $1 =~ ^[0-9]+$ ]]; }
{ is_uint "$REPS" && ((10#$REPS >= 1)); } || die "REPS='$REPS': expected a positive integer"
is_uint "$WARMUP" || die "WARMUP='$WARMUP': expected an integer >= 0"
[[ -z $ITERS ]] || { is_uint "$ITERS" && ((10#$ITERS >= 1)); } ||
    die "ITERS='$ITERS': expected a positive integer"
((${#THREAD_LIST[@]})) || die "THREADS is empty"
for t in "${THREAD_LIST[@]}"; do
    { is_uint "$t" && ((10#$t >= 1)); } || die "THREADS: '$t' is not a positive integer"
done
((${#MODEL_LIST[@]})) || die "MODELS is empty"
[[ -x $PY ]] || die "$PY not found (set QKV_PYTHON to a Python with torch, onnx and numpy)"

# ---- 1. ONNX Runtime (npm onnxruntime-node), outside the source tree --------------

command -v node >/dev/null || die "node (Node.js) is not installed: it runs ONNX Runtime here (apt-get install nodejs npm)"
command -v npm >/dev/null || die "npm is not installed: it installs onnxruntime-node (apt-get install npm)"
node_major=$(node -p 'process.versions.node.split(".")[0]')
((node_major >= 16)) || die "node $(node --version) is too old for onnxruntime-node (need 16 or later)"

ORT_DIR=$(realpath -m "$ORT_DIR")
ROOT_REAL=$(realpath "$ROOT")
case "$ORT_DIR/" in
"$ROOT_REAL"/*) die "ORT_DIR '$ORT_DIR' is inside the source tree '$ROOT_REAL': choose a directory outside it" ;;
esac
mkdir -p "$ORT_DIR"
ORT_PKG=$ORT_DIR/node_modules/onnxruntime-node
installed=$(node -e 'try { console.log(require(process.argv[1] + "/package.json").version) } catch (e) { console.log("") }' "$ORT_PKG")
if [[ $installed != "$ORT_VERSION" ]]; then
    echo "# installing onnxruntime-node@$ORT_VERSION into $ORT_DIR (npm --ignore-scripts)" >&2
    if ! npm install --prefix "$ORT_DIR" --ignore-scripts --no-audit --no-fund \
        "onnxruntime-node@$ORT_VERSION" >"$ORT_DIR/npm-install.log" 2>&1; then
        tail -20 "$ORT_DIR/npm-install.log" >&2
        die "npm install onnxruntime-node@$ORT_VERSION failed (full log: $ORT_DIR/npm-install.log)"
    fi
fi
# The CPU binding ships in the package (bin/napi-v*/linux/x64); the postinstall
# skipped by --ignore-scripts only downloads the CUDA/TensorRT providers.
arch=$(node -p 'process.arch')
binding=$(compgen -G "$ORT_PKG/bin/napi-v*/linux/$arch/onnxruntime_binding.node" | head -1 || true)
[[ -n $binding ]] || die "onnxruntime-node@$ORT_VERSION has no Linux $arch binding under $ORT_PKG/bin (bin/napi-v*/linux/$arch/onnxruntime_binding.node)"
compgen -G "$(dirname "$binding")/libonnxruntime.so*" >/dev/null ||
    die "no libonnxruntime.so beside $binding"
node -e 'require(process.argv[1])' "$ORT_PKG" 2>"$ORT_DIR/load-check.log" ||
    die "onnxruntime-node does not load: $(tail -1 "$ORT_DIR/load-check.log")"

# ---- 2. qkv --------------------------------------------------------------------------

build() {
    local log=$BUILD/bench_vs_ort_build.log targets=(qkv_cli) all
    mkdir -p "$BUILD"
    : >"$log"
    if [[ ! -f $BUILD/CMakeCache.txt ]] &&
        ! cmake -S "$ROOT" -B "$BUILD" -DCMAKE_BUILD_TYPE=RelWithDebInfo >>"$log" 2>&1; then
        tail -20 "$log" >&2
        die "cmake configure failed (full log: $log)"
    fi
    all=$(cmake --build "$BUILD" --target help 2>/dev/null || true)
    [[ $all == *qkv_plugin_openblas* ]] && targets+=(qkv_plugin_openblas)
    [[ $all == *sgemm_peak* ]] && targets+=(sgemm_peak)
    if ! nice -n 10 cmake --build "$BUILD" -j2 --target "${targets[@]}" >>"$log" 2>&1; then
        tail -20 "$log" >&2
        die "the build failed (full log: $log)"
    fi
}
if [[ ${NO_BUILD:-0} != 1 ]]; then
    echo "# building qkv in $BUILD" >&2
    build
fi
QKV=$BUILD/qkv
SGEMM=$BUILD/bench/sgemm_peak
[[ -x $QKV ]] || die "$QKV is missing (build it first, or drop NO_BUILD=1)"

# ---- 3. models, inputs, references -------------------------------------------------

mkdir -p "$OUT" "$JSON"
echo "# models into $OUT (torch exports take a minute the first time)" >&2
models_csv=$(IFS=,; echo "${MODEL_LIST[*]}")
"$PY" "$ROOT/bench/vs_ort_models.py" "$OUT" --models "$models_csv" >&2
rm -f "$JSON"/*

# each model's inputs, one NAME=PATH a line, read back by input_args
for m in "${MODEL_LIST[@]}"; do
    "$PY" "$ROOT/bench/vs_ort_report.py" inputs "$OUT" "$m" >"$OUT/$m.inputs"
done
# input_args MODEL: sets in_args to its --input NAME=PATH arguments
input_args() {
    local line
    in_args=()
    while IFS= read -r line; do
        in_args+=(--input "$line")
    done <"$OUT/$1.inputs"
}
iters_for() {
    if [[ -n $ITERS ]]; then
        echo "$ITERS"
        return
    fi
    case $1 in
    attention23 | ms_mha | vit_patch) echo 50 ;;
    mha) echo 30 ;;
    encoder2 | encoder2_int8 | w2v_conv) echo 20 ;;
    *) echo 10 ;;
    esac
}
ort() {
    node "$ROOT/bench/ort_bench.js" --ort-dir "$ORT_DIR" "$@"
}

# ---- 4. correctness, once ------------------------------------------------------------

rm -rf "$OUT/check"
mkdir -p "$OUT/check/qkv" "$OUT/check/ort"
for m in "${MODEL_LIST[@]}"; do
    input_args "$m"
    "$QKV" run "$OUT/$m.onnx" "${in_args[@]}" "${QKV_EXTRA[@]}" --output-dir "$OUT/check/qkv/$m" \
        >"$OUT/check/qkv/$m.log" 2>"$OUT/check/qkv/$m.err" || true
    ort --model "$OUT/$m.onnx" "${in_args[@]}" --warmup 0 --iters 1 \
        --output-dir "$OUT/check/ort/$m" --json "$OUT/check/ort/$m.json" \
        >"$OUT/check/ort/$m.log" 2>"$OUT/check/ort/$m.err" || true
    "$PY" "$ROOT/bench/vs_ort_report.py" check "$OUT" "$m"
done

# ---- 5. sgemm peak -------------------------------------------------------------------

# sgemm_peak REP: the best library's sgemm peak at each thread count into
# OUT/sgemm_peak_REP.txt; measured once per repetition, among the models, so
# a busy moment does not decide the yardstick (the table takes the best)
sgemm_peak() {
    [[ -x $SGEMM ]] || return 0
    "$SGEMM" --sizes 512,1024,2048 --threads "$(IFS=,; echo "${THREAD_LIST[*]}")" --reps 5 \
        >"$OUT/sgemm_peak_$1.txt"
    sed -n 's/^peak/#   sgemm peak/p' "$OUT/sgemm_peak_$1.txt" >&2
}
rm -f "$OUT"/sgemm_peak*.txt "$OUT/load.txt"
[[ -x $SGEMM ]] || echo "# no $SGEMM (OpenBLAS not found at build time): no sgemm peak" >&2
LOAD_BEFORE=$(uptime)
echo "# load before: $LOAD_BEFORE" >&2

# ---- 6. interleaved measurements -------------------------------------------------------

for rep in $(seq 1 "$REPS"); do
    echo "# rep $rep/$REPS  sgemm peak" >&2
    echo "rep $rep: $(uptime)" >>"$OUT/load.txt"
    sgemm_peak "$rep"
    for m in "${MODEL_LIST[@]}"; do
        input_args "$m"
        n=$(iters_for "$m")
        for t in "${THREAD_LIST[@]}"; do
            tag=${m}_${t}_$rep
            echo "# rep $rep/$REPS  $m  threads $t: qkv, then ORT ($WARMUP + $n runs each)" >&2
            # session-creation time: `qkv run` prints "time: load X ms, run Y ms"
            if "$QKV" run "$OUT/$m.onnx" "${in_args[@]}" "${QKV_EXTRA[@]}" --threads "$t" \
                >"$JSON/qkv_$tag.run.log" 2>&1; then
                sed -n 's/^time: load \([0-9.]*\) ms.*/\1/p' "$JSON/qkv_$tag.run.log" \
                    >"$JSON/qkv_$tag.load"
            fi
            if ! "$QKV" bench "$OUT/$m.onnx" "${in_args[@]}" "${QKV_EXTRA[@]}" --threads "$t" \
                --warmup "$WARMUP" --iters "$n" --json "$JSON/qkv_$tag.json" \
                >"$JSON/qkv_$tag.log" 2>&1; then
                msg=$(tail -1 "$JSON/qkv_$tag.log")
                node -e 'console.log(JSON.stringify({error: process.argv[1]}))' "$msg" \
                    >"$JSON/qkv_$tag.json"
                echo "#   qkv failed: $msg" >&2
            fi
            if ! ort --model "$OUT/$m.onnx" "${in_args[@]}" --threads "$t" --warmup "$WARMUP" \
                --iters "$n" --json "$JSON/ort_$tag.json" >"$JSON/ort_$tag.log" 2>&1; then
                echo "#   ORT failed: $(tail -1 "$JSON/ort_$tag.log")" >&2
            fi
        done
    done
done
LOAD_AFTER=$(uptime)

# ---- 7. the table ----------------------------------------------------------------------

{
    echo "# machine: $(lscpu | sed -n 's/^Model name:[[:space:]]*//p' | head -1), $(nproc) CPUs"
    sed -n 's/^# \(OpenBLAS\|oneDNN\) /# sgemm_peak: \1 /p' "$OUT/sgemm_peak_1.txt" 2>/dev/null
    sed -n '/^plugins:/,/^backends:/p' "$JSON/qkv_${MODEL_LIST[0]}_${THREAD_LIST[0]}_1.log" 2>/dev/null |
        sed 's/^/# qkv /'
    if "$QKV" info --system >"$OUT/system.txt" 2>/dev/null; then
        sed 's/^/# qkv info --system: /' "$OUT/system.txt"
    fi
} | tee "$OUT/machine.txt"
"$PY" "$ROOT/bench/vs_ort_report.py" table "$OUT" "${THREAD_LIST[@]}" -- \
    "$LOAD_BEFORE" "$LOAD_AFTER"
cat "$OUT/machine.txt" >>"$OUT/results.md"
echo "# written: $OUT/results.md (raw reports: $JSON/)" >&2
