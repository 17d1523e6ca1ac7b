#!/usr/bin/env bash
# cuda_build_check.sh: the GPU build must never rot where no GPU exists. Configures build-cuda/
# with FORGE_CUDA=ON (nvcc, sm_80 and sm_90: engine/cuda/CMakeLists.txt) and builds test programs
# that link the CUDA backend: every kernels/*.cu is compiled by nvcc and linked with cuBLAS, cuDNN
# (engine/cuda/cudnn_conv.cpp, and its direct test test_cudnn_conv) and the CUDA runtime, and so
# are dev/attention's playground (its nvcc build, --device cuda) and build/bin/bench with its
# CUDA-event timer (tools/bench/timing.h), and build/bin/train with NCCL (FORGE_NCCL=ON: the cuda
# ranks' gradient all-reduce, engine/cuda/nccl_all_reduce.cpp). Nothing is run (test programs on
# a machine without a GPU skip Device::cuda). Then it checks that the GPU test program really
# depends on libcudnn, so cuda's convolutions take cuDNN (docs/GPU_BACKEND.md, "Convolutions"),
# and says which convolution each device runs, and that train depends on libnccl.
# scripts/nvcc_check.sh compiles the test-only kernels of tests/kernels the same way.
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
build="${FORGE_CUDA_BUILD_DIR:-$root/build-cuda}"
cmake -S "$root" -B "$build" -G Ninja -DCMAKE_BUILD_TYPE=Release -DFORGE_CUDA=ON -DFORGE_NCCL=ON >/dev/null
nice -n 10 cmake --build "$build" -j2 --target test_gpu_basic test_gpu_vision test_cudnn_conv \
  attention_playground bench train
if ! readelf -d "$build/bin/test_gpu_vision" | grep -q 'NEEDED.*libcudnn\.so'; then
  echo "cuda_build_check: FAILED: bin/test_gpu_vision does not link libcudnn (FORGE_CUDNN off?)"
  exit 1
fi
if ! readelf -d "$build/bin/train" | grep -q 'NEEDED.*libnccl\.so'; then
  echo "cuda_build_check: FAILED: bin/train does not link libnccl (FORGE_NCCL)"
  exit 1
fi
echo "cuda_build_check: conv2d runs oneDNN on cpu, im2col on sim, cuDNN on cuda (im2col fallback)"
echo "cuda_build_check: OK (forge_gpu_cuda compiled for sm_80 and sm_90 and linked with cuDNN; train with NCCL)"
