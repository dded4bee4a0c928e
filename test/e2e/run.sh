#!/usr/bin/env bash
# End-to-end test of the packaged .vsix in a real VS Code (code-server) driven by a real browser.
#
#   npm run e2e                      (= bash test/e2e/run.sh)
#
# Environment: CODE_SERVER_E2E_CACHE (default ~/.cache/code-server-e2e), E2E_OUT (artefacts:
# screenshots, logs; default a new /tmp/mplus-e2e-* folder), MPLUS_SHARED_DIR (default ../shared
# beside the repository). Needs the shared tools in ../shared/tools/code-server-e2e.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
SHARED="${MPLUS_SHARED_DIR:-$ROOT/../shared}"
TOOLS="$SHARED/tools/code-server-e2e"
if [ ! -f "$TOOLS/smoke.mjs" ] || [ ! -f "$TOOLS/setup.sh" ]; then
  echo "e2e: $TOOLS/smoke.mjs not found. The shared e2e tools must sit at ../shared/tools/code-server-e2e beside the repository (or set MPLUS_SHARED_DIR)." >&2
  exit 1
fi
CACHE="${CODE_SERVER_E2E_CACHE:-$HOME/.cache/code-server-e2e}"
OUT="${E2E_OUT:-$(mktemp -d /tmp/mplus-e2e-XXXXXX)}"
mkdir -p "$OUT"
OUT="$(cd "$OUT" && pwd)"
log() { echo "[e2e $(date -u +%H:%M:%S)] $*"; }

log "setup (code-server, chromium, playwright) in $CACHE"
bash "$TOOLS/setup.sh" "$CACHE" > "$OUT/setup.log" 2>&1 || { cat "$OUT/setup.log" >&2; exit 1; }

cd "$ROOT"
log "build"
if ! npx tsc -p . > "$OUT/build.log" 2>&1; then
  # tsc emits even with type errors; the e2e needs the extension and the sidecar outputs
  for f in out/src/extension/extension.js out/src/sidecar/main.js; do
    [ -f "$f" ] || { cat "$OUT/build.log" >&2; echo "e2e: build failed ($f missing)" >&2; exit 1; }
  done
  log "warning: tsc reported errors (see $OUT/build.log); testing what it emitted"
fi

log "package the .vsix"
node test/e2e/package-vsix.mjs --out "$OUT/mplus.vsix" > "$OUT/package.log" 2>&1 || { cat "$OUT/package.log" >&2; exit 1; }
tail -1 "$OUT/package.log"
# The suites about life without a model (first run, the no-model errors) install a .vsix without
# the bundled checkpoint: with it, M+ would start on the bundled model instead.
NO_MODEL_VSIX="$OUT/mplus.vsix"
if [ -f models/mplus-lookup/config.json ]; then
  NO_MODEL_VSIX="$OUT/mplus-without-model.vsix"
  node test/e2e/package-vsix.mjs --without-model --out "$NO_MODEL_VSIX" > "$OUT/package-without-model.log" 2>&1 || { cat "$OUT/package-without-model.log" >&2; exit 1; }
  tail -1 "$OUT/package-without-model.log"
fi

log "fixture model (small preset: real Llama-3.1 tokenizer, random weights)"
rm -rf "$OUT/model"
node bin/mplus.js fixture --out "$OUT/model" --preset small --seed 1 > "$OUT/fixture.log" 2>&1 || { cat "$OUT/fixture.log" >&2; exit 1; }

log "fixture repository"
rm -rf "$OUT/repo" "$OUT/stores"
node test/e2e/fixture-repo.mjs "$OUT/repo"

log "tests (artefacts in $OUT)"
export CODE_SERVER_E2E_CACHE="$CACHE" E2E_OUT="$OUT" MPLUS_E2E_TOOLS="$TOOLS" MPLUS_E2E_VSIX="$OUT/mplus.vsix" MPLUS_E2E_VSIX_NO_MODEL="$NO_MODEL_VSIX" \
  MPLUS_E2E_MODEL="$OUT/model" MPLUS_E2E_REPO="$OUT/repo" MPLUS_TEST_HOOKS=1 MPLUS_TEST_RENDER_TRIGGER="$OUT/render-trigger"
set +e
# E2E_FILES: the suites to run (default all: the main one with a model, the first run without, the
# large workspace, the error states with their actions)
"$CACHE/node/bin/node" --test --test-concurrency=1 --test-reporter=spec ${E2E_FILES:-test/e2e/mplus.test.mjs test/e2e/firstrun.test.mjs test/e2e/large.test.mjs test/e2e/errors.test.mjs} 2>&1 | tee "$OUT/test.log"
rc=${PIPESTATUS[0]}
set -e
log "PASS/FAIL summary:"
cat "$OUT/results.txt" "$OUT/firstrun/results.txt" "$OUT/large/results.txt" "$OUT/errors/results.txt" 2>/dev/null || true
log "artefacts: $OUT (screenshots *.png, logs/, server.log, browser-console.log)"
exit "$rc"
