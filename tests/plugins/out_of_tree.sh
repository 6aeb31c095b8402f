#!/usr/bin/env bash
# out_of_tree.sh BUILD_DIR SOURCE_DIR DATA_DIR PYTHON
#
# A third party's plugin, end to end: install qkv (the build at BUILD_DIR) to
# a temporary prefix; copy the example plugin's source alone into a fresh
# directory; build it with a plain cc line using only the installed header and
# pkg-config; run a model that uses it with the installed `qkv run --plugin`;
# compare the output with the reference. Also checks that the plugin exports
# only its entry point and its ABI version, and that the installed qkv finds
# its own default plugins (the OpenBLAS backend) under PREFIX/LIBDIR/qkv/plugins.
set -euo pipefail
build=$1 src=$2 data=$3 python=$4
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

cmake --install "$build" --prefix "$tmp/prefix" >"$tmp/install.log"
pc=$(find "$tmp/prefix" -name qkv.pc | head -n1)
[[ -n $pc ]] || { echo "out_of_tree: no qkv.pc installed"; exit 1; }
export PKG_CONFIG_PATH=$(dirname "$pc")
[[ -f $tmp/prefix/include/qkv_plugin.h ]] || { echo "out_of_tree: qkv_plugin.h not installed"; exit 1; }

mkdir "$tmp/myops"
cp "$src/plugins/example_ops/example_ops.c" "$tmp/myops/"
cd "$tmp/myops"
# the line docs/plugins.md gives
cc -std=c11 -O2 -Wall -Wextra -Werror $(pkg-config --cflags qkv) -shared -fPIC \
  -fvisibility=hidden -o libmyops.so example_ops.c -lm
exported=$(nm -D --defined-only libmyops.so | awk '$2 == "T" || $2 == "R" {print $2, $3}' |
  sort | tr '\n' ' ')
if [[ $exported != "R qkv_plugin_abi_version T qkv_plugin_init " ]]; then
  echo "out_of_tree: the plugin exports [$exported], expected only qkv_plugin_init and" \
    "qkv_plugin_abi_version"
  exit 1
fi

qkv=$tmp/prefix/bin/qkv
"$qkv" run "$data/example.onnx" --plugin ./libmyops.so --input "x=$data/example_input_0.pb" \
  --output-dir out --verbose --profile | tee run.log
grep -q "example_ops 1.0.0  $tmp/myops/libmyops.so" run.log ||
  { echo "out_of_tree: --verbose does not list the plugin"; exit 1; }
grep -E -q "rope +qkv.example.Rotary +cpu" run.log ||
  { echo "out_of_tree: --profile does not show the plugin op"; exit 1; }
if ls "$tmp"/prefix/lib*/qkv/plugins/libqkv_openblas.so >/dev/null 2>&1 ||
  ls "$tmp"/prefix/lib/*/qkv/plugins/libqkv_openblas.so >/dev/null 2>&1; then
  grep -q "openblas .*$tmp/prefix/.*qkv/plugins/libqkv_openblas.so" run.log ||
    { echo "out_of_tree: the installed qkv did not load its openblas plugin"; exit 1; }
fi
"$python" - "$data/example_output_0.pb" out/y.npy <<'PY'
import sys
import numpy as np
import onnx
from onnx import numpy_helper
want = numpy_helper.to_array(onnx.load_tensor(sys.argv[1]))
got = np.load(sys.argv[2])
assert got.shape == want.shape, (got.shape, want.shape)
err = float(np.abs(got - want).max())
# float32 kernels against a float64 reference: a few ulp of values ~4
assert err <= 1e-5, err
print("out_of_tree: output matches the reference (max abs error %.3g)" % err)
PY
echo "out_of_tree: OK"
