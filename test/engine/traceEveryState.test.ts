/**
 * `mplus trace --every-state` (tools/trace.ts): each injection's result carries the memory right
 * after it, float rows packed as base64 float32. training/mplus/verify.py runs each op from these
 * states, so they must be exact: the packed rows decode to the very floats the decimal state holds.
 */
import * as assert from 'assert';
import * as path from 'path';
import { MPlusEngine } from '../../src/engine/mplus';
import { PackedRows, StateJson, TraceOp, runTrace } from '../../tools/trace';
import { writeFixture } from '../../tools/fixture';
import { randomDrop } from '../../src/memory/drop';
import { Rng } from '../../src/util/rng';
import { rmDir, tmpDir } from '../helpers/tmp';

function unpack(p: PackedRows): number[][] {
  const b = Buffer.from(p.f32, 'base64');
  const f = new Float32Array(b.buffer, b.byteOffset, b.byteLength / 4);
  const [n, w] = p.shape;
  assert.strictEqual(f.length, n * w);
  return Array.from({ length: n }, (_, i) => Array.from(f.subarray(i * w, (i + 1) * w)));
}

describe('trace --every-state', function () {
  let root: string;
  before(() => { root = tmpDir('trace-states'); });
  after(() => rmDir(root));

  it('packs the memory after every injection exactly; the last one is the final state', async () => {
    const dir = path.join(root, 'tiny');
    writeFixture({ out: dir, preset: 'tiny', seed: 3, dtype: 'f32', tokenizerDir: null });
    const rng = new Rng(4); // explicit drops: the two runs below must drop the same rows
    const inject = (n: number, base: number): TraceOp => ({
      op: 'inject', tokens: Array.from({ length: n }, (_, i) => (base + 7 * i) % 256), drop: [0, 1, 2].map(() => randomDrop(rng, 32, 8)),
    });
    // tiny: merges every 2 injections, so the states below hold Θ and cache rows as well as θ
    const ops: TraceOp[] = [inject(20, 1), inject(9, 40), inject(30, 90), { op: 'generate', tokens: [5, 6, 7], steps: 2 }, inject(12, 3)];
    const engine = await MPlusEngine.load(dir, { seed: 2, kvFormat: 'f32' });
    let packed, plain;
    try {
      packed = await runTrace(engine, ops, engine.initialMemory(), { everyState: true });
      plain = await runTrace(engine, ops.slice(0, 3));
    } finally {
      await engine.close();
    }
    const states = packed.results.flatMap((r) => ('state' in r && r.state ? [r.state] : []));
    assert.strictEqual(states.length, 4, 'one state per injection, none for the question');
    assert.ok(!('state' in plain.results[0]), 'no states unless asked');
    const decoded = (s: StateJson<PackedRows>): StateJson => ({
      ...s,
      layers: s.layers.map((l) => ({ ...l, stm: unpack(l.stm), ltm: unpack(l.ltm), ltm_keys: unpack(l.ltm_keys), cache: unpack(l.cache), cache_keys: unpack(l.cache_keys) })),
    });
    assert.deepStrictEqual(decoded(states[2]), plain.state); // after the 3rd injection, as a plain trace of 3 has it
    assert.deepStrictEqual(decoded(states[3]), packed.state);
    assert.ok(plain.state.layers[0].ltm.length > 0 && plain.state.layers[0].cache.length + plain.state.layers[0].ltm.length > 5);
  });
});
