/**
 * The CLI's process tree under a terminal's Ctrl-C (SIGINT to the whole foreground process group),
 * and `status --verify` / `ask` on a store with a damaged Θ row.
 */
import * as assert from 'assert';
import { execFileSync, spawn, spawnSync } from 'child_process';
import * as fs from 'fs';
import * as path from 'path';
import { ValueFormat, rowBytes } from '../../src/memory/store/codec';
import { waitGone } from '../helpers/procs';
import { fixtureWorkspace } from '../helpers/fixtureWorkspace';
import { REPO_ROOT } from '../helpers/tmp';

const BIN = path.join(REPO_ROOT, 'bin', 'mplus.js');

/** Flips the first value byte of every row of layer 0's Θ segments (their checksums no longer match). */
export function damageThetaRows(store: string): number {
  let n = 0;
  for (const f of fs.readdirSync(store).filter((x) => x.startsWith('seg-0-'))) {
    const p = path.join(store, f);
    const b = fs.readFileSync(p);
    const hl = b.readUInt32LE(8);
    const h = JSON.parse(b.subarray(12, 12 + hl).toString('utf8')) as { rows: number; format: ValueFormat; width: number };
    const valuesAt = Math.ceil((12 + hl) / 8) * 8;
    const rb = rowBytes(h.format, h.width);
    for (let r = 0; r < h.rows; r++) b[valuesAt + r * rb] ^= 0x40;
    fs.writeFileSync(p, b);
    n += h.rows;
  }
  return n;
}

describe('mplus CLI: Ctrl-C and a damaged store', function () {
  this.timeout(300000);
  const ws = fixtureWorkspace('clisig', { model: { preset: 'small', seed: 5 }, repo: 40 });
  let store: string;
  before(() => (store = ws.fresh('store')));

  const run = (args: string[]) => spawnSync(process.execPath, [BIN, ...args, '--model', ws.model, '--store', store], { encoding: 'utf8', timeout: 240000 });

  it('one Ctrl-C cancels ingest at a safe point: exit 130, no restart, committed, nothing left running', async () => {
    // detached: the CLI leads its own process group, like a shell job; SIGINT goes to the group.
    const cli = spawn(process.execPath, [BIN, 'ingest', '--model', ws.model, '--store', store, '--device', 'cpu', '--json', ws.repo], {
      detached: true, env: { ...process.env, MPLUS_COMMIT_EVERY: '4' },
    });
    let out = '';
    let err = '';
    cli.stdout.setEncoding('utf8').on('data', (d: string) => (out += d));
    cli.stderr.setEncoding('utf8').on('data', (d: string) => (err += d));
    while (!/"chunksDone":([5-9]|\d\d)/.test(out)) {
      if (cli.exitCode !== null) assert.fail(`ingest ended early: ${err}`);
      await new Promise((r) => setTimeout(r, 25));
    }
    const kids = execFileSync('pgrep', ['-P', String(cli.pid)], { encoding: 'utf8' }).trim().split('\n').map(Number);
    process.kill(-cli.pid!, 'SIGINT');
    const code = await new Promise<number | null>((r) => cli.on('exit', r));
    const events = out.trim().split('\n').map((l) => JSON.parse(l) as { type: string; cancelled?: boolean; chunksInjected?: number });
    assert.strictEqual(code, 130, err);
    assert.ok(!events.some((e) => e.type === 'restart'), 'the sidecar was not restarted');
    const result = events.filter((e) => e.type === 'result').pop()!;
    assert.strictEqual(result.cancelled, true);
    for (const k of kids) assert.ok(await waitGone(k, 10000), `sidecar ${k} exited`);
    const st = run(['status', '--json', ws.repo]);
    assert.strictEqual(st.status, 0, st.stderr);
    const status = st.stdout.trim().split('\n').map((l) => JSON.parse(l)).find((e) => e.type === 'status');
    assert.ok(status.memory.injections >= result.chunksInjected!, 'what was fed before Ctrl-C is committed');
  });

  it('status --verify finds a damaged Θ row; ask reports a damaged store (code -32007), not an internal error', () => {
    const ok = run(['status', '--verify', ws.repo]);
    assert.strictEqual(ok.status, 0, ok.stderr);
    assert.match(ok.stdout, /verified +\d+ segment/);
    assert.ok(damageThetaRows(store) > 0);
    const bad = run(['status', '--verify', ws.repo]);
    assert.strictEqual(bad.status, 1);
    assert.match(bad.stderr, /fails its checksum/);
    assert.match(bad.stderr, /Rebuild/);
    assert.match(bad.stderr, /code -32007/);
    const ask = run(['ask', '--repo', ws.repo, '--max-tokens', '2', 'Where are parcels priced?']);
    assert.strictEqual(ask.status, 1);
    assert.match(ask.stderr, /code -32007/);
    assert.match(ask.stderr, /Rebuild/);
  });
});
