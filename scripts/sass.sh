#!/usr/bin/env bash
# sass.sh: the sm_90 machine code (SASS) of a kernel family, so a kernel developer sees what the
# tensor cores are asked to do. Compiles the .cu with nvcc -cubin for sm_90 (ptxas -v for
# registers and spills), disassembles it with NVIDIA's cuobjdump, and prints per kernel the SASS
# and a summary: HMMA (tensor-core mma), LDSM (ldmatrix), LDGSTS (cp.async), LDS (other shared
# loads), registers and spill bytes.
#
#   scripts/sass.sh KERNEL [FILTER]     KERNEL: a family (gemm_mma -> kernels/gemm_mma.cu, also
#                                       looked up in dev/*/ and tests/kernels/) or a .cu path;
#                                       FILTER: only kernels whose demangled name contains it
#   scripts/sass.sh --summary KERNEL [FILTER]   the summary table only (tab-separated:
#                                       hmma ldsm ldgsts lds registers spill_bytes kernel)
#
# nvcc here ships without cuobjdump; PyPI has it as a wheel. The first run downloads
# nvidia-cuda-cuobjdump (pip download --no-deps, the major version of the installed nvcc) into
# .cache/sass-tools/ in the repository (gitignored) and unpacks its bin/; later runs reuse it.
# NVCC overrides the compiler (default: nvcc on PATH, else /usr/local/cuda/bin/nvcc).
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
nvcc="${NVCC:-$(command -v nvcc || echo /usr/local/cuda/bin/nvcc)}"

summary_only=0
args=()
for arg in "$@"; do
  case "$arg" in
    --summary) summary_only=1 ;;
    -h | --help) sed -n '2,17p' "$0"; exit 0 ;;
    *) args+=("$arg") ;;
  esac
done
[ ${#args[@]} -ge 1 ] || { sed -n '2,17p' "$0"; exit 2; }
kernel="${args[0]}"
filter="${args[1]:-}"

# ---- the .cu file
source_file=""
if [ -f "$kernel" ]; then
  source_file="$kernel"
else
  for candidate in "$root/kernels/$kernel.cu" "$root"/dev/*/"$kernel.cu" "$root/tests/kernels/$kernel.cu"; do
    [ -f "$candidate" ] && { source_file="$candidate"; break; }
  done
fi
[ -n "$source_file" ] || { echo "sass.sh: no kernel source '$kernel' (tried kernels/, dev/*/, tests/kernels/ and as a path)" >&2; exit 2; }
[ -x "$nvcc" ] || { echo "sass.sh: nvcc not found at '$nvcc' (set NVCC)" >&2; exit 2; }

# ---- cuobjdump from PyPI, cached
cuda_major="$("$nvcc" --version | sed -n 's/.*release \([0-9]*\)\..*/\1/p')"
tools="$root/.cache/sass-tools/cu$cuda_major"
cuobjdump="$(ls "$tools"/nvidia/*/bin/cuobjdump 2>/dev/null | head -1 || true)"
if [ -z "$cuobjdump" ]; then
  mkdir -p "$tools"
  echo "sass.sh: fetching cuobjdump and nvdisasm $cuda_major.* from PyPI into ${tools#"$root"/}" >&2
  python3 -m pip download -q --no-deps -d "$tools/wheels" \
    "nvidia-cuda-cuobjdump==$cuda_major.*" "nvidia-cuda-nvdisasm==$cuda_major.*" >&2
  for wheel in "$tools"/wheels/*.whl; do python3 -m zipfile -e "$wheel" "$tools"; done
  chmod +x "$tools"/nvidia/*/bin/*
  cuobjdump="$(ls "$tools"/nvidia/*/bin/cuobjdump | head -1)"
fi
# cuobjdump runs nvdisasm from PATH for -sass.
export PATH="$(dirname "$cuobjdump"):$PATH"

# ---- compile and disassemble
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
if ! "$nvcc" -std=c++20 -arch=sm_90 -cubin -Xptxas -v -I"$root" -DFORGE_GPU_NS=gpu_cuda -x cu \
  "$source_file" -o "$work/k.cubin" >"$work/ptxas.log" 2>&1; then
  cat "$work/ptxas.log" >&2
  echo "sass.sh: nvcc failed on ${source_file#"$root"/}" >&2
  exit 1
fi
"$cuobjdump" -sass "$work/k.cubin" >"$work/sass.txt"

# ptxas -v: "Compiling entry function 'NAME'", then "N bytes spill stores, M bytes spill loads"
# and "Used R registers" for it.
awk '
  /Compiling entry function/ { match($0, /'"'"'[^'"'"']+'"'"'/); name = substr($0, RSTART + 1, RLENGTH - 2) }
  /spill stores/ { split($0, f, /[ ,]+/); for (i = 1; i < length(f); ++i) { if (f[i+1] == "bytes" && f[i+2] == "spill") spill[name] += f[i] } }
  /Used [0-9]+ registers/ { match($0, /Used [0-9]+/); regs[name] = substr($0, RSTART + 5, RLENGTH - 5) }
  END { for (n in regs) print n "\t" regs[n] "\t" spill[n] + 0 }
' "$work/ptxas.log" >"$work/resources.tsv"

# Per function of the SASS: instruction counts (predicated-off padding "@!PT" excluded).
awk -v resources="$work/resources.tsv" '
  BEGIN { while ((getline line < resources) > 0) { split(line, f, "\t"); regs[f[1]] = f[2]; spill[f[1]] = f[3] } }
  function flush() { if (name != "") print hmma "\t" ldsm "\t" ldgsts "\t" lds "\t" regs[name] "\t" spill[name] "\t" name }
  /Function : / { flush(); name = $NF; hmma = ldsm = ldgsts = lds = 0; next }
  /\/\*[0-9a-f]+\*\// {
    if ($0 ~ /@!PT/) next
    sub(/^[ \t]*\/\*[0-9a-f]+\*\/[ \t]*/, ""); sub(/^@!?U?P[0-9T]+[ \t]+/, "")
    split($0, w, /[ \t]+/); op = w[1]
    if (op ~ /^HMMA/) ++hmma; else if (op ~ /^LDSM/) ++ldsm; else if (op ~ /^LDGSTS/) ++ldgsts
    else if (op ~ /^LDS(\.|$)/) ++lds
  }
  END { flush() }
' "$work/sass.txt" >"$work/summary.raw"

# Demangled names, filtered.
: >"$work/summary.tsv"
while IFS=$'\t' read -r hmma ldsm ldgsts lds regs spill name; do
  pretty="$(echo "$name" | c++filt)"
  [ -n "$filter" ] && [[ "$pretty" != *"$filter"* ]] && continue
  printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$hmma" "$ldsm" "$ldgsts" "$lds" "${regs:-?}" "${spill:-0}" "$pretty" >>"$work/summary.tsv"
done <"$work/summary.raw"

if [ $summary_only -eq 1 ]; then
  cat "$work/summary.tsv"
  exit 0
fi
if [ -n "$filter" ]; then
  # Only the functions whose demangled name matches.
  c++filt <"$work/sass.txt" | awk -v f="$filter" '/Function : / { show = index($0, f) > 0 } show'
else
  c++filt <"$work/sass.txt"
fi
echo
echo "sm_90 SASS of ${source_file#"$root"/}: instructions per kernel"
printf '%6s %6s %7s %6s %5s %6s  %s\n' HMMA LDSM LDGSTS LDS regs spill kernel
while IFS=$'\t' read -r hmma ldsm ldgsts lds regs spill name; do
  printf '%6s %6s %7s %6s %5s %6s  %s\n' "$hmma" "$ldsm" "$ldgsts" "$lds" "$regs" "$spill" "$name"
done <"$work/summary.tsv"
