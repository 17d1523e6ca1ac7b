#!/usr/bin/env bash
# forge against PyTorch, one training step of each model on the CPU, in one run.
#
#   bash bench/compare_pytorch.sh [--steps N] [--warmup W] [--threads T] [--batch B]
#                                 [--models "vit hrnet cnn"] [--out FILE] [--json-dir DIR]
#                                 [--forge-bench PATH] [--no-inference]
#
# For each model, forge's `build/bin/bench model --model M --device cpu ...` and then
# bench/pytorch_bench.py for the same model, threads (OMP_NUM_THREADS=T for both) and batch,
# interleaved (forge vit, torch vit, forge hrnet, torch hrnet, ...) so that both see the same state
# of a shared machine. Each run is its own process, so peak RSS is one model's. Then
# bench/make_table.py merges the JSONs into a Markdown table (img/s, ratio, peak RSS, forge's
# GFLOP/s) with the machine, the torch version and the date, printed and written to --out.
# Inference too, unless --no-inference: after each model's training runs, `bench model --inference`
# and `pytorch_bench.py --inference` (eval-mode forward passes without autograd, under
# torch.inference_mode() on PyTorch's side) at batch 1 and at --batch, a second table.
# Installs PyTorch first when needed (bench/setup_pytorch.sh). Defaults: 20 steps after 3 warm-up
# steps, 2 threads, batch 32. The JSONs stay in --json-dir (default: a temporary folder, removed).
# The environment reaches both programs alike: OMP_WAIT_POLICY=PASSIVE bash bench/compare_pytorch.sh
# makes both OpenMP runtimes sleep instead of spin while waiting (see docs/BENCHMARKS.md).
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"

STEPS=20 WARMUP=3 THREADS=2 BATCH=32 MODELS="vit hrnet cnn" OUT="" JSON_DIR=""
FORGE_BENCH="$ROOT/build/bin/bench" INFERENCE=1
usage() { sed -n '2,20p' "$0" | sed 's/^# \{0,1\}//'; }
while [ $# -gt 0 ]; do
  case "$1" in
    --steps) STEPS="$2"; shift 2 ;;
    --warmup) WARMUP="$2"; shift 2 ;;
    --threads) THREADS="$2"; shift 2 ;;
    --batch) BATCH="$2"; shift 2 ;;
    --models) MODELS="$2"; shift 2 ;;
    --out) OUT="$2"; shift 2 ;;
    --json-dir) JSON_DIR="$2"; shift 2 ;;
    --forge-bench) FORGE_BENCH="$2"; shift 2 ;;
    --no-inference) INFERENCE=0; shift ;;
    -h|--help) usage; exit 0 ;;
    *) echo "compare_pytorch: unknown argument '$1'" >&2; usage >&2; exit 2 ;;
  esac
done

if [ ! -x "$FORGE_BENCH" ]; then
  echo "compare_pytorch: $FORGE_BENCH not found; build it first (ninja -C build bench, or" \
       "bash scripts/build.sh)" >&2
  exit 1
fi
bash "$ROOT/bench/setup_pytorch.sh"
PY="${VENV:-$ROOT/.venv-bench}/bin/python"

if [ -z "$JSON_DIR" ]; then
  JSON_DIR="$(mktemp -d)"
  trap 'rm -rf "$JSON_DIR"' EXIT
fi
mkdir -p "$JSON_DIR"
export OMP_NUM_THREADS="$THREADS"
# The load when we started, for the table: on a shared machine it says how far to trust it.
COMPARE_LOAD_START="$(cut -d' ' -f1-3 /proc/loadavg 2>/dev/null || echo '?')"
export COMPARE_LOAD_START

failed=0
for m in $MODELS; do
  echo "compare_pytorch: forge $m ($THREADS threads, batch $BATCH, $WARMUP + $STEPS steps)" >&2
  rm -f "$JSON_DIR/forge-$m.json" "$JSON_DIR/pytorch-$m.json"
  if ! "$FORGE_BENCH" model --model "$m" --device cpu --batch "$BATCH" --steps "$STEPS" \
      --warmup "$WARMUP" --json "$JSON_DIR/forge-$m.json" >&2; then
    echo "compare_pytorch: forge bench failed for $m" >&2; failed=1
  fi
  echo "compare_pytorch: pytorch $m" >&2
  if ! "$PY" "$ROOT/bench/pytorch_bench.py" --model "$m" --threads "$THREADS" --batch "$BATCH" \
      --steps "$STEPS" --warmup "$WARMUP" --json "$JSON_DIR/pytorch-$m.json" >/dev/null; then
    echo "compare_pytorch: pytorch bench failed for $m" >&2; failed=1
  fi
  [ "$INFERENCE" = 1 ] || continue
  echo "compare_pytorch: forge $m inference (batch 1 and $BATCH)" >&2
  rm -f "$JSON_DIR/forge-inference-$m.json" "$JSON_DIR/pytorch-inference-$m.json"
  if ! "$FORGE_BENCH" model --inference --model "$m" --device cpu --batch "$BATCH" \
      --steps "$STEPS" --warmup "$WARMUP" --json "$JSON_DIR/forge-inference-$m.json" >&2; then
    echo "compare_pytorch: forge inference bench failed for $m" >&2; failed=1
  fi
  echo "compare_pytorch: pytorch $m inference" >&2
  if ! "$PY" "$ROOT/bench/pytorch_bench.py" --inference --model "$m" --threads "$THREADS" \
      --batch "$BATCH" --steps "$STEPS" --warmup "$WARMUP" \
      --json "$JSON_DIR/pytorch-inference-$m.json" >/dev/null; then
    echo "compare_pytorch: pytorch inference bench failed for $m" >&2; failed=1
  fi
done

# shellcheck disable=SC2086  # MODELS is a list
table="$("$PY" "$ROOT/bench/make_table.py" --dir "$JSON_DIR" --models $MODELS)"
printf '%s\n' "$table"
if [ -n "$OUT" ]; then
  printf '%s\n' "$table" >"$OUT"
  echo "compare_pytorch: table written to $OUT" >&2
fi
exit "$failed"
