#!/usr/bin/env bash
# Installs the pinned training corpus (training/data/packages.txt) into a scratch folder OUTSIDE
# the repository, sources only (--ignore-scripts: nothing from the corpus ever runs).
#   bash training/install-corpus.sh /work/scratch/corpus
set -euo pipefail
dest="${1:?usage: install-corpus.sh DEST_DIR}"
here="$(cd "$(dirname "$0")" && pwd)"
case "$(cd "$(dirname "$dest")" 2>/dev/null && pwd)/" in "$(cd "$here/.." && pwd)/"*) echo "install-corpus: $dest is inside the repository; use a scratch folder" >&2; exit 2;; esac
mkdir -p "$dest"
cd "$dest"
[ -f package.json ] || echo '{"name":"mplus-training-corpus","private":true}' > package.json
npm install --no-fund --no-audit --ignore-scripts --no-save $(grep -v '^#' "$here/data/packages.txt" | grep .)
