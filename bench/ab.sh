#!/usr/bin/env bash
# bench/ab.sh - two builds of qkv side by side: the same models, inputs and
# thread counts, interleaved run by run so the drift of the machine hits both.
#
# usage: bench/ab.sh BUILD_A BUILD_B MODEL...
# environment:
#   THREADS="1 2"   thread counts (qkv bench --threads)
#   REPS=5          interleaved repetitions: A, B, A, B, ...
#   ITERS=20        timed runs per `qkv bench`; WARMUP=5 untimed runs first
#   ARGS=           extra options for every `qkv bench` (e.g. "--backend cpu")
#
# Each build runs with its own plugins (BUILD/plugins, through
# QKV_PLUGIN_PATH). Prints, per model and thread count, the best (lowest) of
# the per-repetition medians of each build and their ratio B/A: below 1 B is
# faster. Use it to show that a change is no slower, e.g. a commit before a
# refactor (built in a git worktree) against the tree after it.
set -euo pipefail

(($# >= 3)) || { sed -n 2,17p "$0" >&2; exit 2; }
a=$1 b=$2
shift 2
for d in "$a" "$b"; do
  [[ -x $d/qkv ]] || { echo "ab: no qkv binary in $d" >&2; exit 1; }
done
THREADS=${THREADS:-"1 2"} REPS=${REPS:-5} ITERS=${ITERS:-20} WARMUP=${WARMUP:-5}

median_of() { # median_of BUILD MODEL THREADS: the median latency (ms) of one `qkv bench`
  local out
  # shellcheck disable=SC2086
  out=$(QKV_PLUGIN_PATH="$1/plugins" "$1/qkv" bench "$2" --threads "$3" --iters "$ITERS" \
    --warmup "$WARMUP" ${ARGS:-} 2>&1) || { echo "ab: $1/qkv bench $2 failed:" >&2; echo "$out" >&2; exit 1; }
  sed -n 's/^latency.*median \([0-9.]*\).*/\1/p' <<<"$out" | head -n1
}

echo "# load before: $(uptime)"
printf '| model | threads | A ms | B ms | B/A |\n|---|---|---|---|---|\n'
for m in "$@"; do
  for t in $THREADS; do
    best_a= best_b=
    for ((r = 0; r < REPS; r++)); do
      ma=$(median_of "$a" "$m" "$t")
      mb=$(median_of "$b" "$m" "$t")
      best_a=$(awk -v x="$ma" -v y="${best_a:-$ma}" 'BEGIN{print (x<y)?x:y}')
      best_b=$(awk -v x="$mb" -v y="${best_b:-$mb}" 'BEGIN{print (x<y)?x:y}')
    done
    printf '| %s | %s | %s | %s | %s |\n' "$(basename "$m" .onnx)" "$t" "$best_a" "$best_b" \
      "$(awk -v x="$best_a" -v y="$best_b" 'BEGIN{printf "%.3f", y/x}')"
  done
done
echo "# load after: $(uptime)"
echo "# A = $a ($(git -C "$a" rev-parse --short HEAD 2>/dev/null || echo '?')), B = $b; REPS=$REPS ITERS=$ITERS WARMUP=$WARMUP ${ARGS:+ARGS=$ARGS}"
