/**
 * LoRA with quantized base weights, two ways, measured on a checkpoint's real adapters:
 *   unmerged: y = x·Q(W)ᵀ + s·(x·Aᵀ)·Bᵀ   — the base quantized, the adapter in its own precision;
 *   merged:   y = x·Q(W + s·B·A)ᵀ          — the adapter folded in before quantizing.
 * Reported: ‖effective − exact‖_F / ‖exact‖_F over every adapted linear (exact = W + s·B·A).
 * Merging needs one quantized copy per adapter (M+ switches adapters between injection and
 * decoding), so it must win on error by a wide margin to be worth twice the weight memory.
 */
import { Checkpoint } from '../../src/model/checkpoint';
import { dequantizeRows, quantizeRows } from '../../src/engine/quant/blockwise';

export interface LoraMergeError {
  bits: 4 | 8;
  block: number;
  linears: number;
  unmerged: number;
  merged: number;
}

export function loraMergeError(dir: string, bits: 4 | 8, block: number): LoraMergeError {
  const ckpt = Checkpoint.open(dir);
  try {
    const s = ckpt.config.lora.loraAlpha / ckpt.config.lora.r;
    let errU = 0;
    let errM = 0;
    let ref = 0;
    let linears = 0;
    for (const layer of ckpt.weights.layers) {
      for (const lin of [layer.q, layer.k, layer.v, layer.o, layer.gate, layer.up, layer.down]) {
        const [o, i] = ckpt.files.info(lin.base).shape;
        if (i % block) continue;
        const w = ckpt.files.readF32(lin.base);
        const qw = dequantizeRows(quantizeRows(w, o, i, bits, block), o, i, bits, block);
        for (const pair of Object.values(lin.lora)) {
          if (!pair) continue;
          const a = ckpt.files.readF32(pair.a); // [r, i]
          const b = ckpt.files.readF32(pair.b); // [o, r]
          const r = a.length / i;
          const exact = Float32Array.from(w);
          for (let row = 0; row < o; row++) {
            for (let k = 0; k < r; k++) {
              const c = s * b[row * r + k];
              if (c === 0) continue;
              for (let col = 0; col < i; col++) exact[row * i + col] += c * a[k * i + col];
            }
          }
          const qm = dequantizeRows(quantizeRows(exact, o, i, bits, block), o, i, bits, block);
          for (let j = 0; j < exact.length; j++) {
            // unmerged effective weight = Q(W) + sBA, so its error is Q(W) − W
            errU += (qw[j] - w[j]) ** 2;
            errM += (qm[j] - exact[j]) ** 2;
            ref += exact[j] ** 2;
          }
          linears++;
        }
      }
    }
    return { bits, block, linears, unmerged: Math.sqrt(errU / ref), merged: Math.sqrt(errM / ref) };
  } finally {
    ckpt.close();
  }
}
