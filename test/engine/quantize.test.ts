/**
 * Block-wise quantization: the round-trip error bound every element must meet, and that ORT's
 * MatMulNBits reads our layout as intended (its product equals a Gemm on the dequantized weights).
 */
import * as assert from 'assert';
import { OrtExecutor } from '../../src/engine/executor';
import { GraphBuilder, OnnxDType } from '../../src/engine/onnx/builder';
import { dequantizeRows, quantizeRows, unquantizableReason } from '../../src/engine/quant/blockwise';
import { Rng } from '../../src/util/rng';

function randomWeights(n: number, k: number, seed: number): Float32Array {
  const rng = new Rng(seed);
  // Mixed magnitudes per row, one outlier per row, and an all-zero block: the cases scales meet.
  const w = new Float32Array(n * k);
  for (let r = 0; r < n; r++) {
    const mag = 0.01 * (1 + (r % 7));
    for (let i = 0; i < k; i++) w[r * k + i] = (rng.float() * 2 - 1) * mag;
    w[r * k + ((r * 13) % k)] = 10 * mag * (r % 2 ? 1 : -1);
  }
  w.fill(0, 0, 32);
  return w;
}

describe('block-wise quantization', () => {
  for (const bits of [8, 4] as const) {
    for (const block of [32, 128]) {
      it(`${bits}-bit, block ${block}: every weight within half a step of its block's scale`, () => {
        const n = 24;
        const k = 256;
        const w = randomWeights(n, k, bits * 1000 + block);
        const q = quantizeRows(w, n, k, bits, block);
        assert.strictEqual(q.blob.length, (n * k * bits) / 8);
        assert.strictEqual(q.scales.length, (n * k) / block);
        const d = dequantizeRows(q, n, k, bits, block);
        const qmax = 2 ** (bits - 1) - 1;
        for (let b = 0; b < (n * k) / block; b++) {
          let amax = 0;
          for (let i = 0; i < block; i++) amax = Math.max(amax, Math.abs(w[b * block + i]));
          assert.ok(Math.abs(q.scales[b] - amax / qmax) <= 1e-6 * amax, `block ${b}: scale ${q.scales[b]} vs ${amax / qmax}`);
          for (let i = 0; i < block; i++) {
            const j = b * block + i;
            const err = Math.abs(d[j] - w[j]);
            assert.ok(err <= q.scales[b] / 2 + 1e-6 * amax, `element ${j}: |${d[j]} − ${w[j]}| = ${err} > half step ${q.scales[b] / 2}`);
            // The block's extreme is exact (up to float32 rounding of the scale).
            if (Math.abs(w[j]) === amax) assert.ok(err <= 1e-6 * amax, `extreme ${j} off by ${err}`);
          }
        }
        assert.deepStrictEqual([...d.subarray(0, 32)], new Array(32).fill(0), 'an all-zero block stays zero');
      });
    }
  }

  it('names why a tensor cannot be quantized', () => {
    assert.strictEqual(unquantizableReason('BF16', [64, 128], 32), null);
    assert.match(unquantizableReason('F32', [64, 96], 64) ?? '', /inner dimension 96 is not divisible by the block size 64/);
    assert.match(unquantizableReason('I8', [64, 128], 32) ?? '', /dtype I8/);
    assert.match(unquantizableReason('F32', [2, 64, 128], 32) ?? '', /not a 2-D/);
  });

  for (const bits of [8, 4] as const) {
    it(`ORT MatMulNBits (${bits} bits) computes x·Wᵀ with exactly the weights dequantizeRows gives`, async () => {
      const n = 48;
      const k = 128;
      const block = 32;
      const w = randomWeights(n, k, 7 + bits);
      const q = quantizeRows(w, n, k, bits, block);
      const deq = dequantizeRows(q, n, k, bits, block);
      const g = new GraphBuilder('nbits');
      const x = g.input('x', OnnxDType.FLOAT, ['m', k]);
      const blob = g.constU8('blob', q.blob, [n, k / block, (block * bits) / 8]);
      const scales = g.constF32('scales', q.scales, [q.scales.length]);
      g.output(g.msOp('MatMulNBits', [x, blob, scales], { K: k, N: n, bits, block_size: block }), 'y', OnnxDType.FLOAT, ['m', n]);
      const s = await new OrtExecutor().createSession('nbits', g.toBytes(), process.cwd());
      const m = 3;
      const xs = new Float32Array(m * k).map((_, i) => Math.sin(i * 0.37));
      const y = (await s.run({ x: { data: xs, dims: [m, k] } })).y.data;
      await s.release();
      let worst = 0;
      let scale = 0;
      for (let r = 0; r < m; r++) {
        for (let c = 0; c < n; c++) {
          let ref = 0;
          for (let i = 0; i < k; i++) ref += xs[r * k + i] * deq[c * k + i];
          worst = Math.max(worst, Math.abs(y[r * n + c] - ref));
          scale = Math.max(scale, Math.abs(ref));
        }
      }
      // Only summation order differs: a wrong nibble order or block layout errs by whole steps.
      assert.ok(worst <= 1e-5 * scale, `max |Δ| ${worst} of ${scale}`);
    });
  }
});
