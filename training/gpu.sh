#!/usr/bin/env bash
# Long training runs on a machine with a GPU (minutes there; days on 2 CPU cores).
#
#   bash training/gpu.sh prepare DATA RUN   # here: copy the data folder and the run folder (if any)
#                                           # into .train/ (git-ignored, ≈ 40 MB: fits a device carry)
#   bash training/gpu.sh train SECONDS [ARGS…]   # there: resume .train/run on CUDA for SECONDS,
#                                           # then copy state.pt + log.jsonl to $OUT (or .train/out)
#   bash training/gpu.sh collect FROM RUN   # here: put the state that came back into RUN
#
# With the `device` tool: run `prepare`, then `run` with carry [".train"] and the command
# `bash training/gpu.sh train 480 --preset small --seed 1 --batch 32 --lr 2e-3 --warmup 300 --advance-at 0.8`
# (the same training arguments as the CPU run: a run's identity must match to resume it), then
# `collect` from the files that came back. MPLUS_TRAIN_DEVICE=cpu runs the same path on the CPU.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}
case "${1:-}" in
  prepare)
    data=${2:?data folder}; run=${3:?run folder}
    rm -rf .train && mkdir -p .train/run
    cp -r "$data" .train/data
    if [ -f "$run/state.pt" ]; then cp "$run/state.pt" "$run/log.jsonl" .train/run/; fi
    du -sh .train ;;
  train)
    secs=${2:?seconds}; shift 2
    out=${OUT:-.train/out}; mkdir -p "$out"
    PYTHONUNBUFFERED=1 $PY -m training.mplus.train --data .train/data --run .train/run \
      --device "${MPLUS_TRAIN_DEVICE:-cuda}" --max-seconds "$secs" --threads "$(nproc)" "$@" 2>&1 | tee "$out/train.log"
    cp .train/run/state.pt .train/run/log.jsonl "$out/" ;;
  collect)
    from=${2:?folder that came back}; run=${3:?run folder}
    mkdir -p "$run"
    [ -f "$run/state.pt" ] && cp "$run/state.pt" "$run/state.before-gpu.pt"
    cp "$from/state.pt" "$run/state.pt"
    # log.jsonl came back whole (the CPU log plus what the GPU run appended).
    cp "$from/log.jsonl" "$run/log.jsonl"
    tail -n 3 "$run/log.jsonl" ;;
  *) sed -n 2,14p "$0"; exit 2 ;;
esac
