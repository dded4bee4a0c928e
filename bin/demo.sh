#!/usr/bin/env bash
# The main job from a fresh clone (`npm start`): this repository fed into an M+ memory, then one
# question answered from it. The model: MPLUS_MODEL, else the checkpoint bundled in
# models/mplus-lookup/ (a small model for lookup questions), else a small fixture checkpoint
# (random weights: the answer text is noise; the machinery — chunking, injection, store,
# retrieval, attribution — is real).
# A lookup model (its folder has question_template.txt) is asked the value of one of this
# repository's constants, and the answer is checked; any other model gets an open question.
set -euo pipefail
cd "$(dirname "$0")/.."
# MPLUS_DEMO_REPO: another repository to feed and ask about (tests); default this one.
repo="${MPLUS_DEMO_REPO:-.}"
model="${MPLUS_MODEL:-}"
if [ -z "$model" ] && [ -f models/mplus-lookup/config.json ]; then model=models/mplus-lookup; fi
if [ -z "$model" ]; then
  model=.bench/fixture-small-f32
  if [ ! -f "$model/config.json" ]; then
    node bin/mplus.js fixture --out "$model" --preset small --seed 1
  fi
fi
# --rebuild: a store this build cannot open (another fixture, an older store format) is moved
# aside and the repository fed again; a healthy store is kept and only changed files are fed.
node bin/mplus.js ingest --model "$model" --rebuild "$repo"
if [ -f "$model/question_template.txt" ] && [ -z "${1:-}" ]; then
  node bin/mplus.js lookup --model "$model" --repo "$repo"
else
  node bin/mplus.js ask --model "$model" --repo "$repo" --max-tokens 48 "${1:-Where does the memory store commit to disk?}"
fi
