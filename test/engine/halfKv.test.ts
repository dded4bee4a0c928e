/**
 * A question's K/V cache at half width (issue 15 item 2: state in the checkpoint's precision).
 * At mplus-8b shape the K/V over a question's 12,801-row memory prefix is 3.4 GB at float32; a bf16
 * checkpoint holds it as float16 (kvFormatOf). What makes that safe to claim:
 *   - the cache really is float16, bit for bit the float32 engine's keys/values rounded to nearest
 *     even where the inputs agree (layer 0, whose inputs do not depend on attention);
 *   - injections are untouched (they keep no cache): the same θ, bit for bit;
 *   - the question is the same question: the same Θ rows retrieved, the same greedy tokens, logits
 *     within a measured bound; and a prefill in blocks (past K/V fed back as float16) is close to one
 *     pass;
 *   - the default follows the checkpoint: float16 for bf16, float32 for f32 (golden cases, traces).
 */
import * as assert from 'assert';
import { relDiff } from '../helpers/numeric';
import { MPlusEngine, Question } from '../../src/engine/mplus';
import { isHalf } from '../../src/engine/executor';
import type { KvFormat } from '../../src/engine/graphs/layer';
import { f32ToF16Bits } from '../../src/model/dtype';
import { writeFixture } from '../../tools/fixture';
import { fixtureWorkspace } from '../helpers/fixtureWorkspace';
import { rmDir, tmpDir } from '../helpers/tmp';

function argmax(x: Float32Array): number {
  let best = 0;
  for (let i = 1; i < x.length; i++) if (x[i] > x[best]) best = i;
  return best;
}

describe('a question’s K/V cache at half width', function () {
  this.timeout(300000);
  const ws = fixtureWorkspace('halfkv', { model: { preset: 'small', seed: 11 } });
  const question = Array.from({ length: 40 }, (_, i) => 1000 + ((i * 7919) % 5000));
  const thetas = new Map<string, Float32Array[]>();

  async function ask(kvFormat: KvFormat, scratchBytes?: number): Promise<{ q: Question; tokens: number[]; steps: Float32Array[] }> {
    const e = await MPlusEngine.load(ws.model, { seed: 5, kvFormat, scratchBytes });
    try {
      assert.strictEqual(e.kvFormat, kvFormat);
      const mem = e.initialMemory();
      for (let k = 0; k < 3; k++) await e.inject(mem, Array.from({ length: 40 }, (_, i) => 2000 + k * 50 + i));
      thetas.set(kvFormat + (scratchBytes ?? ''), Array.from({ length: e.config.numLayers }, (_, l) => Float32Array.from(mem.stm(l))));
      const q = await e.prefill(mem, question);
      const kv0 = q.kv.map((x) => ({ k: x.k, v: x.v })); // prefill's cache, before decoding extends it
      const tokens: number[] = [];
      const steps: Float32Array[] = [];
      let logits = q.logits;
      for (let t = 0; t < 4; t++) {
        tokens.push(argmax(logits));
        logits = await e.decode(q, tokens[t]);
        steps.push(logits);
      }
      return { q: { ...q, kv: kv0 }, tokens, steps };
    } finally {
      await e.close();
    }
  }

  it('holds float16 K/V that round the float32 ones, and answers the same question', async () => {
    const full = await ask('f32');
    const half = await ask('f16');
    assert.deepStrictEqual(thetas.get('f16'), thetas.get('f32'), 'injections are untouched: the same θ, bit for bit');
    for (let l = 0; l < half.q.kv.length; l++) {
      assert.ok(isHalf(half.q.kv[l].k) && isHalf(half.q.kv[l].v), `layer ${l} K/V are float16`);
      assert.ok(!isHalf(full.q.kv[l].k), 'the f32 engine keeps float32');
      assert.deepStrictEqual(half.q.kv[l].k.dims, full.q.kv[l].k.dims);
      assert.strictEqual(half.q.kv[l].k.data.byteLength * 2, full.q.kv[l].k.data.byteLength, 'half the bytes');
    }
    // Layer 0's keys/values come from the embeddings and the memory rows alone: exactly rounded.
    for (const which of ['k', 'v'] as const) {
      const f = full.q.kv[0][which].data as Float32Array;
      const h = half.q.kv[0][which].data as Uint16Array;
      let mismatches = 0;
      for (let i = 0; i < f.length; i++) if (h[i] !== f32ToF16Bits(f[i])) mismatches++;
      assert.strictEqual(mismatches, 0, `layer 0 ${which}: ${mismatches} of ${f.length} values are not the float32 value rounded to nearest even`);
    }
    assert.deepStrictEqual(half.q.retrieved, full.q.retrieved, 'the same Θ rows were retrieved');
    assert.deepStrictEqual(half.tokens, full.tokens, 'the same greedy tokens');
    const d0 = relDiff(half.q.logits, full.q.logits);
    const dn = Math.max(...half.steps.map((s, i) => relDiff(s, full.steps[i])));
    // float16 keeps 11 significant bits (relative rounding 2^-12 ≈ 2.4e-4 per value)
    if (process.env.MPLUS_TEST_VERBOSE) console.log(`      logits: ${d0.toExponential(2)} after prefill, ${dn.toExponential(2)} decoding`);
    assert.ok(d0 < 5e-3 && dn < 5e-3, `logits differ by ${d0.toExponential(2)} after prefill, ${dn.toExponential(2)} at most while decoding`);
  });

  it('a prefill in blocks (float16 past fed back) equals one pass', async () => {
    const one = await ask('f16');
    const blocks = await ask('f16', 16 * 1024); // 4-row layer blocks
    assert.deepStrictEqual(blocks.q.retrieved, one.q.retrieved);
    assert.deepStrictEqual(blocks.tokens, one.tokens);
    // later blocks read the earlier blocks' keys/values back at float16
    assert.ok(relDiff(blocks.q.logits, one.q.logits) < 5e-3, `logits ${relDiff(blocks.q.logits, one.q.logits)}`);
    for (let l = 0; l < one.q.kv.length; l++) assert.deepStrictEqual(blocks.q.kv[l].k.dims, one.q.kv[l].k.dims);
  });

  it('follows the checkpoint by default: float16 for bf16, float32 for f32', async () => {
    const bf16 = tmpDir('halfkv-bf16');
    try {
      writeFixture({ out: bf16, preset: 'tiny', seed: 5, dtype: 'bf16' });
      for (const [dir, want] of [[bf16, 'f16'], [ws.model, 'f32']] as const) {
        const e = await MPlusEngine.load(dir, { seed: 1 });
        try {
          assert.strictEqual(e.kvFormat, want, dir);
          const q = await e.prefill(e.initialMemory(e.stateFormat()), [5, 6, 7]);
          assert.strictEqual(isHalf(q.kv[0].k), want === 'f16');
          await e.decode(q, 8);
          assert.strictEqual(q.mem[0].k.dims[1] + q.kv[0].k.dims[1], q.position, 'θ ‖ the question and the decoded token: every position');
          assert.strictEqual(isHalf(q.mem[0].k), want === 'f16', 'θ K/V in the same width');
        } finally {
          await e.close();
        }
      }
    } finally {
      rmDir(bf16);
    }
  });
});
