#!/usr/bin/env node
// Packages the extension as a platform-specific .vsix (default target linux-x64).
//
//   node test/e2e/package-vsix.mjs [--target linux-x64] [--out FILE] [--without-model]   (npm run package)
//
// --without-model leaves out the bundled checkpoint (models/): the .vsix of a user who has none,
// which the e2e suites about life without a model install (with it, the bundled model answers).
//
// Why a staging folder: package.json has a "files" list (for the npm CLI package) and vsce 4
// refuses a .vscodeignore next to a "files" list ("VSCE does not support combining both
// strategies"), while the .vsix needs .vscodeignore (node_modules included, foreign binaries out).
// So this script hard-links the packaged inputs into .tmp/vsix-stage, writes package.json there
// without "files", and runs vsce in it. Nothing in the checkout is modified. The stage's README.md
// is MARKETPLACE.md, the user-facing page of the extension's details view; the developer
// README.md (npm scripts, the CLI, the layout) stays in the repository only. Works offline (vsce
// runs `npm list --production`, which reads the installed node_modules only).
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');
const { values: o } = parseArgs({ options: { target: { type: 'string', default: 'linux-x64' }, out: { type: 'string' }, 'without-model': { type: 'boolean' } } });
const pkg = JSON.parse(fs.readFileSync(path.join(root, 'package.json'), 'utf8'));
const out = path.resolve(o.out ?? path.join(root, `${pkg.name}-${pkg.version}-${o.target}.vsix`));

for (const need of ['out/src/extension/extension.js', 'out/src/sidecar/main.js', 'node_modules']) {
  if (!fs.existsSync(path.join(root, need))) {
    console.error(`package-vsix: ${need} is missing: run \`npm ci && npm run build\` first`);
    process.exit(1);
  }
}

const stage = path.join(root, '.tmp', 'vsix-stage');
fs.rmSync(stage, { recursive: true, force: true });
fs.mkdirSync(stage, { recursive: true });
try {
  const { files: _files, ...manifest } = pkg;
  fs.writeFileSync(path.join(stage, 'package.json'), JSON.stringify(manifest, null, 2) + '\n');
  for (const p of ['out', 'models', 'media', 'syntaxes', 'language-configuration', 'bin', 'node_modules', 'package-lock.json', '.vscodeignore', 'LICENSE', 'CHANGELOG.md']) {
    if (!fs.existsSync(path.join(root, p)) || (p === 'models' && o['without-model'])) continue;
    // hard links: fast and no extra disk (same file system: the stage is inside the checkout)
    execFileSync('cp', ['-al', path.join(root, p), path.join(stage, p)]);
  }
  fs.copyFileSync(path.join(root, 'MARKETPLACE.md'), path.join(stage, 'README.md'));
  fs.rmSync(path.join(stage, 'out', 'test'), { recursive: true, force: true });
  const vsce = path.join(root, 'node_modules', '.bin', 'vsce');
  const args = ['package', '--target', o.target, '-o', out];
  console.log(`package-vsix: vsce ${args.join(' ')}`);
  execFileSync(vsce, args, { cwd: stage, stdio: 'inherit' });
} finally {
  fs.rmSync(stage, { recursive: true, force: true });
}
const size = fs.statSync(out).size;
console.log(`package-vsix: ${out} (${(size / 1048576).toFixed(1)} MiB)`);
