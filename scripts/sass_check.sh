#!/usr/bin/env bash
# sass_check.sh: CI's check that the tensor-core kernels really use the tensor cores. For each
# kernel named below, its sm_90 SASS (scripts/sass.sh) must hold HMMA instructions, and ptxas must
# report no spills for any kernel of its file. Fails, naming the kernel, otherwise. Also: the
# im2col convolution kernels (no HMMA: cuda's convolutions are cuDNN's) must not spill, and the
# PTX of the files whose index math is fast division (fast_divmod.cuh) must hold no 64-bit integer
# division or remainder.
#
#   scripts/sass_check.sh        (needs nvcc; downloads cuobjdump once, see scripts/sass.sh)
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"

# source   substring of the demangled kernel name that must contain HMMA
checks=(
  "tests/kernels/mma_test_kernels.cu mma_tiles_kernel"
  "kernels/gemm_mma.cu gemm_bf16_mma_kernel"
  "dev/attention/attention_playground.cu flash_mma_forward_kernel"
  "dev/attention/attention_playground.cu flash_mma_backward_kernel"
)

failed=0
for check in "${checks[@]}"; do
  read -r file kernel <<<"$check"
  summary="$("$root/scripts/sass.sh" --summary "$root/$file")"
  # hmma ldsm ldgsts lds registers spill_bytes kernel
  matched="$(awk -F'\t' -v k="$kernel" 'index($7, k) > 0' <<<"$summary")"
  if [ -z "$matched" ]; then
    echo "FAILED  $file: no kernel named like '$kernel' in its sm_90 SASS"
    failed=1
  elif awk -F'\t' '$1 == 0 { bad = 1 } END { exit !bad }' <<<"$matched"; then
    echo "FAILED  $file: '$kernel' has no HMMA instruction in its sm_90 SASS"
    failed=1
  else
    echo "ok      $file: $kernel holds HMMA ($(awk -F'\t' '{ s += $1 } END { print s }' <<<"$matched") in all)"
  fi
  spilled="$(awk -F'\t' '$6 != 0 { print "        " $6 " bytes spilled: " $7 }' <<<"$summary")"
  if [ -n "$spilled" ]; then
    echo "FAILED  $file: ptxas reports spills"
    echo "$spilled"
    failed=1
  fi
done

# Convolutions hold no HMMA here by design: on cuda they go to cuDNN (library code, not compiled
# here; scripts/cuda_build_check.sh checks the link), and the im2col kernels of kernels/conv.cu are
# cuda's fallback and sim's only path (docs/GPU_BACKEND.md, "Convolutions"). They must not spill.
conv_summary="$("$root/scripts/sass.sh" --summary "$root/kernels/conv.cu")"
if ! grep -q im2col_kernel <<<"$conv_summary"; then
  echo "FAILED  kernels/conv.cu: no im2col_kernel in its sm_90 SASS"
  failed=1
elif awk -F'\t' '$6 != 0 { bad = 1 } END { exit !bad }' <<<"$conv_summary"; then
  echo "FAILED  kernels/conv.cu: ptxas reports spills"
  awk -F'\t' '$6 != 0 { print "        " $6 " bytes spilled: " $7 }' <<<"$conv_summary"
  failed=1
else
  echo "ok      kernels/conv.cu: no spills (conv2d: cuDNN on cuda, these im2col kernels on sim and" \
    "as cuda's fallback)"
fi
# A 64-bit div/rem is a software routine of dozens of instructions on a GPU. These files index
# through precomputed fast division (kernels/fast_divmod.cuh) and loop in 32 bits below 2^31
# elements; their sm_90 PTX must keep no div/rem on 64-bit words (conv.cu had 39 before).
nvcc="${NVCC:-$(command -v nvcc || echo /usr/local/cuda/bin/nvcc)}"
ptx_dir="$(mktemp -d)"
trap 'rm -rf "$ptx_dir"' EXIT
for file in kernels/conv.cu kernels/reduce.cu; do
  ptx="$ptx_dir/$(basename "$file" .cu).ptx"
  if ! "$nvcc" -std=c++20 -arch=sm_90 --ptx -I"$root" -DFORGE_GPU_NS=gpu_cuda -x cu \
    "$root/$file" -o "$ptx" >"$ptx_dir/log" 2>&1; then
    echo "FAILED  $file: nvcc --ptx failed"
    sed 's/^/        /' "$ptx_dir/log"
    failed=1
    continue
  fi
  # "kernel<TAB>instruction" for each 64-bit div/rem, under the .entry it belongs to.
  divisions="$(awk '/\.entry/ { name = $NF }
    match($0, /(div|rem)\.[su]64/) { print name "\t" substr($0, RSTART, RLENGTH) }' "$ptx")"
  if [ -n "$divisions" ]; then
    echo "FAILED  $file: $(wc -l <<<"$divisions") 64-bit div/rem in its PTX"
    sort <<<"$divisions" | uniq -c | c++filt | sed 's/^/        /'
    failed=1
  else
    echo "ok      $file: no 64-bit div/rem in its PTX"
  fi
done
exit $failed
