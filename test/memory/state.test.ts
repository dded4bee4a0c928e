import * as assert from 'assert';
import { dropPreferring, randomDrop } from '../../src/memory/drop';
import { Rng } from '../../src/util/rng';
import { orderByAge, repeatFill, topR } from '../../src/memory/retrieval';
import { MemoryDims, MemoryState } from '../../src/memory/state';

const dims: MemoryDims = { layers: 2, hidden: 3, keyDim: 2, tokensPerInjection: 2, stmSize: 4, retrieveSize: 3 };
const policy = { updateLtmFrequency: 2, decayFrequency: 1, initialRf: 2 };

function rows(n: number, base: number, width: number): Float32Array {
  return Float32Array.from({ length: n * width }, (_, i) => base + i);
}

function update(state: MemoryState, drop: number[], base: number) {
  state.applyInjection({
    drop: [drop, drop],
    delta: [rows(2, base, 3), rows(2, base + 100, 3)],
    droppedKeys: [rows(2, -base, 2), rows(2, -base - 100, 2)],
    source: base,
  });
}

describe('memory state (MPLUS-SPEC memory update)', () => {
  it('drops K tokens, appends the delta with ages K−1..0, caches the dropped with their ages', () => {
    const s = MemoryState.initial(dims, policy, rows(8, 0, 3), null);
    update(s, [0, 2], 1000);
    const l0 = s.layers[0];
    assert.deepStrictEqual(Array.from(l0.stm.data.subarray(0, 6)), [3, 4, 5, 9, 10, 11]); // kept rows 1 and 3
    assert.deepStrictEqual(Array.from(l0.stm.data.subarray(6)), [1000, 1001, 1002, 1003, 1004, 1005]);
    assert.deepStrictEqual(Array.from(l0.stmAges.data), [0, 0, 1, 0]);
    assert.deepStrictEqual(Array.from(l0.stmSrc.data), [-1, -1, 1000, 1000]);
    assert.deepStrictEqual(Array.from(l0.cache.data), [0, 1, 2, 6, 7, 8]);
    assert.deepStrictEqual(Array.from(l0.cacheAges.data), [0, 0]);
    assert.strictEqual(s.updateStep, 2);
  });

  it('ages Θ and the cache by K before caching new drops, merges at the period and resets', () => {
    const s = MemoryState.initial(dims, policy, rows(8, 0, 3), null);
    update(s, [0, 2], 1000);
    update(s, [2, 3], 2000); // drops the two delta rows of the first update (ages 1, 0)
    const l0 = s.layers[0];
    // merged: cache had ages [0,0] (+K=2 → 2,2) then new drops with raw ages [1, 0]
    assert.deepStrictEqual(Array.from(l0.ltmAges.data), [2, 2, 1, 0]);
    assert.strictEqual(l0.cache.count, 0);
    assert.strictEqual(s.updateStep, 0);
    // 4 entries > R=3 survive decay (2−1 = 1 > 0.01): frequencies stay decayed
    assert.deepStrictEqual(Array.from(l0.ltmRf.data), [1, 1, 1, 1]);
    assert.deepStrictEqual(Array.from(l0.ltmKeys.data.subarray(0, 2)), [-1000, -999]);
  });

  it('expires entries whose frequency falls to 0.01 only when more than R would remain', () => {
    const s = MemoryState.initial(dims, { ...policy, initialRf: 1 }, rows(8, 0, 3), null);
    update(s, [0, 1], 1);
    update(s, [0, 1], 2); // merge 1: 4 entries, rf 1 → 0: keep = {} ≤ R → restored to 1
    assert.deepStrictEqual(Array.from(s.layers[0].ltmRf.data), [1, 1, 1, 1]);
    update(s, [0, 1], 3);
    update(s, [0, 1], 4); // merge 2: 8 entries, all rf 0 after decay: keep 0 ≤ R → restored
    assert.strictEqual(s.layers[0].ltm.count, 8);
    const s2 = MemoryState.initial(dims, { ...policy, initialRf: 3 }, rows(8, 0, 3), null);
    for (let i = 0; i < 8; i++) update(s2, [0, 1], i);
    // merges at 2,4,6,8: rf of first batch 3→2→1→0(expired at merge 3, since 8 > R survive)
    const rf = Array.from(s2.layers[0].ltmRf.data);
    assert.ok(rf.every((f) => f > 0.01), `all survivors have positive frequency: ${rf}`);
    assert.strictEqual(s2.layers[0].ltm.count, 8); // two merges' worth (the oldest two expired)
  });

  it("keeps the sources of the θ rows a short chunk's write re-read (provenance follows content)", () => {
    for (const thetaOnly of [false, true]) {
      const s = MemoryState.initial(dims, { ...policy, thetaOnly }, rows(8, 0, 3), null);
      update(s, [0, 2], 1000); // θ sources [−1, −1, 1000, 1000]
      const short = (drop: number[], source: number) => s.applyInjection({
        drop: [drop, drop], delta: [rows(2, source, 3), rows(2, source, 3)], droppedKeys: [rows(2, 0, 2), rows(2, 0, 2)], source, rereadRows: 1,
      });
      // Dropping θ's last rows still hands their sources on: they are read before the drop.
      short([2, 3], 2000);
      assert.deepStrictEqual(Array.from(s.layers[0].stmSrc.data), [-1, -1, 1000, 2000], `thetaOnly ${thetaOnly}`);
      assert.deepStrictEqual(Array.from(s.layers[1].stmSrc.data), [-1, -1, 1000, 2000]);
      short([0, 1], 3000);
      assert.deepStrictEqual(Array.from(s.layers[0].stmSrc.data), [1000, 2000, 2000, 3000]);
    }
  });

  it('refuses malformed drop plans', () => {
    const s = MemoryState.initial(dims, policy, rows(8, 0, 3), null);
    const bad = (drop: number[]) => () => s.applyInjection({ drop: [drop, [0, 1]], delta: [rows(2, 0, 3), rows(2, 0, 3)], droppedKeys: [rows(2, 0, 2), rows(2, 0, 2)], source: 0 });
    assert.throws(bad([0]), /expected K=2/);
    assert.throws(bad([1, 1]), /strictly ascending/);
    assert.throws(bad([0, 4]), /outside 0..3/);
    const reread = (n: number) => () => s.applyInjection({ drop: [[0, 1], [0, 1]], delta: [rows(2, 0, 3), rows(2, 0, 3)], droppedKeys: [rows(2, 0, 2), rows(2, 0, 2)], source: 0, rereadRows: n });
    assert.throws(reread(2), /rereadRows must be an integer in 0..1, got 2/);
    assert.throws(reread(-1), /rereadRows/);
    assert.strictEqual(s.updateStep, 0, 'a refused update changes nothing');
  });

  it('numbers retrieval candidates Θ first, then the cache, for keys, ages, sources and values alike', () => {
    const s = MemoryState.initial(dims, policy, rows(8, 0, 3), [
      { values: rows(1, 500, 3), keys: rows(1, 50, 2), rf: Float32Array.of(2), ages: Float32Array.of(9) },
      { values: rows(1, 600, 3), keys: rows(1, 60, 2), rf: Float32Array.of(2), ages: Float32Array.of(9) },
    ]);
    update(s, [0, 2], 1000); // caches θ rows 0 and 2 of the checkpoint (source −1)
    const c = s.candidates(0);
    assert.strictEqual(c.ltmCount, 1);
    assert.strictEqual(c.count, 3);
    assert.deepStrictEqual(Array.from(c.keys()), [50, 51, -1000, -999, -998, -997]);
    assert.deepStrictEqual([0, 1, 2].map(c.age), [11, 0, 0]); // Θ aged by K=2
    assert.deepStrictEqual([0, 1, 2].map(c.source), [-1, -1, -1]);
    assert.deepStrictEqual(Array.from(c.gather([2, 0])), [6, 7, 8, 500, 501, 502]);
  });

  it('snapshot/restore puts back exactly the content, and the snapshot stays reusable', () => {
    const s = MemoryState.initial(dims, policy, rows(8, 0, 3), null);
    update(s, [0, 2], 1000);
    const snap = s.snapshot();
    const before = JSON.stringify(s.layers.map((m) => Array.from(m.stm.data)));
    update(s, [1, 3], 2000); // merges into Θ
    assert.strictEqual(s.counts().ltm, 4);
    s.restore(snap);
    assert.strictEqual(JSON.stringify(s.layers.map((m) => Array.from(m.stm.data))), before);
    assert.deepStrictEqual(s.counts(), { stm: 4, ltm: 0, cache: 2 });
    assert.strictEqual(s.updateStep, 2);
    update(s, [1, 3], 2000);
    s.restore(snap);
    assert.deepStrictEqual(s.counts(), { stm: 4, ltm: 0, cache: 2 });
    assert.throws(() => MemoryState.initial(dims, policy, rows(8, 0, 3), null).restore(snap), /another memory/);
  });

  it('a layer whose columns disagree in length is refused', () => {
    const s = MemoryState.initial(dims, policy, rows(8, 0, 3), null);
    s.layers[1].cacheSrc.append([5]);
    assert.throws(() => new MemoryState(dims, policy, s.layers), /memory layer 1: column cache\w* has 0 rows, its part cache has 1/);
  });

  it('clone is deep', () => {
    const s = MemoryState.initial(dims, policy, rows(8, 0, 3), null);
    const c = s.clone();
    update(s, [0, 2], 1000);
    assert.strictEqual(c.layers[0].stm.data[0], 0);
    assert.strictEqual(c.updateStep, 0);
  });
});

describe('retrieval selection', () => {
  it('repeat-fills Θ indices keeping the last R of the repeated sequence', () => {
    assert.deepStrictEqual(repeatFill(5, 16), [4, 0, 1, 2, 3, 4, 0, 1, 2, 3, 4, 0, 1, 2, 3, 4]);
    assert.deepStrictEqual(repeatFill(3, 3), [0, 1, 2]);
    assert.deepStrictEqual(repeatFill(2, 3), [1, 0, 1]);
    assert.deepStrictEqual(repeatFill(0, 3), []);
  });

  it('takes the top R scores best first', () => {
    assert.deepStrictEqual(topR(Float32Array.from([0.1, 0.9, 0.5, 0.7]), 2), [1, 3]);
    assert.deepStrictEqual(topR(Float32Array.from([0.5, 0.5, 0.9]), 2), [2, 0]);
  });

  it('orders oldest first, ties by larger candidate index first', () => {
    const ages = [5, 7, 5, 1, 7];
    assert.deepStrictEqual(orderByAge([0, 1, 2, 3, 4], (c) => ages[c]), [4, 1, 2, 0, 3]);
    assert.deepStrictEqual(orderByAge([3, 2, 4], (c) => ages[c]), [4, 2, 3]);
  });
});

describe('drop plans', () => {
  it('random drops are K distinct ascending indices and replay from the seed', () => {
    const a = randomDrop(new Rng(7), 100, 10);
    assert.strictEqual(new Set(a).size, 10);
    assert.deepStrictEqual(a, [...a].sort((x, y) => x - y));
    assert.ok(a.every((x) => x >= 0 && x < 100));
    assert.deepStrictEqual(randomDrop(new Rng(7), 100, 10), a);
    assert.notDeepStrictEqual(randomDrop(new Rng(8), 100, 10), a);
  });

  it('preferred (stale) indices are dropped first', () => {
    const d = dropPreferring(new Rng(1), 20, 4, [17, 3]);
    assert.ok(d.includes(17) && d.includes(3));
    assert.strictEqual(new Set(d).size, 4);
    assert.deepStrictEqual(dropPreferring(new Rng(1), 20, 2, [9, 5, 1]), [5, 9]);
  });
});
