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
  // bench and trace run the engine in this process: start it again with the allocator settings the
  // sidecar gets (src/util/allocatorEnv.ts; glibc reads them only at process start), before this
  // process loads the CLI and ONNX Runtime for nothing.
  if (argv[0] === 'bench' || argv[0] === 'trace') {
    const extra = require(path.join(__dirname, '..', 'out', 'src', 'util', 'allocatorEnv.js')).allocatorEnv();
    if (Object.keys(extra).length) {
      const r = require('child_process').spawnSync(process.execPath, [...process.execArgv, __filename, ...argv], { stdio: 'inherit', env: { ...process.env, ...extra } });
      if (r.signal) process.kill(process.pid, r.signal);
      process.exit(r.status === null ? 1 : r.status);
    }
  }
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
