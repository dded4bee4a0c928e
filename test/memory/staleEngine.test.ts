/**
 * Stale tokens end to end with the real engine (small fixture) and the store: a file's old
 * version leaves Θ and the cache at compaction (and the disk at the rewrite), and leaves θ within
 * ⌈stale/K⌉ injections because stale θ tokens are always the first dropped — and discarded.
 */
import * as assert from 'assert';
import { MPlusEngine } from '../../src/engine/mplus';
import { Rng } from '../../src/util/rng';
import { MemoryStore } from '../../src/memory/store/store';
import { StoredMemory } from '../../src/memory/store/storedMemory';
import { fixtureWorkspace } from '../helpers/fixtureWorkspace';
import { rmDir, tmpDir } from '../helpers/tmp';

describe('stale tokens with the engine (small fixture)', function () {
  this.timeout(300000);
  const ws = fixtureWorkspace('stale', { model: { preset: 'small', seed: 2 } });
  let dir: string;
  beforeEach(() => (dir = tmpDir('stale-store')));
  afterEach(() => rmDir(dir));

  it("a chunk shorter than K writes K − n rows that keep the sources of the θ rows they re-read", async () => {
    const engine = await MPlusEngine.load(ws.model, { seed: 3, device: 'cpu' });
    try {
      const opened = MemoryStore.open(dir, { identity: engine.checkpoint.identity(), dims: engine.memoryDims(), policy: engine.memoryPolicy() }, () => engine.initialMemory());
      const memory = new StoredMemory(opened);
      const K = engine.config.numTokens;
      const N = engine.config.stmSize;
      const rng = new Rng(6);
      const chunk = (n: number) => Array.from({ length: n }, () => 500 + rng.int(30000));
      const a = opened.sources.add({ file: 'src/a.ts', startLine: 1, endLine: 9, startByte: 0, endByte: 1, hash: 'a' });
      const b = opened.sources.add({ file: 'src/b.ts', startLine: 1, endLine: 1, startByte: 0, endByte: 1, hash: 'b' });
      await engine.inject(memory, chunk(K + 8), { source: a });
      const n = 10;
      await engine.inject(memory, chunk(n), { source: b });
      for (const m of opened.state.layers) {
        const newest = Array.from(m.stmSrc.data.subarray(N - K));
        assert.deepStrictEqual(newest, [...Array(K - n).fill(a), ...Array(n).fill(b)]);
      }
      memory.close();
    } finally {
      await engine.close();
    }
  });

  it('a changed file’s old tokens leave Θ and the cache at compaction and θ within ⌈stale/K⌉ injections', async () => {
    const engine = await MPlusEngine.load(ws.model, { seed: 3, device: 'cpu' });
    try {
      const storeOpts = { identity: engine.checkpoint.identity(), dims: engine.memoryDims(), policy: engine.memoryPolicy() };
      const opened = MemoryStore.open(dir, storeOpts, () => engine.initialMemory());
      const memory = new StoredMemory(opened);
      const { sources, state } = opened;
      const rng = new Rng(5);
      const chunk = () => Array.from({ length: 40 }, () => 500 + rng.int(30000));
      const feed = async (file: string, n: number) => {
        for (let i = 0; i < n; i++) {
          const id = sources.add({ file, startLine: 1 + 10 * i, endLine: 10 + 10 * i, startByte: 0, endByte: 1, hash: `${file}#${i}#${rng.int(1e9)}` });
          await engine.inject(memory, chunk(), { source: id });
        }
      };
      await feed('src/old.ts', 6);
      await feed('src/other.ts', 10); // pushes some of old.ts's tokens from θ through the cache into Θ
      memory.commit({});
      const oldIds = new Set(sources.markStale('src/old.ts'));
      const inLtm = () => state.layers.reduce((a, m) => a + [...m.ltmSrc.data, ...m.cacheSrc.data].filter((x) => oldIds.has(x)).length, 0);
      const inStm = () => state.layers.reduce((a, m) => a + [...m.stmSrc.data].filter((x) => oldIds.has(x)).length, 0);
      assert.ok(inLtm() > 0 && inStm() > 0, 'the old version is in θ and in Θ/cache before compaction');
      memory.compact();
      memory.commit({}, { rewrite: true });
      assert.strictEqual(inLtm(), 0, 'compaction removed every stale Θ and cache token');
      // re-feed the new version: stale θ tokens go first, and are discarded
      const K = engine.config.numTokens;
      const perLayer = Math.max(...state.layers.map((m) => [...m.stmSrc.data].filter((x) => oldIds.has(x)).length));
      await feed('src/old.ts', Math.ceil(perLayer / K));
      assert.strictEqual(inStm(), 0, 'θ holds nothing of the old version');
      assert.strictEqual(inLtm(), 0, 'and nothing stale reached the cache or Θ');
      memory.commit({});
      memory.close();
      // the reopened store agrees
      const again = MemoryStore.open(dir, storeOpts, () => engine.initialMemory());
      for (const m of again.state.layers) for (const x of [...m.stmSrc.data, ...m.ltmSrc.data, ...m.cacheSrc.data]) assert.ok(!oldIds.has(x));
      again.store.close();
    } finally {
      await engine.close();
    }
  });
});
