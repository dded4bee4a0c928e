/**
 * Block-wise symmetric weight quantization in the layout ORT's MatMulNBits reads (com.microsoft,
 * contrib op): a weight W [N, K] (PyTorch Linear layout, out × in) becomes
 *   blob   [N, K/block, block·bits/8] uint8 — q = round(w / s) + zp, zp = 2^(bits−1) (the op's
 *          default zero point when none is given), for 4 bits two per byte, low nibble first;
 *   scales [N · K/block] float32 — s = max|w| over the block / (2^(bits−1) − 1).
 * So every element is reconstructed within s/2 (half a step), and ±max|w| exactly.
 */
import { DType } from '../../model/dtype';

export interface Quantized {
  blob: Uint8Array;
  scales: Float32Array;
}

/** Why a [N, K] weight of `dtype` cannot be quantized at `block` (null when it can). */
export function unquantizableReason(dtype: DType, shape: number[], block: number): string | null {
  if (dtype !== 'F32' && dtype !== 'BF16' && dtype !== 'F16') return `dtype ${dtype} is not a float type this quantizer reads`;
  if (shape.length !== 2) return `shape [${shape.join(', ')}] is not a 2-D linear weight`;
  const k = shape[1];
  if (k % block !== 0) return `inner dimension ${k} is not divisible by the block size ${block}`;
  return null;
}

export function blobBytes(n: number, k: number, bits: number, block: number): number {
  return n * (k / block) * ((block * bits) / 8);
}

/** Quantizes `rows` rows of width k (row-major float32). */
export function quantizeRows(w: Float32Array, rows: number, k: number, bits: 4 | 8, block: number): Quantized {
  if (k % block !== 0 || w.length !== rows * k) throw new RangeError(`quantizeRows: ${w.length} values are not ${rows} rows of ${k} in blocks of ${block}`);
  const nb = k / block;
  const blockBytes = (block * bits) / 8;
  const blob = new Uint8Array(rows * nb * blockBytes);
  const scales = new Float32Array(rows * nb);
  const qmax = 2 ** (bits - 1) - 1;
  const zp = 2 ** (bits - 1);
  for (let b = 0; b < rows * nb; b++) {
    const o = b * block;
    let amax = 0;
    for (let i = 0; i < block; i++) {
      const a = Math.abs(w[o + i]);
      if (a > amax) amax = a;
    }
    // fround: the op multiplies by the float32 scale, so round against exactly that value.
    const s = Math.fround(amax / qmax);
    scales[b] = s;
    const inv = s > 0 ? 1 / s : 0;
    const ob = b * blockBytes;
    for (let i = 0; i < block; i++) {
      let q = Math.round(w[o + i] * inv);
      if (q > qmax) q = qmax;
      else if (q < -qmax) q = -qmax;
      q += zp;
      if (bits === 8) blob[ob + i] = q;
      else blob[ob + (i >> 1)] |= i & 1 ? q << 4 : q;
    }
  }
  return { blob, scales };
}

/** The float32 weights a quantized [rows, k] block array stands for (what MatMulNBits computes with). */
export function dequantizeRows(q: Quantized, rows: number, k: number, bits: 4 | 8, block: number): Float32Array {
  const nb = k / block;
  const blockBytes = (block * bits) / 8;
  const zp = 2 ** (bits - 1);
  const out = new Float32Array(rows * k);
  for (let b = 0; b < rows * nb; b++) {
    const s = q.scales[b];
    const ob = b * blockBytes;
    for (let i = 0; i < block; i++) {
      const v = bits === 8 ? q.blob[ob + i] : (q.blob[ob + (i >> 1)] >> (i & 1 ? 4 : 0)) & 0xf;
      out[b * block + i] = (v - zp) * s;
    }
  }
  return out;
}
