#!/usr/bin/env bash
# Installs PyTorch (used on the CPU only) for bench/pytorch_bench.py and bench/compare_pytorch.sh,
# into the virtual environment .venv-bench/ (gitignored). Idempotent and non-interactive; runs as
# root (apt-get for python3-venv when missing, like scripts/setup.sh) or through sudo.
#
# Which torch, and why: torch==2.15.0 from PyPI (the newest when this was written).
# - PyPI is the only registry reachable here, and PyPI's Linux x86_64 torch wheels are all CUDA
#   builds (the CPU-only wheels live on the PyTorch index, not reachable). The wheel itself is
#   539 MB; its CUDA libraries come as nvidia-* / cuda-toolkit wheels.
# - `pip install --no-deps torch` plus only the pure-python dependencies does NOT work: even
#   libtorch_cpu.so has libcudart.so.13 and libcupti.so.13 as DT_NEEDED, and libtorch_python.so
#   needs libtorch_cuda.so (cuBLAS, cuDNN, cuFFT, cuSPARSE(Lt), cuSOLVER, NCCL, NVSHMEM, cuFile,
#   NVRTC), so `import torch` fails without every one of those wheels. Older torch (1.13, 2.0-2.x)
#   has the same structure (cu11/cu12 wheels of similar size), so no version is much leaner.
# - What can be left out: triton (torch.compile's GPU code generator; `import torch` and eager CPU
#   training never load it), cuda-bindings/cuda-pathfinder and the CCCL headers. So torch is
#   installed with --no-deps, followed by its pure-python dependencies and the nvidia-* wheels that
#   hold the libraries it links against, pinned to the versions torch 2.15.0 asks for. That is
#   ~2.2 GB of downloads and a 4.3 GB .venv-bench (torch 1.2 GB, cuDNN 0.85 GB, the cu13 toolkit
#   libraries 1.5 GB); about 5 minutes here. A second run only checks the import (seconds).
# TORCH_VERSION=x.y.z installs another version the plain way (all its dependencies).
# TIMM=1 adds timm 1.0.31 (for bench/timm_fixtures.py and tests/tools/check_export.py's timm case):
# timm and torchvision 0.29.2 (only its Python parts are used: timm imports torchvision.ops and
# .transforms) with --no-deps, so that pip does not replace the torch above, plus the small
# packages timm imports (pyyaml, huggingface_hub, safetensors, pillow). ~10 MB.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
VENV="${VENV:-$ROOT/.venv-bench}"
TORCH_VERSION="${TORCH_VERSION:-2.15.0}"
SUDO=""
if [ "$(id -u)" != "0" ]; then SUDO="sudo"; fi

check() {  # import torch, then a convolution forward and backward on the CPU
  "$VENV/bin/python" - "$TORCH_VERSION" <<'PY'
import sys, torch
want = sys.argv[1]
assert torch.__version__.split("+")[0] == want, f"torch {torch.__version__}, want {want}"
x = torch.randn(2, 3, 16, 16, requires_grad=True)
conv = torch.nn.Conv2d(3, 8, 3, padding=1)
conv(x).square().mean().backward()
assert x.grad is not None and conv.weight.grad is not None
print(f"setup_pytorch: torch {torch.__version__}, {torch.get_num_threads()} threads, "
      f"mkldnn {torch.backends.mkldnn.is_available()}: ok")
PY
}

add_timm() {
  [ "${TIMM:-0}" = "1" ] || return 0
  "$VENV/bin/python" -c "import timm" 2>/dev/null && return 0
  echo "setup_pytorch: installing timm 1.0.31"
  "$VENV/bin/python" -m pip install -q --disable-pip-version-check --no-input --no-warn-conflicts \
    --no-deps timm==1.0.31 torchvision==0.29.2
  "$VENV/bin/python" -m pip install -q --disable-pip-version-check --no-input pyyaml \
    huggingface_hub safetensors pillow
  "$VENV/bin/python" -c "import timm; timm.create_model('vit_tiny_patch16_224', img_size=128)"
  echo "setup_pytorch: timm $("$VENV/bin/python" -c 'import timm; print(timm.__version__)'): ok"
}

# What tests/tools/check_export.py's PyTorch side reads images and checkpoints with.
add_readers() {
  "$VENV/bin/python" -c "import PIL, safetensors" 2>/dev/null && return 0
  "$VENV/bin/python" -m pip install -q --disable-pip-version-check --no-input pillow safetensors
}

if [ -x "$VENV/bin/python" ] && check 2>/dev/null; then
  add_readers
  add_timm
  exit 0
fi

# python3 -m venv needs Debian's python3-venv (ensurepip) when python3 is Debian's.
if ! python3 -c "import ensurepip, venv" 2>/dev/null; then
  echo "setup_pytorch: installing python3-venv"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends \
    python3-venv >/dev/null
fi
[ -x "$VENV/bin/python" ] || python3 -m venv "$VENV"
PIP=("$VENV/bin/python" -m pip install -q --disable-pip-version-check --no-input --no-warn-conflicts)

if [ "$TORCH_VERSION" = "2.15.0" ]; then
  echo "setup_pytorch: installing torch $TORCH_VERSION (CPU use; ~2 GB of CUDA libraries come with it)"
  "${PIP[@]}" --no-deps torch==2.15.0
  "${PIP[@]}" filelock 'typing-extensions>=4.13.0' 'setuptools>=77.0.3' 'sympy>=1.13.3' \
    'networkx>=2.5.1' jinja2 'fsspec>=0.8.5' numpy  # numpy: optional, silences torch's warning
  # The libraries torch's shared objects link against (see the header), without triton.
  "${PIP[@]}" --no-deps nvidia-cuda-runtime==13.2.86 nvidia-cuda-cupti==13.2.86 \
    nvidia-cuda-nvrtc==13.2.86 nvidia-nvtx==13.2.86 nvidia-cublas==13.4.1.3 \
    nvidia-cufft==12.2.0.57 nvidia-cufile==1.17.1.22 nvidia-cusolver==12.2.0.11 \
    nvidia-cusparse==12.7.10.12 nvidia-nvjitlink==13.5.37 nvidia-cudnn-cu13==9.26.0.51 \
    nvidia-cusparselt-cu13==0.8.1 nvidia-nccl-cu13==2.30.7 nvidia-nvshmem-cu13==3.7.2
else
  echo "setup_pytorch: installing torch $TORCH_VERSION"
  "${PIP[@]}" "torch==$TORCH_VERSION"
fi
check
add_readers
add_timm
