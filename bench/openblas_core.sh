#!/usr/bin/env bash
# bench/openblas_core.sh - what the OpenBLAS core choice is worth: sgemm
# through qkv (a MatMul of two runtime inputs: the core's MatMul kernel, the
# session's GEMM service, the openblas plugin's provider) with
#   auto      the core the plugin chose from the CPU features (or OpenBLAS's
#             own, see the "core" column), OPENBLAS_CORETYPE unset
#   Prescott  OPENBLAS_CORETYPE=Prescott: OpenBLAS's generic SSE3 kernels, what
#             Debian's OpenBLAS 0.3.21 falls back to on CPUs newer than itself
#   portable  --backend cpu: qkv's portable C GEMM, no OpenBLAS
# side by side (the configurations alternate, REPS rounds; the best round of
# each is shown), one thread.
#
# usage: bench/openblas_core.sh [BUILD_DIR]     (default: ./build of the repo;
#        built already, with the openblas plugin)
# environment: SHAPES="128x768x3072 1024x1024x1024" (MxKxN), REPS=3, ITERS=10,
#              QKV_PYTHON=/usr/bin/python3
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
BUILD=${1:-$ROOT/build}
SHAPES=${SHAPES:-"128x768x3072 1024x1024x1024"}
REPS=${REPS:-3}
ITERS=${ITERS:-10}
PY=${QKV_PYTHON:-/usr/bin/python3}
QKV=$BUILD/qkv
MODELS=$BUILD/bench/openblas_core
[[ -x $QKV ]] || { echo "openblas_core.sh: $QKV is missing (build it first)" >&2; exit 1; }
[[ -f $BUILD/plugins/libqkv_openblas.so ]] ||
    { echo "openblas_core.sh: no openblas plugin in $BUILD/plugins" >&2; exit 1; }
mkdir -p "$MODELS"

"$PY" - "$MODELS" $SHAPES <<'PYEOF'
import os, sys
import onnx
from onnx import TensorProto, helper
out = sys.argv[1]
for shape in sys.argv[2:]:
    m, k, n = (int(v) for v in shape.split("x"))
    f = lambda name, s: helper.make_tensor_value_info(name, TensorProto.FLOAT, s)
    g = helper.make_graph([helper.make_node("MatMul", ["a", "b"], ["y"])], "mm",
                          [f("a", [m, k]), f("b", [k, n])], [f("y", [m, n])])
    model = helper.make_model(g, opset_imports=[helper.make_opsetid("", 13)])
    model.ir_version = 8
    onnx.save(model, os.path.join(out, f"mm_{shape}.onnx"))
PYEOF

# best GFLOP/s ("at the min") of one qkv bench run; the core from its describe line
run() { # shape config
    local shape=$1 config=$2 m k n
    IFS=x read -r m k n <<<"$shape"
    local flops=$((2 * m * k * n)) args=() envs=(env -u OPENBLAS_CORETYPE)
    case $config in
    Prescott) envs=(env OPENBLAS_CORETYPE=Prescott) ;;
    portable) args=(--backend cpu) ;;
    esac
    "${envs[@]}" QKV_LOG_LEVEL=0 "$QKV" bench "$MODELS/mm_$shape.onnx" --threads 1 --warmup 2 \
        --iters "$ITERS" --flops "$flops" "${args[@]}" 2>&1 |
        awk -v cfg="$config" '
            /^  openblas / { sub(/^  openblas +/, ""); core = $0 }
            /GFLOP\/s at the median/ { best = $(NF-3) }
            END { if (cfg == "portable") core = "portable C"; print best "\t" core }'
}

echo "# load before: $(uptime)"
printf '%-16s  %-9s  %8s  %s\n' shape config GFLOP/s backend
for shape in $SHAPES; do
    declare -A best=() core=()
    for ((r = 0; r < REPS; r++)); do
        for config in auto Prescott portable; do
            IFS=$'\t' read -r g c < <(run "$shape" "$config")
            if [[ -z ${best[$config]:-} ]] || awk -v a="$g" -v b="${best[$config]}" 'BEGIN{exit !(a>b)}'; then
                best[$config]=$g
            fi
            core[$config]=$c
        done
    done
    for config in auto Prescott portable; do
        printf '%-16s  %-9s  %8s  %s\n' "$shape" "$config" "${best[$config]}" "${core[$config]}"
    done
    unset best core
done
echo "# load after: $(uptime)"
