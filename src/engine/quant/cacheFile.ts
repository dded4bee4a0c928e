/**
 * The on-disk format of a quantized-weights cache, and its validation. One file:
 *   "MPQUANT1" · u32 LE header length H · H bytes of JSON header · zero padding to 4096 · data
 * The header names what the file was built from (checkpoint identity and the stats of its tensor
 * files), how (precision, block), where every tensor lies (spans relative to the data start), the
 * data's exact length and its SHA-256. Files are written under a temporary name, fsynced, then
 * renamed, so a crash leaves no file under the final name; a file that was truncated or altered
 * anyway fails the size or checksum check and is rebuilt — never handed to ONNX Runtime.
 */
import * as crypto from 'crypto';
import * as fs from 'fs';
import * as path from 'path';
import { FrameError, FrameFormat, encodeFrameHead, readFrameHead } from '../../util/framedFile';

const FORMAT_VERSION = 1;
const FRAME: FrameFormat = { magic: 'MPQUANT1', align: 4096, maxHeaderBytes: 64 * 2 ** 20, what: 'quantized-weights cache' };
const SEGMENT_ALIGN = 64;
const HASH_CHUNK = 16 * 2 ** 20;

/** [offset from the data start, byte length] */
export type Span = [number, number];

export type CacheEntry =
  | { kind: 'nbits'; bits: 4 | 8; block: number; n: number; k: number; blob: Span; scales: Span }
  | { kind: 'raw'; dtype: 'F32' | 'BF16' | 'F16'; dims: number[]; data: Span; reason?: string };

/** What a cache must match to be used: any difference means it belongs to another build. */
export interface CacheKey {
  configHash: string;
  weightFingerprint: string;
  /** Tensor files of the checkpoint: base name, size and mtime (a re-export changes them). */
  files: Array<{ name: string; size: number; mtimeMs: number }>;
  precision: string;
  block: number;
}

export interface CacheHeader extends CacheKey {
  version: number;
  tensors: Record<string, CacheEntry>;
  dataBytes: number;
  sha256: string;
}

/** One piece of data: its length, and a producer that emits exactly that many bytes in order. */
export interface Segment {
  length: number;
  produce(emit: (bytes: Uint8Array) => void): void;
}

function align(n: number, a: number): number {
  return Math.ceil(n / a) * a;
}

/** Byte offset of the data in a file with this header. */
export function dataStart(h: CacheHeader): number {
  return encodeFrameHead(FRAME, h).length;
}

/**
 * Lays `segments` out (each at a 64-byte boundary), lets `describe` turn their spans into the
 * tensor table, and writes the file atomically. Returns the header written.
 */
export function writeCacheFile(
  file: string,
  key: CacheKey,
  segments: Segment[],
  describe: (spans: Span[]) => Record<string, CacheEntry>,
): CacheHeader {
  const spans: Span[] = [];
  let pos = 0;
  for (const s of segments) {
    pos = align(pos, SEGMENT_ALIGN);
    spans.push([pos, s.length]);
    pos += s.length;
  }
  // The checksum is a fixed-length hex string, so the final header has the placeholder's length.
  const header: CacheHeader = { version: FORMAT_VERSION, ...key, tensors: describe(spans), dataBytes: pos, sha256: '0'.repeat(64) };
  const start = dataStart(header);
  fs.mkdirSync(path.dirname(file), { recursive: true });
  removeStaleTemps(file);
  const tmp = `${file}.tmp-${process.pid}-${crypto.randomBytes(4).toString('hex')}`;
  const fd = fs.openSync(tmp, 'w');
  try {
    const hash = crypto.createHash('sha256');
    let at = 0;
    const put = (b: Uint8Array) => {
      hash.update(b);
      let done = 0;
      while (done < b.length) done += fs.writeSync(fd, b, done, b.length - done, start + at + done);
      at += b.length;
    };
    const zeros = new Uint8Array(SEGMENT_ALIGN);
    segments.forEach((s, i) => {
      if (spans[i][0] > at) put(zeros.subarray(0, spans[i][0] - at));
      const before = at;
      s.produce(put);
      if (at - before !== s.length) throw new Error(`quantized weights cache: segment ${i} produced ${at - before} bytes, planned ${s.length}`);
    });
    header.sha256 = hash.digest('hex');
    const hb = encodeFrameHead(FRAME, header); // with its zero padding up to the data
    if (hb.length !== start) throw new Error('quantized weights cache: header length changed while writing');
    fs.writeSync(fd, hb, 0, hb.length, 0);
    fs.fsyncSync(fd);
  } catch (e) {
    fs.closeSync(fd);
    fs.rmSync(tmp, { force: true });
    throw e;
  }
  fs.closeSync(fd);
  fs.renameSync(tmp, file);
  return header;
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/**
 * Deletes temporary files of `file` left by builds that crashed (their process is gone): at full
 * size each is gigabytes. Files of a build still running in another process are left alone.
 */
export function removeStaleTemps(file: string): string[] {
  const dir = path.dirname(file);
  const prefix = `${path.basename(file)}.tmp-`;
  const removed: string[] = [];
  let names: string[];
  try {
    names = fs.readdirSync(dir);
  } catch {
    return removed;
  }
  for (const n of names) {
    if (!n.startsWith(prefix)) continue;
    const pid = Number(n.slice(prefix.length).split('-')[0]);
    if (!Number.isInteger(pid) || pid <= 0 || alive(pid)) continue;
    fs.rmSync(path.join(dir, n), { force: true });
    removed.push(n);
  }
  return removed;
}

function sameKey(a: CacheKey, b: CacheKey): string | null {
  if (a.configHash !== b.configHash) return 'it was built for another config.json';
  if (a.weightFingerprint !== b.weightFingerprint) return 'it was built for other weights';
  if (a.precision !== b.precision || a.block !== b.block) return `it holds ${a.precision}/block ${a.block}, not ${b.precision}/block ${b.block}`;
  if (JSON.stringify(a.files) !== JSON.stringify(b.files)) return 'the checkpoint\'s tensor files changed (size or modification time) since it was built';
  return null;
}

/**
 * Reads and checks a cache file against `key`: header, sizes, and the SHA-256 of all its data
 * (which also brings it into the page cache ONNX Runtime reads it from). Returns the header, or
 * the reason it cannot be used.
 */
export function readCacheFile(file: string, key: CacheKey): { header: CacheHeader; dataStart: number } | { reason: string } {
  let fd: number;
  try {
    fd = fs.openSync(file, 'r');
  } catch (e) {
    return { reason: (e as NodeJS.ErrnoException).code === 'ENOENT' ? 'none yet' : (e as Error).message };
  }
  try {
    const size = fs.fstatSync(fd).size;
    let header: CacheHeader;
    let start: number;
    try {
      const head = readFrameHead(fd, size, FRAME);
      header = head.header as unknown as CacheHeader;
      start = head.dataStart;
    } catch (e) {
      if (e instanceof FrameError) return { reason: e.message };
      throw e;
    }
    if (header.version !== FORMAT_VERSION) return { reason: `format version ${header.version}, expected ${FORMAT_VERSION}` };
    const mismatch = sameKey(header, key);
    if (mismatch) return { reason: mismatch };
    if (size !== start + header.dataBytes) return { reason: `${size} bytes, expected ${start + header.dataBytes} (truncated or extended)` };
    for (const [name, e] of Object.entries(header.tensors)) {
      const spans = e.kind === 'nbits' ? [e.blob, e.scales] : [e.data];
      if (spans.some(([o, l]) => o < 0 || l < 0 || o + l > header.dataBytes)) return { reason: `tensor ${name} lies outside the data` };
    }
    const hash = crypto.createHash('sha256');
    const buf = Buffer.allocUnsafe(Math.min(HASH_CHUNK, Math.max(1, header.dataBytes)));
    for (let at = 0; at < header.dataBytes;) {
      const n = fs.readSync(fd, buf, 0, Math.min(buf.length, header.dataBytes - at), start + at);
      if (n <= 0) return { reason: 'short read' };
      hash.update(buf.subarray(0, n));
      at += n;
    }
    if (hash.digest('hex') !== header.sha256) return { reason: 'its data does not match its checksum' };
    return { header, dataStart: start };
  } finally {
    fs.closeSync(fd);
  }
}
