#!/usr/bin/env bash
# The main job: installs what is missing, builds, and trains the default model (ViT-Ti/16) on
# ../shared/data/selfie2anime, writing runs/vit/ (report.html, metrics, checkpoints).
# Any train flag may follow, e.g. `bash scripts/train.sh --model hrnet --epochs 10 --data DIR`;
# later flags override the defaults given here.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
bash scripts/build.sh
exec build/bin/train --model vit --output runs/vit "$@"
