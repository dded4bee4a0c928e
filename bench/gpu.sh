#!/usr/bin/env bash
# The engine benchmark on the mplus-8b shape on a CUDA GPU, with the peak GPU memory it took.
#   bash bench/gpu.sh                      # bf16 weights, 2 injections, 8 decode tokens
#   PRECISION=int4 INJECTIONS=4 bash bench/gpu.sh
#   MODEL=/data/m8b bash bench/gpu.sh      # reuse a written fixture (or a real mplus-8b folder)
# Needs: an NVIDIA GPU with driver + CUDA 12 runtime and cuDNN 9 on the loader path, nvidia-smi,
# network access to NuGet for the CUDA provider (once), ~25 GB disk for the fixture.
# Issue 15's goals for this run: ≤ 18 GB GPU memory, ingestion ≥ 15k tokens/s on an H100/H200.
set -euo pipefail
cd "$(dirname "$0")/.."

MODEL=${MODEL:-${TMPDIR:-/tmp}/mplus-8b-shape-bf16}
PRECISION=${PRECISION:-bf16}
INJECTIONS=${INJECTIONS:-2}
DECODE=${DECODE:-8}

command -v nvidia-smi >/dev/null || { echo "bench/gpu.sh: nvidia-smi not found: this needs an NVIDIA GPU and driver" >&2; exit 1; }
[ -d node_modules ] || npm ci
npm run build >/dev/null
# The CUDA execution provider is not in the npm tarball (.npmrc skips its download for CPU users);
# this fetches it for CUDA 12 into node_modules/onnxruntime-node.
if ! ls node_modules/onnxruntime-node/bin/napi-v*/linux/x64/libonnxruntime_providers_cuda.so >/dev/null 2>&1; then
  npm rebuild onnxruntime-node --onnxruntime-node-install=cuda12
fi

if [ ! -f "$MODEL/config.json" ]; then
  echo "writing the mplus-8b-shape fixture (bf16, ~19 GB) to $MODEL"
  node bin/mplus.js fixture --out "$MODEL" --preset mplus-8b-shape --dtype bf16 --seed 1
fi

# Peak GPU memory: nvidia-smi sampled every 200 ms while the bench runs, minus what was in use before.
GPU=${CUDA_VISIBLE_DEVICES:-0}; GPU=${GPU%%,*}
base=$(nvidia-smi --id="$GPU" --query-gpu=memory.used --format=csv,noheader,nounits | head -1)
peakfile=$(mktemp)
echo "$base" >"$peakfile"
( while sleep 0.2; do
    m=$(nvidia-smi --id="$GPU" --query-gpu=memory.used --format=csv,noheader,nounits | head -1)
    [ "$m" -gt "$(cat "$peakfile")" ] && echo "$m" >"$peakfile"
  done ) &
sampler=$!
trap 'kill $sampler 2>/dev/null || true; rm -f "$peakfile"' EXIT

status=0
/usr/bin/time -v node bin/mplus.js bench engine --model "$MODEL" --device cuda --precision "$PRECISION" \
  --injections "$INJECTIONS" --decode-tokens "$DECODE" 2> >(grep -E "Maximum resident|Elapsed|error|Error" >&2) || status=$?
sleep 0.5
peak=$(cat "$peakfile")
echo "peak GPU memory  $((peak - base)) MiB above the $base MiB in use before (GPU $GPU, nvidia-smi every 200 ms)"
exit $status
