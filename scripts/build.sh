#!/usr/bin/env bash
# Build qkv.
#
#   scripts/build.sh          RelWithDebInfo build in build/
#   scripts/build.sh --asan   Debug build with ASan+UBSan (QKV_SANITIZE=ON) in build-asan/
#   --clang                   either one with clang, in build-clang/ or build-clang-asan/
#                             (clang's UBSan also reports NULL + 0 and memcpy from NULL)
#
# Runs scripts/setup.sh first, so a fresh Debian machine gets its packages.
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."

usage() { echo "usage: scripts/build.sh [--asan] [--clang]" >&2; }

asan=0
clang=0
for arg in "$@"; do
  case "$arg" in
    --asan) asan=1 ;;
    --clang) clang=1 ;;
    -h | --help) usage; exit 0 ;;
    *) usage; exit 2 ;;
  esac
done

scripts/setup.sh

build_dir=build
if ((clang)); then
  build_dir+=-clang
  export CC=clang # read when build_dir is first configured
fi
if ((asan)); then
  build_dir+=-asan
  cmake_args=(-DCMAKE_BUILD_TYPE=Debug -DQKV_SANITIZE=ON)
else
  cmake_args=(-DCMAKE_BUILD_TYPE=RelWithDebInfo)
fi

echo "build: configuring $build_dir (${cmake_args[*]})"
cmake -S . -B "$build_dir" "${cmake_args[@]}"
echo "build: building $build_dir with $(nproc) jobs"
cmake --build "$build_dir" -j"$(nproc)"
echo "build: $build_dir is up to date"
