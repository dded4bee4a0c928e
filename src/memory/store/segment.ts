/**
 * Segment files: an append-only unit of one layer's rows, written once at a commit and never
 * modified (compaction writes a new one). Θ segments hold values and keys; θ/cache row segments
 * values only (keyWidth 0); the cache's key segments keys only (width 0).
 *
 *   "MPSEG001" | u32 headerLen | header JSON | zero pad to 8 |
 *   values  [rows × rowBytes(format, d)]      ← read lazily, only the rows asked for (READ_WINDOW)
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

/**
 * How a gather reads value rows: wanted rows with at most `gapBytes` of unwanted rows between
 * them share one read of at most `maxBytes` (into one reused buffer). Measured (BENCHMARKS.md,
 * "Store", `bench store --sweep`, 2,560 of 30,000 / 150,000 rows of 8 KiB):
 * - merging runs of adjacent rows is what pays: a clustered retrieval (the tokens of a few code
 *   spans lie side by side) needs ~80 reads instead of 2,560, and its cold gather takes ~30% less;
 * - reading through gaps trades a syscall (~1.2 µs warm, a disk access cold) for a copy (~1.6 µs
 *   per 8 KiB warm, ~16 µs at this disk's 500 MB/s): from the page cache it breaks even near two
 *   rows, and cold the kernel's readahead already brings in most neighbours. 16 KiB left the warm
 *   gather unchanged and the cold random one ~10% faster (in the noise); 64 KiB read 3× the bytes
 *   for nothing measurable;
 * - 1 MiB holds a run of 128 rows; sequential reads (θ at open, verify) were no faster at 4 MiB.
 */
export interface ReadWindow {
  gapBytes: number;
  maxBytes: number;
}
export const READ_WINDOW: Readonly<ReadWindow> = { gapBytes: 16 << 10, maxBytes: 1 << 20 };

/** null when rows already ascend (what SegmentedRows passes), else the positions in row order. */
function ascendingOrder(rows: ArrayLike<number>): number[] | null {
  for (let i = 1; i < rows.length; i++) {
    if (rows[i] < rows[i - 1]) return Array.from({ length: rows.length }, (_, k) => k).sort((a, b) => rows[a] - rows[b]);
  }
  return null;
}

/**
 * One read buffer for every segment: reads are synchronous, so no two gathers share it at once,
 * and reusing it spares a fresh allocation per gather (new memory page-faults at ~200 MB/s here).
 */
let scratchBuf = Buffer.alloc(0);
function scratch(bytes: number): Buffer {
  if (scratchBuf.length < bytes) scratchBuf = Buffer.allocUnsafe(bytes);
  return scratchBuf;
}

/**
 * An open segment: values read on demand with each row's checksum verified. Its keys are read and
 * verified at open and held only when asked (`keepKeys`), until `dropKeys()`: the memory state
 * holds every key it scores with (LayerMemory.ltmKeys/cacheKeys), so a reader that kept them too
 * would double the one part of memory that grows with Θ (4.9 GB of f32 keys at 150k rows per
 * layer at mplus-8b shape). The store keeps them while it loads a state from its segments.
 */
export class SegmentReader {
  readonly header: SegmentHeader;
  private heldKeys: Float32Array | null;
  private readonly crcs: Uint32Array;
  private readonly valuesAt: number;
  private readonly rb: number;
  private fd: number;
  /** read() calls for values since open, and the bytes they read (the gather bench reports both). */
  valueReads = 0;
  valueBytesRead = 0;

  constructor(readonly path: string, entry: SegmentEntry, opts: { keepKeys?: boolean } = {}) {
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
      this.heldKeys = opts.keepKeys ? new Float32Array(tail.buffer.slice(tail.byteOffset, tail.byteOffset + keyBytes)) : null;
      this.crcs = new Uint32Array(tail.buffer.slice(tail.byteOffset + keyBytes, tail.byteOffset + keyBytes + h.rows * 4));
      this.valuesAt = L.valuesAt;
      this.rb = L.rb;
    } catch (e) {
      fs.closeSync(fd);
      throw e;
    }
  }

  /** The segment's keys [rows × keyWidth], verified at open; only while held (keepKeys, before dropKeys). */
  get keys(): Float32Array {
    if (!this.heldKeys) throw new Error(`${this.path}: segment keys are not held (opened without keepKeys, or dropped); this is a bug`);
    return this.heldKeys;
  }

  /** Bytes of keys this reader holds (0 once dropped). */
  get heldKeyBytes(): number {
    return this.heldKeys ? this.heldKeys.byteLength : 0;
  }

  dropKeys(): void {
    this.heldKeys = null;
  }

  /**
   * Reads rows (any order, repeats allowed) into dst at row slots dstRows[i]; verifies each row's
   * crc. Rows close together in the file share one read (see READ_WINDOW); rows read only because
   * they lie between wanted ones are neither checked nor decoded.
   */
  readRows(rows: ArrayLike<number>, dst: Float32Array, dstRows: ArrayLike<number>, window: ReadWindow = READ_WINDOW): void {
    const d = this.header.width;
    const rb = this.rb;
    const n = rows.length;
    const order = ascendingOrder(rows);
    const rowAt = order ? (k: number) => rows[order[k]] : (k: number) => rows[k];
    const slotAt = order ? (k: number) => dstRows[order[k]] : (k: number) => dstRows[k];
    // Rows one read may cover, and unwanted rows it may pass through (a keys-only segment's rows
    // have no value bytes: one empty read covers them all).
    const span = rb ? Math.max(1, Math.floor(window.maxBytes / rb)) : n;
    const gap = rb ? Math.floor(window.gapBytes / rb) : n;
    const buf = scratch(Math.min(span, n ? rowAt(n - 1) - rowAt(0) + 1 : 0) * rb);
    for (let k = 0; k < n; ) {
      const first = rowAt(k);
      let last = first;
      let end = k + 1;
      for (; end < n; end++) {
        const r = rowAt(end);
        if (r - last - 1 > gap || r - first >= span) break;
        last = r;
      }
      const got = fs.readSync(this.fd, buf, 0, (last - first + 1) * rb, this.valuesAt + first * rb);
      this.valueReads++;
      this.valueBytesRead += got;
      for (; k < end; k++) {
        const r = rowAt(k);
        const at = (r - first) * rb;
        if (at + rb > got || zlib.crc32(buf.subarray(at, at + rb)) !== this.crcs[r]) {
          throw new StoreCorruptError(this.path, `row ${r} of layer ${this.header.layer} fails its checksum (flipped bytes on disk)`);
        }
        decodeRow(this.header.format, buf, at, d, dst, slotAt(k) * d);
      }
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
