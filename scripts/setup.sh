#!/usr/bin/env bash
# Installs everything the project needs on a fresh Debian machine, and what the checks of .ci/run
# need. Idempotent and non-interactive; runs as root (as CI and the developer machines do) or
# through sudo when not root. scripts/fresh_machine_check.sh proves it on a bare Debian 12 root.
set -euo pipefail
project="$(cd "$(dirname "$0")/.." && pwd)"

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
  debootstrap          # scripts/fresh_machine_check.sh builds its bare Debian root with it
  chromium             # headless, checks report.html (tests/train/check_report_page.py)
  libopenmpi-dev openmpi-bin  # Open MPI: mpirun -np N train (docs/DISTRIBUTED.md, tests/dist)
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

# NVIDIA's CUDA headers, which kernels/sim compiles against (kernels/sim/CMakeLists.txt), so no
# CUDA toolkit is needed: PyPI's runtime and crt wheels (2.7 MB), CUDA 13.0 as CI's nvcc, and the
# CCCL wheel (3 MB) for <nv/target>, which cuda_bf16.h includes (through cuda_fp16.h).
# Unpacked into .deps/cuda-headers; a toolkit, where installed, is preferred by CMake.
# The nvcc build (FORGE_CUDA=ON) is optional and needs what this script does not install: a CUDA
# toolkit and cuDNN 9, which is no part of the toolkit (NVIDIA's apt repository:
# libcudnn9-dev-cuda-13; or configure with -DFORGE_CUDNN=OFF). docs/GPU_BACKEND.md, "Convolutions".
# NCCL likewise (libnccl-dev, or PyPI's nvidia-nccl-cu13 beside the toolkit; -DFORGE_NCCL=OFF
# without it): the cuda ranks' gradient all-reduce, docs/DISTRIBUTED.md.
cuda_header_wheels="nvidia-cuda-runtime==13.0.88 nvidia-cuda-crt==13.0.88 nvidia-cuda-cccl==13.0.85"
cuda_headers="$project/.deps/cuda-headers"
if [ "$(cat "$cuda_headers/wheels" 2>/dev/null)" != "$cuda_header_wheels" ]; then
  echo "setup: installing CUDA headers ($cuda_header_wheels) into .deps/cuda-headers"
  rm -rf "$cuda_headers" "$cuda_headers.partial"
  # shellcheck disable=SC2086  # the list splits into its requirements
  python3 -m pip install -q --root-user-action=ignore --no-deps --no-compile --target "$cuda_headers.partial" $cuda_header_wheels
  echo "$cuda_header_wheels" >"$cuda_headers.partial/wheels"
  mv "$cuda_headers.partial" "$cuda_headers"
fi
