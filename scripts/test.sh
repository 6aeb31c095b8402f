#!/usr/bin/env bash
# Install, build and test qkv.
#
#   scripts/test.sh              RelWithDebInfo build (build/): ctest + ONNX conformance
#   scripts/test.sh --asan       the same on the ASan+UBSan Debug build (build-asan/)
#   scripts/test.sh --valgrind   RelWithDebInfo build; each Criterion test binary runs
#                                under valgrind memcheck (then the conformance run, natively)
#   --clang                      any of these built with clang (build-clang*/): with
#                                --asan, clang's UBSan also reports NULL + 0 and
#                                memcpy from NULL, which gcc's does not
#   --no-matrix                  skip step 5
#   --no-fuzz                    skip step 4
#
# Steps: scripts/build.sh (which runs scripts/setup.sh), then
#   1. ctest --test-dir BUILD --output-on-failure -j2 (the make_* fixtures
#      generate the models the tests read);
#   1b. the Python package's tests (python/tests, pytest; not with --asan);
#   2. the ONNX backend node conformance suite: scripts/gen_conformance.py
#      generates it into BUILD/conformance/node (cached), `BUILD/qkv test` runs it
#      and writes node.json + node-SCOREBOARD.md, and scripts/check_conformance.py
#      fails if a test listed in tests/conformance/expected_pass.txt did not pass;
#   3. the same for the newer ONNX test data in ../shared/conformance/onnx-attention
#      against tests/conformance/expected_pass_attention.txt;
#   4. a fuzz smoke run: scripts/fuzz.sh 10 builds the libFuzzer harnesses
#      (clang, build-fuzz/) and runs each for 10 s on seeds from the
#      conformance models; any crash fails the step (inputs in build-fuzz/crashes/);
#   5. (default run only) scripts/build-matrix.sh: the library and unit tests
#      built and run with the other compiler/optimisation pairs CI checks
#      (gcc Release -O3, clang RelWithDebInfo), each in its own build-matrix/ dir.
# Every step runs even if an earlier test step failed; the exit status is
# non-zero if any step failed.  A summary is printed at the end.
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."

PYTHON=/usr/bin/python3

usage() { echo "usage: scripts/test.sh [--asan | --valgrind] [--clang] [--no-matrix] [--no-fuzz]" >&2; }

mode=native
clang=0
matrix=1
fuzz=1
for arg in "$@"; do
  case "$arg" in
    --asan) [[ $mode == native ]] || { usage; exit 2; }; mode=asan ;;
    --valgrind) [[ $mode == native ]] || { usage; exit 2; }; mode=valgrind ;;
    --clang) clang=1 ;;
    --no-matrix) matrix=0 ;;
    --no-fuzz) fuzz=0 ;;
    -h | --help) usage; exit 0 ;;
    *) usage; exit 2 ;;
  esac
done

build_dir=build
build_args=()
if ((clang)); then
  build_dir+=-clang
  build_args+=(--clang)
fi
if [[ $mode == asan ]]; then
  build_dir+=-asan
  build_args+=(--asan)
  # Sanitizer reports go to files: a leak found when a Criterion worker exits
  # does not change the test's result (the worker has already reported it),
  # so the reports are collected and checked after each step instead.
  san_dir=$PWD/$build_dir/sanitizer-logs
  export ASAN_OPTIONS="${ASAN_OPTIONS:-detect_leaks=1:strict_string_checks=1}:log_path=$san_dir/asan"
  export UBSAN_OPTIONS="${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}:log_path=$san_dir/ubsan"
fi

# Sanitizer reports (--asan): clear before a step; after it, print them and fail.
san_reset() { [[ $mode != asan ]] || { rm -rf "$san_dir" && mkdir -p "$san_dir"; }; }
san_check() {
  [[ $mode == asan ]] || return 0
  local f found=0
  for f in "$san_dir"/*; do
    [[ -s $f ]] || continue
    found=1
    echo "---- sanitizer report $f"
    cat "$f"
  done
  ((found == 0)) || { echo "test: ERROR: sanitizer reports above (in $san_dir)" >&2; return 1; }
}

summary=()
failed=0
record() { # record STEP STATUS SECONDS [DETAIL]
  summary+=("$(printf '%-14s %-8s %5ss  %s' "$1" "$2" "$3" "${4:-}")")
  [[ $2 != FAILED ]] || failed=1
}
# shellcheck disable=SC2317  # invoked by the EXIT trap
print_summary() {
  echo
  echo "==================== test.sh summary ($mode) ===================="
  local line
  for line in "${summary[@]}"; do echo "$line"; done
  if ((failed)); then
    echo "RESULT: FAILED"
  else
    echo "RESULT: OK"
  fi
}
trap print_summary EXIT

# ---- build ----------------------------------------------------------------
SECONDS=0
if scripts/build.sh "${build_args[@]}"; then
  record build ok "$SECONDS" "$build_dir"
else
  record build FAILED "$SECONDS" "$build_dir"
  exit 1
fi

# ---- unit tests ------------------------------------------------------------
run_ctest() {
  local log=$build_dir/ctest.log rc=0
  san_reset
  ctest --test-dir "$build_dir" --output-on-failure -j2 2>&1 | tee "$log" || rc=$?
  ctest_line=$(grep -E '[0-9]+% tests passed' "$log" | tail -n1 || true)
  san_check || { rc=1 ctest_line="sanitizer reports (see above); ctest: $ctest_line"; }
  if grep -q 'No tests were found' "$log"; then
    echo "test: ERROR: ctest found no tests" >&2
    rc=1
  fi
  return "$rc"
}

# Runs every Criterion test binary that ctest knows (with its ctest arguments)
# under valgrind memcheck.  Criterion 2.4.1 has no --no-fork: it re-executes
# the binary for each test, so --trace-children=yes is needed to check the
# test bodies at all, and because a worker's valgrind exit status does not
# reach Criterion's exit status, errors are found from the per-process logs.
run_valgrind() {
  local vg_dir=$PWD/$build_dir/valgrind rc=0
  rm -rf "$vg_dir" && mkdir -p "$vg_dir"

  # The model-generating fixtures (tests/data/make_*.py) first, not under valgrind.
  ctest --test-dir "$build_dir" --output-on-failure -R '^make_' || return 1

  # name<TAB>workdir<TAB>argv... for every test except the fixture.
  local tests
  tests=$(ctest --test-dir "$build_dir" --show-only=json-v1 | "$PYTHON" -c '
import json, sys
for t in json.load(sys.stdin)["tests"]:
    if t["name"].startswith("make_") or not t.get("command"):
        continue
    labels = next((p["value"] for p in t.get("properties", []) if p["name"] == "LABELS"), [])
    if "valgrind" in labels or t["command"][0].endswith(".sh"):
        continue  # runs valgrind itself, or is a script (plugin_out_of_tree)
    wd = next((p["value"] for p in t.get("properties", [])
               if p["name"] == "WORKING_DIRECTORY"), ".")
    print("\t".join([t["name"], wd] + t["command"]))
') || return 1
  if [[ -z $tests ]]; then
    echo "test: ERROR: no test binaries to run under valgrind" >&2
    return 1
  fi

  local n=0 nfail=0 name wd line
  local -a argv
  while IFS= read -r line; do
    IFS=$'\t' read -r -a argv <<<"$line"
    name=${argv[0]} wd=${argv[1]}
    argv=("${argv[@]:2}")
    n=$((n + 1))
    mkdir -p "$vg_dir/$name"
    echo "test: valgrind $name"
    local trc=0
    (cd "$wd" && valgrind --error-exitcode=1 --leak-check=full \
      --errors-for-leak-kinds=definite,indirect --show-leak-kinds=definite,indirect \
      --trace-children=yes --trace-children-skip='*python*,/bin/*,/usr/bin/*,/usr/sbin/*' \
      --log-file="$vg_dir/$name/%p.log" "${argv[@]}") || trc=$?
    local bad
    bad=$(grep -l -E 'ERROR SUMMARY: [1-9]' "$vg_dir/$name"/*.log 2>/dev/null || true)
    if ((trc != 0)) || [[ -n $bad ]]; then
      nfail=$((nfail + 1))
      echo "test: FAILED under valgrind: $name (exit $trc)"
      local f
      for f in $bad; do
        echo "---- $f"
        cat "$f"
      done
    fi
  done <<<"$tests"
  valgrind_line="$((n - nfail)) of $n test binaries clean under valgrind"
  echo "test: $valgrind_line (logs in $vg_dir)"
  ((nfail == 0)) || rc=1
  return "$rc"
}

SECONDS=0
ctest_line=""
if [[ $mode == valgrind ]]; then
  valgrind_line=""
  if run_valgrind; then
    record valgrind ok "$SECONDS" "$valgrind_line"
  else
    record valgrind FAILED "$SECONDS" "$valgrind_line"
  fi
else
  if run_ctest; then
    record "unit tests" ok "$SECONDS" "$ctest_line"
  else
    record "unit tests" FAILED "$SECONDS" "${ctest_line:-ctest failed}"
  fi
fi

# ---- the Python package and Dask ------------------------------------------------
# python/tests under Debian's pytest, on the build's libqkv.so: the API, its
# errors, threads, an ORT user script run with `import qkv as ort`, and qkv.dask
# on a 2-process LocalCluster (with a worker killed mid-job). Not with --asan:
# an ASan library cannot be loaded into an uninstrumented python3.
SECONDS=0
if [[ $mode == asan ]]; then
  record python skipped "$SECONDS" "ASan build: libqkv.so cannot load into python3"
else
  py_log=$build_dir/python-tests.log
  if QKV_LIBRARY=$PWD/$build_dir/libqkv.so QKV_BUILD_DIR=$PWD/$build_dir \
    "$PYTHON" -m pytest -q -p no:cacheprovider python/tests 2>&1 | tee "$py_log"; then
    record python ok "$SECONDS" "$(grep -E '[0-9]+ passed' "$py_log" | tail -n1)"
  else
    record python FAILED "$SECONDS" "$(grep -E '[0-9]+ (passed|failed)' "$py_log" | tail -n1)"
  fi
fi

# ---- ONNX conformance -------------------------------------------------------
qkv=$build_dir/qkv
conf_dir=$build_dir/conformance

# run_suite NAME DIR EXPECTED: `qkv test DIR`, then fail if a test listed in
# EXPECTED did not pass. The per-test lines go to NAME.log; only failures and
# the totals are shown (a few ONNX 1.12 tests fail on their own data: README).
run_suite() {
  local name=$1 dir=$2 expected=$3 qrc=0 crc=0
  local json=$conf_dir/$name.json log=$conf_dir/$name.log
  rm -f "$json"
  san_reset
  "$qkv" test "$dir" --json "$json" --scoreboard "$conf_dir/$name-SCOREBOARD.md" \
    >"$log" 2>&1 || qrc=$?
  grep -E '^(FAIL|ERROR) ' "$log" || true
  echo "$name conformance totals: $(grep -E '^[0-9]+ passed, ' "$log" | tail -n1)"
  # A non-zero exit just for failing tests is expected; a crash, a
  # sanitizer report or a missing report is not.
  if ! san_check; then
    conf_detail="'$qkv test' triggered sanitizer reports"
    return 1
  elif ((qrc >= 128)); then
    conf_detail="'$qkv test' died (exit $qrc); see $log"
    return 1
  elif [[ ! -s $json ]]; then
    conf_detail="'$qkv test' wrote no $json (exit $qrc)"
    return 1
  fi
  "$PYTHON" scripts/check_conformance.py "$json" "$expected" 2>&1 |
    tee "$conf_dir/$name-check.log" || crc=$?
  conf_detail=$(grep -E '^check_conformance: [0-9]+/[0-9]+ ' "$conf_dir/$name-check.log" |
    tail -n1 | sed 's/^check_conformance: //' || true)
  ((crc == 0)) || { conf_detail="regression: ${conf_detail}"; return 1; }
}

# The ONNX backend node suite generated from Debian's python3-onnx (1.12).
SECONDS=0
conf_detail=""
mkdir -p "$conf_dir"
if ! "$PYTHON" scripts/gen_conformance.py "$conf_dir"; then
  record conformance FAILED "$SECONDS" "generating the suite failed"
elif run_suite node "$conf_dir/node" tests/conformance/expected_pass.txt; then
  record conformance ok "$SECONDS" "$conf_detail"
else
  record conformance FAILED "$SECONDS" "$conf_detail"
fi

# Newer ONNX test data (opsets 20-24: Attention, RMSNormalization,
# RotaryEmbedding, Gelu, ...) kept in ../shared/conformance beside the checkout.
SECONDS=0
conf_detail=""
shared_conf=../shared/conformance/onnx-attention
if [[ ! -d $shared_conf ]]; then
  echo "test: no $shared_conf beside the checkout: attention conformance skipped"
  record attention skipped "$SECONDS" "$shared_conf not found"
elif run_suite attention "$shared_conf" tests/conformance/expected_pass_attention.txt; then
  record attention ok "$SECONDS" "$conf_detail"
else
  record attention FAILED "$SECONDS" "$conf_detail"
fi

# ---- fuzz smoke run ------------------------------------------------------------
# Its own sanitizer build (build-fuzz/), whatever the mode; the seeds come from
# the conformance suite generated above.
if ((fuzz)); then
  SECONDS=0
  fuzz_log=$conf_dir/fuzz-smoke.log
  fuzz_detail() { grep -E '^fuzz: (ok|FAILED) ' "$fuzz_log" | sed 's/^fuzz: //' | paste -sd ';' - || true; }
  if QKV_CONFORMANCE_DIR=$conf_dir scripts/fuzz.sh 10 2>&1 | tee "$fuzz_log"; then
    record "fuzz smoke" ok "$SECONDS" "$(fuzz_detail)"
  else
    record "fuzz smoke" FAILED "$SECONDS" "$(fuzz_detail)"
  fi
fi

# ---- other compilers and optimisation levels ---------------------------------
# Only with the default build: the matrix is about the compiler, not the tools.
if [[ $mode == native ]] && ((clang == 0 && matrix)); then
  SECONDS=0
  matrix_log=$build_dir/build-matrix.log
  matrix_detail() {
    grep -E '^build-matrix: (ok|FAILED) ' "$matrix_log" | sed 's/^build-matrix: //' |
      paste -sd ';' - || true
  }
  if scripts/build-matrix.sh 2>&1 | tee "$matrix_log"; then
    record "build matrix" ok "$SECONDS" "$(matrix_detail)"
  else
    record "build matrix" FAILED "$SECONDS" "$(matrix_detail)"
  fi
fi

exit "$failed"
