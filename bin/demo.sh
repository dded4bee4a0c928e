#!/usr/bin/env bash
# The main job from a fresh clone (`npm start`): this repository fed into an M+ memory, then one
# question answered from it with sources. Without MPLUS_MODEL it uses a small fixture checkpoint
# (random weights: the answer text is noise; the machinery — chunking, injection, store,
# retrieval, attribution — is real). Set MPLUS_MODEL to a real mplus-8b folder for real answers.
set -euo pipefail
cd "$(dirname "$0")/.."
model="${MPLUS_MODEL:-.bench/fixture-small-f32}"
if [ ! -f "$model/config.json" ]; then
  node bin/mplus.js fixture --out "$model" --preset small --seed 1
fi
# --rebuild: a store this build cannot open (another fixture, an older store format) is moved
# aside and the repository fed again; a healthy store is kept and only changed files are fed.
node bin/mplus.js ingest --model "$model" --rebuild .
node bin/mplus.js ask --model "$model" --repo . --max-tokens 48 "${1:-Where does the memory store commit to disk?}"
