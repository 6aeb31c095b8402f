#!/usr/bin/env bash
# Formats the C sources and headers with clang-format (.clang-format), or
# with --check lists the files that are not formatted and exits 1.
# proto/ holds protoc-c's output and is left as generated.
#
#   scripts/format.sh [--check]
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
mapfile -t files < <(git ls-files '*.c' '*.h' | grep -v '^proto/')
if [[ ${1:-} == --check ]]; then
  bad=0
  for f in "${files[@]}"; do
    if ! clang-format --dry-run --Werror "$f" >/dev/null 2>&1; then
      echo "not formatted: $f"
      bad=1
    fi
  done
  exit "$bad"
fi
clang-format -i "${files[@]}"
