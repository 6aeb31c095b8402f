#!/usr/bin/env bash
# Install the Debian packages qkv needs to build and test.
#
# Idempotent: packages already installed are left alone, and when nothing is
# missing this is a fast no-op (no apt-get update, no root needed).  Works
# non-interactively (CI=true, no stdin).  Uses sudo when not root.
set -euo pipefail

PACKAGES=(
  build-essential
  clang
  libclang-rt-14-dev # clang's sanitizer runtimes (scripts/test.sh --asan --clang)
  libomp-dev # OpenMP for clang: the onednn plugin needs it (gcc has libgomp)
  cmake
  pkg-config
  libprotobuf-c-dev
  protobuf-c-compiler
  libonnx-dev
  libopenblas-dev
  libdnnl-dev
  libcriterion-dev
  libfuzzer-14-dev # libFuzzer for clang -fsanitize=fuzzer (fuzz harnesses)
  python3-onnx
  python3-torch
  python3-torchvision # real-architecture exports (ViT, Swin, MaxViT)
  python3-torchaudio  # wav2vec2, Conformer exports
  python3-numpy
  python3-pytest      # the Python package's tests
  python3-distributed # batch inference on Dask
  python3-pandas      # dask.dataframe (qkv.dask.map_partitions)
  valgrind
)

log() { printf 'setup: %s\n' "$*"; }

missing=()
for pkg in "${PACKAGES[@]}"; do
  status=$(dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null || true)
  if [[ "$status" == "install ok installed" ]]; then
    continue
  fi
  missing+=("$pkg")
done

if ((${#missing[@]} == 0)); then
  log "all ${#PACKAGES[@]} required packages are installed"
  exit 0
fi

log "missing packages: ${missing[*]}"

if [[ $(id -u) -eq 0 ]]; then
  SUDO=()
elif command -v sudo >/dev/null 2>&1 && sudo -n true 2>/dev/null; then
  SUDO=(sudo -n)
elif command -v sudo >/dev/null 2>&1 && [[ -t 0 ]]; then
  SUDO=(sudo) # interactive: sudo may prompt for a password
else
  log "ERROR: need root or sudo to install: ${missing[*]}" >&2
  log "ERROR: run as root, or: sudo apt-get install ${missing[*]}" >&2
  exit 1
fi

export DEBIAN_FRONTEND=noninteractive
log "running apt-get update"
"${SUDO[@]}" env DEBIAN_FRONTEND=noninteractive apt-get update -q </dev/null
log "installing ${missing[*]}"
"${SUDO[@]}" env DEBIAN_FRONTEND=noninteractive \
  apt-get install -y -q --no-install-recommends "${missing[@]}" </dev/null

still_missing=()
for pkg in "${missing[@]}"; do
  status=$(dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null || true)
  [[ "$status" == "install ok installed" ]] || still_missing+=("$pkg")
done
if ((${#still_missing[@]} > 0)); then
  log "ERROR: still not installed: ${still_missing[*]}" >&2
  exit 1
fi
log "installed ${#missing[@]} package(s)"
