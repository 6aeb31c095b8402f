#!/usr/bin/env bash
# Build qkv.
#
#   scripts/build.sh          RelWithDebInfo build in build/
#   scripts/build.sh --asan   Debug build with ASan+UBSan (QKV_SANITIZE=ON) in build-asan/
#
# Runs scripts/setup.sh first, so a fresh Debian machine gets its packages.
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."

usage() { echo "usage: scripts/build.sh [--asan]" >&2; }

asan=0
for arg in "$@"; do
  case "$arg" in
    --asan) asan=1 ;;
    -h | --help) usage; exit 0 ;;
    *) usage; exit 2 ;;
  esac
done

scripts/setup.sh

if ((asan)); then
  build_dir=build-asan
  cmake_args=(-DCMAKE_BUILD_TYPE=Debug -DQKV_SANITIZE=ON)
else
  build_dir=build
  cmake_args=(-DCMAKE_BUILD_TYPE=RelWithDebInfo)
fi

echo "build: configuring $build_dir (${cmake_args[*]})"
cmake -S . -B "$build_dir" "${cmake_args[@]}"
echo "build: building $build_dir with $(nproc) jobs"
cmake --build "$build_dir" -j"$(nproc)"
echo "build: $build_dir is up to date"
