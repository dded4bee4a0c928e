/**
 * The `mplus` CLI as a user runs it: a real process tree (CLI → sidecar) on a fixture model and
 * a fixture repository. Exit codes: 0 ok, 1 failure, 2 usage, 130 cancelled.
 */
import * as assert from 'assert';
import { execFileSync, spawn, spawnSync } from 'child_process';
import * as fs from 'fs';
import * as path from 'path';
import { fixtureWorkspace } from '../helpers/fixtureWorkspace';
import { REPO_ROOT } from '../helpers/tmp';

const BIN = path.join(REPO_ROOT, 'bin', 'mplus.js');

describe('mplus CLI (ingest, ask, status, forget)', function () {
  this.timeout(300000);
  const ws = fixtureWorkspace('cli', { model: { preset: 'small', seed: 5 }, repo: 30 });
  let store: string;
  before(() => (store = ws.fresh('store')));

  const run = (args: string[], env: NodeJS.ProcessEnv = {}) =>
    spawnSync(process.execPath, [BIN, ...args], { encoding: 'utf8', env: { ...process.env, ...env }, timeout: 240000 });

  it('bad usage exits 2 with the usage text; a missing model exits 1 naming it', () => {
    const r = run(['ask']);
    assert.strictEqual(r.status, 2);
    assert.match(r.stderr, /ask needs a question/);
    const m = run(['status', '--model', path.join(ws.repo, 'missing-model'), '--store', store, ws.repo]);
    assert.strictEqual(m.status, 1);
    assert.match(m.stderr, /missing-model/);
  });

  it('ingest survives its sidecar being killed: restarts, resumes from the last commit, says so', async () => {
    const cli = spawn(process.execPath, [BIN, 'ingest', '--model', ws.model, '--store', store, '--device', 'cpu', '--json', ws.repo], {
      env: { ...process.env, MPLUS_COMMIT_EVERY: '4' },
    });
    let out = '';
    cli.stdout.setEncoding('utf8').on('data', (d: string) => (out += d));
    let err = '';
    cli.stderr.setEncoding('utf8').on('data', (d: string) => (err += d));
    // wait for a few chunks, then kill the sidecar (the CLI's child), not the CLI
    while (!/"chunksDone":([5-9]|\d\d)/.test(out)) {
      if (cli.exitCode !== null) assert.fail(`ingest ended early: ${err}`);
      await new Promise((r) => setTimeout(r, 25));
    }
    const kids = execFileSync('pgrep', ['-P', String(cli.pid)], { encoding: 'utf8' }).trim().split('\n').map(Number);
    for (const k of kids) process.kill(k, 'SIGKILL');
    const code = await new Promise<number | null>((r) => cli.on('exit', r));
    assert.strictEqual(code, 0, err);
    const events = out.trim().split('\n').map((l) => JSON.parse(l) as { type: string; [k: string]: unknown });
    assert.ok(events.some((e) => e.type === 'restart'), 'the restart is reported');
    const result = events.filter((e) => e.type === 'result').pop() as unknown as { filesDone: number; chunksSkipped: number };
    assert.strictEqual(result.filesDone, 36);
    assert.ok(result.chunksSkipped > 0, 'committed chunks were not fed again');
  });

  it('ask streams an answer and prints sources as path:line-line; --json prints one event per line', () => {
    const r = run(['ask', '--model', ws.model, '--store', store, '--repo', ws.repo, '--max-tokens', '6', 'Where are parcels priced?']);
    assert.strictEqual(r.status, 0, r.stderr);
    const [answer, rest] = r.stdout.split('\nsources:\n');
    assert.ok(answer.length > 0);
    const lines = rest.trim().split('\n');
    assert.ok(lines.length >= 1);
    for (const l of lines) {
      const m = /^(.+):(\d+)-(\d+)$/.exec(l);
      assert.ok(m, l);
      const text = fs.readFileSync(path.join(ws.repo, m![1]), 'utf8').split('\n');
      assert.ok(Number(m![3]) <= text.length);
    }
    const j = run(['ask', '--json', '--model', ws.model, '--store', store, '--repo', ws.repo, '--max-tokens', '3', 'What is the reorder level?']);
    assert.strictEqual(j.status, 0, j.stderr);
    const types = j.stdout.trim().split('\n').map((l) => (JSON.parse(l) as { type: string }).type);
    assert.ok(types.includes('token') && types.includes('sources'), types.join(','));
    assert.ok(types.indexOf('result') > types.lastIndexOf('token') && types.indexOf('result') > types.indexOf('sources'), types.join(','));
  });

  it('status and forget', () => {
    const s = run(['status', '--json', '--model', ws.model, '--store', store, ws.repo]);
    assert.strictEqual(s.status, 0, s.stderr);
    const st = s.stdout.trim().split('\n').map((l) => JSON.parse(l)).find((e) => e.type === 'status');
    assert.strictEqual(st.coverage.filesFed, 36);
    const f = run(['forget', '--model', ws.model, '--store', store, '--repo', ws.repo, 'src/gen']);
    assert.strictEqual(f.status, 0, f.stderr);
    assert.match(f.stderr, /forgot 30 file/);
  });
});
