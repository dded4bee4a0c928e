#!/usr/bin/env node
// Entry point of the `mplus` command: the compiled CLI in out/ (run `npm run build` first).
'use strict';
const path = require('path');
let cli;
try {
  cli = require(path.join(__dirname, '..', 'out', 'src', 'cli', 'main.js'));
} catch (e) {
  console.error('mplus: the project is not built yet; run `npm install && npm run build` in ' + path.join(__dirname, '..'));
  process.exit(1);
}
cli.main(process.argv.slice(2)).then((code) => {
  process.exitCode = code;
  // The work is done: exit even if some handle (a pipe of a restarted sidecar) stays open.
  setTimeout(() => process.exit(code), 3000).unref();
});
