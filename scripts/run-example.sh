#!/usr/bin/env bash
# The main job: install what is missing, build, export the bundled attention
# model from PyTorch (nn.MultiheadAttention with a key padding mask,
# models/export_examples.py), run it with qkv and check it against PyTorch.
#
#   scripts/run-example.sh
#
# Prints the model's outputs (`qkv run`, whose single run includes planning
# for the new shape), the time per run over 100 runs (`qkv bench`), then its
# agreement with PyTorch's outputs at two input shapes (`qkv test --verbose`).
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."

scripts/build.sh
example=build/examples/mha
if [[ ! -f $example/model.onnx ]]; then
  /usr/bin/python3 models/export_examples.py build/examples mha
fi

echo
echo "== qkv run $example/model.onnx (data set 0: batch 2, sequence 10)"
build/qkv run "$example/model.onnx" \
  --input "x=$example/test_data_set_0/input_0.pb" \
  --input "key_padding_mask=$example/test_data_set_0/input_1.pb"

echo
echo "== time per run (qkv bench, 100 runs after 3 warm-up runs)"
build/qkv bench "$example/model.onnx" --iters 100 \
  --input "x=$example/test_data_set_0/input_0.pb" \
  --input "key_padding_mask=$example/test_data_set_0/input_1.pb" | grep -E '^(latency|throughput)'

echo
echo "== agreement with PyTorch (eager) at two shapes"
build/qkv test "$example" --verbose
