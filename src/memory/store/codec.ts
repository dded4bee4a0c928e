/**
 * Row codecs for stored memory values. One row = one token's hidden state (d values).
 *   f32  4·d bytes, exact.
 *   bf16 2·d bytes, round-to-nearest-even (what a bf16 checkpoint computes in).
 *   q8   4 + d bytes: a float32 scale (max|x|/127) then d int8s; per-token scaling keeps a row's
 *        relative error ≈ 1/254 of its largest value. Θ only (θ feeds every injection).
 * Decoding is deterministic, so "quantize then decode" is what a reopened store returns, and
 * the live session rounds its rows the same way at commit to stay equal to a reopen.
 */
import { bf16BitsToF32 as bf16ToF32, f32ToBf16Array, f32ToBf16Bits as f32ToBf16 } from '../../model/dtype';

export type ValueFormat = 'f32' | 'bf16' | 'q8';
export const VALUE_FORMATS: ValueFormat[] = ['f32', 'bf16', 'q8'];

export function rowBytes(format: ValueFormat, d: number): number {
  return format === 'f32' ? 4 * d : format === 'bf16' ? 2 * d : 4 + d;
}

/** Encodes n rows of width d into a new buffer. */
export function encodeRows(format: ValueFormat, rows: Float32Array, d: number): Buffer {
  const n = rows.length / d;
  const rb = rowBytes(format, d);
  const out = Buffer.alloc(n * rb);
  if (format === 'f32') {
    Buffer.from(rows.buffer, rows.byteOffset, rows.byteLength).copy(out);
  } else if (format === 'bf16') {
    f32ToBf16Array(rows.subarray(0, n * d), new Uint16Array(out.buffer, out.byteOffset, n * d));
  } else {
    const q = new Int8Array(out.buffer, out.byteOffset, out.length);
    for (let r = 0; r < n; r++) {
      let max = 0;
      for (let j = 0; j < d; j++) max = Math.max(max, Math.abs(rows[r * d + j]));
      const scale = Math.fround(max / 127);
      out.writeFloatLE(scale, r * rb);
      const inv = scale > 0 ? 1 / scale : 0;
      for (let j = 0; j < d; j++) q[r * rb + 4 + j] = Math.max(-127, Math.min(127, Math.round(rows[r * d + j] * inv)));
    }
  }
  return out;
}

/** Decodes one row at `buf[off..]` into `dst[dOff..dOff+d]` (typed-array views when aligned: hot path). */
export function decodeRow(format: ValueFormat, buf: Buffer, off: number, d: number, dst: Float32Array, dOff: number): void {
  const at = buf.byteOffset + off;
  if (format === 'f32') {
    if (at % 4 === 0) dst.set(new Float32Array(buf.buffer, at, d), dOff);
    else for (let j = 0; j < d; j++) dst[dOff + j] = buf.readFloatLE(off + 4 * j);
  } else if (format === 'bf16') {
    const o = new Int32Array(dst.buffer, dst.byteOffset + 4 * dOff, d); // int32: `<< 16` stays a small-int op
    if (at % 2 === 0) {
      const u = new Uint16Array(buf.buffer, at, d);
      for (let j = 0; j < d; j++) o[j] = u[j] << 16;
    } else for (let j = 0; j < d; j++) o[j] = buf.readUInt16LE(off + 2 * j) << 16;
  } else {
    const scale = buf.readFloatLE(off);
    const q = new Int8Array(buf.buffer, at + 4, d);
    for (let j = 0; j < d; j++) dst[dOff + j] = Math.fround(q[j] * scale);
  }
}

/** encode → decode: what the store will give back for these rows. */
export function roundTrip(format: ValueFormat, rows: Float32Array, d: number): Float32Array {
  if (format === 'f32') return rows;
  const enc = encodeRows(format, rows, d);
  const out = new Float32Array(rows.length);
  const rb = rowBytes(format, d);
  for (let r = 0; r < rows.length / d; r++) decodeRow(format, enc, r * rb, d, out, r * d);
  return out;
}
