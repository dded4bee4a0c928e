/**
 * What the storage precision of Θ values does to answers: the same injections on the small
 * fixture, committed to an f32 store and to a q8 (and bf16) store, reopened, and the same question
 * prefilled. Prints the logit differences (recorded in BENCHMARKS.md) and bounds them.
 */
import * as assert from 'assert';
import { MPlusEngine } from '../../src/engine/mplus';
import { Rng } from '../../src/util/rng';
import { ValueFormat } from '../../src/memory/store/codec';
import { MemoryStore } from '../../src/memory/store/store';
import { fixtureWorkspace } from '../helpers/fixtureWorkspace';
import { rmDir, tmpDir } from '../helpers/tmp';

describe('Θ storage precision vs logits (small fixture)', function () {
  this.timeout(300000);
  const ws = fixtureWorkspace('prec', { model: { preset: 'small', seed: 9 } });

  async function logitsWith(format: ValueFormat): Promise<{ logits: Float32Array; ltmRows: number }> {
    const engine = await MPlusEngine.load(ws.model, { seed: 4, device: 'cpu' });
    const dir = tmpDir(`prec-${format}`);
    try {
      const opts = { identity: engine.checkpoint.identity(), dims: engine.memoryDims(), policy: engine.memoryPolicy(), valueFormat: format, thetaFormat: 'f32' as const };
      const a = MemoryStore.open(dir, opts, () => engine.initialMemory());
      const rng = new Rng(11);
      for (let i = 0; i < 24; i++) await engine.inject(a.state, Array.from({ length: 48 }, () => 1000 + rng.int(20000)));
      a.store.commit(a.state, a.sources, {});
      a.store.close();
      const b = MemoryStore.open(dir, opts, () => engine.initialMemory());
      const q = await engine.prefill(b.state, [791, 574, 279, 3335, 315, 420, 12827, 30]);
      const ltmRows = b.state.counts().ltm;
      b.store.close();
      return { logits: q.logits, ltmRows };
    } finally {
      await engine.close();
      rmDir(dir);
    }
  }

  it('q8 and bf16 Θ values move the logits by a small, printed amount', async () => {
    const ref = await logitsWith('f32');
    assert.ok(ref.ltmRows > 64, `Θ must exceed R so retrieval reads stored rows (${ref.ltmRows})`);
    let maxRef = 0;
    for (const x of ref.logits) maxRef = Math.max(maxRef, Math.abs(x));
    for (const fmt of ['bf16', 'q8'] as ValueFormat[]) {
      const got = await logitsWith(fmt);
      let maxAbs = 0;
      let top = 0;
      for (let i = 0; i < got.logits.length; i++) maxAbs = Math.max(maxAbs, Math.abs(got.logits[i] - ref.logits[i]));
      const argmax = (a: Float32Array) => a.reduce((bi, x, i) => (x > a[bi] ? i : bi), 0);
      top = Number(argmax(got.logits) === argmax(ref.logits));
      console.log(`      Θ ${fmt}: ${got.ltmRows} rows/layer, max |Δlogit| ${maxAbs.toExponential(2)} (${((100 * maxAbs) / maxRef).toFixed(3)}% of max |logit|), same greedy token: ${top ? 'yes' : 'no'}`);
      assert.ok(maxAbs / maxRef < 0.05, `${fmt}: logits moved by ${maxAbs}`);
      assert.ok(maxAbs > 0, `${fmt}: lossy storage must change something — else the test reads no stored rows`);
    }
  });
});
