import * as assert from 'assert';
import { spawn, spawnSync } from 'child_process';
import * as fs from 'fs';
import * as path from 'path';
import { Rng } from '../../src/util/rng';
import { SourceTable } from '../../src/memory/provenance';
import { ValueFormat } from '../../src/memory/store/codec';
import { StoreCorruptError, StoreLockedError, StoreMismatchError } from '../../src/memory/store/errors';
import { MemoryStore, StoreOptions } from '../../src/memory/store/store';
import { MemoryState } from '../../src/memory/state';
import { rmDir, tmpDir } from '../helpers/tmp';
import { DIMS, IDENTITY, POLICY, applyStep, initialState, snapshot } from './storeOps';

const OPTS: StoreOptions = { identity: IDENTITY, dims: DIMS, policy: POLICY };
const WRITER = path.join(__dirname, 'storeWriter.js');

/** The state the script reaches after `steps` steps, rounded as a store in `fmt` rounds it. */
function replica(steps: number, fmt: ValueFormat = 'f32'): { state: MemoryState; sources: SourceTable } {
  // Run the same commits through a scratch store so every rounding matches, commit by commit.
  const dir = tmpDir('replica');
  try {
    const { store, state, sources } = MemoryStore.open(dir, { ...OPTS, valueFormat: fmt }, initialState);
    for (let i = 0; i < steps; i++) {
      const c = applyStep(state, sources, i);
      store.commit(state, sources, { steps: i + 1 }, { rewrite: c });
    }
    const snap = { state: MemoryState.prototype.clone.call(state) as MemoryState, sources: sources.clone() };
    // materialise Θ, θ and the cache (all read from disk) before the scratch store closes
    for (const m of snap.state.layers) for (const part of ['ltm', 'stm', 'cache'] as const) m[part] = { ...m[part], data: m[part].data } as never;
    store.close();
    return snap;
  } finally {
    rmDir(dir);
  }
}

describe('memory store (θ, Θ, provenance on disk)', function () {
  let dir: string;
  beforeEach(() => (dir = tmpDir('store')));
  afterEach(() => rmDir(dir));

  for (const fmt of ['f32', 'bf16', 'q8'] as ValueFormat[]) {
    it(`commits and reopens exactly (${fmt} Θ values), Θ values read lazily`, () => {
      const a = MemoryStore.open(dir, { ...OPTS, valueFormat: fmt }, initialState);
      assert.ok(a.created);
      for (let i = 0; i < 12; i++) {
        const c = applyStep(a.state, a.sources, i);
        a.store.commit(a.state, a.sources, { steps: i + 1 }, { rewrite: c });
      }
      const live = snapshot(a.state);
      a.store.close();
      const b = MemoryStore.open(dir, { ...OPTS, valueFormat: 'f32' }, initialState);
      assert.strictEqual(b.created, false);
      assert.strictEqual(b.store.valueFormat, fmt, 'a store keeps the format it was built with');
      assert.deepStrictEqual(snapshot(b.state), live);
      assert.deepStrictEqual(b.sources.toJSON(), a.sources.toJSON());
      assert.strictEqual(b.extra.steps, 12);
      b.store.close();
    });
  }

  it('q8 Θ values stay within 1/127 of each row’s largest value and take ~¼ of f32', () => {
    const f = MemoryStore.open(dir, OPTS, initialState);
    for (let i = 0; i < 8; i++) applyStep(f.state, f.sources, i);
    const exact = f.state.layers.map((m) => m.ltm.data.slice());
    f.store.close();
    const d2 = tmpDir('q8');
    try {
      const q = MemoryStore.open(d2, { ...OPTS, valueFormat: 'q8' }, initialState);
      for (let i = 0; i < 8; i++) applyStep(q.state, q.sources, i);
      q.store.commit(q.state, q.sources, {});
      q.state.layers.forEach((m, l) => {
        const got = m.ltm.data;
        const d = DIMS.hidden;
        for (let r = 0; r < got.length / d; r++) {
          let max = 0;
          for (let j = 0; j < d; j++) max = Math.max(max, Math.abs(exact[l][r * d + j]));
          for (let j = 0; j < d; j++) assert.ok(Math.abs(got[r * d + j] - exact[l][r * d + j]) <= max / 254 + 1e-7);
        }
      });
      const sz = q.store.sizes();
      assert.strictEqual(sz.ltmValueBytes, sz.ltmRowsPerLayer.reduce((a, b) => a + b, 0) * (4 + DIMS.hidden));
      q.store.close();
    } finally {
      rmDir(d2);
    }
  });

  it('compaction removes a changed file’s tokens from Θ, the cache and the disk; θ drops them first', () => {
    const { store, state, sources } = MemoryStore.open(dir, OPTS, initialState);
    for (let i = 0; i < 4; i++) applyStep(state, sources, i); // files f0..f3
    store.commit(state, sources, {});
    const ids = sources.markStale('src/f1.ts');
    assert.ok(ids.length > 0);
    const inStm = (l: number) => state.preferredDrops(l).length;
    state.compact();
    for (const m of state.layers) {
      for (const x of [...m.ltmSrc.data, ...m.cacheSrc.data]) assert.ok(!ids.includes(x), 'no stale token left in Θ or the cache');
    }
    store.commit(state, sources, {}, { rewrite: true });
    // θ still holds the stale tokens until injections push them out, stale first.
    const before = inStm(0);
    assert.ok(before > 0);
    applyStep(state, sources, 4 * 7 + 2); // a step of another file
    assert.strictEqual(inStm(0), Math.max(0, before - DIMS.tokensPerInjection));
    for (const m of state.layers) for (const x of m.cacheSrc.data) assert.ok(!ids.includes(x), 'dropped stale θ tokens are discarded, not cached');
    // the bytes are gone from disk: no segment holds a row of the old version
    const segRows = store.sizes().ltmRowsPerLayer;
    assert.deepStrictEqual(segRows, state.layers.map((m) => m.ltm.count - (m.ltm as unknown as { pendingPositions(): number[] }).pendingPositions().length));
    store.close();
  });

  it('the budget policy keeps Θ beyond the spec’s expiry, evicting stale, then least recalled, then oldest', () => {
    const st = initialState();
    const budget = new MemoryState(DIMS, { ...POLICY, maxLtmRows: 20 }, st.layers);
    const src = new SourceTable();
    for (let i = 0; i < 30; i++) applyStep(budget, src, i);
    for (const m of budget.layers) assert.ok(m.ltm.count <= 20 && m.ltm.count >= 16, `Θ rows ${m.ltm.count}`);
  });

  it('refuses another model, another format version, and a non-store manifest', () => {
    MemoryStore.open(dir, OPTS, initialState).store.close();
    assert.throws(() => MemoryStore.open(dir, { ...OPTS, identity: { ...IDENTITY, weightFingerprint: 'x'.repeat(64) } }, initialState),
      (e: Error) => e instanceof StoreMismatchError && /another model/.test(e.message) && e.message.includes('manifest.json'));
    const mf = path.join(dir, 'manifest.json');
    const m = JSON.parse(fs.readFileSync(mf, 'utf8'));
    fs.writeFileSync(mf, JSON.stringify({ ...m, version: 99 }));
    assert.throws(() => MemoryStore.open(dir, OPTS, initialState), (e: Error) => e instanceof StoreMismatchError && /version 99/.test(e.message));
    fs.writeFileSync(mf, '{"format":"zip"}');
    assert.throws(() => MemoryStore.open(dir, OPTS, initialState), StoreMismatchError);
    fs.writeFileSync(mf, 'not json');
    assert.throws(() => MemoryStore.open(dir, OPTS, initialState), (e: Error) => e instanceof StoreCorruptError && /not valid JSON/.test(e.message));
  });

  function committedStore(): string[] {
    const { store, state, sources } = MemoryStore.open(dir, OPTS, initialState);
    for (let i = 0; i < 6; i++) applyStep(state, sources, i);
    store.commit(state, sources, {});
    store.close();
    return fs.readdirSync(dir);
  }

  it('a truncated segment, a flipped key byte, a missing file, a missing manifest: clear errors naming the file', () => {
    const files = committedStore();
    const seg = files.find((f) => f.startsWith('seg-'))!;
    const segPath = path.join(dir, seg);
    const orig = fs.readFileSync(segPath);
    fs.writeFileSync(segPath, orig.subarray(0, orig.length - 5));
    assert.throws(() => MemoryStore.open(dir, OPTS, initialState), (e: Error) => e instanceof StoreCorruptError && e.message.includes(seg) && /truncated/.test(e.message));
    const flipped = Buffer.from(orig);
    flipped[flipped.length - 10] ^= 0xff; // in the row checksums
    fs.writeFileSync(segPath, flipped);
    assert.throws(() => MemoryStore.open(dir, OPTS, initialState), (e: Error) => e instanceof StoreCorruptError && e.message.includes(seg) && /corrupted/.test(e.message));
    fs.rmSync(segPath);
    assert.throws(() => MemoryStore.open(dir, OPTS, initialState), (e: Error) => e instanceof StoreCorruptError && e.message.includes(seg) && /missing/.test(e.message));
    fs.writeFileSync(segPath, orig);
    MemoryStore.open(dir, OPTS, initialState).store.close(); // restored: opens again
    const state = files.find((f) => f.startsWith('state-'))!;
    const sb = fs.readFileSync(path.join(dir, state));
    sb[sb.length - 1] ^= 1;
    fs.writeFileSync(path.join(dir, state), sb);
    assert.throws(() => MemoryStore.open(dir, OPTS, initialState), (e: Error) => e instanceof StoreCorruptError && e.message.includes(state));
    fs.rmSync(path.join(dir, 'manifest.json'));
    assert.throws(() => MemoryStore.open(dir, OPTS, initialState), (e: Error) => e instanceof StoreCorruptError && /manifest is missing/.test(e.message) && /Rebuild/.test(e.message));
    const aside = MemoryStore.moveAside(dir)!;
    assert.ok(fs.existsSync(path.join(aside, state)), 'the broken store is kept for inspection');
    const fresh = MemoryStore.open(dir, OPTS, initialState);
    assert.ok(fresh.created);
    fresh.store.close();
    rmDir(aside);
  });

  it('no manifest and no marker beside a committed store: refused, not silently emptied', () => {
    committedStore();
    fs.rmSync(path.join(dir, 'manifest.json'));
    fs.rmSync(path.join(dir, 'manifest.json.ever'));
    const before = fs.readdirSync(dir).sort();
    assert.throws(() => MemoryStore.open(dir, OPTS, initialState), (e: Error) => e instanceof StoreCorruptError && /manifest and manifest\.json\.ever are missing/.test(e.message) && /Rebuild/.test(e.message));
    assert.deepStrictEqual(fs.readdirSync(dir).sort(), before, 'nothing was deleted');
    // the creating commit alone (a crash before its manifest landed) is leftovers: a fresh store
    rmDir(dir);
    fs.mkdirSync(dir);
    MemoryStore.open(dir, OPTS, initialState).store.close();
    fs.rmSync(path.join(dir, 'manifest.json'));
    fs.rmSync(path.join(dir, 'manifest.json.ever'));
    const fresh = MemoryStore.open(dir, OPTS, initialState);
    assert.ok(fresh.created);
    fresh.store.close();
  });

  it('a flipped value byte is caught when its row is read', () => {
    const files = committedStore();
    const seg = files.filter((f) => f.startsWith('seg-')).sort().pop()!;
    const p = path.join(dir, seg);
    const b = fs.readFileSync(p);
    const hl = b.readUInt32LE(8);
    const valuesAt = Math.ceil((12 + hl) / 8) * 8;
    b[valuesAt + 1] ^= 0x10; // row 0
    fs.writeFileSync(p, b);
    const { store, state } = MemoryStore.open(dir, OPTS, initialState);
    const layer = Number(seg.split('-')[1]);
    const m = state.layers[layer];
    assert.throws(() => m.ltm.data, (e: Error) => e instanceof StoreCorruptError && e.message.includes(seg) && /checksum/.test(e.message));
    assert.throws(() => store.verify(), StoreCorruptError);
    store.close();
  });

  it('a second writer is refused; a dead writer’s lock is taken over', async () => {
    const { store } = MemoryStore.open(dir, OPTS, initialState);
    assert.throws(() => MemoryStore.open(dir, OPTS, initialState), (e: Error) => e instanceof StoreLockedError && /in use/.test(e.message));
    const other = spawnSync(process.execPath, ['-e', `
      const { MemoryStore } = require(${JSON.stringify(path.join(__dirname, '../../src/memory/store/store.js'))});
      const ops = require(${JSON.stringify(path.join(__dirname, 'storeOps.js'))});
      try { MemoryStore.open(${JSON.stringify(dir)}, { identity: ops.IDENTITY, dims: ops.DIMS, policy: ops.POLICY }, ops.initialState); console.log('opened'); }
      catch (e) { console.log(e.name + ': ' + e.message); }`], { encoding: 'utf8' });
    assert.match(other.stdout, /StoreLockedError: .*in use by pid \d+/);
    store.close();
    // a lock left by a process that no longer exists
    const dead = spawnSync(process.execPath, ['-e', 'console.log(process.pid)'], { encoding: 'utf8' });
    fs.writeFileSync(path.join(dir, 'lock'), JSON.stringify({ pid: Number(dead.stdout), host: require('os').hostname(), since: 'then' }));
    const again = MemoryStore.open(dir, OPTS, initialState);
    again.store.close();
  });

  it('kill -9 at random points: reopens to exactly the last commit, and the next commit works', async function () {
    const trials = Number(process.env.MPLUS_KILL_TRIALS ?? 200);
    this.timeout(trials * 3000);
    const rng = new Rng(Number(process.env.MPLUS_KILL_SEED ?? Date.now() % 1e9));
    const replicas = new Map<number, unknown>();
    let maxSeen = 0;
    for (let t = 0; t < trials; t++) {
      const fmt: ValueFormat = (['f32', 'bf16', 'q8'] as ValueFormat[])[t % 3];
      const child = spawn(process.execPath, [WRITER, dir, fmt], { stdio: 'ignore' });
      const waitMs = 40 + rng.int(160);
      await new Promise((r) => setTimeout(r, waitMs));
      child.kill('SIGKILL');
      await new Promise((r) => child.on('exit', r));
      let opened;
      try {
        opened = MemoryStore.open(dir, { ...OPTS, valueFormat: fmt }, initialState);
      } catch (e) {
        assert.fail(`trial ${t} (kill after ${waitMs} ms): store did not reopen: ${(e as Error).message}`);
      }
      const steps = Number(opened.extra.steps ?? 0);
      const f = opened.store.valueFormat;
      const key = steps * 10 + ['f32', 'bf16', 'q8'].indexOf(f);
      if (!replicas.has(key)) {
        const r = replica(steps, f);
        replicas.set(key, { state: snapshot(r.state), sources: r.sources.toJSON() });
      }
      const want = replicas.get(key) as { state: unknown; sources: unknown };
      assert.deepStrictEqual(snapshot(opened.state), want.state, `trial ${t}: state after ${steps} steps`);
      assert.deepStrictEqual(opened.sources.toJSON(), want.sources);
      // the next commit works and leaves no stray files
      const c = applyStep(opened.state, opened.sources, steps);
      opened.store.commit(opened.state, opened.sources, { steps: steps + 1 }, { rewrite: c });
      opened.store.close();
      maxSeen = Math.max(maxSeen, steps);
      // keep the store small: start over now and then
      if (steps > 60) {
        rmDir(dir);
        fs.mkdirSync(dir);
      }
    }
    assert.ok(maxSeen > 3, 'the writer made progress before being killed');
  });
});
