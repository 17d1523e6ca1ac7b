#!/usr/bin/env bash
# gpu_check.sh: the one command to run when an NVIDIA GPU is at hand (about 8 minutes on one
# H100). It checks that the CUDA backend is right on the GPU and measures it, every step under its
# own time cap so that one hang cannot eat the budget (the caps are generous guesses: no GPU has run
# this script yet, so its real step times are still to be measured):
#   1. the GPU (nvidia-smi -L)
#   2. a FORGE_CUDA=ON build of only the programs it runs
#   3. every GPU test on cuda alone (FORGE_TEST_DEVICES=cuda: a device that cannot be created fails),
#      the conv checks both through cuDNN (the default) and with FORGE_CONV=im2col, and cuDNN's
#      wrapper called directly in fp32 and bf16 (test_cudnn_conv)
#   4. compute-sanitizer memcheck, racecheck, synccheck and initcheck over the kernel tests and the
#      attention playground's check, where compute-sanitizer is installed (CUDA toolkit, or PyPI:
#      pip install nvidia-cuda-sanitizer-api); said plainly where it is not
#   5. the attention playground's check and timing at the models' shapes and at long sequences
#      (t up to 4096, head dims 64 and 128)
#   6. bench model for vit, hrnet and cnn (fp32, bf16, tf32, and fp32 with --cuda-graph,
#      the step replayed as a CUDA graph against the same step launched kernel by kernel), bench ops
#      (its convolutions also with FORGE_CONV=im2col, to compare with cuDNN's)
# Everything goes to one folder: each step's log, the benchmarks' JSON, steps.json (status and
# seconds per step) and summary.md, ready to paste into docs/BENCHMARKS.md.
#
#   scripts/gpu_check.sh [OUT_DIR]     default gpu_check/<UTC time>; build dir: build-gpu
#   FORGE_CUDNN=OFF scripts/gpu_check.sh   on a machine without cuDNN 9: convolutions on im2col
#
# Without a GPU it exits 2 at once, saying so. Exit status: 0 when every step passed, 1 otherwise.
set -uo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
cd "$root" || exit 1

if ! command -v nvidia-smi > /dev/null 2>&1 || ! nvidia-smi -L > /dev/null 2>&1; then
  echo "gpu_check: no NVIDIA GPU here (nvidia-smi -L finds none): this check needs one." >&2
  echo "gpu_check: without a GPU, run the kernels on the emulator instead: ctest (Device::sim)." >&2
  exit 2
fi

out="${1:-gpu_check/$(date -u +%Y%m%dT%H%M%SZ)}"
build="${FORGE_GPU_BUILD:-build-gpu}"
mkdir -p "$out"
out="$(cd "$out" && pwd)"
steps="$out/steps.tsv"
: > "$steps"
failed=0

# step NAME CAP_SECONDS COMMAND...: runs COMMAND with a time cap, its output to NAME.log; records
# the status (passed, failed, timed out) and the seconds in steps.tsv.
step() {
  local name="$1" cap="$2"
  shift 2
  echo "== $name (cap ${cap}s)"
  local start=$SECONDS status
  timeout --kill-after=10 "$cap" "$@" > "$out/$name.log" 2>&1
  local rc=$?
  case $rc in
    0) status=passed ;;
    124 | 137) status="timed out" ;;
    *) status="failed (exit $rc)" ;;
  esac
  [ $rc -eq 0 ] || failed=1
  printf '%s\t%s\t%s\t%s\n' "$name" "$status" "$((SECONDS - start))" "$cap" >> "$steps"
  echo "   $status in $((SECONDS - start))s ($out/$name.log)"
  return $rc
}

# skip NAME WHY: a step that could not run here, recorded as such (not a pass).
skip() {
  printf '%s\t%s\t0\t0\n' "$1" "not run: $2" >> "$steps"
  echo "== $1: not run: $2"
}

step gpu 30 nvidia-smi -L
cp "$out/gpu.log" "$out/gpu.txt" 2> /dev/null

jobs="$(nproc)"
launcher=()
command -v ccache > /dev/null 2>&1 &&
  launcher=(-DCMAKE_CXX_COMPILER_LAUNCHER=ccache -DCMAKE_CUDA_COMPILER_LAUNCHER=ccache)
cudnn="${FORGE_CUDNN:-ON}"
targets=(test_gpu_basic test_gpu_vision attention_playground bench)
[ "$cudnn" = OFF ] || targets+=(test_cudnn_conv)
if step configure 120 cmake -S . -B "$build" -G Ninja -DCMAKE_BUILD_TYPE=Release -DFORGE_CUDA=ON \
  -DFORGE_CUDNN="$cudnn" "${launcher[@]}" &&
  step build 420 cmake --build "$build" -j "$jobs" --target "${targets[@]}"; then
  bin="$build/bin"

  # 3. the GPU tests on cuda alone.
  export FORGE_TEST_DEVICES=cuda
  step test_gpu_basic 120 "$bin/test_gpu_basic"
  step test_gpu_vision 180 "$bin/test_gpu_vision"
  step test_gpu_vision_conv_im2col 120 env FORGE_CONV=im2col "$bin/test_gpu_vision" -tc='gpu conv2d*'
  if [ "$cudnn" = OFF ]; then
    skip test_cudnn_conv "built without cuDNN (FORGE_CUDNN=OFF)"
  else
    step test_cudnn_conv 120 "$bin/test_cudnn_conv"
  fi

  # 4. compute-sanitizer, from the toolkit or from the PyPI wheel.
  sanitizer="$(command -v compute-sanitizer || true)"
  [ -n "$sanitizer" ] || [ ! -x /usr/local/cuda/bin/compute-sanitizer ] ||
    sanitizer=/usr/local/cuda/bin/compute-sanitizer
  if [ -z "$sanitizer" ]; then
    sanitizer="$(python3 -c 'import nvidia, os; print(os.path.dirname(nvidia.__path__[0]))' \
      2> /dev/null | xargs -r -I{} find {}/nvidia -name compute-sanitizer -type f -perm -u+x \
      2> /dev/null | head -1)"
  fi
  # shellcheck disable=SC2054  # the commas separate the playground's list values
  playground_check=("$bin/attention_playground" --device cuda --check-only --batch 2 --heads 3
    --tokens 1,17,65 --head-dims 32,64)
  if [ -n "$sanitizer" ]; then
    echo "compute-sanitizer: $sanitizer" > "$out/sanitizer.txt"
    # Small shapes and a selection of test cases: the sanitizer slows kernels by 10-100x.
    basic_cases='gpu fill*,gpu gather*,gpu reduce_sum*,gpu clipping*,gpu adam*,gpu layer norm*,gpu cross-entropy*,gpu batch norm*'
    vision_cases='gpu attention*,gpu conv2d*,gpu max_pool2d*,gpu patch_embed*'
    for tool in memcheck racecheck synccheck initcheck; do
      step "sanitizer_${tool}_basic" 90 "$sanitizer" --tool "$tool" --error-exitcode 1 \
        "$bin/test_gpu_basic" -tc="$basic_cases"
      step "sanitizer_${tool}_vision" 120 "$sanitizer" --tool "$tool" --error-exitcode 1 \
        "$bin/test_gpu_vision" -tc="$vision_cases"
    done
    # The playground's shared-memory kernels: out-of-bounds accesses and shared-memory races.
    for tool in memcheck racecheck; do
      step "sanitizer_${tool}_playground" 90 "$sanitizer" --tool "$tool" --error-exitcode 1 \
        "${playground_check[@]}"
    done
  else
    echo "compute-sanitizer: NOT INSTALLED: no memcheck/racecheck/synccheck/initcheck run" \
      "(install the CUDA toolkit's, or: pip install nvidia-cuda-sanitizer-api)" > "$out/sanitizer.txt"
    skip sanitizer "compute-sanitizer is not installed (pip install nvidia-cuda-sanitizer-api)"
  fi
  unset FORGE_TEST_DEVICES

  # 5. attention: every version checked, then timed at the models' shapes (ViT-Ti/16: t 50 at
  # 112 px, 65 around 120 px, 197 at 224 px; head dim 64) and at long sequences.
  step playground_check 120 "${playground_check[@]}"
  step playground_models 120 "$bin/attention_playground" --device cuda --batch 32 --heads 3 \
    --tokens 50,65,197 --head-dims 64
  step playground_long 240 "$bin/attention_playground" --device cuda --kernel 3 --batch 4 \
    --heads 8 --tokens 1024,2048,4096 --head-dims 64,128

  # 6. benchmarks: each model at fp32, at bf16 (cuBLAS(Lt) bf16 GEMMs, the tensor-core attention:
  # docs/MIXED_PRECISION.md) and at fp32 with --tf32.
  for model in vit hrnet cnn; do
    step "bench_model_$model" 120 "$bin/bench" model --model "$model" --device cuda \
      --json "$out/bench_model_$model.json"
    step "bench_model_${model}_bf16" 120 "$bin/bench" model --model "$model" --device cuda \
      --precision bf16 --json "$out/bench_model_${model}_bf16.json"
    step "bench_model_${model}_tf32" 120 "$bin/bench" model --model "$model" --device cuda \
      --tf32 --json "$out/bench_model_${model}_tf32.json"
  done
  # The fp32 step as one graph replay (launches_per_step 1; docs/GPU_BACKEND.md).
  for model in vit hrnet cnn; do
    step "bench_model_${model}_graph" 120 "$bin/bench" model --model "$model" --device cuda \
      --cuda-graph --json "$out/bench_model_${model}_graph.json"
  done
  # The bf16 attention (v6: the backend's attention at bf16) timed at the models' shapes.
  step playground_bf16 120 "$bin/attention_playground" --device cuda --kernel 6 --batch 32 \
    --heads 3 --tokens 50,65,197 --head-dims 64
  step bench_ops 180 "$bin/bench" ops --device cuda --json "$out/bench_ops.json"
  step bench_ops_conv_im2col 120 env FORGE_CONV=im2col "$bin/bench" ops --device cuda \
    --filter conv --json "$out/bench_ops_conv_im2col.json"
fi

python3 "$root/scripts/gpu_check_summary.py" "$out" || failed=1
echo "gpu_check: results in $out (summary.md)"
exit $failed
