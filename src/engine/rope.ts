/**
 * Rotary position tables as transformers' LlamaRotaryEmbedding computes them, in float32:
 * inv_freq from rope_theta and head_dim with the "llama3" frequency rescaling, then
 * cos/sin(position · inv_freq) duplicated over both halves of the head ([cat(f, f)]).
 * Every intermediate is rounded to float32 (Math.fround) because the reference runs in float32;
 * with `bf16InvFreq` inv_freq is first rounded to bf16 (⚑ `model.to(torch.bfloat16)` casts the
 * buffer too, and the forward upcasts it again).
 */
import { MPlusConfig } from '../model/config';
import { roundToBf16 } from '../model/dtype';

const fr = Math.fround;

export function ropeInvFreq(cfg: MPlusConfig, bf16InvFreq: boolean): Float32Array {
  const dim = cfg.headDim;
  const half = dim / 2;
  const inv = new Float32Array(half);
  for (let i = 0; i < half; i++) inv[i] = fr(1 / fr(Math.pow(cfg.ropeTheta, fr((2 * i) / dim))));
  const rs = cfg.ropeScaling;
  if (rs.ropeType === 'llama3') {
    const lowWavelen = rs.originalMaxPositionEmbeddings / rs.lowFreqFactor;
    const highWavelen = rs.originalMaxPositionEmbeddings / rs.highFreqFactor;
    for (let i = 0; i < half; i++) {
      const f = inv[i];
      const wavelen = fr((2 * Math.PI) / f);
      let v = wavelen > lowWavelen ? fr(f / rs.factor) : f;
      const medium = !(wavelen < highWavelen) && !(wavelen > lowWavelen);
      if (medium) {
        const smooth = fr((fr(rs.originalMaxPositionEmbeddings / wavelen) - rs.lowFreqFactor) / (rs.highFreqFactor - rs.lowFreqFactor));
        v = fr(fr(fr(fr(1 - smooth) * v) / rs.factor) + fr(smooth * v));
      }
      inv[i] = v;
    }
  }
  if (bf16InvFreq) for (let i = 0; i < half; i++) inv[i] = roundToBf16(inv[i]);
  return inv;
}

/** cos and sin tables [count, headDim] for positions start..start+count−1. */
export function ropeTables(invFreq: Float32Array, start: number, count: number): { cos: Float32Array; sin: Float32Array } {
  const half = invFreq.length;
  const dim = half * 2;
  const cos = new Float32Array(count * dim);
  const sin = new Float32Array(count * dim);
  for (let t = 0; t < count; t++) {
    const pos = start + t;
    for (let i = 0; i < half; i++) {
      const a = fr(pos * invFreq[i]);
      const c = Math.cos(a);
      const s = Math.sin(a);
      cos[t * dim + i] = c;
      cos[t * dim + half + i] = c;
      sin[t * dim + i] = s;
      sin[t * dim + half + i] = s;
    }
  }
  return { cos, sin };
}

/** Tables for two runs of positions, one after the other (rows that are not consecutive positions). */
export function concatTables(a: { cos: Float32Array; sin: Float32Array }, b: { cos: Float32Array; sin: Float32Array }): { cos: Float32Array; sin: Float32Array } {
  const cos = new Float32Array(a.cos.length + b.cos.length);
  const sin = new Float32Array(a.sin.length + b.sin.length);
  cos.set(a.cos);
  cos.set(b.cos, a.cos.length);
  sin.set(a.sin);
  sin.set(b.sin, a.sin.length);
  return { cos, sin };
}
