#!/usr/bin/env bash
# nvcc_check.sh: compiles every CUDA source with nvcc for sm_80 and sm_90 (-c only: nothing here
# can run CUDA code), so the GPU build of kernels tested on kernels/sim never rots. Fails on any
# compile error.
#
#   scripts/nvcc_check.sh                    every kernels/*.cu, tests/kernels/*.cu, dev/*/*.cu
#   scripts/nvcc_check.sh FILE.cu...         just those
#   scripts/nvcc_check.sh --ptxas FILE.cu... also print ptxas's registers, spills and shared
#                                            memory per kernel and architecture (for docs)
#
# NVCC overrides the compiler (default: nvcc on PATH, else /usr/local/cuda/bin/nvcc).
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
nvcc="${NVCC:-$(command -v nvcc || echo /usr/local/cuda/bin/nvcc)}"

ptxas=0
files=()
for arg in "$@"; do
  case "$arg" in
    --ptxas) ptxas=1 ;;
    -h | --help) sed -n '2,12p' "$0"; exit 0 ;;
    *) files+=("$arg") ;;
  esac
done
if [ ${#files[@]} -eq 0 ]; then
  shopt -s nullglob
  files=("$root"/kernels/*.cu "$root"/tests/kernels/*.cu "$root"/dev/*/*.cu)
fi
[ ${#files[@]} -gt 0 ] || { echo "nvcc_check: no .cu files found"; exit 0; }

work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT

# One nvcc run builds both architectures: one host pass, two device passes.
flags=(-std=c++20 -gencode arch=compute_80,code=sm_80 -gencode arch=compute_90,code=sm_90
       -I"$root" -DFORGE_GPU_NS=gpu_cuda -x cu -c)
[ $ptxas -eq 1 ] && flags+=(-Xptxas -v)

failed=0
for file in "${files[@]}"; do
  log="$work/log"
  if "$nvcc" "${flags[@]}" "$file" -o "$work/out.o" >"$log" 2>&1; then
    echo "ok      ${file#"$root"/}"
    if [ $ptxas -eq 1 ]; then
      # ptxas names kernels mangled; c++filt makes them readable.
      grep -E "Compiling entry function|Used [0-9]+ registers|spill" "$log" |
        sed -E -e "s/.*Compiling entry function '([^']+)' for '(sm_[0-9]+)'/\2 \1/" \
          -e "s/^ptxas info *: //" |
        c++filt | sed 's/^/        /'
    fi
  else
    echo "FAILED  ${file#"$root"/}"
    sed 's/^/        /' "$log"
    failed=1
  fi
done
exit $failed
