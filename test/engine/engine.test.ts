/**
 * The engine on real ONNX Runtime sessions over fixture checkpoints written to real folders:
 * dtype paths, sharding, replayable drops, sampling and stop tokens, and clear errors.
 */
import * as assert from 'assert';
import * as fs from 'fs';
import * as path from 'path';
import { MPlusEngine } from '../../src/engine/mplus';
import { stateJson } from '../../tools/trace';
import { writeFixture } from '../../tools/fixture';
import { TensorFiles, writeSafetensors } from '../../src/model/safetensors';
import { fromFloat32 } from '../../src/model/dtype';
import { rmDir, tmpDir } from '../helpers/tmp';

const CHUNK = [5, 17, 33, 200, 41, 9, 250, 3, 77, 120, 64, 18, 99, 1, 2, 3, 4, 5];

function maxAbsDiff(a: ArrayLike<number>, b: ArrayLike<number>): number {
  assert.strictEqual(a.length, b.length);
  let m = 0;
  for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs(a[i] - b[i]));
  return m;
}

async function runScript(dir: string, opts: { bf16Rope?: boolean } = {}) {
  const e = await MPlusEngine.load(dir, { seed: 3, ...opts });
  try {
    const L = e.config.numLayers;
    const drop = (k: number) => Array.from({ length: L }, (_, l) => Array.from({ length: e.config.numTokens }, (_, i) => (i * 3 + l + k) % e.config.stmSize).sort((a, b) => a - b));
    const mem = e.initialMemory();
    const deltas: Float32Array[] = [];
    for (let k = 0; k < 5; k++) deltas.push(...(await e.inject(mem, CHUNK.slice(k, k + 10 + k), { drop: drop(k) })).delta);
    const q = await e.prefill(mem, [7, 8, 9, 10]);
    const next = await e.decode(q, 11);
    return { deltas, logits: q.logits, next, retrieved: q.retrieved, state: stateJson(mem) };
  } finally {
    await e.close();
  }
}

describe('engine on fixture checkpoints', function () {
  let root: string;
  before(() => {
    root = tmpDir('engine');
    writeFixture({ out: path.join(root, 'tiny'), preset: 'tiny', seed: 11 });
  });
  after(() => rmDir(root));

  it('a sharded checkpoint computes exactly what the single-file one does', async () => {
    writeFixture({ out: path.join(root, 'sharded'), preset: 'tiny', seed: 11, shardBytes: 64 * 1024 });
    assert.ok(fs.existsSync(path.join(root, 'sharded', 'model.safetensors.index.json')));
    assert.ok(fs.readdirSync(path.join(root, 'sharded')).filter((f) => f.endsWith('.safetensors')).length > 3);
    const a = await runScript(path.join(root, 'tiny'));
    const b = await runScript(path.join(root, 'sharded'));
    assert.deepStrictEqual(b.logits, a.logits);
    assert.deepStrictEqual(b.state, a.state);
  });

  it('bf16 weights run through the in-graph cast exactly like the same values stored as f32', async () => {
    const bf = path.join(root, 'bf16');
    writeFixture({ out: bf, preset: 'tiny', seed: 11, dtype: 'bf16' });
    // The same (bf16-rounded) values, widened to F32 on disk.
    const f32 = path.join(root, 'bf16-as-f32');
    fs.mkdirSync(f32);
    fs.copyFileSync(path.join(bf, 'config.json'), path.join(f32, 'config.json'));
    const files = TensorFiles.open(bf);
    writeSafetensors(path.join(f32, 'model.safetensors'), files.names().map((n) => ({
      name: n, dtype: 'F32', shape: files.info(n).shape, data: fromFloat32(files.readF32(n), 'F32'),
    })));
    files.close();
    const a = await runScript(bf, { bf16Rope: false });
    const b = await runScript(f32, { bf16Rope: false });
    assert.ok(maxAbsDiff(a.logits, b.logits) <= 1e-5, `logits differ by ${maxAbsDiff(a.logits, b.logits)}`);
    assert.deepStrictEqual(a.retrieved, b.retrieved);
    // and the bf16 RoPE quirk (on by default for bfloat16 checkpoints) is a real, small change
    const c = await runScript(bf);
    const dq = maxAbsDiff(a.logits, c.logits);
    assert.ok(dq > 0 && dq < 1, `bf16 RoPE changes logits a little (${dq})`);
  });

  it('the random drop replays from its seed and differs across seeds', async () => {
    const dir = path.join(root, 'tiny');
    const run = async (seed: number) => {
      const e = await MPlusEngine.load(dir, { seed });
      const r = await e.inject(e.initialMemory(), CHUNK);
      await e.close();
      return r.drop;
    };
    const a = await run(5);
    assert.deepStrictEqual(await run(5), a);
    assert.notDeepStrictEqual(await run(6), a);
    for (const l of a) assert.strictEqual(new Set(l).size, 8);
  });

  it('generation: greedy is deterministic, stop tokens end the answer, sampling replays from its seed', async () => {
    const e = await MPlusEngine.load(path.join(root, 'tiny'), { seed: 1 });
    try {
      const mem = e.initialMemory();
      await e.inject(mem, CHUNK);
      const collect = async (opts: Parameters<MPlusEngine['generate']>[2]) => {
        const out: number[] = [];
        for await (const s of e.generate(mem, [3, 4, 5], opts)) out.push(s.token);
        return out;
      };
      const greedy = await collect({ maxTokens: 6, stop: [] });
      assert.strictEqual(greedy.length, 6);
      assert.deepStrictEqual(await collect({ maxTokens: 6, stop: [] }), greedy);
      const stopped = await collect({ maxTokens: 6, stop: [greedy[2]] });
      assert.deepStrictEqual(stopped, greedy.slice(0, greedy.indexOf(greedy[2]) + 1));
      const s1 = await collect({ maxTokens: 6, stop: [], temperature: 1.5, topP: 0.95, seed: 42 });
      assert.deepStrictEqual(await collect({ maxTokens: 6, stop: [], temperature: 1.5, topP: 0.95, seed: 42 }), s1);
      const others = await Promise.all([43, 44, 45].map((seed) => collect({ maxTokens: 6, stop: [], temperature: 1.5, topP: 0.95, seed })));
      assert.ok(others.some((o) => o.join() !== s1.join()), 'different seeds sample different answers');
      // a nucleus that keeps only the top token is greedy
      assert.deepStrictEqual(await collect({ maxTokens: 6, stop: [], temperature: 1, topP: 1e-9, seed: 1 }), greedy);
    } finally {
      await e.close();
    }
  });

  it('rejects bad input clearly and keeps memory intact', async () => {
    const e = await MPlusEngine.load(path.join(root, 'tiny'), { seed: 1 });
    try {
      const mem = e.initialMemory();
      const before = JSON.stringify(stateJson(mem));
      await assert.rejects(e.inject(mem, [1, 2, 999]), /token id 999 is outside the vocabulary 0..255/);
      await assert.rejects(e.inject(mem, [1, 2, 3], { drop: [[0, 1]] }), /drop plan has 1 layers/);
      await assert.rejects(e.inject(mem, [1, 2, 3], { drop: [[0], [0], [0]] }), /expected K=8/);
      await assert.rejects(e.inject(mem, []), /empty chunk/);
      await assert.rejects(e.prefill(mem, []), /empty question/);
      assert.strictEqual(JSON.stringify(stateJson(mem)), before);
    } finally {
      await e.close();
    }
  });

  it('the fixture writer is deterministic per seed', () => {
    const a = path.join(root, 'again');
    writeFixture({ out: a, preset: 'tiny', seed: 11 });
    const x = fs.readFileSync(path.join(root, 'tiny', 'model.safetensors'));
    assert.ok(x.equals(fs.readFileSync(path.join(a, 'model.safetensors'))));
    writeFixture({ out: path.join(root, 'other'), preset: 'tiny', seed: 12 });
    assert.ok(!x.equals(fs.readFileSync(path.join(root, 'other', 'model.safetensors'))));
  });
});
