/**
 * θ and the dropped-token cache held as bf16 in RAM (issue 15 item 2): the table itself, and the
 * claim that makes it safe — a bf16 session computes exactly what the f32-in-RAM session computed
 * when its bf16 store rounded θ at every commit, and exactly what a reopen of its store returns.
 */
import * as assert from 'assert';
import { MPlusEngine } from '../../src/engine/mplus';
import { roundTrip } from '../../src/memory/store/codec';
import { Bf16Rows, RowBuffer, ValueRows } from '../../src/memory/rows';
import { SegmentedRows } from '../../src/memory/store/segmentedRows';
import { MemoryStore, OpenResult } from '../../src/memory/store/store';
import { Rng } from '../../src/util/rng';
import { writeFixture } from '../../tools/fixture';
import { rmDir, tmpDir } from '../helpers/tmp';

function randomRows(rng: Rng, n: number, d: number): Float32Array {
  // wide exponents and exact ties, so rounding to nearest-even is exercised, not just truncation
  return Float32Array.from({ length: n * d }, (_, i) => (i % 7 === 0 ? 1 + 2 ** -8 : (rng.float() - 0.5) * 2 ** (rng.int(40) - 20)));
}

describe('Bf16Rows: θ and cache rows held as bf16', () => {
  it('every operation equals the same operation on float32 rows, rounded as the store rounds', () => {
    const d = 24;
    const rng = new Rng(3);
    const f = new RowBuffer(d);
    const b = new Bf16Rows(d);
    const same = (what: string) => assert.deepStrictEqual(b.data, roundTrip('bf16', f.data, d), what);
    for (let i = 0; i < 5; i++) {
      const rows = randomRows(rng, 3 + i, d);
      f.append(rows);
      b.append(rows);
      same(`after append ${i}`);
    }
    // non-contiguous ascending keeps move rows down over ones still to be read
    const keep = [0, 2, 3, 7, 8, 9, 15, 20, 24];
    f.keep(keep);
    b.keep(keep);
    same('after keep');
    assert.strictEqual(b.count, keep.length);
    const row = randomRows(rng, 1, d);
    f.set(4, row);
    b.set(4, row);
    same('after set');
    assert.deepStrictEqual(b.gather([8, 0, 4, 4]), roundTrip('bf16', f.gather([8, 0, 4, 4]), d));
    const c = b.clone();
    b.append(randomRows(rng, 2, d));
    assert.strictEqual(c.count, keep.length, 'a clone does not see later appends');
    assert.throws(() => b.gather([b.count]), /outside/);
    assert.throws(() => b.set(-1, row), /outside/);
    assert.throws(() => b.append(new Float32Array(d + 1)), /whole rows/);
    b.clear();
    assert.strictEqual(b.data.length, 0);
    // round to nearest, ties to even (7 mantissa bits: spacing 2^-7 at 1)
    assert.deepStrictEqual(Array.from(Bf16Rows.from(4, Float32Array.from([1 + 3 * 2 ** -9, 1 + 2 ** -8, 1 + 3 * 2 ** -8, -(1 + 3 * 2 ** -9)])).data),
      [1 + 2 ** -7, 1, 1 + 2 ** -6, -(1 + 2 ** -7)]);
    // NaN stays NaN; infinities and signed zero survive
    const special = Float32Array.from([NaN, Infinity, -Infinity, -0, 3.4e38, 1e-40]);
    const s = Bf16Rows.from(6, special).data;
    assert.ok(Number.isNaN(s[0]));
    assert.deepStrictEqual(Array.from(s.subarray(1, 4)), [Infinity, -Infinity, -0]);
    assert.deepStrictEqual(s, roundTrip('bf16', special, 6));
  });
});

describe('bf16 memory state on a bf16 checkpoint (tiny fixture)', function () {
  this.timeout(300000);
  let model: string;
  const dirs: string[] = [];
  before(() => {
    model = tmpDir('bf16state-model');
    writeFixture({ out: model, preset: 'tiny', seed: 5, dtype: 'bf16' });
  });
  after(() => {
    rmDir(model);
    dirs.forEach(rmDir);
  });

  /** Opens a fresh bf16 store, θ held in RAM as `ram`. */
  function open(engine: MPlusEngine, ram: 'f32' | 'bf16', dir?: string): { o: OpenResult; dir: string } {
    const d = dir ?? tmpDir(`bf16state-${ram}`);
    if (!dir) dirs.push(d);
    const opts = { identity: engine.checkpoint.identity(), dims: engine.memoryDims(), policy: engine.memoryPolicy(), valueFormat: 'bf16' as const, thetaFormat: 'bf16' as const };
    // The store holds θ in its θ format whatever the initial state's (bf16 here): `ram` only
    // picks what the engine hands over, to show the store converts it.
    return { o: MemoryStore.open(d, opts, () => engine.initialMemory(ram)), dir: d };
  }

  function rows(t: ValueRows): Float32Array {
    return t.data;
  }

  it('the store holds θ, the cache and the keys as bf16, equal step by step to f32 rows rounded at every commit, and to a reopen', async () => {
    const engine = await MPlusEngine.load(model, { seed: 8, device: 'cpu' });
    assert.strictEqual(engine.stateFormat(), 'bf16');
    try {
      const a = open(engine, 'f32');
      const st = a.o.state;
      // on disk once committed, in bf16; rows pending a commit are held as bf16 too
      const bf16OnDisk = (t: ValueRows) => t instanceof SegmentedRows && t.format === 'bf16' && t.pending instanceof Bf16Rows;
      assert.ok(st.layers.every((m) => bf16OnDisk(m.stm) && bf16OnDisk(m.cache)), 'θ/cache not held as bf16');
      // retriever keys in RAM at half width too (the part of memory that grows with Θ)
      assert.ok(st.layers.every((m) => m.ltmKeys instanceof Bf16Rows && m.cacheKeys instanceof Bf16Rows), 'keys not held as bf16');
      assert.strictEqual(st.rowFormat, 'bf16');
      // The reference: θ in float32 RAM, rounded only by each commit (the pre-bf16-state path).
      const ref = engine.initialMemory('f32');
      assert.ok(ref.layers[0].stm instanceof RowBuffer);
      const refEngine = await MPlusEngine.load(model, { seed: 8, device: 'cpu' });
      try {
        const rng = new Rng(2);
        const { tokensPerInjection: K, layers: L } = engine.memoryDims();
        let cacheSeen = false;
        for (let i = 0; i < 6; i++) {
          const chunk = Array.from({ length: 2 * K }, () => rng.int(engine.config.vocabSize));
          await engine.inject(st, chunk);
          await refEngine.inject(ref, chunk);
          for (let l = 0; l < L; l++) {
            // round the reference as a commit would
            for (const part of ['stm', 'cache', 'ltmKeys', 'cacheKeys'] as const) {
              const t = ref.layers[l][part];
              const r = roundTrip('bf16', t.data, t.width);
              for (let j = 0; j < t.count; j++) t.set(j, r.subarray(j * t.width, (j + 1) * t.width));
              assert.deepStrictEqual(rows(st.layers[l][part]), t.data, `injection ${i}, layer ${l}: ${part} differs`);
            }
            cacheSeen ||= st.layers[l].cache.count > 0;
          }
          a.o.store.commit(st, a.o.sources, {});
        }
        assert.ok(st.counts().ltm > 0 || cacheSeen, 'nothing reached the cache or Θ: the test checks too little');
        const q = [5, 17, 30, 42];
        const live = await engine.prefill(st, q);
        const refQ = await refEngine.prefill(ref, q);
        assert.deepStrictEqual(live.logits, refQ.logits, 'a question reads other memory');
        a.o.store.close();
        const b = open(engine, 'bf16', a.dir);
        for (let l = 0; l < L; l++) {
          assert.deepStrictEqual(b.o.state.layers[l].stm.data, st.layers[l].stm.data, `reopen: layer ${l} θ`);
          assert.deepStrictEqual(b.o.state.layers[l].cache.data, st.layers[l].cache.data, `reopen: layer ${l} cache`);
          assert.deepStrictEqual(b.o.state.layers[l].ltmKeys.data, st.layers[l].ltmKeys.data, `reopen: layer ${l} Θ keys`);
          assert.deepStrictEqual(b.o.state.layers[l].cacheKeys.data, st.layers[l].cacheKeys.data, `reopen: layer ${l} cache keys`);
        }
        assert.ok(b.o.state.layers[0].stm instanceof SegmentedRows && b.o.state.layers[0].stm.format === 'bf16', 'θ not held as bf16 on disk');
        b.o.store.close();
      } finally {
        await refEngine.close();
      }
    } finally {
      await engine.close();
    }
  });

  it('initialMemory("bf16") holds the checkpoint θ and Θ exactly (a bf16 checkpoint loses nothing)', async () => {
    const engine = await MPlusEngine.load(model, { seed: 1, device: 'cpu' });
    try {
      const f = engine.initialMemory('f32');
      const b = engine.initialMemory('bf16');
      f.layers.forEach((m, l) => assert.deepStrictEqual(b.layers[l].stm.data, m.stm.data, `layer ${l} θ`));
      // the shipped Θ rows too (held in the same format until a store takes them to disk)
      assert.ok(f.counts().ltm > 0, 'the fixture ships no Θ: nothing checked');
      f.layers.forEach((m, l) => assert.deepStrictEqual(b.layers[l].ltm.data, m.ltm.data, `layer ${l} Θ`));
      assert.ok(b.layers[0].ltm instanceof Bf16Rows);
    } finally {
      await engine.close();
    }
  });
});
