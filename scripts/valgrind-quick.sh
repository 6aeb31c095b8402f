#!/usr/bin/env bash
# A fast valgrind memcheck pass over the paths where memory is managed:
# session creation and destruction, runs, the plan cache, plugins (load,
# release, backends, prepack), the memory limit, fault injection, sequences
# and optionals moved and copied across If/Loop bodies and SequenceMap, and the
# Python binding (when python/ is present). A few minutes, where
# `scripts/test.sh --valgrind` (every test binary) takes 25+.
#
#   scripts/valgrind-quick.sh
#
# Builds build/ (RelWithDebInfo) when needed; each test binary runs under
# tests/plugins/run_valgrind.sh (leaks, invalid reads/writes, every forked
# Criterion worker checked). Exit 0 only when every one is clean.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

PYTHON=/usr/bin/python3
scripts/setup.sh
cmake -S . -B build >/dev/null
tests=(test_session test_run_threads test_memory_limit test_plugin test_plugin_gemm test_prepack
       test_fault_sweep test_control_flow_seq test_sequence_map)
[[ -f build/plugins/libqkv_onednn.so ]] && tests+=(test_onednn)
cmake --build build -j"$(nproc)" --target qkv qkv_cli "${tests[@]}" # qkv_cli: build/qkv, which test_plugin runs
for gen in tests/data/make_*.py; do "$PYTHON" "$gen" build/testdata >/dev/null; done

vg=$(command -v valgrind) || { echo "valgrind-quick: valgrind is not installed" >&2; exit 1; }
rc=0
start=$SECONDS
for t in "${tests[@]}"; do
  t0=$SECONDS
  # Every test may load the default plugins: libgomp's constructor block,
  # lost when the oneDNN plugin unloads it, is suppressed for all of them.
  opts=--suppressions=$PWD/tests/plugins/onednn_valgrind.supp
  env=()
  case $t in
    test_fault_sweep) opts+=" --soname-synonyms=somalloc=nouserintercepts"
                      env=(QKV_FAULT_SWEEP_STRIDE=4) ;;
  esac
  env+=("VALGRIND_OPTS=$opts")
  if (cd build/tests && env "${env[@]}" "$PWD/../../tests/plugins/run_valgrind.sh" "$vg" \
      "$PWD/../valgrind-quick/$t" "./$t" --jobs 1 >"../valgrind-quick-$t.log" 2>&1); then
    echo "valgrind-quick: ok     $t ($((SECONDS - t0)) s)"
  else
    echo "valgrind-quick: FAILED $t ($((SECONDS - t0)) s): build/valgrind-quick-$t.log"
    rc=1
  fi
done
if [[ -d python/qkv ]]; then
  t0=$SECONDS
  # The binding's own code is Python; what memcheck checks is libqkv under
  # it (Python's allocator is told to use malloc so it does not hide reads).
  if PYTHONMALLOC=malloc PYTHONPATH=$PWD/python QKV_LIBRARY=$PWD/build/libqkv.so \
      "$vg" --error-exitcode=1 --leak-check=no --errors-for-leak-kinds=none \
      --suppressions=python/tests/valgrind.supp \
      --log-file=build/valgrind-quick-python.log \
      "$PYTHON" python/tests/valgrind_smoke.py build/testdata >/dev/null 2>&1; then
    echo "valgrind-quick: ok     python binding ($((SECONDS - t0)) s)"
  else
    echo "valgrind-quick: FAILED python binding: build/valgrind-quick-python.log"
    rc=1
  fi
fi
echo "valgrind-quick: $((SECONDS - start)) s in all"
exit "$rc"
