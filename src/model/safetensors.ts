/**
 * safetensors files, single or sharded (`model.safetensors.index.json`).
 *
 * Layout: u64 little-endian header length H, H bytes of JSON `{name: {dtype, shape,
 * data_offsets: [begin, end]}, "__metadata__"?: {...}}`, then the data buffer; offsets are
 * relative to the buffer start (8 + H). We validate the header against the file before trusting
 * any offset: known dtypes, integral shapes, end − begin = numel × itemsize, every range inside
 * the buffer, no two ranges overlapping, and the buffer exactly covered (a shorter file is a
 * truncated shard). Tensor data is read on demand with positioned reads, never the whole file.
 */
import * as buffer from 'buffer';
import * as fs from 'fs';
import * as path from 'path';
import { DType, DTYPE_BYTES, isDType, toFloat32 } from './dtype';

/** A checkpoint problem, always naming the file and what to do. */
export class CheckpointError extends Error {
  constructor(readonly file: string, problem: string, fix = 're-download or re-export the checkpoint') {
    super(`${file}: ${problem} (${fix})`);
    this.name = 'CheckpointError';
  }
}

export interface TensorInfo {
  name: string;
  dtype: DType;
  shape: number[];
  /** Absolute path of the file holding the tensor. */
  file: string;
  /** Absolute byte offset of the first element in `file`. */
  offset: number;
  byteLength: number;
}

export interface SafetensorsHeader {
  tensors: TensorInfo[];
  metadata: Record<string, string>;
  dataOffset: number;
}

const MAX_HEADER = 100 * 1024 * 1024;
/** Largest single `readSync`: Node takes lengths up to 2^31 − 1; 1 GiB keeps each call well inside. */
const READ_PIECE = 1 << 30;
/** Largest Buffer this runtime allocates (4 GiB on Node 20). */
const MAX_BUFFER = buffer.constants.MAX_LENGTH;

export function numel(shape: number[]): number {
  return shape.reduce((a, b) => a * b, 1);
}

/** Reads and validates one file's header. Throws CheckpointError naming the file. */
export function readSafetensorsHeader(file: string): SafetensorsHeader {
  let fd: number;
  try {
    fd = fs.openSync(file, 'r');
  } catch (e) {
    throw new CheckpointError(file, `cannot open: ${(e as Error).message}`);
  }
  try {
    const size = fs.fstatSync(fd).size;
    if (size < 8) throw new CheckpointError(file, `file is ${size} bytes, too short for a safetensors header`);
    const lenBuf = Buffer.alloc(8);
    fs.readSync(fd, lenBuf, 0, 8, 0);
    const hlen = Number(lenBuf.readBigUInt64LE(0));
    if (hlen > MAX_HEADER || 8 + hlen > size) {
      throw new CheckpointError(file, `header length ${hlen} does not fit in a ${size}-byte file (truncated or not safetensors)`);
    }
    const hbuf = Buffer.alloc(hlen);
    fs.readSync(fd, hbuf, 0, hlen, 8);
    let json: Record<string, unknown>;
    try {
      json = JSON.parse(hbuf.toString('utf8')) as Record<string, unknown>;
    } catch (e) {
      throw new CheckpointError(file, `header is not valid JSON: ${(e as Error).message}`);
    }
    if (!json || typeof json !== 'object' || Array.isArray(json)) throw new CheckpointError(file, 'header is not a JSON object');
    const dataOffset = 8 + hlen;
    const dataLen = size - dataOffset;
    const tensors: TensorInfo[] = [];
    let metadata: Record<string, string> = {};
    for (const [name, raw] of Object.entries(json)) {
      if (name === '__metadata__') {
        metadata = (raw ?? {}) as Record<string, string>;
        continue;
      }
      const t = raw as { dtype?: unknown; shape?: unknown; data_offsets?: unknown };
      if (!t || typeof t !== 'object') throw new CheckpointError(file, `tensor ${name}: entry is not an object`);
      if (!isDType(t.dtype)) throw new CheckpointError(file, `tensor ${name}: unsupported dtype ${JSON.stringify(t.dtype)}`);
      if (!Array.isArray(t.shape) || !t.shape.every((d) => Number.isInteger(d) && d >= 0)) {
        throw new CheckpointError(file, `tensor ${name}: shape ${JSON.stringify(t.shape)} is not a list of non-negative integers`);
      }
      const off = t.data_offsets;
      if (!Array.isArray(off) || off.length !== 2 || !off.every((d) => Number.isInteger(d) && d >= 0) || off[1] < off[0]) {
        throw new CheckpointError(file, `tensor ${name}: data_offsets ${JSON.stringify(off)} are not [begin, end]`);
      }
      const want = numel(t.shape as number[]) * DTYPE_BYTES[t.dtype];
      if (off[1] - off[0] !== want) {
        throw new CheckpointError(file, `tensor ${name}: header says ${off[1] - off[0]} bytes but ${t.dtype}${JSON.stringify(t.shape)} needs ${want}`);
      }
      if (off[1] > dataLen) {
        throw new CheckpointError(file, `tensor ${name}: bytes ${off[0]}..${off[1]} lie beyond the ${dataLen}-byte data section (truncated file or lying header)`);
      }
      tensors.push({ name, dtype: t.dtype, shape: t.shape as number[], file, offset: dataOffset + off[0], byteLength: want });
    }
    const sorted = [...tensors].sort((a, b) => a.offset - b.offset);
    let end = dataOffset;
    for (const t of sorted) {
      if (t.offset < end) throw new CheckpointError(file, `tensor ${t.name} overlaps the tensor before it`);
      end = t.offset + t.byteLength;
    }
    if (end !== size) {
      throw new CheckpointError(file, `data section is ${dataLen} bytes but the tensors cover ${end - dataOffset} (truncated, padded or lying header)`);
    }
    return { tensors, metadata, dataOffset };
  } finally {
    fs.closeSync(fd);
  }
}

/**
 * All tensors of a checkpoint directory: `model.safetensors`, or the shards named by
 * `model.safetensors.index.json` (each shard validated; the index must agree with the shards).
 */
export class TensorFiles {
  private readonly byName = new Map<string, TensorInfo>();
  private readonly fds = new Map<string, number>();

  private constructor(readonly dir: string, infos: TensorInfo[]) {
    for (const t of infos) this.byName.set(t.name, t);
  }

  static open(dir: string): TensorFiles {
    const index = path.join(dir, 'model.safetensors.index.json');
    const single = path.join(dir, 'model.safetensors');
    if (fs.existsSync(index)) {
      let weightMap: Record<string, string>;
      try {
        weightMap = (JSON.parse(fs.readFileSync(index, 'utf8')) as { weight_map: Record<string, string> }).weight_map;
      } catch (e) {
        throw new CheckpointError(index, `not valid JSON: ${(e as Error).message}`);
      }
      if (!weightMap || typeof weightMap !== 'object') throw new CheckpointError(index, 'has no "weight_map" object');
      const shards = [...new Set(Object.values(weightMap))];
      const infos: TensorInfo[] = [];
      for (const shard of shards) {
        if (path.isAbsolute(shard) || shard.split(/[\\/]/).includes('..')) {
          throw new CheckpointError(index, `shard name ${shard} points outside the checkpoint directory`);
        }
        const file = path.join(dir, shard);
        if (!fs.existsSync(file)) throw new CheckpointError(index, `names shard ${shard}, which does not exist`);
        infos.push(...readSafetensorsHeader(file).tensors);
      }
      for (const [name, shard] of Object.entries(weightMap)) {
        const t = infos.find((i) => i.name === name);
        if (!t || path.basename(t.file) !== path.basename(shard)) {
          throw new CheckpointError(index, `says tensor ${name} is in ${shard}, but that shard does not hold it`);
        }
      }
      return new TensorFiles(dir, infos);
    }
    if (!fs.existsSync(single)) {
      throw new CheckpointError(dir, 'has neither model.safetensors nor model.safetensors.index.json', 'point the model path at a Hugging Face checkpoint folder');
    }
    return new TensorFiles(dir, readSafetensorsHeader(single).tensors);
  }

  names(): string[] {
    return [...this.byName.keys()];
  }

  has(name: string): boolean {
    return this.byName.has(name);
  }

  info(name: string): TensorInfo {
    const t = this.byName.get(name);
    if (!t) throw new CheckpointError(this.dir, `missing tensor ${name}`);
    return t;
  }

  private fd(file: string): number {
    let fd = this.fds.get(file);
    if (fd === undefined) {
      fd = fs.openSync(file, 'r');
      this.fds.set(file, fd);
    }
    return fd;
  }

  /**
   * Raw bytes of `length` bytes at `byteOffset` inside the tensor. Read in pieces of at most
   * READ_PIECE bytes: one `readSync` takes a 32-bit length, and mplus-8b's θ alone is 2.68 GB.
   */
  readBytes(name: string, byteOffset = 0, length?: number): Uint8Array {
    const t = this.info(name);
    const n = length ?? t.byteLength - byteOffset;
    if (byteOffset < 0 || n < 0 || byteOffset + n > t.byteLength) throw new RangeError(`${name}: read outside tensor`);
    if (n > MAX_BUFFER) {
      throw new CheckpointError(t.file, `tensor ${name}: a ${n}-byte read exceeds this runtime's ${MAX_BUFFER}-byte buffer limit`, 'read it in slices (readSliceF32)');
    }
    const buf = Buffer.allocUnsafe(n);
    let done = 0;
    while (done < n) {
      const r = fs.readSync(this.fd(t.file), buf, done, Math.min(READ_PIECE, n - done), t.offset + byteOffset + done);
      if (r === 0) throw new CheckpointError(t.file, `unexpected end of file reading ${name}`);
      done += r;
    }
    return new Uint8Array(buf.buffer, buf.byteOffset, n);
  }

  /** The whole tensor as float32 (any dtype converted). */
  readF32(name: string): Float32Array {
    const t = this.info(name);
    return toFloat32(this.readBytes(name), t.dtype);
  }

  /**
   * `count` elements from element `start` of the tensor (row-major), as float32: a layer of a
   * [L, N, d] tensor without converting all of it (mplus-8b's θ is 5.4 GB as float32).
   */
  readSliceF32(name: string, start: number, count: number): Float32Array {
    const t = this.info(name);
    const size = DTYPE_BYTES[t.dtype];
    return toFloat32(this.readBytes(name, start * size, count * size), t.dtype);
  }

  /** Rows of a 2-D (or [1, …]-prefixed) tensor as one float32 array, rows in the given order. */
  readRowsF32(name: string, rows: ArrayLike<number>): Float32Array {
    const t = this.info(name);
    const width = t.shape[t.shape.length - 1];
    const nrows = numel(t.shape) / width;
    const rowBytes = width * DTYPE_BYTES[t.dtype];
    const out = new Float32Array(rows.length * width);
    for (let i = 0; i < rows.length; i++) {
      const r = rows[i];
      if (!Number.isInteger(r) || r < 0 || r >= nrows) throw new RangeError(`${name}: row ${r} outside 0..${nrows - 1}`);
      out.set(toFloat32(this.readBytes(name, r * rowBytes, rowBytes), t.dtype), i * width);
    }
    return out;
  }

  close(): void {
    for (const fd of this.fds.values()) fs.closeSync(fd);
    this.fds.clear();
  }
}

export interface TensorToWrite {
  name: string;
  dtype: DType;
  shape: number[];
  data: Uint8Array;
}

/**
 * Writes a safetensors file: tensors packed in the given order, header padded with spaces to a
 * multiple of 8 bytes (as the reference writer does, so offsets stay aligned).
 */
export function writeSafetensors(file: string, tensors: TensorToWrite[], metadata?: Record<string, string>): void {
  const header: Record<string, unknown> = {};
  if (metadata) header.__metadata__ = metadata;
  let off = 0;
  for (const t of tensors) {
    const want = numel(t.shape) * DTYPE_BYTES[t.dtype];
    if (t.data.byteLength !== want) throw new Error(`${t.name}: ${t.data.byteLength} bytes given, ${want} needed`);
    header[t.name] = { dtype: t.dtype, shape: t.shape, data_offsets: [off, off + want] };
    off += want;
  }
  let json = JSON.stringify(header);
  json += ' '.repeat((8 - ((8 + Buffer.byteLength(json)) % 8)) % 8);
  const len = Buffer.alloc(8);
  len.writeBigUInt64LE(BigInt(Buffer.byteLength(json)));
  const fd = fs.openSync(file, 'w');
  try {
    fs.writeSync(fd, len);
    fs.writeSync(fd, Buffer.from(json, 'utf8'));
    for (const t of tensors) writeAll(fd, t.data);
  } finally {
    fs.closeSync(fd);
  }
}

/** Writes all of `data` in pieces a single `writeSync` accepts (its length is 32-bit). */
function writeAll(fd: number, data: Uint8Array): void {
  let done = 0;
  while (done < data.byteLength) done += fs.writeSync(fd, data, done, Math.min(READ_PIECE, data.byteLength - done));
}
