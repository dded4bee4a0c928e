/**
 * The memory a checkpoint takes once loaded at a precision (engine/quant/residentSize.ts), checked
 * against what the quantizer really writes — every linear weight's bytes in a real cache file —
 * and used by the requirements check: a model too big for a machine at f32 fits it at int4.
 */
import * as assert from 'assert';
import * as path from 'path';
import { requirementLines } from '../../src/extension/requirements';
import { Precision } from '../../src/engine/quant/precision';
import { residentBytes } from '../../src/engine/quant/residentSize';
import { linearWeightNames, loadQuantizedWeights } from '../../src/engine/quant/weightCache';
import { Checkpoint } from '../../src/model/checkpoint';
import { modelResidentBytes } from '../../src/sidecar/modelSize';
import { fixtureWorkspace } from '../helpers/fixtureWorkspace';

const numel = (shape: number[]) => shape.reduce((a, b) => a * b, 1);

describe('resident size of a model at a precision', function () {
  this.timeout(120000);
  const ws = fixtureWorkspace('resident', { model: { preset: 'tiny', seed: 11, dtype: 'bf16' } });

  for (const [precision, block] of [['int8', 32], ['int4', 32], ['int8', 64]] as Array<[Precision, number]>) {
    it(`${precision}, block ${block}: linear weights as the quantizer writes them, the rest as float32, no token table`, () => {
      const ckpt = Checkpoint.open(ws.model);
      try {
        const q = loadQuantizedWeights(ckpt, { precision, block, root: ws.fresh('cache') });
        let linear = 0;
        for (const name of linearWeightNames(ckpt)) {
          const e = q.entry(name)!;
          // raw fallbacks are held as float32 after ORT folds their cast (the file keeps bf16)
          linear += e.kind === 'nbits' ? e.blob[1] + e.scales[1] : numel(e.dims) * 4;
        }
        if (block === 64) assert.ok(q.fallbacks.length > 0, 'block 64 leaves the 32-wide retriever projections unquantized');
        // θ and Θ's shipped values in the engine's state format: bf16 for this bf16 checkpoint
        const rows = [ckpt.weights.memory, ...(ckpt.weights.ltm ?? []).map((t) => t.values)];
        assert.strictEqual(ckpt.config.torchDtype, 'bfloat16');
        const memoryRows = rows.reduce((s, n) => s + numel(ckpt.files.info(n).shape) * 2, 0);
        const linearSet = new Set(linearWeightNames(ckpt));
        // the encoder retriever's query projection is trained, shipped and never read
        const unused = ckpt.files.names().filter((n) => n.includes('encoder_query_proj'));
        assert.ok(unused.length > 0, 'the fixture ships encoder_query_proj like mplus-8b');
        const other = ckpt.files.names().filter((n) => !linearSet.has(n) && !rows.includes(n) && n !== ckpt.weights.embed && !unused.includes(n))
          .reduce((s, n) => s + numel(ckpt.files.info(n).shape) * 4, 0);
        const c = ckpt.config;
        const thetaKv = c.numLayers * c.stmSize * 2 * c.numKvHeads * c.headDim * 2; // float16 for this bf16 checkpoint
        // memory rows are on disk (the sidecar's store): reported, not held
        assert.deepStrictEqual(residentBytes(ckpt, precision, block), { linear, memoryRows, other, thetaKv, total: linear + other + thetaKv });
      } finally {
        ckpt.close();
      }
    });
  }

  it('f32 and bf16 widen every weight to float32; int8 and int4 hold less, in that order', () => {
    const at = (p: Precision) => modelResidentBytes(ws.model, p)!;
    const ckpt = Checkpoint.open(ws.model);
    const rows = [ckpt.weights.memory, ...(ckpt.weights.ltm ?? []).map((t) => t.values)];
    const c = ckpt.config;
    const thetaKv = c.numLayers * c.stmSize * 2 * c.numKvHeads * c.headDim * 2; // kept after a question, float16
    const widened = ckpt.files.names().filter((n) => n !== ckpt.weights.embed && !rows.includes(n) && !n.includes('encoder_query_proj'))
      .reduce((s, n) => s + numel(ckpt.files.info(n).shape) * 4, thetaKv);
    ckpt.close();
    assert.strictEqual(at('f32'), widened);
    assert.strictEqual(at('bf16'), widened);
    assert.ok(at('int4') < at('int8') && at('int8') < at('f32'), `${at('int4')} < ${at('int8')} < ${at('f32')}`);
    assert.strictEqual(modelResidentBytes(path.join(ws.root, 'no-such-model'), 'int8'), null);
  });

  it('the requirements check: a machine too small at f32 is enough at int4', () => {
    const f32 = modelResidentBytes(ws.model, 'f32')!;
    const int4 = modelResidentBytes(ws.model, 'int4')!;
    const mem = Math.round((f32 + int4) / 2) * 1.2; // between what each needs (weights × 1.2)
    const check = (precision: Precision, modelBytes: number) => requirementLines({
      modelBytes, precision, device: null, deviceSetting: 'cpu',
      machine: { totalMemBytes: mem, freeMemBytes: mem, freeDiskBytes: null }, estimate: null, rememberedRate: null,
    });
    assert.match(check('f32', f32).warnings.join('\n'), /more than this machine has: it will not run here/);
    const ok = check('int4', int4);
    assert.deepStrictEqual(ok.warnings, []);
    assert.match(ok.lines[0], /^Model: \d+ MB of weights at int4; /);
  });
});
