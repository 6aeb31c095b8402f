#!/usr/bin/env bash
# Build and run the libFuzzer harnesses of fuzz/ (docs/fuzzing.md).
#
#   scripts/fuzz.sh [--parallel] [SECONDS] [HARNESS...]
#
# SECONDS (default 60) is each harness's run time; HARNESS names which run
# (default: fuzz_load fuzz_session fuzz_tensor_io fuzz_plugin); --parallel runs them at
# the same time instead of one after another.
#
# Steps:
#   1. configures build-fuzz/ with clang, -DQKV_FUZZ=ON -DQKV_SANITIZE=ON
#      (ASan + UBSan, RelWithDebInfo) and builds the three harnesses;
#   2. seeds build-fuzz/seeds/ (regenerated each run, never committed):
#      models/  the model.onnx files of the ONNX node conformance suite
#               (scripts/gen_conformance.py into build/conformance, cached;
#               QKV_CONFORMANCE_DIR overrides) and of
#               ../shared/conformance/onnx-attention when present
#               (QKV_ATTENTION_DIR overrides), and the models with
#               model-local functions of tests/data/make_function_models.py
#               (the loader's inliner: renaming, attribute references,
#               nested calls, each refusal);
#      tensors/ their test_data_set_*/input_*.pb files and a few .npy files
#               written with numpy;
#   3. runs each harness for SECONDS over build-fuzz/corpus/HARNESS/ (kept
#      between runs: what libFuzzer found new) and its seeds, with
#      -rss_limit_mb=2048 -timeout=60 (fuzz_session runs no model whose
#      convolutions exceed its work budget, docs/fuzzing.md: a valid 3-D
#      ConvTranspose with a 122x3x3 kernel took over 60 s in the
#      instrumented build; a hang still stops it).
#      A crash, sanitizer report, leak,
#      timeout or out-of-memory stops that harness; the input is kept in
#      build-fuzz/crashes/ and the script exits 1. Before that, the inputs
#      kept in fuzz/regressions/HARNESS-* are replayed once each; one that
#      fails again fails the script.
# Reproduce a crash: build-fuzz/fuzz/HARNESS build-fuzz/crashes/FILE
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."

PYTHON=/usr/bin/python3
CLANG=${CLANG:-/usr/bin/clang}
build=build-fuzz

usage() { echo "usage: scripts/fuzz.sh [--parallel] [SECONDS] [HARNESS...]" >&2; }

parallel=0
seconds=60
harnesses=()
for arg in "$@"; do
  case "$arg" in
    --parallel) parallel=1 ;;
    -h | --help) usage; exit 0 ;;
    fuzz_load | fuzz_session | fuzz_tensor_io | fuzz_plugin) harnesses+=("$arg") ;;
    *)
      [[ $arg =~ ^[0-9]+$ ]] || { usage; exit 2; }
      seconds=$arg
      ;;
  esac
done
((${#harnesses[@]})) || harnesses=(fuzz_load fuzz_session fuzz_tensor_io fuzz_plugin)

[[ -x $CLANG ]] || { echo "fuzz: ERROR: no clang at $CLANG (libFuzzer needs it)" >&2; exit 1; }

# ---- 1. build ------------------------------------------------------------------
if [[ ! -f $build/CMakeCache.txt ]]; then
  CC=$CLANG cmake -S . -B "$build" -DCMAKE_BUILD_TYPE=RelWithDebInfo -DQKV_FUZZ=ON \
    -DQKV_SANITIZE=ON -DQKV_BUILD_TESTS=OFF
fi
nice -n 10 cmake --build "$build" -j2 --target "${harnesses[@]}"

# ---- 2. seeds --------------------------------------------------------------------
conf=${QKV_CONFORMANCE_DIR:-build/conformance}
"$PYTHON" scripts/gen_conformance.py "$conf" >/dev/null
seeds=$build/seeds
rm -rf "$seeds"
mkdir -p "$seeds/models" "$seeds/tensors" "$seeds/plugin"
suites=("$conf/node")
attention=${QKV_ATTENTION_DIR:-../shared/conformance/onnx-attention}
[[ ! -d $attention ]] || suites+=("$attention")
for suite in "${suites[@]}"; do
  for dir in "$suite"/*/; do
    t=$(basename "$dir")
    [[ -f $dir/model.onnx ]] && cp "$dir/model.onnx" "$seeds/models/$t.onnx"
    for pb in "$dir"test_data_set_*/input_*.pb; do
      [[ -f $pb ]] || continue
      set=$(basename "$(dirname "$pb")")
      cp "$pb" "$seeds/tensors/$t-$set-$(basename "$pb")"
    done
  done
done
# model-local functions (the loader's inlining), and sequences and optionals
# through If/Loop bodies and SequenceMap: what the conformance suite has
# none or few of
for gen in function control_flow control_flow_seq sequence sequence_map; do
  "$PYTHON" "tests/data/make_${gen}_models.py" "$build/seed-models" >/dev/null
done
for m in "$build"/seed-models/*/*.onnx; do
  cp "$m" "$seeds/models/$(basename "$(dirname "$m")")-$(basename "$m")"
done
"$PYTHON" - "$seeds/tensors" <<'PY'
import sys
import numpy as np
d = sys.argv[1]
arrays = {
    "f32_2x3": np.arange(6, dtype=np.float32).reshape(2, 3),
    "i64_scalar": np.array(7, dtype=np.int64),
    "bool_4": np.array([True, False, True, True]),
    "f16_3": np.array([0.5, -1.0, 65504.0], dtype=np.float16),
    "f8_be_2x2": np.arange(4, dtype=">f8").reshape(2, 2),
    "u8_empty": np.zeros((0, 3), dtype=np.uint8),
    "c8_2": np.array([1 + 2j, -3j], dtype=np.complex64),
    "i16_2x1x2": np.arange(4, dtype=np.int16).reshape(2, 1, 2),
}
for name, a in arrays.items():
    np.save(f"{d}/{name}.npy", a)
with open(f"{d}/f32_v2.npy", "wb") as f:  # format version 2.0
    np.lib.format.write_array(f, np.ones((2, 2), dtype=np.float32), version=(2, 0))
# fuzz_plugin: descriptor tables are decoded from raw bytes; a few random ones
rng = np.random.default_rng(0)
for i in range(16):
    with open(f"{d}/../plugin/random_{i}", "wb") as f:
        f.write(rng.integers(0, 256, 64 + 32 * i, dtype=np.uint8).tobytes())
PY
echo "fuzz: seeds: $(ls "$seeds/models" | wc -l) models, $(ls "$seeds/tensors" | wc -l) tensors"

# ---- 3. run ---------------------------------------------------------------------
# A huge allocation a model asks for is the library's to refuse (malloc
# returns NULL -> QKV_ERR_OUT_OF_MEMORY), not a crash of the harness. Set
# whatever the caller exported (scripts/test.sh --asan sends reports to log
# files; here they belong in the harness's log).
export ASAN_OPTIONS=allocator_may_return_null=1:max_allocation_size_mb=2048
export UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1
mkdir -p "$build/crashes" "$build/logs"

run_one() { # run_one HARNESS: libFuzzer's exit status
  local h=$1 max_len seed_dir
  case "$h" in
    fuzz_tensor_io) max_len=65536 seed_dir=$seeds/tensors ;;
    fuzz_plugin) max_len=4096 seed_dir=$seeds/plugin ;;
    *) max_len=1048576 seed_dir=$seeds/models ;;
  esac
  mkdir -p "$build/corpus/$h"
  "$build/fuzz/$h" "$build/corpus/$h" "$seed_dir" -max_total_time="$seconds" \
    -max_len="$max_len" -rss_limit_mb=2048 -timeout=60 -print_final_stats=1 \
    -artifact_prefix="$build/crashes/$h-" >"$build/logs/$h.log" 2>&1
}

# One line per harness from its log: executions, exec/s, the final cov/ft.
report() { # report HARNESS STATUS
  local log=$build/logs/$1.log last runs rate
  last=$(grep -E '^#[0-9]+' "$log" | tail -n1 || true)
  runs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -n1)
  rate=$(sed -n 's/^stat::average_exec_per_sec: *//p' "$log" | tail -n1)
  echo "fuzz: $2 $1: ${runs:-?} runs, ${rate:-?} exec/s; $(grep -oE 'cov: [0-9]+ ft: [0-9]+ corp: [^ ]+' <<<"$last" || echo "no stats")"
}

# Inputs that once crashed a harness (fuzz/regressions/HARNESS-*, kept in git)
# are replayed first, each once, under the same sanitizers: a regression fails
# the run before any fuzzing.
replay() { # replay HARNESS: 0 when every kept input runs clean
  local h=$1 files=()
  for f in fuzz/regressions/"$h"-*; do [[ -f $f ]] && files+=("$f"); done
  ((${#files[@]})) || return 0
  if "$build/fuzz/$h" "${files[@]}" >"$build/logs/$h-regressions.log" 2>&1; then
    echo "fuzz: $h: ${#files[@]} regression input(s) replayed clean"
  else
    echo "fuzz: FAILED $h: a regression input fails again (log $build/logs/$h-regressions.log)" >&2
    grep -E '^(==[0-9]+==ERROR|SUMMARY|Running: )|runtime error' "$build/logs/$h-regressions.log" >&2 || true
    return 1
  fi
}

rc=0
for h in "${harnesses[@]}"; do replay "$h" || rc=1; done
((rc == 0)) || exit 1

declare -A pids=()
for h in "${harnesses[@]}"; do
  echo "fuzz: running $h for ${seconds}s (log $build/logs/$h.log)"
  if ((parallel)); then
    run_one "$h" &
    pids[$h]=$!
  elif run_one "$h"; then
    report "$h" ok
  else
    rc=1
    report "$h" FAILED
    grep -E '^(==[0-9]+==ERROR|SUMMARY|artifact_prefix|Test unit written)' "$build/logs/$h.log" || true
  fi
done
for h in "${!pids[@]}"; do
  if wait "${pids[$h]}"; then
    report "$h" ok
  else
    rc=1
    report "$h" FAILED
    grep -E '^(==[0-9]+==ERROR|SUMMARY|Test unit written)' "$build/logs/$h.log" || true
  fi
done
((rc == 0)) || echo "fuzz: ERROR: crash inputs in $build/crashes/ (reproduce: $build/fuzz/HARNESS FILE)" >&2
exit "$rc"
