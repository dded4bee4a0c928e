/**
 * `npm start` with a lookup model (question_template.txt in its folder): bin/demo.sh feeds the
 * repository, asks the value of one of its constants (found with tree-sitter) and checks the
 * answer. With an exported random-weight checkpoint (training.mplus.export --init smoke) the
 * answer is noise, and the check must say it is wrong. Needs Debian's python3-torch, as
 * test/training does (MPLUS_ALLOW_NO_TORCH=1 skips).
 */
import * as assert from 'assert';
import { spawnSync } from 'child_process';
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { lookupCandidates } from '../../tools/lookup';
import { fixtureWorkspace } from '../helpers/fixtureWorkspace';
import { REPO_ROOT } from '../helpers/tmp';

const PY = '/usr/bin/python3';

describe('npm start asks a lookup model a checkable question', function () {
  this.timeout(300000);
  const ws = fixtureWorkspace('lookup', { repo: (repo) => {
    fs.mkdirSync(path.join(repo, 'src'), { recursive: true });
    fs.mkdirSync(path.join(repo, 'py'), { recursive: true });
    // One askable constant: a long value noise cannot contain by chance.
    fs.writeFileSync(path.join(repo, 'src', 'limits.ts'), [
      'export const RETRY_BUDGET_MS = 48213907;',
      'const lowerCase = 5;', // not UPPER_CASE: not asked
      'export const COMPUTED_LIMIT = RETRY_BUDGET_MS * 2;', // not a literal
      'export const DUPLICATED_NAME = 1;',
      'export const TOO_SHORT = 42;', // a value noise could contain by chance: not asked
      '',
    ].join('\n'));
    fs.writeFileSync(path.join(repo, 'py', 'dup.py'), 'DUPLICATED_NAME = 2\nPY_GREETING = "hello there"\ndef f():\n    INNER_CONST = 3\n');
    fs.writeFileSync(path.join(repo, 'src', 'other.js'), 'const ESCAPED_STR = "a\\"b";\nconst TEMPLATE_STR = `x`;\n');
  } });

  it('finds UPPER_CASE constants with literal values, defined once (TS, JS, Python)', async () => {
    const all = await lookupCandidates(ws.repo);
    assert.deepStrictEqual(all.map((c) => [c.name, c.value, c.file, c.line]), [
      ['PY_GREETING', '"hello there"', 'py/dup.py', 2],
      ['RETRY_BUDGET_MS', '48213907', 'src/limits.ts', 1],
    ]);
  });

  /** A random-weight lookup checkpoint (exported once), or the test skips/fails without torch. */
  let exported: string | undefined;
  function lookupModel(ctx: Mocha.Context): string {
    if (exported) return exported;
    if (spawnSync(PY, ['-c', 'import torch, numpy'], { stdio: 'ignore' }).status !== 0) {
      if (process.env.MPLUS_ALLOW_NO_TORCH) ctx.skip();
      assert.fail(`${PY} cannot import torch: apt-get install python3-torch python3-numpy (or MPLUS_ALLOW_NO_TORCH=1 to skip)`);
    }
    const model = path.join(ws.root, 'model');
    const ex = spawnSync(PY, ['-m', 'training.mplus.export', '--init', 'smoke', '--seed', '4', '--out', model], { cwd: REPO_ROOT, encoding: 'utf8' });
    assert.strictEqual(ex.status, 0, ex.stderr);
    assert.ok(fs.existsSync(path.join(model, 'question_template.txt')), 'the export is a lookup model');
    return (exported = model);
  }

  it('--all asks every candidate once and counts the right answers', function () {
    const model = lookupModel(this);
    const r = spawnSync(process.execPath, [path.join(REPO_ROOT, 'bin', 'mplus.js'), 'lookup', '--all', '--json', '--repo', ws.repo, '--model', model, '--store', path.join(ws.root, 'store-all')], { encoding: 'utf8' });
    assert.strictEqual(r.status, 0, r.stderr);
    const lines = r.stdout.trim().split('\n').map((l) => JSON.parse(l));
    assert.deepStrictEqual(lines.slice(0, -1).map((x) => [x.name, x.value, x.right]), [
      ['PY_GREETING', '"hello there"', false], // random weights: noise contains neither value
      ['RETRY_BUDGET_MS', '48213907', false],
    ]);
    assert.deepStrictEqual(lines[lines.length - 1], { summary: { asked: 2, right: 0, exact: 0 } });
  });

  it('--alone feeds each constant\'s file alone into a fresh memory, and leaves no store behind', function () {
    const model = lookupModel(this);
    const before = fs.readdirSync(os.tmpdir()).filter((f) => f.startsWith('mplus-lookup-alone-')).length;
    const r = spawnSync(process.execPath, [path.join(REPO_ROOT, 'bin', 'mplus.js'), 'lookup', '--all', '--alone', '--json', '--repo', ws.repo, '--model', model], { encoding: 'utf8' });
    assert.strictEqual(r.status, 0, r.stderr);
    const lines = r.stdout.trim().split('\n').map((l) => JSON.parse(l));
    // One file fed per question (the whole repository holds three), each its constant's own.
    assert.deepStrictEqual(lines.slice(0, -1).map((x) => [x.name, x.file, x.filesFed, x.right]), [
      ['PY_GREETING', 'py/dup.py', 1, false],
      ['RETRY_BUDGET_MS', 'src/limits.ts', 1, false],
    ]);
    assert.deepStrictEqual(lines[lines.length - 1], { summary: { asked: 2, right: 0, exact: 0 } });
    assert.strictEqual(fs.readdirSync(os.tmpdir()).filter((f) => f.startsWith('mplus-lookup-alone-')).length, before, 'the temporary store is removed');
    const withStore = spawnSync(process.execPath, [path.join(REPO_ROOT, 'bin', 'mplus.js'), 'lookup', '--all', '--alone', '--repo', ws.repo, '--model', model, '--store', path.join(ws.root, 'store-alone')], { encoding: 'utf8' });
    assert.strictEqual(withStore.status, 1);
    assert.match(withStore.stderr, /--alone feeds each file into a temporary store of its own.*leave out --store/);
  });

  it('a random-weight lookup checkpoint answers, and the check says the answer is wrong', function () {
    const model = lookupModel(this);
    fs.writeFileSync(path.join(ws.repo, 'py', 'dup.py'), 'DUPLICATED_NAME = 2\n'); // one candidate left: the question is known
    const r = spawnSync('bash', [path.join(REPO_ROOT, 'bin', 'demo.sh')], {
      encoding: 'utf8',
      env: { ...process.env, MPLUS_MODEL: model, MPLUS_DEMO_REPO: ws.repo, XDG_CACHE_HOME: path.join(ws.root, 'cache') },
    });
    assert.strictEqual(r.status, 0, r.stderr);
    assert.match(r.stdout, /question: What is the value of RETRY_BUDGET_MS\?\s+\(src\/limits\.ts:1, one of 1 constants\)/);
    assert.match(r.stdout, /expected: 48213907\n/);
    const answer = /answer: +(".*")\n/.exec(r.stdout);
    assert.ok(answer, r.stdout);
    assert.ok(!JSON.parse(answer[1]).includes('48213907'));
    assert.match(r.stdout, /WRONG: the answer does not contain the value/);
    assert.ok(fs.readdirSync(path.join(ws.root, 'cache', 'mplus', 'stores')).length === 1, 'the store lives in the cache, not the repository');
  });
});
