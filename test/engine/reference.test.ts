/**
 * The engine (float32 ONNX graphs) against the independent float64 reference written from the
 * spec (test/reference/mplusRef.ts), on fixture checkpoints and scripts the golden case does not
 * reach: questions while Θ is still smaller than R (repeat-fill retrieval), bf16 weights with the
 * bf16 RoPE quirk, chunks both shorter and longer than K, GQA with 4 query heads per KV head.
 */
import * as assert from 'assert';
import * as path from 'path';
import { MPlusEngine } from '../../src/engine/mplus';
import { TraceOp, runTrace } from '../../tools/trace';
import { randomDrop } from '../../src/memory/drop';
import { Rng } from '../../src/util/rng';
import { writeFixture, Preset } from '../../tools/fixture';
import { MPlusReference } from '../reference/mplusRef';
import { Expected, compareResult } from '../reference/compare';
import { rmDir, tmpDir } from '../helpers/tmp';

function script(seed: number, L: number, N: number, K: number, vocab: number, lengths: Array<number | 'ask'>): TraceOp[] {
  const rng = new Rng(seed);
  return lengths.map((n) => n === 'ask'
    ? { op: 'generate', tokens: Array.from({ length: 6 }, () => rng.int(vocab)), steps: 3 }
    : { op: 'inject', tokens: Array.from({ length: n }, () => rng.int(vocab)), drop: Array.from({ length: L }, () => randomDrop(rng, N, K)) });
}

async function check(dir: string, ops: TraceOp[]) {
  // the float64 reference keeps K/V exact: compare with float32 K/V (halfKv.test.ts bounds float16)
  const engine = await MPlusEngine.load(dir, { seed: 1, kvFormat: 'f32' });
  let got;
  try {
    got = await runTrace(engine, ops);
  } finally {
    await engine.close();
  }
  const ref = new MPlusReference(dir).runOps(ops as Parameters<MPlusReference['runOps']>[0]);
  const expected = { results: ref.results, state: ref.state } as unknown as Expected;
  const bad = compareResult(expected, got);
  assert.deepStrictEqual(bad, [], bad.slice(0, 20).join('\n'));
  ref.results.forEach((r, i) => {
    if ('retrieved' in r) assert.deepStrictEqual((got.results[i] as { retrieved: number[][] }).retrieved, r.retrieved, `op${i} retrieved indices`);
  });
  return got;
}

describe('engine vs float64 reference on fixtures', function () {
  let root: string;
  before(() => { root = tmpDir('ref'); });
  after(() => rmDir(root));

  const fixture = (preset: Preset, seed: number, dtype: 'f32' | 'bf16') => {
    const dir = path.join(root, `${preset}-${seed}-${dtype}`);
    writeFixture({ out: dir, preset, seed, dtype, tokenizerDir: null });
    return dir;
  };

  it('tiny f32: repeat-fill before the first merge, top-R after, merges and expiry', async () => {
    const dir = fixture('tiny', 21, 'f32');
    // K = 8, N = 32, R = 16, Θ starts with 5 rows, merge every 2 injections.
    const ops = script(5, 3, 32, 8, 256, [20, 'ask', 5, 16, 'ask', 30, 9, 17, 8, 40, 12, 'ask']);
    const got = await check(dir, ops);
    const first = got.results[1] as { retrieved: number[][] };
    assert.ok(first.retrieved[0].length === 16 && new Set(first.retrieved[0]).size === 5, 'first question repeat-fills the 5 shipped Θ rows');
  });

  it('tiny bf16: bf16 weights and the bf16 RoPE quirk', async () => {
    const dir = fixture('tiny', 22, 'bf16');
    await check(dir, script(6, 3, 32, 8, 256, [18, 7, 'ask', 25, 16, 'ask']));
  });

  it('small f32: Llama-3.1 vocabulary, GQA 8/2, K = 32', async function () {
    this.timeout(300000);
    const dir = fixture('small', 23, 'f32');
    // K = 32, N = 256, R = 64, Θ starts with 96 rows (top-R from the first question), merge every 4.
    await check(dir, script(7, 4, 256, 32, 128256, [40, 'ask', 100, 20, 64, 33, 'ask']));
  });
});
