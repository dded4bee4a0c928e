/**
 * θ's keys/values kept between questions (issue 15: θ is 10,240 of a question's 12,801 memory
 * rows at mplus-8b shape; recomputing its K/V made every question's prefill ~7.7 TFLOP). The cache
 * is only an optimisation, so every check is "the same as an engine that never cached":
 *   - a second question without an injection between reuses it (no new θ K/V) and is bit-identical
 *     to a fresh engine's;
 *   - an injection updates it: the kept rows' K/V move, only the K new rows are projected (keys
 *     are cached before RoPE and rotated by the layer graph), and the next question is
 *     bit-identical to a fresh engine's — at float32 and at float16 K/V, over many injections;
 *   - whatever else changes θ makes the next question recompute, and still match a fresh engine:
 *     a restore from a snapshot, a row overwritten;
 *   - a question already asked keeps the θ it was asked against: an injection meanwhile does not
 *     change its next decoding step.
 */
import * as assert from 'assert';
import { MPlusEngine, Question } from '../../src/engine/mplus';
import { MemoryState } from '../../src/memory/state';
import { fixtureWorkspace } from '../helpers/fixtureWorkspace';

const chunk = (k: number) => Array.from({ length: 40 }, (_, i) => 2000 + k * 50 + i);
const question = Array.from({ length: 24 }, (_, i) => 1000 + ((i * 7919) % 5000));

function same(a: Question, b: Question, what: string): void {
  assert.deepStrictEqual(a.retrieved, b.retrieved, `${what}: retrieved`);
  assert.deepStrictEqual(a.logits, b.logits, `${what}: logits`);
  assert.deepStrictEqual(a.memoryAttention, b.memoryAttention, `${what}: attention on memory`);
  assert.strictEqual(a.position, b.position);
}

describe('θ K/V kept between questions', function () {
  this.timeout(300000);
  const ws = fixtureWorkspace('thetakv', { model: { preset: 'small', seed: 13 } });
  let engine: MPlusEngine;
  let fresh: MPlusEngine;
  let L: number;
  before(async () => {
    engine = await MPlusEngine.load(ws.model, { seed: 5 });
    fresh = await MPlusEngine.load(ws.model, { seed: 5 });
    L = engine.config.numLayers;
  });
  after(async () => {
    await engine?.close();
    await fresh?.close();
  });

  /** What an engine that never saw this memory answers (its cache is cleared by a clone). */
  async function uncached(m: MemoryState): Promise<Question> {
    return fresh.prefill(m.clone(), question);
  }

  it('is computed once per θ and reused: the second question is bit-identical to an uncached one', async () => {
    const mem = engine.initialMemory();
    for (let k = 0; k < 3; k++) await engine.inject(mem, chunk(k));
    const before = engine.thetaKvComputed;
    const q1 = await engine.prefill(mem, question);
    assert.strictEqual(engine.thetaKvComputed - before, L, 'computed for every layer on the first question');
    const q2 = await engine.prefill(mem, question);
    assert.strictEqual(engine.thetaKvComputed - before, L, 'reused by the second');
    same(q2, q1, 'second question');
    same(q2, await uncached(mem), 'vs an engine that never cached');
    assert.ok(engine.thetaKvBytes() > 0);
    assert.strictEqual(q2.mem[0].k, q1.mem[0].k, 'the same K/V tensors, not a copy');
  });

  it('computed in blocks of θ rows (a small scratch bound) equals one pass', async () => {
    const { hiddenSize: d, stmSize: N } = engine.config;
    // 16 rows per block (the least), N/16 blocks: each block's rows at their own positions
    const blocked = await MPlusEngine.load(ws.model, { seed: 5, scratchBytes: 16 * 4 * d * 16 });
    try {
      assert.ok(N > 32, `the fixture's θ (${N} rows) must span several blocks`);
      const mem = engine.initialMemory();
      for (let k = 0; k < 2; k++) await engine.inject(mem, chunk(k));
      const short = question.slice(0, 12); // one question block at either scratch bound
      same(await blocked.prefill(mem.clone(), short), await fresh.prefill(mem.clone(), short), 'blocked vs one pass');
    } finally {
      await blocked.close();
    }
  });

  it('an injection updates it (K new rows per layer) and the next question matches an uncached engine', async () => {
    const mem = engine.initialMemory();
    await engine.inject(mem, chunk(0));
    await engine.prefill(mem, question);
    const n = engine.thetaKvComputed;
    const u = engine.thetaKvUpdated;
    // several injections: kept rows move by different amounts each time, and rows written by an
    // update are moved again by the next one
    for (let k = 1; k <= 4; k++) {
      await engine.inject(mem, chunk(k));
      same(await engine.prefill(mem, question), await uncached(mem), `after injection ${k}`);
    }
    assert.strictEqual(engine.thetaKvComputed - n, 0, 'never recomputed whole');
    assert.strictEqual(engine.thetaKvUpdated - u, 4 * L, 'updated per layer per injection');
    // with no question since, injections keep updating it; a fresh engine agrees on the next step too
    await engine.inject(mem, chunk(5));
    await engine.inject(mem, chunk(6));
    const q = await engine.prefill(mem, question);
    const ref = await uncached(mem);
    same(q, ref, 'after two injections without a question');
    assert.deepStrictEqual(await engine.decode(q, 77), await fresh.decode(ref, 77), 'decoding reads the rotated θ keys too');
  });

  it('updates no question reads stop after N rows (one recompute\'s worth): a long ingestion drops the cache', async () => {
    const { stmSize: N, numTokens: K } = engine.config;
    const mem = engine.initialMemory();
    await engine.inject(mem, chunk(0));
    await engine.prefill(mem, question);
    let n = engine.thetaKvComputed;
    for (let k = 1; k <= N / K; k++) await engine.inject(mem, chunk(k)); // N rows projected: still kept
    assert.ok(engine.thetaKvBytes() > 0, 'dropped too early');
    same(await engine.prefill(mem, question), await uncached(mem), 'after N/K injections');
    assert.strictEqual(engine.thetaKvComputed - n, 0, 'recomputed though updated');
    n = engine.thetaKvComputed;
    for (let k = 0; k <= N / K; k++) await engine.inject(mem, chunk(k + 20)); // one more than that
    assert.strictEqual(engine.thetaKvBytes(), 0, 'kept past N rows of unread updates');
    same(await engine.prefill(mem, question), await uncached(mem), 'after the cache was dropped');
    assert.strictEqual(engine.thetaKvComputed - n, engine.config.numLayers, 'recomputed once dropped');
  });

  it('at float16 K/V the update is exact too (keys rounded before RoPE either way)', async () => {
    const half = await MPlusEngine.load(ws.model, { seed: 5, kvFormat: 'f16' });
    const halfFresh = await MPlusEngine.load(ws.model, { seed: 5, kvFormat: 'f16' });
    try {
      const mem = half.initialMemory();
      await half.inject(mem, chunk(0));
      await half.prefill(mem, question);
      for (let k = 1; k <= 3; k++) await half.inject(mem, chunk(k));
      assert.strictEqual(half.thetaKvComputed, L);
      same(await half.prefill(mem, question), await halfFresh.prefill(mem.clone(), question), 'f16, after 3 injections');
    } finally {
      await half.close();
      await halfFresh.close();
    }
  });

  it('a restore and a row overwritten each make the next question recompute, matching an uncached engine', async () => {
    const mem = engine.initialMemory();
    await engine.inject(mem, chunk(0));
    await engine.prefill(mem, question);
    const snap = mem.snapshot();
    await engine.inject(mem, chunk(1));
    await engine.prefill(mem, question);

    let n = engine.thetaKvComputed;
    mem.restore(snap);
    same(await engine.prefill(mem, question), await uncached(mem), 'after a restore');
    assert.strictEqual(engine.thetaKvComputed - n, L, 'recomputed after the restore');

    // Any write through the rows' methods (the store's commit rounds θ rows with set()).
    const row = mem.layers[1].stm.gather([3]).map((x) => x * 2);
    mem.layers[1].stm.set(3, row);
    n = engine.thetaKvComputed;
    same(await engine.prefill(mem, question), await uncached(mem), 'after one θ row was overwritten');
    assert.strictEqual(engine.thetaKvComputed - n, 1, 'recomputed for the changed layer only');
  });

  it('a question asked keeps its θ: an injection meanwhile does not change its next step', async () => {
    const mem = engine.initialMemory();
    await engine.inject(mem, chunk(0));
    const q = await engine.prefill(mem, question);
    const ref = await fresh.prefill(mem.clone(), question);
    await engine.inject(mem, chunk(1)); // θ changes under the question
    assert.deepStrictEqual(await engine.decode(q, 77), await fresh.decode(ref, 77));
  });
});
