/**
 * The state and Θ-bookkeeping file format: a JSON directory of named typed arrays.
 *
 *   "MPSTATE1" | u32 headLen | {"meta":…, "arrays":[{name, kind, offset, length}]} | pad to 8 |
 *   array bytes, each starting on an 8-byte boundary (offsets relative to the data start)
 *
 * Array names are `<layer>.<column>`. The state file holds, per layer, stmRef stmAges stmSrc
 * cacheRef cacheKeyRef cacheAges cacheSrc (refs: rowRefs.ts) and meta.updateStep; the Θ file
 * ltmAges ltmRf ltmSrc ltmSeg ltmRow. Source ids and segment references are int32 on disk and
 * float64 in memory (integers well inside 2^31).
 */
import { FrameError, FrameFormat, encodeFrameHead, parseFrameHead } from '../../util/framedFile';
import { StoreCorruptError } from './errors';

const FRAME: FrameFormat = { magic: 'MPSTATE1', align: 8, maxHeaderBytes: 256 * 2 ** 20, what: 'state file' };

type Kind = 'f64' | 'f32' | 'i32';
export type NamedArray = { name: string; kind: Kind; data: Float64Array | Float32Array | Int32Array };

export function packArrays(meta: object, arrays: NamedArray[]): Buffer {
  const dirEntries: Array<{ name: string; kind: string; offset: number; length: number }> = [];
  let off = 0;
  for (const a of arrays) {
    const len = a.data.byteLength;
    dirEntries.push({ name: a.name, kind: a.kind, offset: off, length: len });
    off += Math.ceil(len / 8) * 8;
  }
  const head = encodeFrameHead(FRAME, { meta, arrays: dirEntries });
  const headLen = head.length;
  const out = Buffer.alloc(headLen + off);
  head.copy(out, 0);
  arrays.forEach((a, i) => Buffer.from(a.data.buffer, a.data.byteOffset, a.data.byteLength).copy(out, headLen + dirEntries[i].offset));
  return out;
}

/** Typed reads of a packed file; every getter names the file when an array is missing. */
export interface PackedArrays {
  meta: Record<string, unknown>;
  f64(name: string): Float64Array;
  f32(name: string): Float32Array;
  /** int32 on disk → float64. */
  i32(name: string): Float64Array;
}

export function unpackArrays(file: string, b: Buffer): PackedArrays {
  let head: { meta: Record<string, unknown>; arrays: Array<{ name: string; offset: number; length: number }> };
  let base: number;
  try {
    const f = parseFrameHead(b, FRAME);
    head = f.header as unknown as typeof head;
    base = f.dataStart;
  } catch (e) {
    throw e instanceof FrameError ? new StoreCorruptError(file, e.message) : e;
  }
  const byName = new Map(head.arrays.map((a) => [a.name, a]));
  // Copies: the typed arrays must be aligned and must not pin the file's buffer.
  const bytes = (name: string) => {
    const a = byName.get(name);
    if (!a) throw new StoreCorruptError(file, `array ${name} is missing`);
    return b.buffer.slice(b.byteOffset + base + a.offset, b.byteOffset + base + a.offset + a.length);
  };
  return {
    meta: head.meta,
    f64: (n) => new Float64Array(bytes(n)),
    f32: (n) => new Float32Array(bytes(n)),
    i32: (n) => Float64Array.from(new Int32Array(bytes(n))),
  };
}

export const asI32 = (a: ArrayLike<number>): Int32Array => Int32Array.from(a);
