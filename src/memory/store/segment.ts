/**
 * Segment files: an append-only unit of one layer's rows, written once at a commit and never
 * modified (compaction writes a new one). Θ segments hold values and keys; θ/cache row segments
 * values only (keyWidth 0); the cache's key segments keys only (width 0).
 *
 *   "MPSEG001" | u32 headerLen | header JSON | zero pad to 8 |
 *   values  [rows × rowBytes(format, d)]      ← read lazily, one row at a time
 *   keys    [rows × keyWidth] float32         ← read fully at open (retrieval scores all keys)
 *   rowCrc  [rows] u32, crc32 of each encoded value row (checked on every row read)
 *
 * The manifest records the file size and the sha256 of everything except the values, so a
 * truncated or altered segment is caught at open, and a flipped value byte at the read of its row.
 */
import * as crypto from 'crypto';
import * as fs from 'fs';
import * as zlib from 'zlib';
import { FrameError, FrameFormat, encodeFrameHead, readFrameHead } from '../../util/framedFile';
import { ValueFormat, decodeRow, encodeRows, rowBytes } from './codec';
import { StoreCorruptError } from './errors';

const FRAME: FrameFormat = { magic: 'MPSEG001', align: 8, maxHeaderBytes: 4096, what: 'segment file' };

export interface SegmentHeader {
  layer: number;
  rows: number;
  width: number;
  keyWidth: number;
  format: ValueFormat;
}

export interface SegmentEntry {
  file: string;
  layer: number;
  rows: number;
  size: number;
  /** sha256 of header, keys and row checksums (not of the values). */
  headSha256: string;
}

/** Where each part lies, given the header and where the frame's data starts (the values). */
function layout(h: SegmentHeader, valuesAt: number) {
  const rb = rowBytes(h.format, h.width);
  const keysAt = valuesAt + h.rows * rb;
  const crcAt = keysAt + h.rows * h.keyWidth * 4;
  return { valuesAt, rb, keysAt, crcAt, size: crcAt + h.rows * 4 };
}

/** Writes a segment (fsynced) and returns its manifest entry. */
export function writeSegment(path: string, name: string, h: SegmentHeader, values: Float32Array, keys: Float32Array): SegmentEntry {
  const head = encodeFrameHead(FRAME, h);
  const L = layout(h, head.length);
  const vals = h.width ? encodeRows(h.format, values, h.width) : Buffer.alloc(0); // keys-only segment
  const crcs = Buffer.alloc(h.rows * 4);
  for (let r = 0; r < h.rows; r++) crcs.writeUInt32LE(zlib.crc32(vals.subarray(r * L.rb, (r + 1) * L.rb)), r * 4);
  const keyBuf = Buffer.from(keys.buffer, keys.byteOffset, keys.byteLength);
  const sha = crypto.createHash('sha256').update(head).update(keyBuf).update(crcs).digest('hex');
  const fd = fs.openSync(path, 'w');
  try {
    for (const b of [head, vals, keyBuf, crcs]) fs.writeSync(fd, b);
    fs.fsyncSync(fd);
  } finally {
    fs.closeSync(fd);
  }
  return { file: name, layer: h.layer, rows: h.rows, size: L.size, headSha256: sha };
}

/** An open segment: keys in RAM, values read row by row with their checksum verified. */
export class SegmentReader {
  readonly header: SegmentHeader;
  readonly keys: Float32Array;
  private readonly crcs: Uint32Array;
  private readonly valuesAt: number;
  private readonly rb: number;
  private fd: number;

  constructor(readonly path: string, entry: SegmentEntry) {
    let fd: number;
    try {
      fd = fs.openSync(path, 'r');
    } catch (e) {
      throw new StoreCorruptError(path, `segment named by the manifest is missing (${(e as NodeJS.ErrnoException).code})`);
    }
    this.fd = fd;
    try {
      const size = fs.fstatSync(fd).size;
      if (size !== entry.size) throw new StoreCorruptError(path, `segment is ${size} bytes, the manifest says ${entry.size} (truncated or overwritten)`);
      let h: SegmentHeader;
      let valuesAt: number;
      try {
        const f = readFrameHead(fd, size, FRAME);
        h = f.header as unknown as SegmentHeader;
        valuesAt = f.dataStart;
      } catch (e) {
        throw e instanceof FrameError ? new StoreCorruptError(path, e.message) : e;
      }
      const L = layout(h, valuesAt);
      if (L.size !== size || h.rows !== entry.rows || h.layer !== entry.layer) throw new StoreCorruptError(path, 'segment header disagrees with the manifest');
      const head = Buffer.alloc(L.valuesAt);
      fs.readSync(fd, head, 0, L.valuesAt, 0);
      const tail = Buffer.alloc(size - L.keysAt);
      fs.readSync(fd, tail, 0, tail.length, L.keysAt);
      const sha = crypto.createHash('sha256').update(head).update(tail).digest('hex');
      if (sha !== entry.headSha256) throw new StoreCorruptError(path, 'segment keys or checksums do not match the manifest (corrupted)');
      this.header = h;
      const keyBytes = h.rows * h.keyWidth * 4;
      this.keys = new Float32Array(tail.buffer.slice(tail.byteOffset, tail.byteOffset + keyBytes));
      this.crcs = new Uint32Array(tail.buffer.slice(tail.byteOffset + keyBytes, tail.byteOffset + keyBytes + h.rows * 4));
      this.valuesAt = L.valuesAt;
      this.rb = L.rb;
    } catch (e) {
      fs.closeSync(fd);
      throw e;
    }
  }

  /** Reads rows (any order) into dst at row slots dstRows[i]; verifies each row's crc. */
  readRows(rows: number[], dst: Float32Array, dstRows: number[], scratch?: Buffer): void {
    const d = this.header.width;
    const buf = scratch && scratch.length >= this.rb ? scratch : Buffer.alloc(this.rb);
    for (let i = 0; i < rows.length; i++) {
      const r = rows[i];
      const got = fs.readSync(this.fd, buf, 0, this.rb, this.valuesAt + r * this.rb);
      if (got !== this.rb || zlib.crc32(buf.subarray(0, this.rb)) !== this.crcs[r]) {
        throw new StoreCorruptError(this.path, `row ${r} of layer ${this.header.layer} fails its checksum (flipped bytes on disk)`);
      }
      decodeRow(this.header.format, buf, 0, d, dst, dstRows[i] * d);
    }
  }

  /** Reads every row's checksum-verified values (compaction, full verification). */
  verifyAll(): void {
    const all = Array.from({ length: this.header.rows }, (_, i) => i);
    const dst = new Float32Array(this.header.rows * this.header.width);
    this.readRows(all, dst, all);
  }

  close(): void {
    if (this.fd >= 0) fs.closeSync(this.fd);
    this.fd = -1;
  }
}
