#!/usr/bin/env bash
# Concurrency stress test: many application threads, each with its own
# multi-threaded context, over one shared session, alternating more input
# shapes than the plan cache holds; every output compared bit for bit with a
# run made alone (tests/stress/stress_threads.c), while two more threads load
# and release a plugin (the example plugin) by creating and destroying
# sessions with it, so the plugin registry is used concurrently.
#
#   scripts/stress.sh [SECONDS]     (default 60 per run)
#
# Two runs: the ThreadSanitizer build (build-tsan/: gcc -fsanitize=thread,
# without the oneDNN plugin, whose OpenMP runtime TSan does not understand),
# where any race report fails, and the normal build (build/) with the
# default plugins. Not part of scripts/test.sh: it runs as long as it is told.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

seconds=${1:-60}
[[ $seconds =~ ^[0-9]+$ ]] || { echo "usage: scripts/stress.sh [SECONDS]" >&2; exit 2; }
PYTHON=/usr/bin/python3

scripts/setup.sh
tsan_flags="-fsanitize=thread -fno-omit-frame-pointer"
cmake -S . -B build-tsan -DCMAKE_BUILD_TYPE=RelWithDebInfo -DQKV_WITH_ONEDNN=OFF \
  -DCMAKE_C_FLAGS="$tsan_flags" -DCMAKE_EXE_LINKER_FLAGS=-fsanitize=thread \
  -DCMAKE_SHARED_LINKER_FLAGS=-fsanitize=thread -DCMAKE_MODULE_LINKER_FLAGS=-fsanitize=thread
cmake --build build-tsan -j"$(nproc)" --target stress_threads qkv_plugin_openblas \
  qkv_plugin_example_ops
cmake -S . -B build >/dev/null
cmake --build build -j"$(nproc)" --target stress_threads qkv_plugin_example_ops
"$PYTHON" tests/data/make_exec_models.py build/testdata >/dev/null
model=build/testdata/exec/linear_stack.onnx

rc=0
log=build-tsan/stress.log
echo "stress: ThreadSanitizer build, $seconds s"
TSAN_OPTIONS="halt_on_error=0 ${TSAN_OPTIONS:-}" \
  build-tsan/tests/stress_threads "$model" "$seconds" 4 2 40 \
  build-tsan/plugins/example_ops/libqkv_example_ops.so >"$log" 2>&1 || rc=1
grep '^stress:' "$log" | tail -n2
if grep -q "WARNING: ThreadSanitizer" "$log"; then
  echo "stress: ThreadSanitizer reports in $log:" >&2
  grep -A20 "WARNING: ThreadSanitizer" "$log" | head -60 >&2
  rc=1
fi
echo "stress: normal build with the default plugins, $seconds s"
build/tests/stress_threads "$model" "$seconds" 4 2 40 \
  build/plugins/example_ops/libqkv_example_ops.so || rc=1
exit "$rc"
