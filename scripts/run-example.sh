#!/usr/bin/env bash
# Run qkv on a model: for now this prints the model summary with
# `build/qkv info MODEL` (it builds first if build/qkv is missing).
#
#   scripts/run-example.sh MODEL.onnx
set -euo pipefail

if (($# != 1)); then
  echo "usage: scripts/run-example.sh MODEL.onnx" >&2
  exit 2
fi
model=$1
[[ "$model" == /* ]] || model="$PWD/$model"

cd "$(dirname "${BASH_SOURCE[0]}")/.."
[[ -x build/qkv ]] || scripts/build.sh
exec build/qkv info "$model"
