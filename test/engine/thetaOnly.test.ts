/**
 * θ only (Θ off, MemoryLLM) on real ORT sessions: after many injections — several merge periods —
 * Θ is exactly what the checkpoint shipped and the cache is empty, θ evolved exactly as with Θ on
 * (θ never depends on Θ), and a question computes exactly what it computes on a memory with LTM
 * disabled by construction: that θ over the checkpoint's own Θ, nothing cached. The same
 * question over M+'s memory differs: Θ is what the switch turns off.
 */
import * as assert from 'assert';
import * as path from 'path';
import { MPlusEngine } from '../../src/engine/mplus';
import { MemoryState } from '../../src/memory/state';
import { RowBuffer, Column } from '../../src/memory/rows';
import { stateJson } from '../../tools/trace';
import { writeFixture } from '../../tools/fixture';
import { rmDir, tmpDir } from '../helpers/tmp';

describe('θ only (Θ off, MemoryLLM)', function () {
  this.timeout(120000);
  let root: string;
  let e: MPlusEngine;
  before(async () => {
    root = tmpDir('theta-only');
    writeFixture({ out: path.join(root, 'tiny'), preset: 'tiny', seed: 21 });
    e = await MPlusEngine.load(path.join(root, 'tiny'), { seed: 4 });
  });
  after(async () => {
    await e.close();
    rmDir(root);
  });

  it('drops what θ drops, keeps Θ as shipped, and answers as a memory with LTM disabled', async () => {
    const { numLayers: L, numTokens: K, stmSize: N, updateLtmFrequency: F } = e.config;
    const shipped = e.initialMemory();
    const thetaOnly = new MemoryState(shipped.dims, { ...shipped.policy, thetaOnly: true }, e.initialMemory().layers);
    const mplus = e.initialMemory();
    assert.strictEqual(thetaOnly.thetaOnly, true);
    assert.strictEqual(mplus.thetaOnly, false);
    const injections = 4 * F + 1; // several merges with Θ on
    for (let k = 0; k < injections; k++) {
      const chunk = Array.from({ length: 12 }, (_, i) => (k * 31 + i * 7 + 3) % 256);
      const drop = Array.from({ length: L }, (_, l) => Array.from({ length: K }, (_, i) => (i * 3 + l + 5 * k) % N).sort((a, b) => a - b));
      await e.inject(thetaOnly, chunk, { drop, source: k });
      await e.inject(mplus, chunk, { drop, source: k });
    }
    const a = stateJson(thetaOnly);
    const b = stateJson(mplus);
    const s = stateJson(shipped);
    assert.ok(mplus.counts().ltm > shipped.counts().ltm, `with Θ on, merges grew Θ (${shipped.counts().ltm} → ${mplus.counts().ltm})`);
    for (let l = 0; l < L; l++) {
      assert.deepStrictEqual(a.layers[l].stm, b.layers[l].stm, `θ of layer ${l} is the same with Θ off and on`);
      assert.deepStrictEqual(
        [a.layers[l].ltm, a.layers[l].ltm_keys, a.layers[l].ltm_ages, a.layers[l].ltm_rf],
        [s.layers[l].ltm, s.layers[l].ltm_keys, s.layers[l].ltm_ages, s.layers[l].ltm_rf],
        `Θ of layer ${l} is exactly as shipped`,
      );
    }
    assert.deepStrictEqual(thetaOnly.counts(), { stm: N, ltm: shipped.counts().ltm, cache: 0 });
    assert.strictEqual(thetaOnly.updateStep, 0, 'no merge is ever due');

    // LTM disabled by construction: the checkpoint's memory with θ replaced, nothing cached.
    const disabled = e.initialMemory();
    disabled.layers.forEach((m, l) => {
      m.stm = RowBuffer.from(e.config.hiddenSize, mplus.stm(l).slice());
      m.stmAges = Column.from(mplus.layers[l].stmAges.data.slice());
      m.stmSrc = Column.from(mplus.layers[l].stmSrc.data.slice());
    });
    const question = [7, 8, 9, 10, 11];
    const qa = await e.prefill(thetaOnly, question);
    const qd = await e.prefill(disabled, question);
    const qm = await e.prefill(mplus, question);
    assert.deepStrictEqual(qa.retrieved, qd.retrieved);
    assert.deepStrictEqual(qa.logits, qd.logits);
    assert.deepStrictEqual(await e.decode(qa, 12), await e.decode(qd, 12));
    assert.notDeepStrictEqual(qm.logits, qa.logits, 'M+ reads a Θ the θ-only memory does not have');
  });
});
