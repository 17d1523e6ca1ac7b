#!/usr/bin/env bash
# Installs everything the project needs on a fresh Debian machine. Idempotent and non-interactive;
# runs as root (as CI and the developer machines do) or through sudo when not root.
set -euo pipefail

SUDO=""
if [ "$(id -u)" != "0" ]; then SUDO="sudo"; fi

DEBIAN_PACKAGES=(
  build-essential cmake ninja-build pkg-config
  libstb-dev           # stb_image / stb_image_write: image decoding
  libturbojpeg0-dev    # libjpeg-turbo: JPEG decoding (data/decode.cpp)
  doctest-dev          # the test framework
  libdnnl-dev          # oneDNN: CPU GEMM and convolution
  ocl-icd-opencl-dev   # oneDNN's CMake config requires OpenCL (only "recommended" by libdnnl-dev)
  nlohmann-json3-dev   # JSON: safetensors headers, configs, metrics
  libboost-context-dev # fibers for kernels/sim
  libcli11-dev         # command-line flags for tools/
  python3 python3-pip  # the safetensors interoperability test
  clang libclang-rt-14-dev  # libFuzzer for the image-decoding fuzz test
)

missing=()
for p in "${DEBIAN_PACKAGES[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  echo "setup: installing ${missing[*]}"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

# Python side of the interoperability tests: safetensors + numpy read our checkpoints.
if ! python3 -c "import safetensors, numpy" 2>/dev/null; then
  echo "setup: installing python packages safetensors numpy"
  python3 -m pip install -q safetensors numpy 2>/dev/null ||
    python3 -m pip install -q --break-system-packages safetensors numpy
fi
