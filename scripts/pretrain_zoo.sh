#!/usr/bin/env bash
# Reproduces every bundled artifact under platform/omnicodec/zoo/weights/ (CPU, 2 cores:
# about 2.5 hours for the codecs, 1 hour for the task networks). Each artifact's JSON
# card records the exact command that produced it, the data and the measured quality.
set -euo pipefail
cd "$(dirname "$0")/.."
OC=${OC:-.venv/bin/omnicodec}
export RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER=0 RAY_USAGE_STATS_ENABLED=0 WANDB_MODE=offline

what=${1:-all}
if [[ $what == all || $what == codecs ]]; then
  # quality 3 from scratch, then the ladder's neighbours fine-tuned from it
  $OC pretrain codec --quality 3 --steps 6000 --lr 3e-4
  for q in 1 2 4; do
    $OC pretrain codec --quality $q --init-from mbt2018-mean-small:3 --steps 1500 --lr 1e-4
  done
fi
if [[ $what == all || $what == tasks ]]; then
  for t in cls seg det; do
    $OC pretrain task --task $t
  done
fi
