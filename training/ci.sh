#!/usr/bin/env bash
# CI for training/: installs what it needs (Debian's torch, numpy, OpenBLAS), then the trainer's
# unit tests (golden case, data-folder refusal, trainer/product agreement) and the smoke training
# (tiny preset on this repository's src/, asserts the answer loss falls by 20%, a killed run
# resumes to the same weights, the trained state exports and validates). Needs `npm run build`.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=/usr/bin/python3
if ! $PY -c 'import torch, numpy' 2>/dev/null; then
  (apt-get update -qq && apt-get install -y -qq --no-install-recommends python3-torch python3-numpy libopenblas0-pthread) >/dev/null
fi
echo "== training unit tests"
$PY -m unittest discover -s training/tests -t .
echo "== smoke training (tiny preset)"
$PY -m training.mplus.smoke --steps "${MPLUS_SMOKE_STEPS:-80}"
