#!/usr/bin/env node
// Entry point of the `mplus` command: the compiled CLI in out/ (run `npm run build` first).
// fixture/trace/bench/lookup are developer tools with their own entry point (out/tools/main.js); every
// other command is the product's CLI (out/src/cli/main.js), a client of the sidecar's protocol.
'use strict';
const path = require('path');
const TOOLS = ['fixture', 'trace', 'bench', 'lookup'];
const argv = process.argv.slice(2);
const entry = TOOLS.includes(argv[0]) ? ['tools', 'main.js'] : ['src', 'cli', 'main.js'];
let cli;
try {
  cli = require(path.join(__dirname, '..', 'out', ...entry));
} catch (e) {
  if (e && e.code !== 'MODULE_NOT_FOUND') throw e;
  console.error('mplus: the project is not built yet; run `npm install && npm run build` in ' + path.join(__dirname, '..'));
  process.exit(1);
}
cli.main(argv).then((code) => {
  process.exitCode = code;
  // The work is done: exit even if some handle (a pipe of a restarted sidecar) stays open.
  setTimeout(() => process.exit(code), 3000).unref();
});
