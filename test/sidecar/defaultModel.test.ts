/**
 * The default model: a configured checkpoint always wins; without one the checkpoint bundled in
 * models/mplus-lookup/ is used and labelled; without that, nothing (today's "no model"). Checked on
 * the resolver and on the real CLI run from a copy of the built package whose models/ folder the
 * test controls (the repository's own models/ is never touched), and against the packaging rules.
 */
import * as assert from 'assert';
import { spawnSync } from 'child_process';
import * as fs from 'fs';
import * as path from 'path';
import ignore from 'ignore';
import { BUNDLED_MODEL, BUNDLED_MODEL_LABEL, MODEL_LABEL_FILE, resolveModel } from '../../src/sidecar/defaultModel';
import { writeFixture } from '../../tools/fixture';
import { REPO_ROOT, rmDir, tmpDir } from '../helpers/tmp';

describe('default model (bundled models/mplus-lookup/)', function () {
  this.timeout(180000);
  let root: string;
  before(() => (root = tmpDir('default-model')));
  after(() => rmDir(root));

  it('resolves configured first (flag, then environment), else the bundled folder with its label, else nothing', () => {
    const pkg = path.join(root, 'pkg-resolve');
    fs.mkdirSync(pkg, { recursive: true });
    assert.strictEqual(resolveModel([undefined, ''], pkg), null, 'nothing bundled, nothing configured');
    assert.deepStrictEqual(resolveModel(['/x/flag', '/x/env'], pkg), { dir: '/x/flag', from: 'configured', label: null });
    assert.deepStrictEqual(resolveModel([undefined, ' /x/env '], pkg), { dir: '/x/env', from: 'configured', label: null });
    const bundled = path.join(pkg, BUNDLED_MODEL);
    fs.mkdirSync(bundled, { recursive: true });
    assert.strictEqual(resolveModel([], pkg), null, 'a folder without config.json is not a checkpoint');
    fs.writeFileSync(path.join(bundled, 'config.json'), '{}');
    assert.deepStrictEqual(resolveModel([], pkg), { dir: bundled, from: 'bundled', label: BUNDLED_MODEL_LABEL });
    assert.strictEqual(resolveModel(['/x/flag'], pkg)?.dir, '/x/flag', 'a configured checkpoint wins over the bundled one');
    fs.writeFileSync(path.join(bundled, MODEL_LABEL_FILE), '\n  lookup model v2  \nmore\n');
    assert.strictEqual(resolveModel([], pkg)?.label, 'lookup model v2');
  });

  it('the CLI uses the bundled checkpoint without --model/MPLUS_MODEL, and a configured one wins', () => {
    // A copy of the built package (out/src, bin) with its own models/ folder.
    const pkg = path.join(root, 'pkg');
    fs.mkdirSync(path.join(pkg, 'out'), { recursive: true });
    fs.cpSync(path.join(REPO_ROOT, 'out', 'src'), path.join(pkg, 'out', 'src'), { recursive: true });
    fs.cpSync(path.join(REPO_ROOT, 'bin'), path.join(pkg, 'bin'), { recursive: true });
    fs.cpSync(path.join(REPO_ROOT, 'package.json'), path.join(pkg, 'package.json'));
    fs.symlinkSync(path.join(REPO_ROOT, 'node_modules'), path.join(pkg, 'node_modules'));
    const repo = path.join(root, 'repo');
    fs.mkdirSync(repo);
    fs.writeFileSync(path.join(repo, 'a.ts'), 'export const A = 1;\n');
    const env = { ...process.env };
    delete env.MPLUS_MODEL;
    const status = (extra: string[], e = env) => spawnSync(process.execPath, [path.join(pkg, 'bin', 'mplus.js'), 'status', '--repo', repo, '--store', path.join(root, `store-${extra.length}-${e.MPLUS_MODEL ? 'env' : 'none'}`), ...extra], { env: e, encoding: 'utf8' });

    const none = status([]);
    assert.strictEqual(none.status, 2, none.stderr);
    assert.match(none.stderr, /--model DIR is required/);

    const bundled = path.join(pkg, BUNDLED_MODEL);
    writeFixture({ out: bundled, preset: 'small', seed: 5 });
    const b = status([]);
    assert.strictEqual(b.status, 0, b.stderr);
    assert.ok(b.stderr.includes(`model: ${bundled} (${BUNDLED_MODEL_LABEL})`), b.stderr);

    const other = path.join(root, 'configured');
    writeFixture({ out: other, preset: 'small', seed: 6 });
    const c = status(['--model', other]);
    assert.strictEqual(c.status, 0, c.stderr);
    assert.ok(c.stderr.includes(`model: ${other}\n`), c.stderr);
    const d = status([], { ...env, MPLUS_MODEL: other });
    assert.strictEqual(d.status, 0, d.stderr);
    assert.ok(d.stderr.includes(`model: ${other}\n`), d.stderr);
  });

  it('ships in the npm package and the .vsix', () => {
    const pkg = JSON.parse(fs.readFileSync(path.join(REPO_ROOT, 'package.json'), 'utf8'));
    assert.ok(pkg.files.includes('models'), 'package.json "files" lists models');
    const vscodeignore = ignore().add(fs.readFileSync(path.join(REPO_ROOT, '.vscodeignore'), 'utf8'));
    for (const f of ['config.json', 'model.safetensors', 'tokenizer.json', 'question_template.txt', MODEL_LABEL_FILE]) {
      assert.ok(!vscodeignore.ignores(path.posix.join(BUNDLED_MODEL, f)), `.vscodeignore keeps ${f}`);
    }
    assert.match(fs.readFileSync(path.join(REPO_ROOT, 'test', 'e2e', 'package-vsix.mjs'), 'utf8'), /for \(const p of \[[^\]]*'models'/, 'the .vsix stage copies models/');
  });
});
