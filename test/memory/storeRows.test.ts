/**
 * θ and the dropped cache in row segments: a commit writes only rows created since the last one,
 * row segments stay bounded, θ stays on disk between commits (its bytes checked when read), and
 * bf16 θ rounds the same in the session as on reopen.
 */
import * as assert from 'assert';
import * as fs from 'fs';
import * as path from 'path';
import { StoreCorruptError } from '../../src/memory/store/errors';
import { SegmentedRows } from '../../src/memory/store/segmentedRows';
import { MemoryStore, StoreOptions } from '../../src/memory/store/store';
import { rmDir, tmpDir } from '../helpers/tmp';
import { DIMS, IDENTITY, POLICY, applyStep, initialState, snapshot } from './storeOps';

const OPTS: StoreOptions = { identity: IDENTITY, dims: DIMS, policy: POLICY };

interface Entry { file: string; layer: number; rows: number; size: number }
function manifest(dir: string): { seq: number; segments: Entry[]; rowSegments: Entry[]; keySegments: Entry[]; state: { file: string }; ltm: { file: string; ageShift: number }; sources: { file: string } } {
  return JSON.parse(fs.readFileSync(path.join(dir, 'manifest.json'), 'utf8'));
}

/** Rows of θ and the cache still referenced, per layer. */
function liveRows(state: ReturnType<typeof initialState>): number[] {
  return state.layers.map((m) => m.stm.count + m.cache.count);
}

describe('memory store: θ and cache in row segments', () => {
  let dir: string;
  beforeEach(() => (dir = tmpDir('rows')));
  afterEach(() => rmDir(dir));

  it('a commit after one injection writes that injection’s K rows per layer, not θ', () => {
    const { store, state, sources } = MemoryStore.open(dir, OPTS, initialState);
    const first = manifest(dir);
    assert.deepStrictEqual(first.rowSegments.map((e) => e.rows), Array(DIMS.layers).fill(DIMS.stmSize), 'the first commit holds the checkpoint’s θ');
    applyStep(state, sources, 0);
    const c = store.commit(state, sources, {});
    const m = manifest(dir);
    const fresh = m.rowSegments.filter((e) => e.file.startsWith(`rows-${e.layer}-${m.seq}-`));
    assert.deepStrictEqual(fresh.map((e) => e.rows), Array(DIMS.layers).fill(DIMS.tokensPerInjection));
    // the K dropped tokens' keys, nothing else (their values were on disk already)
    const keys = m.keySegments.filter((e) => e.file.startsWith(`keys-${e.layer}-${m.seq}-`));
    assert.deepStrictEqual(keys.map((e) => e.rows), Array(DIMS.layers).fill(DIMS.tokensPerInjection));
    fresh.push(...keys);
    const stateFile = fs.statSync(path.join(dir, m.state.file)).size;
    const sourcesFile = fs.statSync(path.join(dir, m.sources.file)).size;
    assert.strictEqual(c.bytesWritten, fresh.reduce((a, e) => a + e.size, 0) + stateFile + sourcesFile);
    store.close();
  });

  it('θ and the cache stay on disk: a commit leaves no row of them in RAM and keeps their content and version', () => {
    const { store, state, sources } = MemoryStore.open(dir, OPTS, initialState);
    const tables = () => state.layers.flatMap((m) => [m.stm, m.cache]) as SegmentedRows[];
    assert.ok(tables().every((t) => t instanceof SegmentedRows), 'θ/cache not segment-backed');
    assert.ok(tables().every((t) => t.pending.count === 0), 'the first commit left θ in RAM');
    for (let i = 0; i < 3; i++) {
      applyStep(state, sources, i);
      // the injection's rows wait in RAM for the commit, the rest are on disk
      assert.ok(state.layers.every((m) => (m.stm as SegmentedRows).pendingPositions().length === DIMS.tokensPerInjection));
      const before = snapshot(state);
      const versions = tables().map((t) => t.version);
      store.commit(state, sources, {});
      assert.ok(tables().every((t) => t.pending.count === 0 && t.pendingPositions().length === 0), `commit ${i}: rows left in RAM`);
      assert.deepStrictEqual(snapshot(state), before, `commit ${i}: content changed`);
      // unchanged content keeps its version: the engine's θ K/V stays valid across a commit
      assert.deepStrictEqual(tables().map((t) => t.version), versions, `commit ${i}: versions changed`);
    }
    store.close();
  });

  it('keys are held once: by the state, not also by the segment readers (after open and after commits)', () => {
    let { store, state, sources } = MemoryStore.open(dir, OPTS, initialState);
    for (let i = 0; i < 7; i++) { // merges every 2: Θ segments with keys, and the 7th in the cache
      applyStep(state, sources, i);
      store.commit(state, sources, {});
    }
    const m = manifest(dir);
    assert.ok(m.segments.some((e) => e.rows > 0) && m.keySegments.length > 0, 'the store must hold Θ and cache key segments');
    assert.strictEqual(store.readerKeyBytes, 0, 'readers opened by commits hold keys');
    const keysBefore = state.layers.map((l) => [Array.from(l.ltmKeys.data), Array.from(l.cacheKeys.data)]);
    store.close();
    ({ store, state, sources } = MemoryStore.open(dir, OPTS, initialState));
    assert.strictEqual(store.readerKeyBytes, 0, 'readers kept the keys they loaded');
    assert.deepStrictEqual(state.layers.map((l) => [Array.from(l.ltmKeys.data), Array.from(l.cacheKeys.data)]), keysBefore, 'keys reloaded');
    store.close();
  });

  it('row and key segments stay within 3× the live rows, and the directory holds only what the manifest names', () => {
    const { store, state, sources } = MemoryStore.open(dir, OPTS, initialState);
    let rewrites = 0;
    for (let i = 0; i < 60; i++) {
      applyStep(state, sources, i);
      store.commit(state, sources, {});
      const m = manifest(dir);
      const live = liveRows(state);
      for (let l = 0; l < DIMS.layers; l++) {
        const segs = m.rowSegments.filter((e) => e.layer === l);
        const stored = segs.reduce((a, e) => a + e.rows, 0);
        assert.ok(stored >= live[l] && stored <= 3 * live[l], `layer ${l} step ${i}: ${stored} rows stored for ${live[l]} live`);
        if (segs.length === 1 && segs[0].rows === live[l] && i > 0) rewrites++;
        const keys = m.keySegments.filter((e) => e.layer === l).reduce((a, e) => a + e.rows, 0);
        const cached = state.layers[l].cache.count;
        assert.ok(keys >= cached && keys <= 3 * cached, `layer ${l} step ${i}: ${keys} keys stored for ${cached} cached`);
      }
      const named = new Set(['manifest.json', 'manifest.json.ever', 'lock', m.state.file, m.ltm.file, m.sources.file, ...[...m.segments, ...m.rowSegments, ...m.keySegments].map((e) => e.file)]);
      assert.deepStrictEqual(fs.readdirSync(dir).filter((f) => !named.has(f)), []);
    }
    assert.ok(rewrites > 0, 'mostly dead row segments were rewritten');
    const live = snapshot(state);
    store.close();
    const again = MemoryStore.open(dir, OPTS, initialState);
    assert.deepStrictEqual(snapshot(again.state), live);
    again.store.close();
  });

  it('compaction (a rewriting commit) leaves exactly the live θ and cache rows on disk', () => {
    const { store, state, sources } = MemoryStore.open(dir, OPTS, initialState);
    for (let i = 0; i < 9; i++) {
      const compacted = applyStep(state, sources, i);
      store.commit(state, sources, {}, { rewrite: compacted });
    }
    store.commit(state, sources, {}, { rewrite: true });
    const m = manifest(dir);
    const live = liveRows(state);
    for (let l = 0; l < DIMS.layers; l++) {
      assert.strictEqual(m.rowSegments.filter((e) => e.layer === l).reduce((a, e) => a + e.rows, 0), live[l]);
      assert.strictEqual(m.keySegments.filter((e) => e.layer === l).reduce((a, e) => a + e.rows, 0), state.layers[l].cache.count);
    }
    store.close();
  });

  it('Θ bookkeeping is written only when Θ changes: an injection without a merge names the same file, ages shifted', () => {
    const K = DIMS.tokensPerInjection;
    const { store, state, sources } = MemoryStore.open(dir, OPTS, initialState);
    const files: string[] = [];
    const shifts: number[] = [];
    for (let i = 0; i < 4; i++) {
      applyStep(state, sources, i);
      store.commit(state, sources, {});
      files.push(manifest(dir).ltm.file);
      shifts.push(manifest(dir).ltm.ageShift);
      assert.strictEqual(state.updateStep, i % 2 === 0 ? K : 0, 'a merge every second injection');
    }
    // step 0 ages Θ only: same file as the first commit's; step 1 merges: a new file; step 2 ages only
    assert.strictEqual(files[0], 'ltm-1.bin');
    assert.strictEqual(shifts[0], K);
    assert.notStrictEqual(files[1], files[0]);
    assert.strictEqual(files[2], files[1]);
    assert.strictEqual(shifts[2], shifts[1] + K);
    assert.notStrictEqual(files[3], files[2]);
    const live = snapshot(state);
    store.close();
    const again = MemoryStore.open(dir, OPTS, initialState);
    assert.deepStrictEqual(snapshot(again.state), live, 'ages come back as base + shift');
    applyStep(again.state, again.sources, 4); // no merge, and the file it marks stale (f5) has no Θ token
    again.store.commit(again.state, again.sources, {});
    assert.strictEqual(manifest(dir).ltm.file, files[3], 'a reopened store goes on reusing the file');
    again.store.close();
  });

  it('bf16 θ: the session rounds new rows as a reopen reads them', () => {
    const a = MemoryStore.open(dir, { ...OPTS, thetaFormat: 'bf16' }, initialState);
    for (let i = 0; i < 14; i++) {
      const c = applyStep(a.state, a.sources, i);
      if (i % 3 === 2) a.store.commit(a.state, a.sources, {}, { rewrite: c });
    }
    a.store.commit(a.state, a.sources, {});
    const live = snapshot(a.state);
    const bf16 = new Uint32Array(Float32Array.from(a.state.layers[0].stm.data).buffer);
    assert.ok(bf16.every((x) => (x & 0xffff) === 0), 'θ values are bf16-representable after a commit');
    a.store.close();
    const b = MemoryStore.open(dir, OPTS, initialState);
    assert.deepStrictEqual(snapshot(b.state), live);
    b.store.close();
  });

  it('a flipped θ byte is caught when its row is read (θ stays on disk), and by verify, naming the row segment', () => {
    const { store, state, sources } = MemoryStore.open(dir, OPTS, initialState);
    applyStep(state, sources, 0);
    store.commit(state, sources, {});
    store.close();
    const seg = manifest(dir).rowSegments[0].file;
    const p = path.join(dir, seg);
    const b = fs.readFileSync(p);
    const valuesAt = Math.ceil((12 + b.readUInt32LE(8)) / 8) * 8;
    b[valuesAt + 5] ^= 0x40;
    fs.writeFileSync(p, b);
    const corrupt = (e: Error) => e instanceof StoreCorruptError && e.message.includes(seg) && /checksum/.test(e.message);
    const reopened = MemoryStore.open(dir, OPTS, initialState);
    try {
      // the flipped row is one of layer 0's θ or cache rows (the first segment holds the initial θ)
      const l0 = reopened.state.layers[0];
      assert.throws(() => [l0.stm.data, l0.cache.data], corrupt);
      assert.throws(() => reopened.store.verify(), corrupt);
      // rows elsewhere still read
      assert.strictEqual(reopened.state.stmTail(1).length, OPTS.dims.tokensPerInjection * OPTS.dims.hidden);
    } finally {
      reopened.store.close();
    }
    fs.rmSync(p);
    assert.throws(() => MemoryStore.open(dir, OPTS, initialState), (e: Error) => e instanceof StoreCorruptError && e.message.includes(seg) && /missing/.test(e.message));
  });

  it('a damaged key segment or Θ bookkeeping file is refused at open, naming it', () => {
    const { store, state, sources } = MemoryStore.open(dir, OPTS, initialState);
    applyStep(state, sources, 0);
    store.commit(state, sources, {});
    store.close();
    const m = manifest(dir);
    for (const file of [m.keySegments[0].file, m.ltm.file]) {
      const p = path.join(dir, file);
      const orig = fs.readFileSync(p);
      const b = Buffer.from(orig);
      b[b.length - 3] ^= 0x01;
      fs.writeFileSync(p, b);
      assert.throws(() => MemoryStore.open(dir, OPTS, initialState), (e: Error) => e instanceof StoreCorruptError && e.message.includes(file) && /corrupted/.test(e.message), file);
      fs.writeFileSync(p, orig);
    }
    MemoryStore.open(dir, OPTS, initialState).store.close();
  });
});
